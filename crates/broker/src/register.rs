//! Registration with the name servers: REGISTER_BROKER to every address of `namesrvAddr` in
//! parallel at start, every `registerNameServerPeriod`, and at once when the topic table
//! changes; UNREGISTER_BROKER at shutdown.

use std::sync::Arc;
use std::time::Duration;

use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::body::RegisterBrokerBody;
use crate::headers::{RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader};
use crate::remoting_client::RemotingClient;
use crate::Broker;

/// The REGISTER_BROKER request for the broker's current topics.
pub fn register_request(b: &Broker) -> RemotingCommand {
    let body = RegisterBrokerBody {
        topic_config_serialize_wrapper: b.topics.wrapper(),
        filter_server_list: Vec::new(),
    };
    let bytes = if b.conf.compressed_register {
        body.encode_compressed()
    } else {
        serde_json::to_vec(&body).unwrap_or_default()
    };
    // Over the body as sent, compressed or not (RocketMQ's BrokerOuterAPI).
    let crc = (crc32fast::hash(&bytes) & 0x7FFF_FFFF) as i32;
    let h = RegisterBrokerRequestHeader {
        broker_name: b.conf.broker_name.clone(),
        broker_addr: b.conf.broker_addr(),
        cluster_name: b.conf.broker_cluster_name.clone(),
        ha_server_addr: b.conf.ha_server_addr(),
        broker_id: b.broker_id(),
        heartbeat_timeout_millis: None,
        enable_acting_master: None,
        compressed: Some(b.conf.compressed_register),
        body_crc32: Some(crc),
    };
    RemotingCommand::request(RequestCode::REGISTER_BROKER)
        .with_header(&h)
        .with_body(bytes)
}

/// Registers with every name server in parallel; returns the accepting name servers' answers.
pub async fn register_all(b: &Broker, clients: &[Arc<RemotingClient>]) -> Vec<RemotingCommand> {
    let req = register_request(b);
    let timeout = Duration::from_millis(b.conf.register_broker_timeout_mills.max(1000));
    let calls = clients.iter().map(|c| {
        let req = req.clone();
        async move {
            match c.call(req, timeout).await {
                Ok(r) if r.code == ResponseCode::SUCCESS as i32 => Some(r),
                Ok(r) => {
                    tracing::warn!(namesrv = %c.addr, code = r.code, remark = ?r.remark, "register broker refused");
                    None
                }
                Err(e) => {
                    tracing::warn!(namesrv = %c.addr, error = %e, "register broker failed");
                    None
                }
            }
        }
    });
    let ok: Vec<RemotingCommand> = futures::future::join_all(calls)
        .await
        .into_iter()
        .flatten()
        .collect();
    tracing::debug!(
        ok = ok.len(),
        total = clients.len(),
        "registered with name servers"
    );
    ok
}

