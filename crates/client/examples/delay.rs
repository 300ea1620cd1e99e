//! A message delivered after delay level 3 (10 s with the default levels).
//! `cargo run --example delay`

use ferrocket_client::{ClientConfig, Message, Producer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let producer = Producer::builder()
        .config(ClientConfig::default())
        .group("delay-producer")
        .build()?;
    let r = producer
        .send(Message::new("TopicTest", "see you in 10 s").with_delay_level(3))
        .await?;
    println!("sent {} (visible to consumers in about 10 s)", r.msg_id);
    producer.shutdown().await;
    Ok(())
}
