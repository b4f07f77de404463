//! The tier policy: which commands run locally, which go upstream, and how a
//! local miss is filled. This is the only place that decides; commands know
//! nothing about tiers.
//!
//! | command                                             | where                         |
//! |-----------------------------------------------------|-------------------------------|
//! | read with keys, all present locally (or known absent)| local                         |
//! | read with keys, some missing                         | fetch missing keys whole (single-flight), back-fill, run locally |
//! | TTL/PTTL/EXPIRETIME/PEXPIRETIME/OBJECT/DUMP/TOUCH/SORT_RO, keyspace-wide reads (KEYS, SCAN, DBSIZE, RANDOMKEY) | upstream |
//! | write to one key held locally, reply shape the same in RESP2/RESP3 (SET, INCR*, HSET, SADD, LPUSH, ZADD, EXPIRE, ...) | upstream, in one MULTI with a re-read of the key on the tracking connection; the local copy becomes the upstream's result |
//! | any other write (conditional, pops, RENAME, multi-key, FLUSHALL, ...) | upstream; after success drop the named keys locally (FLUSHALL: flush) |
//! | writes and upstream reads in the middle of a pipeline | queued per client, sent as one batch (one pipeline, so in order), same rules as above |
//! | blocking pop                                         | upstream, on its own connection |
//! | stream commands (never cached locally)                | upstream; XREAD/XREADGROUP with BLOCK on their own connection |
//! | MULTI ... EXEC with keys or writes                    | upstream as one MULTI/EXEC    |
//! | WATCH                                               | upstream, on a connection reserved for the client until EXEC/DISCARD/UNWATCH |
//! | everything else (PING, CLIENT, CONFIG, INFO, Pub/Sub) | local                         |
//! | a command jcache lacks (a module's, ...)             | upstream as it is, if the upstream's `COMMAND` lists it and it is not admin/dangerous/connection state (`passthrough.rs`); a write drops its keys locally |
//!
//! In front of a Redis Cluster every "upstream" above is the primary of the
//! keys' slot (`Upstream::dest`); keys of several slots are split (MGET,
//! MSET, DEL, UNLINK, EXISTS, TOUCH) or refused with CROSSSLOT, as is a
//! transaction or a WATCH across slots (`redis_cluster.rs`).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use smallvec::SmallVec;

use super::encode::{encode, encode_error, null_is_array, write_value};
use super::memory::MemoryTier;
use super::passthrough::{self, Decision, PassThrough};
use super::redis::RedisTier;
use super::redis_cluster::{must_resend, Dest, Upstream};
use super::slots::{common_slot, CROSSSLOT_ERR};
use super::{type_hint, Coherence, FetchOutcome, Tier, TierError, TierErrorKind, TierStats};
use crate::commands::{
    flags, run_detached, unknown_command_error, Command, DeferredReply, KeySpec, Router,
};
use crate::commands::{ClientState, Shared};
use crate::config::Tracking;
use crate::engine::{Keys, ValueType};
use crate::protocol::Reply;

/// Reads whose answer the local copy cannot give (the local TTL is capped,
/// the local keyspace is a subset, SORT_RO's BY/GET name keys it does not
/// declare; PFCOUNT, which stores its estimate in the value, at the
/// upstream as in Redis): always asked upstream. `top`: `cmd` is the
/// top-level command.
fn upstream_read(cmd: &'static Command, args: &[Bytes], top: bool) -> bool {
    if top {
        matches!(
            cmd.name,
            "ttl"
                | "pttl"
                | "expiretime"
                | "pexpiretime"
                | "dump"
                | "touch"
                | "keys"
                | "scan"
                | "dbsize"
                | "randomkey"
                | "sort_ro"
                | "pfcount"
        )
    } else {
        args[0].eq_ignore_ascii_case(b"object")
    }
}

/// Single-key writes whose reply is an integer, a status, a bulk string or
/// a null (the same shape in RESP2 and RESP3), so they can run on the RESP3
/// tracking connection together with a re-read of the key.
fn refetchable(cmd: &'static Command, args: &[Bytes]) -> bool {
    const NAMES: &[&str] = &[
        "set",
        "setnx",
        "setex",
        "psetex",
        "getset",
        "incr",
        "decr",
        "incrby",
        "decrby",
        "incrbyfloat",
        "append",
        "setrange",
        "hset",
        "hsetnx",
        "hmset",
        "hdel",
        "hincrby",
        "hincrbyfloat",
        "sadd",
        "srem",
        "lpush",
        "rpush",
        "lpushx",
        "rpushx",
        "lset",
        "ltrim",
        "lrem",
        "linsert",
        "zadd",
        "zincrby",
        "zrem",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "persist",
    ];
    args.len() > 1
        && matches!(
            cmd.keys,
            KeySpec::Range {
                first: 1,
                last: 1,
                ..
            }
        )
        && args[0].eq_ignore_ascii_case(cmd.name.as_bytes())
        && NAMES.contains(&cmd.name)
}

