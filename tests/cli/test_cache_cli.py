"""`strata cache stats | keys | inspect | invalidate | flush` against the service's Redis."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from graph.services import Services
from graph.settings import Settings
from tests.support.api import Api, prepare_database
from tests.support.outbox import outbox_rows
from tests.support.redis_server import free_port
from tests.support.servers import Server, run_strata, running, server_env
from tests.support.sql_counter import counting_statements


async def strata_cache(settings: Settings, *args: str) -> tuple[int, str]:
    code, out, _err = await run_cache(settings, *args)
    return code, out


async def run_cache(settings: Settings, *args: str, columns: int = 200) -> tuple[int, str, str]:
    """`strata cache ARGS` on a terminal `columns` wide: exit code, stdout, stderr."""
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": str(settings.redis_url),
        "STRATA_CACHE_SECRET": "test-secret",
        "STRATA_CACHE_PREFIX": settings.cache_prefix,
        "STRATA_LOG_LEVEL": "WARNING",
        "COLUMNS": str(columns),
    }
    return await run_strata(env, "cache", *args)


async def json_of(settings: Settings, *args: str) -> Any:
    code, out = await strata_cache(settings, *args, "--json")
    assert code == 0, out
    return json.loads(out)


@pytest.mark.slow
async def test_keys_and_inspect_show_what_is_cached(
    cached_settings: Settings, cached_api: Api
) -> None:
    await cached_api.data('{ book(id: "1") { title reviewCount } }')
    tagged = (await json_of(cached_settings, "keys", "--tag", "Book:1"))["entries"]
    keys = {entry["key"] for entry in tagged}
    assert "Book:1" in keys
    assert all("Book:1" in entry["tags"] for entry in tagged)
    assert all(entry["ttl_seconds"] > 0 for entry in tagged)
    by_pattern = (await json_of(cached_settings, "keys", "--pattern", "Book.review_count:*"))[
        "entries"
    ]
    assert [entry["key"] for entry in by_pattern] == ["Book.review_count:1:"]
    entry = await json_of(cached_settings, "inspect", "Book:1")
    assert entry["valid"] is True
    assert entry["integrity_ok"] is True
    assert (
        entry["value"][1] == (await cached_api.data('{ book(id: "1") { title } }'))["book"]["title"]
    )
    assert {tag["tag"] for tag in entry["tags"]} >= {"Book:1"}
    code, text = await strata_cache(cached_settings, "inspect", "Book:1")
    assert code == 0
    assert "valid" in text


@pytest.mark.slow
async def test_keys_print_one_whole_line_each_that_pastes_into_inspect(
    cached_settings: Settings, cached_api: Api
) -> None:
    """On a terminal far narrower than the keys, each entry is still one line, its key
    first and whole: what a person selects and pastes (the shell unquotes it) is a key
    `inspect` finds; its tags paste into `invalidate --tag`."""
    await cached_api.data('{ books(first: 3, genre: "fantasy") { edges { node { title } } } }')
    await cached_api.data('{ book(id: "1") { title reviewCount averageRating } }')
    listing = await json_of(cached_settings, "keys")
    keys = [entry["key"] for entry in listing["entries"]]
    assert listing["more"] is False
    assert listing["total"] == len(keys)
    longest = max(keys, key=len)
    assert len(longest) > 40, keys

    code, out, err = await run_cache(cached_settings, "keys", columns=40)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(keys), out  # nothing wrapped onto a second line
    pasted = {shlex.split(line)[0]: line for line in lines}
    assert set(pasted) == set(keys)
    assert f"{len(keys)} entries" in err

    line = pasted[longest]
    code, shown, err = await run_cache(cached_settings, "inspect", *shlex.split(line)[:1])
    assert code == 0, err
    assert "valid" in shown
    tags = shlex.split(line.partition("tags: ")[2])
    assert tags, line
    code, out, err = await run_cache(
        cached_settings, "invalidate", "--raw", *(f"--tag={tag}" for tag in tags)
    )
    assert code == 0, err
    entry = await json_of(cached_settings, "inspect", longest)
    assert entry["valid"] is False  # the pasted tags were the entry's own

    code, out, err = await run_cache(cached_settings, "keys", "--limit", "2")
    assert code == 0, err
    assert len(out.splitlines()) == 2
    assert f"showing 2 of {len(keys)} entries" in err
    limited = await json_of(cached_settings, "keys", "--limit", "2")
    assert limited["shown"] == 2
    assert limited["total"] == len(keys)
    assert limited["more"] is True
    by_tag = await json_of(cached_settings, "keys", "--tag", "Book:1", "--limit", "1")
    assert by_tag["more"] is True  # Book:1 and the fields under it
    assert by_tag["total"] is None  # counting by tag would read every entry


@pytest.mark.slow
async def test_invalidate_then_inspect_says_stale(
    cached_settings: Settings, cached_api: Api
) -> None:
    await cached_api.data('{ book(id: "4") { title } }')
    code, out = await strata_cache(cached_settings, "invalidate", "--tag", "Book:4")
    assert code == 0
    assert out.strip() == "invalidated 1 tag"
    entry = await json_of(cached_settings, "inspect", "Book:4")
    assert entry["exists"] is True
    assert entry["valid"] is False
    missing = await strata_cache(cached_settings, "inspect", "Book:99999")
    assert missing[0] == 1


@pytest.mark.slow
async def test_stats_and_flush(cached_settings: Settings, cached_api: Api) -> None:
    query = "{ books(first: 5) { edges { node { title } } } }"
    await cached_api.data(query)
    stats = await json_of(cached_settings, "stats", "--server", "http://127.0.0.1:9")
    assert stats["redis"]["entry_keys"] > 0
    assert stats["redis"]["status"] == "ok"
    assert stats["server"] is None
    flushed = await json_of(cached_settings, "flush")
    assert flushed["global_tag_invalidated"] is True
    assert flushed["deleted_keys"] > 0
    assert (await json_of(cached_settings, "keys"))["entries"] == []
    with counting_statements(cached_api.services.db) as statements:
        await cached_api.data(query)
    assert statements, "after a flush the next read goes to the database"


async def test_strata_cache_invalidate_reaches_a_running_instance(
    cached_settings: Settings, cached_api: Api
) -> None:
    """The operator's command on a terminal, the instance in another process: the bump is
    broadcast, so the running instance drops its L1 copy too."""
    query = '{ book(id: "2") { title } }'
    await cached_api.data(query)
    async with cached_api.services.db.engine.begin() as conn:
        await conn.execute(text("UPDATE books SET title = 'Operator fixed it' WHERE id = 2"))
    assert (await cached_api.data(query))["book"]["title"] != "Operator fixed it"
    code, out = await strata_cache(cached_settings, "invalidate", "--tag", "Book:2")
    assert code == 0
    assert out.strip() == "invalidated 1 tag"
    deadline = time.monotonic() + 5
    while (await cached_api.data(query))["book"]["title"] != "Operator fixed it":
        assert time.monotonic() < deadline, "the broadcast never reached the instance"
        await asyncio.sleep(0.01)


@pytest.mark.slow
async def test_stats_reads_a_running_servers_counters(
    cached_settings: Settings, key_prefix: str, tmp_path: Path
) -> None:
    """`--server` reads the hit and miss counters off the server's /metrics: the figures
    it prints are the server's own, tier by tier."""
    assert cached_settings.redis_url is not None
    await prepare_database(cached_settings.database_url)
    env = server_env(cached_settings.database_url, cached_settings.redis_url, key_prefix)
    server = Server("stats", {**env, "STRATA_CACHE_SECRET": "test-secret"}, tmp_path)
    async with running([server]):
        for _ in range(3):
            await server.data('{ book(id: "1") { title reviewCount } }')
        stats = await json_of(cached_settings, "stats", "--server", str(server.client.base_url))
        counters = stats["server"]
        expected = {
            "l1_hits": await server.metric("strata_cache_hits_total", missing=0.0, tier="l1"),
            "l1_misses": await server.metric("strata_cache_misses_total", missing=0.0, tier="l1"),
            "response_hit": await server.metric(
                "strata_response_cache_total", missing=0.0, result="hit"
            ),
        }
    assert counters["response_hit"] == expected["response_hit"] >= 2
    assert counters["l1_misses"] == expected["l1_misses"] > 0
    assert counters.get("l1_hits", 0.0) == expected["l1_hits"]


