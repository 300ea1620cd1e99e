//! CONSUMER_SEND_MSG_BACK (36): a consumer hands back a message it failed to consume. The broker
//! re-reads it by physical offset and stores a copy in `%RETRY%<group>` (or `%DLQ%<group>` once
//! the reconsume budget is spent or the delay level is negative).
//!
//! The copy is delayed by level `delayLevel` (0: 3 + reconsume times, as RocketMQ), through
//! the schedule topic.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use ferrocket_protocol::header::{optional, required};
use ferrocket_protocol::message::{decode, names};
use ferrocket_protocol::{RemotingCommand, ResponseCode};

use super::{reply, HandlerResult};
use crate::topic::{retry_topic, DLQ_GROUP_TOPIC_PREFIX};
use crate::Broker;

const V3_4_9: i32 = 121;
static PICK: AtomicU32 = AtomicU32::new(0);

/// Handles one send-back.
pub async fn handle(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let ext = &req.ext_fields;
    let offset: i64 = required(ext, "offset")?;
    let group: String = required(ext, "group")?;
    let delay_level: i32 = required(ext, "delayLevel")?;
    let origin_msg_id: Option<String> = optional(ext, "originMsgId")?;
    let max_from_client: Option<i32> = optional(ext, "maxReconsumeTimes")?;
    let Some(g) = b.groups.find_or_create(&group)? else {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group not exist, {group}"),
        )
        .into());
    };
    if g.retry_queue_nums <= 0 {
        return Ok(reply(req, ResponseCode::SUCCESS).into());
    }
    let Some(raw) = b.store.message_at(offset) else {
        return Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!("look message by offset failed, {offset}"),
        )
        .into());
    };
    let mut msg = match decode(&raw) {
        Ok(m) => m,
        Err(e) => {
            return Ok(RemotingCommand::error_to(
                req,
                ResponseCode::SYSTEM_ERROR,
                format!("cannot decode message at {offset}: {e}"),
            )
            .into())
        }
    };
    if msg.properties.get(names::RETRY_TOPIC).is_none() {
        let t = msg.topic.clone();
        msg.properties.insert(names::RETRY_TOPIC, t);
    }
    msg.properties.insert(names::WAIT_STORE_MSG_OK, "false");
    let mut max = g.retry_max_times;
    if req.version >= V3_4_9 {
        if let Some(m) = max_from_client {
            max = m;
        }
    }
    let to_dlq = msg.reconsume_times >= max || delay_level < 0;
    let (topic, queue_id) = if to_dlq {
        let dlq = format!("{DLQ_GROUP_TOPIC_PREFIX}{group}");
        b.topics.get_or_create(&dlq, 1)?;
        (dlq, 0)
    } else {
        let rt = retry_topic(&group);
        b.topics.get_or_create(&rt, g.retry_queue_nums)?;
        let q = PICK.fetch_add(1, Ordering::Relaxed) % g.retry_queue_nums as u32;
        (rt, q as i32)
    };
    let origin = origin_msg_id.or_else(|| {
        msg.properties
            .get(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
            .map(String::from)
    });
    if let Some(o) = origin {
        msg.properties.insert(names::ORIGIN_MESSAGE_ID, o);
    }
    msg.topic = topic.clone();
    msg.queue_id = queue_id;
    msg.reconsume_times += 1;
    msg.queue_offset = 0;
    msg.physical_offset = 0;
    msg.properties.remove(names::DELAY_TIME_LEVEL);
    if !to_dlq {
        let level = if delay_level == 0 {
            3 + msg.reconsume_times - 1
        } else {
            delay_level
        };
        msg.properties
            .insert(names::DELAY_TIME_LEVEL, level.to_string());
        crate::delay::redirect(&mut msg, b.delay_levels);
    }
    let r = b.put_message(msg).await;
    crate::delay::notify_ha(b, &r);
    if r.append.is_some() {
        b.notifier.notify(&topic, queue_id);
        b.stats.add_put(1);
    }
    if r.status.is_stored() {
        Ok(reply(req, ResponseCode::SUCCESS).into())
    } else {
        Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!("send message back failed: {:?}", r.status),
        )
        .into())
    }
}
