//! CLIENT PAUSE: which commands wait, until when. The check on the command
//! path is one relaxed load while no pause is set; a paused client waits
//! for a change of the pause (UNPAUSE, a new PAUSE, its end) without
//! holding a runtime worker, and its command is then checked again.

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::engine::Db;

/// No pause.
pub const OFF: u8 = 0;
/// CLIENT PAUSE ... WRITE: writes and commands that may replicate wait.
pub const WRITE: u8 = 1;
/// CLIENT PAUSE ... ALL: every command waits.
pub const ALL: u8 = 2;

pub struct Pause {
    mode: AtomicU8,
    end: Mutex<Instant>,
    /// Bumped at every change; waiting clients watch it.
    changed: watch::Sender<u64>,
    /// Clients waiting for the pause to end (counted in `blocked_clients`).
    pub waiting: Arc<AtomicUsize>,
}

impl Default for Pause {
    fn default() -> Self {
        Pause {
            mode: AtomicU8::new(OFF),
            end: Mutex::new(Instant::now()),
            changed: watch::channel(0).0,
            waiting: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Pause {
    /// The pause in force (OFF when none); a pause past its end is lifted
    /// here. One relaxed load when none is set.
    #[inline]
    pub fn mode(&self, db: &Db) -> u8 {
        if self.mode.load(Ordering::Relaxed) == OFF {
            return OFF;
        }
        self.refresh(db)
    }

    fn refresh(&self, db: &Db) -> u8 {
        let end = self.end.lock();
        let m = self.mode.load(Ordering::Relaxed);
        if m != OFF && *end <= Instant::now() {
            self.mode.store(OFF, Ordering::Relaxed);
            db.set_frozen(false);
            drop(end);
            self.changed.send_modify(|g| *g += 1);
            return OFF;
        }
        m
    }

    /// CLIENT PAUSE: as Redis's pauseClients, a pause in force keeps the
    /// later end and the more restrictive mode. Returns the end.
    pub fn pause(&self, db: &Db, for_: Duration, mode: u8) -> Instant {
        let mut end = self.end.lock();
        let new_end = Instant::now() + for_;
        let old = self.mode.load(Ordering::Relaxed);
        let (mode, until) = if old == OFF {
            (mode, new_end)
        } else {
            (old.max(mode), (*end).max(new_end))
        };
        *end = until;
        self.mode.store(mode, Ordering::Relaxed);
        db.set_frozen(true);
        drop(end);
        self.changed.send_modify(|g| *g += 1);
        until
    }

    /// CLIENT UNPAUSE.
    pub fn unpause(&self, db: &Db) {
        let _end = self.end.lock();
        self.mode.store(OFF, Ordering::Relaxed);
        db.set_frozen(false);
        self.changed.send_modify(|g| *g += 1);
    }

    /// A future that resolves when the pause changes or ends; the caller
    /// then checks its command again. Counts as a blocked client meanwhile.
    pub fn wait(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.changed.subscribe();
        let end = *self.end.lock();
        struct Waiting(Arc<AtomicUsize>);
        impl Drop for Waiting {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let guard = Waiting(self.waiting.clone());
        async move {
            let _guard = guard;
            tokio::select! {
                _ = rx.changed() => {}
                _ = tokio::time::sleep_until(end.into()) => {}
            }
        }
    }
}
