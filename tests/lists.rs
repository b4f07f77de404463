//! List commands against the real binary: replies checked byte for byte on
//! raw sockets (RESP2 and RESP3), and the blocking pops exercised with
//! several clients (FIFO service, timeouts, chains, MULTI, concurrency).

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::{
    check, err_line, info_field, wait_for, words, Raw, Server, NOT_INT, SYNTAX, WRONGTYPE,
};

/// Sends a command on `r` without waiting for its reply.
fn send(r: &mut Raw, text: &str) {
    r.send(&words(text));
}

fn blocked_clients(r: &mut Raw) -> usize {
    send(r, "INFO clients");
    let info = r.read_reply();
    info_field(&info, "blocked_clients")
        .and_then(|v| v.parse().ok())
        .expect("blocked_clients in INFO")
}

fn wait_blocked(r: &mut Raw, n: usize) {
    assert!(
        wait_for(Duration::from_secs(10), || blocked_clients(r) == n),
        "expected {n} blocked clients"
    );
}

#[test]
fn push_pop_and_null_shapes_resp2() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "LPUSHX l a", ":0\r\n");
    check(&mut r, "RPUSHX l a", ":0\r\n");
    check(&mut r, "EXISTS l", ":0\r\n");
    check(&mut r, "LPUSH l a b c", ":3\r\n");
    check(&mut r, "RPUSH l d e", ":5\r\n");
    check(&mut r, "LPUSHX l z", ":6\r\n");
    check(&mut r, "RPUSHX l y x", ":8\r\n");
    check(
        &mut r,
        "LRANGE l 0 -1",
        "*8\r\n$1\r\nz\r\n$1\r\nc\r\n$1\r\nb\r\n$1\r\na\r\n$1\r\nd\r\n$1\r\ne\r\n$1\r\ny\r\n$1\r\nx\r\n",
    );
    check(&mut r, "LLEN l", ":8\r\n");
    check(&mut r, "LLEN nokey", ":0\r\n");
    check(&mut r, "LPOP l", "$1\r\nz\r\n");
    check(&mut r, "RPOP l", "$1\r\nx\r\n");
    check(&mut r, "LPOP l 2", "*2\r\n$1\r\nc\r\n$1\r\nb\r\n");
    check(&mut r, "RPOP l 2", "*2\r\n$1\r\ny\r\n$1\r\ne\r\n");
    check(&mut r, "LPOP l 0", "*0\r\n");
    check(&mut r, "RPOP l 100", "*2\r\n$1\r\nd\r\n$1\r\na\r\n");
    check(&mut r, "EXISTS l", ":0\r\n");
    // Missing key: a null bulk without count, a null array with one.
    check(&mut r, "LPOP l", "$-1\r\n");
    check(&mut r, "RPOP l", "$-1\r\n");
    check(&mut r, "LPOP l 0", "*-1\r\n");
    check(&mut r, "RPOP l 3", "*-1\r\n");
    check(
        &mut r,
        "LPOP l -1",
        &err_line("ERR value is out of range, must be positive"),
    );
    check(
        &mut r,
        "RPOP l x",
        &err_line("ERR value is out of range, must be positive"),
    );
    check(
        &mut r,
        "LPOP l 1 2",
        &err_line("ERR wrong number of arguments for 'lpop' command"),
    );
    check(
        &mut r,
        "LPUSH l",
        &err_line("ERR wrong number of arguments for 'lpush' command"),
    );
}

#[test]
fn null_shapes_resp3() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.hello3();
    check(&mut r, "LPOP nokey", "_\r\n");
    check(&mut r, "RPOP nokey 2", "_\r\n");
    check(&mut r, "LINDEX nokey 0", "_\r\n");
    check(&mut r, "LPOS nokey a", "_\r\n");
    check(&mut r, "LPOS nokey a COUNT 0", "*0\r\n");
    check(&mut r, "RPOPLPUSH nokey d", "_\r\n");
    check(&mut r, "LMPOP 1 nokey LEFT", "_\r\n");
    check(&mut r, "BLPOP nokey 0.01", "_\r\n");
    check(&mut r, "BLMOVE nokey d LEFT LEFT 0.01", "_\r\n");
    check(&mut r, "BLMPOP 0.01 1 nokey LEFT", "_\r\n");
    check(&mut r, "RPUSH l a b", ":2\r\n");
    check(&mut r, "LPOP l 0", "*0\r\n");
    check(&mut r, "BLPOP l 0", "*2\r\n$1\r\nl\r\n$1\r\na\r\n");
    check(
        &mut r,
        "BLMPOP 0 2 nokey l RIGHT COUNT 5",
        "*2\r\n$1\r\nl\r\n*1\r\n$1\r\nb\r\n",
    );
    check(&mut r, "MULTI", "+OK\r\n");
    check(&mut r, "BLPOP nokey 0", "+QUEUED\r\n");
    check(&mut r, "BRPOPLPUSH nokey d 0", "+QUEUED\r\n");
    check(&mut r, "EXEC", "*2\r\n_\r\n_\r\n");
}

