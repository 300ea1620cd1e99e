//! A DLedger group as processes: a name server and three `mqbroker` nodes of one
//! `dLegerGroup`, each on its own loopback address (127.0.N.11-13), with helpers to find the
//! leader and read what each node serves. Used by the broker's tests and its failover benchmark.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_protocol::message::{decode, peek_total_size};
use ferrocket_protocol::{RemotingCommand, RequestCode};

use crate::{bin_path, free_port_on, wait_for_port, ProcessGuard, RawClient, TempDir};

/// A PULL_MESSAGE of 32 messages with an explicit `*` subscription.
fn pull_req(topic: &str, queue_id: i32, offset: i64) -> RemotingCommand {
    RemotingCommand::request(RequestCode::PULL_MESSAGE)
        .with_ext("consumerGroup", "check")
        .with_ext("topic", topic)
        .with_ext("queueId", queue_id)
        .with_ext("queueOffset", offset)
        .with_ext("maxMsgNums", 32)
        .with_ext("sysFlag", 0x4)
        .with_ext("commitOffset", 0)
        .with_ext("suspendTimeoutMillis", 0)
        .with_ext("subscription", "*")
        .with_ext("subVersion", 0)
        .with_ext("expressionType", "TAG")
}

/// (queue offset, body) of each record of a pull body.
fn records(body: &[u8]) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let Some((size, _)) = peek_total_size(&body[pos..]) else {
            break;
        };
        let end = pos + size.max(0) as usize;
        let Some(Ok(m)) = body.get(pos..end).map(decode) else {
            break;
        };
        out.push((
            m.queue_offset,
            String::from_utf8_lossy(&m.body).into_owned(),
        ));
        pos = end;
    }
    out
}

pub const GROUP: &str = "RaftNode00";
pub const TOPIC: &str = "RaftTopic";

pub struct Node {
    pub ip: String,
    pub port: u16,
    pub conf: PathBuf,
    pub log: PathBuf,
    pub store: PathBuf,
    pub guard: Option<ProcessGuard>,
}

