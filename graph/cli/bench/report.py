"""Ratios, target checks, the terminal table and the PNG charts of one benchmark run."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RUN_ORDER = ("mix", "list", "detail")
CACHED = ("fields", "all")


def _run(document: dict[str, Any], phase: str, kind: str) -> dict[str, Any] | None:
    run: dict[str, Any] | None = document["phases"].get(phase, {}).get("runs", {}).get(kind)
    return run


def _div(a: float | None, b: float | None, digits: int = 3) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, digits)


def ratios(document: dict[str, Any]) -> dict[str, Any]:
    """Each cached phase against the uncached one, per run: rps multiple and p99 fraction;
    and every phase's rps as a fraction of /healthz."""
    out: dict[str, Any] = {}
    healthz = document.get("healthz")
    for phase in document["phases"]:
        per_run: dict[str, Any] = {}
        for kind in RUN_ORDER:
            run, base = _run(document, phase, kind), _run(document, "off", kind)
            if run is None:
                continue
            entry: dict[str, Any] = {
                "of_healthz": _div(run["rps"], healthz["rps"]) if healthz else None
            }
            if base is not None and phase != "off":
                entry["rps_x_off"] = _div(run["rps"], base["rps"], 2)
                entry["p99_of_off"] = _div(run["latency_ms"]["p99"], base["latency_ms"]["p99"])
            per_run[kind] = entry
        out[phase] = per_run
    return out


def _check(
    name: str,
    value: float | None,
    threshold: float,
    comparison: str,
    note: str = "",
) -> dict[str, Any]:
    tests: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda v, t: v >= t,
        "<": lambda v, t: v < t,
        "<=": lambda v, t: v <= t,
        "==": lambda v, t: v == t,
    }
    passed = None if value is None else tests[comparison](value, threshold)
    return {
        "name": name,
        "value": value,
        "comparison": comparison,
        "threshold": threshold,
        "passed": passed,
        "note": note,
    }


