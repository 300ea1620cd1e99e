//! `MessageStore`: the commitlog, consume queues and index files behind one API.
//!
//! Threading: appends run on the caller's thread (encode, then a short critical section that
//! copies into the mapped segment and dispatches consume-queue and index entries synchronously)
//! and return a [`PutFuture`]. With SYNC_FLUSH that future resolves when the group-commit thread's
//! fsync covers the append, so async callers `.await` it without blocking the runtime; the append
//! itself is a memcpy and may be called from async code directly. Reads are lock-free apart from
//! short map lookups and return zero-copy [`bytes::Bytes`]. Background threads: the commitlog
//! flusher, the consume-queue/index/checkpoint flusher, one deadline reaper per watermark and the
//! retention cleaner; all stop in [`MessageStore::shutdown`].

mod clean;
mod flush;
mod get;
mod put;
mod recover;
mod replica;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::io::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;

pub use clean::CleanReport;
pub use get::RecordFilter;

use crate::ack::Watermark;
use crate::checkpoint::Checkpoint;
use crate::commitlog::CommitLog;
use crate::config::StoreConfig;
use crate::consume_queue::ConsumeQueue;
use crate::dispatch::parse_delay_levels;
use crate::env::{StoreEnv, SystemEnv};
use crate::error::{IoContext, StoreError};
use crate::index_file::IndexService;
use crate::mapped_file::Prewrite;

type QueueMap = HashMap<String, HashMap<i32, Arc<ConsumeQueue>>>;

/// State changed only under the write lock.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    /// Next queue offset of each (topic, queue id).
    next_queue_offset: HashMap<String, HashMap<i32, i64>>,
}

pub(crate) struct Inner {
    pub(crate) config: StoreConfig,
    pub(crate) env: Arc<dyn StoreEnv>,
    pub(crate) commitlog: CommitLog,
    pub(crate) queues: RwLock<QueueMap>,
    pub(crate) index: Option<IndexService>,
    pub(crate) writer: Mutex<Writer>,
    /// Commitlog bytes known durable.
    pub(crate) flushed: Watermark,
    /// Offset set by the replication layer; bounds reads when `confirm_bound` is on.
    pub(crate) confirmed: Watermark,
    pub(crate) confirm_bound: AtomicBool,
    /// Bytes from the commitlog's end within which messages count as in memory
    /// (`accessMessageInMemoryMaxRatio` of physical memory).
    pub(crate) in_memory_bytes: i64,
    /// Commitlog offset up to which consume queues and index are built.
    pub(crate) dispatched: AtomicI64,
    pub(crate) last_store_ts: AtomicI64,
    /// When the append holding the commitlog lock took it (Unix ms; 0 when none holds it).
    pub(crate) append_began: AtomicI64,
    /// An append waits for a group commit (SYNC_FLUSH).
    pub(crate) flush_requested: AtomicBool,
    /// The group-commit flusher is about to wait or waiting on `flush_cv`: only then does a
    /// request pay for a wake-up (a condvar notify is a syscall even with nobody waiting).
    pub(crate) flusher_parked: AtomicBool,
    pub(crate) flush_lock: Mutex<()>,
    pub(crate) flush_cv: Condvar,
    pub(crate) stopped: AtomicBool,
    pub(crate) stop_lock: Mutex<()>,
    pub(crate) stop_cv: Condvar,
    pub(crate) disk_full: AtomicBool,
    pub(crate) delay_levels: Vec<i64>,
    lock: File,
}

/// The message store. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct MessageStore {
    inner: Arc<Inner>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for MessageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MessageStore")
            .field("root", &self.inner.config.store_path_root_dir)
            .finish()
    }
}

impl MessageStore {
    /// Opens (creating) the store at `config.store_path_root_dir`, recovering after a crash.
    pub fn open(config: StoreConfig) -> Result<Self, StoreError> {
        Self::open_with_env(config, Arc::new(SystemEnv))
    }

