//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT; and the one way every
//! script or function runs ([`run`]): with every shard locked for its whole
//! run (so no other command interleaves and its writes are one commit), its
//! `redis.call`s served by [`ScriptHost`] against the locked shards. A
//! script sent alone runs where its command runs, on the runtime's worker
//! thread (it pays no hand-off between threads); the scripts of a pipeline
//! go to the script thread together ([`submit`]), so the workers go on
//! reading and writing while they run. A script that turns out long on a
//! worker gives the worker's other tasks to another thread and goes on
//! where it is ([`leave_worker`]).
//!
//! Undeclared keys: a script may touch any key (Redis allows it outside
//! cluster mode); holding every shard makes that safe.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::flags::*;
use super::stats;
use super::util::parse_i64;
use super::{
    lookup, lookup_sub, run_in_exec, run_script_batch, ClientState, Command, Ctx, DeferredReply,
    KeySpec, ScriptCall, Shared,
};
use crate::engine::{Keys, Mutation, ScriptOp};
use crate::protocol::Reply;
use crate::script::{Host, ScriptFlags, Vm};
use crate::state::scripting::{KillError, Running};

pub static COMMANDS: &[Command] = &[
    Command::new(
        "eval",
        -3,
        NOSCRIPT | SCRIPT | STALE | MAY_REPLICATE,
        KeySpec::AllShards(numkeys_keys),
        eval,
        "scripting",
    ),
    Command::new(
        "evalsha",
        -3,
        NOSCRIPT | SCRIPT | STALE | MAY_REPLICATE,
        KeySpec::AllShards(numkeys_keys),
        evalsha,
        "scripting",
    ),
    Command::new(
        "eval_ro",
        -3,
        NOSCRIPT | SCRIPT | STALE | READONLY,
        KeySpec::AllShards(numkeys_keys),
        eval_ro,
        "scripting",
    ),
    Command::new(
        "evalsha_ro",
        -3,
        NOSCRIPT | SCRIPT | STALE | READONLY,
        KeySpec::AllShards(numkeys_keys),
        evalsha_ro,
        "scripting",
    ),
    Command::container("script", "scripting", SCRIPT_SUBCOMMANDS),
];

static SCRIPT_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "load",
        3,
        NOSCRIPT | STALE | REPLICATED,
        KeySpec::None,
        script_load,
        "scripting",
    ),
    Command::new(
        "exists",
        -3,
        NOSCRIPT,
        KeySpec::None,
        script_exists,
        "scripting",
    ),
    Command::new(
        "flush",
        -2,
        NOSCRIPT | REPLICATED,
        KeySpec::None,
        script_flush,
        "scripting",
    ),
    Command::new(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        KeySpec::None,
        script_kill,
        "scripting",
    ),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        script_help,
        "scripting",
    ),
];

/// The keys of `EVAL script numkeys key... arg...` (and FCALL): lenient
/// with bad input, the handler reports it.
pub fn numkeys_keys(args: &[Bytes]) -> Vec<usize> {
    match args.get(2).and_then(|a| parse_i64(a)) {
        Some(n) if n > 0 && (n as usize) <= args.len().saturating_sub(3) => {
            (3..3 + n as usize).collect()
        }
        _ => Vec::new(),
    }
}

/// Checks `numkeys` (args[2]) as Redis does; returns it.
pub fn parse_numkeys(args: &[Bytes]) -> Result<usize, &'static str> {
    let Some(n) = parse_i64(&args[2]) else {
        return Err("ERR value is not an integer or out of range");
    };
    if n > args.len() as i64 - 3 {
        return Err("ERR Number of keys can't be greater than number of args");
    }
    if n < 0 {
        return Err("ERR Number of keys can't be negative");
    }
    Ok(n as usize)
}

fn eval(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    eval_generic(ctx, args, false, false)
}

fn evalsha(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    eval_generic(ctx, args, true, false)
}

