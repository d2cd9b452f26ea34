"""A deadline for Redis calls that measures Redis, not this process's own delays."""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    """``async with Deadline(seconds):`` like ``asyncio.timeout(seconds)``, except that a
    reply which reached this process by the time the deadline was noticed is still taken.

    When the event loop is busy (CPU-bound requests), a due timer and a reply that arrived
    meanwhile are handled in the same loop turn, and ``asyncio.timeout`` cancels the task
    before it can take the reply: a Redis that answered in a millisecond counts as timing
    out, the breaker opens and L1 is flushed, which makes the overload worse (measured in
    docs/decisions.md, "Redis faults"). Here the cancellation is queued behind whatever
    wake-ups the loop has already queued, so only a reply still missing when the deadline
    is noticed is a timeout. That holds on asyncio's loop and on uvloop when the loop was
    held up by tasks or callbacks (request handling); on uvloop, a loop held up inside an
    I/O callback itself still loses the reply, as with ``asyncio.timeout``.
    """

    __slots__ = ("_handle", "_seconds", "_timeout")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timeout = asyncio.timeout(None)
        self._handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> Deadline:
        await self._timeout.__aenter__()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self._expire)
        return self

    def renew(self) -> None:
        """Starts the deadline over from now, for the next wait of a series (each bounded
        on its own, for the price of one deadline). Also takes back an expiry noticed
        while the reply it was waiting for had already arrived."""
        if self._handle is not None:
            self._handle.cancel()
        self._timeout.reschedule(None)
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self._expire)

    def _expire(self) -> None:
        # A time already past makes asyncio.Timeout cancel via call_soon, i.e. after the
        # callbacks queued so far, which include the wake-up of a task whose reply arrived.
        self._timeout.reschedule(asyncio.get_running_loop().time())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
        await self._timeout.__aexit__(exc_type, exc, traceback)
