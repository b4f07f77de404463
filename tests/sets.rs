//! Set commands against the real binary: replies, errors, RESP3 shapes,
//! random pops, the algebra commands and SSCAN's guarantee.

mod common;

use std::collections::HashSet;

use common::{assert_err, q, Server};
use redis::Connection;

fn members(c: &mut Connection, key: &str) -> HashSet<String> {
    q(c, &["SMEMBERS", key])
}

fn set_of(items: &[&str]) -> HashSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn basic_membership() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a", "b", "c", "a"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SADD", "s", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 3);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "s", "z"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SISMEMBER", "nokey", "z"]), 0);
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["SMISMEMBER", "s", "b", "z", "a"]),
        vec![1, 0, 1]
    );
    assert_eq!(
        q::<Vec<i64>>(&mut c, &["SMISMEMBER", "nokey", "b", "z"]),
        vec![0, 0]
    );
    assert_eq!(members(&mut c, "s"), set_of(&["a", "b", "c"]));
    assert!(members(&mut c, "nokey").is_empty());
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "a", "a", "zz"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SREM", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SREM", "s", "b", "c"]), 2);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0);
}

#[test]
fn wrong_type_and_argument_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["HSET", "h", "f", "v"]);
    q::<i64>(&mut c, &["SADD", "s", "a"]);
    for args in [
        &["SADD", "h", "a"][..],
        &["SREM", "h", "a"],
        &["SCARD", "h"],
        &["SISMEMBER", "h", "a"],
        &["SMISMEMBER", "h", "a"],
        &["SMEMBERS", "h"],
        &["SPOP", "h"],
        &["SPOP", "h", "2"],
        &["SRANDMEMBER", "h"],
        &["SRANDMEMBER", "h", "2"],
        &["SINTER", "s", "h"],
        &["SINTER", "nokey", "h"],
        &["SUNION", "s", "h"],
        &["SDIFF", "nokey", "h"],
        &["SINTERSTORE", "d", "s", "h"],
        &["SUNIONSTORE", "d", "s", "h"],
        &["SDIFFSTORE", "d", "s", "h"],
        &["SINTERCARD", "2", "s", "h"],
        &["SMOVE", "h", "s", "a"],
        &["SMOVE", "s", "h", "a"],
        &["SSCAN", "h", "0"],
    ] {
        assert_err(&mut c, args, "WRONGTYPE");
    }
    // A missing source makes SMOVE a no-op even with a wrong-type destination.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "nokey", "h", "a"]), 0);
    assert_err(&mut c, &["SPOP", "s", "1", "2"], "ERR syntax error");
    assert_err(
        &mut c,
        &["SPOP", "s", "-1"],
        "ERR value is out of range, must be positive",
    );
    assert_err(
        &mut c,
        &["SPOP", "s", "x"],
        "ERR value is out of range, must be positive",
    );
    assert_err(&mut c, &["SRANDMEMBER", "s", "1", "2"], "ERR syntax error");
    assert_err(
        &mut c,
        &["SRANDMEMBER", "s", "x"],
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        &["SRANDMEMBER", "s", "-9223372036854775808"],
        "ERR value is out of range, value must between",
    );
}

#[test]
fn smove_cases() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "src", "a", "b"]);
    q::<i64>(&mut c, &["SADD", "dst", "b", "x"]);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "dst", "a"]), 1);
    assert_eq!(members(&mut c, "dst"), set_of(&["a", "b", "x"]));
    // Already in the destination: removed from the source only.
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "src", "dst", "b"]), 1);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "src"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "dst", "dst", "a"]), 1);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "dst", "dst", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "dst", "new", "zz"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SMOVE", "dst", "new", "x"]), 1);
    assert_eq!(members(&mut c, "new"), set_of(&["x"]));
    assert_eq!(members(&mut c, "dst"), set_of(&["a", "b"]));
}

#[test]
fn spop_and_srandmember() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<Option<String>>(&mut c, &["SPOP", "nokey"]), None);
    assert!(q::<Vec<String>>(&mut c, &["SPOP", "nokey", "3"]).is_empty());
    assert_eq!(q::<Option<String>>(&mut c, &["SRANDMEMBER", "nokey"]), None);
    assert!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "nokey", "-3"]).is_empty());
    let all: HashSet<String> = (0..50).map(|i| format!("m{i}")).collect();
    for m in &all {
        q::<i64>(&mut c, &["SADD", "s", m]);
    }
    let one: String = q(&mut c, &["SRANDMEMBER", "s"]);
    assert!(all.contains(&one));
    assert!(q::<Vec<String>>(&mut c, &["SRANDMEMBER", "s", "0"]).is_empty());
    for count in [1usize, 10, 49, 50, 80] {
        let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", &count.to_string()]);
        assert_eq!(got.len(), count.min(50));
        let distinct: HashSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), got.len());
        assert!(got.iter().all(|m| all.contains(m)));
    }
    let got: Vec<String> = q(&mut c, &["SRANDMEMBER", "s", "-200"]);
    assert_eq!(got.len(), 200);
    assert!(got.iter().all(|m| all.contains(m)));
    assert_eq!(q::<i64>(&mut c, &["SCARD", "s"]), 50);

    // SPOP removes exactly what it returns.
    let mut left = all.clone();
    let one: String = q(&mut c, &["SPOP", "s"]);
    assert!(left.remove(&one));
    assert!(q::<Vec<String>>(&mut c, &["SPOP", "s", "0"]).is_empty());
    let got: Vec<String> = q(&mut c, &["SPOP", "s", "20"]);
    assert_eq!(got.len(), 20);
    for m in &got {
        assert!(left.remove(m), "{m} popped twice or unknown");
    }
    assert_eq!(members(&mut c, "s"), left);
    let got: Vec<String> = q(&mut c, &["SPOP", "s", "100"]);
    assert_eq!(got.into_iter().collect::<HashSet<_>>(), left);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "s"]), 0);
}

