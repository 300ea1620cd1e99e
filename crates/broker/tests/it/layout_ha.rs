//! A 2m-2s layout's pair as on separate hosts: a name server on 127.0.0.50, broker-a's master on
//! 127.0.0.51 and its slave on 127.0.0.52, each a real process, the slave learning its master
//! through the name server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
use ferrocket_testkit::{
    free_port_on, start_namesrv, wait_for_port, ProcessGuard, RawClient, TempDir,
};

use crate::util::{create_topic, decode_all, eventually, pull_req, send_req, spawn};

const NS_IP: &str = "127.0.0.50";
const MASTER_IP: &str = "127.0.0.51";
const SLAVE_IP: &str = "127.0.0.52";

/// A listen port on `ip` whose fast (port - 2) and HA (port + 1) ports are free too.
fn port_on(ip: &str) -> u16 {
    for _ in 0..200 {
        let p = free_port_on(ip);
        if p > 1026
            && p < 65534
            && std::net::TcpListener::bind((ip, p - 2)).is_ok()
            && std::net::TcpListener::bind((ip, p + 1)).is_ok()
        {
            return p;
        }
    }
    panic!("no free port triple on {ip}");
}

struct Node {
    guard: ProcessGuard,
    addr: String,
    conf: PathBuf,
    store: PathBuf,
}

impl Node {
    fn start(dir: &Path, name: &str, ip: &str, ns: &str, extra: &str) -> Node {
        let port = port_on(ip);
        let store = dir.join(name);
        let conf = dir.join(format!("{name}.properties"));
        std::fs::write(
            &conf,
            format!(
                "brokerClusterName = DefaultCluster\nbrokerName = broker-a\nbrokerIP1 = {ip}\n\
                 listenPort = {port}\nnamesrvAddr = {ns}\nstorePathRootDir = {}\n\
                 mappedFileSizeCommitLog = 1048576\nmappedFileSizeConsumeQueue = 60000\n{extra}\n",
                store.display()
            ),
        )
        .unwrap();
        let guard = spawn(&conf);
        let addr = format!("{ip}:{port}");
        wait_for_port(&addr, Duration::from_secs(30));
        Node {
            guard,
            addr,
            conf,
            store,
        }
    }

    fn restart(&mut self) {
        self.guard = spawn(&self.conf);
        wait_for_port(&self.addr, Duration::from_secs(60));
    }

    fn client(&self) -> RawClient {
        RawClient::connect(&self.addr).expect("connect")
    }

    /// GET_BROKER_RUNTIME_INFO's table.
    fn runtime(&self) -> serde_json::Value {
        let r = self
            .client()
            .call(RemotingCommand::request(
                RequestCode::GET_BROKER_RUNTIME_INFO,
            ))
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["table"].clone()
    }

