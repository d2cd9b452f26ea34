"""One benchmark's course through its phases: a server per phase, the runs of each, the
interleaved hit-path rounds, and the progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import Progress, TaskID

from graph.cli.bench import hits, wrk
from graph.cli.bench import plan as plans
from graph.cli.bench.config import YARDSTICK_RUNS, BenchConfig, Step
from graph.cli.bench.provenance import failed_run
from graph.cli.bench.scrape import SERVER_FIGURES, scrape, server_figures
from graph.cli.bench.server import YARDSTICK_READY, ServerProcess, Tokens, yardstick_serve


def step_seconds(step: Step, pause: float) -> float:
    warm = wrk.whole_seconds(step.warmup) + pause if step.warmup > 0 else 0.0
    return warm + pause


class Course:
    """Runs the phases of one benchmark on its seeded data, showing progress on `bar`."""

    def __init__(
        self,
        config: BenchConfig,
        bar: Progress,
        task: TaskID,
        wrk_cpus: str | None,
        server_cpus: str | None,
        work: Path,
        tokens: Tokens,
        console: Console,
    ) -> None:
        self.config = config
        self.bar = bar
        self.task = task
        self.wrk_cpus = wrk_cpus
        self.server_cpus = server_cpus
        self.work = work
        self.tokens = tokens
        self.console = console
        self.done = 0.0

    def server(self, name: str, env: dict[str, str], phase: str) -> ServerProcess:
        log = self.work / f"server-{name}.log"
        args = (env, self.config.workers, log, self.server_cpus, self.tokens.admin)
        if phase == "yardstick":
            return ServerProcess(*args, program=yardstick_serve, ready_path=YARDSTICK_READY)
        return ServerProcess(*args)

    def phase(
        self, phase: str, env: dict[str, str], steps: list[Step], catalogue: plans.Catalogue
    ) -> float | None:
        """The runs of one phase on a server of its own; that server's peak memory."""
        config = self.config
        server = self.server(phase, env, phase)
        self.bar.update(self.task, description=f"{phase}: starting the server")
        server.start()
        try:
            _preflight(server, catalogue, self.tokens, config, phase)
            for step in (s for s in steps if s.phase == phase):
                overhead = step_seconds(step, config.scrape_pause)
                try:
                    self.done = _run_step(step, server, config, self, overhead)
                except (wrk.WrkFailed, OSError) as error:
                    # A hung or crashed server: record the run as failed (it counts as an
                    # error), restart the server, go on.
                    step.result = failed_run(f"{error!r}; server log: {server.log_tail(8)}")
                    self.console.print(
                        f"[red]{phase} · {step.name} failed ({error!r}); "
                        f"restarting the server (log: {server.log_path})"
                    )
                    self.done += wrk.whole_seconds(config.duration) + overhead
                    server.stop()
                    server.start()
            return server.peak_rss_mb()
        finally:
            server.stop()
            server.trim_log()

    def ticker(self, label: str) -> Callable[[float], None]:
        base = self.done

        def tick(elapsed: float) -> None:
            self.bar.update(self.task, completed=base + elapsed, description=label)

        return tick

    def hit_path(self, env: dict[str, str], catalogue: plans.Catalogue) -> dict[str, Any]:
        """The interleaved rounds of graph/cli/bench/hits.py."""
        config = self.config
        servers = {
            variant: self.server(f"hits-{variant}", _variant_env(env, variant), "hits")
            for variant in hits.VARIANTS
        }
        try:
            for server in servers.values():
                server.start()
                _preflight(server, catalogue, self.tokens, config, "hits")
            list_requests = plans.list_pages(plans.LIST_FIRST, 1000, config.seed)
            default = servers["default"]
            paths = dict.fromkeys(hits.get_path(request) for request in list_requests)
            etags = {path: hits.etag_of(default.url, path) for path in paths}

            def graphql(requests: Sequence[plans.Request]) -> wrk.Target:
                return wrk.Target.graphql(requests, self.tokens.users, self.tokens.admin)

            detail = hits.detail_pages(catalogue, config.seed, config.zipf)
            scripts = hits.write_scripts(self.work, list_requests, detail, graphql, etags)
            rounds: list[dict[str, dict[str, Any]]] = []
            for number in range(config.hit_rounds):
                runs: dict[str, dict[str, Any]] = {}
                for variant, run in hits.schedule(number):
                    label = f"hits · round {number + 1} · {variant} · {run}"
                    tick = self.ticker(label)
                    runs[f"{variant}/{run}"] = hits.measure(
                        servers[variant], scripts[run], config, self.wrk_cpus, tick,
                        with_figures=variant == "default" and run != "healthz",
                    )  # fmt: skip
                    self.done += wrk.whole_seconds(config.hit_duration) + wrk.whole_seconds(
                        hits.WARMUP_SECONDS
                    )
                rounds.append(runs)
            summary = hits.summary(rounds)
            summary["peak_rss_mb"] = {name: s.peak_rss_mb() for name, s in servers.items()}
            return summary
        finally:
            for server in servers.values():
                server.stop()
                server.trim_log()


