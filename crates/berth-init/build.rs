//! Decides how the `berth-init` binary is built, and tells the code (`cfg(berth_init_freestanding)`)
//! and the tests (`BERTH_INIT_FREESTANDING`).
//!
//! Freestanding: no libc at all, berth-sys's `__berth_rt_start` as the entry point, linked
//! `-static -nostdlib`: a static executable of a few tens of KiB. It needs `panic = "abort"`
//! (a no_std binary has no unwinder) and no `std` anywhere in its dependencies, so it is
//! chosen when
//! - the profile is release-based (the workspace's release profile aborts on panic; dev
//!   unwinds, and cargo cannot change `panic` for one package), and
//! - berth-sys is built without `std` (`cargo build -p berth-init`; in a build of the whole
//!   workspace other crates turn on berth-sys's `std`, and cargo unifies features), and
//! - the target is Linux on x86_64 or aarch64.
//!
//! Otherwise it is hosted: the same code, with std linked in and the C runtime calling `main`;
//! an ordinary dynamic executable. `BERTH_INIT_FREESTANDING=0|1` in the environment
//! overrides the choice of profile (not the other two conditions).

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=BERTH_INIT_FREESTANDING");
    println!("cargo:rustc-check-cfg=cfg(berth_init_freestanding)");
    let var = |name: &str| env::var(name).unwrap_or_default();
    let release = match var("BERTH_INIT_FREESTANDING").as_str() {
        "0" => false,
        "1" => true,
        _ => var("PROFILE") == "release",
    };
    let no_std = env::var_os("DEP_BERTH_SYS_STD").is_none();
    let target = var("CARGO_CFG_TARGET_OS") == "linux"
        && matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64");
    let freestanding = release && no_std && target;
    println!(
        "cargo:rustc-env=BERTH_INIT_FREESTANDING={}",
        u8::from(freestanding)
    );
    if !freestanding {
        return;
    }
    println!("cargo:rustc-cfg=berth_init_freestanding");
    for arg in [
        "-nostartfiles",
        "-nostdlib",
        "-static",
        "-no-pie",
        "-Wl,-e,__berth_rt_start",
        "-Wl,--gc-sections",
        "-Wl,--build-id=none",
        "-Wl,-z,norelro",
        "-Wl,-z,noexecstack",
        "-Wl,--strip-all",
    ] {
        println!("cargo:rustc-link-arg-bins={arg}");
    }
}
