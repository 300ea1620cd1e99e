//! Routing: the name server list, topic routes fetched from it with failover, cached and
//! refreshed (every 30 s by the owners of a [`Router`], and at once after a routing error).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use ferrocket_protocol::body::{BrokerData, ClusterInfo, TopicRouteData};
use ferrocket_protocol::{fastjson, RemotingCommand, RequestCode, ResponseCode};

use crate::error::{ClientError, Result};
use crate::transport::Pool;

/// How long a cached route is trusted before it is fetched again.
pub const ROUTE_REFRESH: Duration = Duration::from_secs(30);

/// A queue of a topic on one broker.
///
/// ```
/// use ferrocket_client::MessageQueue;
/// let q = MessageQueue { topic: "T".into(), broker_name: "broker-a".into(), queue_id: 3 };
/// assert_eq!(q.to_string(), "T@broker-a#3");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageQueue {
    pub topic: String,
    pub broker_name: String,
    pub queue_id: i32,
}

impl std::fmt::Display for MessageQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}#{}", self.topic, self.broker_name, self.queue_id)
    }
}

/// Parses a name server list: `host:port;host:port`, or `NAMESRV_ADDR` when `list` is empty.
///
/// ```
/// let l = ferrocket_client::route::namesrv_list(Some("10.0.0.1:9876; 10.0.0.2:9876")).unwrap();
/// assert_eq!(l, ["10.0.0.1:9876", "10.0.0.2:9876"]);
/// ```
pub fn namesrv_list(list: Option<&str>) -> Result<Vec<String>> {
    let raw = match list {
        Some(l) if !l.trim().is_empty() => l.to_string(),
        _ => std::env::var("NAMESRV_ADDR").map_err(|_| {
            ClientError::Invalid(
                "no name server: pass one (-n host:port) or set NAMESRV_ADDR".into(),
            )
        })?,
    };
    let addrs: Vec<String> = raw
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    if addrs.is_empty() {
        return Err(ClientError::Invalid(format!(
            "empty name server list `{raw}`"
        )));
    }
    Ok(addrs)
}

#[derive(Debug)]
struct Cached {
    route: Arc<TopicRouteData>,
    fetched: Instant,
}

/// Name servers and the route cache shared by a client's producers, consumers and admin.
///
/// ```no_run
/// # async fn demo() -> Result<(), ferrocket_client::ClientError> {
/// use ferrocket_client::route::Router;
/// use ferrocket_client::transport::Pool;
/// use std::time::Duration;
/// let router = Router::new(vec!["127.0.0.1:9876".into()], Pool::new(Duration::from_secs(3), None), Duration::from_secs(3));
/// let route = router.route("TopicTest").await?;
/// println!("{} brokers", route.broker_datas.len());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Router {
    namesrvs: Arc<Vec<String>>,
    /// Index of the name server that answered last (tried first next time).
    current: Arc<AtomicUsize>,
    routes: Arc<RwLock<HashMap<String, Cached>>>,
    pool: Pool,
    timeout: Duration,
}

impl Router {
    pub fn new(namesrvs: Vec<String>, pool: Pool, timeout: Duration) -> Self {
        Router {
            namesrvs: Arc::new(namesrvs),
            current: Arc::default(),
            routes: Arc::default(),
            pool,
            timeout,
        }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn namesrvs(&self) -> &[String] {
        &self.namesrvs
    }

    /// Sends `cmd` to the name servers in turn until one answers (any code).
    pub async fn namesrv_invoke(&self, cmd: RemotingCommand) -> Result<RemotingCommand> {
        let n = self.namesrvs.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut last = None;
        for i in 0..n {
            let idx = (start + i) % n;
            let addr = &self.namesrvs[idx];
            match self.pool.invoke(addr, cmd.clone(), self.timeout).await {
                Ok(r) => {
                    self.current.store(idx, Ordering::Relaxed);
                    return Ok(r);
                }
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "name server failed; trying the next");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Invalid("no name server".into())))
    }

