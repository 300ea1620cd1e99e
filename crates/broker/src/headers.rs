//! The broker's request headers live in the protocol crate (`ferrocket_protocol::header::broker`).

pub use ferrocket_protocol::header::broker::*;
pub use ferrocket_protocol::header::namesrv::{
    RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader,
};
