"""`strata serve` keeps out of its memory what only the other commands use.

The server process imports graph/cli/main.py (the console script) and builds the app from
graph/web/app.py; Alembic (with Mako), Faker and httpx came along with the CLI's other
commands and stayed resident for the server's whole life, about 15 MB of its peak
(docs/benchmarks.md, "Server memory under the all phase"). The commands that need them
import them when they run (tests/cli/test_cli.py and test_cache_cli.py run those).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVE_ONLY_WITHOUT = {"alembic", "mako", "faker", "httpx"}

# What `strata serve` does before it listens: the console script's module, the serving
# module, and the app built by its factory (graph/cli/serving.py, APP).
PROGRAM = """
import json, sys
import graph.cli.main, graph.cli.serving
from graph.web.app import create_app
create_app()
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def _serving_modules(tmp_path: Path) -> set[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRATA_")}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"
    env.pop("REDIS_URL", None)
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_the_server_does_not_import_what_only_other_commands_use(tmp_path: Path) -> None:
    modules = _serving_modules(tmp_path)
    assert {"graph", "strawberry", "uvicorn", "typer"} <= modules  # it did build the app
    assert modules.isdisjoint(SERVE_ONLY_WITHOUT), modules & SERVE_ONLY_WITHOUT
