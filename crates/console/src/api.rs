//! The JSON API behind the pages (`docs/console.md`). Every handler answers JSON; errors are
//! `{"error": "..."}` with a 4xx/5xx status, never a panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferrocket_client::{ClientError, MessageExt};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::State as Console;

type Shared = State<Arc<Console>>;

/// An API failure.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        ApiError(StatusCode::BAD_GATEWAY, e.to_string())
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The first number of a RocketMQ TPS triple (`"12.00 11.50 11.20"`).
fn tps(v: Option<&String>) -> f64 {
    v.and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// GET /api/cluster: every broker of every cluster with its runtime figures.
pub async fn cluster(State(s): Shared) -> ApiResult {
    let ci = s.admin.cluster_info().await?;
    let mut brokers = Vec::new();
    for (cluster, names) in &ci.cluster_addr_table {
        for name in names {
            let Some(bd) = ci.broker_addr_table.get(name) else {
                continue;
            };
            for (id, addr) in &bd.broker_addrs {
                let rt = s.admin.broker_runtime(addr).await.unwrap_or_default();
                let raft_role = rt.get("dledgerRole").cloned();
                let role = raft_role
                    .clone()
                    .unwrap_or_else(|| if *id == 0 { "MASTER" } else { "SLAVE" }.to_string());
                let disk: f64 = rt
                    .get("commitLogDiskRatio")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0.0);
                let lag: i64 = rt
                    .get("haMaxLagBytes")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                brokers.push(json!({
                    "cluster": cluster,
                    "brokerName": name,
                    "brokerId": id,
                    "addr": addr,
                    "role": role,
                    "version": rt.get("brokerVersionDesc"),
                    "sendTps": tps(rt.get("putTps")),
                    "pullTps": tps(rt.get("getTransferedTps")),
                    "diskRatio": disk,
                    "replicationLagBytes": lag,
                    "haMasterAddress": rt.get("haMasterAddress"),
                    "raft": raft_role.map(|r| json!({
                        "role": r,
                        "term": rt.get("dledgerTerm"),
                        "commitIndex": rt.get("dledgerCommitIndex"),
                        "leader": rt.get("dledgerLeader"),
                    })),
                    "reachable": !rt.is_empty(),
                }));
            }
        }
    }
    Ok(Json(json!({ "brokers": brokers, "time": now_ms() })))
}

/// GET /api/topics.
pub async fn topics(State(s): Shared) -> ApiResult {
    let topics = s.admin.topic_list().await?;
    Ok(Json(json!({ "topics": topics })))
}

/// GET /api/topics/{topic}: route and per-queue offsets.
pub async fn topic(State(s): Shared, Path(topic): Path<String>) -> ApiResult {
    let route = s.admin.topic_route(&topic).await?;
    let stats = s.admin.topic_stats(&topic).await?;
    let brokers: Vec<Value> = route
        .broker_datas
        .iter()
        .map(|b| json!({ "brokerName": b.broker_name, "cluster": b.cluster, "addrs": b.broker_addrs }))
        .collect();
    let queues: Vec<Value> = route
        .queue_datas
        .iter()
        .map(|q| json!({ "brokerName": q.broker_name, "read": q.read_queue_nums, "write": q.write_queue_nums, "perm": q.perm }))
        .collect();
    let offsets: Vec<Value> = stats
        .iter()
        .map(|q| json!({ "queue": q.queue, "minOffset": q.min_offset, "maxOffset": q.max_offset, "lastUpdate": q.last_update_timestamp }))
        .collect();
    Ok(Json(
        json!({ "topic": topic, "brokers": brokers, "queues": queues, "offsets": offsets }),
    ))
}

/// GET /api/groups.
pub async fn groups(State(s): Shared) -> ApiResult {
    Ok(Json(json!({ "groups": s.admin.groups().await? })))
}

/// GET /api/groups/{group}: members and lag per queue.
pub async fn group(State(s): Shared, Path(group): Path<String>) -> ApiResult {
    let members = s.admin.consumer_connections(&group).await.ok();
    let progress = s.admin.consumer_progress(&group, None).await?;
    let lag: i64 = progress.iter().map(|q| q.diff.max(0)).sum();
    let queues: Vec<Value> = progress
        .iter()
        .map(|q| {
            json!({
                "topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id,
                "brokerOffset": q.broker_offset, "consumerOffset": q.consumer_offset, "lag": q.diff,
                "lastTimestamp": q.last_timestamp,
            })
        })
        .collect();
    let clients: Vec<Value> = members
        .as_ref()
        .and_then(|m| m["connectionSet"].as_array().cloned())
        .unwrap_or_default();
    Ok(Json(json!({
        "group": group,
        "members": clients,
        "consumeType": members.as_ref().map(|m| m["consumeType"].clone()),
        "messageModel": members.as_ref().map(|m| m["messageModel"].clone()),
        "totalLag": lag,
        "queues": queues,
    })))
}

