//! Client management: HEART_BEAT, UNREGISTER_CLIENT, GET_CONSUMER_LIST_BY_GROUP, and the
//! NOTIFY_CONSUMER_IDS_CHANGED push to a group's members when its membership changes.

use std::sync::Arc;
use std::time::Instant;

use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use super::{reply, HandlerError, HandlerResult, RequestCtx};
use crate::body::HeartbeatData;
use crate::clients::Peer;
use crate::headers::{ConsumerGroupHeader, UnregisterClientRequestHeader};
use crate::locks::LockBatchRequestBody;
use crate::topic::retry_topic;
use crate::Broker;

/// HEART_BEAT: registers producers and consumers; creates each consumer group's retry topic.
pub fn heartbeat(b: &Arc<Broker>, ctx: &RequestCtx, req: &RemotingCommand) -> HandlerResult {
    let hb: HeartbeatData = ferrocket_protocol::fastjson::from_slice(&req.body)
        .map_err(|e| HandlerError::Other(format!("bad heartbeat body: {e}")))?;
    for c in &hb.consumer_data_set {
        if let Some(g) = b.groups.find_or_create(&c.group_name)? {
            if g.retry_queue_nums > 0 {
                b.topics
                    .get_or_create(&retry_topic(&c.group_name), g.retry_queue_nums)?;
            }
        }
    }
    let peer = Peer {
        conn: ctx.conn.id,
        addr: ctx.conn.peer,
        language: req.language.name().to_string(),
        version: req.version,
    };
    let changed = b.clients.heartbeat(&peer, &hb, Instant::now());
    notify_groups_changed(b, &changed);
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// UNREGISTER_CLIENT.
pub fn unregister_client(
    b: &Arc<Broker>,
    ctx: &RequestCtx,
    req: &RemotingCommand,
) -> HandlerResult {
    let h: UnregisterClientRequestHeader = req.header()?;
    let changed = b.clients.unregister(
        ctx.conn.id,
        h.producer_group.as_deref(),
        h.consumer_group.as_deref(),
    );
    notify_groups_changed(b, &changed);
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// GET_CONSUMER_LIST_BY_GROUP: `{"consumerIdList":[…]}`.
pub fn get_consumer_list_by_group(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let h: ConsumerGroupHeader = req.header()?;
    match b.clients.consumer_ids(&h.consumer_group) {
        Some(ids) if !ids.is_empty() => {
            let body = serde_json::json!({ "consumerIdList": ids });
            Ok(reply(req, ResponseCode::SUCCESS)
                .with_body(serde_json::to_vec(&body).unwrap_or_default())
                .into())
        }
        _ => Ok(RemotingCommand::error_to(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!("no consumer for this group, {}", h.consumer_group),
        )
        .into()),
    }
}

/// LOCK_BATCH_MQ: `{"lockOKMQSet":[…]}` = the requested queues this client now holds.
pub fn lock_batch_mq(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let body: LockBatchRequestBody = ferrocket_protocol::fastjson::from_slice(&req.body)
        .map_err(|e| HandlerError::Other(format!("bad lock body: {e}")))?;
    let ok = b.locks.try_lock_batch(
        &body.consumer_group,
        &body.mq_set,
        &body.client_id,
        Instant::now(),
    );
    let out = serde_json::json!({ "lockOKMQSet": ok });
    Ok(reply(req, ResponseCode::SUCCESS)
        .with_body(serde_json::to_vec(&out).unwrap_or_default())
        .into())
}

/// UNLOCK_BATCH_MQ.
pub fn unlock_batch_mq(b: &Arc<Broker>, req: &RemotingCommand) -> HandlerResult {
    let body: LockBatchRequestBody = ferrocket_protocol::fastjson::from_slice(&req.body)
        .map_err(|e| HandlerError::Other(format!("bad unlock body: {e}")))?;
    b.locks
        .unlock_batch(&body.consumer_group, &body.mq_set, &body.client_id);
    Ok(reply(req, ResponseCode::SUCCESS).into())
}

/// Pushes NOTIFY_CONSUMER_IDS_CHANGED (oneway) to every member of each group.
pub fn notify_groups_changed(b: &Broker, groups: &[String]) {
    if !b.conf.notify_consumer_ids_changed_enable {
        return;
    }
    for g in groups {
        if b.groups
            .get(g)
            .is_some_and(|c| !c.notify_consumer_ids_changed_enable)
        {
            continue;
        }
        for id in b.clients.consumer_conns(g) {
            if let Some(conn) = b.conns.get(id) {
                let cmd = RemotingCommand::request(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED)
                    .with_ext("consumerGroup", g);
                if !conn.oneway(cmd) {
                    tracing::debug!(group = %g, conn = id, "could not queue NOTIFY_CONSUMER_IDS_CHANGED");
                }
            }
        }
    }
}
