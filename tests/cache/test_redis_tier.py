"""Round trips to Redis per operation, counted at redis-py's socket writes."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import AbstractConnection

from tests.cache.conftest import MakeCache, Source


class Counter:
    def __init__(self) -> None:
        self.sent = 0


@pytest.fixture
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter()
    original = AbstractConnection.send_packed_command

    async def counting(self: AbstractConnection, command: Any, check_health: bool = True) -> None:
        counter.sent += 1
        await original(self, command, check_health)

    monkeypatch.setattr(AbstractConnection, "send_packed_command", counting)
    return counter


async def test_round_trips_per_operation(make_cache: MakeCache, round_trips: Counter) -> None:
    source = Source({f"k{i}": i for i in range(20)})
    keys = list(source.data)
    tags = lambda key: [key, "list"]  # noqa: E731
    loader_instance = await make_cache()
    reader_instance = await make_cache()
    for instance in (loader_instance, reader_instance):
        # Connection handshakes and the first SCRIPT LOADs are one-time costs.
        await instance.get_many_or_load(["warm-up"], source.load, tags=tags)
        await instance.invalidate(["warm-up"])

    round_trips.sent = 0
    await loader_instance.get_many_or_load(keys, source.load, tags=tags)
    assert round_trips.sent == 2  # one read (entries + versions), one conditional fill

    round_trips.sent = 0
    await reader_instance.get_many_or_load(keys, source.load, tags=tags)
    assert round_trips.sent == 1  # one L2 read for the whole batch
    assert reader_instance.stats["l2_hits"] == 20

    round_trips.sent = 0
    await reader_instance.get_many_or_load(keys, source.load, tags=tags)
    assert round_trips.sent == 0  # L1

    round_trips.sent = 0
    await loader_instance.invalidate([f"tag:{i}" for i in range(50)])
    assert round_trips.sent == 1


async def test_get_entry_on_an_l1_miss_is_one_round_trip(
    make_cache: MakeCache, round_trips: Counter
) -> None:
    source = Source({f"k{i}": i for i in range(5)})
    writer = await make_cache()
    reader = await make_cache()
    await reader.get_many_or_load(["warm-up"], source.load, tags=lambda key: [key])
    with writer.recording() as rec:
        await writer.get_many_or_load(list(source.data), source.load, tags=lambda k: [k, "list"])
    await writer.set_entry("page", {"body": "x"}, rec.tag_versions)

    round_trips.sent = 0
    found = await reader.get_entry_with_tier("page")
    assert found is not None
    assert found[1] == "L2"
    assert found[0].value == {"body": "x"}
    assert round_trips.sent == 1  # the blob and the versions of its 7 tags together

    # Still validated: after one of its tags moves, the next L1 miss refuses it.
    await writer.invalidate(["k3"])
    fresh = await make_cache()
    round_trips.sent = 0
    assert await fresh.get_entry("page") is None
    assert round_trips.sent == 1


async def test_round_trips_are_counted_in_stats_and_observations(
    make_cache: MakeCache, round_trips: Counter
) -> None:
    source = Source({f"k{i}": i for i in range(20)})
    keys = list(source.data)
    cache = await make_cache()
    other = await make_cache()
    await cache.get_many_or_load(["warm-up"], source.load, tags=lambda key: [key])
    await other.get_many_or_load(["warm-up"], source.load, tags=lambda key: [key])

    before = cache.stats["redis_round_trips"]
    round_trips.sent = 0
    with cache.observing() as miss:
        await cache.get_many_or_load(keys, source.load, tags=lambda key: [key])
    assert miss.counts()["redis_round_trips"] == 2 == round_trips.sent
    assert cache.stats["redis_round_trips"] - before == 2

    with other.observing() as l2_hit:
        await other.get_many_or_load(keys, source.load, tags=lambda key: [key])
    with other.observing() as l1_hit:
        await other.get_many_or_load(keys, source.load, tags=lambda key: [key])
    with cache.observing() as invalidation:
        await cache.invalidate(["k1", "k2"])
    assert l2_hit.counts()["redis_round_trips"] == 1
    assert l1_hit.counts()["redis_round_trips"] == 0
    assert invalidation.counts()["redis_round_trips"] == 1
