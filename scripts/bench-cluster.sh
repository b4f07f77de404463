#!/usr/bin/env bash
# bench-cluster.sh - cluster-mode benchmark on loopback (etcd + 3 jcache nodes).
#
# Measures, in one run:
#  1. redis-benchmark SET (-c 50, -P 1 and -P 16) at a standalone node, at the
#     cluster master and at a follower (writes forwarded), interleaved per
#     pipeline depth, BENCH_ROUNDS rounds (median); prints ops/s and the ratio
#     to standalone, and the server CPU time per request (from /proc, less
#     sensitive to other load on the machine). All processes share this machine's cores: the followers'
#     apply work competes with the master and redis-benchmark for CPU.
#     Then the same at the master on a core of its own (pinned to CPU 0,
#     everything else on the other cores, the followers at SCHED_IDLE so that
#     their apply work does not slow redis-benchmark down): a stand-in for a
#     host per node. Compared with a standalone node with the cluster nodes'
#     --threads, pinned the same way; ops/s and CPU per request of both.
#  2. Replication lag p50/p99 (master commit -> follower apply), read from the
#     followers' INFO replication (repl_lag_p50_us / repl_lag_p99_us: the last
#     100,000 entries applied) right after the master -P 1 run.
#  3. Failover time over FAILOVER_TRIALS kill -9 trials: from the kill until a
#     surviving node reports role:master (polled every 20 ms); the killed node
#     is restarted as a follower between trials.
#  4. Full-sync time of a new node joining a master holding FULLSYNC_KEYS keys
#     (from the follower's INFO last_full_sync_ms, and wall time from the new
#     process's start until its link is up).
#
# Usage: scripts/bench-cluster.sh
# Environment:
#   JCACHE_BIN        binary (default <repo>/target/release/jcache; built if missing)
#   BENCH_N           requests per redis-benchmark run (default 200000)
#   BENCH_ROUNDS      rounds per configuration, median reported (default 3)
#   LEASE_TTL         --cluster-lease-ttl (default 3s)
#   FAILOVER_TRIALS   default 5
#   FULLSYNC_KEYS     default 1000000
#   NODE_THREADS      --threads of each cluster node (default: cores / 3,
#                     at least 1). Three nodes share this machine's cores;
#                     with a full set of worker threads each they
#                     oversubscribe the CPU (on 2 cores: 6 workers plus
#                     redis-benchmark and etcd), which shows up as scheduling
#                     delay in the lag tail. The standalone node keeps the
#                     default (one worker per CPU but one) for the comparison.
# Everything listens on 127.0.0.1; every process started here is stopped by
# PID on exit. Each wait is bounded.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${JCACHE_BIN:-$ROOT/target/release/jcache}"
N="${BENCH_N:-200000}"
ROUNDS="${BENCH_ROUNDS:-3}"
TTL="${LEASE_TTL:-3s}"
TRIALS="${FAILOVER_TRIALS:-5}"
KEYS="${FULLSYNC_KEYS:-1000000}"
NODE_THREADS="${NODE_THREADS:-$(( $(nproc) / 3 > 0 ? $(nproc) / 3 : 1 ))}"
if [[ ! -x "$BIN" ]]; then
  (cd "$ROOT" && cargo build --release)
fi
command -v etcd >/dev/null || { echo "etcd not found (apt-get install etcd-server)"; exit 1; }
command -v redis-benchmark >/dev/null || { echo "redis-benchmark not found"; exit 1; }

WORK="$(mktemp -d /tmp/jcache-bench-cluster.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_until() { # seconds, command...
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= end )); then return 1; fi
    sleep 0.05
  done
}

now_ms() { date +%s%3N; }

ECP=$(free_port); EPP=$(free_port)
etcd --name b --data-dir "$WORK/etcd" \
  --listen-client-urls "http://127.0.0.1:$ECP" --advertise-client-urls "http://127.0.0.1:$ECP" \
  --listen-peer-urls "http://127.0.0.1:$EPP" --initial-advertise-peer-urls "http://127.0.0.1:$EPP" \
  --initial-cluster "b=http://127.0.0.1:$EPP" --log-level error >"$WORK/etcd.log" 2>&1 &
