//! A suspended pull is answered as soon as a matching message lands, well before its timeout.

use std::time::{Duration, Instant};

use ferrocket_protocol::SerializeType;

use crate::util::{create_topic, decode_all, pull_req, send_req, Broker};

#[test]
fn held_pull_wakes_on_arrival() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "LP", 1);
    let addr = b.addr();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || {
        let mut p = ferrocket_testkit::RawClient::connect(&addr).unwrap();
        // Held for up to 60 s unless something arrives.
        p.call(pull_req(
            "G",
            "LP",
            0,
            0,
            "TagA",
            60_000,
            SerializeType::Json,
        ))
        .unwrap()
    });
    // A non-matching message does not answer it; a matching one does.
    std::thread::sleep(Duration::from_millis(300));
    let r = c
        .call(send_req(
            "LP",
            0,
            b"other",
            Some("TagB"),
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, 0);
    let r = c
        .call(send_req(
            "LP",
            0,
            b"wanted",
            Some("TagA"),
            true,
            SerializeType::Json,
        ))
        .unwrap();
    assert_eq!(r.code, 0);
    let resp = waiter.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "answered by arrival, not timeout"
    );
    // The non-matching arrival kept it held; the matching one answered it.
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    let msgs = decode_all(&resp.body);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].body.as_ref(), b"wanted");
    assert_eq!(resp.ext("nextBeginOffset"), Some("2"));
}

#[test]
fn held_pull_times_out_with_not_found() {
    let b = Broker::start("");
    let mut c = b.client();
    create_topic(&mut c, "LT", 1);
    let r = c
        .call(pull_req("G", "LT", 0, 0, "*", 500, SerializeType::Json))
        .unwrap();
    assert_eq!(r.code, 19);
    assert_eq!(r.ext("nextBeginOffset"), Some("0"));
}