def targets(document: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets of issues 5 and 7, as measured ratios of this run (None: not measured)."""
    r = document["ratios"] if "ratios" in document else ratios(document)
    checks: list[dict[str, Any]] = []

    def ratio(phase: str, kind: str, key: str) -> float | None:
        value: float | None = r.get(phase, {}).get(kind, {}).get(key)
        return value

    def server(phase: str, kind: str, key: str) -> float | None:
        run = _run(document, phase, kind)
        if run is None:
            return None
        value: float | None = run["server"].get(key)
        return value

    if "off" in document["phases"]:
        for kind in ("list", "detail"):
            if "all" in document["phases"]:
                checks.append(
                    _check(
                        f"all: {kind} page rps ≥ 50x uncached",
                        ratio("all", kind, "rps_x_off"),
                        50,
                        ">=",
                    )
                )
        for kind in ("list", "detail"):
            if "fields" in document["phases"]:
                checks.append(
                    _check(
                        f"fields: {kind} page rps ≥ 3x uncached",
                        ratio("fields", kind, "rps_x_off"),
                        3,
                        ">=",
                    )
                )
                checks.append(
                    _check(
                        f"fields: {kind} page p99 < ⅓ of uncached p99",
                        ratio("fields", kind, "p99_of_off"),
                        1 / 3,
                        "<",
                    )
                )
    if (
        "all" in document["phases"]
        and document.get("healthz", {})
        and (document["healthz"]["phase"] == "all")
    ):
        for kind in ("list", "detail"):
            checks.append(
                _check(
                    f"all: {kind} page rps ≥ 60% of /healthz",
                    ratio("all", kind, "of_healthz"),
                    0.6,
                    ">=",
                )
            )
    if "fields" in document["phases"]:
        checks.append(
            _check(
                "fields: SQL statements per warm list request = 0",
                server("fields", "list", "sql_per_request"),
                0,
                "==",
            )
        )
        for kind in ("list", "detail"):
            value = server("fields", kind, "redis_round_trips_per_request")
            checks.append(
                _check(
                    f"fields: Redis round trips per warm {kind} request ≤ 1",
                    value,
                    1,
                    "<=",
                    ""
                    if value is not None
                    else "strata_cache_redis_round_trips_total is not exposed by this server",
                )
            )
    checks.append(_check("errors in every run = 0", error_total(document), 0, "=="))
    return checks  # fmt: skip


def error_total(document: dict[str, Any]) -> int:
    runs: list[dict[str, Any]] = [
        run for phase in document["phases"].values() for run in phase["runs"].values()
    ]
    runs += [run for points in document["curve"].values() for run in points.values()]
    if document.get("healthz"):
        runs.append(document["healthz"])
    return sum(int(run["errors"]["total"]) for run in runs)


# -- terminal ------------------------------------------------------------------------------


def _fmt(value: float | None, pattern: str = "{:.2f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def table(document: dict[str, Any]) -> Table:
    t = Table(title="strata bench", title_justify="left")
    columns = ("phase", "run", "req/s", "x off", "p50 ms", "p95 ms", "p99 ms", "errors",
               "SQL/req", "Redis RT/req", "L1 hit", "L2 hit", "resp hit", "Redis err")  # fmt: skip
    for column in columns:
        t.add_column(column, justify="left" if column in ("phase", "run") else "right")
    for phase, data in document["phases"].items():
        for kind in RUN_ORDER:
            run = data["runs"].get(kind)
            if run is None:
                continue
            server = run["server"]
            multiple = document["ratios"].get(phase, {}).get(kind, {}).get("rps_x_off")
            latency = run["latency_ms"]
            t.add_row(
                phase,
                kind if "failed" not in run else f"{kind} FAILED",
                f"{run['rps']:,.0f}",
                _fmt(multiple, "{:.1f}x"),
                _fmt(latency["p50"]),
                _fmt(latency["p95"]),
                _fmt(latency["p99"]),
                str(run["errors"]["total"]),
                _fmt(server["sql_per_request"]),
                _fmt(server["redis_round_trips_per_request"]),
                _pct(server["l1_hit_ratio"]),
                _pct(server["l2_hit_ratio"]),
                _pct(server["response_hit_ratio"]),
                _fmt(server.get("redis_errors"), "{:d}"),
            )
    healthz = document.get("healthz")
    if healthz:
        latency = healthz["latency_ms"]
        t.add_row(healthz["phase"], "/healthz", f"{healthz['rps']:,.0f}", "", _fmt(latency["p50"]),
                  _fmt(latency["p95"]), _fmt(latency["p99"]), str(healthz["errors"]["total"]),
                  "", "", "", "", "", "")  # fmt: skip
    return t


def curve_table(document: dict[str, Any]) -> Table:
    t = Table(title="cost curve: the list page alone, by `first`", title_justify="left")
    t.add_column("phase")
    t.add_column("first", justify="right")
    for column in ("req/s", "p50 ms", "p99 ms", "SQL/req", "errors"):
        t.add_column(column, justify="right")
    for phase, points in document["curve"].items():
        for first, run in points.items():
            t.add_row(phase, first, f"{run['rps']:,.0f}", _fmt(run["latency_ms"]["p50"]),
                      _fmt(run["latency_ms"]["p99"]), _fmt(run["server"]["sql_per_request"]),
                      str(run["errors"]["total"]))  # fmt: skip
    return t


def target_lines(document: dict[str, Any]) -> list[str]:
    lines = []
    for check in document["targets"]:
        status = {True: "PASS", False: "FAIL", None: "N/A "}[check["passed"]]
        value = check["value"]
        shown = "n/a" if value is None else f"{value:g}"
        note = f" ({check['note']})" if check["note"] else ""
        lines.append(f"{status}  {check['name']}: measured {shown}{note}")
    return lines


def print_report(document: dict[str, Any], console: Console, json_path: Path) -> None:
    console.print(table(document))
    if document["curve"]:
        console.print(curve_table(document))
    colours = {"PASS": "green", "FAIL": "red", "N/A ": "yellow"}
    for line in target_lines(document):
        console.print(f"[{colours[line[:4]]}]{line}[/]", highlight=False)
    console.print(f"results: {json_path}")
    for chart in document["charts"]:
        console.print(f"chart:   {chart}")


# -- charts --------------------------------------------------------------------------------


def charts(document: dict[str, Any], out: Path) -> list[Path]:
    """rps per phase, p99 per phase, and the cost curve, as PNGs in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    phases = list(document["phases"])
    paths: list[Path] = []
    for metric, title, ylabel, filename in (
        ("rps", "Requests per second by phase (log scale)", "requests/s", "bench-rps.png"),
        ("p99", "p99 latency by phase (log scale)", "ms", "bench-p99.png"),
    ):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        width = 0.8 / len(RUN_ORDER)
        for i, kind in enumerate(RUN_ORDER):
            values = []
            for phase in phases:
                run = _run(document, phase, kind)
                value = None
                if run is not None:
                    value = run["rps"] if metric == "rps" else run["latency_ms"]["p99"]
                values.append(max(value or 0.0, 1e-3))
            positions = [p + (i - (len(RUN_ORDER) - 1) / 2) * width for p in range(len(phases))]
            bars = ax.bar(positions, values, width, label=kind)
            ax.bar_label(bars, fmt="{:,.0f}" if metric == "rps" else "%.3g", fontsize=7)
        if metric == "rps" and document.get("healthz"):
            ax.axhline(document["healthz"]["rps"], color="grey", linestyle="--", linewidth=1,
                       label="/healthz")  # fmt: skip
        ax.set_xticks(range(len(phases)), phases)
        ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / filename
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    if document["curve"]:
        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), dpi=100)
        for phase, points in document["curve"].items():
            firsts = [int(first) for first in points]
            left.plot(firsts, [run["rps"] for run in points.values()], marker="o", label=phase)
            right.plot(firsts, [run["latency_ms"]["p50"] or math.nan for run in points.values()],
                       marker="o", label=phase)  # fmt: skip
        for ax, ylabel in ((left, "requests/s"), (right, "p50 latency, ms")):
            ax.set_xlabel("first (books per page)")
            ax.set_ylabel(ylabel)
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        fig.suptitle("Cost curve: the list page alone")
        fig.tight_layout()
        path = out / "bench-curve.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


