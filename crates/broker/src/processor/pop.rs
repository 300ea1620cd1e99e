//! RocketMQ 5.x's remoting POP commands (POP_MESSAGE, ACK_MESSAGE, CHANGE_MESSAGE_INVISIBLETIME)
//! over the same POP state as the gRPC receive, so a group may mix both.
//!
//! Each popped message carries the property `POP_CK` (RocketMQ's `extraInfo`): `ckQueueOffset
//! popTime invisibleTime reviveQid topicMark brokerName queueId queueOffset`, space separated.
//! Ferrocket puts the delivery's nonce where the pop time goes, so the `extraInfo` a client
//! sends back with ACK_MESSAGE names one delivery, and CHANGE_MESSAGE_INVISIBLETIME answers the
//! new nonce as `popTime`, from which clients build the next `extraInfo`.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrocket_protocol::message::{decode, names};
use ferrocket_protocol::{RemotingCommand, ResponseCode};

use super::{reply, HandlerResult};
use crate::headers::{AckMessageRequestHeader, PopMessageRequestHeader};
use crate::pop::{Handle, PopRequest, Popped};
use crate::Broker;

/// Longest a POP_MESSAGE is held.
const MAX_POLL: Duration = Duration::from_secs(20);

fn extra_info(b: &Broker, p: &Popped) -> String {
    format!(
        "{} {} {} 0 0 {} {} {}",
        p.offset, p.nonce, p.invisible_ms, b.conf.broker_name, p.queue_id, p.offset
    )
}

/// The handle an `extraInfo` and its header name.
fn handle_of(h: &AckMessageRequestHeader) -> Option<Handle> {
    let nonce: i64 = h.extra_info.split(' ').nth(1)?.parse().ok()?;
    Some(Handle {
        topic: h.topic.clone(),
        queue_id: h.queue_id,
        offset: h.offset,
        nonce: nonce as u64,
    })
}

pub async fn pop_message(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: PopMessageRequestHeader = req.header()?;
    let Some(tc) = b.topics.get(&h.topic) else {
        return super::topic_not_exist(req, &h.topic);
    };
    let Ok(Some(g)) = b.groups.find_or_create(&h.consumer_group) else {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group [{}] does not exist", h.consumer_group),
        )
        .into());
    };
    if h.exp_type.as_deref().is_some_and(|t| t != "TAG") {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SUBSCRIPTION_PARSE_FAILED,
            "only TAG expressions are supported by POP_MESSAGE",
        )
        .into());
    }
    let tags = crate::processor::pull::parse_tags(h.exp.as_deref().unwrap_or("*"));
    let n = tc.read_queue_nums.max(0);
    let queues: Vec<i32> = if h.queue_id >= 0 {
        if h.queue_id >= n {
            return Ok(RemotingCommand::error_to(
                req,
                ResponseCode::SYSTEM_ERROR,
                format!(
                    "queueId[{}] is illegal, topic {} has {n} read queues",
                    h.queue_id, h.topic
                ),
            )
            .into());
        }
        vec![h.queue_id]
    } else {
        (0..n).collect()
    };
    let invisible_ms = h.invisible_time.max(1000);
    let popped = crate::pop::receive(
        b,
        PopRequest {
            group: &h.consumer_group,
            topic: &h.topic,
            queues: &queues,
            tags: tags.as_ref(),
            sql: None,
            max: h.max_msg_nums.clamp(1, 32) as usize,
            invisible_ms,
            fifo: h.order == Some(true) || g.consume_message_orderly,
            now: crate::now_ms(),
            owner: None,
        },
        g.retry_max_times + 1,
        Duration::from_millis(h.poll_time.max(0) as u64).min(MAX_POLL),
    )
    .await;
    let now = crate::now_ms();
    if popped.is_empty() {
        return Ok(
            RemotingCommand::error_to(req, ResponseCode::POLLING_TIMEOUT, "no new message")
                .with_ext("popTime", now)
                .with_ext("invisibleTime", invisible_ms)
                .with_ext("reviveQid", 0)
                .with_ext("restNum", 0)
                .into(),
        );
    }
    let mut body = BytesMut::new();
    for p in &popped {
        let Ok(mut m) = decode(&p.record) else {
            continue;
        };
        m.properties.insert(names::POP_CK, extra_info(b, p));
        m.reconsume_times = p.attempt - 1;
        if let Ok(bytes) = m.to_bytes() {
            body.extend_from_slice(&bytes);
        }
    }
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("popTime", now)
        .with_ext("invisibleTime", invisible_ms)
        .with_ext("reviveQid", 0)
        .with_ext("restNum", 0)
        .with_body(Bytes::from(body))
        .into())
}

pub fn ack_message(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: AckMessageRequestHeader = req.header()?;
    match handle_of(&h).map(|handle| b.pop.ack(b, &h.consumer_group, &handle)) {
        Some(Ok(())) => Ok(reply(req, ResponseCode::SUCCESS).into()),
        _ => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::NO_MESSAGE,
            "the message was handed out again since; this extraInfo is stale",
        )
        .into()),
    }
}

pub fn change_invisible_time(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: AckMessageRequestHeader = req.header()?;
    let invisible_ms = h.invisible_time.unwrap_or(0).max(0);
    let changed = handle_of(&h).and_then(|handle| {
        b.pop
            .change_invisible(&h.consumer_group, &handle, invisible_ms, crate::now_ms())
            .ok()
    });
    match changed {
        Some(new) => Ok(reply(req, ResponseCode::SUCCESS)
            .with_ext("popTime", new.nonce as i64)
            .with_ext("invisibleTime", invisible_ms)
            .with_ext("reviveQid", 0)
            .into()),
        None => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::NO_MESSAGE,
            "the message was handed out again since; this extraInfo is stale",
        )
        .into()),
    }
}
