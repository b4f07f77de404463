//! Server-level behaviour: configuration, authentication, limits, INFO,
//! transactions and graceful shutdown, through the real binary.

mod common;

use std::time::Duration;

use common::{info_field, q, Server};

#[test]
fn requirepass_gates_every_command_but_auth() {
    let s = Server::start(&["--requirepass", "sekret"]);
    let mut r = s.raw();
    r.roundtrip(b"DBSIZE\r\n", b"-NOAUTH Authentication required.\r\n");
    r.roundtrip(
        b"AUTH wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    r.roundtrip(b"AUTH sekret\r\n", b"+OK\r\n");
    r.roundtrip(b"DBSIZE\r\n", b":0\r\n");
    let mut r2 = s.raw();
    r2.roundtrip(
        b"HELLO 3 AUTH default wrong\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    r2.send(b"HELLO 3 AUTH default sekret\r\n");
    assert_eq!(r2.read_exact_len(3), b"%7\r");
}

#[test]
fn maxclients_rejects_with_redis_error() {
    let s = Server::start(&["--maxclients", "2"]);
    let a = s.raw_served();
    let _b = s.raw_served();
    let mut c = s.raw();
    assert_eq!(c.read_to_close(), b"-ERR max number of clients reached\r\n");
    drop(a);
    // Once a slot frees up, a new client is served again.
    assert!(common::wait_for(Duration::from_secs(5), || {
        let mut d = s.raw();
        d.send(b"PING\r\n");
        let mut buf = [0u8; 7];
        std::io::Read::read_exact(&mut d.s, &mut buf).is_ok() && &buf == b"+PONG\r\n"
    }));
}

#[test]
fn protocol_limits_and_errors() {
    let s = Server::start(&[]);
    for (req, err) in [
        (
            &b"*3000000000\r\n"[..],
            &b"-ERR Protocol error: invalid multibulk length\r\n"[..],
        ),
        (
            b"*1\r\n$-10\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*1\r\n$600000000\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"set a \"b\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
    ] {
        let mut r = s.raw();
        r.send(req);
        assert_eq!(
            r.read_to_close(),
            err.to_vec(),
            "for {:?}",
            String::from_utf8_lossy(req)
        );
    }
    let mut r = s.raw();
    r.send(&vec![b'a'; 70 * 1024]);
    assert_eq!(
        r.read_to_close(),
        b"-ERR Protocol error: too big inline request\r\n"
    );
    // The server keeps serving others.
    let mut ok = s.raw();
    ok.roundtrip(b"PING\r\n", b"+PONG\r\n");
}

#[test]
fn config_get_set_and_validation() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg("10mb")
        .query(&mut c)
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query(&mut c)
        .unwrap();
    assert_eq!(v, vec!["maxmemory".to_string(), "10485760".to_string()]);
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("bogus")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("maxmemory-policy"), "{err}");
    let err = redis::cmd("CONFIG")
        .arg("SET")
        .arg("no-such-option")
        .arg("1")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("Unknown option"), "{err}");
    // Redis tuning options are accepted and reported.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("hash-max-listpack-entries")
        .arg("7")
        .query(&mut c)
        .unwrap();
    let v: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("hash-max-listpack-entries")
        .query(&mut c)
        .unwrap();
    assert_eq!(v[1], "7");
}

#[test]
fn info_has_redis_sections() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let info: String = redis::cmd("INFO").query(&mut c).unwrap();
    for field in [
        "redis_version:7.0.15",
        "connected_clients:",
        "used_memory:",
        "total_commands_processed:",
        "role:master",
        "# Keyspace",
    ] {
        assert!(info.contains(field), "INFO lacks {field}");
    }
}

