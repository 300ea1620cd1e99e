//! With a real `mqnamesrv`: the broker registers its topics, and a send to an unknown topic
//! through TBW102 auto-creates it and its route appears at the name server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};
use ferrocket_testkit::{free_port, wait_for_port, ProcessGuard, RawClient, TempDir};

use crate::util::{eventually, send_req, Broker};

fn namesrv_bin() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let p = exe.parent()?.parent()?.join("mqnamesrv");
    p.exists().then_some(p)
}

fn route(ns: &mut RawClient, topic: &str) -> Option<serde_json::Value> {
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
    let Some(bin) = namesrv_bin() else {
        eprintln!("mqnamesrv not built; run `cargo build -p ferrocket-namesrv --bins`");
        return;
    };
    let dir = TempDir::new("ns");
    let ns_port = free_port();
    let ns_conf = dir.path().join("namesrv.conf");
    std::fs::write(
        &ns_conf,
        format!(
            "listenPort={ns_port}\nkvConfigPath={}\n",
            dir.path().join("kv.json").display()
        ),
    )
    .unwrap();
    let _ns = ProcessGuard::spawn(
        "mqnamesrv",
        Command::new(&bin)
            .arg("-c")
            .arg(&ns_conf)
            .env("RUST_LOG", "warn")
            .current_dir(Path::new(dir.path())),
    );
    let ns_addr = format!("127.0.0.1:{ns_port}");
    wait_for_port(&ns_addr, Duration::from_secs(30));
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
