//! The registry of connected clients that CLIENT LIST / KILL / INFO read,
//! and the part of each client other connections may look at.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio::sync::Notify;

/// The part of a client other connections may look at (CLIENT LIST, KILL).
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    /// Milliseconds since `created` of the last command.
    pub last_active_ms: AtomicU64,
    pub meta: Mutex<ClientMeta>,
    pub killed: AtomicBool,
    /// The connection's task, woken by [`ClientInfo::kill`]. One waker
    /// kept across waits: a `Notify` future per wait cost about 350
    /// instructions a request at -P 1 (registered and removed under a lock).
    kill_waker: AtomicWaker,
    /// Set by CLIENT UNBLOCK: (unblock requested, reply with error instead of timeout).
    pub unblock: Mutex<Option<bool>>,
    pub unblock_notify: Notify,
    /// The connection's buffers, as its task last saw them.
    pub mem: ClientMem,
}

/// A connection's buffer sizes for CLIENT LIST and INFO memory, stored by
/// its task once per batch of requests (relaxed: a snapshot, not a lock).
#[derive(Default)]
pub struct ClientMem {
    /// Unprocessed input bytes (`qbuf`).
    pub qbuf: AtomicU64,
    /// Input buffer capacity beyond them (`qbuf-free`).
    pub qbuf_free: AtomicU64,
    /// Arguments read so far of the request in progress (`argv-mem`).
    pub argv: AtomicU64,
    /// Arguments of the commands queued in MULTI (`multi-mem`).
    pub multi: AtomicU64,
    /// Reply buffer capacity (`rbs`).
    pub reply_cap: AtomicU64,
    /// Reply bytes written to the buffer and not yet to the socket (`omem`).
    pub reply_pending: AtomicU64,
}

/// What a connection costs besides its buffers (its state and task), counted
/// in `tot-mem` and `mem_clients_normal`.
pub const CLIENT_OVERHEAD: u64 = 2048;

impl ClientMem {
    /// Every byte the connection holds (`tot-mem`).
    pub fn total(&self) -> u64 {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CLIENT_OVERHEAD
            + g(&self.qbuf)
            + g(&self.qbuf_free)
            + g(&self.argv)
            + g(&self.multi)
            + g(&self.reply_cap)
    }
}

#[derive(Default, Clone)]
pub struct ClientMeta {
    pub name: Option<String>,
    pub last_command: &'static str,
    pub resp: u8,
    pub multi: bool,
    pub blocked: bool,
    pub no_evict: bool,
    pub no_touch: bool,
    pub lib_name: Option<String>,
    pub lib_ver: Option<String>,
    pub sub: usize,
    pub psub: usize,
    /// The selected database (SELECT).
    pub db: usize,
    pub ssub: usize,
    /// MONITOR was run (flag `O`).
    pub monitor: bool,
}

impl ClientInfo {
    /// A fresh client's state (RESP2, not killed, idle since now).
    pub fn new(id: u64, addr: SocketAddr, laddr: SocketAddr) -> ClientInfo {
        ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(0),
            meta: Mutex::new(ClientMeta {
                resp: 2,
                ..Default::default()
            }),
            killed: AtomicBool::new(false),
            kill_waker: AtomicWaker::new(),
            unblock: Mutex::new(None),
            unblock_notify: Notify::new(),
            mem: ClientMem::default(),
        }
    }

    /// Closes the connection (CLIENT KILL, a limit, shutdown): its task
    /// sees it at its next wait, or now if it waits.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        self.kill_waker.wake();
    }

    /// Resolves once the client is killed. For the connection's own task
    /// (one waker is kept: the last task that polled it).
    pub fn until_killed(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.killed.load(Ordering::Acquire) {
                return std::task::Poll::Ready(());
            }
            self.kill_waker.register(cx.waker());
            // Killed between the check and the registration: its wake
            // may have found no waker.
            if self.killed.load(Ordering::Acquire) {
                std::task::Poll::Ready(())
            } else {
                std::task::Poll::Pending
            }
        })
    }

    pub fn idle_secs(&self) -> u64 {
        let now = self.created.elapsed().as_millis() as u64;
        now.saturating_sub(self.last_active_ms.load(Ordering::Relaxed)) / 1000
    }

    /// One line of CLIENT LIST / CLIENT INFO, in Redis's format.
    pub fn describe(&self) -> String {
        let m = self.meta.lock().clone();
        // Redis's order: P, x, b, ..., e, T.
        let mut flags = String::new();
        if m.monitor {
            flags.push('O');
        }
        if m.sub + m.psub + m.ssub > 0 {
            flags.push('P');
        }
        if m.multi {
            flags.push('x');
        }
        if m.blocked {
            flags.push('b');
        }
        if m.no_evict {
            flags.push('e');
        }
        if m.no_touch {
            flags.push('T');
        }
        if flags.is_empty() {
            flags.push('N');
        }
        format!(
            "id={} addr={} laddr={} fd=8 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free={} argv-mem={} multi-mem={} rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}",
            self.id,
            self.addr,
            self.laddr,
            m.name.as_deref().unwrap_or(""),
            self.created.elapsed().as_secs(),
            self.idle_secs(),
            flags,
            m.db,
            m.sub,
            m.psub,
            m.ssub,
            if m.multi { 0 } else { -1 },
            self.mem.qbuf.load(Ordering::Relaxed),
            self.mem.qbuf_free.load(Ordering::Relaxed),
            self.mem.argv.load(Ordering::Relaxed),
            self.mem.multi.load(Ordering::Relaxed),
            self.mem.reply_cap.load(Ordering::Relaxed),
            self.mem.reply_cap.load(Ordering::Relaxed),
            self.mem.reply_pending.load(Ordering::Relaxed),
            self.mem.total(),
            if m.last_command.is_empty() { "NULL" } else { m.last_command },
            m.resp.max(2),
            m.lib_name.as_deref().unwrap_or(""),
            m.lib_ver.as_deref().unwrap_or(""),
        )
    }
}

#[derive(Default)]
pub struct ClientRegistry {
    next_id: AtomicU64,
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl ClientRegistry {
    pub fn register(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo::new(id, addr, laddr));
        self.clients.lock().insert(id, info.clone());
        info
    }

    /// Bytes every connected client holds (INFO's `mem_clients_normal`).
    pub fn memory(&self) -> u64 {
        self.clients.lock().values().map(|c| c.mem.total()).sum()
    }

    /// The largest input and reply buffers of any connected client (INFO's
    /// `client_recent_max_input_buffer` / `client_recent_max_output_buffer`).
    pub fn max_buffers(&self) -> (u64, u64) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        self.clients.lock().values().fold((0, 0), |(i, o), c| {
            (
                i.max(g(&c.mem.qbuf) + g(&c.mem.qbuf_free)),
                o.max(g(&c.mem.reply_cap)),
            )
        })
    }

    pub fn unregister(&self, id: u64) {
        self.clients.lock().remove(&id);
    }

    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.clients.lock().values().cloned().collect()
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }
}
