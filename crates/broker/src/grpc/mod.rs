//! RocketMQ 5.x's gRPC API (`apache.rocketmq.v2.MessagingService`) served by the broker itself on
//! `grpcServerPort`, so the 5.x clients need no proxy process.
//!
//! Implemented: QueryRoute (this broker's queues of the topic), Heartbeat, Telemetry (the
//! client's Settings answered with the server's), SendMessage (normal, FIFO by message group,
//! delayed by delivery time), the consumer calls over POP state (QueryAssignment,
//! ReceiveMessage with long polling, AckMessage, ChangeInvisibleDuration,
//! ForwardMessageToDeadLetterQueue) and NotifyClientTermination. A send goes through the same
//! handler as a remoting SEND_MESSAGE, and a receive reads the same queues as a remoting pull,
//! so both generations of clients see the same messages. Transactions: half messages through
//! the remoting path, EndTransaction by the half message's offset id, checks pushed to a live
//! producer's Telemetry stream. PullMessage and the offset calls of
//! the 5.x PullConsumer (`pull`). Not yet: RecallMessage, SyncLiteSubscription (UNIMPLEMENTED).
//! - `send`: SendMessage, translated to a remoting send;
//! - `receive`: the consumer calls; `convert`: a stored message as clients receive it;
//! - `settings`: Telemetry and the Settings merge;
//! - `route`: QueryRoute.

mod convert;
mod producers;
mod pull;
mod receive;
mod route;
mod send;
mod settings;

/// The generated code of `proto/apache/rocketmq/v2`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod pb {
    tonic::include_proto!("apache.rocketmq.v2");
}

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use tokio::net::TcpListener;
use tonic::{Request, Response, Status, Streaming};

use crate::Broker;
use pb::messaging_service_server::{MessagingService, MessagingServiceServer};
pub(crate) use producers::Producers;

/// The call's deadline (`grpc-timeout`), for long polls that must answer before it.
fn deadline<T>(req: &Request<T>) -> Option<std::time::Duration> {
    req.metadata()
        .get("grpc-timeout")
        .and_then(|v| v.to_str().ok())
        .and_then(receive::grpc_timeout)
}

/// The client's id (`x-mq-client-id`, sent by every official client).
fn client_id<T>(req: &Request<T>) -> Option<String> {
    req.metadata()
        .get("x-mq-client-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(String::from)
}

/// A payload status.
pub(crate) fn status(code: pb::Code, message: impl Into<String>) -> Option<pb::Status> {
    Some(pb::Status {
        code: code as i32,
        message: message.into(),
    })
}

/// A topic or group name as the broker knows it: RocketMQ's `namespace%name` when the client
/// uses a namespace.
pub(crate) fn resource_name(r: &Option<pb::Resource>) -> String {
    match r {
        Some(r) if !r.resource_namespace.is_empty() => {
            format!("{}%{}", r.resource_namespace, r.name)
        }
        Some(r) => r.name.clone(),
        None => String::new(),
    }
}

/// A call's status from its entries' (one per message or ack): the one entry's status, OK when
/// all are OK, else MULTIPLE_RESULTS.
pub(crate) fn overall<'a>(
    each: impl ExactSizeIterator<Item = &'a Option<pb::Status>>,
) -> Option<pb::Status> {
    let all: Vec<&Option<pb::Status>> = each.collect();
    match all.as_slice() {
        [one] => (*one).clone(),
        all if all
            .iter()
            .all(|s| s.as_ref().is_some_and(|s| s.code == pb::Code::Ok as i32)) =>
        {
            ok()
        }
        _ => status(pb::Code::MultipleResults, "see each entry"),
    }
}

pub(crate) fn ok() -> Option<pb::Status> {
    status(pb::Code::Ok, "OK")
}

/// Serves the API on `listener` until the broker shuts down.
pub(crate) async fn serve(b: Arc<Broker>, listener: TcpListener) {
    let stop = b.shutdown.clone();
    // A request may carry a body of maxMessageSize plus its properties: refusing it at the
    // transport (gRPC's default 4 MiB limit) would hide the MESSAGE_BODY_TOO_LARGE answer.
    let limit = (b.store.config().max_message_size + (1 << 20)).max(4 << 20);
    let svc = Service { b };
    let incoming = tokio_stream::StreamExt::map(
        tokio_stream::wrappers::TcpListenerStream::new(listener),
        |conn| {
            if let Ok(c) = &conn {
                let _ = c.set_nodelay(true);
            }
            conn
        },
    );
    let r = tonic::transport::Server::builder()
        .add_service(
            MessagingServiceServer::new(svc)
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
        )
        .serve_with_incoming_shutdown(incoming, stop.cancelled_owned())
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "gRPC server stopped");
    }
}

struct Service {
    b: Arc<Broker>,
}

type RpcStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!(
        "{what} is not implemented by this Ferrocket version ; use the remoting protocol"
    ))
}

#[tonic::async_trait]
impl MessagingService for Service {
    async fn query_route(
        &self,
        req: Request<pb::QueryRouteRequest>,
    ) -> Result<Response<pb::QueryRouteResponse>, Status> {
        Ok(Response::new(
            route::query_route(&self.b, req.get_ref()).await,
        ))
    }

