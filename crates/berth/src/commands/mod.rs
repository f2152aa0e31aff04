//! One module per group of commands; each prints docker's output.

pub mod archive;
pub mod df;
pub mod images;
pub mod login;
pub mod progress;
pub mod registry;
pub mod run_flags;
