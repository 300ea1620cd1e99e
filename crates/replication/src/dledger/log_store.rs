//! The Raft log on disk: one append-only file `raft.log` of records
//! `[u32 len][u32 crc32][u64 term][u64 node][u64 index][payload]` (len and crc cover everything
//! after the crc), and `raft.meta` (JSON: vote, committed, last purged; replaced atomically).
//!
//! Opening scans the file; a torn or corrupt tail (a crash mid-append) is cut off with one log
//! line. Appends are fdatasync'ed before openraft is told they are done when `sync` is set
//! (SYNC_FLUSH); otherwise they sit in the page cache, which survives the process being killed
//! but not the host losing power. Purged entries are only forgotten (the bytes stay until the
//! file is rewritten), which keeps purge cheap and crash-safe.

// openraft's StorageError is large; it is the trait's error type, not ours to shrink.
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{CommittedLeaderId, LogId, OptionalSend, RaftLogReader, StorageIOError, Vote};
use serde_json::{json, Value};

use super::codec::{entry_from, payload_bytes};
use super::types::{Entry, NodeId, StorageError, TypeConfig};

const HEADER: usize = 4 + 4 + 24;

struct Inner {
    dir: PathBuf,
    file: File,
    /// File position of each entry from `first` on.
    pos: Vec<u64>,
    /// Index of `pos[0]`.
    first: u64,
    end: u64,
    last: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    sync: bool,
    /// The newest entries, for replication to read without touching the file: `cache[i]` is
    /// the entry at index `last - cache.len() + 1 + i`.
    cache: std::collections::VecDeque<Entry>,
    /// The append buffer, kept between appends.
    scratch: Vec<u8>,
}

/// Largest append buffer kept between appends.
const SCRATCH_MAX: usize = 16 << 20;

/// Entries kept in memory for replication reads.
const CACHE_ENTRIES: usize = 16_384;

/// The log store; clones share it (they are the readers openraft asks for).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
}

fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn read_err(e: std::io::Error) -> StorageError {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: std::io::Error) -> StorageError {
    StorageIOError::write_logs(&e).into()
}

fn log_id_json(id: &Option<LogId<NodeId>>) -> Value {
    id.map_or(Value::Null, |id| {
        json!([id.leader_id.term, id.leader_id.node_id, id.index])
    })
}

fn log_id_from(v: &Value) -> Option<LogId<NodeId>> {
    let a = v.as_array()?;
    Some(LogId::new(
        CommittedLeaderId::new(a.first()?.as_u64()?, a.get(1)?.as_u64()?),
        a.get(2)?.as_u64()?,
    ))
}

impl Inner {
    fn record_at(&self, pos: u64) -> std::io::Result<(LogId<NodeId>, Bytes, u64)> {
        let mut head = [0u8; HEADER];
        self.file.read_exact_at(&mut head, pos)?;
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        if len < 24 || pos + 8 + len as u64 > self.end {
            return Err(io_err(format!("bad record length {len} at {pos}")));
        }
        let mut body = vec![0u8; len];
        self.file.read_exact_at(&mut body, pos + 8)?;
        if crc32fast::hash(&body) != crc {
            return Err(io_err(format!("bad record checksum at {pos}")));
        }
        let u = |i: usize| u64::from_le_bytes(body[i..i + 8].try_into().expect("8 bytes"));
        let id = LogId::new(CommittedLeaderId::new(u(0), u(8)), u(16));
        let payload = Bytes::from(body).slice(24..);
        Ok((id, payload, pos + 8 + len as u64))
    }

    fn entry(&self, index: u64) -> Result<Entry, StorageError> {
        let i = (index - self.first) as usize;
        let (id, payload, _) = self.record_at(self.pos[i]).map_err(read_err)?;
        entry_from(id, payload).map_err(|e| read_err(io_err(e)))
    }

    fn save_meta(&self) -> std::io::Result<()> {
        let v = json!({
            "vote": self.vote.map(|v| json!([v.leader_id.term, v.leader_id.node_id, v.committed])),
            "committed": log_id_json(&self.committed),
            "purged": log_id_json(&self.purged),
        });
        let tmp = self.dir.join("raft.meta.tmp");
        let mut f = File::create(&tmp)?;
        f.write_all(v.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join("raft.meta"))?;
        File::open(&self.dir)?.sync_all()
    }

    fn range(&self, lo: u64, hi: u64) -> Result<Vec<Entry>, StorageError> {
        let lo = lo.max(self.first);
        let hi = hi.min(self.first + self.pos.len() as u64);
        let end = self.first + self.pos.len() as u64;
        let cached_from = end - self.cache.len() as u64;
        (lo..hi)
            .map(|i| match i.checked_sub(cached_from) {
                Some(k) => Ok(self.cache[k as usize].clone()),
                None => self.entry(i),
            })
            .collect()
    }
}

