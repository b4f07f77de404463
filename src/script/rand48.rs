//! `redisLrand48` / `redisSrand48` (Redis's rand.c): the 48-bit linear
//! congruential generator behind `math.random`, the same sequence on every
//! platform for the same seed.

const X0: u64 = 0x330E;
const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK48: u64 = (1 << 48) - 1;

/// The generator's state; Redis keeps one per process (never reseeded per
/// script in 7.0, so a script sees the sequence where the last one left it).
#[derive(Clone, Copy, Debug)]
pub struct Rand48 {
    x: u64,
}

impl Default for Rand48 {
    fn default() -> Self {
        Rand48 {
            x: X0 | (0xABCD << 16) | (0x1234 << 32),
        }
    }
}

impl Rand48 {
    /// `redisLrand48`: the next value in 0..2^31.
    pub fn next(&mut self) -> i32 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK48;
        (self.x >> 17) as i32
    }

    /// `redisSrand48(seed)`.
    pub fn seed(&mut self, seed: i32) {
        let s = seed as u32 as u64;
        self.x = X0 | ((s & 0xFFFF) << 16) | (((s >> 16) & 0xFFFF) << 32);
    }
}
