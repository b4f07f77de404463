//! Stream commands (t_stream.c): XADD, XLEN, XRANGE, XREVRANGE, XDEL,
//! XTRIM, XREAD, XREADGROUP, XGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM,
//! XINFO, XSETID. Handlers check arguments in Redis's order, read the
//! stream, then apply [`StreamOp`]s: the ID XADD chose, the group state a
//! read changed, the delivery times and counts a claim set, so a replica
//! applying them reaches the same state. Blocking XREAD/XREADGROUP wait
//! through [`BlockRequest`] like the blocking pops.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_i64, WRONGTYPE};
use super::BlockRequest;
use super::{Command, Ctx, KeySpec, KEY1, KEY2};
use crate::engine::stream::{Entry, Group, TrimBy, ENTRIES_READ_UNKNOWN};
use crate::engine::{Keys, Mutation, Stream, StreamId, StreamOp, Value};
use crate::protocol::Reply;

const G: &str = "stream";

pub static COMMANDS: &[Command] = &[
    Command::new("xadd", -5, WRITE | DENYOOM | FAST, KEY1, xadd, G),
    Command::new("xlen", 2, READONLY | FAST, KEY1, xlen, G),
    Command::new("xrange", -4, READONLY, KEY1, xrange, G),
    Command::new("xrevrange", -4, READONLY, KEY1, xrevrange, G),
    Command::new("xdel", -3, WRITE | FAST, KEY1, xdel, G),
    Command::new("xtrim", -4, WRITE, KEY1, xtrim, G),
    Command::new(
        "xread",
        -4,
        READONLY | BLOCKING,
        KeySpec::Custom(xread_keys),
        xread,
        G,
    ),
    Command::new(
        "xreadgroup",
        -7,
        WRITE | BLOCKING,
        KeySpec::Custom(xread_keys),
        xread,
        G,
    ),
    Command::new("xack", -4, WRITE | FAST, KEY1, xack, G),
    Command::new("xpending", -3, READONLY, KEY1, xpending, G),
    Command::new("xclaim", -6, WRITE | FAST, KEY1, xclaim, G),
    Command::new("xautoclaim", -6, WRITE | FAST, KEY1, xautoclaim, G),
    Command::new("xsetid", -3, WRITE | DENYOOM | FAST, KEY1, xsetid, G),
    Command::container("xgroup", G, XGROUP_SUBCOMMANDS),
    Command::container("xinfo", G, XINFO_SUBCOMMANDS),
];

static XGROUP_SUBCOMMANDS: &[Command] = &[
    Command::new("create", -5, WRITE | DENYOOM, KEY2, xgroup, G),
    Command::new("createconsumer", 5, WRITE | DENYOOM, KEY2, xgroup, G),
    Command::new("delconsumer", 5, WRITE, KEY2, xgroup, G),
    Command::new("destroy", 4, WRITE, KEY2, xgroup, G),
    Command::new("setid", -5, WRITE, KEY2, xgroup, G),
    Command::new("help", 2, LOADING | STALE, KeySpec::None, xgroup, G),
];

static XINFO_SUBCOMMANDS: &[Command] = &[
    Command::new("consumers", 4, READONLY, KEY2, xinfo, G),
    Command::new("groups", 3, READONLY, KEY2, xinfo, G),
    Command::new("stream", -3, READONLY, KEY2, xinfo, G),
    Command::new("help", 2, LOADING | STALE, KeySpec::None, xinfo, G),
];

const INVALID_ID: &str = "ERR Invalid stream ID specified as stream command argument";

/// XREAD/XREADGROUP keys: the first half of what follows STREAMS.
fn xread_keys(args: &[Bytes]) -> Vec<usize> {
    let Some(pos) = args.iter().skip(1).position(|a| is(a, "streams")) else {
        return Vec::new();
    };
    let first = pos + 2;
    let n = (args.len() - first) / 2;
    (first..first + n).collect()
}

// ---------------------------------------------------------------------------
// IDs.

/// `string2ull`: a canonical non-negative integer, else what `strtoull`
/// accepts (leading spaces, a sign; a minus wraps).
fn string2ull(s: &[u8]) -> Option<u64> {
    if let Some(v) = parse_i64(s) {
        return (v >= 0).then_some(v as u64);
    }
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let mut neg = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        neg = s[i] == b'-';
        i += 1;
    }
    if i >= s.len() || !s[i..].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in &s[i..] {
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// `streamGenericParseIDOrReply`: `-`/`+` (unless strict), `ms`, `ms-seq`,
/// and `ms-*` when `seq_star`. Returns the ID and whether the sequence was
/// given.
fn parse_id_full(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    seq_star: bool,
) -> Option<(StreamId, bool)> {
    if arg.len() > 127 {
        return None;
    }
    if arg == b"-" || arg == b"+" {
        if strict {
            return None;
        }
        return Some((
            if arg == b"-" {
                StreamId::MIN
            } else {
                StreamId::MAX
            },
            true,
        ));
    }
    // A NUL ends the C string.
    let arg = match arg.iter().position(|&b| b == 0) {
        Some(p) => &arg[..p],
        None => arg,
    };
    match arg.iter().position(|&b| b == b'-') {
        Some(d) => {
            let ms = string2ull(&arg[..d])?;
            let rest = &arg[d + 1..];
            if seq_star && rest == b"*" {
                return Some((StreamId::new(ms, 0), false));
            }
            Some((StreamId::new(ms, string2ull(rest)?), true))
        }
        None => Some((StreamId::new(string2ull(arg)?, missing_seq), true)),
    }
}

impl Ctx<'_, '_> {
    fn stream_id(&mut self, arg: &[u8], missing_seq: u64, strict: bool) -> Option<StreamId> {
        match parse_id_full(arg, missing_seq, strict, false) {
            Some((id, _)) => Some(id),
            None => {
                self.out.error(INVALID_ID);
                None
            }
        }
    }

    /// `streamParseIntervalIDOrReply` plus the exclusive-bound step:
    /// `(id` excludes `id`.
    fn interval_id(&mut self, arg: &[u8], missing_seq: u64, start: bool) -> Option<StreamId> {
        let exclude = arg.len() > 1 && arg[0] == b'(';
        let id = if exclude {
            self.stream_id(&arg[1..], missing_seq, true)?
        } else {
            self.stream_id(arg, missing_seq, false)?
        };
        if !exclude {
            return Some(id);
        }
        let stepped = if start { id.next() } else { id.prev() };
        if stepped.is_none() {
            self.out.error(if start {
                "ERR invalid start ID for the interval"
            } else {
                "ERR invalid end ID for the interval"
            });
        }
        stepped
    }

    fn ll_arg(&mut self, arg: &[u8], msg: Option<&str>) -> Option<i64> {
        match parse_i64(arg) {
            Some(v) => Some(v),
            None => {
                let m =
                    msg.map_or_else(|| super::util::NOT_INT.to_string(), |m| format!("ERR {m}"));
                self.out.error(&m);
                None
            }
        }
    }

    fn node_max_entries(&self) -> i64 {
        self.server
            .config
            .stream_node_max_entries
            .load(Ordering::Relaxed)
    }
}

/// The stream at `key`: Ok(None) when missing, Err on another type.
fn stream_at<'a>(ks: &'a mut Keys<'_>, key: &[u8]) -> Result<Option<&'a Stream>, ()> {
    match ks.get(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(()),
        },
    }
}

