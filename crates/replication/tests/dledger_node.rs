//! A running DLedger node (openraft core, gRPC service on loopback, proposer) in a one-node
//! group: what happens when its store refuses a committed entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrocket_replication::dledger::state_machine::Applier;
use ferrocket_replication::dledger::{DLedger, DLedgerConfig, STOPPED};
use ferrocket_store::{PutResult, PutStatus};
use ferrocket_testkit::TempDir;
use futures::future::BoxFuture;

/// A commitlog in memory that refuses every send once `broken` is set, as a store that cannot
/// create its next segment does.
#[derive(Default)]
struct Breakable {
    data: Mutex<Vec<u8>>,
    broken: AtomicBool,
}

impl Applier for Breakable {
    fn apply(&self, records: Bytes) -> BoxFuture<'static, PutResult> {
        let status = if self.broken.load(Ordering::SeqCst) {
            PutStatus::CreateMappedFileFailed
        } else {
            self.data.lock().unwrap().extend_from_slice(&records);
            PutStatus::PutOk
        };
        Box::pin(async move {
            PutResult {
                status,
                append: None,
            }
        })
    }
    fn log_end(&self) -> i64 {
        self.data.lock().unwrap().len() as i64
    }
    fn truncate(&self, end: i64) -> std::io::Result<()> {
        self.data.lock().unwrap().truncate(end as usize);
        Ok(())
    }
    fn log_min(&self) -> i64 {
        0
    }
    fn read(&self, _from: i64, _max: usize) -> Option<Bytes> {
        None
    }
    fn append_raw(&self, _at: i64, _data: &[u8]) -> std::io::Result<i64> {
        Err(std::io::Error::other("not in this test"))
    }
}

fn wait_until(what: &str, within: Duration, mut ok: impl FnMut() -> bool) {
    let t = Instant::now();
    while !ok() {
        assert!(t.elapsed() < within, "{what} not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A committed entry the store refuses for a reason of its own is not counted as applied: the
/// node stops (its log says so) and stops being the ready leader, so its broker no longer
/// registers as master while the rest of the group elects another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_entry_the_store_refuses_stops_the_node_and_its_leadership() {
    let dir = TempDir::new("dledger-node");
    let ip = "127.0.0.31";
    let port = ferrocket_testkit::free_port_on(ip);
    let cfg = DLedgerConfig {
        group: "G".into(),
        self_id: "n0".into(),
        peers: vec![("n0".into(), format!("{ip}:{port}"))],
        dir: dir.path().join("dledger"),
        sync: false,
        heartbeat: Duration::from_millis(100),
        election_min: Duration::from_millis(400),
        election_max: Duration::from_millis(800),
        raft_log_max_bytes: 0,
        segment_bytes: 0,
    };
    let store = Arc::new(Breakable::default());
    let stop = tokio_util::sync::CancellationToken::new();
    let node = DLedger::start(cfg, store.clone(), stop.clone())
        .await
        .unwrap();
    tokio::task::block_in_place(|| {
        wait_until("leader ready", Duration::from_secs(20), || {
            node.role().leader_ready
        })
    });
    let r = node
        .propose(Bytes::from_static(b"kept"), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(r.status, PutStatus::PutOk);

    store.broken.store(true, Ordering::SeqCst);
    let refused = node
        .propose(Bytes::from_static(b"refused"), Duration::from_secs(5))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    tokio::task::block_in_place(|| {
        wait_until("stopped", Duration::from_secs(10), || {
            let role = node.role();
            !role.leader_ready && role.state == STOPPED
        })
    });
    assert_eq!(&store.data.lock().unwrap()[..], b"kept");
    stop.cancel();
}
