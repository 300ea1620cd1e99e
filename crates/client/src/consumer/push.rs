//! The push consumer: rebalanced queues (every 20 s and when the group changes), one long-polling
//! pull loop per owned queue with flow control, concurrent or orderly listeners, failed messages
//! sent back for retry, offsets committed every 5 s and at shutdown (a local file when
//! broadcasting).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::broker_ops::{self, PullArgs, PullStatus};
use super::rebalance::{allocate_average, Allocate};
use super::{start_offset, ConsumeFrom, MessageModel};
use crate::error::{ClientError, Result};
use crate::instance::{ClientConfig, Instance};
use crate::message::MessageExt;
use crate::route::{master_addr, read_addr, read_queues, MessageQueue};

/// What a listener says about a message.
///
/// ```
/// use ferrocket_client::{ConsumeResult, PushConsumer};
/// let b = PushConsumer::builder().listener(|m| async move {
///     if m.body.is_empty() { ConsumeResult::Retry } else { ConsumeResult::Success }
/// });
/// # let _ = b;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumeResult {
    Success,
    /// Deliver it again later (sent back to `%RETRY%<group>`; orderly: retried in place).
    Retry,
}

type BoxFut = Pin<Box<dyn Future<Output = ConsumeResult> + Send>>;
type Listener = Arc<dyn Fn(MessageExt) -> BoxFut + Send + Sync>;

/// Builds a [`PushConsumer`].
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::consumer::{ConsumeResult, PushConsumer};
/// let consumer = PushConsumer::builder()
///     .namesrv_addr("127.0.0.1:9876")
///     .group("demo-consumer")
///     .subscribe("TopicTest", "TagA || TagB")
///     .listener(|m| async move {
///         println!("{}: {:?}", m.msg_id, m.body);
///         ConsumeResult::Success
///     })
///     .start()
///     .await?;
/// // ...
/// consumer.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PushConsumerBuilder {
    config: ClientConfig,
    group: String,
    subscriptions: BTreeMap<String, String>,
    model: MessageModel,
    from: ConsumeFrom,
    orderly: bool,
    listener: Option<Listener>,
    allocate: Allocate,
    max_cached: usize,
    max_reconsume: i32,
    rebalance_interval: Duration,
    commit_interval: Duration,
    offset_dir: Option<PathBuf>,
}