@pytest.mark.parametrize(
    "args",
    [("invalidate", "--tag", "Book:1"), ("flush",), ("flush", "--keep")],
    ids=["invalidate", "flush", "flush-keep"],
)
async def test_commands_that_change_the_cache_fail_when_redis_is_unreachable(
    cached_settings: Settings, args: tuple[str, ...]
) -> None:
    """SPEC section 7: never report an invalidation that did not happen."""
    unreachable = cached_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    await prepare_database(unreachable.database_url)
    code, out = await strata_cache(unreachable, *args)
    assert code != 0, out
    assert "invalidated" not in out
    assert "flushed" not in out


@pytest.mark.slow
async def test_invalidate_with_redis_unreachable_is_queued_in_the_outbox_and_applied_later(
    cached_settings: Settings, redis_url: str
) -> None:
    """Issue 13 item 4: the command says it queued the invalidation (and exits non-zero);
    its outbox row is applied by the relay of the next instance that reaches Redis."""
    unreachable = cached_settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"}
    )
    await prepare_database(unreachable.database_url)
    code, out, err = await run_cache(unreachable, "invalidate", "--tag", "Book:1")
    assert code == 1, out
    assert "queued in the outbox: applied when Redis is back" in " ".join(err.split())
    assert "invalidated 1 tag" not in out
    rows = await outbox_rows(cached_settings.database_url)
    assert [(tags, applied) for tags, applied in rows] == [(["Book:1"], False)]

    # An instance reaching Redis applies it at start: the version of Book:1 moves.
    services = Services.create(cached_settings)
    await services.start()
    try:
        tier = services.cache.redis_tier
        assert tier is not None
        await services.cache.relay_pass()
        version = await tier.client.get(tier.keys.tag("Book:1"))
        assert version is not None
        await services.cache.relay_pass()
    finally:
        await services.close()
    rows = await outbox_rows(cached_settings.database_url)
    assert [(tags, applied) for tags, applied in rows] == [(["Book:1"], True)]
