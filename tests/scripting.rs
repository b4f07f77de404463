//! Scripts and functions end to end, through real clients: the lock
//! pattern real libraries use (redis-py's `Lock`, Redlock), atomicity,
//! busy scripts (BUSY, SCRIPT KILL, UNKILLABLE) with one worker thread, and
//! tiered mode (scripts run at a real upstream redis-server).

mod common;

use std::thread;
use std::time::Duration;

use common::upstream::Upstream;
use common::{info_field, q, wait_for, Server};
use redis::{cmd, Connection, RedisResult, Value};

/// redis-py's `Lock.release` script (LUA_RELEASE_SCRIPT), word for word.
const RELEASE: &str = r#"
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    "#;

/// redis-py's `Lock.extend` script (LUA_EXTEND_SCRIPT).
const EXTEND: &str = r#"
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        local expiration = redis.call('pttl', KEYS[1])
        if not expiration then
            expiration = 0
        end
        if expiration < 0 then
            return 0
        end
        local newttl = ARGV[2]
        if ARGV[3] == "0" then
            newttl = ARGV[2] + expiration
        end
        redis.call('pexpire', KEYS[1], newttl)
        return 1
    "#;

fn evalsha(c: &mut Connection, sha: &str, keys: &[&str], args: &[&str]) -> RedisResult<Value> {
    cmd("EVALSHA")
        .arg(sha)
        .arg(keys.len())
        .arg(keys)
        .arg(args)
        .query(c)
}

/// The lock as redis-py and Redlock use it: SET NX PX to take it, a script
/// to extend and release it only with the right token.
fn lock_round_trip(c: &mut Connection) {
    let release: String = q(c, &["SCRIPT", "LOAD", RELEASE]);
    let extend: String = q(c, &["SCRIPT", "LOAD", EXTEND]);
    let taken: Option<String> = q(c, &["SET", "lock:a", "token-1", "NX", "PX", "10000"]);
    assert_eq!(taken.as_deref(), Some("OK"));
    let again: Option<String> = q(c, &["SET", "lock:a", "token-2", "NX", "PX", "10000"]);
    assert_eq!(again, None, "a held lock is not taken twice");
    assert_eq!(
        evalsha(c, &extend, &["lock:a"], &["token-2", "5000", "0"]).unwrap(),
        Value::Int(0),
        "the wrong token does not extend"
    );
    assert_eq!(
        evalsha(c, &extend, &["lock:a"], &["token-1", "60000", "1"]).unwrap(),
        Value::Int(1)
    );
    let pttl: i64 = q(c, &["PTTL", "lock:a"]);
    assert!(pttl > 10_000 && pttl <= 60_000, "extended to 60 s: {pttl}");
    assert_eq!(
        evalsha(c, &release, &["lock:a"], &["token-2"]).unwrap(),
        Value::Int(0),
        "the wrong token does not release"
    );
    assert_eq!(
        evalsha(c, &release, &["lock:a"], &["token-1"]).unwrap(),
        Value::Int(1)
    );
    let gone: Option<String> = q(c, &["GET", "lock:a"]);
    assert_eq!(gone, None);
}

#[test]
fn a_lock_is_taken_extended_and_released_through_scripts() {
    let s = Server::start(&[]);
    lock_round_trip(&mut s.client());
}

/// Every write of a script is one unit: a client reading all the while
/// never sees half of it.
#[test]
fn a_script_runs_as_one_unit() {
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let mut w = s.client();
    let script =
        "for i = 1, 200 do redis.call('INCR', KEYS[1]); redis.call('INCR', KEYS[2]) end return 1";
    let reader = {
        let mut r = s.client();
        thread::spawn(move || {
            let mut seen = 0;
            for _ in 0..2000 {
                let v: (Option<i64>, Option<i64>) =
                    cmd("MGET").arg("a").arg("b").query(&mut r).unwrap();
                assert_eq!(v.0, v.1, "a script's writes were seen half done");
                seen += 1;
            }
            seen
        })
    };
    for _ in 0..50 {
        let _: i64 = q(&mut w, &["EVAL", script, "2", "a", "b"]);
    }
    assert_eq!(reader.join().unwrap(), 2000);
    let a: i64 = q(&mut w, &["GET", "a"]);
    assert_eq!(a, 50 * 200);
}

