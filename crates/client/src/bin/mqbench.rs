//! `mqbench`: load for any RocketMQ-compatible cluster, through the client crate.
//!
//! `mqbench producer -n NS -t TOPIC -s 1024 -c 4 -w 16 -d 10 [--mode sync|oneway|batch]`
//! `mqbench consumer -n NS -t TOPIC -g GROUP -d 10` (pulls the topic's backlog from its start)
//!
//! Each second: messages/s, MB/s, latency p50/p99/p999/max, errors by code; at the end a
//! summary (text, or JSON with `--json`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use ferrocket_client::{ClientConfig, ConsumeFrom, Message, Producer, PullConsumer};

#[derive(Debug, Parser)]
#[command(
    name = "mqbench",
    version,
    about = "Load generator for RocketMQ-compatible clusters"
)]
struct Cli {
    #[arg(short = 'n', long = "namesrvAddr", global = true)]
    namesrv: Option<String>,
    #[arg(short = 't', long, global = true, default_value = "BenchmarkTest")]
    topic: String,
    /// Seconds to run.
    #[arg(short = 'd', long, global = true, default_value_t = 10)]
    duration: u64,
    /// Stop after this many messages instead.
    #[arg(long, global = true)]
    count: Option<u64>,
    /// Final summary as JSON.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Sync,
    Oneway,
    Batch,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Producer {
        /// Body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Connections (one producer instance each).
        #[arg(short = 'c', long, default_value_t = 4)]
        connections: usize,
        /// Sends in flight per connection.
        #[arg(short = 'w', long, default_value_t = 16)]
        window: usize,
        #[arg(long, value_enum, default_value_t = Mode::Sync)]
        mode: Mode,
        /// Messages per batch in batch mode.
        #[arg(long, default_value_t = 16)]
        batch: usize,
    },
    Consumer {
        #[arg(short = 'g', long, default_value = "benchmark_consumer")]
        group: String,
    },
}

/// Latency histogram: buckets 5% wide from 1 µs to ~1 h.
struct Hist {
    buckets: Vec<AtomicU64>,
    max: AtomicU64,
}

const GROWTH: f64 = 1.05;

impl Hist {
    fn new() -> Self {
        Hist {
            buckets: (0..460).map(|_| AtomicU64::new(0)).collect(),
            max: AtomicU64::new(0),
        }
    }
    fn record(&self, us: u64) {
        let i = ((us.max(1) as f64).ln() / GROWTH.ln()) as usize;
        self.buckets[i.min(self.buckets.len() - 1)].fetch_add(1, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }
    /// (p50, p99, p999, max) in µs, and resets.
    fn take(&self) -> [u64; 4] {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.swap(0, Ordering::Relaxed))
            .collect();
        let max = self.max.swap(0, Ordering::Relaxed);
        let total: u64 = counts.iter().sum();
        let q = |p: f64| {
            let want = (total as f64 * p).ceil() as u64;
            let mut seen = 0;
            for (i, c) in counts.iter().enumerate() {
                seen += c;
                if seen >= want.max(1) {
                    return GROWTH.powi(i as i32 + 1) as u64;
                }
            }
            0
        };
        if total == 0 {
            return [0; 4];
        }
        [q(0.5), q(0.99), q(0.999), max]
    }
}

