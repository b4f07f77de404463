//! Lua library `cjson`, as Redis ships it: Lua CJSON 2.1.0.
//!
//! Encoding: numbers with `%.14g` (configurable precision), `{}` for an
//! empty table, arrays for tables whose keys are all positive integers
//! unless too sparse, `cjson.null` (a NULL light userdata) and nil as
//! `null`. Decoding: `strtod` numbers (hex, inf and nan accepted by
//! default), `null` as `cjson.null`, and CJSON's error texts and limits.

use std::sync::{Arc, Mutex};

use mlua::{Function, LightUserData, Lua, LuaString, Table, Value};

use super::support::{
    c_f64_to_i32, error, for_each_pair, lua_type_name, register, results, Args, CallResult,
    Failure, MAX_C_STACK,
};

mod number;

/// Registers the global table.
pub fn open(lua: &Lua) -> mlua::Result<()> {
    let table = new_module(lua)?;
    lua.globals().raw_set("cjson", table)
}

/// The settings of one module table (`cjson.new()` makes another).
#[derive(Clone, Copy)]
struct Config {
    sparse_convert: i32,
    sparse_ratio: i32,
    sparse_safe: i32,
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0 refuses NaN/Inf, 1 writes them (`nan`, `inf`), 2 writes `null`.
    encode_invalid_numbers: i32,
    decode_invalid_numbers: i32,
    encode_keep_buffer: i32,
    number_precision: i32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            sparse_convert: 0,
            sparse_ratio: 2,
            sparse_safe: 10,
            encode_max_depth: 1000,
            decode_max_depth: 1000,
            encode_invalid_numbers: 0,
            decode_invalid_numbers: 1,
            encode_keep_buffer: 1,
            number_precision: 14,
        }
    }
}

type Shared = Arc<Mutex<Config>>;

fn snapshot(config: &Shared) -> Config {
    *config.lock().unwrap_or_else(|e| e.into_inner())
}

fn update(config: &Shared, f: impl FnOnce(&mut Config)) {
    f(&mut config.lock().unwrap_or_else(|e| e.into_inner()));
}

fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

/// `lua_cjson_new`: a module table with its own configuration.
fn new_module(lua: &Lua) -> mlua::Result<Table> {
    let table = lua.create_table()?;
    let config: Shared = Arc::new(Mutex::new(Config::default()));
    let c = config.clone();
    let next: Function = lua.globals().raw_get("next")?;
    register(lua, &table, "encode", move |args| {
        encode(args, snapshot(&c), &next)
    })?;
    let c = config.clone();
    register(lua, &table, "decode", move |args| {
        decode(args, snapshot(&c))
    })?;
    let c = config.clone();
    register(lua, &table, "encode_sparse_array", move |args| {
        arg_init(args, 3)?;
        let convert = enum_option(args, 1, &c, |c| &mut c.sparse_convert, &["off", "on"])?;
        let ratio = integer_option(args, 2, &c, |c| &mut c.sparse_ratio, 0, i32::MAX)?;
        let safe = integer_option(args, 3, &c, |c| &mut c.sparse_safe, 0, i32::MAX)?;
        results([convert, ratio, safe])
    })?;
    let c = config.clone();
    register(lua, &table, "encode_max_depth", move |args| {
        arg_init(args, 1)?;
        let v = integer_option(args, 1, &c, |c| &mut c.encode_max_depth, 1, i32::MAX)?;
        results([v])
    })?;
    let c = config.clone();
    register(lua, &table, "decode_max_depth", move |args| {
        arg_init(args, 1)?;
        let v = integer_option(args, 1, &c, |c| &mut c.decode_max_depth, 1, i32::MAX)?;
        results([v])
    })?;
    let c = config.clone();
    register(lua, &table, "encode_number_precision", move |args| {
        arg_init(args, 1)?;
        let v = integer_option(args, 1, &c, |c| &mut c.number_precision, 1, 14)?;
        results([v])
    })?;
    let c = config.clone();
    register(lua, &table, "encode_keep_buffer", move |args| {
        arg_init(args, 1)?;
        let v = enum_option(args, 1, &c, |c| &mut c.encode_keep_buffer, &["off", "on"])?;
        results([v])
    })?;
    let c = config.clone();
    register(lua, &table, "encode_invalid_numbers", move |args| {
        arg_init(args, 1)?;
        let options = ["off", "on", "null"];
        let v = enum_option(args, 1, &c, |c| &mut c.encode_invalid_numbers, &options)?;
        results([v])
    })?;
    let c = config;
    register(lua, &table, "decode_invalid_numbers", move |args| {
        arg_init(args, 1)?;
        let v = enum_option(
            args,
            1,
            &c,
            |c| &mut c.decode_invalid_numbers,
            &["off", "on"],
        )?;
        results([v])
    })?;
    register(lua, &table, "new", |args| {
        results([Value::Table(new_module(args.lua)?)])
    })?;
    table.raw_set("null", null())?;
    table.raw_set("_NAME", "cjson")?;
    table.raw_set("_VERSION", "2.1.0")?;
    Ok(table)
}

