//! DLedger failover benchmark (docs/performance.md): a three-node group as processes on
//! 127.0.0.11-13 (127.0.N.x for later groups), one producer sending continuously, and KILLS leader kills (SIGKILL), each
//! followed by a restart of the killed node once sends resume. Reports, per kill, the time from
//! the kill to the first successful send begun after it, then median and max, and checks that every
//! acknowledged message is on the final leader.
//!
//! ```sh
//! cargo build --release -p ferrocket-namesrv -p ferrocket-broker --bins --examples
//! target/release/examples/dledger_failover 20
//! ```

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferrocket_client::{ClientConfig, Message, Producer, SendStatus};
use ferrocket_protocol::{RemotingCommand, RequestCode};
use ferrocket_testkit::dledger::{all_bodies, Group, TOPIC};
use ferrocket_testkit::RawClient;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let kills: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    let mut c = RawClient::connect(&g.nodes[leader].addr())?;
    let r = c.call(
        RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
            .with_ext("topic", TOPIC)
            .with_ext("readQueueNums", 4)
            .with_ext("writeQueueNums", 4)
            .with_ext("perm", 6),
    )?;
    anyhow::ensure!(r.code == 0, "create topic: {:?}", r.remark);
    tokio::time::sleep(Duration::from_secs(4)).await;

    let producer = Producer::builder()
        .config(ClientConfig::new(g.namesrv.clone()))
        .group("failover_bench")
        .retries(4)
        .build()?;
    // (send started, acknowledged, body)
    let acked: Arc<Mutex<Vec<(Instant, Instant, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let body = format!("f-{i}");
                i += 1;
                let started = Instant::now();
                match producer
                    .send(Message::new(TOPIC, body.clone().into_bytes()))
                    .await
                {
                    Ok(r) if r.status == SendStatus::SendOk => {
                        acked.lock().unwrap().push((started, Instant::now(), body));
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            producer.shutdown().await;
        })
    };

    let mut times = Vec::new();
    for k in 0..kills {
        let leader = g.leader(Duration::from_secs(30));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let killed_at = Instant::now();
        g.nodes[leader].kill();
        let resumed = loop {
            let first = acked
                .lock()
                .unwrap()
                .iter()
                .rev()
                .take_while(|(started, _, _)| *started > killed_at)
                .last()
                .map(|(_, done, _)| *done);
            if let Some(t) = first {
                break t;
            }
            anyhow::ensure!(
                killed_at.elapsed() < Duration::from_secs(60),
                "no send succeeded within 60 s of kill {k}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let took = resumed - killed_at;
        println!(
            "kill {:>2}: leader n{leader}, sends resumed after {took:?}",
            k + 1
        );
        times.push(took);
        g.nodes[leader].start();
    }
    stop.store(true, Ordering::Relaxed);
    sender.await?;

    let leader = g.leader(Duration::from_secs(30));
    let held: HashSet<String> = all_bodies(&g.messages_on(leader)).into_iter().collect();
    let acked = acked.lock().unwrap();
    let lost = acked.iter().filter(|(_, _, b)| !held.contains(b)).count();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{} kills: kill-to-first-successful-send median {:.0} ms, max {:.0} ms, min {:.0} ms; \
         {} acknowledged messages, {lost} lost",
        times.len(),
        ms(times[times.len() / 2]),
        ms(*times.last().unwrap()),
        ms(times[0]),
        acked.len()
    );
    anyhow::ensure!(lost == 0, "{lost} acknowledged messages lost");
    Ok(())
}
