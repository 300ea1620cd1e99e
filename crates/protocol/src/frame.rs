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

/// Appends one encoded frame for `cmd` to `dst`.
pub fn encode(cmd: &RemotingCommand, dst: &mut BytesMut) -> Result<(), FrameError> {
    let mut header = Vec::with_capacity(128 + cmd.ext_fields.len() * 24);
    match cmd.serialize_type {
        SerializeType::Json => header_json::encode(cmd, &mut header),
        SerializeType::RocketMq => header_binary::encode(cmd, &mut header)?,
    }
    if header.len() > MAX_HEADER {
        return Err(FrameError::TooLarge {
            len: header.len(),
            max: MAX_HEADER,
        });
    }
    let length = 4 + header.len() + cmd.body.len();
    let length32 = i32::try_from(length).map_err(|_| FrameError::TooLarge {
        len: length,
        max: i32::MAX as usize,
    })?;
    dst.reserve(4 + length);
    dst.put_i32(length32);
    dst.put_u32(((cmd.serialize_type as u32) << 24) | header.len() as u32);
    dst.put_slice(&header);
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
