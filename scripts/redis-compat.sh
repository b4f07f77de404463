#!/usr/bin/env bash
# redis-compat.sh - run Redis's own Tcl test suite (external-server mode)
# against a candidate server (jcache by default, or redis-server for
# reference) and gate the results against a checked-in baseline.
#
# Usage:
#   scripts/redis-compat.sh [options] [UNIT...]
#
#   UNIT...              extra units appended to the default list, e.g.
#                        unit/type/set unit/multi unit/pubsub
#   --only               run only the UNITs given on the command line
#   --baseline FILE      baseline file (default scripts/redis-compat.baseline)
#   --no-baseline        report only; do not gate on a baseline (a crash or
#                        an unexpected timeout still fails the run)
#   --write-baseline     after the run, rewrite the baseline lines of the units
#                        that ran with this run's numbers (for tuning)
#   -h, --help           show this header
#
# Default units, in order:
#   unit/type/string unit/type/incr unit/type/hash unit/expire unit/keyspace
#   unit/type/zset unit/protocol unit/type/list unit/type/set unit/multi unit/pubsub
#   unit/scan unit/bitops unit/quit unit/info-command unit/bitfield
#   unit/type/list-2 unit/type/list-3 unit/dump unit/sort unit/scripting
#   unit/functions
#
# Environment:
#   SERVER_BIN           server binary (default: <repo>/target/release/jcache).
#                        If its name contains "redis-server" it is started as
#                        `redis-server --port P --bind 127.0.0.1 --save ""
#                        --appendonly no --dir TMP`, otherwise as
#                        `jcache --port P --bind 127.0.0.1 --log-level warn
#                        --threads N --enable-debug-command yes`
#                        (N = COMPAT_JCACHE_THREADS; the suite calls DEBUG).
#   COMPAT_JCACHE_THREADS  jcache's --threads for the suite (default 1). A few
#                        tests send a command on one connection and, without
#                        reading its reply, another on a second connection,
#                        and assume the server runs them in arrival order.
#                        A single-threaded server (Redis) does; with several
#                        workers, two connections run in parallel and either
#                        may go first. One worker serves sockets in the order
#                        epoll reports them, as Redis does. 0 = jcache's
#                        default (one per CPU but one, at least one).
#   SERVER_KIND          force "redis" or "jcache" argument style.
#   SERVER_ARGS          extra arguments for the server (word-split).
#   COMPAT_UNITS         replace the default unit list (space separated).
#   COMPAT_EXTRA_UNITS   units appended to the list (space separated).
#   COMPAT_UNIT_TIMEOUT  seconds per unit before runtest is killed (300).
#   COMPAT_TAGS          --tags value (default below).
#   COMPAT_SINGLEDB=1    run the suite with --singledb (database 0 only);
#                        by default it selects database 9 and tests MOVE,
#                        SWAPDB and SELECT as against any Redis.
#   COMPAT_RUNTEST_ARGS  extra arguments for ./runtest (word-split).
#   COMPAT_RESULTS_DIR   where logs go (default <repo>/target/redis-compat);
#                        one <unit>.log (runtest output) and <unit>.server.log
#                        per unit, plus summary.txt.
#   JCACHE_CACHE         cache dir (default $HOME/.cache/jcache); the Redis
#                        source tree is kept in $JCACHE_CACHE/redis-src.
#   REDIS_SRC_DIR        use this already-extracted Redis source tree instead.
#   REDIS_SRC_VERSION    Debian source version of "redis" to fetch (default:
#                        the installed redis-server's source version, else the
#                        newest available).
#   REDIS_SRC_PATCHED=1  apply Debian's patches (dpkg-source -x; needs
#                        dpkg-dev). Not needed to run the tests; cached
#                        separately in $JCACHE_CACHE/redis-src-patched.
#
# How the suite is obtained (first run only, then cached): a private apt
# configuration under $JCACHE_CACHE/apt gets deb-src entries derived from the
# system's Debian entries (/etc/apt/sources.list{,.d/*.list,.d/*.sources});
# `apt-get update` + `apt-get source --download-only redis=VERSION` run with
# Dir::Etc::SourceList / SourceParts / Dir::State::Lists / Dir::Cache pointing
# there, so the system's apt state is never touched. The upstream tarball
# (redis_X.orig.tar.gz) is extracted. Only `tcl` is needed to run the suite.
#
# Each unit runs against a fresh server on a free loopback port:
#   ./runtest --host 127.0.0.1 --port PORT --ignore-encoding \
#     --ignore-digest --durable --tags "<COMPAT_TAGS>" --single UNIT
# (plus --baseport B, a random free spot, so that the suite's own listening
# port does not collide with another runtest running on the same machine)
# and the [ok] / [err] / [exception] / [skip] / [ignore] lines are counted.
#
# Baseline file format (one line per unit, '#' comments allowed):
#   UNIT min_ok=N max_err=N [max_exception=N] [allow_timeout=1]
# The run fails (exit 1) if any unit has fewer ok, more err or more exception
# than its line allows, if the server crashed (died during the unit) or
# failed to start, or if a unit timed out without allow_timeout=1.
# Units without a baseline line are reported but not gated.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)

