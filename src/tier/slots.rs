//! Redis Cluster's hash slots: a key's slot (CRC16 of its hash tag, mod
//! 16384) and the slot map read from `CLUSTER SLOTS`. Pure: no I/O.

use redis::Value;

/// Slots in a Redis Cluster.
pub const SLOTS: usize = 16384;

/// Redis Cluster's exact error for keys of several slots in one request.
pub const CROSSSLOT_ERR: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// The slot of `key`: CRC16 (XMODEM) of the hash tag (the part between the
/// first `{` and the next `}`, if not empty), else of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let tagged = key.iter().position(|&b| b == b'{').and_then(|open| {
        let rest = &key[open + 1..];
        let close = rest.iter().position(|&b| b == b'}')?;
        (close > 0).then(|| &rest[..close])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

/// CRC16-CCITT (XMODEM), as Redis's `crc16.c`.
fn crc16(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Keys of more than one slot in one request.
#[derive(Debug, PartialEq, Eq)]
pub struct CrossSlot;

/// The one slot of `keys`: `Ok(None)` if there are none, `Err(CrossSlot)`
/// if they hash to more than one.
pub fn common_slot<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Result<Option<u16>, CrossSlot> {
    let mut slot = None;
    for k in keys {
        let s = key_slot(k);
        match slot {
            None => slot = Some(s),
            Some(prev) if prev != s => return Err(CrossSlot),
            Some(_) => {}
        }
    }
    Ok(slot)
}

/// Who serves each slot: the primaries (`host:port`, sorted) and, per slot,
/// the index of its primary (`u16::MAX`: not served).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotMap {
    pub primaries: Vec<String>,
    pub owner: Vec<u16>,
}

impl SlotMap {
    /// The primary serving `slot` (its index in `primaries`).
    pub fn owner_of(&self, slot: u16) -> Option<usize> {
        match self.owner.get(usize::from(slot)) {
            Some(&i) if i != u16::MAX => Some(usize::from(i)),
            _ => None,
        }
    }

    /// Reads a `CLUSTER SLOTS` reply: `[start, end, [host, port, id, ...],
    /// replicas...]` per range. An empty host is the node asked (`asked_host`).
    pub fn parse(reply: &Value, asked_host: &str) -> Option<SlotMap> {
        let Value::Array(ranges) = reply else {
            return None;
        };
        let mut spans: Vec<(usize, usize, String)> = Vec::with_capacity(ranges.len());
        for r in ranges {
            let Value::Array(r) = r else { return None };
            let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Array(primary))) =
                (r.first(), r.get(1), r.get(2))
            else {
                return None;
            };
            let host = match primary.first()? {
                Value::BulkString(b) => String::from_utf8(b.clone()).ok()?,
                Value::SimpleString(s) => s.clone(),
                _ => return None,
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                return None;
            };
            let host = if host.is_empty() || host == "?" {
                asked_host.to_string()
            } else {
                host
            };
            let addr = if host.contains(':') {
                format!("[{host}]:{port}")
            } else {
                format!("{host}:{port}")
            };
            let (start, end) = (usize::try_from(*start).ok()?, usize::try_from(*end).ok()?);
            if start > end || end >= SLOTS {
                return None;
            }
            spans.push((start, end, addr));
        }
        let mut primaries: Vec<String> = spans.iter().map(|s| s.2.clone()).collect();
        primaries.sort();
        primaries.dedup();
        let mut owner = vec![u16::MAX; SLOTS];
        for (start, end, addr) in &spans {
            let i = primaries.binary_search(addr).ok()?;
            owner[*start..=*end].fill(u16::try_from(i).ok()?);
        }
        Some(SlotMap { primaries, owner })
    }
}

/// Where a `MOVED` or `ASK` error sends a request: (`ASK`?, `host:port`).
pub fn redirect(code: &str, detail: &str) -> Option<(bool, String)> {
    let ask = match code {
        "MOVED" => false,
        "ASK" => true,
        _ => return None,
    };
    let (_slot, addr) = detail.trim().split_once(' ')?;
    Some((ask, addr.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from Redis's CLUSTER KEYSLOT.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"bar"), 5061);
        assert_eq!(key_slot(b""), 0);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"123456789"), 0x31C3 & 16383);
        assert_eq!(
            common_slot([&b"{a}1"[..], &b"{a}2"[..]]),
            Ok(Some(key_slot(b"a")))
        );
        assert_eq!(common_slot([&b"foo"[..], &b"bar"[..]]), Err(CrossSlot));
        assert_eq!(common_slot(std::iter::empty()), Ok(None));
    }

    #[test]
    fn parses_cluster_slots() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let reply = Value::Array(vec![
            Value::Array(vec![
                Value::Int(0),
                Value::Int(8191),
                node("127.0.0.1", 7001),
                node("127.0.0.1", 7004),
            ]),
            Value::Array(vec![Value::Int(8192), Value::Int(16383), node("", 7000)]),
        ]);
        let m = SlotMap::parse(&reply, "10.0.0.9").unwrap();
        assert_eq!(m.primaries, ["10.0.0.9:7000", "127.0.0.1:7001"]);
        assert_eq!(m.owner_of(0), Some(1));
        assert_eq!(m.owner_of(16383), Some(0));
        let partial = Value::Array(vec![Value::Array(vec![
            Value::Int(5),
            Value::Int(6),
            node("::1", 7),
        ])]);
        let m = SlotMap::parse(&partial, "h").unwrap();
        assert_eq!((m.owner_of(4), m.owner_of(6)), (None, Some(0)));
        assert_eq!(m.primaries, ["[::1]:7"]);
        assert_eq!(
            redirect("MOVED", "3999 127.0.0.1:6381"),
            Some((false, "127.0.0.1:6381".into()))
        );
        assert_eq!(redirect("ERR", "x"), None);
    }
}
