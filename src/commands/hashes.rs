//! Hash commands (Redis 7.0's "hash" group): HSET, HGET, HINCRBY,
//! HRANDFIELD, HSCAN, ...
//!
//! Also home of the collection-scan helpers HSCAN and SSCAN share (cursor
//! parsing, MATCH/COUNT options and the slot-window cursor).

use bytes::Bytes;
use rand::Rng;

use super::flags::*;
use super::util::{get_hash, is, owned, parse_i64, peek_hash, NOT_INT, OVERFLOW, SYNTAX};
use super::KEY1;
use super::{Command, Ctx};
use crate::engine::{HashValue, Mutation};
use crate::protocol::Reply;
use crate::util::glob::glob_match;
use crate::util::longdouble;

pub static COMMANDS: &[Command] = &[
    Command::new("hset", -4, WRITE | DENYOOM | FAST, KEY1, hset, "hash"),
    Command::new("hmset", -4, WRITE | DENYOOM | FAST, KEY1, hmset, "hash"),
    Command::new("hsetnx", 4, WRITE | DENYOOM | FAST, KEY1, hsetnx, "hash"),
    Command::new("hget", 3, READONLY | FAST, KEY1, hget, "hash"),
    Command::new("hmget", -3, READONLY | FAST, KEY1, hmget, "hash"),
    Command::new("hdel", -3, WRITE | FAST, KEY1, hdel, "hash"),
    Command::new("hlen", 2, READONLY | FAST, KEY1, hlen, "hash"),
    Command::new("hstrlen", 3, READONLY | FAST, KEY1, hstrlen, "hash"),
    Command::new("hexists", 3, READONLY | FAST, KEY1, hexists, "hash"),
    Command::new("hkeys", 2, READONLY | SORT_FOR_SCRIPT, KEY1, hkeys, "hash"),
    Command::new("hvals", 2, READONLY | SORT_FOR_SCRIPT, KEY1, hvals, "hash"),
    Command::new("hgetall", 2, READONLY, KEY1, hgetall, "hash"),
    Command::new("hincrby", 4, WRITE | DENYOOM | FAST, KEY1, hincrby, "hash"),
    Command::new(
        "hincrbyfloat",
        4,
        WRITE | DENYOOM | FAST,
        KEY1,
        hincrbyfloat,
        "hash",
    ),
    Command::new(
        "hrandfield",
        -2,
        READONLY | RANDOM,
        KEY1,
        hrandfield,
        "hash",
    ),
    Command::new("hscan", -3, READONLY | RANDOM, KEY1, hscan, "hash"),
];

// ---------------------------------------------------------------------------
// Writes

/// Counts the fields of `pairs` (field, value, field, value, ...) that are
/// not in `h`, each distinct field once.
fn count_new_fields(h: Option<&HashValue>, pairs: &[Bytes]) -> i64 {
    let fields = pairs.iter().step_by(2);
    let absent = |f: &Bytes| !h.is_some_and(|h| h.contains(f));
    let n = pairs.len() / 2;
    if n == 1 {
        return absent(&pairs[0]) as i64;
    }
    if n <= 16 {
        let mut created = 0;
        for (i, f) in fields.enumerate() {
            let dup = pairs[..2 * i].iter().step_by(2).any(|g| g == f);
            if !dup && absent(f) {
                created += 1;
            }
        }
        return created;
    }
    let mut seen: ahash::HashSet<&[u8]> = ahash::HashSet::default();
    fields.filter(|f| seen.insert(&f[..]) && absent(f)).count() as i64
}

fn hset_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], name: &str) -> Option<i64> {
    if args.len() % 2 == 1 {
        ctx.err(&format!(
            "ERR wrong number of arguments for '{name}' command"
        ));
        return None;
    }
    let key = &args[1];
    let created = match peek_hash(ctx.ks, key) {
        Err(_) => {
            ctx.wrongtype();
            return None;
        }
        Ok(h) => count_new_fields(h, &args[2..]),
    };
    let pairs = args[2..]
        .chunks_exact(2)
        .map(|p| (owned(&p[0]), owned(&p[1])))
        .collect();
    ctx.ks.apply(Mutation::HSet {
        key: owned(key),
        pairs,
    });
    Some(created)
}

fn hset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if let Some(n) = hset_generic(ctx, args, "hset") {
        ctx.out.int(n);
    }
}

