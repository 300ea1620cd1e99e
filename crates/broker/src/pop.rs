//! POP consumption, the model of RocketMQ 5.x's receive/ack: a received message stays invisible
//! to the group for its invisible duration; acked, it is done; not acked in time, it is
//! received again with a higher delivery attempt; past the group's maximum it goes to the
//! group's DLQ. A FIFO (orderly) group has one message of a queue in flight at a time.
//!
//! State per (group, topic, queue): a cursor (the next queue offset never handed out) and the
//! offsets in flight, each with when it becomes visible again, its attempt and a nonce that makes
//! its receipt handle unique. It is written to the metadata KV on every change and loaded at
//! start, so messages in flight survive a restart (delivery is at least once: a change lost in a
//! crash means one more delivery, never a lost message). The group's consumer offset follows the
//! lowest offset still in flight, so remoting tools show the group's progress.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bytes::Bytes;
use ferrocket_store::kv::{MetaKv, Namespace};
use serde::{Deserialize, Serialize};

use crate::topic::DLQ_GROUP_TOPIC_PREFIX;
use crate::Broker;
use ferrocket_protocol::message::{decode, decode_view, names, Properties};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// One message handed out and not acked.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Flight {
    visible_at: i64,
    attempt: i32,
    nonce: u64,
    /// The client holding it with `auto_renew` (5.x push consumers): its heartbeats keep the
    /// message invisible; when they stop, the invisible time runs out as usual.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<String>,
    /// How long each renewal keeps it invisible (its invisible duration).
    #[serde(default)]
    renew_ms: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct QueueState {
    cursor: i64,
    inflight: BTreeMap<i64, Flight>,
}

/// A message handed to a consumer.
#[derive(Debug, Clone)]
pub struct Popped {
    pub record: Bytes,
    pub offset: i64,
    pub attempt: i32,
    pub handle: String,
    /// The delivery's nonce (in the handle; the remoting POP_CK carries it as its pop time).
    pub nonce: u64,
    pub queue_id: i32,
    pub invisible_ms: i64,
}

/// A receipt handle: where the message is and which delivery it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle {
    pub topic: String,
    pub queue_id: i32,
    pub offset: i64,
    pub nonce: u64,
}

impl Handle {
    pub fn encode(&self) -> String {
        format!(
            "1 {} {} {:x} {}",
            self.queue_id, self.offset, self.nonce, self.topic
        )
    }

    /// Parses a handle this broker made; `None` for anything else.
    pub fn parse(s: &str) -> Option<Handle> {
        let mut it = s.splitn(5, ' ');
        if it.next()? != "1" {
            return None;
        }
        Some(Handle {
            queue_id: it.next()?.parse().ok()?,
            offset: it.next()?.parse().ok()?,
            nonce: u64::from_str_radix(it.next()?, 16).ok()?,
            topic: it.next()?.to_string(),
        })
    }
}

/// What a receive asks for.
pub struct PopRequest<'a> {
    pub group: &'a str,
    pub topic: &'a str,
    pub queues: &'a [i32],
    pub tags: Option<&'a HashSet<i64>>,
    /// A SQL92 property filter (`enablePropertyFilter=true`).
    pub sql: Option<&'a crate::filter::Expr>,
    pub max: usize,
    pub invisible_ms: i64,
    pub fifo: bool,
    pub now: i64,
    /// The receiving client's id when it asked for `auto_renew`.
    pub owner: Option<&'a str>,
}

/// Why an ack or change failed.
#[derive(Debug, PartialEq, Eq)]
pub enum HandleError {
    /// Unknown, already acked, or replaced by a newer handle.
    Invalid,
}

/// The POP state of every group.
pub struct PopManager {
    kv: MetaKv,
    state: Mutex<HashMap<String, QueueState>>,
    nonce: AtomicU64,
}

fn key(group: &str, topic: &str, queue: i32) -> String {
    format!("{group}\u{1}{topic}\u{1}{queue}")
}

