//! Hash commands against the real binary: replies, errors, RESP3 shapes,
//! HRANDFIELD's count semantics and HSCAN's guarantee.

mod common;

use std::collections::{HashMap, HashSet};

use common::{assert_err, q, Server};
use redis::Connection;

#[test]
fn hset_hget_and_friends() {
    let s = Server::start(&[]);
    let mut c = s.client();
    // Duplicate fields in one HSET count once; the last value wins.
    assert_eq!(
        q::<i64>(&mut c, &["HSET", "h", "a", "1", "b", "2", "a", "3"]),
        2
    );
    assert_eq!(q::<i64>(&mut c, &["HSET", "h", "a", "4", "c", "5"]), 1);
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "a"]), "4");
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "h", "zz"]), None);
    assert_eq!(q::<Option<String>>(&mut c, &["HGET", "nokey", "a"]), None);
    assert_eq!(q::<String>(&mut c, &["HMSET", "h", "d", "6"]), "OK");
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "h", "a", "nope", "d"]),
        vec![Some("4".into()), None, Some("6".into())]
    );
    assert_eq!(
        q::<Vec<Option<String>>>(&mut c, &["HMGET", "nokey", "a", "b"]),
        vec![None, None]
    );
    assert_eq!(q::<i64>(&mut c, &["HLEN", "h"]), 4);
    assert_eq!(q::<i64>(&mut c, &["HLEN", "nokey"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "a", "x"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HSETNX", "h", "e", "hello"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "e"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HSTRLEN", "h", "nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "e"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "h", "nope"]), 0);
    assert_eq!(q::<i64>(&mut c, &["HEXISTS", "nokey", "a"]), 0);
    // HDEL counts distinct existing fields.
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "a", "a", "nope"]), 1);
    assert_eq!(q::<i64>(&mut c, &["HDEL", "nokey", "a"]), 0);
    // Small hashes keep insertion order, like Redis's listpack.
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HKEYS", "h"]),
        vec!["b", "c", "d", "e"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HVALS", "h"]),
        vec!["2", "5", "6", "hello"]
    );
    assert_eq!(
        q::<Vec<String>>(&mut c, &["HGETALL", "h"]),
        vec!["b", "2", "c", "5", "d", "6", "e", "hello"]
    );
    assert!(q::<Vec<String>>(&mut c, &["HKEYS", "nokey"]).is_empty());
    assert!(q::<Vec<String>>(&mut c, &["HGETALL", "nokey"]).is_empty());
    // Deleting the last field deletes the key.
    assert_eq!(q::<i64>(&mut c, &["HDEL", "h", "b", "c", "d", "e"]), 4);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
}

#[test]
fn arity_and_wrong_type_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_err(
        &mut c,
        &["HSET", "h", "a", "1", "b"],
        "wrong number of arguments for 'hset' command",
    );
    assert_err(
        &mut c,
        &["HMSET", "h", "a"],
        "wrong number of arguments for 'hmset' command",
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "h"]), 0);
    q::<i64>(&mut c, &["SADD", "s", "x"]);
    for args in [
        &["HSET", "s", "a", "1"][..],
        &["HMSET", "s", "a", "1"],
        &["HSETNX", "s", "a", "1"],
        &["HGET", "s", "a"],
        &["HMGET", "s", "a"],
        &["HDEL", "s", "a"],
        &["HLEN", "s"],
        &["HSTRLEN", "s", "a"],
        &["HEXISTS", "s", "a"],
        &["HKEYS", "s"],
        &["HVALS", "s"],
        &["HGETALL", "s"],
        &["HINCRBY", "s", "a", "1"],
        &["HINCRBYFLOAT", "s", "a", "1"],
        &["HRANDFIELD", "s"],
        &["HRANDFIELD", "s", "2"],
        &["HSCAN", "s", "0"],
    ] {
        assert_err(&mut c, args, "WRONGTYPE");
    }
}

