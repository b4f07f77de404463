//! Connection commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT.

use bytes::Bytes;

use super::flags::*;
use super::transactions::unwatch_all;
use super::util::{is, parse_i64, NOT_INT, SYNTAX};
use super::{Command, Ctx, KeySpec};
use crate::state::ClientInfo;

pub const REDIS_VERSION: &str = "7.0.15";

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
        NO_AUTH | FAST | MULTI_CTRL | PUBSUB_CTX | LOADING | STALE | ALLOW_BUSY,
        KeySpec::None,
        quit,
        "connection",
    ),
    Command::new(
        "hello",
        -1,
        NO_AUTH | FAST | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        KeySpec::None,
        hello,
        "connection",
    ),
    Command::new(
        "auth",
        -2,
        NO_AUTH | FAST | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        KeySpec::None,
        auth,
        "connection",
    ),
    Command::new(
        "reset",
        1,
        NO_AUTH | FAST | MULTI_CTRL | PUBSUB_CTX | NOSCRIPT | LOADING | STALE | ALLOW_BUSY,
        KeySpec::None,
        reset,
        "connection",
    ),
    Command::container("client", "connection", CLIENT_SUBCOMMANDS),
];

static CLIENT_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "id",
        2,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_id,
        "connection",
    ),
    Command::new(
        "setname",
        3,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_setname,
        "connection",
    ),
    Command::new(
        "getname",
        2,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_getname,
        "connection",
    ),
    Command::new(
        "list",
        -2,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_list,
        "connection",
    ),
    Command::new(
        "info",
        2,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_info,
        "connection",
    ),
    Command::new(
        "kill",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_kill,
        "connection",
    ),
    Command::new(
        "no-evict",
        3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_no_evict,
        "connection",
    ),
    Command::new(
        "no-touch",
        3,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_no_touch,
        "connection",
    ),
    Command::new(
        "setinfo",
        4,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_setinfo,
        "connection",
    ),
    Command::new(
        "unblock",
        -3,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_unblock,
        "connection",
    ),
    Command::new(
        "reply",
        3,
        NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        client_reply,
        "connection",
    ),
    super::introspection::CLIENT_PAUSE,
    super::introspection::CLIENT_UNPAUSE,
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        client_help,
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

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Whether `user` logs in, given the password check's `verdict`
/// (`RuntimeConfig::check_password`; None = no password set, anything
/// goes). Only the "default" user exists.
fn credentials_ok(user: &[u8], verdict: Option<bool>) -> bool {
    user == b"default" && verdict != Some(false)
}

