//! Appends and reads: segment boundaries, many queues, tags, batches, statuses.

use std::collections::HashSet;

use ferrocket_protocol::message::{decode, decode_offset_msg_id, java_string_hash, StoredMessage};
use ferrocket_store::{GetStatus, MessageStore, PutStatus, StoreConfig};

use crate::common::{body, msg, read_all, small_config};

#[test]
fn appends_cross_segments_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let mut expect: Vec<(i64, Vec<u8>)> = Vec::new();
    for i in 0..400u64 {
        let b = body(1, i);
        let r = store.put_message(msg("TopicA", 0, &b, None, &[])).wait();
        assert_eq!(r.status, PutStatus::PutOk);
        let a = r.append.unwrap();
        assert_eq!(a.logics_offset, i as i64);
        let (host, phys) = decode_offset_msg_id(&a.msg_id).unwrap();
        assert_eq!(host, store.config().store_host);
        assert_eq!(phys, a.wrote_offset);
        expect.push((a.wrote_offset, b));
    }
    // Crossed several 64 KiB segments: files named by 20-digit start offsets exist.
    let files: Vec<String> = std::fs::read_dir(dir.path().join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(files.len() >= 3, "{files:?}");
    assert!(files.contains(&"00000000000000065536".to_string()));
    // The first segment ends with a BLANK record right after its last message.
    let seg0 = std::fs::read(dir.path().join("commitlog/00000000000000000000")).unwrap();
    assert_eq!(seg0.len(), 65536);
    let last_in_seg0 = expect.iter().rfind(|(p, _)| *p < 65536).unwrap();
    let blank_at = last_in_seg0.0 as usize
        + decode(&seg0[last_in_seg0.0 as usize..])
            .unwrap()
            .to_bytes()
            .unwrap()
            .len();
    assert_eq!(&seg0[blank_at + 4..blank_at + 8], &[0xCB, 0xD4, 0x31, 0x94]);
    assert_eq!(
        i32::from_be_bytes(seg0[blank_at..blank_at + 4].try_into().unwrap()) as usize,
        65536 - blank_at
    );

    let all = read_all(&store, "TopicA", 0);
    assert_eq!(all.len(), 400);
    for (m, (phys, b)) in all.iter().zip(&expect) {
        assert_eq!(m.physical_offset, *phys);
        assert_eq!(&m.body[..], &b[..]);
        assert_eq!(m.store_host, store.config().store_host);
        assert!(m.store_timestamp > 0);
        // The record at the physical offset is the same bytes.
        let raw = store.message_at(*phys).unwrap();
        assert_eq!(decode(&raw).unwrap(), *m);
    }
    // The consume-queue files are 200 bytes (10 entries) each, named by byte offset.
    let cq = dir.path().join("consumequeue/TopicA/0");
    assert!(cq.join("00000000000000000000").exists());
    assert!(cq.join("00000000000000000200").exists());
    let raw = std::fs::read(cq.join("00000000000000000000")).unwrap();
    assert_eq!(
        i64::from_be_bytes(raw[20..28].try_into().unwrap()),
        expect[1].0
    );
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 400);
    assert_eq!(store.min_offset_in_queue("TopicA", 0), 0);
}

#[test]
fn many_topics_and_queues_keep_their_own_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    for i in 0..300u64 {
        let topic = format!("T{}", i % 3);
        let qid = (i % 4) as i32;
        let r = store
            .put_message(msg(&topic, qid, format!("{i}").as_bytes(), None, &[]))
            .wait();
        assert_eq!(r.status, PutStatus::PutOk);
    }
    let mut total = 0;
    for t in 0..3 {
        for q in 0..4 {
            let all = read_all(&store, &format!("T{t}"), q);
            for (k, m) in all.iter().enumerate() {
                assert_eq!(m.queue_offset, k as i64);
                let i: u64 = std::str::from_utf8(&m.body).unwrap().parse().unwrap();
                assert_eq!((i % 3, i % 4), (t, q as u64));
            }
            total += all.len();
        }
    }
    assert_eq!(total, 300);
}

