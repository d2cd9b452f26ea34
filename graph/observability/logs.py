"""Structured logs: one JSON object per line (or readable console lines in development),
for structlog's loggers and the standard library's alike.

The one line per operation has a writer of its own, `JsonLines`: at the default INFO
level it is written for every request, response-cache hits included, and structlog's
processor chain and the standard library's handler cost several times a whole hit
(docs/benchmarks.md, "The response-cache hit path"). It writes the same JSON object those
would, on the same stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import sys
import time
from collections.abc import Callable
from typing import Any, BinaryIO, TextIO

import orjson
import structlog
from structlog.typing import Processor

from graph.settings import Settings

HANDLER_NAME = "strata"
FLUSH_SECONDS = 0.1  # how long an operation line may wait in the buffer
BUFFER_BYTES = 64 * 1024  # the buffer given to a stream that has none
PENDING_LINES = 256  # templated lines kept before they are rendered in any case


def _dumps(value: object, **_kwargs: object) -> str:
    return orjson.dumps(value, default=str).decode()


class StreamLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's stream handler, writing the `JsonLines` kept on its stream
    first, so every line reaches the stream in the order it was logged."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.before_emit: Callable[[], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.before_emit is not None:
            self.before_emit()
        super().emit(record)


def configure_logging(settings: Settings) -> logging.Handler:
    level = logging.getLevelNamesMapping().get(settings.log_level.upper(), logging.INFO)
    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    # structlog's events go through the standard library's handlers, so both kinds of
    # logger share one output and one format.
    # The level is the standard library's, checked first (filter_by_level), so it can be
    # changed at run time and loggers bound earlier follow it.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = StreamLines(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    handler.set_name(HANDLER_NAME)
    root = logging.getLogger()
    # Replace our handler if configured before; leave others (a test runner's) alone.
    root.handlers = [h for h in root.handlers if h.get_name() != HANDLER_NAME] + [handler]
    root.setLevel(level)
    return handler


class JsonLines:
    """JSON log lines written straight to a stream's binary buffer: the fields, then
    `event`, `level` and an ISO `timestamp` in UTC, as the structlog configuration above
    renders them.

    Each line goes into the buffer in order with every other line on the stream (its text
    layer writes through the same buffer), which writes whenever it is full, and at the
    latest FLUSH_SECONDS after a line: one system call for many lines instead of one each
    (flushing at every turn of the event loop still cost a system call every request or
    two under load). A stream with no buffer under it (stderr with PYTHONUNBUFFERED set,
    as container images often have) gets one of its own on the same file descriptor:
    there, a line can reach the file up to FLUSH_SECONDS after lines other loggers wrote
    later.

    A templated line (`later`: fixed bytes around a duration and a time) is kept as its
    parts and rendered with the lines kept beside it, before any other line is written
    and at the latest when the buffer is flushed: rendered in a batch, a line costs about
    half what it costs between a server's other work (docs/benchmarks.md, "The hit
    path's server-side CPU"). Its duration and time are taken when it is kept."""

    __slots__ = ("_buffer", "_flush_pending", "_pending", "_second", "_stamp")

    def __init__(self, stream: TextIO) -> None:
        buffer: BinaryIO = stream.buffer
        if isinstance(buffer, io.RawIOBase):  # every write would be a system call
            raw = io.FileIO(buffer.fileno(), "wb", closefd=False)
            buffer = io.BufferedWriter(raw, BUFFER_BYTES)  # type: ignore[assignment]
        self._buffer = buffer
        self._flush_pending = False
        self._pending: list[tuple[bytes, float, bytes, float]] = []
        self._second = -1
        self._stamp = ""

    def emit(self, fields: dict[str, Any], event: str, level: str) -> None:
        fields["event"], fields["level"], fields["timestamp"] = event, level, self.timestamp()
        self.write(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def write(self, line: bytes) -> None:
        """One line already rendered as `emit` renders it (newline included)."""
        if self._pending:
            self.render_pending()
        self._buffer.write(line)
        if not self._flush_pending:
            self._flush_soon()

    def later(self, head: bytes, duration_ms: float, middle: bytes) -> None:
        """The line `head + duration + middle + timestamp + '"}' + newline`, its duration
        encoded as `emit` encodes a float and its time taken now, rendered later."""
        pending = self._pending
        pending.append((head, duration_ms, middle, time.time()))
        if len(pending) >= PENDING_LINES:
            self.render_pending()
        if not self._flush_pending:
            self._flush_soon()

    def render_pending(self) -> None:
        """Writes the templated lines kept so far into the buffer, in order."""
        pending, self._pending = self._pending, []
        write, stamp, dumps = self._buffer.write, self._stamp_of, orjson.dumps
        with contextlib.suppress(ValueError):  # the stream was closed meanwhile (at exit)
            for head, duration_ms, middle, now in pending:
                write(b"".join((head, dumps(duration_ms), middle, stamp(now), b'"}\n')))

    def _flush_soon(self) -> None:
        self._flush_pending = True
        try:
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
        except RuntimeError:  # no event loop: at once
            self.flush()

    def flush(self) -> None:
        """Writes what the buffer holds (also called when the app shuts down)."""
        self._flush_pending = False
        self.render_pending()
        with contextlib.suppress(ValueError):  # the stream was closed meanwhile (at exit)
            self._buffer.flush()

    def timestamp(self) -> str:
        """`datetime.now(UTC).isoformat()` with `Z` for `+00:00`."""
        return self._stamp_of(time.time()).decode()

    def _stamp_of(self, now: float) -> bytes:
        """The timestamp of `now` (seconds since the epoch), formatted from the second
        down only once per second."""
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = int((now - second) * 1_000_000)
        stamp = f"{self._stamp}.{micros:06d}Z" if micros else f"{self._stamp}Z"
        return stamp.encode()


def json_lines(settings: Settings) -> JsonLines | None:
    """A `JsonLines` on the stream of the handler `configure_logging` installed, when logs
    are JSON; None otherwise (console lines go through structlog)."""
    if settings.log_format != "json":
        return None
    for handler in logging.getLogger().handlers:
        if (
            handler.get_name() == HANDLER_NAME
            and isinstance(handler, StreamLines)
            and hasattr(handler.stream, "buffer")
        ):
            lines = JsonLines(handler.stream)
            handler.before_emit = lines.render_pending
            return lines
    return None
