//! The producer: awaited, oneway and batch sends; to a queue, by selector or round robin with
//! retries on another broker and latency-based fault avoidance; zlib above 4 KiB.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferrocket_protocol::body::TopicRouteData;
use ferrocket_protocol::command::ExtFields;
use ferrocket_protocol::message::{encode_batch, names, sysflag, BatchEntry, Properties};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::error::{ClientError, Result};
use crate::fault::FaultTracker;
use crate::instance::{ClientConfig, Instance};
use crate::message::Message;
use crate::route::{master_addr, write_queues, MessageQueue};

/// RocketMQ's auto-create template topic.
pub const DEFAULT_TOPIC: &str = "TBW102";
/// Queues a topic auto-created by a send gets (Java's `defaultTopicQueueNums` of a producer).
pub const DEFAULT_TOPIC_QUEUE_NUMS: i32 = 4;

/// How the broker stored a sent message.
///
/// ```no_run
/// # async fn demo(p: ferrocket_client::Producer) -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::{Message, SendStatus};
/// let r = p.send(Message::new("T", "x")).await?;
/// if r.status != SendStatus::SendOk {
///     eprintln!("stored, but not yet durable or replicated: {:?}", r.status);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendStatus {
    /// Stored (and flushed or replicated as the broker is configured).
    SendOk,
    /// Stored, but not flushed to disk within the broker's `syncFlushTimeout`.
    FlushDiskTimeout,
    /// Stored on the master, but the slave did not confirm within `slaveTimeout`.
    FlushSlaveTimeout,
    /// Stored on the master; no slave was in sync.
    SlaveNotAvailable,
}

/// The answer to a send.
///
/// ```no_run
/// # async fn demo(p: ferrocket_client::Producer) -> Result<(), ferrocket_client::ClientError> {
/// let r = p.send(ferrocket_client::Message::new("T", "x")).await?;
/// println!("{} stored at {} offset {} (broker id {})", r.msg_id, r.queue, r.queue_offset, r.offset_msg_id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendResult {
    pub status: SendStatus,
    /// The client-generated unique id (`UNIQ_KEY`); comma-joined for a batch.
    pub msg_id: String,
    /// The broker's offset id(s).
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
}

/// Builds a [`Producer`].
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::{Message, Producer};
/// let producer = Producer::builder()
///     .namesrv_addr("127.0.0.1:9876")
///     .group("demo-producer")
///     .build()?;
/// let r = producer.send(Message::new("TopicTest", "hello").with_tags("TagA")).await?;
/// println!("{} at {}#{}", r.msg_id, r.queue, r.queue_offset);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    config: ClientConfig,
    group: String,
    retries: u32,
    compress_over: usize,
    max_message_size: usize,
}

impl ProducerBuilder {
    pub fn namesrv_addr(mut self, addr: impl Into<String>) -> Self {
        self.config.namesrv_addr = Some(addr.into());
        self
    }

    pub fn config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// Retries on another broker after a retryable failure (2 by default).
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// Bodies larger than this are zlib-compressed (4 KiB by default).
    pub fn compress_over(mut self, bytes: usize) -> Self {
        self.compress_over = bytes;
        self
    }

    /// Needs a tokio runtime (background heartbeats).
    pub fn build(self) -> Result<Producer> {
        if self.group.is_empty() {
            return Err(ClientError::Invalid("a producer needs a group".into()));
        }
        let inst = Instance::new(&self.config)?;
        inst.hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .producers
            .insert(self.group.clone());
        inst.start_background();
        Ok(Producer {
            inner: Arc::new(Inner {
                inst,
                group: self.group,
                retries: self.retries,
                compress_over: self.compress_over,
                max_message_size: self.max_message_size,
                next: AtomicUsize::new(rand_start()),
                faults: FaultTracker::default(),
                publish: Mutex::default(),
            }),
        })
    }
}

fn rand_start() -> usize {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as usize)
        .unwrap_or(0)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct Inner {
    inst: Arc<Instance>,
    group: String,
    retries: u32,
    compress_over: usize,
    max_message_size: usize,
    next: AtomicUsize,
    faults: FaultTracker,
    /// Each topic's writable queues, computed once per route the router hands out (a send
    /// otherwise rebuilt and sorted the list, two strings per queue, twice).
    publish: Mutex<HashMap<String, Publish>>,
}

/// The writable queues of one route.
#[derive(Debug)]
struct Publish {
    route: Arc<TopicRouteData>,
    queues: Arc<[MessageQueue]>,
}

/// Sends messages. Cheap to clone; clones share connections and routes.
#[derive(Debug, Clone)]
pub struct Producer {
    inner: Arc<Inner>,
}

