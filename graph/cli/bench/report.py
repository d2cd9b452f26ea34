"""Ratios, target checks, the terminal table and the PNG charts of one benchmark run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graph.cli.bench.targets import RUN_ORDER, error_total, ratios, run_of, targets

__all__ = ["error_total", "ratios", "targets"]

CACHED = ("fields", "all")


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


def hit_rows(document: dict[str, Any]) -> list[list[str]]:
    """The hit-path section and the yardstick as rows: run, req/s, CPU µs/request,
    errors, response-cache hit ratio (per round)."""
    rows: list[list[str]] = []
    for kind, run in ((document.get("yardstick") or {}).get("runs") or {}).items():
        rows.append([f"yardstick/{kind}", f"{run['rps']:,.0f}",
                     _fmt(run.get("server_cpu_us_per_request"), "{:.0f}"),
                     str(run["errors"]["total"]), ""])  # fmt: skip
    hit = document.get("hit_path")
    for key, run in (hit or {}).get("runs", {}).items():
        ratios = " ".join(_pct(value) for value in run["response_hit_ratio"] if value is not None)
        rows.append([key, f"{run['rps_median']:,.0f}",
                     _fmt(run["server_cpu_us_per_request_median"], "{:.0f}"),
                     str(run["errors"]), ratios])  # fmt: skip
    return rows


HIT_COLUMNS = ("run", "req/s (median)", "server CPU µs/req (median)", "errors", "resp hit")


def hit_table(document: dict[str, Any]) -> Table:
    t = Table(title="hit path (interleaved rounds) and yardstick", title_justify="left")
    for column in HIT_COLUMNS:
        t.add_column(column, justify="left" if column in ("run", "resp hit") else "right")
    for row in hit_rows(document):
        t.add_row(*row)
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
    if hit_rows(document):
        console.print(hit_table(document))
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
    if not phases:  # only the yardstick or the hit-path section ran: no phase to chart
        return paths
    for metric, title, ylabel, filename in (
        ("rps", "Requests per second by phase (log scale)", "requests/s", "bench-rps.png"),
        ("p99", "p99 latency by phase (log scale)", "ms", "bench-p99.png"),
    ):
        fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
        width = 0.8 / len(RUN_ORDER)
        for i, kind in enumerate(RUN_ORDER):
            values = []
            for phase in phases:
                run = run_of(document, phase, kind)
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
    rows = hit_rows(document)
    if rows:
        lines += ["", "Hit path (medians of interleaved rounds) and yardstick:", ""]
        lines += ["| " + " | ".join(HIT_COLUMNS) + " |", "|---|--:|--:|--:|---|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
    memory = document.get("peak_rss_mb") or {}
    if memory:
        shown = ", ".join(f"{phase} {mb} MB" for phase, mb in memory.items())
        lines += ["", f"Peak server RSS by phase: {shown}."]
    lines += ["", "Target checks (as printed by the command):", "", "```"]
    lines += target_lines(document)
    lines += ["```", ""]
    for chart in document.get("charts", []):
        name = Path(chart).name
        lines.append(f"![{name}]({chart_dir}/{name})")
    return "\n".join(lines) + "\n"
