//! Three messages in one request, stored with consecutive offsets in one queue.
//! `cargo run --example batch`

use ferrocket_client::{ClientConfig, Message, Producer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let producer = Producer::builder()
        .config(ClientConfig::default())
        .group("batch-producer")
        .build()?;
    let batch = (0..3)
        .map(|i| Message::new("TopicTest", format!("batch {i}")))
        .collect();
    let r = producer.send_batch(batch).await?;
    println!("{} from offset {} in {}", r.msg_id, r.queue_offset, r.queue);
    producer.shutdown().await;
    Ok(())
}