DEFAULT_UNITS="unit/type/string unit/type/incr unit/type/hash unit/expire unit/keyspace unit/type/zset unit/protocol unit/type/list unit/type/set unit/multi unit/pubsub unit/scan unit/bitops unit/quit unit/info-command unit/bitfield unit/type/list-2 unit/type/list-3 unit/dump unit/sort unit/scripting unit/functions unit/introspection unit/introspection-2 unit/latency-monitor unit/slowlog unit/pause unit/other unit/querybuf unit/hyperloglog unit/geo unit/type/stream unit/type/stream-cgroups"
DEFAULT_TAGS="-needs:debug -needs:repl -needs:save -needs:config-maxmemory -needs:reset"

SERVER_BIN=${SERVER_BIN:-$REPO_ROOT/target/release/jcache}
JCACHE_THREADS=${COMPAT_JCACHE_THREADS:-1}
case "$SERVER_BIN" in /*) ;; */*) SERVER_BIN="$PWD/$SERVER_BIN" ;; esac
SERVER_KIND=${SERVER_KIND:-}
SERVER_ARGS=${SERVER_ARGS:-}
UNIT_TIMEOUT=${COMPAT_UNIT_TIMEOUT:-300}
TAGS=${COMPAT_TAGS:-$DEFAULT_TAGS}
SINGLEDB=()
[ "${COMPAT_SINGLEDB:-0}" = 1 ] && SINGLEDB=(--singledb)
RUNTEST_ARGS=${COMPAT_RUNTEST_ARGS:-}
RESULTS_DIR=${COMPAT_RESULTS_DIR:-$REPO_ROOT/target/redis-compat}
CACHE_DIR=${JCACHE_CACHE:-${HOME:-/root}/.cache/jcache}
BASELINE=$SCRIPT_DIR/redis-compat.baseline
USE_BASELINE=1
WRITE_BASELINE=0
ONLY=0
ARG_UNITS=()

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case $1 in
        --only) ONLY=1 ;;
        --baseline) BASELINE=$2; shift ;;
        --no-baseline) USE_BASELINE=0 ;;
        --write-baseline) WRITE_BASELINE=1 ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "redis-compat: unknown option $1" >&2; exit 2 ;;
        *) ARG_UNITS+=("$1") ;;
    esac
    shift
done

