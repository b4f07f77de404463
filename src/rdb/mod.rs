//! Redis's DUMP payload: one value in RDB's object encoding, then the
//! 2-byte little-endian RDB version and the CRC-64 of everything before it.
//!
//! [`encode`] writes the plain encodings (string, list, set, sorted set with
//! binary scores, hash) and version 10, so a payload from jcache can be
//! restored by Redis 7.0 too. [`decode`] also reads Redis's compact encodings
//! (ziplist, listpack, intset, quicklist, LZF-compressed and integer-encoded
//! strings), so payloads dumped by Redis restore here as well. Payloads are
//! always validated completely: whatever decodes is a valid value.
//!
//! Pure: bytes in, [`Value`] out. This module knows nothing of commands,
//! replies, connections or the keyspace; its errors are [`DecodeError`],
//! which the command layer turns into reply texts.
//!
//! One file per encoding: `object.rs` (type byte and value layout),
//! `primitive.rs` (lengths, strings, scores), `lzf.rs`, `listpack.rs`,
//! `ziplist.rs`, `intset.rs`, `crc64.rs`.

mod crc64;
mod functions;
mod intset;
mod listpack;
mod lzf;
mod object;
mod primitive;
mod stream;
mod ziplist;

pub use crc64::crc64;
pub use functions::{decode_functions, encode_functions};

use crate::engine::Value;

/// Redis 7.0's RDB version, written in (and the highest accepted from) payload trailers.
pub const RDB_VERSION: u16 = 10;

/// The trailer: the 2-byte version and the 8-byte CRC-64.
const TRAILER_LEN: usize = 10;

/// Why a payload was refused, in the order Redis checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Too short for a trailer, a version newer than [`RDB_VERSION`], or a
    /// CRC that does not match (Redis's verifyDumpPayload).
    VersionOrChecksum,
    /// The object itself is damaged, of an unknown type, or not a valid
    /// value (an empty collection, a duplicate, a NaN score).
    BadFormat,
}

/// The DUMP payload of a value.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    object::write(&mut out, v);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value of a RESTORE payload: the trailer is checked first, then the
/// object is read. Like Redis, the object is read from the whole payload
/// (trailer included), and bytes after it are ignored.
pub fn decode(payload: &[u8]) -> Result<Value, DecodeError> {
    if !verify(payload) {
        return Err(DecodeError::VersionOrChecksum);
    }
    object::read(payload).ok_or(DecodeError::BadFormat)
}

/// Redis's verifyDumpPayload: a version we can read and a matching CRC.
fn verify(p: &[u8]) -> bool {
    if p.len() < TRAILER_LEN {
        return false;
    }
    let footer = &p[p.len() - TRAILER_LEN..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return false;
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap());
    crc64(&p[..p.len() - 8]) == crc
}

#[cfg(test)]
mod tests {
    use super::object::*;
    use super::*;
    use crate::engine::{HashValue, ListValue, SetValue, ZSet};

