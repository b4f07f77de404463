//! One client connection: read bytes, parse every complete request in the
//! buffer, execute each, and write all their replies with one write
//! (pipelining). Blocking pops park the connection until served or timed out.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::future::{maybe_done, MaybeDone};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::commands::{self, BlockRequest, Flow, Overlap};
use crate::commands::{ClientState, Shared};
use crate::protocol::{ParseLimits, Reply, RequestParser};
use crate::state::pubsub::Message;
use crate::state::ClientInfo;

/// Redis 7.0's reply to a non-loopback client in protected mode, word for word.
const DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

/// Flush the reply buffer early once a pipeline produced this much.
const OUT_FLUSH: usize = 64 * 1024;
/// A reply buffer that grew past this (a large reply) is given back once
/// written, as Redis frees its reply list: idle clients hold no large buffers.
const OUT_KEEP: usize = 2 * OUT_FLUSH;
/// A fresh input buffer's size (Redis's PROTO_IOBUF_LEN).
const IN_INITIAL: usize = 16 * 1024;
/// An input buffer that grew past this is replaced between requests.
const IN_KEEP: usize = 64 * 1024;
/// An idle client's empty input buffer is released after this long
/// (Redis's clientsCronResizeQueryBuffer: idle more than 2 s).
const IN_IDLE_RELEASE: Duration = Duration::from_secs(3);

pub async fn serve(shared: Arc<Shared>, mut socket: TcpStream, addr: SocketAddr) {
    let _ = socket.set_nodelay(true);
    let laddr = socket.local_addr().unwrap_or(shared.local_addr);
    let count = shared.connected.fetch_add(1, Ordering::AcqRel) + 1;
    if count as u64 > shared.config.maxclients.load(Ordering::Relaxed) {
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = socket
            .write_all(b"-ERR max number of clients reached\r\n")
            .await;
        shared.connected.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    if shared.config.protected_mode.load(Ordering::Relaxed)
        && !shared.requirepass_set()
        && !crate::state::is_local_client(addr)
    {
        // Redis 7.0's protected mode: whatever the bind address, a server
        // without a password serves only loopback clients.
        shared
            .stats
            .rejected_connections
            .fetch_add(1, Ordering::Relaxed);
        let _ = socket.write_all(DENIED).await;
        shared.connected.fetch_sub(1, Ordering::AcqRel);
        return;
    }
    let info = shared.clients.register(addr, laddr);
    let mut client = ClientState::new(info.clone(), !shared.requirepass_set());
    let result = run(&shared, &mut socket, &mut client).await;
    if let Err(e) = result {
        debug!(client = client.id, error = %e, "connection ended");
    }
    commands::disconnect(&shared, &mut client);
    shared.clients.unregister(client.id);
    shared.connected.fetch_sub(1, Ordering::AcqRel);
}

/// What a step of the connection loop says: go on, or close the connection.
type Go = std::io::Result<bool>;

/// One connection's buffers and the state its loop carries between steps.
struct Conn<'a> {
    shared: &'a Arc<Shared>,
    socket: &'a mut TcpStream,
    client: &'a mut ClientState,
    inbuf: BytesMut,
    parser: RequestParser,
    out: Reply,
    /// Whether commands of a pipeline may overlap: forwarded ones (a router
    /// that pipelines), or scripts queued for the script thread (no router).
    pipelines: bool,
    /// Replies produced elsewhere (a router, the script thread), in request order.
    pending: Vec<commands::DeferredReply>,
    /// Pub/Sub bytes in `out`, still counted against the output limit.
    unflushed_push: usize,
    /// Releases an idle client's empty read buffer. Armed once and kept
    /// across waits (a timer set up per wait cost about 1,000 instructions
    /// a request at -P 1); when it fires after reads, it re-arms instead,
    /// so the buffer goes back 3 to 6 s after the last input.
    release: Pin<Box<tokio::time::Sleep>>,
    release_armed: bool,
    /// Reads so far, and when the release timer was armed.
    reads: u64,
    reads_at_arm: u64,
}

