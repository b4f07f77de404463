//! The Redis tier: an upstream Redis server, the source of truth.
//!
//! Connections (all from the `redis` crate, multiplexed, with connect and
//! response timeouts):
//! - `inval`: RESP3, carries nothing but invalidation pushes and the
//!   supervisor's PING. Redis sends it an `invalidate` push when a key this
//!   node copied changes (null payload = flush all). Because no value ever
//!   travels on it, a large transfer elsewhere never delays an invalidation,
//!   and its PING answers as fast as the upstream does.
//! - `track`: RESP3 with `CLIENT TRACKING on REDIRECT <inval's id> NOLOOP`
//!   (with `--upstream-tracking bcast`: `BCAST [PREFIX p ...]`, so Redis
//!   keeps no per-key table for this node and reports every change under
//!   the prefixes; keys outside them are never copied, see `Coherence`);
//!   every whole-key fetch (and write-through with a re-read) goes on it, so
//!   Redis remembers the keys this node copied and sends their
//!   invalidations to `inval`. A fetch is registered in flight before it is
//!   sent, and an invalidation arriving on `inval` before the fetch
//!   completes voids it (`Coherence`), so the two links need no ordering.
//! - `fwd2` / `fwd3`: forwarded commands, on the protocol of the client that
//!   sent them (so reply shapes are exactly Redis's).
//! - per blocking command (at most `maxclients` at once), and per client
//!   between WATCH and EXEC: a dedicated connection (blocking and WATCH
//!   state are per connection), closed when the command ends or its client
//!   goes away.
//!
//! Every shared connection rests in database 0 between requests; a request
//! of a client in database n goes as one pipeline `SELECT n`, the request,
//! `SELECT 0` ([`DbPipe`]; database 0 pays nothing). Tracking is by key
//! name only in Redis, so an invalidation drops the name in every local
//! database. On connect the upstream must have jcache's `databases`.
//!
//! With `redis+sentinel://` the address is the primary the sentinels name,
//! asked on every connect (`sentinel.rs`); the server reached must say
//! ROLE master, checked again with every health check, and a
//! `+switch-master` from any sentinel drops local copies and reconnects.
//!
//! A supervisor task connects, pings every second, and on a failure marks
//! the tier down and reconnects with backoff (50 ms doubling to 1 s). Only
//! `inval`'s PING may fail by being slow; the data connections may be busy
//! with a large value for longer than the timeout, so for them only a closed
//! connection counts. Losing `inval` or `track` (a closed socket, Redis's
//! `tracking-redir-broken`) loses invalidations: the tier goes down at once.
//! On reconnect the local tier is flushed before the tier is marked up.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use redis::aio::MultiplexedConnection;
use redis::{
    AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::{Notify, Semaphore};
use tracing::{info, warn};

use super::{sentinel, Coherence, Fetched, Tier, TierError, TierFuture, TierStats};
use crate::config::{SentinelUrl, Tracking, UpstreamTls, SENTINEL_SCHEME, SENTINEL_TLS_SCHEME};
use crate::engine::{now_ms, HashValue, ListValue, SetValue, Value as LocalValue, ValueType, ZSet};

/// The `redis` crate's clients (RESP2, RESP3) for one address.
#[derive(Clone)]
struct Clients {
    c2: redis::Client,
    c3: redis::Client,
}

/// The socket options of every upstream connection:
/// - `TCP_NODELAY`: requests are small and pipelined on shared
///   connections; Nagle's algorithm (the crate's default) would hold a
///   write back until the previous one is acknowledged.
/// - `TCP_USER_TIMEOUT` of the upstream timeout (at least 1 s): when the
///   upstream stops acknowledging (a partition), the kernel drops the
///   connection and what it had not delivered, instead of retransmitting
///   it for minutes. A write answered "may or may not have been applied"
///   then cannot reach Redis long after, once the link is back (after, for
///   example, another cluster node has written the same key).
fn tcp_settings(timeout: Duration) -> redis::io::tcp::TcpSettings {
    redis::io::tcp::TcpSettings::default()
        .set_nodelay(true)
        .set_user_timeout(timeout.max(Duration::from_secs(1)))
}

/// A client for `url`: over TLS with `tls`'s certificates if it is a
/// `rediss://` one; `timeout` is the upstream timeout.
pub fn open_client(
    url: impl IntoConnectionInfo,
    tls: &UpstreamTls,
    timeout: Duration,
) -> Result<redis::Client, String> {
    let info = url
        .into_connection_info()
        .map_err(|e| e.to_string())?
        .set_tcp_settings(tcp_settings(timeout));
    let client = if matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. }) {
        let certs = redis::TlsCertificates {
            client_tls: tls
                .client
                .as_ref()
                .map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
            root_cert: tls.ca.clone(),
        };
        redis::Client::build_with_tls(info, certs)
    } else {
        redis::Client::open(info)
    };
    client.map_err(|e| e.to_string())
}

impl Clients {
    /// The clients for `url`, and its `host:port`.
    fn of(url: &str, tls: &UpstreamTls, timeout: Duration) -> Result<(Clients, String), String> {
        let info = url.into_connection_info().map_err(|e| e.to_string())?;
        let label = info.addr().to_string();
        let with = |p: ProtocolVersion| {
            let settings = info.redis_settings().clone().set_protocol(p);
            open_client(info.clone().set_redis_settings(settings), tls, timeout)
        };
        let clients = Clients {
            c2: with(ProtocolVersion::RESP2)?,
            c3: with(ProtocolVersion::RESP3)?,
        };
        Ok((clients, label))
    }

    fn of_protocol(&self, resp3: bool) -> &redis::Client {
        if resp3 {
            &self.c3
        } else {
            &self.c2
        }
    }
}

#[derive(Clone)]
struct Conns {
    inval: MultiplexedConnection,
    track: MultiplexedConnection,
    fwd2: MultiplexedConnection,
    fwd3: MultiplexedConnection,
}

