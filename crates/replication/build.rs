//! Compiles `proto/dledger.proto` (the Raft RPCs of DLedger mode) with tonic/prost. Needs
//! `protoc` (Debian's `protobuf-compiler`; `.ci/run` installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "../../proto/dledger.proto";
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .bytes(".")
        .compile_protos(&[proto], &["../../proto"])?;
    Ok(())
}
