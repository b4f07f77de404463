//! Incremental request parser with Redis's exact protocol-error texts and limits.
//!
//! Requests are either RESP multibulk arrays of bulk strings (what every client
//! library sends) or inline commands (what a person types into telnet). The
//! parser keeps its progress between reads, so a huge multibulk that arrives in
//! many reads is parsed once, not re-parsed from the start on every read.
//! Arguments are zero-copy `Bytes` slices of the read buffer: anything that
//! keeps an argument beyond the command must copy it, or the whole read buffer
//! stays alive.

use bytes::{Buf, Bytes, BytesMut};

/// Redis's PROTO_INLINE_MAX_SIZE: longest inline request or multibulk header line.
pub const INLINE_MAX: usize = 64 * 1024;
/// Largest number of arguments in one request.
pub const MULTIBULK_MAX: i64 = 1024 * 1024;

/// Limits enforced while parsing; both come from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`: largest bulk string accepted.
    pub max_bulk_len: i64,
    /// Whether the client has authenticated; unauthenticated clients get the
    /// small limits Redis applies before AUTH.
    pub authenticated: bool,
}

/// A protocol error: the connection is answered with `-ERR <text>` and closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError(pub String);

#[derive(Default)]
pub struct RequestParser {
    /// Arguments still expected in the current multibulk; 0 when between requests.
    remaining: i64,
    /// Length of the bulk string being read, or -1 when its header is next.
    bulk_len: i64,
    args: Vec<Bytes>,
    /// Bytes of `args` (the request being read), for the query buffer limit.
    args_bytes: usize,
    /// A bulk of at least `BIG_ARG` bytes was reserved for since the last
    /// `take_big_arg`: the read buffer may now pin a large allocation.
    big_arg: bool,
}

/// Redis's PROTO_MBULK_BIG_ARG: a bulk this large gets a buffer of its own size.
pub const BIG_ARG: usize = 32 * 1024;

fn find_crlf_line(buf: &[u8]) -> Option<usize> {
    memchr_r(buf)
}

fn memchr_r(buf: &[u8]) -> Option<usize> {
    buf.iter().position(|&b| b == b'\r')
}

fn parse_len(line: &[u8]) -> Option<i64> {
    crate::util::number::parse_i64(line)
}

impl RequestParser {
    pub fn new() -> Self {
        RequestParser {
            remaining: 0,
            bulk_len: -1,
            args: Vec::new(),
            args_bytes: 0,
            big_arg: false,
        }
    }

    /// Bytes of the arguments already read of the request in progress.
    pub fn pending_bytes(&self) -> usize {
        self.args_bytes
    }

    /// Whether no request is in progress (the buffer holds at most part of
    /// the next request's first line).
    pub fn idle(&self) -> bool {
        self.remaining == 0
    }

    /// Whether a big bulk was read since the last call (and clears it).
    pub fn take_big_arg(&mut self) -> bool {
        std::mem::take(&mut self.big_arg)
    }

