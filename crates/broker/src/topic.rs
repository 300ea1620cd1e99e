//! The topic table: configs, the auto-create template (TBW102), system topics, a data version
//! bumped on every change, persistence in the store's metadata KV, and a signal that makes the
//! broker re-register with the name servers when topics change.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use ferrocket_store::dispatch::SCHEDULE_TOPIC;
use ferrocket_store::kv::{MetaKv, Namespace};
use tokio::sync::Notify;

use crate::body::{perm, DataVersion, TopicConfig, TopicConfigSerializeWrapper};
use crate::config::BrokerConfig;
use crate::transaction;
use crate::BrokerError;

/// Template topic producers name as `defaultTopic` for auto-creation.
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";

/// Topics producers may not send to directly.
const NOT_ALLOWED_SEND: &[&str] = &[
    SCHEDULE_TOPIC,
    transaction::HALF_TOPIC,
    transaction::OP_TOPIC,
    transaction::CHECK_MAX_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
];

/// Where RocketMQ's brokers announce a consumer offset that had to move (a system topic).
pub const OFFSET_MOVED_EVENT: &str = "OFFSET_MOVED_EVENT";

/// The topic every RocketMQ broker creates for its benchmark tool (a system topic).
pub const BENCHMARK_TOPIC: &str = "BenchmarkTest";

/// RocketMQ's fixed system topics; with the `rmq_sys_` prefix and the names a broker adds from
/// its conf (cluster, broker, trace and reply topics), the topics the admin API may not touch
/// while `validateSystemTopicWhenUpdateTopic` is on.
const SYSTEM_TOPICS: &[&str] = &[
    AUTO_CREATE_TOPIC_KEY,
    SCHEDULE_TOPIC,
    BENCHMARK_TOPIC,
    transaction::HALF_TOPIC,
    "RMQ_SYS_TRACE_TOPIC",
    transaction::OP_TOPIC,
    transaction::CHECK_MAX_TOPIC,
    SELF_TEST_TOPIC,
    OFFSET_MOVED_EVENT,
    "CHECKPOINT_TOPIC",
];

/// True for a system topic of a broker with this conf.
pub fn is_system_topic(conf: &BrokerConfig, topic: &str) -> bool {
    SYSTEM_TOPICS.contains(&topic)
        || topic.starts_with("rmq_sys_")
        || topic == conf.broker_cluster_name
        || topic == conf.broker_name
        || topic == conf.msg_trace_topic_name
        || topic == crate::processor::reply::reply_topic(&conf.broker_cluster_name)
}

/// Longest topic name a v1 record can carry.
pub const MAX_TOPIC_LEN: usize = 127;

/// Checks a topic name: 1..=127 chars out of `[%|a-zA-Z0-9_-]`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("the specified topic is blank".into());
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(format!(
            "the specified topic is longer than topic max length {MAX_TOPIC_LEN}"
        ));
    }
    if !topic
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'|' | b'_' | b'-'))
    {
        return Err(format!(
            "the specified topic[{topic}] contains illegal characters, allowing only ^[%|a-zA-Z0-9_-]+$"
        ));
    }
    Ok(())
}

/// True for topics producers may not write to.
pub fn is_not_allowed_send(topic: &str) -> bool {
    NOT_ALLOWED_SEND.contains(&topic)
}

/// `%RETRY%<group>`.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

struct Table {
    topics: HashMap<String, Arc<TopicConfig>>,
    version: DataVersion,
}

