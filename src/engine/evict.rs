//! Eviction under `maxmemory`: approximate LRU/LFU/TTL/random by sampling,
//! like Redis. Eviction runs *before* a write that may grow memory lands.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::{Db, Entry, Mutation, SHARDS};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum EvictionPolicy {
    NoEviction = 0,
    AllKeysLru,
    VolatileLru,
    AllKeysLfu,
    VolatileLfu,
    AllKeysRandom,
    VolatileRandom,
    VolatileTtl,
}

impl EvictionPolicy {
    pub const ALL: [EvictionPolicy; 8] = [
        EvictionPolicy::NoEviction,
        EvictionPolicy::AllKeysLru,
        EvictionPolicy::VolatileLru,
        EvictionPolicy::AllKeysLfu,
        EvictionPolicy::VolatileLfu,
        EvictionPolicy::AllKeysRandom,
        EvictionPolicy::VolatileRandom,
        EvictionPolicy::VolatileTtl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EvictionPolicy::NoEviction => "noeviction",
            EvictionPolicy::AllKeysLru => "allkeys-lru",
            EvictionPolicy::VolatileLru => "volatile-lru",
            EvictionPolicy::AllKeysLfu => "allkeys-lfu",
            EvictionPolicy::VolatileLfu => "volatile-lfu",
            EvictionPolicy::AllKeysRandom => "allkeys-random",
            EvictionPolicy::VolatileRandom => "volatile-random",
            EvictionPolicy::VolatileTtl => "volatile-ttl",
        }
    }

    pub fn parse(s: &str) -> Option<EvictionPolicy> {
        Self::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
    }

    pub fn from_u8(v: u8) -> EvictionPolicy {
        Self::ALL[v as usize % 8]
    }

    pub fn is_lfu(self) -> bool {
        matches!(
            self,
            EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu
        )
    }

    fn volatile_only(self) -> bool {
        matches!(
            self,
            EvictionPolicy::VolatileLru
                | EvictionPolicy::VolatileLfu
                | EvictionPolicy::VolatileRandom
                | EvictionPolicy::VolatileTtl
        )
    }
}

/// The LRU clock in seconds, cached like Redis's `server.lruclock`: reading
/// the system clock on every key access costs more than the lookup itself.
/// Refreshed by [`tick_clock`] (the server calls it ten times a second); read
/// directly until the first tick.
static LRU_CLOCK: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

fn system_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as u32)
        .unwrap_or(0)
}

/// Refreshes the cached LRU clock.
pub fn tick_clock() {
    LRU_CLOCK.store(system_secs(), std::sync::atomic::Ordering::Relaxed);
}

fn clock_secs() -> u32 {
    match LRU_CLOCK.load(std::sync::atomic::Ordering::Relaxed) {
        0 => system_secs(),
        t => t,
    }
}

fn clock_minutes() -> u32 {
    (clock_secs() / 60) & 0xFFFF
}

const LFU_INIT_VAL: u32 = 5;
const LFU_LOG_FACTOR: f64 = 10.0;

/// Access field of a new entry.
pub fn initial_access(policy: EvictionPolicy) -> u32 {
    if policy.is_lfu() {
        (clock_minutes() << 8) | LFU_INIT_VAL
    } else {
        clock_secs()
    }
}

/// Access field of an entry restored with `IDLETIME idle_secs` (LRU policies).
pub fn access_with_idle(idle_secs: u64) -> u32 {
    clock_secs().saturating_sub(idle_secs.min(u32::MAX as u64) as u32)
}

/// Access field of an entry restored with `FREQ freq` (LFU policies).
pub fn access_with_freq(freq: u8) -> u32 {
    (clock_minutes() << 8) | freq as u32
}

/// Decayed LFU counter (one point per elapsed minute, as with lfu-decay-time 1).
fn lfu_counter(access: u32) -> u32 {
    // Masked: an entry written under an LRU policy holds seconds here, not LFU fields.
    let last = (access >> 8) & 0xFFFF;
    let now = clock_minutes();
    let elapsed = if now >= last {
        now - last
    } else {
        65535 - last + now
    };
    (access & 0xFF).saturating_sub(elapsed)
}

/// Updates an entry's access field on a read or write.
pub fn touch(e: &mut Entry, policy: EvictionPolicy) {
    if policy.is_lfu() {
        let mut counter = lfu_counter(e.access);
        if counter < 255 {
            let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
            let p = 1.0 / (base * LFU_LOG_FACTOR + 1.0);
            if rand::random::<f64>() < p {
                counter += 1;
            }
        }
        e.access = (clock_minutes() << 8) | counter;
    } else {
        e.access = clock_secs();
    }
}

