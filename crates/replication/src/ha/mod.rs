//! Classic RocketMQ master-slave replication (2m-2s-async / 2m-2s-sync): the plain-TCP HA stream
//! of the protocol doc §6.2, wire-compatible with Java masters and slaves.
//!
//! * [`HaServer`] (master): listens on `haListenPort`, accepts only slaves on its [`AllowList`],
//!   streams raw commitlog bytes from each slave's reported offset (from the oldest byte still
//!   held when the slave is empty or behind), and records acks in an [`AckTracker`].
//! * [`HaClient`] (slave): reports its commitlog end, appends what arrives verbatim at the same
//!   offsets through [`HaStore::append`], and reconnects with backoff.
//! * [`AckTracker`]: the SYNC_MASTER rule (SLAVE_NOT_AVAILABLE at once, else wait for acks up to
//!   `slaveTimeout`, then FLUSH_SLAVE_TIMEOUT), without I/O.
//!
//! The broker owns roles and addresses: it starts one of the two, feeds the allow-list and the
//! master address, calls [`HaServer::notify_appended`] after appends and
//! [`HaServer::wait_for_replicas`] in a SYNC_MASTER send.

mod ack;
mod client;
mod server;
mod store;
pub mod wire;

use std::net::SocketAddr;
use std::time::Duration;

use ferrocket_store::StoreError;
use thiserror::Error;

pub use ack::{AckConfig, AckTracker, ReplicaOutcome, SlaveId, SlaveStatus, Wait};
pub use client::{HaClient, HaClientConfig};
pub use server::{AllowList, HaServer, HaServerConfig, HaStatus};
pub use store::HaStore;

/// Why an HA link ended.
#[derive(Debug, Error)]
pub enum HaError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("store refused replicated bytes: {0}")]
    Store(#[from] StoreError),
    #[error("malformed HA stream: {0}")]
    Protocol(String),
    #[error("peer closed the connection")]
    Closed,
    #[error("no traffic for {0:?} (haHousekeepingInterval)")]
    Idle(Duration),
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error(
        "master pushed offset {master} but this slave's commitlog ends at {slave}; \
         master and slave have diverged or use different segment sizes"
    )]
    OffsetMismatch { master: i64, slave: i64 },
    #[error("slave reports offset {slave} beyond this master's max offset {master}")]
    SlaveAhead { slave: i64, master: i64 },
    #[error("slave needs offset {needed} but this master's oldest byte is at {min}")]
    FellBehind { needed: i64, min: i64 },
}
