//! SORT / SORT_RO and DUMP / RESTORE.
//!
//! SORT reads, besides the key it sorts, keys named by its BY / GET patterns
//! (`weight_*`, `obj_*->field`): any key of the keyspace, in any shard. Redis
//! declares only the sorted key and the STORE destination, so the command is
//! registered with [`KeySpec::AllShards`]: every shard is locked (correct and
//! simple), while COMMAND GETKEYS still reports Redis's keys.
//!
//! DUMP payloads use Redis's RDB object encoding for the plain types
//! (string, list, set, sorted set with binary scores, hash), so a payload from
//! jcache can be restored by Redis 7.0 too, followed by Redis's trailer: the
//! 2-byte little-endian RDB version (10) and the CRC-64/Jones (Redis's
//! `crc64`, reflected, poly 0xad93d23594c935a9, init 0) of everything before
//! it, little-endian. RESTORE also reads Redis's compact encodings (ziplist,
//! listpack, intset, quicklist, LZF-compressed and integer-encoded strings),
//! so payloads dumped by Redis restore here as well. Payloads are always
//! validated completely (`sanitize-dump-payload` is accepted and has no
//! further effect).

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_f64, parse_i64, NOT_INT, SYNTAX, WRONGTYPE};
use super::KEY1;
use super::{Command, Ctx, KeySpec};
use crate::engine::{evict, HashValue, Keys, ListValue, Mutation, SetValue, Value, ZSet};

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    Command::new(
        "sort",
        -2,
        WRITE | DENYOOM,
        KeySpec::AllShards(sort_keys),
        sort,
        G,
    ),
    Command::new(
        "sort_ro",
        -2,
        READONLY,
        KeySpec::AllShards(sort_ro_keys),
        sort_ro,
        G,
    ),
    Command::new("dump", 2, READONLY, KEY1, dump, G),
    Command::new("restore", -4, WRITE | DENYOOM, KEY1, restore, G),
];

// ---- key positions (COMMAND GETKEYS) ----

/// Redis's sortGetKeys: the sorted key, and the last STORE destination.
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 2 {
        return Vec::new();
    }
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

fn sort_ro_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 2 {
        Vec::new()
    } else {
        vec![1]
    }
}

// ---- SORT ----

const SCORE_ERR: &str = "ERR One or more scores can't be converted into double";