/// What one send request carries, prepared once and retried as is.
struct Prepared {
    topic: String,
    body: Bytes,
    sys_flag: i32,
    flag: i32,
    properties: String,
    batch: bool,
    /// A reply of request-reply (sent with SEND_REPLY_MESSAGE_V2).
    reply: bool,
    msg_id: String,
}

impl Producer {
    pub fn builder() -> ProducerBuilder {
        ProducerBuilder {
            config: ClientConfig::default(),
            group: String::new(),
            retries: 2,
            compress_over: 4 * 1024,
            max_message_size: 4 * 1024 * 1024,
        }
    }

    /// The producer group.
    pub fn group(&self) -> &str {
        &self.inner.group
    }

    /// The client id brokers see.
    pub fn client_id(&self) -> &str {
        &self.inner.inst.client_id
    }

    /// Sends and waits for the broker's answer; retries on another broker when that may help.
    pub async fn send(&self, msg: Message) -> Result<SendResult> {
        let p = self.prepare(msg)?;
        self.send_prepared(&p, None, true).await
    }

    /// Sends to one queue (no retry elsewhere: the caller chose the queue).
    pub async fn send_to_queue(&self, msg: Message, mq: &MessageQueue) -> Result<SendResult> {
        let p = self.prepare(msg)?;
        self.send_prepared(&p, Some(mq.clone()), true).await
    }

    /// Sends to the queue `select` picks among the topic's writable queues (for ordering).
    pub async fn send_with_selector(
        &self,
        msg: Message,
        select: impl Fn(&[MessageQueue]) -> usize,
    ) -> Result<SendResult> {
        let (_, queues) = self.publish(&msg.topic).await?;
        if queues.is_empty() {
            return Err(ClientError::NoRoute(msg.topic.clone()));
        }
        let mq = queues[select(&queues) % queues.len()].clone();
        self.send_to_queue(msg, &mq).await
    }

    /// Sends messages of one key to one queue, so that they are consumed in order.
    pub async fn send_ordered(&self, msg: Message, key: &str) -> Result<SendResult> {
        let h = ferrocket_protocol::message::java_string_hash(key).unsigned_abs() as usize;
        self.send_with_selector(msg, |qs| h % qs.len()).await
    }

    /// Sends without waiting for an answer (no result, no retry).
    pub async fn send_oneway(&self, msg: Message) -> Result<()> {
        let p = self.prepare(msg)?;
        let (mq, addr) = self.pick(&p.topic, None, &[]).await?;
        let req = self.send_command(&p, &mq);
        self.inner.inst.pool().oneway(&addr, req).await
    }

    /// Sends messages of one topic as one batch (one queue, consecutive offsets).
    pub async fn send_batch(&self, msgs: Vec<Message>) -> Result<SendResult> {
        let Some(first) = msgs.first() else {
            return Err(ClientError::Invalid("empty batch".into()));
        };
        let topic = first.topic.clone();
        let mut ids = Vec::with_capacity(msgs.len());
        let mut entries = Vec::with_capacity(msgs.len());
        for m in msgs {
            if m.topic != topic {
                return Err(ClientError::Invalid("a batch holds one topic".into()));
            }
            if m.properties.get(names::DELAY_TIME_LEVEL).is_some() {
                return Err(ClientError::Invalid(
                    "a batch cannot hold delayed messages".into(),
                ));
            }
            let mut props = m.properties;
            let id = self.inner.inst.ids.next_id();
            props.insert(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, id.clone());
            props.insert(names::WAIT_STORE_MSG_OK, "true");
            ids.push(id);
            entries.push(BatchEntry {
                flag: m.flag,
                body: m.body,
                properties: props,
            });
        }
        let mut body = BytesMut::new();
        encode_batch(&entries, &mut body).map_err(|e| ClientError::Invalid(e.to_string()))?;
        if body.len() > self.inner.max_message_size {
            return Err(ClientError::Invalid(format!(
                "batch of {} bytes exceeds {}",
                body.len(),
                self.inner.max_message_size
            )));
        }
        let p = Prepared {
            topic,
            body: body.freeze(),
            sys_flag: 0,
            flag: 0,
            properties: String::new(),
            batch: true,
            reply: false,
            msg_id: ids.join(","),
        };
        self.send_prepared(&p, None, true).await
    }

    pub(crate) fn instance(&self) -> &Arc<Instance> {
        &self.inner.inst
    }

    /// Unregisters the group from the brokers.
    pub async fn shutdown(&self) {
        self.inner
            .inst
            .unregister(Some(&self.inner.group), None)
            .await;
    }

