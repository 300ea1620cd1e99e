//! The DLedger log store and state machine against openraft's storage test suite, plus the
//! crash cases of our own formats (a torn log tail, a batch applied halfway).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferrocket_replication::dledger::log_store::LogStore;
use ferrocket_replication::dledger::state_machine::{Applier, StateMachine};
use ferrocket_replication::dledger::types::{Entry, Request, TypeConfig};
use ferrocket_store::{PutResult, PutStatus};
use ferrocket_testkit::TempDir;
use futures::future::BoxFuture;
use openraft::storage::{RaftLogStorage, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::RaftSnapshotBuilder;
use openraft::{CommittedLeaderId, EntryPayload, LogId, RaftLogReader, StorageError};

/// Stands in for the commitlog: counts bytes "stored", can be cut back.
#[derive(Default)]
struct FakeLog {
    end: AtomicI64,
    applied: Mutex<Vec<Bytes>>,
}

impl Applier for FakeLog {
    fn apply(&self, records: Bytes) -> BoxFuture<'static, PutResult> {
        self.end.fetch_add(records.len() as i64, Ordering::SeqCst);
        self.applied.lock().unwrap().push(records);
        Box::pin(async {
            PutResult {
                status: PutStatus::PutOk,
                append: None,
            }
        })
    }
    fn log_end(&self) -> i64 {
        self.end.load(Ordering::SeqCst)
    }
    fn truncate(&self, end: i64) -> std::io::Result<()> {
        self.end.store(end, Ordering::SeqCst);
        Ok(())
    }
    fn log_min(&self) -> i64 {
        0
    }
    fn read(&self, _from: i64, _max: usize) -> Option<Bytes> {
        None
    }
    fn append_raw(&self, at: i64, data: &[u8]) -> std::io::Result<i64> {
        let end = at + data.len() as i64;
        self.end.store(end, Ordering::SeqCst);
        Ok(end)
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<u64>> {
        let dir = TempDir::new("dledger-suite");
        let log = LogStore::open(dir.path(), false).expect("log store");
        let sm = StateMachine::open(dir.path(), Arc::new(FakeLog::default())).expect("sm");
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).expect("openraft storage suite");
}

fn id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn normal(term: u64, index: u64, data: &'static [u8]) -> Entry {
    Entry {
        log_id: id(term, index),
        payload: EntryPayload::Normal(Request::new(data)),
    }
}

async fn append(log: &mut LogStore, entries: Vec<Entry>) {
    // `LogFlushed` cannot be built outside openraft; the blocking helper does it for us.
    use openraft::storage::RaftLogStorageExt;
    log.blocking_append(entries).await.expect("append");
}

#[tokio::test]
async fn a_torn_log_tail_is_cut_and_the_rest_survives() {
    let dir = TempDir::new("dledger-torn");
    {
        let mut log = LogStore::open(dir.path(), true).unwrap();
        append(
            &mut log,
            (1..=5).map(|i| normal(1, i, b"message")).collect(),
        )
        .await;
    }
    // Half a record at the end, as a crash mid-write leaves it.
    let path = dir.path().join("raft-00000000000000000000.log");
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let mut log = LogStore::open(dir.path(), true).unwrap();
    assert_eq!(log.last_log_id(), Some(id(1, 4)));
    let got = log.try_get_log_entries(1..10).await.unwrap();
    assert_eq!(got.len(), 4);
    // The log continues where the intact part ends.
    append(&mut log, vec![normal(2, 5, b"again")]).await;
    drop(log);
    let mut log = LogStore::open(dir.path(), true).unwrap();
    let got = log.try_get_log_entries(5..6).await.unwrap();
    assert_eq!(got[0].log_id, id(2, 5));
    let st = log.get_log_state().await.unwrap();
    assert_eq!(st.last_log_id, Some(id(2, 5)));
}

#[tokio::test]
async fn a_half_applied_batch_is_undone_and_applied_again() {
    let dir = TempDir::new("dledger-sm");
    let store = Arc::new(FakeLog::default());
    {
        let mut sm = StateMachine::open(dir.path(), store.clone()).unwrap();
        sm.apply(vec![normal(1, 1, b"aaaa"), normal(1, 2, b"bb")])
            .await
            .unwrap();
    }
    assert_eq!(store.log_end(), 6);
    // A crash after the commitlog took the next entry but before the journal said so.
    store.end.fetch_add(3, Ordering::SeqCst);
    let mut sm = StateMachine::open(dir.path(), store.clone()).unwrap();
    assert_eq!(store.log_end(), 6, "the unjournaled tail is cut back");
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(id(1, 2)));
}

