//! The local memory engine: a sharded keyspace with expiry, eviction and
//! memory accounting. It knows nothing of RESP, sockets, tiers or the cluster.
//!
//! Concurrency: the keyspace is split into [`SHARDS`] shards, each behind its
//! own mutex. A command locks the shards of the keys it names, in ascending
//! shard order (so two commands can never deadlock), through a [`Keys`] view;
//! whole-keyspace commands and transactions lock every shard. A
//! `parking_lot::Mutex` is right here: critical sections are short and never
//! await.
//!
//! Every change goes through [`Keys::apply`] with a [`Mutation`]; that one
//! place keeps memory accounting, expiry indexes, WATCH touches, blocked-key
//! wake-ups and the replication log in step.

mod apply;
pub mod digest;
pub mod evict;
pub mod key;
pub mod mutation;
pub mod stream;
mod stream_chunk;
pub mod value;
pub mod zset;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use indexmap::{IndexMap, IndexSet};
use parking_lot::{Mutex, MutexGuard};
use smallvec::SmallVec;

pub use evict::EvictionPolicy;
pub use mutation::{ExpireSet, Mutation, ScriptOp};
pub use stream::{Stream, StreamId, StreamOp};
pub use value::{HashValue, ListValue, SetValue, Value, ValueType};
pub use zset::ZSet;

use key::Key;
use value::{Elem, Hasher};

/// Number of keyspace shards (a power of two).
pub const SHARDS: usize = 64;

/// Every shard index, in lock order.
const ALL_SHARDS: [usize; SHARDS] = {
    let mut all = [0; SHARDS];
    let mut i = 0;
    while i < SHARDS {
        all[i] = i;
        i += 1;
    }
    all
};
/// Bits of a key's hash that order SCAN within a shard (see [`Db::scan_slot`]).
pub const SCAN_SLOT_BITS: u32 = 16;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One key's value and metadata.
#[derive(Clone, Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute expiry in ms since the epoch; 0 = persistent.
    pub expire_at: u64,
    /// LRU clock (seconds) or LFU counter, depending on the eviction policy.
    pub access: u32,
    /// The key's SCAN slot (see [`Db::scan_slot`]), set when the key is
    /// inserted, so that SCAN reads it instead of hashing every key.
    pub scan_slot: u16,
}

impl Entry {
    fn is_expired(&self, now: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now
    }
}

/// Bytes an entry costs beyond its value and a long key's allocation: its
/// slot in the shard's index map (hash, key, entry) plus the hash-table index.
const ENTRY_SLOT: usize = 8 + std::mem::size_of::<Key>() + std::mem::size_of::<Entry>() + 12;
/// Extra cost of a key with a TTL (its copy in the volatile index).
const VOLATILE_SLOT: usize = std::mem::size_of::<Key>() + 8 + 12;

/// Bytes accounted for one key (MEMORY USAGE, maxmemory).
pub fn entry_bytes(key_len: usize, e: &Entry) -> usize {
    let mut n = ENTRY_SLOT + Key::heap_bytes(key_len) + e.value.mem_bytes();
    if e.expire_at != 0 {
        n += VOLATILE_SLOT + Key::heap_bytes(key_len);
    }
    n
}

/// One database's part of a shard: its keys, its TTL index and the bytes
/// accounted to them.
#[derive(Default)]
pub struct Space {
    map: IndexMap<Key, Entry, Hasher>,
    /// Keys that have an expiry, for the active expiry sweep and volatile-* eviction.
    volatile: IndexSet<Key, Hasher>,
    /// Bytes accounted to this part.
    used: usize,
}

impl Space {
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &Entry)> {
        self.map.get_index(i).map(|(k, e)| (&k[..], e))
    }
    pub fn volatile_key(&self, i: usize) -> Option<&[u8]> {
        self.volatile.get_index(i).map(|k| &k[..])
    }
    pub fn get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> + '_ {
        self.map.iter().map(|(k, e)| (&k[..], e))
    }
    /// Keeps the volatile index right when a key gains or loses its TTL.
    fn ttl_changed(&mut self, key: &[u8], had: bool, has: bool) {
        if has && !had {
            self.volatile.insert(key.into());
        } else if had && !has {
            self.volatile.swap_remove(key);
        }
    }

    /// Samples up to 20 keys with a TTL; returns the expired ones (unique).
    fn sample_expired(&self, now: u64) -> Vec<Bytes> {
        let n = self.volatile.len();
        let mut out: Vec<Bytes> = Vec::new();
        for _ in 0..n.min(20) {
            let k = &self.volatile[rand::random::<usize>() % n];
            if self.map.get(k).is_some_and(|e| e.is_expired(now)) {
                let k = Bytes::copy_from_slice(k);
                if !out.contains(&k) {
                    out.push(k);
                }
            }
        }
        out
    }
}

/// What a database that was never written to reads as.
static EMPTY_SPACE: LazyLock<Space> = LazyLock::new(Space::default);

/// The unit of locking: one shard of every database. A key hashes to the
/// same shard in every database, so one lock covers a key in all of them
/// (MOVE, COPY ... DB) and the lock order stays the shards' order.
/// Database 0 is kept inline; the others are created on their first write
/// (an unused database costs nothing but this empty vector).
#[derive(Default)]
pub struct Shard {
    main: Space,
    /// Databases other than 0 that were written to, sorted by index.
    others: Vec<(u32, Box<Space>)>,
}

impl Shard {
    /// Database `db`'s part, if it was ever written to.
    fn space(&self, db: usize) -> Option<&Space> {
        if db == 0 {
            return Some(&self.main);
        }
        let i = self
            .others
            .binary_search_by_key(&(db as u32), |(d, _)| *d)
            .ok()?;
        Some(&self.others[i].1)
    }

    /// Database `db`'s part, created if needed.
    fn space_mut(&mut self, db: usize) -> &mut Space {
        if db == 0 {
            return &mut self.main;
        }
        let i = match self.others.binary_search_by_key(&(db as u32), |(d, _)| *d) {
            Ok(i) => i,
            Err(i) => {
                self.others.insert(i, (db as u32, Box::default()));
                i
            }
        };
        &mut self.others[i].1
    }

    /// Database `db`'s part if it exists (no creation).
    fn space_mut_opt(&mut self, db: usize) -> Option<&mut Space> {
        if db == 0 {
            return Some(&mut self.main);
        }
        let i = self
            .others
            .binary_search_by_key(&(db as u32), |(d, _)| *d)
            .ok()?;
        Some(&mut self.others[i].1)
    }

    /// Databases `a` and `b` trade their parts.
    fn swap(&mut self, a: usize, b: usize) {
        let (lo, hi) = (a.min(b), a.max(b));
        if lo == hi {
            return;
        }
        self.space_mut(lo);
        self.space_mut(hi);
        let pos = |o: &Vec<(u32, Box<Space>)>, d: usize| {
            o.binary_search_by_key(&(d as u32), |(x, _)| *x)
                .expect("just created")
        };
        let h = pos(&self.others, hi);
        if lo == 0 {
            std::mem::swap(&mut self.main, &mut self.others[h].1);
        } else {
            let l = pos(&self.others, lo);
            let (x, y) = self.others.split_at_mut(h);
            std::mem::swap(&mut x[l].1, &mut y[0].1);
        }
    }