    fn prepare(&self, msg: Message) -> Result<Prepared> {
        if msg.topic.is_empty() {
            return Err(ClientError::Invalid("empty topic".into()));
        }
        if msg.body.is_empty() {
            return Err(ClientError::Invalid("empty body".into()));
        }
        let mut props: Properties = msg.properties;
        let id = self.inner.inst.ids.next_id();
        props.insert(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, id.clone());
        if props.get(names::WAIT_STORE_MSG_OK).is_none() {
            props.insert(names::WAIT_STORE_MSG_OK, "true");
        }
        let mut sys_flag = 0;
        let mut body = msg.body;
        if body.len() > self.inner.compress_over {
            let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
            if z.write_all(&body).is_ok() {
                if let Ok(c) = z.finish() {
                    body = Bytes::from(c);
                    sys_flag |= sysflag::COMPRESSED;
                }
            }
        }
        if body.len() > self.inner.max_message_size {
            return Err(ClientError::Invalid(format!(
                "body of {} bytes exceeds {}",
                body.len(),
                self.inner.max_message_size
            )));
        }
        if props.get(names::TRANSACTION_PREPARED) == Some("true") {
            sys_flag |= sysflag::TRANSACTION_PREPARED_TYPE;
        }
        let reply = props.get(names::MESSAGE_TYPE) == Some(crate::reply::REPLY_MESSAGE_FLAG);
        Ok(Prepared {
            topic: msg.topic,
            body,
            sys_flag,
            flag: msg.flag,
            properties: props.encode(),
            batch: false,
            reply,
            msg_id: id,
        })
    }

    /// The writable queues of `topic` in `route`, from the cache while the route is unchanged.
    fn publish_queues(&self, topic: &str, route: &Arc<TopicRouteData>) -> Arc<[MessageQueue]> {
        let mut cache = self.inner.publish.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = cache.get(topic) {
            if Arc::ptr_eq(&p.route, route) {
                return Arc::clone(&p.queues);
            }
        }
        let queues: Arc<[MessageQueue]> = write_queues(topic, route).into();
        cache.insert(
            topic.to_string(),
            Publish {
                route: Arc::clone(route),
                queues: Arc::clone(&queues),
            },
        );
        queues
    }

    /// The topic's route and writable queues. A topic without a route yet gets TBW102's route
    /// (the broker auto-creates the topic on the first send) with its queues cut to the
    /// [`DEFAULT_TOPIC_QUEUE_NUMS`] the request asks the broker to create, as Java's producer
    /// does: TBW102 has 8 queues, the new topic only 4, and a send to queue 4-7 would be refused.
    async fn publish(&self, topic: &str) -> Result<(Arc<TopicRouteData>, Arc<[MessageQueue]>)> {
        match self.inner.inst.router.route(topic).await {
            Ok(r) => {
                let queues = self.publish_queues(topic, &r);
                if !queues.is_empty() {
                    return Ok((r, queues));
                }
            }
            Err(ClientError::NoRoute(_)) => {}
            Err(e) => return Err(e),
        }
        let r = self
            .inner
            .inst
            .router
            .route(DEFAULT_TOPIC)
            .await
            .map_err(|e| match e {
                ClientError::NoRoute(_) => ClientError::NoRoute(topic.to_string()),
                e => e,
            })?;
        let queues = write_queues(topic, &r)
            .into_iter()
            .filter(|q| q.queue_id < DEFAULT_TOPIC_QUEUE_NUMS)
            .collect();
        Ok((r, queues))
    }

    /// A queue and its master's address: round robin, skipping avoided and `exclude`d brokers.
    async fn pick(
        &self,
        topic: &str,
        chosen: Option<&MessageQueue>,
        exclude: &[String],
    ) -> Result<(MessageQueue, String)> {
        let (route, queues) = self.publish(topic).await?;
        if let Some(mq) = chosen {
            let addr = master_addr(&route, &mq.broker_name)
                .ok_or_else(|| ClientError::NoRoute(format!("{topic} on {}", mq.broker_name)))?;
            return Ok((mq.clone(), addr));
        }
        if queues.is_empty() {
            return Err(ClientError::NoRoute(topic.to_string()));
        }
        let start = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let n = queues.len();
        let pick = (0..n)
            .map(|i| &queues[(start + i) % n])
            .find(|q| {
                !exclude.contains(&q.broker_name) && self.inner.faults.available(&q.broker_name)
            })
            .or_else(|| {
                (0..n)
                    .map(|i| &queues[(start + i) % n])
                    .find(|q| !exclude.contains(&q.broker_name))
            })
            .unwrap_or(&queues[start % n])
            .clone();
        let addr = master_addr(&route, &pick.broker_name)
            .ok_or_else(|| ClientError::NoRoute(topic.to_string()))?;
        Ok((pick, addr))
    }

