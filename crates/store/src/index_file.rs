//! Index files `index/<yyyyMMddHHmmssSSS>`: a 40-byte header, hash slots and linked 20-byte
//! entries mapping `topic#key` to physical offsets.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ferrocket_protocol::message::java_string_hash;

use crate::error::{IoContext, StoreError};
use crate::mapped_file::MappedFile;

const HEADER: usize = 40;
const SLOT: usize = 4;
const ENTRY: usize = 20;

/// The header fields, kept in memory and written through to the file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexHeader {
    pub begin_timestamp: i64,
    pub end_timestamp: i64,
    pub begin_phy_offset: i64,
    pub end_phy_offset: i64,
    pub hash_slot_count: i32,
    pub index_count: i32,
}

impl IndexHeader {
    fn encode(&self) -> [u8; HEADER] {
        let mut b = [0u8; HEADER];
        b[0..8].copy_from_slice(&self.begin_timestamp.to_be_bytes());
        b[8..16].copy_from_slice(&self.end_timestamp.to_be_bytes());
        b[16..24].copy_from_slice(&self.begin_phy_offset.to_be_bytes());
        b[24..32].copy_from_slice(&self.end_phy_offset.to_be_bytes());
        b[32..36].copy_from_slice(&self.hash_slot_count.to_be_bytes());
        b[36..40].copy_from_slice(&self.index_count.to_be_bytes());
        b
    }

    fn decode(b: &[u8]) -> Self {
        let i64_at = |p: usize| i64::from_be_bytes(b[p..p + 8].try_into().expect("8"));
        let i32_at = |p: usize| i32::from_be_bytes(b[p..p + 4].try_into().expect("4"));
        Self {
            begin_timestamp: i64_at(0),
            end_timestamp: i64_at(8),
            begin_phy_offset: i64_at(16),
            end_phy_offset: i64_at(24),
            hash_slot_count: i32_at(32),
            index_count: i32_at(36),
        }
    }
}

/// |Java hashCode| of the key, `Integer.MIN_VALUE` mapping to 0.
pub fn index_key_hash(key: &str) -> i32 {
    let h = java_string_hash(key);
    if h == i32::MIN {
        0
    } else {
        h.abs()
    }
}

/// One index file.
#[derive(Debug)]
pub struct IndexFile {
    file: Arc<MappedFile>,
    slots: u32,
    max_index: u32,
    header: Mutex<IndexHeader>,
}

impl IndexFile {
    /// Size in bytes of a file with these dimensions.
    pub fn file_size(slots: u32, max_index: u32) -> usize {
        HEADER + slots as usize * SLOT + max_index as usize * ENTRY
    }

