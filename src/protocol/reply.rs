//! Reply writer: encodes replies straight into the connection's output buffer,
//! in RESP2 or RESP3 depending on what the client negotiated with HELLO.
//!
//! RESP3-only types degrade the way Redis degrades them for RESP2 clients:
//! maps become flat arrays, sets become arrays, doubles become bulk strings,
//! booleans become integers and null becomes `$-1` (or `*-1` for null arrays).

use bytes::{BufMut, BytesMut};

pub struct Reply {
    pub buf: BytesMut,
    pub resp3: bool,
}

impl Reply {
    pub fn new(resp3: bool) -> Self {
        Reply {
            buf: BytesMut::with_capacity(256),
            resp3,
        }
    }

    #[inline]
    fn line(&mut self, prefix: u8, n: i64) {
        let mut b = itoa::Buffer::new();
        let s = b.format(n);
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(prefix);
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.put_slice(b"+OK\r\n");
    }

    pub fn queued(&mut self) {
        self.buf.put_slice(b"+QUEUED\r\n");
    }

    /// A status reply (`+text`).
    pub fn simple(&mut self, s: &str) {
        self.buf.reserve(s.len() + 3);
        self.buf.put_u8(b'+');
        self.buf.put_slice(s.as_bytes());
        self.buf.put_slice(b"\r\n");
    }

    /// An error reply. `msg` carries its code ("ERR ...", "WRONGTYPE ...");
    /// newlines are replaced by spaces so a message cannot break the protocol.
    pub fn error(&mut self, msg: &str) {
        self.buf.reserve(msg.len() + 3);
        self.buf.put_u8(b'-');
        for &b in msg.as_bytes() {
            self.buf
                .put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
        }
        self.buf.put_slice(b"\r\n");
    }

    #[inline]
    pub fn int(&mut self, n: i64) {
        self.line(b':', n);
    }

    #[inline]
    pub fn bulk(&mut self, data: &[u8]) {
        self.line(b'$', data.len() as i64);
        self.buf.reserve(data.len() + 2);
        self.buf.put_slice(data);
        self.buf.put_slice(b"\r\n");
    }

    pub fn bulk_str(&mut self, s: &str) {
        self.bulk(s.as_bytes());
    }

    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// Null bulk string (RESP2 `$-1`, RESP3 `_`).
    pub fn null(&mut self) {
        if self.resp3 {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"$-1\r\n");
        }
    }

    /// Null array (RESP2 `*-1`, RESP3 `_`).
    pub fn null_array(&mut self) {
        if self.resp3 {
            self.buf.put_slice(b"_\r\n");
        } else {
            self.buf.put_slice(b"*-1\r\n");
        }
    }

    pub fn array(&mut self, n: usize) {
        self.line(b'*', n as i64);
    }

    /// A map of `n` pairs (RESP2: an array of 2n elements).
    pub fn map(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'%', n as i64);
        } else {
            self.line(b'*', 2 * n as i64);
        }
    }

    /// A set of `n` elements (RESP2: an array).
    pub fn set(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'~', n as i64);
        } else {
            self.line(b'*', n as i64);
        }
    }

    /// A push message of `n` elements (RESP2: an array).
    pub fn push(&mut self, n: usize) {
        if self.resp3 {
            self.line(b'>', n as i64);
        } else {
            self.line(b'*', n as i64);
        }
    }

    /// A double: RESP3 `,` type, RESP2 bulk string, both in Redis 7.0's "%.17g" text.
    pub fn double(&mut self, d: f64) {
        let mut text = Vec::with_capacity(24);
        crate::util::number::format_double(d, &mut text);
        if self.resp3 {
            self.buf.put_u8(b',');
            self.buf.put_slice(&text);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(&text);
        }
    }

    pub fn boolean(&mut self, v: bool) {
        if self.resp3 {
            self.buf.put_slice(if v { b"#t\r\n" } else { b"#f\r\n" });
        } else {
            self.int(v as i64);
        }
    }

    /// A verbatim string (RESP3 `=`, with a three-letter format), RESP2 bulk.
    pub fn verbatim(&mut self, format: &str, text: &[u8]) {
        if self.resp3 {
            self.line(b'=', (text.len() + 4) as i64);
            self.buf.put_slice(format.as_bytes());
            self.buf.put_u8(b':');
            self.buf.put_slice(text);
            self.buf.put_slice(b"\r\n");
        } else {
            self.bulk(text);
        }
    }

    /// Appends bytes that are already encoded (for example a reply produced by
    /// another task for this client).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.put_slice(bytes);
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    //! Our encoder checked against an independent decoder (the `redis-protocol` crate).
    use redis_protocol::resp2::decode::decode as decode2;
    use redis_protocol::resp2::types::OwnedFrame as F2;
    use redis_protocol::resp3::decode::complete::decode as decode3;
    use redis_protocol::resp3::types::OwnedFrame as F3;

    use super::Reply;

    fn sample(r: &mut Reply) {
        r.map(2);
        r.bulk(b"name");
        r.bulk(b"jcache");
        r.bulk(b"scores");
        r.set(3);
        r.double(1.5);
        r.null();
        r.boolean(true);
    }

    #[test]
    fn resp3_frames_decode_with_an_independent_parser() {
        let mut r = Reply::new(true);
        sample(&mut r);
        r.verbatim("txt", b"hello");
        r.push(1);
        r.int(-7);
        let buf = r.buf.to_vec();
        let (f, used) = decode3(&buf).unwrap().unwrap();
        match f {
            F3::Map { data, .. } => assert_eq!(data.len(), 2),
            other => panic!("expected a map, got {other:?}"),
        }
        let (v, used2) = decode3(&buf[used..]).unwrap().unwrap();
        assert!(matches!(v, F3::VerbatimString { .. }), "{v:?}");
        let (p, used3) = decode3(&buf[used + used2..]).unwrap().unwrap();
        assert!(matches!(p, F3::Push { .. }), "{p:?}");
        assert_eq!(used + used2 + used3, buf.len());
    }

    #[test]
    fn resp2_degrades_resp3_types() {
        let mut r = Reply::new(false);
        sample(&mut r);
        let buf = r.buf.to_vec();
        let (f, used) = decode2(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        match f {
            F2::Array(items) => {
                assert_eq!(items.len(), 4, "a map becomes a flat array");
                match &items[3] {
                    F2::Array(set) => {
                        assert_eq!(set[0], F2::BulkString(b"1.5".to_vec()));
                        assert_eq!(set[1], F2::Null);
                        assert_eq!(set[2], F2::Integer(1));
                    }
                    other => panic!("expected an array, got {other:?}"),
                }
            }
            other => panic!("expected an array, got {other:?}"),
        }
    }
}
