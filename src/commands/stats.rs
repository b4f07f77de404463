//! Per-command statistics for INFO commandstats (Redis's `cmdstat_<name>`
//! lines: calls, usec, rejected_calls, failed_calls).
//!
//! Kept cheap on the command path: every command and subcommand has a fixed
//! index (built once from the command tables), each thread counts into its
//! own array (plain loads and stores, no lock, no cache line shared between
//! workers), and time is read from the CPU's timestamp counter where there
//! is one (converted to µs only when INFO asks). The same two reads serve
//! the slow log, the latency monitor and `latency-tracking`'s per-command
//! histograms (Redis's hdr_histogram buckets, 2 significant digits, also
//! per thread). INFO and CONFIG RESETSTAT
//! visit every thread's array; a reset racing with a thread's update of the
//! same counter may be lost, as stats go.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
struct Local(Arc<Table>, Arc<Hists>);

impl Drop for Local {
    fn drop(&mut self) {
        TABLES.lock().retain(|t| !Arc::ptr_eq(t, &self.0));
        HISTS.lock().retain(|t| !Arc::ptr_eq(t, &self.1));
        let mut r = RETIRED.lock();
        r.resize(self.0.len(), 0);
        for (s, c) in r.iter_mut().zip(self.0.iter()) {
            *s += c.load(Ordering::Relaxed);
        }
        drop(r);
        let retired = retired_hists();
        for (slot, h) in self.1.iter().enumerate() {
            if let Some(h) = h.get() {
                let into = hist_of(retired, slot);
                for (a, b) in into.iter().zip(h.iter()) {
                    a.fetch_add(b.load(Ordering::Relaxed), Ordering::Relaxed);
                }
            }
        }
    }
}

/// Per command slot, its latency histogram (allocated on first use).
type Hists = Box<[OnceLock<Box<[AtomicU64]>>]>;

/// The live threads' histograms.
static HISTS: Mutex<Vec<Arc<Hists>>> = Mutex::new(Vec::new());

fn new_hists() -> Hists {
    (0..index().names.len()).map(|_| OnceLock::new()).collect()
}

/// Histograms of threads that ended.
fn retired_hists() -> &'static Hists {
    static R: OnceLock<Hists> = OnceLock::new();
    R.get_or_init(new_hists)
}

fn hist_of(h: &Hists, slot: usize) -> &[AtomicU64] {
    h[slot].get_or_init(|| (0..hdr::COUNTS).map(|_| AtomicU64::new(0)).collect())
}

/// `latency-tracking` (CONFIG SET): per-command histograms are kept.
pub static LATENCY_TRACKING: AtomicBool = AtomicBool::new(true);

thread_local! {
    /// The last command this thread counted and its slot: a pipeline of one
    /// command skips the index lookup.
    static LAST: std::cell::Cell<(usize, usize)> = const { std::cell::Cell::new((0, 0)) };
    static LOCAL: Local = {
        let t: Arc<Table> = Arc::new((0..index().names.len() * FIELDS).map(|_| AtomicU64::new(0)).collect());
        TABLES.lock().push(t.clone());
        let h = Arc::new(new_hists());
        HISTS.lock().push(h.clone());
        Local(t, h)
    };
}

