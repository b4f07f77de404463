//! The one configuration: defaults, then the TOML file, then `JCACHE_*`
//! environment variables, then the command line (each overrides the last).
//! Only `main.rs` calls [`Config::load`]; the rest of the code receives a
//! validated `Config`.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

use crate::engine::EvictionPolicy;
use crate::util::number::parse_memory;

/// Command-line options. Every option can also be set with `JCACHE_<NAME>`
/// (upper case, `-` -> `_`) or in the config file (same name, `-` -> `_`).
#[derive(Parser, Debug, Default, Clone)]
#[command(
    name = "jcache",
    version,
    about = "A tiered, replicated Redis-protocol cache server"
)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, env = "JCACHE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Validate the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
    /// TCP port to listen on (0 = pick a free port). Default 6379.
    #[arg(long, env = "JCACHE_PORT")]
    pub port: Option<u16>,
    /// Address to bind. Default 127.0.0.1.
    #[arg(long, env = "JCACHE_BIND")]
    pub bind: Option<String>,
    /// Password clients must AUTH with.
    #[arg(long, env = "JCACHE_REQUIREPASS")]
    pub requirepass: Option<String>,
    /// Protected mode (yes/no): while no password is set, only loopback
    /// clients (127.0.0.1, ::1) are served; others get -DENIED. Default yes.
    #[arg(long, env = "JCACHE_PROTECTED_MODE")]
    pub protected_mode: Option<String>,
    /// Who may run DEBUG: no, local (loopback clients only) or yes. Default no.
    #[arg(long, env = "JCACHE_ENABLE_DEBUG_COMMAND")]
    pub enable_debug_command: Option<String>,
    /// Most bytes a client may have buffered as unprocessed input (requests
    /// being read, and a MULTI's queued commands); the client is closed past
    /// it. Default 1gb.
    #[arg(long, env = "JCACHE_CLIENT_QUERY_BUFFER_LIMIT")]
    pub client_query_buffer_limit: Option<String>,
    /// Memory limit for the keyspace (bytes, or 100mb, 1gb, ...); 0 = unlimited.
    #[arg(long, env = "JCACHE_MAXMEMORY")]
    pub maxmemory: Option<String>,
    /// Eviction policy when maxmemory is reached.
    #[arg(long, env = "JCACHE_MAXMEMORY_POLICY")]
    pub maxmemory_policy: Option<String>,
    /// Maximum simultaneous clients. Default 10000.
    #[arg(long, env = "JCACHE_MAXCLIENTS")]
    pub maxclients: Option<u64>,
    /// Number of databases (SELECT 0 to n-1). Default 16.
    #[arg(long, env = "JCACHE_DATABASES")]
    pub databases: Option<u64>,
    /// Largest bulk string a client may send. Default 512mb.
    #[arg(long, env = "JCACHE_PROTO_MAX_BULK_LEN")]
    pub proto_max_bulk_len: Option<String>,
    /// Close idle clients after this many seconds (0 = never).
    #[arg(long, env = "JCACHE_TIMEOUT")]
    pub timeout: Option<u64>,
    /// Log level: error, warn, info, debug, trace. Default info.
    #[arg(long, env = "JCACHE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text or json. Default text.
    #[arg(long, env = "JCACHE_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Worker threads serving clients. Default: one per CPU but one (at
    /// least one).
    #[arg(long, env = "JCACHE_THREADS")]
    pub threads: Option<usize>,
    /// A storage tier, fastest first: `memory` or `redis://[user:pass@]host:port[/db]`
    /// (repeatable; env: comma-separated). Default: memory alone.
    #[arg(long = "tier", env = "JCACHE_TIER", value_delimiter = ',')]
    pub tier: Vec<String>,
    /// Longest time a key copied from an upstream tier lives locally (e.g. 60s, 500ms). Default 60s.
    #[arg(long, env = "JCACHE_LOCAL_TTL_MAX")]
    pub local_ttl_max: Option<String>,
    /// How long a key found absent upstream is remembered as absent (0 = off). Default 0.
    #[arg(long, env = "JCACHE_NEGATIVE_CACHE_TTL")]
    pub negative_cache_ttl: Option<String>,
    /// Connect and command timeout for the upstream tier. Default 1s.
    #[arg(long, env = "JCACHE_UPSTREAM_TIMEOUT")]
    pub upstream_timeout: Option<String>,
    /// How the upstream tells this node of changed keys: `default` (Redis
    /// remembers each key this node copied) or `bcast` (Redis remembers
    /// nothing per client and sends every change of a key under the
    /// prefixes; for large fleets of sidecars). Default: default.
    #[arg(long, env = "JCACHE_UPSTREAM_TRACKING")]
    pub upstream_tracking: Option<String>,
    /// With `--upstream-tracking bcast`: the key prefixes to cache (and be
    /// told about); keys outside them are never cached locally. None: every
    /// key (repeatable; env: comma-separated).
    #[arg(
        long = "upstream-tracking-prefix",
        env = "JCACHE_UPSTREAM_TRACKING_PREFIX",
        value_delimiter = ','
    )]
    pub upstream_tracking_prefix: Vec<String>,
    /// `rediss://` upstream: CA certificates (PEM) to verify it with.
    /// Default: the system's.
    #[arg(long, env = "JCACHE_UPSTREAM_TLS_CA")]
    pub upstream_tls_ca: Option<PathBuf>,
    /// `rediss://` upstream: this client's certificate (PEM), with
    /// `--upstream-tls-key`.
    #[arg(long, env = "JCACHE_UPSTREAM_TLS_CERT")]
    pub upstream_tls_cert: Option<PathBuf>,
    /// `rediss://` upstream: this client's private key (PEM).
    #[arg(long, env = "JCACHE_UPSTREAM_TLS_KEY")]
    pub upstream_tls_key: Option<PathBuf>,
    /// Cluster mode: etcd endpoints (comma-separated). Without it the node is standalone.
    #[arg(long, env = "JCACHE_CLUSTER_ETCD")]
    pub cluster_etcd: Option<String>,
    /// Cluster name (etcd key prefix). Default jcache.
    #[arg(long, env = "JCACHE_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// This node's id. Default: generated, stable for the process.
    #[arg(long, env = "JCACHE_NODE_ID")]
    pub node_id: Option<String>,
    /// gRPC port for replication (0 = pick a free port). Default 7379.
    #[arg(long, env = "JCACHE_CLUSTER_PORT")]
    pub cluster_port: Option<u16>,
    /// HOST:PORT peers dial for gRPC (required when binding 0.0.0.0).
    #[arg(long, env = "JCACHE_CLUSTER_ADVERTISE")]
    pub cluster_advertise: Option<String>,
    /// etcd lease time to live (3s, 1500ms, or seconds). Default 3s.
    #[arg(long, env = "JCACHE_CLUSTER_LEASE_TTL")]
    pub cluster_lease_ttl: Option<String>,
    /// Shared secrets of the cluster port: the first is sent, any one is
    /// accepted (rotation: `new,old`, then `new`). Repeatable; comma-separated.
    /// Required in cluster mode unless --cluster-insecure.
    #[arg(long, env = "JCACHE_CLUSTER_SECRET", value_delimiter = ',')]
    pub cluster_secret: Option<Vec<String>>,
    /// Run cluster mode without a secret: any host that reaches the cluster
    /// port can read the whole keyspace and write to it.
    #[arg(
        long,
        env = "JCACHE_CLUSTER_INSECURE",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub cluster_insecure: Option<bool>,
    /// Replication backlog size (bytes, or 64mb, ...). Default 64mb.
    #[arg(long, env = "JCACHE_CLUSTER_BACKLOG_SIZE")]
    pub cluster_backlog_size: Option<String>,
    /// Port of the HTTP endpoint serving `/metrics` (Prometheus text),
    /// `/healthz` and `/readyz` (0 = pick a free port). Default: off.
    #[arg(long, env = "JCACHE_METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Address the metrics port binds. Default: the client bind address.
    #[arg(long, env = "JCACHE_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Tests only, debug builds only, not documented for users: this node
    /// speaks only this replication protocol version (simulates an older or
    /// newer peer in tests/cluster.rs).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true, env = "JCACHE_CLUSTER_TEST_PROTOCOL_VERSION")]
    pub cluster_test_protocol_version: Option<u32>,
    /// Tests only, debug builds only, not documented for users: the root
    /// below which the cgroup memory limit is read (fixture files).
    #[cfg(debug_assertions)]
    #[arg(long, hide = true, env = "JCACHE_TEST_CGROUP_ROOT")]
    pub test_cgroup_root: Option<PathBuf>,
}

