//! Sends ten tagged, keyed messages. `NAMESRV_ADDR=127.0.0.1:9876 cargo run --example producer`

use ferrocket_client::{ClientConfig, Message, Producer};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let producer = Producer::builder()
        .config(ClientConfig::default())
        .group("example-producer")
        .build()?;
    for i in 0..10 {
        let msg = Message::new("TopicTest", format!("hello {i}"))
            .with_tags("TagA")
            .with_keys([format!("key-{i}")]);
        let r = producer.send(msg).await?;
        println!("{:?} {} {}#{}", r.status, r.msg_id, r.queue, r.queue_offset);
    }
    producer.shutdown().await;
    Ok(())
}
