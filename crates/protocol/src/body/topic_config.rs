//! `TopicConfig`, `DataVersion` and `TopicConfigSerializeWrapper`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Permission bits of a topic or broker.
pub mod perm {
    pub const PRIORITY: i32 = 0x8;
    pub const READ: i32 = 0x4;
    pub const WRITE: i32 = 0x2;
    pub const INHERIT: i32 = 0x1;

    pub fn readable(p: i32) -> bool {
        p & READ != 0
    }
    pub fn writeable(p: i32) -> bool {
        p & WRITE != 0
    }
}

fn default_filter_type() -> String {
    "SINGLE_TAG".into()
}
fn sixteen() -> i32 {
    16
}
fn six() -> i32 {
    6
}

/// One topic's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfig {
    pub topic_name: String,
    #[serde(default = "sixteen")]
    pub read_queue_nums: i32,
    #[serde(default = "sixteen")]
    pub write_queue_nums: i32,
    #[serde(default = "six")]
    pub perm: i32,
    #[serde(default = "default_filter_type")]
    pub topic_filter_type: String,
    #[serde(default)]
    pub topic_sys_flag: i32,
    #[serde(default)]
    pub order: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl TopicConfig {
    pub fn new(name: &str, read: i32, write: i32, perm: i32) -> Self {
        TopicConfig {
            topic_name: name.to_string(),
            read_queue_nums: read,
            write_queue_nums: write,
            perm,
            topic_filter_type: default_filter_type(),
            topic_sys_flag: 0,
            order: false,
            attributes: BTreeMap::new(),
        }
    }

    /// The compressed-register text form: `name readQ writeQ perm FILTER_TYPE {attributes}`.
    pub fn from_text(s: &str) -> Option<TopicConfig> {
        let mut it = s.splitn(6, ' ');
        let name = it.next()?;
        let read = it.next()?.parse().ok()?;
        let write = it.next()?.parse().ok()?;
        let perm = it.next()?.parse().ok()?;
        let filter = it.next().unwrap_or("SINGLE_TAG").to_string();
        let attributes = match it.next() {
            Some(json) if !json.trim().is_empty() => crate::fastjson::from_str(json).ok()?,
            _ => BTreeMap::new(),
        };
        Some(TopicConfig {
            topic_filter_type: filter,
            attributes,
            ..TopicConfig::new(name, read, write, perm)
        })
    }

    /// The compressed-register text form (see [`TopicConfig::from_text`]).
    pub fn to_text(&self) -> String {
        let attrs = serde_json::to_string(&self.attributes).unwrap_or_else(|_| "{}".into());
        format!(
            "{} {} {} {} {} {}",
            self.topic_name,
            self.read_queue_nums,
            self.write_queue_nums,
            self.perm,
            self.topic_filter_type,
            attrs
        )
    }
}

/// Identifies a state of a broker's topic table: equal (timestamp, counter) means unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct DataVersion {
    #[serde(default)]
    pub counter: i64,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_version: Option<i64>,
}

impl DataVersion {
    /// Same state as `other` (RocketMQ compares timestamp and counter).
    pub fn same_as(&self, other: &DataVersion) -> bool {
        self.timestamp == other.timestamp && self.counter == other.counter
    }
}

/// A broker's topic table with its version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicConfigSerializeWrapper {
    #[serde(default)]
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    #[serde(default)]
    pub data_version: DataVersion,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips() {
        let t = TopicConfig::new("TopicTest", 4, 4, 6);
        assert_eq!(t.to_text(), "TopicTest 4 4 6 SINGLE_TAG {}");
        assert_eq!(TopicConfig::from_text(&t.to_text()), Some(t));
        let with_attr =
            TopicConfig::from_text("T 8 8 7 MULTI_TAG {\"+message.type\":\"FIFO\"}").unwrap();
        assert_eq!(with_attr.attributes["+message.type"], "FIFO");
        assert_eq!(with_attr.topic_filter_type, "MULTI_TAG");
        assert!(TopicConfig::from_text("T x 8 7").is_none());
    }

    #[test]
    fn reads_java_json_with_defaults() {
        let json = r#"{"dataVersion":{"counter":3,"timestamp":1700000000000},"topicConfigTable":{"T":{"topicName":"T","readQueueNums":4,"writeQueueNums":4,"perm":6,"topicFilterType":"SINGLE_TAG","topicSysFlag":0,"order":false}}}"#;
        let w: TopicConfigSerializeWrapper = crate::fastjson::from_str(json).unwrap();
        assert_eq!(w.data_version.counter, 3);
        assert_eq!(w.topic_config_table["T"].read_queue_nums, 4);
    }
}
