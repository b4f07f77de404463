//! Sorted set (Redis `ZSET`) data structure.
//!
//! # Design
//!
//! * An order-statistic **weight-balanced binary search tree** (Adams' tree,
//!   parameters Δ = 3, Γ = 2, weight = subtree size + 1, proven correct for
//!   single-element insert/delete by Hirai & Yamamoto) keyed by
//!   `(score, member)`. Balancing uses the subtree sizes that are needed for
//!   ranks anyway, so nodes carry no priority/colour/height field.
//! * Nodes live in a dense arena (`Vec<Node>`) addressed by `u32` indices with
//!   parent pointers; removal moves the last node into the freed slot
//!   (swap-remove), so the arena never has holes and can shrink.
//! * A `hashbrown::HashTable<u32>` maps member -> node index. It stores only
//!   the 4-byte index and hashes/compares the member bytes stored in the node,
//!   so every member is stored exactly once (as a `Box<[u8]>` in its node).
//!
//! Node size is 40 bytes (16 member + 8 score + 4 × u32). All operations are
//! O(log n), iteration is O(log n + k); all code is iterative (no recursion).
//!
//! Scores must never be NaN. `-0.0` and `0.0` compare equal (plain `f64`
//! comparisons are used), ties are broken by member bytes (`[u8]` `Ord`).

use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::cmp::Ordering;
use std::fmt;
use std::hash::BuildHasher;

const NIL: u32 = u32::MAX;
/// Weight-balance parameters (Δ, Γ) = (3, 2).
const DELTA: u64 = 3;
const GAMMA: u64 = 2;

#[derive(Clone)]
struct Node {
    member: Box<[u8]>,
    score: f64,
    left: u32,
    right: u32,
    parent: u32,
    /// Number of nodes in the subtree rooted here (including this node).
    size: u32,
}

/// A Redis sorted set: unique binary-safe members, each with an `f64` score,
/// ordered by `(score, member)`.
#[derive(Clone)]
pub struct ZSet {
    nodes: Vec<Node>,
    index: HashTable<u32>,
    hasher: DefaultHashBuilder,
    root: u32,
    /// Estimated allocator bytes held by the member boxes.
    member_heap: usize,
}

#[inline]
fn hash_of(hasher: &DefaultHashBuilder, member: &[u8]) -> u64 {
    hasher.hash_one(member)
}

#[inline]
fn cmp_key(s1: f64, m1: &[u8], s2: f64, m2: &[u8]) -> Ordering {
    if s1 < s2 {
        Ordering::Less
    } else if s1 > s2 {
        Ordering::Greater
    } else {
        m1.cmp(m2)
    }
}

/// Approximate bytes the allocator (jemalloc-like size classes) uses for an
/// allocation of `n` bytes.
#[inline]
fn alloc_estimate(n: usize) -> usize {
    if n == 0 {
        0
    } else if n <= 8 {
        8
    } else if n <= 128 {
        (n + 15) & !15
    } else {
        // Four size classes per doubling.
        let k = usize::BITS - 1 - (n - 1).leading_zeros();
        let spacing = 1usize << (k - 2);
        (n + spacing - 1) & !(spacing - 1)
    }
}

impl Default for ZSet {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ZSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const PREVIEW: usize = 8;
        struct Preview<'a>(&'a ZSet);
        impl fmt::Debug for Preview<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut l = f.debug_list();
                for (m, s) in self.0.iter().take(PREVIEW) {
                    l.entry(&(String::from_utf8_lossy(m), s));
                }
                if self.0.len() > PREVIEW {
                    l.entry(&format_args!("..."));
                }
                l.finish()
            }
        }
        f.debug_struct("ZSet")
            .field("len", &self.len())
            .field("items", &Preview(self))
            .finish()
    }
}

impl ZSet {
    pub fn new() -> Self {
        ZSet {
            nodes: Vec::new(),
            index: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            root: NIL,
            member_heap: 0,
        }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Remove all elements and free their memory.
    pub fn clear(&mut self) {
        self.nodes = Vec::new();
        self.index = HashTable::new();
        self.root = NIL;
        self.member_heap = 0;
    }

    /// Release spare capacity of the arena and the hash index.
    pub fn shrink_to_fit(&mut self) {
        if self.nodes.is_empty() {
            self.clear();
            return;
        }
        self.nodes.shrink_to_fit();
        let nodes = &self.nodes;
        let hasher = &self.hasher;
        self.index
            .shrink_to_fit(|&i| hash_of(hasher, &nodes[i as usize].member));
    }

    // ----- small accessors -------------------------------------------------

    #[inline]
    fn n(&self, i: u32) -> &Node {
        &self.nodes[i as usize]
    }

    #[inline]
    fn nm(&mut self, i: u32) -> &mut Node {
        &mut self.nodes[i as usize]
    }

    #[inline]
    fn size_of(&self, i: u32) -> u32 {
        if i == NIL {
            0
        } else {
            self.n(i).size
        }
    }

    #[inline]
    fn find_idx(&self, member: &[u8]) -> Option<u32> {
        let hash = hash_of(&self.hasher, member);
        self.index
            .find(hash, |&i| &*self.nodes[i as usize].member == member)
            .copied()
    }

    // ----- public queries --------------------------------------------------

    pub fn score(&self, member: &[u8]) -> Option<f64> {
        self.find_idx(member).map(|i| self.n(i).score)
    }

    pub fn contains(&self, member: &[u8]) -> bool {
        self.find_idx(member).is_some()
    }

    /// 0-based ascending rank of member.
    pub fn rank(&self, member: &[u8]) -> Option<usize> {
        let idx = self.find_idx(member)?;
        Some(self.rank_of_node(idx))
    }

    /// Element at ascending rank.
    pub fn get_by_rank(&self, rank: usize) -> Option<(&[u8], f64)> {
        let idx = self.select(rank)?;
        let n = self.n(idx);
        Some((&n.member, n.score))
    }

    /// Ascending iterator starting at ascending rank `rank` (empty if rank >= len).
    pub fn iter_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (cur, remaining) = match self.select(rank) {
            Some(i) => (i, self.len() - rank),
            None => (NIL, 0),
        };
        Iter {
            set: self,
            cur,
            remaining,
            forward: true,
        }
    }

