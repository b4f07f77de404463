//! Server commands: COMMAND, CONFIG, INFO, DBSIZE, FLUSHALL, FLUSHDB, TIME,
//! SHUTDOWN, DEBUG (a safe subset), MEMORY USAGE, FUNCTION FLUSH, LASTSAVE.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::flags::*;
use super::info;
use super::util::{is, parse_i64, NOT_INT, SYNTAX};
use super::KEY2;
use super::{all_full_names, lookup, sorted_commands, Command, Ctx, KeySpec, TABLE};
use crate::engine::Mutation;
use crate::util::glob::glob_match;

pub static COMMANDS: &[Command] = &[
    Command::new(
        "command",
        -1,
        LOADING | STALE,
        KeySpec::None,
        command,
        "server",
    ),
    Command::container("config", "server", CONFIG_SUBCOMMANDS),
    Command::container("cluster", "cluster", CLUSTER_SUBCOMMANDS),
    Command::new("info", -1, LOADING | STALE, KeySpec::None, info, "server"),
    Command::new("dbsize", 1, READONLY | FAST, KeySpec::All, dbsize, "server"),
    Command::new("flushall", -1, WRITE, KeySpec::All, flushall, "server"),
    Command::new(
        "time",
        1,
        LOADING | STALE | FAST,
        KeySpec::None,
        time,
        "server",
    ),
    Command::new(
        "lastsave",
        1,
        LOADING | STALE | FAST,
        KeySpec::None,
        lastsave,
        "server",
    ),
    Command::new(
        "shutdown",
        -1,
        ADMIN | NOSCRIPT | LOADING | STALE | DENY_MULTI | ALLOW_BUSY,
        KeySpec::None,
        shutdown,
        "server",
    ),
    Command::new(
        "save",
        1,
        ADMIN | NOSCRIPT | DENY_MULTI,
        KeySpec::None,
        no_persistence,
        "server",
    ),
    Command::new(
        "bgsave",
        -1,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        no_persistence,
        "server",
    ),
    Command::new(
        "bgrewriteaof",
        1,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        no_persistence,
        "server",
    ),
    Command::container("debug", "server", DEBUG_SUBCOMMANDS),
    Command::container("memory", "server", MEMORY_SUBCOMMANDS),
];

/// CLUSTER: jcache is not a Redis Cluster node (its cluster mode is a
/// replicated single keyspace), so every subcommand answers as a Redis
/// started without `cluster-enabled`.
static CLUSTER_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "addslots",
        -3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "addslotsrange",
        -4,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "bumpepoch",
        2,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "count-failure-reports",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "countkeysinslot",
        3,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "delslots",
        -3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "delslotsrange",
        -4,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "failover",
        -2,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "flushslots",
        2,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "forget",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "getkeysinslot",
        4,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new("info", 2, STALE, KeySpec::None, cluster_disabled, "cluster"),
    Command::new(
        "keyslot",
        3,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "links",
        2,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "meet",
        -4,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new("myid", 2, STALE, KeySpec::None, cluster_disabled, "cluster"),
    Command::new(
        "nodes",
        2,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "replicas",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "replicate",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "reset",
        -2,
        ADMIN | STALE | NOSCRIPT,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "saveconfig",
        2,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "set-config-epoch",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "setslot",
        -4,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "shards",
        2,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "slaves",
        3,
        ADMIN | STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
    Command::new(
        "slots",
        2,
        STALE,
        KeySpec::None,
        cluster_disabled,
        "cluster",
    ),
];

fn cluster_disabled(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.err("ERR This instance has cluster support disabled");
}

static CONFIG_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "get",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        config_get,
        "server",
    ),
    Command::new(
        "set",
        -4,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        config_set,
        "server",
    ),
    Command::new(
        "resetstat",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        config_resetstat,
        "server",
    ),
    Command::new(
        "rewrite",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        config_rewrite,
        "server",
    ),
];

static DEBUG_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "digest",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        super::replication::debug_digest,
        "server",
    ),
    Command::new(
        "log",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_ok,
        "server",
    ),
    Command::new(
        "sleep",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_sleep,
        "server",
    ),
    Command::new(
        "set-active-expire",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_active_expire,
        "server",
    ),
    Command::new(
        "reload",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_ok,
        "server",
    ),
    Command::new(
        "jmap",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_ok,
        "server",
    ),
    Command::new(
        "change-repl-id",
        2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_ok,
        "server",
    ),
    Command::new(
        "quicklist-packed-threshold",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        debug_ok,
        "server",
    ),
];

