//! Lua scripting as Redis 7.0 runs it: one Lua 5.1 VM (stock 5.1.5 through
//! `mlua`, built from source) with Redis's environment — the `redis` table,
//! the sandbox (protected globals, read-only library tables), the libraries
//! Redis loads (`cjson`, `cmsgpack`, `bit`, `struct`, in [`libs`]) — and the
//! conversion rules between RESP replies and Lua values.
//!
//! This module knows nothing of the keyspace or the command table: a script's
//! `redis.call` goes through the [`Host`] the command layer passes in, which
//! runs the command and hands back its reply as RESP bytes. Layer: imports
//! `protocol` and `util` only.
//!
//! Two kinds of code run here:
//! - EVAL scripts: a body compiled as the global function `f_<sha1>`, called
//!   with the globals `KEYS` and `ARGV` set;
//! - FUNCTION libraries (`#!lua name=<lib>`), run once at load to register
//!   their functions through `redis.register_function`; FCALL calls one with
//!   `(keys, args)` as its two arguments. Redis keeps them in a second VM.

//!
//! Entry point: [`Vm`] (both Lua states, the script cache, the function
//! libraries). Redis's read-only tables do not exist in stock Lua 5.1; they
//! are emulated with proxies (see `env.lua`).

mod convert;
mod env;
pub mod libs;
mod rand48;
mod shebang;
mod vm;

use bytes::Bytes;

pub use vm::Vm;

/// What a script may ask of the server. Implemented by the command layer.
pub trait Host {
    /// `redis.call` / `redis.pcall`: runs the command `args` (args[0] is
    /// the name) and returns its reply encoded in RESP3 if `resp3` (after
    /// `redis.setresp(3)`), else RESP2. An error the server decides before
    /// running (unknown command, wrong arity, a write from a read-only
    /// script, a command not allowed from scripts) is returned the same way,
    /// as a RESP error reply (`-ERR ...\r\n`).
    fn call(&mut self, args: &[Bytes], resp3: bool) -> Bytes;

    /// `redis.log(level, msg)`: level is Redis's (0 debug .. 3 warning).
    fn log(&mut self, level: i32, msg: &str);

    /// Called every so many Lua instructions (Redis: 100,000). Returns an
    /// error text to stop the script (SCRIPT KILL / FUNCTION KILL, or
    /// shutdown); None to go on.
    /// The text is read as Redis reads `luaPushError`'s argument: "-CODE
    /// msg" keeps its code, any other text gets "ERR " in front (so
    /// "Script killed by user with SCRIPT KILL..." becomes "ERR Script
    /// killed ..."). Once stopped, a script cannot catch the error: every
    /// `pcall`/`xpcall`/`coroutine.resume` raises it again.
    fn interrupt(&mut self) -> Option<String>;

    /// `redis.set_repl(flags)`: REPL_NONE 0, REPL_AOF 1, REPL_REPLICA 2,
    /// REPL_ALL 3 (already checked). Default: ignored.
    fn set_repl(&mut self, _flags: u8) {}

    /// `redis.acl_check_cmd(...)`: may the calling user run `args`?
    /// None when the command does not exist (the script then gets "ERR
    /// Invalid command passed to redis.acl_check_cmd()"). Default: allowed.
    fn acl_check(&mut self, _args: &[Bytes]) -> Option<bool> {
        Some(true)
    }
}

/// The shebang flags of a script or a function (`#!lua flags=...`,
/// `redis.register_function{flags={...}}`), as Redis's SCRIPT_FLAG_*.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScriptFlags {
    /// The script had a shebang (`#!lua`): the flags below are what it
    /// declared. Without a shebang (EVAL of plain Lua) Redis applies its
    /// compatibility rules instead (may write, checks at each call).
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    pub allow_stale: bool,
    pub no_cluster: bool,
    pub allow_cross_slot_keys: bool,
}

/// One function a library registered.
#[derive(Clone, Debug)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: ScriptFlags,
}

/// A library FUNCTION LOAD accepted.
#[derive(Clone, Debug)]
pub struct LibraryInfo {
    pub name: String,
    /// Always "LUA".
    pub engine: &'static str,
    pub functions: Vec<FunctionInfo>,
    pub code: Bytes,
}

#[cfg(test)]
mod tests;
