//! Start-up and the ordered shutdown: [`BrokerHandle`] owns the running broker.
//!
//! Start: open store and metadata, bind both ports, spawn the accept loops and the background
//! tasks (registration, offset persistence, client expiry, stats). Shutdown: cancel (accept
//! loops and read loops stop, held pulls answer), wait for in-flight requests, persist offsets,
//! shut the store down (flush), unregister from the name servers.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;

use crate::remoting_client::RemotingClient;
use crate::{register, server, Broker, BrokerConfig, BrokerError};

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// A running broker.
#[derive(Debug)]
pub struct BrokerHandle {
    broker: Arc<Broker>,
    main_addr: SocketAddr,
    fast_addr: SocketAddr,
    namesrv: Vec<Arc<RemotingClient>>,
}

/// Binds `ip:port`; when `ip` is not an address of this host (NAT, containers) listens on all
/// addresses instead. The flag says whether `ip` itself was bound.
async fn bind(ip: IpAddr, port: u16) -> Result<(TcpListener, bool), BrokerError> {
    let addr = SocketAddr::new(ip, port);
    match TcpListener::bind(addr).await {
        Ok(l) => Ok((l, true)),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            let any = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port);
            tracing::warn!(%addr, "brokerIP1 is not a local address; listening on {any}");
            TcpListener::bind(any)
                .await
                .map(|l| (l, false))
                .map_err(|source| BrokerError::Bind { addr: any, source })
        }
        Err(source) => Err(BrokerError::Bind { addr, source }),
    }
}

/// Starts the broker (see the module docs).
pub async fn start(conf: BrokerConfig) -> Result<BrokerHandle, BrokerError> {
    let (main, ip1_is_local) = bind(conf.broker_ip1, conf.listen_port).await?;
    let (fast, _) = bind(conf.broker_ip1, conf.fast_listen_port()).await?;
    let grpc = match conf.grpc_server_port {
        0 => None,
        port => match bind(conf.broker_ip1, port).await {
            Ok((l, _)) => Some(l),
            Err(e) if !conf.grpc_port_explicit => {
                tracing::warn!(error = %e, "the default gRPC port {port} is taken; serving no RocketMQ 5.x gRPC clients (set grpcServerPort to another port, or 0)");
                None
            }
            Err(e) => return Err(e),
        },
    };
    let broker = tokio::task::spawn_blocking(move || Broker::open(conf))
        .await
        .map_err(|e| BrokerError::Config(format!("store open panicked: {e}")))??;
    let main_addr = main.local_addr()?;
    let fast_addr = fast.local_addr()?;
    let b = &broker;
    // DLedger mode replaces master/slave HA: the Raft group replicates.
    let replication = match b.conf.dledger {
        Some(_) => crate::dledger::start(b).await.map(|d| {
            if let Some(d) = d {
                let _ = b.dledger.set(d);
            }
            None
        }),
        None => crate::ha::start(b, ip1_is_local).await.map(Some),
    };
    match replication {
        Ok(Some(r)) => {
            let _ = b.ha.set(r);
        }
        Ok(None) => {}
        Err(e) => {
            b.shutdown.cancel();
            let _ = b.store.shutdown();
            return Err(e);
        }
    }
    b.tasks.spawn(crate::ha::run_slave_sync(Arc::clone(b)));
    b.tasks.spawn(crate::dledger::watch_role(Arc::clone(b)));
    b.tasks.spawn(crate::dledger::follower_sync(Arc::clone(b)));
    b.tasks
        .spawn(server::accept_loop(Arc::clone(b), main, false));
    b.tasks
        .spawn(server::accept_loop(Arc::clone(b), fast, true));
    if let Some(l) = grpc {
        tracing::info!(addr = ?l.local_addr().ok(), "serving RocketMQ 5.x gRPC clients");
        b.tasks.spawn(crate::grpc::serve(Arc::clone(b), l));
    }

    let namesrv: Vec<Arc<RemotingClient>> = b
        .conf
        .namesrv_addr
        .iter()
        .map(|a| Arc::new(RemotingClient::new(a.clone())))
        .collect();
    b.tasks.spawn(register::run(Arc::clone(b), namesrv.clone()));
    b.tasks.spawn(persist_offsets_loop(Arc::clone(b)));
    b.tasks.spawn(scan_clients_loop(Arc::clone(b)));
    b.tasks.spawn(stats_loop(Arc::clone(b)));
    b.tasks.spawn(crate::protect::run(Arc::clone(b)));
    b.tasks.spawn(crate::delay::run(Arc::clone(b)));
    b.tasks.spawn(crate::timer::run(Arc::clone(b)));
    b.tasks
        .spawn(crate::transaction::run_checker(Arc::clone(b)));
    tracing::info!(
        broker = %b.conf.broker_name,
        cluster = %b.conf.broker_cluster_name,
        addr = %b.conf.broker_addr(),
        %main_addr,
        %fast_addr,
        namesrv = ?b.conf.namesrv_addr,
        "broker started"
    );
    Ok(BrokerHandle {
        broker,
        main_addr,
        fast_addr,
        namesrv,
    })
}

