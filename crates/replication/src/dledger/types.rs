//! The Raft type configuration of DLedger mode.

use std::io::Cursor;

use bytes::Bytes;
use ferrocket_store::PutResult;

/// Node ids are positions in `dLegerPeers` (n0 = 0, ...).
pub type NodeId = u64;

/// A proposal, kept in its wire form so that the log file and every follower's RPC share the
/// bytes without copying them. Either the kind byte NORMAL then one send's stored-message
/// records (RocketMQ's commitlog format) back to back, or the kind byte BATCH, a u32 count and
/// that many `[u32 length][records]` parts: the sends the leader gathered while earlier entries
/// were in flight (all integers little endian).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request(pub Bytes);

impl Request {
    /// A proposal of one send's `records` (copied once, after the kind byte).
    pub fn new(records: &[u8]) -> Request {
        let mut v = Vec::with_capacity(1 + records.len());
        v.push(super::codec::NORMAL);
        v.extend_from_slice(records);
        Request(Bytes::from(v))
    }

    /// One entry carrying several sends (one part each); a single part is a NORMAL entry.
    pub fn batch(parts: &[Bytes]) -> Request {
        if let [one] = parts {
            return Request::new(one);
        }
        let len = 5 + parts.iter().map(|p| 4 + p.len()).sum::<usize>();
        let mut v = Vec::with_capacity(len);
        v.push(super::codec::BATCH);
        v.extend_from_slice(&(parts.len() as u32).to_le_bytes());
        for p in parts {
            v.extend_from_slice(&(p.len() as u32).to_le_bytes());
            v.extend_from_slice(p);
        }
        Request(Bytes::from(v))
    }

    /// The records of each send, in order (shared with the entry, not copied). `None` for a
    /// malformed batch (which only a bug can produce: entries are checksummed on disk and come
    /// from peers of the same group).
    pub fn parts(&self) -> Option<Vec<Bytes>> {
        match self.0.first() {
            Some(&super::codec::NORMAL) => Some(vec![self.0.slice(1..)]),
            Some(&super::codec::BATCH) => {
                let b = &self.0;
                let n = u32::from_le_bytes(b.get(1..5)?.try_into().ok()?) as usize;
                let mut out = Vec::with_capacity(n.min(4096));
                let mut pos = 5;
                for _ in 0..n {
                    let len = u32::from_le_bytes(b.get(pos..pos + 4)?.try_into().ok()?) as usize;
                    pos += 4;
                    b.get(pos..pos + len)?;
                    out.push(b.slice(pos..pos + len));
                    pos += len;
                }
                (pos == b.len()).then_some(out)
            }
            _ => None,
        }
    }
}

/// What applying an entry gave: the store's outcome of each send it carried (none for blank
/// and membership entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response(pub Vec<PutResult>);

openraft::declare_raft_types!(
    /// DLedger's openraft types.
    pub TypeConfig:
        D = Request,
        R = Response,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Entry = openraft::Entry<TypeConfig>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
