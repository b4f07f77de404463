//! The cluster's [`Router`]: on a node that is not master, WRITE commands (and
//! EXEC of a transaction that writes, and WAIT) go to the master over gRPC;
//! the client gets the master's reply once this node applied the write.
//! Reads always run locally. ROLE and INFO replication report cluster state.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::forwarding::{self, forward_kind, ForwardKind};
use super::master_exec::{error_bytes, run_forwarded, wait_acks, DbCommand, Watched};
use super::{grpc, Cluster, Link, Role};
use crate::commands::{flags, Command, DeferredReply, Router};
use crate::commands::{ClientState, Shared};
use crate::protocol::Reply;

pub const READONLY_ERR: &str = "READONLY You can't write against a read only replica.";

pub struct ClusterRouter {
    c: Arc<Cluster>,
    /// Writes pipelined by a client and not yet handed to the forwarder, per
    /// client id: the first of them polled hands over all of them.
    queued: Arc<Mutex<HashMap<u64, Vec<Queued>>>>,
    /// Group commit of forwarded writes, one per protocol (RESP2, RESP3).
    fwd: [Arc<Forwarder>; 2],
}

/// A write waiting to be forwarded: its arguments and where its reply goes.
type Queued = (DbCommand, oneshot::Sender<Bytes>);

impl ClusterRouter {
    pub fn new(c: Arc<Cluster>) -> Self {
        let fwd = [false, true].map(|resp3| {
            Arc::new(Forwarder {
                c: c.clone(),
                resp3,
                state: Mutex::new((Vec::new(), 0)),
            })
        });
        ClusterRouter {
            c,
            queued: Default::default(),
            fwd,
        }
    }
}

impl ClusterRouter {
    /// Whether this node sends `cmd` to the master: writes, and PUBLISH
    /// (which comes back to every node through the replication stream, so
    /// subscribers anywhere hear it), while it is not master.
    /// The rule is [`forwarding::forward_kind`], which the master checks too.
    pub(super) fn forwards(&self, cmd: &Command) -> bool {
        forward_kind(cmd) == Some(ForwardKind::Write) && !self.c.is_master_now()
    }

    /// Whether a pipelined `cmd` joins the group commit: a forwarded command,
    /// except WAIT and blocking commands, which may wait long at the master
    /// and so get a Forward call of their own (`route`); in the shared
    /// group they would hold up every other client's writes behind them.
    pub(super) fn group_commits(&self, cmd: &Command) -> bool {
        self.forwards(cmd) && cmd.name != "wait" && !cmd.has(flags::BLOCKING)
    }

    /// Hands one command (run in database `db`) to the group commit;
    /// resolves to its reply.
    fn forward_one(&self, db: usize, args: &[Bytes], resp3: bool) -> DeferredReply {
        let (tx, rx) = oneshot::channel();
        self.fwd[resp3 as usize].submit(vec![((db as u32, args.to_vec()), tx)]);
        Box::pin(reply_of(rx, resp3))
    }
}

/// The reply a forwarded command's sender delivers (an error if it went away).
async fn reply_of(rx: oneshot::Receiver<Bytes>, resp3: bool) -> Bytes {
    rx.await
        .unwrap_or_else(|_| error_bytes(resp3, "ERR master link error"))
}

/// Forwards the writes of every client of this follower to the master
/// together (group commit): at most [`MAX_IN_FLIGHT`] Forward calls at a
/// time; the writes that queue meanwhile go in the next call. One client's
/// writes are handed over as one group (a pipeline) and its next group only
/// after their replies, so each client's writes run at the master in order;
/// writes of different clients are independent, as on one Redis.
struct Forwarder {
    c: Arc<Cluster>,
    resp3: bool,
    /// (waiting groups of writes, calls in flight)
    state: Mutex<(Vec<Vec<Queued>>, usize)>,
}

const MAX_IN_FLIGHT: usize = 4;
/// Most commands in one Forward call.
const MAX_FORWARD_CMDS: usize = 4096;

impl Forwarder {
    fn submit(self: &Arc<Self>, group: Vec<Queued>) {
        let mut st = self.state.lock();
        st.0.push(group);
        if st.1 < MAX_IN_FLIGHT {
            st.1 += 1;
            drop(st);
            tokio::spawn(self.clone().run());
        }
    }

    async fn run(self: Arc<Self>) {
        loop {
            let batch: Vec<Queued> = {
                let mut st = self.state.lock();
                if st.0.is_empty() {
                    st.1 -= 1;
                    return;
                }
                // Whole groups only: calls complete in any order, so a
                // client's group must not be split over two of them.
                let mut n = 0;
                let mut cmds = 0;
                while n < st.0.len() && (n == 0 || cmds + st.0[n].len() <= MAX_FORWARD_CMDS) {
                    cmds += st.0[n].len();
                    n += 1;
                }
                st.0.drain(..n).flatten().collect()
            };
            let (cmds, txs): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
            let replies = forward(self.c.clone(), cmds, None, self.resp3, None).await;
            for (tx, r) in txs.into_iter().zip(replies) {
                let _ = tx.send(r);
            }
        }
    }
}

