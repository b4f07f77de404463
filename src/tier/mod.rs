//! The tiered engine: the local memory engine in front of an upstream Redis.
//!
//! Tier policy lives here, in one place, behind the command dispatcher's
//! [`Router`](crate::commands::Router) seam; no command handler knows about
//! tiers. Tiers are configured fastest first (`--tier memory --tier
//! redis://...`); the last one is the source of truth.
//!
//! - [`Tier`]: what every tier offers (whole-key fetch, fill, invalidate,
//!   flush, execute as source of truth, stats). [`memory::MemoryTier`] wraps
//!   the local engine, [`redis::RedisTier`] an upstream Redis,
//!   [`redis_cluster::ClusterTier`] a Redis Cluster (a `RedisTier` per
//!   primary, chosen by the key's slot).
//! - [`router::TieredRouter`]: the policy. Reads with keys run locally when
//!   every key is present (checked with the shards locked, see
//!   `Router::check_locked`); otherwise each missing key is fetched whole
//!   from the upstream (single-flight per key), back-filled, and the command
//!   runs locally. Writes, blocking commands, transactions, WATCH and
//!   keyspace-wide reads go to the upstream; after it accepted a write, the
//!   keys the write named are dropped locally, or, for a simple write to a
//!   key held locally, replaced by the upstream's state of the key read in
//!   the same MULTI/EXEC (so hot keys stay hot under writes). Consecutive
//!   forwarded commands of a pipeline are batched per client.
//! - [`Coherence`]: in-flight fetches, the negative cache and invalidation.
//!
//! Invariants:
//! 1. A key held locally was copied from the upstream by a fetch whose reply
//!    arrived before any invalidation of that key (a fetch is registered
//!    "in flight" before it is sent; an invalidation, a local write of the
//!    key, a link loss or a flush marks it, and a marked fetch is not
//!    back-filled). Back-fill and marking take the same lock.
//! 2. A local copy never outlives the upstream key (its expiry is the
//!    upstream PTTL counted from when the fetch was *sent*) and never lives
//!    longer than `local-ttl-max`.
//! 3. Nothing but a back-fill creates or changes a local key in tiered mode:
//!    every write runs upstream first; locally it either drops keys or
//!    back-fills what the upstream returned for them (a fetch like any other,
//!    registered before it was sent).
//! 5. The tracking connection uses NOLOOP: writes it carries itself (the
//!    write-throughs) do not invalidate our copy; the re-read in the same
//!    MULTI/EXEC tracks the key again, so later writes by anyone else do.
//! 6. A client's forwarded commands reach the upstream in its request order
//!    (inline, or one batch per pipeline run).
//! 4. While the invalidation link is down, nothing is back-filled and writes
//!    fail with `TRYAGAIN upstream unavailable`; local copies keep being
//!    served (degraded mode, staleness bounded by `local-ttl-max`). When the
//!    link is back (tracking re-enabled), the local tier is flushed before
//!    the upstream is marked available again.
//! 7. `TRYAGAIN` only when retrying is harmless (nothing sent, or a read); a
//!    write of unknown outcome gets `ERR upstream link error (the write may
//!    or may not have been applied)` and drops its keys locally.
//! 8. A client's database n is the upstream's database n; local copies,
//!    fetches in flight and absences are kept per (database, key). An
//!    invalidation, which names no database, drops the key in every one.
//! 9. With `--upstream-tracking bcast` and prefixes, a key outside them is
//!    never copied nor remembered absent (`Coherence::complete`), and a read
//!    missing such a key goes to the upstream without a fetch: the upstream
//!    reports no change of it.

pub mod encode;
pub mod memory;
pub mod passthrough;
pub mod redis;
pub mod redis_cluster;
pub mod router;
pub mod sentinel;
pub mod slots;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use smallvec::SmallVec;

use crate::commands::Shared;
use crate::config::{Config, TierSpec, Tracking};
use crate::engine::{now_ms, Value, ValueType};

