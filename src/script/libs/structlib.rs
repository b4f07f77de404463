//! Lua library `struct`, as Redis ships it: Roberto Ierusalimschy's
//! struct.c (2018) with Redis's bounds checks, on an x86-64 ABI (little
//! endian; short 2, int 4, long and size_t 8, maximum alignment 8).

use mlua::{Lua, Value};

use super::support::{
    c_f64_to_i64, c_f64_to_u64, error, register, results, to_number, Args, CallResult, Failure,
    RESULT_SLOTS,
};

/// Largest integer size `i`/`I` accept.
const MAX_INT_SIZE: usize = 32;
/// `MAXALIGN`: the alignment of a double after a char on x86-64.
const MAX_ALIGN: i32 = 8;
/// `sizeof(int)`.
const INT_SIZE: i32 = 4;

/// Registers the global table.
pub fn open(lua: &Lua) -> mlua::Result<()> {
    let table = lua.create_table()?;
    register(lua, &table, "pack", pack)?;
    register(lua, &table, "unpack", unpack)?;
    register(lua, &table, "size", size)?;
    lua.globals().raw_set("struct", table)
}

/// Endianness and alignment in force while walking a format.
struct Header {
    little: bool,
    align: usize,
}

impl Header {
    fn new() -> Self {
        Header {
            little: true,
            align: 1,
        }
    }
}

/// A cursor over the format string. It ends at the first NUL byte, as the
/// C loop over a `const char *` does.
struct Format<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Format<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Format {
            bytes: &bytes[..end],
            pos: 0,
        }
    }

    fn next_option(&mut self) -> Option<u8> {
        let option = *self.bytes.get(self.pos)?;
        self.pos += 1;
        Some(option)
    }

    /// `getnum`: an optional decimal count, guarded against `int` overflow.
    fn number(&mut self, default: i32) -> Result<i32, Failure> {
        let mut digits = self.bytes[self.pos..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .peekable();
        if digits.peek().is_none() {
            return Ok(default);
        }
        let mut value: i32 = 0;
        while let Some(&digit) = self.bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            let digit = i32::from(digit - b'0');
            if value > i32::MAX / 10 || value * 10 > i32::MAX - digit {
                return Err(error("integral size overflow"));
            }
            value = value * 10 + digit;
            self.pos += 1;
        }
        Ok(value)
    }

    /// `optsize`: the size an option occupies (0 for control options).
    fn size_of(&mut self, option: u8) -> Result<usize, Failure> {
        Ok(match option {
            b'B' | b'b' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'x' => 1,
            // An int converted to size_t, as C does.
            b'c' => self.number(1)? as isize as usize,
            b'i' | b'I' => {
                let size = self.number(INT_SIZE)?;
                if size > MAX_INT_SIZE as i32 {
                    return Err(error(format!(
                        "integral size {size} is larger than limit of {MAX_INT_SIZE}"
                    )));
                }
                size as isize as usize
            }
            _ => 0,
        })
    }

    /// `controloptions`: spaces, endianness and alignment; anything else
    /// is an invalid format option (argument 1).
    fn control(&mut self, args: &Args, option: u8, header: &mut Header) -> Result<(), Failure> {
        match option {
            b' ' => Ok(()),
            b'>' => {
                header.little = false;
                Ok(())
            }
            b'<' => {
                header.little = true;
                Ok(())
            }
            b'!' => {
                let align = self.number(MAX_ALIGN.max(INT_SIZE))?;
                if align <= 0 || align & (align - 1) != 0 {
                    return Err(error(format!("alignment {align} is not a power of 2")));
                }
                header.align = align as usize;
                Ok(())
            }
            _ => {
                let mut message = b"invalid format option '".to_vec();
                message.push(option);
                message.push(b'\'');
                Err(args.arg_error(1, &message))
            }
        }
    }
}

