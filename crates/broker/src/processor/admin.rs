//! Admin requests: topics (create/update, delete, list, stats), subscription groups, runtime
//! info, consume stats, consumer connections, and message lookups by id or key.

use std::sync::Arc;

use ferrocket_protocol::message::names;
use ferrocket_protocol::{RemotingCommand, ResponseCode};

use super::{reply, HandlerError, HandlerResult};
use crate::body::{KvTable, SubscriptionGroupConfig, TopicConfig};
use crate::headers::{
    ConsumerGroupHeader, CreateTopicRequestHeader, GetConsumeStatsRequestHeader, TopicHeader,
};
use crate::topic;
use crate::Broker;

fn json_reply(req: &RemotingCommand, body: &impl serde::Serialize) -> HandlerResult {
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_body(serde_json::to_vec(body).unwrap_or_default())
        .into())
}

/// A `MessageQueue` as fastjson writes it when it is a map key.
fn mq_key(topic: &str, broker: &str, queue_id: i32) -> String {
    serde_json::json!({"brokerName": broker, "queueId": queue_id, "topic": topic}).to_string()
}

/// With `validateSystemTopicWhenUpdateTopic` (RocketMQ 5.x, on by default), the admin API may
/// not create, change or delete a system topic: INVALID_PARAMETER and RocketMQ's remark.
fn refuse_system_topic(b: &Arc<Broker>, req: &RemotingCommand, t: &str) -> Option<HandlerResult> {
    (b.conf.validate_system_topic_when_update_topic && topic::is_system_topic(&b.conf, t)).then(
        || {
            Ok(RemotingCommand::error_to(
                req,
                ResponseCode::INVALID_PARAMETER,
                format!("The topic[{t}] is conflict with system topic."),
            )
            .into())
        },
    )
}

/// UPDATE_AND_CREATE_TOPIC.
pub fn update_and_create_topic(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: CreateTopicRequestHeader = req.header()?;
    if let Err(why) = topic::validate_topic(&h.topic) {
        return Ok(RemotingCommand::error_to(req, ResponseCode::SYSTEM_ERROR, why).into());
    }
    if let Some(refused) = refuse_system_topic(b, req, &h.topic) {
        return refused;
    }
    if h.read_queue_nums < 0 || h.write_queue_nums < 0 {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            "negative queue count",
        )
        .into());
    }
    let mut tc = TopicConfig::new(&h.topic, h.read_queue_nums, h.write_queue_nums, h.perm);
    if let Some(t) = h.topic_filter_type {
        tc.topic_filter_type = t;
    }
    tc.topic_sys_flag = h.topic_sys_flag.unwrap_or(0);
    tc.order = h.order.unwrap_or(false);
    b.topics.upsert(tc)?;
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// DELETE_TOPIC_IN_BROKER: removes the config and the offsets of the topic.
pub fn delete_topic(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: TopicHeader = req.header()?;
    if let Some(refused) = refuse_system_topic(b, req, &h.topic) {
        return refused;
    }
    b.topics.delete(&h.topic)?;
    b.offsets.remove_topic(&h.topic)?;
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// GET_ALL_TOPIC_CONFIG: TopicConfigSerializeWrapper.
pub fn get_all_topic_config(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    json_reply(req, &b.topics.wrapper())
}

/// GET_TOPIC_STATS_INFO: min/max offset and last update time of each queue.
pub fn get_topic_stats_info(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: TopicHeader = req.header()?;
    let Some(tc) = b.topics.get(&h.topic) else {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::TOPIC_NOT_EXIST,
            format!("topic[{}] not exist", h.topic),
        )
        .into());
    };
    let mut entries = Vec::new();
    for q in 0..tc.write_queue_nums {
        let min = b.store.min_offset_in_queue(&h.topic, q);
        let max = b.store.max_offset_in_queue(&h.topic, q);
        let last = if max > 0 {
            b.store
                .message_store_time(&h.topic, q, max - 1)
                .unwrap_or(0)
        } else {
            0
        };
        entries.push(format!(
            "{}:{}",
            mq_key(&h.topic, &b.conf.broker_name, q),
            serde_json::json!({"lastUpdateTimestamp": last, "maxOffset": max, "minOffset": min})
        ));
    }
    let body = format!("{{\"offsetTable\":{{{}}}}}", entries.join(","));
    Ok(reply(req, ResponseCode::SUCCESS).with_body(body).into())
}

