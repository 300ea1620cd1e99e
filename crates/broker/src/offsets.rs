//! Consumer offsets: `topic@group` → {queueId → offset}, kept in memory, committed by pulls and
//! UPDATE_CONSUMER_OFFSET, written to the store's metadata KV every
//! `flushConsumerOffsetInterval` and at shutdown.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use ferrocket_store::kv::{MetaKv, Namespace};

use crate::BrokerError;

type Table = HashMap<String, BTreeMap<i32, i64>>;

/// The consumer offset table.
pub struct OffsetManager {
    table: Mutex<Table>,
    dirty: Mutex<HashSet<String>>,
    kv: MetaKv,
}

fn key(topic: &str, group: &str) -> String {
    format!("{topic}@{group}")
}

impl OffsetManager {
    /// Loads the persisted offsets.
    pub fn load(kv: MetaKv) -> Result<Self, BrokerError> {
        let mut table = Table::new();
        for (k, v) in kv.entries(Namespace::ConsumerOffsets)? {
            match ferrocket_protocol::fastjson::from_slice::<BTreeMap<i32, i64>>(&v) {
                Ok(m) => {
                    table.insert(k, m);
                }
                Err(e) => {
                    tracing::warn!(key = %k, error = %e, "skipping unreadable consumer offsets")
                }
            }
        }
        Ok(OffsetManager {
            table: Mutex::new(table),
            dirty: Mutex::new(HashSet::new()),
            kv,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `offset` as the group's committed offset of (topic, queue).
    pub fn commit(&self, group: &str, topic: &str, queue_id: i32, offset: i64) {
        let k = key(topic, group);
        self.lock()
            .entry(k.clone())
            .or_default()
            .insert(queue_id, offset);
        self.dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(k);
    }

    /// The committed offset, if any.
    pub fn query(&self, group: &str, topic: &str, queue_id: i32) -> Option<i64> {
        self.lock()
            .get(&key(topic, group))
            .and_then(|m| m.get(&queue_id).copied())
    }

    /// Every `topic@group` → offsets.
    pub fn snapshot(&self) -> BTreeMap<String, BTreeMap<i32, i64>> {
        self.lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Topics the group has offsets for.
    pub fn topics_of_group(&self, group: &str) -> Vec<String> {
        let suffix = format!("@{group}");
        let mut out: Vec<String> = self
            .lock()
            .keys()
            .filter_map(|k| k.strip_suffix(&suffix).map(String::from))
            .collect();
        out.sort();
        out
    }

    /// Removes every offset of `topic` (topic deletion).
    pub fn remove_topic(&self, topic: &str) -> Result<(), BrokerError> {
        let prefix = format!("{topic}@");
        let gone: Vec<String> = {
            let mut t = self.lock();
            let gone: Vec<String> = t
                .keys()
                .filter(|k| k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in &gone {
                t.remove(k);
            }
            gone
        };
        for k in gone {
            self.kv.remove(Namespace::ConsumerOffsets, &k)?;
        }
        Ok(())
    }

    /// Writes the changed entries to the KV and makes them durable.
    pub fn persist(&self) -> Result<(), BrokerError> {
        let dirty: Vec<String> = self
            .dirty
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .collect();
        if dirty.is_empty() {
            return Ok(());
        }
        for k in dirty {
            let v = self.lock().get(&k).cloned();
            if let Some(v) = v {
                self.kv.put_json(Namespace::ConsumerOffsets, &k, &v)?;
            }
        }
        self.kv.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_persist_reload() {
        let dir = std::env::temp_dir().join(format!("ferrocket-offsets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        {
            let m = OffsetManager::load(MetaKv::open(&dir).unwrap()).unwrap();
            assert_eq!(m.query("g", "t", 0), None);
            m.commit("g", "t", 0, 5);
            m.commit("g", "t", 1, 7);
            m.commit("g", "u", 0, 1);
            assert_eq!(m.query("g", "t", 1), Some(7));
            assert_eq!(m.topics_of_group("g"), vec!["t", "u"]);
            m.persist().unwrap();
        }
        let m = OffsetManager::load(MetaKv::open(&dir).unwrap()).unwrap();
        assert_eq!(m.query("g", "t", 0), Some(5));
        assert_eq!(m.snapshot().len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
