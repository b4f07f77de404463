//! The replication log: an ordered, bounded backlog of committed mutation
//! batches, fed by the engine's commit observer.
//!
//! # Positions
//! Every log entry has an `offset` (contiguous, +1 per committed write, never
//! reused) and a `tag` (the epoch of the master that created it). A node's
//! position is the (offset, tag) of the last entry it applied. Entries of one
//! epoch are created by one master only, on top of the log it had when it was
//! elected, so two logs that hold an entry with the same (offset, tag) are
//! identical up to it (Raft's log-matching property). A follower whose
//! position is in the master's backlog resumes right after it (partial sync);
//! any other follower gets a full sync.
//!
//! # Ordering
//! `on_commit` runs while the committing command still holds its shard locks,
//! and assigns the offset under the log mutex: two commits touching the same
//! key are logged in the order they were applied. A MULTI/EXEC runs under all
//! shard locks and is one commit, hence one entry, applied atomically by the
//! followers too.
//!
//! # Full sync invariant
//! The snapshot is taken shard by shard; while shard `i` is locked the master
//! reads the log position `L_i`. Every logged commit that touched shard `i`
//! holds shard `i`'s lock while it is logged, so the snapshot of shard `i`
//! contains exactly the effects of the entries `<= L_i` on shard `i`'s keys.
//! The live entries that flow meanwhile are sent filtered: a mutation of
//! entry `o` on a key of shard `s` is sent iff shard `s` has been snapshotted
//! and `o > L_s` (see [`filter`]); the snapshot of every shard is sent before
//! any live mutation of that shard. After the last shard the follower's
//! keyspace equals the master's at `L_63`, the position the full sync ends at;
//! the log then streams unfiltered from `L_63 + 1`. No mutation is lost (it is
//! either in its shard's snapshot or sent live) and none is applied twice.

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::wire;
use crate::engine::{Commit, Db, Mutation, Value};

/// One committed write (one command, or one transaction), as the encoded
/// `LogEntry` the stream sends. The master encodes it once, at commit; a
/// follower keeps the bytes it received. Cloning shares the bytes.
#[derive(Clone)]
pub struct LogEntry {
    pub offset: u64,
    pub tag: u64,
    /// Master commit time, µs since the Unix epoch.
    pub ts_us: u64,
    pub encoded: Bytes,
}

/// Backlog bytes charged per entry on top of its encoding: its slot in the
/// backlog. (A follower's entries are slices of the messages it received,
/// which stay allocated until their last entry is trimmed.)
const ENTRY_OVERHEAD: usize = std::mem::size_of::<LogEntry>();

impl LogEntry {
    fn cost(&self) -> usize {
        self.encoded.len() + ENTRY_OVERHEAD
    }

    /// The entry's mutations, decoded from its bytes (the rare paths that
    /// look inside entries: WATCH checks, full-sync filtering).
    pub fn mutations(&self) -> Result<Vec<Mutation>, String> {
        wire::decode_entry(self.encoded.clone()).map(|d| d.mutations)
    }
}

/// Size of the blocks local commits are encoded into: entries are slices of
/// a block, so the backlog allocates and frees one block per this many bytes
/// rather than once per entry.
const ARENA_BLOCK: usize = 64 * 1024;

struct Inner {
    entries: VecDeque<LogEntry>,
    /// The block local commits are encoded into (see [`ARENA_BLOCK`]).
    arena: BytesMut,
    bytes: usize,
    /// Position just before `entries[0]`.
    base: (u64, u64),
    /// Position of the last entry (or `base` when empty).
    last: (u64, u64),
}

impl Inner {
    /// Tag of the entry at `offset`, if still held (or the base/last position).
    fn tag_at(&self, offset: u64) -> Option<u64> {
        if offset == self.last.0 {
            return Some(self.last.1);
        }
        if offset == self.base.0 {
            return Some(self.base.1);
        }
        if offset > self.base.0 && offset < self.last.0 {
            return self
                .entries
                .get((offset - self.base.0 - 1) as usize)
                .map(|e| e.tag);
        }
        None
    }
}

