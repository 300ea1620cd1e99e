//! The broker's typed runtime configuration: RocketMQ's `BrokerConfig`, `NettyServerConfig` and
//! `MessageStoreConfig` keys the broker acts on, with RocketMQ's defaults.
//!
//! Built from the key/value pairs of a RocketMQ `.properties` file ([`BrokerConfig::from_properties`]);
//! the conf crate (`ferrocket-conf`) does the file parsing, provenance and validation; this module only types the
//! values. Address rule: when `brokerIP1` is unset the broker advertises the first up,
//! non-loopback IPv4 address of the host, else `127.0.0.1` (RocketMQ's heuristic is similar but
//! also skips 192.168.x when something else exists).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use ferrocket_store::{FlushDiskType, StoreConfig};

use crate::BrokerError;

/// The broker's role in a master/slave pair (`brokerRole`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    AsyncMaster,
    SyncMaster,
    Slave,
}

/// Everything the broker reads from its conf file.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_cluster_name: String,
    pub broker_name: String,
    pub broker_id: i64,
    /// Advertised address of the remoting ports (`brokerIP1`, resolved).
    pub broker_ip1: IpAddr,
    /// HA address host (`brokerIP2`, defaults to `brokerIP1`).
    pub broker_ip2: IpAddr,
    pub listen_port: u16,
    pub ha_listen_port: u16,
    /// `grpcServerPort` (Ferrocket's own; RocketMQ's proxy key, default 8081): where RocketMQ
    /// 5.x gRPC clients connect, on `brokerIP1`; 0 serves no gRPC.
    pub grpc_server_port: u16,
    /// `grpcServerPort` was set in the file: a port in use then stops startup; the default port
    /// in use only disables gRPC with a warning (another broker or a proxy on this host).
    pub grpc_port_explicit: bool,
    /// `namesrvAddr`, split on `;`.
    pub namesrv_addr: Vec<String>,
    pub broker_role: BrokerRole,
    pub broker_permission: i32,
    pub default_topic_queue_nums: i32,
    pub auto_create_topic_enable: bool,
    pub cluster_topic_enable: bool,
    pub broker_topic_enable: bool,
    pub auto_create_subscription_group: bool,
    pub trace_topic_enable: bool,
    pub msg_trace_topic_name: String,
    pub send_thread_pool_queue_capacity: usize,
    pub send_message_thread_pool_nums: usize,
    pub wait_time_mills_in_send_queue: u64,
    /// `brokerFastFailureEnable`: a send that finds the send queue full waits up to
    /// `waitTimeMillsInSendQueue` for room ([TIMEOUT_CLEAN_QUEUE] after); off, it is refused
    /// at once ([OVERLOAD]).
    pub broker_fast_failure_enable: bool,
    pub long_polling_enable: bool,
    pub short_polling_time_mills: u64,
    pub notify_consumer_ids_changed_enable: bool,
    pub flush_consumer_offset_interval: u64,
    pub register_name_server_period: u64,
    pub register_broker_timeout_mills: u64,
    pub region_id: String,
    pub trace_on: bool,
    pub slave_read_enable: bool,
    /// `storeReplyMessageEnable`: reply messages are stored in the reply topic as well as pushed.
    pub store_reply_message_enable: bool,
    /// `validateSystemTopicWhenUpdateTopic`: creating, updating or deleting a system topic
    /// through the admin API is refused (RocketMQ 5.x; 4.x always refused).
    pub validate_system_topic_when_update_topic: bool,
    /// `compressedRegister`: REGISTER_BROKER bodies in RocketMQ's zlib form.
    pub compressed_register: bool,
    /// `forceRegister`: every periodic registration registers; off, a periodic round asks the
    /// name servers (QUERY_DATA_VERSION, which also keeps the broker alive there) and registers
    /// only if one of them holds another topic-table version. Topic changes always register.
    pub force_register: bool,
    /// `disableConsumeIfConsumerReadSlowly`: stop a group that reads further behind than
    /// `consumerFallbehindThreshold` bytes (see `protect`).
    pub disable_consume_if_consumer_read_slowly: bool,
    pub consumer_fallbehind_threshold: i64,
    /// `diskFallRecorded` (a store key in RocketMQ): pulls note how far behind they read.
    pub disk_fall_recorded: bool,
    /// `transactionTimeOut` (ms): a half message younger than this is not checked back.
    pub transaction_timeout: u64,
    /// `transactionCheckMax`: check-backs before a half message is parked.
    pub transaction_check_max: i32,
    /// `transactionCheckInterval` (ms).
    pub transaction_check_interval: u64,
    /// `rejectTransactionMessage`.
    pub reject_transaction_message: bool,
    /// `enablePropertyFilter`: SQL92 subscriptions are served.
    pub enable_property_filter: bool,
    /// `timerWheelEnable`: TIMER_DELIVER_MS / TIMER_DELAY_SEC / TIMER_DELAY_MS messages wait in
    /// the timer wheel.
    pub timer_wheel_enable: bool,
    /// `timerMaxDelaySec`: the furthest delivery time accepted.
    pub timer_max_delay_sec: i64,
    /// `timerPrecisionMs`: how early RocketMQ may deliver a timer message (it rounds the due time
    /// down to this). Read, and shown by `mqbroker -p`, but it changes nothing here: the wheel
    /// ticks every 100 ms and delivers at the due time, within any precision this allows.
    pub timer_precision_ms: i64,
    /// DLedger mode (`enableDLegerCommitLog=true`).
    pub dledger: Option<DLedgerConf>,
    /// Largest frame accepted from a peer.
    pub max_frame: usize,
    /// Idle time after which a client channel is closed and its registrations dropped.
    pub channel_expired_millis: u64,
    /// `serverChannelMaxIdleTimeSeconds`: a connection that sends nothing this long is closed.
    pub server_channel_max_idle_time_seconds: u64,
    /// `haMasterAddress`: a slave's fixed master HA address (else learnt from the name servers).
    pub ha_master_address: Option<String>,
    /// `slaveTimeout` (ms): SYNC_MASTER wait for slave acks.
    pub slave_timeout: u64,
    /// `haMaxGapNotInSync` / `haSlaveFallbehindMax`: a slave further behind is not in sync.
    pub ha_max_gap_not_in_sync: i64,
    /// `haSendHeartbeatInterval` (ms): the master sends an empty transfer, and a slave reports
    /// its offset, at least this often.
    pub ha_send_heartbeat_interval: u64,
    /// `haHousekeepingInterval` (ms): an HA link silent this long is dropped (and a slave
    /// reconnects).
    pub ha_housekeeping_interval: u64,
    /// `haTransferBatchSize` (bytes): most commitlog bytes one HA transfer carries.
    pub ha_transfer_batch_size: usize,
    /// `inSyncReplicas` (counting the master).
    pub in_sync_replicas: u32,
    /// `totalReplicas` (counting the master; 0 = unset).
    pub total_replicas: u32,
    pub store: StoreConfig,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: "DEFAULT_BROKER".into(),
            broker_id: 0,
            broker_ip1: ip,
            broker_ip2: ip,
            listen_port: 10911,
            ha_listen_port: 10912,
            grpc_server_port: 8081,
            grpc_port_explicit: false,
            namesrv_addr: Vec::new(),
            broker_role: BrokerRole::AsyncMaster,
            broker_permission: 6,
            default_topic_queue_nums: 8,
            auto_create_topic_enable: true,
            cluster_topic_enable: true,
            broker_topic_enable: true,
            auto_create_subscription_group: true,
            trace_topic_enable: false,
            msg_trace_topic_name: "RMQ_SYS_TRACE_TOPIC".into(),
            send_thread_pool_queue_capacity: 10_000,
            send_message_thread_pool_nums: cores.min(4),
            wait_time_mills_in_send_queue: 200,
            broker_fast_failure_enable: true,
            long_polling_enable: true,
            short_polling_time_mills: 1000,
            notify_consumer_ids_changed_enable: true,
            flush_consumer_offset_interval: 5000,
            register_name_server_period: 30_000,
            register_broker_timeout_mills: 6000,
            region_id: "DefaultRegion".into(),
            trace_on: true,
            slave_read_enable: false,
            store_reply_message_enable: true,
            validate_system_topic_when_update_topic: true,
            compressed_register: false,
            force_register: true,
            disable_consume_if_consumer_read_slowly: false,
            consumer_fallbehind_threshold: 16 << 30,
            disk_fall_recorded: true,
            transaction_timeout: 6000,
            transaction_check_max: 15,
            transaction_check_interval: 30_000,
            reject_transaction_message: false,
            enable_property_filter: false,
            timer_wheel_enable: true,
            timer_max_delay_sec: 259_200,
            timer_precision_ms: 1000,
            dledger: None,
            max_frame: ferrocket_protocol::frame::DEFAULT_MAX_FRAME,
            channel_expired_millis: 120_000,
            server_channel_max_idle_time_seconds: 120,
            ha_master_address: None,
            slave_timeout: 3000,
            ha_max_gap_not_in_sync: 256 * 1024 * 1024,
            ha_send_heartbeat_interval: 5000,
            ha_housekeeping_interval: 20_000,
            ha_transfer_batch_size: 32 * 1024,
            in_sync_replicas: 1,
            total_replicas: 0,
            store: StoreConfig::default(),
        }
    }
}

