//! Generic keyspace commands against the real binary: DEL/UNLINK/EXISTS/TYPE,
//! the EXPIRE and TTL families, PERSIST, KEYS, SCAN, RANDOMKEY, RENAME(NX),
//! COPY, TOUCH, OBJECT, MOVE and the commands left out on purpose; expiry
//! visibility (lazy and active) and SCAN's guarantee under concurrent writes.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{wait_for, Raw, Server};

/// Sends one command as a RESP array and returns its complete raw reply.
fn cmd(r: &mut Raw, args: &[&str]) -> String {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    r.send(req.as_bytes());
    r.read_reply()
}

/// Integer reply value.
fn int(r: &mut Raw, args: &[&str]) -> i64 {
    let rep = cmd(r, args);
    assert!(rep.starts_with(':'), "{args:?} -> {rep:?}");
    rep[1..rep.len() - 2].parse().unwrap()
}

fn ok(r: &mut Raw, args: &[&str]) {
    assert_eq!(cmd(r, args), "+OK\r\n", "{args:?}");
}

fn err(r: &mut Raw, args: &[&str], expected: &str) {
    assert_eq!(cmd(r, args), format!("-{expected}\r\n"), "{args:?}");
}

/// Server time in ms (TIME).
fn server_ms(c: &mut redis::Connection) -> u64 {
    let (s, us): (u64, u64) = redis::cmd("TIME").query(c).unwrap();
    s * 1000 + us / 1000
}

fn scan_all(c: &mut redis::Connection, extra: &[&str]) -> Vec<String> {
    let mut cursor = "0".to_string();
    let mut keys = Vec::new();
    let mut calls = 0;
    loop {
        let (next, batch): (String, Vec<String>) =
            redis::cmd("SCAN").arg(&cursor).arg(extra).query(c).unwrap();
        keys.extend(batch);
        calls += 1;
        assert!(calls < 100_000, "SCAN does not terminate");
        if next == "0" {
            return keys;
        }
        cursor = next;
    }
}

#[test]
fn del_unlink_exists_type_touch() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    ok(&mut r, &["SET", "a", "1"]);
    ok(&mut r, &["SET", "b", "2"]);
    assert_eq!(int(&mut r, &["EXISTS", "a", "b", "a", "nokey"]), 3);
    assert_eq!(int(&mut r, &["TOUCH", "a", "b", "nokey"]), 2);
    assert_eq!(cmd(&mut r, &["TYPE", "a"]), "+string\r\n");
    assert_eq!(cmd(&mut r, &["TYPE", "nokey"]), "+none\r\n");
    int(&mut r, &["RPUSH", "l", "x"]);
    assert_eq!(cmd(&mut r, &["TYPE", "l"]), "+list\r\n");
    assert_eq!(int(&mut r, &["DEL", "a", "a", "nokey"]), 1);
    assert_eq!(int(&mut r, &["UNLINK", "b", "l"]), 2);
    assert_eq!(int(&mut r, &["EXISTS", "a", "b", "l"]), 0);
    err(
        &mut r,
        &["DEL"],
        "ERR wrong number of arguments for 'del' command",
    );
}