    /// Every database part this shard has, with its index.
    fn spaces(&self) -> impl Iterator<Item = (usize, &Space)> + '_ {
        std::iter::once((0, &self.main)).chain(self.others.iter().map(|(d, s)| (*d as usize, &**s)))
    }
}

/// Counters the engine keeps for INFO.
#[derive(Default)]
pub struct EngineStats {
    pub expired_keys: AtomicU64,
    pub evicted_keys: AtomicU64,
    pub keyspace_hits: crate::util::counter::Counter,
    pub keyspace_misses: crate::util::counter::Counter,
    /// Mutations applied since start (Redis's "dirty" counter).
    pub changes: crate::util::counter::Counter,
}

/// Where a commit comes from. It travels with the commit, so an observer
/// decides by it (the replication log records only [`Origin::Command`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command run on this node.
    Command,
    /// The master's replication stream or a full sync's snapshot, applied by
    /// a follower (which logs stream entries itself, with the master's
    /// offsets) or by a follower that empties itself before a full sync.
    Stream,
    /// A change each node makes on its own: the upstream tier's cache fills
    /// and invalidation drops.
    Cache,
}

/// What a committed write touched, handed to the [`CommitObserver`] while the
/// shards are still locked (so observers see commits in apply order).
pub struct Commit<'a> {
    pub origin: Origin,
    /// Keys written, each with its database.
    pub touched: &'a [(usize, Bytes)],
    /// The commit's mutations, for the one observer that keeps them (the
    /// replication log takes them; no copy).
    pub mutations: std::cell::Cell<Vec<Mutation>>,
    pub events: &'a [KeyEvent],
    /// Pub/Sub messages to deliver locally (replicated PUBLISH).
    pub published: &'a [(Bytes, Bytes, bool)],
    /// Changes to the scripting state (replicated script and library loads).
    pub scripts: &'a [ScriptOp],
    pub flushed: bool,
}

/// A keyspace event (for keyspace notifications): class is Redis's
/// notify-keyspace-events character (`g`, `$`, `l`, `s`, `h`, `z`, `x`, `e`, `n`).
#[derive(Clone, Debug)]
pub struct KeyEvent {
    /// The database the key is in.
    pub db: usize,
    pub class: u8,
    pub event: &'static str,
    pub key: Bytes,
}

/// Hooks outside the engine (WATCH, replication) that want to hear about writes.
pub trait CommitObserver: Send + Sync {
    /// Whether touched keys should be collected at all (cheap check per command).
    fn wants_touched(&self) -> bool;
    /// Whether the mutations of a commit of this origin should be recorded
    /// (replication).
    fn wants_mutations(&self, origin: Origin) -> bool;
    /// Whether keyspace events should be collected (notifications).
    fn wants_events(&self) -> bool;
    fn on_commit(&self, commit: &Commit<'_>);
    /// Keys somebody watches, each with its database (FLUSHALL, FLUSHDB
    /// and SWAPDB touch those that exist).
    fn watched_keys(&self) -> Vec<(usize, Bytes)> {
        Vec::new()
    }
}

/// The keyspace: every database, sharded. Memory accounting, eviction,
/// statistics and expiry are over all databases together.
pub struct Db {
    shards: Box<[Mutex<Shard>]>,
    /// How many databases there are (`databases`; fixed at start).
    databases: usize,
    hasher: ahash::RandomState,
    /// Striped: every write adjusts it, from every worker.
    used: crate::util::counter::Counter,
    pub stats: EngineStats,
    pub maxmemory: AtomicU64,
    policy: AtomicU8,
    /// On a replica, expired keys are hidden but only deleted by the master's DEL.
    replica: AtomicBool,
    /// Clients are paused (CLIENT PAUSE): the keyspace is kept as it is, as
    /// on a replica (expired keys hidden, no sweep, no eviction).
    frozen: AtomicBool,
    observer: OnceLock<Arc<dyn CommitObserver>>,
    /// Keys (with their database) that blocked clients wait on, with how
    /// many waiters each.
    waited: Mutex<ahash::HashMap<(usize, Bytes), usize>>,
    waited_count: AtomicUsize,
    /// Waited-on keys that received data and must be served.
    ready: Mutex<Vec<(usize, Bytes)>>,
    ready_flag: AtomicBool,
    /// Round-robin position of the active expiry sweep.
    sweep_pos: AtomicUsize,
    /// DEBUG SET-ACTIVE-EXPIRE: whether the sweep runs.
    active_expire: AtomicBool,
    /// Someone holds every shard for an unbounded time (a script): other
    /// lockers that would wait ask to be told instead ([`Db::lock_or_busy`]).
    long_held: AtomicBool,
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Db {
    /// A keyspace of 16 databases (Redis's default).
    pub fn new() -> Self {
        Self::with_databases(16)
    }

    /// A keyspace of `databases` databases (at least 1).
    pub fn with_databases(databases: usize) -> Self {
        Db {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            databases: databases.max(1),
            hasher: ahash::RandomState::new(),
            used: Default::default(),
            stats: EngineStats::default(),
            maxmemory: AtomicU64::new(0),
            policy: AtomicU8::new(EvictionPolicy::NoEviction as u8),
            replica: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            observer: OnceLock::new(),
            waited: Mutex::new(Default::default()),
            waited_count: AtomicUsize::new(0),
            ready: Mutex::new(Vec::new()),
            ready_flag: AtomicBool::new(false),
            sweep_pos: AtomicUsize::new(0),
            active_expire: AtomicBool::new(true),
            long_held: AtomicBool::new(false),
        }
    }

    /// How many databases there are.
    pub fn databases(&self) -> usize {
        self.databases
    }

    /// Installs the commit observer; only the first call takes effect.
    pub fn set_observer(&self, obs: Arc<dyn CommitObserver>) {
        let _ = self.observer.set(obs);
    }

    pub fn set_replica(&self, replica: bool) {
        self.replica.store(replica, Ordering::Relaxed);
    }

    pub fn set_active_expire(&self, on: bool) {
        self.active_expire.store(on, Ordering::Relaxed);
    }

    pub fn is_replica(&self) -> bool {
        self.replica.load(Ordering::Relaxed)
    }

    /// CLIENT PAUSE in force or lifted (see `frozen`).
    pub fn set_frozen(&self, on: bool) {
        self.frozen.store(on, Ordering::Relaxed);
    }

    /// Whether expired keys stay (hidden) and nothing is evicted: on a
    /// replica, and while clients are paused.
    pub fn keeps_keys(&self) -> bool {
        self.replica.load(Ordering::Relaxed) || self.frozen.load(Ordering::Relaxed)
    }

    pub fn policy(&self) -> EvictionPolicy {
        EvictionPolicy::from_u8(self.policy.load(Ordering::Relaxed))
    }

    pub fn set_policy(&self, p: EvictionPolicy) {
        self.policy.store(p as u8, Ordering::Relaxed);
    }

    /// Bytes held by the keyspace, as accounted by every apply.
    pub fn used_memory(&self) -> usize {
        self.used.get() as usize
    }

    pub fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// Where SCAN finds `key` within its shard: the top [`SCAN_SLOT_BITS`]
    /// bits of its hash (fixed for the key's life in the shard).
    pub fn scan_slot(&self, key: &[u8]) -> u16 {
        (self.hash(key) >> (64 - SCAN_SLOT_BITS)) as u16
    }

    pub fn shard_index(&self, key: &[u8]) -> usize {
        (self.hash(key) as usize) & (SHARDS - 1)
    }

    /// Locks the shards of `keys` (any order, duplicates fine).
    pub fn lock<'a, K: AsRef<[u8]>>(&'a self, keys: &[K]) -> Keys<'a> {
        self.lock_indices(&self.shards_of(keys))
    }

