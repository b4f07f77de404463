#!/usr/bin/env bash
# compose-smoke.sh - brings docker-compose.yml's stack up under a unique
# project name and checks, with host redis-cli against 127.0.0.1 only:
#   1. one node is master with two followers linked to it (INFO replication)
#   2. SET at a follower (forwarded to the master) answers OK
#   3. GET returns the value at every node; ROLE agrees with INFO
#   4. the master wrote it through to the redis service
#   5. /metrics of every node answers 200 with jcache's metrics (scraped once)
#   6. `docker-compose stop redis`: hits keep being served at every node,
#      a write fails fast with an error; after `start`, writes succeed again
#   7. a network partition of the master (`docker network disconnect`): it
#      stops accepting writes within the lease, another node becomes master;
#      after `docker network connect` the old master rejoins as a follower
#      and converges (it reads what was written during the partition)
#   8. after `docker-compose kill` of the master, another node becomes master
#      and a write at it and a read at the remaining follower succeed
# The stack is always taken down (`down -v`). Every wait is bounded. Exits
# non-zero on the first failed check.
#
# Needs: docker, docker-compose, redis-cli (redis-tools), the images the
# compose file names (offline: scripts/docker-base-images.sh makes them),
# host ports 7001-7003 free (or JCACHE1_PORT/JCACHE2_PORT/JCACHE3_PORT).
#
#   bash scripts/compose-smoke.sh
#   BUILD_TIMEOUT=3600 bash scripts/compose-smoke.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PROJECT=jcache-smoke-$$
DC=(docker-compose -p "$PROJECT" -f docker-compose.yml)
export JCACHE1_PORT=${JCACHE1_PORT:-7001} JCACHE2_PORT=${JCACHE2_PORT:-7002} JCACHE3_PORT=${JCACHE3_PORT:-7003}
export JCACHE_CLUSTER_SECRET=${JCACHE_CLUSTER_SECRET:-smoke-$$-$RANDOM$RANDOM}
NODES=(jcache1 jcache2 jcache3)
declare -A PORT=([jcache1]=$JCACHE1_PORT [jcache2]=$JCACHE2_PORT [jcache3]=$JCACHE3_PORT)
BUILD_TIMEOUT=${BUILD_TIMEOUT:-2400}
ELECT_TIMEOUT=${ELECT_TIMEOUT:-120}
FAILOVER_TIMEOUT=${FAILOVER_TIMEOUT:-60}

log() { printf '[smoke %(%H:%M:%S)T] %s\n' -1 "$*"; }
fail() {
    log "FAIL: $*"
    exit 1
}

cleanup() {
    local rc=$?
    if [[ $rc != 0 ]]; then
        log "logs (last 30 lines per service):"
        timeout 60 "${DC[@]}" logs --no-color --tail=30 2>&1 || true
    fi
    log "docker-compose down -v"
    timeout 120 "${DC[@]}" down -v --remove-orphans >/dev/null 2>&1 || log "down failed"
    exit "$rc"
}

# cli NODE ARGS...: one redis-cli call at that node's published port.
cli() {
    local node=$1
    shift
    timeout 5 redis-cli -h 127.0.0.1 -p "${PORT[$node]}" "$@" 2>/dev/null | tr -d '\r'
}
field() { # field NODE NAME: one INFO replication field, or nothing
    cli "$1" INFO replication | sed -n "s/^$2://p"
}

# incli NODE ARGS...: one command sent from inside the node's container to
# its own loopback port (the jcache image has bash but no redis-cli), so it
# works while the container is off the compose network. Prints the reply's
# lines as received within 2 s (RESP, CRs removed).
incli() {
    local node=$1 a req
    shift
    req="*$#\\r\\n"
    for a in "$@"; do req+="\$${#a}\\r\\n$a\\r\\n"; done
    # shellcheck disable=SC2016 # $1 is expanded by the container's bash
    timeout 20 "${DC[@]}" exec -T "$node" bash -c \
        'exec 3<>/dev/tcp/127.0.0.1/6379 && printf "%b" "$1" >&3 && timeout 2 cat <&3' _ "$req" 2>/dev/null |
        tr -d '\r' || true
}
infield() { # infield NODE NAME: one INFO replication field, through incli
    incli "$1" INFO replication | sed -n "s/^$2://p"
}

