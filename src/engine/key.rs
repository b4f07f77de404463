//! [`Key`]: a key as the keyspace stores it.
//!
//! A lookup in a shard's map compares the probed key with the one asked
//! for. With a boxed key that comparison follows a pointer to another
//! allocation: one more cache miss per lookup, on top of the table's own.
//! Keys up to [`INLINE`] bytes (most keys in practice) are therefore kept
//! inside the map's slot, which also saves their allocation; longer keys
//! are boxed.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

use super::value::ALLOC_OVERHEAD;

/// Longest key kept inline.
pub const INLINE: usize = 22;

#[derive(Clone)]
pub enum Key {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl Key {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Key::Inline { len, buf } => &buf[..*len as usize],
            Key::Heap(b) => b,
        }
    }

    /// Bytes a key of `len` bytes costs outside the map's slot.
    pub fn heap_bytes(len: usize) -> usize {
        if len <= INLINE {
            0
        } else {
            len + ALLOC_OVERHEAD
        }
    }
}

impl From<&[u8]> for Key {
    fn from(k: &[u8]) -> Self {
        if k.len() <= INLINE {
            let mut buf = [0; INLINE];
            buf[..k.len()].copy_from_slice(k);
            Key::Inline {
                len: k.len() as u8,
                buf,
            }
        } else {
            Key::Heap(k.into())
        }
    }
}

impl Deref for Key {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Borrow<[u8]> for Key {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Key {}

/// Hashes as the bytes do, so that maps keyed by `Key` are looked up by `[u8]`.
impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state)
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_inline_and_all_keys_hash_and_compare_as_bytes() {
        assert_eq!(std::mem::size_of::<Key>(), 24);
        let s = ahash::RandomState::new();
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 100] {
            let bytes: Vec<u8> = (0..len as u8).collect();
            let k = Key::from(&bytes[..]);
            assert_eq!(matches!(k, Key::Inline { .. }), len <= INLINE);
            assert_eq!(&k[..], &bytes[..]);
            assert_eq!(s.hash_one(&k), s.hash_one(&bytes[..]));
            assert_eq!(k, Key::from(&bytes[..]));
        }
        assert_ne!(Key::from(&b"a"[..]), Key::from(&b"a\0"[..]));
    }
}