/// `gettoalign`: padding needed before an item of `size` at `len`.
fn padding(len: usize, header: &Header, option: u8, size: usize) -> usize {
    if size == 0 || option == b'c' {
        return 0;
    }
    let size = size.min(header.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

fn is_integer_option(option: u8) -> bool {
    matches!(
        option,
        b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I'
    )
}

fn pack(args: &Args) -> CallResult {
    let format_string = args.check_string(1)?;
    let format_bytes = format_string.as_bytes();
    let mut format = Format::new(&format_bytes);
    let mut header = Header::new();
    let mut out: Vec<u8> = Vec::new();
    let mut arg = 2;
    let mut total: usize = 0;
    while let Some(option) = format.next_option() {
        let mut size = format.size_of(option)?;
        let pad = padding(total, &header, option, size);
        total = total.wrapping_add(pad);
        out.resize(out.len() + pad, 0);
        match option {
            _ if is_integer_option(option) => {
                let number = args.check_number(arg)?;
                arg += 1;
                let value = if number < 0.0 {
                    c_f64_to_i64(number) as u64
                } else {
                    c_f64_to_u64(number)
                };
                // Only the low eight bytes carry the value; wider integers
                // are zero-filled (a 64-bit value shifted right), never
                // sign-extended.
                let byte = |i: usize| if i < 8 { (value >> (8 * i)) as u8 } else { 0 };
                if header.little {
                    out.extend((0..size).map(byte));
                } else {
                    out.extend((0..size).rev().map(byte));
                }
            }
            b'x' => out.push(0),
            b'f' => {
                let value = args.check_number(arg)? as f32;
                arg += 1;
                if header.little {
                    out.extend_from_slice(&value.to_le_bytes());
                } else {
                    out.extend_from_slice(&value.to_be_bytes());
                }
            }
            b'd' => {
                let value = args.check_number(arg)?;
                arg += 1;
                if header.little {
                    out.extend_from_slice(&value.to_le_bytes());
                } else {
                    out.extend_from_slice(&value.to_be_bytes());
                }
            }
            b'c' | b's' => {
                let string = args.check_string(arg)?;
                arg += 1;
                let bytes = string.as_bytes();
                if size == 0 {
                    size = bytes.len();
                }
                if bytes.len() < size {
                    // struct.c reports the argument after the string: it has
                    // already advanced its argument counter.
                    return Err(args.arg_error(arg, b"string too short"));
                }
                out.extend_from_slice(&bytes[..size]);
                if option == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => format.control(args, option, &mut header)?,
        }
        total = total.wrapping_add(size);
    }
    results([Value::String(args.lua.create_string(&out)?)])
}

/// Reads a `size`-byte integer; only the low 64 bits survive, as in C.
fn read_integer(bytes: &[u8], little: bool, signed: bool, size: usize) -> f64 {
    let mut value: u64 = 0;
    let mut push = |b: u8| value = (value << 8) | u64::from(b);
    if little {
        bytes.iter().rev().for_each(|&b| push(b));
    } else {
        bytes.iter().for_each(|&b| push(b));
    }
    if !signed {
        return value as f64;
    }
    // `~0 << (size*8 - 1)`: x86 masks the shift count to six bits.
    let shift = ((size as u32).wrapping_mul(8).wrapping_sub(1)) & 63;
    let mask = u64::MAX << shift;
    if value & mask != 0 {
        value |= mask;
    }
    value as i64 as f64
}

fn unpack(args: &Args) -> CallResult {
    let format_string = args.check_string(1)?;
    let data_string = args.check_string(2)?;
    // A negative offset becomes a huge size_t and passes this check.
    let offset = args.opt_integer(3, 1)? as u64;
    if offset == 0 {
        return Err(args.arg_error(3, b"offset must be 1 or greater"));
    }
    let format_bytes = format_string.as_bytes();
    let data = data_string.as_bytes();
    let len = data.len() as u64;
    let mut format = Format::new(&format_bytes);
    let mut header = Header::new();
    let mut pos = offset - 1;
    let mut out: Vec<Value> = Vec::new();
    let too_short = || args.arg_error(2, b"data string too short");
    while let Some(option) = format.next_option() {
        let mut size = format.size_of(option)? as u64;
        pos = pos.wrapping_add(padding(pos as usize, &header, option, size as usize) as u64);
        if !(size <= len && pos <= len - size) {
            return Err(too_short());
        }
        if args.count() + out.len() + 2 > RESULT_SLOTS {
            return Err(error("stack overflow (too many results)"));
        }
        let at = pos as usize;
        match option {
            _ if is_integer_option(option) => {
                let bytes = &data[at..at + size as usize];
                let signed = option.is_ascii_lowercase();
                out.push(Value::Number(read_integer(
                    bytes,
                    header.little,
                    signed,
                    size as usize,
                )));
            }
            b'x' => {}
            b'f' => {
                let raw: [u8; 4] = data[at..at + 4].try_into().expect("4 bytes");
                let value = if header.little {
                    f32::from_le_bytes(raw)
                } else {
                    f32::from_be_bytes(raw)
                };
                out.push(Value::Number(f64::from(value)));
            }
            b'd' => {
                let raw: [u8; 8] = data[at..at + 8].try_into().expect("8 bytes");
                let value = if header.little {
                    f64::from_le_bytes(raw)
                } else {
                    f64::from_be_bytes(raw)
                };
                out.push(Value::Number(value));
            }
            b'c' => {
                if size == 0 {
                    // The length is the previous result, which must be a
                    // number or a string Lua converts to one.
                    let previous = match out.last() {
                        Some(value) => to_number(args.lua, value)?,
                        None => None,
                    };
                    let Some(previous) = previous else {
                        return Err(error("format 'c0' needs a previous size"));
                    };
                    size = c_f64_to_u64(previous);
                    out.pop();
                    if !(size <= len && pos <= len - size) {
                        return Err(too_short());
                    }
                }
                let bytes = &data[at..at + size as usize];
                out.push(Value::String(args.lua.create_string(bytes)?));
            }
            b's' => {
                let Some(end) = data[at..].iter().position(|&b| b == 0) else {
                    return Err(error("unfinished string in data"));
                };
                size = end as u64 + 1;
                out.push(Value::String(args.lua.create_string(&data[at..at + end])?));
            }
            _ => format.control(args, option, &mut header)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    results(out)
}

fn size(args: &Args) -> CallResult {
    let format_string = args.check_string(1)?;
    let format_bytes = format_string.as_bytes();
    let mut format = Format::new(&format_bytes);
    let mut header = Header::new();
    let mut pos: usize = 0;
    while let Some(option) = format.next_option() {
        let size = format.size_of(option)?;
        pos = pos.wrapping_add(padding(pos, &header, option, size));
        if option == b's' {
            return Err(args.arg_error(1, b"option 's' has no fixed size"));
        } else if option == b'c' && size == 0 {
            return Err(args.arg_error(1, b"option 'c0' has no fixed size"));
        }
        // Unknown letters and digits are skipped here, unlike in pack.
        if !option.is_ascii_alphanumeric() {
            format.control(args, option, &mut header)?;
        }
        pos = pos.wrapping_add(size);
    }
    results([Value::Number(pos as i64 as f64)])
}

#[cfg(test)]
mod tests {
    use mlua::Lua;

    use super::super::support::testing::{error_of, eval, lua_with};

    fn lua() -> Lua {
        lua_with(super::open)
    }

    fn bytes(lua: &Lua, code: &str) -> Vec<u8> {
        let s: mlua::LuaString = eval(lua, code);
        s.as_bytes().to_vec()
    }

    #[test]
    fn packs_integers_with_endianness_and_sizes() {
        let lua = lua();
        assert_eq!(
            bytes(&lua, "return struct.pack('>I2<I2', 0x0102, 0x0102)"),
            [1, 2, 2, 1]
        );
        assert_eq!(bytes(&lua, "return struct.pack('b', -1)"), [0xff]);
        assert_eq!(
            bytes(&lua, "return struct.pack('>i', -2)"),
            [0xff, 0xff, 0xff, 0xfe]
        );
        assert_eq!(
            bytes(&lua, "return struct.pack('<l', 1)"),
            [1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            bytes(&lua, "return struct.pack('>i10', -1)"),
            [0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(bytes(&lua, "return struct.pack('>H', 70000)"), [0x11, 0x70]);
    }

    #[test]
    fn packs_floats_strings_and_padding() {
        let lua = lua();
        assert_eq!(
            bytes(&lua, "return struct.pack('>d', 1.5)"),
            1.5f64.to_be_bytes()
        );
        assert_eq!(
            bytes(&lua, "return struct.pack('<f', 0.1)"),
            0.1f32.to_le_bytes()
        );
        assert_eq!(bytes(&lua, "return struct.pack('s', 'ab')"), b"ab\0");
        assert_eq!(bytes(&lua, "return struct.pack('c0', 'abc')"), b"abc");
        assert_eq!(bytes(&lua, "return struct.pack('c2', 'abc')"), b"ab");
        assert_eq!(bytes(&lua, "return struct.pack('bxb', 1, 2)"), [1, 0, 2]);
        assert_eq!(
            bytes(&lua, "return struct.pack('!4 b i', 1, 2)"),
            [1, 0, 0, 0, 2, 0, 0, 0]
        );
        assert_eq!(
            bytes(&lua, "return struct.pack('!b d', 1, 0)"),
            [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes(&lua, "return struct.pack('c', 12)"), b"1");
    }

    #[test]
    fn round_trips_through_unpack() {
        let lua = lua();
        let ok: bool = eval(
            &lua,
            r#"
            local s = struct.pack('>i4 <h B d f s c3', -5, -2, 200, 1.25, 0.5, 'hi', 'xyz')
            local a, b, c, d, e, f, g, next = struct.unpack('>i4 <h B d f s c3', s)
            return a == -5 and b == -2 and c == 200 and d == 1.25 and e == 0.5
               and f == 'hi' and g == 'xyz' and next == #s + 1
            "#,
        );
        assert!(ok);
        let (text, next): (String, f64) =
            eval(&lua, "return struct.unpack('Bc0', '\\5helloworld')");
        assert_eq!((text.as_str(), next), ("hello", 7.0));
    }

    #[test]
    fn unpack_reads_signed_and_unsigned_with_offsets() {
        let lua = lua();
        let values: Vec<f64> = eval(&lua, "return {struct.unpack('>h', '\\255\\254')}");
        assert_eq!(values, vec![-2.0, 3.0]);
        let values: Vec<f64> = eval(&lua, "return {struct.unpack('<H', 'xx\\1\\2', 3)}");
        assert_eq!(values, vec![513.0, 5.0]);
        let values: Vec<f64> = eval(&lua, "return {struct.unpack('>i3', '\\255\\255\\255')}");
        assert_eq!(values, vec![-1.0, 4.0]);
        let values: Vec<f64> = eval(
            &lua,
            "return {struct.unpack('>l', '\\255\\255\\255\\255\\255\\255\\255\\255')}",
        );
        assert_eq!(values, vec![-1.0, 9.0]);
        let values: Vec<f64> = eval(
            &lua,
            "return {struct.unpack('>L', '\\0\\0\\0\\0\\0\\0\\1\\0')}",
        );
        assert_eq!(values, vec![256.0, 9.0]);
    }

    #[test]
    fn size_counts_alignment_and_skips_letters() {
        let lua = lua();
        let sizes: Vec<f64> = eval(
            &lua,
            "return {struct.size('i'), struct.size('!8 b d'), struct.size('>hBc5'), \
             struct.size('q'), struct.size('i32'), struct.size('')}",
        );
        assert_eq!(sizes, vec![4.0, 16.0, 8.0, 0.0, 32.0, 0.0]);
    }

    #[test]
    fn errors_match_redis() {
        let lua = lua();
        assert_eq!(
            error_of(&lua, "struct.pack('z', 1)"),
            "bad argument #1 to 'pack' (invalid format option 'z')"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('y', 'a')"),
            "bad argument #1 to 'unpack' (invalid format option 'y')"
        );
        assert_eq!(
            error_of(&lua, "struct.size('!3')"),
            "alignment 3 is not a power of 2"
        );
        assert_eq!(
            error_of(&lua, "struct.pack('i33', 1)"),
            "integral size 33 is larger than limit of 32"
        );
        assert_eq!(
            error_of(&lua, "struct.pack('c99999999999', 'a')"),
            "integral size overflow"
        );
        assert_eq!(
            error_of(&lua, "struct.pack('c5', 'ab')"),
            "bad argument #3 to 'pack' (string too short)"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('i4', 'ab')"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('c2147483647', 'ab')"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('b', 'ab', 0)"),
            "bad argument #3 to 'unpack' (offset must be 1 or greater)"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('b', 'ab', -1)"),
            "bad argument #2 to 'unpack' (data string too short)"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('c0', 'ab')"),
            "format 'c0' needs a previous size"
        );
        assert_eq!(
            error_of(&lua, "struct.unpack('s', 'ab')"),
            "unfinished string in data"
        );
        assert_eq!(
            error_of(&lua, "struct.size('s')"),
            "bad argument #1 to 'size' (option 's' has no fixed size)"
        );
        assert_eq!(
            error_of(&lua, "struct.size('c0')"),
            "bad argument #1 to 'size' (option 'c0' has no fixed size)"
        );
        assert_eq!(
            error_of(&lua, "struct.pack('i', 'x')"),
            "bad argument #2 to 'pack' (number expected, got string)"
        );
        assert_eq!(
            error_of(&lua, "struct.pack({})"),
            "bad argument #1 to 'pack' (string expected, got table)"
        );
    }

    #[test]
    fn format_stops_at_nul_and_too_many_results_is_an_error() {
        let lua = lua();
        assert_eq!(bytes(&lua, "return struct.pack('b\\0z', 1)"), [1]);
        let message = error_of(
            &lua,
            "struct.unpack(string.rep('b', 9000), string.rep('a', 9000))",
        );
        assert_eq!(message, "stack overflow (too many results)");
        let count: usize = eval(
            &lua,
            "return select('#', struct.unpack(string.rep('b', 7996), string.rep('a', 7996)))",
        );
        assert_eq!(count, 7997);
    }
}
