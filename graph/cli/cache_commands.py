"""`strata cache …`: what is cached, and steering it, from a terminal (SPEC section 4).

Every command talks to the same Redis and namespace as the running service (same
settings), never uses KEYS, and prints readable text or, with `--json`, JSON. `keys`
prints one entry per line, never wrapped, so a key pastes whole into `inspect`.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import orjson
import typer
from graphql import GraphQLError
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from cache import CacheAdmin
from cache.admin import FlushResult, KeyInfo
from graph.api.tag_grammar import check_manual_tags
from graph.cli import cache_stats
from graph.services import Services
from graph.settings import Settings

T = TypeVar("T")

cache_app = typer.Typer(no_args_is_help=True, help="Inspect and steer the cache.")
console = Console()
errors = Console(stderr=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts")]


def _run(work: Callable[[Services, CacheAdmin], Awaitable[T]]) -> T:
    """Open the service's cache (no server needed), run `work`, close it."""

    async def run() -> T:
        services = Services.create(Settings())
        if services.settings.redis_url is None:
            errors.print("[red]REDIS_URL is not set: there is no shared cache to look at")
            raise typer.Exit(2)
        await services.start()
        try:
            return await work(services, CacheAdmin(services.cache))
        finally:
            await services.close()

    return asyncio.run(run())


def _print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, default=str, option=orjson.OPT_INDENT_2).decode())
    sys.stdout.write("\n")


