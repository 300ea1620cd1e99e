//! The 5.x PullConsumer's calls: PullMessage (long polling, next offset), UpdateOffset,
//! GetOffset and QueryOffset, over the same queues and consumer offsets as remoting pulls.

use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::message::decode;

use super::convert::{duration_ms, to_pb};
use super::{pb, resource_name as name, status};
use crate::Broker;

/// Longest a PullMessage is held.
const MAX_POLL: Duration = Duration::from_secs(20);
const DEADLINE_MARGIN: Duration = Duration::from_millis(500);

/// (topic, queue id) of a request's queue, or the status refusing it.
fn queue_of(
    b: &Broker,
    mq: &Option<pb::MessageQueue>,
) -> Result<(String, i32), Option<pb::Status>> {
    let Some(mq) = mq else {
        return Err(status(pb::Code::BadRequest, "message_queue is required"));
    };
    let topic = name(&mq.topic);
    let Some(tc) = b.topics.get(&topic) else {
        return Err(status(
            pb::Code::TopicNotFound,
            format!("topic {topic} not found"),
        ));
    };
    if mq.id < 0 || mq.id >= tc.read_queue_nums.max(tc.write_queue_nums) {
        return Err(status(
            pb::Code::BadRequest,
            format!("queue {} of {topic} does not exist", mq.id),
        ));
    }
    Ok((topic, mq.id))
}

fn pull_status(s: Option<pb::Status>) -> Vec<pb::PullMessageResponse> {
    vec![pb::PullMessageResponse {
        content: Some(pb::pull_message_response::Content::Status(
            s.unwrap_or_default(),
        )),
    }]
}

/// PullMessage: `[Status, messages..., next_offset]`; MESSAGE_NOT_FOUND (with the next offset)
/// when the poll ends empty.
pub(crate) async fn pull(
    b: &Arc<Broker>,
    req: pb::PullMessageRequest,
    deadline: Option<Duration>,
) -> Vec<pb::PullMessageResponse> {
    let (topic, q) = match queue_of(b, &req.message_queue) {
        Ok(x) => x,
        Err(s) => return pull_status(s),
    };
    let filter = req.filter_expression.clone().unwrap_or_default();
    if filter.r#type == pb::FilterType::Sql as i32 {
        return pull_status(status(
            pb::Code::IllegalFilterExpression,
            "SQL92 filters on PullMessage are not supported; use ReceiveMessage",
        ));
    }
    let tags = crate::processor::pull::parse_tags(&filter.expression);
    let mut poll = req
        .long_polling_timeout
        .as_ref()
        .map(|d| Duration::from_millis(duration_ms(d).max(0) as u64))
        .unwrap_or(Duration::ZERO)
        .min(MAX_POLL);
    if let Some(d) = deadline {
        poll = poll.min(d.saturating_sub(DEADLINE_MARGIN));
    }
    let max = req.batch_size.clamp(1, 32) as usize;
    let notify = b.notifier.notifier(&topic, q);
    let until = tokio::time::Instant::now() + poll;
    loop {
        let wait = notify.notified();
        tokio::pin!(wait);
        wait.as_mut().enable();
        let r = b
            .store
            .get_message(&topic, q, req.offset, max, 4 << 20, tags.as_ref());
        if !r.messages.is_empty() {
            let mut out = pull_status(super::ok());
            for (record, _) in r.messages.iter().zip(&r.queue_offsets) {
                if let Ok(m) = decode(record) {
                    out.push(pb::PullMessageResponse {
                        content: Some(pb::pull_message_response::Content::Message(to_pb(m, None))),
                    });
                }
            }
            out.push(pb::PullMessageResponse {
                content: Some(pb::pull_message_response::Content::NextOffset(
                    r.next_begin_offset,
                )),
            });
            return out;
        }
        if r.next_begin_offset != req.offset || tokio::time::Instant::now() >= until {
            // Out of range (too small or too big), or nothing within the poll.
            let mut out = pull_status(status(pb::Code::MessageNotFound, "no new message"));
            out.push(pb::PullMessageResponse {
                content: Some(pb::pull_message_response::Content::NextOffset(
                    r.next_begin_offset,
                )),
            });
            return out;
        }
        tokio::select! {
            _ = &mut wait => {}
            _ = tokio::time::sleep_until(until) => {}
            _ = b.shutdown.cancelled() => {}
        }
    }
}

pub(crate) fn update_offset(b: &Broker, req: pb::UpdateOffsetRequest) -> pb::UpdateOffsetResponse {
    let group = name(&req.group);
    match queue_of(b, &req.message_queue) {
        Err(s) => pb::UpdateOffsetResponse { status: s },
        Ok(_) if group.is_empty() => pb::UpdateOffsetResponse {
            status: status(pb::Code::IllegalConsumerGroup, "group is empty"),
        },
        Ok(_) if req.offset < 0 => pb::UpdateOffsetResponse {
            status: status(pb::Code::IllegalOffset, "offset must not be negative"),
        },
        Ok((topic, q)) => {
            b.offsets.commit(&group, &topic, q, req.offset);
            pb::UpdateOffsetResponse {
                status: super::ok(),
            }
        }
    }
}

pub(crate) fn get_offset(b: &Broker, req: pb::GetOffsetRequest) -> pb::GetOffsetResponse {
    let group = name(&req.group);
    match queue_of(b, &req.message_queue) {
        Err(s) => pb::GetOffsetResponse {
            status: s,
            offset: 0,
        },
        Ok((topic, q)) => match b.offsets.query(&group, &topic, q) {
            Some(offset) if offset >= 0 => pb::GetOffsetResponse {
                status: super::ok(),
                offset,
            },
            _ => pb::GetOffsetResponse {
                status: status(
                    pb::Code::OffsetNotFound,
                    "the group has no offset on this queue",
                ),
                offset: 0,
            },
        },
    }
}

pub(crate) fn query_offset(b: &Broker, req: pb::QueryOffsetRequest) -> pb::QueryOffsetResponse {
    let (topic, q) = match queue_of(b, &req.message_queue) {
        Ok(x) => x,
        Err(s) => {
            return pb::QueryOffsetResponse {
                status: s,
                offset: 0,
            }
        }
    };
    let offset = match pb::QueryOffsetPolicy::try_from(req.query_offset_policy) {
        Ok(pb::QueryOffsetPolicy::Beginning) => b.store.min_offset_in_queue(&topic, q),
        Ok(pb::QueryOffsetPolicy::End) => b.store.max_offset_in_queue(&topic, q),
        Ok(pb::QueryOffsetPolicy::Timestamp) => {
            let Some(t) = req.timestamp else {
                return pb::QueryOffsetResponse {
                    status: status(pb::Code::BadRequest, "TIMESTAMP needs a timestamp"),
                    offset: 0,
                };
            };
            b.store
                .offset_in_queue_by_time(&topic, q, super::convert::timestamp_ms(&t))
        }
        Err(_) => {
            return pb::QueryOffsetResponse {
                status: status(pb::Code::BadRequest, "unknown query_offset_policy"),
                offset: 0,
            }
        }
    };
    pb::QueryOffsetResponse {
        status: super::ok(),
        offset,
    }
}