async fn run(
    shared: &Arc<Shared>,
    socket: &mut TcpStream,
    client: &mut ClientState,
) -> std::io::Result<()> {
    let mut c = Conn {
        shared,
        socket,
        // Scripts overlap in a pipeline without a router (see
        // `commands::execute_deferrable`).
        pipelines: shared.router.get().is_none_or(|r| r.pipelines()),
        client,
        inbuf: BytesMut::with_capacity(IN_INITIAL),
        parser: RequestParser::new(),
        out: Reply::new(false),
        pending: Vec::new(),
        unflushed_push: 0,
        release: Box::pin(tokio::time::sleep(IN_IDLE_RELEASE)),
        release_armed: false,
        reads: 0,
        reads_at_arm: 0,
    };
    // Shutdown marks itself, then kills every client registered: one that
    // registered after that finds the mark here.
    if shared.shutting_down() {
        return Ok(());
    }
    while c.execute_buffered().await? && c.settle().await? && c.wait().await? {}
    Ok(())
}

impl Conn<'_> {
    /// Executes every complete request already buffered.
    async fn execute_buffered(&mut self) -> Go {
        // The client's last activity is stamped here, once per buffer read,
        // not per command (a clock read each, ~2% of a pipelined command's
        // cost).
        let info = &self.client.info;
        if !self.inbuf.is_empty() {
            info.last_active_ms
                .store(info.created.elapsed().as_millis() as u64, Ordering::Relaxed);
            // As Redis's querybuf while the batch runs: everything read
            // (CLIENT LIST shows `qbuf=26` for its own request).
            info.mem
                .qbuf
                .store(self.inbuf.len() as u64, Ordering::Relaxed);
        }
        loop {
            let limits = ParseLimits {
                max_bulk_len: self
                    .shared
                    .config
                    .proto_max_bulk_len
                    .load(Ordering::Relaxed) as i64,
                authenticated: self.client.authenticated,
            };
            let args = match self.parser.parse(&mut self.inbuf, limits) {
                Ok(Some(args)) => args,
                Ok(None) => return Ok(true),
                Err(e) => {
                    self.drain().await;
                    self.out.error(&format!("ERR {}", e.0));
                    self.shared.stats.count_error(b"-ERR");
                    self.flush().await?;
                    return Ok(false);
                }
            };
            if !args.is_empty() && !self.execute(args).await? {
                return Ok(false);
            }
        }
    }

    /// Executes one request and puts its reply in `out`, waiting first for
    /// the replies before it (unless it overlaps with them, see below).
    async fn execute(&mut self, args: Vec<bytes::Bytes>) -> Go {
        let (shared, client) = (self.shared, &mut *self.client);
        if self.pipelines
            && (!self.pending.is_empty()
                || !self.inbuf.is_empty()
                || !client.script_batch.is_empty())
            && !client.replies_suppressed()
            && client.pending_push.is_empty()
        {
            // In a pipeline, consecutive forwarded commands overlap;
            // anything else waits until the replies before it are in.
            if let Some(overlap) = commands::execute_deferrable(shared, client, &args) {
                if let Overlap::Reply(reply) = overlap {
                    self.pending.push(reply);
                }
                if self.pending.len() >= MAX_PENDING {
                    send_scripts(shared, client, &mut self.pending);
                    drain(&mut self.pending, &mut self.out).await;
                }
                return Ok(true);
            }
        }
        send_scripts(shared, client, &mut self.pending);
        drain(&mut self.pending, &mut self.out).await;
        let out = &mut self.out;
        let mark = out.len();
        let mut flow = commands::execute(shared, client, args, out);
        // A script runs: the request runs once it ended (or ran long enough
        // for BUSY). Nothing else of this client runs meanwhile.
        while let Flow::Wait(args, wait) = flow {
            let waited = wait_or_close(wait, &client.info).await;
            if !waited {
                return Ok(false);
            }
            flow = commands::execute(shared, client, args, out);
        }
        out.resp3 = client.resp3;
        let suppressed = client.replies_suppressed();
        if suppressed {
            out.buf.truncate(mark);
        }
        if !client.pending_push.is_empty() {
            out.raw(&client.pending_push);
            client.pending_push.clear();
        }
        client.reply_skip = std::mem::take(&mut client.reply_skip_set);
        match flow {
            Flow::Continue | Flow::Wait(..) => {}
            Flow::Defer(reply) => {
                let held = held_input(&self.parser, client);
                let inbuf = &mut self.inbuf;
                let waited = await_deferred(shared, self.socket, client, reply, inbuf, held);
                let Some(bytes) = waited.await else {
                    return Ok(false);
                };
                if !suppressed {
                    self.out.raw(&bytes);
                }
            }
            Flow::Close => {
                self.flush().await?;
                return Ok(false);
            }
            Flow::Block(req) => {
                self.flush().await?;
                let held = held_input(&self.parser, self.client);
                let (socket, client, out) = (&mut *self.socket, &mut *self.client, &mut self.out);
                let mark = out.len();
                let kept = block(shared, socket, client, req, &mut self.inbuf, held, out).await?;
                commands::unblocked(shared, client, &out.buf[mark..], kept);
                if !kept {
                    return Ok(false);
                }
            }
        }
        if self.out.len() >= OUT_FLUSH {
            self.flush().await?;
        }
        Ok(true)
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        flush(self.shared, self.socket, &mut self.out, &self.client.info).await
    }

    /// After a batch: writes its replies, gives large buffers back and
    /// checks the limits that apply before the connection waits.
    /// Sends the pipeline's batch of scripts, then waits for every reply
    /// in flight and appends them in request order.
    async fn drain(&mut self) {
        send_scripts(self.shared, self.client, &mut self.pending);
        drain(&mut self.pending, &mut self.out).await;
    }

    async fn settle(&mut self) -> Go {
        self.drain().await;
        self.flush().await?;
        // About to wait: give large buffers back (not between the flushes
        // of one pipeline, whose later replies reuse the buffer).
        if self.out.buf.capacity() > OUT_KEEP {
            self.out.buf = BytesMut::new();
        }
        give_back_input(&mut self.inbuf, &mut self.parser);
        // An emptied buffer takes back the room its parsed requests held
        // (no allocation: their bytes are released by now), so CLIENT
        // LIST's qbuf + qbuf-free stays at 16 KB as Redis's does.
        if self.inbuf.is_empty() && (1..IN_INITIAL).contains(&self.inbuf.capacity()) {
            self.inbuf.reserve(IN_INITIAL);
        }
        let client = &*self.client;
        publish_memory(&client.info, &self.inbuf, &self.parser, client, &self.out);
        // A MULTI queue grows without a read: check it before waiting.
        let held = self.inbuf.len() + held_input(&self.parser, client);
        if over_query_limit(self.shared, client, held) {
            return Ok(false);
        }
        // Pub/Sub messages count against the output limit until they are
        // written to the socket, not when they are copied into `out`.
        if self.unflushed_push > 0 {
            if let Some(sub) = &client.subscriber {
                sub.written(self.unflushed_push);
            }
            self.unflushed_push = 0;
        }
        // Shutdown kills every client: this client's own flag, not the
        // shared shutdown channel (whose read lock every connection's
        // check would bounce between cores).
        Ok(!client.info.killed.load(Ordering::Acquire))
    }

    /// Waits for input, a Pub/Sub message, CLIENT KILL, shutdown or the
    /// idle timeout.
    async fn wait(&mut self) -> Go {
        let (shared, client) = (self.shared, &mut *self.client);
        let info = client.info.clone();
        let idle = shared.config.timeout.load(Ordering::Relaxed);
        let idle_sleep = async {
            if idle == 0 || client.multi.is_some() || client.subscriptions > 0 {
                std::future::pending::<()>().await
            } else {
                tokio::time::sleep(Duration::from_secs(idle)).await
            }
        };
        let can_release = self.inbuf.capacity() > 0 && self.inbuf.is_empty();
        if can_release && !self.release_armed {
            self.release
                .as_mut()
                .reset(tokio::time::Instant::now() + IN_IDLE_RELEASE);
            self.release_armed = true;
            self.reads_at_arm = self.reads;
        }
        // `biased`: polled in this order instead of a random one (no random
        // number per wait); each wait ends at its first event, so none
        // starves the others.
        tokio::select! {
            biased;
            msg = next_message(&mut client.pubsub_rx) => {
                if let Some(msg) = msg {
                    let out = &mut self.out;
                    self.unflushed_push += write_message(out, msg);
                    // Batch what else is already queued into the same write,
                    // up to the size at which replies are flushed.
                    while out.len() < OUT_FLUSH {
                        let Some(m) = client.pubsub_rx.as_mut().and_then(|rx| rx.try_recv().ok()) else { break };
                        self.unflushed_push += write_message(out, m);
                    }
                }
                return Ok(true);
            }
            n = self.socket.read_buf(&mut self.inbuf) => {
                let n = n?;
                if n == 0 {
                    return Ok(false);
                }
                shared.stats.net_input_bytes.add(n as u64);
                shared.stats.reads.add(1);
                self.reads += 1;
                let held = self.inbuf.len() + held_input(&self.parser, client);
                if over_query_limit(shared, client, held) {
                    return Ok(false);
                }
            }
            // CLIENT KILL, a limit, or shutdown (which kills every client).
            _ = info.until_killed() => return Ok(false),
            _ = idle_sleep => return Ok(false),
            _ = &mut self.release, if can_release && self.release_armed => {
                self.release_armed = false;
                if self.reads != self.reads_at_arm {
                    // Input came meanwhile: not idle; the next wait re-arms.
                    return Ok(true);
                }
                // Idle: give the read buffer back (the next read allocates).
                self.inbuf = BytesMut::new();
                info.mem.qbuf_free.store(0, Ordering::Relaxed);
                return Ok(true);
            }
        }
        Ok(!info.killed.load(Ordering::Acquire))
    }
}