fn hmset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if hset_generic(ctx, args, "hmset").is_some() {
        ctx.out.ok();
    }
}

fn hsetnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    match peek_hash(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(Some(h)) if h.contains(&args[2]) => return ctx.out.int(0),
        Ok(_) => {}
    }
    ctx.ks.apply(Mutation::HSet {
        key: owned(key),
        pairs: vec![(owned(&args[2]), owned(&args[3]))],
    });
    ctx.out.int(1);
}

fn hdel(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let fields: Vec<Bytes> = match peek_hash(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(h)) => {
            let mut v: Vec<Bytes> = Vec::new();
            for f in &args[2..] {
                if h.contains(f) && !v.contains(f) {
                    v.push(owned(f));
                }
            }
            v
        }
    };
    let n = fields.len() as i64;
    if n > 0 {
        ctx.ks.apply(Mutation::HDel {
            key: owned(key),
            fields,
        });
    }
    ctx.out.int(n);
}

fn hincrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(incr) = ctx.int_arg(&args[3]) else {
        return;
    };
    let key = &args[1];
    let old = match peek_hash(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(h) => match h.and_then(|h| h.get(&args[2])) {
            None => 0,
            Some(v) => match parse_i64(v) {
                Some(n) => n,
                None => return ctx.err("ERR hash value is not an integer"),
            },
        },
    };
    let Some(new) = old.checked_add(incr) else {
        return ctx.err(OVERFLOW);
    };
    let mut b = itoa::Buffer::new();
    let text = b.format(new);
    ctx.ks.next_event(b'h', "hincrby");
    ctx.ks.apply(Mutation::HSet {
        key: owned(key),
        pairs: vec![(owned(&args[2]), Bytes::copy_from_slice(text.as_bytes()))],
    });
    ctx.out.int(new);
}

fn hincrbyfloat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    // Checked and added in long double, as Redis does (util::longdouble).
    match longdouble::valid(&args[3]) {
        None => return ctx.err("ERR value is not a valid float"),
        Some(false) => return ctx.err("ERR value is NaN or Infinity"),
        Some(true) => {}
    }
    let key = &args[1];
    let old = match peek_hash(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(h) => h.and_then(|h| h.get(&args[2])).map(|v| v.to_vec()),
    };
    if old
        .as_deref()
        .is_some_and(|v| longdouble::valid(v).is_none())
    {
        return ctx.err("ERR hash value is not a float");
    }
    let Some(text) = longdouble::sum(old.as_deref(), &args[3]) else {
        return ctx.err("ERR increment would produce NaN or Infinity");
    };
    ctx.out.bulk(&text);
    ctx.ks.next_event(b'h', "hincrbyfloat");
    ctx.ks.apply(Mutation::HSet {
        key: owned(key),
        pairs: vec![(owned(&args[2]), Bytes::from(text))],
    });
}

// ---------------------------------------------------------------------------
// Reads

/// Reads the hash at `key` for a read command; replies WRONGTYPE and returns Err.
macro_rules! read_hash {
    ($ctx:expr, $key:expr) => {
        match get_hash($ctx.ks, $key) {
            Ok(h) => h,
            Err(_) => {
                $ctx.out.error(super::util::WRONGTYPE);
                return;
            }
        }
    };
}

fn hget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match read_hash!(ctx, &args[1]).and_then(|h| h.get(&args[2])) {
        Some(v) => ctx.out.bulk(v),
        None => ctx.out.null(),
    }
}

fn hmget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let h = read_hash!(ctx, &args[1]);
    let fields = &args[2..];
    ctx.out.array(fields.len());
    for f in fields {
        match h.and_then(|h| h.get(f)) {
            Some(v) => ctx.out.bulk(v),
            None => ctx.out.null(),
        }
    }
}

fn hlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = read_hash!(ctx, &args[1]).map_or(0, |h| h.len());
    ctx.out.int(n as i64);
}

fn hstrlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = read_hash!(ctx, &args[1])
        .and_then(|h| h.get(&args[2]))
        .map_or(0, |v| v.len());
    ctx.out.int(n as i64);
}

fn hexists(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let e = read_hash!(ctx, &args[1]).is_some_and(|h| h.contains(&args[2]));
    ctx.out.int(e as i64);
}

