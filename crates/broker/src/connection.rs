//! Live client connections: a handle per connection that lets the broker push commands to the
//! peer (NOTIFY_CONSUMER_IDS_CHANGED, later CHECK_TRANSACTION_STATE) and await its answers, and a
//! registry of all of them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ferrocket_protocol::RemotingCommand;
use tokio::sync::{mpsc, oneshot};

/// Identifies one accepted connection for the broker's lifetime.
pub type ConnId = u64;

/// A frame to write: the command, plus body parts appended after `cmd.body` without copying
/// them together first (pull responses carry commitlog slices).
#[derive(Debug)]
pub struct Outgoing {
    pub cmd: RemotingCommand,
    pub parts: Vec<Bytes>,
}

impl From<RemotingCommand> for Outgoing {
    fn from(cmd: RemotingCommand) -> Self {
        Outgoing {
            cmd,
            parts: Vec::new(),
        }
    }
}

/// One connection as the rest of the broker sees it.
#[derive(Debug)]
pub struct ConnHandle {
    pub id: ConnId,
    pub peer: SocketAddr,
    tx: mpsc::Sender<Outgoing>,
    pending: Mutex<HashMap<i32, oneshot::Sender<RemotingCommand>>>,
    next_opaque: AtomicI32,
}

impl ConnHandle {
    pub fn new(id: ConnId, peer: SocketAddr, tx: mpsc::Sender<Outgoing>) -> Self {
        ConnHandle {
            id,
            peer,
            tx,
            pending: Mutex::new(HashMap::new()),
            next_opaque: AtomicI32::new(1),
        }
    }

    /// Queues a frame for the writer; false when the connection is gone or its queue is full.
    pub fn send(&self, out: Outgoing) -> bool {
        self.tx.try_send(out).is_ok()
    }

    /// Queues a frame, waiting for room in the writer's queue.
    pub async fn send_wait(&self, out: Outgoing) -> bool {
        self.tx.send(out).await.is_ok()
    }

    /// Sends a oneway request to the peer.
    pub fn oneway(&self, cmd: RemotingCommand) -> bool {
        let cmd = cmd
            .with_opaque(self.next_opaque.fetch_add(1, Ordering::Relaxed))
            .into_oneway();
        self.send(cmd.into())
    }

    /// Sends a request to the peer and waits for its answer.
    pub async fn request(
        &self,
        cmd: RemotingCommand,
        timeout: Duration,
    ) -> Option<RemotingCommand> {
        let opaque = self.next_opaque.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(opaque, tx);
        let sent = self.send_wait(cmd.with_opaque(opaque).into()).await;
        let r = if sent {
            tokio::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok)
        } else {
            None
        };
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&opaque);
        r
    }

    /// Hands a response read from the peer to whoever waits for it.
    pub fn complete(&self, resp: RemotingCommand) {
        let waiter = self
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&resp.opaque);
        match waiter {
            Some(tx) => {
                let _ = tx.send(resp);
            }
            None => tracing::debug!(opaque = resp.opaque, "response nobody waits for"),
        }
    }
}

/// Every open connection.
#[derive(Debug, Default)]
pub struct ConnRegistry {
    conns: Mutex<HashMap<ConnId, Arc<ConnHandle>>>,
}

impl ConnRegistry {
    pub fn add(&self, c: Arc<ConnHandle>) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(c.id, c);
    }

    pub fn remove(&self, id: ConnId) {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    pub fn get(&self, id: ConnId) -> Option<Arc<ConnHandle>> {
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
    }
}
