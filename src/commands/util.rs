//! Shared helpers for command handlers: Redis's common error texts, argument
//! parsing that replies with the right error, and typed key lookups.

use bytes::Bytes;

use super::Ctx;
use crate::engine::{HashValue, Keys, ListValue, SetValue, Value, ZSet};
use crate::util::number;

pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const SYNTAX: &str = "ERR syntax error";
pub const NOT_INT: &str = "ERR value is not an integer or out of range";
pub const NOT_FLOAT: &str = "ERR value is not a valid float";
pub const NO_SUCH_KEY: &str = "ERR no such key";
pub const INDEX_OUT_OF_RANGE: &str = "ERR index out of range";
pub const OVERFLOW: &str = "ERR increment or decrement would overflow";
pub const INVALID_EXPIRE: &str = "ERR invalid expire time in '{}' command";
pub const TIMEOUT_NOT_FLOAT: &str = "ERR timeout is not a float or out of range";
pub const TIMEOUT_NEGATIVE: &str = "ERR timeout is negative";

/// The value was of another type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrongType;

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

pub fn parse_i64(arg: &[u8]) -> Option<i64> {
    number::parse_i64(arg)
}

pub fn parse_f64(arg: &[u8]) -> Option<f64> {
    number::parse_f64(arg)
}

impl Ctx<'_, '_> {
    /// Parses an integer argument or replies "value is not an integer".
    pub fn int_arg(&mut self, arg: &[u8]) -> Option<i64> {
        let v = parse_i64(arg);
        if v.is_none() {
            self.out.error(NOT_INT);
        }
        v
    }

    /// Parses a float argument or replies "value is not a valid float".
    pub fn float_arg(&mut self, arg: &[u8]) -> Option<f64> {
        let v = parse_f64(arg);
        if v.is_none() {
            self.out.error(NOT_FLOAT);
        }
        v
    }

    /// Parses a blocking-command timeout (seconds, fractional allowed) into
    /// an absolute deadline in ms, 0 = forever; replies the error on failure.
    ///
    /// Exactly Redis 7.0's getTimeoutFromObjectOrReply: a long double,
    /// `ceil(secs * 1000)` cast to a 64-bit integer (a value out of that range,
    /// infinity included, becomes LLONG_MIN as on x86-64, hence "negative"),
    /// so `-0.0001` means 0 = forever. A deadline past the clock's range never
    /// fires in Redis either: it is treated as forever.
    pub fn timeout_arg(&mut self, arg: &[u8]) -> Option<u64> {
        let Some(secs) = number::parse_long_double(arg) else {
            self.out.error(TIMEOUT_NOT_FLOAT);
            return None;
        };
        let ms = (secs * 1000.0).ceil();
        let tval: i64 = if (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&ms) {
            ms as i64
        } else {
            i64::MIN
        };
        if tval < 0 {
            self.out.error(TIMEOUT_NEGATIVE);
            return None;
        }
        if tval == 0 {
            return Some(0);
        }
        match (self.ks.now() as i64).checked_add(tval) {
            Some(d) => Some(d as u64),
            None => Some(0),
        }
    }

    pub fn wrongtype(&mut self) {
        self.out.error(WRONGTYPE);
    }

    pub fn syntax(&mut self) {
        self.out.error(SYNTAX);
    }

    /// Replies a list of bulk strings.
    pub fn bulk_array<'b>(&mut self, items: impl ExactSizeIterator<Item = &'b [u8]>) {
        self.out.array(items.len());
        for i in items {
            self.out.bulk(i);
        }
    }
}

macro_rules! typed_getter {
    ($name:ident, $peek:ident, $variant:ident, $ty:ty) => {
        /// Reads the key as this type: Ok(None) when missing, Err on another type.
        pub fn $name<'a>(ks: &'a mut Keys<'_>, key: &[u8]) -> Result<Option<&'a $ty>, WrongType> {
            match ks.get(key) {
                None => Ok(None),
                Some(e) => match &e.value {
                    Value::$variant(v) => Ok(Some(&**v)),
                    _ => Err(WrongType),
                },
            }
        }
        /// Like the getter, without touching access stats.
        pub fn $peek<'a>(ks: &'a mut Keys<'_>, key: &[u8]) -> Result<Option<&'a $ty>, WrongType> {
            match ks.peek(key) {
                None => Ok(None),
                Some(e) => match &e.value {
                    Value::$variant(v) => Ok(Some(&**v)),
                    _ => Err(WrongType),
                },
            }
        }
    };
}