fn peek_stream<'a>(ks: &'a mut Keys<'_>, key: &[u8]) -> Result<Option<&'a Stream>, ()> {
    match ks.peek(key) {
        None => Ok(None),
        Some(e) => match &e.value {
            Value::Stream(s) => Ok(Some(s)),
            _ => Err(()),
        },
    }
}

/// An ID as `ms-seq`, formatted on the stack (no allocation per entry).
fn reply_id(out: &mut Reply, id: StreamId) {
    let mut text = [0u8; 41];
    let (mut ms, mut seq) = (itoa::Buffer::new(), itoa::Buffer::new());
    let (ms, seq) = (ms.format(id.ms).as_bytes(), seq.format(id.seq).as_bytes());
    text[..ms.len()].copy_from_slice(ms);
    text[ms.len()] = b'-';
    text[ms.len() + 1..ms.len() + 1 + seq.len()].copy_from_slice(seq);
    out.bulk(&text[..ms.len() + 1 + seq.len()]);
}

fn reply_entry(out: &mut Reply, id: StreamId, fields: Entry<'_>) {
    out.array(2);
    reply_id(out, id);
    out.array(fields.len());
    for f in fields {
        out.bulk(f);
    }
}

fn apply_op(ks: &mut Keys<'_>, key: &[u8], op: StreamOp) {
    ks.apply(Mutation::Stream {
        key: Bytes::copy_from_slice(key),
        op,
    });
}

// ---------------------------------------------------------------------------
// XADD / XTRIM.

#[derive(Default)]
struct AddTrimArgs {
    trim: Option<TrimBy>,
    approx: bool,
    limit: u64,
    nomkstream: bool,
    /// The ID argument's position (XADD), and the ID if not `*`.
    id_pos: usize,
    id: Option<(StreamId, bool)>,
}

/// `streamParseAddOrTrimArgsOrReply`.
fn parse_add_trim(ctx: &mut Ctx<'_, '_>, args: &[Bytes], xadd: bool) -> Option<AddTrimArgs> {
    let mut a = AddTrimArgs::default();
    let mut limit: Option<i64> = None;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i][..];
        if xadd && opt == b"*" {
            break;
        } else if is(opt, "maxlen") && more > 0 {
            if a.trim.is_some() {
                ctx.err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            a.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let n = ctx.ll_arg(&args[i + 1], None)?;
            if n < 0 {
                ctx.err("ERR The MAXLEN argument must be >= 0.");
                return None;
            }
            i += 1;
            a.trim = Some(TrimBy::MaxLen(n as u64));
        } else if is(opt, "minid") && more > 0 {
            if a.trim.is_some() {
                ctx.err("ERR syntax error, MAXLEN and MINID options at the same time are not compatible");
                return None;
            }
            a.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && next == b"~" {
                a.approx = true;
                i += 1;
            } else if more >= 2 && next == b"=" {
                i += 1;
            }
            let id = ctx.stream_id(&args[i + 1], 0, true)?;
            i += 1;
            a.trim = Some(TrimBy::MinId(id));
        } else if is(opt, "limit") && more > 0 {
            let n = ctx.ll_arg(&args[i + 1], None)?;
            if n < 0 {
                ctx.err("ERR The LIMIT argument must be >= 0.");
                return None;
            }
            limit = Some(n);
            i += 1;
        } else if xadd && is(opt, "nomkstream") {
            a.nomkstream = true;
        } else if xadd {
            match parse_id_full(opt, 0, true, true) {
                Some(id) => a.id = Some(id),
                None => {
                    ctx.err(INVALID_ID);
                    return None;
                }
            }
            break;
        } else {
            ctx.syntax();
            return None;
        }
        i += 1;
    }
    a.id_pos = i;
    if limit.is_some_and(|l| l != 0) && a.trim.is_none() {
        ctx.err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
        return None;
    }
    if !xadd && a.trim.is_none() {
        ctx.err("ERR syntax error, XTRIM must be called with a trimming strategy");
        return None;
    }
    match limit {
        Some(l) => {
            if !a.approx {
                ctx.err("ERR syntax error, LIMIT cannot be used without the special ~ option");
                return None;
            }
            a.limit = l as u64;
        }
        None if a.approx => {
            let mut l = 100i64.saturating_mul(ctx.node_max_entries());
            if l <= 0 {
                l = 10000;
            }
            a.limit = l.min(1_000_000) as u64;
        }
        None => a.limit = 0,
    }
    Some(a)
}

fn xadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(a) = parse_add_trim(ctx, args, true) else {
        return;
    };
    let field_pos = a.id_pos + 1;
    if args.len() < field_pos + 2 || !(args.len() - field_pos).is_multiple_of(2) {
        return ctx.err("ERR wrong number of arguments for 'xadd' command");
    }
    if let Some((id, true)) = a.id {
        if id == StreamId::MIN {
            return ctx.err("ERR The ID specified in XADD must be greater than 0-0");
        }
    }
    let key = &args[1];
    let now = ctx.ks.now();
    let last = match stream_at(ctx.ks, key) {
        Err(()) => return ctx.wrongtype(),
        Ok(None) if a.nomkstream => return ctx.out.null(),
        Ok(None) => StreamId::MIN,
        Ok(Some(s)) => s.last_id,
    };
    if last == StreamId::MAX {
        return ctx
            .err("ERR The stream has exhausted the last possible ID, unable to add more items");
    }
    let id = match a.id {
        Some((id, true)) => Some(id),
        Some((id, false)) => {
            if last.ms == id.ms {
                if last.seq == u64::MAX {
                    None
                } else {
                    Some(StreamId::new(id.ms, last.seq + 1))
                }
            } else {
                Some(id)
            }
        }
        None => {
            if now > last.ms {
                Some(StreamId::new(now, 0))
            } else {
                last.next()
            }
        }
    };
    let Some(id) = id.filter(|id| *id > last) else {
        return ctx.err(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item",
        );
    };
    let node_max_entries = ctx.node_max_entries().max(0) as u64;
    let node_max_bytes = ctx
        .server
        .config
        .stream_node_max_bytes
        .load(Ordering::Relaxed)
        .max(0) as u64;
    apply_op(
        ctx.ks,
        key,
        StreamOp::Add {
            id,
            fields: args[field_pos..].iter().map(owned).collect(),
            node_max_entries,
            node_max_bytes,
        },
    );
    reply_id(ctx.out, id);
    if let Some(by) = a.trim {
        trim(ctx.ks, key, by, a.approx, a.limit);
    }
}

