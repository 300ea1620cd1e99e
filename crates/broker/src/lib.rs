//! The broker: where the store, replication and the network meet.
//!
//! [`start`] opens the store and metadata, binds the main port (`listenPort`) and the fast port
//! (`listenPort - 2`, everything but PULL_MESSAGE), registers with the name servers and returns a
//! [`BrokerHandle`]; [`run`] does the same and waits for a shutdown future. Request handlers are
//! plain async functions over the shared [`Broker`] state (`processor::*`), testable without
//! sockets.
//!
//! Shutdown order: stop accepting and reading, let in-flight requests finish (held pulls are
//! answered at once), persist consumer offsets, flush and close the store, unregister from the
//! name servers.

mod body;
mod clients;
pub mod config;
mod connection;
mod delay;
mod dledger;
pub mod filter;
mod groups;
pub mod grpc;
mod ha;
mod headers;
pub mod layout;
mod locks;
mod long_poll;
mod offsets;
mod pop;
pub mod processor;
mod protect;
mod register;
mod remoting_client;
mod server;
mod shutdown;
mod stats;
mod timer;
mod topic;
mod transaction;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ferrocket_store::kv::MetaKv;
use ferrocket_store::{MessageStore, StoreError};
use thiserror::Error;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{BrokerConfig, BrokerRole};
pub use shutdown::BrokerHandle;

/// What can stop the broker from starting or running.
#[derive(Debug, Error)]
pub enum BrokerError {
    #[error("configuration: {0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The broker's shared state; every handler takes `&Arc<Broker>`.
pub struct Broker {
    pub conf: BrokerConfig,
    pub(crate) store: Arc<MessageStore>,
    pub(crate) topics: topic::TopicManager,
    pub(crate) offsets: offsets::OffsetManager,
    pub(crate) groups: groups::GroupManager,
    /// POP consumption state (5.x receive/ack).
    pub(crate) pop: pop::PopManager,
    /// gRPC producers' Telemetry streams, for transaction checks.
    pub(crate) grpc_producers: grpc::Producers,
    /// Connections to the name servers for gRPC route lookups (kept, not one per QueryRoute;
    /// apart from the registration loop's, so a lookup never waits behind a registration).
    pub(crate) route_namesrv: Vec<remoting_client::RemotingClient>,
    pub(crate) clients: clients::ClientManager,
    pub(crate) conns: connection::ConnRegistry,
    pub(crate) notifier: long_poll::PullNotifier,
    pub(crate) locks: locks::LockManager,
    pub(crate) delay_offsets: delay::DelayOffsets,
    /// Number of delay levels (`messageDelayLevel`).
    pub(crate) delay_levels: i32,
    /// Half messages already committed or rolled back.
    pub(crate) tx_resolved: transaction::Resolved,
    /// Parsed SQL92 subscriptions.
    pub(crate) sql_filters: filter::SqlCache,
    /// The metadata KV (topics, groups, offsets), flushed at shutdown.
    pub(crate) kv: MetaKv,
    /// HA service (master) or client (slave), set once at start.
    pub(crate) ha: std::sync::OnceLock<ha::Replication>,
    /// DLedger node (DLedger mode only), set once at start.
    pub(crate) dledger: std::sync::OnceLock<dledger::DLedgerState>,
    /// Bounds the sends waiting for or holding the store (the "send queue").
    pub(crate) send_permits: Semaphore,
    pub(crate) stats: stats::Stats,
    /// How far behind the commitlog's end each group reads (`disableConsumeIfConsumerReadSlowly`).
    pub(crate) fall_behind: protect::FallBehind,
    /// Fired when the topic table changes: the registration loop registers at once.
    pub(crate) topics_changed: Arc<Notify>,
    /// Topic changes made by admin requests so far, and (below) the newest of them a finished
    /// registration round has carried to the name servers: UPDATE_AND_CREATE_TOPIC answers once
    /// its change is registered, as RocketMQ's does, so a route lookup right after finds it.
    pub(crate) topic_changes: std::sync::atomic::AtomicU64,
    pub(crate) registered: tokio::sync::watch::Sender<u64>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) started: Instant,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("name", &self.conf.broker_name)
            .field("addr", &self.conf.broker_addr())
            .finish()
    }
}

