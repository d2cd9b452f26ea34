"""Cache off, this tree against another checkout (issue 15's "uncached: no regression").

Two `strata serve` servers (one worker each, `STRATA_CACHE=off`, the bench's default
settings otherwise: INFO logging, metrics on), one from this checkout and one from
`--before DIR` run by that checkout's own interpreter, each on its own copy of one seeded
database, all on the bench's server CPU and wrk on the other. Rounds alternate the
servers on the bench's own list and detail scripts (graph/cli/bench/plan.py: Zipf ids,
random genres), so a slow spell of the machine lands on both. Each run: a warm-up, then a
measured run with the server's CPU time (user + system, /proc) read around it. Prints
server CPU µs per request and req/s per run, and the medians. `--together` loads both
servers at the same time instead (two wrk on the load generator's CPU, both servers
sharing theirs): each gets half a core, but exactly the same moment's machine.

    .venv/bin/python -m benchmarks.uncached_ab --before /tmp/base [--rounds 3] [--seconds 8]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks.field_wrk import cpu_seconds, start, stop
from graph.cli.bench import plan as plans
from graph.cli.bench import wrk
from graph.cli.bench.config import REQUESTS_PER_SCRIPT
from graph.cli.bench.server import cpu_split, prepare_database
from graph.cli.redis_process import RedisServer
from models.seed import SeedPlan

SERVE = "from graph.cli.main import main; main()"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="the other checkout")
    parser.add_argument("--before-python", type=Path, default=None,
                        help="its interpreter (default: DIR/.venv/bin/python)")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--authors", type=int, default=1000)
    parser.add_argument("--together", action="store_true",
                        help="load both servers at once, not one after the other")  # fmt: skip
    options = parser.parse_args()
    before_python = options.before_python or options.before / ".venv" / "bin" / "python"
    work = Path(tempfile.mkdtemp(prefix="strata-uncached-ab-"))
    seeded = work / "seed.sqlite"
    plan = SeedPlan(authors=options.authors)
    tokens = prepare_database(f"sqlite+aiosqlite:///{seeded}", plan, 8, lambda _n: None)
    base = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    base.pop("PYTHONPATH", None)
    here = Path(__file__).resolve().parents[1]
    trees = {"now": (Path(sys.executable), here), "before": (before_python, options.before)}
    catalogue = plans.Catalogue(plan.authors, plan.authors * plan.books_per_author, 8)
    scripts = {}
    for kind in ("list", "detail"):
        requests = plans.only(kind, catalogue, count=REQUESTS_PER_SCRIPT, zipf=1.1, seed=42)
        path = work / f"{kind}.lua"
        target = wrk.Target.graphql(requests, tokens.users, tokens.admin)
        path.write_text(wrk.render_script(target))
        scripts[kind] = path
    running = {}
    wrk_cpus, _ = cpu_split()
    # The bench gives its cache-off servers a Redis too: whatever they do with it counts.
    redis = RedisServer()
    redis.start()
    try:
        for name, (python, tree) in trees.items():
            database = work / f"{name}.sqlite"
            shutil.copyfile(seeded, database)
            env = {
                **base,
                "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
                "STRATA_ENV": "production",
                "STRATA_CACHE": "off",
                "STRATA_RESPONSE_CACHE": "false",
                "REDIS_URL": redis.url,
                "STRATA_CACHE_PREFIX": f"ab-{name}",
                "STRATA_CACHE_SECRET": secrets.token_hex(32),
                "STRATA_EXPOSE_CACHE_STATS": "false",
                "STRATA_LOG_LEVEL": options.log_level,
                "PYTHONPATH": str(tree),
            }
            command = [str(python), "-c", SERVE, "serve", "--host", "127.0.0.1", "--workers", "1"]
            running[name] = start(command, env, tree, work / f"{name}.log")
        load: dict[str, Any] = {
            "connections": options.connections,
            "threads": 1,
            "cpus": wrk_cpus,
        }
        figures: dict[tuple[str, str], list[tuple[float, float]]] = {}

        def measure(name: str, script: Path) -> tuple[float, float]:
            """One warm-up and one measured run: (CPU µs per request, req/s)."""
            process, url = running[name]
            wrk.run(script, url, seconds=options.warmup, **load)
            cpu_before = cpu_seconds(process.pid)
            result = wrk.run(script, url, seconds=options.seconds, **load)
            cpu = cpu_seconds(process.pid) - cpu_before
            if result.error_total or not result.requests:
                raise RuntimeError(f"{name}: errors {result.errors}")
            return 1e6 * cpu / result.requests, result.rps

        for number in range(options.rounds):
            for kind, script in scripts.items():
                if options.together:
                    # Both at once on the same server CPU: the same moment's load on both.
                    with ThreadPoolExecutor(len(running)) as pool:
                        results = pool.map(measure, running, [script] * len(running))
                        runs = dict(zip(running, results, strict=True))
                else:
                    # Alternate which tree goes first, so neither always follows the other.
                    order = list(running) if number % 2 == 0 else list(reversed(running))
                    runs = {name: measure(name, script) for name in order}
                for name, (per_request, rps) in runs.items():
                    figures.setdefault((name, kind), []).append((per_request, rps))
                    print(f"round {number + 1} {kind:6} {name:7} {per_request:7.0f} µs CPU/req "
                          f"{rps:6.1f} req/s", flush=True)  # fmt: skip
        for kind in scripts:
            for name in running:
                cpu_runs = [cpu for cpu, _ in figures[(name, kind)]]
                rps_runs = [rps for _, rps in figures[(name, kind)]]
                print(f"{kind:6} {name:7} median {statistics.median(cpu_runs):7.0f} µs CPU/req "
                      f"{statistics.median(rps_runs):6.1f} req/s  (µs: "
                      f"{', '.join(f'{c:.0f}' for c in cpu_runs)}; req/s: "
                      f"{', '.join(f'{r:.1f}' for r in rps_runs)})")  # fmt: skip
            now = statistics.median(cpu for cpu, _ in figures[("now", kind)])
            before = statistics.median(cpu for cpu, _ in figures[("before", kind)])
            # A round's two runs are seconds apart, under the same load: their ratio is
            # steadier than either figure.
            pairs = zip(figures[("now", kind)], figures[("before", kind)], strict=True)
            paired = [now_cpu / before_cpu for (now_cpu, _), (before_cpu, _) in pairs]
            print(f"{kind:6} now / before in CPU per request: {now / before:.3f} (medians); "
                  f"{statistics.median(paired):.3f} (median of the rounds' ratios: "
                  f"{', '.join(f'{r:.2f}' for r in paired)})")  # fmt: skip
    finally:
        stop(running)
        redis.close()


if __name__ == "__main__":
    main()