/// Trims if anything goes (so "xtrim" fires only then); returns how many went.
fn trim(ks: &mut Keys<'_>, key: &[u8], by: TrimBy, approx: bool, limit: u64) -> u64 {
    let before = match peek_stream(ks, key) {
        Ok(Some(s)) if s.would_trim(by, approx, limit) => s.len(),
        _ => return 0,
    };
    apply_op(ks, key, StreamOp::Trim { by, approx, limit });
    let after = peek_stream(ks, key).ok().flatten().map_or(0, |s| s.len());
    (before - after) as u64
}

fn xtrim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(a) = parse_add_trim(ctx, args, false) else {
        return;
    };
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(_)) => {}
    }
    let by = a.trim.expect("checked");
    let n = trim(ctx.ks, &args[1], by, a.approx, a.limit);
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// XLEN, XRANGE, XREVRANGE, XDEL.

fn xlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => ctx.wrongtype(),
        Ok(None) => ctx.out.int(0),
        Ok(Some(s)) => ctx.out.int(s.len() as i64),
    }
}

fn range_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], rev: bool) {
    let (start_arg, end_arg) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let Some(start) = ctx.interval_id(start_arg, 0, true) else {
        return;
    };
    let Some(end) = ctx.interval_id(end_arg, u64::MAX, false) else {
        return;
    };
    let mut count: i64 = -1;
    let mut j = 4;
    while j < args.len() {
        if is(&args[j], "count") && j + 1 < args.len() {
            let Some(c) = ctx.ll_arg(&args[j + 1], None) else {
                return;
            };
            count = c.max(0);
            j += 2;
        } else {
            return ctx.syntax();
        }
    }
    let out = &mut *ctx.out;
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => out.error(WRONGTYPE),
        Ok(None) => out.array(0),
        Ok(Some(_)) if count == 0 => out.null_array(),
        Ok(Some(s)) => {
            let limit = if count < 0 {
                usize::MAX
            } else {
                count as usize
            };
            let items: Vec<_> = s.range(start, end, rev).take(limit).collect();
            out.array(items.len());
            for (id, f) in items {
                reply_entry(out, id, f);
            }
        }
    }
}

fn xrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    range_generic(ctx, args, false)
}

fn xrevrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    range_generic(ctx, args, true)
}

fn xdel(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(None) => return ctx.out.int(0),
        Ok(Some(_)) => {}
    }
    let mut ids = Vec::with_capacity(args.len() - 2);
    for a in &args[2..] {
        let Some(id) = ctx.stream_id(a, 0, true) else {
            return;
        };
        ids.push(id);
    }
    let s = peek_stream(ctx.ks, &args[1])
        .ok()
        .flatten()
        .expect("checked");
    let mut present: Vec<StreamId> = ids.into_iter().filter(|id| s.get(*id).is_some()).collect();
    present.sort_unstable();
    present.dedup();
    let n = present.len();
    if n > 0 {
        apply_op(ctx.ks, &args[1], StreamOp::Delete { ids: present });
    }
    ctx.out.int(n as i64);
}

// ---------------------------------------------------------------------------
// XREAD / XREADGROUP.

/// The `entries_read` a group reaches after reading `ids` (in order)
/// past its last ID, and its new last ID.
fn advance_group(s: &Stream, g: &Group, ids: &[StreamId]) -> Option<(StreamId, i64)> {
    let (mut last, mut read) = (g.last_id, g.entries_read);
    let mut moved = false;
    for &id in ids {
        if id > last {
            if read != ENTRIES_READ_UNKNOWN && !s.has_tombstones_from(id) {
                read += 1;
            } else if s.entries_added != 0 {
                read = s.estimate_distance(id);
            }
            last = id;
            moved = true;
        }
    }
    moved.then_some((last, read))
}

/// Serves one stream of an XREAD(GROUP) (`streamReplyWithRange` with the
/// group side effects applied as one [`StreamOp`]): writes the entries
/// after `gt` (at most `count`, 0 = all).
fn serve_stream(
    ks: &mut Keys<'_>,
    out: &mut Reply,
    key: &[u8],
    gt: StreamId,
    count: usize,
    group: Option<(&Bytes, &Bytes, bool)>,
    history: bool,
) {
    let now = ks.now();
    let Ok(Some(s)) = peek_stream(ks, key) else {
        out.array(0);
        return;
    };
    let limit = if count == 0 { usize::MAX } else { count };
    let Some((gname, cname, noack)) = group else {
        let items: Vec<_> = match gt.next() {
            Some(start) => s.range(start, StreamId::MAX, false).take(limit).collect(),
            None => Vec::new(),
        };
        out.array(items.len());
        for (id, f) in items {
            reply_entry(out, id, f);
        }
        return;
    };
    let Some(g) = s.group(gname) else {
        out.array(0);
        return;
    };
    let new_consumer = !g.consumers.contains_key(&cname[..]);
    let mut claim = Vec::new();
    let mut last = None;
    if history {
        let pel: Vec<StreamId> = g
            .consumers
            .get(&cname[..])
            // History is what follows the ID given (Redis increments it).
            .and_then(|c| Some(c.pel.range(gt.next()?..).take(limit).copied().collect()))
            .unwrap_or_default();
        out.array(pel.len());
        for id in pel {
            match s.get(id) {
                Some(f) => {
                    reply_entry(out, id, f);
                    let count = g.pel.get(&id).map_or(0, |n| n.delivery_count);
                    claim.push((id, now, count + 1));
                }
                None => {
                    out.array(2);
                    reply_id(out, id);
                    out.null_array();
                }
            }
        }
    } else {
        let items: Vec<_> = match gt.next() {
            Some(start) => s.range(start, StreamId::MAX, false).take(limit).collect(),
            None => Vec::new(),
        };
        out.array(items.len());
        let ids: Vec<StreamId> = items.iter().map(|(id, _)| *id).collect();
        for (id, f) in items {
            reply_entry(out, id, f);
        }
        last = advance_group(s, g, &ids);
        if !noack {
            claim = ids.iter().map(|id| (*id, now, 1)).collect();
        }
    }
    if new_consumer {
        apply_op(
            ks,
            key,
            StreamOp::ConsumerCreate {
                group: gname.clone(),
                consumer: cname.clone(),
                seen_time: now,
            },
        );
    }
    apply_op(
        ks,
        key,
        StreamOp::GroupUpdate {
            group: gname.clone(),
            consumer: Some((cname.clone(), now)),
            last,
            claim,
            ack: Vec::new(),
        },
    );
}

