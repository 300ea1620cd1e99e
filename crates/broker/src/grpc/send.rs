//! SendMessage: each message becomes a remoting SEND_MESSAGE handled by the same code as the
//! 4.x clients' sends (validation, delay and timer redirection, DLQ, replication), so messages
//! are the same whichever protocol stored them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ferrocket_protocol::message::names;
use ferrocket_protocol::message::Properties;
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use super::pb;
use crate::connection::ConnHandle;
use crate::processor::RequestCtx;
use crate::Broker;

/// Producer group recorded with gRPC sends (5.x producers have none).
pub(crate) const GRPC_PRODUCER_GROUP: &str = "GRPC_PRODUCER";

/// The producer group of a gRPC transactional message: 5.x producers have no group, so, as the
/// proxy does, the topic stands for it; transaction checks go to a producer publishing to it.
pub(crate) fn producer_group(topic: &str) -> String {
    format!("%GRPC%{topic}")
}

/// Connection ids of gRPC calls, far from the remoting server's.
static NEXT_CONN: AtomicU64 = AtomicU64::new(1 << 62);

fn entry(code: pb::Code, message: impl Into<String>, id: &str) -> pb::SendResultEntry {
    pb::SendResultEntry {
        status: super::status(code, message),
        message_id: id.to_string(),
        ..Default::default()
    }
}

/// The remoting outcome as the 5.x clients know it.
fn code_of(rc: i32) -> pb::Code {
    use ResponseCode as R;
    match rc {
        x if x == R::SUCCESS as i32 => pb::Code::Ok,
        x if x == R::FLUSH_DISK_TIMEOUT as i32 => pb::Code::MasterPersistenceTimeout,
        x if x == R::FLUSH_SLAVE_TIMEOUT as i32 => pb::Code::SlavePersistenceTimeout,
        x if x == R::SLAVE_NOT_AVAILABLE as i32 => pb::Code::HaNotAvailable,
        x if x == R::TOPIC_NOT_EXIST as i32 => pb::Code::TopicNotFound,
        x if x == R::NO_PERMISSION as i32 => pb::Code::Forbidden,
        x if x == R::MESSAGE_ILLEGAL as i32 => pb::Code::BadRequest,
        x if x == R::SYSTEM_BUSY as i32 => pb::Code::TooManyRequests,
        _ => pb::Code::InternalServerError,
    }
}

/// The remoting request for one message, or the entry refusing it.
fn to_remoting(b: &Broker, m: pb::Message) -> Result<RemotingCommand, pb::SendResultEntry> {
    let sp = m.system_properties.unwrap_or_default();
    let id = sp.message_id.clone();
    if id.is_empty() {
        return Err(entry(
            pb::Code::IllegalMessageId,
            "message id is empty",
            &id,
        ));
    }
    let topic = super::resource_name(&m.topic);
    if topic.is_empty() {
        return Err(entry(pb::Code::IllegalTopic, "topic is empty", &id));
    }
    let Some(tc) = b.topics.get(&topic) else {
        return Err(entry(
            pb::Code::TopicNotFound,
            format!("topic {topic} not found"),
            &id,
        ));
    };
    if m.body.is_empty() {
        return Err(entry(pb::Code::BadRequest, "message body is empty", &id));
    }
    let max = b.store.config().max_message_size;
    if m.body.len() > max {
        return Err(entry(
            pb::Code::MessageBodyTooLarge,
            format!("message body of {} bytes exceeds {max}", m.body.len()),
            &id,
        ));
    }
    let transactional = sp.message_type == pb::MessageType::Transaction as i32;
    let mut props = Properties::new();
    if transactional {
        if sp.message_group.is_some() || sp.delivery_timestamp.is_some() {
            return Err(entry(
                pb::Code::MessagePropertyConflictWithType,
                "a transactional message has no message group or delivery time",
                &id,
            ));
        }
        props.insert(names::TRANSACTION_PREPARED, "true");
        props.insert(names::PRODUCER_GROUP, producer_group(&topic));
    }
    for (k, v) in m.user_properties {
        props.insert(k, v);
    }
    if let Some(tag) = sp.tag.filter(|t| !t.is_empty()) {
        props.insert(names::TAGS, tag);
    }
    if !sp.keys.is_empty() {
        props.insert(names::KEYS, sp.keys.join(" "));
    }
    props.insert(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, id.clone());
    let mut queue_id = -1;
    if let Some(group) = sp.message_group.filter(|g| !g.is_empty()) {
        // One group always lands on one queue: order within a group is the queue's order.
        let n = tc.write_queue_nums.max(1);
        let h = ferrocket_protocol::message::java_string_hash(&group);
        queue_id = (h.unsigned_abs() % n as u32) as i32;
        props.insert(names::SHARDING_KEY, group);
    }
    if let Some(at) = sp.delivery_timestamp {
        let ms = super::convert::timestamp_ms(&at);
        props.insert(names::TIMER_DELIVER_MS, ms.to_string());
    }
    let born = sp
        .born_timestamp
        .as_ref()
        .map_or_else(crate::now_ms, super::convert::timestamp_ms);
    Ok(RemotingCommand::request(RequestCode::SEND_MESSAGE)
        .with_ext("producerGroup", GRPC_PRODUCER_GROUP)
        .with_ext("topic", &topic)
        .with_ext("defaultTopic", "TBW102")
        .with_ext("defaultTopicQueueNums", 4)
        .with_ext("queueId", queue_id)
        .with_ext(
            "sysFlag",
            if transactional {
                ferrocket_protocol::message::sysflag::TRANSACTION_PREPARED_TYPE
            } else {
                0
            },
        )
        .with_ext("bornTimestamp", born)
        .with_ext("flag", 0)
        .with_ext("properties", props.encode())
        .with_body(m.body))
}