fn ready(b: Bytes) -> DeferredReply {
    Box::pin(std::future::ready(b))
}

fn parse_i64(b: &[u8]) -> Option<i64> {
    std::str::from_utf8(b).ok()?.parse().ok()
}

impl Router for ClusterRouter {
    fn route(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        let c = &self.c;
        match cmd.name {
            "role" if args.len() == 1 => return Some(ready(role_reply(c, client.resp3))),
            "wait" if args.len() == 3 => {
                let n = parse_i64(&args[1])?;
                let t = parse_i64(&args[2]).filter(|t| *t >= 0)?;
                let resp3 = client.resp3;
                let c = c.clone();
                if c.role() == Role::Master {
                    let target = c.log.last_offset();
                    return Some(Box::pin(async move {
                        wait_acks(&c, n, t as u64, target, resp3).await
                    }));
                }
                return Some(Box::pin(async move {
                    first(
                        forward(
                            c,
                            Vec::new(),
                            None,
                            resp3,
                            Some((n.max(0) as u64, t as u64)),
                        )
                        .await,
                    )
                }));
            }
            "exec" => {
                let queue = client.multi.as_ref()?;
                if client.multi_dirty
                    || !queue
                        .iter()
                        .any(|(q, _)| forward_kind(q) == Some(ForwardKind::Write))
                    || c.is_master_now()
                {
                    return None;
                }
                let queue = client.multi.take().unwrap_or_default();
                // The position first, then the flag: a write applied here up
                // to `pos` has fired the flag already; the master checks the
                // writes after `pos`.
                let pos = c.log.position();
                let aborted = client.watch_dirty.load(Ordering::Acquire);
                let mut keys = Vec::with_capacity(client.watched.len());
                for (k, _) in client.watched.drain(..) {
                    server.watches.unwatch(&k, &client.watch_dirty);
                    keys.push(k);
                }
                client.watch_dirty.store(false, Ordering::Release);
                let resp3 = client.resp3;
                if aborted {
                    let mut r = Reply::new(resp3);
                    r.null_array();
                    return Some(ready(r.buf.freeze()));
                }
                // The master would refuse it: say so without sending it.
                if let Some(e) = forwarding::check_transaction(queue.iter().map(|(_, a)| &a[..])) {
                    return Some(ready(error_bytes(resp3, &e)));
                }
                // The master runs the transaction in this client's database;
                // a SELECT it holds selects here too, as EXEC would.
                let db = client.db as u32;
                for (q, a) in &queue {
                    if q.name == "select" {
                        if let Some(n) = a.get(1).and_then(|n| parse_i64(n)) {
                            if n >= 0 && (n as usize) < server.db.databases() {
                                client.db = n as usize;
                                client.info.meta.lock().db = client.db;
                            }
                        }
                    }
                }
                let cmds: Vec<DbCommand> = queue.into_iter().map(|(_, a)| (db, a)).collect();
                let c = c.clone();
                return Some(Box::pin(async move {
                    first(forward(c, cmds, Some(Watched { keys, pos }), resp3, None).await)
                }));
            }
            _ => {}
        }
        // A keyspace that is being rebuilt (a full sync in progress or cut
        // short, or a local write while not master) must not answer reads
        // with part of the data: the master answers them meanwhile.
        if forward_kind(cmd) == Some(ForwardKind::Read)
            && c.log.diverged.load(Ordering::Acquire)
            && !c.is_master_now()
        {
            return Some(self.forward_one(client.db, args, client.resp3));
        }
        if !self.forwards(cmd) {
            return None;
        }
        let resp3 = client.resp3;
        if cmd.has(flags::BLOCKING) {
            // A call of its own: it may wait long at the master, and is
            // dropped there (unblocked) if this client goes away.
            let (c, args) = (c.clone(), args.to_vec());
            let db = client.db as u32;
            return Some(Box::pin(async move {
                first(forward(c, vec![(db, args)], None, resp3, None).await)
            }));
        }
        Some(self.forward_one(client.db, args, resp3))
    }

    fn pipelines(&self) -> bool {
        true
    }

    /// Writes pipelined at a follower go to the master together: queued per
    /// client, sent as one Forward by the first of them polled, run there in
    /// order. The connection polls a batch only after queuing all of it, and
    /// queues nothing new until every reply of the batch is in, so batches of
    /// one client never overlap.
    fn route_pipelined(
        &self,
        _server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        if !self.group_commits(cmd) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        let id = client.id;
        self.queued
            .lock()
            .entry(id)
            .or_default()
            .push(((client.db as u32, args.to_vec()), tx));
        let (queued, resp3) = (self.queued.clone(), client.resp3);
        let fwd = self.fwd[resp3 as usize].clone();
        Some(Box::pin(async move {
            let batch = queued.lock().remove(&id);
            if let Some(batch) = batch {
                fwd.submit(batch);
            }
            reply_of(rx, resp3).await
        }))
    }