// ===== Configuration =====

/// `json_arg_init`: at most `count` arguments.
fn arg_init(args: &Args, count: usize) -> Result<(), Failure> {
    if args.count() > count {
        return Err(args.arg_error(count + 1, b"found too many arguments"));
    }
    Ok(())
}

/// `json_integer_option`. The range error always names argument 1, as
/// CJSON does.
fn integer_option(
    args: &Args,
    index: usize,
    config: &Shared,
    field: fn(&mut Config) -> &mut i32,
    min: i32,
    max: i32,
) -> Result<Value, Failure> {
    if !args.is_none_or_nil(index) {
        let value = args.check_integer(index)? as i32;
        if !(min..=max).contains(&value) {
            let message = format!("expected integer between {min} and {max}");
            return Err(args.arg_error(1, message.as_bytes()));
        }
        update(config, |c| *field(c) = value);
    }
    let mut current = 0;
    update(config, |c| current = *field(c));
    Ok(Value::Number(f64::from(current)))
}

/// `json_enum_option` with `bool_true` 1: booleans, or one of `options`.
fn enum_option(
    args: &Args,
    index: usize,
    config: &Shared,
    field: fn(&mut Config) -> &mut i32,
    options: &[&str],
) -> Result<Value, Failure> {
    match args.get(index) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => update(config, |c| *field(c) = i32::from(*b)),
        Some(_) => {
            let name = args.check_string(index)?;
            let name = name.as_bytes();
            let Some(position) = options.iter().position(|o| o.as_bytes() == &name[..]) else {
                let mut message = b"invalid option '".to_vec();
                message.extend_from_slice(&name);
                message.push(b'\'');
                return Err(args.arg_error(index, &message));
            };
            update(config, |c| *field(c) = position as i32);
        }
    }
    let mut current = 0;
    update(config, |c| current = *field(c));
    Ok(match current {
        0 | 1 => Value::Boolean(current == 1),
        n => Value::String(args.lua.create_string(options[n as usize])?),
    })
}

// ===== Encoding =====

fn encode(args: &Args, config: Config, next: &Function) -> CallResult {
    if args.count() != 1 {
        return Err(args.arg_error(1, b"expected 1 argument"));
    }
    let mut encoder = Encoder {
        config,
        out: Vec::new(),
    };
    encoder.run(args.values[0].clone(), next)?;
    results([Value::String(args.lua.create_string(&encoder.out)?)])
}

struct Encoder {
    config: Config,
    out: Vec<u8>,
}

/// `json_encode_exception`.
fn cannot_serialise(value: &Value, reason: &str) -> Failure {
    error(format!(
        "Cannot serialise {}: {reason}",
        lua_type_name(value)
    ))
}

/// A table being written. `slots` counts the Lua stack the C encoder
/// would hold at this level (for its `lua_checkstack` limit).
enum Open {
    Array {
        table: Table,
        length: i32,
        index: i32,
        depth: i32,
        slots: usize,
    },
    Object {
        table: Table,
        key: Value,
        first: bool,
        depth: i32,
        slots: usize,
    },
}

