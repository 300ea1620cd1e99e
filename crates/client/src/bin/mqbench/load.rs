//! The load tasks: producers in each send mode, and a consumer.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use bytes::Bytes;
use ferrocket_client::{ClientConfig, ClientError, ConsumeFrom, Message, Producer, PullConsumer};
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::task::JoinHandle;

use crate::{Mode, ProducerArgs, Shared};

fn config(base: &ClientConfig, role: &str, i: usize) -> ClientConfig {
    base.clone()
        .instance_name(format!("mqbench-{role}-{}-{i}", std::process::id()))
}

fn error_key(e: &ClientError) -> String {
    e.response_code()
        .map_or_else(|| "transport".to_string(), |c| c.to_string())
}

/// Counts a finished send of `n` messages; `record` says whether its latency is the figure.
async fn account(
    s: &Shared,
    t: Instant,
    n: u64,
    body: usize,
    r: Result<(), ClientError>,
    record: bool,
) {
    match r {
        Ok(()) => {
            if record {
                s.hist.record(t.elapsed().as_micros() as u64);
                s.stats.msgs.fetch_add(n, Ordering::Relaxed);
                s.stats.bytes.fetch_add(n * body as u64, Ordering::Relaxed);
            }
        }
        Err(e) => {
            let key = error_key(&e);
            if s.stats.first_of(&key) {
                eprintln!("mqbench: first {key} error: {e}");
            }
            s.stats.error(key);
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Spreads sends evenly over time at a fixed total rate.
struct Pacer {
    start: tokio::time::Instant,
    rate: u64,
    next: std::sync::atomic::AtomicU64,
}

impl Pacer {
    /// Waits for the scheduled start of the next `n` messages.
    async fn slot(&self, n: u64) {
        let k = self.next.fetch_add(n, Ordering::Relaxed);
        let due = self.start + Duration::from_nanos(k.saturating_mul(1_000_000_000) / self.rate);
        tokio::time::sleep_until(due).await;
    }
}

/// Starts the producers. With `record` false (e2e) they load the broker but the consumer's
/// figures are the ones reported.
pub fn producers(
    base: &ClientConfig,
    topic: &str,
    a: &ProducerArgs,
    shared: &Arc<Shared>,
    record: bool,
) -> Result<Vec<JoinHandle<()>>> {
    let body = Bytes::from(vec![b'x'; a.size]);
    let mut tasks = Vec::new();
    let pacer = a.rate.filter(|&r| r > 0).map(|rate| {
        Arc::new(Pacer {
            start: tokio::time::Instant::now(),
            rate,
            next: std::sync::atomic::AtomicU64::new(0),
        })
    });
    for c in 0..a.connections.max(1) {
        let p = Producer::builder()
            .config(config(base, "p", c))
            .group("benchmark_producer")
            .build()?;
        let per_conn_tasks = match a.mode {
            Mode::Async => 1,
            _ => a.window.max(1),
        };
        for _ in 0..per_conn_tasks {
            let (p, body, topic, s) = (p.clone(), body.clone(), topic.to_string(), shared.clone());
            let (mode, batch, window) = (a.mode, a.batch.max(1), a.window.max(1));
            let pacer = pacer.clone();
            tasks.push(tokio::spawn(async move {
                let msg = || Message::new(&topic, body.clone());
                if let Mode::Async = mode {
                    let mut inflight = FuturesUnordered::new();
                    while s.running() {
                        while inflight.len() < window {
                            let p = &p;
                            let m = msg();
                            inflight.push(async move {
                                let t = Instant::now();
                                (t, p.send(m).await.map(|_| ()))
                            });
                        }
                        if let Some((t, r)) = inflight.next().await {
                            account(&s, t, 1, body.len(), r, record).await;
                        }
                    }
                    return;
                }
                while s.running() {
                    if let Some(pc) = &pacer {
                        pc.slot(if let Mode::Batch = mode {
                            batch as u64
                        } else {
                            1
                        })
                        .await;
                    }
                    let t = Instant::now();
                    let (n, r) = match mode {
                        Mode::Oneway => (1, p.send_oneway(msg()).await),
                        Mode::Batch => {
                            let msgs = (0..batch).map(|_| msg()).collect();
                            (batch as u64, p.send_batch(msgs).await.map(|_| ()))
                        }
                        _ => (1, p.send(msg()).await.map(|_| ())),
                    };
                    account(&s, t, n, body.len(), r, record).await;
                }
            }));
        }
    }
    Ok(tasks)
}

/// Starts one pull consumer: from the first offset (a backlog), or with `e2e` from the queue
/// ends, recording each message's age (now - born timestamp) instead of the poll's time.
pub async fn consumer(
    base: &ClientConfig,
    topic: &str,
    group: &str,
    shared: &Arc<Shared>,
    e2e: bool,
) -> Result<Vec<JoinHandle<()>>> {
    let c = PullConsumer::builder()
        .config(config(base, "c", 0))
        .group(group)
        .consume_from(if e2e {
            ConsumeFrom::Last
        } else {
            ConsumeFrom::First
        })
        .use_committed(false)
        .batch(32)
        .build()?;
    c.subscribe(topic, "*").await?;
    if e2e {
        // Resolve the starting offsets before any message is sent.
        let _ = c.poll(Duration::from_millis(10)).await;
    }
    let s = shared.clone();
    Ok(vec![tokio::spawn(async move {
        while s.running() {
            let t = Instant::now();
            match c.poll(Duration::from_millis(200)).await {
                Ok(msgs) => {
                    let now_us = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_micros() as i64)
                        .unwrap_or(0);
                    if e2e {
                        for m in &msgs {
                            s.hist
                                .record((now_us - m.born_timestamp * 1000).max(0) as u64);
                        }
                    } else if !msgs.is_empty() {
                        s.hist.record(t.elapsed().as_micros() as u64);
                    }
                    let b: usize = msgs.iter().map(|m| m.body.len()).sum();
                    s.stats.msgs.fetch_add(msgs.len() as u64, Ordering::Relaxed);
                    s.stats.bytes.fetch_add(b as u64, Ordering::Relaxed);
                }
                Err(e) => s.stats.error(e.to_string()),
            }
        }
    })])
}
