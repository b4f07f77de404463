//! Reading INFO sections the router writes (`# Tiers`, cluster mode's
//! `# Replication`): the router shows its numbers only as INFO text, and
//! reading that text keeps INFO and `/metrics` one source.

use std::collections::HashMap;

/// The `name:value` lines of INFO text (section headers and blank lines
/// skipped).
pub fn fields(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end_matches('\r').split_once(':'))
        .collect()
}

/// A field as a number (None when absent or not a number).
pub fn number(fields: &HashMap<&str, &str>, name: &str) -> Option<f64> {
    fields.get(name)?.parse().ok()
}

/// The `key=value,...` pairs of a field such as `slave0:id=a,offset=3`.
pub fn pairs(value: &str) -> HashMap<&str, &str> {
    value
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_pairs() {
        let text = "# Replication\r\nrole:master\r\nslave0:id=b,ip=127.0.0.1,port=7,offset=42,lag_ms=3\r\nepoch:9\r\n\r\n";
        let f = fields(text);
        assert_eq!(f["role"], "master");
        assert_eq!(number(&f, "epoch"), Some(9.0));
        assert_eq!(number(&f, "role"), None);
        let p = pairs(f["slave0"]);
        assert_eq!((p["id"], p["offset"], p["lag_ms"]), ("b", "42", "3"));
    }
}
