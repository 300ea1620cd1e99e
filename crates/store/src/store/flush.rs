//! Background flushing: the commitlog flusher (group commit for SYNC_FLUSH, interval flushes for
//! ASYNC_FLUSH) and the consume-queue / index / checkpoint flusher.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Inner;
use crate::checkpoint::Checkpoint;
use crate::config::FlushDiskType;
use crate::error::StoreError;

const PAGE: i64 = 4096;

/// Syncs every dirty commitlog byte and moves the flushed watermark.
pub(super) fn flush_commitlog(inner: &Inner) -> Result<(), StoreError> {
    let target = inner.commitlog.max_offset();
    if target <= inner.flushed.get() {
        return Ok(());
    }
    inner.env.before_commitlog_flush();
    inner.commitlog.files().flush()?;
    inner.flushed.set(target);
    Ok(())
}

/// Runs until the store stops.
pub(super) fn run_commitlog_flusher(inner: &Inner) {
    match inner.config.flush_disk_type {
        FlushDiskType::SyncFlush => run_group_commit(inner),
        FlushDiskType::AsyncFlush => run_interval_flush(inner),
    }
}

/// SYNC_FLUSH: wait for a request, then one fsync covers every append made so far. Requests
/// made while an fsync runs cost the appender one atomic store: the flusher finds them when it
/// comes back.
fn run_group_commit(inner: &Inner) {
    loop {
        if !inner.flush_requested.swap(false, Ordering::SeqCst) {
            let g = inner.flush_lock.lock().unwrap_or_else(|e| e.into_inner());
            inner.flusher_parked.store(true, Ordering::SeqCst);
            if !inner.flush_requested.load(Ordering::SeqCst)
                && !inner.stopped.load(Ordering::Acquire)
                && inner.flushed.pending() == 0
            {
                drop(
                    inner
                        .flush_cv
                        .wait_timeout(g, Duration::from_millis(10))
                        .unwrap_or_else(|e| e.into_inner()),
                );
            }
            inner.flusher_parked.store(false, Ordering::SeqCst);
            inner.flush_requested.store(false, Ordering::SeqCst);
        }
        if let Err(e) = flush_commitlog(inner) {
            tracing::error!(error = %e, "commitlog group commit failed");
        }
        if inner.stopped.load(Ordering::Acquire) {
            return;
        }
    }
}

/// ASYNC_FLUSH: every `flushIntervalCommitLog` ms flush when enough pages are dirty, and
/// everything every `flushCommitLogThoroughInterval` ms.
fn run_interval_flush(inner: &Inner) {
    let mut last_thorough = Instant::now();
    loop {
        let stopped = inner.sleep_unless_stopped(inner.config.flush_interval_commit_log);
        let dirty = inner.commitlog.max_offset() - inner.flushed.get();
        let thorough = last_thorough.elapsed()
            >= Duration::from_millis(inner.config.flush_commit_log_thorough_interval);
        let least = i64::from(inner.config.flush_commit_log_least_pages) * PAGE;
        // Someone waiting on `wait_flushed` also forces a flush.
        let waited = inner.flushed.pending() > 0;
        if dirty > 0 && (dirty >= least || thorough || stopped || waited) {
            if let Err(e) = flush_commitlog(inner) {
                tracing::error!(error = %e, "commitlog flush failed");
            }
            last_thorough = Instant::now();
        }
        if stopped {
            return;
        }
    }
}

/// Flushes consume queues and index files, then records the checkpoint.
pub(super) fn flush_queues_and_checkpoint(inner: &Inner) -> Result<(), StoreError> {
    let flushed = inner.flushed.get();
    let ts = inner.last_store_ts.load(Ordering::Acquire);
    for q in inner.all_queues() {
        q.flush()?;
    }
    if let Some(index) = &inner.index {
        index.flush()?;
    }
    let old = Checkpoint::read(&inner.checkpoint_path())?;
    let ckpt = Checkpoint {
        physic_msg_timestamp: ts,
        logics_msg_timestamp: ts,
        index_msg_timestamp: ts,
        master_flushed_offset: old.master_flushed_offset,
        confirm_phy_offset: inner.confirmed.get(),
        flushed_phy_offset: flushed,
    };
    if ckpt != old {
        ckpt.write(&inner.checkpoint_path())?;
    }
    Ok(())
}

/// Every `flushIntervalConsumeQueue` ms.
pub(super) fn run_queue_flusher(inner: &Inner) {
    loop {
        let stopped = inner.sleep_unless_stopped(inner.config.flush_interval_consume_queue);
        if stopped {
            return;
        }
        if let Err(e) = flush_queues_and_checkpoint(inner) {
            tracing::error!(error = %e, "consume queue / checkpoint flush failed");
        }
    }
}

/// Keeps pages ahead of the commitlog write position faulted in (off the append path), and
/// under SYNC_FLUSH the next segment written ahead.
pub(super) fn run_prefaulter(inner: &Inner) {
    const AHEAD: usize = 8 << 20;
    // After a failure (a full disk, say) the next try waits, so it is not retried every 5 ms.
    const RETRY_AFTER: Duration = Duration::from_secs(10);
    let mut failed_at: Option<Instant> = None;
    loop {
        if failed_at.is_none_or(|t| t.elapsed() >= RETRY_AFTER) {
            match inner.commitlog.files().prepare_next() {
                Ok(()) => failed_at = None,
                Err(e) => {
                    tracing::warn!(error = %e, "writing the next commitlog segment ahead; retrying in 10 s");
                    failed_at = Some(Instant::now());
                }
            }
        }
        if let Some(f) = inner.commitlog.files().last() {
            if !f.prefault_ahead(AHEAD) {
                tracing::debug!("MADV_POPULATE_WRITE unsupported; appends fault pages themselves");
                return;
            }
        }
        if inner.sleep_unless_stopped(5) {
            return;
        }
    }
}