/// Seconds since the entry was last accessed (OBJECT IDLETIME).
pub fn idle_secs(e: &Entry) -> u64 {
    clock_secs().saturating_sub(e.access) as u64
}

/// LFU frequency (OBJECT FREQ).
pub fn frequency(e: &Entry) -> u32 {
    lfu_counter(e.access)
}

impl Db {
    /// Evicts keys until used memory is under `maxmemory`. Returns false when
    /// the limit cannot be met (policy noeviction, or nothing evictable), in
    /// which case the caller refuses the write with an OOM error.
    pub fn ensure_memory(&self) -> bool {
        let max = self.maxmemory.load(Ordering::Relaxed) as usize;
        // A replica never evicts on its own (like Redis's replica-ignore-maxmemory):
        // its keyspace follows the master's, evictions included.
        if max == 0 || self.used_memory() <= max || self.keeps_keys() {
            return true;
        }
        let policy = self.policy();
        if policy == EvictionPolicy::NoEviction {
            return false;
        }
        // Bounded: each round evicts one key; give up after many fruitless rounds.
        let mut misses = 0;
        while self.used_memory() > max {
            match self.pick_victim(policy) {
                Some((db, key)) => {
                    let mut ks = self.lock(&[&key]);
                    ks.select(db);
                    if ks.peek(&key).is_some() {
                        ks.next_event(b'e', "evicted");
                        ks.apply(Mutation::Del { key });
                        self.stats.evicted_keys.fetch_add(1, Ordering::Relaxed);
                    }
                }
                None => {
                    misses += 1;
                    if misses > 16 {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Samples a few keys from a few shards (of every database) and
    /// returns the best candidate with its database.
    fn pick_victim(&self, policy: EvictionPolicy) -> Option<(usize, Bytes)> {
        let mut best: Option<(u64, (usize, Bytes))> = None;
        let now = super::now_ms();
        let size = |s: &super::Space| {
            if policy.volatile_only() {
                s.volatile_len()
            } else {
                s.len()
            }
        };
        for _ in 0..4 {
            let si = rand::random::<usize>() % SHARDS;
            let ks = self.lock_indices(&[si]);
            let spaces = ks.shard_databases(si);
            let total: usize = spaces.iter().map(|(_, s)| size(s)).sum();
            if total == 0 {
                continue;
            }
            for _ in 0..5 {
                // A key of any database, each equally likely.
                let mut j = rand::random::<usize>() % total;
                let mut at = 0;
                while j >= size(spaces[at].1) {
                    j -= size(spaces[at].1);
                    at += 1;
                }
                let (db, shard) = spaces[at];
                let (key, e) = if policy.volatile_only() {
                    let k = shard.volatile_key(j).expect("in range");
                    (k, shard.get(k).expect("volatile key exists"))
                } else {
                    shard.get_index(j).expect("in range")
                };
                // Higher score = better victim.
                let score = match policy {
                    EvictionPolicy::AllKeysLru | EvictionPolicy::VolatileLru => idle_secs(e),
                    EvictionPolicy::AllKeysLfu | EvictionPolicy::VolatileLfu => {
                        255 - frequency(e) as u64
                    }
                    EvictionPolicy::VolatileTtl => u64::MAX - e.expire_at.saturating_sub(now),
                    _ => rand::random::<u32>() as u64,
                };
                if best.as_ref().is_none_or(|(s, _)| score > *s) {
                    best = Some((score, (db, Bytes::copy_from_slice(key))));
                }
            }
        }
        best.map(|(_, k)| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{ExpireSet, Value};

    fn entry(access: u32) -> Entry {
        Entry {
            value: Value::Str(Box::from(&b"v"[..])),
            expire_at: 0,
            access,
            scan_slot: 0,
        }
    }

    #[test]
    fn policy_names_parse_back_case_insensitively() {
        let names: Vec<&str> = EvictionPolicy::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            [
                "noeviction",
                "allkeys-lru",
                "volatile-lru",
                "allkeys-lfu",
                "volatile-lfu",
                "allkeys-random",
                "volatile-random",
                "volatile-ttl"
            ]
        );
        for p in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::parse(p.name()), Some(p));
            assert_eq!(
                EvictionPolicy::parse(&p.name().to_ascii_uppercase()),
                Some(p)
            );
        }
        for bad in ["", "lru", "allkeys_lru", "allkeys-lru "] {
            assert_eq!(EvictionPolicy::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn policies_survive_their_u8_form() {
        for p in EvictionPolicy::ALL {
            assert_eq!(EvictionPolicy::from_u8(p as u8), p);
        }
        // Out of range wraps instead of panicking.
        assert_eq!(EvictionPolicy::from_u8(8), EvictionPolicy::NoEviction);
        assert_eq!(EvictionPolicy::from_u8(255), EvictionPolicy::VolatileTtl);
    }

    #[test]
    fn lfu_and_volatile_policies_are_the_expected_ones() {
        let lfu: Vec<_> = EvictionPolicy::ALL
            .into_iter()
            .filter(|p| p.is_lfu())
            .collect();
        assert_eq!(
            lfu,
            [EvictionPolicy::AllKeysLfu, EvictionPolicy::VolatileLfu]
        );
        let volatile: Vec<&str> = EvictionPolicy::ALL
            .into_iter()
            .filter(|p| p.volatile_only())
            .map(|p| p.name())
            .collect();
        assert_eq!(
            volatile,
            [
                "volatile-lru",
                "volatile-lfu",
                "volatile-random",
                "volatile-ttl"
            ]
        );
    }

    #[test]
    fn new_entries_start_at_now_or_at_the_lfu_initial_counter() {
        tick_clock();
        let lfu = initial_access(EvictionPolicy::AllKeysLfu);
        assert_eq!(lfu & 0xFF, LFU_INIT_VAL);
        assert_eq!(lfu >> 8, clock_minutes());
        assert_eq!(frequency(&entry(lfu)), 5);
        let lru = initial_access(EvictionPolicy::VolatileLru);
        assert_eq!(lru, clock_secs());
        assert_eq!(idle_secs(&entry(lru)), 0);
    }

    #[test]
    fn restored_idle_time_and_frequency_read_back() {
        tick_clock();
        assert_eq!(idle_secs(&entry(access_with_idle(90))), 90);
        // An idle time past the clock saturates at the epoch.
        assert_eq!(access_with_idle(u64::MAX), 0);
        assert_eq!(idle_secs(&entry(0)), clock_secs() as u64);
        for f in [0, 1, 5, 200, 255] {
            assert_eq!(frequency(&entry(access_with_freq(f))), f as u32);
        }
    }

    #[test]
    fn the_lfu_counter_decays_one_point_per_minute() {
        tick_clock();
        let now = clock_minutes();
        assert_eq!(lfu_counter((now << 8) | 10), 10);
        if now >= 3 {
            let three_ago = (now - 3) << 8;
            assert_eq!(lfu_counter(three_ago | 10), 7);
            assert_eq!(lfu_counter(three_ago | 2), 0, "saturates at zero");
        }
        // A field written under an LRU policy (seconds, not minutes and a
        // counter) reads as some counter, without overflow.
        assert!(lfu_counter(clock_secs()) <= 255);
        assert!(lfu_counter(u32::MAX) <= 255);
    }

    #[test]
    fn touch_under_lfu_counts_up_logarithmically_and_saturates() {
        tick_clock();
        let mut e = entry(access_with_freq(0));
        // At or below the initial value the increment is certain.
        for expect in 1..=6 {
            touch(&mut e, EvictionPolicy::AllKeysLfu);
            assert_eq!(frequency(&e), expect);
        }
        for _ in 0..1000 {
            touch(&mut e, EvictionPolicy::VolatileLfu);
        }
        // Expected about 19 after 1000 hits; far from both 6 and 255.
        let f = frequency(&e);
        assert!((10..=40).contains(&f), "{f}");
        let mut top = entry(access_with_freq(255));
        touch(&mut top, EvictionPolicy::AllKeysLfu);
        assert_eq!(frequency(&top), 255);
        assert_eq!(top.access >> 8, clock_minutes());
    }

    #[test]
    fn touch_under_lru_stamps_the_clock() {
        tick_clock();
        let mut e = entry(0);
        touch(&mut e, EvictionPolicy::AllKeysLru);
        assert_eq!(e.access, clock_secs());
        assert_eq!(idle_secs(&e), 0);
        let mut e = entry(0);
        touch(&mut e, EvictionPolicy::NoEviction);
        assert_eq!(e.access, clock_secs());
    }

    /// A Db holding `n` keys `k<i>`; `ttl(i)` gives key i's TTL in ms (0: none).
    fn db_with(n: usize, ttl: impl Fn(usize) -> u64) -> Db {
        let db = Db::new();
        let now = crate::engine::now_ms();
        for i in 0..n {
            let key = Bytes::from(format!("k{i}"));
            let expire = match ttl(i) {
                0 => ExpireSet::Clear,
                t => ExpireSet::At(now + t),
            };
            db.lock(&[&key]).apply(Mutation::SetStr {
                key: key.clone(),
                value: Bytes::from(vec![b'x'; 100]),
                expire,
            });
        }
        db
    }

    fn present(db: &Db, n: usize) -> Vec<usize> {
        (0..n)
            .filter(|i| {
                let key = format!("k{i}");
                db.lock(&[&key]).exists(key.as_bytes())
            })
            .collect()
    }

    #[test]
    fn under_the_limit_or_as_a_replica_nothing_is_evicted() {
        let db = db_with(100, |_| 0);
        db.set_policy(EvictionPolicy::AllKeysRandom);
        assert!(db.ensure_memory(), "no limit");
        db.maxmemory
            .store(db.used_memory() as u64, Ordering::Relaxed);
        assert!(db.ensure_memory(), "at the limit");
        db.maxmemory.store(1, Ordering::Relaxed);
        db.set_replica(true);
        assert!(db.ensure_memory(), "a replica follows its master");
        assert_eq!(db.len(), 100);
        db.set_replica(false);
        db.set_policy(EvictionPolicy::NoEviction);
        assert!(!db.ensure_memory(), "noeviction refuses");
        assert_eq!(db.len(), 100);
        assert_eq!(db.stats.evicted_keys.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn allkeys_policies_evict_until_under_the_limit() {
        for policy in [
            EvictionPolicy::AllKeysLru,
            EvictionPolicy::AllKeysLfu,
            EvictionPolicy::AllKeysRandom,
        ] {
            let db = db_with(1000, |_| 0);
            db.set_policy(policy);
            let limit = db.used_memory() / 2;
            db.maxmemory.store(limit as u64, Ordering::Relaxed);
            assert!(db.ensure_memory(), "{policy:?}");
            assert!(db.used_memory() <= limit, "{policy:?}");
            let evicted = db.stats.evicted_keys.load(Ordering::Relaxed) as usize;
            assert_eq!(db.len(), 1000 - evicted, "{policy:?}");
            // One key at a time: it stops as soon as the limit is met.
            assert!((490..=510).contains(&evicted), "{policy:?}: {evicted}");
        }
    }

    #[test]
    fn volatile_policies_never_evict_keys_without_a_ttl() {
        for policy in [
            EvictionPolicy::VolatileLru,
            EvictionPolicy::VolatileLfu,
            EvictionPolicy::VolatileRandom,
            EvictionPolicy::VolatileTtl,
        ] {
            // Even keys have a TTL; odd keys have none.
            let db = db_with(1000, |i| if i % 2 == 0 { 3_600_000 } else { 0 });
            db.set_policy(policy);
            db.maxmemory.store(1, Ordering::Relaxed);
            assert!(!db.ensure_memory(), "{policy:?}: the limit cannot be met");
            let left = present(&db, 1000);
            let odd = left.iter().filter(|i| *i % 2 == 1).count();
            assert_eq!(odd, 500, "{policy:?}: a key without a TTL was evicted");
            // It gives up after 16 fruitless samplings, once few are left.
            assert!(left.len() < 600, "{policy:?}: {} left", left.len());
        }
    }

    #[test]
    fn volatile_ttl_evicts_the_nearest_expiries_first() {
        // Even keys expire in an hour, odd keys in a hundred hours.
        let db = db_with(1000, |i| if i % 2 == 0 { 3_600_000 } else { 360_000_000 });
        db.set_policy(EvictionPolicy::VolatileTtl);
        db.maxmemory
            .store(db.used_memory() as u64 * 3 / 4, Ordering::Relaxed);
        assert!(db.ensure_memory());
        let left = present(&db, 1000);
        let gone: Vec<usize> = (0..1000).filter(|i| !left.contains(i)).collect();
        assert!(gone.len() >= 240, "{}", gone.len());
        // 20 samples a pick: a far expiry wins only when all 20 are far.
        let far = gone.iter().filter(|i| *i % 2 == 1).count();
        assert!(
            far <= 2,
            "{far} of {} evicted keys had the far expiry",
            gone.len()
        );
    }
}
