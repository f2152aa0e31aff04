//! Per-container monitor (conmon's role): the contract is docs/monitor.md.
//!
//! One `berth-monitor` process runs per container. It runs the runtime's `create`, reports the
//! container's pid to the engine, logs the container's output in k8s-file format, serves attach
//! clients over a SEQPACKET socket, reaps the container, writes the exit file and execs the
//! engine's exit command. Everything runs in one thread around one epoll loop.
#![forbid(unsafe_code)]

pub mod args;
pub mod attach;
pub mod console;
pub mod create;
pub mod exitfile;
pub mod json;
pub mod logs;
pub mod monitor;
pub mod stdin;
pub mod sync;
pub mod time;
pub mod unixsock;
