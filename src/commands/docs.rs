//! Redis's description of its commands: what COMMAND DOCS answers, and the
//! tips and key specifications of COMMAND INFO.
//!
//! `redis-commands.json` is extracted from Redis 7.0.15's
//! `src/commands/*.json` by `scripts/gen-command-docs.py` (names of
//! arguments in lower case, tokens in upper case, tips in lower case, as
//! Redis's own generator stores them). jcache's command table stays the
//! source of arity, flags and handlers; this file only describes. It is
//! parsed on first use.
//!
//! The key specifications also give COMMAND GETKEYSANDFLAGS its flags, by
//! Redis's `getKeysUsingKeySpecs`.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;
use serde::Deserialize;

use crate::protocol::Reply;

#[derive(Deserialize)]
pub struct CommandDoc {
    /// The categories Redis's table gives (the implicit ones, from the
    /// flags, are added by `acl_categories`).
    #[serde(default)]
    pub acl_categories: Vec<String>,
    /// Redis's flags for the command, in lower case (the hidden ones too).
    #[serde(default)]
    pub command_flags: Vec<String>,
    summary: Option<String>,
    since: Option<String>,
    group: String,
    complexity: Option<String>,
    #[serde(default)]
    doc_flags: Vec<String>,
    deprecated_since: Option<String>,
    replaced_by: Option<String>,
    #[serde(default)]
    history: Vec<(String, String)>,
    arguments: Option<Vec<Arg>>,
    #[serde(default)]
    command_tips: Vec<String>,
    #[serde(default)]
    key_specs: Vec<KeySpecDoc>,
}

#[derive(Deserialize)]
struct Arg {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    key_spec_index: Option<i64>,
    token: Option<String>,
    summary: Option<String>,
    since: Option<String>,
    deprecated_since: Option<String>,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    multiple: bool,
    #[serde(default)]
    multiple_token: bool,
    arguments: Option<Vec<Arg>>,
}

#[derive(Deserialize)]
struct KeySpecDoc {
    notes: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    begin_search: BeginSearch,
    find_keys: FindKeys,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum BeginSearch {
    Index { pos: i64 },
    Keyword { keyword: String, startfrom: i64 },
    Unknown {},
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum FindKeys {
    Range {
        lastkey: i64,
        step: i64,
        limit: i64,
    },
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        step: i64,
    },
    Unknown {},
}

/// Key-spec flags in the order Redis replies them (`addReplyFlagsForKeyArgs`).
const KEY_FLAGS: [(&str, &str); 11] = [
    ("RO", "RO"),
    ("RW", "RW"),
    ("OW", "OW"),
    ("RM", "RM"),
    ("ACCESS", "access"),
    ("UPDATE", "update"),
    ("INSERT", "insert"),
    ("DELETE", "delete"),
    ("NOT_KEY", "not_key"),
    ("INCOMPLETE", "incomplete"),
    ("VARIABLE_FLAGS", "variable_flags"),
];

/// The documentation of a command by its lower-case full name (`set`,
/// `config|get`); None for a command Redis does not have.
pub fn doc(full_name: &str) -> Option<&'static CommandDoc> {
    all().get(full_name)
}

fn all() -> &'static HashMap<String, CommandDoc> {
    static DOCS: OnceLock<HashMap<String, CommandDoc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        serde_json::from_str(include_str!("redis-commands.json"))
            .expect("redis-commands.json is generated valid")
    })
}

/// Whether Redis has subcommands under this command (`config`: yes).
pub fn is_container(full_name: &str) -> bool {
    static PARENTS: OnceLock<std::collections::HashSet<String>> = OnceLock::new();
    PARENTS
        .get_or_init(|| {
            all()
                .keys()
                .filter_map(|k| k.split_once('|').map(|(p, _)| p.to_string()))
                .collect()
        })
        .contains(full_name)
}

/// The key-spec flags given, as Redis names them, in its order.
pub fn key_flag_names(flags: &[&str]) -> Vec<&'static str> {
    KEY_FLAGS
        .iter()
        .filter(|(json, _)| flags.contains(json))
        .map(|(_, name)| *name)
        .collect()
}

fn reply_flags(out: &mut Reply, names: &[&str]) {
    out.set(names.len());
    for n in names {
        out.simple(n);
    }
}