fn sized(term: u64, index: u64, len: usize) -> Entry {
    Entry {
        log_id: id(term, index),
        payload: EntryPayload::Normal(Request::new(&vec![b'x'; len])),
    }
}

fn segment_files(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("raft") && n.ends_with(".log"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn segments_roll_and_a_purge_deletes_those_it_empties() {
    let dir = TempDir::new("dledger-segments");
    let mut log = LogStore::open_sized(dir.path(), false, 2048).unwrap();
    for b in 0..20 {
        append(
            &mut log,
            (1..=5).map(|i| sized(1, b * 5 + i, 200)).collect(),
        )
        .await;
    }
    let before = segment_files(dir.path());
    assert!(before.len() >= 10, "{before:?}");
    let bytes_before = log.disk_bytes();
    log.purge(id(1, 80)).await.unwrap();
    let after = segment_files(dir.path());
    assert!(after.len() <= 3, "{after:?}");
    assert!(log.disk_bytes() < bytes_before / 4);
    let got = log.try_get_log_entries(81..101).await.unwrap();
    assert_eq!(got.len(), 20);
    drop(log);
    // Reopened: the purge point, the entries after it, and appends continue.
    let mut log = LogStore::open_sized(dir.path(), false, 2048).unwrap();
    let st = log.get_log_state().await.unwrap();
    assert_eq!(st.last_purged_log_id, Some(id(1, 80)));
    assert_eq!(st.last_log_id, Some(id(1, 100)));
    append(&mut log, vec![sized(2, 101, 10)]).await;
    let got = log.try_get_log_entries(81..102).await.unwrap();
    assert_eq!(got.len(), 21);
    assert_eq!(got[20].log_id, id(2, 101));
    // Truncating back into an earlier segment deletes the later ones.
    log.truncate(id(1, 85)).await.unwrap();
    assert_eq!(log.last_log_id(), Some(id(1, 84)));
    drop(log);
    let mut log = LogStore::open_sized(dir.path(), false, 2048).unwrap();
    assert_eq!(log.last_log_id(), Some(id(1, 84)));
    assert_eq!(log.try_get_log_entries(81..100).await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_log_written_before_segments_is_read_as_the_first_one() {
    let dir = TempDir::new("dledger-legacy");
    {
        let mut log = LogStore::open(dir.path(), true).unwrap();
        append(&mut log, (1..=3).map(|i| normal(1, i, b"old")).collect()).await;
    }
    std::fs::rename(
        dir.path().join("raft-00000000000000000000.log"),
        dir.path().join("raft.log"),
    )
    .unwrap();
    let mut log = LogStore::open(dir.path(), true).unwrap();
    assert_eq!(log.try_get_log_entries(1..4).await.unwrap().len(), 3);
    assert_eq!(
        segment_files(dir.path()),
        vec!["raft-00000000000000000000.log".to_string()]
    );
}

#[tokio::test]
async fn the_journal_keeps_its_newest_record_across_reopens() {
    let dir = TempDir::new("dledger-journal");
    let store = Arc::new(FakeLog::default());
    let mut index = 0;
    // Fewer applies after the reopen than before it: a journal written from its start again
    // would end with an older record than its newest.
    for applies in [3, 1] {
        let mut sm = StateMachine::open(dir.path(), store.clone()).unwrap();
        let (applied, _) = sm.applied_state().await.unwrap();
        assert_eq!(applied.map_or(0, |a| a.index), index);
        for _ in 0..applies {
            index += 1;
            sm.apply(vec![normal(1, index, b"abc")]).await.unwrap();
        }
    }
    let mut sm = StateMachine::open(dir.path(), store.clone()).unwrap();
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(id(1, 4)));
    assert_eq!(store.log_end(), 12, "nothing applied was cut back");
}

/// A commitlog of real bytes starting at `start`.
#[derive(Default)]
struct ByteLog {
    inner: Mutex<(i64, Vec<u8>)>,
}

impl ByteLog {
    fn with(start: i64, data: &[u8]) -> Arc<ByteLog> {
        Arc::new(ByteLog {
            inner: Mutex::new((start, data.to_vec())),
        })
    }
    fn bytes(&self) -> (i64, Vec<u8>) {
        self.inner.lock().unwrap().clone()
    }
}

impl Applier for ByteLog {
    fn apply(&self, records: Bytes) -> BoxFuture<'static, PutResult> {
        self.inner.lock().unwrap().1.extend_from_slice(&records);
        Box::pin(async {
            PutResult {
                status: PutStatus::PutOk,
                append: None,
            }
        })
    }
    fn log_end(&self) -> i64 {
        let g = self.inner.lock().unwrap();
        g.0 + g.1.len() as i64
    }
    fn truncate(&self, end: i64) -> std::io::Result<()> {
        let mut g = self.inner.lock().unwrap();
        let keep = (end - g.0).max(0) as usize;
        g.1.truncate(keep);
        Ok(())
    }
    fn log_min(&self) -> i64 {
        self.inner.lock().unwrap().0
    }
    fn read(&self, from: i64, max: usize) -> Option<Bytes> {
        let g = self.inner.lock().unwrap();
        let at = usize::try_from(from - g.0).ok()?;
        let end = (at + max.min(3)).min(g.1.len()); // small pieces: several reads
        (at < end).then(|| Bytes::copy_from_slice(&g.1[at..end]))
    }
    fn append_raw(&self, at: i64, data: &[u8]) -> std::io::Result<i64> {
        let mut g = self.inner.lock().unwrap();
        if g.1.is_empty() {
            g.0 = at;
        }
        assert_eq!(at, g.0 + g.1.len() as i64, "appended at the end");
        g.1.extend_from_slice(data);
        Ok(g.0 + g.1.len() as i64)
    }
}

struct Peer(Arc<ByteLog>);

impl ferrocket_replication::dledger::state_machine::CommitlogSource for Peer {
    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'static, Result<ferrocket_replication::dledger::state_machine::Chunk, String>>
    {
        let c = ferrocket_replication::dledger::state_machine::Chunk {
            data: self
                .0
                .read(from, (to - from).max(0) as usize)
                .unwrap_or_default(),
            min_offset: self.0.log_min(),
            max_offset: self.0.log_end(),
        };
        Box::pin(async move { Ok(c) })
    }
}

/// Builds a snapshot on a "leader" whose commitlog starts at `leader_start`, and installs it on a
/// follower holding `follower` (start, bytes).
async fn install_on(
    leader_start: i64,
    follower: (i64, &[u8]),
) -> (Result<(), StorageError<u64>>, Arc<ByteLog>, Arc<ByteLog>) {
    let (dl, df) = (
        TempDir::new("dledger-snap-l"),
        TempDir::new("dledger-snap-f"),
    );
    let leader = ByteLog::with(leader_start, b"");
    let mut sm_l = StateMachine::open(dl.path(), leader.clone()).unwrap();
    sm_l.apply(vec![
        normal(1, 1, b"first-"),
        normal(1, 2, b"second-"),
        normal(1, 3, b"third"),
    ])
    .await
    .unwrap();
    sm_l.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let snap = sm_l.get_current_snapshot().await.unwrap().unwrap();
    let f = ByteLog::with(follower.0, follower.1);
    let mut sm_f = StateMachine::open(df.path(), f.clone()).unwrap();
    sm_f.set_source(Arc::new(Peer(leader.clone())));
    let mut data = sm_f.begin_receiving_snapshot().await.unwrap();
    *data = *snap.snapshot;
    let r = sm_f.install_snapshot(&snap.meta, data).await;
    if r.is_ok() {
        assert_eq!(sm_f.applied_state().await.unwrap().0, Some(id(1, 3)));
        // The installed snapshot survives a restart.
        drop(sm_f);
        let mut again = StateMachine::open(df.path(), f.clone()).unwrap();
        let cur = again.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(cur.meta.last_log_id, Some(id(1, 3)));
        assert_eq!(again.applied_state().await.unwrap().0, Some(id(1, 3)));
    }
    (r, leader, f)
}

#[tokio::test]
async fn a_snapshot_install_copies_the_commitlog_the_node_lacks() {
    // An empty (wiped) node starts where the leader's commitlog starts.
    let (r, leader, f) = install_on(4096, (0, b"")).await;
    r.unwrap();
    assert_eq!(f.bytes(), leader.bytes());
    // A node that holds a prefix copies only the rest.
    let (r, leader, f) = install_on(4096, (4096, b"first-sec")).await;
    r.unwrap();
    assert_eq!(f.bytes(), leader.bytes());
    // A node that ends before the leader's oldest byte cannot be patched: it says what to do.
    let (r, _, f) = install_on(4096, (0, b"older")).await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("remove its storePathRootDir"), "{e}");
    assert_eq!(f.bytes(), (0, b"older".to_vec()), "left as it was");
}

/// A peer that serves 3 bytes a read, 100 ms each, and fails its fourth read once.
struct SlowPeer {
    log: Arc<ByteLog>,
    reads: AtomicI64,
}

impl ferrocket_replication::dledger::state_machine::CommitlogSource for SlowPeer {
    fn read(
        &self,
        from: i64,
        to: i64,
    ) -> BoxFuture<'static, Result<ferrocket_replication::dledger::state_machine::Chunk, String>>
    {
        let n = self.reads.fetch_add(1, Ordering::SeqCst);
        let chunk = Peer(self.log.clone()).read(from, to);
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if n == 3 {
                return Err("peer restarting".into());
            }
            chunk.await
        })
    }
}

/// A copy that takes longer than the patience in all, with a failed read late in it, goes on:
/// the patience counts from the last chunk copied, not from the start.
#[tokio::test]
async fn a_long_copy_outlasts_the_patience_while_it_progresses() {
    use ferrocket_replication::dledger::catch_up::copy_with_patience;
    let leader = ByteLog::with(0, b"first-second-third-fourth");
    let follower = ByteLog::with(0, b"");
    let peer = SlowPeer {
        log: leader.clone(),
        reads: AtomicI64::new(0),
    };
    let patience = std::time::Duration::from_millis(250);
    let t = std::time::Instant::now();
    copy_with_patience(&*follower, &peer, leader.log_end(), patience)
        .await
        .unwrap();
    assert!(t.elapsed() > patience, "the copy was meant to outlast it");
    assert_eq!(follower.bytes(), leader.bytes());

    // No chunk at all within the patience: given up, saying why.
    let stuck = ByteLog::with(0, b"");
    let nobody = SlowPeer {
        log: ByteLog::with(0, b""),
        reads: AtomicI64::new(0),
    };
    let e = copy_with_patience(&*stuck, &nobody, 10, patience)
        .await
        .unwrap_err();
    assert!(e.contains("no peer served the commitlog"), "{e}");
}
