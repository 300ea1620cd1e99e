//! Queue locks for orderly consumers (LOCK_BATCH_MQ / UNLOCK_BATCH_MQ): per group, each queue
//! is held by one client id until it unlocks or 60 s pass without a re-lock.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How long a lock lives without renewal (`rocketmq.broker.rebalance.lockMaxLiveTime`).
pub const LOCK_MAX_LIVE: Duration = Duration::from_secs(60);

/// A `MessageQueue`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

/// The LOCK_BATCH_MQ / UNLOCK_BATCH_MQ body.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockBatchRequestBody {
    pub consumer_group: String,
    pub client_id: String,
    #[serde(default)]
    pub mq_set: Vec<MessageQueue>,
}

#[derive(Debug, Clone)]
struct LockEntry {
    client_id: String,
    last_update: Instant,
}

/// Locks of every group.
#[derive(Debug, Default)]
pub struct LockManager {
    groups: Mutex<HashMap<String, HashMap<MessageQueue, LockEntry>>>,
}

impl LockManager {
    /// Locks what is free, expired or already `client`'s; returns the queues `client` now holds.
    pub fn try_lock_batch(
        &self,
        group: &str,
        mqs: &[MessageQueue],
        client: &str,
        now: Instant,
    ) -> Vec<MessageQueue> {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        let table = g.entry(group.to_string()).or_default();
        let mut ok = Vec::new();
        for mq in mqs {
            let free = match table.get(mq) {
                None => true,
                Some(e) => {
                    e.client_id == client
                        || now.saturating_duration_since(e.last_update) > LOCK_MAX_LIVE
                }
            };
            if free {
                table.insert(
                    mq.clone(),
                    LockEntry {
                        client_id: client.to_string(),
                        last_update: now,
                    },
                );
                ok.push(mq.clone());
            }
        }
        ok
    }

    /// Releases the queues `client` holds.
    pub fn unlock_batch(&self, group: &str, mqs: &[MessageQueue], client: &str) {
        let mut g = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(table) = g.get_mut(group) {
            for mq in mqs {
                if table.get(mq).is_some_and(|e| e.client_id == client) {
                    table.remove(mq);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(q: i32) -> MessageQueue {
        MessageQueue {
            topic: "T".into(),
            broker_name: "b".into(),
            queue_id: q,
        }
    }

    #[test]
    fn lock_unlock_expire() {
        let m = LockManager::default();
        let t0 = Instant::now();
        assert_eq!(m.try_lock_batch("G", &[mq(0), mq(1)], "c1", t0).len(), 2);
        assert_eq!(
            m.try_lock_batch("G", &[mq(0), mq(2)], "c2", t0),
            vec![mq(2)]
        );
        m.unlock_batch("G", &[mq(0)], "c1");
        assert_eq!(m.try_lock_batch("G", &[mq(0)], "c2", t0), vec![mq(0)]);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(m.try_lock_batch("G", &[mq(1)], "c2", later), vec![mq(1)]);
    }
}
