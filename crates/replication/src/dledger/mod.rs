//! DLedger mode (`enableDLegerCommitLog=true`): the brokers of one `dLegerGroup` form a Raft
//! group on openraft. The leader serves as master; a send is proposed as a Raft entry and
//! acknowledged once a majority holds it and it has been applied to the leader's commitlog.
//!
//! - node ids are positions in `dLegerPeers` (`n0-host:port;n1-host:port;...`), the address of
//!   each id is where its Raft RPCs are served (gRPC, `proto/dledger.proto`);
//! - [`log_store`]: the Raft log (vote, entries) on disk;
//! - [`state_machine`]: applying committed entries stores their messages through an
//!   [`Applier`], so the commitlog holds committed messages only;
//! - [`network`]: the RPC client and service, with the group check that refuses peers whose
//!   `dLegerGroup`/`dLegerPeers` differ from ours; [`append_stream`]: AppendEntries over one
//!   long-lived stream per follower;
//! - [`compaction`]: snapshots by log size, after which openraft purges the log;
//! - [`catch_up`]: a node installing a snapshot copies the commitlog bytes it lacks from a peer.
//!
//! A message is written twice on every node: in the Raft log when it is replicated, and in the
//! commitlog when it is applied (RocketMQ's DLedger writes it once, the commitlog being the Raft
//! log). The price is measured in docs/performance.md.

pub mod append_stream;
pub mod catch_up;
pub mod codec;
pub mod compaction;
pub mod log_store;
pub mod network;
pub mod proposer;
pub mod state_machine;
pub mod types;

/// The generated gRPC code.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("ferrocket.dledger");
}

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocket_store::PutResult;
use openraft::error::RaftError;
use openraft::{BasicNode, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::watch;

pub use state_machine::Applier;
pub use types::{NodeId, Raft, TypeConfig};

/// What a DLedger node needs to know.
#[derive(Debug, Clone)]
pub struct DLedgerConfig {
    /// `dLegerGroup`.
    pub group: String,
    /// `dLegerSelfId`.
    pub self_id: String,
    /// `dLegerPeers`, in order: (id, host:port).
    pub peers: Vec<(String, String)>,
    /// Where the Raft log and state-machine bookkeeping live.
    pub dir: PathBuf,
    /// fdatasync each append (SYNC_FLUSH).
    pub sync: bool,
    pub heartbeat: Duration,
    pub election_min: Duration,
    pub election_max: Duration,
    /// Raft log size past which a snapshot is taken and the log purged to it (0: never).
    pub raft_log_max_bytes: u64,
    /// `mappedFileSizeCommitLog`, which every node of the group must share (checked on every
    /// exchange between peers).
    pub segment_bytes: u64,
}

/// Why a node cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DLedgerError {
    #[error("dLegerSelfId={self_id} is not in dLegerPeers={peers}")]
    SelfNotInPeers { self_id: String, peers: String },
    #[error("dLegerPeers={0} lists an id twice")]
    DuplicateId(String),
    #[error("dLegerPeers address {addr:?} of {id} is not host:port")]
    BadAddr { id: String, addr: String },
    #[error("cannot serve DLedger RPCs on {addr} (dLegerSelfId={self_id}): {source}; is another node running with the same dLegerSelfId?")]
    Bind {
        addr: SocketAddr,
        self_id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("DLedger storage in {dir}: {source}")]
    Storage {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
}

/// Why a proposal did not complete.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader (the leader's id, when known).
    #[error("not the DLedger leader (leader: {0:?})")]
    NotLeader(Option<String>),
    /// No majority within the timeout: the entry may still commit later.
    #[error("no quorum within {0:?}")]
    Timeout(Duration),
    #[error("raft: {0}")]
    Fatal(String),
}

/// The role of a node, for registration and `clusterList`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Leader that has applied everything committed before it took over.
    pub leader_ready: bool,
    pub state: &'static str,
    pub term: u64,
    pub applied_index: u64,
    pub leader: Option<String>,
}

/// A running DLedger node.
pub struct DLedger {
    raft: Raft,
    cfg: DLedgerConfig,
    self_index: u64,
    role: watch::Receiver<Role>,
    /// Sends waiting for the batcher.
    proposals: tokio::sync::mpsc::Sender<proposer::Pending>,
}

/// Canonical `dLegerPeers` text.
pub fn peers_string(peers: &[(String, String)]) -> String {
    peers
        .iter()
        .map(|(id, addr)| format!("{id}-{addr}"))
        .collect::<Vec<_>>()
        .join(";")
}

/// The role's state once the Raft core has stopped on an error.
pub const STOPPED: &str = "STOPPED";

