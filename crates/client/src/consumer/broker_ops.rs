//! The broker requests consumers make: pull, offsets (query, commit, search by time, min, max),
//! send-back for retry, queue locks.

use std::time::Duration;

use ferrocket_protocol::message::{decode_all, sysflag};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::error::{ClientError, Result};
use crate::instance::Instance;
use crate::message::MessageExt;
use crate::route::MessageQueue;

/// What a pull found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullStatus {
    Found,
    NoNewMessage,
    NoMatchedMessage,
    /// The offset is outside the queue; continue from `next_begin_offset`.
    OffsetIllegal,
}

/// The answer to a pull.
#[derive(Debug, Clone)]
pub struct PullResult {
    pub status: PullStatus,
    pub next_begin_offset: i64,
    pub messages: Vec<MessageExt>,
}

/// One pull request's parameters.
#[derive(Debug, Clone)]
pub struct PullArgs<'a> {
    pub group: &'a str,
    pub offset: i64,
    pub max: i32,
    /// Tag expression (`*`, `TagA || TagB`).
    pub expression: &'a str,
    /// How long the broker may hold the pull when nothing is there (0 = answer at once).
    pub suspend: Duration,
    /// An offset to commit with the pull (masters store it), if any.
    pub commit_offset: Option<i64>,
}

/// Tags of a subscription expression; empty for `*`.
pub fn expression_tags(expr: &str) -> Vec<String> {
    let e = expr.trim();
    if e.is_empty() || e == "*" {
        return Vec::new();
    }
    e.split("||")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// Pulls from `addr`.
pub async fn pull(
    inst: &Instance,
    addr: &str,
    mq: &MessageQueue,
    a: &PullArgs<'_>,
) -> Result<PullResult> {
    // PullSysFlag: 0x1 commit offset, 0x2 suspend, 0x4 subscription (expression) present.
    let mut flag = 0x4;
    if a.commit_offset.is_some() {
        flag |= 0x1;
    }
    if !a.suspend.is_zero() {
        flag |= 0x2;
    }
    let req = RemotingCommand::request(RequestCode::PULL_MESSAGE)
        .with_ext("consumerGroup", a.group)
        .with_ext("topic", &mq.topic)
        .with_ext("queueId", mq.queue_id)
        .with_ext("queueOffset", a.offset)
        .with_ext("maxMsgNums", a.max)
        .with_ext("sysFlag", flag)
        .with_ext("commitOffset", a.commit_offset.unwrap_or(0))
        .with_ext("suspendTimeoutMillis", a.suspend.as_millis() as i64)
        .with_ext("subscription", a.expression)
        .with_ext("subVersion", 0)
        .with_ext("expressionType", "TAG");
    let timeout = inst.timeout() + a.suspend;
    let r = inst.pool().invoke(addr, req, timeout).await?;
    let num = |k: &str| r.ext(k).and_then(|v| v.parse::<i64>().ok());
    let next = num("nextBeginOffset").unwrap_or(a.offset);
    let status = match ResponseCode::from_i32(r.code) {
        Some(ResponseCode::SUCCESS) => PullStatus::Found,
        Some(ResponseCode::PULL_NOT_FOUND) => PullStatus::NoNewMessage,
        Some(ResponseCode::PULL_RETRY_IMMEDIATELY) => PullStatus::NoMatchedMessage,
        Some(ResponseCode::PULL_OFFSET_MOVED) => PullStatus::OffsetIllegal,
        _ => return Err(ClientError::broker(addr, r.code, r.remark.as_deref())),
    };
    let mut messages = Vec::new();
    if status == PullStatus::Found {
        let views = decode_all(&r.body, false).map_err(|e| ClientError::Decode {
            what: "pulled messages",
            reason: e.to_string(),
        })?;
        let tags = expression_tags(a.expression);
        for v in views {
            let mut m = v.to_owned_message();
            if m.sys_flag & sysflag::COMPRESSED != 0 {
                m.body = inflate(&m.body)?.into();
                m.sys_flag &= !sysflag::COMPRESSED;
            }
            // The broker filters by tag hash; the exact tag is checked here.
            if !tags.is_empty()
                && !m
                    .properties
                    .tags()
                    .is_some_and(|t| tags.iter().any(|x| x == t))
            {
                continue;
            }
            messages.push(MessageExt::from_stored(m, &mq.broker_name));
        }
    }
    Ok(PullResult {
        status,
        next_begin_offset: next,
        messages,
    })
}

fn inflate(body: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| ClientError::Decode {
            what: "compressed body",
            reason: e.to_string(),
        })?;
    Ok(out)
}

fn queue_req(code: RequestCode, mq: &MessageQueue) -> RemotingCommand {
    RemotingCommand::request(code)
        .with_ext("topic", &mq.topic)
        .with_ext("queueId", mq.queue_id)
}