#[test]
fn tag_filter_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    for i in 0..20 {
        let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
        store.put_message(msg("T", 1, b"x", Some(tag), &[])).wait();
    }
    // The consume-queue tags code is the Java hash of the tag.
    assert_eq!(
        store.queue_entry("T", 1, 0).unwrap().tags_code,
        i64::from(java_string_hash("TagA"))
    );
    let only_b: HashSet<i64> = [i64::from(java_string_hash("TagB"))].into();
    let r = store.get_message("T", 1, 0, 32, 1 << 20, Some(&only_b));
    assert_eq!(r.status, GetStatus::Found);
    // One read covers at most one consume-queue file (10 entries here), as in RocketMQ.
    assert_eq!(r.queue_offsets, [1, 3, 5, 7, 9]);
    assert_eq!(r.next_begin_offset, 10);
    let r = store.get_message("T", 1, 10, 32, 1 << 20, Some(&only_b));
    assert_eq!(r.queue_offsets, [11, 13, 15, 17, 19]);
    assert_eq!(r.next_begin_offset, 20);
    let none: HashSet<i64> = [12345].into();
    let r = store.get_message("T", 1, 0, 32, 1 << 20, Some(&none));
    assert_eq!(r.status, GetStatus::NoMatchedMessage);
    assert_eq!(r.next_begin_offset, 10);

    let r = store.get_message("T", 1, 5, 3, 1 << 20, None);
    assert_eq!(
        (r.status, r.messages.len(), r.next_begin_offset),
        (GetStatus::Found, 3, 8)
    );
    // The byte limit: the first message always fits.
    let r = store.get_message("T", 1, 5, 32, 1, None);
    assert_eq!((r.messages.len(), r.next_begin_offset), (1, 6));
    assert_eq!(
        store.get_message("T", 1, 20, 32, 1 << 20, None).status,
        GetStatus::OffsetOverflowOne
    );
    let r = store.get_message("T", 1, 25, 32, 1 << 20, None);
    assert_eq!(
        (r.status, r.next_begin_offset),
        (GetStatus::OffsetOverflowBadly, 0)
    );
    assert_eq!(
        store.get_message("T", 2, 0, 32, 1 << 20, None).status,
        GetStatus::NoMatchedLogicQueue
    );
    assert_eq!((r.min_offset, r.max_offset), (0, 20));
}

#[test]
fn batch_lands_contiguously_with_consecutive_queue_offsets() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    store.put_message(msg("B", 0, b"first", None, &[])).wait();
    let batch: Vec<StoredMessage> = (0..5).map(|i| msg("B", 0, &[i; 10], None, &[])).collect();
    let r = store.put_messages(batch).wait();
    assert_eq!(r.status, PutStatus::PutOk);
    let a = r.append.unwrap();
    assert_eq!((a.logics_offset, a.msg_num), (1, 5));
    assert_eq!(a.msg_id.split(',').count(), 5);
    let all = read_all(&store, "B", 0);
    assert_eq!(all.len(), 6);
    let mut phys = a.wrote_offset;
    for (k, m) in all[1..].iter().enumerate() {
        assert_eq!(m.physical_offset, phys);
        assert_eq!(&m.body[..], &[k as u8; 10]);
        phys += m.to_bytes().unwrap().len() as i64;
    }
    assert_eq!(phys, a.wrote_offset + i64::from(a.wrote_bytes));
    // Mixed queues in one batch are refused.
    let bad = vec![msg("B", 0, b"a", None, &[]), msg("B", 1, b"b", None, &[])];
    assert_eq!(
        store.put_messages(bad).wait().status,
        PutStatus::MessageIllegal
    );
    let mut big = small_config(dir.path()).max_message_size;
    big += 1;
    let r = store
        .put_message(msg("B", 0, &vec![0; big], None, &[]))
        .wait();
    assert_eq!(r.status, PutStatus::MessageIllegal);
}

#[test]
fn offset_by_time_and_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut stamps = Vec::new();
    {
        let store = MessageStore::open(small_config(dir.path())).unwrap();
        for i in 0..50u64 {
            let r = store
                .put_message(msg("Q", 0, &body(2, i), None, &[]))
                .wait();
            stamps.push(r.append.unwrap().store_timestamp);
        }
        store.shutdown().unwrap();
    }
    assert!(!dir.path().join("abort").exists());
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    assert!(dir.path().join("abort").exists());
    assert_eq!(store.offset_in_queue_by_time("Q", 0, 0), 0);
    assert_eq!(store.offset_in_queue_by_time("Q", 0, i64::MAX), 50);
    let k = store.offset_in_queue_by_time("Q", 0, stamps[30]);
    assert_eq!(stamps[k as usize], stamps[30]);
    assert!(k <= 30);
    let all = read_all(&store, "Q", 0);
    assert_eq!(all.len(), 50);
    // Appends continue at the right queue offset.
    let r = store.put_message(msg("Q", 0, b"next", None, &[])).wait();
    assert_eq!(r.append.unwrap().logics_offset, 50);
    // A second store on the same directory is refused.
    assert!(matches!(
        MessageStore::open(small_config(dir.path())),
        Err(ferrocket_store::StoreError::Locked(_))
    ));
}

