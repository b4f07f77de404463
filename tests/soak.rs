//! Soak with faults: a three-node cluster (and etcd) under mixed client
//! load while nodes are killed -9 and restarted, etcd is paused and, in the
//! second phase, the upstream redis-server is stopped and started. Each phase
//! lasts `SOAK_SECS` seconds (default 70: both phases with startup and the
//! end checks take about 3 minutes); `SOAK_SECS=1800 cargo nextest run
//! --test soak --no-capture` is the long soak.
//!
//! # What a client knows about its writes
//!
//! Each client thread owns its keys (so the expected final state is known
//! exactly) and sends every command to a node chosen at random among the
//! live ones (followers forward writes to the master). Every write value
//! carries the client's sequence number, so a final value names the write
//! that produced it.
//!
//! - **Acknowledged**: the write got a reply that is not an error.
//!   **Uncertain**: an error reply, a dropped connection or a timeout; the
//!   write may or may not have been applied, so the checks accept either
//!   outcome for it (it still counts as "issued").
//! - **Epoch recording**: on the same connection, `INFO replication` is read
//!   right before the write is sent and right after its reply arrived (the
//!   "after" of one write is the "before" of the next). A node reports
//!   `epoch:` = its own term while master, else the term of the master it
//!   follows. The write is *answered in epoch E* only if both reads show
//!   epoch E (non-zero) and the same master node id; otherwise its epoch is
//!   unknown. Epochs only grow at a node, so equal reads mean the answering
//!   node (or the master it forwarded to) was in term E all along.
//! - **Kept its term**: epoch E kept its term unless an injected fault hit
//!   it. E was *first seen* at `t_first` and *ended* at `t_end`, the first
//!   time any observer (the monitor polling every node's INFO every 100 ms,
//!   or a client) saw an epoch greater than E; the final term never ended.
//!   E did **not** keep its term if, with `W = FAULT_WINDOW` (lease TTL +
//!   7 s):
//!   - its master node was killed -9 within `[t_first - W, t_end]`, or
//!   - a long etcd pause (longer than the lease, which always ends the
//!     term) overlapped `[t_first - W, t_end]`, or
//!   - a short etcd pause (which should not end the term) overlapped
//!     `[t_end - W, t_end]`, i.e. the term did end right after it.
//!
//!   Neither of the first two depends on how fast the next election is; the
//!   `- W` only widens the exclusion (safe direction). A term that ended
//!   with no such fault (a spontaneous step-down under load) is *kept*: its
//!   writes must survive, and such ends are counted and printed.
//! - **WAIT-confirmed**: `WAIT 1 300` answered ≥ 1 with the same epoch E
//!   read before and after it on the same connection confirms every earlier
//!   write of this client answered in E (the master of E waited for its own
//!   offset, which is past them). A WAIT in another term says nothing about
//!   them.
//! - **Must be present** (phase 1): acknowledged and (answered in a kept
//!   term, or WAIT-confirmed). Phase 2: every acknowledged write, since the
//!   upstream is the only truth there and its writes do not depend on terms.
//!
//! # How presence is checked
//!
//! Strings, hash fields, set members and sorted-set members are registers
//! written (value or score = sequence number) or deleted by one client: with
//! `i` the latest must-be-present operation on a register, the final state
//! must come from an operation issued at or after `i` (a value naming a write
//! `>= i`; absent only if a delete `>= i` was issued; a set member present
//! only if an add `>= i` was issued). A counter (INCR only) must be at least
//! the largest reply of a must-be-present INCR. A list (RPUSH of unique
//! elements, LPOP/BLPOP by its owner) must hold every must-be-present pushed
//! element unless a pop returned it (or a pop with an uncertain outcome may
//! have taken it: counted "unverifiable"), must not hold an element a
//! must-be-present pop returned, and must be in push order. Anything never
//! issued is a phantom.
//!
//! # Faults and what each exercises
//!
//! - kill -9 of a node every 20 s (every other one the current master),
//!   restarted 3 s later on a new port: failover, partial and full resync,
//!   forwarded writes with unknown outcomes.
//! - etcd SIGSTOP, alternating 1 s (shorter than what the lease tolerates:
//!   keep-alives go every TTL/3 and the lease holds TTL - 5 %, so the
//!   master must keep its term and no write may be lost) and TTL + 1.5 s
//!   (longer than the lease: the master fences itself by its own clock, no
//!   node may take writes as master until etcd is back, then a new term).
//! - phase 2 only: the upstream redis-server stopped (SIGTERM; it has an AOF)
//!   for 3 s and started on the same port: degraded mode, reconnection,
//!   invalidation-link loss (the local tier is flushed).
//!
//! Both phases sample every jcache process's VmRSS and fail if one exceeded
//! `--maxmemory` + `RSS_OVERHEAD_MB`, and fail if a jcache process the test
//! did not kill exited.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cluster::{digest, info, Cluster};
use common::upstream::Upstream;
use common::{info_field, wait_for};
use redis::Value;

const LEASE_TTL: Duration = Duration::from_secs(3);
const FAULT_WINDOW: Duration = Duration::from_secs(3 + 7);
const FAULT_PERIOD: Duration = Duration::from_secs(20);
const CLIENTS: usize = 4;
const MAXMEMORY_MB: u64 = 16;
/// RSS allowed above `--maxmemory`: a debug build's code, runtime and heap
/// at rest (measured: 23 MB per idle node in a three-node cluster, printed as
/// the baseline), the replication backlog (`--cluster-backlog-size 8mb`,
/// frames plus slots) and the runtime's buffers (per-connection read and
/// reply buffers, gRPC flow-control windows). The soak's keyspace is well
/// under 1 MB; the peak seen in 70 s phases was 26 MB, printed next to the
/// limit. A release build needs less; the limit is for the debug build CI
/// runs.
const RSS_OVERHEAD_MB: u64 = 48;

