//! Commands jcache does not know, passed to the upstream verbatim (a command
//! it lacks, or a module's: RedisJSON, RediSearch, ...). The upstream's own
//! `COMMAND` reply says what each one is: its flags, ACL categories and key
//! positions. One rule decides:
//!
//! - never passed (the client gets jcache's "unknown command"): `@admin`,
//!   `@dangerous`, `@connection`, `@transaction`, `@pubsub` and `@scripting`
//!   commands, so the upstream connections' credentials and state stay
//!   jcache's own; and any command the upstream does not list;
//! - a `write` command: forwarded, then the local copies of its keys are
//!   dropped (first/last/step from its entry; `movablekeys` ones asked of
//!   the upstream with `COMMAND GETKEYS`), as for any forwarded write;
//! - a `blocking` command: forwarded on a connection of its own;
//! - anything else: forwarded, its reply not cached.
//!
//! The upstream is asked `COMMAND INFO <name>` the first time a name is
//! seen (by the name the client sent, so a command renamed upstream with
//! `rename-command` is found under its new name), and again when the answer
//! is older than [`REFRESH`] (the upstream restarted with a module loaded,
//! or jcache now talks to another server). At most [`MAX_NAMES`] answers
//! are kept; past that the cache starts again empty.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::Mutex;
use redis::Value;

use super::redis::RedisTier;
use super::Coherence;

/// How old an answer may be before the upstream is asked again.
const REFRESH: Duration = Duration::from_secs(10);

/// Most command names whose answers are kept.
const MAX_NAMES: usize = 1024;

/// Longer names are not asked about (no Redis command name comes close):
/// "unknown command" at once, and the cache stays small.
const MAX_NAME_LEN: usize = 64;

/// Categories whose commands are never passed.
const REFUSED: &[&str] = &[
    "@admin",
    "@dangerous",
    "@connection",
    "@transaction",
    "@pubsub",
    "@scripting",
];

/// Commands never passed whatever their categories say: ACL's read-only
/// subcommands would show the upstream connection's user. Checked against
/// the name COMMAND INFO gives, which stays the original one when the
/// command was renamed upstream.
const NEVER: &[&str] = &["acl"];

/// What the upstream says about one command (or one subcommand).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    pub write: bool,
    pub blocking: bool,
    pub movable_keys: bool,
    pub refused: bool,
    pub first: i64,
    pub last: i64,
    pub step: i64,
    /// `container|sub` names in lower case (empty for a plain command).
    pub subcommands: HashMap<String, Entry>,
}

impl Entry {
    /// The entry that decides for `args`: this one, or for a container the
    /// subcommand's (None if it has no such subcommand).
    pub fn decide(&self, args: &[Bytes]) -> Option<&Entry> {
        if self.subcommands.is_empty() {
            return Some(self);
        }
        let sub = String::from_utf8_lossy(args.get(1)?).to_ascii_lowercase();
        self.subcommands
            .iter()
            .find(|(n, _)| n.rsplit('|').next() == Some(sub.as_str()))
            .map(|(_, e)| e)
    }

    /// The key positions of `args` by first/last/step (Redis's
    /// `getKeysUsingLegacyRangeSpec`).
    pub fn key_positions(&self, args: &[Bytes]) -> Vec<usize> {
        if self.first <= 0 || self.step <= 0 {
            return Vec::new();
        }
        let n = args.len() as i64;
        let last = if self.last < 0 {
            n + self.last
        } else {
            self.last.min(n - 1)
        };
        (self.first..=last)
            .step_by(self.step as usize)
            .filter(|&i| i < n)
            .map(|i| i as usize)
            .collect()
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(n) => *n,
        _ => 0,
    }
}

fn texts(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) | Some(Value::Set(a)) => a.iter().filter_map(text).collect(),
        _ => Vec::new(),
    }
}

