//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, expiry (EXPIRE family,
//! TTL family, PERSIST), KEYS, SCAN, RANDOMKEY, RENAME(NX), COPY, TOUCH,
//! OBJECT (MOVE is in `databases.rs`), and clear errors for the commands jcache leaves out
//! (MIGRATE, WAIT). SORT and DUMP/RESTORE live in `sort_dump.rs`.
//!
//! Expiry times are absolute milliseconds; an expiry already in the past
//! deletes the key. Whole-keyspace commands (KEYS, SCAN, RANDOMKEY) run with
//! every shard locked and never return a key whose time has passed.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_i64, parse_scan_cursor, scan_window, ScanSpace, NO_SUCH_KEY};
use super::{Command, Ctx, KeySpec};
use super::{ALL_KEYS, KEY1, KEY2, KEYS_1_2};
use crate::engine::evict;
use crate::engine::{Entry, EvictionPolicy, Mutation, Value, SHARDS};
use crate::util::glob::glob_match;

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, WRITE, ALL_KEYS, del, G),
    Command::new("unlink", -2, WRITE | FAST, ALL_KEYS, del, G),
    Command::new("exists", -2, READONLY | FAST, ALL_KEYS, exists, G),
    Command::new("type", 2, READONLY | FAST, KEY1, type_cmd, G),
    Command::new("expire", -3, WRITE | FAST, KEY1, expire, G),
    Command::new("pexpire", -3, WRITE | FAST, KEY1, pexpire, G),
    Command::new("expireat", -3, WRITE | FAST, KEY1, expireat, G),
    Command::new("pexpireat", -3, WRITE | FAST, KEY1, pexpireat, G),
    Command::new("ttl", 2, READONLY | FAST, KEY1, ttl, G),
    Command::new("pttl", 2, READONLY | FAST, KEY1, pttl, G),
    Command::new("expiretime", 2, READONLY | FAST, KEY1, expiretime, G),
    Command::new("pexpiretime", 2, READONLY | FAST, KEY1, pexpiretime, G),
    Command::new("persist", 2, WRITE | FAST, KEY1, persist, G),
    Command::new("keys", 2, READONLY, KeySpec::All, keys, G),
    Command::new("scan", -2, READONLY, KeySpec::All, scan, G),
    Command::new(
        "randomkey",
        1,
        READONLY | RANDOM,
        KeySpec::All,
        randomkey,
        G,
    ),
    Command::new("rename", 3, WRITE, KEYS_1_2, rename, G),
    Command::new("renamenx", 3, WRITE | FAST, KEYS_1_2, renamenx, G),
    Command::new("copy", -3, WRITE | DENYOOM, KEYS_1_2, copy, G),
    Command::new("touch", -2, READONLY | FAST, ALL_KEYS, touch, G),
    Command::container("object", G, OBJECT_SUBCOMMANDS),
    Command::new(
        "migrate",
        -6,
        WRITE,
        KeySpec::Custom(migrate_keys),
        unsupported,
        G,
    )
    .legacy_range(3, 3, 1),
];

static OBJECT_SUBCOMMANDS: &[Command] = &[
    Command::new("encoding", 3, READONLY, KEY2, object_encoding, G),
    Command::new("freq", 3, READONLY, KEY2, object_freq, G),
    Command::new("idletime", 3, READONLY, KEY2, object_idletime, G),
    Command::new("refcount", 3, READONLY, KEY2, object_refcount, G),
    Command::new("help", 2, READONLY, KeySpec::None, object_help, G),
];

fn is_live(e: &Entry, now: u64) -> bool {
    e.expire_at == 0 || e.expire_at > now
}

// ---- DEL / EXISTS / TYPE / TOUCH ----

fn del(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.exists(k) {
            ctx.ks.apply(Mutation::Del { key: owned(k) });
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn exists(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = args[1..].iter().filter(|k| ctx.ks.exists(k)).count();
    ctx.out.int(n as i64);
}

fn type_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let t = ctx
        .ks
        .peek(&args[1])
        .map(|e| e.value.value_type().name())
        .unwrap_or("none");
    ctx.out.simple(t);
}

fn touch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    // TOUCH updates the access data even for a CLIENT NO-TOUCH client.
    let no_touch = ctx.ks.set_no_touch(false);
    let n = args[1..].iter().filter(|k| ctx.ks.get(k).is_some()).count();
    ctx.ks.set_no_touch(no_touch);
    ctx.out.int(n as i64);
}

