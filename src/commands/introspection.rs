//! Introspection and operations: SLOWLOG, LATENCY, MONITOR, CLIENT
//! PAUSE/UNPAUSE, MEMORY STATS/DOCTOR/MALLOC-STATS/PURGE/HELP, and what
//! the dispatcher does around every call for them ([`after_call`],
//! [`must_wait`]): the slow log, the latency monitor and MONITOR are fed
//! after a command ran, with the duration `stats.rs` measured.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::flags::*;
use super::util::{is, parse_i64};
use super::{ClientState, Command, Ctx, KeySpec, Shared};
use crate::state::pause;
use crate::state::slowlog::{unix_secs, LatencySeries};

pub static COMMANDS: &[Command] = &[
    Command::container("slowlog", "server", SLOWLOG_SUBCOMMANDS),
    Command::container("latency", "server", LATENCY_SUBCOMMANDS),
    Command::container("module", "server", MODULE_SUBCOMMANDS),
    Command::new(
        "monitor",
        1,
        ADMIN | NOSCRIPT | LOADING | STALE,
        KeySpec::None,
        monitor,
        "server",
    ),
];

const ADMIN_LS: u32 = ADMIN | LOADING | STALE;
const ADMIN_NLS: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static SLOWLOG_SUBCOMMANDS: &[Command] = &[
    Command::new("get", -2, ADMIN_LS, KeySpec::None, slowlog_get, "server"),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        slowlog_help,
        "server",
    ),
    Command::new("len", 2, ADMIN_LS, KeySpec::None, slowlog_len, "server"),
    Command::new("reset", 2, ADMIN_LS, KeySpec::None, slowlog_reset, "server"),
];

/// MODULE: jcache loads no modules. LIST is empty; LOAD, LOADEX and
/// UNLOAD answer as Redis 7.0 does with its default
/// `enable-module-command no`.
static MODULE_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        module_help,
        "server",
    ),
    Command::new(
        "list",
        2,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        module_list,
        "server",
    ),
    Command::new(
        "load",
        -3,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        module_refused,
        "server",
    ),
    Command::new(
        "loadex",
        -3,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        module_refused,
        "server",
    ),
    Command::new(
        "unload",
        3,
        ADMIN | NOSCRIPT,
        KeySpec::None,
        module_refused,
        "server",
    ),
];

fn module_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    help(
        ctx,
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    );
}

fn module_list(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.array(0);
}

fn module_refused(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.err(
        "ERR MODULE command not allowed. If the enable-module-command option is set to \"local\", \
         you can run it from a local connection, otherwise you need to set this option in the \
         configuration file, and then restart the server.",
    );
}

static LATENCY_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "doctor",
        2,
        ADMIN_NLS,
        KeySpec::None,
        latency_doctor,
        "server",
    ),
    Command::new(
        "graph",
        3,
        ADMIN_NLS,
        KeySpec::None,
        latency_graph,
        "server",
    ),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        latency_help,
        "server",
    ),
    Command::new(
        "histogram",
        -2,
        ADMIN_NLS,
        KeySpec::None,
        latency_histogram,
        "server",
    ),
    Command::new(
        "history",
        3,
        ADMIN_NLS,
        KeySpec::None,
        latency_history,
        "server",
    ),
    Command::new(
        "latest",
        2,
        ADMIN_NLS,
        KeySpec::None,
        latency_latest,
        "server",
    ),
    Command::new(
        "reset",
        -2,
        ADMIN_NLS,
        KeySpec::None,
        latency_reset,
        "server",
    ),
];

/// MEMORY's subcommands besides USAGE (listed in `server_cmds.rs`).
pub const MEMORY_DOCTOR: Command =
    Command::new("doctor", 2, 0, KeySpec::None, memory_doctor, "server");
pub const MEMORY_HELP: Command = Command::new(
    "help",
    2,
    LOADING | STALE,
    KeySpec::None,
    memory_help,
    "server",
);
pub const MEMORY_MALLOC_STATS: Command = Command::new(
    "malloc-stats",
    2,
    0,
    KeySpec::None,
    memory_malloc_stats,
    "server",
);
pub const MEMORY_PURGE: Command =
    Command::new("purge", 2, 0, KeySpec::None, memory_purge, "server");
pub const MEMORY_STATS: Command =
    Command::new("stats", 2, 0, KeySpec::None, memory_stats, "server");