impl std::fmt::Debug for PushConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumerBuilder")
            .field("group", &self.group)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl PushConsumerBuilder {
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

    /// Subscribes to `topic` with a tag expression (`*`, `TagA || TagB`).
    pub fn subscribe(mut self, topic: impl Into<String>, expression: impl Into<String>) -> Self {
        self.subscriptions.insert(topic.into(), expression.into());
        self
    }

    pub fn message_model(mut self, model: MessageModel) -> Self {
        self.model = model;
        self
    }

    pub fn consume_from(mut self, from: ConsumeFrom) -> Self {
        self.from = from;
        self
    }

    /// A listener called for messages in parallel.
    pub fn listener<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(MessageExt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeResult> + Send + 'static,
    {
        self.listener = Some(Arc::new(move |m| Box::pin(f(m))));
        self.orderly = false;
        self
    }

    /// A listener called one message at a time per queue, in queue order; queues are locked on
    /// the broker so that only one consumer of the group holds each.
    pub fn orderly_listener<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn(MessageExt) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConsumeResult> + Send + 'static,
    {
        self.listener = Some(Arc::new(move |m| Box::pin(f(m))));
        self.orderly = true;
        self
    }

    /// Replaces the queue allocation (average by default).
    pub fn allocate(mut self, a: Allocate) -> Self {
        self.allocate = a;
        self
    }

    /// Messages cached per queue before its pulls pause (1000 by default).
    pub fn max_cached_per_queue(mut self, n: usize) -> Self {
        self.max_cached = n.max(1);
        self
    }

    /// Deliveries before a message goes to the dead-letter queue (16 by default).
    pub fn max_reconsume_times(mut self, n: i32) -> Self {
        self.max_reconsume = n;
        self
    }

    /// How often queues are rebalanced (20 s by default).
    pub fn rebalance_interval(mut self, d: Duration) -> Self {
        self.rebalance_interval = d;
        self
    }

    /// How often offsets are committed (5 s by default).
    pub fn commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = d;
        self
    }

    /// Where broadcasting consumers keep offsets (`$HOME/.ferrocket_offsets` by default).
    pub fn offset_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.offset_dir = Some(dir.into());
        self
    }

    /// Starts consuming (needs a tokio runtime).
    pub async fn start(self) -> Result<PushConsumer> {
        if self.group.is_empty() {
            return Err(ClientError::Invalid("a consumer needs a group".into()));
        }
        if self.subscriptions.is_empty() {
            return Err(ClientError::Invalid(
                "subscribe to at least one topic".into(),
            ));
        }
        let listener = self
            .listener
            .clone()
            .ok_or_else(|| ClientError::Invalid("a push consumer needs a listener".into()))?;
        let inst = Instance::new(&self.config)?;
        let mut subs = self.subscriptions.clone();
        if self.model == MessageModel::Clustering {
            subs.insert(format!("%RETRY%{}", self.group), "*".into());
        }
        let offset_file = (self.model == MessageModel::Broadcasting).then(|| {
            let dir = self.offset_dir.clone().unwrap_or_else(|| {
                PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| ".".into()))
                    .join(".ferrocket_offsets")
            });
            dir.join(format!("{}.json", self.group))
        });
        let shared = Arc::new(Shared {
            inst,
            group: self.group.clone(),
            subs,
            model: self.model,
            from: self.from,
            orderly: self.orderly,
            listener,
            allocate: self.allocate.clone(),
            max_cached: self.max_cached,
            max_reconsume: self.max_reconsume,
            queues: Mutex::default(),
            cancel: CancellationToken::new(),
            rebalance_now: Arc::new(Notify::new()),
            offset_file,
        });
        shared.announce();
        shared.inst.start_background();
        let s = Arc::clone(&shared);
        let (ri, ci) = (self.rebalance_interval, self.commit_interval);
        tokio::spawn(async move { s.rebalance_loop(ri).await });
        let s = Arc::clone(&shared);
        tokio::spawn(async move { s.commit_loop(ci).await });
        Ok(PushConsumer { shared })
    }
}

/// A queue this consumer owns.
struct Owned {
    /// Next offset to commit: everything below it has been consumed.
    consumed: Arc<AtomicI64>,
    stop: CancellationToken,
}

struct Shared {
    inst: Arc<Instance>,
    group: String,
    subs: BTreeMap<String, String>,
    model: MessageModel,
    from: ConsumeFrom,
    orderly: bool,
    listener: Listener,
    allocate: Allocate,
    max_cached: usize,
    max_reconsume: i32,
    queues: Mutex<BTreeMap<MessageQueue, Owned>>,
    cancel: CancellationToken,
    rebalance_now: Arc<Notify>,
    offset_file: Option<PathBuf>,
}

/// Consumes messages in the background until [`PushConsumer::shutdown`].
pub struct PushConsumer {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PushConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConsumer")
            .field("group", &self.shared.group)
            .finish_non_exhaustive()
    }
}

impl PushConsumer {
    pub fn builder() -> PushConsumerBuilder {
        PushConsumerBuilder {
            config: ClientConfig::default(),
            group: String::new(),
            subscriptions: BTreeMap::new(),
            model: MessageModel::Clustering,
            from: ConsumeFrom::Last,
            orderly: false,
            listener: None,
            allocate: Arc::new(allocate_average),
            max_cached: 1000,
            max_reconsume: 16,
            rebalance_interval: Duration::from_secs(20),
            commit_interval: Duration::from_secs(5),
            offset_dir: None,
        }
    }

