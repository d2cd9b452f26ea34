#!/bin/sh
# The image's entrypoint: before `strata serve`, apply the Alembic migrations once (here,
# not in each uvicorn worker). MIGRATE_ON_START=0 turns that off, e.g. when several
# replicas start together and a release job migrates instead. Any other command
# (`strata token create ...`, `strata seed`, a shell) runs as given.
set -eu

if [ "${1:-}" = "strata" ] && [ "${2:-}" = "serve" ] && [ "${MIGRATE_ON_START:-1}" != "0" ]; then
    strata db upgrade
fi

exec "$@"
