//! The engine's commit observer: fans every committed write out to WATCH
//! bookkeeping, keyspace notifications and a downstream observer (in
//! cluster mode, the replication log).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

use super::pubsub::PubSub;
use super::scripting::Scripting;
use super::watch::WatchRegistry;
use crate::engine::{Commit, CommitObserver, Origin};

/// notify-keyspace-events flag bits (Redis's NOTIFY_* values).
pub mod notify {
    pub const KEYSPACE: u32 = 1 << 0; // K
    pub const KEYEVENT: u32 = 1 << 1; // E
    pub const GENERIC: u32 = 1 << 2; // g
    pub const STRING: u32 = 1 << 3; // $
    pub const LIST: u32 = 1 << 4; // l
    pub const SET: u32 = 1 << 5; // s
    pub const HASH: u32 = 1 << 6; // h
    pub const ZSET: u32 = 1 << 7; // z
    pub const EXPIRED: u32 = 1 << 8; // x
    pub const EVICTED: u32 = 1 << 9; // e
    pub const STREAM: u32 = 1 << 10; // t
    pub const KEY_MISS: u32 = 1 << 11; // m
    pub const MODULE: u32 = 1 << 12; // d
    pub const NEW: u32 = 1 << 13; // n
    pub const ALL: u32 =
        GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

    /// Parses a notify-keyspace-events string; None on an invalid character.
    pub fn parse(s: &str) -> Option<u32> {
        let mut f = 0;
        for c in s.chars() {
            f |= match c {
                'A' => ALL,
                'g' => GENERIC,
                '$' => STRING,
                'l' => LIST,
                's' => SET,
                'h' => HASH,
                'z' => ZSET,
                'x' => EXPIRED,
                'e' => EVICTED,
                'K' => KEYSPACE,
                'E' => KEYEVENT,
                't' => STREAM,
                'm' => KEY_MISS,
                'd' => MODULE,
                'n' => NEW,
                _ => return None,
            };
        }
        Some(f)
    }

    /// The canonical text CONFIG GET shows.
    pub fn to_string(f: u32) -> String {
        let mut s = String::new();
        if f & ALL == ALL {
            s.push('A');
        } else {
            for (bit, c) in [
                (GENERIC, 'g'),
                (STRING, '$'),
                (LIST, 'l'),
                (SET, 's'),
                (HASH, 'h'),
                (ZSET, 'z'),
                (EXPIRED, 'x'),
                (EVICTED, 'e'),
                (STREAM, 't'),
                (MODULE, 'd'),
            ] {
                if f & bit != 0 {
                    s.push(c);
                }
            }
        }
        for (bit, c) in [
            (KEYSPACE, 'K'),
            (KEYEVENT, 'E'),
            (KEY_MISS, 'm'),
            (NEW, 'n'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
        s
    }

    pub fn class_bit(class: u8) -> u32 {
        match class {
            b'g' => GENERIC,
            b'$' => STRING,
            b'l' => LIST,
            b's' => SET,
            b'h' => HASH,
            b'z' => ZSET,
            b'x' => EXPIRED,
            b'e' => EVICTED,
            b't' => STREAM,
            b'm' => KEY_MISS,
            b'n' => NEW,
            _ => MODULE,
        }
    }
}

pub struct Hooks {
    pub watches: Arc<WatchRegistry>,
    pub pubsub: Arc<PubSub>,
    /// Replicated scripting changes are applied here.
    pub scripting: Arc<Scripting>,
    pub notify_flags: AtomicU32,
    /// Who else hears every commit, first (cluster mode: the replication log).
    pub downstream: OnceLock<Arc<dyn CommitObserver>>,
}

impl Hooks {
    /// Starts feeding commits to `observer` too (cluster mode; once).
    pub fn set_downstream(&self, observer: Arc<dyn CommitObserver>) {
        let _ = self.downstream.set(observer);
    }

    /// Publishes one keyspace event of database `db` if the configured
    /// flags select it.
    pub fn notify(&self, db: usize, class: u8, event: &str, key: &[u8]) {
        let flags = self.notify_flags.load(Ordering::Relaxed);
        if flags & notify::class_bit(class) == 0 {
            return;
        }
        if flags & notify::KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.pubsub.publish(&ch, event.as_bytes());
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.pubsub.publish(ch.as_bytes(), key);
        }
    }
}

impl CommitObserver for Hooks {
    fn wants_touched(&self) -> bool {
        self.watches.wants_touched()
    }

    fn wants_mutations(&self, origin: Origin) -> bool {
        self.downstream
            .get()
            .is_some_and(|o| o.wants_mutations(origin))
    }

    fn wants_events(&self) -> bool {
        self.notify_flags.load(Ordering::Relaxed) & (notify::KEYSPACE | notify::KEYEVENT) != 0
    }

    fn watched_keys(&self) -> Vec<(usize, bytes::Bytes)> {
        self.watches.watched_keys()
    }

    fn on_commit(&self, c: &Commit<'_>) {
        if let Some(o) = self.downstream.get() {
            o.on_commit(c);
        }
        self.watches.on_commit(c);
        for (channel, payload, shard) in c.published {
            if *shard {
                self.pubsub.spublish(channel, payload);
            } else {
                self.pubsub.publish(channel, payload);
            }
        }
        // A command made its own change to the scripting state; one from
        // the stream (or a snapshot) is applied here.
        if c.origin != Origin::Command {
            for op in c.scripts {
                self.scripting.apply(op);
            }
        }
        for e in c.events {
            self.notify(e.db, e.class, e.event, &e.key);
        }
    }
}
