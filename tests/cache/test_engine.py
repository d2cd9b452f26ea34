"""Randomized interleavings of slow loads, reads and writes on two instances (hypothesis).

Property (SPEC 6.7, 6.8): a read on the instance that made the latest write to a key sees
that write; and once writes stop and the broadcast has been delivered, every read on every
instance equals the source of truth.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache import TieredCache
from tests.cache.conftest import config_for, eventually

pytestmark = pytest.mark.l2_both

KEYS = ("item:0", "item:1", "total")


def tags_of(key: str) -> list[str]:
    # "total" is an aggregate: it depends on the list tag that every item write bumps.
    return ["Item"] if key == "total" else [key, "Item"]


@dataclass
class World:
    data: dict[str, int] = field(default_factory=lambda: {"item:0": 0, "item:1": 0})

    def read(self, key: str) -> int:
        return sum(self.data.values()) if key == "total" else self.data[key]


@dataclass
class SlowRead:
    task: asyncio.Task[dict[str, int | None]]
    gate: asyncio.Event


step = st.one_of(
    st.tuples(st.just("read"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("slow"), st.integers(0, 1), st.integers(0, 2)),
    st.tuples(st.just("release"), st.integers(0, 7), st.just(0)),
    st.tuples(st.just("write"), st.integers(0, 1), st.integers(0, 1)),
)


async def run_scenario(l2_url: str, cluster: str, steps: list[tuple[str, int, int]]) -> None:
    namespace = f"strata-test-{uuid.uuid4().hex[:12]}"
    world = World()
    config = config_for(l2_url, namespace, redis_cluster=cluster)
    instances = [TieredCache(config) for _ in range(2)]
    for instance in instances:
        await instance.start()
    slow: list[SlowRead] = []
    stragglers: list[asyncio.Task[dict[str, int | None]]] = []
    released: list[asyncio.Task[dict[str, int | None]]] = []
    last_writer: dict[str, int] = {}
    invalidations = 0

    def loader(gate: asyncio.Event, entered: asyncio.Event) -> Any:
        async def load(keys: list[str]) -> dict[str, int]:
            snapshot = {key: world.read(key) for key in keys}  # the database read
            entered.set()
            await gate.wait()
            return snapshot

        return load

    async def start_read(index: int, key: str, gate: asyncio.Event) -> asyncio.Task[Any]:
        instance = instances[index]
        entered = asyncio.Event()
        joins = instance.stats["single_flight_joins"]
        task = asyncio.create_task(
            instance.get_many_or_load([key], loader(gate, entered), tags=tags_of)
        )
        await eventually(
            lambda: task.done() or entered.is_set() or instance.stats["single_flight_joins"] > joins
        )
        return task

    try:
        for kind, who, what in steps:
            if kind == "read":
                key = KEYS[what]
                open_gate = asyncio.Event()
                open_gate.set()
                task = await start_read(who, key, open_gate)
                if not task.done():
                    stragglers.append(task)  # joined a slow load; checked at the end
                    continue
                got = task.result()[key]
                if last_writer.get(key) == who:
                    assert got == world.read(key), (key, got, world.data)
            elif kind == "slow":
                gate = asyncio.Event()
                slow.append(SlowRead(await start_read(who, KEYS[what], gate), gate))
            elif kind == "release" and slow:
                # Its loader may finish now; a read that joined another slow load's flight
                # finishes only when that one is released, so it is collected at the end.
                pending = slow.pop(who % len(slow))
                pending.gate.set()
                released.append(pending.task)
            elif kind == "write":
                key = KEYS[what]
                world.data[key] += 1
                await instances[who].invalidate(tags_of(key))
                invalidations += 1
                for affected in KEYS:
                    if set(tags_of(affected)) & set(tags_of(key)):
                        last_writer[affected] = who

        for pending in slow:
            pending.gate.set()
        await asyncio.gather(*(pending.task for pending in slow), *released, *stragglers)
        for instance in instances:
            await eventually(
                lambda instance=instance: (
                    instance.stats["invalidations_received"]  # type: ignore[misc]
                    >= invalidations
                )
            )

        async def load_now(keys: list[str]) -> dict[str, int]:
            return {key: world.read(key) for key in keys}

        truth = {key: world.read(key) for key in KEYS}
        for instance in instances:
            assert await instance.get_many_or_load(KEYS, load_now, tags=tags_of) == truth
            for key in KEYS:  # and one key at a time, through the single-key path
                assert await instance.get_many_or_load([key], load_now, tags=tags_of) == {
                    key: truth[key]
                }
    finally:
        for instance in instances:
            await instance.close()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(step, min_size=1, max_size=14))
def test_every_read_converges_to_the_source_of_truth(
    l2_url: str, l2_kind: str, steps: list[tuple[str, int, int]]
) -> None:
    asyncio.run(run_scenario(l2_url, "on" if l2_kind == "cluster" else "off", steps))
