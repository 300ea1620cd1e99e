//! Gathers the sends that arrive while earlier entries are in flight into one Raft entry.
//!
//! Each Raft entry costs the leader a log write, bookkeeping in openraft and a share of the
//! replication RPCs, whatever its size; at 64 sends in flight those per-entry costs were most of
//! the leader's CPU. The batcher keeps at most [`MAX_IN_FLIGHT`] entries in flight: while they
//! commit, new sends queue, and the next entry takes all of them (up to [`MAX_PARTS`] sends or
//! [`MAX_BYTES`]). A lone send is proposed at once, so an idle group adds no latency. Every
//! send keeps its own result: the entry's response holds one per send, in order.

use std::sync::Arc;

use bytes::Bytes;
use ferrocket_store::PutResult;
use openraft::error::ClientWriteError;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::types::{Raft, Request};
use super::ProposeError;

/// Entries in flight at once.
pub const MAX_IN_FLIGHT: usize = 2;
/// Sends per entry.
pub const MAX_PARTS: usize = 256;
/// Bytes of records per entry (a single larger send still goes alone).
pub const MAX_BYTES: usize = 1 << 20;

/// One send waiting for its entry.
pub struct Pending {
    pub records: Bytes,
    pub done: oneshot::Sender<Result<PutResult, ProposeError>>,
}

/// Runs until every sender is dropped or `stop` is cancelled. `peers` maps node ids to
/// `dLegerSelfId`s for NotLeader answers.
pub async fn run(
    raft: Raft,
    peers: Vec<String>,
    mut rx: mpsc::Receiver<Pending>,
    stop: tokio_util::sync::CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let peers = Arc::new(peers);
    loop {
        let slot = tokio::select! {
            s = Arc::clone(&slots).acquire_owned() => match s { Ok(s) => s, Err(_) => return },
            _ = stop.cancelled() => return,
        };
        let first = tokio::select! {
            p = rx.recv() => match p { Some(p) => p, None => return },
            _ = stop.cancelled() => return,
        };
        let mut bytes = first.records.len();
        let mut batch = vec![first];
        while batch.len() < MAX_PARTS && bytes < MAX_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.records.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        let parts: Vec<Bytes> = batch.iter().map(|p| p.records.clone()).collect();
        let request = Request::batch(&parts);
        drop(parts);
        // Submitted here, in arrival order (the wait for the outcome runs beside the loop).
        let submitted = raft.client_write_ff(request).await;
        let peers = Arc::clone(&peers);
        tokio::spawn(async move {
            let outcome = match submitted {
                Ok(rx) => rx
                    .await
                    .map_err(|_| ProposeError::Fatal("Raft node stopped".into())),
                Err(fatal) => Err(ProposeError::Fatal(fatal.to_string())),
            };
            drop(slot);
            let results = match outcome {
                Ok(Ok(resp)) if resp.data.0.len() == batch.len() => resp.data.0,
                Ok(Ok(resp)) => {
                    let e = format!(
                        "entry of {} sends applied with {} results",
                        batch.len(),
                        resp.data.0.len()
                    );
                    return fail_all(batch, ProposeError::Fatal(e));
                }
                Ok(Err(ClientWriteError::ForwardToLeader(f))) => {
                    let leader = f.leader_id.and_then(|i| peers.get(i as usize).cloned());
                    return fail_all(batch, ProposeError::NotLeader(leader));
                }
                Ok(Err(e)) => return fail_all(batch, ProposeError::Fatal(e.to_string())),
                Err(e) => return fail_all(batch, e),
            };
            for (p, r) in batch.into_iter().zip(results) {
                let _ = p.done.send(Ok(r));
            }
        });
    }
}

fn fail_all(batch: Vec<Pending>, e: ProposeError) {
    for p in batch {
        let _ = p.done.send(Err(e.clone()));
    }
}
