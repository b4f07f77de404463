//! The tiered engine against a real upstream `redis-server` started by each
//! test (killed on drop): read-through and back-fill per type with TTL carried
//! over, invalidation when Redis changes behind our back, two jcache nodes
//! sharing one Redis, degraded mode and recovery, transactions and WATCH,
//! negative caching and single-flight.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::upstream::Upstream;
use common::{
    blpop_blocked_for, command, err, free_port, info_field, make_certificates, q, wait_for, Server,
};
use redis::{cmd, Connection, RedisResult, Value};

/// jcache with `--tier memory --tier redis://...`, waiting until the upstream is up.
fn tiered(up: &Upstream, extra: &[&str]) -> Server {
    tiered_at(&up.url(), "500ms", extra)
}

/// jcache in front of the upstream at `url`, with this upstream timeout.
fn tiered_at(url: &str, timeout: &str, extra: &[&str]) -> Server {
    let mut args = vec![
        "--tier",
        "memory",
        "--tier",
        url,
        "--upstream-timeout",
        timeout,
    ];
    args.extend_from_slice(extra);
    let s = Server::start(&args);
    let mut c = s.client();
    assert!(
        wait_for(Duration::from_secs(10), || info(&mut c, "upstream_status")
            == "up"),
        "upstream never came up"
    );
    s
}

fn info(c: &mut Connection, field: &str) -> String {
    let text: String = cmd("INFO").arg("tiers").query(c).unwrap();
    info_field(&text, field).unwrap_or_default()
}

fn info_n(c: &mut Connection, field: &str) -> u64 {
    info(c, field).parse().unwrap_or(0)
}

fn try_q(c: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    command(args).query(c)
}

/// Whether jcache knows a command yet (families land on main one by one).
fn has_command(c: &mut Connection, name: &str) -> bool {
    let v: Value = cmd("COMMAND").arg("INFO").arg(name).query(c).unwrap();
    matches!(v, Value::Array(ref a) if !matches!(a.first(), Some(Value::Nil) | None))
}

/// One way to write and read back each type, so the tests cover all types.
struct Kind {
    name: &'static str,
    /// Commands to create the key directly in Redis.
    create: &'static [&'static [&'static str]],
    /// A whole-key read through jcache and what it must return (sorted, flattened).
    read: &'static [&'static str],
    expect: &'static [&'static str],
    /// A change made directly in Redis and the read's result after it.
    change: &'static [&'static str],
    expect_after: &'static [&'static str],
    /// A field read (served locally once back-filled).
    field_read: &'static [&'static str],
    field_expect: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "string",
        create: &[&["SET", "k:string", "v1"]],
        read: &["GET", "k:string"],
        expect: &["v1"],
        change: &["SET", "k:string", "v2"],
        expect_after: &["v2"],
        field_read: &["STRLEN", "k:string"],
        field_expect: "2",
    },
    Kind {
        name: "hash",
        create: &[&["HSET", "k:hash", "a", "1", "b", "2"]],
        read: &["HGETALL", "k:hash"],
        expect: &["1", "2", "a", "b"],
        change: &["HSET", "k:hash", "c", "3"],
        expect_after: &["1", "2", "3", "a", "b", "c"],
        field_read: &["HGET", "k:hash", "b"],
        field_expect: "2",
    },
    Kind {
        name: "list",
        create: &[&["RPUSH", "k:list", "x", "y", "z"]],
        read: &["LRANGE", "k:list", "0", "-1"],
        expect: &["x", "y", "z"],
        change: &["RPUSH", "k:list", "w"],
        expect_after: &["w", "x", "y", "z"],
        field_read: &["LINDEX", "k:list", "1"],
        field_expect: "y",
    },
    Kind {
        name: "set",
        create: &[&["SADD", "k:set", "m1", "m2"]],
        read: &["SMEMBERS", "k:set"],
        expect: &["m1", "m2"],
        change: &["SREM", "k:set", "m1"],
        expect_after: &["m2"],
        field_read: &["SISMEMBER", "k:set", "m2"],
        field_expect: "1",
    },
    Kind {
        name: "zset",
        create: &[&["ZADD", "k:zset", "1", "a", "2.5", "b"]],
        read: &["ZRANGE", "k:zset", "0", "-1", "WITHSCORES"],
        expect: &["1", "2.5", "a", "b"],
        change: &["ZINCRBY", "k:zset", "1", "a"],
        expect_after: &["2", "2.5", "a", "b"],
        field_read: &["ZSCORE", "k:zset", "b"],
        field_expect: "2.5",
    },
];

fn flat(v: Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: Value, out: &mut Vec<String>) {
        match v {
            Value::BulkString(b) => out.push(String::from_utf8_lossy(&b).into_owned()),
            Value::SimpleString(s) => out.push(s),
            Value::Int(i) => out.push(i.to_string()),
            Value::Double(d) => out.push(d.to_string()),
            Value::Array(a) | Value::Set(a) => a.into_iter().for_each(|x| walk(x, out)),
            Value::Map(m) => m.into_iter().for_each(|(k, v)| {
                walk(k, out);
                walk(v, out)
            }),
            Value::Nil => {}
            other => out.push(format!("{other:?}")),
        }
    }
    walk(v, &mut out);
    out.sort();
    out
}

fn read_flat(c: &mut Connection, args: &[&str]) -> Vec<String> {
    flat(try_q(c, args).unwrap_or_else(|e| panic!("{args:?}: {e}")))
}

/// The kinds whose commands jcache has (all of them once every family landed).
fn available_kinds(c: &mut Connection) -> Vec<&'static Kind> {
    KINDS
        .iter()
        .filter(|k| has_command(c, k.read[0]) && has_command(c, k.field_read[0]))
        .collect()
}

#[test]
fn read_through_backfills_each_type_and_serves_locally() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let kinds = available_kinds(&mut c);
    assert_eq!(kinds.len(), KINDS.len(), "every type's commands are there");
    for k in &kinds {
        for create in k.create {
            let _: Value = q(&mut r, create);
        }
        let fills = info_n(&mut c, "tier0_backfills");
        let fetches = info_n(&mut c, "tier1_hits");
        assert_eq!(read_flat(&mut c, k.read), k.expect, "{} first read", k.name);
        assert_eq!(
            info_n(&mut c, "tier0_backfills"),
            fills + 1,
            "{} back-filled",
            k.name
        );
        assert_eq!(
            info_n(&mut c, "tier1_hits"),
            fetches + 1,
            "{} fetched once",
            k.name
        );
        // Now local: reads do not go upstream again.
        let hits = info_n(&mut c, "tier0_hits");
        assert_eq!(
            read_flat(&mut c, k.read),
            k.expect,
            "{} second read",
            k.name
        );
        assert_eq!(
            read_flat(&mut c, k.field_read),
            vec![k.field_expect.to_string()],
            "{}",
            k.name
        );
        assert_eq!(
            info_n(&mut c, "tier1_hits"),
            fetches + 1,
            "{} served locally",
            k.name
        );
        assert_eq!(
            info_n(&mut c, "tier0_hits"),
            hits + 2,
            "{} local hits",
            k.name
        );
        // TYPE is answered by the local copy with the upstream's type.
        let t: String = q(&mut c, &["TYPE", k.read[1]]);
        assert_eq!(t, k.name);
    }
    // A key absent upstream reads as absent.
    let v: Value = q(&mut c, &["HGET", "nosuch", "f"]);
    assert_eq!(v, Value::Nil);
    let n: i64 = q(&mut c, &["EXISTS", "nosuch", "k:hash"]);
    assert_eq!(n, 1);
}

#[test]
fn ttl_is_carried_over_and_capped_by_local_ttl_max() {
    let mut up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &["--local-ttl-max", "2s"]);
    let mut c = s.client();
    let kinds = available_kinds(&mut c);
    // Keys with a short upstream TTL, and one without TTL (capped by local-ttl-max).
    for k in &kinds {
        for create in k.create {
            let _: Value = q(&mut r, create);
        }
        let _: Value = q(&mut r, &["PEXPIRE", k.read[1], "1000"]);
        assert_eq!(read_flat(&mut c, k.read), k.expect, "{}", k.name);
    }
    let _: Value = q(&mut r, &["HSET", "forever", "f", "v"]);
    let v: String = q(&mut c, &["HGET", "forever", "f"]);
    assert_eq!(v, "v");
    // TTL queries see the upstream's TTL, not the local cap.
    let ttl: i64 = q(&mut c, &["TTL", "forever"]);
    assert_eq!(ttl, -1);
    let pttl: i64 = q(&mut c, &["PTTL", kinds[0].read[1]]);
    assert!(pttl > 0 && pttl <= 1000, "{pttl}");
    // Cut the upstream off: no invalidation can arrive, so only the local
    // expiry can make the copies go.
    up.kill();
    assert!(wait_for(Duration::from_secs(5), || info(
        &mut c,
        "upstream_status"
    ) == "down"));
    let start = Instant::now();
    let v: String = q(&mut c, &["HGET", "forever", "f"]);
    assert_eq!(v, "v", "degraded mode serves the local copy");
    for k in &kinds {
        // Still held (unless the 1s TTL already ran out on a slow machine).
        if start.elapsed() < Duration::from_millis(700) {
            assert_eq!(
                read_flat(&mut c, k.read),
                k.expect,
                "{} held locally",
                k.name
            );
        }
    }
    // The copies expire with the upstream TTL (1s) ...
    for k in &kinds {
        assert!(
            wait_for(Duration::from_secs(3), || try_q(&mut c, k.read).is_err()),
            "{} still served after its TTL",
            k.name
        );
    }
    // ... and the TTL-less key at local-ttl-max (2s).
    assert!(wait_for(Duration::from_secs(4), || try_q(
        &mut c,
        &["HGET", "forever", "f"]
    )
    .is_err()));
    let e = try_q(&mut c, &["HGET", "forever", "f"]).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
}