impl LogStore {
    /// Opens (creating) the log in `dir`.
    pub fn open(dir: &Path, sync: bool) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("raft.log");
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let len = file.metadata()?.len();
        let meta: Value = match std::fs::read(dir.join("raft.meta")) {
            Ok(b) => serde_json::from_slice(&b).map_err(io_err)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Value::Null,
            Err(e) => return Err(e),
        };
        let vote = meta["vote"].as_array().and_then(|a| {
            let (t, n, c) = (
                a.first()?.as_u64()?,
                a.get(1)?.as_u64()?,
                a.get(2)?.as_bool()?,
            );
            Some(if c {
                Vote::new_committed(t, n)
            } else {
                Vote::new(t, n)
            })
        });
        let purged = log_id_from(&meta["purged"]);
        let mut inner = Inner {
            dir: dir.to_path_buf(),
            file,
            pos: Vec::new(),
            first: 0,
            end: len,
            last: None,
            purged,
            vote,
            committed: log_id_from(&meta["committed"]),
            sync,
            cache: std::collections::VecDeque::new(),
            scratch: Vec::new(),
        };
        // Scan; keep the consecutive, intact prefix.
        let mut at = 0u64;
        let mut expect: Option<u64> = None;
        while at < len {
            match inner.record_at(at) {
                Ok((id, _, next)) if expect.is_none_or(|e| e == id.index) => {
                    if expect.is_none() {
                        inner.first = id.index;
                    }
                    inner.pos.push(at);
                    inner.last = Some(id);
                    expect = Some(id.index + 1);
                    at = next;
                }
                _ => break,
            }
        }
        if at < len {
            tracing::warn!(
                file = %path.display(),
                bytes = len - at,
                at,
                "raft log: torn or corrupt tail cut off"
            );
            inner.file.set_len(at)?;
            inner.end = at;
        }
        // Entries at or below the purge point are forgotten.
        if let Some(p) = inner.purged {
            let drop = (p.index + 1)
                .saturating_sub(inner.first)
                .min(inner.pos.len() as u64);
            inner.pos.drain(..drop as usize);
            inner.first = inner.first.max(p.index + 1);
            if inner.last.is_none_or(|l| l.index < p.index) {
                inner.last = Some(p);
            }
        }
        if inner.pos.is_empty() {
            inner.first = inner.last.map_or(0, |l| l.index + 1);
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The last log id (for metrics and tests).
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.lock().last
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        use std::ops::Bound;
        let lo = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => i + 1,
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(i) => i + 1,
            Bound::Excluded(i) => *i,
            Bound::Unbounded => u64::MAX,
        };
        self.lock().range(lo, hi)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let g = self.lock();
        Ok(LogState {
            last_purged_log_id: g.purged,
            last_log_id: g.last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        g.vote = Some(*vote);
        g.save_meta()
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        Ok(self.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Kept in memory and written with the next vote or purge: losing it only means
        // re-learning the commit point from the leader.
        self.lock().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self.lock().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut g = self.lock();
        // One buffer for the whole batch, reused across appends (large allocations freed and
        // made again on every append showed up as malloc_consolidate in profiles).
        let mut buf = std::mem::take(&mut g.scratch);
        buf.clear();
        let mut added = Vec::new();
        let mut fresh = Vec::new();
        for e in entries {
            let start = buf.len();
            buf.extend_from_slice(&[0u8; 8]);
            buf.extend_from_slice(&e.log_id.leader_id.term.to_le_bytes());
            buf.extend_from_slice(&e.log_id.leader_id.node_id.to_le_bytes());
            buf.extend_from_slice(&e.log_id.index.to_le_bytes());
            buf.extend_from_slice(&payload_bytes(&e.payload));
            let body_len = (buf.len() - start - 8) as u32;
            let crc = crc32fast::hash(&buf[start + 8..]);
            buf[start..start + 4].copy_from_slice(&body_len.to_le_bytes());
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
            added.push((g.end + start as u64, e.log_id));
            fresh.push(e);
        }
        let res = (|| -> std::io::Result<()> {
            (&g.file).write_all(&buf)?;
            if g.sync {
                g.file.sync_data()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            callback.log_io_completed(Err(io_err(&e)));
            return Err(write_err(e));
        }
        g.end += buf.len() as u64;
        if buf.capacity() <= SCRATCH_MAX {
            g.scratch = buf;
        }
        for (pos, id) in added {
            if g.pos.is_empty() {
                g.first = id.index;
            }
            g.pos.push(pos);
            g.last = Some(id);
        }
        g.cache.extend(fresh);
        let excess = g.cache.len().saturating_sub(CACHE_ENTRIES);
        g.cache.drain(..excess);
        drop(g);
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        if log_id.index < g.first {
            return Ok(());
        }
        let i = (log_id.index - g.first) as usize;
        if i >= g.pos.len() {
            return Ok(());
        }
        let at = g.pos[i];
        g.file.set_len(at).map_err(write_err)?;
        g.end = at;
        let dropped = g.pos.len() - i;
        let keep = g.cache.len().saturating_sub(dropped);
        g.cache.truncate(keep);
        g.pos.truncate(i);
        g.last = if i == 0 {
            g.purged
        } else {
            let (id, _, _) = g.record_at(g.pos[i - 1]).map_err(read_err)?;
            Some(id)
        };
        tracing::info!(from = log_id.index, "raft log truncated");
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut g = self.lock();
        let drop = (log_id.index + 1)
            .saturating_sub(g.first)
            .min(g.pos.len() as u64) as usize;
        g.pos.drain(..drop);
        g.first = g.first.max(log_id.index + 1);
        let keep = g.cache.len().min(g.pos.len());
        let extra = g.cache.len() - keep;
        g.cache.drain(..extra);
        g.purged = Some(log_id);
        if g.last.is_none_or(|l| l.index < log_id.index) {
            g.last = Some(log_id);
        }
        g.save_meta().map_err(write_err)
    }
}
