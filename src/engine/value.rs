//! The values a key can hold, each keeping an O(1) running count of the heap
//! bytes it holds so memory accounting never walks a collection.

use std::collections::VecDeque;

use indexmap::{IndexMap, IndexSet};

use super::stream::Stream;
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
    Stream(Box<Stream>),
}

/// The type names TYPE and SCAN TYPE use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    String,
    List,
    Hash,
    Set,
    ZSet,
    Stream,
}

impl ValueType {
    pub fn name(self) -> &'static str {
        match self {
            ValueType::String => "string",
            ValueType::List => "list",
            ValueType::Hash => "hash",
            ValueType::Set => "set",
            ValueType::ZSet => "zset",
            ValueType::Stream => "stream",
        }
    }

    pub fn from_name(name: &[u8]) -> Option<ValueType> {
        Some(match name.to_ascii_lowercase().as_slice() {
            b"string" => ValueType::String,
            b"list" => ValueType::List,
            b"hash" => ValueType::Hash,
            b"set" => ValueType::Set,
            b"zset" => ValueType::ZSet,
            b"stream" => ValueType::Stream,
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
            Value::Stream(_) => ValueType::Stream,
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
            Value::Stream(s) => s.mem_bytes(),
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
            // An empty stream stays (XDEL, XTRIM, XGROUP CREATE MKSTREAM).
            Value::Stream(_) => false,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::fuzz;
    use rand::rngs::StdRng;
    use rand::Rng;

    /// An element of 0 to 19 bytes from a small alphabet (repeats are likely).
    fn elem(rng: &mut StdRng) -> Vec<u8> {
        let n = rng.gen_range(0..20);
        (0..n).map(|_| rng.gen_range(b'a'..=b'c')).collect()
    }

    fn list_recount(l: &ListValue) -> usize {
        l.items.iter().map(|e| str_bytes(e.len())).sum()
    }

    fn hash_recount(h: &HashValue) -> usize {
        h.map
            .iter()
            .map(|(f, v)| str_bytes(f.len()) + str_bytes(v.len()))
            .sum()
    }

    fn set_recount(s: &SetValue) -> usize {
        s.set.iter().map(|m| str_bytes(m.len())).sum()
    }

    #[test]
    fn string_bytes_are_length_plus_overhead_and_nothing_when_empty() {
        assert_eq!(str_bytes(0), 0);
        assert_eq!(str_bytes(1), 1 + ALLOC_OVERHEAD);
        assert_eq!(Value::Str(Box::from(&b""[..])).mem_bytes(), 0);
        assert_eq!(Value::Str(Box::from(&b"hello"[..])).mem_bytes(), 13);
    }

    #[test]
    fn list_byte_count_matches_a_recount_after_every_operation() {
        let mut rng = fuzz::rng(11);
        let mut l = ListValue::new();
        let mut model: Vec<Vec<u8>> = Vec::new();
        for step in 0..20_000 {
            let n = model.len();
            match rng.gen_range(0..100) {
                0..=24 => {
                    let e = elem(&mut rng);
                    l.push_back(e.clone().into());
                    model.push(e);
                }
                25..=34 => {
                    let e = elem(&mut rng);
                    l.push_front(e.clone().into());
                    model.insert(0, e);
                }
                35..=44 => {
                    let got = l.pop_front().map(|e| e.to_vec());
                    assert_eq!(got, (n > 0).then(|| model.remove(0)));
                }
                45..=54 => {
                    let got = l.pop_back().map(|e| e.to_vec());
                    assert_eq!(got, model.pop());
                }
                55..=64 if n > 0 => {
                    let (i, e) = (rng.gen_range(0..n), elem(&mut rng));
                    l.set(i, e.clone().into());
                    model[i] = e;
                }
                65..=74 => {
                    let (i, e) = (rng.gen_range(0..=n), elem(&mut rng));
                    l.insert(i, e.clone().into());
                    model.insert(i, e);
                }
                75..=84 if n > 0 => {
                    let i = rng.gen_range(0..n);
                    assert_eq!(l.remove(i).map(|e| e.to_vec()), Some(model.remove(i)));
                }
                85..=98 => {
                    let e = elem(&mut rng);
                    let count = rng.gen_range(-2..=2i64);
                    let removed = l.remove_matching(&e, count);
                    let mut left = if count == 0 {
                        usize::MAX
                    } else {
                        count.unsigned_abs() as usize
                    };
                    let mut expected = 0;
                    let positions: Vec<usize> = if count >= 0 {
                        (0..n).collect()
                    } else {
                        (0..n).rev().collect()
                    };
                    let mut keep = vec![true; n];
                    for i in positions {
                        if left > 0 && model[i] == e {
                            keep[i] = false;
                            left -= 1;
                            expected += 1;
                        }
                    }
                    let mut k = keep.iter();
                    model.retain(|_| *k.next().unwrap());
                    assert_eq!(removed, expected);
                }
                99 if n > 0 => {
                    let start = rng.gen_range(0..n);
                    let stop = rng.gen_range(start..n);
                    l.retain_range(Some((start, stop)));
                    model = model[start..=stop].to_vec();
                }
                _ => {}
            }
            assert_eq!(l.bytes, list_recount(&l), "step {step}");
            let items: Vec<&[u8]> = l.iter().collect();
            let expect: Vec<&[u8]> = model.iter().map(|e| &e[..]).collect();
            assert_eq!(items, expect, "step {step}");
        }
        assert_eq!(
            l.mem_bytes(),
            std::mem::size_of::<ListValue>() + l.items.capacity() * LIST_ELEM + list_recount(&l)
        );
        let copy = l.clone();
        let expect = copy.mem_bytes();
        assert_eq!(Value::List(Box::new(copy)).mem_bytes(), expect);
        l.retain_range(None);
        assert_eq!((l.len(), l.bytes), (0, 0));
    }

    #[test]
    fn a_list_that_grew_and_emptied_gives_its_slots_back() {
        let mut l = ListValue::new();
        for i in 0..10_000u32 {
            l.push_back(i.to_be_bytes().into());
        }
        let full = l.mem_bytes();
        while l.len() > 1 {
            l.pop_front();
        }
        assert_eq!(l.bytes, 4 + ALLOC_OVERHEAD);
        assert!(l.mem_bytes() * 10 < full, "{} vs {full}", l.mem_bytes());
    }

    #[test]
    fn hash_byte_count_matches_a_recount_small_and_large() {
        let mut rng = fuzz::rng(12);
        let mut h = HashValue::new();
        let mut model = std::collections::HashMap::new();
        for step in 0..20_000 {
            // Fields from a key space that sometimes exceeds SMALL_HASH.
            let f = format!("f{}", rng.gen_range(0..300)).into_bytes();
            if rng.gen_bool(0.6) {
                let v = elem(&mut rng);
                assert_eq!(h.insert(&f, &v), model.insert(f.clone(), v).is_none());
            } else {
                assert_eq!(h.remove(&f), model.remove(&f).is_some());
            }
            assert_eq!(h.bytes, hash_recount(&h), "step {step}");
            assert_eq!(h.len(), model.len());
        }
        for (f, v) in &model {
            assert_eq!(h.get(f), Some(&v[..]));
        }
        let fields: Vec<Vec<u8>> = model.keys().cloned().collect();
        for f in fields {
            assert!(h.remove(&f));
        }
        assert_eq!((h.len(), h.bytes), (0, 0));
        assert!(!h.remove(b"f0"));
    }

    #[test]
    fn small_hashes_keep_insertion_order_on_removal() {
        let mut h = HashValue::new();
        for f in ["a", "b", "c", "d"] {
            h.insert(f.as_bytes(), b"1");
        }
        h.remove(b"b");
        let fields: Vec<&[u8]> = h.iter().map(|(f, _)| f).collect();
        assert_eq!(fields, [&b"a"[..], b"c", b"d"]);
    }

    #[test]
    fn overwriting_a_hash_field_counts_only_the_new_value() {
        let mut h = HashValue::new();
        assert!(h.insert(b"field", b"a long value"));
        assert!(!h.insert(b"field", b""));
        assert_eq!(h.bytes, str_bytes(5));
        assert!(!h.insert(b"field", b"xy"));
        assert_eq!(h.bytes, str_bytes(5) + str_bytes(2));
    }

    #[test]
    fn set_byte_count_matches_a_recount() {
        let mut rng = fuzz::rng(13);
        let mut s = SetValue::new();
        let mut model = std::collections::HashSet::new();
        for step in 0..20_000 {
            let m = elem(&mut rng);
            if rng.gen_bool(0.6) {
                assert_eq!(s.insert(&m), model.insert(m));
            } else {
                assert_eq!(s.remove(&m), model.remove(&m));
            }
            assert_eq!(s.bytes, set_recount(&s), "step {step}");
            assert_eq!(s.len(), model.len());
        }
        for m in &model {
            assert!(s.contains(m));
        }
        assert_eq!(
            s.mem_bytes(),
            std::mem::size_of::<SetValue>() + s.set.capacity() * SET_SLOT + set_recount(&s)
        );
    }

    #[test]
    fn a_zset_value_counts_its_header_and_the_zsets_own_estimate() {
        let mut z = ZSet::new();
        for i in 0..100 {
            z.insert(format!("m{i}").as_bytes(), i as f64);
        }
        let expect = z.mem_bytes() + std::mem::size_of::<ZSet>();
        assert!(expect > std::mem::size_of::<ZSet>());
        assert_eq!(Value::ZSet(Box::new(z)).mem_bytes(), expect);
    }

    #[test]
    fn type_names_round_trip_case_insensitively() {
        for t in [
            ValueType::String,
            ValueType::List,
            ValueType::Hash,
            ValueType::Set,
            ValueType::ZSet,
            ValueType::Stream,
        ] {
            assert_eq!(ValueType::from_name(t.name().as_bytes()), Some(t));
            let upper = t.name().to_ascii_uppercase();
            assert_eq!(ValueType::from_name(upper.as_bytes()), Some(t));
        }
        assert_eq!(ValueType::ZSet.name(), "zset");
        assert_eq!(ValueType::from_name(b"stream"), Some(ValueType::Stream));
        assert_eq!(ValueType::from_name(b""), None);
    }

    #[test]
    fn values_report_their_type_emptiness_and_string() {
        let s = Value::Str(Box::from(&b""[..]));
        assert_eq!(s.value_type(), ValueType::String);
        assert!(!s.is_empty_collection(), "an empty string is a value");
        assert_eq!(s.as_str(), Some(&b""[..]));
        let mut l = ListValue::new();
        assert!(Value::List(Box::new(l.clone())).is_empty_collection());
        l.push_back(Box::from(&b"x"[..]));
        let l = Value::List(Box::new(l));
        assert!(!l.is_empty_collection());
        assert_eq!(l.value_type(), ValueType::List);
        assert_eq!(l.as_str(), None);
        assert!(Value::Hash(Box::default()).is_empty_collection());
        assert!(Value::Set(Box::default()).is_empty_collection());
        assert!(Value::ZSet(Box::default()).is_empty_collection());
    }
}