    /// Payloads written by redis-server 7.0.15's DUMP (hex), with the
    /// encoding Redis chose.
    const REDIS_STRING_LZF: &str = "00c30c2d016161e01d000468656c6c6f0a008374cc5c4d4114cc";
    const REDIS_STRING_INT: &str = "00c139300a009d94ea2793fc08b9";
    const REDIS_LIST_QUICKLIST_2: &str =
        "1201021111000000040081610205018001dff902ff0a004be87f6f22960536";
    const REDIS_SET_INTSET: &str = "0b0e0200000003000000010002002c010a00e510b28e7b9529aa";
    const REDIS_SET_HASHTABLE: &str = "0202017901780a000cdf6b3db330bcf0";
    const REDIS_HASH_LISTPACK: &str =
        "1012120000000400816602817602816e020701ff0a00b82adea8407ffaa8";
    const REDIS_ZSET_LISTPACK: &str =
        "111414000000040081610283312e35048162020201ff0a00fa02b425af188763";
    const REDIS_ZSET_SKIPLIST: &str = "05010161000000000000f83f0a0045a3a88f44e959da";
    const REDIS_HASH_HASHTABLE: &str = "0401016601760a00adf24356b1860efc";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A value as sorted parts, to compare values whatever their iteration
    /// order: (type, elements; pairs and scores as text).
    fn canon(v: &Value) -> (u8, Vec<Vec<u8>>) {
        let mut parts: Vec<Vec<u8>> = match v {
            Value::Str(s) => vec![s.to_vec()],
            Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
            Value::Set(s) => s.iter().map(|m| m.to_vec()).collect(),
            Value::Hash(h) => h.iter().map(|(f, v)| [f, b"=", v].concat()).collect(),
            Value::ZSet(z) => z
                .iter()
                .map(|(m, sc)| [m, b"=", &sc.to_bits().to_le_bytes()].concat())
                .collect(),
            Value::Stream(s) => s
                .range(
                    crate::engine::StreamId::MIN,
                    crate::engine::StreamId::MAX,
                    false,
                )
                .map(|(id, f)| [id.text().as_bytes(), b"=", &f.to_vec().concat()].concat())
                .collect(),
        };
        let t = match v {
            Value::Str(_) => 0,
            Value::List(_) => {
                return (1, parts);
            }
            Value::Set(_) => 2,
            Value::ZSet(_) => 3,
            Value::Hash(_) => 4,
            Value::Stream(_) => return (5, parts),
        };
        parts.sort();
        (t, parts)
    }

    fn canon_of(t: u8, parts: &[&[u8]]) -> (u8, Vec<Vec<u8>>) {
        (t, parts.iter().map(|p| p.to_vec()).collect())
    }

    fn scored(m: &str, s: f64) -> Vec<u8> {
        [m.as_bytes(), b"=", &s.to_bits().to_le_bytes()].concat()
    }

    /// `body` with Redis's trailer (version 10, CRC-64).
    fn with_trailer(body: &[u8]) -> Vec<u8> {
        with_version(body, RDB_VERSION)
    }

    fn with_version(body: &[u8], version: u16) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&version.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    #[test]
    fn decodes_payloads_dumped_by_redis() {
        let decoded = |hex: &str| canon(&decode(&unhex(hex)).unwrap());
        let mut lzf = vec![b'a'; 40];
        lzf.extend_from_slice(b"hello");
        assert_eq!(decoded(REDIS_STRING_LZF), (0, vec![lzf]));
        assert_eq!(decoded(REDIS_STRING_INT), canon_of(0, &[b"12345"]));
        assert_eq!(
            decoded(REDIS_LIST_QUICKLIST_2),
            canon_of(1, &[b"a", b"5", b"", b"-7"])
        );
        assert_eq!(
            decoded(REDIS_SET_INTSET),
            canon_of(2, &[b"1", b"2", b"300"])
        );
        assert_eq!(decoded(REDIS_SET_HASHTABLE), canon_of(2, &[b"x", b"y"]));
        assert_eq!(decoded(REDIS_HASH_LISTPACK), canon_of(4, &[b"f=v", b"n=7"]));
        assert_eq!(decoded(REDIS_HASH_HASHTABLE), canon_of(4, &[b"f=v"]));
        let mut zset = vec![scored("a", 1.5), scored("b", 2.0)];
        zset.sort();
        assert_eq!(decoded(REDIS_ZSET_LISTPACK), (3, zset));
        assert_eq!(decoded(REDIS_ZSET_SKIPLIST), (3, vec![scored("a", 1.5)]));
    }

    #[test]
    fn encodes_like_redis_for_the_plain_encodings() {
        // A hash with one field and a sorted set with one member are the
        // same bytes as Redis's hashtable and skiplist dumps, trailer included.
        let mut h = HashValue::new();
        h.insert(b"f", b"v");
        assert_eq!(
            encode(&Value::Hash(Box::new(h))),
            unhex(REDIS_HASH_HASHTABLE)
        );
        let mut z = ZSet::new();
        z.insert(b"a", 1.5);
        assert_eq!(
            encode(&Value::ZSet(Box::new(z))),
            unhex(REDIS_ZSET_SKIPLIST)
        );
    }