/// CLIENT PAUSE and CLIENT UNPAUSE (listed in `connection.rs`).
pub const CLIENT_PAUSE: Command = Command::new(
    "pause",
    -3,
    ADMIN_NLS,
    KeySpec::None,
    client_pause,
    "connection",
);
pub const CLIENT_UNPAUSE: Command = Command::new(
    "unpause",
    2,
    ADMIN_NLS,
    KeySpec::None,
    client_unpause,
    "connection",
);

/// Redis's addReplyHelp: the header, the lines, and HELP.
fn help(ctx: &mut Ctx<'_, '_>, cmd: &str, lines: &[&str]) {
    ctx.out.array(lines.len() + 3);
    ctx.out.simple(&format!(
        "{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    ));
    for l in lines {
        ctx.out.simple(l);
    }
    ctx.out.simple("HELP");
    ctx.out.simple("    Prints this help.");
}

// ---- around every call ----

/// What MONITOR and SLOWLOG show of a call: arguments that carry secrets
/// replaced by `(redacted)`, as Redis's redactClientCommandArgument does
/// (AUTH, HELLO ... AUTH, CONFIG SET of a password, MIGRATE ... AUTH/AUTH2).
fn redacted(args: &[Bytes]) -> std::borrow::Cow<'_, [Bytes]> {
    const R: Bytes = Bytes::from_static(b"(redacted)");
    let name = &args[0];
    let mut v: Vec<Bytes>;
    if is(name, "auth") {
        v = args.to_vec();
        v[1..].iter_mut().for_each(|a| *a = R);
    } else if is(name, "hello") {
        v = args.to_vec();
        let mut j = 2;
        while j < v.len() {
            if is(&v[j], "auth") && j + 2 < v.len() {
                v[j + 1] = R;
                v[j + 2] = R;
                j += 3;
            } else if is(&v[j], "setname") {
                j += 2;
            } else {
                j += 1;
            }
        }
    } else if is(name, "config") && args.len() >= 4 && is(&args[1], "set") {
        v = args.to_vec();
        for pair in v[2..].chunks_mut(2) {
            if pair.len() == 2 && (is(&pair[0], "requirepass") || is(&pair[0], "masterauth")) {
                pair[1] = R;
            }
        }
    } else if is(name, "migrate") {
        v = args.to_vec();
        let mut j = 6;
        while j < v.len() {
            if is(&v[j], "auth") && j + 1 < v.len() {
                v[j + 1] = R;
                break;
            } else if is(&v[j], "auth2") && j + 2 < v.len() {
                v[j + 1] = R;
                v[j + 2] = R;
                break;
            }
            j += 1;
        }
    } else {
        return std::borrow::Cow::Borrowed(args);
    }
    std::borrow::Cow::Owned(v)
}

/// Where a client's lines say it came from (`127.0.0.1:60866`, `lua`).
fn origin(client: &ClientState) -> String {
    if client.in_script {
        "lua".to_string()
    } else {
        client.info.addr.to_string()
    }
}

/// Sends a call to the monitors (the caller checked `monitors.active()`).
pub fn feed_monitors(server: &Shared, client: &ClientState, args: &[Bytes]) {
    server.monitors.feed(0, &origin(client), &redacted(args));
}

/// The slow log's part of [`after_call`] (EXEC itself is not logged, its
/// commands are).
#[inline]
pub fn log_slow(
    server: &Shared,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    us: u64,
) {
    if server.slowlog.wants(us) && cmd.name != "exec" {
        let name = client.info.meta.lock().name.clone().unwrap_or_default();
        let peer = client.info.addr.to_string();
        server.slowlog.push(&redacted(args), us, peer, name);
    }
}

/// After a call ran for `us` µs: the slow log, the latency monitor,
/// MONITOR. Three relaxed loads when none of them wants it.
#[inline]
pub fn after_call(
    server: &Shared,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
    us: u64,
) {
    if client.blocked_call.is_none() {
        log_slow(server, client, cmd, args, us);
    }
    let event = if cmd.has(FAST) {
        "fast-command"
    } else {
        "command"
    };
    server.latency.add_if_needed(event, us / 1000);
    // Scripts are shown before they run (see `before_call`); admin
    // commands never.
    if server.monitors.active() && !cmd.has(ADMIN | SCRIPT) {
        feed_monitors(server, client, args);
    }
}

/// Before a call runs: a script is shown to the monitors first, so that
/// its own commands follow it (Redis's evalCommand and fcallCommand).
#[inline]
pub fn before_call(server: &Shared, client: &ClientState, cmd: &'static Command, args: &[Bytes]) {
    if cmd.has(SCRIPT) && server.monitors.active() {
        feed_monitors(server, client, args);
    }
}

/// Whether CLIENT PAUSE holds this call (Redis's processCommand): every
/// command under ALL; under WRITE, writes and commands that may
/// replicate, scripts by their declared flags, EXEC by what it queued.
/// One relaxed load while no pause is set.
#[inline]
pub fn must_wait(
    server: &Shared,
    client: &ClientState,
    cmd: &'static Command,
    args: &[Bytes],
) -> bool {
    match server.pause.mode(&server.db) {
        pause::OFF => false,
        pause::ALL => !client.in_script,
        _ => {
            !client.in_script
                && if cmd.name == "exec" {
                    client
                        .multi
                        .iter()
                        .flatten()
                        .any(|(c, a)| may_replicate(server, c, a))
                } else {
                    may_replicate(server, cmd, args)
                }
        }
    }
}

/// A command's write/may-replicate flags, a script's from its shebang or
/// its function's flags (Redis's getCommandFlags).
fn may_replicate(server: &Shared, cmd: &'static Command, args: &[Bytes]) -> bool {
    let plain = cmd.has(WRITE | MAY_REPLICATE);
    if !cmd.has(SCRIPT) || args.len() < 2 {
        return plain;
    }
    let Some(vm) = server.scripting.vm.try_lock() else {
        return true;
    };
    let flags = if cmd.name.starts_with("fcall") {
        match vm.function(&String::from_utf8_lossy(&args[1])) {
            Some((_, f)) => return !f.flags.no_writes,
            None => return plain,
        }
    } else if cmd.name.starts_with("evalsha") {
        if args[1].len() != 40 {
            return plain;
        }
        match vm.script(&String::from_utf8_lossy(&args[1]).to_ascii_lowercase()) {
            Some((_, f)) => f,
            None => return plain,
        }
    } else {
        match vm.script(&crate::script::Vm::sha1hex(&args[1])) {
            Some((_, f)) => f,
            None => match crate::script::Vm::parse_flags(&args[1]) {
                Ok(f) => f,
                Err(_) => return plain,
            },
        }
    };
    if flags.shebang {
        !flags.no_writes
    } else {
        plain
    }
}

// ---- SLOWLOG ----

fn slowlog_get(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut count = 10usize;
    if args.len() > 3 {
        ctx.err(&format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&args[1])
        ));
        return;
    }
    if args.len() == 3 {
        match parse_i64(&args[2]) {
            None => return ctx.err("ERR value is not an integer or out of range"),
            Some(n) if n < -1 => return ctx.err("ERR count should be greater than or equal to -1"),
            Some(-1) => count = usize::MAX,
            Some(n) => count = n as usize,
        }
    }
    let out = &mut *ctx.out;
    ctx.server.slowlog.with_entries(|entries| {
        let n = entries.len().min(count);
        out.array(n);
        for e in entries.iter().take(n) {
            out.array(6);
            out.int(e.id as i64);
            out.int(e.time);
            out.int(e.duration as i64);
            out.array(e.args.len());
            for a in &e.args {
                out.bulk(a);
            }
            out.bulk(e.peer.as_bytes());
            out.bulk(e.name.as_bytes());
        }
    });
}

