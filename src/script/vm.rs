//! [`Vm`]: the EVAL Lua state with its script cache, and the FUNCTION Lua
//! state with its libraries, as Redis 7.0 keeps them (two states; SCRIPT
//! FLUSH recreates the first, FUNCTION FLUSH only drops the libraries).

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use mlua::chunk::ChunkMode;
use mlua::{ffi, Function, Lua, Table, Value};

use super::convert::{error_table, lua_to_reply, push_error_table, push_reply};
use super::env::{sha1_hex, HookMode, LuaState, Mode};
use super::rand48::Rand48;
use super::shebang::{eval_flags, library_meta, set_flag, valid_name};
use super::{FunctionInfo, Host, LibraryInfo, ScriptFlags};
use crate::protocol::Reply;

/// Both Lua states of the server. `Send`; the command layer keeps it behind
/// a mutex and runs one script at a time, as Redis does.
pub struct Vm {
    eval: LuaState,
    /// By lower-case SHA1 of the body (aHash: looked up twice per EVALSHA,
    /// SipHash of 40 bytes cost about 230 instructions each time).
    scripts: HashMap<String, Script, ahash::RandomState>,
    funcs: LuaState,
    /// By library name (the order of [`Vm::libraries`]).
    libraries: BTreeMap<String, Library>,
    /// Function name in lower case -> its library. Redis's functions dict
    /// is case-insensitive (FCALL TEST finds `test`, and `f` and `F`
    /// collide); library names are case-sensitive.
    function_index: HashMap<String, String>,
    /// Redis's process-wide `redisLrand48` state, shared by both states and
    /// kept across SCRIPT FLUSH.
    rand: Arc<Mutex<Rand48>>,
}

struct Script {
    body: Bytes,
    flags: ScriptFlags,
    func: Function,
}

struct Library {
    info: LibraryInfo,
    funcs: HashMap<String, Function>,
}

impl Default for Vm {
    fn default() -> Self {
        Self::new()
    }
}

impl Vm {
    pub fn new() -> Vm {
        let rand = Arc::new(Mutex::new(Rand48::default()));
        Vm {
            eval: new_state(Mode::Eval, &rand),
            scripts: HashMap::default(),
            funcs: new_state(Mode::Function, &rand),
            libraries: BTreeMap::new(),
            function_index: HashMap::new(),
            rand,
        }
    }

    /// SHA1 of a script body in lower-case hex, as EVAL names scripts.
    pub fn sha1hex(body: &[u8]) -> String {
        sha1_hex(body)
    }

    /// The flags of an EVAL body's shebang (`#!lua flags=no-writes,...`);
    /// `shebang: false` without one. Errors are Redis's texts, with "ERR".
    pub fn parse_flags(body: &[u8]) -> Result<ScriptFlags, String> {
        eval_flags(body).map(|(flags, _)| flags)
    }

