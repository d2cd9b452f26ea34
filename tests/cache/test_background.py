"""Background tasks: close stops every one of them, even one that lost a cancellation."""

from __future__ import annotations

import asyncio

from cache.background import BackgroundTasks
from cache.observation import Observation, current


async def test_a_task_that_swallows_one_cancellation_is_stopped_anyway() -> None:
    # What a Redis client's internal timeout can do to a cancel that lands inside it: the
    # listener sees an ordinary error and goes round its retry loop.
    rounds = 0

    async def retry_loop() -> None:
        nonlocal rounds
        while True:
            rounds += 1
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if rounds > 1:
                    raise

    tasks = BackgroundTasks()
    task = tasks.spawn(retry_loop())
    await asyncio.sleep(0)
    async with asyncio.timeout(2):
        await tasks.cancel_all()
    assert task.cancelled()
    assert rounds == 2


async def test_background_work_is_not_counted_in_the_request_that_started_it() -> None:
    seen: list[Observation | None] = []

    async def probe() -> None:
        seen.append(current())

    tasks = BackgroundTasks()
    with Observation():
        await tasks.spawn(probe())
    assert seen == [None]
