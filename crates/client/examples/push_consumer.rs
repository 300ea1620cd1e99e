//! Consumes TopicTest's TagA messages for 30 s. `cargo run --example push_consumer`

use std::time::Duration;

use ferrocket_client::{ClientConfig, ConsumeFrom, ConsumeResult, PushConsumer};

#[tokio::main]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let consumer = PushConsumer::builder()
        .config(ClientConfig::default())
        .group("example-consumer")
        .subscribe("TopicTest", "TagA")
        .consume_from(ConsumeFrom::First)
        .listener(|m| async move {
            println!(
                "{} {}: {}",
                m.queue,
                m.queue_offset,
                String::from_utf8_lossy(&m.body)
            );
            ConsumeResult::Success
        })
        .start()
        .await?;
    tokio::time::sleep(Duration::from_secs(30)).await;
    consumer.shutdown().await;
    Ok(())
}
