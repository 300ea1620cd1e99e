//! Request dispatch: one plain async function per request code over the shared [`Broker`].
//!
//! Answers: unknown codes get REQUEST_CODE_NOT_SUPPORTED; a header that cannot be read gets
//! SYSTEM_ERROR with the reason; the caller drops the answer of a oneway request.

pub mod admin;
pub mod client;
pub mod offset;
pub mod pop;
pub mod pull;
pub mod reply;
pub mod send;
pub mod send_back;

use std::sync::Arc;

use ferrocket_protocol::error::HeaderError;
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::connection::{ConnHandle, Outgoing};
use crate::{Broker, BrokerError};

/// Where a request came from.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub conn: Arc<ConnHandle>,
    /// Arrived on the fast (VIP) port.
    pub fast: bool,
}

/// Why a handler could not answer normally; becomes a SYSTEM_ERROR response.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error(transparent)]
    Header(#[from] HeaderError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error("{0}")]
    Other(String),
}

impl From<ferrocket_store::StoreError> for HandlerError {
    fn from(e: ferrocket_store::StoreError) -> Self {
        HandlerError::Broker(e.into())
    }
}

pub type HandlerResult = Result<Outgoing, HandlerError>;

/// RocketMQ's TOPIC_NOT_EXIST answer to a request naming an unknown topic.
pub fn topic_not_exist(req: &RemotingCommand, topic: &str) -> HandlerResult {
    Ok(RemotingCommand::error_to(
        req,
        ResponseCode::TOPIC_NOT_EXIST,
        format!("topic[{topic}] not exist, apply first please!"),
    )
    .into())
}

/// A response with `code` and no remark.
pub fn reply(req: &RemotingCommand, code: ResponseCode) -> RemotingCommand {
    RemotingCommand::response_to(req, code)
}

/// True for requests that may wait long (sends for the disk, pulls for messages); the server
/// runs them on their own task instead of in connection order.
pub fn may_wait(code: i32) -> bool {
    code == RequestCode::SEND_MESSAGE as i32
        || code == RequestCode::SEND_MESSAGE_V2 as i32
        || code == RequestCode::SEND_BATCH_MESSAGE as i32
        || code == RequestCode::PULL_MESSAGE as i32
        || code == RequestCode::CONSUMER_SEND_MSG_BACK as i32
        || code == RequestCode::POP_MESSAGE as i32
        || code == RequestCode::SEND_REPLY_MESSAGE as i32
        || code == RequestCode::SEND_REPLY_MESSAGE_V2 as i32
}

/// Answers one request; `None` only when there is nothing to send back at all.
pub async fn process(b: &Arc<Broker>, ctx: &RequestCtx, req: RemotingCommand) -> Option<Outgoing> {
    let code = req.code;
    let r = match RequestCode::from_i32(code) {
        Some(c) => dispatch(b, ctx, c, &req).await,
        None => None,
    };
    Some(match r {
        Some(Ok(out)) => out,
        Some(Err(e)) => {
            tracing::debug!(code, error = %e, "request failed");
            RemotingCommand::error_to(&req, ResponseCode::SYSTEM_ERROR, e.to_string()).into()
        }
        None => RemotingCommand::error_to(
            &req,
            ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
            format!(" request type {code} not supported"),
        )
        .into(),
    })
}

