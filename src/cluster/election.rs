//! etcd session: lease (kept alive, and judged by this node's own clock),
//! membership registration and watch, and the v3 election (campaign,
//! observe, resign on shutdown).
//!
//! Keys: `/<name>/nodes/<node-id>` -> `grpc-addr client-addr` under the lease;
//! election name `/<name>/election`, campaign value `node-id\ngrpc\naddr`.
//! The epoch of a term is the create revision of the winning campaign key.
//!
//! This file only talks to etcd: every decision (lease validity, when to
//! campaign, yielding, stale leaders, stepping down, what to resign) is
//! [`machine::ElectionCore`]'s. The driver turns what etcd and the node say
//! into its events and performs the actions it returns. At most one
//! campaign step (probe, pause, campaign, rival count, yield, becoming
//! master) is in flight; its result is the next event.

mod machine;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{
    Client, ConnectOptions, EventType, GetOptions, LeaderKey, LeaseKeepAliveStream, LeaseKeeper,
    PutOptions, ResignOptions, WatchOptions,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use super::{Cluster, Leader};
use machine::{Action, ElectionCore, Event, MemberChange, Probe};

type Core = ElectionCore<LeaderKey>;
type CoreEvent = Event<LeaderKey>;
type CoreAction = Action<LeaderKey>;
/// A campaign step in flight; resolves to the event that reports it.
type Step<'a> = Pin<Box<dyn Future<Output = Result<CoreEvent, String>> + Send + 'a>>;
type ResignRx = mpsc::Receiver<oneshot::Sender<()>>;

fn e2s(e: etcd_client::Error) -> String {
    e.to_string()
}

/// A request to etcd bounded by the lease TTL.
fn short<F: std::future::IntoFuture>(ttl: Duration, f: F) -> tokio::time::Timeout<F::IntoFuture> {
    tokio::time::timeout(ttl, f)
}

/// Runs etcd sessions until shutdown; every session end fences this node.
pub async fn run(c: Arc<Cluster>, mut resign_rx: ResignRx) {
    let mut core = Core::new(c.node_id.clone(), c.cfg.lease_ttl);
    loop {
        let r = session(&c, &mut core, &mut resign_rx).await;
        let ended = Event::SessionEnded {
            clean: r.is_ok(),
            shutting_down: c.is_shutdown(),
        };
        for action in core.handle(Instant::now(), ended) {
            match action {
                Action::Retry { after } => {
                    if let Err(e) = &r {
                        warn!(error = %e, "etcd session ended; retrying");
                    }
                    tokio::time::sleep(after).await;
                }
                Action::Stop => {
                    if let Err(e) = &r {
                        warn!(error = %e, "etcd session ended; retrying");
                    }
                    return;
                }
                other => apply(&c, other),
            }
        }
    }
}

/// Performs an action that needs no etcd request.
fn apply(c: &Cluster, action: CoreAction) {
    match action {
        Action::ExtendLease { until } => c.extend_lease(until),
        Action::ClearLease => c.clear_lease(),
        Action::SetMembers(members) => *c.members.lock() = members,
        Action::PublishLeader(leader) => c.publish_leader(leader),
        Action::StepDown(why) => c.step_down(why),
        other => warn!(action = ?other, "election: action out of place, ignored"),
    }
}

/// One session's etcd connection and lease.
struct Etcd {
    client: Client,
    lease: i64,
    ttl: Duration,
    /// `/<name>/nodes/`
    nodes: String,
    /// `/<name>/election`
    election: String,
}

/// How a session ended for shutdown: the campaign key to resign, and who
/// waits for the hand-over.
struct Shutdown {
    resign: Option<LeaderKey>,
    done: Option<oneshot::Sender<()>>,
}

async fn session(
    c: &Arc<Cluster>,
    core: &mut Core,
    resign_rx: &mut ResignRx,
) -> Result<(), String> {
    let ttl = c.cfg.lease_ttl;
    let client = connect(c).await?;
    let ttl_secs = ttl.as_secs_f64().ceil().max(1.0) as i64;
    let mut lease_client = client.lease_client();
    let sent = Instant::now();
    let grant = short(ttl, lease_client.grant(ttl_secs, None))
        .await
        .map_err(|_| "lease grant timed out".to_string())?
        .map_err(e2s)?;
    let etcd = Etcd {
        client,
        lease: grant.id(),
        ttl,
        nodes: format!("/{}/nodes/", c.cfg.name),
        election: format!("/{}/election", c.cfg.name),
    };
    for action in core.handle(Instant::now(), Event::LeaseGranted { sent }) {
        apply(c, action);
    }
    let (keeper, ka_stream) = lease_client.keep_alive(etcd.lease).await.map_err(e2s)?;
    etcd.register(c).await?;
    info!(lease = etcd.lease, ttl_secs, "etcd session started");

    let (tx, rx) = mpsc::channel(64);
    let end = tokio::select! {
        e = watch_members(&etcd, tx.clone()) => Err(e),
        e = observe_leader(&etcd, tx.clone()) => Err(e),
        _ = notice_synced(c, tx) => Err("sync watcher ended".to_string()),
        r = drive(c, core, &etcd, keeper, ka_stream, rx, resign_rx) => r,
    };
    match end {
        Ok(shutdown) => {
            let mut ec = etcd.client.election_client();
            if let Some(key) = shutdown.resign {
                let _ = short(ttl, ec.resign(Some(ResignOptions::new().with_leader(key)))).await;
            }
            let mut lc = etcd.client.lease_client();
            let _ = short(ttl, lc.revoke(etcd.lease)).await;
            info!("resigned and revoked the lease");
            if let Some(done) = shutdown.done {
                let _ = done.send(());
            }
            Ok(())
        }
        Err(e) => {
            // Best effort: free the lease so the next election need not wait for it.
            let mut lc = etcd.client.lease_client();
            let _ = tokio::time::timeout(Duration::from_millis(500), lc.revoke(etcd.lease)).await;
            Err(e)
        }
    }
}

async fn connect(c: &Cluster) -> Result<Client, String> {
    // No request timeout: it would also abort a campaign waiting its turn.
    // HTTP/2 pings no more often than every 10 s: etcd (grpc-go) drops a
    // connection that pings more often than its --grpc-keepalive-min-time
    // (5 s by default) without data in between ("too_many_pings"), which
    // ended sessions after a pause. The lease keep-alives already detect a
    // dead connection within the TTL.
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(10), c.cfg.lease_ttl);
    tokio::time::timeout(
        Duration::from_secs(5),
        Client::connect(c.cfg.etcd.clone(), Some(opts)),
    )
    .await
    .map_err(|_| "etcd connect timed out".to_string())?
    .map_err(e2s)
}

