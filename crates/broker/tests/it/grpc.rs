//! RocketMQ 5.x's gRPC API served by the broker. The official clients drive it: Python
//! (PyPI `rocketmq-python-client`, `python.rs`) and Node.js (npm `rocketmq-client-nodejs`,
//! `node.rs`), both installed by `.ci/run`; `raw.rs` calls it with the generated tonic client
//! (bad requests, filters, DLQ); `cluster.rs` a two-broker route. Messages are read back over the
//! remoting protocol, so both protocols see the same messages.

mod cluster;
mod node;
mod python;
mod raw;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::SerializeType;
use ferrocket_testkit::{free_port, wait_for_port};

use crate::util::{decode_all, pull_req, Broker};

pub(super) const TOPIC: &str = "GrpcTopic";

/// Runs the Python producer for at most 90 s; returns its JSON lines.
pub(super) fn run_python_producer(endpoint: &str, delay_at_s: u64) -> Vec<serde_json::Value> {
    run_python("producer.py", &[endpoint, TOPIC, &delay_at_s.to_string()])
}

/// Runs `tests/it/grpc/<script>` with `args` for at most 90 s; returns its JSON lines.
pub(super) fn run_python(script: &str, args: &[&str]) -> Vec<serde_json::Value> {
    let script = format!("{}/tests/it/grpc/{script}", env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new("python3")
        .arg(&script)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (with `pip install rocketmq-python-client`, see .ci/run)");
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{script} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "{script} failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Our scripts print JSON lines; anything else (a client library's own output) is skipped.
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Every message of the topic over remoting, by queue, in queue order.
pub(super) fn messages(b: &Broker) -> BTreeMap<i32, Vec<StoredMessage>> {
    messages_of(b, TOPIC, 4)
}

pub(super) fn messages_of(
    b: &Broker,
    topic: &str,
    queues: i32,
) -> BTreeMap<i32, Vec<StoredMessage>> {
    let mut c = b.client();
    let mut out = BTreeMap::new();
    for q in 0..queues {
        let r = c
            .call(pull_req("G", topic, q, 0, "*", 0, SerializeType::Json))
            .unwrap();
        out.insert(
            q,
            if r.code == 0 {
                decode_all(&r.body)
            } else {
                Vec::new()
            },
        );
    }
    out
}

pub(super) fn body(m: &StoredMessage) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

pub(super) fn events<'a>(
    lines: &'a [serde_json::Value],
    event: &str,
) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

pub(super) fn bodies_of(lines: &[&serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| l["body"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// A broker with gRPC on a free port plus `extra` conf lines; returns it and its gRPC endpoint
/// once that listens.
pub(super) fn start_grpc_broker(extra: &str) -> (Broker, String) {
    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}\n{extra}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    (b, endpoint)
}

/// A resource (topic or group) without namespace.
pub(super) fn res(name: &str) -> Option<ferrocket_broker::grpc::pb::Resource> {
    Some(ferrocket_broker::grpc::pb::Resource {
        resource_namespace: String::new(),
        name: name.into(),
    })
}