    fn send_command(&self, p: &Prepared, mq: &MessageQueue) -> RemotingCommand {
        let code = if p.batch {
            RequestCode::SEND_BATCH_MESSAGE
        } else if p.reply {
            RequestCode::SEND_REPLY_MESSAGE_V2
        } else {
            RequestCode::SEND_MESSAGE_V2
        };
        let mut req = RemotingCommand::request(code);
        // Sized for the 13 fields below, so building them does not reallocate.
        req.ext_fields = ExtFields::with_capacity(
            13,
            self.inner.group.len() + p.topic.len() + p.properties.len() + mq.broker_name.len() + 96,
        );
        let mut req = req
            .with_ext("a", &self.inner.group)
            .with_ext("b", &p.topic)
            .with_ext("c", DEFAULT_TOPIC)
            .with_ext("d", DEFAULT_TOPIC_QUEUE_NUMS)
            .with_ext("e", mq.queue_id)
            .with_ext("f", p.sys_flag)
            .with_ext("g", now_ms())
            .with_ext("h", p.flag)
            .with_ext("i", &p.properties)
            .with_ext("j", 0)
            .with_ext("k", false)
            .with_ext("n", &mq.broker_name)
            .with_body(p.body.clone());
        if p.batch {
            req = req.with_ext("m", true);
        }
        req
    }

    async fn send_prepared(
        &self,
        p: &Prepared,
        chosen: Option<MessageQueue>,
        allow_retry: bool,
    ) -> Result<SendResult> {
        let attempts = if chosen.is_some() || !allow_retry {
            1
        } else {
            1 + self.inner.retries
        };
        let mut tried: Vec<String> = Vec::new();
        let mut last = None;
        for _ in 0..attempts {
            let (mq, addr) = match self.pick(&p.topic, chosen.as_ref(), &tried).await {
                Ok(x) => x,
                Err(e) => {
                    // A route without a master (one died, its successor has not registered
                    // yet) is not kept for 30 s: the next send asks the name server again.
                    if matches!(e, ClientError::NoRoute(_)) {
                        self.inner.inst.router.forget(&p.topic);
                    }
                    last = Some(e);
                    break;
                }
            };
            let started = Instant::now();
            let r = self.send_once(p, &mq, &addr).await;
            if matches!(r, Err(ClientError::Io { .. } | ClientError::Closed { .. })) {
                // A new connection (a restarted broker) must hear our heartbeat again.
                self.inner.inst.forget_greeting(&addr);
            }
            let failed = r.as_ref().is_err_and(ClientError::is_retryable);
            self.inner
                .faults
                .record(&mq.broker_name, started.elapsed(), failed);
            match r {
                Ok(res) => return Ok(res),
                Err(e) => {
                    if e.is_routing() {
                        self.inner.inst.router.forget(&p.topic);
                    }
                    if !e.is_retryable() {
                        return Err(e);
                    }
                    tracing::debug!(broker = %mq.broker_name, error = %e, "send failed; retrying elsewhere");
                    tried.push(mq.broker_name.clone());
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::NoRoute(p.topic.clone())))
    }

    async fn send_once(&self, p: &Prepared, mq: &MessageQueue, addr: &str) -> Result<SendResult> {
        let inst = &self.inner.inst;
        inst.greet(addr).await;
        let r = inst
            .pool()
            .invoke(addr, self.send_command(p, mq), inst.timeout())
            .await?;
        let status = match ResponseCode::from_i32(r.code) {
            Some(ResponseCode::SUCCESS) => SendStatus::SendOk,
            Some(ResponseCode::FLUSH_DISK_TIMEOUT) => SendStatus::FlushDiskTimeout,
            Some(ResponseCode::FLUSH_SLAVE_TIMEOUT) => SendStatus::FlushSlaveTimeout,
            Some(ResponseCode::SLAVE_NOT_AVAILABLE) => SendStatus::SlaveNotAvailable,
            _ => return Err(ClientError::broker(addr, r.code, r.remark.as_deref())),
        };
        let queue_id = r
            .ext("queueId")
            .and_then(|v| v.parse().ok())
            .unwrap_or(mq.queue_id);
        Ok(SendResult {
            status,
            msg_id: p.msg_id.clone(),
            offset_msg_id: r.ext("msgId").unwrap_or_default().to_string(),
            queue: MessageQueue {
                topic: p.topic.clone(),
                broker_name: mq.broker_name.clone(),
                queue_id,
            },
            queue_offset: r
                .ext("queueOffset")
                .and_then(|v| v.parse().ok())
                .unwrap_or(-1),
        })
    }
}
