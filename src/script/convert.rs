//! Conversions between RESP replies and Lua values, by Redis 7.0's rules
//! (`redisProtocolToLuaType_*` and `luaReplyToRedisReply` in script_lua.c).

use mlua::{ffi, Lua, Table, Value};

use crate::protocol::Reply;

/// How deep a script's return value may nest before the conversion writes
/// "reached lua stack limit" in place of the deeper part. Redis stops near
/// Lua's C stack limit (8000 slots, about 4000 levels); a table nested this
/// deep is a bug (a table containing itself) or an attack.
pub(crate) const MAX_DEPTH: usize = 1000;

/// The `{err=...}` table of `luaPushErrorBuff`: "-CODE msg" becomes
/// "CODE msg", a text without a leading '-' gets the code ERR; newlines at
/// the ends are trimmed.
pub(crate) fn error_text(raw: &[u8]) -> Vec<u8> {
    let (code, msg): (&[u8], &[u8]) = match raw.strip_prefix(b"-") {
        Some(rest) => match rest.iter().position(|&b| b == b' ') {
            Some(sp) => (&rest[..sp], &rest[sp + 1..]),
            None => (b"ERR", rest),
        },
        None => (b"ERR", raw),
    };
    let is_nl = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !is_nl(b)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|b| !is_nl(b)).map_or(start, |e| e + 1);
    let mut out = Vec::with_capacity(code.len() + 1 + end - start);
    out.extend_from_slice(code);
    out.push(b' ');
    out.extend_from_slice(&msg[start..end.max(start)]);
    out
}

pub(crate) fn error_table(lua: &Lua, raw: &[u8]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("err", lua.create_string(error_text(raw))?)?;
    Ok(t)
}

/// Pushes one RESP2/RESP3 reply as a Lua value and returns whether the
/// top-level reply was an error. A malformed reply becomes an error table
/// (the host is trusted, so this is a bug guard, not a rule).
///
/// # Safety
/// `state` is a Lua state with room for one value. The pushes are
/// unprotected (as mlua's own are with no memory limit set, jcache's case):
/// no frame of the caller that a Lua error could unwind may own a value
/// with a destructor.
pub(crate) unsafe fn push_reply(state: *mut ffi::lua_State, reply: &[u8]) -> bool {
    let top = ffi::lua_gettop(state);
    let mut pos = 0;
    if push_value(state, reply, &mut pos, 0) {
        return reply.first() == Some(&b'-');
    }
    ffi::lua_settop(state, top);
    push_error_table(state, b"-ERR malformed reply from the server");
    true
}

/// Pushes the `{err=...}` table of [`error_text`] (without allocating on
/// the Rust side).
///
/// # Safety
/// As [`push_reply`].
pub(crate) unsafe fn push_error_table(state: *mut ffi::lua_State, raw: &[u8]) {
    match raw.strip_prefix(b"-") {
        Some(rest) => push_error_table_parts(state, rest),
        None => push_error_fields(state, b"ERR", raw),
    }
}

/// [`push_error_table`] of "-" followed by `rest`.
unsafe fn push_error_table_parts(state: *mut ffi::lua_State, rest: &[u8]) {
    match rest.iter().position(|&b| b == b' ') {
        Some(sp) => push_error_fields(state, &rest[..sp], &rest[sp + 1..]),
        None => push_error_fields(state, b"ERR", rest),
    }
}

unsafe fn push_error_fields(state: *mut ffi::lua_State, code: &[u8], msg: &[u8]) {
    let is_nl = |b: &u8| *b == b'\r' || *b == b'\n';
    let start = msg.iter().position(|b| !is_nl(b)).unwrap_or(msg.len());
    let end = msg.iter().rposition(|b| !is_nl(b)).map_or(start, |e| e + 1);
    ffi::lua_createtable(state, 0, 1);
    push_bytes(state, code);
    push_bytes(state, b" ");
    push_bytes(state, &msg[start..end.max(start)]);
    ffi::lua_concat(state, 3);
    ffi::lua_setfield(state, -2, c"err".as_ptr());
}

unsafe fn push_bytes(state: *mut ffi::lua_State, s: &[u8]) {
    ffi::lua_pushlstring(state, s.as_ptr().cast(), s.len());
}

/// Replaces the value on top of the stack with `{key = value}`.
unsafe fn wrap(state: *mut ffi::lua_State, key: &std::ffi::CStr) {
    ffi::lua_createtable(state, 0, 1);
    ffi::lua_insert(state, -2);
    ffi::lua_setfield(state, -2, key.as_ptr());
}

