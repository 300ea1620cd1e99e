//! RocketMQ 5.x's remoting POP commands: pop with an invisible time, ack by `extraInfo`
//! (idempotent), change the invisible time (the old `extraInfo` goes stale), redelivery with one
//! more reconsume time.

use std::time::{Duration, Instant};

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use ferrocket_testkit::RawClient;

use crate::util::{create_topic, decode_all, props, send_req, Broker};

const TOPIC: &str = "PopTopic";
const GROUP: &str = "PopRemotingGroup";

fn pop(c: &mut RawClient, invisible_ms: i64, poll_ms: i64) -> (i32, Vec<StoredMessage>) {
    let r = c
        .call(
            RemotingCommand::request(RequestCode::POP_MESSAGE)
                .with_ext("consumerGroup", GROUP)
                .with_ext("topic", TOPIC)
                .with_ext("queueId", -1)
                .with_ext("maxMsgNums", 32)
                .with_ext("invisibleTime", invisible_ms)
                .with_ext("pollTime", poll_ms)
                .with_ext("bornTime", 0)
                .with_ext("initMode", 0)
                .with_ext("expType", "TAG")
                .with_ext("exp", "*"),
        )
        .unwrap();
    let msgs = if r.code == 0 {
        decode_all(&r.body)
    } else {
        Vec::new()
    };
    (r.code, msgs)
}

fn ack_like(c: &mut RawClient, code: RequestCode, m: &StoredMessage, ck: &str) -> RemotingCommand {
    let mut req = RemotingCommand::request(code)
        .with_ext("consumerGroup", GROUP)
        .with_ext("topic", TOPIC)
        .with_ext("queueId", m.queue_id)
        .with_ext("extraInfo", ck)
        .with_ext("offset", m.queue_offset);
    if code == RequestCode::CHANGE_MESSAGE_INVISIBLETIME {
        req = req.with_ext("invisibleTime", 1000);
    }
    c.call(req).unwrap()
}

fn ck(m: &StoredMessage) -> String {
    m.properties.get("POP_CK").expect("POP_CK").to_string()
}

fn body(m: &StoredMessage) -> String {
    String::from_utf8_lossy(&m.body).into_owned()
}

#[test]
fn pop_ack_and_change_invisible_time_over_remoting() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, TOPIC, 2);
    for (i, q) in [(0, 0), (1, 1)] {
        let req = send_req(
            TOPIC,
            q,
            format!("m-{i}").as_bytes(),
            None,
            true,
            SerializeType::Json,
        )
        .with_ext(
            "i",
            props(Some("T"), &[("UNIQ_KEY", format!("U-{i}").as_str())]),
        );
        assert_eq!(c.call(req).unwrap().code, 0);
    }
    c.set_read_timeout(Duration::from_secs(30));
    let (code, msgs) = pop(&mut c, 3000, 1000);
    assert_eq!(code, 0);
    let mut msgs = msgs;
    msgs.sort_by_key(body);
    assert_eq!(msgs.iter().map(body).collect::<Vec<_>>(), ["m-0", "m-1"]);
    assert!(msgs.iter().all(|m| m.reconsume_times == 0));
    let (m0, m1) = (&msgs[0], &msgs[1]);
    // Nothing else while both are invisible.
    let (code, none) = pop(&mut c, 3000, 300);
    assert_eq!(code, ResponseCode::POLLING_TIMEOUT as i32);
    assert!(none.is_empty());
    // Ack m-0, twice: acks are idempotent.
    for _ in 0..2 {
        let r = ack_like(&mut c, RequestCode::ACK_MESSAGE, m0, &ck(m0));
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }
    // m-1: invisible for 1 s only from now; the old extraInfo is stale afterwards.
    let r = ack_like(
        &mut c,
        RequestCode::CHANGE_MESSAGE_INVISIBLETIME,
        m1,
        &ck(m1),
    );
    assert_eq!(r.code, 0, "{:?}", r.remark);
    assert!(r.ext("popTime").is_some());
    let r = ack_like(&mut c, RequestCode::ACK_MESSAGE, m1, &ck(m1));
    assert_eq!(r.code, ResponseCode::NO_MESSAGE as i32);
    // m-1 comes back (the poll waits for it), m-0 never does.
    let t = Instant::now();
    let (code, again) = pop(&mut c, 3000, 5000);
    assert_eq!(code, 0);
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(again.iter().map(body).collect::<Vec<_>>(), ["m-1"]);
    assert_eq!(again[0].reconsume_times, 1);
    let r = ack_like(&mut c, RequestCode::ACK_MESSAGE, &again[0], &ck(&again[0]));
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let (code, _) = pop(&mut c, 1000, 1500);
    assert_eq!(code, ResponseCode::POLLING_TIMEOUT as i32);
}