#[test]
fn direct_changes_in_redis_invalidate_local_copies() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    for k in available_kinds(&mut c) {
        for create in k.create {
            let _: Value = q(&mut r, create);
        }
        assert_eq!(read_flat(&mut c, k.read), k.expect, "{}", k.name);
        let _: Value = q(&mut r, k.change);
        let start = Instant::now();
        assert!(
            wait_for(Duration::from_secs(2), || read_flat(&mut c, k.read)
                == k.expect_after),
            "{}: change not seen: {:?}",
            k.name,
            read_flat(&mut c, k.read)
        );
        assert!(
            start.elapsed() < Duration::from_millis(1500),
            "{} slow invalidation",
            k.name
        );
        // Deleted upstream: gone here too.
        let _: Value = q(&mut r, &["DEL", k.read[1]]);
        assert!(
            wait_for(Duration::from_secs(2), || read_flat(&mut c, k.read)
                .is_empty()),
            "{}: delete not seen",
            k.name
        );
    }
    // FLUSHALL upstream (null-payload invalidation) empties the local tier.
    let _: Value = q(&mut r, &["HSET", "h1", "f", "1"]);
    let _: Value = q(&mut c, &["HGET", "h1", "f"]);
    let _: Value = q(&mut r, &["FLUSHALL"]);
    assert!(wait_for(Duration::from_secs(2), || q::<Value>(
        &mut c,
        &["HGET", "h1", "f"]
    ) == Value::Nil));
    assert!(info_n(&mut c, "tier1_invalidations") >= 1);
}

#[test]
fn writes_go_upstream_first_and_errors_leave_local_unchanged() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let n: i64 = q(&mut c, &["HSET", "w", "a", "1"]);
    assert_eq!(n, 1);
    let v: String = q(&mut r, &["HGET", "w", "a"]);
    assert_eq!(v, "1", "the write reached the upstream");
    let v: String = q(&mut c, &["HGET", "w", "a"]);
    assert_eq!(v, "1");
    // Read-your-writes through the same node.
    let _: i64 = q(&mut c, &["HINCRBY", "w", "a", "5"]);
    let v: String = q(&mut c, &["HGET", "w", "a"]);
    assert_eq!(v, "6");
    // A write the upstream rejects: its error, and the local copy stays.
    let fills = info_n(&mut c, "tier0_backfills");
    let e = try_q(&mut c, &["SADD", "w", "x"]).unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
    let v: String = q(&mut c, &["HGET", "w", "a"]);
    assert_eq!(v, "6");
    assert_eq!(
        info_n(&mut c, "tier0_backfills"),
        fills,
        "no re-fetch needed"
    );
    // Keyspace-wide reads and FLUSHALL go upstream.
    let _: Value = q(&mut r, &["HSET", "other", "f", "v"]);
    let n: i64 = q(&mut c, &["DBSIZE"]);
    assert_eq!(n, 2);
    let _: Value = q(&mut c, &["FLUSHALL"]);
    let n: i64 = q(&mut r, &["DBSIZE"]);
    assert_eq!(n, 0);
    let v: Value = q(&mut c, &["HGET", "w", "a"]);
    assert_eq!(v, Value::Nil);
}

#[test]
fn two_nodes_never_hand_out_the_same_value_or_pop_twice() {
    let up = Upstream::start();
    let a = tiered(&up, &[]);
    let b = tiered(&up, &[]);
    let mut probe = a.client();
    assert!(has_command(&mut probe, "incr"));
    let incr_cmd: &[&str] = &["INCR", "counter"];
    // 10,000 increments split over both nodes, 4 clients each.
    let mut handles = Vec::new();
    for node in [&a, &b] {
        for _ in 0..4 {
            let mut c = node.client();
            let cmdv: Vec<String> = incr_cmd.iter().map(|s| s.to_string()).collect();
            handles.push(std::thread::spawn(move || {
                let args: Vec<&str> = cmdv.iter().map(|s| s.as_str()).collect();
                (0..1250)
                    .map(|_| q::<i64>(&mut c, &args))
                    .collect::<Vec<_>>()
            }));
        }
    }
    let mut seen = HashSet::new();
    for h in handles {
        for v in h.join().unwrap() {
            assert!(seen.insert(v), "value {v} handed out twice");
        }
    }
    assert_eq!(seen.len(), 10_000);
    assert_eq!(seen.iter().max(), Some(&10_000));
    // Pops: every element popped exactly once across both nodes.
    let mut r = up.client();
    let members: Vec<String> = (0..2000).map(|i| format!("e{i}")).collect();
    let mut sadd = cmd("SADD");
    sadd.arg("pool").arg(&members);
    let _: i64 = sadd.query(&mut r).unwrap();
    let has_lists = has_command(&mut probe, "rpush") && has_command(&mut probe, "lpop");
    assert!(has_lists);
    if has_lists {
        let mut rpush = cmd("RPUSH");
        rpush.arg("queue").arg(&members);
        let _: i64 = rpush.query(&mut r).unwrap();
    }
    let mut handles = Vec::new();
    for node in [&a, &b] {
        for _ in 0..3 {
            let mut c = node.client();
            handles.push(std::thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    // Reads in between keep the local copies busy.
                    let _: Value = q(&mut c, &["SCARD", "pool"]);
                    let v: Value = q(&mut c, &["SPOP", "pool"]);
                    match v {
                        Value::BulkString(b) => got.push(String::from_utf8(b).unwrap()),
                        _ => break,
                    }
                }
                if has_lists {
                    loop {
                        let _: Value = q(&mut c, &["LLEN", "queue"]);
                        let v: Value = q(&mut c, &["LPOP", "queue"]);
                        match v {
                            Value::BulkString(b) => {
                                got.push(format!("list:{}", String::from_utf8(b).unwrap()))
                            }
                            _ => break,
                        }
                    }
                }
                got
            }));
        }
    }
    let mut popped = HashSet::new();
    for h in handles {
        for v in h.join().unwrap() {
            assert!(popped.insert(v.clone()), "{v} popped twice");
        }
    }
    let expected = if has_lists { 4000 } else { 2000 };
    assert_eq!(popped.len(), expected);
}

#[test]
fn upstream_down_serves_local_hits_fails_writes_fast_and_recovers() {
    let mut up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let _: Value = q(&mut c, &["HSET", "hot", "f", "old"]);
    let v: String = q(&mut c, &["HGET", "hot", "f"]);
    assert_eq!(v, "old");
    drop(r);
    up.kill();
    assert!(wait_for(Duration::from_secs(5), || info(
        &mut c,
        "upstream_status"
    ) == "down"));
    // Local hits keep answering.
    for _ in 0..100 {
        let v: String = q(&mut c, &["HGET", "hot", "f"]);
        assert_eq!(v, "old");
    }
    // Writes fail fast with the documented error; misses too.
    let start = Instant::now();
    let e = try_q(&mut c, &["HSET", "hot", "f", "new"]).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    assert!(e.to_string().contains("upstream unavailable"), "{e}");
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    let e = try_q(&mut c, &["HGET", "cold", "f"]).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    let e = try_q(&mut c, &["DBSIZE"]).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    // The upstream comes back (empty: no persistence): jcache reconnects by
    // itself and serves nothing stale.
    up.spawn();
    assert!(wait_for(Duration::from_secs(10), || info(
        &mut c,
        "upstream_status"
    ) == "up"));
    let v: Value = q(&mut c, &["HGET", "hot", "f"]);
    assert_eq!(v, Value::Nil, "stale value served after reconnect");
    let _: i64 = q(&mut c, &["HSET", "hot", "f", "new"]);
    let v: String = q(&mut c, &["HGET", "hot", "f"]);
    assert_eq!(v, "new");
    r = up.client();
    let v: String = q(&mut r, &["HGET", "hot", "f"]);
    assert_eq!(v, "new");
    assert!(info_n(&mut c, "tier1_reconnects") >= 1);
}

