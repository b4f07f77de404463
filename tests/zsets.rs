//! Sorted-set commands against the real binary, compared with what Redis
//! 7.0.15 replies (texts checked against a real redis-server), over raw
//! RESP2 and RESP3 connections so reply types are visible.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{req, wait_for, Server};

/// A raw connection that renders every reply as compact text:
/// bulk `abc`, integer `:1`, double `,1.5`, null `nil`, error `-ERR ...`,
/// status `+OK`, arrays `[a b]`, maps `{k v}`, sets `~[a b]`.
struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn new(s: &Server) -> Conn {
        let raw = s.raw_served();
        Conn {
            r: BufReader::new(raw.s),
        }
    }

    fn resp3(s: &Server) -> Conn {
        let mut c = Conn::new(s);
        let hello = c.q("HELLO 3");
        assert!(hello.starts_with('{'), "{hello}");
        c
    }

    fn send(&mut self, args: &[&[u8]]) {
        self.r.get_mut().write_all(&req(args)).unwrap();
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        assert!(l.ends_with("\r\n"), "truncated reply line {l:?}");
        l.truncate(l.len() - 2);
        l
    }

    fn read(&mut self) -> String {
        let l = self.line();
        let (t, rest) = l.split_at(1);
        match t {
            "+" | "-" => l,
            ":" | "," => l,
            "_" => "nil".into(),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return "nil".into();
                }
                let mut b = vec![0u8; n as usize + 2];
                self.r.read_exact(&mut b).unwrap();
                b.truncate(n as usize);
                String::from_utf8_lossy(&b).into_owned()
            }
            "*" | "~" | "%" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return "nil".into();
                }
                let k = if t == "%" { n * 2 } else { n };
                let items: Vec<String> = (0..k).map(|_| self.read()).collect();
                match t {
                    "*" => format!("[{}]", items.join(" ")),
                    "~" => format!("~[{}]", items.join(" ")),
                    _ => format!("{{{}}}", items.join(" ")),
                }
            }
            _ => panic!("unexpected reply {l:?}"),
        }
    }

    /// Sends a whitespace-separated command and reads its reply.
    fn q(&mut self, cmd: &str) -> String {
        let args: Vec<&[u8]> = cmd.split_whitespace().map(str::as_bytes).collect();
        self.send(&args);
        self.read()
    }

    /// Sends a command given as separate arguments (for empty or spaced ones).
    fn qa(&mut self, args: &[&str]) -> String {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.send(&args);
        self.read()
    }
}

fn blocked_clients(c: &mut Conn) -> usize {
    let info = c.q("INFO clients");
    common::info_field(&info, "blocked_clients")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0)
}

#[test]
fn zadd_flags_errors_and_replies() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    assert_eq!(c.q("ZADD z 1 a 2 b 3 c"), ":3");
    assert_eq!(c.q("ZADD z 1 a 5 b 4 d"), ":1");
    assert_eq!(c.q("ZADD z CH 1 a 6 b 4 d 7 e"), ":2");
    assert_eq!(
        c.q("ZADD z NX XX 1 a"),
        "-ERR XX and NX options at the same time are not compatible"
    );
    let gtlt = "-ERR GT, LT, and/or NX options at the same time are not compatible";
    assert_eq!(c.q("ZADD z GT NX 1 a"), gtlt);
    assert_eq!(c.q("ZADD z LT NX 1 a"), gtlt);
    assert_eq!(c.q("ZADD z GT LT 1 a"), gtlt);
    assert_eq!(
        c.q("ZADD z INCR 1 a 2 b"),
        "-ERR INCR option supports a single increment-element pair"
    );
    assert_eq!(c.q("ZADD z 1 a 2"), "-ERR syntax error");
    assert_eq!(c.q("ZADD z NX 1"), "-ERR syntax error");
    assert_eq!(c.q("ZADD z 1 a x b"), "-ERR value is not a valid float");
    assert_eq!(c.q("ZADD z nan a"), "-ERR value is not a valid float");
    assert_eq!(
        c.qa(&["ZADD", "z", "", "a"]),
        "-ERR value is not a valid float"
    );
    // Nothing was added by the failed variadic call.
    assert_eq!(c.q("ZSCORE z x"), "nil");
    // GT / LT only gate updates of existing members; new ones are added.
    assert_eq!(c.q("ZADD z GT CH 0 a 100 b 1 new"), ":2");
    assert_eq!(c.q("ZSCORE z a"), "1");
    assert_eq!(c.q("ZSCORE z b"), "100");
    assert_eq!(c.q("ZADD z LT CH 0 a 200 b"), ":1");
    assert_eq!(c.q("ZSCORE z a"), "0");
    // XX never creates; on a missing key nothing is created.
    assert_eq!(c.q("ZADD z XX 1 nope"), ":0");
    assert_eq!(c.q("ZADD missing XX 1 a"), ":0");
    assert_eq!(c.q("ZADD missing XX INCR 1 a"), "nil");
    assert_eq!(c.q("EXISTS missing"), ":0");
    // A member repeated in one call: added once, then updated.
    assert_eq!(c.q("ZADD r CH 1 x 2 x"), ":2");
    assert_eq!(c.q("ZADD r 5 y 6 y"), ":1");
    assert_eq!(c.q("ZRANGE r 0 -1 WITHSCORES"), "[x 2 y 6]");
    // INCR and ZINCRBY.
    assert_eq!(c.q("ZADD i INCR 1.5 m"), "1.5");
    assert_eq!(c.q("ZINCRBY i 1 m"), "2.5");
    assert_eq!(c.q("ZADD i NX INCR 1 m"), "nil");
    assert_eq!(c.q("ZADD i GT INCR -1 m"), "nil");
    assert_eq!(c.q("ZADD i LT INCR 1 m"), "nil");
    assert_eq!(c.q("ZADD i XX INCR 1 nope"), "nil");
    assert_eq!(c.q("ZINCRBY i +inf m"), "inf");
    assert_eq!(
        c.q("ZINCRBY i -inf m"),
        "-ERR resulting score is not a number (NaN)"
    );
    assert_eq!(
        c.q("ZADD i INCR -inf m"),
        "-ERR resulting score is not a number (NaN)"
    );
    assert_eq!(c.q("ZSCORE i m"), "inf");
    assert_eq!(c.q("ZINCRBY i abc m"), "-ERR value is not a valid float");
    assert_eq!(
        c.q("ZINCRBY i 1 a 2"),
        "-ERR wrong number of arguments for 'zincrby' command"
    );
    // Float text is Redis's %.17g; -0 is stored as 0 (reply keeps the sign).
    assert_eq!(c.q("ZADD f 1.1 a 0x10 hex 1e300 big -0 nz"), ":4");
    assert_eq!(c.q("ZSCORE f a"), "1.1000000000000001");
    assert_eq!(c.q("ZSCORE f hex"), "16");
    assert_eq!(c.q("ZSCORE f big"), "1.0000000000000001e+300");
    assert_eq!(c.q("ZSCORE f nz"), "0");
    assert_eq!(c.q("ZINCRBY f2 -0 m"), "-0");
    assert_eq!(c.q("ZSCORE f2 m"), "0");
}

