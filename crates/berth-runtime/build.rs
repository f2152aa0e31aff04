//! Builds the exec trampoline (trampoline/<arch>.S, no libc) into a tiny static executable that
//! src/trampoline.rs embeds. Only x86_64 has one; elsewhere the runtime re-executes itself from
//! a read-only copy instead (src/exe_guard.rs).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=trampoline");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = out.join("trampoline");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" {
        // An empty file: the runtime sees no trampoline and keeps the exe guard.
        std::fs::write(&target, b"").expect("write empty trampoline");
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-nostdlib", "-static", "-no-pie", "-s"])
        .args(["-Wl,--build-id=none", "-Wl,-n", "-Wl,-z,noexecstack"])
        .arg("-o")
        .arg(&target)
        .arg("trampoline/x86_64.S")
        .status()
        .unwrap_or_else(|e| panic!("run {cc} to build the exec trampoline: {e}"));
    assert!(status.success(), "{cc} failed to build the exec trampoline");
}
