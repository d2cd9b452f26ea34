"""Adversarial checks of the fast lane of /graphql (graph/web/replays.py): a replayed
reply must be the reply, the figures and the memory the normal hit path would give, on
every way a request can differ and every event that changes what a lookup finds."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
from collections.abc import AsyncIterator, Awaitable, Mapping
from functools import partial
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from cache.strawberry.response_cache import StoredResponse
from graph.observability.exposition import parse
from graph.settings import Settings
from graph.web.replays import REPLAYS_BYTES, Replays
from tests.support.api import Api, running_api
from tests.support.lookups import Lookups
from tests.support.redis_server import RedisServer, fill_until_refused

BOOKS = '{ books(authorId: "1", first: 3) { edges { node { id title } } } }'
RENAME = 'mutation { updateBook(id: "1", input: {title: "Renamed"}) { id } }'


def _settings(cached_settings: Settings, **overrides: Any) -> Settings:
    return cached_settings.model_copy(update={"redis_timeout_ms": 1000, **overrides})


@pytest.fixture
async def api(cached_settings: Settings) -> AsyncIterator[Api]:
    async with running_api(_settings(cached_settings)) as api:
        yield api


def replays_of(api: Api) -> Replays:
    """The endpoint's fast lane, found under the app's middleware."""
    front: Any = api.client._transport.app  # type: ignore[attr-defined]
    endpoint = front._graphql
    while not hasattr(endpoint, "_replays"):
        endpoint = endpoint.app
    replays: Replays = endpoint._replays
    return replays


def _get_url(query: str) -> str:
    return f"/graphql?{httpx.QueryParams({'query': query})}"


async def test_the_memo_counts_every_body_it_keeps_alive(api: Api) -> None:
    """`If-None-Match: *` makes every hit a 304 with an empty body: the memo must not keep
    the stored response alive beside it (it would pin up to 256 KiB an entry, uncounted,
    also after L1 let it go), so what it holds stays within its byte count."""
    memo = replays_of(api)._memo
    for name in ("a", "b", "c"):
        url = _get_url(_wide(name, 30))  # ~185 kB each
        for _ in range(2):  # a miss, then an L1 hit that the memo remembers
            assert (await api.client.get(url, headers={"If-None-Match": "*"})).status_code == 304
    assert len(memo) == 3
    assert memo.bytes <= REPLAYS_BYTES
    # Within a factor of two of what it holds (headers and line templates are estimated).
    assert _bytes_held(memo._entries) <= 2 * memo.bytes


def _bytes_held(root: object) -> int:
    """The bytes of every bytes and str object reachable from `root` through containers
    and this project's own objects (not through types, modules or functions)."""
    seen: set[int] = set()
    total = 0
    pending = [root]
    while pending:
        item = pending.pop()
        if id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, (bytes, bytearray, str)):
            total += len(item)
        elif isinstance(item, (tuple, list, dict, set, frozenset)) or type(
            item
        ).__module__.startswith(("graph.", "cache.")):
            pending.extend(gc.get_referents(item))
    return total


async def test_a_write_on_another_instance_ends_the_replays(
    api: Api, cached_settings: Settings
) -> None:
    lookups = Lookups(api)
    for _ in range(2):
        await api.post(BOOKS)
    assert await lookups.made_by(lambda: api.post(BOOKS)) == 0
    async with running_api(_settings(cached_settings), api.tokens) as other:
        await other.data(RENAME, token=other.admin_token)
    for _ in range(100):  # the broadcast: within milliseconds
        if "Renamed" in (await api.post(BOOKS)).text:
            break
        await asyncio.sleep(0.02)
    assert "Renamed" in (await api.post(BOOKS)).text


async def test_invalidate_cache_by_hand_ends_the_replays(api: Api) -> None:
    lookups = Lookups(api)
    for _ in range(2):
        await api.post(BOOKS)
    assert await lookups.made_by(lambda: api.post(BOOKS)) == 0
    await api.data('mutation { invalidateCache(tags: ["Book:1"]) }', token=api.admin_token)
    assert await lookups.made_by(lambda: api.post(BOOKS)) == 1


