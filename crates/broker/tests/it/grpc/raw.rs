//! The API called with the generated tonic client: bad requests, SQL92 filters, the DLQ.

use std::time::{Duration, Instant};

use ferrocket_protocol::SerializeType;

use super::*;
use crate::util::{create_topic, props, send_req};
use ferrocket_broker::grpc::pb;
use ferrocket_testkit::RawClient;

type GrpcClient = pb::messaging_service_client::MessagingServiceClient<tonic::transport::Channel>;

/// A broker with gRPC on (`extra` conf lines) holding `topic` with one queue, its remoting
/// client, and a gRPC client connected to it. The broker is stopped when the guard drops.
async fn setup(extra: &str, topic: &str) -> (Broker, String, RawClient, GrpcClient) {
    let (b, endpoint) = start_grpc_broker(extra);
    let mut rc = b.client();
    create_topic(&mut rc, topic, 1);
    let c = GrpcClient::connect(format!("http://{endpoint}"))
        .await
        .unwrap();
    (b, endpoint, rc, c)
}

/// Sends `body` to queue 0 of `topic` over remoting (JSON headers) with tag `T`, `UNIQ_KEY`
/// `key` and the `extra` properties; asserts it was stored.
fn send(rc: &mut RawClient, topic: &str, body: &[u8], key: &str, extra: &[(&str, &str)]) {
    let mut p = vec![("UNIQ_KEY", key)];
    p.extend_from_slice(extra);
    let req = send_req(topic, 0, body, None, true, SerializeType::Json)
        .with_ext("i", props(Some("T"), &p));
    assert_eq!(rc.call(req).unwrap().code, 0);
}

