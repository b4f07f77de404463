//! MONITOR: the clients that see every command, and Redis's line format
//! (`+1339518083.107412 [0 127.0.0.1:60866] "keys" "*"`). Whether anyone
//! monitors is one relaxed load on the command path.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use parking_lot::Mutex;

use super::pubsub::{Message, Subscriber};

#[derive(Default)]
pub struct Monitors {
    count: AtomicUsize,
    list: Mutex<Vec<Arc<Subscriber>>>,
}

impl Monitors {
    /// Whether a line must be built at all.
    #[inline]
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) != 0
    }

    pub fn add(&self, sub: &Arc<Subscriber>) {
        let mut l = self.list.lock();
        if !l.iter().any(|s| s.id == sub.id) {
            l.push(sub.clone());
        }
        self.count.store(l.len(), Ordering::Relaxed);
    }

    pub fn remove(&self, id: u64) {
        let mut l = self.list.lock();
        l.retain(|s| s.id != id);
        self.count.store(l.len(), Ordering::Relaxed);
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Sends one command to every monitor. `origin` is what Redis puts in
    /// brackets after the database (`127.0.0.1:60866`, `lua`).
    pub fn feed(&self, db: usize, origin: &str, args: &[Bytes]) {
        let line = Bytes::from(format_line(db, origin, args));
        let mut l = self.list.lock();
        l.retain(|s| s.deliver(Message::Monitor(line.clone())));
        self.count.store(l.len(), Ordering::Relaxed);
    }
}

/// One MONITOR line, `+` to `\r\n` included.
pub fn format_line(db: usize, origin: &str, args: &[Bytes]) -> Vec<u8> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut s = format!(
        "+{}.{:06} [{db} {origin}] ",
        now.as_secs(),
        now.subsec_micros()
    )
    .into_bytes();
    for (j, a) in args.iter().enumerate() {
        repr(&mut s, a);
        if j + 1 != args.len() {
            s.push(b' ');
        }
    }
    s.extend_from_slice(b"\r\n");
    s
}

/// Redis's sdscatrepr: a quoted string with C escapes.
pub fn repr(out: &mut Vec<u8>, a: &[u8]) {
    out.push(b'"');
    for &c in a {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            7 => out.extend_from_slice(b"\\a"),
            8 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_escape_as_redis() {
        let l = format_line(
            0,
            "127.0.0.1:1",
            &[
                Bytes::from_static(b"set"),
                Bytes::from_static(b"a\"\x01\n b"),
            ],
        );
        let l = String::from_utf8(l).unwrap();
        assert!(l.starts_with('+'), "{l}");
        assert!(
            l.ends_with(" [0 127.0.0.1:1] \"set\" \"a\\\"\\x01\\n b\"\r\n"),
            "{l}"
        );
    }
}
