//! DLedger mode in the broker: the node's role follows Raft (the ready leader is the master,
//! brokerId 0; the others are slaves, brokerId = position in `dLegerPeers` + 1), every write is
//! proposed through the group, a role change registers with the name servers at once, and a
//! follower copies the leader's topics, offsets and groups every 3 s.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferrocket_protocol::message::StoredMessage;
use ferrocket_replication::dledger::{Applier, DLedger, DLedgerConfig, ProposeError, Role};
use ferrocket_store::{MessageStore, PutResult, PutStatus};
use futures::future::BoxFuture;

use crate::remoting_client::RemotingClient;
use crate::{Broker, BrokerError};

/// The running DLedger node of a broker.
pub struct DLedgerState {
    pub node: DLedger,
    /// The leader's remoting address, from the name servers' answer to our registration.
    pub master_addr: Mutex<Option<String>>,
}

/// Applies committed entries to the store.
struct StoreApplier(Arc<MessageStore>);

impl Applier for StoreApplier {
    fn apply(&self, records: Bytes) -> BoxFuture<'static, PutResult> {
        // The leader's encoding (its store host and time), stamped with offsets but not
        // decoded and encoded again; a malformed send (only a bug could propose one) is
        // refused the same way on every node.
        Box::pin(self.0.put_records(&records))
    }

    fn log_end(&self) -> i64 {
        self.0.max_phy_offset()
    }

    fn truncate(&self, end: i64) -> std::io::Result<()> {
        self.0.truncate(end).map_err(std::io::Error::other)
    }

    fn log_min(&self) -> i64 {
        self.0.min_phy_offset()
    }

    fn read(&self, from: i64, max: usize) -> Option<Bytes> {
        self.0.commitlog_data(from, max)
    }

    fn append_raw(&self, at: i64, data: &[u8]) -> std::io::Result<i64> {
        self.0.append_raw(at, data).map_err(std::io::Error::other)
    }
}

/// Starts the node (Raft storage under `<storePathRootDir>/dledger`).
pub async fn start(b: &Arc<Broker>) -> Result<Option<DLedgerState>, BrokerError> {
    let Some(d) = &b.conf.dledger else {
        return Ok(None);
    };
    let cfg = DLedgerConfig {
        group: d.group.clone(),
        self_id: d.self_id.clone(),
        peers: d.peers.clone(),
        dir: b.conf.store.store_path_root_dir.join("dledger"),
        sync: b.conf.store.flush_disk_type == ferrocket_store::FlushDiskType::SyncFlush,
        heartbeat: Duration::from_millis(d.heartbeat_ms),
        election_min: Duration::from_millis(d.election_timeout_ms),
        election_max: Duration::from_millis(d.election_timeout_ms * 2),
        raft_log_max_bytes: d.raft_log_max_mb << 20,
        segment_bytes: b.conf.store.mapped_file_size_commit_log,
    };
    let applier = Arc::new(StoreApplier(Arc::clone(&b.store)));
    let node = DLedger::start(cfg, applier, b.shutdown.clone())
        .await
        .map_err(|e| BrokerError::Config(e.to_string()))?;
    tracing::info!(group = %d.group, self_id = %d.self_id, "DLedger node started");
    Ok(Some(DLedgerState {
        node,
        master_addr: Mutex::new(None),
    }))
}

/// Encodes messages as one proposal.
fn records(msgs: &[StoredMessage]) -> Result<Bytes, PutStatus> {
    let mut buf = BytesMut::with_capacity(msgs.iter().map(StoredMessage::encoded_len).sum());
    for m in msgs {
        m.encode(&mut buf).map_err(|_| PutStatus::MessageIllegal)?;
    }
    Ok(buf.freeze())
}

