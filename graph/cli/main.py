"""The `strata` command line (SPEC section 4)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from graph.cli.cache_commands import cache_app
from graph.cli.token_commands import create, revoke, user_app
from graph.observability.metrics import MULTIPROCESS_DIR
from graph.settings import Settings

# `strata serve` runs in this process for its whole life, so what only other commands use
# (Alembic and Mako, Faker, rich's progress bars, httpx) is imported in those commands:
# imported here, it would stay in the server's memory for nothing (docs/benchmarks.md,
# "Server memory under the all phase"). tests/cli/test_serve_imports.py keeps it so.

app = typer.Typer(no_args_is_help=True, help="Strata: a GraphQL catalogue behind a two-tier cache.")
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
token_app = typer.Typer(no_args_is_help=True, help="Bearer tokens.")
app.add_typer(db_app, name="db")
app.add_typer(token_app, name="token")
app.add_typer(cache_app, name="cache")
app.add_typer(user_app, name="user")
token_app.command("create")(create)
token_app.command("revoke")(revoke)

console = Console(stderr=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes")] = 1,
) -> None:
    """Run the API with uvicorn."""
    from graph.cli.serving import run

    with _metrics_shared_by(workers):
        run(host, port, workers)


@contextmanager
def _metrics_shared_by(workers: int) -> Iterator[None]:
    """Several workers write their metrics to files in one folder that /metrics adds up
    (prometheus_client's multiprocess mode); the workers are new processes, so setting
    the variable here, before they start, is early enough."""
    if workers == 1 or os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    folder = tempfile.mkdtemp(prefix="strata-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield
    finally:
        del os.environ[MULTIPROCESS_DIR]
        shutil.rmtree(folder, ignore_errors=True)


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply Alembic migrations."""
    from graph.cli import migrations

    migrations.upgrade(Settings().database_url, revision)


@app.command("seed")
def seed_command(
    authors: Annotated[int, typer.Option(min=0)] = 1000,
    books_per_author: Annotated[int, typer.Option(min=0)] = 10,
    reviews_per_book: Annotated[int, typer.Option(min=0)] = 5,
    users: Annotated[int, typer.Option(min=1)] = 100,
    seed_value: Annotated[int, typer.Option("--seed")] = 42,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing, successfully, if data exists")
    ] = False,
) -> None:
    """Fill an empty database with deterministic fake data."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from models import Database
    from models.seed import SeedPlan, is_empty, seed

    plan = SeedPlan(authors, books_per_author, reviews_per_book, users, seed_value)

    async def run() -> int:
        db = Database(Settings().database_url)
        try:
            if not await is_empty(db):
                if if_empty:
                    return 0
                console.print("[red]the database already has data; seed fills an empty one")
                return 1
            with Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("seeding", total=plan.total_rows)
                await seed(db, plan, lambda n: bar.advance(task, n))
            return 0
        finally:
            await db.dispose()

    raise typer.Exit(asyncio.run(run()))


@app.command("schema")
def schema_command() -> None:
    """Print the GraphQL SDL (kept equal to schema.graphql at the root, for codegen)."""
    from graph.api.schema import build_schema

    sys.stdout.write(build_schema(Settings(), observed=False).as_str() + "\n")


@app.command()
def bench(
    authors: Annotated[int, typer.Option(min=1)] = 1000,
    books_per_author: Annotated[int, typer.Option(min=1)] = 10,
    reviews_per_book: Annotated[int, typer.Option(min=0)] = 5,
    users: Annotated[int, typer.Option(min=1)] = 100,
    duration: Annotated[float, typer.Option(min=1, help="Seconds per measured run")] = 10,
    warmup: Annotated[float, typer.Option(min=0, help="Seconds of warm-up per run")] = 3,
    connections: Annotated[int, typer.Option(min=1)] = 16,
    workers: Annotated[int, typer.Option(min=1, help="Server worker processes")] = 1,
    mix: Annotated[str, typer.Option(help="Weights of list,detail,author,me,mutation")] = (
        "list=40,detail=35,author=15,me=9,mutation=1"
    ),
    zipf: Annotated[float, typer.Option(min=0, help="Zipf exponent of the id choice")] = 1.1,
    out: Annotated[Path, typer.Option(help="Folder for the JSON, charts and scripts")] = Path(
        "bench-results"
    ),
    phases: Annotated[str, typer.Option(help="Any of off,fields,yardstick,all,hits")] = (
        "off,fields,yardstick,all,hits"
    ),
    curve: Annotated[bool, typer.Option(help="Measure the list page at first=10..100")] = True,
    curve_firsts: Annotated[str, typer.Option(help="The cost curve's `first` values")] = (
        "10,20,50,100"
    ),
    seed_value: Annotated[int, typer.Option("--seed")] = 42,
    rounds: Annotated[
        int, typer.Option(min=1, help="Interleaved rounds of the hit-path runs (phase hits)")
    ] = 3,
    hit_duration: Annotated[
        float, typer.Option(min=1, help="Seconds per measured hit-path run")
    ] = 5,
    quick: Annotated[
        bool, typer.Option(help="Small and short (50 authors, 2 s runs): under 2 minutes")
    ] = False,
) -> None:
    """Before/after caching benchmark: seeds a database, serves it in each phase, drives it
    with wrk, and writes a table, a JSON file and PNG charts."""
    import shlex

    from graph.cli.bench import BenchConfig
    from graph.cli.bench import main as run

    if quick:
        authors, users, duration, warmup = 50, 20, 2, 1
        rounds, hit_duration = 1, 2
    config = BenchConfig(
        authors=authors,
        books_per_author=books_per_author,
        reviews_per_book=reviews_per_book,
        users=users,
        seed=seed_value,
        duration=duration,
        warmup=warmup,
        connections=connections,
        workers=workers,
        mix=mix,
        zipf=zipf,
        out=out,
        phases=tuple(phase.strip() for phase in phases.split(",") if phase.strip()),
        curve=curve,
        curve_firsts=tuple(int(first) for first in curve_firsts.split(",") if first.strip()),
        hit_rounds=rounds,
        hit_duration=hit_duration,
        command=shlex.join(["strata", *sys.argv[1:]]),
    )
    try:
        config.validate()
    except ValueError as error:
        console.print(f"[red]{error}")
        raise typer.Exit(2) from None
    status, _document = run(config, console)
    raise typer.Exit(status)


def main() -> None:
    from graph.cli.dev_env import load_dev_env

    if (applied := load_dev_env()) is not None:
        console.print(f"[dim]dev mode: the dev server's Redis and secret, from {applied}")
    sys.exit(app())
