"""The engine's background tasks: started in one place, all stopped at close."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Coroutine
from typing import Any, Final

_RECANCEL_AFTER_S: Final = 0.1


class BackgroundTasks:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        # A fresh context: a probe or a replay a request happened to trigger is the
        # engine's work, not the request's, so it must not count in the request's
        # observation nor add to its recordings.
        task = asyncio.create_task(coro, context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def cancel_all(self) -> None:
        """Cancels every task and returns once all have stopped. A task may lose one
        cancellation: a cancel that lands while a Redis client is inside its own timeout
        can come out as a timeout error, which the listener's retry loop takes for an
        ordinary failure and reconnects. So a task still running is cancelled again."""
        stopping = list(self._tasks)
        while running := [task for task in stopping if not task.done()]:
            for task in running:
                task.cancel()
            await asyncio.wait(running, timeout=_RECANCEL_AFTER_S)
        for task in stopping:
            if not task.cancelled():
                task.exception()  # retrieved: a background failure is not reported twice
