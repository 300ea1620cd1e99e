//! Conversions between openraft's types and the wire (`proto/dledger.proto`), and the binary
//! form of an entry's payload shared by the RPCs and the log file.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use openraft::{
    BasicNode, CommittedLeaderId, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership,
    Vote,
};
use serde_json::{json, Value};

use super::pb;
use super::types::{Entry, NodeId, Request, TypeConfig};

const BLANK: u8 = 0;
/// Kind byte of a proposal (a [`Request`] starts with it).
pub(crate) const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;
/// Kind byte of a proposal carrying several sends.
pub(crate) const BATCH: u8 = 3;

/// A malformed payload (from a peer or from disk).
#[derive(Debug, thiserror::Error)]
#[error("bad DLedger entry: {0}")]
pub struct CodecError(pub String);

pub fn log_id_to_pb(id: &LogId<NodeId>) -> pb::LogId {
    pb::LogId {
        term: id.leader_id.term,
        node_id: id.leader_id.node_id,
        index: id.index,
    }
}

pub fn log_id_from_pb(id: &pb::LogId) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(id.term, id.node_id), id.index)
}

pub fn vote_to_pb(v: &Vote<NodeId>) -> pb::Vote {
    pb::Vote {
        term: v.leader_id.term,
        node_id: v.leader_id.node_id,
        committed: v.committed,
    }
}

pub fn vote_from_pb(v: Option<&pb::Vote>) -> Vote<NodeId> {
    match v {
        Some(v) if v.committed => Vote::new_committed(v.term, v.node_id),
        Some(v) => Vote::new(v.term, v.node_id),
        None => Vote::default(),
    }
}

pub fn membership_to_json(m: &Membership<NodeId, BasicNode>) -> Value {
    let configs: Vec<Vec<NodeId>> = m
        .get_joint_config()
        .iter()
        .map(|c| c.iter().copied().collect())
        .collect();
    let nodes: BTreeMap<String, String> = m
        .nodes()
        .map(|(id, n)| (id.to_string(), n.addr.clone()))
        .collect();
    json!({ "configs": configs, "nodes": nodes })
}