#[test]
fn transactions_and_watch_run_upstream() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let _: Value = q(&mut c, &["HSET", "t", "n", "1"]);
    let v: String = q(&mut c, &["HGET", "t", "n"]);
    assert_eq!(v, "1");
    // MULTI/EXEC: atomic upstream, local copy dropped afterwards.
    let (a, b): (i64, String) = redis::pipe()
        .atomic()
        .cmd("HINCRBY")
        .arg("t")
        .arg("n")
        .arg(10)
        .cmd("HGET")
        .arg("t")
        .arg("n")
        .query(&mut c)
        .unwrap();
    assert_eq!((a, b.as_str()), (11, "11"));
    let v: String = q(&mut c, &["HGET", "t", "n"]);
    assert_eq!(v, "11");
    // WATCH: a change by another client makes EXEC fail.
    let _: () = q(&mut c, &["WATCH", "t"]);
    let _: Value = q(&mut r, &["HSET", "t", "n", "99"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: Value = q(&mut c, &["HSET", "t", "n", "0"]);
    let v: Value = q(&mut c, &["EXEC"]);
    assert_eq!(v, Value::Nil, "EXEC must abort");
    let v: String = q(&mut r, &["HGET", "t", "n"]);
    assert_eq!(v, "99");
    // Untouched WATCH: EXEC runs.
    let _: () = q(&mut c, &["WATCH", "t"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: Value = q(&mut c, &["HSET", "t", "n", "5"]);
    let v: Vec<i64> = q(&mut c, &["EXEC"]);
    assert_eq!(v, vec![0]);
    let v: String = q(&mut c, &["HGET", "t", "n"]);
    assert_eq!(v, "5");
    // Queue-time errors still abort locally.
    let _: () = q(&mut c, &["MULTI"]);
    let _ = try_q(&mut c, &["HSET", "t"]);
    let e = try_q(&mut c, &["EXEC"]).unwrap_err();
    assert_eq!(e.code(), Some("EXECABORT"), "{e}");
}

#[test]
fn negative_cache_and_single_flight() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &["--negative-cache-ttl", "10s"]);
    let mut c = s.client();
    // A missing key is asked upstream once, then remembered as absent ...
    let misses = info_n(&mut c, "tier1_misses");
    for _ in 0..20 {
        let v: Value = q(&mut c, &["HGET", "ghost", "f"]);
        assert_eq!(v, Value::Nil);
    }
    assert_eq!(info_n(&mut c, "tier1_misses"), misses + 1);
    // ... until it is created upstream (the invalidation clears the memory).
    let _: Value = q(&mut r, &["HSET", "ghost", "f", "here"]);
    assert!(wait_for(Duration::from_secs(2), || q::<Value>(
        &mut c,
        &["HGET", "ghost", "f"]
    ) == Value::BulkString(
        b"here".to_vec()
    )));
    // Single-flight: while Redis is stalled, 16 concurrent misses on one key
    // make one fetch.
    let _: Value = q(&mut r, &["HSET", "busy", "f", "v"]);
    let fetches = info_n(&mut c, "tier1_hits");
    let clients: Vec<Connection> = (0..16).map(|_| s.client()).collect();
    let stall = std::thread::spawn(move || {
        let _: Value = q(&mut r, &["DEBUG", "SLEEP", "0.3"]);
    });
    std::thread::sleep(Duration::from_millis(50));
    let handles: Vec<_> = clients
        .into_iter()
        .map(|mut c| std::thread::spawn(move || q::<String>(&mut c, &["HGET", "busy", "f"])))
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), "v");
    }
    stall.join().unwrap();
    assert_eq!(info_n(&mut c, "tier1_hits"), fetches + 1);
}

#[test]
fn resp3_clients_get_resp3_shapes_on_miss_hit_and_forward() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let _: Value = q(&mut r, &["HSET", "h3", "a", "1"]);
    let mut raw = s.raw();
    raw.hello3();
    // Miss (fetched, then answered locally) and hit: both a RESP3 map.
    raw.roundtrip(b"HGETALL h3\r\n", b"%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    raw.roundtrip(b"HGETALL h3\r\n", b"%1\r\n$1\r\na\r\n$1\r\n1\r\n");
    // Forwarded: upstream's reply in RESP3.
    raw.roundtrip(b"HSET h3 b 2\r\n", b":1\r\n");
    raw.roundtrip(b"HGET nope f\r\n", b"_\r\n");
    raw.roundtrip(b"TTL h3\r\n", b":-1\r\n");
}

#[test]
fn pipelined_forwarded_commands_keep_their_order() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    // Four clients at once, each 2,000 writes in one pipeline with reads of
    // the same key in between: every reply in request order, every read
    // seeing the writes before it.
    let handles: Vec<_> = (0..4)
        .map(|n| {
            let mut c = s.client();
            std::thread::spawn(move || {
                let (seq, logk) = (format!("seq{n}"), format!("log{n}"));
                let mut p = redis::pipe();
                for i in 0..2000 {
                    p.cmd("INCR").arg(&seq);
                    if i % 50 == 49 {
                        p.cmd("GET").arg(&seq);
                    }
                    p.cmd("APPEND").arg(&logk).arg(format!("{i},"));
                }
                let replies: Vec<i64> = p.query(&mut c).unwrap();
                let mut expect = Vec::new();
                let mut log = String::new();
                for i in 0..2000i64 {
                    expect.push(i + 1);
                    if i % 50 == 49 {
                        expect.push(i + 1);
                    }
                    log.push_str(&format!("{i},"));
                    expect.push(log.len() as i64);
                }
                let got: String = q(&mut c, &["GET", &logk]);
                if got != log {
                    let g: Vec<&str> = got.split(',').collect();
                    let i = (0..g.len()).find(|&i| g[i] != i.to_string()).unwrap_or(0);
                    panic!(
                        "writes applied out of order at {i}: {:?}",
                        &g[i.saturating_sub(2)..(i + 3).min(g.len())]
                    );
                }
                if let Some(i) = (0..expect.len()).find(|&i| replies.get(i) != Some(&expect[i])) {
                    panic!(
                        "replies out of order at {i}: {:?} vs {:?}",
                        &replies[i.saturating_sub(2)..(i + 3).min(replies.len())],
                        &expect[i.saturating_sub(2)..(i + 3).min(expect.len())]
                    );
                }
                let got: String = q(&mut c, &["GET", &logk]);
                assert!(got == log, "writes applied out of order");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn hot_keys_stay_local_across_writes_and_stay_tracked() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "hot", "1"]);
    let v: String = q(&mut c, &["GET", "hot"]);
    assert_eq!(v, "1");
    // Writes through jcache to a key held locally replace the local copy
    // with the upstream's result: the next reads are local hits.
    for i in 2..20 {
        let n: i64 = q(&mut c, &["INCR", "hot"]);
        assert_eq!(n, i);
        let misses = info_n(&mut c, "tier0_misses");
        let v: String = q(&mut c, &["GET", "hot"]);
        assert_eq!(v, i.to_string());
        assert_eq!(
            info_n(&mut c, "tier0_misses"),
            misses,
            "read after write missed"
        );
    }
    // The same in a pipeline (writes batched, each re-reading the key).
    let misses = info_n(&mut c, "tier0_misses");
    let mut p = redis::pipe();
    for _ in 0..10 {
        p.cmd("INCR").arg("hot");
    }
    p.cmd("GET").arg("hot");
    let v: Vec<i64> = p.query(&mut c).unwrap();
    assert_eq!(v, (20..30).chain([29]).collect::<Vec<i64>>());
    assert_eq!(
        info_n(&mut c, "tier0_misses"),
        misses,
        "pipelined read after writes missed"
    );
    let _: () = q(&mut c, &["EXPIRE", "hot", "100"]);
    let ttl: i64 = q(&mut c, &["TTL", "hot"]);
    assert!(ttl > 90 && ttl <= 100, "{ttl}");
    // ... and the key is still tracked: a change made directly in Redis is
    // seen (NOLOOP does not hide other clients' writes).
    let _: () = q(&mut r, &["SET", "hot", "direct"]);
    assert!(wait_for(Duration::from_secs(2), || q::<String>(
        &mut c,
        &["GET", "hot"]
    ) == "direct"));
    // A rejected write leaves the local copy as it was.
    let e = try_q(&mut c, &["HSET", "hot", "f", "v"]).unwrap_err();
    assert_eq!(e.code(), Some("WRONGTYPE"), "{e}");
    let v: String = q(&mut c, &["GET", "hot"]);
    assert_eq!(v, "direct");
    // A write that deletes the key (HDEL of the last field) leaves no copy.
    let _: i64 = q(&mut c, &["HSET", "hh", "f", "v"]);
    let _: String = q(&mut c, &["HGET", "hh", "f"]);
    let _: i64 = q(&mut c, &["HDEL", "hh", "f"]);
    let v: Value = q(&mut c, &["HGET", "hh", "f"]);
    assert_eq!(v, Value::Nil);
    let n: i64 = q(&mut c, &["EXISTS", "hh"]);
    assert_eq!(n, 0);
}

#[test]
fn blocking_pops_wait_upstream_on_their_own_connection() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let mut other = s.client();
    // A blocked client does not stall the others (its BLPOP has a connection of its own).
    let h = std::thread::spawn(move || q::<Vec<String>>(&mut c, &["BLPOP", "jobs", "5"]));
    assert!(wait_for(Duration::from_secs(5), || {
        let clients: String = q(&mut r, &["CLIENT", "LIST"]);
        clients.contains("cmd=blpop")
    }));
    for _ in 0..10 {
        let v: Value = q(&mut other, &["GET", "unrelated"]);
        assert_eq!(v, Value::Nil);
    }
    let _: i64 = q(&mut r, &["RPUSH", "jobs", "j1"]);
    assert_eq!(
        h.join().unwrap(),
        vec!["jobs".to_string(), "j1".to_string()]
    );
    // A client that goes away while blocked pops nothing.
    {
        let mut gone = s.raw();
        gone.send(b"BLPOP jobs 0\r\n");
        assert!(wait_for(Duration::from_secs(5), || {
            let clients: String = q(&mut r, &["CLIENT", "LIST"]);
            clients.contains("cmd=blpop")
        }));
    }
    assert!(wait_for(Duration::from_secs(5), || {
        let clients: String = q(&mut r, &["CLIENT", "LIST"]);
        !clients.contains("cmd=blpop")
    }));
    let _: i64 = q(&mut r, &["RPUSH", "jobs", "j2"]);
    let n: i64 = q(&mut r, &["LLEN", "jobs"]);
    assert_eq!(n, 1, "popped for a client that went away");
    // Timeout: RESP2's null array, as Redis answers.
    let mut raw = s.raw();
    raw.roundtrip(b"BLPOP none 0.1\r\n", b"*-1\r\n");
}

