//! What the four libraries share: raising plain Lua string errors the way
//! the C API does, `luaL_check*`-style argument readers, and C's
//! float-to-integer casts as x86-64 performs them.

use std::ffi::c_void;
use std::sync::Arc;

use mlua::{Function, LightUserData, Lua, LuaString, MultiValue, Table, Value};

/// Lua 5.1's `LUAI_MAXCSTACK`: a C function may hold at most this many
/// stack slots; Redis's libraries hit it through `lua_checkstack`.
pub const MAX_C_STACK: usize = 8000;

/// The slots a library function may fill before returning: mlua keeps the
/// arguments on the stack and checks for one spare slot when it pushes the
/// results, so the limit comes one value earlier than in Redis.
pub const RESULT_SLOTS: usize = MAX_C_STACK - 1;

/// The chunk name of jcache's own Lua code (env.lua's `INTERNAL`): the
/// error handler skips frames from it when it looks for the script's line.
pub const INTERNAL_CHUNK: &str = "=jcache";

/// Why a library function did not return values.
pub enum Failure {
    /// A Lua error whose value is this string (what `luaL_error` raises).
    Message(Vec<u8>),
    /// An error of the interpreter itself (allocation, stack), passed on.
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(error: mlua::Error) -> Self {
        Failure::Lua(error)
    }
}

/// What a library function returns.
pub type CallResult = Result<MultiValue, Failure>;

/// Builds a `luaL_error`-style failure. C functions have no line
/// information, so like `luaL_error` from C there is no position prefix.
pub fn error(message: impl Into<Vec<u8>>) -> Failure {
    Failure::Message(message.into())
}

/// The arguments of one call.
pub struct Args<'a> {
    pub lua: &'a Lua,
    pub values: Vec<Value>,
}

impl Args<'_> {
    /// `lua_gettop`.
    pub fn count(&self) -> usize {
        self.values.len()
    }

    /// Argument `index` (1-based); `None` when absent ("no value").
    pub fn get(&self, index: usize) -> Option<&Value> {
        self.values.get(index.wrapping_sub(1))
    }

    /// `lua_isnoneornil`.
    pub fn is_none_or_nil(&self, index: usize) -> bool {
        matches!(self.get(index), None | Some(Value::Nil))
    }

    /// `luaL_argerror`: "bad argument #n to 'name' (message)", with the
    /// name Lua's debug information gives the caller's call site.
    pub fn arg_error(&self, index: usize, message: &[u8]) -> Failure {
        let mut index = index as i64;
        let (name, method) = self.caller_name();
        let mut text = Vec::new();
        if method {
            index -= 1;
            if index == 0 {
                text.extend_from_slice(format!("calling '{name}' on bad self (").as_bytes());
                text.extend_from_slice(message);
                text.push(b')');
                return Failure::Message(text);
            }
        }
        text.extend_from_slice(format!("bad argument #{index} to '{name}' (").as_bytes());
        text.extend_from_slice(message);
        text.push(b')');
        Failure::Message(text)
    }

    /// `luaL_typerror`: "<expected> expected, got <type>".
    pub fn type_error(&self, index: usize, expected: &str) -> Failure {
        let got = self.get(index).map_or("no value", lua_type_name);
        self.arg_error(index, format!("{expected} expected, got {got}").as_bytes())
    }

    /// `luaL_checknumber`.
    pub fn check_number(&self, index: usize) -> Result<f64, Failure> {
        match self.to_number(index)? {
            Some(number) => Ok(number),
            None => Err(self.type_error(index, "number")),
        }
    }

    /// `luaL_checkinteger` (`lua_Integer` is `ptrdiff_t`, cast as C does).
    pub fn check_integer(&self, index: usize) -> Result<i64, Failure> {
        Ok(c_f64_to_i64(self.check_number(index)?))
    }

    /// `luaL_optinteger`.
    pub fn opt_integer(&self, index: usize, default: i64) -> Result<i64, Failure> {
        if self.is_none_or_nil(index) {
            Ok(default)
        } else {
            self.check_integer(index)
        }
    }

    /// `lua_tonumber` with `lua_isnumber`: numbers, and strings Lua can
    /// convert.
    pub fn to_number(&self, index: usize) -> Result<Option<f64>, Failure> {
        match self.get(index) {
            Some(value) => to_number(self.lua, value),
            None => Ok(None),
        }
    }

    /// `luaL_checklstring`: strings, and numbers converted by Lua.
    pub fn check_string(&self, index: usize) -> Result<LuaString, Failure> {
        let value = self.get(index).cloned().unwrap_or(Value::Nil);
        match value {
            Value::String(s) => Ok(s),
            Value::Integer(_) | Value::Number(_) => match self.lua.coerce_string(value)? {
                Some(s) => Ok(s),
                None => Err(self.type_error(index, "string")),
            },
            _ => Err(self.type_error(index, "string")),
        }
    }

    /// The function's name as its caller called it, and whether it was a
    /// method call. Level 0 is the Rust function, level 1 the Lua wrapper,
    /// level 2 the C trampoline the script called: a C function, so Lua
    /// names it even from a tail call, as it names Redis's C functions.
    fn caller_name(&self) -> (String, bool) {
        let names = self.lua.inspect_stack(2, |debug| {
            let names = debug.names();
            (
                names.name.map(|n| n.into_owned()),
                names.name_what == Some("method"),
            )
        });
        match names {
            Some((Some(name), method)) => (name, method),
            _ => ("?".to_string(), false),
        }
    }
}