pub type TierFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why a tier could not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TierError {
    /// Nothing was sent: not connected, or the connection could not be made
    /// (the documented `TRYAGAIN upstream unavailable`; safe to retry).
    Unavailable,
    /// Sent, but no reply within the timeout: the outcome is unknown.
    Timeout,
    /// Sent, but the connection was lost before the reply: the outcome is unknown.
    Lost,
    /// The tier cannot hold this kind of value (e.g. a stream).
    Unsupported,
    /// The tier answered with an error (its text).
    Rejected(String),
    /// Every dedicated connection for blocking commands is in use (nothing sent).
    Saturated,
}

pub const UNAVAILABLE_ERR: &str = "TRYAGAIN upstream unavailable";
pub const TIMEOUT_ERR: &str = "TRYAGAIN upstream timeout";
/// A write that may have reached the upstream and got no reply. The same
/// wording as cluster forwarding's `ERR master link error (the write may or
/// may not have been applied): ...`; an `ERR`, which client libraries do not
/// retry on their own (they do retry `TRYAGAIN`, which would apply an INCR
/// or an LPUSH twice).
pub const UNKNOWN_OUTCOME_ERR: &str =
    "ERR upstream link error (the write may or may not have been applied)";
/// Redis's own text when a server has no room for another connection.
pub const SATURATED_ERR: &str = "ERR max number of clients reached";

impl TierError {
    /// The error reply for a command of the given class. One rule: a command
    /// with effects (the write flag, or PUBLISH) whose request may have
    /// reached the upstream (timeout, connection lost after sending) gets the
    /// unknown-outcome error; `TRYAGAIN` is answered only when retrying is
    /// harmless: nothing was sent, or the command is a read.
    pub fn reply(&self, write: bool) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            TierError::Rejected(m) => Cow::Borrowed(m),
            TierError::Timeout if write => Cow::Owned(format!("{UNKNOWN_OUTCOME_ERR}: timeout")),
            TierError::Lost if write => {
                Cow::Owned(format!("{UNKNOWN_OUTCOME_ERR}: connection lost"))
            }
            TierError::Timeout => Cow::Borrowed(TIMEOUT_ERR),
            TierError::Saturated => Cow::Borrowed(SATURATED_ERR),
            TierError::Lost | TierError::Unavailable | TierError::Unsupported => {
                Cow::Borrowed(UNAVAILABLE_ERR)
            }
        }
    }
}

/// A whole key as a tier holds it.
pub struct Fetched {
    pub value: Value,
    /// Absolute expiry (ms since the epoch); 0 = none.
    pub expire_at: u64,
}

/// Counters every tier keeps (INFO `# Tiers`).
#[derive(Default)]
pub struct TierStats {
    pub hits: AtomicU64,
    pub misses: AtomicU64,
    pub backfills: AtomicU64,
    pub invalidations: AtomicU64,
    pub errors: AtomicU64,
    pub forwarded: AtomicU64,
    pub latency_us_total: AtomicU64,
    pub latency_count: AtomicU64,
    pub latency_us_max: AtomicU64,
    pub reconnects: AtomicU64,
}

