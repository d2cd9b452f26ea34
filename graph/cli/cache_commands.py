"""`strata cache …`: what is cached, and steering it, from a terminal (SPEC section 4).

Every command talks to the same Redis and namespace as the running service (same
settings), never uses KEYS, and prints a readable table or, with `--json`, JSON.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any, TypeVar

import httpx
import orjson
import typer
from graphql import GraphQLError
from redis.exceptions import RedisError
from rich.console import Console
from rich.table import Table

from cache import CacheAdmin
from cache.admin import FlushResult
from graph.api.tag_grammar import check_manual_tags
from graph.observability.exposition import Scrape
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


def _server_counters(url: str) -> dict[str, Any] | None:
    """Hit and miss counters of a running server, from its /metrics."""
    try:
        text = httpx.get(f"{url.rstrip('/')}/metrics", timeout=3).text
    except httpx.HTTPError:
        return None
    found = Scrape.of(text)
    counters: dict[str, Any] = {}
    for kind in ("hits", "misses"):
        for tier, value in found.by_label(f"strata_cache_{kind}_total", "tier").items():
            counters[f"{tier}_{kind}"] = value
    for result, value in found.by_label("strata_response_cache_total", "result").items():
        counters[f"response_{result}"] = value
    return counters


@cache_app.command("stats")
def stats(
    server: Annotated[
        str, typer.Option(help="A running server whose /metrics has the hit counters")
    ] = "http://127.0.0.1:8000",
    as_json: JsonOption = False,
) -> None:
    """Hit and miss per tier, sizes, memory and errors."""
    summary = _run(lambda _services, admin: admin.redis_summary())
    served = _server_counters(server)
    report = {"redis": summary, "server": served}
    if as_json:
        _print_json(report)
        return
    table = Table(title=f"cache {summary['namespace']} ({summary['status']})")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in (
        "used_memory_human",
        "maxmemory_policy",
        "namespace_keys",
        "entry_keys",
        "tag_version_keys",
        "integrity_failures",
    ):
        table.add_row(name, str(summary[name]))
    if served is None:
        table.add_row("server", f"not reachable at {server}")
    else:
        for tier, hit, miss in (
            ("response", "response_hit", "response_miss"),
            ("l1", "l1_hits", "l1_misses"),
            ("l2", "l2_hits", "l2_misses"),
        ):
            hits, misses = served.get(hit, 0.0), served.get(miss, 0.0)
            ratio = f"{hits / (hits + misses):.1%}" if hits + misses else "-"
            table.add_row(f"{tier} hits / misses", f"{hits:.0f} / {misses:.0f} ({ratio})")
    console.print(table)


@cache_app.command("keys")
def keys(
    tag: Annotated[str | None, typer.Option(help="Only entries that depend on this tag")] = None,
    pattern: Annotated[str | None, typer.Option(help="Glob on the cache key")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    as_json: JsonOption = False,
) -> None:
    """What is cached: keys, their tags, TTL left and size (SCAN, never KEYS)."""
    found = _run(lambda _s, admin: admin.scan_entries(pattern=pattern, tag=tag, limit=limit))
    if as_json:
        _print_json([asdict(info) for info in found])
        return
    table = Table(title=f"{len(found)} entries")
    for column in ("key", "tags", "ttl (s)", "bytes"):
        table.add_column(column, overflow="fold")
    for info in found:
        ttl = "-" if info.ttl_seconds is None else f"{info.ttl_seconds:.0f}"
        table.add_row(info.key, " ".join(info.tags), ttl, str(info.size_bytes))
    console.print(table)


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