if [ "$ONLY" = 1 ]; then
    [ ${#ARG_UNITS[@]} -gt 0 ] || { echo "redis-compat: --only needs units" >&2; exit 2; }
    read -r -a UNITS <<< "${ARG_UNITS[*]}"
else
    read -r -a UNITS <<< "${COMPAT_UNITS:-$DEFAULT_UNITS} ${COMPAT_EXTRA_UNITS:-} ${ARG_UNITS[*]:-}"
fi
# drop duplicates, keep order
declare -A SEEN=()
DEDUP=()
for u in "${UNITS[@]}"; do
    u=${u%.tcl}; u=${u#tests/}
    [ -n "${SEEN[$u]:-}" ] && continue
    SEEN[$u]=1; DEDUP+=("$u")
done
UNITS=("${DEDUP[@]}")

log() { printf '[redis-compat] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 2; }

# ---------------------------------------------------------------- prerequisites
command -v tclsh >/dev/null 2>&1 || die "tclsh not found (apt-get install tcl)"
[ -x "$SERVER_BIN" ] || die "server binary '$SERVER_BIN' not found/executable (cargo build --release, or set SERVER_BIN)"
if [ -z "$SERVER_KIND" ]; then
    case $(basename "$SERVER_BIN") in
        *redis-server*) SERVER_KIND=redis ;;
        *) SERVER_KIND=jcache ;;
    esac
fi

# ------------------------------------------------------------ fetch the suite
# Emit deb-src versions of the system's Debian apt entries.
gen_deb_src_entries() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822: keep stanzas with a "deb" type and a Debian URI; force Types.
        awk '
            function flush() {
                if (n > 0 && isdeb && isdebian) {
                    for (i = 1; i <= n; i++) print lines[i]
                    print ""
                }
                n = 0; isdeb = 0; isdebian = 0
            }
            /^[ \t]*$/ { flush(); next }
            /^[ \t]*#/ { next }
            /^Types:/ {
                if ($0 ~ /(^|[ \t])deb([ \t]|$)/) isdeb = 1
                lines[++n] = "Types: deb-src"; next
            }
            /^URIs:/ { if ($0 ~ /debian/) isdebian = 1 }
            /^Enabled:[ \t]*no/ { isdeb = 0 }
            { lines[++n] = $0 }
            END { flush() }
        ' "$f"
    done > "$APT_DIR/sources.list.d/deb-src.sources"
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+(.*debian.*)$/deb-src \1/p' "$f"
    done > "$APT_DIR/sources.list"
    if [ ! -s "$APT_DIR/sources.list.d/deb-src.sources" ] && [ ! -s "$APT_DIR/sources.list" ]; then
        # No Debian entry found: fall back to the default Debian mirror.
        local codename
        codename=$(sed -n 's/^VERSION_CODENAME=//p' /etc/os-release 2>/dev/null || true)
        codename=${codename:-bookworm}
        printf 'deb-src http://deb.debian.org/debian %s main\n' "$codename" > "$APT_DIR/sources.list"
        printf 'deb-src http://deb.debian.org/debian-security %s-security main\n' "$codename" >> "$APT_DIR/sources.list"
    fi
}

fetch_redis_src() {
    local dest=$1 patched=$2
    APT_DIR=$CACHE_DIR/apt
    mkdir -p "$APT_DIR/sources.list.d" "$APT_DIR/lists/partial" "$APT_DIR/cache/archives/partial"
    gen_deb_src_entries
    local -a apt_opts=(
        -o "Dir::Etc::SourceList=$APT_DIR/sources.list"
        -o "Dir::Etc::SourceParts=$APT_DIR/sources.list.d"
        -o "Dir::State::Lists=$APT_DIR/lists"
        -o "Dir::Cache=$APT_DIR/cache"
        -o "APT::Sandbox::User=root"
        -o "Acquire::Retries=3"
    )
    log "fetching Debian source package 'redis' (private apt dir $APT_DIR)"
    apt-get "${apt_opts[@]}" -qq update >&2 || die "apt-get update (private deb-src lists) failed"
    local ver=${REDIS_SRC_VERSION:-}
    if [ -z "$ver" ]; then
        ver=$(dpkg-query -W -f='${source:Version}' redis-server 2>/dev/null || true)
    fi
    local dl
    dl=$(mktemp -d "$CACHE_DIR/redis-dl.XXXXXX")
    local spec=redis
    [ -n "$ver" ] && spec="redis=$ver"
    if ! (cd "$dl" && apt-get "${apt_opts[@]}" -q source --download-only "$spec" >&2); then
        [ "$spec" = redis ] && { rm -rf "$dl"; die "apt-get source redis failed"; }
        log "version $ver not available as source, trying the newest"
        (cd "$dl" && apt-get "${apt_opts[@]}" -q source --download-only redis >&2) \
            || { rm -rf "$dl"; die "apt-get source redis failed"; }
    fi
    local tmp=$dest.tmp.$$
    rm -rf "$tmp"
    if [ "$patched" = 1 ]; then
        command -v dpkg-source >/dev/null 2>&1 || die "dpkg-source not found (apt-get install dpkg-dev)"
        (cd "$dl" && dpkg-source --no-check -x ./*.dsc "$tmp" >&2) || die "dpkg-source -x failed"
        # dpkg-source leaves a copy of the upstream tarball next to the tree
        rm -f "$(dirname "$tmp")"/redis_*.orig.tar.*
    else
        local -a origs
        origs=("$dl"/redis_*.orig.tar.*)
        local orig=${origs[0]}
        [ -f "$orig" ] || die "no upstream tarball downloaded"
        mkdir -p "$tmp"
        tar -xf "$orig" -C "$tmp" --strip-components=1 || die "extracting $orig failed"
    fi
    [ -f "$tmp/tests/test_helper.tcl" ] || die "extracted tree has no tests/test_helper.tcl"
    local -a dscs=("$dl"/*.dsc)
    basename "${dscs[0]}" .dsc > "$tmp/.jcache-source"
    rm -rf "$dest"
    mv "$tmp" "$dest"
    rm -rf "$dl"
    log "Redis test suite ready in $dest ($(cat "$dest/.jcache-source"))"
}

if [ -n "${REDIS_SRC_DIR:-}" ]; then
    SRC=$REDIS_SRC_DIR
    [ -f "$SRC/tests/test_helper.tcl" ] || die "REDIS_SRC_DIR=$SRC has no tests/test_helper.tcl"
else
    if [ "${REDIS_SRC_PATCHED:-0}" = 1 ]; then SRC=$CACHE_DIR/redis-src-patched; else SRC=$CACHE_DIR/redis-src; fi
    if [ ! -f "$SRC/.jcache-source" ]; then
        mkdir -p "$CACHE_DIR"
        exec 8> "$CACHE_DIR/.redis-src.lock"
        flock -w 600 8 || die "could not lock $CACHE_DIR/.redis-src.lock"
        [ -f "$SRC/.jcache-source" ] || fetch_redis_src "$SRC" "${REDIS_SRC_PATCHED:-0}"
        exec 8>&-
    fi
fi

# ------------------------------------------------------------- server control
free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
        return
    fi
    local p i
    for i in $(seq 1 200); do
        # stay clear of the suite's own port range (21111..29111)
        p=$((40000 + RANDOM % 20000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
        : "$i"
    done
    die "no free port found"
}

# A --baseport for runtest: in external mode it only listens (for its test
# clients) on a port in [baseport-32, baseport) and probes port+10000 too.
# Pick a random spot in 20000..29999 whose ports are free, away from the
# default 21111 that other runtest invocations use.
pick_baseport() {
    if command -v python3 >/dev/null 2>&1; then
        python3 - <<'PY'
import random, socket
def free(p):
    try:
        s = socket.socket(); s.bind(("127.0.0.1", p)); s.close(); return True
    except OSError:
        return False
for _ in range(500):
    p = random.randrange(22000, 29900)
    if all(free(q) and free(q + 10000) for q in range(p, p + 4)):
        print(p + 32); break
else:
    print(random.randrange(22000, 29900) + 32)
PY
        return
    fi
    echo $((22032 + RANDOM % 7800))
}

# PING via bash's /dev/tcp; succeeds when the server answers +PONG.
ping_server() (
    port=$1 line=""
    exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 line <&3 || true
    [ "${line%$'\r'}" = "+PONG" ]
)

SERVER_PID=""
SERVER_TMP=""
# start_server PORT LOGFILE: start the candidate server, wait until it answers.
start_server() {
    local port=$1 logfile=$2
    local -a extra=()
    [ -n "$SERVER_ARGS" ] && read -r -a extra <<< "$SERVER_ARGS"
    SERVER_TMP=$(mktemp -d "${TMPDIR:-/tmp}/jcache-compat-srv.XXXXXX")
    if [ "$SERVER_KIND" = redis ]; then
        "$SERVER_BIN" --port "$port" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$SERVER_TMP" "${extra[@]}" > "$logfile" 2>&1 &
    else
        (cd "$SERVER_TMP" && exec "$SERVER_BIN" --port "$port" --bind 127.0.0.1 \
            --log-level warn --threads "$JCACHE_THREADS" --enable-debug-command yes \
            "${extra[@]}") > "$logfile" 2>&1 &
    fi
    SERVER_PID=$!
    local i
    for i in $(seq 1 100); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then return 1; fi
        if ping_server "$port" 2>/dev/null; then return 0; fi
        sleep 0.1
        : "$i"
    done
    return 1
}

# stop_server: stop it by PID (TERM, then KILL after 5s); exit status in STOP_RC.
STOP_RC=0
stop_server() {
    local pid=$SERVER_PID rc=0 i
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
    wait "$pid" 2>/dev/null || rc=$?
    SERVER_PID=""
    [ -n "$SERVER_TMP" ] && rm -rf "$SERVER_TMP"
    SERVER_TMP=""
    STOP_RC=$rc
}

WORK=""
cleanup() {
    [ -n "$SERVER_PID" ] && stop_server
    [ -n "$WORK" ] && rm -rf "$WORK"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ baseline
declare -A B_MIN_OK=() B_MAX_ERR=() B_MAX_EXC=() B_ALLOW_TO=()
if [ "$USE_BASELINE" = 1 ]; then
    [ -f "$BASELINE" ] || die "baseline file $BASELINE not found (use --no-baseline)"
    while read -r unit rest; do
        case $unit in ''|\#*) continue ;; esac
        B_MIN_OK[$unit]=0; B_MAX_ERR[$unit]=0; B_MAX_EXC[$unit]=0; B_ALLOW_TO[$unit]=0
        for kv in $rest; do
            case $kv in
                min_ok=*) B_MIN_OK[$unit]=${kv#*=} ;;
                max_err=*) B_MAX_ERR[$unit]=${kv#*=} ;;
                max_exception=*) B_MAX_EXC[$unit]=${kv#*=} ;;
                allow_timeout=*) B_ALLOW_TO[$unit]=${kv#*=} ;;
                \#*) break ;;
                *) die "bad baseline entry '$kv' for $unit" ;;
            esac
        done
    done < "$BASELINE"
fi

# ---------------------------------------------------------------------- run
mkdir -p "$RESULTS_DIR"
rm -f "$RESULTS_DIR"/*.log "$RESULTS_DIR/summary.txt"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/jcache-compat.XXXXXX")
# private copy of the suite (it writes to tests/tmp), so parallel runs and the
# cache never interfere
cp -a "$SRC/runtest" "$SRC/tests" "$WORK/"
mkdir -p "$WORK/tests/tmp"
[ -d "$SRC/src" ] && ln -s "$SRC/src" "$WORK/src"

read -r -a TAG_LIST <<< "$TAGS"
read -r -a EXTRA_RT <<< "$RUNTEST_ARGS"

log "server: $SERVER_BIN ($SERVER_KIND style), suite: $SRC ($(cat "$SRC/.jcache-source" 2>/dev/null || echo local))"
log "units: ${UNITS[*]}"
log "results: $RESULTS_DIR"

declare -A R_OK=() R_ERR=() R_EXC=() R_SKIP=() R_IGN=() R_STATUS=() R_SECS=()
T_OK=0 T_ERR=0 T_EXC=0 T_SKIP=0 T_IGN=0
FAILED=0
GATE_MSGS=()
START_ALL=$(date +%s)

count() { grep -c -E "^\[$1\]:" "$2" || true; }

for unit in "${UNITS[@]}"; do
    name=${unit//\//_}
    ulog=$RESULTS_DIR/$name.log
    slog=$RESULTS_DIR/$name.server.log
    [ -f "$WORK/tests/$unit.tcl" ] || die "unknown unit $unit (no tests/$unit.tcl)"
    port=$(free_port)
    status=ok
    t0=$(date +%s)
    if ! start_server "$port" "$slog"; then
        stop_server
        log "$unit: server failed to start on port $port (exit status $STOP_RC; see $slog)"
        status=NOSTART
        echo "server failed to start (exit status $STOP_RC)" > "$ulog"
    else
        log "$unit: server pid $SERVER_PID port $port"
        for attempt in 1 2 3 4 5; do
            rc=0
            bp=$(pick_baseport)
            (cd "$WORK" && TERM=dumb timeout --kill-after=15 "$UNIT_TIMEOUT" \
                ./runtest --host 127.0.0.1 --port "$port" --baseport "$bp" "${SINGLEDB[@]}" \
                --ignore-encoding --ignore-digest --durable --tags "${TAG_LIST[*]}" \
                "${EXTRA_RT[@]}" --single "$unit" < /dev/null > "$ulog.raw" 2>&1) || rc=$?
            # the suite's own listening port can race with another runtest on
            # this machine (its port probe is fooled by IPv6); retry elsewhere
            if [ "$rc" != 0 ] && ! grep -q '\[ok\]' "$ulog.raw" &&
                grep -q -E "couldn't open socket: address already in use|Can't find a non busy port" "$ulog.raw"; then
                log "$unit: runtest could not listen near port $bp (attempt $attempt), retrying"
                continue
            fi
            break
        done
        # strip colour codes should TERM leak through
        sed -e 's/\x1b\[[0-9;]*m//g' "$ulog.raw" > "$ulog" && rm -f "$ulog.raw"
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            status=CRASH
        elif [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
            status=TIMEOUT
        fi
        stop_server
        [ "$status" = CRASH ] && echo "server exited with status $STOP_RC during the unit" >> "$ulog"
        [ "$status" = TIMEOUT ] && echo "runtest killed after ${UNIT_TIMEOUT}s" >> "$ulog"
    fi
    R_SECS[$unit]=$(( $(date +%s) - t0 ))
    R_OK[$unit]=$(count ok "$ulog")
    R_ERR[$unit]=$(count err "$ulog")
    R_EXC[$unit]=$(count exception "$ulog")
    R_SKIP[$unit]=$(count skip "$ulog")
    R_IGN[$unit]=$(count ignore "$ulog")
    # runtest aborts the unit on an exception outside a test; make sure a
    # unit that never reached "All tests passed"/"failed" is visible
    if [ "$status" = ok ] && ! grep -q -E '^\[[0-9]+/[0-9]+ done\]:' "$ulog"; then
        status=ABORTED
    fi
    R_STATUS[$unit]=$status
    T_OK=$((T_OK + R_OK[$unit])); T_ERR=$((T_ERR + R_ERR[$unit])); T_EXC=$((T_EXC + R_EXC[$unit]))
    T_SKIP=$((T_SKIP + R_SKIP[$unit])); T_IGN=$((T_IGN + R_IGN[$unit]))
    log "$unit: ok=${R_OK[$unit]} err=${R_ERR[$unit]} exception=${R_EXC[$unit]} status=$status (${R_SECS[$unit]}s)"

    # gate
    case $status in
        CRASH|NOSTART) FAILED=1; GATE_MSGS+=("$unit: server $status") ;;
        TIMEOUT)
            if [ "${B_ALLOW_TO[$unit]:-0}" != 1 ]; then
                FAILED=1; GATE_MSGS+=("$unit: timed out after ${UNIT_TIMEOUT}s")
            fi ;;
    esac
    if [ "$USE_BASELINE" = 1 ]; then
        if [ -n "${B_MIN_OK[$unit]+x}" ]; then
            if [ "${R_OK[$unit]}" -lt "${B_MIN_OK[$unit]}" ]; then
                FAILED=1; GATE_MSGS+=("$unit: ok ${R_OK[$unit]} < baseline min_ok ${B_MIN_OK[$unit]}")
            fi
            if [ "${R_ERR[$unit]}" -gt "${B_MAX_ERR[$unit]}" ]; then
                FAILED=1; GATE_MSGS+=("$unit: err ${R_ERR[$unit]} > baseline max_err ${B_MAX_ERR[$unit]}")
            fi
            if [ "${R_EXC[$unit]}" -gt "${B_MAX_EXC[$unit]}" ]; then
                FAILED=1; GATE_MSGS+=("$unit: exception ${R_EXC[$unit]} > baseline max_exception ${B_MAX_EXC[$unit]}")
            fi
            if [ "${R_OK[$unit]}" -gt "${B_MIN_OK[$unit]}" ] || [ "${R_ERR[$unit]}" -lt "${B_MAX_ERR[$unit]}" ]; then
                GATE_MSGS+=("$unit: better than baseline (ok ${R_OK[$unit]}/${B_MIN_OK[$unit]}, err ${R_ERR[$unit]}/${B_MAX_ERR[$unit]}) - consider raising it")
            fi
        else
            GATE_MSGS+=("$unit: no baseline entry (not gated)")
        fi
    fi
done
ELAPSED=$(( $(date +%s) - START_ALL ))

# -------------------------------------------------------------------- report
{
    echo
    echo "Redis test suite ($(cat "$SRC/.jcache-source" 2>/dev/null || echo "$SRC")) against $SERVER_BIN"
    printf '%-20s %6s %6s %6s %6s %7s %6s  %s\n' unit ok err exc skip ignored secs status
    printf '%-20s %6s %6s %6s %6s %7s %6s  %s\n' -------------------- ------ ------ ------ ------ ------- ------ ------
    for unit in "${UNITS[@]}"; do
        printf '%-20s %6d %6d %6d %6d %7d %6d  %s\n' "$unit" "${R_OK[$unit]}" "${R_ERR[$unit]}" \
            "${R_EXC[$unit]}" "${R_SKIP[$unit]}" "${R_IGN[$unit]}" "${R_SECS[$unit]}" "${R_STATUS[$unit]}"
    done
    printf '%-20s %6d %6d %6d %6d %7d %6d\n' TOTAL "$T_OK" "$T_ERR" "$T_EXC" "$T_SKIP" "$T_IGN" "$ELAPSED"
    if [ $((T_ERR + T_EXC)) -gt 0 ]; then
        echo
        echo "Failing tests:"
        for unit in "${UNITS[@]}"; do
            name=${unit//\//_}
            grep -E '^\[(err|exception)\]:' "$RESULTS_DIR/$name.log" | sed "s|^|  $unit: |" || true
        done
    fi
    if [ ${#GATE_MSGS[@]} -gt 0 ]; then
        echo
        echo "Baseline ($BASELINE):"
        printf '  %s\n' "${GATE_MSGS[@]}"
    fi
    echo
    echo "Logs: $RESULTS_DIR"
} | tee "$RESULTS_DIR/summary.txt"

if [ "$WRITE_BASELINE" = 1 ]; then
    tmpb=$(mktemp)
    [ -f "$BASELINE" ] && cp "$BASELINE" "$tmpb"
    for unit in "${UNITS[@]}"; do
        line="$unit min_ok=${R_OK[$unit]} max_err=${R_ERR[$unit]} max_exception=${R_EXC[$unit]}"
        [ "${R_STATUS[$unit]}" = TIMEOUT ] && line="$line allow_timeout=1"
        if grep -q -E "^${unit//\//\\/}[[:space:]]" "$tmpb"; then
            awk -v u="$unit" -v l="$line" '$1 == u { print l; next } { print }' "$tmpb" > "$tmpb.new" && mv "$tmpb.new" "$tmpb"
        else
            echo "$line" >> "$tmpb"
        fi
    done
    cp "$tmpb" "$BASELINE" && rm -f "$tmpb"
    log "baseline written to $BASELINE"
fi

if [ "$FAILED" != 0 ]; then
    echo "redis-compat: FAILED"
    exit 1
fi
echo "redis-compat: PASSED (total ok=$T_OK err=$T_ERR exception=$T_EXC)"