    fn max_offset(&self) -> i64 {
        self.runtime()["commitLogMaxOffset"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The commitlog's bytes below `end`, across segments.
    fn commitlog(&self, end: i64) -> Vec<u8> {
        let dir = self.store.join("commitlog");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        let mut out = Vec::new();
        for f in files {
            out.extend(std::fs::read(f).unwrap());
        }
        out.truncate(end as usize);
        out
    }
}

fn send(c: &mut RawClient, queue: i32, body: &[u8]) -> RemotingCommand {
    c.call(send_req("L", queue, body, None, true, SerializeType::Json))
        .unwrap()
}

fn pull_all(c: &mut RawClient, queue: i32, from: i64) -> Vec<(i64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = from;
    loop {
        let r = c
            .call(pull_req("G", "L", queue, off, "*", 0, SerializeType::Json))
            .unwrap();
        if r.code != 0 {
            return out;
        }
        let msgs = decode_all(&r.body);
        if msgs.is_empty() {
            return out;
        }
        for m in msgs {
            off = m.queue_offset + 1;
            out.push((m.queue_offset, m.body.to_vec()));
        }
    }
}

fn offset_req(code: RequestCode, queue: i32, offset: Option<i64>) -> RemotingCommand {
    let mut r = RemotingCommand::request(code)
        .with_ext("consumerGroup", "G")
        .with_ext("topic", "L")
        .with_ext("queueId", queue);
    if let Some(o) = offset {
        r = r.with_ext("commitOffset", o);
    }
    r
}

/// SYNC_MASTER: every acknowledged send is on the slave when the master is SIGKILLed; the
/// commitlogs are byte-identical; a consumer goes on from the slave, then back to the restarted
/// master without re-reading.
#[test]
fn sync_pair_survives_master_kill_and_fails_back() {
    let dir = TempDir::new("layout-ha");
    let (_ns, ns) = start_namesrv(dir.path(), NS_IP);
    let mut master = Node::start(
        dir.path(),
        "broker-a",
        MASTER_IP,
        &ns,
        "brokerId = 0\nbrokerRole = SYNC_MASTER\nslaveTimeout = 3000",
    );
    let slave = Node::start(
        dir.path(),
        "broker-a-s",
        SLAVE_IP,
        &ns,
        "brokerId = 1\nbrokerRole = SLAVE",
    );
    let mut m = master.client();
    let mut s = slave.client();
    create_topic(&mut m, "L", 2);
    create_topic(&mut s, "L", 2);
    eventually(Duration::from_secs(60), || {
        (send(&mut m, 0, b"warm-up").code == 0).then_some(())
    })
    .expect("the slave connects through the name server's masterAddr/haServerAddr");

    // The master shows its slave and lag.
    let rt = master.runtime();
    assert_eq!(rt["haSlaveCount"], "1", "{rt}");
    assert!(
        rt["haSlave.0"].as_str().unwrap().starts_with(SLAVE_IP),
        "{rt}"
    );

    // A consumer reads half of queue 0 from the master and commits.
    let mut acked: Vec<(i32, i64, Vec<u8>)> = Vec::new();
    for i in 0..200 {
        let q = i % 2;
        let body = format!("msg-{i}").into_bytes();
        let r = send(&mut m, q, &body);
        assert_eq!(r.code, 0, "SYNC send {i}: {:?}", r.remark);
        acked.push((q, r.ext("queueOffset").unwrap().parse().unwrap(), body));
    }
    let r = m
        .call(offset_req(RequestCode::UPDATE_CONSUMER_OFFSET, 0, Some(51)))
        .unwrap();
    assert_eq!(r.code, 0);
    // The slave copies consumer offsets from its master every 10 s.
    eventually(Duration::from_secs(30), || {
        let r = s
            .call(offset_req(RequestCode::QUERY_CONSUMER_OFFSET, 0, None))
            .unwrap();
        (r.code == 0 && r.ext("offset") == Some("51")).then_some(())
    })
    .expect("consumer offset synced to the slave");

    let end = master.max_offset();
    master.guard.kill();

    // Every acknowledged message is on the slave, at its queue offset.
    for q in 0..2 {
        let got = pull_all(&mut s, q, 0);
        for (_, off, body) in acked.iter().filter(|(aq, _, _)| *aq == q) {
            assert!(
                got.iter().any(|(o, b)| o == off && b == body),
                "acked message at {q}/{off} missing on the slave"
            );
        }
    }
    assert_eq!(slave.max_offset(), end);
    assert!(
        slave.commitlog(end) == master.commitlog(end),
        "commitlogs differ below {end}"
    );

    // The consumer continues on the slave from its committed offset; the slave takes no writes.
    let rest = pull_all(&mut s, 0, 51);
    assert_eq!(rest.first().map(|m| m.0), Some(51));
    let consumed_to = rest.last().unwrap().0 + 1;
    assert_eq!(send(&mut s, 0, b"refused").code, 14);

    // The master returns; the consumer commits there and reads only what is new.
    master.restart();
    let mut m = master.client();
    let r = m
        .call(offset_req(
            RequestCode::UPDATE_CONSUMER_OFFSET,
            0,
            Some(consumed_to),
        ))
        .unwrap();
    assert_eq!(r.code, 0);
    eventually(Duration::from_secs(60), || {
        (master.runtime()["haSlaveCount"] == "1").then_some(())
    })
    .expect("the slave reconnects to the restarted master");
    let r = send(&mut m, 0, b"after failback");
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let r2 = m
        .call(offset_req(RequestCode::QUERY_CONSUMER_OFFSET, 0, None))
        .unwrap();
    let from: i64 = r2.ext("offset").unwrap().parse().unwrap();
    let new = pull_all(&mut m, 0, from);
    assert_eq!(
        new.iter().map(|m| m.1.as_slice()).collect::<Vec<_>>(),
        vec![b"after failback".as_slice()],
        "nothing re-read after failback (sent at {:?})",
        r.ext("queueOffset")
    );
}

/// SYNC_MASTER with its slave killed: sends report SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT
/// (stored, not replicated), then succeed again when the slave returns; an empty slave joining
/// a master with several segments copies all of them byte for byte.
#[test]
fn slave_loss_is_reported_and_an_empty_slave_catches_up() {
    let dir = TempDir::new("layout-ha2");
    let (_ns, ns) = start_namesrv(dir.path(), NS_IP);
    let master = Node::start(
        dir.path(),
        "broker-a",
        MASTER_IP,
        &ns,
        "brokerId = 0\nbrokerRole = SYNC_MASTER\nslaveTimeout = 1000",
    );
    let mut m = master.client();
    create_topic(&mut m, "L", 1);
    // ~3 MiB: three 1 MiB segments before any slave exists.
    let body = vec![b'x'; 1000];
    for _ in 0..3000 {
        let code = send(&mut m, 0, &body).code;
        assert_eq!(
            code, 11,
            "no slave: SLAVE_NOT_AVAILABLE, stored on the master"
        );
    }
    let mut slave = Node::start(
        dir.path(),
        "broker-a-s",
        SLAVE_IP,
        &ns,
        "brokerId = 1\nbrokerRole = SLAVE",
    );
    let end = master.max_offset();
    assert!(end > 3 << 20, "several segments: {end}");
    eventually(Duration::from_secs(60), || {
        (slave.max_offset() >= end).then_some(())
    })
    .expect("the empty slave catches up");
    assert!(
        slave.commitlog(end) == master.commitlog(end),
        "commitlogs differ"
    );

    slave.guard.kill();
    let code = send(&mut m, 0, b"no slave").code;
    assert!(
        code == 11 || code == 12,
        "slave killed: SLAVE_NOT_AVAILABLE or FLUSH_SLAVE_TIMEOUT, got {code}"
    );
    slave.restart();
    eventually(Duration::from_secs(60), || {
        (send(&mut m, 0, b"slave back").code == 0).then_some(())
    })
    .expect("sends succeed again once the slave returns");
}