typed_getter!(get_str, peek_str, Str, [u8]);
typed_getter!(get_list, peek_list, List, ListValue);
typed_getter!(get_hash, peek_hash, Hash, HashValue);
typed_getter!(get_set, peek_set, Set, SetValue);
typed_getter!(get_zset, peek_zset, ZSet, ZSet);

/// Copies an argument into an owned `Bytes` that does not pin the read buffer.
pub fn owned(arg: &Bytes) -> Bytes {
    Bytes::copy_from_slice(arg)
}

/// Normalizes Redis-style (possibly negative) start/stop indexes over a
/// sequence of `len`; returns the inclusive range, or None when empty.
pub fn clamp_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut start = if start < 0 { len + start } else { start };
    let mut stop = if stop < 0 { len + stop } else { stop };
    if start < 0 {
        start = 0;
    }
    if start > stop || start >= len {
        return None;
    }
    if stop >= len {
        stop = len - 1;
    }
    Some((start as usize, stop as usize))
}

// ---- resize-safe cursor scans (SCAN, HSCAN, SSCAN, ZSCAN) ----
//
// A cursor names a point in a fixed "slot" space: every element's slot is the
// top `bits` bits of a hash of the element that never changes while the
// process runs. One call returns the elements whose slot lies in a window
// `[start, end)` and hands back `end` as the next cursor, so consecutive
// calls cover the slot space exactly once, in order. An element present for
// the whole scan is therefore always returned (exactly once), however the
// collection grows, shrinks or reorders its storage in between.

/// Hasher for the slots of collection elements (fixed seeds: cursors stay
/// meaningful for the life of the process, and across processes on one CPU).
pub static SCAN_HASHER: ahash::RandomState = ahash::RandomState::with_seeds(1, 2, 3, 4);

/// A slot space for windowed scans: slots are `0..2^bits`, and no window is
/// narrower than `min_width` (which bounds the number of calls of a full scan).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanSpace {
    pub bits: u32,
    pub min_width: u64,
}

impl ScanSpace {
    /// Collections (HSCAN/SSCAN/ZSCAN): cursors are < 2^32 and a full scan
    /// takes at most 65536 calls.
    pub const COLLECTION: ScanSpace = ScanSpace {
        bits: 32,
        min_width: 1 << 16,
    };

    /// Number of slots.
    pub const fn size(self) -> u64 {
        1 << self.bits
    }
}