fn state_name(s: ServerState) -> &'static str {
    match s {
        ServerState::Leader => "LEADER",
        ServerState::Follower => "FOLLOWER",
        ServerState::Candidate => "CANDIDATE",
        ServerState::Learner => "LEARNER",
        ServerState::Shutdown => "SHUTDOWN",
    }
}

impl DLedger {
    /// Opens the storage, serves RPCs on this node's peer address, and joins the group.
    pub async fn start(
        cfg: DLedgerConfig,
        applier: Arc<dyn Applier>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<DLedger, DLedgerError> {
        let peers_text = peers_string(&cfg.peers);
        let mut seen = BTreeSet::new();
        for (id, _) in &cfg.peers {
            if !seen.insert(id) {
                return Err(DLedgerError::DuplicateId(peers_text));
            }
        }
        let self_index = cfg
            .peers
            .iter()
            .position(|(id, _)| *id == cfg.self_id)
            .ok_or_else(|| DLedgerError::SelfNotInPeers {
                self_id: cfg.self_id.clone(),
                peers: peers_text.clone(),
            })? as u64;
        let self_addr: SocketAddr =
            cfg.peers[self_index as usize]
                .1
                .parse()
                .map_err(|_| DLedgerError::BadAddr {
                    id: cfg.self_id.clone(),
                    addr: cfg.peers[self_index as usize].1.clone(),
                })?;
        let listener = tokio::net::TcpListener::bind(self_addr)
            .await
            .map_err(|source| DLedgerError::Bind {
                addr: self_addr,
                self_id: cfg.self_id.clone(),
                source,
            })?;
        let storage = |source| DLedgerError::Storage {
            dir: cfg.dir.clone(),
            source,
        };
        let log = log_store::LogStore::open_sized(
            &cfg.dir,
            cfg.sync,
            compaction::segment_bytes(cfg.raft_log_max_bytes),
        )
        .map_err(storage)?;
        let mut sm =
            state_machine::StateMachine::open(&cfg.dir, Arc::clone(&applier)).map_err(storage)?;
        let config = Config {
            cluster_name: cfg.group.clone(),
            heartbeat_interval: cfg.heartbeat.as_millis() as u64,
            election_timeout_min: cfg.election_min.as_millis() as u64,
            election_timeout_max: cfg.election_max.as_millis() as u64,
            // Snapshots are taken by size (see `compaction`), not by entry count.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: compaction::ENTRIES_KEPT,
            // The last chunk of a snapshot is answered once the follower has copied the
            // commitlog it lacks (possibly GBs): at openraft's 200 ms the leader would time out
            // and resend it over and over while the copy runs.
            install_snapshot_timeout: catch_up::FETCH_PATIENCE.as_millis() as u64 + 10_000,
            max_payload_entries: 512,
            ..Config::default()
        }
        .validate()
        .map_err(|e| DLedgerError::Raft(e.to_string()))?;
        let cluster = pb::Cluster {
            group: cfg.group.clone(),
            peers: peers_text,
            self_id: cfg.self_id.clone(),
            segment_bytes: cfg.segment_bytes,
        };
        let net = network::Network {
            cluster: cluster.clone(),
        };
        let others = cfg
            .peers
            .iter()
            .enumerate()
            .filter(|(i, _)| *i as u64 != self_index)
            .map(|(_, (_, addr))| addr.clone())
            .collect();
        sm.set_source(catch_up::PeerSource::new(others, cluster.clone()));
        let raft = Raft::new(self_index, Arc::new(config), net, log.clone(), sm)
            .await
            .map_err(|e| DLedgerError::Raft(e.to_string()))?;

        let svc = network::Service {
            raft: raft.clone(),
            cluster,
            applier,
        };
        // Raft RPCs are small request/response pairs: Nagle's algorithm against the peer's
        // delayed ACK would add tens of milliseconds to a replication round.
        let incoming = tokio_stream::StreamExt::map(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            |conn| {
                if let Ok(c) = &conn {
                    let _ = c.set_nodelay(true);
                }
                conn
            },
        );
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .initial_stream_window_size(Some(network::H2_WINDOW))
                .initial_connection_window_size(Some(network::H2_WINDOW))
                .max_frame_size(Some(network::H2_MAX_FRAME))
                .add_service(
                    pb::d_ledger_server::DLedgerServer::new(svc)
                        .max_decoding_message_size(network::MAX_RPC_BYTES)
                        .max_encoding_message_size(network::MAX_RPC_BYTES),
                )
                .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "DLedger RPC server stopped");
            }
        });

        // Every node proposes the same initial membership; only a node with an empty log
        // takes it, and identical proposals agree.
        let members: BTreeMap<NodeId, BasicNode> = cfg
            .peers
            .iter()
            .enumerate()
            .map(|(i, (_, addr))| (i as u64, BasicNode::new(addr)))
            .collect();
        match raft.initialize(members).await {
            Ok(()) => tracing::info!(group = %cfg.group, "DLedger group initialized"),
            Err(RaftError::APIError(_)) => {} // already initialized
            Err(e) => return Err(DLedgerError::Raft(e.to_string())),
        }

        let role = watch_role(&raft, &cfg, shutdown.clone());
        let (proposals, rx) = tokio::sync::mpsc::channel(4 * proposer::MAX_PARTS);
        let ids = cfg.peers.iter().map(|(id, _)| id.clone()).collect();
        tokio::spawn(proposer::run(raft.clone(), ids, rx, shutdown.clone()));
        if cfg.raft_log_max_bytes > 0 {
            tokio::spawn(compaction::run(
                raft.clone(),
                log,
                cfg.raft_log_max_bytes,
                shutdown,
            ));
        }
        Ok(DLedger {
            raft,
            cfg,
            self_index,
            role,
            proposals,
        })
    }

    /// `dLegerSelfId`.
    pub fn self_id(&self) -> &str {
        &self.cfg.self_id
    }

    /// Position of this node in `dLegerPeers`.
    pub fn self_index(&self) -> u64 {
        self.self_index
    }

    /// The current role (cheap).
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// Changes of role.
    pub fn role_changes(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Proposes one send's `records` and waits until they are committed and applied here
    /// (sends arriving together share an entry, see [`proposer`]).
    pub async fn propose(
        &self,
        records: Bytes,
        timeout: Duration,
    ) -> Result<PutResult, ProposeError> {
        let (done, rx) = tokio::sync::oneshot::channel();
        let wait = async {
            self.proposals
                .send(proposer::Pending { records, done })
                .await
                .map_err(|_| ProposeError::Fatal("DLedger node stopped".into()))?;
            rx.await
                .map_err(|_| ProposeError::Fatal("proposal dropped".into()))?
        };
        match tokio::time::timeout(timeout, wait).await {
            Err(_) => Err(ProposeError::Timeout(timeout)),
            Ok(r) => r,
        }
    }

    /// Stops the Raft node.
    pub async fn shutdown(&self) {
        let _ = self.raft.shutdown().await;
    }
}

