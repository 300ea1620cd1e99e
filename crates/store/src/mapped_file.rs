//! Fixed-size memory-mapped files named by their start offset, and an ordered queue of them.
//!
//! Writes are `memcpy` into a shared mapping (faster than a `pwrite` per append and it lets reads
//! hand out zero-copy [`Bytes`]); durability comes from `msync` of the dirty range. A file
//! written ahead with zeros (SYNC_FLUSH commitlog, [`MappedFileQueue::prepare_next`]) is written
//! by `pwrite` and synced by `fdatasync` instead, which takes half the time of `msync` on ext4;
//! reads still go through the mapping, which shares the page cache. Readers only see bytes below
//! the write position, which is published with release ordering after the write.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use memmap2::MmapMut;

use crate::error::{IoContext, StoreError};

/// One mapped file of `size` bytes starting at logical offset `from`.
pub struct MappedFile {
    path: PathBuf,
    from: i64,
    size: usize,
    file: File,
    /// Appends go through `pwrite` and durability through `fdatasync` (a segment whose blocks
    /// were written beforehand, see [`MappedFileQueue::prepare_next`]); otherwise `memcpy`
    /// into the mapping and `msync`.
    pwrite: AtomicBool,
    mmap: MmapMut,
    ptr: *mut u8,
    wrote: AtomicUsize,
    flushed: AtomicUsize,
    prefaulted: AtomicUsize,
    write_lock: Mutex<()>,
}

// SAFETY: the raw pointer aliases `mmap`, which lives as long as the struct. Writes happen under
// `write_lock` to bytes at or past `wrote`, which readers never look at until `wrote` moves past
// them (release/acquire); so shared access from many threads is sound.
unsafe impl Send for MappedFile {}
unsafe impl Sync for MappedFile {}

impl std::fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("wrote", &self.wrote())
            .finish()
    }
}

/// The 20-digit zero-padded file name of a start offset.
pub fn file_name(from: i64) -> String {
    format!("{from:020}")
}

impl MappedFile {
    /// Opens (creating and sizing if needed) the file for `from` in `dir`.
    pub fn open(dir: &Path, from: i64, size: usize) -> Result<Self, StoreError> {
        let mut f = Self::open_named(dir, &file_name(from), size)?;
        f.from = from;
        Ok(f)
    }

