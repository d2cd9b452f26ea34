"""Each serving process publishes its figures to Redis under a key of its own with a short
TTL (graph/observability/presence.py, cache/instances.py): in process, on a real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from cache.instances import InstanceBoard
from graph.cli.redis_process import RedisServer
from graph.observability.activity import BROADCAST, Activity
from graph.observability.exposition import Scrape
from graph.settings import Settings
from tests.support.api import Api, running_api

BOOKS = "query Books { books(first: 3) { edges { node { id title } } } }"


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def records(api: Api) -> dict[str, dict[str, Any]]:
    found = await api.services.presence.records(timeout_s=2.0)
    return {record["instance"]["id"]: record for record in found}


async def test_a_serving_process_publishes_its_figures_and_withdraws_them_at_shutdown(
    cached_settings: Settings,
) -> None:
    settings = cached_settings.model_copy(
        update={"instance_report_seconds": 0.2, "redis_timeout_ms": 1000}
    )
    async with running_api(settings) as api:
        me = api.services.presence.identity.id
        for _ in range(3):
            await api.data(BOOKS)
        hits = Scrape.of((await api.client.get("/metrics")).text).sum(
            "strata_response_cache_total", result="hit"
        )
        assert hits == 2

        async def published() -> bool:
            mine = (await records(api)).get(me)
            return mine is not None and mine["tiers"]["response"]["hits"] == hits

        await eventually(published, 5, "the record never carried the process's figures")
        record = (await records(api))[me]
        assert record["instance"]["pid"] > 0
        assert record["instance"]["uptime"] >= 0
        assert record["requests"]["total"] == 3
        assert record["hot_keys"], record
        ttl = api.services.presence.ttl_s
        assert ttl == 0.2 * 3
    async with running_api(settings, api.tokens) as other:
        # A clean shutdown withdrew the first record; this process is alone.
        listed = await records(other)
        assert me not in listed
        assert set(listed) <= {other.services.presence.identity.id}


async def test_publishing_waits_out_a_redis_outage_without_failing_a_request(
    redis_server: RedisServer, cached_settings: Settings
) -> None:
    settings = cached_settings.model_copy(
        update={"redis_url": redis_server.url, "instance_report_seconds": 0.2}
    )
    async with running_api(settings) as api:
        me = api.services.presence.identity.id

        async def listed() -> bool:
            try:
                return me in await records(api)
            except Exception:  # Redis away: not listed
                return False

        await eventually(listed, 5, "never published")
        redis_server.stop()
        for _ in range(20):  # the publisher keeps ticking meanwhile
            await api.data(BOOKS)
            await asyncio.sleep(0.02)
        redis_server.start()  # empty: the record died with the old server
        await eventually(listed, 10, "publishing did not resume when Redis came back")


def test_an_instance_hears_its_own_bumps_once_and_others_as_broadcast() -> None:
    activity = Activity()
    activity.invalidated(["Book:1", "Author:2"], "mutation")
    activity.heard(["Book:1"])  # our own bump, coming back in two messages
    activity.heard(["Author:2"])
    assert [(item.source, item.tags) for item in activity.recent] == [
        ("mutation", ("Book:1", "Author:2"))
    ]
    activity.heard(["Book:1"])  # the same tag again: someone else bumped it
    activity.heard(["Review:9"])
    assert [(item.source, item.tags) for item in activity.recent] == [
        (BROADCAST, ("Review:9",)),
        (BROADCAST, ("Book:1",)),
        ("mutation", ("Book:1", "Author:2")),
    ]


async def test_records_that_do_not_parse_are_left_out_of_the_view(
    cached_settings: Settings,
) -> None:
    """A foreign or older writer's record under the same key space must not break the
    dashboard nor `strata cache stats`: it is skipped."""
    settings = cached_settings.model_copy(update={"redis_timeout_ms": 1000})
    async with running_api(settings) as api:
        board = InstanceBoard(api.services.cache, ttl_s=30)
        me = api.services.presence.identity.id
        older = {"instance": {"id": "old", "host": "h", "pid": 1}, "tiers": {}, "requests": {}}
        assert await board.publish("garbage", b"not json")
        assert await board.publish("old", orjson.dumps(older))
        assert await board.publish("list", orjson.dumps([1, 2]))
        answer = await api.client.get("/dashboard/data")
        assert answer.status_code == 200
        rows = answer.json()["deployment"]["instances"]
        assert [row["id"] for row in rows] == [me]

        async def listed() -> list[str]:
            return [r["instance"]["id"] for r in await api.services.presence.records(2.0)]

        async def published() -> bool:
            return me in await listed()

        await eventually(published, 5, "never published")
        assert await listed() == [me]
