//! Outcomes of puts and gets as values, mirroring RocketMQ's `PutMessageStatus` and
//! `GetMessageStatus`.

use bytes::Bytes;

/// Outcome of an append (RocketMQ `PutMessageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutStatus {
    PutOk,
    /// Stored but no fsync covered it within `syncFlushTimeout`.
    FlushDiskTimeout,
    FlushSlaveTimeout,
    SlaveNotAvailable,
    ServiceNotAvailable,
    CreateMappedFileFailed,
    MessageIllegal,
    PropertiesSizeExceeded,
    OsPageCacheBusy,
    UnknownError,
    /// Disk use is past `diskSpaceWarningLevelRatio`: refused. RocketMQ reports this case as
    /// SERVICE_NOT_AVAILABLE ("the broker's disk is full").
    DiskFull,
}

impl PutStatus {
    /// True when the message is in the commitlog (possibly not yet durable).
    pub fn is_stored(self) -> bool {
        matches!(
            self,
            PutStatus::PutOk
                | PutStatus::FlushDiskTimeout
                | PutStatus::FlushSlaveTimeout
                | PutStatus::SlaveNotAvailable
        )
    }
}

/// Where an append landed (RocketMQ `AppendMessageResult`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendResult {
    /// Physical offset of the first record.
    pub wrote_offset: i64,
    /// Bytes written (all records of a batch).
    pub wrote_bytes: i32,
    /// Offset message ids, comma-joined for a batch.
    pub msg_id: String,
    pub store_timestamp: i64,
    /// Queue offset of the first record.
    pub logics_offset: i64,
    /// Number of records.
    pub msg_num: i32,
}

/// Status and placement of an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutResult {
    pub status: PutStatus,
    pub append: Option<AppendResult>,
}

impl PutResult {
    pub(crate) fn failed(status: PutStatus) -> Self {
        Self {
            status,
            append: None,
        }
    }
}

/// Outcome of a read (RocketMQ `GetMessageStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GetStatus {
    Found,
    NoMatchedMessage,
    MessageWasRemoving,
    OffsetFoundNull,
    OffsetOverflowBadly,
    OffsetOverflowOne,
    OffsetTooSmall,
    NoMatchedLogicQueue,
    NoMessageInQueue,
}

/// Messages read from one queue.
#[derive(Debug, Clone)]
pub struct GetResult {
    pub status: GetStatus,
    /// Where the next read should start.
    pub next_begin_offset: i64,
    pub min_offset: i64,
    pub max_offset: i64,
    /// One whole stored record each; zero-copy views of the commitlog.
    pub messages: Vec<Bytes>,
    /// Queue offset of each message.
    pub queue_offsets: Vec<i64>,
    /// Sum of the record sizes.
    pub buffer_total_size: usize,
    /// The read reached further back than the in-memory part of the commitlog
    /// (`accessMessageInMemoryMaxRatio`): a consumer this slow is pointed to a slave.
    pub suggest_pulling_from_slave: bool,
    /// Commitlog bytes after the last entry this read looked at (RocketMQ's
    /// `maxOffsetPy - maxPhyOffsetPulling`, how far behind the writer the reader is); 0 when it
    /// found the queue's end; `None` when it looked at nothing.
    pub fall_behind: Option<i64>,
}

/// Messages found through the index.
#[derive(Debug, Clone, Default)]
pub struct QueryResult {
    pub messages: Vec<Bytes>,
    pub index_last_update_timestamp: i64,
    pub index_last_update_phyoffset: i64,
}