/// Feeds the core until it ends the session: the keep-alive timer and
/// answers, the other feeds' events, the campaign step's result, shutdown.
async fn drive(
    c: &Arc<Cluster>,
    core: &mut Core,
    etcd: &Etcd,
    mut keeper: LeaseKeeper,
    mut ka_stream: LeaseKeepAliveStream,
    mut events: mpsc::Receiver<CoreEvent>,
    resign_rx: &mut ResignRx,
) -> Result<Shutdown, String> {
    let mut tick = tokio::time::interval(etcd.ttl / 3);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut step: Option<Step<'_>> = None;
    let mut done = None;
    let mut event = Event::Registered {
        synced: c.synced_once.load(Ordering::Acquire),
    };
    loop {
        for action in core.handle(Instant::now(), event) {
            match action {
                Action::SendKeepAlive => keeper.keep_alive().await.map_err(e2s)?,
                Action::Shutdown { resign } => return Ok(Shutdown { resign, done }),
                Action::Fail(why) => return Err(why),
                Action::ProbeLeader
                | Action::Pause(_)
                | Action::Campaign
                | Action::CountRivals { .. }
                | Action::Yield { .. }
                | Action::BecomeMaster { .. } => step = Some(etcd.step(c, action)),
                other => apply(c, other),
            }
        }
        event = tokio::select! {
            _ = tick.tick() => Event::Tick,
            m = ka_stream.message() => match m.map_err(e2s)? {
                Some(r) => Event::KeepAliveAnswered { ttl: r.ttl() },
                None => return Err("keep-alive stream ended".into()),
            },
            Some(e) = events.recv() => e,
            r = async { step.as_mut().expect("guarded").await }, if step.is_some() => {
                step = None;
                r?
            }
            d = resign_rx.recv() => {
                done = d;
                Event::ShutdownRequested
            }
        };
    }
}

impl Etcd {
    /// Registers this node under the lease.
    async fn register(&self, c: &Cluster) -> Result<(), String> {
        let mut kv = self.client.kv_client();
        let put = kv.put(
            format!("{}{}", self.nodes, c.node_id),
            format!("{} {}", c.grpc_addr, c.client_addr),
            Some(PutOptions::new().with_lease(self.lease)),
        );
        short(self.ttl, put)
            .await
            .map_err(|_| "register timed out".to_string())?
            .map_err(e2s)?;
        Ok(())
    }

