//! Pub/Sub commands: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, PUBSUB CHANNELS/NUMSUB/NUMPAT/SHARDCHANNELS/SHARDNUMSUB, and
//! sharded Pub/Sub (SSUBSCRIBE, SUNSUBSCRIBE, SPUBLISH) as Redis runs it
//! outside cluster mode: shard channels are a namespace of their own.

use bytes::Bytes;

use super::flags::*;
use super::util::owned;
use super::{Command, Ctx, KeySpec};
use crate::state::pubsub::Subscriber;

pub static COMMANDS: &[Command] = &[
    Command::new(
        "subscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        subscribe,
        "pubsub",
    ),
    Command::new(
        "unsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        unsubscribe,
        "pubsub",
    ),
    Command::new(
        "psubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        psubscribe,
        "pubsub",
    ),
    Command::new(
        "punsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        punsubscribe,
        "pubsub",
    ),
    Command::new(
        "publish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        KeySpec::None,
        publish,
        "pubsub",
    ),
    Command::new(
        "ssubscribe",
        -2,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        ssubscribe,
        "pubsub",
    ),
    Command::new(
        "sunsubscribe",
        -1,
        PUBSUB | NOSCRIPT | LOADING | STALE | PUBSUB_CTX,
        KeySpec::None,
        sunsubscribe,
        "pubsub",
    ),
    Command::new(
        "spublish",
        3,
        PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE,
        KeySpec::None,
        spublish,
        "pubsub",
    ),
    Command::container("pubsub", "pubsub", PUBSUB_SUBCOMMANDS),
];

static PUBSUB_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "channels",
        -2,
        PUBSUB | LOADING | STALE,
        KeySpec::None,
        pubsub_channels,
        "pubsub",
    ),
    Command::new(
        "numsub",
        -2,
        PUBSUB | LOADING | STALE,
        KeySpec::None,
        pubsub_numsub,
        "pubsub",
    ),
    Command::new(
        "numpat",
        2,
        PUBSUB | LOADING | STALE,
        KeySpec::None,
        pubsub_numpat,
        "pubsub",
    ),
    Command::new(
        "shardchannels",
        -2,
        PUBSUB | LOADING | STALE,
        KeySpec::None,
        pubsub_shardchannels,
        "pubsub",
    ),
    Command::new(
        "shardnumsub",
        -2,
        PUBSUB | LOADING | STALE,
        KeySpec::None,
        pubsub_shardnumsub,
        "pubsub",
    ),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        pubsub_help,
        "pubsub",
    ),
];

fn subscriber(ctx: &mut Ctx<'_, '_>) -> std::sync::Arc<Subscriber> {
    if ctx.client.subscriber.is_none() {
        let (s, rx) = Subscriber::new(ctx.client.info.clone());
        ctx.client.subscriber = Some(s);
        ctx.client.pubsub_rx = Some(rx);
    }
    ctx.client.subscriber.clone().unwrap()
}

fn sync_counts(ctx: &mut Ctx<'_, '_>) {
    let c = &mut *ctx.client;
    c.subscriptions = c.channels.len() + c.patterns.len() + c.shard_channels.len();
    let mut m = c.info.meta.lock();
    m.sub = c.channels.len();
    m.psub = c.patterns.len();
    m.ssub = c.shard_channels.len();
}

fn confirm(ctx: &mut Ctx<'_, '_>, kind: &[u8], name: Option<&[u8]>) {
    // As Redis: a shard confirmation counts shard channels, the others
    // channels and patterns.
    let count = if kind == b"ssubscribe" || kind == b"sunsubscribe" {
        ctx.client.shard_channels.len()
    } else {
        ctx.client.channels.len() + ctx.client.patterns.len()
    };
    // Confirmations are pushes: they reach the client even under CLIENT REPLY OFF/SKIP.
    let mut push = crate::protocol::Reply::new(ctx.client.resp3);
    push.push(3);
    push.bulk(kind);
    match name {
        Some(n) => push.bulk(n),
        None => push.null(),
    }
    push.int(count as i64);
    if ctx.client.replies_suppressed() {
        ctx.client.pending_push.extend_from_slice(&push.buf);
    } else {
        ctx.out.raw(&push.buf);
    }
}

fn subscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if ctx.in_exec {
        ctx.err("ERR SUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    let sub = subscriber(ctx);
    for ch in &args[1..] {
        if !ctx.client.channels.contains(ch) {
            let ch = owned(ch);
            ctx.server.pubsub.subscribe(&ch, &sub);
            ctx.client.channels.push(ch);
        }
        sync_counts(ctx);
        confirm(ctx, b"subscribe", Some(ch));
    }
}

fn psubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if ctx.in_exec {
        ctx.err("ERR PSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    let sub = subscriber(ctx);
    for p in &args[1..] {
        if !ctx.client.patterns.contains(p) {
            let p = owned(p);
            ctx.server.pubsub.psubscribe(&p, &sub);
            ctx.client.patterns.push(p);
        }
        sync_counts(ctx);
        confirm(ctx, b"psubscribe", Some(p));
    }
}

fn unsubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let targets: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.client.channels.clone()
    };
    if targets.is_empty() {
        confirm(ctx, b"unsubscribe", None);
        return;
    }
    for ch in targets {
        if let Some(pos) = ctx.client.channels.iter().position(|c| *c == ch) {
            ctx.client.channels.remove(pos);
            ctx.server.pubsub.unsubscribe(&ch, ctx.client.id);
        }
        sync_counts(ctx);
        confirm(ctx, b"unsubscribe", Some(&ch));
    }
}

