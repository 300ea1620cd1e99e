//! JSON bodies the broker reads and writes (RocketMQ field names; fastjson-tolerant on input).
//!
//! Name-server bodies (topic configs, register body, KV table) come from the protocol crate;
//! the client and admin bodies here are private stand-ins until the protocol crate has them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use ferrocket_protocol::body::{
    DataVersion, KvTable, RegisterBrokerBody, TopicConfig, TopicConfigSerializeWrapper,
};

/// Permission bits of a topic or broker.
pub mod perm {
    pub use ferrocket_protocol::body::perm::*;

    pub fn inherited(p: i32) -> bool {
        p & INHERIT != 0
    }
}

/// `HeartbeatData`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    #[serde(rename = "clientID")]
    pub client_id: String,
    pub producer_data_set: Vec<ProducerData>,
    pub consumer_data_set: Vec<ConsumerData>,
}

/// `ProducerData`.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    pub group_name: String,
}

/// `ConsumerData`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    pub group_name: String,
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    pub subscription_data_set: Vec<SubscriptionData>,
    pub unit_mode: bool,
}

/// `SubscriptionData`.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    pub class_filter_mode: bool,
    pub topic: String,
    pub sub_string: String,
    pub tags_set: BTreeSet<String>,
    pub code_set: BTreeSet<i32>,
    pub sub_version: i64,
    pub expression_type: Option<String>,
}

fn yes() -> bool {
    true
}
fn one() -> i32 {
    1
}
fn one_i64() -> i64 {
    1
}
fn sixteen() -> i32 {
    16
}

/// `SubscriptionGroupConfig`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionGroupConfig {
    pub group_name: String,
    #[serde(default = "yes")]
    pub consume_enable: bool,
    #[serde(default = "yes")]
    pub consume_from_min_enable: bool,
    #[serde(default = "yes")]
    pub consume_broadcast_enable: bool,
    #[serde(default = "one")]
    pub retry_queue_nums: i32,
    #[serde(default = "sixteen")]
    pub retry_max_times: i32,
    #[serde(default)]
    pub broker_id: i64,
    #[serde(default = "one_i64")]
    pub which_broker_when_consume_slowly: i64,
    #[serde(default = "yes")]
    pub notify_consumer_ids_changed_enable: bool,
}

impl SubscriptionGroupConfig {
    pub fn new(group: &str) -> Self {
        SubscriptionGroupConfig {
            group_name: group.to_string(),
            consume_enable: true,
            consume_from_min_enable: true,
            consume_broadcast_enable: true,
            retry_queue_nums: 1,
            retry_max_times: 16,
            broker_id: 0,
            which_broker_when_consume_slowly: 1,
            notify_consumer_ids_changed_enable: true,
        }
    }
}

/// One client connection in `ConsumerConnection` / `ProducerConnection`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub client_id: String,
    pub client_addr: String,
    pub language: String,
    pub version: i32,
}

/// `ConsumerConnection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerConnection {
    pub connection_set: Vec<Connection>,
    pub subscription_table: BTreeMap<String, SubscriptionData>,
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_from_java_json() {
        let json = r#"{"clientID":"10.0.0.1@123","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_LAST_OFFSET","consumeType":"CONSUME_PASSIVELY","groupName":"g1","messageModel":"CLUSTERING","subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG","subString":"TagA","subVersion":1,"tagsSet":["TagA"],"topic":"T"}],"unitMode":false}],"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}"#;
        let hb: HeartbeatData = ferrocket_protocol::fastjson::from_str(json).unwrap();
        assert_eq!(hb.client_id, "10.0.0.1@123");
        assert_eq!(
            hb.consumer_data_set[0].subscription_data_set[0].sub_string,
            "TagA"
        );
        assert_eq!(hb.producer_data_set[0].group_name, "CLIENT_INNER_PRODUCER");
    }

    #[test]
    fn register_body_shape() {
        let mut w = TopicConfigSerializeWrapper::default();
        w.topic_config_table
            .insert("T".into(), TopicConfig::new("T", 4, 4, 6));
        let body = RegisterBrokerBody {
            topic_config_serialize_wrapper: w,
            filter_server_list: vec![],
        };
        let s = serde_json::to_string(&body).unwrap();
        assert!(s.contains(r#""topicConfigTable":{"T":{"topicName":"T","readQueueNums":4"#));
        assert!(s.contains(r#""dataVersion":{"counter":0,"timestamp":0}"#));
    }
}
