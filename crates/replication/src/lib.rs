//! Replication: RocketMQ master-slave HA streams and DLedger mode on openraft.

pub mod dledger;
pub mod ha;