impl Encoder {
    /// `json_append_data`, iteratively: nesting costs heap, not Rust stack.
    /// Objects are walked with Lua's `next`, in the order `lua_next` gives.
    fn run(&mut self, root: Value, next: &Function) -> Result<(), Failure> {
        let mut open: Vec<Open> = Vec::new();
        let mut pending = Some((root, 0, 1));
        loop {
            if let Some((value, depth, slots)) = pending.take() {
                if let Value::Table(table) = &value {
                    let depth = depth + 1;
                    if depth > self.config.encode_max_depth || slots + 3 > MAX_C_STACK {
                        return Err(excessive_nesting(depth));
                    }
                    let length = self.array_length(table, &value)?;
                    if length > 0 {
                        self.out.push(b'[');
                        open.push(Open::Array {
                            table: table.clone(),
                            length,
                            index: 1,
                            depth,
                            slots,
                        });
                    } else {
                        self.out.push(b'{');
                        open.push(Open::Object {
                            table: table.clone(),
                            key: Value::Nil,
                            first: true,
                            depth,
                            slots,
                        });
                    }
                } else {
                    self.scalar(&value)?;
                }
            }
            let Some(top) = open.last_mut() else {
                return Ok(());
            };
            match top {
                Open::Array {
                    table,
                    length,
                    index,
                    depth,
                    slots,
                } => {
                    if *index > *length {
                        self.out.push(b']');
                        open.pop();
                        continue;
                    }
                    if *index > 1 {
                        self.out.push(b',');
                    }
                    let item: Value = table.raw_get(*index)?;
                    *index += 1;
                    pending = Some((item, *depth, *slots + 1));
                }
                Open::Object {
                    table,
                    key,
                    first,
                    depth,
                    slots,
                } => {
                    let (k, item): (Value, Value) = next.call((table.clone(), key.clone()))?;
                    if k == Value::Nil {
                        self.out.push(b'}');
                        open.pop();
                        continue;
                    }
                    if !*first {
                        self.out.push(b',');
                    }
                    *first = false;
                    match &k {
                        Value::Integer(_) | Value::Number(_) => {
                            self.out.push(b'"');
                            self.number(&k)?;
                            self.out.extend_from_slice(b"\":");
                        }
                        Value::String(s) => {
                            self.string(&s.as_bytes());
                            self.out.push(b':');
                        }
                        _ => {
                            return Err(cannot_serialise(
                                &k,
                                "table key must be a number or string",
                            ))
                        }
                    }
                    *key = k;
                    pending = Some((item, *depth, *slots + 2));
                }
            }
        }
    }

    fn scalar(&mut self, value: &Value) -> Result<(), Failure> {
        match value {
            Value::String(s) => self.string(&s.as_bytes()),
            Value::Integer(_) | Value::Number(_) => self.number(value)?,
            Value::Boolean(true) => self.out.extend_from_slice(b"true"),
            Value::Boolean(false) => self.out.extend_from_slice(b"false"),
            Value::Nil => self.out.extend_from_slice(b"null"),
            Value::LightUserData(ud) if ud.0.is_null() => self.out.extend_from_slice(b"null"),
            _ => return Err(cannot_serialise(value, "type not supported")),
        }
        Ok(())
    }

    fn string(&mut self, bytes: &[u8]) {
        self.out.reserve(bytes.len() + 2);
        self.out.push(b'"');
        for &b in bytes {
            match b {
                b'"' => self.out.extend_from_slice(b"\\\""),
                b'\\' => self.out.extend_from_slice(b"\\\\"),
                b'/' => self.out.extend_from_slice(b"\\/"),
                b'\x08' => self.out.extend_from_slice(b"\\b"),
                b'\t' => self.out.extend_from_slice(b"\\t"),
                b'\n' => self.out.extend_from_slice(b"\\n"),
                b'\x0c' => self.out.extend_from_slice(b"\\f"),
                b'\r' => self.out.extend_from_slice(b"\\r"),
                0..=0x1f | 0x7f => {
                    self.out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                }
                _ => self.out.push(b),
            }
        }
        self.out.push(b'"');
    }

    /// `json_append_number`.
    fn number(&mut self, value: &Value) -> Result<(), Failure> {
        let n = match value {
            Value::Integer(i) => *i as f64,
            Value::Number(n) => *n,
            _ => 0.0,
        };
        match self.config.encode_invalid_numbers {
            0 if !n.is_finite() => return Err(cannot_serialise(value, "must not be NaN or Inf")),
            1 if n.is_nan() => {
                self.out.extend_from_slice(b"nan");
                return Ok(());
            }
            0 | 1 => {}
            _ if !n.is_finite() => {
                self.out.extend_from_slice(b"null");
                return Ok(());
            }
            _ => {}
        }
        let text = number::format_g(n, self.config.number_precision as usize);
        self.out.extend_from_slice(text.as_bytes());
        Ok(())
    }

