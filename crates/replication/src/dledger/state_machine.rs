//! The state machine: applying a committed entry stores its messages in the broker's commitlog
//! (through an [`Applier`]), so consumers only ever see committed messages.
//!
//! What has been applied is recorded in `apply.journal`: after each applied batch, a record of
//! `[term][node][index][commitlog end]` (u64/u64/u64/i64 little endian, then a crc32). On open,
//! the last record whose commitlog end the store actually holds is the applied point; a store
//! that holds more (a batch cut short by a crash) is truncated back to it, and openraft applies
//! the rest again from the Raft log. The last two memberships live in `membership.json`.
//!
//! Snapshots carry only the applied point and membership: the Raft log is never purged (no
//! snapshot policy), so a lagging or wiped node always catches up from the log itself.

use std::fs::{File, OpenOptions};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, CommittedLeaderId, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageIOError, StoredMembership,
};
use serde_json::{json, Value};

use super::codec::{
    snapshot_meta_from_json, snapshot_meta_to_json, stored_membership_from_json,
    stored_membership_to_json,
};
use super::types::{Entry, NodeId, Response, StorageError, TypeConfig};
use ferrocket_store::PutResult;

/// Where committed messages go: the broker's store.
pub trait Applier: Send + Sync + 'static {
    /// Stores the records of one send; the result is the send's outcome on the leader. The
    /// records must be appended before this returns (the future only waits for durability),
    /// so that the sends of a batch land in the commitlog in log order.
    fn apply(&self, records: Bytes) -> BoxFuture<'static, PutResult>;
    /// The commitlog's end (its max physical offset).
    fn log_end(&self) -> i64;
    /// Drops the commitlog past `end` (undoing a batch a crash cut short).
    fn truncate(&self, end: i64) -> std::io::Result<()>;
}

const JOURNAL_RECORD: usize = 36;

pub struct StateMachine {
    dir: PathBuf,
    applier: Arc<dyn Applier>,
    journal: File,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    previous_membership: StoredMembership<NodeId, BasicNode>,
    /// The last snapshot built or installed (shared with the builders).
    snapshot: CurrentSnapshot,
}

type CurrentSnapshot = Arc<std::sync::Mutex<Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>>>;

fn sm_err(e: impl std::fmt::Display) -> StorageError {
    StorageIOError::write_state_machine(&std::io::Error::other(e.to_string())).into()
}

fn journal_record(id: &LogId<NodeId>, end: i64) -> [u8; JOURNAL_RECORD] {
    let mut r = [0u8; JOURNAL_RECORD];
    r[0..8].copy_from_slice(&id.leader_id.term.to_le_bytes());
    r[8..16].copy_from_slice(&id.leader_id.node_id.to_le_bytes());
    r[16..24].copy_from_slice(&id.index.to_le_bytes());
    r[24..32].copy_from_slice(&end.to_le_bytes());
    let crc = crc32fast::hash(&r[..32]);
    r[32..36].copy_from_slice(&crc.to_le_bytes());
    r
}

fn parse_record(r: &[u8]) -> Option<(LogId<NodeId>, i64)> {
    let crc = u32::from_le_bytes(r[32..36].try_into().ok()?);
    if crc32fast::hash(&r[..32]) != crc {
        return None;
    }
    let u = |i: usize| u64::from_le_bytes(r[i..i + 8].try_into().expect("8 bytes"));
    Some((
        LogId::new(CommittedLeaderId::new(u(0), u(8)), u(16)),
        i64::from_le_bytes(r[24..32].try_into().ok()?),
    ))
}

