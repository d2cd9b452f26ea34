"""The /graphql endpoint: GraphQL over HTTP in front of the response cache and Strawberry.

One request, in order, each step in the module that owns it:

1. what is asked, and who asks: parameters (graph/web/requests.py), the viewer (the
   app's one authentication backend, graph/web/auth.py), the document (persisted
   queries, cache/strawberry/persisted_queries.py);
2. the response cache answers, from storage or by executing, and decides what to keep
   (cache/strawberry/response_cache.py, with graph/web/execution.py as its `execute`);
3. the answer goes out with its HTTP caching headers (graph/web/http_caching.py).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Any

from prometheus_client import Counter
from starlette.authentication import AuthenticationError
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send
from strawberry.types import ExecutionResult

from cache.strawberry.response_cache import (
    Fresh,
    Hit,
    Operation,
    Outcome,
    Prepared,
    StoredResponse,
)
from graph.api.errors import ErrorCode
from graph.observability.counting import Unobserved
from graph.observability.metrics import UNOBSERVED
from graph.observability.operations import OperationStats, observing_operation, report
from graph.services import Services
from graph.web import results
from graph.web.auth import CHALLENGE, BearerTokens
from graph.web.exchange import Exchange, Reply
from graph.web.execution import Execution
from graph.web.http_caching import (
    NO_STORE,
    SAFE_METHODS,
    cache_control_of,
    cacheable_response,
    etag_of,
    stored_headers,
)
from graph.web.memo import BoundedMemo
from graph.web.replays import Replays
from graph.web.requests import (
    GraphQLParams,
    RequestError,
    parse_params,
    raw_params,
    response_media_type,
    wants_ide,
    with_document,
)
from models import UserRecord

# Strawberry's GraphiQL page with its assets vendored under /static/graphiql (no CDN), read
# once: it never changes while the process runs.
GRAPHIQL_HTML = (Path(__file__).parent / "static" / "graphiql.html").read_text(encoding="utf-8")
GRAPHIQL_BYTES = GRAPHIQL_HTML.encode()

METHODS = ("GET", "HEAD", "POST")
# Repeated requests remembered (see GraphQLEndpoint._known), bounded by the bytes they
# hold: requests up to KNOWN_REQUEST_BYTES long, KNOWN_REQUESTS_BYTES in all.
KNOWN_REQUEST_BYTES = 16 * 1024
KNOWN_REQUESTS_BYTES = 8 * 1024 * 1024
REPLIES_BYTES = 16 * 1024 * 1024
ENTRY_OVERHEAD = 512  # the key tuple, the parameters and the prepared key beside the text


class GraphQLEndpoint:
    """/graphql as an ASGI app (the app calls it in front of its routing, see app.py)."""

    def __init__(self, services: Services, backend: BearerTokens) -> None:
        self.services = services
        self.backend = backend
        self.responses = services.responses
        self.execution = Execution(services)
        self.graphiql = services.settings.graphiql
        self.max_body_bytes = services.settings.max_body_bytes
        self.expose_stats = services.settings.cache_stats_exposed
        self.revalidate = services.settings.http_cache == "revalidate"
        self.log_lines = services.operation_lines
        # Requests seen before, by what their parameters were read from: those parameters
        # and what the response cache prepared for them are pure functions of those bytes,
        # so a repeated request skips parsing them and building its key. Client bytes:
        # bounded in bytes. Requests using persisted queries are never kept (their
        # document comes from the store, not from the bytes).
        # Replies replaying a stored response (Exchange.send never changes one), bounded
        # by the bytes of their bodies, mostly the very bytes the memory tier holds.
        self._replies: BoundedMemo[tuple[str, float, bool, str, str], Reply] = BoundedMemo(
            REPLIES_BYTES, lambda _key, reply: len(reply.body) + ENTRY_OVERHEAD
        )
        # Counted twice over: the bytes, and the parameters parsed from them.
        self._known: BoundedMemo[tuple[str, bytes], tuple[GraphQLParams, Prepared]] = BoundedMemo(
            KNOWN_REQUESTS_BYTES, lambda key, _: 2 * len(key[1]) + ENTRY_OVERHEAD
        )
        # Label lookups done once: prometheus_client's `labels()` takes a lock each time.
        metrics = services.metrics
        histogram = metrics.request_seconds
        self._latency = {
            method: metrics.histogram_child(histogram.labels(method=method)) for method in METHODS
        }
        counter = metrics.response_cache
        self._outcomes: dict[Outcome, Counter | Unobserved] = {
            outcome: counter.labels(result=outcome) if metrics.enabled else UNOBSERVED
            for outcome in ("hit", "miss", "skip")
        }
        self._replays = Replays(
            self.responses,
            None if self.expose_stats else self.log_lines,  # stats exposed: nothing replays
            metrics.operation_timer("query", "hit"),
            metrics.counter_child(counter.labels(result="hit")),
            self._latency,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            reply = await self.handle(Exchange.of(scope, receive))
        except ClientDisconnect:
            return  # nobody is left to answer
        await reply.send(send)

    async def handle(self, request: Exchange) -> Reply:
        started = time.perf_counter()
        media_type = response_media_type(request)
        try:
            source = await self._source(request)
            if source is not None:
                replayed = self._replays.answer(request, media_type, source, started)
                if replayed is not None:
                    return replayed
            with observing_operation(self.services.cache) as stats:
                reply = await self._answer(request, media_type, source, stats)
                if stats.response is not None:  # an operation ran or was replayed
                    report(stats, self.services.metrics, self.log_lines)
        except RequestError as error:
            return self._refuse(error, media_type)
        self._latency[request.method].observe(time.perf_counter() - started)
        return reply

    async def _source(self, request: Exchange) -> tuple[str, bytes] | None:
        """What the parameters are read from (see `raw_params`); None: the IDE is asked for."""
        if self.graphiql and request.method in SAFE_METHODS and wants_ide(request):
            return None
        return await raw_params(request, self.max_body_bytes)

    async def _answer(
        self,
        request: Exchange,
        media_type: str,
        source: tuple[str, bytes] | None,
        stats: OperationStats,
    ) -> Reply:
        if source is None:
            return Reply(200, GRAPHIQL_BYTES, "text/html")
        known = self._known.get(source)
        if known is None:
            params = parse_params(*source)
            viewer = await self._identify(request)
            params = await with_document(params, self.services.persisted)
        else:
            params = known[0]
            viewer = await self._identify(request)
        operation = Operation(
            params.query,
            params.operation_name,
            params.variables,
            None if viewer is None else str(viewer.id),
        )
        if known is None:
            prepared = self.responses.prepare(operation)
            if params.extensions is None and len(source[1]) <= KNOWN_REQUEST_BYTES:
                self._known.put(source, (params, prepared))
        else:
            prepared = known[1]
        execute = partial(self.execution.run, params, viewer, request.method)
        answer = await self.responses.answer(operation, execute, prepared)
        stats.response = answer.outcome
        self._outcomes[answer.outcome].inc()
        if not isinstance(answer, Hit):
            return self._fresh(request, answer, media_type)
        stats.name = answer.operation_name
        reply = self._replay(request, answer.response, media_type, stats)
        if prepared.key is not None and self._known.get(source) is not None:  # not persisted
            self._replays.remember(
                request, media_type, source, prepared.key, answer.response, reply, stats.name
            )
        return reply

    async def _identify(self, request: Exchange) -> UserRecord | None:
        try:
            return await self.backend.identify_scope(request.scope, request.authorization)
        except AuthenticationError as error:  # a malformed header or an unknown token
            raise RequestError(
                401, str(error), "bad_token", code=ErrorCode.UNAUTHENTICATED, headers=CHALLENGE
            ) from None

    def _replay(
        self, request: Exchange, stored: StoredResponse, media_type: str, stats: OperationStats
    ) -> Reply:
        body = stored.body
        if self.expose_stats:
            body = results.with_extensions(body, {"cache": {**stats.report(), "tier": stored.tier}})
        elif request.if_none_match is None:
            return self._stored_reply(request, stored, media_type)
        cache_control, etag = stored_headers(stored, self.revalidate)
        return cacheable_response(request, body, 200, media_type, cache_control, etag)

    def _stored_reply(self, request: Exchange, stored: StoredResponse, media_type: str) -> Reply:
        """The reply replaying `stored` to a request with no If-None-Match: built once for
        each stored response and way of asking (its headers depend on nothing else)."""
        key = (stored.fingerprint, stored.max_age, stored.private, media_type, request.method)
        reply = self._replies.get(key)
        if reply is None:
            cache_control, etag = stored_headers(stored, self.revalidate)
            reply = cacheable_response(request, stored.body, 200, media_type, cache_control, etag)
            self._replies.put(key, reply)
        return reply

    def _fresh(self, request: Exchange, answer: Fresh[ExecutionResult], media_type: str) -> Reply:
        executed = answer.executed
        if answer.stored is not None:
            cache_control, etag = stored_headers(answer.stored, self.revalidate)
        else:
            cache_control = cache_control_of(executed.policy, self.revalidate)
            # Only GET and HEAD answers carry an ETag: skip hashing otherwise.
            etag = etag_of(executed.body) if request.method in SAFE_METHODS else ""
        result = executed.result
        extensions: dict[str, Any] = dict(result.extensions or {})
        if "cache" in extensions:
            extensions["cache"] = {**extensions["cache"], "response": answer.outcome}
        return cacheable_response(
            request,
            results.with_extensions(executed.body, extensions),
            results.status(result, media_type),
            media_type,
            cache_control,
            etag,
        )

    def _refuse(self, error: RequestError, media_type: str) -> Reply:
        self.services.metrics.rejected_requests.labels(reason=error.reason).inc()
        return Reply(
            error.status,
            results.error_body(error.message, error.code),
            media_type,
            {"Cache-Control": NO_STORE, **error.headers},
        )
