//! Test harness: starts the real `jcache` binary on a free loopback port and
//! hands out clients (the `redis` crate, or a raw socket for protocol tests).
#![allow(dead_code)]

pub mod cluster;
pub mod redis_cluster;
pub mod sentinel;
pub mod upstream;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    child: Child,
}

/// A free loopback port for a server a test is about to start.
///
/// It is taken below the kernel's ephemeral range (`ip_local_port_range`),
/// never from port 0: a port the kernel hands out as ephemeral can be taken,
/// between our check and the server's bind, by any outgoing connection on the
/// machine (the tests make thousands), and the server then fails to start.
/// Below the range only another test's explicit pick can collide; a
/// process's picks walk one sequence from a point drawn from its pid and
/// the clock, never repeat, and each is checked by a bind.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::{Mutex, OnceLock};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Ports this process handed out: a port picked for a server that has
    // not bound it yet must not be picked again (a test picks a metrics
    // port, then the server's cluster and client ports).
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    // One starting point per process, so that its picks walk one
    // sequence (a starting point drawn per call could land on a port
    // picked just before).
    static SEED: OnceLock<u32> = OnceLock::new();
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    let (base, span) = (10_000u32, low.saturating_sub(10_000).max(1000));
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        (std::process::id().wrapping_mul(2_654_435_761)) ^ nanos
    });
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..span {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (base + seed.wrapping_add(step.wrapping_mul(7919)) % span) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}

