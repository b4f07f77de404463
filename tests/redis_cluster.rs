//! jcache in front of a real Redis Cluster (3 primaries + 3 replicas,
//! `redis+cluster://`): keys land on their slot's primary, multi-key
//! commands across slots are split or refused with CROSSSLOT, SELECT n is
//! refused, a change made directly in a shard is invalidated, and a killed
//! primary's shard recovers once its replica is promoted.

mod common;

use std::time::{Duration, Instant};

use common::redis_cluster::RedisCluster;
use common::{command, err, info_field, make_certificates, q, wait_for, Server};
use redis::{cmd, Connection, RedisResult, Value};

const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";

/// jcache in front of the cluster, waiting until every primary is up.
fn tiered(rc: &RedisCluster) -> Server {
    let s = Server::start(&[
        "--tier",
        "memory",
        "--tier",
        &rc.url(),
        "--upstream-timeout",
        "500ms",
    ]);
    let mut c = s.client();
    assert!(
        wait_for(Duration::from_secs(20), || info(&mut c, "upstream_status")
            == "up"),
        "the upstream cluster never came up"
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

/// A client of jcache that gives up reading after 10 s (a hang fails).
fn client(s: &Server) -> Connection {
    let c = s.client();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c
}

fn try_q(c: &mut Connection, args: &[&str]) -> RedisResult<Value> {
    command(args).query(c)
}

#[test]
fn every_type_lands_on_its_slots_primary() {
    let rc = RedisCluster::start();
    let s = tiered(&rc);
    let mut c = client(&s);
    let mut owners = std::collections::HashSet::new();
    for i in 0..12 {
        let k = |t: &str| format!("{t}:{i}");
        let _: () = q(&mut c, &["SET", &k("str"), "v"]);
        let _: i64 = q(&mut c, &["HSET", &k("hash"), "f", "v"]);
        let _: i64 = q(&mut c, &["RPUSH", &k("list"), "a", "b"]);
        let _: i64 = q(&mut c, &["SADD", &k("set"), "m"]);
        let _: i64 = q(&mut c, &["ZADD", &k("zset"), "1", "m"]);
        let _: String = q(&mut c, &["XADD", &k("stream"), "*", "f", "v"]);
        let _: i64 = q(&mut c, &["PFADD", &k("hll"), "a", "b"]);
        for (t, ty) in [
            ("str", "string"),
            ("hash", "hash"),
            ("list", "list"),
            ("set", "set"),
            ("zset", "zset"),
            ("stream", "stream"),
            ("hll", "string"),
        ] {
            let key = k(t);
            let port = rc.primary_of(&key).unwrap();
            owners.insert(port);
            let mut owner = rc.node(port);
            let found: String = q(&mut owner, &["TYPE", &key]);
            assert_eq!(found, ty, "{key} on its primary {port}");
            // Read back through jcache (fetched from that primary, then local).
            assert_eq!(q::<String>(&mut c, &["TYPE", &key]), ty, "{key} via jcache");
        }
        assert_eq!(q::<String>(&mut c, &["GET", &k("str")]), "v");
        assert_eq!(q::<String>(&mut c, &["HGET", &k("hash"), "f"]), "v");
        assert_eq!(
            q::<Vec<String>>(&mut c, &["LRANGE", &k("list"), "0", "-1"]),
            ["a", "b"]
        );
        assert_eq!(q::<i64>(&mut c, &["PFCOUNT", &k("hll")]), 2);
    }
    assert_eq!(owners.len(), 3, "the keys spread over every primary");
}

#[test]
fn cross_slot_commands_split_or_refused() {
    let rc = RedisCluster::start();
    let s = tiered(&rc);
    let mut c = client(&s);
    let keys: Vec<String> = (0..10).map(|i| format!("k{i}")).collect();
    let mut mset = vec!["MSET"];
    for k in &keys {
        mset.extend([k.as_str(), k.as_str()]);
    }
    let _: () = q(&mut c, &mset);
    for k in &keys {
        let got: String = q(&mut rc.owner(k), &["GET", k]);
        assert_eq!(&got, k, "{k} on its primary");
    }
    let mut mget: Vec<&str> = vec!["MGET"];
    mget.extend(keys.iter().map(|k| k.as_str()));
    mget.push("missing");
    let got: Vec<Option<String>> = q(&mut c, &mget);
    let mut want: Vec<Option<String>> = keys.iter().cloned().map(Some).collect();
    want.push(None);
    assert_eq!(got, want);
    let mut exists = vec!["EXISTS"];
    exists.extend(keys.iter().map(|k| k.as_str()));
    exists.push("missing");
    assert_eq!(q::<i64>(&mut c, &exists), 10);
    exists[0] = "TOUCH";
    assert_eq!(q::<i64>(&mut c, &exists), 10);
    assert_eq!(q::<i64>(&mut c, &["DEL", "k0", "k1", "k2", "missing"]), 3);
    assert_eq!(q::<i64>(&mut c, &["UNLINK", "k3", "k4", "k5"]), 3);
    assert_eq!(q::<i64>(&mut c, &["EXISTS", "k0", "k3", "k6"]), 1);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 4);
    // Other multi-key commands across slots: Redis Cluster's own error.
    for args in [
        &["MSETNX", "a", "1", "b", "2"][..],
        &["SUNIONSTORE", "d", "k6", "k7"],
        &["RENAME", "k6", "k7"],
        &["EVAL", "return 1", "2", "k6", "k7"],
        &["WATCH", "k6", "k7"],
    ] {
        assert_eq!(err(&mut c, args), CROSSSLOT, "{args:?}");
    }
    // The same slot (a hash tag) runs.
    let _: () = q(&mut c, &["SET", "{t}a", "1"]);
    let _: () = q(&mut c, &["RENAME", "{t}a", "{t}b"]);
    assert_eq!(q::<String>(&mut c, &["GET", "{t}b"]), "1");
    // A transaction across slots is discarded with CROSSSLOT.
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["SET", "k6", "x"]);
    let _: String = q(&mut c, &["SET", "k7", "y"]);
    assert_eq!(err(&mut c, &["EXEC"]), CROSSSLOT);
    assert_eq!(q::<String>(&mut c, &["GET", "k6"]), "k6");
    let _: () = q(&mut c, &["MULTI"]);
    let _: String = q(&mut c, &["INCR", "{t}n"]);
    let _: String = q(&mut c, &["INCR", "{t}n"]);
    assert_eq!(q::<Vec<i64>>(&mut c, &["EXEC"]), [1, 2]);
    // Only database 0 exists in a cluster.
    assert_eq!(
        err(&mut c, &["SELECT", "1"]),
        "ERR SELECT is not allowed in cluster mode"
    );
    let _: () = q(&mut c, &["SELECT", "0"]);
    // Script loads and keyspace-wide commands reach every primary.
    let body = "return redis.call('GET', KEYS[1])";
    let sha: String = q(&mut c, &["SCRIPT", "LOAD", body]);
    for k in ["k6", "k7", "k8", "k9"] {
        assert_eq!(q::<String>(&mut c, &["EVALSHA", &sha, "1", k]), k);
    }
    let mut all: Vec<String> = q(&mut c, &["KEYS", "k*"]);
    all.sort();
    assert_eq!(all, ["k6", "k7", "k8", "k9"]);
    let _: () = q(&mut c, &["FLUSHALL"]);
    assert_eq!(q::<i64>(&mut c, &["DBSIZE"]), 0);
    assert_eq!(q::<Option<String>>(&mut c, &["GET", "k6"]), None);
}