    /// SCRIPT LOAD / the first EVAL of a body: compiles it as `f_<sha>`
    /// and caches it. Loading a cached body again is a no-op.
    pub fn load_script(&mut self, body: Bytes) -> Result<String, String> {
        let sha = sha1_hex(&body);
        if self.scripts.contains_key(&sha) {
            return Ok(sha);
        }
        let (flags, shebang_len) = eval_flags(&body)?;
        let env = self.eval.env().map_err(internal_error)?;
        let func = self
            .eval
            .lua
            .load(&body[shebang_len..])
            .set_name("@user_script")
            .set_environment(env)
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| {
                format!(
                    "ERR Error compiling script (new function): {}",
                    lua_error_message(&e)
                )
            })?;
        self.scripts
            .insert(sha.clone(), Script { body, flags, func });
        Ok(sha)
    }

    /// A cached script by its SHA1 (either case).
    pub fn script(&self, sha: &str) -> Option<(Bytes, ScriptFlags)> {
        let s = self.scripts.get(&sha.to_ascii_lowercase())?;
        Some((s.body.clone(), s.flags))
    }

    /// The flags of a cached script, by its SHA1 in lower case (EVALSHA's
    /// lookup: no copy of the name or the body).
    pub fn script_flags(&self, sha: &str) -> Option<ScriptFlags> {
        self.scripts.get(sha).map(|s| s.flags)
    }

    /// Number of cached scripts (INFO's `number_of_cached_scripts`).
    pub fn script_count(&self) -> usize {
        self.scripts.len()
    }

    /// The bodies of the cached scripts (a replica's full sync).
    pub fn scripts(&self) -> Vec<Bytes> {
        self.scripts.values().map(|s| s.body.clone()).collect()
    }

    /// Bytes of the cached scripts' bodies (INFO's `used_memory_scripts_eval`).
    pub fn script_bytes(&self) -> usize {
        self.scripts.values().map(|s| s.body.len()).sum()
    }

    /// SCRIPT FLUSH: drops every script and, as Redis 7.0 does, the EVAL
    /// Lua state itself (globals a script left behind go with it).
    pub fn flush_scripts(&mut self) {
        self.scripts.clear();
        self.eval = new_state(Mode::Eval, &self.rand);
    }

    /// EVAL / EVALSHA of a cached script: writes exactly one reply to `out`.
    pub fn run_script(
        &mut self,
        sha: &str,
        keys: &[Bytes],
        argv: &[Bytes],
        host: &mut dyn Host,
        out: &mut Reply,
    ) {
        let lower;
        let sha = if sha.bytes().any(|b| b.is_ascii_uppercase()) {
            lower = sha.to_ascii_lowercase();
            &lower
        } else {
            sha
        };
        let Some(script) = self.scripts.get(sha) else {
            out.error("NOSCRIPT No matching script. Please use EVAL.");
            return;
        };
        let func = script.func.clone();
        run(&self.eval, &func, keys, argv, true, sha, host, out);
        self.after_run(Mode::Eval);
    }

    /// The state that ran collects its garbage
    /// ([`LuaState::collect_after_run`]).
    fn after_run(&mut self, mode: Mode) {
        match mode {
            Mode::Eval => self.eval.collect_after_run(),
            Mode::Function => self.funcs.collect_after_run(),
        }
    }

    /// FUNCTION LOAD [REPLACE]: runs the library code (with the load-time
    /// API only: `redis.register_function`, `redis.log`, the version) and
    /// links its functions. Errors are Redis's texts, with "ERR".
    pub fn load_library(&mut self, code: Bytes, replace: bool) -> Result<LibraryInfo, String> {
        let meta = library_meta(&code)?;
        if !valid_name(&meta.name) {
            return Err(NAME_RULE.into());
        }
        if !meta.engine.eq_ignore_ascii_case("lua") {
            return Err(format!("ERR Engine '{}' not found", meta.engine));
        }
        if self.libraries.contains_key(&meta.name) && !replace {
            return Err(format!("ERR Library '{}' already exists", meta.name));
        }
        let env = self.funcs.env().map_err(internal_error)?;
        let chunk = self
            .funcs
            .lua
            .load(&code[meta.code_start..])
            .set_name("@user_function")
            .set_environment(env)
            .set_mode(ChunkMode::Text)
            .into_function()
            .map_err(|e| format!("ERR Error compiling function: {}", lua_error_message(&e)))?;

        let load_run: Function = self
            .funcs
            .internal
            .raw_get("load_run")
            .map_err(internal_error)?;
        self.funcs.set_hook_mode(HookMode::Load(Instant::now()));
        let result = load_run.call::<(Value, Value)>(chunk);
        self.funcs.set_hook_mode(HookMode::Idle);
        let (err, registered) = result.map_err(internal_error)?;
        if let Value::String(msg) = err {
            return Err(format!(
                "ERR Error registering functions: {}",
                msg.to_string_lossy()
            ));
        }
        let Value::Table(registered) = registered else {
            return Err(internal_error("no registration table"));
        };

        let mut functions = Vec::new();
        let mut funcs = HashMap::new();
        for entry in registered.sequence_values::<Table>() {
            let entry = entry.map_err(internal_error)?;
            let name: String = entry.raw_get("name").map_err(internal_error)?;
            let description: Option<String> = entry.raw_get("desc").map_err(internal_error)?;
            let flag_list: Table = entry.raw_get("flags").map_err(internal_error)?;
            let mut flags = ScriptFlags::default();
            for f in flag_list.sequence_values::<String>() {
                set_flag(&mut flags, &f.map_err(internal_error)?);
            }
            let callback: Function = entry.raw_get("callback").map_err(internal_error)?;
            funcs.insert(name.clone(), callback);
            functions.push(FunctionInfo {
                name,
                description,
                flags,
            });
        }
        if functions.is_empty() {
            return Err("ERR No functions registered".into());
        }
        for f in &functions {
            if let Some(owner) = self.function_index.get(&f.name.to_ascii_lowercase()) {
                if *owner != meta.name {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(old) = self.libraries.remove(&meta.name) {
            for f in &old.info.functions {
                self.function_index.remove(&f.name.to_ascii_lowercase());
            }
        }
        for f in &functions {
            self.function_index
                .insert(f.name.to_ascii_lowercase(), meta.name.clone());
        }
        let info = LibraryInfo {
            name: meta.name.clone(),
            engine: "LUA",
            functions,
            code,
        };
        self.libraries.insert(
            meta.name,
            Library {
                info: info.clone(),
                funcs,
            },
        );
        Ok(info)
    }

    /// FUNCTION DELETE.
    pub fn delete_library(&mut self, name: &str) -> Result<(), String> {
        let Some(lib) = self.libraries.remove(name) else {
            return Err("ERR Library not found".into());
        };
        for f in &lib.info.functions {
            self.function_index.remove(&f.name.to_ascii_lowercase());
        }
        Ok(())
    }

    /// FUNCTION FLUSH: drops every library (the Lua state stays, as in Redis).
    pub fn flush_libraries(&mut self) {
        self.libraries.clear();
        self.function_index.clear();
        self.funcs.lua.gc_collect().ok();
    }

    /// Every library, by name; functions by name within each.
    pub fn libraries(&self) -> Vec<LibraryInfo> {
        self.libraries.values().map(|l| l.info.clone()).collect()
    }

    /// A function by name in any case, as Redis finds it, and its library;
    /// the info has the name as registered.
    pub fn function(&self, name: &str) -> Option<(String, FunctionInfo)> {
        let (lib, info) = self.lookup(name)?;
        Some((lib.info.name.clone(), info.clone()))
    }

    fn lookup(&self, name: &str) -> Option<(&Library, &FunctionInfo)> {
        let lib = self
            .libraries
            .get(self.function_index.get(&name.to_ascii_lowercase())?)?;
        let info = lib
            .info
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?;
        Some((lib, info))
    }

    /// FCALL / FCALL_RO: writes exactly one reply to `out`.
    pub fn run_function(
        &mut self,
        name: &str,
        keys: &[Bytes],
        args: &[Bytes],
        host: &mut dyn Host,
        out: &mut Reply,
    ) {
        // Errors name the function as registered (Redis's `fi->name`).
        let found = self.lookup(name).and_then(|(lib, info)| {
            let func = lib.funcs.get(&info.name)?;
            Some((func.clone(), info.name.clone()))
        });
        let Some((func, name)) = found else {
            out.error("ERR Function not found");
            return;
        };
        run(&self.funcs, &func, keys, args, false, &name, host, out);
        self.after_run(Mode::Function);
    }

    /// Bytes used by the EVAL Lua state (INFO `used_memory_lua`).
    pub fn memory(&self) -> usize {
        self.eval.lua.used_memory()
    }

    /// Bytes used by the FUNCTION Lua state (INFO `used_memory_vm_functions`).
    pub fn functions_memory(&self) -> usize {
        self.funcs.lua.used_memory()
    }

    /// Collection steps the FUNCTION state took after runs.
    #[cfg(test)]
    pub(crate) fn functions_gc_steps(&self) -> u64 {
        self.funcs.gc_steps()
    }
}

const NAME_RULE: &str = "ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

fn new_state(mode: Mode, rand: &Arc<Mutex<Rand48>>) -> LuaState {
    // Building the environment fails only if Lua cannot allocate at start.
    LuaState::new(mode, rand.clone()).expect("cannot create the Lua state")
}

fn internal_error(e: impl std::fmt::Display) -> String {
    format!("ERR internal scripting error: {e}")
}

/// The message Lua gave, without mlua's decoration.
fn lua_error_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Runs `func` as Redis's `luaCallFunction` does: sets the run's state in
/// the internal table (`I.resp`, `I.running`, which env.lua and
/// `redis.call` read), makes KEYS and ARGV the globals of a script (or the
/// two arguments of a function), and calls it with `lua_pcall` and
/// env.lua's error handler, keeping its first result; then clears
/// `I.killed` if the run was stopped. Returns (ok, value, resp). All on
/// the raw stack with names pushed by reference: no registry reference
/// per table or string, no Lua frame around the script, no name hashed.
/// An error here is the runner's own; the script's are caught by the pcall.
fn call_runner(
    state: &LuaState,
    func: &Function,
    keys: &[Bytes],
    argv: &[Bytes],
    eval: bool,
) -> mlua::Result<(bool, Value, f64)> {
    let narr = |items: &[Bytes]| std::ffi::c_int::try_from(items.len()).unwrap_or(0);
    let k = &state.run_keys;
    // SAFETY: the pushes are unprotected, as mlua's own `create_string`
    // makes them when no Lua memory limit is set (jcache sets none, and
    // mlua's allocator aborts rather than fail); this frame owns nothing
    // with a destructor while they run (raw sets of keys the tables hold
    // already allocate nothing). The stack is left as found.
    state.lua.exec_raw_lua(|raw| unsafe {
        let l = raw.state();
        if ffi::lua_checkstack(l, 8) == 0 {
            return Err(mlua::Error::runtime("the Lua stack is full"));
        }
        let top = ffi::lua_gettop(l);
        raw.push(&state.internal)?;
        let i = top + 1;
        raw.push(&k.resp)?;
        ffi::lua_pushnumber(l, 2.0);
        ffi::lua_rawset(l, i);
        raw.push(&k.running)?;
        ffi::lua_pushboolean(l, 1);
        ffi::lua_rawset(l, i);
        raw.push(&state.handler)?;
        let push_array = |items: &[Bytes]| {
            ffi::lua_createtable(l, narr(items), 0);
            for (n, item) in items.iter().enumerate() {
                ffi::lua_pushlstring(l, item.as_ptr().cast(), item.len());
                ffi::lua_rawseti(l, -2, n as ffi::lua_Integer + 1);
            }
        };
        let status = if eval {
            raw.push(&state.real_globals)?;
            for (name, items) in [(&k.keys, keys), (&k.argv, argv)] {
                raw.push(name)?;
                push_array(items);
                ffi::lua_rawset(l, -3);
            }
            ffi::lua_pop(l, 1);
            raw.push(func)?;
            ffi::lua_pcall(l, 0, 1, top + 2)
        } else {
            raw.push(func)?;
            push_array(keys);
            push_array(argv);
            ffi::lua_pcall(l, 2, 1, top + 2)
        };
        raw.push(&k.running)?;
        ffi::lua_pushboolean(l, 0);
        ffi::lua_rawset(l, i);
        raw.push(&k.resp)?;
        ffi::lua_rawget(l, i);
        let resp = ffi::lua_tonumber(l, -1);
        ffi::lua_pop(l, 1);
        raw.push(&k.killed)?;
        ffi::lua_rawget(l, i);
        let killed = ffi::lua_isnil(l, -1) == 0;
        ffi::lua_pop(l, 1);
        if killed {
            raw.push(&k.killed)?;
            ffi::lua_pushnil(l);
            ffi::lua_rawset(l, i);
        }
        let value = raw.pop_value();
        ffi::lua_settop(l, top);
        Ok((status == 0, value, resp))
    })
}

const NO_ARGS: &[u8] = b"Please specify at least one argument for this redis lib call";
const BAD_ARG: &[u8] = b"Lua redis lib command arguments must be strings or integers";

/// Lua arguments of redis.acl_check_cmd as command arguments, or the error
/// table Redis raises (see [`read_args`]). env.lua passes them as
/// `count, {...}` (a nil inside is an argument too).
fn command_args(lua: &Lua, count: usize, args: &Table) -> mlua::Result<Result<Vec<Bytes>, Table>> {
    // SAFETY: `read_args` neither allocates in Lua nor raises; the stack
    // is left as found.
    let argv = lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        if ffi::lua_checkstack(state, 3) == 0 {
            return Err(mlua::Error::runtime("the Lua stack is full"));
        }
        raw.push(args)?;
        let argv = read_args(state, count);
        ffi::lua_pop(state, 1);
        Ok(argv)
    })?;
    match argv {
        Ok(argv) => Ok(Ok(argv)),
        Err(msg) => Ok(Err(error_table(lua, msg)?)),
    }
}