async fn persist_offsets_loop(b: Arc<Broker>) {
    let period = Duration::from_millis(b.conf.flush_consumer_offset_interval.max(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(period) => {}
            _ = b.shutdown.cancelled() => return,
        }
        let b2 = Arc::clone(&b);
        let r = tokio::task::spawn_blocking(move || {
            b2.offsets.persist()?;
            b2.kv.flush().map_err(BrokerError::from)
        })
        .await;
        if let Ok(Err(e)) = r {
            tracing::error!(error = %e, "persisting consumer offsets failed");
        }
    }
}

async fn scan_clients_loop(b: Arc<Broker>) {
    let timeout = Duration::from_millis(b.conf.channel_expired_millis);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = b.shutdown.cancelled() => return,
        }
        let (changed, conns) = b.clients.scan_expired(Instant::now(), timeout);
        if !conns.is_empty() {
            tracing::info!(?conns, "clients expired without heartbeat");
        }
        crate::processor::client::notify_groups_changed(&b, &changed);
    }
}

async fn stats_loop(b: Arc<Broker>) {
    loop {
        b.stats.sample(Instant::now());
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = b.shutdown.cancelled() => return,
        }
    }
}

impl BrokerHandle {
    /// The main remoting address actually bound.
    pub fn main_addr(&self) -> SocketAddr {
        self.main_addr
    }

    /// The fast (VIP) remoting address actually bound.
    pub fn fast_addr(&self) -> SocketAddr {
        self.fast_addr
    }

    /// The address registered with the name servers (`brokerIP1:listenPort`).
    pub fn broker_addr(&self) -> String {
        self.broker.conf.broker_addr()
    }

    /// The shared state (in-process tests call handlers on it directly).
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops the broker in order and waits until it has.
    pub async fn shutdown(self) -> Result<(), BrokerError> {
        let b = self.broker;
        tracing::info!("broker shutting down");
        b.shutdown.cancel();
        b.tasks.close();
        if tokio::time::timeout(DRAIN_TIMEOUT, b.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within {DRAIN_TIMEOUT:?}");
        }
        if let Some(h) = b.ha.get() {
            h.shutdown().await;
        }
        // The Raft core before the store: an entry applied to a stopped store is refused, and
        // the node would stop on that error instead of shutting down.
        if let Some(d) = b.dledger.get() {
            d.node.shutdown().await;
        }
        let b2 = Arc::clone(&b);
        let r = tokio::task::spawn_blocking(move || -> Result<(), BrokerError> {
            b2.offsets.persist()?;
            b2.kv.flush()?;
            b2.store.shutdown()?;
            Ok(())
        })
        .await
        .map_err(|e| BrokerError::Config(format!("shutdown panicked: {e}")))?;
        register::unregister_all(&b, &self.namesrv).await;
        tracing::info!("broker stopped");
        r
    }
}
