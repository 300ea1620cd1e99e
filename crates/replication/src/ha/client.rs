//! The slave side: connects to the master's HA port, reports its commitlog end, appends what the
//! master streams verbatim at the same offsets, and reconnects with backoff.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::wire::{decode_transfer, HEADER_LEN};
use super::{HaError, HaStore};

/// Slave settings.
#[derive(Debug, Clone)]
pub struct HaClientConfig {
    /// Local address to connect from (the master's allow-list knows the slave by this IP).
    pub bind_ip: Option<IpAddr>,
    /// `haSendHeartbeatInterval`: report at least this often.
    pub report_interval: Duration,
    /// `haHousekeepingInterval`: drop the link after this long without bytes from the master.
    pub housekeeping_interval: Duration,
    pub connect_timeout: Duration,
    /// First and largest pause between connection attempts.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
}

impl Default for HaClientConfig {
    fn default() -> Self {
        Self {
            bind_ip: None,
            report_interval: Duration::from_secs(5),
            housekeeping_interval: Duration::from_secs(20),
            connect_timeout: Duration::from_secs(3),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
        }
    }
}

struct Shared {
    config: HaClientConfig,
    store: Arc<dyn HaStore>,
    connected: AtomicBool,
    cancel: CancellationToken,
}

/// A running replication client. Cheap to clone; [`HaClient::shutdown`] stops it.
#[derive(Clone)]
pub struct HaClient {
    shared: Arc<Shared>,
    master: Arc<watch::Sender<Option<SocketAddr>>>,
    tasks: TaskTracker,
}

impl std::fmt::Debug for HaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HaClient")
            .field("master", &self.master())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl HaClient {
    /// Starts replicating from `master` (may be `None` until the broker learns it). Must be
    /// called within a tokio runtime.
    pub fn start(
        config: HaClientConfig,
        store: Arc<dyn HaStore>,
        master: Option<SocketAddr>,
        cancel: &CancellationToken,
    ) -> Self {
        let shared = Arc::new(Shared {
            config,
            store,
            connected: AtomicBool::new(false),
            cancel: cancel.child_token(),
        });
        let (tx, rx) = watch::channel(master);
        let tasks = TaskTracker::new();
        tasks.spawn(run(Arc::clone(&shared), rx));
        tasks.close();
        Self {
            shared,
            master: Arc::new(tx),
            tasks,
        }
    }

    /// Points the client at a (new) master address; a live link to another master is dropped.
    pub fn set_master(&self, addr: Option<SocketAddr>) {
        self.master.send_if_modified(|cur| {
            if *cur == addr {
                false
            } else {
                tracing::info!(old = ?*cur, new = ?addr, "HA master address changed");
                *cur = addr;
                true
            }
        });
    }

    pub fn master(&self) -> Option<SocketAddr> {
        *self.master.borrow()
    }

    /// True while a link to the master is up.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// Closes the link and waits for the client task.
    pub async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.tasks.wait().await;
    }
}

async fn run(shared: Arc<Shared>, mut master: watch::Receiver<Option<SocketAddr>>) {
    let cfg = &shared.config;
    let mut backoff = cfg.backoff_min;
    loop {
        let addr = *master.borrow_and_update();
        let Some(addr) = addr else {
            tokio::select! {
                _ = shared.cancel.cancelled() => return,
                r = master.changed() => if r.is_err() { return },
            }
            continue;
        };
        let began = Instant::now();
        let r = tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = master.changed() => Ok(()),
            r = session(&shared, addr) => r,
        };
        shared.connected.store(false, Ordering::Release);
        match r {
            Ok(()) => {}
            Err(e) => tracing::warn!(master = %addr, error = %e, "HA link to master down"),
        }
        if began.elapsed() > cfg.housekeeping_interval {
            backoff = cfg.backoff_min;
        }
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = master.changed() => {}
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(cfg.backoff_max);
    }
}

async fn connect(cfg: &HaClientConfig, addr: SocketAddr) -> Result<TcpStream, HaError> {
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(ip) = cfg.bind_ip {
        // Connect from the slave's registered address so the master's allow-list knows it; an
        // address this host does not have (NAT, containers) falls back to the default route.
        if let Err(e) = sock.bind(SocketAddr::new(ip, 0)) {
            tracing::warn!(%ip, error = %e, "cannot connect from the slave's address; using the default");
        }
    }
    let stream = tokio::time::timeout(cfg.connect_timeout, sock.connect(addr))
        .await
        .map_err(|_| HaError::ConnectTimeout(addr))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One link: report, then apply transfers until something goes wrong.
async fn session(shared: &Shared, addr: SocketAddr) -> Result<(), HaError> {
    let cfg = &shared.config;
    let store = &*shared.store;
    let stream = connect(cfg, addr).await?;
    let (mut rd, mut wr) = stream.into_split();
    let mut reported = store.max_offset();
    wr.write_all(&reported.to_be_bytes()).await?;
    shared.connected.store(true, Ordering::Release);
    tracing::info!(master = %addr, offset = reported, "connected to the master's HA service");
    let mut buf = BytesMut::with_capacity(128 * 1024);
    let mut last_read = Instant::now();
    let mut last_report = Instant::now();
    let tick = cfg.report_interval.min(cfg.housekeeping_interval) / 4;
    loop {
        buf.reserve(64 * 1024 + HEADER_LEN);
        tokio::select! {
            r = rd.read_buf(&mut buf) => {
                if r? == 0 {
                    return Err(HaError::Closed);
                }
                last_read = Instant::now();
                // Hot path: apply every complete transfer, then report once.
                while let Some(t) = decode_transfer(&mut buf)? {
                    let max = store.max_offset();
                    // An empty store takes the master's first offset (the store checks alignment).
                    if t.offset != max && max != 0 {
                        return Err(HaError::OffsetMismatch { master: t.offset, slave: max });
                    }
                    if !t.body.is_empty() {
                        store.append(t.offset, &t.body)?;
                    }
                }
                let max = store.max_offset();
                if max != reported {
                    wr.write_all(&max.to_be_bytes()).await?;
                    reported = max;
                    last_report = Instant::now();
                }
            }
            _ = tokio::time::sleep(tick) => {
                if last_read.elapsed() >= cfg.housekeeping_interval {
                    return Err(HaError::Idle(cfg.housekeeping_interval));
                }
                if last_report.elapsed() >= cfg.report_interval {
                    reported = store.max_offset();
                    wr.write_all(&reported.to_be_bytes()).await?;
                    last_report = Instant::now();
                }
            }
        }
    }
}
