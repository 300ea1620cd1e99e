//! Flush modes: SYNC_FLUSH group commit, its timeout, WAIT=false, ASYNC_FLUSH durability waits.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use ferrocket_protocol::message::names;
use ferrocket_store::{MessageStore, PutStatus, StoreConfig, StoreEnv};

use crate::common::{msg, small_config, sync_config};

/// An environment whose commitlog flush waits at a gate and counts flushes.
#[derive(Default)]
struct GateEnv {
    open: Mutex<bool>,
    cv: Condvar,
    flushes: AtomicUsize,
}

impl GateEnv {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cv.notify_all();
    }
}

impl StoreEnv for GateEnv {
    fn before_commitlog_flush(&self) {
        let mut g = self.open.lock().unwrap();
        while !*g {
            g = self.cv.wait(g).unwrap();
        }
        self.flushes.fetch_add(1, Ordering::SeqCst);
    }
}

struct ThreadWaker(std::thread::Thread);
impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// A minimal executor: proves the futures work without any async runtime.
fn block_on<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

#[test]
fn sync_flush_group_commit_shares_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(GateEnv::default());
    let config = StoreConfig {
        sync_flush_timeout: 600_000,
        ..sync_config(dir.path())
    };
    let store = Arc::new(MessageStore::open_with_env(config, env.clone()).unwrap());
    let appended = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..64)
        .map(|t| {
            let store = Arc::clone(&store);
            let appended = Arc::clone(&appended);
            std::thread::spawn(move || {
                let fut = store.put_message(msg("G", t % 8, format!("m{t}").as_bytes(), None, &[]));
                appended.fetch_add(1, Ordering::SeqCst);
                block_on(fut)
            })
        })
        .collect();
    // Every append is in the commitlog before any fsync is allowed to finish.
    while appended.load(Ordering::SeqCst) < 64 {
        std::thread::yield_now();
    }
    env.open();
    for t in threads {
        let r = t.join().unwrap();
        assert_eq!(r.status, PutStatus::PutOk);
    }
    let flushes = env.flushes.load(Ordering::SeqCst);
    assert!(flushes <= 2, "64 appends took {flushes} fsyncs");
    assert!(store.flushed_offset() >= store.max_phy_offset());
}

#[test]
fn sync_flush_timeout_is_a_status_and_the_message_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(GateEnv::default());
    let config = StoreConfig {
        sync_flush_timeout: 50,
        ..sync_config(dir.path())
    };
    let store = MessageStore::open_with_env(config, env.clone()).unwrap();
    let r = store
        .put_message(msg("S", 0, b"slow disk", None, &[]))
        .wait();
    assert_eq!(r.status, PutStatus::FlushDiskTimeout);
    assert!(r.status.is_stored());
    let phys = r.append.unwrap().wrote_offset;
    assert!(store.message_at(phys).is_some());
    // WAIT=false does not wait for the disk at all.
    let mut m = msg("S", 0, b"fire and forget", None, &[]);
    m.properties.insert(names::WAIT_STORE_MSG_OK, "false");
    assert_eq!(store.put_message(m).wait().status, PutStatus::PutOk);
    env.open();
    assert!(store
        .wait_flushed(store.max_phy_offset(), Duration::from_secs(600))
        .wait());
}

#[test]
fn async_flush_acks_at_once_and_wait_flushed_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let r = block_on(store.put_message(msg("A", 0, b"x", None, &[])));
    assert_eq!(r.status, PutStatus::PutOk);
    let end = store.max_phy_offset();
    assert!(block_on(store.wait_flushed(end, Duration::from_secs(600))));
    assert!(store.flushed_offset() >= end);
}

/// Whether `dir` holds a segment written ahead (`<start>.warm`).
fn warm_file(dir: &std::path::Path) -> Option<String> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".warm"))
}

/// Appends `body` to (`topic`, `qid`), expects PUT_OK, and records it in `sent`.
fn put_ok(store: &MessageStore, topic: &str, qid: i32, body: String, sent: &mut Vec<String>) {
    let r = store
        .put_message(msg(topic, qid, body.as_bytes(), None, &[]))
        .wait();
    assert_eq!(r.status, PutStatus::PutOk);
    sent.push(body);
}

/// The bodies of (`topic`, `qid`) in queue order, as text.
fn bodies(store: &MessageStore, topic: &str, qid: i32) -> Vec<String> {
    crate::common::read_all(store, topic, qid)
        .iter()
        .map(|m| String::from_utf8(m.body.to_vec()).unwrap())
        .collect()
}

/// SYNC_FLUSH takes each new commitlog segment from a file written ahead with zeros (appends then
/// go by `pwrite`, durability by `fdatasync`): the next one is prepared under a name loading
/// ignores, and appends across several such segments read back, before and after a reopen.
#[test]
fn sync_flush_segments_written_ahead_hold_their_appends() {
    let dir = tempfile::tempdir().unwrap();
    segments_written_ahead_hold_their_appends(sync_config(dir.path()));
}

/// `warmMapedFileEnable=true` does the same under ASYNC_FLUSH (appends through the mapping).
#[test]
fn warm_mapped_files_under_async_flush_hold_their_appends() {
    let dir = tempfile::tempdir().unwrap();
    segments_written_ahead_hold_their_appends(StoreConfig {
        warm_mapped_file_enable: true,
        ..small_config(dir.path())
    });
}

fn segments_written_ahead_hold_their_appends(cfg: StoreConfig) {
    let cl_dir = cfg.commit_log_dir();
    let mut sent = Vec::new();
    {
        let store = MessageStore::open(cfg.clone()).unwrap();
        for seg in 0..4 {
            // The next segment is written ahead within moments of the current one's creation.
            let t = std::time::Instant::now();
            loop {
                put_ok(&store, "W", 1, format!("probe-{seg}"), &mut sent);
                if warm_file(&cl_dir).is_some() {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "no segment written ahead"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            // Fill past the current segment (64 KiB) so the next append takes the warm file.
            for i in 0..80 {
                let b = format!("s{seg}-m{i}-{}", "x".repeat(900));
                put_ok(&store, "W", 1, b, &mut sent);
            }
        }
        assert_eq!(bodies(&store, "W", 1), sent);
        store.shutdown().unwrap();
    }
    let segments = std::fs::read_dir(&cl_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().len() == 20)
        .count();
    assert!(segments >= 5, "{segments} segments");
    // The segments after the first came from files written ahead: no holes in them.
    for start in 1..4 {
        let seg = cl_dir.join(format!("{:020}", start * 65536));
        let allocated = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&seg).unwrap());
        assert!(allocated * 512 >= 65536, "{} is sparse", seg.display());
    }
    let store = MessageStore::open(cfg).unwrap();
    assert_eq!(bodies(&store, "W", 1), sent, "after a reopen");
}

/// When the segment cannot be written ahead (here a directory squats on its temporary name; a
/// full disk does the same), appends go on into an ordinary segment.
#[test]
fn a_segment_not_written_ahead_falls_back_to_an_ordinary_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = sync_config(dir.path());
    let cl_dir = cfg.commit_log_dir();
    std::fs::create_dir_all(cl_dir.join("00000000000000065536.warm.tmp")).unwrap();
    let store = MessageStore::open(cfg).unwrap();
    let mut sent = Vec::new();
    for i in 0..150 {
        put_ok(
            &store,
            "F",
            0,
            format!("m{i}-{}", "y".repeat(900)),
            &mut sent,
        );
    }
    assert_eq!(warm_file(&cl_dir), None);
    assert_eq!(bodies(&store, "F", 0), sent);
}
