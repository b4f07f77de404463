//! Conversions between RESP replies and Lua values, by Redis 7.0's rules
//! (`redisProtocolToLuaType_*` and `luaReplyToRedisReply` in script_lua.c).

use mlua::{Lua, Table, Value};

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

/// Parses one RESP2/RESP3 reply into a Lua value. Returns the value and
/// whether the top-level reply was an error. A malformed reply becomes an
/// error table (the host is trusted, so this is a bug guard, not a rule).
pub(crate) fn reply_to_lua(lua: &Lua, reply: &[u8]) -> mlua::Result<(Value, bool)> {
    let is_err = reply.first() == Some(&b'-');
    let mut pos = 0;
    match parse(lua, reply, &mut pos, 0)? {
        Some(v) => Ok((v, is_err)),
        None => Ok((
            Value::Table(error_table(lua, b"-ERR malformed reply from the server")?),
            true,
        )),
    }
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

/// None: malformed. Nested replies deeper than [`MAX_REPLY_DEPTH`] are malformed.
fn parse(lua: &Lua, buf: &[u8], pos: &mut usize, depth: usize) -> mlua::Result<Option<Value>> {
    if depth > MAX_REPLY_DEPTH {
        return Ok(None);
    }
    let Some(&kind) = buf.get(*pos) else {
        return Ok(None);
    };
    *pos += 1;
    let Some(head) = line(buf, pos) else {
        return Ok(None);
    };
    let table1 = |k: &str, v: Value| -> mlua::Result<Option<Value>> {
        let t = lua.create_table()?;
        t.raw_set(k, v)?;
        Ok(Some(Value::Table(t)))
    };
    match kind {
        b':' => Ok(number(head).map(|n| Value::Number(n as f64))),
        b'+' => table1("ok", Value::String(lua.create_string(head)?)),
        b'-' => {
            let mut raw = Vec::with_capacity(head.len() + 1);
            raw.push(b'-');
            raw.extend_from_slice(head);
            let t = error_table(lua, &raw)?;
            t.raw_set("ignore_error_stats_update", true)?;
            Ok(Some(Value::Table(t)))
        }
        b'$' => {
            let Some(len) = number(head) else {
                return Ok(None);
            };
            if len < 0 {
                return Ok(Some(Value::Boolean(false)));
            }
            match bulk(buf, pos, len) {
                Some(data) => Ok(Some(Value::String(lua.create_string(data)?))),
                None => Ok(None),
            }
        }
        b'*' | b'~' | b'%' | b'>' | b'|' => {
            let Some(len) = number(head) else {
                return Ok(None);
            };
            if len < 0 {
                return Ok(Some(Value::Boolean(false)));
            }
            let t = lua.create_table()?;
            for j in 0..len {
                match kind {
                    b'%' | b'|' => {
                        let Some(k) = parse(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        let Some(v) = parse(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        if !k.is_nil() {
                            t.raw_set(k, v)?;
                        }
                    }
                    b'~' => {
                        let Some(k) = parse(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        if !k.is_nil() {
                            t.raw_set(k, true)?;
                        }
                    }
                    _ => {
                        let Some(v) = parse(lua, buf, pos, depth + 1)? else {
                            return Ok(None);
                        };
                        t.raw_set(j + 1, v)?;
                    }
                }
            }
            match kind {
                // An attribute is read and dropped; the reply follows it.
                b'|' => parse(lua, buf, pos, depth + 1),
                b'%' => table1("map", Value::Table(t)),
                b'~' => table1("set", Value::Table(t)),
                _ => Ok(Some(Value::Table(t))),
            }
        }
        b'_' => Ok(Some(Value::Nil)),
        b'#' => Ok(Some(Value::Boolean(head == b"t"))),
        b',' => {
            let text = std::str::from_utf8(head).unwrap_or("");
            let d = match text {
                "inf" => f64::INFINITY,
                "-inf" => f64::NEG_INFINITY,
                _ => text.parse::<f64>().unwrap_or(f64::NAN),
            };
            table1("double", Value::Number(d))
        }
        b'(' => table1("big_number", Value::String(lua.create_string(head)?)),
        b'=' | b'!' => {
            let Some(len) = number(head) else {
                return Ok(None);
            };
            let Some(data) = bulk(buf, pos, len) else {
                return Ok(None);
            };
            if kind == b'!' {
                let mut raw = vec![b'-'];
                raw.extend_from_slice(data);
                return Ok(Some(Value::Table(error_table(lua, &raw)?)));
            }
            let (format, text) = if data.len() >= 4 {
                (&data[..3], &data[4..])
            } else {
                (&b"txt"[..], data)
            };
            let inner = lua.create_table()?;
            inner.raw_set("string", lua.create_string(text)?)?;
            inner.raw_set("format", lua.create_string(format)?)?;
            table1("verbatim_string", Value::Table(inner))
        }
        _ => Ok(None),
    }
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
