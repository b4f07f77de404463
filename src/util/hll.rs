//! Redis 7.0's HyperLogLog as bytes (`hyperloglog.c`): the 16-byte header,
//! the sparse (ZERO / XZERO / VAL opcodes) and dense (16384 6-bit registers)
//! representations, MurmurHash64A with seed 0xadc83b19, and Ertl's
//! estimator. Pure: every function works on the string value itself, so a
//! value written here is byte for byte what Redis would store, and any byte
//! string (a corrupted one included) is handled without a panic.

/// Header: "HYLL", encoding, 3 unused bytes, 8-byte cached cardinality.
pub const HDR: usize = 16;
pub const P: u32 = 14;
pub const REGISTERS: usize = 1 << P;
const Q: u32 = 64 - P;
const REGISTER_MAX: u8 = 63;
/// Size of a dense value.
pub const DENSE_SIZE: usize = HDR + (REGISTERS * 6).div_ceil(8);
pub const DENSE: u8 = 0;
pub const SPARSE: u8 = 1;

const VAL_MAX_VALUE: u8 = 32;
const VAL_MAX_LEN: usize = 4;
const ZERO_MAX_LEN: usize = 64;
const XZERO_MAX_LEN: usize = 16384;
const ALPHA_INF: f64 = 0.721_347_520_444_481_7;

/// The value is not a well-formed HLL (Redis's `-INVALIDOBJ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corrupt;

