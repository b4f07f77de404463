#!/usr/bin/env bash
# docker-base-images.sh - builds local stand-ins for the public images that
# the Dockerfile and docker-compose.yml use, for a machine WITHOUT access to a
# container registry (where `docker pull` cannot work and the engine starts
# with no images). Users with registry access do not need this script: Docker
# pulls the real images.
#
# The stand-ins carry exactly the public names, built from Debian packages:
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm, imported
#   rust:1-bookworm        that base + build-essential, pkg-config, git, curl,
#                          ca-certificates, and the host's rustup-managed
#                          stable toolchain (RUSTUP_HOME=/usr/local/rustup,
#                          CARGO_HOME=/usr/local/cargo, as the official image)
#                          and the host's own CA certificates (see below)
#   quay.io/coreos/etcd:v3.4.23   that base + Debian's etcd-server/etcd-client
#   redis:7.0              that base + Debian's redis-server/redis-tools
# The binaries are on PATH (etcd, etcdctl, redis-server, redis-cli), so the
# compose `command:` lines work with both the official images and these.
#
# Needs: root (debootstrap), docker, network access to the Debian mirror and
# to the crate registry. The stand-in builds run `apt-get` inside a container;
# they use the host's network (docker build --network host), which works
# whether or not the default bridge reaches the outside.
#
# CA certificates: where HTTPS egress goes through a proxy with its own CA
# (as on the machine this was written on), cargo in a container fails with
# "SSL certificate problem: self-signed certificate in certificate chain".
# So the CAs the host added locally (EXTRA_CA_DIR, default
# /usr/local/share/ca-certificates, *.crt) are added to rust:1-bookworm's
# trust store. The official image has no such thing and needs none.
#
# Idempotent: an image that already exists is skipped unless FORCE=1.
#
#   bash scripts/docker-base-images.sh
#   FORCE=1 bash scripts/docker-base-images.sh
#   DEBIAN_MIRROR=http://mirror.example/debian bash scripts/docker-base-images.sh
#     (default: debootstrap's own default mirror)
set -euo pipefail

FORCE=${FORCE:-0}
MIRROR=${DEBIAN_MIRROR:-}
EXTRA_CA_DIR=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
RUSTUP_SRC=${RUSTUP_HOME:-${HOME:-/root}/.rustup}
CARGO_SRC=${CARGO_HOME:-${HOME:-/root}/.cargo}

BASE=debian:bookworm-slim
RUST=rust:1-bookworm
ETCD=quay.io/coreos/etcd:v3.4.23
REDIS=redis:7.0
# The PATH the official Debian images set.
STD_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { printf 'docker-base-images: %s\n' "$*" >&2; }

wanted() {
    if [[ $FORCE != 1 ]] && docker image inspect "$1" >/dev/null 2>&1; then
        log "$1 exists, skipped (FORCE=1 rebuilds)"
        return 1
    fi
    return 0
}

WORK=$(mktemp -d)
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT

build_base() {
    if ! command -v debootstrap >/dev/null 2>&1; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap
    fi
    local root=$WORK/rootfs
    log "debootstrap --variant=minbase bookworm ${MIRROR:-(default mirror)}"
    # $MIRROR unquoted on purpose: empty = no argument = debootstrap's default.
    # shellcheck disable=SC2086
    debootstrap --variant=minbase bookworm "$root" $MIRROR >"$WORK/debootstrap.log" 2>&1 || {
        tail -n 30 "$WORK/debootstrap.log" >&2
        return 1
    }
    # Slim like the official image: no package cache, no package lists.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
        "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
    log "importing $BASE"
    tar -C "$root" -c . | docker import \
        -c "ENV PATH=$STD_PATH" -c 'CMD ["bash"]' - "$BASE" >/dev/null
    rm -rf "$root"
}

build_rust() {
    local ctx=$WORK/rust toolchain
    toolchain=$(RUSTUP_HOME=$RUSTUP_SRC "$CARGO_SRC/bin/rustup" default | awk '{print $1}')
    case $toolchain in
        stable-*) ;;
        *) log "the host's default toolchain is $toolchain, expected stable-*"; return 1 ;;
    esac
    log "rust: copying the host toolchain $toolchain (without its docs)"
    mkdir -p "$ctx/rustup/toolchains" "$ctx/cargo/bin"
    # The toolchain only; share/doc is ~800 MB of HTML nobody builds with.
    tar -C "$RUSTUP_SRC/toolchains" --exclude="$toolchain/share/doc" -c "$toolchain" \
        | tar -C "$ctx/rustup/toolchains" -x
    cat >"$ctx/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$toolchain"
profile = "minimal"
auto_self_update = "disable"

[overrides]
EOF
    # rustup is the one real binary; cargo, rustc, ... are links to it.
    cp -a "$CARGO_SRC/bin/." "$ctx/cargo/bin/"
    mkdir -p "$ctx/extra-ca"
    if compgen -G "$EXTRA_CA_DIR/*.crt" >/dev/null; then
        log "rust: adding the host's local CA certificates from $EXTRA_CA_DIR"
        cp "$EXTRA_CA_DIR"/*.crt "$ctx/extra-ca/"
    fi
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \\
      build-essential pkg-config ca-certificates curl git libssl-dev \\
 && rm -rf /var/lib/apt/lists/*
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:$STD_PATH
COPY extra-ca/ /usr/local/share/ca-certificates/
RUN update-ca-certificates
COPY rustup /usr/local/rustup
COPY cargo /usr/local/cargo
RUN chmod -R a+w /usr/local/rustup /usr/local/cargo \\
 && rustup --version && cargo --version && rustc --version
EOF
    log "building $RUST"
    docker build --network host -q -t "$RUST" "$ctx" >/dev/null
    rm -rf "$ctx"
}

build_pkg_image() { # name, packages, user, workdir, cmd
    local ctx=$WORK/pkg
    mkdir -p "$ctx"
    cat >"$ctx/Dockerfile" <<EOF
FROM $BASE
RUN apt-get update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $2 \\
 && rm -rf /var/lib/apt/lists/* \\
 && mkdir -p $4 && chown $3 $4
USER $3
WORKDIR $4
CMD $5
EOF
    log "building $1 ($2)"
    docker build --network host -q -t "$1" "$ctx" >/dev/null
    rm -rf "$ctx"
}

command -v docker >/dev/null 2>&1 || { log "docker is not installed"; exit 1; }
if wanted "$BASE"; then build_base; fi
if wanted "$RUST"; then build_rust; fi
# Debian's etcd-server is 3.4.23; the official image's CMD is /usr/local/bin/etcd.
if wanted "$ETCD"; then
    build_pkg_image "$ETCD" "etcd-server etcd-client" etcd /var/lib/etcd '["etcd"]'
fi
# Debian's redis-server is 7.0.x; the official image runs as redis in /data.
if wanted "$REDIS"; then
    build_pkg_image "$REDIS" "redis-server redis-tools" redis /data '["redis-server", "--protected-mode", "no"]'
fi
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' \
    | grep -E "^($BASE|$RUST|$ETCD|$REDIS)  " >&2 || true
