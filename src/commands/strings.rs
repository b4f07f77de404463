//! String commands (GET/SET family, counters, ranges, LCS) and bitmap
//! commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD), following
//! Redis 7.0's t_string.c and bitops.c argument order and error texts.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::flags::*;
use super::util::{get_str, is, owned, parse_i64, peek_str, NOT_FLOAT, NOT_INT, OVERFLOW};
use super::{Command, Ctx, KeySpec};
use super::{ALL_KEYS, KEY1, KEYS_1_2};
use crate::engine::{ExpireSet, Mutation, Value};
use crate::util::longdouble;

const PAIRS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 2,
};
const BITOP_KEYS: KeySpec = KeySpec::Range {
    first: 2,
    last: -1,
    step: 1,
};

pub static COMMANDS: &[Command] = &[
    Command::new("get", 2, READONLY | FAST, KEY1, get, "string"),
    Command::new("set", -3, WRITE | DENYOOM, KEY1, set, "string"),
    Command::new("setnx", 3, WRITE | DENYOOM | FAST, KEY1, setnx, "string"),
    Command::new("setex", 4, WRITE | DENYOOM, KEY1, setex, "string"),
    Command::new("psetex", 4, WRITE | DENYOOM, KEY1, psetex, "string"),
    Command::new("getset", 3, WRITE | DENYOOM | FAST, KEY1, getset, "string"),
    Command::new("getex", -2, WRITE | FAST, KEY1, getex, "string"),
    Command::new("getdel", 2, WRITE | FAST, KEY1, getdel, "string"),
    Command::new("mget", -2, READONLY | FAST, ALL_KEYS, mget, "string"),
    Command::new("mset", -3, WRITE | DENYOOM, PAIRS, mset, "string"),
    Command::new("msetnx", -3, WRITE | DENYOOM, PAIRS, msetnx, "string"),
    Command::new("append", 3, WRITE | DENYOOM | FAST, KEY1, append, "string"),
    Command::new("strlen", 2, READONLY | FAST, KEY1, strlen, "string"),
    Command::new("incr", 2, WRITE | DENYOOM | FAST, KEY1, incr, "string"),
    Command::new("decr", 2, WRITE | DENYOOM | FAST, KEY1, decr, "string"),
    Command::new("incrby", 3, WRITE | DENYOOM | FAST, KEY1, incrby, "string"),
    Command::new("decrby", 3, WRITE | DENYOOM | FAST, KEY1, decrby, "string"),
    Command::new(
        "incrbyfloat",
        3,
        WRITE | DENYOOM | FAST,
        KEY1,
        incrbyfloat,
        "string",
    ),
    Command::new("setrange", 4, WRITE | DENYOOM, KEY1, setrange, "string"),
    Command::new("getrange", 4, READONLY, KEY1, getrange, "string"),
    Command::new("substr", 4, READONLY, KEY1, getrange, "string"),
    Command::new("lcs", -3, READONLY, KEYS_1_2, lcs, "string"),
    Command::new("setbit", 4, WRITE | DENYOOM, KEY1, setbit, "bitmap"),
    Command::new("getbit", 3, READONLY | FAST, KEY1, getbit, "bitmap"),
    Command::new("bitcount", -2, READONLY, KEY1, bitcount, "bitmap"),
    Command::new("bitpos", -3, READONLY, KEY1, bitpos, "bitmap"),
    Command::new("bitop", -4, WRITE | DENYOOM, BITOP_KEYS, bitop, "bitmap"),
    Command::new("bitfield", -2, WRITE | DENYOOM, KEY1, bitfield, "bitmap"),
    Command::new(
        "bitfield_ro",
        -2,
        READONLY | FAST,
        KEY1,
        bitfield_ro,
        "bitmap",
    ),
];

const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";
const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";

fn max_bulk_len(ctx: &Ctx<'_, '_>) -> u64 {
    ctx.server.config.proto_max_bulk_len.load(Ordering::Relaxed)
}

/// Redis's checkStringLength: would a string of `size + append` bytes be too long?
fn check_string_length(ctx: &mut Ctx<'_, '_>, size: u64, append: u64) -> bool {
    let max = max_bulk_len(ctx);
    match size.checked_add(append) {
        Some(total) if total <= max => true,
        _ => {
            ctx.err(STRING_TOO_LONG);
            false
        }
    }
}

// ---------------------------------------------------------------- GET / SET