/// GET_BROKER_RUNTIME_INFO: the KVTable `mqadmin clusterList` and `brokerStatus` read.
pub fn get_broker_runtime_info(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let (put_tps, get_tps) = b.stats.tps();
    let store = &b.store;
    let root = &store.config().store_path_root_dir;
    let ratio = ferrocket_store::disk_used_ratio(root).unwrap_or(0.0);
    let cap = b.conf.send_thread_pool_queue_capacity;
    let in_queue = cap
        .saturating_add(b.conf.send_message_thread_pool_nums)
        .saturating_sub(b.send_permits.available_permits());
    let now = crate::now_ms();
    let put = b.stats.put_total();
    let got = b.stats.get_total();
    let mut t = KvTable::default();
    let mut kv = |k: &str, v: String| {
        t.table.insert(k.to_string(), v);
    };
    kv("brokerVersionDesc", "V4_9_8".into());
    kv(
        "brokerVersion",
        ferrocket_protocol::command::CURRENT_VERSION.to_string(),
    );
    kv("msgPutTotalYesterdayMorning", "0".into());
    kv("msgPutTotalTodayMorning", "0".into());
    kv("msgPutTotalTodayNow", put.to_string());
    kv("msgGetTotalYesterdayMorning", "0".into());
    kv("msgGetTotalTodayMorning", "0".into());
    kv("msgGetTotalTodayNow", got.to_string());
    kv("putTps", format!("{put_tps:.2} {put_tps:.2} {put_tps:.2}"));
    kv(
        "getTransferedTps",
        format!("{get_tps:.2} {get_tps:.2} {get_tps:.2}"),
    );
    kv(
        "getFoundTps",
        format!("{get_tps:.2} {get_tps:.2} {get_tps:.2}"),
    );
    kv("getMissTps", "0.00 0.00 0.00".into());
    kv(
        "getTotalTps",
        format!("{get_tps:.2} {get_tps:.2} {get_tps:.2}"),
    );
    kv("sendThreadPoolQueueSize", in_queue.to_string());
    kv("sendThreadPoolQueueCapacity", cap.to_string());
    kv("sendThreadPoolQueueHeadWaitTimeMills", "0".into());
    kv("pullThreadPoolQueueSize", "0".into());
    kv("pullThreadPoolQueueCapacity", "100000".into());
    kv("pullThreadPoolQueueHeadWaitTimeMills", "0".into());
    kv("queryThreadPoolQueueSize", "0".into());
    kv("queryThreadPoolQueueCapacity", "20000".into());
    kv("pageCacheLockTimeMills", "0".into());
    kv("earliestMessageTimeStamp", now.to_string());
    kv("startAcceptSendRequestTimeStamp", "0".into());
    kv("commitLogDiskRatio", format!("{ratio}"));
    kv("consumeQueueDiskRatio", format!("{ratio}"));
    kv("commitLogMaxOffset", store.max_phy_offset().to_string());
    kv("commitLogMinOffset", store.min_phy_offset().to_string());
    kv(
        "remainHowManyDataToFlush",
        (store.max_phy_offset() - store.flushed_offset())
            .max(0)
            .to_string(),
    );
    kv("dispatchMaxBuffer", "0".into());
    kv(
        "bootTimestamp",
        (now - b.started.elapsed().as_millis() as i64).to_string(),
    );
    kv(
        "runtime",
        format!("[ {} seconds ]", b.started.elapsed().as_secs()),
    );
    kv("brokerActive", "true".into());
    kv(
        "topicDataVersionCounter",
        b.topics.data_version().counter.to_string(),
    );
    kv("putMessageEntireTimeMax", "0".into());
    kv("putMessageTimesTotal", put.to_string());
    kv("putMessageSizeTotal", "0".into());
    kv("putMessageAverageSize", "0.0".into());
    ha_runtime_info(b, &mut kv);
    json_reply(req, &t)
}

