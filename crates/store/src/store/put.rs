//! The append path (hot): encode outside the lock, then copy, stamp and dispatch under it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use ferrocket_protocol::message::{
    decode_view, encode_offset_msg_id, names, store_timestamp_pos, sysflag, Properties,
    StoredMessage, MAX_PROPERTIES_LEN, PHYSICAL_OFFSET_POS, QUEUE_OFFSET_POS, SYSFLAG_POS,
};

use super::{Inner, MessageStore, Writer};
use crate::ack::PutFuture;
use crate::config::FlushDiskType;
use crate::dispatch::DispatchRequest;
use crate::error::StoreError;
use crate::status::{AppendResult, PutResult, PutStatus};

impl MessageStore {
    /// Appends one message. The store sets PHYSICALOFFSET, QUEUEOFFSET, STORETIMESTAMP and
    /// STOREHOST (from the config); BODYCRC is computed. Resolves at once with ASYNC_FLUSH or when
    /// the message's WAIT property is "false"; otherwise when an fsync covers it (or
    /// `FlushDiskTimeout` after `syncFlushTimeout`).
    pub fn put_message(&self, msg: StoredMessage) -> PutFuture {
        self.put_messages(vec![msg])
    }

    /// Appends messages of one topic and queue as consecutive records (a SEND_BATCH_MESSAGE):
    /// they land in one segment with consecutive queue offsets.
    pub fn put_messages(&self, mut msgs: Vec<StoredMessage>) -> PutFuture {
        let inner = &self.inner;
        if let Some(refused) = self.refusal(false) {
            return refused;
        }
        let Some(first) = msgs.first() else {
            return PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
        };
        let (topic, queue_id) = (first.topic.clone(), first.queue_id);
        let wait = first.properties.get(names::WAIT_STORE_MSG_OK) != Some("false");
        let mut buf = Vec::with_capacity(msgs.iter().map(|m| m.encoded_len()).sum());
        let mut starts = Vec::with_capacity(msgs.len());
        for m in &mut msgs {
            if m.topic != topic || m.queue_id != queue_id || m.topic.is_empty() {
                return PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
            }
            if m.body.len() > inner.config.max_message_size {
                return PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
            }
            if m.properties.encoded_len() > MAX_PROPERTIES_LEN {
                return PutFuture::ready(PutResult::failed(PutStatus::PropertiesSizeExceeded));
            }
            m.store_host = inner.config.store_host;
            starts.push(buf.len());
            if m.encode(&mut buf).is_err() {
                return PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
            }
        }
        self.append_encoded(&topic, queue_id, wait, buf, &starts, StoreTime::Now)
    }

    /// Appends records already in the commitlog format, all of one topic and queue (one send),
    /// as a DLedger node applies a committed entry: each is checked and stamped with its queue
    /// offset and physical offset, but not decoded and encoded again. Store host, born host,
    /// body CRC and a store timestamp the encoder set stay as encoded (the leader's, as in
    /// RocketMQ's DLedger commitlog, where every node holds the leader's bytes); a zero store
    /// timestamp is stamped with the time of this put.
    ///
    /// This is the path of entries a replicated log has already committed: a disk past
    /// `diskSpaceWarningLevelRatio` does not refuse them (the writer refuses new sends before
    /// they are proposed), or replicas would differ.
    pub fn put_records(&self, records: &[u8]) -> PutFuture {
        if let Some(refused) = self.refusal(true) {
            return refused;
        }
        let illegal = || PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
        let mut starts = Vec::new();
        let mut head: Option<(String, i32, bool)> = None;
        let mut pos = 0;
        while pos < records.len() {
            let Ok(v) = decode_view(&records[pos..], false) else {
                return illegal();
            };
            // No `maxMessageSize` check: the leader applied its own when the send came, and a
            // node with a smaller limit must still hold what the group committed.
            if v.topic.is_empty() {
                return illegal();
            }
            if v.properties.len() > MAX_PROPERTIES_LEN {
                return PutFuture::ready(PutResult::failed(PutStatus::PropertiesSizeExceeded));
            }
            match &head {
                None => {
                    let wait =
                        Properties::lookup(v.properties, names::WAIT_STORE_MSG_OK) != Some("false");
                    head = Some((v.topic.to_owned(), v.queue_id, wait));
                }
                Some((t, q, _)) if t != v.topic || *q != v.queue_id => return illegal(),
                Some(_) => {}
            }
            starts.push(pos);
            pos += v.total_size as usize;
        }
        let Some((topic, queue_id, wait)) = head else {
            return illegal();
        };
        self.append_encoded(
            &topic,
            queue_id,
            wait,
            records.to_vec(),
            &starts,
            StoreTime::Kept,
        )
    }