#[test]
fn timeouts_reply_null_array_resp2() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    for c in [
        "BLPOP nokey 0.01",
        "BRPOP nokey other 0.01",
        "BRPOPLPUSH nokey d 0.01",
        "BLMOVE nokey d LEFT RIGHT 0.01",
        "BLMPOP 0.01 1 nokey LEFT",
    ] {
        let t = Instant::now();
        check(&mut r, c, "*-1\r\n");
        assert!(
            t.elapsed() >= Duration::from_millis(10),
            "{c} returned early"
        );
        assert!(t.elapsed() < Duration::from_secs(3), "{c} took too long");
    }
    // Inside MULTI nothing blocks: BLPOP-like replies a null array, BLMOVE a null bulk.
    check(&mut r, "MULTI", "+OK\r\n");
    for c in [
        "BLPOP nokey 0",
        "BRPOP nokey 0",
        "BRPOPLPUSH nokey d 0",
        "BLMOVE nokey d LEFT LEFT 0",
        "BLMPOP 0 1 nokey LEFT",
    ] {
        check(&mut r, c, "+QUEUED\r\n");
    }
    check(&mut r, "EXEC", "*5\r\n*-1\r\n*-1\r\n$-1\r\n$-1\r\n*-1\r\n");
}

#[test]
fn timeout_argument_errors() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let not_float = err_line("ERR timeout is not a float or out of range");
    let negative = err_line("ERR timeout is negative");
    check(&mut r, "BLPOP k abc", &not_float);
    check(&mut r, "BLPOP k nan", &not_float);
    check(&mut r, "BLPOP k 1x", &not_float);
    check(&mut r, "BLPOP k -1", &negative);
    check(&mut r, "BLPOP k -0.01", &negative);
    // Like Redis on x86-64: out of the 64-bit range casts to LLONG_MIN.
    check(&mut r, "BLPOP k inf", &negative);
    check(&mut r, "BLPOP k 1e300", &negative);
    check(&mut r, "BRPOPLPUSH a b -1", &negative);
    check(&mut r, "BLMOVE a b LEFT UP 1", SYNTAX);
    check(&mut r, "BLMOVE a b LEFT LEFT x", &not_float);
    check(&mut r, "BLMPOP -1 1 k LEFT", &negative);
    // numkeys is checked before the timeout.
    check(
        &mut r,
        "BLMPOP -1 0 k LEFT",
        &err_line("ERR numkeys should be greater than 0"),
    );
    // Hexadecimal floats parse like strtold.
    let t = Instant::now();
    check(&mut r, "BLPOP k 0x1p-6", "*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(15));
}

