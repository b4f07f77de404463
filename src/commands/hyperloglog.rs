//! HyperLogLog commands (Redis 7.0.15): PFADD, PFCOUNT, PFMERGE, PFDEBUG,
//! PFSELFTEST. An HLL is a plain string value in Redis's exact layout
//! ([`crate::util::hll`]); a write computes the new bytes and applies them as
//! string mutations: the bytes that changed as SETRANGEs when the length
//! stays (a PFADD to a dense HLL touches a few bytes, not 12 KB), the
//! whole value otherwise. Replication and write-through see plain strings.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, WRONGTYPE};
use super::{Command, Ctx, KeySpec, ALL_KEYS, KEY1};
use crate::engine::{ExpireSet, Keys, Mutation, Value};
use crate::util::hll;

const GROUP: &str = "hyperloglog";

const INVALID_HLL: &str = "INVALIDOBJ Corrupted HLL object detected";
const NOT_HLL: &str = "WRONGTYPE Key is not a valid HyperLogLog string value.";

pub static COMMANDS: &[Command] = &[
    Command::new("pfadd", -2, WRITE | DENYOOM | FAST, KEY1, pfadd, GROUP),
    Command::new(
        "pfcount",
        -2,
        READONLY | MAY_REPLICATE,
        ALL_KEYS,
        pfcount,
        GROUP,
    ),
    Command::new("pfmerge", -2, WRITE | DENYOOM, ALL_KEYS, pfmerge, GROUP),
    Command::new("pfselftest", 1, ADMIN, KeySpec::None, pfselftest, GROUP),
    Command::new(
        "pfdebug",
        3,
        WRITE | DENYOOM | ADMIN,
        KeySpec::Range {
            first: 2,
            last: 2,
            step: 1,
        },
        pfdebug,
        GROUP,
    ),
];

/// `hll-sparse-max-bytes`: past it a sparse HLL becomes dense.
fn sparse_max_bytes(ctx: &Ctx<'_, '_>) -> usize {
    ctx.server
        .config
        .get("hll-sparse-max-bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(3000)
}

/// A key's value as an HLL: Ok(None) when missing, Err(reply) when it is
/// not a string or not a valid HLL. `read` counts the lookup as a read.
fn load(ks: &mut Keys<'_>, key: &[u8], read: bool) -> Result<Option<Vec<u8>>, &'static str> {
    let e = if read { ks.get(key) } else { ks.peek(key) };
    match e.map(|e| &e.value) {
        None => Ok(None),
        Some(Value::Str(s)) if hll::is_valid(s) => Ok(Some(s.to_vec())),
        Some(Value::Str(_)) => Err(NOT_HLL),
        Some(_) => Err(WRONGTYPE),
    }
}

/// Stores `new` at `key` whose value was `old`, as the smallest string
/// mutations; `event` names the keyspace event (None: no event, as Redis
/// sends none for a cache update or an encoding change).
fn store(
    ctx: &mut Ctx<'_, '_>,
    key: &Bytes,
    old: Option<&[u8]>,
    new: Vec<u8>,
    event: Option<&'static str>,
) {
    let quiet_or = |ks: &mut Keys<'_>, first: bool| match (first, event) {
        (true, Some(ev)) => ks.next_event(b'$', ev),
        _ => ks.quiet_next(),
    };
    let Some(old) = old.filter(|o| o.len() == new.len()) else {
        quiet_or(ctx.ks, true);
        ctx.ks.apply(Mutation::SetStr {
            key: owned(key),
            value: Bytes::from(new),
            expire: ExpireSet::Keep,
        });
        return;
    };
    // Runs of changed bytes; runs closer than 16 bytes are joined.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in (0..new.len()).filter(|&i| old[i] != new[i]) {
        match runs.last_mut() {
            Some((_, end)) if i < *end + 16 => *end = i + 1,
            _ => runs.push((i, i + 1)),
        }
    }
    // Many scattered runs: one SETRANGE over their span instead.
    if runs.len() > 32 {
        runs = vec![(runs[0].0, runs[runs.len() - 1].1)];
    }
    for (n, (start, end)) in runs.into_iter().enumerate() {
        quiet_or(ctx.ks, n == 0);
        ctx.ks.apply(Mutation::SetRange {
            key: owned(key),
            offset: start,
            data: Bytes::copy_from_slice(&new[start..end]),
        });
    }
}

fn pfadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let old = match load(ctx.ks, key, false) {
        Ok(v) => v,
        Err(e) => return ctx.err(e),
    };
    let max = sparse_max_bytes(ctx);
    let mut v = old.clone().unwrap_or_else(hll::new_sparse);
    let mut updated = old.is_none();
    for ele in &args[2..] {
        match hll::add(&mut v, ele, max) {
            Ok(changed) => updated |= changed,
            Err(_) => {
                // Redis changed the value in place up to here; no event.
                if old.as_deref() != Some(&v[..]) {
                    store(ctx, key, old.as_deref(), v, None);
                }
                return ctx.err(INVALID_HLL);
            }
        }
    }
    if updated {
        hll::invalidate_cache(&mut v);
        store(ctx, key, old.as_deref(), v, Some("pfadd"));
    }
    ctx.out.int(updated as i64);
}

