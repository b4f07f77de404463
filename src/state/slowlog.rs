//! The slow log (SLOWLOG) and the latency monitor (LATENCY), as Redis 7.0
//! keeps them. Both are fed after a command ran, from the duration the
//! command statistics measured (`commands/stats.rs`): deciding whether to
//! log costs two relaxed loads.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

/// Most arguments an entry keeps (the last one says how many were left out).
pub const MAX_ARGC: usize = 32;
/// Longest argument an entry keeps.
pub const MAX_STRING: usize = 128;

pub struct SlowEntry {
    pub id: u64,
    pub time: i64,
    pub duration: u64,
    pub args: Vec<Bytes>,
    pub peer: String,
    pub name: String,
}

pub struct SlowLog {
    /// `slowlog-log-slower-than` in µs; `i64::MAX` when negative (off).
    threshold: AtomicI64,
    max_len: AtomicUsize,
    inner: Mutex<(u64, VecDeque<SlowEntry>)>,
}

impl Default for SlowLog {
    fn default() -> Self {
        SlowLog {
            threshold: AtomicI64::new(10_000),
            max_len: AtomicUsize::new(128),
            inner: Mutex::new((0, VecDeque::new())),
        }
    }
}

pub fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl SlowLog {
    /// CONFIG SET slowlog-log-slower-than.
    pub fn set_threshold(&self, us: i64) {
        let t = if us < 0 { i64::MAX } else { us };
        self.threshold.store(t, Ordering::Relaxed);
    }

    /// CONFIG SET slowlog-max-len: trims at once.
    pub fn set_max_len(&self, n: usize) {
        self.max_len.store(n, Ordering::Relaxed);
        self.inner.lock().1.truncate(n);
    }

    /// Whether a call of `us` µs is logged.
    #[inline]
    pub fn wants(&self, us: u64) -> bool {
        us as i64 >= self.threshold.load(Ordering::Relaxed)
            && self.max_len.load(Ordering::Relaxed) > 0
    }

    /// Logs a call (Redis's slowlogCreateEntry: at most 32 arguments, each
    /// at most 128 bytes).
    pub fn push(&self, args: &[Bytes], duration: u64, peer: String, name: String) {
        let argc = args.len();
        let kept = argc.min(MAX_ARGC);
        let mut v = Vec::with_capacity(kept);
        for (j, a) in args[..kept].iter().enumerate() {
            if kept != argc && j == kept - 1 {
                v.push(Bytes::from(format!(
                    "... ({} more arguments)",
                    argc - kept + 1
                )));
            } else if a.len() > MAX_STRING {
                let mut s = a[..MAX_STRING].to_vec();
                s.extend_from_slice(
                    format!("... ({} more bytes)", a.len() - MAX_STRING).as_bytes(),
                );
                v.push(Bytes::from(s));
            } else {
                v.push(Bytes::copy_from_slice(a));
            }
        }
        let max = self.max_len.load(Ordering::Relaxed);
        let mut g = self.inner.lock();
        let id = g.0;
        g.0 += 1;
        g.1.push_front(SlowEntry {
            id,
            time: unix_secs(),
            duration,
            args: v,
            peer,
            name,
        });
        g.1.truncate(max);
    }

    pub fn len(&self) -> usize {
        self.inner.lock().1.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn reset(&self) {
        self.inner.lock().1.clear();
    }

    /// Visits the newest `count` entries, newest first.
    pub fn with_entries<R>(&self, f: impl FnOnce(&VecDeque<SlowEntry>) -> R) -> R {
        f(&self.inner.lock().1)
    }
}

/// Samples an event keeps (Redis's LATENCY_TS_LEN).
pub const LATENCY_TS_LEN: usize = 160;

#[derive(Clone)]
pub struct LatencySeries {
    /// (unix seconds, ms); time 0 = empty.
    pub samples: Vec<(i64, u64)>,
    pub idx: usize,
    pub max: u64,
}

impl LatencySeries {
    /// Samples in time order (oldest first), the empty ones left out.
    pub fn ordered(&self) -> Vec<(i64, u64)> {
        (0..LATENCY_TS_LEN)
            .map(|j| self.samples[(self.idx + j) % LATENCY_TS_LEN])
            .filter(|s| s.0 != 0)
            .collect()
    }

    pub fn last(&self) -> (i64, u64) {
        self.samples[(self.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN]
    }
}

/// The latency monitor: per event, the worst latency of each second.
#[derive(Default)]
pub struct LatencyMonitor {
    /// `latency-monitor-threshold` in ms; 0 = off.
    pub threshold_ms: AtomicU64,
    events: Mutex<BTreeMap<String, LatencySeries>>,
}

impl LatencyMonitor {
    /// Redis's latencyAddSampleIfNeeded.
    #[inline]
    pub fn add_if_needed(&self, event: &str, ms: u64) {
        let t = self.threshold_ms.load(Ordering::Relaxed);
        if t != 0 && ms >= t {
            self.add(event, ms);
        }
    }

    /// Redis's latencyAddSample.
    pub fn add(&self, event: &str, ms: u64) {
        let now = unix_secs();
        let mut ev = self.events.lock();
        let ts = ev
            .entry(event.to_string())
            .or_insert_with(|| LatencySeries {
                samples: vec![(0, 0); LATENCY_TS_LEN],
                idx: 0,
                max: 0,
            });
        ts.max = ts.max.max(ms);
        let prev = (ts.idx + LATENCY_TS_LEN - 1) % LATENCY_TS_LEN;
        if ts.samples[prev].0 == now {
            ts.samples[prev].1 = ts.samples[prev].1.max(ms);
            return;
        }
        let i = ts.idx;
        ts.samples[i] = (now, ms);
        ts.idx = (i + 1) % LATENCY_TS_LEN;
    }

    pub fn events(&self) -> BTreeMap<String, LatencySeries> {
        self.events.lock().clone()
    }

    pub fn event(&self, name: &str) -> Option<LatencySeries> {
        self.events.lock().get(name).cloned()
    }

    /// Resets the named events (all when `names` is empty); returns how many existed.
    pub fn reset(&self, names: &[String]) -> usize {
        let mut ev = self.events.lock();
        if names.is_empty() {
            let n = ev.len();
            ev.clear();
            return n;
        }
        names
            .iter()
            .filter(|n| ev.remove(n.as_str()).is_some())
            .count()
    }
}
