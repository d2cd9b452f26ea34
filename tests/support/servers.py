"""Real `strata serve` processes for end-to-end tests: started, stopped and restarted on
127.0.0.1, each with its own log file, and an httpx client that speaks GraphQL to them."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from graph.observability.exposition import Scrape
from tests.support.api import post_graphql
from tests.support.redis_server import free_port

STRATA = Path(sys.executable).parent / "strata"
"""The console script of this environment: every test that runs `strata` runs this one."""
STARTUP_SECONDS = 20.0


class GraphQLFailure(AssertionError):
    """A response that was not a 200 with `data` and no `errors`."""


class Server:
    """One `strata serve` process; `stop()` then `start()` restarts it on a new port."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path, workers: int = 1) -> None:
        self.name = name
        self.env = env
        self.workers = workers
        self.log_path = log_dir / f"strata-{name}.log"
        self.port = 0
        self._process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None
        self._log: Any = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Starts the process and returns once it answers /healthz."""
        assert self._process is None, f"{self.name} is already running"
        self.port = free_port()
        self._log = self.log_path.open("ab")  # closed in stop()
        self._process = await asyncio.create_subprocess_exec(
            str(STRATA),
            *("serve", "--host", "127.0.0.1", "--port", str(self.port)),
            *("--workers", str(self.workers)),
            env=self.env,
            cwd=self.log_path.parent,
            stdout=self._log,
            stderr=self._log,
        )
        self._client = httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.port}",
            timeout=10,
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=32),
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise AssertionError(
                    f"{self.name} exited with {self._process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.TransportError):
                if (await self._client.get("/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} did not answer /healthz in time:\n{self.log_tail()}")

    async def stop(self) -> int | None:
        """SIGTERM (graceful), SIGKILL after 10 s; idempotent. The exit status of the
        process it stopped (None if none was running): -SIGKILL says it did not shut down."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        return None if process is None else process.returncode

    async def kill(self) -> None:
        """SIGKILL: the process dies without its shutdown (nothing withdrawn, flushed or
        closed), as after a crash or an OOM kill."""
        process = self._process
        assert process is not None, f"{self.name} is not running"
        process.kill()
        await process.wait()
        await self.stop()

    @property
    def pid(self) -> int:
        """The process `strata serve` runs in (with --workers N, their supervisor)."""
        assert self._process is not None, f"{self.name} is not running"
        return self._process.pid

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """The resident memory of the process now (Linux: /proc/<pid>/status)."""
        assert self._process is not None, f"{self.name} is not running"
        status = Path(f"/proc/{self._process.pid}/status").read_text()
        [kilobytes] = [line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")]
        return int(kilobytes) * 1024

    @property
    def client(self) -> httpx.AsyncClient:
        assert self._client is not None, f"{self.name} is not running"
        return self._client

    # -- GraphQL -----------------------------------------------------------------------

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> httpx.Response:
        return await post_graphql(self.client, query, variables, token)

    async def payload(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The whole body (`data` and, in dev, `extensions`) of a response that must be a
        200 without errors."""
        response = await self.post(query, variables, token)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if (
            response.status_code != 200
            or not isinstance(payload, dict)
            or "errors" in payload
            or not isinstance(payload.get("data"), dict)
        ):
            raise GraphQLFailure(f"{self.name}: {response.status_code} {payload!r} for {query}")
        return payload

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> dict[str, Any]:
        """The `data` of a response that must be a 200 without errors."""
        data: dict[str, Any] = (await self.payload(query, variables, token))["data"]
        return data

    # -- observability -----------------------------------------------------------------

    async def metric(self, name: str, *, missing: float | None = None, **labels: str) -> float:
        """The sum of the series `name` (with `labels`) on this process's /metrics;
        `missing` if it has none (a labelled counter has no series until its first
        increment), else that fails."""
        found = Scrape.of((await self.client.get("/metrics")).text).total(name, **labels)
        if found is None:
            assert missing is not None, f"{self.name}: no {name} {labels} in /metrics"
            return missing
        return found

    async def sql_statements(self) -> float:
        """`strata_sql_statements_total` of this process."""
        return await self.metric("strata_sql_statements_total")

    async def readiness(self) -> dict[str, Any]:
        response = await self.client.get("/readyz")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


async def run_strata(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """`strata ARGS` as a subprocess in `env`: its exit status, stdout and stderr."""
    process = await asyncio.create_subprocess_exec(
        str(STRATA),
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def outside_env(*also: str) -> dict[str, str]:
    """Our environment without what would configure a Strata process (STRATA_*, REDIS_URL,
    DATABASE_URL) nor the variables named in ``also``."""
    dropped = {"REDIS_URL", "DATABASE_URL", *also}
    return {k: v for k, v in os.environ.items() if not k.startswith("STRATA_") and k not in dropped}


def server_env(
    database_url: str,
    redis_url: str | None,
    key_prefix: str,
    *,
    cache: str = "on",
    secret: str = "e2e-secret",
) -> dict[str, str]:
    """The environment of one instance; nothing STRATA_* or REDIS_* leaks in from ours."""
    env = outside_env()
    env.update(
        DATABASE_URL=database_url,
        STRATA_ENV="dev",
        STRATA_CACHE=cache,
        STRATA_CACHE_SECRET=secret,
        STRATA_CACHE_PREFIX=key_prefix,
        STRATA_LOG_FORMAT="console",
    )
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    return env


@contextlib.asynccontextmanager
async def running(servers: Sequence[Server]) -> AsyncIterator[None]:
    """Starts every server concurrently; stops them all on the way out, whatever happens."""
    try:
        await asyncio.gather(*(server.start() for server in servers))
        yield
    finally:
        for server in servers:
            await server.stop()
