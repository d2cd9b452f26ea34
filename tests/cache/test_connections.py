"""The cluster tier's own RESP reading (``cache/connections.py``) against a real Redis:
every reply kind its commands get, replies cut across reads, and what redis-py reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from cache.connections import ConnectionStack, _bulk_replies, pack
from cache.redis_tier import build_client

Commands = list[tuple[Any, ...]]


@pytest.fixture
async def stack_and_client(
    redis_url: str, key_prefix: str
) -> AsyncIterator[tuple[ConnectionStack, aioredis.Redis]]:
    client = build_client(redis_url, 2.0)
    pool = client.connection_pool
    kwargs = {**pool.connection_kwargs, "socket_timeout": None}
    stack = ConnectionStack(lambda: pool.connection_class(**kwargs), 2)
    yield stack, client
    await stack.close()
    async for key in client.scan_iter(match=key_prefix + "*", count=1000):
        await client.delete(key)
    await client.aclose()


async def redis_py_replies(client: aioredis.Redis, commands: Commands) -> list[Any]:
    """The same commands read by redis-py's parser, error replies kept as exceptions."""
    async with client.pipeline(transaction=False) as pipe:
        for command in commands:
            pipe.execute_command(*command)
        return list(await pipe.execute(raise_on_error=False))


async def test_every_reply_kind_reads_as_redis_py_reads_it(
    stack_and_client: tuple[ConnectionStack, aioredis.Redis], key_prefix: str
) -> None:
    stack, client = stack_and_client
    await client.set(f"{key_prefix}:text", b"not a number")
    await client.set(f"{key_prefix}:empty", b"")
    await client.set(f"{key_prefix}:crlf", b"a\r\nb\r\n")
    commands: Commands = [
        ("GET", f"{key_prefix}:text"),
        ("GET", f"{key_prefix}:missing"),
        ("GET", f"{key_prefix}:empty"),
        ("GET", f"{key_prefix}:crlf"),
        ("INCRBY", f"{key_prefix}:n", -7),
        ("PING",),
        ("INCR", f"{key_prefix}:text"),  # an error reply, in its place
        ("EVAL", "return {1, {2, 'x'}, {}, false}", 0),
        ("MGET", f"{key_prefix}:missing", f"{key_prefix}:empty"),
    ]
    got = await stack.execute_many(commands)
    assert got[:4] == await redis_py_replies(client, commands[:4])
    assert got[4] == -7
    assert got[5] == b"PONG"
    assert isinstance(got[6], ResponseError)
    assert "not an integer" in str(got[6])
    assert got[7] == [1, [2, b"x"], [], None]
    assert got[8] == [None, b""]
    # The connection is back in step: the next batch on it reads its own replies.
    assert await stack.execute_many([("PING",), ("GET", f"{key_prefix}:crlf")]) == [
        b"PONG",
        b"a\r\nb\r\n",
    ]


async def test_replies_cut_across_many_reads_are_read_whole(
    stack_and_client: tuple[ConnectionStack, aioredis.Redis], key_prefix: str
) -> None:
    stack, client = stack_and_client
    large = bytes(range(256)) * 8192  # 2 MiB: many reads for one reply
    await client.set(f"{key_prefix}:large", large)
    small = {f"{key_prefix}:s{i}": (b"%d\r\n" % i) * (i % 300) for i in range(3000)}
    await client.mset(small)  # type: ignore[arg-type]
    commands: Commands = [("GET", name) for name in small]
    commands.insert(1500, ("GET", f"{key_prefix}:large"))
    commands.append(("GET", f"{key_prefix}:large"))
    got = await stack.execute_many(commands)
    assert got == await redis_py_replies(client, commands)
    assert got[1500] == large


async def test_a_batch_sent_first_is_read_later(
    stack_and_client: tuple[ConnectionStack, aioredis.Redis], key_prefix: str
) -> None:
    stack, client = stack_and_client
    await client.set(f"{key_prefix}:k", b"v")
    assert await stack.send_now(pack([("PING",)])) is None  # no connection open yet
    first = await stack.send(pack([("GET", f"{key_prefix}:k"), ("PING",)]))
    second = await stack.send(pack([("ECHO", b"x" * 100_000)]))  # the cap's other one
    assert await stack.send_now(pack([("PING",)])) is None  # at the cap: it would wait
    assert await stack.receive(second, 1) == [b"x" * 100_000]
    assert await stack.receive(first, 2) == [b"v", b"PONG"]
    # Both open and idle now: batches go out without waiting, and are read later.
    third = await stack.send_now(pack([("ECHO", b"y" * 300_000)]))
    fourth = await stack.send_now(pack([("GET", f"{key_prefix}:k")]))
    assert third is not None
    assert fourth is not None
    assert third is not fourth
    assert await stack.receive(fourth, 1) == [b"v"]
    assert await stack.receive(third, 1) == [b"y" * 300_000]


@pytest.mark.parametrize(
    ("data", "count", "expected"),
    [
        (b"$1\r\na\r\n$-1\r\n$0\r\n\r\n", 3, [b"a", None, b""]),
        (b"$0\r\n", 1, None),  # an empty value whose CRLF is still on its way
        (b"$3\r\nab", 1, None),  # cut
        (b"$4\r\na\r\nb\r\n", 1, None),  # a value holding a CRLF: parsed the long way
        (b"$1\r\na\r\n$1\r\nb\r\n", 1, None),  # more than asked: out of step
        (b"$1\r\na\r\n-ERR no\r\n", 2, None),  # another reply kind
        (b"$1\r\na\r\n", 2, None),  # not all here yet
    ],
)
def test_a_batch_of_bulk_replies_is_split_only_when_it_is_exactly_that(
    data: bytes, count: int, expected: list[bytes | None] | None
) -> None:
    assert _bulk_replies(data, count) == expected


async def test_a_connection_closed_while_idle_is_not_written_to_at_once(
    stack_and_client: tuple[ConnectionStack, aioredis.Redis],
) -> None:
    stack, client = stack_and_client
    connection = await stack.send(pack([("CLIENT", "ID")]))
    (client_id,) = await stack.receive(connection, 1)
    await client.client_kill_filter(_id=client_id)
    await asyncio.sleep(0.05)  # the loop sees the close
    assert await stack.send_now(pack([("PING",)])) is None  # send() opens it again
    reopened = await stack.send(pack([("PING",)]))
    assert await stack.receive(reopened, 1) == [b"PONG"]
