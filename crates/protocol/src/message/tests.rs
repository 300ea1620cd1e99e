//! Golden bytes written out by hand from the published layout, round trips and fuzzing.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

use super::*;

fn v4(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// A v1 record with IPv4 hosts, assembled field by field from the layout table.
fn golden_v1() -> Vec<u8> {
    let mut b: Vec<u8> = Vec::new();
    b.extend([0, 0, 0, 101]); // TOTALSIZE = 84 + 4+2 + 1+1 + 2+7
    b.extend([0xDA, 0xA3, 0x20, 0xA7]); // MAGICCODE v1
    b.extend([0x58, 0x93, 0x2A, 0xAC]); // BODYCRC = crc32("hi") & 0x7fffffff
    b.extend([0, 0, 0, 3]); // QUEUEID
    b.extend([0, 0, 0, 0x10]); // FLAG
    b.extend([0, 0, 0, 0, 0, 0, 0, 5]); // QUEUEOFFSET
    b.extend([0, 0, 0, 0, 0, 0, 0x10, 0]); // PHYSICALOFFSET
    b.extend([0, 0, 0, 0x08]); // SYSFLAG = commit
    b.extend([1, 2, 3, 4, 5, 6, 7, 8]); // BORNTIMESTAMP
    b.extend([192, 168, 0, 1, 0, 0, 0x2A, 0x9F]); // BORNHOST 192.168.0.1:10911
    b.extend([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]); // STORETIMESTAMP
    b.extend([10, 0, 0, 2, 0, 0, 0x2A, 0x9F]); // STOREHOST 10.0.0.2:10911
    b.extend([0, 0, 0, 1]); // RECONSUMETIMES
    b.extend([0, 0, 0, 0, 0, 0, 0, 0]); // PREPARED TRANSACTION OFFSET
    b.extend([0, 0, 0, 2]); // BODY length
    b.extend(*b"hi");
    b.extend([1]); // TOPIC length (1 byte in v1)
    b.extend(*b"T");
    b.extend([0, 7]); // PROPERTIES length (int16)
    b.extend(*b"TAGS\x01a\x02");
    assert_eq!(b.len(), 101);
    b
}

fn golden_v1_message() -> StoredMessage {
    StoredMessage {
        queue_id: 3,
        flag: 0x10,
        queue_offset: 5,
        physical_offset: 0x1000,
        sys_flag: sysflag::TRANSACTION_COMMIT_TYPE,
        born_timestamp: 0x0102_0304_0506_0708,
        born_host: v4("192.168.0.1:10911"),
        store_timestamp: 0x1122_3344_5566_7788,
        store_host: v4("10.0.0.2:10911"),
        reconsume_times: 1,
        prepared_transaction_offset: 0,
        body: Bytes::from_static(b"hi"),
        topic: "T".into(),
        properties: [("TAGS", "a")].into_iter().collect(),
    }
}

#[test]
fn golden_v1_decode_and_encode() {
    let bytes = golden_v1();
    let m = decode(&bytes).unwrap();
    assert_eq!(m, golden_v1_message());
    let mut out = BytesMut::new();
    golden_v1_message().encode(&mut out).unwrap();
    assert_eq!(&out[..], &bytes[..]);
    assert_eq!(golden_v1_message().encoded_len(), 101);
    assert_eq!(peek_total_size(&bytes), Some((101, MESSAGE_MAGIC_CODE)));
    assert_eq!(store_timestamp_pos(0), 56);
    assert_eq!(store_host_pos(0), 64);
    let v = decode_view(&bytes, true).unwrap();
    assert_eq!(v.property(names::TAGS), Some("a"));
    assert_eq!(v.body_crc, 0x5893_2AAC);
}

/// A v2 record (2-byte topic length) with IPv6 born and store hosts.
#[test]
fn golden_v2_ipv6() {
    let topic = "t".repeat(130);
    let mut b: Vec<u8> = Vec::new();
    let total: u32 = 84 + 12 + 12 + 4 + 4 + 2 + 130 + 2;
    b.extend(total.to_be_bytes()); // TOTALSIZE
    b.extend([0xDA, 0xA3, 0x20, 0xAB]); // MAGICCODE v2
    b.extend([0x5B, 0xA8, 0x0B, 0xB2]); // BODYCRC = crc32("body") & 0x7fffffff
    b.extend([0, 0, 0, 0]); // QUEUEID
    b.extend([0, 0, 0, 0]); // FLAG
    b.extend([0, 0, 0, 0, 0, 0, 0, 0]); // QUEUEOFFSET
    b.extend([0, 0, 0, 0, 0, 0, 0, 0x40]); // PHYSICALOFFSET
    b.extend([0, 0, 0, 0x30]); // SYSFLAG: BORNHOST_V6 | STOREHOSTADDRESS_V6
    b.extend([0, 0, 0, 0, 0, 0, 0, 9]); // BORNTIMESTAMP
    b.extend([
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0x1F, 0x90,
    ]); // [::1]:8080
    b.extend([0, 0, 0, 0, 0, 0, 0, 10]); // STORETIMESTAMP
    b.extend([
        0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0x2A, 0x9F,
    ]); // [fe80::2]:10911
    b.extend([0, 0, 0, 0]); // RECONSUMETIMES
    b.extend([0, 0, 0, 0, 0, 0, 0, 0]); // PREPARED TRANSACTION OFFSET
    b.extend([0, 0, 0, 4]); // BODY length
    b.extend(*b"body");
    b.extend([0, 130]); // TOPIC length (int16 in v2)
    b.extend(topic.as_bytes());
    b.extend([0, 0]); // no properties
    assert_eq!(b.len(), total as usize);
    assert_eq!(store_timestamp_pos(0x30), 68);

    let m = decode(&b).unwrap();
    assert_eq!(m.topic, topic);
    assert_eq!(m.born_host, "[::1]:8080".parse::<SocketAddr>().unwrap());
    assert_eq!(
        m.store_host,
        "[fe80::2]:10911".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(m.physical_offset, 0x40);
    assert!(m.properties.is_empty());
    assert_eq!(&m.to_bytes().unwrap()[..], &b[..]);
}

#[test]
fn new_message_encodes_minimal_record() {
    let m = StoredMessage::new("T", 2, Bytes::from_static(b"x"));
    let b = m.to_bytes().unwrap();
    // 84 fixed + 4+1 body + 1+1 topic + 2 properties
    assert_eq!(b.len(), 93);
    assert_eq!(&b[12..16], &[0, 0, 0, 2]);
    assert_eq!(decode(&b).unwrap(), m);
    assert_eq!(names::UNIQ_KEY, "UNIQ_KEY");
    assert_eq!(names::DELAY, "DELAY");
}

#[test]
fn decode_all_reads_a_pull_body() {
    let mut body = golden_v1();
    body.extend(golden_v1());
    let all = decode_all(&body, true).unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].to_owned_message(), golden_v1_message());
    assert!(decode_all(&body[..150], true).is_err());
    assert!(decode_all(&[], true).unwrap().is_empty());
}