/// `getTimeoutFromObjectOrReply` in milliseconds: the absolute deadline (0: forever).
fn ms_timeout(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<u64> {
    let Some(t) = parse_i64(arg) else {
        ctx.err("ERR timeout is not an integer or out of range");
        return None;
    };
    if t < 0 {
        ctx.err("ERR timeout is negative");
        return None;
    }
    if t == 0 {
        return Some(0);
    }
    let now = ctx.ks.now() as i64;
    if t > i64::MAX - now {
        ctx.err("ERR timeout is out of range");
        return None;
    }
    Some((now + t) as u64)
}

/// The options of XREAD / XREADGROUP, parsed.
struct XreadOpts {
    group_cmd: bool,
    timeout: Option<u64>,
    count: i64,
    streams_arg: usize,
    noack: bool,
    group: Option<(Bytes, Bytes)>,
}

fn parse_xread(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> Option<XreadOpts> {
    let group_cmd = args[0].len() == 10;
    let mut o = XreadOpts {
        group_cmd,
        timeout: None,
        count: 0,
        streams_arg: 0,
        noack: false,
        group: None,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        let a = &args[i][..];
        if is(a, "block") && more > 0 {
            if ctx.client.in_script {
                let name = String::from_utf8_lossy(&args[0]).into_owned();
                ctx.err(&format!(
                    "ERR {name} command is not allowed with BLOCK option from scripts"
                ));
                return None;
            }
            i += 1;
            o.timeout = Some(ms_timeout(ctx, &args[i])?);
        } else if is(a, "count") && more > 0 {
            i += 1;
            o.count = ctx.ll_arg(&args[i], None)?.max(0);
        } else if is(a, "streams") && more > 0 {
            o.streams_arg = i + 1;
            if !(args.len() - o.streams_arg).is_multiple_of(2) {
                ctx.err("ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.");
                return None;
            }
            break;
        } else if is(a, "group") && more >= 2 {
            if !group_cmd {
                ctx.err("ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            o.group = Some((owned(&args[i + 1]), owned(&args[i + 2])));
            i += 2;
        } else if is(a, "noack") {
            if !group_cmd {
                ctx.err("ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.");
                return None;
            }
            o.noack = true;
        } else {
            ctx.syntax();
            return None;
        }
        i += 1;
    }
    if o.streams_arg == 0 {
        ctx.syntax();
        return None;
    }
    if group_cmd && o.group.is_none() {
        ctx.err("ERR Missing GROUP option for XREADGROUP");
        return None;
    }
    Some(o)
}

/// The start ID of every key (MAX stands for ">"), or `None` after an error
/// reply.
fn xread_ids(ctx: &mut Ctx<'_, '_>, args: &[Bytes], o: &XreadOpts) -> Option<Vec<StreamId>> {
    let n = (args.len() - o.streams_arg) / 2;
    let keys = &args[o.streams_arg..o.streams_arg + n];
    let mut ids = Vec::with_capacity(n);
    for (k, key) in keys.iter().enumerate() {
        let arg = &args[o.streams_arg + n + k][..];
        let s = match stream_at(ctx.ks, key) {
            Err(()) => {
                ctx.wrongtype();
                return None;
            }
            Ok(s) => s,
        };
        if let Some((gname, _)) = &o.group {
            if s.and_then(|s| s.group(gname)).is_none() {
                ctx.err(&format!(
                    "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(gname)
                ));
                return None;
            }
        }
        if arg == b"$" {
            if o.group_cmd {
                ctx.err("ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.");
                return None;
            }
            ids.push(s.map_or(StreamId::MIN, |s| s.last_id));
            continue;
        }
        if arg == b">" {
            if !o.group_cmd {
                ctx.err("ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.");
                return None;
            }
            ids.push(StreamId::MAX);
            continue;
        }
        ids.push(ctx.stream_id(arg, 0, true)?);
    }
    Some(ids)
}

/// Serves synchronously what can be served; false when nothing could be.
fn xread_now(ctx: &mut Ctx<'_, '_>, keys: &[Bytes], ids: &[StreamId], o: &XreadOpts) -> bool {
    let mut body = Reply::new(ctx.out.resp3);
    let mut served = 0;
    for (k, key) in keys.iter().enumerate() {
        let Ok(Some(s)) = peek_stream(ctx.ks, key) else {
            continue;
        };
        let mut gt = ids[k];
        let mut history = false;
        let serve = match &o.group {
            Some((gname, _)) => {
                if gt != StreamId::MAX {
                    history = true;
                    true
                } else {
                    let glast = s.group(gname).map_or(StreamId::MIN, |g| g.last_id);
                    match s.last() {
                        Some((maxid, _)) if maxid > glast => {
                            gt = glast;
                            true
                        }
                        _ => false,
                    }
                }
            }
            None => s.last().is_some_and(|(maxid, _)| maxid > gt),
        };
        if !serve {
            continue;
        }
        served += 1;
        if !body.resp3 {
            body.array(2);
        }
        body.bulk(key);
        let g = o.group.as_ref().map(|(a, b)| (a, b, o.noack));
        serve_stream(ctx.ks, &mut body, key, gt, o.count as usize, g, history);
    }
    if served == 0 {
        return false;
    }
    if ctx.out.resp3 {
        ctx.out.map(served);
    } else {
        ctx.out.array(served);
    }
    ctx.out.raw(&body.buf);
    true
}

fn xread(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(o) = parse_xread(ctx, args) else {
        return;
    };
    let Some(ids) = xread_ids(ctx, args, &o) else {
        return;
    };
    let n = ids.len();
    let keys = &args[o.streams_arg..o.streams_arg + n];
    if xread_now(ctx, keys, &ids, &o) {
        return;
    }
    let Some(deadline) = o.timeout else {
        return ctx.out.null_array();
    };
    if ctx.in_exec {
        return ctx.out.null_array();
    }
    let count = if o.count > 0 { o.count as usize } else { 1000 };
    let waits: HashMap<Bytes, StreamId> = keys
        .iter()
        .zip(ids.iter())
        .rev()
        .map(|(k, id)| (owned(k), *id))
        .collect();
    let (group, noack) = (o.group, o.noack);
    ctx.block = Some(BlockRequest {
        keys: keys.iter().map(owned).collect(),
        extra_keys: Vec::new(),
        deadline,
        serve: Box::new(move |ks, key, out| {
            serve_blocked(ks, key, out, &waits, count, group.as_ref(), noack)
        }),
        timeout_reply: |out| out.null_array(),
    });
}

/// Serves a blocked XREAD/XREADGROUP from `key` (`serveClientsBlockedOnStreamKey`).
fn serve_blocked(
    ks: &mut Keys<'_>,
    key: &Bytes,
    out: &mut Reply,
    waits: &HashMap<Bytes, StreamId>,
    count: usize,
    group: Option<&(Bytes, Bytes)>,
    noack: bool,
) -> bool {
    // A group reader whose stream is gone (deleted, replaced by another
    // type, flushed) fails; a plain reader waits for a new stream.
    let Ok(Some(s)) = peek_stream(ks, key) else {
        if group.is_some() {
            out.error("UNBLOCKED the stream key no longer exists");
            return true;
        }
        return false;
    };
    let mut gt = waits.get(key).copied().unwrap_or(StreamId::MAX);
    if let Some((gname, _)) = group {
        match s.group(gname) {
            None => {
                out.error("NOGROUP the consumer group this client was blocked on no longer exists");
                return true;
            }
            Some(g) => gt = g.last_id,
        }
    }
    // Served once an entry past the ID exists (Redis compares the stream's
    // last ID, but only when a write signals the key; this check also runs
    // when the waiter registers, where a deleted last entry must not count).
    if s.last().is_none_or(|(id, _)| id <= gt) {
        return false;
    }
    if out.resp3 {
        out.map(1);
    } else {
        out.array(1);
        out.array(2);
    }
    out.bulk(key);
    let g = group.map(|(a, b)| (a, b, noack));
    serve_stream(ks, out, key, gt, count, g, false);
    true
}

// ---------------------------------------------------------------------------
// XGROUP.

fn nogroup_for_key(ctx: &mut Ctx<'_, '_>, group: &[u8], key: &[u8]) {
    ctx.err(&format!(
        "NOGROUP No such consumer group '{}' for key name '{}'",
        String::from_utf8_lossy(group),
        String::from_utf8_lossy(key)
    ));
}

fn subcommand_syntax(ctx: &mut Ctx<'_, '_>, args: &[Bytes], cmd: &str) {
    let sub = String::from_utf8_lossy(&args[1]);
    let sub: String = sub.chars().take(128).collect();
    ctx.err(&format!(
        "ERR unknown subcommand or wrong number of arguments for '{sub}'. Try {cmd} HELP."
    ));
}

fn help(ctx: &mut Ctx<'_, '_>, cmd: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

/// What XGROUP's subcommands check before running (`xgroupCommand`): the
/// options, the key's type and existence, the group's existence.
struct XgroupState {
    entries_read: i64,
    exists: bool,
    has_group: bool,
}

fn xgroup_check(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> Option<XgroupState> {
    let opt = &args[1][..];
    let mut mkstream = false;
    let mut entries_read = ENTRIES_READ_UNKNOWN;
    let mut exists = false;
    let mut has_group = false;
    if args.len() >= 4 {
        let create = is(opt, "create");
        let setid = is(opt, "setid");
        let mut i = 5;
        while i < args.len() {
            if create && is(&args[i], "mkstream") {
                mkstream = true;
                i += 1;
            } else if (create || setid) && is(&args[i], "entriesread") && i + 1 < args.len() {
                let n = ctx.ll_arg(&args[i + 1], None)?;
                if n < 0 && n != ENTRIES_READ_UNKNOWN {
                    ctx.err("ERR value for ENTRIESREAD must be positive or -1");
                    return None;
                }
                entries_read = n;
                i += 2;
            } else {
                subcommand_syntax(ctx, args, "XGROUP");
                return None;
            }
        }
        match stream_at(ctx.ks, &args[2]) {
            Err(()) => {
                ctx.wrongtype();
                return None;
            }
            Ok(None) => {}
            Ok(Some(s)) => {
                exists = true;
                has_group = s.group(&args[3]).is_some();
            }
        }
        if !mkstream {
            if !exists {
                ctx.err("ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.");
                return None;
            }
            if !has_group
                && (is(opt, "setid") || is(opt, "createconsumer") || is(opt, "delconsumer"))
            {
                nogroup_for_key(ctx, &args[3], &args[2]);
                return None;
            }
        }
    }
    Some(XgroupState {
        entries_read,
        exists,
        has_group,
    })
}

fn xgroup_help(ctx: &mut Ctx<'_, '_>) {
    help(
        ctx,
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    );
}

fn xgroup_createconsumer(ctx: &mut Ctx<'_, '_>, args: &[Bytes], key: &[u8]) {
    let s = peek_stream(ctx.ks, key).ok().flatten().expect("checked");
    let created = !s
        .group(&args[3])
        .is_some_and(|g| g.consumers.contains_key(&args[4][..]));
    if created {
        let now = ctx.ks.now();
        apply_op(
            ctx.ks,
            key,
            StreamOp::ConsumerCreate {
                group: owned(&args[3]),
                consumer: owned(&args[4]),
                seen_time: now,
            },
        );
    }
    ctx.out.int(created as i64);
}

fn xgroup_delconsumer(ctx: &mut Ctx<'_, '_>, args: &[Bytes], key: &[u8]) {
    let s = peek_stream(ctx.ks, key).ok().flatten().expect("checked");
    let pending = s
        .group(&args[3])
        .and_then(|g| g.consumers.get(&args[4][..]))
        .map(|c| c.pel.len());
    match pending {
        Some(p) => {
            apply_op(
                ctx.ks,
                key,
                StreamOp::ConsumerDelete {
                    group: owned(&args[3]),
                    consumer: owned(&args[4]),
                },
            );
            ctx.out.int(p as i64);
        }
        None => ctx.out.int(0),
    }
}

fn xgroup(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let opt = &args[1][..];
    let st = if args.len() >= 4 {
        let Some(st) = xgroup_check(ctx, args) else {
            return;
        };
        st
    } else {
        XgroupState {
            entries_read: ENTRIES_READ_UNKNOWN,
            exists: false,
            has_group: false,
        }
    };
    let XgroupState {
        entries_read,
        exists,
        has_group,
        ..
    } = st;
    let key = args.get(2).cloned().unwrap_or_default();
    let last_id = |ks: &mut Keys<'_>| {
        peek_stream(ks, &key)
            .ok()
            .flatten()
            .map_or(StreamId::MIN, |s| s.last_id)
    };
    let n = args.len();
    if n == 2 && is(opt, "help") {
        xgroup_help(ctx);
    } else if is(opt, "create") && (5..=8).contains(&n) {
        let id = if &args[4][..] == b"$" {
            last_id(ctx.ks)
        } else {
            let Some(id) = ctx.stream_id(&args[4], 0, true) else {
                return;
            };
            id
        };
        if has_group {
            return ctx.err("BUSYGROUP Consumer Group name already exists");
        }
        apply_op(
            ctx.ks,
            &key,
            StreamOp::GroupCreate {
                group: owned(&args[3]),
                id,
                entries_read,
                mkstream: !exists,
            },
        );
        ctx.out.ok();
    } else if is(opt, "setid") && (n == 5 || n == 7) {
        let id = if &args[4][..] == b"$" {
            last_id(ctx.ks)
        } else {
            let Some(id) = ctx.stream_id(&args[4], 0, false) else {
                return;
            };
            id
        };
        apply_op(
            ctx.ks,
            &key,
            StreamOp::GroupSetId {
                group: owned(&args[3]),
                id,
                entries_read,
            },
        );
        ctx.out.ok();
    } else if is(opt, "destroy") && n == 4 {
        if has_group {
            apply_op(
                ctx.ks,
                &key,
                StreamOp::GroupDestroy {
                    group: owned(&args[3]),
                },
            );
            ctx.out.int(1);
        } else {
            ctx.out.int(0);
        }
    } else if is(opt, "createconsumer") && n == 5 {
        xgroup_createconsumer(ctx, args, &key);
    } else if is(opt, "delconsumer") && n == 5 {
        xgroup_delconsumer(ctx, args, &key);
    } else {
        subcommand_syntax(ctx, args, "XGROUP")
    }
}

// ---------------------------------------------------------------------------
// XSETID, XACK, XPENDING.

fn xsetid(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(id) = ctx.stream_id(&args[2], 0, true) else {
        return;
    };
    let mut entries_added: i64 = -1;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "entriesadded") && more > 0 {
            let Some(n) = ctx.ll_arg(&args[i + 1], None) else {
                return;
            };
            if n < 0 {
                return ctx.err("ERR entries_added must be positive");
            }
            entries_added = n;
            i += 2;
        } else if is(&args[i], "maxdeletedid") && more > 0 {
            let Some(m) = ctx.stream_id(&args[i + 1], 0, true) else {
                return;
            };
            if id < m {
                return ctx.err("ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id");
            }
            max_deleted = m;
            i += 2;
        } else {
            return ctx.syntax();
        }
    }
    let s = match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(None) => return ctx.err(super::util::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if let Some((maxid, _)) = s.last() {
        if id < maxid {
            return ctx
                .err("ERR The ID specified in XSETID is smaller than the target stream top item");
        }
        if entries_added != -1 && s.len() as i64 > entries_added {
            return ctx.err("ERR The entries_added specified in XSETID is smaller than the target stream length");
        }
    }
    apply_op(
        ctx.ks,
        &args[1],
        StreamOp::SetId {
            last_id: id,
            entries_added: (entries_added != -1).then_some(entries_added as u64),
            max_deleted: (max_deleted != StreamId::MIN).then_some(max_deleted),
        },
    );
    ctx.out.ok();
}

fn xack(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(Some(s)) if s.group(&args[2]).is_some() => {}
        Ok(_) => return ctx.out.int(0),
    }
    let mut ids = Vec::with_capacity(args.len() - 3);
    for a in &args[3..] {
        let Some(id) = ctx.stream_id(a, 0, true) else {
            return;
        };
        ids.push(id);
    }
    let s = peek_stream(ctx.ks, &args[1])
        .ok()
        .flatten()
        .expect("checked");
    let g = s.group(&args[2]).expect("checked");
    let mut acked: Vec<StreamId> = ids
        .into_iter()
        .filter(|id| g.pel.contains_key(id))
        .collect();
    acked.sort_unstable();
    acked.dedup();
    let n = acked.len();
    if n > 0 {
        apply_op(
            ctx.ks,
            &args[1],
            StreamOp::GroupUpdate {
                group: owned(&args[2]),
                consumer: None,
                last: None,
                claim: Vec::new(),
                ack: acked,
            },
        );
    }
    ctx.out.int(n as i64);
}

fn nogroup_key(ctx: &mut Ctx<'_, '_>, key: &[u8], group: &[u8]) {
    ctx.err(&format!(
        "NOGROUP No such key '{}' or consumer group '{}'",
        String::from_utf8_lossy(key),
        String::from_utf8_lossy(group)
    ));
}

fn xpending(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = args.len();
    let justinfo = n == 3;
    if n != 3 && !(6..=9).contains(&n) {
        return ctx.syntax();
    }
    let (mut start, mut end, mut count, mut minidle) = (StreamId::MIN, StreamId::MAX, 0i64, 0i64);
    let mut consumer: Option<&Bytes> = None;
    if n >= 6 {
        let mut at = 3;
        if is(&args[3], "idle") {
            let Some(v) = ctx.ll_arg(&args[4], None) else {
                return;
            };
            minidle = v;
            if n < 8 {
                return ctx.syntax();
            }
            at += 2;
        }
        let Some(c) = ctx.ll_arg(&args[at + 2], None) else {
            return;
        };
        count = c.max(0);
        let Some(s) = ctx.interval_id(&args[at], 0, true) else {
            return;
        };
        let Some(e) = ctx.interval_id(&args[at + 1], u64::MAX, false) else {
            return;
        };
        start = s;
        end = e;
        consumer = args.get(at + 3);
    }
    let now = ctx.ks.now() as i64;
    let s = match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(s) => s,
    };
    let Some(g) = s.and_then(|s| s.group(&args[2])) else {
        return nogroup_key(ctx, &args[1], &args[2]);
    };
    let out = &mut *ctx.out;
    if justinfo {
        out.array(4);
        out.int(g.pel.len() as i64);
        match (g.pel.keys().next(), g.pel.keys().next_back()) {
            (Some(first), Some(last)) => {
                reply_id(out, *first);
                reply_id(out, *last);
                let with: Vec<_> = g
                    .consumers
                    .iter()
                    .filter(|(_, c)| !c.pel.is_empty())
                    .collect();
                out.array(with.len());
                for (name, c) in with {
                    out.array(2);
                    out.bulk(name);
                    out.bulk_int(c.pel.len() as i64);
                }
            }
            _ => {
                out.null();
                out.null();
                out.null_array();
            }
        }
        return;
    }
    let ids: Vec<StreamId> = match consumer {
        Some(c) => match g.consumers.get(&c[..]) {
            None => return out.array(0),
            Some(c) => c.pel.range(start..).copied().collect(),
        },
        None => g.pel.range(start..).map(|(id, _)| *id).collect(),
    };
    let mut rows = Vec::new();
    for id in ids {
        if count == 0 || id > end {
            break;
        }
        let nack = &g.pel[&id];
        if minidle != 0 && now - (nack.delivery_time as i64) < minidle {
            continue;
        }
        count -= 1;
        rows.push((id, nack));
    }
    out.array(rows.len());
    for (id, nack) in rows {
        out.array(4);
        reply_id(out, id);
        out.bulk(&nack.consumer);
        out.int((now - nack.delivery_time as i64).max(0));
        out.int(nack.delivery_count as i64);
    }
}

// ---------------------------------------------------------------------------
// XCLAIM / XAUTOCLAIM.

/// XCLAIM's options after the IDs (`xclaimCommand`).
struct XclaimOpts {
    force: bool,
    justid: bool,
    retrycount: i64,
    deliverytime: i64,
    lastid: StreamId,
}

fn parse_xclaim(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    mut j: usize,
    now: i64,
) -> Option<XclaimOpts> {
    let (mut force, mut justid) = (false, false);
    let mut retrycount: i64 = -1;
    let mut deliverytime: i64 = -1;
    let mut lastid = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j][..];
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            let v = ctx.ll_arg(&args[j], Some("Invalid IDLE option argument for XCLAIM"))?;
            deliverytime = now.wrapping_sub(v);
        } else if is(opt, "time") && more > 0 {
            j += 1;
            let v = ctx.ll_arg(&args[j], Some("Invalid TIME option argument for XCLAIM"))?;
            deliverytime = v;
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            let v = ctx.ll_arg(
                &args[j],
                Some("Invalid RETRYCOUNT option argument for XCLAIM"),
            )?;
            retrycount = v;
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            lastid = ctx.stream_id(&args[j], 0, true)?;
        } else {
            ctx.err(&format!(
                "ERR Unrecognized XCLAIM option '{}'",
                String::from_utf8_lossy(opt)
            ));
            return None;
        }
        j += 1;
    }
    if deliverytime != -1 {
        if deliverytime < 0 || deliverytime > now {
            deliverytime = now;
        }
    } else {
        deliverytime = now;
    }
    Some(XclaimOpts {
        force,
        justid,
        retrycount,
        deliverytime,
        lastid,
    })
}

