//! Malformed frames close only their connection; unknown codes and bad headers get answers.

use std::time::Duration;

use ferrocket_protocol::{RemotingCommand, RequestCode, ResponseCode};

use crate::util::Broker;

#[test]
fn unknown_codes_bad_headers_and_garbage() {
    let b = Broker::start("");
    let mut c = b.client();
    let r = c.call(RemotingCommand::request(9999)).unwrap();
    assert_eq!(r.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32);
    // A missing required header field: SYSTEM_ERROR naming it.
    let r = c
        .call(RemotingCommand::request(RequestCode::PULL_MESSAGE).with_ext("topic", "x"))
        .unwrap();
    assert_eq!(r.code, ResponseCode::SYSTEM_ERROR as i32);
    assert!(r.remark.unwrap_or_default().contains("consumerGroup"));
    // PULL_MESSAGE is not served on the fast port.
    let mut fast = ferrocket_testkit::RawClient::connect(&b.fast_addr()).unwrap();
    let r = fast
        .call(RemotingCommand::request(RequestCode::PULL_MESSAGE))
        .unwrap();
    assert_eq!(r.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32);
    // Oneway requests get no answer: the next call's answer is the first thing to arrive.
    c.oneway(RemotingCommand::request(9999)).unwrap();
    let r = c
        .call(RemotingCommand::request(
            RequestCode::GET_BROKER_RUNTIME_INFO,
        ))
        .unwrap();
    assert_eq!(r.code, 0);
    let table: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    for k in [
        "brokerVersionDesc",
        "putTps",
        "msgPutTotalTodayNow",
        "commitLogDiskRatio",
    ] {
        assert!(table["table"][k].is_string(), "{k} missing");
    }
    // Garbage: a broken JSON header closes that connection only.
    let mut bad = b.client();
    bad.send_raw(&[0, 0, 0, 8, 0, 0, 0, 4, b'{', b'x', b'y', b'z'])
        .unwrap();
    assert!(bad.is_closed_by_peer(Duration::from_secs(10)));
    let mut huge = b.client();
    huge.send_raw(&[0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0])
        .unwrap();
    assert!(huge.is_closed_by_peer(Duration::from_secs(10)));
    let r = c.call(RemotingCommand::request(9998)).unwrap();
    assert_eq!(r.code, ResponseCode::REQUEST_CODE_NOT_SUPPORTED as i32);
}

#[test]
fn idle_connections_are_closed() {
    let b = Broker::start("serverChannelMaxIdleTimeSeconds = 1");
    let mut c = b.client();
    assert!(c.is_closed_by_peer(Duration::from_secs(20)));
}
