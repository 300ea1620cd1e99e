//! Raft RPCs over gRPC (tonic): the client openraft uses to reach peers, and the service every
//! node serves on its `dLegerPeers` address. Each request carries the sender's view of the group,
//! checked by the receiver (see `proto/dledger.proto`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::BasicNode;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request as GrpcRequest, Response as GrpcResponse, Status};

use super::append_stream::{self, AppendStream};
use super::codec::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, payload_bytes,
    snapshot_meta_from_json, snapshot_meta_to_json, vote_from_pb, vote_to_pb,
};
use super::pb::{self, d_ledger_client::DLedgerClient, d_ledger_server::DLedger};
use super::state_machine::Applier;
use super::types::{NodeId, Raft, TypeConfig};

/// Largest gRPC message either side accepts: one entry may carry a single send of up to
/// `maxMessageSize` (4 MiB by default, above tonic's default limit), so the limit is far above
/// any entry; [`APPEND_BUDGET_BYTES`] keeps ordinary RPCs small.
pub const MAX_RPC_BYTES: usize = 256 << 20;

/// HTTP/2 flow-control window of the Raft RPC connections, both ways. The default 64 KiB held
/// an AppendEntries of batched entries to a few frames per round trip of WINDOW_UPDATEs.
pub const H2_WINDOW: u32 = 16 << 20;

/// Largest HTTP/2 frame the RPC server accepts (the default is 16 KiB).
pub const H2_MAX_FRAME: u32 = 1 << 20;

/// Payload bytes per AppendEntries RPC before openraft is asked to send fewer entries.
pub const APPEND_BUDGET_BYTES: usize = 8 << 20;

type Rpc<T, E = RaftError<NodeId>> = Result<T, RPCError<NodeId, BasicNode, E>>;

/// Builds clients for peers.
#[derive(Clone)]
pub struct Network {
    pub cluster: pb::Cluster,
}

/// A connection to one peer (connects lazily, reconnects by itself).
pub struct Peer {
    target: NodeId,
    addr: String,
    client: Option<DLedgerClient<Channel>>,
    cluster: pb::Cluster,
    last_refusal_log: Option<Instant>,
    /// AppendEntries go over this stream once it is open.
    stream: Option<AppendStream>,
    /// The peer does not serve `AppendStream` (an older node): unary calls instead.
    unary_only: bool,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            client: None,
            cluster: self.cluster.clone(),
            last_refusal_log: None,
            stream: None,
            unary_only: false,
        }
    }
}

