//! The command table and dispatcher: turns a request (an array of arguments)
//! into a reply, applying Redis's rules in Redis's order: unknown command,
//! arity, authentication, Pub/Sub context, MULTI queueing, OOM, then the
//! command itself with the shards of its keys locked.
//!
//! One file per command family; each exports `COMMANDS`, a static slice of
//! [`Command`]s. Handlers parse their arguments first (syntax errors are
//! replies, nothing is touched), then read the keyspace and apply mutations.

mod bitmaps;
mod client;
mod connection;
mod databases;
mod docs;
mod dump;
mod functions;
mod geo;
mod hashes;
mod hyperloglog;
mod info;
pub(crate) mod introspection;
mod keys;
mod lists;
mod lolwut;
mod pubsub;
mod replication;
pub mod scripting;
pub(crate) mod server_cmds;
mod sets;
mod sort;
pub mod stats;
mod streams;
mod strings;
mod transactions;
pub mod util;
mod zsets;

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};

use bytes::Bytes;

use crate::config::ProtectedAction;
use crate::engine::Keys;
use crate::protocol::Reply;
pub use crate::state::blocking::BlockRequest;
pub use client::{ClientState, ScriptCall};

/// The state every connection shares, with the router this layer defines.
pub type Shared = crate::state::Shared<dyn Router>;

/// Command flags (a subset of Redis's, used for dispatch and COMMAND INFO).
pub mod flags {
    pub const WRITE: u32 = 1;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const FAST: u32 = 1 << 9;
    /// Allowed before authentication.
    pub const NO_AUTH: u32 = 1 << 10;
    /// Executed immediately even inside MULTI (EXEC, DISCARD, MULTI, WATCH, QUIT, RESET).
    pub const MULTI_CTRL: u32 = 1 << 11;
    /// Refused inside MULTI (Redis's "no-multi": SHUTDOWN, SAVE, ...); flags the transaction.
    pub const DENY_MULTI: u32 = 1 << 15;
    /// Allowed in RESP2 Pub/Sub context.
    pub const PUBSUB_CTX: u32 = 1 << 12;
    pub const RANDOM: u32 = 1 << 13;
    pub const SORT_FOR_SCRIPT: u32 = 1 << 14;
    /// Served while a script runs (Redis's "allow_busy"): AUTH, HELLO,
    /// MULTI, DISCARD, WATCH, UNWATCH, QUIT, RESET, SHUTDOWN, SCRIPT KILL,
    /// FUNCTION KILL, FUNCTION STATS.
    pub const ALLOW_BUSY: u32 = 1 << 16;
    /// Runs a script or a function (EVAL, FCALL and their forms): memory is
    /// checked (and evicted) before it, as Redis does for every command.
    pub const SCRIPT: u32 = 1 << 17;
    /// May replicate without being a write (Redis's "may_replicate").
    pub const MAY_REPLICATE: u32 = 1 << 18;
    /// Not a write, but changes state every node must share (SCRIPT LOAD,
    /// SCRIPT FLUSH): a cluster follower forwards it to the master, whose
    /// stream brings the change back. Not shown by COMMAND INFO.
    pub const REPLICATED: u32 = 1 << 19;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (DENY_MULTI, "no_multi"),
        (ALLOW_BUSY, "allow_busy"),
        // MAY_REPLICATE is not listed: Redis hides it on purpose.
    ];
}

/// The positions of a command's keys in its arguments (inline for up to
/// four: no allocation on the command path).
pub type KeyPositions = smallvec::SmallVec<[usize; 4]>;

/// Where a command's keys are, so the dispatcher can lock their shards.
#[derive(Clone, Copy)]
pub enum KeySpec {
    None,
    /// Keys at `first`, `first+step`, ... up to `last` (negative: from the end).
    Range {
        first: i32,
        last: i32,
        step: i32,
    },
    /// Key positions computed from the arguments (numkeys-style commands);
    /// must be lenient with bad input (the handler reports the error).
    Custom(fn(&[Bytes]) -> Vec<usize>),
    /// Every shard (whole-keyspace commands).
    All,
    /// Every shard locked, with the declared keys (COMMAND GETKEYS) computed
    /// from the arguments: for commands that also read keys their arguments
    /// do not name (SORT's BY/GET patterns).
    AllShards(fn(&[Bytes]) -> Vec<usize>),
}

/// The key positions most commands share.
pub const KEY1: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
};
/// The keys at arguments 1 and 2 (RENAME, LMOVE, SMOVE, ...).
pub const KEYS_1_2: KeySpec = KeySpec::Range {
    first: 1,
    last: 2,
    step: 1,
};
/// The key at argument 2 (after a subcommand: MEMORY USAGE, OBJECT ...).
pub const KEY2: KeySpec = KeySpec::Range {
    first: 2,
    last: 2,
    step: 1,
};
/// Every argument is a key (DEL, MGET, SINTER, ...).
pub const ALL_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
};
/// Every argument but the last, which is a timeout (BLPOP, BZPOPMIN, ...).
pub const KEYS_BUT_LAST: KeySpec = KeySpec::Range {
    first: 1,
    last: -2,
    step: 1,
};