#[test]
fn publish_reaches_local_and_upstream_subscribers() {
    use std::io::{Read, Write};
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let subscribe = |port: u16| {
        let mut sock = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        sock.write_all(b"SUBSCRIBE news\r\n").unwrap();
        let mut confirm = [0u8; 33];
        sock.read_exact(&mut confirm).unwrap();
        assert_eq!(
            &confirm[..],
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n"
        );
        sock
    };
    let mut at_jcache = subscribe(s.port);
    let mut at_redis = subscribe(up.port);
    let mut c = s.client();
    let n: i64 = q(&mut c, &["PUBLISH", "news", "hello"]);
    assert_eq!(n, 2, "one subscriber here, one at the upstream");
    let expected = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n";
    for sock in [&mut at_jcache, &mut at_redis] {
        let mut got = vec![0u8; expected.len()];
        sock.read_exact(&mut got).unwrap();
        assert_eq!(got, expected.to_vec());
    }
}

/// The error a write gets when it may have reached the upstream without an
/// answer (the cluster's "may or may not have been applied" wording).
const UNKNOWN_OUTCOME: &str = "upstream link error (the write may or may not have been applied)";

/// A write that reached the upstream and got no reply in time may have been
/// applied there (here it is, once the pause ends): it is answered with the
/// unknown-outcome error, an ERR that client libraries do not retry, never
/// TRYAGAIN (go-redis and Lettuce retry that, applying an INCR twice); its
/// local copy is dropped. TRYAGAIN stays for what was never sent.
#[test]
fn writes_with_an_unknown_outcome_are_not_answered_tryagain() {
    let mut up = Upstream::start();
    let mut r = up.client();
    // 2 s: a loaded machine must not make the health check fail meanwhile.
    let s = tiered_at(&up.url(), "2s", &[]);
    let mut c = s.client();
    // `counter` held locally (write-through path), `other` not (plain forward).
    let _: () = q(&mut c, &["SET", "counter", "10"]);
    let v: String = q(&mut c, &["GET", "counter"]);
    assert_eq!(v, "10");
    // Writes stall upstream (reads do not) for longer than --upstream-timeout
    // (2 s); the pause is bounded and lifted below.
    let _: () = q(&mut r, &["CLIENT", "PAUSE", "20000", "WRITE"]);
    let e = try_q(&mut c, &["INCR", "counter"]).unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e}");
    assert!(e.to_string().contains(UNKNOWN_OUTCOME), "{e}");
    let e = try_q(&mut c, &["INCR", "other"]).unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e}");
    assert!(e.to_string().contains(UNKNOWN_OUTCOME), "{e}");
    // PUBLISH has no write flag, but it was delivered to this node's
    // subscribers already and may reach the upstream's: never TRYAGAIN.
    let e = try_q(&mut c, &["PUBLISH", "ch", "m"]).unwrap_err();
    assert_eq!(e.code(), Some("ERR"), "{e}");
    assert!(e.to_string().contains(UNKNOWN_OUTCOME), "{e}");
    // Pipelined writes (the per-client batch path) too.
    let mut raw = s.raw();
    raw.send(b"INCR piped\r\nINCR piped\r\n");
    for _ in 0..2 {
        let reply = raw.read_reply();
        assert!(
            reply.starts_with("-ERR ") && reply.contains(UNKNOWN_OUTCOME),
            "{reply}"
        );
    }
    let _: () = q(&mut r, &["CLIENT", "UNPAUSE"]);
    // The writes were applied after all: TRYAGAIN would have made a client
    // apply them twice.
    assert!(wait_for(Duration::from_secs(10), || {
        q::<Option<i64>>(&mut r, &["GET", "counter"]) == Some(11)
    }));
    assert!(wait_for(Duration::from_secs(10), || {
        q::<Option<i64>>(&mut r, &["GET", "piped"]) == Some(2)
    }));
    // The local copy of `counter` was dropped: it was written on the
    // tracking connection (NOLOOP), so no invalidation would have come.
    assert!(wait_for(Duration::from_secs(10), || info(
        &mut c,
        "upstream_status"
    ) == "up"));
    let v: String = q(&mut c, &["GET", "counter"]);
    assert_eq!(v, "11", "stale local copy after a write of unknown outcome");
    // Nothing sent (upstream stopped): TRYAGAIN, safe to retry.
    drop(r);
    up.kill();
    assert!(wait_for(Duration::from_secs(10), || info(
        &mut c,
        "upstream_status"
    ) == "down"));
    let e = try_q(&mut c, &["INCR", "counter"]).unwrap_err();
    assert_eq!(e.code(), Some("TRYAGAIN"), "{e}");
    assert!(e.to_string().contains("upstream unavailable"), "{e}");
}

/// Blocking commands wait upstream exactly as long as on Redis: a nil after
/// the command's own timeout (not TRYAGAIN after the `redis` crate's 500 ms
/// default response timeout), forever for 0, and run non-blocking inside
/// MULTI.
#[test]
fn blocking_commands_time_out_as_on_redis_in_tiered_mode() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered_at(&up.url(), "1s", &[]);
    let mut c = s.client();
    let start = Instant::now();
    let v: Value = q(&mut c, &["BLPOP", "nokey", "1"]);
    let took = start.elapsed();
    assert_eq!(v, Value::Nil);
    assert!(took >= Duration::from_secs(1), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let v: Value = q(&mut c, &["BZPOPMIN", "nozset", "0.6"]);
    assert_eq!(v, Value::Nil);
    // Inside MULTI a blocking pop does not block.
    let v: Vec<Value> = redis::pipe()
        .atomic()
        .cmd("BLPOP")
        .arg("nokey")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec![Value::Nil]);
    // Timeout 0 waits for as long as it takes: served by an LPUSH made
    // directly upstream once the BLPOP has been blocked there for 2 s (twice
    // the upstream timeout, four times the `redis` crate's default response
    // timeout that used to end it).
    let h = std::thread::spawn(move || {
        let v: Vec<String> = q(&mut c, &["BLPOP", "q0", "0"]);
        (v, c)
    });
    assert!(
        wait_for(Duration::from_secs(20), || blpop_blocked_for(&mut r, 2)),
        "BLPOP 0 not blocked upstream for 2 s"
    );
    let _: i64 = q(&mut r, &["LPUSH", "q0", "job"]);
    let (v, mut c) = h.join().unwrap();
    assert_eq!(v, vec!["q0".to_string(), "job".to_string()]);
    // BLMOVE moves, and the local copy of the destination is not stale.
    let _: i64 = q(&mut r, &["RPUSH", "dst", "a"]);
    let v: Vec<String> = q(&mut c, &["LRANGE", "dst", "0", "-1"]);
    assert_eq!(v, vec!["a"]);
    let before = info_n(&mut c, "tier0_hits");
    let v: Vec<String> = q(&mut c, &["LRANGE", "dst", "0", "-1"]);
    assert_eq!(v, vec!["a"]);
    assert!(
        info_n(&mut c, "tier0_hits") > before,
        "dst not held locally"
    );
    let h = std::thread::spawn(move || {
        let v: String = q(&mut c, &["BLMOVE", "src", "dst", "RIGHT", "LEFT", "0"]);
        (v, c)
    });
    assert!(wait_for(Duration::from_secs(20), || {
        let clients: String = q(&mut r, &["CLIENT", "LIST"]);
        clients.contains("cmd=blmove")
    }));
    let _: i64 = q(&mut r, &["RPUSH", "src", "x"]);
    let (v, mut c) = h.join().unwrap();
    assert_eq!(v, "x");
    let v: Vec<String> = q(&mut c, &["LRANGE", "dst", "0", "-1"]);
    assert_eq!(
        v,
        vec!["x", "a"],
        "stale local copy of BLMOVE's destination"
    );
    let n: i64 = q(&mut r, &["LLEN", "src"]);
    assert_eq!(n, 0);
}

