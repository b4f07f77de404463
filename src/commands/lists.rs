//! List commands: pushes and pops at both ends, indexed access, ranges,
//! LPOS, moves between lists, LMPOP, and the blocking pops (BLPOP, BRPOP,
//! BRPOPLPUSH, BLMOVE, BLMPOP) built on [`super::blocking`].
//!
//! Argument checks happen in Redis's order (some commands look the key up
//! before parsing an index, some after), because the error a client sees
//! depends on it.

use bytes::Bytes;

use super::flags::*;
use super::util::{get_list, is, owned, parse_i64, peek_list, WrongType, SYNTAX, WRONGTYPE};
use super::BlockRequest;
use super::{Command, Ctx, KeySpec};
use super::{KEY1, KEYS_1_2, KEYS_BUT_LAST};
use crate::engine::{Keys, Mutation};
use crate::protocol::Reply;

pub static COMMANDS: &[Command] = &[
    Command::new("lpush", -3, WRITE | DENYOOM | FAST, KEY1, lpush, "list"),
    Command::new("rpush", -3, WRITE | DENYOOM | FAST, KEY1, rpush, "list"),
    Command::new("lpushx", -3, WRITE | DENYOOM | FAST, KEY1, lpushx, "list"),
    Command::new("rpushx", -3, WRITE | DENYOOM | FAST, KEY1, rpushx, "list"),
    Command::new("lpop", -2, WRITE | FAST, KEY1, lpop, "list"),
    Command::new("rpop", -2, WRITE | FAST, KEY1, rpop, "list"),
    Command::new("llen", 2, READONLY | FAST, KEY1, llen, "list"),
    Command::new("lindex", 3, READONLY, KEY1, lindex, "list"),
    Command::new("linsert", 5, WRITE | DENYOOM, KEY1, linsert, "list"),
    Command::new("lrange", 4, READONLY, KEY1, lrange, "list"),
    Command::new("lrem", 4, WRITE, KEY1, lrem, "list"),
    Command::new("lset", 4, WRITE | DENYOOM, KEY1, lset, "list"),
    Command::new("ltrim", 4, WRITE, KEY1, ltrim, "list"),
    Command::new("lpos", -3, READONLY, KEY1, lpos, "list"),
    Command::new("rpoplpush", 3, WRITE | DENYOOM, KEYS_1_2, rpoplpush, "list"),
    Command::new("lmove", 5, WRITE | DENYOOM, KEYS_1_2, lmove, "list"),
    Command::new(
        "lmpop",
        -4,
        WRITE,
        KeySpec::Custom(lmpop_keys),
        lmpop,
        "list",
    ),
    Command::new(
        "blpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        blpop,
        "list",
    ),
    Command::new(
        "brpop",
        -3,
        WRITE | NOSCRIPT | BLOCKING,
        KEYS_BUT_LAST,
        brpop,
        "list",
    ),
    Command::new(
        "brpoplpush",
        4,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEYS_1_2,
        brpoplpush,
        "list",
    ),
    Command::new(
        "blmove",
        6,
        WRITE | DENYOOM | NOSCRIPT | BLOCKING,
        KEYS_1_2,
        blmove,
        "list",
    ),
    Command::new(
        "blmpop",
        -5,
        WRITE | BLOCKING,
        KeySpec::Custom(blmpop_keys),
        blmpop,
        "list",
    ),
];

const LEFT: bool = true;
const RIGHT: bool = false;

// ---------------------------------------------------------------------------
// Argument helpers (Redis's getLongFromObjectOrReply family and friends).

