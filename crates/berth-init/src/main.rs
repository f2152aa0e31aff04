//! The `berth-init` binary: parse the command line, supervise the program, exit with its code.
//! Errors are one line on stderr, `berth-init: step: cause`.

use berth_init::args::{self, Invocation, USAGE};
use berth_init::supervise;

fn main() {
    let code = match args::parse(std::env::args_os().skip(1)) {
        Ok(Invocation::Run(argv)) => match supervise::run(&argv) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("berth-init: {e}");
                1
            }
        },
        Ok(Invocation::Help) => {
            println!("usage: {USAGE}");
            println!("Runs PROGRAM as a child, forwards signals to it, reaps zombies, and exits with its status.");
            0
        }
        Ok(Invocation::Version) => {
            println!("berth-init {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Err(e) => {
            eprintln!("berth-init: {e}");
            1
        }
    };
    std::process::exit(code);
}
