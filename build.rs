//! Compiles `proto/` with protox (pure Rust: no system `protoc`) into the
//! registry API's tonic server and client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/mcp_authz/registry/v1/registry.proto";
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(fds)?;
    Ok(())
}
