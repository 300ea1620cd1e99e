//! The consumer calls: QueryAssignment, ReceiveMessage (long polling), AckMessage,
//! ChangeInvisibleDuration and ForwardMessageToDeadLetterQueue, over the POP state of
//! [`crate::pop`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::message::decode;

use super::convert::{duration_ms, to_pb};
use super::{pb, resource_name as name, status};
use crate::pop::{Handle, PopRequest};
use crate::Broker;

/// Longest a receive is held (the proxy's cap).
const MAX_POLL: Duration = Duration::from_secs(20);
/// Answer this long before the client's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);
/// Invisible time when the request sets none (push consumers: the proxy's default).
const DEFAULT_INVISIBLE_MS: i64 = 60_000;
const MAX_BATCH: i32 = 32;

static ROTATE: AtomicUsize = AtomicUsize::new(0);

fn one(s: Option<pb::Status>) -> Vec<pb::ReceiveMessageResponse> {
    vec![pb::ReceiveMessageResponse {
        content: Some(pb::receive_message_response::Content::Status(
            s.unwrap_or_default(),
        )),
    }]
}

/// The gRPC deadline of the call (`grpc-timeout`: digits and a unit).
pub(crate) fn grpc_timeout(v: &str) -> Option<Duration> {
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

fn orderly(b: &Broker, group: &str) -> bool {
    b.groups
        .get(group)
        .is_some_and(|g| g.consume_message_orderly)
}

/// ReceiveMessage: `[Status OK, Message, ...]`, or one `MESSAGE_NOT_FOUND` status when the
/// long poll ends empty.
pub(crate) async fn receive(
    b: &Arc<Broker>,
    req: pb::ReceiveMessageRequest,
    deadline: Option<Duration>,
    client_id: Option<String>,
) -> Vec<pb::ReceiveMessageResponse> {
    let group = name(&req.group);
    if group.is_empty() {
        return one(status(pb::Code::IllegalConsumerGroup, "group is empty"));
    }
    let topic = name(&req.message_queue.as_ref().and_then(|q| q.topic.clone()));
    let Some(tc) = b.topics.get(&topic) else {
        return one(status(
            pb::Code::TopicNotFound,
            format!("topic {topic} not found"),
        ));
    };
    let g = match b.groups.find_or_create(&group) {
        Ok(Some(g)) => g,
        _ => {
            return one(status(
                pb::Code::ConsumerGroupNotFound,
                format!("group {group} not found"),
            ))
        }
    };
    let filter = req.filter_expression.clone().unwrap_or_default();
    let (tags, sql) = if filter.r#type == pb::FilterType::Sql as i32 {
        if !b.conf.enable_property_filter {
            return one(status(
                pb::Code::IllegalFilterExpression,
                "SQL92 filters need enablePropertyFilter=true on the broker",
            ));
        }
        match b.sql_filters.get(&filter.expression) {
            Ok(e) => (None, Some(e)),
            Err(why) => {
                return one(status(
                    pb::Code::IllegalFilterExpression,
                    format!("bad SQL92 expression {:?}: {why}", filter.expression),
                ))
            }
        }
    } else {
        (crate::processor::pull::parse_tags(&filter.expression), None)
    };
    let invisible_ms = req
        .invisible_duration
        .as_ref()
        .map(duration_ms)
        .unwrap_or(DEFAULT_INVISIBLE_MS)
        .max(1000);
    let mut poll = req
        .long_polling_timeout
        .as_ref()
        .map(|d| Duration::from_millis(duration_ms(d).max(0) as u64))
        .unwrap_or(MAX_POLL)
        .min(MAX_POLL);
    if let Some(d) = deadline {
        poll = poll.min(d.saturating_sub(DEADLINE_MARGIN));
    }
    let n = tc.read_queue_nums.max(0) as usize;
    if n == 0 || !crate::body::perm::readable(tc.perm) {
        return one(status(pb::Code::Forbidden, "no readable queue"));
    }
    let start = ROTATE.fetch_add(1, Ordering::Relaxed);
    let queues: Vec<i32> = (0..n).map(|i| ((start + i) % n) as i32).collect();
    let fifo = orderly(b, &group);
    let max = req.batch_size.clamp(1, MAX_BATCH) as usize;
    let popped = crate::pop::receive(
        b,
        PopRequest {
            group: &group,
            topic: &topic,
            queues: &queues,
            tags: tags.as_ref(),
            sql: sql.as_deref(),
            max,
            invisible_ms,
            fifo,
            now: crate::now_ms(),
            // Auto-renewed while the client heartbeats (see `crate::pop::PopManager::renew`).
            owner: client_id.as_deref().filter(|_| req.auto_renew),
        },
        g.retry_max_times + 1,
        poll,
    )
    .await;
    if popped.is_empty() {
        return one(status(pb::Code::MessageNotFound, "no new message"));
    }
    let mut out = one(super::ok());
    for p in popped {
        match decode(&p.record) {
            Ok(m) => out.push(pb::ReceiveMessageResponse {
                content: Some(pb::receive_message_response::Content::Message(to_pb(
                    m,
                    Some(&p),
                ))),
            }),
            Err(e) => tracing::error!(error = %e, offset = p.offset, "undecodable record skipped"),
        }
    }
    // When the broker handed them out (the clients' consume-await metric needs it).
    out.push(pb::ReceiveMessageResponse {
        content: Some(pb::receive_message_response::Content::DeliveryTimestamp(
            super::convert::timestamp(crate::now_ms()),
        )),
    });
    out
}

