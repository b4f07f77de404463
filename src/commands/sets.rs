//! Set commands (Redis 7.0's "set" group): SADD, SREM, SPOP, SINTER,
//! SUNIONSTORE, SINTERCARD, SSCAN, ...

use bytes::Bytes;
use rand::Rng;

use super::flags::*;
use super::hashes::{empty_scan, parse_cursor, parse_scan_opts, random_count_arg, ScanWindow};
use super::util::{get_set, owned, parse_i64, peek_set, SYNTAX, WRONGTYPE};
use super::{Command, Ctx, KeySpec};
use super::{ALL_KEYS, KEY1, KEYS_1_2};
use crate::engine::{Keys, Mutation, SetValue, Value};
use crate::protocol::Reply;

pub static COMMANDS: &[Command] = &[
    Command::new("sadd", -3, WRITE | DENYOOM | FAST, KEY1, sadd, "set"),
    Command::new("srem", -3, WRITE | FAST, KEY1, srem, "set"),
    Command::new("smove", 4, WRITE | FAST, KEYS_1_2, smove, "set"),
    Command::new("sismember", 3, READONLY | FAST, KEY1, sismember, "set"),
    Command::new("smismember", -3, READONLY | FAST, KEY1, smismember, "set"),
    Command::new("scard", 2, READONLY | FAST, KEY1, scard, "set"),
    Command::new("spop", -2, WRITE | RANDOM | FAST, KEY1, spop, "set"),
    Command::new(
        "srandmember",
        -2,
        READONLY | RANDOM,
        KEY1,
        srandmember,
        "set",
    ),
    Command::new(
        "smembers",
        2,
        READONLY | SORT_FOR_SCRIPT,
        KEY1,
        smembers,
        "set",
    ),
    Command::new(
        "sinter",
        -2,
        READONLY | SORT_FOR_SCRIPT,
        ALL_KEYS,
        sinter,
        "set",
    ),
    Command::new(
        "sintercard",
        -3,
        READONLY,
        KeySpec::Custom(sintercard_keys),
        sintercard,
        "set",
    ),
    Command::new(
        "sinterstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        sinterstore,
        "set",
    ),
    Command::new(
        "sunion",
        -2,
        READONLY | SORT_FOR_SCRIPT,
        ALL_KEYS,
        sunion,
        "set",
    ),
    Command::new(
        "sunionstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        sunionstore,
        "set",
    ),
    Command::new(
        "sdiff",
        -2,
        READONLY | SORT_FOR_SCRIPT,
        ALL_KEYS,
        sdiff,
        "set",
    ),
    Command::new(
        "sdiffstore",
        -3,
        WRITE | DENYOOM,
        ALL_KEYS,
        sdiffstore,
        "set",
    ),
    Command::new("sscan", -3, READONLY | RANDOM, KEY1, sscan, "set"),
];