    /// The client id brokers see.
    pub fn client_id(&self) -> &str {
        &self.shared.inst.client_id
    }

    /// The queues this consumer owns now.
    pub fn assignment(&self) -> Vec<MessageQueue> {
        self.shared.lock_queues().keys().cloned().collect()
    }

    /// Stops pulling, commits offsets and leaves the group.
    pub async fn shutdown(self) {
        let s = &self.shared;
        s.cancel.cancel();
        for o in s.lock_queues().values() {
            o.stop.cancel();
        }
        s.commit_all().await;
        s.inst
            .hooks
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .consumers
            .remove(&s.group);
        s.inst.unregister(None, Some(&s.group)).await;
    }
}

impl Shared {
    fn lock_queues(&self) -> std::sync::MutexGuard<'_, BTreeMap<MessageQueue, Owned>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers the consumer data heartbeats carry, and the rebalance hook.
    fn announce(&self) {
        let subs: Vec<_> = self
            .subs
            .iter()
            .map(|(topic, expr)| {
                let tags = broker_ops::expression_tags(expr);
                let codes: Vec<i32> = tags
                    .iter()
                    .map(|t| ferrocket_protocol::message::java_string_hash(t))
                    .collect();
                serde_json::json!({
                    "classFilterMode": false,
                    "topic": topic,
                    "subString": if tags.is_empty() { "*".to_string() } else { expr.clone() },
                    "tagsSet": tags,
                    "codeSet": codes,
                    "subVersion": 0,
                    "expressionType": "TAG",
                })
            })
            .collect();
        let data = serde_json::json!({
            "groupName": self.group,
            "consumeType": "CONSUME_PASSIVELY",
            "messageModel": match self.model { MessageModel::Clustering => "CLUSTERING", MessageModel::Broadcasting => "BROADCASTING" },
            "consumeFromWhere": match self.from { ConsumeFrom::Last => "CONSUME_FROM_LAST_OFFSET", ConsumeFrom::First => "CONSUME_FROM_FIRST_OFFSET", ConsumeFrom::Timestamp(_) => "CONSUME_FROM_TIMESTAMP" },
            "subscriptionDataSet": subs,
            "unitMode": false,
        });
        let mut hooks = self.inst.hooks.write().unwrap_or_else(|e| e.into_inner());
        hooks.consumers.insert(self.group.clone(), data);
        hooks
            .rebalance
            .insert(self.group.clone(), Arc::clone(&self.rebalance_now));
    }

