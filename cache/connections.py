"""A capped stack of redis-py connections for the engine's own commands.

The engine sends one command at a time per connection and reads the reply whole, so it
needs less than ``Redis.execute_command`` on a ``ConnectionPool`` does per call: a pool
lock, a readiness probe of the socket, observability hooks and a retry wrapper, a
measurable share of a batch read (figures in docs/benchmarks.md). Connections are still
redis-py's own, built from the pool's URL settings (TLS, unix sockets, ACL credentials),
and keep its parser and disconnect-on-error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.typing import EncodableT


class ConnectionStack:
    """At most ``limit`` commands in flight, each on its own connection; idle connections
    are reused last in, first out, so a quiet period leaves the extra ones idle rather
    than cycling through all of them.

    A connection goes back on the stack only after its reply was read whole: redis-py's
    ``send_packed_command`` and ``read_response`` disconnect it on any exception
    (cancellation and timeouts included), and a disconnected connection reconnects on its
    next command.
    """

    def __init__(self, make: Callable[[], AbstractConnection], limit: int) -> None:
        self._make = make
        self._idle: list[AbstractConnection] = []
        self._slots = asyncio.Semaphore(limit)
        self._closed = False

    async def execute(self, *args: EncodableT) -> Any:
        """The raw reply (bytes are not decoded); a Redis error reply is raised.

        One retry on a connection error: a connection the server closed while it sat idle
        (a restart, ``CLIENT KILL``, an idle timeout) fails its next command at once.
        Timeouts are never retried: the caller's deadline decides what happens then.
        """
        async with self._slots:
            connection = self._idle.pop() if self._idle else self._make()
            try:
                try:
                    return await _round_trip(connection, args)
                except RedisConnectionError:
                    return await _round_trip(connection, args)
            finally:
                if self._closed:
                    await connection.disconnect()
                else:
                    self._idle.append(connection)

    async def execute_many(self, commands: Sequence[tuple[EncodableT, ...]]) -> list[Any]:
        """Several commands in one round trip (one write, then every reply): the raw
        replies in order, a Redis error reply in its place as the exception object (the
        caller decides per command: a redirect, a refused write). Retried like
        :meth:`execute`."""
        async with self._slots:
            connection = self._idle.pop() if self._idle else self._make()
            try:
                try:
                    return await _round_trips(connection, commands)
                except RedisConnectionError:
                    return await _round_trips(connection, commands)
            finally:
                if self._closed:
                    await connection.disconnect()
                else:
                    self._idle.append(connection)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.disconnect()


def pack(commands: Sequence[tuple[EncodableT, ...]]) -> bytes:
    """The RESP encoding of ``commands`` (str, bytes and int arguments): what redis-py's
    ``pack_commands`` writes, at a fraction of its cost for the many small commands of a
    cluster batch (figures in docs/benchmarks.md)."""
    out: list[bytes] = []
    for command in commands:
        out.append(b"*%d\r\n" % len(command))
        for arg in command:
            if isinstance(arg, str):
                data = arg.encode()
            elif isinstance(arg, bytes):
                data = arg
            elif isinstance(arg, int):
                data = b"%d" % arg
            else:
                raise TypeError(f"cannot send {type(arg).__name__} to Redis")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


async def _round_trips(
    connection: AbstractConnection, commands: Sequence[tuple[EncodableT, ...]]
) -> list[Any]:
    await connection.send_packed_command(pack(commands), check_health=False)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(await connection.read_response(disable_decoding=True))
        except ResponseError as error:  # read whole: the connection stays in step
            replies.append(error)
    return replies


async def _round_trip(connection: AbstractConnection, args: tuple[EncodableT, ...]) -> Any:
    await connection.send_packed_command(connection.pack_command(*args), check_health=False)
    return await connection.read_response(disable_decoding=True)