#[derive(Default)]
struct Stats {
    msgs: AtomicU64,
    bytes: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build();
    match rt
        .map_err(anyhow::Error::from)
        .and_then(|rt| rt.block_on(run(cli)))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqbench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    let stats = Arc::new(Stats::default());
    let hist = Arc::new(Hist::new());
    let stop = Arc::new(AtomicBool::new(false));
    let limit = cli.count.unwrap_or(u64::MAX);
    let config = |i: usize| {
        ClientConfig {
            namesrv_addr: cli.namesrv.clone(),
            ..ClientConfig::default()
        }
        .instance_name(format!("mqbench-{}-{i}", std::process::id()))
    };
    let mut tasks = Vec::new();
    let size;
    match cli.cmd {
        Cmd::Producer {
            size: s,
            connections,
            window,
            mode,
            batch,
        } => {
            size = s;
            let body = bytes::Bytes::from(vec![b'x'; s]);
            for c in 0..connections.max(1) {
                let p = Producer::builder()
                    .config(config(c))
                    .group("benchmark_producer")
                    .build()?;
                for _ in 0..window.max(1) {
                    let (p, body, topic) = (p.clone(), body.clone(), cli.topic.clone());
                    let (stats, hist, stop) = (stats.clone(), hist.clone(), stop.clone());
                    tasks.push(tokio::spawn(async move {
                        while !stop.load(Ordering::Relaxed)
                            && stats.msgs.load(Ordering::Relaxed) < limit
                        {
                            let t = Instant::now();
                            let (n, r) = match mode {
                                Mode::Sync => (
                                    1,
                                    p.send(Message::new(&topic, body.clone())).await.map(|_| ()),
                                ),
                                Mode::Oneway => {
                                    (1, p.send_oneway(Message::new(&topic, body.clone())).await)
                                }
                                Mode::Batch => {
                                    let msgs = (0..batch)
                                        .map(|_| Message::new(&topic, body.clone()))
                                        .collect();
                                    (batch as u64, p.send_batch(msgs).await.map(|_| ()))
                                }
                            };
                            match r {
                                Ok(()) => {
                                    hist.record(t.elapsed().as_micros() as u64);
                                    stats.msgs.fetch_add(n, Ordering::Relaxed);
                                    stats
                                        .bytes
                                        .fetch_add(n * body.len() as u64, Ordering::Relaxed);
                                }
                                Err(e) => {
                                    let key = e
                                        .response_code()
                                        .map_or_else(|| "transport".to_string(), |c| c.to_string());
                                    *stats
                                        .errors
                                        .lock()
                                        .unwrap_or_else(|e| e.into_inner())
                                        .entry(key)
                                        .or_default() += 1;
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                }
                            }
                        }
                    }));
                }
            }
        }
        Cmd::Consumer { group } => {
            size = 0;
            let c = PullConsumer::builder()
                .config(config(0))
                .group(group)
                .consume_from(ConsumeFrom::First)
                .use_committed(false)
                .batch(32)
                .build()?;
            c.subscribe(&cli.topic, "*").await?;
            let (stats, hist, stop) = (stats.clone(), hist.clone(), stop.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) && stats.msgs.load(Ordering::Relaxed) < limit {
                    let t = Instant::now();
                    match c.poll(Duration::from_millis(200)).await {
                        Ok(msgs) => {
                            hist.record(t.elapsed().as_micros() as u64);
                            let b: usize = msgs.iter().map(|m| m.body.len()).sum();
                            stats.msgs.fetch_add(msgs.len() as u64, Ordering::Relaxed);
                            stats.bytes.fetch_add(b as u64, Ordering::Relaxed);
                        }
                        Err(e) => {
                            *stats
                                .errors
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .entry(e.to_string())
                                .or_default() += 1;
                        }
                    }
                }
            }));
        }
    }

    let started = Instant::now();
    let mut per_sec = Vec::new();
    let mut last = 0u64;
    let mut last_bytes = 0u64;
    while started.elapsed() < Duration::from_secs(cli.duration)
        && stats.msgs.load(Ordering::Relaxed) < limit
    {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (m, b) = (
            stats.msgs.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
        );
        let [p50, p99, p999, max] = hist.take();
        let errors = stats
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let rate = m - last;
        per_sec.push((rate, p50, p99, p999, max));
        if !cli.json {
            println!(
                "{:>4}s  {:>9} msg/s  {:>7.1} MB/s  p50 {:>6} µs  p99 {:>7} µs  p999 {:>7} µs  max {:>8} µs  errors {:?}",
                per_sec.len(),
                rate,
                (b - last_bytes) as f64 / 1e6,
                p50,
                p99,
                p999,
                max,
                errors
            );
        }
        last = m;
        last_bytes = b;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let total = stats.msgs.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let mut rates: Vec<u64> = per_sec.iter().map(|s| s.0).collect();
    rates.sort_unstable();
    let median = rates.get(rates.len() / 2).copied().unwrap_or(0);
    let mut p99s: Vec<u64> = per_sec.iter().map(|s| s.2).collect();
    p99s.sort_unstable();
    let p99 = p99s.get(p99s.len() / 2).copied().unwrap_or(0);
    let errors = stats
        .errors
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "messages": total, "seconds": secs, "avg_msgs_per_sec": total as f64 / secs,
                "median_msgs_per_sec": median, "median_p99_us": p99, "size": size, "errors": errors,
            })
        );
    } else {
        println!(
            "total {total} messages in {secs:.1} s: avg {:.0} msg/s, median {median} msg/s, median p99 {p99} µs, errors {errors:?}",
            total as f64 / secs
        );
    }
    Ok(())
}
