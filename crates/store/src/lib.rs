//! The broker's disk: commitlog, consume queues and index files, in Apache RocketMQ's layout.
