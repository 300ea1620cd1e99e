//! gRPC send load (docs/performance.md): SendMessage calls of 1 KiB bodies to a running broker's
//! RocketMQ 5.x endpoint, CONNS HTTP/2 connections with INFLIGHT calls in flight on each, for
//! SECONDS; prints the rate of each second and the median, to compare with `mqbench producer`
//! (remoting) on the same broker, topic and load.
//!
//! ```sh
//! cargo build --release -p ferrocket-broker --examples
//! target/release/examples/grpc_load 127.0.0.1:8081 BenchmarkTest 10 4 16
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocket_broker::grpc::pb;
use pb::messaging_service_client::MessagingServiceClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, endpoint, topic, secs, conns, inflight] = args.as_slice() else {
        anyhow::bail!("usage: grpc_load ENDPOINT TOPIC SECONDS CONNS INFLIGHT");
    };
    let (secs, conns, inflight): (u64, usize, usize) =
        (secs.parse()?, conns.parse()?, inflight.parse()?);
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let body = vec![b'x'; 1024];
    let mut tasks = Vec::new();
    for c in 0..conns {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{endpoint}"))?
            .tcp_nodelay(true)
            .connect()
            .await?;
        for w in 0..inflight {
            let mut client = MessagingServiceClient::new(channel.clone());
            let (ok, errors, topic, body) = (
                Arc::clone(&ok),
                Arc::clone(&errors),
                topic.clone(),
                body.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while Instant::now() < end {
                    i += 1;
                    let msg = pb::Message {
                        topic: Some(pb::Resource {
                            resource_namespace: String::new(),
                            name: topic.clone(),
                        }),
                        user_properties: Default::default(),
                        system_properties: Some(pb::SystemProperties {
                            message_id: format!("01{c:04X}{w:04X}{i:016X}"),
                            message_type: pb::MessageType::Normal as i32,
                            body_encoding: pb::Encoding::Identity as i32,
                            ..Default::default()
                        }),
                        body: body.clone(),
                    };
                    let r = client
                        .send_message(pb::SendMessageRequest {
                            messages: vec![msg],
                        })
                        .await;
                    match r {
                        Ok(r)
                            if r.get_ref().status.as_ref().map(|s| s.code)
                                == Some(pb::Code::Ok as i32) =>
                        {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    let mut rates = Vec::new();
    let mut last = 0;
    for s in 1..=secs {
        tokio::time::sleep_until((end - Duration::from_secs(secs - s)).into()).await;
        let now = ok.load(Ordering::Relaxed);
        println!("{s:>3}s {:>9} msg/s", now - last);
        rates.push(now - last);
        last = now;
    }
    for t in tasks {
        let _ = t.await;
    }
    rates.sort_unstable();
    println!(
        "total {} messages in {secs} s, median {} msg/s, errors {}",
        ok.load(Ordering::Relaxed),
        rates[rates.len() / 2],
        errors.load(Ordering::Relaxed)
    );
    Ok(())
}
