//! The admin API: topics, cluster and broker state, consumer progress and connections, message
//! queries, subscription groups, offset resets. `mqadmin` is a thin CLI over it.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferrocket_protocol::body::client::SubscriptionGroupConfig;
use ferrocket_protocol::body::{ClusterInfo, TopicRouteData};
use ferrocket_protocol::message::{decode_all, decode_offset_msg_id};
use ferrocket_protocol::{fastjson, RemotingCommand, RequestCode, ResponseCode};
use serde_json::Value;

use crate::consumer::broker_ops;
use crate::error::{ClientError, Result};
use crate::instance::{ClientConfig, Instance};
use crate::message::MessageExt;
use crate::route::{master_addr, read_addr, read_queues, MessageQueue};

/// One queue's offsets (topicStatus).
///
/// ```no_run
/// # async fn demo(a: ferrocket_client::Admin) -> Result<(), ferrocket_client::ClientError> {
/// for q in a.topic_stats("TopicTest").await? {
///     println!("{}: {}..{}", q.queue, q.min_offset, q.max_offset);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueStats {
    pub queue: String,
    pub min_offset: i64,
    pub max_offset: i64,
    pub last_update_timestamp: i64,
}

/// One queue's consumption (consumerProgress).
///
/// ```no_run
/// # async fn demo(a: ferrocket_client::Admin) -> Result<(), ferrocket_client::ClientError> {
/// let backlog: i64 = a.consumer_progress("my-group", None).await?.iter().map(|q| q.diff).sum();
/// println!("backlog {backlog}");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct QueueProgress {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
    pub broker_offset: i64,
    pub consumer_offset: i64,
    pub diff: i64,
    pub last_timestamp: i64,
}

/// Administers a cluster through its name servers.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::{Admin, ClientConfig};
/// let admin = Admin::new(ClientConfig::new("127.0.0.1:9876"))?;
/// admin.create_topic("DefaultCluster", "TopicTest", 8).await?;
/// for (cluster, brokers) in admin.cluster_info().await?.cluster_addr_table {
///     println!("{cluster}: {brokers:?}");
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Admin {
    inst: Arc<Instance>,
}

fn parse_json(what: &'static str, body: &[u8]) -> Result<Value> {
    fastjson::from_slice(body).map_err(|e| ClientError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// `{"topic":..,"brokerName":..,"queueId":..}` map keys as RocketMQ writes them.
fn parse_mq_key(k: &str) -> Option<MessageQueue> {
    let v: Value = serde_json::from_str(k).ok()?;
    Some(MessageQueue {
        topic: v["topic"].as_str()?.to_string(),
        broker_name: v["brokerName"].as_str()?.to_string(),
        queue_id: v["queueId"].as_i64()? as i32,
    })
}

/// Splits an `offsetTable` body (`{"offsetTable":{<mq json>:{...}}}`) into entries. The map keys
/// are JSON objects, which is not JSON; they are cut out by brace matching.
fn offset_table(body: &[u8]) -> Vec<(MessageQueue, Value)> {
    let text = String::from_utf8_lossy(body);
    let Some(start) = text.find("\"offsetTable\"") else {
        return Vec::new();
    };
    let bytes = text.as_bytes();
    let mut i = start + text[start..].find('{').map_or(text.len(), |p| p + 1);
    let mut out = Vec::new();
    let grab = |i: &mut usize| -> Option<String> {
        while *i < bytes.len() && bytes[*i] != b'{' && bytes[*i] != b'}' {
            *i += 1;
        }
        if *i >= bytes.len() || bytes[*i] == b'}' {
            return None;
        }
        let from = *i;
        let mut depth = 0;
        while *i < bytes.len() {
            match bytes[*i] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        *i += 1;
                        return Some(text[from..*i].to_string());
                    }
                }
                _ => {}
            }
            *i += 1;
        }
        None
    };
    while let Some(key) = grab(&mut i) {
        let Some(value) = grab(&mut i) else { break };
        if let (Some(mq), Ok(v)) = (parse_mq_key(&key), serde_json::from_str(&value)) {
            out.push((mq, v));
        }
    }
    out
}

