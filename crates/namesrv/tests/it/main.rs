//! The name server as a real process on loopback, driven with real frames.

use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_protocol::body::{ClusterInfo, RegisterBrokerBody, TopicConfig, TopicRouteData};
use ferrocket_protocol::header::namesrv::RegisterBrokerRequestHeader;
use ferrocket_protocol::{fastjson, RemotingCommand, RequestCode, ResponseCode, SerializeType};
use ferrocket_testkit::{bin_path, free_port, wait_for_port, ProcessGuard, RawClient, TempDir};

struct Namesrv {
    proc: ProcessGuard,
    addr: String,
    _dir: TempDir,
}

fn start(extra_conf: &str) -> Namesrv {
    let dir = TempDir::new("namesrv");
    let port = free_port();
    let conf = dir.path().join("namesrv.properties");
    let kv = dir.path().join("kv.json");
    std::fs::write(
        &conf,
        format!(
            "listenPort={port}\nbindAddress=127.0.0.1\nkvConfigPath={}\n{extra_conf}",
            kv.display()
        ),
    )
    .unwrap();
    let proc = ProcessGuard::spawn(
        "mqnamesrv",
        Command::new(bin_path("mqnamesrv")).arg("-c").arg(&conf),
    );
    let addr = format!("127.0.0.1:{port}");
    wait_for_port(&addr, Duration::from_secs(20));
    Namesrv {
        proc,
        addr,
        _dir: dir,
    }
}

fn register(
    c: &mut RawClient,
    name: &str,
    addr: &str,
    id: i64,
    topics: &[(&str, i32)],
) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    for (t, q) in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(t.to_string(), TopicConfig::new(t, *q, *q, 6));
    }
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    let bytes = serde_json::to_vec(&body).unwrap();
    let h = RegisterBrokerRequestHeader {
        broker_name: name.into(),
        broker_addr: addr.into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: addr.replace(":10911", ":10912"),
        broker_id: id,
        compressed: Some(false),
        body_crc32: Some((crc32fast_hash(&bytes) & 0x7FFF_FFFF) as i32),
        ..Default::default()
    };
    c.call(
        RemotingCommand::request(RequestCode::REGISTER_BROKER)
            .with_header(&h)
            .with_body(bytes),
    )
    .unwrap()
}

