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
//! Otherwise it is hosted: the same code, with std linked in and the C runtime calling `main`.
//! Hosted on `*-linux-gnu` (not cross-compiling), it is still linked statically, as
//! `-C target-feature=+crt-static` would (which cargo cannot set for one package): `-static-pie`,
//! with linker scripts in OUT_DIR standing in for the shared libraries rustc asks for
//! (`-lc -lgcc_s -lpthread ...`) that name glibc's `libc.a` and libgcc's archives instead, so
//! that `target/debug/berth-init` can be bind-mounted into any container too. Without
//! `libc.a` (Debian: libc6-dev) it stays dynamic, with a warning.
//!
//! `BERTH_INIT_FREESTANDING=0|1` in the environment overrides the choice of profile (not the
//! other two conditions). The tests learn the outcome from `BERTH_INIT_FREESTANDING` and
//! `BERTH_INIT_STATIC` (1 or 0) at compile time.

use std::env;
use std::path::PathBuf;
use std::process::Command;

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
        let linked_static = target && hosted_static();
        println!(
            "cargo:rustc-env=BERTH_INIT_STATIC={}",
            u8::from(linked_static)
        );
        return;
    }
    println!("cargo:rustc-env=BERTH_INIT_STATIC=1");
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

/// Sets up a static link of the hosted binary against glibc; false when it cannot.
fn hosted_static() -> bool {
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ENV") != "gnu" || var("TARGET") != var("HOST") {
        return false;
    }
    let linker = env::var("RUSTC_LINKER").unwrap_or_else(|_| "cc".to_owned());
    let archive = |name: &str| -> Option<PathBuf> {
        let out = Command::new(&linker)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()?;
        let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
        // Not found, the compiler prints the bare name.
        (path.is_absolute() && path.exists()).then_some(path)
    };
    let (Some(libc), Some(gcc), Some(gcc_eh)) = (
        archive("libc.a"),
        archive("libgcc.a"),
        archive("libgcc_eh.a"),
    ) else {
        println!(
            "cargo:warning=berth-init is linked dynamically: no static glibc (libc.a) for \
             {linker}; install libc6-dev"
        );
        return false;
    };
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return false;
    };
    let dir = out.join("static-libs");
    let scripts = [
        (
            "libc.so",
            format!(
                "GROUP({} {} {})",
                libc.display(),
                gcc.display(),
                gcc_eh.display()
            ),
        ),
        (
            "libgcc_s.so",
            format!("INPUT({} {})", gcc_eh.display(), gcc.display()),
        ),
        // In libc.a since glibc 2.34, and in the group above before that.
        ("libpthread.so", "INPUT()".to_owned()),
        ("libdl.so", "INPUT()".to_owned()),
        ("librt.so", "INPUT()".to_owned()),
        ("libutil.so", "INPUT()".to_owned()),
        (
            "libm.so",
            archive("libm.a").map_or("INPUT()".to_owned(), |m| format!("INPUT({})", m.display())),
        ),
    ];
    if std::fs::create_dir_all(&dir).is_err()
        || scripts
            .iter()
            .any(|(name, text)| std::fs::write(dir.join(name), format!("{text}\n")).is_err())
    {
        return false;
    }
    // Only the binary: the tests and the library's test harness stay ordinary executables.
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bins=-static-pie");
    true
}
