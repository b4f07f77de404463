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
}
