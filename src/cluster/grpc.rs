//! The gRPC side of replication: the master's `Sync` / `Forward` service and
//! the follower's stream loop (the wire format is in [`super::wire`]).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream, WatchStream};
use tokio_stream::StreamExt;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status, Streaming};
use tracing::{info, warn};

use super::fullsync::{filter, Filtered};
use super::master_exec::{self, DbCommand, Watched};
use super::replication::{self, ReadError};
use super::{forwarding, Cluster, FollowerState, Leader, Link};
use crate::engine::SHARDS;
use crate::engine::{Mutation, Origin};

use super::wire::{self, convert_all, mutation_to_pb, pb, put_pb};

use pb::follower_message::Msg as FMsg;
use pb::replication_client::ReplicationClient;
use pb::replication_server::{Replication, ReplicationServer};
use pb::sync_message::Msg as SMsg;

const MAX_MSG: usize = 1 << 30;
const BATCH_ENTRIES: usize = 1024;
const BATCH_BYTES: usize = 4 << 20;
const CHUNK_KEYS: usize = 1000;

// ---------------------------------------------------------------- secret

const SECRET_HEADER: &str = "x-jcache-secret";

fn secret_value(secret: &str) -> MetadataValue<Ascii> {
    // Hex keeps any secret valid as ASCII metadata.
    let hex: String = secret.bytes().map(|x| format!("{x:02x}")).collect();
    MetadataValue::try_from(if hex.is_empty() { "-".to_string() } else { hex })
        .expect("hex is valid metadata")
}

#[derive(Clone)]
pub struct SecretInterceptor(MetadataValue<Ascii>);

impl Interceptor for SecretInterceptor {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert(SECRET_HEADER, self.0.clone());
        Ok(req)
    }
}

/// The secret a node sends: the first configured one ("-" when none, which
/// only an insecure cluster accepts).
fn sent_secret(cfg: &crate::config::ClusterConfig) -> MetadataValue<Ascii> {
    secret_value(cfg.secrets.first().map(String::as_str).unwrap_or(""))
}

/// Accepts a call that carries any one of the configured secrets (several
/// while a secret is rotated), or any call at all in an insecure cluster
/// without a secret.
#[derive(Clone)]
struct SecretCheck(Vec<MetadataValue<Ascii>>);

impl SecretCheck {
    fn new(cfg: &crate::config::ClusterConfig) -> SecretCheck {
        let mut accepted: Vec<_> = cfg.secrets.iter().map(|s| secret_value(s)).collect();
        if accepted.is_empty() {
            // --cluster-insecure without a secret: what a node without a
            // secret sends.
            accepted.push(secret_value(""));
        }
        SecretCheck(accepted)
    }

    fn accepts(&self, given: &[u8]) -> bool {
        // Every secret is compared, each in constant time for its length
        // (no early exit on the first differing byte, nor on a match).
        self.0.iter().fold(false, |ok, want| {
            let b = want.as_bytes();
            let same = given.len() == b.len()
                && given.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0;
            ok | same
        })
    }
}

impl Interceptor for SecretCheck {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        let ok = req
            .metadata()
            .get(SECRET_HEADER)
            .is_some_and(|v| self.accepts(v.as_bytes()));
        if ok {
            Ok(req)
        } else {
            Err(Status::unauthenticated("bad cluster secret"))
        }
    }
}

type Client = ReplicationClient<InterceptedService<Channel, SecretInterceptor>>;

static CLIENTS: Mutex<Vec<(String, Client)>> = Mutex::new(Vec::new());

fn client_for(c: &Cluster, addr: &str) -> Result<Client, String> {
    let mut g = CLIENTS.lock();
    if let Some((_, cl)) = g.iter().find(|(a, _)| a == addr) {
        return Ok(cl.clone());
    }
    let ep = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(c.cfg.lease_ttl)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20));
    let ch = ep.connect_lazy();
    let cl = ReplicationClient::with_interceptor(ch, SecretInterceptor(sent_secret(&c.cfg)))
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
    if g.len() > 16 {
        g.remove(0);
    }
    g.push((addr.to_string(), cl.clone()));
    Ok(cl)
}

fn drop_client(addr: &str) {
    CLIENTS.lock().retain(|(a, _)| a != addr);
}

// ---------------------------------------------------------------- protocol version