#[test]
fn schedule_topic_tags_code_is_the_delivery_time_and_halves_skip_queues() {
    use ferrocket_protocol::message::{names, sysflag};
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let mut m = msg("SCHEDULE_TOPIC_XXXX", 2, b"later", Some("TagA"), &[]);
    m.properties.insert(names::DELAY, "3"); // 10s
    let a = store.put_message(m).wait().append.unwrap();
    let e = store.queue_entry("SCHEDULE_TOPIC_XXXX", 2, 0).unwrap();
    assert_eq!(e.tags_code, a.store_timestamp + 10_000);
    // A prepared (half) record gets queue offset 0 and no consume-queue entry.
    let mut half = msg("TxT", 0, b"half", None, &["txkey"]);
    half.sys_flag = sysflag::TRANSACTION_PREPARED_TYPE;
    let a = store.put_message(half).wait().append.unwrap();
    assert_eq!(a.logics_offset, 0);
    assert_eq!(store.max_offset_in_queue("TxT", 0), 0);
    // ... but it is indexed; a commit record goes to the queue.
    assert_eq!(
        store
            .query_message("TxT", "txkey", 4, 0, i64::MAX)
            .messages
            .len(),
        1
    );
    let mut commit = msg("TxT", 0, b"commit", None, &[]);
    commit.sys_flag = sysflag::TRANSACTION_COMMIT_TYPE;
    store.put_message(commit).wait();
    assert_eq!(store.max_offset_in_queue("TxT", 0), 1);
}

#[test]
fn prefault_ahead_stops_at_the_segment_end_and_keeps_contents() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    // Nothing to prefault before the first segment exists.
    assert_eq!(store.prefault_ahead(4096), 0);
    let first = store
        .put_message(msg("TopicP", 0, b"before", None, &[]))
        .wait();
    assert_eq!(first.status, PutStatus::PutOk);
    let end = first
        .append
        .as_ref()
        .map(|a| a.wrote_offset + i64::from(a.wrote_bytes));
    let end = end.unwrap();
    assert_eq!(store.prefault_ahead(1000), end + 1000);
    // Bounded by the 64 KiB segment, not by the request.
    assert_eq!(store.prefault_ahead(1 << 30), 64 * 1024);
    let mut bodies = vec![b"before".to_vec()];
    for i in 0..200u64 {
        let b = body(7, i);
        let r = store.put_message(msg("TopicP", 0, &b, None, &[])).wait();
        assert_eq!(r.status, PutStatus::PutOk);
        bodies.push(b);
    }
    let read: Vec<Vec<u8>> = read_all(&store, "TopicP", 0)
        .into_iter()
        .map(|m| m.body.to_vec())
        .collect();
    assert_eq!(read, bodies);
}

