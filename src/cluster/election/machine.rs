//! The election's decisions, free of I/O: [`ElectionCore`] takes events
//! (with the local time they happened at) and returns the actions the etcd
//! driver in `election.rs` performs, as raft-rs's core does for raft.
//!
//! What it decides: whether the lease is still valid by this node's own
//! clock (and so whether the node may act as master), when to send a
//! keep-alive and when etcd counts as gone, when to campaign, whether a won
//! election is kept or handed on (incomplete keyspace), which observed
//! leader is news and which is stale, when to step down, what to resign on
//! shutdown, and whether to start another session.
//!
//! `K` is the campaign key the driver gets back from etcd (`LeaderKey`); the
//! core only hands it back in the actions that need it.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::cluster::Leader;

/// Most times in a row a node with an incomplete keyspace hands a won
/// election to another candidate.
pub const MAX_YIELDS: u32 = 2;
/// Most keep-alives sent and not answered before etcd counts as gone.
pub const MAX_UNANSWERED_KEEPALIVES: usize = 16;
/// How long a node that may not campaign yet waits before looking again
/// (unless it completes a sync meanwhile).
pub const ELIGIBILITY_PAUSE: Duration = Duration::from_secs(1);
/// Pause between the end of a session and the next one.
pub const SESSION_RETRY: Duration = Duration::from_millis(300);

/// What happened, as the driver saw it.
#[derive(Debug)]
pub enum Event<K> {
    /// etcd granted the session's lease; the grant request was sent at `sent`.
    LeaseGranted { sent: Instant },
    /// The node registered itself under the lease. `synced`: it completed
    /// a sync with a master before (then it may campaign at once).
    Registered { synced: bool },
    /// The keep-alive timer fired (every third of the TTL).
    Tick,
    /// etcd answered the oldest unanswered keep-alive; `ttl` is the lease's
    /// remaining time by etcd (seconds; 0 or less: expired).
    KeepAliveAnswered { ttl: i64 },
    /// Membership: the listing at the session's start (replaces the table).
    MembersListed(Vec<(String, String)>),
    /// Membership: changes seen by the watch, in order.
    MembersChanged(Vec<MemberChange>),
    /// The election's observed leader: its campaign value and the create
    /// revision of its key (the epoch of its term).
    LeaderObserved { value: Vec<u8>, rev: u64 },
    /// The node completed a sync with a master.
    Synced,
    /// The answer to [`Action::ProbeLeader`].
    LeaderProbed(Probe),
    /// [`Action::Pause`] is over.
    PauseOver,
    /// The campaign returned: this node leads with `key`, whose create
    /// revision is `rev`. `diverged`: its keyspace is incomplete now.
    CampaignWon { key: K, rev: u64, diverged: bool },
    /// The answer to [`Action::CountRivals`] (0 when etcd did not answer).
    RivalsCounted(usize),
    /// [`Action::Yield`] is done (whatever etcd answered).
    Yielded,
    /// [`Action::BecomeMaster`] is done.
    BecameMaster,
    /// The node is shutting down: hand over and leave.
    ShutdownRequested,
    /// The session is over. `clean`: it ended by [`Action::Shutdown`];
    /// `shutting_down`: the node is shutting down.
    SessionEnded { clean: bool, shutting_down: bool },
}

/// A membership change seen by the watch on `/<name>/nodes/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    Put { id: String, addr: String },
    Deleted { id: String },
}

/// Whether the election has a leader, as far as etcd answered in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Leader,
    /// No leader (etcd answers "election: no leader" with an error).
    NoLeader,
    /// etcd did not answer in time.
    Unknown,
}

