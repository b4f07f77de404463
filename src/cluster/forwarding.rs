//! Which commands travel from a follower to the master (`Forward`): the one
//! rule both sides use, the follower to decide what it hands over and the
//! master to refuse anything else a peer sends, so the two cannot drift.
//!
//! A peer holding the cluster secret reaches the master's keyspace past
//! `requirepass`; what it may run there is what a client could have run at
//! the follower and the follower hands over: keyspace writes (FLUSHALL and
//! FLUSHDB included: a client may send them to any node), PUBLISH, WAIT,
//! blocking commands, scripts, the reads a diverged follower hands over,
//! and inside a transaction also PING, ECHO, TIME and SELECT. Never a command with
//! the `@admin` / `@dangerous` ACL category as COMMAND INFO reports it here
//! (the `ADMIN` flag: CONFIG, DEBUG, SHUTDOWN, CLIENT KILL, SAVE, ...), nor
//! one that changes the connection or the server (CLIENT SETNAME, SELECT,
//! SUBSCRIBE, MULTI, HELLO, AUTH, ...).

use bytes::Bytes;

use crate::commands::{flags, resolve, Command};

/// How a follower forwards a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForwardKind {
    /// Always (writes, PUBLISH, WAIT, blocking commands, scripts), and a
    /// transaction that holds one.
    Write,
    /// While the follower's keyspace is diverged (the master answers reads).
    Read,
    /// Only inside a transaction that is forwarded (harmless: PING, ECHO, TIME).
    InTransaction,
}

/// Commands without the WRITE flag that a follower forwards like writes.
/// Top-level names; no subcommand has one of them (a unit test checks).
const WRITE_LIKE: &[&str] = &["publish", "spublish", "wait", "eval", "evalsha", "fcall"];
/// Scripts that only read.
const READ_SCRIPTS: &[&str] = &["eval_ro", "evalsha_ro", "fcall_ro"];
/// Commands a transaction may hold besides reads and writes (SELECT
/// changes the database of the rest of the transaction and, after EXEC,
/// the follower's client, which runs it there too).
const IN_TRANSACTION: &[&str] = &["ping", "echo", "time", "select"];

/// How `cmd` (a resolved command or subcommand) is forwarded, or None if it
/// never is (it runs where the client sent it).
pub fn forward_kind(cmd: &Command) -> Option<ForwardKind> {
    if cmd.has(flags::ADMIN) {
        return None;
    }
    let write_like = flags::WRITE | flags::BLOCKING | flags::MAY_REPLICATE | flags::REPLICATED;
    if cmd.has(write_like) || WRITE_LIKE.contains(&cmd.name) {
        Some(ForwardKind::Write)
    } else if cmd.has(flags::READONLY) || READ_SCRIPTS.contains(&cmd.name) {
        Some(ForwardKind::Read)
    } else if IN_TRANSACTION.contains(&cmd.name) {
        Some(ForwardKind::InTransaction)
    } else {
        None
    }
}

/// The error reply (without the leading `-`) for a command that may not be
/// forwarded; `name` is its full name (`config|set`).
pub fn refused(name: &str) -> String {
    format!("ERR command '{name}' may not be forwarded")
}

/// The master's check of one forwarded command: None to run it, or the
/// error to reply instead. A request that does not resolve (unknown
/// command, wrong arity) runs: it only produces its own error reply.
pub fn check(args: &[Bytes], in_transaction: bool) -> Option<String> {
    if args.is_empty() {
        return None;
    }
    let Ok((cmd, full)) = resolve(args) else {
        return None;
    };
    match forward_kind(cmd) {
        Some(ForwardKind::Write | ForwardKind::Read) => None,
        Some(ForwardKind::InTransaction) if in_transaction => None,
        _ => Some(refused(&full)),
    }
}

/// The master's check of a transaction: every queued command, before any
/// runs; the first refusal refuses the whole transaction.
pub fn check_transaction<'a>(mut cmds: impl Iterator<Item = &'a [Bytes]>) -> Option<String> {
    cmds.find_map(|a| check(a, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::all_full_names;

    fn args(v: &[&str]) -> Vec<Bytes> {
        v.iter()
            .map(|s| Bytes::copy_from_slice(s.as_bytes()))
            .collect()
    }

    /// The rule agrees with the ACL categories COMMAND INFO reports: nothing
    /// @admin is ever forwarded, every other write is (a @dangerous write
    /// that is not @admin, FLUSHALL or SORT, is forwarded as any write).
    #[test]
    fn never_admin_or_dangerous_always_writes() {
        for (cmd, full) in all_full_names() {
            let cats = crate::commands::server_cmds::acl_categories(cmd);
            let privileged = cats.contains(&"admin");
            if privileged {
                assert_eq!(forward_kind(cmd), None, "{full}");
            }
            // A privileged write (PFDEBUG) stays at the follower, which
            // refuses it as a read-only replica does.
            if cats.contains(&"write") && !privileged {
                assert_eq!(forward_kind(cmd), Some(ForwardKind::Write), "{full}");
            }
            if cats.contains(&"read") {
                assert!(forward_kind(cmd).is_some(), "{full}");
            }
        }
        // The name lists apply to top-level commands only.
        for (cmd, full) in all_full_names() {
            if full.contains('|') {
                for list in [WRITE_LIKE, READ_SCRIPTS, IN_TRANSACTION] {
                    assert!(!list.contains(&cmd.name), "{full}");
                }
            }
        }
    }

    #[test]
    fn the_master_refuses_what_a_follower_never_forwards() {
        for ok in [
            &["SET", "k", "v"][..],
            &["flushall"],
            &["FLUSHDB", "ASYNC"],
            &["PUBLISH", "c", "m"],
            &["BLPOP", "l", "0"],
            &["WAIT", "1", "0"],
            &["GET", "k"],
            &["MEMORY", "USAGE", "k"],
            &["nosuchcommand"],
            &["SET"],
        ] {
            assert_eq!(check(&args(ok), false), None, "{ok:?}");
        }
        for (bad, name) in [
            (&["CONFIG", "SET", "requirepass", "x"][..], "config|set"),
            (&["shutdown", "nosave"], "shutdown"),
            (&["DEBUG", "SLEEP", "1"], "debug|sleep"),
            (&["CLIENT", "KILL", "ID", "1"], "client|kill"),
            (&["CLIENT", "SETNAME", "x"], "client|setname"),
            (&["SAVE"], "save"),
            (&["MULTI"], "multi"),
            (&["SELECT", "1"], "select"),
            (&["SUBSCRIBE", "c"], "subscribe"),
            (&["HELLO", "3"], "hello"),
            (&["PING"], "ping"),
        ] {
            assert_eq!(check(&args(bad), false), Some(refused(name)), "{bad:?}");
        }
        assert_eq!(check(&args(&["PING"]), true), None);
        let txn = [args(&["SET", "a", "1"]), args(&["PING"])];
        assert_eq!(check_transaction(txn.iter().map(|a| &a[..])), None);
        let txn = [
            args(&["SET", "a", "1"]),
            args(&["CONFIG", "SET", "maxmemory", "1"]),
        ];
        assert_eq!(
            check_transaction(txn.iter().map(|a| &a[..])),
            Some(refused("config|set"))
        );
    }
}
