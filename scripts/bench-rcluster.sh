#!/usr/bin/env bash
# bench-rcluster.sh - hot reads through jcache in front of a Redis Cluster
# 1 ms away, versus reading from the cluster directly.
#
# A Redis Cluster of 3 primaries runs in a network namespace of this
# script's own (as scripts/bench-tiered.sh does it: a veth pair with
# addresses in 10.254.78.0/30, `tc qdisc ... netem delay` on the host side,
# so every request to any shard waits BENCH_DELAY more). If the kernel
# refuses the namespace or netem, each node sits behind a delaying TCP proxy
# (examples/delay_proxy.rs) and announces the proxy's port to the cluster
# (`cluster-announce-port`), so direct cluster clients go through it too.
#
# For each pipeline depth in BENCH_PIPELINES (default "1 16"), GET with 50
# clients over a -r 10000 hot keyspace:
#   direct : redis-benchmark --cluster against the cluster;
#   jcache : redis-benchmark against jcache --tier memory
#            --tier redis+cluster://... (keys warmed first: local hits).
# Prints ops/s, p50 and p99 (ms) side by side, with the ratio.
#
# Usage: scripts/bench-rcluster.sh   (root for network namespaces)
#
# Environment:
#   JCACHE_BIN      default <repo>/target/release/jcache (built if missing)
#   REDIS_BIN       default redis-server on PATH
#   BENCH_N         requests per run (default 200000)
#   BENCH_PIPELINES default "1 16"
#   BENCH_DELAY     one-way delay added to every shard's link (default 1ms)
#   BENCH_TIMEOUT   seconds allowed per redis-benchmark run (default 180)
#   BENCH_PROXY=1   use the delaying proxies even if netns works
#   BENCH_RESULTS_DIR  default <repo>/target/bench-rcluster
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
RESULTS_DIR=${BENCH_RESULTS_DIR:-$REPO_ROOT/target/bench-rcluster}
KEYSPACE=10000

NS=jcrc$$
HOST_IF=jcrh$$
NS_IF=jcrn$$
HOST_ADDR=10.254.78.1
NS_ADDR=10.254.78.2

mkdir -p "$RESULTS_DIR"
WORK=$(mktemp -d)
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
    rm -rf "$WORK"
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

# node PORT BUS BIND [extra...]: one cluster node (in the namespace with NETNS set)
node() {
    local port=$1 bus=$2 bind=$3
    shift 3
    ${NETNS:-} "$REDIS_BIN" --port "$port" --bind "$bind" --save "" --appendonly no \
        --cluster-enabled yes --cluster-port "$bus" --cluster-node-timeout 5000 \
        --cluster-config-file "$WORK/nodes-$port.conf" --dir "$WORK" \
        --logfile "$RESULTS_DIR/node-$port.log" "$@" &
    PIDS+=($!)
}

# ---- the cluster, 1 ms away ----
MODE=netns
ADDRS=()
if [ "${BENCH_PROXY:-0}" != 1 ] && ip netns add "$NS" 2>/dev/null; then
    NS_MADE=1
    if ip link add "$HOST_IF" type veth peer name "$NS_IF" netns "$NS" \
        && ip addr add "$HOST_ADDR/30" dev "$HOST_IF" \
        && ip link set "$HOST_IF" up \
        && ip netns exec "$NS" ip addr add "$NS_ADDR/30" dev "$NS_IF" \
        && ip netns exec "$NS" ip link set "$NS_IF" up \
        && ip netns exec "$NS" ip link set lo up \
        && tc qdisc add dev "$HOST_IF" root netem delay "$DELAY" limit 100000; then
        NETNS="ip netns exec $NS"
        for port in 7301 7302 7303; do
            node "$port" $((port + 10000)) "$NS_ADDR"
            ADDRS+=("$NS_ADDR:$port")
        done
    else
        echo "veth/netem refused by the kernel; falling back to the delaying proxies" >&2
        ip netns del "$NS" 2>/dev/null || true
        ip link del "$HOST_IF" 2>/dev/null || true
        NS_MADE=0
        MODE=proxy
    fi
else
    MODE=proxy
fi
if [ "$MODE" = proxy ]; then
    PROXY_BIN=$REPO_ROOT/target/release/examples/delay_proxy
    if [ ! -x "$PROXY_BIN" ]; then
        (cd "$REPO_ROOT" && cargo build --release --example delay_proxy)
    fi
    DELAY_US=$(awk -v d="$DELAY" 'BEGIN{ if (d ~ /ms$/) { sub(/ms$/, "", d); print d*1000 } else if (d ~ /us$/) { sub(/us$/, "", d); print d } else { sub(/s$/, "", d); print d*1000000 } }')
    for _ in 1 2 3; do
        real=$(free_port); bus=$(free_port); front=$(free_port)
        node "$real" "$bus" 127.0.0.1 --cluster-announce-ip 127.0.0.1 \
            --cluster-announce-port "$front" --cluster-announce-bus-port "$bus"
        "$PROXY_BIN" "127.0.0.1:$front" "127.0.0.1:$real" "$DELAY_US" &
        PIDS+=($!)
        ADDRS+=("127.0.0.1:$front")
    done
