//! Introspection and operations end to end: SLOWLOG, MONITOR, CLIENT
//! PAUSE, sharded Pub/Sub, LATENCY, MEMORY STATS and the INFO fields
//! client test suites and exporters read. No timing assertions: a paused
//! write is checked by whether it has completed.

mod common;

use std::time::Duration;

use common::*;
use redis::Value;

fn bulk(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(n) => n.to_string(),
        other => panic!("not a string: {other:?}"),
    }
}

fn items(v: &Value) -> &Vec<Value> {
    match v {
        Value::Array(a) => a,
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn slowlog_keeps_entries_as_redis_formats_them() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let _: () = q(&mut c, &["CLIENT", "SETNAME", "slowpoke"]);
    // 40 arguments: 31 kept, the 32nd says how many more.
    let mut args: Vec<String> = vec!["SADD".into(), "set".into()];
    args.extend((0..38).map(|i| i.to_string()));
    let argv: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let _: i64 = q(&mut c, &argv);
    let long = "A".repeat(130);
    let _: i64 = q(&mut c, &["SADD", "set", &long]);

    let log: Value = q(&mut c, &["SLOWLOG", "GET", "-1"]);
    let log = items(&log);
    // Newest first: SLOWLOG RESET is the oldest entry here.
    let newest = items(&log[0]);
    assert_eq!(newest.len(), 6);
    let logged: Vec<String> = items(&newest[3]).iter().map(bulk).collect();
    assert_eq!(
        logged,
        vec![
            "SADD".to_string(),
            "set".into(),
            format!("{}... (2 more bytes)", "A".repeat(128))
        ]
    );
    assert!(bulk(&newest[4]).starts_with("127.0.0.1:"), "{newest:?}");
    assert_eq!(bulk(&newest[5]), "slowpoke");

    let many: Vec<String> = items(&items(&log[1])[3]).iter().map(bulk).collect();
    assert_eq!(many.len(), 32);
    assert_eq!(many[30], "28");
    assert_eq!(many[31], "... (9 more arguments)");
    // Ids grow by one per entry.
    let id = |e: &Value| match items(e)[0] {
        Value::Int(n) => n,
        ref o => panic!("{o:?}"),
    };
    assert_eq!(id(&log[0]), id(&log[1]) + 1);

    // Secrets are not logged.
    let _: () = q(&mut c, &["CONFIG", "SET", "requirepass", ""]);
    let log: Value = q(&mut c, &["SLOWLOG", "GET", "1"]);
    let args: Vec<String> = items(&items(&log)[0])[3..4]
        .iter()
        .flat_map(|a| items(a).iter().map(bulk).collect::<Vec<_>>())
        .collect();
    assert_eq!(args, ["CONFIG", "SET", "requirepass", "(redacted)"]);

    // A blocked command enters the log once served, after the write that
    // served it.
    let mut b = s.raw_served();
    b.send(&words("BLPOP list 0"));
    wait_blocked(&mut c, 1);
    let _: i64 = q(&mut c, &["LPUSH", "list", "x"]);
    assert!(b.read_reply().starts_with("*2\r\n"));
    assert!(wait_for(Duration::from_secs(10), || {
        let log: Value = q(&mut c, &["SLOWLOG", "GET", "1"]);
        let first: Vec<String> = items(&items(&log)[0])[3..4]
            .iter()
            .flat_map(|a| items(a).iter().map(bulk).collect::<Vec<_>>())
            .collect();
        first == ["BLPOP", "list", "0"]
    }));

    let len: i64 = q(&mut c, &["SLOWLOG", "LEN"]);
    assert!(len >= 4, "{len}");
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-max-len", "2"]);
    let len: i64 = q(&mut c, &["SLOWLOG", "LEN"]);
    assert_eq!(len, 2);
    assert_err(
        &mut c,
        &["SLOWLOG", "GET", "-2"],
        "count should be greater than or equal to -1",
    );
    // Off: nothing more is logged.
    let _: () = q(&mut c, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    let _: () = q(&mut c, &["SLOWLOG", "RESET"]);
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let len: i64 = q(&mut c, &["SLOWLOG", "LEN"]);
    assert_eq!(len, 0);
}

/// Reads one MONITOR line (a status reply) from a raw socket.
fn monitor_line(r: &mut Raw) -> String {
    let line = r.read_reply();
    assert!(line.starts_with('+') && line.ends_with("\r\n"), "{line:?}");
    line
}

/// `+<secs>.<usecs> [0 <origin>] <args>\r\n` split into origin and args.
fn parse_monitor(line: &str) -> (String, String) {
    let rest = line.strip_prefix('+').unwrap();
    let (ts, rest) = rest.split_once(' ').unwrap();
    let (secs, usecs) = ts.split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && usecs.len() == 6, "{line:?}");
    let rest = rest.strip_prefix("[0 ").unwrap();
    let (origin, args) = rest.split_once("] ").unwrap();
    (origin.to_string(), args.trim_end().to_string())
}

#[test]
fn monitor_shows_other_clients_commands() {
    let s = Server::start(&[]);
    let mut m = s.raw();
    m.send(&words("MONITOR"));
    assert_eq!(m.read_reply(), "+OK\r\n");
    // A raw client: the redis crate's own CLIENT SETINFO would show too.
    let mut c = s.raw_served();
    assert_eq!(parse_monitor(&monitor_line(&mut m)).1, r#""PING""#);
    let mut run = |args: &[&[u8]]| {
        c.send(&req(args));
        c.read_reply()
    };
    run(&[b"SET", b"foo", b"bar\"baz\n"]);
    let (origin, args) = parse_monitor(&monitor_line(&mut m));
    assert!(origin.starts_with("127.0.0.1:"), "{origin}");
    assert_eq!(args, r#""SET" "foo" "bar\"baz\n""#);

    // Admin commands are not shown; AUTH's arguments are redacted; a
    // script comes before its own commands, which come from "lua".
    run(&[b"CONFIG", b"GET", b"maxmemory"]);
    run(&[b"AUTH", b"secret"]);
    run(&[b"EVAL", b"return redis.call('get', KEYS[1])", b"1", b"foo"]);
    let (_, args) = parse_monitor(&monitor_line(&mut m));
    assert_eq!(args, r#""AUTH" "(redacted)""#);
    let (_, args) = parse_monitor(&monitor_line(&mut m));
    assert!(args.starts_with(r#""EVAL""#), "{args}");
    let (origin, args) = parse_monitor(&monitor_line(&mut m));
    assert_eq!((origin.as_str(), args.as_str()), ("lua", r#""get" "foo""#));

    // A transaction: MULTI, its commands, EXEC.
    run(&[b"MULTI"]);
    run(&[b"INCR", b"n"]);
    run(&[b"EXEC"]);
    let seen: Vec<String> = (0..3)
        .map(|_| parse_monitor(&monitor_line(&mut m)).1)
        .collect();
    assert_eq!(seen, [r#""MULTI""#, r#""INCR" "n""#, r#""EXEC""#]);

    let mut c = s.client();
    let list: String = q(&mut c, &["CLIENT", "LIST"]);
    assert!(list.lines().any(|l| l.contains("flags=O")), "{list}");
}

#[test]
fn client_pause_write_holds_a_set_but_not_a_get() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    let mut w = s.raw_served();
    w.send(&words("SET paused v"));
    let info = || -> String {
        let mut c = s.client();
        q(&mut c, &["INFO", "clients"])
    };
    assert!(
        wait_for(Duration::from_secs(10), || info_field(
            &info(),
            "blocked_clients"
        )
        .as_deref()
            == Some("1")),
        "the SET never waited"
    );
    // Reads are served meanwhile, and the SET has not run.
    let v: Option<String> = q(&mut c, &["GET", "paused"]);
    assert_eq!(v, None);
    let pong: String = q(&mut c, &["PING"]);
    assert_eq!(pong, "PONG");
    // A write from a MULTI waits at EXEC; a read-only transaction does not.
    let mut t = redis::pipe();
    t.atomic().cmd("GET").arg("paused");
    let (got,): (Option<String>,) = t.query(&mut c).unwrap();
    assert_eq!(got, None);

    let _: () = q(&mut c, &["CLIENT", "UNPAUSE"]);
    assert_eq!(w.read_reply(), "+OK\r\n");
    let v: Option<String> = q(&mut c, &["GET", "paused"]);
    assert_eq!(v.as_deref(), Some("v"));
    assert!(wait_for(Duration::from_secs(10), || info_field(
        &info(),
        "blocked_clients"
    )
    .as_deref()
        == Some("0")));
    assert_err(
        &mut c,
        &["CLIENT", "PAUSE", "10", "SOME"],
        "CLIENT PAUSE mode must be WRITE or ALL",
    );
    assert_err(&mut c, &["CLIENT", "PAUSE", "-1"], "timeout is negative");
}

#[test]
fn client_pause_keeps_expired_keys_until_unpaused() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "gone", "v", "PX", "1"]);
    let _: () = q(&mut c, &["CLIENT", "PAUSE", "100000", "WRITE"]);
    let expired = |c: &mut redis::Connection| -> String {
        let info: String = q(c, &["INFO", "stats"]);
        info_field(&info, "expired_keys").unwrap()
    };
    let before = expired(&mut c);
    // Logically expired: invisible, but not deleted while paused.
    assert!(wait_for(Duration::from_secs(10), || {
        q::<Option<String>>(&mut c, &["GET", "gone"]).is_none()
    }));
    assert_eq!(expired(&mut c), before);
    let _: () = q(&mut c, &["CLIENT", "UNPAUSE"]);
    let _: Option<String> = q(&mut c, &["GET", "gone"]);
    assert_ne!(expired(&mut c), before);
}

#[test]
fn spublish_reaches_shard_subscribers_only() {
    let s = Server::start(&[]);
    let mut sub = s.raw();
    sub.send(&words("SSUBSCRIBE news"));
    assert_eq!(
        sub.read_reply(),
        "*3\r\n$10\r\nssubscribe\r\n$4\r\nnews\r\n:1\r\n"
    );
    let mut c = s.client();
    let n: i64 = q(&mut c, &["SPUBLISH", "news", "hello"]);
    assert_eq!(n, 1);
    assert_eq!(
        sub.read_reply(),
        "*3\r\n$8\r\nsmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n"
    );
    // A shard channel is not a channel.
    let n: i64 = q(&mut c, &["PUBLISH", "news", "x"]);
    assert_eq!(n, 0);
    let chans: Vec<String> = q(&mut c, &["PUBSUB", "SHARDCHANNELS"]);
    assert_eq!(chans, ["news"]);
    let counts: Vec<Value> = q(&mut c, &["PUBSUB", "SHARDNUMSUB", "news", "other"]);
    let counts: Vec<String> = counts.iter().map(bulk).collect();
    assert_eq!(counts, ["news", "1", "other", "0"]);
    let info: String = q(&mut c, &["INFO", "stats"]);
    assert_eq!(
        info_field(&info, "pubsubshard_channels").as_deref(),
        Some("1")
    );
    sub.send(&words("SUNSUBSCRIBE"));
    assert_eq!(
        sub.read_reply(),
        "*3\r\n$12\r\nsunsubscribe\r\n$4\r\nnews\r\n:0\r\n"
    );
    let n: i64 = q(&mut c, &["SPUBLISH", "news", "hello"]);
    assert_eq!(n, 0);
}

#[test]
fn latency_monitor_records_slow_commands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(
        &mut c,
        &["CONFIG", "SET", "latency-monitor-threshold", "10"],
    );
    let _: () = q(&mut c, &["DEBUG", "SLEEP", "0.05"]);
    let latest: Value = q(&mut c, &["LATENCY", "LATEST"]);
    let latest = items(&latest);
    let ev = latest
        .iter()
        .map(items)
        .find(|e| bulk(&e[0]) == "command")
        .expect("a command event");
    let ms: u64 = bulk(&ev[2]).parse().unwrap();
    assert!(ms >= 10, "{ms}");
    let hist: Value = q(&mut c, &["LATENCY", "HISTORY", "command"]);
    assert_eq!(items(&hist).len(), 1);
    let graph: String = q(&mut c, &["LATENCY", "GRAPH", "command"]);
    assert!(graph.starts_with("command - high "), "{graph}");
    let report: String = q(&mut c, &["LATENCY", "DOCTOR"]);
    assert!(report.contains("1. command: 1 latency spikes"), "{report}");
    let n: i64 = q(&mut c, &["LATENCY", "RESET"]);
    assert_eq!(n, 1);
    let latest: Value = q(&mut c, &["LATENCY", "LATEST"]);
    assert!(items(&latest).is_empty());

    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let _: () = q(&mut c, &["SET", "a", "b"]);
    let h: Value = q(&mut c, &["LATENCY", "HISTOGRAM", "set"]);
    let h = format!("{h:?}");
    assert!(h.contains("calls") && h.contains("histogram_usec"), "{h}");
    let info: String = q(&mut c, &["INFO", "latencystats"]);
    let line = info_field(&info, "latency_percentiles_usec_set").expect(&info);
    assert!(line.starts_with("p50=") && line.contains(",p99=") && line.contains(",p99.9="));
}

#[test]
fn a_blocked_call_counts_as_redis_counts_it() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let stat = |c: &mut redis::Connection, name: &str| {
        let info: String = q(c, &["INFO", "commandstats"]);
        info_field(&info, &format!("cmdstat_{name}"))
    };
    // As Redis 7.0.15 (call() counts a call that blocks; its end adds
    // the failure): one call while it waits, still one after.
    let mut b = s.raw_served();
    b.send(&req(&[b"BLPOP", b"list", b"0"]));
    wait_blocked(&mut c, 1);
    let line = stat(&mut c, "blpop").expect("blpop counted when it blocked");
    assert!(
        line.starts_with("calls=1,") && line.ends_with(",failed_calls=0"),
        "{line}"
    );
    let _: i64 = q(&mut c, &["LPUSH", "list", "v"]);
    assert_eq!(b.read_reply(), "*2\r\n$4\r\nlist\r\n$1\r\nv\r\n");
    let line = stat(&mut c, "blpop").expect("blpop counted once served");
    assert!(
        line.starts_with("calls=1,") && line.ends_with(",rejected_calls=0,failed_calls=0"),
        "{line}"
    );
    // Ended by an error (the group destroyed): a failed call and an
    // error reply (unit/type/stream-cgroups checks the same).
    let _: () = q(&mut c, &["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
    b.send(&req(&[
        b"XREADGROUP",
        b"GROUP",
        b"g",
        b"a",
        b"BLOCK",
        b"0",
        b"STREAMS",
        b"s",
        b">",
    ]));
    wait_blocked(&mut c, 1);
    let _: i64 = q(&mut c, &["XGROUP", "DESTROY", "s", "g"]);
    assert!(b.read_reply().starts_with("-NOGROUP "));
    let line = stat(&mut c, "xreadgroup").expect("xreadgroup counted");
    assert!(
        line.starts_with("calls=1,") && line.ends_with(",failed_calls=1"),
        "{line}"
    );
    let info: String = q(&mut c, &["INFO", "errorstats"]);
    assert_eq!(
        info_field(&info, "errorstat_NOGROUP").as_deref(),
        Some("count=1")
    );
    // A client killed while blocked keeps its one call, not failed
    // (Redis frees it without more statistics).
    let mut k = s.raw_served();
    k.send(&req(&[b"CLIENT", b"SETNAME", b"victim"]));
    assert_eq!(k.read_reply(), "+OK\r\n");
    k.send(&req(&[b"BRPOP", b"other", b"0"]));
    wait_blocked(&mut c, 1);
    let killed: i64 = q(
        &mut c,
        &["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"],
    );
    assert!(killed >= 1);
    wait_blocked(&mut c, 0);
    let line = stat(&mut c, "brpop").expect("brpop counted when it blocked");
    assert!(
        line.starts_with("calls=1,") && line.ends_with(",failed_calls=0"),
        "{line}"
    );
}

#[test]
fn info_has_the_fields_clients_and_exporters_read() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let info: String = q(&mut c, &["INFO"]);
    let sections: Vec<&str> = info.lines().filter(|l| l.starts_with('#')).collect();
    assert_eq!(
        sections,
        [
            "# Server",
            "# Clients",
            "# Memory",
            "# Persistence",
            "# Stats",
            "# Replication",
            "# CPU",
            "# Modules",
            "# Errorstats",
            "# Cluster",
            "# Keyspace"
        ]
    );
    for (field, value) in [
        ("cluster_enabled", Some("0")),
        ("redis_version", Some("7.0.15")),
        ("redis_mode", Some("standalone")),
        ("role", Some("master")),
        ("aof_enabled", Some("0")),
        ("loading", Some("0")),
        ("rdb_bgsave_in_progress", Some("0")),
        ("mem_allocator", None),
        ("used_memory_peak", None),
        ("used_memory_overhead", None),
        ("total_system_memory", None),
        ("mem_fragmentation_ratio", None),
        ("instantaneous_ops_per_sec", None),
        ("instantaneous_input_kbps", None),
        ("total_net_input_bytes", None),
        ("keyspace_hits", None),
        ("expired_keys", None),
        ("evicted_keys", None),
        ("pubsubshard_channels", Some("0")),
        ("rdb_last_save_time", None),
        ("master_repl_offset", None),
        ("repl_backlog_size", None),
        ("used_cpu_sys_main_thread", None),
        ("total_reads_processed", None),
        ("configured_hz", Some("10")),
        ("run_id", None),
    ] {
        let got = info_field(&info, field);
        assert!(got.is_some(), "{field} missing:\n{info}");
        if let Some(v) = value {
            assert_eq!(got.as_deref(), Some(v), "{field}");
        }
    }
    assert_eq!(info_field(&info, "run_id").unwrap().len(), 40);
    let all: String = q(&mut c, &["INFO", "everything"]);
    assert!(all.contains("# Latencystats") && all.contains("# Commandstats"));
    let one: String = q(&mut c, &["INFO", "cluster"]);
    assert_eq!(one.trim_end(), "# Cluster\r\ncluster_enabled:0");
}

#[test]
fn memory_stats_and_doctor_answer() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = q(&mut c, &["SET", "k", "v"]);
    let stats: Value = q(&mut c, &["MEMORY", "STATS"]);
    let flat = format!("{stats:?}");
    for k in [
        "peak.allocated",
        "total.allocated",
        "keys.count",
        "dataset.bytes",
        "allocator.allocated",
        "fragmentation",
        "db.0",
    ] {
        assert!(flat.contains(k), "{k} missing: {flat}");
    }
    let doctor: String = q(&mut c, &["MEMORY", "DOCTOR"]);
    assert!(doctor.contains("Sam"), "{doctor}");
    let malloc: String = q(&mut c, &["MEMORY", "MALLOC-STATS"]);
    assert!(malloc.contains("jemalloc"), "{malloc}");
    // The allocator's statistics are compiled in (they read 0 without
    // jemalloc's `stats` feature): allocated <= active <= resident.
    let info: String = q(&mut c, &["INFO", "memory"]);
    let field = |name: &str| -> u64 {
        info_field(&info, name)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {info}"))
    };
    let (allocated, active, resident) = (
        field("allocator_allocated"),
        field("allocator_active"),
        field("allocator_resident"),
    );
    assert!(
        0 < allocated && allocated <= active && active <= resident,
        "{allocated} {active} {resident}"
    );
    let _: () = q(&mut c, &["MEMORY", "PURGE"]);
}

#[test]
fn cluster_master_monitors_see_forwarded_writes_and_spublish_crosses_nodes() {
    use common::cluster::Cluster;
    let c = Cluster::start(2);
    let m = c.master();
    let f = c.followers(m)[0];
    let (mp, fp) = (c.nodes[m].port, c.nodes[f].port);
    let raw = |port: u16| {
        let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Raw { s }
    };
    let mut mon = raw(mp);
    mon.send(&words("MONITOR"));
    assert_eq!(mon.read_reply(), "+OK\r\n");
    let mut sub = raw(mp);
    sub.send(&words("SSUBSCRIBE shard"));
    assert_eq!(
        sub.read_reply(),
        "*3\r\n$10\r\nssubscribe\r\n$5\r\nshard\r\n:1\r\n"
    );
    // A write at the follower runs at the master, whose monitors see it.
    let mut w = raw(fp);
    w.send(&words("SET forwarded v"));
    assert_eq!(w.read_reply(), "+OK\r\n");
    let mut seen = Vec::new();
    while !seen.iter().any(|a| a == r#""SET" "forwarded" "v""#) {
        assert!(
            seen.len() < 100,
            "the master's monitor never saw the SET: {seen:?}"
        );
        seen.push(parse_monitor(&mon.read_reply()).1);
    }
    // SPUBLISH at the follower reaches the master's shard subscriber.
    w.send(&words("SPUBLISH shard hi"));
    let n = w.read_reply();
    assert!(n.starts_with(':'), "{n}");
    assert_eq!(
        sub.read_reply(),
        "*3\r\n$8\r\nsmessage\r\n$5\r\nshard\r\n$2\r\nhi\r\n"
    );
}

/// Sends each command to jcache and to a real redis-server 7.0.15 and
/// expects the same reply bytes.
fn replies_equal_redis(cmds: &[&str]) {
    let s = Server::start(&[]);
    let reference = common::upstream::Upstream::start();
    let mut c = s.raw();
    let mut r = Raw {
        s: std::net::TcpStream::connect(("127.0.0.1", reference.port)).unwrap(),
    };
    r.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for cmd in cmds {
        c.send(&common::words(cmd));
        r.send(&common::words(cmd));
        assert_eq!(c.read_reply(), r.read_reply(), "{cmd}");
    }
}

/// MODULE as redis-server 7.0.15 answers it with its defaults: no module
/// loaded, LOAD/LOADEX/UNLOAD refused by `enable-module-command no`, the
/// same HELP and argument errors.
#[test]
fn module_answers_as_redis_without_modules() {
    replies_equal_redis(&[
        "MODULE LIST",
        "MODULE HELP",
        "MODULE LOAD /nonexistent.so",
        "MODULE LOADEX /nonexistent.so",
        "MODULE UNLOAD nosuch",
        "MODULE LOADEX",
        "MODULE NOSUCH",
    ]);
}

/// COMMAND GETKEYS's answers for calls without keys, as redis-server's
/// getKeysSubcommandImpl gives them.
#[test]
fn command_getkeys_errors_are_redis_s() {
    replies_equal_redis(&[
        "COMMAND GETKEYS EVAL x 0",
        "COMMAND GETKEYS FCALL f 0",
        "COMMAND GETKEYS PING",
        "COMMAND GETKEYS PING x",
        "COMMAND GETKEYS NOSUCH x",
        "COMMAND GETKEYS ZUNIONSTORE d 0",
        "COMMAND GETKEYS SET a b",
    ]);
}

/// COMMAND GETKEYSANDFLAGS finds keys by the key specifications where
/// their flags are fixed, and by the command's own key function otherwise
/// (SET's flags depend on GET, SORT's STORE, BITFIELD's writes).
#[test]
fn command_getkeysandflags_is_redis_s() {
    replies_equal_redis(&[
        "COMMAND GETKEYSANDFLAGS SET k1 v1",
        "COMMAND GETKEYSANDFLAGS SET k1 v1 GET",
        "COMMAND GETKEYSANDFLAGS MSET k1 v1 k2 v2",
        "COMMAND GETKEYSANDFLAGS LMOVE k1 k2 left right",
        "COMMAND GETKEYSANDFLAGS SORT k1 STORE k2",
        "COMMAND GETKEYSANDFLAGS SORT_RO k1",
        "COMMAND GETKEYSANDFLAGS BITFIELD k GET u8 0",
        "COMMAND GETKEYSANDFLAGS BITFIELD k SET u8 0 1",
        "COMMAND GETKEYSANDFLAGS EVAL s 2 a b c",
        "COMMAND GETKEYSANDFLAGS XREAD COUNT 2 STREAMS a b 0 0",
        "COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 2 a b",
        "COMMAND GETKEYSANDFLAGS LMPOP 2 a b LEFT",
        "COMMAND GETKEYSANDFLAGS MIGRATE h 1 k 0 5",
        "COMMAND GETKEYSANDFLAGS XGROUP CREATE k g $",
        "COMMAND GETKEYSANDFLAGS MEMORY USAGE k",
        "COMMAND GETKEYSANDFLAGS GET",
        "COMMAND GETKEYSANDFLAGS PING",
        "COMMAND GETKEYSANDFLAGS NOSUCH x",
        "COMMAND GETKEYSANDFLAGS",
        "COMMAND HELP",
    ]);
}

/// LOLWUT: the version line, and the art's argument errors (the art
/// itself is random in both servers).
#[test]
fn lolwut_answers_as_redis() {
    replies_equal_redis(&[
        "LOLWUT",
        "LOLWUT VERSION 7",
        "LOLWUT VERSION x",
        "LOLWUT VERSION 5 x",
        "LOLWUT VERSION 6 10 x",
        "LOLWUT VERSION 5 1 1 1",
    ]);
}

/// COMMAND INFO and COMMAND DOCS of every command and subcommand both
/// servers have (containers apart: their subcommands come in hash order)
/// are redis-server 7.0.15's: flags, ACL categories in Redis's order, the
/// legacy key range, tips, key specifications, summaries, arguments.
#[test]
fn command_info_and_docs_are_redis_s_for_every_command() {
    let s = Server::start(&[]);
    let reference = common::upstream::Upstream::start();
    let mut ours = s.client();
    let mut theirs = reference.client();
    let names: Vec<String> = q(&mut ours, &["COMMAND", "LIST"]);
    let known: std::collections::HashSet<String> =
        q::<Vec<String>>(&mut theirs, &["COMMAND", "LIST"])
            .into_iter()
            .collect();
    let mut c = s.raw();
    let mut r = Raw {
        s: std::net::TcpStream::connect(("127.0.0.1", reference.port)).unwrap(),
    };
    r.s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut compared = 0;
    for name in names.iter().filter(|n| known.contains(*n)) {
        let subs: Vec<Value> = q(&mut theirs, &["COMMAND", "INFO", name]);
        let container = match &subs[0] {
            Value::Array(info) => !items(&info[9]).is_empty(),
            _ => false,
        };
        if container {
            continue;
        }
        for sub in ["INFO", "DOCS"] {
            let req = common::req(&[b"COMMAND", sub.as_bytes(), name.as_bytes()]);
            c.send(&req);
            r.send(&req);
            assert_eq!(c.read_reply(), r.read_reply(), "COMMAND {sub} {name}");
        }
        compared += 1;
    }
    assert!(compared > 250, "only {compared} commands compared");
}
