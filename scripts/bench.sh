#!/usr/bin/env bash
# bench.sh - compare jcache with redis-server on this machine (loopback only).
#
# 1. Throughput: redis-benchmark -t TEST -n N -c C -P P --csv for every test
#    and pipeline depth, interleaved (redis, then jcache, for each test;
#    BENCH_ROUNDS times, median reported), and
#    prints: test, pipeline, redis ops/s, jcache ops/s, ratio jcache/redis,
#    and each server's CPU time (user + system) per request in µs.
# 2. Memory: FLUSHALL, then loads BENCH_KEYS keys (16-byte key, 64-byte value)
#    into each server via `redis-cli --pipe` and prints VmRSS (from
#    /proc/PID/status) and INFO memory used_memory of both, and the ratios;
#    then the same for one stream of BENCH_STREAM_ENTRIES entries
#    (`XADD s * f v`).
#
# Usage: scripts/bench.sh
#
# Environment:
#   JCACHE_BIN        candidate binary (default <repo>/target/release/jcache;
#                     built with `cargo build --release` if that default is
#                     missing). Started as `jcache --port P --bind 127.0.0.1
#                     --log-level warn`, or with redis-server's arguments if
#                     its name contains "redis-server" (to test this script
#                     with redis on both sides: JCACHE_BIN=/usr/bin/redis-server).
#   JCACHE_ARGS       extra arguments for the candidate (word-split).
#   REDIS_BIN         reference server (default: redis-server on PATH), started
#                     as `redis-server --port P --bind 127.0.0.1 --save ""
#                     --appendonly no`.
#   REDIS_ARGS        extra arguments for redis-server (word-split).
#   BENCH_TESTS       redis-benchmark tests (default
#                     set,get,incr,lpush,lpop,hset,zadd,evalsha,xadd,xrange;
#                     evalsha: EVALSHA of a rate limiter script, INCR + EXPIRE on the first hit;
#                     xadd: `XADD s * f v`; xrange: `XRANGE s - + COUNT 10`, on a
#                     stream filled first to 10000 entries if it has fewer)
#   BENCH_N           requests per benchmark (default 200000)
#   BENCH_CLIENTS     connections (default 50)
#   BENCH_PIPELINES   pipeline depths (default "1 16")
#   BENCH_ROUNDS      runs per test, server and pipeline; the median is
#                     reported (default 3; odd rounds run redis first, even
#                     rounds jcache first)
#   BENCH_TIMEOUT     seconds allowed per redis-benchmark run (default 180)
#   BENCH_KEYS        keys for the memory test (default 1000000; 0 skips it)
#   BENCH_STREAM_ENTRIES  entries for the stream memory test (default 1000000;
#                     0 skips it)
#   BENCH_PIN=1       pin both servers to CPU 0 and redis-benchmark/redis-cli
#                     to the other CPUs with taskset (less noise, but a
#                     multi-threaded jcache then gets one core, like redis)
#   BENCH_RESULTS_DIR where bench.csv / memory.txt / server logs go
#                     (default <repo>/target/bench)
#
# Exit status: non-zero if a server fails to start or dies, or a benchmark or
# the load fails. It does not judge the numbers.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

DEFAULT_JCACHE=$REPO_ROOT/target/release/jcache
JCACHE_BIN=${JCACHE_BIN:-$DEFAULT_JCACHE}
JCACHE_ARGS=${JCACHE_ARGS:-}
REDIS_BIN=${REDIS_BIN:-$(command -v redis-server || echo /usr/bin/redis-server)}
REDIS_ARGS=${REDIS_ARGS:-}
TESTS=${BENCH_TESTS:-set,get,incr,lpush,lpop,hset,zadd,evalsha,xadd,xrange}
N=${BENCH_N:-200000}
CLIENTS=${BENCH_CLIENTS:-50}
PIPELINES=${BENCH_PIPELINES:-1 16}
BTIMEOUT=${BENCH_TIMEOUT:-180}
ROUNDS=${BENCH_ROUNDS:-3}
KEYS=${BENCH_KEYS:-1000000}
STREAM_ENTRIES=${BENCH_STREAM_ENTRIES:-1000000}
RESULTS_DIR=${BENCH_RESULTS_DIR:-$REPO_ROOT/target/bench}
PIN=${BENCH_PIN:-0}

