//! Command-level fuzzing against the real binary.
//!
//! Two phases, each seeded (fixed seeds plus one random seed, printed;
//! `JCACHE_FUZZ_SEED=<n>` replays one):
//! 1. Survival: random commands from jcache's own command table (COMMAND
//!    LIST, less those that stop, block or reconfigure the server) with
//!    random and edge-case arguments; jcache must answer every one and stay
//!    up.
//! 2. Differential: random deterministic commands (strings, bitmaps, keys,
//!    lists, hashes, sets, sorted sets, transactions) sent in the same order
//!    to jcache and to a real redis-server; every reply must be the same,
//!    error texts included. Replies whose order Redis leaves undefined (a
//!    set's members, a hash's fields) are compared sorted.
//!
//! A failing sequence is printed with its seed; each one found becomes a
//! regression test in the file of its command family.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::upstream::Upstream;
use common::{req, Server};
use jcache::util::fuzz::seeds;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A RESP2 reply, as a tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Reply {
    Status(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Reply>>),
}

struct Conn {
    r: BufReader<TcpStream>,
}

impl Conn {
    fn open(port: u16) -> Conn {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_nodelay(true).unwrap();
        Conn {
            r: BufReader::new(s),
        }
    }

    fn call(&mut self, args: &[Vec<u8>]) -> Reply {
        let args: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        self.r.get_mut().write_all(&req(&args)).unwrap();
        self.read()
    }

    fn line(&mut self) -> String {
        let mut l = Vec::new();
        self.r.read_until(b'\n', &mut l).expect("reply");
        assert!(l.ends_with(b"\r\n"), "connection closed or bad line: {l:?}");
        l.truncate(l.len() - 2);
        String::from_utf8_lossy(&l).into_owned()
    }

    fn read(&mut self) -> Reply {
        let l = self.line();
        let (t, rest) = l.split_at(1);
        match t {
            "+" => Reply::Status(rest.to_string()),
            "-" => Reply::Error(rest.to_string()),
            ":" => Reply::Int(rest.parse().unwrap()),
            "$" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Bulk(None);
                }
                let mut b = vec![0u8; n as usize + 2];
                std::io::Read::read_exact(&mut self.r, &mut b).unwrap();
                b.truncate(n as usize);
                Reply::Bulk(Some(b))
            }
            "*" => {
                let n: i64 = rest.parse().unwrap();
                if n < 0 {
                    return Reply::Array(None);
                }
                Reply::Array(Some((0..n).map(|_| self.read()).collect()))
            }
            other => panic!("unexpected reply type {other:?} in {l:?}"),
        }
    }
}

const KEYS: &[&str] = &["k1", "k2", "k3"];
/// Numbers and texts at the edges of Redis's parsing rules. No small
/// positive number reaches a relative expiry (EX/PX and EXPIRE are not
/// generated in the differential): timing would decide the reply.
const VALUES: &[&str] = &[
    "",
    "0",
    "1",
    "-1",
    "2",
    "3",
    "7",
    "-3",
    "3.5",
    "-2.5e3",
    "abc",
    "a",
    "b",
    "c",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "(1",
    "[a",
    "(b",
    "-",
    "+",
    " 5",
    "0x1f",
    "1e3",
    "0.1",
    "*",
    "k1",
];
const OPTIONS: &[&str] = &[
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "WITHSCORES",
    "WITHDIST",
    "WITHCOORD",
    "STORE",
    "FROMLONLAT",
    "BYRADIUS",
    "KM",
    "LIMIT",
    "BYSCORE",
    "BYLEX",
    "REV",
    "COUNT",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "AGGREGATE",
    "SUM",
    "MIN",
    "MAX",
    "WEIGHTS",
    "KEEPTTL",
    "GET",
    "PERSIST",
    "IDX",
    "LEN",
    "MINMATCHLEN",
    "WITHMATCHLEN",
    "RANK",
    "MAXLEN",
    "BIT",
    "BYTE",
    "AND",
    "OR",
    "XOR",
    "NOT",
    "REPLACE",
    "WITHVALUES",
    "u8",
    "i5",
    "#1",
    "SET",
    "INCRBY",
    "OVERFLOW",
    "SAT",
    "WRAP",
    "FAIL",
    "ALPHA",
    "ABSTTL",
];

