//! PULL_MESSAGE (11). Hot path.
//!
//! Checks the group, topic and queue, filters by tag hash (from the request's subscription when
//! its SUBSCRIPTION flag is set, else from the group's heartbeat), maps the store's get status to
//! RocketMQ's response codes, and, for a pull that finds nothing with the SUSPEND flag set, holds
//! it until a message lands in the queue, `suspendTimeoutMillis` passes or the broker stops. The
//! body is the stored records themselves, written to the socket as commitlog slices.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::message::{decode_view, java_string_hash, Properties};
use ferrocket_protocol::{RemotingCommand, ResponseCode};
use ferrocket_store::{GetResult, GetStatus};
use tokio::time::Instant;

use super::{HandlerResult, RequestCtx};
use crate::body::{perm, TopicConfig};
use crate::connection::Outgoing;
use crate::headers::PullMessageRequestHeader;
use crate::Broker;

/// PullSysFlag bits.
pub const FLAG_COMMIT_OFFSET: i32 = 0x1;
pub const FLAG_SUSPEND: i32 = 0x2;
pub const FLAG_SUBSCRIPTION: i32 = 0x4;

/// Re-check interval of a held pull even without a wake-up (RocketMQ: 5 s).
const RECHECK: Duration = Duration::from_secs(5);
/// Re-check interval on a slave.
const SLAVE_RECHECK: Duration = Duration::from_millis(500);

/// Tag hash codes of a subscription expression; `None` means every message (`*` or empty).
pub fn parse_tags(sub: &str) -> Option<HashSet<i64>> {
    let sub = sub.trim();
    if sub.is_empty() || sub == "*" {
        return None;
    }
    let mut set = HashSet::new();
    for tag in sub.split("||").map(str::trim).filter(|t| !t.is_empty()) {
        if tag == "*" {
            return None;
        }
        set.insert(i64::from(java_string_hash(tag)));
    }
    if set.is_empty() {
        None
    } else {
        Some(set)
    }
}

/// RocketMQ's name of a get status (the pull response's remark).
pub fn status_name(s: GetStatus) -> &'static str {
    match s {
        GetStatus::Found => "FOUND",
        GetStatus::NoMatchedMessage => "NO_MATCHED_MESSAGE",
        GetStatus::MessageWasRemoving => "MESSAGE_WAS_REMOVING",
        GetStatus::OffsetFoundNull => "OFFSET_FOUND_NULL",
        GetStatus::OffsetOverflowBadly => "OFFSET_OVERFLOW_BADLY",
        GetStatus::OffsetOverflowOne => "OFFSET_OVERFLOW_ONE",
        GetStatus::OffsetTooSmall => "OFFSET_TOO_SMALL",
        GetStatus::NoMatchedLogicQueue => "NO_MATCHED_LOGIC_QUEUE",
        GetStatus::NoMessageInQueue => "NO_MESSAGE_IN_QUEUE",
    }
}

/// The response code for a get status on a master (RocketMQ's table).
pub fn response_code(s: GetStatus, requested_offset: i64) -> ResponseCode {
    match s {
        GetStatus::Found => ResponseCode::SUCCESS,
        GetStatus::NoMatchedLogicQueue | GetStatus::NoMessageInQueue => {
            if requested_offset != 0 {
                ResponseCode::PULL_OFFSET_MOVED
            } else {
                ResponseCode::PULL_NOT_FOUND
            }
        }
        GetStatus::OffsetFoundNull | GetStatus::OffsetOverflowOne => ResponseCode::PULL_NOT_FOUND,
        GetStatus::OffsetOverflowBadly | GetStatus::OffsetTooSmall => {
            ResponseCode::PULL_OFFSET_MOVED
        }
        GetStatus::NoMatchedMessage | GetStatus::MessageWasRemoving => {
            ResponseCode::PULL_RETRY_IMMEDIATELY
        }
    }
}

/// What a pull keeps: tag hashes (`None` = everything) or an SQL92 expression.
enum Selector {
    Tags(Option<HashSet<i64>>),
    Sql(Arc<crate::filter::Expr>),
}

/// The pull's selector from its expression type and text; `Err` is the refusal's remark.
fn selector(b: &Broker, kind: Option<&str>, expression: &str) -> Result<Selector, String> {
    match kind.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(Selector::Tags(parse_tags(expression))),
        Some(k) if k.eq_ignore_ascii_case("TAG") => Ok(Selector::Tags(parse_tags(expression))),
        Some(k) if k.eq_ignore_ascii_case("SQL92") => {
            if !b.conf.enable_property_filter {
                return Err(
                    "The broker does not support consumer to filter message by SQL92".into(),
                );
            }
            b.sql_filters
                .get(expression)
                .map(Selector::Sql)
                .map_err(|e| format!("parse the consumer's subscription[{expression}] failed: {e}"))
        }
        Some(other) => Err(format!(
            "unknown expression type {other:?}: expected TAG or SQL92"
        )),
    }
}

