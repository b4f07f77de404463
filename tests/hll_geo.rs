//! HyperLogLog and GEO side by side with a real redis-server 7.0.15: the
//! same requests to both, replies compared byte for byte (the HLL's own
//! bytes through GET, sparse and dense; distances and coordinates as text).

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::upstream::Upstream;
use common::{req, Raw, Server};

/// One connection to jcache and one to redis-server.
struct Pair {
    ours: Raw,
    theirs: Raw,
}

impl Pair {
    fn open(s: &Server, redis: &Upstream) -> Pair {
        let theirs = TcpStream::connect(("127.0.0.1", redis.port)).unwrap();
        theirs
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Pair {
            ours: s.raw(),
            theirs: Raw { s: theirs },
        }
    }

    /// Sends `args` to both and asserts the replies are equal; returns ours.
    fn same(&mut self, args: &[&[u8]]) -> String {
        let r = req(args);
        self.ours.send(&r);
        self.theirs.send(&r);
        let ours = self.ours.read_reply();
        let theirs = self.theirs.read_reply();
        assert_eq!(
            ours,
            theirs,
            "replies differ for {:?}",
            args.iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
        );
        ours
    }

    fn same_words(&mut self, text: &str) -> String {
        let args: Vec<&[u8]> = text.split_whitespace().map(str::as_bytes).collect();
        self.same(&args)
    }
}

/// A fixed pseudo-random sequence (the same on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        self.next() as f64 / (1u64 << 31) as f64
    }
}

#[test]
fn hll_bytes_and_estimates_match_redis() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let mut p = Pair::open(&s, &redis);
    let mut rng = Lcg(7);
    p.same_words("PFADD empty");
    let empty = p.same_words("GET empty");
    assert!(empty.starts_with("$18\r\nHYLL\u{1}"), "{empty:?}");
    // Grow one HLL from sparse into dense, comparing its bytes throughout.
    let mut added = 0;
    while added < 4000 {
        let n = 1 + rng.below(if added < 300 { 5 } else { 200 }) as usize;
        let elems: Vec<String> = (0..n).map(|_| format!("e{}", rng.below(100_000))).collect();
        let mut args: Vec<&[u8]> = vec![b"PFADD", b"h"];
        args.extend(elems.iter().map(|e| e.as_bytes()));
        p.same(&args);
        added += n;
        p.same_words("GET h");
        p.same_words("PFCOUNT h");
        // The cached cardinality is now in the header.
        p.same_words("GET h");
        p.same_words("PFDEBUG ENCODING h");
    }
    assert_eq!(p.same_words("PFDEBUG ENCODING h"), "+dense\r\n");
    // Every tail length of MurmurHash64A, with bytes of every value.
    for len in 0..40usize {
        let ele: Vec<u8> = (0..len).map(|i| (i * 37 + len * 11) as u8 ^ 0xa5).collect();
        p.same(&[b"PFADD", b"lens", &ele]);
        p.same_words("GET lens");
    }
    // A second, sparse HLL; unions and merges.
    p.same_words("PFADD small a b c d e f g");
    p.same_words("PFDEBUG DECODE small");
    p.same_words("PFCOUNT h small nokey");
    p.same_words("PFMERGE m1 small");
    p.same_words("GET m1");
    p.same_words("PFMERGE m2 small h");
    p.same_words("GET m2");
    p.same_words("PFCOUNT m2");
    p.same_words("PFMERGE small small nokey");
    p.same_words("GET small");
    // A smaller sparse limit promotes earlier.
    p.same_words("CONFIG SET hll-sparse-max-bytes 60");
    for i in 0..40 {
        p.same(&[b"PFADD", b"tiny", format!("x{i}").as_bytes()]);
        p.same_words("GET tiny");
    }
    p.same_words("CONFIG SET hll-sparse-max-bytes 3000");
    // PFDEBUG TODENSE and GETREG turn a sparse value dense.
    p.same_words("PFADD conv 1 2 3");
    p.same_words("PFDEBUG TODENSE conv");
    p.same_words("GET conv");
    p.same_words("PFDEBUG TODENSE conv");
    p.same_words("PFADD conv2 1 2 3");
    p.same_words("PFDEBUG GETREG conv2");
    p.same_words("GET conv2");
    p.same_words("PFDEBUG DECODE conv2");
    p.same_words("PFDEBUG NOPE conv2");
    p.same_words("PFDEBUG ENCODING nokey");
    // Errors: wrong types, corrupted values.
    p.same_words("SET str hello");
    p.same_words("LPUSH list a");
    for cmd in [
        "PFADD str a",
        "PFCOUNT str",
        "PFCOUNT h str",
        "PFMERGE h str",
        "PFADD list a",
        "PFCOUNT list",
        "PFMERGE list",
        "PFDEBUG ENCODING str",
    ] {
        p.same_words(cmd);
    }
    p.same_words("PFADD c1 a b c");
    p.same_words("APPEND c1 hello");
    p.same_words("PFCOUNT c1");
    p.same_words("PFADD c1 zz yy");
    p.same_words("PFADD c2 a b c");
    p.same_words("SETRANGE c2 4 x");
    p.same_words("PFCOUNT c2");
    p.same_words("PFADD c3 a b c");
    p.same_words("SETRANGE c3 4 \x00");
    p.same_words("PFCOUNT c3");
    p.same_words("PFADD c4 a b c");
    p.same(&[b"SETRANGE", b"c4", b"16", b"\x7f\x10\x7f\xff"]);
    p.same_words("PFCOUNT c4");
    p.same_words("PFADD c4 a b c d e f g h i j k");
    p.same_words("GET c4");
    // A cache invalidated by a write, then recomputed.
    p.same_words("PFADD inv a");
    p.same_words("PFCOUNT inv");
    p.same_words("PFADD inv b");
    p.same_words("GET inv");
    p.same_words("PFCOUNT inv");
    p.same_words("GET inv");
    // A value restored from Redis's DUMP is the same HLL here.
    let mut theirs = redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("h").query(&mut theirs).unwrap();
    p.same(&[b"RESTORE", b"restored", b"0", &payload]);
    p.same_words("GET restored");
    p.same_words("PFCOUNT restored h");
    // And ours restores at Redis.
    let mut ours = s.client();
    let payload: Vec<u8> = redis::cmd("DUMP").arg("small").query(&mut ours).unwrap();
    p.same(&[b"RESTORE", b"back", b"0", &payload]);
    p.same_words("GET back");
    p.same_words("PFCOUNT back");
}

