//! The replication wire format: the protobuf types generated from
//! `proto/replication.proto`, conversions between engine `Mutation`s and
//! them, and the encoding of log entries (made once, at commit, and kept as
//! bytes by the log; see `replication`).

use bytes::Bytes;

use crate::engine::{Entry, ExpireSet, HashValue, ListValue, Mutation, SetValue, Value, ZSet};

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
    };
    pb::Value { v: Some(v) }
}

fn value_from_pb(v: pb::Value) -> Option<Value> {
    use pb::value::V;
    Some(match v.v? {
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
                x.insert(&p.a, &p.b);
            }
            Value::Hash(Box::new(x))
        }
        V::Set(s) => {
            let mut x = SetValue::new();
            for m in s.items {
                x.insert(&m);
            }
            Value::Set(Box::new(x))
        }
        V::Zset(z) => {
            let mut x = ZSet::new();
            for m in z.items {
                x.insert(&m.member, m.score);
            }
            Value::ZSet(Box::new(x))
        }
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
        E::Publish { channel, payload } => M::Publish(pb::Publish {
            channel: b(channel),
            payload: b(payload),
        }),
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
        M::SetRange(s) => E::SetRange {
            key: s.key,
            offset: s.offset as usize,
            data: s.data,
        },
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
        M::Zadd(z) => E::ZAdd {
            key: z.key,
            pairs: z.pairs.into_iter().map(|p| (p.score, p.member)).collect(),
        },
        M::Zrem(k) => E::ZRem {
            key: k.key,
            members: k.items,
        },
        M::Flushall(_) => E::FlushAll,
        M::Publish(p) => E::Publish {
            channel: p.channel,
            payload: p.payload,
        },
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
