// Cargo rebuilds the crate when a migration is added, not only when one changes:
// `sqlx::migrate!` embeds the folder's files at compile time.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