log() { printf '[bench] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

for tool in redis-benchmark redis-cli awk timeout; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (apt-get install redis-tools)"
done
[ -x "$REDIS_BIN" ] || die "redis-server '$REDIS_BIN' not found (apt-get install redis-server)"
if [ ! -x "$JCACHE_BIN" ]; then
    if [ "$JCACHE_BIN" = "$DEFAULT_JCACHE" ]; then
        log "building jcache (cargo build --release)"
        (cd "$REPO_ROOT" && cargo build --release) || die "cargo build --release failed"
    fi
    [ -x "$JCACHE_BIN" ] || die "jcache binary '$JCACHE_BIN' not found"
fi

mkdir -p "$RESULTS_DIR"

PIN_SERVER=() PIN_CLIENT=()
if [ "$PIN" = 1 ]; then
    ncpu=$(nproc)
    if command -v taskset >/dev/null 2>&1 && [ "$ncpu" -ge 2 ]; then
        PIN_SERVER=(taskset -c 0)
        PIN_CLIENT=(taskset -c "1-$((ncpu - 1))")
    else
        log "BENCH_PIN=1 ignored (needs taskset and 2+ CPUs)"
    fi
fi

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p i
    for i in $(seq 1 200); do
        p=$((40000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
        : "$i"
    done
    die "no free port found"
}

ping_server() (
    port=$1 line=""
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 line <&3 || true
    [ "${line%$'\r'}" = "+PONG" ]
)

declare -A PID=() PORT=() TMPD=()
# start_server NAME BIN EXTRA_ARGS: start on a free port; sets PID[NAME], PORT[NAME].
start_server() {
    local name=$1 bin=$2 extra_s=$3 port i
    local -a extra=()
    [ -n "$extra_s" ] && read -r -a extra <<< "$extra_s"
    port=$(free_port)
    TMPD[$name]=$(mktemp -d "${TMPDIR:-/tmp}/jcache-bench-$name.XXXXXX")
    case $(basename "$bin") in
        *redis-server*)
            "${PIN_SERVER[@]}" "$bin" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
                --daemonize no --dir "${TMPD[$name]}" "${extra[@]}" \
                > "$RESULTS_DIR/$name.server.log" 2>&1 & ;;
        *)
            (cd "${TMPD[$name]}" && exec "${PIN_SERVER[@]}" "$bin" --port "$port" --bind 127.0.0.1 \
                --log-level warn "${extra[@]}") > "$RESULTS_DIR/$name.server.log" 2>&1 & ;;
    esac
    PID[$name]=$!
    PORT[$name]=$port
    for i in $(seq 1 100); do
        kill -0 "${PID[$name]}" 2>/dev/null || die "$name ($bin) exited at startup, see $RESULTS_DIR/$name.server.log"
        if ping_server "$port" 2>/dev/null; then
            log "$name: $bin pid ${PID[$name]} port $port"
            return 0
        fi
        sleep 0.1
        : "$i"
    done
    die "$name did not answer PING within 10s"
}

stop_server() {
    local name=$1 pid=${PID[$1]:-} i
    [ -n "$pid" ] || return 0
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
            : "$i"
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null || true
    PID[$name]=""
    [ -n "${TMPD[$name]:-}" ] && rm -rf "${TMPD[$name]}"
    return 0
}

cleanup() {
    stop_server redis
    stop_server jcache
}
trap cleanup EXIT
trap 'exit 130' INT TERM

alive() { kill -0 "${PID[$1]}" 2>/dev/null || die "$1 (pid ${PID[$1]}) died, see $RESULTS_DIR/$1.server.log"; }