fn eval_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    eval_generic(ctx, args, false, true)
}

fn evalsha_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    eval_generic(ctx, args, true, true)
}

pub const NOSCRIPT_ERR: &str = "NOSCRIPT No matching script. Please use EVAL.";

fn eval_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], by_sha: bool, ro: bool) {
    let numkeys = match parse_numkeys(args) {
        Ok(n) => n,
        Err(e) => return ctx.err(e),
    };
    let server = ctx.server;
    let mut vm = server.scripting.vm.lock();
    let mut lower = [0u8; 40];
    let sha: std::borrow::Cow<'_, str> = if by_sha {
        // A cached script's SHA1 is 40 hex digits: other text finds none.
        // Lowered on the stack (no allocation per EVALSHA); ASCII lowering
        // keeps valid UTF-8 valid and invalid invalid.
        if args[1].len() != 40 {
            return ctx.err(NOSCRIPT_ERR);
        }
        lower.copy_from_slice(&args[1]);
        lower.make_ascii_lowercase();
        match std::str::from_utf8(&lower) {
            Ok(sha) => sha.into(),
            Err(_) => return ctx.err(NOSCRIPT_ERR),
        }
    } else {
        let sha = Vm::sha1hex(&args[1]);
        if vm.script_flags(&sha).is_none() {
            if let Err(e) = vm.load_script(args[1].clone()) {
                return ctx.err(&e);
            }
            server.scripting.recount(&vm);
            // Replicated in the same entry as the script's effects.
            ctx.ks
                .log_only(Mutation::Script(ScriptOp::Load(args[1].clone())));
        }
        sha.into()
    };
    let Some(flags) = vm.script_flags(&sha) else {
        return ctx.err(NOSCRIPT_ERR);
    };
    let (keys, argv) = args[3..].split_at(numkeys);
    let run = RunInfo {
        eval: true,
        name: &sha,
        command: args,
    };
    self::run(
        ctx,
        run,
        flags,
        ro,
        |vm, host, out| vm.run_script(&sha, keys, argv, host, out),
        &mut vm,
    );
}

/// Hands script commands (EVAL, FCALL and their forms; several when a
/// pipeline sent them back to back) to the script thread and defers their
/// replies: the runtime's worker goes on serving other clients, and scripts
/// run one after another in arrival order. Each runs as the calling client
/// (its id, address, name, protocol, NO-TOUCH, database; whether the server
/// was out of memory when it arrived); nothing it does changes the caller's
/// session.
///
/// While they wait in the queue, a script running past
/// `busy-reply-threshold` makes them `-BUSY`, as any command in Redis: the
/// batch is withdrawn (never run) if the thread has not started it.
pub fn submit(server: &Arc<Shared>, client: &ClientState, calls: Vec<ScriptCall>) -> DeferredReply {
    const QUEUED: u8 = 0;
    const STARTED: u8 = 1;
    const WITHDRAWN: u8 = 2;
    let state = Arc::new(AtomicU8::new(QUEUED));
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let srv = Arc::clone(server);
    let (info, resp3, no_touch) = (client.info.clone(), client.resp3, client.no_touch);
    let names: Vec<&'static Command> = calls.iter().map(|(cmd, _, _)| *cmd).collect();
    let job_state = state.clone();
    let db = client.db;
    server.scripting.submit(Box::new(move || {
        if job_state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let mut caller = ClientState::new(info, true);
        caller.resp3 = resp3;
        caller.no_touch = no_touch;
        caller.db = db;
        let mut out = Reply::new(resp3);
        run_script_batch(&srv, &mut caller, calls, &mut out);
        let _ = tx.send(out.buf.freeze());
    }));
    let server = Arc::clone(server);
    let threshold = super::busy_threshold(&server);
    Box::pin(async move {
        let lost = |n: usize| {
            let mut r = Reply::new(resp3);
            for _ in 0..n {
                r.error("ERR the script failed unexpectedly (see the server log)");
            }
            r.buf.freeze()
        };
        let mut check_at = tokio::time::Instant::now() + threshold;
        loop {
            tokio::select! {
                r = &mut rx => return r.unwrap_or_else(|_| lost(names.len())),
                _ = tokio::time::sleep_until(check_at) => {}
            }
            match server.scripting.busy_error(threshold) {
                Some(e)
                    if state
                        .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok() =>
                {
                    let mut r = Reply::new(resp3);
                    for cmd in &names {
                        stats::record(cmd, stats::Outcome::Rejected);
                        let mark = r.len();
                        r.error(e);
                        server.stats.count_error(&r.buf[mark..]);
                    }
                    return r.buf.freeze();
                }
                // Started: its replies come.
                Some(_) => return (&mut rx).await.unwrap_or_else(|_| lost(names.len())),
                // Queued behind short scripts: look again when the running
                // one would reach the threshold.
                None => {
                    check_at = tokio::time::Instant::now()
                        + server
                            .scripting
                            .until_busy(threshold)
                            .max(Duration::from_millis(1));
                }
            }
        }
    })
}

