//! Store benchmarks: 1 KiB appends with ASYNC_FLUSH (one appender), SYNC_FLUSH group commit with
//! 64 concurrent appenders, and reading 32 messages from a queue.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocket_protocol::message::{names, StoredMessage};
use ferrocket_store::{FlushDiskType, GetStatus, MessageStore, PutFuture, PutStatus, StoreConfig};

fn config(root: &std::path::Path, flush: FlushDiskType) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: 256 * 1024 * 1024,
        flush_disk_type: flush,
        max_hash_slot_num: 100_000,
        max_index_num: 400_000,
        ..StoreConfig::with_root(root)
    }
}

fn message(topic: &str, queue_id: i32, len: usize) -> StoredMessage {
    let mut m = StoredMessage::new(topic, queue_id, vec![b'x'; len]);
    m.born_timestamp = 1_700_000_000_000;
    m.born_host = SocketAddr::from(([127, 0, 0, 1], 50000));
    m.store_host = SocketAddr::from(([127, 0, 0, 1], 10911));
    m.properties.insert(names::TAGS, "TagA");
    m.properties.insert(
        names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
        "7F0000010001000000000000000A0001",
    );
    m
}

/// One appender into resident segments: each sample gets a fresh store whose segment is large
/// enough for all of the sample's appends, and the pages those appends will touch are faulted in
/// before the clock starts (first-touch page zeroing is the kernel's cost of fresh memory, measured
/// apart by the `sustained` example).
fn append_async(c: &mut Criterion) {
    let m = message("BenchAsync", 0, 1024);
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(1));
    g.bench_function("1KiB_async_flush_single_appender", |b| {
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let mut cfg = config(dir.path(), FlushDiskType::AsyncFlush);
            let record = m.encoded_len() as u64;
            let need = (iters + 1) * record;
            cfg.mapped_file_size_commit_log = need.next_power_of_two().clamp(64 << 20, 1 << 30);
            let store = MessageStore::open(cfg).unwrap();
            assert_eq!(store.put_message(m.clone()).wait().status, PutStatus::PutOk);
            store.prefault_ahead(need as usize);
            let t0 = Instant::now();
            for _ in 0..iters {
                let r = store.put_message(m.clone()).wait();
                assert_eq!(r.status, PutStatus::PutOk);
            }
            let took = t0.elapsed();
            store.abandon();
            took
        })
    });
    g.finish();
}

fn append_sync_group_commit(c: &mut Criterion) {
    const APPENDERS: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MessageStore::open(config(dir.path(), FlushDiskType::SyncFlush)).unwrap());
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(APPENDERS as u64));
    // One iteration = every one of 64 threads appends one 1 KiB message and waits for its fsync.
    g.bench_function("1KiB_sync_flush_64_appenders", |b| {
        b.iter_custom(|iters| {
            let start = Arc::new(Barrier::new(APPENDERS + 1));
            let threads: Vec<_> = (0..APPENDERS)
                .map(|t| {
                    let store = Arc::clone(&store);
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        let m = message("BenchSync", (t % 8) as i32, 1024);
                        start.wait();
                        for _ in 0..iters {
                            let r = store.put_message(m.clone()).wait();
                            assert_eq!(r.status, PutStatus::PutOk);
                        }
                    })
                })
                .collect();
            start.wait();
            let t0 = Instant::now();
            for t in threads {
                t.join().unwrap();
            }
            t0.elapsed()
        })
    });
    g.finish();
}

/// The broker's shape: one thread keeps 64 SYNC_FLUSH appends in flight (as 64 in-flight send
/// requests on async connections do: each answer lets the next request in); one iteration = 64
/// messages.
fn append_sync_in_flight(c: &mut Criterion) {
    const IN_FLIGHT: usize = 64;
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path(), FlushDiskType::SyncFlush)).unwrap();
    let msgs: Vec<StoredMessage> = (0..8)
        .map(|q| message("BenchSyncInFlight", q, 1024))
        .collect();
    let mut g = c.benchmark_group("append");
    g.throughput(Throughput::Elements(IN_FLIGHT as u64));
    g.bench_function("1KiB_sync_flush_64_in_flight", |b| {
        b.iter_custom(|iters| {
            let mut window = VecDeque::with_capacity(IN_FLIGHT);
            let t0 = Instant::now();
            for i in 0..iters as usize * IN_FLIGHT {
                if window.len() == IN_FLIGHT {
                    let p: PutFuture = window.pop_front().unwrap();
                    assert_eq!(p.wait().status, PutStatus::PutOk);
                }
                window.push_back(store.put_message(msgs[i % 8].clone()));
            }
            for p in window {
                assert_eq!(p.wait().status, PutStatus::PutOk);
            }
            t0.elapsed()
        })
    });
    g.finish();
}

fn read_32(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path(), FlushDiskType::AsyncFlush)).unwrap();
    let m = message("BenchRead", 0, 1024);
    for _ in 0..20_000 {
        store.put_message(m.clone()).wait();
    }
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(32));
    let mut off = 0i64;
    g.bench_function("32_messages_1KiB", |b| {
        b.iter(|| {
            let r = store.get_message("BenchRead", 0, off, 32, 1 << 20, None);
            assert_eq!(r.status, GetStatus::Found);
            off = (off + 32) % 19_968;
            r.messages.len()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = append_async, append_sync_group_commit, append_sync_in_flight, read_32
}
criterion_main!(benches);
