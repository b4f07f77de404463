//! The replication wire format: the protobuf types generated from
//! `proto/replication.proto`, conversions between engine `Mutation`s and
//! them, and the encoding of log entries (made once, at commit, and kept as
//! bytes by the log; see `replication`).

use bytes::Bytes;

use crate::engine::{
    Entry, ExpireSet, HashValue, ListValue, Mutation, ScriptOp, SetValue, Value, ZSet,
};

#[allow(clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("jcache.repl");
}

use pb::mutation::M;

// ---------------------------------------------------------------- conversions

/// A mutation's bytes, shared with the log (no copy).
fn b(x: &Bytes) -> Bytes {
    x.clone()
}

/// A stored value's bytes, copied out of the keyspace (snapshots).
fn c(x: &[u8]) -> Bytes {
    Bytes::copy_from_slice(x)
}

fn value_to_pb(v: &Value) -> pb::Value {
    use pb::value::V;
    let v = match v {
        Value::Str(s) => V::Str(c(s)),
        Value::List(l) => V::List(pb::Elems {
            items: l.iter().map(c).collect(),
        }),
        Value::Hash(h) => V::Hash(pb::Pairs {
            items: h
                .iter()
                .map(|(f, v)| pb::Pair { a: c(f), b: c(v) })
                .collect(),
        }),
        Value::Set(s) => V::Set(pb::Elems {
            items: s.iter().map(c).collect(),
        }),
        Value::ZSet(z) => V::Zset(pb::ScoredMembers {
            items: z
                .iter()
                .map(|(m, s)| pb::ScoredMember {
                    score: s,
                    member: c(m),
                })
                .collect(),
        }),
        Value::Stream(s) => V::Stream(super::stream_wire::value_to_pb(s)),
    };
    pb::Value { v: Some(v) }
}

/// Largest string a SETRANGE from a peer may produce. A master only ever
/// sends offsets within its `proto-max-bulk-len`; this bound (4 GiB, past
/// Redis's 512 MB default) keeps a corrupt offset from asking for 2^60
/// bytes, an allocation failure that would abort the process.
pub const MAX_PEER_STRING: u64 = 1 << 32;

/// A value from a peer, or None when it is not one Redis could hold: an
/// empty collection, a NaN score, a duplicate member or field.
fn value_from_pb(v: pb::Value) -> Option<Value> {
    use pb::value::V;
    let v = v.v?;
    let empty = match &v {
        V::Str(_) => false,
        V::List(l) => l.items.is_empty(),
        V::Hash(h) => h.items.is_empty(),
        V::Set(s) => s.items.is_empty(),
        V::Zset(z) => z.items.is_empty(),
        // An empty stream is a value (XGROUP CREATE MKSTREAM, XDEL).
        V::Stream(_) => false,
    };
    if empty {
        return None;
    }
    Some(match v {
        V::Str(s) => Value::Str(Box::from(&s[..])),
        V::List(l) => {
            let mut x = ListValue::new();
            for e in l.items {
                x.push_back(Box::from(&e[..]));
            }
            Value::List(Box::new(x))
        }
        V::Hash(h) => {
            let mut x = HashValue::new();
            for p in h.items {
                if !x.insert(&p.a, &p.b) {
                    return None;
                }
            }
            Value::Hash(Box::new(x))
        }
        V::Set(s) => {
            let mut x = SetValue::new();
            for m in s.items {
                if !x.insert(&m) {
                    return None;
                }
            }
            Value::Set(Box::new(x))
        }
        V::Zset(z) => {
            let mut x = ZSet::new();
            for m in z.items {
                if m.score.is_nan() || x.insert(&m.member, m.score).is_some() {
                    return None;
                }
            }
            Value::ZSet(Box::new(x))
        }
        V::Stream(st) => Value::Stream(Box::new(super::stream_wire::value_from_pb(st)?)),
    })
}

pub fn put_pb(key: &[u8], e: &Entry) -> pb::Mutation {
    pb::Mutation {
        m: Some(M::Put(pb::Put {
            key: c(key),
            value: Some(value_to_pb(&e.value)),
            expire_at: e.expire_at,
        })),
    }
}

fn items(v: &[Bytes]) -> Vec<Bytes> {
    v.to_vec()
}

