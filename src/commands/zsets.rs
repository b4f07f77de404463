//! Sorted-set commands (Redis 7.0.15 semantics): ZADD, ZINCRBY, ZREM, ZCARD,
//! ZCOUNT, ZLEXCOUNT, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, the ZRANGE family,
//! ZRANGESTORE, ZREMRANGEBY*, ZPOPMIN/ZPOPMAX, BZPOPMIN/BZPOPMAX, ZMPOP,
//! BZMPOP, ZUNION/ZINTER/ZDIFF (+STORE), ZINTERCARD, ZRANDMEMBER, ZSCAN.
//!
//! Argument checks follow Redis's order (options, then ranges, then the key
//! lookup and its type), because which error a client sees depends on it.
//! Ranks and ranges are O(log n) through the order-statistic tree in
//! [`ZSet`]: a score or lex range becomes a half-open rank interval
//! `[start, end)` found by two descents, then elements are walked from there.

use std::cmp::Ordering;
use std::os::raw::c_char;

use bytes::Bytes;
use indexmap::map::Entry as MapEntry;
use indexmap::IndexMap;
use rand::Rng;

use super::flags::*;
use super::util::{
    clamp_range, get_zset, is, owned, parse_f64, parse_i64, parse_scan_cursor, peek_zset,
    scan_collection, NOT_FLOAT, NOT_INT, SYNTAX, WRONGTYPE,
};
use super::BlockRequest;
use super::{Command, Ctx, KeySpec};
use super::{KEY1, KEYS_1_2, KEYS_BUT_LAST};
use crate::engine::{Keys, Mutation, SetValue, Value, ZSet};
use crate::protocol::Reply;
use crate::util::glob::glob_match;
use crate::util::number::format_double;

const GROUP: &str = "sorted-set";

pub static COMMANDS: &[Command] = &[
    Command::new("zadd", -4, WRITE | DENYOOM | FAST, KEY1, zadd, GROUP),
    Command::new("zincrby", 4, WRITE | DENYOOM | FAST, KEY1, zincrby, GROUP),
    Command::new("zrem", -3, WRITE | FAST, KEY1, zrem, GROUP),
    Command::new("zcard", 2, READONLY | FAST, KEY1, zcard, GROUP),
    Command::new("zcount", 4, READONLY | FAST, KEY1, zcount, GROUP),
    Command::new("zlexcount", 4, READONLY | FAST, KEY1, zlexcount, GROUP),
    Command::new("zscore", 3, READONLY | FAST, KEY1, zscore, GROUP),
    Command::new("zmscore", -3, READONLY | FAST, KEY1, zmscore, GROUP),
    Command::new("zrank", 3, READONLY | FAST, KEY1, zrank, GROUP),
    Command::new("zrevrank", 3, READONLY | FAST, KEY1, zrevrank, GROUP),
    Command::new("zrange", -4, READONLY, KEY1, zrange, GROUP),
    Command::new("zrevrange", -4, READONLY, KEY1, zrevrange, GROUP),
    Command::new("zrangebyscore", -4, READONLY, KEY1, zrangebyscore, GROUP),
    Command::new(
        "zrevrangebyscore",
        -4,
        READONLY,
        KEY1,
        zrevrangebyscore,
        GROUP,
    ),
    Command::new("zrangebylex", -4, READONLY, KEY1, zrangebylex, GROUP),
    Command::new("zrevrangebylex", -4, READONLY, KEY1, zrevrangebylex, GROUP),
    Command::new(
        "zrangestore",
        -5,
        WRITE | DENYOOM,
        KEYS_1_2,
        zrangestore,
        GROUP,
    ),
    Command::new("zremrangebyrank", 4, WRITE, KEY1, zremrangebyrank, GROUP),
    Command::new("zremrangebyscore", 4, WRITE, KEY1, zremrangebyscore, GROUP),
    Command::new("zremrangebylex", 4, WRITE, KEY1, zremrangebylex, GROUP),
    Command::new("zpopmin", -2, WRITE | FAST, KEY1, zpopmin, GROUP),
    Command::new("zpopmax", -2, WRITE | FAST, KEY1, zpopmax, GROUP),
    Command::new(
        "bzpopmin",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        KEYS_BUT_LAST,
        bzpopmin,
        GROUP,
    ),
    Command::new(
        "bzpopmax",
        -3,
        WRITE | NOSCRIPT | BLOCKING | FAST,
        KEYS_BUT_LAST,
        bzpopmax,
        GROUP,
    ),
    Command::new(
        "zmpop",
        -4,
        WRITE,
        KeySpec::Custom(numkeys1_keys),
        zmpop,
        GROUP,
    ),
    Command::new(
        "bzmpop",
        -5,
        WRITE | BLOCKING,
        KeySpec::Custom(numkeys2_keys),
        bzmpop,
        GROUP,
    ),
    Command::new(
        "zunion",
        -3,
        READONLY,
        KeySpec::Custom(numkeys1_keys),
        zunion,
        GROUP,
    ),
    Command::new(
        "zinter",
        -3,
        READONLY,
        KeySpec::Custom(numkeys1_keys),
        zinter,
        GROUP,
    ),
    Command::new(
        "zdiff",
        -3,
        READONLY,
        KeySpec::Custom(numkeys1_keys),
        zdiff,
        GROUP,
    ),
    Command::new(
        "zintercard",
        -3,
        READONLY,
        KeySpec::Custom(numkeys1_keys),
        zintercard,
        GROUP,
    ),
    Command::new(
        "zunionstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(store_keys),
        zunionstore,
        GROUP,
    )
    .first_key_fixed(),
    Command::new(
        "zinterstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(store_keys),
        zinterstore,
        GROUP,
    )
    .first_key_fixed(),
    Command::new(
        "zdiffstore",
        -4,
        WRITE | DENYOOM,
        KeySpec::Custom(store_keys),
        zdiffstore,
        GROUP,
    )
    .first_key_fixed(),
    Command::new("zrandmember", -2, READONLY, KEY1, zrandmember, GROUP),
    Command::new("zscan", -3, READONLY, KEY1, zscan, GROUP),
];

const ERR_MINMAX_FLOAT: &str = "ERR min or max is not a float";
const ERR_MINMAX_LEX: &str = "ERR min or max not valid string range item";
const ERR_NAN: &str = "ERR resulting score is not a number (NaN)";
const ERR_XX_NX: &str = "ERR XX and NX options at the same time are not compatible";
const ERR_GT_LT_NX: &str = "ERR GT, LT, and/or NX options at the same time are not compatible";
const ERR_INCR_PAIR: &str = "ERR INCR option supports a single increment-element pair";
const ERR_MUST_BE_POSITIVE: &str = "ERR value is out of range, must be positive";
const ERR_NUMKEYS: &str = "ERR numkeys should be greater than 0";
const ERR_COUNT: &str = "ERR count should be greater than 0";
const ERR_WEIGHT: &str = "ERR weight value is not a float";
const ERR_LIMIT_NEGATIVE: &str = "ERR LIMIT can't be negative";
const ERR_LIMIT_RANK: &str =
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX";
const ERR_WITHSCORES_LEX: &str =
    "ERR syntax error, WITHSCORES not supported in combination with BYLEX";
