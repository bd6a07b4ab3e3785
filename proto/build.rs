// Compiles proto/gnmi.proto with protox (pure Rust), so no protoc is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=gnmi.proto");
    let fds = protox::compile(["gnmi.proto"], ["."])?;
    // Small starting buffers per stream (see src/codec.rs).
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::codec::GnmiCodec")
        .compile_fds(fds)?;
    Ok(())
}
