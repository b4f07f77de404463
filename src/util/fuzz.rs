//! Seeded, bounded fuzzing for unit tests (stable Rust: no cargo-fuzz).
//!
//! Each fuzz test runs a few fixed seeds plus one random seed, which it
//! prints; `JCACHE_FUZZ_SEED=<n>` runs that seed alone, to reproduce a
//! failure. A failing input found this way becomes a regression test of its
//! own, next to the fuzz test.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The seeds to run: `JCACHE_FUZZ_SEED` alone, or fixed ones plus a random one.
pub fn seeds(name: &str) -> Vec<u64> {
    if let Some(s) = std::env::var("JCACHE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![s];
    }
    let random: u64 = rand::random();
    eprintln!("{name}: random seed {random} (rerun with JCACHE_FUZZ_SEED={random})");
    vec![1, 2, 3, random]
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Interesting bytes to splice into inputs: RESP and length-prefix markers,
/// digits, signs, high bits.
const SPECIAL: &[u8] = b"*$:+-\r\n0123456789\x00\x7f\x80\xbf\xc0\xfe\xff";

/// A mutated copy of `input`: a few random edits (flip, overwrite with a
/// special byte, insert, delete, truncate, duplicate a slice).
pub fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = v.len();
        match rng.gen_range(0..7) {
            0 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] ^= 1 << rng.gen_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.gen_range(0..len);
                v[i] = SPECIAL[rng.gen_range(0..SPECIAL.len())];
            }
            2 => {
                let i = rng.gen_range(0..=len);
                v.insert(i, SPECIAL[rng.gen_range(0..SPECIAL.len())]);
            }
            3 if len > 0 => {
                v.remove(rng.gen_range(0..len));
            }
            4 if len > 0 => v.truncate(rng.gen_range(0..len)),
            5 if len > 1 => {
                let a = rng.gen_range(0..len);
                let b = rng.gen_range(a..len.min(a + 16) + 1).min(len);
                let part = v[a..b].to_vec();
                let at = rng.gen_range(0..=v.len());
                v.splice(at..at, part);
            }
            _ => {
                // Overwrite up to 8 bytes with a random little-endian number:
                // length fields read from payloads get extreme values.
                if len > 0 {
                    let i = rng.gen_range(0..len);
                    let n: u64 = match rng.gen_range(0..3) {
                        0 => rng.gen(),
                        1 => u64::MAX >> rng.gen_range(0..64),
                        _ => rng.gen_range(0..300),
                    };
                    for (k, byte) in n.to_le_bytes().iter().enumerate() {
                        if i + k < len {
                            v[i + k] = *byte;
                        }
                    }
                }
            }
        }
    }
    v
}
