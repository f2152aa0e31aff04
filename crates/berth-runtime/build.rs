//! Builds the exec trampoline (trampoline/<arch>.S, no libc) into a tiny static executable that
//! src/trampoline.rs embeds. Only x86_64 has one; elsewhere, or when no C compiler for the
//! target can be run, the image is empty and the runtime re-executes itself from a read-only
//! copy instead (src/exe_guard.rs).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=trampoline");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let target = out.join("trampoline");
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if arch != "x86_64" || !build(&target) {
        // An empty image: the runtime sees no trampoline and keeps the exe guard.
        std::fs::write(&target, b"").expect("write empty trampoline");
    }
}

/// Assemble and link trampoline/x86_64.S with the target's C compiler (the `cc` crate finds it:
/// CC_<target>, TARGET_CC, CC, cc).
fn build(target: &std::path::Path) -> bool {
    let compiler = cc::Build::new()
        .cargo_metadata(false)
        .cargo_warnings(false)
        .get_compiler();
    let mut cmd = compiler.to_command();
    cmd.args(["-nostdlib", "-static", "-no-pie", "-s"])
        .args(["-Wl,--build-id=none", "-Wl,-n", "-Wl,-z,noexecstack"])
        .arg("-o")
        .arg(target)
        .arg("trampoline/x86_64.S");
    match cmd.status() {
        Ok(status) if status.success() => true,
        outcome => {
            println!(
                "cargo:warning=no exec trampoline ({cmd:?}: {outcome:?}); the runtime will \
                 re-execute itself from a read-only copy at every start instead"
            );
            false
        }
    }
}
