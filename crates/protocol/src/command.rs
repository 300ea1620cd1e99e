//! `RemotingCommand`: one request or response, as every RocketMQ process exchanges them.

use bytes::Bytes;

use crate::code::ResponseCode;
use crate::language::LanguageCode;

/// Flag bit 0: this command is a response.
pub const FLAG_RESPONSE: i32 = 0x1;
/// Flag bit 1: the request expects no response.
pub const FLAG_ONEWAY: i32 = 0x2;

/// Our `version` field: the ordinal of RocketMQ's `V4_9_8` (409), so servers treat us as a
/// modern client (standard JSON route data and the like).
pub const CURRENT_VERSION: i32 = 409;

/// How the header of a frame is serialized; a server answers in the type the request used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SerializeType {
    #[default]
    Json = 0,
    RocketMq = 1,
}

/// The `extFields` map: every typed header flattened into string keys and values.
pub use crate::ext_fields::ExtFields;

/// A request or response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemotingCommand {
    /// Request code for requests, response code for responses.
    pub code: i32,
    pub language: LanguageCode,
    pub version: i32,
    /// Request id; a response carries its request's opaque.
    pub opaque: i32,
    pub flag: i32,
    pub remark: Option<String>,
    pub ext_fields: ExtFields,
    pub body: Bytes,
    pub serialize_type: SerializeType,
}

impl RemotingCommand {
    /// A new request with our language and version; the opaque is set by whoever sends it.
    pub fn request(code: impl Into<i32>) -> Self {
        RemotingCommand {
            code: code.into(),
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            ..Default::default()
        }
    }

    /// A response to `req`: same opaque and serialization, response flag set.
    pub fn response_to(req: &RemotingCommand, code: impl Into<i32>) -> Self {
        RemotingCommand {
            code: code.into(),
            language: LanguageCode::Rust,
            version: CURRENT_VERSION,
            opaque: req.opaque,
            flag: FLAG_RESPONSE,
            serialize_type: req.serialize_type,
            ..Default::default()
        }
    }

    /// A response to `req` with a code and a remark (usually an error message).
    pub fn error_to(req: &RemotingCommand, code: ResponseCode, remark: impl Into<String>) -> Self {
        RemotingCommand::response_to(req, code).with_remark(remark)
    }

    pub fn with_remark(mut self, remark: impl Into<String>) -> Self {
        self.remark = Some(remark.into());
        self
    }

    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    pub fn with_opaque(mut self, opaque: i32) -> Self {
        self.opaque = opaque;
        self
    }

    pub fn with_serialize_type(mut self, t: SerializeType) -> Self {
        self.serialize_type = t;
        self
    }

    /// Sets one extFields entry.
    pub fn with_ext(mut self, key: impl AsRef<str>, value: impl std::fmt::Display) -> Self {
        self.ext_fields.insert_display(key.as_ref(), &value);
        self
    }

    /// Marks a request as oneway.
    pub fn into_oneway(mut self) -> Self {
        self.flag |= FLAG_ONEWAY;
        self
    }

    pub fn is_response(&self) -> bool {
        self.flag & FLAG_RESPONSE != 0
    }

    pub fn is_oneway(&self) -> bool {
        self.flag & FLAG_ONEWAY != 0
    }

    /// An extFields value; an empty string counts as absent (the Go client sends those).
    pub fn ext(&self, key: &str) -> Option<&str> {
        self.ext_fields.get(key).filter(|v| !v.is_empty())
    }

    /// The response code as a known enum value, if it is one.
    pub fn response_code(&self) -> Option<ResponseCode> {
        ResponseCode::from_i32(self.code)
    }
}
