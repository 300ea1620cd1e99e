//! Broker integration tests: real `mqbroker` (and `mqnamesrv`) processes on loopback, real
//! frames through `RawClient`. Everything is bounded in count and time; waits use deadlines.

mod clients;
mod crash;
mod dledger;
mod filter_timer;
mod frames;
mod grpc;
mod ha;
mod in_process;
mod layout_ha;
mod layout_stock;
mod long_poll;
mod namesrv;
mod pop;
mod restart;
mod send_pull;
mod stock_conf;
mod util;