#[test]
fn expire_family_options_and_errors() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    ok(&mut r, &["SET", "foo", "bar"]);
    // Options are checked before the number.
    err(
        &mut r,
        &["EXPIRE", "foo", "abc", "NX", "XX"],
        "ERR NX and XX, GT or LT options at the same time are not compatible",
    );
    for opts in [["NX", "GT"], ["NX", "LT"], ["gt", "nx"]] {
        let mut a = vec!["EXPIRE", "foo", "10"];
        a.extend(opts);
        err(
            &mut r,
            &a,
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
    }
    err(
        &mut r,
        &["PEXPIRE", "foo", "10", "GT", "LT"],
        "ERR GT and LT options at the same time are not compatible",
    );
    err(
        &mut r,
        &["EXPIRE", "foo", "10", "XX", "AB"],
        "ERR Unsupported option AB",
    );
    err(
        &mut r,
        &["EXPIRE", "foo", ""],
        "ERR value is not an integer or out of range",
    );
    for n in [
        "9223370399119966",
        "9223372036854776",
        "10000000000000000",
        "-9223372036854776",
    ] {
        err(
            &mut r,
            &["EXPIRE", "foo", n],
            "ERR invalid expire time in 'expire' command",
        );
    }
    err(
        &mut r,
        &["PEXPIRE", "foo", "9223372036854770000"],
        "ERR invalid expire time in 'pexpire' command",
    );
    err(
        &mut r,
        &["EXPIREAT", "foo", "9223372036854776"],
        "ERR invalid expire time in 'expireat' command",
    );
    assert_eq!(int(&mut r, &["TTL", "foo"]), -1);

    // NX / XX / GT / LT semantics.
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "100", "XX"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "100", "GT"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "100", "NX"]), 1);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "200", "NX"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "200", "LT"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "200", "GT"]), 1);
    let ttl = int(&mut r, &["TTL", "foo"]);
    assert!((199..=200).contains(&ttl), "{ttl}");
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "50", "LT", "XX"]), 1);
    let pttl = int(&mut r, &["PTTL", "foo"]);
    assert!((49_000..=50_000).contains(&pttl), "{pttl}");
    assert_eq!(int(&mut r, &["PERSIST", "foo"]), 1);
    assert_eq!(int(&mut r, &["PERSIST", "foo"]), 0);
    assert_eq!(int(&mut r, &["PERSIST", "nokey"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "100", "LT"]), 1);
    for opt in ["NX", "XX", "GT", "LT"] {
        assert_eq!(int(&mut r, &["EXPIRE", "none", "100", opt]), 0);
    }

    // A time in the past deletes the key.
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "-10", "LT"]), 1);
    assert_eq!(int(&mut r, &["EXISTS", "foo"]), 0);
    ok(&mut r, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut r, &["EXPIRE", "foo", "-9223372036854775"]), 1);
    assert_eq!(int(&mut r, &["TTL", "foo"]), -2);
    ok(&mut r, &["SET", "foo", "bar"]);
    assert_eq!(
        int(&mut r, &["PEXPIREAT", "foo", "-9223372036854770000"]),
        1
    );
    assert_eq!(int(&mut r, &["TTL", "foo"]), -2);
    ok(&mut r, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut r, &["EXPIREAT", "foo", "0"]), 1);
    assert_eq!(int(&mut r, &["EXISTS", "foo"]), 0);

    // Far-future absolute times work.
    ok(&mut r, &["SET", "foo", "bar"]);
    assert_eq!(int(&mut r, &["PEXPIREAT", "foo", "9223372036854770000"]), 1);
    assert_eq!(int(&mut r, &["PEXPIRETIME", "foo"]), 9223372036854770000);
    assert!(int(&mut r, &["TTL", "foo"]) > 9_000_000_000_000_000);
}

#[test]
fn ttl_family_values() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(int(&mut r, &[c, "nokey"]), -2);
    }
    ok(&mut r, &["SET", "x", "v"]);
    for c in ["TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME"] {
        assert_eq!(int(&mut r, &[c, "x"]), -1);
    }
    let at_ms: i64 = 4_102_444_800_123; // 2100-01-01 plus 123 ms
    assert_eq!(int(&mut r, &["PEXPIREAT", "x", &at_ms.to_string()]), 1);
    assert_eq!(int(&mut r, &["PEXPIRETIME", "x"]), at_ms);
    assert_eq!(int(&mut r, &["EXPIRETIME", "x"]), 4_102_444_800);
    assert_eq!(int(&mut r, &["EXPIREAT", "x", "4102444801"]), 1);
    assert_eq!(int(&mut r, &["PEXPIRETIME", "x"]), 4_102_444_801_000);
    // Seconds are rounded to nearest.
    assert_eq!(int(&mut r, &["PEXPIRE", "x", "10600"]), 1);
    assert_eq!(int(&mut r, &["TTL", "x"]), 11);
    assert_eq!(int(&mut r, &["PEXPIRE", "x", "10400"]), 1);
    assert_eq!(int(&mut r, &["TTL", "x"]), 10);
    // Writes that replace the value keep or clear the TTL as their own rules say;
    // RENAME moves it, and does not inherit the target's.
    assert_eq!(int(&mut r, &["EXPIRE", "x", "100"]), 1);
    ok(&mut r, &["RENAME", "x", "y"]);
    let t = int(&mut r, &["TTL", "y"]);
    assert!((99..=100).contains(&t));
    ok(&mut r, &["SET", "z", "1"]);
    ok(&mut r, &["RENAME", "z", "y"]);
    assert_eq!(int(&mut r, &["TTL", "y"]), -1);
}