def _variant_env(env: dict[str, str], variant: str) -> dict[str, str]:
    """A hit-path server's settings: its variant's, and its own keys in Redis."""
    prefix = f"{env['STRATA_CACHE_PREFIX']}-{variant}"
    return {**env, **hits.VARIANTS[variant], "STRATA_CACHE_PREFIX": prefix}


def _preflight(
    server: ServerProcess,
    catalogue: plans.Catalogue,
    tokens: Tokens,
    config: BenchConfig,
    phase: str,
) -> None:
    """One request of every kind before any load: a schema or auth mistake in the bench
    must fail loudly, not show up as a run of errors. The yardstick answers reads only."""
    kinds = YARDSTICK_RUNS if phase == "yardstick" else plans.KINDS
    everything = {kind: 1.0 for kind in kinds}
    requests = plans.generate(everything, catalogue, count=50, zipf=config.zipf, seed=config.seed)
    seen: set[tuple[str, str]] = set()
    for request in requests:
        key = (request.kind, request.query)
        if key in seen:
            continue
        seen.add(key)
        token = None
        if request.viewer is not None:
            token = tokens.admin if request.viewer == plans.ADMIN else tokens.users[request.viewer]
        status, payload = server.graphql(request.body(), token)
        if status != 200 or payload.get("errors") or not payload.get("data"):
            raise RuntimeError(
                f"pre-flight {request.kind} request failed ({status}): {payload}\n"
                f"server log:\n{server.log_tail()}"
            )


def _run_step(
    step: Step, server: ServerProcess, config: BenchConfig, course: Course, overhead: float
) -> float:
    """One run: warm-up, then the measured run with /metrics (when the server has it) and
    the server's CPU time read around it; returns the progress made."""
    seconds = wrk.whole_seconds(config.duration)
    label = f"{step.phase} · {step.name}"
    options: dict[str, Any] = {
        "connections": config.connections,
        "threads": 1 if course.wrk_cpus is not None else 2,
        "cpus": course.wrk_cpus,
    }
    start = course.done
    if step.warmup > 0:
        warm = wrk.whole_seconds(step.warmup)
        wrk.run(step.script, server.url, seconds=warm, tick=course.ticker(f"{label} · warm-up"),
                **options)  # fmt: skip
        course.done += warm
        time.sleep(config.scrape_pause)
        course.done += config.scrape_pause
    scraped = step.phase != "yardstick"  # it has no /metrics
    before = scrape(server.url, server.admin_token) if scraped else None
    cpu_before = server.cpu_seconds()
    tick = course.ticker(f"{label} · measuring")
    result = wrk.run(step.script, server.url, seconds=seconds, tick=tick, **options)
    cpu_after = server.cpu_seconds()
    time.sleep(config.scrape_pause)
    step.result = result.as_dict()
    step.result["server_cpu_us_per_request"] = (
        round(1e6 * (cpu_after - cpu_before) / result.requests, 2)
        if cpu_before is not None and cpu_after is not None and result.requests
        else None
    )
    if step.name != "healthz":
        figures = dict.fromkeys(SERVER_FIGURES)
        if before is not None:
            figures = server_figures(
                before, scrape(server.url, server.admin_token), result.requests
            )
        step.result["server"] = figures
    finished = start + seconds + overhead
    course.bar.update(course.task, completed=finished)
    return finished
