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
//! The full-sync filter is in [`super::fullsync`]; lag samples in
//! [`super::lag`].

use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::wire;
use crate::engine::{Commit, CommitObserver, Db, Mutation, Origin};

/// One committed write (one command, or one transaction), as the encoded
/// `LogEntry` the stream sends: a view the rare readers get (WATCH checks,
/// full-sync filtering, tests). The log itself keeps entries as frames in
/// shared segments (see [`Inner`]).
#[derive(Clone)]
pub struct LogEntry {
    pub offset: u64,
    pub tag: u64,
    pub encoded: Bytes,
}

impl LogEntry {
    /// The entry's mutations, decoded from its bytes.
    pub fn mutations(&self) -> Result<Vec<Mutation>, String> {
        wire::decode_entry(self.encoded.clone()).map(|d| d.mutations)
    }
}

/// Where one entry's frame is: bytes `start..end` of segment `seg`
/// ([`OPEN`]: of the open arena, not yet sealed into a segment).
#[derive(Clone, Copy)]
struct Slot {
    tag: u64,
    seg: u64,
    start: usize,
    end: usize,
}

const OPEN: u64 = u64::MAX;

/// Backlog bytes charged per entry on top of its frame: its slot.
const SLOT_OVERHEAD: usize = std::mem::size_of::<Slot>();

/// Size of the blocks local commits are framed into.
const ARENA_BLOCK: usize = 64 * 1024;

/// Consecutive log entries as their frames (see [`wire::put_frame`]), in as
/// few buffers as the segments allow: what the stream sends.
pub struct Frames {
    pub runs: Vec<Bytes>,
    pub count: usize,
    pub last: u64,
}

/// The log. Entries are frames (`wire::put_frame`) laid end to end in
/// segments: buffers shared with the stream, so that a run of consecutive
/// entries is sent as one slice, with no per-entry reference count, and the
/// backlog frees a segment, not each entry, when it trims.
///
/// On the master, commits append frames to an open arena (no atomic
/// operation per commit); a reader that needs them seals the arena's
/// written part into a segment first. On a follower, each run received is a
/// segment as it arrived.
struct Inner {
    slots: VecDeque<Slot>,
    /// Sealed segments; `segs[i]` is segment number `seg_base + i`.
    segs: VecDeque<Bytes>,
    seg_base: u64,
    /// Frames of the last `open` slots, not yet in a segment.
    arena: BytesMut,
    open: usize,
    bytes: usize,
    /// Position just before `slots[0]`.
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
                .slots
                .get((offset - self.base.0 - 1) as usize)
                .map(|e| e.tag);
        }
        None
    }

    fn next_seg(&self) -> u64 {
        self.seg_base + self.segs.len() as u64
    }

    /// Moves the open arena's frames into a new segment.
    fn seal(&mut self) {
        if self.open == 0 {
            return;
        }
        let seg = self.next_seg();
        self.segs.push_back(self.arena.split().freeze());
        let n = self.slots.len();
        for s in self.slots.range_mut(n - self.open..) {
            s.seg = seg;
        }
        self.open = 0;
    }

    /// Forgets every entry; the position becomes `pos`.
    fn clear(&mut self, pos: (u64, u64)) {
        self.slots.clear();
        self.seg_base = self.next_seg();
        self.segs.clear();
        self.arena.clear();
        self.open = 0;
        self.bytes = 0;
        self.base = pos;
        self.last = pos;
    }

    /// Drops the segments no slot refers to any more.
    fn drop_unused_segs(&mut self) {
        let keep_from = match self.slots.front() {
            Some(s) if s.seg != OPEN => s.seg,
            _ => self.next_seg(),
        };
        while self.seg_base < keep_from && !self.segs.is_empty() {
            self.segs.pop_front();
            self.seg_base += 1;
        }
    }

    /// The sealed segment `seg`.
    fn seg(&self, seg: u64) -> &Bytes {
        &self.segs[(seg - self.seg_base) as usize]
    }

    /// The entry at slot `i` as a [`LogEntry`] (seals the arena if needed).
    fn entry(&mut self, i: usize) -> Result<LogEntry, String> {
        if self.slots[i].seg == OPEN {
            self.seal();
        }
        let s = self.slots[i];
        let seg = self.seg(s.seg);
        let (_, body) = wire::frame_body(&seg[s.start..s.end])?;
        Ok(LogEntry {
            offset: self.base.0 + 1 + i as u64,
            tag: s.tag,
            encoded: seg.slice(s.start + body.start..s.start + body.end),
        })
    }
}

