//! The machine's physical limits, measured in the same run as the benchmark: loopback TCP
//! bandwidth, sequential write with fdatasync (as `dd bs=1M conv=fdatasync`), and the rate of
//! small synchronous writes (what bounds a SYNC_FLUSH broker without group commit).

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// MB/s through one loopback TCP connection.
    pub loopback_mb_s: f64,
    /// MB/s of 1 MiB sequential writes ended by one fdatasync.
    pub disk_mb_s: f64,
    /// fdatasync'ed 4 KiB writes per second.
    pub fsync_per_s: f64,
}

fn loopback(bytes: usize) -> Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let reader = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0;
        loop {
            let n = s.read(&mut buf)?;
            if n == 0 {
                return Ok(total);
            }
            total += n;
        }
    });
    let mut s = TcpStream::connect(addr)?;
    let chunk = vec![7u8; 1 << 20];
    let t = Instant::now();
    let mut sent = 0;
    while sent < bytes {
        s.write_all(&chunk)?;
        sent += chunk.len();
    }
    drop(s);
    let got = reader.join().expect("reader thread")?;
    anyhow::ensure!(got == sent, "loopback lost bytes: sent {sent}, got {got}");
    Ok(sent as f64 / 1e6 / t.elapsed().as_secs_f64())
}

fn disk(dir: &Path, bytes: usize) -> Result<f64> {
    let path = dir.join("limits-seq.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("creating {}", path.display()))?;
    let chunk = vec![0u8; 1 << 20];
    let t = Instant::now();
    let mut written = 0;
    while written < bytes {
        f.write_all(&chunk)?;
        written += chunk.len();
    }
    f.sync_data()?;
    let rate = written as f64 / 1e6 / t.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

fn fsyncs(dir: &Path, for_: Duration) -> Result<f64> {
    let path = dir.join("limits-fsync.tmp");
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .read(true)
        .truncate(true)
        .open(&path)?;
    let block = vec![1u8; 4096];
    let t = Instant::now();
    let mut n = 0u64;
    while t.elapsed() < for_ {
        f.write_all_at(&block, (n % 256) * 4096)?;
        f.sync_data()?;
        n += 1;
    }
    let rate = n as f64 / t.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    Ok(rate)
}

/// Measures all three in `dir` (on the disk the brokers write to).
pub fn measure(dir: &Path, quick: bool) -> Result<Limits> {
    std::fs::create_dir_all(dir)?;
    let gib = if quick { 256 << 20 } else { 1 << 30 };
    Ok(Limits {
        loopback_mb_s: loopback(if quick { 1 << 30 } else { 4 << 30 })?,
        disk_mb_s: disk(dir, gib)?,
        fsync_per_s: fsyncs(dir, Duration::from_secs(if quick { 1 } else { 3 }))?,
    })
}
