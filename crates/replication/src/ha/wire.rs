//! The classic HA stream's two units: the slave's 8-byte offset report and the master's 12-byte
//! transfer header (offset i64, body size i32, big-endian), followed by raw commitlog bytes.

use bytes::{Buf, BytesMut};

use super::HaError;

/// Bytes of a slave's offset report.
pub const REPORT_LEN: usize = 8;
/// Bytes of a master's transfer header.
pub const HEADER_LEN: usize = 12;
/// Largest body a slave accepts under one header. RocketMQ's default batch is 32 KiB; a master
/// configured with a bigger `haTransferBatchSize` stays well below this.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Encodes a transfer header.
pub fn encode_header(offset: i64, size: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&offset.to_be_bytes());
    h[8..].copy_from_slice(&(size as i32).to_be_bytes());
    h
}

/// Takes every complete 8-byte report out of `buf` and returns the last one (only the newest
/// matters); a partial report stays in `buf`.
pub fn take_last_report(buf: &mut BytesMut) -> Option<i64> {
    let whole = buf.len() / REPORT_LEN * REPORT_LEN;
    if whole == 0 {
        return None;
    }
    let last = i64::from_be_bytes(buf[whole - REPORT_LEN..whole].try_into().expect("8 bytes"));
    buf.advance(whole);
    Some(last)
}

/// One transfer from the master: `body` is empty for a heartbeat.
#[derive(Debug, PartialEq, Eq)]
pub struct Transfer {
    pub offset: i64,
    pub body: BytesMut,
}

/// Decodes the next transfer from `buf`: `Ok(None)` while incomplete; an error for a negative
/// or oversized body (checked before anything is buffered for it).
pub fn decode_transfer(buf: &mut BytesMut) -> Result<Option<Transfer>, HaError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let offset = i64::from_be_bytes(buf[..8].try_into().expect("8 bytes"));
    let size = i32::from_be_bytes(buf[8..12].try_into().expect("4 bytes"));
    if size < 0 || size as usize > MAX_BODY {
        return Err(HaError::Protocol(format!(
            "transfer header at offset {offset} announces {size} bytes (accepted: 0..={MAX_BODY})"
        )));
    }
    if offset < 0 {
        return Err(HaError::Protocol(format!(
            "transfer header with negative offset {offset}"
        )));
    }
    let size = size as usize;
    if buf.len() < HEADER_LEN + size {
        buf.reserve(HEADER_LEN + size - buf.len());
        return Ok(None);
    }
    buf.advance(HEADER_LEN);
    let body = buf.split_to(size);
    Ok(Some(Transfer { offset, body }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_report_wins_and_partial_stays() {
        let mut b = BytesMut::new();
        assert_eq!(take_last_report(&mut b), None);
        b.extend_from_slice(&5i64.to_be_bytes());
        b.extend_from_slice(&9i64.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0]);
        assert_eq!(take_last_report(&mut b), Some(9));
        assert_eq!(b.len(), 3);
        b.extend_from_slice(&[0, 0, 0, 0, 42]);
        assert_eq!(take_last_report(&mut b), Some(42));
        assert!(b.is_empty());
    }

    #[test]
    fn transfers_decode_in_pieces() {
        let mut wire = Vec::new();
        wire.extend_from_slice(&encode_header(100, 3));
        wire.extend_from_slice(b"abc");
        wire.extend_from_slice(&encode_header(103, 0));
        let mut b = BytesMut::new();
        let mut got = Vec::new();
        for byte in wire {
            b.extend_from_slice(&[byte]);
            while let Some(t) = decode_transfer(&mut b).unwrap() {
                got.push(t);
            }
        }
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].offset, 100);
        assert_eq!(&got[0].body[..], b"abc");
        assert_eq!(got[1].offset, 103);
        assert!(got[1].body.is_empty());
    }

    #[test]
    fn bad_sizes_are_refused_before_buffering() {
        let mut b = BytesMut::from(&encode_header(0, u32::MAX)[..]);
        assert!(decode_transfer(&mut b).is_err());
        let mut b = BytesMut::from(&encode_header(0, (MAX_BODY + 1) as u32)[..]);
        assert!(decode_transfer(&mut b).is_err());
        let mut b = BytesMut::from(&encode_header(-1, 0)[..]);
        assert!(decode_transfer(&mut b).is_err());
    }
}