const ERR_INVALID_CURSOR: &str = "ERR invalid cursor";

// ---------------------------------------------------------------------------
// Key specs for numkeys-style commands (lenient: the handler reports errors)
// ---------------------------------------------------------------------------

/// Positions of `numkeys` keys following the count at `numkeys_at`.
fn numkeys_positions(args: &[Bytes], numkeys_at: usize, mut v: Vec<usize>) -> Vec<usize> {
    let first = numkeys_at + 1;
    if let Some(n) = args.get(numkeys_at).and_then(|a| parse_i64(a)) {
        if n > 0 {
            let end = first.saturating_add(n as usize).min(args.len());
            v.extend(first..end);
        }
    }
    v
}

/// ZUNION / ZINTER / ZDIFF / ZINTERCARD / ZMPOP: `numkeys key...` at 1.
fn numkeys1_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_positions(args, 1, Vec::new())
}

/// BZMPOP: `timeout numkeys key...`.
fn numkeys2_keys(args: &[Bytes]) -> Vec<usize> {
    numkeys_positions(args, 2, Vec::new())
}

/// Z*STORE: `destination numkeys key...`.
fn store_keys(args: &[Bytes]) -> Vec<usize> {
    let v = if args.len() > 1 { vec![1] } else { Vec::new() };
    numkeys_positions(args, 2, v)
}

// ---------------------------------------------------------------------------
// Range parsing
// ---------------------------------------------------------------------------

/// The bytes a C function taking a NUL-terminated string sees.
fn c_str(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

/// `strtod(s, &end)` with `*end == '\0'` required and NaN rejected, as
/// `zslParseRange` does (so `""` is 0, leading blanks and hex are accepted,
/// overflow gives an infinity).
fn parse_range_float(s: &[u8]) -> Option<f64> {
    let s = c_str(s);
    let mut buf: smallvec::SmallVec<[u8; 64]> = smallvec::SmallVec::with_capacity(s.len() + 1);
    buf.extend_from_slice(s);
    buf.push(0);
    let start = buf.as_ptr() as *const c_char;
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod only
    // reads up to the terminator and sets `end` inside the buffer.
    let v = unsafe { libc::strtod(start, &mut end) };
    let consumed = end as usize - start as usize;
    if consumed != s.len() || v.is_nan() {
        return None;
    }
    Some(v)
}

/// A score interval (`zrangespec`).
#[derive(Clone, Copy, Debug)]
struct ScoreRange {
    min: f64,
    max: f64,
    minex: bool,
    maxex: bool,
}

fn parse_score_item(arg: &[u8]) -> Option<(f64, bool)> {
    match arg.first() {
        Some(b'(') => parse_range_float(&arg[1..]).map(|v| (v, true)),
        _ => parse_range_float(arg).map(|v| (v, false)),
    }
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Option<ScoreRange> {
    let (min, minex) = parse_score_item(min)?;
    let (max, maxex) = parse_score_item(max)?;
    Some(ScoreRange {
        min,
        max,
        minex,
        maxex,
    })
}

/// One end of a lex interval (`zslParseLexRangeItem`).
#[derive(Clone, Copy, Debug)]
enum LexItem<'a> {
    /// `-`: smaller than every string.
    Min,
    /// `+`: greater than every string.
    Max,
    Incl(&'a [u8]),
    Excl(&'a [u8]),
}

fn parse_lex_item(arg: &[u8]) -> Option<LexItem<'_>> {
    // C reads the byte after the first one (the terminator for one-byte input).
    let alone = arg.len() == 1 || arg.get(1) == Some(&0);
    match arg.first() {
        Some(b'+') if alone => Some(LexItem::Max),
        Some(b'-') if alone => Some(LexItem::Min),
        Some(b'(') => Some(LexItem::Excl(&arg[1..])),
        Some(b'[') => Some(LexItem::Incl(&arg[1..])),
        _ => None,
    }
}

#[derive(Clone, Copy, Debug)]
struct LexRange<'a> {
    min: LexItem<'a>,
    max: LexItem<'a>,
}

fn parse_lex_range<'a>(min: &'a [u8], max: &'a [u8]) -> Option<LexRange<'a>> {
    Some(LexRange {
        min: parse_lex_item(min)?,
        max: parse_lex_item(max)?,
    })
}

/// Ranks `[start, end)` of the elements inside a score range (empty when end <= start).
fn score_span(z: &ZSet, r: &ScoreRange) -> (usize, usize) {
    let start = z.count_below_score(r.min, r.minex);
    let end = z.count_below_score(r.max, !r.maxex);
    (start, end)
}

/// Ranks `[start, end)` of the elements inside a lex range.
fn lex_span(z: &ZSet, r: &LexRange<'_>) -> (usize, usize) {
    let start = match r.min {
        LexItem::Min => 0,
        LexItem::Max => z.len(),
        LexItem::Incl(v) => z.count_below_lex(v, false),
        LexItem::Excl(v) => z.count_below_lex(v, true),
    };
    let end = match r.max {
        LexItem::Min => 0,
        LexItem::Max => z.len(),
        LexItem::Incl(v) => z.count_below_lex(v, true),
        LexItem::Excl(v) => z.count_below_lex(v, false),
    };
    (start, end)
}

/// `count` elements walked from rank `first`, upwards or (`rev`) downwards.
#[derive(Clone, Copy, Debug)]
struct Span {
    first: usize,
    count: usize,
    rev: bool,
}

const EMPTY_SPAN: Span = Span {
    first: 0,
    count: 0,
    rev: false,
};

/// Applies `LIMIT offset count` to the ranks `[start, end)`, as
/// `genericZrangebyscoreCommand` does: a negative offset selects nothing, a
/// negative count means "all the rest".
fn limited_span(start: usize, end: usize, offset: i64, limit: i64, rev: bool) -> Span {
    if end <= start || offset < 0 {
        return EMPTY_SPAN;
    }
    let total = end - start;
    let skip = (offset as u64).min(total as u64) as usize;
    let rest = total - skip;
    let take = if limit < 0 {
        rest
    } else {
        (limit as u64).min(rest as u64) as usize
    };
    if take == 0 {
        return EMPTY_SPAN;
    }
    let first = if rev { end - 1 - skip } else { start + skip };
    Span {
        first,
        count: take,
        rev,
    }
}

/// Z[REV]RANGE by index, with Redis's clamping.
fn rank_span(start: i64, stop: i64, len: usize, rev: bool) -> Span {
    match clamp_range(start, stop, len) {
        None => EMPTY_SPAN,
        Some((s, e)) => Span {
            first: if rev { len - 1 - s } else { s },
            count: e - s + 1,
            rev,
        },
    }
}

fn for_span<'a>(z: &'a ZSet, sp: Span, mut f: impl FnMut(&'a [u8], f64)) {
    if sp.count == 0 {
        return;
    }
    if sp.rev {
        for (m, s) in z.iter_rev_from(sp.first).take(sp.count) {
            f(m, s);
        }
    } else {
        for (m, s) in z.iter_from(sp.first).take(sp.count) {
            f(m, s);
        }
    }
}

// ---------------------------------------------------------------------------
// Reply helpers
// ---------------------------------------------------------------------------

/// Header of a list of `n` members, optionally with scores: RESP2 flattens
/// (`2n` items), RESP3 nests `[member, score]` pairs.
fn items_header(out: &mut Reply, n: usize, withscores: bool) {
    if withscores && !out.resp3 {
        out.array(n * 2);
    } else {
        out.array(n);
    }
}

fn item(out: &mut Reply, member: &[u8], score: f64, withscores: bool) {
    if withscores && out.resp3 {
        out.array(2);
    }
    out.bulk(member);
    if withscores {
        out.double(score);
    }
}

fn emit_span(out: &mut Reply, z: &ZSet, sp: Span, withscores: bool) {
    items_header(out, sp.count, withscores);
    for_span(z, sp, |m, s| item(out, m, s, withscores));
}

/// Builds a fresh sorted set from (member, score) pairs (`-0` stored as `0`).
fn build_zset<'a>(items: impl IntoIterator<Item = (&'a [u8], f64)>) -> ZSet {
    let mut z = ZSet::new();
    for (m, s) in items {
        z.insert(m, s + 0.0);
    }
    z
}