fn slowlog_len(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.int(ctx.server.slowlog.len() as i64);
}

fn slowlog_reset(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.server.slowlog.reset();
    ctx.out.ok();
}

fn slowlog_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    help(
        ctx,
        "SLOWLOG",
        &[
            "GET [<count>]",
            "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
            "    Entries are made of:",
            "    id, timestamp, time in microseconds, arguments array, client IP and port,",
            "    client name",
            "LEN",
            "    Return the length of the slowlog.",
            "RESET",
            "    Reset the slowlog.",
        ],
    );
}

// ---- LATENCY ----

fn latency_latest(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let ev = ctx.server.latency.events();
    ctx.out.array(ev.len());
    for (name, ts) in ev {
        let (time, ms) = ts.last();
        ctx.out.array(4);
        ctx.out.bulk(name.as_bytes());
        ctx.out.int(time);
        ctx.out.int(ms as i64);
        ctx.out.int(ts.max as i64);
    }
}

fn latency_history(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let Some(ts) = ctx.server.latency.event(&String::from_utf8_lossy(&args[2])) else {
        ctx.out.array(0);
        return;
    };
    let samples = ts.ordered();
    ctx.out.array(samples.len());
    for (t, ms) in samples {
        ctx.out.array(2);
        ctx.out.int(t);
        ctx.out.int(ms as i64);
    }
}

