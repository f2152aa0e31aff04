//! One module per group of commands; each prints docker's output.

pub mod archive;
pub mod containers;
pub mod df;
pub mod images;
pub mod info;
pub mod login;
pub mod networks;
pub mod observe;
pub mod progress;
pub mod ps;
pub mod registry;
pub mod run_flags;