#[test]
fn index_range_and_edits() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "RPUSH l a b c a d a", ":6\r\n");
    check(&mut r, "LINDEX l 0", "$1\r\na\r\n");
    check(&mut r, "LINDEX l -2", "$1\r\nd\r\n");
    check(&mut r, "LINDEX l 6", "$-1\r\n");
    check(&mut r, "LINDEX l -7", "$-1\r\n");
    check(&mut r, "LINDEX l x", NOT_INT);
    // The key is looked up before the index is parsed.
    check(&mut r, "LINDEX nokey x", "$-1\r\n");
    check(&mut r, "LRANGE l -100 1", "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    check(&mut r, "LRANGE l 4 100", "*2\r\n$1\r\nd\r\n$1\r\na\r\n");
    check(&mut r, "LRANGE l 3 1", "*0\r\n");
    check(&mut r, "LRANGE l 6 7", "*0\r\n");
    check(&mut r, "LRANGE nokey 0 -1", "*0\r\n");
    check(&mut r, "LRANGE nokey x 1", NOT_INT);

    check(&mut r, "LINSERT l BEFORE c X", ":7\r\n");
    check(&mut r, "LINSERT l after a Y", ":8\r\n");
    check(&mut r, "LINSERT l AFTER zz Y", ":-1\r\n");
    check(&mut r, "LINSERT nokey AFTER a Y", ":0\r\n");
    check(&mut r, "LINSERT l MIDDLE a Y", SYNTAX);
    check(
        &mut r,
        "LRANGE l 0 -1",
        "*8\r\n$1\r\na\r\n$1\r\nY\r\n$1\r\nb\r\n$1\r\nX\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nd\r\n$1\r\na\r\n",
    );

    check(&mut r, "LREM l -1 a", ":1\r\n");
    check(&mut r, "LREM l 1 a", ":1\r\n");
    check(&mut r, "LREM l 0 zz", ":0\r\n");
    check(&mut r, "LREM l x a", NOT_INT);
    check(&mut r, "LREM nokey 0 a", ":0\r\n");
    check(
        &mut r,
        "LRANGE l 0 -1",
        "*6\r\n$1\r\nY\r\n$1\r\nb\r\n$1\r\nX\r\n$1\r\nc\r\n$1\r\na\r\n$1\r\nd\r\n",
    );
    check(&mut r, "LREM l 0 a", ":1\r\n");

    check(&mut r, "LSET l 0 first", "+OK\r\n");
    check(&mut r, "LSET l -1 last", "+OK\r\n");
    check(&mut r, "LSET l 5 x", &err_line("ERR index out of range"));
    check(&mut r, "LSET l -6 x", &err_line("ERR index out of range"));
    check(&mut r, "LSET l x x", NOT_INT);
    check(&mut r, "LSET nokey 0 x", &err_line("ERR no such key"));
    check(&mut r, "LSET nokey x x", &err_line("ERR no such key"));
    check(&mut r, "LINDEX l 0", "$5\r\nfirst\r\n");
    check(&mut r, "LINDEX l 4", "$4\r\nlast\r\n");

    check(&mut r, "LTRIM l 1 -2", "+OK\r\n");
    check(
        &mut r,
        "LRANGE l 0 -1",
        "*3\r\n$1\r\nb\r\n$1\r\nX\r\n$1\r\nc\r\n",
    );
    check(&mut r, "LTRIM l x 1", NOT_INT);
    check(&mut r, "LTRIM nokey 0 1", "+OK\r\n");
    check(&mut r, "LTRIM l 2 1", "+OK\r\n");
    check(&mut r, "EXISTS l", ":0\r\n");
}

#[test]
fn lpos_options() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "RPUSH l a b c 1 2 3 c c", ":8\r\n");
    check(&mut r, "LPOS l c", ":2\r\n");
    check(&mut r, "LPOS l c RANK 2", ":6\r\n");
    check(&mut r, "LPOS l c RANK -1", ":7\r\n");
    check(&mut r, "LPOS l c RANK 4", "$-1\r\n");
    check(&mut r, "LPOS l c COUNT 0", "*3\r\n:2\r\n:6\r\n:7\r\n");
    check(&mut r, "LPOS l c COUNT 2 RANK -1", "*2\r\n:7\r\n:6\r\n");
    check(&mut r, "LPOS l c COUNT 0 MAXLEN 3", "*1\r\n:2\r\n");
    check(&mut r, "LPOS l c COUNT 0 MAXLEN 7 RANK 2", "*1\r\n:6\r\n");
    check(&mut r, "LPOS l x COUNT 2", "*0\r\n");
    check(&mut r, "LPOS nokey x COUNT 2", "*0\r\n");
    check(&mut r, "LPOS nokey x", "$-1\r\n");
    check(
        &mut r,
        "LPOS l c RANK 0",
        &err_line("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list"),
    );
    check(&mut r, "LPOS l c RANK x", NOT_INT);
    check(&mut r, "LPOS l c RANK -9223372036854775808", ":7\r\n");
    check(
        &mut r,
        "LPOS l c COUNT -1",
        &err_line("ERR COUNT can't be negative"),
    );
    check(
        &mut r,
        "LPOS l c COUNT x",
        &err_line("ERR COUNT can't be negative"),
    );
    check(
        &mut r,
        "LPOS l c MAXLEN -1",
        &err_line("ERR MAXLEN can't be negative"),
    );
    check(&mut r, "LPOS l c RANK", SYNTAX);
    check(&mut r, "LPOS l c FOO 1", SYNTAX);
}

