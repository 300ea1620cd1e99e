//! Keeping the Raft log bounded: once its segments pass `dLegerRaftLogMaxMb`, the node takes a
//! snapshot (cheap: it stands for the commitlog up to the applied point) and openraft purges the
//! log up to it, keeping the last [`ENTRIES_KEPT`] entries for followers that are just behind.
//! Every node does this on its own.

use std::time::Duration;

use super::log_store::{LogStore, SEGMENT_BYTES};
use super::types::Raft;

/// Entries kept before a snapshot's last one: a follower further behind is sent the snapshot
/// and copies the commitlog bytes it lacks.
pub const ENTRIES_KEPT: u64 = 64;

/// How often the log's size is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// A segment a quarter of the limit (between 256 KiB and the default), so a purge frees most of it.
pub fn segment_bytes(max_bytes: u64) -> u64 {
    if max_bytes == 0 {
        return SEGMENT_BYTES;
    }
    (max_bytes / 4).clamp(256 << 10, SEGMENT_BYTES)
}

/// Takes a snapshot whenever the log is over `max_bytes` and something was applied since the
/// last one; returns when `shutdown` is cancelled.
pub async fn run(
    raft: Raft,
    log: LogStore,
    max_bytes: u64,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut last = 0u64;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(CHECK_EVERY) => {}
            _ = shutdown.cancelled() => return,
        }
        if log.disk_bytes() <= max_bytes {
            continue;
        }
        let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        if applied <= last {
            continue;
        }
        last = applied;
        tracing::debug!(
            bytes = log.disk_bytes(),
            applied,
            "raft log over its limit: snapshot"
        );
        if let Err(e) = raft.trigger().snapshot().await {
            tracing::warn!(error = %e, "DLedger snapshot");
            return;
        }
    }
}