#[test]
fn geo_replies_match_redis() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let mut p = Pair::open(&s, &redis);
    let mut rng = Lcg(11);
    // Clusters of points around a few centres, and some anywhere.
    let centres = [
        (13.36, 38.11),
        (-0.12, 51.5),
        (-122.4, 37.7),
        (151.2, -33.8),
        (179.9, 0.0),
    ];
    for i in 0..600 {
        let (x, y) = if i % 5 == 0 {
            (rng.unit() * 360.0 - 180.0, rng.unit() * 170.0 - 85.0)
        } else {
            let (cx, cy) = centres[i % centres.len()];
            (cx + rng.unit() * 4.0 - 2.0, cy + rng.unit() * 4.0 - 2.0)
        };
        let (x, y) = (x.clamp(-180.0, 180.0), y.clamp(-85.0, 85.0));
        p.same(&[
            b"GEOADD",
            b"pts",
            format!("{x:.6}").as_bytes(),
            format!("{y:.6}").as_bytes(),
            format!("p{i}").as_bytes(),
        ]);
    }
    p.same_words("ZRANGE pts 0 20 WITHSCORES");
    p.same_words("GEOPOS pts p0 p1 p2 p3 p4 nobody");
    p.same_words("GEOHASH pts p0 p1 p2 p3 p4 nobody");
    for (a, b) in [("p0", "p1"), ("p1", "p6"), ("p2", "p7"), ("p3", "p3")] {
        for u in ["m", "km", "mi", "ft"] {
            p.same_words(&format!("GEODIST pts {a} {b} {u}"));
        }
    }
    let units = ["m", "km", "mi", "ft"];
    let options = ["WITHDIST", "WITHCOORD", "WITHHASH", "ASC", "DESC"];
    let mut found = 0;
    for q in 0..300 {
        let (cx, cy) = centres[q % centres.len()];
        let x = cx + rng.unit() * 2.0 - 1.0;
        let y = cy + rng.unit() * 2.0 - 1.0;
        let u = units[rng.below(4) as usize];
        let r = match u {
            "m" => rng.unit() * 300_000.0,
            "km" => rng.unit() * 300.0,
            "mi" => rng.unit() * 200.0,
            _ => rng.unit() * 900_000.0,
        };
        let mut opts: Vec<String> = options
            .iter()
            .filter(|_| rng.below(2) == 0)
            .map(|o| o.to_string())
            .collect();
        match rng.below(4) {
            0 => opts.push(format!("COUNT {}", 1 + rng.below(20))),
            1 => opts.push(format!("COUNT {} ANY", 1 + rng.below(20))),
            _ => {}
        }
        let opts = opts.join(" ");
        let (x, y, r) = (format!("{x:.5}"), format!("{y:.5}"), format!("{r:.3}"));
        let reply = match q % 4 {
            0 => p.same_words(&format!("GEORADIUS pts {x} {y} {r} {u} {opts}")),
            1 => p.same_words(&format!(
                "GEORADIUSBYMEMBER_RO pts p{} {r} {u} {opts}",
                rng.below(600)
            )),
            2 => p.same_words(&format!(
                "GEOSEARCH pts FROMLONLAT {x} {y} BYBOX {r} {} {u} {opts}",
                rng.unit() * 300.0
            )),
            _ => p.same_words(&format!(
                "GEOSEARCH pts FROMMEMBER p{} BYRADIUS {r} {u} {opts}",
                rng.below(600)
            )),
        };
        found += (reply != "*0\r\n") as usize;
    }
    assert!(found > 150, "only {found} searches found anything");
    // Stores.
    p.same_words("GEORADIUS pts 13.36 38.11 100 km STORE dst");
    p.same_words("ZRANGE dst 0 -1 WITHSCORES");
    p.same_words("GEORADIUS pts 13.36 38.11 100 km STOREDIST dst COUNT 5 DESC");
    p.same_words("ZRANGE dst 0 -1 WITHSCORES");
    p.same_words("GEOSEARCHSTORE dst2 pts FROMLONLAT -0.12 51.5 BYBOX 200 100 km STOREDIST");
    p.same_words("ZRANGE dst2 0 -1 WITHSCORES");
    p.same_words("GEOSEARCHSTORE dst2 pts FROMLONLAT 0 0 BYRADIUS 1 m");
    p.same_words("EXISTS dst2");
    // RESP3: coordinates are doubles, distances bulk strings.
    for c in [&mut p.ours, &mut p.theirs] {
        c.send(b"HELLO 3\r\n");
        c.read_reply();
    }
    p.same_words("GEOPOS pts p0 nobody");
    p.same_words("GEOSEARCH pts FROMMEMBER p1 BYRADIUS 50 km WITHCOORD WITHDIST WITHHASH COUNT 3");
    p.same_words("GEODIST nokey a b");
    p.same_words("GEOHASH pts nobody");
}