    /// The answer to a put the store will not take: any put while it is stopping; a client's
    /// (not `committed` records, see [`MessageStore::put_records`]) while its disk is full or an
    /// append has held the commitlog lock too long.
    fn refusal(&self, committed: bool) -> Option<PutFuture> {
        let inner = &self.inner;
        let status = if inner.stopped.load(Ordering::Acquire) {
            PutStatus::ServiceNotAvailable
        } else if committed {
            return None;
        } else if inner.disk_full.load(Ordering::Acquire) {
            PutStatus::DiskFull
        } else if inner.os_page_cache_busy() {
            PutStatus::OsPageCacheBusy
        } else {
            return None;
        };
        Some(PutFuture::ready(PutResult::failed(status)))
    }

    /// Appends encoded records (`starts` within `buf`, at least one) and resolves when the flush
    /// policy says.
    fn append_encoded(
        &self,
        topic: &str,
        queue_id: i32,
        wait: bool,
        mut buf: Vec<u8>,
        starts: &[usize],
        time: StoreTime,
    ) -> PutFuture {
        let inner = &self.inner;
        if buf.len() + crate::commitlog::BLANK_LEN > inner.commitlog.file_size() {
            return PutFuture::ready(PutResult::failed(PutStatus::MessageIllegal));
        }
        let append = match inner.append(topic, queue_id, &mut buf, starts, time) {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "append failed");
                return PutFuture::ready(PutResult::failed(PutStatus::CreateMappedFileFailed));
            }
        };
        let end = append.wrote_offset + i64::from(append.wrote_bytes);
        let result = PutResult {
            status: PutStatus::PutOk,
            append: Some(append),
        };
        if inner.config.flush_disk_type == FlushDiskType::SyncFlush && wait {
            let slot = inner
                .flushed
                .wait_for(end, Duration::from_millis(inner.config.sync_flush_timeout));
            inner.request_flush();
            return PutFuture::pending(result, slot, PutStatus::FlushDiskTimeout);
        }
        PutFuture::ready(result)
    }
}

/// The sys flag of the record starting at `start` in `buf`.
fn sys_flag_at(buf: &[u8], start: usize) -> i32 {
    let at = start + SYSFLAG_POS;
    i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes"))
}

/// Where a record's store timestamp comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreTime {
    /// This put's time (a broker storing what it received).
    Now,
    /// The one encoded in the record when not zero (a DLedger node applying the leader's
    /// records, so every node holds the leader's time, as RocketMQ's DLedger does).
    Kept,
}

impl Inner {
    /// Wakes the group-commit flusher.
    pub(crate) fn request_flush(&self) {
        self.flush_requested.store(true, Ordering::SeqCst);
        // The flusher sets `flusher_parked` before its last look at `flush_requested` (both
        // SeqCst), so either it sees this request or this sees it parked; it holds
        // `flush_lock` from then until it waits, so the notify cannot come too early.
        if self.flusher_parked.load(Ordering::SeqCst) {
            let _g = self.flush_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.flush_cv.notify_one();
        }
    }

