//! Orders of one customer go to one queue and are consumed in order by an orderly listener.
//! `cargo run --example ordered`

use std::time::Duration;

use ferrocket_client::{ClientConfig, ConsumeFrom, ConsumeResult, Message, Producer, PushConsumer};

#[tokio::main]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let producer = Producer::builder()
        .config(ClientConfig::default())
        .group("ordered-producer")
        .build()?;
    for customer in ["alice", "bob"] {
        for step in ["created", "paid", "shipped"] {
            let m = Message::new("OrderTopic", format!("{customer}: {step}"));
            producer.send_ordered(m, customer).await?;
        }
    }
    let consumer = PushConsumer::builder()
        .config(ClientConfig::default())
        .group("ordered-consumer")
        .subscribe("OrderTopic", "*")
        .consume_from(ConsumeFrom::First)
        .orderly_listener(|m| async move {
            println!("{}: {}", m.queue, String::from_utf8_lossy(&m.body));
            ConsumeResult::Success
        })
        .start()
        .await?;
    tokio::time::sleep(Duration::from_secs(10)).await;
    consumer.shutdown().await;
    producer.shutdown().await;
    Ok(())
}
