//! Retention and disk-full refusal with an injected clock and disk probe.

use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;

use ferrocket_store::{GetStatus, MessageStore, PutStatus, StoreEnv};

use crate::common::{body, msg, small_config};

#[derive(Default)]
struct FakeEnv {
    /// 0 = the real clock.
    now: AtomicI64,
    used_percent: AtomicU32,
    /// The local time zone's offset from UTC, ms.
    utc_offset: AtomicI64,
}

impl StoreEnv for FakeEnv {
    fn now_ms(&self) -> i64 {
        match self.now.load(Ordering::SeqCst) {
            0 => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64,
            n => n,
        }
    }
    fn utc_offset_ms(&self, _: i64) -> i64 {
        self.utc_offset.load(Ordering::SeqCst)
    }
    fn disk_used_ratio(&self, _: &Path) -> f64 {
        f64::from(self.used_percent.load(Ordering::SeqCst)) / 100.0
    }
}

/// 04:00 UTC on a day `days` after today (local time in these tests is UTC unless a test moves
/// `utc_offset`).
fn four_am_in(days: i64) -> i64 {
    let now = FakeEnv::default().now_ms();
    (now / 86_400_000 + days) * 86_400_000 + 4 * 3_600_000
}

#[test]
fn expired_files_go_at_delete_hour_and_reads_report_offset_moved() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(FakeEnv::default());
    env.used_percent.store(10, Ordering::SeqCst);
    let store = MessageStore::open_with_env(small_config(dir.path()), env.clone()).unwrap();
    for i in 0..400u64 {
        store
            .put_message(msg("Ret", 0, &body(4, i), None, &[&format!("k{i}")]))
            .wait();
    }
    let segs = || {
        std::fs::read_dir(dir.path().join("commitlog"))
            .unwrap()
            .count()
    };
    let before = segs();
    assert!(before >= 3);
    // Today 04:00 is not 72 h after the files were written: nothing goes.
    env.now.store(four_am_in(0), Ordering::SeqCst);
    assert_eq!(store.clean_expired_files().unwrap().commitlog_files, 0);
    // Four days later at 05:00 is not a delete hour.
    env.now.store(four_am_in(4) + 3_600_000, Ordering::SeqCst);
    assert_eq!(store.clean_expired_files().unwrap().commitlog_files, 0);
    // deleteWhen hours are local: in UTC+8, 04:00 UTC is noon and nothing goes...
    env.utc_offset.store(8 * 3_600_000, Ordering::SeqCst);
    env.now.store(four_am_in(4), Ordering::SeqCst);
    assert_eq!(store.clean_expired_files().unwrap().commitlog_files, 0);
    // ...while 20:00 UTC is 04:00 there (a day later: the files are well past 72 h).
    env.now
        .store(four_am_in(5) - 8 * 3_600_000, Ordering::SeqCst);
    let rep = store.clean_expired_files().unwrap();
    assert_eq!(rep.commitlog_files, before - 1);
    assert_eq!(segs(), 1);
    assert!(rep.consume_queue_files > 0);
    let min = store.min_offset_in_queue("Ret", 0);
    assert!(min > 0);
    let r = store.get_message("Ret", 0, 0, 32, 1 << 20, None);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetTooSmall, min)
    );
    let r = store.get_message("Ret", 0, min, 32, 1 << 20, None);
    assert_eq!(r.status, GetStatus::Found);
    assert!(store.message_at(0).is_none());
    assert!(store
        .query_message("Ret", "k0", 4, 0, i64::MAX)
        .messages
        .is_empty());
    assert_eq!(
        store
            .query_message("Ret", "k399", 4, 0, i64::MAX)
            .messages
            .len(),
        1
    );
}