    /// Descending iterator starting at ascending rank `rank` going towards
    /// rank 0 (empty if rank >= len).
    pub fn iter_rev_from(&self, rank: usize) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        let (cur, remaining) = match self.select(rank) {
            Some(i) => (i, rank + 1),
            None => (NIL, 0),
        };
        Iter {
            set: self,
            cur,
            remaining,
            forward: false,
        }
    }

    /// Whole set ascending.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter_from(0)
    }

    /// Whole set descending.
    pub fn iter_rev(&self) -> impl Iterator<Item = (&[u8], f64)> + '_ {
        self.iter_rev_from(self.len().wrapping_sub(1))
    }

    /// Number of elements whose score is `< bound` (`inclusive == false`) or
    /// `<= bound` (`inclusive == true`).
    pub fn count_below_score(&self, bound: f64, inclusive: bool) -> usize {
        let mut acc: usize = 0;
        let mut x = self.root;
        while x != NIL {
            let n = self.n(x);
            let below = if inclusive {
                n.score <= bound
            } else {
                n.score < bound
            };
            if below {
                // Add size(left) + 1 as size(x) - size(right): the right child
                // is loaded next anyway, so no sibling access is needed.
                acc += n.size as usize;
                x = n.right;
                if x != NIL {
                    acc -= self.n(x).size as usize;
                }
            } else {
                x = n.left;
            }
        }
        acc
    }

    /// Number of elements whose member is `< bound` (`inclusive == false`) or
    /// `<= bound` (`inclusive == true`), found by a descent that compares
    /// members only. Meaningful when all scores are equal (ZRANGEBYLEX).
    pub fn count_below_lex(&self, bound: &[u8], inclusive: bool) -> usize {
        let mut acc: usize = 0;
        let mut x = self.root;
        while x != NIL {
            let n = self.n(x);
            let m: &[u8] = &n.member;
            let below = if inclusive { m <= bound } else { m < bound };
            if below {
                acc += n.size as usize;
                x = n.right;
                if x != NIL {
                    acc -= self.n(x).size as usize;
                }
            } else {
                x = n.left;
            }
        }
        acc
    }

    /// Approximate heap bytes held (members + nodes + index). O(1).
    pub fn mem_bytes(&self) -> usize {
        self.member_heap
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.index.allocation_size()
    }

    // ----- mutation --------------------------------------------------------

    /// Insert or update the member's score. Returns the previous score if it
    /// existed. `score` must not be NaN.
    pub fn insert(&mut self, member: &[u8], score: f64) -> Option<f64> {
        debug_assert!(!score.is_nan(), "ZSet scores must not be NaN");
        let hash = hash_of(&self.hasher, member);
        let nodes = &self.nodes;
        let hasher = &self.hasher;
        let entry = self.index.entry(
            hash,
            |&i| &*nodes[i as usize].member == member,
            |&i| hash_of(hasher, &nodes[i as usize].member),
        );
        match entry {
            Entry::Occupied(e) => {
                let idx = *e.get();
                Some(self.update_score(idx, score))
            }
            Entry::Vacant(v) => {
                let idx = self.nodes.len();
                assert!(idx < NIL as usize, "ZSet is full");
                let idx = idx as u32;
                v.insert(idx);
                if self.nodes.len() == self.nodes.capacity() {
                    // Grow by 25% once non-trivial (instead of doubling) to
                    // keep the arena's average slack small.
                    let cap = self.nodes.capacity();
                    self.nodes
                        .reserve_exact(if cap < 64 { cap.max(4) } else { cap / 4 });
                }
                self.nodes.push(Node {
                    member: member.into(),
                    score,
                    left: NIL,
                    right: NIL,
                    parent: NIL,
                    size: 1,
                });
                self.member_heap += alloc_estimate(member.len());
                self.attach(idx);
                None
            }
        }
    }

    /// Remove a member; returns its score if it existed.
    pub fn remove(&mut self, member: &[u8]) -> Option<f64> {
        let hash = hash_of(&self.hasher, member);
        let nodes = &self.nodes;
        let idx = match self
            .index
            .find_entry(hash, |&i| &*nodes[i as usize].member == member)
        {
            Ok(e) => e.remove().0,
            Err(_) => return None,
        };
        Some(self.remove_node(idx).1)
    }

    /// Remove and return the element at ascending rank.
    pub fn remove_by_rank(&mut self, rank: usize) -> Option<(Box<[u8]>, f64)> {
        let idx = self.select(rank)?;
        let hash = hash_of(&self.hasher, &self.n(idx).member);
        match self.index.find_entry(hash, |&i| i == idx) {
            Ok(e) => {
                e.remove();
            }
            Err(_) => unreachable!("zset index out of sync"),
        }
        Some(self.remove_node(idx))
    }

    // ----- internals -------------------------------------------------------

    fn update_score(&mut self, idx: u32, score: f64) -> f64 {
        let old = self.n(idx).score;
        if old == score {
            // Same position (also covers -0.0 vs 0.0); keep the new bits.
            self.nm(idx).score = score;
            return old;
        }
        // If the element would stay between its neighbours, update in place.
        let stays = {
            let me: &[u8] = &self.n(idx).member;
            if score > old {
                let s = self.next_node(idx);
                s == NIL || {
                    let sn = self.n(s);
                    cmp_key(score, me, sn.score, &sn.member) == Ordering::Less
                }
            } else {
                let p = self.prev_node(idx);
                p == NIL || {
                    let pn = self.n(p);
                    cmp_key(pn.score, &pn.member, score, me) == Ordering::Less
                }
            }
        };
        if stays {
            self.nm(idx).score = score;
        } else {
            self.detach(idx);
            self.nm(idx).score = score;
            self.attach(idx);
        }
        old
    }

    /// Unlink node `idx` (whose hash entry was already removed) from the
    /// tree, free its arena slot and return its payload.
    fn remove_node(&mut self, idx: u32) -> (Box<[u8]>, f64) {
        self.detach(idx);
        let node = self.free_slot(idx);
        self.member_heap -= alloc_estimate(node.member.len());
        self.maybe_shrink();
        (node.member, node.score)
    }

    /// Remove the (detached) node at `z` from the arena by moving the last
    /// node into its slot, fixing every link to the moved node.
    fn free_slot(&mut self, z: u32) -> Node {
        let last = (self.nodes.len() - 1) as u32;
        if z != last {
            let (l, r, p) = {
                let n = self.n(last);
                (n.left, n.right, n.parent)
            };
            if l != NIL {
                self.nm(l).parent = z;
            }
            if r != NIL {
                self.nm(r).parent = z;
            }
            self.replace_child(p, last, z);
            let hash = hash_of(&self.hasher, &self.n(last).member);
            match self.index.find_mut(hash, |&i| i == last) {
                Some(slot) => *slot = z,
                None => unreachable!("zset index out of sync"),
            }
        }
        self.nodes.swap_remove(z as usize)
    }

    fn maybe_shrink(&mut self) {
        let len = self.nodes.len();
        if len == 0 {
            self.clear();
            return;
        }
        // Hysteresis: shrink only after losing half (arena) / three quarters
        // (index) of the capacity, so the reallocation cost stays amortized.
        if self.nodes.capacity() > 64 && len * 2 < self.nodes.capacity() {
            self.nodes.shrink_to(len + len / 4);
        }
        if self.index.capacity() > 64 && len * 4 <= self.index.capacity() {
            let nodes = &self.nodes;
            let hasher = &self.hasher;
            self.index
                .shrink_to(len, |&i| hash_of(hasher, &nodes[i as usize].member));
        }
    }

    /// Node at ascending rank, or None.
    fn select(&self, rank: usize) -> Option<u32> {
        if rank >= self.len() {
            return None;
        }
        let mut k = rank as u32;
        let mut x = self.root;
        loop {
            let n = self.n(x);
            let ls = self.size_of(n.left);
            match k.cmp(&ls) {
                Ordering::Less => x = n.left,
                Ordering::Equal => return Some(x),
                Ordering::Greater => {
                    k -= ls + 1;
                    x = n.right;
                }
            }
        }
    }

    fn rank_of_node(&self, idx: u32) -> usize {
        let n = self.n(idx);
        let mut r = self.size_of(n.left) as usize;
        let mut x = idx;
        let mut xs = n.size;
        let mut p = n.parent;
        while p != NIL {
            let pn = self.n(p);
            if pn.right == x {
                // size(p.left) + 1 == size(p) - size(x)
                r += (pn.size - xs) as usize;
            }
            x = p;
            xs = pn.size;
            p = pn.parent;
        }
        r
    }

    fn next_node(&self, x: u32) -> u32 {
        let r = self.n(x).right;
        if r != NIL {
            let mut y = r;
            loop {
                let l = self.n(y).left;
                if l == NIL {
                    return y;
                }
                y = l;
            }
        }
        let mut y = x;
        let mut p = self.n(y).parent;
        while p != NIL && self.n(p).right == y {
            y = p;
            p = self.n(p).parent;
        }
        p
    }

    fn prev_node(&self, x: u32) -> u32 {
        let l = self.n(x).left;
        if l != NIL {
            let mut y = l;
            loop {
                let r = self.n(y).right;
                if r == NIL {
                    return y;
                }
                y = r;
            }
        }
        let mut y = x;
        let mut p = self.n(y).parent;
        while p != NIL && self.n(p).left == y {
            y = p;
            p = self.n(p).parent;
        }
        p
    }

    #[inline]
    fn replace_child(&mut self, p: u32, old: u32, new: u32) {
        if p == NIL {
            self.root = new;
        } else {
            let pn = self.nm(p);
            if pn.left == old {
                pn.left = new;
            } else {
                pn.right = new;
            }
        }
    }

    /// Left rotation at `x`; `x.size` must be correct. Returns the new
    /// subtree root.
    fn rotate_left(&mut self, x: u32) -> u32 {
        let (y, xl, p, xs) = {
            let n = self.n(x);
            (n.right, n.left, n.parent, n.size)
        };
        let b = self.n(y).left;
        {
            let nx = self.nm(x);
            nx.right = b;
            nx.parent = y;
        }
        if b != NIL {
            self.nm(b).parent = x;
        }
        {
            let ny = self.nm(y);
            ny.left = x;
            ny.parent = p;
            ny.size = xs;
        }
        let new_xs = self.size_of(xl) + self.size_of(b) + 1;
        self.nm(x).size = new_xs;
        self.replace_child(p, x, y);
        y
    }

    /// Right rotation at `x`; `x.size` must be correct. Returns the new
    /// subtree root.
    fn rotate_right(&mut self, x: u32) -> u32 {
        let (y, xr, p, xs) = {
            let n = self.n(x);
            (n.left, n.right, n.parent, n.size)
        };
        let b = self.n(y).right;
        {
            let nx = self.nm(x);
            nx.left = b;
            nx.parent = y;
        }
        if b != NIL {
            self.nm(b).parent = x;
        }
        {
            let ny = self.nm(y);
            ny.right = x;
            ny.parent = p;
            ny.size = xs;
        }
        let new_xs = self.size_of(xr) + self.size_of(b) + 1;
        self.nm(x).size = new_xs;
        self.replace_child(p, x, y);
        y
    }

    /// Restore the weight balance at `x` (whose size is already correct),
    /// given the weights (size + 1) of its children. Returns the subtree root.
    #[inline]
    fn balance(&mut self, x: u32, wl: u64, wr: u64) -> u32 {
        if wr > DELTA * wl {
            let r = self.n(x).right;
            let (rl, rr) = {
                let n = self.n(r);
                (n.left, n.right)
            };
            if self.size_of(rl) as u64 + 1 >= GAMMA * (self.size_of(rr) as u64 + 1) {
                self.rotate_right(r);
            }
            self.rotate_left(x)
        } else if wl > DELTA * wr {
            let l = self.n(x).left;
            let (ll, lr) = {
                let n = self.n(l);
                (n.left, n.right)
            };
            if self.size_of(lr) as u64 + 1 >= GAMMA * (self.size_of(ll) as u64 + 1) {
                self.rotate_left(l);
            }
            self.rotate_right(x)
        } else {
            x
        }
    }

    /// Recompute sizes and rebalance from `start` up to the root after one
    /// element was added (`d == 1`) to or removed (`d == u32::MAX`, i.e. -1)
    /// from the subtree at `start`. `start` itself may have a stale size; for
    /// every proper ancestor the stored size must be the size *before* the
    /// change. Above `start`, sibling sizes are derived from the stale parent
    /// size, so no sibling node has to be loaded unless a rotation happens.
    fn fixup(&mut self, start: u32, d: u32) {
        if start == NIL {
            return;
        }
        let (l, r) = {
            let n = self.n(start);
            (n.left, n.right)
        };
        let (ls, rs) = (self.size_of(l), self.size_of(r));
        self.nm(start).size = ls + rs + 1;
        let mut x = self.balance(start, ls as u64 + 1, rs as u64 + 1);
        loop {
            let (p, cs) = {
                let n = self.n(x);
                (n.parent, n.size)
            };
            if p == NIL {
                break;
            }
            let (ps, from_left) = {
                let pn = self.n(p);
                (pn.size, pn.left == x)
            };
            let old_cs = cs.wrapping_sub(d);
            let sib = ps - old_cs - 1;
            self.nm(p).size = ps.wrapping_add(d);
            let (wl, wr) = if from_left {
                (cs as u64 + 1, sib as u64 + 1)
            } else {
                (sib as u64 + 1, cs as u64 + 1)
            };
            x = self.balance(p, wl, wr);
        }
    }

    /// Link the unlinked node `idx` (left/right/parent NIL, size 1) into the
    /// tree at the position given by its key.
    fn attach(&mut self, idx: u32) {
        if self.root == NIL {
            self.root = idx;
            return;
        }
        let (parent, go_left) = {
            let me = self.n(idx);
            let (score, member): (f64, &[u8]) = (me.score, &me.member);
            let mut cur = self.root;
            loop {
                let c = self.n(cur);
                let less = cmp_key(score, member, c.score, &c.member) == Ordering::Less;
                let next = if less { c.left } else { c.right };
                if next == NIL {
                    break (cur, less);
                }
                cur = next;
            }
        };
        if go_left {
            self.nm(parent).left = idx;
        } else {
            self.nm(parent).right = idx;
        }
        self.nm(idx).parent = parent;
        self.fixup(parent, 1);
    }

    /// Unlink node `z` from the tree (it stays in the arena and the index),
    /// leaving it with NIL links and size 1.
    fn detach(&mut self, z: u32) {
        let (l, r, p, zs) = {
            let n = self.n(z);
            (n.left, n.right, n.parent, n.size)
        };
        let start;
        if l == NIL || r == NIL {
            let c = if l != NIL { l } else { r };
            if c != NIL {
                self.nm(c).parent = p;
            }
            self.replace_child(p, z, c);
            start = p;
        } else {
            // Replace z by its successor s (minimum of the right subtree).
            let mut s = r;
            loop {
                let sl = self.n(s).left;
                if sl == NIL {
                    break;
                }
                s = sl;
            }
            if s == r {
                {
                    let ns = self.nm(s);
                    ns.left = l;
                    ns.parent = p;
                }
                self.nm(l).parent = s;
                self.replace_child(p, z, s);
                start = s;
            } else {
                let (sp, sr) = {
                    let n = self.n(s);
                    (n.parent, n.right)
                };
                self.nm(sp).left = sr;
                if sr != NIL {
                    self.nm(sr).parent = sp;
                }
                {
                    let ns = self.nm(s);
                    ns.left = l;
                    ns.right = r;
                    ns.parent = p;
                    // Stale size of the position s now occupies (see fixup).
                    ns.size = zs;
                }
                self.nm(l).parent = s;
                self.nm(r).parent = s;
                self.replace_child(p, z, s);
                start = sp;
            }
        }
        {
            let nz = self.nm(z);
            nz.left = NIL;
            nz.right = NIL;
            nz.parent = NIL;
            nz.size = 1;
        }
        self.fixup(start, u32::MAX);
    }
}