fn crc32fast_hash(b: &[u8]) -> u32 {
    // CRC-32 (IEEE), bitwise: the test does not share the server's implementation.
    let mut crc = 0xFFFF_FFFFu32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn route(c: &mut RawClient, topic: &str, version: i32) -> RemotingCommand {
    let mut req =
        RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", topic);
    req.version = version;
    c.call(req).unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

#[test]
fn routes_of_masters_and_slaves() {
    let ns = start("");
    let mut a = RawClient::connect(&ns.addr).unwrap();
    let r = register(
        &mut a,
        "broker-a",
        "127.0.0.11:10911",
        0,
        &[("TopicTest", 4)],
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let mut a_s = RawClient::connect(&ns.addr).unwrap();
    let r = register(
        &mut a_s,
        "broker-a",
        "127.0.0.12:10911",
        1,
        &[("TopicTest", 4)],
    );
    assert_eq!(r.code, 0);
    assert_eq!(r.ext("masterAddr"), Some("127.0.0.11:10911"));
    assert_eq!(r.ext("haServerAddr"), Some("127.0.0.11:10912"));
    let mut b = RawClient::connect(&ns.addr).unwrap();
    register(
        &mut b,
        "broker-b",
        "127.0.0.13:10911",
        0,
        &[("TopicTest", 8), ("Other", 2)],
    );

    let mut client = RawClient::connect(&ns.addr).unwrap();
    let resp = route(&mut client, "TopicTest", 409);
    assert_eq!(resp.code, 0);
    let text = std::str::from_utf8(&resp.body).unwrap();
    assert!(
        text.contains(r#""0":"127.0.0.11:10911""#),
        "standard JSON for version 409: {text}"
    );
    let rd: TopicRouteData = fastjson::from_slice(&resp.body).unwrap();
    assert_eq!(rd.queue_datas.len(), 2);
    let a_data = rd
        .broker_datas
        .iter()
        .find(|b| b.broker_name == "broker-a")
        .unwrap();
    assert_eq!(
        a_data.broker_addrs.get(&1).map(String::as_str),
        Some("127.0.0.12:10911")
    );
    let qb = rd
        .queue_datas
        .iter()
        .find(|q| q.broker_name == "broker-b")
        .unwrap();
    assert_eq!(qb.write_queue_nums, 8);

    // Old clients get fastjson's unquoted numeric keys.
    let old = route(&mut client, "TopicTest", 317);
    assert!(std::str::from_utf8(&old.body)
        .unwrap()
        .contains(r#"{0:"127.0.0.11:10911""#));

    let missing = route(&mut client, "NoSuchTopic", 409);
    assert_eq!(missing.code, ResponseCode::TOPIC_NOT_EXIST as i32);

    let ci = client
        .call(RemotingCommand::request(
            RequestCode::GET_BROKER_CLUSTER_INFO,
        ))
        .unwrap();
    let ci: ClusterInfo = fastjson::from_slice(&ci.body).unwrap();
    assert_eq!(ci.cluster_addr_table["DefaultCluster"].len(), 2);

    let all = client
        .call(RemotingCommand::request(
            RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
        ))
        .unwrap();
    let all: serde_json::Value = serde_json::from_slice(&all.body).unwrap();
    assert_eq!(all["topicList"], serde_json::json!(["Other", "TopicTest"]));

    // The master goes: its address leaves the route, its queues stay for consumers to read
    // from the slave (RocketMQ drops a broker name's queues with its last address).
    drop(a);
    wait_until(
        "broker-a's master to leave the route",
        Duration::from_secs(10),
        || {
            let rd: TopicRouteData =
                fastjson::from_slice(&route(&mut client, "TopicTest", 409).body).unwrap();
            let a = rd.broker_datas.iter().find(|b| b.broker_name == "broker-a");
            rd.queue_datas.len() == 2 && a.is_some_and(|a| !a.broker_addrs.contains_key(&0))
        },
    );
}

#[test]
fn binary_headers_and_kv_config() {
    let ns = start("orderMessageEnable=true\n");
    let mut c = RawClient::connect(&ns.addr).unwrap();
    let put = RemotingCommand::request(RequestCode::PUT_KV_CONFIG)
        .with_ext("namespace", "ORDER_TOPIC_CONFIG")
        .with_ext("key", "Ordered")
        .with_ext("value", "broker-a:4")
        .with_serialize_type(SerializeType::RocketMq);
    let resp = c.call(put).unwrap();
    assert_eq!(resp.code, 0);
    assert_eq!(
        resp.serialize_type,
        SerializeType::RocketMq,
        "answered in the request's serialization"
    );
    let get = RemotingCommand::request(RequestCode::GET_KV_CONFIG)
        .with_ext("namespace", "ORDER_TOPIC_CONFIG")
        .with_ext("key", "Ordered")
        .with_serialize_type(SerializeType::RocketMq);
    assert_eq!(c.call(get).unwrap().ext("value"), Some("broker-a:4"));
    let mut b = RawClient::connect(&ns.addr).unwrap();
    let reg = register(&mut b, "broker-a", "127.0.0.11:10911", 0, &[("Ordered", 4)]);
    assert!(std::str::from_utf8(&reg.body)
        .unwrap()
        .contains("broker-a:4"));
    let rd: TopicRouteData = fastjson::from_slice(&route(&mut c, "Ordered", 409).body).unwrap();
    assert_eq!(rd.order_topic_conf.as_deref(), Some("broker-a:4"));
    let del = RemotingCommand::request(RequestCode::DELETE_KV_CONFIG)
        .with_ext("namespace", "ORDER_TOPIC_CONFIG")
        .with_ext("key", "Ordered");
    assert_eq!(c.call(del).unwrap().code, 0);
    let get = RemotingCommand::request(RequestCode::GET_KV_CONFIG)
        .with_ext("namespace", "ORDER_TOPIC_CONFIG")
        .with_ext("key", "Ordered");
    assert_eq!(
        c.call(get).unwrap().code,
        ResponseCode::QUERY_NOT_FOUND as i32
    );
}

#[test]
fn write_perm_and_topic_deletion() {
    let ns = start("");
    let mut b = RawClient::connect(&ns.addr).unwrap();
    register(
        &mut b,
        "broker-a",
        "127.0.0.11:10911",
        0,
        &[("T1", 4), ("T2", 4)],
    );
    let mut c = RawClient::connect(&ns.addr).unwrap();
    let wipe = c
        .call(
            RemotingCommand::request(RequestCode::WIPE_WRITE_PERM_OF_BROKER)
                .with_ext("brokerName", "broker-a"),
        )
        .unwrap();
    assert_eq!(wipe.ext("wipeTopicCount"), Some("2"));
    let rd: TopicRouteData = fastjson::from_slice(&route(&mut c, "T1", 409).body).unwrap();
    assert_eq!(rd.queue_datas[0].perm, 4);
    let add = c
        .call(
            RemotingCommand::request(RequestCode::ADD_WRITE_PERM_OF_BROKER)
                .with_ext("brokerName", "broker-a"),
        )
        .unwrap();
    assert_eq!(add.ext("addTopicCount"), Some("2"));
    let del = c
        .call(
            RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_NAMESRV).with_ext("topic", "T1"),
        )
        .unwrap();
    assert_eq!(del.code, 0);
    assert_eq!(
        route(&mut c, "T1", 409).code,
        ResponseCode::TOPIC_NOT_EXIST as i32
    );
    let by_cluster = c
        .call(
            RemotingCommand::request(RequestCode::GET_TOPICS_BY_CLUSTER)
                .with_ext("cluster", "DefaultCluster"),
        )
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&by_cluster.body).unwrap();
    assert_eq!(v["topicList"], serde_json::json!(["T2"]));
}

#[test]
fn silent_broker_expires() {
    let ns = start("brokerChannelExpiredTime=600\nscanNotActiveBrokerInterval=100\n");
    let mut b = RawClient::connect(&ns.addr).unwrap();
    register(&mut b, "broker-a", "127.0.0.11:10911", 0, &[("T", 4)]);
    let mut c = RawClient::connect(&ns.addr).unwrap();
    assert_eq!(route(&mut c, "T", 409).code, 0);
    // The connection stays open, but nothing is re-registered.
    wait_until(
        "expiry after 600 ms of silence",
        Duration::from_secs(10),
        || route(&mut c, "T", 409).code == ResponseCode::TOPIC_NOT_EXIST as i32,
    );
    drop(b);
}

#[test]
fn bad_frames_close_only_their_connection() {
    let ns = start("");
    let mut good = RawClient::connect(&ns.addr).unwrap();
    // Unknown code: answered, connection stays.
    let resp = good.call(RemotingCommand::request(9999)).unwrap();
    assert_eq!(resp.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32);
    assert_eq!(
        resp.remark.as_deref(),
        Some(" request type 9999 not supported")
    );
    // Missing required header: SYSTEM_ERROR with the reason, connection stays.
    let resp = good
        .call(RemotingCommand::request(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
        ))
        .unwrap();
    assert_eq!(resp.code, ResponseCode::SYSTEM_ERROR as i32);
    assert!(resp.remark.unwrap().contains("topic"));
    // Malformed body: SYSTEM_ERROR.
    let mut bad_body = RemotingCommand::request(RequestCode::REGISTER_BROKER)
        .with_ext("brokerName", "x")
        .with_ext("brokerAddr", "1.1.1.1:1")
        .with_ext("clusterName", "c")
        .with_ext("haServerAddr", "1.1.1.1:2")
        .with_ext("brokerId", "0");
    bad_body.body = bytes::Bytes::from_static(b"{not json");
    assert_eq!(
        good.call(bad_body).unwrap().code,
        ResponseCode::SYSTEM_ERROR as i32
    );

    for garbage in [
        &[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0][..], // 2 GiB length
        &[0, 0, 0, 8, 5, 0, 0, 0, 0, 0, 0, 0][..], // unknown serialize type
        &[0, 0, 0, 8, 0, 0, 0, 4, b'{', b'x', 0, 0][..], // bad JSON header
    ] {
        let mut bad = RawClient::connect(&ns.addr).unwrap();
        bad.send_raw(garbage).unwrap();
        assert!(
            bad.is_closed_by_peer(Duration::from_secs(5)),
            "garbage {garbage:?} must close the connection"
        );
    }
    assert_eq!(
        good.call(RemotingCommand::request(
            RequestCode::GET_BROKER_CLUSTER_INFO
        ))
        .unwrap()
        .code,
        0
    );
}

#[test]
fn two_name_servers_one_killed() {
    let mut first = start("");
    let second = start("");
    for ns in [&first, &second] {
        let mut b = RawClient::connect(&ns.addr).unwrap();
        register(&mut b, "broker-a", "127.0.0.11:10911", 0, &[("T", 4)]);
        // Keep the registration alive past this scope.
        std::mem::forget(b);
    }
    first.proc.kill();
    assert!(RawClient::connect(&first.addr).is_err());
    let mut c = RawClient::connect(&second.addr).unwrap();
    assert_eq!(route(&mut c, "T", 409).code, 0);
}

#[test]
fn sigterm_exits_cleanly_and_conf_errors_exit_2() {
    let mut ns = start("");
    ns.proc.signal(libc::SIGTERM);
    assert_eq!(ns.proc.wait_exit(Duration::from_secs(10)), Some(0));

    let dir = TempDir::new("namesrv-bad");
    let conf = dir.path().join("bad.properties");
    std::fs::write(&conf, "listenPort=9876\nlistenPrt=1\n").unwrap();
    let out = Command::new(bin_path("mqnamesrv"))
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.properties:2: unknown key `listenPrt` (did you mean `listenPort`?)"),
        "{err}"
    );

    let out = Command::new(bin_path("mqnamesrv"))
        .arg("-p")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("listenPort=9876    # default"));
}

/// The library started in this process (no binary): routes of a master and its slave, and a
/// broker that disconnects leaves them; shutdown ends every task.
#[test]
fn in_process_server() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("namesrv-inproc");
    let mut loaded = ferrocket_namesrv::config::load(None).expect("default conf");
    loaded.config.listen_port = 0;
    loaded.config.bind_address = "127.0.0.1".parse().unwrap();
    loaded.config.kv_config_path = dir.path().join("kv.json");
    let handle = rt.block_on(ferrocket_namesrv::start(&loaded)).unwrap();
    let addr = handle.local_addr().to_string();

    let mut master = RawClient::connect(&addr).unwrap();
    let r = register(
        &mut master,
        "broker-a",
        "127.0.0.11:10911",
        0,
        &[("InProc", 4)],
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let mut slave = RawClient::connect(&addr).unwrap();
    let r = register(
        &mut slave,
        "broker-a",
        "127.0.0.12:10911",
        1,
        &[("InProc", 4)],
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    // The slave learns its master's address from the reply.
    assert_eq!(r.ext("masterAddr"), Some("127.0.0.11:10911"));

    let mut c = RawClient::connect(&addr).unwrap();
    let resp = route(&mut c, "InProc", 409);
    assert_eq!(resp.code, 0);
    let data: TopicRouteData = serde_json::from_slice(&resp.body).unwrap();
    let addrs = &data.broker_datas[0].broker_addrs;
    assert_eq!(addrs.get(&0).map(String::as_str), Some("127.0.0.11:10911"));
    assert_eq!(addrs.get(&1).map(String::as_str), Some("127.0.0.12:10911"));

    // Closing the master's connection drops it at once; the slave stays.
    drop(master);
    wait_until("master dropped", Duration::from_secs(5), || {
        let resp = route(&mut c, "InProc", 409);
        match serde_json::from_slice::<TopicRouteData>(&resp.body) {
            Ok(d) => !d.broker_datas[0].broker_addrs.contains_key(&0),
            Err(_) => false,
        }
    });
    drop((slave, c));
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), handle.shutdown())
            .await
            .expect("shutdown ends every task")
    });
}
