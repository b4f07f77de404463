//! CRC-64/Jones as Redis computes it: the checksum of a DUMP payload's trailer.

/// Redis's `crc64` polynomial (Jones), in its normal (unreflected) form.
const POLY: u64 = 0xad93_d235_94c9_35a9;

const TABLE: [u64; 256] = {
    let poly = POLY.reverse_bits();
    let mut t = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut k = 0;
        while k < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
            k += 1;
        }
        t[i] = crc;
        i += 1;
    }
    t
};

/// CRC-64/Jones as Redis computes it (`crc64(0, data, len)`): reflected,
/// initial value 0, no final xor.
pub fn crc64(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc = TABLE[((crc ^ b as u64) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis_self_test_vector() {
        // Redis's crc64 self-test (src/crc64.c).
        assert_eq!(crc64(b"123456789"), 0xe9c6d914c4b8d9ca);
    }

    #[test]
    fn empty_input_is_zero() {
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn matches_a_trailer_written_by_redis() {
        // DUMP of the integer string 12345 from redis-server 7.0.15: the
        // object, version 10, then the CRC of everything before it.
        let payload = [
            0x00, 0xc1, 0x39, 0x30, 0x0a, 0x00, 0x9d, 0x94, 0xea, 0x27, 0x93, 0xfc, 0x08, 0xb9,
        ];
        let crc = u64::from_le_bytes(payload[6..].try_into().unwrap());
        assert_eq!(crc64(&payload[..6]), crc);
    }

    #[test]
    fn a_single_flipped_bit_changes_the_checksum() {
        let a = crc64(b"123456789");
        let b = crc64(b"123456788");
        assert_ne!(a, b);
    }
}
