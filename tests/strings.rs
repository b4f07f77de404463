//! String and bitmap commands against the real binary, checked byte for byte
//! on raw sockets (RESP2 and RESP3) and through the `redis` crate.

mod common;

use std::time::Duration;

use common::{check, err_line, req, Raw, Server, NOT_INT, SYNTAX, WRONGTYPE};

/// Like `check`, with binary arguments.
fn check_bin(r: &mut Raw, args: &[&[u8]], expected: &[u8]) {
    r.roundtrip(&req(args), expected);
}

#[test]
fn get_set_and_options() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "GET k", "$-1\r\n");
    check(&mut r, "SET k v", "+OK\r\n");
    check(&mut r, "GET k", "$1\r\nv\r\n");
    // NX / XX / GET combinations.
    check(&mut r, "SET k v2 NX", "$-1\r\n");
    check(&mut r, "SET nx1 v XX", "$-1\r\n");
    check(&mut r, "EXISTS nx1", ":0\r\n");
    check(&mut r, "SET k v2 XX GET", "$1\r\nv\r\n");
    check(&mut r, "SET k v3 NX GET", "$2\r\nv2\r\n");
    check(&mut r, "GET k", "$2\r\nv2\r\n");
    check(&mut r, "SET new1 v GET", "$-1\r\n");
    check(&mut r, "GET new1", "$1\r\nv\r\n");
    check(&mut r, "SET k v NX XX", SYNTAX);
    check(&mut r, "SET k v EX 10 PX 100", SYNTAX);
    check(&mut r, "SET k v KEEPTTL EX 10", SYNTAX);
    check(&mut r, "SET k v EX", SYNTAX);
    check(&mut r, "SET k v PERSIST", SYNTAX);
    check(&mut r, "SET k v FOO", SYNTAX);
    // Expire errors.
    let inv = err_line("ERR invalid expire time in 'set' command");
    check(&mut r, "SET k v EX 0", &inv);
    check(&mut r, "SET k v PX -5", &inv);
    check(&mut r, "SET k v EX 9223372036854775", &inv);
    check(&mut r, "SET k v PX 9223372036854775807", &inv);
    check(&mut r, "SET k v EX abc", NOT_INT);
    check(&mut r, "SET k v EXAT 9223372036854775", "+OK\r\n");
    // EX twice: the last wins.
    check(&mut r, "SET k v EX 10 EX 20", "+OK\r\n");
    check(&mut r, "SET k v2 KEEPTTL", "+OK\r\n");
    check(&mut r, "SET k v3", "+OK\r\n");
    // An absolute time in the past: the key is gone.
    check(&mut r, "SET past v PXAT 1", "+OK\r\n");
    check(&mut r, "GET past", "$-1\r\n");
    check(&mut r, "EXISTS past", ":0\r\n");
    check(&mut r, "SET past v EXAT 1 GET", "$-1\r\n");
    check(&mut r, "GET past", "$-1\r\n");
    // Binary-safe values.
    check_bin(&mut r, &[b"SET", b"bin", b"a\x00\r\nb"], b"+OK\r\n");
    check_bin(&mut r, &[b"GET", b"bin"], b"$5\r\na\x00\r\nb\r\n");
    check(&mut r, "SET e \"\"", "+OK\r\n");
    check_bin(&mut r, &[b"SET", b"e", b""], b"+OK\r\n");
    check(&mut r, "GET e", "$0\r\n\r\n");
}

