//! An upstream Redis Cluster (`redis+cluster://`, `rediss+cluster://`): one
//! [`RedisTier`] per primary, each key sent to its slot's primary.
//!
//! jcache keeps its own slot map (`CLUSTER SLOTS`, `slots.rs`) rather than
//! the `redis` crate's cluster client, because every primary needs what a
//! single upstream has: its own RESP3 tracking pair (`inval` + `track`), so
//! a key changed directly in any shard is dropped here; its own per-client
//! pipelines and WATCH connections; its own health check. A `RedisTier` per
//! primary gives all of that unchanged; this module only picks the node.
//!
//! The slot map is read at start, every second, and at once after a
//! `MOVED` (the request is then retried once at the node it names); an
//! `ASK` is followed with `ASKING` on the named node, without a refresh. A
//! write wrapped with its re-read in MULTI that a redirect aborted
//! (`EXECABORT`: nothing ran) is sent again plainly ([`must_resend`]).
//! The invariant: **every local copy came from the primary that serves its
//! slot in the current map**. Whenever the map changes (a failover, a
//! resharding, a node added), every local copy is dropped and fetches in
//! flight are voided (the simplest correct rule: a promoted replica may
//! lack writes its old primary acknowledged), and a new primary's tier
//! starts empty-handed; a node that is no longer a primary is retired.
//!
//! A primary that dies: its tier goes down (its tracking link is lost, as
//! for a single upstream), local copies keep being served, requests for its
//! slots fail fast with `TRYAGAIN upstream unavailable`, and once the
//! cluster promoted a replica the next refresh (within a second) maps the
//! slots to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use redis::Value;
use tokio::sync::Notify;
use tracing::{info, warn};

use super::redis::{open_client, RedisTier};
use super::slots::{common_slot, key_slot, redirect, SlotMap, CROSSSLOT_ERR};
use super::{Coherence, Fetched, Tier, TierError, TierFuture, TierStats};
use crate::commands::{Command, KeySpec};
use crate::config::{ClusterUrl, UpstreamTls};
use crate::engine::ValueType;

/// How often the slot map is read when nothing asks sooner.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The upstream of tiered mode: one Redis (plain or through Sentinel), or
/// a Redis Cluster.
#[derive(Clone)]
pub enum Upstream {
    Single(Arc<RedisTier>),
    Cluster(Arc<ClusterTier>),
}

impl Upstream {
    /// The node for a request whose keys all hash to `slot` (None: no
    /// keys, any node serves it).
    pub fn node(&self, slot: Option<u16>) -> Result<Arc<RedisTier>, TierError> {
        match self {
            Upstream::Single(t) => Ok(t.clone()),
            Upstream::Cluster(c) => match slot {
                Some(s) => c.node_of(s),
                None => c.any_node(),
            },
        }
    }

    /// The node for `key`.
    pub fn node_of_key(&self, key: &[u8]) -> Result<Arc<RedisTier>, TierError> {
        match self {
            Upstream::Single(t) => Ok(t.clone()),
            Upstream::Cluster(c) => c.node_of(key_slot(key)),
        }
    }

    pub fn cluster(&self) -> Option<&Arc<ClusterTier>> {
        match self {
            Upstream::Single(_) => None,
            Upstream::Cluster(c) => Some(c),
        }
    }

    /// Forwards on `node`, following a cluster's redirects.
    pub async fn forward(
        &self,
        node: &Arc<RedisTier>,
        db: usize,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        match self {
            Upstream::Single(_) => node.forward(db, args, resp3).await,
            Upstream::Cluster(c) => c.forward(node.clone(), args, resp3).await,
        }
    }

