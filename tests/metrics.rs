//! The operations port (`--metrics-port`): `/metrics` read by a
//! Prometheus text parser, `/healthz`, and `/readyz` in standalone, tiered
//! (upstream down is a metric, not unreadiness) and cluster mode (not ready
//! before the first sync).

mod common;

use std::time::Duration;

use common::cluster::{start_node_with, Etcd};
use common::upstream::Upstream;
use common::{free_port, info_field, q, wait_for, Server};
use prometheus_parse::{Sample, Scrape, Value};

/// GET over HTTP/1 with a real client: (status, body).
fn http_get(port: u16, path: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut r = agent
        .get(&format!("http://127.0.0.1:{port}{path}"))
        .call()
        .unwrap_or_else(|e| panic!("GET {path} on {port}: {e}"));
    let body = r.body_mut().read_to_string().unwrap();
    (r.status().as_u16(), body)
}

fn scrape(port: u16) -> Vec<Sample> {
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("Prometheus text")
        .samples
}

/// The value of the sample named `name` whose labels include `labels`.
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match &s.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
            Value::Histogram(b) => b.iter().map(|c| c.count).fold(0.0, f64::max),
            Value::Summary(_) => f64::NAN,
        })
}

fn start_with_metrics(extra: &[&str]) -> (Server, u16) {
    let mport = free_port();
    let mut args = vec!["--metrics-port".to_string(), mport.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    (Server::start(&args), mport)
}

#[test]
fn metrics_show_what_info_shows() {
    let (s, mport) = start_with_metrics(&["--maxmemory", "64mb"]);
    let mut c = s.client();
    for i in 0..5 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
    }
    for _ in 0..3 {
        let _: Option<String> = q(&mut c, &["GET", "k0"]);
    }
    let _: Option<String> = q(&mut c, &["GET", "absent"]);
    let _: () = q(&mut c, &["SELECT", "2"]);
    let _: () = q(&mut c, &["SET", "other", "v"]);
    let _: () = q(&mut c, &["LPUSH", "list", "a"]);
    // A WRONGTYPE error: a failed call of GET.
    assert!(redis::cmd("GET")
        .arg("list")
        .query::<String>(&mut c)
        .is_err());

    let m = scrape(mport);
    let v = |name: &str, labels: &[(&str, &str)]| {
        value(&m, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in {m:#?}"))
    };
    assert_eq!(v("jcache_commands_total", &[("cmd", "set")]), 6.0);
    assert_eq!(v("jcache_commands_total", &[("cmd", "get")]), 5.0);
    assert_eq!(v("jcache_command_errors_total", &[("cmd", "get")]), 1.0);
    assert_eq!(
        v("jcache_error_replies_total", &[("code", "WRONGTYPE")]),
        1.0
    );
    // The histogram's +Inf bucket holds every call that ran.
    assert_eq!(v("jcache_command_duration_seconds", &[("cmd", "get")]), 5.0);
    assert_eq!(
        v("jcache_command_duration_seconds_count", &[("cmd", "get")]),
        5.0
    );
    // GET k0 three times, and the GET of the list (found, of the wrong type).
    assert_eq!(v("jcache_keyspace_hits_total", &[]), 4.0);
    assert_eq!(v("jcache_keyspace_misses_total", &[]), 1.0);
    assert_eq!(v("jcache_keys", &[("db", "0")]), 5.0);
    assert_eq!(v("jcache_keys", &[("db", "2")]), 2.0);
    assert_eq!(v("jcache_maxmemory_bytes", &[]), (64u64 << 20) as f64);
    assert!(v("jcache_used_memory_bytes", &[]) > 0.0);
    let config = [
        ("policy", "noeviction"),
        ("maxmemory_source", "config"),
        ("policy_source", "default"),
    ];
    assert_eq!(v("jcache_maxmemory_config", &config), 1.0);
    assert_eq!(v("jcache_connected_clients", &[]), 1.0);
    assert_eq!(v("jcache_blocked_clients", &[]), 0.0);
    assert_eq!(v("jcache_replication_role", &[("role", "master")]), 1.0);
    assert_eq!(v("jcache_replication_epoch", &[]), 0.0);
    // No tiers, no tier metrics.
    assert!(value(&m, "jcache_upstream_up", &[]).is_none());

    // The same numbers as INFO.
    let info: String = q(&mut c, &["INFO", "all"]);
    let hits: f64 = info_field(&info, "keyspace_hits").unwrap().parse().unwrap();
    assert_eq!(hits, 4.0);
    assert_eq!(
        info_field(&info, "maxmemory_source").as_deref(),
        Some("config")
    );

    assert_eq!(http_get(mport, "/healthz").0, 200);
    assert_eq!(http_get(mport, "/readyz").0, 200);
    assert_eq!(http_get(mport, "/nothing").0, 404);
}

/// The upstream's state is a metric: while it is down the node still
/// serves its hits, and stays ready.
#[test]
fn upstream_down_is_a_metric_not_unreadiness() {
    let mut up = Upstream::start();
    let url = up.url();
    let (s, mport) = start_with_metrics(&["--tier", "memory", "--tier", &url]);
    let came_up = wait_for(Duration::from_secs(10), || {
        value(&scrape(mport), "jcache_upstream_up", &[]) == Some(1.0)
    });
    assert!(came_up, "upstream_up never went to 1");
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let _: Option<String> = q(&mut c, &["GET", "k"]);
    let _: Option<String> = q(&mut c, &["GET", "k"]);
    let m = scrape(mport);
    let v = |m: &[Sample], name: &str, labels: &[(&str, &str)]| {
        value(m, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in {m:#?}"))
    };
    assert_eq!(v(&m, "jcache_upstream_up", &[]), 1.0);
    let memory = [("tier", "0"), ("kind", "memory")];
    assert!(v(&m, "jcache_tier_misses_total", &memory) >= 1.0);
    assert!(v(&m, "jcache_tier_hits_total", &memory) >= 1.0);
    assert!(v(&m, "jcache_upstream_request_duration_seconds_count", &[]) >= 1.0);

    up.kill();
    let down = wait_for(Duration::from_secs(20), || {
        value(&scrape(mport), "jcache_upstream_up", &[]) == Some(0.0)
    });
    assert!(down, "upstream_up never went to 0");
    let (status, body) = http_get(mport, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(http_get(mport, "/healthz").0, 200);
}

/// A cluster node is not ready before it knows its master and holds a
/// complete keyspace, and is ready after; a follower that never completes
/// a sync (it speaks no protocol version the master speaks) stays unready
/// while it knows its master.
#[test]
fn readyz_waits_for_the_first_sync() {
    let etcd = Etcd::start();
    let etcd_pid = etcd.pid() as i32;
    // With etcd stopped no master can be known.
    unsafe { libc::kill(etcd_pid, libc::SIGSTOP) };
    let ma = free_port().to_string();
    let a = start_node_with(&etcd, "ready", "a", &["--metrics-port", &ma]);
    let ma: u16 = ma.parse().unwrap();
    let (status, body) = http_get(ma, "/readyz");
    unsafe { libc::kill(etcd_pid, libc::SIGCONT) };
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("no master known"), "{body}");
    assert_eq!(http_get(ma, "/healthz").0, 200);
    let ready = wait_for(Duration::from_secs(30), || http_get(ma, "/readyz").0 == 200);
    assert!(ready, "the only node never became ready");
    let mut c = a.client();
    for i in 0..100 {
        let _: () = q(&mut c, &["SET", &format!("k{i}"), "v"]);
    }

    let mb = free_port().to_string();
    let _b = start_node_with(&etcd, "ready", "b", &["--metrics-port", &mb]);
    let mb: u16 = mb.parse().unwrap();
    let ready = wait_for(Duration::from_secs(30), || http_get(mb, "/readyz").0 == 200);
    assert!(ready, "the follower never became ready");
    let m = scrape(mb);
    assert_eq!(
        value(&m, "jcache_replication_role", &[("role", "follower")]),
        Some(1.0)
    );
    assert_eq!(value(&m, "jcache_keys", &[("db", "0")]), Some(100.0));
    let listed = wait_for(Duration::from_secs(10), || {
        value(
            &scrape(ma),
            "jcache_replication_follower_offset",
            &[("follower", "b")],
        )
        .is_some()
    });
    assert!(listed, "the master does not list follower b");

    let mc = free_port().to_string();
    let cnode = start_node_with(
        &etcd,
        "ready",
        "c",
        &[
            "--metrics-port",
            &mc,
            "--cluster-test-protocol-version",
            "99",
        ],
    );
    let mc: u16 = mc.parse().unwrap();
    let refused = wait_for(Duration::from_secs(20), || {
        let i: String = q(&mut cnode.client(), &["INFO", "replication"]);
        info_field(&i, "master_node_id").as_deref() == Some("a")
            && info_field(&i, "repl_peers_incompatible").is_some_and(|v| !v.is_empty())
    });
    assert!(refused, "node c never met (and was refused by) master a");
    let (status, body) = http_get(mc, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("first sync"), "{body}");
}

/// Under a cgroup memory limit (fixture files, read through the debug-only
/// `--test-cgroup-root`) with nothing set, maxmemory is 75% of it and a full
/// cache evicts instead of answering -OOM; INFO and /metrics say where both
/// settings came from, and CONFIG SET makes them `runtime`.
#[test]
fn a_cgroup_limit_bounds_memory_and_evicts() {
    let root = std::env::temp_dir().join(format!("jcache-cgroup-e2e-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("proc/self")).unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup")).unwrap();
    std::fs::write(root.join("proc/self/cgroup"), "0::/\n").unwrap();
    std::fs::write(root.join("sys/fs/cgroup/memory.max"), "8388608\n").unwrap();
    let root_arg = root.display().to_string();
    let (s, mport) = start_with_metrics(&["--test-cgroup-root", &root_arg]);
    let mut c = s.client();
    let info: String = q(&mut c, &["INFO", "memory"]);
    let field = |info: &str, f: &str| info_field(info, f).unwrap_or_default();
    assert_eq!(field(&info, "maxmemory"), (8388608 / 100 * 75).to_string());
    assert_eq!(field(&info, "maxmemory_policy"), "allkeys-lru");
    assert_eq!(field(&info, "maxmemory_source"), "cgroup");
    assert_eq!(field(&info, "maxmemory_policy_source"), "cgroup");
    // 16 MB of values into a 6 MB limit: every write succeeds.
    let payload = "x".repeat(4096);
    for i in 0..4000 {
        let _: () = q(&mut c, &["SET", &format!("key:{i}"), &payload]);
    }
    let info: String = q(&mut c, &["INFO"]);
    let evicted: u64 = field(&info, "evicted_keys").parse().unwrap();
    let used: u64 = field(&info, "used_memory").parse().unwrap();
    assert!(evicted > 0, "{info}");
    // Eviction runs before a write, as in Redis: the last write may land
    // over the limit by its own size.
    assert!(used <= 8388608 / 100 * 75 + 8192, "{info}");
    let m = scrape(mport);
    let config = [
        ("policy", "allkeys-lru"),
        ("maxmemory_source", "cgroup"),
        ("policy_source", "cgroup"),
    ];
    assert_eq!(value(&m, "jcache_maxmemory_config", &config), Some(1.0));
    assert_eq!(
        value(&m, "jcache_evicted_keys_total", &[]),
        Some(evicted as f64)
    );
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    let info: String = q(&mut c, &["INFO", "memory"]);
    assert_eq!(field(&info, "maxmemory_source"), "cgroup");
    assert_eq!(field(&info, "maxmemory_policy_source"), "runtime");
    // An explicit maxmemory, 0 included, turns the cgroup default off.
    let (s0, _) = start_with_metrics(&["--test-cgroup-root", &root_arg, "--maxmemory", "0"]);
    let info: String = q(&mut s0.client(), &["INFO", "memory"]);
    assert_eq!(field(&info, "maxmemory"), "0");
    assert_eq!(field(&info, "maxmemory_policy"), "noeviction");
    assert_eq!(field(&info, "maxmemory_source"), "config");
    let _ = std::fs::remove_dir_all(&root);
}
