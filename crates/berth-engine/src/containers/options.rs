//! What `berth create` / `berth run` ask for, as parsed by the CLI: the pure part is a
//! [`RunOptions`]; what needs the host or the state database (volumes, devices, `container:`
//! namespaces, the runtime) stays as the user wrote it and is resolved by [`super::create`].

use crate::spec::parse::{DeviceSpec, SecurityOpt};
use crate::spec::parse_mount::VolumeSpec;
use crate::spec::RunOptions;

/// Everything `berth create` needs.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// The image as the user named it.
    pub image: String,
    /// `--platform`.
    pub platform: Option<String>,
    /// `--name`; a generated name when `None`.
    pub name: Option<String>,
    /// Everything the spec generator takes directly (env, user, workdir, tty, limits, ...).
    /// `binds`, `devices`, the throttles and the namespace modes are filled in by `create`
    /// from the fields below; leave them empty.
    pub run: RunOptions,
    /// `-v` and `--mount type=bind|volume`, in the order given.
    pub volumes: Vec<VolumeSpec>,
    /// `--device`.
    pub devices: Vec<DeviceSpec>,
    /// `--device-read-bps PATH:RATE` as (path, bytes per second); likewise below.
    pub device_read_bps: Vec<(String, u64)>,
    /// `--device-write-bps`.
    pub device_write_bps: Vec<(String, u64)>,
    /// `--device-read-iops`.
    pub device_read_iops: Vec<(String, u64)>,
    /// `--device-write-iops`.
    pub device_write_iops: Vec<(String, u64)>,
    /// `--security-opt` (seccomp profiles are loaded by `create`).
    pub security_opts: Vec<SecurityOpt>,
    /// `--network` (`bridge` when empty), `--ipc`, `--pid`, `--uts`: `host`, `private`,
    /// `none`, `container:NAME`, or a network name.
    pub network: String,
    /// `--ipc`.
    pub ipc: String,
    /// `--pid`.
    pub pid: String,
    /// `--uts`.
    pub uts: String,
    /// Network flags carried for the network engine (issue 6).
    pub net: NetworkFlags,
    /// `--userns`: host, auto[:size=N], keep-id (see [`super::userns`]).
    pub userns: Option<String>,
    /// `--uidmap CONTAINER:HOST:SIZE`, repeatable.
    pub uidmap: Vec<String>,
    /// `--gidmap CONTAINER:HOST:SIZE`, repeatable.
    pub gidmap: Vec<String>,
    /// `--group-add`, resolved in the image when the spec is made.
    pub group_add: Vec<String>,
    /// `--rm`.
    pub auto_remove: bool,
    /// `--init` (`Some(true)`), `--no-init` (`Some(false)`); on by default.
    pub init: Option<bool>,
    /// `--stop-timeout` in seconds (docker's default 10).
    pub stop_timeout: Option<i64>,
    /// `--runtime`: `berth-runtime` (default), `runc`, `crun`, or a path.
    pub runtime: Option<String>,
    /// `--storage-opt` (`size=64m`).
    pub storage_opts: Vec<String>,
}

/// `-p`, `-P`, `--dns`, `--add-host`, ... as given; the network engine gives them meaning.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct NetworkFlags {
    /// `-p`.
    pub publish: Vec<String>,
    /// `-P`.
    pub publish_all: bool,
    /// `--expose PORT[/PROTO]` (a range `8000-8010` too), added to the image's.
    #[serde(default)]
    pub expose: Vec<String>,
    /// `--dns`.
    pub dns: Vec<String>,
    /// `--dns-search`.
    pub dns_search: Vec<String>,
    /// `--dns-option`.
    pub dns_options: Vec<String>,
    /// `--add-host`.
    pub add_hosts: Vec<String>,
    /// `--network-alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--ip6`.
    pub ip6: Option<String>,
    /// `--mac-address`.
    pub mac_address: Option<String>,
}
