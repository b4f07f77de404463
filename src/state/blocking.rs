//! Blocking pops (BLPOP, BLMOVE, BZPOPMIN, ...): clients wait in FIFO order per
//! key; a write that gives a waited-on key data serves the first waiter
//! directly (the pop runs on the waiter's behalf, under the shard lock), so
//! the first client to block is the first served and no element is popped
//! for a client that already gave up.

use std::collections::VecDeque;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::engine::{Db, Keys};
use crate::protocol::Reply;

/// Tries to serve a waiter from `ready_key`: performs the pop and writes the
/// reply, returning true; or returns false when there is nothing to pop.
pub type ServeFn = Box<dyn Fn(&mut Keys<'_>, &Bytes, &mut Reply) -> bool + Send + Sync>;

/// What a blocking command asks the connection to wait for.
pub struct BlockRequest {
    /// Keys to wait on (owned copies).
    pub keys: Vec<Bytes>,
    /// Other keys the pop touches (BLMOVE's destination), locked with the ready key.
    pub extra_keys: Vec<Bytes>,
    /// Absolute deadline in ms since the epoch; 0 = wait forever.
    pub deadline: u64,
    pub serve: ServeFn,
    /// Writes the reply sent on timeout.
    pub timeout_reply: fn(&mut Reply),
}

enum State {
    Waiting,
    Served(Bytes),
    Cancelled,
}

pub struct Waiter {
    pub client_id: u64,
    /// The database the waiter's keys are in (its client's SELECT).
    db_index: usize,
    resp3: bool,
    req: BlockRequest,
    state: Mutex<State>,
    pub notify: Notify,
}

impl Waiter {
    /// Ends the wait: returns the served reply, or None after marking the
    /// waiter cancelled (so no later write can serve it).
    pub fn finish(&self) -> Option<Bytes> {
        let mut st = self.state.lock();
        match std::mem::replace(&mut *st, State::Cancelled) {
            State::Served(b) => Some(b),
            _ => None,
        }
    }

    pub fn timeout_reply(&self, out: &mut Reply) {
        (self.req.timeout_reply)(out)
    }

    /// Completes after the request's deadline (never, for a deadline of 0).
    /// The deadline and the clock are whole milliseconds, truncated, so a
    /// wait of `deadline - now` could end up to a millisecond before the
    /// timeout has passed since the command ran; one more millisecond makes
    /// it never early (as Redis, which times out once the clock is past the
    /// deadline).
    pub async fn deadline_reached(&self) {
        let deadline = self.req.deadline;
        if deadline == 0 {
            std::future::pending::<()>().await
        } else {
            let now = crate::engine::now_ms();
            tokio::time::sleep(std::time::Duration::from_millis(
                deadline.saturating_sub(now) + 1,
            ))
            .await
        }
    }
}

/// The waiters of one key, first come first.
type Queue = VecDeque<Arc<Waiter>>;

#[derive(Default)]
pub struct BlockingRegistry {
    /// Waiters by (database, key).
    queues: Mutex<ahash::HashMap<(usize, Bytes), Queue>>,
}

impl BlockingRegistry {
    /// Registers a waiter for every key of `req`, then serves any key that got
    /// data between the command's check and the registration.
    /// `db_index` is the database the keys are in.
    pub fn register(
        &self,
        db: &Db,
        db_index: usize,
        client_id: u64,
        resp3: bool,
        req: BlockRequest,
    ) -> Arc<Waiter> {
        let waiter = Arc::new(Waiter {
            client_id,
            db_index,
            resp3,
            req,
            state: Mutex::new(State::Waiting),
            notify: Notify::new(),
        });
        {
            let mut q = self.queues.lock();
            let mut seen: Vec<&Bytes> = Vec::new();
            for k in &waiter.req.keys {
                if seen.contains(&k) {
                    continue;
                }
                seen.push(k);
                q.entry((db_index, k.clone()))
                    .or_default()
                    .push_back(waiter.clone());
                db.add_waited(db_index, k);
            }
        }
        for k in waiter.req.keys.clone() {
            self.serve_key(db, &(db_index, k));
        }
        self.serve_ready(db);
        waiter
    }

    /// Removes a waiter from every queue.
    pub fn unregister(&self, db: &Db, waiter: &Arc<Waiter>) {
        let mut q = self.queues.lock();
        let mut seen: Vec<&Bytes> = Vec::new();
        for k in &waiter.req.keys {
            if seen.contains(&k) {
                continue;
            }
            seen.push(k);
            let qk = (waiter.db_index, k.clone());
            if let Some(dq) = q.get_mut(&qk) {
                if let Some(pos) = dq.iter().position(|w| Arc::ptr_eq(w, waiter)) {
                    dq.remove(pos);
                    db.remove_waited(waiter.db_index, k);
                }
                if dq.is_empty() {
                    q.remove(&qk);
                }
            }
        }
    }

    /// Serves the waiters of every key that received data, until none is left.
    pub fn serve_ready(&self, db: &Db) {
        loop {
            let ready = db.take_ready();
            if ready.is_empty() {
                return;
            }
            for key in ready {
                self.serve_key(db, &key);
            }
        }
    }

    /// Number of clients currently blocked.
    pub fn blocked_clients(&self) -> usize {
        let q = self.queues.lock();
        let mut ids: Vec<u64> = q.values().flatten().map(|w| w.client_id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }

    /// Serves waiters of `key`, first come first served, while it has data.
    ///
    /// A waiter whose serve declines (the key holds a type it does not pop,
    /// e.g. a BZPOPMIN waiter on a list, or the key is gone) is skipped, so
    /// the waiters behind it still get the data.
    pub fn serve_key(&self, db: &Db, qkey: &(usize, Bytes)) {
        let key = &qkey.1;
        // Waiters that declined during this call, in queue order; once one
        // declined, the rest of the queue is scanned from a snapshot.
        let mut rest: Option<std::vec::IntoIter<Arc<Waiter>>> = None;
        loop {
            let waiter = match rest.as_mut() {
                Some(it) => match it.next() {
                    Some(w) => w,
                    None => return,
                },
                None => {
                    let q = self.queues.lock();
                    match q.get(qkey).and_then(|dq| dq.front()) {
                        Some(w) => w.clone(),
                        None => return,
                    }
                }
            };
            let mut lock_keys: Vec<&Bytes> = vec![key];
            lock_keys.extend(waiter.req.extra_keys.iter());
            let mut ks = db.lock(&lock_keys);
            ks.select(qkey.0);
            // A key that is gone is still offered: a blocked XREADGROUP
            // fails when its stream is deleted; other waiters decline.
            let mut st = waiter.state.lock();
            if !matches!(*st, State::Waiting) {
                drop(st);
                drop(ks);
                self.unregister(db, &waiter);
                continue;
            }
            let mut reply = Reply::new(waiter.resp3);
            if !(waiter.req.serve)(&mut ks, key, &mut reply) {
                drop(st);
                drop(ks);
                if rest.is_none() {
                    let q = self.queues.lock();
                    // Everything behind the declined waiter (everything, if
                    // it left the queue meanwhile).
                    let snapshot: Vec<Arc<Waiter>> = match q.get(qkey) {
                        Some(dq) => {
                            let start = dq
                                .iter()
                                .position(|w| Arc::ptr_eq(w, &waiter))
                                .map_or(0, |p| p + 1);
                            dq.iter().skip(start).cloned().collect()
                        }
                        None => Vec::new(),
                    };
                    rest = Some(snapshot.into_iter());
                }
                continue;
            }
            *st = State::Served(reply.buf.freeze());
            drop(st);
            drop(ks);
            self.unregister(db, &waiter);
            waiter.notify.notify_one();
        }
    }
}
