//! One Lua state with Redis's environment: the standard libraries Redis
//! opens, the C libraries of [`super::libs`], and `env.lua` (the `redis`
//! table, the sandbox, the error handler), plus the count hook.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlua::{ffi, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};

use super::convert::error_text;
use super::libs;
use super::rand48::Rand48;

/// `REDIS_VERSION` / `REDIS_VERSION_NUM` as scripts see them.
pub(crate) const REDIS_VERSION: &str = "7.0.15";
pub(crate) const REDIS_VERSION_NUM: u32 = 0x07000f;

/// Redis's hook period: every 100,000 VM instructions.
const HOOK_PERIOD: u32 = 100_000;

/// Kilobytes of debt a collection step pays (Redis's `LUA_GC_CYCLE_PERIOD`).
const GC_STEP_KBYTES: std::ffi::c_int = 50;

/// Least growth of a state's memory before a run steps its collector
/// ([`LuaState::collect_after_run`]); past it, a fifth of the state.
const GC_GARBAGE_MIN: usize = 16 * 1024;

/// FUNCTION LOAD gives up after this long (Redis's `LOAD_TIMEOUT_MS`).
pub(crate) const LOAD_TIMEOUT: Duration = Duration::from_millis(500);

const REGISTRY_KEY: &str = "jcache.internal";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Eval,
    Function,
}

/// What the count hook checks.
#[derive(Clone, Copy, Debug)]
pub(crate) enum HookMode {
    Idle,
    /// A script or function runs: ask the host.
    Run,
    /// FUNCTION LOAD runs its library code: stop after [`LOAD_TIMEOUT`].
    Load(Instant),
}

pub(crate) struct LuaState {
    pub lua: Lua,
    /// The internal table shared with `env.lua` (never reachable by scripts).
    pub internal: Table,
    pub hook: Arc<Mutex<HookMode>>,
    /// env.lua's error handler, the real globals table (behind the
    /// read-only proxy scripts see) and the keys a run sets, held here so
    /// that a run reaches them without hashing a name
    /// (`vm::call_runner`).
    pub handler: Function,
    pub real_globals: Table,
    pub run_keys: RunKeys,
    /// The least memory the state showed after a run since its last
    /// collection step.
    gc_low: usize,
    gc_steps: u64,
}

/// The names a run sets, as Lua strings kept alive (pushed by reference).
pub(crate) struct RunKeys {
    pub killed: mlua::LuaString,
    pub resp: mlua::LuaString,
    pub running: mlua::LuaString,
    pub keys: mlua::LuaString,
    pub argv: mlua::LuaString,
}

impl LuaState {
    pub fn new(mode: Mode, rand: Arc<Mutex<Rand48>>) -> mlua::Result<LuaState> {
        // SAFETY: `debug` is needed by the error handler; env.lua removes
        // it from what scripts can reach (it is not on the globals allow list).
        let lua = unsafe {
            Lua::unsafe_new_with(
                StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::DEBUG,
                LuaOptions::new(),
            )
        };
        libs::open_all(&lua)?;
        let internal = lua.create_table()?;
        internal.raw_set(
            "sha1hex",
            lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.as_bytes())))?,
        )?;
        let r = rand.clone();
        internal.raw_set(
            "lrand48",
            lua.create_function(move |_, ()| Ok(lock(&r).next()))?,
        )?;
        internal.raw_set(
            "srand48",
            lua.create_function(move |_, seed: f64| {
                lock(&rand).seed(seed as i32);
                Ok(())
            })?,
        )?;
        internal.raw_set(
            "trampoline",
            lua.create_function(|lua, f: Function| c_trampoline(lua, f))?,
        )?;
        internal.raw_set("version", REDIS_VERSION)?;
        internal.raw_set("version_num", REDIS_VERSION_NUM)?;
        // Installed once: they find the running script's host themselves,
        // and env.lua checks `I.running` before calling them (setting and
        // clearing them around every run cost about 8% of a short script).
        for (name, f) in super::vm::host_functions(&lua)? {
            internal.raw_set(name, f)?;
        }
        let (call, pcall) = super::vm::command_functions(&lua, &internal)?;
        internal.raw_set("redis_call", call)?;
        internal.raw_set("redis_pcall", pcall)?;
        let mode_name = match mode {
            Mode::Eval => "eval",
            Mode::Function => "function",
        };
        lua.load(include_str!("env.lua"))
            .set_name(libs::INTERNAL_CHUNK)
            .into_function()?
            .call::<()>((internal.clone(), mode_name))?;
        lua.set_named_registry_value(REGISTRY_KEY, internal.clone())?;
        // Building the environment leaves its garbage (env.lua's main chunk,
        // the parser's buffers, the unprotected copies of tables) behind; a
        // full cycle now makes a fresh state report what it keeps (EVAL's
        // 166 KB became 99 KB with this alone).
        lua.gc_collect()?;

        let hook = Arc::new(Mutex::new(HookMode::Idle));
        let hook_mode = hook.clone();
        // Global: coroutines a script creates inherit the hook (Lua 5.1's
        // lua_newthread copies it), so a loop inside one is stopped too.
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_PERIOD),
            move |lua, _debug| {
                let mode = *lock(&hook_mode);
                count_hook(lua, mode)
            },
        )?;
        let handler = internal.raw_get("handler")?;
        let real_globals = internal.raw_get("realG")?;
        let run_keys = RunKeys {
            killed: lua.create_string("killed")?,
            resp: lua.create_string("resp")?,
            running: lua.create_string("running")?,
            keys: lua.create_string("KEYS")?,
            argv: lua.create_string("ARGV")?,
        };
        Ok(LuaState {
            gc_low: lua.used_memory(),
            gc_steps: 0,
            lua,
            internal,
            hook,
            handler,
            real_globals,
            run_keys,
        })
    }

    /// After a run: Redis's step, `lua_gc(lua, LUA_GCSTEP, 50)` (50 KB of
    /// debt paid in incremental work, about 100,000 units; it ends a cycle
    /// of a small state), once the state's memory rose past the lowest it
    /// showed since the last step by [`GC_GARBAGE_MIN`], or by a fifth of
    /// that low when more. Redis steps after every 50 scripts whatever
    /// they left; a step costs about a whole cycle of a small state, and
    /// ours keeps 77 KB (Redis's 33 KB: stock Lua 5.1 needs proxies and
    /// wrappers for what Redis patches into its Lua), so a rate limiter,
    /// leaving about 175 bytes, paid 3,100 instructions a run for it;
    /// stepping by growth it pays 2,300. Lua's memory stays under the
    /// 100 KB Redis's suite allows after 10,000 scripts (77 KB + 16 KB).
    ///
    /// The low is read after every run, so it follows the state down when
    /// Lua's own collector ends a cycle or libraries are flushed; the next
    /// step waits for growth past it, so a state too large for one step to
    /// end its cycle is not stepped on every run (Lua's own collector,
    /// armed by the step, goes on with the cycle as the state allocates).
    pub fn collect_after_run(&mut self) {
        let used = self.lua.used_memory();
        self.gc_low = self.gc_low.min(used);
        if used < self.gc_low + (self.gc_low / 5).max(GC_GARBAGE_MIN) {
            return;
        }
        // SAFETY: `exec_raw` runs the closure protected (a finaliser may
        // raise); it pushes nothing and leaves nothing.
        let stepped = unsafe {
            self.lua.exec_raw::<()>((), |state| {
                ffi::lua_gc(state, ffi::LUA_GCSTEP, GC_STEP_KBYTES);
            })
        };
        if let Err(e) = stepped {
            tracing::warn!(target: "lua", "garbage collection step failed: {e}");
        }
        self.gc_steps += 1;
        self.gc_low = self.lua.used_memory();
    }

    /// Collection steps taken after runs ([`LuaState::collect_after_run`]).
    #[cfg(test)]
    pub fn gc_steps(&self) -> u64 {
        self.gc_steps
    }

    pub fn set_hook_mode(&self, mode: HookMode) {
        *lock(&self.hook) = mode;
    }

    /// The table scripts see as their globals.
    pub fn env(&self) -> mlua::Result<Table> {
        self.internal.raw_get("env")
    }
}

