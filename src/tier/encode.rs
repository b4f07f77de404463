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
        Value::Push { kind, data } => {
            // The parser takes the kind (the push's first element) apart.
            out.push(data.len() + 1);
            out.bulk(kind.to_string().as_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use redis::{parse_redis_value, VerbatimFormat};

    fn args(cmd: &str) -> Vec<Bytes> {
        cmd.split_whitespace()
            .map(|a| Bytes::copy_from_slice(a.as_bytes()))
            .collect()
    }

    fn text(b: &Bytes) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// A push keeps its kind: the upstream's `>3 message ch msg` is
    /// written back as three elements, not two.
    #[test]
    fn a_push_keeps_its_kind() {
        let wire = b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n";
        let v = parse_redis_value(wire).unwrap();
        let mut out = Reply::new(true);
        write_value(&mut out, &v, false);
        assert_eq!(&out.buf[..], &wire[..]);
        let mut out2 = Reply::new(false);
        write_value(&mut out2, &v, false);
        assert_eq!(
            &out2.buf[..],
            &b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nmsg\r\n"[..]
        );
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    /// Encoded in RESP3 and parsed back, `v` is itself.
    fn round_trips(v: &Value) {
        let wire = encode(v, true, false);
        let back = parse_redis_value(&wire).unwrap_or_else(|e| panic!("{}: {e}", text(&wire)));
        assert_eq!(&back, v, "{}", text(&wire));
    }

    #[test]
    fn null_arrays_are_the_commands_whose_resp2_null_is_star_minus_one() {
        for cmd in [
            "BLPOP l 0",
            "brpop l 0",
            "BLMPOP 0 1 l LEFT",
            "BZPOPMIN z 0",
            "bzpopmax z 0",
            "BZMPOP 0 1 z MIN",
            "LMPOP 1 l LEFT",
            "ZMPOP 1 z MIN",
            "EXEC",
            "XREAD STREAMS s 0",
            "XREADGROUP GROUP g c STREAMS s >",
            "LPOP l 2",
            "rpop l 2",
        ] {
            assert!(null_is_array(&args(cmd)), "{cmd}");
        }
        for cmd in [
            "LPOP l",
            "RPOP l",
            "GET k",
            "HGET h f",
            "ZSCORE z m",
            "LINDEX l 0",
        ] {
            assert!(!null_is_array(&args(cmd)), "{cmd}");
        }
    }

    #[test]
    fn a_top_level_null_follows_the_command_and_protocol() {
        assert_eq!(encode(&Value::Nil, false, false), &b"$-1\r\n"[..]);
        assert_eq!(encode(&Value::Nil, false, true), &b"*-1\r\n"[..]);
        assert_eq!(encode(&Value::Nil, true, false), &b"_\r\n"[..]);
        assert_eq!(encode(&Value::Nil, true, true), &b"_\r\n"[..]);
        // Nested nulls are always bulk nulls in RESP2.
        let v = Value::Array(vec![Value::Nil, bulk("a")]);
        assert_eq!(encode(&v, false, true), &b"*2\r\n$-1\r\n$1\r\na\r\n"[..]);
        // An attribute is dropped; its data keeps the top-level rule.
        let a = Value::Attribute {
            data: Box::new(Value::Nil),
            attributes: vec![(bulk("k"), bulk("v"))],
        };
        assert_eq!(encode(&a, false, true), &b"*-1\r\n"[..]);
    }

    #[test]
    fn resp2_scalars_are_written_as_redis_does() {
        let cases: Vec<(Value, &str)> = vec![
            (Value::Int(-42), ":-42\r\n"),
            (bulk(""), "$0\r\n\r\n"),
            (Value::BulkString(b"a\r\nb".to_vec()), "$4\r\na\r\nb\r\n"),
            (Value::SimpleString("PONG".into()), "+PONG\r\n"),
            (Value::Okay, "+OK\r\n"),
            (Value::Double(1.5), "$3\r\n1.5\r\n"),
            (Value::Double(f64::INFINITY), "$3\r\ninf\r\n"),
            (Value::Boolean(true), ":1\r\n"),
            (Value::Boolean(false), ":0\r\n"),
            (
                Value::VerbatimString {
                    format: VerbatimFormat::Text,
                    text: "hi".into(),
                },
                "$2\r\nhi\r\n",
            ),
            (Value::Array(vec![]), "*0\r\n"),
        ];
        for (v, expect) in cases {
            assert_eq!(text(&encode(&v, false, false)), expect, "{v:?}");
        }
    }

    #[test]
    fn resp2_degrades_maps_and_sets_to_arrays() {
        let m = Value::Map(vec![(bulk("a"), Value::Int(1)), (bulk("b"), Value::Nil)]);
        assert_eq!(
            text(&encode(&m, false, false)),
            "*4\r\n$1\r\na\r\n:1\r\n$1\r\nb\r\n$-1\r\n"
        );
        let s = Value::Set(vec![bulk("x")]);
        assert_eq!(text(&encode(&s, false, false)), "*1\r\n$1\r\nx\r\n");
        assert_eq!(text(&encode(&s, true, false)), "~1\r\n$1\r\nx\r\n");
    }

    #[test]
    fn resp3_values_round_trip_through_the_redis_parser() {
        let big = parse_redis_value(b"(3492890328409238509324850943850943825024385\r\n").unwrap();
        assert!(matches!(big, Value::BigNumber(_)), "{big:?}");
        for v in [
            Value::Nil,
            Value::Int(i64::MIN),
            bulk("hello"),
            Value::BulkString(vec![0, 255, b'\r', b'\n']),
            Value::SimpleString("QUEUED".into()),
            Value::Okay,
            Value::Double(-0.25),
            Value::Double(f64::NEG_INFINITY),
            Value::Boolean(true),
            Value::Boolean(false),
            Value::VerbatimString {
                format: VerbatimFormat::Markdown,
                text: "# t".into(),
            },
            big.clone(),
            Value::Array(vec![Value::Int(1), Value::Array(vec![]), Value::Nil]),
            Value::Map(vec![
                (bulk("f"), Value::Double(2.5)),
                (Value::Int(7), Value::Set(vec![bulk("m")])),
            ]),
            Value::Set(vec![]),
            Value::Array(vec![big, Value::Map(vec![])]),
        ] {
            round_trips(&v);
        }
    }

    #[test]
    fn big_numbers_are_bulk_strings_in_resp2() {
        let big = parse_redis_value(b"(-12345678901234567890\r\n").unwrap();
        assert_eq!(
            text(&encode(&big, true, false)),
            "(-12345678901234567890\r\n"
        );
        assert_eq!(
            text(&encode(&big, false, false)),
            "$21\r\n-12345678901234567890\r\n"
        );
    }

    #[test]
    fn server_errors_keep_their_code_and_detail() {
        let v = parse_redis_value(b"*2\r\n-WRONGTYPE Operation against a key\r\n-ERR\r\n").unwrap();
        assert_eq!(
            text(&encode(&v, false, false)),
            "*2\r\n-WRONGTYPE Operation against a key\r\n-ERR\r\n"
        );
        let Value::Array(items) = v else {
            panic!("{v:?}")
        };
        let Value::ServerError(e) = &items[0] else {
            panic!("{items:?}")
        };
        assert_eq!(error_text(e), "WRONGTYPE Operation against a key");
        let Value::ServerError(e) = &items[1] else {
            panic!("{items:?}")
        };
        assert_eq!(error_text(e), "ERR");
    }

    #[test]
    fn an_error_reply_is_one_line() {
        assert_eq!(
            encode_error("ERR upstream down"),
            &b"-ERR upstream down\r\n"[..]
        );
        // A line break in a message cannot end the reply early.
        assert_eq!(encode_error("ERR a\r\nb"), &b"-ERR a  b\r\n"[..]);
    }
}
