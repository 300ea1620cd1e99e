//! RocketMQ remoting protocol, byte-exact: frames, headers, codes, stored messages and JSON bodies.
//!
//! A pure codec: no sockets and no async runtime. Everything here turns bytes into values and back,
//! checking lengths before allocating.

pub mod message;