fn get(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_str(ctx.ks, &args[1]) {
        Ok(Some(v)) => ctx.out.bulk(v),
        Ok(None) => ctx.out.null(),
        Err(_) => ctx.wrongtype(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ExpKind {
    Ex,
    Px,
    ExAt,
    PxAt,
}

impl ExpKind {
    fn seconds(self) -> bool {
        matches!(self, ExpKind::Ex | ExpKind::ExAt)
    }
    fn relative(self) -> bool {
        matches!(self, ExpKind::Ex | ExpKind::Px)
    }
}

#[derive(Default, Clone, Copy)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    keepttl: bool,
    persist: bool,
    /// The expire kind and the index of its argument.
    expire: Option<(ExpKind, usize)>,
}

/// Redis's parseExtendedStringArgumentsOrReply for SET (`is_set`) and GETEX;
/// None means a syntax error.
fn parse_set_opts(args: &[Bytes], start: usize, is_set: bool) -> Option<SetOpts> {
    let mut o = SetOpts::default();
    let mut j = start;
    while j < args.len() {
        let opt = &args[j][..];
        let has_next = j + 1 < args.len();
        let exp = o.expire.map(|(k, _)| k);
        let exp_other_than = |k: ExpKind| exp.is_some_and(|e| e != k);
        if is(opt, "nx") && !o.xx && is_set {
            o.nx = true;
        } else if is(opt, "xx") && !o.nx && is_set {
            o.xx = true;
        } else if is(opt, "get") && is_set {
            o.get = true;
        } else if is(opt, "keepttl") && !o.persist && exp.is_none() && is_set {
            o.keepttl = true;
        } else if is(opt, "persist") && !is_set && exp.is_none() && !o.keepttl {
            o.persist = true;
        } else if let Some(kind) = [
            ("ex", ExpKind::Ex),
            ("px", ExpKind::Px),
            ("exat", ExpKind::ExAt),
            ("pxat", ExpKind::PxAt),
        ]
        .iter()
        .find(|(name, _)| is(opt, name))
        .map(|&(_, k)| k)
        .filter(|&k| !o.keepttl && !o.persist && !exp_other_than(k) && has_next)
        {
            o.expire = Some((kind, j + 1));
            j += 1;
        } else {
            return None;
        }
        j += 1;
    }
    Some(o)
}

/// Redis's getExpireMillisecondsOrReply: the absolute expiry time in ms.
fn expire_at_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8], kind: ExpKind, cmd: &str) -> Option<u64> {
    let v = ctx.int_arg(arg)?;
    let invalid = |ctx: &mut Ctx<'_, '_>| {
        ctx.err(&format!("ERR invalid expire time in '{cmd}' command"));
    };
    if v <= 0 || (kind.seconds() && v > i64::MAX / 1000) {
        invalid(ctx);
        return None;
    }
    let mut ms = if kind.seconds() { v * 1000 } else { v };
    if kind.relative() {
        ms = ms.wrapping_add(ctx.ks.now() as i64);
    }
    if ms <= 0 {
        invalid(ctx);
        return None;
    }
    Some(ms as u64)
}

/// What SET-like commands reply when they did (not) set the key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetReply {
    /// +OK / null.
    Ok,
    /// :1 / :0 (SETNX).
    Int,
}

fn set_generic(
    ctx: &mut Ctx<'_, '_>,
    cmd: &str,
    args: &[Bytes],
    key: &Bytes,
    val: &Bytes,
    o: SetOpts,
    style: SetReply,
) {
    let at = match o.expire {
        Some((kind, i)) => match expire_at_arg(ctx, &args[i], kind, cmd) {
            Some(t) => Some(t),
            None => return,
        },
        None => None,
    };
    let found = if o.get {
        match ctx.ks.get(key) {
            None => {
                ctx.out.null();
                false
            }
            Some(e) => match &e.value {
                Value::Str(s) => {
                    ctx.out.bulk(s);
                    true
                }
                _ => return ctx.wrongtype(),
            },
        }
    } else if o.nx || o.xx {
        ctx.ks.exists(key)
    } else {
        false
    };
    if (o.nx && found) || (o.xx && !found) {
        if !o.get {
            match style {
                SetReply::Ok => ctx.out.null(),
                SetReply::Int => ctx.out.int(0),
            }
        }
        return;
    }
    let k = owned(key);
    match at {
        // An absolute time already in the past: like Redis 7.0, the key is
        // set, then given its (past) expiry, and expires at the next access
        // (events "set", "expire", later "expired").
        Some(t) if t <= ctx.ks.now() => {
            ctx.ks.apply(Mutation::SetStr {
                key: k.clone(),
                value: owned(val),
                expire: ExpireSet::Clear,
            });
            ctx.ks.apply(Mutation::Expire { key: k, at: t });
        }
        Some(t) => {
            ctx.ks.apply(Mutation::SetStr {
                key: k.clone(),
                value: owned(val),
                expire: ExpireSet::At(t),
            });
            ctx.ks.emit_event(b'g', "expire", &k);
        }
        None => {
            let expire = if o.keepttl {
                ExpireSet::Keep
            } else {
                ExpireSet::Clear
            };
            ctx.ks.apply(Mutation::SetStr {
                key: k,
                value: owned(val),
                expire,
            });
        }
    }
    if !o.get {
        match style {
            SetReply::Ok => ctx.out.ok(),
            SetReply::Int => ctx.out.int(1),
        }
    }
}

fn set(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(o) = parse_set_opts(args, 3, true) else {
        return ctx.syntax();
    };
    set_generic(ctx, "set", args, &args[1], &args[2], o, SetReply::Ok);
}

fn setnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let o = SetOpts {
        nx: true,
        ..Default::default()
    };
    set_generic(ctx, "setnx", args, &args[1], &args[2], o, SetReply::Int);
}

fn setex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let o = SetOpts {
        expire: Some((ExpKind::Ex, 2)),
        ..Default::default()
    };
    set_generic(ctx, "setex", args, &args[1], &args[3], o, SetReply::Ok);
}