#[test]
fn expired_keys_are_invisible_everywhere() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut c = s.client();
    // Lazy expiry only, so every command must hide the key by itself.
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    ok(&mut r, &["SET", "gone", "v"]);
    int(&mut r, &["SADD", "gone-set", "m"]);
    int(&mut r, &["RPUSH", "gone-list", "a"]);
    let at = server_ms(&mut c) + 150;
    for k in ["gone", "gone-set", "gone-list"] {
        assert_eq!(int(&mut r, &["PEXPIREAT", k, &at.to_string()]), 1);
    }
    ok(&mut r, &["SET", "stay", "v"]);
    assert!(wait_for(Duration::from_secs(10), || server_ms(&mut c) > at + 5));
    // Not deleted yet: DBSIZE still counts them (like Redis).
    assert_eq!(int(&mut r, &["DBSIZE"]), 4);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
    assert_eq!(keys, vec!["stay".to_string()]);
    assert_eq!(scan_all(&mut c, &[]), vec!["stay".to_string()]);
    for _ in 0..50 {
        assert_eq!(cmd(&mut r, &["RANDOMKEY"]), "$4\r\nstay\r\n");
    }
    assert_eq!(cmd(&mut r, &["GET", "gone"]), "$-1\r\n");
    assert_eq!(int(&mut r, &["EXISTS", "gone", "gone-set", "gone-list"]), 0);
    assert_eq!(cmd(&mut r, &["TYPE", "gone-set"]), "+none\r\n");
    assert_eq!(int(&mut r, &["TTL", "gone-list"]), -2);
    assert_eq!(int(&mut r, &["PTTL", "gone"]), -2);
    assert_eq!(cmd(&mut r, &["OBJECT", "ENCODING", "gone"]), "$-1\r\n");
    err(&mut r, &["RENAME", "gone", "x"], "ERR no such key");
    assert_eq!(int(&mut r, &["COPY", "gone", "x"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "gone", "100"]), 0);
    assert_eq!(int(&mut r, &["PERSIST", "gone"]), 0);
    assert_eq!(int(&mut r, &["DEL", "gone"]), 0);
    // Every expired key was deleted by the accesses above.
    assert_eq!(int(&mut r, &["DBSIZE"]), 1);
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn lazy_expiry_then_access_deletes() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut c = s.client();
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for k in ["k1", "k2", "k3"] {
        ok(&mut r, &["SET", k, "v"]);
        assert_eq!(int(&mut r, &["PEXPIRE", k, "100"]), 1);
    }
    let at = server_ms(&mut c) + 100;
    assert!(wait_for(Duration::from_secs(10), || server_ms(&mut c) > at + 5));
    assert_eq!(int(&mut r, &["DBSIZE"]), 3);
    // One SCAN pass deletes what it meets.
    assert!(scan_all(&mut c, &[]).is_empty());
    assert_eq!(int(&mut r, &["DBSIZE"]), 0);
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    // The sweep is off while the keys are set and counted: under load the
    // first keys could expire before DBSIZE runs.
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    for i in 0..200 {
        let k = format!("vol:{i}");
        ok(&mut r, &["SET", &k, "v", "PX", "100"]);
    }
    ok(&mut r, &["SET", "keep", "v"]);
    assert_eq!(int(&mut r, &["DBSIZE"]), 201);
    ok(&mut r, &["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    assert!(
        wait_for(Duration::from_secs(10), || int(&mut r, &["DBSIZE"]) == 1),
        "active expiry did not remove the keys"
    );
    assert_eq!(cmd(&mut r, &["KEYS", "*"]), "*1\r\n$4\r\nkeep\r\n");
}

