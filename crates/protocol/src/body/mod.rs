//! JSON bodies of the wire, with RocketMQ's field names. Reading accepts fastjson's unquoted
//! numeric map keys (use [`crate::fastjson::from_slice`]); writing gives standard JSON, which
//! [`crate::fastjson::unquote_numeric_keys`] turns into fastjson's form for old clients.

pub mod client;
pub mod cluster;
pub mod kv;
pub mod register;
pub mod route;
pub mod topic_config;

pub use cluster::ClusterInfo;
pub use kv::KvTable;
pub use register::RegisterBrokerBody;
pub use route::{BrokerData, QueueData, TopicRouteData};
pub use topic_config::{perm, DataVersion, TopicConfig, TopicConfigSerializeWrapper};

/// Serializes a body as standard JSON, or fastjson's form (unquoted numeric keys) when
/// `standard` is false.
pub fn to_json<T: serde::Serialize>(value: &T, standard: bool) -> Vec<u8> {
    // Serializing these plain data types cannot fail.
    let json = serde_json::to_string(value).expect("body serialization");
    if standard {
        json.into_bytes()
    } else {
        crate::fastjson::unquote_numeric_keys(&json).into_bytes()
    }
}

/// Whether a client wants standard JSON: version >= 401 (V4_9_4) or `acceptStandardJsonOnly`.
pub fn wants_standard_json(cmd: &crate::RemotingCommand) -> bool {
    cmd.version >= 401 || cmd.ext("acceptStandardJsonOnly") == Some("true")
}