fn parse_entry(item: &Value) -> Option<(String, Entry)> {
    let Value::Array(f) = item else {
        return None;
    };
    let name = text(f.first()?)?.to_ascii_lowercase();
    let flags = texts(f.get(2));
    let categories = texts(f.get(6));
    let has = |fl: &str| flags.iter().any(|x| x.eq_ignore_ascii_case(fl));
    let mut subcommands = HashMap::new();
    if let Some(Value::Array(subs)) = f.get(9) {
        for s in subs {
            if let Some((n, e)) = parse_entry(s) {
                subcommands.insert(n, e);
            }
        }
    }
    let original = name.split('|').next().unwrap_or("").to_string();
    let entry = Entry {
        write: has("write"),
        blocking: has("blocking")
            || categories
                .iter()
                .any(|c| c.eq_ignore_ascii_case("@blocking")),
        movable_keys: has("movablekeys"),
        refused: categories
            .iter()
            .any(|c| REFUSED.iter().any(|r| c.eq_ignore_ascii_case(r)))
            || has("admin")
            || NEVER.contains(&original.as_str()),
        first: f.get(3).map(int).unwrap_or(0),
        last: f.get(4).map(int).unwrap_or(0),
        step: f.get(5).map(int).unwrap_or(0),
        subcommands,
    };
    Some((name, entry))
}

/// The upstream's answers so far, by the name clients sent (lower case),
/// shared by every client.
#[derive(Default)]
pub struct PassThrough {
    answers: Mutex<HashMap<String, (Option<Entry>, Instant)>>,
}

/// What to do with an unknown command.
pub enum Decision {
    /// Not passed: jcache's own "unknown command".
    Unknown,
    Pass(Entry),
}

impl PassThrough {
    /// Decides for `args`, asking the upstream about the name if needed.
    pub async fn decide(&self, up: &RedisTier, args: &[Bytes]) -> Decision {
        if args[0].len() > MAX_NAME_LEN {
            return Decision::Unknown;
        }
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if NEVER.contains(&name.as_str()) {
            return Decision::Unknown;
        }
        let cached = self
            .answers
            .lock()
            .get(&name)
            .filter(|(_, at)| at.elapsed() < REFRESH)
            .map(|(e, _)| e.clone());
        let entry = match cached {
            Some(e) => e,
            None => {
                let ask = [
                    Bytes::from_static(b"COMMAND"),
                    Bytes::from_static(b"INFO"),
                    args[0].clone(),
                ];
                let entry = match up.forward(0, &ask, false).await {
                    Ok(Value::Array(items)) => items.first().and_then(parse_entry).map(|(_, e)| e),
                    // Not an answer about the command: decide nothing now.
                    _ => return Decision::Unknown,
                };
                let mut answers = self.answers.lock();
                if answers.len() >= MAX_NAMES {
                    answers.clear();
                }
                answers.insert(name, (entry.clone(), Instant::now()));
                entry
            }
        };
        match entry.as_ref().and_then(|e| e.decide(args)) {
            Some(e) if !e.refused => Decision::Pass(e.clone()),
            _ => Decision::Unknown,
        }
    }
}

impl PassThrough {
    /// Whether the cached answer for `args` says it blocks (None if no
    /// answer is cached yet): the connection then shows the client as
    /// blocked and honours CLIENT UNBLOCK.
    pub fn blocks(&self, args: &[Bytes]) -> Option<bool> {
        if args[0].len() > MAX_NAME_LEN {
            return None;
        }
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let answers = self.answers.lock();
        let (entry, _) = answers.get(&name)?;
        Some(entry.as_ref()?.decide(args)?.blocking)
    }
}

