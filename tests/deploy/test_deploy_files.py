"""The Dockerfile, the compose file and the Redis configuration say what they must.

No Docker engine runs where the suite runs, so these read the files: the compose settings
are Strata's own, Redis really accepts its configuration, the image is built from the
hashed lock file and runs `strata serve` as a user that is not root.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import stat
import subprocess
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml  # type: ignore[import-untyped]  # PyYAML ships no stubs; none are locked
from prometheus_client.parser import text_string_to_metric_families
from pydantic import AliasChoices

from graph.settings import Settings
from tests import conftest
from tests.support.api import running_api
from tests.support.redis_server import free_port, redis_server_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT = DEPLOY / "docker-entrypoint.sh"


# --- compose -----------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def app_environment() -> dict[str, str]:
    environment: dict[str, str] = compose()["services"]["app"]["environment"]
    return environment


def settings_env_names() -> set[str]:
    """Every environment variable graph.settings.Settings reads."""
    prefix = Settings.model_config.get("env_prefix", "")
    names: set[str] = set()
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        elif isinstance(alias, str):
            names.add(alias)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def test_compose_has_the_app_redis_and_postgres() -> None:
    services = compose()["services"]
    assert set(services) >= {"app", "redis", "postgres"}
    build = services["app"]["build"]
    context = build if isinstance(build, str) else build["context"]
    assert (DEPLOY / context / "Dockerfile").resolve() == DOCKERFILE
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")


def test_compose_app_waits_for_healthy_dependencies() -> None:
    services = compose()["services"]
    depends_on = services["app"]["depends_on"]
    for name in ("redis", "postgres"):
        assert depends_on[name]["condition"] == "service_healthy"
        assert "healthcheck" in services[name], name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]


def test_only_the_app_publishes_a_port() -> None:
    # redis.conf turns protected mode off: that is safe only inside the compose network.
    services = compose()["services"]
    assert "ports" not in services["redis"]
    assert "ports" not in services["postgres"]
    assert any(str(port).endswith("8000") for port in services["app"]["ports"])


def test_compose_settings_are_settings_strata_reads() -> None:
    environment = app_environment()
    known = settings_env_names()
    assert {"DATABASE_URL", "REDIS_URL", "STRATA_CACHE_SECRET", "STRATA_ENV"} <= set(environment)
    unknown = set(environment) - known
    assert not unknown, f"compose sets variables Settings does not read: {unknown}"


def settings_from(environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The Settings a container with `environment` reads (the operator's secret set, none
    of ours leaking in)."""
    for name in list(os.environ):
        if name in settings_env_names():
            monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, "operator-secret" if name == "STRATA_CACHE_SECRET" else value)
    return Settings()


def test_compose_settings_validate_and_point_at_the_compose_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environment = app_environment()
    secret = environment["STRATA_CACHE_SECRET"]
    # Compose refuses to start unless the operator sets the secret (no default to forget).
    assert secret == "${STRATA_CACHE_SECRET:?set STRATA_CACHE_SECRET}"
    settings = settings_from(environment, monkeypatch)
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in settings.database_url
    assert settings.redis_url == "redis://redis:6379/0"
    assert settings.cache_secret == "operator-secret"
    assert settings.env == "production"
    assert not settings.dev


# --- redis.conf --------------------------------------------------------------------------


