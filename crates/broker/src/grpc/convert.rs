//! A stored message as the 5.x clients receive it (`GrpcConverter` in RocketMQ's proxy).

use std::time::Duration;

use ferrocket_protocol::message::{encode_offset_msg_id, names, StoredMessage};
use md5::{Digest, Md5};

use super::pb;
use crate::pop::Popped;

/// Properties that are RocketMQ's own, never shown as user properties.
const SYSTEM: &[&str] = &[
    names::TAGS,
    names::KEYS,
    names::WAIT_STORE_MSG_OK,
    names::DELAY_TIME_LEVEL,
    names::RETRY_TOPIC,
    names::REAL_TOPIC,
    names::REAL_QUEUE_ID,
    names::TRANSACTION_PREPARED,
    names::PRODUCER_GROUP,
    names::MIN_OFFSET,
    names::MAX_OFFSET,
    names::ORIGIN_MESSAGE_ID,
    names::RECONSUME_TIME,
    names::MSG_REGION,
    names::TRACE_SWITCH,
    names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
    names::MAX_RECONSUME_TIMES,
    names::CONSUME_START_TIMESTAMP,
    names::TRANSACTION_PREPARED_QUEUE_OFFSET,
    names::TRANSACTION_CHECK_TIMES,
    names::CHECK_IMMUNITY_TIME_IN_SECONDS,
    names::CLUSTER,
    names::MESSAGE_TYPE,
    names::TIMER_DELIVER_MS,
    names::TIMER_DELAY_SEC,
    names::TIMER_DELAY_MS,
    names::TIMER_ENQUEUE_MS,
    names::TIMER_DEQUEUE_MS,
    names::TIMER_ROLL_TIMES,
    names::TIMER_OUT_MS,
    names::TIMER_DEL_UNIQKEY,
    names::TIMER_DELAY_LEVEL,
    names::SHARDING_KEY,
    names::POP_CK,
    names::POP_CK_OFFSET,
    names::FIRST_POP_TIME,
    names::DUP_INFO,
];

pub(crate) fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

pub(crate) fn timestamp_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds * 1000 + i64::from(t.nanos) / 1_000_000
}

pub(crate) fn duration(d: Duration) -> prost_types::Duration {
    prost_types::Duration {
        seconds: d.as_secs() as i64,
        nanos: d.subsec_nanos() as i32,
    }
}

pub(crate) fn duration_ms(d: &prost_types::Duration) -> i64 {
    d.seconds * 1000 + i64::from(d.nanos) / 1_000_000
}

/// Upper-case hex MD5, as the proxy sends and the clients compare.
fn md5_hex(body: &[u8]) -> String {
    Md5::digest(body)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The message id clients see: the producer's (UNIQ_KEY), else the offset id.
pub(crate) fn message_id(m: &StoredMessage) -> String {
    m.properties
        .get(names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX)
        .map(String::from)
        .unwrap_or_else(|| encode_offset_msg_id(m.store_host, m.physical_offset))
}

fn message_type(m: &StoredMessage) -> pb::MessageType {
    let p = &m.properties;
    if p.get(names::TRANSACTION_PREPARED) == Some("true") {
        pb::MessageType::Transaction
    } else if p.get(names::SHARDING_KEY).is_some() {
        pb::MessageType::Fifo
    } else if p.get(names::TIMER_DELIVER_MS).is_some() || p.get(names::DELAY_TIME_LEVEL).is_some() {
        pb::MessageType::Delay
    } else {
        pb::MessageType::Normal
    }
}

/// Largest body inflated for a gRPC client (a compressed body could expand without bound).
const MAX_INFLATED: u64 = 64 << 20;

/// The body as the producer sent it: 4.x Java producers zlib-compress bodies over 4 KiB (sysflag
/// COMPRESSED), 5.x clients expect them plain (or GZIP, which zlib is not).
fn plain_body(m: &StoredMessage) -> Vec<u8> {
    use std::io::Read;
    if m.sys_flag & ferrocket_protocol::message::sysflag::COMPRESSED == 0 {
        return m.body.to_vec();
    }
    let mut out = Vec::new();
    match flate2::read::ZlibDecoder::new(&m.body[..])
        .take(MAX_INFLATED)
        .read_to_end(&mut out)
    {
        Ok(_) => out,
        Err(e) => {
            tracing::warn!(error = %e, "compressed body does not inflate; delivered as stored");
            m.body.to_vec()
        }
    }
}

/// `m` as delivered: every system property the clients read.
pub(crate) fn to_pb(m: StoredMessage, popped: Option<&Popped>) -> pb::Message {
    let body = plain_body(&m);
    let p = &m.properties;
    let user_properties = p
        .iter()
        .filter(|(k, _)| !SYSTEM.contains(k))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sp = pb::SystemProperties {
        tag: p.get(names::TAGS).map(String::from),
        keys: p
            .get(names::KEYS)
            .map(|k| {
                k.split(' ')
                    .filter(|k| !k.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
        message_id: message_id(&m),
        body_digest: Some(pb::Digest {
            r#type: pb::DigestType::Md5 as i32,
            checksum: md5_hex(&body),
        }),
        body_encoding: pb::Encoding::Identity as i32,
        message_type: message_type(&m) as i32,
        born_timestamp: Some(timestamp(m.born_timestamp)),
        born_host: m.born_host.ip().to_string(),
        store_timestamp: Some(timestamp(m.store_timestamp)),
        store_host: m.store_host.to_string(),
        delivery_timestamp: p
            .get(names::TIMER_DELIVER_MS)
            .and_then(|v| v.parse().ok())
            .map(timestamp),
        receipt_handle: popped.map(|x| x.handle.clone()),
        queue_id: m.queue_id,
        queue_offset: Some(m.queue_offset),
        invisible_duration: popped
            .map(|x| duration(Duration::from_millis(x.invisible_ms.max(0) as u64))),
        delivery_attempt: popped.map(|x| x.attempt),
        message_group: p.get(names::SHARDING_KEY).map(String::from),
        trace_context: None,
        orphaned_transaction_recovery_duration: None,
        dead_letter_queue: None,
        lite_topic: None,
        priority: None,
    };
    pb::Message {
        topic: Some(pb::Resource {
            resource_namespace: String::new(),
            name: m.topic.clone(),
        }),
        user_properties,
        system_properties: Some(sp),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_and_times_are_what_clients_expect() {
        assert_eq!(md5_hex(b"abc"), "900150983CD24FB0D6963F7D28E17F72");
        let t = timestamp(1_700_000_000_123);
        assert_eq!((t.seconds, t.nanos), (1_700_000_000, 123_000_000));
        assert_eq!(
            duration_ms(&prost_types::Duration {
                seconds: 2,
                nanos: 500_000_000
            }),
            2500
        );
    }
}