    async fn rebalance_loop(self: Arc<Self>, every: Duration) {
        loop {
            if let Err(e) = self.rebalance().await {
                tracing::debug!(group = %self.group, error = %e, "rebalance failed");
            }
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
                _ = self.rebalance_now.notified() => {}
            }
        }
    }

    async fn rebalance(self: &Arc<Self>) -> Result<()> {
        let mut wanted = BTreeSet::new();
        for topic in self.subs.keys() {
            let route = match self.inst.router.route(topic).await {
                Ok(r) => r,
                Err(ClientError::NoRoute(_)) => continue,
                Err(e) => return Err(e),
            };
            let all = read_queues(topic, &route);
            // Be known to every broker of the topic before asking who is in the group.
            let mut addrs: Vec<String> = route
                .broker_datas
                .iter()
                .flat_map(|b| b.broker_addrs.values().cloned())
                .collect();
            addrs.sort();
            addrs.dedup();
            for a in &addrs {
                let _ = self.inst.heartbeat_to(a).await;
            }
            let mine = match self.model {
                MessageModel::Broadcasting => all,
                MessageModel::Clustering => {
                    let Some(addr) = addrs.first() else { continue };
                    let ids = broker_ops::consumer_ids(&self.inst, addr, &self.group).await?;
                    (self.allocate)(&self.inst.client_id, &ids, &all)
                }
            };
            wanted.extend(mine);
        }
        let (gone, new): (Vec<MessageQueue>, Vec<MessageQueue>) = {
            let owned = self.lock_queues();
            (
                owned
                    .keys()
                    .filter(|q| !wanted.contains(*q))
                    .cloned()
                    .collect(),
                wanted
                    .iter()
                    .filter(|q| !owned.contains_key(*q))
                    .cloned()
                    .collect(),
            )
        };
        for q in gone {
            let o = self.lock_queues().remove(&q);
            if let Some(o) = o {
                o.stop.cancel();
                self.commit_one(&q, o.consumed.load(Ordering::Acquire))
                    .await;
                tracing::debug!(queue = %q, "queue released");
            }
        }
        for q in new {
            let stop = self.cancel.child_token();
            let consumed = Arc::new(AtomicI64::new(-1));
            self.lock_queues().insert(
                q.clone(),
                Owned {
                    consumed: Arc::clone(&consumed),
                    stop: stop.clone(),
                },
            );
            let s = Arc::clone(self);
            tokio::spawn(async move { s.pull_loop(q, consumed, stop).await });
        }
        Ok(())
    }

    async fn pull_loop(
        self: Arc<Self>,
        mq: MessageQueue,
        consumed: Arc<AtomicI64>,
        stop: CancellationToken,
    ) {
        let expr = self
            .subs
            .get(&mq.topic)
            .cloned()
            .unwrap_or_else(|| "*".into());
        let mut offset: Option<i64> = None;
        let mut locked = !self.orderly || self.model == MessageModel::Broadcasting;
        while !stop.is_cancelled() {
            let route = match self.inst.router.route(&mq.topic).await {
                Ok(r) => r,
                Err(_) => {
                    self.pause(&stop, Duration::from_secs(1)).await;
                    continue;
                }
            };
            let Some(addr) = read_addr(&route, &mq.broker_name) else {
                self.pause(&stop, Duration::from_secs(1)).await;
                continue;
            };
            if !locked {
                let master = master_addr(&route, &mq.broker_name).unwrap_or_else(|| addr.clone());
                let got = broker_ops::lock_queues(
                    &self.inst,
                    &master,
                    &self.group,
                    std::slice::from_ref(&mq),
                )
                .await;
                locked = got.is_ok_and(|l| l.contains(&mq));
                if !locked {
                    self.pause(&stop, Duration::from_millis(500)).await;
                    continue;
                }
            }
            let start = match offset {
                Some(o) => o,
                None => match self.initial_offset(&addr, &mq).await {
                    Ok(o) => {
                        consumed.store(o, Ordering::Release);
                        offset = Some(o);
                        o
                    }
                    Err(e) => {
                        tracing::debug!(queue = %mq, error = %e, "no start offset yet");
                        self.pause(&stop, Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            let args = PullArgs {
                group: &self.group,
                offset: start,
                max: self.max_cached.min(32) as i32,
                expression: &expr,
                suspend: Duration::from_secs(15),
                commit_offset: None,
            };
            let pulled = tokio::select! {
                _ = stop.cancelled() => return,
                r = broker_ops::pull(&self.inst, &addr, &mq, &args) => r,
            };
            match pulled {
                Ok(r) => {
                    if r.status == PullStatus::OffsetIllegal {
                        tracing::warn!(queue = %mq, from = start, to = r.next_begin_offset, "offset moved");
                    }
                    if !r.messages.is_empty() {
                        self.consume(&addr, r.messages).await;
                    }
                    offset = Some(r.next_begin_offset);
                    consumed.store(r.next_begin_offset, Ordering::Release);
                }
                Err(e) => {
                    tracing::debug!(queue = %mq, error = %e, "pull failed");
                    if e.is_routing() {
                        self.inst.router.forget(&mq.topic);
                    }
                    self.pause(&stop, Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn pause(&self, stop: &CancellationToken, d: Duration) {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = tokio::time::sleep(d) => {}
        }
    }

    async fn initial_offset(&self, addr: &str, mq: &MessageQueue) -> Result<i64> {
        if let Some(file) = &self.offset_file {
            if let Some(o) = read_local_offsets(file).get(&mq.to_string()) {
                return Ok(*o);
            }
            return match self.from {
                ConsumeFrom::Last => broker_ops::max_offset(&self.inst, addr, mq).await,
                ConsumeFrom::First => broker_ops::min_offset(&self.inst, addr, mq).await,
                ConsumeFrom::Timestamp(ts) => {
                    broker_ops::search_offset(&self.inst, addr, mq, ts).await
                }
            };
        }
        start_offset(&self.inst, addr, &self.group, mq, self.from).await
    }

    /// Runs the listener over a pulled batch; returns when every message is done (consumed, or
    /// sent back for retry).
    async fn consume(&self, addr: &str, msgs: Vec<MessageExt>) {
        if self.orderly {
            for m in msgs {
                let mut attempts = 0;
                loop {
                    if (self.listener)(m.clone()).await == ConsumeResult::Success {
                        break;
                    }
                    attempts += 1;
                    if attempts > self.max_reconsume {
                        let _ = broker_ops::send_back(
                            &self.inst,
                            addr,
                            &self.group,
                            &m,
                            self.max_reconsume,
                        )
                        .await;
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
            return;
        }
        let tasks: Vec<_> = msgs
            .into_iter()
            .map(|m| {
                let l = Arc::clone(&self.listener);
                tokio::spawn(async move {
                    let r = l(m.clone()).await;
                    (m, r)
                })
            })
            .collect();
        for t in tasks {
            let Ok((m, r)) = t.await else { continue };
            if r == ConsumeResult::Retry {
                if self.model == MessageModel::Broadcasting {
                    continue; // Broadcasting does not retry (as RocketMQ).
                }
                if let Err(e) =
                    broker_ops::send_back(&self.inst, addr, &self.group, &m, self.max_reconsume)
                        .await
                {
                    tracing::warn!(msg = %m.msg_id, error = %e, "send back failed; consuming again in place");
                    let _ = (self.listener)(m).await;
                }
            }
        }
    }

    async fn commit_loop(self: Arc<Self>, every: Duration) {
        loop {
            tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            self.commit_all().await;
        }
    }

    async fn commit_all(&self) {
        let offsets: Vec<(MessageQueue, i64)> = self
            .lock_queues()
            .iter()
            .map(|(q, o)| (q.clone(), o.consumed.load(Ordering::Acquire)))
            .filter(|(_, o)| *o >= 0)
            .collect();
        if let Some(file) = &self.offset_file {
            let mut all = read_local_offsets(file);
            for (q, o) in &offsets {
                all.insert(q.to_string(), *o);
            }
            if let Some(dir) = file.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let tmp = file.with_extension("tmp");
            if std::fs::write(&tmp, serde_json::to_vec(&all).unwrap_or_default()).is_ok() {
                let _ = std::fs::rename(&tmp, file);
            }
            return;
        }
        for (q, o) in offsets {
            self.commit_one(&q, o).await;
        }
    }

    async fn commit_one(&self, mq: &MessageQueue, offset: i64) {
        if offset < 0 || self.offset_file.is_some() {
            return;
        }
        let Ok(route) = self.inst.router.route(&mq.topic).await else {
            return;
        };
        // Offsets go to the master; while it is down they wait for its return.
        let Some(addr) = master_addr(&route, &mq.broker_name) else {
            return;
        };
        if let Err(e) = broker_ops::commit_offset(&self.inst, &addr, &self.group, mq, offset).await
        {
            tracing::debug!(queue = %mq, error = %e, "offset commit failed");
        }
    }
}

fn read_local_offsets(file: &std::path::Path) -> BTreeMap<String, i64> {
    std::fs::read(file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}
