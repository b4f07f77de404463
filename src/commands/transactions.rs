//! MULTI / EXEC / DISCARD / WATCH / UNWATCH. A transaction runs with every
//! shard locked, so no other client observes half of it.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::flags::*;
use super::util::owned;
use super::{run_in_exec, Command, Ctx, KeySpec};
use crate::commands::{ClientState, Shared};

pub static COMMANDS: &[Command] = &[
    Command::new(
        "multi",
        1,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CTRL | ALLOW_BUSY,
        KeySpec::None,
        multi,
        "transactions",
    ),
    Command::new(
        "exec",
        1,
        NOSCRIPT | LOADING | STALE | MULTI_CTRL,
        // Every shard, locked by `execute` like any command's: if a script
        // holds them, EXEC waits without blocking its worker.
        KeySpec::All,
        exec,
        "transactions",
    ),
    Command::new(
        "discard",
        1,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CTRL | ALLOW_BUSY,
        KeySpec::None,
        discard,
        "transactions",
    ),
    Command::new(
        "watch",
        -2,
        NOSCRIPT | LOADING | STALE | FAST | MULTI_CTRL | ALLOW_BUSY,
        KeySpec::Range {
            first: 1,
            last: -1,
            step: 1,
        },
        watch,
        "transactions",
    ),
    Command::new(
        "unwatch",
        1,
        NOSCRIPT | LOADING | STALE | FAST | ALLOW_BUSY,
        KeySpec::None,
        unwatch,
        "transactions",
    ),
];

fn multi(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        ctx.err("ERR MULTI calls can not be nested");
        return;
    }
    ctx.client.multi = Some(Vec::new());
    ctx.client.multi_bytes = 0;
    ctx.client.multi_dirty = false;
    ctx.out.ok();
}

fn discard(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    if ctx.client.multi.take().is_none() {
        ctx.err("ERR DISCARD without MULTI");
        return;
    }
    ctx.client.multi_dirty = false;
    unwatch_all(ctx);
    ctx.out.ok();
}

fn exec(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let Some(queued) = ctx.client.multi.take() else {
        ctx.err("ERR EXEC without MULTI");
        return;
    };
    if std::mem::take(&mut ctx.client.multi_dirty) {
        unwatch_all(ctx);
        ctx.err("EXECABORT Transaction discarded because of previous errors.");
        return;
    }
    let server = ctx.server;
    debug_assert!(ctx.ks.all_locked(), "EXEC runs with every shard locked");
    // A watched key that was live at WATCH time and is gone now has expired
    // (a delete by anyone would have set the dirty flag).
    let mut aborted = ctx.client.watch_dirty.load(Ordering::Acquire);
    if !aborted {
        for ((db, key), was_live) in &ctx.client.watched {
            ctx.ks.select(*db);
            if *was_live && !ctx.ks.exists(key) {
                aborted = true;
                break;
            }
        }
    }
    ctx.ks.select(ctx.client.db);
    if aborted {
        unwatch_all(ctx);
        ctx.out.null_array();
        return;
    }
    ctx.out.array(queued.len());
    {
        let mut sub = Ctx {
            out: &mut *ctx.out,
            client: &mut *ctx.client,
            server,
            ks: &mut *ctx.ks,
            in_exec: true,
            block: None,
        };
        for (cmd, args) in &queued {
            run_in_exec(&mut sub, cmd, args);
        }
    }
    unwatch_all(ctx);
}

fn watch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if ctx.client.multi.is_some() {
        ctx.err("ERR WATCH inside MULTI is not allowed");
        return;
    }
    for k in &args[1..] {
        let db = ctx.client.db;
        if ctx
            .client
            .watched
            .iter()
            .any(|((d, w), _)| *d == db && w == k)
        {
            continue;
        }
        let key = (db, owned(k));
        let live = ctx.ks.exists(&key.1);
        ctx.server.watches.watch(&key, &ctx.client.watch_dirty);
        ctx.client.watched.push((key, live));
    }
    ctx.out.ok();
}

fn unwatch(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    unwatch_all(ctx);
    ctx.out.ok();
}

/// Forgets every watched key of the client and clears its dirty flag.
pub fn unwatch_all(ctx: &mut Ctx<'_, '_>) {
    unwatch_client(ctx.server, ctx.client);
}

pub fn unwatch_client(server: &Shared, client: &mut ClientState) {
    for (k, _) in client.watched.drain(..) {
        server.watches.unwatch(&k, &client.watch_dirty);
    }
    client.watch_dirty.store(false, Ordering::Release);
}

/// Redis's execCommandAbort: an EXEC rejected before it runs (wrong arity,
/// for one) discards the transaction, and its error says so.
pub fn abort_exec(server: &Shared, client: &mut ClientState, error: &str) -> String {
    client.multi = None;
    client.multi_dirty = false;
    unwatch_client(server, client);
    let error = error.strip_prefix("ERR ").unwrap_or(error);
    format!("EXECABORT Transaction discarded because of: {error}")
}
