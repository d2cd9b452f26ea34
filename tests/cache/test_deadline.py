"""The Redis deadline times out a Redis that does not answer, never one that did."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import redis.asyncio as aioredis
import uvloop

from cache.deadline import Deadline

LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


def run_on(loop_name: str, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    # The server runs on uvloop (uvicorn's default), the suite on asyncio's loop: the two
    # order timers and I/O differently, so both are checked.
    with asyncio.Runner(loop_factory=LOOPS[loop_name]) as runner:
        runner.run(scenario())


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_reply_that_arrived_while_the_loop_was_busy_is_taken(
    redis_url: str, loop_name: str
) -> None:
    async def scenario() -> None:
        # No socket timeout: redis-py's own timeout wrappers would hide the difference.
        client = aioredis.Redis.from_url(redis_url, socket_timeout=None)
        try:
            await client.ping()
            loop = asyncio.get_running_loop()
            async with Deadline(0.05):
                # Runs once the PING is sent and the task waits: the loop is blocked past
                # the deadline while the reply arrives.
                loop.call_soon(time.sleep, 0.2)
                assert await client.ping()
        finally:
            await client.aclose()

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_an_answer_that_does_not_come_times_out(redis_url: str, loop_name: str) -> None:
    async def scenario() -> None:
        started = time.perf_counter()
        with pytest.raises(TimeoutError):
            async with Deadline(0.05):
                await asyncio.sleep(5)
        assert time.perf_counter() - started < 1

    run_on(loop_name, scenario)


@pytest.mark.parametrize("loop_name", LOOPS)
def test_a_renewed_deadline_bounds_each_wait_of_a_series_from_its_start(
    redis_url: str, loop_name: str
) -> None:
    async def renewed_then_waiting() -> None:
        async with Deadline(0.05) as deadline:
            await asyncio.sleep(0.01)
            deadline.renew()
            await asyncio.sleep(5)  # the renewed deadline still ends this wait

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url, socket_timeout=None)
        try:
            await client.ping()
            loop = asyncio.get_running_loop()
            started = time.perf_counter()
            async with Deadline(0.15) as deadline:
                for _ in range(3):  # 0.24 s in all: more than one deadline, each wait less
                    await asyncio.sleep(0.08)
                    deadline.renew()
                # Expired while the loop was blocked, the PING's reply already in: taken,
                # and the renewal takes the queued expiry back.
                loop.call_soon(time.sleep, 0.2)
                assert await client.ping()
                deadline.renew()
                await asyncio.sleep(0.02)  # the expiry noticed above does not come back
            assert time.perf_counter() - started > 0.15
            started = time.perf_counter()
            with pytest.raises(TimeoutError):
                await renewed_then_waiting()
            assert time.perf_counter() - started < 1
        finally:
            await client.aclose()

    run_on(loop_name, scenario)
