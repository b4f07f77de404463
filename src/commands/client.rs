//! A connection's session state as commands see it: RESP version,
//! authentication, the MULTI queue, watched keys, subscriptions, CLIENT
//! REPLY. Only the connection's own task touches it.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::Command;
use crate::state::pubsub::{Message, Subscriber};
use crate::state::ClientInfo;

/// A connection's own state; only its task touches it.
pub struct ClientState {
    pub id: u64,
    pub info: Arc<ClientInfo>,
    pub resp3: bool,
    pub authenticated: bool,
    /// Commands queued since MULTI.
    pub multi: Option<Vec<(&'static Command, Vec<Bytes>)>>,
    /// Set by `execute` when it hands a blocking command to a router (tier
    /// or cluster master): the connection then shows the client as blocked
    /// and honours CLIENT UNBLOCK while it waits. The value says whether
    /// the command's timeout reply is a null array (BLPOP) or a null bulk
    /// (BLMOVE, BRPOPLPUSH).
    pub deferred_block: Option<bool>,
    /// Argument bytes of the commands queued in `multi` (valid while it is Some).
    pub multi_bytes: usize,
    /// An error happened while queueing: EXEC must abort.
    pub multi_dirty: bool,
    /// Watched keys, each with whether it was live when watched.
    pub watched: Vec<(Bytes, bool)>,
    pub watch_dirty: Arc<AtomicBool>,
    pub close_after_reply: bool,
    pub last_command: &'static str,
    /// Number of channel + pattern subscriptions (Pub/Sub).
    pub subscriptions: usize,
    pub channels: Vec<Bytes>,
    pub patterns: Vec<Bytes>,
    /// This client's Pub/Sub queue, created on its first subscription.
    pub subscriber: Option<Arc<Subscriber>>,
    pub pubsub_rx: Option<mpsc::UnboundedReceiver<Message>>,
    /// CLIENT REPLY OFF: replies are dropped (push messages still flow).
    pub reply_off: bool,
    /// CLIENT REPLY SKIP was just run: drop its reply and the next command's.
    pub reply_skip_set: bool,
    /// Drop the reply of the command being run.
    pub reply_skip: bool,
    /// CLIENT NO-TOUCH ON: reads leave the keys' LRU/LFU data as it is
    /// (except TOUCH).
    pub no_touch: bool,
    /// Push data a command produced while its replies are suppressed (Pub/Sub
    /// confirmations are pushes and bypass CLIENT REPLY OFF/SKIP, as in Redis).
    pub pending_push: Vec<u8>,
    /// The server was out of memory when the script being started was
    /// (a script's first write then fails, as in Redis).
    pub oom_at_start: bool,
    /// This is a script's own client (Redis's CLIENT_SCRIPT).
    pub in_script: bool,
    /// Scripts of the pipeline being read, not yet sent to the script
    /// thread (see `commands::take_script_batch`).
    pub script_batch: Vec<ScriptCall>,
}

/// A script command waiting for the script thread: the command, its
/// arguments, and whether the server was out of memory when it arrived.
pub type ScriptCall = (&'static Command, Vec<Bytes>, bool);

impl ClientState {
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        ClientState {
            id: info.id,
            info,
            resp3: false,
            authenticated,
            multi: None,
            deferred_block: None,
            multi_bytes: 0,
            multi_dirty: false,
            watched: Vec::new(),
            watch_dirty: Arc::new(AtomicBool::new(false)),
            close_after_reply: false,
            last_command: "",
            subscriptions: 0,
            channels: Vec::new(),
            patterns: Vec::new(),
            subscriber: None,
            pubsub_rx: None,
            reply_off: false,
            reply_skip_set: false,
            reply_skip: false,
            no_touch: false,
            pending_push: Vec::new(),
            oom_at_start: false,
            in_script: false,
            script_batch: Vec::new(),
        }
    }

    /// Whether the reply of the command being run is dropped (CLIENT REPLY).
    pub fn replies_suppressed(&self) -> bool {
        self.reply_off || self.reply_skip || self.reply_skip_set
    }

    /// RESP2 clients with subscriptions may only run Pub/Sub commands.
    pub fn in_pubsub_context(&self) -> bool {
        !self.resp3 && self.subscriptions > 0
    }
}
