//! RocketMQ 5.x's gRPC API served by the broker, driven by the official Python client
//! (PyPI `rocketmq-python-client`, installed by `.ci/run`): normal, FIFO and delayed sends, read
//! back over the remoting protocol, so both protocols see the same messages.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::SerializeType;
use ferrocket_testkit::{free_port, wait_for_port};

use crate::util::{create_topic, decode_all, eventually, pull_req, Broker};

const TOPIC: &str = "GrpcTopic";

/// Runs the Python producer for at most 90 s; returns its JSON lines.
fn run_python_producer(endpoint: &str, delay_at_s: u64) -> Vec<serde_json::Value> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/grpc/producer.py");
    let mut child = Command::new("python3")
        .args([script, endpoint, TOPIC, &delay_at_s.to_string()])
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
            panic!("the Python producer did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        status.success(),
        "python producer failed ({status}):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Every message of the topic over remoting, by queue, in queue order.
fn messages(b: &Broker) -> BTreeMap<i32, Vec<StoredMessage>> {
    let mut c = b.client();
    let mut out = BTreeMap::new();
    for q in 0..4 {
        let r = c
            .call(pull_req("G", TOPIC, q, 0, "*", 0, SerializeType::Json))
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

fn body(m: &StoredMessage) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

#[test]
fn the_official_python_client_sends_normal_fifo_and_delayed_messages() {
    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    create_topic(&mut b.client(), TOPIC, 4);
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let due_s = now_s + 12;
    let sent = run_python_producer(&endpoint, due_s);
    assert_eq!(sent.len(), 9, "{sent:?}");
    let ids: BTreeMap<String, (String, i64)> = sent
        .iter()
        .map(|v| {
            (
                v["body"].as_str().unwrap().to_string(),
                (
                    v["id"].as_str().unwrap().to_string(),
                    v["offset"].as_i64().unwrap(),
                ),
            )
        })
        .collect();

    let by_queue = messages(&b);
    let all: Vec<(i32, &StoredMessage)> = by_queue
        .iter()
        .flat_map(|(q, ms)| ms.iter().map(move |m| (*q, m)))
        .collect();
    // Normal sends: every property the client set, its message id as UNIQ_KEY, its offset.
    for i in 0..5 {
        let name = format!("normal-{i}");
        let (_, m) = all
            .iter()
            .find(|(_, m)| body(m) == name)
            .unwrap_or_else(|| panic!("{name} not stored"));
        let (id, offset) = &ids[&name];
        assert_eq!(m.properties.get("UNIQ_KEY"), Some(id.as_str()));
        assert_eq!(m.properties.get("TAGS"), Some("TagA"));
        assert_eq!(m.properties.get("KEYS"), Some(format!("key-{i}").as_str()));
        assert_eq!(m.properties.get("color"), Some("red"));
        assert_eq!(m.queue_offset, *offset);
    }
    // FIFO: one message group, one queue, in send order.
    let fifo: Vec<(i32, String)> = all
        .iter()
        .filter(|(_, m)| body(m).starts_with("fifo-"))
        .map(|(q, m)| (*q, body(m)))
        .collect();
    assert_eq!(fifo.len(), 3, "{fifo:?}");
    assert!(fifo.iter().all(|(q, _)| *q == fifo[0].0), "{fifo:?}");
    let order: Vec<&str> = fifo.iter().map(|(_, b)| b.as_str()).collect();
    assert_eq!(order, ["fifo-0", "fifo-1", "fifo-2"]);
    // Delayed: absent until due, then delivered to the topic.
    let due_ms = due_s as i64 * 1000;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    if now_ms < due_ms - 1000 {
        assert!(
            !all.iter().any(|(_, m)| body(m) == "delayed-0"),
            "delayed message visible before its delivery time"
        );
    }
    let delayed = eventually(Duration::from_secs(30), || {
        messages(&b)
            .into_values()
            .flatten()
            .find(|m| body(m) == "delayed-0")
    })
    .expect("the delayed message was delivered");
    assert!(
        delayed.store_timestamp >= due_ms - 1000,
        "stored at {} for delivery at {due_ms}",
        delayed.store_timestamp
    );
    assert_eq!(
        delayed.properties.get("UNIQ_KEY"),
        Some(ids["delayed-0"].0.as_str())
    );
}