/// The config file's shape (every field optional).
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    port: Option<u16>,
    bind: Option<String>,
    requirepass: Option<String>,
    protected_mode: Option<toml::Value>,
    enable_debug_command: Option<String>,
    client_query_buffer_limit: Option<toml::Value>,
    maxmemory: Option<toml::Value>,
    maxmemory_policy: Option<String>,
    maxclients: Option<u64>,
    databases: Option<u64>,
    proto_max_bulk_len: Option<toml::Value>,
    timeout: Option<u64>,
    log_level: Option<String>,
    log_format: Option<String>,
    threads: Option<usize>,
    tier: Option<Vec<String>>,
    local_ttl_max: Option<toml::Value>,
    negative_cache_ttl: Option<toml::Value>,
    upstream_timeout: Option<toml::Value>,
    upstream_tracking: Option<String>,
    upstream_tracking_prefixes: Option<Vec<String>>,
    upstream_tls_ca: Option<PathBuf>,
    upstream_tls_cert: Option<PathBuf>,
    upstream_tls_key: Option<PathBuf>,
    cluster_etcd: Option<toml::Value>,
    cluster_name: Option<String>,
    node_id: Option<String>,
    cluster_port: Option<u16>,
    cluster_advertise: Option<String>,
    cluster_lease_ttl: Option<toml::Value>,
    cluster_secret: Option<toml::Value>,
    cluster_insecure: Option<bool>,
    cluster_backlog_size: Option<toml::Value>,
    metrics_port: Option<u16>,
    metrics_bind: Option<String>,
}

/// A URL as it may be shown (errors, logs, INFO): the password of its user
/// information (everything up to the last `@`; all of it when it has no
/// `:`), and `password=`/`pass=` query values, replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(scheme_end + 3);
    let mut out = head.to_string();
    let rest = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str("***"),
            }
            &rest[at..]
        }
        None => rest,
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _))
                        if k.eq_ignore_ascii_case("password") || k.eq_ignore_ascii_case("pass") =>
                    {
                        format!("{k}=***")
                    }
                    _ => kv.to_string(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(rest),
    }
    out
}

/// One configured storage tier.
#[derive(Clone, PartialEq, Eq)]
pub enum TierSpec {
    /// The local in-memory engine.
    Memory,
    /// An upstream Redis server (the URL as given).
    Redis(String),
}

/// Shows the URL with its password redacted (a `Config` printed for
/// debugging must not reveal it).
impl std::fmt::Debug for TierSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TierSpec::Memory => f.write_str("Memory"),
            TierSpec::Redis(url) => f.debug_tuple("Redis").field(&redact_url(url)).finish(),
        }
    }
}

impl TierSpec {
    fn parse(s: &str) -> Result<TierSpec, ConfigError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("memory") {
            return Ok(TierSpec::Memory);
        }
        if s.starts_with(SENTINEL_SCHEME) || s.starts_with(SENTINEL_TLS_SCHEME) {
            SentinelUrl::parse(s)?;
            return Ok(TierSpec::Redis(s.to_string()));
        }
        if is_cluster_url(s) {
            ClusterUrl::parse(s)?;
            return Ok(TierSpec::Redis(s.to_string()));
        }
        if s.starts_with("redis://") || s.starts_with("rediss://") {
            refuse_db_path(s)?;
            let info: Result<redis::ConnectionInfo, _> =
                redis::IntoConnectionInfo::into_connection_info(s);
            return match info {
                Ok(_) => Ok(TierSpec::Redis(s.to_string())),
                Err(e) => Err(ConfigError::Invalid(
                    "tier",
                    format!("{}: {}", redact_url(s), redact_url(&e.to_string())),
                )),
            };
        }
        Err(ConfigError::Invalid(
            "tier",
            format!(
                "{}: expected 'memory', 'redis[s]://host:port', \
                 'redis[s]+sentinel://host:port[,host:port...]/master-name' or \
                 'redis[s]+cluster://host:port[,host:port...]'",
                redact_url(s)
            ),
        ))
    }
}

/// The scheme of an upstream found through Redis Sentinel.
pub const SENTINEL_SCHEME: &str = "redis+sentinel://";
/// The same over TLS (to the sentinels and to the primary).
pub const SENTINEL_TLS_SCHEME: &str = "rediss+sentinel://";

/// The scheme of an upstream Redis Cluster (seed nodes after it).
pub const CLUSTER_SCHEME: &str = "redis+cluster://";
/// The same over TLS (to every node).
pub const CLUSTER_TLS_SCHEME: &str = "rediss+cluster://";

/// Whether an upstream URL names a Redis Cluster.
pub fn is_cluster_url(url: &str) -> bool {
    url.starts_with(CLUSTER_SCHEME) || url.starts_with(CLUSTER_TLS_SCHEME)
}

/// `redis+cluster://[user:pass@]host:port[,host:port...]`: seed nodes of a
/// Redis Cluster (any node; the slot map is asked from them), and the
/// credentials for every node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterUrl {
    /// `host:port` of each seed (port 6379 if none is given).
    pub seeds: Vec<String>,
    /// `user:pass@` or empty, for every node's URL.
    pub userinfo: String,
    /// `rediss+cluster://`: TLS to every node.
    pub tls: bool,
}

impl ClusterUrl {
    pub fn parse(url: &str) -> Result<ClusterUrl, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid("tier", format!("{}: {why}", redact_url(url)));
        let (tls, rest) = match url.strip_prefix(CLUSTER_SCHEME) {
            Some(rest) => (false, rest),
            None => (
                true,
                url.strip_prefix(CLUSTER_TLS_SCHEME)
                    .ok_or_else(|| bad("not a cluster URL"))?,
            ),
        };
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (format!("{u}@"), r),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        if !path.is_empty() {
            return Err(bad(&format!(
                "a path in the URL ('/{path}') is not allowed: a Redis Cluster has \
                 database 0 only"
            )));
        }
        let mut seeds = Vec::new();
        for h in hosts.split(',') {
            let h = h.trim();
            if h.is_empty() {
                return Err(bad("an empty seed address"));
            }
            let has_port = match h.rsplit_once(':') {
                Some((host, port)) if !host.is_empty() && !port.contains(']') => {
                    port.parse::<u16>()
                        .map_err(|_| bad(&format!("bad seed port in '{h}'")))?;
                    true
                }
                _ => false,
            };
            seeds.push(if has_port {
                h.to_string()
            } else {
                format!("{h}:6379")
            });
        }
        Ok(ClusterUrl {
            seeds,
            userinfo,
            tls,
        })
    }
}

/// `redis+sentinel://[user:pass@]host:port[,host:port...]/<master-name>`:
/// the sentinels to ask for the primary of `master`, and the credentials
/// (the URL's user info) for the primary itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentinelUrl {
    /// `host:port` of each sentinel (port 26379 if none is given).
    pub sentinels: Vec<String>,
    pub master: String,
    /// `user:pass@` or empty, for the primary's URL.
    pub userinfo: String,
    /// `rediss+sentinel://`: TLS to the sentinels and to the primary.
    pub tls: bool,
}