/// Reads the set at `key` for a read command; replies WRONGTYPE and returns on another type.
macro_rules! read_set {
    ($ctx:expr, $key:expr) => {
        match get_set($ctx.ks, $key) {
            Ok(s) => s,
            Err(_) => {
                $ctx.out.error(WRONGTYPE);
                return;
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Single-key commands

fn sadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let members: Vec<Bytes> = match peek_set(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(s) => {
            let absent = |m: &Bytes| !s.is_some_and(|s| s.contains(m));
            let ms = &args[2..];
            if ms.len() == 1 {
                if absent(&ms[0]) {
                    vec![owned(&ms[0])]
                } else {
                    Vec::new()
                }
            } else {
                let mut seen: ahash::HashSet<&[u8]> = ahash::HashSet::default();
                ms.iter()
                    .filter(|m| absent(m) && seen.insert(&m[..]))
                    .map(owned)
                    .collect()
            }
        }
    };
    let n = members.len() as i64;
    if n > 0 {
        ctx.ks.apply(Mutation::SAdd {
            key: owned(key),
            members,
        });
    }
    ctx.out.int(n);
}

fn srem(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let members: Vec<Bytes> = match peek_set(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => {
            let ms = &args[2..];
            if ms.len() == 1 {
                if s.contains(&ms[0]) {
                    vec![owned(&ms[0])]
                } else {
                    Vec::new()
                }
            } else {
                let mut seen: ahash::HashSet<&[u8]> = ahash::HashSet::default();
                ms.iter()
                    .filter(|m| s.contains(m) && seen.insert(&m[..]))
                    .map(owned)
                    .collect()
            }
        }
    };
    let n = members.len() as i64;
    if n > 0 {
        ctx.ks.apply(Mutation::SRem {
            key: owned(key),
            members,
        });
    }
    ctx.out.int(n);
}

fn smove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    let in_src = match peek_set(ctx.ks, src) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(s)) => s.contains(member),
    };
    let in_dst = match peek_set(ctx.ks, dst) {
        Err(_) => return ctx.wrongtype(),
        Ok(s) => s.is_some_and(|s| s.contains(member)),
    };
    if src == dst {
        return ctx.out.int(in_src as i64);
    }
    if !in_src {
        return ctx.out.int(0);
    }
    ctx.ks.apply(Mutation::SRem {
        key: owned(src),
        members: vec![owned(member)],
    });
    if !in_dst {
        ctx.ks.apply(Mutation::SAdd {
            key: owned(dst),
            members: vec![owned(member)],
        });
    }
    ctx.out.int(1);
}

fn sismember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let e = read_set!(ctx, &args[1]).is_some_and(|s| s.contains(&args[2]));
    ctx.out.int(e as i64);
}

fn smismember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let s = read_set!(ctx, &args[1]);
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        ctx.out.int(s.is_some_and(|s| s.contains(m)) as i64);
    }
}

fn scard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = read_set!(ctx, &args[1]).map_or(0, |s| s.len());
    ctx.out.int(n as i64);
}

fn smembers(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(s) = read_set!(ctx, &args[1]) else {
        return ctx.out.set(0);
    };
    write_set(ctx.out, s.iter(), s.len());
}

fn write_set<'a>(out: &mut Reply, items: impl Iterator<Item = &'a [u8]>, n: usize) {
    out.set(n);
    for m in items {
        out.bulk(m);
    }
}

// ---------------------------------------------------------------------------
// Random access

fn spop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    if args.len() > 3 {
        return ctx.err(SYNTAX);
    }
    if args.len() == 2 {
        let m = match peek_set(ctx.ks, key) {
            Err(_) => return ctx.wrongtype(),
            Ok(None) => return ctx.out.null(),
            Ok(Some(s)) => {
                let i = rand::thread_rng().gen_range(0..s.len());
                Bytes::copy_from_slice(s.get_index(i).expect("in range"))
            }
        };
        ctx.out.bulk(&m);
        ctx.ks.next_event(b's', "spop");
        ctx.ks.apply(Mutation::SRem {
            key: owned(key),
            members: vec![m],
        });
        return;
    }
    let count = match parse_i64(&args[2]) {
        Some(n) if n >= 0 => n as usize,
        _ => return ctx.err("ERR value is out of range, must be positive"),
    };
    let s = match peek_set(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.set(0),
        Ok(Some(s)) => s,
    };
    if count == 0 {
        return ctx.out.set(0);
    }
    let size = s.len();
    if count >= size {
        write_set(ctx.out, s.iter(), size);
        ctx.ks.next_event(b's', "spop");
        ctx.ks.apply(Mutation::Del { key: owned(key) });
        return;
    }
    let mut rng = rand::thread_rng();
    let members: Vec<Bytes> = rand::seq::index::sample(&mut rng, size, count)
        .into_iter()
        .map(|i| Bytes::copy_from_slice(s.get_index(i).expect("in range")))
        .collect();
    write_set(ctx.out, members.iter().map(|m| &m[..]), members.len());
    ctx.ks.next_event(b's', "spop");
    ctx.ks.apply(Mutation::SRem {
        key: owned(key),
        members,
    });
}

