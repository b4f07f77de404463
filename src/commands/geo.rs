//! GEO commands (Redis 7.0.15): GEOADD, GEODIST, GEOHASH, GEOPOS, GEORADIUS,
//! GEORADIUSBYMEMBER and their `_RO` forms, GEOSEARCH, GEOSEARCHSTORE.
//!
//! A GEO set is a sorted set whose scores are 52-bit interleaved geohashes
//! ([`crate::util::geohash`]). GEOADD becomes a ZADD of those scores (the
//! same handler, so the same mutation and event); a search scans the score
//! ranges of nine geohash boxes as Redis does, so results come in Redis's
//! order, and a STORE writes the result as a sorted set.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_f64, parse_i64, NOT_FLOAT, NOT_INT, SYNTAX, WRONGTYPE};
use super::{zsets, Command, Ctx, KeySpec, KEY1, KEYS_1_2};
use crate::engine::{Mutation, Value, ZSet};
use crate::util::geohash::{self, Shape, ShapeKind};

const GROUP: &str = "geo";

pub static COMMANDS: &[Command] = &[
    Command::new("geoadd", -5, WRITE | DENYOOM, KEY1, geoadd, GROUP),
    Command::new("geodist", -4, READONLY, KEY1, geodist, GROUP),
    Command::new("geohash", -2, READONLY, KEY1, geohash_cmd, GROUP),
    Command::new("geopos", -2, READONLY, KEY1, geopos, GROUP),
    Command::new(
        "georadius",
        -6,
        WRITE | DENYOOM,
        KeySpec::Custom(georadius_keys),
        georadius,
        GROUP,
    )
    .first_key_fixed(),
    Command::new("georadius_ro", -6, READONLY, KEY1, georadius_ro, GROUP),
    Command::new(
        "georadiusbymember",
        -5,
        WRITE | DENYOOM,
        KeySpec::Custom(georadiusbymember_keys),
        georadiusbymember,
        GROUP,
    )
    .first_key_fixed(),
    Command::new(
        "georadiusbymember_ro",
        -5,
        READONLY,
        KEY1,
        georadiusbymember_ro,
        GROUP,
    ),
    Command::new("geosearch", -7, READONLY, KEY1, geosearch, GROUP),
    Command::new(
        "geosearchstore",
        -8,
        WRITE | DENYOOM,
        KEYS_1_2,
        geosearchstore,
        GROUP,
    ),
];

/// GEORADIUS's keys, from its key specs as Redis reads them: the source,
/// then the key after the first STORE and after the first STOREDIST at or
/// past argument 6 (5 for GEORADIUSBYMEMBER).
fn georadius_keys(args: &[Bytes]) -> Vec<usize> {
    radius_keys(args, 6)
}

fn georadiusbymember_keys(args: &[Bytes]) -> Vec<usize> {
    radius_keys(args, 5)
}

fn radius_keys(args: &[Bytes], startfrom: usize) -> Vec<usize> {
    let mut v = Vec::new();
    if args.len() > 1 {
        v.push(1);
    }
    for word in ["store", "storedist"] {
        let found = (startfrom..args.len().saturating_sub(1)).find(|&i| is(&args[i], word));
        v.extend(found.map(|i| i + 1));
    }
    v
}

/// Parses a longitude/latitude pair; the error reply on failure.
fn long_lat(args: &[Bytes]) -> Result<(f64, f64), String> {
    let x = parse_f64(&args[0]).ok_or(NOT_FLOAT)?;
    let y = parse_f64(&args[1]).ok_or(NOT_FLOAT)?;
    if !(geohash::LONG_MIN..=geohash::LONG_MAX).contains(&x)
        || !(geohash::LAT_MIN..=geohash::LAT_MAX).contains(&y)
    {
        return Err(format!("ERR invalid longitude,latitude pair {x:.6},{y:.6}"));
    }
    Ok((x, y))
}

/// Meters per unit.
fn unit(arg: &[u8]) -> Result<f64, String> {
    Ok(if is(arg, "m") {
        1.0
    } else if is(arg, "km") {
        1000.0
    } else if is(arg, "ft") {
        0.3048
    } else if is(arg, "mi") {
        1609.34
    } else {
        return Err("ERR unsupported unit provided. please use M, KM, FT, MI".into());
    })
}