fn refuse(req: &RemotingCommand, code: ResponseCode, remark: impl Into<String>) -> HandlerResult {
    Ok(RemotingCommand::error_to(req, code, remark).into())
}

/// Handles one pull.
pub async fn handle(b: &Arc<Broker>, _ctx: &RequestCtx, req: &RemotingCommand) -> HandlerResult {
    let h: PullMessageRequestHeader = req.header()?;
    if !perm::readable(b.conf.broker_permission) {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!(
                "the broker[{}] pulling message is forbidden",
                b.conf.broker_ip1
            ),
        );
    }
    let Some(group) = b.groups.find_or_create(&h.consumer_group)? else {
        return refuse(
            req,
            ResponseCode::SUBSCRIPTION_GROUP_NOT_EXIST,
            format!("subscription group [{}] does not exist", h.consumer_group),
        );
    };
    if !group.consume_enable {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!("subscription group no permission, {}", h.consumer_group),
        );
    }
    let tc = match b.topics.get(&h.topic) {
        Some(tc) => tc,
        // A slave can hold a topic's messages before the topic's config reaches it (configs are
        // copied every 10 s; a master may die in between): serve the data it holds.
        None if b.is_slave() && b.store.max_offset_in_queue(&h.topic, h.queue_id) > 0 => {
            let n = h.queue_id.max(0) + 1;
            Arc::new(TopicConfig::new(&h.topic, n, n, perm::READ))
        }
        None => return super::topic_not_exist(req, &h.topic),
    };
    if !perm::readable(tc.perm) {
        return refuse(
            req,
            ResponseCode::NO_PERMISSION,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        );
    }
    if h.queue_id < 0 || h.queue_id >= tc.read_queue_nums {
        return refuse(
            req,
            ResponseCode::SYSTEM_ERROR,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                h.queue_id, h.topic, tc.read_queue_nums
            ),
        );
    }
    let (expression_type, expression) = if h.sys_flag & FLAG_SUBSCRIPTION != 0 {
        (
            h.expression_type.clone(),
            h.subscription.clone().unwrap_or_else(|| "*".into()),
        )
    } else {
        if !b.clients.has_consumer_group(&h.consumer_group) {
            return refuse(
                req,
                ResponseCode::SUBSCRIPTION_NOT_EXIST,
                format!(
                    "the consumer's group info not exist, group: {}",
                    h.consumer_group
                ),
            );
        }
        match b.clients.subscription(&h.consumer_group, &h.topic) {
            Some(s) => (s.expression_type, s.sub_string),
            None => {
                return refuse(
                    req,
                    ResponseCode::SUBSCRIPTION_NOT_EXIST,
                    format!(
                        "the consumer's subscription not exist, group: {}",
                        h.consumer_group
                    ),
                )
            }
        }
    };
    let selector = match selector(b, expression_type.as_deref(), &expression) {
        Ok(s) => s,
        Err(remark) => return refuse(req, ResponseCode::SUBSCRIPTION_PARSE_FAILED, remark),
    };
    let (tags, sql) = match &selector {
        Selector::Tags(t) => (t.as_ref(), None),
        Selector::Sql(e) => (None, Some(e)),
    };
    let sql_filter = |rec: &[u8]| -> bool {
        match (sql, decode_view(rec, false)) {
            (Some(e), Ok(v)) => e.matches(&|k| Properties::lookup(v.properties, k)),
            _ => false,
        }
    };
    let record_filter: Option<&ferrocket_store::RecordFilter<'_>> = match sql {
        Some(_) => Some(&sql_filter),
        None => None,
    };

    if h.sys_flag & FLAG_COMMIT_OFFSET != 0 && !b.is_slave() && h.commit_offset >= 0 {
        b.offsets
            .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    }

    let max_count = (h.max_msg_nums.max(1) as usize).min(
        b.store
            .config()
            .max_transfer_count_on_message_in_memory
            .max(1),
    );
    let max_bytes = b.store.config().max_transfer_bytes_on_message_in_memory;
    let get = || {
        b.store.get_message_filtered(
            &h.topic,
            h.queue_id,
            h.queue_offset,
            max_count,
            max_bytes,
            tags,
            record_filter,
        )
    };
    let mut r = get();
    let may_hold = h.sys_flag & FLAG_SUSPEND != 0;
    if may_hold && response_code(r.status, h.queue_offset) == ResponseCode::PULL_NOT_FOUND {
        let hold = if b.conf.long_polling_enable {
            Duration::from_millis(h.suspend_timeout_millis.max(0) as u64)
        } else {
            Duration::from_millis(b.conf.short_polling_time_mills)
        };
        // A hold beyond an hour is a client bug; clamping also keeps the deadline from overflowing.
        let deadline = Instant::now() + hold.min(Duration::from_secs(3600));
        let notify = b.notifier.notifier(&h.topic, h.queue_id);
        loop {
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            r = get();
            // Arrivals that do not match the filter keep the pull held (RocketMQ only wakes a
            // held pull for a matching tag); at the deadline it answers with what it has.
            let nothing_yet = matches!(
                response_code(r.status, h.queue_offset),
                ResponseCode::PULL_NOT_FOUND
            ) || r.status == GetStatus::NoMatchedMessage;
            if !nothing_yet || Instant::now() >= deadline || b.shutdown.is_cancelled() {
                break;
            }
            // A slave's queues grow through replication, which does not ring the notifier.
            let recheck = if b.is_slave() { SLAVE_RECHECK } else { RECHECK };
            let until = deadline.min(Instant::now() + recheck);
            tokio::select! {
                _ = &mut woken => {}
                _ = tokio::time::sleep_until(until) => {}
                _ = b.shutdown.cancelled() => {}
            }
        }
    }
    if let Some(bytes) = r.fall_behind {
        b.fall_behind
            .record(b, &h.consumer_group, &h.topic, h.queue_id, bytes);
    }
    Ok(respond(b, req, &group, r))
}