/// Replaces `dst` with `z` (or deletes it when `z` is empty) and replies the
/// size; `event` names the keyspace event of a non-empty result.
fn store_result(ctx: &mut Ctx<'_, '_>, dst: &Bytes, z: ZSet, event: &'static str) {
    let n = z.len();
    if n == 0 {
        if ctx.ks.exists(dst) {
            ctx.ks.apply(Mutation::Del { key: owned(dst) });
        }
    } else {
        ctx.ks.next_event(b'z', event);
        ctx.ks.apply(Mutation::Put {
            key: owned(dst),
            value: Value::ZSet(Box::new(z)),
            expire_at: 0,
        });
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// ZADD / ZINCRBY
// ---------------------------------------------------------------------------

pub(super) fn zadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zadd_generic(ctx, args, false);
}

fn zincrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zadd_generic(ctx, args, true);
}

/// ZADD's (and ZINCRBY's) arguments.
struct ZaddOpts<'a> {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
    /// The parsed scores, one per pair.
    scores: smallvec::SmallVec<[f64; 4]>,
    /// The score/member pairs, as given (members at odd indexes).
    pairs: &'a [Bytes],
}

impl ZaddOpts<'_> {
    fn member(&self, j: usize) -> &Bytes {
        &self.pairs[1 + j * 2]
    }
}

/// Parses ZADD's flags and pairs with Redis's checks in Redis's order
/// (pair count, XX+NX, GT/LT/NX, INCR with several pairs, the scores); the
/// error is the reply.
fn parse_zadd(args: &[Bytes], incr: bool) -> Result<ZaddOpts<'_>, &'static str> {
    let mut o = ZaddOpts {
        nx: false,
        xx: false,
        gt: false,
        lt: false,
        ch: false,
        incr,
        scores: smallvec::SmallVec::new(),
        pairs: &[],
    };
    let mut scoreidx = 2;
    while scoreidx < args.len() {
        let a = &args[scoreidx];
        if is(a, "nx") {
            o.nx = true;
        } else if is(a, "xx") {
            o.xx = true;
        } else if is(a, "ch") {
            o.ch = true;
        } else if is(a, "incr") {
            o.incr = true;
        } else if is(a, "gt") {
            o.gt = true;
        } else if is(a, "lt") {
            o.lt = true;
        } else {
            break;
        }
        scoreidx += 1;
    }
    let elements = args.len() - scoreidx;
    if elements % 2 == 1 || elements == 0 {
        return Err(SYNTAX);
    }
    let elements = elements / 2;
    if o.nx && o.xx {
        return Err(ERR_XX_NX);
    }
    if (o.nx && (o.gt || o.lt)) || (o.gt && o.lt) {
        return Err(ERR_GT_LT_NX);
    }
    if o.incr && elements > 1 {
        return Err(ERR_INCR_PAIR);
    }
    o.pairs = &args[scoreidx..];
    o.scores.reserve_exact(elements);
    for j in 0..elements {
        o.scores.push(parse_f64(&o.pairs[j * 2]).ok_or(NOT_FLOAT)?);
    }
    Ok(o)
}

/// What ZADD decided: the scores to store and the counts the reply uses.
#[derive(Default)]
struct ZaddPlan {
    changes: Vec<(f64, Bytes)>,
    added: i64,
    updated: i64,
    processed: i64,
    /// The last score set or kept (ZADD INCR's reply).
    last_score: f64,
}

fn zadd_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], incr: bool) {
    let o = match parse_zadd(args, incr) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };
    let key = &args[1];
    let z = match peek_zset(ctx.ks, key) {
        Ok(z) => z,
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let plan = if z.is_some() || !o.xx {
        match zadd_plan(z, &o) {
            Ok(p) => p,
            Err(e) => return ctx.out.error(e),
        }
    } else {
        ZaddPlan::default()
    };
    if !plan.changes.is_empty() {
        if o.incr {
            ctx.ks.next_event(b'z', "zincr");
        }
        ctx.ks.apply(Mutation::ZAdd {
            key: owned(key),
            pairs: plan.changes,
        });
    }
    if o.incr {
        if plan.processed > 0 {
            ctx.out.double(plan.last_score);
        } else {
            ctx.out.null();
        }
    } else if o.ch {
        ctx.out.int(plan.added + plan.updated);
    } else {
        ctx.out.int(plan.added);
    }
}