#[test]
fn set_expiry_through_client() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let q = |c: &mut redis::Connection, args: &[&str]| -> redis::Value {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(c).unwrap()
    };
    let ttl =
        |c: &mut redis::Connection, k: &str| -> i64 { redis::cmd("PTTL").arg(k).query(c).unwrap() };
    q(&mut c, &["SET", "k", "v", "EX", "100"]);
    let t = ttl(&mut c, "k");
    assert!((99_000..=100_000).contains(&t), "{t}");
    q(&mut c, &["SET", "k", "v2", "KEEPTTL"]);
    assert!(ttl(&mut c, "k") > 90_000);
    q(&mut c, &["SET", "k", "v3"]);
    assert_eq!(ttl(&mut c, "k"), -1);
    q(&mut c, &["SET", "k", "v", "PX", "100000"]);
    assert!(ttl(&mut c, "k") > 90_000);
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 200;
    q(&mut c, &["SET", "k", "v", "EXAT", &at.to_string()]);
    let t = ttl(&mut c, "k");
    assert!((190_000..=200_000).contains(&t), "{t}");
    q(&mut c, &["SET", "k", "v", "PXAT", &(at * 1000).to_string()]);
    assert!(ttl(&mut c, "k") > 190_000);
    // SETEX / PSETEX.
    q(&mut c, &["SETEX", "e", "100", "v"]);
    assert!(ttl(&mut c, "e") > 90_000);
    q(&mut c, &["PSETEX", "e", "5000", "v"]);
    let t = ttl(&mut c, "e");
    assert!((1..=5000).contains(&t), "{t}");
    // A short expiry really expires.
    q(&mut c, &["SET", "short", "v", "PX", "30"]);
    assert!(common::wait_for(Duration::from_secs(5), || {
        let v: Option<String> = redis::cmd("GET").arg("short").query(&mut c).unwrap();
        v.is_none()
    }));
    // GETSET and MSET clear the TTL.
    q(&mut c, &["SET", "g", "v", "EX", "100"]);
    let old: String = redis::cmd("GETSET")
        .arg("g")
        .arg("w")
        .query(&mut c)
        .unwrap();
    assert_eq!(old, "v");
    assert_eq!(ttl(&mut c, "g"), -1);
    // INCR keeps it.
    q(&mut c, &["SET", "n", "1", "EX", "100"]);
    q(&mut c, &["INCR", "n"]);
    assert!(ttl(&mut c, "n") > 90_000);
}

#[test]
fn setnx_setex_getset_getdel_getex() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "SETNX k v", ":1\r\n");
    check(&mut r, "SETNX k w", ":0\r\n");
    check(&mut r, "GET k", "$1\r\nv\r\n");
    check(
        &mut r,
        "SETEX k 0 v",
        &err_line("ERR invalid expire time in 'setex' command"),
    );
    check(
        &mut r,
        "PSETEX k -1 v",
        &err_line("ERR invalid expire time in 'psetex' command"),
    );
    check(&mut r, "SETEX k abc v", NOT_INT);
    check(&mut r, "SETEX k 100 v", "+OK\r\n");
    check(&mut r, "GETSET k w", "$1\r\nv\r\n");
    check(&mut r, "GETSET gs_new w", "$-1\r\n");
    check(&mut r, "GETDEL k", "$1\r\nw\r\n");
    check(&mut r, "GETDEL k", "$-1\r\n");
    check(&mut r, "EXISTS k", ":0\r\n");
    // GETEX
    check(&mut r, "SET k v", "+OK\r\n");
    check(&mut r, "GETEX k", "$1\r\nv\r\n");
    check(&mut r, "GETEX k EX 100", "$1\r\nv\r\n");
    check(&mut r, "GETEX k PERSIST", "$1\r\nv\r\n");
    check(&mut r, "GETEX k PX 100000", "$1\r\nv\r\n");
    check(&mut r, "GETEX k PERSIST EX 1", SYNTAX);
    check(&mut r, "GETEX k NX", SYNTAX);
    check(&mut r, "GETEX k KEEPTTL", SYNTAX);
    check(
        &mut r,
        "GETEX k EX 0",
        &err_line("ERR invalid expire time in 'getex' command"),
    );
    // A missing key answers null before the expire time is validated.
    check(&mut r, "GETEX nokey EX 0", "$-1\r\n");
    // EXAT in the past deletes the key after replying.
    check(&mut r, "GETEX k EXAT 1", "$1\r\nv\r\n");
    check(&mut r, "EXISTS k", ":0\r\n");
}

#[test]
fn mget_mset_msetnx_append_strlen() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "MSET a 1 b 2 a 3", "+OK\r\n");
    check(
        &mut r,
        "MGET a b l nokey",
        "*4\r\n$1\r\n3\r\n$1\r\n2\r\n$-1\r\n$-1\r\n",
    );
    check(
        &mut r,
        "MSET a 1 b",
        &err_line("ERR wrong number of arguments for 'mset' command"),
    );
    check(
        &mut r,
        "MSETNX a 1 b",
        &err_line("ERR wrong number of arguments for 'msetnx' command"),
    );
    check(
        &mut r,
        "MSET a",
        &err_line("ERR wrong number of arguments for 'mset' command"),
    );
    check(&mut r, "MSETNX x 1 a 2", ":0\r\n");
    check(&mut r, "EXISTS x", ":0\r\n");
    check(&mut r, "MSETNX x 1 y 2 x 3", ":1\r\n");
    check(&mut r, "MGET x y", "*2\r\n$1\r\n3\r\n$1\r\n2\r\n");
    check(&mut r, "APPEND s abc", ":3\r\n");
    check(&mut r, "APPEND s de", ":5\r\n");
    check(&mut r, "GET s", "$5\r\nabcde\r\n");
    check(&mut r, "STRLEN s", ":5\r\n");
    check(&mut r, "STRLEN nokey", ":0\r\n");
    check(&mut r, "SET n 123", "+OK\r\n");
    check(&mut r, "APPEND n 4", ":4\r\n");
    check(&mut r, "INCR n", ":1235\r\n");
}

