"""Repeated anonymous requests that a response-cache hit answered, replayed in one lookup.

A request without an Authorization header whose answer was a hit read from L1 is
remembered by exactly the bytes that decided its reply: its method, the media type it
accepts, its If-None-Match, and what its parameters were read from (query string, or
media type and body). The next identical request gets the very same reply, with no
parameters, key, viewer or statistics built, for as long as the response cache says a
lookup would find the same entry in L1 (`ResponseCache.serves_again`: no tag dropped or
raised, no L1 write, flush or expiry since the hit, the same scope hint). It is counted,
measured and logged as the hit it stands for: the same operation line, the same series.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from cache.strawberry.response_cache import ResponseCache, StoredResponse
from graph.observability.counting import Incrementer, Observer
from graph.observability.logs import Template
from graph.observability.operations import OperationLines, report_replayed
from graph.web.auth import ANONYMOUS
from graph.web.exchange import Exchange, Reply
from graph.web.memo import BoundedMemo

# The memo is bounded by the bytes of its keys (client bytes) and its replies' bodies.
REPLAYS_BYTES = 4 * 1024 * 1024
REPLAY_OVERHEAD = 512

ReplayKey = tuple[str, str, str | None, str, bytes]


@dataclass(slots=True)
class Replay:
    key: str  # the response-cache key the hit was read under
    stored: StoredResponse
    reply: Reply
    line: Template  # the operation line of the hit, before its duration and time


def _size(key: ReplayKey, replay: Replay) -> int:
    line = replay.line
    held = len(replay.reply.body) + len(line[0]) + len(line[1])
    return len(key[4]) + len(key[2] or "") + held + REPLAY_OVERHEAD


class Replays:
    """The fast lane of /graphql; `answer` before anything else, `remember` after a hit."""

    def __init__(
        self,
        responses: ResponseCache,
        lines: OperationLines | None,
        timer: Observer,
        hits: Incrementer,
        latency: dict[str, Observer],
    ) -> None:
        self._responses = responses
        self._lines = lines
        self._timer = timer  # the operation latency series of a query answered by a hit
        self._hits = hits
        self._latency = latency
        self._memo: BoundedMemo[ReplayKey, Replay] = BoundedMemo(REPLAYS_BYTES, _size)

    def answer(
        self, request: Exchange, media_type: str, source: tuple[str, bytes], started: float
    ) -> Reply | None:
        """The reply of a remembered request when it may be replayed now, accounted for
        as its hit was (counters, metrics, the operation line); else None. ``started``:
        when the request came in; the operation is timed from here, after its body was
        read, as `observing_operation` times a hit."""
        began = time.perf_counter()
        if request.authorization is not None:
            return None
        key = (request.method, media_type, request.if_none_match, source[0], source[1])
        replay = self._memo.get(key)
        if replay is None or not self._responses.serves_again(replay.key, replay.stored):
            return None
        request.scope["auth"], request.scope["user"] = ANONYMOUS  # as the viewer lookup does
        self._hits.inc()
        now = time.perf_counter()
        report_replayed(now - began, self._timer, self._lines, replay.line)
        self._latency[request.method].observe(now - started)
        return replay.reply

    def remember(
        self,
        request: Exchange,
        media_type: str,
        source: tuple[str, bytes],
        key: str,
        stored: StoredResponse,
        reply: Reply,
        name: str | None,
    ) -> None:
        """After a hit for an anonymous request read from L1 (others are not replayable)."""
        if request.authorization is not None or stored.lease is None or self._lines is None:
            return
        replay_key = (request.method, media_type, request.if_none_match, source[0], source[1])
        # Only the reply's body is kept (and counted): a 304's is empty, and the stored
        # body beside it would be held uncounted, even after L1 let it go.
        bodiless = replace(stored, body=b"")
        self._memo.put(replay_key, Replay(key, bodiless, reply, self._lines.hit_template(name)))
