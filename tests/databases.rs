//! Databases end to end (memory tier): SELECT, MOVE, SWAPDB, COPY ... DB,
//! FLUSHDB/FLUSHALL, DBSIZE, SCAN, KEYS, RANDOMKEY per database, side by
//! side with a real redis-server; then what Redis does per database that
//! cannot be compared reply for reply: WATCH, keyspace notifications,
//! blocking pops, INFO keyspace, CLIENT LIST's `db=`, scripts, expiry,
//! eviction and memory accounting over every database.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::upstream::Upstream;
use common::{assert_err, info_field, q, wait_for, Server};
use redis::{Connection, Value};

/// A command's outcome, comparable across servers.
/// Arguments are split at whitespace (no quoting: a script has no spaces).
fn outcome(c: &mut Connection, line: &str) -> String {
    let args: Vec<&str> = line.split_whitespace().collect();
    match common::command(&args).query::<Value>(c) {
        Ok(v) => format!("{v:?}"),
        Err(e) => format!(
            "ERR {} {}",
            e.code().unwrap_or("?"),
            e.detail().unwrap_or("")
        ),
    }
}

/// Runs `script` (one command a line) on jcache and on redis-server, each
/// on one connection, and asserts every reply is the same.
fn same_as_redis(script: &str) {
    let s = Server::start(&[]);
    let r = Upstream::start();
    let mut j = s.client();
    let mut rc = r.client();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (a, b) = (outcome(&mut j, line), outcome(&mut rc, line));
        assert_eq!(a, b, "{line}: jcache {a} vs redis-server {b}");
        assert!(!a.contains("compiling script"), "{line}: {a}");
    }
}

#[test]
fn select_move_copy_swapdb_flushdb_match_redis() {
    same_as_redis(
        "
        SELECT 3
        SET a 1
        DBSIZE
        SELECT 0
        DBSIZE
        GET a
        SELECT 3
        MOVE a 5
        MOVE a 3
        MOVE nokey 4
        MOVE a 16
        MOVE a -1
        MOVE a x
        SELECT 5
        GET a
        SET b 2
        SET a 9
        SELECT 4
        SET a 8
        MOVE a 5
        GET a
        SELECT 5
        COPY b b
        COPY b b DB 5
        COPY b b DB 6
        COPY b c DB 6
        COPY b c DB 6 REPLACE
        COPY b c DB 16
        COPY b c DB x
        COPY b c DB 99999999999
        COPY b c DB 2 DB 16
        COPY b c DB 16 DB 2
        SELECT 6
        EXISTS b
        EXISTS c
        SWAPDB 5 6
        EXISTS b
        EXISTS c
        DBSIZE
        SWAPDB 0 16
        SWAPDB x 1
        SWAPDB 1 x
        SWAPDB -1 1
        SWAPDB 2 2
        SELECT 16
        SELECT -1
        SELECT x
        SELECT 99999999999
        SELECT 5
        SADD s m
        EXPIRE s 100
        MOVE s 9
        SELECT 9
        TYPE s
        TTL s
        FLUSHDB
        DBSIZE
        SELECT 5
        DBSIZE
        FLUSHDB ASYNC
        FLUSHDB x
        DBSIZE
        SELECT 6
        DBSIZE
        FLUSHALL
        DBSIZE
        ",
    );
}

#[test]
fn whole_keyspace_commands_see_the_selected_database_only() {
    same_as_redis(
        "
        SELECT 1
        SET one 1
        SELECT 2
        SET two 2
        KEYS *
        SCAN 0 COUNT 1000
        RANDOMKEY
        DBSIZE
        SELECT 3
        KEYS *
        SCAN 0
        RANDOMKEY
        DBSIZE
        SELECT 1
        KEYS *
        RANDOMKEY
        EXISTS two
        RENAME one uno
        KEYS *
        RESET
        EXISTS uno
        ",
    );
}

#[test]
fn transactions_and_scripts_select_as_redis_does() {
    same_as_redis(
        "
        SELECT 2
        RPUSH l a b c
        MULTI
        SELECT 4
        SET x 1
        SELECT 2
        LPOP l
        SELECT 4
        EXEC
        DBSIZE
        GET x
        SELECT 2
        LRANGE l 0 -1
        EVAL return(redis.call('lrange','l',0,-1)) 0
        EVAL redis.call('select',7);redis.call('set','k',1);return(redis.call('dbsize')) 0
        DBSIZE
        EXISTS k
        SELECT 7
        GET k
        MULTI
        EVAL redis.call('select',8);return(redis.call('set','k2',1)) 0
        SET k3 1
        EXEC
        EXISTS k3
        SELECT 8
        EXISTS k2
        ",
    );
}

