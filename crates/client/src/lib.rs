//! Async Rust client for RocketMQ-compatible brokers (Apache RocketMQ 4.x/5.x and Ferrocket)
//! over RocketMQ's remoting protocol: a producer, pull and push consumers, and an admin API.
//!
//! ```no_run
//! # async fn demo() -> Result<(), ferrocket_client::ClientError> {
//! use ferrocket_client::{Message, Producer};
//! let producer = Producer::builder().namesrv_addr("127.0.0.1:9876").group("pg").build()?;
//! producer.send(Message::new("TopicTest", "hello")).await?;
//! # Ok(()) }
//! ```
//!
//! Everything runs on the caller's tokio runtime. Errors are [`ClientError`]; nothing panics on
//! bad input from the network.

mod admin;
pub mod consumer;
mod error;
mod fault;
mod instance;
mod message;
mod producer;
mod reply;
pub mod route;
mod transaction;
pub mod transport;

pub use admin::{Admin, QueueProgress, QueueStats};
pub use consumer::{ConsumeFrom, ConsumeResult, MessageModel, PullConsumer, PushConsumer};
pub use error::{ClientError, Result};
pub use ferrocket_protocol::body::client::SubscriptionGroupConfig;
pub use ferrocket_protocol::SerializeType;
pub use instance::{parse_serialize_type, ClientConfig};
pub use message::{Message, MessageExt};
pub use producer::{Producer, ProducerBuilder, SendResult, SendStatus};
pub use reply::{reply_topic, REPLY_MESSAGE_FLAG};
pub use route::MessageQueue;
pub use transaction::LocalTransactionState;