#[test]
fn keys_and_scan_options() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut c = s.client();
    for k in ["key_x", "key_y", "key_z", "foo_a", "foo_b", "foo_c"] {
        ok(&mut r, &["SET", k, "hello"]);
    }
    int(&mut r, &["RPUSH", "foo_list", "a"]);
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("foo*").query(&mut c).unwrap();
    keys.sort();
    assert_eq!(keys, ["foo_a", "foo_b", "foo_c", "foo_list"]);
    let keys: Vec<String> = redis::cmd("KEYS").arg("key_[xy]").query(&mut c).unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        cmd(&mut r, &["KEYS", "a*a*a*a*a*a*a*a*a*a*a*a*b"]),
        "*0\r\n"
    );

    let mut all = scan_all(&mut c, &[]);
    all.sort();
    assert_eq!(all.len(), 7);
    let mut m = scan_all(&mut c, &["MATCH", "foo_?"]);
    m.sort();
    assert_eq!(m, ["foo_a", "foo_b", "foo_c"]);
    assert_eq!(scan_all(&mut c, &["TYPE", "LIST"]), ["foo_list"]);
    assert_eq!(scan_all(&mut c, &["TYPE", "hash"]).len(), 0);
    assert_eq!(scan_all(&mut c, &["TYPE", "nosuchtype"]).len(), 0);
    assert_eq!(
        scan_all(&mut c, &["type", "string", "match", "key*", "count", "1"]).len(),
        3
    );
    // A small keyspace comes back in one call.
    let (next, batch): (String, Vec<String>) = redis::cmd("SCAN")
        .arg(0)
        .arg("COUNT")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!((next.as_str(), batch.len()), ("0", 7));

    err(&mut r, &["SCAN", "abc"], "ERR invalid cursor");
    err(&mut r, &["SCAN", " 1"], "ERR invalid cursor");
    err(&mut r, &["SCAN", "99999999999"], "ERR invalid cursor");
    err(&mut r, &["SCAN", "0", "COUNT", "0"], "ERR syntax error");
    err(
        &mut r,
        &["SCAN", "0", "COUNT", "x"],
        "ERR value is not an integer or out of range",
    );
    err(&mut r, &["SCAN", "0", "MATCH"], "ERR syntax error");
    err(&mut r, &["SCAN", "0", "foo", "bar"], "ERR syntax error");
    // An empty cursor is 0, like Redis's strtoul.
    assert!(cmd(&mut r, &["SCAN", "", "COUNT", "100"]).starts_with("*2\r\n$1\r\n0\r\n*7\r\n"));
}

#[test]
fn scan_large_keyspace_small_count() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..5000 {
        p.cmd("SET").arg(format!("key:{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut c).unwrap();
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut calls = 0;
    let mut sizes = 0usize;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(5)
            .query(&mut c)
            .unwrap();
        sizes += batch.len();
        for k in batch {
            assert!(seen.insert(k), "duplicate key");
        }
        calls += 1;
        if next == 0 {
            break;
        }
        cursor = next;
    }
    assert_eq!(seen.len(), 5000);
    assert_eq!(sizes, 5000);
    // About COUNT keys per call: neither one call nor one key per call.
    assert!(calls > 300 && calls < 5000, "{calls} calls");
}

/// Keys present for the whole scan must all be returned while other clients
/// add and delete keys (which also grows, shrinks and reorders the shards).
#[test]
fn scan_never_misses_stable_keys_under_writes() {
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let mut c = s.client();
    let mut p = redis::pipe();
    for i in 0..3000 {
        p.cmd("SET").arg(format!("stable:{i}")).arg(i).ignore();
    }
    for i in 0..3000 {
        p.cmd("SET").arg(format!("churn:{i}")).arg(i).ignore();
    }
    p.query::<()>(&mut c).unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let url = s.url();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut n = 0u64;
                // Bounded: at most 400 rounds of 50 writes.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 400 {
                    let mut p = redis::pipe();
                    for j in 0..25 {
                        let i = (n * 25 + j) % 3000;
                        p.cmd("DEL").arg(format!("churn:{i}")).ignore();
                        p.cmd("SET").arg(format!("new:{w}:{n}:{j}")).arg(1).ignore();
                    }
                    p.query::<()>(&mut c).unwrap();
                    n += 1;
                }
            })
        })
        .collect();

    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(20)
            .query(&mut c)
            .unwrap();
        seen.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    for i in 0..3000 {
        assert!(seen.contains(&format!("stable:{i}")), "missed stable:{i}");
    }
}