    /// Parses one request from the front of `buf`.
    ///
    /// Returns `Ok(None)` when more bytes are needed, `Ok(Some(args))` for a
    /// request (an empty vector for an empty line or `*0`, which are skipped),
    /// and an error for malformed input.
    pub fn parse(
        &mut self,
        buf: &mut BytesMut,
        limits: ParseLimits,
    ) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if self.remaining == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            if buf[0] != b'*' {
                return self.parse_inline(buf);
            }
            // Multibulk header.
            let Some(cr) = find_crlf_line(buf) else {
                if buf.len() > INLINE_MAX {
                    return Err(ProtocolError(
                        "Protocol error: too big mbulk count string".into(),
                    ));
                }
                return Ok(None);
            };
            if cr > INLINE_MAX {
                return Err(ProtocolError(
                    "Protocol error: too big mbulk count string".into(),
                ));
            }
            if cr + 1 >= buf.len() {
                return Ok(None);
            }
            let count = parse_len(&buf[1..cr]);
            let count = match count {
                Some(n) if n <= MULTIBULK_MAX => n,
                _ => {
                    return Err(ProtocolError(
                        "Protocol error: invalid multibulk length".into(),
                    ))
                }
            };
            if count > 10 && !limits.authenticated {
                return Err(ProtocolError(
                    "Protocol error: unauthenticated multibulk length".into(),
                ));
            }
            buf.advance(cr + 2);
            if count <= 0 {
                return Ok(Some(Vec::new()));
            }
            self.remaining = count;
            self.bulk_len = -1;
            self.args = Vec::with_capacity(count.min(1024) as usize);
        }
        while self.remaining > 0 {
            if self.bulk_len < 0 {
                let Some(cr) = find_crlf_line(buf) else {
                    if buf.len() > INLINE_MAX {
                        return Err(ProtocolError(
                            "Protocol error: too big bulk count string".into(),
                        ));
                    }
                    return Ok(None);
                };
                if cr > INLINE_MAX {
                    return Err(ProtocolError(
                        "Protocol error: too big bulk count string".into(),
                    ));
                }
                if cr + 1 >= buf.len() {
                    return Ok(None);
                }
                if buf[0] != b'$' {
                    let got = buf[0] as char;
                    return Err(ProtocolError(format!(
                        "Protocol error: expected '$', got '{got}'"
                    )));
                }
                let len = match parse_len(&buf[1..cr]) {
                    Some(n) if n >= 0 && n <= limits.max_bulk_len => n,
                    _ => return Err(ProtocolError("Protocol error: invalid bulk length".into())),
                };
                if len > 16384 && !limits.authenticated {
                    return Err(ProtocolError(
                        "Protocol error: unauthenticated bulk length".into(),
                    ));
                }
                buf.advance(cr + 2);
                self.bulk_len = len;
                // Reserve room for the whole bulk at once: a large value then arrives
                // into one allocation instead of being copied on every growth.
                let need = len as usize + 2;
                if buf.len() < need {
                    buf.reserve(need - buf.len());
                }
                if need >= BIG_ARG {
                    self.big_arg = true;
                }
            }
            let need = self.bulk_len as usize + 2;
            if buf.len() < need {
                return Ok(None);
            }
            let arg = buf.split_to(self.bulk_len as usize).freeze();
            buf.advance(2);
            self.args_bytes += arg.len();
            self.args.push(arg);
            self.bulk_len = -1;
            self.remaining -= 1;
        }
        self.args_bytes = 0;
        Ok(Some(std::mem::take(&mut self.args)))
    }

    fn parse_inline(&mut self, buf: &mut BytesMut) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        // Redis finds the newline with strchr, which stops at a NUL byte: an
        // inline request with a NUL before its newline never completes, and
        // ends as "too big inline request" past 64 KB.
        let nl = buf
            .iter()
            .position(|&b| b == b'\n' || b == 0)
            .filter(|&i| buf[i] == b'\n');
        let Some(nl) = nl else {
            if buf.len() > INLINE_MAX {
                return Err(ProtocolError(
                    "Protocol error: too big inline request".into(),
                ));
            }
            return Ok(None);
        };
        if nl > INLINE_MAX {
            return Err(ProtocolError(
                "Protocol error: too big inline request".into(),
            ));
        }
        let line = buf.split_to(nl + 1);
        let mut end = nl;
        if end > 0 && line[end - 1] == b'\r' {
            end -= 1;
        }
        match split_args(&line[..end]) {
            Some(args) => Ok(Some(args.into_iter().map(Bytes::from).collect())),
            None => Err(ProtocolError(
                "Protocol error: unbalanced quotes in request".into(),
            )),
        }
    }
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline request like Redis's `sdssplitargs`: whitespace separates
/// arguments, "double quotes" understand escapes, 'single quotes' do not.
/// Returns `None` for unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    // Redis splits a C string: a NUL byte ends the line. (Before this, a NUL
    // outside quotes ended an argument without being consumed, and the
    // loop pushed empty arguments forever: a 3-byte inline request ate all
    // memory. The fuzz test below found it.)
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && is_c_space(line[i]) {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && hex_val(line[i + 2]).is_some()
                    && hex_val(line[i + 3]).is_some()
                {
                    cur.push(hex_val(line[i + 2]).unwrap() * 16 + hex_val(line[i + 3]).unwrap());
                    i += 3;
                } else if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    // The closing quote must be followed by a space or the end.
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    i += 1;
                    cur.push(b'\'');
                } else if c == b'\'' {
                    if i + 1 < n && !is_c_space(line[i + 1]) {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// C's `isspace`: space, \t, \n, \v, \f, \r (Rust's `is_ascii_whitespace`
/// leaves out \v).
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ParseLimits {
        ParseLimits {
            max_bulk_len: 512 * 1024 * 1024,
            authenticated: true,
        }
    }

    fn parse_all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut p = RequestParser::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(args) = p.parse(&mut buf, limits())? {
            out.push(args);
        }
        Ok(out)
    }

    #[test]
    fn multibulk_and_inline() {
        let r = parse_all(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\nset a \"b c\"\n").unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0], vec![Bytes::from("GET"), Bytes::from("k")]);
        assert_eq!(r[1], vec![Bytes::from("PING")]);
        assert_eq!(
            r[2],
            vec![Bytes::from("set"), Bytes::from("a"), Bytes::from("b c")]
        );
    }

    #[test]
    fn byte_by_byte_is_same_as_whole() {
        let input = b"*3\r\n$3\r\nSET\r\n$5\r\nhello\r\n$10\r\n0123456789\r\n";
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = None;
        for &b in input.iter() {
            buf.extend_from_slice(&[b]);
            if let Some(args) = p.parse(&mut buf, limits()).unwrap() {
                got = Some(args);
            }
        }
        let args = got.unwrap();
        assert_eq!(args[2], Bytes::from("0123456789"));
        assert!(buf.is_empty());
    }

    #[test]
    fn protocol_errors_have_redis_texts() {
        assert_eq!(
            parse_all(b"*3000000000\r\n").unwrap_err().0,
            "Protocol error: invalid multibulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\nfoo\r\n").unwrap_err().0,
            "Protocol error: expected '$', got 'f'"
        );
        assert_eq!(
            parse_all(b"*1\r\n$-10\r\n").unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            parse_all(b"*1\r\n$2000000000\r\n").unwrap_err().0,
            "Protocol error: invalid bulk length"
        );
        assert_eq!(
            parse_all(b"set a \"b\n").unwrap_err().0,
            "Protocol error: unbalanced quotes in request"
        );
        let long = vec![b'a'; INLINE_MAX + 10];
        assert_eq!(
            parse_all(&long).unwrap_err().0,
            "Protocol error: too big inline request"
        );
    }

    #[test]
    fn empty_requests_are_skipped() {
        let r = parse_all(b"\r\n*0\r\n*-1\r\n").unwrap();
        assert!(r.iter().all(|a| a.is_empty()));
    }

    #[test]
    fn inline_quotes_and_escapes() {
        let a = split_args(b"set k \"a\\x41\\n\" 'it\\'s'").unwrap();
        assert_eq!(
            a,
            vec![
                b"set".to_vec(),
                b"k".to_vec(),
                b"aA\n".to_vec(),
                b"it's".to_vec()
            ]
        );
        assert!(split_args(b"\"a\"b").is_none());
    }

    #[test]
    fn inline_nul_ends_the_line_as_in_c() {
        // Found by fuzz_requests_in_random_chunks: a NUL outside quotes made
        // split_args push empty arguments until memory ran out.
        assert_eq!(split_args(b"\0"), Some(vec![]));
        assert_eq!(split_args(b"PING\0junk"), Some(vec![b"PING".to_vec()]));
        assert_eq!(split_args(b"\"a\0b\""), None);
        // C's isspace includes \v and \f between arguments.
        assert_eq!(
            split_args(b"\x0bset\x0ck\x0cv"),
            Some(vec![b"set\x0ck\x0cv".to_vec()])
        );
        assert_eq!(
            split_args(b"\x0bget k"),
            Some(vec![b"get".to_vec(), b"k".to_vec()])
        );
    }

    /// A random request: a multibulk of random arguments, or an inline line.
    fn random_request(rng: &mut rand::rngs::StdRng) -> (Vec<u8>, Vec<Vec<u8>>) {
        use rand::Rng;
        let n = rng.gen_range(1..6);
        let args: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = match rng.gen_range(0..10) {
                    0 => 0,
                    1 => rng.gen_range(100..600),
                    _ => rng.gen_range(1..12),
                };
                (0..len).map(|_| rng.gen()).collect()
            })
            .collect();
        if rng.gen_bool(0.2) {
            // Inline: plain words only.
            let words: Vec<Vec<u8>> = (0..n)
                .map(|_| {
                    (0..rng.gen_range(1..8))
                        .map(|_| rng.gen_range(b'a'..=b'z'))
                        .collect()
                })
                .collect();
            let mut line = words.join(&b' ');
            line.extend_from_slice(b"\r\n");
            return (line, words);
        }
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in &args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
        (out, args)
    }

    /// Feeds `input` in random chunks; returns the requests parsed before
    /// the end or the first error. Never loops: each call either consumes
    /// input, waits for more, or fails.
    fn feed_in_chunks(
        rng: &mut rand::rngs::StdRng,
        input: &[u8],
        limits: ParseLimits,
    ) -> (Vec<Vec<Bytes>>, Option<ProtocolError>) {
        use rand::Rng;
        let mut p = RequestParser::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < input.len() {
            let end = (at + rng.gen_range(1..256)).min(input.len());
            buf.extend_from_slice(&input[at..end]);
            at = end;
            loop {
                let before = buf.len();
                match p.parse(&mut buf, limits) {
                    Ok(Some(args)) => {
                        assert!(buf.len() < before, "a request consumed nothing");
                        if !args.is_empty() {
                            got.push(args);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return (got, Some(e)),
                }
            }
            assert!(p.pending_bytes() <= input.len());
        }
        (got, None)
    }

    #[test]
    fn fuzz_requests_in_random_chunks() {
        use crate::util::fuzz;
        for seed in fuzz::seeds("fuzz_requests_in_random_chunks") {
            let mut rng = fuzz::rng(seed);
            for _ in 0..300 {
                // Valid pipelines parse to exactly their arguments, however
                // the bytes are split across reads.
                let mut input = Vec::new();
                let mut want = Vec::new();
                for _ in 0..rand::Rng::gen_range(&mut rng, 1..5) {
                    let (bytes, args) = random_request(&mut rng);
                    input.extend_from_slice(&bytes);
                    want.push(args);
                }
                let (got, e) = feed_in_chunks(&mut rng, &input, limits());
                assert!(e.is_none(), "seed {seed}: {e:?} for {input:?}");
                let got: Vec<Vec<Vec<u8>>> = got
                    .iter()
                    .map(|r| r.iter().map(|a| a.to_vec()).collect())
                    .collect();
                assert_eq!(got, want, "seed {seed}");
                // Mutated ones never panic, and errors are Redis's protocol errors.
                for _ in 0..8 {
                    let bad = fuzz::mutate(&mut rng, &input);
                    for authenticated in [true, false] {
                        let small = ParseLimits {
                            max_bulk_len: 1024 * 1024,
                            authenticated,
                        };
                        let (_, e) = feed_in_chunks(&mut rng, &bad, small);
                        if let Some(e) = e {
                            assert!(e.0.starts_with("Protocol error: "), "seed {seed}: {e:?}");
                        }
                    }
                }
            }
        }
    }
}