impl Admin {
    pub fn new(config: ClientConfig) -> Result<Admin> {
        Ok(Admin {
            inst: Instance::new(&config)?,
        })
    }

    async fn call(&self, addr: &str, req: RemotingCommand) -> Result<RemotingCommand> {
        self.inst.pool().call(addr, req, self.inst.timeout()).await
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        self.inst.router.cluster_info().await
    }

    /// Master addresses of `cluster` (every cluster when it is empty).
    pub async fn masters(&self, cluster: &str) -> Result<Vec<(String, String)>> {
        let ci = self.cluster_info().await?;
        let mut out = Vec::new();
        for (c, names) in &ci.cluster_addr_table {
            if !cluster.is_empty() && c != cluster {
                continue;
            }
            for n in names {
                if let Some(addr) = ci
                    .broker_addr_table
                    .get(n)
                    .and_then(|b| b.broker_addrs.get(&0))
                {
                    out.push((n.clone(), addr.clone()));
                }
            }
        }
        if out.is_empty() {
            return Err(ClientError::Invalid(format!(
                "no master in cluster `{cluster}`"
            )));
        }
        Ok(out)
    }

    /// Creates or updates `topic` on every master of `cluster` with `queues` read/write queues.
    pub async fn create_topic(&self, cluster: &str, topic: &str, queues: i32) -> Result<()> {
        for (_, addr) in self.masters(cluster).await? {
            self.create_topic_on(&addr, topic, queues, 6, false).await?;
        }
        Ok(())
    }

    /// Creates or updates `topic` on one broker.
    pub async fn create_topic_on(
        &self,
        addr: &str,
        topic: &str,
        queues: i32,
        perm: i32,
        order: bool,
    ) -> Result<()> {
        let req = RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
            .with_ext("topic", topic)
            .with_ext("defaultTopic", "TBW102")
            .with_ext("readQueueNums", queues)
            .with_ext("writeQueueNums", queues)
            .with_ext("perm", perm)
            .with_ext("topicFilterType", "SINGLE_TAG")
            .with_ext("topicSysFlag", 0)
            .with_ext("order", order);
        self.call(addr, req).await.map(|_| ())
    }