fn psetex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let o = SetOpts {
        expire: Some((ExpKind::Px, 2)),
        ..Default::default()
    };
    set_generic(ctx, "psetex", args, &args[1], &args[3], o, SetReply::Ok);
}

fn getset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_str(ctx.ks, &args[1]) {
        Ok(Some(v)) => ctx.out.bulk(v),
        Ok(None) => ctx.out.null(),
        Err(_) => return ctx.wrongtype(),
    }
    ctx.ks.apply(Mutation::SetStr {
        key: owned(&args[1]),
        value: owned(&args[2]),
        expire: ExpireSet::Clear,
    });
}

fn getex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(o) = parse_set_opts(args, 2, false) else {
        return ctx.syntax();
    };
    let key = &args[1];
    let had_ttl = match ctx.ks.get(key) {
        None => return ctx.out.null(),
        Some(e) => match &e.value {
            Value::Str(_) => e.expire_at != 0,
            _ => return ctx.wrongtype(),
        },
    };
    let at = match o.expire {
        Some((kind, i)) => match expire_at_arg(ctx, &args[i], kind, "getex") {
            Some(t) => Some(t),
            None => return,
        },
        None => None,
    };
    if let Ok(Some(v)) = peek_str(ctx.ks, key) {
        ctx.out.bulk(v);
    }
    if let Some(t) = at {
        if t <= ctx.ks.now() {
            ctx.ks.apply(Mutation::Del { key: owned(key) });
        } else {
            ctx.ks.apply(Mutation::Expire {
                key: owned(key),
                at: t,
            });
        }
    } else if o.persist && had_ttl {
        ctx.ks.apply(Mutation::Expire {
            key: owned(key),
            at: 0,
        });
    }
}

fn getdel(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_str(ctx.ks, &args[1]) {
        Ok(Some(v)) => ctx.out.bulk(v),
        Ok(None) => return ctx.out.null(),
        Err(_) => return ctx.wrongtype(),
    }
    ctx.ks.apply(Mutation::Del {
        key: owned(&args[1]),
    });
}

fn mget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ctx.out.array(args.len() - 1);
    for k in &args[1..] {
        match ctx.ks.get(k).map(|e| &e.value) {
            Some(Value::Str(s)) => ctx.out.bulk(s),
            _ => ctx.out.null(),
        }
    }
}

fn mset_pairs_ok(ctx: &mut Ctx<'_, '_>, args: &[Bytes], name: &str) -> bool {
    if args.len().is_multiple_of(2) {
        ctx.err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
        return false;
    }
    true
}

fn mset_apply(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    for pair in args[1..].chunks_exact(2) {
        ctx.ks.apply(Mutation::SetStr {
            key: owned(&pair[0]),
            value: owned(&pair[1]),
            expire: ExpireSet::Clear,
        });
    }
}

fn mset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if !mset_pairs_ok(ctx, args, "mset") {
        return;
    }
    mset_apply(ctx, args);
    ctx.out.ok();
}

fn msetnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if !mset_pairs_ok(ctx, args, "msetnx") {
        return;
    }
    if args[1..].iter().step_by(2).any(|k| ctx.ks.exists(k)) {
        return ctx.out.int(0);
    }
    mset_apply(ctx, args);
    ctx.out.int(1);
}

fn append(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let (key, data) = (&args[1], &args[2]);
    let old_len = match peek_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => 0,
        Ok(Some(s)) => {
            let n = s.len() as u64;
            if !check_string_length(ctx, n, data.len() as u64) {
                return;
            }
            n
        }
    };
    ctx.ks.apply(Mutation::Append {
        key: owned(key),
        data: owned(data),
    });
    ctx.out.int((old_len + data.len() as u64) as i64);
}

fn strlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_str(ctx.ks, &args[1]) {
        Ok(Some(v)) => ctx.out.int(v.len() as i64),
        Ok(None) => ctx.out.int(0),
        Err(_) => ctx.wrongtype(),
    }
}

// ---------------------------------------------------------------- counters

fn incr_decr(ctx: &mut Ctx<'_, '_>, key: &Bytes, incr: i64) {
    let old = match peek_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => 0,
        Ok(Some(s)) => match parse_i64(s) {
            Some(v) => v,
            None => return ctx.err(NOT_INT),
        },
    };
    let Some(new) = old.checked_add(incr) else {
        return ctx.err(OVERFLOW);
    };
    let mut buf = itoa::Buffer::new();
    ctx.ks.next_event(b'$', "incrby");
    ctx.ks.apply(Mutation::SetStr {
        key: owned(key),
        value: Bytes::copy_from_slice(buf.format(new).as_bytes()),
        expire: ExpireSet::Keep,
    });
    ctx.out.int(new);
}

fn incr(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    incr_decr(ctx, &args[1], 1);
}

fn decr(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    incr_decr(ctx, &args[1], -1);
}

fn incrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(n) = ctx.int_arg(&args[2]) else {
        return;
    };
    incr_decr(ctx, &args[1], n);
}

