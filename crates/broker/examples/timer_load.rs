//! Timer benchmark (docs/performance.md): a real `mqnamesrv` and `mqbroker`, COUNT messages sent
//! with `TIMER_DELIVER_MS` spread evenly over SPREAD seconds starting LEAD seconds after the
//! start (so all of them are pending in the wheel before the first falls due), then consumed.
//! Reports send rate, the broker's resident memory with everything pending, and how late each
//! message was stored in its real topic (store timestamp minus due time) and seen by a consumer.
//!
//! ```sh
//! cargo build --release -p ferrocket-namesrv -p ferrocket-broker --bins --examples
//! target/release/examples/timer_load target/release/mqnamesrv target/release/mqbroker 1000000 30 60
//! ```

use std::collections::HashSet;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocket_client::{ClientConfig, ConsumeFrom, Message, Producer, PullConsumer};
use ferrocket_testkit::{free_port, wait_for_port, ProcessGuard, TempDir};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn pct(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (ns_bin, broker_bin) = (
        args.get(1).expect("mqnamesrv path"),
        args.get(2).expect("mqbroker path"),
    );
    let count: u64 = args
        .get(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let spread: i64 = args.get(4).and_then(|a| a.parse().ok()).unwrap_or(30);
    let lead: i64 = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(60);

    let dir = TempDir::new("timer-load");
    let ns_port = free_port();
    let ns = format!("127.0.0.1:{ns_port}");
    let ns_conf = dir.path().join("namesrv.properties");
    std::fs::write(
        &ns_conf,
        format!(
            "listenPort={ns_port}\nbindAddress=127.0.0.1\nkvConfigPath={}\n",
            dir.path().join("kv.json").display()
        ),
    )?;
    let _ns = ProcessGuard::spawn(
        "mqnamesrv",
        Command::new(ns_bin)
            .arg("-c")
            .arg(&ns_conf)
            .env("RUST_LOG", "warn"),
    );
    wait_for_port(&ns, Duration::from_secs(10));
    let port = loop {
        let p = free_port();
        if p > 1030 && std::net::TcpListener::bind(("127.0.0.1", p - 2)).is_ok() {
            break p;
        }
    };
    let conf = dir.path().join("broker.conf");
    std::fs::write(
        &conf,
        format!(
            "brokerClusterName=Bench\nbrokerName=timer-bench\nbrokerId=0\nbrokerIP1=127.0.0.1\n\
             listenPort={port}\nnamesrvAddr={ns}\nstorePathRootDir={}\n",
            dir.path().join("store").display()
        ),
    )?;
    let broker = ProcessGuard::spawn(
        "mqbroker",
        Command::new(broker_bin)
            .arg("-c")
            .arg(&conf)
            .env("RUST_LOG", "warn"),
    );
    wait_for_port(&format!("127.0.0.1:{port}"), Duration::from_secs(30));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_mib(broker.pid());

    let cfg = ClientConfig::new(ns.clone());
    let producer = Arc::new(
        Producer::builder()
            .config(cfg.clone())
            .group("timer_bench")
            .build()?,
    );
    let topic = "TimerBench";
    let start_ms = now_ms();
    let first_due = start_ms + lead * 1000;
    let step = (spread * 1000) as f64 / count as f64;
    let tasks = 64u64;
    let sent = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let producer = Arc::clone(&producer);
        let sent = Arc::clone(&sent);
        handles.push(tokio::spawn(async move {
            let mut i = t;
            while i < count {
                let due = first_due + (i as f64 * step) as i64;
                let msg = Message::new(topic, vec![b'x'; 100]).with_deliver_time_ms(due);
                if producer.send(msg).await.is_ok() {
                    sent.fetch_add(1, Ordering::Relaxed);
                }
                i += tasks;
            }
        }));
    }
    for h in handles {
        h.await?;
    }
    let send_secs = t0.elapsed().as_secs_f64();
    let sent = sent.load(Ordering::Relaxed);
    let pending_rss = rss_mib(broker.pid());
    let all_pending = now_ms() < first_due;
    println!(
        "sent {sent} timer messages in {send_secs:.1} s ({:.0} msg/s); all pending before the first was due: {all_pending}",
        sent as f64 / send_secs
    );
    println!("broker RSS: idle {idle_rss:.1} MiB, with {sent} pending {pending_rss:.1} MiB");

    let consumer = PullConsumer::builder()
        .config(cfg)
        .group("timer_bench_consumer")
        .consume_from(ConsumeFrom::First)
        .batch(32)
        .build()?;
    consumer.subscribe(topic, "*").await?;
    let mut stored_late = Vec::with_capacity(sent as usize);
    let mut seen_late = Vec::with_capacity(sent as usize);
    let mut ids = HashSet::with_capacity(sent as usize);
    let mut dups = 0u64;
    let deadline = Instant::now() + Duration::from_secs((lead + spread + 120) as u64);
    while (ids.len() as u64) < sent && Instant::now() < deadline {
        let got = consumer.poll(Duration::from_secs(1)).await?;
        let now = now_ms();
        for m in got {
            let Some(due) = m
                .property("TIMER_DELIVER_MS")
                .and_then(|d| d.parse::<i64>().ok())
            else {
                continue;
            };
            if !ids.insert(m.msg_id.clone()) {
                dups += 1;
            }
            stored_late.push(m.store_timestamp - due);
            seen_late.push(now - due);
        }
    }
    stored_late.sort_unstable();
    seen_late.sort_unstable();
    let early = stored_late.iter().filter(|l| **l < 0).count();
    println!(
        "delivered {} of {sent} (duplicates {dups}, early {early}); stored-late ms p50 {} p99 {} max {}; seen-by-consumer-late ms p50 {} p99 {} max {}",
        ids.len(),
        pct(&stored_late, 0.5),
        pct(&stored_late, 0.99),
        stored_late.last().copied().unwrap_or(0),
        pct(&seen_late, 0.5),
        pct(&seen_late, 0.99),
        seen_late.last().copied().unwrap_or(0),
    );
    producer.shutdown().await;
    Ok(())
}