/// The `count` arguments in the table on top of the stack as command
/// arguments (see [`arg_at`]), or the error Redis gives. Raw gets only:
/// nothing here allocates in Lua or raises; the stack is left as found.
///
/// # Safety
/// The value on top of the stack is a table; one more slot is free.
unsafe fn read_args(state: *mut ffi::lua_State, count: usize) -> Result<Vec<Bytes>, &'static [u8]> {
    if count == 0 {
        return Err(NO_ARGS);
    }
    let mut argv = Vec::with_capacity(count);
    for i in 1..=count {
        ffi::lua_rawgeti(state, -1, i as ffi::lua_Integer);
        let arg = arg_at(state, -1);
        ffi::lua_pop(state, 1);
        argv.push(arg?);
    }
    Ok(argv)
}

/// The value at `idx` as a command argument: a string as is, a number as
/// "%.17g" (Redis formats every number so); anything else is Redis's error.
/// Reads only: nothing here allocates in Lua or raises.
unsafe fn arg_at(state: *mut ffi::lua_State, idx: std::ffi::c_int) -> Result<Bytes, &'static [u8]> {
    match ffi::lua_type(state, idx) {
        ffi::LUA_TSTRING => {
            let mut len = 0;
            let ptr = ffi::lua_tolstring(state, idx, &mut len);
            Ok(Bytes::copy_from_slice(std::slice::from_raw_parts(
                ptr.cast::<u8>(),
                len,
            )))
        }
        ffi::LUA_TNUMBER => {
            let mut text = Vec::with_capacity(24);
            crate::util::number::format_double(ffi::lua_tonumber(state, idx), &mut text);
            Ok(Bytes::from(text))
        }
        _ => Err(BAD_ARG),
    }
}