pub type Handler = fn(&mut Ctx<'_, '_>, &[Bytes]);

pub struct Command {
    /// Lower-case name (for subcommands, the subcommand alone).
    pub name: &'static str,
    /// Redis arity: positive = exact, negative = at least |arity|.
    pub arity: i32,
    pub flags: u32,
    pub keys: KeySpec,
    pub handler: Handler,
    /// Command group, as COMMAND DOCS reports it.
    pub group: &'static str,
    /// Subcommands (CONFIG GET, ...): dispatch goes to them.
    pub subcommands: &'static [Command],
    /// COMMAND INFO's first/last/step for keys computed from the arguments
    /// (Redis derives them from its leading key specs); (0, 0, 0) unless set.
    pub legacy_keys: (i32, i32, i32),
}

impl Command {
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: u32,
        keys: KeySpec,
        handler: Handler,
        group: &'static str,
    ) -> Command {
        Command {
            name,
            arity,
            flags,
            keys,
            handler,
            group,
            subcommands: &[],
            legacy_keys: (0, 0, 0),
        }
    }

    /// For computed keys whose first is always argument 1 (STORE forms,
    /// SORT): COMMAND INFO reports 1 1 1 with `movablekeys`, as Redis does.
    pub const fn first_key_fixed(mut self) -> Command {
        self.legacy_keys = (1, 1, 1);
        self
    }

    /// The first/last/step COMMAND INFO reports for computed keys whose
    /// legacy range Redis gives as these (MIGRATE: 3 3 1).
    pub const fn legacy_range(mut self, first: i32, last: i32, step: i32) -> Command {
        self.legacy_keys = (first, last, step);
        self
    }

    pub const fn container(
        name: &'static str,
        group: &'static str,
        subcommands: &'static [Command],
    ) -> Command {
        Command {
            name,
            arity: -2,
            flags: 0,
            keys: KeySpec::None,
            handler: no_handler,
            group,
            subcommands,
            legacy_keys: (0, 0, 0),
        }
    }

    pub fn has(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    /// Key argument positions for `args` (args[0] is the command name).
    pub fn key_positions(&self, args: &[Bytes]) -> KeyPositions {
        match self.keys {
            KeySpec::None | KeySpec::All => KeyPositions::new(),
            KeySpec::Range { first, last, step } => {
                let n = args.len() as i32;
                let last = if last < 0 { n + last } else { last.min(n - 1) };
                let mut v = KeyPositions::new();
                let mut i = first;
                while i <= last && i < n {
                    v.push(i as usize);
                    i += step.max(1);
                }
                v
            }
            KeySpec::Custom(f) | KeySpec::AllShards(f) => f(args).into(),
        }
    }

    /// The command's keys in `args`, to lock their shards.
    pub fn keys_in<'a>(&self, args: &'a [Bytes]) -> smallvec::SmallVec<[&'a Bytes; 4]> {
        match self.keys {
            // One key (most commands): no position list to build.
            KeySpec::Range { first, last, .. } if first == last && first > 0 => {
                match args.get(first as usize) {
                    Some(key) => smallvec::smallvec![key],
                    None => smallvec::SmallVec::new(),
                }
            }
            _ => self.key_positions(args).iter().map(|&i| &args[i]).collect(),
        }
    }
}

fn no_handler(_: &mut Ctx<'_, '_>, _: &[Bytes]) {}

/// What a handler sees.
pub struct Ctx<'a, 'k> {
    pub out: &'a mut Reply,
    pub client: &'a mut ClientState,
    pub server: &'a Arc<Shared>,
    pub ks: &'a mut Keys<'k>,
    /// True while running inside EXEC (blocking commands do not block).
    pub in_exec: bool,
    /// Set by a blocking command that found nothing to pop.
    pub block: Option<BlockRequest>,
}

impl Ctx<'_, '_> {
    pub fn err(&mut self, msg: &str) {
        self.out.error(msg);
    }
}