/// A non-negative number with its own "need numeric ..." error.
fn number(arg: &[u8], what: &str) -> Result<f64, String> {
    parse_f64(arg).ok_or_else(|| format!("ERR need numeric {what}"))
}

fn geoadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let (mut nx, mut xx) = (false, false);
    let mut longidx = 2;
    while longidx < args.len() {
        let a = &args[longidx];
        if is(a, "nx") {
            nx = true;
        } else if is(a, "xx") {
            xx = true;
        } else if !is(a, "ch") {
            break;
        }
        longidx += 1;
    }
    if !(args.len() - longidx).is_multiple_of(3) || (xx && nx) {
        return ctx.err(SYNTAX);
    }
    let mut zargs: Vec<Bytes> = Vec::with_capacity(longidx + (args.len() - longidx) / 3 * 2);
    zargs.push(Bytes::from_static(b"zadd"));
    zargs.extend(args[1..longidx].iter().cloned());
    for triple in args[longidx..].chunks_exact(3) {
        let (x, y) = match long_lat(triple) {
            Ok(p) => p,
            Err(e) => return ctx.err(&e),
        };
        let score = geohash::score_of(x, y).unwrap_or(0);
        zargs.push(Bytes::from(score.to_string()));
        zargs.push(triple[2].clone());
    }
    zsets::zadd(ctx, &zargs);
}

/// The zset at `key` (Err: the WRONGTYPE reply was written).
fn read_zset<'a>(ctx: &'a mut Ctx<'_, '_>, key: &[u8]) -> Result<Option<&'a ZSet>, ()> {
    match super::util::get_zset(ctx.ks, key) {
        Ok(z) => Ok(z),
        Err(_) => {
            ctx.out.error(WRONGTYPE);
            Err(())
        }
    }
}

fn geodist(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let to_meter = match args.len() {
        4 => 1.0,
        5 => match unit(&args[4]) {
            Ok(u) => u,
            Err(e) => return ctx.err(&e),
        },
        _ => return ctx.err(SYNTAX),
    };
    let scores = match read_zset(ctx, &args[1]) {
        Err(()) => return,
        Ok(None) => None,
        Ok(Some(z)) => z.score(&args[2]).zip(z.score(&args[3])),
    };
    match scores {
        None => ctx.out.null(),
        Some((a, b)) => {
            let (x1, y1) = geohash::decode_score(a);
            let (x2, y2) = geohash::decode_score(b);
            let d = geohash::distance(x1, y1, x2, y2) / to_meter;
            ctx.out.bulk(geohash::distance_text(d).as_bytes());
        }
    }
}

fn geohash_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let scores: Vec<Option<f64>> = match read_zset(ctx, &args[1]) {
        Err(()) => return,
        Ok(z) => args[2..]
            .iter()
            .map(|m| z.and_then(|z| z.score(m)))
            .collect(),
    };
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => ctx.out.bulk(&geohash::geohash_string(s)),
            None => ctx.out.null(),
        }
    }
}

/// A coordinate as `addReplyHumanLongDouble` writes it (RESP3: a double).
fn reply_coord(ctx: &mut Ctx<'_, '_>, d: f64) {
    let text = geohash::human_text(d);
    if ctx.out.resp3 {
        ctx.out.raw(format!(",{text}\r\n").as_bytes());
    } else {
        ctx.out.bulk(text.as_bytes());
    }
}

fn geopos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let scores: Vec<Option<f64>> = match read_zset(ctx, &args[1]) {
        Err(()) => return,
        Ok(z) => args[2..]
            .iter()
            .map(|m| z.and_then(|z| z.score(m)))
            .collect(),
    };
    ctx.out.array(scores.len());
    for s in scores {
        match s {
            Some(s) => {
                let (x, y) = geohash::decode_score(s);
                ctx.out.array(2);
                reply_coord(ctx, x);
                reply_coord(ctx, y);
            }
            None => ctx.out.null_array(),
        }
    }
}

// ---- searches ----

