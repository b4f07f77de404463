//! SORT / SORT_RO and DUMP / RESTORE against the real binary.

mod common;

use std::time::Duration;

use common::{err, q, req, wait_for, Server};
use redis::{cmd, Connection, Value};

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn sort_numeric_alpha_desc_limit() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2", "10", "1.5", "-4"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l"]),
        strs(&["-4", "1", "1.5", "2", "3", "10"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "DESC"]),
        strs(&["10", "3", "2", "1.5", "1", "-4"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "ALPHA"]),
        strs(&["-4", "1", "1.5", "10", "2", "3"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "1", "2"]),
        strs(&["1", "1.5"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "-5", "2"]),
        strs(&["-4", "1"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "2", "-1"]),
        strs(&["1.5", "2", "3", "10"])
    );
    assert!(q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "10", "2"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "0", "0"]).is_empty());
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "LIMIT", "-9223372036854775808", "1"]),
        strs(&["-4"])
    );
    // The sort key itself is unchanged.
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]),
        strs(&["3", "1", "2", "10", "1.5", "-4"])
    );
    // Weights that are not doubles.
    q::<i64>(&mut c, &["RPUSH", "bad", "1", "x"]);
    assert_eq!(
        err(&mut c, &["SORT", "bad"]),
        "ERR One or more scores can't be converted into double"
    );
    // strtod rules: leading spaces, hex and infinities are fine, empty is 0.
    q::<i64>(&mut c, &["RPUSH", "odd", " 3", "", "0x10", "-inf"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "odd"]),
        strs(&["-inf", "", " 3", "0x10"])
    );
    // Equal weights fall back to comparing the elements.
    q::<i64>(&mut c, &["RPUSH", "ties", "b", "c", "a"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "ties", "BY", "w_*"]),
        strs(&["a", "b", "c"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "ties", "BY", "w_*", "DESC"]),
        strs(&["c", "b", "a"])
    );
}

#[test]
fn sort_errors_and_arguments() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "1"]);
    q::<String>(&mut c, &["SET", "str", "x"]);
    assert_eq!(
        err(&mut c, &["SORT", "str"]),
        "WRONGTYPE Operation against a key holding the wrong kind of value"
    );
    assert_eq!(err(&mut c, &["SORT", "l", "foo"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SORT", "l", "LIMIT", "1"]),
        "ERR syntax error"
    );
    assert_eq!(err(&mut c, &["SORT", "l", "STORE"]), "ERR syntax error");
    assert_eq!(
        err(&mut c, &["SORT", "l", "LIMIT", "a", "1"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        err(&mut c, &["SORT_RO", "l", "STORE", "d"]),
        "ERR syntax error"
    );
    assert_eq!(
        err(&mut c, &["SORT"]),
        "ERR wrong number of arguments for 'sort' command"
    );
    assert!(q::<Vec<String>>(&mut c, &["SORT", "nokey"]).is_empty());
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "def"]
        ),
        strs(&["abc", "def"])
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["COMMAND", "GETKEYS", "SORT", "abc", "STORE", "x", "STORE", "y", "STORE", "def"]
        ),
        strs(&["abc", "def"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["COMMAND", "GETKEYS", "SORT_RO", "abc"]),
        strs(&["abc"])
    );
}

#[test]
fn sort_by_and_get_patterns() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "1", "2", "3"]);
    q::<String>(&mut c, &["MSET", "w_1", "30", "w_2", "10", "w_3", "20"]);
    q::<i64>(&mut c, &["HSET", "o_1", "name", "one", "n", "3"]);
    q::<i64>(&mut c, &["HSET", "o_2", "name", "two", "n", "1"]);
    q::<i64>(&mut c, &["HSET", "o_3", "name", "three", "n", "2"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "BY", "w_*"]),
        strs(&["2", "3", "1"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "BY", "o_*->n", "DESC"]),
        strs(&["1", "3", "2"])
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &[
                "SORT",
                "l",
                "BY",
                "w_*",
                "GET",
                "#",
                "GET",
                "o_*->name",
                "GET",
                "w_*"
            ]
        ),
        strs(&["2", "two", "10", "3", "three", "20", "1", "one", "30"])
    );
    // ALPHA by a pattern: missing weights sort first.
    q::<i64>(&mut c, &["RPUSH", "l", "4"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "BY", "o_*->name", "ALPHA"]),
        strs(&["4", "1", "3", "2"])
    );
    // Missing GET targets are nulls; a GET without '*' never matches.
    let v: Vec<Option<String>> = q(
        &mut c,
        &["SORT", "l", "GET", "o_*->name", "LIMIT", "3", "1"],
    );
    assert_eq!(v, vec![None]);
    let v: Vec<Option<String>> = q(&mut c, &["SORT", "l", "GET", "w_1", "LIMIT", "0", "1"]);
    assert_eq!(v, vec![None]);
    // "->" with nothing after it is part of the key name.
    q::<String>(&mut c, &["SET", "x:1->", "100"]);
    let v: Vec<Option<String>> = q(
        &mut c,
        &[
            "SORT", "l", "BY", "nosort", "GET", "x:*->", "LIMIT", "0", "1",
        ],
    );
    assert_eq!(v, vec![Some("100".to_string())]);
    // RESP3: a missing GET value is a RESP3 null.
    let mut r = s.raw();
    r.hello3();
    r.roundtrip(
        &req(&[b"SORT", b"l", b"BY", b"nosort", b"GET", b"o_*->name"]),
        b"*4\r\n$3\r\none\r\n$3\r\ntwo\r\n$5\r\nthree\r\n_\r\n",
    );
}

