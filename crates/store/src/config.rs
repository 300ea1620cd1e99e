//! `StoreConfig`: RocketMQ's `MessageStoreConfig` keys (snake_case) with RocketMQ's defaults.

use std::net::SocketAddr;
use std::path::PathBuf;

/// When an append counts as done with respect to the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    /// A background flusher writes dirty pages every `flush_interval_commit_log` ms.
    AsyncFlush,
    /// Group commit: an append completes when an fsync covers it.
    SyncFlush,
}

/// The store's configuration. Callers build it (the `.properties` loader lives elsewhere); field
/// names are RocketMQ's keys in snake_case, defaults are RocketMQ 4.9/5.x's.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// `storePathRootDir`: holds `commitlog/`, `consumequeue/`, `index/`, `checkpoint`, `abort`, `lock`.
    pub store_path_root_dir: PathBuf,
    /// `storePathCommitLog`; `None` = `<root>/commitlog`.
    pub store_path_commit_log: Option<PathBuf>,
    /// `mappedFileSizeCommitLog`: bytes per commitlog segment.
    pub mapped_file_size_commit_log: u64,
    /// `mappedFileSizeConsumeQueue`: bytes per consume-queue file (rounded down to 20-byte entries).
    pub mapped_file_size_consume_queue: u64,
    /// `flushDiskType`.
    pub flush_disk_type: FlushDiskType,
    /// `flushIntervalCommitLog` (ms).
    pub flush_interval_commit_log: u64,
    /// `flushCommitLogLeastPages` (4 KiB pages).
    pub flush_commit_log_least_pages: u32,
    /// `flushCommitLogThoroughInterval` (ms).
    pub flush_commit_log_thorough_interval: u64,
    /// `warmMapedFileEnable`: each new commitlog segment is written ahead with zeros in the
    /// background (SYNC_FLUSH always does this, and appends to such segments by `pwrite`).
    pub warm_mapped_file_enable: bool,
    /// `flushIntervalConsumeQueue` (ms): consume queues, index and checkpoint are flushed this
    /// often, whatever they hold (`flushConsumeQueueLeastPages` and
    /// `flushConsumeQueueThoroughInterval` are not implemented).
    pub flush_interval_consume_queue: u64,
    /// `syncFlushTimeout` (ms): a SYNC_FLUSH append not covered by an fsync within this time
    /// answers `FlushDiskTimeout`.
    pub sync_flush_timeout: u64,
    /// `deleteWhen`: `;`-separated hours of the day when expired files are removed.
    pub delete_when: String,
    /// `fileReservedTime` (hours).
    pub file_reserved_time: u64,
    /// `diskMaxUsedSpaceRatio` (percent): above it expired files are removed at any hour.
    pub disk_max_used_space_ratio: u32,
    /// `diskSpaceWarningLevelRatio` (percent): above it appends are refused (disk full).
    pub disk_space_warning_level_ratio: u32,
    /// `diskSpaceCleanForciblyRatio` (percent): above it the oldest files go even if not expired.
    pub disk_space_clean_forcibly_ratio: u32,
    /// `cleanFileForciblyEnable`.
    pub clean_file_forcibly_enable: bool,
    /// `cleanResourceInterval` (ms).
    pub clean_resource_interval: u64,
    /// `deleteFileBatchMax`: commitlog files removed in one retention round at most.
    pub delete_file_batch_max: usize,
    /// `deleteCommitLogFilesInterval` (ms): pause between two commitlog segments removed in one
    /// round, so a round of many does not free their blocks all at once.
    pub delete_commit_log_files_interval: u64,
    /// `deleteConsumeQueueFilesInterval` (ms): pause after each consume queue that had files
    /// removed in a retention round.
    pub delete_consume_queue_files_interval: u64,
    /// `maxMessageSize`: largest body accepted.
    pub max_message_size: usize,
    /// `messageIndexEnable`.
    pub message_index_enable: bool,
    /// `maxHashSlotNum` per index file.
    pub max_hash_slot_num: u32,
    /// `maxIndexNum` per index file.
    pub max_index_num: u32,
    /// `defaultQueryMaxNum`.
    pub default_query_max_num: usize,
    /// `maxMsgsNumBatch`: the most messages one key lookup returns, whatever it asks for.
    pub max_msgs_num_batch: usize,
    /// `maxTransferBytesOnMessageInMemory`.
    pub max_transfer_bytes_on_message_in_memory: usize,
    /// `maxTransferCountOnMessageInMemory`.
    pub max_transfer_count_on_message_in_memory: usize,
    /// `maxTransferBytesOnMessageInDisk`: a read stops short of this many bytes of messages
    /// that are "in disk" (see `access_message_in_memory_max_ratio`).
    pub max_transfer_bytes_on_message_in_disk: usize,
    /// `maxTransferCountOnMessageInDisk`: at most this many "in disk" messages a read.
    pub max_transfer_count_on_message_in_disk: usize,
    /// `accessMessageInMemoryMaxRatio` (percent of physical memory): a message further than
    /// this from the commitlog's end counts as "in disk" (read with the smaller limits above,
    /// and a pull that reaches that far back is told to go to a slave, where slave reads are
    /// on).
    pub access_message_in_memory_max_ratio: u32,
    /// `checkCRCOnRecover`.
    pub check_crc_on_recover: bool,
    /// `osPageCacheBusyTimeOutMills`: once an append has held the commitlog lock longer than
    /// this (a stalled page fault, a slow segment creation), further puts are refused with
    /// `OsPageCacheBusy` instead of queueing behind it.
    pub os_page_cache_busy_timeout_ms: i64,
    /// `messageDelayLevel`: delay of each level (the tags code of SCHEDULE_TOPIC_XXXX entries).
    pub message_delay_level: String,
    /// Store host stamped into every record (brokerIP1 + listen port; not a store key in RocketMQ).
    pub store_host: SocketAddr,
}

