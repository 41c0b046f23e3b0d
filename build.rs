//! Rebuilds when a migration or the built web client changes: the migrations and the client's
//! files (`web/dist`, committed) are embedded in the binary, so neither can go stale.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=web/dist");
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let dist = root.join("web/dist");
    let mut files = Vec::new();
    collect(&dist, &mut files);
    files.sort();
    let mut table = String::from(
        "/// The built web client: each file's path from the site's root, and its bytes.\n",
    );
    table.push_str("pub static ASSETS: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let rel = file.strip_prefix(&dist).expect("under dist");
        let url: Vec<_> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        writeln!(
            table,
            "    ({:?}, include_bytes!({:?})),",
            format!("/{}", url.join("/")),
            file.display().to_string()
        )
        .expect("writing to a String");
    }
    table.push_str("];\n");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("web_assets.rs"), table).expect("OUT_DIR is writable");
}

/// Every file under `dir` (none when it does not exist).
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        println!("cargo:rerun-if-changed={}", path.display());
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}