impl SentinelUrl {
    pub fn parse(url: &str) -> Result<SentinelUrl, ConfigError> {
        let bad = |why: &str| ConfigError::Invalid("tier", format!("{}: {why}", redact_url(url)));
        let (tls, rest) = match url.strip_prefix(SENTINEL_SCHEME) {
            Some(rest) => (false, rest),
            None => (
                true,
                url.strip_prefix(SENTINEL_TLS_SCHEME)
                    .ok_or_else(|| bad("not a sentinel URL"))?,
            ),
        };
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (format!("{u}@"), r),
            None => (String::new(), rest),
        };
        let (hosts, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("expected /<master-name> after the sentinels"))?;
        let mut sentinels = Vec::new();
        for h in hosts.split(',') {
            let h = h.trim();
            if h.is_empty() {
                return Err(bad("an empty sentinel address"));
            }
            let has_port = match h.rsplit_once(':') {
                // [v6]:port or host:port; a bare [v6] has no port.
                Some((host, port)) if !host.is_empty() && !port.contains(']') => {
                    port.parse::<u16>()
                        .map_err(|_| bad(&format!("bad sentinel port in '{h}'")))?;
                    true
                }
                _ => false,
            };
            sentinels.push(if has_port {
                h.to_string()
            } else {
                format!("{h}:26379")
            });
        }
        let (master, db) = match path.split_once('/') {
            Some((m, db)) => (m, Some(db)),
            None => (path, None),
        };
        if master.is_empty() || master.contains(['?', '#']) {
            return Err(bad("expected /<master-name> after the sentinels"));
        }
        if let Some(db) = db.filter(|d| !d.is_empty()) {
            return Err(bad(&format!(
                "a database in the URL ('/{db}') is not allowed: each client's database n \
                 is the upstream's database n (SELECT)"
            )));
        }
        Ok(SentinelUrl {
            sentinels,
            master: master.to_string(),
            userinfo,
            tls,
        })
    }
}

/// Refuses a database in an upstream URL (`redis://host:port/3`): a
/// client's database n is the upstream's database n, so a fixed one has no
/// meaning.
fn refuse_db_path(url: &str) -> Result<(), ConfigError> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    // After the user info, whose password may hold a '/'.
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let path = rest
        .split_once('/')
        .map_or("", |(_, p)| p)
        .split(['?', '#'])
        .next()
        .unwrap_or("");
    if path.is_empty() {
        return Ok(());
    }
    Err(ConfigError::Invalid(
        "tier",
        format!(
            "{}: a database in the URL ('/{path}') is not allowed: each client's \
             database n is the upstream's database n (SELECT)",
            redact_url(url)
        ),
    ))
}

/// Certificates for a TLS upstream (`rediss://`, `rediss+sentinel://`):
/// the files named by `--upstream-tls-ca/-cert/-key`, read by
/// [`Config::load`] (so a missing file stops the start). Debug shows the
/// paths only.
#[derive(Clone, Default)]
pub struct UpstreamTls {
    pub paths: TlsPaths,
    /// CA certificates (PEM); None: the system's roots.
    pub ca: Option<Vec<u8>>,
    /// This client's certificate and private key (PEM), for mutual TLS.
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
}

impl TlsPaths {
    fn layer(&mut self, ca: &Option<PathBuf>, cert: &Option<PathBuf>, key: &Option<PathBuf>) {
        for (to, from) in [
            (&mut self.ca, ca),
            (&mut self.cert, cert),
            (&mut self.key, key),
        ] {
            if from.is_some() {
                to.clone_from(from);
            }
        }
    }

    fn any(&self) -> bool {
        self.ca.is_some() || self.cert.is_some() || self.key.is_some()
    }
}

impl std::fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.paths.fmt(f)
    }
}

impl UpstreamTls {
    /// Checks the options against the tiers and reads the files.
    fn read(&mut self, tiers: &[TierSpec]) -> Result<(), ConfigError> {
        if !self.paths.any() {
            return Ok(());
        }
        let tls_tier = tiers
            .iter()
            .any(|t| matches!(t, TierSpec::Redis(u) if is_tls_url(u)));
        if !tls_tier {
            return Err(ConfigError::Invalid(
                "upstream-tls-ca/cert/key",
                "given, but no tier is rediss://, rediss+sentinel:// or rediss+cluster://".into(),
            ));
        }
        let file = |name: &'static str, p: &PathBuf| {
            std::fs::read(p)
                .map_err(|e| ConfigError::Invalid(name, format!("{}: {e}", p.display())))
        };
        if let Some(p) = &self.paths.ca {
            self.ca = Some(file("upstream-tls-ca", p)?);
        }
        self.client = match (&self.paths.cert, &self.paths.key) {
            (Some(c), Some(k)) => {
                Some((file("upstream-tls-cert", c)?, file("upstream-tls-key", k)?))
            }
            (None, None) => None,
            _ => {
                return Err(ConfigError::Invalid(
                    "upstream-tls-cert/key",
                    "a client certificate needs its key, and the key its certificate".into(),
                ))
            }
        };
        Ok(())
    }
}

/// Whether an upstream URL asks for TLS.
pub fn is_tls_url(url: &str) -> bool {
    url.starts_with("rediss://")
        || url.starts_with(SENTINEL_TLS_SCHEME)
        || url.starts_with(CLUSTER_TLS_SCHEME)
}

/// Who may run a protected command (Redis's `enable-debug-command`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProtectedAction {
    No,
    /// Only clients connected from 127.0.0.1 or ::1.
    Local,
    Yes,
}

impl ProtectedAction {
    pub fn parse(s: &str) -> Option<ProtectedAction> {
        match s.to_ascii_lowercase().as_str() {
            "no" => Some(ProtectedAction::No),
            "local" => Some(ProtectedAction::Local),
            "yes" => Some(ProtectedAction::Yes),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ProtectedAction::No => "no",
            ProtectedAction::Local => "local",
            ProtectedAction::Yes => "yes",
        }
    }
}

/// The share of a cgroup memory limit that an unset `maxmemory` becomes.
pub const CGROUP_MEMORY_PERCENT: u64 = 75;

/// Where a setting's value came from (INFO shows it for `maxmemory` and
/// `maxmemory-policy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingSource {
    /// jcache's default (Redis's).
    Default,
    /// The config file, the environment or the command line.
    Config,
    /// Derived from the cgroup memory limit.
    Cgroup,
    /// Changed by CONFIG SET.
    Runtime,
}

impl SettingSource {
    pub fn name(self) -> &'static str {
        match self {
            SettingSource::Default => "default",
            SettingSource::Config => "config",
            SettingSource::Cgroup => "cgroup",
            SettingSource::Runtime => "runtime",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub port: u16,
    pub bind: String,
    pub requirepass: Option<String>,
    /// While no password is set, serve only loopback clients.
    pub protected_mode: bool,
    pub enable_debug_command: ProtectedAction,
    /// Most unprocessed input bytes a client may hold (closed past it).
    pub client_query_buffer_limit: u64,
    pub maxmemory: u64,
    pub maxmemory_policy: EvictionPolicy,
    /// Where `maxmemory` came from (INFO `maxmemory_source`).
    pub maxmemory_source: SettingSource,
    /// Where `maxmemory-policy` came from (INFO `maxmemory_policy_source`).
    pub maxmemory_policy_source: SettingSource,
    pub maxclients: u64,
    /// Number of databases (fixed at start).
    pub databases: u64,
    pub proto_max_bulk_len: u64,
    pub timeout: u64,
    pub log_level: String,
    pub log_format: LogFormat,
    /// Worker threads of the runtime (0 = one per CPU but one, see
    /// [`Config::worker_threads`]).
    pub threads: usize,
    /// Storage tiers, fastest first; always starts with `Memory`.
    pub tiers: Vec<TierSpec>,
    /// Longest local lifetime of a key copied from upstream (ms; 0 = no cap).
    pub local_ttl_max_ms: u64,
    /// Negative-cache lifetime (ms; 0 = off).
    pub negative_cache_ttl_ms: u64,
    /// Upstream connect and command timeout (ms).
    pub upstream_timeout_ms: u64,
    /// Certificates for a `rediss://` upstream (read at load).
    pub upstream_tls: UpstreamTls,
    /// How the upstream reports changed keys (client tracking's mode).
    pub upstream_tracking: Tracking,
    /// Cluster mode (None = standalone).
    pub cluster: Option<ClusterConfig>,
    /// The metrics and probes HTTP port (None = off).
    pub metrics_port: Option<u16>,
    /// Where the metrics port binds (None = `bind`).
    pub metrics_bind: Option<String>,
}

/// Cluster options (`--cluster-*`); present only with `--cluster-etcd`.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub etcd: Vec<String>,
    pub name: String,
    pub node_id: String,
    /// gRPC port (0 = any free port).
    pub port: u16,
    /// What peers dial (HOST:PORT); None = the bind address and gRPC port.
    pub advertise: Option<String>,
    pub lease_ttl: std::time::Duration,
    /// Secrets of the cluster port: `secrets[0]` is sent, any one is
    /// accepted. Empty only with `insecure`.
    pub secrets: Vec<String>,
    /// No secret required (`--cluster-insecure`).
    pub insecure: bool,
    pub backlog_size: u64,
    /// Debug builds, tests only: speak only this protocol version.
    pub test_protocol_version: Option<u32>,
}