/// The conf's values, remembering which keys the parser asked for (see [`BrokerConfig::read_keys`]).
struct Props<'a> {
    map: &'a HashMap<String, String>,
    asked: std::cell::RefCell<std::collections::BTreeSet<&'static str>>,
}

impl Props<'_> {
    fn str(&self, key: &'static str) -> Option<String> {
        self.asked.borrow_mut().insert(key);
        self.map
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn parse<T: std::str::FromStr>(&self, key: &'static str) -> Result<Option<T>, BrokerError> {
        match self.str(key) {
            None => Ok(None),
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|_| BrokerError::Config(format!("{key}={v} is not a valid value"))),
        }
    }

    fn set<T: std::str::FromStr>(&self, key: &'static str, dst: &mut T) -> Result<(), BrokerError> {
        if let Some(v) = self.parse(key)? {
            *dst = v;
        }
        Ok(())
    }

    /// [`Props::set`] for a count or interval that must not be 0.
    fn set_positive<T>(&self, key: &'static str, dst: &mut T) -> Result<(), BrokerError>
    where
        T: std::str::FromStr + Default + PartialEq + std::fmt::Display,
    {
        if let Some(v) = self.parse::<T>(key)? {
            if v == T::default() {
                return Err(BrokerError::Config(format!(
                    "{key}={v} is not a valid value: it must be at least 1"
                )));
            }
            *dst = v;
        }
        Ok(())
    }
}

