//! The commitlog: segment files of stored-message records, the one source of truth.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use ferrocket_protocol::message::{decode_view, peek_total_size, BLANK_MAGIC_CODE};

use crate::error::StoreError;
use crate::mapped_file::{MappedFile, MappedFileQueue};

/// Size of the end-of-segment filler header `[remaining i32][BLANK_MAGIC i32]`; a record is only
/// placed in a segment when this much room remains after it.
pub const BLANK_LEN: usize = 8;

/// What sits at a position of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// A valid record of `size` bytes.
    Message(usize),
    /// The end-of-segment filler: the rest of the segment is unused.
    Blank,
    /// Zeros (or the exact end of the segment): nothing written here yet.
    End,
    /// Something that is not a valid record.
    Bad(String),
}

/// The commitlog.
#[derive(Debug)]
pub struct CommitLog {
    files: MappedFileQueue,
}

impl CommitLog {
    /// Loads the segments of `dir` (positions are set by recovery).
    pub fn load(dir: &Path, file_size: usize) -> Result<Self, StoreError> {
        Ok(Self {
            files: MappedFileQueue::load(dir, file_size)?,
        })
    }

    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }

    pub fn file_size(&self) -> usize {
        self.files.file_size()
    }

    /// First physical offset still stored.
    pub fn min_offset(&self) -> i64 {
        self.files.min_offset()
    }

    /// End of the written records.
    pub fn max_offset(&self) -> i64 {
        self.files.max_offset()
    }

    /// The segment that will take `len` more bytes, closing the current one with a BLANK record
    /// when they do not fit. The caller holds the store's write lock.
    pub fn file_for_append(&self, len: usize) -> Result<Arc<MappedFile>, StoreError> {
        let size = self.file_size();
        let file = match self.files.last() {
            Some(f) if !f.is_full() => f,
            _ => self.files.create(self.max_offset())?,
        };
        if len + BLANK_LEN <= file.free() {
            return Ok(file);
        }
        let free = file.free();
        if free >= BLANK_LEN {
            let mut blank = [0u8; BLANK_LEN];
            blank[..4].copy_from_slice(&(free as i32).to_be_bytes());
            blank[4..].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
            file.append(&blank);
        }
        // The rest of the segment is zeros; it counts as written.
        file.set_written(size);
        self.files.create(file.from() + size as i64)
    }

    /// Zero-copy bytes `[phys, phys + len)` (within one segment).
    pub fn slice(&self, phys: i64, len: usize) -> Option<Bytes> {
        let f = self.files.find(phys)?;
        f.slice((phys - f.from()) as usize, len)
    }

    /// The whole record at `phys`.
    pub fn message_at(&self, phys: i64) -> Option<Bytes> {
        let f = self.files.find(phys)?;
        let pos = (phys - f.from()) as usize;
        let (size, _) = peek_total_size(f.bytes(pos, 8)?)?;
        if size <= 0 {
            return None;
        }
        f.slice(pos, size as usize)
    }

    /// Raw bytes from `phys` to the end of its segment's written part, at most `max` (replication).
    pub fn data_from(&self, phys: i64, max: usize) -> Option<Bytes> {
        let f = self.files.find(phys)?;
        let pos = (phys - f.from()) as usize;
        let wrote = f.wrote();
        if pos >= wrote {
            return None;
        }
        f.slice(pos, (wrote - pos).min(max))
    }

    /// Classifies the bytes at `pos` of `file` (recovery and replica dispatch).
    pub fn check(file: &MappedFile, pos: usize, limit: usize, check_crc: bool) -> Slot {
        let raw = &file.raw()[..limit.min(file.size())];
        if pos >= raw.len() {
            return Slot::End;
        }
        let rest = &raw[pos..];
        if rest.len() < BLANK_LEN {
            return if rest.iter().all(|&b| b == 0) {
                Slot::End
            } else {
                Slot::Bad(format!(
                    "{} stray bytes at the end of the segment",
                    rest.len()
                ))
            };
        }
        let (size, magic) = peek_total_size(rest).expect("8 bytes");
        if size == 0 && magic == 0 {
            return Slot::End;
        }
        if magic == BLANK_MAGIC_CODE {
            return if size as usize == file.size() - pos {
                Slot::Blank
            } else {
                Slot::Bad(format!(
                    "blank record of {size} bytes where {} remain",
                    file.size() - pos
                ))
            };
        }
        match decode_view(rest, check_crc) {
            Ok(v) => {
                let at = file.from() + pos as i64;
                if v.physical_offset != at {
                    Slot::Bad(format!("record says it is at offset {}", v.physical_offset))
                } else {
                    Slot::Message(v.total_size as usize)
                }
            }
            Err(e) => Slot::Bad(e.to_string()),
        }
    }
}
