//! A hostile or careless client: protected mode, the DEBUG gate, passwords,
//! CLIENT KILL's filters, per-client buffers and the query buffer limit.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{err, info_field, q, req, wait_for, Raw, Server};

/// A raw connection to `server` whose source address is 127.0.0.2: a
/// loopback address that Redis (and jcache) do not count as local.
fn raw_from_127_0_0_2(server: &Server) -> Raw {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s: TcpStream = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let addr = format!("127.0.0.1:{}", server.port).parse().unwrap();
        sock.connect(addr).await.unwrap().into_std().unwrap()
    });
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    Raw { s }
}

const DENIED_START: &str = "-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user.";

#[test]
fn protected_mode_serves_only_loopback_without_a_password() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "protected-mode"]),
        ["protected-mode", "yes"]
    );
    // 127.0.0.2 is not local for Redis 7.0: denied, then closed.
    let mut far = raw_from_127_0_0_2(&s);
    far.send(b"PING\r\n");
    let got = String::from_utf8(far.read_to_close()).unwrap();
    assert!(got.starts_with(DENIED_START), "{got}");
    let stats: String = q(&mut c, &["INFO", "stats"]);
    assert!(
        stats.lines().any(|l| l.trim() == "rejected_connections:1"),
        "{stats}"
    );
    assert!(
        got.ends_with("'--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n"),
        "{got}"
    );
    // 127.0.0.1 is served.
    s.raw().roundtrip(b"PING\r\n", b"+PONG\r\n");
    // With a password, everyone is served (and must authenticate).
    q::<String>(&mut c, &["CONFIG", "SET", "requirepass", "pw"]);
    let mut far = raw_from_127_0_0_2(&s);
    far.roundtrip(b"PING\r\n", b"-NOAUTH Authentication required.\r\n");
    far.roundtrip(b"AUTH pw\r\nPING\r\n", b"+OK\r\n+PONG\r\n");
    // Without a password again, and protected mode off: served.
    q::<String>(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    q::<String>(&mut c, &["CONFIG", "SET", "protected-mode", "no"]);
    raw_from_127_0_0_2(&s).roundtrip(b"PING\r\n", b"+PONG\r\n");

    // --protected-mode no at startup.
    let open = Server::start(&["--protected-mode", "no"]);
    raw_from_127_0_0_2(&open).roundtrip(b"PING\r\n", b"+PONG\r\n");
}

const DEBUG_DENIED: &str = "ERR DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

#[test]
fn debug_is_refused_unless_enabled() {
    // The default: no. A client could otherwise freeze every other client
    // with MULTI / DEBUG SLEEP / EXEC (every shard locked while it sleeps).
    let s = Server::start(&["--enable-debug-command", "no"]);
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "enable-debug-command"]),
        ["enable-debug-command", "no"]
    );
    assert_eq!(err(&mut c, &["DEBUG", "SLEEP", "5"]), DEBUG_DENIED);
    // Refused before its subcommand is looked at, as in Redis.
    assert_eq!(err(&mut c, &["DEBUG", "nosuch"]), DEBUG_DENIED);
    // Arity comes first.
    assert_eq!(
        err(&mut c, &["DEBUG"]),
        "ERR wrong number of arguments for 'debug' command"
    );
    let mut r = s.raw();
    r.send(&req(&[b"MULTI"]));
    r.send(&req(&[b"DEBUG", b"SLEEP", b"5"]));
    r.send(&req(&[b"EXEC"]));
    assert_eq!(r.read_reply(), "+OK\r\n");
    assert_eq!(r.read_reply(), format!("-{DEBUG_DENIED}\r\n"));
    assert_eq!(
        r.read_reply(),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "enable-debug-command", "yes"]),
        "ERR CONFIG SET failed (possibly related to argument 'enable-debug-command') - can't set immutable config"
    );

    // local: 127.0.0.1 only.
    let s = Server::start(&["--enable-debug-command", "local", "--protected-mode", "no"]);
    let mut c = s.client();
    assert_eq!(q::<String>(&mut c, &["DEBUG", "SLEEP", "0"]), "OK");
    let mut far = raw_from_127_0_0_2(&s);
    far.send(&req(&[b"DEBUG", b"SLEEP", b"0"]));
    assert_eq!(far.read_reply(), format!("-{DEBUG_DENIED}\r\n"));

    // yes: everyone.
    let s = Server::start(&["--enable-debug-command", "yes", "--protected-mode", "no"]);
    let mut far = raw_from_127_0_0_2(&s);
    far.roundtrip(&req(&[b"DEBUG", b"SLEEP", b"0"]), b"+OK\r\n");
}

