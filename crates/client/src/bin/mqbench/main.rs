//! `mqbench`: load for any RocketMQ-compatible cluster, through the client crate.
//!
//! `mqbench producer -n NS -t TOPIC -s 1024 -c 4 -w 16 -d 10 [--mode sync|async|oneway|batch]`
//! `mqbench consumer -n NS -t TOPIC -g GROUP -d 10` (pulls the topic's backlog from its start)
//! `mqbench e2e -n NS -t TOPIC -s 1024 -c 4 -w 16 -d 10` (sends and consumes at once; the
//! latency is from the producer's born timestamp to the consumer)
//!
//! Each second: messages/s, MB/s, latency p50/p99/p999/max, errors by code (a live line on a
//! terminal); at the end a summary (text, or JSON with `--json`). `--serialize-type rocketmq`
//! sends RocketMQ's binary headers instead of JSON. Whether the broker flushes
//! synchronously is the broker's `flushDiskType`; `cargo xtask bench` runs both.

mod hist;
mod load;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

use ferrocket_client::{parse_serialize_type, ClientConfig, SerializeType};
use hist::Hist;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn serialize_type(s: &str) -> std::result::Result<SerializeType, String> {
    parse_serialize_type(s).ok_or_else(|| format!("{s}: expected json or rocketmq"))
}

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
    /// Runtime worker threads (default: one per core). On a host shared with the broker, 1
    /// leaves it more of the CPU and saves cross-thread wake-ups.
    #[arg(long, global = true)]
    threads: Option<usize>,
    /// Request headers as RocketMQ's `json` or its binary `rocketmq` serialization (default:
    /// `ROCKETMQ_SERIALIZE_TYPE`, else json, as Java clients).
    #[arg(long, global = true, value_parser = serialize_type)]
    serialize_type: Option<SerializeType>,
    #[command(subcommand)]
    cmd: Cmd,
}

/// How the producer sends.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Mode {
    /// `window` tasks per connection, each waiting for its answer before the next send.
    Sync,
    /// One task per connection keeping `window` sends in flight (callbacks in Java terms).
    Async,
    /// Fire and forget.
    Oneway,
    /// `--batch` messages per request.
    Batch,
}

/// Producer settings shared by `producer` and `e2e`.
#[derive(Debug, Clone, clap::Args)]
pub struct ProducerArgs {
    /// Body size in bytes.
    #[arg(short = 's', long, default_value_t = 1024)]
    pub size: usize,
    /// Connections (one producer instance each).
    #[arg(short = 'c', long, default_value_t = 4)]
    pub connections: usize,
    /// Sends in flight per connection.
    #[arg(short = 'w', long, default_value_t = 16)]
    pub window: usize,
    #[arg(long, value_enum, default_value_t = Mode::Sync)]
    pub mode: Mode,
    /// Messages per batch in batch mode.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Target messages per second over all connections (sync, oneway and batch modes): sends
    /// start on a fixed schedule (the timer's resolution is 1 ms, so they start in small
    /// bursts), at most `window` in flight per connection; latency counts from each send's
    /// actual start. Default: as fast as the window allows.
    #[arg(long)]
    pub rate: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    Producer(ProducerArgs),
    Consumer {
        #[arg(short = 'g', long, default_value = "benchmark_consumer")]
        group: String,
    },
    E2e {
        #[command(flatten)]
        producer: ProducerArgs,
        #[arg(short = 'g', long, default_value = "benchmark_e2e")]
        group: String,
    },
}

/// Counters the load tasks update and the reporter reads.
#[derive(Default)]
pub struct Stats {
    pub msgs: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: Mutex<BTreeMap<String, u64>>,
}

