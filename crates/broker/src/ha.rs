//! Roles and replication wiring: a master runs the HA service (`haListenPort`) and, as
//! SYNC_MASTER, waits for slave acks after each write; a slave streams the master's commitlog
//! through the HA client and copies the master's metadata (topics, consumer offsets,
//! subscription groups) every 10 s over remoting.
//!
//! Addresses: a slave learns the master's HA and remoting addresses from its REGISTER_BROKER
//! responses (`haServerAddr`, `masterAddr`) unless `haMasterAddress` fixes the former. A master
//! accepts HA connections from its own addresses, loopback, and the slaves of its broker name the
//! name servers list (GET_BROKER_CLUSTER_INFO after each registration).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferrocket_protocol::body::ClusterInfo;
use ferrocket_protocol::{RemotingCommand, RequestCode};
use ferrocket_replication::ha::{
    AckConfig, AllowList, HaClient, HaClientConfig, HaServer, HaServerConfig, HaStore,
    ReplicaOutcome,
};
use ferrocket_store::PutStatus;
use serde::Deserialize;

use crate::body::{SubscriptionGroupConfig, TopicConfigSerializeWrapper};
use crate::config::BrokerRole;
use crate::remoting_client::RemotingClient;
use crate::BrokerConfig;
use crate::{Broker, BrokerError};

/// The running replication side of the broker.
#[derive(Debug)]
pub enum Replication {
    Master(HaServer),
    Slave {
        client: HaClient,
        /// The master's remoting address, for metadata sync.
        master_addr: Mutex<Option<String>>,
        /// `haMasterAddress` was set: never replaced by what the name servers say.
        fixed: bool,
    },
}

/// A slave's HA settings from the broker conf.
fn client_config(c: &BrokerConfig, bind_ip: Option<IpAddr>) -> HaClientConfig {
    HaClientConfig {
        bind_ip,
        report_interval: Duration::from_millis(c.ha_send_heartbeat_interval),
        housekeeping_interval: Duration::from_millis(c.ha_housekeeping_interval),
        ..HaClientConfig::default()
    }
}

/// A master's HA settings from the broker conf, listening on `listen`.
fn server_config(c: &BrokerConfig, listen: SocketAddr) -> HaServerConfig {
    HaServerConfig {
        listen,
        transfer_batch_size: c.ha_transfer_batch_size,
        heartbeat_interval: Duration::from_millis(c.ha_send_heartbeat_interval),
        housekeeping_interval: Duration::from_millis(c.ha_housekeeping_interval),
        ack: AckConfig {
            max_gap_not_in_sync: c.ha_max_gap_not_in_sync,
            slave_timeout: Duration::from_millis(c.slave_timeout),
            in_sync_replicas: c.in_sync_replicas,
            total_replicas: c.total_replicas,
        },
    }
}

/// Starts the HA service (master) or client (slave).
pub async fn start(b: &Arc<Broker>, ip1_is_local: bool) -> Result<Replication, BrokerError> {
    let c = &b.conf;
    let store: Arc<dyn HaStore> = Arc::clone(&b.store) as Arc<dyn HaStore>;
    if c.is_slave() {
        let fixed = c.ha_master_address.as_deref().and_then(parse_addr);
        let cfg = client_config(c, ip1_is_local.then_some(c.broker_ip1));
        let client = HaClient::start(cfg, store, fixed, &b.shutdown);
        return Ok(Replication::Slave {
            client,
            master_addr: Mutex::new(None),
            fixed: fixed.is_some(),
        });
    }
    let mut cfg = server_config(
        c,
        SocketAddr::new(
            if ip1_is_local {
                c.broker_ip2
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            },
            c.ha_listen_port,
        ),
    );
    let allow = AllowList::new([c.broker_ip1, c.broker_ip2, IpAddr::V4(Ipv4Addr::LOCALHOST)]);
    let listen = cfg.listen;
    let server =
        match HaServer::bind(cfg.clone(), Arc::clone(&store), allow.clone(), &b.shutdown).await {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
                cfg.listen = SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), c.ha_listen_port);
                HaServer::bind(cfg, store, allow, &b.shutdown)
                    .await
                    .map_err(|source| BrokerError::Bind {
                        addr: listen,
                        source,
                    })?
            }
            Err(source) => {
                return Err(BrokerError::Bind {
                    addr: listen,
                    source,
                })
            }
        };
    Ok(Replication::Master(server))
}