PIDS+=($!)
wait_until 20 bash -c "exec 3<>/dev/tcp/127.0.0.1/$ECP"
ETCD="http://127.0.0.1:$ECP"

declare -A PORT PID
start_node() { # name
  local name=$1 p g
  p=$(free_port); g=$(free_port)
  "$BIN" --port "$p" --bind 127.0.0.1 --log-level warn --cluster-etcd "$ETCD" \
    --cluster-name bench --node-id "$name" --cluster-port "$g" --cluster-lease-ttl "$TTL" \
    --cluster-secret bench --threads "$NODE_THREADS" --enable-debug-command local \
    >>"$WORK/$name.log" 2>&1 &
  PID[$name]=$!; PORT[$name]=$p; PIDS+=($!)
  wait_until 20 redis-cli -p "$p" ping
}
role() { redis-cli -p "$1" role 2>/dev/null | head -1; }
info_field() { redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"; }
master_name() {
  for n in "${!PORT[@]}"; do
    [[ -n "${PID[$n]:-}" ]] || continue
    [[ "$(role "${PORT[$n]}")" == master ]] && { echo "$n"; return 0; }
  done
  return 1
}
all_linked() {
  local m; m=$(master_name) || return 1
  for n in "${!PORT[@]}"; do
    [[ -n "${PID[$n]:-}" && "$n" != "$m" ]] || continue
    [[ "$(info_field "${PORT[$n]}" master_link_status)" == up ]] || return 1
    [[ "$(info_field "${PORT[$n]}" master_node_id)" == "$m" ]] || return 1
  done
}

SP=$(free_port)
"$BIN" --port "$SP" --bind 127.0.0.1 --log-level warn >"$WORK/standalone.log" 2>&1 &
SPID=$!
PIDS+=($!)
wait_until 20 redis-cli -p "$SP" ping
for n in a b c; do start_node $n; done
wait_until 30 all_linked || { echo "cluster did not form"; exit 1; }
M=$(master_name)
F=""
for n in a b c; do [[ $n != "$M" ]] && { F=$n; break; }; done
echo "# jcache cluster benchmark ($(nproc) cores, BENCH_N=$N, lease-ttl $TTL, cluster nodes --threads $NODE_THREADS, standalone default threads, binary $BIN)"
echo "master=$M follower=$F"

bench() { # port pipeline
  redis-benchmark -p "$1" -t set -n "$N" -c 50 -P "$2" -r 100000 --csv -q 2>/dev/null \
    | awk -F, '/"SET"/ {gsub(/"/,"",$2); print $2}'
}
echo
echo "## SET throughput (ops/s), -c 50"
printf "%-4s %12s %12s %12s %10s %10s\n" "-P" standalone master follower m/sa f/sa
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)
# Server CPU per request (µs), less sensitive to other load on the machine than ops/s.
cpu_us_per_op() { # pid ticks_before ticks_after
  awk -v a="$2" -v b="$3" -v t="$TCK" -v n="$N" 'BEGIN{printf "%.2f", (b-a)/t*1e6/n}'
}
median() { printf "%s\n" "$@" | sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
for P in 1 16; do
  SA=(); MA=(); FO=(); SCPU=(); MCPU=(); FCPU=()
  for r in $(seq 1 "$ROUNDS"); do
    c0=$(cpu_ticks "$SPID")
    SA+=("$(bench "$SP" "$P")")
    SCPU+=("$(cpu_us_per_op "$SPID" "$c0" "$(cpu_ticks "$SPID")")")
    c0=$(cpu_ticks "${PID[$M]}"); f0=$(cpu_ticks "${PID[$F]}")
    MA+=("$(bench "${PORT[$M]}" "$P")")
    MCPU+=("$(cpu_us_per_op "${PID[$M]}" "$c0" "$(cpu_ticks "${PID[$M]}")")")
    FCPU+=("$(cpu_us_per_op "${PID[$F]}" "$f0" "$(cpu_ticks "${PID[$F]}")")")
    if [[ $P == 1 && $r == 1 ]]; then
      LAG50=(); LAG99=()
      for n in a b c; do
        [[ $n == "$M" ]] && continue
        LAG50+=("$(info_field "${PORT[$n]}" repl_lag_p50_us)")
        LAG99+=("$(info_field "${PORT[$n]}" repl_lag_p99_us)")
      done
    fi
    FO+=("$(bench "${PORT[$F]}" "$P")")
  done
  sa=$(median "${SA[@]}"); ma=$(median "${MA[@]}"); fo=$(median "${FO[@]}")
  printf "%-4s %12s %12s %12s %10s %10s\n" "$P" "$sa" "$ma" "$fo" \
    "$(awk -v a="$ma" -v b="$sa" 'BEGIN{printf "%.2f", a/b}')" \
    "$(awk -v a="$fo" -v b="$sa" 'BEGIN{printf "%.2f", a/b}')"
  echo "     rounds: standalone ${SA[*]} | master ${MA[*]} | follower ${FO[*]}"
  echo "     server CPU µs/op: standalone $(median "${SCPU[@]}") | master $(median "${MCPU[@]}") | each follower applying the master's writes $(median "${FCPU[@]}")"
done

# The same SET runs at the master pinned to CPU 0, a core of its own, while
# the followers, etcd and redis-benchmark share the other cores, the
# followers at SCHED_IDLE: they run when redis-benchmark does not need the
# CPU, fall behind during a run and catch up after it (time reported). The
# master still logs, encodes and streams every write. This stands in for a
# host per node, with two differences: on this machine, the master's sends
# wake the followers with interrupts across cores (a cost a real network
# does not put on the sender), and a follower that is behind gets larger
# batches (cheaper to send). Compared with a standalone node with the
# cluster nodes' --threads, pinned to CPU 0 the same way.
SP1=$(free_port)
"$BIN" --port "$SP1" --bind 127.0.0.1 --log-level warn --threads "$NODE_THREADS" \
  >"$WORK/standalone1.log" 2>&1 &
SP1PID=$!
PIDS+=($!)
wait_until 20 redis-cli -p "$SP1" ping
caught_up() {
  local mo; mo=$(info_field "${PORT[$M]}" master_repl_offset)
  for n in a b c; do
    [[ $n == "$M" ]] && continue
    [[ "$(info_field "${PORT[$n]}" slave_repl_offset)" == "$mo" ]] || return 1
  done
}
# every thread of a process (threads started later inherit the affinity)
each_thread() { # pid command...
  local pid=$1 t; shift
  for t in /proc/"$pid"/task/*; do "$@" "${t##*/}" >/dev/null 2>&1 || true; done
}
pin_layout() { # on|off
  local all="0-$(( $(nproc) - 1 ))" rest="1-$(( $(nproc) - 1 ))" n
  if [[ $1 == on ]]; then
    each_thread "$SP1PID" taskset -p -c 0
    each_thread "${PID[$M]}" taskset -p -c 0
    each_thread "${PIDS[0]}" taskset -p -c "$rest"
    taskset -p -c "$rest" $$ >/dev/null # this script, hence redis-benchmark
    for n in a b c; do
      [[ $n == "$M" ]] && continue
      each_thread "${PID[$n]}" taskset -p -c "$rest"
      each_thread "${PID[$n]}" chrt --idle -p 0
    done
  else
    taskset -p -c "$all" $$ >/dev/null
    for p in "$SP1PID" "${PIDS[0]}" "${PID[a]}" "${PID[b]}" "${PID[c]}"; do
      each_thread "$p" taskset -p -c "$all"
      each_thread "$p" chrt --other -p 0
    done
  fi
}
if (( $(nproc) >= 2 )); then
  echo
  echo "## SET at the master on a core of its own (stand-in for a host per node), -c 50"
  printf "%-4s %12s %12s %10s %14s %s\n" "-P" "standalone-t$NODE_THREADS" master m/sa "CPU µs/op s|m" "followers caught up after (ms)"
  pin_layout on
  for P in 1 16; do
    SA=(); MA=(); CU=(); SCPU=(); MCPU=()
    for r in $(seq 1 "$ROUNDS"); do
      c0=$(cpu_ticks "$SP1PID")
      SA+=("$(bench "$SP1" "$P")")
      SCPU+=("$(cpu_us_per_op "$SP1PID" "$c0" "$(cpu_ticks "$SP1PID")")")
      c0=$(cpu_ticks "${PID[$M]}")
      MA+=("$(bench "${PORT[$M]}" "$P")")
      MCPU+=("$(cpu_us_per_op "${PID[$M]}" "$c0" "$(cpu_ticks "${PID[$M]}")")")
      t0=$(now_ms)
      wait_until 60 caught_up || { echo "followers did not catch up within 60 s"; exit 1; }
      CU+=($(( $(now_ms) - t0 )))
    done
    sa=$(median "${SA[@]}"); ma=$(median "${MA[@]}")
    printf "%-4s %12s %12s %10s %14s %s\n" "$P" "$sa" "$ma" \
      "$(awk -v a="$ma" -v b="$sa" 'BEGIN{printf "%.2f", a/b}')" \
      "$(median "${SCPU[@]}")|$(median "${MCPU[@]}")" "${CU[*]}"
    echo "     rounds: standalone ${SA[*]} | master ${MA[*]}"
  done
  pin_layout off
