"""The benchmark's course: seed once, then per phase start the server, warm up, measure."""

from __future__ import annotations

import os
import platform
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from graph.cli.bench import plan as plans
from graph.cli.bench import report, wrk
from graph.cli.bench.scrape import SERVER_FIGURES, scrape, server_figures
from graph.cli.bench.server import ROOT, ServerProcess, Tokens, cpu_split, prepare_database
from graph.cli.redis_process import RedisServer
from models.seed import SeedPlan

PHASES = ("off", "fields", "all")
PHASE_ENV = {
    "off": {"STRATA_CACHE": "off", "STRATA_RESPONSE_CACHE": "false"},
    "fields": {"STRATA_CACHE": "on", "STRATA_RESPONSE_CACHE": "false"},
    "all": {"STRATA_CACHE": "on", "STRATA_RESPONSE_CACHE": "true"},
}
PHASE_TITLES = {
    "off": "cache off",
    "fields": "field + dataloader cache",
    "all": "everything on (response cache)",
}
CURVE_PHASES = ("off", "all")
RUN_KINDS = ("mix", "list", "detail")
SCRAPE_PAUSE = 1.0  # engine counters reach /metrics within ~1 s
REQUESTS_PER_SCRIPT = 10_000


@dataclass(frozen=True)
class BenchConfig:
    authors: int = 1000
    books_per_author: int = 10
    reviews_per_book: int = 5
    users: int = 100
    seed: int = 42
    duration: float = 10.0
    warmup: float = 3.0
    connections: int = 16
    workers: int = 1
    mix: str = plans.DEFAULT_MIX
    zipf: float = 1.1
    out: Path = Path("bench-results")
    phases: tuple[str, ...] = PHASES
    curve: bool = True
    curve_firsts: tuple[int, ...] = plans.CURVE_FIRSTS
    viewers: int = 8
    scrape_pause: float = SCRAPE_PAUSE
    command: str = "strata bench"

    def validate(self) -> None:
        unknown = [phase for phase in self.phases if phase not in PHASES]
        if unknown or not self.phases:
            raise ValueError(f"phases must be a subset of {','.join(PHASES)}, got {unknown}")
        if self.authors < 1 or self.books_per_author < 1 or self.users < 1:
            raise ValueError("the benchmark needs at least one author, book and user")
        if any(not 1 <= first <= 100 for first in self.curve_firsts):
            raise ValueError("curve points must be between 1 and 100 (the schema's bounds)")
        plans.parse_mix(self.mix)


@dataclass
class Step:
    phase: str
    name: str  # mix, list, detail, healthz, curve-<first>
    script: Path
    warmup: float
    first: int | None = None
    result: dict[str, Any] = field(default_factory=dict)


def failed_run(reason: str) -> dict[str, Any]:
    """A run that did not complete: no figures, one error."""
    nothing = dict.fromkeys(("p50", "p95", "p99", "mean", "max"))
    return {
        "failed": reason,
        "requests": 0,
        "duration_s": 0.0,
        "rps": 0.0,
        "latency_ms": nothing,
        "errors": {"total": 1},
        "client_cpu_us_per_request": None,
        "server": dict.fromkeys(SERVER_FIGURES),
    }


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        commit, dirty = "unknown", ""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wrk": wrk.wrk_version(),
        "commit": commit or "unknown",
        "uncommitted_changes": bool(dirty),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _git(*args: str) -> str:
    completed = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    return completed.stdout.strip()


def _write_script(path: Path, target: wrk.Target, check_body: bool = True) -> Path:
    path.write_text(wrk.render_script(target, check_body=check_body))
    return path


def _plan_steps(config: BenchConfig, scripts: dict[str, Path]) -> list[Step]:
    steps: list[Step] = []
    healthz_phase = "all" if "all" in config.phases else config.phases[-1]
    for phase in config.phases:
        steps += [Step(phase, kind, scripts[kind], config.warmup) for kind in RUN_KINDS]
        if phase == healthz_phase:
            steps.append(Step(phase, "healthz", scripts["healthz"], 0.0))
        if config.curve and phase in CURVE_PHASES:
            for first in config.curve_firsts:
                if first != plans.LIST_FIRST:  # the list run is that point
                    name = f"curve-{first}"
                    steps.append(Step(phase, name, scripts[name], config.warmup, first))
    return steps


def _step_seconds(step: Step, pause: float) -> float:
    warm = wrk.whole_seconds(step.warmup) + pause if step.warmup > 0 else 0.0
    return warm + pause


