//! FUNCTION (LOAD, LIST, DELETE, FLUSH, DUMP, RESTORE, STATS, KILL, HELP),
//! FCALL and FCALL_RO. The libraries live in the shared VM
//! (`state::scripting`); a function runs as every script does
//! ([`super::scripting::run`]).

use bytes::Bytes;

use super::flags::*;
use super::scripting::{kill_reply, numkeys_keys, run, RunInfo};
use super::util::parse_i64;
use super::{Command, Ctx, KeySpec};
use crate::engine::{Mutation, ScriptOp};
use crate::script::{LibraryInfo, ScriptFlags, Vm};
use crate::state::scripting::BUSY_EVAL;

pub static COMMANDS: &[Command] = &[
    Command::new(
        "fcall",
        -3,
        NOSCRIPT | SCRIPT | STALE | MAY_REPLICATE,
        KeySpec::AllShards(numkeys_keys),
        fcall,
        "scripting",
    ),
    Command::new(
        "fcall_ro",
        -3,
        NOSCRIPT | SCRIPT | STALE | READONLY,
        KeySpec::AllShards(numkeys_keys),
        fcall_ro,
        "scripting",
    ),
    Command::container("function", "scripting", FUNCTION_SUBCOMMANDS),
];

static FUNCTION_SUBCOMMANDS: &[Command] = &[
    Command::new(
        "load",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        KeySpec::None,
        function_load,
        "scripting",
    ),
    Command::new(
        "list",
        -2,
        NOSCRIPT,
        KeySpec::None,
        function_list,
        "scripting",
    ),
    Command::new(
        "delete",
        3,
        WRITE | NOSCRIPT,
        KeySpec::None,
        function_delete,
        "scripting",
    ),
    Command::new(
        "flush",
        -2,
        WRITE | NOSCRIPT,
        KeySpec::None,
        function_flush,
        "scripting",
    ),
    Command::new(
        "dump",
        2,
        NOSCRIPT,
        KeySpec::None,
        function_dump,
        "scripting",
    ),
    Command::new(
        "restore",
        -3,
        WRITE | DENYOOM | NOSCRIPT,
        KeySpec::None,
        function_restore,
        "scripting",
    ),
    Command::new(
        "stats",
        2,
        NOSCRIPT | ALLOW_BUSY,
        KeySpec::None,
        function_stats,
        "scripting",
    ),
    Command::new(
        "kill",
        2,
        NOSCRIPT | ALLOW_BUSY,
        KeySpec::None,
        function_kill,
        "scripting",
    ),
    Command::new(
        "help",
        2,
        LOADING | STALE,
        KeySpec::None,
        function_help,
        "scripting",
    ),
];

fn fcall(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    fcall_generic(ctx, args, false)
}

fn fcall_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    fcall_generic(ctx, args, true)
}

fn fcall_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], ro: bool) {
    let server = ctx.server;
    let mut vm = server.scripting.vm.lock();
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let Some((_, info)) = vm.function(&name) else {
        return ctx.err("ERR Function not found");
    };
    // FUNCTION STATS shows the name as registered (lookups ignore case).
    let name = info.name.clone();
    // FCALL's numkeys checks, in Redis's words (not EVAL's).
    let Some(n) = parse_i64(&args[2]) else {
        return ctx.err("ERR Bad number of keys provided");
    };
    if n > args.len() as i64 - 3 {
        return ctx.err("ERR Number of keys can't be greater than number of args");
    }
    if n < 0 {
        return ctx.err("ERR Number of keys can't be negative");
    }
    let (keys, argv) = args[3..].split_at(n as usize);
    let running = RunInfo {
        eval: false,
        name: &name,
        command: args,
    };
    // Functions always declare their flags (none = may write).
    let flags = ScriptFlags {
        shebang: true,
        ..info.flags
    };
    run(
        ctx,
        running,
        flags,
        ro,
        |vm, host, out| vm.run_function(&name, keys, argv, host, out),
        &mut vm,
    );
}

/// Keeps the counts read without the VM's lock.
fn recount(ctx: &Ctx<'_, '_>, vm: &Vm) {
    ctx.server.scripting.recount(vm);
}

/// Logs a change to the libraries for replication.
fn log(ctx: &mut Ctx<'_, '_>, op: ScriptOp) {
    ctx.ks.log_only(Mutation::Script(op));
}