impl Peer {
    fn client(&mut self) -> Result<DLedgerClient<Channel>, Unreachable> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        let ep = Endpoint::from_shared(format!("http://{}", self.addr))
            .map_err(|e| Unreachable::new(&e))?
            .connect_timeout(Duration::from_millis(500))
            .tcp_nodelay(true)
            .initial_stream_window_size(Some(H2_WINDOW))
            .initial_connection_window_size(Some(H2_WINDOW));
        let c = DLedgerClient::new(ep.connect_lazy())
            .max_decoding_message_size(MAX_RPC_BYTES)
            .max_encoding_message_size(MAX_RPC_BYTES);
        self.client = Some(c.clone());
        Ok(c)
    }

    fn request<T>(&self, msg: T, option: &RPCOption) -> GrpcRequest<T> {
        let mut r = GrpcRequest::new(msg);
        r.set_timeout(option.hard_ttl());
        r
    }

    /// Maps a failed call; a refused group check is logged loudly (at most every 10 s).
    fn fail<E: std::error::Error>(&mut self, s: Status) -> RPCError<NodeId, BasicNode, E> {
        if s.code() == Code::FailedPrecondition
            && self
                .last_refusal_log
                .is_none_or(|t| t.elapsed() > Duration::from_secs(10))
        {
            tracing::error!(peer = %self.addr, target = self.target, "{}", s.message());
            self.last_refusal_log = Some(Instant::now());
        }
        if matches!(s.code(), Code::Unavailable | Code::FailedPrecondition) {
            // Drop the channel so the next call reconnects from scratch.
            self.client = None;
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(
                s.message().to_string(),
            )))
        } else {
            RPCError::Network(NetworkError::new(&std::io::Error::other(format!(
                "{}: {}",
                s.code(),
                s.message()
            ))))
        }
    }

    /// One AppendEntries: over the stream (opened on first use, dropped after any error, so the
    /// next call opens a new one), or unary for a peer without the stream.
    async fn send_append(
        &mut self,
        req: pb::AppendRequest,
        option: &RPCOption,
    ) -> Result<pb::AppendResponse, Status> {
        if self.unary_only {
            return self.unary_append(req, option).await;
        }
        // After an abandoned call the follower may still hold requests queued on the stream,
        // all stale now: a new stream resets the old one, which discards them there.
        if self.stream.as_ref().is_some_and(AppendStream::abandoned) {
            self.stream = None;
        }
        // Only opening a stream can find that the peer lacks it: keep a copy for that case.
        let copy = self.stream.is_none().then(|| req.clone());
        let ttl = option.hard_ttl();
        let r = match tokio::time::timeout(ttl, self.stream_call(req)).await {
            Ok(r) => r,
            Err(_) => Err(Status::deadline_exceeded(format!(
                "no AppendEntries answer within {ttl:?}"
            ))),
        };
        match (r, copy) {
            (Err(s), Some(req)) if s.code() == Code::Unimplemented => {
                tracing::info!(peer = %self.addr, "peer does not serve AppendStream; using unary AppendEntries");
                self.stream = None;
                self.unary_only = true;
                self.unary_append(req, option).await
            }
            (Err(s), _) => {
                self.stream = None;
                Err(s)
            }
            (ok, _) => ok,
        }
    }

    async fn unary_append(
        &mut self,
        req: pb::AppendRequest,
        option: &RPCOption,
    ) -> Result<pb::AppendResponse, Status> {
        let mut c = self
            .client()
            .map_err(|e| Status::unavailable(e.to_string()))?;
        c.append_entries(self.request(req, option))
            .await
            .map(GrpcResponse::into_inner)
    }

    async fn stream_call(&mut self, req: pb::AppendRequest) -> Result<pb::AppendResponse, Status> {
        if self.stream.is_none() {
            let mut c = self
                .client()
                .map_err(|e| Status::unavailable(e.to_string()))?;
            self.stream = Some(AppendStream::open(&mut c).await?);
        }
        let stream = self.stream.as_mut().expect("opened above");
        stream.call(req).await
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<AppendEntriesResponse<NodeId>> {
        // Entries hold up to a MiB of sends each (a single send up to maxMessageSize): past the
        // budget, ask openraft for fewer entries per RPC (it retries at once with the hint).
        let mut bytes = 0;
        let fit = rpc
            .entries
            .iter()
            .take_while(|e| {
                bytes += payload_bytes(&e.payload).len() + 64;
                bytes <= APPEND_BUDGET_BYTES
            })
            .count();
        if fit < rpc.entries.len() && rpc.entries.len() > 1 {
            let hint = fit.max(1) as u64;
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(hint),
            ));
        }
        let req = pb::AppendRequest {
            cluster: Some(self.cluster.clone()),
            vote: Some(vote_to_pb(&rpc.vote)),
            prev_log_id: rpc.prev_log_id.as_ref().map(log_id_to_pb),
            entries: rpc.entries.iter().map(entry_to_pb).collect(),
            leader_commit: rpc.leader_commit.as_ref().map(log_id_to_pb),
            seq: 0,
        };
        let r = match self.send_append(req, &option).await {
            Ok(r) => r,
            Err(s) => return Err(self.fail(s)),
        };
        use pb::append_response::Kind;
        Ok(match Kind::try_from(r.kind).unwrap_or(Kind::Conflict) {
            Kind::Success => AppendEntriesResponse::Success,
            Kind::PartialSuccess => {
                AppendEntriesResponse::PartialSuccess(r.matching.as_ref().map(log_id_from_pb))
            }
            Kind::Conflict => AppendEntriesResponse::Conflict,
            Kind::HigherVote => AppendEntriesResponse::HigherVote(vote_from_pb(r.vote.as_ref())),
        })
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Rpc<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>> {
        let req = pb::SnapshotRequest {
            cluster: Some(self.cluster.clone()),
            vote: Some(vote_to_pb(&rpc.vote)),
            meta: snapshot_meta_to_json(&rpc.meta).into(),
            offset: rpc.offset,
            data: rpc.data.into(),
            done: rpc.done,
        };
        let mut c = self.client().map_err(RPCError::Unreachable)?;
        match c.install_snapshot(self.request(req, &option)).await {
            Ok(r) => Ok(InstallSnapshotResponse {
                vote: vote_from_pb(r.into_inner().vote.as_ref()),
            }),
            Err(s) => Err(self.fail(s)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Rpc<VoteResponse<NodeId>> {
        let req = pb::VoteRequest {
            cluster: Some(self.cluster.clone()),
            vote: Some(vote_to_pb(&rpc.vote)),
            last_log_id: rpc.last_log_id.as_ref().map(log_id_to_pb),
        };
        let mut c = self.client().map_err(RPCError::Unreachable)?;
        match c.request_vote(self.request(req, &option)).await {
            Ok(r) => {
                let r = r.into_inner();
                Ok(VoteResponse {
                    vote: vote_from_pb(r.vote.as_ref()),
                    vote_granted: r.vote_granted,
                    last_log_id: r.last_log_id.as_ref().map(log_id_from_pb),
                })
            }
            Err(s) => Err(self.fail(s)),
        }
    }
}

/// The gRPC service of one node.
pub struct Service {
    pub raft: Raft,
    pub cluster: pb::Cluster,
    /// The commitlog, read by peers that install a snapshot.
    pub applier: Arc<dyn Applier>,
}

impl Service {
    /// Refuses a request from a node whose view of the group differs from ours.
    fn check(&self, theirs: Option<&pb::Cluster>) -> Result<(), Status> {
        check(&self.cluster, theirs)
    }
}

/// Refuses a request from a node whose view of the group (`theirs`) differs from `ours`.
fn check(ours: &pb::Cluster, theirs: Option<&pb::Cluster>) -> Result<(), Status> {
    let Some(t) = theirs else {
        return Err(Status::invalid_argument(
            "request without the sender's group",
        ));
    };
    if t.group != ours.group {
        return Err(Status::failed_precondition(format!(
            "dLegerGroup mismatch: node {} is in group {:?}, node {} is in group {:?}",
            t.self_id, t.group, ours.self_id, ours.group
        )));
    }
    if t.peers != ours.peers {
        return Err(Status::failed_precondition(format!(
            "dLegerPeers mismatch in group {:?}: node {} has dLegerPeers={} but node {} has dLegerPeers={}",
            ours.group, t.self_id, t.peers, ours.self_id, ours.peers
        )));
    }
    if t.segment_bytes != 0 && ours.segment_bytes != 0 && t.segment_bytes != ours.segment_bytes {
        return Err(Status::failed_precondition(format!(
            "mappedFileSizeCommitLog mismatch in group {:?}: node {} has mappedFileSizeCommitLog={} but node {} has mappedFileSizeCommitLog={}; every node of a group needs the same segment size",
            ours.group, t.self_id, t.segment_bytes, ours.self_id, ours.segment_bytes
        )));
    }
    if t.self_id == ours.self_id {
        return Err(Status::failed_precondition(format!(
            "two nodes of group {:?} use dLegerSelfId={}: each node needs its own id",
            ours.group, ours.self_id
        )));
    }
    Ok(())
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::unavailable(e.to_string())
}

#[tonic::async_trait]
impl DLedger for Service {
    async fn request_vote(
        &self,
        req: GrpcRequest<pb::VoteRequest>,
    ) -> Result<GrpcResponse<pb::VoteResponse>, Status> {
        let r = req.into_inner();
        self.check(r.cluster.as_ref())?;
        let resp = self
            .raft
            .vote(VoteRequest {
                vote: vote_from_pb(r.vote.as_ref()),
                last_log_id: r.last_log_id.as_ref().map(log_id_from_pb),
            })
            .await
            .map_err(internal)?;
        Ok(GrpcResponse::new(pb::VoteResponse {
            vote: Some(vote_to_pb(&resp.vote)),
            vote_granted: resp.vote_granted,
            last_log_id: resp.last_log_id.as_ref().map(log_id_to_pb),
        }))
    }

    async fn append_entries(
        &self,
        req: GrpcRequest<pb::AppendRequest>,
    ) -> Result<GrpcResponse<pb::AppendResponse>, Status> {
        append(&self.raft, &self.cluster, req.into_inner())
            .await
            .map(GrpcResponse::new)
    }

    type AppendStreamStream = append_stream::Responses;

    async fn append_stream(
        &self,
        req: GrpcRequest<tonic::Streaming<pb::AppendRequest>>,
    ) -> Result<GrpcResponse<Self::AppendStreamStream>, Status> {
        let node = Arc::new((self.raft.clone(), self.cluster.clone()));
        Ok(GrpcResponse::new(append_stream::serve(
            req.into_inner(),
            move |r| {
                let node = Arc::clone(&node);
                async move { append(&node.0, &node.1, r).await }
            },
        )))
    }

    async fn install_snapshot(
        &self,
        req: GrpcRequest<pb::SnapshotRequest>,
    ) -> Result<GrpcResponse<pb::SnapshotResponse>, Status> {
        let r = req.into_inner();
        self.check(r.cluster.as_ref())?;
        let meta = snapshot_meta_from_json(&r.meta)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let resp = self
            .raft
            .install_snapshot(InstallSnapshotRequest {
                vote: vote_from_pb(r.vote.as_ref()),
                meta,
                offset: r.offset,
                data: r.data.to_vec(),
                done: r.done,
            })
            .await
            .map_err(internal)?;
        Ok(GrpcResponse::new(pb::SnapshotResponse {
            vote: Some(vote_to_pb(&resp.vote)),
        }))
    }

    async fn read_commitlog(
        &self,
        req: GrpcRequest<pb::ReadRequest>,
    ) -> Result<GrpcResponse<pb::ReadResponse>, Status> {
        let r = req.into_inner();
        self.check(r.cluster.as_ref())?;
        Ok(GrpcResponse::new(super::catch_up::serve_read(
            &*self.applier,
            &r,
        )))
    }
}

/// Hands one AppendEntries to the local Raft node.
async fn append(
    raft: &Raft,
    ours: &pb::Cluster,
    r: pb::AppendRequest,
) -> Result<pb::AppendResponse, Status> {
    check(ours, r.cluster.as_ref())?;
    let entries = r
        .entries
        .into_iter()
        .map(entry_from_pb)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let resp = raft
        .append_entries(AppendEntriesRequest {
            vote: vote_from_pb(r.vote.as_ref()),
            prev_log_id: r.prev_log_id.as_ref().map(log_id_from_pb),
            entries,
            leader_commit: r.leader_commit.as_ref().map(log_id_from_pb),
        })
        .await
        .map_err(internal)?;
    use pb::append_response::Kind;
    let (kind, matching, vote) = match resp {
        AppendEntriesResponse::Success => (Kind::Success, None, None),
        AppendEntriesResponse::PartialSuccess(m) => {
            (Kind::PartialSuccess, m.as_ref().map(log_id_to_pb), None)
        }
        AppendEntriesResponse::Conflict => (Kind::Conflict, None, None),
        AppendEntriesResponse::HigherVote(v) => (Kind::HigherVote, None, Some(vote_to_pb(&v))),
    };
    Ok(pb::AppendResponse {
        kind: kind as i32,
        matching,
        vote,
        seq: 0,
    })
}

/// Keeps the service alive as long as the node.
pub type SharedService = Arc<Service>;
