//! TEMPORARY: replaced by the exact implementation.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let t = std::str::from_utf8(s).ok()?;
    if t.is_empty()
        || t.starts_with('+')
        || (t.len() > 1 && t.starts_with('0'))
        || t.starts_with("-0")
    {
        return None;
    }
    t.parse().ok()
}
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    std::str::from_utf8(s).ok()?.parse().ok()
}
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let v: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}
pub fn parse_long_double(s: &[u8]) -> Option<f64> {
    parse_f64(s)
}
pub fn format_double(d: f64, buf: &mut Vec<u8>) {
    if d.is_infinite() {
        buf.extend_from_slice(if d > 0.0 { b"inf" } else { b"-inf" });
    } else {
        buf.extend_from_slice(format!("{d}").as_bytes());
    }
}
pub fn format_double_human(d: f64, buf: &mut Vec<u8>) {
    format_double(d, buf)
}
pub fn parse_memory(s: &[u8]) -> Option<u64> {
    let t = std::str::from_utf8(s).ok()?.to_ascii_lowercase();
    for (suf, mul) in [
        ("gb", 1u64 << 30),
        ("mb", 1 << 20),
        ("kb", 1 << 10),
        ("g", 1_000_000_000),
        ("m", 1_000_000),
        ("k", 1000),
        ("b", 1),
    ] {
        if let Some(n) = t.strip_suffix(suf) {
            return n.parse::<u64>().ok()?.checked_mul(mul);
        }
    }
    t.parse().ok()
}
