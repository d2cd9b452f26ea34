"""The response-cache hit path (issue 15), measured in interleaved rounds.

Servers side by side on the server CPUs: one with the default settings (INFO logging,
metrics on) answers every kind of hit; the log and metrics A/B has three more, the
default settings, WARNING and STRATA_METRICS=false, which answer nothing but the list
page, each the same runs (the default server's other runs made its process differ from
theirs by more than the 5 % measured, either way: docs/benchmarks.md); and one
with the response cache off, for field-cached execution with everything warm in L1 (the
same list pages, and the detail pages over the ids its warm-up answered). Each round
runs, one after the other: on the default server the list page and a detail page over
ids already answered (runs that only replay stored responses), the same list pages over
GET, their revalidation with If-None-Match (every answer a 304), and /healthz (a bare
Starlette route returning fixed bytes); the list page on the A/B's three; and the list
and detail pages with the response cache off (SCHEDULE, reversed every other round).
Ratios are taken inside each round, between runs seconds apart, and the report gives
their median: on a shared machine, a slow spell lands on both sides of a ratio. Server
CPU time per request comes from /proc: it is what the log line and the metrics cost is
measured in.
"""

from __future__ import annotations

import statistics
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from graph.cli.bench import plan as plans
from graph.cli.bench import wrk
from graph.cli.bench.config import BenchConfig
from graph.cli.bench.scrape import scrape, server_figures
from graph.cli.bench.server import ServerProcess

VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "ab-default": {},
    "log-warning": {"STRATA_LOG_LEVEL": "WARNING"},
    "metrics-off": {"STRATA_METRICS": "false"},
    "fields": {"STRATA_RESPONSE_CACHE": "false"},
}
# (server variant, run) in the order of one round; the runs a ratio compares are next to
# each other (the A/B's list runs, /healthz and the hits, a 304 and a GET hit), and
# every other round runs them in reverse order (`schedule`): on a machine whose speed
# drifts, neither side of a ratio always comes first.
SCHEDULE = (
    ("fields", "detail-hits"),
    ("fields", "list"),
    ("default", "304"),
    ("default", "get"),
    ("default", "detail-hits"),
    ("default", "healthz"),
    ("default", "list"),
    ("log-warning", "list"),
    ("ab-default", "list"),
    ("metrics-off", "list"),
)
DETAIL_IDS = 64  # the detail pages of a hits-only run: few enough to be answered in warm-up
WARMUP_SECONDS = 1.0


def schedule(round_number: int) -> tuple[tuple[str, str], ...]:
    """The runs of round `round_number` (from 0), in order."""
    return SCHEDULE if round_number % 2 == 0 else SCHEDULE[::-1]


@dataclass(frozen=True, slots=True)
class HitScripts:
    paths: dict[str, Path]

    def __getitem__(self, run: str) -> Path:
        return self.paths[run]


def detail_pages(catalogue: plans.Catalogue, seed: int, zipf: float) -> list[plans.Request]:
    """The detail page over the DETAIL_IDS most drawn ids, cycled: once the warm-up has
    asked for each, every request is a stored response."""
    drawn = plans.only("detail", catalogue, count=2000, zipf=zipf, seed=seed)
    ids = list(dict.fromkeys(request.variables["id"] for request in drawn))[:DETAIL_IDS]
    return [plans.Request("detail", plans.DETAIL_PAGE, {"id": book}) for book in ids]


def get_path(request: plans.Request) -> str:
    query = {"query": request.query, "variables": orjson.dumps(dict(request.variables))}
    return "/graphql?" + urllib.parse.urlencode(query)


def etag_of(base_url: str, path: str) -> str:
    """Asks once (which also stores the answer) and returns the ETag it came with."""
    with urllib.request.urlopen(f"{base_url}{path}", timeout=30) as response:
        etag: str = response.headers["ETag"]
        return etag


