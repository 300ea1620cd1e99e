//! Retention: expired commitlog segments go at `deleteWhen` hours or when the disk passes
//! `diskMaxUsedSpaceRatio`; consume queues and index files follow; past
//! `diskSpaceWarningLevelRatio` appends are refused.

use std::sync::atomic::Ordering;

use super::{Inner, MessageStore};
use crate::error::StoreError;

/// Files removed by one cleaning round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub commitlog_files: usize,
    pub consume_queue_files: usize,
    pub index_files: usize,
    /// Disk use seen (percent).
    pub disk_used_percent: u32,
    /// Whether appends are refused after this round.
    pub disk_full: bool,
}

impl MessageStore {
    /// Runs one retention round now (the background cleaner runs it every
    /// `cleanResourceInterval` ms).
    pub fn clean_expired_files(&self) -> Result<CleanReport, StoreError> {
        clean_once(&self.inner)
    }
}

pub(super) fn run_cleaner(inner: &Inner) {
    loop {
        if inner.sleep_unless_stopped(inner.config.clean_resource_interval) {
            return;
        }
        if let Err(e) = clean_once(inner) {
            tracing::error!(error = %e, "retention round failed");
        }
    }
}

fn clean_once(inner: &Inner) -> Result<CleanReport, StoreError> {
    let c = &inner.config;
    let now = inner.env.now_ms();
    let ratio = inner.env.disk_used_ratio(&c.commit_log_dir());
    let percent = (ratio * 100.0).round() as u32;
    let full = percent > c.disk_space_warning_level_ratio;
    if full != inner.disk_full.swap(full, Ordering::AcqRel) {
        if full {
            tracing::error!(
                percent,
                limit = c.disk_space_warning_level_ratio,
                "disk full: appends refused"
            );
        } else {
            tracing::info!(percent, "disk space recovered: appends accepted again");
        }
    }
    let mut report = CleanReport {
        disk_used_percent: percent,
        disk_full: full,
        ..CleanReport::default()
    };
    let hour = crate::env::hour_of_day(now, inner.env.utc_offset_ms(now));
    let time_up = c.delete_hours().contains(&hour);
    let space_full = percent > c.disk_max_used_space_ratio;
    let forcibly = c.clean_file_forcibly_enable && percent > c.disk_space_clean_forcibly_ratio;
    if !(time_up || space_full) {
        return Ok(report);
    }
    let reserved_ms = c.file_reserved_time as i64 * 3_600_000;
    while report.commitlog_files < c.delete_file_batch_max.max(1) {
        if report.commitlog_files > 0
            && c.delete_commit_log_files_interval > 0
            && inner.sleep_unless_stopped(c.delete_commit_log_files_interval)
        {
            break;
        }
        // Taken out of the queue under the write lock (truncation and raw appends stay out of
        // the way), but released after it: the last unmap of a segment frees its blocks, which
        // can take a while for 1 GiB, and appends must not wait for that.
        let removed = {
            let _w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
            let files = inner.commitlog.files().files();
            match files.first() {
                Some(f) if files.len() > 1 => {
                    let expired = f.modified_ms() + reserved_ms <= now;
                    if !(expired || forcibly) {
                        break;
                    }
                    inner
                        .commitlog
                        .files()
                        .remove_first()?
                        .map(|f| (f, expired))
                }
                _ => None,
            }
        };
        let Some((f, expired)) = removed else { break };
        report.commitlog_files += 1;
        tracing::info!(file = %f.path().display(), expired, forcibly, "commitlog segment removed");
        drop(f);
    }
    let min_phys = inner.commitlog.min_offset();
    for q in inner.all_queues() {
        let n = q.delete_expired(min_phys)?;
        report.consume_queue_files += n;
        // As RocketMQ's CleanConsumeQueueService: a pause after each queue that lost files.
        if n > 0
            && c.delete_consume_queue_files_interval > 0
            && inner.sleep_unless_stopped(c.delete_consume_queue_files_interval)
        {
            break;
        }
    }
    if let Some(index) = &inner.index {
        report.index_files = index.delete_expired(min_phys)?;
    }
    Ok(report)
}
