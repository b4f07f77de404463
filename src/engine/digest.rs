//! DEBUG DIGEST: a fingerprint of the whole keyspace (every database), to compare two nodes
//! (or a node before and after a restart) without reading every key.

use super::{Db, StreamId, Value};

/// A keyspace digest: order-independent over keys, order-dependent only where
/// the type is ordered (lists, sorted sets). Equal keyspaces, equal digests.
pub fn digest(db: &Db) -> String {
    use std::hash::{Hash, Hasher};
    let mut acc: [u64; 2] = [0, 0];
    let mut keys = 0u64;
    for i in 0..super::SHARDS {
        let ks = db.lock_indices(&[i]);
        for (d, shard) in ks.shard_databases(i) {
            for (k, e) in shard.iter() {
                keys += 1;
                for (seed, slot) in acc.iter_mut().enumerate() {
                    let mut h = std::hash::DefaultHasher::new();
                    seed.hash(&mut h);
                    // Database 0's keys hash as before databases existed.
                    if d != 0 {
                        d.hash(&mut h);
                    }
                    k.hash(&mut h);
                    e.expire_at.hash(&mut h);
                    match &e.value {
                        Value::Str(s) => (0u8, &s[..]).hash(&mut h),
                        Value::List(l) => {
                            1u8.hash(&mut h);
                            for x in l.iter() {
                                x.hash(&mut h);
                            }
                        }
                        Value::Hash(hv) => {
                            let mut x: u64 = 0;
                            for (f, v) in hv.iter() {
                                let mut eh = std::hash::DefaultHasher::new();
                                (f, v).hash(&mut eh);
                                x = x.wrapping_add(eh.finish());
                            }
                            (2u8, x, hv.len()).hash(&mut h);
                        }
                        Value::Set(s) => {
                            let mut x: u64 = 0;
                            for m in s.iter() {
                                let mut eh = std::hash::DefaultHasher::new();
                                m.hash(&mut eh);
                                x = x.wrapping_add(eh.finish());
                            }
                            (3u8, x, s.len()).hash(&mut h);
                        }
                        Value::ZSet(z) => {
                            4u8.hash(&mut h);
                            for (m, s) in z.iter() {
                                (m, s.to_bits()).hash(&mut h);
                            }
                        }
                        Value::Stream(s) => {
                            5u8.hash(&mut h);
                            for (id, fields) in s.range(StreamId::MIN, StreamId::MAX, false) {
                                (id, fields).hash(&mut h);
                            }
                            (s.last_id, s.max_deleted, s.entries_added).hash(&mut h);
                            for (name, g) in s.groups() {
                                (name, g.last_id, g.entries_read).hash(&mut h);
                                for (id, n) in &g.pel {
                                    (id, &n.consumer, n.delivery_time, n.delivery_count)
                                        .hash(&mut h);
                                }
                                for (c, cv) in &g.consumers {
                                    (c, cv.seen_time).hash(&mut h);
                                }
                            }
                        }
                    }
                    *slot = slot.wrapping_add(h.finish());
                }
            }
        }
    }
    if keys == 0 {
        return "0".repeat(40);
    }
    format!("{:016x}{:016x}{:08x}", acc[0], acc[1], keys as u32)
}
