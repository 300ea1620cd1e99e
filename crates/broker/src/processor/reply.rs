//! SEND_REPLY_MESSAGE (324) and SEND_REPLY_MESSAGE_V2 (325): the answer of RocketMQ's
//! request-reply. A consumer answers a request message with a reply message (topic
//! `<cluster>_REPLY_TOPIC`, the request's CORRELATION_ID, REPLY_TO_CLIENT and TTL); the broker
//! pushes it to the requesting producer's connection (PUSH_REPLY_MESSAGE_TO_CLIENT, 326), found
//! by the client id in REPLY_TO_CLIENT among producer heartbeats, and with
//! `storeReplyMessageEnable` (true) also stores it in the reply topic. The answer is SUCCESS
//! when the push was taken, SYSTEM_ERROR with RocketMQ's remark when not.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::message::{names, Properties};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};
use ferrocket_store::PutStatus;

use super::{HandlerResult, RequestCtx};
use crate::headers::SendMessageRequestHeader;
use crate::Broker;

/// How long the producer gets to take a pushed reply (RocketMQ's `callClient` waits 3 s).
const PUSH_TIMEOUT: Duration = Duration::from_secs(3);

static QUEUE_PICK: AtomicU32 = AtomicU32::new(0);

/// The reply topic of a cluster (RocketMQ's `MixAll.getReplyTopic`).
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}_REPLY_TOPIC")
}

pub async fn handle(b: &Arc<Broker>, ctx: &RequestCtx, req: &RemotingCommand) -> HandlerResult {
    let v2 = req.code == RequestCode::SEND_REPLY_MESSAGE_V2 as i32;
    let h = SendMessageRequestHeader::from_request(req, v2)?;
    if b.is_slave() {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SERVICE_NOT_AVAILABLE,
            "broker is a slave, it does not accept messages",
        )
        .into());
    }
    let Some(tc) = b.topics.get(&h.topic) else {
        return super::topic_not_exist(req, &h.topic);
    };
    let queue_id = if h.queue_id < 0 {
        (QUEUE_PICK.fetch_add(1, Ordering::Relaxed) % tc.write_queue_nums.max(1) as u32) as i32
    } else {
        h.queue_id
    };
    let props = Properties::parse(h.properties.as_deref().unwrap_or(""));
    let pushed = push(b, ctx, &h, &props, req).await;
    let mut resp = match &pushed {
        Ok(()) => RemotingCommand::response_to(req, ResponseCode::SUCCESS)
            .with_ext("msgId", "0")
            .with_ext("queueId", queue_id)
            .with_ext("queueOffset", 0),
        Err(remark) => RemotingCommand::error_to(req, ResponseCode::SYSTEM_ERROR, remark.clone()),
    };
    resp = resp
        .with_ext(names::MSG_REGION, &b.conf.region_id)
        .with_ext(names::TRACE_SWITCH, b.conf.trace_on);
    if b.conf.store_reply_message_enable {
        let m = super::send::to_store(b, ctx, &h, req, h.topic.clone(), queue_id, props);
        let r = b.put_messages(vec![m]).await;
        if let (Some(a), true) = (&r.append, matches!(r.status, PutStatus::PutOk)) {
            b.notifier.notify(&h.topic, queue_id);
            if pushed.is_ok() {
                resp = resp
                    .with_ext("msgId", &a.msg_id)
                    .with_ext("queueOffset", a.logics_offset);
            }
        } else {
            tracing::warn!(topic = %h.topic, status = ?r.status, "storing a reply message failed");
        }
    }
    Ok(resp.into())
}

/// Pushes the reply to the producer named by REPLY_TO_CLIENT; the error is the remark.
async fn push(
    b: &Broker,
    ctx: &RequestCtx,
    h: &SendMessageRequestHeader,
    props: &Properties,
    req: &RemotingCommand,
) -> Result<(), String> {
    let Some(client_id) = props.get(names::MESSAGE_REPLY_TO_CLIENT) else {
        return Err(format!(
            "reply message properties[{}] is null",
            names::MESSAGE_REPLY_TO_CLIENT
        ));
    };
    let conn = b
        .clients
        .producer_conn_of(client_id)
        .and_then(|id| b.conns.get(id))
        .ok_or_else(|| format!("push reply message fail, channel of <{client_id}> not found."))?;
    let mut pushed_props = props.clone();
    pushed_props.insert(names::PUSH_REPLY_TIME, crate::now_ms().to_string());
    let store_host = b.store.config().store_host;
    let mut cmd = RemotingCommand::request(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT)
        .with_ext("producerGroup", &h.producer_group)
        .with_ext("topic", &h.topic)
        .with_ext("defaultTopic", &h.default_topic)
        .with_ext("defaultTopicQueueNums", h.default_topic_queue_nums)
        .with_ext("queueId", h.queue_id)
        .with_ext("sysFlag", h.sys_flag)
        .with_ext("bornTimestamp", h.born_timestamp)
        .with_ext("flag", h.flag)
        .with_ext("properties", pushed_props.encode())
        .with_ext("reconsumeTimes", h.reconsume_times.unwrap_or(0))
        .with_ext("unitMode", h.unit_mode.unwrap_or(false))
        .with_ext(
            "bornHost",
            format!("{}:{}", ctx.conn.peer.ip(), ctx.conn.peer.port()),
        )
        .with_ext(
            "storeHost",
            format!("{}:{}", store_host.ip(), store_host.port()),
        )
        .with_ext("storeTimestamp", crate::now_ms())
        .with_body(req.body.clone());
    cmd.serialize_type = req.serialize_type;
    match conn.request(cmd, PUSH_TIMEOUT).await {
        Some(r) if r.code == ResponseCode::SUCCESS as i32 => Ok(()),
        Some(r) => {
            tracing::warn!(%client_id, remark = ?r.remark, "push reply message refused");
            Err(format!("push reply message to {client_id}fail."))
        }
        None => Err(format!("push reply message to {client_id}fail.")),
    }
}
