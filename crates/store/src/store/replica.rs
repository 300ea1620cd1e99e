//! What the replication layer needs: raw commitlog ranges, appending raw bytes at an expected
//! offset, truncation, and the confirmed-offset / durable-offset hooks.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use ferrocket_protocol::message::decode_view;

use super::MessageStore;
use crate::ack::OffsetFuture;
use crate::checkpoint::Checkpoint;
use crate::commitlog::{CommitLog, Slot};
use crate::dispatch::DispatchRequest;
use crate::error::StoreError;

impl MessageStore {
    /// Raw commitlog bytes from `phys` to the end of its segment's written part, at most
    /// `max_bytes` (zero-copy). `None` past the end or below the minimum.
    pub fn commitlog_data(&self, phys: i64, max_bytes: usize) -> Option<Bytes> {
        if phys < self.inner.commitlog.min_offset() {
            return None;
        }
        self.inner.commitlog.data_from(phys, max_bytes)
    }

    /// Appends raw commitlog bytes (as read from a master) at `expected`, which must be the
    /// current end; bytes may end mid-record. Complete records are dispatched to consume queues
    /// and index. Returns the new end. An empty store accepts a segment-aligned start.
    pub fn append_raw(&self, expected: i64, data: &[u8]) -> Result<i64, StoreError> {
        let inner = &self.inner;
        let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let cl = &inner.commitlog;
        let size = cl.file_size() as i64;
        let end = cl.max_offset();
        let empty = cl.files().last().is_none();
        if empty && expected % size == 0 {
            cl.files().create(expected)?;
            inner.dispatched.store(expected, Ordering::Release);
            inner.flushed.set(expected);
        } else if expected != end {
            return Err(StoreError::NotContiguous {
                expected: end,
                actual: expected,
            });
        }
        if data.is_empty() {
            return Ok(expected);
        }
        let file = match cl.files().last() {
            Some(f) if !f.is_full() => f,
            _ => cl.files().create(expected)?,
        };
        if !file.append(data) {
            return Err(StoreError::CrossesSegment {
                offset: expected,
                len: data.len(),
            });
        }
        // Dispatch every complete record past the dispatch cursor.
        let new_end = expected + data.len() as i64;
        let mut pos = inner.dispatched.load(Ordering::Acquire);
        while pos < new_end {
            let Some(f) = cl.files().find(pos) else { break };
            let off = (pos - f.from()) as usize;
            match CommitLog::check(&f, off, f.wrote(), false) {
                Slot::Message(n) => {
                    let v = decode_view(&f.raw()[off..off + n], false).expect("checked record");
                    inner
                        .last_store_ts
                        .store(v.store_timestamp, Ordering::Release);
                    let req = DispatchRequest::from_view(&v, &inner.delay_levels);
                    inner.dispatch(&mut w, &req)?;
                    pos += n as i64;
                }
                Slot::Blank => pos = f.from() + f.size() as i64,
                Slot::End if off >= f.size() => pos = f.from() + f.size() as i64,
                // Incomplete record: wait for more bytes.
                Slot::End | Slot::Bad(_) => break,
            }
        }
        inner.dispatched.store(pos, Ordering::Release);
        Ok(new_end)
    }

    /// Drops everything at or past `offset` (a record boundary): commitlog bytes, consume-queue
    /// entries; index entries are left and filtered at lookup. Used by a Raft follower.
    pub fn truncate(&self, offset: i64) -> Result<(), StoreError> {
        let inner = &self.inner;
        let mut w = inner.writer.lock().unwrap_or_else(|e| e.into_inner());
        let offset = offset.max(inner.commitlog.min_offset());
        let dropped = inner.commitlog.files().truncate(offset)?;
        for q in inner.all_queues() {
            q.truncate_phys(offset)?;
        }
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
        inner.dispatched.fetch_min(offset, Ordering::AcqRel);
        if inner.flushed.get() > offset {
            inner.flushed.set(offset);
        }
        let path = inner.checkpoint_path();
        let mut ckpt = Checkpoint::read(&path)?;
        if ckpt.flushed_phy_offset > offset {
            ckpt.flushed_phy_offset = offset;
            ckpt.write(&path)?;
        }
        tracing::info!(offset, bytes = dropped, "commitlog truncated");
        Ok(())
    }

    /// Sets the confirmed physical offset (replication's commit point) and wakes its waiters.
    pub fn set_confirmed_offset(&self, offset: i64) {
        self.inner.confirmed.set(offset);
    }

    /// The confirmed physical offset.
    pub fn confirmed_offset(&self) -> i64 {
        self.inner.confirmed.get()
    }

    /// When on, reads only return messages that end at or below the confirmed offset.
    pub fn set_confirm_bound(&self, on: bool) {
        self.inner.confirm_bound.store(on, Ordering::Release);
    }

    /// Resolves `true` once commitlog bytes up to `offset` are durable, `false` after `timeout`.
    pub fn wait_flushed(&self, offset: i64, timeout: Duration) -> OffsetFuture {
        let slot = self.inner.flushed.wait_for(offset, timeout);
        self.inner.request_flush();
        OffsetFuture::new(slot)
    }

    /// Resolves `true` once the confirmed offset reaches `offset`, `false` after `timeout`.
    pub fn wait_confirmed(&self, offset: i64, timeout: Duration) -> OffsetFuture {
        OffsetFuture::new(self.inner.confirmed.wait_for(offset, timeout))
    }
}
