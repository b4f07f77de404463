//! What each [`Mutation`] does to the locked shards: one method per kind of
//! change, dispatched by [`Keys::apply_inner`]. Memory accounting, the TTL
//! index and the commit record are kept by the entry primitives these call
//! (`insert_entry`, `modify`, `modify_or_create`, `remove_entry`), so each
//! method here is only the change itself.

use super::value::Elem;
use super::{evict, Entry, ExpireSet, Keys, Mutation, Value};

impl Keys<'_> {
    /// Applies a mutation it only reads (so that a logged one needs no copy);
    /// a `Put` copies its value (`apply` moves it when not logging). Returns
    /// the elements a `Pop` removed.
    pub(super) fn apply_inner(&mut self, m: &Mutation) -> Vec<Elem> {
        use Mutation::*;
        match *m {
            Put {
                ref key,
                ref value,
                expire_at,
            } => self.put(key, value.clone(), expire_at),
            SetStr {
                ref key,
                ref value,
                expire,
            } => self.set_str(key, value, expire),
            Append { ref key, ref data } => self.write_str(key, None, data),
            SetRange {
                ref key,
                offset,
                ref data,
            } => self.write_str(key, Some(offset), data),
            Del { ref key } => {
                self.remove_entry(key);
            }
            Expire { ref key, at } => {
                self.modify(key, |e| e.expire_at = at);
            }
            Rename { ref from, ref to } => {
                if let Some(e) = self.remove_entry(from) {
                    self.insert_entry(to, e);
                }
            }
            Copy { ref from, ref to } => {
                if let Some(e) = self.peek(from).cloned() {
                    self.insert_entry(to, e);
                }
            }
            HSet { ref key, ref pairs } => self.hset(key, pairs),
            HDel {
                ref key,
                ref fields,
            } => self.modify_value(key, |v| {
                if let Value::Hash(h) = v {
                    for f in fields {
                        h.remove(f);
                    }
                }
            }),
            Push {
                ref key,
                left,
                ref elems,
            } => self.push(key, left, elems),
            Pop {
                ref key,
                left,
                count,
            } => return self.pop(key, left, count),
            LSet { .. } | LInsert { .. } | LRem { .. } | LTrim { .. } => self.edit_list(m),
            SAdd {
                ref key,
                ref members,
            } => self.sadd(key, members),
            SRem {
                ref key,
                ref members,
            } => self.modify_value(key, |v| {
                if let Value::Set(s) = v {
                    for m in members {
                        s.remove(m);
                    }
                }
            }),
            ZAdd { ref key, ref pairs } => self.zadd(key, pairs),
            ZRem {
                ref key,
                ref members,
            } => self.modify_value(key, |v| {
                if let Value::ZSet(z) = v {
                    for m in members {
                        z.remove(m);
                    }
                }
            }),
            Stream { ref key, ref op } => self.stream_op(key, op),
            FlushAll
            | Publish { .. }
            | Script(_)
            | Select { .. }
            | Move { .. }
            | CopyDb { .. }
            | SwapDb { .. }
            | FlushDb => unreachable!("handled in apply"),
        }
        Vec::new()
    }

    /// Changes the value of an existing key (nothing if there is none).
    fn modify_value(&mut self, key: &[u8], f: impl FnOnce(&mut Value)) {
        self.modify(key, |e| f(&mut e.value));
    }

    /// SET: the value replaces any other, with the expiry `expire` says.
    fn set_str(&mut self, key: &[u8], value: &[u8], expire: ExpireSet) {
        let value = Value::Str(value.into());
        let at = |old: u64| match expire {
            ExpireSet::Keep => old,
            ExpireSet::Clear => 0,
            ExpireSet::At(t) => t,
        };
        if let Some((slot, i)) = self.live_index(key) {
            self.modify_at(slot, i, key, |e| {
                e.value = value;
                e.expire_at = at(e.expire_at);
            });
        } else {
            let expire_at = at(0);
            let access = evict::initial_access(self.db.policy());
            self.insert_entry(
                key,
                Entry {
                    value,
                    expire_at,
                    access,
                    scan_slot: 0,
                },
            );
        }
    }

    /// APPEND (`offset` None) or SETRANGE: writes `data` into the string,
    /// growing it in place (one realloc, zero-padded) rather than copying.
    fn write_str(&mut self, key: &[u8], offset: Option<usize>, data: &[u8]) {
        self.modify_or_create(
            key,
            || Value::Str(Box::new([])),
            |v| matches!(v, Value::Str(_)),
            |v| {
                let Value::Str(s) = v else { return };
                let offset = offset.unwrap_or(s.len());
                let end = offset + data.len();
                if s.len() < end {
                    let mut n = std::mem::take(s).into_vec();
                    n.reserve_exact(end - n.len());
                    n.resize(end, 0);
                    *s = n.into_boxed_slice();
                }
                s[offset..end].copy_from_slice(data);
            },
        );
    }

    fn hset(&mut self, key: &[u8], pairs: &[(bytes::Bytes, bytes::Bytes)]) {
        self.modify_or_create(
            key,
            || Value::Hash(Box::default()),
            |v| matches!(v, Value::Hash(_)),
            |v| {
                if let Value::Hash(h) = v {
                    for (f, val) in pairs {
                        h.insert(f, val);
                    }
                }
            },
        );
    }

    fn push(&mut self, key: &[u8], left: bool, elems: &[bytes::Bytes]) {
        self.modify_or_create(
            key,
            || Value::List(Box::default()),
            |v| matches!(v, Value::List(_)),
            |v| {
                if let Value::List(l) = v {
                    for el in elems {
                        if left {
                            l.push_front(el[..].into());
                        } else {
                            l.push_back(el[..].into());
                        }
                    }
                }
            },
        );
    }

    fn pop(&mut self, key: &[u8], left: bool, count: usize) -> Vec<Elem> {
        self.modify(key, |e| {
            let mut out = Vec::new();
            if let Value::List(l) = &mut e.value {
                for _ in 0..count {
                    let el = if left { l.pop_front() } else { l.pop_back() };
                    match el {
                        Some(x) => out.push(x),
                        None => break,
                    }
                }
            }
            out
        })
        .unwrap_or_default()
    }

    /// LSET, LINSERT, LREM, LTRIM: changes inside an existing list.
    fn edit_list(&mut self, m: &Mutation) {
        use Mutation::*;
        let key = m.keys().0;
        self.modify_value(key, |v| {
            let Value::List(l) = v else { return };
            match *m {
                LSet {
                    index, ref elem, ..
                } => {
                    if index < l.len() {
                        l.set(index, elem[..].into());
                    }
                }
                LInsert {
                    index, ref elem, ..
                } => {
                    if index <= l.len() {
                        l.insert(index, elem[..].into());
                    }
                }
                LRem {
                    count, ref elem, ..
                } => {
                    l.remove_matching(elem, count);
                }
                LTrim { start, stop, .. } => {
                    let keep = (start <= stop && stop < l.len()).then_some((start, stop));
                    l.retain_range(keep);
                }
                _ => unreachable!("not a list edit"),
            }
        });
    }

    fn sadd(&mut self, key: &[u8], members: &[bytes::Bytes]) {
        self.modify_or_create(
            key,
            || Value::Set(Box::default()),
            |v| matches!(v, Value::Set(_)),
            |v| {
                if let Value::Set(s) = v {
                    for m in members {
                        s.insert(m);
                    }
                }
            },
        );
    }

    fn zadd(&mut self, key: &[u8], pairs: &[(f64, bytes::Bytes)]) {
        self.modify_or_create(
            key,
            || Value::ZSet(Box::default()),
            |v| matches!(v, Value::ZSet(_)),
            |v| {
                if let Value::ZSet(z) = v {
                    for (s, m) in pairs {
                        z.insert(m, *s);
                    }
                }
            },
        );
    }
}
