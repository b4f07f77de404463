//! Streams end to end: deterministic stream and consumer-group commands
//! against jcache and a real redis-server side by side (replies must be
//! equal), blocking reads (FIFO, a client that timed out is never served,
//! non-blocking inside MULTI), DUMP/RESTORE of streams in both directions,
//! a long stream's nodes and memory against Redis's,
//! and rq's worker pipeline (`XADD ... MAXLEN ~ 10 *` inside MULTI/EXEC).

mod common;

use std::thread;
use std::time::Duration;

use common::upstream::Upstream;
use common::{command, q, wait_blocked, Server};
use redis::{Connection, Value};

/// Runs each command on both servers; every reply (errors included) must match.
fn same_replies(j: &mut Connection, r: &mut Connection, script: &[&str]) {
    for line in script {
        let args: Vec<&str> = line.split_whitespace().collect();
        let a: redis::RedisResult<Value> = command(&args).query(j);
        let b: redis::RedisResult<Value> = command(&args).query(r);
        let show = |x: &redis::RedisResult<Value>| format!("{x:?}");
        assert_eq!(show(&a), show(&b), "reply to `{line}`");
    }
}

#[test]
fn stream_commands_reply_as_redis_does() {
    let s = Server::start(&[]);
    let up = Upstream::start();
    let (mut j, mut r) = (s.client(), up.client());
    same_replies(
        &mut j,
        &mut r,
        &[
            "XADD s 1-1 a 1 b 2",
            "XADD s 1-* a 3 b 4",
            "XADD s 1-1 x y",
            "XADD s 0-0 x y",
            "XADD s 2 c 5",
            "XADD s MAXLEN ~ 10 5-0 d 6",
            "XADD s MINID 0 6-0 e 7",
            "XADD nos NOMKSTREAM 7-0 a 1",
            "XADD s LIMIT 5 8-0 a 1",
            "XADD s MAXLEN 2 LIMIT 5 8-0 a 1",
            "XADD s MAXLEN 1 MINID 1 8-0 a 1",
            "XADD s 9-0 a",
            "XADD s 9-x a b",
            "XLEN s",
            "XRANGE s - +",
            "XRANGE s (1-1 + COUNT 2",
            "XREVRANGE s + - COUNT 1",
            "XRANGE s - + COUNT 0",
            "XRANGE s (18446744073709551615-18446744073709551615 +",
            "XRANGE s - (0-0",
            "XDEL s 1-2 99-0 1-2",
            "XDEL s bad",
            "XINFO STREAM s",
            "XTRIM s MAXLEN 2",
            "XTRIM s",
            "XTRIM s MAXLEN ~ 1 LIMIT 1",
            "XGROUP CREATE s g 0",
            "XGROUP CREATE s g 0",
            "XGROUP CREATE nokey g 0",
            "XGROUP CREATE nokey g $ MKSTREAM",
            "XGROUP CREATE s g2 $ ENTRIESREAD 3",
            "XGROUP CREATE s g3 0 ENTRIESREAD -5",
            "XGROUP SETID s nog 0",
            "XGROUP CREATECONSUMER s g alice",
            "XGROUP CREATECONSUMER s g alice",
            "XREADGROUP GROUP g bob COUNT 1 STREAMS s >",
            "XREADGROUP GROUP g bob STREAMS s >",
            "XREADGROUP GROUP g bob STREAMS s $",
            "XREADGROUP GROUP nog bob STREAMS s >",
            "XREAD COUNT 1 STREAMS s nokey 0 0",
            "XREAD STREAMS s >",
            "XREAD GROUP g x STREAMS s 0",
            "XPENDING s g",
            "XPENDING s g - + 10 nobody",
            "XPENDING s nog",
            "XACK s g 6-0 6-0 100-0",
            "XINFO GROUPS s",
            "XGROUP DELCONSUMER s g bob",
            "XGROUP DESTROY s g2",
            "XSETID s 1-0",
            "XSETID s 100-0 ENTRIESADDED 100 MAXDELETEDID 50-0",
            "XINFO STREAM s",
            "XINFO STREAM nokey",
            "XGROUP HELP",
            "XINFO HELP",
            "TYPE s",
            "OBJECT ENCODING s",
            "SET str x",
            "XADD str * a 1",
            "XREAD STREAMS str 0",
        ],
    );
    // A consumer group's life with claims (times made equal by TIME).
    same_replies(
        &mut j,
        &mut r,
        &[
            "DEL s",
            "XADD s 1-0 a 1",
            "XADD s 2-0 b 2",
            "XADD s 3-0 c 3",
            "XADD s 4-0 d 4",
            "XGROUP CREATE s g 0",
            "XREADGROUP GROUP g alice STREAMS s >",
            "XDEL s 2-0",
            "XCLAIM s g bob 0 1-0 2-0 3-0 JUSTID TIME 1000",
            "XCLAIM s g bob 0 1-0 RETRYCOUNT 7 TIME 1000",
            "XCLAIM s g carol 0 4-0 9-0 FORCE TIME 1000",
            "XCLAIM s g carol 0 3-0 FORCE JUSTID LASTID 10-0 TIME 1000",
            "XINFO GROUPS s",
            "XAUTOCLAIM s g dave 0 0 COUNT 1 JUSTID",
            "XAUTOCLAIM s g dave 0 0 COUNT 10 JUSTID",
            "XAUTOCLAIM s g dave 0 0 COUNT 0",
            "XGROUP SETID s g 0 ENTRIESREAD 0",
            "XREADGROUP GROUP g erin NOACK STREAMS s >",
            "XINFO GROUPS s",
            "XREADGROUP GROUP g dave STREAMS s 0",
        ],
    );
}

