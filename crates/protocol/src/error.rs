//! The protocol crate's error type for frames and headers.

use thiserror::Error;

/// Why a frame or header could not be decoded. Any of these closes the connection it came from.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("frame length {0} is too small to hold the header length field")]
    TooSmall(usize),
    #[error("header length {header_len} does not fit in a frame of {frame_len} bytes")]
    HeaderOverflow { header_len: usize, frame_len: usize },
    #[error("unknown serialize type {0}")]
    UnknownSerializeType(u8),
    #[error("malformed JSON header: {0}")]
    Json(String),
    #[error("malformed binary header: {0}")]
    Binary(&'static str),
    #[error("header string is not valid UTF-8")]
    Utf8,
    #[error("request code {0} cannot be carried in a ROCKETMQ binary header (signed 16-bit)")]
    CodeOutOfRange(i32),
}

/// Why a typed header could not be read from or written to `extFields`.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum HeaderError {
    #[error("missing required header field `{0}`")]
    Missing(&'static str),
    #[error("header field `{field}` has invalid value `{value}`")]
    Invalid { field: &'static str, value: String },
}
