//! A stream node's entries packed in one byte buffer ([`Chunk`]), the view
//! of one entry ([`Entry`]) and ordered reads over a stream's chunks
//! ([`Range`]).
//!
//! A chunk is what Redis's listpack node is, in a layout that reads back
//! as slices (no integer-to-text conversion on a read): the master fields
//! (those of the node's first entry), each as a varint length and its
//! bytes, then the entries in ID order, each
//!
//! ```text
//! flags (u8: 1 deleted, 2 same fields as the master)
//! ms - master.ms (varint)
//! seq - master.seq if the ms are equal, else seq (varint)
//! [number of fields (varint), unless same fields]
//! values only (same fields), or field, value, ... (each varint length + bytes)
//! ```
//!
//! IDs are relative to the master ID, as Redis's are, so an entry never
//! depends on its neighbours: XDEL and exact trims set the deleted flag in
//! place (Redis's tombstones), and a chunk goes once no live entry is left.
//! The buffer is trusted (only this module writes it): decoding indexes it
//! directly.

use std::collections::btree_map;
use std::collections::BTreeMap;

use super::stream::StreamId;

pub(super) const FLAG_DELETED: u8 = 1;
pub(super) const FLAG_SAME: u8 = 2;

pub(super) fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn get_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let b = buf[*pos];
    *pos += 1;
    if b < 0x80 {
        return b as u64;
    }
    let mut v = (b & 0x7f) as u64;
    let mut shift = 7;
    loop {
        let b = buf[*pos];
        *pos += 1;
        v |= ((b & 0x7f) as u64) << shift;
        if b < 0x80 {
            return v;
        }
        shift += 7;
    }
}

#[inline]
fn get_str<'a>(buf: &'a [u8], pos: &mut usize) -> &'a [u8] {
    let n = get_varint(buf, pos) as usize;
    let s = &buf[*pos..*pos + n];
    *pos += n;
    s
}

pub(super) fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    put_varint(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// One node of a stream (Redis's listpack node): see the module comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub(super) buf: Vec<u8>,
    /// Where the entries start (the master fields end).
    pub(super) head: usize,
    pub(super) nfields: usize,
    /// Live entries.
    pub(super) valid: u64,
    /// Redis's deleted counter for the node (entries flagged deleted; a
    /// node from a peer's full sync counts tombstones it did not send).
    pub(super) deleted: u64,
    /// The last entry appended, deleted or not.
    pub(super) last: StreamId,
    /// Bytes of the emulated listpack's master fields and entries, so node
    /// limits split where Redis's `lpBytes` splits.
    pub(super) body: usize,
}

/// One entry as stored: its ID, flags, and where its fields start.
#[derive(Clone, Copy, Debug)]
pub struct RawEntry {
    pub id: StreamId,
    pub flags: u8,
    /// Field-value pairs.
    pub pairs: usize,
    /// Offset of the flags byte.
    pub(super) at: usize,
    /// Offset of the first field (or value).
    pub(super) body: usize,
}

impl RawEntry {
    pub fn deleted(&self) -> bool {
        self.flags & FLAG_DELETED != 0
    }

    pub fn same_fields(&self) -> bool {
        self.flags & FLAG_SAME != 0
    }
}