async def test_each_origin_gets_its_own_cors_headers_from_a_replay(
    cached_settings: Settings,
) -> None:
    settings = _settings(cached_settings, cors_origins=["https://a.example", "https://b.example"])
    async with running_api(settings) as api:
        lookups = Lookups(api)
        url = _get_url(BOOKS)
        etag = (await api.client.get(url)).headers["etag"]

        def get(origin: str, if_none_match: str | None = None) -> Awaitable[httpx.Response]:
            headers = {"Origin": origin}
            if if_none_match is not None:
                headers["If-None-Match"] = if_none_match
            return api.client.get(url, headers=headers)

        for if_none_match in (None, etag):
            await get("https://a.example", if_none_match)  # remembered
            assert await lookups.made_by(partial(get, "https://b.example", if_none_match)) == 0
            for origin in ("https://a.example", "https://b.example", "https://evil.example"):
                reply = await get(origin, if_none_match)
                allowed = reply.headers.get("access-control-allow-origin")
                assert allowed == (None if "evil" in origin else origin)
                assert "Origin" in reply.headers["vary"]


def _counts(values: Mapping[Any, object]) -> dict[Any, float]:
    """The counts of a scrape or of the engine's statistics (durations and text left out:
    no two requests take the same time)."""
    return {
        name: float(value)
        for name, value in values.items()
        if isinstance(value, (int, float))
        and not (isinstance(name, tuple) and name[0].endswith(("_bucket", "_sum")))
    }


def _moved(before: dict[Any, float], after: dict[Any, float]) -> dict[Any, float]:
    moves = {name: after.get(name, 0.0) - before.get(name, 0.0) for name in {*before, *after}}
    return {name: move for name, move in moves.items() if move}


async def test_a_replay_moves_every_count_a_normal_hit_moves(api: Api) -> None:
    """Every series on /metrics, every engine counter and the dashboard's hottest keys
    move by what the hits the replays stand for moved them by: not only the three series
    the lane observes. Four ways of asking for one response (the hot keys count one read
    in four): four hits, then the four replays of them."""

    async def counts() -> dict[Any, float]:
        scrape = parse((await api.client.get("/metrics")).text)
        hot = (await api.client.get("/dashboard/data")).json()["hot_keys"]
        return {
            **_counts(scrape),
            **_counts(api.services.cache.stats),
            **{("hot", row["key"]): float(row["reads"]) for row in hot},
        }

    lookups = Lookups(api)
    urls = [_get_url(BOOKS) + f"&ask={n}" for n in range(4)]  # one response, four sources
    await api.client.get(urls[0])  # a miss
    before = await counts()
    for url in urls:
        assert await lookups.made_by(partial(api.client.get, url)) == 1  # a hit
    middle = await counts()
    for url in urls:
        assert await lookups.made_by(partial(api.client.get, url)) == 0  # its replay
    after = await counts()
    by_hits = _moved(before, middle)
    assert by_hits  # the comparison compares something
    assert _moved(middle, after) == by_hits


def _wide(name: str, aliases: int) -> str:
    """A query whose response is `aliases` copies of one list: a large L1 value."""
    node = "id title isbn genre publishedYear price"
    fields = " ".join(
        f"{name}{n}: books(first: 48) {{ edges {{ node {{ {node} }} }} }}" for n in range(aliases)
    )
    return f"{{ {fields} }}"


async def test_a_replayed_key_stays_as_recent_in_l1_as_a_hit_would_keep_it(
    cached_settings: Settings,
) -> None:
    """L1's large values live in an LRU: a hit read from L1 makes its key the most recent.
    A replay stands for such a hit, so it must tell L1 too: under eviction the entry
    replayed last stays before one merely read once (else its next request goes to L2)."""
    async with running_api(_settings(cached_settings, l1_max_mib=1)) as api:
        tiers: list[str] = []
        lookup = api.services.responses.lookup

        async def seen(key: str, viewer: str | None) -> StoredResponse | None:
            found = await lookup(key, viewer)
            tiers.append("none" if found is None else found.tier)
            return found

        api.services.responses.lookup = seen  # type: ignore[method-assign]
        hot, warm, new = (_get_url(_wide(name, 30)) for name in ("hot", "warm", "new"))
        assert len((await api.client.get(hot)).content) > 150_000  # a third of L1's LRU
        await api.client.get(hot)  # an L1 hit
        await api.client.get(warm)  # filled: every lease ends
        await api.client.get(hot)  # an L1 hit, remembered with its lease
        await api.client.get(warm)  # an L1 hit: now the more recent of the two
        tiers.clear()
        await api.client.get(hot)  # replayed: no lookup, no L1 read
        assert tiers == []
        await api.client.get(new)  # filled: one of the two must go
        tiers.clear()
        await api.client.get(hot)
        assert tiers == ["L1"]


