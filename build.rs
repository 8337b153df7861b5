//! Rebuilds the binary when a migration changes: `sqlx::migrate!` embeds the files of
//! `migrations/` at compile time, and cargo does not otherwise notice a new one.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
