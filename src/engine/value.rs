//! The values a key can hold, each keeping an O(1) running count of the heap
//! bytes it holds so memory accounting never walks a collection.

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};

use super::zset::ZSet;

/// Estimated allocator overhead per heap allocation (jemalloc rounds up to a
/// size class; glibc adds a header). Used by every estimate below.
pub const ALLOC_OVERHEAD: usize = 8;

pub type Elem = Box<[u8]>;
pub type Hasher = ahash::RandomState;

#[derive(Clone, Debug)]
pub enum Value {
    Str(Elem),
    List(Box<ListValue>),
    Hash(Box<HashValue>),
    Set(Box<SetValue>),
    ZSet(Box<ZSet>),
}

/// The type names TYPE and SCAN TYPE use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            _ => return None,
        })
    }
}

impl Value {
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::Str(_) => ValueType::String,
            Value::List(_) => ValueType::List,
            Value::Hash(_) => ValueType::Hash,
            Value::Set(_) => ValueType::Set,
            Value::ZSet(_) => ValueType::ZSet,
        }
    }

    /// Heap bytes held by this value (not counting the entry itself).
    pub fn mem_bytes(&self) -> usize {
        match self {
            Value::Str(s) => str_bytes(s.len()),
            Value::List(l) => l.mem_bytes(),
            Value::Hash(h) => h.mem_bytes(),
            Value::Set(s) => s.mem_bytes(),
            Value::ZSet(z) => z.mem_bytes() + std::mem::size_of::<ZSet>(),
        }
    }

    /// True for a collection with no elements (such keys are deleted).
    pub fn is_empty_collection(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    pub fn as_str(&self) -> Option<&[u8]> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn str_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else {
        len + ALLOC_OVERHEAD
    }
}

/// A list: a ring buffer of elements.
#[derive(Clone, Debug, Default)]
pub struct ListValue {
    items: VecDeque<Elem>,
    bytes: usize,
}

const LIST_ELEM: usize = std::mem::size_of::<Elem>();

impl ListValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.items.capacity() * LIST_ELEM + self.bytes
    }
    pub fn get(&self, index: usize) -> Option<&[u8]> {
        self.items.get(index).map(|e| &e[..])
    }
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator + '_ {
        self.items.iter().map(|e| &e[..])
    }
    pub fn push_front(&mut self, e: Elem) {
        self.bytes += str_bytes(e.len());
        self.items.push_front(e);
    }
    pub fn push_back(&mut self, e: Elem) {
        self.bytes += str_bytes(e.len());
        self.items.push_back(e);
    }
    pub fn pop_front(&mut self) -> Option<Elem> {
        let e = self.items.pop_front()?;
        self.bytes -= str_bytes(e.len());
        self.shrink();
        Some(e)
    }
    pub fn pop_back(&mut self) -> Option<Elem> {
        let e = self.items.pop_back()?;
        self.bytes -= str_bytes(e.len());
        self.shrink();
        Some(e)
    }
    pub fn set(&mut self, index: usize, e: Elem) {
        self.bytes += str_bytes(e.len());
        let old = std::mem::replace(&mut self.items[index], e);
        self.bytes -= str_bytes(old.len());
    }
    pub fn insert(&mut self, index: usize, e: Elem) {
        self.bytes += str_bytes(e.len());
        self.items.insert(index, e);
    }
    pub fn remove(&mut self, index: usize) -> Option<Elem> {
        let e = self.items.remove(index)?;
        self.bytes -= str_bytes(e.len());
        Some(e)
    }
    /// Keeps only the elements at indexes `start..=stop` (already clamped, start <= stop < len),
    /// or clears the list when `keep` is None.
    pub fn retain_range(&mut self, keep: Option<(usize, usize)>) {
        match keep {
            None => {
                self.items.clear();
                self.bytes = 0;
            }
            Some((start, stop)) => {
                for _ in 0..start {
                    self.pop_front();
                }
                let keep_len = stop - start + 1;
                while self.items.len() > keep_len {
                    self.pop_back();
                }
            }
        }
        self.shrink();
    }
    /// Removes elements equal to `elem`: `count` > 0 from the head, < 0 from the tail, 0 all.
    pub fn remove_matching(&mut self, elem: &[u8], count: i64) -> usize {
        let limit = if count == 0 {
            usize::MAX
        } else {
            count.unsigned_abs() as usize
        };
        let mut removed = 0;
        if count >= 0 {
            let mut i = 0;
            while i < self.items.len() && removed < limit {
                if &self.items[i][..] == elem {
                    self.remove(i);
                    removed += 1;
                } else {
                    i += 1;
                }
            }
        } else {
            let mut i = self.items.len();
            while i > 0 && removed < limit {
                i -= 1;
                if &self.items[i][..] == elem {
                    self.remove(i);
                    removed += 1;
                }
            }
        }
        self.shrink();
        removed
    }
    fn shrink(&mut self) {
        if self.items.capacity() > 64 && self.items.len() < self.items.capacity() / 4 {
            self.items.shrink_to(self.items.len() * 2);
        }
    }
}