cli() { local name=$1; shift; timeout 30 redis-cli -h 127.0.0.1 -p "${PORT[$name]}" "$@"; }

start_server redis "$REDIS_BIN" "$REDIS_ARGS"
start_server jcache "$JCACHE_BIN" "$JCACHE_ARGS"

# ------------------------------------------------------------ throughput
# bench NAME TEST PIPELINE -> prints ops/s
# The `evalsha` test: a rate limiter, as applications run it (INCR the
# caller's counter, start its window on the first hit), called by EVALSHA
# on 100,000 random keys.
RATE_LIMIT='local c = redis.call("INCR", KEYS[1]) if c == 1 then redis.call("EXPIRE", KEYS[1], ARGV[1]) end return c'

# CPU time (user + system) a process used so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# fill_stream NAME N: at least N entries in stream `s` (XADD s * f v).
fill_stream() {
    local name=$1 n=$2 len out
    len=$(cli "$name" XLEN s | tr -d '\r')
    [ "${len:-0}" -ge "$n" ] && return 0
    out=$(awk -v n="$n" 'BEGIN { for (i = 0; i < n; i++) printf "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n" }' \
        | timeout 120 redis-cli -h 127.0.0.1 -p "${PORT[$name]}" --pipe 2>&1) \
        || die "filling stream s on $name failed: $out"
}