/// Decides each pair against the current set `z` (and the pairs before it:
/// a member may repeat); Err(ERR_NAN) when an increment gives NaN.
fn zadd_plan(z: Option<&ZSet>, o: &ZaddOpts<'_>) -> Result<ZaddPlan, &'static str> {
    let elements = o.scores.len();
    let mut plan = ZaddPlan::default();
    plan.changes.reserve(elements);
    // Scores already decided in this command, for repeated members.
    let mut pending: Option<ahash::HashMap<&[u8], f64>> = None;
    if elements > 1 {
        pending = Some(ahash::HashMap::with_capacity_and_hasher(
            elements,
            Default::default(),
        ));
    }
    for (j, &score) in o.scores.iter().enumerate() {
        let member: &[u8] = o.member(j);
        let cur = pending
            .as_ref()
            .and_then(|p| p.get(member).copied())
            .or_else(|| z.and_then(|z| z.score(member)));
        let newscore = match cur {
            Some(cur) => {
                if o.nx {
                    continue;
                }
                let mut newscore = score;
                if o.incr {
                    newscore += cur;
                    if newscore.is_nan() {
                        return Err(ERR_NAN);
                    }
                }
                if (o.lt && newscore >= cur) || (o.gt && newscore <= cur) {
                    continue;
                }
                plan.processed += 1;
                plan.last_score = newscore;
                if newscore == cur {
                    continue;
                }
                plan.updated += 1;
                newscore
            }
            None => {
                if o.xx {
                    continue;
                }
                plan.added += 1;
                plan.processed += 1;
                plan.last_score = score;
                score
            }
        };
        // Stored scores never keep the sign of a zero (Redis stores small
        // sets as listpacks, where -0 becomes the integer 0).
        let newscore = newscore + 0.0;
        if let Some(p) = pending.as_mut() {
            p.insert(member, newscore);
        }
        plan.changes.push((newscore, owned(o.member(j))));
    }
    Ok(plan)
}

// ---------------------------------------------------------------------------
// ZREM, ZCARD, ZSCORE, ZMSCORE, ZRANK, ZREVRANK, ZCOUNT, ZLEXCOUNT
// ---------------------------------------------------------------------------

fn zrem(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let key = &args[1];
    let z = match peek_zset(ctx.ks, key) {
        Ok(Some(z)) => z,
        Ok(None) => return ctx.out.int(0),
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let mut members: Vec<Bytes> = Vec::new();
    let many = args.len() > 10;
    let mut seen: ahash::HashSet<&[u8]> = Default::default();
    for m in &args[2..] {
        if !z.contains(m) {
            continue;
        }
        let dup = if many {
            !seen.insert(&m[..])
        } else {
            members.iter().any(|x| x == m)
        };
        if !dup {
            members.push(owned(m));
        }
    }
    let n = members.len();
    if n == z.len() {
        // Emptied: "zrem" then "del", as the collection goes away.
        ctx.ks.next_event(b'z', "zrem");
        ctx.ks.apply(Mutation::Del { key: owned(key) });
    } else if n > 0 {
        ctx.ks.apply(Mutation::ZRem {
            key: owned(key),
            members,
        });
    }
    ctx.out.int(n as i64);
}

fn zcard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_zset(ctx.ks, &args[1]) {
        Ok(z) => ctx.out.int(z.map_or(0, |z| z.len() as i64)),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn zscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match get_zset(ctx.ks, &args[1]) {
        Ok(z) => match z.and_then(|z| z.score(&args[2])) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        },
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn zmscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let z = match get_zset(ctx.ks, &args[1]) {
        Ok(z) => z,
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    ctx.out.array(args.len() - 2);
    for m in &args[2..] {
        match z.and_then(|z| z.score(m)) {
            Some(s) => ctx.out.double(s),
            None => ctx.out.null(),
        }
    }
}

fn zrank(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrank_generic(ctx, args, false);
}

fn zrevrank(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrank_generic(ctx, args, true);
}

fn zrank_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], rev: bool) {
    match get_zset(ctx.ks, &args[1]) {
        Ok(Some(z)) => match z.rank(&args[2]) {
            Some(r) => ctx.out.int(if rev { z.len() - 1 - r } else { r } as i64),
            None => ctx.out.null(),
        },
        Ok(None) => ctx.out.null(),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn zcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(r) = parse_score_range(&args[2], &args[3]) else {
        return ctx.out.error(ERR_MINMAX_FLOAT);
    };
    match get_zset(ctx.ks, &args[1]) {
        Ok(Some(z)) => {
            let (a, b) = score_span(z, &r);
            ctx.out.int(b.saturating_sub(a) as i64)
        }
        Ok(None) => ctx.out.int(0),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn zlexcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(r) = parse_lex_range(&args[2], &args[3]) else {
        return ctx.out.error(ERR_MINMAX_LEX);
    };
    match get_zset(ctx.ks, &args[1]) {
        Ok(Some(z)) => {
            let (a, b) = lex_span(z, &r);
            ctx.out.int(b.saturating_sub(a) as i64)
        }
        Ok(None) => ctx.out.int(0),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

// ---------------------------------------------------------------------------
// ZRANGE family
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeType {
    Auto,
    Rank,
    Score,
    Lex,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Auto,
    Forward,
    Reverse,
}

enum ParsedRange<'a> {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(LexRange<'a>),
}

fn zrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Auto, Direction::Auto);
}

fn zrevrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Rank, Direction::Reverse);
}

fn zrangebyscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Forward);
}

fn zrevrangebyscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Score, Direction::Reverse);
}

fn zrangebylex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Forward);
}

fn zrevrangebylex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(ctx, args, 1, None, RangeType::Lex, Direction::Reverse);
}

fn zrangestore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zrange_generic(
        ctx,
        args,
        2,
        Some(&args[1]),
        RangeType::Auto,
        Direction::Auto,
    );
}

/// `zrangeGenericCommand`: `args[argc_start]` is the source key, followed by
/// min, max and the options.
fn zrange_generic(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    argc_start: usize,
    store: Option<&Bytes>,
    mut rangetype: RangeType,
    mut direction: Direction,
) {
    let mut withscores = false;
    let mut offset: i64 = 0;
    let mut limit: i64 = -1;
    let mut j = argc_start + 3;
    while j < args.len() {
        let leftargs = args.len() - j - 1;
        let a = &args[j];
        if store.is_none() && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && leftargs >= 2 {
            let Some(o) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            let Some(l) = ctx.int_arg(&args[j + 2]) else {
                return;
            };
            offset = o;
            limit = l;
            j += 2;
        } else if direction == Direction::Auto && is(a, "rev") {
            direction = Direction::Reverse;
        } else if rangetype == RangeType::Auto && is(a, "bylex") {
            rangetype = RangeType::Lex;
        } else if rangetype == RangeType::Auto && is(a, "byscore") {
            rangetype = RangeType::Score;
        } else {
            return ctx.out.error(SYNTAX);
        }
        j += 1;
    }
    let rev = direction == Direction::Reverse;
    if rangetype == RangeType::Auto {
        rangetype = RangeType::Rank;
    }
    if limit != -1 && rangetype == RangeType::Rank {
        return ctx.out.error(ERR_LIMIT_RANK);
    }
    if withscores && rangetype == RangeType::Lex {
        return ctx.out.error(ERR_WITHSCORES_LEX);
    }
    let (mut minidx, mut maxidx) = (argc_start + 1, argc_start + 2);
    if rev && rangetype != RangeType::Rank {
        std::mem::swap(&mut minidx, &mut maxidx);
    }
    let range = match rangetype {
        RangeType::Auto | RangeType::Rank => {
            let Some(s) = ctx.int_arg(&args[minidx]) else {
                return;
            };
            let Some(e) = ctx.int_arg(&args[maxidx]) else {
                return;
            };
            ParsedRange::Rank(s, e)
        }
        RangeType::Score => match parse_score_range(&args[minidx], &args[maxidx]) {
            Some(r) => ParsedRange::Score(r),
            None => return ctx.out.error(ERR_MINMAX_FLOAT),
        },
        RangeType::Lex => match parse_lex_range(&args[minidx], &args[maxidx]) {
            Some(r) => ParsedRange::Lex(r),
            None => return ctx.out.error(ERR_MINMAX_LEX),
        },
    };
    let z = match get_zset(ctx.ks, &args[argc_start]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            match store {
                Some(dst) => store_result(ctx, dst, ZSet::new(), "zrangestore"),
                None => ctx.out.array(0),
            }
            return;
        }
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let span = match range {
        ParsedRange::Rank(s, e) => rank_span(s, e, z.len(), rev),
        ParsedRange::Score(r) => {
            let (a, b) = score_span(z, &r);
            limited_span(a, b, offset, limit, rev)
        }
        ParsedRange::Lex(r) => {
            let (a, b) = lex_span(z, &r);
            limited_span(a, b, offset, limit, rev)
        }
    };
    match store {
        None => emit_span(ctx.out, z, span, withscores),
        Some(dst) => {
            let mut items = Vec::with_capacity(span.count);
            for_span(z, span, |m, s| items.push((m, s)));
            let result = build_zset(items);
            store_result(ctx, dst, result, "zrangestore");
        }
    }
}