/// A hash: field -> value, with O(1) random access for HRANDFIELD.
#[derive(Clone, Debug, Default)]
pub struct HashValue {
    map: IndexMap<Elem, Elem, Hasher>,
    bytes: usize,
}

/// Up to this many fields a hash keeps insertion order on removal
/// (Redis's default hash-max-listpack-entries).
const SMALL_HASH: usize = 128;

const HASH_SLOT: usize = 2 * std::mem::size_of::<Elem>() + 8 + 9;

impl HashValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.map.len()
    }
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.map.capacity() * HASH_SLOT + self.bytes
    }
    pub fn get(&self, field: &[u8]) -> Option<&[u8]> {
        self.map.get(field).map(|v| &v[..])
    }
    pub fn contains(&self, field: &[u8]) -> bool {
        self.map.contains_key(field)
    }
    /// Sets a field; returns true if it is new.
    pub fn insert(&mut self, field: &[u8], value: &[u8]) -> bool {
        self.bytes += str_bytes(value.len());
        if let Some(old) = self.map.get_mut(field) {
            let old = std::mem::replace(old, value.into());
            self.bytes -= str_bytes(old.len());
            false
        } else {
            self.bytes += str_bytes(field.len());
            self.map.insert(field.into(), value.into());
            true
        }
    }
    /// Removes a field. Small hashes (listpack-sized in Redis) keep their
    /// insertion order, as Redis's listpack does; large ones swap-remove in O(1).
    pub fn remove(&mut self, field: &[u8]) -> bool {
        let removed = if self.map.len() <= SMALL_HASH {
            self.map.shift_remove_entry(field)
        } else {
            self.map.swap_remove_entry(field)
        };
        match removed {
            Some((f, v)) => {
                self.bytes -= str_bytes(f.len()) + str_bytes(v.len());
                true
            }
            None => false,
        }
    }
    pub fn get_index(&self, i: usize) -> Option<(&[u8], &[u8])> {
        self.map.get_index(i).map(|(f, v)| (&f[..], &v[..]))
    }
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.map.iter().map(|(f, v)| (&f[..], &v[..]))
    }
}

/// A set of members, with O(1) random access for SPOP/SRANDMEMBER.
#[derive(Clone, Debug, Default)]
pub struct SetValue {
    set: IndexSet<Elem, Hasher>,
    bytes: usize,
}

const SET_SLOT: usize = std::mem::size_of::<Elem>() + 8 + 9;

impl SetValue {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn len(&self) -> usize {
        self.set.len()
    }
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
    pub fn mem_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.set.capacity() * SET_SLOT + self.bytes
    }
    pub fn contains(&self, m: &[u8]) -> bool {
        self.set.contains(m)
    }
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.set.contains(m) {
            return false;
        }
        self.bytes += str_bytes(m.len());
        self.set.insert(m.into());
        true
    }
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.set.swap_take(m) {
            Some(e) => {
                self.bytes -= str_bytes(e.len());
                true
            }
            None => false,
        }
    }
    pub fn get_index(&self, i: usize) -> Option<&[u8]> {
        self.set.get_index(i).map(|e| &e[..])
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.set.iter().map(|e| &e[..])
    }
}
