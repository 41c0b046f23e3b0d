//! Rebuilds when a migration changes, so the embedded migrations never go stale.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