/// A raw subscriber socket (RESP2).
fn subscriber(s: &Server, pattern: &str) -> TcpStream {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    t.write_all(&common::req(&[b"PSUBSCRIBE", pattern.as_bytes()]))
        .unwrap();
    let mut buf = vec![0u8; 256];
    let n = t.read(&mut buf).unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).contains("psubscribe"),
        "subscribed"
    );
    t
}

/// Reads until `needle` arrived (or panics after the socket's timeout).
fn read_until(t: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = t.read(&mut buf).expect("a message");
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn keyspace_notifications_name_the_database() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut space = subscriber(&s, "__keyspace@*__:*");
    let mut events = subscriber(&s, "__keyevent@3__:*");
    let _: () = q(&mut c, &["SET", "zero", "v"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let text = read_until(&mut space, "__keyspace@3__:k");
    assert!(text.contains("__keyspace@0__:zero"), "{text}");
    let text = read_until(&mut events, "__keyevent@3__:set");
    assert!(
        !text.contains("zero"),
        "a db 0 event on db 3's channel: {text}"
    );
    // MOVE: move_from in the source database, move_to in the destination.
    let _: i64 = q(&mut c, &["MOVE", "k", "4"]);
    read_until(&mut space, "__keyspace@4__:k");
    let text = read_until(&mut events, "move_from");
    assert!(text.contains("__keyevent@3__:move_from"), "{text}");
}

#[test]
fn watch_is_per_database_and_swapdb_flushdb_touch_watchers() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let exec = |c: &mut Connection| -> Value { q(c, &["EXEC"]) };
    // A write of the same name in another database leaves the watch alone.
    let _: () = q(&mut a, &["SELECT", "2"]);
    let _: () = q(&mut a, &["WATCH", "k"]);
    let _: () = q(&mut b, &["SET", "k", "0"]);
    let _: () = q(&mut a, &["MULTI"]);
    let _: Value = q(&mut a, &["SET", "done", "1"]);
    assert_ne!(exec(&mut a), Value::Nil, "db 0's k is another key");
    // A write in the watched database aborts.
    let _: () = q(&mut a, &["WATCH", "k"]);
    let _: () = q(&mut b, &["SELECT", "2"]);
    let _: () = q(&mut b, &["SET", "k", "2"]);
    let _: () = q(&mut a, &["MULTI"]);
    let _: Value = q(&mut a, &["SET", "done", "1"]);
    assert_eq!(exec(&mut a), Value::Nil, "k of db 2 changed");
    // SWAPDB touches a watched key that exists in either database.
    let _: () = q(&mut a, &["WATCH", "k"]);
    let _: () = q(&mut b, &["SWAPDB", "2", "9"]);
    let _: () = q(&mut a, &["MULTI"]);
    let _: Value = q(&mut a, &["PING"]);
    assert_eq!(exec(&mut a), Value::Nil, "SWAPDB touched k");
    // SWAPDB of other databases does not.
    let _: () = q(&mut a, &["WATCH", "k"]);
    let _: () = q(&mut b, &["SWAPDB", "5", "6"]);
    let _: () = q(&mut a, &["MULTI"]);
    let _: Value = q(&mut a, &["PING"]);
    assert_ne!(exec(&mut a), Value::Nil, "SWAPDB 5 6 is elsewhere");
    // FLUSHDB of the watched database touches a key that existed.
    let _: () = q(&mut a, &["SELECT", "9"]);
    let _: () = q(&mut a, &["WATCH", "k"]);
    let _: () = q(&mut b, &["SELECT", "9"]);
    let _: () = q(&mut b, &["FLUSHDB"]);
    let _: () = q(&mut a, &["MULTI"]);
    let _: Value = q(&mut a, &["PING"]);
    assert_eq!(exec(&mut a), Value::Nil, "FLUSHDB touched k");
}

#[test]
fn blocking_pops_are_served_in_their_database_and_by_swapdb() {
    let s = Server::start(&[]);
    let mut waiter = s.client();
    let mut w = s.client();
    let _: () = q(&mut waiter, &["SELECT", "3"]);
    let port = s.port;
    let t = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/3"))
            .unwrap()
            .get_connection()
            .unwrap();
        let v: Vec<String> = q(&mut c, &["BLPOP", "q", "10"]);
        v
    });
    assert!(wait_for(Duration::from_secs(5), || {
        let list: String = q(&mut w, &["CLIENT", "LIST"]);
        list.lines()
            .any(|l| l.contains("flags=b") && l.contains(" db=3 "))
    }));
    // A push in database 0 does not serve a waiter of database 3.
    let _: i64 = q(&mut w, &["RPUSH", "q", "zero"]);
    let _: () = q(&mut w, &["SELECT", "3"]);
    let _: i64 = q(&mut w, &["RPUSH", "q", "three"]);
    assert_eq!(t.join().unwrap(), vec!["q", "three"]);
    let _: () = q(&mut w, &["SELECT", "0"]);
    let left: Vec<String> = q(&mut w, &["LRANGE", "q", "0", "-1"]);
    assert_eq!(left, vec!["zero"]);

    // SWAPDB serves a waiter whose key now has data (Redis's
    // scanDatabaseForReadyKeys).
    let t = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/4"))
            .unwrap()
            .get_connection()
            .unwrap();
        let v: Vec<String> = q(&mut c, &["BLPOP", "q", "10"]);
        v
    });
    assert!(wait_for(Duration::from_secs(5), || {
        let list: String = q(&mut w, &["CLIENT", "LIST"]);
        list.lines()
            .any(|l| l.contains("flags=b") && l.contains(" db=4 "))
    }));
    let _: () = q(&mut w, &["SWAPDB", "0", "4"]);
    assert_eq!(t.join().unwrap(), vec!["q", "zero"]);
    drop(waiter);
}