/// What the driver is to do, in order.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<K> {
    /// Writes may be accepted as master until `until` (never lowers it).
    ExtendLease { until: Instant },
    /// No lease any more: no writes as master.
    ClearLease,
    /// Send a keep-alive for the lease.
    SendKeepAlive,
    /// The membership table is now this.
    SetMembers(BTreeMap<String, String>),
    /// Announce this leader (not stale; its epoch is the highest seen).
    PublishLeader(Leader),
    /// Stop acting as master at once.
    StepDown(&'static str),
    /// Ask etcd whether the election has a leader (answer: `LeaderProbed`).
    ProbeLeader,
    /// Wait this long, unless the node syncs meanwhile (answer: `PauseOver`).
    Pause(Duration),
    /// Campaign (answer: `CampaignWon`, once this node leads).
    Campaign,
    /// Count the campaign keys other than `key` (answer: `RivalsCounted`).
    CountRivals { key: K },
    /// Resign `key` and count the yield in INFO (answer: `Yielded`).
    Yield { key: K },
    /// Stop following and accept writes as master of `epoch` (answer: `BecameMaster`).
    BecomeMaster { epoch: u64 },
    /// End the session for shutdown: resign `resign` (if any), revoke the lease.
    Shutdown { resign: Option<K> },
    /// End the session with this error (the lease is revoked, best effort).
    Fail(String),
    /// Start the next session after this pause.
    Retry { after: Duration },
    /// No more sessions.
    Stop,
}

/// Where a session's campaign stands.
#[derive(Debug)]
enum Phase<K> {
    /// Lease granted, not registered yet.
    Starting,
    /// Not synced: asking whether there is a leader at all.
    Probing,
    /// Not synced and a leader exists: waiting before looking again.
    Pausing,
    Campaigning,
    /// Won with an incomplete keyspace: looking for another candidate.
    CountingRivals {
        key: K,
        rev: u64,
    },
    /// Handing a won election to another candidate.
    Yielding,
    /// Won and kept: master of `epoch` (once `BecameMaster`) until the
    /// session ends; `key` is resigned on shutdown.
    Leading {
        key: K,
        epoch: u64,
    },
    /// The session ended (an end action was returned).
    Ended,
}

/// One session's state; a new session starts from scratch.
#[derive(Debug)]
struct Session<K> {
    /// The lease's end by this node's clock, with a margin.
    lease_until: Option<Instant>,
    /// Send times of the keep-alives etcd has not answered, oldest first.
    unanswered: VecDeque<Instant>,
    synced: bool,
    phase: Phase<K>,
    /// Elections handed on in a row, and when the last one was.
    yielded: u32,
    last_yield: Option<Instant>,
}

impl<K> Session<K> {
    fn new() -> Self {
        Session {
            lease_until: None,
            unanswered: VecDeque::new(),
            synced: false,
            phase: Phase::Starting,
            yielded: 0,
            last_yield: None,
        }
    }
}

/// The election state of one node, across etcd sessions.
#[derive(Debug)]
pub struct ElectionCore<K> {
    node_id: String,
    ttl: Duration,
    /// The highest leader epoch seen (older announcements are stale).
    known_epoch: u64,
    /// This node acts as master of this epoch.
    master: Option<u64>,
    members: BTreeMap<String, String>,
    session: Session<K>,
}

impl<K: Clone> ElectionCore<K> {
    pub fn new(node_id: String, ttl: Duration) -> Self {
        ElectionCore {
            node_id,
            ttl,
            known_epoch: 0,
            master: None,
            members: BTreeMap::new(),
            session: Session::new(),
        }
    }

    /// The epoch this node acts as master of, if it does.
    #[cfg(test)]
    pub fn master_epoch(&self) -> Option<u64> {
        self.master
    }

    /// The highest leader epoch seen.
    #[cfg(test)]
    pub fn known_epoch(&self) -> u64 {
        self.known_epoch
    }

    /// Whether the lease is valid at `now` by this node's clock.
    pub fn lease_valid(&self, now: Instant) -> bool {
        self.session.lease_until.is_some_and(|until| now < until)
    }

