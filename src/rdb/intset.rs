//! Intsets (Redis's encoding of small all-integer sets), read into their
//! members.

/// The members of an intset as decimal text: a 32-bit width (2, 4 or 8
/// bytes), a 32-bit count, then the members strictly ascending, little-endian.
pub fn entries(is: &[u8]) -> Option<Vec<Vec<u8>>> {
    if is.len() < 8 {
        return None;
    }
    let enc = u32::from_le_bytes(is[0..4].try_into().ok()?) as usize;
    let n = u32::from_le_bytes(is[4..8].try_into().ok()?) as usize;
    if !matches!(enc, 2 | 4 | 8) || is.len() != 8 + n.checked_mul(enc)? {
        return None;
    }
    let mut out = Vec::with_capacity(n);
    let mut prev: Option<i64> = None;
    for c in is[8..].chunks(enc) {
        let mut buf = [0u8; 8];
        buf[..enc].copy_from_slice(c);
        let shift = 64 - 8 * enc as u32;
        let v = (i64::from_le_bytes(buf) << shift) >> shift;
        if prev.is_some_and(|p| p >= v) {
            return None;
        }
        prev = Some(v);
        out.push(v.to_string().into_bytes());
    }
    Some(out)
}

/// An intset of `values` in the narrowest width that holds them all.
#[cfg(test)]
pub fn encode(values: &[i64]) -> Vec<u8> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let width: usize = if sorted.iter().all(|v| i16::try_from(*v).is_ok()) {
        2
    } else if sorted.iter().all(|v| i32::try_from(*v).is_ok()) {
        4
    } else {
        8
    };
    let mut is = (width as u32).to_le_bytes().to_vec();
    is.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    for v in sorted {
        is.extend_from_slice(&v.to_le_bytes()[..width]);
    }
    is
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(values: &[i64]) -> Vec<Vec<u8>> {
        values.iter().map(|v| v.to_string().into_bytes()).collect()
    }

    #[test]
    fn reads_an_intset_written_by_redis() {
        // SADD si 1 2 300, dumped by redis-server 7.0.15 (the intset inside).
        let is = [2, 0, 0, 0, 3, 0, 0, 0, 1, 0, 2, 0, 0x2c, 0x01];
        assert_eq!(entries(&is).unwrap(), texts(&[1, 2, 300]));
        assert_eq!(encode(&[300, 1, 2]), is);
    }

    #[test]
    fn every_width_round_trips() {
        for values in [
            vec![-32768, -1, 0, 32767],
            vec![-2147483648, 5, 2147483647],
            vec![i64::MIN, -40_000, 0, i64::MAX],
        ] {
            let is = encode(&values);
            assert_eq!(entries(&is).unwrap(), texts(&values));
        }
        assert_eq!(encode(&[1, 70_000])[0], 4);
        assert_eq!(encode(&[1, 1 << 40])[0], 8);
    }

    #[test]
    fn rejects_damaged_intsets() {
        let good = encode(&[1, 2, 3]);
        assert!(entries(&good).is_some());
        assert_eq!(entries(&good[..7]), None);
        // A width other than 2, 4 or 8.
        let mut bad = good.clone();
        bad[0] = 3;
        assert_eq!(entries(&bad), None);
        // A count the bytes do not hold.
        let mut bad = good.clone();
        bad[4] = 4;
        assert_eq!(entries(&bad), None);
        assert_eq!(entries(&good[..good.len() - 1]), None);
        // Out of order, and a duplicate.
        let mut bad = good.clone();
        bad[8..10].copy_from_slice(&9i16.to_le_bytes());
        assert_eq!(entries(&bad), None);
        let mut bad = good.clone();
        bad[10..12].copy_from_slice(&1i16.to_le_bytes());
        assert_eq!(entries(&bad), None);
        // A count that overflows the length computation.
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(entries(&bad), None);
    }

    #[test]
    fn an_empty_intset_has_no_members() {
        assert_eq!(entries(&encode(&[])).unwrap(), Vec::<Vec<u8>>::new());
    }
}