// ---- expiry ----

fn expire(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    expire_generic(ctx, args, "expire", true, true);
}

fn pexpire(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    expire_generic(ctx, args, "pexpire", false, true);
}

fn expireat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    expire_generic(ctx, args, "expireat", true, false);
}

fn pexpireat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    expire_generic(ctx, args, "pexpireat", false, false);
}

/// EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT with NX / XX / GT / LT, checked in
/// Redis's order: options, then the number, then overflow, then the key.
fn expire_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], name: &str, secs: bool, relative: bool) {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for opt in &args[3..] {
        if is(opt, "nx") {
            nx = true;
        } else if is(opt, "xx") {
            xx = true;
        } else if is(opt, "gt") {
            gt = true;
        } else if is(opt, "lt") {
            lt = true;
        } else {
            let opt = String::from_utf8_lossy(opt);
            ctx.err(&format!("ERR Unsupported option {opt}"));
            return;
        }
    }
    if nx && (xx || gt || lt) {
        ctx.err("ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if gt && lt {
        ctx.err("ERR GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = ctx.int_arg(&args[2]) else {
        return;
    };
    // Formatted only when needed (EXPIRE is on the path of every rate
    // limiter script).
    let invalid = || format!("ERR invalid expire time in '{name}' command");
    if secs {
        if !(i64::MIN / 1000..=i64::MAX / 1000).contains(&when) {
            ctx.err(&invalid());
            return;
        }
        when *= 1000;
    }
    let now = ctx.ks.now();
    let basetime = if relative { now as i64 } else { 0 };
    if when > i64::MAX - basetime {
        ctx.err(&invalid());
        return;
    }
    when += basetime;
    let key = &args[1];
    let current = match ctx.ks.peek(key) {
        None => {
            ctx.out.int(0);
            return;
        }
        Some(e) if e.expire_at == 0 => -1,
        Some(e) => e.expire_at as i64,
    };
    if (nx && current != -1)
        || (xx && current == -1)
        || (gt && (when <= current || current == -1))
        || (lt && current != -1 && when >= current)
    {
        ctx.out.int(0);
        return;
    }
    if when <= now as i64 && !ctx.ks.db().is_replica() {
        ctx.ks.apply(Mutation::Del { key: owned(key) });
    } else {
        ctx.ks.apply(Mutation::Expire {
            key: owned(key),
            at: when.max(1) as u64,
        });
    }
    ctx.out.int(1);
}

fn ttl(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ttl_generic(ctx, args, false, false);
}

fn pttl(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ttl_generic(ctx, args, true, false);
}

fn expiretime(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ttl_generic(ctx, args, false, true);
}

fn pexpiretime(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ttl_generic(ctx, args, true, true);
}

/// -2 for a missing key, -1 without expiry, else the remaining time (or the
/// absolute time), in seconds rounded to nearest or in milliseconds.
fn ttl_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], ms: bool, absolute: bool) {
    let now = ctx.ks.now() as i64;
    let at = match ctx.ks.peek(&args[1]) {
        None => {
            ctx.out.int(-2);
            return;
        }
        Some(e) => e.expire_at,
    };
    if at == 0 {
        ctx.out.int(-1);
        return;
    }
    let t = if absolute {
        at as i64
    } else {
        (at as i64).wrapping_sub(now).max(0)
    };
    ctx.out.int(if ms { t } else { t.wrapping_add(500) / 1000 });
}

fn persist(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let has_ttl = ctx.ks.peek(&args[1]).is_some_and(|e| e.expire_at != 0);
    if has_ttl {
        ctx.ks.apply(Mutation::Expire {
            key: owned(&args[1]),
            at: 0,
        });
    }
    ctx.out.int(has_ttl as i64);
}

// ---- whole keyspace: KEYS, SCAN, RANDOMKEY ----

fn keys(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let pat = &args[1][..];
    let all = pat == b"*";
    let now = ctx.ks.now();
    let mut found: Vec<&[u8]> = Vec::new();
    for (_, shard) in ctx.ks.shards() {
        for (k, e) in shard.iter() {
            if is_live(e, now) && (all || glob_match(pat, k, false)) {
                found.push(k);
            }
        }
    }
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
}