impl Stats {
    pub fn error(&self, key: String) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// True the first time an error of kind `key` is seen (its text is worth printing once).
    pub fn first_of(&self, key: &str) -> bool {
        !self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    fn errors(&self) -> BTreeMap<String, u64> {
        self.errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// What the load tasks share.
pub struct Shared {
    pub stats: Stats,
    pub hist: Hist,
    pub stop: AtomicBool,
    pub limit: u64,
}

impl Shared {
    pub fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.stats.msgs.load(Ordering::Relaxed) < self.limit
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = cli.threads {
        rt.worker_threads(n.max(1));
    }
    let rt = rt.enable_all().build();
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

/// Median of a column of the per-second samples.
fn median(per_sec: &[[u64; 5]], col: usize) -> u64 {
    let mut v: Vec<u64> = per_sec.iter().map(|s| s[col]).collect();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

async fn run(cli: Cli) -> Result<()> {
    let shared = Arc::new(Shared {
        stats: Stats::default(),
        hist: Hist::new(),
        stop: AtomicBool::new(false),
        limit: cli.count.unwrap_or(u64::MAX),
    });
    let base = ClientConfig {
        namesrv_addr: cli.namesrv.clone(),
        serialize_type: cli.serialize_type,
        ..ClientConfig::default()
    };
    let (tasks, size) = match &cli.cmd {
        Cmd::Producer(p) => (
            load::producers(&base, &cli.topic, p, &shared, true)?,
            p.size,
        ),
        Cmd::Consumer { group } => (
            load::consumer(&base, &cli.topic, group, &shared, false).await?,
            0,
        ),
        Cmd::E2e { producer, group } => {
            // Consume first, from the queue ends, then send: the latency is end to end.
            let mut tasks = load::consumer(&base, &cli.topic, group, &shared, true).await?;
            tasks.extend(load::producers(
                &base, &cli.topic, producer, &shared, false,
            )?);
            (tasks, producer.size)
        }
    };

    let live = !cli.json && std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut per_sec: Vec<[u64; 5]> = Vec::new();
    let (mut last, mut last_bytes) = (0u64, 0u64);
    while started.elapsed() < Duration::from_secs(cli.duration) && shared.running() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = shared.stats.msgs.load(Ordering::Relaxed);
        let b = shared.stats.bytes.load(Ordering::Relaxed);
        let [p50, p99, p999, max] = shared.hist.take();
        let rate = m - last;
        per_sec.push([rate, p50, p99, p999, max]);
        if !cli.json {
            let line = format!(
                "{:>4}s  {:>9} msg/s  {:>7.1} MB/s  p50 {:>6} µs  p99 {:>7} µs  p999 {:>7} µs  max {:>8} µs  errors {:?}",
                per_sec.len(),
                rate,
                (b - last_bytes) as f64 / 1e6,
                p50,
                p99,
                p999,
                max,
                shared.stats.errors()
            );
            if live {
                print!("\r{line}\x1b[K");
                let _ = std::io::stdout().flush();
            } else {
                println!("{line}");
            }
        }
        last = m;
        last_bytes = b;
    }
    if live {
        println!();
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let total = shared.stats.msgs.load(Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let (rate, p50, p99, p999) = (
        median(&per_sec, 0),
        median(&per_sec, 1),
        median(&per_sec, 2),
        median(&per_sec, 3),
    );
    let max = per_sec.iter().map(|s| s[4]).max().unwrap_or(0);
    let errors = shared.stats.errors();
    if cli.json {
        println!(
            "{}",
            serde_json::json!({
                "messages": total, "seconds": secs, "avg_msgs_per_sec": total as f64 / secs,
                "median_msgs_per_sec": rate, "median_p50_us": p50, "median_p99_us": p99,
                "median_p999_us": p999, "max_us": max, "size": size, "errors": errors,
            })
        );
    } else {
        println!(
            "total {total} messages in {secs:.1} s: avg {:.0} msg/s, median {rate} msg/s, median p50 {p50} µs, p99 {p99} µs, p999 {p999} µs, max {max} µs, errors {errors:?}",
            total as f64 / secs
        );
    }
    Ok(())
}