#[test]
fn a_change_in_a_shard_is_invalidated() {
    let rc = RedisCluster::start();
    let s = tiered(&rc);
    let mut c = client(&s);
    for i in 0..6 {
        let key = format!("inv{i}");
        let _: () = q(&mut c, &["SET", &key, "old"]);
        assert_eq!(q::<String>(&mut c, &["GET", &key]), "old");
        // Held locally now: the next read is a local hit.
        let hits = info_n(&mut c, "tier0_hits");
        assert_eq!(q::<String>(&mut c, &["GET", &key]), "old");
        assert!(info_n(&mut c, "tier0_hits") > hits, "{key} cached");
        let _: () = q(&mut rc.owner(&key), &["SET", &key, "new"]);
        assert!(
            wait_for(Duration::from_secs(10), || {
                q::<String>(&mut c, &["GET", &key]) == "new"
            }),
            "{key} changed in its shard, still old through jcache"
        );
    }
}

#[test]
fn a_killed_primary_is_replaced_without_stale_reads() {
    let mut rc = RedisCluster::start();
    let s = tiered(&rc);
    let mut c = client(&s);
    let key = "victim";
    let _: () = q(&mut c, &["SET", key, "v1"]);
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v1");
    // Another shard's key, to show it keeps working meanwhile.
    let dead = rc.primary_of(key).unwrap();
    let other = (0..100)
        .map(|i| format!("other{i}"))
        .find(|k| rc.primary_of(k) != Some(dead))
        .unwrap();
    let _: () = q(&mut c, &["SET", &other, "o1"]);
    // Let the replica catch up with v1 before its primary dies.
    let _: Value = q(&mut rc.node(dead), &["WAIT", "1", "5000"]);
    rc.kill(dead);
    // Local copies are still served.
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v1");
    // Writes to the dead shard fail fast (never hang), then succeed again.
    let mut failures = 0;
    let recovered = wait_for(Duration::from_secs(60), || {
        let start = Instant::now();
        let r = try_q(&mut c, &["SET", key, "v2"]);
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a write to the dead shard took {:?}",
            start.elapsed()
        );
        if r.is_err() {
            failures += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        r.is_ok()
    });
    assert!(recovered, "writes never resumed after the failover");
    assert!(
        failures > 0,
        "no write failed while the shard had no primary"
    );
    let new_primary = rc.primary_of(key).unwrap();
    assert_ne!(new_primary, dead);
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v2");
    assert_eq!(q::<String>(&mut rc.node(new_primary), &["GET", key]), "v2");
    // The other shard kept its data, and changes on the new primary reach us.
    assert_eq!(q::<String>(&mut c, &["GET", &other]), "o1");
    let _: () = q(&mut rc.node(new_primary), &["SET", key, "v3"]);
    assert!(
        wait_for(Duration::from_secs(10), || q::<String>(
            &mut c,
            &["GET", key]
        ) == "v3"),
        "a change on the promoted primary is not seen"
    );
}

