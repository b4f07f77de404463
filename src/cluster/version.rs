//! The replication protocol version and the rule two nodes use to decide
//! whether they can talk (rolling upgrades).
//!
//! Bump [`PROTOCOL_VERSION`] whenever a field is added to
//! `proto/replication.proto` that the receiver must understand to stay
//! correct (a follower applying the stream, a master running a forwarded
//! call); raise [`MIN_PROTOCOL_VERSION`] when this build stops being able
//! to speak an older version. A node that can speak several versions speaks
//! the one [`negotiate`] returns to each peer.

/// The newest replication protocol version this build speaks.
///
/// 2: a mutation may carry a change to the scripting state
/// (`Mutation.script`: script cache, function libraries). A version-1 node
/// cannot read it, so this build no longer speaks 1: a cluster of
/// version-1 nodes is upgraded by a full restart, not a rolling one.
///
/// 3: databases, shard channels and streams. A mutation may be `Select`
/// (the database of the mutations after it), `MoveKey`, `CopyDb`, `SwapDb`
/// or `FlushDb` (FLUSHDB no longer travels as FLUSHALL), or a stream's
/// (`Value.stream`, `Mutation.stream`); a Pub/Sub message may be a shard
/// channel's (`Publish.shard`, SPUBLISH). A version-2 node would misapply
/// or drop them (and diverge), or deliver a shard message to the plain
/// channel of the same name, so this build no longer speaks 2 (a full
/// restart upgrades a version-2 cluster).
pub const PROTOCOL_VERSION: u32 = 3;
/// The oldest version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u32 = 3;

/// What this node speaks: (newest, oldest).
pub type Speaks = (u32, u32);

/// The version this node (speaking `own`) and a peer that announced
/// `peer` (its newest) talk in: the older of the two newest versions, if
/// this node still speaks it. The peer runs the same rule on this node's
/// newest, so both pick the same version or one of them refuses. A peer
/// that announced nothing (0: a build from before versioning) is refused:
/// what it sends and expects cannot be known.
pub fn negotiate(own: Speaks, peer: u32) -> Option<u32> {
    if peer == 0 {
        return None;
    }
    let v = peer.min(own.0);
    (v >= own.1).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_talk_in_the_older_version_both_speak() {
        let now = (PROTOCOL_VERSION, MIN_PROTOCOL_VERSION);
        assert_eq!(negotiate(now, PROTOCOL_VERSION), Some(PROTOCOL_VERSION));
        // A peer from before versioning sends no version: refused.
        assert_eq!(negotiate(now, 0), None);
        // A newer peer: this node's version, which the newer one checks it
        // still speaks.
        assert_eq!(negotiate(now, PROTOCOL_VERSION + 5), Some(PROTOCOL_VERSION));
        // A build speaking 2..=3 and peers speaking 1, 2, 4.
        assert_eq!(negotiate((3, 2), 1), None, "too old for this build");
        assert_eq!(negotiate((3, 2), 2), Some(2));
        assert_eq!(negotiate((3, 2), 4), Some(3));
        // Both sides agree: the v4 peer (speaking 4..=4) refuses this one.
        assert_eq!(negotiate((4, 4), 3), None);
    }
}