/// Waits for `wait`, unless the client is killed first (false); shutdown
/// kills every client.
async fn wait_or_close(wait: commands::WaitFuture, info: &ClientInfo) -> bool {
    tokio::select! {
        biased;
        _ = info.until_killed() => false,
        _ = wait => !info.killed.load(Ordering::Acquire),
    }
}

/// Waits for a reply produced elsewhere (the upstream tier, the cluster
/// master). Keeps reading meanwhile, within the query buffer limit, so a
/// disconnect is noticed; honours CLIENT KILL and shutdown; and, for a
/// blocking command, shows the client as blocked and honours CLIENT UNBLOCK.
/// Giving up drops `reply`, which cancels the request (a blocking pop sent
/// upstream closes its connection instead of popping for nobody). Returns
/// None when the connection must close.
async fn await_deferred(
    shared: &Shared,
    socket: &mut TcpStream,
    client: &mut ClientState,
    mut reply: commands::DeferredReply,
    inbuf: &mut BytesMut,
    held: usize,
) -> Option<bytes::Bytes> {
    let info = client.info.clone();
    let block = client.deferred_block.take();
    if block.is_some() {
        *info.unblock.lock() = None;
        info.meta.lock().blocked = true;
    }
    let result = loop {
        tokio::select! {
            b = &mut reply => break Some(b),
            n = socket.read_buf(inbuf) => match n {
                Ok(0) | Err(_) => break None,
                Ok(n) => {
                    shared.stats.net_input_bytes.add(n as u64);
                    if over_query_limit(shared, client, inbuf.len() + held) {
                        break None;
                    }
                }
            },
            _ = info.until_killed() => break None,
            _ = info.unblock_notify.notified(), if block.is_some() => {
                // A permit left from an earlier block carries no request.
                if let Some(error) = info.unblock.lock().take() {
                    let mut r = Reply::new(client.resp3);
                    if error {
                        r.error("UNBLOCKED client unblocked via CLIENT UNBLOCK");
                    } else if block == Some(true) {
                        r.null_array();
                    } else {
                        r.null();
                    }
                    break Some(r.buf.freeze());
                }
            }
        }
    };
    if block.is_some() {
        info.meta.lock().blocked = false;
    }
    result
}

