//! Telemetry: every Settings a client writes is answered with the server's view of them (the
//! client's own values with the server's merged in), which the Node and Rust clients wait for
//! before they start.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tonic::Streaming;

use super::convert::duration;
use super::{pb, RpcStream};
use crate::Broker;

/// RocketMQ's retry delays after the first failure (delay levels 3 and up: 10s .. 2h, with the
/// first two of 1s and 5s as the proxy sends them).
const RETRY_DELAYS_S: [u64; 18] = [
    1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600, 1200, 1800, 3600, 7200,
];

/// The client's settings with the server's values merged in.
pub(crate) fn merge(b: &Broker, mut s: pb::Settings) -> pb::Settings {
    use pb::settings::PubSub;
    match s.pub_sub.take() {
        Some(PubSub::Publishing(mut p)) => {
            p.max_body_size = b.store.config().max_message_size as i32;
            p.validate_message_type = true;
            s.pub_sub = Some(PubSub::Publishing(p));
            s.backoff_policy = Some(pb::RetryPolicy {
                max_attempts: 3,
                strategy: Some(pb::retry_policy::Strategy::ExponentialBackoff(
                    pb::ExponentialBackoff {
                        initial: Some(duration(Duration::from_millis(10))),
                        max: Some(duration(Duration::from_secs(1))),
                        multiplier: 2.0,
                    },
                )),
            });
        }
        Some(PubSub::Subscription(mut sub)) => {
            let group = sub
                .group
                .as_ref()
                .map(|g| g.name.clone())
                .unwrap_or_default();
            let max_times = b.groups.get(&group).map_or(16, |g| g.retry_max_times);
            sub.receive_batch_size = Some(32);
            sub.long_polling_timeout = Some(duration(Duration::from_secs(20)));
            sub.fifo = Some(sub.fifo.unwrap_or(false));
            s.pub_sub = Some(PubSub::Subscription(sub));
            s.backoff_policy = Some(pb::RetryPolicy {
                max_attempts: max_times + 1,
                strategy: Some(pb::retry_policy::Strategy::CustomizedBackoff(
                    pb::CustomizedBackoff {
                        next: RETRY_DELAYS_S
                            .iter()
                            .map(|s| duration(Duration::from_secs(*s)))
                            .collect(),
                    },
                )),
            });
        }
        None => {}
    }
    // Never let a client export metrics anywhere.
    s.metric = Some(pb::Metric {
        on: false,
        endpoints: None,
    });
    s
}

/// Answers each Settings on the stream; other commands from the client are accepted silently.
pub(crate) fn telemetry(
    b: Arc<Broker>,
    mut inbound: Streaming<pb::TelemetryCommand>,
) -> RpcStream<pb::TelemetryCommand> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let next = tokio::select! {
                n = inbound.next() => n,
                _ = b.shutdown.cancelled() => return,
            };
            let cmd = match next {
                Some(Ok(c)) => c,
                Some(Err(e)) => {
                    tracing::debug!(error = %e, "telemetry stream ended");
                    return;
                }
                None => return,
            };
            if let Some(pb::telemetry_command::Command::Settings(s)) = cmd.command {
                if let Some(pb::settings::PubSub::Publishing(p)) = &s.pub_sub {
                    b.grpc_producers
                        .register(p.topics.iter().map(|t| t.name.clone()), &tx);
                }
                let reply = pb::TelemetryCommand {
                    status: super::ok(),
                    command: Some(pb::telemetry_command::Command::Settings(merge(&b, s))),
                };
                if tx.send(Ok(reply)).await.is_err() {
                    return;
                }
            }
        }
    });
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
