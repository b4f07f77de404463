//! Number parsing and formatting with Redis 7.0.15 semantics.
//!
//! Ports of `string2ll`, `string2ull`, `string2d`, `string2ld`, `memtoull`
//! (src/util.c) and of the `%.17g` / `%.17Lf` formatting used by
//! `addReplyDouble` and `ld2string(..., LD_STR_HUMAN)`.
//!
//! Runtime dependencies: `libc` (for `strtod`, so float parsing is exactly
//! glibc's: same grammar, same correctly-rounded result, hex floats, `inf`,
//! `infinity`, ...) and `itoa`.
//!
//! Like Redis, float parsing relies on the process running in the "C"
//! numeric locale (decimal point `.`); Rust programs never call
//! `setlocale`, so this holds unless some C library in the process does.

use std::os::raw::c_char;

/// Redis `LONG_STR_SIZE`: `string2ll` rejects inputs of this length or more.
const LONG_STR_SIZE: usize = 21;

/// Redis `MAX_LONG_DOUBLE_CHARS`: `string2ld` rejects inputs of this length
/// or more.
const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// C `isspace()` in the "C" locale.
#[inline]
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The bytes a C function taking a NUL-terminated string would see.
#[inline]
fn c_str_prefix(s: &[u8]) -> &[u8] {
    match s.iter().position(|&b| b == 0) {
        Some(n) => &s[..n],
        None => s,
    }
}

// ---------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------

