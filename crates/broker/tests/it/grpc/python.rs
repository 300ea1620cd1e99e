//! The official Python client: Producer (normal, FIFO, delayed, transactional), SimpleConsumer
//! (ack, invisible time, redelivery across a restart, DLQ, orderly groups) and PushConsumer.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::SerializeType;
use ferrocket_protocol::{RemotingCommand, RequestCode};
use ferrocket_testkit::wait_for_port;

use super::*;
use crate::util::{create_topic, eventually, props, send_req};

#[test]
fn the_official_python_client_sends_normal_fifo_and_delayed_messages() {
    let (b, endpoint) = start_grpc_broker("");
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

/// Sent over remoting, received over gRPC: ack, a longer invisible time, redelivery with a
/// higher attempt after the invisible time (across a broker restart), DLQ past the attempts.
#[test]
fn the_official_python_simple_consumer_receives_acks_and_gets_redeliveries() {
    const POP_TOPIC: &str = "GrpcPopTopic";
    let (mut b, endpoint) = start_grpc_broker("");
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
    let (b, endpoint) = start_grpc_broker("");
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
    let (b, endpoint) =
        start_grpc_broker("transactionTimeOut = 1000\ntransactionCheckInterval = 500");
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
    let (b, endpoint) = start_grpc_broker("");
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