fn respond(
    b: &Broker,
    req: &RemotingCommand,
    group: &crate::body::SubscriptionGroupConfig,
    r: GetResult,
) -> Outgoing {
    let requested = req
        .ext("queueOffset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let code = response_code(r.status, requested);
    // As RocketMQ: with slave reads on, a consumer reading further back than the in-memory
    // part of the commitlog is sent to `whichBrokerWhenConsumeSlowly` (a slave), others to the
    // group's `brokerId`; with them off, always to the master.
    let suggest = match (b.conf.slave_read_enable, r.suggest_pulling_from_slave) {
        (false, _) => 0,
        (true, true) => group.which_broker_when_consume_slowly,
        (true, false) => group.broker_id,
    };
    let cmd = RemotingCommand::response_to(req, code)
        .with_remark(status_name(r.status))
        .with_ext("suggestWhichBrokerId", suggest)
        .with_ext("nextBeginOffset", r.next_begin_offset)
        .with_ext("minOffset", r.min_offset)
        .with_ext("maxOffset", r.max_offset);
    if code == ResponseCode::SUCCESS {
        b.stats.add_get(r.messages.len() as u64);
        Outgoing {
            cmd,
            parts: r.messages,
        }
    } else {
        cmd.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_expressions() {
        assert!(parse_tags("*").is_none());
        assert!(parse_tags("").is_none());
        assert!(parse_tags("TagA || *").is_none());
        let s = parse_tags("TagA || TagB").unwrap();
        assert_eq!(s.len(), 2);
        assert!(s.contains(&i64::from(java_string_hash("TagA"))));
    }

    #[test]
    fn status_table() {
        assert_eq!(response_code(GetStatus::Found, 3), ResponseCode::SUCCESS);
        assert_eq!(
            response_code(GetStatus::NoMessageInQueue, 0),
            ResponseCode::PULL_NOT_FOUND
        );
        assert_eq!(
            response_code(GetStatus::NoMatchedLogicQueue, 5),
            ResponseCode::PULL_OFFSET_MOVED
        );
        assert_eq!(
            response_code(GetStatus::OffsetOverflowOne, 5),
            ResponseCode::PULL_NOT_FOUND
        );
        assert_eq!(
            response_code(GetStatus::OffsetOverflowBadly, 5),
            ResponseCode::PULL_OFFSET_MOVED
        );
        assert_eq!(
            response_code(GetStatus::OffsetTooSmall, 0),
            ResponseCode::PULL_OFFSET_MOVED
        );
        assert_eq!(
            response_code(GetStatus::NoMatchedMessage, 0),
            ResponseCode::PULL_RETRY_IMMEDIATELY
        );
    }
}
