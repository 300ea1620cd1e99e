//! The state machine: applying a committed entry stores its messages in the broker's commitlog
//! (through an [`Applier`]), so consumers only ever see committed messages.
//!
//! What has been applied is recorded in `apply.journal`: after each applied batch, a record of
//! `[term][node][index][commitlog end]` (u64/u64/u64/i64 little endian, then a crc32). On open,
//! the last record whose commitlog end the store actually holds is the applied point; a store
//! that holds more (a batch cut short by a crash) is truncated back to it, and openraft applies
//! the rest again from the Raft log. The last two memberships live in `membership.json`.
//!
//! A snapshot stands for the commitlog up to the applied point: its data is that point's
//! commitlog end. Once one is taken the Raft log before it is purged (keeping the log bounded);
//! a node sent a snapshot copies the committed commitlog bytes it lacks from a peer
//! ([`CommitlogSource`]), from its own end, or from the peer's first segment when its store is
//! empty (a wiped node). The copy is crash-safe without a marker: until the journal records the
//! snapshot, a restart cuts the commitlog back to the last journaled end and the snapshot is
//! sent again. A store that is not empty but ends before the peers' oldest segment (a node away
//! for longer than `fileReservedTime`) cannot be patched up: the install fails, naming what to
//! do. The current snapshot is kept in `snapshot.json`.

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
use ferrocket_store::{PutResult, PutStatus};

pub use super::catch_up::{Chunk, CommitlogSource};

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
    /// The commitlog's first offset (its oldest segment's start).
    fn log_min(&self) -> i64;
    /// Committed commitlog bytes from `from`, at most `max`, never past a segment's end
    /// (serving a peer that installs a snapshot). `None` when not held.
    fn read(&self, from: i64, max: usize) -> Option<Bytes>;
    /// Appends bytes read from a peer at `at`, which must be the end (or, in an empty store, a
    /// segment start); complete records are dispatched. Returns the new end.
    fn append_raw(&self, at: i64, data: &[u8]) -> std::io::Result<i64>;
}

const JOURNAL_RECORD: usize = 36;

/// Journal size past which it is started again with its last record.
const JOURNAL_MAX: u64 = 1 << 20;

/// A snapshot's data: the commitlog end at its last log id.
fn snapshot_data(commitlog_end: i64) -> Vec<u8> {
    json!({ "commitlog_end": commitlog_end })
        .to_string()
        .into_bytes()
}

fn snapshot_end(data: &[u8]) -> Result<i64, String> {
    let v: Value = serde_json::from_slice(data).map_err(|e| format!("snapshot data: {e}"))?;
    v["commitlog_end"]
        .as_i64()
        .ok_or_else(|| "snapshot data without commitlog_end".to_string())
}

fn read_snapshot_file(dir: &Path) -> std::io::Result<Option<StoredSnapshot>> {
    let b = match std::fs::read(dir.join("snapshot.json")) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_slice(&b).map_err(std::io::Error::other)?;
    let meta =
        snapshot_meta_from_json(v["meta"].to_string().as_bytes()).map_err(std::io::Error::other)?;
    Ok(Some((meta, v["data"].to_string().into_bytes())))
}

