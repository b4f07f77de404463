//! Memory limits: accounting, eviction policies and the OOM error, through the real binary.

mod common;

use common::{q, Server};

fn info_field(c: &mut redis::Connection, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").query(c).unwrap();
    common::info_field(&info, field)
        .unwrap_or_else(|| panic!("INFO lacks {field}"))
        .parse()
        .unwrap()
}

#[test]
fn noeviction_refuses_writes_over_the_limit_but_allows_deletes() {
    let s = Server::start(&["--maxmemory", "1mb", "--maxmemory-policy", "noeviction"]);
    let mut c = s.client();
    let value = "x".repeat(1000);
    let mut refused = None;
    for i in 0..5000 {
        if let Err(e) = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(&value)
            .query::<()>(&mut c)
        {
            refused = Some((i, e.to_string()));
            break;
        }
    }
    let (n, err) = refused.expect("writes past 1mb must be refused");
    assert!(
        err.contains("command not allowed when used memory > 'maxmemory'"),
        "{err}"
    );
    assert!(n > 100, "refused too early, after {n} keys");
    // Reads and deletes still work; after deleting, writes are accepted again.
    let v: String = redis::cmd("GET").arg("k0").query(&mut c).unwrap();
    assert_eq!(v, value);
    let deleted: i64 = redis::cmd("DEL")
        .arg((0..200).map(|i| format!("k{i}")).collect::<Vec<_>>())
        .query(&mut c)
        .unwrap();
    assert_eq!(deleted, 200);
    let _: () = redis::cmd("SET")
        .arg("again")
        .arg(&value)
        .query(&mut c)
        .unwrap();
}

#[test]
fn allkeys_lru_keeps_memory_under_the_limit_and_prefers_recent_keys() {
    let s = Server::start(&["--maxmemory", "2mb", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.client();
    let value = "v".repeat(500);
    for i in 0..20_000 {
        let _: () = redis::cmd("SET")
            .arg(format!("key:{i}"))
            .arg(&value)
            .query(&mut c)
            .unwrap();
    }
    let used = info_field(&mut c, "used_memory");
    assert!(
        used <= 2 * 1024 * 1024 + 4096,
        "used_memory {used} over the limit"
    );
    assert!(info_field(&mut c, "evicted_keys") > 10_000);
    let size: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert!(size > 1000 && size < 20_000, "dbsize {size}");
    // The most recent writes survive.
    let last: Option<String> = redis::cmd("GET").arg("key:19999").query(&mut c).unwrap();
    assert!(last.is_some());
}

#[test]
fn volatile_policy_evicts_only_keys_with_a_ttl() {
    let s = Server::start(&["--maxmemory", "1mb", "--maxmemory-policy", "volatile-lru"]);
    let mut c = s.client();
    let value = "p".repeat(400);
    for i in 0..500 {
        let _: () = redis::cmd("SET")
            .arg(format!("persistent:{i}"))
            .arg(&value)
            .query(&mut c)
            .unwrap();
    }
    for i in 0..5000 {
        let r = redis::cmd("SET")
            .arg(format!("volatile:{i}"))
            .arg(&value)
            .arg("EX")
            .arg(1000)
            .query::<()>(&mut c);
        if r.is_err() {
            break;
        }
    }
    let kept: i64 = redis::cmd("EXISTS")
        .arg(
            (0..500)
                .map(|i| format!("persistent:{i}"))
                .collect::<Vec<_>>(),
        )
        .query(&mut c)
        .unwrap();
    assert_eq!(
        kept, 500,
        "volatile-lru must never evict keys without a TTL"
    );
    assert!(info_field(&mut c, "evicted_keys") > 0);
}

#[test]
fn used_memory_tracks_what_is_held() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let before = info_field(&mut c, "used_memory");
    for i in 0..1000 {
        let _: () = redis::cmd("RPUSH")
            .arg("list")
            .arg(format!("element-{i:08}"))
            .query(&mut c)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("hash")
            .arg(format!("f{i}"))
            .arg("v".repeat(100))
            .query(&mut c)
            .unwrap();
    }
    let during = info_field(&mut c, "used_memory");
    assert!(
        during > before + 100_000,
        "before {before}, during {during}"
    );
    let _: () = redis::cmd("FLUSHALL").query(&mut c).unwrap();
    let after = info_field(&mut c, "used_memory");
    assert_eq!(after, 0, "used_memory after FLUSHALL");
}

#[test]
fn client_no_touch_leaves_access_data_alone_except_for_touch() {
    let s = Server::start(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.client();
    let freq = |c: &mut redis::Connection, k: &str| -> i64 { q(c, &["OBJECT", "FREQ", k]) };
    let _: () = q(&mut c, &["SET", "a", "1"]);
    let _: () = q(&mut c, &["SET", "b", "1"]);
    let start = freq(&mut c, "a");
    let _: () = q(&mut c, &["CLIENT", "NO-TOUCH", "ON"]);
    for _ in 0..50 {
        let _: Option<String> = q(&mut c, &["GET", "a"]);
    }
    // Inside a transaction too.
    let _: Vec<Option<String>> = redis::pipe()
        .atomic()
        .cmd("GET")
        .arg("a")
        .query(&mut c)
        .unwrap();
    assert_eq!(
        freq(&mut c, "a"),
        start,
        "a NO-TOUCH read changed the LFU counter"
    );
    // TOUCH still touches: the counter's first step is certain (p = 1).
    let n: i64 = q(&mut c, &["TOUCH", "b"]);
    assert_eq!(n, 1);
    assert!(
        freq(&mut c, "b") > start,
        "TOUCH under NO-TOUCH did not touch"
    );
    let _: () = q(&mut c, &["CLIENT", "NO-TOUCH", "OFF"]);
    let _: Option<String> = q(&mut c, &["GET", "a"]);
    assert!(
        freq(&mut c, "a") > start,
        "a read with NO-TOUCH OFF did not touch"
    );
}
