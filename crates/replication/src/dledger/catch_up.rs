//! Copying committed commitlog bytes between members, for a node that installs a snapshot (the
//! Raft log before it has been purged): the `ReadCommitlog` RPC's service side, the
//! [`CommitlogSource`] that asks the other members in turn, and [`copy_until`], which appends
//! what a node lacks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tonic::transport::{Channel, Endpoint};

use super::network::MAX_RPC_BYTES;
use super::pb::{self, d_ledger_client::DLedgerClient};
use super::state_machine::Applier;

/// Committed commitlog bytes of another member.
#[derive(Debug, Clone, Default)]
pub struct Chunk {
    /// Starting at the requested offset; empty when the member does not hold it.
    pub data: Bytes,
    /// The member's commitlog bounds.
    pub min_offset: i64,
    pub max_offset: i64,
}

/// Where a node installing a snapshot reads the commitlog bytes it lacks.
pub trait CommitlogSource: Send + Sync + 'static {
    /// Bytes from `from` up to at most `to`, from some member that holds them (or an empty
    /// chunk with the bounds of one that does not).
    fn read(&self, from: i64, to: i64) -> BoxFuture<'static, Result<Chunk, String>>;
}

/// How long an install keeps trying to reach a member holding the bytes it lacks, counted from
/// the last chunk it copied (a large copy may take longer than this in all).
pub const FETCH_PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Most bytes one `ReadCommitlog` answer carries.
pub const READ_CHUNK_BYTES: usize = 4 << 20;

/// Answers a peer's read from this node's commitlog (only committed bytes are there).
pub fn serve_read(applier: &dyn Applier, req: &pb::ReadRequest) -> pb::ReadResponse {
    let want = (req.to - req.from).clamp(0, READ_CHUNK_BYTES as i64) as usize;
    let data = if want > 0 {
        applier.read(req.from, want).unwrap_or_default()
    } else {
        Default::default()
    };
    pb::ReadResponse {
        data,
        min_offset: applier.log_min(),
        max_offset: applier.log_end(),
    }
}

/// The other members of the group, asked in turn.
pub struct PeerSource {
    peers: Vec<String>,
    cluster: pb::Cluster,
    clients: Mutex<HashMap<String, DLedgerClient<Channel>>>,
}

impl PeerSource {
    /// `peers`: the Raft RPC addresses of the other members.
    pub fn new(peers: Vec<String>, cluster: pb::Cluster) -> Arc<PeerSource> {
        Arc::new(PeerSource {
            peers,
            cluster,
            clients: Mutex::new(HashMap::new()),
        })
    }

    fn client(&self, addr: &str) -> Result<DLedgerClient<Channel>, String> {
        let mut m = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = m.get(addr) {
            return Ok(c.clone());
        }
        let ep = Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true);
        let c = DLedgerClient::new(ep.connect_lazy()).max_decoding_message_size(MAX_RPC_BYTES);
        m.insert(addr.to_string(), c.clone());
        Ok(c)
    }
}

impl CommitlogSource for PeerSource {
    fn read(&self, from: i64, to: i64) -> BoxFuture<'static, Result<Chunk, String>> {
        let calls: Vec<_> = self
            .peers
            .iter()
            .map(|a| (a.clone(), self.client(a)))
            .collect();
        let cluster = self.cluster.clone();
        Box::pin(async move {
            let mut best: Option<Chunk> = None;
            let mut errors = Vec::new();
            for (addr, client) in calls {
                let mut c = match client {
                    Ok(c) => c,
                    Err(e) => {
                        errors.push(format!("{addr}: {e}"));
                        continue;
                    }
                };
                let mut req = tonic::Request::new(pb::ReadRequest {
                    cluster: Some(cluster.clone()),
                    from,
                    to,
                });
                req.set_timeout(Duration::from_secs(10));
                match c.read_commitlog(req).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        let chunk = Chunk {
                            data: r.data,
                            min_offset: r.min_offset,
                            max_offset: r.max_offset,
                        };
                        if !chunk.data.is_empty() {
                            return Ok(chunk);
                        }
                        // Prefer, among members without the bytes, one that holds the end.
                        if best
                            .as_ref()
                            .is_none_or(|b| b.max_offset < chunk.max_offset)
                        {
                            best = Some(chunk);
                        }
                    }
                    Err(s) => errors.push(format!("{addr}: {}", s.message())),
                }
            }
            best.ok_or_else(|| errors.join("; "))
        })
    }
}

/// Copies the committed commitlog bytes up to `end` that `applier` lacks from `source`: from
/// its own end, or, when its store is empty, from the oldest segment a peer holds.
pub async fn copy_until(
    applier: &dyn Applier,
    source: &dyn CommitlogSource,
    end: i64,
) -> Result<(), String> {
    copy_with_patience(applier, source, end, FETCH_PATIENCE).await
}

/// [`copy_until`], giving up after `patience` without a chunk copied.
pub async fn copy_with_patience(
    applier: &dyn Applier,
    source: &dyn CommitlogSource,
    end: i64,
    patience: Duration,
) -> Result<(), String> {
    let mut deadline = std::time::Instant::now() + patience;
    let mut copied = 0i64;
    loop {
        let mine = applier.log_end();
        if mine >= end {
            if copied > 0 {
                tracing::info!(
                    bytes = copied,
                    end,
                    "commitlog copied from a peer for a snapshot"
                );
            }
            return Ok(());
        }
        let chunk = match source.read(mine, end).await {
            // The peer's oldest segment starts past our end: only an empty store (a wiped
            // node) may start there.
            Ok(c) if c.data.is_empty() && c.min_offset > mine && c.max_offset >= end => {
                if mine != 0 {
                    return Err(format!(
                        "this node's commitlog ends at {mine} but the group's oldest data starts at {}: stop this broker, remove its storePathRootDir and start it again to copy the group's commitlog",
                        c.min_offset
                    ));
                }
                source
                    .read(c.min_offset, end)
                    .await
                    .map(|d| (c.min_offset, d))
            }
            r => r.map(|c| (mine, c)),
        };
        match chunk {
            Ok((at, c)) if !c.data.is_empty() => {
                applier
                    .append_raw(at, &c.data)
                    .map_err(|e| format!("appending a peer's commitlog at {at}: {e}"))?;
                copied += c.data.len() as i64;
                deadline = std::time::Instant::now() + patience;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "reading a peer's commitlog"),
        }
        if std::time::Instant::now() > deadline {
            return Err(format!(
                "no peer served the commitlog from {mine} to {end} within {patience:?}"
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