fn decrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(n) = ctx.int_arg(&args[2]) else {
        return;
    };
    if n == i64::MIN {
        return ctx.err("ERR decrement would overflow");
    }
    incr_decr(ctx, &args[1], -n);
}

fn incrbyfloat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    // Checked and added in long double, as Redis does (util::longdouble).
    let old = match peek_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(old) => old.map(|s| s.to_vec()),
    };
    if old
        .as_deref()
        .is_some_and(|s| longdouble::valid(s).is_none())
        || longdouble::valid(&args[2]).is_none()
    {
        return ctx.err(NOT_FLOAT);
    }
    let Some(value) = longdouble::sum(old.as_deref(), &args[2]) else {
        return ctx.err("ERR increment would produce NaN or Infinity");
    };
    let value = Bytes::from(value);
    ctx.out.bulk(&value);
    ctx.ks.next_event(b'$', "incrbyfloat");
    ctx.ks.apply(Mutation::SetStr {
        key: owned(key),
        value,
        expire: ExpireSet::Keep,
    });
}

// ---------------------------------------------------------------- ranges

fn setrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let (key, data) = (&args[1], &args[3]);
    let Some(offset) = ctx.int_arg(&args[2]) else {
        return;
    };
    if offset < 0 {
        return ctx.err("ERR offset is out of range");
    }
    let offset = offset as u64;
    let old_len = match peek_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => {
            if data.is_empty() {
                return ctx.out.int(0);
            }
            0
        }
        Ok(Some(s)) => {
            if data.is_empty() {
                return ctx.out.int(s.len() as i64);
            }
            s.len() as u64
        }
    };
    if !check_string_length(ctx, offset, data.len() as u64) {
        return;
    }
    ctx.ks.apply(Mutation::SetRange {
        key: owned(key),
        offset: offset as usize,
        data: owned(data),
    });
    ctx.out.int(old_len.max(offset + data.len() as u64) as i64);
}

fn getrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(mut start) = ctx.int_arg(&args[2]) else {
        return;
    };
    let Some(mut end) = ctx.int_arg(&args[3]) else {
        return;
    };
    let s = match get_str(ctx.ks, &args[1]) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.bulk(b""),
        Ok(Some(s)) => s,
    };
    let len = s.len() as i64;
    if start < 0 && end < 0 && start > end {
        return ctx.out.bulk(b"");
    }
    if start < 0 {
        start += len;
    }
    if end < 0 {
        end += len;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        ctx.out.bulk(b"");
    } else {
        ctx.out.bulk(&s[start as usize..=end as usize]);
    }
}

// ---------------------------------------------------------------- LCS

fn lcs(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut strs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut wrong = false;
    for (i, k) in args[1..3].iter().enumerate() {
        match ctx.ks.get(k).map(|e| &e.value) {
            None => {}
            Some(Value::Str(s)) => strs[i] = s.to_vec(),
            Some(_) => wrong = true,
        }
    }
    if wrong {
        return ctx.err("ERR The specified keys must contain string values");
    }
    let (mut getlen, mut getidx, mut withmatchlen) = (false, false, false);
    let mut minmatchlen: i64 = 0;
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j][..];
        let more = j + 1 < args.len();
        if is(opt, "idx") {
            getidx = true;
        } else if is(opt, "len") {
            getlen = true;
        } else if is(opt, "withmatchlen") {
            withmatchlen = true;
        } else if is(opt, "minmatchlen") && more {
            let Some(v) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            minmatchlen = v.max(0);
            j += 1;
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    if getidx && getlen {
        return ctx.err("ERR If you want both the length and indexes, please just use IDX.");
    }
    let [a, b] = &strs;
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        return ctx.err("ERR String too long for LCS");
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    let alloc = cells.checked_mul(4);
    match alloc {
        Some(n) if n > max_bulk_len(ctx) => {
            return ctx.err(
                "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len",
            );
        }
        Some(_) => {}
        None => {
            return ctx.err("ERR Insufficient memory, failed allocating transient memory for LCS")
        }
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        return ctx.err("ERR Insufficient memory, failed allocating transient memory for LCS");
    }
    table.resize(cells as usize, 0);
    let w = blen + 1;
    for i in 1..=alen {
        for jj in 1..=blen {
            table[i * w + jj] = if a[i - 1] == b[jj - 1] {
                table[(i - 1) * w + jj - 1] + 1
            } else {
                table[(i - 1) * w + jj].max(table[i * w + jj - 1])
            };
        }
    }
    let total = table[alen * w + blen];
    if getlen {
        return ctx.out.int(total as i64);
    }
    // Walk back from the end, building the LCS and its matching ranges.
    let mut result = vec![0u8; total as usize];
    let mut idx = total as usize;
    // (a_start, a_end, b_start, b_end) for each emitted range.
    let mut ranges: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut cur: Option<(usize, usize, usize, usize)> = None;
    let (mut i, mut jj) = (alen, blen);
    while i > 0 && jj > 0 {
        let mut emit = false;
        if a[i - 1] == b[jj - 1] {
            result[idx - 1] = a[i - 1];
            match &mut cur {
                None => cur = Some((i - 1, i - 1, jj - 1, jj - 1)),
                Some(r) => {
                    if r.0 == i && r.2 == jj {
                        r.0 -= 1;
                        r.2 -= 1;
                    } else {
                        emit = true;
                    }
                }
            }
            if let Some(r) = cur {
                if r.0 == 0 || r.2 == 0 {
                    emit = true;
                }
            }
            idx -= 1;
            i -= 1;
            jj -= 1;
        } else {
            if table[(i - 1) * w + jj] > table[i * w + jj - 1] {
                i -= 1;
            } else {
                jj -= 1;
            }
            if cur.is_some() {
                emit = true;
            }
        }
        if emit {
            if let Some(r) = cur.take() {
                let len = r.1 - r.0 + 1;
                if minmatchlen == 0 || len as i64 >= minmatchlen {
                    ranges.push(r);
                }
            }
        }
    }
    if !getidx {
        return ctx.out.bulk(&result);
    }
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(ranges.len());
    for r in &ranges {
        ctx.out.array(2 + withmatchlen as usize);
        ctx.out.array(2);
        ctx.out.int(r.0 as i64);
        ctx.out.int(r.1 as i64);
        ctx.out.array(2);
        ctx.out.int(r.2 as i64);
        ctx.out.int(r.3 as i64);
        if withmatchlen {
            ctx.out.int((r.1 - r.0 + 1) as i64);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.int(total as i64);
}

// ---------------------------------------------------------------- bitmaps

/// Redis's getBitOffsetFromArgument; `bits` > 0 allows the `#N` form (N * bits).
fn bit_offset_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8], bits: u32) -> Option<u64> {
    let (digits, hash) = match arg.first() {
        Some(b'#') if bits > 0 => (&arg[1..], true),
        _ => (arg, false),
    };
    let Some(mut v) = parse_i64(digits) else {
        ctx.err(BIT_OFFSET_ERR);
        return None;
    };
    if hash {
        v = v.wrapping_mul(bits as i64);
    }
    if v < 0 || (v as u64 >> 3) >= max_bulk_len(ctx) {
        ctx.err(BIT_OFFSET_ERR);
        return None;
    }
    Some(v as u64)
}

