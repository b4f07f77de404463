//! FUNCTION DUMP / RESTORE payloads: each library as the opcode
//! `RDB_OPCODE_FUNCTION2` (245) and its code as an RDB string, then the
//! same trailer as a DUMP payload (version, CRC-64).

use super::primitive::{write_str, Reader};
use super::{crc64, verify, RDB_VERSION, TRAILER_LEN};

/// RDB's opcode for a function library (Redis 7.0 GA and later).
const OPCODE_FUNCTION2: u8 = 245;

/// The FUNCTION DUMP payload of libraries with these codes.
pub fn encode_functions<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        out.push(OPCODE_FUNCTION2);
        write_str(&mut out, code);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The library codes of a FUNCTION RESTORE payload, or Redis's error text.
pub fn decode_functions(payload: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    if !verify(payload) {
        return Err("ERR DUMP payload version or checksum are wrong");
    }
    let body = &payload[..payload.len() - TRAILER_LEN];
    let mut r = Reader::new(body);
    let mut codes = Vec::new();
    while r.remaining() > 0 {
        let Some(t) = r.byte() else {
            return Err("ERR can not read data type");
        };
        if t != OPCODE_FUNCTION2 {
            return Err("ERR given type is not a function");
        }
        match r.string() {
            Some(code) => codes.push(code),
            None => return Err("ERR failed loading the given functions payload"),
        }
    }
    Ok(codes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libraries_round_trip() {
        let libs: [&[u8]; 2] = [
            b"#!lua name=a\nredis.register_function('f', function() return 1 end)",
            b"",
        ];
        let p = encode_functions(libs);
        assert_eq!(
            decode_functions(&p).unwrap(),
            vec![libs[0].to_vec(), Vec::new()]
        );
        assert_eq!(
            decode_functions(&encode_functions([])).unwrap(),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn damaged_payloads_are_refused() {
        let mut p = encode_functions([&b"code"[..]]);
        let n = p.len();
        p[1] ^= 1;
        assert_eq!(
            decode_functions(&p),
            Err("ERR DUMP payload version or checksum are wrong")
        );
        p[1] ^= 1;
        // A valid trailer over a value that is not a function.
        let mut other = vec![0u8];
        write_str(&mut other, b"x");
        other.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&other);
        other.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_functions(&other),
            Err("ERR given type is not a function")
        );
        // A string cut short.
        let mut cut = vec![OPCODE_FUNCTION2, 10, b'a'];
        cut.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = crc64(&cut);
        cut.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(
            decode_functions(&cut),
            Err("ERR failed loading the given functions payload")
        );
        assert_eq!(decode_functions(&p[..n]).unwrap(), vec![b"code".to_vec()]);
    }
}
