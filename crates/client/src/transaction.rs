//! Transactional sends: a half message the broker keeps hidden, a local transaction, then
//! commit or rollback; the broker asks a checker about transactions left unknown.

use std::future::Future;
use std::sync::Arc;

use ferrocket_protocol::message::{decode, decode_offset_msg_id, names, sysflag};
use ferrocket_protocol::{RemotingCommand, RequestCode};

use crate::error::{ClientError, Result};
use crate::message::{Message, MessageExt};
use crate::producer::{Producer, SendResult, SendStatus};
use crate::route::master_addr;

/// The outcome of a local transaction.
///
/// ```no_run
/// # fn demo(p: &ferrocket_client::Producer) {
/// use ferrocket_client::LocalTransactionState;
/// p.set_transaction_checker(|m| {
///     if m.keys() == Some("order-42") { LocalTransactionState::Commit } else { LocalTransactionState::Unknown }
/// });
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTransactionState {
    /// Make the message visible to consumers.
    Commit,
    /// Drop it.
    Rollback,
    /// Not known yet: the broker will ask the checker later.
    Unknown,
}

impl LocalTransactionState {
    fn code(self) -> i32 {
        match self {
            LocalTransactionState::Commit => sysflag::TRANSACTION_COMMIT_TYPE,
            LocalTransactionState::Rollback => sysflag::TRANSACTION_ROLLBACK_TYPE,
            LocalTransactionState::Unknown => sysflag::TRANSACTION_NOT_TYPE,
        }
    }
}

fn end_request(
    group: &str,
    half_offset: i64,
    commit_log_offset: i64,
    state: LocalTransactionState,
    from_check: bool,
    msg_id: &str,
) -> RemotingCommand {
    RemotingCommand::request(RequestCode::END_TRANSACTION)
        .with_ext("producerGroup", group)
        .with_ext("tranStateTableOffset", half_offset)
        .with_ext("commitLogOffset", commit_log_offset)
        .with_ext("commitOrRollback", state.code())
        .with_ext("fromTransactionCheck", from_check)
        .with_ext("msgId", msg_id)
        .with_ext("transactionId", msg_id)
        .into_oneway()
}

impl Producer {
    /// Sends `msg` as a half message, runs `local` with the send result, and commits or rolls
    /// back as it says. A failed half send runs nothing and is an error.
    ///
    /// ```no_run
    /// # async fn demo(p: ferrocket_client::Producer) -> Result<(), ferrocket_client::ClientError> {
    /// use ferrocket_client::{LocalTransactionState, Message};
    /// let (sent, state) = p
    ///     .send_in_transaction(Message::new("Orders", "paid"), |_r| async {
    ///         // write the order row here
    ///         LocalTransactionState::Commit
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_in_transaction<F, Fut>(
        &self,
        mut msg: Message,
        local: F,
    ) -> Result<(SendResult, LocalTransactionState)>
    where
        F: FnOnce(&SendResult) -> Fut,
        Fut: Future<Output = LocalTransactionState>,
    {
        msg.properties.insert(names::TRANSACTION_PREPARED, "true");
        msg.properties.insert(names::PRODUCER_GROUP, self.group());
        let sent = self.send(msg).await?;
        let state = if sent.status == SendStatus::SendOk {
            local(&sent).await
        } else {
            LocalTransactionState::Rollback
        };
        let (_, phys) =
            decode_offset_msg_id(&sent.offset_msg_id).map_err(|e| ClientError::Decode {
                what: "offset message id",
                reason: e.to_string(),
            })?;
        let route = self.instance().router.route(&sent.queue.topic).await?;
        let addr = master_addr(&route, &sent.queue.broker_name)
            .ok_or_else(|| ClientError::NoRoute(sent.queue.broker_name.clone()))?;
        let req = end_request(
            self.group(),
            sent.queue_offset,
            phys,
            state,
            false,
            &sent.msg_id,
        );
        self.instance().pool().oneway(&addr, req).await?;
        Ok((sent, state))
    }

    /// Answers the broker's CHECK_TRANSACTION_STATE for this producer's group.
    pub fn set_transaction_checker(
        &self,
        checker: impl Fn(&MessageExt) -> LocalTransactionState + Send + Sync + 'static,
    ) {
        let checker = Arc::new(checker);
        let group = self.group().to_string();
        let pool = self.instance().pool().clone();
        let hook = move |addr: &str, req: RemotingCommand| {
            let num = |k: &str| req.ext(k).and_then(|v| v.parse::<i64>().ok());
            let (Some(half), Some(phys)) = (num("tranStateTableOffset"), num("commitLogOffset"))
            else {
                return;
            };
            let Ok(stored) = decode(&req.body) else {
                return;
            };
            let msg = MessageExt::from_stored(stored, "");
            let state = checker(&msg);
            let end = end_request(&group, half, phys, state, true, &msg.msg_id);
            let (pool, addr) = (pool.clone(), addr.to_string());
            tokio::spawn(async move {
                let _ = pool.oneway(&addr, end).await;
            });
        };
        self.instance()
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .tx_check
            .insert(self.group().to_string(), Arc::new(hook));
    }
}