pub struct RedisTier {
    /// The upstream's `host:port` (with Sentinel: the primary's, once known).
    label: RwLock<String>,
    /// Clients for the upstream's address; with Sentinel, replaced on every
    /// connect by the primary's (None before the first).
    clients: RwLock<Option<Clients>>,
    /// The upstream is the primary Sentinel names.
    sentinel: Option<SentinelUrl>,
    /// Certificates for `rediss://` (the primary's address may change).
    tls: UpstreamTls,
    timeout: Duration,
    /// jcache's `databases`: the upstream must have as many (checked on
    /// every connect).
    databases: usize,
    conns: RwLock<Option<Conns>>,
    up: AtomicBool,
    /// Connection generation (a disconnect of an old one is ignored).
    gen: AtomicU64,
    kick: Notify,
    coherence: Arc<Coherence>,
    /// Shared by every node of a Redis Cluster (one tier in INFO).
    pub stats: Arc<TierStats>,
    /// Retired (a Redis Cluster node no longer a primary): the supervisor
    /// ends and nothing reconnects.
    stopped: AtomicBool,
    /// Dedicated connections of clients between WATCH and EXEC.
    watch_conns: Mutex<ahash::HashMap<u64, MultiplexedConnection>>,
    down_since: Mutex<Option<Instant>>,
    /// Per client: pipelined commands waiting to be sent as one batch.
    batches: Mutex<ahash::HashMap<u64, Vec<Queued>>>,
    /// Dedicated connections of blocking commands: one permit each. Full:
    /// the command is refused at once (`ERR max number of clients reached`,
    /// nothing sent).
    blocking_slots: Arc<Semaphore>,
    blocking_max: usize,
    /// Bumped each time the tier is marked down: blocking commands waiting
    /// on their own connections give up then.
    downs: tokio::sync::watch::Sender<u64>,
    me: Weak<RedisTier>,
}

/// A pipelined command waiting for its client's batch to be sent.
pub struct Queued {
    /// The client's database when it was queued.
    db: usize,
    args: Vec<Bytes>,
    /// Its reply has the same shape in RESP2 and RESP3.
    shape_safe: bool,
    /// A write to this key, held locally as this type: re-read it with the write.
    refetch: Option<(Bytes, ValueType)>,
    tx: tokio::sync::oneshot::Sender<Result<BatchReply, TierError>>,
}

/// The reply to one command of a batch.
pub struct BatchReply {
    pub value: Value,
    /// The local copy of the written key was already brought up to date
    /// (or deliberately left as it was): the caller must not drop it.
    pub local_done: bool,
}

impl RedisTier {
    /// Validates the URL and starts the supervisor (connects in the background).
    pub fn start(
        url: &str,
        timeout: Duration,
        max_blocking: usize,
        databases: usize,
        tls: &UpstreamTls,
        coherence: Arc<Coherence>,
        stats: Arc<TierStats>,
    ) -> Result<Arc<RedisTier>, String> {
        let sentinel_url = url.starts_with(SENTINEL_SCHEME) || url.starts_with(SENTINEL_TLS_SCHEME);
        let (clients, label, sentinel) = if sentinel_url {
            let s = SentinelUrl::parse(url).map_err(|e| e.to_string())?;
            (None, format!("sentinel master {}", s.master), Some(s))
        } else {
            let (clients, label) = Clients::of(url, tls, timeout)?;
            (Some(clients), label, None)
        };
        let max_blocking = max_blocking.min(Semaphore::MAX_PERMITS);
        let tier = Arc::new_cyclic(|me| RedisTier {
            label: RwLock::new(label),
            clients: RwLock::new(clients),
            sentinel,
            tls: tls.clone(),
            timeout,
            databases,
            conns: RwLock::new(None),
            up: AtomicBool::new(false),
            gen: AtomicU64::new(0),
            kick: Notify::new(),
            coherence,
            stats,
            stopped: AtomicBool::new(false),
            watch_conns: Mutex::new(Default::default()),
            down_since: Mutex::new(Some(Instant::now())),
            batches: Mutex::new(Default::default()),
            blocking_slots: Arc::new(Semaphore::new(max_blocking)),
            blocking_max: max_blocking,
            downs: tokio::sync::watch::channel(0).0,
            me: me.clone(),
        });
        tokio::spawn(supervise(tier.clone()));
        if let Some(s) = &tier.sentinel {
            for addr in &s.sentinels {
                let (me, master) = (Arc::downgrade(&tier), s.master.clone());
                let url = sentinel::url(s, addr);
                tokio::spawn(sentinel::watch(me, url, master, tls.clone(), timeout));
            }
        }
        Ok(tier)
    }

    /// The clients of the upstream to connect to now: with Sentinel, the
    /// primary's as the sentinels say (asked on every connect).
    async fn current_clients(&self) -> Result<Clients, String> {
        let Some(s) = &self.sentinel else {
            return self
                .clients()
                .map_err(|_| "no upstream address".to_string());
        };
        let primary = sentinel::resolve(s, &self.tls, self.timeout).await?;
        let scheme = if s.tls { "rediss" } else { "redis" };
        let (clients, label) = Clients::of(
            &format!("{scheme}://{}{primary}", s.userinfo),
            &self.tls,
            self.timeout,
        )?;
        *self.clients.write() = Some(clients.clone());
        *self.label.write() = label;
        Ok(clients)
    }

    fn clients(&self) -> Result<Clients, TierError> {
        self.clients.read().clone().ok_or(TierError::Unavailable)
    }

    /// Sentinel switched the primary to `new` (`host:port`): the new one
    /// may lack writes the old one took, so local copies are dropped now
    /// (not only at the reconnect that follows), and the tier reconnects
    /// to the new primary, unless it is connected there already (the
    /// health check's ROLE noticed the demotion first).
    pub fn primary_switched(&self, new: &str) {
        if self.is_up() && self.label() == new {
            return;
        }
        self.coherence.flush_all();
        self.mark_down(
            self.gen.load(Ordering::Acquire),
            "sentinel switched the primary",
        );
        self.kick.notify_one();
    }

