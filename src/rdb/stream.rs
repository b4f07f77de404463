//! Streams in RDB's `RDB_TYPE_STREAM_LISTPACKS_2` (19, Redis 7.0) layout:
//! the nodes (a 16-byte big-endian master ID, then a listpack of the
//! node's entries delta-encoded against it), the stream's counters, then
//! the consumer groups with their PEL and consumers. Reading also takes
//! `RDB_TYPE_STREAM_LISTPACKS` (15, Redis 5/6: no counters, no
//! entries-read).

use bytes::Bytes;

use super::listpack;
use super::primitive::{write_len, write_str, Reader};
use crate::engine::stream::{Chunk, Consumer, Group, Nack, RawEntry, ENTRIES_READ_UNKNOWN};
use crate::engine::{Stream, StreamId, Value};

pub const TYPE_STREAM_LISTPACKS: u8 = 15;
pub const TYPE_STREAM_LISTPACKS_2: u8 = 19;

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

fn id_key(id: StreamId) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.ms.to_be_bytes());
    k[8..].copy_from_slice(&id.seq.to_be_bytes());
    k
}

fn int(v: i64) -> Vec<u8> {
    v.to_string().into_bytes()
}

/// One node as Redis's listpack: the header (live and deleted counts, the
/// master fields), then every entry, tombstones included, delta-encoded
/// against the master ID, as `streamAppendItem` lays it out.
fn node_listpack(master: StreamId, c: &Chunk) -> Vec<u8> {
    let raws: Vec<RawEntry> = c.raw_entries(master).collect();
    let deleted = raws.iter().filter(|r| r.deleted()).count();
    let mut elems: Vec<Vec<u8>> = vec![
        int(c.valid() as i64),
        int(deleted as i64),
        int(c.master_field_count() as i64),
    ];
    elems.extend(c.master_fields().map(<[u8]>::to_vec));
    elems.push(int(0));
    for raw in &raws {
        let same = raw.same_fields();
        let mut flags = if same { FLAG_SAMEFIELDS } else { 0 };
        if raw.deleted() {
            flags |= FLAG_DELETED;
        }
        elems.push(int(flags));
        elems.push(int(raw.id.ms.wrapping_sub(master.ms) as i64));
        elems.push(int(raw.id.seq.wrapping_sub(master.seq) as i64));
        let nf = raw.pairs;
        if !same {
            elems.push(int(nf as i64));
        }
        for (j, f) in c.entry(raw).iter().enumerate() {
            if j % 2 == 1 || !same {
                elems.push(f.to_vec());
            }
        }
        let lp_count = nf as i64 + 3 + if same { 0 } else { nf as i64 + 1 };
        elems.push(int(lp_count));
    }
    let refs: Vec<&[u8]> = elems.iter().map(|e| &e[..]).collect();
    listpack::encode(&refs)
}

/// Appends the stream (type byte included).
pub fn write(out: &mut Vec<u8>, s: &Stream) {
    out.push(TYPE_STREAM_LISTPACKS_2);
    write_len(out, s.node_count());
    for (master, c) in s.chunks() {
        write_str(out, &id_key(master));
        write_str(out, &node_listpack(master, c));
    }
    write_len(out, s.len());
    let first = s.first_id();
    for v in [
        s.last_id.ms,
        s.last_id.seq,
        first.ms,
        first.seq,
        s.max_deleted.ms,
        s.max_deleted.seq,
        s.entries_added,
    ] {
        write_len(out, v as usize);
    }
    write_len(out, s.group_count());
    for (name, g) in s.groups() {
        write_str(out, name);
        write_len(out, g.last_id.ms as usize);
        write_len(out, g.last_id.seq as usize);
        write_len(out, g.entries_read as u64 as usize);
        write_len(out, g.pel.len());
        for (id, n) in &g.pel {
            out.extend_from_slice(&id_key(*id));
            out.extend_from_slice(&n.delivery_time.to_le_bytes());
            write_len(out, n.delivery_count as usize);
        }
        write_len(out, g.consumers.len());
        for (cname, c) in &g.consumers {
            write_str(out, cname);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            write_len(out, c.pel.len());
            for id in &c.pel {
                out.extend_from_slice(&id_key(*id));
            }
        }
    }
}

fn read_id(b: &[u8]) -> Option<StreamId> {
    if b.len() != 16 {
        return None;
    }
    Some(StreamId::new(
        u64::from_be_bytes(b[..8].try_into().ok()?),
        u64::from_be_bytes(b[8..].try_into().ok()?),
    ))
}

fn num(e: &[u8]) -> Option<i64> {
    std::str::from_utf8(e).ok()?.parse().ok()
}

fn len64(r: &mut Reader<'_>) -> Option<u64> {
    r.len().map(|n| n as u64)
}

/// Reads a stream after its type byte `t`; None for anything damaged or
/// inconsistent (an ID out of order, a PEL entry no consumer owns, ...).
pub fn read(r: &mut Reader<'_>, t: u8) -> Option<Value> {
    let nodes = r.len()?;
    let mut s = Stream::new();
    let mut prev: Option<StreamId> = None;
    for _ in 0..nodes {
        let master = read_id(&r.string()?)?;
        prev = Some(read_node(&mut s, master, &r.string()?, prev)?);
    }
    s.shrink_last();
    let length = len64(r)?;
    if length != s.len() as u64 {
        return None;
    }
    s.last_id = StreamId::new(len64(r)?, len64(r)?);
    s.entries_added = length;
    if t == TYPE_STREAM_LISTPACKS_2 {
        let _first = StreamId::new(len64(r)?, len64(r)?);
        s.max_deleted = StreamId::new(len64(r)?, len64(r)?);
        s.entries_added = len64(r)?;
    }
    if prev.is_some_and(|id| id > s.last_id) {
        return None;
    }
    let ngroups = r.len()?;
    for _ in 0..ngroups {
        let (name, mut g) = read_group(r, t)?;
        if t == TYPE_STREAM_LISTPACKS {
            // Before 7.0 groups had no counter: Redis estimates it on load.
            g.entries_read = s.estimate_distance(g.last_id);
        }
        s.insert_group(&name, g);
    }
    Some(Value::Stream(Box::new(s)))
}