#[test]
fn counters() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "INCR n", ":1\r\n");
    check(&mut r, "INCRBY n 10", ":11\r\n");
    check(&mut r, "DECR n", ":10\r\n");
    check(&mut r, "DECRBY n 20", ":-10\r\n");
    check(&mut r, "GET n", "$3\r\n-10\r\n");
    check(&mut r, "INCRBY n abc", NOT_INT);
    check(
        &mut r,
        "DECRBY n -9223372036854775808",
        &err_line("ERR decrement would overflow"),
    );
    check(&mut r, "SET n 9223372036854775807", "+OK\r\n");
    check(
        &mut r,
        "INCR n",
        &err_line("ERR increment or decrement would overflow"),
    );
    check(&mut r, "SET n -9223372036854775808", "+OK\r\n");
    check(
        &mut r,
        "DECR n",
        &err_line("ERR increment or decrement would overflow"),
    );
    for bad in ["abc", "1 ", " 1", "+1", "01", "1.5", "99999999999999999999"] {
        check_bin(&mut r, &[b"SET", b"b", bad.as_bytes()], b"+OK\r\n");
        check(&mut r, "INCR b", NOT_INT);
    }
    // INCRBYFLOAT
    check(&mut r, "SET f 10.5", "+OK\r\n");
    check(&mut r, "INCRBYFLOAT f 0.1", "$4\r\n10.6\r\n");
    check(&mut r, "INCRBYFLOAT f -10.6", "$1\r\n0\r\n");
    check(&mut r, "INCRBYFLOAT f 5.0e3", "$4\r\n5000\r\n");
    check(&mut r, "INCRBYFLOAT newf 3", "$1\r\n3\r\n");
    let nf = err_line("ERR value is not a valid float");
    check(&mut r, "INCRBYFLOAT f abc", &nf);
    check_bin(&mut r, &[b"INCRBYFLOAT", b"f", b" 1"], nf.as_bytes());
    check(&mut r, "SET f abc", "+OK\r\n");
    check(&mut r, "INCRBYFLOAT f 1", &nf);
    check(&mut r, "SET f 1", "+OK\r\n");
    check(
        &mut r,
        "INCRBYFLOAT f inf",
        &err_line("ERR increment would produce NaN or Infinity"),
    );
    check(&mut r, "INCRBYFLOAT f nan", &nf);
    check(&mut r, "GET f", "$1\r\n1\r\n");
}