#[test]
fn moves_and_lmpop() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "RPUSH src 1 2 3", ":3\r\n");
    check(&mut r, "RPOPLPUSH src dst", "$1\r\n3\r\n");
    check(&mut r, "LMOVE src dst LEFT RIGHT", "$1\r\n1\r\n");
    check(&mut r, "LRANGE dst 0 -1", "*2\r\n$1\r\n3\r\n$1\r\n1\r\n");
    check(&mut r, "LMOVE src dst up LEFT", SYNTAX);
    check(&mut r, "LMOVE src dst LEFT down", SYNTAX);
    // A list moved onto itself rotates; a single element survives it.
    check(&mut r, "LMOVE dst dst right left", "$1\r\n1\r\n");
    check(&mut r, "LRANGE dst 0 -1", "*2\r\n$1\r\n1\r\n$1\r\n3\r\n");
    check(&mut r, "LMOVE src src LEFT LEFT", "$1\r\n2\r\n");
    check(&mut r, "LRANGE src 0 -1", "*1\r\n$1\r\n2\r\n");
    check(&mut r, "RPOPLPUSH nokey dst", "$-1\r\n");
    check(&mut r, "SET str x", "+OK\r\n");
    check(&mut r, "RPOPLPUSH src str", WRONGTYPE);
    check(&mut r, "RPOPLPUSH str src", WRONGTYPE);
    // A missing source wins over a wrong-type destination.
    check(&mut r, "LMOVE nokey str LEFT LEFT", "$-1\r\n");
    check(&mut r, "LRANGE src 0 -1", "*1\r\n$1\r\n2\r\n");

    check(
        &mut r,
        "LMPOP 2 nokey dst LEFT",
        "*2\r\n$3\r\ndst\r\n*1\r\n$1\r\n1\r\n",
    );
    check(
        &mut r,
        "LMPOP 2 nokey dst RIGHT COUNT 10",
        "*2\r\n$3\r\ndst\r\n*1\r\n$1\r\n3\r\n",
    );
    check(&mut r, "LMPOP 1 dst LEFT", "*-1\r\n");
    check(&mut r, "LMPOP 2 nokey str LEFT", WRONGTYPE);
    check(
        &mut r,
        "LMPOP 2 src str LEFT",
        "*2\r\n$3\r\nsrc\r\n*1\r\n$1\r\n2\r\n",
    );
    let numkeys = err_line("ERR numkeys should be greater than 0");
    let count = err_line("ERR count should be greater than 0");
    check(&mut r, "LMPOP 0 a LEFT", &numkeys);
    check(&mut r, "LMPOP -1 a LEFT", &numkeys);
    check(&mut r, "LMPOP x a LEFT", &numkeys);
    check(&mut r, "LMPOP 2 a LEFT", SYNTAX);
    check(&mut r, "LMPOP 99999999999999999 a LEFT", SYNTAX);
    check(&mut r, "LMPOP 1 a MIDDLE", SYNTAX);
    check(&mut r, "LMPOP 1 a LEFT COUNT 0", &count);
    check(&mut r, "LMPOP 1 a LEFT COUNT x", &count);
    check(&mut r, "LMPOP 1 a LEFT COUNT", SYNTAX);
    check(&mut r, "LMPOP 1 a LEFT COUNT 1 COUNT 1", SYNTAX);
    check(&mut r, "LMPOP 1 a LEFT FOO", SYNTAX);
    check(&mut r, "BLMPOP 0 1 a LEFT COUNT 0", &count);
    check(&mut r, "BLMPOP 0 2 a LEFT", SYNTAX);
}

#[test]
fn wrongtype_everywhere() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    check(&mut r, "SET s x", "+OK\r\n");
    for c in [
        "LPUSH s a",
        "RPUSH s a",
        "LPUSHX s a",
        "RPUSHX s a",
        "LPOP s",
        "RPOP s 2",
        "LLEN s",
        "LINDEX s 0",
        "LINSERT s BEFORE a b",
        "LRANGE s 0 -1",
        "LREM s 0 a",
        "LSET s 0 a",
        "LTRIM s 0 1",
        "LPOS s a",
        "RPOPLPUSH s d",
        "LMOVE s d LEFT LEFT",
        "LMPOP 1 s LEFT",
        "BLPOP s 0",
        "BRPOP nokey s 0",
        "BRPOPLPUSH s d 0",
        "BLMOVE s d LEFT LEFT 0",
        "BLMPOP 0 1 s LEFT",
    ] {
        check(&mut r, c, WRONGTYPE);
    }
    // A non-empty list listed before the wrong-type key is popped first.
    check(&mut r, "RPUSH l a", ":1\r\n");
    check(&mut r, "BLPOP l s 0", "*2\r\n$1\r\nl\r\n$1\r\na\r\n");
}