// ---------------------------------------------------------------------------
// ZREMRANGEBYRANK / ZREMRANGEBYSCORE / ZREMRANGEBYLEX
// ---------------------------------------------------------------------------

fn zremrangebyrank(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Rank);
}

fn zremrangebyscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Score);
}

fn zremrangebylex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zremrange_generic(ctx, args, RangeType::Lex);
}

fn zremrange_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], rangetype: RangeType) {
    let range = match rangetype {
        RangeType::Score => match parse_score_range(&args[2], &args[3]) {
            Some(r) => ParsedRange::Score(r),
            None => return ctx.out.error(ERR_MINMAX_FLOAT),
        },
        RangeType::Lex => match parse_lex_range(&args[2], &args[3]) {
            Some(r) => ParsedRange::Lex(r),
            None => return ctx.out.error(ERR_MINMAX_LEX),
        },
        _ => {
            let Some(s) = ctx.int_arg(&args[2]) else {
                return;
            };
            let Some(e) = ctx.int_arg(&args[3]) else {
                return;
            };
            ParsedRange::Rank(s, e)
        }
    };
    let key = &args[1];
    let z = match peek_zset(ctx.ks, key) {
        Ok(Some(z)) => z,
        Ok(None) => return ctx.out.int(0),
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let (a, b) = match range {
        ParsedRange::Rank(s, e) => match clamp_range(s, e, z.len()) {
            Some((s, e)) => (s, e + 1),
            None => (0, 0),
        },
        ParsedRange::Score(r) => score_span(z, &r),
        ParsedRange::Lex(r) => lex_span(z, &r),
    };
    let n = b.saturating_sub(a);
    if n == 0 {
        return ctx.out.int(0);
    }
    let event = match rangetype {
        RangeType::Score => "zremrangebyscore",
        RangeType::Lex => "zremrangebylex",
        _ => "zremrangebyrank",
    };
    if n == z.len() {
        ctx.ks.next_event(b'z', event);
        ctx.ks.apply(Mutation::Del { key: owned(key) });
    } else {
        let members: Vec<Bytes> = z
            .iter_from(a)
            .take(n)
            .map(|(m, _)| Bytes::copy_from_slice(m))
            .collect();
        ctx.ks.next_event(b'z', event);
        ctx.ks.apply(Mutation::ZRem {
            key: owned(key),
            members,
        });
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// Pops: ZPOPMIN/ZPOPMAX, BZPOPMIN/BZPOPMAX, ZMPOP, BZMPOP
// ---------------------------------------------------------------------------

/// How a pop replies.
#[derive(Clone, Copy)]
struct PopStyle {
    /// Pop from the high end.
    max: bool,
    /// Reply the key first (BZPOP*, ZMPOP, BZMPOP).
    emitkey: bool,
    /// `[member, score]` pairs nested (ZMPOP/BZMPOP, RESP3 ZPOP* with count).
    nested: bool,
    /// Null array (rather than an empty one) when no key has elements.
    nil_when_empty: bool,
}

/// `genericZpopCommand`: pops up to `count` elements (-1: one, plain reply)
/// from the first existing key among `keys`, replying and applying the change.
fn generic_zpop<K: AsRef<[u8]>>(
    ks: &mut Keys<'_>,
    out: &mut Reply,
    keys: &[K],
    count: i64,
    style: PopStyle,
) {
    let mut found = None;
    for k in keys {
        match peek_zset(ks, k.as_ref()) {
            Ok(None) => continue,
            Ok(Some(_)) => {
                found = Some(k.as_ref());
                break;
            }
            Err(_) => return out.error(WRONGTYPE),
        }
    }
    let Some(key) = found else {
        if style.nil_when_empty {
            out.null_array();
        } else {
            out.array(0);
        }
        return;
    };
    if count == 0 {
        return out.array(0);
    }
    let count = if count < 0 { 1 } else { count as u64 };
    let Ok(Some(z)) = peek_zset(ks, key) else {
        unreachable!("sorted set just found");
    };
    let len = z.len();
    let n = count.min(len as u64) as usize;
    match (style.nested, style.emitkey) {
        (false, false) => out.array(n * 2),
        (true, false) => out.array(n),
        (false, true) => {
            out.array(n * 2 + 1);
            out.bulk(key);
        }
        (true, true) => {
            out.array(2);
            out.bulk(key);
            out.array(n);
        }
    }
    let mut members: Vec<Bytes> = Vec::with_capacity(if n == len { 0 } else { n });
    let mut emit = |m: &[u8], s: f64| {
        if style.nested {
            out.array(2);
        }
        out.bulk(m);
        out.double(s);
        if n != len {
            members.push(Bytes::copy_from_slice(m));
        }
    };
    if style.max {
        z.iter_rev().take(n).for_each(|(m, s)| emit(m, s));
    } else {
        z.iter().take(n).for_each(|(m, s)| emit(m, s));
    }
    let key = Bytes::copy_from_slice(key);
    ks.next_event(b'z', if style.max { "zpopmax" } else { "zpopmin" });
    if n == len {
        ks.apply(Mutation::Del { key });
    } else {
        ks.apply(Mutation::ZRem { key, members });
    }
}

fn zpopmin(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zpop_cmd(ctx, args, false);
}

fn zpopmax(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zpop_cmd(ctx, args, true);
}

fn zpop_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes], max: bool) {
    if args.len() > 3 {
        return ctx.out.error(SYNTAX);
    }
    let mut count = -1;
    if args.len() == 3 {
        match parse_i64(&args[2]) {
            Some(c) if c >= 0 => count = c,
            _ => return ctx.out.error(ERR_MUST_BE_POSITIVE),
        }
    }
    let style = PopStyle {
        max,
        emitkey: false,
        nested: ctx.out.resp3 && count != -1,
        nil_when_empty: false,
    };
    generic_zpop(ctx.ks, ctx.out, &args[1..2], count, style);
}

fn bzpopmin(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    bzpop_cmd(ctx, args, false);
}

fn bzpopmax(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    bzpop_cmd(ctx, args, true);
}

fn bzpop_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes], max: bool) {
    let Some(deadline) = ctx.timeout_arg(&args[args.len() - 1]) else {
        return;
    };
    let style = PopStyle {
        max,
        emitkey: true,
        nested: false,
        nil_when_empty: false,
    };
    blocking_zpop(ctx, &args[1..args.len() - 1], -1, style, deadline);
}