/// Runs a script or a function: checks its flags against the call (Redis's
/// `scriptPrepareForRun`), then runs `body` with every shard held for long
/// and the running script published.
pub fn run(
    ctx: &mut Ctx<'_, '_>,
    running: RunInfo<'_>,
    flags: ScriptFlags,
    ro: bool,
    body: impl FnOnce(&mut Vm, &mut dyn Host, &mut Reply),
    vm: &mut Vm,
) {
    let server = ctx.server;
    if flags.shebang {
        if !flags.no_writes && ro {
            return ctx.err("ERR Can not execute a script with write flag using *_ro command.");
        }
        if ctx.client.oom_at_start && !(flags.allow_oom || flags.no_writes) {
            return ctx.err(
                "OOM allow-oom flag is not set on the script, can not run it when used memory > 'maxmemory'",
            );
        }
    }
    let read_only = ro || (flags.shebang && flags.no_writes);
    let allow_oom = flags.shebang && flags.allow_oom;
    let Ctx {
        out, client, ks, ..
    } = ctx;
    // Published for SCRIPT KILL and FUNCTION STATS, and waited for by
    // other clients, only once it ran long (see
    // `ScriptHost::maybe_leave_worker`): until then it is one command
    // holding every shard, as EXEC is.
    server.scripting.begin();
    let started = Instant::now();
    // Ends the run even if the script's command panics (the shards' long
    // hold ends with the view).
    struct EndRun<'a>(&'a Shared);
    impl Drop for EndRun<'_> {
        fn drop(&mut self) {
            self.0.scripting.end();
        }
    }
    let ended = EndRun(server);
    let mut host = ScriptHost {
        server,
        ks,
        client: ClientState::new(client.info.clone(), true),
        read_only,
        allow_oom,
        oom_at_start: client.oom_at_start,
        wrote: false,
        calls: 0,
        leave_at: started + LEAVE_WORKER_AFTER,
        long: false,
        run: running,
        started,
    };
    host.client.no_touch = client.no_touch;
    // The script starts in its caller's database; a SELECT inside it
    // changes only the script's (Redis 7.0).
    host.client.db = client.db;
    host.client.in_script = true;
    body(vm, &mut host, out);
    ks.end_long_hold();
    server.scripting.note_memory(vm);
    drop(ended);
}

/// How long a script runs on a runtime worker before it gives the worker's
/// other tasks away ([`leave_worker`]), and how often it looks again if that
/// did not take.
const LEAVE_WORKER_AFTER: Duration = Duration::from_millis(2);
const LEAVE_WORKER_AGAIN: Duration = Duration::from_millis(100);

