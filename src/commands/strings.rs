//! String commands (GET/SET family, counters, ranges, LCS), following
//! Redis 7.0's t_string.c argument order and error texts. The bitmap
//! commands, which also work on string values, are in `bitmaps.rs`.

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
];

const STRING_TOO_LONG: &str = "ERR string exceeds maximum allowed size (proto-max-bulk-len)";

pub(super) fn max_bulk_len(ctx: &Ctx<'_, '_>) -> u64 {
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

/// LCS's options.
#[derive(Default)]
struct LcsOpts {
    /// LEN: reply only the length.
    len: bool,
    /// IDX: reply the matching ranges.
    idx: bool,
    withmatchlen: bool,
    /// Ranges shorter than this are left out (0: none).
    minmatchlen: i64,
}

fn lcs(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    // Redis checks the keys' types before the options.
    let Some([a, b]) = lcs_inputs(ctx, &args[1..3]) else {
        return;
    };
    let Some(o) = parse_lcs_opts(ctx, args) else {
        return;
    };
    let Some(table) = lcs_table(ctx, &a, &b) else {
        return;
    };
    let total = table[table.len() - 1];
    if o.len {
        return ctx.out.int(total as i64);
    }
    let (result, ranges) = lcs_walk_back(&a, &b, &table, total as usize, o.minmatchlen);
    if !o.idx {
        return ctx.out.bulk(&result);
    }
    ctx.out.map(2);
    ctx.out.bulk(b"matches");
    ctx.out.array(ranges.len());
    for r in &ranges {
        ctx.out.array(2 + o.withmatchlen as usize);
        ctx.out.array(2);
        ctx.out.int(r.0 as i64);
        ctx.out.int(r.1 as i64);
        ctx.out.array(2);
        ctx.out.int(r.2 as i64);
        ctx.out.int(r.3 as i64);
        if o.withmatchlen {
            ctx.out.int((r.1 - r.0 + 1) as i64);
        }
    }
    ctx.out.bulk(b"len");
    ctx.out.int(total as i64);
}

/// The two strings compared (a missing key is an empty string); None when
/// an error was replied.
fn lcs_inputs(ctx: &mut Ctx<'_, '_>, keys: &[Bytes]) -> Option<[Vec<u8>; 2]> {
    let mut strs: [Vec<u8>; 2] = [Vec::new(), Vec::new()];
    let mut wrong = false;
    for (i, k) in keys.iter().enumerate() {
        match ctx.ks.get(k).map(|e| &e.value) {
            None => {}
            Some(Value::Str(s)) => strs[i] = s.to_vec(),
            Some(_) => wrong = true,
        }
    }
    if wrong {
        ctx.err("ERR The specified keys must contain string values");
        return None;
    }
    Some(strs)
}

/// Parses the options after the two keys; None when an error was replied.
fn parse_lcs_opts(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> Option<LcsOpts> {
    let mut o = LcsOpts::default();
    let mut j = 3;
    while j < args.len() {
        let opt = &args[j][..];
        let more = j + 1 < args.len();
        if is(opt, "idx") {
            o.idx = true;
        } else if is(opt, "len") {
            o.len = true;
        } else if is(opt, "withmatchlen") {
            o.withmatchlen = true;
        } else if is(opt, "minmatchlen") && more {
            o.minmatchlen = ctx.int_arg(&args[j + 1])?.max(0);
            j += 1;
        } else {
            ctx.syntax();
            return None;
        }
        j += 1;
    }
    if o.idx && o.len {
        ctx.err("ERR If you want both the length and indexes, please just use IDX.");
        return None;
    }
    Some(o)
}

/// The dynamic-programming table, `(a.len() + 1) x (b.len() + 1)`: cell
/// `(i, j)` is the LCS length of `a[..i]` and `b[..j]`. None (error replied)
/// when the strings or the table are too large.
fn lcs_table(ctx: &mut Ctx<'_, '_>, a: &[u8], b: &[u8]) -> Option<Vec<u32>> {
    const NO_MEMORY: &str = "ERR Insufficient memory, failed allocating transient memory for LCS";
    if a.len() as u64 >= u32::MAX as u64 - 1 || b.len() as u64 >= u32::MAX as u64 - 1 {
        ctx.err("ERR String too long for LCS");
        return None;
    }
    let (alen, blen) = (a.len(), b.len());
    let cells = (alen as u64 + 1) * (blen as u64 + 1);
    match cells.checked_mul(4) {
        Some(n) if n > max_bulk_len(ctx) => {
            ctx.err("ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len");
            return None;
        }
        Some(_) => {}
        None => {
            ctx.err(NO_MEMORY);
            return None;
        }
    }
    let mut table: Vec<u32> = Vec::new();
    if table.try_reserve_exact(cells as usize).is_err() {
        ctx.err(NO_MEMORY);
        return None;
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
    Some(table)
}

/// A matching range: (a_start, a_end, b_start, b_end), inclusive.
type LcsRange = (usize, usize, usize, usize);

/// Walks the table back from the end: the LCS itself (`total` bytes) and
/// its matching ranges (last first, as Redis replies them), leaving out
/// those shorter than `minmatchlen`.
fn lcs_walk_back(
    a: &[u8],
    b: &[u8],
    table: &[u32],
    total: usize,
    minmatchlen: i64,
) -> (Vec<u8>, Vec<LcsRange>) {
    let w = b.len() + 1;
    let mut result = vec![0u8; total];
    let mut idx = total;
    let mut ranges: Vec<LcsRange> = Vec::new();
    let mut cur: Option<LcsRange> = None;
    let (mut i, mut jj) = (a.len(), b.len());
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
    (result, ranges)
}
