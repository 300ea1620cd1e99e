//! RocketMQ 5.x's gRPC API served by the broker, driven by the official Python client
//! (PyPI `rocketmq-python-client`, installed by `.ci/run`): normal, FIFO and delayed sends, read
//! back over the remoting protocol, so both protocols see the same messages.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::SerializeType;
use ferrocket_testkit::{free_port, wait_for_port};

use ferrocket_protocol::{RemotingCommand, RequestCode};

use crate::util::{create_topic, decode_all, eventually, props, pull_req, send_req, Broker};

const TOPIC: &str = "GrpcTopic";

/// Runs the Python producer for at most 90 s; returns its JSON lines.
fn run_python_producer(endpoint: &str, delay_at_s: u64) -> Vec<serde_json::Value> {
    run_python("producer.py", &[endpoint, TOPIC, &delay_at_s.to_string()])
}

/// Runs `tests/it/grpc/<script>` with `args` for at most 90 s; returns its JSON lines.
fn run_python(script: &str, args: &[&str]) -> Vec<serde_json::Value> {
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
fn messages(b: &Broker) -> BTreeMap<i32, Vec<StoredMessage>> {
    messages_of(b, TOPIC, 4)
}

fn messages_of(b: &Broker, topic: &str, queues: i32) -> BTreeMap<i32, Vec<StoredMessage>> {
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

fn events<'a>(lines: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

fn bodies_of(lines: &[&serde_json::Value]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|l| l["body"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// Sent over remoting, received over gRPC: ack, a longer invisible time, redelivery with a
/// higher attempt after the invisible time (across a broker restart), DLQ past the attempts.
#[test]
fn the_official_python_simple_consumer_receives_acks_and_gets_redeliveries() {
    const POP_TOPIC: &str = "GrpcPopTopic";
    let gport = free_port();
    let mut b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    let mut c = b.client();
    create_topic(&mut c, POP_TOPIC, 2);
    let mut ids = BTreeMap::new();
    for (i, (tag, body)) in [
        ("A", "a-0"),
        ("A", "a-1"),
        ("B", "b-0"),
        ("A", "a-2"),
        ("B", "b-1"),
        ("A", "a-3"),
    ]
    .into_iter()
    .enumerate()
    {
        let id = format!("7F00000100002A9F00000000000{i:05}");
        let req = send_req(
            POP_TOPIC,
            (i % 2) as i32,
            body.as_bytes(),
            None,
            true,
            SerializeType::Json,
        )
        .with_ext("i", props(Some(tag), &[("UNIQ_KEY", id.as_str())]));
        assert_eq!(c.call(req).unwrap().code, 0);
        ids.insert(body.to_string(), id);
    }
    // One try only for the DLQ group: not acked in time means dead.
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(br#"{"groupName":"PopDlqGroup","retryMaxTimes":0}"#.to_vec()),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    drop(c);

    let first = run_python("consumer.py", &[&endpoint, POP_TOPIC, "PopGroup", "first"]);
    let got = events(&first, "received");
    assert_eq!(bodies_of(&got), ["a-0", "a-1", "a-2", "a-3"], "{first:?}");
    for g in &got {
        assert_eq!(g["attempt"], 1, "{g}");
        assert_eq!(g["tag"], "A");
        assert_eq!(
            g["id"].as_str(),
            Some(ids[g["body"].as_str().unwrap()].as_str())
        );
    }
    assert_eq!(bodies_of(&events(&first, "acked")), ["a-0", "a-1"]);
    assert_eq!(bodies_of(&events(&first, "extended")), ["a-2"]);

    // What is in flight survives a restart.
    assert_eq!(b.stop(), Some(0));
    b.restart();
    wait_for_port(&endpoint, Duration::from_secs(30));

    let second = run_python("consumer.py", &[&endpoint, POP_TOPIC, "PopGroup", "second"]);
    let again = events(&second, "received");
    assert_eq!(bodies_of(&again), ["a-3"], "{second:?}");
    assert_eq!(again[0]["attempt"], 2, "{second:?}");
    assert!(events(&second, "unexpected").is_empty(), "{second:?}");

    let dlq = run_python("consumer.py", &[&endpoint, POP_TOPIC, "PopDlqGroup", "dlq"]);
    assert_eq!(
        bodies_of(&events(&dlq, "received")),
        ["b-0", "b-1"],
        "{dlq:?}"
    );
    assert!(events(&dlq, "unexpected").is_empty(), "{dlq:?}");
    let dead = eventually(Duration::from_secs(10), || {
        let m: Vec<String> = messages_of(&b, "%DLQ%PopDlqGroup", 1)
            .into_values()
            .flatten()
            .map(|m| body(&m))
            .collect();
        (m.len() == 2).then_some(m)
    })
    .expect("both B messages in the DLQ");
    let mut dead = dead;
    dead.sort();
    assert_eq!(dead, ["b-0", "b-1"]);
}

/// The PushConsumer: assignments, receive loops, a failed consumption coming back with the next
/// attempt after the group's backoff.
#[test]
fn the_official_python_push_consumer_consumes_and_retries_a_failure() {
    const PUSH_TOPIC: &str = "GrpcPushTopic";
    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    let mut c = b.client();
    create_topic(&mut c, PUSH_TOPIC, 4);
    for i in 0..5 {
        let body = format!("p-{i}");
        let req = send_req(
            PUSH_TOPIC,
            i % 4,
            body.as_bytes(),
            Some("T"),
            true,
            SerializeType::Json,
        )
        .with_ext(
            "i",
            props(Some("T"), &[("UNIQ_KEY", format!("ID-{i}").as_str())]),
        );
        assert_eq!(c.call(req).unwrap().code, 0);
    }
    let lines = run_python(
        "push_consumer.py",
        &[&endpoint, PUSH_TOPIC, "PushGroup", "5"],
    );
    let end = events(&lines, "end");
    assert_eq!(end.len(), 1, "{lines:?}");
    assert_eq!(
        end[0]["consumed"],
        serde_json::json!(["p-0", "p-1", "p-2", "p-3", "p-4"]),
        "{lines:?}"
    );
    let p1: Vec<i64> = events(&lines, "delivered")
        .into_iter()
        .filter(|l| l["body"] == "p-1")
        .map(|l| l["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(&p1[..2], [1, 2], "{lines:?}");
}

/// Transactions: commit visible once, rollback never, an open one checked back over the
/// producer's Telemetry stream and committed by its checker.
#[test]
fn the_official_python_producer_commits_rolls_back_and_answers_checks() {
    const TX_TOPIC: &str = "GrpcTxTopic";
    let gport = free_port();
    let b = Broker::start(&format!(
        "grpcServerPort = {gport}\ntransactionTimeOut = 1000\ntransactionCheckInterval = 500"
    ));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    create_topic(&mut b.client(), TX_TOPIC, 2);
    let lines = run_python("transaction.py", &[&endpoint, TX_TOPIC]);
    assert_eq!(events(&lines, "sent").len(), 3, "{lines:?}");
    assert_eq!(
        bodies_of(&events(&lines, "checked")),
        ["tx-open"],
        "{lines:?}"
    );
    let visible = eventually(Duration::from_secs(15), || {
        let mut v: Vec<String> = messages_of(&b, TX_TOPIC, 2)
            .into_values()
            .flatten()
            .map(|m| body(&m))
            .collect();
        v.sort();
        (v.len() >= 2).then_some(v)
    })
    .expect("committed messages visible");
    assert_eq!(visible, ["tx-commit", "tx-open"]);
    // Nothing more shows up later (the rollback stays invisible, no commit is applied twice).
    std::thread::sleep(Duration::from_secs(2));
    let mut again: Vec<String> = messages_of(&b, TX_TOPIC, 2)
        .into_values()
        .flatten()
        .map(|m| body(&m))
        .collect();
    again.sort();
    assert_eq!(again, ["tx-commit", "tx-open"]);
}

/// An orderly group: one message of a queue in flight at a time, in queue order, the first
/// coming back (attempt 2) before anything after it.
#[test]
fn an_orderly_group_gets_one_message_of_a_queue_at_a_time_in_order() {
    const FIFO_TOPIC: &str = "GrpcFifoTopic";
    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    let mut c = b.client();
    create_topic(&mut c, FIFO_TOPIC, 1);
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(br#"{"groupName":"FifoGroup","consumeMessageOrderly":true}"#.to_vec()),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    for i in 0..5 {
        let body = format!("f-{i}");
        let req = send_req(
            FIFO_TOPIC,
            0,
            body.as_bytes(),
            None,
            true,
            SerializeType::Json,
        )
        .with_ext(
            "i",
            props(
                Some("F"),
                &[
                    ("UNIQ_KEY", format!("F-{i}").as_str()),
                    ("__SHARDINGKEY", "g"),
                ],
            ),
        );
        assert_eq!(c.call(req).unwrap().code, 0);
    }
    let lines = run_python("consumer.py", &[&endpoint, FIFO_TOPIC, "FifoGroup", "fifo"]);
    assert!(events(&lines, "unexpected").is_empty(), "{lines:?}");
    let seen: Vec<(String, i64)> = events(&lines, "received")
        .iter()
        .map(|l| {
            (
                l["body"].as_str().unwrap().to_string(),
                l["attempt"].as_i64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, i64)> = [
        ("f-0", 1),
        ("f-0", 2),
        ("f-1", 1),
        ("f-2", 1),
        ("f-3", 1),
        ("f-4", 1),
    ]
    .iter()
    .map(|(b, a)| (b.to_string(), *a))
    .collect();
    assert_eq!(seen, want, "{lines:?}");
}

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
    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
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

/// Bad requests get the status codes the clients know, and garbage on the port costs only that
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_requests_fail_the_call_not_the_broker() {
    use ferrocket_broker::grpc::pb;
    use pb::messaging_service_client::MessagingServiceClient;
    use std::io::Write;

    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    create_topic(&mut b.client(), "GrpcBadTopic", 1);
    // Not HTTP/2 at all.
    let mut s = std::net::TcpStream::connect(&endpoint).unwrap();
    let _ = s.write_all(b"\x00\xffgarbage that is no HTTP/2 preface\r\n\r\n");
    drop(s);

    let mut c = MessagingServiceClient::connect(format!("http://{endpoint}"))
        .await
        .unwrap();
    let code = |s: &Option<pb::Status>| s.as_ref().map(|s| s.code);
    let res = |name: &str| {
        Some(pb::Resource {
            resource_namespace: String::new(),
            name: name.into(),
        })
    };
    let r = c
        .query_route(pb::QueryRouteRequest {
            topic: res("NoSuchTopic"),
            endpoints: None,
        })
        .await
        .unwrap();
    assert_eq!(
        code(&r.get_ref().status),
        Some(pb::Code::TopicNotFound as i32)
    );
    let r = c
        .query_route(pb::QueryRouteRequest {
            topic: res("GrpcBadTopic"),
            endpoints: None,
        })
        .await
        .unwrap();
    assert_eq!(code(&r.get_ref().status), Some(pb::Code::Ok as i32));
    assert_eq!(r.get_ref().message_queues.len(), 1);
    assert_eq!(r.get_ref().message_queues[0].id, 0);

    let r = c
        .send_message(pb::SendMessageRequest { messages: vec![] })
        .await
        .unwrap();
    assert_eq!(code(&r.get_ref().status), Some(pb::Code::BadRequest as i32));
    let msg = |id: &str, body: &[u8]| pb::Message {
        topic: res("GrpcBadTopic"),
        user_properties: Default::default(),
        system_properties: Some(pb::SystemProperties {
            message_id: id.into(),
            ..Default::default()
        }),
        body: body.to_vec(),
    };
    for (m, want) in [
        (msg("", b"x"), pb::Code::IllegalMessageId),
        (msg("ID1", b""), pb::Code::BadRequest),
        (
            msg("ID2", &vec![0u8; 4 * 1024 * 1024 + 1]),
            pb::Code::MessageBodyTooLarge,
        ),
    ] {
        let r = c
            .send_message(pb::SendMessageRequest { messages: vec![m] })
            .await
            .unwrap();
        assert_eq!(
            code(&r.get_ref().status),
            Some(want as i32),
            "{:?}",
            r.get_ref()
        );
        assert_eq!(r.get_ref().entries.len(), 1);
    }
    let r = c
        .ack_message(pb::AckMessageRequest {
            group: res("G"),
            topic: res("GrpcBadTopic"),
            entries: vec![pb::AckMessageEntry {
                message_id: "x".into(),
                receipt_handle: "not a handle".into(),
                lite_topic: None,
            }],
        })
        .await
        .unwrap();
    assert_eq!(
        code(&r.get_ref().status),
        Some(pb::Code::InvalidReceiptHandle as i32)
    );
    assert_eq!(r.get_ref().entries.len(), 1);
    let r = c
        .change_invisible_duration(pb::ChangeInvisibleDurationRequest {
            group: res("G"),
            topic: res("GrpcBadTopic"),
            receipt_handle: "1 0 0 ffff GrpcBadTopic".into(),
            invisible_duration: Some(prost_types::Duration {
                seconds: 1,
                nanos: 0,
            }),
            message_id: "x".into(),
            lite_topic: None,
            suspend: None,
        })
        .await
        .unwrap();
    assert_eq!(
        code(&r.get_ref().status),
        Some(pb::Code::InvalidReceiptHandle as i32)
    );
    // An empty long poll ends with MESSAGE_NOT_FOUND before the client's deadline.
    let mut req = tonic::Request::new(pb::ReceiveMessageRequest {
        group: res("G"),
        message_queue: Some(pb::MessageQueue {
            topic: res("GrpcBadTopic"),
            id: 0,
            ..Default::default()
        }),
        filter_expression: None,
        batch_size: 4,
        invisible_duration: Some(prost_types::Duration {
            seconds: 10,
            nanos: 0,
        }),
        auto_renew: false,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
        attempt_id: None,
    });
    req.set_timeout(Duration::from_secs(2));
    let t = Instant::now();
    let mut stream = c.receive_message(req).await.unwrap().into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    match first.content {
        Some(pb::receive_message_response::Content::Status(s)) => {
            assert_eq!(s.code, pb::Code::MessageNotFound as i32)
        }
        other => panic!("{other:?}"),
    }
    // Still serving.
    let r = c
        .heartbeat(pb::HeartbeatRequest {
            group: None,
            client_type: pb::ClientType::Producer as i32,
        })
        .await
        .unwrap();
    assert_eq!(code(&r.get_ref().status), Some(pb::Code::Ok as i32));
}

/// SQL92 filters on ReceiveMessage (`enablePropertyFilter=true`), and a bad expression refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_filters_by_sql92_properties() {
    use ferrocket_broker::grpc::pb;
    use pb::messaging_service_client::MessagingServiceClient;

    let gport = free_port();
    let b = Broker::start(&format!(
        "grpcServerPort = {gport}\nenablePropertyFilter = true"
    ));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    let mut rc = b.client();
    create_topic(&mut rc, "GrpcSqlTopic", 1);
    for n in 1..=3 {
        let req = send_req(
            "GrpcSqlTopic",
            0,
            format!("n{n}").as_bytes(),
            None,
            true,
            SerializeType::Json,
        )
        .with_ext(
            "i",
            props(
                Some("T"),
                &[
                    ("UNIQ_KEY", format!("SQL-{n}").as_str()),
                    ("n", &n.to_string()),
                ],
            ),
        );
        assert_eq!(rc.call(req).unwrap().code, 0);
    }
    let mut c = MessagingServiceClient::connect(format!("http://{endpoint}"))
        .await
        .unwrap();
    let receive = |expr: &str| pb::ReceiveMessageRequest {
        group: Some(pb::Resource {
            resource_namespace: String::new(),
            name: "SqlGroup".into(),
        }),
        message_queue: Some(pb::MessageQueue {
            topic: Some(pb::Resource {
                resource_namespace: String::new(),
                name: "GrpcSqlTopic".into(),
            }),
            id: 0,
            ..Default::default()
        }),
        filter_expression: Some(pb::FilterExpression {
            r#type: pb::FilterType::Sql as i32,
            expression: expr.into(),
        }),
        batch_size: 32,
        invisible_duration: Some(prost_types::Duration {
            seconds: 30,
            nanos: 0,
        }),
        auto_renew: false,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: 1,
            nanos: 0,
        }),
        attempt_id: None,
    };
    let mut got = Vec::new();
    let mut first_status = None;
    let mut s = c
        .receive_message(receive("n > 1"))
        .await
        .unwrap()
        .into_inner();
    while let Some(r) = s.message().await.unwrap() {
        match r.content {
            Some(pb::receive_message_response::Content::Status(st)) => first_status = Some(st.code),
            Some(pb::receive_message_response::Content::Message(m)) => {
                assert_eq!(
                    m.user_properties.get("n").map(String::as_str),
                    Some(&String::from_utf8_lossy(&m.body)[1..])
                );
                got.push(String::from_utf8(m.body).unwrap());
            }
            _ => {}
        }
    }
    assert_eq!(first_status, Some(pb::Code::Ok as i32));
    got.sort();
    assert_eq!(got, ["n2", "n3"]);
    let mut s = c
        .receive_message(receive("n >>> 1"))
        .await
        .unwrap()
        .into_inner();
    match s.message().await.unwrap().and_then(|r| r.content) {
        Some(pb::receive_message_response::Content::Status(st)) => {
            assert_eq!(
                st.code,
                pb::Code::IllegalFilterExpression as i32,
                "{}",
                st.message
            )
        }
        other => panic!("{other:?}"),
    }
}

/// Two brokers and a name server; the client is given one broker's gRPC endpoint: QueryRoute
/// names every master's queues, so sends spread over both brokers and receives reach both.
#[test]
fn the_route_spans_every_broker_of_the_cluster() {
    use crate::namesrv::{namesrv_bin, start_namesrv};
    use ferrocket_testkit::dledger::Ports;
    use ferrocket_testkit::{free_port_on, TempDir};

    const CL_TOPIC: &str = "GrpcClusterTopic";
    let bin = namesrv_bin().expect("mqnamesrv built");
    let (_ns, ns_addr, _ns_dir) = start_namesrv(&bin);
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

/// ForwardMessageToDeadLetterQueue (what push consumers of orderly groups do past their
/// attempts): the message lands in `%DLQ%<group>` and is not delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_forwarded_to_the_dlq_is_not_delivered_again() {
    use ferrocket_broker::grpc::pb;
    use pb::messaging_service_client::MessagingServiceClient;

    let gport = free_port();
    let b = Broker::start(&format!("grpcServerPort = {gport}"));
    let endpoint = format!("127.0.0.1:{gport}");
    wait_for_port(&endpoint, Duration::from_secs(10));
    let mut rc = b.client();
    create_topic(&mut rc, "GrpcDlqTopic", 1);
    let req = send_req(
        "GrpcDlqTopic",
        0,
        b"poison",
        None,
        true,
        SerializeType::Json,
    )
    .with_ext("i", props(Some("T"), &[("UNIQ_KEY", "POISON-1")]));
    assert_eq!(rc.call(req).unwrap().code, 0);
    let mut c = MessagingServiceClient::connect(format!("http://{endpoint}"))
        .await
        .unwrap();
    let res = |name: &str| {
        Some(pb::Resource {
            resource_namespace: String::new(),
            name: name.into(),
        })
    };
    let receive = |invisible_s: i64, poll_s: i64| pb::ReceiveMessageRequest {
        group: res("DlqGroup"),
        message_queue: Some(pb::MessageQueue {
            topic: res("GrpcDlqTopic"),
            id: 0,
            ..Default::default()
        }),
        filter_expression: None,
        batch_size: 1,
        invisible_duration: Some(prost_types::Duration {
            seconds: invisible_s,
            nanos: 0,
        }),
        auto_renew: false,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: poll_s,
            nanos: 0,
        }),
        attempt_id: None,
    };
    let mut s = c.receive_message(receive(1, 2)).await.unwrap().into_inner();
    let mut got = None;
    while let Some(r) = s.message().await.unwrap() {
        if let Some(pb::receive_message_response::Content::Message(m)) = r.content {
            got = Some(m);
        }
    }
    let m = got.expect("received");
    let sp = m.system_properties.unwrap();
    assert_eq!(sp.message_id, "POISON-1");
    let r = c
        .forward_message_to_dead_letter_queue(pb::ForwardMessageToDeadLetterQueueRequest {
            group: res("DlqGroup"),
            topic: res("GrpcDlqTopic"),
            receipt_handle: sp.receipt_handle.unwrap(),
            message_id: sp.message_id,
            delivery_attempt: 1,
            max_delivery_attempts: 1,
            lite_topic: None,
        })
        .await
        .unwrap();
    assert_eq!(
        r.get_ref().status.as_ref().map(|s| s.code),
        Some(pb::Code::Ok as i32)
    );
    // Past its 1 s invisible time it stays gone.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut s = c.receive_message(receive(1, 1)).await.unwrap().into_inner();
    let first = s.message().await.unwrap().unwrap();
    assert!(
        matches!(first.content, Some(pb::receive_message_response::Content::Status(ref st)) if st.code == pb::Code::MessageNotFound as i32),
        "{first:?}"
    );
    let dlq: Vec<String> = messages_of(&b, "%DLQ%DlqGroup", 1)
        .into_values()
        .flatten()
        .map(|m| body(&m))
        .collect();
    assert_eq!(dlq, ["poison"]);
}
