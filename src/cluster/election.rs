//! etcd session: lease (kept alive, and judged by this node's own clock),
//! membership registration and watch, and the v3 election (campaign,
//! observe, resign on shutdown).
//!
//! Keys: `/<name>/nodes/<node-id>` -> `grpc-addr client-addr` under the lease;
//! election name `/<name>/election`, campaign value `node-id\ngrpc\naddr`.
//! The epoch of a term is the create revision of the winning campaign key.
//!
//! Campaign eligibility: a node campaigns only once it completed a sync with
//! a master, or when there is no leader at all (cluster start). A fresh node
//! that joins a running cluster thus cannot win an election with an empty
//! keyspace while synced followers exist.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, LeaderKey, PutOptions, ResignOptions,
    WatchOptions,
};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{Cluster, Leader};

fn e2s(e: etcd_client::Error) -> String {
    e.to_string()
}

/// Runs etcd sessions until shutdown; every session end fences this node.
pub async fn run(c: Arc<Cluster>, mut resign_rx: mpsc::Receiver<oneshot::Sender<()>>) {
    loop {
        let r = session(&c, &mut resign_rx).await;
        c.step_down("etcd session ended");
        c.clear_lease();
        match r {
            Ok(()) => return,
            Err(e) => warn!(error = %e, "etcd session ended; retrying"),
        }
        if c.is_shutdown() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Most times in a row a node with an incomplete keyspace hands a won
/// election to another candidate.
const MAX_YIELDS: u32 = 2;

async fn session(
    c: &Arc<Cluster>,
    resign_rx: &mut mpsc::Receiver<oneshot::Sender<()>>,
) -> Result<(), String> {
    let ttl = c.cfg.lease_ttl;
    // No request timeout: it would also abort a campaign waiting its turn.
    // HTTP/2 pings no more often than every 10 s: etcd (grpc-go) drops a
    // connection that pings more often than its --grpc-keepalive-min-time
    // (5 s by default) without data in between ("too_many_pings"), which
    // ended sessions after a pause. The lease keep-alives below already
    // detect a dead connection within the TTL.
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(10), ttl);
    let client = tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(c.cfg.etcd.clone(), Some(opts)),
    )
    .await
    .map_err(|_| "etcd connect timed out".to_string())?
    .map_err(e2s)?;
    fn short<F: std::future::IntoFuture>(
        ttl: Duration,
        f: F,
    ) -> tokio::time::Timeout<F::IntoFuture> {
        tokio::time::timeout(ttl, f)
    }
    let ttl_secs = ttl.as_secs_f64().ceil().max(1.0) as i64;
    let mut lease_client = client.lease_client();
    let sent = Instant::now();
    let grant = short(ttl, lease_client.grant(ttl_secs, None))
        .await
        .map_err(|_| "lease grant timed out".to_string())?
        .map_err(e2s)?;
    let lease = grant.id();
    c.extend_lease(sent);
    let (mut keeper, mut ka_stream) = lease_client.keep_alive(lease).await.map_err(e2s)?;
    let prefix = format!("/{}/nodes/", c.cfg.name);
    let mut kv = client.kv_client();
    short(
        ttl,
        kv.put(
            format!("{prefix}{}", c.node_id),
            format!("{} {}", c.grpc_addr, c.client_addr),
            Some(PutOptions::new().with_lease(lease)),
        ),
    )
    .await
    .map_err(|_| "register timed out".to_string())?
    .map_err(e2s)?;
    let name = format!("/{}/election", c.cfg.name);
    info!(lease, ttl_secs, "etcd session started");
    let leader_key: Mutex<Option<LeaderKey>> = Mutex::new(None);

    let keepalive = async {
        let mut tick = tokio::time::interval(ttl / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut pending: VecDeque<Instant> = VecDeque::new();
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if !c.lease_valid() {
                        return Err::<(), String>("lease expired (local clock)".into());
                    }
                    if pending.len() > 16 {
                        return Err("etcd does not answer keep-alives".into());
                    }
                    pending.push_back(Instant::now());
                    keeper.keep_alive().await.map_err(e2s)?;
                }
                m = ka_stream.message() => match m.map_err(e2s)? {
                    Some(r) => {
                        let sent = pending.pop_front();
                        if r.ttl() <= 0 {
                            return Err("lease expired at etcd".into());
                        }
                        if let Some(s) = sent {
                            c.extend_lease(s);
                        }
                    }
                    None => return Err("keep-alive stream ended".into()),
                },
            }
        }
    };

    let members = async {
        let mut kv = client.kv_client();
        let resp = kv
            .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(e2s)?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        {
            let mut m = c.members.lock();
            m.clear();
            for kv in resp.kvs() {
                let id = String::from_utf8_lossy(&kv.key()[prefix.len()..]).to_string();
                m.insert(id, String::from_utf8_lossy(kv.value()).to_string());
            }
        }
        let mut wc = client.watch_client();
        let mut stream = wc
            .watch(
                prefix.clone(),
                Some(
                    WatchOptions::new()
                        .with_prefix()
                        .with_start_revision(rev + 1),
                ),
            )
            .await
            .map_err(e2s)?;
        while let Some(resp) = stream.message().await.map_err(e2s)? {
            let mut m = c.members.lock();
            for ev in resp.events() {
                let Some(kv) = ev.kv() else { continue };
                let id = String::from_utf8_lossy(&kv.key()[prefix.len().min(kv.key().len())..])
                    .to_string();
                match ev.event_type() {
                    EventType::Put => {
                        m.insert(id, String::from_utf8_lossy(kv.value()).to_string());
                    }
                    EventType::Delete => {
                        m.remove(&id);
                    }
                }
            }
        }
        Err::<(), String>("membership watch ended".into())
    };

    let observe = async {
        let mut ec = client.election_client();
        let mut stream = ec.observe(name.clone()).await.map_err(e2s)?;
        while let Some(resp) = stream.message().await.map_err(e2s)? {
            if let Some(kv) = resp.kv() {
                let epoch = kv.create_revision() as u64;
                if let Some(l) = Leader::parse(kv.value(), epoch) {
                    info!(leader = %l.node_id, epoch, "leader observed");
                    c.set_leader(Some(l));
                }
            }
        }
        Err::<(), String>("observe stream ended".into())
    };

    let campaign = async {
        let mut ec = client.election_client();
        let mut kv = client.kv_client();
        let mut yielded = 0;
        let mut last_yield = None;
        let key = loop {
            loop {
                if c.synced_once.load(Ordering::Acquire) {
                    break;
                }
                let no_leader = match tokio::time::timeout(ttl, ec.leader(name.clone())).await {
                    Ok(Ok(r)) => r.kv().is_none(),
                    Ok(Err(_)) => true, // "election: no leader"
                    Err(_) => false,
                };
                if no_leader {
                    break;
                }
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), c.synced_notify.notified()).await;
            }
            let value = Leader::value(&c.node_id, &c.grpc_addr, &c.client_addr);
            let resp = ec.campaign(name.clone(), value, lease).await.map_err(e2s)?;
            let Some(key) = resp.leader().cloned() else {
                return Err::<(), String>("campaign returned no leader key".into());
            };
            // A node whose keyspace is incomplete (a full sync cut short by the
            // old master's death) must not become the source of truth while a
            // complete one waits: it hands the term to the next candidate and
            // campaigns again behind it (at most twice in a row, so that two
            // incomplete nodes do not pass it back and forth forever).
            if last_yield.is_some_and(|t: Instant| t.elapsed() > ttl * 10) {
                yielded = 0;
            }
            if yielded < MAX_YIELDS && c.log.diverged.load(Ordering::Acquire) {
                let others = short(
                    ttl,
                    kv.get(
                        format!("{name}/"),
                        Some(GetOptions::new().with_prefix().with_keys_only()),
                    ),
                )
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|r| r.kvs().iter().filter(|x| x.key() != key.key()).count())
                .unwrap_or(0);
                if others > 0 {
                    warn!(others, "won the election with an incomplete keyspace; handing it to another candidate");
                    let _ =
                        short(ttl, ec.resign(Some(ResignOptions::new().with_leader(key)))).await;
                    c.stats.elections_yielded.fetch_add(1, Ordering::Relaxed);
                    yielded += 1;
                    last_yield = Some(Instant::now());
                    continue;
                }
            }
            break key;
        };
        let epoch = key.rev() as u64;
        *leader_key.lock() = Some(key);
        if !c.lease_valid() {
            return Err("won the election with an expired lease".into());
        }
        c.become_master(epoch).await;
        std::future::pending::<()>().await;
        Ok(())
    };

    let r = tokio::select! {
        r = keepalive => r,
        r = members => r,
        r = observe => r,
        r = campaign => r,
        done = resign_rx.recv() => {
            let key = leader_key.lock().take();
            let mut ec = client.election_client();
            if let Some(key) = key {
                let _ = short(ttl, ec.resign(Some(ResignOptions::new().with_leader(key)))).await;
            }
            let mut lc = client.lease_client();
            let _ = short(ttl, lc.revoke(lease)).await;
            info!("resigned and revoked the lease");
            if let Some(done) = done {
                let _ = done.send(());
            }
            return Ok(());
        }
    };
    // Best effort: free the lease so the next election need not wait for it.
    let mut lc = client.lease_client();
    let _ = tokio::time::timeout(Duration::from_millis(500), lc.revoke(lease)).await;
    r.and(Err("session ended".into()))
}