/// `getRangeLongFromObjectOrReply(min, max, msg)`: a non-integer or an
/// out-of-range value replies `msg` (Redis's own texts when `msg` is None).
fn range_arg(
    ctx: &mut Ctx<'_, '_>,
    arg: &[u8],
    min: i64,
    max: i64,
    msg: Option<&str>,
) -> Option<i64> {
    match parse_i64(arg) {
        None => {
            ctx.err(msg.unwrap_or(super::util::NOT_INT));
            None
        }
        Some(v) if v < min || v > max => {
            match msg {
                Some(m) => ctx.err(m),
                None => ctx.err(&format!(
                    "ERR value is out of range, value must between {min} and {max}"
                )),
            }
            None
        }
        Some(v) => Some(v),
    }
}

/// `getPositiveLongFromObjectOrReply`.
fn positive_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8], msg: Option<&str>) -> Option<i64> {
    range_arg(
        ctx,
        arg,
        0,
        i64::MAX,
        Some(msg.unwrap_or("ERR value is out of range, must be positive")),
    )
}

/// LEFT / RIGHT (case-insensitive) or a syntax error.
fn side_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<bool> {
    if is(arg, "left") {
        Some(LEFT)
    } else if is(arg, "right") {
        Some(RIGHT)
    } else {
        ctx.err(SYNTAX);
        None
    }
}

/// The length of the list at `key`: Ok(0) when missing, Err on another type.
fn list_len(ks: &mut Keys<'_>, key: &[u8]) -> Result<usize, WrongType> {
    Ok(peek_list(ks, key)?.map_or(0, |l| l.len()))
}

fn pop_one(ks: &mut Keys<'_>, key: &[u8], left: bool) -> Option<Box<[u8]>> {
    ks.apply(Mutation::Pop {
        key: Bytes::copy_from_slice(key),
        left,
        count: 1,
    })
    .pop()
}

fn push_one(ks: &mut Keys<'_>, key: &[u8], left: bool, elem: &Bytes) {
    ks.apply(Mutation::Push {
        key: Bytes::copy_from_slice(key),
        left,
        elems: vec![elem.clone()],
    });
}

// ---------------------------------------------------------------------------
// Pushes.

fn push_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], left: bool, only_existing: bool) {
    let key = &args[1];
    let len = match list_len(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(n) => n,
    };
    if len == 0 && only_existing {
        return ctx.out.int(0);
    }
    let elems: Vec<Bytes> = args[2..].iter().map(owned).collect();
    let n = elems.len();
    ctx.ks.apply(Mutation::Push {
        key: owned(key),
        left,
        elems,
    });
    ctx.out.int((len + n) as i64);
}

fn lpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    push_generic(ctx, args, LEFT, false)
}

fn rpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    push_generic(ctx, args, RIGHT, false)
}

fn lpushx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    push_generic(ctx, args, LEFT, true)
}

fn rpushx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    push_generic(ctx, args, RIGHT, true)
}

// ---------------------------------------------------------------------------
// Pops.

fn pop_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], left: bool) {
    if args.len() > 3 {
        let name = if left { "lpop" } else { "rpop" };
        return ctx.err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
    }
    let count = match args.get(2) {
        Some(a) => match positive_arg(ctx, a, None) {
            Some(c) => Some(c as usize),
            None => return,
        },
        None => None,
    };
    let key = &args[1];
    let len = match list_len(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(n) => n,
    };
    if len == 0 {
        return match count {
            Some(_) => ctx.out.null_array(),
            None => ctx.out.null(),
        };
    }
    match count {
        None => {
            let v = pop_one(ctx.ks, key, left).unwrap_or_default();
            ctx.out.bulk(&v);
        }
        Some(0) => ctx.out.array(0),
        Some(c) => {
            let popped = ctx.ks.apply(Mutation::Pop {
                key: owned(key),
                left,
                count: c.min(len),
            });
            ctx.out.array(popped.len());
            for v in &popped {
                ctx.out.bulk(v);
            }
        }
    }
}

fn lpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    pop_generic(ctx, args, LEFT)
}

fn rpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    pop_generic(ctx, args, RIGHT)
}

// ---------------------------------------------------------------------------
// Reads.

