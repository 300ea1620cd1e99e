//! RocketMQ remoting protocol, byte-exact: frames, headers, codes, stored messages and JSON bodies.
//!
//! A pure codec: no sockets and no async runtime. Everything here turns bytes into values and back,
//! checking lengths before allocating.
//!
//! - [`frame`]: the frame layout and both header serializations ([`command::RemotingCommand`]).
//! - [`code`]: request and response codes.
//! - [`message`]: the stored-message format (commitlog records, pull bodies).
//! - [`fastjson`]: reading and writing fastjson's unquoted numeric map keys.

pub mod body;
pub mod code;
pub mod command;
pub mod error;
mod ext_fields;
pub mod fastjson;
pub mod frame;
pub mod header;
mod header_binary;
mod header_json;
mod header_json_fast;
pub mod language;
pub mod message;

pub use code::{RequestCode, ResponseCode};
pub use command::{RemotingCommand, SerializeType};
pub use error::{FrameError, HeaderError};
pub use language::LanguageCode;
