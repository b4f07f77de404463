//! What a Forward call runs at the master: the forwarded commands (on a
//! pooled client state, blocking ones waiting here, a transaction checked
//! against the follower's WATCHed keys) and WAIT's count of acknowledging
//! followers. Both sides import it: the gRPC service (`grpc.rs`) for calls
//! from followers, the router (`router.rs`) when this node became master
//! while a write waited to be forwarded.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use parking_lot::Mutex;

use super::{replication, Cluster};
use crate::commands::{self, execute, DeferredReply, Flow, Overlap};
use crate::commands::{ClientState, Shared};
use crate::protocol::Reply;
use crate::state::ClientInfo;

/// An error reply, encoded for a RESP2 or RESP3 client.
pub fn error_bytes(resp3: bool, msg: &str) -> Bytes {
    let mut r = Reply::new(resp3);
    r.error(msg);
    r.buf.freeze()
}

/// The keys a client WATCHes when it sends EXEC at a follower, and the
/// follower's log position (offset, tag) then.
pub struct Watched {
    pub keys: Vec<Bytes>,
    pub pos: (u64, u64),
}

/// WAIT on the master: how many followers acknowledged `target` within `timeout_ms` (0 = forever).
pub async fn wait_acks(c: &Cluster, n: i64, timeout_ms: u64, target: u64, resp3: bool) -> Bytes {
    let deadline =
        (timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    let count = loop {
        let notified = c.ack_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let k = c.acked_count(target);
        if k as i64 >= n {
            break k;
        }
        match deadline {
            Some(d) => {
                if tokio::time::timeout_at(d, notified).await.is_err() {
                    break c.acked_count(target);
                }
            }
            None => notified.await,
        }
    };
    let mut r = Reply::new(resp3);
    r.int(count as i64);
    r.buf.freeze()
}

/// Client states reused for forwarded commands (not listed in CLIENT LIST).
static POOL: Mutex<Vec<ClientState>> = Mutex::new(Vec::new());
static NEXT_ID: AtomicU64 = AtomicU64::new(1 << 62);

fn pooled_client() -> ClientState {
    if let Some(c) = POOL.lock().pop() {
        return c;
    }
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let info = Arc::new(ClientInfo::new(
        NEXT_ID.fetch_add(1, Ordering::Relaxed),
        addr,
        addr,
    ));
    ClientState::new(info, true)
}

/// Runs one forwarded command on the master. Returns whether it awaited
/// (then the calling thread's last-commit offset no longer tells its write).
async fn run_one(
    server: &Arc<Shared>,
    client: &mut ClientState,
    args: Vec<Bytes>,
    out: &mut Reply,
) -> bool {
    if args.is_empty() {
        return false;
    }
    let mut flow = execute(server, client, args, out);
    // A script runs here: run the command once it ended (or ran long
    // enough for BUSY).
    while let Flow::Wait(args, wait) = flow {
        wait.await;
        flow = execute(server, client, args, out);
    }
    match flow {
        Flow::Continue | Flow::Close | Flow::Wait(..) => return false,
        // The upstream tier answers it (cluster mode with an upstream tier):
        // only the master writes through.
        Flow::Defer(reply) => {
            let bytes = reply.await;
            out.raw(&bytes);
        }
        // A blocking command forwarded from a follower blocks here, on the
        // master, where the writes that serve it run.
        Flow::Block(req) => {
            let waiter = server
                .blocking
                .register(&server.db, client.id, client.resp3, req);
            let guard = Unblock {
                server: server.clone(),
                waiter,
            };
            let mut stop = server.shutdown_requested();
            tokio::select! {
                _ = guard.waiter.notify.notified() => {}
                _ = guard.waiter.deadline_reached() => {}
                _ = stop.changed() => {}
            }
            server.blocking.unregister(&server.db, &guard.waiter);
            match guard.waiter.finish() {
                Some(reply) => out.raw(&reply),
                None => guard.waiter.timeout_reply(out),
            }
        }
    }
    true
}

/// Ends a forwarded blocking wait even when the call is dropped (the
/// follower's client went away): no later write serves it.
struct Unblock {
    server: Arc<Shared>,
    waiter: Arc<crate::state::blocking::Waiter>,
}

impl Drop for Unblock {
    fn drop(&mut self) {
        self.server
            .blocking
            .unregister(&self.server.db, &self.waiter);
        self.waiter.finish();
    }
}

/// Runs forwarded commands on the master. Returns the replies (encoded for
/// the original client; one per command, or EXEC's for a transaction) and
/// the log offset of the last write they committed (0: none).
pub async fn run_forwarded(
    c: &Cluster,
    cmds: Vec<Vec<Bytes>>,
    txn: Option<Watched>,
    resp3: bool,
) -> (Vec<Bytes>, u64) {
    let server = &c.shared;
    let mut client = pooled_client();
    client.resp3 = resp3;
    replication::take_last_commit();
    let mut replies = Vec::with_capacity(if txn.is_some() { 1 } else { cmds.len() });
    let mut awaited = false;
    if let Some(w) = txn {
        let mut scratch = Reply::new(resp3);
        if !w.keys.is_empty() {
            // Watch here first, then look for the writes between the
            // follower's position and now: every write after the follower's
            // position is either in the log by then or fires this watch.
            let mut watch = Vec::with_capacity(w.keys.len() + 1);
            watch.push(Bytes::from_static(b"WATCH"));
            watch.extend(w.keys.iter().cloned());
            let _ = run_one(server, &mut client, watch, &mut scratch).await;
            if c.log.touched_since(w.pos, &w.keys) {
                client.watch_dirty.store(true, Ordering::Release);
            }
        }
        let _ = run_one(
            server,
            &mut client,
            vec![Bytes::from_static(b"MULTI")],
            &mut scratch,
        )
        .await;
        for args in cmds {
            awaited |= run_one(server, &mut client, args, &mut scratch).await;
        }
        let mut out = Reply::new(resp3);
        awaited |= run_one(
            server,
            &mut client,
            vec![Bytes::from_static(b"EXEC")],
            &mut out,
        )
        .await;
        replies.push(out.buf.freeze());
    } else {
        let mut out = Reply::new(resp3);
        // Consecutive commands the router pipelines (with an upstream tier,
        // the master's write-through) overlap, as in a client's pipeline:
        // the batch runs in order at the upstream in one round trip.
        let pipelines = server.router.get().is_some_and(|r| r.pipelines());
        let mut pending: Vec<DeferredReply> = Vec::new();
        for args in cmds {
            if pipelines && !args.is_empty() {
                // With a router, only forwarded replies overlap (never a
                // batch of scripts).
                if let Some(Overlap::Reply(r)) =
                    commands::execute_deferrable(server, &mut client, &args)
                {
                    pending.push(r);
                    awaited = true;
                    continue;
                }
            }
            replies.extend(join_all(std::mem::take(&mut pending)).await);
            awaited |= run_one(server, &mut client, args, &mut out).await;
            replies.push(out.buf.split().freeze());
        }
        replies.extend(join_all(pending).await);
    }
    // A command that awaited may have resumed on another thread, and a
    // blocking pop is committed by the write that served it: then the
    // follower waits for everything logged so far.
    let offset = match replication::take_last_commit() {
        _ if awaited => c.log.last_offset(),
        o => o,
    };
    client.multi = None;
    client.multi_dirty = false;
    client.close_after_reply = false;
    for (k, _) in client.watched.drain(..) {
        server.watches.unwatch(&k, &client.watch_dirty);
    }
    if client.subscriptions == 0 {
        POOL.lock().push(client);
    }
    (replies, offset)
}
