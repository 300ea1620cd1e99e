//! The read path (hot): messages of a queue, offsets, lookups by time, key and physical offset.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use ferrocket_protocol::message::{
    decode_view, names, store_timestamp_pos, Properties, SYSFLAG_POS,
};

use super::MessageStore;
use crate::consume_queue::CqEntry;
use crate::status::{GetResult, GetStatus, QueryResult};

/// A filter over stored records (e.g. SQL92 on properties): `true` keeps the record.
pub type RecordFilter<'a> = dyn Fn(&[u8]) -> bool + Sync + 'a;

/// Consume-queue entries examined per read at least (RocketMQ scans 16,000 bytes of entries).
const MIN_SCAN_ENTRIES: usize = 16_000 / 20;

impl MessageStore {
    /// Reads up to `max_count` messages (and about `max_bytes`; the first message always fits)
    /// of (topic, queue id) from logical `offset`, keeping those whose tags code is in `tags`
    /// (`None` = all). Statuses and next offsets follow RocketMQ's `getMessage`.
    pub fn get_message(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: usize,
        max_bytes: usize,
        tags: Option<&HashSet<i64>>,
    ) -> GetResult {
        self.get_message_filtered(topic, queue_id, offset, max_count, max_bytes, tags, None)
    }

    /// [`get_message`](Self::get_message) with a second filter over each stored record (a
    /// property filter); a record it refuses is skipped like a tag mismatch.
    #[allow(clippy::too_many_arguments)]
    pub fn get_message_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_count: usize,
        max_bytes: usize,
        tags: Option<&HashSet<i64>>,
        record_filter: Option<&RecordFilter<'_>>,
    ) -> GetResult {
        let inner = &self.inner;
        let mut r = GetResult {
            status: GetStatus::NoMatchedLogicQueue,
            next_begin_offset: offset,
            min_offset: 0,
            max_offset: 0,
            messages: Vec::new(),
            queue_offsets: Vec::new(),
            buffer_total_size: 0,
            suggest_pulling_from_slave: false,
            fall_behind: None,
        };
        let Some(q) = inner.find_queue(topic, queue_id) else {
            r.next_begin_offset = 0;
            return r;
        };
        let (min, max) = (q.min_offset(), q.max_offset());
        r.min_offset = min;
        r.max_offset = max;
        if max == 0 {
            r.status = GetStatus::NoMessageInQueue;
            r.next_begin_offset = min.max(0);
            return r;
        }
        if offset < min {
            r.status = GetStatus::OffsetTooSmall;
            r.next_begin_offset = min;
            return r;
        }
        if offset == max {
            r.status = GetStatus::OffsetOverflowOne;
            r.next_begin_offset = offset;
            r.fall_behind = Some(0);
            return r;
        }
        if offset > max {
            r.status = GetStatus::OffsetOverflowBadly;
            r.next_begin_offset = if min == 0 { min } else { max };
            return r;
        }
        let scan = max_count.max(MIN_SCAN_ENTRIES);
        let Some(entries) = q.entries_from(offset, scan) else {
            r.status = GetStatus::OffsetFoundNull;
            r.next_begin_offset = offset + 1;
            return r;
        };
        let bound = if inner.confirm_bound.load(Ordering::Acquire) {
            inner.confirmed.get()
        } else {
            i64::MAX
        };
        let min_phys = inner.commitlog.min_offset();
        let max_phys = inner.commitlog.max_offset();
        let cfg = &inner.config;
        let mut status = GetStatus::NoMatchedMessage;
        let mut consumed = 0i64;
        // Whether the last message the read took is beyond the in-memory window.
        let mut last_in_disk = false;
        for (i, e) in entries.iter().enumerate() {
            if e.size == i32::MAX {
                consumed = i as i64 + 1;
                continue;
            }
            if e.phys + i64::from(e.size) > bound {
                if r.messages.is_empty() && i == 0 {
                    status = GetStatus::OffsetOverflowOne;
                    r.fall_behind = Some(0);
                }
                break;
            }
            // RocketMQ's limits: smaller ones for messages beyond the in-memory window.
            let in_disk = max_phys - e.phys > inner.in_memory_bytes;
            let (count_limit, bytes_limit) = if in_disk {
                (
                    max_count.min(cfg.max_transfer_count_on_message_in_disk.max(1)),
                    cfg.max_transfer_bytes_on_message_in_disk,
                )
            } else {
                (max_count, max_bytes)
            };
            if !r.messages.is_empty()
                && (r.messages.len() >= count_limit
                    || r.buffer_total_size + e.size as usize > bytes_limit)
            {
                break;
            }
            last_in_disk = in_disk;
            r.fall_behind = Some(max_phys - e.phys);
            consumed = i as i64 + 1;
            if e.phys < min_phys {
                status = GetStatus::MessageWasRemoving;
                continue;
            }
            if let Some(set) = tags {
                if !set.contains(&e.tags_code) {
                    continue;
                }
            }
            match inner.commitlog.slice(e.phys, e.size as usize) {
                Some(b) if record_filter.is_some_and(|f| !f(&b)) => {}
                Some(b) => {
                    r.buffer_total_size += b.len();
                    r.messages.push(b);
                    r.queue_offsets.push(offset + i as i64);
                    status = GetStatus::Found;
                }
                None => status = GetStatus::MessageWasRemoving,
            }
            if r.messages.len() >= max_count {
                break;
            }
        }
        r.status = status;
        r.next_begin_offset = offset + consumed;
        r.suggest_pulling_from_slave = last_in_disk;
        r
    }

    /// Every (topic, queue id) that has a consume queue.
    pub fn queue_ids(&self) -> Vec<(String, i32)> {
        let queues = self.inner.queues.read().unwrap_or_else(|e| e.into_inner());
        queues
            .iter()
            .flat_map(|(t, m)| m.keys().map(move |q| (t.clone(), *q)))
            .collect()
    }

    /// First logical offset still readable in (topic, queue id); 0 for an unknown queue.
    pub fn min_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner
            .find_queue(topic, queue_id)
            .map(|q| q.min_offset())
            .unwrap_or(0)
    }

    /// Next logical offset of (topic, queue id) (= messages ever written); 0 for an unknown queue.
    pub fn max_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.inner
            .find_queue(topic, queue_id)
            .map(|q| q.max_offset())
            .unwrap_or(0)
    }

    /// The consume-queue entry at `offset`.
    pub fn queue_entry(&self, topic: &str, queue_id: i32, offset: i64) -> Option<CqEntry> {
        self.inner.find_queue(topic, queue_id)?.entry(offset)
    }

    /// Store time of the message at a physical offset.
    fn store_time_at(&self, phys: i64) -> Option<i64> {
        let b = self.inner.commitlog.slice(phys, 80)?;
        let sys = i32::from_be_bytes(b[SYSFLAG_POS..SYSFLAG_POS + 4].try_into().ok()?);
        let p = store_timestamp_pos(sys);
        let b = if p + 8 <= b.len() {
            b
        } else {
            self.inner.commitlog.slice(phys, p + 8)?
        };
        Some(i64::from_be_bytes(b[p..p + 8].try_into().ok()?))
    }

    /// The first logical offset whose message was stored at or after `timestamp` (ms); the max
    /// offset when all are older.
    pub fn offset_in_queue_by_time(&self, topic: &str, queue_id: i32, timestamp: i64) -> i64 {
        let Some(q) = self.inner.find_queue(topic, queue_id) else {
            return 0;
        };
        let (mut lo, mut hi) = (q.min_offset(), q.max_offset());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let ts = q
                .entry(mid)
                .and_then(|e| self.store_time_at(e.phys))
                .unwrap_or(i64::MIN);
            if ts < timestamp {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Store time of the message at logical `offset` of a queue.
    pub fn message_store_time(&self, topic: &str, queue_id: i32, offset: i64) -> Option<i64> {
        let e = self.inner.find_queue(topic, queue_id)?.entry(offset)?;
        self.store_time_at(e.phys)
    }

    /// The whole record at a physical offset (VIEW_MESSAGE_BY_ID).
    pub fn message_at(&self, phys: i64) -> Option<Bytes> {
        if phys < self.inner.commitlog.min_offset() {
            return None;
        }
        self.inner.commitlog.message_at(phys)
    }

    /// Messages of `topic` whose KEYS or UNIQ_KEY equal `key`, stored within `[begin, end]` ms,
    /// newest first, at most `max_num` (QUERY_MESSAGE). Index hash collisions are filtered out.
    pub fn query_message(
        &self,
        topic: &str,
        key: &str,
        max_num: usize,
        begin: i64,
        end: i64,
    ) -> QueryResult {
        let mut r = QueryResult::default();
        // RocketMQ's IndexService caps every lookup at `maxMsgsNumBatch`.
        let max_num = max_num.min(self.inner.config.max_msgs_num_batch.max(1));
        let Some(index) = &self.inner.index else {
            return r;
        };
        if let Some(last) = index.files().last() {
            let h = last.header();
            r.index_last_update_timestamp = h.end_timestamp;
            r.index_last_update_phyoffset = h.end_phy_offset;
        }
        // Collisions are dropped below, so ask for a few more candidates than wanted.
        for phys in index.query(
            topic,
            key,
            max_num.saturating_mul(2).max(max_num),
            begin,
            end,
        ) {
            if r.messages.len() >= max_num {
                break;
            }
            let Some(b) = self.message_at(phys) else {
                continue;
            };
            let Ok(v) = decode_view(&b, false) else {
                continue;
            };
            let matches = v.topic == topic
                && (Properties::lookup(v.properties, names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
                    == Some(key)
                    || Properties::lookup(v.properties, names::KEYS)
                        .is_some_and(|ks| ks.split(' ').any(|k| k == key)));
            if matches {
                r.messages.push(b);
            }
        }
        r
    }
}
