//! The replication hooks: raw commitlog copy, raw append with dispatch, truncation, confirmed
//! offset bounding reads.

use std::time::Duration;

use ferrocket_store::{GetStatus, MessageStore, StoreError};

use crate::common::{body, msg, read_all, small_config};

#[test]
fn raw_copy_rebuilds_identical_queues() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(small_config(d1.path())).unwrap();
    for i in 0..300u64 {
        master
            .put_message(msg(
                &format!("P{}", i % 2),
                (i % 3) as i32,
                &body(5, i),
                None,
                &[&format!("k{i}")],
            ))
            .wait();
    }
    let replica = MessageStore::open(small_config(d2.path())).unwrap();
    // Ship in odd-sized chunks that cut records in half.
    let mut off = 0;
    while off < master.max_phy_offset() {
        let chunk = master.commitlog_data(off, 777).unwrap();
        off = replica.append_raw(off, &chunk).unwrap();
    }
    assert_eq!(replica.max_phy_offset(), master.max_phy_offset());
    assert!(matches!(
        replica.append_raw(5, b"x"),
        Err(StoreError::NotContiguous { .. })
    ));
    for t in 0..2 {
        for q in 0..3 {
            let topic = format!("P{t}");
            let a = read_all(&master, &topic, q);
            let b = read_all(&replica, &topic, q);
            assert_eq!(a, b);
            assert_eq!(a.len(), 50);
        }
    }
    assert_eq!(
        replica
            .query_message("P1", "k299", 4, 0, i64::MAX)
            .messages
            .len(),
        1
    );
    // Byte-identical segments.
    drop(master);
    drop(replica);
    let seg = "commitlog/00000000000000000000";
    assert_eq!(
        std::fs::read(d1.path().join(seg)).unwrap(),
        std::fs::read(d2.path().join(seg)).unwrap()
    );
}

#[test]
fn truncate_drops_commitlog_and_queue_entries() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let offs: Vec<i64> = (0..200u64)
        .map(|i| {
            store
                .put_message(msg("Tr", 0, &body(9, i), None, &[]))
                .wait()
                .append
                .unwrap()
                .wrote_offset
        })
        .collect();
    store.truncate(offs[150]).unwrap();
    assert_eq!(store.max_phy_offset(), offs[150]);
    assert_eq!(store.max_offset_in_queue("Tr", 0), 150);
    assert_eq!(
        store.get_message("Tr", 0, 150, 1, 1 << 20, None).status,
        GetStatus::OffsetOverflowOne
    );
    let a = store
        .put_message(msg("Tr", 0, b"new", None, &[]))
        .wait()
        .append
        .unwrap();
    assert_eq!((a.wrote_offset, a.logics_offset), (offs[150], 150));
    store.shutdown().unwrap();
    drop(store);
    // The truncation survives a restart.
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let all = read_all(&store, "Tr", 0);
    assert_eq!(all.len(), 151);
    assert_eq!(&all[150].body[..], b"new");
}

#[test]
fn confirmed_offset_bounds_reads_and_wakes_waiters() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let ends: Vec<i64> = (0..8u64)
        .map(|i| {
            let a = store
                .put_message(msg("Cf", 0, &body(1, i), None, &[]))
                .wait()
                .append
                .unwrap();
            a.wrote_offset + i64::from(a.wrote_bytes)
        })
        .collect();
    store.set_confirm_bound(true);
    store.set_confirmed_offset(ends[2]);
    let r = store.get_message("Cf", 0, 0, 32, 1 << 20, None);
    assert_eq!((r.messages.len(), r.next_begin_offset), (3, 3));
    assert_eq!(
        store.get_message("Cf", 0, 3, 32, 1 << 20, None).status,
        GetStatus::OffsetOverflowOne
    );
    let waiter = store.wait_confirmed(ends[7], Duration::from_secs(600));
    assert!(!store
        .wait_confirmed(ends[7], Duration::from_millis(1))
        .wait());
    store.set_confirmed_offset(ends[7]);
    assert!(waiter.wait());
    assert_eq!(
        store
            .get_message("Cf", 0, 3, 32, 1 << 20, None)
            .messages
            .len(),
        5
    );
}

#[test]
fn replica_starting_mid_log_fills_queue_holes() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = MessageStore::open(small_config(d1.path())).unwrap();
    for i in 0..400u64 {
        master
            .put_message(msg("Mid", 0, &body(8, i), None, &[]))
            .wait();
    }
    let replica = MessageStore::open(small_config(d2.path())).unwrap();
    // The replica only gets the log from the third segment on.
    let start = 2 * 65536;
    assert!(matches!(
        replica.append_raw(start + 1, b"x"),
        Err(StoreError::NotContiguous { .. })
    ));
    let mut off = start;
    while off < master.max_phy_offset() {
        let chunk = master.commitlog_data(off, 4096).unwrap();
        off = replica.append_raw(off, &chunk).unwrap();
    }
    let first = read_all(&master, "Mid", 0)
        .into_iter()
        .find(|m| m.physical_offset >= start)
        .unwrap();
    assert_eq!(replica.min_phy_offset(), start);
    assert_eq!(replica.min_offset_in_queue("Mid", 0), first.queue_offset);
    assert_eq!(replica.max_offset_in_queue("Mid", 0), 400);
    let r = replica.get_message("Mid", 0, 0, 32, 1 << 20, None);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetTooSmall, first.queue_offset)
    );
    let got = read_all(&replica, "Mid", 0);
    assert_eq!(got.len() as i64, 400 - first.queue_offset);
    assert_eq!(got[0], first);
    // It survives a restart, holes and all.
    drop(replica);
    let replica = MessageStore::open(small_config(d2.path())).unwrap();
    assert_eq!(replica.min_offset_in_queue("Mid", 0), first.queue_offset);
    assert_eq!(
        read_all(&replica, "Mid", 0).len() as i64,
        400 - first.queue_offset
    );
}
