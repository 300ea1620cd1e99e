//! AppendEntries over the long-lived stream, against gRPC servers on loopback that stand in for a
//! follower: an abandoned call's late answer is skipped, and a peer that does not serve the
//! stream (an older node) is reached by unary calls.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ferrocket_replication::dledger::append_stream::{self, AppendStream};
use ferrocket_replication::dledger::network::{Network, Peer};
use ferrocket_replication::dledger::pb::d_ledger_client::DLedgerClient;
use ferrocket_replication::dledger::pb::d_ledger_server::{DLedger, DLedgerServer};
use ferrocket_replication::dledger::pb::{self, append_response::Kind};
use ferrocket_replication::dledger::types::TypeConfig;
use futures::Stream;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse};
use openraft::{BasicNode, CommittedLeaderId, LogId, Vote};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// Answers AppendEntries with PARTIAL_SUCCESS matching the request's `prev_log_id`, so each
/// answer names its request; a request whose previous index is 1 is answered after 300 ms.
/// `with_stream: false` answers `AppendStream` with UNIMPLEMENTED, as a node without it does.
struct Echo {
    with_stream: bool,
    calls: Arc<Calls>,
}

/// What a server was asked.
#[derive(Default)]
struct Calls {
    unary: AtomicUsize,
    streams_opened: AtomicUsize,
    streamed: AtomicUsize,
}

async fn echo(r: pb::AppendRequest) -> Result<pb::AppendResponse, Status> {
    if r.prev_log_id.as_ref().is_some_and(|l| l.index == 1) {
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    Ok(pb::AppendResponse {
        kind: Kind::PartialSuccess as i32,
        matching: r.prev_log_id,
        vote: None,
        seq: 0,
    })
}

#[tonic::async_trait]
impl DLedger for Echo {
    async fn request_vote(
        &self,
        _: Request<pb::VoteRequest>,
    ) -> Result<Response<pb::VoteResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn append_entries(
        &self,
        req: Request<pb::AppendRequest>,
    ) -> Result<Response<pb::AppendResponse>, Status> {
        self.calls.unary.fetch_add(1, Ordering::SeqCst);
        echo(req.into_inner()).await.map(Response::new)
    }

    type AppendStreamStream =
        Pin<Box<dyn Stream<Item = Result<pb::AppendResponse, Status>> + Send>>;

    async fn append_stream(
        &self,
        req: Request<Streaming<pb::AppendRequest>>,
    ) -> Result<Response<Self::AppendStreamStream>, Status> {
        self.calls.streams_opened.fetch_add(1, Ordering::SeqCst);
        if !self.with_stream {
            return Err(Status::unimplemented("AppendStream"));
        }
        let calls = Arc::clone(&self.calls);
        Ok(Response::new(append_stream::serve(
            req.into_inner(),
            move |r| {
                calls.streamed.fetch_add(1, Ordering::SeqCst);
                echo(r)
            },
        )))
    }

    async fn install_snapshot(
        &self,
        _: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }

    async fn read_commitlog(
        &self,
        _: Request<pb::ReadRequest>,
    ) -> Result<Response<pb::ReadResponse>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

/// Serves `Echo` on a free loopback port until the token is dropped.
struct Server {
    addr: SocketAddr,
    calls: Arc<Calls>,
    _stop: tokio_util::sync::DropGuard,
}

async fn serve(with_stream: bool) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let token = stop.clone();
    let calls = Arc::new(Calls::default());
    let echo = Echo {
        with_stream,
        calls: Arc::clone(&calls),
    };
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(DLedgerServer::new(echo))
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                token.cancelled_owned(),
            )
            .await
            .unwrap();
    });
    Server {
        addr,
        calls,
        _stop: stop.drop_guard(),
    }
}

fn request(prev_index: u64) -> pb::AppendRequest {
    pb::AppendRequest {
        prev_log_id: Some(pb::LogId {
            term: 1,
            node_id: 0,
            index: prev_index,
        }),
        ..Default::default()
    }
}