    /// The shards of `keys`, sorted and unique (the order locks are taken in).
    fn shards_of<K: AsRef<[u8]>>(&self, keys: &[K]) -> SmallVec<[usize; 4]> {
        if let [key] = keys {
            return smallvec::smallvec![self.shard_index(key.as_ref())];
        }
        let mut idx: SmallVec<[usize; 4]> =
            keys.iter().map(|k| self.shard_index(k.as_ref())).collect();
        idx.sort_unstable();
        idx.dedup();
        idx
    }

    /// Locks every shard (transactions and whole-keyspace commands).
    pub fn lock_all(&self) -> Keys<'_> {
        self.lock_indices(&ALL_SHARDS)
    }

    /// Locks the given shard indexes, which must be sorted and unique.
    pub fn lock_indices(&self, sorted: &[usize]) -> Keys<'_> {
        self.lock_indices_as(Origin::Command, sorted)
    }

    /// Locks the given shard indexes (sorted and unique) for changes that
    /// come from `origin`.
    pub fn lock_indices_as(&self, origin: Origin, sorted: &[usize]) -> Keys<'_> {
        let mut guards = SmallVec::with_capacity(sorted.len());
        guards.extend(sorted.iter().map(|&i| (i, self.lock_shard(i))));
        self.keys(origin, guards)
    }

    /// Shard `i`, however long it takes. A wait for a long holder (a
    /// running script) is done off the runtime's worker
    /// ([`crate::util::worker::off_worker`]), so that the worker's other
    /// clients are served meanwhile: a follower applying the replication
    /// stream while a read-only script loops, with one worker thread,
    /// would otherwise stop every client, SCRIPT KILL's too, until the
    /// script ends.
    fn lock_shard(&self, i: usize) -> MutexGuard<'_, Shard> {
        self.lock_shard_or_busy(i)
            .unwrap_or_else(|| crate::util::worker::off_worker(|| self.shards[i].lock()))
    }

    /// Shard `i`, unless it is held for long (a running script): then
    /// None. A locker that has to wait re-checks every millisecond, so it
    /// never waits more than that for a long holder that came first.
    #[inline]
    fn lock_shard_or_busy(&self, i: usize) -> Option<MutexGuard<'_, Shard>> {
        if let Some(g) = self.shards[i].try_lock() {
            return Some(g);
        }
        loop {
            if self.long_held.load(Ordering::Acquire) {
                return None;
            }
            let wait = std::time::Duration::from_millis(1);
            if let Some(g) = self.shards[i].try_lock_for(wait) {
                return Some(g);
            }
        }
    }

    /// Like [`Db::lock`], unless the shards are held for long (a running
    /// script, see [`Keys::hold_long`]): then None, without waiting for
    /// them ([`Db::lock_shard_or_busy`]).
    pub fn lock_or_busy<K: AsRef<[u8]>>(&self, keys: &[K]) -> Option<Keys<'_>> {
        self.lock_indices_or_busy(&self.shards_of(keys))
    }

    /// [`Db::lock_all`], unless the shards are held for long.
    pub fn lock_all_or_busy(&self) -> Option<Keys<'_>> {
        self.lock_indices_or_busy(&ALL_SHARDS)
    }

    /// [`Db::lock_indices`], unless the shards are held for long.
    pub fn lock_indices_or_busy(&self, sorted: &[usize]) -> Option<Keys<'_>> {
        // Sized once: a script or transaction locks all 64, and growing
        // from the inline two cost five reallocations.
        let mut guards = SmallVec::with_capacity(sorted.len());
        for &i in sorted {
            guards.push((i, self.lock_shard_or_busy(i)?));
        }
        Some(self.keys(Origin::Command, guards))
    }

    /// Whether the shards are held for long (a script is running).
    pub fn long_held(&self) -> bool {
        self.long_held.load(Ordering::Acquire)
    }

    fn keys<'a>(
        &'a self,
        origin: Origin,
        guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    ) -> Keys<'a> {
        let (touched, mutations, events) = match self.observer.get() {
            Some(o) => (
                o.wants_touched(),
                o.wants_mutations(origin),
                o.wants_events(),
            ),
            None => (false, false, false),
        };
        Keys {
            db: self,
            origin,
            guards,
            index: 0,
            log_index: 0,
            now: std::cell::Cell::new(0),
            collect_touched: touched,
            collect_mutations: mutations,
            collect_events: events,
            touched: Vec::new(),
            log: Vec::new(),
            events: Vec::new(),
            published: Vec::new(),
            scripts: Vec::new(),
            event_override: None,
            flushed: false,
            no_touch: false,
            changes: 0,
            long: false,
        }
    }

    /// Locks the shards that `muts` touch (all of them for a FLUSHALL), for
    /// changes that come from `origin`.
    pub fn lock_mutations<'m>(
        &self,
        origin: Origin,
        muts: impl Iterator<Item = &'m Mutation> + Clone,
    ) -> Keys<'_> {
        if muts.clone().any(|m| m.whole_keyspace()) {
            return self.lock_indices_as(origin, &ALL_SHARDS);
        }
        let mut idx: SmallVec<[usize; 4]> = SmallVec::new();
        for m in muts {
            if !m.has_keys() {
                continue;
            }
            let (a, b) = m.keys();
            idx.push(self.shard_index(a));
            if let Some(b) = b {
                idx.push(self.shard_index(b));
            }
        }
        idx.sort_unstable();
        idx.dedup();
        self.lock_indices_as(origin, &idx)
    }

    /// Applies `muts` as one commit of `origin` (not a command's: a snapshot
    /// chunk, a cache fill or drop), under the shards they touch.
    pub fn apply_as(&self, origin: Origin, muts: Vec<Mutation>) {
        if muts.is_empty() {
            return;
        }
        let mut ks = self.lock_mutations(origin, muts.iter());
        for m in muts {
            ks.apply(m);
        }
    }

    /// Total number of keys in every database (including expired keys not
    /// yet deleted, like Redis's DBSIZE).
    pub fn len(&self) -> usize {
        (0..SHARDS)
            .map(|i| {
                let shard = self.lock_shard(i);
                shard.spaces().map(|(_, s)| s.len()).sum::<usize>()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (database, keys, keys with expiry) of every database holding keys,
    /// in index order (INFO keyspace). One shard locked at a time.
    pub fn key_counts(&self) -> Vec<(usize, usize, usize)> {
        let mut by_db: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        for i in 0..SHARDS {
            let s = self.lock_shard(i);
            for (d, sp) in s.spaces() {
                if !sp.is_empty() {
                    let c = by_db.entry(d).or_default();
                    c.0 += sp.len();
                    c.1 += sp.volatile_len();
                }
            }
        }
        by_db.into_iter().map(|(d, (k, v))| (d, k, v)).collect()
    }

    // ---- blocked keys ----

    /// Registers interest of one waiter in `key` of database `db`.
    pub fn add_waited(&self, db: usize, key: &Bytes) {
        let mut w = self.waited.lock();
        *w.entry((db, key.clone())).or_insert(0) += 1;
        self.waited_count.store(w.len(), Ordering::Release);
    }

    pub fn remove_waited(&self, db: usize, key: &Bytes) {
        let mut w = self.waited.lock();
        let k = (db, key.clone());
        if let Some(n) = w.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                w.remove(&k);
            }
        }
        self.waited_count.store(w.len(), Ordering::Release);
    }

    fn signal_ready(&self, db: usize, key: &Bytes) {
        if self.waited_count.load(Ordering::Acquire) == 0 {
            return;
        }
        let k = (db, key.clone());
        if !self.waited.lock().contains_key(&k) {
            return;
        }
        self.push_ready(k);
    }

    fn push_ready(&self, k: (usize, Bytes)) {
        let mut r = self.ready.lock();
        if !r.contains(&k) {
            r.push(k);
        }
        self.ready_flag.store(true, Ordering::Release);
    }

    /// The keys waited on in database `db` (SWAPDB: Redis's
    /// scanDatabaseForReadyKeys).
    fn waited_in(&self, db: usize) -> Vec<Bytes> {
        if self.waited_count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        let w = self.waited.lock();
        w.keys()
            .filter(|(d, _)| *d == db)
            .map(|(_, k)| k.clone())
            .collect()
    }

    /// Marks every waited-on key ready, in database `db` or in all of them
    /// (FLUSHDB, FLUSHALL emptied them: a blocked XREADGROUP fails).
    fn signal_all_waited(&self, db: Option<usize>) {
        if self.waited_count.load(Ordering::Acquire) == 0 {
            return;
        }
        let keys: Vec<(usize, Bytes)> = self
            .waited
            .lock()
            .keys()
            .filter(|(d, _)| db.is_none_or(|db| *d == db))
            .cloned()
            .collect();
        for (d, k) in &keys {
            self.signal_ready(*d, k);
        }
    }

    /// Whether keys with blocked clients were written since the last
    /// [`Db::take_ready`].
    pub fn has_ready(&self) -> bool {
        self.ready_flag.load(Ordering::Acquire)
    }

    /// Keys (with their database) that received data while clients wait on them.
    pub fn take_ready(&self) -> Vec<(usize, Bytes)> {
        if !self.has_ready() {
            return Vec::new();
        }
        let mut r = self.ready.lock();
        self.ready_flag.store(false, Ordering::Release);
        std::mem::take(&mut *r)
    }

    // ---- active expiry ----

    /// Samples keys with a TTL in a few shards and returns those that have
    /// expired, without deleting them (for a caller that deletes them its own
    /// way, e.g. a replica's near cache outside the replication log).
    pub fn sample_expired(&self, shards: usize) -> Vec<(usize, Bytes)> {
        let mut out = Vec::new();
        let now = now_ms();
        for _ in 0..shards {
            let i = self.sweep_pos.fetch_add(1, Ordering::Relaxed) % SHARDS;
            let shard = self.lock_shard(i);
            for (d, space) in shard.spaces() {
                for k in space.sample_expired(now) {
                    let k = (d, k);
                    if !out.contains(&k) {
                        out.push(k);
                    }
                }
            }
        }
        out
    }

    /// One bounded pass of the active expiry sweep: samples keys with a TTL in
    /// a few shards (one shard locked at a time) and deletes the expired ones.
    /// Returns the number of keys deleted.
    pub fn active_expire_cycle(&self, shards_per_cycle: usize) -> usize {
        if self.keeps_keys() || !self.active_expire.load(Ordering::Relaxed) {
            return 0;
        }
        let mut deleted = 0;
        for _ in 0..shards_per_cycle {
            let i = self.sweep_pos.fetch_add(1, Ordering::Relaxed) % SHARDS;
            // Keep sampling a shard while more than a quarter of the sample was expired, like Redis.
            for _round in 0..16 {
                // A script holds every shard: sweep another time.
                let Some(mut ks) = self.lock_indices_or_busy(&[i]) else {
                    return deleted;
                };
                let now = ks.now();
                let shard = &ks.guards[0].1;
                let sample: usize = shard.spaces().map(|(_, s)| s.volatile.len().min(20)).sum();
                if sample == 0 {
                    break;
                }
                let expired: Vec<(usize, Bytes)> = shard
                    .spaces()
                    .flat_map(|(d, s)| s.sample_expired(now).into_iter().map(move |k| (d, k)))
                    .collect();
                let count = expired.len();
                for (d, k) in expired {
                    ks.select(d);
                    ks.expire_now(k);
                }
                deleted += count;
                if count * 4 <= sample {
                    break;
                }
            }
        }
        deleted
    }
}