/// Replication figures: on a master each slave's ack offset and lag in bytes (`haSlaveCount`,
/// `haSlave.<n>` = `addr ackOffset lagBytes`, `haMaxLagBytes`); on a slave its master and
/// whether the stream is connected.
fn ha_runtime_info(b: &Arc<Broker>, kv: &mut impl FnMut(&str, String)) {
    match b.ha.get() {
        Some(crate::ha::Replication::Master(server)) => {
            let status = server.status();
            kv("haSlaveCount", status.slaves.len().to_string());
            for (i, s) in status.slaves.iter().enumerate() {
                kv(
                    &format!("haSlave.{i}"),
                    format!("{} {} {}", s.addr, s.acked_offset, s.lag_bytes),
                );
            }
            let max_lag = status.slaves.iter().map(|s| s.lag_bytes).max().unwrap_or(0);
            kv("haMaxLagBytes", max_lag.to_string());
        }
        Some(crate::ha::Replication::Slave { client, .. }) => {
            let master = client.master().map(|a| a.to_string()).unwrap_or_default();
            kv("haMasterAddress", master);
            kv("haConnected", client.is_connected().to_string());
        }
        None => {}
    }
    if let Some(d) = b.dledger.get() {
        let r = d.node.role();
        // "LEADER" only for the leader that serves as master: a node restarting with its own old
        // vote is briefly leader of a stale term until the others answer.
        let role = match (r.state, r.leader_ready) {
            ("LEADER", false) => "LEADER_PENDING",
            (s, _) => s,
        };
        kv("dledgerRole", role.to_string());
        kv("dledgerTerm", r.term.to_string());
        // Applied implies committed: the commit point this node has reached.
        kv("dledgerCommitIndex", r.applied_index.to_string());
        kv("dledgerLeader", r.leader.unwrap_or_default());
        kv("dledgerSelfId", d.node.self_id().to_string());
    }
}

/// GET_CONSUME_STATS: per queue the broker's max offset, the group's offset and its store time.
pub fn get_consume_stats(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: GetConsumeStatsRequestHeader = req.header()?;
    let topics = match &h.topic {
        Some(t) => vec![t.clone()],
        None => {
            let mut ts = b.offsets.topics_of_group(&h.consumer_group);
            ts.extend(b.clients.subscribed_topics(&h.consumer_group));
            ts.sort();
            ts.dedup();
            ts
        }
    };
    let mut entries = Vec::new();
    for t in topics {
        let Some(tc) = b.topics.get(&t) else { continue };
        for q in 0..tc.write_queue_nums {
            let broker_offset = b.store.max_offset_in_queue(&t, q);
            let consumer_offset = b
                .offsets
                .query(&h.consumer_group, &t, q)
                .unwrap_or(0)
                .max(0);
            let last = if consumer_offset > 0 {
                b.store
                    .message_store_time(&t, q, consumer_offset - 1)
                    .unwrap_or(0)
            } else {
                0
            };
            entries.push(format!(
                "{}:{}",
                mq_key(&t, &b.conf.broker_name, q),
                serde_json::json!({
                    "brokerOffset": broker_offset,
                    "consumerOffset": consumer_offset,
                    "lastTimestamp": last,
                })
            ));
        }
    }
    let body = format!(
        "{{\"consumeTps\":0.0,\"offsetTable\":{{{}}}}}",
        entries.join(",")
    );
    Ok(reply(req, ResponseCode::SUCCESS).with_body(body).into())
}

