//! Heartbeats, group membership pushes, subscriptions from heartbeats, queue locks, send-back,
//! batches and admin reads over a real broker.

use std::time::Duration;

use bytes::BytesMut;
use ferrocket_protocol::message::{encode_batch, BatchEntry, Properties};
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use ferrocket_testkit::RawClient;

use crate::util::{create_topic, decode_all, eventually, pull_req, send_req, Broker};

fn heartbeat(client_id: &str, group: &str, sub: &str) -> RemotingCommand {
    let body = serde_json::json!({
        "clientID": client_id,
        "producerDataSet": [{"groupName": "PG"}],
        "consumerDataSet": [{
            "groupName": group,
            "consumeType": "CONSUME_PASSIVELY",
            "messageModel": "CLUSTERING",
            "consumeFromWhere": "CONSUME_FROM_LAST_OFFSET",
            "unitMode": false,
            "subscriptionDataSet": [{
                "classFilterMode": false, "topic": "HB", "subString": sub,
                "tagsSet": [], "codeSet": [], "subVersion": 1, "expressionType": "TAG"
            }]
        }]
    });
    RemotingCommand::request(RequestCode::HEART_BEAT).with_body(serde_json::to_vec(&body).unwrap())
}

fn consumer_list(c: &mut RawClient, group: &str) -> Vec<String> {
    let r = c
        .call(
            RemotingCommand::request(RequestCode::GET_CONSUMER_LIST_BY_GROUP)
                .with_ext("consumerGroup", group),
        )
        .unwrap();
    if r.code != 0 {
        return Vec::new();
    }
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["consumerIdList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn heartbeats_membership_and_notifications() {
    let b = Broker::start("");
    let mut admin = b.client();
    create_topic(&mut admin, "HB", 1);
    let mut c1 = b.client();
    let r = c1.call(heartbeat("c1", "GH", "TagA")).unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(consumer_list(&mut admin, "GH"), vec!["c1"]);

    // A second member joins: the first is told over its own connection.
    let mut c2 = b.client();
    assert_eq!(c2.call(heartbeat("c2", "GH", "TagA")).unwrap().code, 0);
    assert_eq!(consumer_list(&mut admin, "GH"), vec!["c1", "c2"]);
    c1.set_read_timeout(Duration::from_secs(10));
    let pushed = c1.read_one().unwrap();
    assert_eq!(pushed.code, RequestCode::NOTIFY_CONSUMER_IDS_CHANGED as i32);
    assert!(pushed.is_oneway());
    assert_eq!(pushed.ext("consumerGroup"), Some("GH"));

    // Pulls without the SUBSCRIPTION flag use the heartbeat's subscription (TagA only).
    for tag in ["TagB", "TagA"] {
        let r = admin
            .call(send_req(
                "HB",
                0,
                tag.as_bytes(),
                Some(tag),
                true,
                SerializeType::Json,
            ))
            .unwrap();
        assert_eq!(r.code, 0);
    }
    let r = c1
        .call(pull_req("GH", "HB", 0, 0, "", 0, SerializeType::Json).with_ext("sysFlag", 0))
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let msgs = decode_all(&r.body);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body.as_ref(), b"TagA");
    // An unknown group without the flag: SUBSCRIPTION_NOT_EXIST.
    let r = c1
        .call(pull_req("Nobody", "HB", 0, 0, "", 0, SerializeType::Json).with_ext("sysFlag", 0))
        .unwrap();
    assert_eq!(r.code, ResponseCode::SUBSCRIPTION_NOT_EXIST as i32);

    // Connection list for mqadmin consumerConnection.
    let r = admin
        .call(
            RemotingCommand::request(RequestCode::GET_CONSUMER_CONNECTION_LIST)
                .with_ext("consumerGroup", "GH"),
        )
        .unwrap();
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["connectionSet"].as_array().unwrap().len(), 2);
    assert_eq!(v["subscriptionTable"]["HB"]["subString"], "TagA");

    // Producers from the same heartbeats.
    let r = admin
        .call(
            RemotingCommand::request(RequestCode::GET_PRODUCER_CONNECTION_LIST)
                .with_ext("producerGroup", "PG"),
        )
        .unwrap();
    assert_eq!(r.code, 0);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["connectionSet"].as_array().unwrap().len(), 2);

    // The retry topic of the group was created by the heartbeat.
    let r = admin
        .call(RemotingCommand::request(RequestCode::GET_ALL_TOPIC_CONFIG))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["topicConfigTable"]["%RETRY%GH"].is_object());

    // c2 closes its connection: it leaves the group and c1 is told again.
    drop(c2);
    let left = eventually(Duration::from_secs(10), || {
        (consumer_list(&mut admin, "GH") == vec!["c1".to_string()]).then_some(())
    });
    assert!(left.is_some());
    let pushed = c1.read_one().unwrap();
    assert_eq!(pushed.code, RequestCode::NOTIFY_CONSUMER_IDS_CHANGED as i32);

    // Explicit unregister.
    let r = c1
        .call(
            RemotingCommand::request(RequestCode::UNREGISTER_CLIENT)
                .with_ext("clientID", "c1")
                .with_ext("consumerGroup", "GH"),
        )
        .unwrap();
    assert_eq!(r.code, 0);
    assert!(consumer_list(&mut admin, "GH").is_empty());
}

