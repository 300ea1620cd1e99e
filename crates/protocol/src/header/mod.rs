//! Typed headers: the `extFields` of each command as a Rust struct.
//!
//! Every header implements [`CommandHeader`]; the [`header!`](crate::header!) macro writes the
//! impl from a field list with RocketMQ's key names. An empty string reads as an absent optional
//! field (the Go client sends those); a missing required field is [`HeaderError::Missing`].

pub mod broker;
pub mod namesrv;

use crate::command::{ExtFields, RemotingCommand};
use crate::error::HeaderError;

/// A typed view of a command's `extFields`.
pub trait CommandHeader: Sized {
    /// Writes every present field into `ext`.
    fn write_to(&self, ext: &mut ExtFields);
    /// Reads the header from `ext`.
    fn read_from(ext: &ExtFields) -> Result<Self, HeaderError>;

    /// Reads the header of `cmd`.
    fn from_command(cmd: &RemotingCommand) -> Result<Self, HeaderError> {
        Self::read_from(&cmd.ext_fields)
    }
}

impl RemotingCommand {
    /// Sets this command's extFields from a typed header (keeps other keys).
    pub fn with_header<H: CommandHeader>(mut self, h: &H) -> Self {
        h.write_to(&mut self.ext_fields);
        self
    }

    /// Reads a typed header out of this command's extFields.
    pub fn header<H: CommandHeader>(&self) -> Result<H, HeaderError> {
        H::read_from(&self.ext_fields)
    }
}

/// One header value as text on the wire: written with `Display`, read with `from_wire`.
pub trait HeaderValue: Sized + std::fmt::Display {
    fn from_wire(s: &str) -> Option<Self>;
}

macro_rules! numeric_value {
    ($($t:ty),*) => {$(
        impl HeaderValue for $t {
            fn from_wire(s: &str) -> Option<Self> { s.trim().parse().ok() }
        }
    )*};
}
numeric_value!(i8, i16, i32, i64, u8, u16, u32, u64, f64);

impl HeaderValue for bool {
    fn from_wire(s: &str) -> Option<Self> {
        match s.trim() {
            "true" | "TRUE" | "True" => Some(true),
            "false" | "FALSE" | "False" => Some(false),
            _ => None,
        }
    }
}

impl HeaderValue for String {
    fn from_wire(s: &str) -> Option<Self> {
        Some(s.to_string())
    }
}

/// Reads a required field.
pub fn required<T: HeaderValue>(ext: &ExtFields, key: &'static str) -> Result<T, HeaderError> {
    match ext.get(key) {
        None | Some("") => Err(HeaderError::Missing(key)),
        Some(v) => T::from_wire(v).ok_or_else(|| HeaderError::Invalid {
            field: key,
            value: v.to_string(),
        }),
    }
}

/// Reads an optional field; "" is absent, an unparsable value is an error.
pub fn optional<T: HeaderValue>(
    ext: &ExtFields,
    key: &'static str,
) -> Result<Option<T>, HeaderError> {
    match ext.get(key) {
        None | Some("") => Ok(None),
        Some(v) => T::from_wire(v)
            .map(Some)
            .ok_or_else(|| HeaderError::Invalid {
                field: key,
                value: v.to_string(),
            }),
    }
}

/// Declares a header struct and its [`CommandHeader`] impl.
///
/// ```
/// ferrocket_protocol::header! {
///     /// Example.
///     pub struct ExampleHeader {
///         required { topic: String = "topic", queue_id: i32 = "queueId", }
///         optional { unit_mode: bool = "unitMode", }
///     }
/// }
/// # use ferrocket_protocol::header::CommandHeader;
/// let mut ext = Default::default();
/// ExampleHeader { topic: "t".into(), queue_id: 3, unit_mode: None }.write_to(&mut ext);
/// assert_eq!(ext.get("queueId"), Some("3"));
/// ```
#[macro_export]
macro_rules! header {
    (
        $(#[$m:meta])*
        pub struct $name:ident {
            required { $($rf:ident : $rt:ty = $rk:literal),* $(,)? }
            optional { $($of:ident : $ot:ty = $ok:literal),* $(,)? }
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default)]
        pub struct $name {
            $(#[doc = concat!("`", $rk, "` (required)")] pub $rf: $rt,)*
            $(#[doc = concat!("`", $ok, "`")] pub $of: Option<$ot>,)*
        }

        impl $crate::header::CommandHeader for $name {
            fn write_to(&self, ext: &mut $crate::command::ExtFields) {
                $(ext.insert_display($rk, &self.$rf);)*
                $(if let Some(v) = &self.$of { ext.insert_display($ok, v); })*
            }
            fn read_from(ext: &$crate::command::ExtFields) -> Result<Self, $crate::error::HeaderError> {
                Ok($name {
                    $($rf: $crate::header::required(ext, $rk)?,)*
                    $($of: $crate::header::optional(ext, $ok)?,)*
                })
            }
        }
    };
}
