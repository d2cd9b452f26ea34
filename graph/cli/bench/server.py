"""The benchmark's processes: its database, and one `strata serve` per phase."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import orjson

from graph.cli import migrations
from graph.cli.redis_process import free_port
from models import Database
from models.seed import SeedPlan, is_empty, seed
from models.tokens import create_token

ROOT = Path(__file__).resolve().parents[3]
STARTUP_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Tokens:
    users: list[str]
    admin: str


def prepare_database(
    database_url: str, plan: SeedPlan, viewers: int, progress: Callable[[int], None]
) -> Tokens:
    """Migrates, seeds (the database must be empty) and creates the bearer tokens: one for
    each of the first `viewers` seeded users (reader1, reader2, ...) and one admin."""
    migrations.upgrade(database_url)

    async def run() -> Tokens:
        db = Database(database_url)
        try:
            if not await is_empty(db):
                raise RuntimeError("the benchmark database already has data; give it an empty one")
            await seed(db, plan, progress)
            async with db.session() as session, session.begin():
                users = [
                    await create_token(session, f"reader{n}")
                    for n in range(1, min(viewers, plan.users) + 1)
                ]
                admin = await create_token(session, "bench-admin", admin=True)
            return Tokens(users, admin)
        finally:
            await db.dispose()

    return asyncio.run(run())


def strata_command() -> list[str]:
    script = Path(sys.executable).parent / "strata"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from graph.cli.main import main; main()"]


def cpu_split() -> tuple[str | None, str | None]:
    """(load generator CPUs, server CPUs) for taskset: wrk gets the first CPU this process
    may use and the server the others; no pinning on one CPU or without taskset."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return None, None
    if len(cpus) < 2 or shutil.which("taskset") is None:
        return None, None
    return str(cpus[0]), ",".join(str(cpu) for cpu in cpus[1:])


def strata_serve(port: int, workers: int) -> list[str]:
    return [
        *strata_command(),
        *("serve", "--host", "127.0.0.1", "--port", str(port)),
        *("--workers", str(workers)),
    ]


YARDSTICK_READY = "/graphql?query=%7B__typename%7D"  # it has no /healthz: a query instead


def yardstick_serve(port: int, _workers: int) -> list[str]:
    """benchmarks/yardstick.py, run from the checkout (it is not part of the package)."""
    return [
        sys.executable,
        "-m",
        "benchmarks.yardstick",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


class ServerProcess:
    """One `strata serve` (or another `program`) on a free port of 127.0.0.1, logging to a
    file."""

    def __init__(
        self,
        env: Mapping[str, str],
        workers: int,
        log_path: Path,
        cpus: str | None,
        admin_token: str,
        program: Callable[[int, int], list[str]] = strata_serve,
        ready_path: str = "/healthz",
    ) -> None:
        self.program = program
        self.ready_path = ready_path
        self.env = dict(env)
        self.admin_token = admin_token
        """Sent to /metrics, which is an operator surface in production."""
        self.workers = workers
        self.log_path = log_path
        self.cpus = cpus
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port()
        command = self.program(self.port, self.workers)
        if self.cpus is not None:
            command = ["taskset", "-c", self.cpus, *command]
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            env={**self.env, "PYTHONPATH": str(ROOT)},
            cwd=self.log_path.parent,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}{self.ready_path}", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"the server did not answer {self.ready_path} in time:\n{self.log_tail()}"
        )

    def cpu_seconds(self) -> float | None:
        """User and system CPU time the server process has used so far (Linux)."""
        if self._process is None:
            return None
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # utime and stime: fields 14 and 15 of stat(5), counted after the command's ")".
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float | None:
        """The server process's peak resident memory so far (VmHWM, Linux)."""
        if self._process is None:
            return None
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
        return None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def trim_log(self, keep_bytes: int = 64 * 1024) -> None:
        """Keep only the end of the log: at the default INFO level it holds one line per
        request, tens of megabytes a run, and only its end says anything about a failure."""
        try:
            with self.log_path.open("rb+") as log:
                size = log.seek(0, os.SEEK_END)
                if size <= keep_bytes:
                    return
                log.seek(size - keep_bytes)
                tail = log.read()
                log.seek(0)
                log.write(tail[tail.find(b"\n") + 1 :])
                log.truncate()
        except OSError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def graphql(self, body: bytes, token: str | None) -> tuple[int, dict[str, Any]]:
        """One request outside the load (the pre-flight check of every query kind)."""
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as error:
            payload = error.read()
            try:
                return error.code, orjson.loads(payload)
            except orjson.JSONDecodeError:
                return error.code, {"raw": payload.decode(errors="replace")}