#[test]
fn ranges_and_lcs() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "SET k hello", "+OK\r\n");
    check(&mut r, "GETRANGE k 0 -1", "$5\r\nhello\r\n");
    check(&mut r, "GETRANGE k 1 3", "$3\r\nell\r\n");
    check(&mut r, "GETRANGE k -3 -1", "$3\r\nllo\r\n");
    check(&mut r, "GETRANGE k 0 -100", "$1\r\nh\r\n");
    check(&mut r, "GETRANGE k -1 -5", "$0\r\n\r\n");
    check(&mut r, "GETRANGE k 3 1", "$0\r\n\r\n");
    check(&mut r, "GETRANGE k 10 20", "$0\r\n\r\n");
    check(&mut r, "GETRANGE nokey 0 1", "$0\r\n\r\n");
    check(&mut r, "GETRANGE nokey a 1", NOT_INT);
    check(&mut r, "SUBSTR k 0 1", "$2\r\nhe\r\n");
    // SETRANGE
    check(&mut r, "SETRANGE k 1 EL", ":5\r\n");
    check(&mut r, "GET k", "$5\r\nhELlo\r\n");
    check(&mut r, "SETRANGE k 7 !", ":8\r\n");
    check(&mut r, "GET k", "$8\r\nhELlo\x00\x00!\r\n");
    check(&mut r, "SETRANGE new 2 ab", ":4\r\n");
    check(&mut r, "GET new", "$4\r\n\x00\x00ab\r\n");
    check_bin(&mut r, &[b"SETRANGE", b"k", b"3", b""], b":8\r\n");
    check_bin(&mut r, &[b"SETRANGE", b"none", b"3", b""], b":0\r\n");
    check(&mut r, "EXISTS none", ":0\r\n");
    check(
        &mut r,
        "SETRANGE k -1 x",
        &err_line("ERR offset is out of range"),
    );
    let too_long = err_line("ERR string exceeds maximum allowed size (proto-max-bulk-len)");
    check(&mut r, "SETRANGE k 536870912 x", &too_long);
    check(&mut r, "SETRANGE k 536870911 xy", &too_long);
    // LCS
    check(&mut r, "MSET a ohmytext b mynewtext", "+OK\r\n");
    check(&mut r, "LCS a b", "$6\r\nmytext\r\n");
    check(&mut r, "LCS a b LEN", ":6\r\n");
    check(&mut r, "LCS a nokey", "$0\r\n\r\n");
    check(
        &mut r,
        "LCS a b IDX",
        "*4\r\n$7\r\nmatches\r\n*2\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n*2\r\n*2\r\n:2\r\n:3\r\n*2\r\n:0\r\n:1\r\n$3\r\nlen\r\n:6\r\n",
    );
    check(
        &mut r,
        "LCS a b IDX MINMATCHLEN 4 WITHMATCHLEN",
        "*4\r\n$7\r\nmatches\r\n*1\r\n*3\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n:4\r\n$3\r\nlen\r\n:6\r\n",
    );
    check(
        &mut r,
        "LCS a b LEN IDX",
        &err_line("ERR If you want both the length and indexes, please just use IDX."),
    );
    check(&mut r, "LCS a b FOO", SYNTAX);
    check(&mut r, "LCS a b MINMATCHLEN", SYNTAX);
    check(&mut r, "LCS a b MINMATCHLEN x", NOT_INT);
}

#[test]
fn resp3_replies() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(&req(&[b"HELLO", b"3"]));
    // Drain the HELLO map (its exact bytes belong to the connection tests).
    let mut buf = [0u8; 512];
    use std::io::Read;
    let _ = r.s.read(&mut buf).unwrap();
    check(&mut r, "GET nokey", "_\r\n");
    check(&mut r, "SET k v NX", "+OK\r\n");
    check(&mut r, "SET k v NX", "_\r\n");
    check(&mut r, "SET k w GET", "$1\r\nv\r\n");
    check(&mut r, "MGET k nokey", "*2\r\n$1\r\nw\r\n_\r\n");
    check(&mut r, "MSET a ohmytext b mynewtext", "+OK\r\n");
    check(
        &mut r,
        "LCS a b IDX MINMATCHLEN 4",
        "%2\r\n$7\r\nmatches\r\n*1\r\n*2\r\n*2\r\n:4\r\n:7\r\n*2\r\n:5\r\n:8\r\n$3\r\nlen\r\n:6\r\n",
    );
    check(&mut r, "INCRBYFLOAT f 1.5", "$3\r\n1.5\r\n");
    check(
        &mut r,
        "BITFIELD k OVERFLOW FAIL INCRBY u2 100 8",
        "*1\r\n_\r\n",
    );
}