fn setbit(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(offset) = bit_offset_arg(ctx, &args[2], 0) else {
        return;
    };
    let on = match parse_i64(&args[3]) {
        Some(v @ (0 | 1)) => v as u8,
        _ => return ctx.err(BIT_VALUE_ERR),
    };
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u8;
    // `grows`: the key is created or extended (Redis's "dirty").
    let (old, grows) = match peek_str(ctx.ks, &args[1]) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => (0, true),
        Ok(Some(s)) => match s.get(byte) {
            Some(&b) => (b, false),
            None => (0, true),
        },
    };
    let old_bit = (old >> shift) & 1;
    if !grows && old_bit == on {
        // Nothing changes: no write, no event (as Redis 7.0.15).
        return ctx.out.int(old_bit as i64);
    }
    let new = (old & !(1 << shift)) | (on << shift);
    ctx.ks.next_event(b'$', "setbit");
    ctx.ks.apply(Mutation::SetRange {
        key: owned(&args[1]),
        offset: byte,
        data: Bytes::copy_from_slice(&[new]),
    });
    ctx.out.int(old_bit as i64);
}

fn getbit(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(offset) = bit_offset_arg(ctx, &args[2], 0) else {
        return;
    };
    let byte = (offset >> 3) as usize;
    let shift = 7 - (offset & 7) as u8;
    match get_str(ctx.ks, &args[1]) {
        Err(_) => ctx.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => {
            let b = s.get(byte).copied().unwrap_or(0);
            ctx.out.int(((b >> shift) & 1) as i64);
        }
    }
}

fn popcount(s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    let mut n: u64 = 0;
    for c in &mut chunks {
        n += u64::from_ne_bytes(c.try_into().unwrap()).count_ones() as u64;
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones() as u64)
        .sum::<u64>()
}

/// Parses the BYTE|BIT unit argument; None = syntax error.
fn bit_unit(arg: &[u8]) -> Option<bool> {
    if is(arg, "bit") {
        Some(true)
    } else if is(arg, "byte") {
        Some(false)
    } else {
        None
    }
}

/// Converts Redis-style start/end (already parsed) into an inclusive range
/// over `total` units, clamping as Redis does (end may end up below start).
fn clamp_bit_range(mut start: i64, mut end: i64, total: i64) -> (i64, i64) {
    if start < 0 {
        start += total;
    }
    if end < 0 {
        end += total;
    }
    start = start.max(0);
    end = end.max(0);
    if end >= total {
        end = total - 1;
    }
    (start, end)
}