fn srandmember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.err(SYNTAX);
    }
    if args.len() == 2 {
        match read_set!(ctx, &args[1]) {
            None => ctx.out.null(),
            Some(s) => {
                let i = rand::thread_rng().gen_range(0..s.len());
                ctx.out.bulk(s.get_index(i).expect("in range"));
            }
        }
        return;
    }
    let Some(l) = random_count_arg(ctx, &args[2]) else {
        return;
    };
    let Some(s) = read_set!(ctx, &args[1]) else {
        return ctx.out.array(0);
    };
    let count = l.unsigned_abs() as usize;
    let size = s.len();
    let out = &mut *ctx.out;
    if count == 0 {
        return out.array(0);
    }
    let mut rng = rand::thread_rng();
    if l < 0 || count == 1 {
        out.array(count);
        for _ in 0..count {
            out.bulk(s.get_index(rng.gen_range(0..size)).expect("in range"));
        }
        return;
    }
    if count >= size {
        out.array(size);
        for m in s.iter() {
            out.bulk(m);
        }
        return;
    }
    out.array(count);
    for i in rand::seq::index::sample(&mut rng, size, count) {
        out.bulk(s.get_index(i).expect("in range"));
    }
}

// ---------------------------------------------------------------------------
// Multi-key algebra

/// Looks up every key as a set, in order (read lookups count hits/misses;
/// write lookups do not); Err on the first key of another type.
fn lookup_sets<'a>(
    ks: &'a mut Keys<'_>,
    keys: &[Bytes],
    write: bool,
) -> Result<Vec<Option<&'a SetValue>>, ()> {
    let mut live = Vec::with_capacity(keys.len());
    for k in keys {
        let r = if write {
            peek_set(ks, k)
        } else {
            get_set(ks, k)
        };
        match r {
            Err(_) => return Err(()),
            Ok(s) => live.push(s.is_some()),
        }
    }
    let ks: &'a Keys<'_> = ks;
    let db = ks.db();
    Ok(keys
        .iter()
        .zip(live)
        .map(|(k, live)| {
            if !live {
                return None;
            }
            let shard = ks.shard(db.shard_index(k)).expect("shard locked");
            match &shard.get(k).expect("live key").value {
                Value::Set(s) => Some(&**s),
                _ => unreachable!("type checked above"),
            }
        })
        .collect())
}

/// Members of the intersection of `sets`, at most `limit` (0 = all).
fn intersect<'a>(sets: &[Option<&'a SetValue>], limit: usize) -> Vec<&'a [u8]> {
    let Some(mut sets): Option<Vec<&SetValue>> = sets.iter().copied().collect() else {
        return Vec::new();
    };
    sets.sort_by_key(|s| s.len());
    let (first, rest) = sets.split_first().expect("at least one key");
    let mut out = Vec::new();
    for m in first.iter() {
        if rest
            .iter()
            .all(|s| std::ptr::eq(*s, *first) || s.contains(m))
        {
            out.push(m);
            if limit > 0 && out.len() >= limit {
                break;
            }
        }
    }
    out
}

fn union<'a>(sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    let present: Vec<&SetValue> = sets.iter().flatten().copied().collect();
    match present.len() {
        0 => Vec::new(),
        1 => present[0].iter().collect(),
        _ => {
            let cap = present.iter().map(|s| s.len()).max().unwrap_or(0);
            let mut seen: indexmap::IndexSet<&[u8], ahash::RandomState> =
                indexmap::IndexSet::with_capacity_and_hasher(cap, Default::default());
            for s in present {
                seen.extend(s.iter());
            }
            seen.into_iter().collect()
        }
    }
}

fn diff<'a>(sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    let Some(first) = sets[0] else {
        return Vec::new();
    };
    let rest: Vec<&SetValue> = sets[1..].iter().flatten().copied().collect();
    if rest.iter().any(|s| std::ptr::eq(*s, first)) {
        return Vec::new();
    }
    first
        .iter()
        .filter(|m| !rest.iter().any(|s| s.contains(m)))
        .collect()
}

#[derive(Clone, Copy)]
enum SetOp {
    Inter,
    Union,
    Diff,
}

fn compute<'a>(op: SetOp, sets: &[Option<&'a SetValue>]) -> Vec<&'a [u8]> {
    match op {
        SetOp::Inter => intersect(sets, 0),
        SetOp::Union => union(sets),
        SetOp::Diff => diff(sets),
    }
}