/// DLedger settings of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DLedgerConf {
    pub group: String,
    pub self_id: String,
    /// `dLegerPeers` in order: (id, host:port).
    pub peers: Vec<(String, String)>,
    /// `dLegerHeartbeatIntervalMs` (Ferrocket; default 100).
    pub heartbeat_ms: u64,
    /// `dLegerElectionTimeoutMs` (Ferrocket; default 400): a follower that hears no leader for
    /// between this and twice this starts an election.
    pub election_timeout_ms: u64,
    /// `dLegerRaftLogMaxMb` (Ferrocket; default 256; 0 = never): past this size the Raft log is
    /// compacted (a snapshot, then the log before it purged).
    pub raft_log_max_mb: u64,
}

impl BrokerConfig {
    /// Types the key/value pairs of a broker conf file (unknown keys are ignored, as RocketMQ
    /// does). `brokerIP1` unset resolves to the host's first non-loopback IPv4 address.
    pub fn from_properties(map: &HashMap<String, String>) -> Result<Self, BrokerError> {
        Self::from_props(&Props {
            map,
            asked: Default::default(),
        })
    }

    /// Every key [`from_properties`](Self::from_properties) reads, including those it reads only
    /// in DLedger mode: the keys `mqbroker` acts on, so the keys it must not call unimplemented.
    pub fn read_keys() -> std::collections::BTreeSet<&'static str> {
        let dledger: HashMap<String, String> = [
            ("enableDLegerCommitLog", "true"),
            ("dLegerGroup", "g"),
            ("dLegerSelfId", "n0"),
            ("dLegerPeers", "n0-127.0.0.1:40911"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut keys = std::collections::BTreeSet::new();
        for map in [HashMap::new(), dledger] {
            let p = Props {
                map: &map,
                asked: Default::default(),
            };
            let parsed = Self::from_props(&p);
            debug_assert!(parsed.is_ok(), "a pass stopped early: {parsed:?}");
            keys.extend(p.asked.take());
        }
        keys
    }

    /// The keys `mqbroker` acts on: those it reads and those it reports (`-p`).
    pub fn implemented_keys() -> Vec<&'static str> {
        let mut keys = Self::read_keys();
        keys.extend(BrokerConfig::default().effective().into_keys());
        keys.into_iter().collect()
    }