#[test]
fn hincrby_and_hincrbyfloat() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "5"]), 5);
    assert_eq!(q::<i64>(&mut c, &["HINCRBY", "h", "n", "-7"]), -2);
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "n"]), "-2");
    assert_err(
        &mut c,
        &["HINCRBY", "h", "n", "x"],
        "ERR value is not an integer or out of range",
    );
    q::<i64>(
        &mut c,
        &[
            "HSET",
            "h",
            "s",
            "abc",
            "sp",
            " 1",
            "big",
            "9223372036854775807",
        ],
    );
    assert_err(
        &mut c,
        &["HINCRBY", "h", "s", "1"],
        "ERR hash value is not an integer",
    );
    assert_err(
        &mut c,
        &["HINCRBY", "h", "sp", "1"],
        "ERR hash value is not an integer",
    );
    assert_err(
        &mut c,
        &["HINCRBY", "h", "big", "1"],
        "ERR increment or decrement would overflow",
    );
    assert_eq!(
        q::<String>(&mut c, &["HGET", "h", "big"]),
        "9223372036854775807"
    );
    assert_eq!(
        q::<i64>(&mut c, &["HINCRBY", "h", "big", "-9223372036854775807"]),
        0
    );

    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "10.5"]),
        "10.5"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "f", "0.1"]),
        "10.6"
    );
    assert_eq!(
        q::<String>(&mut c, &["HINCRBYFLOAT", "h", "n", "2.0e2"]),
        "198"
    );
    assert_eq!(q::<String>(&mut c, &["HGET", "h", "n"]), "198");
    assert_err(
        &mut c,
        &["HINCRBYFLOAT", "h", "f", "abc"],
        "ERR value is not a valid float",
    );
    assert_err(
        &mut c,
        &["HINCRBYFLOAT", "h", "s", "1"],
        "ERR hash value is not a float",
    );
    assert_err(
        &mut c,
        &["HINCRBYFLOAT", "nokey", "f", "+inf"],
        "ERR value is NaN or Infinity",
    );
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "nokey"]), 0);
    q::<i64>(&mut c, &["HSET", "h", "inf", "inf"]);
    assert_err(
        &mut c,
        &["HINCRBYFLOAT", "h", "inf", "1"],
        "ERR increment would produce NaN or Infinity",
    );
}

#[test]
fn hrandfield_counts() {
    let s = Server::start(&[]);
    let mut c = s.client();
    assert_eq!(q::<Option<String>>(&mut c, &["HRANDFIELD", "nokey"]), None);
    assert!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "nokey", "5"]).is_empty());
    let mut expected = HashMap::new();
    for i in 0..20 {
        let (f, v) = (format!("f{i}"), format!("v{i}"));
        q::<i64>(&mut c, &["HSET", "h", &f, &v]);
        expected.insert(f, v);
    }
    let one: String = q(&mut c, &["HRANDFIELD", "h"]);
    assert!(expected.contains_key(&one));
    assert!(q::<Vec<String>>(&mut c, &["HRANDFIELD", "h", "0"]).is_empty());
    // Positive count: distinct fields, at most the hash size.
    for count in [1, 5, 15, 19, 20, 100] {
        let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", &count.to_string()]);
        assert_eq!(got.len(), count.min(20));
        let set: HashSet<&String> = got.iter().collect();
        assert_eq!(set.len(), got.len(), "duplicates for count {count}");
        assert!(got.iter().all(|f| expected.contains_key(f)));
    }
    // Negative count: exactly |count| fields, repeats allowed.
    let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", "-100"]);
    assert_eq!(got.len(), 100);
    assert!(got.iter().all(|f| expected.contains_key(f)));
    let distinct: HashSet<&String> = got.iter().collect();
    assert!(distinct.len() > 1);
    // WITHVALUES pairs each field with its value (RESP2: flat).
    for (count, n) in [("7", 7), ("-30", 30), ("50", 20)] {
        let got: Vec<String> = q(&mut c, &["HRANDFIELD", "h", count, "WITHVALUES"]);
        assert_eq!(got.len(), 2 * n);
        for pair in got.chunks(2) {
            assert_eq!(expected[&pair[0]], pair[1]);
        }
    }
    assert_err(&mut c, &["HRANDFIELD", "h", "1", "foo"], "ERR syntax error");
    assert_err(
        &mut c,
        &["HRANDFIELD", "h", "x"],
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        &["HRANDFIELD", "h", "-9223372036854775808"],
        "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    );
    assert_err(
        &mut c,
        &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"],
        "ERR value is out of range",
    );
}

