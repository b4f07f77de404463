//! INCRBYFLOAT / HINCRBYFLOAT arithmetic in C's `long double`, as Redis does
//! it (`longdouble.c`, built by `build.rs`): Rust has no long double, and
//! an `f64` sum prints differently (0.1 + 0.2 is "0.3" in Redis).

use std::os::raw::{c_int, c_long};

/// Redis's `MAX_LONG_DOUBLE_CHARS`.
const LD_CHARS: usize = 5 * 1024;

extern "C" {
    fn jcache_ld_valid(s: *const u8, len: usize, finite: *mut c_int) -> c_int;
    fn jcache_ld_sum(
        a: *const u8,
        alen: usize,
        b: *const u8,
        blen: usize,
        out: *mut u8,
        cap: usize,
    ) -> c_long;
}

/// Whether `s` is a number Redis accepts as a float (its `string2ld`), and
/// if so whether it is finite.
pub fn valid(s: &[u8]) -> Option<bool> {
    let mut finite: c_int = 0;
    // SAFETY: the C function reads `s.len()` bytes of `s` and writes `finite`.
    let ok = unsafe { jcache_ld_valid(s.as_ptr(), s.len(), &mut finite) };
    (ok == 1).then_some(finite == 1)
}

/// `a + b` (`a` absent: 0) in long double, printed as Redis prints an
/// INCRBYFLOAT result (`%.17Lf`, trailing zeroes trimmed); `None` if the sum
/// is NaN or infinite. Both must be [`valid`].
pub fn sum(a: Option<&[u8]>, b: &[u8]) -> Option<Vec<u8>> {
    let mut out = vec![0u8; LD_CHARS];
    let (ap, al) = a.map_or((std::ptr::null(), 0), |a| (a.as_ptr(), a.len()));
    // SAFETY: the C function reads `al` bytes at `ap` (when not null) and
    // `b.len()` at `b`, and writes at most `out.len()` bytes to `out`.
    let n = unsafe { jcache_ld_sum(ap, al, b.as_ptr(), b.len(), out.as_mut_ptr(), out.len()) };
    if n < 0 {
        return None;
    }
    out.truncate(n as usize);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(a: Option<&str>, b: &str) -> Option<String> {
        sum(a.map(str::as_bytes), b.as_bytes()).map(|v| String::from_utf8(v).unwrap())
    }

    /// Replies of redis-server 7.0.15 to the same INCRBYFLOATs.
    #[test]
    fn sums_print_as_redis_prints_them() {
        assert_eq!(s(Some("10.5"), "0.1").unwrap(), "10.6");
        assert_eq!(s(Some("0.1"), "0.2").unwrap(), "0.3");
        assert_eq!(s(Some("5000"), "1.1").unwrap(), "5001.10000000000000009");
        assert_eq!(
            s(Some("1"), "0.333333333333333333").unwrap(),
            "1.33333333333333333"
        );
        assert_eq!(s(Some("3.0"), "1.0e-1").unwrap(), "3.1");
        assert_eq!(s(None, "5.0e3").unwrap(), "5000");
        assert_eq!(s(Some("-1"), "1").unwrap(), "0");
        assert_eq!(s(Some("-0.0"), "0").unwrap(), "0");
        assert_eq!(s(None, "1e-20").unwrap(), "0");
        let big = s(Some("1e300"), "1e300").unwrap();
        assert!(big.starts_with("200000000000000000001799464815911838774104788854658"));
        assert_eq!(big.len(), 301);
        assert_eq!(s(Some("1e4932"), "1e4932"), None, "overflows to inf");
        assert_eq!(s(None, "inf"), None);
    }

    #[test]
    fn validity_is_redis_string2ld() {
        assert_eq!(valid(b"1.5"), Some(true));
        assert_eq!(valid(b"+inf"), Some(false));
        assert_eq!(valid(b"1e4000"), Some(true), "in long double range");
        for bad in [
            &b""[..],
            b" 1",
            b"1 ",
            b"abc",
            b"nan",
            b"1e5000",
            b"1e-5000",
            b"1.5x",
        ] {
            assert_eq!(valid(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        assert_eq!(valid(&vec![b'1'; LD_CHARS]), None, "too long");
    }
}
