//! Parameters CONFIG GET / CONFIG SET see. Our own options are validated and
//! take effect; Redis's tuning options that mean nothing here (encodings,
//! persistence, ...) are accepted, validated by kind and reported back, so
//! tools and test suites that set them keep working.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::config::{Config, ProtectedAction};
use crate::engine::EvictionPolicy;
use crate::util::number::{parse_i64, parse_memory};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Memory,
    Int,
    Bool,
    Str,
    Policy,
    LogLevel,
    /// A memory value of at least 1mb, as Redis bounds it.
    QueryBufferLimit,
    /// Set only at startup.
    Immutable,
}

/// (name, kind, default). Names are Redis's.
const PARAMS: &[(&str, Kind, &str)] = &[
    ("bind", Kind::Immutable, "127.0.0.1"),
    ("port", Kind::Immutable, "6379"),
    ("requirepass", Kind::Str, ""),
    ("maxmemory", Kind::Memory, "0"),
    ("maxmemory-policy", Kind::Policy, "noeviction"),
    ("maxmemory-samples", Kind::Int, "5"),
    ("maxclients", Kind::Int, "10000"),
    ("proto-max-bulk-len", Kind::Memory, "536870912"),
    ("timeout", Kind::Int, "0"),
    ("loglevel", Kind::LogLevel, "notice"),
    ("databases", Kind::Immutable, "16"),
    ("notify-keyspace-events", Kind::Str, ""),
    ("hz", Kind::Int, "10"),
    ("lfu-log-factor", Kind::Int, "10"),
    ("lfu-decay-time", Kind::Int, "1"),
    ("hash-max-listpack-entries", Kind::Int, "128"),
    ("hash-max-listpack-value", Kind::Int, "64"),
    ("hash-max-ziplist-entries", Kind::Int, "128"),
    ("hash-max-ziplist-value", Kind::Int, "64"),
    ("list-max-listpack-size", Kind::Int, "-2"),
    ("list-max-ziplist-size", Kind::Int, "-2"),
    ("list-compress-depth", Kind::Int, "0"),
    ("set-max-intset-entries", Kind::Int, "512"),
    ("set-max-listpack-entries", Kind::Int, "128"),
    ("set-max-listpack-value", Kind::Int, "64"),
    ("zset-max-listpack-entries", Kind::Int, "128"),
    ("zset-max-listpack-value", Kind::Int, "64"),
    ("zset-max-ziplist-entries", Kind::Int, "128"),
    ("zset-max-ziplist-value", Kind::Int, "64"),
    ("stream-node-max-bytes", Kind::Memory, "4096"),
    ("hll-sparse-max-bytes", Kind::Memory, "3000"),
    ("stream-node-max-entries", Kind::Int, "100"),
    ("activerehashing", Kind::Bool, "yes"),
    ("active-expire-effort", Kind::Int, "1"),
    ("lazyfree-lazy-eviction", Kind::Bool, "no"),
    ("lazyfree-lazy-expire", Kind::Bool, "no"),
    ("lazyfree-lazy-server-del", Kind::Bool, "no"),
    ("lazyfree-lazy-user-del", Kind::Bool, "no"),
    ("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    ("appendonly", Kind::Bool, "no"),
    ("appendfsync", Kind::Str, "everysec"),
    ("save", Kind::Str, ""),
    ("dir", Kind::Str, "/tmp"),
    ("dbfilename", Kind::Str, "dump.rdb"),
    ("lua-time-limit", Kind::Int, "5000"),
    ("busy-reply-threshold", Kind::Int, "5000"),
    ("slowlog-log-slower-than", Kind::Int, "10000"),
    ("slowlog-max-len", Kind::Int, "128"),
    ("latency-monitor-threshold", Kind::Int, "0"),
    ("latency-tracking", Kind::Bool, "yes"),
    ("latency-tracking-info-percentiles", Kind::Str, "50 99 99.9"),
    (
        "client-query-buffer-limit",
        Kind::QueryBufferLimit,
        "1073741824",
    ),
    (
        "client-output-buffer-limit",
        Kind::Str,
        "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60",
    ),
    ("tracking-table-max-keys", Kind::Int, "1000000"),
    ("replica-read-only", Kind::Bool, "yes"),
    ("repl-backlog-size", Kind::Memory, "1048576"),
    ("close-on-replica-write", Kind::Bool, "yes"),
    ("enable-debug-command", Kind::Immutable, "no"),
    ("protected-mode", Kind::Bool, "yes"),
    ("tcp-keepalive", Kind::Int, "300"),
    ("io-threads", Kind::Immutable, "1"),
    ("daemonize", Kind::Immutable, "no"),
    ("appenddirname", Kind::Immutable, "appendonlydir"),
    // RESTORE always validates its payload fully; accepted for compatibility.
    ("sanitize-dump-payload", Kind::Str, "no"),
];

/// Old names Redis still accepts for the same settings.
const ALIASES: &[(&str, &str)] = &[
    ("hash-max-ziplist-entries", "hash-max-listpack-entries"),
    ("hash-max-ziplist-value", "hash-max-listpack-value"),
    ("zset-max-ziplist-entries", "zset-max-listpack-entries"),
    ("zset-max-ziplist-value", "zset-max-listpack-value"),
    ("list-max-ziplist-size", "list-max-listpack-size"),
    ("lua-time-limit", "busy-reply-threshold"),
];

pub struct RuntimeConfig {
    values: RwLock<BTreeMap<&'static str, String>>,
    /// The password, changed together with `requirepass_set` under the
    /// `values` write lock: no instant exists in which a password is set but
    /// any password would be accepted.
    password: RwLock<Option<Box<[u8]>>>,
    requirepass_set: AtomicBool,
    pub proto_max_bulk_len: AtomicU64,
    pub maxclients: AtomicU64,
    pub timeout: AtomicU64,
    pub protected_mode: AtomicBool,
    pub client_query_buffer_limit: AtomicU64,
    /// Milliseconds a script runs before other clients get `-BUSY`.
    pub busy_reply_threshold: AtomicU64,
    /// `stream-node-max-entries` / `-bytes`, read by every XADD (a lookup
    /// by name and a parse cost a third of an XADD).
    pub stream_node_max_entries: AtomicI64,
    pub stream_node_max_bytes: AtomicI64,
    /// Who may run DEBUG (immutable, as in Redis).
    pub enable_debug_command: ProtectedAction,
}

impl RuntimeConfig {
    pub fn new(config: &Config, addr: SocketAddr) -> Self {
        let mut values: BTreeMap<&'static str, String> =
            PARAMS.iter().map(|(n, _, d)| (*n, d.to_string())).collect();
        values.insert("bind", config.bind.clone());
        values.insert("port", addr.port().to_string());
        values.insert(
            "requirepass",
            config.requirepass.clone().unwrap_or_default(),
        );
        values.insert("maxmemory", config.maxmemory.to_string());
        values.insert(
            "maxmemory-policy",
            config.maxmemory_policy.name().to_string(),
        );
        values.insert("maxclients", config.maxclients.to_string());
        values.insert("databases", config.databases.to_string());
        values.insert("proto-max-bulk-len", config.proto_max_bulk_len.to_string());
        values.insert("timeout", config.timeout.to_string());
        let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
        values.insert("protected-mode", yes_no(config.protected_mode));
        values.insert(
            "enable-debug-command",
            config.enable_debug_command.name().to_string(),
        );
        values.insert(
            "client-query-buffer-limit",
            config.client_query_buffer_limit.to_string(),
        );
        let int = |name: &str, default: i64| {
            values
                .get(name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let stream_node_max_entries = AtomicI64::new(int("stream-node-max-entries", 100));
        let stream_node_max_bytes = AtomicI64::new(int("stream-node-max-bytes", 4096));
        RuntimeConfig {
            stream_node_max_entries,
            stream_node_max_bytes,
            values: RwLock::new(values),
            password: RwLock::new(
                config
                    .requirepass
                    .as_ref()
                    .map(|p| p.as_bytes().to_vec().into_boxed_slice()),
            ),
            requirepass_set: AtomicBool::new(config.requirepass.is_some()),
            proto_max_bulk_len: AtomicU64::new(config.proto_max_bulk_len),
            maxclients: AtomicU64::new(config.maxclients),
            timeout: AtomicU64::new(config.timeout),
            protected_mode: AtomicBool::new(config.protected_mode),
            client_query_buffer_limit: AtomicU64::new(config.client_query_buffer_limit),
            busy_reply_threshold: AtomicU64::new(5000),
            enable_debug_command: config.enable_debug_command,
        }
    }

    pub fn requirepass_set(&self) -> bool {
        self.requirepass_set.load(Ordering::Acquire)
    }

    /// Whether `pass` is the password (`Some(true)` / `Some(false)`),
    /// compared in time independent of where they differ; `None` when no
    /// password is set (every password is accepted then, as for Redis's
    /// `nopass` user). One read: a caller deciding on both answers sees
    /// one state, never a password set by one check and gone by the next.
    pub fn check_password(&self, pass: &[u8]) -> Option<bool> {
        self.password
            .read()
            .as_deref()
            .map(|p| constant_time_eq(p, pass))
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.values.read().get(name).cloned()
    }

    /// Pairs whose name matches the glob pattern (case-insensitive), sorted by name.
    pub fn matching(&self, pattern: &[u8]) -> Vec<(String, String)> {
        let v = self.values.read();
        v.iter()
            .filter(|(k, _)| crate::util::glob::glob_match(pattern, k.as_bytes(), true))
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    /// Checks a new value; returns the canonical text to store.
    pub fn validate(&self, name: &str, value: &str) -> Result<(&'static str, String), String> {
        let lname = name.to_ascii_lowercase();
        let Some((n, kind, _)) = PARAMS.iter().find(|(n, _, _)| *n == lname) else {
            return Err(format!(
                "ERR Unknown option or number of arguments for CONFIG SET - '{name}'"
            ));
        };
        let fail = |why: &str| {
            format!("ERR CONFIG SET failed (possibly related to argument '{n}') - {why}")
        };
        let canon = match kind {
            Kind::Immutable => return Err(fail("can't set immutable config")),
            Kind::Memory => match parse_memory(value.as_bytes()) {
                Some(v) => v.to_string(),
                None => return Err(fail("argument must be a memory value")),
            },
            Kind::QueryBufferLimit => match parse_memory(value.as_bytes()) {
                Some(v) if v >= 1024 * 1024 && v <= i64::MAX as u64 => v.to_string(),
                Some(_) => {
                    return Err(fail(
                        "argument must be between 1048576 and 9223372036854775807 inclusive",
                    ))
                }
                None => return Err(fail("argument must be a memory value")),
            },
            Kind::Int => match parse_i64(value.as_bytes()) {
                Some(v) => v.to_string(),
                None => return Err(fail("argument couldn't be parsed into an integer")),
            },
            Kind::Bool => match value.to_ascii_lowercase().as_str() {
                "yes" | "no" => value.to_ascii_lowercase(),
                _ => return Err(fail("argument must be 'yes' or 'no'")),
            },
            Kind::Policy => match EvictionPolicy::parse(value) {
                Some(p) => p.name().to_string(),
                None => return Err(fail("argument(s) must be one of the following: volatile-lru, allkeys-lru, volatile-lfu, allkeys-lfu, volatile-random, allkeys-random, volatile-ttl, noeviction")),
            },
            Kind::LogLevel => match value.to_ascii_lowercase().as_str() {
                l @ ("debug" | "verbose" | "notice" | "warning" | "nothing") => l.to_string(),
                _ => return Err(fail("argument(s) must be one of the following: debug, verbose, notice, warning, nothing")),
            },
            Kind::Str if *n == "notify-keyspace-events" => match super::hooks::notify::parse(value) {
                Some(f) => super::hooks::notify::to_string(f),
                None => return Err(fail("Invalid event class character. Use 'Ag$lshzxeKEtmdn'.")),
            },
            Kind::Str if *n == "sanitize-dump-payload" => match value.to_ascii_lowercase().as_str() {
                v @ ("no" | "yes" | "clients") => v.to_string(),
                _ => return Err(fail("argument(s) must be one of the following: no, yes, clients")),
            },
            Kind::Str => value.to_string(),
        };
        Ok((n, canon))
    }

    /// Stores a validated value and updates the fast-path mirrors.
    pub fn store(&self, name: &'static str, value: String) {
        let mut values = self.values.write();
        match name {
            "requirepass" => {
                // Password first, then the flag (and the reverse to clear):
                // a reader never sees the flag set without the password.
                let mut p = self.password.write();
                if value.is_empty() {
                    self.requirepass_set.store(false, Ordering::Release);
                    *p = None;
                } else {
                    *p = Some(value.as_bytes().to_vec().into_boxed_slice());
                    self.requirepass_set.store(true, Ordering::Release);
                }
            }
            "protected-mode" => self.protected_mode.store(value == "yes", Ordering::Relaxed),
            "client-query-buffer-limit" => self
                .client_query_buffer_limit
                .store(value.parse().unwrap_or(1 << 30), Ordering::Relaxed),
            "proto-max-bulk-len" => self
                .proto_max_bulk_len
                .store(value.parse().unwrap_or(512 << 20), Ordering::Relaxed),
            "maxclients" => self
                .maxclients
                .store(value.parse().unwrap_or(10000), Ordering::Relaxed),
            "timeout" => self
                .timeout
                .store(value.parse().unwrap_or(0), Ordering::Relaxed),
            "stream-node-max-entries" => self
                .stream_node_max_entries
                .store(value.parse().unwrap_or(100), Ordering::Relaxed),
            "stream-node-max-bytes" => self
                .stream_node_max_bytes
                .store(value.parse().unwrap_or(4096), Ordering::Relaxed),
            "busy-reply-threshold" | "lua-time-limit" => self.busy_reply_threshold.store(
                value.parse::<i64>().unwrap_or(5000).max(0) as u64,
                Ordering::Relaxed,
            ),
            _ => {}
        }
        for (old, new) in ALIASES {
            if name == *old {
                values.insert(new, value.clone());
            } else if name == *new {
                values.insert(old, value.clone());
            }
        }
        values.insert(name, value);
    }
}

/// Compares two byte strings in time that depends only on their lengths,
/// not on where they differ (Redis's `time_independent_strcmp` serves the
/// same purpose).
pub fn constant_time_eq(expected: &[u8], given: &[u8]) -> bool {
    let mut diff = (expected.len() != given.len()) as u8;
    for (i, &e) in expected.iter().enumerate() {
        // Compare against a byte of `given` whatever its length, so the loop
        // always runs over the whole expected value.
        let g = given.get(i).copied().unwrap_or(!e);
        diff |= e ^ g;
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(constant_time_eq(b"", b""));
        for other in [&b"secreT"[..], b"secre", b"secrets", b"", b"\0ecret"] {
            assert!(!constant_time_eq(b"secret", other), "{other:?}");
        }
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn password_and_flag_change_together() {
        let rc = RuntimeConfig::new(&Config::default(), "127.0.0.1:0".parse().unwrap());
        assert!(!rc.requirepass_set());
        assert_eq!(rc.check_password(b"anything"), None);
        rc.store("requirepass", "p1".into());
        assert!(rc.requirepass_set());
        assert_eq!(rc.check_password(b"p1"), Some(true));
        assert_eq!(rc.check_password(b"anything"), Some(false));
        assert_eq!(rc.check_password(b""), Some(false));
        rc.store("requirepass", String::new());
        assert!(!rc.requirepass_set());
        assert_eq!(rc.get("requirepass").as_deref(), Some(""));
    }
}