    /// Opens (creating and sizing if needed) `dir/name`; its start offset is 0.
    pub fn open_named(dir: &Path, name: &str, size: usize) -> Result<Self, StoreError> {
        let from = 0;
        let path = dir.join(name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let len = file.metadata().at(&path)?.len();
        if len != size as u64 {
            if len > size as u64 {
                return Err(StoreError::Config(format!(
                    "{} is {len} bytes but the configured file size is {size}",
                    path.display()
                )));
            }
            file.set_len(size as u64).at(&path)?;
        }
        Self::map(path, file, from, size)
    }

    fn map(path: PathBuf, file: File, from: i64, size: usize) -> Result<Self, StoreError> {
        // SAFETY: the file is ours (the store holds the directory lock); other processes do not
        // truncate it while it is mapped.
        let mut mmap = unsafe { MmapMut::map_mut(&file) }.at(&path)?;
        let ptr = mmap.as_mut_ptr();
        Ok(Self {
            path,
            from,
            size,
            file,
            pwrite: AtomicBool::new(false),
            mmap,
            ptr,
            wrote: AtomicUsize::new(0),
            flushed: AtomicUsize::new(0),
            prefaulted: AtomicUsize::new(0),
            write_lock: Mutex::new(()),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Logical offset of the first byte.
    pub fn from(&self) -> i64 {
        self.from
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Bytes written (visible to readers).
    pub fn wrote(&self) -> usize {
        self.wrote.load(Ordering::Acquire)
    }

    /// Bytes known durable.
    pub fn flushed(&self) -> usize {
        self.flushed.load(Ordering::Acquire)
    }

    pub fn free(&self) -> usize {
        self.size - self.wrote()
    }

    pub fn is_full(&self) -> bool {
        self.wrote() >= self.size
    }

    /// Appends `data` at the write position; false (nothing written) if it does not fit.
    pub fn append(&self, data: &[u8]) -> bool {
        let _g = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pos = self.wrote.load(Ordering::Acquire);
        if data.len() > self.size - pos {
            return false;
        }
        if !self.pwrite.load(Ordering::Relaxed) || self.file.write_all_at(data, pos as u64).is_err()
        {
            // SAFETY: [pos, pos+len) is inside the mapping and not yet visible to readers.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(pos), data.len()) };
        }
        self.wrote.store(pos + data.len(), Ordering::Release);
        true
    }

    /// All bytes of the mapping (recovery scans; may include unwritten zeros).
    pub fn raw(&self) -> &[u8] {
        &self.mmap[..]
    }

    /// Zero-copy view of `[pos, pos+len)`, which must lie below the write position.
    pub fn slice(self: &Arc<Self>, pos: usize, len: usize) -> Option<Bytes> {
        if pos.checked_add(len)? > self.wrote() {
            return None;
        }
        Some(Bytes::from_owner(Window {
            file: Arc::clone(self),
            pos,
            len,
        }))
    }

    /// Borrowed view of written bytes.
    pub fn bytes(&self, pos: usize, len: usize) -> Option<&[u8]> {
        if pos.checked_add(len)? > self.wrote() {
            return None;
        }
        Some(&self.mmap[pos..pos + len])
    }

    /// Faults in pages for writing up to `ahead` bytes past the write position, so the appender
    /// does not pay for zeroing fresh pages (MADV_POPULATE_WRITE; contents are not touched).
    /// False when the kernel does not support it; other failures are retried on the next call.
    pub fn prefault_ahead(&self, ahead: usize) -> bool {
        const CHUNK: usize = 1 << 20;
        let target = (self.wrote() + ahead).min(self.size);
        let mut done = self
            .prefaulted
            .load(Ordering::Acquire)
            .max(self.wrote() & !4095);
        if self.pwrite.load(Ordering::Relaxed) {
            // Written by `pwrite`: its blocks hold zeros on disk, so the pages only need to be
            // in the page cache (after a restart they are not, and a partial-page `pwrite` into
            // an uncached page waits for a disk read). Faulting them in for writing would dirty
            // them and make every `fdatasync` write zeros ahead.
            if done < target {
                use std::os::fd::AsRawFd;
                // SAFETY: advice on a descriptor we own; it only starts readahead.
                unsafe {
                    libc::posix_fadvise(
                        self.file.as_raw_fd(),
                        done as libc::off_t,
                        (target - done) as libc::off_t,
                        libc::POSIX_FADV_WILLNEED,
                    )
                };
                self.prefaulted.store(target, Ordering::Release);
            }
            return true;
        }
        while done < target {
            let len = CHUNK.min(self.size - done);
            if let Err(e) = self
                .mmap
                .advise_range(memmap2::Advice::PopulateWrite, done, len)
            {
                return e.raw_os_error() != Some(libc::EINVAL);
            }
            done += len;
            self.prefaulted.store(done, Ordering::Release);
        }
        true
    }

    /// msyncs the dirty range; returns the new flushed position.
    pub fn flush(&self) -> Result<usize, StoreError> {
        let wrote = self.wrote();
        let flushed = self.flushed();
        if wrote > flushed && self.pwrite.load(Ordering::Relaxed) {
            self.file.sync_data().at(&self.path)?;
            self.flushed.fetch_max(wrote, Ordering::AcqRel);
        } else if wrote > flushed {
            self.mmap
                .flush_range(flushed, wrote - flushed)
                .at(&self.path)?;
            self.flushed.fetch_max(wrote, Ordering::AcqRel);
        }
        Ok(wrote)
    }

    /// Marks everything up to `pos` as written without copying (the zeros after a BLANK record).
    pub fn set_written(&self, pos: usize) {
        let _g = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        self.wrote.fetch_max(pos.min(self.size), Ordering::AcqRel);
    }

    /// Sets the write position after recovery and treats everything below it as flushed.
    pub fn set_recovered(&self, pos: usize) {
        let pos = pos.min(self.size);
        self.wrote.store(pos, Ordering::Release);
        self.flushed.store(pos, Ordering::Release);
    }

    /// Zeroes `[pos, max(wrote, zero_end))` and moves the write position back to `pos`.
    pub fn truncate_to(&self, pos: usize, zero_end: usize) -> Result<(), StoreError> {
        let _g = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pos = pos.min(self.size);
        let end = self.wrote().max(zero_end).min(self.size);
        if end > pos {
            // SAFETY: in bounds; callers hold the store's write lock, and readers are told by the
            // lowered write position that the range is gone.
            unsafe { std::ptr::write_bytes(self.ptr.add(pos), 0, end - pos) };
            self.mmap.flush_range(pos, end - pos).at(&self.path)?;
        }
        self.wrote.store(pos, Ordering::Release);
        self.flushed.store(pos, Ordering::Release);
        Ok(())
    }

    /// End of the non-zero bytes in `[pos, pos + window)` (how far garbage after a torn write
    /// reaches; the window bounds how much of a sparse tail gets paged in).
    pub fn nonzero_end(&self, pos: usize, window: usize) -> usize {
        let pos = pos.min(self.size);
        let raw = &self.mmap[pos..pos.saturating_add(window).min(self.size)];
        match raw.iter().rposition(|&b| b != 0) {
            Some(i) => pos + i + 1,
            None => pos,
        }
    }

    /// Writes `data` at an arbitrary position (headers that are rewritten in place).
    pub fn write_at(&self, pos: usize, data: &[u8]) {
        assert!(pos + data.len() <= self.size, "write_at out of bounds");
        let _g = self.write_lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: bounds checked above; used only for regions readers tolerate changing (index
        // header, slots and entries, which are re-validated on every lookup).
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.add(pos), data.len()) };
    }

    /// Flushes the whole mapping.
    pub fn flush_all(&self) -> Result<(), StoreError> {
        self.mmap.flush().at(&self.path)
    }

    /// Whether appends go by `pwrite` + `fdatasync` (a file written ahead) rather than through
    /// the mapping and `msync`.
    pub fn writes_by_pwrite(&self) -> bool {
        self.pwrite.load(Ordering::Relaxed)
    }

    /// True when every block of the file is allocated (no hole before its end), as in a file
    /// written ahead with zeros; a sparse file, or a system that cannot tell, gives false.
    pub fn fully_allocated(&self) -> bool {
        use std::os::fd::AsRawFd;
        // SAFETY: lseek on a descriptor we own; SEEK_HOLE only reports, it moves our offset,
        // which nothing else uses (every read and write is positioned or mapped).
        let hole = unsafe { libc::lseek(self.file.as_raw_fd(), 0, libc::SEEK_HOLE) };
        hole >= 0 && hole as u64 >= self.size as u64
    }

    /// Last modification time of the file, Unix ms.
    pub fn modified_ms(&self) -> i64 {
        fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

struct Window {
    file: Arc<MappedFile>,
    pos: usize,
    len: usize,
}

impl AsRef<[u8]> for Window {
    fn as_ref(&self) -> &[u8] {
        &self.file.mmap[self.pos..self.pos + self.len]
    }
}

/// How far past a truncation point stale bytes are looked for: a torn record is at most one
/// message (4 MiB body limit plus headers and properties).
pub const GARBAGE_WINDOW: usize = 8 << 20;

/// Whether a queue's new files are written ahead with zeros, and how appends then reach them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Prewrite {
    /// Files are made (sparse) when needed.
    Off = 0,
    /// Written ahead; appends through the mapping (`warmMapedFileEnable` under ASYNC_FLUSH).
    Mapped = 1,
    /// Written ahead; appends by `pwrite`, made durable by `fdatasync` (SYNC_FLUSH:
    /// `fdatasync` after `pwrite` into blocks already written takes about half the time of
    /// `msync` of a fresh mapping on ext4).
    Pwrite = 2,
}

impl Prewrite {
    /// The commitlog's mode for a store configuration.
    pub fn of(config: &crate::config::StoreConfig) -> Prewrite {
        if config.flush_disk_type == crate::config::FlushDiskType::SyncFlush {
            Prewrite::Pwrite
        } else if config.warm_mapped_file_enable {
            Prewrite::Mapped
        } else {
            Prewrite::Off
        }
    }

    fn from_u8(v: u8) -> Prewrite {
        match v {
            1 => Prewrite::Mapped,
            2 => Prewrite::Pwrite,
            _ => Prewrite::Off,
        }
    }
}

/// Ordered files of one directory, each `file_size` bytes, named by start offset.
#[derive(Debug)]
pub struct MappedFileQueue {
    dir: PathBuf,
    file_size: usize,
    files: RwLock<Vec<Arc<MappedFile>>>,
    /// A [`Prewrite`]: whether new files are taken from ones written ahead with zeros.
    prewrite: std::sync::atomic::AtomicU8,
}

impl MappedFileQueue {
    /// Loads every 20-digit file of `dir` (creating the directory). Files are left with write
    /// position 0; the owner recovers positions.
    pub fn load(dir: &Path, file_size: usize) -> Result<Self, StoreError> {
        fs::create_dir_all(dir).at(dir)?;
        let mut starts = Vec::new();
        for entry in fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
                if let Ok(start) = name.parse::<i64>() {
                    starts.push(start);
                }
            }
        }
        starts.sort_unstable();
        let mut files = Vec::with_capacity(starts.len());
        for (i, &s) in starts.iter().enumerate() {
            if i > 0 && s != starts[i - 1] + file_size as i64 {
                return Err(StoreError::Corrupt {
                    what: "file sequence",
                    file: dir.join(file_name(s)),
                    offset: s,
                    reason: format!(
                        "expected the file after {} to start at {}",
                        file_name(starts[i - 1]),
                        starts[i - 1] + file_size as i64
                    ),
                });
            }
            files.push(Arc::new(MappedFile::open(dir, s, file_size)?));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            file_size,
            files: RwLock::new(files),
            prewrite: std::sync::atomic::AtomicU8::new(Prewrite::Off as u8),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn file_size(&self) -> usize {
        self.file_size
    }

    /// A snapshot of the files.
    pub fn files(&self) -> Vec<Arc<MappedFile>> {
        self.files.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn first(&self) -> Option<Arc<MappedFile>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .cloned()
    }

    pub fn last(&self) -> Option<Arc<MappedFile>> {
        self.files
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .last()
            .cloned()
    }

    /// The file holding logical `offset`.
    pub fn find(&self, offset: i64) -> Option<Arc<MappedFile>> {
        let files = self.files.read().unwrap_or_else(|e| e.into_inner());
        let first = files.first()?.from();
        if offset < first {
            return None;
        }
        let i = ((offset - first) / self.file_size as i64) as usize;
        files.get(i).cloned()
    }

    /// Creates the file starting at `from` (which must follow the last one, or any aligned start
    /// when the queue is empty).
    pub fn create(&self, from: i64) -> Result<Arc<MappedFile>, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = files.last() {
            if last.from() + self.file_size as i64 != from {
                return Err(StoreError::Config(format!(
                    "new file at {from} does not follow {}",
                    last.from()
                )));
            }
        }
        let warm = self.warm_path(from);
        let mode = self.prewrite();
        let prewritten = mode != Prewrite::Off
            && fs::metadata(&warm).is_ok_and(|m| m.len() == self.file_size as u64)
            && fs::rename(&warm, self.dir.join(file_name(from))).is_ok();
        let f = MappedFile::open(&self.dir, from, self.file_size)?;
        f.pwrite
            .store(prewritten && mode == Prewrite::Pwrite, Ordering::Relaxed);
        let f = Arc::new(f);
        files.push(Arc::clone(&f));
        Ok(f)
    }

    fn warm_path(&self, from: i64) -> PathBuf {
        self.dir.join(format!("{}.warm", file_name(from)))
    }

    fn prewrite(&self) -> Prewrite {
        Prewrite::from_u8(self.prewrite.load(Ordering::Acquire))
    }

    /// Makes new files come from files written ahead with zeros by [`prepare_next`], appended
    /// to as `mode` says. Under [`Prewrite::Pwrite`] a last file that was written ahead before a
    /// restart (no hole in it) goes on being written by `pwrite`.
    ///
    /// [`prepare_next`]: Self::prepare_next
    pub fn set_prewrite(&self, mode: Prewrite) {
        self.prewrite.store(mode as u8, Ordering::Release);
        if let Some(last) = self.last() {
            last.pwrite.store(
                mode == Prewrite::Pwrite && last.fully_allocated(),
                Ordering::Relaxed,
            );
        }
    }

    /// Writes the file that will follow the last one with zeros, under a name loading ignores
    /// (`<start>.warm`), unless it is there already. Run off the append path.
    pub fn prepare_next(&self) -> Result<(), StoreError> {
        if self.prewrite() == Prewrite::Off {
            return Ok(());
        }
        // An empty queue gets its first file at 0 (the start of a new store).
        let next = self
            .last()
            .map_or(0, |last| last.from() + self.file_size as i64);
        let warm = self.warm_path(next);
        if warm.exists() {
            return Ok(());
        }
        // Files prepared for starts that will not come (after a truncation) go, and so do
        // partial ones a crash left.
        for e in fs::read_dir(&self.dir).at(&self.dir)?.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".warm") || name.ends_with(".warm.tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        let tmp = self.dir.join(format!("{}.warm.tmp", file_name(next)));
        let written = (|| -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            let zeros = vec![0u8; 1 << 20];
            let mut left = self.file_size;
            while left > 0 {
                let n = left.min(zeros.len());
                f.write_all(&zeros[..n])?;
                left -= n;
            }
            f.sync_data()?;
            fs::rename(&tmp, &warm)
        })();
        if written.is_err() {
            // A partial file must not hold disk space a full disk needs.
            let _ = fs::remove_file(&tmp);
        }
        written.at(&warm)
    }

    /// Offset of the first byte still stored (start of the first file), 0 when empty.
    pub fn min_offset(&self) -> i64 {
        self.first().map(|f| f.from()).unwrap_or(0)
    }

    /// Logical end of the written data.
    pub fn max_offset(&self) -> i64 {
        self.last()
            .map(|f| f.from() + f.wrote() as i64)
            .unwrap_or(0)
    }

    /// Drops everything at or past `offset`: later files are deleted, the file holding it is
    /// zeroed from there. Returns the number of non-zero bytes dropped.
    pub fn truncate(&self, offset: i64) -> Result<u64, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        let mut dropped = 0u64;
        while let Some(last) = files.last() {
            if last.from() < offset {
                break;
            }
            let f = files.pop().expect("non-empty");
            dropped += f.wrote().max(f.nonzero_end(0, GARBAGE_WINDOW)) as u64;
            fs::remove_file(f.path()).at(f.path())?;
        }
        if let Some(last) = files.last() {
            let pos = (offset - last.from()) as usize;
            let end = last.wrote().max(last.nonzero_end(pos, GARBAGE_WINDOW));
            dropped += end.saturating_sub(pos) as u64;
            last.truncate_to(pos, end)?;
        }
        Ok(dropped)
    }

    /// Removes the first file.
    pub fn remove_first(&self) -> Result<Option<Arc<MappedFile>>, StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        if files.is_empty() {
            return Ok(None);
        }
        let f = files.remove(0);
        fs::remove_file(f.path()).at(f.path())?;
        Ok(Some(f))
    }

    /// Removes every file (and the directory when empty).
    pub fn destroy(&self) -> Result<(), StoreError> {
        let mut files = self.files.write().unwrap_or_else(|e| e.into_inner());
        for f in files.drain(..) {
            fs::remove_file(f.path()).at(f.path())?;
        }
        let _ = fs::remove_dir(&self.dir);
        Ok(())
    }

    /// Flushes every file with unflushed bytes.
    pub fn flush(&self) -> Result<(), StoreError> {
        for f in self.files() {
            if f.wrote() > f.flushed() {
                f.flush()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefault_keeps_contents() {
        let dir = tempfile::tempdir().unwrap();
        let f = MappedFile::open(dir.path(), 0, 1 << 22).unwrap();
        assert!(f.append(b"hello"));
        let supported = f.prefault_ahead(1 << 21);
        eprintln!("MADV_POPULATE_WRITE supported: {supported}");
        assert_eq!(f.bytes(0, 5).unwrap(), b"hello");
        assert!(f.raw()[5..1 << 21].iter().all(|&b| b == 0));
    }

    /// The prefaulter works ahead of the write position while appends go on, and appends
    /// overtake it: records of every length from 1 to 3000 bytes, all non-zero, read back whole.
    #[test]
    fn prefaulting_while_appending_keeps_every_byte() {
        use std::sync::atomic::AtomicBool;
        let dir = tempfile::tempdir().unwrap();
        let f = Arc::new(MappedFile::open(dir.path(), 0, 48 << 20).unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let prefaulter = {
            let (f, stop) = (Arc::clone(&f), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut rounds = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    assert!(f.prefault_ahead(256 << 10));
                    rounds += 1;
                }
                rounds
            })
        };
        let record = |i: usize| vec![(i % 251) as u8 + 1; i % 3000 + 1];
        let mut n = 0;
        while f.append(&record(n)) {
            n += 1;
        }
        stop.store(true, Ordering::Relaxed);
        assert!(prefaulter.join().unwrap() > 0);
        let mut pos = 0;
        for i in 0..n {
            let r = record(i);
            assert_eq!(
                f.bytes(pos, r.len()).unwrap(),
                &r[..],
                "record {i} at {pos}"
            );
            pos += r.len();
        }
    }

    /// Appends `data` to `f` by its own path (pwrite or mapping), flushes it and reads it back.
    fn append_flush_read(f: &MappedFile, data: &[u8]) {
        let at = f.wrote();
        assert!(f.append(data));
        f.flush().unwrap();
        assert_eq!(f.flushed(), at + data.len());
        assert_eq!(f.bytes(at, data.len()).unwrap(), data);
    }

    /// A new queue writes its first file ahead too, and a file written ahead is still written
    /// by `pwrite` when the queue is loaded again (a restart); an ordinary file is not.
    #[test]
    fn files_written_ahead_keep_pwrite_across_a_reload() {
        const SIZE: usize = 1 << 16;
        let dir = tempfile::tempdir().unwrap();
        {
            let q = MappedFileQueue::load(dir.path(), SIZE).unwrap();
            q.set_prewrite(Prewrite::Pwrite);
            q.prepare_next().unwrap();
            assert!(dir.path().join("00000000000000000000.warm").exists());
            let first = q.create(0).unwrap();
            assert!(first.writes_by_pwrite());
            assert!(first.fully_allocated());
            assert!(!dir.path().join("00000000000000000000.warm").exists());
            append_flush_read(&first, b"first file");
        }
        let q = MappedFileQueue::load(dir.path(), SIZE).unwrap();
        let last = q.last().unwrap();
        assert!(!last.writes_by_pwrite(), "only SYNC_FLUSH asks for it");
        q.set_prewrite(Prewrite::Pwrite);
        assert!(last.writes_by_pwrite());
        last.set_recovered(10);
        assert!(last.prefault_ahead(SIZE));
        append_flush_read(&last, b" after a restart");
        assert_eq!(last.bytes(0, 26).unwrap(), b"first file after a restart");

        // A file made without one written ahead (none prepared) is sparse: mapping and msync.
        last.set_written(SIZE);
        let second = q.create(SIZE as i64).unwrap();
        assert!(!second.writes_by_pwrite());
        assert!(!second.fully_allocated());
        append_flush_read(&second, b"ordinary");
        drop((last, second, q));
        let q = MappedFileQueue::load(dir.path(), SIZE).unwrap();
        q.set_prewrite(Prewrite::Pwrite);
        assert!(!q.last().unwrap().writes_by_pwrite());
    }
}