    /// Retires this tier for good (a Redis Cluster node that no longer
    /// serves slots): marked down, its supervisor ends, nothing reconnects.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.mark_down(
            self.gen.load(Ordering::Acquire),
            "no longer a cluster primary",
        );
        self.kick.notify_one();
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    /// Opens one connection of the shared set within the timeout.
    async fn open(
        &self,
        client: &redis::Client,
        cfg: &AsyncConnectionConfig,
    ) -> Result<MultiplexedConnection, String> {
        tokio::time::timeout(
            self.timeout,
            client.get_multiplexed_async_connection_with_config(cfg),
        )
        .await
        .map_err(|_| "connect timeout".to_string())?
        .map_err(|e| e.to_string())
    }

    /// Sends one command within the timeout (connection set-up).
    async fn setup(&self, conn: &MultiplexedConnection, cmd: &redis::Cmd) -> Result<Value, String> {
        let mut conn = conn.clone();
        tokio::time::timeout(self.timeout, conn.send_packed_command(cmd))
            .await
            .map_err(|_| "timeout".to_string())?
            .map_err(|e| e.to_string())
    }

    async fn connect(&self, gen: u64) -> Result<Conns, String> {
        // Pushes of this generation: invalidations, and losses of the link.
        let push = || {
            let me = self.me.clone();
            move |p: PushInfo| -> Result<(), ()> {
                if let Some(t) = me.upgrade() {
                    t.on_push(gen, p);
                }
                Ok(())
            }
        };
        let cfg = self.config();
        let clients = self.current_clients().await?;
        let inval = self
            .open(&clients.c3, &cfg.clone().set_push_sender(push()))
            .await?;
        if self.sentinel.is_some() && !sentinel::is_primary(&inval, self.timeout).await {
            // Sentinel has not switched yet, or the answer is stale.
            return Err(format!("{} is not a primary (ROLE)", self.label()));
        }
        let id = match self.setup(&inval, redis::cmd("CLIENT").arg("ID")).await {
            Ok(Value::Int(id)) => id,
            Ok(v) => return Err(format!("CLIENT ID: {v:?}")),
            Err(e) => return Err(format!("CLIENT ID: {e}")),
        };
        let track = self
            .open(&clients.c3, &cfg.clone().set_push_sender(push()))
            .await?;
        let mut tracking = redis::cmd("CLIENT");
        tracking.arg("TRACKING").arg("on").arg("REDIRECT").arg(id);
        if let Tracking::Bcast(prefixes) = &self.coherence.tracking {
            tracking.arg("BCAST");
            for p in prefixes {
                tracking.arg("PREFIX").arg(&p[..]);
            }
        }
        tracking.arg("NOLOOP");
        let r = self
            .setup(&track, &tracking)
            .await
            .map_err(|e| format!("CLIENT TRACKING: {e}"))?;
        if !matches!(r, Value::Okay) {
            return Err(format!("CLIENT TRACKING on: {r:?}"));
        }
        self.check_databases(&track).await?;
        // RESP2 connections cannot take a push sender: the supervisor's
        // PING notices a closed one.
        let fwd2 = self.open(&clients.c2, &cfg).await?;
        let fwd3 = self
            .open(&clients.c3, &cfg.clone().set_push_sender(push()))
            .await?;
        Ok(Conns {
            inval,
            track,
            fwd2,
            fwd3,
        })
    }

    /// Checks that the upstream has a database for each of jcache's (a
    /// client's database n is the upstream's database n): selects the last
    /// one, then database 0 again.
    async fn check_databases(&self, conn: &MultiplexedConnection) -> Result<(), String> {
        let last = self.databases.saturating_sub(1);
        if last == 0 {
            return Ok(());
        }
        let mut p = redis::pipe();
        p.cmd("SELECT").arg(last).cmd("SELECT").arg(0);
        let mut conn = conn.clone();
        let r = tokio::time::timeout(self.timeout, conn.send_packed_commands(&p, 0, 2))
            .await
            .map_err(|_| "SELECT: timeout".to_string())?
            .map_err(|e| format!("SELECT: {e}"))?;
        match r.first() {
            Some(Value::Okay) => Ok(()),
            other => Err(format!(
                "the upstream has fewer databases than jcache's `databases` ({}): \
                 SELECT {last} answered {other:?}",
                self.databases
            )),
        }
    }

    fn on_push(&self, gen: u64, p: PushInfo) {
        match p.kind {
            PushKind::Invalidate => {
                TierStats::add(&self.stats.invalidations);
                match p.data.into_iter().next() {
                    Some(Value::Array(keys)) | Some(Value::Set(keys)) => {
                        let keys: Vec<Bytes> = keys
                            .into_iter()
                            .filter_map(|k| match k {
                                Value::BulkString(b) => Some(Bytes::from(b)),
                                Value::SimpleString(s) => Some(Bytes::from(s)),
                                _ => None,
                            })
                            .collect();
                        // Names without a database: dropped in every one.
                        self.coherence.invalidate_everywhere(&keys);
                    }
                    // Null payload: FLUSHALL upstream, or the tracking table overflowed.
                    _ => self.coherence.flush_all(),
                }
            }
            PushKind::Disconnection => self.mark_down(gen, "connection closed"),
            // The invalidation connection went away under the tracking one:
            // invalidations are lost from here on.
            PushKind::Other(kind) if kind == "tracking-redir-broken" => {
                self.mark_down(gen, "tracking redirect broken")
            }
            _ => {}
        }
    }

    /// Marks the tier down (if `gen` is the live connection): no more
    /// fetches or writes until the supervisor reconnected.
    fn mark_down(&self, gen: u64, why: &str) {
        if self.gen.load(Ordering::Acquire) != gen || !self.up.swap(false, Ordering::AcqRel) {
            return;
        }
        *self.conns.write() = None;
        *self.down_since.lock() = Some(Instant::now());
        self.coherence.link_down();
        self.watch_conns.lock().clear();
        self.downs.send_modify(|n| *n += 1);
        warn!(upstream = %self.label(), reason = why, "upstream tier down; serving local copies only");
        self.kick.notify_one();
    }

    /// A request failed in a way that may mean the link is gone: check now.
    fn suspect(&self) {
        TierStats::add(&self.stats.errors);
        self.kick.notify_one();
    }

    fn conns(&self) -> Result<Conns, TierError> {
        self.conns.read().clone().ok_or(TierError::Unavailable)
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// The supervisor's health check. The invalidation link carries no
    /// values, so its PING must answer within the timeout. A data connection
    /// may be busy with a large value for longer than that (its PING waits
    /// behind the transfer): for those only an error (a closed connection)
    /// counts, never slowness.
    async fn healthy(&self) -> Result<(), &'static str> {
        let c = self.conns().map_err(|_| "not connected")?;
        let ping = |mut conn: MultiplexedConnection| async move {
            tokio::time::timeout(self.timeout, conn.send_packed_command(&redis::cmd("PING"))).await
        };
        if self.sentinel.is_some() && !sentinel::is_primary(&c.inval, self.timeout).await {
            // Demoted without the switch reaching us (a sentinel link down).
            return Err("the upstream is no longer the primary");
        }
        if !matches!(ping(c.inval).await, Ok(Ok(_))) {
            return Err("ping failed on the invalidation link");
        }
        let data = futures_util::future::join_all([c.track, c.fwd2, c.fwd3].map(ping)).await;
        if data
            .iter()
            .any(|r| matches!(r, Ok(Err(e)) if e.code().is_none() && !e.is_timeout()))
        {
            return Err("data connection closed");
        }
        Ok(())
    }

    /// Sends one command on `conn` within the timeout.
    async fn send(
        &self,
        mut conn: MultiplexedConnection,
        cmd: redis::Cmd,
        limit: Option<Duration>,
    ) -> Result<Value, TierError> {
        let start = Instant::now();
        let fut = conn.send_packed_command(&cmd);
        let r = match limit {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => {
                    self.suspect();
                    return Err(TierError::Timeout);
                }
            },
            None => fut.await,
        };
        self.stats
            .record_latency(start.elapsed().as_micros() as u64);
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// Sends one command of database `db` on a shared connection within
    /// `limit` (wrapped in `SELECT db` ... `SELECT 0` unless `db` is 0).
    async fn send_in(
        &self,
        mut conn: MultiplexedConnection,
        db: usize,
        args: &[Bytes],
        limit: Option<Duration>,
    ) -> Result<Value, TierError> {
        if db == 0 {
            return self.send(conn, build(args), limit).await;
        }
        let mut dp = DbPipe::new(db);
        dp.push(build(args));
        let (p, offset, count, trail) = dp.finish(0, false);
        let start = Instant::now();
        let fut = conn.send_packed_commands(&p, offset, count);
        let r = match limit {
            Some(t) => match tokio::time::timeout(t, fut).await {
                Ok(r) => r,
                Err(_) => {
                    self.suspect();
                    return Err(TierError::Timeout);
                }
            },
            None => fut.await,
        };
        self.stats
            .record_latency(start.elapsed().as_micros() as u64);
        match r {
            Ok(mut v) if v.len() == count => {
                v.truncate(count - trail);
                Ok(v.pop().unwrap_or(Value::Nil))
            }
            Ok(_) => Err(TierError::Lost),
            Err(e) => Err(self.classify(e)),
        }
    }

    /// An error of a request that was handed to its connection: it may
    /// have reached the upstream, so its outcome is unknown (unless the
    /// upstream answered it with an error).
    fn classify(&self, e: redis::RedisError) -> TierError {
        if let Some(code) = e.code() {
            return TierError::Rejected(match e.detail() {
                Some(d) => format!("{code} {d}"),
                None => code.to_string(),
            });
        }
        self.suspect();
        if e.is_timeout() {
            TierError::Timeout
        } else {
            TierError::Lost
        }
    }

    /// Forwards a command of database `db` on the shared connection of the
    /// client's protocol.
    pub async fn forward(
        &self,
        db: usize,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        let c = self.conns()?;
        TierStats::add(&self.stats.forwarded);
        let conn = if resp3 { c.fwd3 } else { c.fwd2 };
        self.send_in(conn, db, args, Some(self.timeout)).await
    }

    /// Forwards a command after `ASKING` (Redis Cluster's `ASK` redirect:
    /// the slot is being imported here), both in one pipeline so nothing
    /// runs between them on the shared connection.
    pub async fn forward_asking(&self, args: &[Bytes], resp3: bool) -> Result<Value, TierError> {
        let c = self.conns()?;
        TierStats::add(&self.stats.forwarded);
        let mut conn = if resp3 { c.fwd3 } else { c.fwd2 };
        let mut p = redis::pipe();
        p.add_command(cmd_of(&[b"ASKING"]));
        p.add_command(build(args));
        let r = tokio::time::timeout(self.timeout, conn.send_packed_commands(&p, 1, 1)).await;
        match r {
            Ok(Ok(mut v)) if v.len() == 1 => Ok(v.pop().unwrap_or(Value::Nil)),
            Ok(Ok(_)) => Err(TierError::Lost),
            Ok(Err(e)) => Err(self.classify(e)),
            Err(_) => {
                self.suspect();
                Err(TierError::Timeout)
            }
        }
    }

    /// Queues a command of a client's pipeline; [`RedisTier::send_batch`]
    /// sends everything queued for the client, in order, as one pipeline.
    pub fn enqueue(
        &self,
        client_id: u64,
        db: usize,
        args: Vec<Bytes>,
        shape_safe: bool,
        refetch: Option<(Bytes, ValueType)>,
    ) -> tokio::sync::oneshot::Receiver<Result<BatchReply, TierError>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.batches
            .lock()
            .entry(client_id)
            .or_default()
            .push(Queued {
                db,
                args,
                shape_safe,
                refetch,
                tx,
            });
        rx
    }

    /// Takes the client's queued commands (None if another request of the
    /// batch already did).
    pub fn take_batch(&self, client_id: u64) -> Option<Vec<Queued>> {
        self.batches.lock().remove(&client_id)
    }

    /// Sends a client's queued commands as one pipeline, and hands each reply
    /// to its request.
    /// One batch is one message to one connection: the upstream runs them in
    /// request order. A batch whose replies have the same shape in both
    /// protocols goes on the tracking connection, each write to a key held
    /// locally wrapped in MULTI/EXEC with a re-read of the key (as
    /// `write_refetch` does); any other batch goes on the shared connection
    /// of the client's protocol.
    pub async fn send_batch(&self, batch: Vec<Queued>, resp3: bool) {
        let fail = |batch: Vec<Queued>, e: TierError| {
            for q in batch {
                let _ = q.tx.send(Err(e.clone()));
            }
        };
        let conns = match self.conns() {
            Ok(c) => c,
            Err(e) => return fail(batch, e),
        };
        let on_track = batch.iter().all(|q| q.shape_safe);
        let mut conn = if on_track {
            conns.track
        } else if resp3 {
            conns.fwd3
        } else {
            conns.fwd2
        };
        let n = batch.len();
        self.stats.forwarded.fetch_add(n as u64, Ordering::Relaxed);
        // Only the last write to a key in the batch re-reads it; the earlier
        // ones leave the local copy to it.
        let mut covered = vec![false; n];
        if on_track {
            let mut seen: ahash::HashSet<&Bytes> = Default::default();
            for (i, q) in batch.iter().enumerate().rev() {
                if let Some((key, _)) = &q.refetch {
                    covered[i] = !seen.insert(key);
                }
            }
        }
        // Each command runs in its client's database at queueing time (a
        // SELECT between two never joins a batch; switch anyway if it did).
        let mut db = batch.first().map_or(0, |q| q.db);
        let mut dp = DbPipe::new(db);
        let mut switches = Vec::with_capacity(n);
        let mut flights = Vec::with_capacity(n);
        for (i, q) in batch.iter().enumerate() {
            switches.push(q.db != db);
            if q.db != db {
                db = q.db;
                dp.push(cmd_of(&[b"SELECT", db.to_string().as_bytes()]));
            }
            let flight = match (&q.refetch, on_track && !covered[i]) {
                (Some((key, _)), true) => match self.coherence.begin(q.db, key) {
                    (f, true) => Some(f),
                    (f, false) => {
                        // A read's fetch is in flight: it may predate the write.
                        f.invalidated.store(true, Ordering::Release);
                        None
                    }
                },
                _ => None,
            };
            if let (Some(_), Some((key, guess))) = (&flight, &q.refetch) {
                dp.push(cmd_of(&[b"MULTI"]));
                dp.push(build(&q.args));
                add_fetch(&mut dp, key, *guess);
                dp.push(cmd_of(&[b"EXEC"]));
            } else {
                dp.push(build(&q.args));
            }
            flights.push(flight);
        }
        let (p, offset, count, trail) = dp.finish(0, db != 0);
        let sent = now_ms();
        let start = Instant::now();
        let r =
            tokio::time::timeout(self.timeout, conn.send_packed_commands(&p, offset, count)).await;
        self.stats
            .record_latency(start.elapsed().as_micros() as u64);
        let err = match r {
            Ok(Ok(mut values)) if values.len() == count => {
                values.truncate(count - trail);
                let mut values = values.into_iter();
                let each = batch.into_iter().zip(flights).zip(covered).zip(switches);
                for (((q, flight), covered), switch) in each {
                    if switch {
                        values.next(); // the SELECT's +OK
                    }
                    let reply = match (flight, &q.refetch) {
                        (Some(flight), Some((key, guess))) => {
                            let exec = values.nth(5).unwrap_or(Value::Nil);
                            self.finish_refetch(q.db, key, *guess, &flight, exec, sent)
                        }
                        _ => BatchReply {
                            value: values.next().unwrap_or(Value::Nil),
                            local_done: covered,
                        },
                    };
                    let _ = q.tx.send(Ok(reply));
                }
                return;
            }
            // Sent, and the replies do not add up: their outcome is unknown.
            Ok(Ok(_)) => TierError::Lost,
            Ok(Err(e)) => self.classify(e),
            Err(_) => {
                self.suspect();
                TierError::Timeout
            }
        };
        for (q, flight) in batch.iter().zip(&flights) {
            if let (Some(f), Some((key, _))) = (flight, &q.refetch) {
                self.coherence.complete(q.db, key, f, Err(err.clone()));
            }
        }
        fail(batch, err)
    }

    /// Handles the EXEC reply of a write wrapped with a re-read: the write's
    /// reply, and the local copy replaced (or left alone if the write was
    /// rejected; dropped by the caller if the re-read cannot be used).
    fn finish_refetch(
        &self,
        db: usize,
        key: &Bytes,
        guess: ValueType,
        flight: &Arc<super::Flight>,
        exec: Value,
        sent: u64,
    ) -> BatchReply {
        let Value::Array(mut items) = exec else {
            // EXECABORT and the like: nothing ran.
            self.coherence
                .complete(db, key, flight, Err(TierError::Unsupported));
            return BatchReply {
                value: exec,
                local_done: true,
            };
        };
        if items.len() != 4 {
            self.coherence
                .complete(db, key, flight, Err(TierError::Unsupported));
            return BatchReply {
                value: Value::Nil,
                local_done: false,
            };
        }
        let value = items.remove(0);
        if matches!(value, Value::ServerError(_)) {
            self.coherence
                .complete(db, key, flight, Err(TierError::Unsupported));
            return BatchReply {
                value,
                local_done: true,
            };
        }
        let fetched = self
            .parse_fetch(items, guess, sent)
            .map_err(|_| TierError::Unsupported);
        let filled =
            self.coherence.complete(db, key, flight, fetched) == super::FetchOutcome::Filled;
        BatchReply {
            value,
            local_done: filled,
        }
    }

    /// Runs a blocking command (BLPOP, BLMOVE, BZPOPMIN, ...) on a
    /// connection of its own, so it blocks nobody else and times out exactly
    /// as on Redis: the connection has no response timeout of its own (the
    /// `redis` crate's default is 500 ms); the command's timeout plus the
    /// upstream timeout as a margin bounds the wait (no bound for 0 =
    /// forever). Dropping the future (the client went away) closes the
    /// connection, which unblocks the command upstream: nothing is popped
    /// for nobody. At most `maxclients` run at once; beyond that the command
    /// is refused before anything is sent.
    pub async fn forward_blocking(
        &self,
        db: usize,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        let mut downs = self.downs.subscribe();
        if !self.is_up() {
            return Err(TierError::Unavailable);
        }
        let Ok(_slot) = self.blocking_slots.clone().try_acquire_owned() else {
            return Err(TierError::Saturated);
        };
        let clients = self.clients()?;
        let client = clients.of_protocol(resp3);
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(None);
        let conn = match client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
        {
            Ok(c) => c,
            Err(_) => {
                // Nothing was sent.
                self.suspect();
                return Err(TierError::Unavailable);
            }
        };
        TierStats::add(&self.stats.forwarded);
        let limit = block_timeout(args).map(|t| t.saturating_add(self.timeout));
        tokio::select! {
            r = self.send_in(conn, db, args, limit) => r,
            // The upstream was declared down meanwhile: the command may have
            // run; dropping the connection unblocks it if it has not.
            _ = downs.changed() => Err(TierError::Lost),
        }
    }

    /// WATCH on the client's dedicated connection (created on first use).
    pub async fn watch(
        &self,
        client_id: u64,
        db: usize,
        args: &[Bytes],
        resp3: bool,
    ) -> Result<Value, TierError> {
        if !self.is_up() {
            return Err(TierError::Unavailable);
        }
        let existing = self.watch_conns.lock().get(&client_id).cloned();
        let conn = match existing {
            Some(c) => c,
            None => {
                let clients = self.clients()?;
                let c = match clients
                    .of_protocol(resp3)
                    .get_multiplexed_async_connection_with_config(&self.config())
                    .await
                {
                    Ok(c) => c,
                    Err(_) => {
                        // Nothing was sent.
                        self.suspect();
                        return Err(TierError::Unavailable);
                    }
                };
                self.watch_conns.lock().insert(client_id, c.clone());
                c
            }
        };
        TierStats::add(&self.stats.forwarded);
        self.send_in(conn, db, args, Some(self.timeout)).await
    }

    /// A client went away: forget its queued pipeline.
    pub fn forget_client(&self, client_id: u64) {
        self.batches.lock().remove(&client_id);
        self.release(client_id);
    }

    /// Forgets a client's dedicated connection (UNWATCH, DISCARD, EXEC, disconnect).
    pub fn release(&self, client_id: u64) -> bool {
        self.watch_conns.lock().remove(&client_id).is_some()
    }

    pub fn has_watch(&self, client_id: u64) -> bool {
        self.watch_conns.lock().contains_key(&client_id)
    }

    /// Runs a queued transaction upstream as one MULTI ... EXEC, on the
    /// client's WATCH connection if it has one. Returns EXEC's reply.
    pub async fn transaction(
        &self,
        client_id: u64,
        db: usize,
        queued: &[Vec<Bytes>],
        resp3: bool,
    ) -> Result<Value, TierError> {
        let dedicated = self.watch_conns.lock().remove(&client_id);
        let conn = match dedicated {
            Some(c) => c,
            None => {
                let c = self.conns()?;
                if resp3 {
                    c.fwd3
                } else {
                    c.fwd2
                }
            }
        };
        if !self.is_up() {
            return Err(TierError::Unavailable);
        }
        TierStats::add(&self.stats.forwarded);
        let mut dp = DbPipe::new(db);
        dp.push(cmd_of(&[b"MULTI"]));
        for args in queued {
            dp.push(build(args));
        }
        dp.push(cmd_of(&[b"EXEC"]));
        // A SELECT inside moves the connection: back to database 0 after.
        let selects = queued
            .iter()
            .any(|a| a.first().is_some_and(|c| c.eq_ignore_ascii_case(b"select")));
        let mut conn = conn;
        // MULTI and the queued commands come first; EXEC's reply follows them.
        self.exec_pipeline(&mut conn, dp.finish(queued.len() + 1, selects))
            .await
    }

    async fn fetch_whole(
        self: Arc<Self>,
        db: usize,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> Result<Option<Fetched>, TierError> {
        let mut guess = hint.unwrap_or(ValueType::String);
        for _ in 0..3 {
            let mut conn = self.conns()?.track;
            let sent = now_ms();
            let mut dp = DbPipe::new(db);
            dp.push(cmd_of(&[b"MULTI"]));
            add_fetch(&mut dp, &key, guess);
            dp.push(cmd_of(&[b"EXEC"]));
            let v = self.exec_pipeline(&mut conn, dp.finish(4, false)).await?;
            let Value::Array(items) = v else {
                TierStats::add(&self.stats.errors);
                return Err(TierError::Unsupported);
            };
            match self.parse_fetch(items, guess, sent) {
                Err(Some(actual)) => guess = actual,
                Err(None) => return Err(TierError::Unsupported),
                Ok(f) => return Ok(f),
            }
        }
        Err(TierError::Unsupported)
    }

    /// Sends a MULTI ... EXEC pipeline finished by [`DbPipe::finish`] from
    /// its EXEC on; returns EXEC's reply.
    async fn exec_pipeline(
        &self,
        conn: &mut MultiplexedConnection,
        (p, offset, count, _trail): (redis::Pipeline, usize, usize, usize),
    ) -> Result<Value, TierError> {
        let start = Instant::now();
        let r =
            tokio::time::timeout(self.timeout, conn.send_packed_commands(&p, offset, count)).await;
        self.stats
            .record_latency(start.elapsed().as_micros() as u64);
        match r {
            Err(_) => {
                self.suspect();
                Err(TierError::Timeout)
            }
            Ok(Err(e)) => match e.code() {
                // An error while queueing (a command the upstream refused).
                Some(code) => Err(TierError::Rejected(match e.detail() {
                    Some(d) => format!("{code} {d}"),
                    None => code.to_string(),
                })),
                None => Err(self.classify(e)),
            },
            Ok(Ok(v)) => Ok(v.into_iter().next().unwrap_or(Value::Nil)),
        }
    }

    /// Reads the last three replies of a fetch (TYPE, PTTL, value). Err(Some(t)):
    /// the key holds type t, not the guessed one; Err(None): not cacheable.
    fn parse_fetch(
        &self,
        mut items: Vec<Value>,
        guess: ValueType,
        sent: u64,
    ) -> Result<Option<Fetched>, Option<ValueType>> {
        if items.len() < 3 {
            return Err(None);
        }
        let value = items.pop().unwrap();
        let pttl = match items.pop().unwrap() {
            Value::Int(i) => i,
            _ => return Err(None),
        };
        let ty = match items.pop().unwrap() {
            Value::SimpleString(s) => s,
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            _ => return Err(None),
        };
        if ty == "none" || pttl == -2 {
            TierStats::add(&self.stats.misses);
            return Ok(None);
        }
        let vt = ValueType::from_name(ty.as_bytes()).ok_or(None)?;
        if vt != guess {
            return Err(Some(vt));
        }
        // Counted from when the request was sent: never outlives the upstream key.
        let expire_at = if pttl >= 0 { sent + pttl as u64 } else { 0 };
        let local = to_local(vt, value).ok_or(None)?;
        TierStats::add(&self.stats.hits);
        Ok(Some(Fetched {
            value: local,
            expire_at,
        }))
    }

    /// A write to one key held locally, and a fresh whole-key read of it, in
    /// one MULTI/EXEC on the tracking connection (NOLOOP: the write does not
    /// invalidate our own copy; the read after it re-tracks the key). Returns
    /// the write's reply and the key as it is after the write.
    pub async fn write_refetch(
        &self,
        db: usize,
        args: &[Bytes],
        key: &Bytes,
        guess: ValueType,
    ) -> Result<(Value, Result<Option<Fetched>, TierError>), TierError> {
        let mut conn = self.conns()?.track;
        TierStats::add(&self.stats.forwarded);
        let sent = now_ms();
        let mut dp = DbPipe::new(db);
        dp.push(cmd_of(&[b"MULTI"]));
        dp.push(build(args));
        add_fetch(&mut dp, key, guess);
        dp.push(cmd_of(&[b"EXEC"]));
        let v = self.exec_pipeline(&mut conn, dp.finish(5, false)).await?;
        let Value::Array(mut items) = v else {
            return Ok((v, Err(TierError::Unsupported)));
        };
        if items.len() != 4 {
            return Err(TierError::Unsupported);
        }
        let reply = items.remove(0);
        let fetched = self
            .parse_fetch(items, guess, sent)
            .map_err(|_| TierError::Unsupported);
        Ok((reply, fetched))
    }

    pub fn label(&self) -> String {
        self.label.read().clone()
    }
}