#[test]
fn algebra_and_store() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<i64>(&mut c, &["SADD", "a", "1", "2", "3", "4"]);
    q::<i64>(&mut c, &["SADD", "b", "3", "4", "5"]);
    q::<i64>(&mut c, &["SADD", "c", "4", "5", "6"]);
    let inter: HashSet<String> = q(&mut c, &["SINTER", "a", "b", "c"]);
    assert_eq!(inter, set_of(&["4"]));
    let inter: HashSet<String> = q(&mut c, &["SINTER", "a", "b"]);
    assert_eq!(inter, set_of(&["3", "4"]));
    assert!(q::<Vec<String>>(&mut c, &["SINTER", "a", "nokey"]).is_empty());
    let union: HashSet<String> = q(&mut c, &["SUNION", "a", "nokey", "c"]);
    assert_eq!(union, set_of(&["1", "2", "3", "4", "5", "6"]));
    let diff: HashSet<String> = q(&mut c, &["SDIFF", "a", "b", "nokey"]);
    assert_eq!(diff, set_of(&["1", "2"]));
    assert!(q::<Vec<String>>(&mut c, &["SDIFF", "nokey", "a"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["SDIFF", "a", "a"]).is_empty());

    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "a", "b"]), 2);
    assert_eq!(
        q::<i64>(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "1"]),
        1
    );
    assert_eq!(
        q::<i64>(&mut c, &["SINTERCARD", "2", "a", "b", "LIMIT", "0"]),
        2
    );
    assert_eq!(q::<i64>(&mut c, &["SINTERCARD", "2", "a", "nokey"]), 0);
    assert_err(
        &mut c,
        &["SINTERCARD", "0", "a"],
        "ERR numkeys should be greater than 0",
    );
    assert_err(
        &mut c,
        &["SINTERCARD", "x", "a"],
        "ERR numkeys should be greater than 0",
    );
    assert_err(
        &mut c,
        &["SINTERCARD", "3", "a", "b"],
        "ERR Number of keys can't be greater than number of args",
    );
    assert_err(
        &mut c,
        &["SINTERCARD", "1", "a", "LIMIT", "-1"],
        "ERR LIMIT can't be negative",
    );
    assert_err(
        &mut c,
        &["SINTERCARD", "1", "a", "LIMIT"],
        "ERR syntax error",
    );
    assert_err(&mut c, &["SINTERCARD", "1", "a", "b"], "ERR syntax error");

    // STORE replaces the destination whatever its type, and drops its TTL.
    q::<i64>(&mut c, &["HSET", "dst", "f", "v"]);
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "dst", "a", "c"]), 6);
    assert_eq!(
        members(&mut c, "dst"),
        set_of(&["1", "2", "3", "4", "5", "6"])
    );
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "dst", "a", "b"]), 2);
    assert_eq!(members(&mut c, "dst"), set_of(&["3", "4"]));
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "dst", "a", "b"]), 2);
    assert_eq!(members(&mut c, "dst"), set_of(&["1", "2"]));
    // A destination that is also a source.
    assert_eq!(q::<i64>(&mut c, &["SUNIONSTORE", "a", "a", "c"]), 6);
    assert_eq!(q::<i64>(&mut c, &["SCARD", "a"]), 6);
    // An empty result deletes the destination.
    assert_eq!(q::<i64>(&mut c, &["SINTERSTORE", "dst", "a", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst"]), 0);
    assert_eq!(q::<i64>(&mut c, &["SDIFFSTORE", "dst2", "nokey", "a"]), 0);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "dst2"]), 0);
}