/// Proposes messages; the outcome maps to RocketMQ's statuses: not the leader is
/// SERVICE_NOT_AVAILABLE (the client refreshes its route), no quorum in time is
/// FLUSH_SLAVE_TIMEOUT (stored here, not confirmed: it may still commit).
pub async fn put(b: &Broker, d: &DLedgerState, msgs: Vec<StoredMessage>) -> PutResult {
    let failed = |status| PutResult {
        status,
        append: None,
    };
    if !d.node.role().leader_ready {
        return failed(PutStatus::ServiceNotAvailable);
    }
    // Refused here, before it is proposed: once committed, every node must apply it.
    if b.store.is_disk_full() {
        return failed(PutStatus::DiskFull);
    }
    // Every node stores the leader's bytes (as RocketMQ's DLedger commitlog does), so they
    // carry the leader's store host and store time.
    let mut msgs = msgs;
    let now = crate::now_ms();
    for m in &mut msgs {
        m.store_host = b.store.config().store_host;
        m.store_timestamp = now;
    }
    let data = match records(&msgs) {
        Ok(d) => d,
        Err(s) => return failed(s),
    };
    let timeout = Duration::from_millis(b.conf.slave_timeout.max(100));
    match d.node.propose(data, timeout).await {
        Ok(r) => r,
        Err(ProposeError::NotLeader(_)) => failed(PutStatus::ServiceNotAvailable),
        Err(ProposeError::Timeout(_)) => failed(PutStatus::FlushSlaveTimeout),
        Err(ProposeError::Fatal(e)) => {
            tracing::error!(error = %e, "DLedger proposal failed");
            failed(PutStatus::ServiceNotAvailable)
        }
    }
}

/// Re-registers at once when the node becomes or stops being the ready leader.
pub async fn watch_role(b: Arc<Broker>) {
    let Some(d) = b.dledger.get() else { return };
    let mut rx = d.node.role_changes();
    let mut last = rx.borrow().clone();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = b.shutdown.cancelled() => return,
        }
        let now: Role = rx.borrow_and_update().clone();
        if now.leader_ready && !last.leader_ready {
            adopt_topics(&b);
        }
        if now.leader != last.leader {
            // The master's address is learnt again from the next registration.
            *d.master_addr.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        if now.leader_ready != last.leader_ready
            || now.state != last.state
            || now.leader != last.leader
        {
            tracing::info!(
                role = if now.leader_ready { "master" } else { "slave" },
                state = now.state,
                term = now.term,
                "DLedger role changed; registering again"
            );
            b.topics_changed.notify_one();
        }
        last = now;
    }
}

/// A new leader serves every topic it holds messages of, even one whose config it had not
/// copied from the old leader yet (created less than 3 s before the failover).
fn adopt_topics(b: &Broker) {
    let mut max_queue: std::collections::BTreeMap<String, i32> = Default::default();
    for (topic, q) in b.store.queue_ids() {
        let e = max_queue.entry(topic).or_insert(0);
        *e = (*e).max(q + 1);
    }
    for (topic, n) in max_queue {
        if b.topics.get(&topic).is_none() {
            let tc = crate::body::TopicConfig::new(
                &topic,
                n,
                n,
                crate::body::perm::READ | crate::body::perm::WRITE,
            );
            match b.topics.upsert(tc) {
                Ok(_) => {
                    tracing::info!(%topic, queues = n, "new leader adopted a topic it holds messages of")
                }
                Err(e) => tracing::warn!(%topic, error = %e, "adopting a topic failed"),
            }
        }
    }
}

/// A follower copies the leader's metadata every 3 s.
pub async fn follower_sync(b: Arc<Broker>) {
    let Some(d) = b.dledger.get() else { return };
    let mut client: Option<RemotingClient> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
            _ = b.shutdown.cancelled() => return,
        }
        if d.node.role().leader_ready {
            continue;
        }
        let Some(addr) = d
            .master_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            continue;
        };
        if addr == b.conf.broker_addr() {
            continue;
        }
        if client.as_ref().is_none_or(|c| c.addr != addr) {
            client = Some(RemotingClient::new(addr));
        }
        if let Some(c) = &client {
            if let Err(e) = crate::ha::sync_once(&b, c).await {
                tracing::debug!(leader = %c.addr, error = %e, "follower metadata sync failed");
                // Probably a dead leader's address: learn it again.
                *d.master_addr.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
    }
}
