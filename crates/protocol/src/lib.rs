//! RocketMQ remoting protocol, byte-exact: frames, headers, codes, stored messages and JSON bodies.
