//! Index files: on-disk layout and lookups by key, UNIQ_KEY and time range.

use ferrocket_protocol::message::{decode, names};
use ferrocket_store::index_file::index_key_hash;
use ferrocket_store::MessageStore;

use crate::common::{msg, small_config};

#[test]
fn lookup_by_keys_and_uniq_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(small_config(dir.path())).unwrap();
    let mut phys = Vec::new();
    for i in 0..50 {
        let mut m = msg(
            "IdxT",
            0,
            format!("{i}").as_bytes(),
            None,
            &[&format!("k{i}"), "shared"],
        );
        m.properties
            .insert(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX, format!("UNIQ{i:04}"));
        phys.push(store.put_message(m).wait().append.unwrap().wrote_offset);
    }
    store
        .put_message(msg("Other", 0, b"o", None, &["k7"]))
        .wait();

    let r = store.query_message("IdxT", "k7", 32, 0, i64::MAX);
    assert_eq!(r.messages.len(), 1);
    assert_eq!(&decode(&r.messages[0]).unwrap().body[..], b"7");
    let r = store.query_message("IdxT", "UNIQ0042", 32, 0, i64::MAX);
    assert_eq!(decode(&r.messages[0]).unwrap().physical_offset, phys[42]);
    // Newest first, bounded by max_num.
    let r = store.query_message("IdxT", "shared", 5, 0, i64::MAX);
    let got: Vec<i64> = r
        .messages
        .iter()
        .map(|b| decode(b).unwrap().physical_offset)
        .collect();
    assert_eq!(got, phys[45..].iter().rev().copied().collect::<Vec<_>>());
    assert!(r.index_last_update_phyoffset >= phys[49]);
    // A time range in the far past finds nothing; unknown keys find nothing.
    assert!(store
        .query_message("IdxT", "k7", 32, 0, 1000)
        .messages
        .is_empty());
    assert!(store
        .query_message("IdxT", "nope", 32, 0, i64::MAX)
        .messages
        .is_empty());
    assert_eq!(
        store
            .query_message("Other", "k7", 32, 0, i64::MAX)
            .messages
            .len(),
        1
    );
}

#[test]
fn index_file_layout_on_disk_and_rollover() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path());
    let store = MessageStore::open(config.clone()).unwrap();
    let first = store
        .put_message(msg("L", 0, b"a", None, &["key0"]))
        .wait()
        .append
        .unwrap();
    // 500 more keys overflow a 400-entry file.
    for i in 1..=500 {
        store
            .put_message(msg("L", 0, b"b", None, &[&format!("key{i}")]))
            .wait();
    }
    store.shutdown().unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("index"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(names.iter().all(|n| n.len() == 17 && n.starts_with("20")));
    let raw = std::fs::read(dir.path().join("index").join(&names[0])).unwrap();
    let slots = config.max_hash_slot_num as usize;
    assert_eq!(
        raw.len(),
        40 + slots * 4 + config.max_index_num as usize * 20
    );
    let be64 = |p: usize| i64::from_be_bytes(raw[p..p + 8].try_into().unwrap());
    let be32 = |p: usize| i32::from_be_bytes(raw[p..p + 4].try_into().unwrap());
    assert_eq!(be64(0), first.store_timestamp); // beginTimestamp
    assert_eq!(be64(16), first.wrote_offset); // beginPhyOffset
    assert_eq!(be32(36), 400); // indexCount: full (entry 0 unused)
                               // Entry 1 is key0: hash, offset, time diff 0, no predecessor; its slot points at it.
    let hash = index_key_hash("L#key0");
    let e1 = 40 + slots * 4 + 20;
    assert_eq!(be32(e1), hash);
    assert_eq!(be64(e1 + 4), first.wrote_offset);
    assert_eq!(be32(e1 + 12), 0);
    assert_eq!(be32(e1 + 16), 0);
    assert!(be32(40 + (hash as usize % slots) * 4) >= 1);
    // Lookups span both files after reopening.
    let store = MessageStore::open(config).unwrap();
    assert_eq!(
        store
            .query_message("L", "key0", 32, 0, i64::MAX)
            .messages
            .len(),
        1
    );
    assert_eq!(
        store
            .query_message("L", "key500", 32, 0, i64::MAX)
            .messages
            .len(),
        1
    );
}

/// `maxMsgsNumBatch` caps a lookup whatever it asks for (64 by default, as RocketMQ's).
#[test]
fn lookups_are_capped_at_max_msgs_num_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path());
    assert_eq!(config.max_msgs_num_batch, 64);
    config.max_msgs_num_batch = 10;
    let store = MessageStore::open(config).unwrap();
    for i in 0..30 {
        store
            .put_message(msg("CapT", 0, format!("{i}").as_bytes(), None, &["same"]))
            .wait();
    }
    assert_eq!(
        store
            .query_message("CapT", "same", 1000, 0, i64::MAX)
            .messages
            .len(),
        10
    );
    assert_eq!(
        store
            .query_message("CapT", "same", 4, 0, i64::MAX)
            .messages
            .len(),
        4
    );
}
