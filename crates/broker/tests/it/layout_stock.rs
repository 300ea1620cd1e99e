//! RocketMQ's stock 2m-2s-sync layout, files unchanged, as six hosts on loopback: two name
//! servers (127.0.0.53, .54), broker-a and its slave (.55, .56), broker-b and its slave (.57,
//! .58). Per-host settings come from the environment and `-n`, as an operator would pass them.
//! Driven through the client crate: sends spread over both masters; broker-a's master is
//! SIGKILLed; every acknowledged message is still consumed (broker-a's from its slave) and sends
//! go on through broker-b.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferrocket_client::{
    Admin, ClientConfig, ConsumeFrom, Message, Producer, PullConsumer, SendStatus,
};
use ferrocket_testkit::{
    bin_path, free_port_on, start_namesrv, wait_for_port, ProcessGuard, TempDir,
};

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

#[test]
fn stock_2m_2s_sync_layout_keeps_every_acknowledged_message() {
    let dir = TempDir::new("layout-stock");
    let conf_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/conf/2m-2s-sync");
    let mut namesrvs = Vec::new();
    let mut guards = Vec::new();
    for ip in ["127.0.0.53", "127.0.0.54"] {
        let ns_dir = dir.path().join(format!("ns-{ip}"));
        std::fs::create_dir_all(&ns_dir).unwrap();
        let (guard, addr) = start_namesrv(&ns_dir, ip);
        guards.push(guard);
        namesrvs.push(addr);
    }
    let ns = namesrvs.join(";");
    let mut brokers = Vec::new();
    for (file, ip) in [
        ("broker-a.properties", "127.0.0.55"),
        ("broker-a-s.properties", "127.0.0.56"),
        ("broker-b.properties", "127.0.0.57"),
        ("broker-b-s.properties", "127.0.0.58"),
    ] {
        let port = port_on(ip);
        let g = ProcessGuard::spawn(
            file,
            Command::new(bin_path("mqbroker"))
                .arg("-c")
                .arg(conf_dir.join(file))
                .arg("-n")
                .arg(&ns)
                .env("FERROCKET_brokerIP1", ip)
                .env("FERROCKET_listenPort", port.to_string())
                .env(
                    "FERROCKET_storePathRootDir",
                    dir.path().join(file).display().to_string(),
                )
                .env("RUST_LOG", "warn"),
        );
        wait_for_port(&format!("{ip}:{port}"), Duration::from_secs(30));
        brokers.push(g);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let config = ClientConfig::new(&ns).timeout(Duration::from_secs(5));
        let admin = Admin::new(config.clone()).unwrap();
        // Both pairs registered with both name servers, both slaves replicating.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ci = admin.cluster_info().await.unwrap();
            let full = ["broker-a", "broker-b"].iter().all(|n| {
                ci.broker_addr_table
                    .get(*n)
                    .is_some_and(|b| b.broker_addrs.len() == 2)
            });
            if full {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "layout never fully registered: {ci:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        admin
            .create_topic("DefaultCluster", "Layout", 4)
            .await
            .unwrap();
        let p = Producer::builder()
            .config(config.clone())
            .group("layout-pg")
            .build()
            .unwrap();
        // SYNC_MASTER answers SendOk once its slave acknowledges: wait for both slaves.
        let masters = admin.masters("DefaultCluster").await.unwrap();
        assert_eq!(masters.len(), 2);
        let deadline = Instant::now() + Duration::from_secs(30);
        for (name, addr) in &masters {
            loop {
                let rt = admin.broker_runtime(addr).await.unwrap();
                if rt.get("haSlaveCount").map(String::as_str) == Some("1") {
                    break;
                }
                assert!(Instant::now() < deadline, "{name}'s slave never connected");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let mut acked = std::collections::BTreeSet::new();
        for i in 0..100 {
            let r = p
                .send(Message::new("Layout", format!("m-{i}")))
                .await
                .unwrap();
            assert_eq!(r.status, SendStatus::SendOk, "{r:?}");
            acked.insert(format!("m-{i}"));
        }

        // broker-a's master dies.
        brokers[0].kill();

        // Every acknowledged message is consumed, broker-a's from its slave.
        let c = PullConsumer::builder()
            .config(config.clone())
            .group("layout-cg")
            .consume_from(ConsumeFrom::First)
            .build()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut got = std::collections::BTreeSet::new();
        while !acked.is_subset(&got) {
            assert!(
                Instant::now() < deadline,
                "missing after the kill: {:?}",
                acked.difference(&got).count()
            );
            if c.assignment().await.len() < 8 {
                let _ = c.subscribe("Layout", "*").await;
            }
            for m in c.poll(Duration::from_millis(300)).await.unwrap_or_default() {
                got.insert(String::from_utf8_lossy(&m.body).to_string());
            }
        }

        // Sends go on through broker-b once the route drops broker-a's master.
        let deadline = Instant::now() + Duration::from_secs(40);
        let mut ok = 0;
        while ok < 20 {
            match p.send(Message::new("Layout", "after")).await {
                Ok(r) => {
                    assert_eq!(r.queue.broker_name, "broker-b");
                    ok += 1;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "sends never resumed: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
    drop(brokers);
    drop(guards);
}