def run_bench(config: BenchConfig, console: Console) -> dict[str, Any]:
    """The whole benchmark; returns (and writes) the results document."""
    config.validate()
    wrk.wrk_binary()  # fails early, with the install hint
    started = datetime.now(UTC)
    out = config.out.resolve()
    work = out / f"run-{started:%Y%m%d-%H%M%S}"
    work.mkdir(parents=True, exist_ok=True)
    info = machine()
    mix = plans.parse_mix(config.mix)
    seed_plan = SeedPlan(
        config.authors, config.books_per_author, config.reviews_per_book, config.users, config.seed
    )
    wrk_cpus, server_cpus = cpu_split()
    own_database = "DATABASE_URL" not in os.environ
    seed_file = work / "seed.sqlite"
    database_url = (
        os.environ["DATABASE_URL"] if not own_database else f"sqlite+aiosqlite:///{seed_file}"
    )
    redis: RedisServer | None = None
    redis_url = os.environ.get("REDIS_URL")
    if redis_url is None:
        redis = RedisServer()
        redis.start()
        redis_url = redis.url
    try:
        tokens = _seed(database_url, seed_plan, config, console)
        catalogue = plans.Catalogue(
            config.authors, config.authors * config.books_per_author, len(tokens.users)
        )
        scripts = _scripts(work, config, mix, catalogue, tokens)
        steps = _plan_steps(config, scripts)
        measured = sum(
            wrk.whole_seconds(config.duration) + _step_seconds(s, config.scrape_pause)
            for s in steps
        )
        with Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            TimeElapsedColumn(),
            "eta",
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("benchmark", total=measured)
            done = 0.0
            for phase in config.phases:
                env = _phase_env(phase, database_url, redis_url, work, own_database)
                server = ServerProcess(
                    env, config.workers, work / f"server-{phase}.log", server_cpus, tokens.admin
                )
                bar.update(task, description=f"{phase}: starting the server")
                server.start()
                try:
                    _preflight(server, catalogue, tokens, config)
                    for step in (s for s in steps if s.phase == phase):
                        overhead = _step_seconds(step, config.scrape_pause)
                        try:
                            done = _run_step(
                                step, server, config, wrk_cpus, bar, task, done, overhead
                            )
                        except (wrk.WrkFailed, OSError) as error:
                            # A hung or crashed server: record the run as failed (it
                            # counts as an error), restart the server, go on.
                            step.result = failed_run(f"{error!r}; server log: {server.log_tail(8)}")
                            console.print(
                                f"[red]{phase} · {step.name} failed ({error!r}); "
                                f"restarting the server (log: {server.log_path})"
                            )
                            done += wrk.whole_seconds(config.duration) + overhead
                            server.stop()
                            server.start()
                finally:
                    server.stop()
    finally:
        if redis is not None:
            redis.close()
    document = _document(config, info, started, steps, wrk_cpus, server_cpus, own_database)
    document["charts"] = [str(path) for path in report.charts(document, out)]
    (out / "bench.json").write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    (out / "bench.md").write_text(report.markdown(document))
    if own_database:
        for db_file in work.glob("*.sqlite*"):
            db_file.unlink(missing_ok=True)
    return document


def _seed(database_url: str, seed_plan: SeedPlan, config: BenchConfig, console: Console) -> Tokens:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("seeding", total=seed_plan.total_rows)
        return prepare_database(
            database_url, seed_plan, config.viewers, lambda n: bar.advance(task, n)
        )


def _scripts(
    work: Path,
    config: BenchConfig,
    mix: dict[str, float],
    catalogue: plans.Catalogue,
    tokens: Tokens,
) -> dict[str, Path]:
    count, seed, zipf = REQUESTS_PER_SCRIPT, config.seed, config.zipf

    def graphql(requests: Sequence[plans.Request]) -> wrk.Target:
        return wrk.Target.graphql(requests, tokens.users, tokens.admin)

    scripts = {
        "mix": plans.generate(mix, catalogue, count=count, zipf=zipf, seed=seed),
        "list": plans.only("list", catalogue, count=count, zipf=zipf, seed=seed),
        "detail": plans.only("detail", catalogue, count=count, zipf=zipf, seed=seed),
    }
    paths = {name: _write_script(work / f"{name}.lua", graphql(r)) for name, r in scripts.items()}
    paths["healthz"] = _write_script(
        work / "healthz.lua", wrk.Target.get("/healthz"), check_body=False
    )
    for first in config.curve_firsts:
        name = f"curve-{first}"
        requests = plans.list_pages(first, 1000, seed)
        paths[name] = _write_script(work / f"{name}.lua", graphql(requests))
    return paths


