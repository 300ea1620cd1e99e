//! Transactional messages, as RocketMQ keeps them:
//! - a prepared (half) message is stored in `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 with its real topic
//!   and queue in properties, so consumers never see it;
//! - END_TRANSACTION commit copies it to its real topic (once), rollback drops it; either way an
//!   op record (tag `d`, body = the half message's queue offset) goes to
//!   `RMQ_SYS_TRANS_OP_HALF_TOPIC`, so nothing is resolved twice, across restarts too;
//! - a half message unresolved after `transactionTimeOut` is checked back with
//!   CHECK_TRANSACTION_STATE at a live producer of its group every `transactionCheckInterval`,
//!   at most `transactionCheckMax` times, then parked in `TRANS_CHECK_MAX_TIME_TOPIC`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrocket_protocol::message::{decode, names, sysflag, StoredMessage};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::{Broker, BrokerError};

pub const HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
pub const OP_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
pub const CHECK_MAX_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// The consumer group under which the checker keeps its place in the half queue.
const CHECK_GROUP: &str = "CID_RMQ_SYS_TRANS";

/// Half-queue offsets already committed or rolled back (from the op queue at start).
#[derive(Debug, Default)]
pub struct Resolved(Mutex<Option<HashSet<i64>>>);

impl Resolved {
    fn with<R>(&self, b: &Broker, f: impl FnOnce(&mut HashSet<i64>) -> R) -> R {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let set = g.get_or_insert_with(|| load_resolved(b));
        f(set)
    }
}

fn load_resolved(b: &Broker) -> HashSet<i64> {
    let mut set = HashSet::new();
    let mut off = b.store.min_offset_in_queue(OP_TOPIC, 0);
    while let Some(e) = b.store.queue_entry(OP_TOPIC, 0, off) {
        if let Some(m) = b.store.message_at(e.phys).and_then(|raw| decode(&raw).ok()) {
            if let Some(o) = std::str::from_utf8(&m.body)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                set.insert(o);
            }
        }
        off += 1;
    }
    set
}

/// Whether a message sent by a producer is a prepared half message.
pub fn is_half(m: &StoredMessage) -> bool {
    sysflag::transaction_type(m.sys_flag) == sysflag::TRANSACTION_PREPARED_TYPE
        || m.properties.get(names::TRANSACTION_PREPARED) == Some("true")
}

/// Turns a prepared message into its half form (hidden in the half topic).
pub fn to_half(m: &mut StoredMessage) {
    m.properties.insert(names::REAL_TOPIC, m.topic.clone());
    m.properties
        .insert(names::REAL_QUEUE_ID, m.queue_id.to_string());
    m.properties.insert(names::TRANSACTION_PREPARED, "true");
    m.sys_flag &= !sysflag::TRANSACTION_TYPE_MASK;
    m.topic = HALF_TOPIC.to_string();
    m.queue_id = 0;
}

async fn put(b: &Broker, m: StoredMessage) -> Option<ferrocket_store::AppendResult> {
    let (topic, q) = (m.topic.clone(), m.queue_id);
    let r = b.put_message(m).await;
    crate::delay::notify_ha(b, &r);
    if r.status.is_stored() {
        b.notifier.notify(&topic, q);
    }
    r.append
}

/// Records that the half message at `half_offset` is resolved.
async fn op_record(b: &Broker, half_offset: i64) {
    let mut op = StoredMessage::new(OP_TOPIC, 0, half_offset.to_string().into_bytes());
    op.properties.insert(names::TAGS, "d");
    op.properties.insert(names::WAIT_STORE_MSG_OK, "false");
    op.store_host = b.store.config().store_host;
    put(b, op).await;
    b.tx_resolved.with(b, |s| s.insert(half_offset));
}

/// The committed copy of a half message: real topic and queue, COMMIT sysflag.
fn committed(mut m: StoredMessage, half_phys: i64) -> Option<StoredMessage> {
    let topic = m.properties.get(names::REAL_TOPIC)?.to_string();
    let q = m.properties.get(names::REAL_QUEUE_ID)?.parse().ok()?;
    m.properties.remove(names::REAL_TOPIC);
    m.properties.remove(names::REAL_QUEUE_ID);
    m.properties.insert(names::WAIT_STORE_MSG_OK, "false");
    m.topic = topic;
    m.queue_id = q;
    m.sys_flag = (m.sys_flag & !sysflag::TRANSACTION_TYPE_MASK) | sysflag::TRANSACTION_COMMIT_TYPE;
    m.prepared_transaction_offset = half_phys;
    m.queue_offset = 0;
    m.physical_offset = 0;
    Some(m)
}

