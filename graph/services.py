"""The long-lived parts of one app instance, opened and closed by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from typing import Any

import strawberry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cache import NOT_FOUND, CacheConfig, TieredCache
from cache.strawberry import RequestCache
from cache.strawberry.persisted_queries import PersistedQueries
from cache.strawberry.response_cache import ResponseCache
from graph.api.context import Context
from graph.api.errors import bad_input
from graph.api.schema import Schema, build_schema
from graph.observability.activity import Activity
from graph.observability.logs import json_lines
from graph.observability.metrics import Metrics, tag_kind
from graph.observability.operations import OperationLines, count_sql, tags_invalidated
from graph.observability.presence import Identity, Presence, own_record
from graph.settings import Settings
from models import AuthorRecord, BookRecord, Database, ReviewRecord, UserRecord, outbox
from models.tokens import digest, is_plausible, token_tag, user_for_token

log = logging.getLogger("strata")

MAX_TAGS_PER_CALL = 1000  # what a human may type in one call; a write's own tags are not cut
MAX_TAG_LENGTH = 200
TOKEN_TTL = 300.0  # `strata token revoke` invalidates the lookup's tag on every instance
STATS_SYNC_SECONDS = 1.0
CACHE_FORMAT = 3  # bump when the shape of cached values changes without the schema changing


def cache_namespace(prefix: str, schema: strawberry.Schema) -> str:
    """`<prefix>:v<schema version>`: a deploy that changes the schema or the cached record
    shapes reads none of the old entries."""
    shapes = [
        f"{record.__name__}({','.join(f.name for f in fields(record))})"
        for record in (AuthorRecord, BookRecord, ReviewRecord, UserRecord)
    ]
    source = "\n".join([str(CACHE_FORMAT), schema.as_str(), *shapes])
    return f"{prefix}:v{hashlib.sha256(source.encode()).hexdigest()[:12]}"


def cache_config(settings: Settings, namespace: str) -> CacheConfig:
    return CacheConfig(
        redis_url=settings.redis_url,
        namespace=namespace,
        secret=settings.cache_secret_bytes,
        l1_max_entries=settings.l1_max_entries,
        l1_max_bytes=settings.l1_max_mib * 1024 * 1024,
        default_ttl=float(settings.default_ttl),
        redis_timeout_ms=settings.redis_timeout_ms,
        enabled=settings.cache_enabled,
        redis_cluster=settings.redis_cluster,
    )


# A dedicated bound under the body limit: a persisted document is kept a day in both tiers.
PERSISTED_QUERY_MAX_BYTES = 64 * 1024


def response_cache(settings: Settings, cache: TieredCache, activity: Activity) -> ResponseCache:
    return ResponseCache(
        cache,
        max_ttl=float(settings.response_cache_max_ttl),
        max_bytes=settings.response_cache_max_bytes,
        max_tokens=settings.max_tokens,
        excluded=settings.response_cache_exclude,
        enabled=settings.cache_enabled and settings.response_cache,
        on_read=activity.hot_keys.seen,
    )


def operation_lines(settings: Settings) -> OperationLines | None:
    lines = json_lines(settings)
    return None if lines is None else OperationLines(lines)


def check_tags(tags: Iterable[str], *, typed: bool) -> list[str]:
    """The distinct tags; ``typed``: entered by a person (invalidateCache, the CLI), so
    their number is bounded too. A write's tags are never refused for their number: its
    change is committed, and its invalidation is split into calls instead."""
    wanted = list(dict.fromkeys(tags))
    if typed and len(wanted) > MAX_TAGS_PER_CALL:
        raise bad_input(f"at most {MAX_TAGS_PER_CALL} tags per call")
    if any(not tag or len(tag) > MAX_TAG_LENGTH for tag in wanted):
        raise bad_input(f"tags must be 1 to {MAX_TAG_LENGTH} characters")
    return wanted


@dataclass
class Services:
    settings: Settings
    db: Database
    schema: Schema
    metrics: Metrics
    cache: TieredCache
    responses: ResponseCache
    persisted: PersistedQueries
    activity: Activity
    presence: Presence
    outbox: outbox.DatabaseOutbox | None
    """Where invalidations are recorded (SPEC 7a): with a shared Redis only (a process
    on its own invalidates its memory at once and has nobody to tell)."""
    # The writer of the operation log lines (None: console logs, through structlog).
    operation_lines: OperationLines | None = None
    _sync: asyncio.Task[None] | None = None

    @classmethod
    def create(cls, settings: Settings) -> Services:
        schema = build_schema(settings)
        namespace = cache_namespace(settings.cache_prefix, schema)
        db = Database(settings.database_url)
        metrics = Metrics(enabled=settings.metrics, plain_counting=settings.metrics_port is None)
        count_sql(db.engines, metrics)
        durable = settings.cache_enabled and settings.redis_url is not None
        # The relay's queries (a couple a second) on an engine of their own: the SQL that
        # /metrics counts stays the requests' (a warm page runs none).
        rows = outbox.DatabaseOutbox(Database(settings.database_url)) if durable else None
        cache = TieredCache(cache_config(settings, namespace), rows)
        activity = Activity()
        cache.on_invalidation_received(activity.heard)
        identity = Identity.of_this_process()
        presence = Presence(
            identity,
            cache,
            partial(own_record, identity, metrics, cache, activity),
            settings.instance_report_seconds,
        )
        return cls(
            settings=settings,
            db=db,
            schema=schema,
            metrics=metrics,
            cache=cache,
            responses=response_cache(settings, cache, activity),
            persisted=PersistedQueries(
                cache,
                max_bytes=min(settings.max_body_bytes, PERSISTED_QUERY_MAX_BYTES),
                max_tokens=settings.max_tokens,
                admit=schema.limits.admit,
            ),
            activity=activity,
            presence=presence,
            outbox=rows,
            operation_lines=operation_lines(settings),
        )

    async def start(self) -> None:
        settings = self.settings
        if settings.cache_enabled and settings.redis_url is None:
            log.warning("REDIS_URL is not set: caching in process memory only")
        if settings.cache_enabled and settings.redis_url and not settings.cache_secret:
            log.warning(
                "STRATA_CACHE_SECRET is not set: using a random key, so Redis entries "
                "written by other instances or earlier runs will not verify"
            )
        await self.cache.start()
        self._sync = asyncio.create_task(self._sync_engine_stats())

    async def _sync_engine_stats(self) -> None:
        # The engine counts in process memory; Prometheus (possibly across worker
        # processes) gets the increases once a second.
        while True:
            self.metrics.absorb_engine_stats(self.cache.stats)
            await asyncio.sleep(STATS_SYNC_SECONDS)

    def publish_presence(self) -> None:
        """A serving process (not a CLI command) publishes its figures for the
        deployment-wide view, until `close`."""
        self.presence.start()

    async def close(self) -> None:
        await self.presence.close()  # withdraws the record while Redis is still open
        if self._sync is not None:
            self._sync.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        await self.cache.close()
        await self.db.dispose()
        if self.outbox is not None:
            await self.outbox.dispose()
        if self.operation_lines is not None:
            self.operation_lines.flush()

    def context(self, viewer: UserRecord | None) -> Context:
        request_cache = RequestCache(
            cache=self.cache,
            viewer=None if viewer is None else str(viewer.id),
            default_ttl=float(self.settings.default_ttl),
            on_read=self.activity.hot_keys.seen,
        )
        return Context(
            db=self.db,
            settings=self.settings,
            viewer=viewer,
            request_cache=request_cache,
            invalidate_tags=self.invalidate_tags,
            record_invalidation=self.record_invalidation,
        )

    async def viewer_for_token(self, token: str) -> UserRecord | None:
        """The user a bearer token belongs to, through the cache (keyed by its digest, so
        the token itself is never stored); None for an unknown token."""
        if not is_plausible(token):
            return None
        key = token_tag(digest(token))

        async def load() -> Any:
            user = await self.db.read(partial(user_for_token, token=token))
            return NOT_FOUND if user is None else [user.id, user.name, user.is_admin]

        value: list[Any] | None = await self.cache.get_or_load(key, load, ttl=TOKEN_TTL, tags=[key])
        return None if value is None else UserRecord(*value)

    async def database_ready(self) -> bool:
        try:
            await self.db.read(lambda conn: conn.execute(text("SELECT 1")).scalar())
        except Exception:
            log.exception("database is not reachable")
            return False
        return True

    async def record_invalidation(self, session: AsyncSession, tags: Sequence[str]) -> int | None:
        """Records ``tags`` in the outbox within the caller's transaction (the write's):
        the row id to pass to :meth:`invalidate_tags` after the commit; None without an
        outbox."""
        if self.outbox is None:
            return None
        return await outbox.record(session, check_tags(tags, typed=False))

    async def invalidate_tags(
        self, tags: Iterable[str], source: str = "mutation", row: int | None = None
    ) -> int:
        """Bump cache tags in every tier and on every instance; the number bumped.
        `source` says who asked (mutation, admin, cli), for the dashboard and metrics.
        `row`: the outbox row a write recorded them in; without one (an operator's call),
        one is recorded here first, so a bump Redis refuses is still applied later."""
        wanted = check_tags(tags, typed=source != "mutation")
        if not wanted:
            return 0
        if row is None and self.outbox is not None:
            row = await self.outbox.record(wanted)
        bumped = await self.cache.invalidate(wanted, row=row)
        self.activity.invalidated(wanted, source)
        tags_invalidated(len(wanted))
        for tag in wanted:
            self.metrics.invalidations.labels(kind=tag_kind(tag)).inc()
        return bumped
