//! Consumer offsets and queue offsets: QUERY/UPDATE_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
//! SEARCH_OFFSET_BY_TIMESTAMP, GET_EARLIEST_MSG_STORETIME, GET_ALL_CONSUMER_OFFSET.

use std::sync::Arc;

use ferrocket_protocol::{RemotingCommand, ResponseCode};

use super::{reply, HandlerResult};
use crate::headers::{
    QueryConsumerOffsetRequestHeader, SearchOffsetRequestHeader, TopicQueueHeader,
    UpdateConsumerOffsetRequestHeader,
};
use crate::Broker;

/// QUERY_CONSUMER_OFFSET: the committed offset, else QUERY_NOT_FOUND (0 when the request sets
/// `setZeroIfNotFound=true`).
pub fn query_consumer_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: QueryConsumerOffsetRequestHeader = req.header()?;
    match b.offsets.query(&h.consumer_group, &h.topic, h.queue_id) {
        Some(off) if off >= 0 => Ok(reply(req, ResponseCode::SUCCESS)
            .with_ext("offset", off)
            .into()),
        _ if h.set_zero_if_not_found == Some(true) => Ok(reply(req, ResponseCode::SUCCESS)
            .with_ext("offset", 0)
            .into()),
        _ => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::QUERY_NOT_FOUND,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
        )
        .into()),
    }
}

/// UPDATE_CONSUMER_OFFSET (often oneway).
pub fn update_consumer_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: UpdateConsumerOffsetRequestHeader = req.header()?;
    if b.is_slave() {
        return Ok(reply(req, ResponseCode::SUCCESS).into());
    }
    b.offsets
        .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// GET_MAX_OFFSET: the next offset to be written in the queue.
pub fn get_max_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: TopicQueueHeader = req.header()?;
    let off = b.store.max_offset_in_queue(&h.topic, h.queue_id);
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("offset", off)
        .into())
}

/// GET_MIN_OFFSET: the first offset still readable.
pub fn get_min_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: TopicQueueHeader = req.header()?;
    let off = b.store.min_offset_in_queue(&h.topic, h.queue_id);
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("offset", off)
        .into())
}

/// SEARCH_OFFSET_BY_TIMESTAMP: the first offset stored at or after the timestamp.
pub fn search_offset_by_timestamp(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: SearchOffsetRequestHeader = req.header()?;
    let off = b
        .store
        .offset_in_queue_by_time(&h.topic, h.queue_id, h.timestamp);
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("offset", off)
        .into())
}

/// GET_EARLIEST_MSG_STORETIME: store time of the queue's first message, -1 if none.
pub fn get_earliest_msg_storetime(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: TopicQueueHeader = req.header()?;
    let min = b.store.min_offset_in_queue(&h.topic, h.queue_id);
    let ts = b
        .store
        .message_store_time(&h.topic, h.queue_id, min)
        .unwrap_or(-1);
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_ext("timestamp", ts)
        .into())
}

/// GET_ALL_CONSUMER_OFFSET: `{"offsetTable":{"topic@group":{"0":5}}}`.
pub fn get_all_consumer_offset(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let body = serde_json::json!({ "offsetTable": b.offsets.snapshot() });
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_body(serde_json::to_vec(&body).unwrap_or_default())
        .into())
}