impl Chunk {
    pub(super) fn new<'f>(fields: impl Iterator<Item = &'f [u8]>) -> Chunk {
        let mut c = Chunk::default();
        for f in fields {
            put_str(&mut c.buf, f);
            c.nfields += 1;
        }
        c.head = c.buf.len();
        c
    }

    /// The master fields.
    pub fn master_fields(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let mut pos = 0;
        (0..self.nfields).map(move |_| get_str(&self.buf, &mut pos))
    }

    pub fn master_field_count(&self) -> usize {
        self.nfields
    }

    pub fn valid(&self) -> u64 {
        self.valid
    }

    pub fn last(&self) -> StreamId {
        self.last
    }

    /// Whether `fields` (field, value, ...) has the master's field names.
    pub(super) fn same_fields<T: AsRef<[u8]>>(&self, fields: &[T]) -> bool {
        fields.len() / 2 == self.nfields
            && self
                .master_fields()
                .zip(fields.iter().step_by(2))
                .all(|(a, b)| a == b.as_ref())
    }

    /// Appends an entry's bytes (counters are the caller's).
    pub(super) fn encode<T: AsRef<[u8]>>(
        &mut self,
        master: StreamId,
        id: StreamId,
        fields: &[T],
        flags: u8,
    ) {
        let buf = &mut self.buf;
        buf.push(flags);
        let dms = id.ms - master.ms;
        put_varint(buf, dms);
        put_varint(
            buf,
            if dms == 0 {
                id.seq - master.seq
            } else {
                id.seq
            },
        );
        if flags & FLAG_SAME != 0 {
            for v in fields.iter().skip(1).step_by(2) {
                put_str(buf, v.as_ref());
            }
        } else {
            put_varint(buf, (fields.len() / 2) as u64);
            for f in fields {
                put_str(buf, f.as_ref());
            }
        }
        self.last = id;
    }

    /// The entry at `at` and the offset after it; None at the end.
    #[inline]
    pub(super) fn raw_at(&self, master: StreamId, at: usize) -> Option<(RawEntry, usize)> {
        let buf = &self.buf[..];
        if at >= buf.len() {
            return None;
        }
        let mut pos = at;
        let flags = buf[pos];
        pos += 1;
        let dms = get_varint(buf, &mut pos);
        let s = get_varint(buf, &mut pos);
        let id = if dms == 0 {
            StreamId::new(master.ms, master.seq + s)
        } else {
            StreamId::new(master.ms + dms, s)
        };
        let (pairs, strings) = if flags & FLAG_SAME != 0 {
            (self.nfields, self.nfields)
        } else {
            let n = get_varint(buf, &mut pos) as usize;
            (n, 2 * n)
        };
        let body = pos;
        for _ in 0..strings {
            let n = get_varint(buf, &mut pos) as usize;
            pos += n;
        }
        let raw = RawEntry {
            id,
            flags,
            pairs,
            at,
            body,
        };
        Some((raw, pos))
    }

    /// Every entry as stored (tombstones too), in ID order.
    pub fn raw_entries(&self, master: StreamId) -> impl Iterator<Item = RawEntry> + '_ {
        let mut at = self.head;
        std::iter::from_fn(move || {
            let (raw, next) = self.raw_at(master, at)?;
            at = next;
            Some(raw)
        })
    }

    /// The fields of a stored entry.
    pub fn entry(&self, raw: &RawEntry) -> Entry<'_> {
        Entry {
            master: &self.buf[..self.head],
            body: &self.buf[raw.body..],
            pairs: raw.pairs,
            same: raw.same_fields(),
        }
    }

    /// The live entry `id`, if present.
    pub(super) fn find(&self, master: StreamId, id: StreamId) -> Option<RawEntry> {
        if id > self.last {
            return None;
        }
        for raw in self.raw_entries(master) {
            if raw.id >= id {
                return (raw.id == id && !raw.deleted()).then_some(raw);
            }
        }
        None
    }

    /// Marks a live entry deleted (its bytes stay, as Redis's do).
    pub(super) fn mark_deleted(&mut self, raw: &RawEntry) {
        self.buf[raw.at] |= FLAG_DELETED;
        self.valid -= 1;
        self.deleted += 1;
    }

    /// Bytes the chunk holds on the heap (its buffer).
    pub(super) fn heap_bytes(&self) -> usize {
        self.buf.capacity()
    }
}

/// An entry's fields and values, read in place from its chunk.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    master: &'a [u8],
    body: &'a [u8],
    pairs: usize,
    same: bool,
}

impl<'a> Entry<'a> {
    /// Fields plus values.
    pub fn len(&self) -> usize {
        2 * self.pairs
    }

    pub fn is_empty(&self) -> bool {
        self.pairs == 0
    }

    /// Field, value, field, value, ...
    pub fn iter(&self) -> Fields<'a> {
        Fields {
            master: self.master,
            mpos: 0,
            body: self.body,
            bpos: 0,
            same: self.same,
            left: 2 * self.pairs,
        }
    }

    pub fn to_vec(&self) -> Vec<Vec<u8>> {
        self.iter().map(<[u8]>::to_vec).collect()
    }
}

impl<'a> IntoIterator for Entry<'a> {
    type Item = &'a [u8];
    type IntoIter = Fields<'a>;
    fn into_iter(self) -> Fields<'a> {
        self.iter()
    }
}

impl std::hash::Hash for Entry<'_> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.len().hash(state);
        for f in self.iter() {
            f.hash(state);
        }
    }
}