fn punsubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let targets: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.client.patterns.clone()
    };
    if targets.is_empty() {
        confirm(ctx, b"punsubscribe", None);
        return;
    }
    for p in targets {
        if let Some(pos) = ctx.client.patterns.iter().position(|c| *c == p) {
            ctx.client.patterns.remove(pos);
            ctx.server.pubsub.punsubscribe(&p, ctx.client.id);
        }
        sync_counts(ctx);
        confirm(ctx, b"punsubscribe", Some(&p));
    }
}

fn ssubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if ctx.in_exec {
        ctx.err("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client");
        return;
    }
    let sub = subscriber(ctx);
    for ch in &args[1..] {
        if !ctx.client.shard_channels.contains(ch) {
            let ch = owned(ch);
            ctx.server.pubsub.ssubscribe(&ch, &sub);
            ctx.client.shard_channels.push(ch);
        }
        sync_counts(ctx);
        confirm(ctx, b"ssubscribe", Some(ch));
    }
}

fn sunsubscribe(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let targets: Vec<Bytes> = if args.len() > 1 {
        args[1..].to_vec()
    } else {
        ctx.client.shard_channels.clone()
    };
    if targets.is_empty() {
        confirm(ctx, b"sunsubscribe", None);
        return;
    }
    for ch in targets {
        if let Some(pos) = ctx.client.shard_channels.iter().position(|c| *c == ch) {
            ctx.client.shard_channels.remove(pos);
            ctx.server.pubsub.sunsubscribe(&ch, ctx.client.id);
        }
        sync_counts(ctx);
        confirm(ctx, b"sunsubscribe", Some(&ch));
    }
}

fn spublish(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = ctx.server.pubsub.spublish(&args[1], &args[2]);
    // In cluster mode the message travels the replication stream to the
    // other nodes, as PUBLISH's does.
    ctx.ks.log_only(crate::engine::Mutation::Publish {
        channel: super::util::owned(&args[1]),
        payload: super::util::owned(&args[2]),
        shard: true,
    });
    ctx.out.int(n as i64);
}

fn pubsub_shardchannels(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 3 {
        ctx.err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try PUBSUB HELP.",
            String::from_utf8_lossy(&args[1])
        ));
        return;
    }
    let list = ctx
        .server
        .pubsub
        .shard_channels(args.get(2).map(|a| &a[..]));
    ctx.out.array(list.len());
    for c in list {
        ctx.out.bulk(&c);
    }
}

fn pubsub_shardnumsub(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ctx.out.array((args.len() - 2) * 2);
    for ch in &args[2..] {
        ctx.out.bulk(ch);
        ctx.out.int(ctx.server.pubsub.shard_numsub(ch) as i64);
    }
}

/// Drops every subscription of the client (RESET, disconnect), and its MONITOR.
pub fn drop_all(ctx_server: &crate::commands::Shared, client: &mut crate::commands::ClientState) {
    for ch in client.shard_channels.drain(..) {
        ctx_server.pubsub.sunsubscribe(&ch, client.id);
    }
    if client.monitor {
        client.monitor = false;
        ctx_server.monitors.remove(client.id);
        client.info.meta.lock().monitor = false;
    }
    for ch in client.channels.drain(..) {
        ctx_server.pubsub.unsubscribe(&ch, client.id);
    }
    for p in client.patterns.drain(..) {
        ctx_server.pubsub.punsubscribe(&p, client.id);
    }
    client.subscriptions = 0;
    let mut m = client.info.meta.lock();
    m.sub = 0;
    m.psub = 0;
    m.ssub = 0;
}

fn publish(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = ctx.server.pubsub.publish(&args[1], &args[2]);
    // In cluster mode the message travels the replication stream to the other nodes.
    ctx.ks.log_only(crate::engine::Mutation::Publish {
        channel: super::util::owned(&args[1]),
        payload: super::util::owned(&args[2]),
        shard: false,
    });
    ctx.out.int(n as i64);
}

fn pubsub_channels(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 3 {
        ctx.err("ERR wrong number of arguments for 'pubsub|channels' command");
        return;
    }
    let list = ctx.server.pubsub.channels(args.get(2).map(|a| &a[..]));
    ctx.out.array(list.len());
    for c in list {
        ctx.out.bulk(&c);
    }
}

fn pubsub_numsub(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    ctx.out.map(args.len() - 2);
    for ch in &args[2..] {
        ctx.out.bulk(ch);
        ctx.out.int(ctx.server.pubsub.numsub(ch) as i64);
    }
}

fn pubsub_numpat(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.int(ctx.server.pubsub.numpat() as i64);
}

fn pubsub_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let lines = [
        "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CHANNELS [<pattern>]",
        "    Return the currently active channels matching a <pattern> (default: '*').",
        "NUMPAT",
        "    Return number of subscriptions to patterns.",
        "NUMSUB [<channel> ...]",
        "    Return the number of subscribers for the specified channels, excluding",
        "    pattern subscriptions(default: no channels).",
        "SHARDCHANNELS [<pattern>]",
        "    Return the currently active shard level channels matching a <pattern> (default: '*').",
        "SHARDNUMSUB [<shardchannel> ...]",
        "    Return the number of subscribers for the specified shard level channel(s)",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}