#[test]
fn changing_requirepass_never_accepts_a_wrong_password() {
    // One client sets and clears the password while others try a wrong
    // one: there must be no instant in which a password is set but any
    // password is accepted. The old code stored the "password set" flag
    // before the password itself, so right after `CONFIG SET requirepass
    // p1` from no password, AUTH compared against the empty old value and
    // answered +OK to anything.
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let port = s.port;
    let flipper = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        for i in 0..3000 {
            let p = if i % 2 == 0 { "p1" } else { "" };
            q::<String>(&mut c, &["CONFIG", "SET", "requirepass", p]);
        }
    });
    let mut tries = 0;
    let mut wrongpass = 0;
    while !flipper.is_finished() && tries < 20_000 {
        tries += 1;
        let mut r = s.raw();
        r.send(b"AUTH wrong\r\n");
        let got = r.read_reply();
        if got.starts_with("-WRONGPASS") {
            wrongpass += 1;
        } else {
            assert!(
                got.starts_with("-ERR AUTH <password> called without any password configured"),
                "after {tries} tries: {got}"
            );
        }
    }
    flipper.join().unwrap();
    // Both states were seen, so AUTH ran across the transitions.
    assert!(wrongpass > 0 && wrongpass < tries, "{wrongpass} of {tries}");
}

/// CLIENT LIST's `id=` of the connection `r`.
fn client_id(r: &mut Raw) -> u64 {
    r.send(&req(&[b"CLIENT", b"ID"]));
    let line = r.read_reply();
    line.trim_start_matches(':').trim().parse().unwrap()
}

#[test]
fn client_kill_honours_every_filter() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    // A subscriber, a client blocked in BLPOP, and an idle normal client.
    let mut sub = s.raw();
    let sub_id = client_id(&mut sub);
    sub.send(&req(&[b"SUBSCRIBE", b"ch"]));
    sub.read_reply();
    let mut blocked = s.raw();
    let blocked_id = client_id(&mut blocked);
    blocked.send(&req(&[b"BLPOP", b"nokey", b"0"]));
    let mut idle = s.raw();
    let idle_id = client_id(&mut idle);
    assert!(wait_for(Duration::from_secs(10), || {
        q::<String>(&mut admin, &["CLIENT", "LIST"]).contains("flags=b ")
    }));

    // Errors, as Redis 7.0 words them; nothing is killed by a bad call.
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "USER", "nosuch"]),
        "ERR No such user 'nosuch'"
    );
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "TYPE", "bogus"]),
        "ERR Unknown client type 'bogus'"
    );
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "ID", "0"]),
        "ERR client-id should be greater than 0"
    );
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "ID", "1", "SKIPME"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "MAXAGE", "1"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut admin, &["CLIENT", "KILL", "SKIPME", "maybe"]),
        "ERR syntax error"
    );

    // CLIENT LIST TYPE sees the same types.
    let pubsub_list: String = q(&mut admin, &["CLIENT", "LIST", "TYPE", "pubsub"]);
    assert_eq!(pubsub_list.lines().count(), 1, "{pubsub_list}");
    assert!(pubsub_list.contains(&format!("id={sub_id} ")));
    let normal_list: String = q(&mut admin, &["CLIENT", "LIST", "TYPE", "normal"]);
    assert_eq!(normal_list.lines().count(), 3, "{normal_list}");
    let masters: String = q(&mut admin, &["CLIENT", "LIST", "TYPE", "master"]);
    assert_eq!(masters, "");

    // TYPE pubsub kills the subscriber only (it used to kill everyone,
    // the blocked BLPOP client too).
    assert_eq!(
        q::<i64>(&mut admin, &["CLIENT", "KILL", "TYPE", "pubsub"]),
        1
    );
    assert!(sub.read_to_close().is_empty());
    assert_eq!(
        q::<i64>(&mut admin, &["CLIENT", "KILL", "TYPE", "master"]),
        0
    );
    // USER default matches all, with the other filters still applied.
    assert_eq!(
        q::<i64>(
            &mut admin,
            &[
                "CLIENT",
                "KILL",
                "USER",
                "default",
                "ID",
                &blocked_id.to_string()
            ]
        ),
        1
    );
    assert!(blocked.read_to_close().is_empty());
    // The idle client survived all of it.
    idle.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let my_addr = {
        let info: String = q(&mut admin, &["CLIENT", "INFO"]);
        info.split(' ')
            .find_map(|f| f.strip_prefix("addr="))
            .unwrap()
            .to_string()
    };
    // ADDR of an unknown address kills nothing; SKIPME yes protects the caller.
    assert_eq!(
        q::<i64>(&mut admin, &["CLIENT", "KILL", "ADDR", "1.2.3.4:5"]),
        0
    );
    assert_eq!(
        q::<i64>(&mut admin, &["CLIENT", "KILL", "ADDR", &my_addr]),
        0
    );
    assert_eq!(
        q::<i64>(
            &mut admin,
            &[
                "CLIENT",
                "KILL",
                "TYPE",
                "normal",
                "ID",
                &idle_id.to_string()
            ]
        ),
        1
    );
    assert!(idle.read_to_close().is_empty());
    assert_eq!(q::<String>(&mut admin, &["PING"]), "PONG");
}