fn random_arg(rng: &mut StdRng) -> Vec<u8> {
    match rng.gen_range(0..10) {
        0..=3 => KEYS[rng.gen_range(0..KEYS.len())].into(),
        4..=7 => VALUES[rng.gen_range(0..VALUES.len())].into(),
        _ => OPTIONS[rng.gen_range(0..OPTIONS.len())].into(),
    }
}

fn random_command(rng: &mut StdRng, names: &[String]) -> Vec<Vec<u8>> {
    let name = &names[rng.gen_range(0..names.len())];
    let mut args: Vec<Vec<u8>> = name.split('|').map(|p| p.as_bytes().to_vec()).collect();
    // Mostly one key first, then up to six arguments of any kind.
    if rng.gen_bool(0.8) {
        args.push(KEYS[rng.gen_range(0..KEYS.len())].into());
    }
    for _ in 0..rng.gen_range(0..7) {
        args.push(random_arg(rng));
    }
    args
}

fn show(cmd: &[Vec<u8>]) -> String {
    cmd.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Commands the survival phase leaves out: they stop the server, block,
/// change the connection's protocol or mode, reconfigure the server, or
/// answer more than once.
const NOT_IN_SURVIVAL: &[&str] = &[
    "shutdown",
    "debug",
    "monitor",
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "quit",
    "reset",
    "hello",
    "auth",
    "client",
    "config",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "wait",
    "select",
    "swapdb",
    "save",
    "bgsave",
    "bgrewriteaof",
    "replicaof",
    "slaveof",
    "sync",
    "psync",
    "failover",
    // Ten million additions: about 20 s in a debug build.
    "pfselftest",
    "multi",
    "watch",
    // One reply per argument: the harness reads one reply per command.
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
];

#[test]
fn random_commands_never_stop_the_server() {
    let s = Server::start(&[]);
    let mut c = Conn::open(s.port);
    let Reply::Array(Some(list)) = c.call(&[b"COMMAND".to_vec(), b"LIST".to_vec()]) else {
        panic!("COMMAND LIST");
    };
    let names: Vec<String> = list
        .into_iter()
        .filter_map(|r| match r {
            Reply::Bulk(Some(b)) => Some(String::from_utf8(b).unwrap()),
            _ => None,
        })
        .filter(|n| !NOT_IN_SURVIVAL.contains(&n.split('|').next().unwrap()))
        .collect();
    assert!(names.len() > 100, "{} commands", names.len());
    for seed in seeds("random_commands_never_stop_the_server") {
        let mut rng = StdRng::seed_from_u64(seed);
        for i in 0..1500 {
            let cmd = random_command(&mut rng, &names);
            // Any reply will do; a closed connection or a dead server fails.
            let _ = c.call(&cmd);
            if i % 100 == 0 {
                assert_eq!(
                    c.call(&[b"PING".to_vec()]),
                    Reply::Status("PONG".into()),
                    "seed {seed}, after {}",
                    show(&cmd)
                );
            }
        }
    }
    assert_eq!(c.call(&[b"PING".to_vec()]), Reply::Status("PONG".into()));
}

/// The differential's commands: deterministic given the same sequence.
const DETERMINISTIC: &[&str] = &[
    // strings and bitmaps
    "set",
    "get",
    "getset",
    "getdel",
    "setnx",
    "mset",
    "msetnx",
    "mget",
    "append",
    "strlen",
    "getrange",
    "setrange",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat",
    "lcs",
    "setbit",
    "getbit",
    "bitcount",
    "bitpos",
    "bitop",
    "bitfield",
    "bitfield_ro",
    // keys
    "del",
    "unlink",
    "exists",
    "type",
    "rename",
    "renamenx",
    "copy",
    "persist",
    "expireat",
    "pexpireat",
    "expiretime",
    "pexpiretime",
    "touch",
    "dbsize",
    // lists
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "lpop",
    "rpop",
    "llen",
    "lrange",
    "lindex",
    "lset",
    "linsert",
    "lrem",
    "ltrim",
    "lpos",
    "lmove",
    "rpoplpush",
    "lmpop",
    // hashes
    "hset",
    "hsetnx",
    "hget",
    "hmget",
    "hdel",
    "hlen",
    "hexists",
    "hincrby",
    "hincrbyfloat",
    "hstrlen",
    "hgetall",
    "hkeys",
    "hvals",
    "hmset",
    // sets
    "sadd",
    "srem",
    "scard",
    "sismember",
    "smismember",
    "smembers",
    "sinter",
    "sunion",
    "sdiff",
    "sinterstore",
    "sunionstore",
    "sdiffstore",
    "sintercard",
    "smove",
    // sorted sets
    "zadd",
    "zincrby",
    "zscore",
    "zmscore",
    "zrem",
    "zcard",
    "zcount",
    "zlexcount",
    "zrange",
    "zrangestore",
    "zrangebyscore",
    "zrevrangebyscore",
    "zrangebylex",
    "zrevrangebylex",
    "zrevrange",
    "zrank",
    "zrevrank",
    "zremrangebyrank",
    "zremrangebyscore",
    "zremrangebylex",
    "zpopmin",
    "zpopmax",
    "zmpop",
    "zunionstore",
    "zinterstore",
    "zdiffstore",
    "zunion",
    "zinter",
    "zdiff",
    "zintercard",
    // HyperLogLog and GEO
    "pfadd",
    "pfcount",
    "pfmerge",
    "geoadd",
    "geodist",
    "geohash",
    "geopos",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "geosearch",
    "geosearchstore",
    // transactions
    "multi",
    "exec",
    "discard",
];

/// Commands whose reply is a collection in an order Redis leaves undefined.
const UNORDERED: &[&str] = &[
    "smembers", "sinter", "sunion", "sdiff", "hkeys", "hvals", "hgetall",
];

/// EXEC's replies, each normalized by the command it answers.
fn normalize_exec(queued: &[String], r: Reply) -> Reply {
    match r {
        Reply::Array(Some(items)) if items.len() == queued.len() => Reply::Array(Some(
            items
                .into_iter()
                .zip(queued)
                .map(|(r, name)| normalize(name, r))
                .collect(),
        )),
        other => other,
    }
}

/// Sorts the elements (hash pairs as pairs) of an unordered reply.
fn normalize(cmd: &str, r: Reply) -> Reply {
    if !UNORDERED.contains(&cmd) {
        return r;
    }
    let Reply::Array(Some(mut items)) = r else {
        return r;
    };
    if cmd == "hgetall" {
        let mut pairs: Vec<Vec<Reply>> = items.chunks(2).map(|c| c.to_vec()).collect();
        pairs.sort();
        items = pairs.into_iter().flatten().collect();
    } else {
        items.sort();
    }
    Reply::Array(Some(items))
}

/// What redis-server's COMMAND INFO says of a command: enough to give it
/// the right number of arguments and keys of its own type most of the time.
struct Shape {
    name: String,
    arity: i64,
    first_key: i64,
    last_key: i64,
    step: i64,
    keys: &'static [&'static str],
}