fn line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*pos..)?;
    let end = rest.windows(2).position(|w| w == b"\r\n")?;
    *pos += end + 2;
    Some(&rest[..end])
}

fn number(s: &[u8]) -> Option<i64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn bulk<'a>(buf: &'a [u8], pos: &mut usize, len: i64) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let data = buf.get(*pos..pos.checked_add(len)?)?;
    *pos += len + 2;
    Some(data)
}

/// How deep a command's reply may nest on its way into Lua. Replies of
/// real commands nest two or three levels; the parser recurses, so the
/// bound keeps the thread's stack safe.
const MAX_REPLY_DEPTH: usize = 128;

/// Pushes one value (Redis's `redisProtocolToLuaType_*`); false if it is
/// malformed (then what it pushed is left for the caller to drop). Nested
/// replies deeper than [`MAX_REPLY_DEPTH`] are malformed.
unsafe fn push_value(
    state: *mut ffi::lua_State,
    buf: &[u8],
    pos: &mut usize,
    depth: usize,
) -> bool {
    if depth > MAX_REPLY_DEPTH || ffi::lua_checkstack(state, 4) == 0 {
        return false;
    }
    let Some(&kind) = buf.get(*pos) else {
        return false;
    };
    *pos += 1;
    let Some(head) = line(buf, pos) else {
        return false;
    };
    match kind {
        b':' => match number(head) {
            Some(n) => ffi::lua_pushnumber(state, n as f64),
            None => return false,
        },
        b'+' => {
            push_bytes(state, head);
            wrap(state, c"ok");
        }
        b'-' => {
            push_error_table_parts(state, head);
            ffi::lua_pushboolean(state, 1);
            ffi::lua_setfield(state, -2, c"ignore_error_stats_update".as_ptr());
        }
        b'$' => {
            let Some(len) = number(head) else {
                return false;
            };
            if len < 0 {
                ffi::lua_pushboolean(state, 0);
            } else {
                match bulk(buf, pos, len) {
                    Some(data) => push_bytes(state, data),
                    None => return false,
                }
            }
        }
        b'*' | b'~' | b'%' | b'>' | b'|' => {
            let Some(len) = number(head) else {
                return false;
            };
            if len < 0 {
                ffi::lua_pushboolean(state, 0);
                return true;
            }
            ffi::lua_createtable(state, 0, 0);
            for j in 0..len {
                match kind {
                    b'%' | b'|' => {
                        if !push_value(state, buf, pos, depth + 1)
                            || !push_value(state, buf, pos, depth + 1)
                        {
                            return false;
                        }
                        if ffi::lua_isnil(state, -2) != 0 {
                            ffi::lua_pop(state, 2);
                        } else {
                            ffi::lua_rawset(state, -3);
                        }
                    }
                    b'~' => {
                        if !push_value(state, buf, pos, depth + 1) {
                            return false;
                        }
                        if ffi::lua_isnil(state, -1) != 0 {
                            ffi::lua_pop(state, 1);
                        } else {
                            ffi::lua_pushboolean(state, 1);
                            ffi::lua_rawset(state, -3);
                        }
                    }
                    _ => {
                        if !push_value(state, buf, pos, depth + 1) {
                            return false;
                        }
                        ffi::lua_rawseti(state, -2, (j + 1) as ffi::lua_Integer);
                    }
                }
            }
            match kind {
                // An attribute is read and dropped; the reply follows it.
                b'|' => {
                    ffi::lua_pop(state, 1);
                    return push_value(state, buf, pos, depth + 1);
                }
                b'%' => wrap(state, c"map"),
                b'~' => wrap(state, c"set"),
                _ => {}
            }
        }
        b'_' => ffi::lua_pushnil(state),
        b'#' => ffi::lua_pushboolean(state, (head == b"t") as std::ffi::c_int),
        b',' => {
            let text = std::str::from_utf8(head).unwrap_or("");
            let d = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => text.parse::<f64>().unwrap_or(f64::NAN),
            };
            ffi::lua_pushnumber(state, d);
            wrap(state, c"double");
        }
        b'(' => {
            push_bytes(state, head);
            wrap(state, c"big_number");
        }
        b'=' | b'!' => {
            let Some(len) = number(head) else {
                return false;
            };
            let Some(data) = bulk(buf, pos, len) else {
                return false;
            };
            if kind == b'!' {
                push_error_table_parts(state, data);
                return true;
            }
            let (format, text) = if data.len() >= 4 {
                (&data[..3], &data[4..])
            } else {
                (&b"txt"[..], data)
            };
            ffi::lua_createtable(state, 0, 2);
            push_bytes(state, text);
            ffi::lua_setfield(state, -2, c"string".as_ptr());
            push_bytes(state, format);
            ffi::lua_setfield(state, -2, c"format".as_ptr());
            wrap(state, c"verbatim_string");
        }
        _ => return false,
    }
    true
}