/// Forwards a command the upstream knows (see the module comment), in the
/// client's database `db`, and drops the local copies of the keys a write
/// named there.
pub async fn forward(
    up: &RedisTier,
    co: &Coherence,
    entry: &Entry,
    db: usize,
    args: &[Bytes],
    resp3: bool,
) -> Result<Value, super::TierError> {
    let reply = if entry.blocking {
        up.forward_blocking(db, args, resp3).await
    } else {
        up.forward(db, args, resp3).await
    };
    if entry.write && !matches!(reply, Ok(Value::ServerError(_))) {
        let keys: Vec<Bytes> = if entry.movable_keys {
            let mut getkeys = vec![
                Bytes::from_static(b"COMMAND"),
                Bytes::from_static(b"GETKEYS"),
            ];
            getkeys.extend(args.iter().cloned());
            match up.forward(db, &getkeys, false).await {
                Ok(Value::Array(ks)) => ks
                    .iter()
                    .filter_map(|k| match k {
                        Value::BulkString(b) => Some(Bytes::copy_from_slice(b)),
                        _ => None,
                    })
                    .collect(),
                // Keys unknown: every local copy may be stale.
                _ => {
                    co.flush_all();
                    Vec::new()
                }
            }
        } else {
            entry
                .key_positions(args)
                .into_iter()
                .map(|i| args[i].clone())
                .collect()
        };
        if !keys.is_empty() {
            co.invalidate(db, &keys);
        }
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(name: &str, flags: &[&str], keys: (i64, i64, i64), cats: &[&str]) -> Value {
        Value::Array(vec![
            bulk(name),
            Value::Int(-2),
            Value::Array(
                flags
                    .iter()
                    .map(|f| Value::SimpleString(f.to_string()))
                    .collect(),
            ),
            Value::Int(keys.0),
            Value::Int(keys.1),
            Value::Int(keys.2),
            Value::Array(
                cats.iter()
                    .map(|c| Value::SimpleString(c.to_string()))
                    .collect(),
            ),
            Value::Array(vec![]),
            Value::Array(vec![]),
            Value::Array(vec![]),
        ])
    }

    fn args(a: &[&str]) -> Vec<Bytes> {
        a.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    fn parse(v: Value) -> Entry {
        parse_entry(&v).unwrap().1
    }

    #[test]
    fn parses_flags_categories_and_key_ranges() {
        let j = parse(entry(
            "json.set",
            &["write", "denyoom"],
            (1, 1, 1),
            &["@write"],
        ));
        assert!(j.write && !j.refused && !j.blocking);
        let a = args(&["JSON.SET", "k", "$", "1"]);
        assert_eq!(j.decide(&a).unwrap().key_positions(&a), vec![1]);
        let m = parse(entry("mset", &["write"], (1, -1, 2), &["@write"]));
        assert_eq!(
            m.key_positions(&args(&["mset", "a", "1", "b", "2"])),
            vec![1, 3]
        );
        let r = parse(entry(
            "replicaof",
            &["admin", "noscript"],
            (0, 0, 0),
            &["@admin", "@dangerous"],
        ));
        assert!(r.refused);
        assert!(
            parse(entry(
                "readonly",
                &["fast"],
                (0, 0, 0),
                &["@fast", "@connection"]
            ))
            .refused
        );
        let b = parse(entry(
            "bzmpop",
            &["write", "blocking", "movablekeys"],
            (0, 0, 0),
            &["@blocking"],
        ));
        assert!(b.blocking && b.movable_keys);
        let mut acl = entry("acl", &[], (0, 0, 0), &["@slow"]);
        if let Value::Array(f) = &mut acl {
            f[9] = Value::Array(vec![entry(
                "acl|whoami",
                &["noscript"],
                (0, 0, 0),
                &["@slow"],
            )]);
        }
        let acl = parse(acl);
        assert!(acl.decide(&args(&["MYACL", "WHOAMI"])).unwrap().refused);
        assert!(b
            .key_positions(&args(&["bzmpop", "0", "1", "z", "min"]))
            .is_empty());
    }

    #[test]
    fn subcommands_decide_for_containers() {
        let mut container = entry("object", &[], (0, 0, 0), &["@slow"]);
        if let Value::Array(f) = &mut container {
            f[9] = Value::Array(vec![
                entry("object|freq", &["readonly"], (2, 2, 1), &["@read"]),
                entry("object|help", &["loading"], (0, 0, 0), &["@slow"]),
            ]);
        }
        let c = parse(container);
        let a = args(&["OBJECT", "FREQ", "k"]);
        assert_eq!(c.decide(&a).unwrap().key_positions(&a), vec![2]);
        assert!(c.decide(&args(&["OBJECT", "NOSUCH"])).is_none());
        assert!(c.decide(&args(&["OBJECT"])).is_none());
    }
}
