//! The broker: where the store, replication and the network meet.