/// A script turned out long on one of the runtime's workers: tokio's
/// `block_in_place` hands the worker (its queue of tasks, its place in the
/// scheduler) to another thread while this thread, and the script with it,
/// goes on; when the script's command returns, this thread leaves the
/// runtime. So a long script never stops other clients, even with one
/// worker thread, and a short one never pays the hand-off (about 18 µs, a
/// thread woken). The hand-off is confirmed by a task queued on this worker
/// before it: once another thread ran it, the worker is in other hands
/// (rarely an idle worker steals the task first and this thread takes its
/// worker back when `block_in_place` returns; the script tries again
/// [`LEAVE_WORKER_AGAIN`] later). Off the runtime it does nothing.
fn leave_worker() {
    use tokio::runtime::{Handle, RuntimeFlavor};
    let Ok(rt) = Handle::try_current() else {
        return;
    };
    if rt.runtime_flavor() != RuntimeFlavor::MultiThread {
        return;
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    rt.spawn(async move {
        let _ = tx.send(());
    });
    tokio::task::block_in_place(|| {
        let _ = rx.recv_timeout(Duration::from_millis(50));
    });
}

/// What a running script's `redis.call` reaches: the commands, run against
/// the shards the script holds, checked as Redis's `scriptCall` checks them.
pub struct ScriptHost<'a, 'k> {
    server: &'a Arc<Shared>,
    ks: &'a mut Keys<'k>,
    /// The script's own client (Redis's "lua client"): its RESP version,
    /// and the caller's CLIENT NO-TOUCH.
    client: ClientState,
    read_only: bool,
    allow_oom: bool,
    oom_at_start: bool,
    wrote: bool,
    /// `redis.call`s made, and when the script next looks whether it ran
    /// long enough to leave its worker thread ([`leave_worker`]).
    calls: u32,
    leave_at: Instant,
    /// The script ran long: its shards are held for long and others wait
    /// for it, or get BUSY.
    long: bool,
    /// What it runs, published once it runs long.
    run: RunInfo<'a>,
    started: Instant,
}

/// The script or function a [`run`] runs, as SCRIPT KILL and FUNCTION
/// STATS see it once it runs long.
pub struct RunInfo<'a> {
    /// EVAL family (true) or FCALL (false).
    pub eval: bool,
    /// The function's name (FCALL) or the script's SHA1 (EVAL).
    pub name: &'a str,
    /// The command as sent.
    pub command: &'a [Bytes],
}

impl ScriptHost<'_, '_> {
    /// Every so many calls and at every count hook: a script running past
    /// [`LEAVE_WORKER_AFTER`] becomes a long one. Its shards are then held
    /// for long (a command that needs one waits off its worker instead of
    /// blocking it) and the script is busy (commands wait for its end, or
    /// get BUSY past the threshold); and it gives its worker's other tasks
    /// away. Until then a script is one command holding every shard, as
    /// EXEC is: a command that needs a shard waits for the lock, and
    /// nobody pays a wake-up for a short script.
    fn maybe_leave_worker(&mut self) {
        let now = Instant::now();
        if now < self.leave_at {
            return;
        }
        if !self.long {
            self.long = true;
            self.ks.hold_long();
            self.server.scripting.mark_long(Running {
                eval: self.run.eval,
                name: self.run.name.to_owned(),
                command: self.run.command.to_vec(),
                started: self.started,
                client_id: self.client.id,
            });
        }
        leave_worker();
        self.leave_at = now + LEAVE_WORKER_AGAIN;
    }