/// `lua_tonumber` + `lua_isnumber` for one value.
pub fn to_number(lua: &Lua, value: &Value) -> Result<Option<f64>, Failure> {
    Ok(match value {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        Value::String(_) => lua.coerce_number(value.clone())?,
        _ => None,
    })
}

/// `lua_typename(lua_type(v))`: Lua 5.1's names, light userdata included.
pub fn lua_type_name(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) | Value::Error(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "userdata",
    }
}

/// C's `(int64_t)d` on x86-64: truncation, and the "integer indefinite"
/// value `INT64_MIN` for NaN and out-of-range values.
pub fn c_f64_to_i64(d: f64) -> i64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if !(-TWO_63..TWO_63).contains(&d) {
        i64::MIN
    } else {
        d as i64
    }
}

/// C's `(int)d` on x86-64 (`INT_MIN` when out of range).
pub fn c_f64_to_i32(d: f64) -> i32 {
    if !(-2_147_483_649.0..2_147_483_648.0).contains(&d) {
        i32::MIN
    } else {
        d as i32
    }
}

/// C's `(uint64_t)d` as gcc compiles it for x86-64: values below 2^63 go
/// through the signed conversion, the rest are offset by 2^63 first.
pub fn c_f64_to_u64(d: f64) -> u64 {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if d.is_nan() || d < TWO_63 {
        c_f64_to_i64(d) as u64
    } else {
        (c_f64_to_i64(d - TWO_63) as u64) ^ (1 << 63)
    }
}

/// Lua source of the factory of wrappers that turn `(FAILED, message)`
/// from a Rust function into `error(message, 0)`: a plain string error, as
/// `luaL_error` raises from C, instead of mlua's callback-error userdata. A
/// marker rather than a leading status keeps the stack use of successful
/// calls equal to the C function's (it matters near `LUAI_MAXCSTACK`).
///
/// Compiled once per state, so every wrapper is a closure sharing one
/// prototype (a chunk per function cost ~0.9 KB each, 32 KB a state). Its
/// source is env.lua's internal name, so the error handler skips its frames
/// and names the script's line, as Redis does for its C functions.
const WRAPPER: &str = r#"
local error, select, failed = ...
local function finish(...)
  if (...) == failed then error((select(2, ...)), 0) end
  return ...
end
return function(raw)
  return function(...) return finish(raw(...)) end
end
"#;

/// Where a state keeps the wrapper factory built from [`WRAPPER`].
const WRAPPER_KEY: &str = "jcache.lib_wrapper";

