//! The state every connection shares, below both the socket layer
//! (`server/`) and the command layer (`commands/`): the keyspace, runtime
//! configuration, the client registry, Pub/Sub, the WATCH and blocking-pop
//! registries, the commit hooks, the scripting state (Lua VM, running
//! script), counters and the shutdown signal.
//!
//! Nothing here parses a command or touches a socket. The one thing of the
//! command layer that shared state holds, the router, is a type parameter:
//! `commands::Shared` is `Shared<dyn commands::Router>`.

pub mod blocking;
mod clients;
pub mod hooks;
pub mod monitor;
pub mod pause;
pub mod pubsub;
pub mod runtime;
pub mod scripting;
pub mod slowlog;
pub mod watch;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch as signal;

pub use clients::{ClientInfo, ClientMem, ClientMeta, ClientRegistry, CLIENT_OVERHEAD};
pub use runtime::RuntimeConfig;

use crate::config::{Config, SettingSource};
use crate::engine::Db;
use blocking::BlockingRegistry;
use hooks::Hooks;
use pubsub::PubSub;
use watch::WatchRegistry;

/// Counters for INFO stats.
#[derive(Default)]
pub struct ServerStats {
    pub commands: crate::util::counter::Counter,
    pub connections_received: AtomicU64,
    pub rejected_connections: AtomicU64,
    pub errors: AtomicU64,
    /// Striped (added on every read and write, from every worker).
    pub net_input_bytes: crate::util::counter::Counter,
    pub net_output_bytes: crate::util::counter::Counter,
    pub cmd_usec: AtomicU64,
    /// Socket reads and writes (`total_reads_processed`, `total_writes_processed`).
    pub reads: crate::util::counter::Counter,
    pub writes: crate::util::counter::Counter,
    /// Milliseconds spent in the active expiry sweep.
    pub expire_cycle_ms: AtomicU64,
    /// Samples of ops, input and output bytes (`instantaneous_*`).
    pub instantaneous: parking_lot::Mutex<Instantaneous>,
    /// Error replies by error code (INFO errorstats); touched only when an
    /// error is sent.
    pub errorstats: parking_lot::Mutex<std::collections::BTreeMap<Box<str>, u64>>,
}

/// Redis's instantaneous metrics: the counters sampled every 100 ms, the
/// rate averaged over the last 16 samples.
#[derive(Default)]
pub struct Instantaneous {
    last: Option<(Instant, [u64; 3])>,
    samples: [[f64; 16]; 3],
    idx: usize,
}

impl Instantaneous {
    /// Records the counters (ops, input bytes, output bytes) now.
    pub fn track(&mut self, now: Instant, values: [u64; 3]) {
        if let Some((t, prev)) = self.last {
            let ms = now.duration_since(t).as_millis().max(1) as f64;
            for k in 0..3 {
                self.samples[k][self.idx] = values[k].saturating_sub(prev[k]) as f64 * 1000.0 / ms;
            }
            self.idx = (self.idx + 1) % 16;
        }
        self.last = Some((now, values));
    }

    /// The average rate per second of counter `k`.
    pub fn rate(&self, k: usize) -> f64 {
        self.samples[k].iter().sum::<f64>() / 16.0
    }
}

/// The most error codes INFO errorstats tracks (Redis's
/// ERROR_STATS_NUMBER); errors with other codes still count in
/// `total_error_replies`.
pub const ERROR_CODES_MAX: usize = 128;