    /// Starts the campaign step `action` asks for.
    fn step<'a>(&'a self, c: &'a Cluster, action: CoreAction) -> Step<'a> {
        let mut ec = self.client.election_client();
        let name = self.election.clone();
        let ttl = self.ttl;
        match action {
            Action::ProbeLeader => Box::pin(async move {
                let probe = match short(ttl, ec.leader(name)).await {
                    Ok(Ok(r)) if r.kv().is_none() => Probe::NoLeader,
                    Ok(Ok(_)) => Probe::Leader,
                    Ok(Err(_)) => Probe::NoLeader, // "election: no leader"
                    Err(_) => Probe::Unknown,
                };
                Ok(Event::LeaderProbed(probe))
            }),
            Action::Pause(d) => Box::pin(async move {
                tokio::time::sleep(d).await;
                Ok(Event::PauseOver)
            }),
            Action::Campaign => Box::pin(async move {
                let value = Leader::value(&c.node_id, &c.grpc_addr, &c.client_addr);
                let resp = ec.campaign(name, value, self.lease).await.map_err(e2s)?;
                let Some(key) = resp.leader().cloned() else {
                    return Err("campaign returned no leader key".into());
                };
                Ok(Event::CampaignWon {
                    rev: key.rev() as u64,
                    key,
                    diverged: c.log.diverged.load(Ordering::Acquire),
                })
            }),
            Action::CountRivals { key } => Box::pin(async move {
                let mut kv = self.client.kv_client();
                let keys = GetOptions::new().with_prefix().with_keys_only();
                let others = short(ttl, kv.get(format!("{name}/"), Some(keys)))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .map(|r| r.kvs().iter().filter(|x| x.key() != key.key()).count())
                    .unwrap_or(0);
                Ok(Event::RivalsCounted(others))
            }),
            Action::Yield { key } => Box::pin(async move {
                let _ = short(ttl, ec.resign(Some(ResignOptions::new().with_leader(key)))).await;
                c.stats.elections_yielded.fetch_add(1, Ordering::Relaxed);
                Ok(Event::Yielded)
            }),
            Action::BecomeMaster { epoch } => Box::pin(async move {
                c.become_master(epoch).await;
                Ok(Event::BecameMaster)
            }),
            other => Box::pin(async move { Err(format!("election: {other:?} is not a step")) }),
        }
    }
}

/// Feeds the membership listing, then its changes. Returns why it ended.
async fn watch_members(etcd: &Etcd, events: mpsc::Sender<CoreEvent>) -> String {
    let prefix = &etcd.nodes;
    let id_of =
        |key: &[u8]| String::from_utf8_lossy(&key[prefix.len().min(key.len())..]).to_string();
    let r: Result<(), String> = async {
        let mut kv = etcd.client.kv_client();
        let resp = kv
            .get(prefix.clone(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(e2s)?;
        let rev = resp.header().map(|h| h.revision()).unwrap_or(0);
        let listed = resp
            .kvs()
            .iter()
            .map(|kv| {
                (
                    id_of(kv.key()),
                    String::from_utf8_lossy(kv.value()).to_string(),
                )
            })
            .collect();
        let _ = events.send(Event::MembersListed(listed)).await;
        let mut wc = etcd.client.watch_client();
        let opts = WatchOptions::new()
            .with_prefix()
            .with_start_revision(rev + 1);
        let mut stream = wc.watch(prefix.clone(), Some(opts)).await.map_err(e2s)?;
        while let Some(resp) = stream.message().await.map_err(e2s)? {
            let changes = resp
                .events()
                .iter()
                .filter_map(|ev| {
                    let kv = ev.kv()?;
                    let id = id_of(kv.key());
                    Some(match ev.event_type() {
                        EventType::Put => MemberChange::Put {
                            id,
                            addr: String::from_utf8_lossy(kv.value()).to_string(),
                        },
                        EventType::Delete => MemberChange::Deleted { id },
                    })
                })
                .collect();
            let _ = events.send(Event::MembersChanged(changes)).await;
        }
        Ok(())
    }
    .await;
    r.err()
        .unwrap_or_else(|| "membership watch ended".to_string())
}

/// Feeds every leader the election announces. Returns why it ended.
async fn observe_leader(etcd: &Etcd, events: mpsc::Sender<CoreEvent>) -> String {
    let r: Result<(), String> = async {
        let mut ec = etcd.client.election_client();
        let mut stream = ec.observe(etcd.election.clone()).await.map_err(e2s)?;
        while let Some(resp) = stream.message().await.map_err(e2s)? {
            if let Some(kv) = resp.kv() {
                let value = kv.value().to_vec();
                let rev = kv.create_revision() as u64;
                let _ = events.send(Event::LeaderObserved { value, rev }).await;
            }
        }
        Ok(())
    }
    .await;
    r.err()
        .unwrap_or_else(|| "observe stream ended".to_string())
}

/// Feeds `Synced` once this node completed a sync with a master.
async fn notice_synced(c: &Cluster, events: mpsc::Sender<CoreEvent>) {
    loop {
        let notified = c.synced_notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if c.synced_once.load(Ordering::Acquire) {
            let _ = events.send(Event::Synced).await;
            return std::future::pending().await;
        }
        notified.await;
    }
}
