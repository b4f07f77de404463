//! Lua library `cmsgpack`, as Redis ships it: lua-cmsgpack 0.4.0 on Lua 5.1.
//!
//! Packing: integral doubles become the smallest msgpack integer, other
//! numbers a float 32 when exact and a float 64 otherwise; a table whose
//! keys are exactly 1..n is an array, anything else a map; tables nested
//! 16 deep (cycles included) are packed as nil. Unpacking turns every
//! integer into a double, uint 64 above 2^63 wrapping negative as in C.

use mlua::{Lua, Table, Value};

use super::support::{
    c_f64_to_i64, error, register, results, Args, CallResult, Failure, MAX_C_STACK, RESULT_SLOTS,
};

/// `LUACMSGPACK_MAX_NESTING`.
const MAX_NESTING: usize = 16;

/// Registers the global table.
pub fn open(lua: &Lua) -> mlua::Result<()> {
    let table = lua.create_table()?;
    register(lua, &table, "pack", pack)?;
    register(lua, &table, "unpack", |args| unpack(args, 0, 0))?;
    register(lua, &table, "unpack_one", |args| {
        let offset = args.opt_integer(2, 0)?;
        unpack(args, 1, offset)
    })?;
    register(lua, &table, "unpack_limit", |args| {
        let limit = args.check_integer(2)?;
        let offset = args.opt_integer(3, 0)?;
        unpack(args, limit, offset)
    })?;
    table.raw_set("_NAME", "cmsgpack")?;
    table.raw_set("_VERSION", "lua-cmsgpack 0.4.0")?;
    table.raw_set("_COPYRIGHT", "Copyright (C) 2012, Salvatore Sanfilippo")?;
    table.raw_set("_DESCRIPTION", "MessagePack C implementation for Lua")?;
    lua.globals().raw_set("cmsgpack", table)
}

fn pack(args: &Args) -> CallResult {
    if args.count() == 0 {
        return Err(args.arg_error(0, b"MessagePack pack needs input."));
    }
    let mut out = Vec::new();
    for value in &args.values {
        encode(&mut out, value, 0)?;
    }
    results([Value::String(args.lua.create_string(&out)?)])
}