#[test]
fn info_commandstats_counts_calls_rejections_and_failures() {
    let s = Server::start(&["--requirepass", "pw"]);
    let mut c = s.client();
    let _: () = q(&mut c, &["AUTH", "pw"]);
    let info = |c: &mut redis::Connection, section: &str| -> String {
        let mut cmd = redis::cmd("INFO");
        if !section.is_empty() {
            cmd.arg(section);
        }
        cmd.query(c).unwrap()
    };
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let _: () = q(&mut c, &["SET", "s", "text"]);
    for _ in 0..2 {
        let _: Option<String> = q(&mut c, &["GET", "s"]);
    }
    // Ran, replied with an error: a failed call.
    assert!(redis::cmd("INCR").arg("s").query::<i64>(&mut c).is_err());
    // Refused before running (another client, not authenticated): a
    // rejected call.
    let mut other = s.client();
    assert!(redis::cmd("GET").arg("s").query::<()>(&mut other).is_err());
    // Commands inside EXEC count as calls.
    let _: ((), Option<String>) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("t")
        .arg("1")
        .cmd("GET")
        .arg("t")
        .query(&mut c)
        .unwrap();
    let _: Vec<String> = q(&mut c, &["CONFIG", "GET", "maxmemory"]);
    let stats = info(&mut c, "commandstats");
    let line = |name: &str| -> String {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{name}:")))
            .unwrap_or_else(|| panic!("no cmdstat_{name} in {stats}"))
            .to_string()
    };
    let calls_of = |name: &str| -> String {
        line(name)
            .split(',')
            .filter(|f| !f.starts_with("usec"))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(calls_of("set"), "calls=2,rejected_calls=0,failed_calls=0");
    assert_eq!(calls_of("get"), "calls=3,rejected_calls=1,failed_calls=0");
    assert_eq!(calls_of("incr"), "calls=1,rejected_calls=0,failed_calls=1");
    assert_eq!(
        calls_of("config|get"),
        "calls=1,rejected_calls=0,failed_calls=0"
    );
    assert!(line("set").contains(",usec="), "{stats}");
    // Sections: commandstats only with "all", "everything" or by name.
    assert!(!info(&mut c, "").contains("# Commandstats"));
    assert!(!info(&mut c, "default").contains("# Commandstats"));
    assert!(info(&mut c, "all").contains("cmdstat_get:"));
    let cpu = info(&mut c, "cpu");
    assert!(cpu.contains("used_cpu_user_children:") && !cpu.contains("used_memory"));
    // CONFIG RESETSTAT clears them.
    let _: () = q(&mut c, &["CONFIG", "RESETSTAT"]);
    let after = info(&mut c, "commandstats");
    assert!(!after.contains("cmdstat_get:"), "{after}");
}

#[test]
fn command_list_filters_and_command_info_of_subcommands() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let list = |c: &mut redis::Connection, args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = redis::cmd("COMMAND")
            .arg("LIST")
            .arg(args)
            .query(c)
            .unwrap();
        v.sort();
        v
    };
    let all = list(&mut c, &[]);
    assert!(all.contains(&"set".to_string()) && all.contains(&"client|list".to_string()));
    assert_eq!(
        list(&mut c, &["FILTERBY", "PATTERN", "zun*"]),
        ["zunion", "zunionstore"]
    );
    assert_eq!(
        list(&mut c, &["filterby", "pattern", "CONFIG|g*"]),
        ["config|get"]
    );
    let hash = list(&mut c, &["FILTERBY", "ACLCAT", "hash"]);
    assert!(hash.contains(&"hset".to_string()) && !hash.contains(&"set".to_string()));
    assert!(list(&mut c, &["FILTERBY", "ACLCAT", "no_such_category"]).is_empty());
    assert!(list(&mut c, &["FILTERBY", "MODULE", "no_such_module"]).is_empty());
    let err = redis::cmd("COMMAND")
        .arg("LIST")
        .arg("bad_arg")
        .query::<Vec<String>>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    // COMMAND INFO takes subcommands by full name; unknown ones are null.
    let info: Vec<redis::Value> = q(&mut c, &["COMMAND", "INFO", "config|get", "get|key"]);
    assert_eq!(info.len(), 2);
    match &info[0] {
        redis::Value::Array(fields) => {
            assert_eq!(fields[0], redis::Value::BulkString(b"config|get".to_vec()))
        }
        other => panic!("COMMAND INFO config|get: {other:?}"),
    }
    assert_eq!(info[1], redis::Value::Nil);
    // Commands whose keys come from their arguments are marked movablekeys.
    let flags = |c: &mut redis::Connection, name: &str| -> String {
        let v: redis::Value = q(c, &["COMMAND", "INFO", name]);
        format!("{v:?}")
    };
    assert!(flags(&mut c, "zunionstore").contains("movablekeys"));
    assert!(flags(&mut c, "sort").contains("movablekeys"));
    assert!(!flags(&mut c, "set").contains("movablekeys"));
}

