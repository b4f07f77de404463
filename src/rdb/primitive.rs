//! RDB's primitives: lengths and strings as written by DUMP, and the
//! [`Reader`] that reads them back along with Redis's other string forms
//! (integer-encoded, LZF-compressed) and the two score formats.

use super::lzf;

/// Appends an RDB length: 6 bits, 14 bits, then 32 or 64 bits big-endian.
pub fn write_len(out: &mut Vec<u8>, n: usize) {
    let n = n as u64;
    if n < 64 {
        out.push(n as u8);
    } else if n < 16384 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u32::MAX as u64 {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// Appends a raw RDB string: its length, then its bytes.
pub fn write_str(out: &mut Vec<u8>, s: &[u8]) {
    write_len(out, s.len());
    out.extend_from_slice(s);
}

/// A cursor over an RDB object; every read is bounds-checked and gives None
/// past the end or on an encoding it does not know.
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.b.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    pub fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    /// A length, or (true, n) for a special string encoding n.
    fn len_enc(&mut self) -> Option<(bool, u64)> {
        let t = self.byte()?;
        Some(match t >> 6 {
            0 => (false, (t & 0x3f) as u64),
            1 => (false, (((t & 0x3f) as u64) << 8) | self.byte()? as u64),
            3 => (true, (t & 0x3f) as u64),
            _ => match t {
                0x80 => (
                    false,
                    u32::from_be_bytes(self.take(4)?.try_into().ok()?) as u64,
                ),
                0x81 => (false, u64::from_be_bytes(self.take(8)?.try_into().ok()?)),
                _ => return None,
            },
        })
    }

    /// A plain length (a special string encoding is an error here).
    pub fn len(&mut self) -> Option<usize> {
        match self.len_enc()? {
            (false, n) => usize::try_from(n).ok(),
            (true, _) => None,
        }
    }

    /// A string: raw, an 8/16/32-bit integer (as its decimal text), or LZF.
    pub fn string(&mut self) -> Option<Vec<u8>> {
        match self.len_enc()? {
            (false, n) => Some(self.take(usize::try_from(n).ok()?)?.to_vec()),
            (true, 0) => Some((self.take(1)?[0] as i8).to_string().into_bytes()),
            (true, 1) => Some(
                i16::from_le_bytes(self.take(2)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            (true, 2) => Some(
                i32::from_le_bytes(self.take(4)?.try_into().ok()?)
                    .to_string()
                    .into_bytes(),
            ),
            (true, 3) => {
                let clen = self.len()?;
                let ulen = self.len()?;
                let data = self.take(clen)?;
                lzf::decompress(data, ulen)
            }
            _ => None,
        }
    }

    /// RDB_TYPE_ZSET_2's score: a little-endian IEEE double.
    pub fn binary_double(&mut self) -> Option<f64> {
        Some(f64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// RDB_TYPE_ZSET's text score: a length byte (253 NaN, 254 +inf, 255 -inf).
    pub fn text_double(&mut self) -> Option<f64> {
        match self.byte()? {
            253 => Some(f64::NAN),
            254 => Some(f64::INFINITY),
            255 => Some(f64::NEG_INFINITY),
            n => {
                let s = self.take(n as usize)?;
                std::str::from_utf8(s).ok()?.trim().parse::<f64>().ok()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written_len(n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        write_len(&mut out, n);
        out
    }

    #[test]
    fn lengths_use_redis_byte_layouts() {
        assert_eq!(written_len(0), [0x00]);
        assert_eq!(written_len(63), [0x3f]);
        assert_eq!(written_len(64), [0x40, 0x40]);
        assert_eq!(written_len(16383), [0x7f, 0xff]);
        assert_eq!(written_len(16384), [0x80, 0x00, 0x00, 0x40, 0x00]);
        assert_eq!(
            written_len(u32::MAX as usize),
            [0x80, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            written_len(u32::MAX as usize + 1),
            [0x81, 0, 0, 0, 1, 0, 0, 0, 0]
        );
    }

    #[test]
    fn lengths_round_trip() {
        for n in [
            0,
            1,
            63,
            64,
            300,
            16383,
            16384,
            70_000,
            u32::MAX as usize + 5,
        ] {
            let bytes = written_len(n);
            let mut r = Reader::new(&bytes);
            assert_eq!(r.len(), Some(n), "{n}");
            assert_eq!(r.byte(), None, "{n}: all bytes read");
        }
    }

    #[test]
    fn lengths_reject_unknown_and_special_forms() {
        // 0x82..0xbf are not lengths; 0xc0 is a special string encoding.
        assert_eq!(Reader::new(&[0x82, 0, 0, 0, 1]).len(), None);
        assert_eq!(Reader::new(&[0xc0, 1]).len(), None);
        // Truncated 14-, 32- and 64-bit lengths.
        assert_eq!(Reader::new(&[0x40]).len(), None);
        assert_eq!(Reader::new(&[0x80, 0, 0, 1]).len(), None);
        assert_eq!(Reader::new(&[0x81, 0, 0, 0, 0, 0, 0, 1]).len(), None);
    }

    #[test]
    fn raw_strings_round_trip() {
        for s in [&b""[..], b"a", &[0u8, 255, 10][..], &vec![b'x'; 20_000][..]] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            let mut r = Reader::new(&out);
            assert_eq!(r.string().as_deref(), Some(s));
            assert_eq!(r.byte(), None);
        }
    }

    #[test]
    fn integer_encoded_strings_read_as_decimal_text() {
        assert_eq!(Reader::new(&[0xc0, 0x85]).string().unwrap(), b"-123");
        assert_eq!(Reader::new(&[0xc1, 0x39, 0x30]).string().unwrap(), b"12345");
        assert_eq!(
            Reader::new(&[0xc1, 0x00, 0x80]).string().unwrap(),
            b"-32768"
        );
        assert_eq!(
            Reader::new(&[0xc2, 0x00, 0x00, 0x00, 0x80])
                .string()
                .unwrap(),
            b"-2147483648"
        );
        // Truncated integers.
        assert_eq!(Reader::new(&[0xc1, 0x39]).string(), None);
        assert_eq!(Reader::new(&[0xc2, 0, 0, 0]).string(), None);
    }

    #[test]
    fn lzf_strings_decompress() {
        let text = b"abcabcabcabcabcabcabcabc".repeat(4);
        let packed = lzf::compress(&text);
        let mut out = vec![0xc3];
        write_len(&mut out, packed.len());
        write_len(&mut out, text.len());
        out.extend_from_slice(&packed);
        assert_eq!(Reader::new(&out).string().unwrap(), text);
        // The compressed data cut short.
        assert_eq!(Reader::new(&out[..out.len() - 1]).string(), None);
        // A declared length other than the real one.
        let wrong_ulen = [&[0xc3, packed.len() as u8, 5][..], &packed].concat();
        assert_eq!(Reader::new(&wrong_ulen).string(), None);
    }

    #[test]
    fn unknown_special_string_encodings_are_errors() {
        assert_eq!(Reader::new(&[0xc4, 0, 0]).string(), None);
        assert_eq!(Reader::new(&[0xff]).string(), None);
    }

    #[test]
    fn strings_longer_than_the_input_are_errors() {
        assert_eq!(Reader::new(&[0x05, b'a', b'b']).string(), None);
        // A 64-bit length that overflows the cursor.
        let mut huge = vec![0x81];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(Reader::new(&huge).string(), None);
    }

    #[test]
    fn doubles_in_both_formats() {
        let bits = 1.5f64.to_le_bytes();
        assert_eq!(Reader::new(&bits).binary_double(), Some(1.5));
        assert_eq!(Reader::new(&bits[..7]).binary_double(), None);
        assert_eq!(Reader::new(b"\x04-2.5").text_double(), Some(-2.5));
        assert!(Reader::new(&[253]).text_double().unwrap().is_nan());
        assert_eq!(Reader::new(&[254]).text_double(), Some(f64::INFINITY));
        assert_eq!(Reader::new(&[255]).text_double(), Some(f64::NEG_INFINITY));
        assert_eq!(Reader::new(b"\x03abc").text_double(), None);
        assert_eq!(Reader::new(b"\x05-2.5").text_double(), None);
    }
}
