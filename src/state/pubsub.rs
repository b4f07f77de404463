//! Pub/Sub routing: channel and pattern subscriptions, each subscriber with
//! its own queue drained by its connection task.
//!
//! Every queue is bounded by bytes like Redis's pubsub client output buffer
//! limit (hard 32 MB; soft 8 MB for 60 s): a subscriber over the limit is
//! disconnected instead of letting memory grow without bound; publishers
//! never wait for slow subscribers.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use parking_lot::RwLock;
use tokio::sync::mpsc;

use super::ClientInfo;
use crate::util::glob::glob_match;

pub const HARD_LIMIT: usize = 32 * 1024 * 1024;
pub const SOFT_LIMIT: usize = 8 * 1024 * 1024;
pub const SOFT_SECONDS: u64 = 60;

#[derive(Debug, Clone)]
pub enum Message {
    Message {
        channel: Bytes,
        payload: Bytes,
    },
    PMessage {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    /// A shard channel's message (SPUBLISH).
    SMessage {
        channel: Bytes,
        payload: Bytes,
    },
    /// A MONITOR line, `+` to `\r\n`.
    Monitor(Bytes),
}

impl Message {
    pub fn size(&self) -> usize {
        match self {
            Message::Message { channel, payload } | Message::SMessage { channel, payload } => {
                channel.len() + payload.len() + 48
            }
            Message::Monitor(line) => line.len(),
            Message::PMessage {
                pattern,
                channel,
                payload,
            } => pattern.len() + channel.len() + payload.len() + 64,
        }
    }
}

pub struct Subscriber {
    pub id: u64,
    tx: mpsc::UnboundedSender<Message>,
    /// Bytes queued and not yet written to the socket.
    pub queued: AtomicUsize,
    /// When the queue went over the soft limit (ms since server start; 0 = under).
    soft_since: AtomicU64,
    info: Arc<ClientInfo>,
}

impl Subscriber {
    pub fn new(info: Arc<ClientInfo>) -> (Arc<Subscriber>, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let s = Arc::new(Subscriber {
            id: info.id,
            tx,
            queued: AtomicUsize::new(0),
            soft_since: AtomicU64::new(0),
            info,
        });
        (s, rx)
    }

    /// The connection wrote `bytes` of messages to the socket.
    pub fn written(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Queues a message; false when the subscriber is (now) disconnected.
    pub fn deliver(&self, msg: Message) -> bool {
        static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        self.deliver_at(msg, EPOCH.get_or_init(Instant::now))
    }

    fn deliver_at(&self, msg: Message, epoch: &Instant) -> bool {
        if self.info.killed.load(Ordering::Acquire) {
            return false;
        }
        let size = msg.size();
        let queued = self.queued.load(Ordering::Acquire);
        if queued + size > HARD_LIMIT {
            tracing::warn!(
                client = self.id,
                queued,
                "pubsub client over the output buffer hard limit; disconnecting"
            );
            self.info.kill();
            return false;
        }
        if queued + size > SOFT_LIMIT {
            let now = epoch.elapsed().as_millis() as u64 + 1;
            let since = self.soft_since.load(Ordering::Acquire);
            if since == 0 {
                self.soft_since.store(now, Ordering::Release);
            } else if now - since > SOFT_SECONDS * 1000 {
                tracing::warn!(
                    client = self.id,
                    queued,
                    "pubsub client over the soft limit for 60s; disconnecting"
                );
                self.info.kill();
                return false;
            }
        } else {
            self.soft_since.store(0, Ordering::Release);
        }
        self.queued.fetch_add(size, Ordering::AcqRel);
        self.tx.send(msg).is_ok()
    }
}

#[derive(Default)]
struct Inner {
    channels: ahash::HashMap<Bytes, Vec<Arc<Subscriber>>>,
    patterns: ahash::HashMap<Bytes, Vec<Arc<Subscriber>>>,
    /// Shard channels (SSUBSCRIBE).
    shard: ahash::HashMap<Bytes, Vec<Arc<Subscriber>>>,
}

pub struct PubSub {
    inner: RwLock<Inner>,
    epoch: Instant,
}

impl Default for PubSub {
    fn default() -> Self {
        PubSub {
            inner: RwLock::new(Inner::default()),
            epoch: Instant::now(),
        }
    }
}

fn add(map: &mut ahash::HashMap<Bytes, Vec<Arc<Subscriber>>>, key: &Bytes, sub: &Arc<Subscriber>) {
    let v = map.entry(key.clone()).or_default();
    if !v.iter().any(|s| s.id == sub.id) {
        v.push(sub.clone());
    }
}

fn remove(map: &mut ahash::HashMap<Bytes, Vec<Arc<Subscriber>>>, key: &Bytes, id: u64) {
    if let Some(v) = map.get_mut(key) {
        v.retain(|s| s.id != id);
        if v.is_empty() {
            map.remove(key);
        }
    }
}

impl PubSub {
    pub fn subscribe(&self, channel: &Bytes, sub: &Arc<Subscriber>) {
        add(&mut self.inner.write().channels, channel, sub);
    }