    /// Whole-key fetch from the node that serves `key`.
    pub async fn fetch(
        &self,
        db: usize,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> Result<Option<Fetched>, TierError> {
        match self {
            Upstream::Single(t) => Tier::fetch(&**t, db, key, hint).await,
            Upstream::Cluster(c) => c.fetch_key(key, hint).await,
        }
    }

    /// Every node (one for a single upstream).
    pub fn nodes(&self) -> Vec<Arc<RedisTier>> {
        match self {
            Upstream::Single(t) => vec![t.clone()],
            Upstream::Cluster(c) => c.nodes(),
        }
    }

    pub fn is_up(&self) -> bool {
        match self {
            Upstream::Single(t) => t.is_up(),
            Upstream::Cluster(c) => c.is_up(),
        }
    }

    pub fn as_tier(&self) -> &dyn Tier {
        match self {
            Upstream::Single(t) => &**t,
            Upstream::Cluster(c) => &**c,
        }
    }

    /// The client's WATCH connection, on whichever node holds it.
    pub fn watch_node(&self, client_id: u64) -> Option<Arc<RedisTier>> {
        self.nodes().into_iter().find(|n| n.has_watch(client_id))
    }

    pub fn release(&self, client_id: u64) {
        for n in self.nodes() {
            n.release(client_id);
        }
    }

    pub fn forget_client(&self, client_id: u64) {
        for n in self.nodes() {
            n.forget_client(client_id);
        }
    }
}

/// The slot map and a tier per primary (same order as `map.primaries`).
struct Topology {
    map: Option<SlotMap>,
    nodes: Vec<Arc<RedisTier>>,
}

pub struct ClusterTier {
    url: ClusterUrl,
    tls: UpstreamTls,
    timeout: Duration,
    max_blocking: usize,
    coherence: Arc<Coherence>,
    stats: Arc<TierStats>,
    topology: RwLock<Arc<Topology>>,
    kick: Notify,
    /// Bumped after every refresh attempt (waited on after a `MOVED`).
    refreshes: tokio::sync::watch::Sender<u64>,
    topology_changes: AtomicU64,
}

impl ClusterTier {
    /// Validates the URL and starts the refresher (the map is read in the
    /// background; until then every request is `TRYAGAIN`).
    pub fn start(
        url: &str,
        timeout: Duration,
        max_blocking: usize,
        tls: &UpstreamTls,
        coherence: Arc<Coherence>,
    ) -> Result<Arc<ClusterTier>, String> {
        let url = ClusterUrl::parse(url).map_err(|e| e.to_string())?;
        let tier = Arc::new(ClusterTier {
            url,
            tls: tls.clone(),
            timeout,
            max_blocking,
            coherence,
            stats: Arc::new(TierStats::default()),
            topology: RwLock::new(Arc::new(Topology {
                map: None,
                nodes: Vec::new(),
            })),
            kick: Notify::new(),
            refreshes: tokio::sync::watch::channel(0).0,
            topology_changes: AtomicU64::new(0),
        });
        tokio::spawn(refresher(Arc::downgrade(&tier)));
        Ok(tier)
    }

    /// The primary serving `slot`.
    pub fn node_of(&self, slot: u16) -> Result<Arc<RedisTier>, TierError> {
        let t = self.topology.read().clone();
        let i = t
            .map
            .as_ref()
            .and_then(|m| m.owner_of(slot))
            .ok_or(TierError::Unavailable)?;
        t.nodes.get(i).cloned().ok_or(TierError::Unavailable)
    }

    /// A primary that is up (for requests without keys), else the first.
    pub fn any_node(&self) -> Result<Arc<RedisTier>, TierError> {
        let t = self.topology.read().clone();
        t.nodes
            .iter()
            .find(|n| n.is_up())
            .or(t.nodes.first())
            .cloned()
            .ok_or(TierError::Unavailable)
    }

    pub fn nodes(&self) -> Vec<Arc<RedisTier>> {
        self.topology.read().nodes.clone()
    }

    fn node_at(&self, addr: &str) -> Option<Arc<RedisTier>> {
        let t = self.topology.read().clone();
        let i = t.map.as_ref()?.primaries.iter().position(|a| a == addr)?;
        t.nodes.get(i).cloned()
    }

    /// Every slot is served and every primary is up.
    pub fn is_up(&self) -> bool {
        let t = self.topology.read().clone();
        let served = t
            .map
            .as_ref()
            .is_some_and(|m| m.owner.iter().all(|&o| o != u16::MAX));
        served && t.nodes.iter().all(|n| n.is_up())
    }

    /// Asks for a refresh of the slot map soon.
    pub fn kick(&self) {
        self.kick.notify_one();
    }

    /// Refreshes the slot map now and waits for it (bounded by twice the
    /// upstream timeout).
    pub async fn refresh_now(&self) {
        let mut rx = self.refreshes.subscribe();
        let seen = *rx.borrow_and_update();
        self.kick.notify_one();
        let _ = tokio::time::timeout(self.timeout * 2, rx.wait_for(|n| *n > seen)).await;
    }

    /// Forwards to `node`, following one `MOVED` (after a refresh) or `ASK`.
    pub async fn forward(
        &self,
        node: Arc<RedisTier>,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        let r = node.forward(0, args, resp3).await;
        let Some((ask, addr)) = redirect_of(&r) else {
            return r;
        };
        if ask {
            return match self.node_at(&addr) {
                Some(target) => target.forward_asking(args, resp3).await,
                None => r,
            };
        }
        self.refresh_now().await;
        match self.node_at(&addr) {
            Some(target) => target.forward(0, args, resp3).await,
            None => r,
        }
    }