async fn dispatch(
    b: &Arc<Broker>,
    ctx: &RequestCtx,
    code: RequestCode,
    req: &RemotingCommand,
) -> Option<HandlerResult> {
    use RequestCode as C;
    Some(match code {
        C::SEND_MESSAGE | C::SEND_MESSAGE_V2 | C::SEND_BATCH_MESSAGE => {
            send::handle(b, ctx, req).await
        }
        C::SEND_REPLY_MESSAGE | C::SEND_REPLY_MESSAGE_V2 => reply::handle(b, ctx, req).await,
        C::PULL_MESSAGE if !ctx.fast => pull::handle(b, ctx, req).await,
        C::CONSUMER_SEND_MSG_BACK => send_back::handle(b, req).await,
        C::END_TRANSACTION => crate::transaction::end_transaction(b, req)
            .await
            .map(Into::into)
            .map_err(Into::into),
        C::QUERY_CONSUMER_OFFSET => offset::query_consumer_offset(b, req),
        C::UPDATE_CONSUMER_OFFSET => offset::update_consumer_offset(b, req),
        C::GET_MAX_OFFSET => offset::get_max_offset(b, req),
        C::GET_MIN_OFFSET => offset::get_min_offset(b, req),
        C::SEARCH_OFFSET_BY_TIMESTAMP => offset::search_offset_by_timestamp(b, req),
        C::GET_EARLIEST_MSG_STORETIME => offset::get_earliest_msg_storetime(b, req),
        C::GET_ALL_CONSUMER_OFFSET => offset::get_all_consumer_offset(b, req),
        C::HEART_BEAT => client::heartbeat(b, ctx, req),
        C::UNREGISTER_CLIENT => client::unregister_client(b, ctx, req),
        C::GET_CONSUMER_LIST_BY_GROUP => client::get_consumer_list_by_group(b, req),
        C::LOCK_BATCH_MQ => client::lock_batch_mq(b, req),
        C::UNLOCK_BATCH_MQ => client::unlock_batch_mq(b, req),
        C::CHECK_CLIENT_CONFIG => Ok(reply(req, ResponseCode::SUCCESS).into()),
        C::UPDATE_AND_CREATE_TOPIC => {
            let r = admin::update_and_create_topic(b, req);
            if r.is_ok() {
                // Counted after the change: a round that sees this count registers the topic.
                let change = b
                    .topic_changes
                    .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
                    + 1;
                crate::register::wait_registered(b, change).await;
            }
            r
        }
        C::DELETE_TOPIC_IN_BROKER => admin::delete_topic(b, req),
        C::GET_ALL_TOPIC_CONFIG => admin::get_all_topic_config(b, req),
        C::GET_TOPIC_STATS_INFO => admin::get_topic_stats_info(b, req),
        C::GET_BROKER_RUNTIME_INFO => admin::get_broker_runtime_info(b, req),
        C::GET_CONSUME_STATS => admin::get_consume_stats(b, req),
        C::GET_CONSUMER_CONNECTION_LIST => admin::get_consumer_connection_list(b, req),
        C::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP => {
            admin::update_and_create_subscription_group(b, req)
        }
        C::GET_ALL_SUBSCRIPTIONGROUP_CONFIG => admin::get_all_subscription_group_config(b, req),
        C::GET_ALL_DELAY_OFFSET => admin::get_all_delay_offset(b, req),
        C::GET_BROKER_CONFIG => admin::get_broker_config(b, req),
        C::GET_PRODUCER_CONNECTION_LIST => admin::get_producer_connection_list(b, req),
        C::VIEW_MESSAGE_BY_ID => admin::view_message_by_id(b, req),
        C::QUERY_MESSAGE => admin::query_message(b, req),
        C::POP_MESSAGE => pop::pop_message(b, req).await,
        C::ACK_MESSAGE => pop::ack_message(b, req),
        C::CHANGE_MESSAGE_INVISIBLETIME => pop::change_invisible_time(b, req),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;
    use std::time::Duration;

    /// Every known code with missing, empty, garbage and extreme header values and bodies:
    /// always an answer, never a panic.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nothing_a_client_sends_panics() {
        let dir = std::env::temp_dir().join(format!("ferrocket-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conf = BrokerConfig::default();
        conf.store.store_path_root_dir = dir.clone();
        conf.store.mapped_file_size_commit_log = 1 << 20;
        let b = Broker::open(conf).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        let ctx = RequestCtx {
            conn: Arc::new(ConnHandle::new(1, "127.0.0.1:1".parse().unwrap(), tx)),
            fast: false,
        };
        let keys = [
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
            "i",
            "j",
            "l",
            "m",
            "topic",
            "queueId",
            "consumerGroup",
            "queueOffset",
            "maxMsgNums",
            "sysFlag",
            "commitOffset",
            "suspendTimeoutMillis",
            "subscription",
            "subVersion",
            "expressionType",
            "producerGroup",
            "defaultTopic",
            "defaultTopicQueueNums",
            "bornTimestamp",
            "flag",
            "properties",
            "reconsumeTimes",
            "readQueueNums",
            "writeQueueNums",
            "perm",
            "timestamp",
            "offset",
            "group",
            "delayLevel",
            "clientID",
            "key",
            "maxNum",
            "beginTimestamp",
            "endTimestamp",
            "maxReconsumeTimes",
        ];
        let values = [
            "",
            "x",
            "-1",
            "0",
            "1",
            "99999999999",
            "TBW102",
            "%RETRY%g",
            "\u{1}\u{2}",
        ];
        let bodies: [&[u8]; 4] = [b"", b"garbage", b"{}", &[0, 0, 0, 9, 1, 2, 3]];
        let mut n = 0;
        for code in RequestCode::ALL {
            for v in values {
                for body in bodies {
                    let mut req = RemotingCommand::request(*code).with_body(body.to_vec());
                    for k in keys {
                        req = req.with_ext(k, v);
                    }
                    let r = tokio::time::timeout(Duration::from_secs(5), process(&b, &ctx, req))
                        .await
                        .expect("answered in time");
                    assert!(r.is_some());
                    n += 1;
                }
            }
            let r = process(&b, &ctx, RemotingCommand::request(*code)).await;
            assert!(r.is_some());
        }
        assert!(n > 1000);
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