fn set_op_reply(ctx: &mut Ctx<'_, '_>, keys: &[Bytes], op: SetOp) {
    let Ok(sets) = lookup_sets(ctx.ks, keys, false) else {
        return ctx.out.error(WRONGTYPE);
    };
    let members = compute(op, &sets);
    write_set(ctx.out, members.iter().copied(), members.len());
}

fn set_op_store(ctx: &mut Ctx<'_, '_>, args: &[Bytes], op: SetOp) {
    let dst = &args[1];
    let Ok(sets) = lookup_sets(ctx.ks, &args[2..], true) else {
        return ctx.out.error(WRONGTYPE);
    };
    let members = compute(op, &sets);
    let n = members.len();
    let mut value = SetValue::new();
    for m in members {
        value.insert(m);
    }
    drop(sets);
    if n == 0 {
        if ctx.ks.exists(dst) {
            ctx.ks.apply(Mutation::Del { key: owned(dst) });
        }
    } else {
        ctx.ks.next_event(
            b's',
            match op {
                SetOp::Inter => "sinterstore",
                SetOp::Union => "sunionstore",
                SetOp::Diff => "sdiffstore",
            },
        );
        ctx.ks.apply(Mutation::Put {
            key: owned(dst),
            value: Value::Set(Box::new(value)),
            expire_at: 0,
        });
    }
    ctx.out.int(n as i64);
}

fn sinter(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_reply(ctx, &args[1..], SetOp::Inter);
}

fn sunion(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_reply(ctx, &args[1..], SetOp::Union);
}

fn sdiff(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_reply(ctx, &args[1..], SetOp::Diff);
}

fn sinterstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_store(ctx, args, SetOp::Inter);
}

fn sunionstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_store(ctx, args, SetOp::Union);
}

fn sdiffstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    set_op_store(ctx, args, SetOp::Diff);
}

/// SINTERCARD's numkeys, when valid.
fn sintercard_numkeys(args: &[Bytes]) -> Option<usize> {
    let n = parse_i64(args.get(1)?)?;
    if n < 1 || n as u64 > (args.len() - 2) as u64 {
        return None;
    }
    Some(n as usize)
}

fn sintercard_keys(args: &[Bytes]) -> Vec<usize> {
    match sintercard_numkeys(args) {
        Some(n) => (2..2 + n).collect(),
        None => Vec::new(),
    }
}

fn sintercard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let numkeys = match parse_i64(&args[1]) {
        Some(n) if n >= 1 => n as u64,
        _ => return ctx.err("ERR numkeys should be greater than 0"),
    };
    if numkeys > (args.len() - 2) as u64 {
        return ctx.err("ERR Number of keys can't be greater than number of args");
    }
    let numkeys = numkeys as usize;
    let mut limit = 0usize;
    let mut j = 2 + numkeys;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if super::util::is(&args[j], "limit") && more > 0 {
            j += 1;
            match parse_i64(&args[j]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => return ctx.err("ERR LIMIT can't be negative"),
            }
        } else {
            return ctx.err(SYNTAX);
        }
        j += 1;
    }
    let Ok(sets) = lookup_sets(ctx.ks, &args[2..2 + numkeys], false) else {
        return ctx.out.error(WRONGTYPE);
    };
    let n = intersect(&sets, limit).len();
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// SSCAN

fn sscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return ctx.err("ERR invalid cursor");
    };
    let s = match get_set(ctx.ks, &args[1]) {
        Err(_) => return ctx.out.error(WRONGTYPE),
        Ok(None) => return empty_scan(ctx.out),
        Ok(Some(s)) => s,
    };
    let opts = match parse_scan_opts(args) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let window = ScanWindow::new(cursor, opts.count, s.len());
    let found: Vec<&[u8]> = s
        .iter()
        .filter(|m| window.contains(m) && opts.matches(m))
        .collect();
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk_int(window.next_cursor() as i64);
    out.array(found.len());
    for m in found {
        out.bulk(m);
    }
}