fn llen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_list(ctx.ks, &args[1]) {
        Err(WrongType) => ctx.wrongtype(),
        Ok(l) => {
            let n = l.map_or(0, |l| l.len());
            ctx.out.int(n as i64)
        }
    }
}

fn lindex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Ctx { ks, out, .. } = ctx;
    let l = match get_list(ks, &args[1]) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(None) => return out.null(),
        Ok(Some(l)) => l,
    };
    let Some(index) = parse_i64(&args[2]) else {
        return out.error(super::util::NOT_INT);
    };
    let len = l.len() as i64;
    let i = if index < 0 { len + index } else { index };
    match (0..len).contains(&i).then(|| l.get(i as usize)).flatten() {
        Some(v) => out.bulk(v),
        None => out.null(),
    }
}

fn lrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(start) = ctx.int_arg(&args[2]) else {
        return;
    };
    let Some(stop) = ctx.int_arg(&args[3]) else {
        return;
    };
    let Ctx { ks, out, .. } = ctx;
    let l = match get_list(ks, &args[1]) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(None) => return out.array(0),
        Ok(Some(l)) => l,
    };
    match super::util::clamp_range(start, stop, l.len()) {
        None => out.array(0),
        Some((a, b)) => {
            out.array(b - a + 1);
            for i in a..=b {
                out.bulk(l.get(i).unwrap_or_default());
            }
        }
    }
}

fn lpos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let elem = &args[2][..];
    let mut rank: i64 = 1;
    let mut count: Option<usize> = None;
    let mut maxlen: usize = 0;
    let mut j = 3;
    while j < args.len() {
        let more = j + 1 < args.len();
        let opt = &args[j][..];
        if is(opt, "rank") && more {
            j += 1;
            let Some(r) = ctx.int_arg(&args[j]) else {
                return;
            };
            if r == 0 {
                return ctx.err(
                    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list",
                );
            }
            rank = r;
        } else if is(opt, "count") && more {
            j += 1;
            let Some(c) = positive_arg(ctx, &args[j], Some("ERR COUNT can't be negative")) else {
                return;
            };
            count = Some(c as usize);
        } else if is(opt, "maxlen") && more {
            j += 1;
            let Some(m) = positive_arg(ctx, &args[j], Some("ERR MAXLEN can't be negative")) else {
                return;
            };
            maxlen = m as usize;
        } else {
            return ctx.err(SYNTAX);
        }
        j += 1;
    }
    let from_tail = rank < 0;
    // Matches to skip before reporting. Redis negates LONG_MIN into itself,
    // which then reports every match from the tail: emulate that.
    let skip = if rank == i64::MIN {
        0
    } else {
        rank.unsigned_abs() - 1
    };
    let Ctx { ks, out, .. } = ctx;
    let l = match get_list(ks, &args[1]) {
        Err(WrongType) => return out.error(WRONGTYPE),
        Ok(None) => {
            return match count {
                Some(_) => out.array(0),
                None => out.null(),
            }
        }
        Ok(Some(l)) => l,
    };
    let len = l.len();
    let scan = if maxlen == 0 { len } else { maxlen.min(len) };
    let want = match count {
        None => 1,
        Some(_) if rank == i64::MIN => usize::MAX,
        Some(0) => usize::MAX,
        Some(c) => c,
    };
    let mut found: smallvec::SmallVec<[usize; 8]> = smallvec::SmallVec::new();
    let mut matches: u64 = 0;
    let mut check = |pos: usize, v: &[u8]| -> bool {
        if v == elem {
            matches += 1;
            if matches > skip {
                found.push(pos);
                if found.len() >= want {
                    return true;
                }
            }
        }
        false
    };
    if from_tail {
        for (n, v) in l.iter().rev().take(scan).enumerate() {
            if check(len - 1 - n, v) {
                break;
            }
        }
    } else {
        for (n, v) in l.iter().take(scan).enumerate() {
            if check(n, v) {
                break;
            }
        }
    }
    match count {
        Some(_) => {
            out.array(found.len());
            for p in found {
                out.int(p as i64);
            }
        }
        None => match found.first() {
            Some(&p) => out.int(p as i64),
            None => out.null(),
        },
    }
}

