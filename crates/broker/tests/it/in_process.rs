//! The library API: `start` in the test's own runtime, requests over a socket, `shutdown`; and
//! admin round trips (subscription groups, topic deletion, time-based offsets).

use std::collections::HashMap;

use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use ferrocket_testkit::{RawClient, TempDir};

use crate::util::{broker_port, create_topic, send_req};

fn conf(dir: &TempDir, port: u16) -> ferrocket_broker::BrokerConfig {
    let mut p = HashMap::new();
    for (k, v) in [
        ("brokerName", "inproc".to_string()),
        ("brokerIP1", "127.0.0.1".to_string()),
        ("listenPort", port.to_string()),
        (
            "storePathRootDir",
            dir.path().join("store").display().to_string(),
        ),
        ("mappedFileSizeCommitLog", "16777216".to_string()),
    ] {
        p.insert(k.to_string(), v);
    }
    ferrocket_broker::BrokerConfig::from_properties(&p).unwrap()
}

#[test]
fn start_serve_admin_and_shutdown_in_process() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = TempDir::new("inproc");
    let port = broker_port();
    let handle = rt
        .block_on(ferrocket_broker::start(conf(&dir, port)))
        .unwrap();
    assert_eq!(handle.main_addr().port(), port);
    assert_eq!(handle.fast_addr().port(), port - 2);
    assert_eq!(handle.broker_addr(), format!("127.0.0.1:{port}"));
    let addr = handle.main_addr().to_string();

    let mut c = RawClient::connect(&addr).unwrap();
    create_topic(&mut c, "IP", 1);
    // Sends also work on the fast port.
    let mut fast = RawClient::connect(&handle.fast_addr().to_string()).unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for i in 0..3 {
        let r = fast
            .call(send_req(
                "IP",
                0,
                format!("{i}").as_bytes(),
                None,
                true,
                SerializeType::Json,
            ))
            .unwrap();
        assert_eq!(r.code, 0);
    }
    let q = |c: &mut RawClient, code: RequestCode, extra: Option<(&str, i64)>| {
        let mut req = RemotingCommand::request(code)
            .with_ext("topic", "IP")
            .with_ext("queueId", 0);
        if let Some((k, v)) = extra {
            req = req.with_ext(k, v);
        }
        c.call(req).unwrap()
    };
    assert_eq!(
        q(&mut c, RequestCode::GET_MIN_OFFSET, None).ext("offset"),
        Some("0")
    );
    let r = q(&mut c, RequestCode::GET_EARLIEST_MSG_STORETIME, None);
    let ts: i64 = r.ext("timestamp").unwrap().parse().unwrap();
    assert!(ts >= before - 1000, "{ts} vs {before}");
    let r = q(
        &mut c,
        RequestCode::SEARCH_OFFSET_BY_TIMESTAMP,
        Some(("timestamp", 0)),
    );
    assert_eq!(r.ext("offset"), Some("0"));
    let r = q(
        &mut c,
        RequestCode::SEARCH_OFFSET_BY_TIMESTAMP,
        Some(("timestamp", i64::MAX / 2)),
    );
    assert_eq!(r.ext("offset"), Some("3"));

    let r = c
        .call(RemotingCommand::request(RequestCode::GET_BROKER_CONFIG))
        .unwrap();
    assert_eq!(r.code, 0);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.contains("brokerName=inproc\n"), "{text}");
    assert!(text.contains(&format!("listenPort={port}\n")));

    // Subscription groups.
    let g = serde_json::json!({"groupName": "SG", "consumeEnable": false, "retryQueueNums": 2});
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(serde_json::to_vec(&g).unwrap()),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let r = c
        .call(RemotingCommand::request(
            RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
        ))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["subscriptionGroupTable"]["SG"]["retryQueueNums"], 2);
    assert_eq!(v["subscriptionGroupTable"]["SG"]["consumeEnable"], false);
    // A group that may not consume is refused.
    let r = c
        .call(crate::util::pull_req(
            "SG",
            "IP",
            0,
            0,
            "*",
            0,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::NO_PERMISSION as i32);

    // Deleting a topic removes its config.
    let r = c
        .call(RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_BROKER).with_ext("topic", "IP"))
        .unwrap();
    assert_eq!(r.code, 0);
    let r = c
        .call(send_req("IP2", 0, b"x", None, true, SerializeType::Json).with_ext("c", "NoTemplate"))
        .unwrap();
    assert_eq!(r.code, ResponseCode::TOPIC_NOT_EXIST as i32);
    let r = c
        .call(RemotingCommand::request(RequestCode::GET_ALL_TOPIC_CONFIG))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["topicConfigTable"]["IP"].is_null());

    drop(c);
    drop(fast);
    rt.block_on(handle.shutdown()).unwrap();
    assert!(RawClient::connect(&addr).is_err(), "stopped listening");
}