fn timeout_null_array(out: &mut Reply) {
    out.null_array();
}

/// `blockingGenericZpopCommand`: pops from the first non-empty key, or blocks.
fn blocking_zpop(
    ctx: &mut Ctx<'_, '_>,
    keys: &[Bytes],
    count: i64,
    style: PopStyle,
    deadline: u64,
) {
    for k in keys {
        match peek_zset(ctx.ks, k) {
            Ok(None) => continue,
            Ok(Some(z)) if z.is_empty() => continue,
            Ok(Some(_)) => {
                return generic_zpop(ctx.ks, ctx.out, std::slice::from_ref(k), count, style);
            }
            Err(_) => return ctx.out.error(WRONGTYPE),
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
            if !matches!(peek_zset(ks, key), Ok(Some(z)) if !z.is_empty()) {
                return false;
            }
            generic_zpop(ks, out, std::slice::from_ref(key), count, style);
            true
        }),
        timeout_reply: timeout_null_array,
    });
}

fn zmpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zmpop_generic(ctx, args, 1, false);
}

fn bzmpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zmpop_generic(ctx, args, 2, true);
}

/// `zmpopGenericCommand`: `[timeout] numkeys key... MIN|MAX [COUNT count]`.
fn zmpop_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], numkeys_idx: usize, block: bool) {
    let numkeys = match parse_i64(&args[numkeys_idx]) {
        Some(n) if n >= 1 => n as u64,
        _ => return ctx.out.error(ERR_NUMKEYS),
    };
    let where_idx = numkeys_idx as u64 + numkeys + 1;
    if where_idx >= args.len() as u64 {
        return ctx.out.error(SYNTAX);
    }
    let where_idx = where_idx as usize;
    let max = if is(&args[where_idx], "min") {
        false
    } else if is(&args[where_idx], "max") {
        true
    } else {
        return ctx.out.error(SYNTAX);
    };
    let mut count: i64 = -1;
    let mut j = where_idx + 1;
    while j < args.len() {
        let moreargs = args.len() - 1 - j;
        if count == -1 && is(&args[j], "count") && moreargs > 0 {
            j += 1;
            match parse_i64(&args[j]) {
                Some(c) if c >= 1 => count = c,
                _ => return ctx.out.error(ERR_COUNT),
            }
        } else {
            return ctx.out.error(SYNTAX);
        }
        j += 1;
    }
    if count == -1 {
        count = 1;
    }
    let keys = &args[numkeys_idx + 1..where_idx];
    let style = PopStyle {
        max,
        emitkey: true,
        nested: true,
        nil_when_empty: true,
    };
    if block {
        let Some(deadline) = ctx.timeout_arg(&args[1]) else {
            return;
        };
        blocking_zpop(ctx, keys, count, style, deadline);
    } else {
        generic_zpop(ctx.ks, ctx.out, keys, count, style);
    }
}

// ---------------------------------------------------------------------------
// ZUNION / ZINTER / ZDIFF / *STORE / ZINTERCARD
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

/// `zunionInterAggregate`.
#[inline]
fn aggregate(target: &mut f64, val: f64, agg: Aggregate) {
    match agg {
        Aggregate::Sum => {
            *target += val;
            // +inf + -inf: Redis keeps the convention that the result is 0.
            if target.is_nan() {
                *target = 0.0;
            }
        }
        Aggregate::Min => {
            if val < *target {
                *target = val;
            }
        }
        Aggregate::Max => {
            if val > *target {
                *target = val;
            }
        }
    }
}

/// One input of a set operation: a sorted set, a plain set (scores 1), or nothing.
#[derive(Clone, Copy)]
enum Src<'a> {
    Missing,
    Z(&'a ZSet),
    S(&'a SetValue),
}

impl<'a> Src<'a> {
    fn len(&self) -> usize {
        match self {
            Src::Missing => 0,
            Src::Z(z) => z.len(),
            Src::S(s) => s.len(),
        }
    }

    fn find(&self, m: &[u8]) -> Option<f64> {
        match self {
            Src::Missing => None,
            Src::Z(z) => z.score(m),
            Src::S(s) => s.contains(m).then_some(1.0),
        }
    }

    /// Elements in Redis's iteration order for sorted sets (highest first).
    fn iter(&self) -> Box<dyn Iterator<Item = (&'a [u8], f64)> + 'a> {
        match *self {
            Src::Missing => Box::new(std::iter::empty()),
            Src::Z(z) => Box::new(z.iter_rev()),
            Src::S(s) => Box::new(s.iter().map(|m| (m, 1.0))),
        }
    }
}

/// A value already known to be live (checked through `Keys::get`/`peek`),
/// borrowed without a mutable borrow of the keyspace.
fn value_ref<'a>(ks: &'a Keys<'_>, key: &[u8]) -> Option<&'a Value> {
    let shard = ks.shard(ks.db().shard_index(key))?;
    shard.get(key).map(|e| &e.value)
}

fn zunion(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(ctx, args, None, 1, SetOp::Union, false, "zunion");
}

fn zinter(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(ctx, args, None, 1, SetOp::Inter, false, "zinter");
}

fn zdiff(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(ctx, args, None, 1, SetOp::Diff, false, "zdiff");
}

fn zintercard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(ctx, args, None, 1, SetOp::Inter, true, "zintercard");
}

fn zunionstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Union,
        false,
        "zunionstore",
    );
}

fn zinterstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Inter,
        false,
        "zinterstore",
    );
}

fn zdiffstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    zsetop_generic(
        ctx,
        args,
        Some(&args[1]),
        2,
        SetOp::Diff,
        false,
        "zdiffstore",
    );
}