#[test]
fn sort_nosort_keeps_native_order() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["LPUSH", "l", "2", "1", "4", "3", "5"]);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "l", "BY", "nosort"]),
        strs(&["5", "3", "4", "1", "2"])
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["SORT", "l", "BY", "nosort", "DESC", "LIMIT", "1", "3"]
        ),
        strs(&["1", "4", "3"])
    );
    q::<i64>(
        &mut c,
        &[
            "ZADD", "z", "1", "a", "5", "b", "2", "c", "10", "d", "3", "e",
        ],
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "z", "BY", "nosort"]),
        strs(&["a", "c", "e", "b", "d"])
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "z", "BY", "nosort", "DESC"]),
        strs(&["d", "b", "e", "c", "a"])
    );
    assert_eq!(
        q::<Vec<String>>(
            &mut c,
            &["SORT", "z", "BY", "nosort", "DESC", "LIMIT", "1", "2"]
        ),
        strs(&["b", "e"])
    );
    assert!(
        q::<Vec<String>>(&mut c, &["SORT", "z", "BY", "nosort", "LIMIT", "5", "10"]).is_empty()
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["SORT", "z", "ALPHA", "DESC"]),
        strs(&["e", "d", "c", "b", "a"])
    );
    // A set has no order: with STORE, BY <constant> sorts ALPHA anyway.
    q::<i64>(&mut c, &["SADD", "st", "c", "a", "b"]);
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "st", "BY", "nosort", "STORE", "dst"]),
        3
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        strs(&["a", "b", "c"])
    );
}

#[test]
fn sort_store() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["RPUSH", "l", "3", "1", "2"]);
    q::<String>(&mut c, &["SET", "dst", "old"]);
    q::<i64>(&mut c, &["EXPIRE", "dst", "100"]);
    assert_eq!(q::<i64>(&mut c, &["SORT", "l", "STORE", "dst"]), 3);
    assert_eq!(q::<String>(&mut c, &["TYPE", "dst"]), "list");
    assert_eq!(q::<i64>(&mut c, &["TTL", "dst"]), -1);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        strs(&["1", "2", "3"])
    );
    // GET with STORE: missing values become empty strings.
    q::<String>(&mut c, &["SET", "w_2", "two"]);
    assert_eq!(
        q::<i64>(
            &mut c,
            &["SORT", "l", "GET", "w_*", "GET", "#", "STORE", "dst"]
        ),
        6
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "dst", "0", "-1"]),
        strs(&["", "1", "two", "2", "", "3"])
    );
    // Sorting into the source key itself.
    assert_eq!(q::<i64>(&mut c, &["SORT", "l", "DESC", "STORE", "l"]), 3);
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l", "0", "-1"]),
        strs(&["3", "2", "1"])
    );
    // An empty result deletes the destination and creates nothing.
    assert_eq!(q::<i64>(&mut c, &["SORT", "nokey", "STORE", "dst"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "l", "LIMIT", "10", "10", "STORE", "zap"]),
        0
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "zap"]), 0);
    // A numeric error stores nothing.
    q::<i64>(&mut c, &["RPUSH", "bad", "x"]);
    assert!(err(&mut c, &["SORT", "bad", "STORE", "zap"]).contains("double"));
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "zap"]), 0);
}