/// The whole command table, by lower-case name.
pub static TABLE: LazyLock<ahash::HashMap<&'static str, &'static Command>> = LazyLock::new(|| {
    let families: &[&'static [Command]] = &[
        strings::COMMANDS,
        bitmaps::COMMANDS,
        keys::COMMANDS,
        hashes::COMMANDS,
        sets::COMMANDS,
        lists::COMMANDS,
        zsets::COMMANDS,
        connection::COMMANDS,
        server_cmds::COMMANDS,
        transactions::COMMANDS,
        pubsub::COMMANDS,
        scripting::COMMANDS,
        functions::COMMANDS,
        replication::COMMANDS,
        sort::COMMANDS,
        dump::COMMANDS,
        databases::COMMANDS,
        introspection::COMMANDS,
        hyperloglog::COMMANDS,
        geo::COMMANDS,
        streams::COMMANDS,
        lolwut::COMMANDS,
    ];
    let mut t = ahash::HashMap::default();
    for fam in families {
        for c in fam.iter() {
            assert!(
                t.insert(c.name, c).is_none(),
                "duplicate command {}",
                c.name
            );
        }
    }
    t
});

/// Every command, by name.
pub(crate) fn sorted_commands() -> Vec<&'static Command> {
    let mut v: Vec<&'static Command> = TABLE.values().copied().collect();
    v.sort_by_key(|c| c.name);
    v
}

/// Every command and subcommand with its full name (`get`, `config|get`):
/// commands in name order, each followed by its subcommands (COMMAND LIST,
/// the INFO commandstats index).
pub(crate) fn all_full_names() -> Vec<(&'static Command, String)> {
    let mut v = Vec::new();
    for c in sorted_commands() {
        v.push((c, c.name.to_string()));
        for s in c.subcommands {
            v.push((s, format!("{}|{}", c.name, s.name)));
        }
    }
    v
}

/// The command table by (length, first letter), for [`lookup`]: each
/// bucket holds the few names that share both, so a lookup compares one or
/// two names instead of lower-casing and hashing the request's (it runs
/// for every request).
static BY_SHAPE: LazyLock<Vec<Vec<&'static Command>>> = LazyLock::new(|| {
    let mut buckets = vec![Vec::new(); SHAPES];
    for &c in TABLE.values() {
        buckets[shape(c.name.as_bytes())].push(c);
    }
    buckets
});

const SHAPES: usize = 16 * 32;

/// The bucket of a non-empty name: its length mod 16 and its first byte's
/// letter case folded away (any byte maps somewhere; only equal names match).
fn shape(name: &[u8]) -> usize {
    ((name.len() & 15) << 5) | ((name[0] | 0x20) & 31) as usize
}

/// Looks a command up by name, case-insensitively.
pub fn lookup(name: &[u8]) -> Option<&'static Command> {
    if name.is_empty() {
        return None;
    }
    BY_SHAPE[shape(name)]
        .iter()
        .copied()
        .find(|c| eq_lowercase(c.name.as_bytes(), name))
}

/// Whether `name` is `lower` (all lower case) in any letter case.
#[inline]
fn eq_lowercase(lower: &[u8], name: &[u8]) -> bool {
    lower.len() == name.len()
        && lower
            .iter()
            .zip(name)
            .all(|(&l, &n)| l == n || (l.is_ascii_lowercase() && n | 0x20 == l))
}

