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

    /// Drops `keys` in every database (an upstream invalidation, which
    /// names no database).
    pub fn invalidate_everywhere(&self, keys: &[Bytes]) {
        self.drop_keys(keys, 0..self.server.db.databases());
    }

    /// Empties database `db`.
    pub fn flush_db(&self, db: usize) {
        self.flush_where(Mutation::FlushDb, db);
    }

    /// Deletes the keys present among `keys` in the databases `dbs`.
    fn drop_keys(&self, keys: &[Bytes], dbs: std::ops::Range<usize>) {
        let engine = &self.server.db;
        let mut present: Vec<(usize, Bytes)> = Vec::new();
        {
            let mut ks = engine.lock(keys);
            for d in dbs {
                ks.select(d);
                present.extend(
                    keys.iter()
                        .filter(|k| ks.peek(k).is_some())
                        .map(|k| (d, k.clone())),
                );
            }
            if !self.unlogged() {
                for (d, k) in &present {
                    ks.select(*d);
                    ks.apply(Mutation::Del { key: k.clone() });
                }
            }
        }
        for _ in &present {
            TierStats::add(&self.stats.invalidations);
        }
        if self.unlogged() {
            engine.apply_as(
                Origin::Cache,
                Mutation::in_databases(present, |key| Mutation::Del { key }),
            );
        }
    }

    /// Applies a whole-keyspace drop (FLUSHALL, or FLUSHDB of `db`).
    fn flush_where(&self, m: Mutation, db: usize) {
        if self.unlogged() {
            self.server.db.apply_as(Origin::Cache, in_db(db, vec![m]));
        } else {
            let mut ks = self.server.db.lock_all();
            ks.select(db);
            ks.apply(m);
        }
        TierStats::add(&self.stats.invalidations);
    }
}

/// Mutations of database `db` as one commit (which starts in database 0).
fn in_db(db: usize, mut muts: Vec<Mutation>) -> Vec<Mutation> {
    if db != 0 {
        muts.insert(0, Mutation::Select { db: db as u32 });
    }
    muts
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
        db: usize,
        key: Bytes,
        _hint: Option<ValueType>,
    ) -> TierFuture<Result<Option<Fetched>, TierError>> {
        let mut ks = self.server.db.lock(&[&key]);
        ks.select(db);
        let got = ks.peek(&key).map(|e| Fetched {
            value: e.value.clone(),
            expire_at: e.expire_at,
        });
        drop(ks);
        Box::pin(async move { Ok(got) })
    }

    fn fill(&self, db: usize, key: &Bytes, f: Fetched) -> bool {
        let engine = &self.server.db;
        if !engine.ensure_memory() {
            return false;
        }
        let put = Mutation::Put {
            key: key.clone(),
            value: f.value,
            expire_at: f.expire_at,
        };
        if self.unlogged() {
            engine.apply_as(Origin::Cache, in_db(db, vec![put]));
        } else {
            let mut ks = engine.lock(&[key]);
            ks.select(db);
            ks.apply(put);
        }
        TierStats::add(&self.stats.backfills);
        true
    }

    fn invalidate(&self, db: usize, keys: &[Bytes]) {
        self.drop_keys(keys, db..db + 1);
    }

    fn flush(&self) {
        self.flush_where(Mutation::FlushAll, 0);
    }

    fn execute(
        &self,
        _db: usize,
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