#[test]
fn geo_errors_match_redis() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let mut p = Pair::open(&s, &redis);
    p.same_words("GEOADD g 13.361389 38.115556 Palermo 15.087269 37.502669 Catania");
    p.same_words("SET str x");
    for cmd in [
        "GEOADD g xx ch 13.361389 38.115556 Palermo 1 2 new",
        "GEOADD g nx 1 2 Palermo",
        "GEOADD g nx xx 1 2 x",
        "GEOADD g 1 2",
        "GEOADD g 200 100 x",
        "GEOADD g abc 1 x",
        "GEOADD g ch ch ch",
        "GEOADD g gt 1 2 x",
        "GEOADD str 1 1 a",
        "GEODIST g Palermo Catania parsec",
        "GEODIST g Palermo Catania km extra",
        "GEODIST g Palermo nobody",
        "GEODIST str a b",
        "GEOPOS str a",
        "GEOHASH nokey a",
        "GEORADIUS g 15 37 200 km COUNT 0",
        "GEORADIUS g 15 37 200 km COUNT -1",
        "GEORADIUS g 15 37 200 km COUNT x",
        "GEORADIUS g 15 37 200 km ANY",
        "GEORADIUS g 15 37 -200 km",
        "GEORADIUS g 15 37 x km",
        "GEORADIUS g 15 37 200 parsec",
        "GEORADIUS g 15 100 200 km",
        "GEORADIUS g 15 37 200 km STORE d WITHDIST",
        "GEORADIUS g 15 37 200 km BOGUS",
        "GEORADIUS_RO g 15 37 200 km STORE d",
        "GEORADIUS str 15 37 200 km",
        "GEORADIUSBYMEMBER g nobody 200 km",
        "GEORADIUSBYMEMBER nokey nobody x y",
        "GEORADIUSBYMEMBER nokey nobody x y STORE d",
        "GEOSEARCH g BYBOX 400 400 km",
        "GEOSEARCH g FROMLONLAT 15 37 WITHDIST",
        "GEOSEARCH g FROMLONLAT 15 37 BYBOX 400 400 km BYRADIUS 1 km",
        "GEOSEARCH g FROMLONLAT 15 37 FROMMEMBER Palermo BYBOX 4 4 km",
        "GEOSEARCH g FROMLONLAT 15 37 BYBOX -1 1 km",
        "GEOSEARCH g FROMLONLAT 15 37 BYBOX x 1 km",
        "GEOSEARCH g FROMLONLAT 15 37 BYBOX 1 x km",
        "GEOSEARCH g FROMMEMBER nobody BYBOX 1 1 km",
        "GEOSEARCH nokey FROMMEMBER nobody BYBOX 1 1 km",
        "GEOSEARCH g FROMLONLAT 15 37 BYRADIUS 200 km STORE x",
        "geosearch g FROMLONLAT 15 37",
        "GEOSEARCHSTORE d g FROMLONLAT 15 37 BYRADIUS 200 km WITHDIST",
        "GEOSEARCHSTORE d str FROMLONLAT 15 37 BYRADIUS 200 km",
        "COMMAND GETKEYS GEORADIUS k 1 2 3 km STORE a STOREDIST b",
        "COMMAND GETKEYS GEORADIUSBYMEMBER k m 3 km STORE a",
        "COMMAND GETKEYS GEOSEARCHSTORE d s FROMLONLAT 1 2 BYRADIUS 1 km",
        "COMMAND GETKEYS PFMERGE a b c",
        "COMMAND GETKEYS PFDEBUG GETREG k",
    ] {
        p.same_words(cmd);
    }
    // Scores that are no geohash still decode (to some point), as in Redis.
    p.same_words("ZADD weird -1 a 1e300 b 4503599627370496 d");
    p.same_words("GEOPOS weird a b d");
    p.same_words("GEOHASH weird a b d");
}