fn function_load(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut replace = false;
    let mut pos = 2;
    while pos < args.len() - 1 {
        let a = &args[pos];
        pos += 1;
        if a.eq_ignore_ascii_case(b"replace") {
            replace = true;
            continue;
        }
        return ctx.err(&format!(
            "ERR Unknown option given: {}",
            String::from_utf8_lossy(a)
        ));
    }
    if pos >= args.len() {
        return ctx.err("ERR Function code is missing");
    }
    let mut vm = ctx.server.scripting.vm.lock();
    match vm.load_library(args[pos].clone(), replace) {
        Ok(lib) => {
            recount(ctx, &vm);
            log(ctx, ScriptOp::LoadLibrary(args[pos].clone()));
            ctx.out.bulk(lib.name.as_bytes());
        }
        Err(e) => ctx.err(&e),
    }
}

fn function_list(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut with_code = false;
    let mut pattern: Option<&Bytes> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && a.eq_ignore_ascii_case(b"withcode") {
            with_code = true;
        } else if pattern.is_none() && a.eq_ignore_ascii_case(b"libraryname") {
            if i >= args.len() - 1 {
                return ctx.err("ERR library name argument was not given");
            }
            i += 1;
            pattern = Some(&args[i]);
        } else {
            return ctx.err(&format!(
                "ERR Unknown argument {}",
                String::from_utf8_lossy(a)
            ));
        }
        i += 1;
    }
    let libs: Vec<LibraryInfo> = ctx
        .server
        .scripting
        .vm
        .lock()
        .libraries()
        .into_iter()
        .filter(|l| {
            pattern.is_none_or(|p| crate::util::glob::glob_match(p, l.name.as_bytes(), true))
        })
        .collect();
    let out = &mut *ctx.out;
    out.array(libs.len());
    for l in &libs {
        out.map(if with_code { 4 } else { 3 });
        out.bulk(b"library_name");
        out.bulk(l.name.as_bytes());
        out.bulk(b"engine");
        out.bulk(l.engine.as_bytes());
        out.bulk(b"functions");
        out.array(l.functions.len());
        for f in &l.functions {
            out.map(3);
            out.bulk(b"name");
            out.bulk(f.name.as_bytes());
            out.bulk(b"description");
            match &f.description {
                Some(d) => out.bulk(d.as_bytes()),
                None => out.null(),
            }
            out.bulk(b"flags");
            let names = flag_names(&f.flags);
            out.set(names.len());
            for n in names {
                out.bulk(n.as_bytes());
            }
        }
        if with_code {
            out.bulk(b"library_code");
            out.bulk(&l.code);
        }
    }
}

/// Redis's addReplySubcommandSyntaxError.
fn subcommand_syntax_error(args: &[Bytes]) -> String {
    let sub: String = String::from_utf8_lossy(&args[1])
        .chars()
        .take(128)
        .collect();
    format!("ERR unknown subcommand or wrong number of arguments for '{sub}'. Try FUNCTION HELP.")
}

/// A function's flags as FUNCTION LIST names them, in Redis's order.
fn flag_names(f: &ScriptFlags) -> Vec<&'static str> {
    [
        (f.no_writes, "no-writes"),
        (f.allow_oom, "allow-oom"),
        (f.allow_stale, "allow-stale"),
        (f.no_cluster, "no-cluster"),
        (f.allow_cross_slot_keys, "allow-cross-slot-keys"),
    ]
    .into_iter()
    .filter_map(|(on, n)| on.then_some(n))
    .collect()
}

fn function_delete(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut vm = ctx.server.scripting.vm.lock();
    match vm.delete_library(&String::from_utf8_lossy(&args[2])) {
        Ok(()) => {
            recount(ctx, &vm);
            log(ctx, ScriptOp::DeleteLibrary(args[2].clone()));
            ctx.out.ok();
        }
        Err(e) => ctx.err(&e),
    }
}

fn function_flush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 3 {
        return ctx.err(&subcommand_syntax_error(args));
    }
    if args.len() == 3
        && !args[2].eq_ignore_ascii_case(b"sync")
        && !args[2].eq_ignore_ascii_case(b"async")
    {
        return ctx.err("ERR FUNCTION FLUSH only supports SYNC|ASYNC option");
    }
    let mut vm = ctx.server.scripting.vm.lock();
    vm.flush_libraries();
    recount(ctx, &vm);
    log(ctx, ScriptOp::FlushLibraries);
    ctx.out.ok();
}

