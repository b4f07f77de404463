//! Lua library `bit`, as Redis ships it: LuaBitOp 1.0.2 on Lua 5.1 doubles.
//!
//! Every argument goes through LuaBitOp's normalisation: add 2^52+2^51 to
//! the double and keep the low 32 bits of its representation. That wraps
//! any number modulo 2^32 and rounds fractions to nearest-even, exactly as
//! the C library does; results are signed 32-bit integers.

use mlua::{Lua, Value};

use super::support::{error, register, results, Args, CallResult, Failure};

/// Registers the global table.
pub fn open(lua: &Lua) -> mlua::Result<()> {
    let table = lua.create_table()?;
    register(lua, &table, "tobit", |args| ret(to_bits(args, 1)?))?;
    register(lua, &table, "bnot", |args| ret(!to_bits(args, 1)?))?;
    register(lua, &table, "band", |args| fold(args, |a, b| a & b))?;
    register(lua, &table, "bor", |args| fold(args, |a, b| a | b))?;
    register(lua, &table, "bxor", |args| fold(args, |a, b| a ^ b))?;
    register(lua, &table, "lshift", |args| shift(args, |b, n| b << n))?;
    register(lua, &table, "rshift", |args| shift(args, |b, n| b >> n))?;
    register(lua, &table, "arshift", |args| {
        shift(args, |b, n| ((b as i32) >> n) as u32)
    })?;
    register(lua, &table, "rol", |args| shift(args, u32::rotate_left))?;
    register(lua, &table, "ror", |args| shift(args, u32::rotate_right))?;
    register(lua, &table, "bswap", |args| {
        ret(to_bits(args, 1)?.swap_bytes())
    })?;
    register(lua, &table, "tohex", tohex)?;
    lua.globals().raw_set("bit", table)
}

/// LuaBitOp's `barg`: `lua_tonumber`, the 2^52+2^51 trick, and a type
/// error only when the result is 0 and the argument is not a number.
fn to_bits(args: &Args, index: usize) -> Result<u32, Failure> {
    let number = args.to_number(index)?;
    let bits = normalise(number.unwrap_or(0.0));
    if bits == 0 && number.is_none() {
        return Err(args.type_error(index, "number"));
    }
    Ok(bits)
}

/// The normalisation on its own.
fn normalise(number: f64) -> u32 {
    (number + 6_755_399_441_055_744.0).to_bits() as u32
}

fn ret(bits: u32) -> CallResult {
    results([Value::Number(bits as i32 as f64)])
}

/// `band`/`bor`/`bxor`: the first argument, then the others from the last
/// down (so the highest bad argument is the one reported).
fn fold(args: &Args, op: fn(u32, u32) -> u32) -> CallResult {
    let mut bits = to_bits(args, 1)?;
    for index in (2..=args.count()).rev() {
        bits = op(bits, to_bits(args, index)?);
    }
    ret(bits)
}

fn shift(args: &Args, op: fn(u32, u32) -> u32) -> CallResult {
    let bits = to_bits(args, 1)?;
    let count = to_bits(args, 2)? & 31;
    ret(op(bits, count))
}