pub(crate) fn lookup_sub(cmd: &'static Command, sub: &[u8]) -> Option<&'static Command> {
    cmd.subcommands
        .iter()
        .find(|c| c.name.as_bytes().eq_ignore_ascii_case(sub))
}

fn arity_ok(arity: i32, n: usize) -> bool {
    let n = n as i32;
    if arity > 0 {
        n == arity
    } else {
        n >= -arity
    }
}

pub fn unknown_command_error(args: &[Bytes]) -> String {
    // Like Redis: the name cut at 128 bytes, then arguments while the list is under 128 bytes.
    let name = String::from_utf8_lossy(&args[0][..args[0].len().min(128)]).into_owned();
    let mut list = String::new();
    for a in args[1..].iter() {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push_str(&format!(
            "'{}' ",
            String::from_utf8_lossy(&a[..a.len().min(room)])
        ));
    }
    format!("ERR unknown command '{name}', with args beginning with: {list}")
}

/// Resolves the command to run: the command itself or its subcommand, or an
/// error text. Also returns its full name for error texts (`get`,
/// `config|get`; borrowed for top-level commands, so the common path
/// allocates nothing).
pub fn resolve(args: &[Bytes]) -> Result<(&'static Command, Cow<'static, str>), String> {
    let Some(cmd) = lookup(&args[0]) else {
        return Err(unknown_command_error(args));
    };
    if cmd.subcommands.is_empty() {
        if !arity_ok(cmd.arity, args.len()) {
            return Err(format!(
                "ERR wrong number of arguments for '{}' command",
                cmd.name
            ));
        }
        return Ok((cmd, Cow::Borrowed(cmd.name)));
    }
    if args.len() < 2 {
        return Err(format!(
            "ERR wrong number of arguments for '{}' command",
            cmd.name
        ));
    }
    let Some(sub) = lookup_sub(cmd, &args[1]) else {
        let sub = String::from_utf8_lossy(&args[1]);
        let sub: String = sub.chars().take(128).collect();
        return Err(format!(
            "ERR unknown subcommand '{sub}'. Try {} HELP.",
            cmd.name.to_ascii_uppercase()
        ));
    };
    let full = format!("{}|{}", cmd.name, sub.name);
    if !arity_ok(sub.arity, args.len()) {
        return Err(format!(
            "ERR wrong number of arguments for '{full}' command"
        ));
    }
    Ok((sub, Cow::Owned(full)))
}

/// A reply produced off the command path (forwarded to another node or tier).
pub type DeferredReply = std::pin::Pin<Box<dyn std::future::Future<Output = Bytes> + Send>>;

/// Decides whether a command runs on the local engine or elsewhere (the
/// upstream tier, the cluster master). Installed once at startup; without one
/// every command runs locally.
pub trait Router: Send + Sync {
    /// Returns a deferred reply to take the command off the local path, or
    /// None to run it locally as usual.
    fn route(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply>;

    /// Called with the command's shards locked, right before a command that
    /// `route` left on the local path runs. Returning Some takes it off the
    /// local path after all (the tiered engine: a key is missing locally); the
    /// shards are unlocked before the reply is awaited.
    fn check_locked(
        &self,
        _server: &Arc<Shared>,
        _client: &ClientState,
        _ks: &mut Keys<'_>,
        _cmd: &'static Command,
        _args: &[Bytes],
    ) -> Option<DeferredReply> {
        None
    }

    /// A command jcache does not know: Some to pass it on (the tiered
    /// router asks the upstream), None for "unknown command". Only outside
    /// MULTI and once the client is authenticated.
    fn route_unknown(
        &self,
        _server: &Arc<Shared>,
        _client: &mut ClientState,
        _args: &[Bytes],
    ) -> Option<DeferredReply> {
        None
    }

    /// Whether consecutive commands of a pipeline may be in flight together
    /// (see [`execute_deferrable`] and `route_pipelined`).
    fn pipelines(&self) -> bool {
        false
    }

    /// Like `route`, for a command that would overlap with the commands
    /// before it in a pipeline (whose replies are still pending). Return Some
    /// only if the router itself guarantees that the upstream executes this
    /// request after every earlier one it returned from here for this client
    /// (the tiered router queues them per client and sends each batch as one
    /// pipeline; relying on the order in which the futures are first polled
    /// is not enough). None: the command waits for the replies before it and
    /// then goes through `execute` as usual.
    fn route_pipelined(
        &self,
        _server: &Arc<Shared>,
        _client: &mut ClientState,
        _cmd: &'static Command,
        _args: &[Bytes],
    ) -> Option<DeferredReply> {
        None
    }

    /// The client disconnected (release per-client upstream state).
    fn disconnect(&self, _client: &ClientState) {}

    /// The client's transaction and WATCHes ended without reaching the
    /// router (an EXEC rejected before it ran): release what the router
    /// keeps for them (the tier's WATCH connection).
    fn transaction_aborted(&self, _client: &ClientState) {}

    /// Appends the router's INFO sections; `want` says whether a section
    /// (lower-case name) was asked for.
    fn info(&self, _want: &dyn Fn(&str) -> bool, _out: &mut String) {}

    /// The `# Replication` section of INFO, when the router owns it (cluster mode).
    fn info_replication(&self) -> Option<String> {
        None
    }
}

/// What the connection must do after a command.
pub enum Flow {
    Continue,
    /// Await this reply (already encoded for the client) and append it.
    Defer(DeferredReply),
    /// Wait for a blocking pop to be served or to time out.
    Block(BlockRequest),
    /// Send what is buffered, then close.
    Close,
    /// A script holds the keyspace: run the request (given back) again once
    /// this resolves (the script ended, or ran long enough for `-BUSY`).
    Wait(Vec<Bytes>, WaitFuture),
}

/// What a request waits for before it is run again (see [`Flow::Wait`]).
pub type WaitFuture = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// How long a script runs before other clients get `-BUSY`.
pub(crate) fn busy_threshold(server: &Shared) -> std::time::Duration {
    std::time::Duration::from_millis(server.config.busy_reply_threshold.load(Ordering::Relaxed))
}

/// The request waits for the running script (see [`Flow::Wait`]).
fn wait_for_script(server: &Shared, args: Vec<Bytes>) -> Flow {
    Flow::Wait(
        args,
        Box::pin(server.scripting.wait(busy_threshold(server))),
    )
}

/// Pipelining forwarded commands: if the router takes this request off the
/// local path, returns its deferred reply (the command counts as executed);
/// otherwise returns None having done nothing at all, and the caller runs
/// [`execute`] once the replies in flight before it were written. Blocking
/// commands, EXEC and WATCH are never overlapped.
pub fn execute_deferrable(
    server: &Arc<Shared>,
    client: &mut ClientState,
    args: &[Bytes],
) -> Option<Overlap> {
    let router = server.router.get();
    // Without a router only scripts (EVAL*, FCALL*) overlap: a first letter
    // rules out the rest before the table lookup.
    if router.is_none() && !matches!(args[0].first(), Some(b'e' | b'E' | b'f' | b'F')) {
        return None;
    }
    // Top-level commands only (no allocation on this per-command path).
    let cmd = lookup(&args[0])?;
    if !cmd.subcommands.is_empty() || !arity_ok(cmd.arity, args.len()) {
        return None;
    }
    if (server.requirepass_set() && !client.authenticated && !cmd.has(flags::NO_AUTH))
        || (client.in_pubsub_context() && !cmd.has(flags::PUBSUB_CTX))
        || (client.multi.is_some() && !cmd.has(flags::MULTI_CTRL))
        || cmd.has(flags::BLOCKING)
        || cmd.has(flags::MULTI_CTRL)
    {
        return None;
    }
    let Some(router) = router else {
        return queue_script(server, client, cmd, args);
    };
    let reply = router.route_pipelined(server, client, cmd, args)?;
    stats::record(cmd, stats::Outcome::Routed);
    if server.monitors.active() && !cmd.has(flags::ADMIN) {
        introspection::feed_monitors(server, client, args);
    }
    server.stats.commands.add(1);
    client.last_command = cmd.name;
    Some(Overlap::Reply(reply))
}

/// What [`execute_deferrable`] did with a request it took.
pub enum Overlap {
    /// Its reply, to be awaited in request order.
    Reply(DeferredReply),
    /// Added to the client's batch of scripts ([`take_script_batch`] sends
    /// the batch and gives its replies).
    Batched,
}

/// Scripts of one pipeline are sent to the script thread together, up to
/// this many: one hand-off each way per batch instead of per script.
const SCRIPT_BATCH: usize = 32;

/// Sends the client's batch of pipelined scripts to the script thread; its
/// replies, in order, as one deferred reply. None if the batch is empty.
pub fn take_script_batch(server: &Arc<Shared>, client: &mut ClientState) -> Option<DeferredReply> {
    if client.script_batch.is_empty() {
        return None;
    }
    let batch = std::mem::take(&mut client.script_batch);
    Some(scripting::submit(server, client, batch))
}

/// A script command in a pipeline (no router): added to the client's batch
/// for the script thread, whose queue keeps the order; None if it must go
/// through [`execute`] (BUSY reply, or not a script).
fn queue_script(
    server: &Arc<Shared>,
    client: &mut ClientState,
    cmd: &'static Command,
    args: &[Bytes],
) -> Option<Overlap> {
    if !cmd.has(flags::SCRIPT)
        || introspection::must_wait(server, client, cmd, args)
        || (server.scripting.is_busy()
            && server
                .scripting
                .busy_error(busy_threshold(server))
                .is_some())
    {
        return None;
    }
    server.stats.commands.add(1);
    client.last_command = cmd.name;
    let oom_at_start = !server.db.ensure_memory();
    client.script_batch.push((cmd, args.to_vec(), oom_at_start));
    if client.script_batch.len() >= SCRIPT_BATCH {
        return take_script_batch(server, client).map(Overlap::Reply);
    }
    Some(Overlap::Batched)
}

/// A command not in the table, outside MULTI, from an authenticated client:
/// the router may pass it on (tiered mode: to the upstream).
fn route_unknown(
    server: &Arc<Shared>,
    client: &mut ClientState,
    args: &[Bytes],
) -> Option<DeferredReply> {
    let router = server.router.get()?;
    if client.multi.is_some()
        || lookup(&args[0]).is_some()
        || (server.requirepass_set() && !client.authenticated)
        || client.in_pubsub_context()
    {
        return None;
    }
    let reply = router.route_unknown(server, client, args)?;
    client.last_command = "";
    Some(reply)
}

/// Executes one request for a client, appending its reply to `out`.
pub fn execute(
    server: &Arc<Shared>,
    client: &mut ClientState,
    args: Vec<Bytes>,
    out: &mut Reply,
) -> Flow {
    server.stats.commands.add(1);
    let resolved = match protected_denied(server, client, &args) {
        Some(e) => Err(e),
        None => resolve(&args),
    };
    let (cmd, full_name) = match resolved {
        Ok(c) => c,
        Err(e) => {
            if let Some(reply) = route_unknown(server, client, &args) {
                return Flow::Defer(reply);
            }
            if client.multi.is_some() {
                client.multi_dirty = true;
            }
            if args[0].eq_ignore_ascii_case(b"exec") {
                refuse_exec(server, client, out, &e, &args);
            } else {
                reply_error(server, out, &e);
            }
            return Flow::Continue;
        }
    };
    let rejected = |out: &mut Reply, e: &str| {
        stats::record(cmd, stats::Outcome::Rejected);
        reply_error(server, out, e);
        Flow::Continue
    };
    if server.requirepass_set() && !client.authenticated && !cmd.has(flags::NO_AUTH) {
        return rejected(out, "NOAUTH Authentication required.");
    }
    if client.in_pubsub_context() && !cmd.has(flags::PUBSUB_CTX) {
        return rejected(out, &format!(
            "ERR Can't execute '{full_name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context"
        ));
    }
    // A script runs long: as in Redis, other commands (other scripts too)
    // are not served until it ends, or get BUSY once it ran past
    // busy-reply-threshold.
    if server.scripting.is_busy() && !cmd.has(flags::ALLOW_BUSY) {
        if let Some(e) = server.scripting.busy_error(busy_threshold(server)) {
            if client.multi.is_some() {
                client.multi_dirty = true;
                if cmd.name == "exec" {
                    stats::record(cmd, stats::Outcome::Rejected);
                    refuse_exec(server, client, out, e, &args);
                    return Flow::Continue;
                }
            }
            return rejected(out, e);
        }
        return wait_for_script(server, args);
    }
    // CLIENT PAUSE: as Redis, checked before MULTI queueing; the client
    // waits off the runtime's workers and its command is checked again.
    if introspection::must_wait(server, client, cmd, &args) {
        return Flow::Wait(args, Box::pin(server.pause.wait()));
    }
    if !cmd.has(flags::MULTI_CTRL) {
        if let Some(queue) = client.multi.as_mut() {
            if cmd.has(flags::DENY_MULTI) {
                client.multi_dirty = true;
                return rejected(out, "ERR Command not allowed inside a transaction");
            }
            if cmd.has(flags::DENYOOM) && !server.db.ensure_memory() {
                client.multi_dirty = true;
                return rejected(out, OOM_ERR);
            }
            // Like Redis's queueMultiCommand, a transaction already doomed
            // to EXECABORT queues nothing more (the reply is still QUEUED).
            if !client.multi_dirty {
                client.multi_bytes += queued_size(&args);
                queue.push((cmd, args));
            }
            out.queued();
            return Flow::Continue;
        }
    }
    client.last_command = match full_name {
        Cow::Borrowed(name) => name,
        // A subcommand: CLIENT LIST shows `client|list`.
        Cow::Owned(_) => stats::full_name(cmd),
    };
    if let Some(router) = server
        .router
        .get()
        .filter(|_| !databases::runs_here(server, cmd, &args))
    {
        if let Some(reply) = router.route(server, client, cmd, &args) {
            stats::record(cmd, stats::Outcome::Routed);
            if server.monitors.active() && !cmd.has(flags::ADMIN) {
                introspection::feed_monitors(server, client, &args);
            }
            if cmd.has(flags::BLOCKING) {
                client.deferred_block = Some(!matches!(cmd.name, "blmove" | "brpoplpush"));
            }
            return Flow::Defer(reply);
        }
    }
    if cmd.has(flags::DENYOOM) && !server.db.ensure_memory() {
        return rejected(out, OOM_ERR);
    }
    if cmd.has(flags::SCRIPT) || cmd.name == "exec" {
        // Redis evicts before every command and tells a script whether it
        // started out of memory (its first write then fails); the scripts
        // of a transaction see the memory state EXEC started in. A script
        // sent alone runs here, on this worker (see `scripting::run`);
        // scripts of a pipeline went to the script thread together
        // ([`queue_script`]).
        client.oom_at_start = !server.db.ensure_memory();
    }
    let mark = out.len();
    introspection::before_call(server, client, cmd, &args);
    let started = stats::start();
    let Some(flow) = run_locked(server, client, cmd, &args, out) else {
        // A script took the keyspace between the check above and the lock.
        return wait_for_script(server, args);
    };
    let us = if matches!(flow, Flow::Block(_)) {
        // As Redis 7.0 counts a call that blocks: the call and its time
        // now, monitors now; its failure, latency sample and slow log
        // once it ends ([`unblocked`]).
        let us = stats::record(cmd, stats::Outcome::Blocked { started });
        client.blocked_call = Some((cmd, args.clone(), us));
        us
    } else {
        record_ran(server, cmd, started, out, mark)
    };
    introspection::after_call(server, client, cmd, &args, us);
    serve_ready(server);
    flow
}

/// What a command queued in MULTI holds, for the query buffer limit: its
/// arguments' bytes, each argument's handle and the RESP framing its slice
/// of the read buffer keeps alive (48 bytes), and the queue slot.
fn queued_size(args: &[Bytes]) -> usize {
    const PER_ARG: usize = std::mem::size_of::<Bytes>() + 16;
    const PER_COMMAND: usize = std::mem::size_of::<(&Command, Vec<Bytes>)>();
    PER_COMMAND + args.iter().map(|a| a.len() + PER_ARG).sum::<usize>()
}

/// Redis's check for protected commands (DEBUG), made after arity and
/// before authentication, as `processCommand` does: DEBUG is refused unless
/// `enable-debug-command` is `yes`, or `local` and the client connected from
/// 127.0.0.1 or ::1.
fn protected_denied(server: &Shared, client: &ClientState, args: &[Bytes]) -> Option<String> {
    if args.len() < 2 || !args[0].eq_ignore_ascii_case(b"debug") {
        return None;
    }
    let allowed = match server.config.enable_debug_command {
        ProtectedAction::Yes => true,
        ProtectedAction::Local => crate::state::is_local_client(client.info.addr),
        ProtectedAction::No => false,
    };
    (!allowed).then(|| {
        "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", \
         you can run it from a local connection, otherwise you need to set this option in the \
         configuration file, and then restart the server."
            .to_string()
    })
}

/// Writes an error reply and counts it (INFO errorstats).
fn reply_error(server: &Shared, out: &mut Reply, msg: &str) {
    let mark = out.len();
    out.error(msg);
    server.stats.count_error(&out.buf[mark..]);
}

/// An EXEC refused before it ran (Redis's rejectCommand): the transaction
/// is discarded, the reply says why, the monitors see the EXEC (closing
/// the MULTI they saw), and the router releases what it kept.
fn refuse_exec(
    server: &Shared,
    client: &mut ClientState,
    out: &mut Reply,
    e: &str,
    args: &[Bytes],
) {
    reply_error(server, out, &transactions::abort_exec(server, client, e));
    if server.monitors.active() {
        introspection::feed_monitors(server, client, args);
    }
    if let Some(router) = server.router.get() {
        router.transaction_aborted(client);
    }
}

/// Counts a call that ran: its time, and whether its reply is an error.
/// Returns its duration in µs.
fn record_ran(
    server: &Shared,
    cmd: &'static Command,
    started: u64,
    out: &Reply,
    mark: usize,
) -> u64 {
    let failed = count_if_error(server, out.buf.get(mark..).unwrap_or_default());
    stats::record(cmd, stats::Outcome::Ran { started, failed })
}

/// Whether `reply` is an error reply (RESP2 or RESP3); if it is, it is
/// counted in INFO errorstats.
#[inline]
fn count_if_error(server: &Shared, reply: &[u8]) -> bool {
    let failed = matches!(reply.first(), Some(b'-' | b'!'));
    if failed {
        server.stats.count_error(reply);
    }
    failed
}

pub const OOM_ERR: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// Runs a pipeline's script commands on the script thread (see
/// [`scripting::submit`]), each counted as any command that ran and each
/// its own commit. Every shard is locked once for the run of consecutive
/// scripts (waiting if a transaction's script holds them), as Redis runs a
/// client's pipeline without another client in between; the shards are let
/// go between two scripts only when clients blocked on a key can be
/// served (Redis serves them after every command). One reply per script
/// whatever happens: a panic costs that script its reply (and its view),
/// not the pipeline its order.
pub fn run_script_batch(
    server: &Arc<Shared>,
    client: &mut ClientState,
    calls: Vec<ScriptCall>,
    out: &mut Reply,
) {
    let mut held: Option<Keys<'_>> = None;
    for (cmd, args, oom_at_start) in calls {
        client.oom_at_start = oom_at_start;
        let mark = out.len();
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            introspection::before_call(server, client, cmd, &args);
            let started = stats::start();
            let ks = held.get_or_insert_with(|| server.db.lock_all());
            ks.select(client.db);
            ks.set_no_touch(client.no_touch);
            let mut ctx = Ctx {
                out: &mut *out,
                client: &mut *client,
                server,
                ks,
                in_exec: false,
                block: None,
            };
            (cmd.handler)(&mut ctx, &args);
            ks.commit();
            let us = record_ran(server, cmd, started, out, mark);
            introspection::after_call(server, client, cmd, &args, us);
        }));
        if ran.is_err() {
            // The view goes with what it changed so far, as it would have
            // been dropped while unwinding.
            held = None;
            tracing::error!(command = cmd.name, "a script command panicked");
            out.buf.truncate(mark);
            out.error("ERR the script failed unexpectedly (see the server log)");
        }
        if server.db.has_ready() {
            held = None;
            serve_ready(server);
        }
    }
}

