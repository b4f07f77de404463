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