/// Cluster options as given, before validation (file and CLI layered).
#[derive(Default)]
struct ClusterRaw {
    etcd: Option<String>,
    name: Option<String>,
    node_id: Option<String>,
    port: Option<u16>,
    advertise: Option<String>,
    lease_ttl: Option<String>,
    secret: Option<String>,
    insecure: Option<bool>,
    backlog_size: Option<String>,
    test_protocol_version: Option<u32>,
}

fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| match x {
                toml::Value::String(s) => s.clone(),
                o => o.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        o => o.to_string(),
    }
}

/// Parses a duration: "3s", "1500ms", "2.5" (seconds).
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    let s = s.trim();
    let (num, mul) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v <= 0.0 {
        return None;
    }
    Some(std::time::Duration::from_secs_f64(v * mul))
}

impl ClusterRaw {
    fn build(self, bind: &str) -> Result<Option<ClusterConfig>, ConfigError> {
        let Some(etcd) = self.etcd else {
            return Ok(None);
        };
        let etcd: Vec<String> = etcd
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if etcd.is_empty() {
            return Err(ConfigError::Invalid("cluster-etcd", "no endpoint".into()));
        }
        let lease_ttl = match &self.lease_ttl {
            Some(t) => parse_duration(t)
                .filter(|d| d.as_millis() >= 1000)
                .ok_or_else(|| ConfigError::Invalid("cluster-lease-ttl", t.clone()))?,
            None => std::time::Duration::from_secs(3),
        };
        let backlog_size = match &self.backlog_size {
            Some(b) => memory_str("cluster-backlog-size", b)?,
            None => 64 * 1024 * 1024,
        };
        if (bind == "0.0.0.0" || bind == "::") && self.advertise.is_none() {
            return Err(ConfigError::Invalid(
                "cluster-advertise",
                "required when binding a wildcard address".into(),
            ));
        }
        let node_id = match self.node_id {
            Some(id) if !id.is_empty() && !id.contains('/') && !id.contains('@') => id,
            Some(id) => return Err(ConfigError::Invalid("node-id", id)),
            None => format!(
                "{:016x}",
                rand::random::<u64>() ^ u64::from(std::process::id())
            ),
        };
        // Every source is comma-separated text by now (a TOML array or a
        // repeated option was joined with commas): a secret cannot hold a comma.
        let secrets: Vec<String> = self
            .secret
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let insecure = self.insecure.unwrap_or(false);
        if secrets.is_empty() && !insecure {
            return Err(ConfigError::Required(
                "cluster-secret",
                "cluster mode needs a shared secret (--cluster-secret or JCACHE_CLUSTER_SECRET), \
                 or --cluster-insecure to let any host that reaches the cluster port read \
                 and write the keyspace"
                    .into(),
            ));
        }
        Ok(Some(ClusterConfig {
            etcd,
            name: self.name.unwrap_or_else(|| "jcache".into()),
            node_id,
            port: self.port.unwrap_or(7379),
            advertise: self.advertise,
            lease_ttl,
            secrets,
            insecure,
            backlog_size,
            test_protocol_version: self.test_protocol_version,
        }))
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            port: 6379,
            bind: "127.0.0.1".into(),
            requirepass: None,
            protected_mode: true,
            enable_debug_command: ProtectedAction::No,
            client_query_buffer_limit: 1024 * 1024 * 1024,
            maxmemory: 0,
            maxmemory_policy: EvictionPolicy::NoEviction,
            maxmemory_source: SettingSource::Default,
            maxmemory_policy_source: SettingSource::Default,
            maxclients: 10000,
            databases: 16,
            proto_max_bulk_len: 512 * 1024 * 1024,
            timeout: 0,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            threads: 0,
            tiers: vec![TierSpec::Memory],
            local_ttl_max_ms: 60_000,
            negative_cache_ttl_ms: 0,
            upstream_timeout_ms: 1_000,
            upstream_tls: UpstreamTls::default(),
            upstream_tracking: Tracking::Default,
            cluster: None,
            metrics_port: None,
            metrics_bind: None,
        }
    }
}

/// Client tracking's mode on the upstream (`CLIENT TRACKING ... [BCAST
/// PREFIX p ...]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tracking {
    /// Redis remembers every key this node copied (its tracking table,
    /// bounded by `tracking-table-max-keys`) and tells this node of changes
    /// to those keys only.
    Default,
    /// Redis remembers nothing per key and tells this node of every change
    /// to a key under one of the prefixes (all keys if there are none);
    /// keys outside the prefixes are never cached locally.
    Bcast(Vec<Vec<u8>>),
}

impl Tracking {
    fn prefixes(&self) -> &[Vec<u8>] {
        match self {
            Tracking::Default => &[],
            Tracking::Bcast(p) => p,
        }
    }

    /// Sets the prefixes (only BCAST has any). As Redis, no prefix may be a
    /// prefix of another.
    fn with_prefixes(&self, prefixes: &[String]) -> Result<Tracking, ConfigError> {
        const NAME: &str = "upstream-tracking-prefix";
        if *self == Tracking::Default {
            return Err(ConfigError::Invalid(
                NAME,
                "prefixes need `upstream-tracking = bcast`".into(),
            ));
        }
        let p: Vec<Vec<u8>> = prefixes.iter().map(|s| s.as_bytes().to_vec()).collect();
        for (i, a) in p.iter().enumerate() {
            for b in &p[i + 1..] {
                if a.starts_with(b) || b.starts_with(a) {
                    return Err(ConfigError::Invalid(
                        NAME,
                        format!(
                            "'{}' and '{}' overlap (Redis refuses overlapping prefixes)",
                            String::from_utf8_lossy(a),
                            String::from_utf8_lossy(b)
                        ),
                    ));
                }
            }
        }
        Ok(Tracking::Bcast(p))
    }

    /// Whether a key may be copied locally (BCAST: under a prefix).
    pub fn covers(&self, key: &[u8]) -> bool {
        match self {
            Tracking::Default => true,
            Tracking::Bcast(p) => p.is_empty() || p.iter().any(|p| key.starts_with(p)),
        }
    }
}

