//! Classic HA over real sockets: two real stores in temp dirs, the master's HA service on
//! 127.0.0.11 and the slave on 127.0.0.12, plus hand-driven fake peers for the refusals.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrocket_protocol::message::{names, Properties, StoredMessage};
use ferrocket_replication::ha::{
    AckConfig, AllowList, HaClient, HaClientConfig, HaServer, HaServerConfig, HaStore,
    ReplicaOutcome,
};
use ferrocket_store::{MessageStore, StoreConfig};
use ferrocket_testkit::{free_port_on, TempDir};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

const MASTER_IP: &str = "127.0.0.11";
const SLAVE_IP: &str = "127.0.0.12";
const STRANGER_IP: &str = "127.0.0.13";
const SEGMENT: u64 = 64 * 1024;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn store_config(root: &Path) -> StoreConfig {
    StoreConfig {
        mapped_file_size_commit_log: SEGMENT,
        mapped_file_size_consume_queue: 2000,
        max_hash_slot_num: 64,
        max_index_num: 4000,
        flush_interval_commit_log: 20,
        flush_interval_consume_queue: 50,
        clean_resource_interval: 3_600_000,
        store_host: "127.0.0.11:10911".parse().unwrap(),
        ..StoreConfig::with_root(root)
    }
}

fn open(root: &Path) -> Arc<MessageStore> {
    Arc::new(MessageStore::open(store_config(root)).expect("open store"))
}

fn message(i: u64) -> StoredMessage {
    let mut properties = Properties::new();
    properties.insert(names::TAGS, format!("t{}", i % 3));
    properties.insert(names::KEYS, format!("k{i}"));
    let len = 40 + (i.wrapping_mul(2_654_435_761) % 900) as usize;
    StoredMessage {
        queue_id: (i % 4) as i32,
        flag: 0,
        queue_offset: 0,
        physical_offset: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000 + i as i64,
        born_host: SocketAddr::from(([192, 168, 1, 7], 50000)),
        store_timestamp: 0,
        store_host: SocketAddr::from(([0, 0, 0, 0], 0)),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: Bytes::from((0..len).map(|k| (i as usize + k) as u8).collect::<Vec<_>>()),
        topic: "HaTopic".into(),
        properties,
    }
}

/// Puts messages `from..to`; returns the end offset of the last one.
async fn put(store: &MessageStore, from: u64, to: u64) -> i64 {
    let mut end = 0;
    for i in from..to {
        let r = store.put_message(message(i)).await;
        assert!(r.status.is_stored(), "put {i}: {:?}", r.status);
        let a = r.append.expect("append result");
        end = a.wrote_offset + a.wrote_bytes as i64;
    }
    end
}

async fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn commitlog_files(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join("commitlog"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn assert_identical_commitlogs(master: &Path, slave: &Path) {
    let m = commitlog_files(master);
    let s = commitlog_files(slave);
    let names = |v: &[PathBuf]| -> Vec<_> {
        v.iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&m), names(&s), "same segment files");
    assert!(
        m.len() > 2,
        "the burst spans several segments ({} files)",
        m.len()
    );
    for (a, b) in m.iter().zip(&s) {
        let x = std::fs::read(a).unwrap();
        let y = std::fs::read(b).unwrap();
        assert!(x == y, "{} differs from the master's copy", b.display());
    }
}

fn server_config(port: u16) -> HaServerConfig {
    HaServerConfig::new(SocketAddr::new(ip(MASTER_IP), port))
}

async fn start_server(
    store: &Arc<MessageStore>,
    config: HaServerConfig,
    cancel: &CancellationToken,
) -> HaServer {
    let allow = AllowList::new([ip(SLAVE_IP)]);
    HaServer::bind(config, Arc::clone(store) as Arc<dyn HaStore>, allow, cancel)
        .await
        .expect("bind HA server")
}

fn start_client(
    store: &Arc<MessageStore>,
    master: SocketAddr,
    cancel: &CancellationToken,
) -> HaClient {
    let config = HaClientConfig {
        bind_ip: Some(ip(SLAVE_IP)),
        ..HaClientConfig::default()
    };
    HaClient::start(
        config,
        Arc::clone(store) as Arc<dyn HaStore>,
        Some(master),
        cancel,
    )
}

async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(ip(local), 0)).unwrap();
    sock.connect(to).await.expect("connect")
}