pub fn mutation_to_pb(m: &Mutation) -> pb::Mutation {
    use Mutation as E;
    let ki = |key: &Bytes, v: &[Bytes]| pb::KeyItems {
        key: b(key),
        items: items(v),
    };
    let m = match m {
        E::Put {
            key,
            value,
            expire_at,
        } => M::Put(pb::Put {
            key: b(key),
            value: Some(value_to_pb(value)),
            expire_at: *expire_at,
        }),
        E::SetStr { key, value, expire } => {
            let (expire, at) = match expire {
                ExpireSet::Clear => (0, 0),
                ExpireSet::Keep => (1, 0),
                ExpireSet::At(t) => (2, *t),
            };
            M::SetStr(pb::SetStr {
                key: b(key),
                value: b(value),
                expire,
                at,
            })
        }
        E::Append { key, data } => M::Append(pb::KeyData {
            key: b(key),
            data: b(data),
        }),
        E::SetRange { key, offset, data } => M::SetRange(pb::SetRange {
            key: b(key),
            offset: *offset as u64,
            data: b(data),
        }),
        E::Del { key } => M::Del(pb::Key { key: b(key) }),
        E::Expire { key, at } => M::Expire(pb::Expire {
            key: b(key),
            at: *at,
        }),
        E::Rename { from, to } => M::Rename(pb::FromTo {
            from: b(from),
            to: b(to),
        }),
        E::Copy { from, to } => M::Copy(pb::FromTo {
            from: b(from),
            to: b(to),
        }),
        E::HSet { key, pairs } => M::Hset(pb::HSet {
            key: b(key),
            pairs: pairs
                .iter()
                .map(|(f, v)| pb::Pair { a: b(f), b: b(v) })
                .collect(),
        }),
        E::HDel { key, fields } => M::Hdel(ki(key, fields)),
        E::Push { key, left, elems } => M::Push(pb::Push {
            key: b(key),
            left: *left,
            elems: items(elems),
        }),
        E::Pop { key, left, count } => M::Pop(pb::Pop {
            key: b(key),
            left: *left,
            count: *count as u64,
        }),
        E::LSet { key, index, elem } => M::Lset(pb::LIndexElem {
            key: b(key),
            index: *index as u64,
            elem: b(elem),
        }),
        E::LInsert { key, index, elem } => M::Linsert(pb::LIndexElem {
            key: b(key),
            index: *index as u64,
            elem: b(elem),
        }),
        E::LRem { key, count, elem } => M::Lrem(pb::LRem {
            key: b(key),
            count: *count,
            elem: b(elem),
        }),
        E::LTrim { key, start, stop } => M::Ltrim(pb::LTrim {
            key: b(key),
            start: *start as u64,
            stop: *stop as u64,
        }),
        E::SAdd { key, members } => M::Sadd(ki(key, members)),
        E::SRem { key, members } => M::Srem(ki(key, members)),
        E::ZAdd { key, pairs } => M::Zadd(pb::ZAdd {
            key: b(key),
            pairs: pairs
                .iter()
                .map(|(s, m)| pb::ScoredMember {
                    score: *s,
                    member: b(m),
                })
                .collect(),
        }),
        E::ZRem { key, members } => M::Zrem(ki(key, members)),
        E::FlushAll => M::Flushall(pb::FlushAll {}),
        E::Select { db } => M::Select(pb::Select { db: *db }),
        E::Move { key, db } => M::MoveKey(pb::MoveKey {
            key: b(key),
            db: *db,
        }),
        E::CopyDb { from, to, db } => M::CopyDb(pb::CopyDb {
            from: b(from),
            to: b(to),
            db: *db,
        }),
        E::SwapDb { a, b } => M::SwapDb(pb::SwapDb { a: *a, b: *b }),
        E::FlushDb => M::Flushdb(pb::FlushDb {}),
        E::Publish {
            channel,
            payload,
            shard,
        } => M::Publish(pb::Publish {
            channel: b(channel),
            payload: b(payload),
            shard: *shard,
        }),
        E::Script(op) => M::Script(script_op_to_pb(op)),
        E::Stream { key, op } => M::Stream(super::stream_wire::op_to_pb(key, op)),
    };
    pb::Mutation { m: Some(m) }
}