/// Appends TYPE, PTTL and the whole-value read for `guess` to a pipeline.
fn add_fetch(p: &mut DbPipe, key: &Bytes, guess: ValueType) {
    let k = &key[..];
    p.push(cmd_of(&[b"TYPE", k]));
    p.push(cmd_of(&[b"PTTL", k]));
    p.push(match guess {
        ValueType::String => cmd_of(&[b"GET", k]),
        ValueType::Hash => cmd_of(&[b"HGETALL", k]),
        ValueType::List => cmd_of(&[b"LRANGE", k, b"0", b"-1"]),
        ValueType::Set => cmd_of(&[b"SMEMBERS", k]),
        ValueType::ZSet => cmd_of(&[b"ZRANGE", k, b"0", b"-1", b"WITHSCORES"]),
        // Streams are never cached: the read answers, the fill is refused.
        ValueType::Stream => cmd_of(&[b"XRANGE", k, b"-", b"+"]),
    });
}

/// Commands of one database for a connection that rests in database 0
/// between requests (every shared connection does): `SELECT db` before
/// them and `SELECT 0` after, unless `db` is 0, so database 0 costs
/// nothing. One pipeline is one write to a multiplexed connection, so no
/// other request runs between the SELECTs.
struct DbPipe {
    p: redis::Pipeline,
    db: usize,
    lead: usize,
    body: usize,
}

