//! Replication lag samples (INFO replication's lag percentiles).

use parking_lot::Mutex;

/// A bounded sample of replication lag (commit at master -> apply here), µs.
pub struct LagSamples {
    ring: Mutex<(Vec<u32>, usize)>,
}

const LAG_RING: usize = 100_000;

impl Default for LagSamples {
    fn default() -> Self {
        LagSamples {
            ring: Mutex::new((Vec::new(), 0)),
        }
    }
}

impl LagSamples {
    pub fn record(&self, us: u64) {
        let v = us.min(u32::MAX as u64) as u32;
        let mut g = self.ring.lock();
        if g.0.len() < LAG_RING {
            g.0.push(v);
        } else {
            let i = g.1;
            g.0[i] = v;
            g.1 = (i + 1) % LAG_RING;
        }
    }

    /// (p50, p99, count) in µs over the retained samples.
    pub fn percentiles(&self) -> (u64, u64, usize) {
        let mut v = self.ring.lock().0.clone();
        if v.is_empty() {
            return (0, 0, 0);
        }
        v.sort_unstable();
        let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize] as u64;
        (p(0.5), p(0.99), v.len())
    }

    pub fn clear(&self) {
        let mut g = self.ring.lock();
        g.0.clear();
        g.1 = 0;
    }
}