/// In front of a Redis, PFCOUNT is the upstream's (it stores its estimate
/// in the value there, as Redis does), and the local copy follows.
#[test]
fn tiered_pfcount_caches_at_the_upstream() {
    let up = Upstream::start();
    let s = Server::start(&[
        "--tier",
        "memory",
        "--tier",
        &up.url(),
        "--upstream-timeout",
        "500ms",
    ]);
    let mut c = s.client();
    let mut r = up.client();
    assert!(
        common::wait_for(Duration::from_secs(10), || {
            let text: String = redis::cmd("INFO").arg("tiers").query(&mut c).unwrap();
            common::info_field(&text, "upstream_status").as_deref() == Some("up")
        }),
        "upstream never came up"
    );
    let _: i64 = common::q(&mut c, &["PFADD", "h", "a", "b", "c"]);
    // A read fills the local copy (cache invalid).
    let before: Vec<u8> = common::q(&mut c, &["GET", "h"]);
    assert_eq!(before[15] & 0x80, 0x80);
    assert_eq!(common::q::<i64>(&mut c, &["PFCOUNT", "h"]), 3);
    let upstream: Vec<u8> = common::q(&mut r, &["GET", "h"]);
    assert_eq!(upstream[15] & 0x80, 0, "the upstream holds the estimate");
    assert!(
        common::wait_for(Duration::from_secs(5), || {
            common::q::<Vec<u8>>(&mut c, &["GET", "h"]) == upstream
        }),
        "the local copy never followed the upstream"
    );
}