fn function_dump(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let libs = ctx.server.scripting.vm.lock().libraries();
    let payload = crate::rdb::encode_functions(libs.iter().map(|l| &l.code[..]));
    ctx.out.bulk(&payload);
}

fn function_restore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if args.len() > 4 {
        return ctx.err(&subcommand_syntax_error(args));
    }
    #[derive(PartialEq)]
    enum Policy {
        Append,
        Replace,
        Flush,
    }
    let policy =
        match args.get(3) {
            None => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"append") => Policy::Append,
            Some(p) if p.eq_ignore_ascii_case(b"replace") => Policy::Replace,
            Some(p) if p.eq_ignore_ascii_case(b"flush") => Policy::Flush,
            Some(_) => return ctx.err(
                "ERR Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ),
        };
    let codes = match crate::rdb::decode_functions(&args[2]) {
        Ok(c) => c,
        Err(e) => return ctx.err(e),
    };
    let mut vm = ctx.server.scripting.vm.lock();
    // All or nothing: on an error, the libraries are put back as they were.
    let before = vm.libraries();
    if policy == Policy::Flush {
        vm.flush_libraries();
    }
    let mut ops = Vec::new();
    if policy == Policy::Flush {
        ops.push(ScriptOp::FlushLibraries);
    }
    for code in codes {
        let code = Bytes::from(code);
        if let Err(mut e) = vm.load_library(code.clone(), policy == Policy::Replace) {
            // RESTORE words a collision without quotes (Redis's libraryJoin).
            if let Some(name) = e
                .strip_prefix("ERR Library '")
                .and_then(|r| r.strip_suffix("' already exists"))
            {
                e = format!("ERR Library {name} already exists");
            }
            vm.flush_libraries();
            for l in before {
                let _ = vm.load_library(l.code, false);
            }
            recount(ctx, &vm);
            return ctx.err(&e);
        }
        ops.push(ScriptOp::LoadLibrary(code));
    }
    recount(ctx, &vm);
    for op in ops {
        log(ctx, op);
    }
    ctx.out.ok();
}

fn function_stats(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let running = ctx.server.scripting.running();
    if running.as_ref().is_some_and(|r| r.eval) {
        return ctx.err(BUSY_EVAL);
    }
    let counts = *ctx.server.scripting.counts.lock();
    let out = &mut *ctx.out;
    out.map(2);
    out.bulk(b"running_script");
    match running {
        None => out.null(),
        Some(r) => {
            out.map(3);
            out.bulk(b"name");
            out.bulk(r.name.as_bytes());
            out.bulk(b"command");
            out.array(r.command.len());
            for a in &r.command {
                out.bulk(a);
            }
            out.bulk(b"duration_ms");
            out.int(r.started.elapsed().as_millis() as i64);
        }
    }
    out.bulk(b"engines");
    out.map(1);
    out.bulk(b"LUA");
    out.map(2);
    out.bulk(b"libraries_count");
    out.int(counts.libraries as i64);
    out.bulk(b"functions_count");
    out.int(counts.functions as i64);
}

fn function_kill(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    kill_reply(ctx, false)
}

fn function_help(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    const HELP: &[&str] = &[
        "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "LOAD [REPLACE] <FUNCTION CODE>",
        "    Create a new library with the given library name and code.",
        "DELETE <LIBRARY NAME>",
        "    Delete the given library.",
        "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
        "    Return general information on all the libraries:",
        "    * Library name",
        "    * The engine used to run the Library",
        "    * Library description",
        "    * Functions list",
        "    * Library code (if WITHCODE is given)",
        "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
        "STATS",
        "    Return information about the current function running:",
        "    * Function name",
        "    * Command used to run the function",
        "    * Duration in MS that the function is running",
        "    If no function is running, return nil",
        "    In addition, returns a list of available engines.",
        "KILL",
        "    Kill the current running function.",
        "FLUSH [ASYNC|SYNC]",
        "    Delete all the libraries.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the libraries.",
        "    * SYNC: Synchronously flush the libraries.",
        "DUMP",
        "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
        "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
        "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
        "    control how to handle existing libraries (default APPEND):",
        "    * FLUSH: delete all existing libraries.",
        "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
        "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
        "      libraries with the new libraries (notice that even on this option there is a chance of failure",
        "      in case of functions name collision with another library).",
        "HELP",
        "    Prints this help.",
    ];
    ctx.out.array(HELP.len());
    for l in HELP {
        ctx.out.simple(l);
    }
}