#[test]
fn resp3_shapes() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.hello3();
    r.roundtrip(b"SADD s a\r\n", b":1\r\n");
    r.roundtrip(b"SMEMBERS s\r\n", b"~1\r\n$1\r\na\r\n");
    r.roundtrip(b"SMEMBERS nokey\r\n", b"~0\r\n");
    r.roundtrip(b"SINTER s\r\n", b"~1\r\n$1\r\na\r\n");
    r.roundtrip(b"SUNION s nokey\r\n", b"~1\r\n$1\r\na\r\n");
    r.roundtrip(b"SDIFF s nokey\r\n", b"~1\r\n$1\r\na\r\n");
    r.roundtrip(b"SINTER nokey s\r\n", b"~0\r\n");
    r.roundtrip(b"SRANDMEMBER s 5\r\n", b"*1\r\n$1\r\na\r\n");
    r.roundtrip(b"SRANDMEMBER s -2\r\n", b"*2\r\n$1\r\na\r\n$1\r\na\r\n");
    r.roundtrip(b"SRANDMEMBER nokey\r\n", b"_\r\n");
    r.roundtrip(b"SMISMEMBER s a b\r\n", b"*2\r\n:1\r\n:0\r\n");
    r.roundtrip(b"SPOP nokey 2\r\n", b"~0\r\n");
    r.roundtrip(b"SPOP s 0\r\n", b"~0\r\n");
    r.roundtrip(b"SPOP s 3\r\n", b"~1\r\n$1\r\na\r\n");
    r.roundtrip(b"SPOP s\r\n", b"_\r\n");
    r.roundtrip(b"SSCAN nokey 0\r\n", b"*2\r\n$1\r\n0\r\n*0\r\n");
}

/// Runs a full SSCAN, calling `between` after every call; returns the members seen.
fn full_sscan(
    c: &mut Connection,
    key: &str,
    extra: &[&str],
    mut between: impl FnMut(&mut Connection, usize),
) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let mut args = vec!["SSCAN", key, &cursor];
        args.extend_from_slice(extra);
        let (next, items): (String, Vec<String>) = q(c, &args);
        seen.extend(items);
        calls += 1;
        assert!(calls < 100_000, "scan does not terminate");
        between(c, calls);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    seen
}

#[test]
fn sscan_complete_under_writes() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("SADD")
            .arg("s")
            .arg(format!("keep{i}"))
            .arg(format!("del{i}"))
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let seen = full_sscan(&mut c, "s", &[], |_, _| {});
    assert_eq!(seen.len(), 6000);
    let seen = full_sscan(&mut c, "s", &["MATCH", "keep1*", "COUNT", "500"], |_, _| {});
    assert!(seen.iter().all(|m| m.starts_with("keep1")));
    assert_eq!(
        seen.len(),
        (0..3000)
            .filter(|i| format!("{i}").starts_with('1'))
            .count()
    );
    let seen = full_sscan(&mut c, "s", &["COUNT", "20"], |c, call| {
        let mut p = redis::pipe();
        for j in 0..100 {
            let i = (call * 100 + j) % 3000;
            p.cmd("SREM").arg("s").arg(format!("del{i}")).ignore();
            p.cmd("SADD")
                .arg("s")
                .arg(format!("new{call}_{j}"))
                .ignore();
        }
        p.query::<()>(c).unwrap();
    });
    for i in 0..3000 {
        assert!(seen.contains(&format!("keep{i}")), "keep{i} missed");
    }
    assert_err(&mut c, &["SSCAN", "s", "x"], "ERR invalid cursor");
    assert_err(
        &mut c,
        &["SSCAN", "s", "0", "COUNT", "0"],
        "ERR syntax error",
    );
}

/// A `pmessage` push as RESP2 bytes.
fn pmessage(pattern: &str, channel: &str, msg: &str) -> Vec<u8> {
    let mut v = b"*4\r\n$8\r\npmessage\r\n".to_vec();
    for s in [pattern, channel, msg] {
        v.extend_from_slice(format!("${}\r\n{}\r\n", s.len(), s).as_bytes());
    }
    v
}

#[test]
fn keyspace_events() {
    let s = Server::start(&[]);
    let mut c = s.client();
    q::<String>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Esgh"]);
    let mut sub = s.raw();
    let pat = "__keyevent@0__:*";
    sub.roundtrip(
        b"PSUBSCRIBE __keyevent@0__:*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n",
    );
    q::<i64>(&mut c, &["SADD", "t", "a", "b", "c", "d"]);
    q::<Vec<String>>(&mut c, &["SPOP", "t", "2"]);
    q::<Vec<String>>(&mut c, &["SPOP", "t", "5"]);
    q::<i64>(&mut c, &["SADD", "a", "1", "2"]);
    q::<i64>(&mut c, &["SUNIONSTORE", "d", "a", "nokey"]);
    q::<i64>(&mut c, &["SINTERSTORE", "d", "a", "nokey"]);
    q::<i64>(&mut c, &["HINCRBY", "h", "f", "1"]);
    q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "1.5"]);
    let mut expected = Vec::new();
    for (ev, key) in [
        ("sadd", "t"),
        ("spop", "t"),
        ("spop", "t"),
        ("del", "t"),
        ("sadd", "a"),
        ("sunionstore", "d"),
        ("del", "d"),
        ("hincrby", "h"),
        ("hincrbyfloat", "h"),
    ] {
        expected.extend(pmessage(pat, &format!("__keyevent@0__:{ev}"), key));
    }
    let got = sub.read_exact_len(expected.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&expected)
    );
}