/// Slot bits of the keyspace SCAN cursor (per shard).
const KEY_SLOT_BITS: u32 = crate::engine::SCAN_SLOT_BITS;
const KEY_SLOTS: u64 = 1 << KEY_SLOT_BITS;
/// Per-shard slot space: windows of at least 64 slots, so a full scan of the
/// 64 shards takes at most 65536 calls.
const KEY_SPACE: ScanSpace = ScanSpace {
    bits: KEY_SLOT_BITS,
    min_width: SHARDS as u64 * KEY_SLOTS / (1 << 16),
};

/// SCAN cursor MATCH pattern COUNT n TYPE t.
///
/// The cursor is `shard * 65536 + slot`, where a key's slot is the top 16 bits
/// of the hash that also picks its shard. Each call covers a window of slots
/// of one shard (continuing into the next shards while fewer than COUNT keys
/// were visited), so a key that exists for the whole scan is returned exactly
/// once, whatever is added, removed or moved in between.
fn scan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let cursor = match parse_scan_cursor(&args[1]) {
        Some(c) if c < SHARDS as u64 * KEY_SLOTS => c,
        _ => {
            ctx.err("ERR invalid cursor");
            return;
        }
    };
    let mut count: usize = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut type_name: Option<&[u8]> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "count") && more >= 1 {
            let Some(n) = ctx.int_arg(&args[i + 1]) else {
                return;
            };
            if n < 1 {
                ctx.syntax();
                return;
            }
            count = n.min(i64::MAX / 2) as usize;
        } else if is(&args[i], "match") && more >= 1 {
            let p = &args[i + 1][..];
            pattern = if p == b"*" { None } else { Some(p) };
        } else if is(&args[i], "type") && more >= 1 {
            type_name = Some(&args[i + 1][..]);
        } else {
            ctx.syntax();
            return;
        }
        i += 2;
    }

    let now = ctx.ks.now();
    let mut shard_idx = (cursor / KEY_SLOTS) as usize;
    let mut slot = cursor % KEY_SLOTS;
    let mut visited = 0usize;
    let mut found: Vec<&[u8]> = Vec::new();
    let mut expired: Vec<Bytes> = Vec::new();
    let next;
    loop {
        let shard = ctx
            .ks
            .shard(shard_idx)
            .expect("SCAN runs with every shard locked");
        let mut window = Vec::new();
        let end = scan_window(
            shard.iter(),
            shard.len(),
            |(_, e)| e.scan_slot as u64,
            KEY_SPACE,
            slot,
            count - visited,
            &mut window,
        );
        visited += window.len();
        for (k, e) in window {
            if !is_live(e, now) {
                expired.push(Bytes::copy_from_slice(k));
                continue;
            }
            if let Some(p) = pattern {
                if !glob_match(p, k, false) {
                    continue;
                }
            }
            if let Some(t) = type_name {
                if !t.eq_ignore_ascii_case(e.value.value_type().name().as_bytes()) {
                    continue;
                }
            }
            found.push(k);
        }
        if end < KEY_SLOTS {
            next = shard_idx as u64 * KEY_SLOTS + end;
            break;
        }
        shard_idx += 1;
        slot = 0;
        if shard_idx == SHARDS {
            next = 0;
            break;
        }
        if visited >= count {
            next = shard_idx as u64 * KEY_SLOTS;
            break;
        }
    }
    ctx.out.array(2);
    ctx.out.bulk_int(next as i64);
    ctx.out.array(found.len());
    for k in found {
        ctx.out.bulk(k);
    }
    // Like Redis, expired keys met on the way are deleted (lazy expiry).
    for k in expired {
        ctx.ks.exists(&k);
    }
}