fn bitcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let s = match get_str(ctx.ks, &args[1]) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s,
    };
    let len = s.len() as i64;
    let (start, end, isbit) = match args.len() {
        2 => {
            let n = popcount(s);
            return ctx.out.int(n as i64);
        }
        4 | 5 => {
            let (Some(start), Some(end)) = (parse_i64(&args[2]), parse_i64(&args[3])) else {
                return ctx.err(NOT_INT);
            };
            if start < 0 && end < 0 && start > end {
                return ctx.out.int(0);
            }
            let isbit = if args.len() == 5 {
                match bit_unit(&args[4]) {
                    Some(b) => b,
                    None => return ctx.syntax(),
                }
            } else {
                false
            };
            (start, end, isbit)
        }
        _ => return ctx.syntax(),
    };
    let total = if isbit { len << 3 } else { len };
    let (start, end) = clamp_bit_range(start, end, total);
    if start > end {
        return ctx.out.int(0);
    }
    let n = if isbit {
        let (sb, eb) = (start as usize >> 3, end as usize >> 3);
        let mut n = popcount(&s[sb..=eb]);
        // Remove the bits of the edge bytes that are outside the range.
        let first_mask = !(0xffu8 >> (start & 7));
        let last_mask = (0xffu16 >> ((end & 7) + 1)) as u8;
        n -= (s[sb] & first_mask).count_ones() as u64;
        n -= (s[eb] & last_mask).count_ones() as u64;
        n
    } else {
        popcount(&s[start as usize..=end as usize])
    };
    ctx.out.int(n as i64);
}

