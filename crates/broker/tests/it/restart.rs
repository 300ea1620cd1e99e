//! SIGTERM exits 0 after flushing; offsets, topics and messages survive a restart.

use ferrocket_protocol::{RemotingCommand, RequestCode, SerializeType};

use crate::util::{create_topic, decode_all, pull_req, send_req, Broker};

#[test]
fn offsets_topics_and_messages_survive_restart() {
    let mut b = Broker::start("flushConsumerOffsetInterval = 60000");
    {
        let mut c = b.client();
        create_topic(&mut c, "RS", 2);
        for i in 0..10 {
            let r = c
                .call(send_req(
                    "RS",
                    i % 2,
                    format!("r{i}").as_bytes(),
                    None,
                    true,
                    SerializeType::Json,
                ))
                .unwrap();
            assert_eq!(r.code, 0);
        }
        let r = c
            .call(
                RemotingCommand::request(RequestCode::UPDATE_CONSUMER_OFFSET)
                    .with_ext("consumerGroup", "G")
                    .with_ext("topic", "RS")
                    .with_ext("queueId", 1)
                    .with_ext("commitOffset", 3),
            )
            .unwrap();
        assert_eq!(r.code, 0);
    }
    assert_eq!(b.stop(), Some(0), "clean exit on SIGTERM");
    b.restart();
    let mut c = b.client();
    let r = c
        .call(
            RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET)
                .with_ext("consumerGroup", "G")
                .with_ext("topic", "RS")
                .with_ext("queueId", 1),
        )
        .unwrap();
    assert_eq!((r.code, r.ext("offset")), (0, Some("3")), "{:?}", r.remark);
    let r = c
        .call(pull_req("G", "RS", 1, 0, "*", 0, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, 0);
    assert_eq!(decode_all(&r.body).len(), 5);
    let r = c
        .call(RemotingCommand::request(RequestCode::GET_ALL_TOPIC_CONFIG))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["topicConfigTable"]["RS"]["writeQueueNums"], 2);
    assert_eq!(v["topicConfigTable"]["TBW102"]["perm"], 7);
}