    /// Deletes `topic` from the masters of `cluster` and from every name server.
    pub async fn delete_topic(&self, cluster: &str, topic: &str) -> Result<()> {
        for (_, addr) in self.masters(cluster).await? {
            let req = RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_BROKER)
                .with_ext("topic", topic);
            self.call(&addr, req).await?;
        }
        for ns in self.inst.router.namesrvs().to_vec() {
            let req = RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_NAMESRV)
                .with_ext("topic", topic);
            self.call(&ns, req).await?;
        }
        self.inst.router.forget(topic);
        Ok(())
    }

    /// Every topic the name servers know.
    pub async fn topic_list(&self) -> Result<Vec<String>> {
        let r = self
            .inst
            .router
            .namesrv_invoke(RemotingCommand::request(
                RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            ))
            .await?;
        if r.code != 0 {
            return Err(ClientError::broker(
                "name server",
                r.code,
                r.remark.as_deref(),
            ));
        }
        let v = parse_json("TopicList", &r.body)?;
        let mut topics: Vec<String> = v["topicList"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        topics.sort();
        Ok(topics)
    }

    /// The route of `topic`.
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData> {
        Ok((*self.inst.router.refresh(topic).await?).clone())
    }

    /// Min and max offsets of every queue of `topic`.
    pub async fn topic_stats(&self, topic: &str) -> Result<Vec<QueueStats>> {
        let route = self.topic_route(topic).await?;
        let mut out = Vec::new();
        for b in &route.broker_datas {
            let Some(addr) = b.broker_addrs.values().next() else {
                continue;
            };
            let req = RemotingCommand::request(RequestCode::GET_TOPIC_STATS_INFO)
                .with_ext("topic", topic);
            let r = self.call(addr, req).await?;
            for (mq, v) in offset_table(&r.body) {
                out.push(QueueStats {
                    queue: mq.to_string(),
                    min_offset: v["minOffset"].as_i64().unwrap_or(0),
                    max_offset: v["maxOffset"].as_i64().unwrap_or(0),
                    last_update_timestamp: v["lastUpdateTimestamp"].as_i64().unwrap_or(0),
                });
            }
        }
        out.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(out)
    }

    /// GET_BROKER_RUNTIME_INFO of one broker.
    pub async fn broker_runtime(&self, addr: &str) -> Result<BTreeMap<String, String>> {
        let r = self
            .call(
                addr,
                RemotingCommand::request(RequestCode::GET_BROKER_RUNTIME_INFO),
            )
            .await?;
        let v = parse_json("KVTable", &r.body)?;
        Ok(v["table"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Per queue: broker offset, group offset and the difference (the backlog).
    pub async fn consumer_progress(
        &self,
        group: &str,
        topic: Option<&str>,
    ) -> Result<Vec<QueueProgress>> {
        let ci = self.cluster_info().await?;
        let mut out = Vec::new();
        for b in ci.broker_addr_table.values() {
            let Some(addr) = b.broker_addrs.values().next() else {
                continue;
            };
            let mut req = RemotingCommand::request(RequestCode::GET_CONSUME_STATS)
                .with_ext("consumerGroup", group);
            if let Some(t) = topic {
                req = req.with_ext("topic", t);
            }
            let Ok(r) = self.call(addr, req).await else {
                continue;
            };
            for (mq, v) in offset_table(&r.body) {
                let broker_offset = v["brokerOffset"].as_i64().unwrap_or(0);
                let consumer_offset = v["consumerOffset"].as_i64().unwrap_or(0);
                out.push(QueueProgress {
                    topic: mq.topic,
                    broker_name: mq.broker_name,
                    queue_id: mq.queue_id,
                    broker_offset,
                    consumer_offset,
                    diff: broker_offset - consumer_offset,
                    last_timestamp: v["lastTimestamp"].as_i64().unwrap_or(0),
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.topic, &a.broker_name, a.queue_id).cmp(&(&b.topic, &b.broker_name, b.queue_id))
        });
        Ok(out)
    }

    /// The connections of a consumer group (GET_CONSUMER_CONNECTION_LIST's JSON).
    pub async fn consumer_connections(&self, group: &str) -> Result<Value> {
        let ci = self.cluster_info().await?;
        let mut last = None;
        for b in ci.broker_addr_table.values() {
            let Some(addr) = b.broker_addrs.get(&0) else {
                continue;
            };
            let req = RemotingCommand::request(RequestCode::GET_CONSUMER_CONNECTION_LIST)
                .with_ext("consumerGroup", group);
            match self.call(addr, req).await {
                Ok(r) => return parse_json("ConsumerConnection", &r.body),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid("no broker".into())))
    }

    /// The message with this offset id (32 hex chars, as SendResult's `offset_msg_id`).
    pub async fn query_msg_by_id(&self, offset_msg_id: &str) -> Result<MessageExt> {
        let (addr, offset) = decode_offset_msg_id(offset_msg_id).map_err(|e| {
            ClientError::Invalid(format!(
                "`{offset_msg_id}` is not an offset message id: {e}"
            ))
        })?;
        let addr = addr.to_string();
        let req =
            RemotingCommand::request(RequestCode::VIEW_MESSAGE_BY_ID).with_ext("offset", offset);
        let r = self.call(&addr, req).await?;
        let mut msgs = decode_all(&r.body, false).map_err(|e| ClientError::Decode {
            what: "message",
            reason: e.to_string(),
        })?;
        let m = msgs.pop().ok_or_else(|| ClientError::Decode {
            what: "message",
            reason: "empty body".into(),
        })?;
        let broker = self.broker_name_of(&addr).await.unwrap_or_default();
        Ok(MessageExt::from_stored(m.to_owned_message(), &broker))
    }

    async fn broker_name_of(&self, addr: &str) -> Option<String> {
        let ci = self.cluster_info().await.ok()?;
        ci.broker_addr_table
            .values()
            .find(|b| b.broker_addrs.values().any(|a| a == addr))
            .map(|b| b.broker_name.clone())
    }

    /// Messages of `topic` whose KEYS (or unique id) include `key`.
    pub async fn query_msg_by_key(
        &self,
        topic: &str,
        key: &str,
        max: i32,
    ) -> Result<Vec<MessageExt>> {
        let route = self.topic_route(topic).await?;
        let mut out = Vec::new();
        for b in &route.broker_datas {
            let Some(addr) = b.broker_addrs.values().next() else {
                continue;
            };
            let req = RemotingCommand::request(RequestCode::QUERY_MESSAGE)
                .with_ext("topic", topic)
                .with_ext("key", key)
                .with_ext("maxNum", max)
                .with_ext("beginTimestamp", 0)
                .with_ext("endTimestamp", i64::MAX);
            let r = self
                .inst
                .pool()
                .invoke(addr, req, self.inst.timeout())
                .await?;
            if r.code == ResponseCode::QUERY_NOT_FOUND as i32 {
                continue;
            }
            if r.code != 0 {
                return Err(ClientError::broker(addr, r.code, r.remark.as_deref()));
            }
            let views = decode_all(&r.body, false).map_err(|e| ClientError::Decode {
                what: "messages",
                reason: e.to_string(),
            })?;
            out.extend(
                views
                    .into_iter()
                    .map(|v| MessageExt::from_stored(v.to_owned_message(), &b.broker_name)),
            );
        }
        Ok(out)
    }

    /// Names of the subscription groups the masters know (GET_ALL_SUBSCRIPTIONGROUP_CONFIG),
    /// RocketMQ's own system groups included.
    pub async fn groups(&self) -> Result<Vec<String>> {
        let mut out = std::collections::BTreeSet::new();
        for (_, addr) in self.masters("").await? {
            let req = RemotingCommand::request(RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG);
            let Ok(r) = self.call(&addr, req).await else {
                continue;
            };
            let v = parse_json("SubscriptionGroupWrapper", &r.body)?;
            if let Some(t) = v["subscriptionGroupTable"].as_object() {
                out.extend(t.keys().cloned());
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Up to `max` messages of `topic` stored between `begin_ms` and `end_ms`, from every
    /// queue (SEARCH_OFFSET_BY_TIMESTAMP, then plain pulls; no consumer offset is touched).
    pub async fn messages_between(
        &self,
        topic: &str,
        begin_ms: i64,
        end_ms: i64,
        max: usize,
    ) -> Result<Vec<MessageExt>> {
        let route = self.topic_route(topic).await?;
        let mut out = Vec::new();
        for b in &route.broker_datas {
            let Some(addr) = b
                .broker_addrs
                .get(&0)
                .or_else(|| b.broker_addrs.values().next())
            else {
                continue;
            };
            let queues = route
                .queue_datas
                .iter()
                .find(|q| q.broker_name == b.broker_name)
                .map_or(0, |q| q.read_queue_nums);
            for q in 0..queues {
                let search = RemotingCommand::request(RequestCode::SEARCH_OFFSET_BY_TIMESTAMP)
                    .with_ext("topic", topic)
                    .with_ext("queueId", q)
                    .with_ext("timestamp", begin_ms);
                let Ok(r) = self.call(addr, search).await else {
                    continue;
                };
                let mut offset: i64 = r.ext("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
                'queue: while out.len() < max {
                    let pull = RemotingCommand::request(RequestCode::PULL_MESSAGE)
                        .with_ext("consumerGroup", "mqconsole")
                        .with_ext("topic", topic)
                        .with_ext("queueId", q)
                        .with_ext("queueOffset", offset)
                        .with_ext("maxMsgNums", 32)
                        .with_ext("sysFlag", 0x4)
                        .with_ext("commitOffset", 0)
                        .with_ext("suspendTimeoutMillis", 0)
                        .with_ext("subscription", "*")
                        .with_ext("subVersion", 0)
                        .with_ext("expressionType", "TAG");
                    let r = self
                        .inst
                        .pool()
                        .invoke(addr, pull, self.inst.timeout())
                        .await?;
                    if r.code != 0 {
                        break;
                    }
                    let views = decode_all(&r.body, false).map_err(|e| ClientError::Decode {
                        what: "messages",
                        reason: e.to_string(),
                    })?;
                    if views.is_empty() {
                        break;
                    }
                    for v in views {
                        offset = v.queue_offset + 1;
                        if v.store_timestamp > end_ms || out.len() >= max {
                            break 'queue;
                        }
                        out.push(MessageExt::from_stored(
                            v.to_owned_message(),
                            &b.broker_name,
                        ));
                    }
                }
            }
        }
        out.sort_by_key(|m| m.store_timestamp);
        Ok(out)
    }

    /// Creates or updates a subscription group on the masters of `cluster` (its settings are
    /// replaced: the defaults for what is not given, as Java's `mqadmin updateSubGroup`).
    pub async fn update_sub_group(
        &self,
        cluster: &str,
        group: &str,
        retry_max_times: i32,
        consume_broadcast: bool,
        consume_enable: bool,
    ) -> Result<()> {
        let mut config = SubscriptionGroupConfig::new(group);
        config.retry_max_times = retry_max_times;
        config.consume_broadcast_enable = consume_broadcast;
        config.consume_enable = consume_enable;
        self.put_sub_group(Some(cluster), None, &config).await
    }

    /// Puts `config` (every setting of the group) on the masters of `cluster` and on the broker
    /// at `broker_addr`, whichever are given (UPDATE_AND_CREATE_SUBSCRIPTIONGROUP).
    pub async fn put_sub_group(
        &self,
        cluster: Option<&str>,
        broker_addr: Option<&str>,
        config: &SubscriptionGroupConfig,
    ) -> Result<()> {
        let mut addrs: Vec<String> = broker_addr.map(str::to_string).into_iter().collect();
        if let Some(cluster) = cluster {
            addrs.extend(self.masters(cluster).await?.into_iter().map(|(_, a)| a));
        }
        if addrs.is_empty() {
            return Err(ClientError::Invalid(
                "a subscription group goes to a cluster or a broker address".into(),
            ));
        }
        let body = serde_json::to_vec(config).unwrap_or_default();
        for addr in addrs {
            let req = RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(body.clone());
            self.call(&addr, req).await?;
        }
        Ok(())
    }

    /// Moves `group`'s offsets of `topic` to the first message stored at or after
    /// `timestamp_ms`; returns the new offset of every queue. Stop the group's consumers first:
    /// running ones commit their own positions over it.
    pub async fn reset_offset_by_time(
        &self,
        group: &str,
        topic: &str,
        timestamp_ms: i64,
    ) -> Result<Vec<(MessageQueue, i64)>> {
        let route = self.topic_route(topic).await?;
        let mut out = Vec::new();
        for mq in read_queues(topic, &route) {
            let addr = master_addr(&route, &mq.broker_name)
                .or_else(|| read_addr(&route, &mq.broker_name))
                .ok_or_else(|| ClientError::NoRoute(mq.broker_name.clone()))?;
            let o = broker_ops::search_offset(&self.inst, &addr, &mq, timestamp_ms).await?;
            broker_ops::commit_offset(&self.inst, &addr, group, &mq, o).await?;
            out.push((mq, o));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_tables_with_object_keys() {
        let body = br#"{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":1,"topic":"T"}:{"brokerOffset":10,"consumerOffset":4},{"brokerName":"b","queueId":0,"topic":"T"}:{"brokerOffset":3,"consumerOffset":3}}}"#;
        let t = offset_table(body);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].0.queue_id, 1);
        assert_eq!(t[0].1["brokerOffset"], 10);
        assert_eq!(t[1].1["consumerOffset"], 3);
        assert!(offset_table(b"garbage{{{").is_empty());
    }
}