/// Which command a search runs as (Redis's `georadiusGeneric` flags).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Coords { no_store: bool },
    Member { no_store: bool },
    Search,
    SearchStore,
}

fn georadius(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::Coords { no_store: false });
}

fn georadius_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::Coords { no_store: true });
}

fn georadiusbymember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::Member { no_store: false });
}

fn georadiusbymember_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::Member { no_store: true });
}

fn geosearch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::Search);
}

fn geosearchstore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    search(ctx, args, Mode::SearchStore);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    None,
    Asc,
    Desc,
}

/// One member found.
struct Point {
    member: Box<[u8]>,
    score: f64,
    xy: (f64, f64),
    dist: f64,
}

fn search(ctx: &mut Ctx<'_, '_>, args: &[Bytes], mode: Mode) {
    if let Err(e) = search_inner(ctx, args, mode) {
        if !e.is_empty() {
            ctx.err(&e);
        }
    }
}

/// The options of a GEORADIUS or GEOSEARCH call, parsed before anything runs.
struct SearchOpts<'a> {
    shape: Shape,
    storekey: Option<&'a Bytes>,
    storedist: bool,
    withdist: bool,
    withhash: bool,
    withcoords: bool,
    sort: Sort,
    any: bool,
    count: i64,
}

/// Parses the arguments after the command name in Redis's order, so the
/// first error is Redis's first error. `exists`: the source key is a zset
/// (a FROMMEMBER of a missing key is not looked up).
fn parse_search<'a>(
    ctx: &mut Ctx<'_, '_>,
    args: &'a [Bytes],
    mode: Mode,
    exists: bool,
) -> Result<SearchOpts<'a>, String> {
    let src = &args[if mode == Mode::SearchStore { 2 } else { 1 }];
    let member_xy = |ctx: &mut Ctx<'_, '_>, m: &[u8]| -> Result<(f64, f64), String> {
        let score = super::util::peek_zset(ctx.ks, src)
            .ok()
            .flatten()
            .and_then(|z| z.score(m));
        score
            .map(geohash::decode_score)
            .ok_or_else(|| "ERR could not decode requested zset member".to_string())
    };
    let mut xy = (0.0, 0.0);
    let mut conversion = 0.0;
    let mut kind = ShapeKind::Radius(0.0);
    let mut storekey: Option<&Bytes> = None;
    let mut storedist = false;
    let base = match mode {
        Mode::Coords { .. } => {
            xy = long_lat(&args[2..4])?;
            let r = number(&args[4], "radius")?;
            if r < 0.0 {
                return Err("ERR radius cannot be negative".into());
            }
            conversion = unit(&args[5])?;
            kind = ShapeKind::Radius(r);
            6
        }
        Mode::Member { .. } if !exists => 5,
        Mode::Member { .. } => {
            xy = member_xy(ctx, &args[2])?;
            let r = number(&args[3], "radius")?;
            if r < 0.0 {
                return Err("ERR radius cannot be negative".into());
            }
            conversion = unit(&args[4])?;
            kind = ShapeKind::Radius(r);
            5
        }
        Mode::Search => 2,
        Mode::SearchStore => {
            storekey = Some(&args[1]);
            3
        }
    };
    let geosearch = matches!(mode, Mode::Search | Mode::SearchStore);
    let no_store = matches!(
        mode,
        Mode::Coords { no_store: true } | Mode::Member { no_store: true }
    );
    let (mut withdist, mut withhash, mut withcoords) = (false, false, false);
    let (mut frommember, mut fromloc, mut byradius, mut bybox) = (false, false, false, false);
    let mut sort = Sort::None;
    let mut any = false;
    let mut count: i64 = 0;
    let rest = &args[base.min(args.len())..];
    let remaining = rest.len();
    let mut i = 0;
    while i < remaining {
        let a = &rest[i];
        if is(a, "withdist") {
            withdist = true;
        } else if is(a, "withhash") {
            withhash = true;
        } else if is(a, "withcoord") {
            withcoords = true;
        } else if is(a, "any") {
            any = true;
        } else if is(a, "asc") {
            sort = Sort::Asc;
        } else if is(a, "desc") {
            sort = Sort::Desc;
        } else if is(a, "count") && i + 1 < remaining {
            count = parse_i64(&rest[i + 1]).ok_or(NOT_INT)?;
            if count <= 0 {
                return Err("ERR COUNT must be > 0".into());
            }
            i += 1;
        } else if (is(a, "store") || is(a, "storedist"))
            && i + 1 < remaining
            && !no_store
            && !geosearch
        {
            storekey = Some(&rest[i + 1]);
            storedist = is(a, "storedist");
            i += 1;
        } else if is(a, "storedist") && mode == Mode::SearchStore {
            storedist = true;
        } else if is(a, "frommember") && i + 1 < remaining && geosearch && !fromloc {
            if exists {
                xy = member_xy(ctx, &rest[i + 1])?;
            }
            frommember = true;
            i += 1;
        } else if is(a, "fromlonlat") && i + 2 < remaining && geosearch && !frommember {
            xy = long_lat(&rest[i + 1..i + 3])?;
            fromloc = true;
            i += 2;
        } else if is(a, "byradius") && i + 2 < remaining && geosearch && !bybox {
            let r = number(&rest[i + 1], "radius")?;
            if r < 0.0 {
                return Err("ERR radius cannot be negative".into());
            }
            conversion = unit(&rest[i + 2])?;
            kind = ShapeKind::Radius(r);
            byradius = true;
            i += 2;
        } else if is(a, "bybox") && i + 3 < remaining && geosearch && !byradius {
            let w = number(&rest[i + 1], "width")?;
            let h = number(&rest[i + 2], "height")?;
            if h < 0.0 || w < 0.0 {
                return Err("ERR height or width cannot be negative".into());
            }
            conversion = unit(&rest[i + 3])?;
            kind = ShapeKind::Box(w, h);
            bybox = true;
            i += 3;
        } else {
            return Err(SYNTAX.into());
        }
        i += 1;
    }
    let opts = SearchOpts {
        shape: Shape {
            xy,
            conversion,
            kind,
        },
        storekey,
        storedist,
        withdist,
        withhash,
        withcoords,
        sort,
        any,
        count,
    };
    let name = String::from_utf8_lossy(&args[0]);
    opts.check(mode, &name, frommember || fromloc, byradius || bybox)?;
    Ok(opts)
}