// ---------------------------------------------------------------------------
// Blocking.

#[test]
fn blocked_client_served_when_key_created_later() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b = s.raw();
    send(&mut b, "BLPOP l1 l2 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPUSH l2 x y", ":2\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$2\r\nl2\r\n$1\r\nx\r\n");
    check(&mut r, "LRANGE l2 0 -1", "*1\r\n$1\r\ny\r\n");
    wait_blocked(&mut r, 0);

    // BRPOP / BLMPOP / BRPOPLPUSH likewise, in RESP3 for one of them.
    send(&mut b, "BRPOP l3 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPUSH l3 a b", ":2\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$2\r\nl3\r\n$1\r\nb\r\n");
    b.hello3();
    send(&mut b, "BLMPOP 0 2 l4 l5 RIGHT COUNT 2");
    wait_blocked(&mut r, 1);
    check(&mut r, "LPUSH l5 a b c", ":3\r\n");
    assert_eq!(
        b.read_reply(),
        "*2\r\n$2\r\nl5\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n"
    );
    send(&mut b, "BRPOPLPUSH l6 d6 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPUSH l6 v", ":1\r\n");
    assert_eq!(b.read_reply(), "$1\r\nv\r\n");
    check(&mut r, "LRANGE d6 0 -1", "*1\r\n$1\r\nv\r\n");
    check(&mut r, "EXISTS l6", ":0\r\n");
}

#[test]
fn blocked_clients_are_served_in_fifo_order() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut clients: Vec<Raw> = Vec::new();
    for i in 0..5 {
        let mut b = s.raw();
        // Mix the blocking pops; all wait on "q".
        match i % 3 {
            0 => send(&mut b, "BLPOP q 0"),
            1 => send(&mut b, "BLMPOP 0 1 q LEFT"),
            _ => send(&mut b, "BLPOP other q 0"),
        }
        wait_blocked(&mut r, i + 1);
        clients.push(b);
    }
    // One push of five elements: each client gets one, first blocked first served.
    check(&mut r, "RPUSH q e0 e1 e2 e3 e4", ":5\r\n");
    for (i, b) in clients.iter_mut().enumerate() {
        let got = b.read_reply();
        assert!(
            got.contains(&format!("e{i}")) && !got.contains(&format!("e{}", i + 1)),
            "client {i} got {got:?}"
        );
    }
    wait_blocked(&mut r, 0);
    check(&mut r, "EXISTS q", ":0\r\n");

    // One element at a time, still in order.
    for (i, c) in clients.iter_mut().take(3).enumerate() {
        let mut b = s.raw();
        send(&mut b, "BLPOP q 0");
        wait_blocked(&mut r, i + 1);
        *c = b;
    }
    for (i, c) in clients.iter_mut().take(3).enumerate() {
        check(&mut r, &format!("LPUSH q x{i}"), ":1\r\n");
        let got = c.read_reply();
        assert_eq!(got, format!("*2\r\n$1\r\nq\r\n$2\r\nx{i}\r\n"));
    }
}

#[test]
fn subsecond_timeout_and_no_busy_wait() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b = s.raw();
    let t = Instant::now();
    send(&mut b, "BLPOP q 0.2");
    assert_eq!(b.read_reply(), "*-1\r\n");
    let e = t.elapsed();
    assert!(e >= Duration::from_millis(200), "{e:?}");
    assert!(e < Duration::from_secs(2), "{e:?}");
    wait_blocked(&mut r, 0);
    // The client keeps working after a timeout, and the key was not touched.
    check(&mut r, "RPUSH q a", ":1\r\n");
    check(&mut b, "LLEN q", ":1\r\n");
}