    /// Takes `event`, which happened at `now`; returns what to do, in order.
    pub fn handle(&mut self, now: Instant, event: Event<K>) -> Vec<Action<K>> {
        if matches!(self.session.phase, Phase::Ended)
            && !matches!(event, Event::SessionEnded { .. })
        {
            return Vec::new(); // the driver stops feeding a session it ends
        }
        match event {
            Event::LeaseGranted { sent } => self.lease_confirmed(sent).into_iter().collect(),
            Event::Registered { synced } => {
                self.session.synced = synced;
                vec![self.next_campaign_step()]
            }
            Event::Tick => self.tick(now),
            Event::KeepAliveAnswered { ttl } => self.keep_alive_answered(ttl),
            Event::MembersListed(list) => {
                self.members = list.into_iter().collect();
                vec![Action::SetMembers(self.members.clone())]
            }
            Event::MembersChanged(changes) => {
                for change in changes {
                    match change {
                        MemberChange::Put { id, addr } => self.members.insert(id, addr),
                        MemberChange::Deleted { id } => self.members.remove(&id),
                    };
                }
                vec![Action::SetMembers(self.members.clone())]
            }
            Event::LeaderObserved { value, rev } => self.leader_observed(&value, rev),
            Event::Synced => {
                self.session.synced = true;
                match self.session.phase {
                    Phase::Pausing => vec![self.next_campaign_step()],
                    _ => Vec::new(),
                }
            }
            Event::LeaderProbed(probe) => match self.session.phase {
                Phase::Probing if probe == Probe::NoLeader || self.session.synced => {
                    self.session.phase = Phase::Campaigning;
                    vec![Action::Campaign]
                }
                Phase::Probing => {
                    self.session.phase = Phase::Pausing;
                    vec![Action::Pause(ELIGIBILITY_PAUSE)]
                }
                _ => Vec::new(),
            },
            Event::PauseOver => match self.session.phase {
                Phase::Pausing => vec![self.next_campaign_step()],
                _ => Vec::new(),
            },
            Event::CampaignWon { key, rev, diverged } => self.campaign_won(now, key, rev, diverged),
            Event::RivalsCounted(others) => self.rivals_counted(now, others),
            Event::Yielded => match self.session.phase {
                Phase::Yielding => {
                    self.session.yielded += 1;
                    self.session.last_yield = Some(now);
                    vec![self.next_campaign_step()]
                }
                _ => Vec::new(),
            },
            Event::BecameMaster => {
                if let Phase::Leading { epoch, .. } = self.session.phase {
                    self.master = Some(epoch);
                }
                Vec::new()
            }
            Event::ShutdownRequested => {
                let phase = std::mem::replace(&mut self.session.phase, Phase::Ended);
                let resign = match phase {
                    Phase::Leading { key, .. } => Some(key),
                    _ => None,
                };
                vec![Action::Shutdown { resign }]
            }
            Event::SessionEnded {
                clean,
                shutting_down,
            } => {
                self.session = Session::new();
                self.master = None;
                let next = if clean || shutting_down {
                    Action::Stop
                } else {
                    Action::Retry {
                        after: SESSION_RETRY,
                    }
                };
                vec![
                    Action::StepDown("etcd session ended"),
                    Action::ClearLease,
                    next,
                ]
            }
        }
    }

    /// Ends the session with `why`.
    fn fail(&mut self, why: &str) -> Vec<Action<K>> {
        self.session.phase = Phase::Ended;
        vec![Action::Fail(why.to_string())]
    }

    /// etcd acknowledged a request sent at `sent` (a grant or keep-alive):
    /// the lease lasts at least TTL after it, so fence a little before that
    /// (clock-rate margin). Returns the new fence if it moved.
    fn lease_confirmed(&mut self, sent: Instant) -> Option<Action<K>> {
        let margin = (self.ttl / 20).max(Duration::from_millis(50));
        let until = sent + self.ttl.saturating_sub(margin);
        if self.session.lease_until.is_some_and(|u| u >= until) {
            return None;
        }
        self.session.lease_until = Some(until);
        Some(Action::ExtendLease { until })
    }

    fn tick(&mut self, now: Instant) -> Vec<Action<K>> {
        if !self.lease_valid(now) {
            return self.fail("lease expired (local clock)");
        }
        if self.session.unanswered.len() > MAX_UNANSWERED_KEEPALIVES {
            return self.fail("etcd does not answer keep-alives");
        }
        self.session.unanswered.push_back(now);
        vec![Action::SendKeepAlive]
    }

    fn keep_alive_answered(&mut self, ttl: i64) -> Vec<Action<K>> {
        let sent = self.session.unanswered.pop_front();
        if ttl <= 0 {
            return self.fail("lease expired at etcd");
        }
        sent.and_then(|s| self.lease_confirmed(s))
            .into_iter()
            .collect()
    }