impl Node {
    pub fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// Starts the node's `mqbroker`; its log level is `FERROCKET_TEST_LOG` (a `RUST_LOG`
    /// filter, e.g. `info,openraft=debug`) or `info`.
    pub fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        self.guard = Some(ProcessGuard::spawn(
            "mqbroker",
            Command::new(bin_path("mqbroker"))
                .arg("-c")
                .arg(&self.conf)
                .env(
                    "RUST_LOG",
                    std::env::var("FERROCKET_TEST_LOG").unwrap_or_else(|_| "info".into()),
                )
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        ));
        wait_for_port(&self.addr(), Duration::from_secs(30));
    }

    pub fn kill(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.kill();
        }
    }

    /// GET_BROKER_RUNTIME_INFO's table, empty when the node does not answer.
    pub fn runtime(&self) -> BTreeMap<String, String> {
        let Ok(mut c) = RawClient::connect(&self.addr()) else {
            return BTreeMap::new();
        };
        c.set_read_timeout(Duration::from_secs(2));
        let Ok(r) = c.call(RemotingCommand::request(
            RequestCode::GET_BROKER_RUNTIME_INFO,
        )) else {
            return BTreeMap::new();
        };
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
        v["table"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub struct Group {
    pub nodes: Vec<Node>,
    pub namesrv: String,
    _ns: ProcessGuard,
    _dir: TempDir,
}

pub fn conf_text(ip: &str, port: u16, ns: &str, store: &Path, peers: &str, id: usize) -> String {
    format!(
        "brokerClusterName=RaftCluster\nbrokerName={GROUP}\nbrokerIP1={ip}\nlistenPort={port}\n\
         namesrvAddr={ns}\nstorePathRootDir={}\nmappedFileSizeCommitLog=16777216\n\
         enableDLegerCommitLog=true\ndLegerGroup={GROUP}\ndLegerPeers={peers}\ndLegerSelfId=n{id}\n\
         sendMessageThreadPoolNums=4\n",
        store.display()
    )
}

pub fn broker_port(ip: &str) -> u16 {
    Ports::default().broker(ip)
}

/// Picks ports that are free now and distinct from each other (a port released by one pick
/// could otherwise come back for the next).
#[derive(Default)]
pub struct Ports(std::collections::HashSet<(String, u16)>);

impl Ports {
    /// A free port.
    pub fn any(&mut self, ip: &str) -> u16 {
        loop {
            let p = free_port_on(ip);
            if self.0.insert((ip.to_string(), p)) {
                return p;
            }
        }
    }

    /// A broker listen port: it and `port - 2` free and unused.
    pub fn broker(&mut self, ip: &str) -> u16 {
        loop {
            let p = free_port_on(ip);
            let fast = p.wrapping_sub(2);
            if p > 1030
                && !self.0.contains(&(ip.to_string(), p))
                && !self.0.contains(&(ip.to_string(), fast))
                && std::net::TcpListener::bind((ip, fast)).is_ok()
            {
                self.0.insert((ip.to_string(), p));
                self.0.insert((ip.to_string(), fast));
                return p;
            }
        }
    }
}

/// Each group of a process gets its own addresses (127.0.N.11-13), so groups of tests running
/// in parallel never race for one port.
static NEXT_GROUP: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

impl Group {
    /// A name server on 127.0.0.1 and three nodes on 127.0.N.11-13, started.
    pub fn start() -> Group {
        Self::start_with("")
    }

    /// Like [`start`](Self::start), with `extra` conf lines for every node.
    pub fn start_with(extra: &str) -> Group {
        let dir = TempDir::new("dledger");
        let (ns, namesrv) = crate::start_namesrv(dir.path(), "127.0.0.1");
        let net = NEXT_GROUP.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let ips: Vec<String> = (11..14).map(|i| format!("127.0.{net}.{i}")).collect();
        let mut ports = Ports::default();
        let raft_ports: Vec<u16> = ips.iter().map(|ip| ports.any(ip)).collect();
        let peers: Vec<String> = ips
            .iter()
            .zip(&raft_ports)
            .enumerate()
            .map(|(i, (ip, p))| format!("n{i}-{ip}:{p}"))
            .collect();
        let peers = peers.join(";");
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let port = ports.broker(ip);
            let store = dir.path().join(format!("n{i}"));
            let conf = dir.path().join(format!("broker-n{i}.conf"));
            let text = conf_text(ip, port, &namesrv, &store, &peers, i) + extra;
            std::fs::write(&conf, text).unwrap();
            nodes.push(Node {
                ip: ip.clone(),
                port,
                conf,
                log: dir.path().join(format!("n{i}.log")),
                store,
                guard: None,
            });
        }
        for n in &mut nodes {
            n.start();
        }
        Group {
            nodes,
            namesrv,
            _ns: ns,
            _dir: dir,
        }
    }

    /// The index of the node that is the ready leader (registered as master), waiting for one.
    pub fn leader(&self, within: Duration) -> usize {
        let t = Instant::now();
        loop {
            for (i, n) in self.nodes.iter().enumerate() {
                if n.guard.is_some()
                    && n.runtime().get("dledgerRole").map(String::as_str) == Some("LEADER")
                {
                    return i;
                }
            }
            assert!(t.elapsed() < within, "no leader within {within:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Node `i`'s commitlog: its segments in order, without the zeros after the last record.
    pub fn commitlog_of(&self, i: usize) -> Vec<u8> {
        let dir = self.nodes[i].store.join("commitlog");
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.len() == 20 && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            out.extend(std::fs::read(dir.join(n)).unwrap());
        }
        let end = out.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
        out.truncate(end);
        out
    }

    /// Every message of the topic on node `i`, by queue, in queue order (a direct pull).
    pub fn messages_on(&self, i: usize) -> BTreeMap<i32, Vec<String>> {
        let mut c = RawClient::connect(&self.nodes[i].addr()).unwrap();
        let mut out = BTreeMap::new();
        for q in 0..4 {
            let mut offset = 0;
            let mut bodies = Vec::new();
            loop {
                let r = c.call(pull_req(TOPIC, q, offset)).unwrap();
                if r.code != 0 {
                    break;
                }
                for (qo, body) in records(&r.body) {
                    assert_eq!(qo, offset, "no gaps in queue {q}");
                    offset += 1;
                    bodies.push(body);
                }
            }
            out.insert(q, bodies);
        }
        out
    }
}

pub fn all_bodies(by_queue: &BTreeMap<i32, Vec<String>>) -> Vec<String> {
    by_queue.values().flatten().cloned().collect()
}

/// Waits until node `i` serves the same messages as node `j` (and `j` is not moving).
pub fn caught_up(g: &Group, i: usize, j: usize, within: Duration) {
    let t = Instant::now();
    loop {
        let a = all_bodies(&g.messages_on(i));
        let b = all_bodies(&g.messages_on(j));
        if !b.is_empty() && a == b {
            return;
        }
        assert!(
            t.elapsed() < within,
            "n{i} did not catch up with n{j}: {} vs {} messages",
            a.len(),
            b.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}