/// First position of `bit` within bits `sb..=eb` of `s` (all inside `s`).
fn find_bit(s: &[u8], sb: u64, eb: u64, bit: u8) -> Option<u64> {
    let skip = if bit == 1 { 0u8 } else { 0xff };
    let mut pos = sb;
    while pos <= eb {
        let byte = (pos >> 3) as usize;
        if pos & 7 == 0 && pos + 7 <= eb {
            let whole_end = ((eb + 1) >> 3) as usize;
            match s[byte..whole_end].iter().position(|&b| b != skip) {
                Some(i) => {
                    let b = s[byte + i] ^ skip;
                    return Some((byte + i) as u64 * 8 + b.leading_zeros() as u64);
                }
                None => {
                    pos = whole_end as u64 * 8;
                    continue;
                }
            }
        }
        if (s[byte] >> (7 - (pos & 7))) & 1 == bit {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

fn bitpos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(bit) = ctx.int_arg(&args[2]) else {
        return;
    };
    if bit != 0 && bit != 1 {
        return ctx.err("ERR The bit argument must be 1 or 0.");
    }
    let s = match get_str(ctx.ks, &args[1]) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(if bit == 1 { -1 } else { 0 }),
        Ok(Some(s)) => s,
    };
    let len = s.len() as i64;
    let mut end_given = false;
    let (start, end, isbit) = match args.len() {
        3 => (0, len - 1, false),
        4..=6 => {
            let Some(start) = parse_i64(&args[3]) else {
                return ctx.err(NOT_INT);
            };
            let isbit = if args.len() == 6 {
                match bit_unit(&args[5]) {
                    Some(b) => b,
                    None => return ctx.syntax(),
                }
            } else {
                false
            };
            let end = if args.len() >= 5 {
                let Some(end) = parse_i64(&args[4]) else {
                    return ctx.err(NOT_INT);
                };
                end_given = true;
                end
            } else if isbit {
                (len << 3) + 7
            } else {
                len - 1
            };
            let total = if isbit { len << 3 } else { len };
            let (start, end) = clamp_bit_range(start, end, total);
            (start, end, isbit)
        }
        _ => return ctx.syntax(),
    };
    if start > end {
        return ctx.out.int(-1);
    }
    let (sb, eb) = if isbit {
        (start as u64, end as u64)
    } else {
        (start as u64 * 8, end as u64 * 8 + 7)
    };
    let pos = match find_bit(s, sb, eb, bit as u8) {
        Some(p) => p as i64,
        // Looking for a clear bit with no explicit end: the string is
        // considered zero-padded on the right.
        None if bit == 0 && !end_given => (eb + 1) as i64,
        None => -1,
    };
    ctx.out.int(pos);
}

fn bitop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        And,
        Or,
        Xor,
        Not,
    }
    let op = match &args[1][..] {
        o if is(o, "and") => Op::And,
        o if is(o, "or") => Op::Or,
        o if is(o, "xor") => Op::Xor,
        o if is(o, "not") => Op::Not,
        _ => return ctx.syntax(),
    };
    if op == Op::Not && args.len() != 4 {
        return ctx.err("ERR BITOP NOT must be called with a single source key.");
    }
    let mut res: Vec<u8> = Vec::new();
    for (n, k) in args[3..].iter().enumerate() {
        let src: &[u8] = match ctx.ks.get(k).map(|e| &e.value) {
            None => &[],
            Some(Value::Str(s)) => s,
            Some(_) => return ctx.wrongtype(),
        };
        if n == 0 {
            res.extend_from_slice(src);
            if op == Op::Not {
                res.iter_mut().for_each(|b| *b = !*b);
            }
            continue;
        }
        if src.len() > res.len() {
            res.resize(src.len(), 0);
        }
        let (head, tail) = res.split_at_mut(src.len());
        match op {
            Op::And => {
                head.iter_mut().zip(src).for_each(|(r, s)| *r &= s);
                tail.iter_mut().for_each(|r| *r = 0);
            }
            Op::Or => head.iter_mut().zip(src).for_each(|(r, s)| *r |= s),
            Op::Xor => head.iter_mut().zip(src).for_each(|(r, s)| *r ^= s),
            Op::Not => unreachable!(),
        }
    }
    let dest = &args[2];
    let n = res.len();
    if n > 0 {
        ctx.ks.apply(Mutation::SetStr {
            key: owned(dest),
            value: Bytes::from(res),
            expire: ExpireSet::Clear,
        });
    } else if ctx.ks.exists(dest) {
        ctx.ks.apply(Mutation::Del { key: owned(dest) });
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------- BITFIELD

#[derive(Clone, Copy, PartialEq, Eq)]
enum Overflow {
    Wrap,
    Sat,
    Fail,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BfOpcode {
    Get,
    Set,
    IncrBy,
}

struct BfOp {
    offset: u64,
    value: i64,
    opcode: BfOpcode,
    overflow: Overflow,
    bits: u32,
    signed: bool,
}

const BF_TYPE_ERR: &str = "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.";

fn bitfield_type(arg: &[u8]) -> Option<(bool, u32)> {
    let signed = match arg.first() {
        Some(b'i') => true,
        Some(b'u') => false,
        _ => return None,
    };
    let bits = parse_i64(&arg[1..])?;
    if bits < 1 || (signed && bits > 64) || (!signed && bits > 63) {
        return None;
    }
    Some((signed, bits as u32))
}

/// Reads `bits` bits starting at bit `offset` through `byte_at`.
fn get_unsigned_field(byte_at: &impl Fn(usize) -> u8, offset: u64, bits: u32) -> u64 {
    let mut v: u64 = 0;
    for i in 0..bits as u64 {
        let o = offset + i;
        let b = byte_at((o >> 3) as usize);
        v = (v << 1) | ((b >> (7 - (o & 7))) & 1) as u64;
    }
    v
}

fn get_signed_field(byte_at: &impl Fn(usize) -> u8, offset: u64, bits: u32) -> i64 {
    let mut v = get_unsigned_field(byte_at, offset, bits) as i64;
    if bits < 64 && v & (1i64 << (bits - 1)) != 0 {
        v |= -1i64 << bits;
    }
    v
}

/// Writes the low `bits` bits of `value` at bit `offset` of `buf` (offset
/// relative to the buffer start).
fn set_field(buf: &mut [u8], offset: u64, bits: u32, value: u64) {
    for i in 0..bits as u64 {
        let bitval = ((value >> (bits as u64 - 1 - i)) & 1) as u8;
        let o = offset + i;
        let byte = (o >> 3) as usize;
        let shift = 7 - (o & 7);
        buf[byte] = (buf[byte] & !(1 << shift)) | (bitval << shift);
    }
}

/// Redis's checkUnsignedBitfieldOverflow: Some(limit-or-wrapped) on overflow.
fn unsigned_overflow(value: u64, incr: i64, bits: u32, ow: Overflow) -> Option<u64> {
    let max: u64 = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    let maxincr = max.wrapping_sub(value) as i64;
    let minincr = (value as i64).wrapping_neg();
    let wrap = || value.wrapping_add(incr as u64) & !(u64::MAX.checked_shl(bits).unwrap_or(0));
    if value > max || (incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if incr < 0 && incr < minincr {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => 0,
        })
    } else {
        None
    }
}

/// Redis's checkSignedBitfieldOverflow: Some(limit-or-wrapped) on overflow.
fn signed_overflow(value: i64, incr: i64, bits: u32, ow: Overflow) -> Option<i64> {
    let max: i64 = if bits == 64 {
        i64::MAX
    } else {
        (1i64 << (bits - 1)) - 1
    };
    let min = -max - 1;
    let maxincr = (max as u64).wrapping_sub(value as u64) as i64;
    let minincr = min.wrapping_sub(value);
    let wrap = || {
        let mut c = (value as u64).wrapping_add(incr as u64);
        if bits < 64 {
            let mask = u64::MAX << bits;
            if c & (1u64 << (bits - 1)) != 0 {
                c |= mask;
            } else {
                c &= !mask;
            }
        }
        c as i64
    };
    if value > max || (bits != 64 && incr > maxincr) || (value >= 0 && incr > 0 && incr > maxincr) {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => max,
        })
    } else if value < min
        || (bits != 64 && incr < minincr)
        || (value < 0 && incr < 0 && incr < minincr)
    {
        Some(match ow {
            Overflow::Wrap => wrap(),
            _ => min,
        })
    } else {
        None
    }
}

fn bitfield(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    bitfield_generic(ctx, args, false);
}

fn bitfield_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    bitfield_generic(ctx, args, true);
}