impl PopManager {
    /// Loads the state persisted by earlier runs.
    pub fn load(kv: MetaKv) -> Result<PopManager, crate::BrokerError> {
        let mut state = HashMap::new();
        for (k, v) in kv.entries(Namespace::Pop)? {
            match serde_json::from_slice::<QueueState>(&v) {
                Ok(s) => {
                    state.insert(k, s);
                }
                Err(e) => {
                    tracing::warn!(key = %k.replace('\u{1}', "/"), error = %e, "unreadable POP state skipped")
                }
            }
        }
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 & (i64::MAX as u64 >> 1));
        Ok(PopManager {
            kv,
            state: Mutex::new(state),
            nonce: AtomicU64::new(seed),
        })
    }

    fn save(&self, k: &str, s: &QueueState) {
        if let Err(e) = self.kv.put_json(Namespace::Pop, k, s) {
            tracing::error!(error = %e, "persisting POP state failed");
        }
    }

    fn next_nonce(&self) -> u64 {
        self.nonce.fetch_add(1, Ordering::Relaxed)
    }

    /// Hands out up to `req.max` messages: first those whose invisible time ran out, then new
    /// ones. Also returns the messages past the group's maximum attempts, which the caller moves
    /// to the DLQ (they are no longer in flight).
    pub fn pop(
        &self,
        b: &Broker,
        req: &PopRequest<'_>,
        max_attempts: i32,
    ) -> (Vec<Popped>, Vec<Bytes>) {
        let mut out = Vec::new();
        let mut dead = Vec::new();
        let mut all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for &q in req.queues {
            if out.len() >= req.max {
                break;
            }
            let k = key(req.group, req.topic, q);
            let st = all.entry(k.clone()).or_insert_with(|| QueueState {
                cursor: b
                    .offsets
                    .query(req.group, req.topic, q)
                    .unwrap_or_else(|| b.store.min_offset_in_queue(req.topic, q)),
                inflight: BTreeMap::new(),
            });
            let before = out.len();
            let mut changed = false;
            // Expired first, in queue order.
            let expired: Vec<i64> = st
                .inflight
                .iter()
                .filter(|(_, f)| f.visible_at <= req.now)
                .map(|(o, _)| *o)
                .collect();
            let blocked = req.fifo
                && st
                    .inflight
                    .iter()
                    .next()
                    .is_some_and(|(_, f)| f.visible_at > req.now);
            for off in expired {
                if out.len() >= req.max || (req.fifo && out.len() > before) {
                    break;
                }
                let record = b
                    .store
                    .get_message(req.topic, q, off, 1, usize::MAX, None)
                    .messages
                    .into_iter()
                    .next();
                let Some(record) = record else {
                    // Deleted by retention meanwhile: nothing left to deliver.
                    st.inflight.remove(&off);
                    changed = true;
                    continue;
                };
                let f = st.inflight.get_mut(&off).expect("listed above");
                if f.attempt >= max_attempts {
                    st.inflight.remove(&off);
                    dead.push(record);
                    changed = true;
                    continue;
                }
                f.attempt += 1;
                f.nonce = self.next_nonce();
                f.visible_at = req.now + req.invisible_ms;
                f.owner = req.owner.map(String::from);
                f.renew_ms = req.invisible_ms;
                out.push(popped(req, q, off, f, record));
                changed = true;
            }
            let room = if req.fifo {
                usize::from(st.inflight.is_empty() && !blocked && out.len() == before)
            } else {
                req.max - out.len()
            };
            if room > 0 {
                let sql_filter = |rec: &[u8]| -> bool {
                    match (req.sql, decode_view(rec, false)) {
                        (Some(e), Ok(v)) => e.matches(&|k| Properties::lookup(v.properties, k)),
                        _ => false,
                    }
                };
                let record_filter: Option<&ferrocket_store::RecordFilter<'_>> = req
                    .sql
                    .map(|_| &sql_filter as &ferrocket_store::RecordFilter<'_>);
                let r = b.store.get_message_filtered(
                    req.topic,
                    q,
                    st.cursor,
                    room,
                    4 << 20,
                    req.tags,
                    record_filter,
                );
                for (record, off) in r.messages.into_iter().zip(r.queue_offsets) {
                    let f = Flight {
                        visible_at: req.now + req.invisible_ms,
                        attempt: 1,
                        nonce: self.next_nonce(),
                        owner: req.owner.map(String::from),
                        renew_ms: req.invisible_ms,
                    };
                    out.push(popped(req, q, off, &f, record));
                    st.inflight.insert(off, f);
                }
                if r.next_begin_offset != st.cursor {
                    st.cursor = r.next_begin_offset;
                    changed = true;
                }
                changed |= out.len() > before;
            }
            if changed {
                let st = st.clone();
                self.save(&k, &st);
                commit(b, req.group, req.topic, q, &st);
            }
        }
        (out, dead)
    }

    /// A heartbeat of `owner` in `group`: its auto-renewed messages stay invisible for their
    /// invisible duration from `now`. Returns how many were renewed.
    pub fn renew(&self, group: &str, owner: &str, now: i64) -> usize {
        let prefix = format!("{group}\u{1}");
        let mut all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut renewed = 0;
        let mut changed = Vec::new();
        for (k, st) in all.iter_mut().filter(|(k, _)| k.starts_with(&prefix)) {
            let mut any = false;
            for f in st.inflight.values_mut() {
                // Only while still invisible: an expired one may already be another's.
                if f.owner.as_deref() == Some(owner) && f.visible_at > now {
                    f.visible_at = f.visible_at.max(now + f.renew_ms.max(1000));
                    renewed += 1;
                    any = true;
                }
            }
            if any {
                changed.push((k.clone(), st.clone()));
            }
        }
        drop(all);
        for (k, st) in changed {
            self.save(&k, &st);
        }
        renewed
    }

    /// When the next message in flight of these queues becomes visible again.
    pub fn next_visible(&self, group: &str, topic: &str, queues: &[i32]) -> Option<i64> {
        let all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .iter()
            .filter_map(|q| all.get(&key(group, topic, *q)))
            .flat_map(|s| s.inflight.values().map(|f| f.visible_at))
            .min()
    }

    /// Acks the delivery `handle` names.
    pub fn ack(&self, b: &Broker, group: &str, handle: &Handle) -> Result<(), HandleError> {
        let k = key(group, &handle.topic, handle.queue_id);
        let mut all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = all.get_mut(&k).ok_or(HandleError::Invalid)?;
        match st.inflight.get(&handle.offset) {
            Some(f) if f.nonce == handle.nonce => {
                st.inflight.remove(&handle.offset);
            }
            // Acked before: acks are idempotent.
            None if handle.offset < st.cursor => return Ok(()),
            // Never handed out, or handed out again since (this handle is stale).
            _ => return Err(HandleError::Invalid),
        }
        let st = st.clone();
        self.save(&k, &st);
        commit(b, group, &handle.topic, handle.queue_id, &st);
        Ok(())
    }

    /// Makes the delivery invisible for `invisible_ms` from `now`; returns the new handle (the
    /// old one is no longer valid).
    pub fn change_invisible(
        &self,
        group: &str,
        handle: &Handle,
        invisible_ms: i64,
        now: i64,
    ) -> Result<Handle, HandleError> {
        let k = key(group, &handle.topic, handle.queue_id);
        let mut all = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let st = all.get_mut(&k).ok_or(HandleError::Invalid)?;
        let nonce = self.next_nonce();
        match st.inflight.get_mut(&handle.offset) {
            Some(f) if f.nonce == handle.nonce => {
                f.nonce = nonce;
                f.visible_at = now + invisible_ms;
            }
            _ => return Err(HandleError::Invalid),
        }
        let st = st.clone();
        self.save(&k, &st);
        Ok(Handle {
            nonce,
            ..handle.clone()
        })
    }
}

