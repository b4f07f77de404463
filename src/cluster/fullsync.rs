//! The full-sync filter: which live mutations a master sends a follower
//! while it streams a snapshot.
//!
//! The snapshot is taken shard by shard; while shard `i` is locked the master
//! reads the log position `L_i`. Every logged commit that touched shard `i`
//! holds shard `i`'s lock while it is logged, so the snapshot of shard `i`
//! contains exactly the effects of the entries `<= L_i` on shard `i`'s keys.
//! The live entries that flow meanwhile are sent filtered: a mutation of
//! entry `o` on a key of shard `s` is sent iff shard `s` has been snapshotted
//! and `o > L_s` (see [`filter`]); the snapshot of every shard is sent before
//! any live mutation of that shard. After the last shard the follower's
//! keyspace equals the master's at `L_63`, the position the full sync ends at;
//! the log then streams unfiltered from `L_63 + 1`. No mutation is lost (it is
//! either in its shard's snapshot or sent live) and none is applied twice.

use crate::engine::{Db, Mutation};

/// What to do with a live mutation during a full sync.
pub enum Filtered {
    Send,
    Skip,
    /// Send this instead (the part of a cross-shard rename that the snapshot lacks).
    Replace(Mutation),
    /// The snapshot cannot be completed consistently: restart the full sync.
    Abort(&'static str),
}

/// Decides whether mutation `m` of entry `offset` must be sent during a full
/// sync, given the cut of each shard (`Some(L_i)` once snapshotted).
pub fn filter(db: &Db, m: &Mutation, offset: u64, cuts: &[Option<u64>]) -> Filtered {
    let live = |key: &[u8]| matches!(cuts[db.shard_index(key)], Some(l) if offset > l);
    match m {
        // A message is delivered whenever it arrives; a scripting change is
        // applied idempotently, and the snapshot starts with the scripting
        // state, so sending one twice is harmless.
        // Which database the mutations after it are in: always needed.
        Mutation::Publish { .. } | Mutation::Script(_) | Mutation::Select { .. } => Filtered::Send,
        Mutation::FlushAll | Mutation::FlushDb | Mutation::SwapDb { .. } => {
            if cuts.iter().all(|c| c.is_none_or(|l| offset > l)) {
                Filtered::Send
            } else {
                Filtered::Abort("FLUSHALL, FLUSHDB or SWAPDB during the snapshot")
            }
        }
        // MOVE keeps the key's name, so its shard: the snapshot of that
        // shard has both databases' sides or neither (the arm below). COPY
        // ... DB is a COPY whose destination is in another database.
        Mutation::Rename { from, to }
        | Mutation::Copy { from, to }
        | Mutation::CopyDb { from, to, .. } => match (live(from), live(to)) {
            (true, true) => Filtered::Send,
            (false, false) => Filtered::Skip,
            (true, false) => match m {
                Mutation::Rename { from, .. } => {
                    Filtered::Replace(Mutation::Del { key: from.clone() })
                }
                _ => Filtered::Skip,
            },
            (false, true) => Filtered::Abort("cross-shard RENAME/COPY during the snapshot"),
        },
        _ => {
            if live(m.keys().0) {
                Filtered::Send
            } else {
                Filtered::Skip
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ExpireSet;
    use bytes::Bytes;

    fn set(k: &str) -> Mutation {
        Mutation::SetStr {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::from_static(b"v"),
            expire: ExpireSet::Clear,
        }
    }

    #[test]
    fn full_sync_filter_sends_each_mutation_once() {
        let db = Db::new();
        let mut cuts = vec![None; crate::engine::SHARDS];
        let k = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        // Find two keys in different shards.
        let a = k("a");
        let b = (0..)
            .map(|i| k(&format!("b{i}")))
            .find(|b| db.shard_index(b) != db.shard_index(&a))
            .unwrap();
        let (sa, sb) = (db.shard_index(&a), db.shard_index(&b));
        cuts[sa] = Some(10);
        // Key in a snapshotted shard: only after its cut.
        assert!(matches!(filter(&db, &set("a"), 10, &cuts), Filtered::Skip));
        assert!(matches!(filter(&db, &set("a"), 11, &cuts), Filtered::Send));
        // Key in a shard not yet snapshotted: the snapshot will have it.
        let mb = Mutation::Del { key: b.clone() };
        assert!(matches!(filter(&db, &mb, 11, &cuts), Filtered::Skip));
        // Rename from a snapshotted shard to a later one: only the delete.
        let r = Mutation::Rename {
            from: a.clone(),
            to: b.clone(),
        };
        assert!(matches!(
            filter(&db, &r, 11, &cuts),
            Filtered::Replace(Mutation::Del { .. })
        ));
        // The other way round cannot be completed: restart.
        let r2 = Mutation::Rename {
            from: b.clone(),
            to: a.clone(),
        };
        assert!(matches!(filter(&db, &r2, 11, &cuts), Filtered::Abort(_)));
        // COPY ... DB across shards, as COPY; a Select is always sent.
        let c2 = Mutation::CopyDb {
            from: b.clone(),
            to: a.clone(),
            db: 3,
        };
        assert!(matches!(filter(&db, &c2, 11, &cuts), Filtered::Abort(_)));
        let select = Mutation::Select { db: 3 };
        assert!(matches!(filter(&db, &select, 1, &cuts), Filtered::Send));
        cuts[sb] = Some(12);
        let swap = Mutation::SwapDb { a: 0, b: 1 };
        assert!(matches!(filter(&db, &swap, 11, &cuts), Filtered::Abort(_)));
        assert!(matches!(filter(&db, &swap, 13, &cuts), Filtered::Send));
        assert!(matches!(filter(&db, &r2, 13, &cuts), Filtered::Send));
        assert!(matches!(filter(&db, &c2, 13, &cuts), Filtered::Send));
        // A whole-database change between two cuts restarts the snapshot.
        assert!(matches!(
            filter(&db, &Mutation::FlushAll, 11, &cuts),
            Filtered::Abort(_)
        ));
        assert!(matches!(
            filter(&db, &Mutation::FlushAll, 13, &cuts),
            Filtered::Send
        ));
    }
}