thread_local! {
    /// Set while this thread applies changes that are not local commits
    /// (the replication stream, snapshot chunks, cache fills): not logged.
    static APPLYING: Cell<bool> = const { Cell::new(false) };
    /// The offset of the last commit logged by this thread (for forwarded writes).
    static LAST_COMMIT: Cell<u64> = const { Cell::new(0) };
    /// A commit's encoded mutations, made before the log lock is taken.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Resets and reads the calling thread's last logged commit offset.
pub fn take_last_commit() -> u64 {
    LAST_COMMIT.with(|c| c.replace(0))
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub struct ReplLog {
    inner: Mutex<Inner>,
    /// Mirror of `inner.last.0`, readable without the lock.
    last_offset: AtomicU64,
    /// The tag local commits are logged with: the epoch while master, 0 otherwise.
    write_tag: AtomicU64,
    /// Wakes stream senders and read-your-writes waiters on every append or
    /// reset. Wait through [`ReplLog::listen`].
    notify: Notify,
    /// Tasks between `listen` and the end of their wait: an append skips
    /// the wake-up (a lock and an atomic in `Notify`) when there are none.
    listeners: AtomicUsize,
    max_bytes: AtomicUsize,
    /// A local commit happened while not master, or a full sync was cut short:
    /// this node's keyspace no longer matches its log position.
    pub diverged: AtomicBool,
    pub trimmed: AtomicU64,
    /// Local commits while not master (the fencing invariant says 0).
    pub unfenced_writes: AtomicU64,
}

/// Counts a listener until its wait ends (or is dropped).
struct Listening<'a>(&'a AtomicUsize);

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why entries cannot be read from a cursor.
#[derive(Debug)]
pub enum ReadError {
    /// The cursor fell out of the backlog (trimmed): the follower needs a full sync.
    Trimmed,
    /// The log was reset under the cursor (this node followed a full sync).
    Reset,
}

impl ReplLog {
    pub fn new(max_bytes: u64) -> Self {
        ReplLog {
            inner: Mutex::new(Inner {
                entries: VecDeque::new(),
                arena: BytesMut::new(),
                bytes: 0,
                base: (0, 0),
                last: (0, 0),
            }),
            last_offset: AtomicU64::new(0),
            write_tag: AtomicU64::new(0),
            notify: Notify::new(),
            listeners: AtomicUsize::new(0),
            max_bytes: AtomicUsize::new(max_bytes.max(1024 * 1024) as usize),
            diverged: AtomicBool::new(false),
            trimmed: AtomicU64::new(0),
            unfenced_writes: AtomicU64::new(0),
        }
    }

    /// Registers for the next append or reset. Check the log after this
    /// call and await the returned future only if there is nothing to do:
    /// an append after the check wakes it.
    pub fn listen(&self) -> impl std::future::Future<Output = ()> + '_ {
        self.listeners.fetch_add(1, Ordering::SeqCst);
        let guard = Listening(&self.listeners);
        let mut notified = Box::pin(self.notify.notified());
        notified.as_mut().enable();
        // Pairs with the fence in `wake`: either the appender sees this
        // listener, or the caller's check after this sees the append.
        std::sync::atomic::fence(Ordering::SeqCst);
        async move {
            notified.await;
            drop(guard);
        }
    }

    /// Wakes the listeners, if any.
    fn wake(&self) {
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.listeners.load(Ordering::SeqCst) > 0 {
            self.notify.notify_waiters();
        }
    }

    pub fn last_offset(&self) -> u64 {
        self.last_offset.load(Ordering::Acquire)
    }

    /// The position of the last entry (offset, tag).
    pub fn position(&self) -> (u64, u64) {
        self.inner.lock().last
    }

    /// (first offset held, number of entries, bytes) for INFO.
    pub fn backlog_info(&self) -> (u64, usize, usize) {
        let g = self.inner.lock();
        (g.base.0 + 1, g.entries.len(), g.bytes)
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// Starts logging local commits with `tag` (becoming master), or stops (`0`).
    /// A diverged node starts a fresh history so every follower full-syncs.
    pub fn set_write_tag(&self, tag: u64) {
        let mut g = self.inner.lock();
        if tag != 0 && self.diverged.swap(false, Ordering::AcqRel) {
            let off = g.last.0;
            g.entries.clear();
            g.bytes = 0;
            g.base = (off, tag);
            g.last = (off, tag);
        }
        self.write_tag.store(tag, Ordering::Release);
        drop(g);
        self.wake();
    }

    pub fn write_tag(&self) -> u64 {
        self.write_tag.load(Ordering::Acquire)
    }

    /// Whether the commit being opened must record its mutations: every local
    /// commit does (to log it, or to notice a write while not master); a
    /// follower applying the stream logs the entries itself.
    pub fn wants_mutations(&self) -> bool {
        !APPLYING.with(|a| a.get())
    }

    /// Appends entries received from the master (already applied here).
    pub fn append_remote(&self, entries: Vec<LogEntry>) {
        if entries.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        for e in entries {
            if e.offset != g.last.0 + 1 {
                g.entries.clear();
                g.bytes = 0;
                g.base = (e.offset - 1, 0);
            }
            g.last = (e.offset, e.tag);
            g.bytes += e.cost();
            g.entries.push_back(e);
        }
        self.trim(&mut g);
        self.last_offset.store(g.last.0, Ordering::Release);
        drop(g);
        self.wake();
    }

    /// Drops the oldest entries while the backlog is over its size.
    fn trim(&self, g: &mut Inner) {
        let max = self.max_bytes.load(Ordering::Relaxed);
        while g.bytes > max && g.entries.len() > 1 {
            let e = g.entries.pop_front().unwrap();
            g.bytes -= e.cost();
            g.base = (e.offset, e.tag);
            self.trimmed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The commit observer's part: logs the commit's mutations.
    pub fn on_commit(&self, c: &Commit<'_>) {
        let muts = c.mutations.take();
        if muts.is_empty() {
            return;
        }
        if APPLYING.with(|a| a.get()) {
            return;
        }
        let tag = self.write_tag.load(Ordering::Acquire);
        if tag == 0 {
            self.unfenced_writes.fetch_add(1, Ordering::Relaxed);
            if !self.diverged.swap(true, Ordering::AcqRel) {
                tracing::warn!(
                    "a local write committed while not master; this node will full-sync"
                );
            }
            return;
        }
        let ts = now_us();
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            scratch.clear();
            wire::encode_mutations(&muts, &mut scratch);
            drop(muts);
            let mut g = self.inner.lock();
            let offset = g.last.0 + 1;
            // At most 30 bytes of position fields, then the mutations.
            let need = 30 + scratch.len();
            if g.arena.capacity() < need {
                g.arena = BytesMut::with_capacity(need.max(ARENA_BLOCK));
            }
            wire::encode_position(offset, tag, ts, &mut g.arena);
            g.arena.put_slice(&scratch);
            let encoded = g.arena.split().freeze();
            let e = LogEntry {
                offset,
                tag,
                ts_us: ts,
                encoded,
            };
            g.bytes += e.cost();
            g.entries.push_back(e);
            g.last = (offset, tag);
            self.trim(&mut g);
            self.last_offset.store(offset, Ordering::Release);
            drop(g);
            LAST_COMMIT.with(|l| l.set(offset));
        });
        self.wake();
    }

    /// Whether a follower at `pos` can resume from the backlog.
    pub fn can_resume(&self, pos: (u64, u64)) -> bool {
        if pos.0 == 0 {
            return false;
        }
        self.inner.lock().tag_at(pos.0) == Some(pos.1)
    }

    /// Up to `max` entries from offset `from` (inclusive) to `upto` (inclusive).
    pub fn read(
        &self,
        from: u64,
        upto: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, ReadError> {
        let g = self.inner.lock();
        if from > g.last.0 + 1 {
            return Err(ReadError::Reset);
        }
        if from <= g.base.0 {
            return Err(ReadError::Trimmed);
        }
        let start = (from - g.base.0 - 1) as usize;
        let mut out = Vec::new();
        let mut bytes = 0;
        for e in g.entries.iter().skip(start) {
            if e.offset > upto || out.len() >= max || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            bytes += e.cost();
            out.push(e.clone());
        }
        Ok(out)
    }

    /// Whether any of `keys` may have been written after position `pos`:
    /// true if an entry after it names one of them (or flushes everything),
    /// or if `pos` is not in this log's history or no longer in the backlog.
    pub fn touched_since(&self, pos: (u64, u64), keys: &[Bytes]) -> bool {
        let g = self.inner.lock();
        if pos == g.last {
            return false;
        }
        if g.tag_at(pos.0) != Some(pos.1) {
            return true;
        }
        let start = (pos.0 - g.base.0) as usize;
        g.entries.iter().skip(start).any(|e| {
            // An entry that cannot be decoded counts as touching everything.
            e.mutations().map_or(true, |muts| {
                muts.iter().any(|m| match m {
                    Mutation::FlushAll => true,
                    Mutation::Publish { .. } => false,
                    _ => {
                        let (a, b) = m.keys();
                        keys.contains(a) || b.is_some_and(|b| keys.contains(b))
                    }
                })
            })
        })
    }

    /// Tag of the entry at `offset`, if still held (or the base/last position).
    pub fn tag_at(&self, offset: u64) -> Option<u64> {
        self.inner.lock().tag_at(offset)
    }

    /// Forgets the backlog and sets the position (follower: start or end of a full sync).
    pub fn reset_to(&self, pos: (u64, u64)) {
        let mut g = self.inner.lock();
        g.entries.clear();
        g.bytes = 0;
        g.base = pos;
        g.last = pos;
        self.last_offset.store(pos.0, Ordering::Release);
        drop(g);
        self.wake();
    }
}

/// Applies mutations locally without logging them and without marking the
/// node diverged: snapshot chunks and filtered entries of a full sync (the
/// follower sets its log position itself), and changes every node makes on
/// its own (the upstream tier's cache fills and invalidation drops).
pub fn apply_unlogged(db: &Db, muts: Vec<Mutation>) {
    if muts.is_empty() {
        return;
    }
    APPLYING.with(|a| a.set(true));
    {
        let mut ks = lock_for(db, muts.iter());
        for m in muts {
            ks.apply(m);
        }
        // The commit observer runs here, with APPLYING set.
    }
    APPLYING.with(|a| a.set(false));
}

/// Locks the shards `muts` touch (all of them for a FLUSHALL).
fn lock_for<'d, 'm>(
    db: &'d Db,
    muts: impl Iterator<Item = &'m Mutation> + Clone,
) -> crate::engine::Keys<'d> {
    if muts.clone().any(|m| matches!(m, Mutation::FlushAll)) {
        return db.lock_all();
    }
    let mut keys: Vec<&Bytes> = Vec::new();
    for m in muts {
        if matches!(m, Mutation::Publish { .. }) {
            continue;
        }
        let (a, b) = m.keys();
        keys.push(a);
        if let Some(b) = b {
            keys.push(b);
        }
    }
    db.lock(&keys)
}

/// Applies stream entries on a follower, several under one lock (each entry
/// stays atomic), and appends them to this node's log.
pub fn apply_remote(db: &Db, log: &ReplLog, entries: Vec<(LogEntry, Vec<Mutation>)>) {
    const PER_LOCK: usize = 128;
    let mut it = entries.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<_> = it.by_ref().take(PER_LOCK).collect();
        let mut logged = Vec::with_capacity(chunk.len());
        APPLYING.with(|a| a.set(true));
        {
            let mut ks = lock_for(db, chunk.iter().flat_map(|e| e.1.iter()));
            for (e, muts) in chunk {
                for m in muts {
                    ks.apply(m);
                }
                logged.push(e);
            }
        }
        APPLYING.with(|a| a.set(false));
        log.append_remote(logged);
    }
}