/// `zunionInterDiffGenericCommand`: numkeys, the keys' types, the options
/// (checked in that order), then the computation, then the store or reply.
fn zsetop_generic(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    dst: Option<&Bytes>,
    numkeys_idx: usize,
    op: SetOp,
    cardinality_only: bool,
    name: &str,
) {
    let Some(keys) = zsetop_keys(ctx, args, numkeys_idx, name) else {
        return;
    };
    let Some(present) = zsetop_lookup(ctx, keys, dst.is_some()) else {
        return;
    };
    let opts_at = numkeys_idx + 1 + keys.len();
    let o = match parse_zsetop_opts(args, opts_at, keys.len(), op, dst, cardinality_only) {
        Ok(o) => o,
        Err(e) => return ctx.out.error(e),
    };

    // Borrow every input at once.
    let ks: &Keys<'_> = ctx.ks;
    let mut srcs: smallvec::SmallVec<[(Src<'_>, f64); 8]> = smallvec::SmallVec::new();
    for (i, k) in keys.iter().enumerate() {
        let src = if present[i] {
            match value_ref(ks, k) {
                Some(Value::ZSet(z)) => Src::Z(z),
                Some(Value::Set(s)) => Src::S(s),
                _ => Src::Missing,
            }
        } else {
            Src::Missing
        };
        srcs.push((src, o.weights[i]));
    }
    if op != SetOp::Diff {
        // Smallest first (a stable sort, like glibc's qsort here).
        srcs.sort_by_key(|(s, _)| s.len());
    }
    if cardinality_only {
        let n = zinter_card(&srcs, o.agg, o.limit);
        return ctx.out.int(n as i64);
    }
    let result = match op {
        SetOp::Inter => zinter_members(&srcs, o.agg),
        SetOp::Union => zunion_members(&srcs, o.agg),
        SetOp::Diff => zdiff_members(&srcs),
    };
    drop(srcs);
    match dst {
        Some(dst) => {
            let z = build_zset(result);
            let event = match op {
                SetOp::Union => "zunionstore",
                SetOp::Inter => "zinterstore",
                SetOp::Diff => "zdiffstore",
            };
            store_result(ctx, dst, z, event);
        }
        None => reply_by_score(ctx.out, result, o.withscores),
    }
}

/// The input keys, after numkeys's checks; None when an error was replied.
fn zsetop_keys<'a>(
    ctx: &mut Ctx<'_, '_>,
    args: &'a [Bytes],
    numkeys_idx: usize,
    name: &str,
) -> Option<&'a [Bytes]> {
    let setnum = ctx.int_arg(&args[numkeys_idx])?;
    if setnum < 1 {
        ctx.out.error(&format!(
            "ERR at least 1 input key is needed for '{name}' command"
        ));
        return None;
    }
    if setnum as u64 > (args.len() - (numkeys_idx + 1)) as u64 {
        ctx.out.error(SYNTAX);
        return None;
    }
    Some(&args[numkeys_idx + 1..numkeys_idx + 1 + setnum as usize])
}

/// Expires the inputs, checks their types (before the options, like Redis)
/// and tells which exist; None when WRONGTYPE was replied. A store command
/// looks its inputs up without counting hits and misses.
fn zsetop_lookup(
    ctx: &mut Ctx<'_, '_>,
    keys: &[Bytes],
    store: bool,
) -> Option<smallvec::SmallVec<[bool; 8]>> {
    let mut present: smallvec::SmallVec<[bool; 8]> = smallvec::SmallVec::with_capacity(keys.len());
    for k in keys {
        let e = if store { ctx.ks.peek(k) } else { ctx.ks.get(k) };
        match e.map(|e| &e.value) {
            None => present.push(false),
            Some(Value::ZSet(_)) | Some(Value::Set(_)) => present.push(true),
            Some(_) => {
                ctx.out.error(WRONGTYPE);
                return None;
            }
        }
    }
    Some(present)
}

/// The options after the keys of ZUNION/ZINTER/ZDIFF[STORE], ZINTERCARD.
struct ZsetOpOpts {
    /// One per input key (1 unless WEIGHTS).
    weights: smallvec::SmallVec<[f64; 8]>,
    agg: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: u64,
}

/// Parses the options from `args[start..]`; which ones a command accepts
/// depends on `op`, on whether it stores (`dst`) and on ZINTERCARD. The
/// error is the reply.
fn parse_zsetop_opts(
    args: &[Bytes],
    start: usize,
    setnum: usize,
    op: SetOp,
    dst: Option<&Bytes>,
    cardinality_only: bool,
) -> Result<ZsetOpOpts, &'static str> {
    let mut o = ZsetOpOpts {
        weights: smallvec::smallvec![1.0; setnum],
        agg: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = start;
    while j < args.len() {
        let remaining = args.len() - j;
        let a = &args[j];
        if op != SetOp::Diff && !cardinality_only && remaining > setnum && is(a, "weights") {
            j += 1;
            for w in o.weights.iter_mut() {
                *w = parse_f64(&args[j]).ok_or(ERR_WEIGHT)?;
                j += 1;
            }
        } else if op != SetOp::Diff && !cardinality_only && remaining >= 2 && is(a, "aggregate") {
            let v = &args[j + 1];
            o.agg = if is(v, "sum") {
                Aggregate::Sum
            } else if is(v, "min") {
                Aggregate::Min
            } else if is(v, "max") {
                Aggregate::Max
            } else {
                return Err(SYNTAX);
            };
            j += 2;
        } else if dst.is_none() && !cardinality_only && is(a, "withscores") {
            o.withscores = true;
            j += 1;
        } else if cardinality_only && remaining >= 2 && is(a, "limit") {
            match parse_i64(&args[j + 1]) {
                Some(l) if l >= 0 => o.limit = l as u64,
                _ => return Err(ERR_LIMIT_NEGATIVE),
            }
            j += 2;
        } else {
            return Err(SYNTAX);
        }
    }
    Ok(o)
}

/// Calls `visit` with each member of the first (smallest) input that every
/// other input has, and its weighted, aggregated score, until `visit`
/// returns false.
fn for_each_inter<'a>(
    srcs: &[(Src<'a>, f64)],
    agg: Aggregate,
    mut visit: impl FnMut(&'a [u8], f64) -> bool,
) {
    if srcs[0].0.len() == 0 {
        return;
    }
    let (first, w0) = srcs[0];
    'members: for (m, s) in first.iter() {
        let mut score = w0 * s;
        if score.is_nan() {
            score = 0.0;
        }
        for (src, w) in &srcs[1..] {
            match src.find(m) {
                Some(v) => aggregate(&mut score, v * w, agg),
                None => continue 'members,
            }
        }
        if !visit(m, score) {
            return;
        }
    }
}

/// ZINTERCARD: the intersection's size, counting stopped at `limit` (0: none).
fn zinter_card(srcs: &[(Src<'_>, f64)], agg: Aggregate, limit: u64) -> u64 {
    let mut cardinality: u64 = 0;
    for_each_inter(srcs, agg, |_, _| {
        cardinality += 1;
        !(limit != 0 && cardinality >= limit)
    });
    cardinality
}

fn zinter_members<'a>(srcs: &[(Src<'a>, f64)], agg: Aggregate) -> Vec<(&'a [u8], f64)> {
    let mut result = Vec::new();
    for_each_inter(srcs, agg, |m, s| {
        result.push((m, s));
        true
    });
    result
}

