//! Frames against bytes written out by hand from RocketMQ's layout
//! (`length(4) | serializeType(1) headerLength(3) | header | body`, big-endian), round trips of
//! arbitrary commands in both header serializations, and hostile input.

use bytes::{Bytes, BytesMut};
use ferrocket_protocol::frame::{self, DEFAULT_MAX_FRAME};
use ferrocket_protocol::{FrameError, LanguageCode, RemotingCommand, SerializeType};
use proptest::prelude::*;

/// A JSON-header frame as a Java 4.x client writes it: a SEND_MESSAGE_V2 request.
#[test]
fn golden_json_frame_decodes() {
    let header = br#"{"code":310,"extFields":{"a":"PG","b":"TopicTest","e":"-1"},"flag":0,"language":"JAVA","opaque":7,"serializeTypeCurrentRPC":"JSON","version":399}"#;
    let body = b"hi";
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&((4 + header.len() + body.len()) as u32).to_be_bytes());
    bytes.push(0); // serialize type JSON
    bytes.extend_from_slice(&(header.len() as u32).to_be_bytes()[1..]);
    bytes.extend_from_slice(header);
    bytes.extend_from_slice(body);

    let mut buf = BytesMut::from(&bytes[..]);
    let cmd = frame::decode(&mut buf, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(cmd.code, 310);
    assert_eq!(cmd.opaque, 7);
    assert_eq!(cmd.version, 399);
    assert_eq!(cmd.language, LanguageCode::Java);
    assert_eq!(cmd.serialize_type, SerializeType::Json);
    assert_eq!(cmd.ext("b"), Some("TopicTest"));
    assert_eq!(cmd.ext("e"), Some("-1"));
    assert_eq!(&cmd.body[..], b"hi");
    assert!(!cmd.is_response());
}

/// A ROCKETMQ binary header, every field by hand: a response (flag bit 0) with a remark and one
/// extField.
const GOLDEN_BINARY: &[u8] = &[
    0x00, 0x00, 0x00, 0x25, // total length 37 = 4 + 31 header + 2 body
    0x01, 0x00, 0x00, 0x1F, // serialize type ROCKETMQ, header length 31
    0x00, 0x11, // code 17 (TOPIC_NOT_EXIST)
    0x00, // language JAVA
    0x01, 0x8F, // version 399
    0x00, 0x00, 0x00, 0x05, // opaque 5
    0x00, 0x00, 0x00, 0x01, // flag: response
    0x00, 0x00, 0x00, 0x02, b'n', b'o', // remark "no"
    0x00, 0x00, 0x00, 0x08, // extFields length 8
    0x00, 0x01, b'k', // key "k"
    0x00, 0x00, 0x00, 0x01, b'v', // value "v"
    b'o', b'k', // body
];

#[test]
fn golden_binary_frame_both_ways() {
    let mut buf = BytesMut::from(GOLDEN_BINARY);
    let cmd = frame::decode(&mut buf, DEFAULT_MAX_FRAME).unwrap().unwrap();
    assert_eq!(cmd.code, 17);
    assert_eq!(cmd.language, LanguageCode::Java);
    assert_eq!(cmd.version, 399);
    assert_eq!(cmd.opaque, 5);
    assert!(cmd.is_response());
    assert_eq!(cmd.remark.as_deref(), Some("no"));
    assert_eq!(cmd.ext("k"), Some("v"));
    assert_eq!(&cmd.body[..], b"ok");

    // Our encoder writes exactly these bytes for the same command.
    let same = RemotingCommand {
        code: 17,
        language: LanguageCode::Java,
        version: 399,
        opaque: 5,
        flag: 1,
        remark: Some("no".into()),
        ext_fields: [("k".to_string(), "v".to_string())].into(),
        body: Bytes::from_static(b"ok"),
        serialize_type: SerializeType::RocketMq,
    };
    assert_eq!(&frame::encode_to_bytes(&same).unwrap()[..], GOLDEN_BINARY);
}

