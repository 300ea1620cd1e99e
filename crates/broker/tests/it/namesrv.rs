//! With a real `mqnamesrv`: the broker registers its topics, and a send to an unknown topic
//! through TBW102 auto-creates it and its route appears at the name server.

use std::time::Duration;

use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
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