/// Keys per family, so that most commands meet a key of their own type
/// (and WRONGTYPE still happens when another family's key is drawn).
fn family_keys(categories: &[String]) -> &'static [&'static str] {
    let has = |c: &str| categories.iter().any(|x| x == c);
    if has("@list") {
        &["l1", "l2"]
    } else if has("@hash") {
        &["h1", "h2"]
    } else if has("@set") {
        &["s1", "s2"]
    } else if has("@sortedset") || has("@geo") {
        &["z1", "z2"]
    } else {
        &["k1", "k2"]
    }
}

fn shapes(redis_port: u16) -> Vec<Shape> {
    let mut c = Conn::open(redis_port);
    DETERMINISTIC
        .iter()
        .map(|name| {
            let info = c.call(&[
                b"COMMAND".to_vec(),
                b"INFO".to_vec(),
                name.as_bytes().to_vec(),
            ]);
            let Reply::Array(Some(mut outer)) = info else {
                panic!("COMMAND INFO {name}")
            };
            let Reply::Array(Some(f)) = outer.remove(0) else {
                panic!("COMMAND INFO {name}: {outer:?}")
            };
            let int = |r: &Reply| match r {
                Reply::Int(i) => *i,
                other => panic!("{other:?}"),
            };
            let cats: Vec<String> = match &f[6] {
                Reply::Array(Some(a)) => a
                    .iter()
                    .filter_map(|r| match r {
                        Reply::Status(s) => Some(s.clone()),
                        Reply::Bulk(Some(b)) => Some(String::from_utf8_lossy(b).into_owned()),
                        _ => None,
                    })
                    .collect(),
                _ => vec![],
            };
            Shape {
                name: name.to_string(),
                arity: int(&f[1]),
                first_key: int(&f[3]),
                last_key: int(&f[4]),
                step: int(&f[5]),
                keys: family_keys(&cats),
            }
        })
        .collect()
}

