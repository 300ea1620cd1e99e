//! What producers, consumers and the admin of one client share: the connection pool, the router,
//! the client id, unique message ids, and the hooks that requests from brokers reach.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ferrocket_protocol::message::UniqIdGenerator;
use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
use tokio::sync::Notify;

use crate::error::{ClientError, Result};
use crate::route::{namesrv_list, Router};
use crate::transport::{Pool, ServerRequestHandler};

/// Settings common to producers, consumers and the admin.
///
/// ```
/// use ferrocket_client::ClientConfig;
/// let c = ClientConfig::new("127.0.0.1:9876").timeout(std::time::Duration::from_secs(3));
/// assert_eq!(c.namesrv_addr.as_deref(), Some("127.0.0.1:9876"));
/// ```
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `host:port;host:port`; `None` reads `NAMESRV_ADDR`.
    pub namesrv_addr: Option<String>,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Part of the client id (`ip@pid#name`); the default, `DEFAULT`, becomes a value unique to
    /// each client, as in Java, so several clients of one process stay distinct.
    pub instance_name: String,
    /// How request headers are serialized; `None` reads `ROCKETMQ_SERIALIZE_TYPE` (`JSON` or
    /// `ROCKETMQ`, as Java clients do) and falls back to JSON.
    pub serialize_type: Option<SerializeType>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            namesrv_addr: None,
            timeout: Duration::from_secs(3),
            instance_name: "DEFAULT".into(),
            serialize_type: None,
        }
    }
}

impl ClientConfig {
    pub fn new(namesrv_addr: impl Into<String>) -> Self {
        ClientConfig {
            namesrv_addr: Some(namesrv_addr.into()),
            ..Default::default()
        }
    }

    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    pub fn instance_name(mut self, n: impl Into<String>) -> Self {
        self.instance_name = n.into();
        self
    }

    /// Serializes request headers as `t` instead of what `ROCKETMQ_SERIALIZE_TYPE` says.
    pub fn serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = Some(t);
        self
    }

    /// The serialization requests use: the one set, else `ROCKETMQ_SERIALIZE_TYPE`, else JSON.
    pub fn resolved_serialize_type(&self) -> Result<SerializeType> {
        if let Some(t) = self.serialize_type {
            return Ok(t);
        }
        match std::env::var("ROCKETMQ_SERIALIZE_TYPE") {
            Err(_) => Ok(SerializeType::Json),
            Ok(v) => parse_serialize_type(&v).ok_or_else(|| {
                ClientError::Invalid(format!(
                    "ROCKETMQ_SERIALIZE_TYPE={v}: expected JSON or ROCKETMQ"
                ))
            }),
        }
    }
}

/// `JSON` or `ROCKETMQ` (any case), the names RocketMQ gives its two header serializations.
///
/// ```
/// use ferrocket_client::{parse_serialize_type, SerializeType};
/// assert_eq!(parse_serialize_type("rocketmq"), Some(SerializeType::RocketMq));
/// assert_eq!(parse_serialize_type("JSON"), Some(SerializeType::Json));
/// assert_eq!(parse_serialize_type("xml"), None);
/// ```
pub fn parse_serialize_type(s: &str) -> Option<SerializeType> {
    match s.trim().to_ascii_uppercase().as_str() {
        "JSON" => Some(SerializeType::Json),
        "ROCKETMQ" => Some(SerializeType::RocketMq),
        _ => None,
    }
}

type TxCheck = Arc<dyn Fn(&str, RemotingCommand) + Send + Sync>;

/// Callbacks reached by requests from brokers.
#[derive(Default)]
pub(crate) struct Hooks {
    /// Consumer groups to rebalance at once on NOTIFY_CONSUMER_IDS_CHANGED.
    pub rebalance: HashMap<String, Arc<Notify>>,
    /// CHECK_TRANSACTION_STATE, by producer group.
    pub tx_check: HashMap<String, TxCheck>,
    /// Producer groups announced in heartbeats.
    pub producers: std::collections::BTreeSet<String>,
    /// Consumer data (RocketMQ's `ConsumerData` JSON) announced in heartbeats, by group.
    pub consumers: HashMap<String, serde_json::Value>,
    /// Requests waiting for their reply (request-reply).
    pub replies: Arc<crate::reply::Waiting>,
}

