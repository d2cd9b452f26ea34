"""A capped stack of redis-py connections for the engine's own commands.

The engine sends one command at a time per connection and reads the reply whole, so it
needs less than ``Redis.execute_command`` on a ``ConnectionPool`` does per call: a pool
lock, a readiness probe of the socket, observability hooks and a retry wrapper, a
measurable share of a batch read (figures in docs/benchmarks.md). Connections are still
redis-py's own, built from the pool's URL settings (TLS, unix sockets, ACL credentials),
and keep its parser and disconnect-on-error; a batch of several commands
(:meth:`ConnectionStack.execute_many`, the cluster tier's) is encoded and its replies read
here, where redis-py's per-command layers cost most.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError
from redis.typing import EncodableT

Request = TypeVar("Request")
Reply = TypeVar("Reply")


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
        return await self._exchange(_round_trip, args)

    async def execute_many(self, commands: Sequence[tuple[EncodableT, ...]]) -> list[Any]:
        """Several commands in one round trip (one write, then every reply): the raw
        replies in order, a Redis error reply in its place as the exception object (the
        caller decides per command: a redirect, a refused write). Retried like
        :meth:`execute`."""
        return await self._exchange(_round_trips, commands)

    async def send(self, packed: bytes) -> AbstractConnection:
        """The first half of :meth:`execute_many`: takes a connection and writes
        ``packed`` (commands encoded by :func:`pack`) on it, so several nodes' batches can
        be in flight before any reply is read (no task per node). The caller must pass
        the connection to :meth:`receive`, or to :meth:`abandon`. Retried once on a
        connection error, like :meth:`execute`."""
        await self._slots.acquire()
        connection = self._idle.pop() if self._idle else self._make()
        try:
            if _closed_while_idle(connection):
                await connection.disconnect(nowait=True)  # opened again below
            try:
                await connection.send_packed_command(packed, check_health=False)
            except RedisConnectionError:
                await connection.send_packed_command(packed, check_health=False)
        except BaseException:
            await self._put_back(connection)
            raise
        return connection

    async def send_now(self, packed: bytes) -> AbstractConnection | None:
        """:meth:`send` when it cannot wait: a connection is free and open. The bytes go
        to its transport, which writes what the socket does not take at once as soon as
        it can (the replies, awaited next under the caller's deadline, need them there
        anyway). ``None`` when it would wait (at the cap, or a connection to open): the
        caller then awaits :meth:`send` under its deadline, as when the server closed the
        connection while idle (:meth:`send` opens it again). One closed later fails when
        its replies are read, as with :meth:`send`."""
        idle = self._idle
        if self._slots.locked() or not idle:
            return None
        writer = idle[-1]._writer
        if writer is None or _closed_while_idle(idle[-1]):
            return None
        await self._slots.acquire()  # free: returns without waiting
        connection = idle.pop()
        try:
            writer.write(packed)
        except BaseException:
            await connection.disconnect(nowait=True)
            await self._put_back(connection)
            raise
        return connection

    async def receive(self, connection: AbstractConnection, count: int) -> list[Any]:
        """The second half: the ``count`` replies, as :meth:`execute_many` returns them;
        the connection goes back on the stack (disconnected if a reply was cut)."""
        try:
            return await _read_replies(connection, count)
        finally:
            await self._put_back(connection)

    async def abandon(self, connection: AbstractConnection) -> None:
        """A sent batch whose replies will not be read: the connection is out of step."""
        await connection.disconnect(nowait=True)
        await self._put_back(connection)

    async def _put_back(self, connection: AbstractConnection) -> None:
        try:
            if self._closed:
                await connection.disconnect()
            else:
                self._idle.append(connection)
        finally:
            self._slots.release()

    async def _exchange(
        self, exchange: Callable[[AbstractConnection, Request], Awaitable[Reply]], request: Request
    ) -> Reply:
        async with self._slots:
            connection = self._idle.pop() if self._idle else self._make()
            try:
                try:
                    return await exchange(connection, request)
                except RedisConnectionError:
                    return await exchange(connection, request)
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


def _closed_while_idle(connection: AbstractConnection) -> bool:
    """The server ended or reset the stream while the connection sat on the stack."""
    reader = connection._reader
    return reader is not None and (reader.at_eof() or reader.exception() is not None)


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
    return await _read_replies(connection, len(commands))


async def _read_replies(connection: AbstractConnection, count: int) -> list[Any]:
    """``count`` replies, read in as few steps as they arrive in: whatever the socket holds
    is taken at once and parsed in a loop, with no await per reply (figures in
    docs/benchmarks.md). Nothing else is ever in flight on these connections, so a byte
    past the last reply means the connection is out of step."""
    reader = connection._reader
    if reader is None:
        raise RedisConnectionError("connection closed before its replies were read")
    parse_error = connection._parser.parse_error
    replies: list[Any] = []
    try:
        data = await reader.read(_CHUNK) if count else b""
        whole = _bulk_replies(data, count)
        if whole is not None:
            return whole
        pos = 0
        while True:
            missing = 0
            while len(replies) < count:
                reply, end = _parse(data, pos, parse_error)
                if reply is _INCOMPLETE:
                    missing = end  # what the reply cut short lacks, when its header says
                    break
                replies.append(reply)
                pos = end
            else:
                if pos != len(data):
                    raise InvalidResponse("more bytes than the replies expected")
                return replies
            data = data[pos:]
            pos = 0
            more = await reader.readexactly(missing) if missing else await reader.read(_CHUNK)
            if not more:
                raise RedisConnectionError("Redis closed the connection mid-reply")
            data += more
    except (asyncio.IncompleteReadError, ConnectionError) as error:  # the builtin: a reset
        await connection.disconnect(nowait=True)
        raise RedisConnectionError("Redis closed the connection mid-reply") from error
    except BaseException:
        # A reply read in part leaves the connection out of step: as redis-py does.
        await connection.disconnect(nowait=True)
        raise


_CHUNK: Final = 1 << 16


def _bulk_replies(data: bytes, count: int) -> list[bytes | None] | None:
    """``data`` read as exactly ``count`` bulk string or null replies (a batch of GETs
    that arrived whole, the usual case), or ``None`` when it is anything else: split at
    every CRLF in one C call, each header followed by a piece of exactly its length. A
    value holding a CRLF of its own does not fit and is left to :func:`_parse`, as is
    any other reply kind, a cut reply or more than ``count`` replies."""
    parts = data.split(b"\r\n")
    last = len(parts) - 1
    if parts[last]:  # not ending at a reply's end
        return None
    replies: list[bytes | None] = []
    index = 0
    while index < last:
        header = parts[index]
        if header[:1] != b"$":
            return None
        size = int(header[1:])
        if size < 0:
            replies.append(None)
            index += 1
            continue
        if index + 1 == last:  # the value's CRLF has not arrived yet
            return None
        value = parts[index + 1]
        if len(value) != size:
            return None
        replies.append(value)
        index += 2
    return replies if len(replies) == count else None


class _Incomplete:
    """The marker of a reply whose bytes have not all arrived."""


_INCOMPLETE: Final = _Incomplete()


def _parse(data: bytes, pos: int, parse_error: Callable[[str], ResponseError]) -> tuple[Any, int]:
    """The reply at ``pos`` and where it ends, or :data:`_INCOMPLETE` and how many more
    bytes it needs at least (0 when unknown yet). Of the kinds the cluster tier's commands
    get: bulk and simple strings, nulls, integers, arrays of them; an error reply is
    returned as its redis-py exception (``MOVED`` as ``MovedError``, ...)."""
    eol = data.find(b"\r\n", pos)
    if eol < 0:
        return _INCOMPLETE, 0
    kind = data[pos]
    if kind == 36:  # $
        size = int(data[pos + 1 : eol])
        if size < 0:
            return None, eol + 2
        start = eol + 2
        end = start + size
        if end + 2 > len(data):
            return _INCOMPLETE, end + 2 - len(data)
        if data[end : end + 2] != b"\r\n":
            raise InvalidResponse("a bulk reply longer than announced")
        return data[start:end], end + 2
    if kind == 58:  # :
        return int(data[pos + 1 : eol]), eol + 2
    if kind == 95:  # _ (RESP3 null)
        return None, eol + 2
    if kind == 43:  # +
        return data[pos + 1 : eol], eol + 2
    if kind == 45:  # -
        return parse_error(data[pos + 1 : eol].decode(errors="replace")), eol + 2
    if kind == 42:  # *
        size = int(data[pos + 1 : eol])
        if size < 0:
            return None, eol + 2
        items: list[Any] = []
        end = eol + 2
        for _ in range(size):
            item, end = _parse(data, end, parse_error)
            if item is _INCOMPLETE:
                return _INCOMPLETE, 0  # parsed again whole once more has arrived
            items.append(item)
        return items, end
    raise InvalidResponse(f"unexpected reply {data[pos : pos + 32]!r}")


async def _round_trip(connection: AbstractConnection, args: tuple[EncodableT, ...]) -> Any:
    await connection.send_packed_command(connection.pack_command(*args), check_health=False)
    return await connection.read_response(disable_decoding=True)