thread_local! {
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
                slots: VecDeque::new(),
                segs: VecDeque::new(),
                seg_base: 0,
                arena: BytesMut::new(),
                open: 0,
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
        (g.base.0 + 1, g.slots.len(), g.bytes)
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
            g.clear((off, tag));
        }
        self.write_tag.store(tag, Ordering::Release);
        drop(g);
        self.wake();
    }

    pub fn write_tag(&self) -> u64 {
        self.write_tag.load(Ordering::Acquire)
    }

    /// Appends entries received from the master (already applied here):
    /// `run` holds their frames end to end, `entries` their positions, in
    /// order, with their frames' lengths. The run becomes one segment.
    /// The entries continue the log: [`apply_remote`] refuses a run that
    /// does not, before applying it.
    fn append_remote(&self, run: Bytes, entries: &[(u64, u64, usize)]) {
        if entries.is_empty() {
            return;
        }
        let mut g = self.inner.lock();
        debug_assert_eq!(entries[0].0, g.last.0 + 1, "a gap reached the log");
        g.seal();
        let seg = g.next_seg();
        let mut pos = 0;
        for &(offset, tag, len) in entries {
            let end = pos + len;
            g.slots.push_back(Slot {
                tag,
                seg,
                start: pos,
                end,
            });
            g.bytes += end - pos + SLOT_OVERHEAD;
            g.last = (offset, tag);
            pos = end;
        }
        g.segs.push_back(run);
        self.trim(&mut g);
        self.last_offset.store(g.last.0, Ordering::Release);
        drop(g);
        self.wake();
    }

    /// Drops the oldest entries while the backlog is over its size.
    fn trim(&self, g: &mut Inner) {
        let max = self.max_bytes.load(Ordering::Relaxed);
        if g.bytes <= max {
            return;
        }
        while g.bytes > max && g.slots.len() > 1 {
            let s = g.slots.pop_front().unwrap();
            if s.seg == OPEN {
                g.open -= 1;
            }
            g.bytes -= s.end - s.start + SLOT_OVERHEAD;
            g.base = (g.base.0 + 1, s.tag);
        }
        g.drop_unused_segs();
    }

    /// Logs a command's commit (see the [`CommitObserver`] impl).
    fn log_commit(&self, c: &Commit<'_>) {
        if c.origin != Origin::Command {
            return;
        }
        let muts = c.mutations.take();
        if muts.is_empty() {
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
            let need = wire::MAX_FRAME_OVERHEAD + scratch.len();
            if g.arena.capacity() - g.arena.len() < need {
                g.seal();
                g.arena = BytesMut::with_capacity(need.max(ARENA_BLOCK));
            }
            let start = g.arena.len();
            wire::put_frame(offset, tag, ts, &scratch, &mut g.arena);
            let end = g.arena.len();
            g.slots.push_back(Slot {
                tag,
                seg: OPEN,
                start,
                end,
            });
            g.open += 1;
            g.bytes += end - start + SLOT_OVERHEAD;
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

    /// Index of the slot at offset `from`, or why it cannot be read.
    fn index_of(g: &Inner, from: u64) -> Result<usize, ReadError> {
        if from > g.last.0 + 1 {
            return Err(ReadError::Reset);
        }
        if from <= g.base.0 {
            return Err(ReadError::Trimmed);
        }
        Ok((from - g.base.0 - 1) as usize)
    }

    /// The frames of up to `max` entries from offset `from` (inclusive),
    /// about `max_bytes` at most (at least one entry): what the stream sends.
    pub fn read_frames(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Frames, ReadError> {
        let mut g = self.inner.lock();
        let start = Self::index_of(&g, from)?;
        let mut out = Frames {
            runs: Vec::new(),
            count: 0,
            last: from.saturating_sub(1),
        };
        if start >= g.slots.len() {
            return Ok(out);
        }
        if g.open > 0 {
            g.seal();
        }
        // (segment, start, end) of each run of frames that lie end to end.
        let mut runs: Vec<(u64, usize, usize)> = Vec::new();
        let mut bytes = 0;
        for s in g.slots.range(start..) {
            if out.count >= max || (bytes >= max_bytes && out.count > 0) {
                break;
            }
            match runs.last_mut() {
                Some(r) if r.0 == s.seg && r.2 == s.start => r.2 = s.end,
                _ => runs.push((s.seg, s.start, s.end)),
            }
            bytes += s.end - s.start;
            out.count += 1;
        }
        out.runs = runs
            .into_iter()
            .map(|(seg, a, b)| g.seg(seg).slice(a..b))
            .collect();
        out.last = from + out.count as u64 - 1;
        Ok(out)
    }

    /// Up to `max` entries from offset `from` (inclusive) to `upto`
    /// (inclusive), one by one (the full-sync filter).
    pub fn read(
        &self,
        from: u64,
        upto: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, ReadError> {
        let mut g = self.inner.lock();
        let start = Self::index_of(&g, from)?;
        let mut out = Vec::new();
        let mut bytes = 0;
        let mut i = start;
        while i < g.slots.len() {
            let offset = g.base.0 + 1 + i as u64;
            if offset > upto || out.len() >= max || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let e = g.entry(i).map_err(|_| ReadError::Reset)?;
            bytes += e.encoded.len() + SLOT_OVERHEAD;
            out.push(e);
            i += 1;
        }
        Ok(out)
    }

    /// Whether any of `keys` may have been written after position `pos`:
    /// true if an entry after it names one of them (or flushes everything),
    /// or if `pos` is not in this log's history or no longer in the backlog.
    pub fn touched_since(&self, pos: (u64, u64), keys: &[Bytes]) -> bool {
        let mut g = self.inner.lock();
        if pos == g.last {
            return false;
        }
        if g.tag_at(pos.0) != Some(pos.1) {
            return true;
        }
        let start = (pos.0 - g.base.0) as usize;
        (start..g.slots.len()).any(|i| {
            // An entry that cannot be decoded counts as touching everything.
            g.entry(i).and_then(|e| e.mutations()).map_or(true, |muts| {
                // Keys are compared by name in every database: a write of
                // the same name in another database aborts too (conservative).
                muts.iter().any(|m| match m {
                    Mutation::FlushAll | Mutation::FlushDb | Mutation::SwapDb { .. } => true,
                    Mutation::Publish { .. } | Mutation::Script(_) | Mutation::Select { .. } => {
                        false
                    }
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
        g.clear(pos);
        self.last_offset.store(pos.0, Ordering::Release);
        drop(g);
        self.wake();
    }
}

/// The replication log hears every commit; it records those of commands
/// run here (to stream them as master, or to notice a write made while not
/// master). A follower appends the master's entries itself
/// ([`apply_remote`]); snapshot chunks and cache fills are never logged.
impl CommitObserver for ReplLog {
    fn wants_touched(&self) -> bool {
        false
    }

    fn wants_mutations(&self, origin: Origin) -> bool {
        origin == Origin::Command
    }

    fn wants_events(&self) -> bool {
        false
    }

    fn on_commit(&self, c: &Commit<'_>) {
        self.log_commit(c);
    }
}

/// A run of stream entries that does not continue this node's log: an
/// entry is missing, so applying the run would make this node's keyspace
/// the master's minus that write while its position says it has it.
#[derive(Debug, PartialEq, Eq)]
pub struct Gap {
    /// The offset that should have come next.
    pub expected: u64,
    /// The offset that came.
    pub got: u64,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "gap in the replication stream: expected offset {}, got {}",
            self.expected, self.got
        )
    }
}

/// Applies a run of stream entries on a follower, several under one lock
/// (each entry stays atomic), and appends them to this node's log. `run` is
/// the entries' frames end to end; `entries` their positions and mutations.
/// A run that does not continue the log offset by offset is refused whole,
/// before anything is applied (the caller ends the link and full-syncs).
/// Only the follow loop appends to a follower's log, so the check holds
/// until the append.
pub fn apply_remote(
    db: &Db,
    log: &ReplLog,
    run: Bytes,
    entries: Vec<RemoteEntry>,
) -> Result<(), Gap> {
    for (expected, e) in (log.last_offset() + 1..).zip(&entries) {
        if e.offset != expected {
            return Err(Gap {
                expected,
                got: e.offset,
            });
        }
    }
    const PER_LOCK: usize = 128;
    let mut it = entries.into_iter().peekable();
    let mut pos = 0;
    while it.peek().is_some() {
        let chunk: Vec<_> = it.by_ref().take(PER_LOCK).collect();
        let mut logged = Vec::with_capacity(chunk.len());
        let start = pos;
        {
            let mut ks = db.lock_mutations(
                Origin::Stream,
                chunk.iter().flat_map(|e| e.mutations.iter()),
            );
            for e in chunk {
                for m in e.mutations {
                    ks.apply(m);
                }
                logged.push((e.offset, e.tag, e.frame_len));
                pos += e.frame_len;
            }
        }
        log.append_remote(run.slice(start..pos), &logged);
    }
    Ok(())
}

/// One entry of a received run, decoded.
pub struct RemoteEntry {
    pub offset: u64,
    pub tag: u64,
    pub ts_us: u64,
    /// Bytes of its frame in the run.
    pub frame_len: usize,
    pub mutations: Vec<Mutation>,
}

/// Decodes the entries of a received run of frames.
pub fn decode_run(run: &Bytes) -> Result<Vec<RemoteEntry>, String> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < run.len() {
        let (len, body) = wire::frame_body(&run[pos..])?;
        let d = wire::decode_entry(run.slice(pos + body.start..pos + body.end))?;
        out.push(RemoteEntry {
            offset: d.offset,
            tag: d.tag,
            ts_us: d.ts_us,
            frame_len: len,
            mutations: d.mutations,
        });
        pos += len;
    }
    Ok(out)
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

    /// Frames of entries at `positions`, end to end, as a follower receives them.
    fn run(positions: impl IntoIterator<Item = (u64, u64)>) -> (Bytes, Vec<(u64, u64, usize)>) {
        let mut muts = Vec::new();
        wire::encode_mutations(&[set("k")], &mut muts);
        let mut buf = BytesMut::new();
        let mut v = Vec::new();
        for (o, t) in positions {
            let before = buf.len();
            wire::put_frame(o, t, 0, &muts, &mut buf);
            v.push((o, t, buf.len() - before));
        }
        (buf.freeze(), v)
    }

    fn append(log: &ReplLog, positions: impl IntoIterator<Item = (u64, u64)>) {
        let (r, v) = run(positions);
        log.append_remote(r, &v);
    }

    #[test]
    fn positions_resume_only_on_the_same_history() {
        let log = ReplLog::new(0);
        append(&log, (1..=5).map(|o| (o, 7)));
        append(&log, (6..=10).map(|o| (o, 9)));
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
        // The frames of consecutive entries: one run per segment.
        let f = log.read_frames(4, 100, usize::MAX).unwrap();
        assert_eq!((f.count, f.last, f.runs.len()), (7, 10, 2));
        let decoded: Vec<_> = f.runs.iter().flat_map(|r| decode_run(r).unwrap()).collect();
        let got: Vec<_> = decoded.iter().map(|e| (e.offset, e.tag)).collect();
        let want: Vec<_> = (4..=10).map(|o| (o, if o <= 5 { 7 } else { 9 })).collect();
        assert_eq!(got, want);
        assert_eq!(log.read_frames(6, 2, usize::MAX).unwrap().last, 7);
        assert_eq!(log.read_frames(11, 2, usize::MAX).unwrap().count, 0);
    }

    #[test]
    fn backlog_is_bounded_by_bytes() {
        let log = ReplLog::new(1024 * 1024);
        let one = run([(1, 1)]).1[0].2 + SLOT_OVERHEAD;
        let n = 1024 * 1024 / one + 500;
        // Received in runs of 100 entries, as a follower does.
        for from in (1..=n as u64).step_by(100) {
            append(&log, (from..=(from + 99).min(n as u64)).map(|o| (o, 1)));
        }
        let (first, len, bytes) = log.backlog_info();
        assert!(bytes <= 1024 * 1024);
        assert_eq!(first as usize + len - 1, n);
        {
            let g = log.inner.lock();
            assert_eq!(
                g.segs.len(),
                (n - 1) / 100 - (first as usize - 1) / 100 + 1,
                "segments before the first entry are freed"
            );
        }
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
        db.set_observer(log.clone());
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
        db.lock(&["c"]).apply(set("c"));
        let f = log.read_frames(1, 10, usize::MAX).unwrap();
        assert_eq!((f.count, f.runs.len()), (2, 1), "one run of the arena");
        let d = decode_run(&f.runs[0]).unwrap();
        assert_eq!(d[0].mutations.len(), 2, "one commit, one entry");
        assert_eq!(
            (d[0].offset, d[0].tag, d[1].offset),
            (1, 42, 2),
            "the encoding carries the position"
        );
        let e = log.read(1, 1, 1, usize::MAX).unwrap();
        assert_eq!(e[0].mutations().unwrap().len(), 2);
        // A follower's stream apply is not logged as a local commit.
        log.set_write_tag(0);
        let (r, _) = run([(3, 43)]);
        let entries = decode_run(&r).unwrap();
        apply_remote(&db, &log, r, entries).unwrap();
        assert_eq!(log.position(), (3, 43));
        assert!(!log.diverged.load(Ordering::Relaxed));
        // Nor are a snapshot chunk or a cache fill.
        db.apply_as(Origin::Stream, vec![set("d")]);
        db.apply_as(Origin::Cache, vec![set("e")]);
        assert_eq!(log.position(), (3, 43));
        assert!(!log.diverged.load(Ordering::Relaxed));
    }

    /// A run whose first entry does not follow the last applied one (or
    /// whose entries skip an offset) is refused whole: nothing applied,
    /// nothing logged, the follower's position unchanged.
    #[test]
    fn a_gap_in_the_stream_is_refused_not_applied() {
        let db = Db::new();
        let log = ReplLog::new(0);
        let (r, _) = run((1..=3).map(|o| (o, 7)));
        apply_remote(&db, &log, r.clone(), decode_run(&r).unwrap()).unwrap();
        assert_eq!(log.position(), (3, 7));
        db.lock(&["k"]).apply(Mutation::Del {
            key: Bytes::from_static(b"k"),
        });
        for (gap, expected, got) in [(vec![(5, 7), (6, 7)], 4, 5), (vec![(4, 7), (6, 7)], 5, 6)] {
            let (r, _) = run(gap.clone());
            let res = apply_remote(&db, &log, r.clone(), decode_run(&r).unwrap());
            assert_eq!(res, Err(Gap { expected, got }), "{gap:?}");
            assert_eq!(log.position(), (3, 7), "{gap:?}: the position moved");
            assert_eq!(db.len(), 0, "{gap:?}: a mutation was applied");
        }
    }
}