/// Reads one node's listpack into `s` as a node of its own (tombstones
/// kept); returns its last ID. None if an ID is out of order (`prev`: the
/// last ID before the node), the counts disagree or no entry is live.
fn read_node(
    s: &mut Stream,
    master: StreamId,
    lp: &[u8],
    prev: Option<StreamId>,
) -> Option<StreamId> {
    if prev.is_some_and(|p| master <= p) {
        return None;
    }
    let lp = listpack::entries(lp)?;
    let mut it = lp.into_iter();
    let next_num = |it: &mut std::vec::IntoIter<Vec<u8>>| num(&it.next()?);
    let valid = next_num(&mut it)?;
    let _deleted = next_num(&mut it)?;
    let nf = usize::try_from(next_num(&mut it)?).ok()?;
    let mut fields = Vec::new();
    for _ in 0..nf {
        fields.push(it.next()?);
    }
    if next_num(&mut it)? != 0 {
        return None;
    }
    s.push_node(master, fields.iter().map(|f| &f[..]));
    let before = s.len() as i64;
    let mut last = None;
    while let Some(flags) = it.next() {
        let flags = num(&flags)?;
        // Deltas are two's complement: a later ms may have a smaller seq.
        let ms = master.ms.wrapping_add(next_num(&mut it)? as u64);
        let seq = master.seq.wrapping_add(next_num(&mut it)? as u64);
        let id = StreamId::new(ms, seq);
        let mut kv: Vec<Vec<u8>> = Vec::new();
        if flags & FLAG_SAMEFIELDS != 0 {
            for f in fields.iter() {
                kv.push(f.clone());
                kv.push(it.next()?);
            }
        } else {
            let n = usize::try_from(next_num(&mut it)?).ok()?;
            for _ in 0..2 * n {
                kv.push(it.next()?);
            }
        }
        next_num(&mut it)?;
        if !s.push_entry(id, &kv, flags & FLAG_DELETED != 0) {
            return None;
        }
        last = Some(id);
    }
    let live = s.len() as i64 - before;
    if live != valid || live == 0 {
        return None;
    }
    last
}

/// Reads one consumer group: its name, last ID, PEL and consumers.
fn read_group(r: &mut Reader<'_>, t: u8) -> Option<(Bytes, Group)> {
    let name = Bytes::from(r.string()?);
    let glast = StreamId::new(len64(r)?, len64(r)?);
    let read = if t == TYPE_STREAM_LISTPACKS_2 {
        len64(r)? as i64
    } else {
        ENTRIES_READ_UNKNOWN
    };
    let mut g = Group::new(glast, read);
    let npel = r.len()?;
    let mut pel = std::collections::BTreeMap::new();
    for _ in 0..npel {
        let id = read_id(&take(r, 16)?)?;
        let time = u64::from_le_bytes(take(r, 8)?.try_into().ok()?);
        let count = len64(r)?;
        pel.insert(id, (time, count));
    }
    let nc = r.len()?;
    for _ in 0..nc {
        let cname = r.string()?;
        let seen = u64::from_le_bytes(take(r, 8)?.try_into().ok()?);
        let mut c = Consumer {
            seen_time: seen,
            pel: Default::default(),
        };
        let n = r.len()?;
        for _ in 0..n {
            let id = read_id(&take(r, 16)?)?;
            let (time, count) = pel.remove(&id)?;
            g.pel.insert(
                id,
                Nack {
                    consumer: cname.clone().into_boxed_slice(),
                    delivery_time: time,
                    delivery_count: count,
                },
            );
            c.pel.insert(id);
        }
        if g.consumers.insert(cname.into_boxed_slice(), c).is_some() {
            return None;
        }
    }
    if !pel.is_empty() {
        return None;
    }
    Some((name, g))
}

fn take(r: &mut Reader<'_>, n: usize) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(r.byte()?);
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// redis-server 7.0.15's DUMP of a stream: 1-1, 2-1 (deleted), 3-0
    /// with other fields; group `grp` with alice holding 1-1.
    const REDIS_STREAM: &str = "13011000000000000000010000000000000001c340434049124900000019000201010102018166028167020020090000200107010181780205010320084012600c400801dfff202d11856f7468657206866669656c6473070601ff02030001010201030103677270010181ffffffffffffffff01000000000000000100000000000000017f787e4ea2010000010105616c6963657f787e4ea201000001000000000000000100000000000000010a00c262d430695a2a0a";

    #[test]
    fn redis_payloads_decode_and_round_trip() {
        let v = crate::rdb::decode(&unhex(REDIS_STREAM)).expect("decodes");
        let Value::Stream(s) = v else { panic!() };
        assert_eq!(s.len(), 2);
        assert_eq!(s.last_id, StreamId::new(3, 0));
        assert_eq!(s.max_deleted, StreamId::new(2, 1));
        let g = s.group(b"grp").unwrap();
        assert_eq!(g.pel.len(), 1);
        assert_eq!(g.entries_read, ENTRIES_READ_UNKNOWN);
        let again = crate::rdb::decode(&crate::rdb::encode(&Value::Stream(s.clone()))).unwrap();
        let Value::Stream(t) = again else { panic!() };
        assert_eq!(format!("{t:?}"), format!("{s:?}"));
    }
}
