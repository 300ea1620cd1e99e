//! The name server: stateless RocketMQ routing.