#[test]
fn zrem_card_score_rank() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD z 10 x 20 y 30 z");
    assert_eq!(c.q("ZCARD z"), ":3");
    assert_eq!(c.q("ZCARD nokey"), ":0");
    assert_eq!(c.q("ZRANK z x"), ":0");
    assert_eq!(c.q("ZRANK z z"), ":2");
    assert_eq!(c.q("ZREVRANK z x"), ":2");
    assert_eq!(c.q("ZRANK z nope"), "nil");
    assert_eq!(c.q("ZRANK nokey x"), "nil");
    assert_eq!(
        c.q("ZRANK z x WITHSCORE"),
        "-ERR wrong number of arguments for 'zrank' command"
    );
    assert_eq!(c.q("ZMSCORE z x nope z"), "[10 nil 30]");
    assert_eq!(c.q("ZMSCORE nokey a b"), "[nil nil]");
    assert_eq!(
        c.q("ZMSCORE z"),
        "-ERR wrong number of arguments for 'zmscore' command"
    );
    assert_eq!(c.q("ZREM z x x nope"), ":1");
    assert_eq!(c.q("ZREM nokey a"), ":0");
    assert_eq!(c.q("ZREM z y z a b c d e f g h i j"), ":2");
    assert_eq!(c.q("EXISTS z"), ":0");
}

