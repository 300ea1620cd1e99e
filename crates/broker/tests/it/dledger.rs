//! DLedger mode: three `mqbroker` processes of one `dLegerGroup`, each on its own loopback
//! address (127.0.0.11-13), with a name server. Election, replication, SIGKILL and SIGSTOP of
//! the leader under load (bounded in count and time), a restarted and a wiped follower
//! catching up, and the conf mistakes that must never split the group silently.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_client::{ClientConfig, Message, Producer};
use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
use ferrocket_testkit::{bin_path, free_port_on, wait_for_port, ProcessGuard, RawClient, TempDir};

use crate::util::{decode_all, pull_req};

const GROUP: &str = "RaftNode00";
const TOPIC: &str = "RaftTopic";

struct Node {
    ip: String,
    port: u16,
    conf: PathBuf,
    log: PathBuf,
    store: PathBuf,
    guard: Option<ProcessGuard>,
}

impl Node {
    fn addr(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    fn start(&mut self) {
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
                .env("RUST_LOG", "info")
                .stdout(log.try_clone().unwrap())
                .stderr(log),
        ));
        wait_for_port(&self.addr(), Duration::from_secs(30));
    }

    fn kill(&mut self) {
        if let Some(mut g) = self.guard.take() {
            g.kill();
        }
    }

    /// GET_BROKER_RUNTIME_INFO's table, empty when the node does not answer.
    fn runtime(&self) -> BTreeMap<String, String> {
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

struct Group {
    nodes: Vec<Node>,
    namesrv: String,
    _ns: ProcessGuard,
    _dir: TempDir,
}

fn conf_text(ip: &str, port: u16, ns: &str, store: &Path, peers: &str, id: usize) -> String {
    format!(
        "brokerClusterName=RaftCluster\nbrokerName={GROUP}\nbrokerIP1={ip}\nlistenPort={port}\n\
         namesrvAddr={ns}\nstorePathRootDir={}\nmappedFileSizeCommitLog=16777216\n\
         enableDLegerCommitLog=true\ndLegerGroup={GROUP}\ndLegerPeers={peers}\ndLegerSelfId=n{id}\n\
         sendMessageThreadPoolNums=4\n",
        store.display()
    )
}

fn broker_port(ip: &str) -> u16 {
    loop {
        let p = free_port_on(ip);
        if p > 1030 && std::net::TcpListener::bind((ip, p - 2)).is_ok() {
            return p;
        }
    }
}

impl Group {
    fn start() -> Group {
        let dir = TempDir::new("dledger");
        let ns_port = free_port_on("127.0.0.1");
        let namesrv = format!("127.0.0.1:{ns_port}");
        let ns_conf = dir.path().join("namesrv.properties");
        std::fs::write(
            &ns_conf,
            format!(
                "listenPort={ns_port}\nbindAddress=127.0.0.1\nkvConfigPath={}\n",
                dir.path().join("kv.json").display()
            ),
        )
        .unwrap();
        let ns = ProcessGuard::spawn(
            "mqnamesrv",
            Command::new(bin_path("mqnamesrv"))
                .arg("-c")
                .arg(&ns_conf)
                .env("RUST_LOG", "warn"),
        );
        wait_for_port(&namesrv, Duration::from_secs(10));
        let ips: Vec<String> = (11..14).map(|i| format!("127.0.0.{i}")).collect();
        let raft_ports: Vec<u16> = ips.iter().map(|ip| free_port_on(ip)).collect();
        let peers: Vec<String> = ips
            .iter()
            .zip(&raft_ports)
            .enumerate()
            .map(|(i, (ip, p))| format!("n{i}-{ip}:{p}"))
            .collect();
        let peers = peers.join(";");
        let mut nodes = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let port = broker_port(ip);
            let store = dir.path().join(format!("n{i}"));
            let conf = dir.path().join(format!("broker-n{i}.conf"));
            std::fs::write(&conf, conf_text(ip, port, &namesrv, &store, &peers, i)).unwrap();
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
    fn leader(&self, within: Duration) -> usize {
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

    /// Every message of the topic on node `i`, by queue, in queue order (a direct pull).
    fn messages_on(&self, i: usize) -> BTreeMap<i32, Vec<String>> {
        let mut c = RawClient::connect(&self.nodes[i].addr()).unwrap();
        let mut out = BTreeMap::new();
        for q in 0..4 {
            let mut offset = 0;
            let mut bodies = Vec::new();
            loop {
                let r = c
                    .call(pull_req(
                        "check",
                        TOPIC,
                        q,
                        offset,
                        "*",
                        0,
                        SerializeType::Json,
                    ))
                    .unwrap();
                if r.code != 0 {
                    break;
                }
                let msgs = decode_all(&r.body);
                for m in &msgs {
                    assert_eq!(m.queue_offset, offset, "no gaps in queue {q}");
                    offset += 1;
                    bodies.push(String::from_utf8_lossy(&m.body).into_owned());
                }
            }
            out.insert(q, bodies);
        }
        out
    }
}

fn producer(ns: &str) -> Producer {
    Producer::builder()
        .config(ClientConfig::new(ns.to_string()))
        .group("raft_producer")
        .retries(4)
        .build()
        .unwrap()
}

/// Sends `count` messages one at a time for at most `limit`; returns the bodies acknowledged
/// (SEND_OK) and the longest stretch without a successful send.
async fn send_load(
    p: &Producer,
    prefix: &str,
    count: usize,
    limit: Duration,
    mut on_sent: impl FnMut(usize),
) -> (Vec<String>, Duration) {
    let t = Instant::now();
    let mut acked = Vec::new();
    let mut last_ok = Instant::now();
    let mut longest = Duration::ZERO;
    let mut i = 0;
    while acked.len() < count && t.elapsed() < limit {
        let body = format!("{prefix}-{i}");
        i += 1;
        match p.send(Message::new(TOPIC, body.clone().into_bytes())).await {
            Ok(r) if r.status == ferrocket_client::SendStatus::SendOk => {
                longest = longest.max(last_ok.elapsed());
                last_ok = Instant::now();
                acked.push(body);
                on_sent(acked.len());
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    (acked, longest)
}

fn all_bodies(by_queue: &BTreeMap<i32, Vec<String>>) -> Vec<String> {
    by_queue.values().flatten().cloned().collect()
}

fn create_topic(g: &Group, leader: usize) {
    let mut c = RawClient::connect(&g.nodes[leader].addr()).unwrap();
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .with_ext("topic", TOPIC)
                .with_ext("readQueueNums", 4)
                .with_ext("writeQueueNums", 4)
                .with_ext("perm", 6),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
}

/// Waits until node `i` serves the same messages as node `j` (and `j` is not moving).
fn caught_up(g: &Group, i: usize, j: usize, within: Duration) {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_or_hung_under_load_loses_no_acknowledged_message() {
    let mut g = Group::start();
    let leader = g.leader(Duration::from_secs(30));
    create_topic(&g, leader);
    // Every follower serves as a slave, the leader as master.
    let rt = g.nodes[leader].runtime();
    assert_eq!(
        rt.get("dledgerLeader").map(String::as_str),
        Some(&*format!("n{leader}"))
    );
    tokio::time::sleep(Duration::from_secs(4)).await; // the topic reaches the followers

    let p = producer(&g.namesrv);
    let (mut acked, _) = send_load(&p, "a", 100, Duration::from_secs(60), |_| {}).await;
    assert_eq!(acked.len(), 100);

    // SIGKILL the leader mid-load.
    let old = leader;
    let pid = g.nodes[old].guard.as_ref().unwrap().pid();
    let mut killed = false;
    let (more, gap) = send_load(&p, "b", 200, Duration::from_secs(60), |n| {
        if n == 50 && !killed {
            // SAFETY: our own child process.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            killed = true;
        }
    })
    .await;
    assert_eq!(more.len(), 200, "sends resumed after the leader was killed");
    g.nodes[old].kill();
    acked.extend(more);
    let new = g.leader(Duration::from_secs(10));
    assert_ne!(new, old);
    eprintln!("SIGKILL: longest stretch without a successful send {gap:?}");

    // Every acknowledged message is on the new leader, once, in order per queue.
    let on_leader = g.messages_on(new);
    let bodies = all_bodies(&on_leader);
    let unique: HashSet<&String> = bodies.iter().collect();
    for a in &acked {
        assert!(unique.contains(a), "acknowledged {a} lost");
    }
    for msgs in on_leader.values() {
        let mut last: BTreeMap<&str, usize> = BTreeMap::new();
        for m in msgs {
            let (prefix, n) = m.split_once('-').unwrap();
            let n: usize = n.parse().unwrap();
            if let Some(prev) = last.insert(prefix, n) {
                assert!(
                    n > prev,
                    "out of order in a queue: {m} after {prefix}-{prev}"
                );
            }
        }
    }

    // The killed node comes back as a follower and catches up.
    g.nodes[old].start();
    caught_up(&g, old, new, Duration::from_secs(30));
    assert_eq!(
        all_bodies(&g.messages_on(old)),
        bodies,
        "restarted follower holds the same log"
    );

    // A hung leader (SIGSTOP) is replaced too; it steps down when it wakes up.
    let hung = new;
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGSTOP);
    let (after, gap) = send_load(&p, "c", 50, Duration::from_secs(60), |_| {}).await;
    assert_eq!(after.len(), 50, "sends resumed after the leader hung");
    eprintln!("SIGSTOP: longest stretch without a successful send {gap:?}");
    acked.extend(after);
    let third = g.leader(Duration::from_secs(10));
    assert_ne!(third, hung);
    g.nodes[hung].guard.as_ref().unwrap().signal(libc::SIGCONT);
    caught_up(&g, hung, third, Duration::from_secs(30));
    let final_bodies = all_bodies(&g.messages_on(third));
    let unique: HashSet<&String> = final_bodies.iter().collect();
    for a in &acked {
        assert!(unique.contains(a), "acknowledged {a} lost after the hang");
    }

    // A follower whose disk is wiped rejoins from the others' logs.
    let wiped = (0..3).find(|i| *i != third).unwrap();
    g.nodes[wiped].kill();
    std::fs::remove_dir_all(&g.nodes[wiped].store).unwrap();
    g.nodes[wiped].start();
    caught_up(&g, wiped, third, Duration::from_secs(30));
    p.shutdown().await;
}

#[test]
fn conf_mistakes_are_refused_loudly() {
    let dir = TempDir::new("dledger-conf");
    let ns = "127.0.0.1:9"; // nothing listens: registration is not what is tested
    let ip = "127.0.0.21";
    let raft: Vec<u16> = (0..3).map(|_| free_port_on(ip)).collect();
    let peers = |third: u16| format!("n0-{ip}:{};n1-{ip}:{};n2-{ip}:{third}", raft[0], raft[1]);
    let good = peers(raft[2]);
    let other = peers(raft[2] + 1);
    let mut nodes = Vec::new();
    for (i, p) in [(0, &good), (1, &other)] {
        let port = broker_port(ip);
        let store = dir.path().join(format!("n{i}"));
        let conf = dir.path().join(format!("n{i}.conf"));
        std::fs::write(&conf, conf_text(ip, port, ns, &store, p, i)).unwrap();
        let mut n = Node {
            ip: ip.into(),
            port,
            conf,
            log: dir.path().join(format!("n{i}.log")),
            store,
            guard: None,
        };
        n.start();
        nodes.push(n);
    }
    // The two nodes' dLegerPeers differ for n2: their first exchange fails naming both values.
    let t = Instant::now();
    let needle = "dLegerPeers mismatch";
    let logged = loop {
        let a = std::fs::read_to_string(&nodes[0].log).unwrap_or_default();
        let b = std::fs::read_to_string(&nodes[1].log).unwrap_or_default();
        if let Some(line) = a.lines().chain(b.lines()).find(|l| l.contains(needle)) {
            break line.to_string();
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no mismatch reported:\n{a}\n{b}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        logged.contains(&good) && logged.contains(&other),
        "{logged}"
    );
    // Neither became leader: two of three votes are needed and the pair disagrees.
    assert!(nodes
        .iter()
        .all(|n| n.runtime().get("dledgerRole").map(String::as_str) != Some("LEADER")));

    // A second node with the same dLegerSelfId cannot take the first one's Raft address.
    let port = broker_port(ip);
    let conf = dir.path().join("dup.conf");
    std::fs::write(
        &conf,
        conf_text(ip, port, ns, &dir.path().join("dup"), &good, 0),
    )
    .unwrap();
    let out = Command::new(bin_path("mqbroker"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("same dLegerSelfId"), "{text}");
}