#[test]
fn delete_file_batch_max_bounds_one_round() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(FakeEnv::default());
    env.used_percent.store(10, Ordering::SeqCst);
    let config = ferrocket_store::StoreConfig {
        delete_file_batch_max: 2,
        delete_commit_log_files_interval: 300,
        ..small_config(dir.path())
    };
    let store = MessageStore::open_with_env(config, env.clone()).unwrap();
    for i in 0..800u64 {
        store
            .put_message(msg("B", 0, &body(4, i), None, &[]))
            .wait();
    }
    let before = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .count();
    assert!(before >= 5, "{before} segments");
    // Everything but the current segment is expired; each round removes at most two, with
    // `deleteCommitLogFilesInterval` between them.
    env.now.store(four_am_in(5), Ordering::SeqCst);
    let t = std::time::Instant::now();
    assert_eq!(store.clean_expired_files().unwrap().commitlog_files, 2);
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(300),
        "no pause between the two removals"
    );
    let mut removed = 2;
    while removed < before - 1 {
        let n = store.clean_expired_files().unwrap().commitlog_files;
        assert!((1..=2).contains(&n), "{n}");
        removed += n;
    }
    assert_eq!(store.clean_expired_files().unwrap().commitlog_files, 0);
}

#[test]
fn disk_pressure_cleans_forcibly_and_full_disk_refuses_appends() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(FakeEnv::default());
    env.used_percent.store(10, Ordering::SeqCst);
    let store = MessageStore::open_with_env(small_config(dir.path()), env.clone()).unwrap();
    for i in 0..300u64 {
        store
            .put_message(msg("D", 0, &body(6, i), None, &[]))
            .wait();
    }
    // Not a delete hour, files fresh, but the disk is past the force-clean ratio (85%).
    env.now
        .store(four_am_in(0) + 6 * 3_600_000, Ordering::SeqCst);
    env.used_percent.store(88, Ordering::SeqCst);
    let rep = store.clean_expired_files().unwrap();
    assert!(rep.commitlog_files > 0);
    assert!(!rep.disk_full);
    assert_eq!(
        store
            .put_message(msg("D", 0, b"ok", None, &[]))
            .wait()
            .status,
        PutStatus::PutOk
    );
    // Past the warning ratio (90%) appends are refused until space comes back.
    env.used_percent.store(95, Ordering::SeqCst);
    assert!(store.clean_expired_files().unwrap().disk_full);
    assert!(store.is_disk_full());
    assert_eq!(
        store
            .put_message(msg("D", 0, b"no", None, &[]))
            .wait()
            .status,
        PutStatus::DiskFull
    );
    env.used_percent.store(50, Ordering::SeqCst);
    store.clean_expired_files().unwrap();
    assert_eq!(
        store
            .put_message(msg("D", 0, b"ok", None, &[]))
            .wait()
            .status,
        PutStatus::PutOk
    );
}

/// `deleteConsumeQueueFilesInterval`: a round pauses after each consume queue that lost files,
/// as RocketMQ's CleanConsumeQueueService does (two queues: two pauses).
#[test]
fn consume_queue_removals_pause_between_queues() {
    let dir = tempfile::tempdir().unwrap();
    let env = Arc::new(FakeEnv::default());
    env.used_percent.store(10, Ordering::SeqCst);
    let config = ferrocket_store::StoreConfig {
        delete_consume_queue_files_interval: 300,
        ..small_config(dir.path())
    };
    let store = MessageStore::open_with_env(config, env.clone()).unwrap();
    for i in 0..800u64 {
        store
            .put_message(msg("Q", (i % 2) as i32, &body(4, i), None, &[]))
            .wait();
    }
    env.now.store(four_am_in(5), Ordering::SeqCst);
    let t = std::time::Instant::now();
    let rep = store.clean_expired_files().unwrap();
    assert!(rep.commitlog_files > 0);
    assert!(rep.consume_queue_files >= 2, "{rep:?}");
    assert!(
        t.elapsed() >= std::time::Duration::from_millis(600),
        "no pause after each of the two queues"
    );
    assert!(store.min_offset_in_queue("Q", 0) > 0);
    assert!(store.min_offset_in_queue("Q", 1) > 0);
}