fn tohex(args: &Args) -> CallResult {
    let mut bits = to_bits(args, 1)?;
    let mut digits: i32 = if args.get(2).is_none() {
        8
    } else {
        to_bits(args, 2)? as i32
    };
    let mut alphabet = b"0123456789abcdef";
    if digits < 0 {
        // C negates an int: -INT_MIN stays INT_MIN, and LuaBitOp then asks
        // Lua for a string of (size_t)INT_MIN bytes, which cannot succeed.
        if digits == i32::MIN {
            return Err(error("memory allocation error: block too big"));
        }
        digits = -digits;
        alphabet = b"0123456789ABCDEF";
    }
    let digits = digits.min(8) as usize;
    let mut text = vec![0u8; digits];
    for slot in text.iter_mut().rev() {
        *slot = alphabet[(bits & 15) as usize];
        bits >>= 4;
    }
    results([Value::String(args.lua.create_string(&text)?)])
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::super::support::testing::{error_of, eval, lua_with};

    fn lua() -> Lua {
        lua_with(super::open)
    }

    #[test]
    fn scripting_tcl_minimal_bitop() {
        let lua = lua();
        let ok: bool = eval(
            &lua,
            "return bit.tobit(1) == 1 and bit.band(1) == 1 and bit.bxor(1,2) == 3 \
             and bit.bor(1,2,4,8,16,32,64,128) == 255",
        );
        assert!(ok);
    }

    #[test]
    fn functions_tcl_version_split() {
        let lua = lua();
        let (a, b, c): (i64, i64, i64) = eval(
            &lua,
            "local v = 0x00070e0f return bit.band(bit.rshift(v, 16), 0x000000ff), \
             bit.band(bit.rshift(v, 8), 0x000000ff), bit.band(v, 0x000000ff)",
        );
        assert_eq!((a, b, c), (7, 14, 15));
    }

    #[test]
    fn normalisation_wraps_and_rounds_like_luabitop() {
        let lua = lua();
        let values: Vec<f64> = eval(
            &lua,
            "return {bit.tobit(0xffffffff), bit.tobit(2^32 + 5), bit.tobit(-1), \
             bit.tobit(1.5), bit.tobit(2.5), bit.tobit(-1.5), bit.tobit(2^40 + 3), \
             bit.tobit(0/0), bit.tobit(1/0), bit.tobit('0x10'), bit.tobit(' 12 ')}",
        );
        assert_eq!(
            values,
            vec![-1.0, 5.0, -1.0, 2.0, 2.0, -2.0, 3.0, 0.0, 0.0, 16.0, 12.0]
        );
    }

    #[test]
    fn operations_match_luabitop_test_vectors() {
        let lua = lua();
        let values: Vec<f64> = eval(
            &lua,
            "return {bit.bnot(0), bit.lshift(1, 31), bit.lshift(1, 32), bit.rshift(-1, 28), \
             bit.arshift(-256, 4), bit.arshift(0x80000000, 31), bit.rol(0x12345678, 8), \
             bit.ror(0x12345678, 8), bit.rol(7, 0), bit.bswap(0x12345678), \
             bit.band(0x12345678, 0xff), bit.bor(1, 2, 4), bit.bxor(0xff, 0x0f, 1), \
             bit.lshift(3, 33)}",
        );
        assert_eq!(
            values,
            vec![
                -1.0,
                -2147483648.0,
                1.0,
                15.0,
                -16.0,
                -1.0,
                0x34567812 as f64,
                0x78123456 as f64,
                7.0,
                0x78563412 as f64,
                0x78 as f64,
                7.0,
                0xf1 as f64,
                6.0
            ]
        );
    }

    #[test]
    fn tohex_widths_and_case() {
        let lua = lua();
        let values: Vec<String> = eval(
            &lua,
            "return {bit.tohex(65535), bit.tohex(-1), bit.tohex(255, 2), bit.tohex(255, -4), \
             bit.tohex(0x12345678, 20), bit.tohex(1, 0), bit.tohex(0xabcdef, -8)}",
        );
        assert_eq!(
            values,
            vec!["0000ffff", "ffffffff", "ff", "00FF", "12345678", "", "00ABCDEF"]
        );
    }

    #[test]
    fn argument_errors_name_the_function_and_argument() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "bit.tobit('x')"),
            "bad argument #1 to 'tobit' (number expected, got string)"
        );
        assert_eq!(
            error_of(&lua, "bit.band(1, 'a', {})"),
            "bad argument #3 to 'band' (number expected, got table)"
        );
        assert_eq!(
            error_of(&lua, "bit.lshift(1)"),
            "bad argument #2 to 'lshift' (number expected, got no value)"
        );
        assert_eq!(
            error_of(&lua, "bit.tohex(1, nil)"),
            "bad argument #2 to 'tohex' (number expected, got nil)"
        );
        assert_eq!(
            error_of(&lua, "return bit.bnot(true)"),
            "bad argument #1 to 'bnot' (number expected, got boolean)"
        );
        assert_eq!(
            error_of(&lua, "local f = bit.tobit f()"),
            "bad argument #1 to 'f' (number expected, got no value)"
        );
        let (ok, message): (bool, String) = eval(&lua, "return pcall(bit.tobit)");
        assert!(!ok);
        assert_eq!(
            message,
            "bad argument #1 to '?' (number expected, got no value)"
        );
    }

    #[test]
    fn errors_are_plain_strings() {
        let lua = lua();
        let kind: String = eval(&lua, "local ok, e = pcall(bit.tobit, {}) return type(e)");
        assert_eq!(kind, "string");
    }
}