fn randomkey(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let _ = args;
    let now = ctx.ks.now();
    let total: usize = ctx.ks.shards().map(|(_, s)| s.len()).sum();
    if total == 0 {
        ctx.out.null();
        return;
    }
    // Uniform picks over all entries; expired entries met are deleted
    // afterwards (lazy expiry, like Redis) and another pick is made.
    let mut expired: Vec<Bytes> = Vec::new();
    let mut picked: Option<&[u8]> = None;
    'tries: for _ in 0..64 {
        let mut r = rand::random::<usize>() % total;
        for (_, shard) in ctx.ks.shards() {
            if r < shard.len() {
                if let Some((k, e)) = shard.get_index(r) {
                    if is_live(e, now) {
                        picked = Some(k);
                        break 'tries;
                    }
                    if !expired.iter().any(|x| x[..] == *k) {
                        expired.push(Bytes::copy_from_slice(k));
                    }
                }
                break;
            }
            r -= shard.len();
        }
    }
    if picked.is_none() {
        // Mostly expired keyspace: walk from a random shard for any live key.
        let start = rand::random::<usize>() % SHARDS;
        picked = (0..SHARDS)
            .filter_map(|off| ctx.ks.shard((start + off) % SHARDS))
            .find_map(|shard| shard.iter().find(|(_, e)| is_live(e, now)).map(|(k, _)| k));
    }
    match picked {
        Some(k) => ctx.out.bulk(k),
        None => ctx.out.null(),
    }
    for k in expired {
        ctx.ks.exists(&k);
    }
}

// ---- RENAME / RENAMENX / COPY / MOVE ----

fn rename(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    rename_generic(ctx, args, false);
}

fn renamenx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    rename_generic(ctx, args, true);
}

fn rename_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], nx: bool) {
    let (from, to) = (&args[1], &args[2]);
    if !ctx.ks.exists(from) {
        ctx.err(NO_SUCH_KEY);
        return;
    }
    if from == to {
        if nx {
            ctx.out.int(0);
        } else {
            ctx.out.ok();
        }
        return;
    }
    if nx && ctx.ks.exists(to) {
        ctx.out.int(0);
        return;
    }
    ctx.ks.apply(Mutation::Rename {
        from: owned(from),
        to: owned(to),
    });
    if nx {
        ctx.out.int(1);
    } else {
        ctx.out.ok();
    }
}

/// COPY source destination [DB index] [REPLACE].
fn copy(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut replace = false;
    let src = ctx.ks.selected();
    let mut dst = src;
    let mut j = 3;
    while j < args.len() {
        let more = args.len() - j - 1;
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "db") && more >= 1 {
            let Some(db) = super::databases::copy_db_arg(ctx, &args[j + 1]) else {
                return;
            };
            dst = db;
            j += 1;
        } else {
            ctx.syntax();
            return;
        }
        j += 1;
    }
    let (from, to) = (&args[1], &args[2]);
    if src == dst && from == to {
        ctx.err(super::databases::SAME_OBJECT);
        return;
    }
    if ctx.ks.get(from).is_none() {
        ctx.out.int(0);
        return;
    }
    if dst != src {
        ctx.ks.select(dst);
        let taken = ctx.ks.exists(to);
        ctx.ks.select(src);
        if taken && !replace {
            ctx.out.int(0);
            return;
        }
        ctx.ks.apply(Mutation::CopyDb {
            from: owned(from),
            to: owned(to),
            db: dst as u32,
        });
        ctx.out.int(1);
        return;
    }
    if ctx.ks.exists(to) && !replace {
        ctx.out.int(0);
        return;
    }
    ctx.ks.apply(Mutation::Copy {
        from: owned(from),
        to: owned(to),
    });
    ctx.out.int(1);
}

/// Commands jcache leaves out on purpose.
fn unsupported(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
    ctx.err(&format!("ERR {name} is not supported by jcache"));
}

// ---- OBJECT ----

fn object_encoding(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let limits = EncodingLimits::from_config(ctx);
    match ctx.ks.peek(&args[2]) {
        None => ctx.out.null(),
        Some(e) => {
            let enc = encoding_of(&e.value, &limits);
            ctx.out.bulk_str(enc);
        }
    }
}

fn object_refcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let policy = ctx.ks.db().policy();
    let shared_ints = ctx
        .ks
        .db()
        .maxmemory
        .load(std::sync::atomic::Ordering::Relaxed)
        == 0
        || !is_lru_or_lfu(policy);
    match ctx.ks.peek(&args[2]) {
        None => ctx.out.null(),
        Some(e) => {
            // Redis shares the integer objects 0..9999 (refcount INT_MAX).
            let shared = shared_ints
                && matches!(&e.value, Value::Str(s)
                    if parse_i64(s).is_some_and(|v| (0..10000).contains(&v)));
            ctx.out.int(if shared { i32::MAX as i64 } else { 1 });
        }
    }
}