    fn from_props(p: &Props<'_>) -> Result<Self, BrokerError> {
        let mut c = BrokerConfig::default();
        if let Some(name) = p.str("brokerName") {
            c.broker_name = name;
        } else if let Some(host) = hostname() {
            c.broker_name = host;
        }
        p.set("brokerClusterName", &mut c.broker_cluster_name)?;
        p.set("brokerId", &mut c.broker_id)?;
        p.set("listenPort", &mut c.listen_port)?;
        c.grpc_port_explicit = p.str("grpcServerPort").is_some();
        p.set("grpcServerPort", &mut c.grpc_server_port)?;
        c.broker_ip1 = match p.str("brokerIP1") {
            Some(v) => v
                .parse()
                .map_err(|_| BrokerError::Config(format!("brokerIP1={v} is not an IP address")))?,
            None => default_ip(),
        };
        c.broker_ip2 = match p.str("brokerIP2") {
            Some(v) => v
                .parse()
                .map_err(|_| BrokerError::Config(format!("brokerIP2={v} is not an IP address")))?,
            None => c.broker_ip1,
        };
        // RocketMQ 4.9 always puts HA on listenPort + 1; 5.x honours an explicit haListenPort.
        c.ha_listen_port = c.listen_port.wrapping_add(1);
        p.set("haListenPort", &mut c.ha_listen_port)?;
        if let Some(v) = p.str("namesrvAddr") {
            c.namesrv_addr = split_namesrv(&v);
        }
        if let Some(role) = p.str("brokerRole") {
            c.broker_role = match role.as_str() {
                "ASYNC_MASTER" => BrokerRole::AsyncMaster,
                "SYNC_MASTER" => BrokerRole::SyncMaster,
                "SLAVE" => BrokerRole::Slave,
                other => {
                    return Err(BrokerError::Config(format!(
                        "brokerRole={other}: expected ASYNC_MASTER, SYNC_MASTER or SLAVE"
                    )))
                }
            };
        }
        if c.broker_role != BrokerRole::Slave {
            c.broker_id = 0;
        }
        p.set("brokerPermission", &mut c.broker_permission)?;
        p.set("defaultTopicQueueNums", &mut c.default_topic_queue_nums)?;
        p.set("autoCreateTopicEnable", &mut c.auto_create_topic_enable)?;
        p.set("clusterTopicEnable", &mut c.cluster_topic_enable)?;
        p.set("brokerTopicEnable", &mut c.broker_topic_enable)?;
        p.set(
            "autoCreateSubscriptionGroup",
            &mut c.auto_create_subscription_group,
        )?;
        p.set("traceTopicEnable", &mut c.trace_topic_enable)?;
        p.set("msgTraceTopicName", &mut c.msg_trace_topic_name)?;
        p.set(
            "sendThreadPoolQueueCapacity",
            &mut c.send_thread_pool_queue_capacity,
        )?;
        p.set(
            "sendMessageThreadPoolNums",
            &mut c.send_message_thread_pool_nums,
        )?;
        p.set(
            "waitTimeMillsInSendQueue",
            &mut c.wait_time_mills_in_send_queue,
        )?;
        p.set("brokerFastFailureEnable", &mut c.broker_fast_failure_enable)?;
        p.set("longPollingEnable", &mut c.long_polling_enable)?;
        p.set("shortPollingTimeMills", &mut c.short_polling_time_mills)?;
        p.set(
            "notifyConsumerIdsChangedEnable",
            &mut c.notify_consumer_ids_changed_enable,
        )?;
        p.set(
            "flushConsumerOffsetInterval",
            &mut c.flush_consumer_offset_interval,
        )?;
        p.set(
            "registerNameServerPeriod",
            &mut c.register_name_server_period,
        )?;
        c.register_name_server_period = c.register_name_server_period.clamp(10_000, 60_000);
        p.set(
            "registerBrokerTimeoutMills",
            &mut c.register_broker_timeout_mills,
        )?;
        p.set("regionId", &mut c.region_id)?;
        p.set("traceOn", &mut c.trace_on)?;
        p.set("slaveReadEnable", &mut c.slave_read_enable)?;
        p.set("storeReplyMessageEnable", &mut c.store_reply_message_enable)?;
        p.set(
            "validateSystemTopicWhenUpdateTopic",
            &mut c.validate_system_topic_when_update_topic,
        )?;
        p.set("compressedRegister", &mut c.compressed_register)?;
        p.set("forceRegister", &mut c.force_register)?;
        p.set(
            "disableConsumeIfConsumerReadSlowly",
            &mut c.disable_consume_if_consumer_read_slowly,
        )?;
        p.set(
            "consumerFallbehindThreshold",
            &mut c.consumer_fallbehind_threshold,
        )?;
        p.set("diskFallRecorded", &mut c.disk_fall_recorded)?;
        p.set("transactionTimeOut", &mut c.transaction_timeout)?;
        p.set("transactionCheckMax", &mut c.transaction_check_max)?;
        p.set(
            "transactionCheckInterval",
            &mut c.transaction_check_interval,
        )?;
        p.set(
            "rejectTransactionMessage",
            &mut c.reject_transaction_message,
        )?;
        p.set("enablePropertyFilter", &mut c.enable_property_filter)?;
        p.set("timerWheelEnable", &mut c.timer_wheel_enable)?;
        p.set("timerMaxDelaySec", &mut c.timer_max_delay_sec)?;
        p.set("timerPrecisionMs", &mut c.timer_precision_ms)?;
        c.timer_precision_ms = c.timer_precision_ms.clamp(100, 60_000);
        let mut dledger = false;
        p.set("enableDLegerCommitLog", &mut dledger)?;
        if dledger {
            let group = p.str("dLegerGroup").unwrap_or_default();
            let self_id = p.str("dLegerSelfId").unwrap_or_default();
            let text = p.str("dLegerPeers").unwrap_or_default();
            let mut peers = Vec::new();
            for item in text.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let Some((id, addr)) = item.split_once('-') else {
                    return Err(BrokerError::Config(format!(
                        "dLegerPeers entry {item:?}: expected id-host:port"
                    )));
                };
                peers.push((id.trim().to_string(), addr.trim().to_string()));
            }
            if group.is_empty() || self_id.is_empty() || peers.is_empty() {
                return Err(BrokerError::Config(
                    "enableDLegerCommitLog=true needs dLegerGroup, dLegerPeers and dLegerSelfId"
                        .into(),
                ));
            }
            let mut d = DLedgerConf {
                group,
                self_id,
                peers,
                heartbeat_ms: 100,
                election_timeout_ms: 400,
                raft_log_max_mb: 256,
            };
            p.set("dLegerHeartbeatIntervalMs", &mut d.heartbeat_ms)?;
            p.set("dLegerElectionTimeoutMs", &mut d.election_timeout_ms)?;
            p.set("dLegerRaftLogMaxMb", &mut d.raft_log_max_mb)?;
            d.heartbeat_ms = d.heartbeat_ms.max(20);
            d.election_timeout_ms = d.election_timeout_ms.max(d.heartbeat_ms * 3);
            c.dledger = Some(d);
        }
        p.set(
            "serverChannelMaxIdleTimeSeconds",
            &mut c.server_channel_max_idle_time_seconds,
        )?;
        c.ha_master_address = p.str("haMasterAddress");
        p.set("slaveTimeout", &mut c.slave_timeout)?;
        for key in ["haSlaveFallbehindMax", "haMaxGapNotInSync"] {
            p.set(key, &mut c.ha_max_gap_not_in_sync)?;
        }
        p.set("inSyncReplicas", &mut c.in_sync_replicas)?;
        p.set_positive("haSendHeartbeatInterval", &mut c.ha_send_heartbeat_interval)?;
        p.set_positive("haHousekeepingInterval", &mut c.ha_housekeeping_interval)?;
        p.set_positive("haTransferBatchSize", &mut c.ha_transfer_batch_size)?;
        p.set("totalReplicas", &mut c.total_replicas)?;