#[test]
fn randomkey_behaviour() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    assert_eq!(cmd(&mut r, &["RANDOMKEY"]), "$-1\r\n");
    ok(&mut r, &["SET", "x", "10"]);
    int(&mut r, &["DEL", "x"]);
    assert_eq!(cmd(&mut r, &["RANDOMKEY"]), "$-1\r\n");
    ok(&mut r, &["SET", "foo", "x"]);
    ok(&mut r, &["SET", "bar", "y"]);
    let mut seen = HashSet::new();
    for _ in 0..200 {
        seen.insert(cmd(&mut r, &["RANDOMKEY"]));
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
    // RESP3 null.
    int(&mut r, &["DEL", "foo", "bar"]);
    let hello = cmd(&mut r, &["HELLO", "3"]);
    assert!(hello.starts_with('%'), "{hello}");
    assert_eq!(cmd(&mut r, &["RANDOMKEY"]), "_\r\n");
    assert_eq!(cmd(&mut r, &["OBJECT", "ENCODING", "nokey"]), "_\r\n");
}

#[test]
fn rename_renamenx_copy_move() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    err(&mut r, &["RENAME", "nokey", "x"], "ERR no such key");
    err(&mut r, &["RENAMENX", "nokey", "x"], "ERR no such key");
    err(&mut r, &["RENAME", "nokey", "nokey"], "ERR no such key");
    ok(&mut r, &["SET", "a", "1"]);
    ok(&mut r, &["RENAME", "a", "a"]);
    assert_eq!(int(&mut r, &["RENAMENX", "a", "a"]), 0);
    ok(&mut r, &["RENAME", "a", "b"]);
    assert_eq!(int(&mut r, &["EXISTS", "a"]), 0);
    assert_eq!(cmd(&mut r, &["GET", "b"]), "$1\r\n1\r\n");
    ok(&mut r, &["SET", "c", "3"]);
    assert_eq!(int(&mut r, &["RENAMENX", "b", "c"]), 0);
    assert_eq!(int(&mut r, &["RENAMENX", "b", "d"]), 1);
    assert_eq!(cmd(&mut r, &["GET", "d"]), "$1\r\n1\r\n");
    // Rename over a key of another type replaces it.
    int(&mut r, &["RPUSH", "l", "x", "y"]);
    ok(&mut r, &["RENAME", "l", "d"]);
    assert_eq!(cmd(&mut r, &["TYPE", "d"]), "+list\r\n");

    // COPY
    err(
        &mut r,
        &["COPY", "c", "c"],
        "ERR source and destination objects are the same",
    );
    err(
        &mut r,
        &["COPY", "c", "e", "DB", "notanumber"],
        "ERR value is not an integer or out of range",
    );
    err(
        &mut r,
        &["COPY", "c", "e", "DB", "16"],
        "ERR DB index is out of range",
    );
    err(
        &mut r,
        &["COPY", "c", "e", "DB", "-1"],
        "ERR DB index is out of range",
    );
    err(&mut r, &["COPY", "c", "e", "foo"], "ERR syntax error");
    err(&mut r, &["COPY", "c", "e", "DB"], "ERR syntax error");
    assert_eq!(int(&mut r, &["COPY", "nokey", "e"]), 0);
    assert_eq!(int(&mut r, &["COPY", "c", "e", "DB", "0"]), 1);
    assert_eq!(int(&mut r, &["COPY", "c", "e"]), 0);
    assert_eq!(int(&mut r, &["EXPIRE", "d", "100"]), 1);
    assert_eq!(int(&mut r, &["COPY", "d", "e", "REPLACE"]), 1);
    assert_eq!(cmd(&mut r, &["TYPE", "e"]), "+list\r\n");
    assert!(int(&mut r, &["TTL", "e"]) > 90);
    // Independent copies.
    int(&mut r, &["RPUSH", "e", "z"]);
    assert_eq!(
        cmd(&mut r, &["LRANGE", "d", "0", "-1"]),
        "*2\r\n$1\r\nx\r\n$1\r\ny\r\n"
    );
    assert_eq!(int(&mut r, &["COPY", "c", "e", "REPLACE"]), 1);
    assert_eq!(int(&mut r, &["TTL", "e"]), -1);

    // MOVE (more in tests/databases.rs).
    err(
        &mut r,
        &["MOVE", "c", "notanumber"],
        "ERR value is not an integer or out of range",
    );
    err(&mut r, &["MOVE", "c", "16"], "ERR DB index is out of range");
    err(
        &mut r,
        &["MOVE", "c", "0"],
        "ERR source and destination objects are the same",
    );
    assert_eq!(int(&mut r, &["EXISTS", "c"]), 1);
}