/// What [`call_host`] left for [`call_command`] to push.
#[derive(Clone, Copy)]
enum CallStep {
    /// The command's reply is on the stack as a string.
    Reply,
    /// The arguments are not a command: this error table is the reply.
    BadArgs(&'static [u8]),
    /// Raise this error (no running script, or the command panicked).
    Raise(&'static std::ffi::CStr),
}

/// `redis.call` and `redis.pcall` (Redis's `luaRedisGenericCommand`): C
/// closures over the internal table, so a command costs no Lua wrapper,
/// no argument table and no mlua callback frame (together about a third
/// of a short script's cost). Made once per Lua state.
pub(crate) fn command_functions(lua: &Lua, internal: &Table) -> mlua::Result<(Function, Function)> {
    unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> std::ffi::c_int {
        call_command(state, true)
    }
    unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> std::ffi::c_int {
        call_command(state, false)
    }
    let make = |f: ffi::lua_CFunction| {
        // SAFETY: `exec_raw` pushes the table and the two keys and runs the
        // closure protected; the closure turns them into the C closure's
        // upvalues (the keys interned once, not at every call) and leaves
        // the closure as the one result.
        unsafe {
            lua.exec_raw::<Function>((internal, "running", "resp"), |state| {
                ffi::lua_pushcclosure(state, f, 3);
            })
        }
    };
    Ok((make(redis_call)?, make(redis_pcall)?))
}

/// The body of `redis.call` (`raise`) and `redis.pcall`. All Rust work
/// (and every value with a destructor) stays in [`call_host`]; this frame
/// only uses the Lua API, which may raise (a longjmp must skip no
/// destructor).
unsafe fn call_command(state: *mut ffi::lua_State, raise: bool) -> std::ffi::c_int {
    // I.running and I.resp (upvalues 2 and 3 are the keys).
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(2));
    ffi::lua_rawget(state, ffi::lua_upvalueindex(1));
    let running = ffi::lua_toboolean(state, -1) != 0;
    ffi::lua_pushvalue(state, ffi::lua_upvalueindex(3));
    ffi::lua_rawget(state, ffi::lua_upvalueindex(1));
    let resp3 = ffi::lua_tonumber(state, -1) == 3.0;
    ffi::lua_pop(state, 2);
    if !running {
        push_error_table(
            state,
            b"redis.call/pcall can only be called inside a script invocation",
        );
        ffi::lua_error(state)
    }
    let is_err = match call_host(state, resp3) {
        CallStep::Reply => {
            let mut len = 0;
            let ptr = ffi::lua_tolstring(state, -1, &mut len);
            // The string stays on the stack (alive) while it is read.
            let reply = std::slice::from_raw_parts(ptr.cast::<u8>(), len);
            let is_err = push_reply(state, reply);
            ffi::lua_remove(state, -2);
            is_err
        }
        CallStep::BadArgs(msg) => {
            push_error_table(state, msg);
            true
        }
        CallStep::Raise(msg) => {
            ffi::lua_pushstring(state, msg.as_ptr());
            ffi::lua_error(state)
        }
    };
    if is_err && raise {
        ffi::lua_error(state)
    }
    1
}

/// The Rust half of [`call_command`]: reads the arguments (the whole
/// stack), empties the stack, runs the command on the host and pushes its
/// reply as one string.
unsafe fn call_host(state: *mut ffi::lua_State, resp3: bool) -> CallStep {
    let argv = read_stack_args(state);
    // Room for the reply however many arguments came (Redis takes as many
    // as a C function's stack holds, LUAI_MAXCSTACK).
    ffi::lua_settop(state, 0);
    let argv = match argv {
        Ok(argv) => argv,
        Err(msg) => return CallStep::BadArgs(msg),
    };
    let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        with_host(|h| h.call(&argv, resp3))
    }));
    match called {
        Ok(Ok(reply)) => {
            // The one push made while Rust values are alive here: a Lua
            // error in it (only a raising __gc finaliser could) leaks them.
            ffi::lua_pushlstring(state, reply.as_ptr().cast(), reply.len());
            CallStep::Reply
        }
        Ok(Err(_)) => CallStep::Raise(c"no script is running"),
        Err(_) => {
            tracing::error!("a command called from a script panicked");
            CallStep::Raise(c"a command called from the script failed (see the server log)")
        }
    }
}

