//! What the engine keeps beside a container's spec (`ContainerConfig`, fixed at create) and
//! what it learns while the container runs (`Details`), stored as JSON in its record.

use serde::{Deserialize, Serialize};

use super::options::NetworkFlags;
use crate::state::Container;

/// Fixed at `create`: what `start`, `stop`, `rm` and `inspect` need that the OCI spec does
/// not say.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ContainerConfig {
    /// The image's or `--entrypoint`'s entrypoint.
    pub entrypoint: Vec<String>,
    /// The command after it.
    pub cmd: Vec<String>,
    /// `-i`.
    pub stdin_open: bool,
    /// `-t`.
    pub tty: bool,
    /// The signal `stop` sends first.
    pub stop_signal: String,
    /// Seconds `stop` waits before SIGKILL.
    pub stop_timeout: i64,
    /// `--rm`.
    pub auto_remove: bool,
    /// Whether berth-init is the container's PID 1.
    pub init: bool,
    /// `--storage-opt`.
    pub storage_opts: Vec<String>,
    /// The container's hostname (its short ID unless `--hostname`).
    #[serde(default)]
    pub hostname: String,
    /// `container:NAME` namespace modes: kind (`net`, `ipc`, `pid`, `uts`) → container ID.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub joins: std::collections::BTreeMap<String, String>,
    /// Whether `start` makes the container's network namespace (pinned in the run root).
    #[serde(default)]
    pub own_netns: bool,
    /// `--network` as given (`bridge` by default).
    pub network_mode: String,
    /// The other network flags, for the network engine.
    pub net: NetworkFlags,
    /// Volumes this container created or uses.
    pub volumes: Vec<VolumeUse>,
    /// Bind mounts as `SOURCE:DEST[:ro]`, docker's `HostConfig.Binds`.
    pub binds: Vec<String>,
    /// The image's exposed ports (`80/tcp`).
    pub exposed_ports: Vec<String>,
}

/// A named or anonymous volume mounted into a container.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct VolumeUse {
    /// The volume's name (64 hex digits for an anonymous one).
    pub name: String,
    /// Where it is mounted.
    pub destination: String,
    /// Created for this container only (`rm -v` removes it).
    pub anonymous: bool,
    /// Read-only.
    pub read_only: bool,
}

/// Learned while the container runs; reset by `start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Details {
    /// Set while `create` is still making the container (a crash leaves it set).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub incomplete: bool,
    /// When `stop` sent the stop signal (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_requested_at: Option<String>,
    /// Whether `stop` had to send SIGKILL after its timeout.
    #[serde(default)]
    pub stop_escalated: bool,
    /// From the stop signal to the exit, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_duration_ms: Option<u64>,
    /// How many processes the kernel's OOM killer killed in the container's cgroup.
    #[serde(default)]
    pub oom_kills: u64,
    /// The processes it killed, as the kernel log names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub oom_victims: Vec<OomVictim>,
    /// Why the last start or exit went wrong (docker's `State.Error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A process the OOM killer killed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OomVictim {
    /// Its host pid.
    pub pid: i32,
    /// Its command name.
    pub comm: String,
}

/// The config of `c` (defaults for a record written before there was one).
pub fn config_of(c: &Container) -> ContainerConfig {
    serde_json::from_value(c.config.clone()).unwrap_or_default()
}

/// The details of `c`.
pub fn details_of(c: &Container) -> Details {
    serde_json::from_value(c.details.clone()).unwrap_or_default()
}

/// Store `details` in `c`.
pub fn set_details(c: &mut Container, details: &Details) {
    c.details = serde_json::to_value(details).unwrap_or_default();
}