    #[test]
    fn payload_round_trip() {
        let mut h = HashValue::new();
        h.insert(b"f", b"v");
        let v = Value::Hash(Box::new(h));
        let p = encode(&v);
        assert!(verify(&p));
        let back = object::read(&p[..p.len() - TRAILER_LEN]).unwrap();
        match back {
            Value::Hash(h) => assert_eq!(h.get(b"f"), Some(&b"v"[..])),
            _ => panic!("wrong type"),
        }
    }

    #[test]
    fn every_type_round_trips_through_a_payload() {
        for v in seed_values() {
            let back = decode(&encode(&v)).unwrap();
            assert_eq!(canon(&back), canon(&v));
        }
    }

    #[test]
    fn rejects_a_bad_checksum() {
        let good = unhex(REDIS_HASH_HASHTABLE);
        assert!(decode(&good).is_ok());
        // Any flipped bit, in the object, the version or the CRC itself.
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x10;
            assert_eq!(
                decode(&bad).err(),
                Some(DecodeError::VersionOrChecksum),
                "byte {i}"
            );
        }
    }

    #[test]
    fn rejects_a_newer_version_and_accepts_older_ones() {
        let body = [TYPE_STRING, 1, b'x'];
        assert!(decode(&with_version(&body, 9)).is_ok());
        assert!(decode(&with_version(&body, 1)).is_ok());
        assert_eq!(
            decode(&with_version(&body, RDB_VERSION + 1)).err(),
            Some(DecodeError::VersionOrChecksum)
        );
        assert_eq!(
            decode(&with_version(&body, u16::MAX)).err(),
            Some(DecodeError::VersionOrChecksum)
        );
    }

    #[test]
    fn rejects_truncated_payloads() {
        let good = unhex(REDIS_HASH_LISTPACK);
        // Cut anywhere, the trailer no longer checks out.
        for cut in 0..good.len() {
            assert_eq!(
                decode(&good[..cut]).err(),
                Some(DecodeError::VersionOrChecksum),
                "cut at {cut}"
            );
        }
        // A truncated object under a valid trailer is a format error. The
        // object is read from the whole payload, trailer included (as Redis
        // does), so these cuts leave too few bytes even with the trailer.
        let object = &good[..good.len() - TRAILER_LEN];
        for cut in [0, 1, 2, 7] {
            assert_eq!(
                decode(&with_trailer(&object[..cut])).err(),
                Some(DecodeError::BadFormat),
                "cut at {cut}"
            );
        }
        let list_cut_after_one_of_three = [TYPE_LIST, 3, 1, b'a'];
        assert_eq!(
            decode(&with_trailer(&list_cut_after_one_of_three)).err(),
            Some(DecodeError::BadFormat)
        );
    }

    #[test]
    fn rejects_invalid_values_under_a_valid_trailer() {
        for body in [
            &[TYPE_LIST, 0][..],
            &[TYPE_SET, 2, 1, b'x', 1, b'x'],
            &[6, 0],
            &[TYPE_STRING, 0xc4],
        ] {
            assert_eq!(
                decode(&with_trailer(body)).err(),
                Some(DecodeError::BadFormat),
                "{body:?}"
            );
        }
    }

    /// One value of every type.
    fn seed_values() -> Vec<Value> {
        let mut l = ListValue::new();
        for e in [&b"a"[..], b"", b"12", b"-7"] {
            l.push_back(e.into());
        }
        let mut set = SetValue::new();
        for m in [&b"x"[..], b"y", b"1"] {
            set.insert(m);
        }
        let mut z = ZSet::new();
        z.insert(b"a", 1.5);
        z.insert(b"b", f64::NEG_INFINITY);
        let mut h = HashValue::new();
        h.insert(b"f", b"v");
        h.insert(b"g", b"");
        vec![
            Value::Str(b"hello world".to_vec().into()),
            Value::List(Box::new(l)),
            Value::Set(Box::new(set)),
            Value::ZSet(Box::new(z)),
            Value::Hash(Box::new(h)),
        ]
    }

    /// Payloads of every type and of Redis's compact encodings.
    fn seed_payloads() -> Vec<Vec<u8>> {
        let mut out: Vec<Vec<u8>> = seed_values().iter().map(encode).collect();
        // Integer-encoded and LZF strings.
        out.push(with_trailer(&[0x00, 0xc1, 0x39, 0x30]));
        out.push(with_trailer(&[
            0x00, 0xc3, 0x05, 0x0a, 0x00, b'a', 0xe0, 0x00, 0x00,
        ]));
        // Intset {1, 2, 300}.
        let is = intset::encode(&[1, 2, 300]);
        let mut body = vec![TYPE_SET_INTSET, is.len() as u8];
        body.extend_from_slice(&is);
        out.push(with_trailer(&body));
        // Listpack {f: v, n: 7} as a hash and as a zset {f: 7}.
        let hl = listpack::encode(&[b"f", b"v", b"n", b"7"]);
        let mut body = vec![TYPE_HASH_LISTPACK, hl.len() as u8];
        body.extend_from_slice(&hl);
        out.push(with_trailer(&body));
        let zl = listpack::encode(&[b"f", b"7"]);
        let mut body = vec![TYPE_ZSET_LISTPACK, zl.len() as u8];
        body.extend_from_slice(&zl);
        out.push(with_trailer(&body));
        // Quicklist 2 with one packed node (the listpack above as a list).
        let mut body = vec![TYPE_LIST_QUICKLIST_2, 1, 2, hl.len() as u8];
        body.extend_from_slice(&hl);
        out.push(with_trailer(&body));
        // Ziplist {a, 5} as a list.
        let zip = ziplist::encode(&[b"a", b"5"]);
        let mut body = vec![TYPE_LIST_ZIPLIST, zip.len() as u8];
        body.extend_from_slice(&zip);
        out.push(with_trailer(&body));
        // Redis's own dumps.
        for hex in [
            REDIS_STRING_LZF,
            REDIS_LIST_QUICKLIST_2,
            REDIS_ZSET_LISTPACK,
            REDIS_SET_HASHTABLE,
        ] {
            out.push(unhex(hex));
        }
        out
    }

    #[test]
    fn fuzz_restore_payloads() {
        use crate::util::fuzz;
        let seeds = seed_payloads();
        for p in &seeds {
            assert!(verify(p));
            assert!(object::read(p).is_some(), "seed payload {p:?}");
        }
        let mut accepted = 0;
        for seed in fuzz::seeds("fuzz_restore_payloads") {
            let mut rng = fuzz::rng(seed);
            for i in 0..20_000 {
                let base = &seeds[i % seeds.len()];
                // Mutate the object, then give it a valid trailer so the
                // parser, not the checksum, meets the damage.
                let body = fuzz::mutate(&mut rng, &base[..base.len() - TRAILER_LEN]);
                let payload = with_trailer(&body);
                let Ok(v) = decode(&payload) else {
                    continue;
                };
                accepted += 1;
                // Whatever is accepted is a valid value: no empty collection,
                // no NaN score, and it dumps and restores to itself.
                let (t, parts) = canon(&v);
                // (Strings and streams may be empty.)
                assert!(
                    t == 0 || t == 5 || !parts.is_empty(),
                    "seed {seed}: empty {body:?}"
                );
                if let Value::ZSet(z) = &v {
                    assert!(z.iter().all(|(_, s)| !s.is_nan()), "seed {seed}");
                }
                let again = encode(&v);
                let back = decode(&again).expect("a dumped value restores");
                assert_eq!(canon(&back), (t, parts), "seed {seed}: {body:?}");
            }
        }
        // Some mutations keep the payload valid; the check above ran.
        assert!(accepted > 0);
    }
}
