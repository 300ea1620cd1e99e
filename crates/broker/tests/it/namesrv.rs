//! With a real `mqnamesrv`: the broker registers its topics, and a send to an unknown topic
//! through TBW102 auto-creates it and its route appears at the name server.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use ferrocket_protocol::body::RegisterBrokerBody;
use ferrocket_protocol::{frame, RemotingCommand, RequestCode, SerializeType};
use ferrocket_testkit::{start_namesrv, RawClient, TempDir};

use crate::util::{create_topic, eventually, send_req, Broker};

pub fn route(ns: &mut RawClient, topic: &str) -> Option<serde_json::Value> {
    let r = ns
        .call(
            RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC).with_ext("topic", topic),
        )
        .ok()?;
    if r.code != 0 {
        return None;
    }
    ferrocket_protocol::fastjson::from_slice(&r.body).ok()
}

#[test]
fn auto_create_through_tbw102_reaches_the_name_server() {
    let dir = TempDir::new("ns");
    let (_ns, ns_addr) = start_namesrv(dir.path(), "127.0.0.1");
    let mut b = Broker::start(&format!("namesrvAddr = {ns_addr}"));
    let mut ns = RawClient::connect(&ns_addr).unwrap();
    let tbw = eventually(Duration::from_secs(30), || route(&mut ns, "TBW102"));
    assert!(tbw.is_some(), "TBW102 route registered");

    let mut c = b.client();
    let r = c
        .call(send_req(
            "AutoTopic",
            -1,
            b"x",
            None,
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let rt = eventually(Duration::from_secs(30), || route(&mut ns, "AutoTopic"))
        .expect("auto-created topic routed");
    assert_eq!(rt["queueDatas"][0]["writeQueueNums"], 4);
    assert_eq!(rt["queueDatas"][0]["brokerName"], "broker-t");

    // SIGTERM unregisters: the route goes away.
    assert_eq!(b.stop(), Some(0));
    let gone = eventually(Duration::from_secs(30), || {
        route(&mut ns, "AutoTopic").is_none().then_some(())
    });
    assert!(gone.is_some(), "route removed after unregister");
}

#[test]
fn a_created_topic_is_routed_by_the_time_the_create_answers() {
    let dir = TempDir::new("ns");
    let (_ns, ns_addr) = start_namesrv(dir.path(), "127.0.0.1");
    let b = Broker::start(&format!("namesrvAddr = {ns_addr}"));
    let mut ns = RawClient::connect(&ns_addr).unwrap();
    assert!(eventually(Duration::from_secs(30), || route(&mut ns, "TBW102")).is_some());
    // As in RocketMQ, UPDATE_AND_CREATE_TOPIC answers after the broker has registered the
    // change, so `mqadmin updateTopic` followed at once by a send finds the route.
    let mut c = b.client();
    for i in 0..5 {
        let topic = format!("Created{i}");
        create_topic(&mut c, &topic, 3);
        let rt = route(&mut ns, &topic).unwrap_or_else(|| panic!("{topic} not routed yet"));
        assert_eq!(rt["queueDatas"][0]["writeQueueNums"], 3);
    }
}

#[test]
fn slave_learns_its_master_through_the_name_server() {
    let dir = TempDir::new("ns");
    let (_ns, ns_addr) = start_namesrv(dir.path(), "127.0.0.1");
    let master = Broker::start(&format!(
        "namesrvAddr = {ns_addr}\nbrokerRole = ASYNC_MASTER"
    ));
    let mut m = master.client();
    let r = m
        .call(send_req(
            "Replicated",
            0,
            b"one",
            None,
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let slave = Broker::start(&format!(
        "namesrvAddr = {ns_addr}\nbrokerRole = SLAVE\nbrokerId = 1"
    ));
    let mut s = slave.client();
    // Topic config (metadata sync, every 10 s) and data (HA stream) both reach the slave.
    let got = eventually(Duration::from_secs(60), || {
        let r = s
            .call(crate::util::pull_req(
                "G",
                "Replicated",
                0,
                0,
                "*",
                0,
                SerializeType::Json,
            ))
            .unwrap();
        (r.code == 0).then(|| crate::util::decode_all(&r.body))
    })
    .expect("slave serves the master's messages");
    assert_eq!(got[0].body.as_ref(), b"one");
    // Both appear in the route.
    let mut ns = RawClient::connect(&ns_addr).unwrap();
    let rt = eventually(Duration::from_secs(30), || {
        let rt = route(&mut ns, "Replicated")?;
        (rt["brokerDatas"][0]["brokerAddrs"].as_object()?.len() == 2).then_some(rt)
    });
    assert!(rt.is_some(), "master and slave in the route");
}

/// A stand-in name server on 127.0.0.1 that answers REGISTER_BROKER with success and
/// QUERY_DATA_VERSION with "unchanged" (echoing the version asked about), counting both, and
/// keeping whether every registration body was RocketMQ's compressed form.
struct CountingNamesrv {
    addr: String,
    registers: Arc<AtomicUsize>,
    queries: Arc<AtomicUsize>,
    all_compressed: Arc<AtomicBool>,
}

impl CountingNamesrv {
    fn start() -> CountingNamesrv {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let ns = CountingNamesrv {
            addr,
            registers: Arc::default(),
            queries: Arc::default(),
            all_compressed: Arc::new(AtomicBool::new(true)),
        };
        let (r, q, c) = (
            Arc::clone(&ns.registers),
            Arc::clone(&ns.queries),
            Arc::clone(&ns.all_compressed),
        );
        std::thread::spawn(move || {
            for s in l.incoming().take(16) {
                let Ok(mut s) = s else { continue };
                let (r, q, c) = (Arc::clone(&r), Arc::clone(&q), Arc::clone(&c));
                std::thread::spawn(move || {
                    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
                    let mut buf = BytesMut::new();
                    let mut chunk = [0u8; 64 * 1024];
                    loop {
                        while let Ok(Some(req)) = frame::decode(&mut buf, 16 << 20) {
                            let mut resp = RemotingCommand::response_to(&req, 0);
                            if req.code == RequestCode::REGISTER_BROKER as i32 {
                                r.fetch_add(1, Ordering::SeqCst);
                                let compressed = req.ext("compressed") == Some("true")
                                    && RegisterBrokerBody::decode(&req.body, true).is_ok();
                                if !compressed {
                                    c.store(false, Ordering::SeqCst);
                                }
                            } else if req.code == RequestCode::QUERY_DATA_VERSION as i32 {
                                q.fetch_add(1, Ordering::SeqCst);
                                resp = resp.with_ext("changed", false).with_body(req.body.clone());
                            }
                            let mut out = BytesMut::new();
                            frame::encode(&resp, &mut out).unwrap();
                            if s.write_all(&out).is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        ns
    }
}

/// `compressedRegister=true`: the real name server takes the zlib body and routes the topics.
/// `forceRegister=false`: a periodic round (every 10 s, the shortest RocketMQ allows) asks
/// QUERY_DATA_VERSION instead of registering while both name servers hold the broker's
/// version; a topic change registers at once.
#[test]
fn compressed_registration_and_periodic_rounds_that_only_ask() {
    let dir = TempDir::new("ns");
    let (_ns, ns_addr) = start_namesrv(dir.path(), "127.0.0.1");
    let fake = CountingNamesrv::start();
    let b = Broker::start(&format!(
        "namesrvAddr = {ns_addr};{}\ncompressedRegister = true\nforceRegister = false\nregisterNameServerPeriod = 10000",
        fake.addr
    ));
    let mut ns = RawClient::connect(&ns_addr).unwrap();
    let tbw = eventually(Duration::from_secs(30), || route(&mut ns, "TBW102"));
    assert!(
        tbw.is_some(),
        "TBW102 routed from a compressed registration"
    );
    let mut c = b.client();
    create_topic(&mut c, "Zipped", 3);
    let rt = route(&mut ns, "Zipped").expect("a topic change registers at once");
    assert_eq!(rt["queueDatas"][0]["writeQueueNums"], 3);

    let registered = fake.registers.load(Ordering::SeqCst);
    let asked = fake.queries.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(11_500));
    let registered_after = fake.registers.load(Ordering::SeqCst);
    let asked_after = fake.queries.load(Ordering::SeqCst);
    assert!(
        asked_after > asked,
        "a periodic round asks: {asked} -> {asked_after}"
    );
    assert_eq!(
        registered_after, registered,
        "periodic rounds with nothing new do not register"
    );
    assert!(
        registered >= 2,
        "the first round and the topic change registered"
    );
    assert!(fake.all_compressed.load(Ordering::SeqCst));
    assert!(route(&mut ns, "Zipped").is_some());
}
