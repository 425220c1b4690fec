//! Compiles the query proto with protox (pure Rust), so the build needs nothing but cargo.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schemas = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../schemas/proto");
    let proto = schemas.join("switchboard/query/v1/query.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&schemas])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
