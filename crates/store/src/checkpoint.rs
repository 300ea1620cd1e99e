//! The `checkpoint` file: one 4 KiB page of flush timestamps and offsets.
//!
//! Layout (big-endian): physicMsgTimestamp @0, logicsMsgTimestamp @8, indexMsgTimestamp @16,
//! masterFlushedOffset @24, confirmPhyOffset @32 — as RocketMQ 5.x writes them. Ferrocket adds
//! the flushed commitlog offset @40 (RocketMQ never reads past 40), which recovery uses to tell a
//! torn tail (after it) from corruption (before it).

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{IoContext, StoreError};

/// Size of the file.
pub const CHECKPOINT_SIZE: usize = 4096;

/// The checkpoint's fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub physic_msg_timestamp: i64,
    pub logics_msg_timestamp: i64,
    pub index_msg_timestamp: i64,
    pub master_flushed_offset: i64,
    pub confirm_phy_offset: i64,
    /// Ferrocket extension: commitlog bytes known durable.
    pub flushed_phy_offset: i64,
}

impl Checkpoint {
    /// Path of the checkpoint under `root`.
    pub fn path(root: &Path) -> PathBuf {
        root.join("checkpoint")
    }

    /// Reads the checkpoint; a missing or short file reads as zeros.
    pub fn read(path: &Path) -> Result<Self, StoreError> {
        let mut buf = [0u8; 48];
        match std::fs::File::open(path) {
            Ok(mut f) => {
                let mut got = 0;
                while got < buf.len() {
                    let n = f.read(&mut buf[got..]).at(path)?;
                    if n == 0 {
                        break;
                    }
                    got += n;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).at(path),
        }
        let at = |p: usize| i64::from_be_bytes(buf[p..p + 8].try_into().expect("8"));
        Ok(Self {
            physic_msg_timestamp: at(0),
            logics_msg_timestamp: at(8),
            index_msg_timestamp: at(16),
            master_flushed_offset: at(24),
            confirm_phy_offset: at(32),
            flushed_phy_offset: at(40),
        })
    }

    /// Writes and fsyncs the checkpoint.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let mut page = [0u8; CHECKPOINT_SIZE];
        for (i, v) in [
            self.physic_msg_timestamp,
            self.logics_msg_timestamp,
            self.index_msg_timestamp,
            self.master_flushed_offset,
            self.confirm_phy_offset,
            self.flushed_phy_offset,
        ]
        .iter()
        .enumerate()
        {
            page[i * 8..i * 8 + 8].copy_from_slice(&v.to_be_bytes());
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .at(path)?;
        f.seek(SeekFrom::Start(0)).at(path)?;
        f.write_all(&page).at(path)?;
        f.sync_data().at(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let dir = tempfile::tempdir().unwrap();
        let p = Checkpoint::path(dir.path());
        assert_eq!(Checkpoint::read(&p).unwrap(), Checkpoint::default());
        let c = Checkpoint {
            physic_msg_timestamp: 1,
            logics_msg_timestamp: 2,
            index_msg_timestamp: 3,
            master_flushed_offset: 4,
            confirm_phy_offset: 5,
            flushed_phy_offset: 0x0102,
        };
        c.write(&p).unwrap();
        let raw = std::fs::read(&p).unwrap();
        assert_eq!(raw.len(), 4096);
        assert_eq!(&raw[0..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&raw[32..40], &[0, 0, 0, 0, 0, 0, 0, 5]);
        assert_eq!(&raw[40..48], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(Checkpoint::read(&p).unwrap(), c);
    }
}