/// Pops with long polling: waits up to `poll` for a message to arrive or to become visible
/// again. Messages past their attempts go to the DLQ on the way.
pub async fn receive(
    b: &Arc<Broker>,
    req: PopRequest<'_>,
    max_attempts: i32,
    poll: Duration,
) -> Vec<Popped> {
    let notifies: Vec<Arc<Notify>> = req
        .queues
        .iter()
        .map(|q| b.notifier.notifier(req.topic, *q))
        .collect();
    let until = tokio::time::Instant::now() + poll;
    let mut req = req;
    loop {
        let mut waits: Vec<_> = notifies.iter().map(|n| Box::pin(n.notified())).collect();
        for w in &mut waits {
            w.as_mut().enable();
        }
        req.now = crate::now_ms();
        let (popped, dead) = b.pop.pop(b, &req, max_attempts);
        for record in dead {
            to_dlq(b, req.group, &record).await;
        }
        let now_i = tokio::time::Instant::now();
        if !popped.is_empty() || now_i >= until || b.shutdown.is_cancelled() {
            return popped;
        }
        // Wake for a new message, a message becoming visible again, or the end of the poll.
        let mut wake = until;
        if let Some(at) = b.pop.next_visible(req.group, req.topic, req.queues) {
            let ms = (at - crate::now_ms()).max(0) as u64;
            wake = wake.min(now_i + Duration::from_millis(ms));
        }
        tokio::select! {
            _ = futures::future::select_all(waits) => {}
            _ = tokio::time::sleep_until(wake) => {}
            _ = b.shutdown.cancelled() => {}
        }
    }
}

