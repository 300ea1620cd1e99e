//! Send and pull in both header serializations and both send header forms; tag filters;
//! queue and consumer offsets; oversize and bad topic names; write-protected topics.

use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};

use crate::util::{create_topic, decode_all, pull_req, send_req, Broker};

#[test]
fn send_then_pull_in_json_and_binary_headers() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "SP", 2);
    let mut n = 0;
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        for v2 in [false, true] {
            let body = format!("hello-{n}");
            let r = c
                .call(send_req("SP", 1, body.as_bytes(), Some("TagA"), v2, ser))
                .unwrap();
            assert_eq!(r.code, 0, "{:?}", r.remark);
            assert_eq!(
                r.serialize_type, ser,
                "answered in the request's serialization"
            );
            assert_eq!(r.ext("queueId"), Some("1"));
            assert_eq!(r.ext("queueOffset"), Some(n.to_string().as_str()));
            assert_eq!(r.ext("msgId").map(str::len), Some(32));
            assert_eq!(r.ext("MSG_REGION"), Some("DefaultRegion"));
            assert_eq!(r.ext("TRACE_ON"), Some("true"));
            n += 1;
        }
    }
    for ser in [SerializeType::Json, SerializeType::RocketMq] {
        let r = c.call(pull_req("G1", "SP", 1, 0, "*", 0, ser)).unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
        assert_eq!(r.serialize_type, ser);
        assert_eq!(r.ext("nextBeginOffset"), Some("4"));
        assert_eq!(r.ext("maxOffset"), Some("4"));
        assert_eq!(r.ext("minOffset"), Some("0"));
        assert_eq!(r.ext("suggestWhichBrokerId"), Some("0"));
        let msgs = decode_all(&r.body);
        assert_eq!(msgs.len(), 4);
        for (i, m) in msgs.iter().enumerate() {
            assert_eq!(m.body.as_ref(), format!("hello-{i}").as_bytes());
            assert_eq!(m.queue_offset, i as i64);
            assert_eq!(m.topic, "SP");
            assert_eq!(m.properties.get("TAGS"), Some("TagA"));
        }
    }
    // At the end of the queue without SUSPEND: PULL_NOT_FOUND at once.
    let r = c
        .call(pull_req("G1", "SP", 1, 4, "*", 0, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::PULL_NOT_FOUND as i32);
    assert_eq!(r.remark.as_deref(), Some("OFFSET_OVERFLOW_ONE"));
    // Past the end: PULL_OFFSET_MOVED.
    let r = c
        .call(pull_req("G1", "SP", 1, 99, "*", 0, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::PULL_OFFSET_MOVED as i32);
    // Queue offsets.
    let r = c
        .call(
            RemotingCommand::request(RequestCode::GET_MAX_OFFSET)
                .with_ext("topic", "SP")
                .with_ext("queueId", 1),
        )
        .unwrap();
    assert_eq!(r.ext("offset"), Some("4"));
}

#[test]
fn tag_filter_and_queue_pick() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "TF", 1);
    for (i, tag) in ["TagA", "TagB", "TagC", "TagA"].iter().enumerate() {
        let r = c
            .call(send_req(
                "TF",
                -1,
                format!("m{i}").as_bytes(),
                Some(tag),
                true,
                SerializeType::Json,
            ))
            .unwrap();
        assert_eq!(r.code, 0);
        assert_eq!(r.ext("queueId"), Some("0"));
    }
    let r = c
        .call(pull_req(
            "G",
            "TF",
            0,
            0,
            "TagA || TagC",
            0,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, 0);
    let bodies: Vec<String> = decode_all(&r.body)
        .iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect();
    assert_eq!(bodies, vec!["m0", "m2", "m3"]);
    assert_eq!(r.ext("nextBeginOffset"), Some("4"));
    // Nothing matching: PULL_RETRY_IMMEDIATELY past the scanned entries.
    let r = c
        .call(pull_req("G", "TF", 0, 0, "TagZ", 0, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::PULL_RETRY_IMMEDIATELY as i32);
    assert_eq!(r.ext("nextBeginOffset"), Some("4"));
}

#[test]
fn refusals() {
    let b = Broker::start("maxMessageSize = 1024\nautoCreateTopicEnable = false");
    let mut c = b.client();
    create_topic(&mut c, "R", 1);
    let big = vec![b'x'; 2048];
    let r = c
        .call(send_req("R", 0, &big, None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::MESSAGE_ILLEGAL as i32);
    let r = c
        .call(send_req(
            "bad topic",
            0,
            b"x",
            None,
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::MESSAGE_ILLEGAL as i32);
    let long = "x".repeat(128);
    let r = c
        .call(send_req(&long, 0, b"x", None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::MESSAGE_ILLEGAL as i32);
    let r = c
        .call(send_req(
            "Unknown",
            0,
            b"x",
            None,
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, ResponseCode::TOPIC_NOT_EXIST as i32);
    // A read-only topic refuses writes.
    let r = c
        .call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .with_ext("topic", "RO")
                .with_ext("readQueueNums", 1)
                .with_ext("writeQueueNums", 1)
                .with_ext("perm", 4),
        )
        .unwrap();
    assert_eq!(r.code, 0);
    let r = c
        .call(send_req("RO", 0, b"x", None, true, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, ResponseCode::NO_PERMISSION as i32);
    // Properties over 32767 bytes.
    let mut req = send_req("R", 0, b"x", None, true, SerializeType::Json);
    req = req.with_ext("i", format!("K\u{1}{}\u{2}", "v".repeat(40_000)));
    let r = c.call(req).unwrap();
    assert_eq!(r.code, ResponseCode::MESSAGE_ILLEGAL as i32);
}

/// RocketMQ 5.x's `validateSystemTopicWhenUpdateTopic` (on by default): the admin API may not
/// create, change or delete a system topic; off, it may. `BenchmarkTest` exists from startup.
#[test]
fn system_topics_are_kept_from_the_admin_api() {
    let create = |c: &mut ferrocket_testkit::RawClient, topic: &str| {
        c.call(
            RemotingCommand::request(RequestCode::UPDATE_AND_CREATE_TOPIC)
                .with_ext("topic", topic)
                .with_ext("readQueueNums", 1)
                .with_ext("writeQueueNums", 1)
                .with_ext("perm", 6),
        )
        .unwrap()
    };
    let delete = |c: &mut ferrocket_testkit::RawClient, topic: &str| {
        c.call(
            RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_BROKER).with_ext("topic", topic),
        )
        .unwrap()
    };
    let b = Broker::start("");
    let mut c = b.client();
    for t in [
        "TBW102",
        "SCHEDULE_TOPIC_XXXX",
        "BenchmarkTest",
        "RMQ_SYS_TRACE_TOPIC",
        "TRANS_CHECK_MAX_TIME_TOPIC",
        "rmq_sys_anything",
        "TestCluster",
        "broker-t",
        "TestCluster_REPLY_TOPIC",
    ] {
        let r = create(&mut c, t);
        assert_eq!(r.code, ResponseCode::INVALID_PARAMETER as i32, "create {t}");
        assert_eq!(
            r.remark.as_deref(),
            Some(format!("The topic[{t}] is conflict with system topic.").as_str())
        );
    }
    let r = delete(&mut c, "RMQ_SYS_TRANS_HALF_TOPIC");
    assert_eq!(r.code, ResponseCode::INVALID_PARAMETER as i32);
    assert_eq!(create(&mut c, "Ordinary").code, 0);
    assert_eq!(delete(&mut c, "Ordinary").code, 0);
    let send = |c: &mut ferrocket_testkit::RawClient, topic: &str| {
        c.call(send_req(topic, 0, b"x", None, true, SerializeType::Json))
            .unwrap()
    };
    // Producers may not write to the transaction checker's parking topic or the self-test topic.
    for t in ["TRANS_CHECK_MAX_TIME_TOPIC", "SELF_TEST_TOPIC"] {
        let r = send(&mut c, t);
        assert_eq!(r.code, ResponseCode::NO_PERMISSION as i32, "send to {t}");
        assert_eq!(
            r.remark.as_deref(),
            Some(format!("Sending message to topic[{t}] is forbidden.").as_str())
        );
    }
    // The benchmark topic is there from the start: sends need no auto-create.
    let r = send(&mut c, "BenchmarkTest");
    assert_eq!(r.code, 0, "{:?}", r.remark);
    drop(b);

    let b = Broker::start("validateSystemTopicWhenUpdateTopic = false");
    let mut c = b.client();
    assert_eq!(create(&mut c, "rmq_sys_anything").code, 0);
    assert_eq!(delete(&mut c, "rmq_sys_anything").code, 0);
}

#[test]
fn consumer_offsets_and_commit_flag() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "CO", 1);
    let q = |c: &mut ferrocket_testkit::RawClient| {
        c.call(
            RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET)
                .with_ext("consumerGroup", "G")
                .with_ext("topic", "CO")
                .with_ext("queueId", 0),
        )
        .unwrap()
    };
    assert_eq!(q(&mut c).code, ResponseCode::QUERY_NOT_FOUND as i32);
    c.oneway(
        RemotingCommand::request(RequestCode::UPDATE_CONSUMER_OFFSET)
            .with_ext("consumerGroup", "G")
            .with_ext("topic", "CO")
            .with_ext("queueId", 0)
            .with_ext("commitOffset", 7),
    )
    .unwrap();
    let r = q(&mut c);
    assert_eq!((r.code, r.ext("offset")), (0, Some("7")));
    // The COMMIT_OFFSET pull flag stores commitOffset.
    let req = pull_req("G", "CO", 0, 0, "*", 0, SerializeType::Json)
        .with_ext("sysFlag", 0x4 | 0x1)
        .with_ext("commitOffset", 9);
    c.call(req).unwrap();
    assert_eq!(q(&mut c).ext("offset"), Some("9"));
}

#[test]
fn delayed_messages_arrive_after_their_level() {
    let b = Broker::start("messageDelayLevel = 1s 2s");
    let mut c = b.client();
    create_topic(&mut c, "DL", 1);
    let req = send_req("DL", 0, b"later", None, true, SerializeType::Json).with_ext(
        "i",
        crate::util::props(None, &[("DELAY", "1"), ("UNIQ_KEY", "D1")]),
    );
    let r = c.call(req).unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(r.ext("queueId"), Some("0"));
    let r = crate::util::eventually(std::time::Duration::from_secs(30), || {
        let r = c
            .call(pull_req("G", "DL", 0, 0, "*", 0, SerializeType::Json))
            .unwrap();
        (r.code == 0).then_some(r)
    })
    .expect("delivered after its delay");
    let m = &decode_all(&r.body)[0];
    assert_eq!(m.body.as_ref(), b"later");
    assert_eq!(m.properties.get("DELAY"), None);
    assert_eq!(m.properties.get("REAL_TOPIC"), Some("DL"));
    let r = c
        .call(RemotingCommand::request(RequestCode::GET_ALL_DELAY_OFFSET))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["offsetTable"]["1"], 1);
}