fn parse_tracking(v: &str, prefixes: &[Vec<u8>]) -> Result<Tracking, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "default" => Ok(Tracking::Default),
        "bcast" => Ok(Tracking::Bcast(prefixes.to_vec())),
        other => Err(ConfigError::Invalid(
            "upstream-tracking",
            format!("{other} (default or bcast)"),
        )),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config file {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid value for {0}: {1}")]
    Invalid(&'static str, String),
    #[error("{0} is required: {1}")]
    Required(&'static str, String),
}

fn memory_value(name: &'static str, v: &toml::Value) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => {
            parse_memory(s.as_bytes()).ok_or_else(|| ConfigError::Invalid(name, s.clone()))
        }
        other => Err(ConfigError::Invalid(name, other.to_string())),
    }
}

/// A duration: a number of seconds, or a number with `ms`, `s`, `m` or `h`.
fn duration_str(name: &'static str, s: &str) -> Result<u64, ConfigError> {
    let t = s.trim().to_ascii_lowercase();
    let bad = || ConfigError::Invalid(name, s.to_string());
    let (num, mult) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (t.as_str(), 1000)
    };
    let v: u64 = num.trim().parse().map_err(|_| bad())?;
    v.checked_mul(mult).ok_or_else(bad)
}

fn duration_value(name: &'static str, v: &toml::Value) -> Result<u64, ConfigError> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => (*i as u64)
            .checked_mul(1000)
            .ok_or_else(|| ConfigError::Invalid(name, i.to_string())),
        toml::Value::String(s) => duration_str(name, s),
        other => Err(ConfigError::Invalid(name, other.to_string())),
    }
}

fn parse_tiers(list: &[String]) -> Result<Vec<TierSpec>, ConfigError> {
    rejoin_sentinels(list)
        .iter()
        .map(|s| TierSpec::parse(s))
        .collect()
}

/// `--tier` and `JCACHE_TIER` are split on commas, which also separate a
/// sentinel or cluster URL's hosts: a piece that is neither `memory` nor a
/// URL continues the sentinel or cluster URL before it.
fn rejoin_sentinels(list: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for piece in list {
        let t = piece.trim();
        let continues = !t.eq_ignore_ascii_case("memory") && !t.contains("://");
        match out.last_mut() {
            Some(last)
                if continues
                    && (last.starts_with(SENTINEL_SCHEME)
                        || last.starts_with(SENTINEL_TLS_SCHEME)
                        || is_cluster_url(last)) =>
            {
                last.push(',');
                last.push_str(t);
            }
            _ => out.push(piece.clone()),
        }
    }
    out
}

fn memory_str(name: &'static str, s: &str) -> Result<u64, ConfigError> {
    parse_memory(s.as_bytes()).ok_or_else(|| ConfigError::Invalid(name, s.to_string()))
}

impl FileConfig {
    /// The TOML file at `path`, or every option unset when there is none.
    fn read(path: Option<&PathBuf>) -> Result<FileConfig, ConfigError> {
        let Some(path) = path else {
            return Ok(FileConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.clone(), e))?;
        toml::from_str::<FileConfig>(&text).map_err(|e| ConfigError::Parse(path.clone(), e))
    }
}

impl ClusterRaw {
    /// The `cluster-*` options of the file, overridden by the CLI's.
    fn layered(file: &FileConfig, cli: &Cli) -> ClusterRaw {
        let mut cl = ClusterRaw {
            etcd: file.cluster_etcd.as_ref().map(toml_text),
            name: file.cluster_name.clone(),
            node_id: file.node_id.clone(),
            port: file.cluster_port,
            advertise: file.cluster_advertise.clone(),
            lease_ttl: file.cluster_lease_ttl.as_ref().map(toml_text),
            secret: file.cluster_secret.as_ref().map(toml_text),
            insecure: file.cluster_insecure,
            backlog_size: file.cluster_backlog_size.as_ref().map(toml_text),
            test_protocol_version: None,
        };
        #[cfg(debug_assertions)]
        {
            cl.test_protocol_version = cli.cluster_test_protocol_version;
        }
        macro_rules! over {
            ($f:ident, $c:ident) => {
                if let Some(v) = &cli.$c {
                    cl.$f = Some(v.clone());
                }
            };
        }
        over!(etcd, cluster_etcd);
        over!(name, cluster_name);
        over!(node_id, node_id);
        over!(port, cluster_port);
        over!(advertise, cluster_advertise);
        over!(lease_ttl, cluster_lease_ttl);
        if let Some(v) = &cli.cluster_secret {
            cl.secret = Some(v.join(","));
        }
        if let Some(v) = cli.cluster_insecure {
            cl.insecure = Some(v);
        }
        over!(backlog_size, cluster_backlog_size);
        cl
    }
}