#[test]
fn range_queries() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD z -inf a 1 b 2 c 3 d 4 e 5 f +inf g");
    assert_eq!(c.q("ZRANGE z 0 -1"), "[a b c d e f g]");
    assert_eq!(c.q("ZRANGE z -2 -1 WITHSCORES"), "[f 5 g inf]");
    assert_eq!(c.q("ZRANGE z -100 1"), "[a b]");
    assert_eq!(c.q("ZRANGE z 5 1"), "[]");
    assert_eq!(c.q("ZREVRANGE z 0 2"), "[g f e]");
    assert_eq!(c.q("ZREVRANGE z -2 -1 WITHSCORES"), "[b 1 a -inf]");
    assert_eq!(c.q("ZRANGE z 0 1 REV"), "[g f]");
    assert_eq!(c.q("ZRANGE nokey 0 -1"), "[]");
    // By score, inclusive / exclusive / infinities / LIMIT / reverse.
    assert_eq!(c.q("ZRANGEBYSCORE z -inf 2"), "[a b c]");
    assert_eq!(c.q("ZRANGEBYSCORE z (-inf (2"), "[b]");
    assert_eq!(c.q("ZRANGEBYSCORE z (4 (+inf"), "[f]");
    assert_eq!(c.q("ZRANGEBYSCORE z 2 (2"), "[]");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 10 LIMIT 2 3"), "[d e f]");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 10 LIMIT 2 -1"), "[d e f]");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 10 LIMIT -1 2"), "[]");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 10 LIMIT 20 2"), "[]");
    assert_eq!(c.q("ZRANGEBYSCORE z 2 5 LIMIT 2 3 WITHSCORES"), "[e 4 f 5]");
    assert_eq!(c.q("ZREVRANGEBYSCORE z 10 0 LIMIT 2 3"), "[d c b]");
    assert_eq!(
        c.q("ZRANGE z 5 0 BYSCORE REV LIMIT 0 2 WITHSCORES"),
        "[f 5 e 4]"
    );
    assert_eq!(c.q("ZCOUNT z (0 (3"), ":2");
    assert_eq!(c.q("ZCOUNT z -inf +inf"), ":7");
    assert_eq!(c.q("ZCOUNT nokey 0 1"), ":0");
    // strtod rules for range items: "" is 0, leading blanks and hex accepted.
    assert_eq!(c.qa(&["ZCOUNT", "z", "", "("]), ":0");
    assert_eq!(c.qa(&["ZCOUNT", "z", " 1", "0x2"]), ":2");
    let nf = "-ERR min or max is not a float";
    assert_eq!(c.q("ZRANGEBYSCORE z str 1"), nf);
    assert_eq!(c.q("ZRANGEBYSCORE z 1 NaN"), nf);
    assert_eq!(c.q("ZCOUNT z ((1 2"), nf);
    assert_eq!(c.qa(&["ZCOUNT", "z", "1 ", "2"]), nf);
    assert_eq!(c.q("ZREMRANGEBYSCORE z 1 str"), nf);
    // Syntax and option conflicts.
    assert_eq!(
        c.q("ZRANGE z 0 -1 LIMIT 0 1"),
        "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    assert_eq!(c.q("ZRANGE z 0 -1 LIMIT 3 -1"), "[a b c d e f g]");
    assert_eq!(
        c.q("ZRANGE z - + BYLEX WITHSCORES"),
        "-ERR syntax error, WITHSCORES not supported in combination with BYLEX"
    );
    assert_eq!(c.q("ZREVRANGE z 0 -1 BYSCORE"), "-ERR syntax error");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 -1 REV"), "-ERR syntax error");
    assert_eq!(c.q("ZRANGE z 0 -1 REV REV"), "-ERR syntax error");
    assert_eq!(c.q("ZRANGE z 0 -1 BYSCORE BYLEX"), "-ERR syntax error");
    assert_eq!(c.q("ZRANGEBYSCORE z 0 1 LIMIT 0"), "-ERR syntax error");
    assert_eq!(
        c.q("ZRANGE z a 1"),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(
        c.q("ZRANGEBYSCORE z 0 1 LIMIT x 1"),
        "-ERR value is not an integer or out of range"
    );
    // Lex ranges.
    c.q("ZADD l 0 alpha 0 bar 0 cool 0 down 0 elephant 0 foo 0 great 0 hill 0 omega");
    assert_eq!(c.q("ZRANGEBYLEX l - [cool"), "[alpha bar cool]");
    assert_eq!(c.q("ZRANGEBYLEX l (bar (down"), "[cool]");
    assert_eq!(c.q("ZREVRANGEBYLEX l + (great"), "[omega hill]");
    assert_eq!(
        c.q("ZREVRANGEBYLEX l + [d LIMIT 0 4"),
        "[omega hill great foo]"
    );
    assert_eq!(c.q("ZRANGEBYLEX l - [cool LIMIT 1 2"), "[bar cool]");
    assert_eq!(c.q("ZRANGE l [f [b BYLEX REV"), "[elephant down cool bar]");
    assert_eq!(c.q("ZLEXCOUNT l - +"), ":9");
    assert_eq!(c.q("ZLEXCOUNT l + -"), ":0");
    assert_eq!(c.q("ZLEXCOUNT l [bar (foo"), ":4");
    assert_eq!(c.q("ZLEXCOUNT l (maxstring +"), ":1");
    let nl = "-ERR min or max not valid string range item";
    assert_eq!(c.q("ZRANGEBYLEX l foo bar"), nl);
    assert_eq!(c.q("ZRANGEBYLEX l +x [bar"), nl);
    assert_eq!(c.qa(&["ZLEXCOUNT", "l", "", "+"]), nl);
    assert_eq!(c.q("ZREMRANGEBYLEX l a b"), nl);
}

#[test]
fn rangestore_and_remrange() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD src 1 a 2 b 3 c 4 d");
    assert_eq!(c.q("ZRANGESTORE dst src 1 2"), ":2");
    assert_eq!(c.q("ZRANGE dst 0 -1 WITHSCORES"), "[b 2 c 3]");
    assert_eq!(c.q("ZRANGESTORE dst src [b [c BYLEX"), ":2");
    assert_eq!(c.q("ZRANGESTORE dst src 5 0 BYSCORE REV LIMIT 0 2"), ":2");
    assert_eq!(c.q("ZRANGE dst 0 -1 WITHSCORES"), "[c 3 d 4]");
    assert_eq!(
        c.q("ZRANGESTORE dst src 0 -1 WITHSCORES"),
        "-ERR syntax error"
    );
    assert_eq!(
        c.q("ZRANGESTORE dst src 0 -1 LIMIT 1 2"),
        "-ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
    );
    // Empty results delete the destination.
    assert_eq!(c.q("ZRANGESTORE dst src 5 6"), ":0");
    assert_eq!(c.q("EXISTS dst"), ":0");
    c.q("ZADD dst 1 x");
    assert_eq!(c.q("ZRANGESTORE dst missing 0 -1"), ":0");
    assert_eq!(c.q("EXISTS dst"), ":0");

    let fill = |c: &mut Conn| {
        c.q("DEL r");
        c.q("ZADD r 1 a 2 b 3 c 4 d 5 e");
    };
    fill(&mut c);
    assert_eq!(c.q("ZREMRANGEBYRANK r 1 3"), ":3");
    assert_eq!(c.q("ZRANGE r 0 -1"), "[a e]");
    fill(&mut c);
    assert_eq!(c.q("ZREMRANGEBYRANK r 10 -1"), ":0");
    assert_eq!(c.q("ZREMRANGEBYRANK r 0 -10"), ":0");
    assert_eq!(c.q("ZREMRANGEBYRANK r -10 0"), ":1");
    assert_eq!(
        c.q("ZREMRANGEBYRANK r a 1"),
        "-ERR value is not an integer or out of range"
    );
    fill(&mut c);
    assert_eq!(c.q("ZREMRANGEBYSCORE r (1 (5"), ":3");
    assert_eq!(c.q("ZRANGE r 0 -1"), "[a e]");
    assert_eq!(c.q("ZREMRANGEBYSCORE r -inf +inf"), ":2");
    assert_eq!(c.q("EXISTS r"), ":0");
    assert_eq!(c.q("ZREMRANGEBYSCORE r -inf +inf"), ":0");
    c.q("ZADD lx 0 a 0 b 0 c 0 d");
    assert_eq!(c.q("ZREMRANGEBYLEX lx (a [c"), ":2");
    assert_eq!(c.q("ZRANGE lx 0 -1"), "[a d]");
    assert_eq!(c.q("ZREMRANGEBYLEX lx - +"), ":2");
    assert_eq!(c.q("EXISTS lx"), ":0");
}