/// Reads until the server closes the connection (true) or `within` passes
/// with the connection still open (false).
fn closed_within(r: &mut Raw, within: Duration) -> bool {
    r.s.set_read_timeout(Some(within)).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Sends `bytes`, ignoring a write error (the server may close first).
fn send_all(r: &mut Raw, bytes: &[u8]) {
    let _ = r.s.write_all(bytes);
}

#[test]
fn query_buffer_limit_holds_in_every_state() {
    let s = Server::start(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "client-query-buffer-limit"]),
        ["client-query-buffer-limit", "1048576"]
    );
    assert_eq!(
        err(&mut c, &["CONFIG", "SET", "client-query-buffer-limit", "1000"]),
        "ERR CONFIG SET failed (possibly related to argument 'client-query-buffer-limit') - argument must be between 1048576 and 9223372036854775807 inclusive"
    );
    let big = vec![b'x'; 1536 * 1024];

    // Reading: one bulk announced as 3 MB (within proto-max-bulk-len), of
    // which 1.5 MB arrives.
    let mut r = s.raw();
    let mut head = req(&[b"SET", b"k"]);
    head[1] = b'3';
    head.extend_from_slice(b"$3000000\r\n");
    send_all(&mut r, &head);
    send_all(&mut r, &big);
    assert!(closed_within(&mut r, Duration::from_secs(30)), "reading");

    // Blocked in BLPOP: pipelined input waits in the buffer, up to the limit.
    let mut r = s.raw();
    r.send(&req(&[b"BLPOP", b"nokey", b"0"]));
    assert!(wait_for(Duration::from_secs(10), || {
        q::<String>(&mut c, &["CLIENT", "LIST"]).contains("flags=b ")
    }));
    let pings = b"PING\r\n".repeat(big.len() / 6);
    send_all(&mut r, &pings);
    assert!(closed_within(&mut r, Duration::from_secs(30)), "blocked");

    // Inside MULTI: the queued commands count.
    let mut r = s.raw();
    let value = vec![b'v'; 200 * 1024];
    let mut pipeline = req(&[b"MULTI"]);
    for _ in 0..8 {
        pipeline.extend_from_slice(&req(&[b"SET", b"queued", &value]));
    }
    send_all(&mut r, &pipeline);
    assert!(closed_within(&mut r, Duration::from_secs(30)), "multi");

    // Many small commands count for what they hold, not just their bytes:
    // 20,000 queued PINGs are 80 KB of arguments but hold about 1.8 MB.
    let mut r = s.raw();
    let mut pipeline = b"MULTI\r\n".to_vec();
    pipeline.extend_from_slice(&b"PING\r\n".repeat(20_000));
    send_all(&mut r, &pipeline);
    assert!(
        closed_within(&mut r, Duration::from_secs(30)),
        "small commands"
    );
    // A transaction already doomed to EXECABORT queues nothing more, as in
    // Redis: the same PINGs after an error are answered QUEUED and held by
    // nobody.
    let mut r = s.raw();
    let mut pipeline = b"MULTI\r\nNOSUCH\r\n".to_vec();
    pipeline.extend_from_slice(&b"PING\r\n".repeat(20_000));
    pipeline.extend_from_slice(b"EXEC\r\n");
    r.send(&pipeline);
    assert_eq!(r.read_reply(), "+OK\r\n");
    assert!(r.read_reply().starts_with("-ERR unknown command 'NOSUCH'"));
    for _ in 0..20_000 {
        assert_eq!(r.read_reply(), "+QUEUED\r\n");
    }
    assert_eq!(
        r.read_reply(),
        "-EXECABORT Transaction discarded because of previous errors.\r\n"
    );

    // Nothing ran, and everyone else is served.
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k", "queued"]), 0);
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    // Below the limit, the same shapes work.
    let mut r = s.raw();
    let ok_value = vec![b'v'; 100 * 1024];
    let mut pipeline = req(&[b"MULTI"]);
    for _ in 0..4 {
        pipeline.extend_from_slice(&req(&[b"SET", b"queued", &ok_value]));
    }
    pipeline.extend_from_slice(&req(&[b"EXEC"]));
    r.send(&pipeline);
    assert_eq!(r.read_reply(), "+OK\r\n");
    for _ in 0..4 {
        assert_eq!(r.read_reply(), "+QUEUED\r\n");
    }
    assert!(r.read_reply().starts_with("*4\r\n"));
}

