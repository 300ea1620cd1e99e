//! The store's error type: what went wrong with files, not expected outcomes (those are statuses).

use std::path::PathBuf;

use thiserror::Error;

/// A failure of the store itself. Expected outcomes of puts and gets are
/// [`crate::PutStatus`] / [`crate::GetStatus`] values, not errors.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "corrupt {what} in {file} at offset {offset}: {reason}. This is before the last flushed \
         point, so it is not a torn write; refusing to start. To proceed, restore the store from a \
         replica or backup, or move {file} and every later file aside (the messages in them are lost)"
    )]
    Corrupt {
        what: &'static str,
        file: PathBuf,
        offset: i64,
        reason: String,
    },
    #[error("store directory {0} is locked by another process")]
    Locked(PathBuf),
    #[error("invalid store configuration: {0}")]
    Config(String),
    #[error("raw append at {actual} but the commitlog ends at {expected}")]
    NotContiguous { expected: i64, actual: i64 },
    #[error("raw append of {len} bytes at {offset} would cross the end of a commitlog segment")]
    CrossesSegment { offset: i64, len: usize },
    #[error("metadata store error: {0}")]
    Kv(#[from] sled::Error),
    #[error("store is shut down")]
    Shutdown,
}

/// Attaches a path to an I/O error.
pub(crate) trait IoContext<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &std::path::Path) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
