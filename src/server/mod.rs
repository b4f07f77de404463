//! The TCP server: accept loop, connection limits, graceful shutdown. The
//! state connections share lives below, in [`crate::state`].

mod connection;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{info, warn};

use crate::commands::Shared;
use crate::config::Config;

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
        let shared = Arc::new(Shared::new(config, local_addr));
        crate::commands::stats::calibrate();
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

/// The active expiry sweep: ten times a second, sample keys with a TTL;
/// its time feeds the latency monitor (`expire-cycle`). The instantaneous
/// metrics are sampled on the same tick.
async fn expire_loop(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        crate::engine::evict::tick_clock();
        let t = std::time::Instant::now();
        shared.db.active_expire_cycle(crate::engine::SHARDS / 4);
        let ms = t.elapsed().as_millis() as u64;
        shared
            .stats
            .expire_cycle_ms
            .fetch_add(ms, Ordering::Relaxed);
        shared.latency.add_if_needed("expire-cycle", ms);
        shared.stats.track_instantaneous();
    }
}
