//! Connection-level behaviour through a real client and raw sockets.

mod common;

use common::Server;

#[test]
fn ping_echo_and_unknown_command() {
    let s = Server::start(&[]);
    let mut c = s.client();
    let pong: String = redis::cmd("PING").query(&mut c).unwrap();
    assert_eq!(pong, "PONG");
    let hi: String = redis::cmd("ECHO").arg("hi").query(&mut c).unwrap();
    assert_eq!(hi, "hi");
    let err = redis::cmd("NOSUCH")
        .arg("a")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("unknown command 'NOSUCH', with args beginning with: 'a'"),
        "{err}"
    );
}

#[test]
fn inline_and_pipelined_requests() {
    let s = Server::start(&[]);
    let mut r = s.raw();
    r.roundtrip(
        b"PING\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$3\r\nabc\r\n",
        b"+PONG\r\n+PONG\r\n$3\r\nabc\r\n",
    );
}

#[test]
fn protocol_error_closes_only_that_connection() {
    let s = Server::start(&[]);
    let mut bad = s.raw();
    bad.send(b"*1\r\nfoo\r\n");
    let got = bad.read_to_close();
    assert_eq!(got, b"-ERR Protocol error: expected '$', got 'f'\r\n");
    let mut good = s.raw();
    good.roundtrip(b"PING\r\n", b"+PONG\r\n");
}