#[test]
fn rejects_bad_records() {
    let good = golden_v1();
    let mut bad_crc = good.clone();
    bad_crc[88] ^= 1; // first body byte (body starts at 84 + 4)
    assert!(matches!(decode(&bad_crc), Err(DecodeError::BodyCrc { .. })));
    assert!(decode_view(&bad_crc, false).is_ok());

    let mut blank = vec![0, 0, 0, 16];
    blank.extend([0xCB, 0xD4, 0x31, 0x94]);
    blank.extend([0; 8]);
    assert_eq!(decode(&blank), Err(DecodeError::Blank(16)));

    let mut bad_magic = good.clone();
    bad_magic[7] = 0;
    assert!(matches!(decode(&bad_magic), Err(DecodeError::BadMagic(_))));

    let mut bad_size = good.clone();
    bad_size[3] = 100; // one less than the fields take
    assert!(matches!(
        decode(&bad_size),
        Err(DecodeError::Truncated { .. })
    ));

    for n in 0..good.len() {
        assert!(decode(&good[..n]).is_err(), "prefix of {n} bytes decoded");
    }
}

/// A batch body assembled by hand: two messages.
#[test]
fn golden_batch() {
    let mut b: Vec<u8> = Vec::new();
    // message 1: flag 1, body "x", props "UNIQ_KEY\x01A\x02" (11 bytes); size 22 + 1 + 11 = 34
    b.extend([0, 0, 0, 34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]);
    b.extend(*b"x");
    b.extend([0, 11]);
    b.extend(*b"UNIQ_KEY\x01A\x02");
    // message 2: flag 0, empty body, no props; size 22
    b.extend([
        0, 0, 0, 22, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    let buf = Bytes::from(b.clone());
    let entries = decode_batch(&buf).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].flag, 1);
    assert_eq!(&entries[0].body[..], b"x");
    assert_eq!(entries[0].properties.uniq_key(), Some("A"));
    assert!(entries[1].body.is_empty());
    let mut out = Vec::new();
    encode_batch(&entries, &mut out).unwrap();
    assert_eq!(out, b);
    for n in 1..b.len() {
        if n == 34 {
            continue; // a whole first message is a valid batch
        }
        assert!(
            decode_batch(&Bytes::from(b[..n].to_vec())).is_err(),
            "prefix {n}"
        );
    }
}

