//! The `berth-init` binary: parse the command line, supervise the program, exit with its code.
//! Errors are one line on stderr, `berth-init: step: cause`.
//!
//! `#![no_main]`: berth-sys's `init_main!` defines the C `main`, which the C runtime calls in
//! a hosted build and berth-sys's own entry point in a freestanding one (see `build.rs`).

#![no_std]
// `cargo clippy --all-targets` checks this as a test too (never built: `test = false`).
#![cfg_attr(not(test), no_main)]

// Hosted: std provides the panic handler (and the unwinder a dev build needs).
#[cfg(any(not(berth_init_freestanding), test))]
extern crate std;

#[cfg(all(berth_init_freestanding, panic = "unwind", not(test)))]
compile_error!(
    "a freestanding berth-init needs panic = \"abort\": use a profile that aborts, or \
     BERTH_INIT_FREESTANDING=0 for a hosted build"
);

use berth_init::args::{self, Invocation, USAGE};
use berth_init::msg::Msg;
use berth_init::supervise;
use berth_sys::rt::Args;

#[cfg(not(test))]
berth_sys::init_main!(run);

#[cfg(all(berth_init_freestanding, not(test)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    berth_sys::rt::panicked()
}

#[cfg_attr(test, allow(dead_code))]
fn run(args: Args) -> i32 {
    let rest = args.argv.skip(1);
    match args::parse(rest.iter()) {
        Ok(Invocation::Run(program)) => match supervise::run(rest.skip(program), args.envp) {
            Ok(code) => code,
            Err(e) => {
                let mut msg = Msg::new();
                e.describe(&mut msg);
                msg.error();
                1
            }
        },
        Ok(Invocation::Help) => {
            Msg::new()
                .str("usage: ")
                .str(USAGE)
                .str("\nRuns PROGRAM as a child, forwards signals to it, reaps zombies, and exits with its status.")
                .write_line(1);
            0
        }
        Ok(Invocation::Version) => {
            Msg::new()
                .str("berth-init ")
                .str(env!("CARGO_PKG_VERSION"))
                .write_line(1);
            0
        }
        Err(e) => {
            let mut msg = Msg::new();
            e.describe(&mut msg);
            msg.error();
            1
        }
    }
}
