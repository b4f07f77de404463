//! The stream type: entries keyed by `(ms, seq)` IDs, consumer groups with
//! their pending entries lists (PEL) and consumers, and [`StreamOp`], the
//! deterministic changes stream commands apply.
//!
//! Entries live in a `BTreeMap` keyed by ID: appends (always at the end),
//! range reads and deletes are O(log n), and iteration in either direction
//! is in ID order, which is all streams need. Redis keeps a radix tree of
//! listpacks (delta-encoded nodes of up to `stream-node-max-entries`); that
//! layout is visible through `MAXLEN ~`/`MINID ~` (only whole nodes are
//! trimmed) and `LIMIT`, so the nodes are emulated here as bookkeeping (a
//! node's first ID, its counts of live and deleted entries, its listpack
//! size), which makes approximate trimming trim exactly what Redis trims.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::value::{Elem, ALLOC_OVERHEAD};

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

/// One emulated listpack node (see the module comment).
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

impl Node {
    /// The listpack's size (`lpBytes`).
    pub fn lp_bytes(&self) -> usize {
        7 + lp_int_size(self.valid as i64)
            + lp_int_size(self.deleted as i64)
            + lp_int_size(self.fields.len() as i64)
            + lp_int_size(0)
            + self.body
    }
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

/// Bytes an entry costs beyond its fields (map slot, boxed slice header).
const ENTRY_COST: usize = 48;
/// Bytes a node's bookkeeping costs.
const NODE_COST: usize = 96;
/// Bytes a pending entry costs (PEL slot + consumer PEL slot).
const NACK_COST: usize = 88;
/// Bytes a group or a consumer costs beyond its name.
const GROUP_COST: usize = 96;

fn str_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len + ALLOC_OVERHEAD
    }
}

