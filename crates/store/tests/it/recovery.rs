//! Recovery from damaged files: torn tail, zeroed tail, a flipped bit before the flushed point,
//! and rebuilding lost consume queues after a crash.

use std::sync::{Arc, Mutex};

use ferrocket_protocol::message::decode;
use ferrocket_store::checkpoint::Checkpoint;
use ferrocket_store::{MessageStore, PutStatus, StoreError};

use crate::common::{body, msg, read_all, small_config};

const SEG0: &str = "commitlog/00000000000000000000";

/// Writes `n` messages to one queue, shuts down cleanly, returns their physical offsets.
fn write_clean(dir: &std::path::Path, n: u64) -> Vec<i64> {
    let store = MessageStore::open(small_config(dir)).unwrap();
    let offs = (0..n)
        .map(|i| {
            let r = store
                .put_message(msg("R", 0, &body(7, i), None, &[]))
                .wait();
            assert_eq!(r.status, PutStatus::PutOk);
            r.append.unwrap().wrote_offset
        })
        .collect();
    store.shutdown().unwrap();
    offs
}

/// Makes the directory look like a crash after an fsync that covered `flushed` bytes.
fn pretend_crash(dir: &std::path::Path, flushed: i64) {
    std::fs::write(dir.join("abort"), b"").unwrap();
    let p = Checkpoint::path(dir);
    let mut c = Checkpoint::read(&p).unwrap();
    c.flushed_phy_offset = flushed;
    c.write(&p).unwrap();
}

fn patch(dir: &std::path::Path, file: &str, f: impl FnOnce(&mut Vec<u8>)) {
    let p = dir.join(file);
    let mut b = std::fs::read(&p).unwrap();
    f(&mut b);
    std::fs::write(&p, b).unwrap();
}

/// Collects the formatted fields of every WARN-or-worse event.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        struct V(String);
        impl tracing::field::Visit for V {
            fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{}={:?} ", f.name(), v));
            }
        }
        if *e.metadata().level() <= tracing::Level::WARN {
            let mut v = V(String::new());
            e.record(&mut v);
            self.0.lock().unwrap().push(v.0);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn torn_tail_is_dropped_and_appends_continue_there() {
    let dir = tempfile::tempdir().unwrap();
    let offs = write_clean(dir.path(), 30);
    let last = offs[29] as usize;
    pretend_crash(dir.path(), offs[20]);
    // The last record was cut mid-way: its second half never reached the file.
    patch(dir.path(), SEG0, |b| {
        let size = i32::from_be_bytes(b[last..last + 4].try_into().unwrap()) as usize;
        b[last + size / 2..last + size].fill(0);
    });
    let capture = Capture::default();
    let store = tracing::subscriber::with_default(capture.clone(), || {
        MessageStore::open(small_config(dir.path())).unwrap()
    });
    // Exactly one warning, naming the offset and how many bytes were dropped.
    let warnings = capture.0.lock().unwrap().clone();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("offset={}", offs[29])),
        "{warnings:?}"
    );
    assert!(warnings[0].contains("bytes="), "{warnings:?}");
    assert_eq!(store.max_phy_offset(), offs[29]);
    let all = read_all(&store, "R", 0);
    assert_eq!(all.len(), 29);
    for (i, m) in all.iter().enumerate() {
        assert_eq!(&m.body[..], &body(7, i as u64)[..]);
    }
    let r = store.put_message(msg("R", 0, b"after", None, &[])).wait();
    let a = r.append.unwrap();
    assert_eq!((a.wrote_offset, a.logics_offset), (offs[29], 29));
    drop(store);
    // The dropped bytes are gone from the file, not just hidden.
    let b = std::fs::read(dir.path().join(SEG0)).unwrap();
    let m = decode(&b[last..]).unwrap();
    assert_eq!(&m.body[..], b"after");
}

#[test]
fn zeroed_tail_after_flush_point_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let offs = write_clean(dir.path(), 40);
    pretend_crash(dir.path(), offs[25]);
    // Pages after message 30 were never written back: zeros.
    patch(dir.path(), SEG0, |b| {
        let from = offs[30] as usize + 5;
        let end = b.len();
        b[from..end].fill(0);
    });
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    assert_eq!(store.max_phy_offset(), offs[30]);
    assert_eq!(read_all(&store, "R", 0).len(), 30);
    assert_eq!(store.max_offset_in_queue("R", 0), 30);
}

#[test]
fn flipped_bit_before_flush_point_refuses_to_open() {
    let dir = tempfile::tempdir().unwrap();
    let offs = write_clean(dir.path(), 40);
    patch(dir.path(), SEG0, |b| b[offs[10] as usize + 100] ^= 0x10);
    let err = MessageStore::open(small_config(dir.path())).unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, StoreError::Corrupt { offset, .. } if offset == offs[10]),
        "{text}"
    );
    assert!(text.contains("00000000000000000000"), "{text}");
    assert!(text.contains(&offs[10].to_string()), "{text}");
    assert!(text.contains("CRC"), "{text}");
    assert!(text.contains("To proceed"), "{text}");
    // Nothing was changed: the same error again.
    assert!(MessageStore::open(small_config(dir.path())).is_err());
}

#[test]
fn crash_rebuilds_lost_consume_queues() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    for i in 0..120u64 {
        store
            .put_message(msg(
                &format!("C{}", i % 2),
                (i % 3) as i32,
                &body(3, i),
                Some("t"),
                &[],
            ))
            .wait();
    }
    store.abandon();
    assert!(dir.path().join("abort").exists());
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let mut n = 0;
    for t in 0..2 {
        for q in 0..3 {
            let all = read_all(&store, &format!("C{t}"), q);
            assert_eq!(all.len(), 20);
            n += all.len();
        }
    }
    assert_eq!(n, 120);
    let r = store.put_message(msg("C0", 0, b"x", None, &[])).wait();
    assert_eq!(r.append.unwrap().logics_offset, 20);
}