/// Wraps a Lua function in a C closure that calls it. The `redis.*`
/// functions are C functions in Redis; a script's `return redis.call(..)`
/// is then a tail call into C, which keeps the script's frame, so errors
/// still name the script's line (a tail call into a Lua function would
/// replace the frame with "(tail call)").
pub(crate) fn c_trampoline(lua: &Lua, f: Function) -> mlua::Result<Function> {
    /// Calls upvalue 1 with every argument, unprotected: an error raised
    /// inside propagates as is (a table stays a table). No Rust value with
    /// a destructor lives in this frame, so Lua's longjmp may cross it.
    unsafe extern "C-unwind" fn call_upvalue(state: *mut ffi::lua_State) -> std::ffi::c_int {
        let n = ffi::lua_gettop(state);
        ffi::lua_pushvalue(state, ffi::lua_upvalueindex(1));
        ffi::lua_insert(state, 1);
        ffi::lua_call(state, n, ffi::LUA_MULTRET);
        ffi::lua_gettop(state)
    }
    // SAFETY: `exec_raw` pushes `f` and runs the closure protected; the
    // closure consumes `f` and leaves the new C closure as the one result.
    unsafe {
        lua.exec_raw::<Function>(f, |state| {
            ffi::lua_pushcclosure(state, call_upvalue, 1);
        })
    }
}

/// A poisoned lock only means a panic elsewhere; the data is still usable.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

pub(crate) fn log_outside_run(level: i32, msg: &str) {
    match level {
        0 => tracing::debug!(target: "lua", "{msg}"),
        1 | 2 => tracing::info!(target: "lua", "{msg}"),
        _ => tracing::warn!(target: "lua", "{msg}"),
    }
}

/// Redis's `luaMaskCountHook` / `luaEngineLoadHook`. Once a script is
/// stopped, every later hook raises again, and env.lua's pcall/xpcall/
/// coroutine.resume re-raise, so the script cannot swallow the error.
fn count_hook(lua: &Lua, mode: HookMode) -> mlua::Result<VmState> {
    if matches!(mode, HookMode::Idle) {
        return Ok(VmState::Continue);
    }
    let internal: Table = lua.named_registry_value(REGISTRY_KEY)?;
    if let Value::String(text) = internal.raw_get::<Value>("killed")? {
        return Err(mlua::Error::runtime(text.to_string_lossy()));
    }
    let stop = match mode {
        HookMode::Idle => None,
        HookMode::Load(start) => {
            (start.elapsed() > LOAD_TIMEOUT).then(|| b"FUNCTION LOAD timeout".to_vec())
        }
        HookMode::Run => match internal.raw_get::<Value>("host_interrupt")? {
            Value::Function(f) => f
                .call::<Option<mlua::LuaString>>(())?
                .map(|s| s.as_bytes().to_vec()),
            _ => None,
        },
    };
    match stop {
        None => Ok(VmState::Continue),
        Some(text) => {
            let err = error_text(&text);
            internal.raw_set("killed", lua.create_string(&err)?)?;
            Err(mlua::Error::runtime(String::from_utf8_lossy(&err)))
        }
    }
}
