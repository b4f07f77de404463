//! The memory tier: the local sharded engine, seen as a tier. Every change
//! goes through `Keys::apply`, so memory accounting, eviction, WATCH and
//! keyspace notifications stay in step with back-fills and invalidations.

use std::sync::Arc;

use bytes::Bytes;

use super::{Fetched, Tier, TierError, TierFuture, TierStats};
use crate::engine::{Mutation, ValueType};
use crate::server::Shared;

pub struct MemoryTier {
    server: Arc<Shared>,
    pub stats: TierStats,
}

impl MemoryTier {
    pub fn new(server: Arc<Shared>) -> Self {
        MemoryTier {
            server,
            stats: TierStats::default(),
        }
    }
}

impl MemoryTier {
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
        let mut ks = db.lock(&[key]);
        ks.apply(Mutation::Put {
            key: key.clone(),
            value: f.value,
            expire_at: f.expire_at,
        });
        TierStats::add(&self.stats.backfills);
        true
    }

    fn invalidate(&self, keys: &[Bytes]) {
        let mut ks = self.server.db.lock(keys);
        for k in keys {
            if ks.peek(k).is_some() {
                ks.apply(Mutation::Del { key: k.clone() });
                TierStats::add(&self.stats.invalidations);
            }
        }
    }

    fn flush(&self) {
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
