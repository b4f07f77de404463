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
        if max == 0 || self.used_memory() <= max || self.is_replica() {
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
                Some(key) => {
                    let mut ks = self.lock(&[&key]);
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

    /// Samples a few keys from a few shards and returns the best candidate.
    fn pick_victim(&self, policy: EvictionPolicy) -> Option<Bytes> {
        let mut best: Option<(u64, Bytes)> = None;
        let now = super::now_ms();
        for _ in 0..4 {
            let si = rand::random::<usize>() % SHARDS;
            let ks = self.lock_indices(&[si]);
            let shard = ks.shard(si).expect("locked");
            let n = if policy.volatile_only() {
                shard.volatile_len()
            } else {
                shard.len()
            };
            if n == 0 {
                continue;
            }
            for _ in 0..5 {
                let j = rand::random::<usize>() % n;
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
                    best = Some((score, Bytes::copy_from_slice(key)));
                }
            }
        }
        best.map(|(_, k)| k)
    }
}