#[test]
fn pops_resp2_and_resp3() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD z -1 a 1 b 2 c 3 d 4 e");
    assert_eq!(c.q("ZPOPMIN z"), "[a -1]");
    assert_eq!(c.q("ZPOPMAX z"), "[e 4]");
    assert_eq!(c.q("ZPOPMIN z 2"), "[b 1 c 2]");
    assert_eq!(c.q("ZPOPMIN z 0"), "[]");
    let pos = "-ERR value is out of range, must be positive";
    assert_eq!(c.q("ZPOPMIN z -1"), pos);
    assert_eq!(c.q("ZPOPMIN z abc"), pos);
    assert_eq!(c.q("ZPOPMIN z 1 2"), "-ERR syntax error");
    assert_eq!(c.q("ZPOPMAX z 10"), "[d 3]");
    assert_eq!(c.q("EXISTS z"), ":0");
    assert_eq!(c.q("ZPOPMIN z"), "[]");
    assert_eq!(c.q("ZPOPMIN z 3"), "[]");

    c.q("ZADD m 1 a 2 b 3 c");
    assert_eq!(c.q("ZMPOP 2 nokey m MIN"), "[m [[a 1]]]");
    assert_eq!(c.q("ZMPOP 1 m MAX COUNT 5"), "[m [[c 3] [b 2]]]");
    assert_eq!(c.q("ZMPOP 1 m MAX"), "nil");
    let nk = "-ERR numkeys should be greater than 0";
    assert_eq!(c.q("ZMPOP 0 m MIN"), nk);
    assert_eq!(c.q("ZMPOP a m MIN"), nk);
    assert_eq!(c.q("ZMPOP -1 m MIN"), nk);
    for bad in [
        "ZMPOP 1 m bad",
        "ZMPOP 1 m MIN bar",
        "ZMPOP 1 m MAX MIN",
        "ZMPOP 1 m COUNT",
        "ZMPOP 1 m MAX COUNT 1 COUNT 2",
        "ZMPOP 2 m m2 bad",
        "ZMPOP 5 m MIN",
        "ZMPOP 9223372036854775807 m MIN",
    ] {
        assert_eq!(c.q(bad), "-ERR syntax error", "{bad}");
    }
    let cnt = "-ERR count should be greater than 0";
    assert_eq!(c.q("ZMPOP 1 m MIN COUNT 0"), cnt);
    assert_eq!(c.q("ZMPOP 1 m MIN COUNT a"), cnt);
    assert_eq!(
        c.q("ZMPOP 1"),
        "-ERR wrong number of arguments for 'zmpop' command"
    );

    let mut c3 = Conn::resp3(&s);
    c3.q("ZADD z 0 a 1 b 2 c 3 d 4 e");
    assert_eq!(c3.q("ZPOPMIN z"), "[a ,0]");
    assert_eq!(c3.q("ZPOPMIN z 1"), "[[b ,1]]");
    assert_eq!(c3.q("ZPOPMAX z 2"), "[[e ,4] [d ,3]]");
    assert_eq!(c3.q("ZMPOP 1 z MIN"), "[z [[c ,2]]]");
    assert_eq!(c3.q("ZMPOP 1 z MIN"), "nil");
    assert_eq!(c3.q("ZPOPMIN z"), "[]");
}