impl DbPipe {
    fn new(db: usize) -> DbPipe {
        let mut p = redis::pipe();
        if db != 0 {
            p.add_command(cmd_of(&[b"SELECT", db.to_string().as_bytes()]));
        }
        DbPipe {
            p,
            db,
            lead: usize::from(db != 0),
            body: 0,
        }
    }

    fn push(&mut self, c: redis::Cmd) {
        self.p.add_command(c);
        self.body += 1;
    }

    /// The pipeline, with the `(offset, count)` that reads the replies of
    /// the commands pushed from the `from`th on, followed by the trailing
    /// `SELECT 0`'s, and how many of those trail (0 or 1). `reset`: end
    /// with `SELECT 0` even if the pipeline started in database 0 (it
    /// selects another on the way).
    fn finish(mut self, from: usize, reset: bool) -> (redis::Pipeline, usize, usize, usize) {
        let trail = usize::from(self.db != 0 || reset);
        if trail == 1 {
            self.p.add_command(cmd_of(&[b"SELECT", b"0"]));
        }
        (self.p, self.lead + from, self.body - from + trail, trail)
    }
}

/// A command from its parts.
fn cmd_of(parts: &[&[u8]]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in parts {
        c.arg(*a);
    }
    c
}

/// A blocking command's own timeout in seconds (its last argument; the
/// first for BLMPOP and BZMPOP). None for 0 (wait forever) and for what is
/// not a positive number (the upstream rejects it at once).
fn block_timeout(args: &[Bytes]) -> Option<Duration> {
    let name = args.first()?.to_ascii_lowercase();
    if name == b"xread" || name == b"xreadgroup" {
        // BLOCK <milliseconds>, before STREAMS.
        let at = args.iter().position(|a| a.eq_ignore_ascii_case(b"block"))?;
        let ms: u64 = std::str::from_utf8(args.get(at + 1)?).ok()?.parse().ok()?;
        return (ms > 0).then(|| Duration::from_millis(ms));
    }
    let at = if name == b"blmpop" || name == b"bzmpop" {
        1
    } else {
        args.len().checked_sub(1)?
    };
    let secs: f64 = std::str::from_utf8(args.get(at)?).ok()?.parse().ok()?;
    if secs > 0.0 {
        Duration::try_from_secs_f64(secs).ok()
    } else {
        None
    }
}