fn arb_host() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn arb_props() -> impl Strategy<Value = Properties> {
    proptest::collection::vec(("[A-Z_]{1,12}", "[ -~é中]{1,20}"), 0..6)
        .prop_map(|kv| kv.into_iter().collect())
}

prop_compose! {
    fn arb_message()(
        queue_id in any::<i32>(), flag in any::<i32>(), queue_offset in any::<i64>(),
        physical_offset in any::<i64>(), sys_flag in any::<i32>(), born_timestamp in any::<i64>(),
        born_host in arb_host(), store_timestamp in any::<i64>(), store_host in arb_host(),
        reconsume_times in any::<i32>(), prepared in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        topic in "[A-Za-z0-9%|_-]{0,200}", properties in arb_props(),
    ) -> StoredMessage {
        let mut m = StoredMessage {
            queue_id, flag, queue_offset, physical_offset, sys_flag, born_timestamp, born_host,
            store_timestamp, store_host, reconsume_times, prepared_transaction_offset: prepared,
            body: body.into(), topic, properties,
        };
        m.sys_flag = m.effective_sys_flag();
        m
    }
}

proptest! {
    #[test]
    fn stored_round_trip(m in arb_message()) {
        let bytes = m.to_bytes().unwrap();
        prop_assert_eq!(bytes.len(), m.encoded_len());
        prop_assert_eq!(decode(&bytes).unwrap(), m);
    }

    #[test]
    fn batch_round_trip(entries in proptest::collection::vec(
        (any::<i32>(), proptest::collection::vec(any::<u8>(), 0..100), arb_props())
            .prop_map(|(flag, body, properties)| BatchEntry { flag, body: body.into(), properties }),
        0..5)) {
        let mut out = Vec::new();
        encode_batch(&entries, &mut out).unwrap();
        prop_assert_eq!(decode_batch(&Bytes::from(out)).unwrap(), entries);
    }

    #[test]
    fn properties_round_trip(p in arb_props()) {
        prop_assert_eq!(Properties::parse(&p.encode()), p);
    }

    #[test]
    fn offset_id_round_trip(host in arb_host(), off in any::<i64>()) {
        prop_assert_eq!(decode_offset_msg_id(&encode_offset_msg_id(host, off)).unwrap(), (host, off));
    }

    #[test]
    fn random_input_never_panics(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode(&b);
        let _ = decode_view(&b, false);
        let _ = decode_all(&b, true);
        let _ = decode_batch(&Bytes::from(b.clone()));
        let _ = Properties::parse(&String::from_utf8_lossy(&b));
        let _ = decode_offset_msg_id(&String::from_utf8_lossy(&b));
    }

    #[test]
    fn mutated_records_never_panic(m in arb_message(), pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
        let mut b = m.to_bytes().unwrap().to_vec();
        let i = pos % b.len();
        b[i] = byte;
        let _ = decode(&b);
        let n = cut % (b.len() + 1);
        let _ = decode(&b[..n]);
    }
}

/// Found by the fuzzer: a record claiming 6 bytes, less than its own header.
#[test]
fn total_size_below_the_header_is_an_error() {
    let bytes = [
        0x00, 0x00, 0x00, 0x06, 0xda, 0xa3, 0x20, 0xab, 0x00, 0x00, 0x0a,
    ];
    assert!(super::decode_all(&bytes, true).is_err());
    let zero = [0x00, 0x00, 0x00, 0x00, 0xda, 0xa3, 0x20, 0xab];
    assert!(
        super::decode_all(&zero, false).is_err(),
        "a zero size must not loop"
    );
}