impl ServerStats {
    /// Counts one error reply, `reply` starting at its `-`: in
    /// `total_error_replies` and under its code (the first word, as Redis's
    /// afterErrorReply takes it; `ERR` when there is none within 32 bytes).
    pub fn count_error(&self, reply: &[u8]) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let body = reply.strip_prefix(b"-").unwrap_or(reply);
        let head = &body[..body.len().min(31)];
        let code = match head.iter().position(|&b| b == b' ') {
            Some(n) if reply.first() == Some(&b'-') => &body[..n],
            _ => &b"ERR"[..],
        };
        let code = String::from_utf8_lossy(code);
        let mut m = self.errorstats.lock();
        if let Some(n) = m.get_mut(code.as_ref()) {
            *n += 1;
        } else if m.len() < ERROR_CODES_MAX {
            m.insert(code.into(), 1);
        }
    }

    /// Samples the instantaneous metrics (every 100 ms).
    pub fn track_instantaneous(&self) {
        let v = [
            self.commands.get(),
            self.net_input_bytes.get(),
            self.net_output_bytes.get(),
        ];
        self.instantaneous.lock().track(Instant::now(), v);
    }

    pub fn record_latency(&self, d: Duration) {
        self.cmd_usec
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// State shared by every connection. `R` is the router type (see the
/// module comment); it is set once, after the tiers or the cluster start.
pub struct Shared<R: ?Sized + Send + Sync + 'static> {
    pub db: Db,
    pub config: RuntimeConfig,
    pub clients: ClientRegistry,
    pub blocking: BlockingRegistry,
    pub watches: Arc<WatchRegistry>,
    pub pubsub: Arc<PubSub>,
    pub hooks: Arc<Hooks>,
    pub scripting: Arc<scripting::Scripting>,
    pub stats: ServerStats,
    /// SLOWLOG.
    pub slowlog: slowlog::SlowLog,
    /// LATENCY (the latency monitor's events).
    pub latency: slowlog::LatencyMonitor,
    /// MONITOR clients.
    pub monitors: monitor::Monitors,
    /// CLIENT PAUSE.
    pub pause: pause::Pause,
    /// The most memory used so far (INFO `used_memory_peak`).
    pub memory_peak: AtomicU64,
    pub started: Instant,
    /// The address actually bound (port 0 resolves here).
    pub local_addr: SocketAddr,
    shutdown_tx: signal::Sender<bool>,
    pub connected: AtomicUsize,
    /// Where commands go when not to the local engine (tiers, cluster); set once.
    pub router: OnceLock<Arc<R>>,
    /// Where `maxmemory` and `maxmemory-policy` came from (INFO memory's
    /// `maxmemory_source`, `maxmemory_policy_source`); CONFIG SET makes
    /// them `runtime`.
    pub memory_sources: parking_lot::Mutex<[SettingSource; 2]>,
    /// Set when this node serves database 0 only: the error SELECT, MOVE,
    /// SWAPDB and COPY ... DB answer for any other database.
    pub databases_refused: OnceLock<String>,
}

impl<R: ?Sized + Send + Sync + 'static> Shared<R> {
    /// The state of a server configured by `config` and bound to `local_addr`.
    pub fn new(config: &Config, local_addr: SocketAddr) -> Shared<R> {
        let (shutdown_tx, _) = signal::channel(false);
        let db = Db::with_databases(config.databases as usize);
        db.maxmemory.store(config.maxmemory, Ordering::Relaxed);
        db.set_policy(config.maxmemory_policy);
        let watches = Arc::new(WatchRegistry::default());
        let pubsub = Arc::new(PubSub::default());
        let scripting = Arc::new(scripting::Scripting::default());
        let hooks = Arc::new(Hooks {
            watches: watches.clone(),
            pubsub: pubsub.clone(),
            scripting: scripting.clone(),
            notify_flags: AtomicU32::new(0),
            downstream: OnceLock::new(),
        });
        db.set_observer(hooks.clone());
        Shared {
            db,
            config: RuntimeConfig::new(config, local_addr),
            clients: ClientRegistry::default(),
            blocking: BlockingRegistry::default(),
            watches,
            pubsub,
            hooks,
            scripting,
            stats: ServerStats::default(),
            slowlog: slowlog::SlowLog::default(),
            latency: slowlog::LatencyMonitor::default(),
            monitors: monitor::Monitors::default(),
            pause: pause::Pause::default(),
            memory_peak: AtomicU64::new(0),
            started: Instant::now(),
            local_addr,
            shutdown_tx,
            connected: AtomicUsize::new(0),
            router: OnceLock::new(),
            memory_sources: parking_lot::Mutex::new([
                config.maxmemory_source,
                config.maxmemory_policy_source,
            ]),
            databases_refused: OnceLock::new(),
        }
    }

    pub fn requirepass_set(&self) -> bool {
        self.config.requirepass_set()
    }

    /// Asks the server to shut down gracefully (SHUTDOWN, signals).
    /// Every connection is closed: those waiting are woken through their
    /// kill signal, and each checks the flag before it waits again.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown_tx.send(true);
        for client in self.clients.all() {
            client.kill();
        }
    }

    /// Whether shutdown was asked for.
    pub fn shutting_down(&self) -> bool {
        *self.shutdown_tx.borrow()
    }

    pub fn shutdown_requested(&self) -> signal::Receiver<bool> {
        self.shutdown_tx.subscribe()
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
