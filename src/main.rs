//! The `jcache` binary: parse the command line, load and validate the
//! configuration, set up logging, serve until SIGINT/SIGTERM or SHUTDOWN.

use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use jcache::config::{Cli, Config, LogFormat, SettingSource};
use jcache::metrics::Probes;
use jcache::server::Server;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc options: a background thread returns freed pages to the OS after
/// a second, so RSS follows the keyspace down after deletes, evictions and
/// table growth instead of keeping the high-water mark.
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: &[u8; 60] =
    b"background_thread:true,dirty_decay_ms:1000,muzzy_decay_ms:0\0";

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jcache: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if cli.check_config {
        println!("configuration OK");
        return std::process::ExitCode::SUCCESS;
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init(),
        LogFormat::Text => tracing_subscriber::fmt().with_env_filter(filter).init(),
    }
    if config.maxmemory_source == SettingSource::Cgroup {
        tracing::info!(
            maxmemory = config.maxmemory,
            policy = config.maxmemory_policy.name(),
            "maxmemory set to {}% of the cgroup memory limit",
            jcache::config::CGROUP_MEMORY_PERCENT
        );
    }
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let threads = config.worker_threads();
    builder.worker_threads(threads);
    tracing::info!(threads, "worker threads");
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    let runtime = builder.enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async {
        // Handlers first: a SIGTERM that arrives once the port answers must
        // be ours, not the default action (tokio registers a handler only
        // when the signal stream is created).
        let signals = Signals::register();
        let server = match Server::bind(&config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, bind = %config.bind, port = config.port, "cannot listen");
                return std::process::ExitCode::FAILURE;
            }
        };
        let probes = Arc::new(Probes::default());
        if let Some((host, port)) = config.metrics_addr() {
            let shared = server.shared();
            if let Err(e) = jcache::metrics::serve(shared, probes.clone(), (&host, port)).await {
                tracing::error!(error = %e, bind = %host, port, "cannot listen on the metrics port");
                return std::process::ExitCode::FAILURE;
            }
        }
        let cluster = match &config.cluster {
            Some(cc) => match jcache::cluster::start(
                server.shared(),
                cc.clone(),
                jcache::tier::build(&server.shared(), &config),
            )
            .await
            {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::error!(error = %e, port = cc.port, "cannot start cluster mode");
                    return std::process::ExitCode::FAILURE;
                }
            },
            None => {
                jcache::tier::install(&server.shared(), &config);
                None
            }
        };
        if let Some(h) = &cluster {
            let c = h.cluster.clone();
            probes.set_check(Box::new(move || c.readiness().map_err(str::to_string)));
        }
        probes.set_serving(true);
        server
            .run(async {
                signals.received().await;
                // Out of the Service before the port closes.
                probes.set_serving(false);
            })
            .await;
        probes.set_serving(false);
        if let Some(h) = cluster {
            h.shutdown().await;
        }
        std::process::ExitCode::SUCCESS
    });
    // Tasks still parked (a client stuck writing to a peer that stopped reading) must not hold the exit.
    runtime.shutdown_background();
    code
}

/// SIGINT and SIGTERM, handled from the moment they are registered.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> Signals {
        use tokio::signal::unix::{signal, SignalKind};
        Signals {
            int: signal(SignalKind::interrupt()).expect("SIGINT handler"),
            term: signal(SignalKind::terminate()).expect("SIGTERM handler"),
        }
    }

    async fn received(mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
        tracing::info!("signal received");
    }
}