/// The arguments of redis.call/pcall, the whole stack (see [`arg_at`]).
unsafe fn read_stack_args(state: *mut ffi::lua_State) -> Result<Vec<Bytes>, &'static [u8]> {
    let n = ffi::lua_gettop(state);
    if n <= 0 {
        return Err(NO_ARGS);
    }
    let mut argv = Vec::with_capacity(n as usize);
    for i in 1..=n {
        argv.push(arg_at(state, i)?);
    }
    Ok(argv)
}

thread_local! {
    /// The host of the script this thread is running (set by [`run`] for
    /// the length of the run, read by the functions [`host_functions`]
    /// made). A raw pointer because the host borrows the caller's state for
    /// less than `'static`; [`HostSlot`] clears it before the borrow ends.
    static HOST: Cell<Option<*mut (dyn Host + 'static)>> = const { Cell::new(None) };
}

/// Publishes a host in [`HOST`] and clears it when dropped (also when the
/// run unwinds).
struct HostSlot;

impl HostSlot {
    fn set(host: &mut dyn Host) -> HostSlot {
        let ptr: *mut (dyn Host + '_) = host;
        // SAFETY: only the lifetime bound changes; the pointer is cleared
        // by `HostSlot::drop` before `host`'s borrow ends, and only read on
        // this thread meanwhile (`with_host`).
        let ptr: *mut (dyn Host + 'static) = unsafe { std::mem::transmute(ptr) };
        HOST.with(|h| h.set(Some(ptr)));
        HostSlot
    }
}

impl Drop for HostSlot {
    fn drop(&mut self) {
        HOST.with(|h| h.set(None));
    }
}

/// Calls `f` with the running script's host. The slot is emptied during
/// the call, so a nested use finds no host instead of aliasing it.
fn with_host<R>(f: impl FnOnce(&mut dyn Host) -> R) -> mlua::Result<R> {
    let ptr = HOST
        .with(|h| h.take())
        .ok_or_else(|| mlua::Error::runtime("no script is running"))?;
    struct Restore(*mut (dyn Host + 'static));
    impl Drop for Restore {
        fn drop(&mut self) {
            HOST.with(|h| h.set(Some(self.0)));
        }
    }
    let restore = Restore(ptr);
    // SAFETY: the pointer was set by `HostSlot::set` from a live `&mut`
    // that outlives the run, and it is out of the slot while in use here.
    let r = f(unsafe { &mut *restore.0 });
    drop(restore);
    Ok(r)
}

/// The other functions `env.lua` reaches the host through (`host_acl`,
/// `host_set_repl`, `log`, `host_interrupt`; redis.call is
/// [`command_functions`]), installed once per Lua state: they find the
/// running script's host in [`HOST`] (`log` writes to the server log when
/// no script runs).
pub(crate) fn host_functions(lua: &Lua) -> mlua::Result<Vec<(&'static str, Function)>> {
    Ok(vec![
        (
            "host_acl",
            lua.create_function(|lua, (count, args): (usize, Table)| {
                let argv = match command_args(lua, count, &args)? {
                    Ok(argv) => argv,
                    Err(t) => return Ok((Value::Nil, Value::Table(t))),
                };
                match with_host(|h| h.acl_check(&argv))? {
                    Some(ok) => Ok((Value::Boolean(ok), Value::Nil)),
                    None => Ok((
                        Value::Nil,
                        Value::Table(error_table(
                            lua,
                            b"Invalid command passed to redis.acl_check_cmd()",
                        )?),
                    )),
                }
            })?,
        ),
        (
            "host_set_repl",
            lua.create_function(|_, flags: u8| with_host(|h| h.set_repl(flags)))?,
        ),
        (
            "log",
            lua.create_function(|_, (level, msg): (i32, mlua::LuaString)| {
                let msg = msg.to_string_lossy();
                if HOST.with(|h| h.get().is_some()) {
                    with_host(|h| h.log(level, &msg))
                } else {
                    // FUNCTION LOAD's library code, outside any run.
                    super::env::log_outside_run(level, &msg);
                    Ok(())
                }
            })?,
        ),
        (
            "host_interrupt",
            lua.create_function(|_, ()| with_host(|h| h.interrupt()))?,
        ),
    ])
}

#[allow(clippy::too_many_arguments)]
fn run(
    state: &LuaState,
    func: &Function,
    keys: &[Bytes],
    argv: &[Bytes],
    eval: bool,
    name: &str,
    host: &mut dyn Host,
    out: &mut Reply,
) {
    let slot = HostSlot::set(host);
    state.set_hook_mode(HookMode::Run);
    let result = (|| -> mlua::Result<()> {
        let (ok, value, resp) = call_runner(state, func, keys, argv, eval)?;
        if ok {
            lua_to_reply(&value, out, resp == 3.0);
        } else {
            error_reply(&value, name, out);
        }
        Ok(())
    })();
    state.set_hook_mode(HookMode::Idle);
    drop(slot);
    if let Err(e) = result {
        let msg = lua_error_message(&e);
        let msg: String = msg.chars().take(100).collect();
        out.error(&format!("ERR Error running script {name}, {msg}"));
    }
}

/// A Lua value as C's `lua_tostring` would give it (strings and numbers).
fn lua_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_string_lossy()),
        Value::Integer(n) => Some(n.to_string()),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => Some(format!("{}", *n as i64)),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The error reply of a failed run (`luaCallFunction`): the `err` text,
/// then " script: <name>, on <source>:<line>." when both are known.
fn error_reply(value: &Value, name: &str, out: &mut Reply) {
    match value {
        Value::Table(t) => {
            let field = |k: &str| t.raw_get::<Value>(k).ok().and_then(|v| lua_text(&v));
            let mut msg = field("err").unwrap_or_else(|| "(null)".into());
            if let (Some(source), Some(line)) = (field("source"), field("line")) {
                msg.push_str(&format!(" script: {name}, on {source}:{line}."));
            }
            out.error(&msg);
        }
        other => {
            let msg = lua_text(other).unwrap_or_else(|| "execution failure".into());
            let msg: String = msg.chars().take(100).collect();
            out.error(&format!("ERR Error running script {name}, {msg}"));
        }
    }
}