/// A TCP proxy in front of the upstream that passes the upstream's bytes on
/// at `rate` bytes per second per connection (requests pass at full
/// speed), so a large value takes a known minimum time to arrive. Counts
/// the bytes it passed from the upstream. Its threads end with their
/// connections.
struct SlowProxy {
    port: u16,
    from_upstream: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl SlowProxy {
    fn start(upstream: u16, rate: u64) -> SlowProxy {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let from_upstream = Arc::new(AtomicU64::new(0));
        let counter = from_upstream.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(down) = conn else { return };
                let Ok(up) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut down_r, mut up_w) = (down.try_clone().unwrap(), up.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut down_r, &mut up_w);
                    let _ = up_w.shutdown(std::net::Shutdown::Both);
                });
                let (mut up_r, mut down_w) = (up, down);
                let counter = counter.clone();
                std::thread::spawn(move || {
                    const CHUNK: usize = 16 * 1024;
                    let per_chunk = Duration::from_secs_f64(CHUNK as f64 / rate as f64);
                    let mut buf = vec![0u8; CHUNK];
                    let start = Instant::now();
                    let mut sent = 0u64;
                    loop {
                        let n = match up_r.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if down_w.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        sent += n as u64;
                        // Throttle: never ahead of `rate` since the start.
                        let due = per_chunk.mul_f64(sent as f64 / CHUNK as f64);
                        if let Some(wait) = due.checked_sub(start.elapsed()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let _ = down_w.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowProxy {
            port,
            from_upstream,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn bytes(&self) -> u64 {
        self.from_upstream.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Invalidations have a connection of their own: a large value arriving on
/// the data connection (64 MB through a proxy passing 16 MB/s, so at least
/// 4 s) delays neither another key's invalidation nor the health check, and
/// the upstream is never marked down meanwhile.
#[test]
fn invalidations_are_not_delayed_by_a_large_transfer() {
    const BIG: u64 = 64 << 20;
    let up = Upstream::start();
    let mut r = up.client();
    let proxy = SlowProxy::start(up.port, 16 << 20);
    let s = tiered_at(&proxy.url(), "20s", &[]);
    let mut c = s.client();
    let _: i64 = q(&mut r, &["SETRANGE", "big", &(BIG - 1).to_string(), "x"]);
    let _: () = q(&mut r, &["SET", "small", "old"]);
    let v: String = q(&mut c, &["GET", "small"]);
    assert_eq!(v, "old");
    let invalidations = info_n(&mut c, "tier1_invalidations");
    let before = proxy.bytes();
    let port = s.port;
    let big = std::thread::spawn(move || {
        let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
            .unwrap()
            .get_connection()
            .unwrap();
        q::<u64>(&mut c, &["STRLEN", "big"])
    });
    // The large value is on its way (the upstream ran the fetch).
    assert!(
        wait_for(Duration::from_secs(20), || proxy.bytes()
            > before + (1 << 20)),
        "the large fetch never started"
    );
    let _: () = q(&mut r, &["SET", "small", "new"]);
    assert!(
        wait_for(Duration::from_secs(20), || info_n(
            &mut c,
            "tier1_invalidations"
        ) > invalidations),
        "no invalidation"
    );
    let passed = proxy.bytes() - before;
    assert!(
        passed < BIG,
        "the invalidation waited for the large value ({passed} bytes passed first)"
    );
    assert_eq!(info(&mut c, "upstream_status"), "up");
    assert_eq!(big.join().unwrap(), BIG);
    let v: String = q(&mut c, &["GET", "small"]);
    assert_eq!(v, "new");
    assert_eq!(info(&mut c, "upstream_status"), "up");
    assert_eq!(
        info_n(&mut c, "tier1_reconnects"),
        0,
        "upstream marked down"
    );
}

/// jcache started with its output captured in `dir` (stdout, stderr).
struct Logged {
    child: Child,
    port: u16,
    out: std::path::PathBuf,
    err: std::path::PathBuf,
}

impl Logged {
    fn start(dir: &std::path::Path, args: &[&str]) -> Logged {
        let port = free_port();
        let out = dir.join(format!("jcache-{port}.out"));
        let err = dir.join(format!("jcache-{port}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_jcache"))
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--log-level", "debug"])
            .args(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start jcache");
        assert!(
            wait_for(Duration::from_secs(20), || TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "jcache did not start"
        );
        Logged {
            child,
            port,
            out,
            err,
        }
    }

    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    /// Everything it printed so far.
    fn output(&self) -> String {
        let mut all = std::fs::read_to_string(&self.out).unwrap_or_default();
        all.push_str(&std::fs::read_to_string(&self.err).unwrap_or_default());
        all
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.out);
        let _ = std::fs::remove_file(&self.err);
    }
}

/// A tier URL's password is never shown: not in INFO, not in a log line
/// (debug level), not in a configuration error, whether the password is
/// right or wrong.
#[test]
fn tier_url_password_is_never_echoed() {
    let up = Upstream::start_with(&["--requirepass", "s3cr3t-right"]);
    let dir = std::env::temp_dir();
    let whole_info = |c: &mut Connection| -> String { q(c, &["INFO", "everything"]) };
    // The right password: up, and the URL is shown without it.
    let url = format!("redis://:s3cr3t-right@127.0.0.1:{}", up.port);
    let s = Logged::start(&dir, &["--tier", "memory", "--tier", &url]);
    let mut c = s.client();
    assert!(wait_for(Duration::from_secs(10), || info(
        &mut c,
        "upstream_status"
    ) == "up"));
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let text = whole_info(&mut c);
    assert!(!text.contains("s3cr3t"), "{text}");
    assert!(!s.output().contains("s3cr3t"), "{}", s.output());
    drop(s);
    // A wrong password: connection attempts fail (and are logged), the
    // password is nowhere.
    let url = format!("redis://user:s3cr3t-wrong@127.0.0.1:{}", up.port);
    let s = Logged::start(&dir, &["--tier", "memory", "--tier", &url]);
    let mut c = s.client();
    assert!(wait_for(Duration::from_secs(10), || info_n(
        &mut c,
        "tier1_errors"
    ) >= 2));
    assert_eq!(info(&mut c, "upstream_status"), "down");
    let e = try_q(&mut c, &["GET", "k"]).unwrap_err();
    assert!(!e.to_string().contains("s3cr3t"), "{e}");
    let text = whole_info(&mut c);
    assert!(!text.contains("s3cr3t"), "{text}");
    let logged = s.output();
    assert!(
        logged.contains("cannot connect to upstream tier"),
        "{logged}"
    );
    assert!(!logged.contains("s3cr3t"), "{logged}");
    drop(s);
    // An invalid URL with a password: the configuration error hides it.
    for bad in [
        "redis://:s3cr3t-bad@127.0.0.1:99999",
        "redis://:s3cr3t-bad@127.0.0.1:1/notadb",
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_jcache"))
            .args(["--check-config", "--tier", "memory", "--tier", bad])
            .output()
            .unwrap();
        assert!(!o.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(all.contains("invalid value for tier"), "{all}");
        assert!(!all.contains("s3cr3t"), "{all}");
    }
}

/// The invalidation connection is the one the tracking connection
/// redirects to; when it is lost, invalidations are lost: the upstream is
/// marked down, fetches in flight are voided and the local tier is flushed
/// before it is marked up again, so a key changed meanwhile is not served
/// stale.
#[test]
fn losing_the_invalidation_connection_flushes_local_copies() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let _: () = q(&mut r, &["SET", "k", "old"]);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "old");
    // The tracking client names its redirect target (`redir=<id>`).
    let clients: String = q(&mut r, &["CLIENT", "LIST"]);
    let redir: Vec<i64> = clients
        .lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("redir=")))
        .filter_map(|id| id.parse().ok())
        .filter(|&id| id >= 0)
        .collect();
    assert_eq!(
        redir.len(),
        1,
        "one tracking connection redirecting: {clients}"
    );
    let _: i64 = q(&mut r, &["CLIENT", "KILL", "ID", &redir[0].to_string()]);
    // Changed while its invalidation has nowhere to go.
    let _: () = q(&mut r, &["SET", "k", "new"]);
    assert!(
        wait_for(Duration::from_secs(10), || info_n(
            &mut c,
            "tier1_reconnects"
        ) >= 1
            && info(&mut c, "upstream_status") == "up"),
        "the lost invalidation link was not noticed"
    );
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(
        v, "new",
        "stale copy served after the invalidation link was lost"
    );
}

/// A client blocked upstream (tiered BLPOP) is a blocked client like any
/// other: CLIENT UNBLOCK wakes it with a nil or an error, CLIENT KILL
/// closes it, and either way its upstream request is cancelled, so a later
/// push is not popped for nobody. (The deferred wait used to ignore both.)
#[test]
fn clients_blocked_upstream_obey_client_unblock_and_kill() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered_at(&up.url(), "2s", &[]);
    let mut admin = s.client();
    let blocked_id = |admin: &mut Connection| -> Option<i64> {
        let list: String = q(admin, &["CLIENT", "LIST"]);
        list.lines()
            .find(|l| l.contains(" flags=b "))
            .and_then(|l| l.strip_prefix("id="))
            .and_then(|l| l.split(' ').next())
            .and_then(|id| id.parse().ok())
    };
    let upstream_blocked = |r: &mut Connection| -> bool {
        let list: String = q(r, &["CLIENT", "LIST"]);
        list.lines().any(|l| l.contains("cmd=blpop"))
    };
    for how in ["TIMEOUT", "ERROR", "KILL"] {
        let mut b = s.raw();
        b.send(b"*3\r\n$5\r\nBLPOP\r\n$1\r\nq\r\n$1\r\n0\r\n");
        let mut id = None;
        assert!(
            wait_for(Duration::from_secs(10), || {
                id = blocked_id(&mut admin);
                id.is_some()
            }),
            "{how}: never shown blocked"
        );
        assert!(wait_for(Duration::from_secs(10), || upstream_blocked(
            &mut r
        )));
        let id = id.unwrap().to_string();
        match how {
            "KILL" => {
                assert_eq!(q::<i64>(&mut admin, &["CLIENT", "KILL", "ID", &id]), 1);
                assert!(b.read_to_close().is_empty());
            }
            reason => {
                assert_eq!(q::<i64>(&mut admin, &["CLIENT", "UNBLOCK", &id, reason]), 1);
                let want = if reason == "ERROR" {
                    "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n"
                } else {
                    "*-1\r\n"
                };
                assert_eq!(b.read_reply(), want);
                b.roundtrip(b"PING\r\n", b"+PONG\r\n");
            }
        }
        // The upstream request is gone: a push stays in the list.
        assert!(
            wait_for(Duration::from_secs(10), || !upstream_blocked(&mut r)),
            "{how}: still blocked upstream"
        );
        assert_eq!(blocked_id(&mut admin), None);
    }
    let _: i64 = q(&mut r, &["LPUSH", "q", "x"]);
    assert_eq!(q::<i64>(&mut r, &["LLEN", "q"]), 1);
}

/// An EXEC rejected before it runs (`EXEC junk`) ends the transaction and
/// its WATCHes, as Redis's execCommandAbort does, upstream too: the next
/// transaction must not inherit the old WATCH and abort on it.
#[test]
fn exec_abort_releases_the_upstream_watch() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.raw();
    c.send(b"WATCH k\r\nMULTI\r\nSET x 1\r\nEXEC junk\r\n");
    assert_eq!(c.read_reply(), "+OK\r\n");
    assert_eq!(c.read_reply(), "+OK\r\n");
    assert_eq!(c.read_reply(), "+QUEUED\r\n");
    assert_eq!(
        c.read_reply(),
        "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
    );
    // k changes after the aborted transaction: no WATCH holds it any more.
    let _: () = q(&mut r, &["SET", "k", "changed"]);
    c.send(b"MULTI\r\nSET y 1\r\nEXEC\r\n");
    assert_eq!(c.read_reply(), "+OK\r\n");
    assert_eq!(c.read_reply(), "+QUEUED\r\n");
    assert_eq!(c.read_reply(), "*1\r\n+OK\r\n");
    assert_eq!(
        q::<Option<String>>(&mut r, &["GET", "y"]).as_deref(),
        Some("1")
    );
    assert_eq!(q::<Option<String>>(&mut r, &["GET", "x"]), None);
}

/// Commands jcache lacks go to the upstream as they are. APPEND renamed
/// upstream to MYAPPEND stands for a module's write (a name jcache does not
/// know, found through the upstream's COMMAND INFO): it reaches the
/// upstream and drops the local copy of its key, so the next command of
/// the same pipeline reads the new value, before any tracking invalidation
/// could arrive. A read (LOLWUT) is the upstream's answer. A name the
/// upstream does not know, an @admin command (REPLICAOF renamed) and ACL
/// (never passed) get Redis's "unknown command"; inside MULTI an unknown
/// command still aborts the transaction.
#[test]
fn commands_jcache_lacks_pass_to_the_upstream() {
    let up = Upstream::start_with(&[
        "--rename-command",
        "APPEND",
        "MYAPPEND",
        "--rename-command",
        "REPLICAOF",
        "MYREPLICAOF",
    ]);
    let mut r = up.client();
    let s = tiered(&up, &[]);
    let mut c = s.client();
    let _: () = q(&mut r, &["SET", "pt:k", "v"]);
    assert_eq!(q::<String>(&mut c, &["GET", "pt:k"]), "v");
    let (len, after): (i64, String) = redis::pipe()
        .cmd("MYAPPEND")
        .arg("pt:k")
        .arg("x")
        .cmd("GET")
        .arg("pt:k")
        .query(&mut c)
        .unwrap();
    assert_eq!((len, after.as_str()), (2, "vx"));
    assert_eq!(q::<String>(&mut r, &["GET", "pt:k"]), "vx");
    // A wrong call is the upstream's own error.
    assert_eq!(
        err(&mut c, &["MYAPPEND", "pt:k"]),
        err(&mut r, &["MYAPPEND", "pt:k"])
    );
    let lolwut: String = q(&mut c, &["LOLWUT", "VERSION", "5", "1", "1", "1"]);
    assert!(lolwut.contains("Redis ver. 7.0"), "{lolwut}");
    // Unknown upstream too: Redis's text, as redis-server itself says it.
    assert_eq!(
        err(&mut c, &["NOSUCHCMD", "a", "b"]),
        err(&mut r, &["NOSUCHCMD", "a", "b"])
    );
    assert_eq!(
        err(&mut c, &["MYREPLICAOF", "no", "one"]),
        "ERR unknown command 'MYREPLICAOF', with args beginning with: 'no' 'one' "
    );
    assert_eq!(
        err(&mut c, &["ACL", "WHOAMI"]),
        "ERR unknown command 'ACL', with args beginning with: 'WHOAMI' "
    );
    let _: () = q(&mut c, &["MULTI"]);
    assert!(err(&mut c, &["MYAPPEND", "pt:k", "y"]).starts_with("ERR unknown command"));
    assert!(err(&mut c, &["EXEC"]).starts_with("EXECABORT"));
    assert_eq!(q::<String>(&mut r, &["GET", "pt:k"]), "vx");
}

/// A client of database `db` of the server on `port` (jcache or the upstream).
fn client_in(port: u16, db: usize) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .unwrap()
        .get_connection_with_timeout(Duration::from_secs(10))
        .unwrap()
}

/// How many keys jcache holds locally in database `db` (INFO keyspace).
fn local_keys(c: &mut Connection, db: usize) -> u64 {
    let text: String = cmd("INFO").arg("keyspace").query(c).unwrap();
    info_field(&text, &format!("db{db}"))
        .and_then(|v| v.split(',').next()?.strip_prefix("keys=")?.parse().ok())
        .unwrap_or(0)
}

/// The client's database n is the upstream's database n: a write through
/// jcache in database 3 lands in the upstream's database 3, not in 0, and
/// reads of database 3 are served from it.
#[test]
fn each_database_is_the_upstreams_database_of_that_index() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let mut c3 = client_in(s.port, 3);
    let _: () = q(&mut c3, &["SET", "db:k", "three"]);
    let _: () = q(&mut c3, &["HSET", "db:h", "f", "v"]);
    assert_eq!(
        q::<Option<String>>(&mut client_in(up.port, 3), &["GET", "db:k"]).as_deref(),
        Some("three")
    );
    let mut r0 = up.client();
    assert_eq!(q::<Option<String>>(&mut r0, &["GET", "db:k"]), None);
    assert_eq!(q::<i64>(&mut r0, &["EXISTS", "db:h"]), 0);
    // Keys that exist upstream only in database 0 are not read in 3.
    let _: () = q(&mut r0, &["SET", "db:only0", "zero"]);
    assert_eq!(q::<Option<String>>(&mut c3, &["GET", "db:only0"]), None);
    assert_eq!(
        q::<Option<String>>(&mut s.client(), &["GET", "db:only0"]).as_deref(),
        Some("zero")
    );
    // Read through into database 3: back-filled there, not in 0.
    let _: () = q(&mut client_in(up.port, 3), &["SET", "db:r", "x"]);
    assert_eq!(q::<String>(&mut c3, &["GET", "db:r"]), "x");
    assert!(local_keys(&mut c3, 3) >= 1);
    // Keyspace-wide reads and a pipeline run in the client's database too.
    assert_eq!(q::<i64>(&mut c3, &["DBSIZE"]), 3);
    let (a, b): (String, i64) = redis::pipe()
        .cmd("SET")
        .arg("db:p")
        .arg("1")
        .cmd("INCR")
        .arg("db:p")
        .query(&mut c3)
        .unwrap();
    assert_eq!((a.as_str(), b), ("OK", 2));
    assert_eq!(q::<i64>(&mut client_in(up.port, 3), &["GET", "db:p"]), 2);
    assert_eq!(q::<Option<i64>>(&mut r0, &["GET", "db:p"]), None);
}