/// Reads until the peer closes (returns true) or `timeout` passes (false).
async fn closed_by_peer(stream: &mut TcpStream, timeout: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_burst_leaves_byte_identical_commitlogs() {
    let (md, sd) = (TempDir::new("ha-master"), TempDir::new("ha-slave"));
    let (master, slave) = (open(md.path()), open(sd.path()));
    let cancel = CancellationToken::new();
    let server = start_server(&master, server_config(free_port_on(MASTER_IP)), &cancel).await;
    let client = start_client(&slave, server.local_addr(), &cancel);
    wait_until("slave link", Duration::from_secs(10), || {
        client.is_connected()
    })
    .await;

    let mut end = 0;
    for chunk in 0..10u64 {
        end = put(&master, chunk * 200, chunk * 200 + 200).await;
        server.notify_appended(end);
    }
    wait_until("slave caught up", Duration::from_secs(30), || {
        slave.max_phy_offset() == end
    })
    .await;
    wait_until("ack of the end", Duration::from_secs(10), || {
        server.acks().max_acked() == end
    })
    .await;

    let st = server.status();
    assert_eq!(st.master_max_offset, end);
    assert_eq!(st.slaves.len(), 1);
    assert_eq!(st.slaves[0].addr.ip(), ip(SLAVE_IP));
    assert_eq!(st.slaves[0].lag_bytes, 0);

    // The slave built its own consume queues from the replicated bytes.
    for q in 0..4 {
        assert_eq!(slave.max_offset_in_queue("HaTopic", q), 500, "queue {q}");
    }
    master.flush_all().unwrap();
    slave.flush_all().unwrap();
    assert_identical_commitlogs(md.path(), sd.path());

    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_slave_gets_every_segment_then_resumes_after_a_restart() {
    let (md, sd) = (TempDir::new("ha-master"), TempDir::new("ha-slave"));
    let (master, slave) = (open(md.path()), open(sd.path()));
    let end = put(&master, 0, 600).await;
    assert!(
        end > 4 * SEGMENT as i64,
        "several segments before the slave joins"
    );

    let cancel = CancellationToken::new();
    let server = start_server(&master, server_config(free_port_on(MASTER_IP)), &cancel).await;
    let client = start_client(&slave, server.local_addr(), &cancel);
    wait_until("empty slave caught up", Duration::from_secs(30), || {
        slave.max_phy_offset() == end
    })
    .await;
    assert_eq!(slave.min_phy_offset(), master.min_phy_offset());
    client.shutdown().await;

    // The master moves on while the slave is away; the slave resumes from its own end.
    let end = put(&master, 600, 900).await;
    server.notify_appended(end);
    let client = start_client(&slave, server.local_addr(), &cancel);
    // The commitlog end moves as bytes land, the consume queues once their records are
    // dispatched a moment later (same append call): wait for both.
    wait_until("slave resumed", Duration::from_secs(30), || {
        slave.max_phy_offset() == end
            && (0..4).all(|q| slave.max_offset_in_queue("HaTopic", q) == 225)
    })
    .await;
    for q in 0..4 {
        assert_eq!(slave.max_offset_in_queue("HaTopic", q), 225, "queue {q}");
    }
    master.flush_all().unwrap();
    slave.flush_all().unwrap();
    assert_identical_commitlogs(md.path(), sd.path());
    client.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_waits_end_ok_not_available_or_timeout() {
    let (md, sd) = (TempDir::new("ha-master"), TempDir::new("ha-slave"));
    let (master, slave) = (open(md.path()), open(sd.path()));
    let cancel = CancellationToken::new();
    let mut config = server_config(free_port_on(MASTER_IP));
    config.ack = AckConfig {
        slave_timeout: Duration::from_millis(500),
        ..AckConfig::default()
    };
    let server = start_server(&master, config, &cancel).await;

    // No slave yet: not available.
    let end = put(&master, 0, 1).await;
    assert_eq!(
        server.wait_for_replicas(end).await,
        ReplicaOutcome::SlaveNotAvailable
    );

    // A live slave: each ack releases every send it covers.
    let client = start_client(&slave, server.local_addr(), &cancel);
    wait_until("slave reported", Duration::from_secs(10), || {
        server.status().slaves.iter().any(|s| s.acked_offset == end)
    })
    .await;
    let mut waits = Vec::new();
    for i in 1..101u64 {
        let end = put(&master, i, i + 1).await;
        let server = server.clone();
        waits.push(tokio::spawn(
            async move { server.wait_for_replicas(end).await },
        ));
    }
    for w in waits {
        assert_eq!(w.await.unwrap(), ReplicaOutcome::Ok);
    }
    assert_eq!(server.acks().waiting(), 0);

    // Slave gone: answered SLAVE_NOT_AVAILABLE, not after a timeout.
    client.shutdown().await;
    wait_until("slave forgotten", Duration::from_secs(10), || {
        server.status().slaves.is_empty()
    })
    .await;
    let end = put(&master, 101, 102).await;
    assert_eq!(
        server.wait_for_replicas(end).await,
        ReplicaOutcome::SlaveNotAvailable
    );

    // A slave that reports once and then stops reading: in sync but silent, so the wait times out.
    let mut paused = connect_from(SLAVE_IP, server.local_addr()).await;
    paused.write_all(&end.to_be_bytes()).await.unwrap();
    wait_until("paused slave reported", Duration::from_secs(10), || {
        server.status().slaves.iter().any(|s| s.acked_offset == end)
    })
    .await;
    let end = put(&master, 102, 103).await;
    assert_eq!(
        server.wait_for_replicas(end).await,
        ReplicaOutcome::FlushSlaveTimeout
    );
    drop(paused);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_slaves_ahead_of_the_master_are_dropped() {
    let md = TempDir::new("ha-master");
    let master = open(md.path());
    let end = put(&master, 0, 10).await;
    let cancel = CancellationToken::new();
    let server = start_server(&master, server_config(free_port_on(MASTER_IP)), &cancel).await;

    // An IP that is not a registered slave of this broker never gets to report.
    let mut stranger = connect_from(STRANGER_IP, server.local_addr()).await;
    let _ = stranger.write_all(&end.to_be_bytes()).await;
    assert!(closed_by_peer(&mut stranger, Duration::from_secs(10)).await);
    assert!(server.status().slaves.is_empty());

    // A registered IP claiming more than the master has is dropped, its ack ignored.
    let mut ahead = connect_from(SLAVE_IP, server.local_addr()).await;
    ahead.write_all(&(end + 1000).to_be_bytes()).await.unwrap();
    assert!(closed_by_peer(&mut ahead, Duration::from_secs(10)).await);
    wait_until("ahead slave forgotten", Duration::from_secs(10), || {
        server.status().slaves.is_empty()
    })
    .await;
    assert_eq!(server.acks().max_acked(), 0);

    // A well-behaved slave reporting its end gets a heartbeat-capable stream and stays.
    let mut good = connect_from(SLAVE_IP, server.local_addr()).await;
    good.write_all(&end.to_be_bytes()).await.unwrap();
    assert!(!closed_by_peer(&mut good, Duration::from_millis(300)).await);
    assert_eq!(server.status().slaves.len(), 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slave_drops_a_stream_at_the_wrong_offset_and_reconnects() {
    let sd = TempDir::new("ha-slave");
    let slave = open(sd.path());
    let own_end = put(&slave, 0, 3).await;
    let fake_master = TcpListener::bind((MASTER_IP, 0)).await.unwrap();
    let cancel = CancellationToken::new();
    let client = start_client(&slave, fake_master.local_addr().unwrap(), &cancel);

    let (mut s, peer) = fake_master.accept().await.unwrap();
    assert_eq!(
        peer.ip(),
        ip(SLAVE_IP),
        "the slave connects from its own IP"
    );
    let mut report = [0u8; 8];
    s.read_exact(&mut report).await.unwrap();
    assert_eq!(
        i64::from_be_bytes(report),
        own_end,
        "first report is the slave's end"
    );
    let mut header = Vec::new();
    header.extend_from_slice(&(own_end + 64).to_be_bytes());
    header.extend_from_slice(&4i32.to_be_bytes());
    header.extend_from_slice(b"junk");
    s.write_all(&header).await.unwrap();
    assert!(closed_by_peer(&mut s, Duration::from_secs(10)).await);
    assert_eq!(slave.max_phy_offset(), own_end, "nothing appended");

    // It comes back (with backoff) and reports the same end again.
    let (mut s2, _) = tokio::time::timeout(Duration::from_secs(10), fake_master.accept())
        .await
        .expect("reconnect")
        .unwrap();
    s2.read_exact(&mut report).await.unwrap();
    assert_eq!(i64::from_be_bytes(report), own_end);
    client.shutdown().await;
}