/// A command of the right arity nine times in ten, keys where COMMAND INFO
/// puts them (mostly of the command's own type), other arguments from the
/// edge-case values and option words.
fn shaped_command(rng: &mut StdRng, shapes: &[Shape]) -> Vec<Vec<u8>> {
    let sh = &shapes[rng.gen_range(0..shapes.len())];
    let mut argc = if sh.arity >= 0 {
        sh.arity
    } else {
        -sh.arity + rng.gen_range(0..5)
    };
    if rng.gen_bool(0.1) {
        argc = (argc + rng.gen_range(-1..=1)).max(1);
    }
    let last_key = if sh.last_key < 0 {
        argc + sh.last_key
    } else {
        sh.last_key
    };
    (0..argc)
        .map(|i| {
            if i == 0 {
                return sh.name.as_bytes().to_vec();
            }
            let is_key = sh.first_key > 0
                && i >= sh.first_key
                && i <= last_key
                && (i - sh.first_key) % sh.step.max(1) == 0;
            if is_key || (i == 1 && sh.first_key == 0 && rng.gen_bool(0.3)) {
                if rng.gen_bool(0.85) {
                    sh.keys[rng.gen_range(0..sh.keys.len())].into()
                } else {
                    ["k1", "l1", "h1", "s1", "z1", "nokey"][rng.gen_range(0..6)].into()
                }
            } else if rng.gen_bool(0.75) {
                VALUES[rng.gen_range(0..VALUES.len())].into()
            } else if rng.gen_bool(0.5) {
                sh.keys[rng.gen_range(0..sh.keys.len())].into()
            } else {
                OPTIONS[rng.gen_range(0..OPTIONS.len())].into()
            }
        })
        .collect()
}

#[test]
fn replies_equal_redis_servers() {
    let redis = Upstream::start();
    let s = Server::start(&[]);
    let shapes = shapes(redis.port);
    for seed in seeds("replies_equal_redis_servers") {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut ours = Conn::open(s.port);
        let mut theirs = Conn::open(redis.port);
        for c in [&mut ours, &mut theirs] {
            assert_eq!(c.call(&[b"FLUSHALL".to_vec()]), Reply::Status("OK".into()));
        }
        let mut history: Vec<String> = Vec::new();
        let mut in_multi = false;
        let mut queued: Vec<String> = Vec::new();
        let mut succeeded = 0;
        const ROUNDS: usize = 5000;
        for _ in 0..ROUNDS {
            let cmd = shaped_command(&mut rng, &shapes);
            let name = String::from_utf8_lossy(&cmd[0]).to_ascii_lowercase();
            history.push(show(&cmd));
            let (a, b) = (ours.call(&cmd), theirs.call(&cmd));
            // Inside MULTI the replies come with EXEC, one per queued
            // command: normalized there by the queued command's name.
            let (a, b) = if name == "exec" && !queued.is_empty() {
                (normalize_exec(&queued, a), normalize_exec(&queued, b))
            } else {
                (normalize(&name, a), normalize(&name, b))
            };
            if in_multi && b == Reply::Status("QUEUED".into()) {
                queued.push(name.clone());
            }
            if name == "multi" && b == Reply::Status("OK".into()) {
                in_multi = true;
                queued.clear();
            }
            if (name == "exec" || name == "discard")
                && !matches!(b, Reply::Error(ref e) if e.contains("without MULTI"))
            {
                in_multi = false;
                queued.clear();
            }
            if !matches!(b, Reply::Error(_)) {
                succeeded += 1;
            }
            if a != b {
                let tail = history.len().saturating_sub(30);
                panic!(
                    "seed {seed}: replies differ for `{}`\n  jcache: {a:?}\n  redis:  {b:?}\nlast commands:\n  {}",
                    show(&cmd),
                    history[tail..].join("\n  ")
                );
            }
        }
        // Random arguments mostly make errors (whose texts are compared too);
        // enough commands must also run for the comparison to mean much.
        eprintln!("seed {seed}: {succeeded} of {ROUNDS} commands succeeded at redis-server");
        assert!(
            succeeded > ROUNDS / 5,
            "seed {seed}: only {succeeded} succeeded"
        );
    }
}