fn soak_secs() -> u64 {
    std::env::var("SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(70)
}

// ---------------------------------------------------------------- shared state

/// Which jcache processes are up: per node, (pid, port).
type Live = Arc<Mutex<Vec<Option<(u32, u16)>>>>;

#[derive(Clone, Copy, Debug)]
enum Fault {
    Kill {
        node: usize,
        at: Instant,
    },
    EtcdPause {
        from: Instant,
        to: Instant,
        long: bool,
    },
}

/// What the monitor and the clients saw of the terms.
#[derive(Default)]
struct Terms {
    /// epoch -> (master node id, first seen)
    seen: Mutex<BTreeMap<u64, (String, Instant)>>,
}

impl Terms {
    fn observe(&self, epoch: u64, master: &str, at: Instant) {
        if epoch == 0 || master.is_empty() {
            return;
        }
        let mut s = self.seen.lock().unwrap();
        let e = s.entry(epoch).or_insert((master.to_string(), at));
        if at < e.1 {
            e.1 = at;
        }
    }

    /// Whether `epoch` kept its term (see the module comment), and whether it
    /// ended at all.
    fn kept(&self, epoch: u64, node_ids: &[String], faults: &[Fault]) -> bool {
        let s = self.seen.lock().unwrap();
        let Some((master, t_first)) = s.get(&epoch) else {
            return false;
        };
        let Some(t_end) = s.range(epoch + 1..).map(|(_, (_, t))| *t).min() else {
            return true; // the final term
        };
        let life_from = t_first.checked_sub(FAULT_WINDOW).unwrap_or(*t_first);
        let end_from = t_end.checked_sub(FAULT_WINDOW).unwrap_or(t_end);
        !faults.iter().any(|f| match *f {
            Fault::Kill { node, at } => node_ids[node] == *master && at >= life_from && at <= t_end,
            Fault::EtcdPause { from, to, long } => {
                from <= t_end && to >= if long { life_from } else { end_from }
            }
        })
    }
}

/// One INFO replication reading: (epoch, master node id).
fn observation(info: &str) -> Option<(u64, String)> {
    let epoch: u64 = info_field(info, "epoch")?.parse().ok()?;
    let master = if info_field(info, "role").as_deref() == Some("master") {
        info_field(info, "node_id")?
    } else {
        info_field(info, "master_node_id")?
    };
    Some((epoch, master))
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Polls every live node's INFO (terms) and RSS until `stop`.
fn monitor(live: Live, terms: Arc<Terms>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak_kb = 0u64;
        let deadline = Instant::now() + Duration::from_secs(3600 * 24);
        while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
            let nodes: Vec<(u32, u16)> = live.lock().unwrap().iter().flatten().copied().collect();
            for (pid, port) in nodes {
                if let Some(kb) = rss_kb(pid) {
                    peak_kb = peak_kb.max(kb);
                }
                let at = Instant::now();
                if let Some((e, m)) = observation(&info(port)) {
                    terms.observe(e, &m, at);
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        peak_kb
    })
}

// ---------------------------------------------------------------- client model

/// A register: (key, field); field is empty for strings.
type Reg = (String, String);

#[derive(Clone, Debug)]
enum Effect {
    /// A write (`true`) or delete of a register, by sequence number.
    Reg {
        reg: Reg,
        seq: u64,
        write: bool,
    },
    /// A set member added (`true`) or removed.
    Member {
        reg: Reg,
        seq: u64,
        add: bool,
    },
    Incr {
        key: String,
        reply: Option<i64>,
    },
    Push {
        key: String,
        elem: u64,
    },
    /// `reply`: Some(popped element or None for nil) once answered.
    Pop {
        key: String,
        reply: Option<Option<u64>>,
    },
}

#[derive(Debug)]
struct OpRec {
    effects: Vec<Effect>,
    acked: bool,
    epoch: Option<u64>,
    wait_confirmed: bool,
}

#[derive(Default)]
struct ClientOut {
    ops: Vec<OpRec>,
    sent: u64,
    waits_confirming: u64,
    errors: BTreeMap<String, u64>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STRINGS: u64 = 8;
const COUNTERS: u64 = 4;
const HASHES: u64 = 4;
const FIELDS: u64 = 4;
const SETS: u64 = 4;
const MEMBERS: u64 = 6;
const ZSETS: u64 = 4;
const LISTS: u64 = 4;

/// Every key client `t` owns, with its kind letter.
fn keys_of(t: usize) -> Vec<(char, String)> {
    let mut v = Vec::new();
    for (kind, n) in [
        ('s', STRINGS),
        ('n', COUNTERS),
        ('h', HASHES),
        ('x', SETS),
        ('z', ZSETS),
        ('l', LISTS),
    ] {
        for k in 0..n {
            v.push((kind, format!("{kind}{t}:{k}")));
        }
    }
    v
}

/// The next operation of client `t`: its commands (several = MULTI/EXEC) and effects.
fn next_op(t: usize, seq: u64, rng: &mut Rng) -> (Vec<Vec<String>>, Vec<Effect>) {
    let s = seq.to_string();
    let skey = |r: &mut Rng| format!("s{t}:{}", r.below(STRINGS));
    let nkey = |r: &mut Rng| format!("n{t}:{}", r.below(COUNTERS));
    let hreg = |r: &mut Rng| {
        (
            format!("h{t}:{}", r.below(HASHES)),
            format!("f{}", r.below(FIELDS)),
        )
    };
    let xreg = |r: &mut Rng| {
        (
            format!("x{t}:{}", r.below(SETS)),
            format!("m{}", r.below(MEMBERS)),
        )
    };
    let zreg = |r: &mut Rng| {
        (
            format!("z{t}:{}", r.below(ZSETS)),
            format!("m{}", r.below(MEMBERS)),
        )
    };
    let lkey = |r: &mut Rng| format!("l{t}:{}", r.below(LISTS));
    let c = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    match rng.below(20) {
        0..=2 => {
            let k = skey(rng);
            let e = Effect::Reg {
                reg: (k.clone(), String::new()),
                seq,
                write: true,
            };
            (vec![c(&["SET", &k, &s])], vec![e])
        }
        3 => {
            let k = skey(rng);
            let e = Effect::Reg {
                reg: (k.clone(), String::new()),
                seq,
                write: false,
            };
            (vec![c(&["DEL", &k])], vec![e])
        }
        4 | 5 => {
            let k = nkey(rng);
            (
                vec![c(&["INCR", &k])],
                vec![Effect::Incr {
                    key: k,
                    reply: None,
                }],
            )
        }
        6 | 7 => {
            let (k, f) = hreg(rng);
            let cmd = c(&["HSET", &k, &f, &s]);
            (
                vec![cmd],
                vec![Effect::Reg {
                    reg: (k, f),
                    seq,
                    write: true,
                }],
            )
        }
        8 => {
            let (k, f) = hreg(rng);
            let cmd = c(&["HDEL", &k, &f]);
            (
                vec![cmd],
                vec![Effect::Reg {
                    reg: (k, f),
                    seq,
                    write: false,
                }],
            )
        }
        9 | 10 => {
            let (k, m) = xreg(rng);
            let cmd = c(&["SADD", &k, &m]);
            (
                vec![cmd],
                vec![Effect::Member {
                    reg: (k, m),
                    seq,
                    add: true,
                }],
            )
        }
        11 => {
            let (k, m) = xreg(rng);
            let cmd = c(&["SREM", &k, &m]);
            (
                vec![cmd],
                vec![Effect::Member {
                    reg: (k, m),
                    seq,
                    add: false,
                }],
            )
        }
        12 | 13 => {
            let (k, m) = zreg(rng);
            let cmd = c(&["ZADD", &k, &s, &m]);
            (
                vec![cmd],
                vec![Effect::Reg {
                    reg: (k, m),
                    seq,
                    write: true,
                }],
            )
        }
        14 => {
            let (k, m) = zreg(rng);
            let cmd = c(&["ZREM", &k, &m]);
            (
                vec![cmd],
                vec![Effect::Reg {
                    reg: (k, m),
                    seq,
                    write: false,
                }],
            )
        }
        15 | 16 => {
            let k = lkey(rng);
            let cmd = c(&["RPUSH", &k, &s]);
            (vec![cmd], vec![Effect::Push { key: k, elem: seq }])
        }
        17 => {
            let k = lkey(rng);
            let cmd = c(&["LPOP", &k]);
            (
                vec![cmd],
                vec![Effect::Pop {
                    key: k,
                    reply: None,
                }],
            )
        }
        18 => {
            let k = lkey(rng);
            let cmd = c(&["BLPOP", &k, "0.2"]);
            (
                vec![cmd],
                vec![Effect::Pop {
                    key: k,
                    reply: None,
                }],
            )
        }
        _ => {
            let sk = skey(rng);
            let nk = nkey(rng);
            let (hk, hf) = hreg(rng);
            let (zk, zm) = zreg(rng);
            let lk = lkey(rng);
            let cmds = vec![
                c(&["SET", &sk, &s]),
                c(&["INCR", &nk]),
                c(&["HSET", &hk, &hf, &s]),
                c(&["ZADD", &zk, &s, &zm]),
                c(&["RPUSH", &lk, &s]),
            ];
            let effects = vec![
                Effect::Reg {
                    reg: (sk, String::new()),
                    seq,
                    write: true,
                },
                Effect::Incr {
                    key: nk,
                    reply: None,
                },
                Effect::Reg {
                    reg: (hk, hf),
                    seq,
                    write: true,
                },
                Effect::Reg {
                    reg: (zk, zm),
                    seq,
                    write: true,
                },
                Effect::Push { key: lk, elem: seq },
            ];
            (cmds, effects)
        }
    }
}

fn to_cmd(args: &[String]) -> redis::Cmd {
    let mut c = redis::cmd(&args[0]);
    for a in &args[1..] {
        c.arg(a);
    }
    c
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Double(d) => Some(d.to_string()),
        Value::Okay => Some("OK".into()),
        _ => None,
    }
}

/// Fills the replies into the effects; false if a reply has an unexpected shape.
fn record_replies(effects: &mut [Effect], replies: &[Value]) -> bool {
    if effects.len() != replies.len() {
        return false;
    }
    for (e, r) in effects.iter_mut().zip(replies) {
        match e {
            Effect::Incr { reply, .. } => match r {
                Value::Int(i) => *reply = Some(*i),
                _ => return false,
            },
            Effect::Pop { reply, .. } => {
                *reply = Some(match r {
                    Value::Nil => None,
                    Value::Array(a) if a.len() == 2 => {
                        match text(&a[1]).and_then(|s| s.parse().ok()) {
                            Some(v) => Some(v),
                            None => return false,
                        }
                    }
                    Value::Array(a) if a.is_empty() => None,
                    other => match text(other).and_then(|s| s.parse().ok()) {
                        Some(v) => Some(v),
                        None => return false,
                    },
                })
            }
            _ => {
                if matches!(r, Value::ServerError(_)) {
                    return false;
                }
            }
        }
    }
    true
}

struct Conn {
    con: redis::Connection,
    /// The (epoch, master) read right before the next command, if known.
    before: Option<(u64, String)>,
}

fn connect(port: u16) -> Option<redis::Connection> {
    let c = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let con = c.get_connection_with_timeout(Duration::from_secs(1)).ok()?;
    con.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    con.set_write_timeout(Some(Duration::from_secs(10))).ok()?;
    Some(con)
}

fn read_epoch(c: &mut Conn, terms: &Terms) -> Result<Option<(u64, String)>, ()> {
    match redis::cmd("INFO")
        .arg("replication")
        .query::<String>(&mut c.con)
    {
        Ok(s) => {
            let o = observation(&s);
            if let Some((e, m)) = &o {
                terms.observe(*e, m, Instant::now());
            }
            Ok(o)
        }
        Err(_) => Err(()),
    }
}

/// One client: runs until `stop` or `until`; returns everything it sent.
fn client(
    t: usize,
    live: Live,
    terms: Arc<Terms>,
    stop: Arc<AtomicBool>,
    until: Instant,
    sent_ctr: Arc<AtomicU64>,
) -> ClientOut {
    let mut out = ClientOut::default();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((t as u64 + 1) * 0x1234_5678_9abc));
    let mut conn: Option<Conn> = None;
    let mut on_node = 0u32;
    // Acknowledged writes answered in the current epoch, not yet confirmed by WAIT.
    let mut pending: Vec<usize> = Vec::new();
    let mut since_wait = 0u32;
    let mut seq = 0u64;
    let note = |out: &mut ClientOut, e: &redis::RedisError| {
        let k = format!("{}", e).chars().take(60).collect::<String>();
        *out.errors.entry(k).or_insert(0) += 1;
    };
    while !stop.load(Ordering::Relaxed) && Instant::now() < until && seq < 5_000_000 {
        // A connection to a random live node, changed every 16 commands.
        if conn.is_none() || on_node >= 16 {
            let ports: Vec<u16> = live.lock().unwrap().iter().flatten().map(|p| p.1).collect();
            if ports.is_empty() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            let port = ports[rng.below(ports.len() as u64) as usize];
            on_node = 0;
            conn = connect(port).map(|con| Conn { con, before: None });
            if conn.is_none() {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        }
        let c = conn.as_mut().unwrap();
        on_node += 1;
        if c.before.is_none() {
            match read_epoch(c, &terms) {
                Ok(o) => c.before = o,
                Err(_) => {
                    conn = None;
                    continue;
                }
            }
        }
        seq += 1;
        let (cmds, mut effects) = next_op(t, seq, &mut rng);
        out.sent += 1;
        sent_ctr.fetch_add(1, Ordering::Relaxed);
        let result: Result<Vec<Value>, redis::RedisError> = if cmds.len() == 1 {
            to_cmd(&cmds[0]).query::<Value>(&mut c.con).map(|v| vec![v])
        } else {
            let mut p = redis::pipe();
            p.atomic();
            for a in &cmds {
                p.add_command(to_cmd(a));
            }
            p.query::<Vec<Value>>(&mut c.con)
        };
        let idx = out.ops.len();
        match result {
            Ok(replies) if record_replies(&mut effects, &replies) => {
                let after = read_epoch(c, &terms);
                let epoch = match (&c.before, &after) {
                    (Some((e1, m1)), Ok(Some((e2, m2)))) if e1 == e2 && m1 == m2 && *e1 > 0 => {
                        Some(*e1)
                    }
                    _ => None,
                };
                out.ops.push(OpRec {
                    effects,
                    acked: true,
                    epoch,
                    wait_confirmed: false,
                });
                match after {
                    Ok(o) => c.before = o,
                    Err(_) => {
                        conn = None;
                        continue;
                    }
                }
                if let Some(e) = epoch {
                    pending.retain(|&i| out.ops[i].epoch == Some(e));
                    pending.push(idx);
                    since_wait += 1;
                }
            }
            Ok(replies) => {
                *out.errors
                    .entry(
                        format!("unexpected reply {replies:?}")
                            .chars()
                            .take(80)
                            .collect(),
                    )
                    .or_insert(0) += 1;
                out.ops.push(OpRec {
                    effects,
                    acked: false,
                    epoch: None,
                    wait_confirmed: false,
                });
                c.before = None;
            }
            Err(e) => {
                note(&mut out, &e);
                out.ops.push(OpRec {
                    effects,
                    acked: false,
                    epoch: None,
                    wait_confirmed: false,
                });
                if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError)
                    || e.code().is_some()
                {
                    c.before = None;
                } else {
                    conn = None;
                }
                continue;
            }
        }
        // WAIT 1 every 8 writes answered in a known epoch.
        if since_wait >= 8 {
            since_wait = 0;
            let c = conn.as_mut().unwrap();
            let r = redis::cmd("WAIT").arg(1).arg(300).query::<i64>(&mut c.con);
            let after = read_epoch(c, &terms);
            match (&r, &c.before, &after) {
                (Ok(n), Some((e1, m1)), Ok(Some((e2, m2)))) if *n >= 1 && e1 == e2 && m1 == m2 => {
                    out.waits_confirming += 1;
                    for &i in &pending {
                        if out.ops[i].epoch == Some(*e1) {
                            out.ops[i].wait_confirmed = true;
                        }
                    }
                    pending.clear();
                }
                _ => {}
            }
            match after {
                Ok(o) => c.before = o,
                Err(_) => conn = None,
            }
        }
    }
    out
}

// ---------------------------------------------------------------- final state

/// The final state of one client's keys, as read from one server.
#[derive(Default, Debug, PartialEq)]
struct Final {
    /// register -> value (seq) for strings, hash fields, zset members (score).
    regs: HashMap<Reg, u64>,
    members: BTreeSet<Reg>,
    counters: HashMap<String, i64>,
    lists: HashMap<String, Vec<u64>>,
    /// Values that are not sequence numbers (never written by a client).
    junk: Vec<String>,
}

/// A normalized dump of one key (for comparing nodes with the upstream).
fn dump(con: &mut redis::Connection, kind: char, key: &str) -> redis::RedisResult<Vec<String>> {
    let flat = |v: Value| -> Vec<String> {
        match v {
            Value::Array(a) | Value::Set(a) => a.iter().filter_map(text).collect(),
            Value::Map(m) => m
                .iter()
                .flat_map(|(k, v)| [text(k), text(v)])
                .flatten()
                .collect(),
            Value::Nil => vec![],
            other => text(&other).into_iter().collect(),
        }
    };
    Ok(match kind {
        's' | 'n' => flat(redis::cmd("GET").arg(key).query(con)?),
        'h' => {
            let v = flat(redis::cmd("HGETALL").arg(key).query(con)?);
            let mut pairs: Vec<String> = v.chunks(2).map(|p| p.join("=")).collect();
            pairs.sort();
            pairs
        }
        'x' => {
            let mut v = flat(redis::cmd("SMEMBERS").arg(key).query(con)?);
            v.sort();
            v
        }
        'z' => {
            let v = flat(
                redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(con)?,
            );
            v.chunks(2).map(|p| p.join("=")).collect()
        }
        _ => flat(redis::cmd("LRANGE").arg(key).arg(0).arg(-1).query(con)?),
    })
}

fn read_final(con: &mut redis::Connection, t: usize) -> Final {
    let mut f = Final::default();
    for (kind, key) in keys_of(t) {
        let d = dump(con, kind, &key).unwrap_or_else(|e| panic!("reading {key}: {e}"));
        let num = |s: &str, f: &mut Final| -> Option<u64> {
            let n = s
                .parse::<f64>()
                .ok()
                .filter(|n| n.fract() == 0.0 && *n >= 0.0);
            if n.is_none() {
                f.junk.push(format!("{key}: {s}"));
            }
            n.map(|n| n as u64)
        };
        match kind {
            's' => {
                if let Some(v) = d.first() {
                    if let Some(n) = num(v, &mut f) {
                        f.regs.insert((key.clone(), String::new()), n);
                    }
                }
            }
            'n' => {
                let n = d
                    .first()
                    .map(|v| v.parse::<i64>().unwrap_or(-1))
                    .unwrap_or(0);
                f.counters.insert(key.clone(), n);
            }
            'h' | 'z' => {
                for p in d {
                    let (field, v) = p.split_once('=').unwrap();
                    if let Some(n) = num(v, &mut f) {
                        f.regs.insert((key.clone(), field.to_string()), n);
                    }
                }
            }
            'x' => {
                for m in d {
                    f.members.insert((key.clone(), m));
                }
            }
            _ => {
                let mut l = Vec::new();
                for v in d {
                    if let Some(n) = num(&v, &mut f) {
                        l.push(n);
                    }
                }
                f.lists.insert(key.clone(), l);
            }
        }
    }
    f
}

#[derive(Default, Debug)]
struct Verdict {
    keys_compared: u64,
    checked: u64,
    lost: Vec<String>,
    unverifiable: u64,
    phantoms: Vec<String>,
}

/// Checks one client's operations against the final state (module comment).
fn verify(t: usize, ops: &[OpRec], fin: &Final, must: &dyn Fn(&OpRec) -> bool) -> Verdict {
    let mut v = Verdict {
        keys_compared: keys_of(t).len() as u64,
        ..Verdict::default()
    };
    v.phantoms.extend(fin.junk.iter().cloned());
    // Registers and members: every issued op, and the latest must-be-present one.
    let mut issued: HashMap<Reg, Vec<(u64, bool)>> = HashMap::new();
    let mut latest: HashMap<Reg, u64> = HashMap::new();
    let mut incr_issued: HashMap<String, i64> = HashMap::new();
    let mut incr_must: HashMap<String, i64> = HashMap::new();
    let mut pushes: HashMap<String, Vec<(u64, bool)>> = HashMap::new();
    let mut popped: HashMap<String, BTreeSet<u64>> = HashMap::new();
    let mut pop_must: Vec<(String, u64)> = Vec::new();
    let mut pop_uncertain: BTreeSet<String> = BTreeSet::new();
    for op in ops {
        let m = op.acked && must(op);
        if m {
            v.checked += 1;
        }
        for e in &op.effects {
            match e {
                Effect::Reg { reg, seq, write }
                | Effect::Member {
                    reg,
                    seq,
                    add: write,
                } => {
                    issued.entry(reg.clone()).or_default().push((*seq, *write));
                    if m {
                        latest.insert(reg.clone(), *seq);
                    }
                }
                Effect::Incr { key, reply } => {
                    *incr_issued.entry(key.clone()).or_default() += 1;
                    if let (true, Some(r)) = (m, reply) {
                        let x = incr_must.entry(key.clone()).or_default();
                        *x = (*x).max(*r);
                    }
                }
                Effect::Push { key, elem } => {
                    pushes.entry(key.clone()).or_default().push((*elem, m))
                }
                Effect::Pop { key, reply } => match reply {
                    Some(Some(x)) if op.acked => {
                        popped.entry(key.clone()).or_default().insert(*x);
                        if m {
                            pop_must.push((key.clone(), *x));
                        }
                    }
                    Some(_) if op.acked => {}
                    _ => {
                        pop_uncertain.insert(key.clone());
                    }
                },
            }
        }
    }
    let is_member_reg = |reg: &Reg| reg.0.starts_with('x');
    let all_regs: BTreeSet<&Reg> = issued
        .keys()
        .chain(fin.regs.keys())
        .chain(fin.members.iter())
        .collect();
    for reg in all_regs {
        let ops_on = issued.get(reg).map(|v| v.as_slice()).unwrap_or(&[]);
        let i = latest.get(reg).copied();
        if is_member_reg(reg) {
            let present = fin.members.contains(reg);
            if present && !ops_on.iter().any(|(_, add)| *add) {
                v.phantoms.push(format!("{reg:?} present, never added"));
            }
            if let Some(i) = i {
                let ok = ops_on.iter().any(|(s, add)| *s >= i && *add == present);
                if !ok {
                    v.lost.push(format!(
                        "{reg:?}: present={present}, latest must-be-present op #{i}"
                    ));
                }
            }
        } else {
            let val = fin.regs.get(reg).copied();
            if let Some(j) = val {
                if !ops_on.iter().any(|(s, w)| *s == j && *w) {
                    v.phantoms.push(format!("{reg:?} = {j}, never written"));
                }
            }
            if let Some(i) = i {
                let ok = match val {
                    Some(j) => j >= i,
                    None => ops_on.iter().any(|(s, w)| *s >= i && !*w),
                };
                if !ok {
                    v.lost.push(format!(
                        "{reg:?}: final {val:?}, latest must-be-present op #{i}"
                    ));
                }
            }
        }
    }
    for (key, fin_n) in &fin.counters {
        let issued_n = incr_issued.get(key).copied().unwrap_or(0);
        if *fin_n > issued_n || *fin_n < 0 {
            v.phantoms
                .push(format!("{key} = {fin_n}, {issued_n} INCRs issued"));
        }
        if let Some(m) = incr_must.get(key) {
            if fin_n < m {
                v.lost
                    .push(format!("{key}: final {fin_n} < INCR reply {m}"));
            }
        }
    }
    for (key, list) in &fin.lists {
        let empty = Vec::new();
        let pushed = pushes.get(key).unwrap_or(&empty);
        let pushed_set: BTreeSet<u64> = pushed.iter().map(|p| p.0).collect();
        if list.windows(2).any(|w| w[0] >= w[1]) {
            v.phantoms
                .push(format!("{key} out of push order: {list:?}"));
        }
        let in_list: BTreeSet<u64> = list.iter().copied().collect();
        for x in &in_list {
            if !pushed_set.contains(x) {
                v.phantoms.push(format!("{key} holds {x}, never pushed"));
            }
        }
        let pops = popped.get(key);
        for (e, m) in pushed {
            if !*m || in_list.contains(e) || pops.is_some_and(|p| p.contains(e)) {
                continue;
            }
            if pop_uncertain.contains(key) {
                v.unverifiable += 1;
            } else {
                v.lost.push(format!(
                    "{key}: pushed {e} (must be present) is gone, never popped"
                ));
            }
        }
    }
    for (key, x) in pop_must {
        if fin.lists.get(&key).is_some_and(|l| l.contains(&x)) {
            v.lost.push(format!(
                "{key}: {x} popped (must be present) but back in the list"
            ));
        }
    }
    v
}

// ---------------------------------------------------------------- the phases

/// Resumes etcd if the test panics while it is paused (Etcd's own Drop kills it).
struct EtcdPaused(i32);

impl Drop for EtcdPaused {
    fn drop(&mut self) {
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[derive(Default)]
struct FaultCounts {
    kills: u64,
    kills_of_master: u64,
    etcd_short: u64,
    etcd_long: u64,
    upstream_restarts: u64,
}

fn live_of(c: &Cluster) -> Vec<Option<(u32, u16)>> {
    c.nodes
        .iter()
        .map(|n| n.server.as_ref().map(|s| (s.pid(), s.port)))
        .collect()
}

fn current_master(c: &Cluster) -> Option<usize> {
    c.nodes.iter().position(|n| {
        n.server.is_some() && info_field(&info(n.port), "role").as_deref() == Some("master")
    })
}

/// Fails if a node the test did not kill has exited.
fn check_no_crash(c: &mut Cluster) {
    for n in c.nodes.iter_mut() {
        if let Some(s) = n.server.as_mut() {
            if let Some(st) = s.exited() {
                panic!("jcache node {} exited by itself: {st}", n.id);
            }
        }
    }
}

struct PhaseRun {
    baseline_rss_kb: u64,
    outs: Vec<ClientOut>,
    faults: Vec<Fault>,
    counts: FaultCounts,
    peak_rss_kb: u64,
    terms: Arc<Terms>,
    secs: f64,
}

/// Runs the clients and the fault schedule for `secs` seconds.
fn run_phase(c: &mut Cluster, mut upstream: Option<&mut Upstream>, secs: u64) -> PhaseRun {
    let live: Live = Arc::new(Mutex::new(live_of(c)));
    let baseline_rss_kb = live_of(c)
        .iter()
        .flatten()
        .filter_map(|(pid, _)| rss_kb(*pid))
        .max()
        .unwrap_or(0);
    let terms = Arc::new(Terms::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let until = start + Duration::from_secs(secs);
    let mon = monitor(live.clone(), terms.clone(), stop.clone());
    let clients: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (live, terms, stop, sent) =
                (live.clone(), terms.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                client(t, live, terms, stop, until + Duration::from_secs(5), sent)
            })
        })
        .collect();
    let mut faults = Vec::new();
    let mut counts = FaultCounts::default();
    let etcd_pid = c.etcd.pid() as i32;
    let mut cycle = 0u64;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    eprintln!("fault schedule seed {seed}");
    let mut rng = Rng(seed);
    // One cycle per FAULT_PERIOD: kill at +2 s (restart 3 s later), the
    // upstream down at +8 s for 3 s (phase 2), etcd paused at +14 s.
    let sleep_until = |c: &mut Cluster, at: Instant| {
        while Instant::now() < at.min(until) {
            check_no_crash(c);
            std::thread::sleep(Duration::from_millis(100));
        }
        Instant::now() < until
    };
    loop {
        let base = start + FAULT_PERIOD * cycle as u32;
        if !sleep_until(c, base + Duration::from_secs(2)) {
            break;
        }
        let victim = if cycle.is_multiple_of(2) {
            current_master(c).unwrap_or(0)
        } else {
            rng.below(c.nodes.len() as u64) as usize
        };
        if current_master(c) == Some(victim) {
            counts.kills_of_master += 1;
        }
        live.lock().unwrap()[victim] = None;
        faults.push(Fault::Kill {
            node: victim,
            at: Instant::now(),
        });
        c.kill9(victim);
        counts.kills += 1;
        let _ = sleep_until(c, base + Duration::from_secs(5));
        c.restart(victim);
        *live.lock().unwrap() = live_of(c);
        if let Some(up) = upstream.as_deref_mut() {
            if !sleep_until(c, base + Duration::from_secs(8)) {
                break;
            }
            up.stop();
            counts.upstream_restarts += 1;
            let _ = sleep_until(c, base + Duration::from_secs(11));
            up.spawn();
        }
        if !sleep_until(c, base + Duration::from_secs(14)) {
            break;
        }
        let long = cycle % 2 == 1;
        let pause = if long {
            LEASE_TTL + Duration::from_millis(1500)
        } else {
            Duration::from_secs(1)
        };
        let from = Instant::now();
        unsafe { libc::kill(etcd_pid, libc::SIGSTOP) };
        let guard = EtcdPaused(etcd_pid);
        std::thread::sleep(pause);
        drop(guard);
        faults.push(Fault::EtcdPause {
            from,
            to: Instant::now(),
            long,
        });
        if long {
            counts.etcd_long += 1;
        } else {
            counts.etcd_short += 1;
        }
        cycle += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let outs: Vec<ClientOut> = clients.into_iter().map(|h| h.join().unwrap()).collect();
    check_no_crash(c);
    // Everything is up again; the final term is seen by the monitor.
    let m = c.wait_stable(Duration::from_secs(60));
    let at = Instant::now();
    if let Some((e, id)) = observation(&info(c.nodes[m].port)) {
        terms.observe(e, &id, at);
    }
    let peak_rss_kb = mon.join().unwrap();
    PhaseRun {
        baseline_rss_kb,
        outs,
        faults,
        counts,
        peak_rss_kb,
        terms,
        secs: start.elapsed().as_secs_f64(),
    }
}

fn node_args(extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = [
        "--cluster-lease-ttl",
        "3s",
        "--cluster-backlog-size",
        "8mb",
        "--maxmemory",
        &format!("{MAXMEMORY_MB}mb"),
        "--enable-debug-command",
        "local",
        "--cluster-secret",
        "soak-secret",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn report(phase: &str, r: &PhaseRun, v: &[Verdict], must_label: &str) {
    let ops: Vec<&OpRec> = r.outs.iter().flat_map(|o| &o.ops).collect();
    let acked = ops.iter().filter(|o| o.acked).count();
    let with_epoch = ops.iter().filter(|o| o.acked && o.epoch.is_some()).count();
    let wait_conf = ops.iter().filter(|o| o.acked && o.wait_confirmed).count();
    let uncertain = ops.len() - acked;
    let sent: u64 = r.outs.iter().map(|o| o.sent).sum();
    let checked: u64 = v.iter().map(|x| x.checked).sum();
    let keys: u64 = v.iter().map(|x| x.keys_compared).sum();
    let lost: usize = v.iter().map(|x| x.lost.len()).sum();
    let unverifiable: u64 = v.iter().map(|x| x.unverifiable).sum();
    let terms = r.terms.seen.lock().unwrap().len();
    let c = &r.counts;
    let rss_limit = (MAXMEMORY_MB + RSS_OVERHEAD_MB) * 1024;
    eprintln!("==== soak {phase}: {:.0} s, {CLIENTS} clients ====", r.secs);
    eprintln!(
        "ops sent {sent} ({:.0}/s), acknowledged {acked} (epoch known {with_epoch}, WAIT-confirmed {wait_conf}), uncertain {uncertain}",
        sent as f64 / r.secs
    );
    eprintln!("writes that must be present ({must_label}): {checked}");
    eprintln!(
        "faults: kill -9 {} (of the master {}), etcd pauses short {} long {}, upstream restarts {}",
        c.kills, c.kills_of_master, c.etcd_short, c.etcd_long, c.upstream_restarts
    );
    eprintln!("terms seen {terms}; keys compared {keys}; unverifiable (uncertain pop) {unverifiable}; writes lost {lost}");
    eprintln!(
        "RSS per node: idle baseline {} kB, peak {} kB (limit maxmemory {MAXMEMORY_MB} MB + overhead {RSS_OVERHEAD_MB} MB = {rss_limit} kB)",
        r.baseline_rss_kb, r.peak_rss_kb
    );
    let mut errors: BTreeMap<&String, u64> = BTreeMap::new();
    for o in &r.outs {
        for (k, n) in &o.errors {
            *errors.entry(k).or_default() += n;
        }
    }
    for (k, n) in errors {
        eprintln!("  error x{n}: {k}");
    }
}

fn assert_clean(phase: &str, r: &PhaseRun, v: &[Verdict]) {
    let lost: Vec<&String> = v.iter().flat_map(|x| &x.lost).collect();
    let phantoms: Vec<&String> = v.iter().flat_map(|x| &x.phantoms).collect();
    if !lost.is_empty() || !phantoms.is_empty() {
        let seen = r.terms.seen.lock().unwrap();
        eprintln!(
            "terms: {:?}",
            seen.iter()
                .map(|(e, (m, t))| (e, m, t.elapsed()))
                .collect::<Vec<_>>()
        );
        eprintln!(
            "faults (age): {:?}",
            r.faults
                .iter()
                .map(|f| match f {
                    Fault::Kill { node, at } => format!("kill n{node} {:?} ago", at.elapsed()),
                    Fault::EtcdPause { from, to, .. } =>
                        format!("etcd paused {:?}..{:?} ago", from.elapsed(), to.elapsed()),
                })
                .collect::<Vec<_>>()
        );
    }
    assert!(
        phantoms.is_empty(),
        "{phase}: values never written: {phantoms:#?}"
    );
    assert!(
        lost.is_empty(),
        "{phase}: {} writes lost: {lost:#?}",
        lost.len()
    );
    let limit = (MAXMEMORY_MB + RSS_OVERHEAD_MB) * 1024;
    assert!(
        r.peak_rss_kb <= limit,
        "{phase}: RSS {} kB > {limit} kB",
        r.peak_rss_kb
    );
    let acked = r
        .outs
        .iter()
        .flat_map(|o| &o.ops)
        .filter(|o| o.acked)
        .count();
    assert!(acked > 100, "{phase}: only {acked} writes acknowledged");
}

#[test]
fn soak_with_faults() {
    let secs = soak_secs();
    // ---- phase 1: memory tier only.
    {
        let args = node_args(&[]);
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let mut c = Cluster::start_with(3, &a);
        let node_ids: Vec<String> = c.nodes.iter().map(|n| n.id.clone()).collect();
        let r = run_phase(&mut c, None, secs);
        // Every node's keyspace converges to the master's.
        let m = c.wait_stable(Duration::from_secs(60));
        let mut last = Vec::new();
        let converged = wait_for(Duration::from_secs(60), || {
            last = c.live().map(|n| digest(n.port)).collect();
            let md = digest(c.nodes[m].port);
            !md.is_empty() && last.iter().all(|d| *d == md)
        });
        assert!(
            converged,
            "phase 1: digests never matched the master's: {last:?}"
        );
        let mut mc = common::cluster::con(c.nodes[m].port);
        let faults = r.faults.clone();
        let terms = r.terms.clone();
        let must = |op: &OpRec| {
            op.wait_confirmed || op.epoch.is_some_and(|e| terms.kept(e, &node_ids, &faults))
        };
        let verdicts: Vec<Verdict> = (0..CLIENTS)
            .map(|t| verify(t, &r.outs[t].ops, &read_final(&mut mc, t), &must))
            .collect();
        let seen: Vec<u64> = r.terms.seen.lock().unwrap().keys().copied().collect();
        let kept: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|e| r.terms.kept(*e, &node_ids, &r.faults))
            .collect();
        report(
            "phase 1 (cluster, memory tier)",
            &r,
            &verdicts,
            "answered in a kept term or WAIT-confirmed",
        );
        // A kept term other than the last one ended with no fault near it.
        let spontaneous = kept.iter().filter(|e| Some(*e) != seen.last()).count();
        eprintln!(
            "terms {seen:?}, kept {kept:?}, ended without a fault {spontaneous}; digest {}",
            last[0]
        );
        let wwnm: Vec<String> = c
            .live()
            .map(|n| info_field(&info(n.port), "writes_while_not_master").unwrap_or_default())
            .collect();
        eprintln!("writes_while_not_master per node: {wwnm:?}");
        assert_clean("phase 1", &r, &verdicts);
        assert!(
            wwnm.iter().all(|w| w == "0"),
            "a node committed writes while not master: {wwnm:?}"
        );
    }
    // ---- phase 2: the same cluster in front of an upstream redis-server.
    {
        let mut up = Upstream::start_aof("jcache-soak-redis");
        let url = format!("redis://127.0.0.1:{}", up.port);
        let args = node_args(&["--tier", "memory", "--tier", &url, "--local-ttl-max", "2s"]);
        let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        let mut c = Cluster::start_with(3, &a);
        let r = run_phase(&mut c, Some(&mut up), secs);
        let mut uc = up.client_with_timeouts();
        let must = |op: &OpRec| op.acked;
        let verdicts: Vec<Verdict> = (0..CLIENTS)
            .map(|t| verify(t, &r.outs[t].ops, &read_final(&mut uc, t), &must))
            .collect();
        // Every node serves the upstream's value of every key.
        let keys: Vec<(char, String)> = (0..CLIENTS).flat_map(keys_of).collect();
        let expected: Vec<Vec<String>> = keys
            .iter()
            .map(|(k, key)| dump(&mut uc, *k, key).unwrap())
            .collect();
        let mut stale = Vec::new();
        let fresh = wait_for(Duration::from_secs(30), || {
            stale.clear();
            for n in c.live() {
                let Some(mut nc) = common::cluster::con_try(n.port) else {
                    stale.push(format!("node {} unreachable", n.id));
                    continue;
                };
                for ((k, key), want) in keys.iter().zip(&expected) {
                    match dump(&mut nc, *k, key) {
                        Ok(got) if got == *want => {}
                        got => {
                            stale.push(format!("node {} {key}: {got:?} != upstream {want:?}", n.id))
                        }
                    }
                }
            }
            stale.is_empty()
        });
        report(
            "phase 2 (cluster + upstream redis)",
            &r,
            &verdicts,
            "every acknowledged write, in the upstream",
        );
        eprintln!(
            "keys compared at every node against the upstream: {} x {} nodes",
            keys.len(),
            c.live().count()
        );
        assert!(
            fresh,
            "phase 2: nodes serve values other than the upstream's: {stale:#?}"
        );
        assert_clean("phase 2", &r, &verdicts);
    }
}

/// The checker itself: a lost write, a lost pop, a lost INCR and a value
/// nobody wrote are each reported; uncertain writes are accepted either way;
/// only kept-term writes (or WAIT-confirmed ones) are required.
#[test]
fn the_checker_reports_lost_and_phantom_writes() {
    let s = |k: &str| (k.to_string(), String::new());
    let op = |effects: Vec<Effect>, acked: bool, epoch: Option<u64>| OpRec {
        effects,
        acked,
        epoch,
        wait_confirmed: false,
    };
    let w = |k: &str, seq: u64| Effect::Reg {
        reg: s(k),
        seq,
        write: true,
    };
    let ops = vec![
        op(vec![w("s0:0", 1)], true, Some(5)),
        op(vec![w("s0:0", 2)], false, None), // uncertain
        op(vec![w("s0:1", 3)], true, Some(5)),
        op(vec![w("s0:2", 4)], true, Some(3)), // in a term that did not keep it
        op(
            vec![Effect::Incr {
                key: "n0:0".into(),
                reply: Some(1),
            }],
            true,
            Some(5),
        ),
        op(
            vec![Effect::Push {
                key: "l0:0".into(),
                elem: 6,
            }],
            true,
            Some(5),
        ),
        op(
            vec![Effect::Pop {
                key: "l0:0".into(),
                reply: Some(Some(6)),
            }],
            true,
            Some(5),
        ),
    ];
    let must = |o: &OpRec| o.epoch == Some(5);
    // A state that holds everything (s0:0 by the uncertain write, s0:2 lost
    // with its term): nothing lost.
    let mut good = Final::default();
    good.regs.insert(s("s0:0"), 2);
    good.regs.insert(s("s0:1"), 3);
    good.counters.insert("n0:0".into(), 1);
    good.lists.insert("l0:0".into(), vec![]);
    let v = verify(0, &ops, &good, &must);
    assert!(v.lost.is_empty() && v.phantoms.is_empty(), "{v:?}");
    assert_eq!(v.checked, 5);
    // s0:1 gone, the counter back to 0, the popped element back: three losses.
    let mut bad = Final::default();
    bad.regs.insert(s("s0:0"), 1);
    bad.counters.insert("n0:0".into(), 0);
    bad.lists.insert("l0:0".into(), vec![6]);
    let v = verify(0, &ops, &bad, &must);
    assert_eq!(v.lost.len(), 3, "{v:?}");
    // A value nobody wrote, a counter above the INCRs sent.
    let mut phantom = Final::default();
    phantom.regs.insert(s("s0:0"), 99);
    phantom.regs.insert(s("s0:1"), 3);
    phantom.counters.insert("n0:0".into(), 5); // one INCR was ever sent
    assert_eq!(verify(0, &ops, &phantom, &must).phantoms.len(), 2);
}
