#!/usr/bin/env bash
# run.sh - builds and runs jcache on a fresh Debian 12 machine with Rust.
# Installs the build prerequisites that are missing (protobuf-compiler and
# libprotobuf-dev, for the gRPC contracts of the cluster and of etcd-client),
# then runs the release binary with the arguments given (default: the
# embedded memory tier on 127.0.0.1:6379).
#
#   scripts/run.sh                      # listen on 127.0.0.1:6379
#   scripts/run.sh --port 7000 --maxmemory 1gb --maxmemory-policy allkeys-lru
#   scripts/run.sh --config config/jcache.toml
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi
# libprotobuf-dev holds google/protobuf/*.proto, which etcd-client's build imports.
if ! command -v protoc >/dev/null 2>&1 || [ ! -f /usr/include/google/protobuf/descriptor.proto ]; then
    echo "run.sh: installing protobuf-compiler and libprotobuf-dev (needed to build)" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q protobuf-compiler libprotobuf-dev
fi
exec cargo run --release --quiet -- "$@"
