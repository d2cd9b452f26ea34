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
from typing import Any, BinaryIO, TextIO

import orjson
import structlog
from structlog.typing import Processor

from graph.settings import Settings

HANDLER_NAME = "strata"
_MICROS_END = [f'{micros:03d}Z"}}\n'.encode() for micros in range(1000)]
FLUSH_SECONDS = 0.1  # how long an operation line may wait in the buffer
BUFFER_BYTES = 64 * 1024  # the buffer given to a stream that has none


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

    Each line goes into the buffer at once (in order with every other line on the
    stream: its text layer writes through the same buffer), which writes whenever it is
    full, and at the latest FLUSH_SECONDS after a line: one system call for many lines
    instead of one each (flushing at every turn of the event loop still cost a system
    call every request or two under load). A stream with no buffer under it (stderr
    with PYTHONUNBUFFERED set, as container images often have) gets one of its own on
    the same file descriptor: there, a line can reach the file up to FLUSH_SECONDS after
    lines other loggers wrote later."""

    __slots__ = ("_buffer", "_flush_pending", "_milli", "_milli_text", "_second", "_stamp")

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

    def emit(self, fields: dict[str, Any], event: str, level: str) -> None:
        fields["event"], fields["level"], fields["timestamp"] = event, level, self.timestamp()
        self.write(orjson.dumps(fields, default=str, option=orjson.OPT_APPEND_NEWLINE))

    def write(self, line: bytes) -> None:
        """One line already rendered as `emit` renders it (newline included)."""
        self._buffer.write(line)
        if not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no event loop: at once
                self.flush()

    def flush(self) -> None:
        """Writes what the buffer holds (also called when the app shuts down)."""
        self._flush_pending = False
        with contextlib.suppress(ValueError):  # the stream was closed meanwhile (at exit)
            self._buffer.flush()

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

    def write_stamped(self, head: bytes, middle: bytes, tail: bytes) -> None:
        """The line `head + middle + tail + line_end()`, written as `write` does, in one
        call: at INFO it runs on every response-cache hit, where each call shows."""
        micros = time.time_ns() // 1000
        milli, rest = divmod(micros, 1000)
        if milli != self._milli or not (rest or milli % 1000):
            end = self.line_end()
        else:
            end = self._milli_text + _MICROS_END[rest]
        self.write(b"".join((head, middle, tail, end)))

    def line_end(self) -> bytes:
        """`timestamp()` encoded, closed as an operation line ends (`"}` and a newline):
        the text down to the millisecond made once per millisecond, the microseconds
        from a table (a line per request, and a hit costs tens of microseconds)."""
        micros = time.time_ns() // 1000
        milli, rest = divmod(micros, 1000)
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


def json_lines(settings: Settings) -> JsonLines | None:
    """A `JsonLines` on the stream of the handler `configure_logging` installed, when logs
    are JSON; None otherwise (console lines go through structlog)."""
    if settings.log_format != "json":
        return None
    for handler in logging.getLogger().handlers:
        if (
            handler.get_name() == HANDLER_NAME
            and isinstance(handler, logging.StreamHandler)
            and hasattr(handler.stream, "buffer")
        ):
            return JsonLines(handler.stream)
    return None
