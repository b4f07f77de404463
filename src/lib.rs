//! jcache: a Redis-protocol cache server.
//!
//! Layout (see ARCHITECTURE.md for the invariants):
//! - [`protocol`]: RESP request parsing and reply encoding; knows nothing else.
//! - [`engine`]: the sharded in-memory keyspace, expiry, eviction, `Mutation`s; knows nothing of RESP.
//! - [`rdb`]: Redis's DUMP payload codec (RDB object encodings, LZF, CRC-64); pure, knows only the engine's values.
//! - [`commands`]: the command table; parses arguments, reads the engine, applies mutations, writes replies.
//! - [`state`]: what every connection shares (keyspace, clients, Pub/Sub, registries, runtime config).
//! - [`script`]: Lua as Redis runs it; commands reach it through a `Host`.
//! - [`server`]: TCP accept loop, connections, graceful shutdown.
//! - [`cluster`]: etcd election, mutation-log replication over gRPC, follower write forwarding.
//! - [`config`]: the one `Config` (file, env, CLI).
//! - [`tier`]: the tiered engine (local memory in front of an upstream Redis), installed as the dispatcher's `Router`.
//! - [`metrics`]: the operations port: `/metrics` (Prometheus text), `/healthz`, `/readyz`.
//! - [`util`]: Redis-exact glob matching and number text rules.

pub mod cluster;
pub mod commands;
pub mod config;
pub mod engine;
pub mod metrics;
pub mod protocol;
pub mod rdb;
pub mod script;
pub mod server;
pub mod state;
pub mod tier;
pub mod util;
