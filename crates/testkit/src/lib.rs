//! Test support shared by the crates' integration tests: process guards that always kill what
//! they started, free loopback ports, locating the workspace binaries, and a blocking raw
//! remoting client that sends real frames and reads real answers.

mod client;
pub mod dledger;
mod process;

pub use client::RawClient;
pub use process::{
    bin_path, free_port, free_port_on, start_namesrv, wait_for_port, ProcessGuard, TempDir,
};