fn zunion_members<'a>(srcs: &[(Src<'a>, f64)], agg: Aggregate) -> Vec<(&'a [u8], f64)> {
    let largest = srcs.last().map_or(0, |(s, _)| s.len());
    let mut acc: IndexMap<&[u8], f64, ahash::RandomState> =
        IndexMap::with_capacity_and_hasher(largest, Default::default());
    for (src, w) in srcs {
        for (m, s) in src.iter() {
            let mut score = w * s;
            if score.is_nan() {
                score = 0.0;
            }
            match acc.entry(m) {
                MapEntry::Occupied(mut e) => aggregate(e.get_mut(), score, agg),
                MapEntry::Vacant(e) => {
                    e.insert(score);
                }
            }
        }
    }
    let mut result = Vec::new();
    result.extend(acc);
    result
}

/// The members of the first input that no other input has (scores unweighted).
fn zdiff_members<'a>(srcs: &[(Src<'a>, f64)]) -> Vec<(&'a [u8], f64)> {
    let mut result = Vec::new();
    let first = srcs[0].0;
    for (m, s) in first.iter() {
        if srcs[1..].iter().all(|(src, _)| src.find(m).is_none()) {
            result.push((m, s));
        }
    }
    result
}

/// Replies `result` sorted by score, then member.
fn reply_by_score(out: &mut Reply, mut result: Vec<(&[u8], f64)>, withscores: bool) {
    result.sort_unstable_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| a.0.cmp(b.0))
    });
    items_header(out, result.len(), withscores);
    for (m, s) in result {
        item(out, m, s, withscores);
    }
}

// ---------------------------------------------------------------------------
// ZRANDMEMBER
// ---------------------------------------------------------------------------

fn zrandmember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() >= 3 {
        let Some(l) = ctx.int_arg(&args[2]) else {
            return;
        };
        if l == i64::MIN {
            return ctx.out.error(
                "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
            );
        }
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return ctx.out.error(SYNTAX);
        }
        let withscores = args.len() == 4;
        if withscores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&l) {
            return ctx.out.error("ERR value is out of range");
        }
        return zrandmember_count(ctx, &args[1], l, withscores);
    }
    match get_zset(ctx.ks, &args[1]) {
        Ok(Some(z)) => {
            let r = rand::thread_rng().gen_range(0..z.len());
            let (m, _) = z.get_by_rank(r).expect("rank in range");
            ctx.out.bulk(m);
        }
        Ok(None) => ctx.out.null(),
        Err(_) => ctx.out.error(WRONGTYPE),
    }
}

fn zrandmember_count(ctx: &mut Ctx<'_, '_>, key: &[u8], l: i64, withscores: bool) {
    let z = match get_zset(ctx.ks, key) {
        Ok(Some(z)) => z,
        Ok(None) => return ctx.out.array(0),
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let out = &mut *ctx.out;
    let size = z.len();
    let uniq = l >= 0;
    let count = l.unsigned_abs();
    if count == 0 {
        return out.array(0);
    }
    let mut rng = rand::thread_rng();
    // Repetitions allowed (or a single element): independent draws.
    if !uniq || count == 1 {
        let count = count as usize;
        items_header(out, count, withscores);
        for _ in 0..count {
            let (m, s) = z
                .get_by_rank(rng.gen_range(0..size))
                .expect("rank in range");
            item(out, m, s, withscores);
        }
        return;
    }
    // The whole set, in the order Redis iterates it (highest first).
    if count >= size as u64 {
        items_header(out, size, withscores);
        for (m, s) in z.iter_rev() {
            item(out, m, s, withscores);
        }
        return;
    }
    // Distinct random ranks, in random order.
    let count = count as usize;
    items_header(out, count, withscores);
    for r in rand::seq::index::sample(&mut rng, size, count) {
        let (m, s) = z.get_by_rank(r).expect("rank in range");
        item(out, m, s, withscores);
    }
}

// ---------------------------------------------------------------------------
// ZSCAN
// ---------------------------------------------------------------------------

/// Sets this small are returned whole with cursor 0, whatever the cursor
/// (like Redis's listpack encoding); larger ones are scanned in windows of a
/// fixed member-hash slot space (`util::scan_collection`), so a member present
/// for the whole scan is returned exactly once.
const SCAN_WHOLE_MAX: usize = 128;

fn zscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(cursor) = parse_scan_cursor(&args[2]) else {
        return ctx.out.error(ERR_INVALID_CURSOR);
    };
    let z = match get_zset(ctx.ks, &args[1]) {
        Ok(Some(z)) => z,
        Ok(None) => {
            ctx.out.array(2);
            ctx.out.bulk(b"0");
            ctx.out.array(0);
            return;
        }
        Err(_) => return ctx.out.error(WRONGTYPE),
    };
    let out = &mut *ctx.out;
    let mut count: usize = 10;
    let mut pattern: Option<&[u8]> = None;
    let mut i = 3;
    while i < args.len() {
        let left = args.len() - i;
        if is(&args[i], "count") && left >= 2 {
            match parse_i64(&args[i + 1]) {
                None => return out.error(NOT_INT),
                Some(c) if c < 1 => return out.error(SYNTAX),
                Some(c) => count = usize::try_from(c).unwrap_or(usize::MAX),
            }
            i += 2;
        } else if is(&args[i], "match") && left >= 2 {
            let p: &[u8] = &args[i + 1];
            pattern = if p == b"*" { None } else { Some(p) };
            i += 2;
        } else {
            return out.error(SYNTAX);
        }
    }
    let keep = |m: &[u8]| pattern.is_none_or(|p| glob_match(p, m, false));
    let mut found: Vec<(&[u8], f64)> = Vec::new();
    let next = if z.len() <= SCAN_WHOLE_MAX {
        found.extend(z.iter());
        0
    } else {
        match scan_collection(z.iter(), z.len(), |e| e.0, cursor, count, &mut found) {
            Some(next) => next,
            None => return out.error(ERR_INVALID_CURSOR),
        }
    };
    found.retain(|(m, _)| keep(m));
    out.array(2);
    let mut b = itoa::Buffer::new();
    out.bulk(b.format(next).as_bytes());
    out.array(found.len() * 2);
    let mut text = Vec::with_capacity(24);
    for (m, s) in found {
        out.bulk(m);
        text.clear();
        format_double(s, &mut text);
        out.bulk(&text);
    }
}