/// Empties the keyspace without logging (a follower starting a full sync).
pub fn flush_unlogged(db: &Db) {
    apply_unlogged(db, vec![Mutation::FlushAll]);
}

/// What to do with a live mutation during a full sync.
pub enum Filtered {
    Send,
    Skip,
    /// Send this instead (the part of a cross-shard rename that the snapshot lacks).
    Replace(Mutation),
    /// The snapshot cannot be completed consistently: restart the full sync.
    Abort(&'static str),
}

/// Decides whether mutation `m` of entry `offset` must be sent during a full
/// sync, given the cut of each shard (`Some(L_i)` once snapshotted).
pub fn filter(db: &Db, m: &Mutation, offset: u64, cuts: &[Option<u64>]) -> Filtered {
    let live = |key: &[u8]| matches!(cuts[db.shard_index(key)], Some(l) if offset > l);
    match m {
        // A message is delivered whenever it arrives; it touches no key.
        Mutation::Publish { .. } => Filtered::Send,
        Mutation::FlushAll => {
            if cuts.iter().all(|c| c.is_none_or(|l| offset > l)) {
                Filtered::Send
            } else {
                Filtered::Abort("FLUSHALL during the snapshot")
            }
        }
        Mutation::Rename { from, to } | Mutation::Copy { from, to } => {
            match (live(from), live(to)) {
                (true, true) => Filtered::Send,
                (false, false) => Filtered::Skip,
                (true, false) => match m {
                    Mutation::Rename { from, .. } => {
                        Filtered::Replace(Mutation::Del { key: from.clone() })
                    }
                    _ => Filtered::Skip,
                },
                (false, true) => Filtered::Abort("cross-shard RENAME/COPY during the snapshot"),
            }
        }
        _ => {
            if live(m.keys().0) {
                Filtered::Send
            } else {
                Filtered::Skip
            }
        }
    }
}

/// A bounded sample of replication lag (commit at master -> apply here), µs.
pub struct LagSamples {
    ring: Mutex<(Vec<u32>, usize)>,
}

const LAG_RING: usize = 100_000;

impl Default for LagSamples {
    fn default() -> Self {
        LagSamples {
            ring: Mutex::new((Vec::new(), 0)),
        }
    }
}

impl LagSamples {
    pub fn record(&self, us: u64) {
        let v = us.min(u32::MAX as u64) as u32;
        let mut g = self.ring.lock();
        if g.0.len() < LAG_RING {
            g.0.push(v);
        } else {
            let i = g.1;
            g.0[i] = v;
            g.1 = (i + 1) % LAG_RING;
        }
    }

