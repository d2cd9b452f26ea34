"""The dev server's `.strata/dev.env`: `strata` commands run in the project directory use
its Redis and secret without extra variables, under the rule in graph/cli/dev_env.py."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from graph.cli.dev_env import DEV_ENV, load_dev_env, parse, render
from tests.conftest import test_settings as settings_for
from tests.support.api import Api, running_api
from tests.support.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
STRATA = Path(sys.executable).parent / "strata"
SECRET = "dev-secret-of-this-test"


def _strata_sync(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("STRATA_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    env.update(COLUMNS="200", STRATA_LOG_LEVEL="WARNING", **extra_env)
    return subprocess.run(
        [str(STRATA), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
async def dev_project(
    tmp_path: Path, sqlite_url: str, redis_server: RedisServer
) -> AsyncIterator[tuple[Path, Api]]:
    """A project directory whose dev server (here: the app in process) caches in a private
    Redis under the default namespace, with the secret its dev.env names."""
    settings = settings_for(sqlite_url, redis_url=redis_server.url, cache_secret=SECRET)
    project = tmp_path / "project"
    (project / ".strata").mkdir(parents=True)
    (project / DEV_ENV).write_text(
        render(
            {
                "REDIS_URL": redis_server.url,
                "STRATA_CACHE_SECRET": SECRET,
                "DATABASE_URL": sqlite_url,
                "STRATA_ENV": "dev",
            }
        )
    )
    async with running_api(settings) as api:
        await api.data('{ book(id: "1") { title reviewCount } }')
        yield project, api


async def _strata(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    """In a thread: the app under test shares this event loop and must keep running."""
    return await asyncio.to_thread(_strata_sync, cwd, *args, **extra_env)


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def test_cache_commands_use_the_dev_env_of_the_project_directory(
    dev_project: tuple[Path, Api], tmp_path: Path
) -> None:
    project, _api = dev_project
    stats = _json(
        await _strata(project, "cache", "stats", "--json", "--server", "http://127.0.0.1:9")
    )
    assert stats["redis"]["status"] == "ok"
    assert stats["redis"]["entry_keys"] >= 2  # the dev server's entries, in its Redis
    # The secret came along: an entry's signature checks out (the newcomer's symptom was
    # "bad signature" with REDIS_URL alone).
    entry = _json(await _strata(project, "cache", "inspect", "Book:1", "--json"))
    assert entry["exists"] is True
    assert entry["integrity_ok"] is True
    # Elsewhere there is no dev server to find.
    elsewhere = await _strata(tmp_path, "cache", "stats")
    assert elsewhere.returncode == 2
    assert "REDIS_URL is not set" in elsewhere.stderr


async def test_an_explicit_redis_url_wins_over_the_dev_env(
    dev_project: tuple[Path, Api], redis_url: str
) -> None:
    project, _api = dev_project
    # Another Redis (the suite's): the dev server's entries are not there.
    stats = _json(
        await _strata(
            project,
            *("cache", "stats", "--json", "--server", "http://127.0.0.1:9"),
            REDIS_URL=redis_url,
            STRATA_CACHE_PREFIX="strata-dev-env-test-unused",
        )
    )
    assert stats["redis"]["entry_keys"] == 0


def test_rule_needs_the_file_here_no_redis_url_and_the_socket(tmp_path: Path) -> None:
    socket = tmp_path / "redis.sock"
    (tmp_path / ".strata").mkdir()
    (tmp_path / DEV_ENV).write_text(
        render({"REDIS_URL": f"unix://{socket}", "STRATA_CACHE_SECRET": "s", "DATABASE_URL": "d"})
    )
    environ: dict[str, str] = {}
    assert load_dev_env(tmp_path, environ) is None  # the dev server's Redis is not up
    assert environ == {}
    socket.touch()
    assert load_dev_env(tmp_path, environ) == tmp_path / DEV_ENV
    assert environ == {
        "REDIS_URL": f"unix://{socket}",
        "STRATA_CACHE_SECRET": "s",
        "DATABASE_URL": "d",
    }
    configured = {"REDIS_URL": "redis://elsewhere:6379/0"}
    assert load_dev_env(tmp_path, configured) is None
    assert configured == {"REDIS_URL": "redis://elsewhere:6379/0"}
    kept = {"DATABASE_URL": "mine"}
    load_dev_env(tmp_path, kept)
    assert kept["DATABASE_URL"] == "mine"  # the environment wins over the file
    assert load_dev_env(tmp_path / "sub", {}) is None  # parents are not searched


def test_dev_py_writes_the_file_the_cli_reads(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("dev_script", ROOT / "dev.py")
    assert spec is not None
    assert spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    path = tmp_path / DEV_ENV
    dev.write_dev_env(
        {"REDIS_URL": "unix:///x/redis.sock", "STRATA_CACHE_SECRET": "abc", "PATH": "/bin"}, path
    )
    assert parse(path.read_text()) == {
        "REDIS_URL": "unix:///x/redis.sock",
        "STRATA_CACHE_SECRET": "abc",
        "DATABASE_URL": f"sqlite+aiosqlite:///{ROOT / 'strata.db'}",
    }
    assert path.stat().st_mode & 0o077 == 0  # the secret is readable by its owner alone
    assert tuple(dev.DEV_ENV_KEYS) == (
        "REDIS_URL",
        "STRATA_CACHE_SECRET",
        "DATABASE_URL",
        "STRATA_ENV",
    )
