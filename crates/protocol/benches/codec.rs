//! Codec benchmarks: a SEND_MESSAGE_V2 request frame (1 KiB body) encoded and decoded in both
//! header serializations, and a stored-message record (1 KiB body) encoded, decoded and viewed.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocket_protocol::message::{decode, decode_view, names, Properties, StoredMessage};
use ferrocket_protocol::{frame, RemotingCommand, RequestCode, SerializeType};

fn send_request(ser: SerializeType) -> RemotingCommand {
    let mut cmd = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2)
        .with_serialize_type(ser)
        .with_body(vec![b'x'; 1024]);
    for (k, v) in [
        ("a", "benchmark_producer"),
        ("b", "BenchmarkTest"),
        ("c", "TBW102"),
        ("d", "4"),
        ("e", "3"),
        ("f", "0"),
        ("g", "1700000000000"),
        ("h", "0"),
        ("i", "TAGS\u{1}TagA\u{2}UNIQ_KEY\u{1}7F0000010001000000000000000A0001\u{2}WAIT\u{1}true\u{2}"),
        ("j", "0"),
        ("k", "false"),
        ("m", "false"),
    ] {
        cmd = cmd.with_ext(k, v);
    }
    cmd
}

fn frames(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    g.throughput(Throughput::Elements(1));
    for (name, ser) in [
        ("json", SerializeType::Json),
        ("rocketmq", SerializeType::RocketMq),
    ] {
        let cmd = send_request(ser);
        let bytes = frame::encode_to_bytes(&cmd).expect("encode");
        g.bench_function(format!("encode_send_v2_{name}"), |b| {
            let mut buf = BytesMut::with_capacity(4096);
            b.iter(|| {
                buf.clear();
                frame::encode(&cmd, &mut buf).expect("encode");
                buf.len()
            })
        });
        g.bench_function(format!("decode_send_v2_{name}"), |b| {
            b.iter(|| {
                let mut src = BytesMut::from(&bytes[..]);
                frame::decode(&mut src, 1 << 24)
                    .expect("decode")
                    .expect("whole frame")
            })
        });
    }
    g.finish();
}

fn stored(c: &mut Criterion) {
    let mut props = Properties::new();
    props.insert(names::TAGS, "TagA");
    props.insert(
        names::UNIQ_CLIENT_MESSAGE_ID_KEYIDX,
        "7F0000010001000000000000000A0001",
    );
    props.insert(names::KEYS, "order-1 order-2");
    let mut m = StoredMessage::new("BenchmarkTest", 3, vec![b'x'; 1024]);
    m.properties = props;
    let bytes = m.to_bytes().expect("encode");
    let mut g = c.benchmark_group("stored_message");
    g.throughput(Throughput::Elements(1));
    g.bench_function("encode_1k", |b| {
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.clear();
            m.encode(&mut buf).expect("encode");
            buf.len()
        })
    });
    g.bench_function("decode_owned_1k", |b| {
        b.iter(|| decode(&bytes).expect("decode"))
    });
    g.bench_function("view_with_crc_1k", |b| {
        b.iter(|| decode_view(&bytes, true).expect("view").queue_offset)
    });
    g.finish();
}

criterion_group!(benches, frames, stored);
criterion_main!(benches);