def redis_directives(name: str = "redis.conf") -> dict[str, str]:
    """The directives of a Redis configuration file under deploy/, by lowercase name."""
    directives: dict[str, str] = {}
    for line in (DEPLOY / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition(" ")
            directives[name.lower()] = value.strip()
    return directives


def test_redis_conf_persists_with_aof_and_evicts_lru() -> None:
    directives = redis_directives()
    assert directives["appendonly"] == "yes"
    assert directives["appendfsync"] == "everysec"
    assert directives["maxmemory-policy"] in {"allkeys-lru", "volatile-lru"}
    assert re.fullmatch(r"[1-9]\d*(mb|gb)", directives["maxmemory"])


def test_redis_conf_dir_is_the_mounted_volume() -> None:
    redis_service = compose()["services"]["redis"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in redis_service["volumes"]}
    assert redis_directives()["dir"] in mounts
    config_path = redis_service["command"][-1]
    assert mounts[config_path] == "./redis.conf"


def start_shipped_redis(name: str, home: Path, port: int) -> subprocess.Popen[bytes]:
    """redis-server on `port` from deploy/`name`, its output piped, with only its port,
    bind address and `dir` (`home`) changed."""
    # Redis changes into `dir` while it reads the file, before command-line overrides: point
    # the copy's dir at a directory that exists here.
    shipped = (DEPLOY / name).read_text()
    config = home / name
    config.write_text(re.sub(r"^dir .*$", f"dir {home}", shipped, flags=re.MULTILINE))
    return subprocess.Popen(
        [redis_server_binary(), str(config), "--port", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_redis_accepts_the_shipped_config(tmp_path: Path) -> None:
    """A real redis-server starts from deploy/redis.conf (only port, bind and dir changed)."""
    port = free_port()
    process = start_shipped_redis("redis.conf", tmp_path, port)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, decode_responses=True)
    try:
        for _ in range(200):
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                pytest.fail(f"redis-server refused deploy/redis.conf:\n{output}")
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        running = client.config_get("*")
        assert running["appendonly"] == "yes"
        assert running["appendfsync"] == "everysec"
        assert running["maxmemory-policy"] == "allkeys-lru"
        assert int(str(running["maxmemory"])) == 256 * 1024 * 1024
        assert running["protected-mode"] == "no"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()


# --- Dockerfile --------------------------------------------------------------------------


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def dockerfile_stages() -> list[Stage]:
    """The stages of the Dockerfile, each a list of (INSTRUCTION, arguments), continuations
    joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append((keyword, " ".join(args.split())))
    return stages


def test_dockerfile_is_multi_stage_with_a_slim_final_stage() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    builder, final = stages[0], stages[-1]
    assert final.base.startswith("python:3.11-slim")
    assert builder.name is not None
    assert any(f"--from={builder.name}" in copy for copy in final.all("COPY"))


def test_dockerfile_installs_the_hashed_lock_file() -> None:
    builder = dockerfile_stages()[0]
    runs = builder.all("RUN")
    assert any("requirements.lock" in copy for copy in builder.all("COPY"))
    assert any(
        "pip install" in run and "--require-hashes" in run and "-r requirements.lock" in run
        for run in runs
    )
    # Every pip install of a requirement file checks hashes; the project itself has no deps.
    for run in runs:
        for command in run.split("&&"):
            if "pip install" in command and " -r " in command:
                assert "--require-hashes" in command, command
            if "pip install" in command and " -e " in command:
                assert "--no-deps" in command, command
    text = (ROOT / "requirements.lock").read_text()
    pinned = re.findall(r"^([A-Za-z0-9_.\-\[\],]+)==\S+ \\$", text, flags=re.MULTILINE)
    assert pinned
    assert text.count("==") == len(pinned), "every requirement is pinned with =="


def test_dockerfile_build_backend_step_finds_hashed_setuptools() -> None:
    """The builder takes setuptools (with its hashes) from the dev lock: run that awk."""
    if shutil.which("awk") is None:
        pytest.skip("no awk here")
    run = next(r for r in dockerfile_stages()[0].all("RUN") if r.startswith("awk "))
    program = re.search(r"awk '([^']*)'", run)
    assert program is not None
    extracted = subprocess.run(
        ["awk", program.group(1), str(ROOT / "requirements-dev.lock")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert extracted[0].startswith("setuptools==")
    assert len(extracted) >= 2
    assert all(line.strip().startswith("--hash=sha256:") for line in extracted[1:])


def test_dockerfile_final_stage_runs_as_a_user_that_is_not_root() -> None:
    users = dockerfile_stages()[-1].all("USER")
    assert users, "the final stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_serves_strata_with_workers_and_a_healthcheck() -> None:
    final = dockerfile_stages()[-1]
    command = json.loads(final.all("CMD")[-1])
    assert command[:2] == ["strata", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert command[command.index("--port") + 1] == "8000"
    assert int(command[command.index("--workers") + 1]) >= 2
    assert "8000" in final.all("EXPOSE")[-1].split()
    healthcheck = final.all("HEALTHCHECK")[-1]
    assert "urllib" in healthcheck
    assert "/healthz" in healthcheck


def test_dockerfile_puts_alembic_beside_graph() -> None:
    """graph/cli/migrations.py finds alembic.ini and alembic/ in the checkout it lies in."""
    copies = " ".join(dockerfile_stages()[0].all("COPY")).split()
    for needed in ("alembic.ini", "alembic", "graph", "models", "cache"):
        assert needed in copies, needed
    assert dockerfile_stages()[0].all("WORKDIR")[-1] == "/app"
    assert any(copy.endswith("/app /app") for copy in dockerfile_stages()[-1].all("COPY"))


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(prefix, pattern) for pattern in patterns for prefix in prefixes)


def test_every_copied_path_exists_and_is_not_dockerignored() -> None:
    patterns = dockerignore_patterns()
    for local in (".venv", ".git", "strata.db", "bench-results", "graph/__pycache__"):
        assert ignored(local, patterns), f"{local} would be sent to the Docker daemon"
    for stage in dockerfile_stages():
        for copy in stage.all("COPY"):
            words = [word for word in copy.split() if not word.startswith("--")]
            if any(word.startswith("--from=") for word in copy.split()):
                continue
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not ignored(source, patterns), f"COPY {source} is in .dockerignore"


# --- the entrypoint ----------------------------------------------------------------------


def run_entrypoint(tmp_path: Path, *args: str, **env: str) -> list[str]:
    """Run deploy/docker-entrypoint.sh with a fake `strata` that logs its arguments."""
    log = tmp_path / "calls.log"
    fake = tmp_path / "strata"
    fake.write_text(f'#!/bin/sh\necho "strata $*" >> {log}\n')
    fake.chmod(0o755)
    environment = {"PATH": f"{tmp_path}:/usr/bin:/bin", **env}
    subprocess.run(["sh", str(ENTRYPOINT), *args], env=environment, check=True)
    return log.read_text().splitlines() if log.exists() else []


def test_entrypoint_migrates_before_serving(tmp_path: Path) -> None:
    assert ENTRYPOINT.stat().st_mode & stat.S_IXUSR
    calls = run_entrypoint(tmp_path, "strata", "serve", "--workers", "2")
    assert calls == ["strata db upgrade", "strata serve --workers 2"]


def test_entrypoint_migration_is_opt_out(tmp_path: Path) -> None:
    calls = run_entrypoint(tmp_path, "strata", "serve", MIGRATE_ON_START="0")
    assert calls == ["strata serve"]


def test_entrypoint_runs_other_commands_as_given(tmp_path: Path) -> None:
    calls = run_entrypoint(tmp_path, "strata", "token", "create", "alice")
    assert calls == ["strata token create alice"]


# --- Grafana -----------------------------------------------------------------------------

GRAFANA = DEPLOY / "grafana-dashboard.json"
SELECTOR = re.compile(r"\b([A-Za-z_:][\w:]*)\s*(?=[{\[])")  # a name right before {…} or […]
STRATA_NAME = re.compile(r"\bstrata_\w+")
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "gauge": ("",),
}


def grafana_exprs(node: Any) -> list[str]:
    """Every PromQL expression in the dashboard: panel targets and template queries."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(grafana_exprs(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(grafana_exprs(item))
    return found


def exported_series(metrics_text: str) -> set[str]:
    """The series names a scrape can hold: each family with its sample suffixes (a
    labelled counter nobody has incremented yet has no sample, but is exported)."""
    names: set[str] = set()
    for family in text_string_to_metric_families(metrics_text):
        # The parser names a counter's family without `_total`, as SUFFIXES expects.
        names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def test_grafana_dashboard_parses_and_has_the_panels() -> None:
    dashboard = json.loads(GRAFANA.read_text())
    assert dashboard["uid"]
    assert dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    titles = [p["title"] for p in panels]
    assert len(titles) == len(set(titles)), titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), ids
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
    exprs = " ".join(grafana_exprs(dashboard))
    for wanted in (
        "histogram_quantile(0.95, sum by (le) (rate(strata_request_seconds_bucket",
        "strata_cache_hits_total",
        "strata_cache_misses_total",
        "strata_response_cache_total",
        "strata_sql_statements_per_operation",
        "strata_cache_redis_errors_total",
        "strata_redis_breaker_open",
        "strata_cache_invalidations_total",
        "strata_cache_l1_entries",
    ):
        assert wanted in exprs, wanted


async def test_grafana_dashboard_queries_only_metrics_the_app_exports(sqlite_url: str) -> None:
    exprs = grafana_exprs(json.loads(GRAFANA.read_text()))
    referenced: set[str] = set()
    for expr in exprs:
        selectors = set(SELECTOR.findall(expr))
        assert all(name.startswith("strata_") for name in selectors), (expr, selectors)
        referenced |= selectors | set(STRATA_NAME.findall(expr))
    assert referenced

    async with running_api(conftest.test_settings(sqlite_url)) as api:
        await api.data("{ books(first: 3) { edges { node { title author { name } } } } }")
        await api.data("{ books(first: 3) { edges { node { title author { name } } } } }")
        metrics_text = (await api.client.get("/metrics")).text

    exported = exported_series(metrics_text)
    missing = sorted(referenced - exported)
    assert not missing, f"the Grafana dashboard queries series /metrics does not export: {missing}"


def test_ci_runs_the_slow_tests_too() -> None:
    """`-m "not slow"` is for a developer's loop only: CI's command selects no markers,
    and neither does pytest's configuration, so every slow test runs there."""
    ci = (ROOT / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if line.startswith("exec ")]
    assert command == ["exec python3 dev.py test"], command
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]
    addopts = pytest_options["ini_options"]["addopts"].split()
    assert not any(opt.startswith("-m") for opt in addopts), addopts
    markers = pytest_options["ini_options"]["markers"]
    assert any(marker.startswith("slow:") for marker in markers), markers