/// The group's committed offset of `mq`, `None` when it has none.
pub async fn query_offset(
    inst: &Instance,
    addr: &str,
    group: &str,
    mq: &MessageQueue,
) -> Result<Option<i64>> {
    let req = queue_req(RequestCode::QUERY_CONSUMER_OFFSET, mq).with_ext("consumerGroup", group);
    let r = inst.pool().invoke(addr, req, inst.timeout()).await?;
    if r.code == ResponseCode::QUERY_NOT_FOUND as i32 {
        return Ok(None);
    }
    if r.code != 0 {
        return Err(ClientError::broker(addr, r.code, r.remark.as_deref()));
    }
    Ok(r.ext("offset").and_then(|v| v.parse().ok()))
}

/// Commits the group's offset of `mq`.
pub async fn commit_offset(
    inst: &Instance,
    addr: &str,
    group: &str,
    mq: &MessageQueue,
    offset: i64,
) -> Result<()> {
    let req = queue_req(RequestCode::UPDATE_CONSUMER_OFFSET, mq)
        .with_ext("consumerGroup", group)
        .with_ext("commitOffset", offset);
    inst.pool()
        .call(addr, req, inst.timeout())
        .await
        .map(|_| ())
}

/// The queue's max (next to be written) offset.
pub async fn max_offset(inst: &Instance, addr: &str, mq: &MessageQueue) -> Result<i64> {
    let r = inst
        .pool()
        .call(
            addr,
            queue_req(RequestCode::GET_MAX_OFFSET, mq),
            inst.timeout(),
        )
        .await?;
    Ok(r.ext("offset").and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The queue's min offset.
pub async fn min_offset(inst: &Instance, addr: &str, mq: &MessageQueue) -> Result<i64> {
    let r = inst
        .pool()
        .call(
            addr,
            queue_req(RequestCode::GET_MIN_OFFSET, mq),
            inst.timeout(),
        )
        .await?;
    Ok(r.ext("offset").and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The first offset whose message was stored at or after `timestamp_ms`.
pub async fn search_offset(
    inst: &Instance,
    addr: &str,
    mq: &MessageQueue,
    timestamp_ms: i64,
) -> Result<i64> {
    let req =
        queue_req(RequestCode::SEARCH_OFFSET_BY_TIMESTAMP, mq).with_ext("timestamp", timestamp_ms);
    let r = inst.pool().call(addr, req, inst.timeout()).await?;
    Ok(r.ext("offset").and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Sends a message that failed to consume back for a later retry (`%RETRY%<group>`).
pub async fn send_back(
    inst: &Instance,
    addr: &str,
    group: &str,
    m: &MessageExt,
    max_reconsume: i32,
) -> Result<()> {
    let req = RemotingCommand::request(RequestCode::CONSUMER_SEND_MSG_BACK)
        .with_ext("offset", m.commit_log_offset)
        .with_ext("group", group)
        .with_ext("delayLevel", 0)
        .with_ext("originMsgId", &m.msg_id)
        .with_ext("originTopic", m.topic())
        .with_ext("unitMode", false)
        .with_ext("maxReconsumeTimes", max_reconsume);
    inst.pool()
        .call(addr, req, inst.timeout())
        .await
        .map(|_| ())
}

/// LOCK_BATCH_MQ: the queues this client now holds (orderly consumption).
pub async fn lock_queues(
    inst: &Instance,
    addr: &str,
    group: &str,
    mqs: &[MessageQueue],
) -> Result<Vec<MessageQueue>> {
    let body = serde_json::json!({
        "consumerGroup": group,
        "clientId": inst.client_id,
        "mqSet": mqs.iter().map(|q| serde_json::json!({
            "topic": q.topic, "brokerName": q.broker_name, "queueId": q.queue_id
        })).collect::<Vec<_>>(),
    });
    let req = RemotingCommand::request(RequestCode::LOCK_BATCH_MQ)
        .with_body(serde_json::to_vec(&body).unwrap_or_default());
    let r = inst.pool().call(addr, req, inst.timeout()).await?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
    let locked = v["lockOKMQSet"].as_array().cloned().unwrap_or_default();
    Ok(locked
        .iter()
        .filter_map(|q| {
            Some(MessageQueue {
                topic: q["topic"].as_str()?.to_string(),
                broker_name: q["brokerName"].as_str()?.to_string(),
                queue_id: q["queueId"].as_i64()? as i32,
            })
        })
        .collect())
}

/// The client ids of a group's consumers, as one broker knows them.
pub async fn consumer_ids(inst: &Instance, addr: &str, group: &str) -> Result<Vec<String>> {
    let req = RemotingCommand::request(RequestCode::GET_CONSUMER_LIST_BY_GROUP)
        .with_ext("consumerGroup", group);
    let r = inst.pool().call(addr, req, inst.timeout()).await?;
    let v: serde_json::Value =
        ferrocket_protocol::fastjson::from_slice(&r.body).unwrap_or_default();
    let mut ids: Vec<String> = v["consumerIdList"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    Ok(ids)
}
