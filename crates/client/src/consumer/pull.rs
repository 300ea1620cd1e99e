//! The lite pull consumer: subscribe to topics or assign queues, poll, seek, commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use super::broker_ops::{self, PullArgs, PullStatus};
use super::{start_offset, ConsumeFrom};
use crate::error::{ClientError, Result};
use crate::instance::{ClientConfig, Instance};
use crate::message::MessageExt;
use crate::route::{master_addr, read_addr, read_queues, MessageQueue};

/// Builds a [`PullConsumer`].
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::PullConsumer;
/// let c = PullConsumer::builder().namesrv_addr("127.0.0.1:9876").group("g").build()?;
/// c.subscribe("TopicTest", "*").await?;
/// for m in c.poll(std::time::Duration::from_secs(1)).await? {
///     println!("{} {:?}", m.queue_offset, m.body);
/// }
/// c.commit().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct PullConsumerBuilder {
    config: ClientConfig,
    group: String,
    from: ConsumeFrom,
    batch: i32,
    use_committed: bool,
}

impl PullConsumerBuilder {
    /// Whether queues start at the group's committed offset (true by default); false always
    /// starts per [`ConsumeFrom`] (a viewer that must not depend on a group's progress).
    pub fn use_committed(mut self, yes: bool) -> Self {
        self.use_committed = yes;
        self
    }

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

    /// Where a queue without a committed offset starts (last by default).
    pub fn consume_from(mut self, from: ConsumeFrom) -> Self {
        self.from = from;
        self
    }

    /// Messages per pull (32 by default).
    pub fn batch(mut self, n: i32) -> Self {
        self.batch = n.max(1);
        self
    }

    pub fn build(self) -> Result<PullConsumer> {
        if self.group.is_empty() {
            return Err(ClientError::Invalid("a consumer needs a group".into()));
        }
        Ok(PullConsumer {
            inst: Instance::new(&self.config)?,
            group: self.group,
            from: self.from,
            batch: self.batch,
            use_committed: self.use_committed,
            state: Arc::default(),
        })
    }
}

#[derive(Debug, Default)]
struct State {
    /// Assigned queues: their next offset (None until resolved) and expression.
    queues: BTreeMap<MessageQueue, (Option<i64>, String)>,
    /// Where the next poll starts (fairness across queues).
    cursor: usize,
}

/// Pulls messages on demand.
#[derive(Debug)]
pub struct PullConsumer {
    inst: Arc<Instance>,
    group: String,
    from: ConsumeFrom,
    batch: i32,
    use_committed: bool,
    state: Arc<Mutex<State>>,
}

impl PullConsumer {
    pub fn builder() -> PullConsumerBuilder {
        PullConsumerBuilder {
            config: ClientConfig::default(),
            group: String::new(),
            from: ConsumeFrom::Last,
            batch: 32,
            use_committed: true,
        }
    }

    /// Assigns every readable queue of `topic` with a tag expression.
    pub async fn subscribe(&self, topic: &str, expression: &str) -> Result<()> {
        let route = self.inst.router.route(topic).await?;
        let mut st = self.state.lock().await;
        for q in read_queues(topic, &route) {
            st.queues.entry(q).or_insert((None, expression.to_string()));
        }
        Ok(())
    }

    /// Assigns exactly these queues (all tags).
    pub async fn assign(&self, queues: Vec<MessageQueue>) {
        let mut st = self.state.lock().await;
        st.queues = queues
            .into_iter()
            .map(|q| (q, (None, "*".to_string())))
            .collect();
    }

    /// The assigned queues.
    pub async fn assignment(&self) -> Vec<MessageQueue> {
        self.state.lock().await.queues.keys().cloned().collect()
    }

    /// Moves `mq`'s position.
    pub async fn seek(&self, mq: &MessageQueue, offset: i64) -> Result<()> {
        let mut st = self.state.lock().await;
        let e = st
            .queues
            .get_mut(mq)
            .ok_or_else(|| ClientError::Invalid(format!("{mq} is not assigned")))?;
        e.0 = Some(offset);
        Ok(())
    }

