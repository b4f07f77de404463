//! Listpacks (Redis 7's compact encoding of small hashes, sorted sets and
//! quicklist nodes), read into their elements.

use crate::util::listpack::backlen_size;

/// The elements of a listpack (strings; integers as their decimal text).
///
/// The total length, the terminator, the element count (unless 65535,
/// "unknown") and every entry's bounds are checked; the back-lengths are
/// skipped, not verified.
pub fn entries(lp: &[u8]) -> Option<Vec<Vec<u8>>> {
    if lp.len() < 7 {
        return None;
    }
    let total = u32::from_le_bytes(lp[0..4].try_into().ok()?) as usize;
    if total != lp.len() || *lp.last()? != 0xff {
        return None;
    }
    let count = u16::from_le_bytes(lp[4..6].try_into().ok()?) as usize;
    let mut out = Vec::new();
    let mut p = 6;
    loop {
        let b = *lp.get(p)?;
        if b == 0xff {
            break;
        }
        let (entry, len) = entry_at(lp, p)?;
        p = p.checked_add(len + backlen_size(len))?;
        if p >= lp.len() {
            return None;
        }
        out.push(entry);
    }
    if p != lp.len() - 1 || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

/// The entry starting at `p` and its length (encoding byte(s) and data,
/// without the back-length).
fn entry_at(lp: &[u8], p: usize) -> Option<(Vec<u8>, usize)> {
    let b = lp[p];
    let int_at = |n: usize| -> Option<i64> {
        let s = lp.get(p + 1..p + 1 + n)?;
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(s);
        let v = i64::from_le_bytes(buf);
        let shift = 64 - 8 * n as u32;
        Some((v << shift) >> shift)
    };
    Some(if b & 0x80 == 0 {
        ((b & 0x7f).to_string().into_bytes(), 1)
    } else if b & 0xc0 == 0x80 {
        let n = (b & 0x3f) as usize;
        (lp.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
    } else if b & 0xe0 == 0xc0 {
        let raw = (((b & 0x1f) as u16) << 8) | *lp.get(p + 1)? as u16;
        let v = ((raw << 3) as i16) >> 3;
        (v.to_string().into_bytes(), 2)
    } else if b & 0xf0 == 0xe0 {
        let n = (((b & 0x0f) as usize) << 8) | *lp.get(p + 1)? as usize;
        (lp.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
    } else {
        match b {
            0xf0 => {
                let n = u32::from_le_bytes(lp.get(p + 1..p + 5)?.try_into().ok()?) as usize;
                (lp.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
            }
            0xf1 => (int_at(2)?.to_string().into_bytes(), 3),
            0xf2 => (int_at(3)?.to_string().into_bytes(), 4),
            0xf3 => (int_at(4)?.to_string().into_bytes(), 5),
            0xf4 => (int_at(8)?.to_string().into_bytes(), 9),
            _ => return None,
        }
    })
}

/// A listpack of `elems` with Redis's choice of encodings (integers in the
/// smallest integer form, strings in the smallest string form).
pub fn encode(elems: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for e in elems {
        let start = body.len();
        encode_entry(&mut body, e);
        let len = body.len() - start;
        // lpEncodeBacklen: 7 bits a byte, the highest first and unflagged.
        let n = backlen_size(len);
        let back: Vec<u8> = (0..n)
            .map(|i| {
                let group = ((len >> (7 * (n - 1 - i))) & 0x7f) as u8;
                if i > 0 {
                    group | 0x80
                } else {
                    group
                }
            })
            .collect();
        body.extend_from_slice(&back);
    }
    let total = 4 + 2 + body.len() + 1;
    let mut lp = (total as u32).to_le_bytes().to_vec();
    lp.extend_from_slice(&(elems.len().min(65535) as u16).to_le_bytes());
    lp.extend_from_slice(&body);
    lp.push(0xff);
    lp
}

fn encode_entry(out: &mut Vec<u8>, e: &[u8]) {
    if let Some(v) = crate::util::number::parse_i64(e) {
        let le = v.to_le_bytes();
        match v {
            0..=127 => out.push(v as u8),
            -4096..=4095 => {
                let raw = (v as u16) & 0x1fff;
                out.push(0xc0 | (raw >> 8) as u8);
                out.push(raw as u8);
            }
            -32768..=32767 => out.extend_from_slice(&[0xf1, le[0], le[1]]),
            -8388608..=8388607 => out.extend_from_slice(&[0xf2, le[0], le[1], le[2]]),
            -2147483648..=2147483647 => out.extend_from_slice(&[0xf3, le[0], le[1], le[2], le[3]]),
            _ => {
                out.push(0xf4);
                out.extend_from_slice(&le);
            }
        }
        return;
    }
    match e.len() {
        0..=63 => out.push(0x80 | e.len() as u8),
        64..=4095 => out.extend_from_slice(&[0xe0 | (e.len() >> 8) as u8, e.len() as u8]),
        _ => {
            out.push(0xf0);
            out.extend_from_slice(&(e.len() as u32).to_le_bytes());
        }
    }
    out.extend_from_slice(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HSET h f v n 7, dumped by redis-server 7.0.15 (the listpack inside).
    const REDIS_HASH: [u8; 18] = [
        0x12, 0x00, 0x00, 0x00, 0x04, 0x00, 0x81, 0x66, 0x02, 0x81, 0x76, 0x02, 0x81, 0x6e, 0x02,
        0x07, 0x01, 0xff,
    ];

    #[test]
    fn reads_a_listpack_written_by_redis() {
        let want: Vec<Vec<u8>> = vec![b"f".to_vec(), b"v".to_vec(), b"n".to_vec(), b"7".to_vec()];
        assert_eq!(entries(&REDIS_HASH).unwrap(), want);
        assert_eq!(encode(&[b"f", b"v", b"n", b"7"]), REDIS_HASH);
    }

    #[test]
    fn every_entry_encoding_round_trips() {
        let long_str = vec![b's'; 5000];
        let mid_str = vec![b'm'; 300];
        let elems: Vec<&[u8]> = vec![
            b"0",
            b"127",
            b"128",
            b"-1",
            b"-4096",
            b"4095",
            b"-32768",
            b"32767",
            b"-8388608",
            b"8388607",
            b"-2147483648",
            b"2147483647",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"",
            b"hello",
            b"007",
            &mid_str,
            &long_str,
        ];
        let lp = encode(&elems);
        let back = entries(&lp).unwrap();
        assert_eq!(back.len(), elems.len());
        for (got, want) in back.iter().zip(&elems) {
            assert_eq!(got.as_slice(), *want);
        }
    }

    #[test]
    fn integer_entries_use_their_smallest_encoding() {
        // 7-bit, 13-bit, 16-bit, 24-bit, 32-bit and 64-bit integers.
        let first_byte = |e: &[u8]| encode(&[e])[6];
        assert_eq!(first_byte(b"5"), 5);
        assert_eq!(first_byte(b"-5") & 0xe0, 0xc0);
        assert_eq!(first_byte(b"5000"), 0xf1);
        assert_eq!(first_byte(b"100000"), 0xf2);
        assert_eq!(first_byte(b"10000000"), 0xf3);
        assert_eq!(first_byte(b"10000000000"), 0xf4);
    }

    #[test]
    fn an_unknown_count_is_accepted() {
        let mut lp = encode(&[b"a", b"b"]);
        lp[4..6].copy_from_slice(&65535u16.to_le_bytes());
        assert_eq!(entries(&lp).unwrap().len(), 2);
    }

    #[test]
    fn rejects_damaged_listpacks() {
        let good = encode(&[b"a", b"12"]);
        assert!(entries(&good).is_some());
        // Too short to hold a header and terminator.
        assert_eq!(entries(&good[..6]), None);
        // A total length other than the real one.
        let mut bad = good.clone();
        bad[0] += 1;
        assert_eq!(entries(&bad), None);
        // No terminator.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0x00;
        assert_eq!(entries(&bad), None);
        // A count that does not match.
        let mut bad = good.clone();
        bad[4] = 3;
        assert_eq!(entries(&bad), None);
        // A string running past the end.
        let mut bad = good.clone();
        bad[6] = 0x80 | 20;
        assert_eq!(entries(&bad), None);
        // The reserved encoding byte.
        let mut bad = good.clone();
        bad[6] = 0xf5;
        assert_eq!(entries(&bad), None);
    }

    #[test]
    fn entries_take_the_sizes_the_stream_bookkeeping_counts() {
        let long = vec![b'x'; 5000];
        for e in [
            &b"0"[..],
            b"127",
            b"128",
            b"-4096",
            b"70000",
            b"-9000000000",
            b"012",
            b"abc",
            &long,
        ] {
            // A listpack is a 6-byte header, its entries and the 0xff end.
            assert_eq!(
                encode(&[e]).len(),
                7 + crate::util::listpack::str_size(e),
                "{e:?}"
            );
        }
    }

    #[test]
    fn an_empty_listpack_has_no_entries() {
        assert_eq!(entries(&encode(&[])).unwrap(), Vec::<Vec<u8>>::new());
    }
}
