# jcache container image: multi-stage, the runtime holds only the binary.
#
#   docker build -t jcache:local .
#   docker run --rm -p 127.0.0.1:6379:6379 jcache:local
#
# Works with the classic builder (no BuildKit features). Dependencies are
# compiled in their own layer, so a change under src/ recompiles jcache only.

FROM rust:1-bookworm AS build
# protoc for build.rs (proto/replication.proto, tonic-prost-build);
# libprotobuf-dev for google/protobuf/*.proto, which etcd-client's build imports.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      protobuf-compiler libprotobuf-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# .cargo/config.toml sets --cfg tokio_unstable; it must be in the build.
COPY .cargo .cargo
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
# build.rs also compiles this C file (INCRBYFLOAT's long double arithmetic).
COPY src/util/longdouble.c src/util/longdouble.c
# Dependencies only, against stub sources.
RUN echo 'fn main() {}' > src/main.rs \
 && touch src/lib.rs \
 && cargo build --release --locked \
 && rm -rf src
COPY src src
# COPY keeps the files' times, which may predate the stub build: touch them.
RUN find src -name '*.rs' -exec touch {} + \
 && cargo build --release --locked \
 && cp target/release/jcache /jcache

FROM debian:bookworm-slim
RUN useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin jcache
COPY --from=build /jcache /usr/local/bin/jcache
USER jcache
# 6379: clients (RESP). 7379: cluster gRPC (replication between nodes).
# 9121: metrics and probes (HTTP), when run with --metrics-port 9121.
EXPOSE 6379 7379 9121
ENTRYPOINT ["jcache"]
CMD ["--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no"]
