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
    let path = dir.path().join("raft.log");
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