/// Scripts pipelined by one client run as Redis runs them: each its own
/// unit, and a client blocked on a key the first one pushed to is served
/// before the second runs (the script thread holds the shards for the
/// batch but lets them go to serve it), so the second finds the list empty.
#[test]
fn a_blocked_client_is_served_between_pipelined_scripts() {
    let s = Server::start(&[]);
    let mut admin = s.client();
    let popper = {
        let mut c = s.client();
        thread::spawn(move || -> Vec<String> { q(&mut c, &["BLPOP", "l", "10"]) })
    };
    common::wait_blocked(&mut admin, 1);
    let mut w = s.client();
    let (pushed, left, llen): (i64, Option<String>, i64) = redis::pipe()
        .cmd("EVAL")
        .arg("return redis.call('RPUSH', KEYS[1], 'x')")
        .arg(1)
        .arg("l")
        .cmd("EVAL")
        .arg("return redis.call('LPOP', KEYS[1])")
        .arg(1)
        .arg("l")
        .cmd("EVAL")
        .arg("redis.call('RPUSH', KEYS[1], 'y', 'z') return redis.call('LLEN', KEYS[1])")
        .arg(1)
        .arg("l")
        .query(&mut w)
        .unwrap();
    assert_eq!(pushed, 1);
    assert_eq!(
        left, None,
        "the second script ran before the blocked client was served"
    );
    assert_eq!(llen, 2);
    assert_eq!(
        popper.join().unwrap(),
        vec!["l".to_string(), "x".to_string()]
    );
    let rest: Vec<String> = q(&mut admin, &["LRANGE", "l", "0", "-1"]);
    assert_eq!(rest, vec!["y", "z"]);
}

/// A busy script on a server with one worker thread (as Redis's own suite
/// runs jcache) and `busy-reply-threshold` 100 ms: `send` runs on a client
/// of its own in another thread, and `start` returns once another client's
/// PING gets BUSY.
struct Busy {
    s: Server,
    admin: Connection,
    other: Connection,
    runner: thread::JoinHandle<RedisResult<Value>>,
}

impl Busy {
    fn start(send: impl FnOnce(&mut Connection) -> RedisResult<Value> + Send + 'static) -> Busy {
        let s = Server::start(&["--threads", "1"]);
        let mut admin = s.client();
        let _: String = q(
            &mut admin,
            &["CONFIG", "SET", "busy-reply-threshold", "100"],
        );
        let runner = {
            let mut c = s.client();
            thread::spawn(move || send(&mut c))
        };
        let mut other = s.client();
        let busy = wait_for(
            Duration::from_secs(10),
            || matches!(cmd("PING").query::<String>(&mut other), Err(e) if e.code() == Some("BUSY")),
        );
        assert!(busy, "another client never got BUSY");
        Busy {
            s,
            admin,
            other,
            runner,
        }
    }

    /// SCRIPT KILL stops the script and its client gets the error.
    fn kill(&mut self) {
        let killed: String = q(&mut self.admin, &["SCRIPT", "KILL"]);
        assert_eq!(killed, "OK");
    }

    /// The script's client got the error SCRIPT KILL gives.
    fn assert_killed(self) -> (Server, Connection, Connection) {
        let err = self.runner.join().unwrap().unwrap_err();
        assert!(
            err.to_string()
                .contains("Script killed by user with SCRIPT KILL"),
            "{err}"
        );
        (self.s, self.admin, self.other)
    }
}