#[test]
fn info_keyspace_and_client_list_show_databases() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["SELECT", "3"]);
    let _: () = q(&mut c, &["SET", "b", "1", "EX", "100"]);
    let _: () = q(&mut c, &["SET", "c", "1"]);
    let info: String = q(&mut c, &["INFO", "keyspace"]);
    assert_eq!(
        info_field(&info, "db0").as_deref(),
        Some("keys=1,expires=0,avg_ttl=0")
    );
    assert_eq!(
        info_field(&info, "db3").as_deref(),
        Some("keys=2,expires=1,avg_ttl=0")
    );
    assert!(info_field(&info, "db1").is_none(), "{info}");
    let me: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(me.contains(" db=3 "), "{me}");
    // DEBUG DIGEST covers every database.
    let _: () = q(&mut c, &["SELECT", "0"]);
    let _: i64 = q(&mut c, &["DEL", "a"]);
    let d: String = q(&mut c, &["DEBUG", "DIGEST"]);
    assert_ne!(d, "0".repeat(40), "db 3 has keys");
    let _: () = q(&mut c, &["CONFIG", "GET", "databases"]);
    let v: Vec<String> = q(&mut c, &["CONFIG", "GET", "databases"]);
    assert_eq!(v, vec!["databases", "16"]);
    assert_err(
        &mut c,
        &["CONFIG", "SET", "databases", "4"],
        "can't set immutable config",
    );
}