fi

echo
echo "## Replication lag at the followers during the master -P 1 run (µs)"
echo "p50: ${LAG50[*]}   p99: ${LAG99[*]}"

echo
echo "## Failover (kill -9 the master; time until a survivor reports role:master)"
TIMES=()
for t in $(seq 1 "$TRIALS"); do
  wait_until 30 all_linked || { echo "cluster not stable before trial $t"; exit 1; }
  M=$(master_name)
  # keep writing through a follower while the master dies
  for n in a b c; do [[ $n != "$M" ]] && { F=$n; break; }; done
  redis-benchmark -p "${PORT[$F]}" -t set -n 1000000 -c 4 -r 1000 -q >/dev/null 2>&1 &
  LOADPID=$!; PIDS+=("$LOADPID")
  sleep 0.5
  t0=$(now_ms)
  kill -9 "${PID[$M]}"; PID[$M]=""
  new=""
  end=$(( t0 + 20000 ))
  while (( $(now_ms) < end )); do
    if new=$(master_name); then break; fi
    sleep 0.02
  done
  t1=$(now_ms)
  kill "$LOADPID" 2>/dev/null || true
  [[ -n "$new" ]] || { echo "trial $t: no new master within 20 s"; exit 1; }
  TIMES+=($(( t1 - t0 )))
  echo "trial $t: $M killed -> $new master in $(( t1 - t0 )) ms"
  start_node "$M"
