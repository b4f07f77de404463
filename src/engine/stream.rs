//! The stream type: entries keyed by `(ms, seq)` IDs, consumer groups with
//! their pending entries lists (PEL) and consumers, and [`StreamOp`], the
//! deterministic changes stream commands apply.
//!
//! Entries are packed as Redis packs them: into nodes of up to
//! `stream-node-max-entries` entries / `stream-node-max-bytes` bytes, each
//! one contiguous buffer ([`Chunk`], see `stream_chunk.rs`) with IDs
//! delta-encoded against the node's first (master) ID and the master's
//! field names shared, in a `BTreeMap` keyed by the master ID. Appends go to
//! the last chunk (amortized O(1) plus the map's O(log n) for a new node),
//! a read seeks one chunk in O(log n) and then reads in place, XDEL sets a
//! tombstone flag and a chunk goes with its last live entry. A chunk splits
//! exactly where Redis's listpack would (its listpack size is kept as
//! bookkeeping), so `MAXLEN ~`/`MINID ~` (only whole nodes are trimmed),
//! `LIMIT` and XINFO's node counts are Redis's.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

pub use super::stream_chunk::{Chunk, Entry, Range, RawEntry};
use super::stream_chunk::{FLAG_DELETED, FLAG_SAME};
use super::value::{Elem, ALLOC_OVERHEAD};
use crate::util::listpack::{int_size as lp_int_size, str_size as lp_str_size};

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> Self {
        StreamId { ms, seq }
    }

    /// The next ID, or None past the last possible one.
    pub fn next(self) -> Option<StreamId> {
        if self.seq == u64::MAX {
            (self.ms < u64::MAX).then(|| StreamId::new(self.ms + 1, 0))
        } else {
            Some(StreamId::new(self.ms, self.seq + 1))
        }
    }

    /// The previous ID, or None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq == 0 {
            (self.ms > 0).then(|| StreamId::new(self.ms - 1, u64::MAX))
        } else {
            Some(StreamId::new(self.ms, self.seq - 1))
        }
    }

    pub fn text(self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }
}

/// "Not known" for a group's `entries-read` (Redis's SCG_INVALID_ENTRIES_READ).
pub const ENTRIES_READ_UNKNOWN: i64 = -1;

/// A pending entry: delivered to `consumer`, not yet acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Nack {
    pub consumer: Elem,
    pub delivery_time: u64,
    pub delivery_count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Consumer {
    pub seen_time: u64,
    pub pel: BTreeSet<StreamId>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub last_id: StreamId,
    pub entries_read: i64,
    pub pel: BTreeMap<StreamId, Nack>,
    pub consumers: BTreeMap<Elem, Consumer>,
}

impl Group {
    pub fn new(last_id: StreamId, entries_read: i64) -> Self {
        Group {
            last_id,
            entries_read,
            pel: BTreeMap::new(),
            consumers: BTreeMap::new(),
        }
    }
}

/// A node's bookkeeping as a full sync carries it (without its entries).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// The master fields (those of the node's first entry).
    pub fields: Box<[Elem]>,
    /// The last entry appended to the node, deleted or not.
    pub last: StreamId,
    pub valid: u64,
    pub deleted: u64,
    /// Bytes of the master fields and of every entry (deleted ones too).
    pub body: usize,
}

/// How a trim chooses what goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrimBy {
    MaxLen(u64),
    MinId(StreamId),
}

