//! Passes `std` on to dependents' build scripts as `DEP_BERTH_SYS_STD`: berth-init builds a
//! freestanding binary only when nothing in the build links std through this crate.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_STD").is_some() {
        println!("cargo:std=1");
    }
}
