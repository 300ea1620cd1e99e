//! The client's error type.

use ferrocket_protocol::ResponseCode;

/// Everything a client call can fail with.
///
/// ```
/// use ferrocket_client::ClientError;
/// let e = ClientError::Timeout { addr: "127.0.0.1:10911".into(), timeout_ms: 3000 };
/// assert!(e.is_retryable());
/// assert_eq!(e.response_code(), None);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting, reading or writing failed.
    #[error("connection to {addr} failed: {source}")]
    Io {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("no answer from {addr} within {timeout_ms} ms")]
    Timeout { addr: String, timeout_ms: u64 },
    /// The peer sent bytes that are not a remoting frame; the connection was closed.
    #[error("malformed frame from {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// The connection closed before the answer arrived.
    #[error("connection to {addr} closed")]
    Closed { addr: String },
    /// The server answered with an error code.
    #[error("{addr} answered {code} ({name}): {remark}")]
    Broker {
        addr: String,
        code: i32,
        name: String,
        remark: String,
    },
    /// No name server knows the topic, or every name server failed.
    #[error("no route for topic `{0}`")]
    NoRoute(String),
    /// The answer could not be understood.
    #[error("cannot decode {what}: {reason}")]
    Decode { what: &'static str, reason: String },
    /// A caller mistake: bad argument or configuration.
    #[error("{0}")]
    Invalid(String),
}

impl ClientError {
    pub(crate) fn broker(addr: &str, code: i32, remark: Option<&str>) -> Self {
        let name = ResponseCode::from_i32(code)
            .map(|c| c.name().to_string())
            .unwrap_or_else(|| "UNKNOWN".into());
        ClientError::Broker {
            addr: addr.to_string(),
            code,
            name,
            remark: remark.unwrap_or("").to_string(),
        }
    }

    /// The server's response code, when the error is an error answer.
    pub fn response_code(&self) -> Option<i32> {
        match self {
            ClientError::Broker { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying on another broker may succeed (RocketMQ's retryable send codes plus
    /// transport failures).
    pub fn is_retryable(&self) -> bool {
        match self {
            ClientError::Broker { code, .. } => matches!(
                ResponseCode::from_i32(*code),
                Some(
                    ResponseCode::TOPIC_NOT_EXIST
                        | ResponseCode::SERVICE_NOT_AVAILABLE
                        | ResponseCode::SYSTEM_ERROR
                        | ResponseCode::NO_PERMISSION
                        | ResponseCode::NO_BUYER_ID
                        | ResponseCode::NOT_IN_CURRENT_UNIT
                        | ResponseCode::SYSTEM_BUSY
                )
            ),
            ClientError::Io { .. } | ClientError::Timeout { .. } | ClientError::Closed { .. } => {
                true
            }
            _ => false,
        }
    }

    /// Whether the route may be stale (refresh it before retrying).
    pub fn is_routing(&self) -> bool {
        matches!(
            self.response_code().and_then(ResponseCode::from_i32),
            Some(
                ResponseCode::TOPIC_NOT_EXIST
                    | ResponseCode::SERVICE_NOT_AVAILABLE
                    | ResponseCode::NO_PERMISSION
            )
        ) || matches!(
            self,
            // A broker that stopped answering may have been replaced (a hung DLedger leader):
            // ask the name server again rather than trust a route for another 30 s.
            ClientError::Io { .. } | ClientError::Closed { .. } | ClientError::Timeout { .. }
        )
    }
}

/// Result alias of the crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;