/// A busy script: other clients wait, then get BUSY past the threshold;
/// SCRIPT KILL stops it and the client that sent it gets the error.
#[test]
fn a_busy_script_answers_busy_and_is_killed() {
    let mut b = Busy::start(|c| cmd("EVAL").arg("while true do end").arg(0).query(c));
    let e = cmd("GET")
        .arg("k")
        .query::<Option<String>>(&mut b.other)
        .unwrap_err();
    assert_eq!(e.code(), Some("BUSY"));
    assert_eq!(
        e.detail(),
        Some("Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.")
    );
    // FUNCTION KILL does not stop an EVAL.
    let wrong = cmd("FUNCTION")
        .arg("KILL")
        .query::<String>(&mut b.admin)
        .unwrap_err();
    assert_eq!(wrong.code(), Some("BUSY"));
    b.kill();
    let (_s, mut admin, mut other) = b.assert_killed();
    let pong: String = q(&mut other, &["PING"]);
    assert_eq!(pong, "PONG");
    let none = cmd("SCRIPT")
        .arg("KILL")
        .query::<String>(&mut admin)
        .unwrap_err();
    assert_eq!(none.code(), Some("NOTBUSY"));
}

/// A long script inside a transaction runs where EXEC runs, on the only
/// worker thread: it gives the worker's other clients to another thread
/// once it runs long, so they get BUSY and SCRIPT KILL reaches it.
#[test]
fn a_busy_script_inside_exec_does_not_stop_other_clients() {
    let mut b = Busy::start(|c| {
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg("before")
            .arg("1")
            .cmd("EVAL")
            .arg("while true do end")
            .arg(0)
            .query(c)
    });
    b.kill();
    let (_s, _admin, mut other) = b.assert_killed();
    let before: Option<String> = q(&mut other, &["GET", "before"]);
    assert_eq!(before.as_deref(), Some("1"), "the transaction's SET");
}

/// A script sent while another runs waits in the queue, and gets BUSY
/// (never running) once the running one passed the threshold, as any other
/// command does in Redis; after SCRIPT KILL nothing of it happened.
#[test]
fn a_script_queued_behind_a_busy_one_gets_busy_and_never_runs() {
    let s = Server::start(&["--threads", "1"]);
    let mut admin = s.client();
    let _: String = q(
        &mut admin,
        &["CONFIG", "SET", "busy-reply-threshold", "1000"],
    );
    let runner = {
        let mut c = s.client();
        thread::spawn(move || -> RedisResult<Value> {
            cmd("EVAL").arg("while true do end").arg(0).query(&mut c)
        })
    };
    // FUNCTION STATS answers BUSY at once while an EVAL runs (as in Redis).
    let running = wait_for(Duration::from_secs(10), || {
        matches!(cmd("FUNCTION").arg("STATS").query::<Value>(&mut admin),
            Err(e) if e.code() == Some("BUSY"))
    });
    assert!(running, "the busy script never started");
    // Sent while the runner is younger than the threshold (it queues).
    let queued = {
        let mut c = s.client();
        thread::spawn(move || -> RedisResult<Value> {
            cmd("EVAL")
                .arg("redis.call('SET', 'queued', '1') return 1")
                .arg(0)
                .query(&mut c)
        })
    };
    let e = queued.join().unwrap().unwrap_err();
    assert_eq!(e.code(), Some("BUSY"), "{e}");
    let killed: String = q(&mut admin, &["SCRIPT", "KILL"]);
    assert_eq!(killed, "OK");
    assert!(runner.join().unwrap().is_err());
    let v: Option<String> = q(&mut admin, &["GET", "queued"]);
    assert_eq!(v, None, "the queued script ran after all");
}

/// A script that wrote cannot be killed; SHUTDOWN NOSAVE still stops the
/// server while it runs.
#[test]
fn a_script_that_wrote_is_unkillable_but_shutdown_nosave_works() {
    let s = Server::start(&["--threads", "1"]);
    let mut admin = s.client();
    let _: String = q(&mut admin, &["CONFIG", "SET", "busy-reply-threshold", "50"]);
    let runner = {
        let mut c = s.client();
        thread::spawn(move || -> RedisResult<Value> {
            cmd("EVAL")
                .arg("redis.call('SET', KEYS[1], 'x') while true do end")
                .arg(1)
                .arg("w")
                .query(&mut c)
        })
    };
    let unkillable = wait_for(Duration::from_secs(10), || {
        matches!(cmd("SCRIPT").arg("KILL").query::<String>(&mut admin),
            Err(e) if e.code() == Some("UNKILLABLE"))
    });
    assert!(unkillable, "SCRIPT KILL never answered UNKILLABLE");
    let _ = cmd("SHUTDOWN").arg("NOSAVE").query::<Value>(&mut admin);
    assert!(
        s.wait_exit(Duration::from_secs(20)).is_some(),
        "the server did not stop while the script ran"
    );
    assert!(
        runner.join().unwrap().is_err(),
        "the script's client got no reply"
    );
}