/// The bytes a C string function sees (up to the first NUL).
fn cstr(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// SORT's numeric weight: Redis runs `strtod` and refuses trailing bytes,
/// NaN and ERANGE (overflow, and underflow to zero or a subnormal). Leading
/// whitespace is skipped and an empty string is 0, as with `strtod`.
fn sort_score(s: &[u8]) -> Option<f64> {
    let s = cstr(s);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    let v = parse_f64(&s[start..])?;
    if v != 0.0 && v.is_finite() && v.abs() < f64::MIN_POSITIVE {
        return None;
    }
    Some(v)
}

/// Redis's lookupKeyByPattern: `#` is the element itself; otherwise the
/// first `*` is replaced by the element, and a `->field` suffix (after the
/// star, with a non-empty field) reads that field of a hash. A missing key,
/// a key of the wrong type, or a pattern without `*` gives None.
fn lookup_by_pattern(ks: &mut Keys<'_>, pat: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    let cpat = cstr(pat);
    if cpat == b"#" {
        return Some(subst.to_vec());
    }
    let p = cpat.iter().position(|&c| c == b'*')?;
    let arrow = cpat[p + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| p + 1 + i)
        .filter(|&f| f + 2 < cpat.len());
    let (field, postfix) = match arrow {
        Some(f) => (Some(&pat[f + 2..]), &pat[p + 1..f]),
        None => (None, &pat[p + 1..]),
    };
    let mut key = Vec::with_capacity(p + subst.len() + postfix.len());
    key.extend_from_slice(&pat[..p]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    let e = ks.get(&key)?;
    match (field, &e.value) {
        (Some(f), Value::Hash(h)) => h.get(f).map(|v| v.to_vec()),
        (None, Value::Str(s)) => Some(s.to_vec()),
        _ => None,
    }
}

struct SortItem {
    obj: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the weight (None when its key is missing).
    cmp: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

fn sort(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    sort_generic(ctx, args, false);
}

fn sort_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    sort_generic(ctx, args, true);
}

/// Redis's sortCommandGeneric, step by step (LIMIT clamping, the native-order
/// shortcuts of BY nosort for lists and sorted sets, the error for weights
/// that are not doubles reported only after loading everything).
fn sort_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], readonly: bool) {
    let mut desc = false;
    let mut alpha = false;
    let mut limit_start: i64 = 0;
    let mut limit_count: i64 = -1;
    let mut dontsort = false;
    let mut sortby: Option<&[u8]> = None;
    let mut store: Option<&Bytes> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            let Some(s) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            let Some(c) = ctx.int_arg(&args[j + 2]) else {
                return;
            };
            limit_start = s;
            limit_count = c;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            sortby = Some(&args[j + 1]);
            // A constant pattern means "don't sort" (and it sticks, as in Redis).
            if !cstr(&args[j + 1]).contains(&b'*') {
                dontsort = true;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            ctx.err(SYNTAX);
            return;
        }
        j += 1;
    }

    let key = &args[1];
    let (kind, len) = match ctx.ks.get(key) {
        None => (Kind::List, 0),
        Some(e) => match &e.value {
            Value::List(l) => (Kind::List, l.len()),
            Value::Set(s) => (Kind::Set, s.len()),
            Value::ZSet(z) => (Kind::ZSet, z.len()),
            _ => {
                ctx.err(WRONGTYPE);
                return;
            }
        },
    };

    // A set has no native order: with STORE the output must be deterministic.
    if dontsort && kind == Kind::Set && store.is_some() {
        dontsort = false;
        alpha = true;
        sortby = None;
    }

    let vlen = len as i64;
    let mut start = limit_start.max(0).min(vlen);
    let count = limit_count.max(-1).min(vlen);
    let mut end = if count < 0 {
        vlen - 1
    } else {
        start + count - 1
    };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }
    let mut vectorlen = vlen;
    if kind != Kind::Set && dontsort && (start != 0 || end != vlen - 1) {
        vectorlen = end - start + 1;
    }

    let set_intset_max = if kind == Kind::Set {
        ctx.server
            .config
            .get("set-max-intset-entries")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(512)
    } else {
        0
    };
    let mut items: Vec<SortItem> = Vec::with_capacity(vectorlen.max(0) as usize);
    let item = |obj: &[u8]| SortItem {
        obj: obj.to_vec(),
        score: 0.0,
        cmp: None,
    };
    match ctx.ks.peek(key).map(|e| &e.value) {
        Some(Value::List(l)) => {
            if dontsort {
                if end >= start {
                    let n = vectorlen.max(0) as usize;
                    let first = start as usize;
                    for k in 0..n.min(len.saturating_sub(first)) {
                        let idx = if desc { len - 1 - first - k } else { first + k };
                        items.push(item(l.get(idx).unwrap_or_default()));
                    }
                    end -= start;
                    start = 0;
                }
            } else {
                items.extend(l.iter().map(item));
            }
        }
        Some(Value::Set(s)) => {
            items.extend(s.iter().map(item));
            // Small all-integer sets are intsets in Redis: iterated in order.
            if items.len() <= set_intset_max {
                let ints: Option<Vec<i64>> = items.iter().map(|i| parse_i64(&i.obj)).collect();
                if let Some(ints) = ints {
                    let mut paired: Vec<(i64, SortItem)> = ints.into_iter().zip(items).collect();
                    paired.sort_by_key(|(v, _)| *v);
                    items = paired.into_iter().map(|(_, i)| i).collect();
                }
            }
        }
        Some(Value::ZSet(z)) => {
            if dontsort {
                let n = vectorlen.max(0) as usize;
                if n > 0 {
                    let first = start as usize;
                    if desc {
                        items.extend(
                            z.iter_rev_from(len - 1 - first)
                                .take(n)
                                .map(|(m, _)| item(m)),
                        );
                    } else {
                        items.extend(z.iter_from(first).take(n).map(|(m, _)| item(m)));
                    }
                }
                end -= start;
                start = 0;
            } else {
                items.extend(z.iter().map(|(m, _)| item(m)));
            }
        }
        _ => {}
    }

    let mut score_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval: Option<Vec<u8>> = match sortby {
                Some(p) => match lookup_by_pattern(ctx.ks, p, &it.obj) {
                    Some(v) => Some(v),
                    None => continue,
                },
                None => None,
            };
            if alpha {
                if sortby.is_some() {
                    it.cmp = byval;
                }
            } else {
                let w = byval.as_deref().unwrap_or(&it.obj);
                match sort_score(w) {
                    Some(s) => it.score = s,
                    None => score_error = true,
                }
            }
        }
        let by_pattern = sortby.is_some();
        let storing = store.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.obj.cmp(&b.obj))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => {
                        if storing {
                            x.cmp(y)
                        } else {
                            cstr(x).cmp(cstr(y))
                        }
                    }
                }
            } else if storing {
                a.obj.cmp(&b.obj)
            } else {
                cstr(&a.obj).cmp(cstr(&b.obj))
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    let span = (end - start + 1).max(0) as usize;
    let outputlen = if gets.is_empty() {
        span
    } else {
        gets.len() * span
    };
    if score_error {
        ctx.err(SCORE_ERR);
        return;
    }
    let range = if span == 0 {
        0..0
    } else {
        start as usize..(end + 1) as usize
    };
    match store {
        None => {
            ctx.out.array(outputlen);
            for it in &items[range] {
                if gets.is_empty() {
                    ctx.out.bulk(&it.obj);
                }
                for g in &gets {
                    match lookup_by_pattern(ctx.ks, g, &it.obj) {
                        Some(v) => ctx.out.bulk(&v),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        Some(dest) => {
            let mut list = ListValue::new();
            for it in &items[range] {
                if gets.is_empty() {
                    list.push_back(it.obj.clone().into_boxed_slice());
                }
                for g in &gets {
                    let v = lookup_by_pattern(ctx.ks, g, &it.obj).unwrap_or_default();
                    list.push_back(v.into_boxed_slice());
                }
            }
            if outputlen > 0 {
                ctx.ks.next_event(b'l', "sortstore");
                ctx.ks.apply(Mutation::Put {
                    key: owned(dest),
                    value: Value::List(Box::new(list)),
                    expire_at: 0,
                });
            } else if ctx.ks.exists(dest) {
                ctx.ks.apply(Mutation::Del { key: owned(dest) });
            }
            ctx.out.int(outputlen as i64);
        }
    }
}

// ---- DUMP / RESTORE ----

/// Redis 7.0's RDB version, written in (and the highest accepted from) payload trailers.
const RDB_VERSION: u16 = 10;

const RDB_TYPE_STRING: u8 = 0;
const RDB_TYPE_LIST: u8 = 1;
const RDB_TYPE_SET: u8 = 2;
const RDB_TYPE_ZSET: u8 = 3;
const RDB_TYPE_HASH: u8 = 4;
const RDB_TYPE_ZSET_2: u8 = 5;
const RDB_TYPE_LIST_ZIPLIST: u8 = 10;
const RDB_TYPE_SET_INTSET: u8 = 11;
const RDB_TYPE_ZSET_ZIPLIST: u8 = 12;
const RDB_TYPE_HASH_ZIPLIST: u8 = 13;
const RDB_TYPE_LIST_QUICKLIST: u8 = 14;
const RDB_TYPE_HASH_LISTPACK: u8 = 16;
const RDB_TYPE_ZSET_LISTPACK: u8 = 17;
const RDB_TYPE_LIST_QUICKLIST_2: u8 = 18;

const CRC64_TABLE: [u64; 256] = {
    let poly = 0xad93_d235_94c9_35a9u64.reverse_bits();
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            k += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// CRC-64/Jones as Redis computes it (`crc64(0, data, len)`).
pub fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc = CRC64_TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

fn write_len(out: &mut Vec<u8>, n: usize) {
    let n = n as u64;
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    write_len(out, s.len());
    out.extend_from_slice(s);
}

/// The DUMP payload of a value (see the module documentation).
pub fn dump_payload(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    match v {
        Value::Str(s) => {
            out.push(RDB_TYPE_STRING);
            write_str(&mut out, s);
        }
        Value::List(l) => {
            out.push(RDB_TYPE_LIST);
            write_len(&mut out, l.len());
            for e in l.iter() {
                write_str(&mut out, e);
            }
        }
        Value::Set(s) => {
            out.push(RDB_TYPE_SET);
            write_len(&mut out, s.len());
            for m in s.iter() {
                write_str(&mut out, m);
            }
        }
        Value::ZSet(z) => {
            out.push(RDB_TYPE_ZSET_2);
            write_len(&mut out, z.len());
            for (m, score) in z.iter() {
                write_str(&mut out, m);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Value::Hash(h) => {
            out.push(RDB_TYPE_HASH);
            write_len(&mut out, h.len());
            for (f, val) in h.iter() {
                write_str(&mut out, f);
                write_str(&mut out, val);
            }
        }
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Redis's verifyDumpPayload: a version we can read and a matching CRC.
fn verify_payload(p: &[u8]) -> bool {
    if p.len() < 10 {
        return false;
    }
    let footer = &p[p.len() - 10..];
    let ver = u16::from_le_bytes([footer[0], footer[1]]);
    if ver > RDB_VERSION {
        return false;
    }
    let crc = u64::from_le_bytes(footer[2..10].try_into().unwrap());
    crc64(&p[..p.len() - 8]) == crc
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A length, or (true, n) for a special string encoding n.
    fn len_enc(&mut self) -> Option<(bool, u64)> {
        let t = self.byte()?;
        Some(match t >> 6 {
            0 => (false, (t & 0x3f) as u64),
            1 => (false, (((t & 0x3f) as u64) << 8) | self.byte()? as u64),
            3 => (true, (t & 0x3f) as u64),
            _ => match t {
                0x80 => (
                    false,
                    u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64,
                ),
                0x81 => (false, u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
                _ => return None,
            },
        })
    }

    fn len(&mut self) -> Option<usize> {
        match self.len_enc()? {
            (false, n) => usize::try_from(n).ok(),
            (true, _) => None,
        }
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        match self.len_enc()? {
            (false, n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            (true, 0) => Some((self.take(1)?[0] as i8).to_string().into_bytes()),
            (true, 1) => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            (true, 2) => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            (true, 3) => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let data = self.take(clen)?;
                lzf_decompress(data, ulen)
            }
            _ => None,
        }
    }

    fn binary_double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// RDB_TYPE_ZSET's text score: a length byte (253 NaN, 254 +inf, 255 -inf).
    fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => {
                let s = self.take(n as usize)?;
                std::str::from_utf8(s).ok()?.trim().parse::<f64>().ok()
            }
        }
    }
}

/// The most bytes one input byte of LZF can expand to: a long back-reference
/// is 3 bytes long and copies at most 7 + 255 + 2 = 264 bytes.
const LZF_MAX_EXPANSION: usize = 264 / 3;

/// LZF decompression (liblzf's format, as Redis uses); the output must be exactly `ulen` bytes.
///
/// `ulen` comes from the payload, so it is checked against what `input` can
/// possibly expand to before anything is allocated, and the allocation is
/// fallible: a forged length is `Bad data format`, never an abort.
fn lzf_decompress(input: &[u8], ulen: usize) -> Option<Vec<u8>> {
    if ulen == 0 || ulen > input.len().checked_mul(LZF_MAX_EXPANSION)? {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(ulen).ok()?;
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out.len() + n > ulen {
                return None;
            }
            out.extend_from_slice(input.get(ip..ip + n)?);
            ip += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            n += 2;
            if out.len() + n > ulen || back > out.len() {
                return None;
            }
            let from = out.len() - back;
            for k in 0..n {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    (out.len() == ulen && ulen > 0).then_some(out)
}

/// The elements of a listpack (strings; integers as their decimal text).
fn listpack_entries(lp: &[u8]) -> Option<Vec<Vec<u8>>> {
    if lp.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize;
    if total != lp.len() || *lp.last()? != 0xff {
        return None;
    }
    let count = u16::from_le_bytes(lp[4..6].try_into().ok()?) as usize;
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let b = *lp.get(p)?;
        if b == 0xff {
            break;
        }
        let (entry, len): (Vec<u8>, usize) = if b & 0x80 == 0 {
            ((b & 0x7f).to_string().into_bytes(), 1)
        } else if b & 0xc0 == 0x80 {
            let n = (b & 0x3f) as usize;
            (lp.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
        } else if b & 0xe0 == 0xc0 {
            let raw = (((b & 0x1f) as u16) << 8) | *lp.get(p + 1)? as u16;
            let v = ((raw << 3) as i16) >> 3;
            (v.to_string().into_bytes(), 2)
        } else if b & 0xf0 == 0xe0 {
            let n = (((b & 0x0f) as usize) << 8) | *lp.get(p + 1)? as usize;
            (lp.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
        } else {
            let int_at = |n: usize| -> Option<i64> {
                let s = lp.get(p + 1..p + 1 + n)?;
                let mut buf = [0u8; 8];
                buf[..n].copy_from_slice(s);
                let v = i64::from_le_bytes(buf);
                let shift = 64 - 8 * n as u32;
                Some((v << shift) >> shift)
            };
            match b {
                0xf0 => {
                    let n = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                    (lp.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
                }
                0xf1 => (int_at(2)?.to_string().into_bytes(), 3),
                0xf2 => (int_at(3)?.to_string().into_bytes(), 4),
                0xf3 => (int_at(4)?.to_string().into_bytes(), 5),
                0xf4 => (int_at(8)?.to_string().into_bytes(), 9),
                _ => return None,
            }
        };
        let backlen = match len {
            0..=127 => 1,
            128..=16382 => 2,
            16383..=2097150 => 3,
            2097151..=268435454 => 4,
            _ => 5,
        };
        p = p.checked_add(len + backlen)?;
        if p >= lp.len() {
            return None;
        }
        out.push(entry);
    }
    if p != lp.len() - 1 || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

/// The elements of a ziplist (strings; integers as their decimal text).
fn ziplist_entries(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    if zl.len() < 11 {
        return None;
    }
    let total = u32::from_le_bytes(zl[0..4].try_into().ok()?) as usize;
    if total != zl.len() || *zl.last()? != 0xff {
        return None;
    }
    let count = u16::from_le_bytes(zl[8..10].try_into().ok()?) as usize;
    let mut out = Vec::new();
    let mut p = 10;
    loop {
        let b = *zl.get(p)?;
        if b == 0xff {
            break;
        }
        p += if b < 254 { 1 } else { 5 };
        let e = *zl.get(p)?;
        let int_at = |at: usize, n: usize| -> Option<i64> {
            let s = zl.get(at..at + n)?;
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(s);
            let shift = 64 - 8 * n as u32;
            Some((i64::from_le_bytes(buf) << shift) >> shift)
        };
        let (entry, len): (Vec<u8>, usize) = match e >> 6 {
            0 => {
                let n = (e & 0x3f) as usize;
                (zl.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
            }
            1 => {
                let n = (((e & 0x3f) as usize) << 8) | *zl.get(p + 1)? as usize;
                (zl.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
            }
            2 => {
                let n = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                (zl.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
            }
            _ => {
                let v = match e {
                    0xc0 => (int_at(p + 1, 2)?, 3),
                    0xd0 => (int_at(p + 1, 4)?, 5),
                    0xe0 => (int_at(p + 1, 8)?, 9),
                    0xf0 => (int_at(p + 1, 3)?, 4),
                    0xfe => (int_at(p + 1, 1)?, 2),
                    0xf1..=0xfd => ((e & 0x0f) as i64 - 1, 1),
                    _ => return None,
                };
                (v.0.to_string().into_bytes(), v.1)
            }
        };
        p = p.checked_add(len)?;
        if p >= zl.len() {
            return None;
        }
        out.push(entry);
    }
    if p != zl.len() - 1 || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

fn intset_entries(is: &[u8]) -> Option<Vec<Vec<u8>>> {
    if is.len() < 8 {
        return None;
    }
    let enc = u32::from_le_bytes(is[0..4].try_into().ok()?) as usize;
    let n = u32::from_le_bytes(is[4..8].try_into().ok()?) as usize;
    if !matches!(enc, 2 | 4 | 8) || is.len() != 8 + n.checked_mul(enc)? {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<i64> = None;
    for c in is[8..].chunks(enc) {
        let mut buf = [0u8; 8];
        buf[..enc].copy_from_slice(c);
        let shift = 64 - 8 * enc as u32;
        let v = (i64::from_le_bytes(buf) << shift) >> shift;
        if prev.is_some_and(|p| p >= v) {
            return None;
        }
        prev = Some(v);
        out.push(v.to_string().into_bytes());
    }
    Some(out)
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

/// Parses the object at the start of a payload (the trailer already checked;
/// bytes after the object are ignored).
fn parse_object(body: &[u8]) -> Option<Value> {
    let mut r = Reader { b: body, pos: 0 };
    let t = r.byte()?;
    match t {
        RDB_TYPE_STRING => Some(Value::Str(r.string()?.into_boxed_slice())),
        RDB_TYPE_LIST | RDB_TYPE_SET => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                v.push(r.string()?);
            }
            if t == RDB_TYPE_LIST {
                build_list(v)
            } else {
                build_set(v)
            }
        }
        RDB_TYPE_ZSET | RDB_TYPE_ZSET_2 => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let m = r.string()?;
                let s = if t == RDB_TYPE_ZSET_2 {
                    r.binary_double()?
                } else {
                    r.text_double()?
                };
                v.push((m, s));
            }
            build_zset(v)
        }
        RDB_TYPE_HASH => {
            let n = r.len()?;
            let mut v = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let f = r.string()?;
                let val = r.string()?;
                v.push((f, val));
            }
            build_hash(v)
        }
        RDB_TYPE_SET_INTSET => build_set(intset_entries(&r.string()?)?),
        RDB_TYPE_LIST_ZIPLIST => build_list(ziplist_entries(&r.string()?)?),
        RDB_TYPE_HASH_ZIPLIST => build_hash(pairs_of(ziplist_entries(&r.string()?)?)?),
        RDB_TYPE_ZSET_ZIPLIST => build_zset(scored(ziplist_entries(&r.string()?)?)?),
        RDB_TYPE_HASH_LISTPACK => build_hash(pairs_of(listpack_entries(&r.string()?)?)?),
        RDB_TYPE_ZSET_LISTPACK => build_zset(scored(listpack_entries(&r.string()?)?)?),
        RDB_TYPE_LIST_QUICKLIST | RDB_TYPE_LIST_QUICKLIST_2 => {
            let nodes = r.len()?;
            let mut v = Vec::new();
            for _ in 0..nodes {
                if t == RDB_TYPE_LIST_QUICKLIST {
                    let zl = ziplist_entries(&r.string()?)?;
                    if zl.is_empty() {
                        return None;
                    }
                    v.extend(zl);
                } else {
                    match r.len()? {
                        // PLAIN node: one element.
                        1 => v.push(r.string()?),
                        // PACKED node: a listpack (empty ones are skipped, as Redis does).
                        2 => v.extend(listpack_entries(&r.string()?)?),
                        _ => return None,
                    }
                }
            }
            build_list(v)
        }
        _ => None,
    }
}

fn dump(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match ctx.ks.get(&args[1]) {
        None => ctx.out.null(),
        Some(e) => {
            let payload = dump_payload(&e.value);
            ctx.out.bulk(&payload);
        }
    }
}

/// RESTORE key ttl payload [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f], checked
/// in Redis's order: options, existing key, TTL, payload. IDLETIME sets the
/// new key's idle time under an LRU (or no-eviction) policy, FREQ its LFU
/// counter under an LFU policy, as in Redis.
fn restore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut replace = false;
    let mut absttl = false;
    let mut idle: i64 = -1;
    let mut freq: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        let more = args.len() - j - 1;
        let a = &args[j];
        if is(a, "replace") {
            replace = true;
        } else if is(a, "absttl") {
            absttl = true;
        } else if is(a, "idletime") && more >= 1 && freq == -1 {
            let Some(v) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            if v < 0 {
                ctx.err("ERR Invalid IDLETIME value, must be >= 0");
                return;
            }
            idle = v;
            j += 1;
        } else if is(a, "freq") && more >= 1 && idle == -1 {
            let Some(v) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            if !(0..=255).contains(&v) {
                ctx.err("ERR Invalid FREQ value, must be >= 0 and <= 255");
                return;
            }
            freq = v;
            j += 1;
        } else {
            ctx.err(SYNTAX);
            return;
        }
        j += 1;
    }
    let key = &args[1];
    let exists = ctx.ks.exists(key);
    if !replace && exists {
        ctx.err("BUSYKEY Target key name already exists.");
        return;
    }
    let Some(ttl) = parse_i64(&args[2]) else {
        ctx.err(NOT_INT);
        return;
    };
    if ttl < 0 {
        ctx.err("ERR Invalid TTL value, must be >= 0");
        return;
    }
    let payload = &args[3];
    if !verify_payload(payload) {
        ctx.err("ERR DUMP payload version or checksum are wrong");
        return;
    }
    // Like Redis, the object is read from the whole payload (trailer included).
    let Some(value) = parse_object(payload) else {
        ctx.err("ERR Bad data format");
        return;
    };
    let now = ctx.ks.now() as i64;
    let mut at = ttl;
    if at != 0 && !absttl {
        at = at.saturating_add(now);
    }
    if at != 0 && at <= now {
        // Already expired: the key is not created (an old one is deleted).
        if replace && exists {
            ctx.ks.apply(Mutation::Del { key: owned(key) });
        }
        ctx.out.ok();
        return;
    }
    ctx.ks.next_event(b'g', "restore");
    ctx.ks.apply(Mutation::Put {
        key: owned(key),
        value,
        expire_at: at as u64,
    });
    // Redis's objectSetLRUOrLFU: FREQ counts under an LFU policy, IDLETIME otherwise.
    let access = if ctx.ks.db().policy().is_lfu() {
        (freq >= 0).then(|| evict::access_with_freq(freq as u8))
    } else {
        (idle >= 0).then(|| evict::access_with_idle(idle as u64))
    };
    if let Some(a) = access {
        ctx.ks.set_access(key, a);
    }
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc64_matches_redis() {
        // Redis's crc64 self-test vector.
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn sort_scores_follow_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"1 "), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"abc"), None);
    }

    #[test]
    fn payload_round_trip() {
        let mut h = HashValue::new();
        h.insert(b"f", b"v");
        let v = Value::Hash(Box::new(h));
        let p = dump_payload(&v);
        assert!(verify_payload(&p));
        let back = parse_object(&p[..p.len() - 10]).unwrap();
        match back {
            Value::Hash(h) => assert_eq!(h.get(b"f"), Some(&b"v"[..])),
            _ => panic!("wrong type"),
        }
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
        };
        let t = match v {
            Value::Str(_) => 0,
            Value::List(_) => {
                return (1, parts);
            }
            Value::Set(_) => 2,
            Value::ZSet(_) => 3,
            Value::Hash(_) => 4,
        };
        parts.sort();
        (t, parts)
    }

    /// `body` with Redis's trailer (version 10, CRC-64).
    fn with_trailer(body: &[u8]) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    /// Payloads of every type and of Redis's compact encodings.
    fn seed_payloads() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        out.push(dump_payload(&Value::Str(b"hello world".to_vec().into())));
        let mut l = ListValue::new();
        for e in [&b"a"[..], b"", b"12", b"-7"] {
            l.push_back(e.into());
        }
        out.push(dump_payload(&Value::List(Box::new(l))));
        let mut set = SetValue::new();
        for m in [&b"x"[..], b"y", b"1"] {
            set.insert(m);
        }
        out.push(dump_payload(&Value::Set(Box::new(set))));
        let mut z = ZSet::new();
        z.insert(b"a", 1.5);
        z.insert(b"b", f64::NEG_INFINITY);
        out.push(dump_payload(&Value::ZSet(Box::new(z))));
        let mut h = HashValue::new();
        h.insert(b"f", b"v");
        h.insert(b"g", b"");
        out.push(dump_payload(&Value::Hash(Box::new(h))));
        // Integer-encoded and LZF strings.
        out.push(with_trailer(&[0x00, 0xc1, 0x39, 0x30]));
        out.push(with_trailer(&[
            0x00, 0xc3, 0x05, 0x0a, 0x00, b'a', 0xe0, 0x00, 0x00,
        ]));
        // Intset {1, 2, 300}.
        let mut is = vec![2, 0, 0, 0, 3, 0, 0, 0];
        for v in [1i16, 2, 300] {
            is.extend_from_slice(&v.to_le_bytes());
        }
        let mut body = vec![RDB_TYPE_SET_INTSET, is.len() as u8];
        body.extend_from_slice(&is);
        out.push(with_trailer(&body));
        // Listpack {f: v, n: 7} as a hash and as a zset {f: 7}.
        let lp = |entries: &[&[u8]]| {
            let total: usize = 7 + entries.iter().map(|e| e.len()).sum::<usize>();
            let mut lp = (total as u32).to_le_bytes().to_vec();
            lp.extend_from_slice(&(entries.len() as u16).to_le_bytes());
            for e in entries {
                lp.extend_from_slice(e);
            }
            lp.push(0xff);
            lp
        };
        let hl = lp(&[b"\x81f\x02", b"\x81v\x02", b"\x81n\x02", b"\x07\x01"]);
        let mut body = vec![RDB_TYPE_HASH_LISTPACK, hl.len() as u8];
        body.extend_from_slice(&hl);
        out.push(with_trailer(&body));
        let zl = lp(&[b"\x81f\x02", b"\x07\x01"]);
        let mut body = vec![RDB_TYPE_ZSET_LISTPACK, zl.len() as u8];
        body.extend_from_slice(&zl);
        out.push(with_trailer(&body));
        // Quicklist 2 with one packed node (the listpack above as a list).
        let mut body = vec![RDB_TYPE_LIST_QUICKLIST_2, 1, 2, hl.len() as u8];
        body.extend_from_slice(&hl);
        out.push(with_trailer(&body));
        // Ziplist {a, 5} as a list.
        let mut zip = vec![0u8; 10];
        zip.extend_from_slice(&[0x00, 0x01, b'a', 0x03, 0xf6]);
        zip.push(0xff);
        let total = zip.len() as u32;
        zip[0..4].copy_from_slice(&total.to_le_bytes());
        zip[8..10].copy_from_slice(&2u16.to_le_bytes());
        let mut body = vec![RDB_TYPE_LIST_ZIPLIST, zip.len() as u8];
        body.extend_from_slice(&zip);
        out.push(with_trailer(&body));
        out
    }

    #[test]
    fn fuzz_restore_payloads() {
        use crate::util::fuzz;
        let seeds = seed_payloads();
        for p in &seeds {
            assert!(verify_payload(p));
            assert!(parse_object(p).is_some(), "seed payload {p:?}");
        }
        let mut accepted = 0;
        for seed in fuzz::seeds("fuzz_restore_payloads") {
            let mut rng = fuzz::rng(seed);
            for i in 0..20_000 {
                let base = &seeds[i % seeds.len()];
                // Mutate the object, then give it a valid trailer so the
                // parser, not the checksum, meets the damage.
                let body = fuzz::mutate(&mut rng, &base[..base.len() - 10]);
                let payload = with_trailer(&body);
                let Some(v) = parse_object(&payload) else {
                    continue;
                };
                accepted += 1;
                // Whatever is accepted is a valid value: no empty collection,
                // no NaN score, and it dumps and restores to itself.
                let (t, parts) = canon(&v);
                assert!(t == 0 || !parts.is_empty(), "seed {seed}: empty {body:?}");
                if let Value::ZSet(z) = &v {
                    assert!(z.iter().all(|(_, s)| !s.is_nan()), "seed {seed}");
                }
                let again = dump_payload(&v);
                let back = parse_object(&again).expect("a dumped value restores");
                assert_eq!(canon(&back), (t, parts), "seed {seed}: {body:?}");
            }
        }
        // Some mutations keep the payload valid; the check above ran.
        assert!(accepted > 0);
    }

    #[test]
    fn lzf_round_trip_literal_and_backref() {
        // "aaaaaaaaaa": literal 'a', then a back-reference of length 9 at distance 1.
        let input = [0x00, b'a', 0xe0, 0x00, 0x00];
        assert_eq!(lzf_decompress(&input, 10).unwrap(), b"aaaaaaaaaa".to_vec());
    }

    #[test]
    fn lzf_rejects_lengths_its_input_cannot_produce() {
        let input = [0x00, b'a', 0xe0, 0x00, 0x00];
        // 2^62 bytes used to be allocated up front and abort the process.
        assert_eq!(lzf_decompress(&input, 1 << 62), None);
        assert_eq!(lzf_decompress(&input, usize::MAX), None);
        assert_eq!(
            lzf_decompress(&input, input.len() * LZF_MAX_EXPANSION + 1),
            None
        );
        assert_eq!(lzf_decompress(&input, 0), None);
        // The longest possible expansion is still accepted.
        let mut long = vec![0x00, b'a'];
        long.extend_from_slice(&[0xe0, 0xff, 0x00]);
        assert_eq!(lzf_decompress(&long, 1 + 264).unwrap(), vec![b'a'; 265]);
    }
}
