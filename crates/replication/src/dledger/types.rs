//! The Raft type configuration of DLedger mode.

use std::io::Cursor;

use bytes::Bytes;
use ferrocket_store::PutResult;

/// Node ids are positions in `dLegerPeers` (n0 = 0, ...).
pub type NodeId = u64;

/// A proposal: stored-message records (RocketMQ's commitlog format) back to back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request(pub Bytes);

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