        let s = &mut c.store;
        if let Some(root) = p.str("storePathRootDir") {
            s.store_path_root_dir = PathBuf::from(root);
        }
        if let Some(cl) = p.str("storePathCommitLog") {
            s.store_path_commit_log = Some(PathBuf::from(cl));
        }
        for key in ["mapedFileSizeCommitLog", "mappedFileSizeCommitLog"] {
            p.set(key, &mut s.mapped_file_size_commit_log)?;
        }
        for key in ["mapedFileSizeConsumeQueue", "mappedFileSizeConsumeQueue"] {
            p.set(key, &mut s.mapped_file_size_consume_queue)?;
        }
        if let Some(ft) = p.str("flushDiskType") {
            s.flush_disk_type = match ft.as_str() {
                "ASYNC_FLUSH" => FlushDiskType::AsyncFlush,
                "SYNC_FLUSH" => FlushDiskType::SyncFlush,
                other => {
                    return Err(BrokerError::Config(format!(
                        "flushDiskType={other}: expected ASYNC_FLUSH or SYNC_FLUSH"
                    )))
                }
            };
        }
        p.set("flushIntervalCommitLog", &mut s.flush_interval_commit_log)?;
        p.set(
            "flushCommitLogLeastPages",
            &mut s.flush_commit_log_least_pages,
        )?;
        p.set(
            "flushCommitLogThoroughInterval",
            &mut s.flush_commit_log_thorough_interval,
        )?;
        p.set("warmMapedFileEnable", &mut s.warm_mapped_file_enable)?;
        p.set(
            "flushIntervalConsumeQueue",
            &mut s.flush_interval_consume_queue,
        )?;
        p.set("syncFlushTimeout", &mut s.sync_flush_timeout)?;
        p.set("deleteWhen", &mut s.delete_when)?;
        p.set("fileReservedTime", &mut s.file_reserved_time)?;
        p.set("diskMaxUsedSpaceRatio", &mut s.disk_max_used_space_ratio)?;
        // RocketMQ's getter holds it to 10..=95.
        s.disk_max_used_space_ratio = s.disk_max_used_space_ratio.clamp(10, 95);
        p.set(
            "diskSpaceWarningLevelRatio",
            &mut s.disk_space_warning_level_ratio,
        )?;
        p.set(
            "diskSpaceCleanForciblyRatio",
            &mut s.disk_space_clean_forcibly_ratio,
        )?;
        p.set("cleanFileForciblyEnable", &mut s.clean_file_forcibly_enable)?;
        p.set("cleanResourceInterval", &mut s.clean_resource_interval)?;
        p.set("deleteFileBatchMax", &mut s.delete_file_batch_max)?;
        p.set(
            "deleteCommitLogFilesInterval",
            &mut s.delete_commit_log_files_interval,
        )?;
        p.set(
            "deleteConsumeQueueFilesInterval",
            &mut s.delete_consume_queue_files_interval,
        )?;
        p.set("maxMessageSize", &mut s.max_message_size)?;
        p.set("messageIndexEnable", &mut s.message_index_enable)?;
        p.set("maxHashSlotNum", &mut s.max_hash_slot_num)?;
        p.set("maxIndexNum", &mut s.max_index_num)?;
        p.set("defaultQueryMaxNum", &mut s.default_query_max_num)?;
        p.set("maxMsgsNumBatch", &mut s.max_msgs_num_batch)?;
        p.set(
            "maxTransferBytesOnMessageInMemory",
            &mut s.max_transfer_bytes_on_message_in_memory,
        )?;
        p.set(
            "maxTransferCountOnMessageInMemory",
            &mut s.max_transfer_count_on_message_in_memory,
        )?;
        p.set(
            "maxTransferBytesOnMessageInDisk",
            &mut s.max_transfer_bytes_on_message_in_disk,
        )?;
        p.set(
            "maxTransferCountOnMessageInDisk",
            &mut s.max_transfer_count_on_message_in_disk,
        )?;
        p.set(
            "accessMessageInMemoryMaxRatio",
            &mut s.access_message_in_memory_max_ratio,
        )?;
        p.set("checkCRCOnRecover", &mut s.check_crc_on_recover)?;
        p.set(
            "osPageCacheBusyTimeOutMills",
            &mut s.os_page_cache_busy_timeout_ms,
        )?;
        p.set("messageDelayLevel", &mut s.message_delay_level)?;
        s.store_host = SocketAddr::new(c.broker_ip1, c.listen_port);
        Ok(c)
    }

    /// Every effective setting under its RocketMQ key (`-p`, GET_BROKER_CONFIG).
    pub fn effective(&self) -> std::collections::BTreeMap<&'static str, String> {
        let s = &self.store;
        let flush = match s.flush_disk_type {
            FlushDiskType::AsyncFlush => "ASYNC_FLUSH",
            FlushDiskType::SyncFlush => "SYNC_FLUSH",
        };
        let role = match self.broker_role {
            BrokerRole::AsyncMaster => "ASYNC_MASTER",
            BrokerRole::SyncMaster => "SYNC_MASTER",
            BrokerRole::Slave => "SLAVE",
        };
        let v: Vec<(&'static str, String)> = vec![
            ("brokerClusterName", self.broker_cluster_name.clone()),
            ("brokerName", self.broker_name.clone()),
            ("brokerId", self.broker_id.to_string()),
            ("brokerIP1", self.broker_ip1.to_string()),
            ("brokerIP2", self.broker_ip2.to_string()),
            ("listenPort", self.listen_port.to_string()),
            ("grpcServerPort", self.grpc_server_port.to_string()),
            ("haListenPort", self.ha_listen_port.to_string()),
            ("namesrvAddr", self.namesrv_addr.join(";")),
            ("brokerRole", role.into()),
            ("brokerPermission", self.broker_permission.to_string()),
            (
                "defaultTopicQueueNums",
                self.default_topic_queue_nums.to_string(),
            ),
            (
                "autoCreateTopicEnable",
                self.auto_create_topic_enable.to_string(),
            ),
            ("clusterTopicEnable", self.cluster_topic_enable.to_string()),
            ("brokerTopicEnable", self.broker_topic_enable.to_string()),
            (
                "autoCreateSubscriptionGroup",
                self.auto_create_subscription_group.to_string(),
            ),
            ("traceTopicEnable", self.trace_topic_enable.to_string()),
            ("msgTraceTopicName", self.msg_trace_topic_name.clone()),
            (
                "sendThreadPoolQueueCapacity",
                self.send_thread_pool_queue_capacity.to_string(),
            ),
            (
                "sendMessageThreadPoolNums",
                self.send_message_thread_pool_nums.to_string(),
            ),
            (
                "waitTimeMillsInSendQueue",
                self.wait_time_mills_in_send_queue.to_string(),
            ),
            (
                "brokerFastFailureEnable",
                self.broker_fast_failure_enable.to_string(),
            ),
            ("longPollingEnable", self.long_polling_enable.to_string()),
            (
                "shortPollingTimeMills",
                self.short_polling_time_mills.to_string(),
            ),
            (
                "notifyConsumerIdsChangedEnable",
                self.notify_consumer_ids_changed_enable.to_string(),
            ),
            (
                "flushConsumerOffsetInterval",
                self.flush_consumer_offset_interval.to_string(),
            ),
            (
                "registerNameServerPeriod",
                self.register_name_server_period.to_string(),
            ),
            (
                "registerBrokerTimeoutMills",
                self.register_broker_timeout_mills.to_string(),
            ),
            ("regionId", self.region_id.clone()),
            ("traceOn", self.trace_on.to_string()),
            ("slaveReadEnable", self.slave_read_enable.to_string()),
            (
                "storeReplyMessageEnable",
                self.store_reply_message_enable.to_string(),
            ),
            (
                "validateSystemTopicWhenUpdateTopic",
                self.validate_system_topic_when_update_topic.to_string(),
            ),
            ("compressedRegister", self.compressed_register.to_string()),
            ("forceRegister", self.force_register.to_string()),
            (
                "disableConsumeIfConsumerReadSlowly",
                self.disable_consume_if_consumer_read_slowly.to_string(),
            ),
            (
                "consumerFallbehindThreshold",
                self.consumer_fallbehind_threshold.to_string(),
            ),
            ("diskFallRecorded", self.disk_fall_recorded.to_string()),
            ("transactionTimeOut", self.transaction_timeout.to_string()),
            (
                "transactionCheckMax",
                self.transaction_check_max.to_string(),
            ),
            (
                "transactionCheckInterval",
                self.transaction_check_interval.to_string(),
            ),
            (
                "rejectTransactionMessage",
                self.reject_transaction_message.to_string(),
            ),
            (
                "enablePropertyFilter",
                self.enable_property_filter.to_string(),
            ),
            ("timerWheelEnable", self.timer_wheel_enable.to_string()),
            ("timerMaxDelaySec", self.timer_max_delay_sec.to_string()),
            ("timerPrecisionMs", self.timer_precision_ms.to_string()),
            ("enableDLegerCommitLog", self.dledger.is_some().to_string()),
            (
                "dLegerGroup",
                self.dledger
                    .as_ref()
                    .map_or(String::new(), |d| d.group.clone()),
            ),
            (
                "dLegerPeers",
                self.dledger.as_ref().map_or(String::new(), |d| {
                    d.peers
                        .iter()
                        .map(|(id, a)| format!("{id}-{a}"))
                        .collect::<Vec<_>>()
                        .join(";")
                }),
            ),
            (
                "dLegerSelfId",
                self.dledger
                    .as_ref()
                    .map_or(String::new(), |d| d.self_id.clone()),
            ),
            (
                "dLegerHeartbeatIntervalMs",
                self.dledger
                    .as_ref()
                    .map_or(100, |d| d.heartbeat_ms)
                    .to_string(),
            ),
            (
                "dLegerElectionTimeoutMs",
                self.dledger
                    .as_ref()
                    .map_or(400, |d| d.election_timeout_ms)
                    .to_string(),
            ),
            (
                "dLegerRaftLogMaxMb",
                self.dledger
                    .as_ref()
                    .map_or(256, |d| d.raft_log_max_mb)
                    .to_string(),
            ),
            (
                "serverChannelMaxIdleTimeSeconds",
                self.server_channel_max_idle_time_seconds.to_string(),
            ),
            (
                "storePathRootDir",
                s.store_path_root_dir.display().to_string(),
            ),
            (
                "storePathCommitLog",
                s.commit_log_dir().display().to_string(),
            ),
            (
                "mappedFileSizeCommitLog",
                s.mapped_file_size_commit_log.to_string(),
            ),
            (
                "mappedFileSizeConsumeQueue",
                s.mapped_file_size_consume_queue.to_string(),
            ),
            ("flushDiskType", flush.into()),
            ("warmMapedFileEnable", s.warm_mapped_file_enable.to_string()),
            (
                "flushIntervalCommitLog",
                s.flush_interval_commit_log.to_string(),
            ),
            ("syncFlushTimeout", s.sync_flush_timeout.to_string()),
            ("deleteWhen", s.delete_when.clone()),
            ("fileReservedTime", s.file_reserved_time.to_string()),
            (
                "diskMaxUsedSpaceRatio",
                s.disk_max_used_space_ratio.to_string(),
            ),
            (
                "cleanResourceInterval",
                s.clean_resource_interval.to_string(),
            ),
            ("deleteFileBatchMax", s.delete_file_batch_max.to_string()),
            (
                "deleteCommitLogFilesInterval",
                s.delete_commit_log_files_interval.to_string(),
            ),
            (
                "deleteConsumeQueueFilesInterval",
                s.delete_consume_queue_files_interval.to_string(),
            ),
            (
                "diskSpaceWarningLevelRatio",
                s.disk_space_warning_level_ratio.to_string(),
            ),
            (
                "diskSpaceCleanForciblyRatio",
                s.disk_space_clean_forcibly_ratio.to_string(),
            ),
            ("maxMessageSize", s.max_message_size.to_string()),
            ("messageIndexEnable", s.message_index_enable.to_string()),
            ("messageDelayLevel", s.message_delay_level.clone()),
        ];
        v.into_iter().collect()
    }

    /// `brokerIP1:listenPort`, the address registered with the name servers.
    pub fn broker_addr(&self) -> String {
        SocketAddr::new(self.broker_ip1, self.listen_port).to_string()
    }

    /// `brokerIP2:haListenPort`.
    pub fn ha_server_addr(&self) -> String {
        SocketAddr::new(self.broker_ip2, self.ha_listen_port).to_string()
    }

    /// The fast ("VIP") port: `listenPort - 2`.
    pub fn fast_listen_port(&self) -> u16 {
        self.listen_port.saturating_sub(2)
    }

    pub fn is_slave(&self) -> bool {
        self.broker_role == BrokerRole::Slave
    }

    /// Where topic configs, offsets and groups live (`<storePathRootDir>/config/kv`).
    pub fn kv_dir(&self) -> PathBuf {
        self.store.store_path_root_dir.join("config").join("kv")
    }
}