impl SearchOpts<'_> {
    /// The combinations Redis refuses once every option is read, in its
    /// order (`from` / `by`: GEOSEARCH's centre and shape were given).
    fn check(&self, mode: Mode, name: &str, from: bool, by: bool) -> Result<(), String> {
        let geosearch = matches!(mode, Mode::Search | Mode::SearchStore);
        if self.storekey.is_some() && (self.withdist || self.withhash || self.withcoords) {
            let what = if mode == Mode::SearchStore {
                "GEOSEARCHSTORE"
            } else {
                "STORE option in GEORADIUS"
            };
            return Err(format!(
                "ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"
            ));
        }
        if geosearch && !from {
            return Err(format!(
                "ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"
            ));
        }
        if geosearch && !by {
            return Err(format!(
                "ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"
            ));
        }
        if self.any && self.count == 0 {
            return Err("ERR the ANY argument requires COUNT argument".into());
        }
        Ok(())
    }
}

/// Redis's `georadiusGeneric`; an Err is the error reply (empty: written).
fn search_inner(ctx: &mut Ctx<'_, '_>, args: &[Bytes], mode: Mode) -> Result<(), String> {
    let src = &args[if mode == Mode::SearchStore { 2 } else { 1 }];
    let exists = match super::util::get_zset(ctx.ks, src) {
        Ok(z) => z.is_some(),
        Err(_) => return Err(WRONGTYPE.into()),
    };
    let opts = parse_search(ctx, args, mode, exists)?;
    let (storekey, count, any) = (opts.storekey, opts.count, opts.any);
    let shape = &opts.shape;
    if !exists {
        match storekey {
            Some(dst) => {
                if ctx.ks.exists(dst) {
                    ctx.ks.apply(Mutation::Del { key: owned(dst) });
                }
                ctx.out.int(0);
            }
            None => ctx.out.array(0),
        }
        return Ok(());
    }
    let mut sort = opts.sort;
    if count != 0 && sort == Sort::None && !any {
        sort = Sort::Asc;
    }
    let limit = if any { count as usize } else { 0 };
    let mut points = {
        let z = super::util::peek_zset(ctx.ks, src)
            .ok()
            .flatten()
            .expect("checked above");
        members_of_boxes(z, shape, limit)
    };
    if points.is_empty() && storekey.is_none() {
        ctx.out.array(0);
        return Ok(());
    }
    let returned = if count == 0 {
        points.len()
    } else {
        points.len().min(count as usize)
    };
    match sort {
        Sort::None => {}
        Sort::Asc => points.sort_by(|a, b| a.dist.total_cmp(&b.dist)),
        Sort::Desc => points.sort_by(|a, b| b.dist.total_cmp(&a.dist)),
    }
    points.truncate(returned);
    for p in &mut points {
        p.dist /= shape.conversion;
    }
    match storekey {
        None => reply_points(ctx, &points, &opts),
        Some(dst) => {
            let geosearch = matches!(mode, Mode::Search | Mode::SearchStore);
            store_points(ctx, dst, &points, opts.storedist, geosearch);
        }
    }
    Ok(())
}

