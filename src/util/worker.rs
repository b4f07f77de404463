//! Waiting without holding up a runtime worker.

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f`, which may wait long, so that the runtime worker it is called
/// on does not stop its other tasks meanwhile: on a multi-thread runtime
/// tokio's `block_in_place` hands the worker's queue to another thread
/// while this one waits. Off a runtime, or on a current-thread one (where
/// there is no other thread to hand to), it just runs `f`.
pub fn off_worker<R>(f: impl FnOnce() -> R) -> R {
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}