/// GET_CONSUMER_CONNECTION_LIST.
pub fn get_consumer_connection_list(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: ConsumerGroupHeader = req.header()?;
    match b.clients.consumer_connection(&h.consumer_group) {
        Some(c) => json_reply(req, &c),
        None => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::CONSUMER_NOT_ONLINE,
            format!("the consumer group[{}] not online", h.consumer_group),
        )
        .into()),
    }
}

/// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP: body = SubscriptionGroupConfig JSON.
pub fn update_and_create_subscription_group(
    b: &Arc<Broker>,
    req: &RemotingCommand,
) -> HandlerResult {
    let g: SubscriptionGroupConfig = ferrocket_protocol::fastjson::from_slice(&req.body)
        .map_err(|e| HandlerError::Other(format!("bad subscription group body: {e}")))?;
    b.groups.upsert(g)?;
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// GET_ALL_SUBSCRIPTIONGROUP_CONFIG.
pub fn get_all_subscription_group_config(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    json_reply(req, &b.groups.to_json())
}

/// VIEW_MESSAGE_BY_ID: header `offset` = commitlog physical offset.
pub fn view_message_by_id(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let off: i64 = ferrocket_protocol::header::required(&req.ext_fields, "offset")?;
    match b.store.message_at(off) {
        Some(m) => Ok(reply(req, ResponseCode::SUCCESS).with_body(m).into()),
        None => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!("can not find message by the offset, {off}"),
        )
        .into()),
    }
}

/// QUERY_MESSAGE: messages of a topic by key (or UNIQ key) within a time range.
pub fn query_message(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    use ferrocket_protocol::header::required;
    let ext = &req.ext_fields;
    let topic: String = required(ext, "topic")?;
    let key: String = required(ext, "key")?;
    let mut max_num: i32 = required(ext, "maxNum")?;
    let begin: i64 = required(ext, "beginTimestamp")?;
    let end: i64 = required(ext, "endTimestamp")?;
    if req.ext(names::UNIQUE_KEY_QUERY) == Some("true") {
        max_num = b.store.config().default_query_max_num as i32;
    }
    let r = b
        .store
        .query_message(&topic, &key, max_num.max(1) as usize, begin, end);
    if r.messages.is_empty() {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::QUERY_NOT_FOUND,
            "can not find message, maybe time range not correct",
        )
        .into());
    }
    let cmd = reply(req, ResponseCode::SUCCESS)
        .with_ext("indexLastUpdateTimestamp", r.index_last_update_timestamp)
        .with_ext("indexLastUpdatePhyoffset", r.index_last_update_phyoffset);
    Ok(crate::connection::Outgoing {
        cmd,
        parts: r.messages,
    })
}

/// GET_ALL_DELAY_OFFSET: `{"offsetTable":{level:offset}}`.
pub fn get_all_delay_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    json_reply(req, &b.delay_offsets.to_json())
}

/// GET_BROKER_CONFIG: the effective settings as `.properties` text, header `version` = the topic
/// table's data version.
pub fn get_broker_config(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let mut text = String::new();
    for (k, v) in b.conf.effective() {
        text.push_str(k);
        text.push('=');
        text.push_str(&v);
        text.push('\n');
    }
    let version = serde_json::to_string(&b.topics.data_version()).unwrap_or_default();
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("version", version)
        .with_body(text)
        .into())
}

/// GET_PRODUCER_CONNECTION_LIST: `{"connectionSet":[…]}` of a producer group.
pub fn get_producer_connection_list(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let group: String = ferrocket_protocol::header::required(&req.ext_fields, "producerGroup")?;
    match b.clients.producer_connections(&group) {
        Some(set) => json_reply(req, &serde_json::json!({ "connectionSet": set })),
        None => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!("the producer group[{group}] not exist"),
        )
        .into()),
    }
}