/// The reply of a search without STORE.
fn reply_points(ctx: &mut Ctx<'_, '_>, points: &[Point], opts: &SearchOpts<'_>) {
    let options = opts.withdist as usize + opts.withcoords as usize + opts.withhash as usize;
    ctx.out.array(points.len());
    for p in points {
        if options > 0 {
            ctx.out.array(options + 1);
        }
        ctx.out.bulk(&p.member);
        if opts.withdist {
            ctx.out.bulk(geohash::distance_text(p.dist).as_bytes());
        }
        if opts.withhash {
            ctx.out.int(p.score as i64);
        }
        if opts.withcoords {
            ctx.out.array(2);
            reply_coord(ctx, p.xy.0);
            reply_coord(ctx, p.xy.1);
        }
    }
}

/// STORE / STOREDIST / GEOSEARCHSTORE: the points become the destination
/// zset (none: the destination is deleted); the reply is their count.
fn store_points(
    ctx: &mut Ctx<'_, '_>,
    dst: &Bytes,
    points: &[Point],
    storedist: bool,
    geosearch: bool,
) {
    let returned = points.len();
    if returned == 0 {
        if ctx.ks.exists(dst) {
            ctx.ks.apply(Mutation::Del { key: owned(dst) });
        }
    } else {
        let mut z = ZSet::new();
        for p in points {
            z.insert(&p.member, if storedist { p.dist } else { p.score });
        }
        let event = if geosearch {
            "geosearchstore"
        } else {
            "georadiusstore"
        };
        ctx.ks.next_event(b'z', event);
        ctx.ks.apply(Mutation::Put {
            key: owned(dst),
            value: Value::ZSet(Box::new(z)),
            expire_at: 0,
        });
    }
    ctx.out.int(returned as i64);
}

/// The members inside `shape`, box by box in Redis's order (stopping at
/// `limit` when not 0).
fn members_of_boxes(z: &ZSet, shape: &Shape, limit: usize) -> Vec<Point> {
    let boxes = shape.boxes();
    let mut out = Vec::new();
    let mut last: Option<geohash::Hash> = None;
    for (i, b) in boxes.iter().enumerate() {
        let Some(hash) = *b else { continue };
        // Redis never compares with the centre box (index 0).
        if let Some(prev) = last.filter(|_| i > 0) {
            if prev == hash {
                continue;
            }
        }
        if limit != 0 && out.len() >= limit {
            break;
        }
        let (min, max) = geohash::box_score_range(hash);
        let (min, max) = (min as f64, max as f64);
        let start = z.count_below_score(min, false);
        for (m, score) in z.iter_from(start) {
            if score >= max {
                break;
            }
            let xy = geohash::decode_score(score);
            if let Some(dist) = shape.contains(xy) {
                out.push(Point {
                    member: m.into(),
                    score,
                    xy,
                    dist,
                });
            }
            if limit != 0 && out.len() >= limit {
                break;
            }
        }
        if i > 0 {
            last = Some(hash);
        }
    }
    out
}
