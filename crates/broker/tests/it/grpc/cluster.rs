//! A two-broker cluster behind one gRPC endpoint.

use std::time::Duration;

use ferrocket_protocol::SerializeType;
use ferrocket_testkit::wait_for_port;

use super::*;
use crate::util::{create_topic, decode_all, eventually, pull_req};

/// Two brokers and a name server; the client is given one broker's gRPC endpoint: QueryRoute
/// names every master's queues, so sends spread over both brokers and receives reach both.
#[test]
fn the_route_spans_every_broker_of_the_cluster() {
    use ferrocket_testkit::dledger::Ports;
    use ferrocket_testkit::{free_port_on, start_namesrv, TempDir};

    const CL_TOPIC: &str = "GrpcClusterTopic";
    let ns_dir = TempDir::new("ns");
    let (_ns, ns_addr) = start_namesrv(ns_dir.path(), "127.0.0.1");
    let ips = ["127.0.9.61", "127.0.9.62"];
    let gport = loop {
        let p = free_port_on(ips[0]);
        if std::net::TcpListener::bind((ips[1], p)).is_ok() {
            break p;
        }
    };
    let mut ports = Ports::default();
    let mut guards = Vec::new();
    let mut dirs = Vec::new();
    let mut addrs = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let dir = TempDir::new("grpc-cluster");
        let port = ports.broker(ip);
        let conf = dir.path().join("broker.conf");
        std::fs::write(
            &conf,
            format!(
                "brokerClusterName = GrpcCluster\nbrokerName = broker-{i}\nbrokerId = 0\n\
                 brokerIP1 = {ip}\nlistenPort = {port}\nnamesrvAddr = {ns_addr}\n\
                 storePathRootDir = {}\nmappedFileSizeCommitLog = 16777216\n\
                 grpcServerPort = {gport}\n",
                dir.path().join("store").display()
            ),
        )
        .unwrap();
        guards.push(crate::util::spawn(&conf));
        let addr = format!("{ip}:{port}");
        wait_for_port(&addr, Duration::from_secs(30));
        wait_for_port(&format!("{ip}:{gport}"), Duration::from_secs(10));
        let mut c = ferrocket_testkit::RawClient::connect(&addr).unwrap();
        create_topic(&mut c, CL_TOPIC, 2);
        addrs.push(addr);
        dirs.push(dir);
    }
    // Both brokers registered the topic (registration is immediate on a topic change).
    let mut ns = ferrocket_testkit::RawClient::connect(&ns_addr).unwrap();
    eventually(Duration::from_secs(20), || {
        crate::namesrv::route(&mut ns, CL_TOPIC)
            .filter(|r| r["brokerDatas"].as_array().is_some_and(|b| b.len() == 2))
    })
    .expect("both brokers in the route");

    let endpoint = format!("{}:{gport}", ips[0]);
    let lines = run_python("cluster.py", &[&endpoint, CL_TOPIC, "ClusterGroup", "8"]);
    assert_eq!(events(&lines, "sent").len(), 8, "{lines:?}");
    let want: Vec<String> = (0..8).map(|i| format!("c-{i}")).collect();
    let mut got = bodies_of(&events(&lines, "received"));
    got.dedup();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(got, want_sorted, "{lines:?}");
    // Stored on both brokers.
    for addr in &addrs {
        let mut c = ferrocket_testkit::RawClient::connect(addr).unwrap();
        let mut n = 0;
        for q in 0..2 {
            let r = c
                .call(pull_req("G", CL_TOPIC, q, 0, "*", 0, SerializeType::Json))
                .unwrap();
            if r.code == 0 {
                n += decode_all(&r.body).len();
            }
        }
        assert!(n > 0, "no message on {addr}");
    }
}