/// A command's full name (`get`, `client|list`), for CLIENT LIST's `cmd=`.
pub fn full_name(cmd: &'static Command) -> &'static str {
    let ix = index();
    ix.slot
        .get(&(cmd as *const Command as usize))
        .map_or(cmd.name, |&slot| ix.names[slot].as_str())
}

/// What happened to one call.
pub enum Outcome {
    /// Ran since `started` (see [`start`]); `failed` if it replied with an error.
    Ran { started: u64, failed: bool },
    /// Handed to a router (upstream tier, cluster master): counted as a call.
    Routed,
    /// Refused before running (NOAUTH, OOM, not allowed in this context).
    Rejected,
    /// A call that blocked, as Redis 7.0's `call` counts it: one call and
    /// the time it ran (since `started`), no latency sample yet.
    Blocked { started: u64 },
    /// That call ended (served, timed out, CLIENT UNBLOCK), as Redis's
    /// `updateStatsOnUnblock`: its run time `us` again, a latency sample,
    /// and a failure if the reply that ended it is an error. No call.
    Unblocked { us: u64, failed: bool },
}

/// The start of a call for [`Outcome::Ran`]: the timestamp counter (a
/// few ns to read; `Instant::now`, a vDSO call, cost about 7% of
/// throughput at `-P 16` when read twice per command).
#[inline]
pub fn start() -> u64 {
    now()
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

/// Calibrates the timestamp counter now (at start-up), so that no command
/// waits for it.
pub fn calibrate() {
    let _ = us_per_tick();
}

/// µs per timestamp unit.
#[inline]
fn us_per_tick() -> f64 {
    static T: OnceLock<f64> = OnceLock::new();
    *T.get_or_init(|| 1.0 / ticks_per_us())
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

/// Counts one call of `cmd` on this thread. For a call that ran, returns
/// its duration in µs (0 otherwise).
#[inline]
pub fn record(cmd: &'static Command, outcome: Outcome) -> u64 {
    let addr = cmd as *const Command as usize;
    let slot = match LAST.get() {
        (a, slot) if a == addr => slot,
        _ => {
            let Some(&slot) = index().slot.get(&addr) else {
                return 0;
            };
            LAST.set((addr, slot));
            slot
        }
    };
    LOCAL.with(|Local(t, h)| match outcome {
        Outcome::Ran { started, failed } => {
            let us = ran(t, slot, started);
            ended(t, h, slot, us, failed);
            us
        }
        Outcome::Blocked { started } => ran(t, slot, started),
        Outcome::Unblocked { us, failed } => {
            add(t, slot, 1, (us as f64 / us_per_tick()) as u64);
            ended(t, h, slot, us, failed);
            us
        }
        Outcome::Routed => {
            add(t, slot, 0, 1);
            0
        }
        Outcome::Rejected => {
            add(t, slot, 2, 1);
            0
        }
    })
}

/// Adds `n` to field `field` of the command in `slot`. Only this thread
/// writes its table: no read-modify-write needed.
#[inline(always)]
fn add(t: &Table, slot: usize, field: usize, n: u64) {
    let c = &t[slot * FIELDS + field];
    c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
}

/// A call ran since `started`: the call and its time; its duration in µs.
#[inline(always)]
fn ran(t: &Table, slot: usize, started: u64) -> u64 {
    add(t, slot, 0, 1);
    let ticks = now().saturating_sub(started);
    add(t, slot, 1, ticks);
    (ticks as f64 * us_per_tick()) as u64
}

/// How a call ended: failed or not, and its latency sample.
#[inline(always)]
fn ended(t: &Table, h: &Hists, slot: usize, us: u64, failed: bool) {
    if failed {
        add(t, slot, 3, 1);
    }
    if LATENCY_TRACKING.load(Ordering::Relaxed) {
        // As Redis: whole µs, recorded in ns.
        let c = &hist_of(h, slot)[hdr::index(us.saturating_mul(1000))];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
}

/// Redis's hdr_histogram layout for command latencies (1 ns to 1 s, 2
/// significant digits): 256 sub-buckets, the upper half of each bucket
/// doubling the range of the one before.
pub(crate) mod hdr {
    /// Buckets needed for 1e9: bucket index 23 at most.
    pub const COUNTS: usize = (23 + 2) << 7;
    const MAX: u64 = 1_000_000_000;

    /// The counts index of value `v` (ns), clamped to [1, 1e9] as Redis does.
    #[inline]
    pub fn index(v: u64) -> usize {
        let v = v.clamp(1, MAX);
        let bucket = 64 - (v | 255).leading_zeros() as usize - 8;
        let sub = (v >> bucket) as usize;
        ((bucket + 1) << 7) + sub - 128
    }

    /// The highest value that counts index `i` stands for.
    pub fn highest(i: usize) -> u64 {
        let (mut bucket, mut sub) = ((i >> 7) as i64 - 1, (i & 127) + 128);
        if bucket < 0 {
            sub -= 128;
            bucket = 0;
        }
        let lowest = (sub as u64) << bucket;
        // The size of the range: a sub-bucket past the top belongs to the next bucket.
        let size_bucket = if sub >= 256 { bucket + 1 } else { bucket };
        lowest + (1u64 << size_bucket) - 1
    }

    /// hdr_value_at_percentile: the highest value of the bucket holding
    /// the percentile's count.
    pub fn percentile(counts: &[u64], total: u64, p: f64) -> u64 {
        let p = p.min(100.0);
        let want = (((p / 100.0) * total as f64) + 0.5) as u64;
        let want = want.max(1);
        let mut run = 0;
        for (i, c) in counts.iter().enumerate() {
            run += c;
            if run >= want {
                return highest(i);
            }
        }
        0
    }
}

/// Every command's latency histogram summed over threads: (full name,
/// counts, total), for commands called since the last reset.
pub fn histograms() -> Vec<(String, Vec<u64>, u64)> {
    let ix = index();
    let mut sums: Vec<Option<Vec<u64>>> = vec![None; ix.names.len()];
    let mut fold = |h: &Hists| {
        for (slot, hs) in h.iter().enumerate() {
            if let Some(hs) = hs.get() {
                let s = sums[slot].get_or_insert_with(|| vec![0; hdr::COUNTS]);
                for (a, b) in s.iter_mut().zip(hs.iter()) {
                    *a += b.load(Ordering::Relaxed);
                }
            }
        }
    };
    fold(retired_hists());
    for h in HISTS.lock().iter() {
        fold(h);
    }
    let mut v: Vec<(String, Vec<u64>, u64)> = sums
        .into_iter()
        .enumerate()
        .filter_map(|(slot, s)| {
            let s = s?;
            let total: u64 = s.iter().sum();
            (total > 0).then(|| (ix.names[slot].clone(), s, total))
        })
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// CONFIG RESETSTAT.
pub fn reset() {
    RETIRED.lock().clear();
    for t in TABLES.lock().iter() {
        for c in t.iter() {
            c.store(0, Ordering::Relaxed);
        }
    }
    let zero = |h: &Hists| {
        for c in h.iter().filter_map(|h| h.get()).flat_map(|h| h.iter()) {
            c.store(0, Ordering::Relaxed);
        }
    };
    zero(retired_hists());
    for h in HISTS.lock().iter() {
        zero(h);
    }
}

/// One command's counters, summed over threads.
pub struct CommandCounts {
    /// Full name (`get`, `config|get`).
    pub name: &'static str,
    pub calls: u64,
    /// Time spent in calls that ran, in µs.
    pub usec: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Every command called or rejected since start (or the last CONFIG
/// RESETSTAT), by name: what INFO commandstats and `/metrics` show.
pub fn command_counts() -> Vec<CommandCounts> {
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
    let mut rows: Vec<CommandCounts> = ix
        .names
        .iter()
        .zip(sum.chunks(FIELDS))
        .filter(|(_, f)| f[0] > 0 || f[2] > 0)
        .map(|(n, f)| CommandCounts {
            name: n.as_str(),
            calls: f[0],
            usec: (f[1] as f64 / per_us) as u64,
            rejected: f[2],
            failed: f[3],
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.name);
    rows
}

/// The `# Commandstats` section of INFO.
pub fn info_section(out: &mut String) {
    use std::fmt::Write;
    out.push_str("# Commandstats\r\n");
    for r in command_counts() {
        let per_call = if r.calls > 0 {
            r.usec as f64 / r.calls as f64
        } else {
            0.0
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={},usec={},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            r.name, r.calls, r.usec, r.rejected, r.failed
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
