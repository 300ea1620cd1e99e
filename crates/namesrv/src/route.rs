//! The route table: clusters, broker names and their members, topics' queues, and broker
//! liveness. Plain data behind one lock; every method is a pure state change testable without
//! sockets.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use ferrocket_protocol::body::{
    perm, BrokerData, ClusterInfo, DataVersion, QueueData, TopicConfig, TopicRouteData,
};

/// Identifies the connection a broker registered over, so its close can drop the broker.
pub type ConnId = u64;

/// A live broker address.
#[derive(Debug, Clone)]
struct Live {
    cluster: String,
    broker_name: String,
    broker_id: i64,
    last_update: Instant,
    timeout: Duration,
    data_version: DataVersion,
    conn: ConnId,
    ha_server_addr: String,
}

/// A registration, as the request header and body carry it.
#[derive(Debug, Clone)]
pub struct Registration<'a> {
    pub cluster: &'a str,
    pub broker_name: &'a str,
    pub broker_addr: &'a str,
    pub broker_id: i64,
    pub ha_server_addr: &'a str,
    pub timeout: Option<Duration>,
    pub data_version: DataVersion,
    pub topics: &'a BTreeMap<String, TopicConfig>,
}

/// What a registering broker is told: its master's address and HA address (for slaves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterReply {
    pub master_addr: Option<String>,
    pub ha_server_addr: Option<String>,
}

/// A broker removed from the table, for logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub broker_addr: String,
    pub broker_id: i64,
    pub broker_name: String,
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct RouteTable {
    /// topic -> broker name -> queues.
    topics: BTreeMap<String, BTreeMap<String, QueueData>>,
    brokers: BTreeMap<String, BrokerData>,
    clusters: BTreeMap<String, BTreeSet<String>>,
    live: HashMap<String, Live>,
    default_timeout: Duration,
}

impl RouteTable {
    pub fn new(default_timeout: Duration) -> Self {
        RouteTable {
            default_timeout,
            ..Default::default()
        }
    }

    /// REGISTER_BROKER. Queue data come from masters only and are rebuilt when the master is new
    /// or its data version changed.
    pub fn register(&mut self, r: &Registration<'_>, conn: ConnId, now: Instant) -> RegisterReply {
        self.clusters
            .entry(r.cluster.to_string())
            .or_default()
            .insert(r.broker_name.to_string());
        let bd = self
            .brokers
            .entry(r.broker_name.to_string())
            .or_insert_with(|| BrokerData {
                cluster: r.cluster.to_string(),
                broker_name: r.broker_name.to_string(),
                broker_addrs: BTreeMap::new(),
            });
        bd.cluster = r.cluster.to_string();
        // An address re-registering under another id replaces its old entry (role switch).
        bd.broker_addrs
            .retain(|id, addr| !(addr == r.broker_addr && *id != r.broker_id));
        let first_time = bd
            .broker_addrs
            .insert(r.broker_id, r.broker_addr.to_string())
            .is_none();

        let prev = self.live.get(r.broker_addr).map(|l| l.data_version);
        let changed = prev.is_none_or(|dv| !dv.same_as(&r.data_version));
        if r.broker_id == 0 && (first_time || changed) {
            self.replace_topics_of(r.broker_name, r.topics);
        }
        self.live.insert(
            r.broker_addr.to_string(),
            Live {
                cluster: r.cluster.to_string(),
                broker_name: r.broker_name.to_string(),
                broker_id: r.broker_id,
                last_update: now,
                timeout: r.timeout.unwrap_or(self.default_timeout),
                data_version: r.data_version,
                conn,
                ha_server_addr: r.ha_server_addr.to_string(),
            },
        );
        let mut reply = RegisterReply::default();
        if r.broker_id != 0 {
            if let Some(master) = self
                .brokers
                .get(r.broker_name)
                .and_then(|b| b.broker_addrs.get(&0))
            {
                if let Some(l) = self.live.get(master) {
                    reply.master_addr = Some(master.clone());
                    reply.ha_server_addr = Some(l.ha_server_addr.clone());
                }
            }
        }
        reply
    }

    fn replace_topics_of(&mut self, broker_name: &str, topics: &BTreeMap<String, TopicConfig>) {
        for queues in self.topics.values_mut() {
            queues.remove(broker_name);
        }
        for (name, tc) in topics {
            self.topics.entry(name.clone()).or_default().insert(
                broker_name.to_string(),
                QueueData {
                    broker_name: broker_name.to_string(),
                    read_queue_nums: tc.read_queue_nums,
                    write_queue_nums: tc.write_queue_nums,
                    perm: tc.perm,
                    topic_sys_flag: tc.topic_sys_flag,
                },
            );
        }
        self.topics.retain(|_, q| !q.is_empty());
    }