    /// Copies encoded records into the commitlog, stamping offsets and store time, and dispatches
    /// them. `starts` are the record starts within `buf`; the first record's sys flag says
    /// whether they take queue offsets (a prepared or rolled-back transaction half does not).
    fn append(
        &self,
        topic: &str,
        queue_id: i32,
        buf: &mut [u8],
        starts: &[usize],
        time: StoreTime,
    ) -> Result<AppendResult, StoreError> {
        let tx_type = sysflag::transaction_type(sys_flag_at(buf, starts[0]));
        let mut w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.env.now_ms();
        let _in_lock = InLock::enter(&self.append_began, now);
        self.env.in_append();
        let file = self.commitlog.file_for_append(buf.len())?;
        let phys = file.from() + file.wrote() as i64;
        let mut stored_at = now;
        let uses_queue = matches!(
            tx_type,
            sysflag::TRANSACTION_NOT_TYPE | sysflag::TRANSACTION_COMMIT_TYPE
        );
        let base = if uses_queue {
            w.next_offset(topic, queue_id)
        } else {
            0
        };
        let mut ids = String::new();
        for (i, &s) in starts.iter().enumerate() {
            let qo = if uses_queue { base + i as i64 } else { 0 };
            let sys = sys_flag_at(buf, s);
            buf[s + QUEUE_OFFSET_POS..s + QUEUE_OFFSET_POS + 8].copy_from_slice(&qo.to_be_bytes());
            let p = phys + s as i64;
            buf[s + PHYSICAL_OFFSET_POS..s + PHYSICAL_OFFSET_POS + 8]
                .copy_from_slice(&p.to_be_bytes());
            let ts = s + store_timestamp_pos(sys);
            let kept = i64::from_be_bytes(buf[ts..ts + 8].try_into().expect("8"));
            stored_at = match time {
                StoreTime::Kept if kept != 0 => kept,
                _ => {
                    buf[ts..ts + 8].copy_from_slice(&now.to_be_bytes());
                    now
                }
            };
            if i > 0 {
                ids.push(',');
            }
            ids.push_str(&encode_offset_msg_id(self.config.store_host, p));
        }
        if !file.append(buf) {
            return Err(StoreError::Config(
                "segment had no room after rolling".into(),
            ));
        }
        self.last_store_ts.store(stored_at, Ordering::Release);
        for &s in starts {
            let v = decode_view(&buf[s..], false).map_err(|e| StoreError::Corrupt {
                what: "record just encoded",
                file: file.path().to_path_buf(),
                offset: phys + s as i64,
                reason: e.to_string(),
            })?;
            let req = DispatchRequest::from_view(&v, &self.delay_levels);
            self.dispatch(&mut w, &req)?;
        }
        let end = phys + buf.len() as i64;
        self.dispatched.store(end, Ordering::Release);
        Ok(AppendResult {
            wrote_offset: phys,
            wrote_bytes: buf.len() as i32,
            msg_id: ids,
            store_timestamp: stored_at,
            logics_offset: base,
            msg_num: starts.len() as i32,
        })
    }

    /// Builds the consume-queue entry and index keys of one record. Idempotent.
    pub(crate) fn dispatch(
        &self,
        w: &mut Writer,
        req: &DispatchRequest<'_>,
    ) -> Result<(), StoreError> {
        if req.goes_to_consume_queue() {
            let q = self.queue(req.topic, req.queue_id)?;
            q.put(
                req.queue_offset,
                crate::consume_queue::CqEntry {
                    phys: req.phys,
                    size: req.size,
                    tags_code: req.tags_code,
                },
            )?;
            let next = w
                .next_offset(req.topic, req.queue_id)
                .max(req.queue_offset + 1);
            w.set_next_offset(req.topic, req.queue_id, next);
        }
        if let Some(index) = &self.index {
            if req.goes_to_index() {
                index.put_keys(
                    req.index_keys(),
                    req.topic,
                    req.phys,
                    req.store_timestamp,
                    self.env.now_ms(),
                )?;
            }
        }
        Ok(())
    }
}

impl Writer {
    pub(crate) fn next_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.next_queue_offset
            .get(topic)
            .and_then(|m| m.get(&queue_id))
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn set_next_offset(&mut self, topic: &str, queue_id: i32, next: i64) {
        match self.next_queue_offset.get_mut(topic) {
            Some(m) => {
                m.insert(queue_id, next);
            }
            None => {
                self.next_queue_offset
                    .entry(topic.to_owned())
                    .or_default()
                    .insert(queue_id, next);
            }
        }
    }

    pub(crate) fn reset(&mut self) {
        self.next_queue_offset.clear();
    }
}

/// Marks the commitlog lock as held by an append since a time, until dropped.
struct InLock<'a>(&'a AtomicI64);

impl<'a> InLock<'a> {
    fn enter(began: &'a AtomicI64, now: i64) -> Self {
        began.store(now, Ordering::Release);
        Self(began)
    }
}

impl Drop for InLock<'_> {
    fn drop(&mut self) {
        self.0.store(0, Ordering::Release);
    }
}

impl Inner {
    /// RocketMQ's `isOSPageCacheBusy`: an append has held the commitlog lock longer than
    /// `osPageCacheBusyTimeOutMills` (differences beyond 10,000 s are taken for a clock jump).
    pub(crate) fn os_page_cache_busy(&self) -> bool {
        let began = self.append_began.load(Ordering::Acquire);
        if began == 0 {
            return false;
        }
        let held = self.env.now_ms() - began;
        held > self.config.os_page_cache_busy_timeout_ms && held < 10_000_000
    }
}