impl Server {
    /// Starts `jcache` with extra arguments and waits until it answers PING.
    pub fn start(extra: &[&str]) -> Server {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_jcache"))
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--log-level",
                "warn",
            ])
            // Tests call DEBUG from loopback; a test of the default passes its own.
            .args(
                (!extra.contains(&"--enable-debug-command"))
                    .then_some(["--enable-debug-command", "local"])
                    .into_iter()
                    .flatten(),
            )
            .args(extra)
            // jcache logs to stdout: a failing test shows the log
            // (nextest keeps a test's output only when it fails).
            .stdout(Stdio::inherit())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start jcache");
        let mut server = Server { port, child };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                // Up means it answers: PONG, or NOAUTH when a password is set.
                s.write_all(b"PING\r\n").unwrap();
                let mut buf = [0u8; 1];
                if s.read_exact(&mut buf).is_ok() && (buf[0] == b'+' || buf[0] == b'-') {
                    return server;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("jcache exited at start ({status}) on port {port}; its log is above");
            }
            assert!(
                Instant::now() < deadline,
                "jcache did not start on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A synchronous client from the `redis` crate.
    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// A raw socket with a read timeout, for protocol-level tests.
    /// A raw socket that has been served a PONG (retrying while the server
    /// still counts connections that just closed).
    pub fn raw_served(&self) -> Raw {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut r = self.raw();
            r.send(b"PING\r\n");
            let mut buf = [0u8; 7];
            if r.s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n" {
                return r;
            }
            assert!(Instant::now() < deadline, "never served");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn raw(&self) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status if the process has exited (without waiting).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Waits for the process to exit by itself; returns its exit code.
    pub fn wait_exit(mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Raw {
    pub s: TcpStream,
}

impl Raw {
    pub fn send(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    /// Reads until `expected` bytes arrived (or the timeout fires) and returns them.
    pub fn read_exact_len(&mut self, n: usize) -> Vec<u8> {
        let mut buf = vec![0u8; n];
        self.s.read_exact(&mut buf).unwrap();
        buf
    }

    /// Sends a request and reads a reply of exactly the length of `expected`, comparing.
    pub fn roundtrip(&mut self, req: &[u8], expected: &[u8]) {
        self.send(req);
        let got = self.read_exact_len(expected.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(req)
        );
    }

    /// Reads exactly one complete RESP2/RESP3 reply and returns its bytes as text.
    pub fn read_reply(&mut self) -> String {
        let mut out = Vec::new();
        self.read_frame(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    fn read_frame(&mut self, out: &mut Vec<u8>) {
        let start = out.len();
        let mut b = [0u8; 1];
        while !(out.len() >= start + 2 && out.ends_with(b"\r\n")) {
            self.s.read_exact(&mut b).expect("reply line");
            out.push(b[0]);
        }
        let line = out[start..].to_vec();
        let n: i64 = std::str::from_utf8(&line[1..line.len() - 2])
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        match line[0] {
            b'$' | b'=' | b'!' if n >= 0 => {
                out.extend_from_slice(&self.read_exact_len(n as usize + 2))
            }
            b'*' | b'~' | b'>' => (0..n).for_each(|_| self.read_frame(out)),
            b'%' => (0..2 * n).for_each(|_| self.read_frame(out)),
            _ => {}
        }
    }

    /// Switches to RESP3 and consumes the HELLO reply (a map whose last
    /// entry is "modules" => empty array).
    pub fn hello3(&mut self) {
        self.send(b"HELLO 3\r\n");
        let reply = self.read_reply();
        assert!(
            reply.starts_with('%') && reply.ends_with("$7\r\nmodules\r\n*0\r\n"),
            "{reply:?}"
        );
    }

    /// Reads whatever arrives until EOF or timeout.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.s.read_to_end(&mut out);
        out
    }
}

/// Polls `cond` until it holds or `within` passes.
pub fn wait_for(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

// ---- helpers the test files share ----

/// Waits until the server on `port` answers PING with +PONG (or -NOAUTH:
/// up, with a password; not -LOADING while an AOF is read back); panics
/// after `within`.
pub fn wait_pong(port: u16, within: Duration) {
    assert!(
        wait_for(within, || {
            TcpStream::connect(("127.0.0.1", port))
                .and_then(|mut s| {
                    s.set_read_timeout(Some(Duration::from_secs(1)))?;
                    s.write_all(b"PING\r\n")?;
                    let mut b = [0u8; 7];
                    s.read_exact(&mut b)?;
                    Ok(&b == b"+PONG\r\n" || &b == b"-NOAUTH")
                })
                .unwrap_or(false)
        }),
        "server did not start on {port}"
    );
}

/// Whether a client of the Redis behind `c` has been blocked in BLPOP for
/// at least `secs` seconds (CLIENT LIST's `idle=`).
pub fn blpop_blocked_for(c: &mut redis::Connection, secs: u64) -> bool {
    let clients: String = redis::cmd("CLIENT").arg("LIST").query(c).unwrap();
    clients.lines().any(|l| {
        l.contains("cmd=blpop")
            && l.split(' ')
                .find_map(|f| f.strip_prefix("idle="))
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= secs)
    })
}

/// Waits (up to 10 s) until INFO clients shows `n` blocked clients.
pub fn wait_blocked(c: &mut redis::Connection, n: usize) {
    assert!(
        wait_for(Duration::from_secs(10), || {
            let info: String = q(c, &["INFO", "clients"]);
            info_field(&info, "blocked_clients") == Some(n.to_string())
        }),
        "never {n} blocked clients"
    );
}

/// One RESP request: an array of bulk strings.
pub fn req(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A whitespace-separated command as one RESP request.
pub fn words(text: &str) -> Vec<u8> {
    let args: Vec<&[u8]> = text.split_whitespace().map(|s| s.as_bytes()).collect();
    req(&args)
}

/// Sends a whitespace-separated command on `r` and expects exactly `expected`.
pub fn check(r: &mut Raw, text: &str, expected: &str) {
    r.roundtrip(&words(text), expected.as_bytes());
}

/// `args` (name first) as a `redis` crate command.
pub fn command(args: &[&str]) -> redis::Cmd {
    let mut command = redis::cmd(args[0]);
    for a in &args[1..] {
        command.arg(*a);
    }
    command
}

/// Runs a command through the `redis` crate; panics, naming it, if it fails.
pub fn q<T: redis::FromRedisValue>(c: &mut redis::Connection, args: &[&str]) -> T {
    command(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?} failed: {e}"))
}

/// The error line of a command expected to fail, code included
/// ("ERR syntax error").
pub fn err(c: &mut redis::Connection, args: &[&str]) -> String {
    match command(args).query::<redis::Value>(c) {
        Err(e) => format!("{} {}", e.code().unwrap_or("?"), e.detail().unwrap_or("")),
        Ok(v) => panic!("{args:?} unexpectedly succeeded: {v:?}"),
    }
}

/// Asserts that a command fails with an error line containing `needle`.
pub fn assert_err(c: &mut redis::Connection, args: &[&str], needle: &str) {
    let e = err(c, args);
    assert!(
        e.contains(needle),
        "{args:?}: {e:?} does not contain {needle:?}"
    );
}

/// The value of `name` in an INFO text (its `name:value` line), trimmed.
pub fn info_field(info: &str, name: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

/// An error reply as raw RESP: `-<msg>\r\n`.
pub fn err_line(msg: &str) -> String {
    format!("-{msg}\r\n")
}

/// Redis's error replies, as raw RESP, for byte-for-byte checks.
pub const WRONGTYPE: &str =
    "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
pub const SYNTAX: &str = "-ERR syntax error\r\n";
pub const NOT_INT: &str = "-ERR value is not an integer or out of range\r\n";

/// A CA, a server certificate for 127.0.0.1 and a client certificate, made
/// with openssl in a fresh directory: (dir, ca, server cert, server key,
/// client cert, client key).
pub fn make_certificates() -> (std::path::PathBuf, [String; 5]) {
    let dir =
        std::env::temp_dir().join(format!("jcache-tls-{}-{}", std::process::id(), free_port()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let p = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=jcache test CA",
        "-keyout",
        &p("ca.key"),
        "-out",
        &p("ca.crt"),
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    for (name, cn) in [("server", "127.0.0.1"), ("client", "jcache")] {
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={cn}"),
            "-keyout",
            &p(&format!("{name}.key")),
            "-out",
            &p(&format!("{name}.csr")),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-in",
            &p(&format!("{name}.csr")),
            "-CA",
            &p("ca.crt"),
            "-CAkey",
            &p("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &p("san.ext"),
            "-out",
            &p(&format!("{name}.crt")),
        ]);
    }
    let files = [
        "ca.crt",
        "server.crt",
        "server.key",
        "client.crt",
        "client.key",
    ]
    .map(p);
    (dir, files)
}