fn auth(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 3 {
        ctx.err(SYNTAX);
        return;
    }
    let (user, pass): (&[u8], &[u8]) = if args.len() == 2 {
        (b"default", &args[1])
    } else {
        (&args[1], &args[2])
    };
    // One read of the password decides: set or not, and whether it matches.
    let verdict = ctx.server.config.check_password(pass);
    if args.len() == 2 && verdict.is_none() {
        ctx.err("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
        return;
    }
    if credentials_ok(user, verdict) {
        ctx.client.authenticated = true;
        ctx.out.ok();
    } else {
        ctx.err(WRONGPASS);
    }
}

fn hello(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut proto = None;
    let mut i = 1;
    if args.len() > 1 {
        match parse_i64(&args[1]) {
            Some(v) => proto = Some(v),
            None => {
                ctx.err("ERR Protocol version is not an integer or out of range");
                return;
            }
        }
        i = 2;
        if !(2..=3).contains(&proto.unwrap()) {
            ctx.err("NOPROTO unsupported protocol version");
            return;
        }
    }
    let mut setname = None;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "auth") && more >= 2 {
            let verdict = ctx.server.config.check_password(&args[i + 2]);
            if !credentials_ok(&args[i + 1], verdict) {
                ctx.err(WRONGPASS);
                return;
            }
            ctx.client.authenticated = true;
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            setname = Some(args[i + 1].clone());
            i += 2;
        } else {
            ctx.err(&format!(
                "ERR Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            ));
            return;
        }
    }
    if ctx.server.requirepass_set() && !ctx.client.authenticated {
        ctx.err("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(name) = setname {
        if !valid_name(&name) {
            ctx.err(BAD_NAME);
            return;
        }
        set_name(ctx, &name);
    }
    if let Some(p) = proto {
        ctx.client.resp3 = p == 3;
        ctx.out.resp3 = p == 3;
        ctx.client.info.meta.lock().resp = p as u8;
    }
    ctx.out.map(7);
    ctx.out.bulk(b"server");
    ctx.out.bulk(b"redis");
    ctx.out.bulk(b"version");
    ctx.out.bulk(REDIS_VERSION.as_bytes());
    ctx.out.bulk(b"proto");
    ctx.out.int(if ctx.client.resp3 { 3 } else { 2 });
    ctx.out.bulk(b"id");
    ctx.out.int(ctx.client.id as i64);
    ctx.out.bulk(b"mode");
    ctx.out.bulk(b"standalone");
    ctx.out.bulk(b"role");
    ctx.out.bulk(b"master");
    ctx.out.bulk(b"modules");
    ctx.out.array(0);
}

fn reset(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.client.multi = None;
    ctx.client.multi_dirty = false;
    unwatch_all(ctx);
    super::pubsub_reset(ctx);
    ctx.client.resp3 = false;
    ctx.out.resp3 = false;
    ctx.client.authenticated = !ctx.server.requirepass_set();
    {
        let mut m = ctx.client.info.meta.lock();
        m.name = None;
        m.resp = 2;
        m.no_evict = false;
        m.no_touch = false;
        m.db = 0;
    }
    ctx.client.no_touch = false;
    ctx.client.db = 0;
    ctx.out.simple("RESET");
}

const BAD_NAME: &str = "ERR Client names cannot contain spaces, newlines or special characters.";

fn valid_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}

fn set_name(ctx: &mut Ctx<'_, '_>, name: &[u8]) {
    let name = if name.is_empty() {
        None
    } else {
        Some(String::from_utf8_lossy(name).into_owned())
    };
    ctx.client.info.meta.lock().name = name;
}

fn client_id(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.int(ctx.client.id as i64);
}

fn client_setname(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if !valid_name(&args[2]) {
        ctx.err(BAD_NAME);
        return;
    }
    set_name(ctx, &args[2]);
    ctx.out.ok();
}

fn client_getname(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let name = ctx.client.info.meta.lock().name.clone();
    match name {
        Some(n) => ctx.out.bulk(n.as_bytes()),
        None => ctx.out.null(),
    }
}

fn sync_meta(ctx: &mut Ctx<'_, '_>) {
    let mut m = ctx.client.info.meta.lock();
    m.last_command = ctx.client.last_command;
    m.multi = ctx.client.multi.is_some();
}

fn client_list(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    sync_meta(ctx);
    let mut ids: Option<Vec<u64>> = None;
    let mut kind = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "type") && i + 1 < args.len() {
            let t = &args[i + 1];
            let Some(k) = ClientType::parse(t) else {
                ctx.err(&format!(
                    "ERR Unknown client type '{}'",
                    String::from_utf8_lossy(t)
                ));
                return;
            };
            kind = Some(k);
            i += 2;
        } else if is(&args[i], "id") && i + 1 < args.len() {
            let mut v = Vec::new();
            for a in &args[i + 1..] {
                match parse_i64(a).filter(|&n| n > 0) {
                    Some(n) => v.push(n as u64),
                    None => {
                        ctx.err("ERR Invalid client ID");
                        return;
                    }
                }
            }
            ids = Some(v);
            i = args.len();
        } else {
            ctx.err(SYNTAX);
            return;
        }
    }
    let mut text = String::new();
    for c in ctx.server.clients.all() {
        if ids.as_ref().is_some_and(|v| !v.contains(&c.id))
            || kind.is_some_and(|k| k != ClientType::of(&c))
        {
            continue;
        }
        text.push_str(&c.describe());
        text.push('\n');
    }
    ctx.out.verbatim("txt", text.as_bytes());
}