    /// The next offset `poll` reads from `mq`.
    pub async fn position(&self, mq: &MessageQueue) -> Option<i64> {
        self.state.lock().await.queues.get(mq).and_then(|e| e.0)
    }

    /// Messages from the assigned queues; waits up to `timeout` when none are there.
    pub async fn poll(&self, timeout: Duration) -> Result<Vec<MessageExt>> {
        let deadline = Instant::now() + timeout;
        loop {
            let queues: Vec<(MessageQueue, Option<i64>, String)> = {
                let mut st = self.state.lock().await;
                st.cursor = st.cursor.wrapping_add(1);
                let n = st.queues.len().max(1);
                let c = st.cursor % n;
                let all: Vec<_> = st
                    .queues
                    .iter()
                    .map(|(q, (o, e))| (q.clone(), *o, e.clone()))
                    .collect();
                all[c.min(all.len())..]
                    .iter()
                    .chain(all[..c.min(all.len())].iter())
                    .cloned()
                    .collect()
            };
            if queues.is_empty() {
                return Err(ClientError::Invalid(
                    "nothing subscribed or assigned".into(),
                ));
            }
            for (mq, offset, expr) in queues {
                let route = self.inst.router.route(&mq.topic).await?;
                let Some(addr) = read_addr(&route, &mq.broker_name) else {
                    continue;
                };
                let offset = match offset {
                    Some(o) => o,
                    None => {
                        let o = if self.use_committed {
                            start_offset(&self.inst, &addr, &self.group, &mq, self.from).await?
                        } else {
                            super::from_offset(&self.inst, &addr, &mq, self.from).await?
                        };
                        self.set(&mq, o).await;
                        o
                    }
                };
                let args = PullArgs {
                    group: &self.group,
                    offset,
                    max: self.batch,
                    expression: &expr,
                    suspend: Duration::ZERO,
                    commit_offset: None,
                };
                let r = match broker_ops::pull(&self.inst, &addr, &mq, &args).await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::debug!(queue = %mq, error = %e, "pull failed");
                        self.inst.router.forget(&mq.topic);
                        continue;
                    }
                };
                if r.status != PullStatus::NoNewMessage || r.next_begin_offset != offset {
                    self.set(&mq, r.next_begin_offset).await;
                }
                if !r.messages.is_empty() {
                    return Ok(r.messages);
                }
            }
            if Instant::now() >= deadline {
                return Ok(Vec::new());
            }
            tokio::time::sleep(Duration::from_millis(100).min(deadline - Instant::now())).await;
        }
    }

    /// Commits every queue's position to its master.
    pub async fn commit(&self) -> Result<()> {
        let positions: Vec<(MessageQueue, i64)> = {
            let st = self.state.lock().await;
            st.queues
                .iter()
                .filter_map(|(q, (o, _))| o.map(|o| (q.clone(), o)))
                .collect()
        };
        for (mq, offset) in positions {
            let route = self.inst.router.route(&mq.topic).await?;
            let addr = master_addr(&route, &mq.broker_name)
                .ok_or_else(|| ClientError::NoRoute(format!("master of {}", mq.broker_name)))?;
            broker_ops::commit_offset(&self.inst, &addr, &self.group, &mq, offset).await?;
        }
        Ok(())
    }

    /// The group's committed offset of `mq` on the broker.
    pub async fn committed(&self, mq: &MessageQueue) -> Result<Option<i64>> {
        let route = self.inst.router.route(&mq.topic).await?;
        let addr = read_addr(&route, &mq.broker_name)
            .ok_or_else(|| ClientError::NoRoute(mq.broker_name.clone()))?;
        broker_ops::query_offset(&self.inst, &addr, &self.group, mq).await
    }

    async fn set(&self, mq: &MessageQueue, offset: i64) {
        if let Some(e) = self.state.lock().await.queues.get_mut(mq) {
            e.0 = Some(offset);
        }
    }
}
