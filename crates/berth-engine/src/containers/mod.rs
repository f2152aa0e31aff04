//! Containers: create, start, stop, kill, remove, exec, and the exit cleanup that
//! berth-monitor runs (see docs/monitor.md and the README's "Containers").

mod options;

pub use options::{CreateOptions, NetworkFlags};