/// Locks the command's shards and runs it; None (nothing run) if a script
/// holds them.
fn run_locked(
    server: &Arc<Shared>,
    client: &mut ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    out: &mut Reply,
) -> Option<Flow> {
    let mut ks = match cmd.keys {
        KeySpec::All | KeySpec::AllShards(_) => server.db.lock_all_or_busy()?,
        KeySpec::None => server.db.lock_indices(&[]),
        _ => server.db.lock_or_busy(&cmd.keys_in(args))?,
    };
    ks.select(client.db);
    ks.set_no_touch(client.no_touch);
    let mut ctx = Ctx {
        out,
        client,
        server,
        ks: &mut ks,
        in_exec: false,
        block: None,
    };
    if let Some(router) = server.router.get() {
        if let Some(reply) = router.check_locked(server, ctx.client, ctx.ks, cmd, args) {
            drop(ks);
            return Some(Flow::Defer(reply));
        }
    }
    (cmd.handler)(&mut ctx, args);
    let block = ctx.block.take();
    drop(ks);

    if client.close_after_reply {
        return Some(Flow::Close);
    }
    Some(match block {
        Some(b) => Flow::Block(b),
        None => Flow::Continue,
    })
}

/// Runs a command on the local engine outside a connection's dispatch (the
/// tiered engine, after back-filling the keys a read missed). `gate` sees the
/// locked keys first and may refuse, in which case nothing runs and None is
/// returned. The reply is encoded for `resp3`.
pub fn run_detached(
    server: &Arc<Shared>,
    info: Arc<crate::state::ClientInfo>,
    resp3: bool,
    db: usize,
    cmd: &'static Command,
    args: &[Bytes],
    gate: impl FnOnce(&mut Keys<'_>) -> bool,
) -> Option<Bytes> {
    let keys = cmd.keys_in(args);
    // The client's CLIENT NO-TOUCH applies here too (its state is in `info`).
    let no_touch = info.meta.lock().no_touch;
    let mut ks = server.db.lock(&keys);
    ks.select(db);
    if !gate(&mut ks) {
        return None;
    }
    ks.set_no_touch(no_touch);
    let mut client = ClientState::new(info, true);
    client.resp3 = resp3;
    client.db = db;
    client.no_touch = no_touch;
    let mut out = Reply::new(resp3);
    let mut ctx = Ctx {
        out: &mut out,
        client: &mut client,
        server,
        ks: &mut ks,
        in_exec: true,
        block: None,
    };
    (cmd.handler)(&mut ctx, args);
    drop(ks);
    Some(out.buf.freeze())
}

/// Runs one queued command inside EXEC, with every shard already locked.
pub fn run_in_exec(ctx: &mut Ctx<'_, '_>, cmd: &'static Command, args: &[Bytes]) {
    ctx.client.last_command = stats::full_name(cmd);
    // The client's database: a script run before may have selected another.
    ctx.ks.select(ctx.client.db);
    let mark = ctx.out.len();
    introspection::before_call(ctx.server, ctx.client, cmd, args);
    let started = stats::start();
    (cmd.handler)(ctx, args);
    let us = record_ran(ctx.server, cmd, started, ctx.out, mark);
    introspection::after_call(ctx.server, ctx.client, cmd, args, us);
    ctx.block = None;
}

/// A blocked command ended with `reply` (served, timed out, or CLIENT
/// UNBLOCK): as Redis 7.0's `updateStatsOnUnblock`, its run time counts
/// again with a latency sample, it counts as failed if `reply` is an
/// error (in errorstats too), and it enters the slow log. Its call was
/// counted when it blocked. A client killed or gone while blocked
/// (`ended` false) adds nothing more, as Redis frees it without stats.
pub fn unblocked(server: &Arc<Shared>, client: &mut ClientState, reply: &[u8], ended: bool) {
    let Some((cmd, args, us)) = client.blocked_call.take() else {
        return;
    };
    if !ended {
        return;
    }
    let failed = count_if_error(server, reply);
    stats::record(cmd, stats::Outcome::Unblocked { us, failed });
    introspection::log_slow(server, client, cmd, &args, us);
}

/// Serves clients blocked on keys that received data.
pub fn serve_ready(server: &Arc<Shared>) {
    server.blocking.serve_ready(&server.db);
}

/// Cleans up after a client that disconnected: forget its watches.
pub fn disconnect(server: &Arc<Shared>, client: &mut ClientState) {
    if let Some(router) = server.router.get() {
        router.disconnect(client);
    }
    pubsub::drop_all(server, client);
    for (k, _) in client.watched.drain(..) {
        server.watches.unwatch(&k, &client.watch_dirty);
    }
}

/// Drops a client's Pub/Sub subscriptions (RESET).
pub fn pubsub_reset(ctx: &mut Ctx<'_, '_>) {
    pubsub::drop_all(ctx.server, ctx.client);
}
