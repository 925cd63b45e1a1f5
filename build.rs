//! refinery's `embed_migrations!` reads `migrations/` at compile time; without this
//! line cargo would not rebuild when a new migration file is added.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