fn hkeys(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(h) = read_hash!(ctx, &args[1]) else {
        return ctx.out.array(0);
    };
    ctx.out.array(h.len());
    for (f, _) in h.iter() {
        ctx.out.bulk(f);
    }
}

fn hvals(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(h) = read_hash!(ctx, &args[1]) else {
        return ctx.out.array(0);
    };
    ctx.out.array(h.len());
    for (_, v) in h.iter() {
        ctx.out.bulk(v);
    }
}

fn hgetall(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(h) = read_hash!(ctx, &args[1]) else {
        return ctx.out.map(0);
    };
    ctx.out.map(h.len());
    for (f, v) in h.iter() {
        ctx.out.bulk(f);
        ctx.out.bulk(v);
    }
}

// ---------------------------------------------------------------------------
// HRANDFIELD

/// Parses a count in [-LONG_MAX, LONG_MAX] like Redis's getRangeLongFromObjectOrReply.
pub(super) fn random_count_arg(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<i64> {
    match parse_i64(arg) {
        None => {
            ctx.err(NOT_INT);
            None
        }
        Some(i64::MIN) => {
            ctx.err(&format!(
                "ERR value is out of range, value must between {} and {}",
                -i64::MAX,
                i64::MAX
            ));
            None
        }
        Some(n) => Some(n),
    }
}

fn hrandfield(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() == 2 {
        let h = read_hash!(ctx, &args[1]);
        match h {
            None => ctx.out.null(),
            Some(h) => {
                let i = rand::thread_rng().gen_range(0..h.len());
                let (f, _) = h.get_index(i).expect("index in range");
                ctx.out.bulk(f);
            }
        }
        return;
    }
    let Some(l) = random_count_arg(ctx, &args[2]) else {
        return;
    };
    let withvalues = match args.len() {
        3 => false,
        4 if is(&args[3], "withvalues") => {
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
                return ctx.err("ERR value is out of range");
            }
            true
        }
        _ => return ctx.err(SYNTAX),
    };
    let Some(h) = read_hash!(ctx, &args[1]) else {
        return ctx.out.array(0);
    };
    let resp3 = ctx.out.resp3;
    let count = l.unsigned_abs() as usize;
    if count == 0 {
        return ctx.out.array(0);
    }
    let size = h.len();
    let out = &mut *ctx.out;
    // Writes one field (and its value) in the reply shape of the protocol.
    let emit = |out: &mut Reply, f: &[u8], v: &[u8]| {
        if withvalues && resp3 {
            out.array(2);
        }
        out.bulk(f);
        if withvalues {
            out.bulk(v);
        }
    };
    let header = |out: &mut Reply, n: usize| {
        if withvalues && !resp3 {
            out.array(2 * n);
        } else {
            out.array(n);
        }
    };
    let mut rng = rand::thread_rng();
    if l < 0 || count == 1 {
        // Repeats allowed: sample the whole hash every time.
        header(out, count);
        for _ in 0..count {
            let (f, v) = h.get_index(rng.gen_range(0..size)).expect("in range");
            emit(out, f, v);
        }
        return;
    }
    if count >= size {
        header(out, size);
        for (f, v) in h.iter() {
            emit(out, f, v);
        }
        return;
    }
    header(out, count);
    for i in rand::seq::index::sample(&mut rng, size, count) {
        let (f, v) = h.get_index(i).expect("in range");
        emit(out, f, v);
    }
}

// ---------------------------------------------------------------------------
// HSCAN and the collection-scan helpers

/// Collections with at most this many elements are scanned in one call
/// (like Redis's listpack/intset encodings).
pub(super) const SCAN_WHOLE_MAX: usize = 128;
/// Number of hash slots the scan cursor walks.
const SCAN_SLOTS: u64 = 1 << 16;
/// Smallest window: bounds a full scan to SCAN_SLOTS / SCAN_MIN_WIDTH calls
/// (each call hashes the whole collection).
const SCAN_MIN_WIDTH: u64 = 1024;

