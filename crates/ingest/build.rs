//! Compiles the ingest proto with protox (pure Rust), so the build needs nothing but cargo.

use std::path::PathBuf;

// The manifest directory is read when the script runs, not when it is compiled: a build
// cache shared between checkouts must not point this checkout at another one's schemas.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schemas = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").ok_or("cargo sets CARGO_MANIFEST_DIR")?,
    )
    .join("../../schemas/proto");
    let proto = schemas.join("switchboard/ingest/v1/ingest.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    let descriptors = protox::compile([&proto], [&schemas])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(descriptors)?;
    Ok(())
}