/// Parses a SCAN-family cursor like Redis's `strtoul` check: optional sign,
/// decimal digits, nothing else (an empty string is 0); None = "invalid cursor".
pub fn parse_scan_cursor(arg: &[u8]) -> Option<u64> {
    let Some(&first) = arg.first() else {
        return Some(0);
    };
    if first.is_ascii_whitespace() || first == 0x0b {
        return None;
    }
    let (neg, digits) = match first {
        b'-' => (true, &arg[1..]),
        b'+' => (false, &arg[1..]),
        _ => (false, arg),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((d - b'0') as u64)?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

/// One step of a windowed scan over `items` (`len` of them).
///
/// `slot_of` maps an item to its slot in `space`; `start` is the first slot of
/// this call's window. The window is sized so that about `count` items fall
/// in it (never narrower than `space.min_width`, never past the end of the
/// space). Items in the window are pushed to `out`. Returns the end of the
/// window: the next `start`, or `space.size()` when the scan is complete.
/// O(len) per call.
pub fn scan_window<T>(
    items: impl IntoIterator<Item = T>,
    len: usize,
    slot_of: impl Fn(&T) -> u64,
    space: ScanSpace,
    start: u64,
    count: usize,
    out: &mut Vec<T>,
) -> u64 {
    let size = space.size();
    let want = (size as u128 * count.max(1) as u128) / (len.max(1) as u128);
    let width = (want.min(size as u128) as u64).max(space.min_width.max(1));
    let end = start.saturating_add(width).min(size);
    if start >= end {
        return size;
    }
    out.extend(items.into_iter().filter(|it| {
        let s = slot_of(it);
        s >= start && s < end
    }));
    end
}

/// HSCAN/SSCAN/ZSCAN helper: one call over a collection whose elements are
/// identified by `key_of` (field / member bytes). `cursor` is the client's
/// cursor (see [`parse_scan_cursor`]). Pushes this call's elements to `out` and
/// returns the next cursor (0 when done), or None when the cursor is out of
/// range (reply "ERR invalid cursor"). A collection with at most `count`
/// elements is returned whole in one call from cursor 0.
pub fn scan_collection<T>(
    items: impl IntoIterator<Item = T>,
    len: usize,
    key_of: impl Fn(&T) -> &[u8],
    cursor: u64,
    count: usize,
    out: &mut Vec<T>,
) -> Option<u64> {
    let space = ScanSpace::COLLECTION;
    if cursor >= space.size() {
        return None;
    }
    let end = scan_window(
        items,
        len,
        |it| SCAN_HASHER.hash_one(key_of(it)) >> (64 - space.bits),
        space,
        cursor,
        count,
        out,
    );
    Some(if end >= space.size() { 0 } else { end })
}

#[cfg(test)]
mod scan_tests {
    use super::*;

    #[test]
    fn cursor_parsing_follows_strtoul() {
        assert_eq!(parse_scan_cursor(b""), Some(0));
        assert_eq!(parse_scan_cursor(b"0"), Some(0));
        assert_eq!(parse_scan_cursor(b"+12"), Some(12));
        assert_eq!(parse_scan_cursor(b"-0"), Some(0));
        assert_eq!(parse_scan_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_scan_cursor(b" 1"), None);
        assert_eq!(parse_scan_cursor(b"1 "), None);
        assert_eq!(parse_scan_cursor(b"abc"), None);
        assert_eq!(parse_scan_cursor(b"+"), None);
        assert_eq!(parse_scan_cursor(b"18446744073709551616"), None);
    }

    #[test]
    fn collection_scan_returns_everything_once_under_changes() {
        let stable: Vec<Vec<u8>> = (0..1000).map(|i| format!("s{i}").into_bytes()).collect();
        let mut set: Vec<Vec<u8>> = stable.clone();
        set.extend((0..4000).map(|i| format!("u{i}").into_bytes()));
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        let mut extra = 0;
        loop {
            let mut out = Vec::new();
            cursor =
                scan_collection(set.iter(), set.len(), |m| &m[..], cursor, 10, &mut out).unwrap();
            for m in out {
                assert!(seen.insert(m.clone()), "duplicate");
            }
            calls += 1;
            // Churn: remove from the unstable part, add new members, reorder.
            if let Some(i) = set.iter().position(|m| m[0] != b's') {
                set.swap_remove(i);
            }
            set.push(format!("x{extra}").into_bytes());
            extra += 1;
            let last = set.len() - 1;
            set.swap(0, last);
            if cursor == 0 {
                break;
            }
        }
        assert!(calls > 100 && calls < 5000, "calls {calls}");
        for m in &stable {
            assert!(seen.contains(m), "missed {}", String::from_utf8_lossy(m));
        }
    }

    #[test]
    fn small_collections_come_back_whole() {
        let items = [b"a".as_slice(), b"b", b"c"];
        let mut out = Vec::new();
        assert_eq!(
            scan_collection(items.iter(), 3, |m| m, 0, 10, &mut out),
            Some(0)
        );
        assert_eq!(out.len(), 3);
        assert_eq!(
            scan_collection(items.iter(), 3, |m| m, 1 << 32, 10, &mut out),
            None
        );
    }
}