def write_scripts(
    work: Path,
    list_requests: Sequence[plans.Request],
    detail: Sequence[plans.Request],
    graphql: Callable[[Sequence[plans.Request]], wrk.Target],
    etags: dict[str, str],
) -> HitScripts:
    gets = list(dict.fromkeys(get_path(request) for request in list_requests))
    targets = {
        "list": graphql(list_requests),
        "detail-hits": graphql(detail),
        "get": wrk.Target([("GET", path, None, b"", None) for path in gets]),
        "304": wrk.Target.revalidations([(path, etags[path]) for path in gets]),
        "healthz": wrk.Target.get("/healthz"),
    }
    paths = {}
    for run, target in targets.items():
        path = work / f"hits-{run}.lua"
        path.write_text(wrk.render_script(target, check_body=run not in ("healthz", "304")))
        paths[run] = path
    return HitScripts(paths)


def measure(
    server: ServerProcess,
    script: Path,
    config: BenchConfig,
    wrk_cpus: str | None,
    tick: Callable[[float], None],
    with_figures: bool,
) -> dict[str, Any]:
    """One run: a short warm-up, then wrk with the server's CPU time read around it."""
    threads = 1 if wrk_cpus is not None else 2
    seconds = wrk.whole_seconds(config.hit_duration)
    options: dict[str, Any] = {"connections": config.connections, "threads": threads}
    wrk.run(script, server.url, seconds=WARMUP_SECONDS, cpus=wrk_cpus, **options)
    before = scrape(server.url, server.admin_token) if with_figures else None
    cpu_before = server.cpu_seconds()
    result = wrk.run(script, server.url, seconds=seconds, cpus=wrk_cpus, tick=tick, **options)
    cpu_after = server.cpu_seconds()
    run = result.as_dict()
    run["server_cpu_us_per_request"] = (
        round(1e6 * (cpu_after - cpu_before) / result.requests, 2)
        if cpu_before is not None and cpu_after is not None and result.requests
        else None
    )
    if before is not None:
        after = scrape(server.url, server.admin_token)
        run["server"] = server_figures(before, after, result.requests)
    return run


def round_ratios(runs: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """The ratios one round gives (keys as in SCHEDULE: `variant/run`)."""

    def rps(key: str) -> float | None:
        value: float | None = runs.get(key, {}).get("rps")
        return value or None

    def cpu(key: str) -> float | None:
        value: float | None = runs.get(key, {}).get("server_cpu_us_per_request")
        return value or None

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else round(a / b, 4)

    def share(with_it: float | None, without: float | None) -> float | None:
        return None if with_it is None or without is None else round(1 - without / with_it, 4)

    return {
        "list_of_healthz": ratio(rps("default/list"), rps("default/healthz")),
        "detail_of_healthz": ratio(rps("default/detail-hits"), rps("default/healthz")),
        "revalidation_cpu_of_get_hit": ratio(cpu("default/304"), cpu("default/get")),
        "log_share_of_hit_cpu": share(cpu("ab-default/list"), cpu("log-warning/list")),
        "metrics_share_of_hit_cpu": share(cpu("ab-default/list"), cpu("metrics-off/list")),
    }


def summary(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    """Medians over the rounds of every run's figures and of every ratio."""
    per_round = [round_ratios(runs) for runs in rounds]
    ratios: dict[str, Any] = {}
    for name in per_round[0]:
        values: list[float] = [value for r in per_round if (value := r[name]) is not None]
        ratios[name] = {
            "median": round(statistics.median(values), 4) if values else None,
            "rounds": [r[name] for r in per_round],
        }
    runs: dict[str, Any] = {}
    for key in rounds[0]:
        series = [r[key] for r in rounds if key in r]
        cpu: list[float] = [
            s["server_cpu_us_per_request"] for s in series if s["server_cpu_us_per_request"]
        ]
        runs[key] = {
            "rps_median": round(statistics.median(s["rps"] for s in series), 1),
            "server_cpu_us_per_request_median": round(statistics.median(cpu), 2) if cpu else None,
            "errors": sum(int(s["errors"]["total"]) for s in series),
            "response_hit_ratio": [s.get("server", {}).get("response_hit_ratio") for s in series],
        }
    return {"ratios": ratios, "runs": runs, "rounds": rounds}
