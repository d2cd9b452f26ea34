"""The operation line's cost inside one server: list-page response-cache hits at INFO and
at WARNING in the same `strata serve` process (issue 15's "the log line costs at most 5 %
of a hit's CPU time").

`strata bench` compares two server processes, one per level; this compares one process
with itself. The server runs with a SIGUSR1 handler that switches the root logger between
INFO and WARNING (the operation line is written only when its logger is enabled for INFO,
checked on every request), and each round measures a run at each level back to back, in
alternating order, with the server's CPU time (user + system, /proc) read around each.
`--before DIR` adds a second server run from another checkout, measured the same way.
One core for the servers, one for wrk, as `strata bench` does.

    .venv/bin/python -m benchmarks.log_level_ab [--rounds 6] [--seconds 4] [--before DIR]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.field_wrk import cpu_seconds, start, stop
from graph.cli.bench import plan as plans
from graph.cli.bench import wrk
from graph.cli.bench.server import cpu_split, prepare_database
from graph.cli.redis_process import RedisServer
from models.seed import SeedPlan

SERVE_WITH_LEVEL_SWITCH = """
import logging, signal
def switch(*_):
    root = logging.getLogger()
    root.setLevel(logging.WARNING if root.level == logging.INFO else logging.INFO)
signal.signal(signal.SIGUSR1, switch)
from graph.cli.main import main
main()
"""
LEVELS = ("INFO", "WARNING")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--warmup", type=float, default=1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--before", type=Path, default=None, help="another checkout")
    options = parser.parse_args()
    here = Path(__file__).resolve().parents[1]
    trees = {"now": here, **({"before": options.before} if options.before else {})}
    work = Path(tempfile.mkdtemp(prefix="strata-log-ab-"))
    seeded = work / "seed.sqlite"
    tokens = prepare_database(f"sqlite+aiosqlite:///{seeded}", SeedPlan(), 8, lambda _n: None)
    requests = plans.list_pages(plans.LIST_FIRST, 1000, 42)
    script = work / "list.lua"
    script.write_text(wrk.render_script(wrk.Target.graphql(requests, tokens.users, tokens.admin)))
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    wrk_cpus, _ = cpu_split()
    load = {"connections": options.connections, "threads": 1, "cpus": wrk_cpus}
    redis = RedisServer()
    redis.start()
    running = {}
    try:
        for name, tree in trees.items():
            database = work / f"{name}.sqlite"
            shutil.copyfile(seeded, database)
            env = {
                **base,
                "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "REDIS_URL": redis.url,
                "STRATA_ENV": "production",
                "STRATA_CACHE_PREFIX": f"log-ab-{name}",
                "STRATA_CACHE_SECRET": secrets.token_hex(32),
                "STRATA_EXPOSE_CACHE_STATS": "false",
                "STRATA_LOG_LEVEL": "INFO",
                "PYTHONPATH": str(tree),
            }
            command = [sys.executable, "-c", SERVE_WITH_LEVEL_SWITCH, "serve"]
            command += ["--host", "127.0.0.1", "--workers", "1"]
            running[name] = start(command, env, tree, work / f"{name}.log")

        def cpu_per_request(name: str) -> float:
            process, url = running[name]
            wrk.run(script, url, seconds=options.warmup, **load)
            before = cpu_seconds(process.pid)
            result = wrk.run(script, url, seconds=options.seconds, **load)
            if result.error_total or not result.requests:
                raise RuntimeError(f"{name}: errors {result.errors}")
            return 1e6 * (cpu_seconds(process.pid) - before) / result.requests

        shares: dict[str, list[tuple[float, float, float]]] = {name: [] for name in running}
        level = dict.fromkeys(running, "INFO")
        for number in range(options.rounds):
            for name in running if number % 2 == 0 else reversed(running):
                per_request = {}
                for wanted in LEVELS if number % 2 == 0 else LEVELS[::-1]:
                    if level[name] != wanted:
                        os.kill(running[name][0].pid, signal.SIGUSR1)
                        level[name] = wanted
                        time.sleep(0.2)
                    per_request[wanted] = cpu_per_request(name)
                info, warning = per_request["INFO"], per_request["WARNING"]
                shares[name].append((info, warning, 1 - warning / info))
                print(f"round {number + 1} {name:6} INFO {info:6.1f} µs  WARNING {warning:6.1f} "
                      f"µs  line {1 - warning / info:+.3f}", flush=True)  # fmt: skip
        for name, rows in shares.items():
            print(f"{name:6} medians: INFO {statistics.median(r[0] for r in rows):.1f} µs, "
                  f"WARNING {statistics.median(r[1] for r in rows):.1f} µs, line "
                  f"{statistics.median(r[2] for r in rows):+.3f} of a hit "
                  f"({', '.join(f'{r[2]:+.3f}' for r in rows)})")  # fmt: skip
    finally:
        stop(running)
        redis.close()


if __name__ == "__main__":
    main()