fn xclaim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(Some(s)) if s.group(&args[2]).is_some() => {}
        Ok(_) => return nogroup_key(ctx, &args[1], &args[2]),
    }
    let Some(minidle) = ctx.ll_arg(&args[4], Some("Invalid min-idle-time argument for XCLAIM"))
    else {
        return;
    };
    let minidle = minidle.max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_id_full(&args[j], 0, true, false) {
            Some((id, _)) => ids.push(id),
            None => break,
        }
        j += 1;
    }
    let now = ctx.ks.now() as i64;
    let Some(XclaimOpts {
        force,
        justid,
        retrycount,
        deliverytime,
        lastid,
    }) = parse_xclaim(ctx, args, j, now)
    else {
        return;
    };
    let s = peek_stream(ctx.ks, &args[1])
        .ok()
        .flatten()
        .expect("checked");
    let g = s.group(&args[2]).expect("checked");
    let name = &args[3];
    let mut last = (lastid > g.last_id).then_some((lastid, g.entries_read));
    let mut claim: Vec<(StreamId, u64, u64)> = Vec::new();
    let mut ack = Vec::new();
    let mut body = Reply::new(ctx.out.resp3);
    let mut n = 0;
    // Later duplicates of an ID see the earlier claims' effect.
    let mut state: HashMap<StreamId, Option<(bool, u64, u64)>> = HashMap::new();
    for id in ids {
        let cur = *state.entry(id).or_insert_with(|| {
            g.pel.get(&id).map(|nk| {
                (
                    nk.consumer[..] == name[..],
                    nk.delivery_time,
                    nk.delivery_count,
                )
            })
        });
        let entry = s.get(id);
        if entry.is_none() {
            if cur.is_some() {
                ack.push(id);
                state.insert(id, None);
            }
            continue;
        }
        // FORCE makes a pending entry first (delivered once, now).
        let (time, count, orphan) = match cur {
            Some((_, t, c)) => (t, c, false),
            None if force => (now as u64, 1, true),
            None => continue,
        };
        if !orphan && minidle != 0 && now - (time as i64) < minidle {
            continue;
        }
        let count = if retrycount >= 0 {
            retrycount as u64
        } else if !justid {
            count + 1
        } else {
            count
        };
        claim.push((id, deliverytime as u64, count));
        state.insert(id, Some((true, deliverytime as u64, count)));
        if justid {
            reply_id(&mut body, id);
        } else {
            reply_entry(&mut body, id, entry.expect("checked"));
        }
        n += 1;
    }
    let new_consumer = !claim.is_empty() && !g.consumers.contains_key(&name[..]);
    if !claim.is_empty() || !ack.is_empty() || last.is_some() {
        if new_consumer {
            apply_op(
                ctx.ks,
                &args[1],
                StreamOp::ConsumerCreate {
                    group: owned(&args[2]),
                    consumer: owned(name),
                    seen_time: now as u64,
                },
            );
        }
        let consumer = (!claim.is_empty()).then(|| (owned(name), now as u64));
        apply_op(
            ctx.ks,
            &args[1],
            StreamOp::GroupUpdate {
                group: owned(&args[2]),
                consumer,
                last: last.take(),
                claim,
                ack,
            },
        );
    }
    ctx.out.array(n);
    ctx.out.raw(&body.buf);
}

