//! Test helpers: configs with small files, message builders, full-queue readers.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use ferrocket_protocol::message::{decode, names, Properties, StoredMessage};
use ferrocket_store::{FlushDiskType, GetStatus, MessageStore, StoreConfig};

/// 64 KiB commitlog segments, 10-entry consume-queue files, a small index.
pub fn small_config(root: &Path) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: 64 * 1024,
        mapped_file_size_consume_queue: 200,
        max_hash_slot_num: 64,
        max_index_num: 400,
        flush_interval_commit_log: 20,
        flush_interval_consume_queue: 50,
        clean_resource_interval: 3_600_000,
        store_host: "10.0.0.9:10911".parse().unwrap(),
        ..StoreConfig::with_root(root)
    }
}

pub fn sync_config(root: &Path) -> StoreConfig {
    StoreConfig {
        flush_disk_type: FlushDiskType::SyncFlush,
        ..small_config(root)
    }
}

/// A message with the given tag and keys.
pub fn msg(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    tags: Option<&str>,
    keys: &[&str],
) -> StoredMessage {
    let mut properties = Properties::new();
    if let Some(t) = tags {
        properties.insert(names::TAGS, t);
    }
    if !keys.is_empty() {
        properties.insert(names::KEYS, keys.join(" "));
    }
    StoredMessage {
        queue_id,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: SocketAddr::from(([192, 168, 1, 7], 50000)),
        store_timestamp: 0,
        store_host: SocketAddr::from(([0, 0, 0, 0], 0)),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::copy_from_slice(body),
        topic: topic.into(),
        properties,
    }
}

/// Deterministic body of message `i` (varying length).
pub fn body(seed: u64, i: u64) -> Vec<u8> {
    let len = 16 + ((seed ^ i).wrapping_mul(2_654_435_761) % 700) as usize;
    (0..len)
        .map(|k| (i.wrapping_mul(31).wrapping_add(k as u64).wrapping_add(seed) % 251) as u8)
        .collect()
}

/// Every message of a queue, checking that offsets have no gaps.
pub fn read_all(store: &MessageStore, topic: &str, qid: i32) -> Vec<StoredMessage> {
    let mut out = Vec::new();
    let mut off = store.min_offset_in_queue(topic, qid);
    loop {
        let r = store.get_message(topic, qid, off, 32, 1 << 20, None);
        match r.status {
            GetStatus::Found => {
                for (b, qo) in r.messages.iter().zip(&r.queue_offsets) {
                    let m = decode(b).expect("stored record decodes with a good CRC");
                    assert_eq!(m.queue_offset, *qo, "queue offset field matches position");
                    out.push(m);
                }
                assert_eq!(
                    r.next_begin_offset,
                    off + r.messages.len() as i64,
                    "no gaps"
                );
                off = r.next_begin_offset;
            }
            GetStatus::OffsetOverflowOne
            | GetStatus::NoMessageInQueue
            | GetStatus::NoMatchedLogicQueue => break,
            s => panic!("unexpected status {s:?} at offset {off}"),
        }
    }
    out
}
