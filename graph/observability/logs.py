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
import threading
import time
from typing import Any, BinaryIO, TextIO

import orjson
import structlog
from structlog.typing import Processor

from graph.settings import Settings

HANDLER_NAME = "strata"
_MICROS_END = [f'{micros:03d}Z"}}\n'.encode() for micros in range(1000)]
# Text of whole milliseconds below a second, and of the thousandths (trailing zeros cut).
_MILLIS = [str(n).encode() for n in range(1000)]
_FRACTIONS = [b".0", *(f".{n:03d}".rstrip("0").encode() for n in range(1, 1000))]
FLUSH_SECONDS = 0.1  # how long an operation line may wait in the buffer
BUFFER_BYTES = 64 * 1024  # the buffer given to a stream that has none
MAX_TIMED_LINES = 4096  # timed lines noted before they are rendered, whatever the clock

Template = tuple[bytes, bytes]
"""A line as the bytes before its duration and those between it and its time."""
TimedLine = tuple[Template, float, int]
"""A timed line: its template, its duration in seconds, and when (`time.time_ns()`)."""


def _dumps(value: object, **_kwargs: object) -> str:
    return orjson.dumps(value, default=str).decode()


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
    handler = logging.StreamHandler(sys.stderr)
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

    Each line goes into the buffer (in order with every other line on the stream: its
    text layer writes through the same buffer), which writes whenever it is full, and at
    the latest FLUSH_SECONDS after a line: one system call for many lines instead of one
    each (flushing at every turn of the event loop still cost a system call every request
    or two under load). A stream with no buffer under it (stderr with PYTHONUNBUFFERED
    set, as container images often have) gets one of its own on the same file
    descriptor: there, a line can reach the file up to FLUSH_SECONDS after lines other
    loggers wrote later.

    A timed line (`write_timed`: an operation line whose duration and time are all that
    differ from its template) is only noted when it happens and rendered at the next
    flush, with every other noted line, in one loop: rendered between a server's
    callbacks, each line cost about twice as much (docs/benchmarks.md, "The operation
    line, rendered in batches"). Noted lines are rendered before any other line is
    written, by `write` here and, through `filter`, before the handler of
    `configure_logging` writes a record on this thread: the stream keeps the order in
    which the lines were logged."""

    __slots__ = (
        "_buffer",
        "_flush_pending",
        "_milli",
        "_milli_text",
        "_second",
        "_stamp",
        "_thread",
        "_timed",
    )

    def __init__(self, stream: TextIO) -> None:
        buffer: BinaryIO = stream.buffer
        if isinstance(buffer, io.RawIOBase):  # every write would be a system call
            raw = io.FileIO(buffer.fileno(), "wb", closefd=False)
            buffer = io.BufferedWriter(raw, BUFFER_BYTES)  # type: ignore[assignment]
        self._buffer = buffer
        self._flush_pending = False
        self._second = -1
        self._stamp = ""
        self._milli = -1
        self._milli_text = b""
        self._timed: list[TimedLine] = []
        self._thread: int | None = None  # the event loop's, which notes timed lines

    def emit(self, fields: dict[str, Any], event: str, level: str) -> None:
        fields["event"], fields["level"], fields["timestamp"] = event, level, self.timestamp()
        self.write(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def write(self, line: bytes) -> None:
        """One line already rendered as `emit` renders it (newline included)."""
        if self._timed:
            self._render_timed()
        self._buffer.write(line)
        self._flush_soon()

    def write_timed(self, template: Template, seconds: float) -> None:
        """The line `head + duration_text(seconds) + tail + line_end(now)` of the
        template `(head, tail)`, rendered at the next flush (at most MAX_TIMED_LINES
        wait). Called on the event loop's thread."""
        timed = self._timed
        timed.append((template, seconds, time.time_ns()))
        if len(timed) >= MAX_TIMED_LINES:
            self._render_timed()
        if not self._flush_pending:
            self._flush_soon()

    def flush(self) -> None:
        """Writes what waits, noted or in the buffer (also called when the app shuts down)."""
        self._flush_pending = False
        with contextlib.suppress(ValueError):  # the stream was closed meanwhile (at exit)
            self._render_timed()
            self._buffer.flush()

    def filter(self, record: logging.LogRecord) -> bool:
        """As a filter of the handler writing to the same stream: the lines noted on this
        thread go first (another thread's records are not ordered with them anyway)."""
        if self._timed and threading.get_ident() == self._thread:
            self._render_timed()
        return True

    def timestamp(self) -> str:
        """`datetime.now(UTC).isoformat()` with `Z` for `+00:00`, formatted from the
        second down only once per second."""
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        micros = int((now - second) * 1_000_000)
        return f"{self._stamp}.{micros:06d}Z" if micros else f"{self._stamp}Z"

    def line_end(self, nanos: int) -> bytes:
        """The time `nanos` as `timestamp()` encodes it, closed as an operation line ends
        (`"}` and a newline): the text down to the millisecond made once per millisecond,
        the microseconds from a table."""
        milli, rest = divmod(nanos // 1000, 1000)
        if milli != self._milli:
            self._milli = milli
            second, fraction = divmod(milli, 1000)
            if second != self._second:
                self._second = second
                self._stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._milli_text = f"{self._stamp}.{fraction:03d}".encode()
        if rest or milli % 1000:
            return self._milli_text + _MICROS_END[rest]
        return self._milli_text[:-4] + b'Z"}\n'  # a whole second: isoformat has no fraction

    def _flush_soon(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no event loop: at once
                self.flush()
            else:
                self._thread = threading.get_ident()

    def _render_timed(self) -> None:
        timed, self._timed = self._timed, []
        if not timed:
            return
        parts: list[bytes] = []
        add = parts.append
        line_end = self.line_end
        for (head, tail), seconds, nanos in timed:
            add(head)
            add(duration_text(seconds))
            add(tail)
            add(line_end(nanos))
        self._buffer.write(b"".join(parts))


def duration_text(seconds: float) -> bytes:
    """The duration in milliseconds, to the microsecond, as `orjson.dumps(round(ms, 3))`
    writes it (`round` with digits formats and parses a decimal string: it alone cost more
    than the rest of an operation line)."""
    millis, fraction = divmod(round(max(seconds, 0.0) * 1_000_000), 1000)
    return (_MILLIS[millis] if millis < 1000 else str(millis).encode()) + _FRACTIONS[fraction]


def json_lines(settings: Settings) -> JsonLines | None:
    """A `JsonLines` on the stream of the handler `configure_logging` installed, when logs
    are JSON, and that handler's filter (see `JsonLines.filter`); None otherwise (console
    lines go through structlog)."""
    if settings.log_format != "json":
        return None
    for handler in logging.getLogger().handlers:
        if (
            handler.get_name() == HANDLER_NAME
            and isinstance(handler, logging.StreamHandler)
            and hasattr(handler.stream, "buffer")
        ):
            lines = JsonLines(handler.stream)
            for earlier in [f for f in handler.filters if isinstance(f, JsonLines)]:
                handler.removeFilter(earlier)  # an app started again on this handler
            handler.addFilter(lines)
            return lines
    return None
