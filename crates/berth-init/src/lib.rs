//! A tiny PID 1 for containers, in tini's role (`docker run --init`): it runs one program as
//! its child, forwards the signals it receives to it, reaps every zombie re-parented to it, and
//! exits with the program's exit code (128 + signal when the program was killed).
//!
//! The binary (`src/main.rs`) only parses arguments and prints errors; the steps live here:
//! [`args`] parses the command line, [`signals`] blocks and reads signals through a signalfd,
//! [`child`] forks and execs the program, [`reap`] collects exit statuses and [`supervise`]
//! ties them together in one loop; [`msg`] writes the one-line messages.
//!
//! `no_std` and allocation-free: the syscalls are `berth_sys::rt`'s, so that the binary can be
//! built without any libc (see `build.rs`).

#![cfg_attr(not(test), no_std)]

pub mod args;
pub mod child;
pub mod msg;
pub mod reap;
pub mod signals;
pub mod supervise;
