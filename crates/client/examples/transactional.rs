//! A transactional send: the message stays invisible until the local transaction commits; if the
//! outcome is unknown, the broker asks the checker later. `cargo run --example transactional`

use std::time::Duration;

use ferrocket_client::{ClientConfig, LocalTransactionState, Message, Producer};

#[tokio::main]
async fn main() -> Result<(), ferrocket_client::ClientError> {
    let producer = Producer::builder()
        .config(ClientConfig::default())
        .group("tx-producer")
        .build()?;
    // Asked by the broker about transactions left unknown (after transactionTimeOut).
    producer.set_transaction_checker(|m| {
        println!("broker asks about {}", m.msg_id);
        LocalTransactionState::Commit
    });
    let (sent, state) = producer
        .send_in_transaction(Message::new("TopicTest", "order 42 paid"), |r| {
            println!(
                "half message {} stored; running the local transaction",
                r.msg_id
            );
            async { LocalTransactionState::Unknown }
        })
        .await?;
    println!("{} ended as {state:?}; waiting for the check", sent.msg_id);
    tokio::time::sleep(Duration::from_secs(15)).await;
    producer.shutdown().await;
    Ok(())
}