/// Redis's MurmurHash64A (little-endian reads).
pub fn murmur64a(key: &[u8], seed: u64) -> u64 {
    const M: u64 = 0xc6a4_a793_5bd1_e995;
    const R: u32 = 47;
    let len = key.len();
    let mut h: u64 = seed ^ (len as u64).wrapping_mul(M);
    let mut chunks = key.chunks_exact(8);
    for c in &mut chunks {
        let mut k = u64::from_le_bytes(c.try_into().unwrap());
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h ^= k;
        h = h.wrapping_mul(M);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        for (i, &b) in rest.iter().enumerate() {
            h ^= (b as u64) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> R;
    h = h.wrapping_mul(M);
    h ^= h >> R;
    h
}

/// The register an element maps to and its run length of zeroes + 1.
pub fn pat_len(ele: &[u8]) -> (usize, u8) {
    let mut hash = murmur64a(ele, 0xadc8_3b19);
    let index = (hash & (REGISTERS as u64 - 1)) as usize;
    hash >>= P;
    hash |= 1u64 << Q;
    (index, hash.trailing_zeros() as u8 + 1)
}

/// Whether `v` passes Redis's `isHLLObjectOrReply` checks.
pub fn is_valid(v: &[u8]) -> bool {
    v.len() >= HDR
        && &v[..4] == b"HYLL"
        && v[4] <= SPARSE
        && (v[4] != DENSE || v.len() == DENSE_SIZE)
}

/// A new, empty sparse HLL (XZERO opcodes covering every register).
pub fn new_sparse() -> Vec<u8> {
    let mut v = vec![0u8; HDR];
    v[..4].copy_from_slice(b"HYLL");
    v[4] = SPARSE;
    let mut left = REGISTERS;
    while left > 0 {
        let n = left.min(XZERO_MAX_LEN);
        push_xzero(&mut v, n);
        left -= n;
    }
    v
}

fn push_xzero(v: &mut Vec<u8>, len: usize) {
    let l = len - 1;
    v.push((l >> 8) as u8 | 0x40);
    v.push((l & 0xff) as u8);
}

fn val_op(val: u8, len: usize) -> u8 {
    ((val - 1) << 2 | (len as u8 - 1)) | 0x80
}

pub fn invalidate_cache(v: &mut [u8]) {
    v[15] |= 0x80;
}

/// The cached cardinality, if valid.
pub fn cached(v: &[u8]) -> Option<u64> {
    (v[15] & 0x80 == 0).then(|| u64::from_le_bytes(v[8..16].try_into().unwrap()))
}

// ---- dense registers ----

/// Register `i` of a dense register array (the byte past the end reads as
/// 0, like the C string's terminator).
pub fn dense_get(regs: &[u8], i: usize) -> u8 {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let b0 = regs[byte] as u32;
    let b1 = regs.get(byte + 1).copied().unwrap_or(0) as u32;
    (((b0 >> fb) | (b1 << (8 - fb))) & REGISTER_MAX as u32) as u8
}

pub fn dense_put(regs: &mut [u8], i: usize, val: u8) {
    let byte = i * 6 / 8;
    let fb = (i * 6) & 7;
    let v = val as u32;
    regs[byte] &= !((REGISTER_MAX as u32) << fb) as u8;
    regs[byte] |= (v << fb) as u8;
    if let Some(b) = regs.get_mut(byte + 1) {
        *b &= !((REGISTER_MAX as u32) >> (8 - fb)) as u8;
        *b |= (v >> (8 - fb)) as u8;
    }
}

fn dense_set(regs: &mut [u8], i: usize, count: u8) -> bool {
    if count > dense_get(regs, i) {
        dense_put(regs, i, count);
        true
    } else {
        false
    }
}

// ---- sparse opcodes ----

#[derive(Clone, Copy)]
enum Op {
    Zero(usize),
    XZero(usize),
    Val(u8, usize),
}

/// The opcode at `p` and its length in bytes (an XZERO cut by the end reads
/// its second byte as 0, as Redis reads the terminator).
fn op_at(v: &[u8], p: usize) -> (Op, usize) {
    let b = v[p];
    if b & 0xc0 == 0 {
        (Op::Zero((b & 0x3f) as usize + 1), 1)
    } else if b & 0x80 == 0 {
        let b2 = v.get(p + 1).copied().unwrap_or(0) as usize;
        (Op::XZero((((b & 0x3f) as usize) << 8 | b2) + 1), 2)
    } else {
        (Op::Val(((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1), 1)
    }
}

/// Converts a sparse HLL to dense in place (a dense one is left alone).
pub fn to_dense(v: &mut Vec<u8>) -> Result<(), Corrupt> {
    if v[4] == DENSE {
        return Ok(());
    }
    let mut dense = vec![0u8; DENSE_SIZE];
    dense[..HDR].copy_from_slice(&v[..HDR]);
    dense[4] = DENSE;
    let mut idx = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let (op, n) = op_at(v, p);
        match op {
            Op::Zero(l) | Op::XZero(l) => idx += l,
            Op::Val(val, l) => {
                if l + idx > REGISTERS {
                    break;
                }
                for _ in 0..l {
                    dense_put(&mut dense[HDR..], idx, val);
                    idx += 1;
                }
            }
        }
        p += n;
    }
    if idx != REGISTERS {
        return Err(Corrupt);
    }
    *v = dense;
    Ok(())
}

/// Sets register `index` to `count` if larger (Redis's `hllSparseSet`),
/// promoting to dense when the value or the size needs it. Ok(true) when
/// the value changed.
fn sparse_set(v: &mut Vec<u8>, index: usize, count: u8, max_bytes: usize) -> Result<bool, Corrupt> {
    if count > VAL_MAX_VALUE {
        return promote(v, index, count);
    }
    let end = v.len();
    let mut p = HDR;
    let mut first = 0usize;
    let mut prev: Option<usize> = None;
    let mut span = 0usize;
    let mut cur = Op::Zero(0);
    let mut oplen = 1;
    while p < end {
        let (op, n) = op_at(v, p);
        span = match op {
            Op::Zero(l) | Op::XZero(l) | Op::Val(_, l) => l,
        };
        cur = op;
        oplen = n;
        if index < first + span {
            break;
        }
        prev = Some(p);
        p += n;
        first += span;
    }
    if span == 0 || p >= end {
        return Err(Corrupt);
    }
    let next = (p + oplen < end).then_some(p + oplen);
    let mut end = end;
    let changed_in_place = match cur {
        Op::Val(old, _) if old >= count => return Ok(false),
        Op::Val(_, 1) | Op::Zero(1) => {
            v[p] = val_op(count, 1);
            true
        }
        _ => false,
    };
    if !changed_in_place {
        let mut seq: smallvec_like::Seq = smallvec_like::Seq::default();
        let last = first + span - 1;
        match cur {
            Op::Zero(_) | Op::XZero(_) => {
                let zeros = |seq: &mut smallvec_like::Seq, len: usize| {
                    if len > ZERO_MAX_LEN {
                        let l = len - 1;
                        seq.push((l >> 8) as u8 | 0x40);
                        seq.push((l & 0xff) as u8);
                    } else {
                        seq.push((len - 1) as u8);
                    }
                };
                if index != first {
                    zeros(&mut seq, index - first);
                }
                seq.push(val_op(count, 1));
                if index != last {
                    zeros(&mut seq, last - index);
                }
            }
            Op::Val(curval, _) => {
                if index != first {
                    seq.push(val_op(curval, index - first));
                }
                seq.push(val_op(count, 1));
                if index != last {
                    seq.push(val_op(curval, last - index));
                }
            }
        }
        let seqlen = seq.len();
        let oldlen = if matches!(cur, Op::XZero(_)) { 2 } else { 1 };
        let delta = seqlen as isize - oldlen as isize;
        if delta > 0 && v.len() + delta as usize > max_bytes {
            return promote(v, index, count);
        }
        let new_len = (v.len() as isize + delta) as usize;
        let tail = next.map(|n| v[n..].to_vec()).unwrap_or_default();
        v.truncate(p);
        v.extend_from_slice(seq.as_slice());
        v.extend_from_slice(&tail);
        v.truncate(new_len);
        end = new_len;
    }
    // Merge adjacent VAL opcodes of the same value, up to 5 opcodes from prev.
    let mut p = prev.unwrap_or(HDR);
    let mut scan = 5;
    while p < end && scan > 0 {
        scan -= 1;
        let b = v[p];
        if b & 0xc0 == 0x40 {
            p += 2;
            continue;
        } else if b & 0xc0 == 0 {
            p += 1;
            continue;
        }
        if p + 1 < end && v[p + 1] & 0x80 != 0 {
            let (v1, l1) = (((b >> 2) & 0x1f) + 1, (b & 3) as usize + 1);
            let b2 = v[p + 1];
            let (v2, l2) = (((b2 >> 2) & 0x1f) + 1, (b2 & 3) as usize + 1);
            if v1 == v2 && l1 + l2 <= VAL_MAX_LEN {
                v[p + 1] = val_op(v1, l1 + l2);
                v.remove(p);
                end -= 1;
                continue;
            }
        }
        p += 1;
    }
    invalidate_cache(v);
    Ok(true)
}

fn promote(v: &mut Vec<u8>, index: usize, count: u8) -> Result<bool, Corrupt> {
    to_dense(v)?;
    Ok(dense_set(&mut v[HDR..], index, count))
}

/// A tiny fixed-capacity byte buffer for an opcode split (at most 5 bytes).
mod smallvec_like {
    #[derive(Default)]
    pub struct Seq {
        buf: [u8; 5],
        len: usize,
    }
    impl Seq {
        pub fn push(&mut self, b: u8) {
            self.buf[self.len] = b;
            self.len += 1;
        }
        pub fn len(&self) -> usize {
            self.len
        }
        pub fn as_slice(&self) -> &[u8] {
            &self.buf[..self.len]
        }
    }
}

/// Adds an element (Redis's `hllAdd`): Ok(true) when a register changed.
/// `v` must have passed [`is_valid`].
pub fn add(v: &mut Vec<u8>, ele: &[u8], sparse_max_bytes: usize) -> Result<bool, Corrupt> {
    let (index, count) = pat_len(ele);
    set_register(v, index, count, sparse_max_bytes)
}

/// Raises register `index` to `count` in either encoding.
pub fn set_register(
    v: &mut Vec<u8>,
    index: usize,
    count: u8,
    sparse_max_bytes: usize,
) -> Result<bool, Corrupt> {
    match v[4] {
        DENSE => Ok(dense_set(&mut v[HDR..], index, count)),
        SPARSE => sparse_set(v, index, count, sparse_max_bytes),
        _ => Err(Corrupt),
    }
}

// ---- estimation ----

fn sigma(mut x: f64) -> f64 {
    if x == 1.0 {
        return f64::INFINITY;
    }
    let mut y = 1.0;
    let mut z = x;
    loop {
        x *= x;
        let zp = z;
        z += x * y;
        y += y;
        if zp == z {
            return z;
        }
    }
}

fn tau(mut x: f64) -> f64 {
    if x == 0.0 || x == 1.0 {
        return 0.0;
    }
    let mut y = 1.0;
    let mut z = 1.0 - x;
    loop {
        x = x.sqrt();
        let zp = z;
        y *= 0.5;
        z -= (1.0 - x) * (1.0 - x) * y;
        if zp == z {
            return z / 3.0;
        }
    }
}

/// Ertl's estimate from the register histogram.
fn estimate(histo: &[u32; 64]) -> u64 {
    let m = REGISTERS as f64;
    let mut z = m * tau((m - histo[Q as usize + 1] as f64) / m);
    for j in (1..=Q as usize).rev() {
        z += histo[j] as f64;
        z *= 0.5;
    }
    z += m * sigma(histo[0] as f64 / m);
    (ALPHA_INF * m * m / z).round() as u64
}

/// The estimated cardinality of a valid HLL value (ignoring the cache).
pub fn count(v: &[u8]) -> Result<u64, Corrupt> {
    let mut histo = [0u32; 64];
    if v[4] == DENSE {
        let regs = &v[HDR..];
        for i in 0..REGISTERS {
            histo[dense_get(regs, i) as usize] += 1;
        }
    } else {
        let mut idx = 0usize;
        let mut p = HDR;
        while p < v.len() {
            let (op, n) = op_at(v, p);
            match op {
                Op::Zero(l) | Op::XZero(l) => {
                    idx += l;
                    histo[0] += l as u32;
                }
                Op::Val(val, l) => {
                    idx += l;
                    histo[val as usize] += l as u32;
                }
            }
            p += n;
        }
        if idx != REGISTERS {
            return Err(Corrupt);
        }
    }
    Ok(estimate(&histo))
}

/// The estimate of raw registers (one byte each: PFCOUNT of several keys).
pub fn count_raw(regs: &[u8; REGISTERS]) -> u64 {
    let mut histo = [0u32; 64];
    for &r in regs.iter() {
        histo[(r & 63) as usize] += 1;
    }
    estimate(&histo)
}

/// Raises `max[i]` to each register of the valid HLL `v` (Redis's `hllMerge`).
pub fn merge_into(max: &mut [u8; REGISTERS], v: &[u8]) -> Result<(), Corrupt> {
    if v[4] == DENSE {
        let regs = &v[HDR..];
        for (i, m) in max.iter_mut().enumerate() {
            let r = dense_get(regs, i);
            if r > *m {
                *m = r;
            }
        }
        return Ok(());
    }
    let mut i = 0usize;
    let mut p = HDR;
    while p < v.len() {
        let (op, n) = op_at(v, p);
        match op {
            Op::Zero(l) | Op::XZero(l) => i += l,
            Op::Val(val, l) => {
                if l + i > REGISTERS {
                    break;
                }
                for m in &mut max[i..i + l] {
                    if val > *m {
                        *m = val;
                    }
                }
                i += l;
            }
        }
        p += n;
    }
    if i != REGISTERS {
        return Err(Corrupt);
    }
    Ok(())
}

/// PFDEBUG DECODE's text for a sparse value.
pub fn decode_sparse(v: &[u8]) -> String {
    let mut out = String::new();
    let mut p = HDR;
    while p < v.len() {
        let (op, n) = op_at(v, p);
        match op {
            Op::Zero(l) => out.push_str(&format!("z:{l} ")),
            Op::XZero(l) => out.push_str(&format!("Z:{l} ")),
            Op::Val(val, l) => out.push_str(&format!("v:{val},{l} ")),
        }
        p += n;
    }
    out.trim_matches(' ').to_string()
}

/// PFSELFTEST: register access, then estimation error and sparse/dense
/// agreement up to 10M elements. `rand` draws the random numbers.
pub fn selftest(mut rand: impl FnMut() -> u32, sparse_max_bytes: usize) -> Result<(), String> {
    let mut dense = vec![0u8; DENSE_SIZE];
    let mut bytes = vec![0u8; REGISTERS];
    for _ in 0..1000 {
        for (i, b) in bytes.iter_mut().enumerate() {
            let r = (rand() & REGISTER_MAX as u32) as u8;
            *b = r;
            dense_put(&mut dense[HDR..], i, r);
        }
        for (i, &b) in bytes.iter().enumerate() {
            let val = dense_get(&dense[HDR..], i);
            if val != b {
                return Err(format!(
                    "TESTFAILED Register {i} should be {b} but is {val}"
                ));
            }
        }
    }
    dense.fill(0);
    dense[..4].copy_from_slice(b"HYLL");
    let mut sparse = new_sparse();
    let relerr = 1.04 / (REGISTERS as f64).sqrt();
    let mut checkpoint: u64 = 1;
    let seed = rand() as u64 | (rand() as u64) << 32;
    for j in 1..=10_000_000u64 {
        let ele = (j ^ seed).to_le_bytes();
        let (index, cnt) = pat_len(&ele);
        dense_set(&mut dense[HDR..], index, cnt);
        let _ = set_register(&mut sparse, index, cnt, sparse_max_bytes);
        if j == checkpoint {
            if (j as usize) < sparse_max_bytes / 2 && sparse[4] != SPARSE {
                return Err("TESTFAILED sparse encoding not used".into());
            }
            let card = count(&dense).unwrap_or(0);
            if count(&sparse).ok() != Some(card) {
                return Err("TESTFAILED dense/sparse disagree".into());
            }
            let abserr = (checkpoint as i64 - card as i64).unsigned_abs();
            let mut maxerr = (relerr * 6.0 * checkpoint as f64).ceil() as u64;
            if j == 10 {
                maxerr = 1;
            }
            if abserr > maxerr {
                return Err(format!(
                    "TESTFAILED Too big error. card:{checkpoint} abserr:{abserr}"
                ));
            }
            checkpoint *= 10;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_sparse_is_two_xzero_opcodes() {
        let v = new_sparse();
        assert_eq!(v.len(), 18);
        assert_eq!(&v[16..], &[0x7f, 0xff]);
        assert_eq!(count(&v), Ok(0));
        assert_eq!(decode_sparse(&v), "Z:16384");
    }

    #[test]
    fn sparse_and_dense_agree() {
        let mut s = new_sparse();
        let mut d = new_sparse();
        to_dense(&mut d).unwrap();
        for i in 0..5000u32 {
            let e = i.to_string();
            add(&mut s, e.as_bytes(), 3000).unwrap();
            add(&mut d, e.as_bytes(), 3000).unwrap();
            if i % 97 == 0 {
                assert_eq!(count(&s), count(&d));
            }
        }
        assert_eq!(s[4], DENSE, "promoted past 3000 bytes");
        assert_eq!(s[HDR..], d[HDR..]);
        let c = count(&d).unwrap();
        assert!((4800..5200).contains(&c), "{c}");
    }

    #[test]
    fn corrupted_values_never_panic() {
        let mut seed = 0x1234_5678_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..300 {
            let mut v = new_sparse();
            for i in 0..(next() % 200) {
                add(&mut v, &i.to_le_bytes(), 3000).unwrap();
            }
            let n = v.len();
            for _ in 0..(next() % 8 + 1) {
                let at = HDR + (next() as usize % (n - HDR));
                v[at] = next() as u8;
            }
            let _ = count(&v);
            let mut m = [0u8; REGISTERS];
            let _ = merge_into(&mut m, &v);
            for i in 0..50u32 {
                if add(&mut v, &i.to_be_bytes(), 3000).is_err() {
                    break;
                }
            }
            let _ = to_dense(&mut v);
        }
    }
}