fn xautoclaim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(minidle) = ctx.ll_arg(
        &args[4],
        Some("Invalid min-idle-time argument for XAUTOCLAIM"),
    ) else {
        return;
    };
    let minidle = minidle.max(0);
    let Some(start) = ctx.interval_id(&args[5], 0, true) else {
        return;
    };
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            match parse_i64(&args[j + 1]) {
                Some(c) if (1..=max).contains(&c) => count = c,
                _ => return ctx.err("ERR COUNT must be > 0"),
            }
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return ctx.syntax();
        }
        j += 1;
    }
    match stream_at(ctx.ks, &args[1]) {
        Err(()) => return ctx.wrongtype(),
        Ok(Some(s)) if s.group(&args[2]).is_some() => {}
        Ok(_) => return nogroup_key(ctx, &args[1], &args[2]),
    }
    let now = ctx.ks.now();
    let s = peek_stream(ctx.ks, &args[1])
        .ok()
        .flatten()
        .expect("checked");
    let g = s.group(&args[2]).expect("checked");
    let name = &args[3];
    let mut attempts = count.saturating_mul(10);
    let mut claim = Vec::new();
    let mut deleted = Vec::new();
    let mut body = Reply::new(ctx.out.resp3);
    let mut n = 0;
    let mut it = g.pel.range(start..).peekable();
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some((&id, nack)) = it.next() else {
            break;
        };
        let Some(entry) = s.get(id) else {
            deleted.push(id);
            count -= 1;
            continue;
        };
        if minidle != 0 && (now as i64) - (nack.delivery_time as i64) < minidle {
            continue;
        }
        let dc = if justid {
            nack.delivery_count
        } else {
            nack.delivery_count + 1
        };
        claim.push((id, now, dc));
        if justid {
            reply_id(&mut body, id);
        } else {
            reply_entry(&mut body, id, entry);
        }
        n += 1;
        count -= 1;
    }
    let end = it.next().map_or(StreamId::MIN, |(id, _)| *id);
    let new_consumer = !claim.is_empty() && !g.consumers.contains_key(&name[..]);
    if !claim.is_empty() || !deleted.is_empty() {
        if new_consumer {
            apply_op(
                ctx.ks,
                &args[1],
                StreamOp::ConsumerCreate {
                    group: owned(&args[2]),
                    consumer: owned(name),
                    seen_time: now,
                },
            );
        }
        let consumer = (!claim.is_empty()).then(|| (owned(name), now));
        apply_op(
            ctx.ks,
            &args[1],
            StreamOp::GroupUpdate {
                group: owned(&args[2]),
                consumer,
                last: None,
                claim,
                ack: deleted.clone(),
            },
        );
    }
    let out = &mut *ctx.out;
    out.array(3);
    reply_id(out, end);
    out.array(n);
    out.raw(&body.buf);
    out.array(deleted.len());
    for id in deleted {
        reply_id(out, id);
    }
}

