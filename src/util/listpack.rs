//! The byte sizes of Redis's listpack entries (`lpEncodeBacklen`, the
//! integer and string encodings `lpEncodeGetType` picks): the stream
//! nodes' bookkeeping (`engine/stream.rs`) and the DUMP encoder
//! (`rdb/listpack.rs`) both follow them.

use super::number::parse_i64;

/// How many bytes the back-length of an entry of `len` bytes takes.
pub fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Size of an integer entry (encoding + back-length).
pub fn int_size(v: i64) -> usize {
    let l = match v {
        0..=127 => 1,
        -4096..=4095 => 2,
        -32768..=32767 => 3,
        -8388608..=8388607 => 4,
        -2147483648..=2147483647 => 5,
        _ => 9,
    };
    l + backlen_size(l)
}

/// Size of a string entry: one that is an integer in canonical form
/// (`lpStringToInt64`, the rules of `string2ll`) is stored as that integer.
pub fn str_size(s: &[u8]) -> usize {
    if let Some(v) = parse_i64(s) {
        return int_size(v);
    }
    let l = match s.len() {
        0..=63 => 1 + s.len(),
        64..=4095 => 2 + s.len(),
        n => 5 + n,
    };
    l + backlen_size(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_redis_encodings() {
        assert_eq!(int_size(0), 2);
        assert_eq!(int_size(127), 2);
        assert_eq!(int_size(128), 3);
        assert_eq!(str_size(b"12"), 2);
        assert_eq!(str_size(b"012"), 5);
        assert_eq!(str_size(b"abc"), 5);
    }
}