// ---------------------------------------------------------------------------
// In-place edits.

fn linsert(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return ctx.syntax();
    };
    let key = &args[1];
    let (pos, len) = match peek_list(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(l)) => (l.iter().position(|v| v == &args[3][..]), l.len()),
    };
    let Some(pos) = pos else {
        return ctx.out.int(-1);
    };
    ctx.ks.apply(Mutation::LInsert {
        key: owned(key),
        index: pos + after as usize,
        elem: owned(&args[4]),
    });
    ctx.out.int(len as i64 + 1);
}

fn lrem(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(count) = ctx.int_arg(&args[2]) else {
        return;
    };
    let key = &args[1];
    let elem = &args[3][..];
    let removed = match peek_list(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(None) => 0,
        Ok(Some(l)) => {
            let limit = if count == 0 {
                usize::MAX
            } else {
                count.unsigned_abs() as usize
            };
            l.iter().filter(|v| *v == elem).take(limit).count()
        }
    };
    if removed > 0 {
        ctx.ks.apply(Mutation::LRem {
            key: owned(key),
            count,
            elem: owned(&args[3]),
        });
    }
    ctx.out.int(removed as i64);
}

fn lset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let len = match peek_list(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(None) => return ctx.err(super::util::NO_SUCH_KEY),
        Ok(Some(l)) => l.len() as i64,
    };
    let Some(index) = ctx.int_arg(&args[2]) else {
        return;
    };
    let i = if index < 0 { len + index } else { index };
    if !(0..len).contains(&i) {
        return ctx.err(super::util::INDEX_OUT_OF_RANGE);
    }
    ctx.ks.apply(Mutation::LSet {
        key: owned(key),
        index: i as usize,
        elem: owned(&args[3]),
    });
    ctx.out.ok();
}

fn ltrim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(start) = ctx.int_arg(&args[2]) else {
        return;
    };
    let Some(stop) = ctx.int_arg(&args[3]) else {
        return;
    };
    let key = &args[1];
    let len = match peek_list(ctx.ks, key) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.ok(),
        Ok(Some(l)) => l.len(),
    };
    match super::util::clamp_range(start, stop, len) {
        None => {
            // start > stop empties the list (event "ltrim", then "del").
            ctx.ks.apply(Mutation::LTrim {
                key: owned(key),
                start: 1,
                stop: 0,
            });
        }
        Some((start, stop)) => {
            ctx.ks.apply(Mutation::LTrim {
                key: owned(key),
                start,
                stop,
            });
        }
    }
    ctx.out.ok();
}

// ---------------------------------------------------------------------------
// Moves between lists.

/// Moves one element from `src` to `dst`; the caller checked that `src` is a
/// non-empty list and `dst` is a list or missing. Returns the moved element.
///
/// Like Redis, the push happens before the pop: the keyspace events come in
/// Redis's order (push on `dst`, pop on `src`, then `del` if `src` emptied),
/// and a one-element list moved onto itself is never deleted in between.
fn move_elem(ks: &mut Keys<'_>, src: &[u8], dst: &[u8], from: bool, to: bool) -> Bytes {
    let v = match peek_list(ks, src) {
        Ok(Some(l)) => {
            let end = if from {
                l.get(0)
            } else {
                l.get(l.len().wrapping_sub(1))
            };
            Bytes::copy_from_slice(end.unwrap_or_default())
        }
        _ => Bytes::new(),
    };
    push_one(ks, dst, to, &v);
    pop_one(ks, src, from);
    v
}

