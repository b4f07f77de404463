//! One value in RDB's object layout: a type byte, then the value. Writes the
//! plain encodings (string, list, set, sorted set with binary scores, hash);
//! reads those and Redis's compact ones (ziplist, listpack, intset,
//! quicklist).

use super::primitive::{write_len, write_str, Reader};
use super::{intset, listpack, ziplist};
use crate::engine::{HashValue, ListValue, SetValue, Value, ZSet};
use crate::util::number::parse_f64;

pub const TYPE_STRING: u8 = 0;
pub const TYPE_LIST: u8 = 1;
pub const TYPE_SET: u8 = 2;
pub const TYPE_ZSET: u8 = 3;
pub const TYPE_HASH: u8 = 4;
pub const TYPE_ZSET_2: u8 = 5;
pub const TYPE_LIST_ZIPLIST: u8 = 10;
pub const TYPE_SET_INTSET: u8 = 11;
pub const TYPE_ZSET_ZIPLIST: u8 = 12;
pub const TYPE_HASH_ZIPLIST: u8 = 13;
pub const TYPE_LIST_QUICKLIST: u8 = 14;
pub const TYPE_HASH_LISTPACK: u8 = 16;
pub const TYPE_ZSET_LISTPACK: u8 = 17;
pub const TYPE_LIST_QUICKLIST_2: u8 = 18;

/// Appends `v` in the plain encoding of its type.
pub fn write(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Stream(s) => super::stream::write(out, s),
        Value::Str(s) => {
            out.push(TYPE_STRING);
            write_str(out, s);
        }
        Value::List(l) => {
            out.push(TYPE_LIST);
            write_len(out, l.len());
            for e in l.iter() {
                write_str(out, e);
            }
        }
        Value::Set(s) => {
            out.push(TYPE_SET);
            write_len(out, s.len());
            for m in s.iter() {
                write_str(out, m);
            }
        }
        Value::ZSet(z) => {
            out.push(TYPE_ZSET_2);
            write_len(out, z.len());
            for (m, score) in z.iter() {
                write_str(out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Hash(h) => {
            out.push(TYPE_HASH);
            write_len(out, h.len());
            for (f, val) in h.iter() {
                write_str(out, f);
                write_str(out, val);
            }
        }
    }
}

/// Reads the object at the start of `body` (bytes after it are ignored).
/// None for anything that is not a valid value: an unknown type, damaged
/// data, an empty collection, a duplicate member or field, a NaN score.
pub fn read(body: &[u8]) -> Option<Value> {
    let mut r = Reader::new(body);
    let t = r.byte()?;
    match t {
        TYPE_STRING => Some(Value::Str(r.string()?.into_boxed_slice())),
        TYPE_LIST | TYPE_SET => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                v.push(r.string()?);
            }
            if t == TYPE_LIST {
                build_list(v)
            } else {
                build_set(v)
            }
        }
        TYPE_ZSET | TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                v.push((m, s));
            }
            build_zset(v)
        }
        TYPE_HASH => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let f = r.string()?;
                let val = r.string()?;
                v.push((f, val));
            }
            build_hash(v)
        }
        TYPE_SET_INTSET => build_set(intset::entries(&r.string()?)?),
        TYPE_LIST_ZIPLIST => build_list(ziplist::entries(&r.string()?)?),
        TYPE_HASH_ZIPLIST => build_hash(pairs_of(ziplist::entries(&r.string()?)?)?),
        TYPE_ZSET_ZIPLIST => build_zset(scored(ziplist::entries(&r.string()?)?)?),
        TYPE_HASH_LISTPACK => build_hash(pairs_of(listpack::entries(&r.string()?)?)?),
        TYPE_ZSET_LISTPACK => build_zset(scored(listpack::entries(&r.string()?)?)?),
        TYPE_LIST_QUICKLIST | TYPE_LIST_QUICKLIST_2 => read_quicklist(&mut r, t),
        super::stream::TYPE_STREAM_LISTPACKS | super::stream::TYPE_STREAM_LISTPACKS_2 => {
            super::stream::read(&mut r, t)
        }
        _ => None,
    }
}

