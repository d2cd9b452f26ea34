"""A stateful property test of the cache's two promises (SPEC 6.7, 6.8, 6.10; issue 13
item 5): two engine instances on one real Redis, a real database table as the source of
truth, and Hypothesis choosing reads, writes and faults in any order.

* Read-your-writes: a read on an instance returns at least what that instance last wrote
  (values only grow, so "at least" is "not older").
* Convergence: once every fault is healed and the replay has drained, every read on both
  instances equals the database.

Faults: Redis killed (its append-only file keeps the data, as a production Redis with AOF)
and started, frozen (SIGSTOP: no answer at all) and thawed, full (``maxmemory`` under
``noeviction``: reads answered, writes refused), flushed, the broadcast connections killed
(``CLIENT KILL TYPE pubsub``), an instance restarted (with invalidations pending: the
outbox makes them durable), a writer that died between its commit and its bump (its row
recorded, no invalidation sent: another instance's relay applies it).

Every write records its outbox row in the transaction of the change and invalidates with
that row; both instances relay from the same outbox table, on a short period and grace so
the relay's own retries take part in the run.

Bounded: ``STRATA_STATEFUL_EXAMPLES`` examples (default 15) of at most
``STRATA_STATEFUL_STEPS`` steps (default 25) per database. The seed is printed first; set
``STRATA_STATEFUL_SEED`` to replay one run.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest
import redis
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import bindparam, text

from cache import TieredCache
from models import Database
from models.outbox import DatabaseOutbox, record
from tests.cache.conftest import config_for
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

T = TypeVar("T")

EXAMPLES = int(os.environ.get("STRATA_STATEFUL_EXAMPLES", "15"))
STEPS = int(os.environ.get("STRATA_STATEFUL_STEPS", "25"))
KEYS = ("k0", "k1", "k2")
TOTAL = "total"
"""A value over every row (a list or an aggregate): its tag moves with any write."""
LIST_TAG = "kv"
CONVERGE_SECONDS = 3.0
"""Far below every L1 TTL of these engines (30 s degraded, 300 s otherwise): reads can
only come to equal the database through an invalidation, a flush or a replay."""
INSTANCE_CONFIG: dict[str, Any] = {
    "redis_timeout_ms": 150,
    "breaker_failure_threshold": 2,
    "breaker_reset_seconds": 0.05,
    "degraded_l1_ttl": 30.0,
    "outbox_relay_seconds": 0.1,
    "outbox_grace_seconds": 0.3,
}
RECOVERY_SECONDS = 10.0
"""Bound on healing: breakers closed, broadcasts up, every outbox row applied."""


def tags_of(key: str) -> list[str]:
    return [LIST_TAG] if key == TOTAL else [key]


def tags_written(key: str) -> list[str]:
    return [key, LIST_TAG]


class Table:
    """The source of truth: one row per key, whose value only grows; its database also
    holds the outbox both instances relay from."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.engine = self.db.engine
        self.outbox = DatabaseOutbox(self.db)
        self.name = f"stateful_{uuid.uuid4().hex[:10]}"

    async def create(self) -> None:
        async with self.engine.begin() as db:
            await db.execute(
                text(f"CREATE TABLE {self.name} (k VARCHAR(16) PRIMARY KEY, v INTEGER NOT NULL)")
            )
            for key in KEYS:
                await db.execute(text(f"INSERT INTO {self.name} (k, v) VALUES (:k, 0)"), {"k": key})

    async def bump(self, key: str, tags: list[str]) -> int:
        """The change and its outbox row, in one transaction; the row's id."""
        async with self.db.session() as session, session.begin():
            await session.execute(
                text(f"UPDATE {self.name} SET v = v + 1 WHERE k = :k"), {"k": key}
            )
            return await record(session, tags)

    async def load(self, keys: list[str]) -> dict[str, int]:
        """The loader of both instances: one query for the rows, one for the total."""
        rows = [key for key in keys if key != TOTAL]
        found: dict[str, int] = {}
        async with self.engine.connect() as db:
            if rows:
                query = text(f"SELECT k, v FROM {self.name} WHERE k IN :keys").bindparams(
                    bindparam("keys", expanding=True)
                )
                found.update({k: v for k, v in (await db.execute(query, {"keys": rows})).all()})
            if TOTAL in keys:
                total = (await db.execute(text(f"SELECT SUM(v) FROM {self.name}"))).scalar_one()
                found[TOTAL] = int(total)
        return found

    async def snapshot(self) -> dict[str, int]:
        return await self.load([*KEYS, TOTAL])