/// Builds a `redis` command from raw arguments.
fn build(args: &[Bytes]) -> redis::Cmd {
    let mut c = redis::Cmd::new();
    for a in args {
        c.arg(&a[..]);
    }
    c
}

fn bytes_of(v: Value) -> Option<Box<[u8]>> {
    match v {
        Value::BulkString(b) => Some(b.into_boxed_slice()),
        Value::SimpleString(s) => Some(s.into_bytes().into_boxed_slice()),
        Value::Int(i) => Some(i.to_string().into_bytes().into_boxed_slice()),
        _ => None,
    }
}

/// Converts a fetched value (RESP3 shapes) into a local value.
fn to_local(vt: ValueType, v: Value) -> Option<LocalValue> {
    Some(match (vt, v) {
        (ValueType::String, v) => LocalValue::Str(bytes_of(v)?),
        (ValueType::List, Value::Array(items)) => {
            let mut l = ListValue::new();
            for i in items {
                l.push_back(bytes_of(i)?);
            }
            LocalValue::List(Box::new(l))
        }
        (ValueType::Hash, Value::Map(pairs)) => {
            let mut h = HashValue::new();
            for (f, v) in pairs {
                h.insert(&bytes_of(f)?, &bytes_of(v)?);
            }
            LocalValue::Hash(Box::new(h))
        }
        (ValueType::Hash, Value::Array(flat)) => {
            let mut h = HashValue::new();
            let mut it = flat.into_iter();
            while let (Some(f), Some(v)) = (it.next(), it.next()) {
                h.insert(&bytes_of(f)?, &bytes_of(v)?);
            }
            LocalValue::Hash(Box::new(h))
        }
        (ValueType::Set, Value::Set(items)) | (ValueType::Set, Value::Array(items)) => {
            let mut s = SetValue::new();
            for i in items {
                s.insert(&bytes_of(i)?);
            }
            LocalValue::Set(Box::new(s))
        }
        (ValueType::ZSet, Value::Array(items)) => {
            let mut z = ZSet::new();
            for pair in items {
                let Value::Array(mut p) = pair else {
                    return None;
                };
                if p.len() != 2 {
                    return None;
                }
                let score = match p.pop()? {
                    Value::Double(d) => d,
                    other => {
                        let b = bytes_of(other)?;
                        std::str::from_utf8(&b).ok()?.parse().ok()?
                    }
                };
                let member = bytes_of(p.pop()?)?;
                z.insert(&member, score);
            }
            LocalValue::ZSet(Box::new(z))
        }
        _ => return None,
    })
}

