//! Transactions and Pub/Sub limits through the `redis` crate, as applications use them.

mod common;

use std::time::Duration;

use common::Server;

#[test]
fn watch_conflict_from_another_client_aborts_exec() {
    let s = Server::start(&[]);
    let mut a = s.client();
    let mut b = s.client();
    let _: () = redis::cmd("SET")
        .arg("balance")
        .arg(100)
        .query(&mut a)
        .unwrap();
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let balance: i64 = redis::cmd("GET").arg("balance").query(&mut a).unwrap();
    // Another client changes the watched key between WATCH and EXEC.
    let _: () = redis::cmd("INCRBY")
        .arg("balance")
        .arg(5)
        .query(&mut b)
        .unwrap();
    let result: Option<(String,)> = redis::pipe()
        .atomic()
        .set("balance", balance - 10)
        .query(&mut a)
        .unwrap();
    assert!(
        result.is_none(),
        "EXEC must return a null array after a WATCH conflict"
    );
    let now: i64 = redis::cmd("GET").arg("balance").query(&mut a).unwrap();
    assert_eq!(now, 105);
    // Without interference the same transaction commits.
    let _: () = redis::cmd("WATCH").arg("balance").query(&mut a).unwrap();
    let result: Option<(String,)> = redis::pipe()
        .atomic()
        .set("balance", 95)
        .query(&mut a)
        .unwrap();
    assert_eq!(result, Some(("OK".to_string(),)));
}

#[test]
fn pipeline_in_multi_is_atomic_and_keeps_runtime_errors_local() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("SET")
        .arg("text")
        .arg("abc")
        .query(&mut c)
        .unwrap();
    // redis-py style: MULTI ... EXEC; a runtime error does not roll back the others.
    let mut pipe = redis::pipe();
    pipe.atomic()
        .incr("counter", 1)
        .incr("text", 1)
        .lpush("log", "x")
        .incr("counter", 1);
    let err = pipe.query::<(i64, i64, i64, i64)>(&mut c).unwrap_err();
    assert!(err.to_string().contains("not an integer"), "{err}");
    let counter: i64 = redis::cmd("GET").arg("counter").query(&mut c).unwrap();
    assert_eq!(counter, 2);
    let log: i64 = redis::cmd("LLEN").arg("log").query(&mut c).unwrap();
    assert_eq!(log, 1);
}

#[test]
fn concurrent_transactions_never_interleave() {
    // Workers of their own whatever the machine's CPUs: the race is between
    // threads.
    let s = Server::start(&["--threads", "4"]);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let mut c = s.client();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let v = format!("{t}-{i}");
                    let _: () = redis::pipe()
                        .atomic()
                        .set("a", &v)
                        .set("b", &v)
                        .query(&mut c)
                        .unwrap();
                }
            })
        })
        .collect();
    let mut reader = s.client();
    let mut checks = 0;
    while threads.iter().any(|t| !t.is_finished()) && checks < 5000 {
        let (a, b): (Option<String>, Option<String>) = redis::pipe()
            .atomic()
            .get("a")
            .get("b")
            .query(&mut reader)
            .unwrap();
        assert_eq!(a, b, "a reader saw half of a transaction");
        checks += 1;
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn slow_subscriber_is_disconnected_at_the_output_limit() {
    let s = Server::start(&[]);
    let mut sub = s.raw();
    sub.roundtrip(
        b"SUBSCRIBE flood\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$5\r\nflood\r\n:1\r\n",
    );
    // The subscriber never reads again. Publish up to 96 MB (bounded), 64 KB at a time.
    let mut c = s.client();
    let payload = "z".repeat(64 * 1024);
    let mut gone = None;
    for i in 0..1536 {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("flood")
            .arg(&payload)
            .query(&mut c)
            .unwrap();
        if n == 0 {
            gone = Some(i);
            break;
        }
    }
    let sent = gone.expect("a subscriber that never reads must be dropped");
    // 32 MB queued, plus what the kernel's socket buffers took: well under
    // 64 MB (768 messages). Messages copied into the connection's own buffer
    // still count until they are written out.
    assert!(sent < 768, "dropped only after {sent} messages of 64 KB");
    assert!(common::wait_for(Duration::from_secs(10), || {
        let subs: Vec<redis::Value> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg("flood")
            .query(&mut c)
            .unwrap();
        subs.get(1) == Some(&redis::Value::Int(0))
    }));
}