    /// QUERY_DATA_VERSION: whether the broker's version differs from ours; refreshes liveness.
    pub fn query_data_version(
        &mut self,
        addr: &str,
        dv: &DataVersion,
        now: Instant,
    ) -> (bool, Option<DataVersion>) {
        match self.live.get_mut(addr) {
            Some(l) => {
                let changed = !l.data_version.same_as(dv);
                l.last_update = now;
                (changed, Some(l.data_version))
            }
            None => (true, None),
        }
    }

    /// UNREGISTER_BROKER, connection close and expiry all end here.
    pub fn remove_broker(&mut self, addr: &str, reason: &'static str) -> Option<Removed> {
        let live = self.live.remove(addr)?;
        let mut name_gone = false;
        if let Some(bd) = self.brokers.get_mut(&live.broker_name) {
            bd.broker_addrs.retain(|_, a| a != addr);
            name_gone = bd.broker_addrs.is_empty();
        }
        if name_gone {
            self.brokers.remove(&live.broker_name);
            if let Some(names) = self.clusters.get_mut(&live.cluster) {
                names.remove(&live.broker_name);
                if names.is_empty() {
                    self.clusters.remove(&live.cluster);
                }
            }
        }
        // Queues go with the last address of their broker name, as in RocketMQ: while only the
        // master is down, consumers still find the queues and read them from the slave, and
        // producers skip a broker name that has no master address.
        if name_gone {
            for queues in self.topics.values_mut() {
                queues.remove(&live.broker_name);
            }
            self.topics.retain(|_, q| !q.is_empty());
        }
        Some(Removed {
            broker_addr: addr.to_string(),
            broker_id: live.broker_id,
            broker_name: live.broker_name,
            reason,
        })
    }