#[test]
fn setbit_getbit_bitcount_bitpos() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "SETBIT k 7 1", ":0\r\n");
    check(&mut r, "SETBIT k 7 1", ":1\r\n");
    check(&mut r, "GET k", "$1\r\n\x01\r\n");
    check(&mut r, "SETBIT k 8 1", ":0\r\n");
    check_bin(&mut r, &[b"GET", b"k"], b"$2\r\n\x01\x80\r\n");
    check(&mut r, "GETBIT k 8", ":1\r\n");
    check(&mut r, "GETBIT k 9", ":0\r\n");
    check(&mut r, "GETBIT k 1000", ":0\r\n");
    check(&mut r, "GETBIT nokey 0", ":0\r\n");
    check(&mut r, "SETBIT k 7 0", ":1\r\n");
    let bit = err_line("ERR bit is not an integer or out of range");
    let off = err_line("ERR bit offset is not an integer or out of range");
    check(&mut r, "SETBIT k 0 2", &bit);
    check(&mut r, "SETBIT k 0 -1", &bit);
    check(&mut r, "SETBIT k 0 abc", &bit);
    check(&mut r, "SETBIT k -1 1", &off);
    check(&mut r, "SETBIT k 4294967296 1", &off);
    check(&mut r, "GETBIT k abc", &off);
    // BITCOUNT
    check_bin(&mut r, &[b"SET", b"e", b"\x00\x00\x0f\xff"], b"+OK\r\n");
    check(&mut r, "BITCOUNT e", ":12\r\n");
    check(&mut r, "BITCOUNT e 2 2", ":4\r\n");
    check(&mut r, "BITCOUNT e -2 -1", ":12\r\n");
    check(&mut r, "BITCOUNT e -1 -2", ":0\r\n");
    check(&mut r, "BITCOUNT e 0 -1 BIT", ":12\r\n");
    check(&mut r, "BITCOUNT e 20 23 BIT", ":4\r\n");
    check(&mut r, "BITCOUNT e 19 24 BIT", ":5\r\n");
    check(&mut r, "BITCOUNT e 22 22 BIT", ":1\r\n");
    check(&mut r, "BITCOUNT e 31 31 BIT", ":1\r\n");
    check(&mut r, "BITCOUNT e 2 2 FOO", SYNTAX);
    check(&mut r, "BITCOUNT e 1", SYNTAX);
    check(&mut r, "BITCOUNT e a b", NOT_INT);
    // A missing key answers 0 before the arguments are looked at (7.0).
    check(&mut r, "BITCOUNT nokey a b", ":0\r\n");
    check(&mut r, "BITCOUNT nokey 1", ":0\r\n");
    // BITPOS
    check(&mut r, "BITPOS e 1", ":20\r\n");
    check(&mut r, "BITPOS e 0", ":0\r\n");
    check(&mut r, "BITPOS e 1 3", ":24\r\n");
    check(&mut r, "BITPOS e 0 3", ":32\r\n");
    check(&mut r, "BITPOS e 0 3 -1", ":-1\r\n");
    check(&mut r, "BITPOS e 1 0 19 BIT", ":-1\r\n");
    check(&mut r, "BITPOS e 1 21 BIT", NOT_INT);
    check(&mut r, "BITPOS e 1 17 23 BIT", ":20\r\n");
    check(&mut r, "BITPOS e 0 20 31 BIT", ":-1\r\n");
    check(&mut r, "BITPOS e 1 -3 -1 BIT", ":29\r\n");
    check(
        &mut r,
        "BITPOS e 2",
        &err_line("ERR The bit argument must be 1 or 0."),
    );
    check(
        &mut r,
        "BITPOS nokey 2",
        &err_line("ERR The bit argument must be 1 or 0."),
    );
    check(&mut r, "BITPOS nokey 1", ":-1\r\n");
    check(&mut r, "BITPOS nokey 0", ":0\r\n");
    check(&mut r, "BITPOS nokey 1 a", ":-1\r\n");
    check(&mut r, "BITPOS e 1 a", NOT_INT);
    check(&mut r, "BITPOS e 1 0 1 BIT x", SYNTAX);
    check(&mut r, "BITPOS e 1 0 1 FOO", SYNTAX);
    check_bin(&mut r, &[b"SET", b"empty", b""], b"+OK\r\n");
    check(&mut r, "BITPOS empty 0", ":-1\r\n");
    check(&mut r, "BITPOS empty 1", ":-1\r\n");
    check_bin(&mut r, &[b"SET", b"ff", b"\xff\xff"], b"+OK\r\n");
    check(&mut r, "BITPOS ff 0", ":16\r\n");
    check(&mut r, "BITPOS ff 0 0 -1", ":-1\r\n");
    // SETBIT grows the string with zero bytes.
    check(&mut r, "SETBIT g 100 1", ":0\r\n");
    check(&mut r, "STRLEN g", ":13\r\n");
    check(&mut r, "BITPOS g 1", ":100\r\n");
    check(&mut r, "BITCOUNT g", ":1\r\n");
}

#[test]
fn bitop() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "MSET a abc b a", "+OK\r\n");
    check(&mut r, "BITOP AND d a b", ":3\r\n");
    check(&mut r, "GET d", "$3\r\na\x00\x00\r\n");
    check(&mut r, "BITOP OR d a b", ":3\r\n");
    check(&mut r, "GET d", "$3\r\nabc\r\n");
    check(&mut r, "BITOP XOR d a b", ":3\r\n");
    check(&mut r, "GET d", "$3\r\n\x00bc\r\n");
    check_bin(&mut r, &[b"SET", b"n", b"\x0f\xf0"], b"+OK\r\n");
    check(&mut r, "BITOP NOT d n", ":2\r\n");
    check_bin(&mut r, &[b"GET", b"d"], b"$2\r\n\xf0\x0f\r\n");
    check(&mut r, "BITOP AND d a nokey", ":3\r\n");
    check(&mut r, "GET d", "$3\r\n\x00\x00\x00\r\n");
    check(&mut r, "BITOP foo d a", SYNTAX);
    check(
        &mut r,
        "BITOP NOT d a b",
        &err_line("ERR BITOP NOT must be called with a single source key."),
    );
    // All sources empty: the destination is deleted.
    check(&mut r, "BITOP AND d nokey nokey2", ":0\r\n");
    check(&mut r, "EXISTS d", ":0\r\n");
    check(
        &mut r,
        "BITOP",
        &err_line("ERR wrong number of arguments for 'bitop' command"),
    );
}

