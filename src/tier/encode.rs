//! Re-encodes a reply the upstream Redis sent (parsed by the `redis` crate)
//! for our client, in the protocol the client negotiated.
//!
//! Forwarded commands run on an upstream connection speaking the client's own
//! protocol (RESP2 or RESP3), so reply shapes are exactly Redis's; only the
//! framing is rebuilt here. One loss of the parser is made up for: RESP2's two
//! nulls (`$-1` and `*-1`) both parse as `Nil`, so the caller says which one the
//! command's top-level null is (see [`null_is_array`]).

use bytes::Bytes;
use redis::Value;

use crate::protocol::Reply;

/// Whether the command's top-level null reply is a null *array* in RESP2
/// (blocking pops timing out, LMPOP/ZMPOP finding nothing, LPOP/RPOP with a
/// count on a missing key, an aborted EXEC).
pub fn null_is_array(args: &[Bytes]) -> bool {
    let name = args[0].to_ascii_lowercase();
    match name.as_slice() {
        b"blpop" | b"brpop" | b"blmpop" | b"bzpopmin" | b"bzpopmax" | b"bzmpop" | b"lmpop"
        | b"zmpop" | b"exec" | b"xread" | b"xreadgroup" => true,
        b"lpop" | b"rpop" => args.len() == 3,
        _ => false,
    }
}

/// The text of a server error (`CODE detail`).
pub fn error_text(err: &redis::ServerError) -> String {
    match err.details() {
        Some(d) if !d.is_empty() => format!("{} {}", err.code(), d),
        _ => err.code().to_string(),
    }
}

/// Writes `v` to `out`; `null_array` says how a top-level RESP2 null is written.
pub fn write_value(out: &mut Reply, v: &Value, null_array: bool) {
    match v {
        Value::Nil => {
            if null_array {
                out.null_array()
            } else {
                out.null()
            }
        }
        Value::Int(i) => out.int(*i),
        Value::BulkString(b) => out.bulk(b),
        Value::Array(items) => {
            out.array(items.len());
            for i in items {
                write_value(out, i, false);
            }
        }
        Value::SimpleString(s) => out.simple(s),
        Value::Okay => out.ok(),
        Value::Map(pairs) => {
            out.map(pairs.len());
            for (k, v) in pairs {
                write_value(out, k, false);
                write_value(out, v, false);
            }
        }
        Value::Attribute { data, .. } => write_value(out, data, null_array),
        Value::Set(items) => {
            out.set(items.len());
            for i in items {
                write_value(out, i, false);
            }
        }
        Value::Double(d) => out.double(*d),
        Value::Boolean(b) => out.boolean(*b),
        Value::VerbatimString { format, text } => {
            out.verbatim(&format.to_string(), text.as_bytes())
        }
        Value::BigNumber(n) => {
            let s = n.to_string();
            if out.resp3 {
                out.raw(b"(");
                out.raw(s.as_bytes());
                out.raw(b"\r\n");
            } else {
                out.bulk(s.as_bytes());
            }
        }
        Value::Push { data, .. } => {
            out.push(data.len());
            for i in data {
                write_value(out, i, false);
            }
        }
        Value::ServerError(e) => out.error(&error_text(e)),
        _ => out.error("ERR unsupported reply from the upstream tier"),
    }
}

/// Encodes a whole reply to bytes.
pub fn encode(v: &Value, resp3: bool, null_array: bool) -> Bytes {
    let mut out = Reply::new(resp3);
    write_value(&mut out, v, null_array);
    out.buf.freeze()
}

/// Encodes an error reply.
pub fn encode_error(msg: &str) -> Bytes {
    let mut out = Reply::new(false);
    out.error(msg);
    out.buf.freeze()
}