impl Broker {
    /// Opens the store and the metadata (blocking: recovery may take a while).
    pub fn open(conf: BrokerConfig) -> Result<Arc<Broker>, BrokerError> {
        Self::open_with_store_env(conf, Arc::new(ferrocket_store::SystemEnv))
    }

    /// [`Broker::open`] with the store's clock and disk probes substituted (tests).
    pub fn open_with_store_env(
        conf: BrokerConfig,
        env: Arc<dyn ferrocket_store::StoreEnv>,
    ) -> Result<Arc<Broker>, BrokerError> {
        let store = MessageStore::open_with_env(conf.store.clone(), env)?;
        let kv_dir = conf.kv_dir();
        std::fs::create_dir_all(&kv_dir)?;
        let kv = MetaKv::open(&kv_dir)?;
        let topics_changed = Arc::new(Notify::new());
        let topics = topic::TopicManager::load(kv.clone(), &conf, Arc::clone(&topics_changed))?;
        let offsets = offsets::OffsetManager::load(kv.clone())?;
        let groups = groups::GroupManager::load(kv.clone(), conf.auto_create_subscription_group)?;
        let delay_offsets = delay::DelayOffsets::load(kv.clone())?;
        let pop = pop::PopManager::load(kv.clone())?;
        let delay_levels = conf.store.message_delay_level.split_whitespace().count() as i32;
        let permits =
            conf.send_thread_pool_queue_capacity.max(1) + conf.send_message_thread_pool_nums.max(1);
        Ok(Arc::new(Broker {
            store: Arc::new(store),
            topics,
            offsets,
            groups,
            pop,
            grpc_producers: grpc::Producers::default(),
            route_namesrv: conf
                .namesrv_addr
                .iter()
                .map(|a| remoting_client::RemotingClient::new(a.clone()))
                .collect(),
            clients: clients::ClientManager::default(),
            conns: connection::ConnRegistry::default(),
            notifier: long_poll::PullNotifier::default(),
            locks: locks::LockManager::default(),
            delay_offsets,
            delay_levels,
            tx_resolved: transaction::Resolved::default(),
            sql_filters: filter::SqlCache::default(),
            kv,
            ha: std::sync::OnceLock::new(),
            dledger: std::sync::OnceLock::new(),
            send_permits: Semaphore::new(permits),
            stats: stats::Stats::default(),
            fall_behind: protect::FallBehind::default(),
            topics_changed,
            topic_changes: std::sync::atomic::AtomicU64::new(0),
            registered: tokio::sync::watch::Sender::new(0),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            started: Instant::now(),
            conf,
        }))
    }
}

impl Broker {
    /// Whether this broker acts as a slave now: its configured role, or in DLedger mode
    /// whether it is anything but the ready leader.
    pub(crate) fn is_slave(&self) -> bool {
        match self.dledger.get() {
            Some(d) => !d.node.role().leader_ready,
            None => self.conf.is_slave(),
        }
    }

    /// The brokerId to register: configured, or in DLedger mode 0 for the leader and the
    /// position in `dLegerPeers` + 1 for the others.
    pub(crate) fn broker_id(&self) -> i64 {
        match self.dledger.get() {
            Some(d) if d.node.role().leader_ready => 0,
            Some(d) => d.node.self_index() as i64 + 1,
            None => self.conf.broker_id,
        }
    }

    /// Stores messages: directly, or in DLedger mode through the Raft group.
    pub(crate) async fn put_messages(
        &self,
        msgs: Vec<ferrocket_protocol::message::StoredMessage>,
    ) -> ferrocket_store::PutResult {
        match self.dledger.get() {
            Some(d) => dledger::put(self, d, msgs).await,
            None => self.store.put_messages(msgs).await,
        }
    }

    pub(crate) async fn put_message(
        &self,
        msg: ferrocket_protocol::message::StoredMessage,
    ) -> ferrocket_store::PutResult {
        self.put_messages(vec![msg]).await
    }
}

/// Starts a broker in the current tokio runtime.
pub async fn start(conf: BrokerConfig) -> Result<BrokerHandle, BrokerError> {
    shutdown::start(conf).await
}

/// Runs a broker until `shutdown` resolves, then stops it in order.
pub async fn run(
    conf: BrokerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), BrokerError> {
    let handle = start(conf).await?;
    shutdown.await;
    handle.shutdown().await
}
