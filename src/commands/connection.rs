//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.

use bytes::Bytes;

use super::flags::*;
use super::{Command, Ctx, KeySpec};

pub static COMMANDS: &[Command] = &[
    Command::new(
        "ping",
        -1,
        FAST | PUBSUB_CTX,
        KeySpec::None,
        ping,
        "connection",
    ),
    Command::new("echo", 2, FAST, KeySpec::None, echo, "connection"),
    Command::new(
        "quit",
        -1,
        NO_AUTH | FAST | NO_MULTI | PUBSUB_CTX | LOADING | STALE,
        KeySpec::None,
        quit,
        "connection",
    ),
];

fn ping(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 2 {
        ctx.err("ERR wrong number of arguments for 'ping' command");
        return;
    }
    if ctx.client.in_pubsub_context() {
        ctx.out.array(2);
        ctx.out.bulk(b"pong");
        ctx.out.bulk(args.get(1).map(|a| &a[..]).unwrap_or(b""));
        return;
    }
    match args.get(1) {
        Some(msg) => ctx.out.bulk(msg),
        None => ctx.out.simple("PONG"),
    }
}

fn echo(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ctx.out.bulk(&args[1]);
}

fn quit(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.ok();
    ctx.client.close_after_reply = true;
}