done
printf "failover ms: %s  (max %s; bound lease-ttl + 1 s)\n" "${TIMES[*]}" \
  "$(printf "%s\n" "${TIMES[@]}" | sort -n | tail -1)"

echo
echo "## Full sync of $KEYS keys"
wait_until 30 all_linked
M=$(master_name)
python3 - "$KEYS" >"$WORK/load.resp" <<'EOF'
import sys
n = int(sys.argv[1])
out = sys.stdout
for i in range(n):
    k = f"key:{i:012d}"
    v = f"value-{i:058d}"
    out.write(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n${len(v)}\r\n{v}\r\n")
EOF
redis-cli -p "${PORT[$M]}" --pipe <"$WORK/load.resp" | tail -1
echo "master dbsize: $(redis-cli -p "${PORT[$M]}" dbsize)"
wait_until 60 all_linked
t0=$(now_ms)
start_node d
synced() { [[ "$(info_field "${PORT[d]}" full_syncs_received)" == 1 && "$(info_field "${PORT[d]}" master_link_status)" == up ]]; }
wait_until 120 synced || { echo "new node did not full-sync within 120 s"; exit 1; }
t1=$(now_ms)
echo "new node: dbsize $(redis-cli -p "${PORT[d]}" dbsize), full sync $(info_field "${PORT[d]}" last_full_sync_ms) ms (follower's measure), $(( t1 - t0 )) ms from process start to link up"
dm=$(redis-cli -p "${PORT[$M]}" debug digest); dd=$(redis-cli -p "${PORT[d]}" debug digest)
[[ "$dm" == "$dd" ]] && echo "digests equal" || echo "DIGESTS DIFFER: $dm $dd"
