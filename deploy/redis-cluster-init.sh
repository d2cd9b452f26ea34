#!/bin/sh
# Forms the Redis Cluster of deploy/compose.cluster.yaml once: three masters, no replicas.
# Idempotent: when the first node already reports a cluster (a restart with the volumes
# kept), it only waits for the cluster to be healthy.
#
#   REDIS_NODES="redis-1:6379 redis-2:6379 redis-3:6379" redis-cluster-init.sh
#
# `redis-cli --cluster create` wants addresses, so the names are resolved first.
set -eu

NODES="${REDIS_NODES:?set REDIS_NODES to the masters, host:port separated by spaces}"
first="${NODES%% *}"
first_host="${first%:*}"
first_port="${first##*:}"

state() {
    redis-cli -h "$first_host" -p "$first_port" cluster info 2>/dev/null |
        tr -d '\r' | sed -n 's/^cluster_state://p'
}

slots() {
    redis-cli -h "$first_host" -p "$first_port" cluster info 2>/dev/null |
        tr -d '\r' | sed -n 's/^cluster_slots_assigned://p'
}

if [ "$(slots)" = "16384" ]; then
    echo "redis cluster already formed"
else
    addresses=""
    for node in $NODES; do
        host="${node%:*}"
        port="${node##*:}"
        address="$(getent hosts "$host" | awk '{ print $1; exit }')"
        addresses="$addresses ${address:-$host}:$port"
    done
    # shellcheck disable=SC2086  # one word per node
    redis-cli --cluster create $addresses --cluster-replicas 0 --cluster-yes
fi

tries=0
until [ "$(state)" = "ok" ]; do
    tries=$((tries + 1))
    if [ "$tries" -gt 100 ]; then
        echo "redis cluster not healthy after 30 s" >&2
        exit 1
    fi
    sleep 0.3
done
echo "redis cluster ok"