/// LMOVE / RPOPLPUSH once the directions are known (lmoveGenericCommand).
fn lmove_generic(ctx: &mut Ctx<'_, '_>, src: &Bytes, dst: &Bytes, from: bool, to: bool) {
    match list_len(ctx.ks, src) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(0) => return ctx.out.null(),
        Ok(_) => {}
    }
    if list_len(ctx.ks, dst).is_err() {
        return ctx.wrongtype();
    }
    let v = move_elem(ctx.ks, src, dst, from, to);
    ctx.out.bulk(&v);
}

fn rpoplpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    lmove_generic(ctx, &args[1], &args[2], RIGHT, LEFT)
}

fn lmove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(from) = side_arg(ctx, &args[3]) else {
        return;
    };
    let Some(to) = side_arg(ctx, &args[4]) else {
        return;
    };
    lmove_generic(ctx, &args[1], &args[2], from, to)
}

// ---------------------------------------------------------------------------
// LMPOP / BLMPOP argument layout.

/// Key positions of a numkeys-style command whose numkeys is at `at`
/// (lenient: bad input gives no keys; the handler reports the error).
fn numkeys_positions(args: &[Bytes], at: usize) -> Vec<usize> {
    let Some(n) = args.get(at).and_then(|a| parse_i64(a)) else {
        return Vec::new();
    };
    if n < 1 {
        return Vec::new();
    }
    let first = at + 1;
    let end = first.saturating_add(n as usize).min(args.len());
    (first..end).collect()
}

fn lmpop_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_positions(args, 1)
}

fn blmpop_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_positions(args, 2)
}

/// Parsed `numkeys key... LEFT|RIGHT [COUNT n]`.
struct MpopArgs {
    /// Index of the first key and the number of keys.
    first: usize,
    numkeys: usize,
    left: bool,
    count: usize,
}

/// Parses the common tail of LMPOP / BLMPOP (lmpopGenericCommand), numkeys at `at`.
fn parse_mpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes], at: usize) -> Option<MpopArgs> {
    let numkeys = range_arg(
        ctx,
        &args[at],
        1,
        i64::MAX,
        Some("ERR numkeys should be greater than 0"),
    )? as usize;
    let where_idx = match (at + 1).checked_add(numkeys) {
        Some(i) if i < args.len() => i,
        _ => {
            ctx.err(SYNTAX);
            return None;
        }
    };
    let left = side_arg(ctx, &args[where_idx])?;
    let mut count: Option<usize> = None;
    let mut j = where_idx + 1;
    while j < args.len() {
        let more = j + 1 < args.len();
        if count.is_none() && is(&args[j], "count") && more {
            j += 1;
            count = Some(range_arg(
                ctx,
                &args[j],
                1,
                i64::MAX,
                Some("ERR count should be greater than 0"),
            )? as usize);
        } else {
            ctx.err(SYNTAX);
            return None;
        }
        j += 1;
    }
    Some(MpopArgs {
        first: at + 1,
        numkeys,
        left,
        count: count.unwrap_or(1),
    })
}

/// Pops up to `count` elements and replies `[key, [elements...]]`.
fn mpop_reply(ks: &mut Keys<'_>, out: &mut Reply, key: &[u8], left: bool, count: usize) {
    let popped = ks.apply(Mutation::Pop {
        key: Bytes::copy_from_slice(key),
        left,
        count,
    });
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    for v in &popped {
        out.bulk(v);
    }
}

fn lmpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 1) else {
        return;
    };
    for key in &args[m.first..m.first + m.numkeys] {
        match list_len(ctx.ks, key) {
            Err(WrongType) => return ctx.wrongtype(),
            Ok(0) => continue,
            Ok(_) => return mpop_reply(ctx.ks, ctx.out, key, m.left, m.count),
        }
    }
    ctx.out.null_array();
}

// ---------------------------------------------------------------------------
// Blocking pops.

fn timeout_null_array(out: &mut Reply) {
    out.null_array()
}