pub fn mutation_from_pb(m: pb::Mutation) -> Option<Mutation> {
    use Mutation as E;
    Some(match m.m? {
        M::Put(p) => E::Put {
            key: p.key,
            value: value_from_pb(p.value?)?,
            expire_at: p.expire_at,
        },
        M::SetStr(s) => E::SetStr {
            key: s.key,
            value: s.value,
            expire: match s.expire {
                0 => ExpireSet::Clear,
                1 => ExpireSet::Keep,
                _ => ExpireSet::At(s.at),
            },
        },
        M::Append(a) => E::Append {
            key: a.key,
            data: a.data,
        },
        M::SetRange(s) => {
            let end = s.offset.checked_add(s.data.len() as u64)?;
            if end > MAX_PEER_STRING {
                return None;
            }
            E::SetRange {
                key: s.key,
                offset: usize::try_from(s.offset).ok()?,
                data: s.data,
            }
        }
        M::Del(k) => E::Del { key: k.key },
        M::Expire(e) => E::Expire {
            key: e.key,
            at: e.at,
        },
        M::Rename(f) => E::Rename {
            from: f.from,
            to: f.to,
        },
        M::Copy(f) => E::Copy {
            from: f.from,
            to: f.to,
        },
        M::Hset(h) => E::HSet {
            key: h.key,
            pairs: h.pairs.into_iter().map(|p| (p.a, p.b)).collect(),
        },
        M::Hdel(k) => E::HDel {
            key: k.key,
            fields: k.items,
        },
        M::Push(p) => E::Push {
            key: p.key,
            left: p.left,
            elems: p.elems,
        },
        M::Pop(p) => E::Pop {
            key: p.key,
            left: p.left,
            count: p.count as usize,
        },
        M::Lset(l) => E::LSet {
            key: l.key,
            index: l.index as usize,
            elem: l.elem,
        },
        M::Linsert(l) => E::LInsert {
            key: l.key,
            index: l.index as usize,
            elem: l.elem,
        },
        M::Lrem(l) => E::LRem {
            key: l.key,
            count: l.count,
            elem: l.elem,
        },
        M::Ltrim(l) => E::LTrim {
            key: l.key,
            start: l.start as usize,
            stop: l.stop as usize,
        },
        M::Sadd(k) => E::SAdd {
            key: k.key,
            members: k.items,
        },
        M::Srem(k) => E::SRem {
            key: k.key,
            members: k.items,
        },
        M::Zadd(z) => {
            if z.pairs.iter().any(|p| p.score.is_nan()) {
                return None;
            }
            E::ZAdd {
                key: z.key,
                pairs: z.pairs.into_iter().map(|p| (p.score, p.member)).collect(),
            }
        }
        M::Zrem(k) => E::ZRem {
            key: k.key,
            members: k.items,
        },
        M::Flushall(_) => E::FlushAll,
        M::Select(s) => E::Select { db: s.db },
        M::MoveKey(m) => E::Move {
            key: m.key,
            db: m.db,
        },
        M::CopyDb(c) => E::CopyDb {
            from: c.from,
            to: c.to,
            db: c.db,
        },
        M::SwapDb(s) => E::SwapDb { a: s.a, b: s.b },
        M::Flushdb(_) => E::FlushDb,
        M::Publish(p) => E::Publish {
            channel: p.channel,
            payload: p.payload,
            shard: p.shard,
        },
        M::Script(op) => E::Script(script_op_from_pb(op)?),
        M::Stream(sm) => {
            let (key, op) = super::stream_wire::op_from_pb(sm)?;
            E::Stream { key, op }
        }
    })
}

fn script_op_to_pb(op: &ScriptOp) -> pb::ScriptOp {
    let (kind, data) = match op {
        ScriptOp::Load(body) => (1, body.clone()),
        ScriptOp::Flush => (2, Bytes::new()),
        ScriptOp::LoadLibrary(code) => (3, code.clone()),
        ScriptOp::DeleteLibrary(name) => (4, name.clone()),
        ScriptOp::FlushLibraries => (5, Bytes::new()),
    };
    pb::ScriptOp {
        kind,
        data,
        replace: false,
    }
}

fn script_op_from_pb(op: pb::ScriptOp) -> Option<ScriptOp> {
    Some(match op.kind {
        1 => ScriptOp::Load(op.data),
        2 => ScriptOp::Flush,
        3 => ScriptOp::LoadLibrary(op.data),
        4 => ScriptOp::DeleteLibrary(op.data),
        5 => ScriptOp::FlushLibraries,
        _ => return None,
    })
}

/// Appends `muts` as a log entry's `mutations` field (field 4 of
/// `LogEntry`, repeated): the part of an entry's encoding that does not
/// depend on its position, made before the log lock is taken.
pub fn encode_mutations(muts: &[Mutation], out: &mut Vec<u8>) {
    for m in muts {
        prost::encoding::message::encode(4, &mutation_to_pb(m), out);
    }
}

/// Appends a log entry's position fields. Protobuf fields may come in any
/// order, so `header + mutations` is a complete `LogEntry`.
fn encode_position(offset: u64, tag: u64, ts_us: u64, out: &mut impl bytes::BufMut) {
    prost::encoding::uint64::encode(1, &offset, out);
    prost::encoding::uint64::encode(2, &tag, out);
    prost::encoding::uint64::encode(3, &ts_us, out);
}

/// Most bytes a frame adds to its mutations: the length prefix and the
/// three position fields (a key byte and a varint each).
pub const MAX_FRAME_OVERHEAD: usize = 10 + 3 * 11;