/// `lpEncodeBacklen`'s size for an element of `l` bytes.
fn lp_backlen(l: usize) -> usize {
    match l {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Size of an integer element in a listpack (encoding + backlen).
fn lp_int_size(v: i64) -> usize {
    let l = if (0..=127).contains(&v) {
        1
    } else if (-4096..=4095).contains(&v) {
        2
    } else if (-32768..=32767).contains(&v) {
        3
    } else if (-8388608..=8388607).contains(&v) {
        4
    } else if (i32::MIN as i64..=i32::MAX as i64).contains(&v) {
        5
    } else {
        9
    };
    l + lp_backlen(l)
}

/// `lpStringToInt64`: the string is an integer in canonical form.
fn lp_string_int(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || digits[0] == b'0' || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    let v: i64 = text.parse().ok()?;
    let _ = neg;
    Some(v)
}

/// Size of a string element in a listpack (integers are stored as such).
fn lp_str_size(s: &[u8]) -> usize {
    if let Some(v) = lp_string_int(s) {
        return lp_int_size(v);
    }
    let l = match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        n => 5 + n,
    };
    l + lp_backlen(l)
}

#[derive(Clone, Debug, Default)]
pub struct Stream {
    entries: BTreeMap<StreamId, Box<[Elem]>>,
    nodes: BTreeMap<StreamId, Node>,
    pub last_id: StreamId,
    pub max_deleted: StreamId,
    pub entries_added: u64,
    groups: BTreeMap<Elem, Group>,
    bytes: usize,
}

impl Stream {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bytes
    }

    /// The first live entry's ID (0-0 when empty).
    pub fn first_id(&self) -> StreamId {
        self.entries.keys().next().copied().unwrap_or_default()
    }

    pub fn first(&self) -> Option<(StreamId, &[Elem])> {
        self.entries.iter().next().map(|(id, f)| (*id, &f[..]))
    }

    pub fn last(&self) -> Option<(StreamId, &[Elem])> {
        self.entries.iter().next_back().map(|(id, f)| (*id, &f[..]))
    }

    pub fn get(&self, id: StreamId) -> Option<&[Elem]> {
        self.entries.get(&id).map(|f| &f[..])
    }

    /// Entries with `start <= id <= end`, in ID order (reverse if `rev`).
    pub fn range(
        &self,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Box<dyn Iterator<Item = (StreamId, &[Elem])> + '_> {
        if start > end {
            return Box::new(std::iter::empty());
        }
        let it = self.entries.range(start..=end).map(|(id, f)| (*id, &f[..]));
        if rev {
            Box::new(it.rev())
        } else {
            Box::new(it)
        }
    }

    pub fn nodes(&self) -> impl Iterator<Item = (StreamId, &Node)> + '_ {
        self.nodes.iter().map(|(id, n)| (*id, n))
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
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
        let Some((_, node)) = self.nodes.iter().next() else {
            return false;
        };
        if let TrimBy::MaxLen(max) = by {
            if self.len() as u64 <= max {
                return false;
            }
        }
        if limit != 0 && node.valid > limit {
            return false;
        }
        let remove_node = match by {
            TrimBy::MaxLen(max) => self.len() as u64 - node.valid >= max,
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

    /// `streamAppendItem` once the ID is decided.
    fn append(&mut self, id: StreamId, fields: &[Bytes], max_entries: u64, max_bytes: u64) {
        let total: usize = fields.iter().map(|f| f.len()).sum();
        let max_bytes = if max_bytes == 0 || max_bytes > 1 << 30 {
            1 << 30
        } else {
            max_bytes as usize
        };
        let nfields = fields.len() / 2;
        let mut new_node = true;
        if let Some((_, node)) = self.nodes.iter().next_back() {
            new_node = node.lp_bytes() + total >= max_bytes
                || (max_entries != 0 && node.valid + node.deleted >= max_entries);
        }
        if new_node {
            let master: Box<[Elem]> = fields.iter().step_by(2).map(|f| f[..].into()).collect();
            let body = master.iter().map(|f| lp_str_size(f)).sum();
            self.bytes += NODE_COST + master.iter().map(|f| str_bytes(f.len())).sum::<usize>();
            self.nodes.insert(
                id,
                Node {
                    fields: master,
                    last: id,
                    valid: 0,
                    deleted: 0,
                    body,
                },
            );
        }
        let (&master_id, node) = self.nodes.iter_mut().next_back().expect("a node");
        let same = node.fields.len() == nfields
            && node
                .fields
                .iter()
                .zip(fields.iter().step_by(2))
                .all(|(a, b)| a[..] == b[..]);
        let mut size = 1 // flags (0..=7)
            + lp_int_size(id.ms.wrapping_sub(master_id.ms) as i64)
            + lp_int_size(id.seq.wrapping_sub(master_id.seq) as i64);
        let mut lp_count = nfields as i64 + 3;
        if !same {
            size += lp_int_size(nfields as i64);
            lp_count += nfields as i64 + 1;
        }
        for (i, f) in fields.iter().enumerate() {
            if i % 2 == 1 || !same {
                size += lp_str_size(f);
            }
        }
        size += lp_int_size(lp_count);
        node.body += size + 1; // + the flags' backlen
        node.valid += 1;
        node.last = id;
        let entry: Box<[Elem]> = fields.iter().map(|f| f[..].into()).collect();
        self.bytes += ENTRY_COST + entry.iter().map(|f| str_bytes(f.len())).sum::<usize>();
        self.entries.insert(id, entry);
        self.last_id = id;
        self.entries_added += 1;
    }

    /// The node holding `id` (its master ID).
    fn node_of(&self, id: StreamId) -> Option<StreamId> {
        self.nodes.range(..=id).next_back().map(|(m, _)| *m)
    }

    fn remove_entry(&mut self, id: StreamId) -> bool {
        let Some(f) = self.entries.remove(&id) else {
            return false;
        };
        self.bytes -= ENTRY_COST + f.iter().map(|x| str_bytes(x.len())).sum::<usize>();
        true
    }

    fn drop_node(&mut self, master: StreamId) -> Option<Node> {
        let n = self.nodes.remove(&master)?;
        self.bytes -= NODE_COST + n.fields.iter().map(|f| str_bytes(f.len())).sum::<usize>();
        Some(n)
    }

    /// XDEL of one ID (`streamDeleteItem`): true if it existed.
    pub fn delete(&mut self, id: StreamId) -> bool {
        if !self.remove_entry(id) {
            return false;
        }
        if let Some(m) = self.node_of(id) {
            let n = self.nodes.get_mut(&m).expect("node");
            if n.valid <= 1 {
                self.drop_node(m);
            } else {
                n.valid -= 1;
                n.deleted += 1;
            }
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
                if self.len() as u64 <= max {
                    break;
                }
            }
            let Some((&master, node)) = self.nodes.iter().next() else {
                break;
            };
            let entries = node.valid;
            if limit != 0 && deleted + entries > limit {
                break;
            }
            let remove_node = match by {
                TrimBy::MaxLen(max) => self.len() as u64 - entries >= max,
                TrimBy::MinId(min) => node.last < min,
            };
            if remove_node {
                self.drop_node(master);
                let end = self
                    .nodes
                    .keys()
                    .next()
                    .copied()
                    .and_then(StreamId::prev)
                    .unwrap_or(StreamId::MAX);
                let ids: Vec<StreamId> =
                    self.entries.range(master..=end).map(|(i, _)| *i).collect();
                for i in ids {
                    self.remove_entry(i);
                }
                deleted += entries;
                continue;
            }
            if approx {
                break;
            }
            // Mark entries of this node deleted until the condition holds.
            let node_end = self
                .nodes
                .keys()
                .nth(1)
                .copied()
                .and_then(StreamId::prev)
                .unwrap_or(StreamId::MAX);
            let ids: Vec<StreamId> = self
                .entries
                .range(master..=node_end)
                .map(|(i, _)| *i)
                .collect();
            let mut from_node = 0;
            for i in ids {
                let stop = match by {
                    TrimBy::MaxLen(max) => self.len() as u64 <= max,
                    TrimBy::MinId(min) => i >= min,
                };
                if stop {
                    break;
                }
                self.remove_entry(i);
                from_node += 1;
            }
            let n = self.nodes.get_mut(&master).expect("node");
            n.valid = n.valid.saturating_sub(from_node);
            n.deleted += from_node;
            deleted += from_node;
            break;
        }
        deleted
    }

    /// Rebuilds a stream from its parts (a full sync, RESTORE): entries in
    /// ID order with the node each starts (None: appended to the last).
    pub fn from_parts(
        entries: Vec<(StreamId, Vec<Bytes>)>,
        nodes: Vec<(StreamId, Node)>,
        last_id: StreamId,
        max_deleted: StreamId,
        entries_added: u64,
        groups: Vec<(Bytes, Group)>,
    ) -> Stream {
        let mut s = Stream::new();
        for (id, fields) in entries {
            let entry: Box<[Elem]> = fields.iter().map(|f| f[..].into()).collect();
            s.bytes += ENTRY_COST + entry.iter().map(|f| str_bytes(f.len())).sum::<usize>();
            s.entries.insert(id, entry);
        }
        for (id, n) in nodes {
            s.bytes += NODE_COST + n.fields.iter().map(|f| str_bytes(f.len())).sum::<usize>();
            s.nodes.insert(id, n);
        }
        s.last_id = last_id;
        s.max_deleted = max_deleted;
        s.entries_added = entries_added;
        for (name, g) in groups {
            s.bytes += GROUP_COST + str_bytes(name.len()) + group_bytes(&g);
            s.groups.insert(name[..].into(), g);
        }
        s
    }

    /// Lays out nodes for entries that came without them (as a stream that
    /// received them by XADD, with Redis's default node limits).
    pub fn renode(&mut self) {
        let entries: Vec<(StreamId, Vec<Bytes>)> = self
            .entries
            .iter()
            .map(|(id, f)| (*id, f.iter().map(|x| Bytes::copy_from_slice(x)).collect()))
            .collect();
        let (last, maxd, added) = (self.last_id, self.max_deleted, self.entries_added);
        let groups = std::mem::take(&mut self.groups);
        let mut s = Stream::new();
        for (id, f) in entries {
            s.append(id, &f, 100, 4096);
        }
        s.last_id = last;
        s.max_deleted = maxd;
        s.entries_added = added;
        for (name, g) in groups {
            s.bytes += GROUP_COST + str_bytes(name.len()) + group_bytes(&g);
            s.groups.insert(name, g);
        }
        *self = s;
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

    fn recount(s: &Stream) -> usize {
        let mut c = Stream::from_parts(
            s.entries
                .iter()
                .map(|(id, f)| (*id, f.iter().map(|x| Bytes::copy_from_slice(x)).collect()))
                .collect(),
            s.nodes.iter().map(|(i, n)| (*i, n.clone())).collect(),
            s.last_id,
            s.max_deleted,
            s.entries_added,
            s.groups
                .iter()
                .map(|(n, g)| (Bytes::copy_from_slice(n), g.clone()))
                .collect(),
        );
        std::mem::take(&mut c.bytes)
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
    fn listpack_sizes_follow_redis_encodings() {
        assert_eq!(lp_int_size(0), 2);
        assert_eq!(lp_int_size(127), 2);
        assert_eq!(lp_int_size(128), 3);
        assert_eq!(lp_str_size(b"12"), 2);
        assert_eq!(lp_str_size(b"012"), 5);
        assert_eq!(lp_str_size(b"abc"), 5);
        assert_eq!(StreamId::new(1, 0).prev(), Some(StreamId::new(0, u64::MAX)));
        assert_eq!(StreamId::MAX.next(), None);
    }
}