async fn supervise(tier: Arc<RedisTier>) {
    let mut backoff = Duration::from_millis(50);
    let mut connected_once = false;
    let mut logged_failure = false;
    loop {
        if tier.stopped.load(Ordering::Acquire) {
            tier.up.store(false, Ordering::Release);
            *tier.conns.write() = None;
            return;
        }
        if !tier.is_up() {
            let gen = tier.gen.fetch_add(1, Ordering::AcqRel) + 1;
            match tier.connect(gen).await {
                Ok(conns) => {
                    // Tracking is on for the new link; whatever is held
                    // locally may have missed invalidations: flush first.
                    tier.coherence.flush_all();
                    *tier.conns.write() = Some(conns);
                    *tier.down_since.lock() = None;
                    tier.up.store(true, Ordering::Release);
                    if connected_once {
                        TierStats::add(&tier.stats.reconnects);
                    }
                    connected_once = true;
                    logged_failure = false;
                    backoff = Duration::from_millis(50);
                    info!(upstream = %tier.label(), "upstream tier connected (tracking on)");
                }
                Err(e) => {
                    TierStats::add(&tier.stats.errors);
                    if !logged_failure {
                        warn!(upstream = %tier.label(), error = %crate::config::redact_url(&e), "cannot connect to upstream tier; retrying");
                        logged_failure = true;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = tier.kick.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if tier.is_up() {
            let gen = tier.gen.load(Ordering::Acquire);
            if let Err(why) = tier.healthy().await {
                tier.mark_down(gen, why);
            }
        }
    }
}

impl Tier for RedisTier {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn describe(&self) -> String {
        self.label()
    }

    fn available(&self) -> bool {
        self.is_up()
    }

    fn fetch(
        &self,
        db: usize,
        key: Bytes,
        hint: Option<ValueType>,
    ) -> TierFuture<Result<Option<Fetched>, TierError>> {
        let me = self.me.upgrade();
        Box::pin(async move {
            match me {
                Some(t) => t.fetch_whole(db, key, hint).await,
                None => Err(TierError::Unavailable),
            }
        })
    }

    fn fill(&self, _db: usize, _key: &Bytes, _f: Fetched) -> bool {
        // The source of truth is never filled from a faster tier.
        false
    }

    fn invalidate(&self, _db: usize, _keys: &[Bytes]) {}

    fn flush(&self) {}

    fn execute(
        &self,
        db: usize,
        args: Vec<Bytes>,
        resp3: bool,
    ) -> TierFuture<Result<Value, TierError>> {
        let me = self.me.upgrade();
        Box::pin(async move {
            match me {
                Some(t) => t.forward(db, &args, resp3).await,
                None => Err(TierError::Unavailable),
            }
        })
    }

    fn stats(&self) -> &TierStats {
        &self.stats
    }

    fn info_fields(&self) -> Vec<(String, String)> {
        let down = self
            .down_since
            .lock()
            .map(|t| t.elapsed().as_secs())
            .unwrap_or(0);
        vec![
            ("addr".into(), self.label()),
            (
                "status".into(),
                if self.is_up() { "up" } else { "down" }.into(),
            ),
            ("down_seconds".into(), down.to_string()),
            (
                "reconnects".into(),
                self.stats.reconnects.load(Ordering::Relaxed).to_string(),
            ),
            (
                "forwarded".into(),
                self.stats.forwarded.load(Ordering::Relaxed).to_string(),
            ),
            (
                "fetches_in_flight".into(),
                self.coherence.in_flight().to_string(),
            ),
            (
                "blocking_connections".into(),
                (self.blocking_max - self.blocking_slots.available_permits()).to_string(),
            ),
        ]
    }
}