static MEMORY_SUBCOMMANDS: &[Command] = &[
    super::introspection::MEMORY_DOCTOR,
    super::introspection::MEMORY_HELP,
    super::introspection::MEMORY_MALLOC_STATS,
    super::introspection::MEMORY_PURGE,
    super::introspection::MEMORY_STATS,
    Command::new("usage", -3, READONLY, KEY2, memory_usage, "server"),
];

// ---- COMMAND ----

fn flag_names(c: &'static Command) -> Vec<&'static str> {
    // addReplyFlagsForCommand: the flags Redis shows, in its order (it
    // hides may_replicate, sentinel, only_sentinel, protected and
    // touches_arbitrary_keys on purpose).
    const SHOWN: [&str; 20] = [
        "write",
        "readonly",
        "denyoom",
        "module",
        "admin",
        "pubsub",
        "noscript",
        "blocking",
        "loading",
        "stale",
        "skip_monitor",
        "skip_slowlog",
        "asking",
        "fast",
        "no_auth",
        "no_mandatory_keys",
        "no_async_loading",
        "no_multi",
        "movablekeys",
        "allow_busy",
    ];
    let mut v: Vec<&str> = match super::docs::doc(super::stats::full_name(c)) {
        Some(d) => d.command_flags.iter().map(String::as_str).collect(),
        None => NAMES
            .iter()
            .filter(|(f, _)| c.flags & f != 0)
            .map(|(_, n)| *n)
            .collect(),
    };
    // Keys found by reading the arguments (numkeys, STORE, ...), as Redis
    // marks them.
    let movable = match super::docs::doc(super::stats::full_name(c)) {
        Some(d) => d.legacy_range().1,
        None => matches!(c.keys, KeySpec::Custom(_) | KeySpec::AllShards(_)),
    };
    if movable {
        v.push("movablekeys");
    }
    SHOWN.into_iter().filter(|f| v.contains(f)).collect()
}

/// The command's ACL categories, as Redis names them, from its flags and
/// group (COMMAND INFO, COMMAND LIST FILTERBY ACLCAT).
pub(crate) fn acl_categories(c: &'static Command) -> Vec<&'static str> {
    // ACLCommandCategories: the order Redis replies them in.
    const ORDER: [&str; 21] = [
        "keyspace",
        "read",
        "write",
        "set",
        "sortedset",
        "list",
        "hash",
        "string",
        "bitmap",
        "hyperloglog",
        "geo",
        "stream",
        "pubsub",
        "admin",
        "fast",
        "slow",
        "blocking",
        "dangerous",
        "connection",
        "transaction",
        "scripting",
    ];
    let mut v: Vec<&str> = match super::docs::doc(super::stats::full_name(c)) {
        Some(d) => d.acl_categories.iter().map(String::as_str).collect(),
        // A command of jcache's own: its group's category.
        None => match c.group {
            "generic" => vec!["keyspace"],
            "server" => vec![],
            g => vec![g],
        },
    };
    // setImplicitACLCategories, from the flags COMMAND INFO shows.
    let scripting = v.contains(&"scripting");
    let flags = flag_names(c);
    let has = |f: &str| flags.contains(&f);
    for (on, cat) in [
        (has("write"), "write"),
        (has("readonly") && !scripting, "read"),
        (has("admin"), "admin"),
        (has("admin"), "dangerous"),
        (has("pubsub"), "pubsub"),
        (has("fast"), "fast"),
        (has("blocking"), "blocking"),
    ] {
        if on {
            v.push(cat);
        }
    }
    if !v.contains(&"fast") {
        v.push("slow");
    }
    ORDER.into_iter().filter(|cat| v.contains(cat)).collect()
}

/// A command by its full name: `get`, or `config|get` for a subcommand.
fn lookup_full(name: &[u8]) -> Option<(&'static Command, String)> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name).map(|c| (c, c.name.to_string())),
        Some(i) => {
            let parent = lookup(&name[..i])?;
            let sub = super::lookup_sub(parent, &name[i + 1..])?;
            Some((sub, format!("{}|{}", parent.name, sub.name)))
        }
    }
}

fn key_range(c: &'static Command) -> (i64, i64, i64) {
    if let Some(d) = super::docs::doc(super::stats::full_name(c)) {
        return d.legacy_range().0;
    }
    match c.keys {
        KeySpec::Range { first, last, step } => (first as i64, last as i64, step as i64),
        KeySpec::Custom(_) | KeySpec::AllShards(_) => {
            let (f, l, s) = c.legacy_keys;
            (f as i64, l as i64, s as i64)
        }
        _ => (0, 0, 0),
    }
}

fn write_command_info(ctx: &mut Ctx<'_, '_>, c: &'static Command, full_name: &str) {
    ctx.out.array(10);
    ctx.out.bulk(full_name.as_bytes());
    ctx.out.int(c.arity as i64);
    let flags = flag_names(c);
    ctx.out.set(flags.len());
    for f in flags {
        ctx.out.simple(f);
    }
    let (first, last, step) = key_range(c);
    ctx.out.int(first);
    ctx.out.int(last);
    ctx.out.int(step);
    let cats = acl_categories(c);
    ctx.out.set(cats.len());
    for cat in cats {
        ctx.out.simple(&format!("@{cat}"));
    }
    match super::docs::doc(full_name) {
        Some(d) => {
            d.reply_tips(ctx.out);
            d.reply_key_specs(ctx.out);
        }
        None => {
            ctx.out.set(0);
            ctx.out.set(0);
        }
    }
    let subs = shown_subcommands(c, full_name);
    ctx.out.array(subs.len());
    for s in subs {
        write_command_info(ctx, s, &format!("{}|{}", full_name, s.name));
    }
}

/// The subcommands COMMAND INFO and DOCS show: none for a command Redis
/// documents as a plain command (jcache's DEBUG dispatches its
/// subcommands through the table, Redis's DEBUG has none).
fn shown_subcommands(c: &'static Command, full_name: &str) -> &'static [Command] {
    if super::docs::doc(full_name).is_some() && !super::docs::is_container(full_name) {
        return &[];
    }
    c.subcommands
}

fn write_command_docs(ctx: &mut Ctx<'_, '_>, c: &'static Command, full_name: &str) {
    ctx.out.bulk(full_name.as_bytes());
    let shown = shown_subcommands(c, full_name);
    let subs = !shown.is_empty() as usize;
    match super::docs::doc(full_name) {
        Some(d) => d.reply_docs(ctx.out, subs),
        None => {
            // A command of jcache's own: its group only.
            ctx.out.map(1 + subs);
            ctx.out.bulk(b"group");
            ctx.out.bulk(c.group.as_bytes());
        }
    }
    if !shown.is_empty() {
        ctx.out.bulk(b"subcommands");
        ctx.out.map(shown.len());
        for s in shown {
            write_command_docs(ctx, s, &format!("{}|{}", full_name, s.name));
        }
    }
}

fn command(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() == 1 {
        let all = sorted_commands();
        ctx.out.array(all.len());
        for c in all {
            write_command_info(ctx, c, c.name);
        }
        return;
    }
    let sub = &args[1];
    if is(sub, "count") && args.len() == 2 {
        ctx.out.int(TABLE.len() as i64);
    } else if is(sub, "list") {
        // COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN glob]
        let filter = match args.len() {
            2 => None,
            5 if is(&args[2], "filterby") => Some((&args[3], &args[4])),
            _ => {
                ctx.err(SYNTAX);
                return;
            }
        };
        let mut names = all_full_names();
        match filter {
            None => {}
            // No modules.
            Some((kind, _)) if is(kind, "module") => names.clear(),
            Some((kind, cat)) if is(kind, "aclcat") => {
                let cat = String::from_utf8_lossy(cat).to_ascii_lowercase();
                names.retain(|(c, _)| acl_categories(c).contains(&cat.as_str()));
            }
            Some((kind, pat)) if is(kind, "pattern") => {
                names.retain(|(_, n)| glob_match(pat, n.as_bytes(), true));
            }
            Some(_) => {
                ctx.err(SYNTAX);
                return;
            }
        }
        ctx.out.array(names.len());
        for (_, n) in names {
            ctx.out.bulk(n.as_bytes());
        }
    } else if is(sub, "info") {
        let names: Vec<Bytes> = if args.len() == 2 {
            sorted_commands()
                .iter()
                .map(|c| Bytes::from_static(c.name.as_bytes()))
                .collect()
        } else {
            args[2..].to_vec()
        };
        ctx.out.array(names.len());
        for n in &names {
            match lookup_full(n) {
                Some((c, full)) => write_command_info(ctx, c, &full),
                None => ctx.out.null_array(),
            }
        }
    } else if is(sub, "docs") {
        let cmds: Vec<(&'static Command, String)> = if args.len() == 2 {
            sorted_commands()
                .into_iter()
                .map(|c| (c, c.name.to_string()))
                .collect()
        } else {
            args[2..].iter().filter_map(|n| lookup_full(n)).collect()
        };
        ctx.out.map(cmds.len());
        for (c, full) in cmds {
            write_command_docs(ctx, c, &full);
        }
    } else if (is(sub, "getkeys") || is(sub, "getkeysandflags")) && args.len() < 4 {
        ctx.err(&format!(
            "ERR wrong number of arguments for 'command|{}' command",
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ));
    } else if (is(sub, "getkeys") || is(sub, "getkeysandflags")) && args.len() >= 4 {
        command_getkeys(ctx, &args[2..], is(sub, "getkeysandflags"));
    } else if is(sub, "help") {
        let lines = [
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
            "HELP",
            "    Prints this help.",
        ];
        ctx.out.array(lines.len());
        for l in lines {
            ctx.out.simple(l);
        }
    } else {
        ctx.err(&format!(
            "ERR unknown subcommand '{}'. Try COMMAND HELP.",
            String::from_utf8_lossy(sub)
        ));
    }
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS for the call `rest`, as Redis's
/// getKeysSubcommandImpl.
fn command_getkeys(ctx: &mut Ctx<'_, '_>, rest: &[Bytes], with_flags: bool) {
    match super::resolve(rest) {
        Err(_) if super::lookup(&rest[0]).is_none() => ctx.err("ERR Invalid command specified"),
        Err(_) => ctx.err("ERR Invalid number of arguments specified for command"),
        Ok((c, full)) => {
            let pos = c.key_positions(rest);
            if pos.is_empty() {
                // Redis's getKeysSubcommandImpl: a command that never
                // takes keys, one whose keys are optional (scripts:
                // CMD_NO_MANDATORY_KEYS) called without any, or a call
                // whose arguments name no key.
                if matches!(c.keys, KeySpec::None) {
                    ctx.err("ERR The command has no key arguments");
                } else if c.has(SCRIPT) {
                    ctx.out.array(0);
                } else {
                    ctx.err("ERR Invalid arguments specified for command");
                }
                return;
            }
            let keys = match with_flags {
                true => keys_and_flags(&full, rest, pos),
                false => pos.into_iter().map(|p| (p, None)).collect(),
            };
            ctx.out.array(keys.len());
            for (p, flags) in keys {
                if let Some(flags) = flags {
                    ctx.out.array(2);
                    ctx.out.bulk(&rest[p]);
                    ctx.out.set(flags.len());
                    for f in flags {
                        ctx.out.simple(f);
                    }
                } else {
                    ctx.out.bulk(&rest[p]);
                }
            }
        }
    }
}

/// COMMAND GETKEYSANDFLAGS: the keys with their flags, as Redis's
/// `getKeysFromCommandWithSpecs` finds them: by the key specifications where
/// their flags are fixed, else by the command's key function (`pos`, the
/// keys GETKEYS reports) with the flags that function gives (none for most).
fn keys_and_flags(
    full: &str,
    args: &[Bytes],
    pos: super::KeyPositions,
) -> Vec<(usize, Option<Vec<&'static str>>)> {
    if let Some(keys) = super::docs::doc(full).and_then(|d| d.keys_by_specs(args)) {
        return keys.into_iter().map(|(p, f)| (p, Some(f))).collect();
    }
    let fixed = |names: &[&str]| Some(super::docs::key_flag_names(names));
    let has = |word: &str| args[1..].iter().any(|a| is(a, word));
    pos.iter()
        .enumerate()
        .map(|(i, &p)| {
            let flags = match full {
                // setGetKeys
                "set" if has("get") => fixed(&["RW", "ACCESS", "UPDATE"]),
                "set" => fixed(&["OW", "UPDATE"]),
                // bitfieldGetKeys: read-only without SET and INCRBY.
                "bitfield" if has("set") || has("incrby") => fixed(&["RW", "ACCESS", "UPDATE"]),
                "bitfield" => fixed(&["RO", "ACCESS"]),
                // sortGetKeys: the sorted key, then the STORE destination.
                "sort" if i > 0 => fixed(&["OW", "UPDATE"]),
                "sort" | "sort_ro" => fixed(&["RO", "ACCESS"]),
                "migrate" => fixed(&["RW", "ACCESS", "DELETE"]),
                _ => Some(Vec::new()),
            };
            (p, flags)
        })
        .collect()
}

// ---- CONFIG ----

fn config_get(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for pat in &args[2..] {
        for (k, v) in ctx.server.config.matching(pat) {
            if !pairs.iter().any(|(pk, _)| *pk == k) {
                pairs.push((k, v));
            }
        }
    }
    ctx.out.map(pairs.len());
    for (k, v) in pairs {
        ctx.out.bulk(k.as_bytes());
        ctx.out.bulk(v.as_bytes());
    }
}

fn config_set(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        ctx.err("ERR wrong number of arguments for 'config|set' command");
        return;
    }
    // Validate every pair first: a CONFIG SET applies all of its pairs or none.
    let mut staged = Vec::new();
    for pair in args[2..].chunks(2) {
        let name = String::from_utf8_lossy(&pair[0]).into_owned();
        let value = String::from_utf8_lossy(&pair[1]).into_owned();
        match ctx.server.config.validate(&name, &value) {
            Ok((n, v)) => {
                if staged.iter().any(|(sn, _): &(&str, String)| *sn == n) {
                    ctx.err(&format!("ERR CONFIG SET failed (possibly related to argument '{n}') - duplicate parameter"));
                    return;
                }
                staged.push((n, v));
            }
            Err(e) => {
                ctx.err(&e);
                return;
            }
        }
    }
    for (n, v) in staged {
        match n {
            "maxmemory" => {
                ctx.server
                    .db
                    .maxmemory
                    .store(v.parse().unwrap_or(0), Ordering::Relaxed);
                ctx.server.memory_sources.lock()[0] = crate::config::SettingSource::Runtime;
            }
            "notify-keyspace-events" => {
                let f = crate::state::hooks::notify::parse(&v).unwrap_or(0);
                ctx.server.hooks.notify_flags.store(f, Ordering::Relaxed);
            }
            "maxmemory-policy" => {
                if let Some(p) = crate::engine::EvictionPolicy::parse(&v) {
                    ctx.server.db.set_policy(p);
                }
                ctx.server.memory_sources.lock()[1] = crate::config::SettingSource::Runtime;
            }
            "slowlog-log-slower-than" => ctx.server.slowlog.set_threshold(v.parse().unwrap_or(0)),
            "slowlog-max-len" => ctx
                .server
                .slowlog
                .set_max_len(v.parse::<i64>().unwrap_or(0).max(0) as usize),
            "latency-monitor-threshold" => ctx.server.latency.threshold_ms.store(
                v.parse::<i64>().unwrap_or(0).max(0) as u64,
                Ordering::Relaxed,
            ),
            "latency-tracking" => {
                super::stats::LATENCY_TRACKING.store(v == "yes", Ordering::Relaxed)
            }
            _ => {}
        }
        ctx.server.config.store(n, v);
    }
    ctx.out.ok();
}

fn config_resetstat(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let s = &ctx.server.stats;
    s.commands.reset();
    s.net_input_bytes.reset();
    s.net_output_bytes.reset();
    super::stats::reset();
    for c in [
        &s.connections_received,
        &s.rejected_connections,
        &s.errors,
        &s.cmd_usec,
    ] {
        c.store(0, Ordering::Relaxed);
    }
    s.errorstats.lock().clear();
    let e = &ctx.server.db.stats;
    for c in [&e.expired_keys, &e.evicted_keys] {
        c.store(0, Ordering::Relaxed);
    }
    e.keyspace_hits.reset();
    e.keyspace_misses.reset();
    ctx.out.ok();
}

fn config_rewrite(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.err("ERR The server is running without a config file");
}

// ---- INFO ----

/// Resident set size of this process, from /proc.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Builds the INFO text for the requested sections ("default", "all", or names).
pub fn info_text(ctx: &Ctx<'_, '_>, sections: &[String]) -> String {
    // As Redis: no argument or "default" gives every section but
    // commandstats and latencystats; "all" and "everything" add them;
    // names pick sections.
    let want = |name: &str| {
        let default = name != "commandstats" && name != "latencystats";
        (sections.is_empty() && default)
            || sections.iter().any(|s| {
                s == name || s == "all" || s == "everything" || (s == "default" && default)
            })
    };
    let srv = ctx.server;
    let mut s = String::new();
    // Inside a script (every shard locked by this thread), count through
    // the locks held rather than take them again.
    let key_counts = || ctx.ks.key_counts().unwrap_or_else(|| srv.db.key_counts());
    if want("server") {
        info::server(srv, &mut s);
    }
    if want("clients") {
        info::clients(srv, &mut s);
    }
    if want("memory") {
        let keys: usize = key_counts().iter().map(|(_, k, _)| k).sum();
        info::memory(srv, keys as u64, &mut s);
    }
    if want("persistence") {
        info::persistence(srv, &mut s);
    }
    if want("stats") {
        info::stats(srv, &mut s);
    }
    if let Some(r) = want("replication")
        .then(|| srv.router.get().and_then(|r| r.info_replication()))
        .flatten()
    {
        s.push_str(&r);
    } else if want("replication") {
        info::replication(srv, &mut s);
    }
    if want("cpu") {
        info::cpu(&mut s);
    }
    if want("modules") {
        info::modules(&mut s);
    }
    if want("commandstats") {
        super::stats::info_section(&mut s);
    }
    if want("errorstats") {
        s.push_str("# Errorstats\r\n");
        for (code, n) in srv.stats.errorstats.lock().iter() {
            let _ = write!(s, "errorstat_{code}:count={n}\r\n");
        }
        s.push_str("\r\n");
    }
    if want("latencystats") {
        super::introspection::info_latencystats(srv, &mut s);
    }
    if want("cluster") {
        info::cluster(&mut s);
    }
    if want("keyspace") {
        s.push_str("# Keyspace\r\n");
        // Inside a script (every shard locked by this thread), count through
        // the locks held rather than take them again.
        let counts = ctx.ks.key_counts().unwrap_or_else(|| srv.db.key_counts());
        for (db, keys, expires) in counts {
            let _ = write!(s, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
        }
        s.push_str("\r\n");
    }
    if let Some(router) = srv.router.get() {
        router.info(&want, &mut s);
    }
    while s.ends_with("\r\n\r\n") {
        s.truncate(s.len() - 2);
    }
    s
}

fn info(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let sections: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_ascii_lowercase())
        .collect();
    let text = info_text(ctx, &sections);
    ctx.out.verbatim("txt", text.as_bytes());
}

// ---- keyspace-wide ----

fn dbsize(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let n: usize = ctx.ks.shards().map(|(_, s)| s.len()).sum();
    ctx.out.int(n as i64);
}

fn flushall(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "async") && !is(&args[1], "sync")) {
        ctx.err(SYNTAX);
        return;
    }
    ctx.ks.apply(Mutation::FlushAll);
    ctx.out.ok();
}