#[test]
fn blocking_pops() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    let mut b = Conn::new(&s);
    // Data already there: served at once, first non-empty key wins.
    c.q("ZADD z2 3 d 4 e");
    assert_eq!(b.q("BZPOPMIN z1 z2 0"), "[z2 d 3]");
    assert_eq!(b.q("BZPOPMAX z1 z2 0"), "[z2 e 4]");
    // Timeouts reply a null array.
    assert_eq!(b.q("BZPOPMIN z1 0.01"), "nil");
    assert_eq!(b.q("BZMPOP 0.01 2 z1 z2 MAX"), "nil");
    assert_eq!(
        b.q("BZPOPMIN z1 abc"),
        "-ERR timeout is not a float or out of range"
    );
    assert_eq!(b.q("BZPOPMIN z1 -1"), "-ERR timeout is negative");
    assert_eq!(
        b.q("BZMPOP 1 0 z1 MIN"),
        "-ERR numkeys should be greater than 0"
    );
    assert_eq!(
        b.q("BZMPOP abc 1 z1 MIN"),
        "-ERR timeout is not a float or out of range"
    );
    assert_eq!(
        b.q("BZMPOP 1 1 z1 MIN COUNT 1 COUNT 2"),
        "-ERR syntax error"
    );

    // Blocks until a ZADD, which the blocked client pops from.
    b.send(&[b"BZPOPMIN", b"z1", b"z2", b"0"]);
    assert!(wait_for(Duration::from_secs(10), || blocked_clients(
        &mut c
    ) == 1));
    assert_eq!(c.q("ZADD z2 -1 foo 1 bar"), ":2");
    assert_eq!(b.read(), "[z2 foo -1]");
    assert_eq!(c.q("ZRANGE z2 0 -1"), "[bar]");
    c.q("DEL z2");

    // BZMPOP with COUNT, served after the fact, nested reply.
    b.send(&[b"BZMPOP", b"0", b"2", b"z1", b"z2", b"MAX", b"COUNT", b"2"]);
    assert!(wait_for(Duration::from_secs(10), || blocked_clients(
        &mut c
    ) == 1));
    c.q("ZADD z2 1 a 2 b 3 c");
    assert_eq!(b.read(), "[z2 [[c 3] [b 2]]]");

    // Inside MULTI a blocking pop does not block.
    c.q("DEL z1 z2");
    assert_eq!(c.q("MULTI"), "+OK");
    assert_eq!(c.q("BZPOPMIN z1 0"), "+QUEUED");
    assert_eq!(c.q("BZMPOP 0 1 z1 MIN"), "+QUEUED");
    assert_eq!(c.q("EXEC"), "[nil nil]");

    // RESP3: BZPOPMIN stays flat, scores are doubles; timeout is RESP3 null.
    let mut b3 = Conn::resp3(&s);
    b3.send(&[b"BZPOPMIN", b"z1", b"5"]);
    assert!(wait_for(Duration::from_secs(10), || blocked_clients(
        &mut c
    ) == 1));
    c.q("ZADD z1 1 a");
    assert_eq!(b3.read(), "[z1 a ,1]");
    assert_eq!(b3.q("BZPOPMAX z1 0.01"), "nil");

    // A ZADD + DEL inside MULTI does not wake the client; the next ZADD does.
    b.send(&[b"BZPOPMIN", b"zz", b"0"]);
    assert!(wait_for(Duration::from_secs(10), || blocked_clients(
        &mut c
    ) == 1));
    c.q("MULTI");
    c.q("ZADD zz 0 foo");
    c.q("DEL zz");
    assert_eq!(c.q("EXEC"), "[:1 :1]");
    c.q("ZADD zz 1 bar");
    assert_eq!(b.read(), "[zz bar 1]");
}

