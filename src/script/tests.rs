//! Unit tests of the scripting module against a fake [`Host`]: replies are
//! scripted per command name, so every conversion and error path can be
//! driven without the command layer.

use bytes::Bytes;

use super::{Host, ScriptFlags, Vm};
use crate::protocol::Reply;

#[derive(Default)]
struct FakeHost {
    /// (command name, RESP2 reply, RESP3 reply)
    replies: Vec<(&'static str, &'static [u8], &'static [u8])>,
    calls: Vec<(Vec<Bytes>, bool)>,
    logs: Vec<(i32, String)>,
    repl: Vec<u8>,
    interrupts: usize,
    /// Stop the script at this interrupt count.
    kill_at: Option<usize>,
}

impl Host for FakeHost {
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Bytes {
        self.calls.push((args.to_vec(), resp3));
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if name == "echo" {
            let mut r = Reply::new(resp3);
            r.bulk(&args[1]);
            return r.buf.freeze();
        }
        for (n, r2, r3) in &self.replies {
            if *n == name {
                return Bytes::from_static(if resp3 { r3 } else { r2 });
            }
        }
        Bytes::from_static(b"-ERR unknown command\r\n")
    }
    fn log(&mut self, level: i32, msg: &str) {
        self.logs.push((level, msg.to_string()));
    }
    fn interrupt(&mut self) -> Option<String> {
        self.interrupts += 1;
        match self.kill_at {
            Some(n) if self.interrupts >= n => {
                Some("Script killed by user with SCRIPT KILL...".into())
            }
            _ => None,
        }
    }
    fn set_repl(&mut self, flags: u8) {
        self.repl.push(flags);
    }
}

fn eval_with(
    vm: &mut Vm,
    host: &mut FakeHost,
    body: &str,
    keys: &[&str],
    argv: &[&str],
    resp3: bool,
) -> String {
    let sha = match vm.load_script(Bytes::copy_from_slice(body.as_bytes())) {
        Ok(sha) => sha,
        Err(e) => return format!("-{e}\r\n"),
    };
    let keys: Vec<Bytes> = keys
        .iter()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()))
        .collect();
    let argv: Vec<Bytes> = argv
        .iter()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()))
        .collect();
    let mut out = Reply::new(resp3);
    vm.run_script(&sha, &keys, &argv, host, &mut out);
    String::from_utf8_lossy(&out.buf).into_owned()
}

fn eval(body: &str) -> String {
    eval_with(
        &mut Vm::new(),
        &mut FakeHost::default(),
        body,
        &[],
        &[],
        false,
    )
}