    /// Like [`MessageStore::open`] with an injected clock / disk probe.
    pub fn open_with_env(config: StoreConfig, env: Arc<dyn StoreEnv>) -> Result<Self, StoreError> {
        validate(&config)?;
        let root = config.store_path_root_dir.clone();
        std::fs::create_dir_all(&root).at(&root)?;
        let lock = lock_dir(&root)?;
        let in_memory_bytes = (physical_memory() / 100)
            .saturating_mul(u64::from(config.access_message_in_memory_max_ratio))
            .min(i64::MAX as u64) as i64;
        let abort_path = root.join("abort");
        let crashed = abort_path.exists();
        let checkpoint = Checkpoint::read(&Checkpoint::path(&root))?;

        let commitlog = CommitLog::load(
            &config.commit_log_dir(),
            config.mapped_file_size_commit_log as usize,
        )?;
        commitlog.files().set_prewrite(Prewrite::of(&config));
        let queues = recover::load_queues(&config)?;
        let index = if config.message_index_enable {
            Some(IndexService::load(
                &config.index_dir(),
                config.max_hash_slot_num,
                config.max_index_num,
            )?)
        } else {
            None
        };
        let delay_levels = parse_delay_levels(&config.message_delay_level);
        let inner = Arc::new(Inner {
            config,
            env,
            commitlog,
            queues: RwLock::new(queues),
            index,
            writer: Mutex::new(Writer::default()),
            flushed: Watermark::new(0),
            confirmed: Watermark::new(0),
            confirm_bound: AtomicBool::new(false),
            in_memory_bytes,
            dispatched: AtomicI64::new(0),
            last_store_ts: AtomicI64::new(checkpoint.physic_msg_timestamp),
            append_began: AtomicI64::new(0),
            flush_requested: AtomicBool::new(false),
            flusher_parked: AtomicBool::new(false),
            flush_lock: Mutex::new(()),
            flush_cv: Condvar::new(),
            stopped: AtomicBool::new(false),
            stop_lock: Mutex::new(()),
            stop_cv: Condvar::new(),
            disk_full: AtomicBool::new(false),
            delay_levels,
            lock,
        });
        recover::recover(&inner, &checkpoint, crashed)?;
        File::create(&abort_path).at(&abort_path)?;
        let store = Self {
            inner,
            threads: Mutex::new(Vec::new()),
        };
        store.start_threads();
        Ok(store)
    }

    fn start_threads(&self) {
        let mut t = self.threads.lock().unwrap_or_else(|e| e.into_inner());
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .expect("spawn store thread")
        };
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-flush-commitlog",
            Box::new(move || flush::run_commitlog_flusher(&i)),
        ));
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-flush-queues",
            Box::new(move || flush::run_queue_flusher(&i)),
        ));
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-flush-deadlines",
            Box::new(move || i.flushed.run_reaper(&|| i.stopped.load(Ordering::Acquire))),
        ));
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-confirm-deadlines",
            Box::new(move || {
                i.confirmed
                    .run_reaper(&|| i.stopped.load(Ordering::Acquire))
            }),
        ));
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-clean",
            Box::new(move || clean::run_cleaner(&i)),
        ));
        let i = Arc::clone(&self.inner);
        t.push(spawn(
            "store-prefault",
            Box::new(move || flush::run_prefaulter(&i)),
        ));
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    /// First physical offset still stored.
    pub fn min_phy_offset(&self) -> i64 {
        self.inner.commitlog.min_offset()
    }

    /// End of the commitlog (next physical offset to be written).
    pub fn max_phy_offset(&self) -> i64 {
        self.inner.commitlog.max_offset()
    }

    /// Commitlog bytes known durable.
    pub fn flushed_offset(&self) -> i64 {
        self.inner.flushed.get()
    }

    /// Commitlog offset up to which consume queues and index are built.
    pub fn dispatched_offset(&self) -> i64 {
        self.inner.dispatched.load(Ordering::Acquire)
    }

    /// Makes the pages for the next `bytes` of appends to the current commitlog segment resident
    /// now (MADV_POPULATE_WRITE, up to the segment's end), as the background prefaulter does a few
    /// MiB ahead: a warm-up before load, and how the benchmarks measure appends into resident
    /// segments. Returns the end offset made resident; nothing happens before the first append.
    pub fn prefault_ahead(&self, bytes: usize) -> i64 {
        match self.inner.commitlog.files().last() {
            Some(f) => {
                f.prefault_ahead(bytes);
                f.from() + (f.wrote() + bytes).min(f.size()) as i64
            }
            None => 0,
        }
    }

    /// True while appends are refused because the disk is past `diskSpaceWarningLevelRatio`.
    pub fn is_disk_full(&self) -> bool {
        self.inner.disk_full.load(Ordering::Acquire)
    }

    /// True while an append has held the commitlog lock longer than
    /// `osPageCacheBusyTimeOutMills` (RocketMQ's `isOSPageCacheBusy`): sends are refused then.
    pub fn is_os_page_cache_busy(&self) -> bool {
        self.inner.os_page_cache_busy()
    }

    /// Flushes everything now (commitlog, consume queues, index, checkpoint).
    pub fn flush_all(&self) -> Result<(), StoreError> {
        flush::flush_commitlog(&self.inner)?;
        flush::flush_queues_and_checkpoint(&self.inner)
    }

    /// Stops the background threads, flushes, writes the checkpoint and removes the `abort`
    /// marker. Pending sync-flush waiters are completed (as timeouts if not covered).
    pub fn shutdown(&self) -> Result<(), StoreError> {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.join_threads();
        let r = self.flush_all();
        self.inner.flushed.fail_all();
        self.inner.confirmed.fail_all();
        r?;
        let abort = self.inner.config.store_path_root_dir.join("abort");
        std::fs::remove_file(&abort).at(&abort)?;
        // SAFETY: a valid open descriptor; releasing lets another store open the directory.
        unsafe { libc::flock(self.inner.lock.as_raw_fd(), libc::LOCK_UN) };
        tracing::info!(root = %self.inner.config.store_path_root_dir.display(), "store shut down cleanly");
        Ok(())
    }
}

