//! Sustained append throughput against the disk's own sequential write speed, in one run.
//!
//! ```sh
//! cargo run --release -p ferrocket-store --example sustained -- [DIR] [GIB] [ROUNDS] [APPENDERS]
//! ```
//!
//! Each round (alternating which goes first) writes GIB GiB with `dd bs=1M conv=fdatasync` into DIR, then appends the same number
//! of commitlog bytes as 1 KiB messages from APPENDERS threads (default one) into a fresh ASYNC_FLUSH store in DIR
//! (1 GiB segments, RocketMQ's default) and flushes it; both clocks stop when the data is on disk.
//! Prints MB/s of each and the ratio (issue 3: the store at least 70% of dd). DIR defaults to a
//! temporary directory under `target/`, on the disk the project builds on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use ferrocket_protocol::message::{names, StoredMessage};
use ferrocket_store::{FlushDiskType, MessageStore, PutStatus, StoreConfig};

fn message() -> StoredMessage {
    let mut m = StoredMessage::new("Sustained", 0, vec![b'x'; 1024]);
    m.born_timestamp = 1_700_000_000_000;
    m.born_host = SocketAddr::from(([127, 0, 0, 1], 50000));
    m.properties.insert(names::TAGS, "TagA");
    m
}

/// Seconds `dd` takes to write `mib` MiB and fdatasync them.
fn dd(dir: &Path, mib: u64) -> Result<f64> {
    let file = dir.join("dd.bin");
    let t0 = Instant::now();
    let st = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", file.display()))
        .args(["bs=1M", &format!("count={mib}"), "conv=fdatasync"])
        .stderr(std::process::Stdio::null())
        .status()
        .context("running dd")?;
    let took = t0.elapsed().as_secs_f64();
    std::fs::remove_file(&file).ok();
    if !st.success() {
        bail!("dd failed: {st}");
    }
    Ok(took)
}

/// Seconds the store takes to append `bytes` of records from `appenders` threads and flush them.
fn store(dir: &Path, bytes: u64, appenders: usize) -> Result<f64> {
    let root = dir.join("store");
    let config = StoreConfig {
        flush_disk_type: FlushDiskType::AsyncFlush,
        ..StoreConfig::with_root(&root)
    };
    let store = MessageStore::open(config).context("opening the store")?;
    let t0 = Instant::now();
    std::thread::scope(|s| -> Result<()> {
        let workers: Vec<_> = (0..appenders)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let m = message();
                    while (store.max_phy_offset() as u64) < bytes {
                        let r = store.put_message(m.clone()).wait();
                        if r.status != PutStatus::PutOk {
                            bail!("append failed: {:?}", r.status);
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().expect("appender panicked")?;
        }
        Ok(())
    })?;
    store.flush_all().context("flushing")?;
    let took = t0.elapsed().as_secs_f64();
    store.shutdown().context("shutting down")?;
    std::fs::remove_dir_all(&root).ok();
    Ok(took)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = match args.next().filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/sustained"),
    };
    let gib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(4);
    let rounds: u32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    let appenders: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bytes = gib << 30;
    let mb = bytes as f64 / 1e6;
    println!(
        "{gib} GiB per run in {}, {appenders} appender thread(s)",
        dir.display()
    );
    for round in 1..=rounds {
        // Alternate which goes first: the disk (and the host behind it) may favour either.
        let (d, s) = if round % 2 == 1 {
            let d = dd(&dir, gib << 10)?;
            (d, store(&dir, bytes, appenders)?)
        } else {
            let s = store(&dir, bytes, appenders)?;
            (dd(&dir, gib << 10)?, s)
        };
        println!(
            "round {round}: dd {:.0} MB/s ({d:.1} s), store {:.0} MB/s ({s:.1} s, {:.0} msg/s), store/dd {:.0}%",
            mb / d,
            mb / s,
            bytes as f64 / message().encoded_len() as f64 / s,
            100.0 * d / s
        );
    }
    Ok(())
}
