//! Producer and consumer registrations learnt from heartbeats: who is in which group over which
//! connection, with which subscriptions. Entries go when the client unregisters, its connection
//! closes, or after `channel_expired` without a heartbeat. Every mutation returns the consumer
//! groups whose membership changed, so the caller can push NOTIFY_CONSUMER_IDS_CHANGED.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::body::{Connection, ConsumerConnection, ConsumerData, HeartbeatData, SubscriptionData};
use crate::connection::ConnId;

/// One client on one connection.
#[derive(Debug, Clone)]
pub struct ClientChannel {
    pub conn: ConnId,
    pub client_id: String,
    pub language: String,
    pub version: i32,
    pub addr: SocketAddr,
    pub last_update: Instant,
}

/// A consumer group's members and subscriptions.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupInfo {
    pub consume_type: String,
    pub message_model: String,
    pub consume_from_where: String,
    pub subscriptions: HashMap<String, SubscriptionData>,
    pub channels: HashMap<ConnId, ClientChannel>,
}

#[derive(Default)]
struct Tables {
    producers: HashMap<String, HashMap<ConnId, ClientChannel>>,
    consumers: HashMap<String, ConsumerGroupInfo>,
}

/// The client tables.
#[derive(Default)]
pub struct ClientManager {
    t: Mutex<Tables>,
}

/// Who sent a heartbeat.
#[derive(Debug, Clone)]
pub struct Peer {
    pub conn: ConnId,
    pub addr: SocketAddr,
    pub language: String,
    pub version: i32,
}

impl ClientManager {
    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.t.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers everything a heartbeat names; returns the consumer groups that gained a member.
    pub fn heartbeat(&self, peer: &Peer, hb: &HeartbeatData, now: Instant) -> Vec<String> {
        let chan = ClientChannel {
            conn: peer.conn,
            client_id: hb.client_id.clone(),
            language: peer.language.clone(),
            version: peer.version,
            addr: peer.addr,
            last_update: now,
        };
        let mut t = self.lock();
        for p in &hb.producer_data_set {
            t.producers
                .entry(p.group_name.clone())
                .or_default()
                .insert(peer.conn, chan.clone());
        }
        let mut changed = Vec::new();
        for c in &hb.consumer_data_set {
            if register_consumer(&mut t, c, chan.clone()) {
                changed.push(c.group_name.clone());
            }
        }
        changed
    }

    /// UNREGISTER_CLIENT; returns the consumer group if it lost a member.
    pub fn unregister(
        &self,
        conn: ConnId,
        producer_group: Option<&str>,
        consumer_group: Option<&str>,
    ) -> Vec<String> {
        let mut t = self.lock();
        if let Some(g) = producer_group {
            if let Some(m) = t.producers.get_mut(g) {
                m.remove(&conn);
                if m.is_empty() {
                    t.producers.remove(g);
                }
            }
        }
        let mut changed = Vec::new();
        if let Some(g) = consumer_group {
            if remove_consumer(&mut t, g, conn) {
                changed.push(g.to_string());
            }
        }
        changed
    }

    /// A connection closed: drops everything registered over it.
    pub fn connection_closed(&self, conn: ConnId) -> Vec<String> {
        let mut t = self.lock();
        t.producers.retain(|_, m| {
            m.remove(&conn);
            !m.is_empty()
        });
        let groups: Vec<String> = t
            .consumers
            .iter()
            .filter(|(_, g)| g.channels.contains_key(&conn))
            .map(|(k, _)| k.clone())
            .collect();
        for g in &groups {
            remove_consumer(&mut t, g, conn);
        }
        groups
    }

    /// Drops channels without a heartbeat for `timeout`; returns (changed groups, their conns).
    pub fn scan_expired(&self, now: Instant, timeout: Duration) -> (Vec<String>, Vec<ConnId>) {
        let mut t = self.lock();
        let mut expired_conns = Vec::new();
        let stale = |c: &ClientChannel| now.saturating_duration_since(c.last_update) > timeout;
        t.producers.retain(|_, m| {
            m.retain(|id, c| {
                if stale(c) {
                    expired_conns.push(*id);
                    false
                } else {
                    true
                }
            });
            !m.is_empty()
        });
        let mut changed = Vec::new();
        let mut gone = Vec::new();
        for (name, g) in t.consumers.iter_mut() {
            let before = g.channels.len();
            g.channels.retain(|id, c| {
                if stale(c) {
                    expired_conns.push(*id);
                    false
                } else {
                    true
                }
            });
            if g.channels.len() != before {
                changed.push(name.clone());
            }
            if g.channels.is_empty() {
                gone.push(name.clone());
            }
        }
        for g in gone {
            t.consumers.remove(&g);
        }
        expired_conns.sort_unstable();
        expired_conns.dedup();
        (changed, expired_conns)
    }

    /// Client ids of a consumer group, sorted.
    pub fn consumer_ids(&self, group: &str) -> Option<Vec<String>> {
        let t = self.lock();
        let g = t.consumers.get(group)?;
        let mut ids: Vec<String> = g.channels.values().map(|c| c.client_id.clone()).collect();
        ids.sort();
        ids.dedup();
        Some(ids)
    }

