//! The Telemetry streams of gRPC producers by the topics they publish to: a transaction check
//! of a half message goes to a live producer of its topic (5.x producers have no group).

use std::collections::HashMap;
use std::sync::Mutex;

use ferrocket_protocol::message::StoredMessage;
use tokio::sync::mpsc;
use tonic::Status;

use super::pb;

pub(crate) type Outbox = mpsc::Sender<Result<pb::TelemetryCommand, Status>>;

/// Producers' streams by topic.
#[derive(Default)]
pub struct Producers {
    by_topic: Mutex<HashMap<String, Vec<Outbox>>>,
}

impl Producers {
    /// Records that the stream `tx` belongs to a producer of `topics`.
    pub(crate) fn register(&self, topics: impl IntoIterator<Item = String>, tx: &Outbox) {
        let mut m = self.by_topic.lock().unwrap_or_else(|e| e.into_inner());
        for t in topics {
            let v = m.entry(t).or_default();
            v.retain(|o| !o.is_closed());
            if !v.iter().any(|o| o.same_channel(tx)) {
                v.push(tx.clone());
            }
        }
    }

    /// Asks one live producer of the message's topic to resolve the transaction; false when
    /// there is none.
    pub(crate) fn check(&self, shown: StoredMessage, transaction_id: String) -> bool {
        let outboxes: Vec<Outbox> = {
            let mut m = self.by_topic.lock().unwrap_or_else(|e| e.into_inner());
            let Some(v) = m.get_mut(&shown.topic) else {
                return false;
            };
            v.retain(|o| !o.is_closed());
            v.clone()
        };
        let cmd = pb::TelemetryCommand {
            status: None,
            command: Some(
                pb::telemetry_command::Command::RecoverOrphanedTransactionCommand(
                    pb::RecoverOrphanedTransactionCommand {
                        message: Some(super::convert::to_pb(shown, None)),
                        transaction_id,
                    },
                ),
            ),
        };
        outboxes.iter().any(|o| o.try_send(Ok(cmd.clone())).is_ok())
    }
}
