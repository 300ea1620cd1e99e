//! What HA needs from a store: raw commitlog ranges on the master, raw appends on the slave.

use bytes::Bytes;
use ferrocket_store::{MessageStore, StoreError};

/// The commitlog as the HA stream sees it. Implemented for [`MessageStore`]; tests and other
/// stores can provide their own.
pub trait HaStore: Send + Sync + 'static {
    /// First physical offset still held.
    fn min_offset(&self) -> i64;
    /// End of the commitlog.
    fn max_offset(&self) -> i64;
    /// Bytes from `offset` to the end of its segment's written part, at most `max` (`None` when
    /// nothing is there).
    fn read(&self, offset: i64, max: usize) -> Option<Bytes>;
    /// Appends raw bytes at `offset`, which must be the current end (or a segment-aligned start
    /// for an empty store). Returns the new end.
    fn append(&self, offset: i64, data: &[u8]) -> Result<i64, StoreError>;
}

impl HaStore for MessageStore {
    fn min_offset(&self) -> i64 {
        self.min_phy_offset()
    }

    fn max_offset(&self) -> i64 {
        self.max_phy_offset()
    }

    fn read(&self, offset: i64, max: usize) -> Option<Bytes> {
        self.commitlog_data(offset, max)
    }

    fn append(&self, offset: i64, data: &[u8]) -> Result<i64, StoreError> {
        self.append_raw(offset, data)
    }
}