#[test]
fn bitfield() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let bad_type = err_line(
        "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is.",
    );
    check(&mut r, "BITFIELD k GET I8 0", &bad_type);
    check(&mut r, "BITFIELD k GET u64 0", &bad_type);
    check(&mut r, "BITFIELD k GET i65 0", &bad_type);
    check(&mut r, "BITFIELD k GET i0 0", &bad_type);
    check(
        &mut r,
        "BITFIELD k GET i8 -1",
        &err_line("ERR bit offset is not an integer or out of range"),
    );
    check(
        &mut r,
        "BITFIELD k OVERFLOW foo",
        &err_line("ERR Invalid OVERFLOW type specified"),
    );
    check(&mut r, "BITFIELD k FOO", SYNTAX);
    check(&mut r, "BITFIELD k GET i8", SYNTAX);
    check(&mut r, "BITFIELD k SET i8 0", SYNTAX);
    check(&mut r, "BITFIELD k SET i8 0 abc", NOT_INT);
    check(&mut r, "BITFIELD k", "*0\r\n");
    check(&mut r, "BITFIELD k GET u8 0", "*1\r\n:0\r\n");
    check(&mut r, "EXISTS k", ":0\r\n");
    check(
        &mut r,
        "BITFIELD k GET i8 0 SET u8 0 255 GET u8 0 GET i8 0",
        "*4\r\n:0\r\n:0\r\n:255\r\n:-1\r\n",
    );
    check(
        &mut r,
        "BITFIELD k SET i8 0 128 GET i8 0",
        "*2\r\n:-1\r\n:-128\r\n",
    );
    check(&mut r, "BITFIELD k INCRBY i8 0 -300", "*1\r\n:84\r\n");
    check(
        &mut r,
        "BITFIELD k OVERFLOW SAT INCRBY i8 0 -300",
        "*1\r\n:-128\r\n",
    );
    check(&mut r, "BITFIELD k SET u8 0 -1", "*1\r\n:128\r\n");
    check(
        &mut r,
        "BITFIELD k OVERFLOW SAT SET u8 0 -1 GET u8 0",
        "*2\r\n:255\r\n:255\r\n",
    );
    check(
        &mut r,
        "BITFIELD k OVERFLOW FAIL INCRBY u8 0 1 INCRBY u8 0 -1 GET u8 0",
        "*3\r\n$-1\r\n:254\r\n:254\r\n",
    );
    check(
        &mut r,
        "BITFIELD s INCRBY i64 0 9223372036854775807 INCRBY i64 0 10",
        "*2\r\n:9223372036854775807\r\n:-9223372036854775799\r\n",
    );
    check(
        &mut r,
        "BITFIELD s2 OVERFLOW SAT INCRBY i64 0 9223372036854775807 INCRBY i64 0 10",
        "*2\r\n:9223372036854775807\r\n:9223372036854775807\r\n",
    );
    // #N offsets are multiplied by the type width.
    check(
        &mut r,
        "BITFIELD h SET u8 #2 65 GET u8 16 GET u16 #1",
        "*3\r\n:0\r\n:65\r\n:16640\r\n",
    );
    check(&mut r, "GET h", "$3\r\n\x00\x00A\r\n");
    // Unaligned fields.
    check(
        &mut r,
        "BITFIELD u SET u5 3 31 GET u8 0 GET i5 3",
        "*3\r\n:0\r\n:31\r\n:-1\r\n",
    );
    check(&mut r, "GET u", "$1\r\n\x1f\r\n");
    check(&mut r, "BITFIELD u SET u4 6 15", "*1\r\n:12\r\n");
    check_bin(&mut r, &[b"GET", b"u"], b"$2\r\n\x1f\xc0\r\n");
    // A failed write still creates the key, zero-padded up to the field.
    check(
        &mut r,
        "BITFIELD f OVERFLOW FAIL INCRBY u2 100 8",
        "*1\r\n$-1\r\n",
    );
    check(&mut r, "STRLEN f", ":13\r\n");
    // BITFIELD_RO
    check(&mut r, "BITFIELD_RO h GET u8 16", "*1\r\n:65\r\n");
    check(
        &mut r,
        "BITFIELD_RO h SET u8 0 1",
        &err_line("ERR BITFIELD_RO only supports the GET subcommand"),
    );
}