fn encode(out: &mut Vec<u8>, value: &Value, level: usize) -> Result<(), Failure> {
    match value {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(_) | Value::Number(_) => {
            let n = match value {
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                _ => unreachable!(),
            };
            // IS_INT64_EQUIVALENT: (int64_t)n == n, and not infinite.
            if !n.is_infinite() && c_f64_to_i64(n) as f64 == n {
                encode_int(out, c_f64_to_i64(n));
            } else {
                encode_double(out, n);
            }
        }
        Value::Table(table) if level < MAX_NESTING => encode_table(out, table, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    let len = bytes.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(bytes);
}

fn encode_double(out: &mut Vec<u8>, d: f64) {
    let f = d as f32;
    if d == f64::from(f) {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&d.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_header(out: &mut Vec<u8>, n: usize, fix: u8, wide16: u8, wide32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(wide16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(wide32);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    }
}

fn encode_table(out: &mut Vec<u8>, table: &Table, level: usize) -> Result<(), Failure> {
    if is_array(table)? {
        // lua_objlen, then lua_gettable: __index metamethods apply.
        let len = table.raw_len();
        encode_header(out, len, 0x90, 0xdc, 0xdd);
        for index in 1..=len {
            let value: Value = table.get(index as f64)?;
            encode(out, &value, level + 1)?;
        }
    } else {
        let mut count = 0usize;
        table.for_each(|_: Value, _: Value| {
            count += 1;
            Ok(())
        })?;
        encode_header(out, count, 0x80, 0xde, 0xdf);
        let mut failure = None;
        table
            .for_each(|key: Value, value: Value| {
                let encoded =
                    encode(out, &key, level + 1).and_then(|()| encode(out, &value, level + 1));
                match encoded {
                    Ok(()) => Ok(()),
                    Err(Failure::Lua(e)) => Err(e),
                    Err(f) => {
                        failure = Some(f);
                        Err(mlua::Error::runtime("cmsgpack failure"))
                    }
                }
            })
            .or_else(|e| match failure.take() {
                Some(_) => Ok(()),
                None => Err(e),
            })?;
    }
    Ok(())
}

/// `table_is_an_array`: only positive integral number keys (within int
/// range), and as many of them as the largest.
fn is_array(table: &Table) -> Result<bool, Failure> {
    let mut array = true;
    let mut count: i64 = 0;
    let mut max: i64 = 0;
    table.for_each(|key: Value, _: Value| {
        if !array {
            return Ok(());
        }
        let n = match key {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => {
                array = false;
                return Ok(());
            }
        };
        if n <= 0.0 || n > f64::from(i32::MAX) || n.fract() != 0.0 {
            array = false;
            return Ok(());
        }
        max = max.max(n as i64);
        count += 1;
        Ok(())
    })?;
    Ok(array && max == count)
}

/// Why decoding stopped.
enum DecodeError {
    /// `MP_CUR_ERROR_EOF`.
    Eof,
    /// `MP_CUR_ERROR_BADFMT`.
    BadFormat,
    /// A Lua error raised while building the result.
    Raised(Failure),
}

impl From<mlua::Error> for DecodeError {
    fn from(e: mlua::Error) -> Self {
        DecodeError::Raised(Failure::Lua(e))
    }
}

/// An open array or map and how many items it still expects.
enum Frame {
    Array {
        table: Table,
        remaining: usize,
        index: f64,
    },
    Map {
        table: Table,
        remaining: usize,
        key: Option<Value>,
    },
}

impl Frame {
    /// Stack slots the C decoder holds for this container while it decodes
    /// the next item: the table, plus the key pushed for arrays, or the
    /// decoded key while a map decodes a value.
    fn slots(&self) -> usize {
        match self {
            Frame::Array { .. } => 2,
            Frame::Map { key: None, .. } => 1,
            Frame::Map { key: Some(_), .. } => 2,
        }
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.data.len() - self.pos
    }

    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.left() < n {
            Err(DecodeError::Eof)
        } else {
            Ok(())
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.data[self.pos + i]
    }

    fn be(&self, from: usize, n: usize) -> u64 {
        (0..n).fold(0u64, |acc, i| (acc << 8) | u64::from(self.byte(from + i)))
    }
}

/// What one header decodes to.
enum Item {
    Value(Value),
    Array(usize),
    Map(usize),
}

/// `mp_decode_to_lua_type` for one object, iteratively so that deep
/// nesting costs heap, not Rust stack. `base` is the C stack depth below it.
fn decode_one(lua: &Lua, cursor: &mut Cursor, base: usize) -> Result<Value, DecodeError> {
    let mut frames: Vec<Frame> = Vec::new();
    loop {
        let slots = base + frames.iter().map(Frame::slots).sum::<usize>();
        cursor.need(1)?;
        if slots + 1 > MAX_C_STACK {
            return Err(DecodeError::Raised(error(
                "stack overflow (too many return values at once; \
                 use unpack_one or unpack_limit instead.)",
            )));
        }
        let mut value = match read_item(lua, cursor)? {
            Item::Value(value) => value,
            Item::Array(len) => {
                let table = lua.create_table()?;
                if len > 0 {
                    frames.push(Frame::Array {
                        table,
                        remaining: len,
                        index: 1.0,
                    });
                    continue;
                }
                Value::Table(table)
            }
            Item::Map(len) => {
                let table = lua.create_table()?;
                if len > 0 {
                    frames.push(Frame::Map {
                        table,
                        remaining: len,
                        key: None,
                    });
                    continue;
                }
                Value::Table(table)
            }
        };
        // Attach the value to the open containers, closing full ones.
        loop {
            let Some(frame) = frames.last_mut() else {
                return Ok(value);
            };
            let done = match frame {
                Frame::Array {
                    table,
                    remaining,
                    index,
                } => {
                    table.raw_set(*index, value)?;
                    *index += 1.0;
                    *remaining -= 1;
                    *remaining == 0
                }
                Frame::Map {
                    table,
                    remaining,
                    key,
                } => match key.take() {
                    None => {
                        *key = Some(value);
                        false
                    }
                    Some(k) => {
                        match &k {
                            Value::Nil => {
                                return Err(DecodeError::Raised(error("table index is nil")))
                            }
                            Value::Number(n) if n.is_nan() => {
                                return Err(DecodeError::Raised(error("table index is NaN")))
                            }
                            _ => {}
                        }
                        table.raw_set(k, value)?;
                        *remaining -= 1;
                        *remaining == 0
                    }
                },
            };
            if !done {
                break;
            }
            let table = match frames.pop() {
                Some(Frame::Array { table, .. }) | Some(Frame::Map { table, .. }) => table,
                None => unreachable!(),
            };
            value = Value::Table(table);
        }
    }
}

fn read_item(lua: &Lua, c: &mut Cursor) -> Result<Item, DecodeError> {
    let number = |n: f64| Ok::<Item, DecodeError>(Item::Value(Value::Number(n)));
    let head = c.byte(0);
    let (item, used) = match head {
        0xcc => {
            c.need(2)?;
            (number(f64::from(c.byte(1)))?, 2)
        }
        0xd0 => {
            c.need(2)?;
            (number(f64::from(c.byte(1) as i8))?, 2)
        }
        0xcd => {
            c.need(3)?;
            (number(c.be(1, 2) as f64)?, 3)
        }
        0xd1 => {
            c.need(3)?;
            (number(f64::from(c.be(1, 2) as u16 as i16))?, 3)
        }
        0xce => {
            c.need(5)?;
            (number(c.be(1, 4) as f64)?, 5)
        }
        0xd2 => {
            c.need(5)?;
            (number(f64::from(c.be(1, 4) as u32 as i32))?, 5)
        }
        // lua_pushinteger of a uint64: ptrdiff_t wraps above 2^63.
        0xcf | 0xd3 => {
            c.need(9)?;
            (number(c.be(1, 8) as i64 as f64)?, 9)
        }
        0xc0 => (Item::Value(Value::Nil), 1),
        0xc3 => (Item::Value(Value::Boolean(true)), 1),
        0xc2 => (Item::Value(Value::Boolean(false)), 1),
        0xca => {
            c.need(5)?;
            let f = f32::from_bits(c.be(1, 4) as u32);
            (number(f64::from(f))?, 5)
        }
        0xcb => {
            c.need(9)?;
            (number(f64::from_bits(c.be(1, 8)))?, 9)
        }
        0xd9..=0xdb => {
            let width = match head {
                0xd9 => 1,
                0xda => 2,
                _ => 4,
            };
            c.need(1 + width)?;
            let len = c.be(1, width) as usize;
            c.need(1 + width + len)?;
            let start = c.pos + 1 + width;
            let s = lua.create_string(&c.data[start..start + len])?;
            (Item::Value(Value::String(s)), 1 + width + len)
        }
        0xdc | 0xde => {
            c.need(3)?;
            let len = c.be(1, 2) as usize;
            let item = if head == 0xdc {
                Item::Array(len)
            } else {
                Item::Map(len)
            };
            (item, 3)
        }
        0xdd | 0xdf => {
            c.need(5)?;
            let len = c.be(1, 4) as usize;
            let item = if head == 0xdd {
                Item::Array(len)
            } else {
                Item::Map(len)
            };
            (item, 5)
        }
        _ if head & 0x80 == 0 => (number(f64::from(head))?, 1),
        _ if head & 0xe0 == 0xe0 => (number(f64::from(head as i8))?, 1),
        _ if head & 0xe0 == 0xa0 => {
            let len = usize::from(head & 0x1f);
            c.need(1 + len)?;
            let s = lua.create_string(&c.data[c.pos + 1..c.pos + 1 + len])?;
            (Item::Value(Value::String(s)), 1 + len)
        }
        _ if head & 0xf0 == 0x90 => (Item::Array(usize::from(head & 0xf)), 1),
        _ if head & 0xf0 == 0x80 => (Item::Map(usize::from(head & 0xf)), 1),
        _ => return Err(DecodeError::BadFormat),
    };
    c.pos += used;
    Ok(item)
}

/// `mp_unpack_full`.
fn unpack(args: &Args, limit: i64, offset: i64) -> CallResult {
    let input = args.check_string(1)?;
    let data = input.as_bytes();
    let len = data.len();
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        // Redis prints the input length where the limit belongs.
        return Err(error(format!(
            "Invalid request to unpack with offset of {} and limit of {}.",
            offset as i32, len as i32
        )));
    }
    if offset as u64 > len as u64 {
        return Err(error(format!(
            "Start offset {} greater than input length {}.",
            offset as i32, len as i32
        )));
    }
    let limit = if decode_all {
        i64::from(i32::MAX)
    } else {
        limit
    };
    let mut cursor = Cursor {
        data: &data,
        pos: offset as usize,
    };
    let mut out = Vec::new();
    // One argument stays on the C stack; mlua keeps all of them.
    let reserved = args.count().max(1) + usize::from(!decode_all) + (MAX_C_STACK - RESULT_SLOTS);
    while cursor.left() > 0 && (out.len() as i64) < limit {
        match decode_one(args.lua, &mut cursor, reserved + out.len() - 1) {
            Ok(value) => out.push(value),
            Err(DecodeError::Eof) => return Err(error("Missing bytes in input.")),
            Err(DecodeError::BadFormat) => return Err(error("Bad data format in input.")),
            Err(DecodeError::Raised(failure)) => return Err(failure),
        }
    }
    if !decode_all {
        let next = if cursor.left() == 0 {
            -1.0
        } else {
            cursor.pos as f64
        };
        out.insert(0, Value::Number(next));
    }
    results(out)
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::super::support::testing::{error_of, eval, lua_with};

    fn lua() -> Lua {
        lua_with(super::open)
    }

    const HEX: &str = "local function hex(s) local h = '' for i = 1, #s do \
                       h = h .. string.format('%02x', string.byte(s, i)) end return h end ";

    fn hex(lua: &Lua, expr: &str) -> String {
        eval(lua, &format!("{HEX} return hex({expr})"))
    }

    #[test]
    fn scripting_tcl_double_and_negative_int64() {
        let lua = lua();
        assert_eq!(hex(&lua, "cmsgpack.pack(0.1)"), "cb3fb999999999999a");
        assert_eq!(
            hex(&lua, "cmsgpack.pack(-1099511627776)"),
            "d3ffffff0000000000"
        );
    }

    #[test]
    fn integers_use_the_smallest_encoding() {
        let lua = lua();
        let cases = [
            ("0", "00"),
            ("127", "7f"),
            ("128", "cc80"),
            ("256", "cd0100"),
            ("65536", "ce00010000"),
            ("2^32", "cf0000000100000000"),
            ("-1", "ff"),
            ("-32", "e0"),
            ("-33", "d0df"),
            ("-129", "d1ff7f"),
            ("-32769", "d2ffff7fff"),
            ("-2^63", "d38000000000000000"),
            ("2^63", "ca5f000000"),
            ("0.1", "cb3fb999999999999a"),
            ("0/0", "cbfff8000000000000"),
            ("1.5", "ca3fc00000"),
            ("1/0", "ca7f800000"),
            ("-0.0", "00"),
            ("true", "c3"),
            ("false", "c2"),
            ("nil", "c0"),
            ("print", "c0"),
        ];
        for (expr, expected) in cases {
            assert_eq!(
                hex(&lua, &format!("cmsgpack.pack({expr})")),
                expected,
                "{expr}"
            );
        }
    }

    #[test]
    fn strings_tables_and_multiple_arguments() {
        let lua = lua();
        assert_eq!(hex(&lua, "cmsgpack.pack('ab')"), "a26162");
        assert_eq!(
            hex(&lua, "cmsgpack.pack(string.rep('x', 32)):sub(1, 2)"),
            "d920"
        );
        assert_eq!(
            hex(&lua, "cmsgpack.pack(string.rep('x', 256)):sub(1, 3)"),
            "da0100"
        );
        assert_eq!(
            hex(&lua, "cmsgpack.pack(string.rep('x', 65536)):sub(1, 5)"),
            "db00010000"
        );
        assert_eq!(hex(&lua, "cmsgpack.pack({1, 2, 3})"), "93010203");
        assert_eq!(hex(&lua, "cmsgpack.pack({})"), "90");
        assert_eq!(hex(&lua, "cmsgpack.pack({[1]=1, [3]=3})"), "8201010303");
        assert_eq!(hex(&lua, "cmsgpack.pack({a=1})"), "81a16101");
        assert_eq!(hex(&lua, "cmsgpack.pack(1, 'a', {})"), "01a16190");
        let big: String = hex(
            &lua,
            "cmsgpack.pack({1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16}):sub(1, 3)",
        );
        assert_eq!(big, "dc0010");
    }

    #[test]
    fn scripting_tcl_circular_references() {
        let lua = lua();
        let h: String = eval(
            &lua,
            &format!(
                "{HEX} local a = {{x=nil,y=5}} local b = {{x=a}} a['x'] = b \
                 local re = cmsgpack.unpack(cmsgpack.pack(a)) \
                 assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.y == re.y) \
                 assert(re.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x.x == nil) \
                 return hex(cmsgpack.pack(a))"
            ),
        );
        // Key order follows Lua's table layout, as in Redis.
        let expected = "82a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a17882a17905a17881a178c0";
        assert_eq!(h, expected);
    }

    #[test]
    fn scripting_tcl_smoke_test() {
        let lua = lua();
        lua.load(
            r#"
            local str_lt_32 = string.rep("x", 30)
            local str_lt_255 = string.rep("x", 250)
            local str_lt_65535 = string.rep("x", 65530)
            local str_long = string.rep("x", 100000)
            local array_big = {}
            for i=1, 100000 do array_big[i] = i end
            local map_big = {}
            for i=1, 100000 do map_big[tostring(i)] = i end
            local some_map = {s1=str_lt_32, s2=str_lt_255, s3=str_lt_65535, s4=str_long,
                d1=0.1, i1=1, i2=250, i3=65530, i4=100000, i5=2^40, i6=-1, i7=-120,
                i8=-32000, i9=-100000, i10=-3147483648, a1={1,2,3,4,5},
                a2={1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18}, a3=array_big,
                m1={a=1, b=2}, m2=map_big, b1=false, b2=true, n=nil}
            local encoded = cmsgpack.pack(some_map)
            local decoded = cmsgpack.unpack(encoded)
            for k, v in pairs(some_map) do
                if type(v) ~= 'table' then assert(decoded[k] == v, k) end
            end
            assert(#decoded.a3 == 100000 and decoded.a3[99999] == 99999)
            assert(decoded.m2['777'] == 777)
            local offset, decoded_one = cmsgpack.unpack_one(encoded, 0)
            assert(offset == -1 and decoded_one.i10 == -3147483648)
            local encoded_multiple = cmsgpack.pack(str_lt_32, str_lt_255, str_lt_65535, str_long)
            local offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, 0)
            assert(obj == str_lt_32)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_lt_255)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_lt_65535)
            offset, obj = cmsgpack.unpack_limit(encoded_multiple, 1, offset)
            assert(obj == str_long)
            assert(offset == -1)
            "#,
        )
        .exec()
        .unwrap();
    }

    #[test]
    fn unpack_reads_every_type() {
        let lua = lua();
        let values: Vec<f64> = eval(
            &lua,
            "return {cmsgpack.unpack('\\204\\255\\208\\255\\205\\1\\0\\209\\255\\254\
             \\206\\0\\1\\0\\0\\210\\255\\255\\255\\255\\207\\255\\255\\255\\255\\255\\255\\255\\255\
             \\211\\0\\0\\0\\0\\0\\0\\0\\9\\202\\63\\192\\0\\0\\5\\255')}",
        );
        assert_eq!(
            values,
            vec![255.0, -1.0, 256.0, -2.0, 65536.0, -1.0, -1.0, 9.0, 1.5, 5.0, -1.0]
        );
        let ok: bool = eval(
            &lua,
            "local t = cmsgpack.unpack('\\130\\161a\\145\\192\\161b\\195') \
             return t.a[1] == nil and t.b == true and cmsgpack.unpack('') == nil",
        );
        assert!(ok);
        let n: usize = eval(&lua, "return select('#', cmsgpack.unpack(''))");
        assert_eq!(n, 0);
    }

    #[test]
    fn unpack_errors_and_offsets() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack('\\205\\1')"),
            "Missing bytes in input."
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack('\\193')"),
            "Bad data format in input."
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack('\\146\\1')"),
            "Missing bytes in input."
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack_one('abc', -1)"),
            "Invalid request to unpack with offset of -1 and limit of 3."
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack_one('abc', 4)"),
            "Start offset 4 greater than input length 3."
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack('\\129\\192\\1')"),
            "table index is nil"
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.pack()"),
            "bad argument #0 to 'pack' (MessagePack pack needs input.)"
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack_limit('a', 'x')"),
            "bad argument #2 to 'unpack_limit' (number expected, got string)"
        );
        assert_eq!(
            error_of(&lua, "cmsgpack.unpack({})"),
            "bad argument #1 to 'unpack' (string expected, got table)"
        );
        let (offset, a, b): (f64, f64, Option<f64>) =
            eval(&lua, "return cmsgpack.unpack_limit('\\1\\2\\3', 1, 1)");
        assert_eq!((offset, a, b), (2.0, 2.0, None));
        let (offset, a, b): (f64, f64, f64) =
            eval(&lua, "return cmsgpack.unpack_limit('\\1\\2\\3', 5, 1)");
        assert_eq!((offset, a, b), (-1.0, 2.0, 3.0));
    }

    #[test]
    fn deep_nesting_and_many_results_hit_the_stack_limit() {
        let lua = lua();
        let message = error_of(&lua, "cmsgpack.unpack(string.rep('\\1', 9000))");
        assert_eq!(
            message,
            "stack overflow (too many return values at once; \
             use unpack_one or unpack_limit instead.)"
        );
        let n: usize = eval(
            &lua,
            "return select('#', cmsgpack.unpack(string.rep('\\1', 7000)))",
        );
        assert_eq!(n, 7000);
        let message = error_of(&lua, "cmsgpack.unpack(string.rep('\\145', 5000) .. '\\1')");
        assert!(message.starts_with("stack overflow"), "{message}");
        let depth: usize = eval(
            &lua,
            "local t = cmsgpack.unpack(string.rep('\\145', 3000) .. '\\1') \
             local d = 0 while type(t) == 'table' do t = t[1] d = d + 1 end return d",
        );
        assert_eq!(depth, 3000);
    }
}
