"""The outbox and its relay (SPEC 7a), on real Redis and a real database (SQLite and
PostgreSQL): rows applied by whichever instance gets there, marks cleared when another
applied them, unapplied rows pending from the start, large invalidations split, applied
rows pruned."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from sqlalchemy import insert

from cache import TieredCache
from cache.health import MAX_TAGS_PER_BUMP
from cache.relay import COMMIT_WINDOW_S, ROWS_PER_PASS
from models import Database
from models.outbox import DatabaseOutbox
from models.tables import OUTBOX
from tests.cache.conftest import Source, eventually, own_tag, start_engine
from tests.support.redis_server import RedisServer, free_port

NO_GRACE = {"outbox_grace_seconds": 0.0, "outbox_relay_seconds": 3600.0}
"""The relay runs only when a test calls ``relay_pass``, and applies every row at once."""
LONG_GRACE = {"outbox_grace_seconds": 3600.0, "outbox_relay_seconds": 3600.0}
"""The relay never applies a row itself (a writer still in its grace period)."""


async def engine(
    made: list[TieredCache], redis_url: str, prefix: str, outbox: DatabaseOutbox, **over: Any
) -> TieredCache:
    return await start_engine(made, redis_url, prefix, outbox, degraded_l1_ttl=30.0, **over)


async def applied(outbox: DatabaseOutbox) -> list[bool]:
    rows = await outbox.since(0, time.time() + 60, 100)
    return [row.applied for row in rows]


async def version(client: aioredis.Redis, cache: TieredCache, tag: str) -> int:
    tier = cache.redis_tier
    assert tier is not None
    return int(await client.get(tier.keys.tag(tag)) or 0)


async def test_a_write_applies_its_row_and_marks_it(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    writer = await engine(engines, redis_url, key_prefix, outbox)
    row = await outbox.record(["k"])
    assert await writer.invalidate(["k"], row=row) == 1
    assert writer.stats["pending_invalidations"] == 0
    await writer.close()  # waits for the mark in flight
    assert await applied(outbox) == [True]


async def test_a_row_whose_writer_died_is_applied_by_another_instance(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """The write committed (data and row), its process died before the bump: any other
    instance's relay applies it, and nobody serves the old value after that."""
    source = Source({"k": "old"})
    reader = await engine(engines, redis_url, key_prefix, outbox, **NO_GRACE)
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "old"}
    source.data["k"] = "new"
    await outbox.record(["k"])  # committed with the change; no bump followed

    await reader.relay_pass()
    assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    fresh = await engine(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    assert await fresh.get_many_or_load(["k"], Source({"k": "new"}).load, tags=own_tag) == {
        "k": "new"
    }
    await reader.close()
    assert await applied(outbox) == [True]


async def test_an_instance_starting_marks_unapplied_rows_pending(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Before it serves: an L2 entry a row covers is not believed, even if no relay has
    applied the row yet."""
    writer = await engine(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    assert await writer.get_many_or_load(["k"], Source({"k": "old"}).load, tags=own_tag) == {
        "k": "old"
    }  # in L2
    await outbox.record(["k"])
    started = await engine(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    assert started.stats["pending_invalidations"] == 1
    source = Source({"k": "new"})
    assert await started.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}
    assert started.stats["l2_hits"] == 0


async def test_the_relay_clears_marks_of_rows_another_instance_applied(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """Model finding 4: a mark of a row someone else applied must go, or the tags it covers
    are never cached again on this instance. Cleared, not bumped again: a second bump
    would drop every entry of the tag cached since the first, on every instance."""
    await outbox.record(["k"])
    waiting = await engine(engines, redis_url, key_prefix, outbox, **LONG_GRACE)
    assert waiting.stats["pending_invalidations"] == 1
    applier = await engine(engines, redis_url, key_prefix, outbox, **NO_GRACE)
    await applier.relay_pass()
    client = aioredis.Redis.from_url(redis_url)
    try:
        bumped = await version(client, applier, "k")
        await applier.close()
        assert await applied(outbox) == [True]

        await waiting.relay_pass()
        assert waiting.stats["pending_invalidations"] == 0
        assert await version(client, waiting, "k") == bumped  # not bumped a second time
    finally:
        await client.aclose()
    source = Source({"k": "v"})
    for _ in range(3):
        assert await waiting.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "v"}
    assert source.reads == 1  # cached again


async def test_a_row_whose_bump_redis_refused_stays_unapplied(
    engines: list[TieredCache], redis_server: RedisServer, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    """A row is marked applied only after Redis applied its bump: one marked before would
    be skipped by every relay, and the bump it carries lost for good."""
    client = aioredis.Redis.from_url(redis_server.url)
    try:
        writer = await engine(engines, redis_server.url, key_prefix, outbox, **LONG_GRACE)
        await client.replicaof("127.0.0.1", free_port())  # refuses every write
        row = await outbox.record(["k"])
        await writer.invalidate(["k"], row=row)
        assert writer.stats["pending_invalidations"] == 1
        await writer.close()  # waits for any mark in flight
        assert await applied(outbox) == [False]

        await client.replicaof("NO", "ONE")
        applier = await engine(engines, redis_server.url, key_prefix, outbox, **NO_GRACE)
        await applier.relay_pass()
        await applier.close()
        assert await applied(outbox) == [True]
    finally:
        await client.aclose()


async def test_a_large_invalidation_is_split_into_calls_never_cut(
    engines: list[TieredCache],
    redis_url: str,
    key_prefix: str,
    outbox: DatabaseOutbox,
    redis_client: aioredis.Redis,
) -> None:
    """Reproduction 3c's engine half: more tags than one call takes are all bumped."""
    cache = await engine(engines, redis_url, key_prefix, outbox)
    tags = [f"Review:{n}" for n in range(MAX_TAGS_PER_BUMP * 2 + 500)]
    source = Source({tag: "old" for tag in tags})
    await cache.get_many_or_load(tags[-3:], source.load, tags=own_tag)
    before = [await version(redis_client, cache, tag) for tag in tags[-3:]]
    row = await outbox.record(tags)
    rounds = cache.stats["redis_round_trips"]
    assert await cache.invalidate(tags, row=row) == len(tags)
    assert cache.stats["redis_round_trips"] == rounds + 1  # one guarded call
    assert cache.stats["pending_invalidations"] == 0
    after = [await version(redis_client, cache, tag) for tag in tags[-3:]]
    assert all(new > old for new, old in zip(after, before, strict=True))
    source.data.update({tag: "new" for tag in tags})
    got = await cache.get_many_or_load(tags[-3:], source.load, tags=own_tag)
    assert set(got.values()) == {"new"}


async def test_applied_rows_are_pruned_after_the_retention(
    engines: list[TieredCache], redis_url: str, key_prefix: str, outbox: DatabaseOutbox
) -> None:
    old = await outbox.record(["a"])
    await outbox.mark_applied([old])
    await outbox.record(["b"])  # unapplied: never pruned
    assert await outbox.prune(time.time() + 1) == 1
    assert await applied(outbox) == [False]
    done = await outbox.record(["c"])
    await outbox.mark_applied([done])
    await asyncio.sleep(0.01)  # past the 1 ms retention below
    cache = await engine(
        engines, redis_url, key_prefix, outbox, outbox_retention_seconds=0.001, **LONG_GRACE
    )
    await cache.relay_pass()  # its first pass prunes (and applies "b", pending since start)
    rows = await outbox.since(0, time.time() + 60, 100)
    assert [row.tags for row in rows] == [("b",)]


async def test_an_instance_whose_broadcast_is_lost_learns_writes_from_the_outbox(
    engines: list[TieredCache],
    redis_server: RedisServer,
    key_prefix: str,
    outbox: DatabaseOutbox,
) -> None:
    """B connects as its own Redis user; revoking its channels drops B's subscription
    (and refuses a new one) while its reads go on. A write's broadcast then never reaches
    B: its relay's poll of the outbox drops what the new row covers."""
    async with cuttable_pair(engines, redis_server, key_prefix, outbox) as (writer, reader, cut):
        await cut()
        await reader.relay_pass()  # the poll right after the loss: nothing new yet

        source = Source({"k": "old"})
        assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "old"}
        source.data["k"] = "new"
        await writer.invalidate(["k"], row=await outbox.record(["k"]))
        # Not told: B's L1 entry still matches its view (this is the gap polling closes).
        assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "old"}
        await reader.relay_pass()
        assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