impl Config {
    /// Builds the configuration: defaults, then the config file the command
    /// line names, then the command line (clap has already put the
    /// `JCACHE_*` environment under it), then validation.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let root = Path::new("/");
        #[cfg(debug_assertions)]
        let root = cli.test_cgroup_root.as_deref().unwrap_or(root);
        Config::load_with(cli, crate::util::cgroup::memory_limit(root))
    }

    /// [`Config::load`] with the cgroup memory limit given (None: no limit).
    pub fn load_with(cli: &Cli, cgroup_limit: Option<u64>) -> Result<Config, ConfigError> {
        let file = FileConfig::read(cli.config.as_ref())?;
        let mut c = Config::default();
        c.apply_file(&file)?;
        c.apply_cli(cli)?;
        c.apply_cgroup(cgroup_limit);
        c.cluster = ClusterRaw::layered(&file, cli).build(&c.bind)?;
        c.validate()?;
        c.upstream_tls.read(&c.tiers)?;
        Ok(c)
    }

    /// Under a cgroup memory limit, an unset `maxmemory` becomes
    /// [`CGROUP_MEMORY_PERCENT`] of it (the rest is for what `used_memory`
    /// does not count: allocator slack, clients, the replication backlog),
    /// so that the process stays under the limit instead of being
    /// OOM-killed; with no policy set either, `allkeys-lru`, so that a
    /// full cache evicts instead of answering `-OOM`. An explicit setting
    /// (`maxmemory 0` included) is kept.
    fn apply_cgroup(&mut self, cgroup_limit: Option<u64>) {
        let Some(limit) = cgroup_limit else {
            return;
        };
        if self.maxmemory_source != SettingSource::Default {
            return;
        }
        self.maxmemory = limit / 100 * CGROUP_MEMORY_PERCENT;
        self.maxmemory_source = SettingSource::Cgroup;
        if self.maxmemory_policy_source == SettingSource::Default {
            self.maxmemory_policy = EvictionPolicy::AllKeysLru;
            self.maxmemory_policy_source = SettingSource::Cgroup;
        }
    }

    /// The file layer (cluster options aside: see [`ClusterRaw::layered`]).
    fn apply_file(&mut self, file: &FileConfig) -> Result<(), ConfigError> {
        if let Some(v) = file.port {
            self.port = v;
        }
        if let Some(v) = &file.bind {
            self.bind = v.clone();
        }
        if let Some(v) = &file.requirepass {
            self.requirepass = Some(v.clone());
        }
        if let Some(v) = &file.protected_mode {
            self.protected_mode = match v {
                toml::Value::Boolean(b) => *b,
                other => parse_yes_no("protected-mode", &toml_text(other))?,
            };
        }
        if let Some(v) = &file.enable_debug_command {
            self.enable_debug_command = parse_protected("enable-debug-command", v)?;
        }
        if let Some(v) = &file.client_query_buffer_limit {
            self.client_query_buffer_limit = memory_value("client-query-buffer-limit", v)?;
        }
        if let Some(v) = &file.maxmemory {
            self.maxmemory = memory_value("maxmemory", v)?;
            self.maxmemory_source = SettingSource::Config;
        }
        if let Some(v) = &file.maxmemory_policy {
            self.maxmemory_policy = parse_policy(v)?;
            self.maxmemory_policy_source = SettingSource::Config;
        }
        if let Some(v) = file.maxclients {
            self.maxclients = v;
        }
        if let Some(v) = file.databases {
            self.databases = v;
        }
        if let Some(v) = &file.proto_max_bulk_len {
            self.proto_max_bulk_len = memory_value("proto-max-bulk-len", v)?;
        }
        if let Some(v) = file.timeout {
            self.timeout = v;
        }
        if let Some(v) = &file.log_level {
            self.log_level = v.clone();
        }
        if let Some(v) = &file.log_format {
            self.log_format = parse_log_format(v)?;
        }
        if let Some(v) = &file.tier {
            self.tiers = parse_tiers(v)?;
        }
        if let Some(v) = &file.local_ttl_max {
            self.local_ttl_max_ms = duration_value("local-ttl-max", v)?;
        }
        if let Some(v) = &file.negative_cache_ttl {
            self.negative_cache_ttl_ms = duration_value("negative-cache-ttl", v)?;
        }
        if let Some(v) = &file.upstream_timeout {
            self.upstream_timeout_ms = duration_value("upstream-timeout", v)?;
        }
        if let Some(v) = &file.upstream_tracking {
            self.upstream_tracking = parse_tracking(v, self.upstream_tracking.prefixes())?;
        }
        if let Some(v) = &file.upstream_tracking_prefixes {
            self.upstream_tracking = self.upstream_tracking.with_prefixes(v)?;
        }
        self.upstream_tls.paths.layer(
            &file.upstream_tls_ca,
            &file.upstream_tls_cert,
            &file.upstream_tls_key,
        );
        if let Some(v) = file.threads {
            self.threads = v;
        }
        if let Some(v) = file.metrics_port {
            self.metrics_port = Some(v);
        }
        if let Some(v) = &file.metrics_bind {
            self.metrics_bind = Some(v.clone());
        }
        Ok(())
    }

    /// The command-line layer (with the environment folded in by clap).
    fn apply_cli(&mut self, cli: &Cli) -> Result<(), ConfigError> {
        if !cli.tier.is_empty() {
            self.tiers = parse_tiers(&cli.tier)?;
        }
        if let Some(v) = &cli.local_ttl_max {
            self.local_ttl_max_ms = duration_str("local-ttl-max", v)?;
        }
        if let Some(v) = &cli.negative_cache_ttl {
            self.negative_cache_ttl_ms = duration_str("negative-cache-ttl", v)?;
        }
        if let Some(v) = &cli.upstream_timeout {
            self.upstream_timeout_ms = duration_str("upstream-timeout", v)?;
        }
        if let Some(v) = &cli.upstream_tracking {
            self.upstream_tracking = parse_tracking(v, self.upstream_tracking.prefixes())?;
        }
        if !cli.upstream_tracking_prefix.is_empty() {
            self.upstream_tracking = self
                .upstream_tracking
                .with_prefixes(&cli.upstream_tracking_prefix)?;
        }
        self.upstream_tls.paths.layer(
            &cli.upstream_tls_ca,
            &cli.upstream_tls_cert,
            &cli.upstream_tls_key,
        );
        if let Some(v) = cli.port {
            self.port = v;
        }
        if let Some(v) = &cli.bind {
            self.bind = v.clone();
        }
        if let Some(v) = &cli.requirepass {
            self.requirepass = Some(v.clone());
        }
        if let Some(v) = &cli.protected_mode {
            self.protected_mode = parse_yes_no("protected-mode", v)?;
        }
        if let Some(v) = &cli.enable_debug_command {
            self.enable_debug_command = parse_protected("enable-debug-command", v)?;
        }
        if let Some(v) = &cli.client_query_buffer_limit {
            self.client_query_buffer_limit = memory_str("client-query-buffer-limit", v)?;
        }
        if let Some(v) = &cli.maxmemory {
            self.maxmemory = memory_str("maxmemory", v)?;
            self.maxmemory_source = SettingSource::Config;
        }
        if let Some(v) = &cli.maxmemory_policy {
            self.maxmemory_policy = parse_policy(v)?;
            self.maxmemory_policy_source = SettingSource::Config;
        }
        if let Some(v) = cli.maxclients {
            self.maxclients = v;
        }
        if let Some(v) = cli.databases {
            self.databases = v;
        }
        if let Some(v) = &cli.proto_max_bulk_len {
            self.proto_max_bulk_len = memory_str("proto-max-bulk-len", v)?;
        }
        if let Some(v) = cli.timeout {
            self.timeout = v;
        }
        if let Some(v) = &cli.log_level {
            self.log_level = v.clone();
        }
        if let Some(v) = cli.threads {
            self.threads = v;
        }
        if let Some(v) = &cli.log_format {
            self.log_format = parse_log_format(v)?;
        }
        if let Some(v) = cli.metrics_port {
            self.metrics_port = Some(v);
        }
        if let Some(v) = &cli.metrics_bind {
            self.metrics_bind = Some(v.clone());
        }
        Ok(())
    }

    /// The runtime's worker threads: `threads`, or when that is 0 one per
    /// CPU this process may use but one, and at least one. The CPUs it
    /// may use are its affinity and its cgroup's CPU limit, rounded down
    /// (a Kubernetes CPU request alone sets no limit: the node's CPUs
    /// count). The CPU left over serves the kernel's network
    /// work, the script thread and what runs beside jcache (a sidecar's
    /// application, the clients): on 2 CPUs with redis-benchmark beside it,
    /// two workers spread over both cores and took time from the
    /// benchmark's (60,000 context switches in 200,000 `-P 1` XADDs against
    /// 19,000 with one, and 0.92x redis-server's throughput against 1.01x).
    pub fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
    }

    /// Where the metrics port listens, when it is on.
    pub fn metrics_addr(&self) -> Option<(String, u16)> {
        let host = self
            .metrics_bind
            .clone()
            .unwrap_or_else(|| self.bind.clone());
        self.metrics_port.map(|p| (host, p))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.databases == 0 || self.databases > i32::MAX as u64 {
            return Err(ConfigError::Invalid(
                "databases",
                "must be between 1 and 2147483647".into(),
            ));
        }
        if self.maxclients == 0 {
            return Err(ConfigError::Invalid(
                "maxclients",
                "must be at least 1".into(),
            ));
        }
        if self.proto_max_bulk_len < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "proto-max-bulk-len",
                "must be at least 1mb".into(),
            ));
        }
        if self.client_query_buffer_limit < 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "client-query-buffer-limit",
                "must be at least 1mb".into(),
            ));
        }
        if !["error", "warn", "info", "debug", "trace"].contains(&self.log_level.as_str()) {
            return Err(ConfigError::Invalid("log-level", self.log_level.clone()));
        }
        if self.tiers.first() != Some(&TierSpec::Memory)
            || self.tiers[1..].contains(&TierSpec::Memory)
        {
            return Err(ConfigError::Invalid(
                "tier",
                "the first tier must be 'memory', and only the first".into(),
            ));
        }
        if self.tiers.len() > 2 {
            return Err(ConfigError::Invalid(
                "tier",
                "at most one upstream tier is supported".into(),
            ));
        }
        if self.upstream_timeout_ms == 0 {
            return Err(ConfigError::Invalid(
                "upstream-timeout",
                "must be at least 1ms".into(),
            ));
        }
        if self.metrics_port.is_some_and(|p| p != 0 && p == self.port) {
            return Err(ConfigError::Invalid(
                "metrics-port",
                "must differ from port".into(),
            ));
        }
        if self.metrics_bind.is_some() && self.metrics_port.is_none() {
            return Err(ConfigError::Invalid(
                "metrics-bind",
                "needs metrics-port".into(),
            ));
        }
        if self.requirepass.as_deref() == Some("") {
            return Err(ConfigError::Invalid(
                "requirepass",
                "must not be empty".into(),
            ));
        }
        Ok(())
    }
}

fn parse_policy(s: &str) -> Result<EvictionPolicy, ConfigError> {
    EvictionPolicy::parse(s).ok_or_else(|| ConfigError::Invalid("maxmemory-policy", s.to_string()))
}