#[test]
fn locks_send_back_batches_and_stats() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "LB", 2);
    let lock = |c: &mut RawClient, client: &str, code: RequestCode| {
        let body = serde_json::json!({
            "consumerGroup": "GL", "clientId": client, "onlyThisBroker": true,
            "mqSet": [{"topic": "LB", "brokerName": "broker-t", "queueId": 0}]
        });
        let r = c
            .call(RemotingCommand::request(code).with_body(serde_json::to_vec(&body).unwrap()))
            .unwrap();
        assert_eq!(r.code, 0);
        r
    };
    let r = lock(&mut c, "c1", RequestCode::LOCK_BATCH_MQ);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["lockOKMQSet"].as_array().unwrap().len(), 1);
    let r = lock(&mut c, "c2", RequestCode::LOCK_BATCH_MQ);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["lockOKMQSet"].as_array().unwrap().is_empty());
    lock(&mut c, "c1", RequestCode::UNLOCK_BATCH_MQ);
    let r = lock(&mut c, "c2", RequestCode::LOCK_BATCH_MQ);
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["lockOKMQSet"].as_array().unwrap().len(), 1);

    // A batch of three lands at consecutive offsets with comma-joined ids.
    let entries: Vec<BatchEntry> = (0..3)
        .map(|i| {
            let mut p = Properties::new();
            p.insert("UNIQ_KEY", format!("U{i}"));
            BatchEntry {
                flag: 0,
                body: format!("b{i}").into(),
                properties: p,
            }
        })
        .collect();
    let mut body = BytesMut::new();
    encode_batch(&entries, &mut body).unwrap();
    let req = send_req("LB", 1, b"", None, true, SerializeType::RocketMq)
        .with_ext("m", true)
        .with_ext("i", "TAGS\u{1}TagX\u{2}");
    let mut req = req.with_body(body.freeze());
    req.code = RequestCode::SEND_BATCH_MESSAGE as i32;
    let r = c.call(req).unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert_eq!(r.ext("msgId").unwrap().split(',').count(), 3);
    assert_eq!(r.ext("queueOffset"), Some("0"));
    let r = c
        .call(pull_req("GL", "LB", 1, 0, "TagX", 0, SerializeType::Json))
        .unwrap();
    let msgs = decode_all(&r.body);
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[2].body.as_ref(), b"b2");
    assert_eq!(msgs[2].properties.get("UNIQ_KEY"), Some("U2"));

    // Send back the first one: a copy lands in %RETRY%GL with the original topic recorded.
    let r = c
        .call(
            RemotingCommand::request(RequestCode::CONSUMER_SEND_MSG_BACK)
                .with_ext("offset", msgs[0].physical_offset)
                .with_ext("group", "GL")
                .with_ext("delayLevel", 1)
                .with_ext("originMsgId", "U0"),
        )
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    // Delay level 1 (1 s) through the schedule topic.
    let r = eventually(Duration::from_secs(30), || {
        let r = c
            .call(pull_req(
                "GL",
                "%RETRY%GL",
                0,
                0,
                "*",
                0,
                SerializeType::Json,
            ))
            .unwrap();
        (r.code == 0).then_some(r)
    })
    .expect("retry copy delivered");
    let retry = decode_all(&r.body);
    assert_eq!(retry[0].body.as_ref(), b"b0");
    assert_eq!(retry[0].reconsume_times, 1);
    assert_eq!(retry[0].properties.get("RETRY_TOPIC"), Some("LB"));

    // Consume stats after a commit.
    c.call(
        RemotingCommand::request(RequestCode::UPDATE_CONSUMER_OFFSET)
            .with_ext("consumerGroup", "GL")
            .with_ext("topic", "LB")
            .with_ext("queueId", 1)
            .with_ext("commitOffset", 2),
    )
    .unwrap();
    let r = c
        .call(
            RemotingCommand::request(RequestCode::GET_CONSUME_STATS)
                .with_ext("consumerGroup", "GL")
                .with_ext("topic", "LB"),
        )
        .unwrap();
    assert_eq!(r.code, 0);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    // The offset table is keyed by MessageQueue objects (fastjson's form), so check the text.
    assert!(
        text.contains("\"brokerOffset\":3,\"consumerOffset\":2"),
        "{text}"
    );
    let r = c
        .call(RemotingCommand::request(RequestCode::GET_TOPIC_STATS_INFO).with_ext("topic", "LB"))
        .unwrap();
    assert_eq!(r.code, 0);
    let text = String::from_utf8(r.body.to_vec()).unwrap();
    assert!(text.contains("\"maxOffset\":3,\"minOffset\":0"), "{text}");
}