/// A quicklist: a node count, then ziplists (RDB 9) or, in quicklist 2,
/// a container kind per node: 1 PLAIN (one element), 2 PACKED (a listpack).
fn read_quicklist(r: &mut Reader<'_>, t: u8) -> Option<Value> {
    let nodes = r.len()?;
    let mut v = Vec::new();
    for _ in 0..nodes {
        if t == TYPE_LIST_QUICKLIST {
            let zl = ziplist::entries(&r.string()?)?;
            if zl.is_empty() {
                return None;
            }
            v.extend(zl);
        } else {
            match r.len()? {
                // PLAIN node: one element.
                1 => v.push(r.string()?),
                // PACKED node: a listpack (empty ones are skipped, as Redis does).
                2 => v.extend(listpack::entries(&r.string()?)?),
                _ => return None,
            }
        }
    }
    build_list(v)
}

fn build_list(elems: Vec<Vec<u8>>) -> Option<Value> {
    if elems.is_empty() {
        return None;
    }
    let mut l = ListValue::new();
    for e in elems {
        l.push_back(e.into_boxed_slice());
    }
    Some(Value::List(Box::new(l)))
}

fn build_set(members: Vec<Vec<u8>>) -> Option<Value> {
    if members.is_empty() {
        return None;
    }
    let mut s = SetValue::new();
    for m in members {
        if !s.insert(&m) {
            return None;
        }
    }
    Some(Value::Set(Box::new(s)))
}

fn build_hash(pairs: Vec<(Vec<u8>, Vec<u8>)>) -> Option<Value> {
    if pairs.is_empty() {
        return None;
    }
    let mut h = HashValue::new();
    for (f, v) in pairs {
        if !h.insert(&f, &v) {
            return None;
        }
    }
    Some(Value::Hash(Box::new(h)))
}

fn build_zset(pairs: Vec<(Vec<u8>, f64)>) -> Option<Value> {
    if pairs.is_empty() {
        return None;
    }
    let mut z = ZSet::new();
    for (m, s) in pairs {
        if s.is_nan() || z.insert(&m, s).is_some() {
            return None;
        }
    }
    Some(Value::ZSet(Box::new(z)))
}

fn pairs_of(flat: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if !flat.len().is_multiple_of(2) {
        return None;
    }
    let mut it = flat.into_iter();
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        out.push((a, b));
    }
    Some(out)
}