#[test]
fn timed_out_clients_never_lose_elements() {
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let total = 1500;
    let done = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<String>();
    let mut poppers = Vec::new();
    for _ in 0..6 {
        let mut b = s.raw();
        let tx = tx.clone();
        let done = done.clone();
        poppers.push(std::thread::spawn(move || {
            // Tiny timeouts so that timeouts race with pushes all the time.
            while done.load(Ordering::Acquire) == 0 {
                send(&mut b, "BLPOP q 0.001");
                let got = b.read_reply();
                if got != "*-1\r\n" {
                    let v = got.rsplit("\r\n").nth(1).unwrap().to_string();
                    tx.send(v).unwrap();
                }
            }
        }));
    }
    drop(tx);
    let mut p = s.raw();
    for i in 0..total {
        send(&mut p, &format!("RPUSH q v{i}"));
        assert!(p.read_reply().starts_with(':'));
        if i % 100 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Let the poppers drain what is left, then stop them.
    let mut r = s.raw();
    assert!(wait_for(Duration::from_secs(20), || {
        send(&mut r, "LLEN q");
        r.read_reply() == ":0\r\n"
    }));
    done.store(1, Ordering::Release);
    for t in poppers {
        t.join().unwrap();
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for v in rx.iter() {
        *seen.entry(v).or_default() += 1;
    }
    assert_eq!(seen.len(), total, "every element delivered");
    assert!(seen.values().all(|&n| n == 1), "no element delivered twice");
}

#[test]
fn blmove_chains_and_wakeups_by_moves() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b1 = s.raw();
    let mut b2 = s.raw();
    let mut b3 = s.raw();
    send(&mut b1, "BLMOVE a b LEFT RIGHT 0");
    wait_blocked(&mut r, 1);
    send(&mut b2, "BRPOPLPUSH b c 0");
    wait_blocked(&mut r, 2);
    send(&mut b3, "BLPOP c 0");
    wait_blocked(&mut r, 3);
    check(&mut r, "RPUSH a x", ":1\r\n");
    assert_eq!(b1.read_reply(), "$1\r\nx\r\n");
    assert_eq!(b2.read_reply(), "$1\r\nx\r\n");
    assert_eq!(b3.read_reply(), "*2\r\n$1\r\nc\r\n$1\r\nx\r\n");
    check(&mut r, "EXISTS a b c", ":0\r\n");

    // A circular pair of BRPOPLPUSHes ends with the element back at the start.
    send(&mut b1, "BRPOPLPUSH l1 l2 0");
    wait_blocked(&mut r, 1);
    send(&mut b2, "BRPOPLPUSH l2 l1 0");
    wait_blocked(&mut r, 2);
    check(&mut r, "RPUSH l1 foo", ":1\r\n");
    assert_eq!(b1.read_reply(), "$3\r\nfoo\r\n");
    assert_eq!(b2.read_reply(), "$3\r\nfoo\r\n");
    check(&mut r, "LRANGE l1 0 -1", "*1\r\n$3\r\nfoo\r\n");
    check(&mut r, "EXISTS l2", ":0\r\n");

    // LMOVE and RPOPLPUSH from another client wake a waiter on the destination.
    send(&mut b1, "BLPOP w 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "LMOVE l1 w LEFT LEFT", "$3\r\nfoo\r\n");
    assert_eq!(b1.read_reply(), "*2\r\n$1\r\nw\r\n$3\r\nfoo\r\n");
    check(&mut r, "RPUSH src bar", ":1\r\n");
    send(&mut b1, "BRPOP w 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPOPLPUSH src w", "$3\r\nbar\r\n");
    assert_eq!(b1.read_reply(), "*2\r\n$1\r\nw\r\n$3\r\nbar\r\n");

    // Self-referential BLMOVE.
    send(&mut b1, "BLMOVE self self RIGHT LEFT 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPUSH self v", ":1\r\n");
    assert_eq!(b1.read_reply(), "$1\r\nv\r\n");
    check(&mut r, "LRANGE self 0 -1", "*1\r\n$1\r\nv\r\n");
}

#[test]
fn multi_exec_wakes_after_the_transaction() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b = s.raw();
    send(&mut b, "BLPOP k 0");
    wait_blocked(&mut r, 1);
    // LPUSH + DEL inside one transaction: nothing to serve, still blocked.
    check(&mut r, "MULTI", "+OK\r\n");
    check(&mut r, "LPUSH k a", "+QUEUED\r\n");
    check(&mut r, "DEL k", "+QUEUED\r\n");
    check(&mut r, "EXEC", "*2\r\n:1\r\n:1\r\n");
    // LPUSH + DEL + SET: the key is a string, still blocked.
    check(&mut r, "MULTI", "+OK\r\n");
    check(&mut r, "LPUSH k a", "+QUEUED\r\n");
    check(&mut r, "DEL k", "+QUEUED\r\n");
    check(&mut r, "SET k x", "+QUEUED\r\n");
    check(&mut r, "EXEC", "*3\r\n:1\r\n:1\r\n+OK\r\n");
    assert_eq!(blocked_clients(&mut r), 1);
    check(&mut r, "DEL k", ":1\r\n");
    // Three pushes in one transaction: the client sees the state after EXEC.
    check(&mut r, "MULTI", "+OK\r\n");
    check(&mut r, "LPUSH k a", "+QUEUED\r\n");
    check(&mut r, "LPUSH k b", "+QUEUED\r\n");
    check(&mut r, "LPUSH k c", "+QUEUED\r\n");
    check(&mut r, "EXEC", "*3\r\n:1\r\n:2\r\n:3\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$1\r\nk\r\n$1\r\nc\r\n");
    check(&mut r, "LRANGE k 0 -1", "*2\r\n$1\r\nb\r\n$1\r\na\r\n");
}

#[test]
fn same_key_several_times_and_type_changes() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b = s.raw();
    send(&mut b, "BLPOP l1 l2 l2 l1 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "LPUSH l2 b", ":1\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$2\r\nl2\r\n$1\r\nb\r\n");
    wait_blocked(&mut r, 0);
    check(&mut r, "LPUSH l1 a", ":1\r\n");
    check(&mut r, "LPUSH l2 b", ":1\r\n");
    check(
        &mut b,
        "BLPOP l1 l2 l2 l1 0",
        "*2\r\n$2\r\nl1\r\n$1\r\na\r\n",
    );

    // Blocked on a key that becomes a string, then a list.
    send(&mut b, "BRPOP t 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "SET t x", "+OK\r\n");
    check(&mut r, "DEL t", ":1\r\n");
    assert_eq!(blocked_clients(&mut r), 1);
    check(&mut r, "RPUSH t y", ":1\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$1\r\nt\r\n$1\r\ny\r\n");

    // Moved into place by RENAME.
    send(&mut b, "BLPOP foo 0");
    wait_blocked(&mut r, 1);
    check(&mut r, "RPUSH bob abc def", ":2\r\n");
    check(&mut r, "RENAME bob foo", "+OK\r\n");
    assert_eq!(b.read_reply(), "*2\r\n$3\r\nfoo\r\n$3\r\nabc\r\n");
}

#[test]
fn blmove_with_wrong_destination_type_when_served() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b1 = s.raw();
    let mut b2 = s.raw();
    check(&mut r, "SET target1 nolist", "+OK\r\n");
    send(&mut b1, "BRPOPLPUSH blist target1 0");
    wait_blocked(&mut r, 1);
    send(&mut b2, "BRPOPLPUSH blist target2 0");
    wait_blocked(&mut r, 2);
    check(&mut r, "RPUSH blist a b", ":2\r\n");
    // The first waiter fails with WRONGTYPE and takes nothing; the second is served.
    assert_eq!(b1.read_reply(), WRONGTYPE);
    assert_eq!(b2.read_reply(), "$1\r\nb\r\n");
    check(&mut r, "LRANGE blist 0 -1", "*1\r\n$1\r\na\r\n");
    check(&mut r, "LRANGE target2 0 -1", "*1\r\n$1\r\nb\r\n");
}

#[test]
fn disconnected_or_unblocked_client_takes_nothing() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    {
        let mut b = s.raw();
        send(&mut b, "BLPOP gone 0");
        wait_blocked(&mut r, 1);
    }
    wait_blocked(&mut r, 0);
    check(&mut r, "RPUSH gone x", ":1\r\n");
    check(&mut r, "LLEN gone", ":1\r\n");

    let mut b = s.raw();
    send(&mut b, "CLIENT ID");
    let id = b.read_reply();
    let id = id.trim_start_matches(':').trim();
    send(&mut b, "BLPOP k 0");
    wait_blocked(&mut r, 1);
    check(&mut r, &format!("CLIENT UNBLOCK {id}"), ":1\r\n");
    assert_eq!(b.read_reply(), "*-1\r\n");
    send(&mut b, "BLMOVE k d LEFT LEFT 0");
    wait_blocked(&mut r, 1);
    check(&mut r, &format!("CLIENT UNBLOCK {id} ERROR"), ":1\r\n");
    assert_eq!(
        b.read_reply(),
        "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
    );
    check(&mut r, "RPUSH k v", ":1\r\n");
    check(&mut r, "LLEN k", ":1\r\n");
}