fn write_snapshot_file(
    dir: &Path,
    meta: &SnapshotMeta<NodeId, BasicNode>,
    data: &[u8],
) -> std::io::Result<()> {
    let meta: Value = serde_json::from_slice(&snapshot_meta_to_json(meta))?;
    let data: Value = serde_json::from_slice(data)?;
    let tmp = dir.join("snapshot.json.tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(json!({ "meta": meta, "data": data }).to_string().as_bytes())?;
    f.sync_all()?;
    std::fs::rename(tmp, dir.join("snapshot.json"))
}

/// Whether a put's outcome is the same on every node: stored, or refused for what the send is.
fn applied_alike(s: PutStatus) -> bool {
    s.is_stored()
        || matches!(
            s,
            PutStatus::MessageIllegal | PutStatus::PropertiesSizeExceeded
        )
}

pub struct StateMachine {
    dir: PathBuf,
    applier: Arc<dyn Applier>,
    source: Option<Arc<dyn CommitlogSource>>,
    journal: File,
    journal_len: u64,
    applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    previous_membership: StoredMembership<NodeId, BasicNode>,
    /// The last snapshot built or installed (shared with the builders).
    snapshot: CurrentSnapshot,
}

/// A snapshot's metadata and data.
type StoredSnapshot = (SnapshotMeta<NodeId, BasicNode>, Vec<u8>);

type CurrentSnapshot = Arc<std::sync::Mutex<Option<StoredSnapshot>>>;

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
        // Append mode: records go after the intact ones (a plain write handle would start at
        // the file's beginning and overwrite the oldest records with newer ones).
        let journal = OpenOptions::new().create(true).append(true).open(&path)?;
        journal.set_len(good as u64)?;
        let current = read_snapshot_file(dir)?;
        let mut sm = StateMachine {
            dir: dir.to_path_buf(),
            applier,
            source: None,
            journal,
            journal_len: good as u64,
            applied,
            membership: StoredMembership::default(),
            previous_membership: StoredMembership::default(),
            snapshot: Arc::new(std::sync::Mutex::new(current)),
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

    /// The members to copy commitlog bytes from when a snapshot is installed.
    pub fn set_source(&mut self, source: Arc<dyn CommitlogSource>) {
        self.source = Some(source);
    }

    fn journal(&mut self) -> std::io::Result<()> {
        let Some(id) = self.applied else {
            return Ok(());
        };
        let rec = journal_record(&id, self.applier.log_end());
        if self.journal_len >= JOURNAL_MAX {
            // Only the last record counts: start a new journal holding just it.
            let tmp = self.dir.join("apply.journal.tmp");
            let mut f = File::create(&tmp)?;
            f.write_all(&rec)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.dir.join("apply.journal"))?;
            File::open(&self.dir)?.sync_all()?;
            self.journal = OpenOptions::new()
                .append(true)
                .open(self.dir.join("apply.journal"))?;
            self.journal_len = JOURNAL_RECORD as u64;
            return Ok(());
        }
        self.journal.write_all(&rec)?;
        self.journal_len += JOURNAL_RECORD as u64;
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

/// Builds a snapshot: the applied point and the commitlog end there.
pub struct SnapshotBuilder {
    meta: SnapshotMeta<NodeId, BasicNode>,
    commitlog_end: i64,
    dir: PathBuf,
    current: CurrentSnapshot,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let data = snapshot_data(self.commitlog_end);
        write_snapshot_file(&self.dir, &self.meta, &data).map_err(sm_err)?;
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
            let results = futures::future::join_all(futs).await;
            // A committed send the store did not take (stopped, a segment it could not create)
            // must not count as applied: the journal is not advanced, the node stops, and a
            // restart undoes the batch and applies it again. Only refusals every node makes
            // alike (a malformed send) are results.
            if let Some(r) = results.iter().find(|r| !applied_alike(r.status)) {
                return Err(sm_err(format!(
                    "a committed entry could not be applied to the commitlog ({:?})",
                    r.status
                )));
            }
            out.push(Response(results));
        }
        if membership_changed {
            self.save_membership().map_err(sm_err)?;
        }
        self.journal().map_err(sm_err)?;
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        // The log is purged up to the snapshot: the journal must say what was applied first.
        if let Err(e) = self.journal.sync_data() {
            tracing::warn!(error = %e, "syncing the apply journal");
        }
        SnapshotBuilder {
            meta: self.meta(),
            commitlog_end: self.applier.log_end(),
            dir: self.dir.clone(),
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
        let end = snapshot_end(snapshot.get_ref()).map_err(sm_err)?;
        let mine = self.applier.log_end();
        if mine > end {
            return Err(sm_err(format!(
                "snapshot {} stands for a commitlog ending at {end}, but this node's ends at {mine}",
                meta.snapshot_id
            )));
        }
        let copied = match &self.source {
            Some(src) => super::catch_up::copy_until(&*self.applier, &**src, end).await,
            None if self.applier.log_end() >= end => Ok(()),
            None => Err("no peer to copy the commitlog from".to_string()),
        };
        if let Err(e) = copied {
            tracing::error!(snapshot = %meta.snapshot_id, "cannot install the DLedger snapshot: {e}");
            return Err(sm_err(e));
        }
        if self.applier.log_end() != end {
            return Err(sm_err(format!(
                "copied the commitlog to {} but snapshot {} ends at {end} (is mappedFileSizeCommitLog the same on every node?)",
                self.applier.log_end(),
                meta.snapshot_id
            )));
        }
        self.applied = meta.last_log_id;
        self.previous_membership = std::mem::take(&mut self.membership);
        self.membership = meta.last_membership.clone();
        self.save_membership().map_err(sm_err)?;
        self.journal().map_err(sm_err)?;
        self.journal.sync_data().map_err(sm_err)?;
        write_snapshot_file(&self.dir, meta, snapshot.get_ref()).map_err(sm_err)?;
        tracing::info!(snapshot = %meta.snapshot_id, commitlog_end = end, "DLedger snapshot installed");
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