/// Publishes the role from openraft's metrics. A new leader is "ready" once it has applied an
/// entry of its own term (the blank entry it commits on election: everything committed before
/// is then in its commitlog) and a quorum acknowledged it within an election timeout.
fn watch_role(
    raft: &Raft,
    cfg: &DLedgerConfig,
    shutdown: tokio_util::sync::CancellationToken,
) -> watch::Receiver<Role> {
    let mut metrics = raft.metrics();
    let peers = cfg.peers.clone();
    let lease = cfg.election_max.as_millis() as u64;
    // A node restarting with its own committed vote is restored as leader of that term. If the
    // others moved on, they never acknowledge it and it steps down; if they did not (the whole
    // group restarted), their acknowledgements make it ready. So: ready = leader, applied an
    // entry of its term, and acknowledged by a quorum within an election timeout.
    let role_of = move |m: &RaftMetrics<NodeId, BasicNode>| Role {
        leader_ready: m.running_state.is_ok()
            && m.state == ServerState::Leader
            && m.last_applied
                .is_some_and(|a| a.leader_id.term == m.current_term)
            && m.millis_since_quorum_ack.is_some_and(|ms| ms < lease),
        state: if m.running_state.is_ok() {
            state_name(m.state)
        } else {
            STOPPED
        },
        term: m.current_term,
        applied_index: m.last_applied.map_or(0, |a| a.index),
        leader: m
            .current_leader
            .and_then(|i| peers.get(i as usize).map(|(id, _)| id.clone())),
    };
    let first = role_of(&metrics.borrow());
    let (tx, rx) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            let stopped = tokio::select! {
                r = metrics.changed() => r.is_err(),
                _ = shutdown.cancelled() => return,
            };
            let role = if stopped {
                // The Raft core ended on its own (a storage error): never leave this node
                // advertised as the leader it may have been.
                tracing::error!("the DLedger node stopped; it no longer serves as leader or follower until restarted");
                Role {
                    leader_ready: false,
                    state: STOPPED,
                    ..tx.borrow().clone()
                }
            } else {
                role_of(&metrics.borrow_and_update())
            };
            tx.send_if_modified(|cur| {
                if *cur != role {
                    if cur.state != role.state || cur.leader_ready != role.leader_ready {
                        tracing::info!(state = role.state, term = role.term, ready = role.leader_ready, leader = ?role.leader, "DLedger role");
                    }
                    *cur = role;
                    true
                } else {
                    false
                }
            });
            if stopped {
                return;
            }
        }
    });
    rx
}