    /// A whole-key fetch from the key's primary. A redirect (seen as an
    /// aborted fetch) refreshes the map and retries once.
    async fn fetch_key(
        &self,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> Result<Option<Fetched>, TierError> {
        let node = self.node_of(key_slot(&key))?;
        let r = Tier::fetch(&*node, 0, key.clone(), hint).await;
        if !matches!(&r, Err(TierError::Rejected(_))) {
            return r;
        }
        self.refresh_now().await;
        let again = self.node_of(key_slot(&key))?;
        if Arc::ptr_eq(&again, &node) {
            return r;
        }
        Tier::fetch(&*again, 0, key, hint).await
    }

    /// MGET, MSET, DEL, UNLINK, EXISTS, TOUCH whose keys span slots: one
    /// request per slot (all at once), the replies merged as one Redis
    /// would answer. The first error wins (a write's other parts may have
    /// been applied, as when a Redis Cluster client splits it).
    pub async fn forward_split(&self, args: &[Bytes], resp3: bool) -> Result<Value, TierError> {
        let name = args[0].to_ascii_lowercase();
        let step = if name == b"mset" { 2 } else { 1 };
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, chunk) in args[1..].chunks(step).enumerate() {
            let slot = key_slot(&chunk[0]);
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((slot, vec![i])),
            }
        }
        let parts = groups.iter().map(|(slot, idx)| {
            let mut sub = Vec::with_capacity(1 + idx.len() * step);
            sub.push(args[0].clone());
            for &i in idx {
                sub.extend_from_slice(&args[1 + i * step..1 + (i + 1) * step]);
            }
            let node = self.node_of(*slot);
            async move { self.forward(node?, &sub, resp3).await }
        });
        let replies = futures_util::future::join_all(parts).await;
        let n = (args.len() - 1) / step;
        let mut values = vec![Value::Nil; if name == b"mget" { n } else { 0 }];
        let mut sum = 0i64;
        for ((_, idx), r) in groups.iter().zip(replies) {
            match r? {
                e @ Value::ServerError(_) => return Ok(e),
                Value::Int(i) => sum += i,
                Value::Array(items) if items.len() == idx.len() && !values.is_empty() => {
                    for (&i, v) in idx.iter().zip(items) {
                        values[i] = v;
                    }
                }
                Value::Okay => {}
                Value::SimpleString(s) if s == "OK" => {}
                _ => return Err(TierError::Unsupported),
            }
        }
        Ok(match &name[..] {
            b"mget" => Value::Array(values),
            b"mset" => Value::Okay,
            _ => Value::Int(sum),
        })
    }

    /// A request for every primary (FLUSHALL, FLUSHDB, DBSIZE, KEYS, SCRIPT
    /// LOAD/FLUSH, FUNCTION LOAD/...): sent to each, merged: integers
    /// summed, arrays concatenated, otherwise the first reply (or error).
    pub async fn broadcast(&self, args: &[Bytes], resp3: bool) -> Result<Value, TierError> {
        let nodes = self.nodes();
        if nodes.is_empty() || !self.is_up() {
            return Err(TierError::Unavailable);
        }
        let replies =
            futures_util::future::join_all(nodes.iter().map(|n| n.forward(0, args, resp3))).await;
        let mut merged: Option<Value> = None;
        for r in replies {
            let v = r?;
            merged = Some(match (merged, v) {
                (_, e @ Value::ServerError(_)) => return Ok(e),
                (None, v) => v,
                (Some(Value::Int(a)), Value::Int(b)) => Value::Int(a + b),
                (Some(Value::Array(mut a)), Value::Array(b)) => {
                    a.extend(b);
                    Value::Array(a)
                }
                (Some(first), _) => first,
            });
        }
        merged.ok_or(TierError::Unavailable)
    }

    /// Reads the slot map from the first node that answers (the current
    /// primaries first, then the seeds).
    async fn read_map(&self) -> Option<SlotMap> {
        let mut addrs: Vec<String> = self
            .topology
            .read()
            .map
            .as_ref()
            .map(|m| m.primaries.clone())
            .unwrap_or_default();
        for s in &self.url.seeds {
            if !addrs.contains(s) {
                addrs.push(s.clone());
            }
        }
        for addr in addrs {
            match self.ask_slots(&addr).await {
                Ok(m) => return Some(m),
                Err(e) => tracing::debug!(node = %addr, error = %e, "CLUSTER SLOTS failed"),
            }
        }
        None
    }

    fn node_url(&self, addr: &str) -> String {
        let scheme = if self.url.tls { "rediss" } else { "redis" };
        format!("{scheme}://{}{addr}", self.url.userinfo)
    }

