//! The master side: accepts registered slaves on `haListenPort`, streams commitlog bytes to each
//! and feeds their offset reports to the [`AckTracker`].

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ack::{AckConfig, AckTracker, ReplicaOutcome, SlaveId, SlaveStatus};
use super::wire::{encode_header, take_last_report, HEADER_LEN};
use super::{HaError, HaStore};

/// Master settings (RocketMQ `MessageStoreConfig` keys in the comments).
#[derive(Debug, Clone)]
pub struct HaServerConfig {
    /// Where to listen (`brokerIP2`/any : `haListenPort`).
    pub listen: SocketAddr,
    /// `haTransferBatchSize`: most bytes under one header.
    pub transfer_batch_size: usize,
    /// `haSendHeartbeatInterval`: an empty header after this long without a transfer.
    pub heartbeat_interval: Duration,
    /// `haHousekeepingInterval`: a slave silent this long is dropped.
    pub housekeeping_interval: Duration,
    /// SYNC_MASTER ack rule.
    pub ack: AckConfig,
}

impl HaServerConfig {
    /// RocketMQ's defaults listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            transfer_batch_size: 32 * 1024,
            heartbeat_interval: Duration::from_secs(5),
            housekeeping_interval: Duration::from_secs(20),
            ack: AckConfig::default(),
        }
    }
}

/// IPs allowed to connect as slaves of this broker name (apache/rocketmq #3015: a stranger on
/// the HA port could otherwise fake acks). Shared: the broker updates it as slaves register.
#[derive(Debug, Clone, Default)]
pub struct AllowList(Arc<RwLock<HashSet<IpAddr>>>);

impl AllowList {
    pub fn new(ips: impl IntoIterator<Item = IpAddr>) -> Self {
        Self(Arc::new(RwLock::new(ips.into_iter().collect())))
    }

    /// Replaces the whole list.
    pub fn replace(&self, ips: impl IntoIterator<Item = IpAddr>) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = ips.into_iter().collect();
    }

    pub fn insert(&self, ip: IpAddr) {
        self.0.write().unwrap_or_else(|e| e.into_inner()).insert(ip);
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&ip)
    }

    pub fn to_vec(&self) -> Vec<IpAddr> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

/// Replication state for operators (GET_BROKER_RUNTIME_INFO, `mqadmin clusterList`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaStatus {
    pub master_max_offset: i64,
    pub slaves: Vec<SlaveStatus>,
}

struct Shared {
    config: HaServerConfig,
    store: Arc<dyn HaStore>,
    allow: AllowList,
    acks: AckTracker,
    /// Highest commitlog end announced by the broker; wakes idle transfers.
    appended: watch::Sender<i64>,
    /// Woken when a connection is refused, so the owner can refresh the allow-list at once.
    refused: Arc<Notify>,
    cancel: CancellationToken,
    tasks: TaskTracker,
}

/// The running HA listener of a master. Dropping it does not stop it; call
/// [`HaServer::shutdown`] (or cancel the parent token).
#[derive(Clone)]
pub struct HaServer {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl std::fmt::Debug for HaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaServer")
            .field("local_addr", &self.local_addr)
            .field("acks", &self.shared.acks)
            .finish()
    }
}