/// A view over a set of locked shards. Every key a command touches must live
/// in one of them; touching another is a bug and panics.
pub struct Keys<'a> {
    db: &'a Db,
    origin: Origin,
    guards: SmallVec<[(usize, MutexGuard<'a, Shard>); 2]>,
    /// The database keys are read and written in (the client's SELECT).
    index: usize,
    /// The database of the last mutation logged: a mutation logged in
    /// another one is preceded by a `Mutation::Select` (a log entry starts
    /// in database 0).
    log_index: usize,
    /// The command's time in ms, read from the clock on first use and then
    /// fixed (0 = not read yet): lookups of keys without a TTL never read it.
    now: std::cell::Cell<u64>,
    collect_touched: bool,
    collect_mutations: bool,
    collect_events: bool,
    touched: Vec<(usize, Bytes)>,
    log: Vec<Mutation>,
    events: Vec<KeyEvent>,
    /// Pub/Sub messages applied from the replication stream, delivered by the observer.
    published: Vec<(Bytes, Bytes, bool)>,
    /// Scripting changes applied through this view, handed to the observer.
    scripts: Vec<ScriptOp>,
    event_override: Option<(u8, &'static str)>,
    flushed: bool,
    /// Reads do not update the keys' LRU/LFU data (CLIENT NO-TOUCH).
    no_touch: bool,
    /// Mutations applied through this view (INFO rdb_changes_since_last_save).
    changes: u64,
    /// This view holds every shard for long (see [`Keys::hold_long`]).
    long: bool,
}

impl Drop for Keys<'_> {
    fn drop(&mut self) {
        if self.long {
            self.db.long_held.store(false, Ordering::Release);
        }
        if self.changes > 0 {
            self.db.stats.changes.add(self.changes);
        }
        if self.touched.is_empty()
            && self.log.is_empty()
            && self.events.is_empty()
            && self.published.is_empty()
            && self.scripts.is_empty()
            && !self.flushed
        {
            return;
        }
        if let Some(o) = self.db.observer.get() {
            o.on_commit(&Commit {
                origin: self.origin,
                touched: &self.touched,
                mutations: std::cell::Cell::new(std::mem::take(&mut self.log)),
                events: &self.events,
                published: &self.published,
                scripts: &self.scripts,
                flushed: self.flushed,
            });
        }
    }
}

impl<'a> Keys<'a> {
    pub fn db(&self) -> &'a Db {
        self.db
    }

    /// Ends one command's commit and keeps the shards for the next: the
    /// view becomes a newly locked one over the same guards (database 0,
    /// its own time, what the observer wants now), and the old one, dropped
    /// while the shards are still held, hands what it changed to the
    /// observer. The scripts of one pipeline run this way, each its own
    /// commit (one replication entry, its own `now`), without locking
    /// every shard again for each. A long hold stays with the shards.
    pub fn commit(&mut self) {
        let db = self.db;
        let fresh = db.keys(self.origin, std::mem::take(&mut self.guards));
        let mut old = std::mem::replace(self, fresh);
        self.long = std::mem::take(&mut old.long);
    }

    /// Says that this view, which must hold every shard, will hold them for
    /// an unbounded time (a script): until it is dropped, other lockers are
    /// told so rather than made to wait ([`Db::lock_or_busy`]).
    pub fn hold_long(&mut self) {
        debug_assert_eq!(self.guards.len(), SHARDS, "a long hold holds every shard");
        self.long = true;
        self.db.long_held.store(true, Ordering::Release);
    }

    /// The database this view reads and writes.
    pub fn selected(&self) -> usize {
        self.index
    }

    /// Makes this view read and write database `db` (SELECT; a transaction
    /// or a script holding every shard may change it between commands).
    pub fn select(&mut self, db: usize) {
        self.index = db;
    }

    /// Number of keys in the selected database, when this view holds every
    /// shard (DBSIZE).
    pub fn db_len(&self) -> usize {
        self.shards().map(|(_, s)| s.len()).sum()
    }

    /// (database, keys, keys with expiry) of every database holding keys,
    /// when this view holds every shard (INFO keyspace inside a script).
    pub fn key_counts(&self) -> Option<Vec<(usize, usize, usize)>> {
        if self.guards.len() != SHARDS {
            return None;
        }
        let mut by_db: std::collections::BTreeMap<usize, (usize, usize)> = Default::default();
        for (_, g) in &self.guards {
            for (d, sp) in g.spaces() {
                if !sp.is_empty() {
                    let c = by_db.entry(d).or_default();
                    c.0 += sp.len();
                    c.1 += sp.volatile_len();
                }
            }
        }
        Some(by_db.into_iter().map(|(d, (k, v))| (d, k, v)).collect())
    }

    /// Ends a long hold before the view is dropped (the shards stay locked
    /// until then).
    pub fn end_long_hold(&mut self) {
        if std::mem::take(&mut self.long) {
            self.db.long_held.store(false, Ordering::Release);
        }
    }

    /// CLIENT NO-TOUCH: whether reads through this view leave the keys'
    /// access data alone. Returns the previous setting.
    pub fn set_no_touch(&mut self, on: bool) -> bool {
        std::mem::replace(&mut self.no_touch, on)
    }

    /// The time this command runs at (ms); fixed for the whole command or transaction.
    pub fn now(&self) -> u64 {
        let t = self.now.get();
        if t != 0 {
            return t;
        }
        let t = now_ms();
        self.now.set(t);
        t
    }

    /// Whether every shard is locked (transactions, whole-keyspace commands).
    pub fn all_locked(&self) -> bool {
        self.guards.len() == SHARDS
    }

    fn slot(&self, key: &[u8]) -> usize {
        // One locked shard (most commands): it must be the key's, so skip
        // hashing the key again; debug builds (every test run) still check.
        if self.guards.len() == 1 {
            debug_assert_eq!(
                self.guards[0].0,
                self.db.shard_index(key),
                "key {:?} used without its shard locked",
                String::from_utf8_lossy(key)
            );
            return 0;
        }
        let s = self.db.shard_index(key);
        // Every shard (scripts, transactions): held in index order.
        if self.guards.len() == SHARDS {
            return s;
        }
        match self.guards.iter().position(|(i, _)| *i == s) {
            Some(p) => p,
            None => panic!(
                "key {:?} used without its shard locked",
                String::from_utf8_lossy(key)
            ),
        }
    }

    /// The selected database's part of the locked shard at `slot`.
    fn space(&self, slot: usize) -> Option<&Space> {
        self.guards[slot].1.space(self.index)
    }

    /// The selected database's part of the locked shard at `slot`, created
    /// if needed (a write).
    fn space_mut(&mut self, slot: usize) -> &mut Space {
        self.guards[slot].1.space_mut(self.index)
    }

    fn live_index(&mut self, key: &[u8]) -> Option<(usize, usize)> {
        let slot = self.slot(key);
        let space = self.space(slot)?;
        let i = space.map.get_index_of(key)?;
        let expire_at = space.map[i].expire_at;
        if expire_at != 0 && expire_at <= self.now() {
            if !self.db.keeps_keys() {
                self.expire_now(Bytes::copy_from_slice(key));
            }
            return None;
        }
        Some((slot, i))
    }

    /// Reads a key for a command: expired keys are invisible (and deleted),
    /// the access clock is updated, and keyspace hits/misses are counted.
    pub fn get(&mut self, key: &[u8]) -> Option<&Entry> {
        let policy = self.db.policy();
        match self.live_index(key) {
            Some((slot, i)) => {
                self.db.stats.keyspace_hits.add(1);
                let no_touch = self.no_touch;
                let e = &mut self.space_mut(slot).map[i];
                if !no_touch {
                    evict::touch(e, policy);
                }
                Some(e)
            }
            None => {
                self.db.stats.keyspace_misses.add(1);
                None
            }
        }
    }

    /// Reads a key without counting it or touching its access clock
    /// (TYPE, OBJECT, EXISTS-like checks inside writes).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        let (slot, i) = self.live_index(key)?;
        Some(&self.space(slot)?.map[i])
    }

    pub fn exists(&mut self, key: &[u8]) -> bool {
        self.live_index(key).is_some()
    }

    /// Sets a live key's access field (LRU clock or LFU counter), for
    /// RESTORE's IDLETIME / FREQ. Like the touch of a read, this is not a
    /// keyspace change (no mutation, not replicated).
    pub fn set_access(&mut self, key: &[u8], access: u32) {
        if let Some((slot, i)) = self.live_index(key) {
            self.space_mut(slot).map[i].access = access;
        }
    }

    /// Deletes an expired key (counted as expired, replicated as a DEL).
    fn expire_now(&mut self, key: Bytes) {
        self.db.stats.expired_keys.fetch_add(1, Ordering::Relaxed);
        self.next_event(b'x', "expired");
        self.apply(Mutation::Del { key });
    }

    /// Records a mutation for replication without applying it here (PUBLISH:
    /// the node that runs the command delivers the message itself).
    pub fn log_only(&mut self, m: Mutation) {
        if self.collect_mutations {
            self.log_push(m);
        }
    }

    /// Names the keyspace event of the next `apply` (for commands whose event
    /// differs from the mutation's default, e.g. INCR -> "incrby").
    pub fn next_event(&mut self, class: u8, event: &'static str) {
        if self.collect_events {
            self.event_override = Some((class, event));
        }
    }

    /// The next `apply` emits no keyspace event of its own (PFCOUNT caching
    /// its estimate, PFDEBUG converting an HLL: Redis notifies nothing).
    pub fn quiet_next(&mut self) {
        self.next_event(0, "");
    }

    /// Emits an extra keyspace event (for example "rename_to").
    pub fn emit_event(&mut self, class: u8, event: &'static str, key: &Bytes) {
        if self.collect_events {
            self.events.push(KeyEvent {
                db: self.index,
                class,
                event,
                key: key.clone(),
            });
        }
    }

    fn push_events(
        &mut self,
        ev: Option<(u8, &'static str)>,
        existed: bool,
        key: &Bytes,
        other: Option<&Bytes>,
    ) {
        let target = other.unwrap_or(key).clone();
        // COPY ... REPLACE deletes the old key and adds the copy: "new"
        // either way, as Redis's dbAdd says.
        if (!existed || ev.is_some_and(|(_, name)| name == "copy_to")) && self.exists(&target) {
            self.events.push(KeyEvent {
                db: self.index,
                class: b'n',
                event: "new",
                key: target.clone(),
            });
        }
        let Some((class, name)) = ev else { return };
        let subject = if name == "copy_to" { &target } else { key };
        self.events.push(KeyEvent {
            db: self.index,
            class,
            event: name,
            key: subject.clone(),
        });
        if name == "rename_from" {
            self.events.push(KeyEvent {
                db: self.index,
                class,
                event: "rename_to",
                key: target,
            });
        } else if other.is_none()
            && class != b'g'
            && class != b'$'
            && class != b'x'
            && class != b'e'
            && !self.exists(key)
        {
            // A collection emptied by the mutation was deleted by it.
            self.events.push(KeyEvent {
                db: self.index,
                class: b'g',
                event: "del",
                key: key.clone(),
            });
        }
    }

    fn default_event(m: &Mutation) -> Option<(u8, &'static str)> {
        use Mutation::*;
        Some(match m {
            Put { value, .. } => match value {
                Value::Str(_) => (b'$', "set"),
                Value::List(_) => (b'l', "lpush"),
                Value::Hash(_) => (b'h', "hset"),
                Value::Set(_) => (b's', "sadd"),
                Value::ZSet(_) => (b'z', "zadd"),
                Value::Stream(_) => (b't', "xadd"),
            },
            SetStr { .. } => (b'$', "set"),
            Append { .. } => (b'$', "append"),
            SetRange { .. } => (b'$', "setrange"),
            Del { .. } => (b'g', "del"),
            Expire { at: 0, .. } => (b'g', "persist"),
            Expire { .. } => (b'g', "expire"),
            Rename { .. } => (b'g', "rename_from"),
            Copy { .. } => (b'g', "copy_to"),
            HSet { .. } => (b'h', "hset"),
            HDel { .. } => (b'h', "hdel"),
            Push { left: true, .. } => (b'l', "lpush"),
            Push { left: false, .. } => (b'l', "rpush"),
            Pop { left: true, .. } => (b'l', "lpop"),
            Pop { left: false, .. } => (b'l', "rpop"),
            LSet { .. } => (b'l', "lset"),
            LInsert { .. } => (b'l', "linsert"),
            LRem { .. } => (b'l', "lrem"),
            LTrim { .. } => (b'l', "ltrim"),
            SAdd { .. } => (b's', "sadd"),
            SRem { .. } => (b's', "srem"),
            ZAdd { .. } => (b'z', "zadd"),
            ZRem { .. } => (b'z', "zrem"),
            Stream { op, .. } => return op.event(),
            FlushAll
            | Publish { .. }
            | Script(_)
            | Select { .. }
            | Move { .. }
            | CopyDb { .. }
            | SwapDb { .. }
            | FlushDb => return None,
        })
    }

    /// The selected database's part of each locked shard, for
    /// whole-keyspace commands.
    pub fn shards(&self) -> impl Iterator<Item = (usize, &Space)> + '_ {
        let db = self.index;
        self.guards
            .iter()
            .map(move |(i, g)| (*i, g.space(db).unwrap_or(&EMPTY_SPACE)))
    }

    /// Every database's part of locked shard `index` that holds keys, with
    /// the database (a full sync's snapshot).
    pub fn shard_databases(&self, index: usize) -> Vec<(usize, &Space)> {
        self.guards
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, g)| g.spaces().filter(|(_, s)| !s.is_empty()).collect())
            .unwrap_or_default()
    }

    /// The selected database's part of shard `index`, if it is locked.
    pub fn shard(&self, index: usize) -> Option<&Space> {
        let db = self.index;
        self.guards
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, g)| g.space(db).unwrap_or(&EMPTY_SPACE))
    }

    // ---- applying mutations ----

    fn record_touch(&mut self, key: &Bytes) {
        if self.collect_touched {
            self.touched.push((self.index, key.clone()));
        }
    }

    /// Records `m` for replication, after a `Select` if the selected
    /// database is not the one the log is in.
    fn log_push(&mut self, m: Mutation) {
        if self.index != self.log_index {
            self.log_index = self.index;
            self.log.push(Mutation::Select {
                db: self.index as u32,
            });
        }
        self.log.push(m);
    }

    /// Applies one mutation. Returns the popped elements for `Pop`, else empty.
    ///
    /// The command that built the mutation has already checked types and
    /// conditions; on a type mismatch (possible only on a diverged replica) a
    /// collection mutation replaces the value with a fresh collection.
    pub fn apply(&mut self, m: Mutation) -> Vec<Elem> {
        if let Mutation::Publish {
            channel,
            payload,
            shard,
        } = &m
        {
            // Delivered by the commit observer; logged for replication.
            self.published
                .push((channel.clone(), payload.clone(), *shard));
            self.log_only(m);
            return Vec::new();
        }
        if let Mutation::Script(op) = &m {
            // Applied by the commit observer; logged for replication.
            self.scripts.push(op.clone());
            self.log_only(m);
            return Vec::new();
        }
        if let Mutation::Select { db } = m {
            // From the stream: what follows is in database `db`.
            self.index = db as usize;
            return Vec::new();
        }
        self.changes += 1;
        if m.whole_keyspace() || matches!(m, Mutation::Move { .. } | Mutation::CopyDb { .. }) {
            match &m {
                Mutation::FlushAll => {
                    self.flush_all();
                    self.db.signal_all_waited(None);
                }
                Mutation::FlushDb => {
                    self.flush_db();
                    self.db.signal_all_waited(Some(self.index));
                }
                Mutation::SwapDb { a, b } => self.swap_db(*a as usize, *b as usize),
                Mutation::Move { key, db } => self.move_key(key, *db as usize),
                Mutation::CopyDb { from, to, db } => self.copy_to_db(from, to, *db as usize),
                _ => unreachable!(),
            }
            if self.collect_mutations {
                self.log_push(m);
            }
            return Vec::new();
        }
        let (key, other) = m.keys();
        let key = key.clone();
        let other = other.cloned();
        self.record_touch(&key);
        if let Some(o) = &other {
            self.record_touch(o);
        }
        let event = if self.collect_events {
            let ev = match self.event_override.take() {
                Some((0, _)) => None,
                Some(ev) => Some(ev),
                None => Self::default_event(&m),
            };
            let existed =
                !matches!(m, Mutation::Del { .. }) && self.exists(other.as_ref().unwrap_or(&key));
            Some((ev, existed))
        } else {
            None
        };
        let out = if self.collect_mutations {
            let out = self.apply_inner(&m);
            self.log_push(m);
            out
        } else if let Mutation::Put {
            key,
            value,
            expire_at,
        } = m
        {
            self.put(&key, value, expire_at);
            Vec::new()
        } else {
            self.apply_inner(&m)
        };
        if let Some((ev, existed)) = event {
            self.push_events(ev, existed, &key, other.as_ref());
        }
        match other {
            Some(to) => self.db.signal_ready(self.index, &to),
            None => self.db.signal_ready(self.index, &key),
        }
        out
    }

    /// Whether `key` exists in database `db` (the selected one is kept).
    fn exists_in(&mut self, db: usize, key: &[u8]) -> bool {
        let keep = std::mem::replace(&mut self.index, db);
        let r = self.exists(key);
        self.index = keep;
        r
    }

    /// Watched keys of the databases `dbs` that exist in one of them
    /// (Redis's touchAllWatchedKeysInDb) are recorded as touched.
    fn touch_watched_in(&mut self, dbs: &[usize]) {
        if !self.collect_touched {
            return;
        }
        let watched = self
            .db
            .observer
            .get()
            .map(|o| o.watched_keys())
            .unwrap_or_default();
        for (d, k) in watched {
            if dbs.contains(&d) && dbs.iter().any(|&x| self.exists_in(x, &k)) {
                self.touched.push((d, k));
            }
        }
    }

    /// MOVE: the key leaves the selected database for database `to`.
    fn move_key(&mut self, key: &Bytes, to: usize) {
        let from = self.index;
        let Some(e) = self.remove_entry(key) else {
            return;
        };
        self.record_touch(key);
        self.index = to;
        let existed = self.collect_events && self.exists(key);
        self.insert_entry(key, e);
        self.record_touch(key);
        if self.collect_events {
            if !existed {
                self.emit_event(b'n', "new", key);
            }
            self.index = from;
            self.emit_event(b'g', "move_from", key);
            self.index = to;
            self.emit_event(b'g', "move_to", key);
        }
        self.db.signal_ready(to, key);
        self.index = from;
    }

    /// COPY ... DB: `from` of the selected database copied to `to` of
    /// database `db`.
    fn copy_to_db(&mut self, from: &Bytes, to: &Bytes, db: usize) {
        let src = self.index;
        let Some(e) = self.peek(from).cloned() else {
            return;
        };
        self.index = db;
        self.insert_entry(to, e);
        self.record_touch(to);
        if self.collect_events {
            // The old key (REPLACE) is deleted and the copy added: "new"
            // either way, as Redis's dbAdd says.
            self.emit_event(b'n', "new", to);
            self.emit_event(b'g', "copy_to", to);
        }
        self.db.signal_ready(db, to);
        self.index = src;
    }

    /// FLUSHDB: empties the selected database.
    fn flush_db(&mut self) {
        assert!(self.all_locked(), "FLUSHDB needs every shard locked");
        let db = self.index;
        self.touch_watched_in(&[db]);
        let mut freed = 0;
        let mut old = Vec::new();
        for (_, g) in self.guards.iter_mut() {
            if let Some(sp) = g.space_mut_opt(db) {
                freed += std::mem::take(&mut sp.used);
                old.push(std::mem::take(sp));
            }
        }
        self.free(freed, old);
    }

    /// SWAPDB: databases `a` and `b` trade their keys. Watchers of keys in
    /// either that exist in either are touched, and clients blocked in
    /// either on a key that now has data are served, as Redis 7.0 does.
    fn swap_db(&mut self, a: usize, b: usize) {
        assert!(self.all_locked(), "SWAPDB needs every shard locked");
        if a == b {
            return;
        }
        self.touch_watched_in(&[a, b]);
        for (_, g) in self.guards.iter_mut() {
            g.swap(a, b);
        }
        for d in [a, b] {
            for k in self.db.waited_in(d) {
                if self.exists_in(d, &k) {
                    self.db.push_ready((d, k));
                }
            }
        }
    }

    /// Gives back `freed` bytes of flushed databases; large ones are freed
    /// off the command path.
    fn free(&mut self, freed: usize, old: Vec<Space>) {
        self.db.used.sub(freed as u64);
        self.flushed = true;
        if freed > 64 * 1024 * 1024 {
            std::thread::spawn(move || drop(old));
        }
    }

    fn flush_all(&mut self) {
        assert!(self.all_locked(), "FLUSHALL needs every shard locked");
        if self.collect_touched {
            let watched = self
                .db
                .observer
                .get()
                .map(|o| o.watched_keys())
                .unwrap_or_default();
            for (d, k) in watched {
                if self.exists_in(d, &k) {
                    self.touched.push((d, k));
                }
            }
        }
        let mut freed = 0;
        let mut old = Vec::new();
        for (_, g) in self.guards.iter_mut() {
            freed += std::mem::take(&mut g.main.used);
            old.push(std::mem::take(&mut g.main));
            for (_, sp) in std::mem::take(&mut g.others) {
                freed += sp.used;
                old.push(*sp);
            }
        }
        self.free(freed, old);
    }

    fn adjust(&mut self, slot: usize, before: usize, after: usize) {
        let g = self.space_mut(slot);
        g.used = g.used + after - before;
        if after >= before {
            self.db.used.add((after - before) as u64);
        } else {
            self.db.used.sub((before - after) as u64);
        }
    }

    /// Removes a key; returns its entry.
    fn remove_entry(&mut self, key: &[u8]) -> Option<Entry> {
        let slot = self.slot(key);
        let db = self.index;
        let g = self.guards[slot].1.space_mut_opt(db)?;
        let (k, e) = g.map.swap_remove_entry(key)?;
        if e.expire_at != 0 {
            g.volatile.swap_remove(key);
        }
        let bytes = entry_bytes(k.len(), &e);
        self.adjust(slot, bytes, 0);
        Some(e)
    }

    /// Inserts or replaces a key (one probe of the shard's map to find it).
    fn insert_entry(&mut self, key: &[u8], mut e: Entry) {
        let slot = self.slot(key);
        let after = entry_bytes(key.len(), &e);
        let has_ttl = e.expire_at != 0;
        let db = self.db;
        let g = self.guards[slot].1.space_mut(self.index);
        let before = match g.map.get_index_of(key) {
            Some(i) => {
                e.scan_slot = g.map[i].scan_slot;
                let old = std::mem::replace(&mut g.map[i], e);
                g.ttl_changed(key, old.expire_at != 0, has_ttl);
                entry_bytes(key.len(), &old)
            }
            None => {
                e.scan_slot = db.scan_slot(key);
                g.ttl_changed(key, false, has_ttl);
                g.map.insert(key.into(), e);
                0
            }
        };
        self.adjust(slot, before, after);
    }

    /// Runs `f` on an existing live entry, keeping accounting and the volatile
    /// index right and deleting collections that became empty.
    fn modify<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Entry) -> R) -> Option<R> {
        let (slot, i) = self.live_index(key)?;
        Some(self.modify_at(slot, i, key, f))
    }

    /// `modify` for the live entry at `(slot, i)` (from `live_index`).
    fn modify_at<R>(
        &mut self,
        slot: usize,
        i: usize,
        key: &[u8],
        f: impl FnOnce(&mut Entry) -> R,
    ) -> R {
        let g = self.space_mut(slot);
        let (k, e) = g.map.get_index_mut(i).unwrap();
        let before = entry_bytes(k.len(), e);
        let had_ttl = e.expire_at != 0;
        let r = f(e);
        let after = entry_bytes(k.len(), e);
        let has_ttl = e.expire_at != 0;
        let empty = e.value.is_empty_collection();
        g.ttl_changed(key, had_ttl, has_ttl);
        self.adjust(slot, before, after);
        if empty {
            self.remove_entry(key);
        }
        r
    }

    /// Gets the entry as a collection of the wanted kind, creating it (or
    /// replacing a value of another kind) first, then runs `f` on it.
    fn modify_or_create<R>(
        &mut self,
        key: &[u8],
        make: impl Fn() -> Value,
        is_kind: impl Fn(&Value) -> bool,
        f: impl FnOnce(&mut Value) -> R,
    ) -> R {
        let ok = matches!(self.peek(key), Some(e) if is_kind(&e.value));
        if !ok {
            let access = evict::initial_access(self.db.policy());
            self.insert_entry(
                key,
                Entry {
                    value: make(),
                    expire_at: 0,
                    access,
                    scan_slot: 0,
                },
            );
        }
        self.modify(key, |e| f(&mut e.value))
            .expect("entry just ensured")
    }

    /// Inserts a whole value (a `Put`).
    fn put(&mut self, key: &[u8], value: Value, expire_at: u64) {
        let access = evict::initial_access(self.db.policy());
        self.insert_entry(
            key,
            Entry {
                value,
                expire_at,
                access,
                scan_slot: 0,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Records every commit's mutations.
    #[derive(Default)]
    struct Recorder(parking_lot::Mutex<Vec<Vec<Mutation>>>);

    impl CommitObserver for Recorder {
        fn wants_touched(&self) -> bool {
            false
        }
        fn wants_mutations(&self, _: Origin) -> bool {
            true
        }
        fn wants_events(&self) -> bool {
            false
        }
        fn on_commit(&self, commit: &Commit<'_>) {
            self.0.lock().push(commit.mutations.take());
        }
    }

    #[test]
    fn commit_ends_one_commit_and_keeps_the_shards() {
        let db = Db::new();
        let rec = Arc::new(Recorder::default());
        db.set_observer(rec.clone());
        let mut ks = db.lock_all();
        ks.select(1);
        ks.apply(Mutation::SetStr {
            key: b("a"),
            value: b("1"),
            expire: ExpireSet::Keep,
        });
        let first_now = ks.now();
        ks.commit();
        // The next command through the view starts afresh: database 0, a
        // log of its own (no Select carried over), its own time.
        assert_eq!(ks.selected(), 0);
        assert_eq!(ks.now.get(), 0);
        ks.apply(Mutation::SetStr {
            key: b("b"),
            value: b("2"),
            expire: ExpireSet::Keep,
        });
        assert!(ks.now() >= first_now);
        // Still holding every shard: nobody else can lock one.
        assert!(db.shards[0].try_lock().is_none());
        drop(ks);
        let commits = rec.0.lock();
        assert_eq!(commits.len(), 2, "{commits:?}");
        assert!(
            matches!(commits[0][0], Mutation::Select { db: 1 }),
            "{commits:?}"
        );
        assert!(matches!(&commits[0][1], Mutation::SetStr { key, .. } if key == "a"));
        assert_eq!(commits[1].len(), 1, "{commits:?}");
        assert!(matches!(&commits[1][0], Mutation::SetStr { key, .. } if key == "b"));
        assert_eq!(db.stats.changes.get(), 2);
    }

    #[test]
    fn accounting_returns_to_zero() {
        let db = Db::new();
        {
            let mut ks = db.lock(&["a", "l", "h"]);
            ks.apply(Mutation::SetStr {
                key: b("a"),
                value: b("hello"),
                expire: ExpireSet::At(now_ms() + 100_000),
            });
            ks.apply(Mutation::Push {
                key: b("l"),
                left: true,
                elems: vec![b("x"), b("y")],
            });
            ks.apply(Mutation::HSet {
                key: b("h"),
                pairs: vec![(b("f"), b("v"))],
            });
        }
        assert!(db.used_memory() > 0);
        {
            let mut ks = db.lock(&["a", "l", "h"]);
            ks.apply(Mutation::Pop {
                key: b("l"),
                left: false,
                count: 5,
            });
            ks.apply(Mutation::HDel {
                key: b("h"),
                fields: vec![b("f")],
            });
            ks.apply(Mutation::Del { key: b("a") });
            assert!(!ks.exists(b"l"));
            assert!(!ks.exists(b"h"));
        }
        assert_eq!(db.used_memory(), 0);
        assert_eq!(db.len(), 0);
    }

    #[test]
    fn expired_keys_are_invisible_and_deleted() {
        let db = Db::new();
        {
            let mut ks = db.lock(&["k"]);
            ks.apply(Mutation::SetStr {
                key: b("k"),
                value: b("v"),
                expire: ExpireSet::At(1),
            });
        }
        let mut ks = db.lock(&["k"]);
        assert!(ks.get(b"k").is_none());
        drop(ks);
        assert_eq!(db.len(), 0);
        assert_eq!(db.stats.expired_keys.load(Ordering::Relaxed), 1);
        assert_eq!(db.used_memory(), 0);
    }

    #[test]
    fn active_expiry_deletes_without_access() {
        let db = Db::new();
        for i in 0..500 {
            let k = Bytes::from(format!("k{i}"));
            let mut ks = db.lock(&[&k]);
            ks.apply(Mutation::SetStr {
                key: k.clone(),
                value: b("v"),
                expire: ExpireSet::At(1),
            });
        }
        let mut n = 0;
        for _ in 0..100 {
            n += db.active_expire_cycle(SHARDS);
        }
        assert_eq!(n, 500);
        assert_eq!(db.len(), 0);
    }
}