impl Default for StoreConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        Self {
            store_path_root_dir: home.join("store"),
            store_path_commit_log: None,
            mapped_file_size_commit_log: 1024 * 1024 * 1024,
            mapped_file_size_consume_queue: 300_000 * 20,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_commit_log: 500,
            flush_commit_log_least_pages: 4,
            flush_commit_log_thorough_interval: 10_000,
            warm_mapped_file_enable: false,
            flush_interval_consume_queue: 1000,
            sync_flush_timeout: 5000,
            delete_when: "04".into(),
            file_reserved_time: 72,
            disk_max_used_space_ratio: 75,
            disk_space_warning_level_ratio: 90,
            disk_space_clean_forcibly_ratio: 85,
            clean_file_forcibly_enable: true,
            clean_resource_interval: 10_000,
            delete_file_batch_max: 10,
            delete_commit_log_files_interval: 100,
            delete_consume_queue_files_interval: 100,
            max_message_size: 4 * 1024 * 1024,
            message_index_enable: true,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            default_query_max_num: 32,
            max_msgs_num_batch: 64,
            max_transfer_bytes_on_message_in_memory: 262_144,
            max_transfer_count_on_message_in_memory: 32,
            max_transfer_bytes_on_message_in_disk: 65_536,
            max_transfer_count_on_message_in_disk: 8,
            access_message_in_memory_max_ratio: 40,
            check_crc_on_recover: true,
            os_page_cache_busy_timeout_ms: 1000,
            message_delay_level: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
                .into(),
            store_host: SocketAddr::from(([127, 0, 0, 1], 10911)),
        }
    }
}

impl StoreConfig {
    /// Defaults rooted at `root`.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        Self {
            store_path_root_dir: root.into(),
            ..Self::default()
        }
    }

    /// The commitlog directory.
    pub fn commit_log_dir(&self) -> PathBuf {
        self.store_path_commit_log
            .clone()
            .unwrap_or_else(|| self.store_path_root_dir.join("commitlog"))
    }

    /// The consume-queue directory.
    pub fn consume_queue_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("consumequeue")
    }

    /// The index directory.
    pub fn index_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("index")
    }

    /// Consume-queue file size rounded down to whole 20-byte entries.
    pub fn consume_queue_file_size(&self) -> u64 {
        (self.mapped_file_size_consume_queue / 20).max(1) * 20
    }

    /// Hours listed in `delete_when`.
    pub fn delete_hours(&self) -> Vec<u32> {
        self.delete_when
            .split(';')
            .filter_map(|h| h.trim().parse().ok())
            .collect()
    }
}
