"""What one operation did: a structured log line, Prometheus figures and, when asked for,
`extensions.cache` in the response.

The figures are collected on an `OperationStats` that lives for one request: the HTTP
layer opens it (response-cache hits never reach Strawberry but are operations too), the
schema extension names the operation and hands the figures to the response, SQLAlchemy's
cursor events and the DataLoaders add theirs through a context variable.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from sqlalchemy import Engine, event
from strawberry.extensions import SchemaExtension

from cache import Observation, TieredCache
from graph.observability.counting import Observer
from graph.observability.logs import JsonLines, Template
from graph.observability.metrics import Metrics

LOGGER = "strata.operation"
log = structlog.get_logger(LOGGER)
_stdlib_log = logging.getLogger(LOGGER)

# Distinct line templates kept (see OperationLines), and the duration they are cut at.
MAX_LINE_TEMPLATES = 1024
DURATION_MARK = 987654321.125

_current: ContextVar[OperationStats | None] = ContextVar("strata_operation", default=None)


@dataclass(slots=True)
class OperationStats:
    cache: Observation
    name: str | None = None
    type: str = "query"
    response: str | None = None
    started: float = field(default_factory=time.perf_counter)
    sql_statements: int = 0
    sql_seconds: float = 0.0
    batches: dict[str, list[int]] = field(default_factory=dict)
    tags_invalidated: int = 0

    def seconds(self) -> float:
        return time.perf_counter() - self.started

    def report(self) -> dict[str, Any]:
        return {
            "operation": self.name,
            "type": self.type,
            "duration_ms": round(self.seconds() * 1000, 3),
            "response": self.response,
            "cache": self.cache.counts(),
            "dataloaders": self.batches,
            "sql": {"statements": self.sql_statements, "ms": round(self.sql_seconds * 1000, 3)},
            "tags_invalidated": self.tags_invalidated,
        }


class observing_operation:
    """Opens an operation's statistics for the current task (a class, not a generator:
    it runs on every request and must cost next to nothing)."""

    __slots__ = ("_observation", "_stats", "_token")

    def __init__(self, cache: TieredCache) -> None:
        self._observation = cache.observing()
        self._stats = OperationStats(cache=self._observation)
        self._token: Token[OperationStats | None] | None = None

    def __enter__(self) -> OperationStats:
        self._observation.__enter__()
        self._token = _current.set(self._stats)
        return self._stats

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            _current.reset(self._token)
        self._observation.__exit__(*exc)


def current() -> OperationStats | None:
    return _current.get()


def batch_loaded(loader: str, size: int) -> None:
    stats = _current.get()
    if stats is not None:
        stats.batches.setdefault(loader, []).append(size)


def tags_invalidated(count: int) -> None:
    stats = _current.get()
    if stats is not None:
        stats.tags_invalidated += count


def count_sql(engines: Iterable[Engine], metrics: Metrics) -> None:
    """Count every statement for /metrics, and time it for the operation that ran it.

    A read may run in a thread (models/database.py), in a copy of its operation's context:
    two reads of one operation can finish at once, hence the lock."""
    lock = threading.Lock()

    def before(conn: Any, *_args: Any) -> None:
        metrics.sql_statements.inc()
        conn.info["strata_started"] = time.perf_counter()

    def after(conn: Any, *_args: Any) -> None:
        stats = _current.get()
        if stats is not None:
            took = time.perf_counter() - conn.info.pop("strata_started", 0.0)
            with lock:
                stats.sql_statements += 1
                stats.sql_seconds += took

    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
        event.listen(engine, "after_cursor_execute", after)


class OperationLines:
    """Writes the operation lines through a `JsonLines`, byte for byte as its `emit` would.

    The line of an operation that ran no SQL, loaded nothing and invalidated nothing
    (every response-cache hit) depends only on its name, type, response, cache counts,
    duration and time: it is rendered once per (name, type, response, counts) as the bytes
    around its duration and timestamp, so such a line costs two small encodings."""

    def __init__(self, lines: JsonLines) -> None:
        self._lines = lines
        self._templates: dict[tuple[Any, ...], Template] = {}

    def write(self, stats: OperationStats) -> None:
        if stats.sql_statements or stats.batches or stats.tags_invalidated:
            self._lines.emit(stats.report(), "operation", "info")
            return
        key = (stats.name, stats.type, stats.response, *stats.cache.counts().values())
        template = self._templates.get(key)
        if template is None:
            template = self._template(stats)
            if len(self._templates) >= MAX_LINE_TEMPLATES:  # names are client text
                self._templates.clear()
            self._templates[key] = template
        self.write_template(template, stats.seconds())

    def write_template(self, template: Template, seconds: float) -> None:
        self._lines.write_timed(template, seconds)

    def hit_template(self, name: str | None) -> Template:
        """The line of a query `name` answered by one L1 read of the response cache."""
        observation = Observation()
        observation.add("l1_hits", 1)
        return self._template(OperationStats(observation, name, response="hit"))

    def flush(self) -> None:
        self._lines.flush()

    @staticmethod
    def _template(stats: OperationStats) -> Template:
        fields = stats.report()
        fields["duration_ms"] = DURATION_MARK
        fields["event"], fields["level"], fields["timestamp"] = "operation", "info", ""
        head, _, rest = orjson.dumps(fields, default=str).partition(orjson.dumps(DURATION_MARK))
        return head, rest.removesuffix(b'"}')


def report(stats: OperationStats, metrics: Metrics, lines: OperationLines | None = None) -> None:
    """The operation ended: its figures in the Prometheus series, and one log line when
    the log level lets it through (its dict is not even built otherwise), written by
    `lines` when given."""
    if metrics.enabled:
        metrics.operation_timer(stats.type, stats.response or "none").observe(stats.seconds())
        if stats.response != "hit":  # a hit never reaches the database
            metrics.sql_per_operation.observe(stats.sql_statements)
        for loader, sizes in stats.batches.items():
            histogram = metrics.batch_size.labels(loader=loader)
            for size in sizes:
                histogram.observe(size)
    if _stdlib_log.isEnabledFor(logging.INFO):
        if lines is not None:
            lines.write(stats)
        else:
            log.info("operation", **stats.report())


def report_replayed(
    seconds: float, timer: Observer, lines: OperationLines | None, line: Template
) -> None:
    """`report` for a hit replayed with no `OperationStats`: the same series and line."""
    timer.observe(seconds)
    if lines is not None and _stdlib_log.isEnabledFor(logging.INFO):
        lines.write_template(line, seconds)


class OperationObserver(SchemaExtension):
    """Names the operation on its stats; with stats exposed, adds them to the response."""

    def __init__(self, *, expose: bool) -> None:
        self.expose = expose

    def on_operation(self) -> Iterator[None]:
        # Strawberry already runs the operation hook for its query-limit extensions; its
        # execute hook would add a whole layer of machinery to every query (measured in
        # docs/benchmarks.md, "Per-operation statistics overhead").
        yield
        execution = self.execution_context
        if execution.graphql_document is None:
            return  # it did not parse: nothing ran
        # The HTTP layer needs to know what ran: a mutation's answer is never cacheable.
        with contextlib.suppress(RuntimeError):  # an unknown operationName
            execution.context.operation_type = execution.operation_type
        stats = _current.get()
        if stats is not None and execution.context.operation_type is not None:
            stats.name = execution.operation_name
            stats.type = execution.context.operation_type.value

    def get_results(self) -> dict[str, Any]:
        stats = _current.get()
        if not self.expose or stats is None:
            return {}
        return {"cache": stats.report()}