#[test]
fn keyspace_events_and_watch() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut sub = s.raw();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KE$g")
        .query(&mut c)
        .unwrap();
    sub.send(&req(&[b"PSUBSCRIBE", b"__keyevent@0__:*"]));
    let _ =
        sub.read_exact_len("*3\r\n$10\r\npsubscribe\r\n$16\r\n__keyevent@0__:*\r\n:1\r\n".len());
    let run = |c: &mut redis::Connection, args: &[&str]| {
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        let _: redis::Value = cmd.query(c).unwrap();
    };
    run(&mut c, &["SET", "k", "1", "EX", "100"]);
    run(&mut c, &["INCR", "k"]);
    run(&mut c, &["INCRBYFLOAT", "k", "1.5"]);
    run(&mut c, &["SETBIT", "b", "1", "1"]);
    run(&mut c, &["SETBIT", "b", "1", "1"]); // no change: no event
    run(&mut c, &["APPEND", "k", "x"]);
    run(&mut c, &["GETDEL", "k"]);
    let expected: Vec<(&str, &str)> = vec![
        ("set", "k"),
        ("expire", "k"),
        ("incrby", "k"),
        ("incrbyfloat", "k"),
        ("setbit", "b"),
        ("append", "k"),
        ("del", "k"),
    ];
    let mut want = Vec::new();
    for (ev, key) in &expected {
        let ch = format!("__keyevent@0__:{ev}");
        want.extend_from_slice(
            format!(
                "*4\r\n$8\r\npmessage\r\n$16\r\n__keyevent@0__:*\r\n${}\r\n{}\r\n${}\r\n{}\r\n",
                ch.len(),
                ch,
                key.len(),
                key
            )
            .as_bytes(),
        );
    }
    let got = sub.read_exact_len(want.len());
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(&want)
    );

    // WATCH sees string writes.
    let mut w = s.raw();
    check(&mut w, "WATCH wk", "+OK\r\n");
    run(&mut c, &["SET", "wk", "1"]);
    check(&mut w, "MULTI", "+OK\r\n");
    check(&mut w, "GET wk", "+QUEUED\r\n");
    check(&mut w, "EXEC", "*-1\r\n");
}

#[test]
fn multi_key_commands_across_shards() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let mut args: Vec<String> = Vec::new();
    for i in 0..200 {
        args.push(format!("key:{i}"));
        args.push(format!("val:{i}"));
    }
    let mut cmd = redis::cmd("MSET");
    for a in &args {
        cmd.arg(a);
    }
    let _: () = cmd.query(&mut c).unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("key:{i}")).collect();
    let vals: Vec<String> = redis::cmd("MGET").arg(&keys).query(&mut c).unwrap();
    assert_eq!(vals.len(), 200);
    for (i, v) in vals.iter().enumerate() {
        assert_eq!(v, &format!("val:{i}"));
    }
    let n: i64 = redis::cmd("BITOP")
        .arg("OR")
        .arg("dest")
        .arg(&keys)
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 7);
    let lcs: String = redis::cmd("LCS")
        .arg("key:1")
        .arg("key:150")
        .query(&mut c)
        .unwrap();
    assert_eq!(lcs, "val:1");
    let ok: i64 = redis::cmd("MSETNX")
        .arg("key:5")
        .arg("x")
        .arg("fresh")
        .arg("y")
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, 0);
}