    /// Opens an existing index file (or creates one at `path`, starting after `prev_end`).
    pub fn open(
        path: &Path,
        slots: u32,
        max_index: u32,
        prev_end: Option<(i64, i64)>,
    ) -> Result<Self, StoreError> {
        let dir = path.parent().unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let size = Self::file_size(slots, max_index);
        let file = Arc::new(MappedFile::open_named(dir, &name, size)?);
        let mut header = IndexHeader::decode(&file.raw()[..HEADER]);
        if header.index_count <= 0 {
            header.index_count = 1;
            if let Some((ts, phy)) = prev_end {
                header.begin_timestamp = ts;
                header.end_timestamp = ts;
                header.begin_phy_offset = phy;
                header.end_phy_offset = phy;
            }
            file.write_at(0, &header.encode());
        }
        Ok(Self {
            file,
            slots,
            max_index,
            header: Mutex::new(header),
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    pub fn header(&self) -> IndexHeader {
        *self.header.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_full(&self) -> bool {
        self.header().index_count as u32 >= self.max_index
    }

    fn read_i32(&self, pos: usize) -> i32 {
        i32::from_be_bytes(self.file.raw()[pos..pos + 4].try_into().expect("4"))
    }

    /// Adds `key` → `phys`; false when the file is full.
    pub fn put_key(&self, key: &str, phys: i64, store_ts: i64) -> bool {
        let mut h = self.header.lock().unwrap_or_else(|e| e.into_inner());
        if h.index_count as u32 >= self.max_index {
            return false;
        }
        let key_hash = index_key_hash(key);
        let slot_pos = HEADER + (key_hash as u32 % self.slots) as usize * SLOT;
        let mut slot_value = self.read_i32(slot_pos);
        if slot_value <= 0 || slot_value > h.index_count {
            slot_value = 0;
        }
        let time_diff = if h.begin_timestamp <= 0 {
            0
        } else {
            ((store_ts - h.begin_timestamp) / 1000).clamp(0, i64::from(i32::MAX))
        };
        let pos = HEADER + self.slots as usize * SLOT + h.index_count as usize * ENTRY;
        let mut e = [0u8; ENTRY];
        e[0..4].copy_from_slice(&key_hash.to_be_bytes());
        e[4..12].copy_from_slice(&phys.to_be_bytes());
        e[12..16].copy_from_slice(&(time_diff as i32).to_be_bytes());
        e[16..20].copy_from_slice(&slot_value.to_be_bytes());
        self.file.write_at(pos, &e);
        self.file.write_at(slot_pos, &h.index_count.to_be_bytes());
        if h.index_count <= 1 {
            h.begin_phy_offset = phys;
            h.begin_timestamp = store_ts;
        }
        if slot_value == 0 {
            h.hash_slot_count += 1;
        }
        h.index_count += 1;
        h.end_phy_offset = phys;
        h.end_timestamp = store_ts;
        self.file.write_at(0, &h.encode());
        true
    }

    /// True when the file's time span overlaps `[begin, end]`.
    pub fn time_matched(&self, begin: i64, end: i64) -> bool {
        let h = self.header();
        (begin < h.begin_timestamp && end > h.end_timestamp)
            || (begin >= h.begin_timestamp && begin <= h.end_timestamp)
            || (end >= h.begin_timestamp && end <= h.end_timestamp)
    }

    /// Physical offsets of entries for `key` stored within `[begin, end]`, newest first.
    pub fn select(&self, key: &str, max: usize, begin: i64, end: i64, out: &mut Vec<i64>) {
        // Held for the walk: writers of slots and entries take the same lock.
        let h = self.header.lock().unwrap_or_else(|e| e.into_inner());
        let key_hash = index_key_hash(key);
        let slot_pos = HEADER + (key_hash as u32 % self.slots) as usize * SLOT;
        let slot_value = self.read_i32(slot_pos);
        if slot_value <= 0 || slot_value > h.index_count || h.index_count <= 1 {
            return;
        }
        let mut next = slot_value;
        let mut steps = 0u32;
        while out.len() < max && steps < self.max_index {
            steps += 1;
            let pos = HEADER + self.slots as usize * SLOT + next as usize * ENTRY;
            let raw = &self.file.raw()[pos..pos + ENTRY];
            let hash = i32::from_be_bytes(raw[0..4].try_into().expect("4"));
            let phys = i64::from_be_bytes(raw[4..12].try_into().expect("8"));
            let diff = i32::from_be_bytes(raw[12..16].try_into().expect("4"));
            let prev = i32::from_be_bytes(raw[16..20].try_into().expect("4"));
            if diff < 0 {
                break;
            }
            let t = h.begin_timestamp + i64::from(diff) * 1000;
            if hash == key_hash && t >= begin && t <= end {
                out.push(phys);
            }
            if prev <= 0 || prev > h.index_count || prev == next || t < begin {
                break;
            }
            next = prev;
        }
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.file.flush_all()
    }

    /// Deletes the file.
    pub fn destroy(&self) -> Result<(), StoreError> {
        std::fs::remove_file(self.file.path()).at(self.file.path())
    }
}

/// `yyyyMMddHHmmssSSS` (UTC) of a Unix ms time.
pub fn index_file_name(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The index files of a store, oldest first.
#[derive(Debug)]
pub struct IndexService {
    dir: PathBuf,
    slots: u32,
    max_index: u32,
    files: RwLock<Vec<Arc<IndexFile>>>,
}

impl IndexService {
    /// Loads every index file of `dir`.
    pub fn load(dir: &Path, slots: u32, max_index: u32) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).at(dir)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .at(dir)?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 17 && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        names.sort();
        let size = IndexFile::file_size(slots, max_index);
        let mut files = Vec::new();
        for n in names {
            let p = dir.join(&n);
            let len = std::fs::metadata(&p).at(&p)?.len();
            if len != size as u64 {
                tracing::warn!(file = %p.display(), len, "index file of another size ignored");
                continue;
            }
            files.push(Arc::new(IndexFile::open(&p, slots, max_index, None)?));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            slots,
            max_index,
            files: RwLock::new(files),
        })
    }

    /// A snapshot of the files.
    pub fn files(&self) -> Vec<Arc<IndexFile>> {
        self.files.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `endPhyOffset` of the newest file (what is already indexed).
    pub fn end_phy_offset(&self) -> i64 {
        self.files()
            .last()
            .map(|f| f.header().end_phy_offset)
            .unwrap_or(0)
    }

    /// Adds keys for the message at `phys`; skipped when that message is already indexed.
    pub fn put_keys<'k>(
        &self,
        keys: impl Iterator<Item = &'k str>,
        topic: &str,
        phys: i64,
        store_ts: i64,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut last = self
            .files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned();
        if let Some(f) = &last {
            let h = f.header();
            if h.index_count > 1 && phys < h.end_phy_offset {
                return Ok(());
            }
        }
        let mut buf = String::with_capacity(topic.len() + 40);
        for k in keys {
            buf.clear();
            buf.push_str(topic);
            buf.push('#');
            buf.push_str(k);
            loop {
                let f = match &last {
                    Some(f) if !f.is_full() => Arc::clone(f),
                    _ => {
                        let f = self.create(last.as_deref(), now_ms)?;
                        last = Some(Arc::clone(&f));
                        f
                    }
                };
                if f.put_key(&buf, phys, store_ts) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn create(&self, prev: Option<&IndexFile>, now_ms: i64) -> Result<Arc<IndexFile>, StoreError> {
        let prev_end = prev.map(|p| {
            let h = p.header();
            (h.end_timestamp, h.end_phy_offset)
        });
        let mut ms = now_ms;
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        // Names must sort after the previous file's.
        while files.last().is_some_and(|l| {
            l.path()
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                >= Some(index_file_name(ms))
        }) {
            ms += 1;
        }
        let f = Arc::new(IndexFile::open(
            &self.dir.join(index_file_name(ms)),
            self.slots,
            self.max_index,
            prev_end,
        )?);
        files.push(Arc::clone(&f));
        Ok(f)
    }

    /// Physical offsets recorded for `topic#key` within `[begin, end]`, newest first, deduplicated.
    pub fn query(&self, topic: &str, key: &str, max: usize, begin: i64, end: i64) -> Vec<i64> {
        let full = format!("{topic}#{key}");
        let mut out = Vec::new();
        for f in self.files().iter().rev() {
            if out.len() >= max {
                break;
            }
            if f.time_matched(begin, end) {
                f.select(&full, max, begin, end, &mut out);
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|p| seen.insert(*p));
        out
    }

    /// Deletes files whose every entry lies below `min_phys` (never the newest). Returns how many.
    pub fn delete_expired(&self, min_phys: i64) -> Result<usize, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let mut n = 0;
        while files.len() > 1 && files[0].header().end_phy_offset < min_phys {
            let f = files.remove(0);
            f.destroy()?;
            n += 1;
        }
        Ok(n)
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        for f in self.files() {
            f.flush()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_hashes() {
        // 2026-11-24T18:00:00.123Z
        assert_eq!(index_file_name(1_795_543_200_123), "20261124180000123");
        assert_eq!(index_key_hash("polygenelubricants"), 0);
        assert_eq!(index_key_hash("a"), 97);
    }
}