# One run: prints "ops/s cpu-µs-per-request" of the server.
bench() {
    local name=$1 test=$2 pipe=$3 out rps sha c0 c1
    local -a what=(-t "$test")
    if [ "$test" = evalsha ]; then
        sha=$(cli "$name" SCRIPT LOAD "$RATE_LIMIT" | tr -d '\r')
        [ ${#sha} = 40 ] || die "SCRIPT LOAD on $name answered '$sha'"
        what=(-r 100000 EVALSHA "$sha" 1 "rl:__rand_int__" 60)
    elif [ "$test" = xadd ]; then
        what=(XADD s '*' f v)
    elif [ "$test" = xrange ]; then
        fill_stream "$name" 10000
        what=(XRANGE s - + COUNT 10)
    fi
    c0=$(cpu_ticks "${PID[$name]}")
    out=$(timeout "$BTIMEOUT" "${PIN_CLIENT[@]}" redis-benchmark -h 127.0.0.1 -p "${PORT[$name]}" \
        -n "$N" -c "$CLIENTS" -P "$pipe" --csv "${what[@]}" 2>"$RESULTS_DIR/benchmark.stderr") \
        || die "redis-benchmark $test -P $pipe against $name failed or timed out (${BTIMEOUT}s)"
    c1=$(cpu_ticks "${PID[$name]}")
    # "test","rps",...  header, then "SET","123456.79",...
    rps=$(printf '%s\n' "$out" | awk -F'"' 'NR > 1 && $2 != "" { print $4; exit }')
    [ -n "$rps" ] || die "no result parsed from redis-benchmark output: $out"
    alive "$name"
    echo "$rps $(awk -v d=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v n="$N" 'BEGIN { printf "%.2f", d / hz * 1e6 / n }')"
}

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

IFS=, read -r -a TEST_LIST <<< "$TESTS"
read -r -a PIPE_LIST <<< "$PIPELINES"
CSV=$RESULTS_DIR/bench.csv
echo "test,pipeline,redis_ops,jcache_ops,ratio,redis_cpu_us,jcache_cpu_us" > "$CSV"
log "redis-benchmark -n $N -c $CLIENTS, tests: $TESTS, pipelines: $PIPELINES, rounds: $ROUNDS (median)"
ROWS=()
for pipe in "${PIPE_LIST[@]}"; do
    for test in "${TEST_LIST[@]}"; do
        rs=() js=() rc=() jc=()
        for ((round = 1; round <= ROUNDS; round++)); do
            # redis first on odd rounds, jcache first on even ones
            if ((round % 2)); then
                read -r a b <<< "$(bench redis "$test" "$pipe")"; rs+=("$a"); rc+=("$b")
                read -r a b <<< "$(bench jcache "$test" "$pipe")"; js+=("$a"); jc+=("$b")
            else
                read -r a b <<< "$(bench jcache "$test" "$pipe")"; js+=("$a"); jc+=("$b")
                read -r a b <<< "$(bench redis "$test" "$pipe")"; rs+=("$a"); rc+=("$b")
            fi
        done
        r=$(median "${rs[@]}")
        j=$(median "${js[@]}")
        rcpu=$(median "${rc[@]}")
        jcpu=$(median "${jc[@]}")
        [ "$ROUNDS" -gt 1 ] && log "$test -P $pipe rounds: redis ${rs[*]} / jcache ${js[*]}"
        ratio=$(awk -v a="$j" -v b="$r" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        log "$test -P $pipe: redis $r, jcache $j, ratio $ratio; CPU µs/request redis $rcpu, jcache $jcpu"
        echo "$test,$pipe,$r,$j,$ratio,$rcpu,$jcpu" >> "$CSV"
        ROWS+=("$(printf '%-8s %8s %14.0f %14.0f %8s %10s %10s' "$test" "$pipe" "$r" "$j" "$ratio" "$rcpu" "$jcpu")")
    done
done

echo
echo "Throughput (redis-benchmark -n $N -c $CLIENTS; ops/s, median of $ROUNDS)"
printf '%-8s %8s %14s %14s %8s %10s %10s\n' test pipeline redis jcache ratio "redis µs" "jcache µs"
printf '%-8s %8s %14s %14s %8s %10s %10s\n' -------- -------- -------------- -------------- -------- ---------- ----------
printf '%s\n' "${ROWS[@]}"
awk -F, 'NR > 1 { n++; s += log($5) } END { if (n) printf "geometric mean ratio jcache/redis: %.2f\n", exp(s / n) }' "$CSV"

# ---------------------------------------------------------------- memory
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
used_memory() {
    cli "$1" INFO memory 2>/dev/null | tr -d '\r' | awk -F: '$1 == "used_memory" { print $2 }' || true
}
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
# memory_rows R0 J0 R1 J1 RU JU: the header and the rows both memory
# tables print: RSS in KiB before (R0 redis, J0 jcache) and after (R1, J1)
# the load, and INFO used_memory (RU, JU; may be empty).
memory_rows() {
    local r0=$1 j0=$2 r1=$3 j1=$4 ru=$5 ju=$6
    printf '%-26s %14s %14s %8s\n' "" redis jcache ratio
    printf '%-26s %14s %14s %8s\n' "RSS before load (MiB)" "$(mb "$r0")" "$(mb "$j0")" "$(ratio "$j0" "$r0")"
    printf '%-26s %14s %14s %8s\n' "RSS after load (MiB)" "$(mb "$r1")" "$(mb "$j1")" "$(ratio "$j1" "$r1")"
    printf '%-26s %14s %14s %8s\n' "RSS delta (MiB)" "$(mb $((r1 - r0)))" "$(mb $((j1 - j0)))" "$(ratio $((j1 - j0)) $((r1 - r0)))"
    printf '%-26s %14s %14s %8s\n' "INFO used_memory (bytes)" "${ru:-n/a}" "${ju:-n/a}" "$(ratio "$ju" "$ru")"
}
if [ "$KEYS" -gt 0 ]; then
    # RESP for KEYS x SET key:%012d (16 bytes) <64-byte value>
    gen_load() {
        awk -v n="$KEYS" 'BEGIN {
            for (i = 0; i < n; i++) {
                printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$64\r\nv%063d\r\n", i, i
            }
        }'
    }
    declare -A RSS0=() RSS1=() UM=()
    for name in redis jcache; do
        cli "$name" FLUSHALL > /dev/null || die "FLUSHALL on $name failed"
        sleep 0.5
        RSS0[$name]=$(rss_kb "${PID[$name]}")
        log "$name: loading $KEYS keys"
        t0=$(date +%s.%N)
        out=$(gen_load | timeout 600 "${PIN_CLIENT[@]}" redis-cli -h 127.0.0.1 -p "${PORT[$name]}" --pipe 2>&1) \
            || die "redis-cli --pipe into $name failed: $out"
        t1=$(date +%s.%N)
        printf '%s\n' "$out" > "$RESULTS_DIR/$name.load.txt"
        grep -q 'errors: 0,' <<< "$out" || die "load into $name reported errors: $out"
        alive "$name"
        dbsize=$(cli "$name" DBSIZE | tr -d '\r')
        [ "$dbsize" = "$KEYS" ] || log "WARNING: $name DBSIZE is $dbsize, expected $KEYS"
        # Both allocators return freed pages in the background; measure settled RSS.
        sleep "${BENCH_SETTLE:-5}"
        RSS1[$name]=$(rss_kb "${PID[$name]}")
        UM[$name]=$(used_memory "$name")
        log "$name: loaded in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s, DBSIZE $dbsize"
    done
    {
        echo
        echo "Memory after loading $KEYS keys (16-byte key, 64-byte value)"
        memory_rows "${RSS0[redis]}" "${RSS0[jcache]}" "${RSS1[redis]}" "${RSS1[jcache]}" "${UM[redis]:-}" "${UM[jcache]:-}"
        printf '%-26s %14s %14s\n' "RSS bytes per key" \
            "$(awk -v d=$((RSS1[redis] - RSS0[redis])) -v n="$KEYS" 'BEGIN { printf "%.0f", d * 1024 / n }')" \
            "$(awk -v d=$((RSS1[jcache] - RSS0[jcache])) -v n="$KEYS" 'BEGIN { printf "%.0f", d * 1024 / n }')"
    } | tee "$RESULTS_DIR/memory.txt"
fi

# One stream of STREAM_ENTRIES entries (XADD s * f v), loaded the same way.
if [ "$STREAM_ENTRIES" -gt 0 ]; then
    declare -A SRSS0=() SRSS1=() SUM=()
    for name in redis jcache; do
        cli "$name" FLUSHALL > /dev/null || die "FLUSHALL on $name failed"
        sleep "${BENCH_SETTLE:-5}"
        SRSS0[$name]=$(rss_kb "${PID[$name]}")
        log "$name: loading a stream of $STREAM_ENTRIES entries"
        out=$(awk -v n="$STREAM_ENTRIES" 'BEGIN { for (i = 0; i < n; i++) printf "*5\r\n$4\r\nXADD\r\n$1\r\ns\r\n$1\r\n*\r\n$1\r\nf\r\n$1\r\nv\r\n" }' \
            | timeout 600 "${PIN_CLIENT[@]}" redis-cli -h 127.0.0.1 -p "${PORT[$name]}" --pipe 2>&1) \
            || die "redis-cli --pipe into $name failed: $out"
        grep -q 'errors: 0,' <<< "$out" || die "stream load into $name reported errors: $out"
        alive "$name"
        xlen=$(cli "$name" XLEN s | tr -d '\r')
        [ "$xlen" = "$STREAM_ENTRIES" ] || log "WARNING: $name XLEN is $xlen, expected $STREAM_ENTRIES"
        sleep "${BENCH_SETTLE:-5}"
        SRSS1[$name]=$(rss_kb "${PID[$name]}")
        SUM[$name]=$(used_memory "$name")
    done
    {
        echo
        echo "Memory after loading one stream of $STREAM_ENTRIES entries (XADD s * f v)"
        memory_rows "${SRSS0[redis]}" "${SRSS0[jcache]}" "${SRSS1[redis]}" "${SRSS1[jcache]}" "${SUM[redis]:-}" "${SUM[jcache]:-}"
    } | tee -a "$RESULTS_DIR/memory.txt"
fi

echo
echo "Results in $RESULTS_DIR"