/// Splits `host:port;host:port`, dropping blanks.
pub fn split_namesrv(v: &str) -> Vec<String> {
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it on success.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let s = String::from_utf8_lossy(&buf[..end]).into_owned();
    (!s.is_empty()).then_some(s)
}

/// The first up, non-loopback, non-link-local IPv4 address of the host, else 127.0.0.1.
pub fn default_ip() -> IpAddr {
    let mut found = None;
    let mut addrs: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we only read and free with freeifaddrs.
    unsafe {
        if libc::getifaddrs(&mut addrs) == 0 {
            let mut cur = addrs;
            while !cur.is_null() {
                let ifa = &*cur;
                let up = ifa.ifa_flags & (libc::IFF_UP as u32) != 0;
                if up
                    && !ifa.ifa_addr.is_null()
                    && i32::from((*ifa.ifa_addr).sa_family) == libc::AF_INET
                {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                    if !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified() {
                        found = Some(ip);
                        break;
                    }
                }
                cur = ifa.ifa_next;
            }
            libc::freeifaddrs(addrs);
        }
    }
    IpAddr::V4(found.unwrap_or(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn stock_keys_and_defaults() {
        let c = BrokerConfig::from_properties(&props(&[
            ("brokerClusterName", "DefaultCluster"),
            ("brokerName", "broker-a"),
            ("brokerId", "0"),
            ("deleteWhen", "04"),
            ("fileReservedTime", "48"),
            ("brokerRole", "ASYNC_MASTER"),
            ("flushDiskType", "ASYNC_FLUSH"),
            ("brokerIP1", "127.0.0.2"),
            ("listenPort", "20911"),
            ("namesrvAddr", "a:1; b:2;"),
        ]))
        .unwrap();
        assert_eq!(c.broker_name, "broker-a");
        assert_eq!(c.broker_addr(), "127.0.0.2:20911");
        assert_eq!(c.ha_server_addr(), "127.0.0.2:20912");
        assert_eq!(c.fast_listen_port(), 20909);
        assert_eq!(c.namesrv_addr, vec!["a:1", "b:2"]);
        assert_eq!(c.store.file_reserved_time, 48);
        assert_eq!(c.default_topic_queue_nums, 8);
    }

    #[test]
    fn every_key_the_parser_reads_is_a_known_key() {
        // A misspelt key in the parser would never match a conf line (load() refuses unknown
        // keys before the parser runs), so the setting could never be made.
        let keys = BrokerConfig::read_keys();
        // The parse ran to its end (the last key it reads) in both passes.
        assert!(keys.contains("dLegerPeers") && keys.contains("messageDelayLevel"));
        for k in keys {
            assert!(
                ferrocket_conf::registry::default_of(ferrocket_conf::Kind::Broker, k).is_some(),
                "{k} is read but not a broker key of the registry"
            );
        }
    }

    /// Store and send-queue keys that were once warned about as ignored: read and counted.
    #[test]
    fn store_and_send_queue_keys_are_read() {
        let c = BrokerConfig::from_properties(&props(&[
            ("warmMapedFileEnable", "true"),
            ("brokerFastFailureEnable", "false"),
            ("accessMessageInMemoryMaxRatio", "25"),
            ("maxTransferCountOnMessageInDisk", "4"),
            ("maxTransferBytesOnMessageInDisk", "4096"),
            ("checkCRCOnRecover", "false"),
            ("osPageCacheBusyTimeOutMills", "3000"),
            ("deleteCommitLogFilesInterval", "250"),
            ("deleteConsumeQueueFilesInterval", "0"),
        ]))
        .unwrap();
        assert!(c.store.warm_mapped_file_enable);
        assert!(!c.broker_fast_failure_enable);
        assert_eq!(c.store.access_message_in_memory_max_ratio, 25);
        assert_eq!(c.store.max_transfer_count_on_message_in_disk, 4);
        assert_eq!(c.store.max_transfer_bytes_on_message_in_disk, 4096);
        assert!(!c.store.check_crc_on_recover);
        assert_eq!(c.store.os_page_cache_busy_timeout_ms, 3000);
        assert_eq!(c.store.delete_commit_log_files_interval, 250);
        assert_eq!(c.store.delete_consume_queue_files_interval, 0);
        let keys = BrokerConfig::implemented_keys();
        for k in [
            "warmMapedFileEnable",
            "brokerFastFailureEnable",
            "accessMessageInMemoryMaxRatio",
            "maxTransferCountOnMessageInDisk",
            "maxTransferBytesOnMessageInDisk",
            "checkCRCOnRecover",
            "osPageCacheBusyTimeOutMills",
            "deleteCommitLogFilesInterval",
            "deleteConsumeQueueFilesInterval",
        ] {
            assert!(keys.contains(&k), "{k} not counted as implemented");
        }
    }

    #[test]
    fn bad_enum_is_an_error() {
        assert!(BrokerConfig::from_properties(&props(&[("flushDiskType", "SOMETIMES")])).is_err());
        assert!(BrokerConfig::from_properties(&props(&[("listenPort", "x")])).is_err());
    }
}