fn time(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ctx.out.array(2);
    ctx.out.bulk_int(now.as_secs() as i64);
    ctx.out.bulk_int(now.subsec_micros() as i64);
}

fn lastsave(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let started = SystemTime::now() - ctx.server.started.elapsed();
    ctx.out.int(
        started
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0),
    );
}

fn no_persistence(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.err("ERR jcache is an in-memory cache and does not persist data");
}

fn shutdown(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    for a in &args[1..] {
        if is(a, "abort") {
            ctx.err("ERR No shutdown in progress.");
            return;
        }
        if !(is(a, "nosave") || is(a, "save") || is(a, "now") || is(a, "force")) {
            ctx.err(SYNTAX);
            return;
        }
    }
    tracing::info!(client = ctx.client.id, "SHUTDOWN requested");
    ctx.server.trigger_shutdown();
    ctx.client.close_after_reply = true;
}

// ---- DEBUG / MEMORY / FUNCTION ----

fn debug_ok(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if is(&args[1], "log") {
        tracing::info!(message = %String::from_utf8_lossy(&args[2]), "DEBUG LOG");
    }
    ctx.out.ok();
}

fn debug_sleep(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(secs) = super::util::parse_f64(&args[2]).filter(|s| *s >= 0.0 && s.is_finite()) else {
        ctx.err("ERR value is not a valid float");
        return;
    };
    // Blocks this connection's worker like Redis blocks its only thread; bounded at 60 s.
    std::thread::sleep(Duration::from_secs_f64(secs.min(60.0)));
    ctx.out.ok();
}

fn debug_active_expire(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match parse_i64(&args[2]) {
        Some(v) => {
            ctx.server.db.set_active_expire(v != 0);
            ctx.out.ok();
        }
        None => ctx.err(NOT_INT),
    }
}

fn memory_usage(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() != 3 && !(args.len() == 5 && is(&args[3], "samples")) {
        ctx.err(SYNTAX);
        return;
    }
    match ctx.ks.peek(&args[2]) {
        Some(e) => {
            let n = crate::engine::entry_bytes(args[2].len(), e);
            ctx.out.int(n as i64)
        }
        None => ctx.out.null(),
    }
}