    /// Drops every broker that registered over `conn`.
    pub fn connection_closed(&mut self, conn: ConnId) -> Vec<Removed> {
        let addrs: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| l.conn == conn)
            .map(|(a, _)| a.clone())
            .collect();
        addrs
            .iter()
            .filter_map(|a| self.remove_broker(a, "connection closed"))
            .collect()
    }

    /// Drops brokers silent for longer than their timeout.
    pub fn expire(&mut self, now: Instant) -> Vec<Removed> {
        let addrs: Vec<String> = self
            .live
            .iter()
            .filter(|(_, l)| now.duration_since(l.last_update) > l.timeout)
            .map(|(a, _)| a.clone())
            .collect();
        addrs
            .iter()
            .filter_map(|a| self.remove_broker(a, "no registration within the timeout"))
            .collect()
    }

    /// GET_ROUTEINFO_BY_TOPIC.
    pub fn route(&self, topic: &str) -> Option<TopicRouteData> {
        let queues = self.topics.get(topic)?;
        let broker_datas: Vec<BrokerData> = queues
            .keys()
            .filter_map(|name| self.brokers.get(name))
            .cloned()
            .collect();
        if broker_datas.is_empty() {
            return None;
        }
        Some(TopicRouteData {
            order_topic_conf: None,
            queue_datas: queues.values().cloned().collect(),
            broker_datas,
            filter_server_table: BTreeMap::new(),
        })
    }

    pub fn cluster_info(&self) -> ClusterInfo {
        ClusterInfo {
            broker_addr_table: self.brokers.clone(),
            cluster_addr_table: self.clusters.clone(),
        }
    }

    pub fn all_topics(&self) -> Vec<String> {
        self.topics.keys().cloned().collect()
    }

    pub fn topics_by_cluster(&self, cluster: &str) -> Vec<String> {
        let Some(names) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        self.topics
            .iter()
            .filter(|(_, q)| q.keys().any(|n| names.contains(n)))
            .map(|(t, _)| t.clone())
            .collect()
    }

    /// DELETE_TOPIC_IN_NAMESRV: the whole topic, or only its queues on `cluster`'s brokers.
    pub fn delete_topic(&mut self, topic: &str, cluster: Option<&str>) {
        match cluster.and_then(|c| self.clusters.get(c)) {
            Some(names) => {
                if let Some(q) = self.topics.get_mut(topic) {
                    q.retain(|n, _| !names.contains(n));
                    if q.is_empty() {
                        self.topics.remove(topic);
                    }
                }
            }
            None => {
                self.topics.remove(topic);
            }
        }
    }

    /// WIPE_WRITE_PERM_OF_BROKER / ADD_WRITE_PERM_OF_BROKER: returns how many topics changed.
    pub fn set_write_perm(&mut self, broker_name: &str, writable: bool) -> usize {
        let mut n = 0;
        for queues in self.topics.values_mut() {
            if let Some(q) = queues.get_mut(broker_name) {
                q.perm = if writable {
                    q.perm | perm::WRITE
                } else {
                    q.perm & !perm::WRITE
                };
                n += 1;
            }
        }
        n
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics(names: &[(&str, i32)]) -> BTreeMap<String, TopicConfig> {
        names
            .iter()
            .map(|(n, q)| (n.to_string(), TopicConfig::new(n, *q, *q, 6)))
            .collect()
    }

    fn reg<'a>(
        name: &'a str,
        addr: &'a str,
        id: i64,
        t: &'a BTreeMap<String, TopicConfig>,
        c: i64,
    ) -> Registration<'a> {
        Registration {
            cluster: "DefaultCluster",
            broker_name: name,
            broker_addr: addr,
            broker_id: id,
            ha_server_addr: addr,
            timeout: None,
            data_version: DataVersion {
                counter: c,
                timestamp: 1,
                state_version: None,
            },
            topics: t,
        }
    }

    #[test]
    fn master_and_slave_routes() {
        let mut rt = RouteTable::new(Duration::from_secs(120));
        let now = Instant::now();
        let t = topics(&[("T", 4)]);
        let empty = BTreeMap::new();
        assert_eq!(
            rt.register(&reg("a", "1.1.1.1:10911", 0, &t, 1), 1, now),
            RegisterReply::default()
        );
        let reply = rt.register(&reg("a", "1.1.1.2:10911", 1, &empty, 1), 2, now);
        assert_eq!(reply.master_addr.as_deref(), Some("1.1.1.1:10911"));
        let r = rt.route("T").unwrap();
        assert_eq!(r.broker_datas[0].broker_addrs.len(), 2);
        assert_eq!(r.queue_datas.len(), 1);
        assert_eq!(r.queue_datas[0].write_queue_nums, 4);
        assert!(rt.route("nope").is_none());
        // The slave's empty topic table does not wipe the master's queues.
        assert!(rt.route("T").is_some());
    }

    #[test]
    fn connection_close_and_expiry_remove_brokers() {
        let mut rt = RouteTable::new(Duration::from_secs(10));
        let now = Instant::now();
        let t = topics(&[("T", 4)]);
        rt.register(&reg("a", "1.1.1.1:1", 0, &t, 1), 1, now);
        rt.register(&reg("b", "2.2.2.2:1", 0, &t, 1), 2, now);
        assert_eq!(rt.route("T").unwrap().queue_datas.len(), 2);
        assert_eq!(rt.connection_closed(1).len(), 1);
        assert_eq!(rt.route("T").unwrap().queue_datas.len(), 1);
        assert_eq!(rt.expire(now + Duration::from_secs(11)).len(), 1);
        assert!(rt.route("T").is_none());
        assert!(rt.cluster_info().cluster_addr_table.is_empty());
    }

    #[test]
    fn role_switch_replaces_old_id() {
        let mut rt = RouteTable::new(Duration::from_secs(120));
        let now = Instant::now();
        let t = topics(&[("T", 4)]);
        rt.register(&reg("a", "1.1.1.2:1", 1, &t, 1), 1, now);
        rt.register(&reg("a", "1.1.1.2:1", 0, &t, 1), 1, now);
        let bd = &rt.cluster_info().broker_addr_table["a"];
        assert_eq!(bd.broker_addrs.len(), 1);
        assert_eq!(bd.master_addr(), Some("1.1.1.2:1"));
    }

    #[test]
    fn write_perm_and_delete() {
        let mut rt = RouteTable::new(Duration::from_secs(120));
        let t = topics(&[("T", 4), ("U", 2)]);
        rt.register(&reg("a", "1.1.1.1:1", 0, &t, 1), 1, Instant::now());
        assert_eq!(rt.set_write_perm("a", false), 2);
        assert_eq!(rt.route("T").unwrap().queue_datas[0].perm, 4);
        assert_eq!(rt.set_write_perm("a", true), 2);
        assert_eq!(rt.route("T").unwrap().queue_datas[0].perm, 6);
        assert_eq!(rt.topics_by_cluster("DefaultCluster"), vec!["T", "U"]);
        rt.delete_topic("T", None);
        assert_eq!(rt.all_topics(), vec!["U"]);
    }
}