/// How a refusal for the protocol version starts (Status message, errors).
const INCOMPATIBLE: &str = "incompatible replication protocol version";
/// The refusing node's newest version, in the refusal's metadata.
const VERSION_HEADER: &str = "x-jcache-protocol-version";

/// The refusal of a peer that announced `peer_version`: nothing ran.
fn incompatible(c: &Cluster, peer_version: u32) -> Status {
    let (newest, oldest) = c.speaks();
    let mut meta = tonic::metadata::MetadataMap::new();
    meta.insert(VERSION_HEADER, MetadataValue::from(newest));
    Status::with_metadata(
        tonic::Code::FailedPrecondition,
        format!("{INCOMPATIBLE}: the master speaks {oldest} to {newest}, this node announced {peer_version}"),
        meta,
    )
}

fn is_incompatible(s: &Status) -> bool {
    s.code() == tonic::Code::FailedPrecondition && s.message().starts_with(INCOMPATIBLE)
}

/// The version a refusing master announced (0 if it did not say).
fn status_version(s: &Status) -> u32 {
    s.metadata()
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------- forwarding (follower side)

pub struct Forwarded {
    /// One reply per command (one for a transaction or a WAIT).
    pub replies: Vec<Bytes>,
    pub offset: u64,
    pub not_master: bool,
}

pub enum ForwardError {
    /// Nothing was sent (connection refused / not established): safe to retry.
    Retry(String),
    /// Nothing ran: the master and this node speak no common protocol version.
    Incompatible(String),
    /// The outcome is unknown.
    Failed(String),
}

fn never_sent(s: &Status) -> bool {
    if s.code() != tonic::Code::Unavailable {
        return false;
    }
    let text = format!("{s:?}").to_ascii_lowercase();
    text.contains("connect error")
        || text.contains("connection refused")
        || text.contains("error trying to connect")
}

pub async fn forward(
    c: &Cluster,
    leader: &Leader,
    cmds: &[DbCommand],
    txn: Option<&Watched>,
    resp3: bool,
    wait: Option<(u64, u64)>,
) -> Result<Forwarded, ForwardError> {
    if let Some(v) = c.incompatible.lock().get(&leader.node_id) {
        return Err(ForwardError::Incompatible(format!(
            "ERR the master speaks replication protocol version {v}, which this node (version {}) cannot use",
            c.speaks().0
        )));
    }
    let mut cl = client_for(c, &leader.grpc).map_err(ForwardError::Failed)?;
    let req = pb::ForwardRequest {
        commands: cmds
            .iter()
            .map(|(db, a)| pb::Command {
                args: a.clone(),
                db: *db,
            })
            .collect(),
        transaction: txn.is_some(),
        watched: txn
            .map(|w| w.keys.iter().map(|(_, k)| k.clone()).collect())
            .unwrap_or_default(),
        watched_dbs: txn
            .map(|w| w.keys.iter().map(|(d, _)| *d as u32).collect())
            .unwrap_or_default(),
        watch_offset: txn.map(|w| w.pos.0).unwrap_or(0),
        watch_tag: txn.map(|w| w.pos.1).unwrap_or(0),
        resp3,
        epoch: leader.epoch,
        wait: wait.is_some(),
        wait_replicas: wait.map(|w| w.0).unwrap_or(0),
        wait_timeout_ms: wait.map(|w| w.1).unwrap_or(0),
        node_id: c.node_id.clone(),
        protocol_version: c.speaks().0,
    };
    match cl.forward(req).await {
        Ok(r) => {
            let r = r.into_inner();
            Ok(Forwarded {
                replies: r.replies.into_iter().collect(),
                offset: r.offset,
                not_master: r.not_master,
            })
        }
        Err(s) if never_sent(&s) => Err(ForwardError::Retry(s.message().to_string())),
        Err(s) if is_incompatible(&s) => {
            c.refused_by(&leader.node_id, status_version(&s));
            Err(ForwardError::Incompatible(format!("ERR {}", s.message())))
        }
        Err(s) => Err(ForwardError::Failed(s.message().to_string())),
    }
}

// ---------------------------------------------------------------- server (master side)

struct Svc {
    c: Arc<Cluster>,
}

type SyncTx = mpsc::Sender<Result<pb::SyncMessage, Status>>;

async fn send(tx: &SyncTx, epoch: u64, msg: SMsg) -> Result<(), String> {
    tx.send(Ok(pb::SyncMessage {
        epoch,
        msg: Some(msg),
    }))
    .await
    .map_err(|_| "follower went away".to_string())
}

#[tonic::async_trait]
impl Replication for Svc {
    type SyncStream =
        Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SyncMessage, Status>> + Send>>;

    async fn sync(
        &self,
        req: Request<Streaming<pb::FollowerMessage>>,
    ) -> Result<Response<Self::SyncStream>, Status> {
        let c = self.c.clone();
        let mut inbound = req.into_inner();
        let hello = match inbound.message().await? {
            Some(pb::FollowerMessage {
                msg: Some(FMsg::Hello(h)),
            }) => h,
            _ => return Err(Status::invalid_argument("expected Hello")),
        };
        let epoch = c.epoch();
        if !c.is_master_now() || hello.epoch > epoch {
            return Err(Status::failed_precondition("not master"));
        }
        if c.check_version(&hello.node_id, hello.protocol_version, "follower")
            .is_none()
        {
            return Err(incompatible(&c, hello.protocol_version));
        }
        let id = hello.node_id.clone();
        let token = Instant::now();
        c.followers.lock().insert(
            id.clone(),
            FollowerState {
                addr: hello.addr.clone(),
                acked: 0,
                last_ack: token,
                full_sync: false,
            },
        );
        // Acks from the follower.
        {
            let c = c.clone();
            let id = id.clone();
            tokio::spawn(async move {
                while let Ok(Some(m)) = inbound.message().await {
                    if let Some(FMsg::Ack(a)) = m.msg {
                        if let Some(f) = c.followers.lock().get_mut(&id) {
                            f.acked = f.acked.max(a.offset);
                            f.last_ack = Instant::now();
                        }
                        c.ack_notify.notify_waiters();
                    }
                }
            });
        }
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(async move {
            let pos = (hello.offset, hello.tag);
            let r = stream_to(&c, &id, pos, &tx, epoch).await;
            if let Err(e) = &r {
                info!(follower = %id, reason = %e, "replication stream ended");
                let _ = tx.send(Err(Status::aborted(e.clone()))).await;
            }
            let mut f = c.followers.lock();
            if f.get(&id).is_some_and(|s| s.last_ack >= token) {
                f.remove(&id);
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn forward(
        &self,
        req: Request<pb::ForwardRequest>,
    ) -> Result<Response<pb::ForwardReply>, Status> {
        let c = &self.c;
        let remote = req.remote_addr();
        let r = req.into_inner();
        let peer = if r.node_id.is_empty() {
            remote.map(|a| a.ip().to_string()).unwrap_or_default()
        } else {
            r.node_id.clone()
        };
        if c.check_version(&peer, r.protocol_version, "follower (Forward)")
            .is_none()
        {
            return Err(incompatible(c, r.protocol_version));
        }
        if !c.is_master_now() || r.epoch > c.epoch() {
            c.stats.rejected_not_master.fetch_add(1, Ordering::Relaxed);
            return Ok(forward_reply(c, Vec::new(), 0, true));
        }
        if r.wait {
            let target = c.log.last_offset();
            let reply = master_exec::wait_acks(
                c,
                r.wait_replicas as i64,
                r.wait_timeout_ms,
                target,
                r.resp3,
            )
            .await;
            return Ok(forward_reply(c, vec![reply], 0, false));
        }
        let (replies, offset) = run_checked(c, &peer, r).await;
        Ok(forward_reply(c, replies, offset, false))
    }
}

fn forward_reply(
    c: &Cluster,
    replies: Vec<Bytes>,
    offset: u64,
    not_master: bool,
) -> Response<pb::ForwardReply> {
    Response::new(pb::ForwardReply {
        replies,
        offset,
        epoch: c.epoch(),
        not_master,
        protocol_version: c.speaks().0,
    })
}

/// Runs a Forward call's commands, every one checked against what a
/// follower may forward before any runs: a refused command gets its error
/// and the others run, in their order; a transaction holding one is
/// refused whole. Returns the replies and the offset of the last write.
async fn run_checked(c: &Cluster, peer: &str, r: pb::ForwardRequest) -> (Vec<Bytes>, u64) {
    let cmds: Vec<DbCommand> = r
        .commands
        .into_iter()
        .map(|cm| (cm.db, cm.args.into_iter().collect()))
        .collect();
    let refused: Vec<Option<String>> = if r.transaction {
        let e = forwarding::check_transaction(cmds.iter().map(|(_, a)| &a[..]));
        vec![e]
    } else {
        cmds.iter()
            .map(|(_, a)| forwarding::check(a, false))
            .collect()
    };
    if let Some(e) = refused.iter().flatten().next() {
        c.stats.forwards_refused.fetch_add(1, Ordering::Relaxed);
        if c.warn_once(peer, "forward-refused") {
            warn!(peer = %peer, error = %e, "refused a forwarded command a follower never forwards (warned once per peer)");
        }
    }
    if r.transaction && refused[0].is_some() {
        let e = refused.into_iter().flatten().next().unwrap_or_default();
        return (vec![master_exec::error_bytes(r.resp3, &e)], 0);
    }
    let txn = r.transaction.then(|| Watched {
        keys: r
            .watched
            .into_iter()
            .enumerate()
            .map(|(i, k)| (r.watched_dbs.get(i).copied().unwrap_or(0) as usize, k))
            .collect(),
        pos: (r.watch_offset, r.watch_tag),
    });
    if !refused.iter().any(Option::is_some) {
        return master_exec::run_forwarded(c, cmds, txn, r.resp3).await;
    }
    let ok: Vec<DbCommand> = cmds
        .into_iter()
        .zip(&refused)
        .filter(|(_, e)| e.is_none())
        .map(|(a, _)| a)
        .collect();
    let (ran, offset) = master_exec::run_forwarded(c, ok, None, r.resp3).await;
    let mut ran = ran.into_iter();
    let replies = refused
        .iter()
        .map(|e| match e {
            Some(e) => master_exec::error_bytes(r.resp3, e),
            None => ran.next().unwrap_or_default(),
        })
        .collect();
    (replies, offset)
}

/// Most times the stream sender yields to let a small batch grow.
const COALESCE_YIELDS: u32 = 4;

/// Streams to one follower: partial or full sync, then the live log.
async fn stream_to(
    c: &Arc<Cluster>,
    id: &str,
    pos: (u64, u64),
    tx: &SyncTx,
    epoch: u64,
) -> Result<(), String> {
    let cursor = start_sync(c, id, pos, tx, epoch).await?;
    stream_log(c, tx, epoch, cursor).await
}

/// Resumes the follower at `pos` if the backlog holds it, else sends it a
/// full sync. Returns the next offset to stream.
async fn start_sync(
    c: &Arc<Cluster>,
    id: &str,
    pos: (u64, u64),
    tx: &SyncTx,
    epoch: u64,
) -> Result<u64, String> {
    if c.log.can_resume(pos) {
        c.stats.partial_syncs_served.fetch_add(1, Ordering::Relaxed);
        info!(follower = %id, offset = pos.0, "partial sync");
        send(
            tx,
            epoch,
            SMsg::Partial(pb::PartialSync {
                offset: pos.0,
                protocol_version: c.speaks().0,
            }),
        )
        .await?;
        return Ok(pos.0 + 1);
    }
    let reason = full_sync_reason(c, pos);
    info!(follower = %id, reason = %reason, "full sync");
    c.stats.full_syncs_served.fetch_add(1, Ordering::Relaxed);
    if let Some(f) = c.followers.lock().get_mut(id) {
        f.full_sync = true;
    }
    let started = Instant::now();
    let cursor = full_sync(c, tx, epoch, reason).await?;
    if let Some(f) = c.followers.lock().get_mut(id) {
        f.full_sync = false;
    }
    info!(follower = %id, ms = started.elapsed().as_millis() as u64, offset = cursor - 1, "full sync sent");
    Ok(cursor)
}

/// Why a follower at `pos` cannot resume (logged, and sent to it).
fn full_sync_reason(c: &Cluster, pos: (u64, u64)) -> String {
    let (first, _, _) = c.log.backlog_info();
    let (last, last_tag) = c.log.position();
    if pos.0 == 0 {
        "follower has no position (new, restarted or diverged)".to_string()
    } else if pos.0 > last {
        format!("follower is ahead of the master ({} > {last})", pos.0)
    } else if pos.0 < first.saturating_sub(1) {
        format!(
            "follower offset {} is no longer in the backlog (starts at {first})",
            pos.0
        )
    } else {
        format!(
            "follower history differs (offset {} tag {}, master at {last} tag {last_tag})",
            pos.0, pos.1
        )
    }
}

/// Streams the live log from `cursor` while this node is master of
/// `epoch`: runs of frames as they are in the log, a heartbeat after
/// 500 ms without writes.
async fn stream_log(
    c: &Arc<Cluster>,
    tx: &SyncTx,
    epoch: u64,
    mut cursor: u64,
) -> Result<(), String> {
    let mut coalesced = 0;
    let mut last_len = 0;
    let mut last_send = Instant::now();
    loop {
        if !c.is_master_epoch(epoch) {
            return Err("no longer master".into());
        }
        // Under load, let more commits join a small batch: when the last
        // message went out less than a millisecond ago, first let the tasks
        // already runnable (connections committing writes) run, up to
        // COALESCE_YIELDS times while the batch keeps growing. Fewer, larger
        // messages, with no timer delay added to the lag (tokio's timer
        // rounds a sleep up to a millisecond). The log is read once, after.
        let ready = c.log.last_offset().saturating_sub(cursor - 1);
        if ready > 0
            && ready < 256
            && coalesced < COALESCE_YIELDS
            && ready > last_len
            && last_send.elapsed() < Duration::from_millis(1)
        {
            coalesced += 1;
            last_len = ready;
            tokio::task::yield_now().await;
            continue;
        }
        coalesced = 0;
        last_len = 0;
        let batch = match c.log.read_frames(cursor, BATCH_ENTRIES, BATCH_BYTES) {
            Ok(b) => b,
            Err(ReadError::Trimmed) => {
                return Err(format!(
                    "follower fell out of the backlog at offset {cursor} (backlog too small for the write rate); it will full-sync"
                ))
            }
            Err(ReadError::Reset) => return Err("log reset".into()),
        };
        if batch.count == 0 {
            let notified = c.log.listen();
            if c.log.last_offset() >= cursor || !c.is_master_epoch(epoch) {
                continue;
            }
            if tokio::time::timeout(Duration::from_millis(500), notified)
                .await
                .is_err()
            {
                send(
                    tx,
                    epoch,
                    SMsg::Heartbeat(pb::Heartbeat {
                        offset: c.log.last_offset(),
                    }),
                )
                .await?;
            }
            continue;
        }
        cursor = batch.last + 1;
        last_send = Instant::now();
        send(
            tx,
            epoch,
            SMsg::Batch(pb::Batch {
                entries: Vec::new(),
                frames: batch.runs,
                filtered: false,
            }),
        )
        .await?;
    }
}

/// Sends a snapshot shard by shard with the live log interleaved (filtered;
/// see the invariant in `replication`). Returns the next offset to stream.
async fn full_sync(
    c: &Arc<Cluster>,
    tx: &SyncTx,
    epoch: u64,
    reason: String,
) -> Result<u64, String> {
    let db = &c.shared.db;
    let (start, _) = c.log.position();
    send(
        tx,
        epoch,
        SMsg::FullStart(pb::FullSyncStart {
            offset: start,
            reason,
            protocol_version: c.speaks().0,
        }),
    )
    .await?;
    // The scripting state first (script cache, function libraries): its
    // changes are applied idempotently, so one also sent live is harmless.
    let scripts: Vec<pb::Mutation> = c
        .shared
        .scripting
        .snapshot()
        .into_iter()
        .map(|op| mutation_to_pb(&crate::engine::Mutation::Script(op)))
        .collect();
    send(tx, epoch, SMsg::Chunk(pb::SnapshotChunk { puts: scripts })).await?;
    let mut cursor = start + 1;
    let mut cuts: Vec<Option<u64>> = vec![None; SHARDS];
    let mut end = c.log.position();
    for i in 0..SHARDS {
        let (puts, cut) = loop {
            // A script holds every shard: wait without holding a worker.
            let Some(ks) = db.lock_indices_or_busy(&[i]) else {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            };
            let cut = c.log.position();
            let puts: Vec<(usize, Vec<pb::Mutation>)> = ks
                .shard_databases(i)
                .into_iter()
                .map(|(d, s)| (d, s.iter().map(|(k, e)| put_pb(k, e)).collect()))
                .collect();
            break (puts, cut);
        };
        cuts[i] = Some(cut.0);
        end = cut;
        for (d, puts) in puts {
            // Each chunk is applied on its own, starting in database 0.
            let select =
                (d != 0).then(|| mutation_to_pb(&crate::engine::Mutation::Select { db: d as u32 }));
            let mut it = puts.into_iter().peekable();
            while it.peek().is_some() {
                let chunk: Vec<pb::Mutation> = select
                    .clone()
                    .into_iter()
                    .chain(it.by_ref().take(CHUNK_KEYS))
                    .collect();
                send(tx, epoch, SMsg::Chunk(pb::SnapshotChunk { puts: chunk })).await?;
            }
        }
        cursor = send_filtered(c, tx, epoch, cursor, cut.0, &cuts).await?;
        if !c.is_master_epoch(epoch) {
            return Err("no longer master".into());
        }
    }
    cursor = send_filtered(c, tx, epoch, cursor, end.0, &cuts).await?;
    debug_assert_eq!(cursor, end.0 + 1);
    send(
        tx,
        epoch,
        SMsg::FullEnd(pb::FullSyncEnd {
            offset: end.0,
            tag: end.1,
        }),
    )
    .await?;
    Ok(end.0 + 1)
}

async fn send_filtered(
    c: &Arc<Cluster>,
    tx: &SyncTx,
    epoch: u64,
    mut cursor: u64,
    upto: u64,
    cuts: &[Option<u64>],
) -> Result<u64, String> {
    let db = &c.shared.db;
    loop {
        let v =
            match c.log.read(cursor, upto, BATCH_ENTRIES, BATCH_BYTES) {
                Ok(v) => v,
                Err(_) => return Err(
                    "the backlog overflowed during the full sync (raise --cluster-backlog-size)"
                        .into(),
                ),
            };
        if v.is_empty() {
            return Ok(cursor);
        }
        let mut out = Vec::new();
        for e in &v {
            let d = wire::decode_entry(e.encoded.clone())?;
            let mut muts = Vec::new();
            for m in &d.mutations {
                match filter(db, m, e.offset, cuts) {
                    Filtered::Send => muts.push(mutation_to_pb(m)),
                    Filtered::Skip => {}
                    Filtered::Replace(x) => muts.push(mutation_to_pb(&x)),
                    Filtered::Abort(why) => return Err(format!("full sync restarted: {why}")),
                }
            }
            cursor = e.offset + 1;
            if !muts.is_empty() {
                out.push(pb::LogEntry {
                    offset: e.offset,
                    tag: e.tag,
                    ts_us: d.ts_us,
                    mutations: muts,
                });
            }
        }
        if !out.is_empty() {
            send(
                tx,
                epoch,
                SMsg::Batch(pb::Batch {
                    entries: out,
                    frames: Vec::new(),
                    filtered: true,
                }),
            )
            .await?;
        }
    }
}

/// Serves the replication gRPC service until the process ends.
pub async fn serve(c: Arc<Cluster>, listener: tokio::net::TcpListener) {
    let svc = ReplicationServer::new(Svc { c: c.clone() })
        .max_decoding_message_size(MAX_MSG)
        .max_encoding_message_size(MAX_MSG);
    let svc = InterceptedService::new(svc, SecretCheck::new(&c.cfg));
    let r = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .initial_stream_window_size(Some(8 << 20))
        .initial_connection_window_size(Some(16 << 20))
        .http2_keepalive_interval(Some(Duration::from_secs(1)))
        .http2_keepalive_timeout(Some(c.cfg.lease_ttl))
        .add_service(svc)
        // With a custom incoming stream the builder's tcp_nodelay does not
        // apply: set it on every accepted socket (else streamed batches wait
        // for delayed ACKs, ~40 ms per write at low rates).
        .serve_with_incoming(TcpListenerStream::new(listener).map(|s| {
            if let Ok(s) = &s {
                let _ = s.set_nodelay(true);
            }
            s
        }))
        .await;
    if let Err(e) = r {
        warn!(error = %e, "gRPC server ended");
    }
}

// ---------------------------------------------------------------- follower loop

/// Follows whichever master the election announces, re-pointing on change.
pub async fn replicator(c: Arc<Cluster>) {
    let mut rx = c.leader_tx.subscribe();
    // Retry pause after an incompatible master: doubles up to a minute, so
    // an old master that cannot check versions (and starts a full sync for
    // every Hello) is not made to do so every second.
    let mut incompatible_pause = Duration::from_secs(1);
    loop {
        let leader = rx.borrow_and_update().clone();
        match leader {
            Some(l) if l.node_id != c.node_id => {
                let res = tokio::select! {
                    r = follow(&c, &l) => Some(r),
                    _ = rx.changed() => None,
                };
                *c.link.lock() = Link::Down;
                if let Some(r) = res {
                    let mut pause = Duration::from_millis(100);
                    if r.is_ok() {
                        incompatible_pause = Duration::from_secs(1);
                    }
                    if let Err(e) = &r {
                        if e.starts_with(INCOMPATIBLE) {
                            // Logged once per master; retried slowly (an
                            // upgrade of one side ends it).
                            pause = incompatible_pause;
                            incompatible_pause =
                                (incompatible_pause * 2).min(Duration::from_secs(60));
                        } else {
                            incompatible_pause = Duration::from_secs(1);
                            warn!(master = %l.node_id, error = %e, "replication link down");
                        }
                        if e.contains("transport") || e.contains("connect") {
                            drop_client(&l.grpc);
                        }
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = rx.changed() => {}
                    }
                }
            }
            _ => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Follows master `l`: opens its stream and applies what it sends until
/// the stream ends, the master changes (the caller drops this) or the
/// stream breaks a rule (epoch, version, gap).
async fn follow(c: &Arc<Cluster>, l: &Leader) -> Result<(), String> {
    let _g = c.follow_lock.lock().await;
    if c.role() == super::Role::Master {
        return Ok(());
    }
    let (mut inbound, ack_tx) = open_sync(c, l).await?;
    // Nothing is applied before the master said which version it speaks.
    let mut agreed = false;
    *c.link.lock() = Link::Syncing;
    let mut full_started: Option<Instant> = None;
    loop {
        let msg = inbound
            .message()
            .await
            .map_err(|s| format!("stream error: {}", s.message()))?
            .ok_or_else(|| "stream ended".to_string())?;
        if msg.epoch < c.known_epoch() {
            return Err(format!(
                "message from epoch {} older than {}",
                msg.epoch,
                c.known_epoch()
            ));
        }
        let Some(m) = msg.msg else { continue };
        check_stream_version(c, l, &m, &mut agreed)?;
        apply_message(c, l, m, &mut full_started)?;
        let _ = ack_tx.send(c.log.last_offset());
    }
}

/// Sends Hello (this node's position, or none while diverged) and opens
/// the Sync stream; returns the master's messages and where acks go.
async fn open_sync(
    c: &Cluster,
    l: &Leader,
) -> Result<(Streaming<pb::SyncMessage>, watch::Sender<u64>), String> {
    let mut cl = client_for(c, &l.grpc)?;
    let pos = if c.log.diverged.load(Ordering::Acquire) {
        (0, 0)
    } else {
        c.log.position()
    };
    let (ack_tx, ack_rx) = watch::channel(pos.0);
    let hello = pb::FollowerMessage {
        msg: Some(FMsg::Hello(pb::Hello {
            node_id: c.node_id.clone(),
            offset: pos.0,
            tag: pos.1,
            epoch: l.epoch,
            addr: c.client_addr.clone(),
            protocol_version: c.speaks().0,
        })),
    };
    // Acks carry the latest applied offset, at most one per millisecond.
    let acks = WatchStream::from_changes(ack_rx)
        .throttle(Duration::from_millis(1))
        .map(|o| pb::FollowerMessage {
            msg: Some(FMsg::Ack(pb::Ack { offset: o })),
        });
    let outbound = tokio_stream::once(hello).chain(acks);
    match cl.sync(outbound).await {
        Ok(r) => Ok((r.into_inner(), ack_tx)),
        Err(s) if is_incompatible(&s) => {
            c.refused_by(&l.node_id, status_version(&s));
            Err(format!("{INCOMPATIBLE}: {}", s.message()))
        }
        Err(s) => Err(format!("sync refused: {}", s.message())),
    }
}

/// The stream must start with a sync (partial or full) announcing a
/// protocol version this node speaks; `agreed` records that it did.
fn check_stream_version(
    c: &Cluster,
    l: &Leader,
    m: &SMsg,
    agreed: &mut bool,
) -> Result<(), String> {
    let announced = match m {
        SMsg::Partial(p) => Some(p.protocol_version),
        SMsg::FullStart(f) => Some(f.protocol_version),
        _ => None,
    };
    if let Some(v) = announced {
        if c.check_version(&l.node_id, v, "master").is_none() {
            return Err(format!(
                "{INCOMPATIBLE}: the master speaks {v}, this node {:?}",
                c.speaks()
            ));
        }
        *agreed = true;
    } else if !*agreed {
        return Err("the master's stream did not start with a sync".into());
    }
    Ok(())
}

/// Applies one message of master `l`'s stream.
fn apply_message(
    c: &Cluster,
    l: &Leader,
    m: SMsg,
    full_started: &mut Option<Instant>,
) -> Result<(), String> {
    let db = &c.shared.db;
    match m {
        SMsg::Partial(p) => {
            info!(master = %l.node_id, offset = p.offset, "partial sync: resuming");
            synced(c);
        }
        SMsg::FullStart(f) => {
            info!(master = %l.node_id, reason = %f.reason, "full sync: receiving snapshot");
            *full_started = Some(Instant::now());
            *c.link.lock() = Link::Syncing;
            c.log.reset_to((0, 0));
            c.log.diverged.store(true, Ordering::Release);
            db.apply_as(Origin::Stream, vec![Mutation::FlushAll]);
        }
        SMsg::Chunk(ch) => {
            db.apply_as(Origin::Stream, convert_all(ch.puts)?);
        }
        SMsg::Batch(bt) if bt.filtered => {
            for e in bt.entries {
                db.apply_as(Origin::Stream, convert_all(e.mutations)?);
            }
        }
        SMsg::Batch(bt) => {
            for run in bt.frames {
                apply_run(c, l, run)?;
            }
        }
        SMsg::FullEnd(f) => {
            c.log.reset_to((f.offset, f.tag));
            c.log.diverged.store(false, Ordering::Release);
            c.stats.full_syncs_done.fetch_add(1, Ordering::Relaxed);
            let ms = full_started
                .map(|t| t.elapsed().as_millis() as u64)
                .unwrap_or(0);
            c.stats.last_full_sync_ms.store(ms, Ordering::Relaxed);
            info!(
                master = %l.node_id,
                offset = f.offset,
                keys = db.len(),
                ms,
                "full sync done"
            );
            synced(c);
        }
        SMsg::Heartbeat(_) => {}
    }
    Ok(())
}

/// The link is up and this node completed a sync (it may campaign now).
fn synced(c: &Cluster) {
    *c.link.lock() = Link::Up;
    c.synced_once.store(true, Ordering::Release);
    c.synced_notify.notify_waiters();
}

/// Applies a run of log frames as received (the follower's log keeps
/// them so), all or nothing.
fn apply_run(c: &Cluster, l: &Leader, run: Bytes) -> Result<(), String> {
    let entries = replication::decode_run(&run)?;
    let stamps: Vec<u64> = entries.iter().map(|e| e.ts_us).collect();
    if let Err(gap) = replication::apply_remote(&c.shared.db, &c.log, run, entries) {
        // The master's history minus a write must never be served nor win
        // an election: this node is diverged (reads go to the master, it
        // yields an election) and its next Hello asks for a full sync.
        c.log.diverged.store(true, Ordering::Release);
        c.stats.stream_gaps.fetch_add(1, Ordering::Relaxed);
        warn!(master = %l.node_id, error = %gap, "replication stream has a gap: nothing of it applied; ending the link, the next sync is full");
        return Err(gap.to_string());
    }
    let now = replication::now_us();
    for t in stamps {
        c.lag.record(now.saturating_sub(t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ClusterConfig;

    fn cfg(secrets: &[&str]) -> ClusterConfig {
        ClusterConfig {
            etcd: vec!["http://127.0.0.1:2379".into()],
            name: "t".into(),
            node_id: "n".into(),
            port: 0,
            advertise: None,
            lease_ttl: Duration::from_secs(3),
            secrets: secrets.iter().map(|s| s.to_string()).collect(),
            insecure: secrets.is_empty(),
            backlog_size: 1 << 20,
            test_protocol_version: None,
        }
    }

    #[test]
    fn any_configured_secret_is_accepted_and_the_first_is_sent() {
        let rotating = cfg(&["new", "old"]);
        let check = SecretCheck::new(&rotating);
        assert_eq!(sent_secret(&rotating), secret_value("new"));
        for (given, ok) in [("new", true), ("old", true), ("ne", false), ("", false)] {
            assert_eq!(
                check.accepts(secret_value(given).as_bytes()),
                ok,
                "{given:?}"
            );
        }
        // Insecure: only what a node without a secret sends.
        let open = SecretCheck::new(&cfg(&[]));
        assert!(open.accepts(sent_secret(&cfg(&[])).as_bytes()));
        assert!(!open.accepts(secret_value("x").as_bytes()));
    }
}