    async fn ask_slots(&self, addr: &str) -> Result<SlotMap, String> {
        let client = open_client(self.node_url(addr).as_str(), &self.tls, self.timeout)?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let ask = async {
            let mut conn = client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await
                .map_err(|e| e.to_string())?;
            conn.send_packed_command(redis::cmd("CLUSTER").arg("SLOTS"))
                .await
                .map_err(|e| e.to_string())
        };
        let reply = tokio::time::timeout(self.timeout * 2, ask)
            .await
            .map_err(|_| "timeout".to_string())??;
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        SlotMap::parse(&reply, host).ok_or_else(|| format!("CLUSTER SLOTS: {reply:?}"))
    }

    /// Installs a new slot map: tiers kept for primaries that stay, started
    /// for new ones, retired for the others; every local copy dropped.
    fn apply(&self, map: SlotMap) {
        let old = self.topology.read().clone();
        if old.map.as_ref() == Some(&map) {
            return;
        }
        let old_addrs = old.map.as_ref().map(|m| &m.primaries[..]).unwrap_or(&[]);
        let mut nodes = Vec::with_capacity(map.primaries.len());
        for addr in &map.primaries {
            let kept = old_addrs
                .iter()
                .position(|a| a == addr)
                .and_then(|i| old.nodes.get(i).cloned());
            let node = match kept {
                Some(n) => n,
                None => match RedisTier::start(
                    &self.node_url(addr),
                    self.timeout,
                    self.max_blocking,
                    1,
                    &self.tls,
                    self.coherence.clone(),
                    self.stats.clone(),
                ) {
                    Ok(n) => n,
                    Err(e) => {
                        warn!(node = %addr, error = %crate::config::redact_url(&e), "cannot use cluster node");
                        return;
                    }
                },
            };
            nodes.push(node);
        }
        for (addr, n) in old_addrs.iter().zip(&old.nodes) {
            if !map.primaries.contains(addr) {
                n.stop();
            }
        }
        let first = old.map.is_none();
        info!(primaries = %map.primaries.join(","), "upstream cluster slot map updated");
        *self.topology.write() = Arc::new(Topology {
            map: Some(map),
            nodes,
        });
        if !first {
            self.topology_changes.fetch_add(1, Ordering::Relaxed);
            // Local copies may have come from a primary that no longer
            // serves their slot, or from one whose replica took over.
            self.coherence.flush_all();
        }
    }
}

/// Reads the slot map every [`REFRESH_EVERY`], or at once when kicked.
async fn refresher(me: Weak<ClusterTier>) {
    let mut failing = false;
    loop {
        let Some(tier) = me.upgrade() else { return };
        match tier.read_map().await {
            Some(map) => {
                failing = false;
                tier.apply(map);
            }
            None if !failing => {
                failing = true;
                warn!(seeds = %tier.url.seeds.join(","), "cannot read the upstream cluster's slot map; retrying");
            }
            None => {}
        }
        tier.refreshes.send_modify(|n| *n += 1);
        let wait = async {
            tokio::select! {
                _ = tier.kick.notified() => {}
                _ = tokio::time::sleep(REFRESH_EVERY) => {}
            }
        };
        wait.await;
    }
}

/// The redirect in a node's reply, if it is one.
fn redirect_of(r: &Result<Value, TierError>) -> Option<(bool, String)> {
    match r {
        Ok(Value::ServerError(e)) => redirect(e.code(), e.details().unwrap_or("")),
        Err(TierError::Rejected(m)) => {
            let (code, detail) = m.split_once(' ')?;
            redirect(code, detail)
        }
        _ => None,
    }
}

/// Whether a node's reply says nothing ran and the request should be sent
/// again, plainly, following redirects: a `MOVED` or `ASK`, or an
/// `EXECABORT` (a write wrapped with its re-read in MULTI, refused while
/// queueing: by a redirect, or by an error the plain send then answers).
pub fn must_resend(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if matches!(e.code(), "MOVED" | "ASK" | "EXECABORT"))
}