class CacheMachine(RuleBasedStateMachine):
    """Two instances, A and B, a Redis that the rules break and heal, and a table."""

    database_url: str
    redis_server: RedisServer

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.namespace = f"stateful-{uuid.uuid4().hex[:10]}"
        self.table = Table(self.database_url)
        self.admin = redis.Redis.from_url(self.redis_server.url, socket_timeout=2)
        self.instances: list[TieredCache] = []
        self.floor: list[dict[str, int]] = [{}, {}]
        """Per instance and key: the database's value when that instance's last write
        answered. A later read on that instance must not return less."""
        self.redis_down = self.redis_frozen = self.redis_full = False

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    async def start_instance(self) -> TieredCache:
        config = config_for(self.redis_server.url, self.namespace, **INSTANCE_CONFIG)
        cache = TieredCache(config, self.table.outbox)
        await cache.start()
        return cache

    @initialize()
    def start(self) -> None:
        self.run(self.table.create())
        self.instances = [self.run(self.start_instance()) for _ in range(2)]

    def teardown(self) -> None:
        try:
            if self.instances:
                self.heal_and_converge()
        finally:
            self.heal_redis()
            for cache in self.instances:
                self.run(cache.close())
            self.run(self.table.db.dispose())
            self.loop.close()
            self.admin.close()

    # -- reads and writes ---------------------------------------------------------------

    async def read(self, index: int, keys: list[str]) -> dict[str, Any]:
        cache = self.instances[index]
        got = await cache.get_many_or_load(keys, self.table.load, tags=tags_of)
        for key in keys:
            floor = self.floor[index].get(key, 0)
            value = got[key]
            assert value is not None, f"{key} not found"
            assert value >= floor, (
                f"instance {'AB'[index]} read {key}={value} after its own write left it "
                f"at {floor} (read-your-writes)"
            )
        return got

    async def write(self, index: int, key: str) -> None:
        tags = tags_written(key)
        row = await self.table.bump(key, tags)
        await self.instances[index].invalidate(tags, row=row)
        await self.settle_floor(index, key)

    async def settle_floor(self, index: int, key: str) -> None:
        now = await self.table.snapshot()
        self.floor[index].update({key: now[key], TOTAL: now[TOTAL]})

    @rule(index=st.integers(0, 1), keys=st.lists(st.sampled_from([*KEYS, TOTAL]), min_size=1))
    def read_keys(self, index: int, keys: list[str]) -> None:
        self.run(self.read(index, list(dict.fromkeys(keys))))

    @rule(index=st.integers(0, 1), key=st.sampled_from(KEYS))
    def write_then_read_on_the_writer(self, index: int, key: str) -> None:
        self.run(self.write(index, key))
        self.run(self.read(index, [key, TOTAL]))

    @rule(writer=st.integers(0, 1), reader=st.integers(0, 1), key=st.sampled_from(KEYS))
    def write_during_a_read(self, writer: int, reader: int, key: str) -> None:
        """A read in flight across a write: it may answer either value, but must leave
        nothing behind that outlives the write (checked when everything is healed)."""

        async def both() -> None:
            cache = self.instances[reader]
            await asyncio.gather(
                cache.get_many_or_load([key, TOTAL], self.table.load, tags=tags_of),
                self.write(writer, key),
            )

        self.run(both())

    # -- faults ---------------------------------------------------------------------------

    @precondition(lambda self: not self.redis_down)
    @rule()
    def kill_redis(self) -> None:
        self.redis_server.stop()  # SIGKILL; what it answered is in its AOF
        self.redis_down, self.redis_frozen, self.redis_full = True, False, False

    @precondition(lambda self: self.redis_down)
    @rule()
    def start_redis(self) -> None:
        self.redis_server.start()
        self.redis_down = False

    @precondition(lambda self: not self.redis_down and not self.redis_frozen)
    @rule()
    def freeze_redis(self) -> None:
        self.redis_server.freeze()
        self.redis_frozen = True

    @precondition(lambda self: self.redis_frozen)
    @rule()
    def thaw_redis(self) -> None:
        self.redis_server.thaw()
        self.redis_frozen = False

    @precondition(lambda self: self.redis_reachable and not self.redis_full)
    @rule()
    def fill_redis(self) -> None:
        """``noeviction`` and a memory limit below what is used: every write refused."""
        used = int(self.admin.info("memory")["used_memory"])
        self.admin.config_set("maxmemory-policy", "noeviction")
        self.admin.config_set("maxmemory", str(max(used // 2, 1)))
        self.redis_full = True

    @precondition(lambda self: self.redis_reachable)
    @rule()
    def flush_redis(self) -> None:
        self.admin.flushall()

    @precondition(lambda self: self.redis_reachable)
    @rule()
    def kill_the_broadcast(self) -> None:
        self.admin.client_kill_filter(_type="pubsub")

    @rule(index=st.integers(0, 1))
    def restart_instance(self, index: int) -> None:
        """Whatever it has pending: the rows stay unapplied in the outbox, and the new
        instance marks them pending before it serves."""
        self.run(self.instances[index].close())
        self.instances[index] = self.run(self.start_instance())

    @rule(index=st.integers(0, 1), key=st.sampled_from(KEYS))
    def writer_dies_after_its_commit(self, index: int, key: str) -> None:
        """The change and its row committed, then the process is gone before its bump: the
        other instance's relay applies the row; the instance started in its place marks it
        pending at start, so it too reads at least the committed value."""
        self.run(self.table.bump(key, tags_written(key)))
        self.run(self.instances[index].close())
        self.instances[index] = self.run(self.start_instance())
        self.run(self.settle_floor(index, key))
        self.run(self.read(index, [key, TOTAL]))

    @property
    def redis_reachable(self) -> bool:
        return not self.redis_down and not self.redis_frozen

    # -- healing ----------------------------------------------------------------------------

    @rule()
    def heal_and_converge(self) -> None:
        self.heal_redis()
        self.run(self.converge())

    def heal_redis(self) -> None:
        if self.redis_frozen:
            self.redis_server.thaw()
        if self.redis_down:
            self.redis_server.start()
        self.admin.config_set("maxmemory", "0")
        self.redis_down = self.redis_frozen = self.redis_full = False

    async def converge(self) -> None:
        """Waits (bounded) for what the design promises once Redis is back: each breaker
        closed by a probe that replayed every pending invalidation, each broadcast
        subscribed; then every read on both instances equals the database, at the latest
        within the cross-instance window."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RECOVERY_SECONDS
        while not await self.recovered():
            assert loop.time() < deadline, (
                f"not recovered within {RECOVERY_SECONDS} s: {self.health()}, "
                f"unapplied rows {await self.table.outbox.unapplied(10)}"
            )
            await asyncio.sleep(0.01)
        truth = await self.table.snapshot()
        deadline = loop.time() + CONVERGE_SECONDS
        for index, cache in enumerate(self.instances):
            while (
                got := await cache.get_many_or_load(list(truth), self.table.load, tags=tags_of)
            ) != truth:
                assert loop.time() < deadline, (
                    f"instance {'AB'[index]} answers {got}, the database {truth}, "
                    f"{CONVERGE_SECONDS}s after every fault healed: {cache.stats}"
                )
                await asyncio.sleep(0.01)
            assert await self.read(index, list(truth)) == truth

    def health(self) -> list[dict[str, Any]]:
        wanted = (
            "breaker_state",
            "pending_invalidations",
            "broadcast_connected",
            "redis_errors",
            "redis_timeouts",
            "breaker_opened",
            "breaker_closed",
        )
        return [
            {"status": cache.status, **{name: cache.stats[name] for name in wanted}}
            for cache in self.instances
        ]

    async def recovered(self) -> bool:
        """Every breaker closed, nothing pending, and no outbox row left unapplied (a dead
        writer's row is applied by a relay, not by a probe)."""
        for cache in self.instances:
            if await cache.check() != "ok" or cache.stats["pending_invalidations"]:
                return False
        return not await self.table.outbox.unapplied(1)


def machine_for(database_url: str, server: RedisServer) -> type[CacheMachine]:
    class Bound(CacheMachine):
        pass

    Bound.database_url = database_url
    Bound.redis_server = server
    return Bound


def test_reads_are_never_older_than_own_writes_and_converge_once_healed(
    database_url: str, redis_server: RedisServer
) -> None:
    chosen = int(os.environ.get("STRATA_STATEFUL_SEED") or random.randrange(1 << 32))
    print(f"stateful seed {chosen} (STRATA_STATEFUL_SEED={chosen} replays this run)")
    factory = seed(chosen)(machine_for(database_url, redis_server))
    run_state_machine_as_test(
        factory,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
