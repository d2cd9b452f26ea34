"""The benchmark's course: seed once, then per phase start the server, warm up, measure."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.progress import BarColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

from graph.cli.bench import hits, report, wrk
from graph.cli.bench import plan as plans
from graph.cli.bench.config import (
    CURVE_PHASES,
    PHASE_ENV,
    PHASES,
    REQUESTS_PER_SCRIPT,
    RUN_KINDS,
    YARDSTICK_RUNS,
    BenchConfig,
    Step,
)
from graph.cli.bench.course import Course, step_seconds
from graph.cli.bench.provenance import document, machine
from graph.cli.bench.server import (
    Tokens,
    cpu_split,
    prepare_database,
)
from graph.cli.redis_process import RedisServer
from models.seed import SeedPlan

__all__ = ["PHASES", "BenchConfig", "run_bench"]

MEASURED_PHASES = ("off", "fields", "all")  # the phases whose runs fill the main table


def _write_script(path: Path, target: wrk.Target, check_body: bool = True) -> Path:
    path.write_text(wrk.render_script(target, check_body=check_body))
    return path


def _plan_steps(config: BenchConfig, scripts: dict[str, Path]) -> list[Step]:
    steps: list[Step] = []
    measured = [phase for phase in config.phases if phase in MEASURED_PHASES]
    healthz_phase = "all" if "all" in measured else (measured[-1] if measured else None)
    for phase in config.phases:
        if phase == "yardstick":
            steps += [Step(phase, kind, scripts[kind], config.warmup) for kind in YARDSTICK_RUNS]
        if phase not in MEASURED_PHASES:
            continue
        steps += [Step(phase, kind, scripts[kind], config.warmup) for kind in RUN_KINDS]
        if phase == healthz_phase:
            steps.append(Step(phase, "healthz", scripts["healthz"], 0.0))
        if config.curve and phase in CURVE_PHASES:
            for first in config.curve_firsts:
                if first != plans.LIST_FIRST:  # the list run is that point
                    name = f"curve-{first}"
                    steps.append(Step(phase, name, scripts[name], config.warmup, first))
    return steps


def _hit_seconds(config: BenchConfig) -> float:
    """What the hit-path section takes, for the progress bar."""
    if "hits" not in config.phases:
        return 0.0
    per_run = wrk.whole_seconds(config.hit_duration) + wrk.whole_seconds(hits.WARMUP_SECONDS)
    return float(per_run * len(hits.SCHEDULE) * config.hit_rounds)


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
    hit_path: dict[str, Any] | None = None
    memory: dict[str, float | None] = {}
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
        measured = _hit_seconds(config) + sum(
            wrk.whole_seconds(config.duration) + step_seconds(s, config.scrape_pause) for s in steps
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
            course = Course(config, bar, task, wrk_cpus, server_cpus, work, tokens, console)
            for phase in config.phases:
                env = _phase_env(phase, database_url, redis_url, work, own_database)
                if phase == "hits":
                    hit_path = course.hit_path(env, catalogue)
                else:
                    memory[phase] = course.phase(phase, env, steps, catalogue)
    finally:
        if redis is not None:
            redis.close()
    setup = {"wrk_cpus": wrk_cpus, "server_cpus": server_cpus, "own_database": own_database}
    result = document(config, info, started, steps, setup, hit_path, memory)
    result["charts"] = [str(path) for path in report.charts(result, out)]
    (out / "bench.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (out / "bench.md").write_text(report.markdown(result))
    if own_database:
        for db_file in work.glob("*.sqlite*"):
            db_file.unlink(missing_ok=True)
    return result


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
            # Default settings otherwise: INFO logging (one line per operation), metrics on.
            **PHASE_ENV[phase],
        }
    )
    # `strata serve --workers N` shares /metrics across workers itself.
    return env