    fn leader_observed(&mut self, value: &[u8], rev: u64) -> Vec<Action<K>> {
        let Some(leader) = Leader::parse(value, rev) else {
            return Vec::new();
        };
        info!(leader = %leader.node_id, epoch = rev, "leader observed");
        if leader.epoch < self.known_epoch {
            return Vec::new(); // a stale announcement
        }
        self.known_epoch = leader.epoch;
        let mut actions = Vec::new();
        if let Some(mine) = self.master {
            if leader.node_id != self.node_id || leader.epoch > mine {
                self.master = None;
                actions.push(Action::StepDown("another leader was elected"));
            }
        }
        actions.push(Action::PublishLeader(leader));
        actions
    }

    /// A node campaigns once it completed a sync with a master, or when
    /// there is no leader at all (cluster start): a fresh node joining a
    /// running cluster cannot win with an empty keyspace.
    fn next_campaign_step(&mut self) -> Action<K> {
        if self.session.synced {
            self.session.phase = Phase::Campaigning;
            Action::Campaign
        } else {
            self.session.phase = Phase::Probing;
            Action::ProbeLeader
        }
    }

    /// A node whose keyspace is incomplete (a full sync cut short by the
    /// old master's death) must not become the source of truth while a
    /// complete one waits: it hands the term to the next candidate and
    /// campaigns again behind it (at most [`MAX_YIELDS`] times in a row,
    /// so that two incomplete nodes do not pass it back and forth forever).
    fn campaign_won(&mut self, now: Instant, key: K, rev: u64, diverged: bool) -> Vec<Action<K>> {
        if !matches!(self.session.phase, Phase::Campaigning) {
            return Vec::new();
        }
        let s = &mut self.session;
        if s.last_yield
            .is_some_and(|t| now.saturating_duration_since(t) > self.ttl * 10)
        {
            s.yielded = 0;
        }
        if s.yielded < MAX_YIELDS && diverged {
            s.phase = Phase::CountingRivals {
                key: key.clone(),
                rev,
            };
            return vec![Action::CountRivals { key }];
        }
        self.lead(now, key, rev)
    }

    fn rivals_counted(&mut self, now: Instant, others: usize) -> Vec<Action<K>> {
        let phase = std::mem::replace(&mut self.session.phase, Phase::Yielding);
        let Phase::CountingRivals { key, rev } = phase else {
            self.session.phase = phase; // not counting: nothing asked for this
            return Vec::new();
        };
        if others > 0 {
            warn!(
                others,
                "won the election with an incomplete keyspace; handing it to another candidate"
            );
            return vec![Action::Yield { key }];
        }
        self.lead(now, key, rev)
    }

    /// Keeps a won election: the term's epoch is the campaign key's create
    /// revision. A lease that lapsed meanwhile (by the local clock) may
    /// already be gone at etcd, and another node elected: end the session.
    fn lead(&mut self, now: Instant, key: K, rev: u64) -> Vec<Action<K>> {
        self.session.phase = Phase::Leading { key, epoch: rev };
        if !self.lease_valid(now) {
            return self.fail("won the election with an expired lease");
        }
        self.known_epoch = self.known_epoch.max(rev);
        vec![Action::BecomeMaster { epoch: rev }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(3);
    /// TTL minus the fencing margin (TTL / 20 = 150 ms).
    const FENCE: Duration = Duration::from_millis(2850);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A node "me" and a clock it is driven by; campaign keys are strings.
    struct Node {
        core: ElectionCore<&'static str>,
        t0: Instant,
    }

    impl Node {
        fn new() -> Node {
            Node {
                core: ElectionCore::new("me".into(), TTL),
                t0: Instant::now(),
            }
        }

        fn at(&mut self, t: Duration, ev: Event<&'static str>) -> Vec<Action<&'static str>> {
            self.core.handle(self.t0 + t, ev)
        }

        /// Lease granted (sent at 0) and registered, at 10 ms.
        fn start(&mut self, synced: bool) -> Vec<Action<&'static str>> {
            let granted = self.at(ms(10), Event::LeaseGranted { sent: self.t0 });
            assert_eq!(
                granted,
                vec![Action::ExtendLease {
                    until: self.t0 + FENCE
                }]
            );
            self.at(ms(10), Event::Registered { synced })
        }

        /// A synced node that campaigns and wins `rev` with key "k".
        fn master_of(rev: u64) -> Node {
            let mut n = Node::new();
            assert_eq!(n.start(true), vec![Action::Campaign]);
            let won = Event::CampaignWon {
                key: "k",
                rev,
                diverged: false,
            };
            assert_eq!(n.at(ms(20), won), vec![Action::BecomeMaster { epoch: rev }]);
            assert!(n.at(ms(30), Event::BecameMaster).is_empty());
            assert_eq!(n.core.master_epoch(), Some(rev));
            n
        }
    }

    fn leader(id: &str, rev: u64) -> Event<&'static str> {
        Event::LeaderObserved {
            value: Leader::value(id, &format!("{id}:7000"), &format!("{id}:6379")).into_bytes(),
            rev,
        }
    }

    fn published(id: &str, epoch: u64) -> Action<&'static str> {
        Action::PublishLeader(Leader {
            node_id: id.into(),
            grpc: format!("{id}:7000"),
            addr: format!("{id}:6379"),
            epoch,
        })
    }