/// COMMAND INFO's arity, flags, key range and ACL categories (as sets) agree
/// with Redis's for every HLL and GEO command.
#[test]
fn command_info_matches_redis() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let mut ours = s.client();
    let mut theirs = redis.client();
    let names = [
        "pfadd",
        "pfcount",
        "pfmerge",
        "pfdebug",
        "pfselftest",
        "geoadd",
        "geodist",
        "geohash",
        "geopos",
        "georadius",
        "georadius_ro",
        "georadiusbymember",
        "georadiusbymember_ro",
        "geosearch",
        "geosearchstore",
    ];
    let shape = |c: &mut redis::Connection, name: &str| -> Vec<String> {
        let v: redis::Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query(c)
            .unwrap();
        let redis::Value::Array(outer) = v else {
            panic!("{v:?}")
        };
        let redis::Value::Array(info) = &outer[0] else {
            panic!("{outer:?}")
        };
        let text = |v: &redis::Value| -> String {
            match v {
                redis::Value::Array(items) | redis::Value::Set(items) => {
                    let mut words: Vec<String> = items
                        .iter()
                        .map(|i| redis::from_redis_value::<String>(i.clone()).unwrap())
                        .collect();
                    words.sort();
                    words.join(" ")
                }
                other => format!("{other:?}"),
            }
        };
        (1..7).map(|i| text(&info[i])).collect()
    };
    for name in names {
        assert_eq!(shape(&mut ours, name), shape(&mut theirs, name), "{name}");
    }
}

/// The keyspace events of the PF and GEO commands are Redis's: one `pfadd`
/// per changing PFADD or PFMERGE (however many bytes changed), none for
/// PFCOUNT's cached estimate or PFDEBUG's conversion, `zadd` for GEOADD,
/// `georadiusstore` / `geosearchstore` for the stores.
#[test]
fn keyspace_events_match_redis() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let mut p = Pair::open(&s, &redis);
    p.same_words("CONFIG SET notify-keyspace-events KEA");
    let mut subs = Pair::open(&s, &redis);
    for c in [&mut subs.ours, &mut subs.theirs] {
        c.send(&req(&[b"PSUBSCRIBE", b"*"]));
        c.read_reply();
    }
    for cmd in [
        "PFADD h a b c",
        "PFADD h a b c",
        "PFCOUNT h",
        "PFDEBUG TODENSE h",
        "PFADD h 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20",
        "PFCOUNT h",
        "PFMERGE h2 h",
        "PFADD fresh",
        "GEOADD g 1 1 a 2 2 b",
        "GEORADIUS g 1 1 500 km STORE g2",
        "GEOSEARCHSTORE g3 g FROMLONLAT 1 1 BYRADIUS 500 km",
        "GEOSEARCHSTORE g3 g FROMLONLAT 50 50 BYRADIUS 1 km",
        "PUBLISH end x",
    ] {
        p.same_words(cmd);
    }
    let collect = |c: &mut Raw| {
        let mut seen = Vec::new();
        for _ in 0..100 {
            let m = c.read_reply();
            if m.contains("\r\nend\r\n") {
                return seen;
            }
            seen.push(m);
        }
        panic!("no end marker: {seen:?}");
    };
    let ours = collect(&mut subs.ours);
    let theirs = collect(&mut subs.theirs);
    assert_eq!(ours, theirs);
    assert!(
        ours.iter().any(|m| m.contains("georadiusstore")),
        "{ours:?}"
    );
}