impl TierStats {
    pub fn add(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_latency(&self, us: u64) {
        self.latency_us_total.fetch_add(us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_us_max.fetch_max(us, Ordering::Relaxed);
    }
}

/// One storage tier. The memory tier and the Redis tier both implement it;
/// the policy in [`router`] only talks to tiers through it.
pub trait Tier: Send + Sync {
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
    /// Where it is (for INFO).
    fn describe(&self) -> String;
    /// Whether the tier can answer now.
    fn available(&self) -> bool;
    /// Reads a whole key of database `db`: value and absolute expiry, None
    /// if absent. `hint` is the type the caller expects (saves a round trip
    /// when right).
    fn fetch(
        &self,
        db: usize,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> TierFuture<Result<Option<Fetched>, TierError>>;
    /// Stores a whole key of database `db` copied from a slower tier.
    /// Returns false if it could not (memory full).
    fn fill(&self, db: usize, key: &Bytes, f: Fetched) -> bool;
    /// Drops keys of database `db` (an invalidation, or a write that went
    /// elsewhere).
    fn invalidate(&self, db: usize, keys: &[Bytes]);
    /// Drops everything.
    fn flush(&self);
    /// Runs a command as the source of truth, in database `db`; the reply
    /// is the tier's value.
    fn execute(
        &self,
        db: usize,
        args: Vec<Bytes>,
        resp3: bool,
    ) -> TierFuture<Result<::redis::Value, TierError>>;
    fn stats(&self) -> &TierStats;
    /// Extra INFO fields (`name:value` lines), prefixed by the caller.
    fn info_fields(&self) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// One fetch in flight for a key.
pub struct Flight {
    /// Set by an invalidation of the key (or a flush, a link loss) while
    /// the fetch was in flight: its result must not be back-filled.
    pub invalidated: AtomicBool,
    /// The coherence epoch when the fetch started.
    pub epoch: u64,
    /// The outcome, for the requests that waited on this fetch.
    pub done: tokio::sync::watch::Sender<Option<FetchOutcome>>,
}

/// What a fetch did, as seen by the requests waiting on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchOutcome {
    /// Copied into the local tier.
    Filled,
    /// Absent upstream (as of the fetch), and not invalidated meanwhile.
    Absent,
    /// Present but not back-filled (invalidated meanwhile, memory full,
    /// unsupported type): the command must go upstream.
    NotFilled,
    Failed(TierErrorKind),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TierErrorKind {
    Unavailable,
    Timeout,
}

/// Most keys remembered as absent at once.
const NEGATIVE_MAX: usize = 100_000;

/// Per key name, one entry per database that has one. Redis's invalidation
/// messages name keys without a database, so lookups by name alone must be
/// cheap; most keys live in one database, hence one entry inline.
type ByName<T> = ahash::HashMap<Bytes, SmallVec<[(usize, T); 1]>>;

/// In-flight fetches, the negative cache, and invalidation of the local tier.
/// Keys are (database, name): the client's database n is the upstream's
/// database n.
pub struct Coherence {
    pub local: Arc<memory::MemoryTier>,
    inflight: Mutex<ByName<Arc<Flight>>>,
    /// Bumped by every flush and link change; fetches of an older epoch are
    /// not back-filled.
    epoch: AtomicU64,
    /// Until when (ms) a key is known absent, per database.
    negative: Mutex<ByName<u64>>,
    negative_len: AtomicUsize,
    pub negative_ttl_ms: u64,
    pub local_ttl_max_ms: u64,
    /// Client tracking's mode upstream: with BCAST prefixes, only keys
    /// under them are ever copied or remembered absent (the upstream tells
    /// of no other change).
    pub tracking: Tracking,
}

impl Coherence {
    pub fn new(
        local: Arc<memory::MemoryTier>,
        negative_ttl_ms: u64,
        local_ttl_max_ms: u64,
        tracking: Tracking,
    ) -> Self {
        Coherence {
            tracking,
            local,
            inflight: Mutex::new(Default::default()),
            epoch: AtomicU64::new(0),
            negative: Mutex::new(Default::default()),
            negative_len: AtomicUsize::new(0),
            negative_ttl_ms,
            local_ttl_max_ms,
        }
    }

    /// Joins the fetch in flight for `key` of database `db`, or registers a
    /// new one (returned with `true`: the caller must perform it and call
    /// [`Coherence::complete`]).
    pub fn begin(&self, db: usize, key: &Bytes) -> (Arc<Flight>, bool) {
        let mut m = self.inflight.lock();
        let per_db = m.entry(key.clone()).or_default();
        if let Some((_, f)) = per_db.iter().find(|(d, _)| *d == db) {
            return (f.clone(), false);
        }
        let (tx, _) = tokio::sync::watch::channel(None);
        let f = Arc::new(Flight {
            invalidated: AtomicBool::new(false),
            epoch: self.epoch.load(Ordering::Acquire),
            done: tx,
        });
        per_db.push((db, f.clone()));
        (f, true)
    }

    /// Finishes a fetch: back-fills (unless it was invalidated meanwhile),
    /// records absence, and wakes the waiters.
    pub fn complete(
        &self,
        db: usize,
        key: &Bytes,
        flight: &Arc<Flight>,
        result: Result<Option<Fetched>, TierError>,
    ) -> FetchOutcome {
        let outcome = {
            let mut m = self.inflight.lock();
            if let Some(per_db) = m.get_mut(key) {
                per_db.retain(|(d, f)| !(*d == db && Arc::ptr_eq(f, flight)));
                if per_db.is_empty() {
                    m.remove(key);
                }
            }
            let fresh = !flight.invalidated.load(Ordering::Acquire)
                && flight.epoch == self.epoch.load(Ordering::Acquire);
            // Back-fill while holding the in-flight lock, so an invalidation
            // either marked this fetch already or comes after the fill.
            match result {
                Err(TierError::Timeout) => FetchOutcome::Failed(TierErrorKind::Timeout),
                Err(TierError::Unavailable) | Err(TierError::Lost) | Err(TierError::Saturated) => {
                    FetchOutcome::Failed(TierErrorKind::Unavailable)
                }
                Err(TierError::Unsupported) | Err(TierError::Rejected(_)) => {
                    FetchOutcome::NotFilled
                }
                Ok(_) if !fresh || !self.tracking.covers(key) => FetchOutcome::NotFilled,
                Ok(None) => {
                    self.remember_absent(db, key);
                    FetchOutcome::Absent
                }
                Ok(Some(mut f)) => {
                    if self.local_ttl_max_ms > 0 {
                        let cap = now_ms() + self.local_ttl_max_ms;
                        if f.expire_at == 0 || f.expire_at > cap {
                            f.expire_at = cap;
                        }
                    }
                    if f.expire_at != 0 && f.expire_at <= now_ms() {
                        FetchOutcome::Absent
                    } else if self.local.fill(db, key, f) {
                        FetchOutcome::Filled
                    } else {
                        FetchOutcome::NotFilled
                    }
                }
            }
        };
        flight.done.send_replace(Some(outcome));
        outcome
    }

    fn remember_absent(&self, db: usize, key: &Bytes) {
        if self.negative_ttl_ms == 0 {
            return;
        }
        let mut n = self.negative.lock();
        let now = now_ms();
        // Bounded: a scan over many missing keys must not grow it forever.
        if self.negative_len.load(Ordering::Relaxed) >= NEGATIVE_MAX {
            n.retain(|_, per_db| {
                per_db.retain(|(_, until)| *until > now);
                !per_db.is_empty()
            });
            let mut len: usize = n.values().map(|v| v.len()).sum();
            if len >= NEGATIVE_MAX {
                n.clear();
                len = 0;
            }
            self.negative_len.store(len, Ordering::Relaxed);
        }
        let until = now + self.negative_ttl_ms;
        let per_db = n.entry(key.clone()).or_default();
        match per_db.iter_mut().find(|(d, _)| *d == db) {
            Some(e) => e.1 = until,
            None => {
                per_db.push((db, until));
                self.negative_len.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// How many fetches are in flight (INFO `fetches_in_flight`).
    pub fn in_flight(&self) -> usize {
        self.inflight.lock().values().map(|v| v.len()).sum()
    }

    /// Whether `key` of database `db` is remembered as absent upstream.
    pub fn negatively_cached(&self, db: usize, key: &[u8]) -> bool {
        if self.negative_ttl_ms == 0 {
            return false;
        }
        let n = self.negative.lock();
        n.get(key)
            .and_then(|per_db| per_db.iter().find(|(d, _)| *d == db))
            .is_some_and(|(_, until)| *until > now_ms())
    }

    /// Keys of database `db` changed upstream (a write this node
    /// forwarded): mark their fetches, forget their absence, drop them.
    pub fn invalidate(&self, db: usize, keys: &[Bytes]) {
        self.forget(Some(db), keys);
        self.local.invalidate(db, keys);
    }

    /// Keys changed upstream in some database (a tracking invalidation:
    /// Redis names keys without their database, and sends one for a key
    /// tracked in any database when it changes in any): the key is dropped
    /// in every database.
    pub fn invalidate_everywhere(&self, keys: &[Bytes]) {
        self.forget(None, keys);
        self.local.invalidate_everywhere(keys);
    }

    /// Marks the fetches of `keys` (in `db`, or in every database) and
    /// forgets their absence.
    fn forget(&self, db: Option<usize>, keys: &[Bytes]) {
        let hit = |d: usize| db.is_none_or(|db| db == d);
        {
            let m = self.inflight.lock();
            if !m.is_empty() {
                for k in keys {
                    for (_, f) in m.get(k).into_iter().flatten().filter(|(d, _)| hit(*d)) {
                        f.invalidated.store(true, Ordering::Release);
                    }
                }
            }
        }
        if self.negative_ttl_ms > 0 {
            let mut n = self.negative.lock();
            for k in keys {
                if let Some(per_db) = n.get_mut(k) {
                    let before = per_db.len();
                    per_db.retain(|(d, _)| !hit(*d));
                    let gone = before - per_db.len();
                    if per_db.is_empty() {
                        n.remove(k);
                    }
                    self.negative_len.fetch_sub(gone, Ordering::Relaxed);
                }
            }
        }
    }

    /// Everything may have changed upstream (FLUSHALL, tracking overflow,
    /// reconnect): no fetch in flight is back-filled, the local tier is emptied.
    pub fn flush_all(&self) {
        self.void_in_flight();
        self.local.flush();
    }

    /// Database `db` was emptied or swapped upstream (FLUSHDB, SWAPDB this
    /// node forwarded): no fetch in flight is back-filled (whatever its
    /// database: cheap, and rare), the local database is emptied.
    pub fn flush_db(&self, db: usize) {
        self.void_in_flight();
        self.local.flush_db(db);
    }

    /// The invalidation link dropped: nothing in flight may be back-filled
    /// (its invalidations could be lost). Local copies stay for degraded reads.
    pub fn link_down(&self) {
        self.void_in_flight();
    }

    fn void_in_flight(&self) {
        let m = self.inflight.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        for (_, f) in m.values().flatten() {
            f.invalidated.store(true, Ordering::Release);
        }
        drop(m);
        self.negative.lock().clear();
        self.negative_len.store(0, Ordering::Relaxed);
    }
}

/// Installs the tiered router if the configuration names an upstream tier;
/// with memory alone nothing is installed (zero overhead).
pub fn install(server: &Arc<Shared>, config: &Config) {
    if let Some(router) = build(server, config) {
        if server.router.set(router).is_err() {
            tracing::error!("another router is already installed; tiers disabled");
        }
    }
}

/// Builds the tiered router for the configured upstream (None: memory alone).
pub fn build(server: &Arc<Shared>, config: &Config) -> Option<Arc<router::TieredRouter>> {
    let upstream = config.tiers.iter().find_map(|t| match t {
        TierSpec::Redis(url) => Some(url.clone()),
        TierSpec::Memory => None,
    });
    let url = upstream?;
    let local = Arc::new(memory::MemoryTier::new(server.clone()));
    let coherence = Arc::new(Coherence::new(
        local.clone(),
        config.negative_cache_ttl_ms,
        config.local_ttl_max_ms,
        config.upstream_tracking.clone(),
    ));
    let timeout = std::time::Duration::from_millis(config.upstream_timeout_ms);
    // Blocking commands hold a connection each: as many as clients may be.
    let max_blocking = usize::try_from(config.maxclients).unwrap_or(usize::MAX);
    let databases = usize::try_from(config.databases).unwrap_or(usize::MAX);
    // rustls needs a crypto provider for `rediss://` (installed once).
    // ring's: it builds with a C compiler alone (aws-lc-rs needs cmake);
    // rustls deprecates it for lacking post-quantum key exchange only.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = &config.upstream_tls;
    let start = if crate::config::is_cluster_url(&url) {
        // A Redis Cluster has database 0 only: SELECT n answers its error.
        let _ = server
            .databases_refused
            .set("ERR SELECT is not allowed in cluster mode".to_string());
        redis_cluster::ClusterTier::start(&url, timeout, max_blocking, tls, coherence.clone())
            .map(redis_cluster::Upstream::Cluster)
    } else {
        redis::RedisTier::start(
            &url,
            timeout,
            max_blocking,
            databases,
            tls,
            coherence.clone(),
            Arc::new(TierStats::default()),
        )
        .map(redis_cluster::Upstream::Single)
    };
    let upstream = match start {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %crate::config::redact_url(&e), "invalid upstream tier");
            return None;
        }
    };
    Some(Arc::new(router::TieredRouter::new(
        server, local, upstream, coherence,
    )))
}

/// The type a command expects its keys to hold, from its group (a guess that
/// saves a round trip when fetching; a wrong guess costs one more).
pub fn type_hint(group: &str) -> Option<ValueType> {
    Some(match group {
        "string" => ValueType::String,
        "hash" => ValueType::Hash,
        "list" => ValueType::List,
        "set" => ValueType::Set,
        "sorted-set" | "sorted_set" | "zset" => ValueType::ZSet,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::HashValue;

    fn hash(f: &str, v: &str) -> Fetched {
        let mut h = HashValue::new();
        h.insert(f.as_bytes(), v.as_bytes());
        Fetched {
            value: Value::Hash(Box::new(h)),
            expire_at: 0,
        }
    }

    async fn coherence() -> (Arc<Shared>, Coherence) {
        let config = Config {
            port: 0,
            ..Config::default()
        };
        let shared = Arc::new(Shared::new(&config, "127.0.0.1:0".parse().unwrap()));
        let local = Arc::new(memory::MemoryTier::new(shared.clone()));
        (shared, Coherence::new(local, 0, 60_000, Tracking::Default))
    }

    fn present(shared: &Shared, key: &Bytes) -> bool {
        shared.db.lock(&[key]).peek(key).is_some()
    }

    /// LESSONS.md, the invalidation race: an invalidation that arrives while
    /// the fetch is in flight wins over the fetched (stale) value.
    #[tokio::test]
    async fn invalidation_during_fetch_is_not_overwritten() {
        let (shared, co) = coherence().await;
        let k = Bytes::from_static(b"k");
        let (f, leader) = co.begin(0, &k);
        assert!(leader);
        let (f2, leader2) = co.begin(0, &k);
        assert!(!leader2 && Arc::ptr_eq(&f, &f2), "single flight");
        co.invalidate(0, std::slice::from_ref(&k));
        assert_eq!(
            co.complete(0, &k, &f, Ok(Some(hash("f", "stale")))),
            FetchOutcome::NotFilled
        );
        assert!(!present(&shared, &k));
        // The next fetch is a new flight and fills.
        let (f, leader) = co.begin(0, &k);
        assert!(leader);
        assert_eq!(
            co.complete(0, &k, &f, Ok(Some(hash("f", "fresh")))),
            FetchOutcome::Filled
        );
        assert!(present(&shared, &k));
        // An invalidation after the fill drops the copy.
        co.invalidate(0, std::slice::from_ref(&k));
        assert!(!present(&shared, &k));
    }

    /// A flush or a lost link during a fetch: nothing from before is filled.
    #[tokio::test]
    async fn flush_and_link_loss_void_fetches_in_flight() {
        let (shared, co) = coherence().await;
        let k = Bytes::from_static(b"k");
        let (f, _) = co.begin(0, &k);
        co.link_down();
        assert_eq!(
            co.complete(0, &k, &f, Ok(Some(hash("f", "v")))),
            FetchOutcome::NotFilled
        );
        let (f, _) = co.begin(0, &k);
        co.flush_all();
        assert_eq!(
            co.complete(0, &k, &f, Ok(Some(hash("f", "v")))),
            FetchOutcome::NotFilled
        );
        assert!(!present(&shared, &k));
        // The local TTL is capped by local-ttl-max.
        let (f, _) = co.begin(0, &k);
        assert_eq!(
            co.complete(0, &k, &f, Ok(Some(hash("f", "v")))),
            FetchOutcome::Filled
        );
        let at = shared.db.lock(&[&k]).peek(&k).unwrap().expire_at;
        let now = now_ms();
        assert!(at > now && at <= now + 60_000, "{at} vs {now}");
    }
}
