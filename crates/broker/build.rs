//! Compiles RocketMQ 5.x's gRPC API (`proto/apache/rocketmq/v2`) with tonic/prost: the server,
//! and the client the `grpc_load` example drives it with. Needs `protoc` (Debian's `protobuf-compiler`; `.ci/run` installs it).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = "../../proto";
    let files = [
        "../../proto/apache/rocketmq/v2/definition.proto",
        "../../proto/apache/rocketmq/v2/service.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&files, &[dir])?;
    Ok(())
}
