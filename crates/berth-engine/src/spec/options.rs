//! `RunOptions`: the parsed `berth run` flags that shape a container's OCI spec.

use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::LinuxDeviceType;

use super::seccomp::Profile;

/// The flags of `berth run` that affect the spec, already parsed (see `parse`) and with host
/// paths and devices resolved by the caller (this module does no I/O on the host).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--entrypoint`: `Some(vec![])` for `--entrypoint ""`. Setting it drops the image's Cmd.
    pub entrypoint: Option<Vec<String>>,
    /// The arguments after the image name; empty means the image's Cmd.
    pub cmd: Vec<String>,
    /// `-e` and `--env-file`, in order: `K=V` sets, a bare `K` unsets (docker's rule).
    pub env: Vec<String>,
    /// `-w`.
    pub workdir: Option<String>,
    /// `-u`: uid, uid:gid, name, name:group (resolved in the image).
    pub user: Option<String>,
    /// `-h`; also `HOSTNAME` in the environment. The caller picks the default (short ID).
    pub hostname: Option<String>,
    /// `-t`.
    pub tty: bool,
    /// `-i`: kept for the caller (stdin wiring); it does not change the spec.
    pub stdin_open: bool,
    /// `--read-only`.
    pub read_only: bool,
    /// `--tmpfs` and `--mount type=tmpfs`.
    pub tmpfs: Vec<TmpfsMount>,
    /// `-v` / `--mount` binds and volumes, sources already resolved to host paths.
    pub binds: Vec<BindMount>,
    /// Cgroup limits.
    pub resources: Resources,
    /// `--ulimit`.
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl`.
    pub sysctls: BTreeMap<String, String>,
    /// `--device`, resolved against the host's device nodes.
    pub devices: Vec<DeviceMapping>,
    /// `--cap-add` (with or without `CAP_`, or `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    pub privileged: bool,
    /// The capabilities this host lets the engine grant (its bounding set, read by the
    /// caller); `None`: every capability. `--privileged` and `--cap-add ALL` get these.
    pub grantable: Option<Vec<String>>,
    /// The host's device nodes, given to a `--privileged` container.
    pub host_devices: Vec<HostDevice>,
    /// `--security-opt no-new-privileges`.
    pub no_new_privileges: bool,
    /// `--security-opt mask=`: paths masked besides docker's.
    pub mask: Vec<String>,
    /// `--security-opt unmask=`: default masked or read-only paths left alone (`ALL`, a
    /// path, or `DIR/*`).
    pub unmask: Vec<String>,
    /// `--group-add`: more supplementary groups, names resolved in the image.
    pub group_add: Vec<String>,
    /// `--security-opt seccomp=unconfined`.
    pub seccomp_unconfined: bool,
    /// `--security-opt seccomp=FILE`, decoded by the caller; `None` is docker's default
    /// profile. Either is converted for the container's final capability set.
    pub seccomp_profile: Option<Profile>,
    /// `--init`: the init binary on the host and where it appears in the container.
    pub init: Option<InitBinary>,
    /// `--oom-score-adj`.
    pub oom_score_adj: Option<i32>,
    /// `--stop-signal`.
    pub stop_signal: Option<String>,
    /// `--label`, merged over the image's labels.
    pub labels: BTreeMap<String, String>,
    /// The cgroup path (from `--cgroup-parent` and the container ID).
    pub cgroups_path: Option<PathBuf>,
    /// `--network`: a new netns by default, `host` for none.
    pub network: NamespaceMode,
    /// `--ipc`.
    pub ipc: NamespaceMode,
    /// `--pid`.
    pub pid: NamespaceMode,
    /// `--uts`.
    pub uts: NamespaceMode,
    /// Whether the host runs cgroup v2 (docker: private cgroupns on v2, host on v1).
    pub cgroup_v2: bool,
    /// `--userns` other than host, `--uidmap`/`--gidmap`: a private user namespace with
    /// these maps.
    pub id_map: Option<berth_storage::IdMap>,
}

/// A namespace: new (the default), the host's, or joined by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NamespaceMode {
    /// A new namespace.
    #[default]
    Private,
    /// The host's namespace (none in the spec).
    Host,
    /// Join the namespace at this path (`container:ID` resolved by the caller).
    Path(PathBuf),
}

