//! The stored-message format: what the commitlog holds and what pull bodies carry.
//!
//! Byte-exact with Apache RocketMQ 4.9 / 5.x (`MessageDecoder`): one record is
//! `TOTALSIZE | MAGIC | BODYCRC | QUEUEID | FLAG | QUEUEOFFSET | PHYSICALOFFSET | SYSFLAG |
//! BORNTIMESTAMP | BORNHOST | STORETIMESTAMP | STOREHOST | RECONSUMETIMES | PREPARED_TX_OFFSET |
//! BODY | TOPIC | PROPERTIES`, all big-endian. Hosts are 8 bytes (IPv4 + port) or 20 bytes
//! (IPv6 + port) as the SYSFLAG bits say; the topic length is one byte (v1 magic) or two (v2).
//!
//! A pure codec: [`decode`] never panics on arbitrary input and checks every length against the
//! buffer before allocating. [`MessageView`] borrows from the buffer (the store's hot path);
//! [`StoredMessage`] owns its fields (tests, tools, the broker building a record to append).

mod batch;
mod hash;
mod ids;
mod properties;
mod stored;
pub mod sysflag;
#[cfg(test)]
mod tests;

pub use batch::{decode_batch, encode_batch, BatchEntry};
pub use hash::{java_string_hash, tags_code};
pub use ids::{decode_offset_msg_id, encode_offset_msg_id, UniqIdGenerator};
pub use properties::{names, Properties, NAME_VALUE_SEPARATOR, PROPERTY_SEPARATOR};
pub use stored::{
    body_crc, born_host_len, decode, decode_all, decode_view, peek_total_size, store_host_len,
    store_host_pos, store_timestamp_pos, MessageView, StoredMessage,
};

use thiserror::Error;

/// Magic of a v1 record (one-byte topic length): `0xDAA320A7`.
pub const MESSAGE_MAGIC_CODE: i32 = -626_843_481;
/// Magic of a v2 record (two-byte topic length, topics over 127 bytes): `0xDAA320AB`.
pub const MESSAGE_MAGIC_CODE_V2: i32 = -626_843_477;
/// Magic of the end-of-segment filler record `[remaining int32][BLANK_MAGIC int32]`: `0xCBD43194`.
pub const BLANK_MAGIC_CODE: i32 = -875_286_124;

/// Byte position of MAGICCODE in a record.
pub const MAGIC_POS: usize = 4;
/// Byte position of BODYCRC.
pub const BODY_CRC_POS: usize = 8;
/// Byte position of QUEUEID.
pub const QUEUE_ID_POS: usize = 12;
/// Byte position of FLAG.
pub const FLAG_POS: usize = 16;
/// Byte position of QUEUEOFFSET.
pub const QUEUE_OFFSET_POS: usize = 20;
/// Byte position of PHYSICALOFFSET.
pub const PHYSICAL_OFFSET_POS: usize = 28;
/// Byte position of SYSFLAG.
pub const SYSFLAG_POS: usize = 36;
/// Byte position of BORNTIMESTAMP.
pub const BORN_TIMESTAMP_POS: usize = 40;
/// Byte position of BORNHOST.
pub const BORN_HOST_POS: usize = 48;

/// Largest properties string a record can hold (its length is an int16).
pub const MAX_PROPERTIES_LEN: usize = i16::MAX as usize;
/// Longest topic a v1 record can hold; longer topics need the v2 magic.
pub const MAX_V1_TOPIC_LEN: usize = 127;

/// Why bytes could not be read as a stored message, a batch body or a message id.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum DecodeError {
    /// The buffer ends before the field that was being read.
    #[error("truncated: {field} needs {need} bytes at position {at}, only {have} available")]
    Truncated {
        field: &'static str,
        at: usize,
        need: usize,
        have: usize,
    },
    /// TOTALSIZE disagrees with the sum of the field lengths.
    #[error("total size {declared} disagrees with the {actual} bytes the fields take")]
    SizeMismatch { declared: i64, actual: i64 },
    /// MAGICCODE is neither v1 nor v2 (a blank record is reported as [`DecodeError::Blank`]).
    #[error("bad magic code {0:#010x}")]
    BadMagic(u32),
    /// The record is the end-of-segment filler, not a message.
    #[error("blank (end-of-segment) record of {0} bytes")]
    Blank(i32),
    /// A length field is negative.
    #[error("negative length {len} for {field}")]
    NegativeLength { field: &'static str, len: i32 },
    /// BODYCRC does not match the body bytes.
    #[error("body CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BodyCrc { stored: u32, computed: u32 },
    /// The topic or properties string is not UTF-8.
    #[error("{0} is not valid UTF-8")]
    Utf8(&'static str),
    /// A message id is not the expected hex string.
    #[error("bad message id: {0}")]
    BadMessageId(String),
}

/// Why a value could not be encoded (a field is too long for its length prefix).
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum EncodeError {
    #[error("topic of {0} bytes is too long (at most 127 for v1, 32767 for v2)")]
    TopicTooLong(usize),
    #[error("properties string of {0} bytes exceeds 32767")]
    PropertiesTooLong(usize),
    #[error("body of {0} bytes exceeds the int32 length field")]
    BodyTooLong(usize),
}