impl MessageStore {
    /// Wakes every background thread (`stopped` must already be set) and waits for them all.
    fn join_threads(&self) {
        // Notified under their locks: a thread between its last check and its wait cannot miss it.
        for (lock, cv) in [
            (&self.inner.stop_lock, &self.inner.stop_cv),
            (&self.inner.flush_lock, &self.inner.flush_cv),
        ] {
            let _g = lock.lock().unwrap_or_else(|e| e.into_inner());
            cv.notify_all();
        }
        self.inner.flushed.wake_reaper();
        self.inner.confirmed.wake_reaper();
        for t in self
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = t.join();
        }
    }

    /// Stops the background threads without flushing, checkpointing or removing the `abort`
    /// marker, then releases the directory: what a crash looks like to the next `open` (tests).
    #[doc(hidden)]
    pub fn abandon(self) {
        self.inner.stopped.store(true, Ordering::Release);
        self.join_threads();
        self.inner.flushed.fail_all();
        self.inner.confirmed.fail_all();
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "store shutdown failed");
        }
    }
}

impl Inner {
    /// The consume queue of (topic, queue id), created on demand.
    pub(crate) fn queue(
        &self,
        topic: &str,
        queue_id: i32,
    ) -> Result<Arc<ConsumeQueue>, StoreError> {
        if let Some(q) = self.find_queue(topic, queue_id) {
            return Ok(q);
        }
        let mut map = self.queues.write().unwrap_or_else(|e| e.into_inner());
        if let Some(q) = map.get(topic).and_then(|m| m.get(&queue_id)) {
            return Ok(Arc::clone(q));
        }
        let dir = self
            .config
            .consume_queue_dir()
            .join(topic)
            .join(queue_id.to_string());
        let q = Arc::new(ConsumeQueue::load(
            &dir,
            self.config.consume_queue_file_size() as usize,
        )?);
        map.entry(topic.to_owned())
            .or_default()
            .insert(queue_id, Arc::clone(&q));
        Ok(q)
    }

    /// The consume queue of (topic, queue id) if it exists.
    pub(crate) fn find_queue(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
            .and_then(|m| m.get(&queue_id))
            .cloned()
    }

    /// Every consume queue.
    pub(crate) fn all_queues(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }

    /// Sleeps up to `ms` unless the store stops; true when stopped.
    pub(crate) fn sleep_unless_stopped(&self, ms: u64) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        let mut g = self.stop_lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return true;
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .stop_cv
                .wait_timeout(g, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub(crate) fn checkpoint_path(&self) -> PathBuf {
        Checkpoint::path(&self.config.store_path_root_dir)
    }
}

fn validate(c: &StoreConfig) -> Result<(), StoreError> {
    if c.mapped_file_size_commit_log < 4096 || c.mapped_file_size_commit_log > i32::MAX as u64 {
        return Err(StoreError::Config(format!(
            "mappedFileSizeCommitLog={} must be between 4096 and {}",
            c.mapped_file_size_commit_log,
            i32::MAX
        )));
    }
    if c.mapped_file_size_consume_queue < 20 {
        return Err(StoreError::Config(format!(
            "mappedFileSizeConsumeQueue={} must hold at least one 20-byte entry",
            c.mapped_file_size_consume_queue
        )));
    }
    if c.max_hash_slot_num == 0 || c.max_index_num < 2 {
        return Err(StoreError::Config(
            "maxHashSlotNum must be > 0 and maxIndexNum > 1".into(),
        ));
    }
    Ok(())
}

/// How long `open` waits for the directory lock before answering [`StoreError::Locked`].
///
/// A lock just released can look taken for a moment: a process that forks (to exec a child)
/// holds a copy of every descriptor until the exec closes it, the lock file's among them.
pub(crate) const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes an exclusive `flock` on `<root>/lock`, waiting up to [`LOCK_WAIT`] for it.
fn lock_dir(root: &std::path::Path) -> Result<File, StoreError> {
    let path = root.join("lock");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .at(&path)?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        // SAFETY: a valid open descriptor.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 {
            return Ok(f);
        }
        if std::time::Instant::now() >= deadline {
            return Err(StoreError::Locked(root.to_path_buf()));
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Bytes of physical memory (0 when the system does not say).
fn physical_memory() -> u64 {
    // SAFETY: sysinfo fills the struct we pass; all-zero is a valid value for it.
    let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
    if unsafe { libc::sysinfo(&mut info) } != 0 {
        return 0;
    }
    (info.totalram as u64).saturating_mul(u64::from(info.mem_unit))
}