# scrape NODE: GET /metrics from inside the node's container (port 9121 is
# not published).
scrape() {
    timeout 20 "${DC[@]}" exec -T "$1" bash -c \
        'exec 3<>/dev/tcp/127.0.0.1/9121 && printf "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3 && timeout 5 cat <&3' \
        2>/dev/null | tr -d '\r' || true
}

# master_of NODES...: prints the node that is master with every other listed
# node linked to it as an online follower; fails if there is none.
master_of() {
    local n m="" count=0
    for n in "$@"; do
        if [[ $(field "$n" role) == master && $(field "$n" lease_valid) == 1 ]]; then
            m=$n
            count=$((count + 1))
        fi
    done
    [[ $count == 1 ]] || return 1
    [[ $(field "$m" connected_slaves) == $(($# - 1)) ]] || return 1
    for n in "$@"; do
        [[ $n == "$m" ]] && continue
        [[ $(field "$n" role) == slave && $(field "$n" master_link_status) == up &&
            $(field "$n" master_node_id) == "$m" ]] || return 1
    done
    echo "$m"
}

# wait_master SECONDS NODES...: bounded wait for master_of.
wait_master() {
    local secs=$1 m
    shift
    local deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if m=$(master_of "$@"); then
            echo "$m"
            return 0
        fi
        sleep 1
    done
    return 1
}

# wait_get NODE KEY VALUE: bounded wait (10 s) until GET KEY returns VALUE.
wait_get() {
    local deadline=$((SECONDS + 10)) got=""
    while ((SECONDS < deadline)); do
        got=$(cli "$1" GET "$2") || true
        [[ $got == "$3" ]] && return 0
        sleep 0.2
    done
    fail "GET $2 at $1 returned '$got', expected '$3'"
}

command -v redis-cli >/dev/null || fail "redis-cli not found (apt-get install redis-tools)"
for n in "${NODES[@]}"; do
    if timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/${PORT[$n]}" 2>/dev/null; then
        fail "127.0.0.1:${PORT[$n]} is already in use (set ${n^^}_PORT)"
    fi
done

trap cleanup EXIT
log "project $PROJECT: building jcache:local (bounded ${BUILD_TIMEOUT}s)"
start=$SECONDS
timeout "$BUILD_TIMEOUT" "${DC[@]}" build || fail "docker-compose build"
log "build took $((SECONDS - start))s"
timeout 300 "${DC[@]}" up -d || fail "docker-compose up -d"

log "waiting (<= ${ELECT_TIMEOUT}s) for one master and two linked followers"
start=$SECONDS
master=$(wait_master "$ELECT_TIMEOUT" "${NODES[@]}") || fail "no master with two linked followers after ${ELECT_TIMEOUT}s"
followers=()
for n in "${NODES[@]}"; do [[ $n == "$master" ]] || followers+=("$n"); done
log "ok: $master is master (after $((SECONDS - start))s), followers ${followers[*]}"

for n in "${NODES[@]}"; do
    role=$(cli "$n" ROLE | head -n 1) || true
    want=slave
    [[ $n == "$master" ]] && want=master
    [[ $role == "$want" ]] || fail "ROLE at $n is '$role', expected $want"
done
log "ok: ROLE agrees ($master master, ${followers[*]} slave)"

value="v-$$-$RANDOM"
got=$(cli "${followers[0]}" SET k "$value") || true
[[ $got == OK ]] || fail "SET k at follower ${followers[0]} answered '$got'"
log "ok: SET k $value at follower ${followers[0]} -> OK"
for n in "${NODES[@]}"; do wait_get "$n" k "$value"; done
log "ok: GET k = $value at ${NODES[*]}"

got=$(timeout 30 "${DC[@]}" exec -T redis redis-cli GET k | tr -d '\r') || true
[[ $got == "$value" ]] || fail "redis service has k='$got', expected '$value'"
log "ok: redis service has k = $value (written through)"

for n in "${NODES[@]}"; do
    page=$(scrape "$n")
    [[ $(head -n 1 <<<"$page") == "HTTP/1.0 200 OK" || $(head -n 1 <<<"$page") == "HTTP/1.1 200 OK" ]] ||
        fail "/metrics at $n: status '$(head -n 1 <<<"$page")'"
    grep -q '^jcache_commands_total{' <<<"$page" || fail "/metrics at $n has no jcache_commands_total"
    grep -q '^jcache_replication_role' <<<"$page" || fail "/metrics at $n has no jcache_replication_role"
done
log "ok: /metrics scraped at ${NODES[*]}"

# ---- the upstream Redis stopped and started again
log "docker-compose stop redis"
timeout 60 "${DC[@]}" stop redis >/dev/null 2>&1 || fail "docker-compose stop redis"
for n in "${NODES[@]}"; do
    got=$(cli "$n" GET k) || true
    [[ $got == "$value" ]] || fail "with redis stopped, GET k at $n answered '$got' (a hit was expected)"
done
log "ok: with redis stopped, GET k hits at ${NODES[*]}"
t0=$(date +%s%N)
got=$(cli "$master" SET kdown x) || true
ms=$((($(date +%s%N) - t0) / 1000000))
[[ -n $got && $got != OK ]] ||
    fail "with redis stopped, SET at the master answered '$got' (an error was expected)"
((ms < 5000)) || fail "with redis stopped, SET took ${ms}ms (it must fail fast)"
log "ok: with redis stopped, SET fails in ${ms}ms: $got"
timeout 60 "${DC[@]}" start redis >/dev/null 2>&1 || fail "docker-compose start redis"
deadline=$((SECONDS + 60))
got=""
while ((SECONDS < deadline)); do
    got=$(cli "$master" SET kup "$value") || true
    [[ $got == OK ]] && break
    sleep 0.5
done
[[ $got == OK ]] || fail "60s after redis started again, SET at the master answered '$got'"
# Redis restarted empty (no persistence) and every node dropped its copies
# when the link came back: k is gone; write it again for what follows.
got=$(cli "$master" SET k "$value") || true
[[ $got == OK ]] || fail "SET k at the master answered '$got'"
for n in "${NODES[@]}"; do
    wait_get "$n" kup "$value"
    wait_get "$n" k "$value"
done
log "ok: redis back, SET kup and k at the master and GET at ${NODES[*]}"

# ---- a network partition of the master
net="${PROJECT}_default"
cid=$("${DC[@]}" ps -q "$master")
[[ -n $cid ]] || fail "no container for $master"
log "disconnecting $master from $net"
docker network disconnect "$net" "$cid" || fail "docker network disconnect $net $master"
start=$SECONDS
# The lease is 3 s by default: the old master must refuse writes after it.
deadline=$((SECONDS + 20))
got=""
while ((SECONDS < deadline)); do
    got=$(incli "$master" SET kpart old | head -n 1)
    [[ $got == -* ]] && break
    sleep 0.5
done
[[ $got == -* ]] || fail "partitioned $master still answers '$got' to SET after 20s"
log "ok: partitioned $master refuses writes after $((SECONDS - start))s: $got"
# Fenced: its lease ran out (it cannot renew it without etcd).
deadline=$((SECONDS + 20))
while ((SECONDS < deadline)); do
    [[ $(infield "$master" lease_valid) == 0 || $(infield "$master" role) == slave ]] && break
    sleep 0.5
done
[[ $(infield "$master" lease_valid) == 0 || $(infield "$master" role) == slave ]] ||
    fail "partitioned $master still holds a valid lease after 20s"
log "ok: partitioned $master no longer holds the lease ($((SECONDS - start))s)"
new=$(wait_master "$FAILOVER_TIMEOUT" "${followers[@]}") || fail "no new master among ${followers[*]} after ${FAILOVER_TIMEOUT}s"
log "ok: $new is master $((SECONDS - start))s after the partition"
value3="v3-$$-$RANDOM"
got=$(cli "$new" SET kpart "$value3") || true
[[ $got == OK ]] || fail "SET kpart at new master $new answered '$got'"
log "reconnecting $master to $net"
docker network connect --alias "$master" "$net" "$cid" || fail "docker network connect $net $master"
start=$SECONDS
deadline=$((SECONDS + 60))
while ((SECONDS < deadline)); do
    [[ $(infield "$master" role) == slave && $(infield "$master" master_link_status) == up &&
        $(infield "$master" master_node_id) == "$new" ]] && break
    sleep 1
done
[[ $(infield "$master" role) == slave ]] || fail "$master did not rejoin as a follower within 60s"
# Converged: the rejoined node reads what the new master and Redis hold,
# the new master's value. The old master's own SET, answered "may or may
# not have been applied", never reached Redis: its upstream socket has
# TCP_USER_TIMEOUT (the upstream timeout), so the kernel dropped it with
# the connection instead of retransmitting it once the link came back.
deadline=$((SECONDS + 30))
got="" want="" inredis=""
while ((SECONDS < deadline)); do
    got=$(incli "$master" GET kpart | sed -n 2p)
    want=$(cli "$new" GET kpart) || true
    inredis=$(timeout 30 "${DC[@]}" exec -T redis redis-cli GET kpart | tr -d '\r') || true
    [[ $got == "$value3" && $want == "$value3" && $inredis == "$value3" ]] && break
    sleep 0.5
done
[[ $got == "$value3" && $want == "$value3" && $inredis == "$value3" ]] ||
    fail "after rejoining, kpart is '$got' at $master, '$want' at $new, '$inredis' in redis (want $value3)"
log "ok: $master rejoined as a follower of $new after $((SECONDS - start))s and converged"
master=$new
followers=()
for n in "${NODES[@]}"; do [[ $n == "$master" ]] || followers+=("$n"); done
master=$(wait_master "$ELECT_TIMEOUT" "${NODES[@]}") || fail "the three nodes did not settle after the partition"

log "killing the master $master"
timeout 60 "${DC[@]}" kill "$master" >/dev/null 2>&1 || fail "docker-compose kill $master"
start=$SECONDS
new=$(wait_master "$FAILOVER_TIMEOUT" "${followers[@]}") || fail "no new master among ${followers[*]} after ${FAILOVER_TIMEOUT}s"
log "ok: $new is master $((SECONDS - start))s after the kill"
other=${followers[0]}
[[ $other == "$new" ]] && other=${followers[1]}

value2="v2-$$-$RANDOM"
deadline=$((SECONDS + 30))
got=""
while ((SECONDS < deadline)); do
    got=$(cli "$new" SET k2 "$value2") || true
    [[ $got == OK ]] && break
    sleep 0.5
done
[[ $got == OK ]] || fail "SET k2 at new master $new answered '$got'"
log "ok: SET k2 at new master $new -> OK"
for n in "$new" "$other"; do
    wait_get "$n" k2 "$value2"
    wait_get "$n" k "$value"
done
log "ok: GET k and k2 at $new and $other"
got=$(cli "$other" SET k3 x) || true
[[ $got == OK ]] || fail "SET k3 at follower $other answered '$got'"
log "ok: SET k3 at follower $other -> OK (forwarded to $new)"
log "PASS"