fn parse_addr(s: &str) -> Option<SocketAddr> {
    let s = s.trim();
    if s.len() < 6 {
        return None;
    }
    s.parse().ok()
}

impl Replication {
    /// After a successful append that ends at `end`: wakes the HA transfers and, on a
    /// SYNC_MASTER with `wait` set, waits for the slaves (a non-OK outcome replaces `status`).
    pub async fn after_put(
        &self,
        role: BrokerRole,
        end: i64,
        wait: bool,
        status: PutStatus,
    ) -> PutStatus {
        let Replication::Master(server) = self else {
            return status;
        };
        if role != BrokerRole::SyncMaster || !wait || !status.is_stored() {
            server.notify_appended(end);
            return status;
        }
        match server.wait_for_replicas(end).await {
            ReplicaOutcome::Ok => status,
            ReplicaOutcome::FlushSlaveTimeout => PutStatus::FlushSlaveTimeout,
            ReplicaOutcome::SlaveNotAvailable => PutStatus::SlaveNotAvailable,
        }
    }

    /// A slave takes the master addresses from a REGISTER_BROKER response.
    pub fn learn_master(&self, resp: &RemotingCommand) {
        let Replication::Slave {
            client,
            master_addr,
            fixed,
        } = self
        else {
            return;
        };
        if let Some(m) = resp.ext("masterAddr") {
            *master_addr.lock().unwrap_or_else(|e| e.into_inner()) = Some(m.to_string());
        }
        if !*fixed {
            if let Some(ha) = resp.ext("haServerAddr").and_then(parse_addr) {
                client.set_master(Some(ha));
            }
        }
    }

    /// A master lets in the slaves the name servers list under its broker name.
    pub fn learn_slaves(&self, broker_name: &str, cluster_info: &[u8]) {
        let Replication::Master(server) = self else {
            return;
        };
        let Ok(info) = ferrocket_protocol::fastjson::from_slice::<ClusterInfo>(cluster_info) else {
            return;
        };
        if let Some(bd) = info.broker_addr_table.get(broker_name) {
            for (id, addr) in &bd.broker_addrs {
                if *id != 0 {
                    if let Ok(sa) = addr.parse::<SocketAddr>() {
                        server.allow_list().insert(sa.ip());
                    }
                }
            }
        }
    }

    /// A slave that does not know its master yet (it registered before its master did).
    pub fn master_unknown(&self) -> bool {
        matches!(self, Replication::Slave { client, .. } if client.master().is_none())
    }

    /// A master's signal that a connection was refused (see `HaServer::refused`).
    pub fn refused(&self) -> Option<Arc<tokio::sync::Notify>> {
        match self {
            Replication::Master(server) => Some(server.refused()),
            Replication::Slave { .. } => None,
        }
    }

    /// Stops the HA client of a slave.
    pub async fn shutdown(&self) {
        if let Replication::Slave { client, .. } = self {
            client.shutdown().await;
        }
    }
}

/// A slave copies the master's topics, offsets and groups every 10 s.
pub async fn run_slave_sync(b: Arc<Broker>) {
    let Some(Replication::Slave { master_addr, .. }) = b.ha.get() else {
        return;
    };
    let mut client: Option<RemotingClient> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
            _ = b.shutdown.cancelled() => return,
        }
        let Some(addr) = master_addr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            continue;
        };
        if client.as_ref().is_none_or(|c| c.addr != addr) {
            client = Some(RemotingClient::new(addr));
        }
        if let Some(c) = &client {
            if let Err(e) = sync_once(&b, c).await {
                tracing::warn!(master = %c.addr, error = %e, "slave metadata sync failed");
            }
        }
    }
}