/// A slot moved between primaries while jcache runs: during the migration
/// the old primary answers ASK (followed with ASKING), after it MOVED
/// (the map is refreshed and the request retried); no read is stale.
#[test]
fn a_migrating_slot_is_followed_through_ask_and_moved() {
    let rc = RedisCluster::start();
    let s = tiered(&rc);
    let mut c = client(&s);
    let key = "migrant";
    let _: () = q(&mut c, &["SET", key, "v1"]);
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v1");
    let from = rc.primary_of(key).unwrap();
    let to = (0..100)
        .map(|i| format!("x{i}"))
        .find_map(|k| rc.primary_of(&k).filter(|&p| p != from))
        .unwrap();
    let id = |port: u16| q::<String>(&mut rc.node(port), &["CLUSTER", "MYID"]);
    let (from_id, to_id) = (id(from), id(to));
    let slot: i64 = q(&mut rc.node(from), &["CLUSTER", "KEYSLOT", key]);
    let slot = slot.to_string();
    let (mut a, mut b) = (rc.node(from), rc.node(to));
    let _: () = q(
        &mut b,
        &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id],
    );
    let _: () = q(&mut a, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]);
    let port = to.to_string();
    let _: Value = q(
        &mut a,
        &["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", key],
    );
    // Migrating: the old primary answers ASK for the key.
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v1");
    let _: () = q(&mut c, &["SET", key, "v2"]);
    // The importing node answers for the slot only after ASKING.
    let _: () = q(&mut b, &["ASKING"]);
    assert_eq!(q::<String>(&mut b, &["GET", key]), "v2");
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v2");
    // Migrated: every primary names the new owner; jcache's map is stale
    // until its next refresh, and a MOVED refreshes it at once.
    for p in rc.ports.clone() {
        // Replicas refuse SETSLOT; they learn it from their primaries.
        let _ =
            command(&["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]).query::<Value>(&mut rc.node(p));
    }
    let _: () = q(&mut c, &["SET", key, "v3"]);
    assert_eq!(q::<String>(&mut b, &["GET", key]), "v3");
    assert_eq!(q::<String>(&mut c, &["GET", key]), "v3");
    let _: () = q(&mut b, &["SET", key, "v4"]);
    assert!(
        wait_for(Duration::from_secs(10), || q::<String>(
            &mut c,
            &["GET", key]
        ) == "v4"),
        "a change on the new owner is not seen"
    );
}

/// `rediss+cluster://`: every node reached over TLS (verified with the CA
/// file); writes land on their primaries, and invalidations arrive.
#[test]
fn a_tls_cluster_upstream() {
    let (dir, [ca, server_crt, server_key, _, _]) = make_certificates();
    let rc = RedisCluster::start_with(Some((&ca, &server_crt, &server_key)));
    assert!(rc.url().starts_with("rediss+cluster://"));
    let s = Server::start(&[
        "--tier",
        "memory",
        "--tier",
        &rc.url(),
        "--upstream-timeout",
        "1s",
        "--upstream-tls-ca",
        &ca,
    ]);
    let mut c = client(&s);
    assert!(
        wait_for(Duration::from_secs(20), || info(&mut c, "upstream_status")
            == "up"),
        "the TLS cluster never came up"
    );
    for i in 0..6 {
        let key = format!("tls{i}");
        let _: () = q(&mut c, &["SET", &key, "v1"]);
        assert_eq!(q::<String>(&mut rc.owner(&key), &["GET", &key]), "v1");
        assert_eq!(q::<String>(&mut c, &["GET", &key]), "v1");
        let _: () = q(&mut rc.owner(&key), &["SET", &key, "v2"]);
        assert!(
            wait_for(Duration::from_secs(10), || q::<String>(
                &mut c,
                &["GET", &key]
            ) == "v2"),
            "{key} changed in its shard, still old through jcache"
        );
    }
    drop(rc);
    let _ = std::fs::remove_dir_all(dir);
}