/// Parses a SCAN-family cursor exactly like Redis (strtoul: optional sign,
/// negative values wrap, empty = 0, no leading space, no trailing garbage).
pub(super) fn parse_cursor(arg: &[u8]) -> Option<u64> {
    // C's isspace: also vertical tab.
    if arg
        .first()
        .is_some_and(|&c| c.is_ascii_whitespace() || c == 0x0b)
    {
        return None;
    }
    let (neg, digits) = match arg.first() {
        Some(b'-') => (true, &arg[1..]),
        Some(b'+') => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        // strtoul with no digits leaves the end pointer at the start.
        return if arg.is_empty() { Some(0) } else { None };
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// MATCH / COUNT options of HSCAN / SSCAN.
pub(super) struct ScanOpts<'a> {
    pub count: usize,
    pub pattern: Option<&'a [u8]>,
}

impl ScanOpts<'_> {
    pub fn matches(&self, elem: &[u8]) -> bool {
        self.pattern.is_none_or(|p| glob_match(p, elem, false))
    }
}

/// Parses the options after the cursor (`args[3..]`); Err is the error reply.
pub(super) fn parse_scan_opts(args: &[Bytes]) -> Result<ScanOpts<'_>, &'static str> {
    let mut opts = ScanOpts {
        count: 10,
        pattern: None,
    };
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "count") && more >= 1 {
            let n = parse_i64(&args[i + 1]).ok_or(NOT_INT)?;
            if n < 1 {
                return Err(SYNTAX);
            }
            opts.count = n as usize;
        } else if is(&args[i], "match") && more >= 1 {
            let p = &args[i + 1][..];
            opts.pattern = if p == b"*" { None } else { Some(p) };
        } else {
            return Err(SYNTAX);
        }
        i += 2;
    }
    Ok(opts)
}

/// The slot (0..65536) of a collection element: a fixed hash, so a cursor
/// stays meaningful whatever happens to the collection between calls.
pub(super) fn scan_slot(elem: &[u8]) -> u64 {
    static HASHER: std::sync::LazyLock<ahash::RandomState> =
        std::sync::LazyLock::new(|| ahash::RandomState::with_seeds(1, 2, 3, 4));
    HASHER.hash_one(elem) >> 48
}

/// The slot window one call covers: `Whole` for small collections (reply
/// everything, cursor 0), else slots `[start, end)` and the next cursor.
pub(super) enum ScanWindow {
    Whole,
    Slots { start: u64, end: u64, next: u64 },
}

impl ScanWindow {
    pub fn new(cursor: u64, count: usize, len: usize) -> ScanWindow {
        if len <= SCAN_WHOLE_MAX {
            return ScanWindow::Whole;
        }
        if cursor >= SCAN_SLOTS {
            return ScanWindow::Slots {
                start: SCAN_SLOTS,
                end: SCAN_SLOTS,
                next: 0,
            };
        }
        let want = (count as u64)
            .saturating_mul(SCAN_SLOTS)
            .div_ceil(len as u64);
        let width = want.clamp(SCAN_MIN_WIDTH, SCAN_SLOTS);
        let end = (cursor + width).min(SCAN_SLOTS);
        ScanWindow::Slots {
            start: cursor,
            end,
            next: if end >= SCAN_SLOTS { 0 } else { end },
        }
    }

    pub fn contains(&self, elem: &[u8]) -> bool {
        match *self {
            ScanWindow::Whole => true,
            ScanWindow::Slots { start, end, .. } => (start..end).contains(&scan_slot(elem)),
        }
    }

    pub fn next_cursor(&self) -> u64 {
        match *self {
            ScanWindow::Whole => 0,
            ScanWindow::Slots { next, .. } => next,
        }
    }
}

/// Writes the empty scan reply (`["0", []]`).
pub(super) fn empty_scan(out: &mut Reply) {
    out.array(2);
    out.bulk(b"0");
    out.array(0);
}

fn hscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(cursor) = parse_cursor(&args[2]) else {
        return ctx.err("ERR invalid cursor");
    };
    let h = match get_hash(ctx.ks, &args[1]) {
        Err(_) => return ctx.out.error(super::util::WRONGTYPE),
        Ok(None) => return empty_scan(ctx.out),
        Ok(Some(h)) => h,
    };
    let opts = match parse_scan_opts(args) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let window = ScanWindow::new(cursor, opts.count, h.len());
    let found: Vec<(&[u8], &[u8])> = h
        .iter()
        .filter(|(f, _)| window.contains(f) && opts.matches(f))
        .collect();
    let out = &mut *ctx.out;
    out.array(2);
    out.bulk_int(window.next_cursor() as i64);
    out.array(found.len() * 2);
    for (f, v) in found {
        out.bulk(f);
        out.bulk(v);
    }
}
