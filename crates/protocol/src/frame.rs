//! The frame: `length(4) | serializeType(1) headerLength(3) | header | body`, big-endian.
//!
//! Decoding checks, then parses: "not enough bytes yet" is `Ok(None)`; a frame larger than the
//! limit is rejected from its 4-byte length alone, before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::command::{RemotingCommand, SerializeType};
use crate::error::FrameError;
use crate::{header_binary, header_json};

/// Default largest frame accepted: 16 MiB, as the Java decoder.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// Largest header length the 24-bit field can carry.
const MAX_HEADER: usize = (1 << 24) - 1;

/// Appends one encoded frame for `cmd` to `dst` (nothing on error). A JSON header is written in
/// place, between the length fields and the body, which are filled in around it.
pub fn encode(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
    let start = dst.len();
    dst.reserve(8 + 128 + cmd.ext_fields.len() * 24 + cmd.body.len());
    dst.put_u64(0);
    let header = match cmd.serialize_type {
        SerializeType::Json => {
            header_json::encode(cmd, dst);
            Ok(())
        }
        SerializeType::RocketMq => {
            let mut header = Vec::with_capacity(64 + cmd.ext_fields.len() * 24);
            header_binary::encode(cmd, &mut header).map(|()| dst.put_slice(&header))
        }
    };
    let header_len = dst.len() - start - 8;
    let length = 4 + header_len + cmd.body.len();
    let checked = header.and_then(|()| {
        if header_len > MAX_HEADER {
            return Err(FrameError::TooLarge {
                len: header_len,
                max: MAX_HEADER,
            });
        }
        i32::try_from(length).map_err(|_| FrameError::TooLarge {
            len: length,
            max: i32::MAX as usize,
        })
    });
    let length32 = match checked {
        Ok(l) => l,
        Err(e) => {
            dst.truncate(start);
            return Err(e);
        }
    };
    dst[start..start + 4].copy_from_slice(&length32.to_be_bytes());
    let mark = ((cmd.serialize_type as u32) << 24) | header_len as u32;
    dst[start + 4..start + 8].copy_from_slice(&mark.to_be_bytes());
    dst.put_slice(&cmd.body);
    Ok(())
}

/// Encodes `cmd` into a fresh buffer.
pub fn encode_to_bytes(cmd: &RemotingCommand) -> Result<Bytes, FrameError> {
    let mut b = BytesMut::new();
    encode(cmd, &mut b)?;
    Ok(b.freeze())
}

/// Takes one whole frame off the front of `src`, if one is there.
///
/// `Ok(None)`: more bytes are needed (and `src` has been told how many to expect). `Err`: the
/// stream is broken and the connection should be closed.
pub fn decode(src: &mut BytesMut, max_frame: usize) -> Result<Option<RemotingCommand>, FrameError> {
    if src.len() < 4 {
        return Ok(None);
    }
    let raw_len = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
    let len = usize::try_from(raw_len).map_err(|_| FrameError::TooSmall(0))?;
    if len > max_frame {
        return Err(FrameError::TooLarge {
            len,
            max: max_frame,
        });
    }
    if len < 4 {
        return Err(FrameError::TooSmall(len));
    }
    if src.len() < 4 + len {
        src.reserve(4 + len - src.len());
        return Ok(None);
    }
    let mut frame = src.split_to(4 + len).freeze();
    frame.advance(4);
    decode_frame_body(frame).map(Some)
}

/// Decodes the part of a frame after its length field.
pub fn decode_frame_body(mut frame: Bytes) -> Result<RemotingCommand, FrameError> {
    let len = frame.len();
    if len < 4 {
        return Err(FrameError::TooSmall(len));
    }
    let mark = frame.get_u32();
    let serialize = (mark >> 24) as u8;
    let header_len = (mark & 0x00FF_FFFF) as usize;
    if header_len > frame.len() {
        return Err(FrameError::HeaderOverflow {
            header_len,
            frame_len: len,
        });
    }
    let header = frame.split_to(header_len);
    let mut cmd = match serialize {
        0 => header_json::decode(&header)?,
        1 => header_binary::decode(&header)?,
        other => return Err(FrameError::UnknownSerializeType(other)),
    };
    cmd.body = frame;
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header too large for its 24-bit length is refused in both serializations, and what the
    /// buffer held before (earlier frames queued for the same write) is left as it was.
    #[test]
    fn a_header_too_large_leaves_the_buffer_as_it_was() {
        for ser in [SerializeType::Json, SerializeType::RocketMq] {
            let mut cmd = RemotingCommand::request(10).with_serialize_type(ser);
            cmd.ext_fields.insert("k", "v".repeat(MAX_HEADER + 1));
            let mut dst = BytesMut::from(&b"earlier frame"[..]);
            assert!(matches!(
                encode(&cmd, &mut dst),
                Err(FrameError::TooLarge { .. })
            ));
            assert_eq!(&dst[..], b"earlier frame");
            let ok = RemotingCommand::request(10)
                .with_serialize_type(ser)
                .with_body(&b"body"[..]);
            encode(&ok, &mut dst).unwrap();
            let mut rest = dst.split_off(13);
            let back = decode(&mut rest, DEFAULT_MAX_FRAME).unwrap().unwrap();
            assert_eq!(back, ok);
        }
    }
}