    #[test]
    fn a_synced_node_campaigns_and_a_won_election_makes_it_master_with_the_key_revision() {
        let n = Node::master_of(42);
        assert_eq!(n.core.known_epoch(), 42);
    }

    #[test]
    fn a_fresh_node_campaigns_only_when_there_is_no_leader_or_once_synced() {
        let mut n = Node::new();
        assert_eq!(n.start(false), vec![Action::ProbeLeader]);
        // A leader exists (or etcd did not say): wait, then ask again.
        assert_eq!(
            n.at(ms(20), Event::LeaderProbed(Probe::Leader)),
            vec![Action::Pause(ELIGIBILITY_PAUSE)]
        );
        assert_eq!(n.at(ms(1020), Event::PauseOver), vec![Action::ProbeLeader]);
        assert_eq!(
            n.at(ms(1030), Event::LeaderProbed(Probe::Unknown)),
            vec![Action::Pause(ELIGIBILITY_PAUSE)]
        );
        // Completing a sync ends the pause at once.
        assert_eq!(n.at(ms(1500), Event::Synced), vec![Action::Campaign]);
        // A late PauseOver (the pause was replaced) asks for nothing.
        assert!(n.at(ms(2030), Event::PauseOver).is_empty());

        // No leader at all (cluster start): campaign without a sync.
        let mut n = Node::new();
        assert_eq!(n.start(false), vec![Action::ProbeLeader]);
        assert_eq!(
            n.at(ms(20), Event::LeaderProbed(Probe::NoLeader)),
            vec![Action::Campaign]
        );
    }

    #[test]
    fn a_sync_completed_during_a_probe_lets_the_node_campaign_when_it_answers() {
        let mut n = Node::new();
        assert_eq!(n.start(false), vec![Action::ProbeLeader]);
        assert!(n.at(ms(15), Event::Synced).is_empty());
        assert_eq!(
            n.at(ms(20), Event::LeaderProbed(Probe::Leader)),
            vec![Action::Campaign]
        );
    }

    #[test]
    fn keep_alives_extend_the_lease_from_their_send_time_never_back() {
        let mut n = Node::new();
        n.start(true);
        assert_eq!(n.at(ms(1000), Event::Tick), vec![Action::SendKeepAlive]);
        assert_eq!(n.at(ms(2000), Event::Tick), vec![Action::SendKeepAlive]);
        // Answers come in order; each extends from its own send time.
        assert_eq!(
            n.at(ms(2500), Event::KeepAliveAnswered { ttl: 3 }),
            vec![Action::ExtendLease {
                until: n.t0 + ms(1000) + FENCE
            }]
        );
        assert_eq!(
            n.at(ms(2600), Event::KeepAliveAnswered { ttl: 3 }),
            vec![Action::ExtendLease {
                until: n.t0 + ms(2000) + FENCE
            }]
        );
        // An answer with nothing unanswered (or older) does not move it.
        assert!(n
            .at(ms(2700), Event::KeepAliveAnswered { ttl: 3 })
            .is_empty());
        assert!(n.core.lease_valid(n.t0 + ms(2000) + FENCE - ms(1)));
        assert!(!n.core.lease_valid(n.t0 + ms(2000) + FENCE));
    }

