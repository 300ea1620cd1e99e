//! One consume queue: `consumequeue/<topic>/<queueId>/<20-digit start>` files of 20-byte entries
//! (physical offset i64, size i32, tags code i64), derived from the commitlog.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::error::StoreError;
use crate::mapped_file::MappedFileQueue;

/// Bytes per entry.
pub const CQ_UNIT: usize = 20;

/// One consume-queue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    pub phys: i64,
    pub size: i32,
    pub tags_code: i64,
}

impl CqEntry {
    /// The filler written before the first entry of a queue that starts mid-file.
    pub const HOLE: CqEntry = CqEntry {
        phys: 0,
        size: i32::MAX,
        tags_code: 0,
    };

    fn encode(&self) -> [u8; CQ_UNIT] {
        let mut b = [0u8; CQ_UNIT];
        b[..8].copy_from_slice(&self.phys.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    /// Reads an entry from 20 bytes.
    pub fn decode(b: &[u8]) -> CqEntry {
        CqEntry {
            phys: i64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            size: i32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            tags_code: i64::from_be_bytes(b[12..20].try_into().expect("8 bytes")),
        }
    }

    fn is_zero(&self) -> bool {
        self.phys == 0 && self.size == 0 && self.tags_code == 0
    }

    fn is_hole(&self) -> bool {
        self.size == i32::MAX
    }
}

/// The consume queue of one (topic, queue id).
#[derive(Debug)]
pub struct ConsumeQueue {
    files: MappedFileQueue,
    /// First readable logical offset (entry number).
    min_offset: AtomicI64,
    /// `phys + size` of the last entry (0 when empty).
    max_phys_end: AtomicI64,
}

impl ConsumeQueue {
    /// Loads the queue in `dir` and recovers its write position from the entries.
    pub fn load(dir: &Path, file_size: usize) -> Result<Self, StoreError> {
        let files = MappedFileQueue::load(dir, file_size)?;
        let all = files.files();
        let mut max_phys_end = 0;
        for (i, f) in all.iter().enumerate() {
            let raw = f.raw();
            let mut pos = 0;
            while pos + CQ_UNIT <= raw.len() {
                let e = CqEntry::decode(&raw[pos..pos + CQ_UNIT]);
                if e.is_zero() {
                    break;
                }
                if !e.is_hole() {
                    max_phys_end = e.phys + i64::from(e.size);
                }
                pos += CQ_UNIT;
            }
            if pos < raw.len() && i + 1 < all.len() {
                // A gap inside a non-last file: keep what precedes it, drop later files.
                f.set_recovered(pos);
                files.truncate(f.from() + pos as i64)?;
                break;
            }
            f.set_recovered(pos);
        }
        let cq = Self {
            files,
            min_offset: AtomicI64::new(0),
            max_phys_end: AtomicI64::new(max_phys_end),
        };
        cq.correct_min_offset(0);
        Ok(cq)
    }

    /// Next logical offset to be written (= number of entries ever written).
    pub fn max_offset(&self) -> i64 {
        self.files.max_offset() / CQ_UNIT as i64
    }

    /// First readable logical offset.
    pub fn min_offset(&self) -> i64 {
        self.min_offset.load(Ordering::Acquire)
    }

    /// `phys + size` of the last entry.
    pub fn max_phys_end(&self) -> i64 {
        self.max_phys_end.load(Ordering::Acquire)
    }

    /// Writes the entry for `queue_offset`. Entries already present are skipped (re-dispatch
    /// after recovery is idempotent); a queue that starts past offset 0 is padded with holes.
    pub fn put(&self, queue_offset: i64, entry: CqEntry) -> Result<(), StoreError> {
        let want = queue_offset * CQ_UNIT as i64;
        let fs = self.files.file_size() as i64;
        let was_empty = self.files.last().is_none();
        if was_empty {
            self.files.create(want - want % fs)?;
        }
        loop {
            let cur = self.files.max_offset();
            if want < cur {
                return Ok(());
            }
            let last = match self.files.last() {
                Some(f) if !f.is_full() => f,
                _ => self.files.create(cur)?,
            };
            if want > cur {
                if !was_empty {
                    tracing::warn!(queue_offset, expected = cur / CQ_UNIT as i64, dir = %self.files.dir().display(),
                        "consume queue gap filled with holes");
                }
                last.append(&CqEntry::HOLE.encode());
                continue;
            }
            last.append(&entry.encode());
            break;
        }
        self.max_phys_end
            .store(entry.phys + i64::from(entry.size), Ordering::Release);
        if was_empty {
            self.min_offset.store(queue_offset, Ordering::Release);
        }
        Ok(())
    }

    /// The entry at `offset`, if written.
    pub fn entry(&self, offset: i64) -> Option<CqEntry> {
        let byte = offset.checked_mul(CQ_UNIT as i64)?;
        let f = self.files.find(byte)?;
        let pos = (byte - f.from()) as usize;
        f.bytes(pos, CQ_UNIT).map(CqEntry::decode)
    }

    /// Entries from `offset` to the end of its file's written part, at most `max`.
    pub fn entries_from(&self, offset: i64, max: usize) -> Option<Vec<CqEntry>> {
        let byte = offset.checked_mul(CQ_UNIT as i64)?;
        let f = self.files.find(byte)?;
        let pos = (byte - f.from()) as usize;
        let wrote = f.wrote();
        if pos >= wrote {
            return None;
        }
        let n = ((wrote - pos) / CQ_UNIT).min(max);
        let raw = f.bytes(pos, n * CQ_UNIT)?;
        Some(raw.chunks_exact(CQ_UNIT).map(CqEntry::decode).collect())
    }

    /// Drops entries whose message ends past `phys_end` (commitlog truncated there).
    pub fn truncate_phys(&self, phys_end: i64) -> Result<(), StoreError> {
        let mut n = self.max_offset();
        let min = self.files.min_offset() / CQ_UNIT as i64;
        while n > min {
            match self.entry(n - 1) {
                Some(e) if !e.is_hole() && e.phys + i64::from(e.size) > phys_end => n -= 1,
                _ => break,
            }
        }
        if n < self.max_offset() {
            self.files.truncate(n * CQ_UNIT as i64)?;
            let end = if n > min {
                self.entry(n - 1)
                    .filter(|e| !e.is_hole())
                    .map(|e| e.phys + i64::from(e.size))
                    .unwrap_or(0)
            } else {
                0
            };
            self.max_phys_end.store(end, Ordering::Release);
            if self.min_offset() > n {
                self.min_offset.store(n, Ordering::Release);
            }
        }
        Ok(())
    }

    /// Deletes leading files whose every message lies below `min_phys` (never the last file) and
    /// moves the minimum offset to the first entry at or above `min_phys`. Returns files removed.
    pub fn delete_expired(&self, min_phys: i64) -> Result<usize, StoreError> {
        let mut removed = 0;
        loop {
            let files = self.files.files();
            if files.len() < 2 {
                break;
            }
            let f = &files[0];
            let wrote = f.wrote();
            let last = f
                .bytes(wrote - CQ_UNIT, CQ_UNIT)
                .map(CqEntry::decode)
                .filter(|e| !e.is_hole());
            match last {
                Some(e) if e.phys + i64::from(e.size) <= min_phys => {
                    self.files.remove_first()?;
                    removed += 1;
                }
                _ => break,
            }
        }
        self.correct_min_offset(min_phys);
        Ok(removed)
    }

    /// Sets the minimum offset to the first non-hole entry at or above `min_phys`.
    pub fn correct_min_offset(&self, min_phys: i64) {
        let Some(f) = self.files.first() else {
            self.min_offset.store(0, Ordering::Release);
            return;
        };
        let base = f.from() / CQ_UNIT as i64;
        let n = (f.wrote() / CQ_UNIT) as i64;
        // Entries are in physical order: binary search the first one at or above min_phys.
        let (mut lo, mut hi) = (0i64, n);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.entry(base + mid) {
                Some(e) if e.is_hole() || e.phys < min_phys => lo = mid + 1,
                _ => hi = mid,
            }
        }
        self.min_offset.store(base + lo, Ordering::Release);
    }

    /// Flushes dirty entries.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.files.flush()
    }

    /// Deletes every file.
    pub fn destroy(&self) -> Result<(), StoreError> {
        self.files.destroy()
    }
}