struct Iter<'a> {
    set: &'a ZSet,
    cur: u32,
    remaining: usize,
    forward: bool,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a [u8], f64);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let set = self.set;
        let cur = self.cur;
        self.remaining -= 1;
        if self.remaining > 0 {
            self.cur = if self.forward {
                set.next_node(cur)
            } else {
                set.prev_node(cur)
            };
        }
        let n = set.n(cur);
        Some((&n.member, n.score))
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Iter<'_> {}
impl std::iter::FusedIterator for Iter<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    impl ZSet {
        /// Full structural check: links, sizes, balance, order, index, counters.
        fn check_invariants(&self) {
            let n = self.nodes.len();
            assert_eq!(self.index.len(), n);
            if n == 0 {
                assert_eq!(self.root, NIL);
                assert_eq!(self.member_heap, 0);
                return;
            }
            assert_eq!(self.n(self.root).parent, NIL);
            assert_eq!(self.n(self.root).size as usize, n);
            // Iterative DFS checking links, sizes and balance.
            let mut stack = vec![(self.root, 1usize)];
            let mut seen = 0usize;
            let mut max_depth = 0usize;
            while let Some((x, depth)) = stack.pop() {
                seen += 1;
                max_depth = max_depth.max(depth);
                let node = self.n(x);
                let (l, r) = (node.left, node.right);
                for c in [l, r] {
                    if c != NIL {
                        assert_eq!(self.n(c).parent, x, "parent link");
                        stack.push((c, depth + 1));
                    }
                }
                let (ls, rs) = (self.size_of(l) as u64, self.size_of(r) as u64);
                assert_eq!(node.size as u64, ls + rs + 1, "size");
                assert!(DELTA * (ls + 1) > rs, "balance (right heavy)");
                assert!(DELTA * (rs + 1) > ls, "balance (left heavy)");
            }
            assert_eq!(seen, n, "reachable nodes");
            // Height bound for Δ = 3: log_{4/3}(n + 1) + 1.
            let bound = ((n as f64 + 1.0).ln() / (4.0f64 / 3.0).ln()) as usize + 2;
            assert!(max_depth <= bound, "depth {max_depth} > {bound}");
            // In-order strictly increasing, and iteration agrees with ranks.
            let items: Vec<_> = self.iter().collect();
            assert_eq!(items.len(), n);
            for w in items.windows(2) {
                assert_eq!(cmp_key(w[0].1, w[0].0, w[1].1, w[1].0), Ordering::Less);
            }
            // Index maps every member to its node.
            let mut heap = 0;
            for (i, node) in self.nodes.iter().enumerate() {
                assert_eq!(self.find_idx(&node.member), Some(i as u32));
                heap += alloc_estimate(node.member.len());
            }
            assert_eq!(heap, self.member_heap);
        }
    }

    type Model = Vec<(f64, Vec<u8>)>;

    fn model_cmp(a: &(f64, Vec<u8>), b: &(f64, Vec<u8>)) -> Ordering {
        cmp_key(a.0, &a.1, b.0, &b.1)
    }

    fn model_pos(m: &Model, member: &[u8]) -> Option<usize> {
        m.iter().position(|e| e.1 == member)
    }

    fn model_insert(m: &mut Model, member: &[u8], score: f64) -> Option<f64> {
        let old = model_pos(m, member).map(|p| m.remove(p).0);
        let e = (score, member.to_vec());
        let pos = m.partition_point(|x| model_cmp(x, &e) == Ordering::Less);
        m.insert(pos, e);
        old
    }

    fn bits(o: Option<f64>) -> Option<u64> {
        o.map(f64::to_bits)
    }

    const SCORES: [f64; 9] = [
        f64::NEG_INFINITY,
        -1.5,
        -0.0,
        0.0,
        1.0,
        2.0,
        3.25,
        1e300,
        f64::INFINITY,
    ];

    fn random_score(rng: &mut XorShift) -> f64 {
        match rng.below(4) {
            0 => SCORES[rng.below(SCORES.len() as u64) as usize],
            1 => rng.below(21) as f64 - 10.0,
            2 => (rng.next() >> 11) as f64 / (1u64 << 53) as f64 * 200.0 - 100.0,
            _ => (rng.below(7) as f64) * 0.5,
        }
    }

    fn random_member(rng: &mut XorShift, pool: u64) -> Vec<u8> {
        let k = rng.below(pool);
        match k % 8 {
            0 => Vec::new().into_iter().chain(k.to_le_bytes()).collect(),
            1 => vec![b'a'; (k % 5) as usize],
            2 => vec![0u8; (k % 4) as usize],
            3 => vec![0xff, (k % 3) as u8],
            _ => format!("m{k}").into_bytes(),
        }
    }

    #[test]
    fn randomized_model() {
        let (max_len, emptied) = run_model(0x9E37_79B9_7F4A_7C15, 20_000);
        assert!(max_len > 300, "model test never got large: {max_len}");
        assert!(emptied > 0, "model test never emptied the set");
    }

    /// Longer soak over many seeds: `cargo test --release -- --ignored`.
    #[test]
    #[ignore]
    fn randomized_model_many_seeds() {
        for seed in 1..=40u64 {
            run_model(seed.wrapping_mul(0x2545_F491_4F6C_DD1D), 50_000);
        }
    }

    /// Returns (max length reached, number of steps that ended empty).
    fn run_model(seed: u64, steps: u32) -> (usize, usize) {
        let mut rng = XorShift(seed);
        let mut z = ZSet::new();
        let mut m: Model = Vec::new();
        let pool = 1500;
        let mut max_len = 0;
        let mut emptied = 0;
        for step in 0..steps {
            // Phases: grow, churn, shrink (towards empty).
            let phase = (step / 2500) % 3;
            let insert_weight = match phase {
                0 => 70,
                1 => 45,
                _ => 15,
            };
            let op = rng.below(100);
            if op < insert_weight {
                let mem = random_member(&mut rng, pool);
                let s = random_score(&mut rng);
                assert_eq!(bits(z.insert(&mem, s)), bits(model_insert(&mut m, &mem, s)));
            } else if op < insert_weight + 15 {
                let mem = random_member(&mut rng, pool);
                let exp = model_pos(&m, &mem).map(|p| m.remove(p).0);
                assert_eq!(bits(z.remove(&mem)), bits(exp));
            } else if op < insert_weight + 22 {
                let r = rng.below(m.len() as u64 + 2) as usize;
                let exp = if r < m.len() {
                    let (s, v) = m.remove(r);
                    Some((v.into_boxed_slice(), s.to_bits()))
                } else {
                    None
                };
                let got = z.remove_by_rank(r).map(|(v, s)| (v, s.to_bits()));
                assert_eq!(got, exp);
            } else {
                // Read-only checks.
                let mem = random_member(&mut rng, pool);
                let pos = model_pos(&m, &mem);
                assert_eq!(z.rank(&mem), pos);
                assert_eq!(bits(z.score(&mem)), bits(pos.map(|p| m[p].0)));
                assert_eq!(z.contains(&mem), pos.is_some());
                let r = rng.below(m.len() as u64 + 2) as usize;
                assert_eq!(
                    z.get_by_rank(r).map(|(v, s)| (v.to_vec(), s.to_bits())),
                    m.get(r).map(|(s, v)| (v.clone(), s.to_bits()))
                );
                let bound = random_score(&mut rng);
                for inc in [false, true] {
                    let exp = m
                        .iter()
                        .filter(|e| if inc { e.0 <= bound } else { e.0 < bound })
                        .count();
                    assert_eq!(z.count_below_score(bound, inc), exp);
                }
                let k = rng.below(12) as usize;
                let got: Vec<_> = z
                    .iter_from(r)
                    .take(k)
                    .map(|(v, s)| (s, v.to_vec()))
                    .collect();
                let exp: Vec<_> = m.iter().skip(r).take(k).cloned().collect();
                assert_eq!(got, exp);
                let it = z.iter_from(r);
                assert_eq!(it.size_hint().0, m.len().saturating_sub(r));
                let got: Vec<_> = z
                    .iter_rev_from(r)
                    .take(k)
                    .map(|(v, s)| (s, v.to_vec()))
                    .collect();
                let exp: Vec<_> = if r < m.len() {
                    m[..=r].iter().rev().take(k).cloned().collect()
                } else {
                    Vec::new()
                };
                assert_eq!(got, exp);
            }
            assert_eq!(z.len(), m.len());
            assert_eq!(z.is_empty(), m.is_empty());
            max_len = max_len.max(m.len());
            if m.is_empty() {
                emptied += 1;
                assert_eq!(z.mem_bytes(), 0);
            }
            if step % 16 == 0 {
                z.check_invariants();
            }
            if step % 500 == 0 {
                let all: Vec<_> = z.iter().map(|(v, s)| (s, v.to_vec())).collect();
                assert_eq!(all, m);
                let rev: Vec<_> = z.iter_rev().map(|(v, s)| (s, v.to_vec())).collect();
                assert_eq!(rev, m.iter().rev().cloned().collect::<Vec<_>>());
                for (i, e) in m.iter().enumerate() {
                    assert_eq!(z.rank(&e.1), Some(i));
                }
            }
        }
        z.check_invariants();
        (max_len, emptied)
    }

    #[test]
    fn randomized_lex() {
        let mut rng = XorShift(12345);
        let mut z = ZSet::new();
        let mut m: Model = Vec::new();
        let alphabet = [0u8, b'a', b'b', 0xff];
        let gen_member = |rng: &mut XorShift| -> Vec<u8> {
            let len = rng.below(4) as usize;
            (0..len).map(|_| alphabet[rng.below(4) as usize]).collect()
        };
        for step in 0..5000 {
            let mem = gen_member(&mut rng);
            if rng.below(3) == 0 {
                let exp = model_pos(&m, &mem).map(|p| m.remove(p).0);
                assert_eq!(bits(z.remove(&mem)), bits(exp));
            } else {
                assert_eq!(
                    bits(z.insert(&mem, 7.0)),
                    bits(model_insert(&mut m, &mem, 7.0))
                );
            }
            let b = gen_member(&mut rng);
            for inc in [false, true] {
                let exp = m
                    .iter()
                    .filter(|e| if inc { e.1 <= b } else { e.1 < b })
                    .count();
                assert_eq!(z.count_below_lex(&b, inc), exp, "bound {b:?} inc {inc}");
            }
            if step % 50 == 0 {
                z.check_invariants();
            }
        }
    }

    #[test]
    fn node_is_compact() {
        assert_eq!(std::mem::size_of::<Node>(), 40);
    }

    #[test]
    fn empty_set() {
        let mut z = ZSet::new();
        assert!(z.is_empty());
        assert_eq!(z.len(), 0);
        assert_eq!(z.score(b"x"), None);
        assert_eq!(z.rank(b"x"), None);
        assert_eq!(z.remove(b"x"), None);
        assert_eq!(z.get_by_rank(0), None);
        assert_eq!(z.remove_by_rank(0), None);
        assert_eq!(z.iter().count(), 0);
        assert_eq!(z.iter_rev().count(), 0);
        assert_eq!(z.iter_from(0).count(), 0);
        assert_eq!(z.iter_rev_from(0).count(), 0);
        assert_eq!(z.iter_rev_from(usize::MAX).count(), 0);
        assert_eq!(z.count_below_score(f64::INFINITY, true), 0);
        assert_eq!(z.count_below_lex(b"zzz", true), 0);
        assert_eq!(z.mem_bytes(), 0);
        z.check_invariants();
        assert!(format!("{z:?}").contains("len: 0"));
        let d = ZSet::default();
        assert!(d.is_empty());
    }

    #[test]
    fn infinities_and_ties() {
        let mut z = ZSet::new();
        z.insert(b"pinf", f64::INFINITY);
        z.insert(b"ninf", f64::NEG_INFINITY);
        z.insert(b"b", 1.0);
        z.insert(b"a", 1.0);
        z.insert(b"ab", 1.0);
        z.insert(b"", 1.0);
        z.insert(b"zero", 0.0);
        z.insert(b"nzero", -0.0);
        let order: Vec<_> = z.iter().map(|(m, _)| m.to_vec()).collect();
        let exp: Vec<&[u8]> = vec![b"ninf", b"nzero", b"zero", b"", b"a", b"ab", b"b", b"pinf"];
        assert_eq!(order, exp);
        assert_eq!(z.count_below_score(f64::INFINITY, false), 7);
        assert_eq!(z.count_below_score(f64::INFINITY, true), 8);
        assert_eq!(z.count_below_score(f64::NEG_INFINITY, false), 0);
        assert_eq!(z.count_below_score(f64::NEG_INFINITY, true), 1);
        // -0.0 and 0.0 are the same score.
        assert_eq!(z.count_below_score(0.0, false), 1);
        assert_eq!(z.count_below_score(-0.0, true), 3);
        assert_eq!(z.count_below_score(1.0, false), 3);
        assert_eq!(z.count_below_score(1.0, true), 7);
        assert_eq!(z.rank(b"pinf"), Some(7));
        assert_eq!(z.rank(b"ninf"), Some(0));
        assert_eq!(z.get_by_rank(7), Some((&b"pinf"[..], f64::INFINITY)));
        // Updating -0.0 <-> 0.0 does not move and keeps the new bits.
        assert_eq!(
            z.insert(b"nzero", 0.0).map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(z.score(b"nzero").map(f64::to_bits), Some(0.0f64.to_bits()));
        assert_eq!(z.rank(b"nzero"), Some(1));
        z.check_invariants();
        let rev: Vec<_> = z.iter_rev_from(3).map(|(m, _)| m.to_vec()).collect();
        let exp: Vec<&[u8]> = vec![b"", b"zero", b"nzero", b"ninf"];
        assert_eq!(rev, exp);
        assert_eq!(z.iter_from(6).count(), 2);
        assert_eq!(z.iter_from(8).count(), 0);
    }

    #[test]
    fn updates_move_elements() {
        let mut z = ZSet::new();
        for i in 0..100u32 {
            assert_eq!(z.insert(format!("k{i:03}").as_bytes(), i as f64), None);
        }
        // Move the first to the end, the last to the front, a middle one in place.
        assert_eq!(z.insert(b"k000", 1000.0), Some(0.0));
        assert_eq!(z.rank(b"k000"), Some(99));
        assert_eq!(z.insert(b"k099", -5.0), Some(99.0));
        assert_eq!(z.rank(b"k099"), Some(0));
        assert_eq!(z.insert(b"k050", 50.5), Some(50.0));
        assert_eq!(z.rank(b"k050"), Some(50));
        assert_eq!(z.insert(b"k050", 49.0), Some(50.5));
        // Tie with k049 at 49.0: "k049" < "k050".
        assert_eq!(z.rank(b"k049"), Some(49));
        assert_eq!(z.rank(b"k050"), Some(50));
        assert_eq!(z.insert(b"k049", 49.0), Some(49.0));
        assert_eq!(z.len(), 100);
        z.check_invariants();
        // Many moves.
        for round in 0..5 {
            for i in 0..100u32 {
                let s = ((i * 37 + round * 11) % 100) as f64;
                z.insert(format!("k{i:03}").as_bytes(), s);
            }
            z.check_invariants();
        }
        // Clone independence.
        let c = z.clone();
        z.remove(b"k010");
        assert_eq!(c.len(), 100);
        assert_eq!(z.len(), 99);
        assert!(c.contains(b"k010"));
        c.check_invariants();
        z.check_invariants();
        assert!(format!("{c:?}").contains("..."));
        // Remove everything frees memory.
        while let Some((_m, _s)) = z.remove_by_rank(z.len() / 2) {}
        assert!(z.is_empty());
        assert_eq!(z.mem_bytes(), 0);
        z.check_invariants();
    }

    #[test]
    fn memory_accounting_and_shrink() {
        let mut z = ZSet::new();
        for i in 0..10_000u32 {
            z.insert(&i.to_be_bytes(), i as f64);
        }
        let full = z.mem_bytes();
        assert!(full >= 10_000 * (40 + 8), "{full}");
        for i in 0..9_900u32 {
            assert_eq!(z.remove(&i.to_be_bytes()), Some(i as f64));
        }
        z.check_invariants();
        assert!(z.mem_bytes() * 10 < full, "{} vs {}", z.mem_bytes(), full);
        z.shrink_to_fit();
        z.check_invariants();
        z.clear();
        assert_eq!(z.mem_bytes(), 0);
        assert_eq!(alloc_estimate(16), 16);
        assert_eq!(alloc_estimate(17), 32);
        assert_eq!(alloc_estimate(129), 160);
        assert_eq!(alloc_estimate(257), 320);
    }

    #[test]
    fn sequential_patterns_stay_balanced() {
        // Ascending, descending and queue-like (pop min, push max) workloads.
        let mut z = ZSet::new();
        for i in 0..5000u32 {
            z.insert(&i.to_be_bytes(), i as f64);
        }
        z.check_invariants();
        for i in (5000..10000u32).rev() {
            z.insert(&i.to_be_bytes(), -(i as f64));
        }
        z.check_invariants();
        for i in 10000..20000u32 {
            let (m, _) = z.remove_by_rank(0).unwrap();
            assert_eq!(m.len(), 4);
            z.insert(&i.to_be_bytes(), i as f64);
        }
        z.check_invariants();
        assert_eq!(z.len(), 10000);
    }

    #[test]
    fn million_elements() {
        let n = 1_000_000u32;
        let mut z = ZSet::new();
        let mut rng = XorShift(7);
        let mut seed_of = Vec::with_capacity(n as usize);
        for i in 0..n {
            // Scores are a permutation of 0..n so ranks are known.
            let s = ((i as u64 * 999_983) % n as u64) as f64;
            seed_of.push(s);
            z.insert(format!("member:{i:09}").as_bytes(), s);
        }
        assert_eq!(z.len(), n as usize);
        for _ in 0..1000 {
            let i = rng.below(n as u64) as u32;
            let m = format!("member:{i:09}");
            assert_eq!(z.rank(m.as_bytes()), Some(seed_of[i as usize] as usize));
            let (gm, gs) = z.get_by_rank(seed_of[i as usize] as usize).unwrap();
            assert_eq!(gm, m.as_bytes());
            assert_eq!(gs, seed_of[i as usize]);
        }
        assert_eq!(z.count_below_score(500_000.0, false), 500_000);
        assert_eq!(z.count_below_score(500_000.0, true), 500_001);
        // Depth bound check on the big tree (cheap enough: O(n)).
        z.check_invariants();
    }
}