#[test]
fn object_subcommands() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let enc = |r: &mut Raw, k: &str| cmd(r, &["OBJECT", "ENCODING", k]);
    ok(&mut r, &["SET", "i", "123"]);
    ok(&mut r, &["SET", "e", "abc"]);
    ok(&mut r, &["SET", "raw", &"x".repeat(45)]);
    ok(&mut r, &["SET", "lz", "007"]);
    assert_eq!(enc(&mut r, "i"), "$3\r\nint\r\n");
    assert_eq!(enc(&mut r, "e"), "$6\r\nembstr\r\n");
    assert_eq!(enc(&mut r, "raw"), "$3\r\nraw\r\n");
    assert_eq!(enc(&mut r, "lz"), "$6\r\nembstr\r\n");
    int(&mut r, &["RPUSH", "l", "a"]);
    assert_eq!(enc(&mut r, "l"), "$9\r\nquicklist\r\n");
    int(&mut r, &["SADD", "si", "1", "2"]);
    assert_eq!(enc(&mut r, "si"), "$6\r\nintset\r\n");
    int(&mut r, &["SADD", "sh", "1", "a"]);
    assert_eq!(enc(&mut r, "sh"), "$9\r\nhashtable\r\n");
    int(&mut r, &["HSET", "h", "f", "v"]);
    assert_eq!(enc(&mut r, "h"), "$8\r\nlistpack\r\n");
    int(&mut r, &["HSET", "h2", "f", &"v".repeat(65)]);
    assert_eq!(enc(&mut r, "h2"), "$9\r\nhashtable\r\n");
    int(&mut r, &["ZADD", "z", "1", "a"]);
    assert_eq!(enc(&mut r, "z"), "$8\r\nlistpack\r\n");
    let mut big = vec!["ZADD".to_string(), "z2".to_string()];
    for i in 0..129 {
        big.push(i.to_string());
        big.push(format!("m{i}"));
    }
    let big: Vec<&str> = big.iter().map(|s| s.as_str()).collect();
    int(&mut r, &big);
    assert_eq!(enc(&mut r, "z2"), "$8\r\nskiplist\r\n");
    assert_eq!(enc(&mut r, "nokey"), "$-1\r\n");

    assert_eq!(int(&mut r, &["OBJECT", "REFCOUNT", "i"]), 2147483647);
    assert_eq!(int(&mut r, &["OBJECT", "REFCOUNT", "e"]), 1);
    assert_eq!(int(&mut r, &["OBJECT", "REFCOUNT", "l"]), 1);
    assert_eq!(cmd(&mut r, &["OBJECT", "REFCOUNT", "nokey"]), "$-1\r\n");
    let idle = int(&mut r, &["OBJECT", "IDLETIME", "e"]);
    assert!((0..=2).contains(&idle), "{idle}");
    err(
        &mut r,
        &["OBJECT", "FREQ", "e"],
        "ERR An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
    );
    ok(
        &mut r,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    let f = int(&mut r, &["OBJECT", "FREQ", "e"]);
    assert!((0..=255).contains(&f));
    err(
        &mut r,
        &["OBJECT", "IDLETIME", "e"],
        "ERR An LFU maxmemory policy is selected, idle time not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
    );
    ok(&mut r, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]);

    let help = cmd(&mut r, &["OBJECT", "HELP"]);
    assert!(help.starts_with(
        "*15\r\n+OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:\r\n+ENCODING <key>\r\n"
    ));
    assert!(help.ends_with("+HELP\r\n+    Prints this help.\r\n"));
    err(
        &mut r,
        &["OBJECT", "foo"],
        "ERR unknown subcommand 'foo'. Try OBJECT HELP.",
    );
    err(
        &mut r,
        &["OBJECT", "ENCODING"],
        "ERR wrong number of arguments for 'object|encoding' command",
    );
}

#[test]
fn left_out_commands_answer_clearly() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    ok(&mut r, &["SET", "k", "v"]);
    err(
        &mut r,
        &["MIGRATE", "h", "1", "k", "0", "10"],
        "ERR MIGRATE is not supported by jcache",
    );
    err(
        &mut r,
        &["DUMP"],
        "ERR wrong number of arguments for 'dump' command",
    );
}