async def _replayed(api: Api, lookups: Lookups, query: str = BOOKS) -> None:
    """`query` asked until the fast lane answers it (a miss, a hit, then replays)."""
    for _ in range(2):
        await api.post(query)
    assert await lookups.made_by(lambda: api.post(query)) == 0


async def test_a_write_ends_the_replays_while_redis_refuses_writes(
    cached_settings: Settings, own_redis: RedisServer
) -> None:
    async with running_api(_settings(cached_settings, redis_url=own_redis.url)) as api:
        lookups = Lookups(api)
        await _replayed(api, lookups)
        client = aioredis.Redis.from_url(own_redis.url)
        try:
            await fill_until_refused(client)
            await api.data(RENAME, token=api.admin_token)  # its bump stays pending
            for _ in range(5):
                assert "Renamed" in (await api.post(BOOKS)).text
            await client.config_set("maxmemory", "0")
        finally:
            await client.aclose()
        for _ in range(5):
            assert "Renamed" in (await api.post(BOOKS)).text


async def test_a_write_ends_the_replays_while_redis_is_down(
    cached_settings: Settings, own_redis: RedisServer
) -> None:
    async with running_api(_settings(cached_settings, redis_url=own_redis.url)) as api:
        lookups = Lookups(api)
        await _replayed(api, lookups)
        own_redis.stop()
        assert await lookups.made_by(lambda: api.post(BOOKS)) <= 1  # served all the same
        await api.data(RENAME, token=api.admin_token)
        for _ in range(5):
            assert "Renamed" in (await api.post(BOOKS)).text
        own_redis.start()
        for _ in range(5):
            assert "Renamed" in (await api.post(BOOKS)).text


async def test_creating_what_was_not_found_ends_its_replays(api: Api) -> None:
    lookups = Lookups(api)
    missing = '{ book(id: "49") { id title } }'
    assert (await api.data(missing)) == {"book": None}
    await _replayed(api, lookups, missing)
    created = await api.data(
        'mutation { createBook(input: {title: "New", isbn: "979-0000000001", genre: "poetry",'
        ' publishedYear: 2024, price: 12.5, authorId: "1"}) { id } }',
        token=api.admin_token,
    )
    assert created == {"createBook": {"id": "49"}}
    assert (await api.data(missing)) == {"book": {"id": "49", "title": "New"}}


async def test_each_way_of_asking_is_replayed_its_own_reply(api: Api) -> None:
    """Media type, method and If-None-Match each decide the reply: a replay of one is
    never the answer to another."""
    lookups = Lookups(api)
    url = _get_url(BOOKS)
    asks: list[tuple[str, dict[str, str]]] = [
        ("GET", {}),
        ("GET", {"Accept": "application/graphql-response+json"}),
        ("HEAD", {}),
        ("HEAD", {"Accept": "application/graphql-response+json"}),
    ]
    first = {}
    for method, headers in asks:
        for _ in range(2):
            first[method, headers.get("Accept")] = await api.client.request(
                method, url, headers=headers
            )
    for method, headers in asks:
        answer = first[method, headers.get("Accept")]
        count = await lookups.made_by(partial(api.client.request, method, url, headers=headers))
        assert count == 0
        replayed = await api.client.request(method, url, headers=headers)
        assert (replayed.status_code, replayed.content) == (answer.status_code, answer.content)
        assert replayed.headers == answer.headers
    for accept in ("application/graphql-response+json", None):
        assert first["GET", accept].headers["content-type"] == (accept or "application/json")
        assert first["HEAD", accept].content == b""


