//! The operations port (`--metrics-port`): `/metrics` in Prometheus text,
//! `/healthz` (the process answers) and `/readyz` (it serves clients and, in
//! cluster mode, knows its master and holds a complete keyspace), over
//! HTTP/1 with `axum`.
//!
//! Nothing here counts: a scrape reads the counters INFO reads
//! ([`collect`]), so the command path pays nothing for the endpoint. The
//! upstream's state is a metric, never readiness: in degraded mode a node
//! still serves its hits, and one upstream blip must not take every
//! sidecar out of its Service.

mod collect;
mod info_text;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::registry::Registry;

use crate::commands::Shared;

/// A readiness check installed from above (cluster mode): `Err` says why
/// the node is not ready.
pub type ReadinessCheck = Box<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What `/readyz` decides on.
#[derive(Default)]
pub struct Probes {
    /// The client port's accept loop runs (cleared when shutdown begins).
    serving: AtomicBool,
    /// Cluster mode's condition (none in standalone and tiered modes).
    check: OnceLock<ReadinessCheck>,
}

impl Probes {
    /// Marks the client port as served (true) or shutting down (false).
    pub fn set_serving(&self, on: bool) {
        self.serving.store(on, Ordering::Release);
    }

    /// Installs the cluster's readiness condition (once).
    pub fn set_check(&self, check: ReadinessCheck) {
        let _ = self.check.set(check);
    }

    /// Ok when ready, else why not.
    pub fn ready(&self) -> Result<(), String> {
        if !self.serving.load(Ordering::Acquire) {
            return Err("not serving clients".into());
        }
        match self.check.get() {
            Some(check) => check(),
            None => Ok(()),
        }
    }
}

struct Endpoint {
    registry: Registry,
    probes: Arc<Probes>,
}

/// Binds `addr` and serves the endpoints in a task of their own; returns
/// the bound address (port 0 resolves here).
///
/// Requests are served as `axum::serve` does, with no connection limit of
/// jcache's own: bind the port to an address only the scraper and the
/// kubelet reach.
pub async fn serve(
    shared: Arc<Shared>,
    probes: Arc<Probes>,
    addr: (&str, u16),
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let mut registry = Registry::with_prefix("jcache");
    registry.register_collector(Box::new(collect::Scrape::new(shared)));
    let endpoint = Arc::new(Endpoint { registry, probes });
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(endpoint);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics port stopped");
        }
    });
    tracing::info!(addr = %local, "metrics port listening");
    Ok(local)
}

async fn metrics(State(e): State<Arc<Endpoint>>) -> impl IntoResponse {
    let mut body = String::new();
    match prometheus_client::encoding::prometheus_text::encode(&mut body, &e.registry) {
        Ok(()) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            body,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "cannot encode the metrics\n".to_string(),
        ),
    }
}

async fn readyz(State(e): State<Arc<Endpoint>>) -> impl IntoResponse {
    match e.probes.ready() {
        Ok(()) => (StatusCode::OK, "ready\n".to_string()),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
    }
}