/// Moves a message past its attempts (or forwarded by the client) to `%DLQ%<group>`.
pub async fn to_dlq(b: &Broker, group: &str, record: &Bytes) -> bool {
    let Ok(mut m) = decode(record) else {
        return false;
    };
    let dlq = format!("{DLQ_GROUP_TOPIC_PREFIX}{group}");
    if let Err(e) = b.topics.get_or_create(&dlq, 1) {
        tracing::error!(error = %e, "creating the DLQ topic failed");
        return false;
    }
    if m.properties.get(names::RETRY_TOPIC).is_none() {
        let t = m.topic.clone();
        m.properties.insert(names::RETRY_TOPIC, t);
    }
    let origin = m
        .properties
        .get(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        .map(String::from)
        .unwrap_or_else(|| {
            ferrocket_protocol::message::encode_offset_msg_id(m.store_host, m.physical_offset)
        });
    m.properties.insert(names::ORIGIN_MESSAGE_ID, origin);
    m.topic = dlq.clone();
    m.queue_id = 0;
    m.queue_offset = 0;
    m.physical_offset = 0;
    m.properties.remove(names::TIMER_DELIVER_MS);
    m.properties.remove(names::DELAY_TIME_LEVEL);
    let r = b.put_message(m).await;
    if r.append.is_some() {
        b.notifier.notify(&dlq, 0);
        b.stats.add_put(1);
    }
    r.status.is_stored()
}

fn popped(req: &PopRequest<'_>, q: i32, off: i64, f: &Flight, record: Bytes) -> Popped {
    Popped {
        record,
        offset: off,
        attempt: f.attempt,
        handle: Handle {
            topic: req.topic.to_string(),
            queue_id: q,
            offset: off,
            nonce: f.nonce,
        }
        .encode(),
        nonce: f.nonce,
        queue_id: q,
        invisible_ms: req.invisible_ms,
    }
}

/// The group's consumer offset: everything below it is acked.
fn commit(b: &Broker, group: &str, topic: &str, q: i32, st: &QueueState) {
    let done = st.inflight.keys().next().copied().unwrap_or(st.cursor);
    b.offsets.commit(group, topic, q, done);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip_and_refuse_strangers() {
        let h = Handle {
            topic: "%RETRY%g".into(),
            queue_id: 3,
            offset: 42,
            nonce: 0xdead_beef,
        };
        assert_eq!(Handle::parse(&h.encode()), Some(h));
        for bad in ["", "2 1 1 1 t", "1 x 1 1 t", "1 1 1 zz t", "1 1 1 1"] {
            assert_eq!(Handle::parse(bad), None, "{bad}");
        }
    }
}