/// Writes a script's return value as the reply (`luaReplyToRedisReply`).
/// `resp3_script`: the script called `redis.setresp(3)` (booleans are then
/// RESP3 booleans; with 2, true is 1 and false is null). Iterative (an
/// explicit stack in pre-order), so a deep table cannot overflow the
/// thread's stack.
pub(crate) fn lua_to_reply(value: &Value, out: &mut Reply, resp3_script: bool) {
    let mut work = vec![(value.clone(), 0usize)];
    while let Some((value, depth)) = work.pop() {
        if depth > MAX_DEPTH {
            out.error("ERR reached lua stack limit");
            continue;
        }
        match value {
            Value::String(s) => out.bulk(&s.as_bytes()),
            Value::Boolean(b) => {
                if resp3_script {
                    out.boolean(b);
                } else if b {
                    out.int(1);
                } else {
                    out.null();
                }
            }
            Value::Number(n) => out.int(c_double_to_ll(n)),
            Value::Integer(n) => out.int(n),
            Value::Table(t) => {
                let children = write_table(&t, out);
                work.extend(children.into_iter().rev().map(|c| (c, depth + 1)));
            }
            _ => out.null(),
        }
    }
}

/// C's `(long long)d`: truncation; out of range and NaN are undefined in C
/// (x86 yields i64::MIN); Rust saturates, which we keep.
fn c_double_to_ll(d: f64) -> i64 {
    d as i64
}

fn field(t: &Table, name: &str) -> Value {
    t.raw_get(name).unwrap_or(Value::Nil)
}

/// Bytes up to the first NUL (what `sdsnew(lua_tostring(..))` keeps), with
/// CR and LF mapped to spaces.
fn status_text(s: &[u8]) -> String {
    let s = s.split(|&b| b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(s).replace(['\r', '\n'], " ")
}

/// Writes a table's own reply (or its header) and returns the values to
/// write after it, in order.
fn write_table(t: &Table, out: &mut Reply) -> Vec<Value> {
    if let Value::String(e) = field(t, "err") {
        // `addReplyErrorFormatEx(c, .., "-%s", msg)`: the text as it is.
        let msg = e.as_bytes();
        let msg = msg.split(|&b| b == 0).next().unwrap_or_default();
        out.error(&String::from_utf8_lossy(msg));
        return Vec::new();
    }
    if let Value::String(s) = field(t, "ok") {
        out.simple(&status_text(&s.as_bytes()));
        return Vec::new();
    }
    if let Value::Number(d) = field(t, "double") {
        out.double(d);
        return Vec::new();
    }
    if let Value::String(s) = field(t, "big_number") {
        let text = status_text(&s.as_bytes());
        if out.resp3 {
            out.raw(b"(");
            out.raw(text.as_bytes());
            out.raw(b"\r\n");
        } else {
            out.bulk(text.as_bytes());
        }
        return Vec::new();
    }
    if let Value::Table(v) = field(t, "verbatim_string") {
        if let (Value::String(format), Value::String(text)) =
            (field(&v, "format"), field(&v, "string"))
        {
            let format = format.as_bytes();
            let format = String::from_utf8_lossy(format.get(..3).unwrap_or(&format));
            out.verbatim(&format, &text.as_bytes());
            return Vec::new();
        }
    }
    if let Value::Table(m) = field(t, "map") {
        let pairs: Vec<(Value, Value)> = m.pairs::<Value, Value>().filter_map(Result::ok).collect();
        out.map(pairs.len());
        return pairs.into_iter().flat_map(|(k, v)| [k, v]).collect();
    }
    if let Value::Table(s) = field(t, "set") {
        let keys: Vec<Value> = s
            .pairs::<Value, Value>()
            .filter_map(|p| p.ok().map(|(k, _)| k))
            .collect();
        out.set(keys.len());
        return keys;
    }
    let mut items = Vec::new();
    loop {
        let v: Value = t.raw_get(items.len() + 1).unwrap_or(Value::Nil);
        if v.is_nil() {
            break;
        }
        items.push(v);
    }
    out.array(items.len());
    items
}
