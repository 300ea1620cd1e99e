//! Headers of the name server's commands.

crate::header! {
    /// REGISTER_BROKER (103) request.
    pub struct RegisterBrokerRequestHeader {
        required {
            broker_name: String = "brokerName",
            broker_addr: String = "brokerAddr",
            cluster_name: String = "clusterName",
            ha_server_addr: String = "haServerAddr",
            broker_id: i64 = "brokerId",
        }
        optional {
            heartbeat_timeout_millis: i64 = "heartbeatTimeoutMillis",
            enable_acting_master: bool = "enableActingMaster",
            compressed: bool = "compressed",
            body_crc32: i32 = "bodyCrc32",
        }
    }
}

crate::header! {
    /// REGISTER_BROKER (103) response.
    pub struct RegisterBrokerResponseHeader {
        required {}
        optional {
            ha_server_addr: String = "haServerAddr",
            master_addr: String = "masterAddr",
        }
    }
}

crate::header! {
    /// UNREGISTER_BROKER (104) and QUERY_DATA_VERSION (322) request.
    pub struct UnregisterBrokerRequestHeader {
        required {
            broker_name: String = "brokerName",
            broker_addr: String = "brokerAddr",
            cluster_name: String = "clusterName",
            broker_id: i64 = "brokerId",
        }
        optional {}
    }
}

crate::header! {
    /// GET_ROUTEINFO_BY_TOPIC (105) request.
    pub struct GetRouteInfoRequestHeader {
        required { topic: String = "topic", }
        optional { accept_standard_json_only: bool = "acceptStandardJsonOnly", }
    }
}

crate::header! {
    /// DELETE_TOPIC_IN_NAMESRV (216) request.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        required { topic: String = "topic", }
        optional { cluster_name: String = "clusterName", }
    }
}

crate::header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) and ADD_WRITE_PERM_OF_BROKER (327) request.
    pub struct BrokerNameRequestHeader {
        required { broker_name: String = "brokerName", }
        optional {}
    }
}

crate::header! {
    /// PUT_KV_CONFIG (100) request.
    pub struct PutKvConfigRequestHeader {
        required { namespace: String = "namespace", key: String = "key", value: String = "value", }
        optional {}
    }
}

crate::header! {
    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102) request.
    pub struct KvConfigKeyRequestHeader {
        required { namespace: String = "namespace", key: String = "key", }
        optional {}
    }
}

crate::header! {
    /// GET_KVLIST_BY_NAMESPACE (219) request.
    pub struct GetKvListByNamespaceRequestHeader {
        required { namespace: String = "namespace", }
        optional {}
    }
}

crate::header! {
    /// GET_TOPICS_BY_CLUSTER (224) request.
    pub struct GetTopicsByClusterRequestHeader {
        required { cluster: String = "cluster", }
        optional {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::CommandHeader;
    use crate::RemotingCommand;

    #[test]
    fn register_header_reads_java_ext_fields() {
        let cmd = RemotingCommand::request(103)
            .with_ext("brokerName", "broker-a")
            .with_ext("brokerAddr", "10.0.0.1:10911")
            .with_ext("clusterName", "DefaultCluster")
            .with_ext("haServerAddr", "10.0.0.1:10912")
            .with_ext("brokerId", "0")
            .with_ext("compressed", "false")
            .with_ext("bodyCrc32", "123");
        let h: RegisterBrokerRequestHeader = cmd.header().unwrap();
        assert_eq!(h.broker_id, 0);
        assert_eq!(h.compressed, Some(false));
        assert_eq!(h.body_crc32, Some(123));
        assert_eq!(h.heartbeat_timeout_millis, None);
        let mut ext = Default::default();
        h.write_to(&mut ext);
        assert_eq!(RegisterBrokerRequestHeader::read_from(&ext).unwrap(), h);
    }

    #[test]
    fn empty_optional_is_absent_and_missing_required_is_named() {
        let cmd = RemotingCommand::request(216)
            .with_ext("topic", "T")
            .with_ext("clusterName", "");
        let h: DeleteTopicFromNamesrvRequestHeader = cmd.header().unwrap();
        assert_eq!(h.cluster_name, None);
        let err = RemotingCommand::request(105)
            .header::<GetRouteInfoRequestHeader>()
            .unwrap_err();
        assert_eq!(err.to_string(), "missing required header field `topic`");
    }
}