/// BLPOP / BRPOP / BLMPOP (blockingPopGenericCommand): pops from the first
/// non-empty list among `keys`, or blocks on all of them. `count` None is the
/// BLPOP reply shape `[key, element]`; Some is BLMPOP's `[key, [elements]]`.
fn blocking_pop(
    ctx: &mut Ctx<'_, '_>,
    keys: &[Bytes],
    left: bool,
    count: Option<usize>,
    deadline: u64,
) {
    for key in keys {
        match list_len(ctx.ks, key) {
            Err(WrongType) => return ctx.wrongtype(),
            Ok(0) => continue,
            Ok(_) => {
                return match count {
                    Some(c) => mpop_reply(ctx.ks, ctx.out, key, left, c),
                    None => {
                        let v = pop_one(ctx.ks, key, left).unwrap_or_default();
                        ctx.out.array(2);
                        ctx.out.bulk(key);
                        ctx.out.bulk(&v);
                    }
                };
            }
        }
    }
    if ctx.in_exec {
        return ctx.out.null_array();
    }
    ctx.block = Some(BlockRequest {
        keys: keys.iter().map(owned).collect(),
        extra_keys: Vec::new(),
        deadline,
        serve: Box::new(move |ks, key, out| {
            if !matches!(peek_list(ks, key), Ok(Some(l)) if !l.is_empty()) {
                return false;
            }
            match count {
                Some(c) => mpop_reply(ks, out, key, left, c),
                None => {
                    let v = pop_one(ks, key, left).unwrap_or_default();
                    out.array(2);
                    out.bulk(key);
                    out.bulk(&v);
                }
            }
            true
        }),
        timeout_reply: timeout_null_array,
    });
}

fn blpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(deadline) = ctx.timeout_arg(&args[args.len() - 1]) else {
        return;
    };
    blocking_pop(ctx, &args[1..args.len() - 1], LEFT, None, deadline)
}

fn brpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(deadline) = ctx.timeout_arg(&args[args.len() - 1]) else {
        return;
    };
    blocking_pop(ctx, &args[1..args.len() - 1], RIGHT, None, deadline)
}

fn blmpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(m) = parse_mpop(ctx, args, 2) else {
        return;
    };
    let Some(deadline) = ctx.timeout_arg(&args[1]) else {
        return;
    };
    blocking_pop(
        ctx,
        &args[m.first..m.first + m.numkeys],
        m.left,
        Some(m.count),
        deadline,
    )
}

/// BLMOVE / BRPOPLPUSH once arguments are parsed (blmoveGenericCommand).
fn blmove_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], from: bool, to: bool, deadline: u64) {
    let (src, dst) = (&args[1], &args[2]);
    match list_len(ctx.ks, src) {
        Err(WrongType) => return ctx.wrongtype(),
        Ok(0) => {}
        Ok(_) => return lmove_generic(ctx, src, dst, from, to),
    }
    if ctx.in_exec {
        return ctx.out.null();
    }
    let dst = owned(dst);
    ctx.block = Some(BlockRequest {
        keys: vec![owned(src)],
        extra_keys: vec![dst.clone()],
        deadline,
        serve: Box::new(move |ks, key, out| {
            if !matches!(peek_list(ks, key), Ok(Some(l)) if !l.is_empty()) {
                return false;
            }
            // A destination of another type fails the client (element kept).
            if list_len(ks, &dst).is_err() {
                out.error(WRONGTYPE);
                return true;
            }
            let v = move_elem(ks, key, &dst, from, to);
            out.bulk(&v);
            true
        }),
        timeout_reply: timeout_null_array,
    });
}

fn brpoplpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(deadline) = ctx.timeout_arg(&args[3]) else {
        return;
    };
    blmove_generic(ctx, args, RIGHT, LEFT, deadline)
}

fn blmove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(from) = side_arg(ctx, &args[3]) else {
        return;
    };
    let Some(to) = side_arg(ctx, &args[4]) else {
        return;
    };
    let Some(deadline) = ctx.timeout_arg(&args[5]) else {
        return;
    };
    blmove_generic(ctx, args, from, to, deadline)
}