fn matched(r: &pb::AppendResponse) -> u64 {
    r.matching
        .as_ref()
        .expect("the echo names its request")
        .index
}

#[tokio::test]
async fn an_abandoned_calls_late_answer_is_skipped() {
    let server = serve(true).await;
    let mut client = DLedgerClient::connect(format!("http://{}", server.addr))
        .await
        .unwrap();
    let mut stream = AppendStream::open(&mut client).await.unwrap();

    // The first call is given up before its (slow) answer comes.
    let gave_up = tokio::time::timeout(Duration::from_millis(50), stream.call(request(1))).await;
    assert!(gave_up.is_err(), "the slow answer came within 50 ms");

    // The next call on the same stream gets its own answer, not the late one for index 1.
    let r = stream.call(request(2)).await.unwrap();
    assert_eq!(matched(&r), 2);
    assert_eq!(r.seq, 2);
    let r = stream.call(request(3)).await.unwrap();
    assert_eq!(matched(&r), 3);
}

fn openraft_request(prev_index: u64) -> AppendEntriesRequest<TypeConfig> {
    AppendEntriesRequest {
        vote: Vote::new_committed(1, 0),
        prev_log_id: Some(LogId::new(CommittedLeaderId::new(1, 0), prev_index)),
        entries: Vec::new(),
        leader_commit: None,
    }
}

/// The leader-side client openraft would use to reach `addr`.
async fn peer_of(addr: SocketAddr) -> Peer {
    let mut net = Network {
        cluster: pb::Cluster::default(),
    };
    net.new_client(1, &BasicNode::new(addr.to_string())).await
}

/// One AppendEntries through `peer`; it must come back as the echo's answer.
async fn append_echoed(peer: &mut Peer, prev_index: u64) {
    let opt = RPCOption::new(Duration::from_secs(5));
    match peer
        .append_entries(openraft_request(prev_index), opt)
        .await
        .unwrap()
    {
        AppendEntriesResponse::PartialSuccess(Some(l)) => assert_eq!(l.index, prev_index),
        other => panic!("unexpected answer {other:?}"),
    }
}

/// Two AppendEntries through one leader-side client.
async fn append_twice_via_peer(addr: SocketAddr, prev_index: u64) {
    let mut peer = peer_of(addr).await;
    append_echoed(&mut peer, prev_index).await;
    append_echoed(&mut peer, prev_index).await;
}

fn counts(s: &Server) -> (usize, usize, usize) {
    let c = &s.calls;
    (
        c.streams_opened.load(Ordering::SeqCst),
        c.streamed.load(Ordering::SeqCst),
        c.unary.load(Ordering::SeqCst),
    )
}

#[tokio::test]
async fn the_leader_uses_one_stream_and_falls_back_to_unary_calls() {
    // (streams opened, requests over streams, unary requests)
    let with = serve(true).await;
    append_twice_via_peer(with.addr, 7).await;
    assert_eq!(counts(&with), (1, 2, 0));

    // An older peer: one attempt at the stream, then unary calls only.
    let without = serve(false).await;
    append_twice_via_peer(without.addr, 8).await;
    assert_eq!(counts(&without), (1, 0, 2));
}

/// openraft drops an AppendEntries call it gave up on (after a heartbeat interval): the next
/// call opens a new stream, so the follower discards what was queued on the old one instead of
/// working through stale requests.
#[tokio::test]
async fn a_call_given_up_on_makes_the_next_one_use_a_new_stream() {
    let server = serve(true).await;
    let mut peer = peer_of(server.addr).await;
    // The echo answers a request whose previous index is 1 after 300 ms: dropped at 50 ms.
    let dropped =
        tokio::time::timeout(Duration::from_millis(50), append_echoed(&mut peer, 1)).await;
    assert!(dropped.is_err(), "the slow answer came within 50 ms");
    append_echoed(&mut peer, 2).await;
    let (opened, _, unary) = counts(&server);
    assert_eq!((opened, unary), (2, 0));
}