@cache_app.command("stats")
def stats(
    server: Annotated[
        str | None,
        typer.Option(
            help="One running server: its hit counters from its /metrics, instead of the "
            "whole deployment's"
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Hit and miss per tier (every live instance added up, and one row per instance),
    sizes, memory and errors."""
    if server is not None:
        summary = _run(lambda _services, admin: admin.redis_summary())
        served = cache_stats.server_counters(server)
        if as_json:
            _print_json({"redis": summary, "server": served, "deployment": None})
            return
        cache_stats.print_server(console, summary, server, served)
        return
    try:
        report = _run(cache_stats.whole_deployment)
    except (RedisError, OSError, TimeoutError) as error:
        errors.print(f"[red]could not read Redis: {error!r}")
        raise typer.Exit(1) from None
    if as_json:
        _print_json({**report, "server": None})
        return
    cache_stats.print_deployment(console, report)


def _listing(
    pattern: str | None, tag: str | None, limit: int
) -> Callable[[Services, CacheAdmin], Awaitable[tuple[list[KeyInfo], int | None]]]:
    """Up to `limit` entries, and how many match in all when there are more (None when
    only reading every entry could tell: a --tag filter)."""

    async def work(_services: Services, admin: CacheAdmin) -> tuple[list[KeyInfo], int | None]:
        found = await admin.scan_entries(pattern=pattern, tag=tag, limit=limit + 1)
        if len(found) <= limit:
            return found, len(found)
        if tag is not None:
            return found[:limit], None
        total, _complete = await admin.count_entries(pattern)
        return found[:limit], max(total, limit + 1)

    return work


def key_line(info: KeyInfo) -> str:
    """One entry on one line, never wrapped: the key first, quoted for a shell only when
    it must be, so it pastes whole into `strata cache inspect`; its tags likewise for
    `strata cache invalidate --tag`."""
    ttl = "-" if info.ttl_seconds is None else f"{info.ttl_seconds:.0f}s"
    tags = " ".join(shlex.quote(tag) for tag in info.tags)
    return f"{shlex.quote(info.key)}  ttl={ttl}  bytes={info.size_bytes}  tags: {tags}"


@cache_app.command("keys")
def keys(
    tag: Annotated[str | None, typer.Option(help="Only entries that depend on this tag")] = None,
    pattern: Annotated[str | None, typer.Option(help="Glob on the cache key")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Show at most this many")] = 100,
    as_json: JsonOption = False,
) -> None:
    """What is cached: one entry per line, its key (as `inspect` takes it), TTL left,
    size and tags (SCAN, never KEYS)."""
    found, total = _run(_listing(pattern, tag, limit))
    more = total is None or total > len(found)
    if as_json:
        entries = [asdict(info) for info in found]
        _print_json({"entries": entries, "shown": len(found), "total": total, "more": more})
        return
    sys.stdout.writelines(key_line(info) + "\n" for info in found)
    sys.stdout.flush()
    if not more:
        errors.print(f"{len(found)} entr{'y' if len(found) == 1 else 'ies'}", highlight=False)
    elif total is None:
        errors.print(
            f"showing the first {len(found)}; there are more (raise --limit)", highlight=False
        )
    else:
        errors.print(f"showing {len(found)} of {total} entries (raise --limit)", highlight=False)


@cache_app.command("inspect")
def inspect(key: str, as_json: JsonOption = False) -> None:
    """One entry: its value decoded, its tags and their versions, TTL left and size."""
    found = _run(lambda _s, admin: admin.inspect(key))
    if as_json:
        _print_json(asdict(found))
        return
    if not found.exists:
        console.print(f"[yellow]{key}: not in Redis")
        raise typer.Exit(1)
    state = "valid" if found.valid else "stale (a read would not serve it)"
    if not found.integrity_ok:
        state = f"fails its integrity check: {found.integrity_error}"
    console.print(f"[bold]{key}[/bold]  {state}")
    ttl = "-" if found.ttl_seconds is None else f"{found.ttl_seconds:.0f} s"
    console.print(f"size {found.size_bytes} bytes, TTL left {ttl}")
    table = Table("tag", "recorded", "current", "ok")
    for tag in found.tags:
        table.add_row(tag.tag, str(tag.recorded), str(tag.current), "yes" if tag.valid else "no")
    console.print(table)
    value = found.value if found.found else "(cached: does not exist)"
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    console.print(value)


@cache_app.command("invalidate")
def invalidate(
    tag: Annotated[list[str], typer.Option("--tag", help="A tag to bump; repeat for more")],
    raw: Annotated[
        bool, typer.Option("--raw", help="Bump the tags as given, even outside the tag grammar")
    ] = False,
) -> None:
    """Invalidate every cached value that depends on the given tags, on every instance.
    Tags must be of a form the app uses (see the README); --raw bumps any tag."""
    try:
        if not raw:
            check_manual_tags(tag)
        bumped, pending = _run(_invalidate_and_check(tag))
    except GraphQLError as error:  # the tags were refused
        errors.print(f"[red]{error.message}")
        raise typer.Exit(2) from None
    if pending:
        # Never report an invalidation that did not happen (SPEC section 7). It is not
        # lost either: its outbox row stays unapplied until a relay applies it.
        errors.print(
            f"[red]could not reach Redis: {bumped} tag{'s' if bumped != 1 else ''} NOT "
            "invalidated yet; queued in the outbox: applied when Redis is back (by any "
            "running instance's relay)"
        )
        raise typer.Exit(1)
    print(f"invalidated {bumped} tag{'s' if bumped != 1 else ''}")


def _invalidate_and_check(
    tags: list[str],
) -> Callable[[Services, CacheAdmin], Awaitable[tuple[int, int]]]:
    async def work(services: Services, _admin: CacheAdmin) -> tuple[int, int]:
        bumped = await services.invalidate_tags(tags, "cli")
        return bumped, int(services.cache.stats["pending_invalidations"])

    return work


async def _flush_and_check(
    services: Services, admin: CacheAdmin, delete: bool
) -> FlushResult | None:
    """The flush, or None when Redis did not take it."""
    try:
        result = await admin.flush(delete_keys=delete)
    except (RedisError, OSError, TimeoutError):
        return None
    return None if services.cache.stats["pending_invalidations"] else result


@cache_app.command("flush")
def flush(
    delete: Annotated[
        bool, typer.Option("--delete/--keep", help="Also delete the keys to free memory")
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Drop everything cached under this service's namespace, on every instance."""
    result = _run(lambda services, admin: _flush_and_check(services, admin, delete))
    if result is None:
        errors.print("[red]could not reach Redis: nothing was flushed")
        raise typer.Exit(1)
    if as_json:
        _print_json(asdict(result))
        return
    print(f"flushed: every entry invalidated, {result.deleted_keys} keys deleted")