fn pfcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 2 {
        let mut max = Box::new([0u8; hll::REGISTERS]);
        for key in &args[1..] {
            match load(ctx.ks, key, true) {
                Ok(None) => {}
                Ok(Some(v)) => {
                    if hll::merge_into(&mut max, &v).is_err() {
                        return ctx.err(INVALID_HLL);
                    }
                }
                Err(e) => return ctx.err(e),
            }
        }
        return ctx.out.int(hll::count_raw(&max) as i64);
    }
    let key = &args[1];
    // Read in place: a valid cache answers without copying the value.
    let found = match ctx.ks.get(key).map(|e| &e.value) {
        None => None,
        Some(Value::Str(s)) if hll::is_valid(s) => {
            Some(hll::cached(s).ok_or_else(|| hll::count(s)))
        }
        Some(Value::Str(_)) => return ctx.err(NOT_HLL),
        Some(_) => return ctx.err(WRONGTYPE),
    };
    let card = match found {
        None => return ctx.out.int(0),
        Some(Ok(cached)) => return ctx.out.int(cached as i64),
        Some(Err(Ok(card))) => card,
        Some(Err(Err(_))) => return ctx.err(INVALID_HLL),
    };
    // The cache is part of the value: a write Redis propagates, without an event.
    ctx.ks.quiet_next();
    ctx.ks.apply(Mutation::SetRange {
        key: owned(key),
        offset: 8,
        data: Bytes::copy_from_slice(&card.to_le_bytes()),
    });
    ctx.out.int(card as i64);
}

fn pfmerge(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut max = Box::new([0u8; hll::REGISTERS]);
    let mut use_dense = false;
    for key in &args[1..] {
        match load(ctx.ks, key, true) {
            Ok(None) => {}
            Ok(Some(v)) => {
                use_dense |= v[4] == hll::DENSE;
                if hll::merge_into(&mut max, &v).is_err() {
                    return ctx.err(INVALID_HLL);
                }
            }
            Err(e) => return ctx.err(e),
        }
    }
    let key = &args[1];
    // The destination was checked as a source above.
    let old = load(ctx.ks, key, false).ok().flatten();
    let mut v = old.clone().unwrap_or_else(hll::new_sparse);
    if use_dense && hll::to_dense(&mut v).is_err() {
        return ctx.err(INVALID_HLL);
    }
    let sparse_max = sparse_max_bytes(ctx);
    for (i, &m) in max.iter().enumerate() {
        if m != 0 {
            let _ = hll::set_register(&mut v, i, m, sparse_max);
        }
    }
    hll::invalidate_cache(&mut v);
    store(ctx, key, old.as_deref(), v, Some("pfadd"));
    ctx.out.ok();
}

fn pfselftest(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let max = sparse_max_bytes(ctx);
    match hll::selftest(rand::random::<u32>, max) {
        Ok(()) => ctx.out.ok(),
        Err(e) => ctx.err(&e),
    }
}

fn pfdebug(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    // A write command: a cluster follower refuses it as a read-only
    // replica does (it is an admin command, so it is never forwarded).
    if ctx.server.db.is_replica() {
        return ctx.err("READONLY You can't write against a read only replica.");
    }
    let key = &args[2];
    let old = match load(ctx.ks, key, false) {
        Ok(Some(v)) => v,
        Ok(None) => return ctx.err("ERR The specified key does not exist"),
        Err(e) => return ctx.err(e),
    };
    let sub = &args[1];
    if is(sub, "getreg") || is(sub, "todense") {
        let sparse = old[4] == hll::SPARSE;
        let mut v = old.clone();
        if sparse {
            if hll::to_dense(&mut v).is_err() {
                return ctx.err(INVALID_HLL);
            }
            store(ctx, key, Some(&old), v.clone(), None);
        }
        if is(sub, "todense") {
            return ctx.out.int(sparse as i64);
        }
        ctx.out.array(hll::REGISTERS);
        for i in 0..hll::REGISTERS {
            ctx.out.int(hll::dense_get(&v[hll::HDR..], i) as i64);
        }
    } else if is(sub, "decode") {
        if old[4] != hll::SPARSE {
            return ctx.err("ERR HLL encoding is not sparse");
        }
        ctx.out.bulk(hll::decode_sparse(&old).as_bytes());
    } else if is(sub, "encoding") {
        ctx.out.simple(if old[4] == hll::DENSE {
            "dense"
        } else {
            "sparse"
        });
    } else {
        let name = String::from_utf8_lossy(sub);
        ctx.err(&format!("ERR Unknown PFDEBUG subcommand '{name}'"));
    }
}