/// A change to a stream, deterministic given the stream it applies to.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamOp {
    /// XADD: append `fields` (field, value, ...) as entry `id` (greater than
    /// the last ID; creates the stream). The node limits are the master's
    /// `stream-node-max-entries` / `-bytes` when it appended.
    Add {
        id: StreamId,
        fields: Vec<Bytes>,
        node_max_entries: u64,
        node_max_bytes: u64,
    },
    /// XTRIM, or XADD's trim (`limit` 0: none).
    Trim {
        by: TrimBy,
        approx: bool,
        limit: u64,
    },
    /// XDEL.
    Delete {
        ids: Vec<StreamId>,
    },
    /// XSETID (creates nothing).
    SetId {
        last_id: StreamId,
        entries_added: Option<u64>,
        max_deleted: Option<StreamId>,
    },
    /// XGROUP CREATE (`mkstream`: create an empty stream if missing).
    GroupCreate {
        group: Bytes,
        id: StreamId,
        entries_read: i64,
        mkstream: bool,
    },
    /// XGROUP SETID.
    GroupSetId {
        group: Bytes,
        id: StreamId,
        entries_read: i64,
    },
    GroupDestroy {
        group: Bytes,
    },
    /// XGROUP CREATECONSUMER (and a consumer's first appearance).
    ConsumerCreate {
        group: Bytes,
        consumer: Bytes,
        seen_time: u64,
    },
    /// XGROUP DELCONSUMER: the consumer and its pending entries go.
    ConsumerDelete {
        group: Bytes,
        consumer: Bytes,
    },
    /// XREADGROUP, XCLAIM, XAUTOCLAIM, XACK: `consumer` (created if
    /// missing) was seen at that time; the group's last ID and entries-read
    /// move to `last`; each `claim` becomes a pending entry of `consumer`
    /// with that delivery time and count; each `ack` leaves the PEL.
    GroupUpdate {
        group: Bytes,
        consumer: Option<(Bytes, u64)>,
        last: Option<(StreamId, i64)>,
        claim: Vec<(StreamId, u64, u64)>,
        ack: Vec<StreamId>,
    },
}

impl StreamOp {
    /// Whether applying the op to a missing key creates the stream.
    pub fn creates(&self) -> bool {
        matches!(
            self,
            StreamOp::Add { .. } | StreamOp::GroupCreate { mkstream: true, .. }
        )
    }

    /// The keyspace event the op raises (class `t`), as Redis names it.
    pub fn event(&self) -> Option<(u8, &'static str)> {
        let name = match self {
            StreamOp::Add { .. } => "xadd",
            StreamOp::Trim { .. } => "xtrim",
            StreamOp::Delete { .. } => "xdel",
            StreamOp::SetId { .. } => "xsetid",
            StreamOp::GroupCreate { .. } => "xgroup-create",
            StreamOp::GroupSetId { .. } => "xgroup-setid",
            StreamOp::GroupDestroy { .. } => "xgroup-destroy",
            StreamOp::ConsumerCreate { .. } => "xgroup-createconsumer",
            StreamOp::ConsumerDelete { .. } => "xgroup-delconsumer",
            StreamOp::GroupUpdate { .. } => return None,
        };
        Some((b't', name))
    }
}

/// Bytes a chunk costs beyond its buffer: its map slot (key and `Chunk`)
/// at the occupancy of an append-only B-tree, and the buffer's allocation.
const CHUNK_COST: usize = 160 + ALLOC_OVERHEAD;
/// Bytes a pending entry costs (PEL slot + consumer PEL slot).
const NACK_COST: usize = 88;
/// Bytes a group or a consumer costs beyond its name.
const GROUP_COST: usize = 96;

/// Redis's default node limits, for entries that come without nodes.
const DEFAULT_NODE_ENTRIES: u64 = 100;
const DEFAULT_NODE_BYTES: u64 = 4096;

fn str_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len + ALLOC_OVERHEAD
    }
}

/// `lpBytes` of a node with these counters and body.
fn lp_bytes(c: &Chunk) -> usize {
    7 + lp_int_size(c.valid as i64)
        + lp_int_size(c.deleted as i64)
        + lp_int_size(c.nfields as i64)
        + lp_int_size(0)
        + c.body
}

/// The emulated listpack bytes an entry adds to its node.
fn lp_entry_size<T: AsRef<[u8]>>(
    master: StreamId,
    id: StreamId,
    fields: &[T],
    same: bool,
) -> usize {
    let nfields = fields.len() / 2;
    let mut size = 1 // flags (0..=7)
        + lp_int_size(id.ms.wrapping_sub(master.ms) as i64)
        + lp_int_size(id.seq.wrapping_sub(master.seq) as i64);
    let mut lp_count = nfields as i64 + 3;
    if !same {
        size += lp_int_size(nfields as i64);
        lp_count += nfields as i64 + 1;
    }
    for (i, f) in fields.iter().enumerate() {
        if i % 2 == 1 || !same {
            size += lp_str_size(f.as_ref());
        }
    }
    size + lp_int_size(lp_count) + 1 // + the flags' backlen
}

