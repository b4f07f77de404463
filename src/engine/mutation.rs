//! `Mutation`: the effect of a write, the only way the keyspace changes.
//!
//! Commands decide (read the keyspace, check types and conditions, draw random
//! choices) and then *apply* mutations; a follower applies the same mutations
//! and therefore ends in the same state without re-deciding anything. Every
//! mutation is deterministic given the state it applies to, and carries
//! absolute expiry times (milliseconds since the Unix epoch), never relative ones.

use bytes::Bytes;

use super::stream::StreamOp;
use super::value::Value;

/// How a string write treats the key's existing time to live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpireSet {
    /// Keep the old expiry (SET KEEPTTL, INCR, APPEND, ...).
    Keep,
    /// Remove any expiry (plain SET).
    Clear,
    /// Expire at this absolute time in ms.
    At(u64),
}

#[derive(Clone, Debug)]
pub enum Mutation {
    /// Replace the whole key with a value (any type). `expire_at` 0 = no expiry.
    Put {
        key: Bytes,
        value: Value,
        expire_at: u64,
    },
    /// Set a string value.
    SetStr {
        key: Bytes,
        value: Bytes,
        expire: ExpireSet,
    },
    /// Append to a string (created if missing).
    Append {
        key: Bytes,
        data: Bytes,
    },
    /// Overwrite part of a string, zero-padding as needed (created if missing).
    SetRange {
        key: Bytes,
        offset: usize,
        data: Bytes,
    },
    Del {
        key: Bytes,
    },
    /// Set (`at` > 0) or remove (`at` == 0) the key's expiry.
    Expire {
        key: Bytes,
        at: u64,
    },
    /// Move a key (and its expiry) to a new name, replacing the destination.
    Rename {
        from: Bytes,
        to: Bytes,
    },
    /// Copy a key (and its expiry) to a new name, replacing the destination.
    Copy {
        from: Bytes,
        to: Bytes,
    },
    HSet {
        key: Bytes,
        pairs: Vec<(Bytes, Bytes)>,
    },
    HDel {
        key: Bytes,
        fields: Vec<Bytes>,
    },
    /// Push elements one by one at the head (`left`) or the tail; creates the list.
    Push {
        key: Bytes,
        left: bool,
        elems: Vec<Bytes>,
    },
    /// Pop `count` elements from the head (`left`) or the tail.
    Pop {
        key: Bytes,
        left: bool,
        count: usize,
    },
    LSet {
        key: Bytes,
        index: usize,
        elem: Bytes,
    },
    /// Insert so that the new element ends up at `index`.
    LInsert {
        key: Bytes,
        index: usize,
        elem: Bytes,
    },
    LRem {
        key: Bytes,
        count: i64,
        elem: Bytes,
    },
    /// Keep only `start..=stop` (already clamped and valid).
    LTrim {
        key: Bytes,
        start: usize,
        stop: usize,
    },
    SAdd {
        key: Bytes,
        members: Vec<Bytes>,
    },
    SRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// Set members to these (final) scores; creates the sorted set.
    ZAdd {
        key: Bytes,
        pairs: Vec<(f64, Bytes)>,
    },
    ZRem {
        key: Bytes,
        members: Vec<Bytes>,
    },
    /// A change to a stream (see [`StreamOp`]).
    Stream {
        key: Bytes,
        op: StreamOp,
    },
    /// Empty every database.
    FlushAll,
    /// The mutations after this one (in the same commit) are in database
    /// `db`; a commit starts in database 0. Changes nothing by itself.
    Select {
        db: u32,
    },
    /// Move a key (and its expiry) from the current database to database
    /// `db`, replacing any key of that name there.
    Move {
        key: Bytes,
        db: u32,
    },
    /// Copy `from` of the current database (with its expiry) to `to` of
    /// database `db`, replacing any key of that name there.
    CopyDb {
        from: Bytes,
        to: Bytes,
        db: u32,
    },
    /// Databases `a` and `b` trade their keys.
    SwapDb {
        a: u32,
        b: u32,
    },
    /// Empty the current database.
    FlushDb,
    /// A Pub/Sub message, carried in the replication stream so that a PUBLISH
    /// at any node of a cluster reaches subscribers on every node. It changes
    /// no key; applying it delivers the message locally.
    Publish {
        channel: Bytes,
        payload: Bytes,
        /// A shard channel's message (SPUBLISH).
        shard: bool,
    },
    /// A change to the scripting state (the script cache, the function
    /// libraries), carried in the replication stream so that EVALSHA and
    /// FCALL work at every node and after a failover. It changes no key;
    /// applying it hands it to the commit observer.
    Script(ScriptOp),
}

/// A change to the scripting state, as plain data (the engine knows no Lua).
/// Applying one twice, or one already reflected, changes nothing more.
#[derive(Clone, Debug, PartialEq)]
pub enum ScriptOp {
    /// Cache a script (its body).
    Load(Bytes),
    /// Empty the script cache.
    Flush,
    /// Load (or replace) a function library (its code).
    LoadLibrary(Bytes),
    /// Delete a library (its name).
    DeleteLibrary(Bytes),
    /// Delete every library.
    FlushLibraries,
}

impl Mutation {
    /// The keys this mutation changes (both names for Rename/Copy).
    pub fn keys(&self) -> (&Bytes, Option<&Bytes>) {
        use Mutation::*;
        match self {
            Put { key, .. }
            | SetStr { key, .. }
            | Append { key, .. }
            | SetRange { key, .. }
            | Del { key }
            | Expire { key, .. }
            | HSet { key, .. }
            | HDel { key, .. }
            | Push { key, .. }
            | Pop { key, .. }
            | LSet { key, .. }
            | LInsert { key, .. }
            | LRem { key, .. }
            | LTrim { key, .. }
            | SAdd { key, .. }
            | SRem { key, .. }
            | ZAdd { key, .. }
            | ZRem { key, .. }
            | Stream { key, .. }
            | Move { key, .. } => (key, None),
            Rename { from, to } | Copy { from, to } | CopyDb { from, to, .. } => (from, Some(to)),
            FlushAll | Publish { .. } | Script(_) | Select { .. } | SwapDb { .. } | FlushDb => {
                unreachable!("{self:?} has no key")
            }
        }
    }

    /// One mutation per key of `keys` (each with its database), made by
    /// `make`, in one commit: keys sorted by database, with a `Select`
    /// before each database's run (a commit starts in database 0).
    pub fn in_databases(
        mut keys: Vec<(usize, Bytes)>,
        make: impl Fn(Bytes) -> Mutation,
    ) -> Vec<Mutation> {
        keys.sort_by_key(|(d, _)| *d);
        let mut out = Vec::with_capacity(keys.len());
        let mut current = 0;
        for (d, k) in keys {
            if d != current {
                current = d;
                out.push(Mutation::Select { db: d as u32 });
            }
            out.push(make(k));
        }
        out
    }

    /// Whether [`Mutation::keys`] may be called (the mutation names keys).
    pub fn has_keys(&self) -> bool {
        use Mutation::*;
        !matches!(
            self,
            FlushAll | Publish { .. } | Script(_) | Select { .. } | SwapDb { .. } | FlushDb
        )
    }

    /// Whether the mutation changes whole databases (every shard must be
    /// locked to apply it).
    pub fn whole_keyspace(&self) -> bool {
        matches!(
            self,
            Mutation::FlushAll | Mutation::FlushDb | Mutation::SwapDb { .. }
        )
    }
}