/// A change made upstream in database 3 reaches jcache's copy in database 3.
/// Redis's invalidation messages name the key without its database (and
/// are sent for a change in any database), so jcache drops the key in every
/// database: the same-named key of database 0 is fetched again and still
/// reads its own value.
#[test]
fn an_upstream_change_in_a_database_drops_the_copy_in_that_database() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let (mut r0, mut r3) = (up.client(), client_in(up.port, 3));
    let _: () = q(&mut r0, &["SET", "inv:k", "zero"]);
    let _: () = q(&mut r3, &["SET", "inv:k", "three"]);
    let (mut c0, mut c3) = (s.client(), client_in(s.port, 3));
    assert_eq!(q::<String>(&mut c0, &["GET", "inv:k"]), "zero");
    assert_eq!(q::<String>(&mut c3, &["GET", "inv:k"]), "three");
    assert_eq!(local_keys(&mut c3, 3), 1, "copied into database 3");
    assert_eq!(local_keys(&mut c0, 0), 1, "copied into database 0");
    let _: () = q(&mut r3, &["SET", "inv:k", "new"]);
    assert!(
        wait_for(Duration::from_secs(10), || q::<String>(
            &mut c3,
            &["GET", "inv:k"]
        ) == "new"),
        "database 3 kept a stale copy"
    );
    assert_eq!(q::<String>(&mut c0, &["GET", "inv:k"]), "zero");
    // And the other way round.
    let _: () = q(&mut r0, &["SET", "inv:k", "new0"]);
    assert!(wait_for(Duration::from_secs(10), || q::<String>(
        &mut c0,
        &["GET", "inv:k"]
    ) == "new0"));
    assert_eq!(q::<String>(&mut c3, &["GET", "inv:k"]), "new");
}