#[test]
fn fastjson_unquoted_numeric_keys_in_ext_fields_are_read() {
    let header = br#"{"code":0,"extFields":{1:"x"},"flag":1,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":0}"#;
    let mut bytes = ((4 + header.len()) as u32).to_be_bytes().to_vec();
    bytes.push(0);
    bytes.extend_from_slice(&(header.len() as u32).to_be_bytes()[1..]);
    bytes.extend_from_slice(header);
    let cmd = frame::decode(&mut BytesMut::from(&bytes[..]), DEFAULT_MAX_FRAME)
        .unwrap()
        .unwrap();
    assert_eq!(cmd.ext("1"), Some("x"));
}

#[test]
fn oversized_length_is_refused_before_allocating() {
    let mut buf = BytesMut::with_capacity(8);
    buf.extend_from_slice(&[0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10]); // 1 GiB claimed
    let cap = buf.capacity();
    let e = frame::decode(&mut buf, DEFAULT_MAX_FRAME).unwrap_err();
    assert!(matches!(e, FrameError::TooLarge { .. }), "{e}");
    assert_eq!(
        buf.capacity(),
        cap,
        "nothing reserved for the claimed length"
    );
    // Negative and tiny lengths.
    for head in [[0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 2]] {
        let mut b = BytesMut::from(&head[..]);
        assert!(frame::decode(&mut b, DEFAULT_MAX_FRAME).is_err());
    }
}

fn arb_command() -> impl Strategy<Value = RemotingCommand> {
    (
        any::<i16>(),
        0u8..14,
        any::<i16>(),
        any::<i32>(),
        0i32..4,
        proptest::option::of("[ -~é中]{1,30}"),
        proptest::collection::btree_map("[a-zA-Z0-9_]{1,12}", "[ -~é中]{0,30}", 0..8),
        proptest::collection::vec(any::<u8>(), 0..512),
        prop_oneof![Just(SerializeType::Json), Just(SerializeType::RocketMq)],
    )
        .prop_map(
            |(code, lang, version, opaque, flag, remark, ext, body, st)| RemotingCommand {
                code: code as i32,
                language: LanguageCode::from_code(lang),
                version: version as i32,
                opaque,
                flag,
                remark,
                ext_fields: ext.into(),
                body: Bytes::from(body),
                serialize_type: st,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decode_of_encode_is_identity(cmd in arb_command()) {
        let mut buf = BytesMut::new();
        frame::encode(&cmd, &mut buf).unwrap();
        let back = frame::decode(&mut buf, DEFAULT_MAX_FRAME).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(back, cmd);
    }

    /// Every prefix of a valid frame asks for more bytes, never panics, never yields garbage.
    #[test]
    fn truncated_frames_wait_for_more(cmd in arb_command(), cut in 0usize..2000) {
        let full = frame::encode_to_bytes(&cmd).unwrap();
        let cut = cut % full.len();
        let mut buf = BytesMut::from(&full[..cut]);
        prop_assert!(matches!(frame::decode(&mut buf, DEFAULT_MAX_FRAME), Ok(None)));
    }

    /// Random bytes: errors or commands, never a panic, never a buffer past the limit.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let mut buf = BytesMut::from(&bytes[..]);
        for _ in 0..64 {
            match frame::decode(&mut buf, 64 * 1024) {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        prop_assert!(buf.capacity() <= 64 * 1024 + 4096 + 8);
    }

    /// A valid frame with a flipped byte in its header: an error or some command, never a panic.
    #[test]
    fn corrupted_headers_never_panic(cmd in arb_command(), at in 4usize..64, x in 1u8..=255) {
        let mut bytes = frame::encode_to_bytes(&cmd).unwrap().to_vec();
        let at = at % bytes.len();
        bytes[at] ^= x;
        let mut buf = BytesMut::from(&bytes[..]);
        let _ = frame::decode(&mut buf, DEFAULT_MAX_FRAME);
    }
}