pub(crate) fn ack(b: &Broker, req: pb::AckMessageRequest) -> pb::AckMessageResponse {
    let group = name(&req.group);
    let entries: Vec<pb::AckMessageResultEntry> = req
        .entries
        .into_iter()
        .map(|e| {
            let ok =
                Handle::parse(&e.receipt_handle).is_some_and(|h| b.pop.ack(b, &group, &h).is_ok());
            pb::AckMessageResultEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                status: if ok {
                    super::ok()
                } else {
                    status(
                        pb::Code::InvalidReceiptHandle,
                        "receipt handle is invalid or expired",
                    )
                },
            }
        })
        .collect();
    let status = if entries.is_empty() {
        status(pb::Code::BadRequest, "no entry")
    } else {
        super::overall(entries.iter().map(|e| &e.status))
    };
    pb::AckMessageResponse { status, entries }
}

pub(crate) fn change_invisible(
    b: &Broker,
    req: pb::ChangeInvisibleDurationRequest,
) -> pb::ChangeInvisibleDurationResponse {
    let group = name(&req.group);
    let ms = req
        .invisible_duration
        .as_ref()
        .map(duration_ms)
        .unwrap_or(0);
    let r = Handle::parse(&req.receipt_handle).and_then(|h| {
        b.pop
            .change_invisible(&group, &h, ms.max(0), crate::now_ms())
            .ok()
            .map(|h| h.encode())
    });
    match r {
        Some(handle) => pb::ChangeInvisibleDurationResponse {
            status: super::ok(),
            receipt_handle: handle,
        },
        None => pb::ChangeInvisibleDurationResponse {
            status: status(
                pb::Code::InvalidReceiptHandle,
                "receipt handle is invalid or expired",
            ),
            receipt_handle: String::new(),
        },
    }
}

pub(crate) async fn forward_to_dlq(
    b: &Broker,
    req: pb::ForwardMessageToDeadLetterQueueRequest,
) -> pb::ForwardMessageToDeadLetterQueueResponse {
    let group = name(&req.group);
    let Some(h) = Handle::parse(&req.receipt_handle) else {
        return pb::ForwardMessageToDeadLetterQueueResponse {
            status: status(pb::Code::InvalidReceiptHandle, "receipt handle is invalid"),
        };
    };
    let record = b
        .store
        .get_message(&h.topic, h.queue_id, h.offset, 1, usize::MAX, None)
        .messages
        .into_iter()
        .next();
    let Some(record) = record else {
        return pb::ForwardMessageToDeadLetterQueueResponse {
            status: status(pb::Code::MessageNotFound, "the message is gone"),
        };
    };
    if b.pop.ack(b, &group, &h).is_err() {
        return pb::ForwardMessageToDeadLetterQueueResponse {
            status: status(
                pb::Code::InvalidReceiptHandle,
                "receipt handle is invalid or expired",
            ),
        };
    }
    let stored = crate::pop::to_dlq(b, &group, &record).await;
    pb::ForwardMessageToDeadLetterQueueResponse {
        status: if stored {
            super::ok()
        } else {
            status(pb::Code::InternalServerError, "storing in the DLQ failed")
        },
    }
}

pub(crate) async fn query_assignment(
    b: &Broker,
    req: pb::QueryAssignmentRequest,
) -> pb::QueryAssignmentResponse {
    let group = name(&req.group);
    let route = super::route::query_route(
        b,
        &pb::QueryRouteRequest {
            topic: req.topic.clone(),
            endpoints: None,
        },
    )
    .await;
    if route.status.as_ref().map(|s| s.code) != Some(pb::Code::Ok as i32) {
        return pb::QueryAssignmentResponse {
            status: route.status,
            assignments: Vec::new(),
        };
    }
    let readable: Vec<pb::MessageQueue> = route
        .message_queues
        .into_iter()
        .filter(|q| q.permission != pb::Permission::Write as i32)
        .collect();
    if readable.is_empty() {
        return pb::QueryAssignmentResponse {
            status: status(pb::Code::Forbidden, "no readable queue"),
            assignments: Vec::new(),
        };
    }
    // A FIFO group gets every queue (each in order); others one pseudo-queue per broker, the
    // broker popping from any of its queues.
    let assignments = if orderly(b, &group) {
        readable
            .into_iter()
            .map(|q| pb::Assignment {
                message_queue: Some(q),
            })
            .collect()
    } else {
        let mut seen = std::collections::BTreeSet::new();
        readable
            .into_iter()
            .filter(|q| seen.insert(q.broker.as_ref().map(|b| b.name.clone())))
            .map(|q| pb::Assignment {
                message_queue: Some(pb::MessageQueue { id: -1, ..q }),
            })
            .collect()
    };
    pb::QueryAssignmentResponse {
        status: super::ok(),
        assignments,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse() {
        assert_eq!(grpc_timeout("23S"), Some(Duration::from_secs(23)));
        assert_eq!(grpc_timeout("2999m"), Some(Duration::from_millis(2999)));
        assert_eq!(grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(grpc_timeout(""), None);
        assert_eq!(grpc_timeout("S"), None);
        assert_eq!(grpc_timeout("12x"), None);
    }
}