    /// (p50, p99, count) in µs over the retained samples.
    pub fn percentiles(&self) -> (u64, u64, usize) {
        let mut v = self.ring.lock().0.clone();
        if v.is_empty() {
            return (0, 0, 0);
        }
        v.sort_unstable();
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as u64;
        (p(0.5), p(0.99), v.len())
    }

    pub fn clear(&self) {
        let mut g = self.ring.lock();
        g.0.clear();
        g.1 = 0;
    }
}

/// A keyspace digest: order-independent over keys, order-dependent only where
/// the type is ordered (lists, sorted sets). Equal keyspaces, equal digests.
pub fn digest(db: &Db) -> String {
    use std::hash::{Hash, Hasher};
    let mut acc: [u64; 2] = [0, 0];
    let mut keys = 0u64;
    for i in 0..crate::engine::SHARDS {
        let ks = db.lock_indices(&[i]);
        let Some(shard) = ks.shard(i) else { continue };
        for (k, e) in shard.iter() {
            keys += 1;
            for (seed, slot) in acc.iter_mut().enumerate() {
                let mut h = std::hash::DefaultHasher::new();
                seed.hash(&mut h);
                k.hash(&mut h);
                e.expire_at.hash(&mut h);
                match &e.value {
                    Value::Str(s) => (0u8, &s[..]).hash(&mut h),
                    Value::List(l) => {
                        1u8.hash(&mut h);
                        for x in l.iter() {
                            x.hash(&mut h);
                        }
                    }
                    Value::Hash(hv) => {
                        let mut x: u64 = 0;
                        for (f, v) in hv.iter() {
                            let mut eh = std::hash::DefaultHasher::new();
                            (f, v).hash(&mut eh);
                            x = x.wrapping_add(eh.finish());
                        }
                        (2u8, x, hv.len()).hash(&mut h);
                    }
                    Value::Set(s) => {
                        let mut x: u64 = 0;
                        for m in s.iter() {
                            let mut eh = std::hash::DefaultHasher::new();
                            m.hash(&mut eh);
                            x = x.wrapping_add(eh.finish());
                        }
                        (3u8, x, s.len()).hash(&mut h);
                    }
                    Value::ZSet(z) => {
                        4u8.hash(&mut h);
                        for (m, s) in z.iter() {
                            (m, s.to_bits()).hash(&mut h);
                        }
                    }
                }
                *slot = slot.wrapping_add(h.finish());
            }
        }
    }
    if keys == 0 {
        return "0".repeat(40);
    }
    format!("{:016x}{:016x}{:08x}", acc[0], acc[1], keys as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ExpireSet;
    use std::sync::Arc;

    fn set(k: &str) -> Mutation {
        Mutation::SetStr {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::from_static(b"v"),
            expire: ExpireSet::Clear,
        }
    }

    fn entry(offset: u64, tag: u64) -> LogEntry {
        let mut encoded = Vec::new();
        wire::encode_position(offset, tag, 0, &mut encoded);
        wire::encode_mutations(&[set("k")], &mut encoded);
        LogEntry {
            offset,
            tag,
            ts_us: 0,
            encoded: encoded.into(),
        }
    }

    #[test]
    fn positions_resume_only_on_the_same_history() {
        let log = ReplLog::new(0);
        log.append_remote(
            (1..=10)
                .map(|o| entry(o, if o <= 5 { 7 } else { 9 }))
                .collect(),
        );
        assert_eq!(log.position(), (10, 9));
        assert!(log.can_resume((10, 9)));
        assert!(log.can_resume((5, 7)));
        assert!(log.can_resume((6, 9)));
        assert!(
            !log.can_resume((6, 7)),
            "same offset, other epoch: diverged"
        );
        assert!(!log.can_resume((11, 9)), "ahead");
        assert!(!log.can_resume((0, 0)), "no position");
        let v = log.read(4, u64::MAX, 100, usize::MAX).unwrap();
        assert_eq!(v.first().unwrap().offset, 4);
        assert_eq!(v.last().unwrap().offset, 10);
        assert_eq!(log.read(6, 8, 100, usize::MAX).unwrap().len(), 3);
        assert!(log.read(12, u64::MAX, 100, usize::MAX).is_err());
    }

    #[test]
    fn backlog_is_bounded_by_bytes() {
        let log = ReplLog::new(1024 * 1024);
        let n = 1024 * 1024 / entry(1, 1).cost() + 500;
        log.append_remote((1..=n as u64).map(|o| entry(o, 1)).collect());
        let (first, len, bytes) = log.backlog_info();
        assert!(bytes <= 1024 * 1024);
        assert_eq!(first as usize + len - 1, n);
        assert!(matches!(
            log.read(1, u64::MAX, 10, usize::MAX),
            Err(ReadError::Trimmed)
        ));
        assert!(!log.can_resume((1, 1)));
        assert!(log.can_resume((n as u64 - 1, 1)));
    }

    #[test]
    fn local_commits_are_logged_only_while_master() {
        let db = Db::new();
        let log = Arc::new(ReplLog::new(0));
        struct Obs(Arc<ReplLog>);
        impl crate::engine::CommitObserver for Obs {
            fn wants_touched(&self) -> bool {
                false
            }
            fn wants_mutations(&self) -> bool {
                self.0.wants_mutations()
            }
            fn wants_events(&self) -> bool {
                false
            }
            fn on_commit(&self, c: &Commit<'_>) {
                self.0.on_commit(c)
            }
        }
        db.set_observer(Arc::new(Obs(log.clone())));
        db.lock(&["a"]).apply(set("a"));
        assert_eq!(log.last_offset(), 0);
        assert!(log.diverged.load(Ordering::Relaxed));
        assert_eq!(log.unfenced_writes.load(Ordering::Relaxed), 1);
        log.set_write_tag(42);
        assert!(
            !log.diverged.load(Ordering::Relaxed),
            "a new history starts"
        );
        {
            let mut ks = db.lock(&["a", "b"]);
            ks.apply(set("a"));
            ks.apply(set("b"));
        }
        assert_eq!(log.position(), (1, 42));
        assert_eq!(take_last_commit(), 1);
        let e = log.read(1, 1, 1, usize::MAX).unwrap();
        assert_eq!(e[0].mutations().unwrap().len(), 2, "one commit, one entry");
        let d = wire::decode_entry(e[0].encoded.clone()).unwrap();
        assert_eq!(
            (d.offset, d.tag),
            (1, 42),
            "the encoding carries the position"
        );
        // A follower's stream apply is not logged as a local commit.
        log.set_write_tag(0);
        apply_remote(&db, &log, vec![(entry(2, 43), vec![set("c")])]);
        assert_eq!(log.position(), (2, 43));
        assert!(!log.diverged.load(Ordering::Relaxed));
    }

    #[test]
    fn full_sync_filter_sends_each_mutation_once() {
        let db = Db::new();
        let mut cuts = vec![None; crate::engine::SHARDS];
        let k = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        // Find two keys in different shards.
        let a = k("a");
        let b = (0..)
            .map(|i| k(&format!("b{i}")))
            .find(|b| db.shard_index(b) != db.shard_index(&a))
            .unwrap();
        let (sa, sb) = (db.shard_index(&a), db.shard_index(&b));
        cuts[sa] = Some(10);
        // Key in a snapshotted shard: only after its cut.
        assert!(matches!(filter(&db, &set("a"), 10, &cuts), Filtered::Skip));
        assert!(matches!(filter(&db, &set("a"), 11, &cuts), Filtered::Send));
        // Key in a shard not yet snapshotted: the snapshot will have it.
        let mb = Mutation::Del { key: b.clone() };
        assert!(matches!(filter(&db, &mb, 11, &cuts), Filtered::Skip));
        // Rename from a snapshotted shard to a later one: only the delete.
        let r = Mutation::Rename {
            from: a.clone(),
            to: b.clone(),
        };
        assert!(matches!(
            filter(&db, &r, 11, &cuts),
            Filtered::Replace(Mutation::Del { .. })
        ));
        // The other way round cannot be completed: restart.
        let r2 = Mutation::Rename { from: b, to: a };
        assert!(matches!(filter(&db, &r2, 11, &cuts), Filtered::Abort(_)));
        cuts[sb] = Some(12);
        assert!(matches!(filter(&db, &r2, 13, &cuts), Filtered::Send));
        assert!(matches!(
            filter(&db, &Mutation::FlushAll, 11, &cuts),
            Filtered::Abort(_)
        ));
        assert!(matches!(
            filter(&db, &Mutation::FlushAll, 13, &cuts),
            Filtered::Send
        ));
    }
}
