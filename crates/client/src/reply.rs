//! Request-reply (RocketMQ 4.6 on): [`Producer::request`] sends a message carrying a
//! correlation id, this client's id (REPLY_TO_CLIENT) and a time to live, and waits; a consumer
//! answers with [`Message::reply_to`] sent by any producer, which the broker pushes back to this
//! client (PUSH_REPLY_MESSAGE_TO_CLIENT) by its client id. The same properties and codes as
//! Java's `DefaultMQProducer.request` and `MessageUtil.createReplyMessage`, so Rust and Java
//! requesters and repliers mix.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocket_protocol::message::{names, sysflag, Properties};
use ferrocket_protocol::{RemotingCommand, ResponseCode};
use tokio::sync::oneshot;

use crate::error::{ClientError, Result};
use crate::message::{Message, MessageExt};
use crate::producer::Producer;
use crate::route::master_addr;

/// `MSG_TYPE` of a reply message (RocketMQ's `MixAll.REPLY_MESSAGE_FLAG`).
pub const REPLY_MESSAGE_FLAG: &str = "reply";

/// Requests waiting for their reply, by correlation id.
pub(crate) type Waiting = Mutex<HashMap<String, oneshot::Sender<Message>>>;

/// The reply topic of a cluster (`<cluster>_REPLY_TOPIC`).
pub fn reply_topic(cluster: &str) -> String {
    format!("{cluster}_REPLY_TOPIC")
}

/// Hands a pushed reply to the request waiting for it; the broker always gets SUCCESS (a reply
/// nobody waits for any more, after a timeout, is dropped, as in Java).
pub(crate) fn on_push(waiting: &Waiting, cmd: &RemotingCommand) -> RemotingCommand {
    let properties = Properties::parse(cmd.ext("properties").unwrap_or(""));
    let sys_flag: i32 = cmd.ext("sysFlag").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = cmd.body.clone();
    if sys_flag & sysflag::COMPRESSED != 0 {
        let mut out = Vec::new();
        if flate2::read::ZlibDecoder::new(&body[..])
            .read_to_end(&mut out)
            .is_ok()
        {
            body = Bytes::from(out);
        }
    }
    let reply = Message {
        topic: cmd.ext("topic").unwrap_or_default().to_string(),
        body,
        flag: cmd.ext("flag").and_then(|v| v.parse().ok()).unwrap_or(0),
        properties,
    };
    let waiter = reply
        .property(names::CORRELATION_ID)
        .and_then(|id| waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(id));
    match waiter {
        Some(tx) => {
            let _ = tx.send(reply);
        }
        None => tracing::debug!("a reply no request waits for (timed out?)"),
    }
    RemotingCommand::response_to(cmd, ResponseCode::SUCCESS)
}

impl Message {
    /// The reply to a request message: its body is `body`, it goes to the request's cluster's
    /// reply topic and carries the request's correlation id, requester and time to live. Fails
    /// if `request` did not come as a request (no CLUSTER, which the broker adds, or no
    /// REPLY_TO_CLIENT).
    pub fn reply_to(request: &MessageExt, body: impl Into<Bytes>) -> Result<Message> {
        let cluster = request.property(names::CLUSTER).ok_or_else(|| {
            ClientError::Invalid("create reply message fail: the request has no CLUSTER".into())
        })?;
        let to = request
            .property(names::MESSAGE_REPLY_TO_CLIENT)
            .ok_or_else(|| {
                ClientError::Invalid("create reply message fail: not a request message".into())
            })?;
        let mut m = Message::new(reply_topic(cluster), body)
            .with_property(names::MESSAGE_TYPE, REPLY_MESSAGE_FLAG)
            .with_property(names::MESSAGE_REPLY_TO_CLIENT, to);
        for name in [names::CORRELATION_ID, names::MESSAGE_TTL] {
            if let Some(v) = request.property(name) {
                m = m.with_property(name, v);
            }
        }
        Ok(m)
    }

    /// Whether this is a reply (`MSG_TYPE=reply`): it is sent with SEND_REPLY_MESSAGE_V2.
    pub fn is_reply(&self) -> bool {
        self.property(names::MESSAGE_TYPE) == Some(REPLY_MESSAGE_FLAG)
    }
}

impl Producer {
    /// Sends `msg` as a request and waits up to `timeout` for a consumer's reply
    /// ([`Message::reply_to`]), as Java's `DefaultMQProducer.request`.
    ///
    /// ```no_run
    /// # async fn demo(p: ferrocket_client::Producer) -> Result<(), ferrocket_client::ClientError> {
    /// use ferrocket_client::Message;
    /// let reply = p.request(Message::new("PriceQuery", "sku-42"), std::time::Duration::from_secs(3)).await?;
    /// println!("{:?}", reply.body);
    /// # Ok(()) }
    /// ```
    pub async fn request(&self, msg: Message, timeout: Duration) -> Result<Message> {
        let started = Instant::now();
        let inst = self.instance();
        let correlation = inst.ids.next_id();
        let msg = msg
            .with_property(names::CORRELATION_ID, correlation.clone())
            .with_property(names::MESSAGE_REPLY_TO_CLIENT, inst.client_id.clone())
            .with_property(names::MESSAGE_TTL, timeout.as_millis().to_string());
        // The reply comes from whichever broker takes it: every broker of the cluster must
        // know this client's connection (RocketMQ heartbeats all brokers here too).
        self.greet_reply_brokers(&msg.topic).await;
        let (tx, rx) = oneshot::channel();
        let waiting = || inst.replies();
        waiting()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(correlation.clone(), tx);
        let forget = || {
            waiting()
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&correlation);
        };
        if let Err(e) = self.send(msg).await {
            forget();
            return Err(e);
        }
        let left = timeout.saturating_sub(started.elapsed());
        match tokio::time::timeout(left, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            _ => {
                forget();
                Err(ClientError::Timeout {
                    addr: "request-reply".into(),
                    timeout_ms: timeout.as_millis() as u64,
                })
            }
        }
    }

    async fn greet_reply_brokers(&self, topic: &str) {
        let inst = self.instance();
        let Ok(route) = inst.router.route(topic).await else {
            return;
        };
        let mut clusters: Vec<&str> = route
            .broker_datas
            .iter()
            .map(|b| b.cluster.as_str())
            .collect();
        clusters.sort_unstable();
        clusters.dedup();
        for cluster in clusters {
            let Ok(replies) = inst.router.route(&reply_topic(cluster)).await else {
                continue;
            };
            for bd in &replies.broker_datas {
                if let Some(addr) = master_addr(&replies, &bd.broker_name) {
                    inst.greet(&addr).await;
                }
            }
        }
    }
}
