//! The frame decoder on arbitrary bytes: it may return commands or errors, but must not panic,
//! loop, or grow its buffer past the frame limit.
#![no_main]

use bytes::BytesMut;
use ferrocket_protocol::frame;
use libfuzzer_sys::fuzz_target;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    for _ in 0..1024 {
        match frame::decode(&mut buf, LIMIT) {
            Ok(Some(cmd)) => {
                // Whatever decodes must encode again.
                let _ = frame::encode_to_bytes(&cmd);
            }
            Ok(None) | Err(_) => break,
        }
    }
    assert!(buf.capacity() <= LIMIT + data.len() + 8);
    // Message records inside a body are decoded by consumers too.
    let _ = ferrocket_protocol::message::decode_all(data, true);
});
