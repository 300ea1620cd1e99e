//! JSON bodies the broker reads and writes (RocketMQ field names; fastjson-tolerant on input).
//!
//! Name-server bodies (topic configs, register body, KV table) come from the protocol crate;
//! client and group bodies too (`ferrocket_protocol::body::client`).

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

pub use ferrocket_protocol::body::client::{
    Connection, ConsumerConnection, ConsumerData, HeartbeatData, SubscriptionData,
    SubscriptionGroupConfig,
};

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