#[test]
fn resp3_shapes() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.hello3();
    r.roundtrip(b"HSET h a 1 b 2\r\n", b":2\r\n");
    r.roundtrip(
        b"HGETALL h\r\n",
        b"%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    r.roundtrip(b"HGETALL nokey\r\n", b"%0\r\n");
    r.roundtrip(b"HKEYS h\r\n", b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    r.roundtrip(b"HGET h zz\r\n", b"_\r\n");
    r.roundtrip(b"HRANDFIELD nokey\r\n", b"_\r\n");
    r.roundtrip(b"HRANDFIELD nokey 3 WITHVALUES\r\n", b"*0\r\n");
    // count >= size returns the whole hash in order, as nested pairs in RESP3.
    r.roundtrip(
        b"HRANDFIELD h 5 WITHVALUES\r\n",
        b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    r.roundtrip(b"HDEL h a\r\n", b":1\r\n");
    r.roundtrip(
        b"HRANDFIELD h -2 WITHVALUES\r\n",
        b"*2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    r.roundtrip(
        b"HSCAN h 0\r\n",
        b"*2\r\n$1\r\n0\r\n*2\r\n$1\r\nb\r\n$1\r\n2\r\n",
    );
    r.roundtrip(b"HMGET h b x\r\n", b"*2\r\n$1\r\n2\r\n_\r\n");
    r.roundtrip(b"HINCRBYFLOAT h f 1.5\r\n", b"$3\r\n1.5\r\n");
}

/// Runs a full HSCAN, calling `between` after every call; returns the fields seen.
fn full_hscan(
    c: &mut Connection,
    key: &str,
    extra: &[&str],
    mut between: impl FnMut(&mut Connection, usize),
) -> (HashSet<String>, usize) {
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let mut args = vec!["HSCAN", key, &cursor];
        args.extend_from_slice(extra);
        let (next, items): (String, Vec<String>) = q(c, &args);
        for pair in items.chunks(2) {
            seen.insert(pair[0].clone());
        }
        calls += 1;
        assert!(calls < 100_000, "scan does not terminate");
        between(c, calls);
        cursor = next;
        if cursor == "0" {
            break;
        }
    }
    (seen, calls)
}

#[test]
fn hscan_small_large_match_and_errors() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let (next, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "nokey", "0", "BAD"]);
    assert_eq!((next.as_str(), items.len()), ("0", 0));
    for i in 0..100 {
        q::<i64>(&mut c, &["HSET", "small", &format!("f{i}"), &i.to_string()]);
    }
    // Small hashes come back whole, with cursor 0, whatever COUNT says.
    let (next, items): (String, Vec<String>) = q(&mut c, &["HSCAN", "small", "0", "COUNT", "1"]);
    assert_eq!(next, "0");
    assert_eq!(items.len(), 200);
    assert_eq!(items[0..2], ["f0".to_string(), "0".to_string()]);

    let mut pipe = redis::pipe();
    for i in 0..5000 {
        pipe.cmd("HSET")
            .arg("big")
            .arg(format!("f{i}"))
            .arg(i)
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    let (seen, calls) = full_hscan(&mut c, "big", &[], |_, _| {});
    assert_eq!(seen.len(), 5000);
    assert!(calls > 1, "a large hash is scanned in several calls");
    let (seen, _) = full_hscan(&mut c, "big", &["MATCH", "f1*", "COUNT", "100"], |_, _| {});
    let want: HashSet<String> = (0..5000)
        .map(|i| format!("f{i}"))
        .filter(|f| f.starts_with("f1"))
        .collect();
    assert_eq!(seen, want);

    assert_err(&mut c, &["HSCAN", "big", "abc"], "ERR invalid cursor");
    assert_err(&mut c, &["HSCAN", "big", " 1"], "ERR invalid cursor");
    assert_err(
        &mut c,
        &["HSCAN", "big", "18446744073709551616"],
        "ERR invalid cursor",
    );
    assert_err(
        &mut c,
        &["HSCAN", "big", "0", "COUNT", "0"],
        "ERR syntax error",
    );
    assert_err(
        &mut c,
        &["HSCAN", "big", "0", "COUNT", "x"],
        "ERR value is not an integer or out of range",
    );
    assert_err(
        &mut c,
        &["HSCAN", "big", "0", "TYPE", "hash"],
        "ERR syntax error",
    );
    assert_err(&mut c, &["HSCAN", "big", "0", "MATCH"], "ERR syntax error");
}

#[test]
fn hscan_returns_every_field_present_for_the_whole_scan() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut pipe = redis::pipe();
    for i in 0..3000 {
        pipe.cmd("HSET")
            .arg("h")
            .arg(format!("keep{i}"))
            .arg(i)
            .ignore();
        pipe.cmd("HSET")
            .arg("h")
            .arg(format!("del{i}"))
            .arg(i)
            .ignore();
    }
    pipe.query::<()>(&mut c).unwrap();
    // While scanning, delete half the fields and add new ones: every "keep"
    // field must still be returned.
    let (seen, _) = full_hscan(&mut c, "h", &["COUNT", "50"], |c, call| {
        let mut p = redis::pipe();
        for j in 0..100 {
            let i = (call * 100 + j) % 3000;
            p.cmd("HDEL").arg("h").arg(format!("del{i}")).ignore();
            p.cmd("HSET")
                .arg("h")
                .arg(format!("new{call}_{j}"))
                .arg(1)
                .ignore();
        }
        p.query::<()>(c).unwrap();
    });
    for i in 0..3000 {
        assert!(seen.contains(&format!("keep{i}")), "keep{i} missed");
    }
}
