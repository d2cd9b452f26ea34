"""Where a benchmark ran and what it found: the machine and commit, and the results
document (figures, ratios, target checks) written as bench.json."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from graph.cli.bench import plan as plans
from graph.cli.bench import report, wrk
from graph.cli.bench.config import CURVE_PHASES, PHASE_ENV, REQUESTS_PER_SCRIPT, BenchConfig, Step
from graph.cli.bench.scrape import SERVER_FIGURES
from graph.cli.bench.server import ROOT


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


def document(
    config: BenchConfig,
    info: dict[str, Any],
    started: datetime,
    steps: list[Step],
    setup: dict[str, Any],
    hit_path: dict[str, Any] | None,
    memory: dict[str, float | None],
) -> dict[str, Any]:
    """The results document: every run's figures, then the ratios and target checks."""
    wrk_cpus, server_cpus, own_database = (
        setup["wrk_cpus"],
        setup["server_cpus"],
        setup["own_database"],
    )
    phases: dict[str, dict[str, Any]] = {}
    curve: dict[str, dict[str, Any]] = {}
    healthz: dict[str, Any] | None = None
    yardstick: dict[str, Any] | None = None
    for step in steps:
        if step.phase == "yardstick":
            yardstick = yardstick or {"program": "benchmarks/yardstick.py", "runs": {}}
            yardstick["runs"][step.name] = step.result
        elif step.name == "healthz":
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
        "yardstick": yardstick,
        "hit_path": hit_path,
        # Peak resident memory of each phase's server (VmHWM), in MB.
        "peak_rss_mb": memory,
    }
    document["ratios"] = report.ratios(document)
    document["targets"] = report.targets(document)
    document["errors_total"] = report.error_total(document)
    return document