fi
for a in "${ADDRS[@]}"; do
    wait_ping "${a%:*}" "${a#*:}"
done
redis-cli --cluster create "${ADDRS[@]}" --cluster-replicas 0 --cluster-yes >"$RESULTS_DIR/create.log" 2>&1
FIRST=${ADDRS[0]}
for _ in $(seq 1 300); do
    ok=1
    for a in "${ADDRS[@]}"; do
        redis-cli -h "${a%:*}" -p "${a#*:}" CLUSTER INFO | grep -q 'cluster_state:ok' || ok=0
    done
    [ "$ok" = 1 ] && break
    sleep 0.1
done
echo "cluster: ${ADDRS[*]} ($MODE, +$DELAY per shard)"
echo "round trip to a shard (min/max/avg ms, samples): $(timeout 3 redis-cli -h "${FIRST%:*}" -p "${FIRST#*:}" --latency --raw -i 1 2>/dev/null | tail -1 || true)"

# ---- jcache in front of it ----
TP=$(free_port)
SEEDS=$(IFS=,; echo "${ADDRS[*]}")
"$JCACHE_BIN" --port "$TP" --bind 127.0.0.1 --log-level warn \
    --tier memory --tier "redis+cluster://$SEEDS" 2>"$RESULTS_DIR/jcache.log" &
PIDS+=($!)
wait_ping 127.0.0.1 "$TP"
for _ in $(seq 1 200); do
    redis-cli -p "$TP" INFO tiers | grep -q 'upstream_status:up' && break
    sleep 0.1
done

# The hot keyspace key:000000000000 .. key:000000009999 (redis-benchmark -r
# names), written through jcache (each SET to its shard), then read once.
pipe_to_jcache() { # COMMAND
    for i in $(seq 0 $((KEYSPACE - 1))); do
        if [ "$1" = SET ]; then
            printf 'SET key:%012d xxx\r\n' "$i"
        else
            printf 'GET key:%012d\r\n' "$i"
        fi
    done | redis-cli -p "$TP" --pipe >/dev/null
}
pipe_to_jcache SET
pipe_to_jcache GET

# bench LABEL PIPE ARGS... -> appends "label,pipe,rps,p50,p99"
bench() {
    local label=$1 pipe=$2
    shift 2
    local out
    out=$(timeout "$BTIMEOUT" redis-benchmark "$@" -t get -c 50 -n "$N" -P "$pipe" \
        -r "$KEYSPACE" --csv 2>/dev/null | grep '^"GET"' | tail -1)
    # "GET","rps","avg","min","p50","p95","p99","max"
    echo "$out" | tr -d '"' | awk -F, -v l="$label" -v p="$pipe" \
        '{printf "%s,%s,%s,%s,%s\n", l, p, $2, $5, $7}' >>"$RESULTS_DIR/results.csv"
}

: >"$RESULTS_DIR/results.csv"
for P in $PIPELINES; do
    bench direct "$P" --cluster -h "${FIRST%:*}" -p "${FIRST#*:}"
    pipe_to_jcache GET
    bench jcache "$P" -h 127.0.0.1 -p "$TP"
done

echo "hot GET, -c 50, -r $KEYSPACE; 3 shards, each +$DELAY ($MODE)"
printf '%-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
    "-P" "direct ops/s" p50 p99 "jcache ops/s" p50 p99 ratio
row() { # label pipe
    grep "^$1,$2," "$RESULTS_DIR/results.csv" | head -1 || echo "$1,$2,0,-,-"
}
for P in $PIPELINES; do
    IFS=, read -r _ _ drps dp50 dp99 <<<"$(row direct "$P")"
    IFS=, read -r _ _ trps tp50 tp99 <<<"$(row jcache "$P")"
    ratio=$(awk -v a="$trps" -v b="$drps" 'BEGIN{ if (b>0) printf "%.1fx", a/b; else print "-" }')
    printf '%-4s | %12s %8s %8s | %12s %8s %8s | %7s\n' \
        "$P" "$drps" "$dp50" "$dp99" "$trps" "$tp50" "$tp99" "$ratio"
done
echo
redis-cli -p "$TP" INFO tiers | tr -d '\r' | grep -E 'tier0_(hits|misses|backfills|invalidations)|tier1_(latency_avg_us|errors|forwarded|primaries)'
echo "raw results: $RESULTS_DIR/results.csv"