/// The elements of an [`Entry`].
pub struct Fields<'a> {
    master: &'a [u8],
    mpos: usize,
    body: &'a [u8],
    bpos: usize,
    same: bool,
    left: usize,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        if self.left == 0 {
            return None;
        }
        let field = self.left.is_multiple_of(2);
        self.left -= 1;
        if self.same && field {
            Some(get_str(self.master, &mut self.mpos))
        } else {
            Some(get_str(self.body, &mut self.bpos))
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Fields<'_> {}

/// Live entries with `start <= id <= end` over a stream's chunks, in ID
/// order or reversed. A reverse read lists a chunk's entries first (a
/// chunk is read forwards only): O(chunk) per chunk reached.
pub struct Range<'a> {
    chunks: btree_map::Range<'a, StreamId, Chunk>,
    cur: Option<(StreamId, &'a Chunk)>,
    at: usize,
    rev: bool,
    /// Reverse reads: the current chunk's entries still to give.
    pending: Vec<RawEntry>,
    start: StreamId,
    end: StreamId,
}

impl<'a> Range<'a> {
    pub(super) fn new(
        map: &'a BTreeMap<StreamId, Chunk>,
        start: StreamId,
        end: StreamId,
        rev: bool,
    ) -> Range<'a> {
        let (first, end_key) = if start > end {
            (StreamId::MAX, StreamId::MIN)
        } else {
            let first = map.range(..=start).next_back().map_or(start, |(k, _)| *k);
            (first, end)
        };
        let chunks = if first > end_key {
            map.range(StreamId::MAX..StreamId::MAX)
        } else {
            map.range(first..=end_key)
        };
        Range {
            chunks,
            cur: None,
            at: 0,
            rev,
            pending: Vec::new(),
            start,
            end,
        }
    }

    fn next_fwd(&mut self) -> Option<(StreamId, Entry<'a>)> {
        loop {
            let Some((master, chunk)) = self.cur else {
                let (m, c) = self.chunks.next()?;
                self.cur = Some((*m, c));
                self.at = c.head;
                continue;
            };
            let Some((raw, next)) = chunk.raw_at(master, self.at) else {
                self.cur = None;
                continue;
            };
            self.at = next;
            if raw.id > self.end {
                self.chunks = Default::default();
                self.cur = None;
                return None;
            }
            if raw.deleted() || raw.id < self.start {
                continue;
            }
            return Some((raw.id, chunk.entry(&raw)));
        }
    }

    fn next_rev(&mut self) -> Option<(StreamId, Entry<'a>)> {
        loop {
            if let Some(raw) = self.pending.pop() {
                let (_, chunk) = self.cur.expect("a chunk");
                return Some((raw.id, chunk.entry(&raw)));
            }
            let (m, c) = self.chunks.next_back()?;
            self.cur = Some((*m, c));
            let (start, end) = (self.start, self.end);
            self.pending.extend(
                c.raw_entries(*m)
                    .filter(|r| !r.deleted() && r.id >= start && r.id <= end),
            );
        }
    }
}

impl<'a> Iterator for Range<'a> {
    type Item = (StreamId, Entry<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.rev {
            self.next_rev()
        } else {
            self.next_fwd()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_entries_read_back() {
        let mut buf = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put_varint(&mut buf, v);
        }
        let mut pos = 0;
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(get_varint(&buf, &mut pos), v);
        }
        let master = StreamId::new(5, 7);
        let mut c = Chunk::new([&b"a"[..], b"b"].into_iter());
        c.encode(master, master, &[&b"a"[..], b"1", b"b", b"2"], FLAG_SAME);
        let other = StreamId::new(9, 0);
        c.encode(master, other, &[&b"x"[..], b""], 0);
        let raws: Vec<RawEntry> = c.raw_entries(master).collect();
        assert_eq!(raws.len(), 2);
        assert_eq!(raws[0].id, master);
        assert_eq!(raws[1].id, other);
        assert_eq!(
            c.entry(&raws[0]).to_vec(),
            vec![b"a".to_vec(), b"1".to_vec(), b"b".to_vec(), b"2".to_vec()]
        );
        assert_eq!(c.entry(&raws[1]).to_vec(), vec![b"x".to_vec(), Vec::new()]);
        assert!(c.same_fields(&[&b"a"[..], b"z", b"b", b"y"]));
        assert!(!c.same_fields(&[&b"a"[..], b"z"]));
    }
}