/// END_TRANSACTION (37): commit (8), rollback (12) or unknown (0).
/// The answer is dropped by the connection when the request was oneway (as clients send it).
pub async fn end_transaction(
    b: &Arc<Broker>,
    req: &RemotingCommand,
) -> Result<RemotingCommand, BrokerError> {
    let ext = |k: &str| req.ext(k).and_then(|v| v.parse::<i64>().ok());
    let reply = |code: ResponseCode, remark: &str| RemotingCommand::error_to(req, code, remark);
    if b.is_slave() {
        return Ok(reply(
            ResponseCode::SLAVE_NOT_AVAILABLE,
            "a slave does not end transactions",
        ));
    }
    let (Some(phys), Some(kind)) = (ext("commitLogOffset"), ext("commitOrRollback")) else {
        return Ok(reply(
            ResponseCode::SYSTEM_ERROR,
            "commitLogOffset and commitOrRollback are required",
        ));
    };
    let kind = kind as i32;
    if kind != sysflag::TRANSACTION_COMMIT_TYPE && kind != sysflag::TRANSACTION_ROLLBACK_TYPE {
        return Ok(reply(ResponseCode::SUCCESS, "left for the check"));
    }
    let Some(half) = b.store.message_at(phys).and_then(|raw| decode(&raw).ok()) else {
        return Ok(reply(
            ResponseCode::SYSTEM_ERROR,
            "no half message at commitLogOffset",
        ));
    };
    if half.topic != HALF_TOPIC {
        return Ok(reply(ResponseCode::SYSTEM_ERROR, "not a half message"));
    }
    let half_offset = half.queue_offset;
    if b.tx_resolved.with(b, |s| s.contains(&half_offset)) {
        return Ok(reply(ResponseCode::SUCCESS, "already resolved"));
    }
    if kind == sysflag::TRANSACTION_COMMIT_TYPE {
        let Some(m) = committed(half, phys) else {
            return Ok(reply(
                ResponseCode::SYSTEM_ERROR,
                "half message without its real topic",
            ));
        };
        if put(b, m).await.is_none() {
            return Ok(reply(
                ResponseCode::SYSTEM_ERROR,
                "storing the committed message failed",
            ));
        }
        b.stats.add_put(1);
    }
    op_record(b, half_offset).await;
    Ok(reply(ResponseCode::SUCCESS, ""))
}

/// Checks unresolved half messages until shutdown (masters only).
pub async fn run_checker(b: Arc<Broker>) {
    if b.conf.is_slave() {
        return;
    }
    let every = Duration::from_millis(b.conf.transaction_check_interval.max(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = b.shutdown.cancelled() => return,
        }
        // A DLedger follower waits for its turn as leader.
        if !b.is_slave() {
            check_once(&b).await;
        }
    }
}

async fn check_once(b: &Arc<Broker>) {
    let start = b
        .offsets
        .query(CHECK_GROUP, HALF_TOPIC, 0)
        .unwrap_or(0)
        .max(b.store.min_offset_in_queue(HALF_TOPIC, 0));
    let max = b.store.max_offset_in_queue(HALF_TOPIC, 0);
    let now = crate::now_ms();
    let mut off = start;
    while off < max {
        if b.tx_resolved.with(b, |s| s.contains(&off)) {
            off += 1;
            continue;
        }
        let Some(e) = b.store.queue_entry(HALF_TOPIC, 0, off) else {
            break;
        };
        let Some(mut m) = b.store.message_at(e.phys).and_then(|raw| decode(&raw).ok()) else {
            off += 1;
            continue;
        };
        if now - m.store_timestamp < b.conf.transaction_timeout as i64 {
            break; // Later half messages are younger still.
        }
        let times: i32 = m
            .properties
            .get(names::TRANSACTION_CHECK_TIMES)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if times >= b.conf.transaction_check_max {
            let mut parked = m.clone();
            parked.topic = CHECK_MAX_TOPIC.to_string();
            parked.queue_id = 0;
            let _ = b.topics.get_or_create(CHECK_MAX_TOPIC, 1);
            put(b, parked).await;
            op_record(b, off).await;
            tracing::warn!(msg = ?m.properties.uniq_key(), "transaction never resolved; parked in {CHECK_MAX_TOPIC}");
            off += 1;
            continue;
        }
        // Re-put with one more check (the new copy waits for the next round), retire this one.
        m.properties
            .insert(names::TRANSACTION_CHECK_TIMES, (times + 1).to_string());
        m.queue_offset = 0;
        m.physical_offset = 0;
        let Some(a) = put(b, m.clone()).await else {
            break;
        };
        op_record(b, off).await;
        send_check(b, &m, a.wrote_offset, a.logics_offset).await;
        off += 1;
    }
    if off != start {
        b.offsets.commit(CHECK_GROUP, HALF_TOPIC, 0, off);
    }
}

/// CHECK_TRANSACTION_STATE to one live producer of the message's group.
async fn send_check(b: &Broker, m: &StoredMessage, phys: i64, half_offset: i64) {
    let Some(group) = m.properties.get(names::PRODUCER_GROUP) else {
        return;
    };
    let mut shown = m.clone();
    if let Some(t) = m.properties.get(names::REAL_TOPIC) {
        shown.topic = t.to_string();
    }
    shown.physical_offset = phys;
    shown.queue_offset = half_offset;
    let Some(conn) = b
        .clients
        .producer_conns(group)
        .into_iter()
        .find_map(|id| b.conns.get(id))
    else {
        // A 5.x producer over gRPC, found by the topic it publishes to.
        if !crate::grpc::check_transaction(b, &shown, phys) {
            tracing::debug!(%group, "no live producer to check a transaction with");
        }
        return;
    };
    let Ok(body) = shown.to_bytes() else { return };
    let offset_id =
        ferrocket_protocol::message::encode_offset_msg_id(b.store.config().store_host, phys);
    let req = RemotingCommand::request(RequestCode::CHECK_TRANSACTION_STATE)
        .with_ext("tranStateTableOffset", half_offset)
        .with_ext("commitLogOffset", phys)
        .with_ext("msgId", m.properties.uniq_key().unwrap_or(&offset_id))
        .with_ext(
            "transactionId",
            m.properties.uniq_key().unwrap_or(&offset_id),
        )
        .with_ext("offsetMsgId", &offset_id)
        .with_ext("producerGroup", group)
        .with_body(body);
    conn.oneway(req);
}