impl StateMachine {
    /// Opens the state machine in `dir`, reconciling the journal with the store.
    pub fn open(dir: &Path, applier: Arc<dyn Applier>) -> std::io::Result<StateMachine> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("apply.journal");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e),
        };
        let log_end = applier.log_end();
        let mut applied = None;
        let mut applied_end = 0i64;
        let mut good = 0usize;
        for (i, chunk) in bytes.chunks_exact(JOURNAL_RECORD).enumerate() {
            match parse_record(chunk) {
                Some((id, end)) if end <= log_end => {
                    applied = Some(id);
                    applied_end = end;
                    good = (i + 1) * JOURNAL_RECORD;
                }
                _ => break,
            }
        }
        if applied.is_some() && log_end > applied_end {
            tracing::warn!(
                from = applied_end,
                to = log_end,
                "commitlog holds a partly applied batch: truncating it, it is applied again from the Raft log"
            );
            applier.truncate(applied_end)?;
        }
        let journal = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        journal.set_len(good as u64)?;
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            applier,
            journal,
            applied,
            membership: StoredMembership::default(),
            previous_membership: StoredMembership::default(),
            snapshot: CurrentSnapshot::default(),
        };
        if let Ok(b) = std::fs::read(dir.join("membership.json")) {
            let v: Value = serde_json::from_slice(&b).map_err(std::io::Error::other)?;
            let cur = stored_membership_from_json(&v["current"]).map_err(std::io::Error::other)?;
            let prev =
                stored_membership_from_json(&v["previous"]).map_err(std::io::Error::other)?;
            // A membership written for an entry the journal does not cover is applied again.
            if cur.log_id().is_some() && cur.log_id() > &sm.applied {
                sm.membership = prev;
            } else {
                sm.membership = cur;
                sm.previous_membership = prev;
            }
        }
        Ok(sm)
    }

    fn save_membership(&self) -> std::io::Result<()> {
        let v = json!({
            "current": stored_membership_to_json(&self.membership),
            "previous": stored_membership_to_json(&self.previous_membership),
        });
        let tmp = self.dir.join("membership.json.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(v.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(tmp, self.dir.join("membership.json"))
    }

    fn journal(&mut self) -> std::io::Result<()> {
        if let Some(id) = self.applied {
            self.journal
                .write_all(&journal_record(&id, self.applier.log_end()))?;
        }
        Ok(())
    }

    fn meta(&self) -> SnapshotMeta<NodeId, BasicNode> {
        SnapshotMeta {
            last_log_id: self.applied,
            last_membership: self.membership.clone(),
            snapshot_id: self.applied.map_or("0-0".into(), |l| {
                format!("{}-{}", l.leader_id.term, l.index)
            }),
        }
    }
}

/// Builds the (metadata-only) snapshot.
pub struct SnapshotBuilder {
    meta: SnapshotMeta<NodeId, BasicNode>,
    current: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = snapshot_meta_to_json(&self.meta);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((self.meta.clone(), data.clone()));
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // Every send is appended as its `apply` is called; the futures only wait for the
        // flush (SYNC_FLUSH), so they are awaited after the whole batch is appended and its
        // sends share fsyncs.
        let mut pending = Vec::new();
        let mut membership_changed = false;
        for e in entries {
            let futs = match e.payload {
                EntryPayload::Blank => Vec::new(),
                EntryPayload::Normal(req) => match req.parts() {
                    Some(parts) => parts.into_iter().map(|p| self.applier.apply(p)).collect(),
                    None => {
                        tracing::error!(index = e.log_id.index, "malformed DLedger batch skipped");
                        Vec::new()
                    }
                },
                EntryPayload::Membership(m) => {
                    self.previous_membership = std::mem::take(&mut self.membership);
                    self.membership = StoredMembership::new(Some(e.log_id), m);
                    membership_changed = true;
                    Vec::new()
                }
            };
            self.applied = Some(e.log_id);
            pending.push(futs);
        }
        let mut out = Vec::with_capacity(pending.len());
        for futs in pending {
            out.push(Response(futures::future::join_all(futs).await));
        }
        if membership_changed {
            self.save_membership().map_err(sm_err)?;
        }
        self.journal().map_err(sm_err)?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            meta: self.meta(),
            current: Arc::clone(&self.snapshot),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        // The data is the metadata itself; a real divergence would show here.
        if !snapshot.get_ref().is_empty() {
            snapshot_meta_from_json(snapshot.get_ref()).map_err(sm_err)?;
        }
        self.applied = meta.last_log_id;
        self.previous_membership = std::mem::take(&mut self.membership);
        self.membership = meta.last_membership.clone();
        self.save_membership().map_err(sm_err)?;
        self.journal().map_err(sm_err)?;
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((meta.clone(), snapshot.into_inner()));
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let cur = self.snapshot.lock().unwrap_or_else(|e| e.into_inner());
        Ok(cur.as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}