/// Functions: FUNCTION LOAD, FCALL, FCALL_RO of a no-writes function, and
/// the library survives FUNCTION DUMP / FLUSH / RESTORE.
#[test]
fn functions_load_call_dump_and_restore() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let lib = "#!lua name=counters\n\
               redis.register_function('bump', function(keys, args) return redis.call('INCRBY', keys[1], args[1]) end)\n\
               redis.register_function{function_name='peek', callback=function(keys) return redis.call('GET', keys[1]) end, flags={'no-writes'}}";
    let name: String = q(&mut c, &["FUNCTION", "LOAD", lib]);
    assert_eq!(name, "counters");
    let n: i64 = q(&mut c, &["FCALL", "bump", "1", "n", "5"]);
    assert_eq!(n, 5);
    let v: String = q(&mut c, &["FCALL_RO", "peek", "1", "n"]);
    assert_eq!(v, "5");
    let e = cmd("FCALL_RO")
        .arg("bump")
        .arg(1)
        .arg("n")
        .arg(1)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("Can not execute a script with write flag using *_ro command"),
        "{e}"
    );
    let dump: Vec<u8> = q(&mut c, &["FUNCTION", "DUMP"]);
    let _: String = q(&mut c, &["FUNCTION", "FLUSH"]);
    let gone = cmd("FCALL")
        .arg("bump")
        .arg(1)
        .arg("n")
        .arg(1)
        .query::<i64>(&mut c)
        .unwrap_err();
    assert!(gone.to_string().contains("Function not found"), "{gone}");
    let ok: String = cmd("FUNCTION")
        .arg("RESTORE")
        .arg(dump)
        .query(&mut c)
        .unwrap();
    assert_eq!(ok, "OK");
    let n: i64 = q(&mut c, &["FCALL", "bump", "1", "n", "1"]);
    assert_eq!(n, 6);
}

fn tiered(up: &Upstream) -> Server {
    let s = Server::start(&["--tier", "memory", "--tier", &up.url()]);
    let mut c = s.client();
    let up_ok = wait_for(Duration::from_secs(10), || {
        let text: String = cmd("INFO").arg("tiers").query(&mut c).unwrap();
        info_field(&text, "upstream_status").as_deref() == Some("up")
    });
    assert!(up_ok, "upstream never came up");
    s
}

/// Tiered mode: scripts run at the upstream; the local copy of a key a
/// script wrote is dropped, so the next local read sees the new value;
/// an EVALSHA the upstream forgot is loaded there again transparently.
#[test]
fn tiered_scripts_run_upstream_and_drop_local_copies() {
    let up = Upstream::start();
    let s = tiered(&up);
    let mut c = s.client();
    let mut direct = up.client();
    let _: String = q(&mut c, &["SET", "k", "1"]);
    let v: String = q(&mut c, &["GET", "k"]);
    assert_eq!(v, "1", "now cached locally");
    let script = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
    let n: i64 = q(&mut c, &["EVAL", script, "1", "k", "41"]);
    assert_eq!(n, 42);
    let at_upstream: String = q(&mut direct, &["GET", "k"]);
    assert_eq!(at_upstream, "42", "the script ran at the upstream");
    let local: String = q(&mut c, &["GET", "k"]);
    assert_eq!(local, "42", "the stale local copy was dropped");
    // The upstream forgets its scripts; EVALSHA still works through jcache.
    let sha: String = q(&mut c, &["SCRIPT", "LOAD", script]);
    let _: String = q(&mut direct, &["SCRIPT", "FLUSH"]);
    let n: i64 = q(&mut c, &["EVALSHA", &sha, "1", "k", "1"]);
    assert_eq!(n, 43);
    lock_round_trip(&mut c);
    let gone: Option<String> = q(&mut direct, &["GET", "lock:a"]);
    assert_eq!(gone, None, "the lock's release reached the upstream");
}