    #[test]
    fn a_lease_lapsed_by_the_local_clock_ends_the_term_before_etcd_says_so() {
        let mut n = Node::master_of(7);
        // etcd is silent (a pause, a partition): keep-alives go unanswered.
        assert_eq!(n.at(ms(1000), Event::Tick), vec![Action::SendKeepAlive]);
        assert_eq!(n.at(ms(2000), Event::Tick), vec![Action::SendKeepAlive]);
        assert!(n.core.lease_valid(n.t0 + FENCE - ms(1)));
        // The next tick is past the fence: the session ends, etcd never
        // having said the lease expired (it does so only TTL after the
        // last keep-alive it received, later than this fence).
        assert_eq!(
            n.at(FENCE, Event::Tick),
            vec![Action::Fail("lease expired (local clock)".into())]
        );
        // A late answer is ignored: the session is over.
        assert!(n
            .at(FENCE + ms(1), Event::KeepAliveAnswered { ttl: 3 })
            .is_empty());
        let ended = Event::SessionEnded {
            clean: false,
            shutting_down: false,
        };
        assert_eq!(
            n.at(FENCE + ms(600), ended),
            vec![
                Action::StepDown("etcd session ended"),
                Action::ClearLease,
                Action::Retry {
                    after: SESSION_RETRY
                },
            ]
        );
        assert_eq!(n.core.master_epoch(), None);
        assert!(!n.core.lease_valid(n.t0 + ms(1)));
    }

    #[test]
    fn etcd_expiring_the_lease_or_not_answering_ends_the_session() {
        let mut n = Node::new();
        n.start(true);
        assert_eq!(n.at(ms(1000), Event::Tick), vec![Action::SendKeepAlive]);
        assert_eq!(
            n.at(ms(1100), Event::KeepAliveAnswered { ttl: 0 }),
            vec![Action::Fail("lease expired at etcd".into())]
        );

        // Answers that never come, while the lease is still extended by
        // others: after more than MAX_UNANSWERED_KEEPALIVES, give up.
        let mut n = Node::new();
        n.start(true);
        let mut t = ms(100);
        for _ in 0..=MAX_UNANSWERED_KEEPALIVES {
            assert_eq!(n.at(t, Event::Tick), vec![Action::SendKeepAlive]);
            t += ms(100);
        }
        assert_eq!(
            n.at(t, Event::Tick),
            vec![Action::Fail("etcd does not answer keep-alives".into())]
        );
    }

    #[test]
    fn a_won_election_with_a_lapsed_lease_ends_the_session_instead_of_ruling() {
        let mut n = Node::new();
        assert_eq!(n.start(true), vec![Action::Campaign]);
        let won = Event::CampaignWon {
            key: "k",
            rev: 9,
            diverged: false,
        };
        assert_eq!(
            n.at(FENCE + ms(1), won),
            vec![Action::Fail(
                "won the election with an expired lease".into()
            )]
        );
        assert_eq!(n.core.master_epoch(), None);
    }

    #[test]
    fn a_diverged_winner_hands_the_term_on_at_most_twice_in_a_row() {
        let mut n = Node::new();
        assert_eq!(n.start(true), vec![Action::Campaign]);
        let won = |key| Event::CampaignWon {
            key,
            rev: 5,
            diverged: true,
        };
        for (i, key) in ["k1", "k2"].into_iter().enumerate() {
            let t = ms(100 * (i as u64 + 1));
            assert_eq!(n.at(t, won(key)), vec![Action::CountRivals { key }]);
            assert_eq!(
                n.at(t, Event::RivalsCounted(1)),
                vec![Action::Yield { key }]
            );
            assert_eq!(n.at(t, Event::Yielded), vec![Action::Campaign]);
        }
        // The third win in a row is kept, complete keyspace or not.
        assert_eq!(
            n.at(ms(300), won("k3")),
            vec![Action::BecomeMaster { epoch: 5 }]
        );
        // Shutdown resigns the key it kept, not a yielded one.
        n.at(ms(310), Event::BecameMaster);
        assert_eq!(
            n.at(ms(400), Event::ShutdownRequested),
            vec![Action::Shutdown { resign: Some("k3") }]
        );
    }