fn client_info(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    sync_meta(ctx);
    let mut text = ctx.client.info.describe();
    text.push('\n');
    ctx.out.verbatim("txt", text.as_bytes());
}

fn client_kill(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    // Old form: CLIENT KILL addr:port.
    if args.len() == 3 {
        let addr = String::from_utf8_lossy(&args[2]).into_owned();
        match ctx
            .server
            .clients
            .all()
            .into_iter()
            .find(|c| c.addr.to_string() == addr)
        {
            Some(c) => {
                if c.id == ctx.client.id {
                    ctx.client.close_after_reply = true;
                } else {
                    c.kill();
                }
                ctx.out.ok();
            }
            None => ctx.err("ERR No such client"),
        }
        return;
    }
    let Some(filter) = parse_kill_filter(ctx, &args[2..]) else {
        return;
    };
    let mut killed = 0;
    for c in ctx.server.clients.all() {
        if !filter.matches(&c) {
            continue;
        }
        if c.id == ctx.client.id {
            if filter.skipme {
                continue;
            }
            ctx.client.close_after_reply = true;
        } else {
            c.kill();
        }
        killed += 1;
    }
    ctx.out.int(killed);
}

/// Client types as CLIENT KILL TYPE and CLIENT LIST TYPE name them.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientType {
    Normal,
    Replica,
    PubSub,
    Master,
}

impl ClientType {
    fn parse(name: &[u8]) -> Option<ClientType> {
        if is(name, "normal") {
            Some(ClientType::Normal)
        } else if is(name, "slave") || is(name, "replica") {
            Some(ClientType::Replica)
        } else if is(name, "pubsub") {
            Some(ClientType::PubSub)
        } else if is(name, "master") {
            Some(ClientType::Master)
        } else {
            None
        }
    }

    /// Redis's getClientType: a client subscribed to any channel or pattern
    /// is `pubsub`; every other client here is `normal` (replication runs
    /// over gRPC, not over client connections).
    fn of(c: &ClientInfo) -> ClientType {
        let m = c.meta.lock();
        if m.sub + m.psub > 0 {
            ClientType::PubSub
        } else {
            ClientType::Normal
        }
    }
}

/// CLIENT KILL's filters (Redis 7.0: ID, TYPE, USER, ADDR, LADDR, SKIPME);
/// every given filter must match.
struct KillFilter {
    id: Option<u64>,
    kind: Option<ClientType>,
    addr: Option<String>,
    laddr: Option<String>,
    skipme: bool,
}

impl KillFilter {
    fn matches(&self, c: &ClientInfo) -> bool {
        self.id.is_none_or(|x| x == c.id)
            && self.addr.as_ref().is_none_or(|a| *a == c.addr.to_string())
            && self
                .laddr
                .as_ref()
                .is_none_or(|a| *a == c.laddr.to_string())
            && self.kind.is_none_or(|t| t == ClientType::of(c))
    }
}

