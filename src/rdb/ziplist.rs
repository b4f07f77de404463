//! Ziplists (the compact encoding of small lists, hashes and sorted sets
//! before Redis 7, and of quicklist nodes in RDB 9), read into their elements.

/// The elements of a ziplist (strings; integers as their decimal text).
///
/// The total length, the terminator, the element count (unless 65535,
/// "unknown") and every entry's bounds are checked; the previous-entry
/// lengths and the tail offset are skipped, not verified.
pub fn entries(zl: &[u8]) -> Option<Vec<Vec<u8>>> {
    if zl.len() < 11 {
        return None;
    }
    let total = u32::from_le_bytes(zl[0..4].try_into().ok()?) as usize;
    if total != zl.len() || *zl.last()? != 0xff {
        return None;
    }
    let count = u16::from_le_bytes(zl[8..10].try_into().ok()?) as usize;
    let mut out = Vec::new();
    let mut p = 10;
    loop {
        let b = *zl.get(p)?;
        if b == 0xff {
            break;
        }
        // The previous entry's length: one byte, or 0xfe and four more.
        p += if b < 254 { 1 } else { 5 };
        let (entry, len) = entry_at(zl, p)?;
        p = p.checked_add(len)?;
        if p >= zl.len() {
            return None;
        }
        out.push(entry);
    }
    if p != zl.len() - 1 || (count != 65535 && count != out.len()) {
        return None;
    }
    Some(out)
}

/// The entry whose encoding byte is at `p`, and its length (encoding and data).
fn entry_at(zl: &[u8], p: usize) -> Option<(Vec<u8>, usize)> {
    let e = *zl.get(p)?;
    let int_at = |at: usize, n: usize| -> Option<i64> {
        let s = zl.get(at..at + n)?;
        let mut buf = [0u8; 8];
        buf[..n].copy_from_slice(s);
        let shift = 64 - 8 * n as u32;
        Some((i64::from_le_bytes(buf) << shift) >> shift)
    };
    Some(match e >> 6 {
        0 => {
            let n = (e & 0x3f) as usize;
            (zl.get(p + 1..p + 1 + n)?.to_vec(), 1 + n)
        }
        1 => {
            let n = (((e & 0x3f) as usize) << 8) | *zl.get(p + 1)? as usize;
            (zl.get(p + 2..p + 2 + n)?.to_vec(), 2 + n)
        }
        2 => {
            let n = u32::from_be_bytes(zl.get(p + 1..p + 5)?.try_into().ok()?) as usize;
            (zl.get(p + 5..p + 5 + n)?.to_vec(), 5 + n)
        }
        _ => {
            let v = match e {
                0xc0 => (int_at(p + 1, 2)?, 3),
                0xd0 => (int_at(p + 1, 4)?, 5),
                0xe0 => (int_at(p + 1, 8)?, 9),
                0xf0 => (int_at(p + 1, 3)?, 4),
                0xfe => (int_at(p + 1, 1)?, 2),
                0xf1..=0xfd => ((e & 0x0f) as i64 - 1, 1),
                _ => return None,
            };
            (v.0.to_string().into_bytes(), v.1)
        }
    })
}

/// A ziplist of `elems` with Redis's choice of encodings (zipTryEncoding:
/// integers in the smallest integer form, strings by length).
#[cfg(test)]
pub fn encode(elems: &[&[u8]]) -> Vec<u8> {
    let mut zl = vec![0u8; 10];
    let mut prev_len = 0usize;
    let mut tail = 10;
    for e in elems {
        let start = zl.len();
        tail = start;
        if prev_len < 254 {
            zl.push(prev_len as u8);
        } else {
            zl.push(0xfe);
            zl.extend_from_slice(&(prev_len as u32).to_le_bytes());
        }
        encode_entry(&mut zl, e);
        prev_len = zl.len() - start;
    }
    zl.push(0xff);
    let total = zl.len() as u32;
    zl[0..4].copy_from_slice(&total.to_le_bytes());
    zl[4..8].copy_from_slice(&(tail as u32).to_le_bytes());
    zl[8..10].copy_from_slice(&(elems.len().min(65535) as u16).to_le_bytes());
    zl
}