#[test]
fn databases_is_configurable() {
    let s = Server::start(&["--databases", "2"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SELECT", "1"]);
    assert_err(&mut c, &["SELECT", "2"], "DB index is out of range");
}

#[test]
fn expiry_eviction_and_memory_cover_every_database() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let used = |c: &mut Connection| -> u64 {
        let info: String = q(c, &["INFO", "memory"]);
        info_field(&info, "used_memory").unwrap().parse().unwrap()
    };
    let base = used(&mut c);
    // The active sweep deletes expired keys of database 7 unread.
    let _: () = q(&mut c, &["SELECT", "7"]);
    for i in 0..50 {
        let _: () = q(&mut c, &["SET", &format!("e{i}"), "v", "PX", "20"]);
    }
    assert!(wait_for(Duration::from_secs(10), || {
        q::<i64>(&mut c, &["DBSIZE"]) == 0
    }));
    // Memory is accounted in every database and given back by FLUSHDB.
    let _: () = q(&mut c, &["SELECT", "5"]);
    let big = "x".repeat(10_000);
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), &big]);
    }
    assert!(used(&mut c) >= base + 1_000_000);
    let _: () = q(&mut c, &["FLUSHDB"]);
    assert!(used(&mut c) < base + 100_000);
    // Eviction picks from every database.
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), &big]);
    }
    let limit = base + 500_000;
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-random"],
    );
    let _: () = q(&mut c, &["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    let _: () = q(&mut c, &["SELECT", "0"]);
    let _: () = q(&mut c, &["SET", "trigger", "1"]);
    assert!(used(&mut c) <= limit);
    let _: () = q(&mut c, &["SELECT", "5"]);
    let left: i64 = q(&mut c, &["DBSIZE"]);
    assert!(left < 100, "keys of db 5 were evicted ({left} left)");
    let info: String = q(&mut c, &["INFO", "stats"]);
    assert!(
        info_field(&info, "evicted_keys")
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
}

/// Cluster mode: writes at a follower in database 5 (forwarded with the
/// client's database) are read in database 5 at every node; MOVE, SWAPDB,
/// FLUSHDB and a transaction that SELECTs replicate; a restarted follower
/// gets every database back from its sync.
#[test]
fn cluster_writes_at_a_follower_land_in_its_database_on_every_node() {
    use common::cluster::{con, Cluster};
    let mut cl = Cluster::start(3);
    let m = cl.master();
    let f = cl.followers(m)[0];
    let mut c = con(cl.nodes[f].port);
    let _: () = q(&mut c, &["SELECT", "5"]);
    let _: () = q(&mut c, &["SET", "k", "five"]);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "five", "read your write in database 5");
    let _: () = q(&mut c, &["SET", "gone", "x"]);
    let _: i64 = q(&mut c, &["MOVE", "gone", "6"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: Value = q(&mut c, &["SELECT", "7"]);
    let _: Value = q(&mut c, &["SET", "t", "seven"]);
    let r: Value = q(&mut c, &["EXEC"]);
    assert_ne!(r, Value::Nil);
    // The transaction's SELECT holds for the client afterwards.
    let v: String = q(&mut c, &["GET", "t"]);
    assert_eq!(v, "seven");
    let _: () = q(&mut c, &["SWAPDB", "7", "8"]);
    let _: () = q(&mut c, &["SELECT", "9"]);
    let _: () = q(&mut c, &["SET", "x", "1"]);
    let _: () = q(&mut c, &["FLUSHDB"]);
    let check = |port: u16| {
        let mut n = con(port);
        let at = |n: &mut Connection, db: &str, key: &str| -> Option<String> {
            let _: () = q(n, &["SELECT", db]);
            q(n, &["GET", key])
        };
        wait_for(Duration::from_secs(10), || {
            at(&mut n, "5", "k").as_deref() == Some("five")
                && at(&mut n, "0", "k").is_none()
                && at(&mut n, "5", "gone").is_none()
                && at(&mut n, "6", "gone").as_deref() == Some("x")
                && at(&mut n, "7", "t").is_none()
                && at(&mut n, "8", "t").as_deref() == Some("seven")
                && q::<i64>(&mut n, &["DBSIZE"]) == 1
        })
    };
    for i in 0..3 {
        assert!(check(cl.nodes[i].port), "node {i} has every database");
    }
    cl.wait_converged(Duration::from_secs(10));
    // A follower restarted from nothing full-syncs every database.
    cl.kill9(f);
    cl.restart(f);
    cl.master();
    assert!(
        check(cl.nodes[f].port),
        "the restarted follower's databases"
    );
}

/// Keyspace events of commands across databases (with `n`: new keys), as
/// redis-server sends them, byte for byte.
#[test]
fn keyspace_events_across_databases_match_redis() {
    let s = Server::start(&[]);
    let r = Upstream::start();
    let capture = |port: u16| -> String {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        let _: () = q(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEAn"]);
        let mut t = TcpStream::connect(("127.0.0.1", port)).unwrap();
        t.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        t.write_all(&common::req(&[b"PSUBSCRIBE", b"*"])).unwrap();
        read_until(&mut t, "psubscribe");
        let script = "SELECT 3|SET k v|MOVE k 4|SELECT 4|COPY k k2 DB 5|COPY k k2 DB 5 REPLACE|\
                      COPY k k4|COPY k k4 REPLACE|SET k3 v EX 100|MOVE k3 6|SELECT 6|EXPIRE k3 0|\
                      SET k5 v|SWAPDB 6 7|SELECT 7|FLUSHDB|SET k6 v|FLUSHALL|PUBLISH done x";
        for line in script.split('|') {
            let args: Vec<&str> = line.split_whitespace().collect();
            let _: Value = common::command(&args).query(&mut c).unwrap();
        }
        read_until(&mut t, "done")
    };
    assert_eq!(capture(s.port), capture(r.port));
}