#[test]
fn approximate_trimming_removes_whole_nodes_as_redis_does() {
    let s = Server::start(&[]);
    let up = Upstream::start();
    let (mut j, mut r) = (s.client(), up.client());
    for c in [&mut j, &mut r] {
        let _: () = q(c, &["CONFIG", "SET", "stream-node-max-entries", "100"]);
        for i in 1..=1000 {
            let id = format!("{i}-0");
            let _: String = q(c, &["XADD", "s", "MAXLEN", "~", "555", &id, "item", "x"]);
        }
    }
    let lj: i64 = q(&mut j, &["XLEN", "s"]);
    assert_eq!(lj, 600);
    same_replies(
        &mut j,
        &mut r,
        &[
            "XLEN s",
            "XTRIM s MAXLEN ~ 300 LIMIT 150",
            "XTRIM s MAXLEN ~ 300",
            "XTRIM s MINID ~ 950",
            "XTRIM s MINID 951",
            "XRANGE s - + COUNT 2",
            "XINFO STREAM s",
        ],
    );
}

/// An integer field of XINFO STREAM.
fn stream_info(c: &mut Connection, key: &str, field: &str) -> i64 {
    let v: Value = q(c, &["XINFO", "STREAM", key]);
    let Value::Array(items) = v else {
        panic!("{v:?}")
    };
    let at = items
        .iter()
        .position(|x| *x == Value::BulkString(field.as_bytes().to_vec()))
        .unwrap_or_else(|| panic!("no {field} in {items:?}"));
    match &items[at + 1] {
        Value::Int(n) => *n,
        other => panic!("{field}: {other:?}"),
    }
}

/// A long stream is packed into the nodes Redis would hold, costs at most
/// twice Redis's MEMORY USAGE, and reads, deletes and trims in place as
/// Redis does.
#[test]
fn a_long_stream_is_packed_into_redis_nodes_within_twice_its_memory() {
    let s = Server::start(&[]);
    let up = Upstream::start();
    let (mut j, mut r) = (s.client(), up.client());
    for c in [&mut j, &mut r] {
        let mut p = redis::pipe();
        for i in 1..=20_000 {
            p.cmd("XADD")
                .arg("s")
                .arg(format!("{i}-0"))
                .arg("f")
                .arg("v");
            p.ignore();
        }
        let _: () = p.query(c).unwrap();
    }
    let nodes = stream_info(&mut j, "s", "radix-tree-keys");
    assert_eq!(nodes, stream_info(&mut r, "s", "radix-tree-keys"));
    assert!(nodes >= 200, "{nodes} nodes for 20000 entries");
    let mj: i64 = q(&mut j, &["MEMORY", "USAGE", "s", "SAMPLES", "0"]);
    let mr: i64 = q(&mut r, &["MEMORY", "USAGE", "s", "SAMPLES", "0"]);
    assert!(mj <= 2 * mr, "jcache {mj} bytes, redis {mr}");
    same_replies(
        &mut j,
        &mut r,
        &[
            "XDEL s 5-0 20000-0 150-0 150-0 99999-0",
            "XRANGE s 1-0 8-0",
            "XREVRANGE s + - COUNT 3",
            "XREVRANGE s 152-0 148-0",
            "XRANGE s 9990-5 10003-0",
            "XLEN s",
            "XTRIM s MINID 101-0",
            "XRANGE s - + COUNT 3",
            "XTRIM s MAXLEN ~ 15000",
            "XLEN s",
        ],
    );
    assert_eq!(
        stream_info(&mut j, "s", "radix-tree-keys"),
        stream_info(&mut r, "s", "radix-tree-keys")
    );
}

