"""Field-cached execution over HTTP: `strata serve` (one worker) under wrk, against cache
off and Strawberry over dicts (issue 15), on the bench's list and detail pages.

Servers, all started once and measured in turn, round after round (interleaved, so a slow
spell of the machine lands on all of them): `off` (STRATA_CACHE=off), `fields`
(STRATA_RESPONSE_CACHE=false) and `dicts` (benchmarks/yardstick.py, as `strata bench` runs it);
`--before DIR` adds `before` and `off-before`, the same fields and cache-off servers run
from another checkout (say `git archive main | tar -x -C DIR`). The pages go over a fixed
set of ids and genres, so after the warm-up every value is in L1 ("everything warm"). One
core for the servers, one for wrk, as `strata bench` does. Prints req/s per run (and per
second of the server's own CPU time) and the medians.

    .venv/bin/python -m benchmarks.field_wrk [--rounds 3] [--seconds 10] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from graph.cli.bench import wrk
from graph.cli.bench.plan import DETAIL_PAGE, LIST_PAGE, Request
from graph.cli.bench.server import cpu_split, prepare_database
from graph.cli.redis_process import RedisServer, free_port
from models.seed import GENRES, SeedPlan

PAGES = {
    "list": [Request("list", LIST_PAGE, {"genre": genre, "first": 20}) for genre in GENRES],
    "detail": [Request("detail", DETAIL_PAGE, {"id": str(book)}) for book in range(1, 41)],
}
SERVE = "from graph.cli.main import main; main()"


def start(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[Any, str]:
    port = free_port()
    _, server_cpus = cpu_split()
    full = [*command, "--port", str(port)]
    if server_cpus is not None:
        full = ["taskset", "-c", server_cpus, *full]
    process = subprocess.Popen(
        full, env=env, cwd=cwd, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1):
                return process, url
        except urllib.error.HTTPError:  # the yardstick has no /healthz: it answers 404
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{command} did not start: {log.read_text()[-2000:]}")


def stop(running: dict[str, tuple[Any, str]]) -> None:
    """Stops the servers `start` started (name -> (process, url))."""
    for process, _ in running.values():
        process.terminate()
        process.wait(10)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--before", type=Path, default=None)
    parser.add_argument("--authors", type=int, default=1000)
    parser.add_argument("--servers", default=None, help="only these, comma-separated")
    options = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="strata-field-wrk-"))
    url = f"sqlite+aiosqlite:///{work / 'bench.sqlite'}"
    plan = SeedPlan(authors=options.authors)
    tokens = prepare_database(url, plan, 1, lambda _n: None)
    redis = RedisServer()
    redis.start()
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    common = {
        **base,
        "DATABASE_URL": url,
        "REDIS_URL": redis.url,
        "STRATA_ENV": "production",
        "STRATA_CACHE_SECRET": secrets.token_hex(32),
        "STRATA_EXPOSE_CACHE_STATS": "false",
        "STRATA_LOG_LEVEL": options.log_level,
        # This machine is shared and loaded: a 50 ms deadline opens the breaker (and
        # flushes L1) on a slow spell, and "everything warm in L1" is what is measured.
        "STRATA_REDIS_TIMEOUT_MS": "1000",
    }
    here = Path(__file__).resolve().parents[1]
    serve = [sys.executable, "-c", SERVE, "serve", "--host", "127.0.0.1", "--workers", "1"]
    servers = {
        "off": (serve, {**common, "STRATA_CACHE": "off"}, here),
        "fields": (serve, {**common, "STRATA_RESPONSE_CACHE": "false"}, here),
    }
    if options.before is not None:
        before_env = {**common, "STRATA_RESPONSE_CACHE": "false", "PYTHONPATH": str(options.before)}
        servers["before"] = (serve, {**before_env, "STRATA_CACHE_PREFIX": "before"}, options.before)
        servers["off-before"] = (serve, {**before_env, "STRATA_CACHE": "off"}, options.before)
    # The bench's yardstick: the same uvicorn settings as `strata serve`, DATABASE_URL's data.
    servers["dicts"] = ([sys.executable, "-m", "benchmarks.yardstick"], common, here)
    if options.servers is not None:
        servers = {name: servers[name] for name in options.servers.split(",")}
    scripts = {}
    for page, requests in PAGES.items():
        path = work / f"{page}.lua"
        path.write_text(wrk.render_script(wrk.Target.graphql(requests, tokens.users, tokens.admin)))
        scripts[page] = path
    running = {}
    try:
        for name, (command, env, cwd) in servers.items():
            running[name] = start(command, env, cwd, work / f"{name}.log")
        wrk_cpus, _ = cpu_split()
        rps: dict[tuple[str, str], list[float]] = {}
        for number in range(options.rounds):
            for page, script in scripts.items():
                for name, (process, server_url) in running.items():
                    for seconds in (options.warmup, options.seconds):
                        cpu_before = cpu_seconds(process.pid)
                        result = wrk.run(
                            script,
                            server_url,
                            seconds=seconds,
                            connections=options.connections,
                            threads=1,
                            cpus=wrk_cpus,
                        )
                    if result.error_total:
                        raise RuntimeError(f"{name} {page}: errors {result.errors}")
                    per_cpu = result.requests / max(cpu_seconds(process.pid) - cpu_before, 1e-3)
                    rps.setdefault((name, page), []).append(result.rps)
                    rps.setdefault((name, page + " per CPU s"), []).append(per_cpu)
                    print(
                        f"round {number + 1} {page:6} {name:10} {result.rps:8.0f} req/s"
                        f" {per_cpu:8.0f} req per server CPU second",
                        flush=True,
                    )
        for page in [kind for name in scripts for kind in (name, name + " per CPU s")]:
            medians = {name: statistics.median(rps[(name, page)]) for name in running}
            print(page, "medians:", ", ".join(f"{n} {v:.0f}" for n, v in medians.items()))
            for name in running:
                if "fields" in medians and name != "fields":
                    print(f"  fields / {name}: {medians['fields'] / medians[name]:.2f}x")
    finally:
        stop(running)
        redis.close()


if __name__ == "__main__":
    main()
