#!/usr/bin/env bash
# bench-sidecars.sh - what N jcache sidecars cost the one Redis they share,
# with client tracking in its default mode and in BCAST mode.
#
# For each tracking mode (default; bcast with the prefix "key:") and each N in
# BENCH_SIDECARS (default "1 4 16"):
#   1. a fresh redis-server on 127.0.0.1 holds BENCH_KEYS keys
#      (key:000000000000 ..., redis-benchmark's key names);
#   2. N jcache processes (--tier memory --tier redis://...) start, and each
#      reads every key once (so each holds a copy of all of them);
#   3. the upstream's INFO gives its connected clients, its tracking table
#      (tracking_total_keys / _items / _prefixes) and its used_memory beyond
#      the same Redis with no sidecar (the sidecars' connections and the
#      tracking table);
#   4. BENCH_WRITES SETs of random keys go directly to Redis
#      (redis-benchmark -r BENCH_KEYS), and the script prints the bytes Redis
#      sent beyond the benchmark's own replies (the invalidation traffic) and
#      the invalidation messages the sidecars counted (tier1_invalidations).
# Prints one table. Every process it starts is stopped by PID on exit; every
# loop is bounded.
#
# Environment:
#   JCACHE_BIN       default <repo>/target/release/jcache (built if missing)
#   REDIS_BIN        default redis-server on PATH
#   BENCH_SIDECARS   default "1 4 16"
#   BENCH_KEYS       default 10000
#   BENCH_WRITES     default 10000
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
JCACHE_BIN=${JCACHE_BIN:-$REPO_ROOT/target/release/jcache}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}
SIDECARS=${BENCH_SIDECARS:-1 4 16}
KEYS=${BENCH_KEYS:-10000}
WRITES=${BENCH_WRITES:-10000}
UP_PORT=${BENCH_UP_PORT:-6411}
BASE_PORT=${BENCH_BASE_PORT:-6420}

if [[ ! -x $JCACHE_BIN ]]; then
    (cd "$REPO_ROOT" && cargo build --release)
fi

PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# wait_port PORT: bounded wait (10 s) until PING answers there.
wait_port() {
    local i
    for i in $(seq 1 100); do
        [[ $(redis-cli -p "$1" PING 2>/dev/null) == PONG ]] && return 0
        sleep 0.1
    done
    echo "nothing answers on port $1" >&2
    return 1
}

field() { # field PORT SECTION NAME
    redis-cli -p "$1" INFO "$2" | tr -d '\r' | sed -n "s/^$3://p"
}

# keys_cmds CMD: the protocol for CMD on every key (SET with value x, or GET).
keys_cmds() {
    local i
    for ((i = 0; i < KEYS; i++)); do
        if [[ $1 == SET ]]; then
            printf 'SET key:%012d x\r\n' "$i"
        else
            printf 'GET key:%012d\r\n' "$i"
        fi
    done
}

run() { # run MODE N
    local mode=$1 n=$2 j port
    "$REDIS_BIN" --port "$UP_PORT" --bind 127.0.0.1 --save '' --appendonly no \
        --daemonize no --loglevel warning >/dev/null 2>&1 &
    local up_pid=$!
    PIDS+=("$up_pid")
    wait_port "$UP_PORT"
    keys_cmds SET | redis-cli -p "$UP_PORT" --pipe >/dev/null
    local mem0 clients0
    mem0=$(field "$UP_PORT" memory used_memory)
    clients0=$(field "$UP_PORT" clients connected_clients)
    local -a extra=() jpids=()
    [[ $mode == bcast ]] && extra=(--upstream-tracking bcast --upstream-tracking-prefix key:)
    for ((j = 0; j < n; j++)); do
        port=$((BASE_PORT + j))
        "$JCACHE_BIN" --port "$port" --bind 127.0.0.1 --tier memory \
            --tier "redis://127.0.0.1:$UP_PORT" "${extra[@]}" --log-level warn >/dev/null 2>&1 &
        jpids+=("$!")
        PIDS+=("$!")
    done
    for ((j = 0; j < n; j++)); do
        port=$((BASE_PORT + j))
        wait_port "$port"
        for _ in $(seq 1 100); do
            [[ $(field "$port" tiers upstream_status) == up ]] && break
            sleep 0.1
        done
        keys_cmds GET | redis-cli -p "$port" --pipe >/dev/null
    done
    local clients tkeys titems tprefixes mem
    clients=$(($(field "$UP_PORT" clients connected_clients) - clients0))
    tkeys=$(field "$UP_PORT" stats tracking_total_keys)
    titems=$(field "$UP_PORT" stats tracking_total_items)
    tprefixes=$(field "$UP_PORT" stats tracking_total_prefixes)
    mem=$(($(field "$UP_PORT" memory used_memory) - mem0))
    local out0 inval0=0 inval=0 out
    out0=$(field "$UP_PORT" stats total_net_output_bytes)
    for ((j = 0; j < n; j++)); do
        inval0=$((inval0 + $(field $((BASE_PORT + j)) tiers tier1_invalidations)))
    done
    timeout 120 redis-benchmark -p "$UP_PORT" -n "$WRITES" -r "$KEYS" -t set -c 10 -q >/dev/null
    # Invalidations reach the sidecars as Redis's event loop and theirs go:
    # count until the sum stays the same for a second (at most 30 s).
    local prev=-1 tries
    for ((tries = 0; tries < 30; tries++)); do
        inval=0
        for ((j = 0; j < n; j++)); do
            inval=$((inval + $(field $((BASE_PORT + j)) tiers tier1_invalidations)))
        done
        ((inval == prev)) && break
        prev=$inval
        sleep 1
    done
    out=$(($(field "$UP_PORT" stats total_net_output_bytes) - out0 - WRITES * 5))
    inval=$((inval - inval0))
    printf '| %s | %d | %d | %s | %s | %s | %d | %d | %d |\n' "$mode" "$n" "$clients" \
        "$tkeys" "$titems" "$tprefixes" $((mem / 1024)) $((out / 1024)) "$inval"
    for j in "${jpids[@]}" "$up_pid"; do kill "$j" 2>/dev/null || true; done
    for j in "${jpids[@]}" "$up_pid"; do wait "$j" 2>/dev/null || true; done
    PIDS=()
}

echo "jcache: $JCACHE_BIN; redis: $("$REDIS_BIN" --version | awk '{print $3}'); $KEYS keys read by every sidecar, then $WRITES SETs of random keys directly at Redis"
echo
echo "| tracking | sidecars | upstream connections | tracking_total_keys | tracking_total_items | prefixes | upstream memory KiB (connections + tracking) | invalidation traffic KiB | invalidation messages received |"
echo "|---|---|---|---|---|---|---|---|---|"
for mode in default bcast; do
    for n in $SIDECARS; do
        run "$mode" "$n"
    done
done