/// Redis `string2ll`: strict signed 64-bit decimal.
///
/// No whitespace, optional leading `-` (no `+`), no leading zeros (except
/// `"0"` itself; `"-0"` is invalid), no overflow, non-empty, and at most 20
/// bytes long (sign included).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let slen = s.len();
    if slen == 0 || slen >= LONG_STR_SIZE {
        return None;
    }
    if slen == 1 && s[0] == b'0' {
        return Some(0);
    }
    let (negative, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    let first = *digits.first()?;
    if !(b'1'..=b'9').contains(&first) {
        return None;
    }
    let mut v: u64 = u64::from(first - b'0');
    for &c in &digits[1..] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if negative {
        if v > (i64::MAX as u64) + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Redis `string2ull` (used e.g. for stream IDs): `string2ll` first, and if
/// that fails, glibc `strtoull(s, &end, 10)` with full consumption required.
///
/// Exact consequences, all as in Redis 7.0:
/// * negative numbers that `string2ll` accepts (`"-1"`) are rejected;
/// * the `strtoull` fallback accepts leading whitespace (`" 5"`), a leading
///   `+` (`"+5"`), leading zeros (`"007"`), and a leading `-` with unsigned
///   wrap-around (`"-0"` is 0, `"-18446744073709551615"` is 1), while
///   rejecting trailing garbage/whitespace, overflow and empty input;
/// * the input is a C string: anything from the first NUL byte on is
///   ignored (`"5\0x"` is 5).
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    let s = c_str_prefix(s);
    if let Some(ll) = parse_i64(s) {
        return u64::try_from(ll).ok();
    }
    strtoull_full(s)
}

/// glibc `strtoull(s, &end, 10)` requiring `*s != 0 && *end == 0`, and no
/// ERANGE. `s` contains no NUL byte.
fn strtoull_full(s: &[u8]) -> Option<u64> {
    let mut i = 0;
    while i < s.len() && is_c_space(s[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < s.len() && (s[i] == b'+' || s[i] == b'-') {
        negative = s[i] == b'-';
        i += 1;
    }
    let digits = &s[i..];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        // No digits (end = s, *end != 0) or trailing garbage.
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        // Overflow: strtoull returns ULLONG_MAX with ERANGE -> rejected.
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(if negative { v.wrapping_neg() } else { v })
}

/// Appends the decimal representation of `v` (Redis `ll2string`).
pub fn format_ll(v: i64, buf: &mut Vec<u8>) {
    let mut b = itoa::Buffer::new();
    buf.extend_from_slice(b.format(v).as_bytes());
}

// ---------------------------------------------------------------------------
// Floats: parsing
// ---------------------------------------------------------------------------

/// Calls libc `strtod` on a NUL-terminated copy of `s`; returns the value
/// and how many bytes were consumed.
fn c_strtod(s: &[u8]) -> (f64, usize) {
    let mut stack = [0u8; 128];
    let heap: Vec<u8>;
    let buf: &[u8] = if s.len() < stack.len() {
        stack[..s.len()].copy_from_slice(s);
        &stack[..=s.len()]
    } else {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s);
        v.push(0);
        heap = v;
        &heap
    };
    let start = buf.as_ptr() as *const c_char;
    let mut end: *mut c_char = std::ptr::null_mut();
    // SAFETY: `buf` is NUL-terminated and outlives the call; strtod only
    // reads up to the terminator and stores a pointer into `buf` in `end`.
    let v = unsafe { libc::strtod(start, &mut end) };
    let consumed = if end.is_null() {
        0
    } else {
        end as usize - start as usize
    };
    (v, consumed)
}

/// Syntactic facts about a string that `strtod` consumed completely, used to
/// recognise the cases where glibc sets `ERANGE` without consulting errno.
struct FloatSyntax {
    /// `inf` / `infinity` literal (after an optional sign).
    infinity_literal: bool,
    /// Hexadecimal float (`0x...`).
    hex: bool,
    /// At least one non-zero mantissa digit.
    nonzero_mantissa: bool,
}

fn float_syntax(s: &[u8]) -> FloatSyntax {
    let body = match s.first() {
        Some(b'+') | Some(b'-') => &s[1..],
        _ => s,
    };
    let infinity_literal = matches!(body.first(), Some(b'i') | Some(b'I'));
    let hex = body.len() >= 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
    let nonzero_mantissa = if infinity_literal {
        false
    } else if hex {
        body[2..]
            .iter()
            .take_while(|&&c| (c | 0x20) != b'p')
            .any(|&c| c.is_ascii_hexdigit() && c != b'0')
    } else {
        body.iter()
            .take_while(|&&c| (c | 0x20) != b'e')
            .any(|&c| (b'1'..=b'9').contains(&c))
    };
    FloatSyntax {
        infinity_literal,
        hex,
        nonzero_mantissa,
    }
}

/// Redis `string2d` / `getDoubleFromObject` (ZADD/ZINCRBY scores, ...).
///
/// Rejects: empty input, a leading `isspace` byte, anything `strtod` does not
/// consume entirely (trailing garbage or whitespace, embedded NUL), NaN in
/// any spelling, and `ERANGE` results that are ±HUGE_VAL or zero — i.e.
/// overflow (`"1e400"`) and underflow to zero (`"1e-400"`, `"2e-324"`).
/// Subnormal results (`"1e-310"`, `"4e-324"`) are accepted, as glibc
/// returns them non-zero. Accepts a leading `+`, `inf`/`infinity` in any
/// case with optional sign, `.5`, `5.`, and hex floats (`"0x1p3"`).
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || is_c_space(s[0]) {
        return None;
    }
    let (v, consumed) = c_strtod(s);
    if consumed != s.len() || v.is_nan() {
        return None;
    }
    if v.is_infinite() || v == 0.0 {
        let syn = float_syntax(s);
        if v.is_infinite() && !syn.infinity_literal {
            return None; // overflow: ERANGE with ±HUGE_VAL
        }
        if v == 0.0 && syn.nonzero_mantissa {
            return None; // underflow to zero: ERANGE with 0
        }
    }
    Some(v)
}

/// Redis `string2ld` (INCRBYFLOAT / HINCRBYFLOAT operands and stored
/// values), which parses with `strtold` into an x87 80-bit `long double`.
///
/// Validation is exactly Redis's: empty input or input of 5120 bytes or more
/// (`MAX_LONG_DOUBLE_CHARS`) is rejected, as are a leading `isspace` byte,
/// incomplete consumption (trailing garbage/whitespace, embedded NUL), NaN,
/// and values that overflow or underflow to zero *as a long double*
/// (above ~1.19e4932 or at/below ~1.82e-4951).
///
/// Precision difference (we only have `f64`): the returned value is the
/// nearest `f64` (via `strtod`), not the nearest long double. Inputs that are
/// finite long doubles but overflow `f64` (e.g. `"1e400"`, which Redis
/// accepts) are returned as `±inf`, so INCRBYFLOAT will answer "increment
/// would produce NaN or Infinity" where Redis would succeed; inputs that
/// are non-zero long doubles but underflow `f64` (e.g. `"1e-400"`) are
/// returned as `±0.0`. The long-double range boundaries are decided exactly
/// for hex input and to 60 significant digits for decimal input (inputs that
/// agree with a boundary to 60 digits are treated as out of range).
pub fn parse_long_double(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS || is_c_space(s[0]) {
        return None;
    }
    let (v, consumed) = c_strtod(s);
    if consumed != s.len() || v.is_nan() {
        return None;
    }
    if v.is_infinite() || v == 0.0 {
        let syn = float_syntax(s);
        if (v.is_infinite() && !syn.infinity_literal) || (v == 0.0 && syn.nonzero_mantissa) {
            // Out of f64 range: decide with long double's range instead.
            return match long_double_range(s, syn.hex) {
                LdRange::Finite => Some(v),
                LdRange::Overflow | LdRange::Underflow => None,
            };
        }
    }
    Some(v)
}

enum LdRange {
    Finite,
    Overflow,
    Underflow,
}

/// Leading significant digits of the x87 long double overflow threshold
/// LDBL_MAX + ulp/2 = (2^65 - 1) * 2^16319 = 1.18973...e4932 (its exact
/// expansion continues with non-zero digits); values at or above it round
/// to infinity.
const LD_OVERFLOW_DIGITS: &[u8] = b"118973149535723176505351158982948866796625400469556721895649";
const LD_OVERFLOW_EXP10: i64 = 4932;
/// Leading significant digits of 2^-16446 = 1.82259...e-4951, half the
/// smallest subnormal long double (its exact expansion continues with
/// non-zero digits); values at or below it round to zero.
const LD_UNDERFLOW_DIGITS: &[u8] = b"182259976594123730126420296680970990819952540784678167186049";
const LD_UNDERFLOW_EXP10: i64 = -4951;

/// Classifies a complete, non-zero-mantissa strtod-syntax number (known to
/// be outside the f64 range) against the x87 long double range.
fn long_double_range(s: &[u8], hex: bool) -> LdRange {
    let body = match s.first() {
        Some(b'+') | Some(b'-') => &s[1..],
        _ => s,
    };
    if hex {
        long_double_range_hex(&body[2..])
    } else {
        long_double_range_dec(body)
    }
}

/// Parses an optionally signed decimal exponent, saturating.
fn parse_exp(e: &[u8]) -> i64 {
    let (neg, digits) = match e.first() {
        Some(b'-') => (true, &e[1..]),
        Some(b'+') => (false, &e[1..]),
        _ => (false, e),
    };
    let mut v: i64 = 0;
    for &c in digits {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

fn long_double_range_dec(body: &[u8]) -> LdRange {
    let epos = body.iter().position(|&c| (c | 0x20) == b'e');
    let (mant, exp) = match epos {
        Some(p) => (&body[..p], parse_exp(&body[p + 1..])),
        None => (body, 0),
    };
    let int_digits = mant.iter().take_while(|&&c| c != b'.').count() as i64;
    let digits: Vec<u8> = mant.iter().copied().filter(|&c| c != b'.').collect();
    let Some(k) = digits.iter().position(|&c| c != b'0') else {
        return LdRange::Finite; // zero (not reached: mantissa is non-zero)
    };
    let sig = &digits[k..];
    // value = sig[0].sig[1..] * 10^e10
    let e10 = (int_digits - 1 - k as i64).saturating_add(exp);
    // Compares the input with a threshold whose exact expansion starts
    // with `t_digits` and has further non-zero digits after them.
    let cmp = |t_digits: &[u8], t_exp: i64| -> std::cmp::Ordering {
        if e10 != t_exp {
            return e10.cmp(&t_exp);
        }
        for (i, &t) in t_digits.iter().enumerate() {
            let d = sig.get(i).copied().unwrap_or(b'0');
            if d != t {
                return d.cmp(&t);
            }
        }
        if sig[t_digits.len().min(sig.len())..]
            .iter()
            .all(|&d| d == b'0')
        {
            // Equal to the truncated threshold, hence below the threshold.
            std::cmp::Ordering::Less
        } else {
            // Agrees with the threshold to 60 digits: too close to call;
            // treat as equal (out of range).
            std::cmp::Ordering::Equal
        }
    };
    if cmp(LD_OVERFLOW_DIGITS, LD_OVERFLOW_EXP10).is_ge() {
        LdRange::Overflow
    } else if cmp(LD_UNDERFLOW_DIGITS, LD_UNDERFLOW_EXP10).is_le() {
        LdRange::Underflow
    } else {
        LdRange::Finite
    }
}

fn long_double_range_hex(body: &[u8]) -> LdRange {
    let ppos = body.iter().position(|&c| (c | 0x20) == b'p');
    let (mant, exp) = match ppos {
        Some(p) => (&body[..p], parse_exp(&body[p + 1..])),
        None => (body, 0),
    };
    let int_digits = mant.iter().take_while(|&&c| c != b'.').count() as i64;
    // Mantissa bits, most significant first.
    let mut bits: Vec<bool> = Vec::with_capacity(mant.len() * 4);
    for &c in mant.iter().filter(|&&c| c != b'.') {
        let v = (c as char).to_digit(16).unwrap_or(0);
        for b in (0..4).rev() {
            bits.push((v >> b) & 1 == 1);
        }
    }
    let Some(k) = bits.iter().position(|&b| b) else {
        return LdRange::Finite;
    };
    let rest = &bits[k + 1..];
    // Leading bit weight: 2^(4*int_digits - 1 - k + exp).
    let b2 = (4 * int_digits - 1 - k as i64).saturating_add(exp);
    // Overflow iff value >= 2^16384 - 2^16319, i.e. exponent >= 16384, or
    // exponent 16383 with the 64 bits after the leading one all set.
    if b2 >= 16384 || (b2 == 16383 && rest.len() >= 64 && rest[..64].iter().all(|&b| b)) {
        return LdRange::Overflow;
    }
    // Underflow iff value <= 2^-16446.
    if b2 < -16446 || (b2 == -16446 && !rest.iter().any(|&b| b)) {
        return LdRange::Underflow;
    }
    LdRange::Finite
}

// ---------------------------------------------------------------------------
// Floats: formatting
// ---------------------------------------------------------------------------

/// Redis 7.0 `addReplyDouble` text: C `"%.17g"` (`1.1` -> `"1.1000000000000001"`,
/// `1e300` -> `"1.0000000000000001e+300"`, `-0.0` -> `"-0"`), with `"inf"` /
/// `"-inf"` for infinities (and glibc's `"nan"` / `"-nan"` for NaN).
pub fn format_double(d: f64, buf: &mut Vec<u8>) {
    if d.is_infinite() {
        buf.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if d.is_nan() {
        buf.extend_from_slice(if d.is_sign_negative() {
            b"-nan"
        } else {
            b"nan"
        });
        return;
    }
    format_g17(d, buf);
}

/// C `printf("%.17g", d)` for finite `d`.
fn format_g17(d: f64, buf: &mut Vec<u8>) {
    use std::io::Write;
    const P: i32 = 17;
    // Correctly rounded (ties-to-even on the exact binary value, like
    // glibc) 17 significant digits in E style: "-d.ddddddddddddddddeX".
    let mut tmp = [0u8; 48];
    let len = {
        let mut cur = std::io::Cursor::new(&mut tmp[..]);
        write!(cur, "{:.*e}", (P - 1) as usize, d).expect("fits");
        cur.position() as usize
    };
    let e = &tmp[..len];
    let (neg, e) = match e.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, e),
    };
    let epos = e.iter().position(|&c| c == b'e').expect("exponent");
    let mut digits = [0u8; P as usize];
    let mut n = 0;
    for &c in e[..epos].iter().filter(|&&c| c != b'.') {
        digits[n] = c;
        n += 1;
    }
    debug_assert_eq!(n, P as usize);
    let x: i32 = std::str::from_utf8(&e[epos + 1..])
        .ok()
        .and_then(|t| t.parse().ok())
        .expect("exponent");
    if neg {
        buf.push(b'-');
    }
    if !(-4..P).contains(&x) {
        // Style e with precision P-1, trailing zeros removed.
        let frac = trim_zeros(&digits[1..]);
        buf.push(digits[0]);
        if !frac.is_empty() {
            buf.push(b'.');
            buf.extend_from_slice(frac);
        }
        buf.push(b'e');
        buf.push(if x < 0 { b'-' } else { b'+' });
        let ax = x.unsigned_abs();
        if ax < 10 {
            buf.push(b'0');
        }
        let mut ib = itoa::Buffer::new();
        buf.extend_from_slice(ib.format(ax).as_bytes());
    } else if x >= 0 {
        // Style f with precision P-1-X: X+1 integer digits.
        let n_int = (x + 1) as usize;
        buf.extend_from_slice(&digits[..n_int]);
        let frac = trim_zeros(&digits[n_int..]);
        if !frac.is_empty() {
            buf.push(b'.');
            buf.extend_from_slice(frac);
        }
    } else {
        // -4 <= X < 0: "0.000ddd".
        buf.extend_from_slice(b"0.");
        for _ in 0..(-x - 1) {
            buf.push(b'0');
        }
        buf.extend_from_slice(trim_zeros(&digits));
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let n = d.iter().rposition(|&c| c != b'0').map_or(0, |p| p + 1);
    &d[..n]
}

// ---------------------------------------------------------------------------
// Memory sizes
// ---------------------------------------------------------------------------

/// Redis `memtoull` (memory-type config values such as `maxmemory`).
///
/// Digits followed by an optional case-insensitive unit: `b` = 1, `k` =
/// 1000, `kb` = 1024, `m` = 1000², `mb` = 1024², `g` = 1000³, `gb` = 1024³.
/// Leading zeros are fine. Rejected: a leading `-`, `+`, whitespace, any
/// other suffix or garbage (`"1.5gb"`, `"5 "`), 128 or more digits.
/// As in Redis (which works on C strings), input from the first NUL byte on
/// is ignored, and an empty digit string is 0: `""`, `"kb"` and `"b"` all
/// parse as 0.
///
/// Difference from Redis: overflow is rejected here, while Redis silently
/// saturates the digits (strtoull's ERANGE is not checked:
/// "99999999999999999999999" -> 18446744073709551615) and lets the unit
/// multiplication wrap ("20000000000gb" -> 3028092406290448384).
pub fn parse_memory(s: &[u8]) -> Option<u64> {
    let s = c_str_prefix(s);
    if s.first() == Some(&b'-') {
        return None;
    }
    let ndigits = s.iter().take_while(|c| c.is_ascii_digit()).count();
    let (digits, unit) = s.split_at(ndigits);
    let mul: u64 = match unit.to_ascii_lowercase().as_slice() {
        b"" | b"b" => 1,
        b"k" => 1000,
        b"kb" => 1024,
        b"m" => 1000 * 1000,
        b"mb" => 1024 * 1024,
        b"g" => 1000 * 1000 * 1000,
        b"gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if ndigits >= 128 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    v.checked_mul(mul)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    // ----- parse_i64 ------------------------------------------------------

    #[test]
    fn parse_i64_table() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"1", Some(1)),
            (b"-1", Some(-1)),
            (b"99", Some(99)),
            (b"-99", Some(-99)),
            (b"1234567890", Some(1234567890)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"-9223372036854775808", Some(i64::MIN)),
            (b"9223372036854775808", None),
            (b"-9223372036854775809", None),
            (b"18446744073709551615", None),
            (b"18446744073709551616", None),
            (b"99999999999999999999", None),
            (b"-99999999999999999999", None), // 21 bytes
            (b"100000000000000000000", None), // 21 bytes
            (b"", None),
            (b"-", None),
            (b"+1", None),
            (b" 1", None),
            (b"1 ", None),
            (b"01", None),
            (b"00", None),
            (b"-0", None),
            (b"-01", None),
            (b"1a", None),
            (b"a1", None),
            (b"1.0", None),
            (b"1e3", None),
            (b"0x10", None),
            (b"1\0", None),
            (b"--1", None),
            (b"\xef\xbc\x91", None), // fullwidth digit
        ];
        for &(input, want) in cases {
            assert_eq!(parse_i64(input), want, "input {:?}", s(input));
        }
    }

    #[test]
    fn parse_i64_roundtrip_random() {
        let mut rng = XorShift(42);
        for _ in 0..100_000 {
            let v = rng.next() as i64 >> rng.below(64);
            let text = v.to_string();
            assert_eq!(parse_i64(text.as_bytes()), Some(v), "{text}");
        }
    }

    // ----- parse_u64 ------------------------------------------------------

    #[test]
    fn parse_u64_table() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"5", Some(5)),
            (b"9223372036854775807", Some(i64::MAX as u64)),
            (b"9223372036854775808", Some(1 << 63)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"18446744073709551616", None),
            (b"99999999999999999999999", None),
            (b"-1", None),
            (b"-9223372036854775808", None),
            (b"", None),
            (b" ", None),
            (b"-", None),
            (b"+", None),
            (b"abc", None),
            (b"5 ", None),
            (b"5x", None),
            (b"1.5", None),
            // strtoull fallback quirks (verified against redis-server 7.0.15
            // through XADD IDs)
            (b" 5", Some(5)),
            (b"\t\n5", Some(5)),
            (b"+5", Some(5)),
            (b"007", Some(7)),
            (b"00000000000000000000000001", Some(1)),
            (b"-0", Some(0)),
            (b"-18446744073709551615", Some(1)),
            (b"-18446744073709551616", None),
            (b"5\0abc", Some(5)),
            (b"\x005", None),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_u64(input), want, "input {:?}", s(input));
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn parse_u64_matches_libc_strtoull_fallback() {
        let alphabet = b"0123456789 +-\tx";
        let mut rng = XorShift(7);
        for _ in 0..100_000 {
            let len = rng.below(24);
            let input: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            // Reference: Redis's string2ull written against libc.
            let want = {
                match parse_i64(&input) {
                    Some(ll) if ll < 0 => None,
                    Some(ll) => Some(ll as u64),
                    None => {
                        let mut c = input.clone();
                        c.push(0);
                        let mut end: *mut c_char = std::ptr::null_mut();
                        let errno_ok;
                        let v;
                        // SAFETY: NUL-terminated buffer; errno is thread-local.
                        unsafe {
                            *libc::__errno_location() = 0;
                            v = libc::strtoull(c.as_ptr() as *const c_char, &mut end, 10);
                            let e = *libc::__errno_location();
                            errno_ok = e != libc::EINVAL && e != libc::ERANGE;
                        }
                        let full = !input.is_empty() && unsafe { *end } == 0;
                        if errno_ok && full {
                            Some(v)
                        } else {
                            None
                        }
                    }
                }
            };
            assert_eq!(parse_u64(&input), want, "input {:?}", s(&input));
        }
    }

    // ----- parse_f64 ------------------------------------------------------

    #[test]
    fn parse_f64_table() {
        let ok: &[(&[u8], f64)] = &[
            (b"0", 0.0),
            (b"1", 1.0),
            (b"-1", -1.0),
            (b"+1", 1.0),
            (b"1.5", 1.5),
            (b".5", 0.5),
            (b"5.", 5.0),
            (b"-.5", -0.5),
            (b"1e3", 1000.0),
            (b"1E3", 1000.0),
            (b"1e+3", 1000.0),
            (b"1e-3", 0.001),
            (b"1.1", 1.1),
            (b"0.1", 0.1),
            (b"00012", 12.0),
            (b"inf", f64::INFINITY),
            (b"+inf", f64::INFINITY),
            (b"-inf", f64::NEG_INFINITY),
            (b"INF", f64::INFINITY),
            (b"Infinity", f64::INFINITY),
            (b"-INFINITY", f64::NEG_INFINITY),
            (b"0x10", 16.0),
            (b"0X1p3", 8.0),
            (b"-0x1.8p1", -3.0),
            (b"0x.8", 0.5),
            (b"1.7976931348623157e308", f64::MAX),
            (b"2.2250738585072014e-308", f64::MIN_POSITIVE),
            (b"1e-310", 1e-310), // subnormal: ERANGE but non-zero -> ok
            (b"4e-324", 5e-324), // rounds up to the smallest subnormal
            (b"0e-99999", 0.0),  // exact zero, no ERANGE
            (b"0e99999", 0.0),
            (b"0.000000000", 0.0),
            (b"0x0p-99999", 0.0),
            (b"123456789012345678901234567890", 1.2345678901234568e29),
        ];
        for &(input, want) in ok {
            let got = parse_f64(input);
            assert_eq!(got, Some(want), "input {:?}", s(input));
        }
        // Sign of zero is preserved.
        assert!(parse_f64(b"-0").unwrap().is_sign_negative());
        assert!(parse_f64(b"-0.0").unwrap().is_sign_negative());

        let bad: &[&[u8]] = &[
            b"",
            b" 1",
            b"\t1",
            b"\n1",
            b"1 ",
            b"1\n",
            b"1\0",
            b"1\x002",
            b"abc",
            b"1a",
            b"1e",
            b"1e+",
            b"1.2.3",
            b"--1",
            b"+-1",
            b"+",
            b"-",
            b".",
            b"e5",
            b"1_000",
            b"1,5",
            b"nan",
            b"NaN",
            b"-nan",
            b"+nan",
            b"nan(123)",
            b"infinite",
            b"infinityy",
            b"in",
            b"0x",
            b"0xg",
            b"0x1p",
            b"1e400",
            b"-1e400",
            b"1.8e308",
            b"0x1p1024",
            b"1e-400",
            b"-1e-400",
            b"2e-324",
            b"0x1p-1080",
        ];
        for &input in bad {
            assert_eq!(parse_f64(input), None, "input {:?}", s(input));
        }
    }

    /// Redis's string2d written literally against libc (errno included).
    #[cfg(target_os = "linux")]
    fn string2d_ref(input: &[u8]) -> Option<f64> {
        let mut c = input.to_vec();
        c.push(0);
        let mut end: *mut c_char = std::ptr::null_mut();
        // SAFETY: NUL-terminated buffer; errno is thread-local.
        let (v, erange) = unsafe {
            *libc::__errno_location() = 0;
            let v = libc::strtod(c.as_ptr() as *const c_char, &mut end);
            (v, *libc::__errno_location() == libc::ERANGE)
        };
        let consumed = end as usize - c.as_ptr() as usize;
        if input.is_empty()
            || is_c_space(input[0])
            || consumed != input.len()
            || (erange && (v.is_infinite() || v == 0.0))
            || v.is_nan()
        {
            None
        } else {
            Some(v)
        }
    }

    fn random_float_text(rng: &mut XorShift) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"0",
            b"1",
            b"5",
            b"9",
            b"00",
            b"123",
            b".",
            b"e",
            b"E",
            b"-",
            b"+",
            b"e-",
            b"e+",
            b"e308",
            b"e-308",
            b"e-324",
            b"e400",
            b"e-400",
            b"0x",
            b"p",
            b"p-1080",
            b"inf",
            b"nan",
            b"infinity",
            b" ",
            b"a",
            b"f",
            b"\0",
            b"\t",
            b"99999",
        ];
        let n = rng.below(6) + 1;
        let mut v = Vec::new();
        for _ in 0..n {
            v.extend_from_slice(PIECES[rng.below(PIECES.len())]);
        }
        v
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn parse_f64_matches_string2d_reference() {
        let mut rng = XorShift(0xDEAD_BEEF);
        for _ in 0..200_000 {
            let input = random_float_text(&mut rng);
            let got = parse_f64(&input);
            let want = string2d_ref(&input);
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "input {:?}",
                s(&input)
            );
        }
        // Random finite doubles printed in several ways round-trip.
        for _ in 0..50_000 {
            let d = f64::from_bits(rng.next());
            if !d.is_finite() {
                continue;
            }
            for text in [format!("{d:e}"), format!("{d:.17e}"), format!("{d}")] {
                let got = parse_f64(text.as_bytes());
                assert_eq!(
                    got.map(f64::to_bits),
                    string2d_ref(text.as_bytes()).map(f64::to_bits)
                );
                if d != 0.0 {
                    assert_eq!(got, Some(d), "{text}");
                }
            }
        }
    }

    #[test]
    fn parse_f64_long_input() {
        // Longer than the stack buffer.
        let mut long = b"1.".to_vec();
        long.extend(std::iter::repeat_n(b'0', 500));
        long.push(b'1');
        assert_eq!(parse_f64(&long), Some(1.0));
        long.push(b'x');
        assert_eq!(parse_f64(&long), None);
    }

    // ----- parse_long_double ----------------------------------------------

    #[test]
    fn parse_long_double_table() {
        let ok: &[(&[u8], f64)] = &[
            (b"0", 0.0),
            (b"10.5", 10.5),
            (b"-0.1", -0.1),
            (b"+3", 3.0),
            (b"5.0e3", 5000.0),
            (b"0x10", 16.0),
            (b"inf", f64::INFINITY),
            (b"-Infinity", f64::NEG_INFINITY),
            (b"1e-310", 1e-310),
            // Finite as long double, out of f64 range (see docs).
            (b"1e400", f64::INFINITY),
            (b"-1e400", f64::NEG_INFINITY),
            (b"1e4932", f64::INFINITY),
            (b"1.18973149535723176502e4932", f64::INFINITY),
            (b"0x1p16383", f64::INFINITY),
            (b"0x1.fffffffffffffffep16383", f64::INFINITY), // LDBL_MAX
            (b"1e-400", 0.0),
            (b"1e-4950", 0.0),
            (b"3.6e-4951", 0.0),
            (b"1.8225997659412373013e-4951", 0.0),
            (b"0x1p-16445", 0.0), // smallest subnormal long double
            (b"0x1.0000000000000001p-16446", 0.0),
            (b"0.000000000000000000000000000000001e-4915", 0.0), // 1e-4948
        ];
        for &(input, want) in ok {
            assert_eq!(parse_long_double(input), Some(want), "input {:?}", s(input));
        }
        assert!(parse_long_double(b"-1e-400").unwrap().is_sign_negative());

        let bad: &[&[u8]] = &[
            b"",
            b" 1",
            b"1 ",
            b"1\0",
            b"abc",
            b"nan",
            b"-nan",
            b"1e",
            b"1e4933",
            b"-1e4933",
            b"1e5000",
            b"1.18973149535723176506e4932",
            b"11.8973149535723176506e4931",
            b"0x1p16384",
            b"0x1.ffffffffffffffffp16383", // rounds up past LDBL_MAX
            b"1e-5000",
            b"0.000000000000000000000000000000001e-4918", // 1e-4951
            b"1e-4952",
            b"1.8225997659412373012e-4951",
            b"0x1p-16446", // exactly half the smallest subnormal: ties to 0
            b"0x1p-16447",
            b"1e99999999999999999999999",
            b"1e-99999999999999999999999",
        ];
        for &input in bad {
            assert_eq!(parse_long_double(input), None, "input {:?}", s(input));
        }
    }

    #[test]
    fn parse_long_double_length_limit() {
        // string2ld rejects inputs of MAX_LONG_DOUBLE_CHARS (5120) bytes or more.
        let mut v = b"1.".to_vec();
        v.resize(5119, b'0');
        assert_eq!(v.len(), 5119);
        assert_eq!(parse_long_double(&v), Some(1.0));
        v.push(b'0');
        assert_eq!(parse_long_double(&v), None);
        // string2d has no such limit.
        assert_eq!(parse_f64(&v), Some(1.0));
    }

    #[test]
    fn parse_long_double_agrees_with_f64_in_range() {
        let mut rng = XorShift(0xFEED);
        for _ in 0..100_000 {
            let input = random_float_text(&mut rng);
            if let Some(d) = parse_f64(&input) {
                assert_eq!(
                    parse_long_double(&input).map(f64::to_bits),
                    Some(d.to_bits())
                );
            }
        }
    }

    // ----- format_double --------------------------------------------------

    fn fd(d: f64) -> String {
        let mut b = Vec::new();
        format_double(d, &mut b);
        String::from_utf8(b).unwrap()
    }

    fn libc_g17(d: f64) -> String {
        let mut out = [0u8; 64];
        // SAFETY: buffer large enough for any %.17g output; format string is
        // NUL-terminated and takes exactly one double.
        let n = unsafe {
            libc::snprintf(
                out.as_mut_ptr() as *mut c_char,
                out.len(),
                c"%.17g".as_ptr(),
                d,
            )
        };
        String::from_utf8(out[..n as usize].to_vec()).unwrap()
    }

    #[test]
    fn format_double_table() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (-0.0, "-0"),
            (1.0, "1"),
            (-1.0, "-1"),
            (1.1, "1.1000000000000001"),
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (100.0, "100"),
            (2.675, "2.6749999999999998"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (1e300, "1.0000000000000001e+300"),
            (1e-300, "1e-300"),
            (1e-4, "0.0001"),
            (1.5e-4, "0.00014999999999999999"),
            (1e-5, "1.0000000000000001e-05"),
            (5e-324, "4.9406564584124654e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (12345.0 + 1.0 / 8192.0, "12345.000122070312"), // exact tie -> even
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "nan"),
            (-f64::NAN, "-nan"),
        ];
        for &(d, want) in cases {
            assert_eq!(fd(d), want, "value {d:e}");
            if d.is_finite() {
                assert_eq!(fd(d), libc_g17(d), "libc value {d:e}");
            }
        }
    }

    #[test]
    fn format_double_matches_libc_snprintf() {
        let mut rng = XorShift(0x5EED_1234_5678_9ABC);
        for i in 0..100_000u32 {
            // Mix raw bit patterns (all magnitudes, subnormals) with
            // "human" values that exercise the fixed-notation branch and
            // decimal ties.
            let d = match i % 4 {
                0 | 1 => f64::from_bits(rng.next()),
                2 => (rng.next() as i64 >> rng.below(64)) as f64 / 2f64.powi(rng.below(60) as i32),
                _ => (rng.next() % 2_000_000) as f64 / 1000.0 - 1000.0,
            };
            if !d.is_finite() {
                continue;
            }
            assert_eq!(fd(d), libc_g17(d), "bits {:#x}", d.to_bits());
        }
    }

    // ----- parse_memory ---------------------------------------------------

    #[test]
    fn parse_memory_table() {
        let cases: &[(&[u8], Option<u64>)] = &[
            (b"0", Some(0)),
            (b"1", Some(1)),
            (b"100", Some(100)),
            (b"0005", Some(5)),
            (b"1b", Some(1)),
            (b"1B", Some(1)),
            (b"1k", Some(1000)),
            (b"1K", Some(1000)),
            (b"1kb", Some(1024)),
            (b"1KB", Some(1024)),
            (b"5Kb", Some(5120)),
            (b"1m", Some(1_000_000)),
            (b"1mb", Some(1_048_576)),
            (b"1Mb", Some(1_048_576)),
            (b"1g", Some(1_000_000_000)),
            (b"1gb", Some(1_073_741_824)),
            (b"5Gb", Some(5_368_709_120)),
            (b"100mb", Some(104_857_600)),
            (b"18446744073709551615", Some(u64::MAX)),
            (b"17179869183gb", Some(17_179_869_183 * (1 << 30))),
            // Redis quirks (verified with CONFIG SET maxmemory on 7.0.15)
            (b"", Some(0)),
            (b"b", Some(0)),
            (b"kb", Some(0)),
            (b"GB", Some(0)),
            (b"5\0abc", Some(5)),
            // rejected
            (b"-1", None),
            (b"-0", None),
            (b"-", None),
            (b"+5", None),
            (b" 5", None),
            (b"5 ", None),
            (b"5 kb", None),
            (b"1.5gb", None),
            (b"5bb", None),
            (b"5kib", None),
            (b"5t", None),
            (b"5tb", None),
            (b"0x10", None),
            (b"abc", None),
            (b"kb5", None),
            // overflow: rejected here; Redis saturates/wraps (see docs)
            (b"18446744073709551616", None),
            (b"99999999999999999999999", None),
            (b"17179869184gb", None),
            (b"20000000000gb", None),
        ];
        for &(input, want) in cases {
            assert_eq!(parse_memory(input), want, "input {:?}", s(input));
        }
        // 127 digits are accepted, 128 or more are too long.
        let mut zeros = vec![b'0'; 127];
        assert_eq!(parse_memory(&zeros), Some(0));
        zeros.push(b'0');
        assert_eq!(parse_memory(&zeros), None);
    }

    // ----- format_ll ------------------------------------------------------

    #[test]
    fn format_ll_table() {
        for v in [0, 1, -1, 42, -42, i64::MAX, i64::MIN, 1_000_000, -9] {
            let mut b = b"x".to_vec();
            format_ll(v, &mut b);
            assert_eq!(b, format!("x{v}").into_bytes());
            assert_eq!(parse_i64(&b[1..]), Some(v));
        }
    }
}
