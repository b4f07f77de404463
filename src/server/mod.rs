//! The TCP server: accept loop, connection limits, graceful shutdown, and the
//! state every connection shares ([`Shared`]).

mod client;
mod connection;
pub mod hooks;
pub mod pubsub;
pub mod runtime;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::{info, warn};

pub use client::{ClientInfo, ClientMeta, ClientRegistry, ClientState};
pub use runtime::RuntimeConfig;

use crate::commands::blocking::BlockingRegistry;
use crate::commands::watch::WatchRegistry;
use crate::commands::Router;
use crate::config::Config;
use crate::engine::Db;
use hooks::Hooks;
use pubsub::PubSub;

/// Counters for INFO stats.
#[derive(Default)]
pub struct ServerStats {
    pub commands: crate::util::counter::Counter,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub errors: AtomicU64,
    pub net_input_bytes: AtomicU64,
    pub net_output_bytes: AtomicU64,
    pub cmd_usec: AtomicU64,
}

impl ServerStats {
    pub fn record_latency(&self, d: Duration) {
        self.cmd_usec
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// State shared by every connection.
pub struct Shared {
    pub db: Db,
    pub config: RuntimeConfig,
    pub clients: ClientRegistry,
    pub blocking: BlockingRegistry,
    pub watches: Arc<WatchRegistry>,
    pub pubsub: Arc<PubSub>,
    pub hooks: Arc<Hooks>,
    pub stats: ServerStats,
    pub started: Instant,
    /// The address actually bound (port 0 resolves here).
    pub local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    pub connected: AtomicUsize,
    /// Where commands go when not to the local engine (tiers, cluster); set once.
    pub router: OnceLock<Arc<dyn Router>>,
}

impl Shared {
    pub fn requirepass_set(&self) -> bool {
        self.config.requirepass_set()
    }

    /// Asks the server to shut down gracefully (SHUTDOWN, signals).
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
    }

    pub fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown_tx.subscribe()
    }
}

/// A bound, not yet running server. Binding first lets tests use port 0 and
/// learn the address before serving.
pub struct Server {
    listener: TcpListener,
    shared: Arc<Shared>,
}

impl Server {
    pub async fn bind(config: &Config) -> std::io::Result<Server> {
        let listener = TcpListener::bind((config.bind.as_str(), config.port)).await?;
        let local_addr = listener.local_addr()?;
        let (shutdown_tx, _) = watch::channel(false);
        let db = Db::new();
        db.maxmemory.store(config.maxmemory, Ordering::Relaxed);
        db.set_policy(config.maxmemory_policy);
        let watches = Arc::new(WatchRegistry::default());
        let pubsub = Arc::new(PubSub::default());
        let hooks = Arc::new(Hooks {
            watches: watches.clone(),
            pubsub: pubsub.clone(),
            notify_flags: AtomicU32::new(0),
            replication: OnceLock::new(),
        });
        db.set_observer(hooks.clone());
        let shared = Arc::new(Shared {
            db,
            config: RuntimeConfig::new(config, local_addr),
            clients: ClientRegistry::default(),
            blocking: BlockingRegistry::default(),
            watches,
            pubsub,
            hooks,
            stats: ServerStats::default(),
            started: Instant::now(),
            local_addr,
            shutdown_tx,
            connected: AtomicUsize::new(0),
            router: OnceLock::new(),
        });
        Ok(Server { listener, shared })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Serves until `shutdown` resolves or a client sends SHUTDOWN; then stops
    /// accepting, lets connections finish their in-flight replies, and returns.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server { listener, shared } = self;
        info!(addr = %shared.local_addr, "jcache listening");
        let sweeper = tokio::spawn(expire_loop(shared.clone()));
        let mut stop = shared.shutdown_requested();
        let mut conns = JoinSet::new();
        tokio::pin!(shutdown);
        let mut backoff = Duration::from_millis(1);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = stop.changed() => break,
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
                accepted = listener.accept() => match accepted {
                    Ok((socket, addr)) => {
                        backoff = Duration::from_millis(1);
                        shared.stats.connections_received.fetch_add(1, Ordering::Relaxed);
                        let shared = shared.clone();
                        conns.spawn(connection::serve(shared, socket, addr));
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                    }
                },
            }
        }
        info!("shutting down: no longer accepting connections");
        drop(listener);
        shared.trigger_shutdown();
        sweeper.abort();
        // Connections finish the replies they are writing, then close.
        let drain = async { while conns.join_next().await.is_some() {} };
        if tokio::time::timeout(Duration::from_secs(5), drain)
            .await
            .is_err()
        {
            warn!("connections did not close within 5s; aborting them");
            conns.abort_all();
        }
        info!("shutdown complete");
    }
}

/// Whether a client counts as local for protected mode and
/// `enable-debug-command local`: exactly 127.0.0.1 or ::1, as Redis 7.0
/// compares the peer's address text (other 127.x addresses are not local).
pub fn is_local_client(addr: SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(v4) => v4 == std::net::Ipv4Addr::LOCALHOST,
        std::net::IpAddr::V6(v6) => {
            v6 == std::net::Ipv6Addr::LOCALHOST
                || v6.to_ipv4_mapped() == Some(std::net::Ipv4Addr::LOCALHOST)
        }
    }
}

/// The active expiry sweep: ten times a second, sample keys with a TTL.
async fn expire_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        crate::engine::evict::tick_clock();
        shared.db.active_expire_cycle(crate::engine::SHARDS / 4);
    }
}