    /// The connection of the producer whose client id is `client_id` (any group), the newest
    /// heartbeat first (RocketMQ's `ProducerManager.findChannel`).
    pub fn producer_conn_of(&self, client_id: &str) -> Option<ConnId> {
        self.lock()
            .producers
            .values()
            .flat_map(|m| m.values())
            .filter(|c| c.client_id == client_id)
            .max_by_key(|c| c.last_update)
            .map(|c| c.conn)
    }

    /// Connections of a producer group's members.
    pub fn producer_conns(&self, group: &str) -> Vec<ConnId> {
        self.lock()
            .producers
            .get(group)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Connections of a consumer group's members.
    pub fn consumer_conns(&self, group: &str) -> Vec<ConnId> {
        self.lock()
            .consumers
            .get(group)
            .map(|g| g.channels.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The group's subscription of `topic` (from heartbeats).
    pub fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        self.lock()
            .consumers
            .get(group)?
            .subscriptions
            .get(topic)
            .cloned()
    }

    /// True when the group has any registered consumer.
    pub fn has_consumer_group(&self, group: &str) -> bool {
        self.lock().consumers.contains_key(group)
    }

    /// GET_CONSUMER_CONNECTION_LIST body.
    pub fn consumer_connection(&self, group: &str) -> Option<ConsumerConnection> {
        let t = self.lock();
        let g = t.consumers.get(group)?;
        let mut set: Vec<Connection> = g
            .channels
            .values()
            .map(|c| Connection {
                client_id: c.client_id.clone(),
                client_addr: c.addr.to_string(),
                language: c.language.clone(),
                version: c.version,
            })
            .collect();
        set.sort();
        Some(ConsumerConnection {
            connection_set: set,
            subscription_table: g
                .subscriptions
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            consume_type: g.consume_type.clone(),
            message_model: g.message_model.clone(),
            consume_from_where: g.consume_from_where.clone(),
        })
    }

    /// Connections of a producer group, if it has any.
    pub fn producer_connections(&self, group: &str) -> Option<Vec<Connection>> {
        let t = self.lock();
        let m = t.producers.get(group)?;
        let mut set: Vec<Connection> = m
            .values()
            .map(|c| Connection {
                client_id: c.client_id.clone(),
                client_addr: c.addr.to_string(),
                language: c.language.clone(),
                version: c.version,
            })
            .collect();
        set.sort();
        Some(set)
    }

    /// Topics the group subscribes to.
    pub fn subscribed_topics(&self, group: &str) -> Vec<String> {
        self.lock()
            .consumers
            .get(group)
            .map(|g| g.subscriptions.keys().cloned().collect())
            .unwrap_or_default()
    }
}

fn register_consumer(t: &mut Tables, c: &ConsumerData, chan: ClientChannel) -> bool {
    let g = t.consumers.entry(c.group_name.clone()).or_default();
    g.consume_type = c.consume_type.clone();
    g.message_model = c.message_model.clone();
    g.consume_from_where = c.consume_from_where.clone();
    let mut subs = HashMap::new();
    for s in &c.subscription_data_set {
        subs.insert(s.topic.clone(), s.clone());
    }
    g.subscriptions = subs;
    let conn = chan.conn;
    g.channels.insert(conn, chan).is_none()
}

fn remove_consumer(t: &mut Tables, group: &str, conn: ConnId) -> bool {
    let Some(g) = t.consumers.get_mut(group) else {
        return false;
    };
    let removed = g.channels.remove(&conn).is_some();
    if g.channels.is_empty() {
        t.consumers.remove(group);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrocket_protocol::body::client::ProducerData;

    fn hb(client: &str, group: &str) -> HeartbeatData {
        HeartbeatData {
            client_id: client.into(),
            producer_data_set: vec![ProducerData {
                group_name: "P".into(),
            }],
            consumer_data_set: vec![ConsumerData {
                group_name: group.into(),
                consume_type: "CONSUME_PASSIVELY".into(),
                message_model: "CLUSTERING".into(),
                consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
                subscription_data_set: vec![SubscriptionData {
                    topic: "T".into(),
                    sub_string: "*".into(),
                    ..Default::default()
                }],
                unit_mode: false,
            }],
        }
    }

    fn peer(conn: ConnId) -> Peer {
        Peer {
            conn,
            addr: "127.0.0.1:1".parse().unwrap(),
            language: "JAVA".into(),
            version: 409,
        }
    }

    #[test]
    fn membership_changes() {
        let m = ClientManager::default();
        let t0 = Instant::now();
        assert_eq!(m.heartbeat(&peer(1), &hb("c1", "G"), t0), vec!["G"]);
        assert!(m.heartbeat(&peer(1), &hb("c1", "G"), t0).is_empty());
        assert_eq!(m.heartbeat(&peer(2), &hb("c2", "G"), t0), vec!["G"]);
        assert_eq!(m.consumer_ids("G").unwrap(), vec!["c1", "c2"]);
        assert_eq!(m.subscription("G", "T").unwrap().sub_string, "*");
        assert_eq!(m.connection_closed(1), vec!["G"]);
        assert_eq!(m.consumer_ids("G").unwrap(), vec!["c2"]);
        let later = t0 + Duration::from_secs(121);
        let (changed, conns) = m.scan_expired(later, Duration::from_secs(120));
        assert_eq!(changed, vec!["G"]);
        assert_eq!(conns, vec![2]);
        assert!(m.consumer_ids("G").is_none());
    }
}
