//! The memory tier: the local sharded engine, seen as a tier. Every change
//! goes through `Keys::apply`, so memory accounting, eviction, WATCH and
//! keyspace notifications stay in step with back-fills and invalidations.

use std::sync::Arc;

use bytes::Bytes;

use super::{Fetched, Tier, TierError, TierFuture, TierStats};
use crate::commands::Shared;
use crate::engine::Origin;
use crate::engine::{Mutation, ValueType};

pub struct MemoryTier {
    server: Arc<Shared>,
    pub stats: TierStats,
    /// In cluster mode every node caches the upstream on its own: fills and
    /// drops are applied without entering the replication log.
    unlogged: std::sync::atomic::AtomicBool,
}

impl MemoryTier {
    pub fn new(server: Arc<Shared>) -> Self {
        MemoryTier {
            unlogged: std::sync::atomic::AtomicBool::new(false),
            server,
            stats: TierStats::default(),
        }
    }
}

impl MemoryTier {
    /// Cluster mode: apply fills and drops outside the replication log.
    pub fn set_unlogged(&self) {
        self.unlogged
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    fn unlogged(&self) -> bool {
        self.unlogged.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn server(&self) -> &Arc<Shared> {
        &self.server
    }
}

impl Tier for MemoryTier {
    fn kind(&self) -> &'static str {
        "memory"
    }

    fn describe(&self) -> String {
        "local".into()
    }

    fn available(&self) -> bool {
        true
    }

    fn fetch(
        &self,
        key: Bytes,
        _hint: Option<ValueType>,
    ) -> TierFuture<Result<Option<Fetched>, TierError>> {
        let mut ks = self.server.db.lock(&[&key]);
        let got = ks.peek(&key).map(|e| Fetched {
            value: e.value.clone(),
            expire_at: e.expire_at,
        });
        drop(ks);
        Box::pin(async move { Ok(got) })
    }

    fn fill(&self, key: &Bytes, f: Fetched) -> bool {
        let db = &self.server.db;
        if !db.ensure_memory() {
            return false;
        }
        let put = Mutation::Put {
            key: key.clone(),
            value: f.value,
            expire_at: f.expire_at,
        };
        if self.unlogged() {
            db.apply_as(Origin::Cache, vec![put]);
        } else {
            db.lock(&[key]).apply(put);
        }
        TierStats::add(&self.stats.backfills);
        true
    }

    fn invalidate(&self, keys: &[Bytes]) {
        if self.unlogged() {
            let present: Vec<Mutation> = {
                let mut ks = self.server.db.lock(keys);
                keys.iter()
                    .filter(|k| ks.peek(k).is_some())
                    .map(|k| Mutation::Del { key: k.clone() })
                    .collect()
            };
            for _ in &present {
                TierStats::add(&self.stats.invalidations);
            }
            self.server.db.apply_as(Origin::Cache, present);
            return;
        }
        let mut ks = self.server.db.lock(keys);
        for k in keys {
            if ks.peek(k).is_some() {
                ks.apply(Mutation::Del { key: k.clone() });
                TierStats::add(&self.stats.invalidations);
            }
        }
    }

    fn flush(&self) {
        if self.unlogged() {
            self.server
                .db
                .apply_as(Origin::Cache, vec![Mutation::FlushAll]);
            TierStats::add(&self.stats.invalidations);
            return;
        }
        let mut ks = self.server.db.lock_all();
        ks.apply(Mutation::FlushAll);
        TierStats::add(&self.stats.invalidations);
    }

    fn execute(
        &self,
        _args: Vec<Bytes>,
        _resp3: bool,
    ) -> TierFuture<Result<redis::Value, TierError>> {
        // Commands run on the memory tier through the dispatcher itself.
        Box::pin(async { Err(TierError::Unsupported) })
    }

    fn stats(&self) -> &TierStats {
        &self.stats
    }
}