    #[test]
    fn a_diverged_winner_keeps_the_term_without_rivals_and_yields_again_after_ten_ttls() {
        let mut n = Node::new();
        n.start(true);
        let won = |key| Event::CampaignWon {
            key,
            rev: 5,
            diverged: true,
        };
        // No other candidate: keep it.
        assert_eq!(
            n.at(ms(20), won("a")),
            vec![Action::CountRivals { key: "a" }]
        );
        assert_eq!(
            n.at(ms(30), Event::RivalsCounted(0)),
            vec![Action::BecomeMaster { epoch: 5 }]
        );

        // Two yields, then a long quiet time: the count starts over. The
        // lease is kept alive by keep-alives meanwhile.
        let mut n = Node::new();
        n.start(true);
        for key in ["b", "c"] {
            n.at(ms(20), won(key));
            n.at(ms(20), Event::RivalsCounted(2));
            n.at(ms(20), Event::Yielded);
        }
        let later = TTL * 10 + ms(100);
        let mut t = ms(1000);
        while t < later {
            assert_eq!(n.at(t, Event::Tick), vec![Action::SendKeepAlive]);
            n.at(t + ms(10), Event::KeepAliveAnswered { ttl: 3 });
            t += ms(1000);
        }
        assert_eq!(
            n.at(later, won("d")),
            vec![Action::CountRivals { key: "d" }]
        );
    }

    #[test]
    fn a_complete_winner_never_yields() {
        let mut n = Node::new();
        n.start(true);
        let won = Event::CampaignWon {
            key: "k",
            rev: 3,
            diverged: false,
        };
        assert_eq!(n.at(ms(20), won), vec![Action::BecomeMaster { epoch: 3 }]);
    }

    #[test]
    fn observed_leaders_are_published_and_stale_epochs_ignored() {
        let mut n = Node::new();
        n.start(false);
        assert_eq!(n.at(ms(20), leader("a", 10)), vec![published("a", 10)]);
        assert_eq!(n.core.known_epoch(), 10);
        // An older term announced late: ignored.
        assert!(n.at(ms(30), leader("b", 9)).is_empty());
        assert_eq!(n.core.known_epoch(), 10);
        // A new term: published.
        assert_eq!(n.at(ms(40), leader("b", 12)), vec![published("b", 12)]);
        // Garbage in the campaign value: ignored.
        let garbage = Event::LeaderObserved {
            value: b"no newlines".to_vec(),
            rev: 20,
        };
        assert!(n.at(ms(50), garbage).is_empty());
        assert_eq!(n.core.known_epoch(), 12);
    }

    #[test]
    fn a_master_steps_down_when_another_leader_is_observed() {
        let mut n = Node::master_of(7);
        // Its own announcement: nothing changes.
        assert_eq!(n.at(ms(40), leader("me", 7)), vec![published("me", 7)]);
        assert_eq!(n.core.master_epoch(), Some(7));
        // An older term of another node: stale, ignored.
        assert!(n.at(ms(50), leader("other", 6)).is_empty());
        assert_eq!(n.core.master_epoch(), Some(7));
        // A newer term of another node: step down, then follow it.
        assert_eq!(
            n.at(ms(60), leader("other", 8)),
            vec![
                Action::StepDown("another leader was elected"),
                published("other", 8)
            ]
        );
        assert_eq!(n.core.master_epoch(), None);
        // Once stepped down, a later announcement is only published.
        assert_eq!(
            n.at(ms(70), leader("other", 8)),
            vec![published("other", 8)]
        );
    }

    #[test]
    fn a_master_steps_down_for_a_newer_term_of_its_own() {
        let mut n = Node::master_of(7);
        assert_eq!(
            n.at(ms(40), leader("me", 9)),
            vec![
                Action::StepDown("another leader was elected"),
                published("me", 9)
            ]
        );
    }