#[test]
fn wrong_type_and_ttl_interplay() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "HSET l f v", ":1\r\n");
    for cmd in [
        "GET l",
        "SET l v GET",
        "SET l v NX GET",
        "GETSET l w",
        "GETDEL l",
        "GETEX l",
        "GETEX l EX 0",
        "APPEND l x",
        "STRLEN l",
        "INCR l",
        "DECRBY l 1",
        "INCRBYFLOAT l 1",
        "GETRANGE l 0 1",
        "SETRANGE l 0 x",
        "SETBIT l 0 1",
        "GETBIT l 0",
        "BITCOUNT l",
        "BITPOS l 1",
        "BITOP AND d a l",
        "BITFIELD l GET u8 0",
        "BITFIELD l SET u8 0 1",
        "BITFIELD_RO l GET u8 0",
    ] {
        check(&mut r, cmd, WRONGTYPE);
    }
    check(&mut r, "BITFIELD l FOO", SYNTAX);
    check(
        &mut r,
        "LCS a l",
        &err_line("ERR The specified keys must contain string values"),
    );
    check(&mut r, "MGET l nokey", "*2\r\n$-1\r\n$-1\r\n");
    check(&mut r, "MSETNX z 1 l 2", ":0\r\n");
    check(&mut r, "EXISTS z", ":0\r\n");
    // SET and BITOP replace a value of another type.
    check(&mut r, "SET l v XX", "+OK\r\n");
    check(&mut r, "TYPE l", "+string\r\n");
    check(&mut r, "HSET l2 f v", ":1\r\n");
    check(&mut r, "SET a abc", "+OK\r\n");
    check(&mut r, "BITOP OR l2 a", ":3\r\n");
    check(&mut r, "TYPE l2", "+string\r\n");
    check(&mut r, "HSET l3 f v", ":1\r\n");
    check(&mut r, "MSET l3 v", "+OK\r\n");
    check(&mut r, "GET l3", "$1\r\nv\r\n");

    // TTL interplay.
    check(&mut r, "SETEX k 100 v", "+OK\r\n");
    check(&mut r, "TTL k", ":100\r\n");
    check(&mut r, "GETSET k w", "$1\r\nv\r\n");
    check(&mut r, "TTL k", ":-1\r\n");
    check(&mut r, "GETEX k EX 100", "$1\r\nw\r\n");
    check(&mut r, "TTL k", ":100\r\n");
    check(&mut r, "GETEX k PERSIST", "$1\r\nw\r\n");
    check(&mut r, "TTL k", ":-1\r\n");
    check(&mut r, "SET t v EX 100", "+OK\r\n");
    check(&mut r, "APPEND t w", ":2\r\n");
    check(&mut r, "SETRANGE t 0 x", ":2\r\n");
    check(&mut r, "SETBIT t 0 1", ":0\r\n");
    check(&mut r, "BITFIELD t SET u8 8 65", "*1\r\n:119\r\n");
    check(&mut r, "TTL t", ":100\r\n");
    check(&mut r, "SET t 5 KEEPTTL", "+OK\r\n");
    check(&mut r, "INCRBY t 5", ":10\r\n");
    check(&mut r, "INCRBYFLOAT t 0.5", "$4\r\n10.5\r\n");
    check(&mut r, "TTL t", ":100\r\n");
    check(&mut r, "SET t v", "+OK\r\n");
    check(&mut r, "TTL t", ":-1\r\n");
    check(&mut r, "SET d x EX 100", "+OK\r\n");
    check(&mut r, "BITOP OR d a", ":3\r\n");
    check(&mut r, "TTL d", ":-1\r\n");
    check(&mut r, "SET m x EX 100", "+OK\r\n");
    check(&mut r, "MSET m y", "+OK\r\n");
    check(&mut r, "TTL m", ":-1\r\n");
}

/// INCRBYFLOAT adds in long double and prints with "%.17Lf", as Redis does:
/// the replies below are redis-server 7.0.15's (an f64 sum would print
/// 0.30000000000000004 and 5001.1).
#[test]
fn incrbyfloat_matches_redis_long_double_results() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "SET f 0.1", "+OK\r\n");
    check(&mut r, "INCRBYFLOAT f 0.2", "$3\r\n0.3\r\n");
    check(&mut r, "GET f", "$3\r\n0.3\r\n");
    check(&mut r, "INCRBYFLOAT g 5.0e3", "$4\r\n5000\r\n");
    check(
        &mut r,
        "INCRBYFLOAT g 1.1",
        "$22\r\n5001.10000000000000009\r\n",
    );
    check(&mut r, "HINCRBYFLOAT h x 0.1", "$3\r\n0.1\r\n");
    check(&mut r, "HINCRBYFLOAT h x 0.2", "$3\r\n0.3\r\n");
    check(&mut r, "SET huge 1e4932", "+OK\r\n");
    check(
        &mut r,
        "INCRBYFLOAT huge 1e4932",
        &err_line("ERR increment would produce NaN or Infinity"),
    );
    check(&mut r, "SET bad 1x", "+OK\r\n");
    check(
        &mut r,
        "INCRBYFLOAT bad 1",
        &err_line("ERR value is not a valid float"),
    );
    check(
        &mut r,
        "INCRBYFLOAT f nan",
        &err_line("ERR value is not a valid float"),
    );
    check(&mut r, "GET f", "$3\r\n0.3\r\n");
}