#[test]
fn pipelined_push_then_block_keeps_fairness() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    let mut b1 = s.raw();
    let mut b2 = s.raw();
    send(&mut b1, "BLPOP mylist 0");
    wait_blocked(&mut r, 1);
    // One write carrying a push and a blocking pop: the earlier waiter wins.
    let mut buf = words("LPUSH mylist 1");
    buf.extend_from_slice(&words("BLPOP mylist 0"));
    b2.send(&buf);
    assert_eq!(b1.read_reply(), "*2\r\n$6\r\nmylist\r\n$1\r\n1\r\n");
    assert_eq!(b2.read_reply(), ":1\r\n");
    wait_blocked(&mut r, 1);
    check(&mut r, "LPUSH mylist 2", ":1\r\n");
    assert_eq!(b2.read_reply(), "*2\r\n$6\r\nmylist\r\n$1\r\n2\r\n");
}

#[test]
fn concurrent_pushers_and_blocked_poppers_deliver_exactly_once() {
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let pushers = 4;
    let per_pusher = 400;
    let total = pushers * per_pusher;
    let received = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::channel::<String>();
    let mut threads = Vec::new();
    // Bounded: a lost element makes the test fail instead of hang.
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..6 {
        let mut b = s.raw();
        let tx = tx.clone();
        let received = received.clone();
        threads.push(std::thread::spawn(move || loop {
            if received.load(Ordering::Acquire) >= total || Instant::now() > deadline {
                return;
            }
            // Different blocking pops over the same two keys.
            let c = match i % 4 {
                0 => "BLPOP k1 k2 0.05",
                1 => "BRPOP k2 k1 0.05",
                2 => "BLMPOP 0.05 2 k1 k2 LEFT COUNT 3",
                _ => "BLMOVE k2 mid RIGHT LEFT 0.05",
            };
            send(&mut b, c);
            let got = b.read_reply();
            if got.starts_with("*-1") {
                continue;
            }
            let vals: Vec<String> = got
                .split("\r\n")
                .filter(|t| t.starts_with('v'))
                .map(str::to_string)
                .collect();
            assert!(!vals.is_empty(), "unexpected reply {got:?}");
            received.fetch_add(vals.len(), Ordering::AcqRel);
            for v in vals {
                tx.send(v).unwrap();
            }
        }));
    }
    // A drainer moves everything that lands in "mid" back into the flow.
    {
        let mut b = s.raw();
        let tx = tx.clone();
        let received = received.clone();
        threads.push(std::thread::spawn(move || loop {
            if received.load(Ordering::Acquire) >= total || Instant::now() > deadline {
                return;
            }
            send(&mut b, "BRPOP mid 0.05");
            let got = b.read_reply();
            if got.starts_with("*-1") {
                continue;
            }
            // BLMOVE already counted it: this only empties "mid".
            let v = got.rsplit("\r\n").nth(1).unwrap().to_string();
            tx.send(format!("mid:{v}")).unwrap();
        }));
    }
    drop(tx);
    let mut push_threads = Vec::new();
    for p in 0..pushers {
        let mut c = s.raw();
        push_threads.push(std::thread::spawn(move || {
            for i in 0..per_pusher {
                let key = if i % 2 == 0 { "k1" } else { "k2" };
                let verb = if (i / 2) % 2 == 0 { "LPUSH" } else { "RPUSH" };
                send(&mut c, &format!("{verb} {key} v{p}_{i}"));
                let got = c.read_reply();
                assert!(got.starts_with(':'), "{got:?}");
            }
        }));
    }
    for t in push_threads {
        t.join().unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut from_mid: HashMap<String, usize> = HashMap::new();
    for v in rx.iter() {
        match v.strip_prefix("mid:") {
            Some(m) => *from_mid.entry(m.to_string()).or_default() += 1,
            None => *seen.entry(v).or_default() += 1,
        }
    }
    assert_eq!(seen.len(), total, "every element delivered");
    assert!(seen.values().all(|&n| n == 1), "no element delivered twice");
    assert!(from_mid.values().all(|&n| n == 1));
    let mut r = s.raw();
    check(&mut r, "EXISTS k1 k2", ":0\r\n");
}