pub(crate) async fn send_message(
    b: &Arc<Broker>,
    peer: Option<SocketAddr>,
    req: pb::SendMessageRequest,
) -> pb::SendMessageResponse {
    if req.messages.is_empty() {
        return pb::SendMessageResponse {
            status: super::status(pb::Code::BadRequest, "no message"),
            entries: Vec::new(),
        };
    }
    // The send handler answers on a connection; this one only carries the peer's address.
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let peer = peer.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let ctx = RequestCtx {
        conn: Arc::new(ConnHandle::new(
            NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            peer,
            tx,
        )),
        fast: false,
    };
    let mut entries = Vec::with_capacity(req.messages.len());
    for m in req.messages {
        let id = m
            .system_properties
            .as_ref()
            .map(|s| s.message_id.clone())
            .unwrap_or_default();
        let transactional = m
            .system_properties
            .as_ref()
            .is_some_and(|s| s.message_type == pb::MessageType::Transaction as i32);
        let cmd = match to_remoting(b, m) {
            Ok(c) => c,
            Err(e) => {
                entries.push(e);
                continue;
            }
        };
        let resp = match crate::processor::send::handle(b, &ctx, &cmd).await {
            Ok(out) => out.cmd,
            Err(e) => RemotingCommand::error_to(&cmd, ResponseCode::SYSTEM_ERROR, e.to_string()),
        };
        let code = code_of(resp.code);
        let mut e = entry(
            code,
            resp.remark.clone().unwrap_or_else(|| "OK".into()),
            &id,
        );
        if code == pb::Code::Ok {
            e.offset = resp
                .ext("queueOffset")
                .and_then(|o| o.parse().ok())
                .unwrap_or(0);
            // The half message's offset id: EndTransaction finds it by this.
            if transactional {
                e.transaction_id = resp.ext("msgId").unwrap_or_default().to_string();
            }
        }
        entries.push(e);
    }
    // One message per call from every official client: its status is the call's.
    let status = super::overall(entries.iter().map(|e| &e.status));
    pb::SendMessageResponse { status, entries }
}

/// EndTransaction: commit or roll back the half message the transaction id names (its offset
/// id), through the remoting END_TRANSACTION path.
pub(crate) async fn end_transaction(
    b: &Arc<Broker>,
    req: pb::EndTransactionRequest,
) -> pb::EndTransactionResponse {
    let Ok((_, phys)) = ferrocket_protocol::message::decode_offset_msg_id(&req.transaction_id)
    else {
        return pb::EndTransactionResponse {
            status: super::status(pb::Code::InvalidTransactionId, "unknown transaction id"),
        };
    };
    use ferrocket_protocol::message::sysflag;
    let kind = match pb::TransactionResolution::try_from(req.resolution) {
        Ok(pb::TransactionResolution::Commit) => sysflag::TRANSACTION_COMMIT_TYPE,
        Ok(pb::TransactionResolution::Rollback) => sysflag::TRANSACTION_ROLLBACK_TYPE,
        _ => {
            return pb::EndTransactionResponse {
                status: super::status(
                    pb::Code::BadRequest,
                    "resolution must be COMMIT or ROLLBACK",
                ),
            }
        }
    };
    let topic = super::resource_name(&req.topic);
    let cmd = RemotingCommand::request(RequestCode::END_TRANSACTION)
        .with_ext("producerGroup", producer_group(&topic))
        .with_ext("tranStateTableOffset", 0)
        .with_ext("commitLogOffset", phys)
        .with_ext("commitOrRollback", kind)
        .with_ext(
            "fromTransactionCheck",
            req.source == pb::TransactionSource::SourceServerCheck as i32,
        )
        .with_ext("msgId", &req.message_id)
        .with_ext("transactionId", &req.transaction_id);
    let status = match crate::transaction::end_transaction(b, &cmd).await {
        Ok(r) if r.code == ResponseCode::SUCCESS as i32 => super::ok(),
        Ok(r) => super::status(code_of(r.code), r.remark.unwrap_or_default()),
        Err(e) => super::status(pb::Code::InternalServerError, e.to_string()),
    };
    pb::EndTransactionResponse { status }
}