/// The broker's topics.
pub struct TopicManager {
    table: RwLock<Table>,
    kv: MetaKv,
    changed: Arc<Notify>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl TopicManager {
    /// Loads persisted topics and adds the system topics the configuration asks for.
    pub fn load(
        kv: MetaKv,
        conf: &BrokerConfig,
        changed: Arc<Notify>,
    ) -> Result<Self, BrokerError> {
        let mut topics = HashMap::new();
        for (name, bytes) in kv.entries(Namespace::Topics)? {
            match serde_json::from_slice::<TopicConfig>(&bytes) {
                Ok(tc) => {
                    topics.insert(name, Arc::new(tc));
                }
                Err(e) => {
                    tracing::warn!(topic = %name, error = %e, "skipping unreadable topic config")
                }
            }
        }
        let mgr = TopicManager {
            table: RwLock::new(Table {
                topics,
                version: DataVersion {
                    timestamp: now_ms(),
                    counter: 0,
                    state_version: None,
                },
            }),
            kv,
            changed,
        };
        let rw = perm::READ | perm::WRITE;
        let mut system = vec![TopicConfig::new(SELF_TEST_TOPIC, 1, 1, rw)];
        if conf.auto_create_topic_enable {
            let n = conf.default_topic_queue_nums;
            system.push(TopicConfig::new(
                AUTO_CREATE_TOPIC_KEY,
                n,
                n,
                perm::INHERIT | rw,
            ));
        }
        let cluster_perm = perm::INHERIT | if conf.cluster_topic_enable { rw } else { 0 };
        system.push(TopicConfig::new(
            &conf.broker_cluster_name,
            16,
            16,
            cluster_perm,
        ));
        let broker_perm = perm::INHERIT | if conf.broker_topic_enable { rw } else { 0 };
        system.push(TopicConfig::new(&conf.broker_name, 1, 1, broker_perm));
        system.push(TopicConfig::new(OFFSET_MOVED_EVENT, 1, 1, rw));
        // Request-reply answers (RocketMQ's `<cluster>_REPLY_TOPIC`, 1 queue).
        system.push(TopicConfig::new(
            &crate::processor::reply::reply_topic(&conf.broker_cluster_name),
            1,
            1,
            rw,
        ));
        system.push(TopicConfig::new(SCHEDULE_TOPIC, 18, 18, rw));
        // As RocketMQ's brokers do, so its benchmark tool (and `mqbench`) need no auto-create.
        let n = conf.default_topic_queue_nums;
        system.push(TopicConfig::new(BENCHMARK_TOPIC, n, n, rw));
        if conf.trace_topic_enable {
            system.push(TopicConfig::new(&conf.msg_trace_topic_name, 1, 1, rw));
        }
        for tc in system {
            if mgr.get(&tc.topic_name).is_none() {
                mgr.upsert_quiet(tc)?;
            }
        }
        Ok(mgr)
    }

    /// The config of `topic`.
    pub fn get(&self, topic: &str) -> Option<Arc<TopicConfig>> {
        self.read().topics.get(topic).cloned()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    fn upsert_quiet(&self, tc: TopicConfig) -> Result<Arc<TopicConfig>, BrokerError> {
        self.kv.put_json(Namespace::Topics, &tc.topic_name, &tc)?;
        // Topic changes are rare and a crash must not lose one the broker already acted on.
        self.kv.flush()?;
        let tc = Arc::new(tc);
        let mut t = self.write();
        t.topics.insert(tc.topic_name.clone(), Arc::clone(&tc));
        t.version = DataVersion {
            timestamp: now_ms(),
            counter: t.version.counter + 1,
            state_version: None,
        };
        Ok(tc)
    }

    /// Creates or replaces a topic, persists it and asks for a re-registration.
    pub fn upsert(&self, tc: TopicConfig) -> Result<Arc<TopicConfig>, BrokerError> {
        let tc = self.upsert_quiet(tc)?;
        self.changed.notify_one();
        Ok(tc)
    }

    /// Removes a topic; true if it existed.
    pub fn delete(&self, topic: &str) -> Result<bool, BrokerError> {
        self.kv.remove(Namespace::Topics, topic)?;
        self.kv.flush()?;
        let existed = {
            let mut t = self.write();
            let existed = t.topics.remove(topic).is_some();
            if existed {
                t.version = DataVersion {
                    timestamp: now_ms(),
                    counter: t.version.counter + 1,
                    state_version: None,
                };
            }
            existed
        };
        if existed {
            self.changed.notify_one();
        }
        Ok(existed)
    }

    /// A snapshot for GET_ALL_TOPIC_CONFIG and REGISTER_BROKER.
    pub fn wrapper(&self) -> TopicConfigSerializeWrapper {
        let t = self.read();
        TopicConfigSerializeWrapper {
            topic_config_table: t
                .topics
                .iter()
                .map(|(k, v)| (k.clone(), (**v).clone()))
                .collect(),
            data_version: t.version,
        }
    }

    pub fn data_version(&self) -> DataVersion {
        self.read().version
    }

    /// Auto-creates `topic` from the template `default_topic` on a send: only if the template
    /// exists and carries the inherit bit. Queue count = min(client's default, template's
    /// write queues); perm = template's perm without the inherit bit.
    pub fn create_in_send(
        &self,
        topic: &str,
        default_topic: &str,
        client_queue_nums: i32,
    ) -> Result<Option<Arc<TopicConfig>>, BrokerError> {
        if let Some(tc) = self.get(topic) {
            return Ok(Some(tc));
        }
        let Some(template) = self.get(default_topic) else {
            return Ok(None);
        };
        if !perm::inherited(template.perm) {
            return Ok(None);
        }
        let n = client_queue_nums.min(template.write_queue_nums).max(1);
        let tc = TopicConfig::new(topic, n, n, template.perm & !perm::INHERIT);
        tracing::info!(
            topic,
            queues = n,
            template = default_topic,
            "auto-creating topic"
        );
        self.upsert(tc).map(Some)
    }

    /// Returns `topic`, creating it with `queues` read/write queues and perm RW if absent (retry
    /// and DLQ topics).
    pub fn get_or_create(&self, topic: &str, queues: i32) -> Result<Arc<TopicConfig>, BrokerError> {
        if let Some(tc) = self.get(topic) {
            return Ok(tc);
        }
        self.upsert(TopicConfig::new(
            topic,
            queues,
            queues,
            perm::READ | perm::WRITE,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic("Topic-A_1%|x").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a b").is_err());
        assert!(validate_topic(&"x".repeat(128)).is_err());
        assert!(validate_topic(&"x".repeat(127)).is_ok());
    }

    #[test]
    fn auto_create_from_template_and_persist() {
        let dir = std::env::temp_dir().join(format!("ferrocket-topic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let conf = BrokerConfig {
            broker_name: "b1".into(),
            ..BrokerConfig::default()
        };
        let notify = Arc::new(Notify::new());
        {
            let kv = MetaKv::open(&dir).unwrap();
            let m = TopicManager::load(kv, &conf, notify.clone()).unwrap();
            let tbw = m.get(AUTO_CREATE_TOPIC_KEY).unwrap();
            assert_eq!(tbw.perm, 7);
            let v0 = m.data_version();
            let tc = m.create_in_send("NewTopic", "TBW102", 4).unwrap().unwrap();
            assert_eq!(
                (tc.read_queue_nums, tc.write_queue_nums, tc.perm),
                (4, 4, 6)
            );
            assert!(m.data_version().counter > v0.counter);
            assert!(m.create_in_send("Other", "NoSuch", 4).unwrap().is_none());
            assert!(m.get("b1").is_some());
            assert!(m.get("DefaultCluster").is_some());
        }
        let kv = MetaKv::open(&dir).unwrap();
        let m = TopicManager::load(kv, &conf, notify).unwrap();
        assert_eq!(m.get("NewTopic").unwrap().write_queue_nums, 4);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