/// Appends one log entry as a frame: the length of its `LogEntry` encoding
/// as a varint, then the encoding (position fields, then `mutations`, the
/// output of [`encode_mutations`]). Frames laid end to end are what a
/// `Batch`'s `frames` carry.
pub fn put_frame(
    offset: u64,
    tag: u64,
    ts_us: u64,
    mutations: &[u8],
    out: &mut impl bytes::BufMut,
) {
    use prost::encoding::{encode_varint, uint64};
    let len = uint64::encoded_len(1, &offset)
        + uint64::encoded_len(2, &tag)
        + uint64::encoded_len(3, &ts_us)
        + mutations.len();
    encode_varint(len as u64, out);
    encode_position(offset, tag, ts_us, out);
    out.put_slice(mutations);
}

/// The frame at the start of `buf`: its whole length (prefix included) and
/// the range of its `LogEntry` encoding.
pub fn frame_body(buf: &[u8]) -> Result<(usize, std::ops::Range<usize>), String> {
    let mut b = buf;
    let len =
        prost::encoding::decode_varint(&mut b).map_err(|e| format!("malformed frame: {e}"))?;
    let start = buf.len() - b.len();
    let end = start
        .checked_add(usize::try_from(len).map_err(|_| "malformed frame: length".to_string())?)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| "malformed frame: truncated".to_string())?;
    Ok((end, start..end))
}

/// A log entry read back from its encoding.
pub struct Decoded {
    pub offset: u64,
    pub tag: u64,
    pub ts_us: u64,
    pub mutations: Vec<Mutation>,
}

/// Decodes an encoded `LogEntry` (bytes fields slice `raw`, no copy).
pub fn decode_entry(raw: Bytes) -> Result<Decoded, String> {
    let e: pb::LogEntry =
        prost::Message::decode(raw).map_err(|e| format!("malformed log entry: {e}"))?;
    Ok(Decoded {
        offset: e.offset,
        tag: e.tag,
        ts_us: e.ts_us,
        mutations: convert_all(e.mutations)?,
    })
}