/// The shared core of a client.
pub(crate) struct Instance {
    pub router: Router,
    pub client_id: String,
    pub ids: UniqIdGenerator,
    pub hooks: Arc<RwLock<Hooks>>,
    /// The connection (by identity) each broker last heard our heartbeat on: producers announce
    /// themselves on every new connection, e.g. after a broker restart.
    pub greeted: std::sync::Mutex<HashMap<String, usize>>,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// The address this host reaches `peer` from (no packet is sent).
fn local_ip_towards(peer: &str) -> IpAddr {
    UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| {
            s.connect(peer)?;
            s.local_addr()
        })
        .map(|a| a.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

impl Instance {
    pub fn new(config: &ClientConfig) -> Result<Arc<Instance>> {
        let namesrvs = namesrv_list(config.namesrv_addr.as_deref())?;
        let hooks: Arc<RwLock<Hooks>> = Arc::default();
        let h = Arc::clone(&hooks);
        let handler: ServerRequestHandler = Arc::new(move |addr, cmd| on_request(&h, addr, cmd));
        let pool = Pool::new(config.timeout, Some(handler))
            .serialize_type(config.resolved_serialize_type()?);
        let ip = local_ip_towards(&namesrvs[0]);
        let pid = std::process::id();
        // As Java (4.9.3 on): the default instance name becomes unique per client, so that two
        // producers or consumers of one process are two clients to the broker (a consumer
        // group's rebalance and request-reply's push address clients by id).
        let client_id = if config.instance_name == "DEFAULT" {
            static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{ip}@{pid}#{}", nanos.wrapping_add(n))
        } else {
            format!("{ip}@{pid}#{}", config.instance_name)
        };
        let salt = ferrocket_protocol::message::java_string_hash(&client_id);
        Ok(Arc::new(Instance {
            router: Router::new(namesrvs, pool, config.timeout),
            client_id,
            ids: UniqIdGenerator::new(ip, pid, salt),
            hooks,
            greeted: Default::default(),
        }))
    }

    /// Requests waiting for their reply.
    pub fn replies(&self) -> Arc<crate::reply::Waiting> {
        Arc::clone(&self.hooks.read().unwrap_or_else(|e| e.into_inner()).replies)
    }

    pub fn pool(&self) -> &Pool {
        self.router.pool()
    }

    pub fn timeout(&self) -> Duration {
        self.router.timeout()
    }

    /// The HEART_BEAT body: this client's producer groups and consumer data.
    pub fn heartbeat_body(&self) -> Vec<u8> {
        let hooks = self.hooks.read().unwrap_or_else(|e| e.into_inner());
        let producers: Vec<_> = hooks
            .producers
            .iter()
            .map(|g| serde_json::json!({ "groupName": g }))
            .collect();
        let consumers: Vec<_> = hooks.consumers.values().cloned().collect();
        serde_json::to_vec(&serde_json::json!({
            "clientID": self.client_id,
            "producerDataSet": producers,
            "consumerDataSet": consumers,
        }))
        .unwrap_or_default()
    }

    /// Sends a heartbeat to `addr`.
    pub async fn heartbeat_to(&self, addr: &str) -> Result<()> {
        let req =
            RemotingCommand::request(RequestCode::HEART_BEAT).with_body(self.heartbeat_body());
        self.pool()
            .call(addr, req, self.timeout())
            .await
            .map(|_| ())
    }

    /// Heartbeats `addr` once, so that the broker knows this client before its first request
    /// (transaction checks find producers through heartbeats).
    pub async fn greet(&self, addr: &str) {
        let Ok(conn) = self.pool().get(addr).await else {
            return;
        };
        let id = Arc::as_ptr(&conn) as usize;
        let new = self
            .greeted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(addr.to_string(), id)
            != Some(id);
        if new && self.heartbeat_to(addr).await.is_err() {
            self.forget_greeting(addr);
        }
    }

    /// Forgets that `addr` was greeted (its connection failed).
    pub fn forget_greeting(&self, addr: &str) {
        self.greeted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(addr);
    }

    /// Heartbeats every broker (masters and slaves) of every cached route.
    pub async fn heartbeat_all(&self) {
        let mut addrs = std::collections::BTreeSet::new();
        for topic in self.router.cached_topics() {
            if let Ok(route) = self.router.route(&topic).await {
                for b in &route.broker_datas {
                    addrs.extend(b.broker_addrs.values().cloned());
                }
            }
        }
        for addr in addrs {
            if let Err(e) = self.heartbeat_to(&addr).await {
                tracing::debug!(%addr, error = %e, "heartbeat failed");
            }
        }
    }

    /// Starts the 30 s heartbeat and route refresh; it ends when the instance is dropped.
    pub fn start_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inst) = weak.upgrade() else { return };
                for topic in inst.router.cached_topics() {
                    let _ = inst.router.refresh(&topic).await;
                }
                inst.heartbeat_all().await;
            }
        });
    }

    /// UNREGISTER_CLIENT for a group, at every broker we talk to.
    pub async fn unregister(&self, producer_group: Option<&str>, consumer_group: Option<&str>) {
        for addr in self.pool().addrs().await {
            if self.router.namesrvs().contains(&addr) {
                continue;
            }
            let mut req = RemotingCommand::request(RequestCode::UNREGISTER_CLIENT)
                .with_ext("clientID", &self.client_id);
            if let Some(g) = producer_group {
                req = req.with_ext("producerGroup", g);
            }
            if let Some(g) = consumer_group {
                req = req.with_ext("consumerGroup", g);
            }
            let _ = self.pool().invoke(&addr, req, self.timeout()).await;
        }
    }
}

fn on_request(hooks: &RwLock<Hooks>, addr: &str, cmd: RemotingCommand) -> Option<RemotingCommand> {
    let hooks = hooks.read().unwrap_or_else(|e| e.into_inner());
    match RequestCode::from_i32(cmd.code) {
        Some(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED) => {
            if let Some(n) = cmd
                .ext("consumerGroup")
                .and_then(|g| hooks.rebalance.get(g))
            {
                n.notify_one();
            }
            None
        }
        Some(RequestCode::PUSH_REPLY_MESSAGE_TO_CLIENT) => {
            Some(crate::reply::on_push(&hooks.replies, &cmd))
        }
        Some(RequestCode::CHECK_TRANSACTION_STATE) => {
            let group = cmd.ext("producerGroup").map(str::to_string).or_else(|| {
                // The producer group travels in the message's properties.
                let msg = ferrocket_protocol::message::decode(&cmd.body).ok()?;
                msg.properties
                    .get(ferrocket_protocol::message::names::PRODUCER_GROUP)
                    .map(str::to_string)
            });
            let check = group
                .and_then(|g| hooks.tx_check.get(&g).cloned())
                .or_else(|| hooks.tx_check.values().next().cloned());
            if let Some(check) = check {
                check(addr, cmd);
            }
            None
        }
        _ => Some(RemotingCommand::response_to(
            &cmd,
            ferrocket_protocol::ResponseCode::REQUEST_CODE_NOT_SUPPORTED,
        )),
    }
}
