//! Per-command statistics for INFO commandstats (Redis's `cmdstat_<name>`
//! lines: calls, usec, rejected_calls, failed_calls).
//!
//! Kept cheap on the command path: every command and subcommand has a fixed
//! index (built once from the command tables), each thread counts into its
//! own array (plain loads and stores, no lock, no cache line shared between
//! workers), and time is read from the CPU's timestamp counter where there
//! is one (converted to µs only when INFO asks) for one call in [`SAMPLE`]. INFO and CONFIG RESETSTAT
//! visit every thread's array; a reset racing with a thread's update of the
//! same counter may be lost, as stats go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use super::Command;

/// calls, time (ticks), rejected, failed.
const FIELDS: usize = 4;

struct Index {
    /// Command address -> its slot.
    slot: HashMap<usize, usize, ahash::RandomState>,
    /// Slot -> Redis name (`get`, `config|get`).
    names: Vec<String>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut ix = Index {
            slot: HashMap::default(),
            names: Vec::new(),
        };
        for (cmd, name) in super::all_full_names() {
            ix.slot
                .insert(cmd as *const Command as usize, ix.names.len());
            ix.names.push(name);
        }
        ix
    })
}

type Table = Box<[AtomicU64]>;

/// The live threads' tables.
static TABLES: Mutex<Vec<Arc<Table>>> = Mutex::new(Vec::new());
/// Counts of threads that ended (their tables folded in), so that threads
/// coming and going do not grow `TABLES`.
static RETIRED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

/// A thread's table; folded into [`RETIRED`] when the thread ends.
struct Local(Arc<Table>);

impl Drop for Local {
    fn drop(&mut self) {
        TABLES.lock().retain(|t| !Arc::ptr_eq(t, &self.0));
        let mut r = RETIRED.lock();
        r.resize(self.0.len(), 0);
        for (s, c) in r.iter_mut().zip(self.0.iter()) {
            *s += c.load(Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// The last command this thread counted and its slot: a pipeline of one
    /// command skips the index lookup.
    static LAST: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    static LOCAL: Local = {
        let t: Arc<Table> = Arc::new((0..index().names.len() * FIELDS).map(|_| AtomicU64::new(0)).collect());
        TABLES.lock().push(t.clone());
        Local(t)
    };
}

/// What happened to one call.
pub enum Outcome {
    /// Ran since `started` (see [`start`]); `failed` if it replied with an error.
    Ran { started: u64, failed: bool },
    /// Handed to a router (upstream tier, cluster master): counted as a call.
    Routed,
    /// Refused before running (NOAUTH, OOM, not allowed in this context).
    Rejected,
}

/// One call in this many is timed; its time counts for all of them.
const SAMPLE: u64 = 8;

/// The start of a call for [`Outcome::Ran`]: a timestamp for one call in
/// [`SAMPLE`], else 0 (not timed). Reading the clock twice per command cost
/// about 7% of throughput at `-P 16`; calls stay exact, `usec` becomes an
/// estimate.
#[inline]
pub fn start() -> u64 {
    thread_local! {
        static N: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    }
    let n = N.get().wrapping_add(1);
    N.set(n);
    if n.is_multiple_of(SAMPLE) {
        now().max(1)
    } else {
        0
    }
}

/// The timestamp counter.
#[inline]
fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: RDTSC has no preconditions on x86_64.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START
            .get_or_init(std::time::Instant::now)
            .elapsed()
            .as_nanos() as u64
    }
}

/// Timestamp units per µs (calibrated once against the monotonic clock).
fn ticks_per_us() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| {
        let (i0, t0) = (std::time::Instant::now(), now());
        while i0.elapsed() < std::time::Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        let us = i0.elapsed().as_secs_f64() * 1e6;
        ((now() - t0) as f64 / us).max(1e-9)
    })
}

/// Counts one call of `cmd` on this thread.
#[inline]
pub fn record(cmd: &'static Command, outcome: Outcome) {
    let addr = cmd as *const Command as usize;
    let slot = match LAST.get() {
        (a, slot) if a == addr => slot,
        _ => {
            let Some(&slot) = index().slot.get(&addr) else {
                return;
            };
            LAST.set((addr, slot));
            slot
        }
    };
    let add = |t: &Table, field: usize, n: u64| {
        // Only this thread writes its table: no read-modify-write needed.
        let c = &t[slot * FIELDS + field];
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    };
    LOCAL.with(|Local(t)| match outcome {
        Outcome::Ran { started, failed } => {
            add(t, 0, 1);
            if started != 0 {
                add(t, 1, now().saturating_sub(started) * SAMPLE);
            }
            if failed {
                add(t, 3, 1);
            }
        }
        Outcome::Routed => add(t, 0, 1),
        Outcome::Rejected => add(t, 2, 1),
    });
}

/// CONFIG RESETSTAT.
pub fn reset() {
    RETIRED.lock().clear();
    for t in TABLES.lock().iter() {
        for c in t.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }
}

/// The `# Commandstats` section of INFO: every command called or rejected
/// since start (or the last CONFIG RESETSTAT), by name.
pub fn info_section(out: &mut String) {
    use std::fmt::Write;
    let ix = index();
    let mut sum = vec![0u64; ix.names.len() * FIELDS];
    for (s, r) in sum.iter_mut().zip(RETIRED.lock().iter()) {
        *s += r;
    }
    for t in TABLES.lock().iter() {
        for (s, c) in sum.iter_mut().zip(t.iter()) {
            *s += c.load(Ordering::Relaxed);
        }
    }
    let per_us = ticks_per_us();
    let mut rows: Vec<(&str, &[u64])> = ix
        .names
        .iter()
        .zip(sum.chunks(FIELDS))
        .filter(|(_, f)| f[0] > 0 || f[2] > 0)
        .map(|(n, f)| (n.as_str(), f))
        .collect();
    rows.sort_unstable_by_key(|(n, _)| *n);
    out.push_str("# Commandstats\r\n");
    for (name, f) in rows {
        let usec = (f[1] as f64 / per_us) as u64;
        let per_call = if f[0] > 0 {
            usec as f64 / f[0] as f64
        } else {
            0.0
        };
        let _ = write!(
            out,
            "cmdstat_{name}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            f[0], f[2], f[3]
        );
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outlive_their_thread() {
        let get = super::super::lookup(b"get").unwrap();
        std::thread::spawn(move || {
            record(get, Outcome::Routed);
            record(get, Outcome::Rejected);
            let started = start();
            record(
                get,
                Outcome::Ran {
                    started,
                    failed: true,
                },
            );
        })
        .join()
        .unwrap();
        assert!(
            TABLES.lock().is_empty(),
            "an ended thread's table stays registered"
        );
        let mut s = String::new();
        info_section(&mut s);
        let line = s.lines().find(|l| l.starts_with("cmdstat_get:")).unwrap();
        assert!(line.starts_with("cmdstat_get:calls=2,usec="), "{s}");
        assert!(line.ends_with(",rejected_calls=1,failed_calls=1"), "{s}");
        reset();
        let mut s = String::new();
        info_section(&mut s);
        assert!(!s.contains("cmdstat_get"), "{s}");
    }
}