pub fn convert_all(v: Vec<pb::Mutation>) -> Result<Vec<Mutation>, String> {
    v.into_iter()
        .map(|m| mutation_from_pb(m).ok_or_else(|| "malformed mutation".to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz;
    use rand::Rng;

    fn bytes(rng: &mut rand::rngs::StdRng) -> Bytes {
        let n = rng.gen_range(0..6);
        (0..n)
            .map(|_| rng.gen_range(b'a'..=b'e'))
            .collect::<Vec<u8>>()
            .into()
    }

    /// A random mutation of a kind whose encoding is deterministic (values
    /// whose iteration order depends on hashing are left to the other test).
    fn random_mutation(rng: &mut rand::rngs::StdRng) -> Mutation {
        let key = bytes(rng);
        match rng.gen_range(0..12) {
            0 => Mutation::SetStr {
                key,
                value: bytes(rng),
                expire: ExpireSet::At(rng.gen_range(2..u64::MAX)),
            },
            1 => Mutation::Append {
                key,
                data: bytes(rng),
            },
            2 => Mutation::SetRange {
                key,
                offset: rng.gen_range(0..1000),
                data: bytes(rng),
            },
            3 => Mutation::Del { key },
            4 => Mutation::Expire { key, at: rng.gen() },
            5 => Mutation::HSet {
                key,
                pairs: vec![(bytes(rng), bytes(rng))],
            },
            6 => Mutation::Push {
                key,
                left: rng.gen(),
                elems: vec![bytes(rng), bytes(rng)],
            },
            7 => Mutation::ZAdd {
                key,
                pairs: vec![(rng.gen_range(-1e9..1e9), bytes(rng))],
            },
            8 => Mutation::SAdd {
                key,
                members: vec![bytes(rng)],
            },
            9 => Mutation::Pop {
                key,
                left: rng.gen(),
                count: rng.gen_range(0..10),
            },
            10 => {
                let mut l = ListValue::new();
                l.push_back(Box::from(&bytes(rng)[..]));
                Mutation::Put {
                    key,
                    value: Value::List(Box::new(l)),
                    expire_at: rng.gen(),
                }
            }
            _ => Mutation::Publish {
                channel: key,
                payload: bytes(rng),
                shard: rng.gen(),
            },
        }
    }

    fn frame_of(muts: &[Mutation], offset: u64) -> Vec<u8> {
        let mut body = Vec::new();
        encode_mutations(muts, &mut body);
        let mut out = Vec::new();
        put_frame(offset, 7, 42, &body, &mut out);
        out
    }

    /// Decodes every frame of `buf`; Err on the first malformed one.
    fn decode_frames(buf: &[u8]) -> Result<Vec<Decoded>, String> {
        let mut at = 0;
        let mut out = Vec::new();
        while at < buf.len() {
            let (len, body) = frame_body(&buf[at..])?;
            assert!(len > 0 && at + len <= buf.len());
            let raw = Bytes::copy_from_slice(&buf[at + body.start..at + body.end]);
            out.push(decode_entry(raw)?);
            at += len;
        }
        Ok(out)
    }

    fn pbs(muts: &[Mutation]) -> Vec<pb::Mutation> {
        muts.iter().map(mutation_to_pb).collect()
    }

    #[test]
    fn frames_round_trip() {
        let mut rng = fuzz::rng(7);
        for offset in 0..200u64 {
            let muts: Vec<Mutation> = (0..rng.gen_range(0..5))
                .map(|_| random_mutation(&mut rng))
                .collect();
            let d = decode_frames(&frame_of(&muts, offset)).unwrap();
            assert_eq!(d.len(), 1);
            assert_eq!((d[0].offset, d[0].tag, d[0].ts_us), (offset, 7, 42));
            assert_eq!(pbs(&d[0].mutations), pbs(&muts));
        }
    }

    #[test]
    fn corrupt_values_from_a_peer_are_refused() {
        let bad = [
            M::SetRange(pb::SetRange {
                key: "k".into(),
                offset: 1 << 62,
                data: "x".into(),
            }),
            M::SetRange(pb::SetRange {
                key: "k".into(),
                offset: u64::MAX,
                data: "x".into(),
            }),
            M::Zadd(pb::ZAdd {
                key: "k".into(),
                pairs: vec![pb::ScoredMember {
                    score: f64::NAN,
                    member: "m".into(),
                }],
            }),
            M::Put(pb::Put {
                key: "k".into(),
                value: Some(pb::Value {
                    v: Some(pb::value::V::Set(pb::Elems { items: vec![] })),
                }),
                expire_at: 0,
            }),
            M::Put(pb::Put {
                key: "k".into(),
                value: Some(pb::Value {
                    v: Some(pb::value::V::Set(pb::Elems {
                        items: vec!["a".into(), "a".into()],
                    })),
                }),
                expire_at: 0,
            }),
        ];
        for m in bad {
            let m = pb::Mutation { m: Some(m) };
            assert!(mutation_from_pb(m.clone()).is_none(), "{m:?}");
        }
    }

    #[test]
    fn fuzz_frames() {
        for seed in fuzz::seeds("fuzz_frames") {
            let mut rng = fuzz::rng(seed);
            for i in 0..2000u64 {
                let mut buf = Vec::new();
                for k in 0..rng.gen_range(1..4) {
                    let muts: Vec<Mutation> = (0..rng.gen_range(0..4))
                        .map(|_| random_mutation(&mut rng))
                        .collect();
                    buf.extend_from_slice(&frame_of(&muts, i * 4 + k));
                }
                let bad = fuzz::mutate(&mut rng, &buf);
                // Never a panic; what decodes re-encodes to the same thing.
                if let Ok(entries) = decode_frames(&bad) {
                    for e in entries {
                        let again = frame_of(&e.mutations, e.offset);
                        let back = decode_frames(&again).expect("re-encoded frame decodes");
                        assert_eq!(pbs(&back[0].mutations), pbs(&e.mutations), "seed {seed}");
                    }
                }
            }
        }
    }

    fn k(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Which variant `m` is; exhaustive, so a new variant must be added to
    /// [`one_of_each`] before this compiles.
    fn variant(m: &Mutation) -> usize {
        use Mutation as E;
        match m {
            E::Put { .. } => 0,
            E::SetStr { .. } => 1,
            E::Append { .. } => 2,
            E::SetRange { .. } => 3,
            E::Del { .. } => 4,
            E::Expire { .. } => 5,
            E::Rename { .. } => 6,
            E::Copy { .. } => 7,
            E::HSet { .. } => 8,
            E::HDel { .. } => 9,
            E::Push { .. } => 10,
            E::Pop { .. } => 11,
            E::LSet { .. } => 12,
            E::LInsert { .. } => 13,
            E::LRem { .. } => 14,
            E::LTrim { .. } => 15,
            E::SAdd { .. } => 16,
            E::SRem { .. } => 17,
            E::ZAdd { .. } => 18,
            E::ZRem { .. } => 19,
            E::FlushAll => 20,
            E::Publish { .. } => 21,
            E::Script(_) => 22,
            E::Select { .. } => 23,
            E::Move { .. } => 24,
            E::CopyDb { .. } => 25,
            E::SwapDb { .. } => 26,
            E::FlushDb => 27,
            E::Stream { .. } => 28,
        }
    }
    const VARIANTS: usize = 29;

    /// Every variant at least once, every value type and expiry mode, with
    /// edge values (empty and binary bytes, extreme numbers, infinities).
    fn one_of_each() -> Vec<Mutation> {
        let mut list = ListValue::new();
        list.push_back(Box::from(&b"a"[..]));
        list.push_back(Box::from(&b""[..]));
        let mut hash = HashValue::new();
        hash.insert(b"f1", b"v1");
        hash.insert(b"f2", b"");
        let mut set = SetValue::new();
        set.insert(b"m1");
        set.insert(b"\x00\xff");
        let mut zset = ZSet::new();
        zset.insert(b"lo", f64::NEG_INFINITY);
        zset.insert(b"mid", -0.5);
        zset.insert(b"hi", f64::INFINITY);
        let put = |key: &str, value: Value, expire_at: u64| Mutation::Put {
            key: k(key),
            value,
            expire_at,
        };
        vec![
            put("s", Value::Str(Box::from(&b"str"[..])), 0),
            put("l", Value::List(Box::new(list)), u64::MAX),
            put("h", Value::Hash(Box::new(hash)), 1),
            put("set", Value::Set(Box::new(set)), 0),
            put("z", Value::ZSet(Box::new(zset)), 123),
            Mutation::SetStr {
                key: k("k"),
                value: k(""),
                expire: ExpireSet::Clear,
            },
            Mutation::SetStr {
                key: k("k"),
                value: k("v"),
                expire: ExpireSet::Keep,
            },
            Mutation::SetStr {
                key: k("k"),
                value: k("v"),
                expire: ExpireSet::At(u64::MAX),
            },
            Mutation::Append {
                key: k("k"),
                data: Bytes::from_static(b"\r\n\x00"),
            },
            Mutation::SetRange {
                key: k("k"),
                offset: (MAX_PEER_STRING - 1) as usize,
                data: k("x"),
            },
            Mutation::Del { key: k("") },
            Mutation::Expire { key: k("k"), at: 0 },
            Mutation::Rename {
                from: k("a"),
                to: k("b"),
            },
            Mutation::Copy {
                from: k("a"),
                to: k("a"),
            },
            Mutation::HSet {
                key: k("h"),
                pairs: vec![(k("f"), k("v")), (k("f"), k(""))],
            },
            Mutation::HDel {
                key: k("h"),
                fields: vec![k("f"), k("g")],
            },
            Mutation::Push {
                key: k("l"),
                left: true,
                elems: vec![k("x")],
            },
            Mutation::Push {
                key: k("l"),
                left: false,
                elems: vec![],
            },
            Mutation::Pop {
                key: k("l"),
                left: false,
                count: usize::MAX,
            },
            Mutation::LSet {
                key: k("l"),
                index: 3,
                elem: k("e"),
            },
            Mutation::LInsert {
                key: k("l"),
                index: 0,
                elem: k("e"),
            },
            Mutation::LRem {
                key: k("l"),
                count: i64::MIN,
                elem: k("e"),
            },
            Mutation::LRem {
                key: k("l"),
                count: -2,
                elem: k("e"),
            },
            Mutation::LTrim {
                key: k("l"),
                start: 1,
                stop: usize::MAX,
            },
            Mutation::SAdd {
                key: k("s"),
                members: vec![k("a"), k("b")],
            },
            Mutation::SRem {
                key: k("s"),
                members: vec![k("a")],
            },
            // Not -0.0: proto3 leaves a 0.0 field out, so a zero's sign does
            // not survive a frame; commands never store -0 (they add 0.0).
            Mutation::ZAdd {
                key: k("z"),
                pairs: vec![
                    (f64::MIN_POSITIVE, k("m")),
                    (-1e-300, k("n")),
                    (f64::MAX, k("o")),
                ],
            },
            Mutation::ZRem {
                key: k("z"),
                members: vec![k("m"), k("zz")],
            },
            Mutation::FlushAll,
            Mutation::Select { db: u32::MAX },
            Mutation::Move { key: k("m"), db: 3 },
            Mutation::CopyDb {
                from: k("a"),
                to: k("b"),
                db: 15,
            },
            Mutation::SwapDb { a: 0, b: 9 },
            Mutation::FlushDb,
            Mutation::Select { db: 0 },
            Mutation::Publish {
                channel: k("news"),
                payload: k(""),
                shard: false,
            },
            Mutation::Publish {
                channel: k("news"),
                payload: k("x"),
                shard: true,
            },
            Mutation::Script(ScriptOp::Load(k("return 1"))),
            Mutation::Script(ScriptOp::Flush),
            Mutation::Script(ScriptOp::LoadLibrary(k("#!lua name=l\n"))),
            Mutation::Script(ScriptOp::DeleteLibrary(k("l"))),
            Mutation::Script(ScriptOp::FlushLibraries),
            put("x", Value::Stream(Box::new(stream_with_group())), 0),
        ]
        .into_iter()
        .chain(
            stream_ops()
                .into_iter()
                .map(|op| Mutation::Stream { key: k("x"), op }),
        )
        .collect()
    }

    fn stream_ops() -> Vec<crate::engine::StreamOp> {
        use crate::engine::stream::TrimBy;
        use crate::engine::{StreamId, StreamOp};
        let id = StreamId::new(u64::MAX, 7);
        vec![
            StreamOp::Add {
                id,
                fields: vec![k("f"), k("")],
                node_max_entries: 100,
                node_max_bytes: 4096,
            },
            StreamOp::Trim {
                by: TrimBy::MaxLen(3),
                approx: true,
                limit: 100,
            },
            StreamOp::Trim {
                by: TrimBy::MinId(id),
                approx: false,
                limit: 0,
            },
            StreamOp::Delete {
                ids: vec![id, StreamId::MIN],
            },
            StreamOp::SetId {
                last_id: id,
                entries_added: Some(0),
                max_deleted: None,
            },
            StreamOp::SetId {
                last_id: id,
                entries_added: None,
                max_deleted: Some(StreamId::MIN),
            },
            StreamOp::GroupCreate {
                group: k("g"),
                id,
                entries_read: -1,
                mkstream: true,
            },
            StreamOp::GroupSetId {
                group: k("g"),
                id,
                entries_read: 5,
            },
            StreamOp::GroupDestroy { group: k("g") },
            StreamOp::ConsumerCreate {
                group: k("g"),
                consumer: k("c"),
                seen_time: 9,
            },
            StreamOp::ConsumerDelete {
                group: k("g"),
                consumer: k(""),
            },
            StreamOp::GroupUpdate {
                group: k("g"),
                consumer: Some((k("c"), 10)),
                last: Some((id, 3)),
                claim: vec![(id, 11, 2)],
                ack: vec![StreamId::MIN],
            },
            StreamOp::GroupUpdate {
                group: k("g"),
                consumer: None,
                last: None,
                claim: vec![],
                ack: vec![id],
            },
        ]
    }

    fn stream_with_group() -> crate::engine::Stream {
        let mut s = crate::engine::Stream::new();
        for i in 0..300u64 {
            s.apply(&crate::engine::StreamOp::Add {
                id: crate::engine::StreamId::new(i + 1, 0),
                fields: vec![k("a"), k(&i.to_string())],
                node_max_entries: 100,
                node_max_bytes: 4096,
            });
        }
        let ops = stream_ops();
        for op in &ops[6..] {
            s.apply(op);
        }
        s.apply(&ops[6]);
        s.apply(&ops[9]);
        s.apply(&ops[11]);
        s.apply(&crate::engine::StreamOp::Delete {
            ids: vec![crate::engine::StreamId::new(5, 0)],
        });
        s
    }

    #[test]
    fn the_round_trip_list_covers_every_variant() {
        let mut seen = [false; VARIANTS];
        for m in one_of_each() {
            seen[variant(&m)] = true;
        }
        let missing: Vec<usize> = (0..VARIANTS).filter(|&i| !seen[i]).collect();
        assert!(
            missing.is_empty(),
            "variants without a round trip: {missing:?}"
        );
    }

    #[test]
    fn every_mutation_survives_the_protobuf_conversion() {
        for m in one_of_each() {
            let back = mutation_from_pb(mutation_to_pb(&m)).unwrap_or_else(|| panic!("{m:?}"));
            // Debug shows every field, values included (bits of -0.0 too).
            assert_eq!(format!("{back:?}"), format!("{m:?}"));
            assert_eq!(mutation_to_pb(&back), mutation_to_pb(&m));
        }
    }

    #[test]
    fn every_mutation_survives_a_log_entry_encode_frame_decode() {
        let all = one_of_each();
        // One entry per mutation, and one entry holding all of them.
        let mut buf = Vec::new();
        for (i, m) in all.iter().enumerate() {
            buf.extend_from_slice(&frame_of(std::slice::from_ref(m), i as u64));
        }
        let mut body = Vec::new();
        encode_mutations(&all, &mut body);
        put_frame(u64::MAX, u64::MAX, u64::MAX, &body, &mut buf);
        let d = decode_frames(&buf).unwrap();
        assert_eq!(d.len(), all.len() + 1);
        for (i, m) in all.iter().enumerate() {
            assert_eq!((d[i].offset, d[i].tag, d[i].ts_us), (i as u64, 7, 42));
            assert_eq!(d[i].mutations.len(), 1);
            assert_eq!(format!("{:?}", d[i].mutations[0]), format!("{m:?}"));
        }
        let last = &d[all.len()];
        assert_eq!(
            (last.offset, last.tag, last.ts_us),
            (u64::MAX, u64::MAX, u64::MAX)
        );
        assert_eq!(format!("{:?}", last.mutations), format!("{all:?}"));
    }

    #[test]
    fn snapshot_puts_carry_the_entry() {
        let mut set = SetValue::new();
        set.insert(b"m");
        let e = Entry {
            value: Value::Set(Box::new(set)),
            expire_at: 99,
            access: 0,
            scan_slot: 0,
        };
        let m = mutation_from_pb(put_pb(b"key", &e)).unwrap();
        let Mutation::Put {
            key,
            value: Value::Set(s),
            expire_at,
        } = m
        else {
            panic!("{m:?}")
        };
        assert_eq!((&key[..], expire_at), (&b"key"[..], 99));
        assert_eq!(s.iter().collect::<Vec<_>>(), [&b"m"[..]]);
    }

    #[test]
    fn frame_overhead_is_bounded_and_entries_without_mutations_decode() {
        let mut out = Vec::new();
        put_frame(u64::MAX, u64::MAX, u64::MAX, &[], &mut out);
        assert!(out.len() <= MAX_FRAME_OVERHEAD, "{}", out.len());
        let mut small = Vec::new();
        put_frame(0, 0, 0, &[], &mut small);
        let (len, body) = frame_body(&small).unwrap();
        assert_eq!(len, small.len());
        let d = decode_entry(Bytes::copy_from_slice(&small[body])).unwrap();
        assert_eq!((d.offset, d.tag, d.ts_us, d.mutations.len()), (0, 0, 0, 0));
    }

    #[test]
    fn truncated_frames_are_errors() {
        let frame = frame_of(&one_of_each(), 5);
        assert!(frame_body(&[]).is_err());
        for cut in 0..frame.len() {
            assert!(frame_body(&frame[..cut]).is_err(), "cut at {cut}");
        }
        assert!(frame_body(&frame).is_ok());
    }

    #[test]
    fn setrange_from_a_peer_is_bounded_by_max_peer_string() {
        let at = |offset: u64, data: &str| pb::Mutation {
            m: Some(M::SetRange(pb::SetRange {
                key: "k".into(),
                offset,
                data: Bytes::copy_from_slice(data.as_bytes()),
            })),
        };
        assert!(mutation_from_pb(at(MAX_PEER_STRING - 2, "xy")).is_some());
        assert!(mutation_from_pb(at(MAX_PEER_STRING - 1, "xy")).is_none());
        assert!(mutation_from_pb(at(MAX_PEER_STRING, "")).is_some());
    }

    #[test]
    fn incomplete_or_invalid_values_from_a_peer_are_refused() {
        use pb::value::V;
        let put = |v: Option<V>| pb::Mutation {
            m: Some(M::Put(pb::Put {
                key: "k".into(),
                value: Some(pb::Value { v }),
                expire_at: 0,
            })),
        };
        let pair = |a: &str, b: &str| pb::Pair {
            a: Bytes::copy_from_slice(a.as_bytes()),
            b: Bytes::copy_from_slice(b.as_bytes()),
        };
        let scored = |score: f64, m: &str| pb::ScoredMember {
            score,
            member: Bytes::copy_from_slice(m.as_bytes()),
        };
        let bad = [
            pb::Mutation { m: None },
            pb::Mutation {
                m: Some(M::Put(pb::Put {
                    key: "k".into(),
                    value: None,
                    expire_at: 0,
                })),
            },
            put(None),
            put(Some(V::List(pb::Elems { items: vec![] }))),
            put(Some(V::Hash(pb::Pairs { items: vec![] }))),
            put(Some(V::Hash(pb::Pairs {
                items: vec![pair("f", "1"), pair("f", "2")],
            }))),
            put(Some(V::Zset(pb::ScoredMembers { items: vec![] }))),
            put(Some(V::Zset(pb::ScoredMembers {
                items: vec![scored(1.0, "m"), scored(2.0, "m")],
            }))),
            put(Some(V::Zset(pb::ScoredMembers {
                items: vec![scored(f64::NAN, "m")],
            }))),
        ];
        for m in bad {
            assert!(mutation_from_pb(m.clone()).is_none(), "{m:?}");
        }
        // An empty string is a value; so is a list with repeated elements.
        assert!(mutation_from_pb(put(Some(V::Str(Bytes::new())))).is_some());
        let dup_list = V::List(pb::Elems {
            items: vec!["a".into(), "a".into()],
        });
        assert!(mutation_from_pb(put(Some(dup_list))).is_some());
        // One bad mutation fails the whole entry.
        let err = convert_all(vec![
            mutation_to_pb(&Mutation::FlushAll),
            pb::Mutation { m: None },
        ]);
        assert_eq!(err.err().as_deref(), Some("malformed mutation"));
    }
}
