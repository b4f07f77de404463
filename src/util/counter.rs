//! A statistics counter striped over cache lines: hot-path increments from
//! different threads do not fight over one cache line. Reads sum the stripes
//! (exact once writers are quiet; approximate while they run, like Redis's
//! INFO counters read from another thread would be).

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 8;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

#[derive(Default)]
pub struct Counter {
    stripes: [Stripe; STRIPES],
}

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn stripe() -> usize {
    STRIPE.with(|s| {
        let mut i = s.get();
        if i == usize::MAX {
            i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
            s.set(i);
        }
        i
    })
}

impl Counter {
    #[inline]
    pub fn add(&self, n: u64) {
        self.stripes[stripe()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes `n` away (a gauge, like used memory): one stripe may go
    /// below zero and wrap, the sum of all stays exact.
    #[inline]
    pub fn sub(&self, n: u64) {
        self.stripes[stripe()].0.fetch_sub(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.stripes
            .iter()
            .fold(0u64, |sum, s| sum.wrapping_add(s.0.load(Ordering::Relaxed)))
    }

    pub fn reset(&self) {
        for s in &self.stripes {
            s.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Counter;

    #[test]
    fn a_gauge_sums_exactly_across_stripes() {
        let c = std::sync::Arc::new(Counter::default());
        c.add(100);
        // Taken away on other threads (other stripes): those stripes wrap.
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || c.sub(20))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 20);
        c.add(5);
        assert_eq!(c.get(), 25);
    }

    #[test]
    fn sums_over_threads() {
        let c = std::sync::Arc::new(Counter::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(1)))
            })
            .collect();
        handles.into_iter().for_each(|h| h.join().unwrap());
        assert_eq!(c.get(), 4000);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}
