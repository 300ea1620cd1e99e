//! Test support shared by the crates' integration tests: process guards, free ports, a raw remoting client.