/// Bad requests get the status codes the clients know, and garbage on the port costs only that
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_grpc_requests_fail_the_call_not_the_broker() {
    use std::io::Write;

    let (_b, endpoint, _rc, mut c) = setup("", "GrpcBadTopic").await;
    // Not HTTP/2 at all.
    let mut s = std::net::TcpStream::connect(&endpoint).unwrap();
    let _ = s.write_all(b"\x00\xffgarbage that is no HTTP/2 preface\r\n\r\n");
    drop(s);
    let code = |s: &Option<pb::Status>| s.as_ref().map(|s| s.code);
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
    let (_b, _endpoint, mut rc, mut c) = setup("enablePropertyFilter = true", "GrpcSqlTopic").await;
    for n in 1..=3 {
        let key = format!("SQL-{n}");
        send(
            &mut rc,
            "GrpcSqlTopic",
            format!("n{n}").as_bytes(),
            &key,
            &[("n", &n.to_string())],
        );
    }
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

/// ForwardMessageToDeadLetterQueue (what push consumers of orderly groups do past their
/// attempts): the message lands in `%DLQ%<group>` and is not delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_forwarded_to_the_dlq_is_not_delivered_again() {
    let (b, _endpoint, mut rc, mut c) = setup("", "GrpcDlqTopic").await;
    send(&mut rc, "GrpcDlqTopic", b"poison", "POISON-1", &[]);
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

/// A body a 4.x Java producer compressed (zlib, sysflag COMPRESSED) reaches a gRPC consumer
/// plain, with the digest of the plain body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_are_delivered_plain() {
    use std::io::Write;

    let (_b, _endpoint, mut rc, mut c) = setup("", "GrpcZipTopic").await;
    let plain: Vec<u8> = (0..20_000u32)
        .flat_map(|i| (i % 251).to_le_bytes())
        .collect();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(5));
    z.write_all(&plain).unwrap();
    let zipped = z.finish().unwrap();
    assert!(zipped.len() < plain.len());
    let req = send_req("GrpcZipTopic", 0, &zipped, None, true, SerializeType::Json)
        .with_ext("f", 1)
        .with_ext("i", props(Some("T"), &[("UNIQ_KEY", "ZIP-1")]));
    assert_eq!(rc.call(req).unwrap().code, 0);
    let mut s = c
        .receive_message(pb::ReceiveMessageRequest {
            group: res("ZipGroup"),
            message_queue: Some(pb::MessageQueue {
                topic: res("GrpcZipTopic"),
                id: 0,
                ..Default::default()
            }),
            filter_expression: None,
            batch_size: 1,
            invisible_duration: Some(prost_types::Duration {
                seconds: 30,
                nanos: 0,
            }),
            auto_renew: false,
            long_polling_timeout: Some(prost_types::Duration {
                seconds: 2,
                nanos: 0,
            }),
            attempt_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = None;
    while let Some(r) = s.message().await.unwrap() {
        if let Some(pb::receive_message_response::Content::Message(m)) = r.content {
            got = Some(m);
        }
    }
    let m = got.expect("received");
    assert!(
        m.body == plain,
        "body not inflated ({} bytes)",
        m.body.len()
    );
    let sp = m.system_properties.unwrap();
    assert_eq!(sp.body_encoding, pb::Encoding::Identity as i32);
    let digest = sp.body_digest.unwrap();
    assert_eq!(digest.r#type, pb::DigestType::Md5 as i32);
    assert_eq!(digest.checksum.len(), 32);
    assert_eq!(digest.checksum, digest.checksum.to_uppercase());
}

/// The PullConsumer calls: QueryOffset (beginning, end, by time), PullMessage from an offset
/// with its next offset, a long poll woken by a new message, UpdateOffset / GetOffset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_and_offsets_over_grpc() {
    let (b, _endpoint, mut rc, mut c) = setup("", "GrpcPullTopic").await;
    for i in 0..3 {
        send(
            &mut rc,
            "GrpcPullTopic",
            format!("p{i}").as_bytes(),
            &format!("PULL-{i}"),
            &[],
        );
    }
    let mq = Some(pb::MessageQueue {
        topic: res("GrpcPullTopic"),
        id: 0,
        ..Default::default()
    });
    let query = |policy: pb::QueryOffsetPolicy| pb::QueryOffsetRequest {
        message_queue: mq.clone(),
        query_offset_policy: policy as i32,
        timestamp: Some(prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        }),
    };
    let r = c
        .query_offset(query(pb::QueryOffsetPolicy::Beginning))
        .await
        .unwrap();
    assert_eq!(r.get_ref().offset, 0);
    let r = c
        .query_offset(query(pb::QueryOffsetPolicy::End))
        .await
        .unwrap();
    assert_eq!(r.get_ref().offset, 3);
    let r = c
        .query_offset(query(pb::QueryOffsetPolicy::Timestamp))
        .await
        .unwrap();
    assert_eq!(r.get_ref().offset, 0);

    let pull = |offset: i64, poll_s: i64| pb::PullMessageRequest {
        group: res("PullGroup"),
        message_queue: mq.clone(),
        offset,
        batch_size: 2,
        filter_expression: None,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: poll_s,
            nanos: 0,
        }),
    };
    async fn collect(
        s: &mut tonic::Streaming<pb::PullMessageResponse>,
    ) -> (Option<i32>, Vec<String>, Option<i64>) {
        let (mut st, mut bodies, mut next) = (None, Vec::new(), None);
        while let Some(r) = s.message().await.unwrap() {
            match r.content {
                Some(pb::pull_message_response::Content::Status(x)) => st = Some(x.code),
                Some(pb::pull_message_response::Content::Message(m)) => {
                    bodies.push(String::from_utf8(m.body).unwrap())
                }
                Some(pb::pull_message_response::Content::NextOffset(n)) => next = Some(n),
                None => {}
            }
        }
        (st, bodies, next)
    }
    let mut s = c.pull_message(pull(1, 0)).await.unwrap().into_inner();
    assert_eq!(
        collect(&mut s).await,
        (
            Some(pb::Code::Ok as i32),
            vec!["p1".into(), "p2".into()],
            Some(3)
        )
    );
    // A long poll at the end is answered by the next message.
    let sender = {
        let addr = b.addr();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            let mut rc = ferrocket_testkit::RawClient::connect(&addr).unwrap();
            let req = send_req("GrpcPullTopic", 0, b"p3", None, true, SerializeType::Json)
                .with_ext("i", props(Some("T"), &[("UNIQ_KEY", "PULL-3")]));
            assert_eq!(rc.call(req).unwrap().code, 0);
        })
    };
    let t = Instant::now();
    let mut s = c.pull_message(pull(3, 10)).await.unwrap().into_inner();
    assert_eq!(
        collect(&mut s).await,
        (Some(pb::Code::Ok as i32), vec!["p3".into()], Some(4))
    );
    assert!(t.elapsed() < Duration::from_secs(5));
    sender.join().unwrap();
    let mut s = c.pull_message(pull(4, 0)).await.unwrap().into_inner();
    assert_eq!(
        collect(&mut s).await,
        (Some(pb::Code::MessageNotFound as i32), vec![], Some(4))
    );

    let r = c
        .get_offset(pb::GetOffsetRequest {
            group: res("PullGroup"),
            message_queue: mq.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        r.get_ref().status.as_ref().map(|s| s.code),
        Some(pb::Code::OffsetNotFound as i32)
    );
    let r = c
        .update_offset(pb::UpdateOffsetRequest {
            group: res("PullGroup"),
            message_queue: mq.clone(),
            offset: 4,
        })
        .await
        .unwrap();
    assert_eq!(
        r.get_ref().status.as_ref().map(|s| s.code),
        Some(pb::Code::Ok as i32)
    );
    let r = c
        .get_offset(pb::GetOffsetRequest {
            group: res("PullGroup"),
            message_queue: mq.clone(),
        })
        .await
        .unwrap();
    assert_eq!(r.get_ref().offset, 4);
}