    pub fn unsubscribe(&self, channel: &Bytes, id: u64) {
        remove(&mut self.inner.write().channels, channel, id);
    }

    pub fn psubscribe(&self, pattern: &Bytes, sub: &Arc<Subscriber>) {
        add(&mut self.inner.write().patterns, pattern, sub);
    }

    pub fn punsubscribe(&self, pattern: &Bytes, id: u64) {
        remove(&mut self.inner.write().patterns, pattern, id);
    }

    pub fn ssubscribe(&self, channel: &Bytes, sub: &Arc<Subscriber>) {
        add(&mut self.inner.write().shard, channel, sub);
    }

    pub fn sunsubscribe(&self, channel: &Bytes, id: u64) {
        remove(&mut self.inner.write().shard, channel, id);
    }

    /// Delivers a shard channel's message; returns how many subscribers received it.
    pub fn spublish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let inner = self.inner.read();
        let Some(subs) = inner.shard.get(channel) else {
            return 0;
        };
        let channel = Bytes::copy_from_slice(channel);
        let payload = Bytes::copy_from_slice(payload);
        subs.iter()
            .filter(|s| {
                s.deliver_at(
                    Message::SMessage {
                        channel: channel.clone(),
                        payload: payload.clone(),
                    },
                    &self.epoch,
                )
            })
            .count()
    }

    /// Active shard channels, optionally filtered by a glob pattern.
    pub fn shard_channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = self.inner.read();
        inner
            .shard
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn shard_numsub(&self, channel: &[u8]) -> usize {
        self.inner.read().shard.get(channel).map_or(0, |v| v.len())
    }

    /// Delivers a message; returns how many subscriptions received it.
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        let inner = self.inner.read();
        let mut n = 0;
        let channel_b = Bytes::copy_from_slice(channel);
        let payload_b = Bytes::copy_from_slice(payload);
        if let Some(subs) = inner.channels.get(channel) {
            for s in subs {
                let msg = Message::Message {
                    channel: channel_b.clone(),
                    payload: payload_b.clone(),
                };
                n += s.deliver_at(msg, &self.epoch) as usize;
            }
        }
        for (pat, subs) in inner.patterns.iter() {
            if glob_match(pat, channel, false) {
                for s in subs {
                    let msg = Message::PMessage {
                        pattern: pat.clone(),
                        channel: channel_b.clone(),
                        payload: payload_b.clone(),
                    };
                    n += s.deliver_at(msg, &self.epoch) as usize;
                }
            }
        }
        n
    }

    /// Active channels, optionally filtered by a glob pattern.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Bytes> {
        let inner = self.inner.read();
        inner
            .channels
            .keys()
            .filter(|c| pattern.is_none_or(|p| glob_match(p, c, false)))
            .cloned()
            .collect()
    }

    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.inner
            .read()
            .channels
            .get(channel)
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub fn numpat(&self) -> usize {
        self.inner.read().patterns.len()
    }

    pub fn has_subscribers(&self) -> bool {
        let i = self.inner.read();
        !i.channels.is_empty() || !i.patterns.is_empty() || !i.shard.is_empty()
    }

    /// (channels, patterns, shard channels) with subscribers, for INFO.
    pub fn counts(&self) -> (usize, usize, usize) {
        let i = self.inner.read();
        (i.channels.len(), i.patterns.len(), i.shard.len())
    }
}
