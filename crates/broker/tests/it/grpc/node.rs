//! The official Node.js client.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::*;
use crate::util::create_topic;

/// The official Node.js client (npm `rocketmq-client-nodejs`, installed by `.ci/run` into
/// `tests/it/grpc/node`): its Producer and SimpleConsumer, which wait for the server's Settings
/// and only use queue 0 of the route.
#[test]
fn the_official_node_client_sends_and_receives() {
    const NODE_TOPIC: &str = "GrpcNodeTopic";
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/grpc/node");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/rocketmq-client-nodejs")
            .exists(),
        "run `npm install` in {dir} (.ci/run does)"
    );
    let (b, endpoint) = start_grpc_broker("");
    create_topic(&mut b.client(), NODE_TOPIC, 2);
    let mut child = Command::new("node")
        .current_dir(dir)
        .args(["node_client.js", &endpoint, NODE_TOPIC, "NodeGroup", "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node");
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("the Node client did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sent: BTreeMap<String, String> = events(&lines, "sent")
        .iter()
        .map(|l| {
            (
                l["body"].as_str().unwrap().into(),
                l["id"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(sent.len(), 3, "{stdout}");
    let got = events(&lines, "received");
    assert_eq!(bodies_of(&got), ["node-0", "node-1", "node-2"], "{stdout}");
    for g in got {
        assert_eq!(
            g["id"].as_str(),
            Some(sent[g["body"].as_str().unwrap()].as_str())
        );
        assert_eq!(g["tag"], "N");
    }
    // Stored like any other message: visible to a remoting pull too.
    let stored: Vec<String> = messages_of(&b, NODE_TOPIC, 2)
        .into_values()
        .flatten()
        .map(|m| body(&m))
        .collect();
    assert_eq!(stored.len(), 3);
}