@asynccontextmanager
async def cuttable_pair(
    engines: list[TieredCache], server: RedisServer, prefix: str, outbox: DatabaseOutbox
) -> AsyncIterator[tuple[TieredCache, TieredCache, Callable[[], Awaitable[None]]]]:
    """A writer, and a reader connected as its own Redis user "b", with a ``cut()`` that
    revokes that user's channels: the reader's subscription drops (a new one is refused)
    while its reads go on."""
    admin = aioredis.Redis.from_url(server.url)
    try:
        await admin.acl_setuser(
            "b", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"], categories=["+@all"]
        )
        b_url = f"redis://b:pw@127.0.0.1:{server.port}/0"
        writer = await engine(engines, server.url, prefix, outbox, **LONG_GRACE)
        reader = await engine(engines, b_url, prefix, outbox, **LONG_GRACE)
        await eventually(lambda: reader.broadcast_connected)

        async def cut() -> None:
            await admin.acl_setuser("b", enabled=True, reset_channels=True)
            await eventually(lambda: not reader.broadcast_connected)

        yield writer, reader, cut
    finally:
        await admin.aclose()


async def test_polling_starts_at_the_first_unapplied_row_not_the_newest(
    engines: list[TieredCache],
    redis_server: RedisServer,
    key_prefix: str,
    outbox: DatabaseOutbox,
    database_url: str,
) -> None:
    """Model finding 4's second half: a row committed before B lost its broadcast and
    applied after (its bump published to nobody on B's side) is still read by B's poll,
    even when it is older than the window polling rereads anyway (a writer stuck for
    minutes, Redis refusing its bump)."""
    async with cuttable_pair(engines, redis_server, key_prefix, outbox) as (writer, reader, cut):
        source = Source({"k": "old"})
        assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "old"}
        row = await old_row(database_url, ["k"], age=COMMIT_WINDOW_S * 2)
        source.data["k"] = "new"  # committed with the row; the writer has not bumped yet
        await reader.relay_pass()  # connected: only remembers where polling would start

        await cut()
        await reader.get_many_or_load(["k"], source.load, tags=own_tag)  # L1 refilled
        await reader.relay_pass()
        await writer.invalidate(["k"], row=row)  # applied; its broadcast misses B
        await reader.relay_pass()
        assert await reader.get_many_or_load(["k"], source.load, tags=own_tag) == {"k": "new"}


async def old_row(database_url: str, tags: list[str], age: float) -> int:
    """An unapplied row written ``age`` seconds ago."""
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            statement = insert(OUTBOX).values(tags=tags, created_at=time.time() - age)
            row_id: int = (await conn.execute(statement.returning(OUTBOX.c.id))).scalar_one()
            return row_id
    finally:
        await db.dispose()


async def test_an_instance_starting_marks_every_unapplied_row_not_only_one_page(
    engines: list[TieredCache], redis_url: str, key_prefix: str, database_url: str
) -> None:
    count = ROWS_PER_PASS + 5
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            rows = [{"tags": [f"t{n}"], "created_at": time.time()} for n in range(count)]
            await conn.execute(insert(OUTBOX), rows)
        started = await engine(engines, redis_url, key_prefix, DatabaseOutbox(db), **LONG_GRACE)
        assert started.stats["pending_invalidations"] == count
    finally:
        await db.dispose()
