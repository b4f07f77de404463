//! Cluster mode with an upstream Redis tier: the two routers composed.
//!
//! - The cluster decides first: on a follower, writes (and PUBLISH, and
//!   transactions with writes) go to the master, which alone writes through
//!   to the upstream. Once a forwarded write returns, the follower drops its
//!   own copies of the keys it named, so the next read there fetches the new
//!   value (read-your-writes on the node the client talks to).
//! - Everything else goes to the tiered router: local hits, read-through on a
//!   miss, write-through on the master.
//! - Each node is its own near cache of the upstream: back-fills and
//!   invalidation drops are applied outside the replication log (they are not
//!   writes of the cluster), and every node keeps its own tracking connection,
//!   so every node drops local copies on upstream invalidations.
//! - PUBLISH on the master reaches the upstream (tier) and, through the
//!   replication stream, every follower's subscribers.
//! - Pipelines: a client's pipelined commands take one of two ordered paths,
//!   the cluster's group commit (writes at a follower) or the tier's
//!   per-client upstream pipeline (the master's writes, upstream reads).
//!   Each path keeps its own order but not the other's, so a command joins
//!   a path only while the client has nothing pending on the other one;
//!   otherwise it waits for the replies before it.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::router::ClusterRouter;
use crate::commands::{flags, Command, DeferredReply, Router};
use crate::commands::{ClientState, Shared};
use crate::engine::Origin;
use crate::engine::{Keys, Mutation};
use crate::tier::router::{transaction_effects, Dropped, TieredRouter};

pub struct ClusterTieredRouter {
    cluster: ClusterRouter,
    tier: Arc<TieredRouter>,
    /// Per client: pipelined commands not yet answered, by path.
    pending: Arc<Mutex<HashMap<u64, [usize; 2]>>>,
}

/// The two ordered paths a pipelined command can take.
#[derive(Clone, Copy)]
enum Path {
    Cluster = 0,
    Tier = 1,
}

/// Counts a pipelined command on its path until its reply is ready (or the
/// client goes away).
struct Pending {
    map: Arc<Mutex<HashMap<u64, [usize; 2]>>>,
    client: u64,
    path: Path,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let mut m = self.map.lock();
        if let Some(c) = m.get_mut(&self.client) {
            c[self.path as usize] -= 1;
            if c == &[0, 0] {
                m.remove(&self.client);
            }
        }
    }
}

impl ClusterTieredRouter {
    pub fn new(server: &Arc<Shared>, cluster: ClusterRouter, tier: Arc<TieredRouter>) -> Self {
        tier.set_unlogged();
        tokio::spawn(expire_cached(server.clone()));
        ClusterTieredRouter {
            cluster,
            tier,
            pending: Default::default(),
        }
    }

    /// Registers a pipelined command on `path`, unless the client has
    /// commands pending on the other path.
    fn join(&self, client: u64, path: Path) -> Option<Pending> {
        let mut m = self.pending.lock();
        let c = m.entry(client).or_default();
        if c[1 - path as usize] > 0 {
            return None;
        }
        c[path as usize] += 1;
        Some(Pending {
            map: self.pending.clone(),
            client,
            path,
        })
    }
}

/// A follower never expires replicated keys on its own clock, but the copies
/// it cached from the upstream are its own: delete those once expired (every
/// cached copy has a TTL, at most local-ttl-max), outside the replication log.
/// On the master the ordinary sweep does this and the DEL is harmless here.
async fn expire_cached(server: Arc<Shared>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tick.tick().await;
        if !server.db.is_replica() {
            continue;
        }
        let expired = server.db.sample_expired(crate::engine::SHARDS / 4);
        if !expired.is_empty() {
            server.db.apply_as(
                Origin::Cache,
                Mutation::in_databases(expired, |key| Mutation::Del { key }),
            );
        }
    }
}

/// Wraps a deferred reply: once it is in, drops the keys a forwarded write
/// named from this node's cache (the master wrote them upstream) and gives up
/// the command's place on its pipeline path.
fn settle(
    reply: DeferredReply,
    drop_local: Option<(Arc<TieredRouter>, Dropped)>,
    pending: Option<Pending>,
) -> DeferredReply {
    Box::pin(async move {
        let reply = reply.await;
        if let Some((tier, touched)) = drop_local {
            tier.drop_local(&touched);
        }
        drop(pending);
        reply
    })
}

impl Router for ClusterTieredRouter {
    fn route(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        // What a forwarded write or transaction may have changed upstream
        // (before routing: a SELECT in the transaction moves the client).
        let mut touched = Dropped::default();
        if cmd.name == "exec" {
            if let Some(queue) = &client.multi {
                let databases = server.db.databases();
                touched = transaction_effects(queue, client.db, databases).0;
            }
        } else if cmd.has(flags::WRITE) {
            touched = Dropped::of(cmd, args, client.db);
        }
        if let Some(forwarded) = self.cluster.route(server, client, cmd, args) {
            return Some(settle(forwarded, Some((self.tier.clone(), touched)), None));
        }
        if cmd.name == "publish" {
            // The master: the tier publishes here and upstream; the stream
            // carries the message to the followers' subscribers.
            let mut ks = server.db.lock_indices(&[]);
            ks.log_only(Mutation::Publish {
                channel: Bytes::copy_from_slice(&args[1]),
                payload: Bytes::copy_from_slice(&args[2]),
                shard: false,
            });
        }
        self.tier.route(server, client, cmd, args)
    }

    fn pipelines(&self) -> bool {
        true
    }

    fn route_pipelined(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        if self.cluster.forwards(cmd) {
            if !self.cluster.group_commits(cmd) {
                // WAIT and blocking commands: a call of their own (`route`).
                return None;
            }
            let pending = self.join(client.id, Path::Cluster)?;
            let touched = Dropped::of(cmd, args, client.db);
            let forwarded = self.cluster.route_pipelined(server, client, cmd, args)?;
            return Some(settle(
                forwarded,
                Some((self.tier.clone(), touched)),
                Some(pending),
            ));
        }
        if cmd.name == "publish" {
            // The master logs it for the followers in `route`.
            return None;
        }
        let pending = self.join(client.id, Path::Tier)?;
        let reply = self.tier.route_pipelined(server, client, cmd, args)?;
        Some(settle(reply, None, Some(pending)))
    }

    fn route_unknown(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        self.tier.route_unknown(server, client, args)
    }

    fn check_locked(
        &self,
        server: &Arc<Shared>,
        client: &ClientState,
        ks: &mut Keys<'_>,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        self.tier.check_locked(server, client, ks, cmd, args)
    }

    fn disconnect(&self, client: &ClientState) {
        self.pending.lock().remove(&client.id);
        self.cluster.disconnect(client);
        self.tier.disconnect(client);
    }

    fn transaction_aborted(&self, client: &ClientState) {
        self.tier.transaction_aborted(client);
    }

    fn info(&self, want: &dyn Fn(&str) -> bool, out: &mut String) {
        self.tier.info(want, out);
    }

    fn info_replication(&self) -> Option<String> {
        self.cluster.info_replication()
    }
}
