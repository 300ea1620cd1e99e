//! Messages: what a producer sends ([`Message`]) and what a consumer receives ([`MessageExt`]).

use bytes::Bytes;
use ferrocket_protocol::message::{names, Properties, StoredMessage};

use crate::route::MessageQueue;

/// A message to send.
///
/// ```
/// use ferrocket_client::Message;
/// let m = Message::new("TopicTest", "hello")
///     .with_tags("TagA")
///     .with_keys(["order-42"])
///     .with_property("region", "eu");
/// assert_eq!(m.tags(), Some("TagA"));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub topic: String,
    pub body: Bytes,
    /// The user flag, stored verbatim.
    pub flag: i32,
    pub properties: Properties,
}

impl Message {
    pub fn new(topic: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Message {
            topic: topic.into(),
            body: body.into(),
            flag: 0,
            properties: Properties::new(),
        }
    }

    /// The tag consumers filter on (`TAGS`).
    pub fn with_tags(mut self, tags: impl Into<String>) -> Self {
        self.properties.insert(names::TAGS, tags);
        self
    }

    /// Business keys, indexed by the broker for `queryMsgByKey` (`KEYS`, space separated).
    pub fn with_keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let joined: Vec<String> = keys.into_iter().map(|k| k.as_ref().to_string()).collect();
        self.properties.insert(names::KEYS, joined.join(" "));
        self
    }

    /// A user property.
    pub fn with_property(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(name, value);
        self
    }

    /// Delivery after one of the broker's delay levels (1 = 1 s ... 18 = 2 h by default).
    pub fn with_delay_level(mut self, level: i32) -> Self {
        self.properties
            .insert(names::DELAY_TIME_LEVEL, level.to_string());
        self
    }

    /// Delivery at a wall-clock time, Unix ms (RocketMQ 5.x `TIMER_DELIVER_MS`).
    pub fn with_deliver_time_ms(mut self, at_ms: i64) -> Self {
        self.properties
            .insert("TIMER_DELIVER_MS", at_ms.to_string());
        self
    }

    pub fn with_flag(mut self, flag: i32) -> Self {
        self.flag = flag;
        self
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(names::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.properties.get(names::KEYS)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }
}

/// A message as stored and delivered.
///
/// ```no_run
/// # async fn demo(c: ferrocket_client::PullConsumer) -> Result<(), ferrocket_client::ClientError> {
/// for m in c.poll(std::time::Duration::from_secs(1)).await? {
///     println!("{} {}#{} tags={:?} body={:?}", m.msg_id, m.queue, m.queue_offset, m.tags(), m.body);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MessageExt {
    /// The client-generated unique id (`UNIQ_KEY`), else the offset id.
    pub msg_id: String,
    /// The broker's offset message id (store host and commitlog offset, 32 hex chars).
    pub offset_msg_id: String,
    pub queue: MessageQueue,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub born_timestamp: i64,
    pub store_timestamp: i64,
    pub reconsume_times: i32,
    pub flag: i32,
    pub sys_flag: i32,
    pub body: Bytes,
    pub properties: Properties,
}

impl MessageExt {
    pub(crate) fn from_stored(m: StoredMessage, broker_name: &str) -> Self {
        let offset_msg_id =
            ferrocket_protocol::message::encode_offset_msg_id(m.store_host, m.physical_offset);
        let msg_id = m
            .properties
            .uniq_key()
            .map(str::to_string)
            .unwrap_or_else(|| offset_msg_id.clone());
        MessageExt {
            msg_id,
            offset_msg_id,
            queue: MessageQueue {
                topic: m.topic,
                broker_name: broker_name.to_string(),
                queue_id: m.queue_id,
            },
            queue_offset: m.queue_offset,
            commit_log_offset: m.physical_offset,
            born_timestamp: m.born_timestamp,
            store_timestamp: m.store_timestamp,
            reconsume_times: m.reconsume_times,
            flag: m.flag,
            sys_flag: m.sys_flag,
            body: m.body,
            properties: m.properties,
        }
    }

    pub fn topic(&self) -> &str {
        &self.queue.topic
    }

    pub fn tags(&self) -> Option<&str> {
        self.properties.get(names::TAGS)
    }

    pub fn keys(&self) -> Option<&str> {
        self.properties.get(names::KEYS)
    }

    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties.get(name)
    }
}
