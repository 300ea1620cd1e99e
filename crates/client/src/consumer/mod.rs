//! Consumers: the lite [`PullConsumer`] and the [`PushConsumer`], and what they share.

pub(crate) mod broker_ops;
mod pull;
mod push;
mod rebalance;

pub use pull::{PullConsumer, PullConsumerBuilder};
pub use push::{ConsumeResult, PushConsumer, PushConsumerBuilder};
pub use rebalance::{allocate_average, Allocate};

use crate::error::Result;
use crate::instance::Instance;
use crate::route::MessageQueue;

/// Where a queue without a committed offset starts.
///
/// ```
/// use ferrocket_client::{ConsumeFrom, PullConsumer};
/// let b = PullConsumer::builder().consume_from(ConsumeFrom::Timestamp(1_700_000_000_000));
/// # let _ = b;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeFrom {
    /// Only messages sent from now on (RocketMQ's CONSUME_FROM_LAST_OFFSET).
    Last,
    /// Everything the broker still holds.
    First,
    /// Messages stored at or after this time (Unix ms).
    Timestamp(i64),
}

/// How a group shares messages.
///
/// ```
/// use ferrocket_client::{MessageModel, PushConsumer};
/// let b = PushConsumer::builder().message_model(MessageModel::Broadcasting);
/// # let _ = b;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageModel {
    /// Each message to one consumer of the group; offsets kept by the broker.
    Clustering,
    /// Each message to every consumer; offsets kept locally.
    Broadcasting,
}

/// The offset a queue starts from: the committed one, else per `from`.
pub(crate) async fn start_offset(
    inst: &Instance,
    addr: &str,
    group: &str,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Result<i64> {
    if let Some(o) = broker_ops::query_offset(inst, addr, group, mq).await? {
        if o >= 0 {
            return Ok(o);
        }
    }
    // Retry topics always start at their beginning.
    if mq.topic.starts_with("%RETRY%") {
        return Ok(0);
    }
    from_offset(inst, addr, mq, from).await
}

/// The offset `from` designates in `mq`, ignoring any committed offset.
pub(crate) async fn from_offset(
    inst: &Instance,
    addr: &str,
    mq: &MessageQueue,
    from: ConsumeFrom,
) -> Result<i64> {
    match from {
        ConsumeFrom::Last => broker_ops::max_offset(inst, addr, mq).await,
        ConsumeFrom::First => broker_ops::min_offset(inst, addr, mq).await,
        ConsumeFrom::Timestamp(ts) => broker_ops::search_offset(inst, addr, mq, ts).await,
    }
}
