//! Bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP, BITFIELD,
//! BITFIELD_RO) on string values, following Redis 7.0's bitops.c argument
//! order and error texts.

use bytes::Bytes;

use super::flags::*;
use super::strings::max_bulk_len;
use super::util::{get_str, is, owned, parse_i64, peek_str, NOT_INT};
use super::KEY1;
use super::{Command, Ctx, KeySpec};
use crate::engine::{ExpireSet, Mutation, Value};

const BITOP_KEYS: KeySpec = KeySpec::Range {
    first: 2,
    last: -1,
    step: 1,
};

pub static COMMANDS: &[Command] = &[
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

const BIT_OFFSET_ERR: &str = "ERR bit offset is not an integer or out of range";
const BIT_VALUE_ERR: &str = "ERR bit is not an integer or out of range";

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

/// One GET, SET or INCRBY, with the OVERFLOW mode in force where it appears.
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

/// Redis's bitfieldGeneric: every subcommand is parsed (and every error
/// replied) before the key is read; then the operations run in order.
fn bitfield_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], ro_cmd: bool) {
    let Some(parsed) = parse_bitfield(ctx, args) else {
        return;
    };
    let key = &args[1];
    match parsed.write {
        None => bitfield_read(ctx, key, &parsed.ops),
        Some(_) if ro_cmd => ctx.err("ERR BITFIELD_RO only supports the GET subcommand"),
        Some(range) => bitfield_write(ctx, key, &parsed.ops, range),
    }
}

/// BITFIELD's operations, as parsed.
struct BfOps {
    ops: Vec<BfOp>,
    /// The inclusive bit range SET/INCRBY ops write; None when all are GETs.
    write: Option<(u64, u64)>,
}

/// Parses BITFIELD's subcommands, checking each in Redis's order (the
/// subcommand and its argument count, the OVERFLOW type, the field type, the
/// offset, the value); None when an error was replied.
fn parse_bitfield(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> Option<BfOps> {
    let mut ops: Vec<BfOp> = Vec::new();
    let mut overflow = Overflow::Wrap;
    let mut write: Option<(u64, u64)> = None;
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
            let Some(o) = overflow_type(&args[j + 1]) else {
                ctx.err("ERR Invalid OVERFLOW type specified");
                return None;
            };
            overflow = o;
            j += 2;
            continue;
        } else {
            ctx.syntax();
            return None;
        };
        let Some((signed, bits)) = bitfield_type(&args[j + 1]) else {
            ctx.err(BF_TYPE_ERR);
            return None;
        };
        let offset = bit_offset_arg(ctx, &args[j + 2], bits)?;
        let mut value = 0;
        if opcode != BfOpcode::Get {
            let (lo, hi) = write.unwrap_or((u64::MAX, 0));
            write = Some((lo.min(offset), hi.max(offset + bits as u64 - 1)));
            value = ctx.int_arg(&args[j + 3])?;
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
    Some(BfOps { ops, write })
}

fn overflow_type(arg: &[u8]) -> Option<Overflow> {
    if is(arg, "wrap") {
        Some(Overflow::Wrap)
    } else if is(arg, "sat") {
        Some(Overflow::Sat)
    } else if is(arg, "fail") {
        Some(Overflow::Fail)
    } else {
        None
    }
}

/// The field `op` reads, as replied.
fn read_field(byte_at: &impl Fn(usize) -> u8, op: &BfOp) -> i64 {
    if op.signed {
        get_signed_field(byte_at, op.offset, op.bits)
    } else {
        get_unsigned_field(byte_at, op.offset, op.bits) as i64
    }
}

/// Only GETs: reads the key (expiring it if due), writes nothing.
fn bitfield_read(ctx: &mut Ctx<'_, '_>, key: &Bytes, ops: &[BfOp]) {
    let s: &[u8] = match get_str(ctx.ks, key) {
        Err(_) => return ctx.wrongtype(),
        Ok(None) => &[],
        Ok(Some(s)) => s,
    };
    let byte_at = |i: usize| s.get(i).copied().unwrap_or(0);
    ctx.out.array(ops.len());
    for op in ops {
        ctx.out.int(read_field(&byte_at, op));
    }
}

/// What a SET or INCRBY does to its field.
struct FieldWrite {
    /// The reply: the old value for SET, the new one for INCRBY.
    reply: i64,
    /// The new field bits.
    new: u64,
    changed: bool,
}

/// SET/INCRBY on a signed field; None when it overflows under OVERFLOW FAIL.
fn signed_write(byte_at: &impl Fn(usize) -> u8, op: &BfOp) -> Option<FieldWrite> {
    let old = get_signed_field(byte_at, op.offset, op.bits);
    let (new, ovf, reply) = if op.opcode == BfOpcode::IncrBy {
        let o = signed_overflow(old, op.value, op.bits, op.overflow);
        let new = o.unwrap_or_else(|| old.wrapping_add(op.value));
        (new, o.is_some(), new)
    } else {
        let o = signed_overflow(op.value, 0, op.bits, op.overflow);
        (o.unwrap_or(op.value), o.is_some(), old)
    };
    if ovf && op.overflow == Overflow::Fail {
        return None;
    }
    Some(FieldWrite {
        reply,
        new: new as u64,
        changed: old != new,
    })
}

/// SET/INCRBY on an unsigned field; None when it overflows under OVERFLOW FAIL.
fn unsigned_write(byte_at: &impl Fn(usize) -> u8, op: &BfOp) -> Option<FieldWrite> {
    let old = get_unsigned_field(byte_at, op.offset, op.bits);
    let (new, ovf, reply) = if op.opcode == BfOpcode::IncrBy {
        let o = unsigned_overflow(old, op.value, op.bits, op.overflow);
        let new = o.unwrap_or_else(|| old.wrapping_add(op.value as u64));
        (new, o.is_some(), new)
    } else {
        let v = op.value as u64;
        let o = unsigned_overflow(v, 0, op.bits, op.overflow);
        (o.unwrap_or(v), o.is_some(), old)
    };
    if ovf && op.overflow == Overflow::Fail {
        return None;
    }
    Some(FieldWrite {
        reply: reply as i64,
        new,
        changed: old != new,
    })
}

/// Runs the operations when at least one writes: bits `write_lo..=write_hi`.
fn bitfield_write(
    ctx: &mut Ctx<'_, '_>,
    key: &Bytes,
    ops: &[BfOp],
    (write_lo, write_hi): (u64, u64),
) {
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
    for op in ops {
        let byte_at = |i: usize| {
            if (lo..=hi).contains(&i) {
                buf[i - lo]
            } else {
                s.get(i).copied().unwrap_or(0)
            }
        };
        let written = match op.opcode {
            BfOpcode::Get => {
                ctx.out.int(read_field(&byte_at, op));
                continue;
            }
            BfOpcode::Set | BfOpcode::IncrBy if op.signed => signed_write(&byte_at, op),
            BfOpcode::Set | BfOpcode::IncrBy => unsigned_write(&byte_at, op),
        };
        let Some(w) = written else {
            ctx.out.null();
            continue;
        };
        ctx.out.int(w.reply);
        set_field(&mut buf, op.offset - (lo as u64) * 8, op.bits, w.new);
        if grows || w.changed {
            changes += 1;
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