fn is_lfu(p: EvictionPolicy) -> bool {
    matches!(p, EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu)
}

fn is_lru_or_lfu(p: EvictionPolicy) -> bool {
    is_lfu(p) || matches!(p, EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru)
}

fn object_idletime(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let lfu = is_lfu(ctx.ks.db().policy());
    match ctx.ks.peek(&args[2]) {
        None => ctx.out.null(),
        Some(_) if lfu => ctx.err(
            "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        Some(e) => {
            let idle = evict::idle_secs(e);
            ctx.out.int(idle as i64);
        }
    }
}

fn object_freq(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let lfu = is_lfu(ctx.ks.db().policy());
    match ctx.ks.peek(&args[2]) {
        None => ctx.out.null(),
        Some(_) if !lfu => ctx.err(
            "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
        Some(e) => {
            let f = evict::frequency(e);
            ctx.out.int(f as i64);
        }
    }
}

fn object_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    const HELP: &[&str] = &[
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(HELP.len());
    for l in HELP {
        ctx.out.simple(l);
    }
}

/// The thresholds Redis 7.0 uses to pick compact encodings.
struct EncodingLimits {
    hash_entries: usize,
    hash_value: usize,
    set_intset_entries: usize,
    zset_entries: usize,
    zset_value: usize,
}

impl EncodingLimits {
    fn from_config(ctx: &Ctx<'_, '_>) -> Self {
        let get = |name: &str, default: usize| -> usize {
            ctx.server
                .config
                .get(name)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|v| v.max(0) as usize)
                .unwrap_or(default)
        };
        EncodingLimits {
            hash_entries: get("hash-max-listpack-entries", 128),
            hash_value: get("hash-max-listpack-value", 64),
            set_intset_entries: get("set-max-intset-entries", 512),
            zset_entries: get("zset-max-listpack-entries", 128),
            zset_value: get("zset-max-listpack-value", 64),
        }
    }
}

/// The encoding Redis 7.0 would most plausibly report for this value, judged
/// from its current contents (Redis never converts back to a compact
/// encoding; we do not track history, so this is an approximation).
fn encoding_of(v: &Value, lim: &EncodingLimits) -> &'static str {
    match v {
        Value::Str(s) => {
            if s.len() <= 20 && parse_i64(s).is_some() {
                "int"
            } else if s.len() <= 44 {
                "embstr"
            } else {
                "raw"
            }
        }
        // Redis 7.0 lists are always quicklists.
        Value::List(_) => "quicklist",
        Value::Hash(h) => {
            if h.len() <= lim.hash_entries
                && h.iter()
                    .all(|(f, v)| f.len() <= lim.hash_value && v.len() <= lim.hash_value)
            {
                "listpack"
            } else {
                "hashtable"
            }
        }
        Value::Set(s) => {
            if s.len() <= lim.set_intset_entries && s.iter().all(|m| parse_i64(m).is_some()) {
                "intset"
            } else {
                "hashtable"
            }
        }
        Value::ZSet(z) => {
            if z.len() <= lim.zset_entries && z.iter().all(|(m, _)| m.len() <= lim.zset_value) {
                "listpack"
            } else {
                "skiplist"
            }
        }
        Value::Stream(_) => "stream",
    }
}

/// MIGRATE's keys, as Redis's migrateGetKeys finds them: argument 3, or
/// with an empty key there the arguments after KEYS (AUTH takes one
/// argument, AUTH2 two). MIGRATE itself is not implemented; COMMAND INFO
/// and GETKEYS answer for it as Redis does.
fn migrate_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 6 {
        return Vec::new();
    }
    let mut i = 6;
    while i < args.len() {
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"auth") {
            i += 2;
            continue;
        }
        if a.eq_ignore_ascii_case(b"auth2") {
            i += 3;
            continue;
        }
        if a.eq_ignore_ascii_case(b"keys") {
            if !args[3].is_empty() {
                return Vec::new();
            }
            return (i + 1..args.len()).collect();
        }
        i += 1;
    }
    vec![3]
}
