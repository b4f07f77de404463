//! LZF decompression in liblzf's format, as Redis stores compressed strings.
//!
//! jcache never compresses what it dumps (Redis accepts uncompressed
//! strings), so only the decoder is compiled into the server; the tests carry
//! a small compressor to produce round trips.

/// The most bytes one input byte of LZF can expand to: a long back-reference
/// is 3 bytes long and copies at most 7 + 255 + 2 = 264 bytes.
pub const MAX_EXPANSION: usize = 264 / 3;

/// LZF decompression (liblzf's format, as Redis uses); the output must be exactly `ulen` bytes.
///
/// `ulen` comes from the payload, so it is checked against what `input` can
/// possibly expand to before anything is allocated, and the allocation is
/// fallible: a forged length is `Bad data format`, never an abort.
pub fn decompress(input: &[u8], ulen: usize) -> Option<Vec<u8>> {
    if ulen == 0 || ulen > input.len().checked_mul(MAX_EXPANSION)? {
        return None;
    }
    let mut out: Vec<u8> = Vec::new();
    out.try_reserve_exact(ulen).ok()?;
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = input[ip] as usize;
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            if out.len() + n > ulen {
                return None;
            }
            out.extend_from_slice(input.get(ip..ip + n)?);
            ip += n;
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += *input.get(ip)? as usize;
                ip += 1;
            }
            let back = ((ctrl & 0x1f) << 8) + *input.get(ip)? as usize + 1;
            ip += 1;
            n += 2;
            if out.len() + n > ulen || back > out.len() {
                return None;
            }
            let from = out.len() - back;
            for k in 0..n {
                let b = out[from + k];
                out.push(b);
            }
        }
    }
    (out.len() == ulen && ulen > 0).then_some(out)
}

/// A greedy LZF compressor (liblzf's format, not its exact choices): literal
/// runs of up to 32 bytes, back-references of 3 to 264 bytes at a distance of
/// up to 8192.
#[cfg(test)]
pub fn compress(input: &[u8]) -> Vec<u8> {
    use std::collections::HashMap;

    fn flush_literals(out: &mut Vec<u8>, literals: &mut Vec<u8>) {
        for run in literals.chunks(32) {
            out.push(run.len() as u8 - 1);
            out.extend_from_slice(run);
        }
        literals.clear();
    }

    let mut out = Vec::new();
    let mut literals = Vec::new();
    let mut last_seen: HashMap<&[u8], usize> = HashMap::new();
    let mut i = 0;
    while i < input.len() {
        let prefix = input.get(i..i + 3);
        let candidate = prefix.and_then(|p| last_seen.insert(p, i));
        if let Some(from) = candidate.filter(|&from| i - from <= 8192) {
            let mut n = 3;
            while n < 264 && i + n < input.len() && input[from + n] == input[i + n] {
                n += 1;
            }
            flush_literals(&mut out, &mut literals);
            let offset = i - from - 1;
            if n - 2 < 7 {
                out.push((((n - 2) << 5) | (offset >> 8)) as u8);
            } else {
                out.push(((7 << 5) | (offset >> 8)) as u8);
                out.push((n - 2 - 7) as u8);
            }
            out.push(offset as u8);
            for k in i + 1..i + n {
                if let Some(p) = input.get(k..k + 3) {
                    last_seen.insert(p, k);
                }
            }
            i += n;
        } else {
            literals.push(input[i]);
            i += 1;
        }
    }
    flush_literals(&mut out, &mut literals);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic bytes with no repeats worth a back-reference.
    fn noise(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect()
    }

    fn round_trip(input: &[u8]) -> Vec<u8> {
        let packed = compress(input);
        decompress(&packed, input.len()).expect("a compressed input decompresses")
    }

    #[test]
    fn decompresses_a_string_compressed_by_redis() {
        // DUMP of "a" x 40 + "hello" from redis-server 7.0.15: clen 12, ulen 45.
        let packed = [
            0x01, 0x61, 0x61, 0xe0, 0x1d, 0x00, 0x04, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
        ];
        let mut want = vec![b'a'; 40];
        want.extend_from_slice(b"hello");
        assert_eq!(decompress(&packed, 45).unwrap(), want);
    }

    #[test]
    fn round_trip_literal_and_backref() {
        // "aaaaaaaaaa": literal 'a', then a back-reference of length 9 at distance 1.
        let input = [0x00, b'a', 0xe0, 0x00, 0x00];
        assert_eq!(decompress(&input, 10).unwrap(), b"aaaaaaaaaa".to_vec());
        assert_eq!(round_trip(b"aaaaaaaaaa"), b"aaaaaaaaaa".to_vec());
    }

    #[test]
    fn round_trips_repetitive_text_and_shrinks_it() {
        let input = b"the quick brown fox jumps over the lazy dog; ".repeat(50);
        let packed = compress(&input);
        assert!(packed.len() < input.len() / 10, "{} bytes", packed.len());
        assert_eq!(decompress(&packed, input.len()).unwrap(), input);
    }

    #[test]
    fn round_trips_incompressible_input() {
        for len in [1, 2, 31, 32, 33, 64, 1000] {
            let input = noise(len);
            let packed = compress(&input);
            // Literal runs only: one control byte per 32 bytes.
            assert_eq!(packed.len(), len + len.div_ceil(32), "len {len}");
            assert_eq!(decompress(&packed, len).unwrap(), input, "len {len}");
        }
    }

    #[test]
    fn round_trips_the_longest_expansion() {
        // Zeros compress to back-references of 264 bytes: 88 bytes out per byte in.
        let input = vec![0u8; 100_000];
        assert_eq!(round_trip(&input), input);
        let mut mixed = noise(5000);
        mixed.extend_from_slice(&[7u8; 3000]);
        mixed.extend_from_slice(&noise(100));
        assert_eq!(round_trip(&mixed), mixed);
    }

    #[test]
    fn rejects_lengths_its_input_cannot_produce() {
        let input = [0x00, b'a', 0xe0, 0x00, 0x00];
        // 2^62 bytes used to be allocated up front and abort the process.
        assert_eq!(decompress(&input, 1 << 62), None);
        assert_eq!(decompress(&input, usize::MAX), None);
        assert_eq!(decompress(&input, input.len() * MAX_EXPANSION + 1), None);
        assert_eq!(decompress(&input, 0), None);
        // The longest possible expansion is still accepted.
        let mut long = vec![0x00, b'a'];
        long.extend_from_slice(&[0xe0, 0xff, 0x00]);
        assert_eq!(decompress(&long, 1 + 264).unwrap(), vec![b'a'; 265]);
    }

    #[test]
    fn rejects_a_length_other_than_the_output() {
        let input = [0x00, b'a', 0xe0, 0x00, 0x00];
        assert_eq!(decompress(&input, 9), None);
        assert_eq!(decompress(&input, 11), None);
    }

    #[test]
    fn rejects_truncated_input() {
        // A literal run of 4 with 2 bytes; a long back-reference without its offset.
        assert_eq!(decompress(&[0x03, b'a', b'b'], 4), None);
        assert_eq!(decompress(&[0x00, b'a', 0xe0, 0x00], 10), None);
        assert_eq!(decompress(&[0x00, b'a', 0x20], 3), None);
    }

    #[test]
    fn rejects_a_back_reference_before_the_output() {
        // Distance 2 with one byte written so far.
        assert_eq!(decompress(&[0x00, b'a', 0x20, 0x01], 4), None);
        // A back-reference first of all.
        assert_eq!(decompress(&[0x20, 0x00], 3), None);
    }
}