fn host_with(replies: Vec<(&'static str, &'static [u8], &'static [u8])>) -> FakeHost {
    FakeHost {
        replies,
        ..FakeHost::default()
    }
}

// ---- Lua -> reply -------------------------------------------------------------

#[test]
fn lua_values_convert_to_replies() {
    assert_eq!(eval("return 100.5"), ":100\r\n");
    assert_eq!(eval("return -3.9"), ":-3\r\n");
    assert_eq!(eval("return 'hi'"), "$2\r\nhi\r\n");
    assert_eq!(eval("return true"), ":1\r\n");
    assert_eq!(eval("return false"), "$-1\r\n");
    assert_eq!(eval("return nil"), "$-1\r\n");
    assert_eq!(eval("return {ok='fine'}"), "+fine\r\n");
    assert_eq!(eval("return {ok='a\\r\\nb'}"), "+a  b\r\n");
    assert_eq!(
        eval("return {err='ERR this is an error'}"),
        "-ERR this is an error\r\n"
    );
    assert_eq!(eval("return {err='oops'}"), "-oops\r\n");
    assert_eq!(
        eval("return {1,2,3,'ciao',{1,2}}"),
        "*5\r\n:1\r\n:2\r\n:3\r\n$4\r\nciao\r\n*2\r\n:1\r\n:2\r\n"
    );
    assert_eq!(eval("return {1,2,nil,4}"), "*2\r\n:1\r\n:2\r\n");
    assert_eq!(eval("return {double=3.5}"), "$3\r\n3.5\r\n");
    assert_eq!(eval("return {big_number='123'}"), "$3\r\n123\r\n");
    assert_eq!(
        eval("return {verbatim_string={format='txt', string='hey'}}"),
        "$3\r\nhey\r\n"
    );
    assert_eq!(eval("return {map={a=1}}"), "*2\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(eval("return {set={x=true}}"), "*1\r\n$1\r\nx\r\n");
    assert_eq!(eval("return function() end"), "$-1\r\n");
}

#[test]
fn resp3_types_reach_a_resp3_client() {
    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let mut run = |body: &str| eval_with(&mut vm, &mut host, body, &[], &[], true);
    assert_eq!(run("return {double=3.5}"), ",3.5\r\n");
    assert_eq!(run("return {big_number='123'}"), "(123\r\n");
    assert_eq!(
        run("return {verbatim_string={format='txt', string='hey'}}"),
        "=7\r\ntxt:hey\r\n"
    );
    assert_eq!(run("return {map={a=1}}"), "%1\r\n$1\r\na\r\n:1\r\n");
    assert_eq!(run("return {set={x=true}}"), "~1\r\n$1\r\nx\r\n");
    // RESP2 script rules unless the script asked for RESP3.
    assert_eq!(run("return false"), "_\r\n");
    assert_eq!(run("redis.setresp(3); return false"), "#f\r\n");
    assert_eq!(run("redis.setresp(3); return true"), "#t\r\n");
}

#[test]
fn a_recursive_table_stops_at_the_nesting_limit() {
    let r = eval("local a = {}; local b = {a}; a[1] = b; return a");
    assert!(r.starts_with("*1\r\n*1\r\n"));
    assert!(
        r.ends_with("-ERR reached lua stack limit\r\n"),
        "{}",
        &r[r.len() - 60..]
    );
}

// ---- reply -> Lua -------------------------------------------------------------

#[test]
fn resp2_replies_convert_to_lua_values() {
    let mut vm = Vm::new();
    let mut host = host_with(vec![
        ("int", b":42\r\n", b":42\r\n"),
        ("nilbulk", b"$-1\r\n", b"_\r\n"),
        ("nilarr", b"*-1\r\n", b"_\r\n"),
        ("status", b"+PONG\r\n", b"+PONG\r\n"),
        ("arr", b"*3\r\n$1\r\na\r\n$-1\r\n$1\r\nc\r\n", b"*0\r\n"),
        ("err", b"-WRONGTYPE bad\r\n", b"-WRONGTYPE bad\r\n"),
    ]);
    let mut run = |body: &str| eval_with(&mut vm, &mut host, body, &[], &[], false);
    assert_eq!(
        run("return type(redis.call('int')) .. redis.call('int')"),
        "$8\r\nnumber42\r\n"
    );
    assert_eq!(run("return redis.call('nilbulk') == false"), ":1\r\n");
    assert_eq!(run("return redis.call('nilarr') == false"), ":1\r\n");
    assert_eq!(run("return redis.call('status').ok"), "$4\r\nPONG\r\n");
    assert_eq!(run("return redis.call('status')"), "+PONG\r\n");
    // A nil bulk inside an array is `false`, so the array keeps its length.
    assert_eq!(
        run("local t = redis.call('arr'); return {#t, tostring(t[2])}"),
        "*2\r\n:3\r\n$5\r\nfalse\r\n"
    );
    assert_eq!(
        run("return redis.pcall('err').err"),
        "$13\r\nWRONGTYPE bad\r\n"
    );
    assert_eq!(run("return redis.pcall('err')"), "-WRONGTYPE bad\r\n");
}

#[test]
fn resp3_replies_convert_after_setresp_3() {
    let mut vm = Vm::new();
    let mut host = host_with(vec![
        (
            "map",
            b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n",
            b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n",
        ),
        ("set", b"*1\r\n$1\r\nm\r\n", b"~1\r\n$1\r\nm\r\n"),
        ("dbl", b"$3\r\n1.5\r\n", b",1.5\r\n"),
        ("null", b"$-1\r\n", b"_\r\n"),
        ("bool", b":1\r\n", b"#t\r\n"),
        ("big", b"$3\r\n123\r\n", b"(123\r\n"),
        ("verb", b"$2\r\nhi\r\n", b"=6\r\ntxt:hi\r\n"),
        ("attr", b":1\r\n", b"|1\r\n+a\r\n+b\r\n:7\r\n"),
    ]);
    let mut run = |body: &str| {
        eval_with(
            &mut vm,
            &mut host,
            &format!("redis.setresp(3); {body}"),
            &[],
            &[],
            false,
        )
    };
    assert_eq!(run("return redis.call('map').map.f"), "$1\r\nv\r\n");
    assert_eq!(
        run("return tostring(redis.call('set').set.m)"),
        "$4\r\ntrue\r\n"
    );
    assert_eq!(
        run("return tostring(redis.call('dbl').double)"),
        "$3\r\n1.5\r\n"
    );
    assert_eq!(run("return tostring(redis.call('null'))"), "$3\r\nnil\r\n");
    assert_eq!(run("return tostring(redis.call('bool'))"), "$4\r\ntrue\r\n");
    assert_eq!(run("return redis.call('big').big_number"), "$3\r\n123\r\n");
    assert_eq!(
        run("local v = redis.call('verb').verbatim_string; return v.format .. '|' .. v.string"),
        "$6\r\ntxt|hi\r\n"
    );
    assert_eq!(run("return redis.call('attr')"), ":7\r\n");
    // Round trip: the map goes back to a RESP2 client as a flat array.
    assert_eq!(
        run("return redis.call('map')"),
        "*2\r\n$1\r\nf\r\n$1\r\nv\r\n"
    );
    // The host was asked for RESP3 only after setresp(3).
    assert!(host.calls.iter().all(|(_, resp3)| *resp3));
}

#[test]
fn call_arguments_follow_redis_rules() {
    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let r = eval_with(
        &mut vm,
        &mut host,
        "return redis.call('echo', 3.0, 0.1)",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "$1\r\n3\r\n");
    assert_eq!(
        host.calls[0].0[2],
        Bytes::from_static(b"0.10000000000000001")
    );
    // Integral numbers too go through "%.17g", as in Redis 7.0.
    let r = eval_with(
        &mut vm,
        &mut host,
        "return redis.call('echo', 1e18)",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "$5\r\n1e+18\r\n");
    let r = eval_with(
        &mut vm,
        &mut host,
        "return redis.call('echo', {})",
        &[],
        &[],
        false,
    );
    assert!(
        r.starts_with("-ERR Lua redis lib command arguments must be strings or integers script: "),
        "{r}"
    );
    let r = eval_with(&mut vm, &mut host, "return redis.call()", &[], &[], false);
    assert!(
        r.starts_with("-ERR Please specify at least one argument for this redis lib call"),
        "{r}"
    );
    // redis.pcall returns those errors instead of raising them.
    let r = eval_with(
        &mut vm,
        &mut host,
        "local e = redis.pcall('echo', {}) return {type(e), e.err}",
        &[],
        &[],
        false,
    );
    assert_eq!(
        r,
        "*2\r\n$5\r\ntable\r\n$63\r\nERR Lua redis lib command arguments must be strings or integers\r\n"
    );
}

#[test]
fn keys_and_argv_are_globals_for_eval() {
    let mut vm = Vm::new();
    let r = eval_with(
        &mut vm,
        &mut FakeHost::default(),
        "return {KEYS[1],KEYS[2],ARGV[1],ARGV[2]}",
        &["a", "b"],
        &["c", "d"],
        false,
    );
    assert_eq!(r, "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n");
}

// ---- errors -------------------------------------------------------------------

#[test]
fn redis_call_errors_carry_the_script_and_line() {
    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let body = "local x = 1\nreturn redis.call('nosuch')";
    let sha = Vm::sha1hex(body.as_bytes());
    let r = eval_with(&mut vm, &mut host, body, &[], &[], false);
    assert_eq!(
        r,
        format!("-ERR unknown command script: {sha}, on @user_script:2.\r\n")
    );
}

#[test]
fn runtime_errors_have_redis_7_format() {
    let sha = Vm::sha1hex(b"return a");
    assert_eq!(
        eval("return a"),
        format!(
            "-ERR user_script:1: Script attempted to access nonexistent global variable 'a' script: {sha}, on @user_script:1.\r\n"
        )
    );
    let r = eval("error('boom')");
    assert!(r.starts_with("-ERR user_script:1: boom script: "), "{r}");
    let r = eval("return math.random(0)");
    assert!(
        r.starts_with(
            "-ERR user_script:1: bad argument #1 to 'random' (interval is empty) script: "
        ),
        "{r}"
    );
    let r = eval("error({err='MY_CODE custom'})");
    assert!(r.starts_with("-MY_CODE custom script: "), "{r}");
}

#[test]
fn compile_errors_are_worded_as_redis_7_0() {
    let mut vm = Vm::new();
    let e = vm.load_script(Bytes::from_static(b"return (")).unwrap_err();
    assert!(
        e.starts_with("ERR Error compiling script (new function): user_script:1: "),
        "{e}"
    );
}

#[test]
fn pcall_catches_redis_call_errors() {
    assert_eq!(
        eval("local ok, e = pcall(function() return redis.call('nosuch') end); return {tostring(ok), e}"),
        "*2\r\n$5\r\nfalse\r\n$19\r\nERR unknown command\r\n"
    );
    assert_eq!(
        eval("local ok, e = pcall(function() return foo end); return e"),
        "$75\r\nuser_script:1: Script attempted to access nonexistent global variable 'foo'\r\n"
    );
    assert_eq!(
        eval("return redis.pcall('nosuch')['err']"),
        "$19\r\nERR unknown command\r\n"
    );
}

#[test]
fn error_and_status_reply_helpers() {
    assert_eq!(
        eval("return redis.error_reply('MY_ERR_CODE custom msg')"),
        "-MY_ERR_CODE custom msg\r\n"
    );
    assert_eq!(eval("return redis.error_reply('-X y')"), "-X y\r\n");
    assert_eq!(eval("return redis.error_reply('plain')"), "-ERR plain\r\n");
    assert_eq!(eval("return redis.error_reply('')"), "-ERR \r\n");
    assert_eq!(
        eval("return redis.status_reply('MY_OK custom')"),
        "+MY_OK custom\r\n"
    );
    assert_eq!(
        eval("return redis.status_reply(1)"),
        "-ERR wrong number or type of arguments\r\n"
    );
}

#[test]
fn redis_api_functions() {
    assert_eq!(
        eval("return redis.sha1hex('')"),
        "$40\r\nda39a3ee5e6b4b0d3255bfef95601890afd80709\r\n"
    );
    assert_eq!(
        eval("return redis.sha1hex('Pizza & Mandolino')"),
        "$40\r\n74822d82031af7493c20eefa13bd07ec4fada82f\r\n"
    );
    assert_eq!(eval("return redis.REDIS_VERSION"), "$6\r\n7.0.15\r\n");
    assert_eq!(eval("return redis.REDIS_VERSION_NUM"), ":458767\r\n");
    assert_eq!(eval("return redis.replicate_commands()"), ":1\r\n");
    assert_eq!(eval("return redis.breakpoint()"), "$-1\r\n");
    assert!(eval("redis.setresp(4)").starts_with("-ERR RESP version must be 2 or 3. script: "));
    assert!(eval("redis.log()").starts_with("-ERR redis.log() requires two arguments or more."));
    assert!(eval("redis.log(9, 'x')").starts_with("-ERR Invalid debug level."));
    assert!(eval("redis.set_repl(9)").starts_with("-ERR Invalid replication flags."));

    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let r = eval_with(
        &mut vm,
        &mut host,
        "redis.log(redis.LOG_WARNING, 'a', 1, nil, 'b'); redis.set_repl(redis.REPL_ALL)",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "$-1\r\n");
    assert_eq!(host.logs, vec![(3, "a 1 b".to_string())]);
    assert_eq!(host.repl, vec![3]);
}

#[test]
fn math_random_is_redis_lrand48_and_persists_across_scripts() {
    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let a = eval_with(
        &mut vm,
        &mut host,
        "math.randomseed(42); return {math.random(100), math.random(100)}",
        &[],
        &[],
        false,
    );
    let b = eval_with(
        &mut vm,
        &mut host,
        "math.randomseed(42); return {math.random(100), math.random(100)}",
        &[],
        &[],
        false,
    );
    assert_eq!(a, b);
    let c = eval_with(
        &mut vm,
        &mut host,
        "return math.random(100)",
        &[],
        &[],
        false,
    );
    let d = eval_with(
        &mut vm,
        &mut host,
        "return math.random(100)",
        &[],
        &[],
        false,
    );
    assert_ne!(c, d, "the sequence goes on across scripts");
    // Values printed by Redis's own rand.c compiled as C.
    let mut r = super::rand48::Rand48::default();
    assert_eq!((r.next(), r.next()), (851401618, 1804928587));
    r.seed(42);
    assert_eq!(r.next(), 1598855263);
}

// ---- sandbox ------------------------------------------------------------------

#[test]
fn globals_are_protected() {
    assert!(eval("a = 10")
        .starts_with("-ERR user_script:1: Attempt to modify a readonly table script: "));
    for body in [
        "setmetatable(_G, {})",
        "local g = getmetatable(_G); g.__index = {}",
        "redis = function() return 1 end",
        "_G = {}",
        "redis.call = function() return 1 end",
        "string.upper = nil",
        "math.x = 1",
        "table.insert(redis, 1)",
        "rawset(redis, 'call', 1)",
        "getmetatable('').__index.upper = 1",
        "getfenv(tostring).x = 1",
        "loadstring('y = 1')()",
        "local f, s = pairs(redis); s.call = 1",
        // The metatable shown is not the one reads go through (that one
        // holds the real globals table).
        "if type(getmetatable(_G).__index) == 'table' then return 'leak' end \
         error('Attempt to modify a readonly table')",
        "setmetatable(getfenv(0), nil)",
    ] {
        let r = eval(body);
        assert!(
            r.contains("Attempt to modify a readonly table"),
            "{body}: {r}"
        );
    }
    for name in [
        "loadfile", "dofile", "print", "io", "os", "debug", "require",
    ] {
        let r = eval(&format!("return {name}"));
        assert!(
            r.contains(&format!(
                "Script attempted to access nonexistent global variable '{name}'"
            )),
            "{name}: {r}"
        );
    }
}

#[test]
fn protected_tables_still_read_and_iterate() {
    assert_eq!(
        eval("return string.upper('a') .. ('b'):upper()"),
        "$2\r\nAB\r\n"
    );
    assert_eq!(
        eval("local n = 0; for k in pairs(redis) do n = n + 1 end; return n > 10"),
        ":1\r\n"
    );
    assert_eq!(eval("return rawget(_G, 'nosuch') == nil"), ":1\r\n");
    assert_eq!(eval("return type(_G.redis.call)"), "$8\r\nfunction\r\n");
    assert_eq!(
        eval("local t = {}; t.x = 1; setmetatable(t, {}); return t.x"),
        ":1\r\n"
    );
}

#[test]
fn binary_chunks_do_not_load() {
    let r = eval("return loadstring(string.dump(function() return 1 end))()");
    assert!(r.contains("attempt to call a nil value"), "{r}");
}

#[test]
fn script_flush_recreates_the_eval_state() {
    let mut vm = Vm::new();
    let mut host = FakeHost::default();
    let sha = vm.load_script(Bytes::from_static(b"return 1")).unwrap();
    assert!(vm.script(&sha.to_ascii_uppercase()).is_some());
    vm.flush_scripts();
    assert!(vm.script(&sha).is_none());
    let mut out = Reply::new(false);
    vm.run_script(&sha, &[], &[], &mut host, &mut out);
    assert!(out.buf.starts_with(b"-NOSCRIPT"));
}

// ---- interruption ---------------------------------------------------------------

#[test]
fn interrupt_stops_an_infinite_loop() {
    let mut host = FakeHost {
        kill_at: Some(3),
        ..FakeHost::default()
    };
    let r = eval_with(
        &mut Vm::new(),
        &mut host,
        "while true do end",
        &[],
        &[],
        false,
    );
    assert!(
        r.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "),
        "{r}"
    );
    assert!(r.ends_with("on @user_script:1.\r\n"), "{r}");
    assert_eq!(host.interrupts, 3);
}

#[test]
fn interrupt_cannot_be_swallowed_by_pcall() {
    for body in [
        "local f = function() while 1 do end end while 1 do pcall(f) end",
        "while 1 do xpcall(function() while 1 do end end, function(e) return e end) end",
        "while 1 do coroutine.resume(coroutine.create(function() while 1 do end end)) end",
        "while 1 do pcall(redis.call, 'echo', 'x') end",
    ] {
        let mut host = FakeHost {
            kill_at: Some(2),
            ..FakeHost::default()
        };
        let r = eval_with(&mut Vm::new(), &mut host, body, &[], &[], false);
        assert!(r.contains("Script killed by user"), "{body}: {r}");
    }
}

#[test]
fn vm_is_usable_after_a_killed_script() {
    let mut vm = Vm::new();
    let mut host = FakeHost {
        kill_at: Some(1),
        ..FakeHost::default()
    };
    eval_with(&mut vm, &mut host, "while true do end", &[], &[], false);
    host.kill_at = None;
    assert_eq!(
        eval_with(
            &mut vm,
            &mut host,
            "return pcall(error, 'x')",
            &[],
            &[],
            false
        ),
        "$-1\r\n"
    );
}

// ---- shebang --------------------------------------------------------------------

#[test]
fn shebang_flags() {
    assert_eq!(Vm::parse_flags(b"return 1"), Ok(ScriptFlags::default()));
    let f = Vm::parse_flags(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
    assert!(f.shebang && f.no_writes && f.allow_oom && !f.allow_stale);
    let f = Vm::parse_flags(b"#!lua\nreturn 1").unwrap();
    assert!(f.shebang && !f.no_writes);
    assert_eq!(
        Vm::parse_flags(b"#!python\n"),
        Err("ERR Unexpected engine in script shebang: #!python".into())
    );
    assert_eq!(
        Vm::parse_flags(b"#!lua foo=bar\n"),
        Err("ERR Unknown lua shebang option: foo=bar".into())
    );
    assert_eq!(
        Vm::parse_flags(b"#!lua flags=no-writes,bad\n"),
        Err("ERR Unexpected flag in script shebang: bad".into())
    );
    assert_eq!(
        Vm::parse_flags(b"#!lua"),
        Err("ERR Invalid script shebang".into())
    );
    // The shebang line is skipped but its newline kept: line numbers hold.
    let r = eval("#!lua\nreturn a");
    assert!(r.contains("user_script:2: Script attempted"), "{r}");
}

// ---- functions ------------------------------------------------------------------

fn load(vm: &mut Vm, code: &str) -> Result<super::LibraryInfo, String> {
    vm.load_library(Bytes::copy_from_slice(code.as_bytes()), false)
}

fn fcall(vm: &mut Vm, name: &str, keys: &[&str], args: &[&str]) -> String {
    let keys: Vec<Bytes> = keys
        .iter()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()))
        .collect();
    let args: Vec<Bytes> = args
        .iter()
        .map(|k| Bytes::copy_from_slice(k.as_bytes()))
        .collect();
    let mut out = Reply::new(false);
    vm.run_function(name, &keys, &args, &mut FakeHost::default(), &mut out);
    String::from_utf8_lossy(&out.buf).into_owned()
}

#[test]
fn functions_load_and_run() {
    let mut vm = Vm::new();
    let info = load(
        &mut vm,
        "#!lua name=lib1\nredis.register_function('f1', function(keys, args) return keys[1] .. args[1] end)\n\
         redis.register_function{function_name='f2', callback=function() return 2 end, description='d', flags={'no-writes', 'ALLOW-OOM'}}",
    )
    .unwrap();
    assert_eq!(info.name, "lib1");
    assert_eq!(info.engine, "LUA");
    assert_eq!(info.functions.len(), 2);
    let (lib, f2) = vm.function("f2").unwrap();
    assert_eq!(lib, "lib1");
    assert_eq!(f2.description.as_deref(), Some("d"));
    assert!(f2.flags.no_writes && f2.flags.allow_oom && !f2.flags.shebang);
    assert_eq!(fcall(&mut vm, "f1", &["k"], &["a"]), "$2\r\nka\r\n");
    assert_eq!(fcall(&mut vm, "f2", &[], &[]), ":2\r\n");
    assert_eq!(
        fcall(&mut vm, "nosuch", &[], &[]),
        "-ERR Function not found\r\n"
    );
    assert_eq!(vm.libraries().len(), 1);
}

#[test]
fn function_library_errors() {
    let mut vm = Vm::new();
    load(
        &mut vm,
        "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)",
    )
    .unwrap();
    let cases: &[(&str, &str)] = &[
        ("#!lua name=lib1\nredis.register_function('fx', function() end)", "ERR Library 'lib1' already exists"),
        ("#!lua name=lib2\nredis.register_function('f1', function() end)", "ERR Function f1 already exists"),
        ("#!lua name=lib2\nreturn 1", "ERR No functions registered"),
        ("return 1", "ERR Missing library metadata"),
        ("#!lua name=lib2", "ERR Invalid library metadata"),
        ("#!bad_engine name=lib2\n", "ERR Engine 'bad_engine' not found"),
        ("#!lua name=lib2 foo=bar\n", "ERR Invalid metadata value given: foo=bar"),
        ("#!lua\n", "ERR Library name was not given"),
        ("#!lua name=a name=b\n", "ERR Invalid metadata value, name argument was given multiple times"),
        ("#!lua name=bad-name\n", "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
        ("#!lua name=lib2\nreturn (", "ERR Error compiling function: user_function:2:"),
        ("#!lua name=lib2\nredis.register_function('f', 1)", "ERR Error registering functions: ERR second argument to redis.register_function must be a function"),
        ("#!lua name=lib2\nredis.register_function('f', function() end)\nredis.register_function('f', function() end)", "Function already exists in the library"),
        ("#!lua name=lib2\nredis.register_function()", "wrong number of arguments to redis.register_function"),
        ("#!lua name=lib2\nredis.register_function('a')", "calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
        ("#!lua name=lib2\nredis.register_function(1 == 1)", "calling redis.register_function with a single argument is only applicable to Lua table"),
        ("#!lua name=lib2\nredis.register_function({}, function() end)", "first argument to redis.register_function must be a string"),
        ("#!lua name=lib2\nredis.register_function('a-b', function() end)", "Library names can only contain letters"),
        ("#!lua name=lib2\nredis.register_function{function_name={}}", "function_name argument given to redis.register_function must be a string"),
        ("#!lua name=lib2\nredis.register_function{function_name='f', callback='x'}", "callback argument given to redis.register_function must be a function"),
        ("#!lua name=lib2\nredis.register_function{function_name='f', description={}}", "description argument given to redis.register_function must be a string"),
        ("#!lua name=lib2\nredis.register_function{function_name='f', bad=1}", "unknown argument given to redis.register_function"),
        ("#!lua name=lib2\nredis.register_function{callback=function() end}", "redis.register_function must get a function name argument"),
        ("#!lua name=lib2\nredis.register_function{function_name='f'}", "redis.register_function must get a callback argument"),
        ("#!lua name=lib2\nredis.register_function{function_name='f', callback=function() end, flags='x'}", "flags argument to redis.register_function must be a table representing function flags"),
        ("#!lua name=lib2\nredis.register_function{function_name='f', callback=function() end, flags={'bad'}}", "unknown flag given"),
        ("#!lua name=lib2\nredis.math.random()", "Script attempted to access nonexistent global variable 'math'"),
        ("#!lua name=lib2\nredis.call('ping')", "Script attempted to access nonexistent global variable 'call'"),
        ("#!lua name=lib2\nredis.setresp(3)", "Script attempted to access nonexistent global variable 'setresp'"),
        ("#!lua name=lib2\na = 1", "Attempt to modify a readonly table"),
        ("#!lua name=lib2\nmt = getmetatable(_G)", "Script attempted to access nonexistent global variable 'getmetatable'"),
        ("#!lua name=lib2\nlocal a = 1\nwhile 1 do a = a + 1 end", "ERR Error registering functions: ERR FUNCTION LOAD timeout"),
    ];
    for (code, want) in cases {
        let e = load(&mut vm, code).unwrap_err();
        assert!(e.contains(want), "{code}\n  got:  {e}\n  want: {want}");
    }
    // Nothing failed above changed what is loaded.
    assert_eq!(vm.libraries().len(), 1);
    assert_eq!(fcall(&mut vm, "f1", &[], &[]), ":1\r\n");
}

#[test]
fn function_replace_and_delete() {
    let mut vm = Vm::new();
    load(
        &mut vm,
        "#!lua name=lib1\nredis.register_function('f1', function() return 1 end)",
    )
    .unwrap();
    vm.load_library(
        Bytes::from_static(
            b"#!lua name=lib1\nredis.register_function('f2', function() return 2 end)",
        ),
        true,
    )
    .unwrap();
    assert!(vm.function("f1").is_none());
    assert_eq!(fcall(&mut vm, "f2", &[], &[]), ":2\r\n");
    assert_eq!(
        vm.delete_library("nosuch"),
        Err("ERR Library not found".into())
    );
    vm.delete_library("lib1").unwrap();
    assert!(vm.function("f2").is_none());
    load(
        &mut vm,
        "#!lua name=a\nredis.register_function('fa', function() return 1 end)",
    )
    .unwrap();
    vm.flush_libraries();
    assert!(vm.libraries().is_empty());
}

#[test]
fn function_runtime_sandbox_and_errors() {
    let mut vm = Vm::new();
    load(
        &mut vm,
        "#!lua name=lib\nlocal lib = redis\n\
         redis.register_function('f1', function() return a end)\n\
         redis.register_function('f2', function() lib.register_function('x', function() end) end)\n\
         redis.register_function('f3', function() redis.register_function('y', function() end) end)\n\
         redis.register_function('f4', function() local mt = getmetatable(_G); mt.__index = {} end)\n\
         redis.register_function('f5', function() return redis.call('nosuch') end)\n\
         redis.register_function('f6', function() return redis.REDIS_VERSION end)",
    )
    .unwrap();
    assert_eq!(
        fcall(&mut vm, "f1", &[], &[]),
        "-ERR user_function:3: Script attempted to access nonexistent global variable 'a' script: f1, on @user_function:3.\r\n"
    );
    assert!(fcall(&mut vm, "f2", &[], &[]).contains("can only be called on FUNCTION LOAD command"));
    assert!(fcall(&mut vm, "f3", &[], &[])
        .contains("attempt to call field 'register_function' (a nil value)"));
    assert!(fcall(&mut vm, "f4", &[], &[]).contains("Attempt to modify a readonly table"));
    assert_eq!(
        fcall(&mut vm, "f5", &[], &[]),
        "-ERR unknown command script: f5, on @user_function:7.\r\n"
    );
    assert_eq!(fcall(&mut vm, "f6", &[], &[]), "$6\r\n7.0.15\r\n");
}

#[test]
fn vm_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Vm>();
}

#[test]
fn deeply_nested_replies_become_an_error_not_a_crash() {
    let mut deep = Vec::new();
    for _ in 0..200 {
        deep.extend_from_slice(b"*1\r\n");
    }
    deep.extend_from_slice(b":1\r\n");
    let deep: &'static [u8] = Box::leak(deep.into_boxed_slice());
    let mut host = host_with(vec![("deep", deep, deep)]);
    let r = eval_with(
        &mut Vm::new(),
        &mut host,
        "return redis.pcall('deep')",
        &[],
        &[],
        false,
    );
    assert_eq!(r, "-ERR malformed reply from the server\r\n");
}

#[test]
fn memory_is_reported() {
    let vm = Vm::new();
    assert!(vm.memory() > 10_000, "{}", vm.memory());
    assert!(vm.functions_memory() > 10_000);
}

// ---- Limits ------------------------------------------------------------------------

/// Redis passes up to LUAI_MAXCSTACK (8000) values to redis.call: the
/// suite's `redis.call("lpush", "l", unpack(a))` with 7999 elements.
#[test]
fn redis_call_takes_as_many_arguments_as_redis() {
    for (call, strings) in [
        ("call", false),
        ("pcall", false),
        ("call", true),
        ("pcall", true),
    ] {
        let mut host = host_with(vec![("lpush", b":7999\r\n", b":7999\r\n")]);
        let fill = if strings { "tostring(i)" } else { "1" };
        let body = format!(
            "local a = {{}} for i=1,7999 do a[i] = {fill} end \
             return redis.{call}('lpush', 'l', unpack(a))"
        );
        let r = eval_with(&mut Vm::new(), &mut host, &body, &[], &[], false);
        assert_eq!(r, ":7999\r\n", "redis.{call}, strings: {strings}");
        assert_eq!(host.calls.len(), 1);
        assert_eq!(host.calls[0].0.len(), 8001);
        assert_eq!(
            &host.calls[0].0[8000][..],
            if strings { b"7999" as &[u8] } else { b"1" }
        );
    }
}

/// Redis reports its C libraries' errors at the script's line, with the
/// name the script called: a tail call keeps both (it did not, through
/// a Lua wrapper: "on =band:4.").
#[test]
fn library_errors_name_the_script_line() {
    for body in ["return bit.band('x')", "local r = bit.band('x') return r"] {
        let sha = Vm::sha1hex(body.as_bytes());
        assert_eq!(
            eval(body),
            format!("-ERR bad argument #1 to 'band' (number expected, got string) script: {sha}, on @user_script:1.\r\n"),
            "{body}"
        );
    }
    assert_eq!(
        eval("local ok, e = pcall(bit.tohex, {}) return e"),
        "$51\r\nbad argument #1 to '?' (number expected, got table)\r\n"
    );
}

// ---- Memory ------------------------------------------------------------------------

/// A fresh state holds only what it keeps: Redis's suite wants
/// `used_memory_lua` under 100 KB after 10,000 EVALs on a fresh state
/// (EVAL's state was 166 KB fresh, FUNCTION's 170 KB).
#[test]
fn fresh_states_are_small() {
    let vm = Vm::new();
    assert!(vm.memory() < 90_000, "{}", vm.memory());
    assert!(vm.functions_memory() < 100_000, "{}", vm.functions_memory());
    let mut vm = Vm::new();
    vm.flush_scripts();
    assert!(vm.memory() < 90_000, "{}", vm.memory());
}

/// A run steps the collector once its state gathered 16 KB of garbage
/// (a fifth of what it keeps, when that is more), for EVAL and FCALL alike:
/// Lua's memory never grows far past what the state keeps, and falls when
/// the allowance is reached.
#[test]
fn garbage_is_collected_once_past_its_allowance() {
    /// Runs `run` (which returns the state's memory after a run) 50 times,
    /// then 200 more, and checks those: memory fell by 10 KB at least once,
    /// and never rose past the least seen by more than the allowance and
    /// one run's garbage.
    fn check(mut run: impl FnMut() -> usize) {
        for _ in 0..50 {
            run();
        }
        let first = run();
        let (mut low, mut high, mut fell, mut last) = (first, first, false, first);
        for _ in 0..200 {
            let m = run();
            low = low.min(m);
            high = high.max(m);
            fell |= m + 10_000 < last;
            last = m;
        }
        assert!(fell, "never collected: between {low} and {high}");
        let allowance = (low / 5).max(16 * 1024);
        assert!(high < low + allowance + 4096, "between {low} and {high}");
    }
    // Garbage of its own (a run of the server's glue leaves little).
    let body = "local t = {} for i = 1, 8 do t[i] = {} end return redis.call('incr', KEYS[1])";
    let mut vm = Vm::new();
    let mut host = host_with(vec![("incr", b":1\r\n", b":1\r\n")]);
    check(|| {
        eval_with(&mut vm, &mut host, body, &["x"], &[], false);
        vm.memory()
    });

    let mut vm = Vm::new();
    load(
        &mut vm,
        "#!lua name=lib\nredis.register_function('f', function() \
         local t = {} for i = 1, 8 do t[i] = {} end return 1 end)",
    )
    .unwrap();
    check(|| {
        fcall(&mut vm, "f", &[], &[]);
        vm.functions_memory()
    });
}

/// A state too large for one step to end its cycle is not stepped on
/// every run: the next step waits for the state to grow by a fifth. And
/// after FUNCTION FLUSH the allowance follows the state down.
#[test]
fn a_large_state_is_stepped_by_its_growth_and_followed_down() {
    let mut vm = Vm::new();
    // About 2 MB kept by the library, a little garbage a call.
    load(
        &mut vm,
        "#!lua name=big\nlocal big = {} for i = 1, 40000 do big[i] = 'value ' .. i end\n\
         redis.register_function('f', function() local t = {} for i = 1, 8 do t[i] = {} end \
         return #big end)",
    )
    .unwrap();
    assert!(
        vm.functions_memory() > 1_000_000,
        "{}",
        vm.functions_memory()
    );
    for _ in 0..300 {
        assert_eq!(fcall(&mut vm, "f", &[], &[]), ":40000\r\n");
    }
    let steps = vm.functions_gc_steps();
    assert!((1..=5).contains(&steps), "{steps} steps in 300 runs");

    vm.flush_libraries();
    load(
        &mut vm,
        "#!lua name=lib\nredis.register_function('f', function() \
         local t = {} for i = 1, 8 do t[i] = {} end return 1 end)",
    )
    .unwrap();
    // Stepping resumes at the new size: without following the state down
    // the next step would wait for 2.4 MB, and these runs leave 200 KB.
    let before = vm.functions_gc_steps();
    for _ in 0..300 {
        fcall(&mut vm, "f", &[], &[]);
    }
    let after = vm.functions_gc_steps();
    assert!(after > before, "no step after the flush ({before} before)");
}

// ---- Function names ------------------------------------------------------------------

/// Redis's functions dict is case-insensitive; library names are not.
#[test]
fn function_names_are_case_insensitive() {
    let mut vm = Vm::new();
    load(
        &mut vm,
        "#!lua name=test\nredis.register_function('test', function() return 'hello1' end)\n\
         redis.register_function('Fail', function() return redis.call('nosuch') end)",
    )
    .unwrap();
    assert_eq!(fcall(&mut vm, "TEST", &[], &[]), "$6\r\nhello1\r\n");
    assert_eq!(fcall(&mut vm, "tEsT", &[], &[]), "$6\r\nhello1\r\n");
    let (lib, info) = vm.function("TEST").unwrap();
    assert_eq!((lib.as_str(), info.name.as_str()), ("test", "test"));
    // Errors name the function as registered.
    let r = fcall(&mut vm, "FAIL", &[], &[]);
    assert!(r.contains("script: Fail, on @user_function:3."), "{r}");
    // LIST keeps the registered spelling.
    let names: Vec<String> = vm.libraries()[0]
        .functions
        .iter()
        .map(|f| f.name.clone())
        .collect();
    assert_eq!(names, ["Fail", "test"]);

    // Another library: the text names the new spelling, as Redis's does.
    assert_eq!(
        load(
            &mut vm,
            "#!lua name=other\nredis.register_function('TEST', function() end)"
        )
        .unwrap_err(),
        "ERR Function TEST already exists"
    );
    // Library names stay case-sensitive.
    load(
        &mut vm,
        "#!lua name=TEST\nredis.register_function('t2', function() return 2 end)",
    )
    .unwrap();
    // The same library: refused (Redis 7.0 loads it and then mislinks it).
    assert_eq!(
        load(&mut vm, "#!lua name=lib3\nredis.register_function('f', function() end)\nredis.register_function('F', function() end)").unwrap_err(),
        "ERR Error registering functions: ERR Function already exists in the library"
    );
    // REPLACE may re-register a name in a new case; the old one is gone.
    vm.load_library(
        bytes::Bytes::from_static(
            b"#!lua name=test\nredis.register_function('TeSt', function() return 'again' end)",
        ),
        true,
    )
    .unwrap();
    assert_eq!(fcall(&mut vm, "test", &[], &[]), "$5\r\nagain\r\n");
    assert!(vm.function("fail").is_none());
    vm.delete_library("test").unwrap();
    assert!(vm.function("TEST").is_none());
    assert_eq!(fcall(&mut vm, "t2", &[], &[]), ":2\r\n");
}
