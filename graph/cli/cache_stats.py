"""What `strata cache stats` shows: Redis's side (memory, key counts), and the hit and miss
counters either of the whole deployment (every live instance's published record, added
up, one row per instance) or, with `--server URL`, of one server's /metrics."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from cache import CacheAdmin
from graph.observability import deployment
from graph.observability.exposition import Scrape
from graph.observability.figures import TIERS
from graph.services import Services

REDIS_FIGURES = (
    "used_memory_human",
    "maxmemory_policy",
    "namespace_keys",
    "entry_keys",
    "tag_version_keys",
    "integrity_failures",
)
RECORDS_TIMEOUT_S = 3.0


def server_counters(url: str) -> dict[str, Any] | None:
    """Hit and miss counters of a running server, from its /metrics."""
    import httpx  # only this command needs it: not imported by `strata serve` (graph/cli/main.py)

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


async def whole_deployment(services: Services, admin: CacheAdmin) -> dict[str, Any]:
    """Redis's summary and the deployment's view, read in one session."""
    summary = await admin.redis_summary()
    records = await services.presence.records(RECORDS_TIMEOUT_S)
    return {"redis": summary, "deployment": deployment.view(records, services.cache.status)}


def ratio_text(hits: float, misses: float) -> str:
    return f"{hits / (hits + misses):.1%}" if hits + misses else "-"


def seconds_text(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def uptime_text(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def redis_table(summary: Mapping[str, Any]) -> Table:
    table = Table(title="Redis")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name in REDIS_FIGURES:
        table.add_row(name, str(summary[name]))
    return table


def tiers_table(title: str, tiers: Mapping[str, Mapping[str, Any]]) -> Table:
    table = Table(title=title)
    for column in ("tier", "hits", "misses", "hit ratio"):
        table.add_column(column, justify="left" if column == "tier" else "right")
    for name in TIERS:
        hits, misses = tiers[name]["hits"], tiers[name]["misses"]
        table.add_row(name, f"{hits:.0f}", f"{misses:.0f}", ratio_text(hits, misses))
    return table


def instances_table(rows: Sequence[Mapping[str, Any]]) -> Table:
    table = Table(title="one row per live instance (every worker process)")
    for column in ("instance", "host", "pid", "up", "requests", *TIERS, "p50", "p95"):
        table.add_column(column, justify="left" if column in ("instance", "host") else "right")
    for row in rows:
        tiers = row["tiers"]
        table.add_row(
            row["id"],
            row["host"],
            str(row["pid"]),
            uptime_text(row["uptime"]),
            f"{row['requests']:.0f}",
            *(ratio_text(tiers[n]["hits"], tiers[n]["misses"]) for n in TIERS),
            seconds_text(row["latency"]["p50"]),
            seconds_text(row["latency"]["p95"]),
        )
    return table


def heading(console: Console, summary: Mapping[str, Any]) -> None:
    # A line of its own: a table title would wrap a long namespace.
    console.print(f"cache {summary['namespace']} ({summary['status']})", soft_wrap=True)


def print_deployment(console: Console, report: Mapping[str, Any]) -> None:
    heading(console, report["redis"])
    console.print(redis_table(report["redis"]))
    view = report["deployment"]
    count = view["instance_count"]
    if not count:
        console.print(
            "no live instance has published its figures (a server publishes every few "
            "seconds while it runs; use --server URL to read one server's /metrics)"
        )
        return
    totals = view["totals"]
    plural = "s" if count != 1 else ""
    console.print(
        tiers_table(f"deployment: {count} live instance{plural}, added up", totals["tiers"])
    )
    for name in TIERS:
        note = totals["tiers"][name].get("note")
        if note:
            console.print(f"{name}: {note}", soft_wrap=True)
    console.print(instances_table(view["instances"]))


def print_server(console: Console, summary: Mapping[str, Any], server: str, served: Any) -> None:
    heading(console, summary)
    table = redis_table(summary)
    if served is None:
        table.add_row("server", f"not reachable at {server}")
    else:
        for tier, hit, miss in (
            ("response", "response_hit", "response_miss"),
            ("l1", "l1_hits", "l1_misses"),
            ("l2", "l2_hits", "l2_misses"),
        ):
            hits, misses = served.get(hit, 0.0), served.get(miss, 0.0)
            table.add_row(
                f"{tier} hits / misses", f"{hits:.0f} / {misses:.0f} ({ratio_text(hits, misses)})"
            )
    console.print(table)
