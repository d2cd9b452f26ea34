"""Every setting of SPEC section 5, read from the environment once per process."""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./strata.db"
# Origins a browser page may call the API from in dev mode when STRATA_CORS_ORIGINS is
# unset: the usual local dev servers (Vite's 5173, and 3000 for Next.js and friends).
DEV_CORS_ORIGINS = (
    "http://localhost:5173",
    "http://127.0.0.1:5173",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="STRATA_", extra="ignore", frozen=True, populate_by_name=True
    )

    env: Literal["dev", "production"] = "production"
    database_url: str = Field(
        DEFAULT_DATABASE_URL, validation_alias=AliasChoices("DATABASE_URL", "STRATA_DATABASE_URL")
    )
    redis_url: str | None = Field(
        None, validation_alias=AliasChoices("REDIS_URL", "STRATA_REDIS_URL")
    )
    # `auto`: ask the server at start (`INFO cluster`); `on` / `off` force it.
    redis_cluster: Literal["auto", "on", "off"] = "auto"
    cache: Literal["on", "off"] = "on"
    cache_secret: str | None = None
    cache_prefix: str = Field("strata", min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    l1_max_entries: int = Field(10_000, ge=1)
    l1_max_mib: int = Field(64, ge=1)
    default_ttl: int = Field(300, ge=1)
    redis_timeout_ms: int = Field(50, ge=1)
    # How often each process publishes its figures to Redis for the deployment-wide view
    # (`strata cache stats`, /dashboard); a record lives three intervals.
    instance_report_seconds: float = Field(2.0, gt=0, le=60)
    expose_cache_stats: bool | None = None
    response_cache: bool = True
    # Comma-separated operation names whose responses are never stored whole.
    response_cache_exclude: Annotated[list[str], NoDecode] = Field(default_factory=list)
    response_cache_max_ttl: int = Field(300, ge=1)
    response_cache_max_bytes: int = Field(256 * 1024, ge=1)
    # `revalidate`: cacheable answers say `no-cache` (HTTP caches revalidate every reuse);
    # `max-age`: they say `max-age=<smallest TTL used>` (bounded staleness accepted).
    http_cache: Literal["revalidate", "max-age"] = "revalidate"
    graphiql: bool = True
    max_depth: int = Field(12, ge=1)
    max_aliases: int = Field(30, ge=0)
    max_tokens: int = Field(2000, ge=1)
    max_body_bytes: int = Field(1024 * 1024, ge=1)
    max_cost: int = Field(10_000, ge=1)
    log_level: str = "INFO"
    # False: the per-operation Prometheus series are not updated (refusals, errors,
    # executed operations and the engine's counters still are): the "off" side of the
    # A/B of the metrics' cost in `strata bench`.
    metrics: bool = True
    log_format: Literal["json", "console"] = "json"
    # Comma-separated origins allowed to call the API from a browser; unset: see
    # `cors_allowed_origins` (none in production, DEV_CORS_ORIGINS in dev).
    cors_origins: Annotated[list[str] | None, NoDecode] = None
    # /metrics on a port of its own, without a token, on an interface a scraper on the
    # same host reaches (graph/web/metrics_port.py); unset: only on the API port.
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_host: str = "127.0.0.1"

    @field_validator("response_cache_exclude", "cors_origins", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @property
    def dev(self) -> bool:
        return self.env == "dev"

    @property
    def cors_allowed_origins(self) -> list[str]:
        if self.cors_origins is None:
            return list(DEV_CORS_ORIGINS) if self.dev else []
        return [origin.rstrip("/") for origin in self.cors_origins]

    @property
    def cache_enabled(self) -> bool:
        return self.cache == "on"

    @property
    def cache_stats_exposed(self) -> bool:
        if self.expose_cache_stats is None:
            return self.dev
        return self.expose_cache_stats

    @cached_property
    def cache_secret_bytes(self) -> bytes:
        """The HMAC key; a random one per process when unset (the app warns at start)."""
        if self.cache_secret:
            return self.cache_secret.encode()
        return secrets.token_bytes(32)