fn parse_yes_no(name: &'static str, s: &str) -> Result<bool, ConfigError> {
    match s.trim().to_ascii_lowercase().as_str() {
        "yes" | "true" => Ok(true),
        "no" | "false" => Ok(false),
        _ => Err(ConfigError::Invalid(name, s.to_string())),
    }
}

fn parse_protected(name: &'static str, s: &str) -> Result<ProtectedAction, ConfigError> {
    ProtectedAction::parse(s.trim()).ok_or_else(|| ConfigError::Invalid(name, s.to_string()))
}

fn parse_log_format(s: &str) -> Result<LogFormat, ConfigError> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(ConfigError::Invalid("log-format", s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_overrides_file_overrides_default() {
        let dir = std::env::temp_dir().join(format!("jcache-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(
            &path,
            "port = 7000\nmaxmemory = \"100mb\"\nmaxmemory_policy = \"allkeys-lru\"\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            port: Some(7001),
            ..Default::default()
        };
        let c = Config::load(&cli).unwrap();
        assert_eq!(c.port, 7001);
        assert_eq!(c.maxmemory, 100 * 1024 * 1024);
        assert_eq!(c.maxmemory_policy, EvictionPolicy::AllKeysLru);
        assert_eq!(c.bind, "127.0.0.1");
        std::fs::write(&path, "bogus = 1\n").unwrap();
        assert!(Config::load(&cli).is_err());
    }

    #[test]
    fn default_workers_leave_one_cpu() {
        let cpus = std::thread::available_parallelism().unwrap().get();
        let mut c = Config::load(&Cli::default()).unwrap();
        assert_eq!(c.threads, 0);
        assert_eq!(c.worker_threads(), (cpus - 1).max(1));
        c.threads = 3;
        assert_eq!(c.worker_threads(), 3);
    }

    #[test]
    fn tier_urls_are_shown_without_password() {
        for (url, shown) in [
            ("redis://:secret@h:1", "redis://:***@h:1"),
            ("redis://user:secret@h:1/0", "redis://user:***@h:1/0"),
            ("redis://secret@h:1", "redis://***@h:1"),
            ("redis://:se/cr@et@h:1/0", "redis://:***@h:1/0"),
            (
                "redis://h:1/0?protocol=3&password=secret",
                "redis://h:1/0?protocol=3&password=***",
            ),
            ("redis://h:1", "redis://h:1"),
            ("memory", "memory"),
        ] {
            assert_eq!(redact_url(url), shown);
        }
        let e = Config::load(&Cli {
            tier: vec!["memory".into(), "redis://:secret@127.0.0.1:99999".into()],
            ..Cli::default()
        })
        .unwrap_err()
        .to_string();
        assert!(!e.contains("secret") && e.contains(":***@"), "{e}");
        let spec = TierSpec::Redis("redis://u:secret@h:1".into());
        assert!(!format!("{spec:?}").contains("secret"));
    }

    #[test]
    fn tiers_and_durations() {
        let dir = std::env::temp_dir().join(format!("jcache-cfg-t-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.toml");
        std::fs::write(
            &path,
            "tier = [\"memory\", \"redis://127.0.0.1:6390/\"]\nlocal_ttl_max = \"5s\"\nnegative_cache_ttl = 2\n",
        )
        .unwrap();
        let cli = Cli {
            config: Some(path.clone()),
            local_ttl_max: Some("250ms".into()),
            ..Default::default()
        };
        let c = Config::load(&cli).unwrap();
        assert_eq!(
            c.tiers,
            vec![
                TierSpec::Memory,
                TierSpec::Redis("redis://127.0.0.1:6390/".into())
            ]
        );
        assert_eq!(c.local_ttl_max_ms, 250);
        assert_eq!(c.negative_cache_ttl_ms, 2000);
        assert_eq!(c.upstream_timeout_ms, 1000);
        assert_eq!(
            Config::load(&Cli::default()).unwrap().tiers,
            vec![TierSpec::Memory]
        );
        for bad in [
            vec!["redis://127.0.0.1:1"],
            vec!["memory", "memory"],
            vec!["memory", "http://x"],
            vec!["memory", "redis://127.0.0.1:6390/0"],
            vec!["memory", "redis://:p%2Fw@127.0.0.1:6390/3?protocol=3"],
        ] {
            let cli = Cli {
                tier: bad.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            };
            assert!(Config::load(&cli).is_err(), "{bad:?}");
        }
        let e = TierSpec::parse("redis://:p%2Fw@h:1/3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a database in the URL ('/3') is not allowed"),
            "{e}"
        );
        assert!(TierSpec::parse("redis://:p%2Fw@h:1").is_ok());
    }

    #[test]
    fn cluster_urls() {
        let u = ClusterUrl::parse("redis+cluster://:pw@10.0.0.1:7000,h2,[::1]:7").unwrap();
        assert_eq!(u.seeds, ["10.0.0.1:7000", "h2:6379", "[::1]:7"]);
        assert_eq!((u.userinfo.as_str(), u.tls), (":pw@", false));
        assert!(ClusterUrl::parse("rediss+cluster://h:1").unwrap().tls);
        assert!(TierSpec::parse("redis+cluster://h:1/3").is_err());
        assert!(TierSpec::parse("redis+cluster://h:1,,h:2").is_err());
        let list: Vec<String> = ["memory", "redis+cluster://a:1", "b:2"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            parse_tiers(&list).unwrap()[1],
            TierSpec::Redis("redis+cluster://a:1,b:2".into())
        );
    }

    #[test]
    fn sentinel_urls() {
        let u =
            SentinelUrl::parse("redis+sentinel://:pw@10.0.0.1:5000,h2,[::1]:7/mymaster").unwrap();
        assert_eq!(u.sentinels, ["10.0.0.1:5000", "h2:26379", "[::1]:7"]);
        assert_eq!(
            (u.master.as_str(), u.userinfo.as_str()),
            ("mymaster", ":pw@")
        );
        let u = SentinelUrl::parse("redis+sentinel://h/m/").unwrap();
        assert_eq!((u.sentinels.len(), u.master.as_str()), (1, "m"));
        for bad in [
            "redis+sentinel://h:1",
            "redis+sentinel://h:1/",
            "redis+sentinel://h:x/m",
            "redis+sentinel://h:1,,h:2/m",
            "redis+sentinel://:pw@h:1/m/3",
        ] {
            let e = TierSpec::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("pw@"), "{e}");
        }
        let e = TierSpec::parse("redis+sentinel://h:1/m/3")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("a database in the URL ('/3') is not allowed"),
            "{e}"
        );
        assert!(TierSpec::parse("redis+sentinel://h:1/m").is_ok());
        // The CLI and env split on commas: the hosts are joined again.
        let c = Config::load(&Cli {
            tier: ["memory", "redis+sentinel://h:1", "h:2/m"]
                .map(String::from)
                .to_vec(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            c.tiers,
            [
                TierSpec::Memory,
                TierSpec::Redis("redis+sentinel://h:1,h:2/m".into())
            ]
        );
    }

    #[test]
    fn upstream_tracking_modes_and_prefixes() {
        let load = |mode: Option<&str>, prefixes: &[&str]| {
            Config::load_with(
                &Cli {
                    upstream_tracking: mode.map(String::from),
                    upstream_tracking_prefix: prefixes.iter().map(|p| p.to_string()).collect(),
                    ..Default::default()
                },
                None,
            )
        };
        assert_eq!(
            load(None, &[]).unwrap().upstream_tracking,
            Tracking::Default
        );
        let c = load(Some("BCAST"), &["user:", "session:"]).unwrap();
        assert_eq!(
            c.upstream_tracking,
            Tracking::Bcast(vec![b"user:".to_vec(), b"session:".to_vec()])
        );
        assert!(c.upstream_tracking.covers(b"user:1"));
        assert!(!c.upstream_tracking.covers(b"other"));
        assert!(load(Some("bcast"), &[])
            .unwrap()
            .upstream_tracking
            .covers(b"x"));
        assert!(Tracking::Default.covers(b"x"));
        // Prefixes without BCAST, overlapping prefixes, unknown modes.
        let e = load(None, &["a"]).unwrap_err().to_string();
        assert!(e.contains("need `upstream-tracking = bcast`"), "{e}");
        let e = load(Some("bcast"), &["ab", "a"]).unwrap_err().to_string();
        assert!(e.contains("'ab' and 'a' overlap"), "{e}");
        let e = load(Some("optin"), &[]).unwrap_err().to_string();
        assert!(e.contains("optin (default or bcast)"), "{e}");
    }

    #[test]
    fn upstream_tls_options() {
        let dir = std::env::temp_dir().join(format!("jcache-cfg-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("x.pem");
        std::fs::write(&pem, "PEM").unwrap();
        let cli = |tier: &str, ca: bool, cert: bool, key: bool| Cli {
            tier: vec!["memory".into(), tier.into()],
            upstream_tls_ca: ca.then(|| pem.clone()),
            upstream_tls_cert: cert.then(|| pem.clone()),
            upstream_tls_key: key.then(|| pem.clone()),
            ..Default::default()
        };
        let c = Config::load(&cli("rediss://h:1", true, true, true)).unwrap();
        assert_eq!(c.upstream_tls.ca.as_deref(), Some(&b"PEM"[..]));
        assert!(c.upstream_tls.client.is_some());
        assert!(
            !format!("{c:?}").contains("80, 69, 77"),
            "no key bytes printed"
        );
        assert!(Config::load(&cli("rediss+sentinel://h:1/m", true, false, false)).is_ok());
        for (tier, ca, cert, key) in [
            ("redis://h:1", true, false, false),
            ("rediss://h:1", false, true, false),
            ("rediss://h:1", false, false, true),
        ] {
            assert!(
                Config::load(&cli(tier, ca, cert, key)).is_err(),
                "{tier} {ca} {cert} {key}"
            );
        }
        let missing = Cli {
            upstream_tls_ca: Some(dir.join("absent.pem")),
            ..cli("rediss://h:1", false, false, false)
        };
        let e = Config::load(&missing).unwrap_err().to_string();
        assert!(
            e.contains("upstream-tls-ca") && e.contains("absent.pem"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_cgroup_limit_sets_only_what_was_not_set() {
        let gib = 1u64 << 30;
        let c = Config::load_with(&Cli::default(), Some(4 * gib)).unwrap();
        assert_eq!(c.maxmemory, 4 * gib / 100 * 75);
        assert_eq!(c.maxmemory_policy, EvictionPolicy::AllKeysLru);
        assert_eq!(c.maxmemory_source, SettingSource::Cgroup);
        assert_eq!(c.maxmemory_policy_source, SettingSource::Cgroup);
        // A policy given is kept.
        let cli = Cli {
            maxmemory_policy: Some("volatile-lru".into()),
            ..Default::default()
        };
        let c = Config::load_with(&cli, Some(4 * gib)).unwrap();
        assert_eq!(c.maxmemory, 4 * gib / 100 * 75);
        assert_eq!(c.maxmemory_policy, EvictionPolicy::VolatileLru);
        assert_eq!(c.maxmemory_policy_source, SettingSource::Config);
        // maxmemory given (0 included) leaves both alone.
        let cli = Cli {
            maxmemory: Some("0".into()),
            ..Default::default()
        };
        let c = Config::load_with(&cli, Some(4 * gib)).unwrap();
        assert_eq!(c.maxmemory, 0);
        assert_eq!(c.maxmemory_policy, EvictionPolicy::NoEviction);
        assert_eq!(c.maxmemory_source, SettingSource::Config);
        assert_eq!(c.maxmemory_policy_source, SettingSource::Default);
        // No limit: Redis's defaults.
        let c = Config::load_with(&Cli::default(), None).unwrap();
        assert_eq!(
            (c.maxmemory, c.maxmemory_policy),
            (0, EvictionPolicy::NoEviction)
        );
        assert_eq!(c.maxmemory_source, SettingSource::Default);
    }

    #[test]
    fn bad_values_are_rejected() {
        let cli = Cli {
            maxmemory: Some("lots".into()),
            ..Default::default()
        };
        assert!(Config::load(&cli).is_err());
        let cli = Cli {
            maxmemory_policy: Some("sometimes".into()),
            ..Default::default()
        };
        assert!(Config::load(&cli).is_err());
    }

    #[test]
    fn cluster_mode_needs_a_secret_or_insecure() {
        let etcd = || Some("http://127.0.0.1:2379".to_string());
        let cli = Cli {
            cluster_etcd: etcd(),
            ..Default::default()
        };
        let e = Config::load(&cli).unwrap_err().to_string();
        assert!(e.contains("cluster-secret is required"), "{e}");
        let cli = Cli {
            cluster_etcd: etcd(),
            cluster_secret: Some(vec!["".into()]),
            ..Default::default()
        };
        assert!(Config::load(&cli).is_err(), "an empty secret is no secret");
        let cli = Cli {
            cluster_etcd: etcd(),
            cluster_insecure: Some(true),
            ..Default::default()
        };
        let c = Config::load(&cli).unwrap().cluster.unwrap();
        assert!(c.insecure && c.secrets.is_empty());
        // Standalone needs nothing.
        assert!(Config::load(&Cli::default()).unwrap().cluster.is_none());
    }

    #[test]
    fn cluster_secrets_are_a_list_from_every_source() {
        let etcd = || Some("http://127.0.0.1:2379".to_string());
        let cli = Cli {
            cluster_etcd: etcd(),
            cluster_secret: Some(vec!["new".into(), "old, older".into()]),
            ..Default::default()
        };
        let c = Config::load(&cli).unwrap().cluster.unwrap();
        assert_eq!(c.secrets, ["new", "old", "older"]);
        assert!(!c.insecure);
        let dir = std::env::temp_dir().join(format!("jcache-cfg-s-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.toml");
        for (text, want) in [
            ("cluster_secret = \"a\"\n", vec!["a"]),
            ("cluster_secret = \"a,b\"\n", vec!["a", "b"]),
            ("cluster_secret = [\"b\", \"a\"]\n", vec!["b", "a"]),
        ] {
            std::fs::write(&path, format!("cluster_etcd = \"http://e:2379\"\n{text}")).unwrap();
            let cli = Cli {
                config: Some(path.clone()),
                ..Default::default()
            };
            let c = Config::load(&cli).unwrap().cluster.unwrap();
            assert_eq!(c.secrets, want, "{text}");
        }
        std::fs::write(
            &path,
            "cluster_etcd = \"http://e:2379\"\ncluster_insecure = true\n",
        )
        .unwrap();
        let file_only = Cli {
            config: Some(path.clone()),
            ..Default::default()
        };
        assert!(Config::load(&file_only).unwrap().cluster.unwrap().insecure);
        // The command line overrides the file.
        let cli = Cli {
            config: Some(path.clone()),
            cluster_insecure: Some(false),
            ..Default::default()
        };
        assert!(Config::load(&cli).is_err());
    }

    #[test]
    fn cluster_options_parse_from_the_command_line() {
        let cli = Cli::try_parse_from([
            "jcache",
            "--cluster-etcd",
            "http://e:2379",
            "--cluster-secret",
            "new",
            "--cluster-secret",
            "old",
        ])
        .unwrap();
        let c = Config::load(&cli).unwrap().cluster.unwrap();
        assert_eq!(c.secrets, ["new", "old"]);
        let cli = Cli::try_parse_from([
            "jcache",
            "--cluster-etcd",
            "http://e:2379",
            "--cluster-insecure",
        ])
        .unwrap();
        assert_eq!(cli.cluster_insecure, Some(true));
        assert!(Config::load(&cli).unwrap().cluster.unwrap().insecure);
    }
}