/// Parses `<filter> <value> ...` pairs with Redis's errors (a reply is
/// written and None returned on the first bad one).
fn parse_kill_filter(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> Option<KillFilter> {
    let mut f = KillFilter {
        id: None,
        kind: None,
        addr: None,
        laddr: None,
        skipme: true,
    };
    let mut i = 0;
    while i < args.len() {
        let (name, Some(v)) = (&args[i], args.get(i + 1)) else {
            ctx.err(SYNTAX);
            return None;
        };
        if is(name, "id") {
            match parse_i64(v).filter(|&n| n > 0) {
                Some(n) => f.id = Some(n as u64),
                None => {
                    ctx.err("ERR client-id should be greater than 0");
                    return None;
                }
            }
        } else if is(name, "type") {
            match ClientType::parse(v) {
                Some(t) => f.kind = Some(t),
                None => {
                    ctx.err(&format!(
                        "ERR Unknown client type '{}'",
                        String::from_utf8_lossy(v)
                    ));
                    return None;
                }
            }
        } else if is(name, "user") {
            // Only the default user exists, and every client is it.
            if v.as_ref() != b"default" {
                ctx.err(&format!(
                    "ERR No such user '{}'",
                    String::from_utf8_lossy(v)
                ));
                return None;
            }
        } else if is(name, "addr") {
            f.addr = Some(String::from_utf8_lossy(v).into_owned());
        } else if is(name, "laddr") {
            f.laddr = Some(String::from_utf8_lossy(v).into_owned());
        } else if is(name, "skipme") {
            if is(v, "yes") {
                f.skipme = true;
            } else if is(v, "no") {
                f.skipme = false;
            } else {
                ctx.err(SYNTAX);
                return None;
            }
        } else {
            ctx.err(SYNTAX);
            return None;
        }
        i += 2;
    }
    Some(f)
}

fn on_off(ctx: &mut Ctx<'_, '_>, arg: &[u8]) -> Option<bool> {
    if is(arg, "on") {
        Some(true)
    } else if is(arg, "off") {
        Some(false)
    } else {
        ctx.err(SYNTAX);
        None
    }
}

fn client_no_evict(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if let Some(v) = on_off(ctx, &args[2]) {
        ctx.client.info.meta.lock().no_evict = v;
        ctx.out.ok();
    }
}

fn client_no_touch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if let Some(v) = on_off(ctx, &args[2]) {
        ctx.client.info.meta.lock().no_touch = v;
        ctx.client.no_touch = v;
        ctx.out.ok();
    }
}

fn client_setinfo(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let v = String::from_utf8_lossy(&args[3]).into_owned();
    if is(&args[2], "lib-name") {
        ctx.client.info.meta.lock().lib_name = Some(v);
    } else if is(&args[2], "lib-ver") {
        ctx.client.info.meta.lock().lib_ver = Some(v);
    } else {
        ctx.err(&format!(
            "ERR Unrecognized option '{}'",
            String::from_utf8_lossy(&args[2])
        ));
        return;
    }
    ctx.out.ok();
}

fn client_unblock(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(id) = parse_i64(&args[2]) else {
        ctx.err(NOT_INT);
        return;
    };
    let error = match args.get(3) {
        None => false,
        Some(a) if is(a, "timeout") => false,
        Some(a) if is(a, "error") => true,
        Some(_) => {
            ctx.err("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
            return;
        }
    };
    match ctx.server.clients.get(id as u64) {
        Some(c) if c.meta.lock().blocked => {
            *c.unblock.lock() = Some(error);
            c.unblock_notify.notify_one();
            ctx.out.int(1);
        }
        _ => ctx.out.int(0),
    }
}

fn client_reply(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if is(&args[2], "on") {
        // As Redis: ON also ends a SKIP, and its own OK is sent.
        ctx.client.reply_off = false;
        ctx.client.reply_skip = false;
        ctx.client.reply_skip_set = false;
        ctx.out.ok();
    } else if is(&args[2], "off") {
        ctx.client.reply_off = true;
    } else if is(&args[2], "skip") {
        if !ctx.client.reply_off {
            ctx.client.reply_skip_set = true;
        }
    } else {
        ctx.err(SYNTAX);
    }
}

fn client_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "GETNAME",
        "    Return the name of the current connection.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "LIST [TYPE <normal|master|replica|pubsub>] [ID <id> [<id> ...]]",
        "    Return information about client connections.",
        "KILL <ip:port> | <option> <value> [<option> <value> ...]",
        "    Kill connections (ID, ADDR, LADDR, SKIPME).",
        "UNBLOCK <clientid> [TIMEOUT|ERROR]",
        "    Unblock the specified blocked client.",
        "NO-EVICT (ON|OFF)",
        "NO-TOUCH (ON|OFF)",
        "SETINFO <LIB-NAME|LIB-VER> <value>",
        "HELP",
        "    Print this help.",
    ];
    ctx.out.array(lines.len());
    for l in lines {
        ctx.out.simple(l);
    }
}