# -- markdown ------------------------------------------------------------------------------


def markdown(document: dict[str, Any], chart_dir: str = ".") -> str:
    """The run as Markdown (written next to the JSON as bench.md, pasted into the docs)."""
    m = document["machine"]
    lines = [
        f"Command: `{document['command']}` — commit `{m['commit']}`"
        + (" (with uncommitted changes)" if m.get("uncommitted_changes") else "")
        + f", started {document['started']}.",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), Python {m['python']}, {m['wrk']}; "
        f"wrk on CPU {document['setup']['wrk_cpus']}, server on CPU "
        f"{document['setup']['server_cpus']}; load average at start "
        f"{', '.join(str(x) for x in m['load_average_at_start'])}.",
        "",
        "| phase | run | req/s | x off | p50 ms | p95 ms | p99 ms | errors | SQL/req "
        "| Redis RT/req | L1 hit | L2 hit | resp hit | Redis err |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for phase, data in document["phases"].items():
        for kind in RUN_ORDER:
            run = data["runs"].get(kind)
            if run is None:
                continue
            s = run["server"]
            lat = run["latency_ms"]
            multiple = document["ratios"].get(phase, {}).get(kind, {}).get("rps_x_off")
            name = kind if "failed" not in run else f"{kind} FAILED"
            lines.append(
                f"| {phase} | {name} | {run['rps']:,.0f} | {_fmt(multiple, '{:.1f}x')} "
                f"| {_fmt(lat['p50'])} | {_fmt(lat['p95'])} | {_fmt(lat['p99'])} "
                f"| {run['errors']['total']} | {_fmt(s['sql_per_request'])} "
                f"| {_fmt(s['redis_round_trips_per_request'])} | {_pct(s['l1_hit_ratio'])} "
                f"| {_pct(s['l2_hit_ratio'])} | {_pct(s['response_hit_ratio'])} "
                f"| {_fmt(s.get('redis_errors'), '{:d}')} |"
            )
    h = document.get("healthz")
    if h:
        lat = h["latency_ms"]
        lines.append(
            f"| {h['phase']} | /healthz | {h['rps']:,.0f} | | {_fmt(lat['p50'])} "
            f"| {_fmt(lat['p95'])} | {_fmt(lat['p99'])} | {h['errors']['total']} "
            "| | | | | | |"
        )
    if document["curve"]:
        lines += ["", "Cost curve (the list page alone):", ""]
        lines += ["| phase | first | req/s | p50 ms | p99 ms | SQL/req | errors |"]
        lines += ["|---|--:|--:|--:|--:|--:|--:|"]
        for phase, points in document["curve"].items():
            for first, run in points.items():
                lines.append(
                    f"| {phase} | {first} | {run['rps']:,.0f} "
                    f"| {_fmt(run['latency_ms']['p50'])} | {_fmt(run['latency_ms']['p99'])} "
                    f"| {_fmt(run['server']['sql_per_request'])} | {run['errors']['total']} |"
                )
    lines += ["", "Target checks (as printed by the command):", "", "```"]
    lines += target_lines(document)
    lines += ["```", ""]
    for chart in document.get("charts", []):
        name = Path(chart).name
        lines.append(f"![{name}]({chart_dir}/{name})")
    return "\n".join(lines) + "\n"
