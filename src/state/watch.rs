//! WATCH bookkeeping: which clients watch which keys, flagged dirty by every
//! committed write that touches one of them (from any client, expiry,
//! eviction, FLUSHALL or replication, since all of them commit through the engine).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::engine::{Commit, CommitObserver};

/// A watched key: its database and its name.
pub type WatchKey = (usize, Bytes);

#[derive(Default)]
pub struct WatchRegistry {
    watched: AtomicUsize,
    map: Mutex<ahash::HashMap<WatchKey, Vec<Arc<AtomicBool>>>>,
}

impl WatchRegistry {
    pub fn watch(&self, key: &WatchKey, flag: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        let v = m.entry(key.clone()).or_default();
        if !v.iter().any(|f| Arc::ptr_eq(f, flag)) {
            v.push(flag.clone());
        }
        self.watched.store(m.len(), Ordering::Release);
    }

    pub fn unwatch(&self, key: &WatchKey, flag: &Arc<AtomicBool>) {
        let mut m = self.map.lock();
        if let Some(v) = m.get_mut(key) {
            v.retain(|f| !Arc::ptr_eq(f, flag));
            if v.is_empty() {
                m.remove(key);
            }
        }
        self.watched.store(m.len(), Ordering::Release);
    }

    /// Marks every client watching one of `keys` dirty.
    pub fn touch(&self, keys: &[WatchKey]) {
        let m = self.map.lock();
        for k in keys {
            if let Some(v) = m.get(k) {
                for f in v {
                    f.store(true, Ordering::Release);
                }
            }
        }
    }

    pub fn touch_all(&self) {
        let m = self.map.lock();
        for f in m.values().flatten() {
            f.store(true, Ordering::Release);
        }
    }
}

impl CommitObserver for WatchRegistry {
    fn wants_touched(&self) -> bool {
        self.watched.load(Ordering::Acquire) > 0
    }

    fn wants_mutations(&self, _: crate::engine::Origin) -> bool {
        false
    }

    fn wants_events(&self) -> bool {
        false
    }

    fn watched_keys(&self) -> Vec<WatchKey> {
        self.map.lock().keys().cloned().collect()
    }

    fn on_commit(&self, c: &Commit<'_>) {
        if !c.touched.is_empty() {
            self.touch(c.touched);
        }
    }
}