    /// `lua_array_length`: the largest key when every key is a positive
    /// integer and the table is not excessively sparse, else -1 (object).
    fn array_length(&mut self, table: &Table, value: &Value) -> Result<i32, Failure> {
        let mut max: i32 = 0;
        let mut items: i32 = 0;
        let mut array = true;
        for_each_pair(table, |key, _| {
            let k = match key {
                Value::Integer(i) => i as f64,
                Value::Number(n) => n,
                _ => f64::NAN,
            };
            // A zero key fails the C test `(k = lua_tonumber(...))` too.
            if k != 0.0 && k.floor() == k && k >= 1.0 {
                if k > f64::from(max) {
                    max = c_f64_to_i32(k);
                }
                items = items.wrapping_add(1);
                Ok(true)
            } else {
                array = false;
                Ok(false)
            }
        })?;
        if !array {
            return Ok(-1);
        }
        let ratio = self.config.sparse_ratio;
        if ratio > 0 && max > items.wrapping_mul(ratio) && max > self.config.sparse_safe {
            if self.config.sparse_convert == 0 {
                return Err(cannot_serialise(value, "excessively sparse array"));
            }
            return Ok(-1);
        }
        Ok(max)
    }
}

fn excessive_nesting(depth: i32) -> Failure {
    error(format!("Cannot serialise, excessive nesting ({depth})"))
}

// ===== Decoding =====

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    String,
    Number,
    Boolean,
    Null,
    Colon,
    Comma,
    End,
    Error,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ObjBegin => "T_OBJ_BEGIN",
            Kind::ObjEnd => "T_OBJ_END",
            Kind::ArrBegin => "T_ARR_BEGIN",
            Kind::ArrEnd => "T_ARR_END",
            Kind::String => "T_STRING",
            Kind::Number => "T_NUMBER",
            Kind::Boolean => "T_BOOLEAN",
            Kind::Null => "T_NULL",
            Kind::Colon => "T_COLON",
            Kind::Comma => "T_COMMA",
            Kind::End => "T_END",
            Kind::Error => "T_ERROR",
        }
    }
}

struct Token {
    kind: Kind,
    index: usize,
    string: Vec<u8>,
    number: f64,
    boolean: bool,
    error: &'static str,
}

impl Token {
    fn new(kind: Kind, index: usize) -> Self {
        Token {
            kind,
            index,
            string: Vec::new(),
            number: 0.0,
            boolean: false,
            error: "",
        }
    }
}

struct Parser<'a> {
    data: &'a [u8],
    pos: usize,
    depth: i32,
    config: Config,
}