#[test]
fn sort_store_wakes_blocked_pop_and_watch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut blocked = s.raw();
    blocked.send(&req(&[b"BLPOP", b"dest", b"5"]));
    assert!(wait_for(Duration::from_secs(5), || {
        q::<String>(&mut c, &["INFO", "clients"]).contains("blocked_clients:1")
    }));
    q::<i64>(
        &mut c,
        &[
            "LPUSH",
            "src",
            "hello",
            "hola",
            "aguacate",
            "konichiwa",
            "zanzibar",
        ],
    );
    assert_eq!(
        q::<i64>(&mut c, &["SORT", "src", "ALPHA", "STORE", "dest"]),
        5
    );
    let expected = b"*2\r\n$4\r\ndest\r\n$8\r\naguacate\r\n";
    assert_eq!(blocked.read_exact_len(expected.len()), expected.to_vec());

    // WATCH sees a destination deleted by an empty SORT ... STORE.
    q::<i64>(&mut c, &["LPUSH", "foo", "bar"]);
    q::<String>(&mut c, &["WATCH", "foo"]);
    let mut other = s.client();
    assert_eq!(q::<i64>(&mut other, &["SORT", "empty", "STORE", "foo"]), 0);
    q::<String>(&mut c, &["MULTI"]);
    q::<String>(&mut c, &["PING"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Nil);
}

#[test]
fn sort_store_keyspace_event() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "El"]);
    let mut sub = s.raw();
    sub.roundtrip(
        b"SUBSCRIBE __keyevent@0__:sortstore\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$24\r\n__keyevent@0__:sortstore\r\n:1\r\n",
    );
    q::<i64>(&mut c, &["RPUSH", "l", "1"]);
    q::<i64>(&mut c, &["SORT", "l", "STORE", "d"]);
    let expected = b"*3\r\n$7\r\nmessage\r\n$24\r\n__keyevent@0__:sortstore\r\n$1\r\nd\r\n";
    assert_eq!(sub.read_exact_len(expected.len()), expected.to_vec());
}

/// Redis's CRC-64/Jones, to build payloads by hand.
fn crc64(data: &[u8]) -> u64 {
    let poly = 0xad93_d235_94c9_35a9u64.reverse_bits();
    let mut crc = 0u64;
    for &b in data {
        crc ^= b as u64;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ poly
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn payload(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

fn dump(c: &mut Connection, key: &str) -> Vec<u8> {
    cmd("DUMP").arg(key).query(c).unwrap()
}

fn restore(
    c: &mut Connection,
    key: &str,
    ttl: i64,
    p: &[u8],
    opts: &[&str],
) -> redis::RedisResult<String> {
    let mut command = cmd("RESTORE");
    command.arg(key).arg(ttl).arg(p);
    for o in opts {
        command.arg(*o);
    }
    command.query(c)
}

#[test]
fn dump_restore_round_trips_every_type() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["SET", "s", "bar"]);
    q::<i64>(&mut c, &["RPUSH", "l", "a", "b", "", "12"]);
    q::<i64>(&mut c, &["SADD", "st", "x", "y", "1"]);
    q::<i64>(&mut c, &["ZADD", "z", "1.5", "a", "-inf", "b", "3", "c"]);
    q::<i64>(&mut c, &["HSET", "h", "f", "v", "g", ""]);
    for k in ["s", "l", "st", "z", "h"] {
        let p = dump(&mut c, k);
        assert_eq!(restore(&mut c, &format!("{k}2"), 0, &p, &[]).unwrap(), "OK");
    }
    assert_eq!(q::<String>(&mut c, &["GET", "s2"]), "bar");
    assert_eq!(
        q::<Vec<String>>(&mut c, &["LRANGE", "l2", "0", "-1"]),
        strs(&["a", "b", "", "12"])
    );
    let mut m: Vec<String> = q(&mut c, &["SMEMBERS", "st2"]);
    m.sort();
    assert_eq!(m, strs(&["1", "x", "y"]));
    assert_eq!(
        q::<Vec<String>>(&mut c, &["ZRANGE", "z2", "0", "-1", "WITHSCORES"]),
        strs(&["b", "-inf", "a", "1.5", "c", "3"])
    );
    assert_eq!(q::<String>(&mut c, &["HGET", "h2", "g"]), "");
    assert_eq!(q::<String>(&mut c, &["HGET", "h2", "f"]), "v");
    // A missing key dumps as null.
    let v: Value = q(&mut c, &["DUMP", "nokey"]);
    assert_eq!(v, Value::Nil);
    // The payload is Redis's layout: type byte, object, version 10, CRC64.
    let p = dump(&mut c, "s");
    assert_eq!(p, payload(b"\x00\x03bar"));
}

#[test]
fn restore_reads_redis_encodings() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // Integer-encoded string (RDB_ENC_INT16).
    let p = payload(&[0x00, 0xc1, 0x39, 0x30]);
    restore(&mut c, "i", 0, &p, &[]).unwrap();
    assert_eq!(q::<String>(&mut c, &["GET", "i"]), "12345");
    // LZF-compressed string: "a" then a back-reference, 10 bytes.
    let p = payload(&[0x00, 0xc3, 0x05, 0x0a, 0x00, b'a', 0xe0, 0x00, 0x00]);
    restore(&mut c, "lzf", 0, &p, &[]).unwrap();
    assert_eq!(q::<String>(&mut c, &["GET", "lzf"]), "aaaaaaaaaa");
    // Intset {1, 2, 300}, 16-bit encoding.
    let mut is = vec![2, 0, 0, 0, 3, 0, 0, 0];
    for v in [1i16, 2, 300] {
        is.extend_from_slice(&v.to_le_bytes());
    }
    let mut body = vec![11, is.len() as u8];
    body.extend_from_slice(&is);
    restore(&mut c, "is", 0, &payload(&body), &[]).unwrap();
    assert_eq!(q::<i64>(&mut c, &["SCARD", "is"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "is", "300"]), 1);
    // Hash listpack {f: v, n: 7}.
    let entries: &[&[u8]] = &[b"\x81f\x02", b"\x81v\x02", b"\x81n\x02", b"\x07\x01"];
    let mut lp = Vec::new();
    let total: usize = 7 + entries.iter().map(|e| e.len()).sum::<usize>();
    lp.extend_from_slice(&(total as u32).to_le_bytes());
    lp.extend_from_slice(&4u16.to_le_bytes());
    for e in entries {
        lp.extend_from_slice(e);
    }
    lp.push(0xff);
    let mut body = vec![16, lp.len() as u8];
    body.extend_from_slice(&lp);
    restore(&mut c, "hl", 0, &payload(&body), &[]).unwrap();
    assert_eq!(q::<String>(&mut c, &["HGET", "hl", "f"]), "v");
    assert_eq!(q::<String>(&mut c, &["HGET", "hl", "n"]), "7");
}

