"""Per-request counts: each observation sees only its own task's reads."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from tests.cache.conftest import MakeCache


async def _load(keys: list[str]) -> Mapping[str, str]:
    return {key: key.upper() for key in keys}


async def test_each_observation_counts_its_own_reads(make_cache: MakeCache) -> None:
    writer = await make_cache()
    await writer.get_many_or_load(["a", "b"], _load)  # now in Redis
    reader = await make_cache()  # empty L1: its first reads are L2 hits
    counts: dict[str, dict[str, int]] = {}

    async def request(name: str, keys: list[str]) -> None:
        with reader.observing() as observation:
            await reader.get_many_or_load(keys, _load)
            await asyncio.sleep(0)
            await reader.get_many_or_load(keys, _load)
        counts[name] = observation.counts()

    await asyncio.gather(request("old", ["a", "b"]), request("new", ["c"]))
    assert counts["old"]["l2_hits"] == 2
    assert counts["old"]["l1_hits"] == 2
    assert counts["old"]["loads"] == 0
    assert counts["new"]["l2_misses"] == 1
    assert counts["new"]["loads"] == 1
    assert counts["new"]["loaded_keys"] == 1
    assert counts["new"]["l1_hits"] == 1
    with reader.observing() as idle:
        pass
    assert set(idle.counts().values()) == {0}