fn bitfield_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], ro_cmd: bool) {
    let mut ops: Vec<BfOp> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut readonly = true;
    // Inclusive bit range written by SET/INCRBY ops.
    let mut write_lo = u64::MAX;
    let mut write_hi = 0u64;
    let mut j = 2;
    while j < args.len() {
        let remaining = args.len() - j - 1;
        let sub = &args[j][..];
        let opcode = if is(sub, "get") && remaining >= 2 {
            BfOpcode::Get
        } else if is(sub, "set") && remaining >= 3 {
            BfOpcode::Set
        } else if is(sub, "incrby") && remaining >= 3 {
            BfOpcode::IncrBy
        } else if is(sub, "overflow") && remaining >= 1 {
            let t = &args[j + 1][..];
            overflow = if is(t, "wrap") {
                Overflow::Wrap
            } else if is(t, "sat") {
                Overflow::Sat
            } else if is(t, "fail") {
                Overflow::Fail
            } else {
                return ctx.err("ERR Invalid OVERFLOW type specified");
            };
            j += 2;
            continue;
        } else {
            return ctx.syntax();
        };
        let Some((signed, bits)) = bitfield_type(&args[j + 1]) else {
            return ctx.err(BF_TYPE_ERR);
        };
        let Some(offset) = bit_offset_arg(ctx, &args[j + 2], bits) else {
            return;
        };
        let mut value = 0;
        if opcode != BfOpcode::Get {
            readonly = false;
            write_lo = write_lo.min(offset);
            write_hi = write_hi.max(offset + bits as u64 - 1);
            let Some(v) = ctx.int_arg(&args[j + 3]) else {
                return;
            };
            value = v;
        }
        ops.push(BfOp {
            offset,
            value,
            opcode,
            overflow,
            bits,
            signed,
        });
        j += if opcode == BfOpcode::Get { 3 } else { 4 };
    }

    let key = &args[1];
    if readonly {
        let s: &[u8] = match get_str(ctx.ks, key) {
            Err(_) => return ctx.wrongtype(),
            Ok(None) => &[],
            Ok(Some(s)) => s,
        };
        let byte_at = |i: usize| s.get(i).copied().unwrap_or(0);
        ctx.out.array(ops.len());
        for op in &ops {
            if op.signed {
                ctx.out.int(get_signed_field(&byte_at, op.offset, op.bits));
            } else {
                ctx.out
                    .int(get_unsigned_field(&byte_at, op.offset, op.bits) as i64);
            }
        }
        return;
    }
    if ro_cmd {
        return ctx.err("ERR BITFIELD_RO only supports the GET subcommand");
    }
    let s: &[u8] = match peek_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => &[],
        Ok(Some(s)) => s,
    };
    // Work on a copy of the bytes the writes touch; reads outside it see the
    // original string (zero-padded).
    let lo = (write_lo >> 3) as usize;
    let hi = (write_hi >> 3) as usize;
    // Whether the key is created or extended (Redis's "dirty").
    let grows = hi >= s.len();
    let mut changes = 0;
    let mut buf: Vec<u8> = (lo..=hi).map(|i| s.get(i).copied().unwrap_or(0)).collect();
    ctx.out.array(ops.len());
    for op in &ops {
        let byte_at = |i: usize| {
            if (lo..=hi).contains(&i) {
                buf[i - lo]
            } else {
                s.get(i).copied().unwrap_or(0)
            }
        };
        match op.opcode {
            BfOpcode::Get => {
                if op.signed {
                    ctx.out.int(get_signed_field(&byte_at, op.offset, op.bits));
                } else {
                    ctx.out
                        .int(get_unsigned_field(&byte_at, op.offset, op.bits) as i64);
                }
            }
            BfOpcode::Set | BfOpcode::IncrBy => {
                let rel = op.offset - (lo as u64) * 8;
                if op.signed {
                    let old = get_signed_field(&byte_at, op.offset, op.bits);
                    let (new, ovf, ret) = if op.opcode == BfOpcode::IncrBy {
                        let o = signed_overflow(old, op.value, op.bits, op.overflow);
                        let new = o.unwrap_or_else(|| old.wrapping_add(op.value));
                        (new, o.is_some(), new)
                    } else {
                        let o = signed_overflow(op.value, 0, op.bits, op.overflow);
                        (o.unwrap_or(op.value), o.is_some(), old)
                    };
                    if ovf && op.overflow == Overflow::Fail {
                        ctx.out.null();
                    } else {
                        ctx.out.int(ret);
                        set_field(&mut buf, rel, op.bits, new as u64);
                        if grows || old != new {
                            changes += 1;
                        }
                    }
                } else {
                    let old = get_unsigned_field(&byte_at, op.offset, op.bits);
                    let (new, ovf, ret) = if op.opcode == BfOpcode::IncrBy {
                        let o = unsigned_overflow(old, op.value, op.bits, op.overflow);
                        let new = o.unwrap_or_else(|| old.wrapping_add(op.value as u64));
                        (new, o.is_some(), new)
                    } else {
                        let v = op.value as u64;
                        let o = unsigned_overflow(v, 0, op.bits, op.overflow);
                        (o.unwrap_or(v), o.is_some(), old)
                    };
                    if ovf && op.overflow == Overflow::Fail {
                        ctx.out.null();
                    } else {
                        ctx.out.int(ret as i64);
                        set_field(&mut buf, rel, op.bits, new);
                        if grows || old != new {
                            changes += 1;
                        }
                    }
                }
            }
        }
    }
    if changes == 0 && !grows {
        // Nothing changed: no write, no event (as Redis 7.0.15).
        return;
    }
    // (When only failed ops grew the string, Redis creates/extends it
    // without an event; here the growth is a normal "setbit" write.)
    ctx.ks.next_event(b'$', "setbit");
    ctx.ks.apply(Mutation::SetRange {
        key: owned(key),
        offset: lo,
        data: Bytes::from(buf),
    });
}
