//! The Raft log on disk: segment files `raft-<position>.log` (20 digits) of records
//! `[u32 len][u32 crc32][u64 term][u64 node][u64 index][payload]` (len and crc cover everything
//! after the crc), and `raft.meta` (JSON: vote, committed, last purged; replaced atomically).
//!
//! Positions count log bytes: the segment named N holds positions N.. of the log. A segment
//! takes appends until it passes the segment size; purging (after a snapshot) deletes the
//! segments whose entries are all purged, once the purge point is on disk, so the log's size
//! stays bounded. A log written before segments existed (`raft.log`) is the segment at 0.
//!
//! Opening scans the segments; a torn or corrupt tail (a crash mid-append) is cut off with one
//! log line. Appends are fdatasync'ed before openraft is told they are done when `sync` is set
//! (SYNC_FLUSH); otherwise they sit in the page cache, which survives the process being killed
//! but not the host losing power.

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

/// Default size past which a segment takes no more appends.
pub const SEGMENT_BYTES: u64 = 64 << 20;

/// One segment file: log positions `base..base + len`.
struct Segment {
    base: u64,
    len: u64,
    file: File,
    path: PathBuf,
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("raft-{base:020}.log"))
}

struct Inner {
    dir: PathBuf,
    /// Ordered by position, contiguous.
    segs: Vec<Segment>,
    segment_bytes: u64,
    /// Log position of each entry from `first` on.
    pos: Vec<u64>,
    /// Index of `pos[0]`.
    first: u64,
    /// Log position past the last byte.
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
    fn segment_of(&self, pos: u64) -> std::io::Result<&Segment> {
        let i = self.segs.partition_point(|s| s.base <= pos);
        i.checked_sub(1)
            .map(|i| &self.segs[i])
            .ok_or_else(|| io_err(format!("no raft log segment holds position {pos}")))
    }

    fn record_at(&self, pos: u64) -> std::io::Result<(LogId<NodeId>, Bytes, u64)> {
        let seg = self.segment_of(pos)?;
        let at = pos - seg.base;
        let mut head = [0u8; HEADER];
        if at + HEADER as u64 > seg.len {
            return Err(io_err(format!("partial record header at {pos}")));
        }
        seg.file.read_exact_at(&mut head, at)?;
        let len = u32::from_le_bytes(head[0..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(head[4..8].try_into().expect("4 bytes"));
        if len < 24 || at + 8 + len as u64 > seg.len {
            return Err(io_err(format!("bad record length {len} at {pos}")));
        }
        let mut body = vec![0u8; len];
        seg.file.read_exact_at(&mut body, at + 8)?;
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

    /// Drops every log byte at or past `at`: later segments are deleted, the one holding `at`
    /// is cut there.
    fn cut(&mut self, at: u64) -> std::io::Result<()> {
        while self.segs.last().is_some_and(|s| s.base >= at) {
            let s = self.segs.pop().expect("non-empty");
            std::fs::remove_file(&s.path)?;
        }
        if let Some(s) = self.segs.last_mut() {
            if s.base + s.len > at {
                s.file.set_len(at - s.base)?;
                s.len = at - s.base;
            }
        }
        self.end = at;
        Ok(())
    }

    /// Opens a new, empty segment at the end of the log.
    fn new_segment(&mut self) -> std::io::Result<()> {
        let path = segment_path(&self.dir, self.end);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        if self.sync {
            File::open(&self.dir)?.sync_all()?;
        }
        self.segs.push(Segment {
            base: self.end,
            len: 0,
            file,
            path,
        });
        Ok(())
    }

    /// Deletes the leading segments that hold only purged entries (the last one always stays).
    fn drop_purged_segments(&mut self) -> std::io::Result<()> {
        let keep_from = self.pos.first().copied().unwrap_or(self.end);
        while self.segs.len() > 1 && self.segs[1].base <= keep_from {
            let s = self.segs.remove(0);
            std::fs::remove_file(&s.path)?;
        }
        Ok(())
    }
}

/// The segments in `dir` by position, renaming a pre-segment `raft.log` to the segment at 0.
fn load_segments(dir: &Path) -> std::io::Result<Vec<Segment>> {
    let legacy = dir.join("raft.log");
    let mut segs = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let name = e?.file_name();
        let name = name.to_string_lossy();
        if let Some(base) = name
            .strip_prefix("raft-")
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok())
        {
            segs.push(base);
        }
    }
    if segs.is_empty() && legacy.exists() {
        std::fs::rename(&legacy, segment_path(dir, 0))?;
        segs.push(0);
    }
    segs.sort_unstable();
    segs.into_iter()
        .map(|base| {
            let path = segment_path(dir, base);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let len = file.metadata()?.len();
            Ok(Segment {
                base,
                len,
                file,
                path,
            })
        })
        .collect()
}

impl LogStore {
    /// Opens (creating) the log in `dir`, with segments of [`SEGMENT_BYTES`].
    pub fn open(dir: &Path, sync: bool) -> std::io::Result<LogStore> {
        Self::open_sized(dir, sync, SEGMENT_BYTES)
    }

    /// Opens (creating) the log in `dir`; a segment takes no appends once past `segment_bytes`.
    pub fn open_sized(dir: &Path, sync: bool, segment_bytes: u64) -> std::io::Result<LogStore> {
        std::fs::create_dir_all(dir)?;
        let mut segs = load_segments(dir)?;
        // Segments are contiguous; one that is not (a file left behind) ends the log.
        if let Some(i) =
            (1..segs.len()).find(|&i| segs[i].base != segs[i - 1].base + segs[i - 1].len)
        {
            for s in segs.drain(i..) {
                tracing::warn!(file = %s.path.display(), "raft log: segment not contiguous with the one before; removed");
                std::fs::remove_file(&s.path)?;
            }
        }
        let start = segs.first().map_or(0, |s| s.base);
        let end = segs.last().map_or(0, |s| s.base + s.len);
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
            segs,
            segment_bytes: segment_bytes.max(1),
            pos: Vec::new(),
            first: 0,
            end,
            last: None,
            purged,
            vote,
            committed: log_id_from(&meta["committed"]),
            sync,
            cache: std::collections::VecDeque::new(),
            scratch: Vec::new(),
        };
        // Scan; keep the consecutive, intact prefix.
        let mut at = start;
        let mut expect: Option<u64> = None;
        while at < end {
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
        if at < end {
            tracing::warn!(
                dir = %dir.display(),
                bytes = end - at,
                at,
                "raft log: torn or corrupt tail cut off"
            );
            inner.cut(at)?;
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
            inner.drop_purged_segments()?;
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

    /// Bytes of the segment files (what compaction keeps bounded).
    pub fn disk_bytes(&self) -> u64 {
        let g = self.lock();
        g.segs.iter().map(|s| s.len).sum()
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
        let inner: &mut Inner = &mut g;
        let res = (|| -> std::io::Result<()> {
            if inner
                .segs
                .last()
                .is_none_or(|s| s.len >= inner.segment_bytes)
            {
                inner.new_segment()?;
            }
            let seg = inner.segs.last_mut().expect("a segment");
            seg.file.write_all_at(&buf, seg.len)?;
            if inner.sync {
                seg.file.sync_data()?;
            }
            seg.len += buf.len() as u64;
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
        g.cut(at).map_err(write_err)?;
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
        g.save_meta().map_err(write_err)?;
        // Only once the purge point is on disk: a log reopened after a crash must not start
        // past an entry it still claims.
        g.drop_purged_segments().map_err(write_err)
    }
}