fn latency_reset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let names: Vec<String> = args[2..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    ctx.out.int(ctx.server.latency.reset(&names) as i64);
}

/// Redis's sparkline of an event (LATENCY GRAPH): 4 rows of `_o#|`, then
/// the age of each sample as a vertical label.
fn sparkline(event: &str, ts: &LatencySeries) -> String {
    let samples = ts.ordered();
    let now = unix_secs();
    let (mut min, mut max) = (0u64, 0u64);
    let mut seq: Vec<(f64, String)> = Vec::new();
    for (i, (t, ms)) in samples.iter().enumerate() {
        if i == 0 {
            (min, max) = (*ms, *ms);
        } else {
            max = max.max(*ms);
            min = min.min(*ms);
        }
        let e = now - t;
        let label = if e < 60 {
            format!("{e}s")
        } else if e < 3600 {
            format!("{}m", e / 60)
        } else if e < 86400 {
            format!("{}h", e / 3600)
        } else {
            format!("{}d", e / 86400)
        };
        seq.push((*ms as f64, label));
    }
    let mut out = String::new();
    const COLS: usize = 80;
    const ROWS: usize = 4;
    const FILL: &[u8] = b"_o#";
    let (smin, smax) = (min as f64, max as f64);
    for (k, chunk) in seq.chunks(COLS).enumerate() {
        if k != 0 {
            out.push('\n');
        }
        let relmax = if smax - smin == 0.0 { 1.0 } else { smax - smin };
        let steps = (FILL.len() * ROWS) as i64;
        let mut row = 0;
        loop {
            let mut go = false;
            let mut chars = vec![b' '; chunk.len()];
            for (j, (v, label)) in chunk.iter().enumerate() {
                let step = (((v - smin) * steps as f64) / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < ROWS {
                    go = true;
                    let idx = step - ((ROWS - row - 1) * FILL.len()) as i64;
                    if idx >= 0 && (idx as usize) < FILL.len() {
                        chars[j] = FILL[idx as usize];
                    } else if idx >= FILL.len() as i64 {
                        chars[j] = b'|';
                    }
                } else {
                    if row - ROWS < 1 {
                        go = true;
                        break;
                    }
                    let lc = row - ROWS - 1;
                    if label.len() > lc {
                        go = true;
                        chars[j] = label.as_bytes()[lc];
                    }
                }
            }
            if !go {
                break;
            }
            row += 1;
            out.push_str(&String::from_utf8_lossy(&chars));
            out.push('\n');
        }
    }
    format!(
        "{event} - high {max} ms, low {min} ms (all time high {} ms)\n{}\n{out}",
        ts.max,
        "-".repeat(80)
    )
}

fn latency_graph(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let name = String::from_utf8_lossy(&args[2]).into_owned();
    let Some(ts) = ctx.server.latency.event(&name) else {
        ctx.err(&format!("ERR No samples available for event '{name}'"));
        return;
    };
    let graph = sparkline(&name, &ts);
    ctx.out.verbatim("txt", graph.as_bytes());
}

fn latency_doctor(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let report = latency_report(ctx.server);
    ctx.out.verbatim("txt", report.as_bytes());
}

/// Redis's createLatencyReport, for the events jcache records.
fn latency_report(server: &Shared) -> String {
    let threshold = server.latency.threshold_ms.load(Ordering::Relaxed);
    let events = server.latency.events();
    if events.is_empty() && threshold == 0 {
        return "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into();
    }
    let slower = server
        .config
        .get("slowlog-log-slower-than")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(10_000);
    let hz = server
        .config
        .get("hz")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(10);
    let mut r = String::new();
    let (mut slow_enable, mut slow_tune, mut slow_inspect) = (false, false, false);
    let (mut large, mut sched, mut advise_hz, mut mass) = (false, false, false, false);
    let mut advices = 0;
    for (n, (event, ts)) in events.iter().enumerate() {
        if n == 0 {
            r.push_str("Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n");
        }
        let samples = ts.ordered();
        let count = samples.len() as u64;
        let sum: u64 = samples.iter().map(|s| s.1).sum();
        let avg = sum.checked_div(count).unwrap_or(0);
        let oldest = samples.iter().map(|s| s.0).min().unwrap_or(0);
        let period = (unix_secs() - oldest).max(1);
        let mad = samples
            .iter()
            .map(|s| (s.1 as i64 - avg as i64).unsigned_abs())
            .sum::<u64>()
            .checked_div(count)
            .unwrap_or(0);
        let _ = write!(
            r,
            "{}. {event}: {count} latency spikes (average {avg}ms, mean deviation {mad}ms, period {:.2} sec). Worst all time event {}ms.",
            n + 1,
            period as f64 / count.max(1) as f64,
            ts.max
        );
        match event.as_str() {
            "command" => {
                if slower < 0 {
                    slow_enable = true;
                    advices += 1;
                } else if slower / 1000 > threshold as i64 {
                    slow_tune = true;
                    advices += 1;
                }
                slow_inspect = true;
                large = true;
                advices += 2;
            }
            "fast-command" => {
                sched = true;
                advices += 1;
            }
            "expire-cycle" => {
                advise_hz = true;
                large = true;
                advices += 2;
            }
            "eviction-del" => {
                large = true;
                advices += 1;
            }
            "eviction-cycle" => {
                mass = true;
                advices += 1;
            }
            _ => {}
        }
        r.push('\n');
    }
    if events.is_empty() && advices == 0 {
        r.push_str("Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n");
    } else if advices == 0 {
        r.push_str("\nWhile there are latency events logged, I'm not able to suggest any easy fix. Please use the Redis community to get some help, providing this report in your help request.\n");
    } else {
        r.push_str("\nI have a few advices for you:\n\n");
        if slow_enable {
            let _ = writeln!(r, "- There are latency issues with potentially slow commands you are using. Try to enable the Slow Log Redis feature using the command 'CONFIG SET slowlog-log-slower-than {}'. If the Slow log is disabled Redis is not able to log slow commands execution for you.", threshold * 1000);
        }
        if slow_tune {
            let _ = writeln!(r, "- Your current Slow Log configuration only logs events that are slower than your configured latency monitor threshold. Please use 'CONFIG SET slowlog-log-slower-than {}'.", threshold * 1000);
        }
        if slow_inspect {
            r.push_str("- Check your Slow Log to understand what are the commands you are running which are too slow to execute. Please check https://redis.io/commands/slowlog for more information.\n");
        }
        if sched {
            r.push_str("- The system is slow to execute Redis code paths not containing system calls. This usually means the system does not provide Redis CPU time to run for long periods. You should try to:\n  1) Lower the system load.\n  2) Use a computer / VM just for Redis if you are running other software in the same system.\n  3) Check if you have a \"noisy neighbour\" problem.\n  4) Check with 'redis-cli --intrinsic-latency 100' what is the intrinsic latency in your system.\n  5) Check if the problem is allocator-related by recompiling Redis with MALLOC=libc, if you are using Jemalloc. However this may create fragmentation problems.\n");
        }
        if advise_hz && hz < 100 {
            r.push_str("- In order to make the Redis keys expiring process more incremental, try to set the 'hz' configuration parameter to 100 using 'CONFIG SET hz 100'.\n");
        }
        if large {
            r.push_str("- Deleting, expiring or evicting (because of maxmemory policy) large objects is a blocking operation. If you have very large objects that are often deleted, expired, or evicted, try to fragment those objects into multiple smaller objects.\n");
        }
        if mass {
            r.push_str("- Sudden changes to the 'maxmemory' setting via 'CONFIG SET', or allocation of large objects via sets or sorted sets intersections, STORE option of SORT, Redis Cluster large keys migrations (RESTORE command), may create sudden memory pressure forcing the server to block trying to evict keys. \n");
        }
    }
    r
}

/// One command's cumulative distribution (LATENCY HISTOGRAM): calls, and
/// per power of two from 1024 ns the calls at most that long, in µs.
fn write_cdf(ctx: &mut Ctx<'_, '_>, counts: &[u64], total: u64) {
    use super::stats::hdr;
    ctx.out.map(2);
    ctx.out.bulk(b"calls");
    ctx.out.int(total as i64);
    ctx.out.bulk(b"histogram_usec");
    // hdr_iter_log_init(1024, 2): reporting levels 1023, 2047, 4095, ...
    let mut rows: Vec<(u64, u64)> = Vec::new();
    let (mut level, mut run, mut i, mut prev) = (1024u64, 0u64, 0usize, 0u64);
    while run < total && level <= (1u64 << 40) {
        let top = level - 1;
        while i < counts.len() && hdr::highest(i) <= top {
            run += counts[i];
            i += 1;
        }
        // A bucket straddling the level counts once its lowest value is in.
        if run > prev {
            rows.push((hdr::highest(hdr::index(top)) / 1000, run));
        }
        prev = run;
        level *= 2;
    }
    ctx.out.map(rows.len());
    for (us, n) in rows {
        ctx.out.int(us as i64);
        ctx.out.int(n as i64);
    }
}

fn latency_histogram(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let all = super::stats::histograms();
    let picked: Vec<&(String, Vec<u64>, u64)> = if args.len() == 2 {
        all.iter().collect()
    } else {
        let mut v: Vec<&(String, Vec<u64>, u64)> = Vec::new();
        for a in &args[2..] {
            let name = String::from_utf8_lossy(a).to_ascii_lowercase();
            for h in all.iter() {
                let parent = h.0.split('|').next().unwrap_or("");
                let hit = if name.contains('|') {
                    h.0 == name
                } else {
                    h.0 == name || parent == name
                };
                if hit && !v.iter().any(|x| x.0 == h.0) {
                    v.push(h);
                }
            }
        }
        v
    };
    ctx.out.map(picked.len());
    for (name, counts, total) in picked {
        ctx.out.bulk(name.as_bytes());
        write_cdf(ctx, counts, *total);
    }
}

fn latency_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    help(
        ctx,
        "LATENCY",
        &[
            "DOCTOR",
            "    Return a human readable latency analysis report.",
            "GRAPH <event>",
            "    Return an ASCII latency graph for the <event> class.",
            "HISTORY <event>",
            "    Return time-latency samples for the <event> class.",
            "LATEST",
            "    Return the latest latency samples for all events.",
            "RESET [<event> ...]",
            "    Reset latency data of one or more <event> classes.",
            "    (default: reset all data for all event classes)",
            "HISTOGRAM [COMMAND ...]",
            "    Return a cumulative distribution of latencies in the format of a histogram for the specified command names.",
            "    If no commands are specified then all histograms are replied.",
        ],
    );
}

