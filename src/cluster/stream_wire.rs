//! Streams on the replication wire: a stream value (full sync, `Put`) with
//! its nodes and consumer groups, and [`StreamOp`] mutations. Split from
//! `wire.rs` only for size; the rules there (a peer's value or mutation
//! that a master could not have sent is refused) hold here too.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::wire::pb;
use crate::engine::stream::{Consumer, Group, Nack, Node, TrimBy};
use crate::engine::{Stream, StreamId, StreamOp};

fn id_pb(id: StreamId) -> Option<pb::StreamId> {
    Some(pb::StreamId {
        ms: id.ms,
        seq: id.seq,
    })
}

fn id_of(id: Option<pb::StreamId>) -> StreamId {
    id.map(|i| StreamId::new(i.ms, i.seq)).unwrap_or_default()
}

fn c(x: &[u8]) -> Bytes {
    Bytes::copy_from_slice(x)
}

pub fn value_to_pb(s: &Stream) -> pb::StreamValue {
    pb::StreamValue {
        entries: s
            .range(StreamId::MIN, StreamId::MAX, false)
            .map(|(id, f)| pb::StreamEntry {
                id: id_pb(id),
                fields: f.iter().map(c).collect(),
            })
            .collect(),
        nodes: s
            .nodes()
            .map(|(m, n)| pb::StreamNode {
                master: id_pb(m),
                fields: n.fields.iter().map(|x| c(x)).collect(),
                last: id_pb(n.last),
                valid: n.valid,
                deleted: n.deleted,
                body: n.body as u64,
            })
            .collect(),
        last_id: id_pb(s.last_id),
        max_deleted: id_pb(s.max_deleted),
        entries_added: s.entries_added,
        groups: s
            .groups()
            .map(|(name, g)| pb::StreamGroup {
                name: c(name),
                last_id: id_pb(g.last_id),
                entries_read: g.entries_read,
                pel: g
                    .pel
                    .iter()
                    .map(|(id, n)| pb::StreamNack {
                        id: id_pb(*id),
                        consumer: c(&n.consumer),
                        delivery_time: n.delivery_time,
                        delivery_count: n.delivery_count,
                    })
                    .collect(),
                consumers: g
                    .consumers
                    .iter()
                    .map(|(name, cs)| pb::StreamConsumer {
                        name: c(name),
                        seen_time: cs.seen_time,
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// A stream from a peer, or None when it is inconsistent (entries out of
/// order or past the last ID, an odd field list, nodes that do not cover
/// the entries, a pending entry of an unknown consumer).
pub fn value_from_pb(v: pb::StreamValue) -> Option<Stream> {
    let last_id = id_of(v.last_id);
    let mut entries = Vec::with_capacity(v.entries.len().min(1 << 16));
    let mut prev: Option<StreamId> = None;
    for e in v.entries {
        let id = id_of(e.id);
        if prev.is_some_and(|p| p >= id) || id > last_id || e.fields.is_empty() {
            return None;
        }
        if !e.fields.len().is_multiple_of(2) {
            return None;
        }
        prev = Some(id);
        entries.push((id, e.fields));
    }
    let mut nodes = Vec::new();
    let mut valid = 0u64;
    for n in v.nodes {
        valid = valid.checked_add(n.valid)?;
        nodes.push((
            id_of(n.master),
            Node {
                fields: n.fields.iter().map(|f| f[..].into()).collect(),
                last: id_of(n.last),
                valid: n.valid,
                deleted: n.deleted,
                body: usize::try_from(n.body).ok()?,
            },
        ));
    }
    if valid != entries.len() as u64 || nodes.windows(2).any(|w| w[0].0 >= w[1].0) {
        return None;
    }
    // Each node holds exactly the live entries between its master ID and
    // the next node's (trimming relies on it).
    let mut at = 0;
    for (i, (master, node)) in nodes.iter().enumerate() {
        let end = nodes.get(i + 1).map(|(m, _)| *m);
        if at < entries.len() && entries[at].0 < *master {
            return None;
        }
        let mut n = 0;
        while at < entries.len() && end.is_none_or(|e| entries[at].0 < e) {
            at += 1;
            n += 1;
        }
        if n != node.valid || node.valid == 0 || node.last < *master {
            return None;
        }
    }
    let mut groups = Vec::new();
    for g in v.groups {
        let mut grp = Group::new(id_of(g.last_id), g.entries_read);
        for cs in g.consumers {
            grp.consumers.insert(
                cs.name[..].into(),
                Consumer {
                    seen_time: cs.seen_time,
                    pel: BTreeSet::new(),
                },
            );
        }
        let mut pel = BTreeMap::new();
        for n in g.pel {
            let id = id_of(n.id);
            grp.consumers.get_mut(&n.consumer[..])?.pel.insert(id);
            let nack = Nack {
                consumer: n.consumer[..].into(),
                delivery_time: n.delivery_time,
                delivery_count: n.delivery_count,
            };
            if pel.insert(id, nack).is_some() {
                return None;
            }
        }
        grp.pel = pel;
        groups.push((g.name, grp));
    }
    Some(Stream::from_parts(
        entries,
        nodes,
        last_id,
        id_of(v.max_deleted),
        v.entries_added,
        groups,
    ))
}

pub fn op_to_pb(key: &Bytes, op: &StreamOp) -> pb::StreamMutation {
    use pb::stream_mutation::Op;
    let group_op = |group: &Bytes, id: StreamId, read: i64, mk: bool| pb::StreamGroupOp {
        group: group.clone(),
        id: id_pb(id),
        entries_read: read,
        mkstream: mk,
    };
    let op = match op {
        StreamOp::Add {
            id,
            fields,
            node_max_entries,
            node_max_bytes,
        } => Op::Add(pb::StreamAdd {
            id: id_pb(*id),
            fields: fields.clone(),
            node_max_entries: *node_max_entries,
            node_max_bytes: *node_max_bytes,
        }),
        StreamOp::Trim { by, approx, limit } => {
            let (by_min_id, max_len, min_id) = match by {
                TrimBy::MaxLen(n) => (false, *n, StreamId::MIN),
                TrimBy::MinId(id) => (true, 0, *id),
            };
            Op::Trim(pb::StreamTrim {
                by_min_id,
                max_len,
                min_id: id_pb(min_id),
                approx: *approx,
                limit: *limit,
            })
        }
        StreamOp::Delete { ids } => Op::Del(pb::StreamIds {
            ids: ids.iter().map(|i| id_pb(*i).expect("some")).collect(),
        }),
        StreamOp::SetId {
            last_id,
            entries_added,
            max_deleted,
        } => Op::SetId(pb::StreamSetId {
            last_id: id_pb(*last_id),
            has_entries_added: entries_added.is_some(),
            entries_added: entries_added.unwrap_or(0),
            max_deleted: max_deleted.and_then(id_pb),
        }),
        StreamOp::GroupCreate {
            group,
            id,
            entries_read,
            mkstream,
        } => Op::GroupCreate(group_op(group, *id, *entries_read, *mkstream)),
        StreamOp::GroupSetId {
            group,
            id,
            entries_read,
        } => Op::GroupSetId(group_op(group, *id, *entries_read, false)),
        StreamOp::GroupDestroy { group } => {
            Op::GroupDestroy(group_op(group, StreamId::MIN, 0, false))
        }
        StreamOp::ConsumerCreate {
            group,
            consumer,
            seen_time,
        } => Op::ConsumerCreate(pb::StreamConsumerOp {
            group: group.clone(),
            consumer: consumer.clone(),
            seen_time: *seen_time,
        }),
        StreamOp::ConsumerDelete { group, consumer } => Op::ConsumerDelete(pb::StreamConsumerOp {
            group: group.clone(),
            consumer: consumer.clone(),
            seen_time: 0,
        }),
        StreamOp::GroupUpdate {
            group,
            consumer,
            last,
            claim,
            ack,
        } => Op::GroupUpdate(pb::StreamGroupUpdate {
            group: group.clone(),
            has_consumer: consumer.is_some(),
            consumer: consumer.as_ref().map(|c| c.0.clone()).unwrap_or_default(),
            seen_time: consumer.as_ref().map_or(0, |c| c.1),
            last_id: last.and_then(|l| id_pb(l.0)),
            entries_read: last.map_or(0, |l| l.1),
            claim: claim
                .iter()
                .map(|(id, t, n)| pb::StreamClaim {
                    id: id_pb(*id),
                    delivery_time: *t,
                    delivery_count: *n,
                })
                .collect(),
            ack: ack.iter().map(|i| id_pb(*i).expect("some")).collect(),
        }),
    };
    pb::StreamMutation {
        key: key.clone(),
        op: Some(op),
    }
}

/// A stream mutation from a peer (key, op); None when it is malformed
/// (an odd or empty field list, no op).
pub fn op_from_pb(m: pb::StreamMutation) -> Option<(Bytes, StreamOp)> {
    use pb::stream_mutation::Op;
    let op = match m.op? {
        Op::Add(a) => {
            if a.fields.is_empty() || !a.fields.len().is_multiple_of(2) {
                return None;
            }
            StreamOp::Add {
                id: id_of(a.id),
                fields: a.fields,
                node_max_entries: a.node_max_entries,
                node_max_bytes: a.node_max_bytes,
            }
        }
        Op::Trim(t) => StreamOp::Trim {
            by: if t.by_min_id {
                TrimBy::MinId(id_of(t.min_id))
            } else {
                TrimBy::MaxLen(t.max_len)
            },
            approx: t.approx,
            limit: t.limit,
        },
        Op::Del(d) => StreamOp::Delete {
            ids: d.ids.into_iter().map(|i| id_of(Some(i))).collect(),
        },
        Op::SetId(s) => StreamOp::SetId {
            last_id: id_of(s.last_id),
            entries_added: s.has_entries_added.then_some(s.entries_added),
            max_deleted: s.max_deleted.map(|i| id_of(Some(i))),
        },
        Op::GroupCreate(g) => StreamOp::GroupCreate {
            group: g.group,
            id: id_of(g.id),
            entries_read: g.entries_read,
            mkstream: g.mkstream,
        },
        Op::GroupSetId(g) => StreamOp::GroupSetId {
            group: g.group,
            id: id_of(g.id),
            entries_read: g.entries_read,
        },
        Op::GroupDestroy(g) => StreamOp::GroupDestroy { group: g.group },
        Op::ConsumerCreate(c) => StreamOp::ConsumerCreate {
            group: c.group,
            consumer: c.consumer,
            seen_time: c.seen_time,
        },
        Op::ConsumerDelete(c) => StreamOp::ConsumerDelete {
            group: c.group,
            consumer: c.consumer,
        },
        Op::GroupUpdate(u) => StreamOp::GroupUpdate {
            group: u.group,
            consumer: u.has_consumer.then_some((u.consumer, u.seen_time)),
            last: u.last_id.map(|i| (id_of(Some(i)), u.entries_read)),
            claim: u
                .claim
                .into_iter()
                .map(|c| (id_of(c.id), c.delivery_time, c.delivery_count))
                .collect(),
            ack: u.ack.into_iter().map(|i| id_of(Some(i))).collect(),
        },
    };
    Some((m.key, op))
}
