//! SQL92 property filters and timer messages (TIMER_DELAY_SEC / TIMER_DELIVER_MS) end to end.

use std::time::Duration;

use ferrocket_protocol::message::StoredMessage;
use ferrocket_protocol::{ResponseCode, SerializeType};
use ferrocket_testkit::RawClient;

use crate::util::{create_topic, decode_all, eventually, props, pull_req, send_req, Broker};

/// Sends one message to (topic, queue) with the given TAGS and properties.
fn send(
    c: &mut RawClient,
    topic: &str,
    q: i32,
    body: &str,
    tags: &str,
    extra: &[(&str, &str)],
) -> i32 {
    let req = send_req(topic, q, body.as_bytes(), None, true, SerializeType::Json)
        .with_ext("i", props(Some(tags), extra));
    let r = c.call(req).expect("send");
    assert!(
        r.code == 0 || r.code == ResponseCode::MESSAGE_ILLEGAL as i32,
        "{:?}",
        r.remark
    );
    r.code
}

fn pull_all(
    c: &mut RawClient,
    topic: &str,
    q: i32,
    sub: &str,
    kind: &str,
) -> (i32, Vec<StoredMessage>, Option<String>) {
    let r = c
        .call(
            pull_req("G", topic, q, 0, sub, 0, SerializeType::Json)
                .with_ext("expressionType", kind),
        )
        .expect("pull");
    let msgs = if r.code == 0 {
        decode_all(&r.body)
    } else {
        Vec::new()
    };
    (r.code, msgs, r.remark.clone())
}

fn bodies(msgs: &[StoredMessage]) -> Vec<String> {
    msgs.iter()
        .map(|m| String::from_utf8_lossy(&m.body).into_owned())
        .collect()
}

#[test]
fn sql92_selects_by_properties_and_reports_bad_expressions() {
    let b = Broker::start("enablePropertyFilter = true");
    let mut c = b.client();
    create_topic(&mut c, "Sql", 1);
    for i in 0..10 {
        let tag = if i % 2 == 0 { "A" } else { "B" };
        send(
            &mut c,
            "Sql",
            0,
            &format!("m{i}"),
            tag,
            &[("a", &i.to_string()), ("region", "eu-west")],
        );
    }
    let (code, msgs, _) = pull_all(&mut c, "Sql", 0, "a >= 4 AND TAGS = 'A'", "SQL92");
    assert_eq!(code, 0);
    assert_eq!(bodies(&msgs), ["m4", "m6", "m8"]);
    let (_, msgs, _) = pull_all(
        &mut c,
        "Sql",
        0,
        "(a BETWEEN 1 AND 3 OR a IN ('9')) AND region STARTSWITH 'eu' AND missing IS NULL",
        "SQL92",
    );
    assert_eq!(bodies(&msgs), ["m1", "m2", "m3", "m9"]);
    // Nothing matches: the pull moves on, RocketMQ's "retry immediately" with the next offset.
    let (code, _, _) = pull_all(&mut c, "Sql", 0, "a > 100", "SQL92");
    assert_eq!(code, ResponseCode::PULL_RETRY_IMMEDIATELY as i32);
    // Tag expressions still work beside SQL.
    let (_, msgs, _) = pull_all(&mut c, "Sql", 0, "B", "TAG");
    assert_eq!(msgs.len(), 5);

    let (code, _, remark) = pull_all(&mut c, "Sql", 0, "a >", "SQL92");
    assert_eq!(code, ResponseCode::SUBSCRIPTION_PARSE_FAILED as i32);
    let remark = remark.unwrap_or_default();
    assert!(
        remark.contains("a >") && remark.contains("end of the expression"),
        "{remark}"
    );
    let (code, _, _) = pull_all(&mut c, "Sql", 0, "x", "XPATH");
    assert_eq!(code, ResponseCode::SUBSCRIPTION_PARSE_FAILED as i32);
    drop(c);

    // Without enablePropertyFilter the broker refuses SQL92 as RocketMQ does.
    let plain = Broker::start("");
    let mut c = plain.client();
    create_topic(&mut c, "Sql", 1);
    let (code, _, remark) = pull_all(&mut c, "Sql", 0, "a > 1", "SQL92");
    assert_eq!(code, ResponseCode::SUBSCRIPTION_PARSE_FAILED as i32);
    assert!(remark.unwrap_or_default().contains("SQL92"));
}

fn count(c: &mut RawClient, topic: &str) -> Vec<String> {
    bodies(&pull_all(c, topic, 0, "*", "TAG").1)
}

#[test]
fn timer_messages_arrive_on_time_once_across_a_restart() {
    let mut b = Broker::start("");
    {
        let mut c = b.client();
        create_topic(&mut c, "Tm", 1);
        // Out of arrival order: "late" is due after "early".
        send(&mut c, "Tm", 0, "late", "T", &[("TIMER_DELAY_SEC", "4")]);
        send(&mut c, "Tm", 0, "early", "T", &[("TIMER_DELAY_MS", "1000")]);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        let at = now + 60_000;
        send(
            &mut c,
            "Tm",
            0,
            "far",
            "T",
            &[("TIMER_DELIVER_MS", &at.to_string())],
        );
        let code = send(
            &mut c,
            "Tm",
            0,
            "too far",
            "T",
            &[("TIMER_DELAY_SEC", "300000")],
        );
        assert_eq!(code, ResponseCode::MESSAGE_ILLEGAL as i32);
        assert!(
            count(&mut c, "Tm").is_empty(),
            "nothing visible before it is due"
        );
        let got = eventually(Duration::from_secs(10), || {
            let v = count(&mut c, "Tm");
            (!v.is_empty()).then_some(v)
        });
        assert_eq!(got.as_deref(), Some(&["early".to_string()][..]));
    }
    // "late" falls due while the broker is down.
    assert_eq!(b.stop(), Some(0));
    std::thread::sleep(Duration::from_secs(4));
    b.restart();
    let mut c = b.client();
    let got = eventually(Duration::from_secs(10), || {
        let v = count(&mut c, "Tm");
        (v.len() >= 2).then_some(v)
    });
    assert_eq!(
        got.as_deref(),
        Some(&["early".to_string(), "late".to_string()][..])
    );
    // A second restart delivers nothing twice, and the far message stays pending.
    drop(c);
    assert_eq!(b.stop(), Some(0));
    b.restart();
    let mut c = b.client();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(count(&mut c, "Tm"), ["early", "late"]);
}

#[test]
fn a_delay_level_due_during_downtime_arrives_after_restart() {
    let mut b = Broker::start("messageDelayLevel = 2s 5s");
    {
        let mut c = b.client();
        create_topic(&mut c, "Dd", 1);
        send(&mut c, "Dd", 0, "delayed", "T", &[("DELAY", "1")]);
        assert!(count(&mut c, "Dd").is_empty());
    }
    assert_eq!(b.stop(), Some(0));
    std::thread::sleep(Duration::from_millis(2500));
    b.restart();
    let mut c = b.client();
    let got = eventually(Duration::from_secs(10), || {
        let v = count(&mut c, "Dd");
        (!v.is_empty()).then_some(v)
    });
    assert_eq!(got.as_deref(), Some(&["delayed".to_string()][..]));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(count(&mut c, "Dd"), ["delayed"], "delivered once");
}