    #[test]
    fn re_election_after_a_session_ends_starts_over_but_remembers_epochs() {
        let mut n = Node::master_of(7);
        n.at(ms(40), leader("me", 7));
        let ended = Event::SessionEnded {
            clean: false,
            shutting_down: false,
        };
        assert_eq!(
            n.at(ms(100), ended),
            vec![
                Action::StepDown("etcd session ended"),
                Action::ClearLease,
                Action::Retry {
                    after: SESSION_RETRY
                }
            ]
        );
        // A new session: new lease, campaign again, win a later term.
        let t = ms(500);
        assert_eq!(
            n.at(t, Event::LeaseGranted { sent: n.t0 + t }),
            vec![Action::ExtendLease {
                until: n.t0 + t + FENCE
            }]
        );
        assert_eq!(
            n.at(t, Event::Registered { synced: true }),
            vec![Action::Campaign]
        );
        // The old term announced late is stale now.
        assert!(n.at(t, leader("other", 6)).is_empty());
        let won = Event::CampaignWon {
            key: "k2",
            rev: 11,
            diverged: false,
        };
        assert_eq!(
            n.at(t + ms(10), won),
            vec![Action::BecomeMaster { epoch: 11 }]
        );
        n.at(t + ms(20), Event::BecameMaster);
        assert_eq!(n.core.master_epoch(), Some(11));
        assert_eq!(n.core.known_epoch(), 11);
    }

    #[test]
    fn shutdown_resigns_only_a_kept_term_and_stops_the_sessions() {
        // While still campaigning: nothing to resign (revoking the lease
        // removes the campaign key).
        let mut n = Node::new();
        n.start(true);
        assert_eq!(
            n.at(ms(50), Event::ShutdownRequested),
            vec![Action::Shutdown { resign: None }]
        );
        // Events after the end are ignored.
        assert!(n.at(ms(60), Event::Tick).is_empty());
        let ended = Event::SessionEnded {
            clean: true,
            shutting_down: true,
        };
        assert_eq!(
            n.at(ms(70), ended),
            vec![
                Action::StepDown("etcd session ended"),
                Action::ClearLease,
                Action::Stop
            ]
        );

        // As master: resign the key.
        let mut n = Node::master_of(4);
        assert_eq!(
            n.at(ms(50), Event::ShutdownRequested),
            vec![Action::Shutdown { resign: Some("k") }]
        );

        // A session that failed while the node shuts down: no retry.
        let mut n = Node::new();
        n.start(true);
        let ended = Event::SessionEnded {
            clean: false,
            shutting_down: true,
        };
        assert_eq!(n.at(ms(70), ended).last(), Some(&Action::Stop));
    }

    #[test]
    fn membership_follows_the_listing_and_the_watch() {
        let mut n = Node::new();
        n.start(true);
        let listed = Event::MembersListed(vec![
            ("a".into(), "a:7000 a:6379".into()),
            ("b".into(), "b:7000 b:6379".into()),
        ]);
        let table = |pairs: &[(&str, &str)]| {
            Action::SetMembers(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        assert_eq!(
            n.at(ms(20), listed),
            vec![table(&[("a", "a:7000 a:6379"), ("b", "b:7000 b:6379")])]
        );
        let changes = Event::MembersChanged(vec![
            MemberChange::Deleted { id: "a".into() },
            MemberChange::Put {
                id: "c".into(),
                addr: "c:7000 c:6379".into(),
            },
            MemberChange::Put {
                id: "b".into(),
                addr: "b:7001 b:6379".into(),
            },
        ]);
        assert_eq!(
            n.at(ms(30), changes),
            vec![table(&[("b", "b:7001 b:6379"), ("c", "c:7000 c:6379")])]
        );
    }

    #[test]
    fn step_results_out_of_turn_change_nothing() {
        let mut n = Node::master_of(3);
        assert!(n.at(ms(40), Event::RivalsCounted(3)).is_empty());
        assert!(n.at(ms(40), Event::Yielded).is_empty());
        assert!(n
            .at(ms(40), Event::LeaderProbed(Probe::NoLeader))
            .is_empty());
        let won = Event::CampaignWon {
            key: "x",
            rev: 99,
            diverged: false,
        };
        assert!(n.at(ms(40), won).is_empty());
        assert_eq!(n.core.master_epoch(), Some(3));
        assert_eq!(
            n.at(ms(50), Event::ShutdownRequested),
            vec![Action::Shutdown { resign: Some("k") }]
        );
    }
}