    /// The route of `topic`, from the cache when younger than [`ROUTE_REFRESH`].
    pub async fn route(&self, topic: &str) -> Result<Arc<TopicRouteData>> {
        if let Some(c) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(topic)
        {
            if c.fetched.elapsed() < ROUTE_REFRESH {
                return Ok(Arc::clone(&c.route));
            }
        }
        self.refresh(topic).await
    }

    /// Fetches the route of `topic` now.
    pub async fn refresh(&self, topic: &str) -> Result<Arc<TopicRouteData>> {
        let req = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC)
            .with_ext("topic", topic)
            .with_ext("acceptStandardJsonOnly", true);
        let r = self.namesrv_invoke(req).await?;
        if r.code == ResponseCode::TOPIC_NOT_EXIST as i32 {
            self.forget(topic);
            return Err(ClientError::NoRoute(topic.to_string()));
        }
        if r.code != 0 {
            return Err(ClientError::broker(
                "name server",
                r.code,
                r.remark.as_deref(),
            ));
        }
        let route: TopicRouteData =
            fastjson::from_slice(&r.body).map_err(|e| ClientError::Decode {
                what: "TopicRouteData",
                reason: e.to_string(),
            })?;
        let route = Arc::new(route);
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                topic.to_string(),
                Cached {
                    route: Arc::clone(&route),
                    fetched: Instant::now(),
                },
            );
        Ok(route)
    }

    /// Drops the cached route so the next use fetches it (after a routing error).
    pub fn forget(&self, topic: &str) {
        self.routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }

    /// Topics with a cached route.
    pub fn cached_topics(&self) -> Vec<String> {
        self.routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub async fn cluster_info(&self) -> Result<ClusterInfo> {
        let r = self
            .namesrv_invoke(RemotingCommand::request(
                RequestCode::GET_BROKER_CLUSTER_INFO,
            ))
            .await?;
        if r.code != 0 {
            return Err(ClientError::broker(
                "name server",
                r.code,
                r.remark.as_deref(),
            ));
        }
        fastjson::from_slice(&r.body).map_err(|e| ClientError::Decode {
            what: "ClusterInfo",
            reason: e.to_string(),
        })
    }
}

/// Writable queues of a route, on brokers that have a master.
pub fn write_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut out = Vec::new();
    for q in &route.queue_datas {
        let has_master = route
            .broker_datas
            .iter()
            .any(|b| b.broker_name == q.broker_name && b.broker_addrs.contains_key(&0));
        if !has_master || q.perm & 0x2 == 0 {
            continue;
        }
        for id in 0..q.write_queue_nums {
            out.push(MessageQueue {
                topic: topic.to_string(),
                broker_name: q.broker_name.clone(),
                queue_id: id,
            });
        }
    }
    out.sort();
    out
}

/// Readable queues of a route.
pub fn read_queues(topic: &str, route: &TopicRouteData) -> Vec<MessageQueue> {
    let mut out = Vec::new();
    for q in &route.queue_datas {
        if q.perm & 0x4 == 0 {
            continue;
        }
        for id in 0..q.read_queue_nums {
            out.push(MessageQueue {
                topic: topic.to_string(),
                broker_name: q.broker_name.clone(),
                queue_id: id,
            });
        }
    }
    out.sort();
    out
}

/// The broker data of `broker_name` in a route.
pub fn broker<'a>(route: &'a TopicRouteData, broker_name: &str) -> Option<&'a BrokerData> {
    route
        .broker_datas
        .iter()
        .find(|b| b.broker_name == broker_name)
}

/// The master's address, else (for reads while the master is down) the lowest-id slave's.
pub fn read_addr(route: &TopicRouteData, broker_name: &str) -> Option<String> {
    let b = broker(route, broker_name)?;
    b.broker_addrs.values().next().cloned()
}

/// The master's address.
pub fn master_addr(route: &TopicRouteData, broker_name: &str) -> Option<String> {
    broker(route, broker_name)?.broker_addrs.get(&0).cloned()
}