#[test]
fn multi_exec_discard_and_execabort() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    r.roundtrip(b"PING\r\n", b"+QUEUED\r\n");
    r.roundtrip(b"ECHO x\r\n", b"+QUEUED\r\n");
    r.roundtrip(b"EXEC\r\n", b"*2\r\n+PONG\r\n$1\r\nx\r\n");
    r.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    r.roundtrip(
        b"NOSUCHCMD\r\n",
        b"-ERR unknown command 'NOSUCHCMD', with args beginning with: \r\n",
    );
    r.roundtrip(
        b"EXEC\r\n",
        b"-EXECABORT Transaction discarded because of previous errors.\r\n",
    );
    r.roundtrip(b"EXEC\r\n", b"-ERR EXEC without MULTI\r\n");
    r.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    r.roundtrip(b"DISCARD\r\n", b"+OK\r\n");
}

#[test]
fn shutdown_command_exits_zero() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.send(b"SHUTDOWN\r\n");
    assert_eq!(r.read_to_close(), b"");
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

#[test]
fn sigterm_exits_zero() {
    let s = Server::start(&[]);
    unsafe { libc::kill(s.pid() as i32, libc::SIGTERM) };
    assert_eq!(s.wait_exit(Duration::from_secs(10)), Some(0));
}

/// INFO errorstats counts error replies by their code, as Redis does:
/// refused commands, errors a command replies, an error a script returns
/// with its own code; `total_error_replies` counts them all, and CONFIG
/// RESETSTAT clears both.
#[test]
fn errorstats_count_error_replies_by_code() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let stats = |c: &mut redis::Connection| -> String {
        redis::cmd("INFO").arg("errorstats").query(c).unwrap()
    };
    let _: () = redis::cmd("LPUSH").arg("l").arg("x").query(&mut c).unwrap();
    assert!(redis::cmd("GET").arg("l").query::<String>(&mut c).is_err());
    assert!(redis::cmd("NOSUCHCOMMAND").query::<String>(&mut c).is_err());
    assert!(redis::cmd("GET").query::<String>(&mut c).is_err());
    let e = redis::cmd("EVAL")
        .arg("return redis.error_reply('MY_CODE custom')")
        .arg(0)
        .query::<String>(&mut c)
        .unwrap_err();
    assert_eq!(e.code(), Some("MY_CODE"));
    let text = stats(&mut c);
    assert_eq!(
        info_field(&text, "errorstat_WRONGTYPE").as_deref(),
        Some("count=1"),
        "{text}"
    );
    assert_eq!(
        info_field(&text, "errorstat_ERR").as_deref(),
        Some("count=2"),
        "{text}"
    );
    assert_eq!(
        info_field(&text, "errorstat_MY_CODE").as_deref(),
        Some("count=1"),
        "{text}"
    );
    let all: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert_eq!(
        info_field(&all, "total_error_replies").as_deref(),
        Some("4")
    );
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let text = stats(&mut c);
    assert_eq!(info_field(&text, "errorstat_ERR"), None, "{text}");
    let all: String = redis::cmd("INFO").arg("stats").query(&mut c).unwrap();
    assert_eq!(
        info_field(&all, "total_error_replies").as_deref(),
        Some("0")
    );
}