/// A pull that reaches further back than `accessMessageInMemoryMaxRatio` of memory from the
/// commitlog's end reads with the "in disk" limits (`maxTransferCountOnMessageInDisk`) and,
/// with `slaveReadEnable`, is pointed to `whichBrokerWhenConsumeSlowly` (1, a slave); a pull
/// within it gets the in-memory limits and the group's `brokerId` (0).
#[test]
fn slow_consumers_read_in_disk_limits_and_are_sent_to_a_slave() {
    for (ratio, count, suggest) in [(0, 8, "1"), (40, 20, "0")] {
        let b = Broker::start(&format!(
            "slaveReadEnable=true\naccessMessageInMemoryMaxRatio={ratio}\n"
        ));
        let mut c = b.client();
        create_topic(&mut c, "SLOW", 1);
        for i in 0..20 {
            let body = format!("slow-{i}");
            let r = c
                .call(send_req(
                    "SLOW",
                    0,
                    body.as_bytes(),
                    None,
                    true,
                    SerializeType::Json,
                ))
                .unwrap();
            assert_eq!(r.code, 0, "{:?}", r.remark);
        }
        let r = c
            .call(pull_req("GS", "SLOW", 0, 0, "*", 0, SerializeType::Json))
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
        assert_eq!(decode_all(&r.body).len(), count, "ratio {ratio}");
        assert_eq!(
            r.ext("suggestWhichBrokerId"),
            Some(suggest),
            "ratio {ratio}"
        );
        assert_eq!(r.ext("nextBeginOffset"), Some(count.to_string().as_str()));
    }
}