#[test]
fn set_operations() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD a 1 a 2 b 3 c");
    c.q("ZADD b 1 b 2 c 3 d");
    assert_eq!(c.q("ZUNION 2 a b WITHSCORES"), "[a 1 b 3 d 3 c 5]");
    assert_eq!(
        c.q("ZUNION 2 a b WEIGHTS 2 3 WITHSCORES"),
        "[a 2 b 7 d 9 c 12]"
    );
    assert_eq!(
        c.q("ZUNION 2 a b AGGREGATE MIN WITHSCORES"),
        "[a 1 b 1 c 2 d 3]"
    );
    assert_eq!(
        c.q("ZUNION 2 a b AGGREGATE MAX WITHSCORES"),
        "[a 1 b 2 c 3 d 3]"
    );
    assert_eq!(c.q("ZINTER 2 a b WITHSCORES"), "[b 3 c 5]");
    assert_eq!(c.q("ZINTER 2 a b WEIGHTS 2 3"), "[b c]");
    assert_eq!(c.q("ZINTER 2 a nokey"), "[]");
    assert_eq!(c.q("ZDIFF 2 a b WITHSCORES"), "[a 1]");
    assert_eq!(c.q("ZDIFF 2 a a"), "[]");
    assert_eq!(c.q("ZINTERCARD 2 a b"), ":2");
    assert_eq!(c.q("ZINTERCARD 2 a b LIMIT 1"), ":1");
    assert_eq!(c.q("ZINTERCARD 2 a b LIMIT 0"), ":2");
    assert_eq!(c.q("ZINTERCARD 1 nokey"), ":0");
    assert_eq!(
        c.q("ZINTERCARD 2 a b LIMIT -1"),
        "-ERR LIMIT can't be negative"
    );
    assert_eq!(
        c.q("ZINTERCARD 2 a b LIMIT x"),
        "-ERR LIMIT can't be negative"
    );
    assert_eq!(c.q("ZINTERCARD 2 a b WITHSCORES"), "-ERR syntax error");
    assert_eq!(c.q("ZINTERCARD 1 a LIMIT"), "-ERR syntax error");
    assert_eq!(c.q("ZDIFF 2 a b WEIGHTS 1 1"), "-ERR syntax error");
    assert_eq!(c.q("ZUNION 2 a b WEIGHTS 1"), "-ERR syntax error");
    assert_eq!(c.q("ZUNION 2 a b AGGREGATE foo"), "-ERR syntax error");
    assert_eq!(c.q("ZUNION 3 a b"), "-ERR syntax error");
    assert_eq!(
        c.q("ZUNION 2 a b WEIGHTS nan 1"),
        "-ERR weight value is not a float"
    );
    assert_eq!(
        c.q("ZUNION a a"),
        "-ERR value is not an integer or out of range"
    );
    for (cmd, name) in [
        ("ZUNION 0 a", "zunion"),
        ("ZINTER 0 a", "zinter"),
        ("ZDIFF 0 a", "zdiff"),
        ("ZINTERCARD 0 a", "zintercard"),
        ("ZUNIONSTORE d 0 a", "zunionstore"),
        ("ZINTERSTORE d 0 a", "zinterstore"),
        ("ZDIFFSTORE d 0 a", "zdiffstore"),
    ] {
        assert_eq!(
            c.q(cmd),
            format!("-ERR at least 1 input key is needed for '{name}' command")
        );
    }
    // Stores.
    assert_eq!(c.q("ZUNIONSTORE d 2 a b"), ":4");
    assert_eq!(c.q("ZRANGE d 0 -1 WITHSCORES"), "[a 1 b 3 d 3 c 5]");
    assert_eq!(c.q("ZINTERSTORE d 2 a b WEIGHTS 2 3"), ":2");
    assert_eq!(c.q("ZRANGE d 0 -1 WITHSCORES"), "[b 7 c 12]");
    assert_eq!(c.q("ZDIFFSTORE d 2 a b"), ":1");
    assert_eq!(c.q("ZRANGE d 0 -1 WITHSCORES"), "[a 1]");
    assert_eq!(c.q("ZUNIONSTORE d 2 a b WITHSCORES"), "-ERR syntax error");
    assert_eq!(c.q("ZINTERSTORE d 2 a nokey"), ":0");
    assert_eq!(c.q("EXISTS d"), ":0");
    // The destination may be an input.
    assert_eq!(c.q("ZUNIONSTORE a 2 a b"), ":4");
    assert_eq!(c.q("ZRANGE a 0 -1 WITHSCORES"), "[a 1 b 3 d 3 c 5]");
    // Infinities: +inf + -inf is 0, and 0 * inf weights give 0, not NaN.
    c.q("ZADD i1 +inf k");
    c.q("ZADD i2 -inf k");
    assert_eq!(c.q("ZUNION 2 i1 i2 WITHSCORES"), "[k 0]");
    assert_eq!(c.q("ZINTERSTORE i3 2 i1 i1"), ":1");
    assert_eq!(c.q("ZSCORE i3 k"), "inf");
    assert_eq!(c.q("ZUNION 1 i2 WEIGHTS 0 WITHSCORES"), "[k 0]");
    // RESP3 pairs.
    let mut c3 = Conn::resp3(&s);
    assert_eq!(c3.q("ZINTER 2 a b WITHSCORES"), "[[b ,4] [d ,6] [c ,7]]");
    assert_eq!(c3.q("ZDIFF 2 a b"), "[a]");
}

#[test]
fn zrandmember_variants() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    c.q("ZADD z 1 a 2 b 3 c 4 d 5 e 6 f 7 g 8 h 9 i 10 j");
    let all = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
    let parse = |r: &str| -> Vec<String> {
        r.trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    for _ in 0..20 {
        let m = c.q("ZRANDMEMBER z");
        assert!(all.contains(&m.as_str()), "{m}");
    }
    assert_eq!(c.q("ZRANDMEMBER nokey"), "nil");
    assert_eq!(c.q("ZRANDMEMBER nokey 5"), "[]");
    assert_eq!(c.q("ZRANDMEMBER z 0"), "[]");
    // Distinct members for positive counts.
    for n in [1usize, 2, 8, 10, 20] {
        let mut v = parse(&c.q(&format!("ZRANDMEMBER z {n}")));
        assert_eq!(v.len(), n.min(10));
        v.sort();
        v.dedup();
        assert_eq!(v.len(), n.min(10));
        assert!(v.iter().all(|m| all.contains(&m.as_str())));
    }
    // Repetitions for negative counts, with scores that match.
    let v = parse(&c.q("ZRANDMEMBER z -50 WITHSCORES"));
    assert_eq!(v.len(), 100);
    for p in v.chunks(2) {
        let idx = all.iter().position(|m| *m == p[0]).unwrap();
        assert_eq!(p[1], (idx + 1).to_string());
    }
    let v = parse(&c.q("ZRANDMEMBER z -1000"));
    assert_eq!(v.len(), 1000);
    let mut distinct = v.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 10, "all members eventually drawn");
    assert_eq!(c.q("ZRANDMEMBER z 5 WITHSCORES").matches(' ').count(), 9);
    assert_eq!(
        c.q("ZRANDMEMBER z a"),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(c.q("ZRANDMEMBER z 1 foo"), "-ERR syntax error");
    assert_eq!(c.q("ZRANDMEMBER z 1 WITHSCORES foo"), "-ERR syntax error");
    assert_eq!(
        c.q("ZRANDMEMBER z -9223372036854775808"),
        "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"
    );
    assert_eq!(
        c.q("ZRANDMEMBER z -9223372036854770000 WITHSCORES"),
        "-ERR value is out of range"
    );
    let mut c3 = Conn::resp3(&s);
    let r = c3.q("ZRANDMEMBER z 3 WITHSCORES");
    assert_eq!(r.matches('[').count(), 4, "{r}");
    assert_eq!(r.matches(',').count(), 3, "{r}");
    assert_eq!(c3.q("ZRANDMEMBER z 2").matches('[').count(), 1);
}

