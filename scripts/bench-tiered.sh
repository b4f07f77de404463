#!/usr/bin/env bash
# bench-tiered.sh - jcache with an upstream Redis 1 ms away, versus going to
# that Redis directly.
#
# The upstream redis-server runs in a network namespace of this script's own
# (`ip netns add`, a veth pair with addresses of its own in 10.254.77.0/30,
# `tc qdisc add ... netem delay` on the host side, so every request to it waits
# BENCH_DELAY more: the round trip is ~1 ms, as in a data centre). jcache and
# redis-benchmark stay on this host. If the kernel refuses the namespace or
# netem, a small delaying TCP proxy (examples/delay_proxy.rs, on 127.0.0.1)
# stands in for the link instead, and the script says so.
#
# Runs, for each pipeline depth in BENCH_PIPELINES (default "1 16"):
#   direct  : GET (45 clients) and SET (5 clients) at the same time, i.e. a
#             90/10 read/write mix over a -r 10000 hot keyspace, against the
#             upstream itself;
#   tiered  : the same mix through jcache --tier memory --tier redis://upstream
#             (keys warmed first, so reads are local hits);
#   hit-only: GET with 50 clients through the tiered jcache, and through a
#             memory-only jcache holding the same keys (a local hit must not
#             cost more than a memory-only hit).
# and prints ops/s, p50 and p99 (ms) side by side with the ratio.
#
# Usage: sudo scripts/bench-tiered.sh     (root: network namespaces)
#
# Environment:
#   JCACHE_BIN      default <repo>/target/release/jcache (built if missing)
#   REDIS_BIN       default redis-server on PATH
#   BENCH_N         GET requests per run (default 200000; SET gets N/9)
#   BENCH_PIPELINES default "1 16"
#   BENCH_DELAY     one-way delay added to the upstream link (default 1ms)
#   BENCH_TIMEOUT   seconds allowed per redis-benchmark run (default 180)
#   BENCH_PROXY=1   use the delaying proxy even if netns works
#   BENCH_RESULTS_DIR  default <repo>/target/bench-tiered
#
# Everything it starts is stopped by PID on exit, and the namespace deleted.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
JCACHE_BIN=${JCACHE_BIN:-$REPO_ROOT/target/release/jcache}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}
N=${BENCH_N:-200000}
PIPELINES=${BENCH_PIPELINES:-1 16}
DELAY=${BENCH_DELAY:-1ms}
BTIMEOUT=${BENCH_TIMEOUT:-180}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$REPO_ROOT/target/bench-tiered}
KEYSPACE=10000
NSET=$(( N / 9 ))

NS=jcbt$$
HOST_IF=jcbh$$
NS_IF=jcbn$$
HOST_ADDR=10.254.77.1
NS_ADDR=10.254.77.2
UP_PORT=6399

mkdir -p "$RESULTS_DIR"
PIDS=()
NS_MADE=0