impl CommandDoc {
    /// COMMAND INFO's first key, last key and step, and whether the keys
    /// are "movable" (found by reading the arguments), as Redis's
    /// `populateCommandLegacyRangeSpec` derives them from the key specs.
    pub fn legacy_range(&self) -> ((i64, i64, i64), bool) {
        let range = |s: &KeySpecDoc| match (&s.begin_search, &s.find_keys) {
            (BeginSearch::Index { pos }, FindKeys::Range { lastkey, step, .. }) => {
                Some((*pos, *lastkey, *step))
            }
            _ => None,
        };
        let incomplete = |s: &KeySpecDoc| s.flags.iter().any(|f| f == "INCOMPLETE");
        let shown =
            |pos: i64, last: i64, step: i64| (pos, if last >= 0 { last + pos } else { last }, step);
        match self.key_specs.as_slice() {
            [] => return ((0, 0, 0), false),
            [one] => {
                if let Some((pos, last, step)) = range(one) {
                    return (shown(pos, last, step), incomplete(one));
                }
            }
            _ => {}
        }
        let (mut first, mut last, mut prev_last) = (i64::MAX, 0i64, 0i64);
        let mut movable = false;
        for s in &self.key_specs {
            let Some((pos, lastkey, step)) = range(s) else {
                movable = true;
                continue;
            };
            if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
                movable = true;
                continue;
            }
            movable |= incomplete(s);
            first = first.min(pos);
            let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
            // Redis compares as unsigned: a negative index is the largest.
            last = if (abs as u64) > (last as u64) {
                abs
            } else {
                last
            };
            prev_last = last;
        }
        if first == i64::MAX {
            return ((0, 0, 0), true);
        }
        ((first, last, 1), movable)
    }

    /// COMMAND INFO's eighth element: the tips.
    pub fn reply_tips(&self, out: &mut Reply) {
        out.set(self.command_tips.len());
        for t in &self.command_tips {
            out.bulk(t.as_bytes());
        }
    }

    /// COMMAND INFO's ninth element: the key specifications.
    pub fn reply_key_specs(&self, out: &mut Reply) {
        out.set(self.key_specs.len());
        for s in &self.key_specs {
            out.map(3 + s.notes.is_some() as usize);
            if let Some(n) = &s.notes {
                out.bulk(b"notes");
                out.bulk(n.as_bytes());
            }
            out.bulk(b"flags");
            let flags: Vec<&str> = s.flags.iter().map(String::as_str).collect();
            reply_flags(out, &key_flag_names(&flags));
            out.bulk(b"begin_search");
            out.map(2);
            out.bulk(b"type");
            match &s.begin_search {
                BeginSearch::Index { pos } => {
                    out.bulk(b"index");
                    out.bulk(b"spec");
                    out.map(1);
                    out.bulk(b"index");
                    out.int(*pos);
                }
                BeginSearch::Keyword { keyword, startfrom } => {
                    out.bulk(b"keyword");
                    out.bulk(b"spec");
                    out.map(2);
                    out.bulk(b"keyword");
                    out.bulk(keyword.as_bytes());
                    out.bulk(b"startfrom");
                    out.int(*startfrom);
                }
                BeginSearch::Unknown {} => {
                    out.bulk(b"unknown");
                    out.bulk(b"spec");
                    out.map(0);
                }
            }
            out.bulk(b"find_keys");
            out.map(2);
            out.bulk(b"type");
            match &s.find_keys {
                FindKeys::Range {
                    lastkey,
                    step,
                    limit,
                } => {
                    out.bulk(b"range");
                    out.bulk(b"spec");
                    out.map(3);
                    for (k, v) in [("lastkey", lastkey), ("keystep", step), ("limit", limit)] {
                        out.bulk(k.as_bytes());
                        out.int(*v);
                    }
                }
                FindKeys::Keynum {
                    keynumidx,
                    firstkey,
                    step,
                } => {
                    out.bulk(b"keynum");
                    out.bulk(b"spec");
                    out.map(3);
                    for (k, v) in [
                        ("keynumidx", keynumidx),
                        ("firstkey", firstkey),
                        ("keystep", step),
                    ] {
                        out.bulk(k.as_bytes());
                        out.int(*v);
                    }
                }
                FindKeys::Unknown {} => {
                    out.bulk(b"unknown");
                    out.bulk(b"spec");
                    out.map(0);
                }
            }
        }
    }

    /// COMMAND DOCS for this command, without its subcommands: the number
    /// of map entries written (the caller adds `subcommands`), as Redis's
    /// `addReplyCommandDocs`. `extra` is 1 when subcommands follow.
    pub fn reply_docs(&self, out: &mut Reply, extra: usize) {
        let n = 1
            + self.summary.is_some() as usize
            + self.since.is_some() as usize
            + self.complexity.is_some() as usize
            + !self.doc_flags.is_empty() as usize
            + self.deprecated_since.is_some() as usize
            + self.replaced_by.is_some() as usize
            + !self.history.is_empty() as usize
            + self.arguments.is_some() as usize
            + extra;
        out.map(n);
        let text = |out: &mut Reply, k: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.bulk(k.as_bytes());
                out.bulk(v.as_bytes());
            }
        };
        text(out, "summary", &self.summary);
        text(out, "since", &self.since);
        out.bulk(b"group");
        out.bulk(self.group.as_bytes());
        text(out, "complexity", &self.complexity);
        if !self.doc_flags.is_empty() {
            out.bulk(b"doc_flags");
            let names: Vec<&str> = ["deprecated", "syscmd"]
                .into_iter()
                .filter(|f| self.doc_flags.iter().any(|d| d.eq_ignore_ascii_case(f)))
                .collect();
            reply_flags(out, &names);
        }
        text(out, "deprecated_since", &self.deprecated_since);
        text(out, "replaced_by", &self.replaced_by);
        if !self.history.is_empty() {
            out.bulk(b"history");
            out.set(self.history.len());
            for (since, change) in &self.history {
                out.array(2);
                out.bulk(since.as_bytes());
                out.bulk(change.as_bytes());
            }
        }
        if let Some(args) = &self.arguments {
            out.bulk(b"arguments");
            reply_args(out, args);
        }
    }

    /// Redis's `getKeysUsingKeySpecs` with the flags of each key: None when
    /// Redis would not use the specifications (none, a spec with variable
    /// flags, or one it cannot follow for these arguments); then the
    /// command's own key function decides. `args[0]` is the command name.
    pub fn keys_by_specs(&self, args: &[Bytes]) -> Option<Vec<(usize, Vec<&'static str>)>> {
        let has_key = self
            .key_specs
            .iter()
            .any(|s| !s.flags.iter().any(|f| f == "NOT_KEY"));
        let variable = self
            .key_specs
            .iter()
            .any(|s| s.flags.iter().any(|f| f == "VARIABLE_FLAGS"));
        if !has_key || variable {
            return None;
        }
        let argc = args.len() as i64;
        let mut keys = Vec::new();
        for s in &self.key_specs {
            let flags: Vec<&str> = s.flags.iter().map(String::as_str).collect();
            if flags.contains(&"NOT_KEY") {
                continue;
            }
            let mut first = match &s.begin_search {
                BeginSearch::Index { pos } => *pos,
                BeginSearch::Keyword { keyword, startfrom } => {
                    let found = keyword_position(args, keyword, *startfrom);
                    match found {
                        Some(i) => i + 1,
                        None => continue,
                    }
                }
                BeginSearch::Unknown {} => return None,
            };
            let (last, step) = match &s.find_keys {
                FindKeys::Range {
                    lastkey,
                    step,
                    limit,
                } => {
                    let last = if *lastkey >= 0 {
                        first + lastkey
                    } else if *limit == 0 {
                        argc + lastkey
                    } else {
                        first + ((argc - first) / limit + lastkey)
                    };
                    (last, *step)
                }
                FindKeys::Keynum {
                    keynumidx,
                    firstkey,
                    step,
                } => {
                    let at = usize::try_from(first + keynumidx).ok()?;
                    let n = crate::util::number::parse_i64(args.get(at)?)?;
                    if n < 0 {
                        return None;
                    }
                    first += firstkey;
                    (first + n - 1, *step)
                }
                FindKeys::Unknown {} => return None,
            };
            if last >= argc || last < first || first >= argc {
                return None;
            }
            let names = key_flag_names(&flags);
            let mut i = first;
            while i <= last {
                keys.push((i as usize, names.clone()));
                i += step.max(1);
            }
            if flags.contains(&"INCOMPLETE") {
                return None;
            }
        }
        Some(keys)
    }
}