    async fn heartbeat(
        &self,
        req: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        // A consumer's heartbeat keeps the messages it auto-renews invisible.
        if let (Some(client), Some(group)) = (client_id(&req), &req.get_ref().group) {
            let group = resource_name(&Some(group.clone()));
            self.b.pop.renew(&group, &client, crate::now_ms());
        }
        Ok(Response::new(pb::HeartbeatResponse { status: ok() }))
    }

    async fn send_message(
        &self,
        req: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let peer = req.remote_addr();
        Ok(Response::new(
            send::send_message(&self.b, peer, req.into_inner()).await,
        ))
    }

    async fn query_assignment(
        &self,
        req: Request<pb::QueryAssignmentRequest>,
    ) -> Result<Response<pb::QueryAssignmentResponse>, Status> {
        Ok(Response::new(
            receive::query_assignment(&self.b, req.into_inner()).await,
        ))
    }

    type ReceiveMessageStream = RpcStream<pb::ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        req: Request<pb::ReceiveMessageRequest>,
    ) -> Result<Response<Self::ReceiveMessageStream>, Status> {
        let deadline = deadline(&req);
        let client = client_id(&req);
        let out = receive::receive(&self.b, req.into_inner(), deadline, client).await;
        Ok(Response::new(Box::pin(futures::stream::iter(
            out.into_iter().map(Ok),
        ))))
    }

    async fn ack_message(
        &self,
        req: Request<pb::AckMessageRequest>,
    ) -> Result<Response<pb::AckMessageResponse>, Status> {
        Ok(Response::new(receive::ack(&self.b, req.into_inner())))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        req: Request<pb::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<Response<pb::ForwardMessageToDeadLetterQueueResponse>, Status> {
        Ok(Response::new(
            receive::forward_to_dlq(&self.b, req.into_inner()).await,
        ))
    }

    type PullMessageStream = RpcStream<pb::PullMessageResponse>;

    async fn pull_message(
        &self,
        req: Request<pb::PullMessageRequest>,
    ) -> Result<Response<Self::PullMessageStream>, Status> {
        let deadline = deadline(&req);
        let out = pull::pull(&self.b, req.into_inner(), deadline).await;
        Ok(Response::new(Box::pin(futures::stream::iter(
            out.into_iter().map(Ok),
        ))))
    }

    async fn update_offset(
        &self,
        req: Request<pb::UpdateOffsetRequest>,
    ) -> Result<Response<pb::UpdateOffsetResponse>, Status> {
        Ok(Response::new(pull::update_offset(
            &self.b,
            req.into_inner(),
        )))
    }

    async fn get_offset(
        &self,
        req: Request<pb::GetOffsetRequest>,
    ) -> Result<Response<pb::GetOffsetResponse>, Status> {
        Ok(Response::new(pull::get_offset(&self.b, req.into_inner())))
    }

    async fn query_offset(
        &self,
        req: Request<pb::QueryOffsetRequest>,
    ) -> Result<Response<pb::QueryOffsetResponse>, Status> {
        Ok(Response::new(pull::query_offset(&self.b, req.into_inner())))
    }

    async fn end_transaction(
        &self,
        req: Request<pb::EndTransactionRequest>,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        Ok(Response::new(
            send::end_transaction(&self.b, req.into_inner()).await,
        ))
    }

    type TelemetryStream = RpcStream<pb::TelemetryCommand>;

    async fn telemetry(
        &self,
        req: Request<Streaming<pb::TelemetryCommand>>,
    ) -> Result<Response<Self::TelemetryStream>, Status> {
        Ok(Response::new(settings::telemetry(
            Arc::clone(&self.b),
            req.into_inner(),
        )))
    }

    async fn notify_client_termination(
        &self,
        _req: Request<pb::NotifyClientTerminationRequest>,
    ) -> Result<Response<pb::NotifyClientTerminationResponse>, Status> {
        Ok(Response::new(pb::NotifyClientTerminationResponse {
            status: ok(),
        }))
    }

    async fn change_invisible_duration(
        &self,
        req: Request<pb::ChangeInvisibleDurationRequest>,
    ) -> Result<Response<pb::ChangeInvisibleDurationResponse>, Status> {
        Ok(Response::new(receive::change_invisible(
            &self.b,
            req.into_inner(),
        )))
    }

    async fn recall_message(
        &self,
        _req: Request<pb::RecallMessageRequest>,
    ) -> Result<Response<pb::RecallMessageResponse>, Status> {
        Err(not_yet("RecallMessage"))
    }

    async fn sync_lite_subscription(
        &self,
        _req: Request<pb::SyncLiteSubscriptionRequest>,
    ) -> Result<Response<pb::SyncLiteSubscriptionResponse>, Status> {
        Err(not_yet("SyncLiteSubscription"))
    }
}

/// Sends a transaction check of a half message to a gRPC producer of its topic; false when no
/// such producer is connected.
pub(crate) fn check_transaction(
    b: &Broker,
    shown: &ferrocket_protocol::message::StoredMessage,
    phys: i64,
) -> bool {
    let id = ferrocket_protocol::message::encode_offset_msg_id(b.store.config().store_host, phys);
    b.grpc_producers.check(shown.clone(), id)
}