/// Records already encoded (a DLedger node applying the leader's bytes) are stamped with queue
/// and physical offsets (and store time when they carry none), keep the host and store time
/// they were encoded with, and are indexed like any append; malformed input and mixed queues
/// are refused.
#[test]
fn encoded_records_are_stamped_not_reencoded() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    store
        .put_message(msg("R", 2, b"ordinary", Some("T"), &[]))
        .wait();
    let leader: std::net::SocketAddr = "10.0.0.9:10911".parse().unwrap();
    let mut records = Vec::new();
    for i in 0..3u8 {
        let mut m = msg("R", 2, &[i; 40], Some("T"), &["k1"]);
        m.store_host = leader;
        m.encode(&mut records).unwrap();
    }
    let r = store.put_records(&records).wait();
    assert_eq!(r.status, PutStatus::PutOk);
    let a = r.append.unwrap();
    assert_eq!((a.logics_offset, a.msg_num), (1, 3));
    let all = read_all(&store, "R", 2);
    assert_eq!(all.len(), 4);
    let mut phys = a.wrote_offset;
    for (k, m) in all[1..].iter().enumerate() {
        assert_eq!(m.queue_offset, k as i64 + 1);
        assert_eq!(m.physical_offset, phys);
        assert_eq!(m.store_host, leader);
        assert_eq!(m.store_timestamp, a.store_timestamp);
        assert_eq!(&m.body[..], &[k as u8; 40]);
        phys += m.to_bytes().unwrap().len() as i64;
    }
    assert_eq!(
        store
            .query_message("R", "k1", 10, 0, i64::MAX)
            .messages
            .len(),
        3,
        "keys indexed"
    );
    let mut mixed = Vec::new();
    msg("R", 2, b"a", None, &[]).encode(&mut mixed).unwrap();
    msg("R", 3, b"b", None, &[]).encode(&mut mixed).unwrap();
    for bad in [&mixed[..], &records[..records.len() - 1], b"not a record"] {
        assert_eq!(
            store.put_records(bad).wait().status,
            PutStatus::MessageIllegal
        );
    }
    assert_eq!(
        read_all(&store, "R", 2).len(),
        4,
        "nothing refused was stored"
    );

    // A store time the encoder set (the DLedger leader's) is kept, so every node holds the
    // same bytes; a put of client messages always gets this store's time.
    let leader_time = 1_600_000_000_123;
    let mut stamped = msg("R", 2, b"leader time", None, &[]);
    stamped.store_timestamp = leader_time;
    let mut records = Vec::new();
    stamped.encode(&mut records).unwrap();
    let r = store.put_records(&records).wait();
    assert_eq!(r.append.unwrap().store_timestamp, leader_time);
    let r = store.put_message(stamped).wait();
    assert!(r.append.unwrap().store_timestamp > leader_time);
    let all = read_all(&store, "R", 2);
    assert_eq!(all[4].store_timestamp, leader_time);
    assert!(all[5].store_timestamp > leader_time);
}

/// Committed records (a DLedger entry) are applied whatever this node's own send limits say:
/// a body over its `maxMessageSize` (the leader's may be larger) and a disk past
/// `diskSpaceWarningLevelRatio` refuse client puts, never these, or replicas would differ.
#[test]
fn committed_records_are_taken_past_this_nodes_send_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(StoreConfig {
        max_message_size: 16,
        disk_space_warning_level_ratio: 1,
        ..small_config(dir.path())
    })
    .unwrap();
    assert!(store.clean_expired_files().unwrap().disk_full);
    let put = store.put_message(msg("R", 0, b"small", None, &[])).wait();
    assert_eq!(put.status, PutStatus::DiskFull);
    let mut records = Vec::new();
    msg("R", 0, &[7; 100], None, &[])
        .encode(&mut records)
        .unwrap();
    assert_eq!(store.put_records(&records).wait().status, PutStatus::PutOk);
    let all = read_all(&store, "R", 0);
    assert_eq!(all.len(), 1);
    assert_eq!(&all[0].body[..], &[7; 100]);
}

/// Messages beyond the in-memory window (`accessMessageInMemoryMaxRatio` of physical memory
/// from the commitlog's end; 0 here, so all of them) are read with the "in disk" limits:
/// `maxTransferCountOnMessageInDisk` messages and `maxTransferBytesOnMessageInDisk` bytes.
#[test]
fn reads_beyond_the_in_memory_window_use_the_disk_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(StoreConfig {
        access_message_in_memory_max_ratio: 0,
        max_transfer_bytes_on_message_in_disk: 40_000,
        ..small_config(dir.path())
    })
    .unwrap();
    for i in 0..12u8 {
        store.put_message(msg("D", 0, &[i; 100], None, &[])).wait();
    }
    let r = store.get_message("D", 0, 0, 32, 1 << 20, None);
    assert_eq!(r.messages.len(), 8, "maxTransferCountOnMessageInDisk");
    assert!(r.suggest_pulling_from_slave);
    for i in 0..5u8 {
        store
            .put_message(msg("D", 1, &[i; 9_000], None, &[]))
            .wait();
    }
    let r = store.get_message("D", 1, 0, 32, 1 << 20, None);
    assert_eq!(
        r.messages.len(),
        4,
        "four of five ~9.2 KB fit in 40,000 bytes"
    );
    let r = store.get_message("D", 0, 0, 32, 1 << 20, None);
    assert_eq!(r.messages.len(), 8);

    // The default window (40% of memory) holds all of them: in-memory limits, no suggestion.
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    // (Nine: a read stays within one consume-queue file, of ten entries here.)
    for i in 0..9u8 {
        store.put_message(msg("D", 0, &[i; 100], None, &[])).wait();
    }
    let r = store.get_message("D", 0, 0, 32, 1 << 20, None);
    assert_eq!(r.messages.len(), 9);
    assert!(!r.suggest_pulling_from_slave);
}
