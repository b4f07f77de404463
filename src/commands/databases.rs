//! Databases: SELECT, MOVE, SWAPDB, FLUSHDB, and the database argument
//! COPY ... DB shares with them.
//!
//! A client's selected database lives in its session (`ClientState::db`,
//! shown by CLIENT LIST as `db=`); the dispatcher makes every command's
//! `Keys` view read and write that database, so no other handler knows
//! databases exist. A key hashes to the same shard in every database, so
//! MOVE and COPY ... DB lock only the shards of their keys, and SWAPDB and
//! FLUSHDB, like FLUSHALL, lock every shard.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_i64, NOT_INT, SYNTAX};
use super::{Command, Ctx, KeySpec, KEY1};
use crate::engine::Mutation;

pub static COMMANDS: &[Command] = &[
    Command::new(
        "select",
        2,
        FAST | LOADING | STALE,
        KeySpec::None,
        select,
        "connection",
    ),
    Command::new("move", 3, WRITE | FAST, KEY1, move_cmd, "generic"),
    Command::new("swapdb", 3, WRITE | FAST, KeySpec::All, swapdb, "server"),
    Command::new("flushdb", -1, WRITE, KeySpec::All, flushdb, "server"),
];

pub const DB_OUT_OF_RANGE: &str = "ERR DB index is out of range";
pub const SAME_OBJECT: &str = "ERR source and destination objects are the same";

/// A database index argument: `value` parsed (Redis's
/// getIntFromObjectOrReply: a 32-bit integer, else `not_int`), then checked ([`check_index`]). Replies the error and
/// returns None.
fn db_arg(ctx: &mut Ctx<'_, '_>, value: &[u8], not_int: &str) -> Option<usize> {
    let v = parse_index(ctx, value, not_int)?;
    check_index(ctx, v)
}

fn parse_index(ctx: &mut Ctx<'_, '_>, value: &[u8], not_int: &str) -> Option<i64> {
    match parse_i64(value) {
        Some(v) if v >= i32::MIN as i64 && v <= i32::MAX as i64 => Some(v),
        // Redis's getRangeLongFromObjectOrReply, with no message of its own.
        Some(_) if not_int == NOT_INT => {
            ctx.err("ERR value is out of range, value must between -2147483648 and 2147483647");
            None
        }
        _ => {
            ctx.err(not_int);
            None
        }
    }
}

/// Checks a database index against `databases` and against what this node
/// serves (`Shared::databases_refused`: only database 0 in a mode that
/// cannot serve the others).
fn check_index(ctx: &mut Ctx<'_, '_>, v: i64) -> Option<usize> {
    if v != 0 {
        if let Some(e) = ctx.server.databases_refused.get() {
            ctx.err(e);
            return None;
        }
    }
    if v < 0 || v >= ctx.ks.db().databases() as i64 {
        ctx.err(DB_OUT_OF_RANGE);
        return None;
    }
    Some(v as usize)
}

/// Whether a command that names a database runs here rather than through
/// the router, on a node that serves database 0 only: MOVE, SWAPDB and
/// COPY ... DB then only answer their errors (or do nothing), and must not
/// reach an upstream that has databases of its own.
pub fn runs_here(server: &super::Shared, cmd: &Command, args: &[Bytes]) -> bool {
    server.databases_refused.get().is_some()
        && match cmd.name {
            "move" | "swapdb" => true,
            "copy" => args[3..].iter().any(|a| is(a, "db")),
            _ => false,
        }
}

/// COPY's `DB index`.
pub fn copy_db_arg(ctx: &mut Ctx<'_, '_>, value: &[u8]) -> Option<usize> {
    db_arg(ctx, value, NOT_INT)
}

/// Makes the client (and the rest of its transaction or script) use `db`.
fn select_db(ctx: &mut Ctx<'_, '_>, db: usize) {
    ctx.client.db = db;
    ctx.ks.select(db);
    // A script's own client shares the caller's info: SELECT inside a
    // script changes nothing the caller shows (Redis 7.0).
    if !ctx.client.in_script {
        ctx.client.info.meta.lock().db = db;
    }
}

fn select(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if let Some(db) = db_arg(ctx, &args[1], NOT_INT) {
        select_db(ctx, db);
        ctx.out.ok();
    }
}

/// MOVE key db: the key leaves the selected database for `db` unless a key
/// of that name is there already.
fn move_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(dst) = db_arg(ctx, &args[2], NOT_INT) else {
        return;
    };
    let src = ctx.ks.selected();
    if src == dst {
        ctx.err(SAME_OBJECT);
        return;
    }
    let key = &args[1];
    if !ctx.ks.exists(key) {
        ctx.out.int(0);
        return;
    }
    ctx.ks.select(dst);
    let taken = ctx.ks.exists(key);
    ctx.ks.select(src);
    if taken {
        ctx.out.int(0);
        return;
    }
    ctx.ks.apply(Mutation::Move {
        key: owned(key),
        db: dst as u32,
    });
    ctx.out.int(1);
}

fn swapdb(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(a) = parse_index(ctx, &args[1], "ERR invalid first DB index") else {
        return;
    };
    let Some(b) = parse_index(ctx, &args[2], "ERR invalid second DB index") else {
        return;
    };
    let Some(a) = check_index(ctx, a) else {
        return;
    };
    let Some(b) = check_index(ctx, b) else {
        return;
    };
    if a != b {
        ctx.ks.apply(Mutation::SwapDb {
            a: a as u32,
            b: b as u32,
        });
    } else {
        // Redis counts it as a change all the same.
        ctx.ks.db().stats.changes.add(1);
    }
    ctx.out.ok();
}

fn flushdb(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "async") && !is(&args[1], "sync")) {
        ctx.err(SYNTAX);
        return;
    }
    ctx.ks.apply(Mutation::FlushDb);
    ctx.out.ok();
}