/// Whether the command waits upstream (and so needs a connection of its
/// own): the blocking pops always, XREAD/XREADGROUP only with BLOCK.
fn blocks(cmd: &'static Command, args: &[Bytes]) -> bool {
    if cmd.group == "stream" {
        return args
            .iter()
            .skip(1)
            .take_while(|a| !a.eq_ignore_ascii_case(b"streams"))
            .any(|a| a.eq_ignore_ascii_case(b"block"));
    }
    cmd.has(flags::BLOCKING)
}

/// What writes forwarded upstream may have changed among the local copies:
/// keys by database, whole databases (FLUSHDB, SWAPDB), or everything.
#[derive(Default)]
pub struct Dropped {
    all: bool,
    dbs: Vec<usize>,
    keys: Vec<(usize, Bytes)>,
}

impl Dropped {
    pub fn of(cmd: &'static Command, args: &[Bytes], db: usize) -> Dropped {
        let mut d = Dropped::default();
        d.add(cmd, args, db);
        d
    }

    /// Adds what `cmd` run in database `db` changes. MOVE and COPY ... DB
    /// also change their key in the other database; SWAPDB changes both
    /// databases whole (Redis 7.0 sends no invalidation for it).
    fn add(&mut self, cmd: &'static Command, args: &[Bytes], db: usize) {
        let index = |a: &Bytes| std::str::from_utf8(a).ok()?.parse::<usize>().ok();
        match cmd.name {
            "flushdb" => self.dbs.push(db),
            "swapdb" => match (index(&args[1]), index(&args[2])) {
                (Some(a), Some(b)) => self.dbs.extend([a, b]),
                _ => self.all = true,
            },
            _ if matches!(cmd.keys, KeySpec::All) => self.all = true,
            _ => {
                for i in cmd.key_positions(args) {
                    self.keys.push((db, args[i].clone()));
                }
                let other = match cmd.name {
                    "move" => index(&args[2]).map(|d| (d, &args[1])),
                    "copy" => args[3..]
                        .iter()
                        .position(|a| a.eq_ignore_ascii_case(b"db"))
                        .and_then(|at| args.get(3 + at + 1))
                        .and_then(index)
                        .map(|d| (d, &args[2])),
                    _ => None,
                };
                if let Some((d, key)) = other {
                    self.keys.push((d, key.clone()));
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.dbs.is_empty() && self.keys.is_empty()
    }

    fn apply(&self, co: &Coherence) {
        if self.all {
            return co.flush_all();
        }
        for &d in &self.dbs {
            co.flush_db(d);
        }
        let mut dbs: SmallVec<[usize; 2]> = self.keys.iter().map(|(d, _)| *d).collect();
        dbs.sort_unstable();
        dbs.dedup();
        for d in dbs {
            let keys: Vec<Bytes> = self
                .keys
                .iter()
                .filter(|(kd, _)| *kd == d)
                .map(|(_, k)| k.clone())
                .collect();
            co.invalidate(d, &keys);
        }
    }
}

/// The database a queued `SELECT` moves its transaction to, if its index
/// is valid (else it fails inside EXEC, as in Redis, and moves nothing).
fn select_target(args: &[Bytes], databases: usize) -> Option<usize> {
    let d: usize = std::str::from_utf8(args.get(1)?).ok()?.parse().ok()?;
    (d < databases).then_some(d)
}

/// What a transaction started in database `db` may change locally, and the
/// database it leaves its client in: a SELECT inside moves the rest of it.
pub fn transaction_effects(
    queue: &[(&'static Command, Vec<Bytes>)],
    db: usize,
    databases: usize,
) -> (Dropped, usize) {
    let mut dropped = Dropped::default();
    let mut at = db;
    for (c, a) in queue {
        if c.name == "select" {
            at = select_target(a, databases).unwrap_or(at);
        } else if c.has(flags::WRITE) {
            dropped.add(c, a, at);
        }
    }
    (dropped, at)
}

pub struct TieredRouter {
    local: Arc<MemoryTier>,
    upstream: Upstream,
    co: Arc<Coherence>,
    /// The upstream's command table, for commands jcache lacks.
    pass: Arc<PassThrough>,
}

impl TieredRouter {
    /// Cluster mode: this node's cache is its own (fills and drops unlogged).
    pub fn set_unlogged(&self) {
        self.local.set_unlogged();
    }

    /// Drops local copies that changed upstream through another node (a
    /// write this follower forwarded to the master).
    pub fn drop_local(&self, dropped: &Dropped) {
        dropped.apply(&self.co);
    }

    pub fn new(
        _server: &Arc<Shared>,
        local: Arc<MemoryTier>,
        upstream: Upstream,
        co: Arc<Coherence>,
    ) -> Self {
        TieredRouter {
            local,
            upstream,
            co,
            pass: Arc::new(PassThrough::default()),
        }
    }

    fn tiers(&self) -> [&dyn Tier; 2] {
        [&*self.local, self.upstream.as_tier()]
    }

    /// A write to one key held locally, by a command whose reply has the same
    /// shape in RESP2 and RESP3: upstream first, in one MULTI/EXEC with a
    /// re-read of the key, and the local copy replaced by what the upstream
    /// holds afterwards (so a hot key stays hot across writes). None if the
    /// command or the key does not qualify.
    fn write_through(
        &self,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        if !refetchable(cmd, args) {
            return None;
        }
        let Ok(Dest::Node(up)) = self.upstream.dest(cmd, args) else {
            return None;
        };
        let key = args[1].clone();
        let db = client.db;
        let guess = {
            let mut ks = self.local.server().db.lock(&[&key]);
            ks.select(db);
            ks.peek(&key)?.value.value_type()
        };
        let upstream = self.upstream.clone();
        let co = self.co.clone();
        let resp3 = client.resp3;
        let args = args.to_vec();
        Some(Box::pin(async move {
            if !up.is_up() {
                return encode_error(&TierError::Unavailable.reply(true));
            }
            // The re-read is a fetch like any other: registered first, so an
            // invalidation arriving meanwhile voids it.
            let (flight, leader) = co.begin(db, &key);
            if !leader {
                // A read's fetch is in flight: plain forward, then drop.
                flight.invalidated.store(true, Ordering::Release);
                let r = upstream.forward(&up, db, &args, resp3).await;
                co.invalidate(db, std::slice::from_ref(&key));
                return match r {
                    Ok(v) => encode(&v, resp3, null_is_array(&args)),
                    Err(e) => encode_error(&e.reply(true)),
                };
            }
            // Its own task: the flight is completed even if this request goes away.
            let task = tokio::spawn(async move {
                let r = up.write_refetch(db, &args, &key, guess).await;
                let aborted = match &r {
                    Ok((v, _)) => must_resend(v),
                    Err(e) => matches!(e, TierError::Rejected(_)),
                };
                if aborted && upstream.cluster().is_some() {
                    // Refused while queueing (a MOVED or ASK makes the
                    // MULTI abort): nothing ran. Sent plainly, following
                    // the redirect.
                    co.complete(db, &key, &flight, Err(TierError::Unsupported));
                    let r = upstream.forward(&up, db, &args, resp3).await;
                    co.invalidate(db, std::slice::from_ref(&key));
                    return match r {
                        Ok(v) => encode(&v, resp3, null_is_array(&args)),
                        Err(e) => encode_error(&e.reply(true)),
                    };
                }
                match r {
                    Ok((reply, fetched)) => {
                        if matches!(reply, redis::Value::ServerError(_)) {
                            // Rejected: the local copy stays as it is.
                            co.complete(db, &key, &flight, Err(TierError::Unsupported));
                        } else if co.complete(db, &key, &flight, fetched) != FetchOutcome::Filled {
                            co.invalidate(db, std::slice::from_ref(&key));
                        }
                        encode(&reply, resp3, null_is_array(&args))
                    }
                    Err(e) => {
                        co.complete(db, &key, &flight, Err(e.clone()));
                        if !matches!(e, TierError::Rejected(_)) {
                            co.invalidate(db, std::slice::from_ref(&key));
                        }
                        encode_error(&e.reply(true))
                    }
                }
            });
            task.await
                .unwrap_or_else(|_| encode_error(&TierError::Lost.reply(true)))
        }))
    }

    /// A write: upstream first; the local tier changes only after the
    /// upstream accepted it (it drops the keys the command named).
    fn write(&self, client: &ClientState, cmd: &'static Command, args: &[Bytes]) -> DeferredReply {
        let dest = match self.upstream.dest(cmd, args) {
            Ok(d) => d,
            Err(e) => return ready(encode_error(&e.reply(true))),
        };
        let upstream = self.upstream.clone();
        let co = self.co.clone();
        let (db, resp3) = (client.db, client.resp3);
        let args = args.to_vec();
        let dropped = Dropped::of(cmd, &args, db);
        let blocking = blocks(cmd, &args);
        Box::pin(async move {
            let r = match dest {
                Dest::Node(up) if !up.is_up() => {
                    return encode_error(&TierError::Unavailable.reply(true));
                }
                Dest::Node(up) if blocking => up.forward_blocking(db, &args, resp3).await,
                dest => upstream.send(dest, db, &args, resp3).await,
            };
            match r {
                Ok(v) => {
                    // A write the upstream rejected leaves the local tier unchanged.
                    if !matches!(v, redis::Value::ServerError(_)) {
                        dropped.apply(&co);
                    }
                    encode(&v, resp3, null_is_array(&args))
                }
                Err(e) => {
                    // The outcome is unknown: the local copies may be stale.
                    dropped.apply(&co);
                    encode_error(&e.reply(true))
                }
            }
        })
    }

    /// A command of a pipeline that overlaps with the ones before it: queued
    /// in the client's batch (sent whole, in order, by whichever of its
    /// requests is polled first); a write drops its keys locally once the
    /// upstream accepted it.
    fn pipelined(
        &self,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> DeferredReply {
        let write = cmd.has(flags::WRITE);
        let up = match self.upstream.dest(cmd, args) {
            Ok(Dest::Node(n)) => n,
            // Split, sent to every primary, or refused: not batched.
            _ if write => return self.write(client, cmd, args),
            _ => return self.forward_read(client, cmd, args),
        };
        let upstream = self.upstream.clone();
        // In front of a cluster, a redirected command is sent again.
        let again = upstream.cluster().map(|_| args.to_vec());
        let co = self.co.clone();
        let (id, db, resp3) = (client.id, client.db, client.resp3);
        let null_array = null_is_array(args);
        if !up.is_up() {
            return Box::pin(async move { encode_error(&TierError::Unavailable.reply(write)) });
        }
        let dropped = if write {
            Dropped::of(cmd, args, db)
        } else {
            Dropped::default()
        };
        let shape_safe = refetchable(cmd, args);
        let refetch = if shape_safe && write {
            let key = args[1].clone();
            let mut ks = self.local.server().db.lock(&[&key]);
            ks.select(db);
            let t = ks.peek(&key).map(|e| e.value.value_type());
            drop(ks);
            t.map(|t| (key, t))
        } else {
            None
        };
        let rx = up.enqueue(id, db, args.to_vec(), shape_safe, refetch);
        Box::pin(async move {
            // The first request of the batch polled sends it, as a task of its
            // own (its fetch flights complete even if this request goes away).
            if let Some(batch) = up.take_batch(id) {
                let up = up.clone();
                tokio::spawn(async move { up.send_batch(batch, resp3).await });
            }
            // No answer from the batch's task: it may have been sent.
            let mut r = rx.await.unwrap_or(Err(TierError::Lost));
            if let (Ok(b), Some(args)) = (&r, &again) {
                if must_resend(&b.value) {
                    r = upstream.forward(&up, db, args, resp3).await.map(|value| {
                        super::redis::BatchReply {
                            value,
                            local_done: false,
                        }
                    });
                }
            }
            match r {
                Ok(b) => {
                    if write && !b.local_done && !matches!(b.value, redis::Value::ServerError(_)) {
                        dropped.apply(&co);
                    }
                    encode(&b.value, resp3, null_array)
                }
                Err(e) => {
                    if write {
                        dropped.apply(&co);
                    }
                    encode_error(&e.reply(write))
                }
            }
        })
    }

    /// Scripts and functions run at the upstream, which holds the truth.
    /// EVAL bodies and SCRIPT LOAD are also kept in the local script cache,
    /// so an EVALSHA the upstream does not know (it restarted, or the
    /// script was loaded through another node) is loaded there and retried
    /// without the client noticing. After a script, the local copies of
    /// the keys it declared are dropped; keys it touched without declaring
    /// them are dropped when the upstream's tracking invalidation arrives,
    /// as for a write by any other client of the upstream.
    fn scripting(
        &self,
        server: &Arc<Shared>,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> DeferredReply {
        let name = args[0].to_ascii_lowercase();
        let sub = args.get(1).map(|a| a.to_ascii_lowercase());
        let local_body = match (&name[..], sub.as_deref()) {
            (b"eval" | b"eval_ro", _) => Some(args[1].clone()),
            (b"script", Some(b"load")) if args.len() == 3 => Some(args[2].clone()),
            _ => None,
        };
        if let Some(body) = local_body {
            server.scripting.cache_script(body);
        }
        if name == b"script" && sub.as_deref() == Some(b"flush") {
            server.scripting.flush_scripts();
        }
        // EVALSHA's body, for a retry after NOSCRIPT.
        let retry_body = match &name[..] {
            b"evalsha" | b"evalsha_ro" => server.scripting.script_body(&args[1]),
            _ => None,
        };
        let keys: Vec<Bytes> = if cmd.has(flags::SCRIPT) {
            cmd.key_positions(args)
                .into_iter()
                .map(|i| args[i].clone())
                .collect()
        } else {
            Vec::new()
        };
        let dest = match self.upstream.dest(cmd, args) {
            Ok(d) => d,
            Err(e) => return ready(encode_error(&e.reply(true))),
        };
        let upstream = self.upstream.clone();
        let co = self.co.clone();
        let (db, resp3) = (client.db, client.resp3);
        let args = args.to_vec();
        Box::pin(async move {
            let node = match &dest {
                Dest::Node(n) => Some(n.clone()),
                _ => None,
            };
            if node.as_ref().is_some_and(|n| !n.is_up()) {
                return encode_error(&TierError::Unavailable.reply(true));
            }
            let mut r = upstream.send(dest, db, &args, resp3).await;
            let noscript = matches!(&r, Ok(redis::Value::ServerError(e)) if e.code() == "NOSCRIPT");
            if let (true, Some(body), Some(up)) = (noscript, retry_body, node) {
                let load = [
                    Bytes::from_static(b"SCRIPT"),
                    Bytes::from_static(b"LOAD"),
                    body,
                ];
                if let Ok(redis::Value::BulkString(_)) =
                    upstream.forward(&up, db, &load, resp3).await
                {
                    r = upstream.forward(&up, db, &args, resp3).await;
                }
            }
            // Whatever the outcome (an error may come after a write), the
            // declared keys' local copies may be stale now.
            if !keys.is_empty() {
                co.invalidate(db, &keys);
            }
            match r {
                Ok(v) => encode(&v, resp3, null_is_array(&args)),
                Err(e) => encode_error(&e.reply(true)),
            }
        })
    }

    fn forward_read(
        &self,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> DeferredReply {
        let dest = match self.upstream.dest(cmd, args) {
            Ok(d) => d,
            Err(e) => return ready(encode_error(&e.reply(false))),
        };
        let upstream = self.upstream.clone();
        let (db, resp3) = (client.db, client.resp3);
        let args = args.to_vec();
        Box::pin(async move {
            match upstream.send(dest, db, &args, resp3).await {
                Ok(v) => encode(&v, resp3, null_is_array(&args)),
                Err(e) => encode_error(&e.reply(false)),
            }
        })
    }

    /// PUBLISH reaches this node's subscribers and the upstream's, so
    /// applications talking to Redis directly hear it too. The reply counts both.
    fn publish(&self, server: &Arc<Shared>, client: &ClientState, args: &[Bytes]) -> DeferredReply {
        let local = server.pubsub.publish(&args[1], &args[2]) as i64;
        // A cluster delivers a PUBLISH to every node's subscribers.
        let up = self.upstream.node(None);
        let resp3 = client.resp3;
        let args = args.to_vec();
        Box::pin(async move {
            let r = match up {
                Ok(up) => up.forward(0, &args, resp3).await,
                Err(e) => Err(e),
            };
            // Channels have no database.
            match r {
                Ok(redis::Value::Int(n)) => {
                    let mut r = Reply::new(resp3);
                    r.int(local + n);
                    r.buf.freeze()
                }
                Ok(v) => encode(&v, resp3, false),
                // Local subscribers have the message already, and the
                // upstream's may: a retry would deliver it twice.
                Err(e) => encode_error(&e.reply(true)),
            }
        })
    }

    fn watch(
        &self,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        if client.multi.is_some() {
            return None; // "WATCH inside MULTI is not allowed", locally
        }
        // In front of a cluster, a client's WATCHes and its transaction
        // run on one primary: keys of another slot's node are CROSSSLOT.
        let up = match self.upstream.dest(cmd, args) {
            Ok(Dest::Node(n)) => n,
            Ok(_) => return Some(ready(encode_error(CROSSSLOT_ERR))),
            Err(e) => return Some(ready(encode_error(&e.reply(false)))),
        };
        if let Some(w) = self.upstream.watch_node(client.id) {
            if !Arc::ptr_eq(&w, &up) {
                return Some(ready(encode_error(CROSSSLOT_ERR)));
            }
        }
        let (id, db, resp3, args) = (client.id, client.db, client.resp3, args.to_vec());
        Some(Box::pin(async move {
            match up.watch(id, db, &args, resp3).await {
                Ok(v) => encode(&v, resp3, false),
                Err(e) => {
                    up.release(id);
                    encode_error(&e.reply(false))
                }
            }
        }))
    }

    fn exec(&self, client: &mut ClientState) -> Option<DeferredReply> {
        let queue = client.multi.as_ref()?;
        if client.multi_dirty {
            self.upstream.release(client.id);
            return None; // EXECABORT, locally
        }
        let touches_data = queue.iter().any(|(c, a)| {
            c.has(flags::WRITE) || !c.key_positions(a).is_empty() || matches!(c.keys, KeySpec::All)
        });
        let watch_node = self.upstream.watch_node(client.id);
        if !touches_data && watch_node.is_none() {
            return None; // PING, INFO, ...: nothing of the upstream's
        }
        let node = self.transaction_node(queue, watch_node);
        let queue = client.multi.take().unwrap_or_default();
        client.multi_dirty = false;
        let up = match node {
            Ok(n) => n,
            Err(e) => {
                // Redis Cluster discards the transaction.
                self.upstream.release(client.id);
                return Some(ready(encode_error(&e)));
            }
        };
        // The transaction starts in the client's database; a SELECT inside
        // moves the rest of it (upstream, where it runs) and the client,
        // at once (as a cluster follower does). A cluster has database 0
        // only (its SELECT n fails inside EXEC and moves nothing).
        let db = client.db;
        let databases = match self.upstream {
            Upstream::Cluster(_) => 1,
            Upstream::Single(_) => self.local.server().db.databases(),
        };
        let (dropped, at) = transaction_effects(&queue, db, databases);
        // A transaction with effects (a write, or a PUBLISH) whose outcome is
        // unknown must not be answered TRYAGAIN (the outcome rule).
        let writes = queue
            .iter()
            .any(|(c, _)| c.has(flags::WRITE) || c.name == "publish");
        client.db = at;
        client.info.meta.lock().db = at;
        let cmds: Vec<Vec<Bytes>> = queue.into_iter().map(|(_, a)| a).collect();
        let co = self.co.clone();
        let (id, resp3) = (client.id, client.resp3);
        Some(Box::pin(async move {
            if !up.is_up() {
                up.release(id);
                return encode_error(&TierError::Unavailable.reply(writes));
            }
            match up.transaction(id, db, &cmds, resp3).await {
                Ok(redis::Value::Array(items)) => {
                    dropped.apply(&co);
                    let mut out = Reply::new(resp3);
                    out.array(items.len());
                    for (v, args) in items.iter().zip(&cmds) {
                        write_value(&mut out, v, null_is_array(args));
                    }
                    out.buf.freeze()
                }
                Ok(v) => encode(&v, resp3, true),
                Err(e @ TierError::Rejected(_)) => encode_error(&e.reply(writes)),
                Err(e) => {
                    dropped.apply(&co);
                    encode_error(&e.reply(writes))
                }
            }
        }))
    }

    /// The node a transaction runs on: the one serving its keys' slot (and
    /// holding its WATCHes); keys of several slots are CROSSSLOT.
    fn transaction_node(
        &self,
        queue: &[(&'static Command, Vec<Bytes>)],
        watch_node: Option<Arc<RedisTier>>,
    ) -> Result<Arc<RedisTier>, String> {
        if let Upstream::Single(t) = &self.upstream {
            return Ok(t.clone());
        }
        let keys = queue
            .iter()
            .flat_map(|(c, a)| c.key_positions(a).into_iter().map(move |i| &a[i][..]));
        let node = match common_slot(keys) {
            Err(_) => return Err(CROSSSLOT_ERR.to_string()),
            Ok(None) => match watch_node.clone() {
                Some(n) => Ok(n),
                None => self.upstream.node(None),
            },
            Ok(slot) => self.upstream.node(slot),
        };
        let node = node.map_err(|e| e.reply(true).into_owned())?;
        match watch_node {
            Some(w) if !Arc::ptr_eq(&w, &node) => Err(CROSSSLOT_ERR.to_string()),
            _ => Ok(node),
        }
    }

    /// A read that missed locally: fetch the missing keys (one fetch per key
    /// however many requests wait for it), back-fill, run locally.
    fn miss(
        &self,
        server: &Arc<Shared>,
        client: &ClientState,
        cmd: &'static Command,
        args: &[Bytes],
        missing: SmallVec<[Bytes; 2]>,
    ) -> DeferredReply {
        let up = self.upstream.clone();
        let dest = self.upstream.dest(cmd, args);
        let co = self.co.clone();
        let server = server.clone();
        let info = client.info.clone();
        let (db, resp3) = (client.db, client.resp3);
        let args = args.to_vec();
        let hint = type_hint(cmd.group);
        Box::pin(async move {
            // In front of a cluster, each key's node answers for itself.
            if matches!(&up, Upstream::Single(t) if !t.is_up()) {
                return encode_error(&TierError::Unavailable.reply(false));
            }
            let mut filled: SmallVec<[Bytes; 2]> = SmallVec::new();
            // A key the upstream reports no change of (outside the BCAST
            // prefixes) is never copied: the upstream answers.
            let mut go_upstream = !missing.iter().all(|k| co.tracking.covers(k));
            let outcomes = if go_upstream {
                Vec::new()
            } else {
                futures_util::future::join_all(
                    missing
                        .iter()
                        .map(|k| fetch_key(co.clone(), up.clone(), db, k.clone(), hint)),
                )
                .await
            };
            for (k, o) in missing.iter().zip(outcomes) {
                match o {
                    FetchOutcome::Filled => filled.push(k.clone()),
                    FetchOutcome::Absent => {}
                    FetchOutcome::NotFilled => go_upstream = true,
                    FetchOutcome::Failed(TierErrorKind::Timeout) => {
                        return encode_error(&TierError::Timeout.reply(false))
                    }
                    FetchOutcome::Failed(TierErrorKind::Unavailable) => {
                        return encode_error(&TierError::Unavailable.reply(false))
                    }
                }
            }
            if !go_upstream {
                let ran = run_detached(&server, info, resp3, db, cmd, &args, |ks| {
                    filled.iter().all(|k| ks.peek(k).is_some())
                });
                if let Some(reply) = ran {
                    return reply;
                }
            }
            // Invalidated (or evicted) since the fetch, or not cacheable:
            // the upstream answers.
            let dest = match dest {
                Ok(d) => d,
                Err(e) => return encode_error(&e.reply(false)),
            };
            match up.send(dest, db, &args, resp3).await {
                Ok(v) => encode(&v, resp3, null_is_array(&args)),
                Err(e) => encode_error(&e.reply(false)),
            }
        })
    }
}

/// A reply known now.
fn ready(reply: Bytes) -> DeferredReply {
    Box::pin(async move { reply })
}

/// Joins or starts the fetch of `key`. The fetch itself runs as its own task,
/// so it completes (and wakes every waiter) even if the request that
/// started it goes away.
async fn fetch_key(
    co: Arc<Coherence>,
    up: Upstream,
    db: usize,
    key: Bytes,
    hint: Option<ValueType>,
) -> FetchOutcome {
    let (flight, leader) = co.begin(db, &key);
    let mut rx = flight.done.subscribe();
    if leader {
        let flight = flight.clone();
        let co = co.clone();
        tokio::spawn(async move {
            let r = up.fetch(db, key.clone(), hint).await;
            co.complete(db, &key, &flight, r);
        });
    }
    let outcome = match rx.wait_for(|v| v.is_some()).await {
        Ok(v) => v.unwrap_or(FetchOutcome::Failed(TierErrorKind::Unavailable)),
        Err(_) => FetchOutcome::Failed(TierErrorKind::Unavailable),
    };
    outcome
}

impl TieredRouter {
    /// A command jcache lacks, passed to the upstream as it is (see
    /// `passthrough`); the upstream's table decides, and a command it does
    /// not list or that is refused gets jcache's "unknown command".
    fn unknown(&self, server: &Arc<Shared>, client: &ClientState, args: &[Bytes]) -> DeferredReply {
        let up = self.upstream.clone();
        let co = self.co.clone();
        let pass = self.pass.clone();
        let server = server.clone();
        let (db, resp3) = (client.db, client.resp3);
        let args = args.to_vec();
        Box::pin(async move {
            let any = match up.node(None) {
                Ok(n) if n.is_up() => n,
                _ => return encode_error(&TierError::Unavailable.reply(true)),
            };
            match pass.decide(&any, &args).await {
                Decision::Unknown => {
                    let mut r = Reply::new(resp3);
                    r.error(&unknown_command_error(&args));
                    server.stats.count_error(&r.buf);
                    r.buf.freeze()
                }
                Decision::Pass(entry) => {
                    let keys = entry.key_positions(&args);
                    let node = match common_slot(keys.iter().map(|&i| &args[i][..])) {
                        Ok(slot) => up.node(slot),
                        Err(_) => return encode_error(CROSSSLOT_ERR),
                    };
                    let node = match node {
                        Ok(n) => n,
                        Err(e) => return encode_error(&e.reply(entry.write)),
                    };
                    match passthrough::forward(&node, &co, &entry, db, &args, resp3).await {
                        Ok(v) => encode(&v, resp3, null_is_array(&args)),
                        Err(e) => encode_error(&e.reply(entry.write)),
                    }
                }
            }
        })
    }
}

impl Router for TieredRouter {
    fn route_unknown(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        // A blocking command (as the upstream described it before) shows
        // the client as blocked; CLIENT UNBLOCK then answers a null array,
        // as XREAD and the other blocking reads time out.
        if self.pass.blocks(args) == Some(true) {
            client.deferred_block = Some(true);
        }
        Some(self.unknown(server, client, args))
    }

    fn route(
        &self,
        server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        let top = args[0].eq_ignore_ascii_case(cmd.name.as_bytes());
        if top {
            match cmd.name {
                "publish" => return Some(self.publish(server, client, args)),
                "exec" => return self.exec(client),
                "watch" => return self.watch(client, cmd, args),
                // The dedicated connection closes: Redis forgets its WATCHes.
                "unwatch" | "discard" | "reset" => {
                    self.upstream.release(client.id);
                    return None;
                }
                _ => {}
            }
        }
        if cmd.group == "scripting" {
            return Some(self.scripting(server, client, cmd, args));
        }
        if cmd.group == "stream" && !cmd.has(flags::WRITE) {
            return Some(if blocks(cmd, args) {
                self.write(client, cmd, args)
            } else {
                self.forward_read(client, cmd, args)
            });
        }
        if cmd.has(flags::WRITE) {
            if let Some(reply) = self.write_through(client, cmd, args) {
                return Some(reply);
            }
            return Some(self.write(client, cmd, args));
        }
        let whole_read = cmd.has(flags::READONLY) && matches!(cmd.keys, KeySpec::All);
        if whole_read || upstream_read(cmd, args, top) {
            return Some(self.forward_read(client, cmd, args));
        }
        None
    }

    fn check_locked(
        &self,
        server: &Arc<Shared>,
        client: &ClientState,
        ks: &mut Keys<'_>,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        if !cmd.has(flags::READONLY) {
            return None;
        }
        let mut missing: SmallVec<[Bytes; 2]> = SmallVec::new();
        match cmd.keys {
            KeySpec::Range {
                first: 1,
                last: 1,
                step: 1,
            } if args.len() > 1 => {
                let k = &args[1];
                if ks.peek(k).is_none() && !self.co.negatively_cached(client.db, k) {
                    missing.push(k.clone());
                }
            }
            KeySpec::None | KeySpec::All => return None,
            _ => {
                for i in cmd.key_positions(args) {
                    let k = &args[i];
                    if ks.peek(k).is_none()
                        && !self.co.negatively_cached(client.db, k)
                        && !missing.contains(k)
                    {
                        missing.push(k.clone());
                    }
                }
            }
        }
        let stats = &self.local.stats;
        if missing.is_empty() {
            TierStats::add(&stats.hits);
            return None;
        }
        TierStats::add(&stats.misses);
        Some(self.miss(server, client, cmd, args, missing))
    }

    fn pipelines(&self) -> bool {
        true
    }

    /// Plain forwards only, batched per client (see `pipelined`). A
    /// write-through with re-read uses the tracking connection, so it never
    /// overlaps: it runs for the last command of a batch, as at `-P 1`.
    fn route_pipelined(
        &self,
        _server: &Arc<Shared>,
        client: &mut ClientState,
        cmd: &'static Command,
        args: &[Bytes],
    ) -> Option<DeferredReply> {
        let top = true; // execute_deferrable passes top-level commands only
        let whole_read = cmd.has(flags::READONLY) && matches!(cmd.keys, KeySpec::All);
        if cmd.has(flags::WRITE) || whole_read || upstream_read(cmd, args, top) {
            return Some(self.pipelined(client, cmd, args));
        }
        None
    }

    fn disconnect(&self, client: &ClientState) {
        self.upstream.forget_client(client.id);
    }

    /// The dedicated WATCH connection closes: Redis forgets its WATCHes.
    fn transaction_aborted(&self, client: &ClientState) {
        self.upstream.release(client.id);
    }

    fn info(&self, want: &dyn Fn(&str) -> bool, out: &mut String) {
        use std::fmt::Write;
        if !want("tiers") {
            return;
        }
        let tiers = self.tiers();
        let names: Vec<&str> = tiers.iter().map(|t| t.kind()).collect();
        let _ = write!(
            out,
            "# Tiers\r\ntiers:{}\r\nupstream_status:{}\r\nupstream_tracking:{}\r\n",
            names.join(","),
            if self.upstream.is_up() { "up" } else { "down" },
            match &self.co.tracking {
                Tracking::Default => "default".to_string(),
                Tracking::Bcast(p) if p.is_empty() => "bcast".to_string(),
                Tracking::Bcast(p) => format!(
                    "bcast prefixes={}",
                    p.iter()
                        .map(|p| String::from_utf8_lossy(p))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        );
        for (i, t) in tiers.iter().enumerate() {
            let s = t.stats();
            let n = s.latency_count.load(Ordering::Relaxed);
            let avg = s
                .latency_us_total
                .load(Ordering::Relaxed)
                .checked_div(n)
                .unwrap_or(0);
            let _ = write!(
                out,
                "tier{i}_kind:{}\r\ntier{i}_hits:{}\r\ntier{i}_misses:{}\r\ntier{i}_backfills:{}\r\ntier{i}_invalidations:{}\r\ntier{i}_errors:{}\r\ntier{i}_latency_avg_us:{avg}\r\ntier{i}_latency_max_us:{}\r\ntier{i}_latency_us_total:{}\r\ntier{i}_latency_count:{n}\r\n",
                t.kind(),
                s.hits.load(Ordering::Relaxed),
                s.misses.load(Ordering::Relaxed),
                s.backfills.load(Ordering::Relaxed),
                s.invalidations.load(Ordering::Relaxed),
                s.errors.load(Ordering::Relaxed),
                s.latency_us_max.load(Ordering::Relaxed),
                s.latency_us_total.load(Ordering::Relaxed),
            );
            for (k, v) in t.info_fields() {
                let _ = write!(out, "tier{i}_{k}:{v}\r\n");
            }
        }
        out.push_str("\r\n");
    }
}