/// Where a keyword spec's keyword is, searching from `startfrom` (negative:
/// from the end, backwards), as Redis does.
fn keyword_position(args: &[Bytes], keyword: &str, startfrom: i64) -> Option<i64> {
    let argc = args.len() as i64;
    let (start, end) = if startfrom > 0 {
        (startfrom, argc - 1)
    } else {
        (argc + startfrom, 1)
    };
    let mut i = start;
    while i != end {
        if i >= argc || i < 1 {
            return None;
        }
        if args[i as usize].eq_ignore_ascii_case(keyword.as_bytes()) {
            return Some(i);
        }
        i = if start <= end { i + 1 } else { i - 1 };
    }
    None
}

fn reply_args(out: &mut Reply, args: &[Arg]) {
    out.array(args.len());
    for a in args {
        let flags: Vec<&str> = [
            ("optional", a.optional),
            ("multiple", a.multiple),
            ("multiple_token", a.multiple_token),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect();
        let nested = matches!(a.kind.as_str(), "oneof" | "block");
        let n = 2
            + a.key_spec_index.is_some() as usize
            + a.token.is_some() as usize
            + a.summary.is_some() as usize
            + a.since.is_some() as usize
            + a.deprecated_since.is_some() as usize
            + !flags.is_empty() as usize
            + nested as usize;
        out.map(n);
        out.bulk(b"name");
        out.bulk(a.name.as_bytes());
        out.bulk(b"type");
        out.bulk(a.kind.as_bytes());
        if let Some(i) = a.key_spec_index {
            out.bulk(b"key_spec_index");
            out.int(i);
        }
        for (k, v) in [
            ("token", &a.token),
            ("summary", &a.summary),
            ("since", &a.since),
            ("deprecated_since", &a.deprecated_since),
        ] {
            if let Some(v) = v {
                out.bulk(k.as_bytes());
                out.bulk(v.as_bytes());
            }
        }
        if !flags.is_empty() {
            out.bulk(b"flags");
            reply_flags(out, &flags);
        }
        if nested {
            out.bulk(b"arguments");
            reply_args(out, a.arguments.as_deref().unwrap_or(&[]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<Bytes> {
        s.split(' ').map(|a| Bytes::from(a.to_string())).collect()
    }

    #[test]
    fn every_entry_parses_and_names_are_lower_case() {
        let d = doc("set").expect("set is documented");
        assert_eq!(d.group, "string");
        assert!(doc("config|get").is_some());
        assert!(doc("SET").is_none());
        assert_eq!(doc("zadd").unwrap().group, "sorted-set");
    }

    #[test]
    fn key_specs_find_keys_and_flags_as_redis() {
        let lmove = doc("lmove").unwrap();
        let k = lmove
            .keys_by_specs(&args("lmove k1 k2 left right"))
            .unwrap();
        assert_eq!(
            k,
            vec![
                (1, vec!["RW", "access", "delete"]),
                (2, vec!["RW", "insert"])
            ]
        );
        let mset = doc("mset").unwrap();
        let k = mset.keys_by_specs(&args("mset a 1 b 2")).unwrap();
        assert_eq!(
            k.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            vec![1, 3],
            "{k:?}"
        );
        // keynum: EVAL's numkeys.
        let eval = doc("eval").unwrap();
        let k = eval.keys_by_specs(&args("eval s 2 a b c")).unwrap();
        assert_eq!(k.iter().map(|(p, _)| *p).collect::<Vec<_>>(), vec![3, 4]);
        assert!(eval.keys_by_specs(&args("eval s x a")).is_none());
        // SET's flags vary with GET: the specs are not used.
        assert!(doc("set")
            .unwrap()
            .keys_by_specs(&args("set k v"))
            .is_none());
    }

    #[test]
    fn legacy_ranges_are_derived_as_redis_does() {
        let r = |n: &str| doc(n).unwrap().legacy_range();
        assert_eq!(r("get"), ((1, 1, 1), false));
        assert_eq!(r("mset"), ((1, -1, 2), false));
        assert_eq!(r("ping"), ((0, 0, 0), false));
        // Two consecutive range specs merge.
        assert_eq!(r("lmove"), ((1, 2, 1), false));
        // A keynum spec: no range, movable.
        assert_eq!(r("eval"), ((0, 0, 0), true));
        // SORT's STORE is an incomplete second spec.
        assert!(r("sort").1);
        // Shard channels are key specs too (not_key).
        assert_eq!(r("spublish"), ((1, 1, 1), false));
    }

    #[test]
    fn keyword_search_runs_backwards_from_a_negative_start() {
        // XREAD's STREAMS keyword is searched from the end.
        let a = args("xread count 1 streams s1 s2 0 0");
        assert_eq!(keyword_position(&a, "STREAMS", -2), Some(3));
        assert_eq!(keyword_position(&a, "NOSUCH", 1), None);
    }
}
