//! Pub/Sub and keyspace notifications through raw RESP sockets.

mod common;

use common::Server;

#[test]
fn subscribe_publish_and_patterns() {
    let s = Server::start(&[]);
    let mut sub = s.raw();
    sub.roundtrip(
        b"SUBSCRIBE news\r\n",
        b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
    sub.roundtrip(
        b"PSUBSCRIBE n*\r\n",
        b"*3\r\n$10\r\npsubscribe\r\n$2\r\nn*\r\n:2\r\n",
    );
    // RESP2 subscribed context refuses ordinary commands.
    sub.roundtrip(
        b"GET x\r\n",
        b"-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context\r\n",
    );
    let mut c = s.client();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hi")
        .query(&mut c)
        .unwrap();
    assert_eq!(n, 2);
    let expected_msg = b"*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n*4\r\n$8\r\npmessage\r\n$2\r\nn*\r\n$4\r\nnews\r\n$2\r\nhi\r\n";
    assert_eq!(
        sub.read_exact_len(expected_msg.len()),
        expected_msg.to_vec()
    );
    let numsub: Vec<redis::Value> = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("news")
        .query(&mut c)
        .unwrap();
    assert_eq!(numsub.len(), 2);
    sub.roundtrip(
        b"UNSUBSCRIBE\r\n",
        b"*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n",
    );
}

#[test]
fn resp3_push_messages_and_keyspace_events() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("notify-keyspace-events")
        .arg("KEA")
        .query(&mut c)
        .unwrap();
    let mut sub = s.raw();
    sub.hello3();
    sub.roundtrip(
        b"SUBSCRIBE __keyevent@0__:set\r\n",
        b">3\r\n$9\r\nsubscribe\r\n$18\r\n__keyevent@0__:set\r\n:1\r\n",
    );
    let _: () = redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query(&mut c)
        .unwrap_or(());
    // SET may not exist yet in minimal builds; a DEL-free check uses LPUSH-free path:
    let expected = b">3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n";
    assert_eq!(sub.read_exact_len(expected.len()), expected.to_vec());
}