/// The `# Latencystats` section of INFO.
pub fn info_latencystats(server: &Shared, out: &mut String) {
    use super::stats::hdr;
    let pcts: Vec<f64> = server
        .config
        .get("latency-tracking-info-percentiles")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();
    out.push_str("# Latencystats\r\n");
    for (name, counts, total) in super::stats::histograms() {
        let _ = write!(out, "latency_percentiles_usec_{name}:");
        for (j, p) in pcts.iter().enumerate() {
            let v = hdr::percentile(&counts, total, *p) as f64 / 1000.0;
            let _ = write!(out, "p{p}={v:.3}");
            if j + 1 != pcts.len() {
                out.push(',');
            }
        }
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
}

// ---- MONITOR, CLIENT PAUSE ----

fn monitor(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    if ctx.in_exec {
        ctx.err("ERR MONITOR isn't allowed for DENY BLOCKING client");
        return;
    }
    if ctx.client.monitor {
        return;
    }
    if ctx.client.subscriber.is_none() {
        let (s, rx) = crate::state::pubsub::Subscriber::new(ctx.client.info.clone());
        ctx.client.subscriber = Some(s);
        ctx.client.pubsub_rx = Some(rx);
    }
    let sub = ctx.client.subscriber.clone().expect("created above");
    ctx.client.monitor = true;
    ctx.client.info.meta.lock().monitor = true;
    ctx.server.monitors.add(&sub);
    ctx.out.ok();
}

fn client_pause(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 4 {
        ctx.err(super::util::SYNTAX);
        return;
    }
    let mut mode = pause::ALL;
    if args.len() == 4 {
        if is(&args[3], "write") {
            mode = pause::WRITE;
        } else if !is(&args[3], "all") {
            ctx.err("ERR CLIENT PAUSE mode must be WRITE or ALL");
            return;
        }
    }
    let ms = match parse_i64(&args[2]) {
        None => return ctx.err("ERR timeout is not an integer or out of range"),
        Some(n) if n < 0 => return ctx.err("ERR timeout is negative"),
        Some(n) => n as u64,
    };
    let server = ctx.server;
    // Bounded at 100 years (an Instant cannot hold much more).
    let d = Duration::from_millis(ms.min(100 * 365 * 86_400_000));
    let until = server.pause.pause(&server.db, d, mode);
    // Lift the pause at its end even if no command comes to check it.
    let weak = Arc::downgrade(server);
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(async move {
            tokio::time::sleep_until(until.into()).await;
            if let Some(s) = weak.upgrade() {
                s.pause.mode(&s.db);
            }
        });
    }
    ctx.out.ok();
}