pub fn membership_from_json(v: &Value) -> Result<Membership<NodeId, BasicNode>, CodecError> {
    let bad = |w: &str| CodecError(format!("membership: {w}"));
    let configs: Vec<BTreeSet<NodeId>> = v["configs"]
        .as_array()
        .ok_or_else(|| bad("no configs"))?
        .iter()
        .map(|c| {
            c.as_array()
                .ok_or_else(|| bad("config is not a list"))?
                .iter()
                .map(|id| id.as_u64().ok_or_else(|| bad("node id is not a number")))
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let nodes: BTreeMap<NodeId, BasicNode> = v["nodes"]
        .as_object()
        .ok_or_else(|| bad("no nodes"))?
        .iter()
        .map(|(id, addr)| {
            Ok((
                id.parse().map_err(|_| bad("node id is not a number"))?,
                BasicNode::new(addr.as_str().ok_or_else(|| bad("address"))?),
            ))
        })
        .collect::<Result<_, CodecError>>()?;
    Ok(Membership::new(configs, nodes))
}

fn opt_log_id_json(id: &Option<LogId<NodeId>>) -> Value {
    match id {
        Some(id) => json!([id.leader_id.term, id.leader_id.node_id, id.index]),
        None => Value::Null,
    }
}

fn opt_log_id_from_json(v: &Value) -> Option<LogId<NodeId>> {
    let a = v.as_array()?;
    Some(LogId::new(
        CommittedLeaderId::new(a.first()?.as_u64()?, a.get(1)?.as_u64()?),
        a.get(2)?.as_u64()?,
    ))
}

pub fn stored_membership_to_json(m: &StoredMembership<NodeId, BasicNode>) -> Value {
    json!({ "log_id": opt_log_id_json(m.log_id()), "membership": membership_to_json(m.membership()) })
}

pub fn stored_membership_from_json(
    v: &Value,
) -> Result<StoredMembership<NodeId, BasicNode>, CodecError> {
    Ok(StoredMembership::new(
        opt_log_id_from_json(&v["log_id"]),
        membership_from_json(&v["membership"])?,
    ))
}

pub fn snapshot_meta_to_json(m: &SnapshotMeta<NodeId, BasicNode>) -> Vec<u8> {
    json!({
        "last_log_id": opt_log_id_json(&m.last_log_id),
        "last_membership": stored_membership_to_json(&m.last_membership),
        "snapshot_id": m.snapshot_id,
    })
    .to_string()
    .into_bytes()
}

pub fn snapshot_meta_from_json(b: &[u8]) -> Result<SnapshotMeta<NodeId, BasicNode>, CodecError> {
    let v: Value =
        serde_json::from_slice(b).map_err(|e| CodecError(format!("snapshot meta: {e}")))?;
    Ok(SnapshotMeta {
        last_log_id: opt_log_id_from_json(&v["last_log_id"]),
        last_membership: stored_membership_from_json(&v["last_membership"])?,
        snapshot_id: v["snapshot_id"].as_str().unwrap_or_default().to_string(),
    })
}

/// The payload bytes of an entry: kind byte, then data (a proposal's are shared, not copied).
pub fn payload_bytes(p: &EntryPayload<TypeConfig>) -> Bytes {
    match p {
        EntryPayload::Blank => Bytes::from_static(&[BLANK]),
        EntryPayload::Normal(r) => r.0.clone(),
        EntryPayload::Membership(m) => {
            let mut v = vec![MEMBERSHIP];
            v.extend_from_slice(membership_to_json(m).to_string().as_bytes());
            Bytes::from(v)
        }
    }
}

/// Rebuilds an entry from its log id and payload bytes.
pub fn entry_from(log_id: LogId<NodeId>, payload: Bytes) -> Result<Entry, CodecError> {
    let payload = match payload.first() {
        Some(&BLANK) => EntryPayload::Blank,
        Some(&NORMAL | &BATCH) => EntryPayload::Normal(Request(payload)),
        Some(&MEMBERSHIP) => {
            let v: Value = serde_json::from_slice(&payload[1..])
                .map_err(|e| CodecError(format!("membership json: {e}")))?;
            EntryPayload::Membership(membership_from_json(&v)?)
        }
        Some(k) => return Err(CodecError(format!("unknown entry kind {k}"))),
        None => return Err(CodecError("empty payload".into())),
    };
    Ok(Entry { log_id, payload })
}

pub fn entry_to_pb(e: &Entry) -> pb::Entry {
    pb::Entry {
        log_id: Some(log_id_to_pb(&e.log_id)),
        payload: payload_bytes(&e.payload),
    }
}

pub fn entry_from_pb(e: pb::Entry) -> Result<Entry, CodecError> {
    let id = e
        .log_id
        .as_ref()
        .ok_or_else(|| CodecError("entry without log id".into()))?;
    entry_from(log_id_from_pb(id), e.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let id = LogId::new(CommittedLeaderId::new(3, 1), 42);
        let nodes: BTreeMap<u64, BasicNode> = [(0, BasicNode::new("127.0.0.11:40911"))].into();
        let m = Membership::new(vec![[0u64].into()], nodes);
        for p in [
            EntryPayload::Blank,
            EntryPayload::Normal(Request::new(b"records")),
            EntryPayload::Normal(Request::batch(&[
                Bytes::from_static(b"one"),
                Bytes::from_static(b"two"),
            ])),
            EntryPayload::Membership(m),
        ] {
            let e = Entry {
                log_id: id,
                payload: p,
            };
            let back = entry_from_pb(entry_to_pb(&e)).unwrap();
            assert_eq!(format!("{e:?}"), format!("{back:?}"));
        }
        assert!(entry_from(id, Bytes::from_static(&[9])).is_err());
        assert!(entry_from(id, Bytes::new()).is_err());
    }

    #[test]
    fn batches_split_into_their_parts() {
        let parts = [
            Bytes::from_static(b"first send"),
            Bytes::new(),
            Bytes::from_static(b"third"),
        ];
        let r = Request::batch(&parts);
        assert_eq!(r.0[0], BATCH);
        assert_eq!(r.parts().unwrap(), parts.to_vec());
        let one = Request::batch(&parts[..1]);
        assert_eq!(one, Request::new(b"first send"));
        assert_eq!(one.parts().unwrap(), parts[..1].to_vec());
        // Truncated, overlong and trailing-garbage batches are refused, never read past.
        let b = &r.0;
        for bad in [b.slice(..b.len() - 1), b.slice(..3), {
            let mut v = b.to_vec();
            v.push(0);
            Bytes::from(v)
        }] {
            assert_eq!(Request(bad).parts(), None);
        }
        let mut huge = vec![BATCH];
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request(Bytes::from(huge)).parts(), None);
    }
}