def _phase_env(
    phase: str,
    database_url: str,
    redis_url: str,
    work: Path,
    own_database: bool,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if own_database:
        # Each phase starts from the same seeded data (the mutations of one phase do not
        # leak into the next).
        copy = work / f"phase-{phase}.sqlite"
        shutil.copyfile(work / "seed.sqlite", copy)
        database_url = f"sqlite+aiosqlite:///{copy}"
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "STRATA_ENV": "production",
            "STRATA_CACHE_SECRET": secrets.token_hex(32),
            "STRATA_CACHE_PREFIX": f"bench-{work.name}-{phase}",
            "STRATA_EXPOSE_CACHE_STATS": "false",
            "STRATA_LOG_LEVEL": "WARNING",
            **PHASE_ENV[phase],
        }
    )
    # `strata serve --workers N` shares /metrics across workers itself.
    return env


def _preflight(
    server: ServerProcess,
    catalogue: plans.Catalogue,
    tokens: Tokens,
    config: BenchConfig,
) -> None:
    """One request of every kind before any load: a schema or auth mistake in the bench
    must fail loudly, not show up as a run of errors."""
    everything = {kind: 1.0 for kind in plans.KINDS}
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
    step: Step,
    server: ServerProcess,
    config: BenchConfig,
    wrk_cpus: str | None,
    bar: Progress,
    task: Any,
    done: float,
    overhead: float,
) -> float:
    seconds = wrk.whole_seconds(config.duration)
    label = f"{step.phase} · {step.name}"
    threads = 1 if wrk_cpus is not None else 2

    def ticker(base: float, what: str) -> Callable[[float], None]:
        def tick(elapsed: float) -> None:
            bar.update(task, completed=base + elapsed, description=f"{label} · {what}")

        return tick

    position = done
    if step.warmup > 0:
        warm = wrk.whole_seconds(step.warmup)
        wrk.run(
            step.script,
            server.url,
            seconds=warm,
            connections=config.connections,
            threads=threads,
            cpus=wrk_cpus,
            tick=ticker(position, "warm-up"),
        )
        position += warm
        time.sleep(config.scrape_pause)
        position += config.scrape_pause
    before = scrape(server.url, server.admin_token)
    result = wrk.run(
        step.script,
        server.url,
        seconds=seconds,
        connections=config.connections,
        threads=threads,
        cpus=wrk_cpus,
        tick=ticker(position, "measuring"),
    )
    time.sleep(config.scrape_pause)
    after = scrape(server.url, server.admin_token)
    step.result = result.as_dict()
    if step.name != "healthz":
        step.result["server"] = server_figures(before, after, result.requests)
    finished = done + seconds + overhead
    bar.update(task, completed=finished)
    return finished


def _document(
    config: BenchConfig,
    info: dict[str, Any],
    started: datetime,
    steps: list[Step],
    wrk_cpus: str | None,
    server_cpus: str | None,
    own_database: bool,
) -> dict[str, Any]:
    phases: dict[str, dict[str, Any]] = {}
    curve: dict[str, dict[str, Any]] = {}
    healthz: dict[str, Any] | None = None
    for step in steps:
        if step.name == "healthz":
            healthz = {"phase": step.phase, **step.result}
        elif step.first is not None:
            curve.setdefault(step.phase, {})[str(step.first)] = step.result
        else:
            phases.setdefault(step.phase, {"env": PHASE_ENV[step.phase], "runs": {}})
            phases[step.phase]["runs"][step.name] = step.result
    if config.curve:
        for phase in CURVE_PHASES:
            if phase in phases and plans.LIST_FIRST in config.curve_firsts:
                curve.setdefault(phase, {})[str(plans.LIST_FIRST)] = phases[phase]["runs"]["list"]
        curve = {
            phase: dict(sorted(points.items(), key=lambda item: int(item[0])))
            for phase, points in curve.items()
        }
    settings = asdict(config)
    settings["out"] = str(config.out)
    document: dict[str, Any] = {
        "command": config.command,
        "started": started.isoformat(timespec="seconds"),
        "machine": info,
        "config": settings,
        "setup": {
            "wrk_cpus": wrk_cpus,
            "server_cpus": server_cpus,
            "database": "own SQLite file, copied fresh per phase"
            if own_database
            else "DATABASE_URL (shared by every phase)",
            "redis": "REDIS_URL" if "REDIS_URL" in os.environ else "throwaway redis-server",
            "requests_per_script": REQUESTS_PER_SCRIPT,
            "scrape_pause_s": config.scrape_pause,
        },
        "healthz": healthz,
        "phases": phases,
        "curve": curve,
    }
    document["ratios"] = report.ratios(document)
    document["targets"] = report.targets(document)
    document["errors_total"] = report.error_total(document)
    return document