async fn call(c: &RemotingClient, code: RequestCode) -> std::io::Result<bytes::Bytes> {
    let r = c
        .call(RemotingCommand::request(code), Duration::from_secs(5))
        .await?;
    if r.code != 0 {
        return Err(std::io::Error::other(format!(
            "{} answered {}: {:?}",
            code.name(),
            r.code,
            r.remark
        )));
    }
    Ok(r.body)
}

pub(crate) async fn sync_once(b: &Broker, c: &RemotingClient) -> Result<(), String> {
    let body = call(c, RequestCode::GET_ALL_TOPIC_CONFIG)
        .await
        .map_err(|e| e.to_string())?;
    let w: TopicConfigSerializeWrapper =
        ferrocket_protocol::fastjson::from_slice(&body).map_err(|e| e.to_string())?;
    for tc in w.topic_config_table.into_values() {
        if b.topics.get(&tc.topic_name).as_deref() != Some(&tc) {
            b.topics.upsert(tc).map_err(|e| e.to_string())?;
        }
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Offsets {
        offset_table: BTreeMap<String, BTreeMap<i32, i64>>,
    }
    let body = call(c, RequestCode::GET_ALL_CONSUMER_OFFSET)
        .await
        .map_err(|e| e.to_string())?;
    let o: Offsets = ferrocket_protocol::fastjson::from_slice(&body).map_err(|e| e.to_string())?;
    for (key, queues) in o.offset_table {
        if let Some((topic, group)) = key.split_once('@') {
            for (q, off) in queues {
                b.offsets.commit(group, topic, q, off);
            }
        }
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Groups {
        subscription_group_table: BTreeMap<String, SubscriptionGroupConfig>,
    }
    let body = call(c, RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG)
        .await
        .map_err(|e| e.to_string())?;
    let g: Groups = ferrocket_protocol::fastjson::from_slice(&body).map_err(|e| e.to_string())?;
    for cfg in g.subscription_group_table.into_values() {
        if b.groups.get(&cfg.group_name).as_deref() != Some(&cfg) {
            b.groups.upsert(cfg).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The HA timing and batch keys reach both ends of the link; 0 is refused, naming the key.
    #[test]
    fn ha_keys_configure_master_and_slave() {
        let props = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<std::collections::HashMap<_, _>>()
        };
        let c = BrokerConfig::from_properties(&props(&[
            ("haSendHeartbeatInterval", "1000"),
            ("haHousekeepingInterval", "4000"),
            ("haTransferBatchSize", "65536"),
        ]))
        .unwrap();
        let listen = SocketAddr::from(([127, 0, 0, 1], 10912));
        let s = server_config(&c, listen);
        assert_eq!(s.transfer_batch_size, 65536);
        assert_eq!(s.heartbeat_interval, Duration::from_secs(1));
        assert_eq!(s.housekeeping_interval, Duration::from_secs(4));
        let k = client_config(&c, None);
        assert_eq!(k.report_interval, Duration::from_secs(1));
        assert_eq!(k.housekeeping_interval, Duration::from_secs(4));

        // RocketMQ's defaults otherwise.
        let d = server_config(&BrokerConfig::default(), listen);
        assert_eq!(d.transfer_batch_size, 32 * 1024);
        assert_eq!(d.heartbeat_interval, Duration::from_secs(5));
        assert_eq!(d.housekeeping_interval, Duration::from_secs(20));

        let e = BrokerConfig::from_properties(&props(&[("haTransferBatchSize", "0")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("haTransferBatchSize=0"), "{e}");
        let keys = BrokerConfig::implemented_keys();
        for k in [
            "haSendHeartbeatInterval",
            "haHousekeepingInterval",
            "haTransferBatchSize",
        ] {
            assert!(keys.contains(&k), "{k} not counted as implemented");
        }
    }
}