// ---------------------------------------------------------------------------
// XINFO.

fn xinfo(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let opt = &args[1][..];
    if is(opt, "help") {
        if args.len() != 2 {
            return subcommand_syntax(ctx, args, "XINFO");
        }
        return help(
            ctx,
            "XINFO",
            &[
                "CONSUMERS <key> <groupname>",
                "    Show consumers of <groupname>.",
                "GROUPS <key>",
                "    Show the stream consumer groups.",
                "STREAM <key> [FULL [COUNT <count>]",
                "    Show information about the stream.",
            ],
        );
    }
    let key = &args[2];
    let now = ctx.ks.now() as i64;
    let s = match stream_at(ctx.ks, key) {
        Err(()) => return ctx.wrongtype(),
        Ok(None) => return ctx.err(super::util::NO_SUCH_KEY),
        Ok(Some(s)) => s,
    };
    if is(opt, "consumers") && args.len() == 4 {
        let Some(g) = s.group(&args[3]) else {
            return nogroup_for_key(ctx, &args[3], key);
        };
        let out = &mut *ctx.out;
        out.array(g.consumers.len());
        for (name, c) in &g.consumers {
            out.map(3);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"pending");
            out.int(c.pel.len() as i64);
            out.bulk(b"idle");
            out.int((now - c.seen_time as i64).max(0));
        }
    } else if is(opt, "groups") && args.len() == 3 {
        let out = &mut *ctx.out;
        out.array(s.group_count());
        for (name, g) in s.groups() {
            out.map(6);
            out.bulk(b"name");
            out.bulk(name);
            out.bulk(b"consumers");
            out.int(g.consumers.len() as i64);
            out.bulk(b"pending");
            out.int(g.pel.len() as i64);
            out.bulk(b"last-delivered-id");
            reply_id(out, g.last_id);
            out.bulk(b"entries-read");
            reply_opt(
                out,
                (g.entries_read != ENTRIES_READ_UNKNOWN).then_some(g.entries_read),
            );
            out.bulk(b"lag");
            reply_opt(out, s.lag(g));
        }
    } else if is(opt, "stream") {
        xinfo_stream(ctx, args)
    } else {
        subcommand_syntax(ctx, args, "XINFO")
    }
}