impl Parser<'_> {
    /// The byte at `i`; the C parser reads a NUL-terminated buffer, so
    /// anything past the end is 0 (and an embedded NUL ends the text).
    fn at(&self, i: usize) -> u8 {
        self.data.get(i).copied().unwrap_or(0)
    }

    fn token_error(&self, error: &'static str) -> Token {
        let mut token = Token::new(Kind::Error, self.pos);
        token.error = error;
        token
    }

    fn starts_with(&self, word: &[u8]) -> bool {
        (0..word.len()).all(|i| self.at(self.pos + i) == word[i])
    }

    /// `json_next_token`.
    fn next_token(&mut self) -> Token {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        let index = self.pos;
        let single = match self.at(self.pos) {
            b'{' => Some(Kind::ObjBegin),
            b'}' => Some(Kind::ObjEnd),
            b'[' => Some(Kind::ArrBegin),
            b']' => Some(Kind::ArrEnd),
            b',' => Some(Kind::Comma),
            b':' => Some(Kind::Colon),
            0 => return Token::new(Kind::End, index),
            _ => None,
        };
        if let Some(kind) = single {
            self.pos += 1;
            return Token::new(kind, index);
        }
        let ch = self.at(self.pos);
        if !matches!(
            ch,
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9'
        ) {
            return self.token_error("invalid token");
        }
        if ch == b'"' {
            return self.string_token();
        }
        if ch == b'-' || ch.is_ascii_digit() {
            if self.config.decode_invalid_numbers == 0 && self.is_invalid_number() {
                return self.token_error("invalid number");
            }
            return self.number_token();
        }
        for (word, kind, value) in [
            (&b"true"[..], Kind::Boolean, true),
            (b"false", Kind::Boolean, false),
            (b"null", Kind::Null, false),
        ] {
            if self.starts_with(word) {
                self.pos += word.len();
                let mut token = Token::new(kind, index);
                token.boolean = value;
                return token;
            }
        }
        if self.config.decode_invalid_numbers != 0 && self.is_invalid_number() {
            return self.number_token();
        }
        self.token_error("invalid token")
    }

    /// `json_is_invalid_number`: forms `strtod` takes but JSON does not.
    fn is_invalid_number(&self) -> bool {
        let mut p = self.pos;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        let c = self.at(p);
        if c == b'0' {
            let c2 = self.at(p + 1);
            return (c2 | 0x20) == b'x' || c2.is_ascii_digit();
        }
        if c <= b'9' {
            return false;
        }
        let word = |w: &[u8]| (0..3).all(|i| self.at(p + i).to_ascii_lowercase() == w[i]);
        word(b"inf") || word(b"nan")
    }

    fn number_token(&mut self) -> Token {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        match number::strtod(&rest[..end]) {
            Some((value, used)) => {
                let mut token = Token::new(Kind::Number, self.pos);
                token.number = value;
                self.pos += used;
                token
            }
            None => self.token_error("invalid number"),
        }
    }

    /// `json_next_string_token`.
    fn string_token(&mut self) -> Token {
        let index = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let ch = self.at(self.pos);
            if ch == b'"' {
                break;
            }
            if ch == 0 {
                return self.token_error("unexpected end of string");
            }
            if ch == b'\\' {
                let escaped = match self.at(self.pos + 1) {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => b'\x08',
                    b't' => b'\t',
                    b'n' => b'\n',
                    b'f' => b'\x0c',
                    b'r' => b'\r',
                    b'u' => {
                        if self.unicode_escape(&mut out) {
                            continue;
                        }
                        return self.token_error("invalid unicode escape code");
                    }
                    _ => return self.token_error("invalid escape code"),
                };
                out.push(escaped);
                self.pos += 2;
                continue;
            }
            out.push(ch);
            self.pos += 1;
        }
        self.pos += 1;
        let mut token = Token::new(Kind::String, index);
        token.string = out;
        token
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |acc, i| {
            let digit = (self.at(at + i) as char).to_digit(16)?;
            Some(acc << 4 | digit)
        })
    }

    /// `json_append_unicode_escape`: `\uXXXX`, surrogate pairs joined.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> bool {
        let Some(mut codepoint) = self.hex4(self.pos + 2) else {
            return false;
        };
        let mut length = 6;
        if codepoint & 0xf800 == 0xd800 {
            if codepoint & 0x400 != 0 {
                return false;
            }
            if self.at(self.pos + 6) != b'\\' || self.at(self.pos + 7) != b'u' {
                return false;
            }
            let Some(low) = self.hex4(self.pos + 8) else {
                return false;
            };
            if low & 0xfc00 != 0xdc00 {
                return false;
            }
            codepoint = (((codepoint & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            length = 12;
        }
        // Written by hand: surrogates are not `char`s.
        match codepoint {
            0..=0x7f => out.push(codepoint as u8),
            0x80..=0x7ff => out.extend_from_slice(&[
                (codepoint >> 6) as u8 | 0xc0,
                (codepoint & 0x3f) as u8 | 0x80,
            ]),
            0x800..=0xffff => out.extend_from_slice(&[
                (codepoint >> 12) as u8 | 0xe0,
                ((codepoint >> 6) & 0x3f) as u8 | 0x80,
                (codepoint & 0x3f) as u8 | 0x80,
            ]),
            _ => out.extend_from_slice(&[
                (codepoint >> 18) as u8 | 0xf0,
                ((codepoint >> 12) & 0x3f) as u8 | 0x80,
                ((codepoint >> 6) & 0x3f) as u8 | 0x80,
                (codepoint & 0x3f) as u8 | 0x80,
            ]),
        }
        self.pos += length;
        true
    }
}

/// `json_throw_parse_error`.
fn parse_error(expected: &str, token: &Token) -> Failure {
    let found = if token.kind == Kind::Error {
        token.error
    } else {
        token.kind.name()
    };
    error(format!(
        "Expected {expected} but found {found} at character {}",
        token.index + 1
    ))
}

/// An open container in the iterative parser.
enum Frame {
    Object {
        table: Table,
        key: Option<LuaString>,
    },
    Array {
        table: Table,
        index: i64,
    },
}

impl Frame {
    /// Stack slots the C parser holds for it: the table, and for objects
    /// the key whose value is being parsed.
    fn slots(&self) -> usize {
        match self {
            Frame::Object { .. } => 2,
            Frame::Array { .. } => 1,
        }
    }
}

fn decode(args: &Args, config: Config) -> CallResult {
    if args.count() != 1 {
        return Err(args.arg_error(1, b"expected 1 argument"));
    }
    let text = args.check_string(1)?;
    let data = text.as_bytes();
    if data.len() >= 2 && (data[0] == 0 || data[1] == 0) {
        return Err(error("JSON parser does not support UTF-16 or UTF-32"));
    }
    let mut parser = Parser {
        data: &data,
        pos: 0,
        depth: 0,
        config,
    };
    let lua = args.lua;
    let mut frames: Vec<Frame> = Vec::new();
    let mut token = parser.next_token();
    loop {
        // Parse one value (opening containers as needed).
        let mut value = match token.kind {
            Kind::String => Value::String(lua.create_string(&token.string)?),
            Kind::Number => Value::Number(token.number),
            Kind::Boolean => Value::Boolean(token.boolean),
            Kind::Null => null(),
            Kind::ObjBegin | Kind::ArrBegin => {
                let object = token.kind == Kind::ObjBegin;
                parser.depth += 1;
                let slots = 1 + frames.iter().map(Frame::slots).sum::<usize>();
                let needed = if object { 3 } else { 2 };
                if parser.depth > config.decode_max_depth || slots + needed > MAX_C_STACK {
                    return Err(too_deep(&parser));
                }
                let table = match lua.create_table() {
                    Ok(table) => table,
                    Err(mlua::Error::StackError) => return Err(too_deep(&parser)),
                    Err(e) => return Err(e.into()),
                };
                token = parser.next_token();
                let close = if object { Kind::ObjEnd } else { Kind::ArrEnd };
                if token.kind == close {
                    parser.depth -= 1;
                    Value::Table(table)
                } else if object {
                    let key = object_key(lua, &mut parser, &token)?;
                    frames.push(Frame::Object {
                        table,
                        key: Some(key),
                    });
                    token = parser.next_token();
                    continue;
                } else {
                    frames.push(Frame::Array { table, index: 1 });
                    continue;
                }
            }
            _ => return Err(parse_error("value", &token)),
        };
        // Store it in the open containers, closing those that end.
        loop {
            let Some(frame) = frames.last_mut() else {
                let end = parser.next_token();
                if end.kind != Kind::End {
                    return Err(parse_error("the end", &end));
                }
                return results([value]);
            };
            let next = parser.next_token();
            match frame {
                Frame::Object { table, key } => {
                    let k = key.take().expect("object frames hold a key");
                    table.raw_set(k, value)?;
                    match next.kind {
                        Kind::ObjEnd => {}
                        Kind::Comma => {
                            let key_token = parser.next_token();
                            *key = Some(object_key(lua, &mut parser, &key_token)?);
                            token = parser.next_token();
                            break;
                        }
                        _ => return Err(parse_error("comma or object end", &next)),
                    }
                }
                Frame::Array { table, index } => {
                    table.raw_set(*index, value)?;
                    *index += 1;
                    match next.kind {
                        Kind::ArrEnd => {}
                        Kind::Comma => {
                            token = parser.next_token();
                            break;
                        }
                        _ => return Err(parse_error("comma or array end", &next)),
                    }
                }
            }
            parser.depth -= 1;
            value = match frames.pop() {
                Some(Frame::Object { table, .. }) | Some(Frame::Array { table, .. }) => {
                    Value::Table(table)
                }
                None => unreachable!(),
            };
        }
    }
}

/// An object key and the colon after it.
fn object_key(lua: &Lua, parser: &mut Parser, token: &Token) -> Result<LuaString, Failure> {
    if token.kind != Kind::String {
        return Err(parse_error("object key string", token));
    }
    let key = lua.create_string(&token.string)?;
    let colon = parser.next_token();
    if colon.kind != Kind::Colon {
        return Err(parse_error("colon", &colon));
    }
    Ok(key)
}

fn too_deep(parser: &Parser) -> Failure {
    error(format!(
        "Found too many nested data structures ({}) at character {}",
        parser.depth, parser.pos
    ))
}

#[cfg(test)]
mod tests;