/// The address behind the failure marker: no Lua value can equal it except
/// this light userdata.
static FAILED: u8 = 0;

fn failed_marker() -> Value {
    Value::LightUserData(LightUserData(std::ptr::addr_of!(FAILED) as *mut c_void))
}

/// The state's wrapper factory, compiled on first use.
fn wrapper_factory(lua: &Lua) -> mlua::Result<Function> {
    if let Some(factory) = lua.named_registry_value::<Option<Function>>(WRAPPER_KEY)? {
        return Ok(factory);
    }
    let error_fn: Function = lua.globals().raw_get("error")?;
    let select_fn: Function = lua.globals().raw_get("select")?;
    let factory: Function =
        lua.load(WRAPPER)
            .set_name(INTERNAL_CHUNK)
            .call((error_fn, select_fn, failed_marker()))?;
    lua.set_named_registry_value(WRAPPER_KEY, factory.clone())?;
    Ok(factory)
}

/// Registers `f` as `table[name]`.
pub fn register<F>(lua: &Lua, table: &Table, name: &str, f: F) -> mlua::Result<()>
where
    F: Fn(&Args) -> CallResult + Send + Sync + 'static,
{
    let f = Arc::new(f);
    let raw = lua.create_function(move |lua, values: MultiValue| {
        let args = Args {
            lua,
            values: values.into_iter().collect(),
        };
        match f(&args) {
            Ok(results) => Ok(results),
            Err(Failure::Message(message)) => {
                let message = lua.create_string(&message)?;
                Ok(MultiValue::from_iter([
                    failed_marker(),
                    Value::String(message),
                ]))
            }
            Err(Failure::Lua(error)) => Err(error),
        }
    })?;
    let wrapper: Function = wrapper_factory(lua)?.call(raw)?;
    // Behind a C function, as the C library's functions are: a script's
    // `return bit.band(x)` then keeps the script's frame for the error
    // handler (a tail call into the Lua wrapper would replace it).
    table.raw_set(name, crate::script::env::c_trampoline(lua, wrapper)?)
}

/// Builds a result list.
pub fn results(values: impl IntoIterator<Item = Value>) -> CallResult {
    Ok(MultiValue::from_iter(values))
}

/// `lua_next` over `table` (raw, in Lua's own order) with a callback that
/// may fail with a [`Failure`] or stop early by returning `Ok(false)`.
pub fn for_each_pair(
    table: &Table,
    mut f: impl FnMut(Value, Value) -> Result<bool, Failure>,
) -> Result<(), Failure> {
    let mut failure = None;
    let mut stopped = false;
    let outcome = table.for_each(|key: Value, value: Value| match f(key, value) {
        Ok(true) => Ok(()),
        Ok(false) => {
            stopped = true;
            Err(mlua::Error::runtime("stop"))
        }
        Err(Failure::Lua(error)) => Err(error),
        Err(other) => {
            failure = Some(other);
            Err(mlua::Error::runtime("failure"))
        }
    });
    match (outcome, failure) {
        (_, Some(failure)) => Err(failure),
        (Err(_), None) if stopped => Ok(()),
        (Err(error), None) => Err(Failure::Lua(error)),
        (Ok(()), None) => Ok(()),
    }
}

/// Helpers the libraries' unit tests share.
#[cfg(test)]
pub mod testing {
    use mlua::Lua;

    /// A bare Lua state with one library opened by `open`.
    pub fn lua_with(open: fn(&Lua) -> mlua::Result<()>) -> Lua {
        let lua = Lua::new();
        open(&lua).unwrap();
        lua
    }

    /// What `code` returns.
    pub fn eval<T: mlua::FromLuaMulti>(lua: &Lua, code: &str) -> T {
        lua.load(code).eval().unwrap()
    }

    /// The error message `code` raises (it must raise one).
    pub fn error_of(lua: &Lua, code: &str) -> String {
        let (ok, message): (bool, String) = lua
            .load(format!("return pcall(function() {code} end)"))
            .eval()
            .unwrap();
        assert!(!ok, "{code} did not fail");
        message
    }
}