#[test]
fn zscan_cursor_guarantees() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    assert_eq!(c.q("ZSCAN nokey 0"), "[0 []]");
    assert_eq!(c.q("ZSCAN nokey 0 COUNT 0"), "[0 []]");
    c.q("ZADD small 1 foo 2 fab 3 fiz 10 foobar 1.5 x");
    assert_eq!(
        c.q("ZSCAN small 0"),
        "[0 [foo 1 x 1.5 fab 2 fiz 3 foobar 10]]"
    );
    assert_eq!(
        c.q("ZSCAN small 0 MATCH foo* COUNT 1"),
        "[0 [foo 1 foobar 10]]"
    );
    assert_eq!(c.q("ZSCAN small abc"), "-ERR invalid cursor");
    assert_eq!(c.qa(&["ZSCAN", "small", " 0"]), "-ERR invalid cursor");
    assert_eq!(
        c.q("ZSCAN small 18446744073709551616"),
        "-ERR invalid cursor"
    );
    assert_eq!(c.q("ZSCAN small 0 COUNT 0"), "-ERR syntax error");
    assert_eq!(
        c.q("ZSCAN small 0 COUNT x"),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(c.q("ZSCAN small 0 MATCH"), "-ERR syntax error");
    assert_eq!(c.q("ZSCAN small 0 TYPE zset"), "-ERR syntax error");
    let mut c3 = Conn::resp3(&s);
    assert_eq!(c3.q("ZSCAN small 0 MATCH x"), "[0 [x 1.5]]");

    // A large set: a full scan returns every member exactly once, even with
    // writes between calls (members present for the whole scan).
    let n = 2000;
    let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
    for i in 0..n {
        args.push(i.to_string());
        args.push(format!("m{i}"));
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(c.qa(&refs), format!(":{n}"));
    let mut seen = std::collections::HashMap::new();
    let mut cursor = "0".to_string();
    let mut calls = 0;
    loop {
        let r = c.q(&format!("ZSCAN big {cursor} COUNT 25"));
        let inner = r.strip_prefix('[').unwrap().strip_suffix(']').unwrap();
        let (cur, rest) = inner.split_once(' ').unwrap();
        let items: Vec<&str> = rest
            .trim_start_matches('[')
            .trim_end_matches(']')
            .split_whitespace()
            .collect();
        for p in items.chunks(2) {
            if p[0].starts_with("tmp") {
                continue;
            }
            assert_eq!(p[0], format!("m{}", p[1]));
            *seen.entry(p[0].to_string()).or_insert(0) += 1;
        }
        // Churn: members added and removed that were not there at the start.
        c.q(&format!("ZADD big 0.5 tmp{calls}"));
        c.q(&format!("ZREM big tmp{}", calls.max(1) - 1));
        calls += 1;
        assert!(calls < 10_000, "scan does not terminate");
        cursor = cur.to_string();
        if cursor == "0" {
            break;
        }
    }
    for i in 0..n {
        assert_eq!(seen.get(&format!("m{i}")), Some(&1), "m{i}");
    }
    assert!(calls > 10, "COUNT is roughly honoured: {calls} calls");
}

#[test]
fn resp3_reply_types() {
    let s = Server::start(&[]);
    let mut c = Conn::resp3(&s);
    c.q("ZADD z 1 a 2.5 b inf c");
    assert_eq!(c.q("ZSCORE z b"), ",2.5");
    assert_eq!(c.q("ZSCORE z c"), ",inf");
    assert_eq!(c.q("ZSCORE z x"), "nil");
    assert_eq!(c.q("ZMSCORE z a x"), "[,1 nil]");
    assert_eq!(c.q("ZINCRBY z 1 a"), ",2");
    assert_eq!(c.q("ZADD z XX INCR 1 nope"), "nil");
    assert_eq!(
        c.q("ZRANGE z 0 -1 WITHSCORES"),
        "[[a ,2] [b ,2.5] [c ,inf]]"
    );
    assert_eq!(c.q("ZRANGE z 0 -1"), "[a b c]");
    assert_eq!(
        c.q("ZREVRANGEBYSCORE z +inf -inf WITHSCORES LIMIT 1 1"),
        "[[b ,2.5]]"
    );
    assert_eq!(c.q("ZUNION 1 z WITHSCORES"), "[[a ,2] [b ,2.5] [c ,inf]]");
    assert_eq!(c.q("ZSCAN z 0"), "[0 [a 2 b 2.5 c inf]]");
}

#[test]
fn large_set_ranks_and_ranges() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    let n = 50_000u32;
    // Pipelined ZADDs in batches.
    for chunk in (0..n).collect::<Vec<_>>().chunks(5000) {
        let mut args: Vec<String> = vec!["ZADD".into(), "big".into()];
        for &i in chunk {
            args.push(((i * 7919) % n).to_string());
            args.push(format!("m{i:06}"));
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(c.qa(&refs), format!(":{}", chunk.len()));
    }
    assert_eq!(c.q("ZCARD big"), format!(":{n}"));
    // Score of m{i} is (i*7919) % n, a permutation, so rank == score.
    for i in [0u32, 1, 777, 25_000, n - 1] {
        let score = (i * 7919) % n;
        assert_eq!(c.q(&format!("ZRANK big m{i:06}")), format!(":{score}"));
        assert_eq!(
            c.q(&format!("ZREVRANK big m{i:06}")),
            format!(":{}", n - 1 - score)
        );
        assert_eq!(
            c.q(&format!("ZRANGE big {score} {score} WITHSCORES")),
            format!("[m{i:06} {score}]")
        );
    }
    assert_eq!(c.q("ZCOUNT big 100 (200"), ":100");
    assert_eq!(
        c.q("ZRANGEBYSCORE big 40000 +inf LIMIT 9998 5 WITHSCORES")
            .matches(' ')
            .count(),
        3
    );
    assert_eq!(c.q("ZREMRANGEBYRANK big 0 9999"), ":10000");
    assert_eq!(
        c.q("ZRANGE big 0 0 WITHSCORES").split(' ').nth(1),
        Some("10000]")
    );
    assert_eq!(c.q("ZPOPMAX big 3").matches(' ').count(), 5);
    assert_eq!(c.q("ZCARD big"), format!(":{}", n - 10_003));
}

#[test]
fn wrong_type_and_plain_set_inputs() {
    let s = Server::start(&[]);
    let mut c = Conn::new(&s);
    let wt = "-WRONGTYPE Operation against a key holding the wrong kind of value";
    assert_eq!(c.q("SET str x"), "+OK");
    for cmd in [
        "ZADD str 1 a",
        "ZINCRBY str 1 a",
        "ZREM str a",
        "ZCARD str",
        "ZSCORE str a",
        "ZMSCORE str a",
        "ZRANK str a",
        "ZREVRANK str a",
        "ZCOUNT str 0 1",
        "ZLEXCOUNT str - +",
        "ZRANGE str 0 -1",
        "ZRANGEBYSCORE str 0 1",
        "ZRANGEBYLEX str - +",
        "ZRANGESTORE d str 0 -1",
        "ZREMRANGEBYRANK str 0 1",
        "ZREMRANGEBYSCORE str 0 1",
        "ZREMRANGEBYLEX str - +",
        "ZPOPMIN str",
        "ZPOPMIN str 0",
        "ZPOPMAX str 2",
        "ZMPOP 1 str MIN",
        "ZMPOP 2 nokey str MAX COUNT 2",
        "BZPOPMIN str 0",
        "BZMPOP 0 2 nokey str MIN",
        "ZUNION 2 nokey str",
        "ZINTER 1 str",
        "ZDIFF 1 str",
        "ZINTERCARD 1 str",
        "ZUNIONSTORE d 1 str",
        "ZRANDMEMBER str",
        "ZRANDMEMBER str 2",
        "ZSCAN str 0",
    ] {
        assert_eq!(c.q(cmd), wt, "{cmd}");
    }
    // Argument errors come before the type check, the type check before the
    // options of set operations.
    assert_eq!(
        c.q("ZRANGE str a b"),
        "-ERR value is not an integer or out of range"
    );
    assert_eq!(c.q("ZCOUNT str a b"), "-ERR min or max is not a float");
    assert_eq!(c.q("ZUNION 1 str BADOPT"), wt);
    assert_eq!(
        c.q("ZPOPMIN str -1"),
        "-ERR value is out of range, must be positive"
    );
    // Only the first existing key is type-checked by ZMPOP.
    c.q("ZADD z 1 a");
    assert_eq!(c.q("ZMPOP 2 z str MIN"), "[z [[a 1]]]");
    // A failed ZRANGESTORE leaves the destination alone.
    c.q("ZADD d 1 keep");
    assert_eq!(c.q("ZRANGESTORE d str 0 -1"), wt);
    assert_eq!(c.q("ZRANGE d 0 -1"), "[keep]");
    assert_eq!(c.q("ZRANGESTORE str d 0 -1"), ":1");
    assert_eq!(c.q("TYPE str"), "+zset");

    // Plain sets are inputs with score 1.
    c.q("SADD s a b x");
    c.q("ZADD z1 1 a 2 b 3 c");
    assert_eq!(c.q("ZUNION 2 z1 s WITHSCORES"), "[x 1 a 2 b 3 c 3]");
    assert_eq!(c.q("ZINTER 2 z1 s WEIGHTS 1 10 WITHSCORES"), "[a 11 b 12]");
    assert_eq!(c.q("ZDIFF 1 s WITHSCORES"), "[a 1 b 1 x 1]");
    assert_eq!(c.q("ZDIFF 2 z1 s"), "[c]");
    assert_eq!(c.q("ZINTERCARD 2 s z1"), ":2");
    assert_eq!(c.q("ZUNIONSTORE out 1 s"), ":3");
    assert_eq!(c.q("TYPE out"), "+zset");
}