#[test]
fn restore_errors_and_options() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["SET", "foo", "bar"]);
    let good = dump(&mut c, "foo");
    let e = restore(&mut c, "foo", 0, &good, &[]).unwrap_err();
    assert_eq!(e.code(), Some("BUSYKEY"));
    let e = restore(&mut c, "new", -1, &good, &[]).unwrap_err();
    assert_eq!(e.detail(), Some("Invalid TTL value, must be >= 0"));
    let e = restore(&mut c, "new", 0, b"...", &[]).unwrap_err();
    assert_eq!(
        e.detail(),
        Some("DUMP payload version or checksum are wrong")
    );
    let mut flipped = good.clone();
    *flipped.last_mut().unwrap() ^= 1;
    let e = restore(&mut c, "new", 0, &flipped, &[]).unwrap_err();
    assert_eq!(
        e.detail(),
        Some("DUMP payload version or checksum are wrong")
    );
    // Version 11 is newer than ours.
    let mut v11 = b"\x00\x03bar\x0b\x00".to_vec();
    let crc = crc64(&v11);
    v11.extend_from_slice(&crc.to_le_bytes());
    let e = restore(&mut c, "new", 0, &v11, &[]).unwrap_err();
    assert_eq!(
        e.detail(),
        Some("DUMP payload version or checksum are wrong")
    );
    // Checksum right, object unknown or empty.
    for body in [&b"\x07\x03bar"[..], b"\x01\x00", b"\x02\x02\x01a\x01a"] {
        let e = restore(&mut c, "new", 0, &payload(body), &[]).unwrap_err();
        assert_eq!(e.detail(), Some("Bad data format"), "{body:?}");
    }
    // A valid CRC over a string whose LZF length field says 2^62 bytes: an
    // allocation of that size used to abort the whole process.
    let mut body = vec![0x00, 0xc3, 0x05, 0x81];
    body.extend_from_slice(&(1u64 << 62).to_be_bytes());
    body.extend_from_slice(&[0x00, b'a', 0xe0, 0x00, 0x00]);
    let e = restore(&mut c, "new", 0, &payload(&body), &[]).unwrap_err();
    assert_eq!(e.detail(), Some("Bad data format"));
    // Element counts far beyond the payload are refused the same way.
    let mut body = vec![0x01, 0x81];
    body.extend_from_slice(&u64::MAX.to_be_bytes());
    body.extend_from_slice(b"\x01a");
    let e = restore(&mut c, "new", 0, &payload(&body), &[]).unwrap_err();
    assert_eq!(e.detail(), Some("Bad data format"));
    assert_eq!(q::<String>(&mut c, &["PING"]), "PONG");
    let e = restore(&mut c, "new", 0, &good, &["bogus"]).unwrap_err();
    assert_eq!(e.detail(), Some("syntax error"));
    let e = restore(&mut c, "new", 0, &good, &["IDLETIME", "-1"]).unwrap_err();
    assert_eq!(e.detail(), Some("Invalid IDLETIME value, must be >= 0"));
    let e = restore(&mut c, "new", 0, &good, &["FREQ", "256"]).unwrap_err();
    assert_eq!(
        e.detail(),
        Some("Invalid FREQ value, must be >= 0 and <= 255")
    );
    let e = restore(&mut c, "new", 0, &good, &["FREQ", "1", "IDLETIME", "1"]).unwrap_err();
    assert_eq!(e.detail(), Some("syntax error"));
    assert_eq!(
        restore(&mut c, "new", 0, &good, &["FREQ", "10"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "new"]), 1);

    // TTLs: relative, absolute, absolute in the past.
    q::<String>(&mut c, &["SET", "foo", "bar2"]);
    let bar2 = dump(&mut c, "foo");
    assert_eq!(
        restore(&mut c, "foo", 0, &bar2, &["REPLACE"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<i64>(&mut c, &["TTL", "foo"]), -1);
    restore(&mut c, "t", 5000, &good, &[]).unwrap();
    let pttl: i64 = q(&mut c, &["PTTL", "t"]);
    assert!((3000..=5000).contains(&pttl), "{pttl}");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    restore(&mut c, "abs", now_ms + 100_000, &good, &["ABSTTL"]).unwrap();
    assert_eq!(q::<i64>(&mut c, &["PEXPIRETIME", "abs"]), now_ms + 100_000);
    assert_eq!(
        restore(&mut c, "past", now_ms - 1000, &good, &["ABSTTL"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "past"]), 0);
    assert_eq!(
        restore(&mut c, "foo", now_ms - 1000, &good, &["ABSTTL", "REPLACE"]).unwrap(),
        "OK"
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "foo"]), 0);
}