#[derive(Debug, Deserialize)]
pub struct MessageQuery {
    /// Offset message id (32 hex) or client unique id.
    id: Option<String>,
    topic: Option<String>,
    key: Option<String>,
    /// Unix ms.
    begin: Option<i64>,
    end: Option<i64>,
    max: Option<usize>,
}

fn message_json(m: &MessageExt) -> Value {
    let body = String::from_utf8_lossy(&m.body);
    let preview: String = body.chars().take(512).collect();
    let props: BTreeMap<&str, &str> = m.properties.iter().collect();
    json!({
        "msgId": m.msg_id,
        "offsetMsgId": m.offset_msg_id,
        "topic": m.queue.topic,
        "brokerName": m.queue.broker_name,
        "queueId": m.queue.queue_id,
        "queueOffset": m.queue_offset,
        "tags": m.tags(),
        "keys": m.keys(),
        "bornTimestamp": m.born_timestamp,
        "storeTimestamp": m.store_timestamp,
        "reconsumeTimes": m.reconsume_times,
        "bodySize": m.body.len(),
        "bodyPreview": preview,
        "properties": props,
    })
}

/// Where a message went after consumers refused it: copies in `%RETRY%<group>` and
/// `%DLQ%<group>` topics, found by its unique id.
async fn history(s: &Console, uniq: &str) -> Vec<Value> {
    let Ok(topics) = s.admin.topic_list().await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for t in topics
        .iter()
        .filter(|t| t.starts_with("%RETRY%") || t.starts_with("%DLQ%"))
        .take(32)
    {
        if let Ok(found) = s.admin.query_msg_by_key(t, uniq, 16).await {
            out.extend(found.iter().map(message_json));
        }
    }
    out
}

/// GET /api/messages?id=... | ?topic=&key= | ?topic=&begin=&end=
pub async fn messages(State(s): Shared, Query(q): Query<MessageQuery>) -> ApiResult {
    let max = q.max.unwrap_or(64).clamp(1, 1000);
    let found: Vec<MessageExt> = match (&q.id, &q.topic, &q.key) {
        (Some(id), _, _) if id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()) => {
            match s.admin.query_msg_by_id(id).await {
                Ok(m) => vec![m],
                // Not an offset id after all: a client unique id of that topic.
                Err(_) => match &q.topic {
                    Some(t) => s.admin.query_msg_by_key(t, id, max as i32).await?,
                    None => Vec::new(),
                },
            }
        }
        (Some(id), Some(t), _) => s.admin.query_msg_by_key(t, id, max as i32).await?,
        (None, Some(t), Some(k)) => s.admin.query_msg_by_key(t, k, max as i32).await?,
        (None, Some(t), None) => {
            let end = q.end.unwrap_or_else(now_ms);
            let begin = q.begin.unwrap_or(end - 3_600_000);
            s.admin.messages_between(t, begin, end, max).await?
        }
        _ => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                "give id, or topic and key, or topic with begin/end".into(),
            ))
        }
    };
    let mut out = Vec::new();
    for m in found.iter().take(max) {
        let mut v = message_json(m);
        if q.id.is_some() || q.key.is_some() {
            v["history"] = Value::Array(history(&s, &m.msg_id).await);
        }
        out.push(v);
    }
    Ok(Json(json!({ "messages": out })))
}

/// Writes need `--allow-writes` and the token.
fn authorize(s: &Console, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &s.write_token else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "the console is read-only (start it with --allow-writes)".into(),
        ));
    };
    let given = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if given != Some(token.as_str()) {
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "missing or wrong token".into(),
        ));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct CreateTopic {
    cluster: String,
    topic: String,
    queues: Option<i32>,
}

/// POST /api/topics {cluster, topic, queues}.
pub async fn create_topic(
    State(s): Shared,
    headers: HeaderMap,
    Json(req): Json<CreateTopic>,
) -> ApiResult {
    authorize(&s, &headers)?;
    let queues = req.queues.unwrap_or(8).clamp(1, 1024);
    s.admin
        .create_topic(&req.cluster, &req.topic, queues)
        .await?;
    Ok(Json(json!({ "created": req.topic, "queues": queues })))
}

#[derive(Debug, Deserialize)]
pub struct ResetOffset {
    topic: String,
    /// Unix ms.
    timestamp: i64,
}

/// POST /api/groups/{group}/reset-offset {topic, timestamp}.
pub async fn reset_offset(
    State(s): Shared,
    Path(group): Path<String>,
    headers: HeaderMap,
    Json(req): Json<ResetOffset>,
) -> ApiResult {
    authorize(&s, &headers)?;
    let moved = s
        .admin
        .reset_offset_by_time(&group, &req.topic, req.timestamp)
        .await?;
    let queues: Vec<Value> = moved
        .iter()
        .map(|(mq, off)| json!({ "brokerName": mq.broker_name, "queueId": mq.queue_id, "offset": off }))
        .collect();
    Ok(Json(
        json!({ "group": group, "topic": req.topic, "queues": queues }),
    ))
}
