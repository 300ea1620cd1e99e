//! Async Rust client for RocketMQ-compatible brokers: producer, push and pull consumers, admin.