fn scored(flat: Vec<Vec<u8>>) -> Option<Vec<(Vec<u8>, f64)>> {
    pairs_of(flat)?
        .into_iter()
        .map(|(m, s)| Some((m, parse_f64(&s)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rdb::lzf;

    fn written(v: &Value) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut out, v);
        out
    }

    /// An object of type `t` whose body is one RDB string holding `blob`.
    fn wrapped(t: u8, blob: &[u8]) -> Vec<u8> {
        let mut out = vec![t];
        write_str(&mut out, blob);
        out
    }

    fn list(elems: &[&[u8]]) -> Value {
        let mut l = ListValue::new();
        for e in elems {
            l.push_back(e.to_vec().into_boxed_slice());
        }
        Value::List(Box::new(l))
    }

    fn set(members: &[&[u8]]) -> Value {
        let mut s = SetValue::new();
        for m in members {
            s.insert(m);
        }
        Value::Set(Box::new(s))
    }

    fn hash(pairs: &[(&[u8], &[u8])]) -> Value {
        let mut h = HashValue::new();
        for (f, v) in pairs {
            h.insert(f, v);
        }
        Value::Hash(Box::new(h))
    }

    fn zset(pairs: &[(&[u8], f64)]) -> Value {
        let mut z = ZSet::new();
        for (m, s) in pairs {
            z.insert(m, *s);
        }
        Value::ZSet(Box::new(z))
    }

    fn string_of(v: &Value) -> Vec<u8> {
        match v {
            Value::Str(s) => s.to_vec(),
            _ => panic!("not a string"),
        }
    }

    fn list_of(v: &Value) -> Vec<Vec<u8>> {
        match v {
            Value::List(l) => l.iter().map(|e| e.to_vec()).collect(),
            _ => panic!("not a list"),
        }
    }

    fn set_of(v: &Value) -> Vec<Vec<u8>> {
        match v {
            Value::Set(s) => {
                let mut m: Vec<Vec<u8>> = s.iter().map(|m| m.to_vec()).collect();
                m.sort();
                m
            }
            _ => panic!("not a set"),
        }
    }

    fn hash_of(v: &Value) -> Vec<(Vec<u8>, Vec<u8>)> {
        match v {
            Value::Hash(h) => {
                let mut p: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
                p.sort();
                p
            }
            _ => panic!("not a hash"),
        }
    }

    fn zset_of(v: &Value) -> Vec<(Vec<u8>, f64)> {
        match v {
            Value::ZSet(z) => z.iter().map(|(m, s)| (m.to_vec(), s)).collect(),
            _ => panic!("not a sorted set"),
        }
    }

    fn texts(items: &[&[u8]]) -> Vec<Vec<u8>> {
        items.iter().map(|i| i.to_vec()).collect()
    }

    #[test]
    fn strings_round_trip() {
        let big = vec![b'z'; 100_000];
        for s in [&b""[..], b"hello", b"12345", &[0u8, 0xff, b'\n'][..], &big] {
            let v = Value::Str(s.to_vec().into_boxed_slice());
            assert_eq!(string_of(&read(&written(&v)).unwrap()), s);
        }
    }

    #[test]
    fn lists_round_trip_in_order() {
        let elems: [&[u8]; 5] = [b"b", b"", b"12", b"-7", b"b"];
        assert_eq!(
            list_of(&read(&written(&list(&elems))).unwrap()),
            texts(&elems)
        );
    }

    #[test]
    fn sets_round_trip() {
        let members: [&[u8]; 4] = [b"1", b"x", b"y", b""];
        let mut want = texts(&members);
        want.sort();
        assert_eq!(set_of(&read(&written(&set(&members))).unwrap()), want);
    }

    #[test]
    fn sorted_sets_round_trip_with_exact_scores() {
        let pairs: [(&[u8], f64); 5] = [
            (b"ninf", f64::NEG_INFINITY),
            (b"tiny", 5e-324),
            (b"b", 0.1 + 0.2),
            (b"a", 1.5),
            (b"inf", f64::INFINITY),
        ];
        let back = zset_of(&read(&written(&zset(&pairs))).unwrap());
        assert_eq!(back.len(), pairs.len());
        for ((m, s), (wm, ws)) in back.iter().zip(pairs) {
            assert_eq!(m.as_slice(), wm);
            assert_eq!(s.to_bits(), ws.to_bits());
        }
    }

    #[test]
    fn hashes_round_trip() {
        let pairs: [(&[u8], &[u8]); 3] = [(b"f", b"v"), (b"g", b""), (b"", b"empty field")];
        let mut want: Vec<_> = pairs
            .iter()
            .map(|(f, v)| (f.to_vec(), v.to_vec()))
            .collect();
        want.sort();
        assert_eq!(hash_of(&read(&written(&hash(&pairs))).unwrap()), want);
    }

    #[test]
    fn writes_the_plain_layouts() {
        assert_eq!(
            written(&Value::Str(b"ab".to_vec().into())),
            [0, 2, b'a', b'b']
        );
        assert_eq!(written(&list(&[b"x"])), [1, 1, 1, b'x']);
        assert_eq!(written(&set(&[b"x"])), [2, 1, 1, b'x']);
        assert_eq!(written(&hash(&[(b"f", b"v")])), [4, 1, 1, b'f', 1, b'v']);
        let mut z = vec![5, 1, 1, b'a'];
        z.extend_from_slice(&1.5f64.to_le_bytes());
        assert_eq!(written(&zset(&[(b"a", 1.5)])), z);
    }

    #[test]
    fn reads_integer_and_lzf_strings() {
        assert_eq!(string_of(&read(&[0, 0xc1, 0x39, 0x30]).unwrap()), b"12345");
        assert_eq!(string_of(&read(&[0, 0xc0, 0xff]).unwrap()), b"-1");
        let text = b"compressible, compressible, compressible".repeat(3);
        let packed = lzf::compress(&text);
        let mut obj = vec![TYPE_STRING, 0xc3];
        write_len(&mut obj, packed.len());
        write_len(&mut obj, text.len());
        obj.extend_from_slice(&packed);
        assert_eq!(string_of(&read(&obj).unwrap()), text);
    }

    #[test]
    fn reads_sorted_sets_with_text_scores() {
        // RDB_TYPE_ZSET: scores as text, 254 for +inf, 255 for -inf.
        let obj = [
            &[TYPE_ZSET, 3, 1, b'a', 3][..],
            b"1.5",
            &[1, b'b', 254, 1, b'c', 255],
        ]
        .concat();
        let back = zset_of(&read(&obj).unwrap());
        let want = vec![
            (b"c".to_vec(), f64::NEG_INFINITY),
            (b"a".to_vec(), 1.5),
            (b"b".to_vec(), f64::INFINITY),
        ];
        assert_eq!(back, want);
    }

    #[test]
    fn reads_intset_sets() {
        let obj = wrapped(TYPE_SET_INTSET, &intset::encode(&[-5, 7, 70_000]));
        assert_eq!(
            set_of(&read(&obj).unwrap()),
            texts(&[b"-5", b"7", b"70000"])
        );
    }

    #[test]
    fn reads_ziplist_lists_hashes_and_sorted_sets() {
        let zl = ziplist::encode(&[b"a", b"5", b"b", b"-2.5"]);
        let as_list = read(&wrapped(TYPE_LIST_ZIPLIST, &zl)).unwrap();
        assert_eq!(list_of(&as_list), texts(&[b"a", b"5", b"b", b"-2.5"]));
        let as_hash = read(&wrapped(TYPE_HASH_ZIPLIST, &zl)).unwrap();
        let want = vec![
            (b"a".to_vec(), b"5".to_vec()),
            (b"b".to_vec(), b"-2.5".to_vec()),
        ];
        assert_eq!(hash_of(&as_hash), want);
        let as_zset = read(&wrapped(TYPE_ZSET_ZIPLIST, &zl)).unwrap();
        assert_eq!(
            zset_of(&as_zset),
            vec![(b"b".to_vec(), -2.5), (b"a".to_vec(), 5.0)]
        );
    }

    #[test]
    fn reads_listpack_hashes_and_sorted_sets() {
        let lp = listpack::encode(&[b"f", b"v", b"n", b"7"]);
        let as_hash = read(&wrapped(TYPE_HASH_LISTPACK, &lp)).unwrap();
        let want = vec![
            (b"f".to_vec(), b"v".to_vec()),
            (b"n".to_vec(), b"7".to_vec()),
        ];
        assert_eq!(hash_of(&as_hash), want);
        let lp = listpack::encode(&[b"a", b"1.5", b"b", b"-3"]);
        let as_zset = read(&wrapped(TYPE_ZSET_LISTPACK, &lp)).unwrap();
        assert_eq!(
            zset_of(&as_zset),
            vec![(b"b".to_vec(), -3.0), (b"a".to_vec(), 1.5)]
        );
    }

    #[test]
    fn reads_quicklists_of_both_versions() {
        // Version 1: ziplist nodes.
        let mut obj = vec![TYPE_LIST_QUICKLIST, 2];
        write_str(&mut obj, &ziplist::encode(&[b"a", b"1"]));
        write_str(&mut obj, &ziplist::encode(&[b"b"]));
        assert_eq!(list_of(&read(&obj).unwrap()), texts(&[b"a", b"1", b"b"]));
        // Version 2: a packed node, a plain node, an empty packed node (skipped).
        let mut obj = vec![TYPE_LIST_QUICKLIST_2, 3, 2];
        write_str(&mut obj, &listpack::encode(&[b"a", b"1"]));
        obj.push(1);
        write_str(&mut obj, b"plain");
        obj.push(2);
        write_str(&mut obj, &listpack::encode(&[]));
        assert_eq!(
            list_of(&read(&obj).unwrap()),
            texts(&[b"a", b"1", b"plain"])
        );
    }

    #[test]
    fn rejects_empty_collections() {
        for t in [TYPE_LIST, TYPE_SET, TYPE_ZSET, TYPE_ZSET_2, TYPE_HASH] {
            assert!(read(&[t, 0]).is_none(), "type {t}");
        }
        assert!(read(&wrapped(TYPE_SET_INTSET, &intset::encode(&[]))).is_none());
        assert!(read(&wrapped(TYPE_LIST_ZIPLIST, &ziplist::encode(&[]))).is_none());
        assert!(read(&wrapped(TYPE_HASH_LISTPACK, &listpack::encode(&[]))).is_none());
        assert!(read(&[TYPE_LIST_QUICKLIST_2, 0]).is_none());
        // A quicklist 1 node holding an empty ziplist.
        let mut obj = vec![TYPE_LIST_QUICKLIST, 1];
        write_str(&mut obj, &ziplist::encode(&[]));
        assert!(read(&obj).is_none());
    }

    #[test]
    fn rejects_duplicates_and_nan_scores() {
        assert!(read(&[TYPE_SET, 2, 1, b'x', 1, b'x']).is_none());
        assert!(read(&[TYPE_HASH, 2, 1, b'f', 0, 1, b'f', 0]).is_none());
        let mut dup = vec![TYPE_ZSET_2, 2];
        for _ in 0..2 {
            dup.extend_from_slice(&[1, b'm']);
            dup.extend_from_slice(&1.0f64.to_le_bytes());
        }
        assert!(read(&dup).is_none());
        let mut nan = vec![TYPE_ZSET_2, 1, 1, b'm'];
        nan.extend_from_slice(&f64::NAN.to_le_bytes());
        assert!(read(&nan).is_none());
        assert!(read(&[TYPE_ZSET, 1, 1, b'm', 253]).is_none());
    }

    #[test]
    fn rejects_odd_pairs_and_bad_scores_in_compact_encodings() {
        let odd = listpack::encode(&[b"f", b"v", b"g"]);
        assert!(read(&wrapped(TYPE_HASH_LISTPACK, &odd)).is_none());
        assert!(read(&wrapped(TYPE_ZSET_LISTPACK, &odd)).is_none());
        let not_a_score = listpack::encode(&[b"m", b"abc"]);
        assert!(read(&wrapped(TYPE_ZSET_LISTPACK, &not_a_score)).is_none());
        let odd = ziplist::encode(&[b"f"]);
        assert!(read(&wrapped(TYPE_HASH_ZIPLIST, &odd)).is_none());
    }

    #[test]
    fn rejects_unknown_types_and_quicklist_containers() {
        // 6-9: old or module types; 15, 19: streams; 20: set listpack (Redis 7.2).
        for t in [6, 7, 8, 9, 15, 19, 20, 21, 255] {
            assert!(read(&wrapped(t, b"x")).is_none(), "type {t}");
        }
        let mut obj = vec![TYPE_LIST_QUICKLIST_2, 1, 3];
        write_str(&mut obj, b"x");
        assert!(read(&obj).is_none());
        assert!(read(&[]).is_none());
    }

    #[test]
    fn rejects_every_truncation() {
        let mut q2 = vec![TYPE_LIST_QUICKLIST_2, 2, 2];
        write_str(&mut q2, &listpack::encode(&[b"a", b"1"]));
        q2.push(1);
        write_str(&mut q2, b"plain");
        let objects = [
            written(&Value::Str(b"hello".to_vec().into())),
            written(&list(&[b"a", b"bc"])),
            written(&set(&[b"a", b"bc"])),
            written(&zset(&[(b"a", 1.0), (b"b", 2.0)])),
            written(&hash(&[(b"f", b"v"), (b"g", b"w")])),
            wrapped(TYPE_SET_INTSET, &intset::encode(&[1, 2])),
            wrapped(TYPE_LIST_ZIPLIST, &ziplist::encode(&[b"a", b"1"])),
            wrapped(TYPE_HASH_LISTPACK, &listpack::encode(&[b"f", b"v"])),
            q2,
        ];
        for obj in objects {
            assert!(read(&obj).is_some(), "{obj:?}");
            for cut in 0..obj.len() {
                assert!(read(&obj[..cut]).is_none(), "{obj:?} cut at {cut}");
            }
        }
    }

    #[test]
    fn ignores_bytes_after_the_object() {
        let mut obj = written(&list(&[b"a"]));
        obj.extend_from_slice(b"trailing");
        assert_eq!(list_of(&read(&obj).unwrap()), texts(&[b"a"]));
    }
}