/// A tmpfs mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Where, inside the container.
    pub destination: String,
    /// Mount options as given (`rw,size=64m`), possibly empty.
    pub options: Vec<String>,
}

/// Mount propagation of a bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// `shared`
    Shared,
    /// `rshared`
    RShared,
    /// `slave`
    Slave,
    /// `rslave`
    RSlave,
    /// `private`
    Private,
    /// `rprivate`, docker's default.
    #[default]
    RPrivate,
}

impl Propagation {
    /// The mount option name.
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Shared => "shared",
            Propagation::RShared => "rshared",
            Propagation::Slave => "slave",
            Propagation::RSlave => "rslave",
            Propagation::Private => "private",
            Propagation::RPrivate => "rprivate",
        }
    }

    /// Parse a mount option name.
    pub fn from_name(name: &str) -> Option<Propagation> {
        Some(match name {
            "shared" => Propagation::Shared,
            "rshared" => Propagation::RShared,
            "slave" => Propagation::Slave,
            "rslave" => Propagation::RSlave,
            "private" => Propagation::Private,
            "rprivate" => Propagation::RPrivate,
            _ => return None,
        })
    }
}

/// A bind mount with its host source resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path.
    pub source: PathBuf,
    /// Container path.
    pub destination: String,
    /// `ro`.
    pub read_only: bool,
    /// Propagation: rprivate by default for binds; `None` for volumes, for which docker
    /// writes no propagation option.
    pub propagation: Option<Propagation>,
}

/// A `--ulimit`. `-1` (unlimited) is kept as `u64::MAX`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// Lower-case name: `nofile`.
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// A device node on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostDevice {
    /// Path on the host (`/dev/fuse`).
    pub path: PathBuf,
    /// Character or block.
    pub kind: LinuxDeviceType,
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Permission bits.
    pub file_mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
}

/// `--device`, with the host node looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceMapping {
    /// The host node.
    pub host: HostDevice,
    /// Path in the container.
    pub container_path: String,
    /// Cgroup permissions: a subset of `rwm`.
    pub permissions: String,
}

/// `--init`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitBinary {
    /// The binary on the host (bind-mounted read-only).
    pub host_path: PathBuf,
    /// Where it appears in the container: `/sbin/berth-init`, `/dev/init`.
    pub container_path: String,
}

/// A throttled block device (`--device-read-bps /dev/sda:1mb`), major:minor looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleDevice {
    /// Major number.
    pub major: i64,
    /// Minor number.
    pub minor: i64,
    /// Bytes or operations per second.
    pub rate: u64,
}

/// Cgroup resource flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// `-m`, bytes.
    pub memory: Option<i64>,
    /// `--memory-swap`, bytes of memory + swap; -1 unlimited.
    pub memory_swap: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<i64>,
    /// `--memory-swappiness`, 0..=100.
    pub memory_swappiness: Option<i64>,
    /// `--oom-kill-disable`.
    pub oom_kill_disable: bool,
    /// `--cpus`, in billionths of a CPU.
    pub nano_cpus: Option<i64>,
    /// `--cpu-shares`.
    pub cpu_shares: Option<u64>,
    /// `--cpu-period`, microseconds.
    pub cpu_period: Option<u64>,
    /// `--cpu-quota`, microseconds.
    pub cpu_quota: Option<i64>,
    /// `--cpuset-cpus`.
    pub cpuset_cpus: Option<String>,
    /// `--cpuset-mems`.
    pub cpuset_mems: Option<String>,
    /// `--pids-limit`; zero or negative is unlimited.
    pub pids_limit: Option<i64>,
    /// `--blkio-weight`, 10..=1000.
    pub blkio_weight: Option<u16>,
    /// `--device-read-bps`.
    pub device_read_bps: Vec<ThrottleDevice>,
    /// `--device-write-bps`.
    pub device_write_bps: Vec<ThrottleDevice>,
    /// `--device-read-iops`.
    pub device_read_iops: Vec<ThrottleDevice>,
    /// `--device-write-iops`.
    pub device_write_iops: Vec<ThrottleDevice>,
}