    /// The command `args` names, if a script may run it now.
    fn check(&self, args: &[Bytes]) -> Result<&'static Command, &'static str> {
        const UNKNOWN: &str = "ERR Unknown Redis command called from script";
        const ARITY: &str = "ERR Wrong number of args calling Redis command from script";
        let Some(first) = args.first() else {
            return Err(UNKNOWN);
        };
        let mut cmd = lookup(first).ok_or(UNKNOWN)?;
        if !cmd.subcommands.is_empty() {
            let sub = args.get(1).ok_or(ARITY)?;
            cmd = lookup_sub(cmd, sub).ok_or(UNKNOWN)?;
        }
        let n = args.len() as i32;
        if (cmd.arity > 0 && cmd.arity != n) || n < -cmd.arity {
            return Err(ARITY);
        }
        if cmd.has(NOSCRIPT) {
            return Err("ERR This Redis command is not allowed from script");
        }
        if self.read_only && cmd.has(WRITE | MAY_REPLICATE) {
            return Err("ERR Write commands are not allowed from read-only scripts.");
        }
        if !self.allow_oom && !self.wrote && self.oom_at_start && cmd.has(DENYOOM) {
            return Err(super::OOM_ERR);
        }
        Ok(cmd)
    }
}

impl Host for ScriptHost<'_, '_> {
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Bytes {
        let mut out = Reply::new(resp3);
        match self.check(args) {
            Err(e) => {
                out.error(e);
            }
            Ok(cmd) => {
                if cmd.has(WRITE) {
                    self.wrote = true;
                    self.server.scripting.note_write();
                }
                self.client.resp3 = resp3;
                let mut sub = Ctx {
                    out: &mut out,
                    client: &mut self.client,
                    server: self.server,
                    ks: self.ks,
                    in_exec: true,
                    block: None,
                };
                run_in_exec(&mut sub, cmd, args);
            }
        }
        self.calls = self.calls.wrapping_add(1);
        if self.calls.is_multiple_of(16) {
            self.maybe_leave_worker();
        }
        out.buf.freeze()
    }

    fn log(&mut self, level: i32, msg: &str) {
        match level {
            0 => tracing::debug!(target: "jcache::script", "{msg}"),
            1 | 2 => tracing::info!(target: "jcache::script", "{msg}"),
            _ => tracing::warn!(target: "jcache::script", "{msg}"),
        }
    }

    fn interrupt(&mut self) -> Option<String> {
        self.maybe_leave_worker();
        if self.server.scripting.killed() {
            return Some("Script killed by user with SCRIPT KILL...".into());
        }
        if self.server.shutting_down() {
            return Some("Script stopped: the server is shutting down".into());
        }
        None
    }
}

fn script_load(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match ctx.server.scripting.load_script(args[2].clone()) {
        Ok((sha, new)) => {
            if new {
                ctx.ks
                    .log_only(Mutation::Script(ScriptOp::Load(args[2].clone())));
            }
            ctx.out.bulk(sha.as_bytes());
        }
        Err(e) => ctx.err(&e),
    }
}

fn script_exists(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let vm = ctx.server.scripting.vm.lock();
    ctx.out.array(args.len() - 2);
    for a in &args[2..] {
        let sha = String::from_utf8_lossy(a).to_ascii_lowercase();
        ctx.out
            .int((sha.len() == 40 && vm.script(&sha).is_some()) as i64);
    }
}

fn script_flush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let ok = match args.len() {
        2 => true,
        3 => args[2].eq_ignore_ascii_case(b"sync") || args[2].eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !ok {
        return ctx.err("ERR SCRIPT FLUSH only support SYNC|ASYNC option");
    }
    ctx.server.scripting.flush_scripts();
    ctx.ks.log_only(Mutation::Script(ScriptOp::Flush));
    ctx.out.ok();
}

fn script_kill(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    kill_reply(ctx, true)
}

/// SCRIPT KILL (`eval`) or FUNCTION KILL.
pub fn kill_reply(ctx: &mut Ctx<'_, '_>, eval: bool) {
    match ctx.server.scripting.kill(eval) {
        Ok(()) => ctx.out.ok(),
        Err(KillError::NotBusy) => ctx.err("NOTBUSY No scripts in execution right now."),
        Err(KillError::Unkillable) => ctx.err(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.",
        ),
        Err(KillError::WrongKind(busy)) => ctx.err(busy),
    }
}

fn script_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    const HELP: &[&str] = &[
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(HELP.len());
    for l in HELP {
        ctx.out.simple(l);
    }
}
