//! Embeds every file under `schemas/avro` in the crate, so the schemas ship inside the binary
//! and are parsed once, at first use, without touching the file system.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, root: &Path, out: &mut Vec<(String, PathBuf)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect(&path, root, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("avsc" | "json")
        ) {
            let relative = path.strip_prefix(root).expect("under root");
            let name = relative.to_str().expect("utf-8 path").replace('\\', "/");
            out.push((name, path.canonicalize().expect("canonical path")));
        }
    }
}

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest_dir.join("../../schemas/avro");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &root, &mut files);

    let mut code = String::from("pub(crate) static FILES: &[(&str, &str)] = &[\n");
    for (name, path) in files {
        writeln!(
            code,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    std::fs::write(out.join("schema_files.rs"), code).expect("write generated file");
}