/// Sends the client's batch of pipelined scripts to the script thread; its
/// replies join those in flight.
fn send_scripts(
    shared: &Arc<Shared>,
    client: &mut ClientState,
    pending: &mut Vec<commands::DeferredReply>,
) {
    if let Some(r) = commands::take_script_batch(shared, client) {
        pending.push(r);
    }
}

/// Most forwarded replies one connection keeps in flight.
const MAX_PENDING: usize = 1024;

/// Waits for the forwarded replies in flight and appends them in order
/// (the router keeps their upstream execution in order, see
/// `Router::route_pipelined`). Every future is polled in queue order on each
/// pass, outside tokio's cooperative budget.
async fn drain(pending: &mut Vec<commands::DeferredReply>, out: &mut Reply) {
    if pending.is_empty() {
        return;
    }
    let mut slots: Vec<MaybeDone<commands::DeferredReply>> =
        pending.drain(..).map(maybe_done).collect();
    tokio::task::unconstrained(std::future::poll_fn(|cx| {
        let mut done = true;
        for s in slots.iter_mut() {
            if Pin::new(s).poll(cx).is_pending() {
                done = false;
            }
        }
        if done {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }))
    .await;
    for s in slots.iter_mut() {
        if let Some(bytes) = Pin::new(s).take_output() {
            out.raw(&bytes);
        }
    }
}

async fn next_message(rx: &mut Option<mpsc::UnboundedReceiver<Message>>) -> Option<Message> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Encodes a Pub/Sub message for the client (RESP3 push or RESP2 array).
/// Encodes a Pub/Sub message into `out`; returns the bytes it counted
/// against the subscriber's output limit.
fn write_message(out: &mut Reply, msg: Message) -> usize {
    let size = msg.size();
    match msg {
        Message::Message { channel, payload } => {
            out.push(3);
            out.bulk(b"message");
            out.bulk(&channel);
            out.bulk(&payload);
        }
        Message::PMessage {
            pattern,
            channel,
            payload,
        } => {
            out.push(4);
            out.bulk(b"pmessage");
            out.bulk(&pattern);
            out.bulk(&channel);
            out.bulk(&payload);
        }
        Message::SMessage { channel, payload } => {
            out.push(3);
            out.bulk(b"smessage");
            out.bulk(&channel);
            out.bulk(&payload);
        }
        Message::Monitor(line) => out.raw(&line),
    }
    size
}

async fn flush(
    shared: &Shared,
    socket: &mut TcpStream,
    out: &mut Reply,
    info: &ClientInfo,
) -> std::io::Result<()> {
    if out.buf.is_empty() {
        return Ok(());
    }
    // A peer that stopped reading must not pin this task: CLIENT KILL and the
    // Pub/Sub output limit end the write.
    info.mem
        .reply_pending
        .store(out.buf.len() as u64, Ordering::Relaxed);
    info.mem
        .reply_cap
        .store(out.buf.capacity() as u64, Ordering::Relaxed);
    // `biased`: the write, which completes at once unless the peer's
    // window is full, is tried first (no kill future registered for it,
    // no random number).
    tokio::select! {
        biased;
        r = socket.write_all(&out.buf) => r?,
        _ = info.until_killed() => return Err(std::io::Error::other("client killed")),
    }
    info.mem.reply_pending.store(0, Ordering::Relaxed);
    if info.killed.load(Ordering::Acquire) {
        return Err(std::io::Error::other("client killed"));
    }
    shared.stats.net_output_bytes.add(out.buf.len() as u64);
    shared.stats.writes.add(1);
    out.buf.clear();
    Ok(())
}

/// Input a client holds besides its read buffer: the arguments read so far
/// of the request in progress, and the commands queued in its MULTI.
fn held_input(parser: &RequestParser, client: &ClientState) -> usize {
    parser.pending_bytes() + client.multi.as_ref().map_or(0, |_| client.multi_bytes)
}

/// `client-query-buffer-limit`, enforced in every state (reading, blocked,
/// waiting for a forwarded reply, inside MULTI): past it the client is
/// closed, as Redis does.
fn over_query_limit(shared: &Shared, client: &ClientState, held: usize) -> bool {
    let limit = shared
        .config
        .client_query_buffer_limit
        .load(Ordering::Relaxed);
    if held as u64 <= limit {
        return false;
    }
    warn!(
        client = client.id,
        addr = %client.info.addr,
        bytes = held,
        limit,
        "Closing client that reached max query buffer length"
    );
    true
}

/// Gives a large input buffer back between requests: after a big argument
/// (its buffer may pin the argument's allocation) or once it grew past
/// `IN_KEEP`. The bytes of a next request's first line, if any, are kept.
fn give_back_input(inbuf: &mut BytesMut, parser: &mut RequestParser) {
    if parser.idle() && (parser.take_big_arg() || inbuf.capacity() > IN_KEEP) {
        let mut fresh = BytesMut::with_capacity(IN_INITIAL.max(inbuf.len()));
        fresh.extend_from_slice(inbuf);
        *inbuf = fresh;
    }
}

/// Stores the connection's buffer sizes for CLIENT LIST and INFO.
fn publish_memory(
    info: &ClientInfo,
    inbuf: &BytesMut,
    parser: &RequestParser,
    client: &ClientState,
    out: &Reply,
) {
    let m = &info.mem;
    m.qbuf.store(inbuf.len() as u64, Ordering::Relaxed);
    m.qbuf_free
        .store((inbuf.capacity() - inbuf.len()) as u64, Ordering::Relaxed);
    m.argv
        .store(parser.pending_bytes() as u64, Ordering::Relaxed);
    let multi = client.multi.as_ref().map_or(0, |_| client.multi_bytes);
    m.multi.store(multi as u64, Ordering::Relaxed);
    m.reply_cap
        .store(out.buf.capacity() as u64, Ordering::Relaxed);
}

/// Parks the client on a blocking pop. Returns false when the connection must close.
async fn block(
    shared: &Arc<Shared>,
    socket: &mut TcpStream,
    client: &mut ClientState,
    req: BlockRequest,
    inbuf: &mut BytesMut,
    held: usize,
    out: &mut Reply,
) -> std::io::Result<bool> {
    let info = client.info.clone();
    // Clear any stale CLIENT UNBLOCK request before becoming visible as
    // blocked, so a request made from now on is never lost.
    *info.unblock.lock() = None;
    info.meta.lock().blocked = true;
    let waiter = shared
        .blocking
        .register(&shared.db, client.db, client.id, client.resp3, req);
    let sleep = waiter.deadline_reached();
    tokio::pin!(sleep);
    let mut keep = true;
    let mut unblock_error = false;
    loop {
        tokio::select! {
            _ = waiter.notify.notified() => break,
            _ = &mut sleep => break,
            _ = info.unblock_notify.notified() => {
                // A permit left over from an earlier, already finished block
                // carries no request: keep waiting.
                if let Some(e) = info.unblock.lock().take() {
                    unblock_error = e;
                    break;
                }
            }
            _ = info.until_killed() => { keep = false; break; }
            // Keep reading so a disconnect is noticed; pipelined commands
            // wait in the buffer, within the query buffer limit.
            n = socket.read_buf(inbuf) => {
                match n {
                    Ok(0) | Err(_) => { keep = false; break; }
                    Ok(_) => {
                        if over_query_limit(shared, client, inbuf.len() + held) {
                            keep = false;
                            break;
                        }
                    }
                }
            }
        }
    }
    shared.blocking.unregister(&shared.db, &waiter);
    info.meta.lock().blocked = false;
    match waiter.finish() {
        Some(reply) => out.raw(&reply),
        None if unblock_error => out.error("UNBLOCKED client unblocked via CLIENT UNBLOCK"),
        None => waiter.timeout_reply(out),
    }
    Ok(keep)
}
