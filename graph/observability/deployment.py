"""The whole deployment from the records its instances publish (graph.observability.presence):
totals added up over every live instance, one row per instance, and the hottest keys and
recent invalidations merged.

A record is one process's figures (graph.observability.figures) plus `instance`: its id,
host, pid, start time, uptime and when it was published. Every worker of
`strata serve --workers N` publishes its own, so adding records up counts each request
once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graph.observability.activity import BROADCAST, ECHO_SECONDS
from graph.observability.figures import (
    RECENT,
    TIERS,
    TOP,
    counts,
    latency,
    number,
    tier,
    with_notes,
)

Record = Mapping[str, Any]
ROW_KEYS = 3
ROW_INVALIDATIONS = 5


def _summed(records: Iterable[Record], *path: str) -> float:
    total = 0.0
    for record in records:
        value: Any = record
        for step in path:
            value = value.get(step, {}) if isinstance(value, Mapping) else {}
        if isinstance(value, int | float):
            total += value
    return total


def _merged(records: Iterable[Record], *path: str) -> dict[str, int | float]:
    """{label: sum} of the mappings found at `path` in every record."""
    out: dict[str, float] = defaultdict(float)
    for record in records:
        value: Any = record
        for step in path:
            value = value.get(step, {}) if isinstance(value, Mapping) else {}
        for label, n in value.items() if isinstance(value, Mapping) else ():
            out[str(label)] += float(n)
    return counts(dict(sorted(out.items())))


def _bound(le: Any) -> float:
    return float("inf") if le == "+Inf" else float(le)


def _latency(records: Sequence[Record]) -> dict[str, Any]:
    cumulative: dict[float, float] = defaultdict(float)
    for record in records:
        for le, n in record.get("latency", {}).get("buckets", []):
            cumulative[_bound(le)] += float(n)
    return latency(sorted(cumulative.items()), _summed(records, "latency", "sum"))


def _tiers(records: Sequence[Record]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name in TIERS:
        extra = {"skips": _summed(records, "tiers", name, "skips")} if name == "response" else {}
        out[name] = tier(
            _summed(records, "tiers", name, "hits"),
            _summed(records, "tiers", name, "misses"),
            **extra,
        )
    return out


def totals(records: Sequence[Record], status: str) -> dict[str, Any]:
    """The deployment's figures: every counter added up over `records`."""
    tiers = _tiers(records)
    with_notes(tiers, status, len(records))
    return {
        "requests": {
            "total": number(_summed(records, "requests", "total")),
            "by_method": _merged(records, "requests", "by_method"),
        },
        "latency": _latency(records),
        "operations": _merged(records, "operations"),
        "tiers": tiers,
        "cache": {
            "l1_entries": number(_summed(records, "cache", "l1_entries")),
            "evictions": number(_summed(records, "cache", "evictions")),
            "integrity_failures": number(_summed(records, "cache", "integrity_failures")),
            "redis_errors": _merged(records, "cache", "redis_errors"),
            "breakers_open": sum(1 for r in records if r.get("cache", {}).get("breaker_open")),
        },
        "sql_statements": number(_summed(records, "sql_statements")),
        "invalidations_by_kind": _merged(records, "invalidations_by_kind"),
        "rejected": _merged(records, "rejected"),
        "errors": _merged(records, "errors"),
    }


def row(record: Record, status: str) -> dict[str, Any]:
    """One instance, as the per-instance table shows it."""
    tiers = {name: dict(record["tiers"][name]) for name in TIERS}
    with_notes(tiers, record.get("cache", {}).get("status", status), 1)
    found = record.get("latency", {})
    return {
        **record["instance"],
        "requests": record["requests"]["total"],
        "tiers": tiers,
        "latency": {name: found.get(name) for name in ("p50", "p95", "p99")},
        "sql_statements": record.get("sql_statements", 0),
        "cache": record.get("cache", {}),
        "hot_keys": list(record.get("hot_keys", []))[:ROW_KEYS],
        "recent_invalidations": list(record.get("recent_invalidations", []))[:ROW_INVALIDATIONS],
    }


def hot_keys(records: Iterable[Record]) -> list[dict[str, Any]]:
    reads: Counter[str] = Counter()
    where: dict[str, list[str]] = defaultdict(list)
    for record in records:
        for item in record.get("hot_keys", []):
            reads[item["key"]] += int(item["reads"])
            where[item["key"]].append(record["instance"]["id"])
    return [{"key": key, "reads": n, "instances": where[key]} for key, n in reads.most_common(TOP)]


def hot_tags(records: Iterable[Record]) -> list[dict[str, Any]]:
    bumps: Counter[str] = Counter()
    for record in records:
        for item in record.get("hot_tags", []):
            bumps[item["tag"]] += int(item["invalidations"])
    return [{"tag": tag, "invalidations": n} for tag, n in bumps.most_common(TOP)]


def recent_invalidations(records: Iterable[Record]) -> list[dict[str, Any]]:
    """Newest first, each bump once. The instance that made a bump lists it under its own
    source (mutation, admin…); every other instance heard it on the broadcast. A bump
    only heard (no live instance made it: `strata cache invalidate`, or an instance since
    stopped) is listed once, with the instances that heard it."""
    made: list[dict[str, Any]] = []
    heard: list[dict[str, Any]] = []
    for record in records:
        instance = record["instance"]["id"]
        for item in record.get("recent_invalidations", []):
            entry = {**item, "instance": instance}
            (heard if item["source"] == BROADCAST else made).append(entry)
    kept = list(made)
    for item in sorted(heard, key=lambda found: found["at"]):
        same = _same_bump(item, kept)
        if same is None:
            kept.append({**item, "instance": None, "heard_by": [item["instance"]]})
        elif same["source"] == BROADCAST:
            same["heard_by"].append(item["instance"])
    kept.sort(key=lambda found: found["at"], reverse=True)
    return kept[:RECENT]


def _same_bump(item: Mapping[str, Any], kept: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    tags = set(item["tags"])
    for other in kept:
        if set(other["tags"]) == tags and abs(other["at"] - item["at"]) <= ECHO_SECONDS:
            return other
    return None


def view(records: Sequence[Record], status: str) -> dict[str, Any]:
    """Everything the dashboard and `strata cache stats` show of the deployment."""
    ordered = sorted(
        records, key=lambda r: (r["instance"]["host"], r["instance"]["pid"], r["instance"]["id"])
    )
    return {
        "instance_count": len(ordered),
        "totals": totals(ordered, status),
        "instances": [row(record, status) for record in ordered],
        "hot_keys": hot_keys(ordered),
        "hot_tags": hot_tags(ordered),
        "recent_invalidations": recent_invalidations(ordered),
    }