/// The jcache process's resident memory, from /proc.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

fn client_field(line: &str, name: &str) -> u64 {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{name}=")))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn clients_give_large_buffers_back() {
    const MB: usize = 1024 * 1024;
    let s = Server::start(&[]);
    let mut c = s.client();
    let value = vec![b'v'; 64 * MB];
    let _: () = redis::cmd("SET")
        .arg("big")
        .arg(&value[..])
        .query(&mut c)
        .unwrap();
    drop(value);
    // Eight clients read the value once each and stay connected, idle.
    let mut readers: Vec<redis::Connection> = (0..8).map(|_| s.client()).collect();
    for r in readers.iter_mut() {
        let v: Vec<u8> = redis::cmd("GET").arg("big").query(r).unwrap();
        assert_eq!(v.len(), 64 * MB);
    }
    // Reply and query buffers are back to their initial sizes (each
    // connection stores its sizes once its write is done: poll for it).
    let mut list = String::new();
    let small = wait_for(Duration::from_secs(10), || {
        list = q(&mut c, &["CLIENT", "LIST"]);
        list.lines().count() == 9
            && list.lines().all(|line| {
                client_field(line, "tot-mem") < 64 * 1024
                    && client_field(line, "rbs") < 256 * 1024
                    && client_field(line, "qbuf-free") < 256 * 1024
            })
    });
    assert!(small, "{list}");
    let info: String = q(&mut c, &["INFO", "memory"]);
    let clients_mem: u64 = info_field(&info, "mem_clients_normal")
        .unwrap()
        .parse()
        .unwrap();
    assert!(clients_mem < 9 * 64 * 1024, "{clients_mem}");
    // And the process gives the memory back: the 64 MB value stays, the
    // 8 x 64 MB of reply buffers go (jemalloc purges freed pages within
    // about a second; they used to stay for the life of the connections).
    let used: u64 = {
        let info: String = q(&mut c, &["INFO", "memory"]);
        info_field(&info, "used_memory").unwrap().parse().unwrap()
    };
    let mut last = 0;
    assert!(
        wait_for(Duration::from_secs(30), || {
            last = rss_bytes(s.pid());
            last < used + 128 * MB as u64
        }),
        "RSS {last} with {used} bytes of data"
    );
    drop(readers);
}

#[test]
fn inline_request_with_a_nul_byte_behaves_as_in_redis() {
    // "\0\r\n" used to make the inline splitter push empty arguments
    // until the process was OOM-killed. Redis looks for the newline with
    // strchr, which stops at the NUL: the request never completes, and the
    // connection ends as "too big inline request" past 64 KB (redis-server
    // 7.0.15 does exactly this).
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"\0\r\nPING\r\n");
    r.send(&[b'a'; 70_000]);
    let got = r.read_to_close();
    assert_eq!(
        String::from_utf8_lossy(&got),
        "-ERR Protocol error: too big inline request\r\n"
    );
    // C's isspace (\v included) separates inline arguments.
    s.raw_served()
        .roundtrip(b"\x0bECHO hi\r\n", b"$2\r\nhi\r\n");
}
