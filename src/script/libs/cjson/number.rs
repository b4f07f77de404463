//! Number text for cjson: C's `%.<precision>g` and glibc's `strtod`, which
//! Lua CJSON uses for encoding and decoding numbers.

/// `printf("%.<precision>g", x)` as glibc prints it.
pub fn format_g(x: f64, precision: usize) -> String {
    let sign = if x.is_sign_negative() { "-" } else { "" };
    if x.is_nan() {
        return format!("{sign}nan");
    }
    if x.is_infinite() {
        return format!("{sign}inf");
    }
    if x == 0.0 {
        return format!("{sign}0");
    }
    let precision = precision.max(1);
    // The exponent after rounding to `precision` significant digits.
    let scientific = format!("{:.*e}", precision - 1, x);
    let (mantissa, exponent) = scientific.split_once('e').expect("exponent");
    let exponent: i32 = exponent.parse().expect("numeric exponent");
    if exponent < -4 || exponent >= precision as i32 {
        let mantissa = strip_zeros(mantissa);
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!("{mantissa}e{exponent_sign}{:02}", exponent.abs())
    } else {
        let decimals = (precision as i32 - 1 - exponent) as usize;
        strip_zeros(&format!("{x:.decimals$}")).to_string()
    }
}

/// `%g` drops trailing zeros of the fraction, and a bare point.
fn strip_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

/// glibc's `strtod` in the C locale on `bytes`: the value and the number of
/// bytes used, or `None` when no number starts here. Accepts what strtod
/// does: a sign, decimal and hexadecimal (`0x`, `p` exponent) forms,
/// `inf`/`infinity` and `nan`/`nan(chars)`, any case.
pub fn strtod(bytes: &[u8]) -> Option<(f64, usize)> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut i = 0;
    while matches!(at(i), b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c') {
        i += 1;
    }
    let negative = at(i) == b'-';
    if matches!(at(i), b'+' | b'-') {
        i += 1;
    }
    let signed = |v: f64| if negative { -v } else { v };
    let word =
        |from: usize, w: &[u8]| (0..w.len()).all(|k| at(from + k).to_ascii_lowercase() == w[k]);
    if word(i, b"inf") {
        let used = if word(i, b"infinity") { i + 8 } else { i + 3 };
        return Some((signed(f64::INFINITY), used));
    }
    if word(i, b"nan") {
        let mut used = i + 3;
        if at(used) == b'(' {
            let mut k = used + 1;
            while at(k).is_ascii_alphanumeric() || at(k) == b'_' {
                k += 1;
            }
            if at(k) == b')' {
                used = k + 1;
            }
        }
        return Some((signed(f64::NAN), used));
    }
    if at(i) == b'0' && (at(i + 1) | 0x20) == b'x' {
        if let Some((value, used)) = hex(bytes, i + 2) {
            return Some((signed(value), used));
        }
        // "0x" without hex digits: just the "0".
        return Some((signed(0.0), i + 1));
    }
    let mut digits = String::new();
    while at(i).is_ascii_digit() {
        digits.push(at(i) as char);
        i += 1;
    }
    let mut fraction = String::new();
    if at(i) == b'.' {
        let mut k = i + 1;
        while at(k).is_ascii_digit() {
            fraction.push(at(k) as char);
            k += 1;
        }
        if !digits.is_empty() || !fraction.is_empty() {
            i = k;
        }
    }
    if digits.is_empty() && fraction.is_empty() {
        return None;
    }
    let mut exponent = String::new();
    if (at(i) | 0x20) == b'e' {
        let mut k = i + 1;
        let mut e = String::new();
        if matches!(at(k), b'+' | b'-') {
            e.push(at(k) as char);
            k += 1;
        }
        let digits_from = k;
        while at(k).is_ascii_digit() {
            e.push(at(k) as char);
            k += 1;
        }
        if k > digits_from {
            exponent = e;
            i = k;
        }
    }
    let mut text = if digits.is_empty() {
        "0".to_string()
    } else {
        digits
    };
    if !fraction.is_empty() {
        text.push('.');
        text.push_str(&fraction);
    }
    if !exponent.is_empty() {
        text.push('e');
        text.push_str(&clamp_exponent(&exponent));
    }
    let value: f64 = text.parse().ok()?;
    Some((signed(value), i))
}

/// Exponents far beyond any double's range mean the same as a large one;
/// keep the text short for the parser.
fn clamp_exponent(exponent: &str) -> String {
    let (sign, digits) = match exponent.as_bytes().first() {
        Some(b'-') => ("-", &exponent[1..]),
        Some(b'+') => ("", &exponent[1..]),
        _ => ("", exponent),
    };
    let digits = digits.trim_start_matches('0');
    if digits.len() > 6 {
        format!("{sign}999999")
    } else if digits.is_empty() {
        "0".to_string()
    } else {
        format!("{sign}{digits}")
    }
}

/// A hexadecimal float after "0x": digits, optional point and fraction,
/// optional binary exponent. Rounded to nearest from a 124-bit mantissa
/// with a sticky bit.
fn hex(bytes: &[u8], from: usize) -> Option<(f64, usize)> {
    let at = |i: usize| bytes.get(i).copied().unwrap_or(0);
    let mut i = from;
    let mut mantissa: u128 = 0;
    let mut sticky = false;
    let mut scale: i64 = 0;
    let mut any = false;
    let mut seen_point = false;
    loop {
        let c = at(i);
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(d) = (c as char).to_digit(16) else {
            break;
        };
        any = true;
        if mantissa >> 120 == 0 {
            mantissa = mantissa << 4 | u128::from(d);
            if seen_point {
                scale -= 4;
            }
        } else {
            sticky |= d != 0;
            if !seen_point {
                scale += 4;
            }
        }
        i += 1;
    }
    if !any {
        return None;
    }
    if (at(i) | 0x20) == b'p' {
        let mut k = i + 1;
        let negative = at(k) == b'-';
        if matches!(at(k), b'+' | b'-') {
            k += 1;
        }
        let digits_from = k;
        let mut e: i64 = 0;
        while at(k).is_ascii_digit() {
            e = (e * 10 + i64::from(at(k) - b'0')).min(1 << 20);
            k += 1;
        }
        if k > digits_from {
            scale += if negative { -e } else { e };
            i = k;
        }
    }
    if sticky {
        mantissa |= 1;
    }
    let value = (mantissa as f64) * 2f64.powi(scale.clamp(-1100, 1100) as i32);
    Some((value, i))
}