/// SWAPDB, MOVE, COPY ... DB and FLUSHDB through jcache leave no stale copy
/// in either database (Redis 7.0 sends no invalidation for SWAPDB).
#[test]
fn commands_across_databases_leave_no_stale_copy() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let (mut c1, mut c2, mut c4) = (
        client_in(s.port, 1),
        client_in(s.port, 2),
        client_in(s.port, 4),
    );
    let _: () = q(&mut c1, &["SET", "x:a", "one"]);
    let _: () = q(&mut c2, &["SET", "x:a", "two"]);
    let _: () = q(&mut c1, &["SET", "x:m", "moved"]);
    // Copies in both databases.
    let _: String = q(&mut c1, &["GET", "x:a"]);
    let _: String = q(&mut c2, &["GET", "x:a"]);
    let _: String = q(&mut c1, &["GET", "x:m"]);
    assert_eq!(local_keys(&mut c1, 1), 2);
    assert_eq!(q::<Option<String>>(&mut c4, &["GET", "x:m"]), None);
    let _: () = q(&mut c1, &["SWAPDB", "1", "2"]);
    assert_eq!(q::<String>(&mut c1, &["GET", "x:a"]), "two");
    assert_eq!(q::<String>(&mut c2, &["GET", "x:a"]), "one");
    // x:m is in database 2 now.
    assert_eq!(q::<String>(&mut c2, &["GET", "x:m"]), "moved");
    assert_eq!(q::<i64>(&mut c2, &["MOVE", "x:m", "4"]), 1);
    assert_eq!(q::<Option<String>>(&mut c2, &["GET", "x:m"]), None);
    assert_eq!(q::<String>(&mut c4, &["GET", "x:m"]), "moved");
    // COPY into a database where the destination was read as absent.
    assert_eq!(q::<Option<String>>(&mut c1, &["GET", "x:c"]), None);
    assert_eq!(q::<i64>(&mut c4, &["COPY", "x:m", "x:c", "DB", "1"]), 1);
    assert_eq!(q::<String>(&mut c1, &["GET", "x:c"]), "moved");
    // FLUSHDB empties that database only.
    let _: () = q(&mut c4, &["FLUSHDB"]);
    assert_eq!(q::<Option<String>>(&mut c4, &["GET", "x:m"]), None);
    assert_eq!(q::<String>(&mut c1, &["GET", "x:a"]), "two");
    assert_eq!(
        q::<Option<String>>(&mut client_in(up.port, 1), &["GET", "x:c"]).as_deref(),
        Some("moved")
    );
}

/// A blocking pop in database 2 waits on the upstream's database 2: a push
/// to the same key in database 0 does not serve it, one in 2 does.
#[test]
fn a_blocking_pop_waits_in_the_clients_database() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let port = s.port;
    let waiter = std::thread::spawn(move || {
        let mut c2 = client_in(port, 2);
        q::<Option<(String, String)>>(&mut c2, &["BLPOP", "bl:q", "20"])
    });
    let mut r0 = up.client();
    assert!(
        wait_for(Duration::from_secs(10), || blpop_blocked_for(&mut r0, 0)),
        "the pop never blocked upstream"
    );
    let _: () = q(&mut r0, &["RPUSH", "bl:q", "zero"]);
    let _: () = q(&mut client_in(up.port, 2), &["RPUSH", "bl:q", "two"]);
    let got = waiter.join().unwrap();
    assert_eq!(got, Some(("bl:q".into(), "two".into())));
    assert_eq!(
        q::<Vec<String>>(&mut r0, &["LRANGE", "bl:q", "0", "-1"]),
        ["zero"]
    );
}

/// A transaction starts in the client's database; a SELECT inside it moves
/// the rest of it and the client, as in Redis.
#[test]
fn select_inside_a_transaction_moves_it_and_the_client() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let mut c = client_in(s.port, 1);
    let _: () = q(&mut c, &["MULTI"]);
    for args in [
        &["SET", "tx:a", "one"][..],
        &["SELECT", "5"],
        &["SET", "tx:a", "five"],
        &["GET", "tx:a"],
    ] {
        let queued: String = q(&mut c, args);
        assert_eq!(queued, "QUEUED");
    }
    let v: Value = q(&mut c, &["EXEC"]);
    let Value::Array(items) = v else {
        panic!("{v:?}")
    };
    assert_eq!(items.len(), 4);
    assert_eq!(items[3], Value::BulkString(b"five".to_vec()));
    // The client is in database 5 now, here and upstream alike.
    assert_eq!(q::<String>(&mut c, &["GET", "tx:a"]), "five");
    let _: () = q(&mut c, &["SET", "tx:b", "b5"]);
    assert_eq!(
        q::<Option<String>>(&mut client_in(up.port, 5), &["GET", "tx:b"]).as_deref(),
        Some("b5")
    );
    assert_eq!(
        q::<Option<String>>(&mut client_in(up.port, 1), &["GET", "tx:a"]).as_deref(),
        Some("one")
    );
    let clients: String = q(&mut c, &["CLIENT", "INFO"]);
    assert!(clients.contains(" db=5 "), "{clients}");
    // The shared upstream connections are back in database 0.
    let mut c0 = s.client();
    let _: () = q(&mut c0, &["SET", "tx:z", "zero"]);
    assert_eq!(
        q::<Option<String>>(&mut up.client(), &["GET", "tx:z"]).as_deref(),
        Some("zero")
    );
}

/// A database in the tier URL has no meaning (clients choose theirs): the
/// server refuses to start, with exit code 2, and says why.
#[test]
fn a_database_in_the_tier_url_is_refused_at_start() {
    let child = Command::new(env!("CARGO_BIN_EXE_jcache"))
        .args(["--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .args(["--tier", "memory", "--tier", "redis://:pw@127.0.0.1:6399/3"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let mut status = None;
    wait_for(Duration::from_secs(10), || {
        status = child.0.try_wait().unwrap();
        status.is_some()
    });
    assert_eq!(status.and_then(|s| s.code()), Some(2), "it started");
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("a database in the URL ('/3') is not allowed"),
        "{stderr}"
    );
    assert!(!stderr.contains(":pw@"), "{stderr}");
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `redis+sentinel://`: the tier finds the primary through a real Sentinel
/// and, after `SENTINEL FAILOVER`, follows it to the new primary, dropping
/// its local copies (the new primary may lack writes); writes land there.
#[test]
fn the_tier_follows_a_sentinel_failover() {
    let primary = Upstream::start();
    let replica = Upstream::start_with(&["--replicaof", "127.0.0.1", &primary.port.to_string()]);
    let mut r = replica.client();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let text: String = cmd("INFO").arg("replication").query(&mut r).unwrap();
            info_field(&text, "master_link_status").as_deref() == Some("up")
        }),
        "the replica never synced"
    );
    let sentinel = common::sentinel::Sentinel::start("jc", primary.port);
    assert!(sentinel.wait_replicas("jc", 1, Duration::from_secs(30)));
    // The first sentinel is not there: the next one is asked.
    let url = format!(
        "redis+sentinel://127.0.0.1:{},127.0.0.1:{}/jc",
        free_port(),
        sentinel.port
    );
    let s = tiered_at(&url, "500ms", &[]);
    let mut c = s.client();
    let old = format!("127.0.0.1:{}", primary.port);
    let new = format!("127.0.0.1:{}", replica.port);
    assert_eq!(info(&mut c, "tier1_addr"), old);
    let _: () = q(&mut c, &["SET", "sw:k", "v1"]);
    assert_eq!(q::<String>(&mut c, &["GET", "sw:k"]), "v1");
    assert_eq!(local_keys(&mut c, 0), 1, "a local copy before the switch");
    assert_eq!(q::<i64>(&mut primary.client(), &["WAIT", "1", "5000"]), 1);
    let _: () = q(&mut sentinel.client(), &["SENTINEL", "FAILOVER", "jc"]);
    assert!(
        wait_for(Duration::from_secs(60), || info(&mut c, "tier1_addr")
            == new
            && info(&mut c, "upstream_status") == "up"),
        "jcache did not follow the failover: {} (sentinel says {:?})",
        info(&mut c, "tier1_addr"),
        sentinel.primary("jc")
    );
    assert_eq!(local_keys(&mut c, 0), 0, "local copies survived the switch");
    assert_eq!(info_n(&mut c, "tier1_reconnects"), 1);
    let _: () = q(&mut c, &["SET", "sw:k", "v2"]);
    assert_eq!(
        q::<Option<String>>(&mut replica.client(), &["GET", "sw:k"]).as_deref(),
        Some("v2")
    );
    assert_eq!(q::<String>(&mut c, &["GET", "sw:k"]), "v2");
}

