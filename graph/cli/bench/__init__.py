"""`strata bench`: the before/after caching benchmark (SPEC section 8, issue 7).

plan        the page queries, the mix, the seeded Zipf choice of ids
config      the settings, the phases and their runs
wrk         the load generator: a Lua script per run, wrk's JSON result line
server      the database (migrate, seed, tokens) and one server process per phase
scrape      /metrics before and after a run, diffed into per-request figures
runner      seeding, scripts, the phases in order
course      one server per phase and its runs, with the progress bar
hits        the response-cache hit path in interleaved rounds (issue 15)
provenance  the machine, the commit, the results document
targets     ratios and target checks
report      the terminal tables, the PNG charts, the Markdown summary
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from graph.cli.bench.runner import PHASES, BenchConfig, run_bench
from graph.cli.bench.wrk import INSTALL_HINT, WrkMissing

__all__ = ["INSTALL_HINT", "PHASES", "BenchConfig", "WrkMissing", "main", "run_bench"]


def main(config: BenchConfig, console: Console) -> tuple[int, dict[str, Any] | None]:
    """Runs the benchmark and prints its report; the exit status is 0 only without errors."""
    from graph.cli.bench import report

    try:
        document = run_bench(config, console)
    except WrkMissing as missing:
        console.print(f"[red]{missing}")
        return 3, None
    # The report goes to stdout, wide enough for the table when piped to a file.
    stdout = Console(width=None if sys.stdout.isatty() else 160)
    report.print_report(document, stdout, Path(config.out).resolve() / "bench.json")
    return (0 if document["errors_total"] == 0 else 1), document
