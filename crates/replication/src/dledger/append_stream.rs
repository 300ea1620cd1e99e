//! AppendEntries over one long-lived gRPC stream per follower (`AppendStream` in
//! `proto/dledger.proto`).
//!
//! A unary call costs both sides an HTTP/2 stream of its own (headers both ways, HPACK,
//! trailers) and the server a task; at a thousand entries a second to each follower that was
//! a fifth of the leader's CPU and more of a follower's (docs/performance.md). openraft sends one
//! AppendEntries at a time to a target, so one bidirectional stream carries them in turn: a
//! request, then its response. Each request carries a sequence number its response echoes, so
//! the answer to a call that was abandoned (timed out, cancelled) is recognised and skipped,
//! never taken for the next call's.

use std::pin::Pin;

use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Status, Streaming};

use super::pb::{self, d_ledger_client::DLedgerClient};

/// The leader's end of one stream.
pub struct AppendStream {
    tx: mpsc::Sender<pb::AppendRequest>,
    rx: Streaming<pb::AppendResponse>,
    next_seq: u64,
    /// A request was sent and its answer not read: the call was abandoned.
    unanswered: bool,
}

impl AppendStream {
    /// Opens a stream (one round trip: the follower answers with its headers at once).
    pub async fn open(client: &mut DLedgerClient<Channel>) -> Result<Self, Status> {
        let (tx, rx) = mpsc::channel(1);
        let resp = client.append_stream(ReceiverStream::new(rx)).await?;
        Ok(Self {
            tx,
            rx: resp.into_inner(),
            next_seq: 1,
            unanswered: false,
        })
    }

    /// Sends one request and waits for its response. After an error the stream is unusable.
    pub async fn call(&mut self, mut req: pb::AppendRequest) -> Result<pb::AppendResponse, Status> {
        let seq = self.next_seq;
        self.next_seq += 1;
        req.seq = seq;
        self.tx
            .send(req)
            .await
            .map_err(|_| Status::unavailable("append stream closed"))?;
        self.unanswered = true;
        loop {
            match self.rx.message().await? {
                Some(r) if r.seq == seq => {
                    self.unanswered = false;
                    return Ok(r);
                }
                // The answer to an abandoned call.
                Some(r) if r.seq < seq => continue,
                Some(r) => {
                    return Err(Status::internal(format!(
                        "append stream answered request {} while {seq} was the latest sent",
                        r.seq
                    )))
                }
                None => return Err(Status::unavailable("append stream ended by the peer")),
            }
        }
    }

    /// Whether the last call was abandoned before its answer came (openraft gives up on an
    /// AppendEntries after a heartbeat interval and drops the call).
    pub fn abandoned(&self) -> bool {
        self.unanswered
    }
}

/// The follower's end: what the service returns.
pub type Responses = Pin<Box<dyn Stream<Item = Result<pb::AppendResponse, Status>> + Send>>;

/// Answers each request of `input` with `handle`, in order, on the caller's task (no task or
/// channel per request). The first error is sent and ends the stream.
pub fn serve<H, F>(input: Streaming<pb::AppendRequest>, handle: H) -> Responses
where
    H: Fn(pb::AppendRequest) -> F + Send + Sync + 'static,
    F: std::future::Future<Output = Result<pb::AppendResponse, Status>> + Send + 'static,
{
    let state = Some((input, handle));
    Box::pin(futures::stream::unfold(state, |state| async move {
        let (mut input, handle) = state?;
        let req = match input.message().await {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(s) => return Some((Err(s), None)),
        };
        let seq = req.seq;
        match handle(req).await {
            Ok(mut r) => {
                r.seq = seq;
                Some((Ok(r), Some((input, handle))))
            }
            Err(s) => Some((Err(s), None)),
        }
    }))
}
