# syntax=docker/dockerfile:1
# Strata's production image.
#
#   docker build -t strata .
#   docker run -p 8000:8000 -e STRATA_CACHE_SECRET=... -e REDIS_URL=... strata
#
# deploy/compose.yaml runs it with Redis (AOF) and PostgreSQL.

# --- builder: a virtual environment from the hashed lock file ---------------------------
FROM python:3.11-slim AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /app

# Dependencies first, so a source change does not reinstall them. Every requirement is
# pinned with its hashes; --only-binary keeps compilers out (each one ships a cp311 wheel).
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary=:all: -r requirements.lock

# The build backend, pinned and hashed too: the runtime lock has no setuptools, the dev lock
# does. Copy its block (the name line and its --hash lines) into a lock of its own.
COPY requirements-dev.lock ./
RUN awk '/^setuptools==/ { keep = 1 } keep && /^ *#/ { exit } keep' requirements-dev.lock \
        > build.lock \
    && grep -q -- '--hash=sha256:' build.lock \
    && pip install --require-hashes --only-binary=:all: -r build.lock \
    && rm build.lock requirements-dev.lock

# The project itself, editable: graph/cli/main.py finds alembic.ini and alembic/ beside graph/
# (Path(graph.__file__).parents[1]), so the source lives in /app in the final image too.
COPY pyproject.toml alembic.ini ./
COPY alembic ./alembic
COPY cache ./cache
COPY models ./models
COPY graph ./graph
RUN pip install --no-deps --no-build-isolation -e . \
    && strata --help > /dev/null

# --- final: the venv and the source, run as an unprivileged user ------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    STRATA_ENV=production \
    DATABASE_URL=sqlite+aiosqlite:////data/strata.db

RUN groupadd --system --gid 10001 strata \
    && useradd --system --uid 10001 --gid strata --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin strata \
    && mkdir /data && chown strata:strata /data

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh

# The source is root-owned and read-only for the app user, so compile it now rather than
# on every start. /data is the only writable place (the SQLite default, when DATABASE_URL
# does not name a server).
RUN python -m compileall -q /app/graph /app/models /app/cache /app/alembic \
    && chmod 0755 /usr/local/bin/docker-entrypoint.sh

WORKDIR /app
USER strata:strata

EXPOSE 8000

# /healthz says the process answers; /readyz (database and Redis) is for the orchestrator's
# readiness, not for restarting the container. slim has no curl: Python's urllib it is.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

# Applies migrations (`strata db upgrade`) before `strata serve`, unless MIGRATE_ON_START=0.
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["strata", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