async def test_with_stats_exposed_every_hit_reports_its_own_figures(
    cached_settings: Settings,
) -> None:
    """A remembered reply would carry the figures of the hit it was made for (its
    duration among them): with stats exposed nothing may be replayed."""
    async with running_api(_settings(cached_settings, expose_cache_stats=True)) as api:
        lookups = Lookups(api)
        await api.post(BOOKS)
        for _ in range(3):
            assert await lookups.made_by(lambda: api.post(BOOKS)) == 1


async def test_a_persisted_query_by_hash_is_never_replayed(api: Api) -> None:
    """Its document comes from the persisted queries, not from the request's bytes: a
    replay would answer a hash the store may no longer hold."""
    query = '{ book(id: "3") { title } }'
    sha = hashlib.sha256(query.encode()).hexdigest()
    extensions = json.dumps({"persistedQuery": {"version": 1, "sha256Hash": sha}})
    lookups = Lookups(api)
    registered = await api.client.post(
        "/graphql", json={"query": query, "extensions": json.loads(extensions)}
    )
    for _ in range(3):
        count = await lookups.made_by(
            partial(api.client.get, "/graphql", params={"extensions": extensions})
        )
        assert count == 1
    by_hash = await api.client.get("/graphql", params={"extensions": extensions})
    assert by_hash.content == registered.content


@pytest.mark.parametrize("query", [BOOKS, "query Named" + BOOKS])
async def test_a_replay_logs_the_line_a_real_hit_logs(
    cached_settings: Settings, capsys: pytest.CaptureFixture[str], query: str
) -> None:
    """Field by field, the line of a hit as the normal path wrote it and its replay's."""
    settings = _settings(cached_settings, log_level="INFO", log_format="json")
    async with running_api(settings) as api:
        lookups = Lookups(api)
        await api.post(query)
        capsys.readouterr()
        assert await lookups.made_by(lambda: api.post(query)) == 1
        assert await lookups.made_by(lambda: api.post(query)) == 0
        assert api.services.operation_lines is not None
        api.services.operation_lines.flush()
        lines = [
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if '"event":"operation"' in line
        ]
    hit, replayed = lines
    assert hit["response"] == "hit"
    assert set(replayed) == set(hit)
    for line in (hit, replayed):
        del line["duration_ms"], line["timestamp"]
    assert replayed == hit


async def test_a_replay_measures_the_duration_a_hit_measures(
    cached_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A client that sends its body slowly: the normal path starts the operation's clock
    once the body is read, and so must the fast lane, or the same hit would be logged and
    observed (operation histogram) as the slow client's upload time."""
    settings = _settings(cached_settings, log_level="INFO", log_format="json")
    body = json.dumps({"query": BOOKS}).encode()

    async def slowly() -> AsyncIterator[bytes]:
        yield body[:10]
        await asyncio.sleep(0.5)
        yield body[10:]

    async with running_api(settings) as api:
        lookups = Lookups(api)

        def post() -> Awaitable[httpx.Response]:
            headers = {"Content-Type": "application/json"}
            return api.client.post("/graphql", content=slowly(), headers=headers)

        await post()
        capsys.readouterr()
        assert await lookups.made_by(post) == 1
        assert await lookups.made_by(post) == 0
        assert api.services.operation_lines is not None
        api.services.operation_lines.flush()
        hit, replayed = (
            json.loads(line)
            for line in capsys.readouterr().err.splitlines()
            if '"event":"operation"' in line
        )
    assert hit["duration_ms"] < 400  # the upload took 500 ms
    assert replayed["duration_ms"] < 400


async def test_replays_end_with_the_short_l1_ttl_of_a_degraded_fill(
    cached_settings: Settings, own_redis: RedisServer
) -> None:
    """Filled while Redis is away, an entry lives in L1 for `degraded_l1_ttl` only (the
    broadcast may be missing invalidations): so do the replays of it."""
    async with running_api(_settings(cached_settings, redis_url=own_redis.url)) as api:
        cache = api.services.cache
        own_redis.stop()
        for _ in range(50):
            await api.post('{ book(id: "2") { title } }')  # Redis calls fail
            if cache.status == "degraded":
                break
        assert cache.status == "degraded"
        lookups = Lookups(api)
        await _replayed(api, lookups)
        await asyncio.sleep(cache.config.degraded_l1_ttl + 0.1)
        assert await lookups.made_by(lambda: api.post(BOOKS)) == 1