/// Reads a blocked client's reply on another thread.
fn blocked(
    s: &Server,
    args: &'static [&'static str],
) -> thread::JoinHandle<redis::RedisResult<Value>> {
    let mut c = s.client();
    thread::spawn(move || command(args).query(&mut c))
}

#[test]
fn blocked_stream_reads_are_served_in_order_and_never_after_a_timeout() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    // A reader that timed out gets nil and takes nothing.
    let short = blocked(&s, &["XREAD", "BLOCK", "50", "STREAMS", "s", "$"]);
    assert_eq!(short.join().unwrap().unwrap(), Value::Nil);
    // Two XREADs and one XREADGROUP wait; one XADD serves all of them.
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$"]);
    let a = blocked(&s, &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    wait_blocked(&mut c, 1);
    let b = blocked(&s, &["XREAD", "BLOCK", "0", "STREAMS", "s", "1-0"]);
    wait_blocked(&mut c, 2);
    let g = blocked(
        &s,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c1",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut c, 3);
    let _: String = q(&mut c, &["XADD", "s", "2-0", "f", "w"]);
    let want = format!(
        "{:?}",
        Value::Array(vec![Value::Array(vec![
            Value::BulkString(b"s".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::BulkString(b"2-0".to_vec()),
                Value::Array(vec![
                    Value::BulkString(b"f".to_vec()),
                    Value::BulkString(b"w".to_vec())
                ])
            ])])
        ])])
    );
    for h in [a, b, g] {
        assert_eq!(format!("{:?}", h.join().unwrap().unwrap()), want);
    }
    // The group read left a pending entry for c1.
    let pending: Vec<Value> = q(&mut c, &["XPENDING", "s", "g"]);
    assert_eq!(pending[0], Value::Int(1));
    // A second group reader is served only by a new entry, and one XADD
    // serves one of two readers of the same group (the first to block).
    let g1 = blocked(
        &s,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c2",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut c, 1);
    let g2 = blocked(
        &s,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c3",
            "BLOCK",
            "300",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut c, 2);
    let _: String = q(&mut c, &["XADD", "s", "3-0", "f", "x"]);
    assert!(format!("{:?}", g1.join().unwrap().unwrap()).contains("3-0"));
    assert_eq!(g2.join().unwrap().unwrap(), Value::Nil);
    // Deleting the stream fails a blocked XREADGROUP.
    let g3 = blocked(
        &s,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c4",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ],
    );
    wait_blocked(&mut c, 1);
    let _: i64 = q(&mut c, &["DEL", "s"]);
    let e = g3.join().unwrap().unwrap_err();
    assert!(
        e.to_string().contains("the stream key no longer exists"),
        "{e}"
    );
}

#[test]
fn stream_reads_in_multi_do_not_block_and_rq_pipeline_works() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    let (r1, r2): (Value, Value) = redis::pipe()
        .atomic()
        .cmd("XREADGROUP")
        .arg(&["GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"])
        .cmd("XREAD")
        .arg(&["BLOCK", "0", "STREAMS", "s", "$"])
        .query(&mut c)
        .unwrap();
    assert_eq!((r1, r2), (Value::Nil, Value::Nil));
    // rq 3.0's result store: XADD with MAXLEN ~ 10 inside its pipeline.
    for i in 0..30 {
        let (id,): (String,) = redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&["rq:results:1", "MAXLEN", "~", "10", "*"])
            .arg(&["type", "1", "result", &i.to_string()])
            .query(&mut c)
            .unwrap();
        assert!(id.contains('-'));
    }
    let n: i64 = q(&mut c, &["XLEN", "rq:results:1"]);
    assert_eq!(n, 30, "a 100-entry node is never trimmed by ~ 10");
    let last: Vec<(String, Vec<String>)> = q(
        &mut c,
        &["XREVRANGE", "rq:results:1", "+", "-", "COUNT", "1"],
    );
    assert_eq!(last[0].1, vec!["type", "1", "result", "29"]);
}