fn client_unpause(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.server.pause.unpause(&ctx.server.db);
    ctx.out.ok();
}

// ---- MEMORY ----

fn memory_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    help(
        ctx,
        "MEMORY",
        &[
            "DOCTOR",
            "    Return memory problems reports.",
            "MALLOC-STATS",
            "    Return internal statistics report from the memory allocator.",
            "PURGE",
            "    Attempt to purge dirty pages for reclamation by the allocator.",
            "STATS",
            "    Return information about the memory usage of the server.",
            "USAGE <key> [SAMPLES <count>]",
            "    Return memory in bytes used by <key> and its value. Nested values are",
            "    sampled up to <count> times (default: 5, 0 means sample all).",
        ],
    );
}

/// The numbers MEMORY STATS and INFO memory share.
pub struct MemoryNumbers {
    pub used: u64,
    pub peak: u64,
    pub clients: u64,
    pub lua: u64,
    pub functions: u64,
    pub backlog: u64,
    pub keys: u64,
    pub rss: u64,
    pub alloc: crate::util::alloc::AllocStats,
}

impl MemoryNumbers {
    pub fn read(server: &Shared, keys: u64) -> MemoryNumbers {
        // `used_memory`: the keyspace's bytes, what maxmemory bounds.
        let used = server.db.used_memory() as u64;
        let clients = server.clients.memory();
        let c = *server.scripting.counts.lock();
        let lua = (c.bodies + c.vm_eval) as u64;
        let functions = (c.codes + c.vm_functions) as u64;
        let peak = server
            .memory_peak
            .fetch_max(used, Ordering::Relaxed)
            .max(used);
        MemoryNumbers {
            used,
            peak,
            clients,
            lua,
            functions,
            backlog: 0,
            keys,
            rss: super::server_cmds::rss_bytes(),
            alloc: crate::util::alloc::stats(),
        }
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn memory_stats(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let keys: usize = ctx
        .ks
        .key_counts()
        .unwrap_or_else(|| ctx.server.db.key_counts())
        .iter()
        .map(|(_, k, _)| k)
        .sum();
    let m = MemoryNumbers::read(ctx.server, keys as u64);
    let overhead = m.clients + m.lua + m.functions + m.backlog;
    let total = m.used + overhead;
    let a = m.alloc;
    let out = &mut *ctx.out;
    out.map(28);
    let int = |out: &mut crate::protocol::Reply, k: &str, v: u64| {
        out.bulk(k.as_bytes());
        out.int(v as i64);
    };
    int(out, "peak.allocated", m.peak + overhead);
    int(out, "total.allocated", total);
    int(out, "startup.allocated", 0);
    int(out, "replication.backlog", m.backlog);
    int(out, "clients.slaves", 0);
    int(out, "clients.normal", m.clients);
    int(out, "cluster.links", 0);
    int(out, "aof.buffer", 0);
    int(out, "lua.caches", m.lua);
    int(out, "functions.caches", m.functions);
    out.bulk(b"db.0");
    out.map(3);
    int(out, "overhead.hashtable.main", 0);
    int(out, "overhead.hashtable.expires", 0);
    int(out, "overhead.hashtable.slot-to-keys", 0);
    int(out, "overhead.total", overhead);
    int(out, "keys.count", m.keys);
    int(
        out,
        "keys.bytes-per-key",
        total.checked_div(m.keys).unwrap_or(0),
    );
    int(out, "dataset.bytes", m.used);
    let dbl = |out: &mut crate::protocol::Reply, k: &str, v: f64| {
        out.bulk(k.as_bytes());
        out.double(v);
    };
    dbl(out, "dataset.percentage", ratio(m.used * 100, total));
    dbl(
        out,
        "peak.percentage",
        ratio(total * 100, m.peak + overhead),
    );
    int(out, "allocator.allocated", a.allocated);
    int(out, "allocator.active", a.active);
    int(out, "allocator.resident", a.resident);
    dbl(
        out,
        "allocator-fragmentation.ratio",
        ratio(a.active, a.allocated),
    );
    int(
        out,
        "allocator-fragmentation.bytes",
        a.active.saturating_sub(a.allocated),
    );
    dbl(out, "allocator-rss.ratio", ratio(a.resident, a.active));
    int(
        out,
        "allocator-rss.bytes",
        a.resident.saturating_sub(a.active),
    );
    dbl(out, "rss-overhead.ratio", ratio(m.rss, a.resident));
    int(out, "rss-overhead.bytes", m.rss.saturating_sub(a.resident));
    dbl(out, "fragmentation", ratio(m.rss, total));
    int(out, "fragmentation.bytes", m.rss.saturating_sub(total));
}

fn memory_doctor(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let keys: usize = ctx
        .ks
        .key_counts()
        .unwrap_or_else(|| ctx.server.db.key_counts())
        .iter()
        .map(|(_, k, _)| k)
        .sum();
    let m = MemoryNumbers::read(ctx.server, keys as u64);
    let text = memory_report(&m);
    ctx.out.verbatim("txt", text.as_bytes());
}

/// Redis's getMemoryDoctorReport, from jcache's numbers.
fn memory_report(m: &MemoryNumbers) -> String {
    const MB10: u64 = 10 << 20;
    let a = &m.alloc;
    let over = |x: u64, y: u64, r: f64| ratio(x, y) > r && x.saturating_sub(y) > MB10;
    let empty = m.used < 5 << 20;
    let big_peak = !empty && ratio(m.peak, m.used) > 1.5;
    let high_frag = !empty && over(m.rss, m.used, 1.4);
    let alloc_frag = !empty && over(a.active, a.allocated, 1.1);
    let alloc_rss = !empty && over(a.resident, a.active, 1.1);
    let proc_rss = !empty && over(m.rss, a.resident, 1.1);
    if empty {
        return "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n".into();
    }
    if !(big_peak || high_frag || alloc_frag || alloc_rss || proc_rss) {
        return "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n".into();
    }
    let mut s =
        String::from("Sam, I detected a few issues in this Redis instance memory implants:\n\n");
    if big_peak {
        s.push_str(" * Peak memory: In the past this instance used more than 150% the memory that is currently using. The allocator is normally not able to release memory after a peak, so you can expect to see a big fragmentation ratio, however this is actually harmless and is only due to the memory peak, and if the Redis instance Resident Set Size (RSS) is currently bigger than expected, the memory will be used as soon as you fill the Redis instance with more data. If the memory peak was only occasional and you want to try to reclaim memory, please try the MEMORY PURGE command, otherwise the only other option is to shutdown and restart the instance.\n\n");
    }
    if high_frag {
        s.push_str(" * High total RSS: This instance has a memory fragmentation and RSS overhead greater than 1.4 (this means that the Resident Set Size of the Redis process is much larger than the sum of the logical allocations Redis performed). This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. If the problem is a large peak memory, then there is no issue. Otherwise, make sure you are using the Jemalloc allocator and not the default libc malloc. Note: The currently used allocator is \"jemalloc\".\n\n");
    }
    if alloc_frag {
        s.push_str(" * High allocator fragmentation: This instance has an allocator external fragmentation greater than 1.1. This problem is usually due either to a large peak memory (check if there is a peak memory entry above in the report) or may result from a workload that causes the allocator to fragment memory a lot. You can try enabling 'activedefrag' config option.\n\n");
    }
    if alloc_rss {
        s.push_str(" * High allocator RSS overhead: This instance has an RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the allocator is much larger than the sum what the allocator actually holds). This problem is usually due to a large peak memory (check if there is a peak memory entry above in the report), you can try the MEMORY PURGE command to reclaim it.\n\n");
    }
    if proc_rss {
        s.push_str(" * High process RSS overhead: This instance has non-allocator RSS memory overhead is greater than 1.1 (this means that the Resident Set Size of the Redis process is much larger than the RSS the allocator holds). This problem may be due to Lua scripts or Modules.\n\n");
    }
    s.push_str("I'm here to keep you safe, Sam. I want to help you.\n");
    s
}

fn memory_malloc_stats(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let text = crate::util::alloc::stats_text();
    ctx.out.verbatim("txt", text.as_bytes());
}

fn memory_purge(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    crate::util::alloc::purge();
    ctx.out.ok();
}
