//! `TopicRouteData` (GET_ROUTEINFO_BY_TOPIC): which brokers serve a topic, with how many queues.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One broker name's queues of a topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    pub broker_name: String,
    #[serde(default)]
    pub read_queue_nums: i32,
    #[serde(default)]
    pub write_queue_nums: i32,
    #[serde(default)]
    pub perm: i32,
    /// `topicSysFlag`; clients of 4.8 and older (and the Go client) call it `topicSynFlag`.
    #[serde(default, alias = "topicSynFlag")]
    pub topic_sys_flag: i32,
}

/// One broker name: its cluster and the addresses of its members by broker id (0 = master).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    pub cluster: String,
    pub broker_name: String,
    #[serde(default)]
    pub broker_addrs: BTreeMap<i64, String>,
}

impl BrokerData {
    /// The master's address, if the master is up.
    pub fn master_addr(&self) -> Option<&str> {
        self.broker_addrs.get(&0).map(String::as_str)
    }
}

/// A topic's route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    #[serde(default)]
    pub queue_datas: Vec<QueueData>,
    #[serde(default)]
    pub broker_datas: Vec<BrokerData>,
    #[serde(default)]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_json_forms() {
        let legacy = r#"{"brokerDatas":[{"brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"},"brokerName":"broker-a","cluster":"DefaultCluster"}],"filterServerTable":{},"queueDatas":[{"brokerName":"broker-a","perm":6,"readQueueNums":4,"topicSynFlag":0,"writeQueueNums":4}]}"#;
        let r: TopicRouteData = crate::fastjson::from_str(legacy).unwrap();
        assert_eq!(r.broker_datas[0].broker_addrs[&1], "10.0.0.2:10911");
        assert_eq!(r.broker_datas[0].master_addr(), Some("10.0.0.1:10911"));
        assert_eq!(r.queue_datas[0].write_queue_nums, 4);
        let standard = crate::body::to_json(&r, true);
        let text = String::from_utf8(standard).unwrap();
        assert!(
            text.contains(r#""brokerAddrs":{"0":"10.0.0.1:10911","1":"10.0.0.2:10911"}"#),
            "{text}"
        );
        let old = String::from_utf8(crate::body::to_json(&r, false)).unwrap();
        assert!(
            old.contains(r#""brokerAddrs":{0:"10.0.0.1:10911",1:"10.0.0.2:10911"}"#),
            "{old}"
        );
    }
}