#[test]
fn streams_dump_and_restore_both_ways_with_their_groups() {
    let s = Server::start(&[]);
    let up = Upstream::start();
    let (mut j, mut r) = (s.client(), up.client());
    for c in [&mut r, &mut j] {
        for i in 1..=250 {
            let id = format!("{i}-1");
            let _: String = q(c, &["XADD", "src", &id, "f", &i.to_string(), "g", "x"]);
        }
        let _: String = q(c, &["XADD", "src", "300-0", "other", "fields"]);
        let _: i64 = q(c, &["XDEL", "src", "5-1", "120-1"]);
        let _: String = q(c, &["XGROUP", "CREATE", "src", "grp", "0"]);
        let _: Value = q(
            c,
            &[
                "XREADGROUP",
                "GROUP",
                "grp",
                "alice",
                "COUNT",
                "3",
                "STREAMS",
                "src",
                ">",
            ],
        );
        let _: Value = q(
            c,
            &[
                "XCLAIM",
                "src",
                "grp",
                "bob",
                "0",
                "2-1",
                "TIME",
                "12345",
                "RETRYCOUNT",
                "4",
            ],
        );
        let _: i64 = q(c, &["XGROUP", "CREATECONSUMER", "src", "grp", "carol"]);
    }
    // Redis's payload restores in jcache and jcache's in Redis; the restored
    // streams read back like the originals.
    let from_redis: Vec<u8> = q(&mut r, &["DUMP", "src"]);
    let from_jcache: Vec<u8> = q(&mut j, &["DUMP", "src"]);
    let _: () = command(&["RESTORE", "copy", "0"])
        .arg(&from_redis)
        .query(&mut j)
        .unwrap();
    let _: () = command(&["RESTORE", "copy", "0"])
        .arg(&from_jcache)
        .query(&mut r)
        .unwrap();
    // Node counts (radix-tree-*) may differ after a restore: compare the rest.
    let strip = |v: Value| -> String {
        let Value::Array(items) = v else {
            panic!("{v:?}")
        };
        format!("{:?}", items[6..].to_vec())
    };
    let full = ["XINFO", "STREAM", "copy", "FULL", "COUNT", "0"];
    let orig = ["XINFO", "STREAM", "src", "FULL", "COUNT", "0"];
    let (jc, rs): (Value, Value) = (q(&mut j, &full), q(&mut r, &orig));
    let (rc, js): (Value, Value) = (q(&mut r, &full), q(&mut j, &orig));
    for (a, b) in [(strip(jc), strip(rs)), (strip(rc), strip(js))] {
        if a != b {
            let at = a
                .bytes()
                .zip(b.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(0);
            let (lo, hi) = (at.saturating_sub(150), at + 150);
            panic!(
                "restored differs at {at}: {} vs {}",
                &a[lo..hi.min(a.len())],
                &b[lo..hi.min(b.len())]
            );
        }
    }
    // The two servers' copies hold the same entries and pending entries.
    same_replies(
        &mut j,
        &mut r,
        &[
            "XRANGE copy - +",
            "XPENDING copy grp",
            "XINFO GROUPS copy",
            "XLEN copy",
        ],
    );
}

/// jcache in front of a real redis-server: streams live upstream only.
fn tiered(up: &Upstream) -> Server {
    let url = up.url();
    let s = Server::start(&[
        "--tier",
        "memory",
        "--tier",
        &url,
        "--upstream-timeout",
        "500ms",
    ]);
    let mut c = s.client();
    assert!(
        common::wait_for(Duration::from_secs(10), || {
            let text: String = q(&mut c, &["INFO", "tiers"]);
            common::info_field(&text, "upstream_status").as_deref() == Some("up")
        }),
        "upstream never came up"
    );
    s
}

#[test]
fn tiered_mode_runs_streams_upstream_blocking_reads_on_their_own_connection() {
    let up = Upstream::start();
    let s = tiered(&up);
    let mut c = s.client();
    let mut u = up.client();
    // rq's pipeline shape through the tier.
    let (id,): (String,) = redis::pipe()
        .atomic()
        .cmd("XADD")
        .arg(&["rq:results:7", "MAXLEN", "~", "10", "1-0", "result", "ok"])
        .query(&mut c)
        .unwrap();
    assert_eq!(id, "1-0");
    let n: i64 = q(&mut u, &["XLEN", "rq:results:7"]);
    assert_eq!(n, 1, "the entry is upstream");
    let _: String = q(&mut c, &["XADD", "s", "1-0", "f", "v"]);
    let t: String = q(&mut c, &["TYPE", "s"]);
    assert_eq!(t, "stream");
    let len: i64 = q(&mut c, &["XLEN", "s"]);
    assert_eq!(len, 1);
    let _: String = q(&mut c, &["XGROUP", "CREATE", "s", "g", "0"]);
    let got: Value = q(
        &mut c,
        &["XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"],
    );
    assert!(format!("{got:?}").contains("1-0"));
    let pending: Vec<Value> = q(&mut u, &["XPENDING", "s", "g"]);
    assert_eq!(pending[0], Value::Int(1), "the group state is upstream's");
    // A blocking read longer than the upstream timeout waits upstream and
    // is served by a write made directly at the upstream.
    let h = blocked(&s, &["XREAD", "BLOCK", "5000", "STREAMS", "s", "$"]);
    common::wait_blocked(&mut u, 1);
    thread::sleep(Duration::from_millis(700));
    let _: String = q(&mut u, &["XADD", "s", "2-0", "f", "w"]);
    assert!(format!("{:?}", h.join().unwrap().unwrap()).contains("2-0"));
    // Timing out upstream is a nil, as on Redis.
    let t: Value = q(&mut c, &["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]);
    assert_eq!(t, Value::Nil);
}

fn full_info(port: u16, key: &str) -> String {
    let c = &mut common::cluster::con(port);
    let v: Value = q(c, &["XINFO", "STREAM", key, "FULL", "COUNT", "0"]);
    let p: Value = q(c, &["XPENDING", key, "g", "-", "+", "100"]);
    // Idle times in XPENDING depend on when it runs: keep ids, owners, counts.
    let Value::Array(rows) = p else {
        panic!("{p:?}")
    };
    let rows: Vec<String> = rows
        .into_iter()
        .map(|r| {
            let Value::Array(f) = r else { panic!() };
            format!("{:?} {:?} {:?}", f[0], f[1], f[3])
        })
        .collect();
    format!("{v:?} {rows:?}")
}

#[test]
fn a_consumer_group_replicates_survives_full_sync_and_failover() {
    use common::cluster::{start_node, Cluster, Node};
    let mut c = Cluster::start(3);
    let m = c.master();
    let mp = c.nodes[m].port;
    let f0 = c.followers(m)[0];
    let fp = c.nodes[f0].port;
    let mut mc = common::cluster::con(mp);
    let mut fc = common::cluster::con(fp);
    for i in 1..=150 {
        let id = format!("{i}-0");
        // Half the writes at a follower (forwarded to the master).
        let cn = if i % 2 == 0 { &mut mc } else { &mut fc };
        let _: String = q(
            cn,
            &["XADD", "s", "MAXLEN", "~", "120", &id, "n", &i.to_string()],
        );
    }
    let _: String = q(&mut fc, &["XGROUP", "CREATE", "s", "g", "0"]);
    let _: Value = q(
        &mut fc,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "alice",
            "COUNT",
            "5",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let _: Value = q(
        &mut mc,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "bob",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    let _: Value = q(
        &mut fc,
        &[
            "XCLAIM",
            "s",
            "g",
            "carol",
            "0",
            "2-0",
            "TIME",
            "1000",
            "RETRYCOUNT",
            "9",
        ],
    );
    let _: i64 = q(&mut mc, &["XACK", "s", "g", "7-0"]);
    let _: i64 = q(&mut fc, &["XDEL", "s", "3-0"]);
    let d = c.wait_converged(Duration::from_secs(20));
    let want = full_info(mp, "s");
    for n in c.followers(m) {
        assert_eq!(full_info(c.nodes[n].port, "s"), want, "follower {n}");
    }
    // A node that joins now gets the stream by full sync, groups included.
    let s = start_node(&c.etcd, &c.name, "n3");
    c.nodes.push(Node {
        id: "n3".into(),
        port: s.port,
        server: Some(s),
    });
    assert_eq!(c.wait_converged(Duration::from_secs(20)), d);
    assert_eq!(full_info(c.nodes[3].port, "s"), want, "full sync");
    // alice holds 1-0, 3-0 (deleted since: a nil entry), 4-0, 5-0.
    // The master dies; the group resumes at the new master with the same
    // pending entries, and new deliveries continue after the last one.
    c.kill9(m);
    let m2 = c.master();
    let mut nc = common::cluster::con(c.nodes[m2].port);
    let history: Value = q(
        &mut nc,
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"],
    );
    assert_eq!(
        format!("{history:?}").matches("-0").count(),
        4,
        "{history:?}"
    );
    let next: Value = q(
        &mut nc,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "dave",
            "COUNT",
            "1",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert!(format!("{next:?}").contains("\"9-0\""), "{next:?}");
}