    fn disconnect(&self, client: &ClientState) {
        self.queued.lock().remove(&client.id);
    }

    fn info_replication(&self) -> Option<String> {
        Some(self.c.info_replication())
    }
}

fn first(mut replies: Vec<Bytes>) -> Bytes {
    replies.swap_remove(0)
}

/// Forwards writes (pipelined commands, a transaction, or WAIT) to the
/// master and waits until this node applied them. Returns one reply per
/// command (one for a transaction or WAIT). Retries only when nothing can
/// have run: no master known yet, connection refused, or the receiver said
/// it is not master.
async fn forward(
    c: Arc<Cluster>,
    cmds: Vec<DbCommand>,
    txn: Option<Watched>,
    resp3: bool,
    wait: Option<(u64, u64)>,
) -> Vec<Bytes> {
    let n = if txn.is_some() || wait.is_some() {
        1
    } else {
        cmds.len()
    };
    let all = |b: Bytes| vec![b; n];
    c.stats.forwarded.fetch_add(1, Ordering::Relaxed);
    let bound = c.failover_bound();
    let deadline = tokio::time::Instant::now() + bound;
    let mut stale: Option<(String, u64)> = None;
    loop {
        let leader = c
            .wait_for_master(deadline, stale.as_ref().map(|(n, e)| (n.as_str(), *e)))
            .await;
        let Some(leader) = leader else {
            c.stats.rejected_not_master.fetch_add(1, Ordering::Relaxed);
            return all(error_bytes(resp3, READONLY_ERR));
        };
        if leader.node_id == c.node_id {
            // This node became master meanwhile.
            if let Some((n, t)) = wait {
                return vec![wait_acks(&c, n as i64, t, c.log.last_offset(), resp3).await];
            }
            if c.is_master_now() {
                return run_forwarded(&c, cmds, txn, resp3).await.0;
            }
            stale = Some((leader.node_id, leader.epoch));
            continue;
        }
        match grpc::forward(&c, &leader, &cmds, txn.as_ref(), resp3, wait).await {
            Ok(r) if r.not_master => {
                stale = Some((leader.node_id, leader.epoch));
                if tokio::time::Instant::now() >= deadline {
                    return all(error_bytes(resp3, READONLY_ERR));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(r) => {
                if r.offset > 0 {
                    c.wait_applied(r.offset, tokio::time::Instant::now() + bound)
                        .await;
                }
                if r.replies.len() != n {
                    return all(error_bytes(
                        resp3,
                        "ERR master link error: reply count mismatch",
                    ));
                }
                return r.replies;
            }
            Err(grpc::ForwardError::Retry(e)) => {
                tracing::debug!(error = %e, master = %leader.node_id, "forward: master unreachable, retrying");
                if tokio::time::Instant::now() >= deadline {
                    return all(error_bytes(resp3, READONLY_ERR));
                }
                stale = Some((leader.node_id, leader.epoch));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(grpc::ForwardError::Incompatible(e)) => return all(error_bytes(resp3, &e)),
            Err(grpc::ForwardError::Failed(e)) => {
                return all(error_bytes(
                    resp3,
                    &format!(
                        "ERR master link error (the write may or may not have been applied): {e}"
                    ),
                ));
            }
        }
    }
}

fn role_reply(c: &Cluster, resp3: bool) -> Bytes {
    let mut r = Reply::new(resp3);
    let off = c.log.last_offset();
    if c.role() == Role::Master {
        let f = c.followers.lock().clone();
        r.array(3);
        r.bulk(b"master");
        r.int(off as i64);
        r.array(f.len());
        for st in f.values() {
            let (h, p) = st.addr.rsplit_once(':').unwrap_or((&st.addr, "0"));
            r.array(3);
            r.bulk(h.as_bytes());
            r.bulk(p.as_bytes());
            r.bulk(st.acked.to_string().as_bytes());
        }
    } else {
        let leader = c.leader();
        let (h, p) = leader
            .as_ref()
            .and_then(|l| l.addr.rsplit_once(':'))
            .map(|(h, p)| (h.to_string(), p.parse::<i64>().unwrap_or(0)))
            .unwrap_or_else(|| ("?".into(), 0));
        let state = match *c.link.lock() {
            Link::Up => "connected",
            Link::Syncing => "sync",
            Link::Down => "connect",
        };
        r.array(5);
        r.bulk(b"slave");
        r.bulk(h.as_bytes());
        r.int(p);
        r.bulk(state.as_bytes());
        r.int(off as i64);
    }
    r.buf.freeze()
}