#[derive(Clone, Default)]
pub struct Stream {
    chunks: BTreeMap<StreamId, Chunk>,
    /// Live entries.
    len: u64,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    groups: BTreeMap<Elem, Group>,
    bytes: usize,
}

/// What a stream holds as readers see it (live entries, node bookkeeping,
/// counters, groups): tombstones' bytes and buffer slack are not shown, so
/// two streams that read alike print alike.
impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<(StreamId, Vec<String>)> = self
            .range(StreamId::MIN, StreamId::MAX, false)
            .map(|(id, e)| {
                let fields = e.iter().map(|x| String::from_utf8_lossy(x).into_owned());
                (id, fields.collect())
            })
            .collect();
        f.debug_struct("Stream")
            .field("entries", &entries)
            .field("nodes", &self.nodes().collect::<Vec<_>>())
            .field("last_id", &self.last_id)
            .field("max_deleted", &self.max_deleted)
            .field("entries_added", &self.entries_added)
            .field("groups", &self.groups)
            .finish()
    }
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bytes
    }

    /// The first live entry's ID (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.first().map_or(StreamId::MIN, |(id, _)| id)
    }

    pub fn first(&self) -> Option<(StreamId, Entry<'_>)> {
        let (m, c) = self.chunks.iter().next()?;
        let raw = c.raw_entries(*m).find(|r| !r.deleted())?;
        Some((raw.id, c.entry(&raw)))
    }

    pub fn last(&self) -> Option<(StreamId, Entry<'_>)> {
        let (m, c) = self.chunks.iter().next_back()?;
        let raw = c.raw_entries(*m).filter(|r| !r.deleted()).last()?;
        Some((raw.id, c.entry(&raw)))
    }

    pub fn get(&self, id: StreamId) -> Option<Entry<'_>> {
        let (m, c) = self.chunks.range(..=id).next_back()?;
        c.find(*m, id).map(|raw| c.entry(&raw))
    }

    /// Entries with `start <= id <= end`, in ID order (reverse if `rev`).
    pub fn range(&self, start: StreamId, end: StreamId, rev: bool) -> Range<'_> {
        Range::new(&self.chunks, start, end, rev)
    }

    /// The nodes (chunks) by master ID, in order.
    pub fn chunks(&self) -> impl DoubleEndedIterator<Item = (StreamId, &Chunk)> + '_ {
        self.chunks.iter().map(|(id, c)| (*id, c))
    }

    /// The nodes' bookkeeping (what a full sync sends besides entries).
    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, Node)> + '_ {
        self.chunks.iter().map(|(id, c)| {
            let node = Node {
                fields: c.master_fields().map(Elem::from).collect(),
                last: c.last,
                valid: c.valid,
                deleted: c.deleted,
                body: c.body,
            };
            (*id, node)
        })
    }

    pub fn node_count(&self) -> usize {
        self.chunks.len()
    }

    pub fn groups(&self) -> impl Iterator<Item = (&[u8], &Group)> + '_ {
        self.groups.iter().map(|(n, g)| (&n[..], g))
    }

    pub fn group(&self, name: &[u8]) -> Option<&Group> {
        self.groups.get(name)
    }

    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// Whether a trim with these arguments removes anything (the first
    /// step of [`Stream::trim`], without changing the stream).
    pub fn would_trim(&self, by: TrimBy, approx: bool, limit: u64) -> bool {
        let Some((_, node)) = self.chunks.iter().next() else {
            return false;
        };
        if let TrimBy::MaxLen(max) = by {
            if self.len <= max {
                return false;
            }
        }
        if limit != 0 && node.valid > limit {
            return false;
        }
        let remove_node = match by {
            TrimBy::MaxLen(max) => self.len - node.valid >= max,
            TrimBy::MinId(min) => node.last < min,
        };
        if remove_node {
            return true;
        }
        if approx {
            return false;
        }
        match by {
            TrimBy::MaxLen(_) => true,
            TrimBy::MinId(min) => self.first_id() < min,
        }
    }

    /// `streamRangeHasTombstones` from `start` to the end.
    pub fn has_tombstones_from(&self, start: StreamId) -> bool {
        if self.is_empty() || self.max_deleted == StreamId::MIN {
            return false;
        }
        if self.first_id() > self.max_deleted {
            return false;
        }
        start <= self.max_deleted
    }

    /// `streamEstimateDistanceFromFirstEverEntry`: the entries-read counter
    /// of `id`, or [`ENTRIES_READ_UNKNOWN`].
    pub fn estimate_distance(&self, id: StreamId) -> i64 {
        if self.entries_added == 0 {
            return 0;
        }
        let added = self.entries_added as i64;
        if self.is_empty() && id <= self.last_id {
            return added;
        }
        if id == self.last_id {
            return added;
        } else if id > self.last_id {
            return ENTRIES_READ_UNKNOWN;
        }
        let first = self.first_id();
        if self.max_deleted == StreamId::MIN || self.max_deleted < first {
            if id < first {
                return added - self.len() as i64;
            } else if id == first {
                return added - self.len() as i64 + 1;
            }
        }
        ENTRIES_READ_UNKNOWN
    }

    /// `streamReplyWithCGLag`: the group's lag, None when unknown.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if g.entries_read != ENTRIES_READ_UNKNOWN && !self.has_tombstones_from(g.last_id) {
            return Some(added - g.entries_read);
        }
        let read = self.estimate_distance(g.last_id);
        (read != ENTRIES_READ_UNKNOWN).then_some(added - read)
    }

    /// Applies a change (see [`StreamOp`]).
    pub fn apply(&mut self, op: &StreamOp) {
        match op {
            StreamOp::Add {
                id,
                fields,
                node_max_entries,
                node_max_bytes,
            } => self.append(*id, fields, *node_max_entries, *node_max_bytes),
            StreamOp::Trim { by, approx, limit } => {
                self.trim(*by, *approx, *limit);
            }
            StreamOp::Delete { ids } => {
                for id in ids {
                    self.delete(*id);
                }
            }
            StreamOp::SetId {
                last_id,
                entries_added,
                max_deleted,
            } => {
                self.last_id = *last_id;
                if let Some(n) = entries_added {
                    self.entries_added = *n;
                }
                if let Some(m) = max_deleted {
                    self.max_deleted = *m;
                }
            }
            StreamOp::GroupCreate {
                group,
                id,
                entries_read,
                ..
            } => {
                if !self.groups.contains_key(&group[..]) {
                    self.bytes += GROUP_COST + str_bytes(group.len());
                    self.groups
                        .insert(group[..].into(), Group::new(*id, *entries_read));
                }
            }
            StreamOp::GroupSetId {
                group,
                id,
                entries_read,
            } => {
                if let Some(g) = self.groups.get_mut(&group[..]) {
                    g.last_id = *id;
                    g.entries_read = *entries_read;
                }
            }
            StreamOp::GroupDestroy { group } => {
                if let Some(g) = self.groups.remove(&group[..]) {
                    self.bytes -= GROUP_COST + str_bytes(group.len()) + group_bytes(&g);
                }
            }
            StreamOp::ConsumerCreate {
                group,
                consumer,
                seen_time,
            } => {
                self.consumer(group, consumer, *seen_time);
            }
            StreamOp::ConsumerDelete { group, consumer } => {
                let Some(g) = self.groups.get_mut(&group[..]) else {
                    return;
                };
                let Some(c) = g.consumers.remove(&consumer[..]) else {
                    return;
                };
                let mut freed = GROUP_COST + str_bytes(consumer.len());
                for id in &c.pel {
                    if let Some(n) = g.pel.remove(id) {
                        freed += NACK_COST + str_bytes(n.consumer.len());
                    }
                }
                self.bytes -= freed;
            }
            StreamOp::GroupUpdate {
                group,
                consumer,
                last,
                claim,
                ack,
            } => {
                if !self.groups.contains_key(&group[..]) {
                    return;
                }
                if let Some((name, seen)) = consumer {
                    self.consumer(group, name, *seen);
                }
                let mut bytes = self.bytes;
                let g = self.groups.get_mut(&group[..]).expect("checked");
                if let Some((id, read)) = last {
                    g.last_id = *id;
                    g.entries_read = *read;
                }
                for id in ack {
                    if let Some(n) = g.pel.remove(id) {
                        bytes -= NACK_COST + str_bytes(n.consumer.len());
                        if let Some(c) = g.consumers.get_mut(&n.consumer) {
                            c.pel.remove(id);
                        }
                    }
                }
                if let Some((name, _)) = consumer {
                    for &(id, time, count) in claim {
                        let nack = Nack {
                            consumer: name[..].into(),
                            delivery_time: time,
                            delivery_count: count,
                        };
                        if let Some(old) = g.pel.insert(id, nack) {
                            bytes -= NACK_COST + str_bytes(old.consumer.len());
                            if let Some(c) = g.consumers.get_mut(&old.consumer) {
                                c.pel.remove(&id);
                            }
                        }
                        bytes += NACK_COST + str_bytes(name.len());
                        if let Some(c) = g.consumers.get_mut(&name[..]) {
                            c.pel.insert(id);
                        }
                    }
                }
                self.bytes = bytes;
            }
        }
    }

    /// Gets or creates a consumer, setting its seen time.
    fn consumer(&mut self, group: &[u8], name: &[u8], seen: u64) {
        let Some(g) = self.groups.get_mut(group) else {
            return;
        };
        match g.consumers.get_mut(name) {
            Some(c) => c.seen_time = seen,
            None => {
                self.bytes += GROUP_COST + str_bytes(name.len());
                g.consumers.insert(
                    name.into(),
                    Consumer {
                        seen_time: seen,
                        pel: BTreeSet::new(),
                    },
                );
            }
        }
    }

    /// Bytes a chunk accounts for.
    fn chunk_bytes(c: &Chunk) -> usize {
        CHUNK_COST + c.heap_bytes()
    }

    /// Starts a node at `master` (its first entry's ID) with these master
    /// fields. Loading a stream (RESTORE, a full sync) calls it and then
    /// [`Stream::push_entry`] for each entry of the node, in ID order.
    pub fn push_node<'f>(&mut self, master: StreamId, fields: impl Iterator<Item = &'f [u8]>) {
        if let Some(mut last) = self.chunks.last_entry() {
            // A node is closed once the next one starts: give back its slack.
            let c = last.get_mut();
            let before = c.heap_bytes();
            c.buf.shrink_to_fit();
            self.bytes -= before - c.heap_bytes();
        }
        let mut c = Chunk::new(fields);
        c.body = c.master_fields().map(lp_str_size).sum();
        c.last = master;
        self.bytes += Self::chunk_bytes(&c);
        self.chunks.insert(master, c);
    }

    /// Appends an entry to the last node (see [`Stream::push_node`]); a
    /// deleted one is a tombstone. The ID must be above every ID before it
    /// and not below the node's master ID (false otherwise, nothing done).
    pub fn push_entry<T: AsRef<[u8]>>(
        &mut self,
        id: StreamId,
        fields: &[T],
        deleted: bool,
    ) -> bool {
        let Some(mut last) = self.chunks.last_entry() else {
            return false;
        };
        let master = *last.key();
        let c = last.get_mut();
        let fresh = c.valid == 0 && c.deleted == 0;
        if id < master || (!fresh && id <= c.last) || !fields.len().is_multiple_of(2) {
            return false;
        }
        let same = c.same_fields(fields);
        let flags = if same { FLAG_SAME } else { 0 } | if deleted { FLAG_DELETED } else { 0 };
        let before = c.heap_bytes();
        c.encode(master, id, fields, flags);
        c.body += lp_entry_size(master, id, fields, same);
        if deleted {
            c.deleted += 1;
        } else {
            c.valid += 1;
            self.len += 1;
        }
        self.bytes = self.bytes + c.heap_bytes() - before;
        true
    }

    /// `streamAppendItem` once the ID is decided.
    fn append(&mut self, id: StreamId, fields: &[Bytes], max_entries: u64, max_bytes: u64) {
        let max_bytes = if max_bytes == 0 || max_bytes > 1 << 30 {
            1 << 30
        } else {
            max_bytes as usize
        };
        let new_node = match self.chunks.iter().next_back() {
            None => true,
            Some((_, c)) => {
                let total: usize = fields.iter().map(|f| f.len()).sum();
                lp_bytes(c) + total >= max_bytes
                    || (max_entries != 0 && c.valid + c.deleted >= max_entries)
            }
        };
        if new_node {
            self.push_node(id, fields.iter().step_by(2).map(|f| &f[..]));
        }
        self.push_entry(id, fields, false);
        self.last_id = id;
        self.entries_added += 1;
    }

    fn drop_chunk(&mut self, master: StreamId) -> Option<Chunk> {
        let c = self.chunks.remove(&master)?;
        self.bytes -= Self::chunk_bytes(&c);
        self.len -= c.valid;
        Some(c)
    }

    /// XDEL of one ID (`streamDeleteItem`): true if it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        let Some((&master, c)) = self.chunks.range_mut(..=id).next_back() else {
            return false;
        };
        let Some(raw) = c.find(master, id) else {
            return false;
        };
        if c.valid <= 1 {
            self.drop_chunk(master);
        } else {
            c.mark_deleted(&raw);
            self.len -= 1;
        }
        if id > self.max_deleted {
            self.max_deleted = id;
        }
        true
    }

    /// `streamTrim`: returns how many entries went.
    pub fn trim(&mut self, by: TrimBy, approx: bool, limit: u64) -> u64 {
        let mut deleted = 0u64;
        loop {
            if let TrimBy::MaxLen(max) = by {
                if self.len <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.chunks.iter().next() else {
                break;
            };
            let entries = node.valid;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match by {
                TrimBy::MaxLen(max) => self.len - entries >= max,
                TrimBy::MinId(min) => node.last < min,
            };
            if remove_node {
                self.drop_chunk(master);
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            deleted += self.trim_inside(master, by);
            break;
        }
        deleted
    }

    /// An exact trim's last step: tombstones in the first node, in order,
    /// until the condition holds.
    fn trim_inside(&mut self, master: StreamId, by: TrimBy) -> u64 {
        let c = self.chunks.get_mut(&master).expect("node");
        let raws: Vec<RawEntry> = c.raw_entries(master).collect();
        let mut from_node = 0;
        for raw in raws {
            let stop = match by {
                TrimBy::MaxLen(max) => self.len <= max,
                TrimBy::MinId(min) => raw.id >= min,
            };
            if stop {
                break;
            }
            if !raw.deleted() {
                c.mark_deleted(&raw);
                self.len -= 1;
                from_node += 1;
            }
        }
        from_node
    }

    /// Adds a consumer group as loaded (RESTORE, a full sync).
    pub fn insert_group(&mut self, name: &[u8], g: Group) {
        self.bytes += GROUP_COST + str_bytes(name.len()) + group_bytes(&g);
        if let Some(old) = self.groups.insert(name.into(), g) {
            self.bytes -= GROUP_COST + str_bytes(name.len()) + group_bytes(&old);
        }
    }

    /// Rebuilds a stream from its parts (a full sync): live entries in ID
    /// order and the nodes they belong to, each with its bookkeeping (an
    /// entry goes to the last node whose master ID is not above it). With
    /// no nodes, entries are laid out as XADD with Redis's default node
    /// limits would have.
    pub fn from_parts(
        entries: Vec<(StreamId, Vec<Bytes>)>,
        nodes: Vec<(StreamId, Node)>,
        last_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
        groups: Vec<(Bytes, Group)>,
    ) -> Stream {
        let mut s = Stream::new();
        if nodes.is_empty() {
            for (id, fields) in entries {
                s.append(id, &fields, DEFAULT_NODE_ENTRIES, DEFAULT_NODE_BYTES);
            }
        } else {
            s.lay_out(entries, nodes);
        }
        s.last_id = last_id;
        s.max_deleted = max_deleted;
        s.entries_added = entries_added;
        for (name, g) in groups {
            s.insert_group(&name, g);
        }
        s
    }

    /// [`Stream::from_parts`]'s nodes: a node takes the entries up to the
    /// next node's master ID, then its bookkeeping is the peer's.
    fn lay_out(&mut self, entries: Vec<(StreamId, Vec<Bytes>)>, nodes: Vec<(StreamId, Node)>) {
        let mut nodes = nodes.into_iter().peekable();
        let mut current: Option<Node> = None;
        let finish = |s: &mut Stream, node: Option<Node>| {
            if let (Some(n), Some(mut last)) = (node, s.chunks.last_entry()) {
                let c = last.get_mut();
                c.deleted = n.deleted;
                c.body = n.body;
                c.last = c.last.max(n.last);
            }
        };
        for (id, fields) in entries {
            let mut started = false;
            while let Some((m, _)) = nodes.peek() {
                if *m > id {
                    break;
                }
                let (m, n) = nodes.next().expect("peeked");
                if nodes.peek().is_some_and(|(next, _)| *next <= id) {
                    continue; // a node without entries: nothing to keep
                }
                finish(self, current.take());
                self.push_node(m, n.fields.iter().map(|f| &f[..]));
                current = Some(n);
                started = true;
            }
            if self.chunks.is_empty() && !started {
                self.push_node(id, fields.iter().step_by(2).map(|f| &f[..]));
            }
            self.push_entry(id, &fields, false);
        }
        finish(self, current);
        self.shrink_last();
    }

    /// Gives back the last node's slack (after loading).
    pub fn shrink_last(&mut self) {
        if let Some(mut last) = self.chunks.last_entry() {
            let c = last.get_mut();
            let before = c.heap_bytes();
            c.buf.shrink_to_fit();
            self.bytes -= before - c.heap_bytes();
        }
    }
}

fn group_bytes(g: &Group) -> usize {
    g.pel
        .values()
        .map(|n| NACK_COST + str_bytes(n.consumer.len()))
        .sum::<usize>()
        + g.consumers
            .keys()
            .map(|c| GROUP_COST + str_bytes(c.len()))
            .sum::<usize>()
}

impl super::Keys<'_> {
    /// Applies a [`StreamOp`] to `key` (creating the stream when the op
    /// creates one; otherwise a missing key or another type is left alone).
    pub(super) fn stream_op(&mut self, key: &[u8], op: &StreamOp) {
        let f = |v: &mut super::Value| {
            if let super::Value::Stream(s) = v {
                s.apply(op);
            }
        };
        if op.creates() {
            self.modify_or_create(
                key,
                || super::Value::Stream(Box::default()),
                |v| matches!(v, super::Value::Stream(_)),
                f,
            );
        } else {
            self.modify(key, |e| f(&mut e.value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(s: &mut Stream, ms: u64, max: u64) {
        s.apply(&StreamOp::Add {
            id: StreamId::new(ms, 0),
            fields: vec![Bytes::from_static(b"item"), Bytes::from(ms.to_string())],
            node_max_entries: max,
            node_max_bytes: 4096,
        });
    }

    /// The byte count recomputed from the structure.
    fn recount(s: &Stream) -> usize {
        s.chunks.values().map(Stream::chunk_bytes).sum::<usize>()
            + s.groups
                .iter()
                .map(|(n, g)| GROUP_COST + str_bytes(n.len()) + group_bytes(g))
                .sum::<usize>()
    }

    fn ids(s: &Stream, rev: bool) -> Vec<u64> {
        s.range(StreamId::MIN, StreamId::MAX, rev)
            .map(|(id, _)| id.ms)
            .collect()
    }

    #[test]
    fn approximate_trims_remove_whole_nodes_only() {
        let mut s = Stream::new();
        for i in 1..=1000 {
            add(&mut s, i, 100);
            s.apply(&StreamOp::Trim {
                by: TrimBy::MaxLen(555),
                approx: true,
                limit: 10_000,
            });
        }
        assert_eq!(s.len(), 600);
        assert_eq!(s.bytes, recount(&s));
        s.apply(&StreamOp::Trim {
            by: TrimBy::MaxLen(555),
            approx: false,
            limit: 0,
        });
        assert_eq!(s.len(), 555);
        assert_eq!(s.first_id(), StreamId::new(446, 0));
        assert_eq!(s.bytes, recount(&s));
        assert_eq!(ids(&s, false), (446..=1000).collect::<Vec<_>>());
        assert_eq!(ids(&s, true), (446..=1000).rev().collect::<Vec<_>>());
    }

    #[test]
    fn reads_skip_tombstones_in_both_directions() {
        let mut s = Stream::new();
        for i in 1..=50 {
            add(&mut s, i, 10);
        }
        for i in [3, 10, 11, 25, 50] {
            assert!(s.delete(StreamId::new(i, 0)));
            assert!(!s.delete(StreamId::new(i, 0)));
        }
        let want: Vec<u64> = (1..=49).filter(|i| ![3, 10, 11, 25].contains(i)).collect();
        assert_eq!(ids(&s, false), want);
        let mut back = want.clone();
        back.reverse();
        assert_eq!(ids(&s, true), back);
        let part: Vec<u64> = s
            .range(StreamId::new(9, 5), StreamId::new(26, 0), true)
            .map(|(id, _)| id.ms)
            .collect();
        assert_eq!(
            part,
            vec![26, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12]
        );
        assert_eq!(
            s.get(StreamId::new(12, 0)).unwrap().to_vec()[1],
            b"12".to_vec()
        );
        assert!(s.get(StreamId::new(11, 0)).is_none());
        assert_eq!(s.last().unwrap().0, StreamId::new(49, 0));
        assert_eq!(s.len(), 45);
        assert_eq!(s.bytes, recount(&s));
        assert_eq!(
            s.range(StreamId::new(5, 0), StreamId::new(4, 0), false)
                .count(),
            0
        );
    }

    #[test]
    fn deletes_and_groups_keep_the_byte_count() {
        let mut s = Stream::new();
        for i in 1..=50 {
            add(&mut s, i, 10);
        }
        let g = Bytes::from_static(b"g");
        s.apply(&StreamOp::GroupCreate {
            group: g.clone(),
            id: StreamId::MIN,
            entries_read: 0,
            mkstream: false,
        });
        s.apply(&StreamOp::GroupUpdate {
            group: g.clone(),
            consumer: Some((Bytes::from_static(b"alice"), 5)),
            last: Some((StreamId::new(10, 0), 10)),
            claim: (1..=10).map(|i| (StreamId::new(i, 0), 5, 1)).collect(),
            ack: vec![],
        });
        s.apply(&StreamOp::GroupUpdate {
            group: g.clone(),
            consumer: Some((Bytes::from_static(b"bob"), 6)),
            last: None,
            claim: vec![(StreamId::new(3, 0), 6, 2)],
            ack: vec![StreamId::new(1, 0)],
        });
        assert_eq!(s.bytes, recount(&s));
        let grp = s.group(b"g").unwrap();
        assert_eq!(grp.pel.len(), 9);
        assert_eq!(grp.consumers[&b"alice"[..]].pel.len(), 8);
        assert_eq!(grp.pel[&StreamId::new(3, 0)].consumer[..], b"bob"[..]);
        for i in 1..=15 {
            assert!(s.delete(StreamId::new(i, 0)));
        }
        assert_eq!(s.max_deleted, StreamId::new(15, 0));
        assert_eq!(s.node_count(), 4);
        assert_eq!(s.bytes, recount(&s));
        s.apply(&StreamOp::ConsumerDelete {
            group: g.clone(),
            consumer: Bytes::from_static(b"alice"),
        });
        assert_eq!(s.bytes, recount(&s));
        s.apply(&StreamOp::GroupDestroy { group: g });
        assert_eq!(s.bytes, recount(&s));
        assert_eq!(s.group_count(), 0);
    }

    #[test]
    fn parts_rebuild_the_same_nodes() {
        let mut s = Stream::new();
        for i in 1..=35 {
            add(&mut s, i, 10);
        }
        s.apply(&StreamOp::Add {
            id: StreamId::new(40, 3),
            fields: vec![Bytes::from_static(b"other"), Bytes::from_static(b"x")],
            node_max_entries: 10,
            node_max_bytes: 4096,
        });
        s.delete(StreamId::new(12, 0));
        let entries = s
            .range(StreamId::MIN, StreamId::MAX, false)
            .map(|(id, e)| (id, e.iter().map(Bytes::copy_from_slice).collect()))
            .collect();
        let nodes: Vec<(StreamId, Node)> = s.nodes().collect();
        let t = Stream::from_parts(entries, nodes.clone(), s.last_id, s.max_deleted, 36, vec![]);
        assert_eq!(t.nodes().collect::<Vec<_>>(), nodes);
        assert_eq!(ids(&t, false), ids(&s, false));
        assert_eq!(t.bytes, recount(&t));
        assert_eq!(
            t.get(StreamId::new(40, 3)).unwrap().to_vec()[0],
            b"other".to_vec()
        );
    }

    #[test]
    fn ids_step() {
        assert_eq!(StreamId::new(1, 0).prev(), Some(StreamId::new(0, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
    }
}