/// `auto_renew` (push consumers): the holder's heartbeats keep its message invisible past the
/// invisible duration; once they stop, the message comes back to another consumer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_renewed_messages_stay_invisible_while_their_consumer_heartbeats() {
    let (_b, _endpoint, mut rc, mut c) = setup("", "GrpcRenewTopic").await;
    send(&mut rc, "GrpcRenewTopic", b"slow", "RENEW-1", &[]);
    fn as_client<T>(client: &str, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        r.metadata_mut()
            .insert("x-mq-client-id", client.parse().unwrap());
        r
    }
    let receive = |poll_s: i64, auto_renew: bool| pb::ReceiveMessageRequest {
        group: res("RenewGroup"),
        message_queue: Some(pb::MessageQueue {
            topic: res("GrpcRenewTopic"),
            id: -1,
            ..Default::default()
        }),
        filter_expression: None,
        batch_size: 1,
        invisible_duration: Some(prost_types::Duration {
            seconds: 2,
            nanos: 0,
        }),
        auto_renew,
        long_polling_timeout: Some(prost_types::Duration {
            seconds: poll_s,
            nanos: 0,
        }),
        attempt_id: None,
    };
    async fn attempts(s: &mut tonic::Streaming<pb::ReceiveMessageResponse>) -> Vec<i32> {
        let mut out = Vec::new();
        while let Some(r) = s.message().await.unwrap() {
            if let Some(pb::receive_message_response::Content::Message(m)) = r.content {
                out.push(m.system_properties.unwrap().delivery_attempt.unwrap());
            }
        }
        out
    }
    let mut s = c
        .receive_message(as_client("A", receive(1, true)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attempts(&mut s).await, [1]);
    // A heartbeats for 4 s, twice its invisible duration: B gets nothing meanwhile.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let hb = pb::HeartbeatRequest {
            group: res("RenewGroup"),
            client_type: pb::ClientType::PushConsumer as i32,
        };
        c.heartbeat(as_client("A", hb)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let mut s = c
        .receive_message(as_client("B", receive(0, false)))
        .await
        .unwrap()
        .into_inner();
    assert!(
        attempts(&mut s).await.is_empty(),
        "renewed message delivered to B"
    );
    // A went quiet: within its 2 s the message is B's, second attempt.
    let mut s = c
        .receive_message(as_client("B", receive(5, false)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(attempts(&mut s).await, [2]);
}
