#!/usr/bin/env bash
# test.sh - THE one command that runs every test of jcache (used by .ci/run).
# Non-interactive; meant for a fresh Debian 12 machine with Rust installed.
#
# Steps (each under a "==== ... ====" header):
#   1. Debian packages: installs whatever is missing of redis-server,
#      redis-tools, tcl, protobuf-compiler, libprotobuf-dev, etcd-server (apt-get update only
#      if something is missing). The tests start their own servers on free
#      loopback ports; a redis-server started by the package's own service on
#      6379 is neither needed nor in the way.
#   2. cargo fmt --all --check
#   3. cargo clippy --workspace --all-targets -- -D warnings
#   4. cargo nextest run --workspace (or cargo test --workspace without nextest)
#   5. cargo build --release
#   6. scripts/redis-compat.sh (Redis's Tcl suite against target/release/jcache)
#   7. the compose cluster: scripts/docker-base-images.sh (local stand-ins for
#      the public base images where no registry is reachable; started in the
#      background right after step 1, waited for here), then
#      scripts/compose-smoke.sh (election, forwarding, /metrics, Redis
#      stopped and started, a partition of the master, a killed master).
#      Needs a running Docker engine: without one this step FAILS, it is
#      never skipped silently.
#   (plus shellcheck of scripts/*.sh and .ci/run when shellcheck is installed)
#
# Every step runs even if an earlier one failed (except that the compat suite
# needs the release build); the exit status is non-zero if any step failed.
#
# Environment:
#   TEST_SKIP_APT=1      do not check/install Debian packages
#   TEST_SKIP_COMPAT=1   skip the Redis compatibility suite
#   TEST_SKIP_COMPOSE=1  skip the compose cluster (says so in the summary)
#   plus everything scripts/redis-compat.sh reads (COMPAT_*, JCACHE_CACHE, ...)
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# cargo may not be on PATH in a bare CI environment
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
cd "$REPO_ROOT"

START=$(date +%s)
FAILED_STEPS=()
SKIPPED_STEPS=()
PASSED_STEPS=()

section() { printf '\n==== %s ====\n' "$*"; }

# run_step NAME CMD...: run a step, record its result, never abort the script.
run_step() {
    local name=$1 t0 rc=0
    shift
    section "$name"
    echo "+ $*"
    t0=$(date +%s)
    "$@" < /dev/null || rc=$?
    if [ "$rc" = 0 ]; then
        PASSED_STEPS+=("$name")
        echo "---- $name: OK ($(( $(date +%s) - t0 ))s)"
    else
        FAILED_STEPS+=("$name (exit $rc)")
        echo "---- $name: FAILED with exit $rc ($(( $(date +%s) - t0 ))s)"
    fi
    return 0
}

# ------------------------------------------------------------------ packages
# libprotobuf-dev: protoc's well-known types (google/protobuf/*.proto), which
# etcd-client's build imports; only a Recommends of protobuf-compiler.
PACKAGES=(redis-server redis-tools redis-sentinel tcl protobuf-compiler libprotobuf-dev etcd-server
    docker-compose debootstrap)

install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
            missing+=("$p")
        fi
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "all present: ${PACKAGES[*]}"
        return 0
    fi
    echo "missing: ${missing[*]}"
    local -a sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: install ${missing[*]} by hand" >&2; return 1; }
        sudo=(sudo -n env DEBIAN_FRONTEND=noninteractive)
    fi
    local -a apt_opts=(-q -y -o DPkg::Lock::Timeout=600
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    "${sudo[@]}" apt-get "${apt_opts[@]}" update
    "${sudo[@]}" apt-get "${apt_opts[@]}" install --no-install-recommends "${missing[@]}"
    for p in redis-server redis-cli redis-benchmark redis-sentinel tclsh protoc docker-compose; do
        command -v "$p" >/dev/null 2>&1 || { echo "$p still not found after install" >&2; return 1; }
    done
}

if [ "${TEST_SKIP_APT:-0}" != 1 ]; then
    run_step "Debian packages" install_packages
fi

# ------------------------------------------- base images, in the background
# The compose step's base images are built from Debian packages (mostly
# network and disk): start them now, so they are ready when that step
# comes, instead of adding their minutes to the run.
BASE_IMAGES_LOG=""
BASE_IMAGES_PID=""
if [ "${TEST_SKIP_COMPOSE:-0}" != 1 ] && docker info >/dev/null 2>&1; then
    BASE_IMAGES_LOG=$(mktemp)
    bash scripts/docker-base-images.sh > "$BASE_IMAGES_LOG" 2>&1 < /dev/null &
    BASE_IMAGES_PID=$!
fi

# ------------------------------------------------------------ shell scripts
if command -v shellcheck >/dev/null 2>&1; then
    run_step "shellcheck" shellcheck scripts/*.sh .ci/run
fi

# --------------------------------------------------------------------- Rust
run_step "cargo fmt --check" cargo fmt --all --check
run_step "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
if cargo nextest --version >/dev/null 2>&1; then
    run_step "cargo nextest" cargo nextest run --workspace
else
    run_step "cargo test" cargo test --workspace
fi

BUILD_OK=0
run_step "cargo build --release" cargo build --release
[ -x target/release/jcache ] && BUILD_OK=1

# ------------------------------------------------- Redis compatibility suite
if [ "${TEST_SKIP_COMPAT:-0}" = 1 ]; then
    section "redis-compat (skipped: TEST_SKIP_COMPAT=1)"
    SKIPPED_STEPS+=("redis-compat (TEST_SKIP_COMPAT=1)")
elif [ "$BUILD_OK" = 1 ]; then
    run_step "redis-compat" env SERVER_BIN="$REPO_ROOT/target/release/jcache" bash scripts/redis-compat.sh
else
    section "redis-compat"
    echo "target/release/jcache missing: release build failed"
    FAILED_STEPS+=("redis-compat (no release binary)")
fi

# ------------------------------------------------------- the compose cluster
compose_cluster() {
    if ! docker info >/dev/null 2>&1; then
        echo "no Docker engine answers 'docker info': the compose cluster cannot be tested" >&2
        return 1
    fi
    if [ -z "$BASE_IMAGES_PID" ]; then
        echo "the base images were not started (no Docker engine at the start of the run)" >&2
        return 1
    fi
    local rc=0
    wait "$BASE_IMAGES_PID" || rc=$?
    echo "base images (built in the background since the start of the run, exit $rc):"
    cat "$BASE_IMAGES_LOG"
    rm -f "$BASE_IMAGES_LOG"
    [ "$rc" = 0 ] || return 1
    bash scripts/compose-smoke.sh
}

if [ "${TEST_SKIP_COMPOSE:-0}" = 1 ]; then
    section "compose cluster (skipped: TEST_SKIP_COMPOSE=1)"
    SKIPPED_STEPS+=("compose cluster (TEST_SKIP_COMPOSE=1)")
else
    run_step "compose cluster" compose_cluster
fi

# ------------------------------------------------------------------ summary
section "summary ($(( $(date +%s) - START ))s)"
for s in "${PASSED_STEPS[@]}"; do echo "  ok      $s"; done
for s in "${SKIPPED_STEPS[@]}"; do echo "  SKIPPED $s"; done
for s in "${FAILED_STEPS[@]}"; do echo "  FAILED  $s"; done
if [ ${#FAILED_STEPS[@]} -gt 0 ]; then
    echo "test.sh: ${#FAILED_STEPS[@]} step(s) FAILED"
    exit 1
fi
echo "test.sh: all ${#PASSED_STEPS[@]} steps OK"
