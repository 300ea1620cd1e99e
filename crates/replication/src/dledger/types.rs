//! The Raft type configuration of DLedger mode.

use std::io::Cursor;

use bytes::Bytes;
use ferrocket_store::PutResult;

/// Node ids are positions in `dLegerPeers` (n0 = 0, ...).
pub type NodeId = u64;

/// A proposal: the entry kind byte (1) then stored-message records (RocketMQ's commitlog
/// format) back to back. Kept in its wire form so that the log file and every follower's RPC
/// share the bytes without copying them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request(pub Bytes);

impl Request {
    /// A proposal of `records` (copied once, after the kind byte).
    pub fn new(records: &[u8]) -> Request {
        let mut v = Vec::with_capacity(1 + records.len());
        v.push(super::codec::NORMAL);
        v.extend_from_slice(records);
        Request(Bytes::from(v))
    }

    /// The records.
    pub fn records(&self) -> Bytes {
        self.0.slice(1.min(self.0.len())..)
    }
}

/// What applying an entry gave: the store's outcome for message entries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response(pub Option<PutResult>);

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