#[test]
fn restore_wakes_blocked_pop_and_config_param() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(
        q::<Vec<String>>(&mut c, &["CONFIG", "GET", "sanitize-dump-payload"]),
        strs(&["sanitize-dump-payload", "no"])
    );
    q::<String>(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", "yes"]);
    assert!(err(&mut c, &["CONFIG", "SET", "sanitize-dump-payload", "maybe"]).starts_with("ERR"));
    q::<i64>(&mut c, &["RPUSH", "src", "x", "y"]);
    let p = dump(&mut c, "src");
    let mut blocked = s.raw();
    blocked.send(&req(&[b"BLPOP", b"dst", b"5"]));
    assert!(wait_for(Duration::from_secs(5), || {
        q::<String>(&mut c, &["INFO", "clients"]).contains("blocked_clients:1")
    }));
    restore(&mut c, "dst", 0, &p, &[]).unwrap();
    let expected = b"*2\r\n$3\r\ndst\r\n$1\r\nx\r\n";
    assert_eq!(blocked.read_exact_len(expected.len()), expected.to_vec());
}

#[test]
fn restore_idletime_and_freq() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["SET", "foo", "bar"]);
    let p = dump(&mut c, "foo");
    restore(&mut c, "a", 0, &p, &["IDLETIME", "1000"]).unwrap();
    let idle: i64 = q(&mut c, &["OBJECT", "IDLETIME", "a"]);
    assert!((1000..=1010).contains(&idle), "{idle}");
    q::<String>(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    restore(&mut c, "b", 0, &p, &["FREQ", "100"]).unwrap();
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "b"]), 100);
    // IDLETIME means nothing under LFU: the counter starts as for a new key.
    restore(&mut c, "c", 0, &p, &["IDLETIME", "100"]).unwrap();
    assert_eq!(q::<i64>(&mut c, &["OBJECT", "FREQ", "c"]), 5);
    assert_eq!(q::<String>(&mut c, &["GET", "b"]), "bar");
}
