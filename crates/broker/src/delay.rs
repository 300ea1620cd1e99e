//! Delay levels (`messageDelayLevel`, 18 by default): a message with property `DELAY=n` is
//! stored in `SCHEDULE_TOPIC_XXXX` queue n-1 with its destination kept in `REAL_TOPIC` /
//! `REAL_QID`; the store's dispatch writes the delivery time as the entry's tags code. This
//! service walks each level's queue and, once an entry is due, stores the message again in its
//! real topic and queue (waking held pulls). Per-level progress lives in the metadata KV
//! (`delayOffset`), served by GET_ALL_DELAY_OFFSET.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrocket_protocol::message::{decode, names, sysflag, StoredMessage};
use ferrocket_store::dispatch::SCHEDULE_TOPIC;
use ferrocket_store::kv::{MetaKv, Namespace};

use crate::{Broker, BrokerError};

/// Per-level delivery progress.
pub struct DelayOffsets {
    table: Mutex<BTreeMap<i32, i64>>,
    kv: MetaKv,
}

impl DelayOffsets {
    pub fn load(kv: MetaKv) -> Result<Self, BrokerError> {
        let mut table = BTreeMap::new();
        for (k, v) in kv.entries(Namespace::DelayOffsets)? {
            if let (Ok(level), Ok(off)) = (k.parse::<i32>(), serde_json::from_slice::<i64>(&v)) {
                table.insert(level, off);
            }
        }
        Ok(DelayOffsets {
            table: Mutex::new(table),
            kv,
        })
    }

    pub fn get(&self, level: i32) -> i64 {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&level)
            .copied()
            .unwrap_or(0)
    }

    fn set(&self, level: i32, off: i64) -> Result<(), BrokerError> {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(level, off);
        self.kv
            .put_json(Namespace::DelayOffsets, &level.to_string(), &off)?;
        Ok(())
    }

    /// `{"offsetTable":{"1":12,…}}`.
    pub fn to_json(&self) -> serde_json::Value {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({ "offsetTable": *t })
    }
}

/// The delay level a message asks for (0 = none).
pub fn delay_level(props: &ferrocket_protocol::message::Properties) -> i32 {
    props
        .get(names::DELAY_TIME_LEVEL)
        .and_then(|v| v.trim().parse::<i32>().ok())
        .unwrap_or(0)
}

/// Redirects a delayed message to the schedule topic (hot path: only when DELAY is set).
/// Transaction halves and rollbacks are left alone, as RocketMQ does.
pub fn redirect(msg: &mut StoredMessage, max_level: i32) {
    let level = delay_level(&msg.properties);
    if level <= 0 || max_level <= 0 {
        return;
    }
    let tx = sysflag::transaction_type(msg.sys_flag);
    if tx != sysflag::TRANSACTION_NOT_TYPE && tx != sysflag::TRANSACTION_COMMIT_TYPE {
        return;
    }
    let level = level.min(max_level);
    msg.properties
        .insert(names::DELAY_TIME_LEVEL, level.to_string());
    msg.properties.insert(names::REAL_TOPIC, msg.topic.clone());
    msg.properties
        .insert(names::REAL_QUEUE_ID, msg.queue_id.to_string());
    msg.topic = SCHEDULE_TOPIC.to_string();
    msg.queue_id = level - 1;
}

/// Delivers due messages until shutdown.
pub async fn run(b: Arc<Broker>) {
    if b.conf.is_slave() {
        return;
    }
    let levels = b.delay_levels;
    loop {
        // A DLedger follower delivers nothing until it leads.
        for level in (1..=levels).filter(|_| !b.is_slave()) {
            if let Err(e) = deliver_due(&b, level).await {
                tracing::warn!(level, error = %e, "delayed delivery failed");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = b.shutdown.cancelled() => return,
        }
    }
}

async fn deliver_due(b: &Broker, level: i32) -> Result<(), BrokerError> {
    let queue_id = level - 1;
    let start = b.delay_offsets.get(level);
    let mut off = start.max(b.store.min_offset_in_queue(SCHEDULE_TOPIC, queue_id));
    let now = crate::now_ms();
    while let Some(e) = b.store.queue_entry(SCHEDULE_TOPIC, queue_id, off) {
        if e.size == i32::MAX {
            off += 1;
            continue;
        }
        if e.tags_code > now {
            break;
        }
        if let Some(raw) = b.store.message_at(e.phys) {
            if let Ok(mut m) = decode(&raw) {
                let real_topic = m.properties.get(names::REAL_TOPIC).map(String::from);
                let real_qid = m
                    .properties
                    .get(names::REAL_QUEUE_ID)
                    .and_then(|q| q.parse::<i32>().ok());
                if let (Some(t), Some(q)) = (real_topic, real_qid) {
                    m.properties.remove(names::DELAY_TIME_LEVEL);
                    m.properties.insert(names::WAIT_STORE_MSG_OK, "false");
                    m.topic = t.clone();
                    m.queue_id = q;
                    m.queue_offset = 0;
                    m.physical_offset = 0;
                    let r = b.put_message(m).await;
                    notify_ha(b, &r);
                    if !r.status.is_stored() {
                        // Retry this entry on the next round.
                        tracing::warn!(level, status = ?r.status, "delayed message not delivered yet");
                        break;
                    }
                    b.notifier.notify(&t, q);
                    b.stats.add_put(1);
                }
            }
        }
        off += 1;
    }
    if off != start {
        b.delay_offsets.set(level, off)?;
    }
    Ok(())
}

/// Wakes the HA transfers after an internal write (no SYNC_MASTER wait: WAIT is false).
pub fn notify_ha(b: &Broker, r: &ferrocket_store::PutResult) {
    if let (Some(a), Some(crate::ha::Replication::Master(server))) = (&r.append, b.ha.get()) {
        server.notify_appended(a.wrote_offset + i64::from(a.wrote_bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocket_protocol::message::Properties;

    #[test]
    fn redirect_keeps_the_destination() {
        let mut m = StoredMessage::new("T", 3, &b"x"[..]);
        let mut p = Properties::new();
        p.insert("DELAY", "40");
        m.properties = p;
        redirect(&mut m, 18);
        assert_eq!(m.topic, SCHEDULE_TOPIC);
        assert_eq!(m.queue_id, 17);
        assert_eq!(m.properties.get("REAL_TOPIC"), Some("T"));
        assert_eq!(m.properties.get("REAL_QID"), Some("3"));
        assert_eq!(m.properties.get("DELAY"), Some("18"));
        let mut plain = StoredMessage::new("T", 0, &b"x"[..]);
        redirect(&mut plain, 18);
        assert_eq!(plain.topic, "T");
    }
}