cleanup() {
    set +e
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    if [ "$NS_MADE" = 1 ]; then
        ip netns del "$NS" 2>/dev/null
        ip link del "$HOST_IF" 2>/dev/null
    fi
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_ping() { # host port
    for _ in $(seq 1 200); do
        if [ "$(redis-cli -h "$1" -p "$2" PING 2>/dev/null)" = PONG ]; then
            return 0
        fi
        sleep 0.05
    done
    echo "server on $1:$2 did not start" >&2
    exit 1
}

if [ ! -x "$JCACHE_BIN" ]; then
    (cd "$REPO_ROOT" && cargo build --release)
fi

# ---- the upstream, 1 ms away ----
MODE=netns
if [ "${BENCH_PROXY:-0}" != 1 ] && ip netns add "$NS" 2>/dev/null; then
    NS_MADE=1
    if ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS" \
        && ip addr add "$HOST_ADDR/30" dev "$HOST_IF" \
        && ip link set "$HOST_IF" up \
        && ip netns exec "$NS" ip addr add "$NS_ADDR/30" dev "$NS_IF" \
        && ip netns exec "$NS" ip link set "$NS_IF" up \
        && ip netns exec "$NS" ip link set lo up \
        && tc qdisc add dev "$HOST_IF" root netem delay "$DELAY" limit 100000; then
        ip netns exec "$NS" "$REDIS_BIN" --port "$UP_PORT" --bind "$NS_ADDR" --save "" \
            --appendonly no --logfile "$RESULTS_DIR/upstream.log" &
        PIDS+=($!)
        UP_HOST=$NS_ADDR
    else
        echo "veth/netem refused by the kernel; falling back to the delaying proxy" >&2
        ip netns del "$NS" 2>/dev/null || true
        ip link del "$HOST_IF" 2>/dev/null || true
        NS_MADE=0
        MODE=proxy
    fi
else
    MODE=proxy
fi
if [ "$MODE" = proxy ]; then
    echo "NOTE: netem is not available here; a delaying TCP proxy (examples/delay_proxy.rs)" \
        "adds $DELAY to every request on its way to the upstream instead" >&2
    PROXY_BIN=$REPO_ROOT/target/release/examples/delay_proxy
    if [ ! -x "$PROXY_BIN" ]; then
        (cd "$REPO_ROOT" && cargo build --release --example delay_proxy)
    fi
    REAL_PORT=$(free_port)
    "$REDIS_BIN" --port "$REAL_PORT" --bind 127.0.0.1 --save "" --appendonly no \
        --logfile "$RESULTS_DIR/upstream.log" &
    PIDS+=($!)
    wait_ping 127.0.0.1 "$REAL_PORT"
    UP_PORT=$(free_port)
    DELAY_US=$(awk -v d="$DELAY" 'BEGIN{ if (d ~ /ms$/) { sub(/ms$/, "", d); print d*1000 } else if (d ~ /us$/) { sub(/us$/, "", d); print d } else { sub(/s$/, "", d); print d*1000000 } }')
    "$PROXY_BIN" "127.0.0.1:$UP_PORT" "127.0.0.1:$REAL_PORT" "$DELAY_US" &
    PIDS+=($!)
    UP_HOST=127.0.0.1
fi
wait_ping "$UP_HOST" "$UP_PORT"
echo "upstream: $UP_HOST:$UP_PORT ($MODE, +$DELAY)"
echo "round trip to the upstream (min/max/avg ms, samples): $(timeout 3 redis-cli -h "$UP_HOST" -p "$UP_PORT" --latency --raw -i 1 2>/dev/null | tail -1 || true)"

# ---- the hot keyspace: key:000000000000 .. key:000000009999 (redis-benchmark -r names) ----
preload() { # host port
    for i in $(seq 0 $((KEYSPACE - 1))); do
        printf 'SET key:%012d xxx\r\n' "$i"
    done | redis-cli -h "$1" -p "$2" --pipe >/dev/null
}
preload "$UP_HOST" "$UP_PORT"

# ---- jcache: tiered, and memory-only ----
TP=$(free_port)
"$JCACHE_BIN" --port "$TP" --bind 127.0.0.1 --log-level warn \
    --tier memory --tier "redis://$UP_HOST:$UP_PORT" 2>"$RESULTS_DIR/jcache-tiered.log" &
PIDS+=($!)
MP=$(free_port)
"$JCACHE_BIN" --port "$MP" --bind 127.0.0.1 --log-level warn 2>"$RESULTS_DIR/jcache-memory.log" &
PIDS+=($!)
wait_ping 127.0.0.1 "$TP"
wait_ping 127.0.0.1 "$MP"
for _ in $(seq 1 100); do
    redis-cli -p "$TP" INFO tiers | grep -q 'upstream_status:up' && break
    sleep 0.1
done
preload 127.0.0.1 "$MP"

# warm: one read of every key through the tiered jcache
warm() {
    for i in $(seq 0 $((KEYSPACE - 1))); do
        printf 'GET key:%012d\r\n' "$i"
    done | redis-cli -p "$TP" --pipe >/dev/null
}

# bench LABEL HOST PORT TEST CLIENTS N PIPE -> appends "label,test,pipe,rps,p50,p99"
bench() {
    local label=$1 host=$2 port=$3 test=$4 clients=$5 n=$6 pipe=$7
    local out
    out=$(timeout "$BTIMEOUT" redis-benchmark -h "$host" -p "$port" -t "$test" -c "$clients" \
        -n "$n" -P "$pipe" -r "$KEYSPACE" --csv 2>/dev/null | tail -1)
    # "GET","rps","avg","min","p50","p95","p99","max"
    echo "$out" | tr -d '"' | awk -F, -v l="$label" -v p="$pipe" -v t="$test" \
        '{printf "%s,%s,%s,%s,%s,%s\n", l, t, p, $2, $5, $7}' >>"$RESULTS_DIR/results.csv"
}

mix() { # LABEL HOST PORT PIPE
    bench "$1" "$2" "$3" get 45 "$N" "$4" &
    local g=$!
    bench "$1" "$2" "$3" set 5 "$NSET" "$4" &
    local s=$!
    wait $g $s
}

: >"$RESULTS_DIR/results.csv"
for P in $PIPELINES; do
    mix direct "$UP_HOST" "$UP_PORT" "$P"
    warm
    mix tiered 127.0.0.1 "$TP" "$P"
    warm
    bench tiered-hit 127.0.0.1 "$TP" get 50 "$N" "$P"
    bench memory-hit 127.0.0.1 "$MP" get 50 "$N" "$P"
done

echo "90/10 GET/SET mix, -c 50 (45 GET + 5 SET clients), -r $KEYSPACE; upstream +$DELAY ($MODE)"
printf '%-4s %-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
    "-P" test "direct ops/s" p50 p99 "jcache ops/s" p50 p99 ratio
row() { # label test pipe
    grep "^$1,$2,$3," "$RESULTS_DIR/results.csv" | head -1 || echo "$1,$2,$3,0,-,-"
}
for P in $PIPELINES; do
    for T in get set; do
        d=$(row direct "$T" "$P"); t=$(row tiered "$T" "$P")
        IFS=, read -r _ _ _ drps dp50 dp99 <<<"$d"
        IFS=, read -r _ _ _ trps tp50 tp99 <<<"$t"
        ratio=$(awk -v a="$trps" -v b="$drps" 'BEGIN{ if (b>0) printf "%.1fx", a/b; else print "-" }')
        printf '%-4s %-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
            "$P" "$T" "$drps" "$dp50" "$dp99" "$trps" "$tp50" "$tp99" "$ratio"
    done
done
echo
echo "local hits (GET only, -c 50): tiered jcache vs memory-only jcache"
printf '%-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
    "-P" "tiered ops/s" p50 p99 "memory ops/s" p50 p99 ratio
for P in $PIPELINES; do
    t=$(row tiered-hit get "$P"); m=$(row memory-hit get "$P")
    IFS=, read -r _ _ _ trps tp50 tp99 <<<"$t"
    IFS=, read -r _ _ _ mrps mp50 mp99 <<<"$m"
    ratio=$(awk -v a="$trps" -v b="$mrps" 'BEGIN{ if (b>0) printf "%.2fx", a/b; else print "-" }')
    printf '%-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
        "$P" "$trps" "$tp50" "$tp99" "$mrps" "$mp50" "$mp99" "$ratio"
done
echo
redis-cli -p "$TP" INFO tiers | tr -d '\r' | grep -E 'tier0_(hits|misses|backfills|invalidations)|tier1_(latency_avg_us|errors|forwarded)'
echo "raw results: $RESULTS_DIR/results.csv"