/// `rediss://` with a CA file and a client certificate (the upstream
/// requires one: `tls-auth-clients yes`): reads, writes and invalidations
/// work over TLS; without the client certificate the tier stays down.
#[test]
fn a_tls_upstream_with_a_ca_and_a_client_certificate() {
    let (dir, [ca, server_crt, server_key, client_crt, client_key]) = make_certificates();
    let tls_port = free_port().to_string();
    let up = Upstream::start_with(&[
        "--tls-port",
        &tls_port,
        "--tls-cert-file",
        &server_crt,
        "--tls-key-file",
        &server_key,
        "--tls-ca-cert-file",
        &ca,
        "--tls-auth-clients",
        "yes",
    ]);
    let url = format!("rediss://127.0.0.1:{tls_port}");
    let s = tiered_at(
        &url,
        "1s",
        &[
            "--upstream-tls-ca",
            &ca,
            "--upstream-tls-cert",
            &client_crt,
            "--upstream-tls-key",
            &client_key,
        ],
    );
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "tls:k", "v1"]);
    let mut r = up.client();
    assert_eq!(q::<String>(&mut r, &["GET", "tls:k"]), "v1");
    assert_eq!(q::<String>(&mut c, &["GET", "tls:k"]), "v1");
    assert_eq!(local_keys(&mut c, 0), 1);
    let _: () = q(&mut r, &["SET", "tls:k", "v2"]);
    assert!(wait_for(Duration::from_secs(10), || q::<String>(
        &mut c,
        &["GET", "tls:k"]
    ) == "v2"));
    // The upstream's clients include jcache's, all on its TLS port.
    let clients: String = q(&mut r, &["CLIENT", "LIST"]);
    assert!(
        clients
            .lines()
            .filter(|l| l.contains(&format!("laddr=127.0.0.1:{tls_port}")))
            .count()
            >= 4,
        "{clients}"
    );
    // Without a client certificate the upstream refuses the handshake.
    let s2 = Server::start(&["--tier", "memory", "--tier", &url, "--upstream-tls-ca", &ca]);
    let mut c2 = s2.client();
    assert!(wait_for(Duration::from_secs(20), || info_n(
        &mut c2,
        "tier1_errors"
    ) >= 2));
    assert_eq!(info(&mut c2, "upstream_status"), "down");
    let _ = std::fs::remove_dir_all(dir);
}

/// WATCH in database 3 watches the upstream's key in database 3: a change
/// there aborts EXEC, a change of the same name in database 0 does not.
#[test]
fn watch_in_a_database_watches_that_database() {
    let up = Upstream::start();
    let s = tiered(&up, &[]);
    let mut c = client_in(s.port, 3);
    let (mut r0, mut r3) = (up.client(), client_in(up.port, 3));
    for (r, v) in [(&mut r0, "zero"), (&mut r3, "three")] {
        let _: () = q(r, &["SET", "w:k", v]);
    }
    let exec = |c: &mut Connection| -> Option<Vec<String>> {
        let _: () = q(c, &["WATCH", "w:k"]);
        let _: () = q(c, &["MULTI"]);
        let _: String = q(c, &["GET", "w:k"]);
        q(c, &["EXEC"])
    };
    let _: () = q(&mut c, &["WATCH", "w:k"]);
    let _: () = q(&mut r0, &["SET", "w:k", "zero3"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["GET", "w:k"]);
    assert_eq!(
        q::<Option<Vec<String>>>(&mut c, &["EXEC"]),
        Some(vec!["three".into()])
    );
    let _: () = q(&mut c, &["WATCH", "w:k"]);
    let _: () = q(&mut r3, &["SET", "w:k", "three2"]);
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["GET", "w:k"]);
    assert_eq!(
        q::<Option<Vec<String>>>(&mut c, &["EXEC"]),
        None,
        "a change in db 3 aborts"
    );
    assert_eq!(exec(&mut c), Some(vec!["three2".into()]));
}

/// `rediss+sentinel://`: the sentinel is asked over TLS, names the
/// primary's TLS port (everything replicates and is monitored over TLS),
/// and the tier follows a failover there.
#[test]
fn a_tls_sentinel_upstream_follows_a_failover() {
    let (dir, [ca, crt, key, _, _]) = make_certificates();
    let tls = |port: &str| -> Vec<String> {
        [
            "--tls-port",
            port,
            "--tls-cert-file",
            &crt,
            "--tls-key-file",
            &key,
            "--tls-ca-cert-file",
            &ca,
            "--tls-auth-clients",
            "no",
            "--tls-replication",
            "yes",
        ]
        .map(String::from)
        .to_vec()
    };
    let (p_tls, r_tls) = (free_port().to_string(), free_port().to_string());
    let p_args = tls(&p_tls);
    let primary = Upstream::start_with(&p_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut r_args = tls(&r_tls);
    r_args.extend(["--replicaof".into(), "127.0.0.1".into(), p_tls.clone()]);
    let replica = Upstream::start_with(&r_args.iter().map(String::as_str).collect::<Vec<_>>());
    let mut r = replica.client();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let text: String = cmd("INFO").arg("replication").query(&mut r).unwrap();
            info_field(&text, "master_link_status").as_deref() == Some("up")
        }),
        "the replica never synced over TLS"
    );
    let s_tls = free_port();
    let conf = format!(
        "tls-port {s_tls}\ntls-cert-file {crt}\ntls-key-file {key}\ntls-ca-cert-file {ca}\n\
         tls-auth-clients no\ntls-replication yes"
    );
    let sentinel = common::sentinel::Sentinel::start_with("jct", p_tls.parse().unwrap(), &conf);
    assert!(sentinel.wait_replicas("jct", 1, Duration::from_secs(30)));
    let url = format!("rediss+sentinel://127.0.0.1:{s_tls}/jct");
    let s = tiered_at(&url, "1s", &["--upstream-tls-ca", &ca]);
    let mut c = s.client();
    assert_eq!(info(&mut c, "tier1_addr"), format!("127.0.0.1:{p_tls}"));
    let _: () = q(&mut c, &["SET", "tsw:k", "v1"]);
    assert_eq!(q::<String>(&mut c, &["GET", "tsw:k"]), "v1");
    assert_eq!(q::<i64>(&mut primary.client(), &["WAIT", "1", "5000"]), 1);
    let _: () = q(&mut sentinel.client(), &["SENTINEL", "FAILOVER", "jct"]);
    let new = format!("127.0.0.1:{r_tls}");
    assert!(
        wait_for(Duration::from_secs(60), || info(&mut c, "tier1_addr")
            == new
            && info(&mut c, "upstream_status") == "up"),
        "jcache did not follow the failover: {}",
        info(&mut c, "tier1_addr")
    );
    let _: () = q(&mut c, &["SET", "tsw:k", "v2"]);
    assert_eq!(
        q::<Option<String>>(&mut replica.client(), &["GET", "tsw:k"]).as_deref(),
        Some("v2")
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// `--upstream-tracking bcast` with a prefix: Redis keeps no per-key table
/// for this node (its tracking table stays empty) and reports every change
/// under the prefix; a key outside the prefix is never copied, so a change
/// made directly in Redis (of which no invalidation comes) is seen at once.
#[test]
fn bcast_tracking_caches_only_keys_under_its_prefixes() {
    let up = Upstream::start();
    let mut r = up.client();
    let s = tiered(
        &up,
        &[
            "--upstream-tracking",
            "bcast",
            "--upstream-tracking-prefix",
            "c:",
        ],
    );
    let mut c = s.client();
    assert_eq!(info(&mut c, "upstream_tracking"), "bcast prefixes=c:");
    let _: Value = q(&mut r, &["MSET", "c:1", "a", "o:1", "a"]);
    let fills = info_n(&mut c, "tier0_backfills");
    assert_eq!(q::<String>(&mut c, &["GET", "c:1"]), "a");
    assert_eq!(info_n(&mut c, "tier0_backfills"), fills + 1, "c:1 copied");
    let hits = info_n(&mut c, "tier0_hits");
    assert_eq!(q::<String>(&mut c, &["GET", "c:1"]), "a");
    assert_eq!(info_n(&mut c, "tier0_hits"), hits + 1, "c:1 served locally");
    // Outside the prefix: read from Redis every time, never copied.
    for v in ["b", "c", "d"] {
        let _: Value = q(&mut r, &["SET", "o:1", v]);
        assert_eq!(q::<String>(&mut c, &["GET", "o:1"]), v);
    }
    assert_eq!(
        info_n(&mut c, "tier0_backfills"),
        fills + 1,
        "o:1 never copied"
    );
    // Under the prefix: the broadcast invalidation drops the copy.
    let _: Value = q(&mut r, &["SET", "c:1", "z"]);
    assert!(
        wait_for(Duration::from_secs(10), || q::<String>(
            &mut c,
            &["GET", "c:1"]
        ) == "z"),
        "c:1 change not seen"
    );
    // Redis holds a prefix for this node, and no key.
    let up_info: String = cmd("INFO").arg("stats").query(&mut r).unwrap();
    assert_eq!(
        info_field(&up_info, "tracking_total_prefixes").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&up_info, "tracking_total_keys").as_deref(),
        Some("0")
    );
}