#[cfg(test)]
fn encode_entry(out: &mut Vec<u8>, e: &[u8]) {
    if let Some(v) = crate::util::number::parse_i64(e) {
        let le = v.to_le_bytes();
        match v {
            0..=12 => out.push(0xf1 + v as u8),
            -128..=127 => out.extend_from_slice(&[0xfe, le[0]]),
            -32768..=32767 => out.extend_from_slice(&[0xc0, le[0], le[1]]),
            -8388608..=8388607 => out.extend_from_slice(&[0xf0, le[0], le[1], le[2]]),
            -2147483648..=2147483647 => out.extend_from_slice(&[0xd0, le[0], le[1], le[2], le[3]]),
            _ => {
                out.push(0xe0);
                out.extend_from_slice(&le);
            }
        }
        return;
    }
    match e.len() {
        0..=63 => out.push(e.len() as u8),
        64..=16383 => out.extend_from_slice(&[0x40 | (e.len() >> 8) as u8, e.len() as u8]),
        _ => {
            out.push(0x80);
            out.extend_from_slice(&(e.len() as u32).to_be_bytes());
        }
    }
    out.extend_from_slice(e);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_hand_built_ziplist() {
        // {a, 5}: header, "a" (prevlen 0, 6-bit string), 5 (prevlen 3, immediate).
        let mut zl = vec![16, 0, 0, 0, 13, 0, 0, 0, 2, 0];
        zl.extend_from_slice(&[0x00, 0x01, b'a', 0x03, 0xf6, 0xff]);
        assert_eq!(entries(&zl).unwrap(), vec![b"a".to_vec(), b"5".to_vec()]);
        assert_eq!(encode(&[b"a", b"5"]), zl);
    }

    #[test]
    fn every_entry_encoding_round_trips() {
        let big = vec![b'b'; 20_000];
        let mid = vec![b'm'; 300];
        let elems: Vec<&[u8]> = vec![
            b"0",
            b"12",
            b"13",
            b"-1",
            b"-128",
            b"127",
            b"-32768",
            b"32767",
            b"-8388608",
            b"8388607",
            b"-2147483648",
            b"2147483647",
            b"9223372036854775807",
            b"-9223372036854775808",
            b"",
            b"text",
            b"+1",
            &mid,
            &big,
            b"after a long entry",
        ];
        let zl = encode(&elems);
        let back = entries(&zl).unwrap();
        assert_eq!(back.len(), elems.len());
        for (got, want) in back.iter().zip(&elems) {
            assert_eq!(got.as_slice(), *want);
        }
    }

    #[test]
    fn an_unknown_count_is_accepted() {
        let mut zl = encode(&[b"a", b"b", b"c"]);
        zl[8..10].copy_from_slice(&65535u16.to_le_bytes());
        assert_eq!(entries(&zl).unwrap().len(), 3);
    }

    #[test]
    fn rejects_damaged_ziplists() {
        let good = encode(&[b"a", b"300"]);
        assert!(entries(&good).is_some());
        assert_eq!(entries(&good[..10]), None);
        let mut bad = good.clone();
        bad[0] -= 1;
        assert_eq!(entries(&bad), None);
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 0;
        assert_eq!(entries(&bad), None);
        let mut bad = good.clone();
        bad[8] = 1;
        assert_eq!(entries(&bad), None);
        // A string running past the end.
        let mut bad = good.clone();
        bad[11] = 30;
        assert_eq!(entries(&bad), None);
        // An integer encoding that does not exist (0xf0 | 0x0f is the end mark).
        let mut bad = good.clone();
        bad[11] = 0xff;
        assert_eq!(entries(&bad), None);
    }
}