fn reply_opt(out: &mut Reply, v: Option<i64>) {
    match v {
        Some(v) => out.int(v),
        None => out.null(),
    }
}

fn xinfo_stream(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let opts = &args[3..];
    let mut full = false;
    let mut count: i64 = 10;
    if !opts.is_empty() {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return subcommand_syntax(ctx, args, "XINFO");
        }
        full = true;
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return subcommand_syntax(ctx, args, "XINFO");
            }
            let Some(c) = ctx.ll_arg(&opts[2], None) else {
                return;
            };
            count = if c < 0 { 10 } else { c };
        }
    }
    let Ok(Some(s)) = peek_stream(ctx.ks, &args[2]) else {
        return;
    };
    let out = &mut *ctx.out;
    out.map(if full { 9 } else { 10 });
    out.bulk(b"length");
    out.int(s.len() as i64);
    out.bulk(b"radix-tree-keys");
    out.int(s.node_count() as i64);
    out.bulk(b"radix-tree-nodes");
    out.int(rax_nodes(s.node_count()) as i64);
    out.bulk(b"last-generated-id");
    reply_id(out, s.last_id);
    out.bulk(b"max-deleted-entry-id");
    reply_id(out, s.max_deleted);
    out.bulk(b"entries-added");
    out.int(s.entries_added as i64);
    out.bulk(b"recorded-first-entry-id");
    reply_id(out, s.first_id());
    let limit = if count == 0 {
        usize::MAX
    } else {
        count as usize
    };
    if !full {
        out.bulk(b"groups");
        out.int(s.group_count() as i64);
        out.bulk(b"first-entry");
        match s.first() {
            Some((id, f)) => reply_entry(out, id, f),
            None => out.null(),
        }
        out.bulk(b"last-entry");
        match s.last() {
            Some((id, f)) => reply_entry(out, id, f),
            None => out.null(),
        }
        return;
    }
    out.bulk(b"entries");
    let items: Vec<_> = s
        .range(StreamId::MIN, StreamId::MAX, false)
        .take(limit)
        .collect();
    out.array(items.len());
    for (id, f) in items {
        reply_entry(out, id, f);
    }
    out.bulk(b"groups");
    out.array(s.group_count());
    for (name, g) in s.groups() {
        out.map(7);
        out.bulk(b"name");
        out.bulk(name);
        out.bulk(b"last-delivered-id");
        reply_id(out, g.last_id);
        out.bulk(b"entries-read");
        reply_opt(
            out,
            (g.entries_read != ENTRIES_READ_UNKNOWN).then_some(g.entries_read),
        );
        out.bulk(b"lag");
        reply_opt(out, s.lag(g));
        out.bulk(b"pel-count");
        out.int(g.pel.len() as i64);
        out.bulk(b"pending");
        let pel: Vec<_> = g.pel.iter().take(limit).collect();
        out.array(pel.len());
        for (id, nk) in pel {
            out.array(4);
            reply_id(out, *id);
            out.bulk(&nk.consumer);
            out.int(nk.delivery_time as i64);
            out.int(nk.delivery_count as i64);
        }
        out.bulk(b"consumers");
        out.array(g.consumers.len());
        for (cname, c) in &g.consumers {
            out.map(4);
            out.bulk(b"name");
            out.bulk(cname);
            out.bulk(b"seen-time");
            out.int(c.seen_time as i64);
            out.bulk(b"pel-count");
            out.int(c.pel.len() as i64);
            out.bulk(b"pending");
            let ids: Vec<_> = c.pel.iter().take(limit).collect();
            out.array(ids.len());
            for id in ids {
                let nk = &g.pel[id];
                out.array(3);
                reply_id(out, *id);
                out.int(nk.delivery_time as i64);
                out.int(nk.delivery_count as i64);
            }
        }
    }
}

/// An estimate of Redis's radix tree node count for `keys` 128-bit keys
/// (one root plus about one node per key and per shared prefix).
fn rax_nodes(keys: usize) -> usize {
    if keys == 0 {
        1
    } else {
        2 * keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_does() {
        let p = |s: &str| parse_id_full(s.as_bytes(), 0, false, false).map(|x| x.0);
        assert_eq!(p("5"), Some(StreamId::new(5, 0)));
        assert_eq!(p("5-3"), Some(StreamId::new(5, 3)));
        assert_eq!(p("-"), Some(StreamId::MIN));
        assert_eq!(p("+"), Some(StreamId::MAX));
        assert_eq!(
            p("18446744073709551615-1"),
            Some(StreamId::new(u64::MAX, 1))
        );
        assert_eq!(p("-1"), None);
        assert_eq!(p("a-1"), None);
        assert_eq!(p("1-a"), None);
        assert_eq!(p("18446744073709551616"), None);
        assert_eq!(
            parse_id_full(b"5-*", 0, true, true),
            Some((StreamId::new(5, 0), false))
        );
        assert_eq!(parse_id_full(b"-", 0, true, false), None);
    }

    #[test]
    fn xread_keys_are_the_first_half_after_streams() {
        let a: Vec<Bytes> = ["xread", "count", "1", "STREAMS", "a", "b", "0", "0"]
            .iter()
            .map(|s| Bytes::from(s.to_string()))
            .collect();
        assert_eq!(xread_keys(&a), vec![4, 5]);
    }
}