impl Tier for ClusterTier {
    fn kind(&self) -> &'static str {
        "redis-cluster"
    }

    fn describe(&self) -> String {
        let t = self.topology.read().clone();
        match &t.map {
            Some(m) => m.primaries.join(","),
            None => self.url.seeds.join(","),
        }
    }

    fn available(&self) -> bool {
        self.is_up()
    }

    fn fetch(
        &self,
        _db: usize,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> TierFuture<Result<Option<Fetched>, TierError>> {
        let node = self.node_of(key_slot(&key));
        Box::pin(async move { Tier::fetch(&*node?, 0, key, hint).await })
    }

    fn fill(&self, _db: usize, _key: &Bytes, _f: Fetched) -> bool {
        false
    }

    fn invalidate(&self, _db: usize, _keys: &[Bytes]) {}

    fn flush(&self) {}

    fn execute(
        &self,
        _db: usize,
        args: Vec<Bytes>,
        resp3: bool,
    ) -> TierFuture<Result<Value, TierError>> {
        let node = match args.get(1) {
            Some(k) => self.node_of(key_slot(k)),
            None => self.any_node(),
        };
        Box::pin(async move { node?.forward(0, &args, resp3).await })
    }

    fn stats(&self) -> &TierStats {
        &self.stats
    }

    fn info_fields(&self) -> Vec<(String, String)> {
        let nodes = self.nodes();
        let up = nodes.iter().filter(|n| n.is_up()).count();
        vec![
            ("addr".into(), self.describe()),
            (
                "status".into(),
                if self.is_up() { "up" } else { "down" }.into(),
            ),
            ("primaries".into(), nodes.len().to_string()),
            ("primaries_up".into(), up.to_string()),
            (
                "topology_changes".into(),
                self.topology_changes.load(Ordering::Relaxed).to_string(),
            ),
            (
                "forwarded".into(),
                self.stats.forwarded.load(Ordering::Relaxed).to_string(),
            ),
            (
                "fetches_in_flight".into(),
                self.coherence.in_flight().to_string(),
            ),
        ]
    }
}

/// Where a command goes upstream.
pub enum Dest {
    /// One node: every key hashes to its slots (or there are no keys).
    Node(Arc<RedisTier>),
    /// Keys of several slots, by a command that splits (MGET, MSET, DEL,
    /// UNLINK, EXISTS, TOUCH): [`ClusterTier::forward_split`].
    Split,
    /// Every primary: [`ClusterTier::broadcast`].
    All,
}

/// Why a command cannot go upstream.
pub enum NoRoute {
    CrossSlot,
    Tier(TierError),
}

impl NoRoute {
    /// The error reply's text.
    pub fn reply(&self, write: bool) -> String {
        match self {
            NoRoute::CrossSlot => CROSSSLOT_ERR.to_string(),
            NoRoute::Tier(e) => e.reply(write).into_owned(),
        }
    }
}

/// Multi-key commands split per slot in front of a cluster.
const SPLIT: &[&str] = &["mget", "mset", "del", "unlink", "exists", "touch"];

impl Upstream {
    /// Where `cmd` (top-level `args`) goes: a single upstream takes
    /// everything; a cluster's node is the one serving the keys' slot.
    pub fn dest(&self, cmd: &'static Command, args: &[Bytes]) -> Result<Dest, NoRoute> {
        let c = match self {
            Upstream::Single(t) => return Ok(Dest::Node(t.clone())),
            Upstream::Cluster(c) => c,
        };
        let node = |slot: Option<u16>| {
            let n = match slot {
                Some(s) => c.node_of(s),
                None => c.any_node(),
            };
            n.map(Dest::Node).map_err(NoRoute::Tier)
        };
        if matches!(cmd.keys, KeySpec::All) {
            return match cmd.name {
                "flushall" | "flushdb" | "dbsize" | "keys" => Ok(Dest::All),
                _ => node(None),
            };
        }
        let sub = args.get(1).map(|a| a.to_ascii_lowercase());
        let management =
            args[0].eq_ignore_ascii_case(b"script") || args[0].eq_ignore_ascii_case(b"function");
        if management
            && matches!(
                sub.as_deref(),
                Some(b"load" | b"flush" | b"delete" | b"restore")
            )
        {
            return Ok(Dest::All);
        }
        let keys = cmd.key_positions(args);
        match common_slot(keys.iter().map(|&i| &args[i][..])) {
            Ok(slot) => node(slot),
            Err(_) if SPLIT.contains(&cmd.name) => Ok(Dest::Split),
            Err(_) => Err(NoRoute::CrossSlot),
        }
    }

    /// Sends `args` where `dest` says (a split or a broadcast only exists
    /// in front of a cluster).
    pub async fn send(
        &self,
        dest: Dest,
        db: usize,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        match (dest, self) {
            (Dest::Node(n), _) => self.forward(&n, db, args, resp3).await,
            (Dest::Split, Upstream::Cluster(c)) => c.forward_split(args, resp3).await,
            (Dest::All, Upstream::Cluster(c)) => c.broadcast(args, resp3).await,
            (_, Upstream::Single(t)) => t.forward(db, args, resp3).await,
        }
    }
}
