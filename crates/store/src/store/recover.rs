//! Start-up recovery: find the valid end of the commitlog, drop a torn tail, refuse corruption
//! before the last flushed point, and rebuild consume-queue and index entries past what was kept.

use std::sync::atomic::Ordering;

use ferrocket_protocol::message::decode_view;

use super::{Inner, QueueMap};
use crate::checkpoint::Checkpoint;
use crate::commitlog::{CommitLog, Slot};
use crate::config::StoreConfig;
use crate::consume_queue::ConsumeQueue;
use crate::dispatch::DispatchRequest;
use crate::error::{IoContext, StoreError};
use crate::mapped_file::GARBAGE_WINDOW;

/// Segments re-checked after a clean shutdown (RocketMQ checks the last three).
const CLEAN_RECHECK_FILES: usize = 3;

/// Loads every `consumequeue/<topic>/<queueId>`.
pub(super) fn load_queues(config: &StoreConfig) -> Result<QueueMap, StoreError> {
    let root = config.consume_queue_dir();
    std::fs::create_dir_all(&root).at(&root)?;
    let mut map = QueueMap::new();
    for t in std::fs::read_dir(&root).at(&root)? {
        let t = t.at(&root)?;
        if !t.file_type().at(&t.path())?.is_dir() {
            continue;
        }
        let topic = t.file_name().to_string_lossy().into_owned();
        for q in std::fs::read_dir(t.path()).at(&t.path())? {
            let q = q.at(&t.path())?;
            let Ok(qid) = q.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cq = ConsumeQueue::load(&q.path(), config.consume_queue_file_size() as usize)?;
            map.entry(topic.clone())
                .or_default()
                .insert(qid, std::sync::Arc::new(cq));
        }
    }
    Ok(map)
}

/// Recovers the commitlog end, trims derived files to it and re-dispatches what they miss.
pub(super) fn recover(inner: &Inner, ckpt: &Checkpoint, crashed: bool) -> Result<(), StoreError> {
    let (end, scan_start) = recover_commitlog(inner, ckpt, crashed)?;
    let queues = inner.all_queues();
    let mut cq_end = 0;
    for q in &queues {
        q.truncate_phys(end)?;
        cq_end = cq_end.max(q.max_phys_end());
    }
    let min_phys = inner.commitlog.min_offset();
    for q in &queues {
        q.correct_min_offset(min_phys);
    }
    // After a clean shutdown the derived files are complete up to the last queue entry; after a
    // crash, everything from the re-checked segments on is dispatched again (idempotently).
    let from = if queues.is_empty() {
        min_phys
    } else if crashed {
        scan_start.min(cq_end).max(min_phys)
    } else {
        cq_end.max(min_phys)
    };
    let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
    w.reset();
    for (topic, m) in inner
        .queues
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        for (qid, q) in m {
            w.set_next_offset(topic, *qid, q.max_offset());
        }
    }
    let n = redispatch(inner, &mut w, from, end)?;
    inner.dispatched.store(end, Ordering::Release);
    inner.flushed.set(end);
    if crashed {
        tracing::info!(
            commitlog_end = end,
            redispatched = n,
            from,
            "recovered after abnormal shutdown"
        );
    }
    Ok(())
}

/// Dispatches every record in `[from, end)`; returns how many.
pub(super) fn redispatch(
    inner: &Inner,
    w: &mut super::Writer,
    from: i64,
    end: i64,
) -> Result<usize, StoreError> {
    let mut n = 0;
    let mut pos = from;
    while pos < end {
        let Some(file) = inner.commitlog.files().find(pos) else {
            break;
        };
        let off = (pos - file.from()) as usize;
        let limit = file.wrote();
        match CommitLog::check(&file, off, limit, false) {
            Slot::Message(size) => {
                let v = decode_view(&file.raw()[off..off + size], false).expect("checked record");
                let req = DispatchRequest::from_view(&v, &inner.delay_levels);
                inner.dispatch(w, &req)?;
                n += 1;
                pos += size as i64;
            }
            Slot::Blank | Slot::End => pos = file.from() + file.size() as i64,
            Slot::Bad(reason) => {
                return Err(StoreError::Corrupt {
                    what: "commitlog record",
                    file: file.path().to_path_buf(),
                    offset: pos,
                    reason,
                })
            }
        }
    }
    Ok(n)
}

/// Walks the commitlog forward from a safe point; returns (valid end, where the walk started).
fn recover_commitlog(
    inner: &Inner,
    ckpt: &Checkpoint,
    crashed: bool,
) -> Result<(i64, i64), StoreError> {
    let cl = &inner.commitlog;
    let files = cl.files().files();
    if files.is_empty() {
        return Ok((0, 0));
    }
    let size = cl.file_size();
    let flushed_idx = files
        .iter()
        .rposition(|f| f.from() <= ckpt.flushed_phy_offset)
        .unwrap_or(0);
    let start = files
        .len()
        .saturating_sub(CLEAN_RECHECK_FILES)
        .min(flushed_idx);
    for f in &files[..start] {
        f.set_recovered(size);
    }
    let check_crc = inner.config.check_crc_on_recover;
    let mut end = files[start].from();
    let mut bad: Option<(usize, usize, String)> = None;
    'files: for (i, f) in files.iter().enumerate().skip(start) {
        let mut pos = 0;
        loop {
            if pos >= size {
                f.set_recovered(size);
                end = f.from() + size as i64;
                continue 'files;
            }
            match CommitLog::check(f, pos, size, check_crc) {
                Slot::Message(n) => pos += n,
                Slot::Blank => {
                    f.set_recovered(size);
                    end = f.from() + size as i64;
                    continue 'files;
                }
                Slot::End => {
                    f.set_recovered(pos);
                    end = f.from() + pos as i64;
                    if i + 1 < files.len()
                        || pos + 8 < size && f.nonzero_end(pos, GARBAGE_WINDOW) > pos
                    {
                        bad = Some((i, pos, "unexpected zeros inside written data".into()));
                    }
                    break 'files;
                }
                Slot::Bad(reason) => {
                    f.set_recovered(pos);
                    end = f.from() + pos as i64;
                    bad = Some((i, pos, reason));
                    break 'files;
                }
            }
        }
    }
    if let Some((i, pos, reason)) = bad {
        let at = files[i].from() + pos as i64;
        if at < ckpt.flushed_phy_offset {
            return Err(StoreError::Corrupt {
                what: "commitlog record",
                file: files[i].path().to_path_buf(),
                offset: at,
                reason: format!(
                    "{reason} (checkpoint says {} bytes were flushed)",
                    ckpt.flushed_phy_offset
                ),
            });
        }
        let dropped = cl.files().truncate(at)?;
        tracing::warn!(
            file = %files[i].path().display(),
            offset = at,
            bytes = dropped,
            crashed,
            "commitlog torn tail: dropped {dropped} bytes after offset {at} ({reason})"
        );
    }
    Ok((end, files[start].from()))
}