impl HaServer {
    /// Binds `config.listen` and starts accepting slaves from `allow`. Stops when `cancel` (or
    /// [`HaServer::shutdown`]) fires.
    pub async fn bind(
        config: HaServerConfig,
        store: Arc<dyn HaStore>,
        allow: AllowList,
        cancel: &CancellationToken,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let local_addr = listener.local_addr()?;
        let acks = AckTracker::new(config.ack.clone());
        let (appended, _) = watch::channel(store.max_offset());
        let shared = Arc::new(Shared {
            config,
            store,
            allow,
            acks,
            appended,
            refused: Arc::new(Notify::new()),
            cancel: cancel.child_token(),
            tasks: TaskTracker::new(),
        });
        tracing::info!(%local_addr, "HA service listening for slaves");
        shared
            .tasks
            .spawn(accept_loop(Arc::clone(&shared), listener));
        Ok(Self { shared, local_addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn allow_list(&self) -> &AllowList {
        &self.shared.allow
    }

    /// Notified when a connection from outside the allow-list is refused: a slave that
    /// registered since the list was last refreshed retries within seconds, so the owner should
    /// refresh the list now rather than at its next registration (30 s).
    pub fn refused(&self) -> Arc<Notify> {
        Arc::clone(&self.shared.refused)
    }

    pub fn acks(&self) -> &AckTracker {
        &self.shared.acks
    }

    /// Tells idle transfers that the commitlog now ends at `end` (call after each append; a
    /// transfer also looks by itself every 100 ms).
    pub fn notify_appended(&self, end: i64) {
        // No transfer subscribed (no slave connected, the usual single master): skip the
        // watch's write lock and its eight wake-up lists, paid on every send otherwise. A
        // transfer subscribes before its first read of the store, and polls every 100 ms.
        if self.shared.appended.receiver_count() == 0 {
            return;
        }
        self.shared.appended.send_if_modified(|v| {
            if end > *v {
                *v = end;
                true
            } else {
                false
            }
        });
    }

    /// SYNC_MASTER: wakes the transfers and waits until enough slaves confirmed `end`
    /// (`wroteOffset + wroteBytes`), at most `slaveTimeout`.
    pub async fn wait_for_replicas(&self, end: i64) -> ReplicaOutcome {
        self.notify_appended(end);
        self.shared.acks.wait_for(end).await
    }

    /// Connected slaves, their acked offsets and lag.
    pub fn status(&self) -> HaStatus {
        let master_max_offset = self.shared.store.max_offset();
        HaStatus {
            master_max_offset,
            slaves: self.shared.acks.status(master_max_offset),
        }
    }

    /// Stops accepting, closes every slave connection and waits for their tasks.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let accepted = tokio::select! {
            _ = shared.cancel.cancelled() => break,
            r = listener.accept() => r,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "HA accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !shared.allow.contains(peer.ip()) {
            tracing::warn!(
                %peer,
                allowed = ?shared.allow.to_vec(),
                "HA connection refused: not a registered slave of this broker"
            );
            drop(stream);
            shared.refused.notify_one();
            continue;
        }
        tracing::info!(%peer, "slave connected to the HA service");
        shared.tasks.spawn(serve(Arc::clone(&shared), stream, peer));
    }
}

async fn serve(shared: Arc<Shared>, stream: TcpStream, peer: SocketAddr) {
    let id = shared.acks.slave_connected(peer);
    let r = tokio::select! {
        _ = shared.cancel.cancelled() => Ok(()),
        r = connection(&shared, stream, peer, id) => r,
    };
    shared.acks.slave_disconnected(id);
    match r {
        Ok(()) => tracing::info!(%peer, "slave HA connection closed"),
        Err(e) => tracing::warn!(%peer, error = %e, "slave HA connection dropped"),
    }
}

async fn connection(
    shared: &Shared,
    stream: TcpStream,
    peer: SocketAddr,
    id: SlaveId,
) -> Result<(), HaError> {
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let (start_tx, start_rx) = oneshot::channel();
    tokio::select! {
        r = read_reports(shared, rd, peer, id, start_tx) => r,
        r = transfer(shared, wr, peer, start_rx) => r,
    }
}

/// Reads the slave's offset reports; the first one also fixes where the transfer starts.
async fn read_reports(
    shared: &Shared,
    mut rd: OwnedReadHalf,
    peer: SocketAddr,
    id: SlaveId,
    start_tx: oneshot::Sender<i64>,
) -> Result<(), HaError> {
    let idle = shared.config.housekeeping_interval;
    let mut buf = BytesMut::with_capacity(1024);
    let mut start_tx = Some(start_tx);
    loop {
        buf.reserve(64);
        let n = match tokio::time::timeout(idle, rd.read_buf(&mut buf)).await {
            Err(_) => return Err(HaError::Idle(idle)),
            Ok(r) => r?,
        };
        if n == 0 {
            return Err(HaError::Closed);
        }
        let Some(offset) = take_last_report(&mut buf) else {
            continue;
        };
        let master = shared.store.max_offset();
        if offset < 0 || offset > master {
            return Err(HaError::SlaveAhead {
                slave: offset,
                master,
            });
        }
        if let Some(tx) = start_tx.take() {
            tracing::info!(%peer, slave_offset = offset, master_offset = master, "slave reported its first offset");
            let _ = tx.send(offset);
        }
        shared.acks.slave_acked(id, offset);
    }
}

/// Where a slave reporting `report` is served from: its own end, or everything the master still
/// holds when it is empty or behind the master's oldest file.
fn start_offset(report: i64, min: i64) -> i64 {
    if report == 0 || report < min {
        min
    } else {
        report
    }
}

/// Streams commitlog bytes (and heartbeats when idle) to the slave.
async fn transfer(
    shared: &Shared,
    wr: OwnedWriteHalf,
    peer: SocketAddr,
    start_rx: oneshot::Receiver<i64>,
) -> Result<(), HaError> {
    let Ok(report) = start_rx.await else {
        return Ok(());
    };
    let store = &*shared.store;
    let min = store.min_offset();
    if report > 0 && report < min {
        tracing::warn!(
            %peer, slave_offset = report, master_min_offset = min,
            "slave needs bytes this master no longer holds; it must be rebuilt from an empty store"
        );
    }
    let mut next = start_offset(report, min);
    let batch = shared.config.transfer_batch_size.max(1);
    let heartbeat = shared.config.heartbeat_interval;
    let mut appended = shared.appended.subscribe();
    let mut wr = BufWriter::with_capacity(4 * batch + HEADER_LEN, wr);
    let mut last_write = Instant::now();
    tracing::info!(%peer, from = next, "starting commitlog transfer");
    loop {
        // Hot path: one zero-copy read of the mapped segment, header and bytes into the buffer.
        if let Some(data) = store.read(next, batch) {
            wr.write_all(&encode_header(next, data.len() as u32))
                .await?;
            wr.write_all(&data).await?;
            next += data.len() as i64;
            last_write = Instant::now();
            continue;
        }
        wr.flush().await?;
        let min = store.min_offset();
        if next < min {
            return Err(HaError::FellBehind { needed: next, min });
        }
        let due = last_write + heartbeat;
        tokio::select! {
            _ = appended.changed() => {}
            _ = tokio::time::sleep_until(due.min(Instant::now() + Duration::from_millis(100))) => {}
        }
        if Instant::now() >= due && store.max_offset() <= next {
            wr.write_all(&encode_header(next, 0)).await?;
            wr.flush().await?;
            last_write = Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_points() {
        // Empty slave: everything still held, not just the last file.
        assert_eq!(start_offset(0, 0), 0);
        assert_eq!(start_offset(0, 2048), 2048);
        // Behind retention: from the oldest byte (the slave will refuse unless empty).
        assert_eq!(start_offset(100, 2048), 2048);
        assert_eq!(start_offset(5000, 2048), 5000);
    }

    #[test]
    fn allow_list_updates() {
        let a = AllowList::new(["127.0.0.12".parse().unwrap()]);
        assert!(a.contains("127.0.0.12".parse().unwrap()));
        assert!(!a.contains("127.0.0.13".parse().unwrap()));
        let b = a.clone();
        b.replace(["127.0.0.13".parse().unwrap()]);
        assert!(a.contains("127.0.0.13".parse().unwrap()));
        a.insert("127.0.0.14".parse().unwrap());
        assert_eq!(b.to_vec().len(), 2);
    }
}