/// `forceRegister=false`: whether any name server holds another version of the topic table
/// than ours (or does not know this broker). QUERY_DATA_VERSION also refreshes the broker's
/// liveness there, so a round that does not register still keeps it routed. As RocketMQ, a
/// name server that cannot be asked does not make the broker register.
async fn need_register(b: &Broker, clients: &[Arc<RemotingClient>]) -> bool {
    let version = b.topics.wrapper().data_version;
    let Ok(body) = serde_json::to_vec(&version) else {
        return true;
    };
    let h = UnregisterBrokerRequestHeader {
        broker_name: b.conf.broker_name.clone(),
        broker_addr: b.conf.broker_addr(),
        cluster_name: b.conf.broker_cluster_name.clone(),
        broker_id: b.broker_id(),
    };
    let req = RemotingCommand::request(RequestCode::QUERY_DATA_VERSION)
        .with_header(&h)
        .with_body(body);
    let timeout = Duration::from_millis(b.conf.register_broker_timeout_mills.max(1000));
    let calls = clients.iter().map(|c| {
        let req = req.clone();
        let version = &version;
        async move {
            let r = match c.call(req, timeout).await {
                Ok(r) if r.code == ResponseCode::SUCCESS as i32 => r,
                Ok(_) | Err(_) => return false,
            };
            let changed = r.ext("changed").is_none_or(|v| v != "false");
            let theirs: Option<crate::body::DataVersion> =
                ferrocket_protocol::fastjson::from_slice(&r.body).ok();
            changed || theirs.is_some_and(|t| !t.same_as(version))
        }
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .any(|c| c)
}

/// After a registration: a slave learns its master; a master learns which slaves to let in.
async fn learn_peers(b: &Broker, clients: &[Arc<RemotingClient>], answers: &[RemotingCommand]) {
    if let Some(d) = b.dledger.get() {
        if let Some(m) = answers.iter().find_map(|r| r.ext("masterAddr")) {
            *d.master_addr.lock().unwrap_or_else(|e| e.into_inner()) =
                Some(m.to_string()).filter(|m| !m.is_empty());
        }
        return;
    }
    let Some(ha) = b.ha.get() else { return };
    if b.is_slave() {
        for r in answers {
            ha.learn_master(r);
        }
        return;
    }
    for c in clients {
        let req = RemotingCommand::request(RequestCode::GET_BROKER_CLUSTER_INFO);
        if let Ok(r) = c.call(req, Duration::from_secs(3)).await {
            if r.code == ResponseCode::SUCCESS as i32 {
                ha.learn_slaves(&b.conf.broker_name, &r.body);
                return;
            }
        }
    }
}

/// Registers now, then periodically and on topic changes, until shutdown.
pub async fn run(b: Arc<Broker>, clients: Vec<Arc<RemotingClient>>) {
    if clients.is_empty() {
        tracing::warn!("namesrvAddr is empty: the broker will not register with any name server");
        return;
    }
    // A refused HA connection is most likely a slave that registered after our last look:
    // ask the name servers again now (at most once a second), not at the next registration.
    if let Some(refused) = b.ha.get().and_then(|h| h.refused()) {
        let (b2, c2) = (Arc::clone(&b), clients.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = b2.shutdown.cancelled() => return,
                    _ = refused.notified() => {}
                }
                learn_peers(&b2, &c2, &[]).await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let period = Duration::from_millis(b.conf.register_name_server_period);
    // Whether this round is only the periodic one (not the first, not a topic change).
    let mut periodic = false;
    loop {
        let covers = b.topic_changes.load(std::sync::atomic::Ordering::Acquire);
        // Rounds that must carry something new (a role, a master to learn) stay forced.
        let quiet = periodic
            && b.dledger.get().is_none()
            && !b.ha.get().is_some_and(|h| h.master_unknown());
        if b.conf.force_register || !quiet || need_register(&b, &clients).await {
            let answers = register_all(&b, &clients).await;
            b.registered.send_replace(covers);
            learn_peers(&b, &clients, &answers).await;
        } else {
            tracing::debug!("name servers hold this topic table: periodic registration skipped");
            b.registered.send_replace(covers);
        }
        // A slave that started before its master asks again soon instead of in 30 s.
        let follower_without_master = b.dledger.get().is_some_and(|d| {
            !d.node.role().leader_ready
                && d.master_addr
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_none()
        });
        // A DLedger leader repeats its claim every 5 s: a stale leader waking up (SIGSTOP/SIGCONT)
        // may overwrite brokerId 0 for a moment before it steps down.
        let dledger_leader = b.dledger.get().is_some_and(|d| d.node.role().leader_ready);
        let wait = if b.ha.get().is_some_and(|h| h.master_unknown()) || follower_without_master {
            period.min(Duration::from_secs(2))
        } else if dledger_leader {
            period.min(Duration::from_secs(5))
        } else {
            period
        };
        periodic = tokio::select! {
            _ = tokio::time::sleep(wait) => true,
            _ = b.topics_changed.notified() => false,
            _ = b.shutdown.cancelled() => return,
        };
    }
}

/// Waits (at most `registerBrokerTimeoutMills`, 3 s at most) until a registration round that
/// started after topic change `change` has finished; at once without name servers.
pub async fn wait_registered(b: &Broker, change: u64) {
    if b.conf.namesrv_addr.is_empty() {
        return;
    }
    let limit = Duration::from_millis(b.conf.register_broker_timeout_mills.clamp(100, 3000));
    let mut rx = b.registered.subscribe();
    let _ = tokio::time::timeout(limit, rx.wait_for(|&done| done >= change)).await;
}

/// UNREGISTER_BROKER to every name server in parallel (shutdown).
pub async fn unregister_all(b: &Broker, clients: &[Arc<RemotingClient>]) {
    let h = UnregisterBrokerRequestHeader {
        broker_name: b.conf.broker_name.clone(),
        broker_addr: b.conf.broker_addr(),
        cluster_name: b.conf.broker_cluster_name.clone(),
        broker_id: b.broker_id(),
    };
    let req = RemotingCommand::request(RequestCode::UNREGISTER_BROKER).with_header(&h);
    let calls = clients.iter().map(|c| {
        let req = req.clone();
        async move {
            if let Err(e) = c.call(req, Duration::from_secs(3)).await {
                tracing::warn!(namesrv = %c.addr, error = %e, "unregister broker failed");
            }
            c.close().await;
        }
    });
    futures::future::join_all(calls).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BrokerConfig;

    #[test]
    fn register_request_fields_and_crc() {
        let dir = std::env::temp_dir().join(format!("ferrocket-reg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut conf = BrokerConfig {
            broker_name: "broker-x".into(),
            broker_cluster_name: "C1".into(),
            listen_port: 20911,
            ha_listen_port: 20912,
            ..BrokerConfig::default()
        };
        conf.store.store_path_root_dir = dir.clone();
        conf.store.mapped_file_size_commit_log = 1 << 20;
        let b = Broker::open(conf).unwrap();
        let req = register_request(&b);
        assert_eq!(req.code, RequestCode::REGISTER_BROKER as i32);
        assert_eq!(req.ext("brokerName"), Some("broker-x"));
        assert_eq!(req.ext("clusterName"), Some("C1"));
        assert_eq!(req.ext("brokerAddr"), Some("127.0.0.1:20911"));
        assert_eq!(req.ext("haServerAddr"), Some("127.0.0.1:20912"));
        assert_eq!(req.ext("brokerId"), Some("0"));
        assert_eq!(req.ext("compressed"), Some("false"));
        let crc = (crc32fast::hash(&req.body) & 0x7FFF_FFFF) as i32;
        assert_eq!(req.ext("bodyCrc32"), Some(crc.to_string().as_str()));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        let table = &body["topicConfigSerializeWrapper"]["topicConfigTable"];
        assert_eq!(table["TBW102"]["perm"], 7);
        assert_eq!(table["broker-x"]["writeQueueNums"], 1);
        assert!(table["C1"].is_object());
        assert!(body["topicConfigSerializeWrapper"]["dataVersion"]["counter"].is_number());
        b.store.shutdown().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
