//! The flags of `berth run` / `berth create`, in docker's syntax, and their translation into
//! the engine's [`CreateOptions`].
//!
//! [`RunFlags`] is flattened into the `run` and `create` commands. It defines `-h` for
//! `--hostname`, as docker does, so those commands must set `disable_help_flag = true` and
//! define their own long `--help` (`#[arg(long, action = ArgAction::Help)]`).
//!
//! Values with a docker syntax are kept as strings by clap and parsed by [`create_options`]
//! with the engine's parsers (`berth_engine::spec::parse*`), so that a bad value is reported
//! with docker's words: `invalid argument "1x" for "-m, --memory" flag: invalid size: '1x'`.
//! What needs the host or the state database (volumes, devices, namespaces of other
//! containers, ranges the daemon checks) is left to the engine.

// Until cli.rs flattens RunFlags into `run` / `create`.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::num::{IntErrorKind, ParseIntError};
use std::path::{Path, PathBuf};

use berth_engine::containers::{CreateOptions, NetworkFlags};
use berth_engine::spec::parse::{self, ParseError, SecurityOpt};
use berth_engine::spec::parse_mount::{self, MountParseError, MountSpec};
use berth_engine::spec::{ResourceError, Resources, RunOptions};
use clap::{Args, ValueEnum};

#[cfg(test)]
mod tests;

/// Every docker `run` / `create` flag berth knows. Repeatable flags are `Vec`s, in the order
/// given. docker's boolean flags also take `--flag=false`.
#[derive(Debug, Args, Clone, Default)]
pub struct RunFlags {
    /// Run container in background and print container ID
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long, value_name = "string")]
    pub name: Option<String>,

    /// Set environment variables
    #[arg(short, long = "env", value_name = "list")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file", value_name = "list")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container
    #[arg(short, long, value_name = "string")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long, value_name = "string")]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long, value_name = "string")]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long, value_name = "string")]
    pub hostname: Option<String>,

    /// Bind mount a volume
    #[arg(short, long = "volume", value_name = "list")]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container
    #[arg(long, value_name = "mount")]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long, value_name = "list")]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: bool,
    /// Run no init inside the container (the default is to run one)
    #[arg(long = "no-init", conflicts_with = "init")]
    pub no_init: bool,
    /// Signal to stop the container
    #[arg(long = "stop-signal", value_name = "string")]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(
        long = "stop-timeout",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub stop_timeout: Option<String>,

    /// Memory limit
    #[arg(short, long, value_name = "bytes")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(
        long = "memory-swap",
        value_name = "bytes",
        allow_negative_numbers = true
    )]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation", value_name = "bytes")]
    pub memory_reservation: Option<String>,
    /// Tune container memory swappiness (0 to 100) (default -1)
    #[arg(
        long = "memory-swappiness",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub memory_swappiness: Option<String>,
    /// Disable OOM Killer
    #[arg(long = "oom-kill-disable", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub oom_kill_disable: bool,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(
        long = "oom-score-adj",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub oom_score_adj: Option<String>,
    /// Number of CPUs
    #[arg(long, value_name = "decimal")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(
        short = 'c',
        long = "cpu-shares",
        value_name = "int",
        allow_negative_numbers = true
    )]
    pub cpu_shares: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period", value_name = "int", allow_negative_numbers = true)]
    pub cpu_period: Option<String>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", value_name = "int", allow_negative_numbers = true)]
    pub cpu_quota: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus", value_name = "string")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems", value_name = "string")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", value_name = "int", allow_negative_numbers = true)]
    pub pids_limit: Option<String>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight", value_name = "uint16")]
    pub blkio_weight: Option<String>,
    /// Limit read rate (bytes per second) from a device
    #[arg(long = "device-read-bps", value_name = "list")]
    pub device_read_bps: Vec<String>,
    /// Limit write rate (bytes per second) to a device
    #[arg(long = "device-write-bps", value_name = "list")]
    pub device_write_bps: Vec<String>,
    /// Limit read rate (IO per second) from a device
    #[arg(long = "device-read-iops", value_name = "list")]
    pub device_read_iops: Vec<String>,
    /// Limit write rate (IO per second) to a device
    #[arg(long = "device-write-iops", value_name = "list")]
    pub device_write_iops: Vec<String>,
    /// Ulimit options
    #[arg(long, value_name = "ulimit")]
    pub ulimit: Vec<String>,
    /// Sysctl options
    #[arg(long, value_name = "map")]
    pub sysctl: Vec<String>,

    /// Add a host device to the container
    #[arg(long, value_name = "list")]
    pub device: Vec<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add", value_name = "list")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop", value_name = "list")]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub privileged: bool,
    /// Security Options
    #[arg(long = "security-opt", value_name = "list")]
    pub security_opt: Vec<String>,
    /// User namespace to use
    #[arg(long, value_name = "string")]
    pub userns: Option<String>,
    /// UID map for the user namespace (CONTAINER:HOST:SIZE)
    #[arg(long, value_name = "string")]
    pub uidmap: Vec<String>,
    /// GID map for the user namespace (CONTAINER:HOST:SIZE)
    #[arg(long, value_name = "string")]
    pub gidmap: Vec<String>,
    /// Add additional groups to join
    #[arg(long = "group-add", value_name = "list")]
    pub group_add: Vec<String>,

    /// Connect a container to a network
    #[arg(long, visible_alias = "net", value_name = "network")]
    pub network: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias", value_name = "list")]
    pub network_alias: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long, value_name = "string")]
    pub ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long, value_name = "string")]
    pub ip6: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address", value_name = "string")]
    pub mac_address: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long, value_name = "list")]
    pub publish: Vec<String>,
    /// Expose a port or a range of ports
    #[arg(long, value_name = "list")]
    pub expose: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub publish_all: bool,
    /// Set custom DNS servers
    #[arg(long, value_name = "list")]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search", value_name = "list")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt", value_name = "list")]
    pub dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host", value_name = "list")]
    pub add_host: Vec<String>,

    /// Storage driver options for the container
    #[arg(long = "storage-opt", value_name = "list")]
    pub storage_opt: Vec<String>,
    /// Runtime to use for this container
    #[arg(long, value_name = "string")]
    pub runtime: Option<String>,
    /// Set meta data on a container
    #[arg(short, long, value_name = "list")]
    pub label: Vec<String>,
    /// Read in a line delimited file of labels
    #[arg(long = "label-file", value_name = "list")]
    pub label_file: Vec<PathBuf>,
    /// IPC mode to use
    #[arg(long, value_name = "string")]
    pub ipc: Option<String>,
    /// PID namespace to use
    #[arg(long, value_name = "string")]
    pub pid: Option<String>,
    /// UTS namespace to use
    #[arg(long, value_name = "string")]
    pub uts: Option<String>,
    /// Cgroup namespace to use (host|private)
    #[arg(long, value_enum, value_name = "string")]
    pub cgroupns: Option<CgroupnsMode>,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub platform: Option<String>,
    /// Pull image before running
    #[arg(long, value_enum, value_name = "string", default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,
    /// Restart policy to apply when a container exits (default "no")
    #[arg(long, value_name = "string")]
    pub restart: Option<String>,
}

/// `--pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum PullPolicy {
    /// Pull only when the image is not in the store (docker's default).
    #[default]
    Missing,
    /// Pull every time.
    Always,
    /// Never pull: fail when the image is not in the store.
    Never,
}

/// `--cgroupns`. Not carried in [`CreateOptions`]: the engine picks docker's default
/// (private on cgroup v2, host on v1) from `RunOptions::cgroup_v2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CgroupnsMode {
    /// A new cgroup namespace.
    Private,
    /// The host's cgroup namespace.
    Host,
}

/// `--restart`, validated like docker's CLI and daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    /// `no`: never restart.
    No,
    /// `always`.
    Always,
    /// `unless-stopped`.
    UnlessStopped,
    /// `on-failure[:N]`; `max_retries` 0 is no limit (docker's MaximumRetryCount).
    OnFailure {
        /// `N`.
        max_retries: u32,
    },
}

impl RestartPolicy {
    /// docker's name for the policy.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
            RestartPolicy::OnFailure { .. } => "on-failure",
        }
    }
}

/// A Go `strconv` number error, worded like Go's (docker's flags are parsed by pflag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumberError {
    /// `ParseInt` or `ParseUint`.
    pub func: &'static str,
    /// The text.
    pub value: String,
    /// `true` for "value out of range", `false` for "invalid syntax".
    pub out_of_range: bool,
}

impl fmt::Display for NumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.out_of_range {
            "value out of range"
        } else {
            "invalid syntax"
        };
        write!(f, "strconv.{}: parsing {:?}: {why}", self.func, self.value)
    }
}

impl std::error::Error for NumberError {}

/// A run flag with a value docker would reject; the message is docker's.
///
/// Errors docker reports while parsing the flag read `invalid argument "V" for "F" flag: WHY`;
/// the ones docker reports later (volumes, devices, security options, files, restart
/// policy) are the bare message.
#[derive(Debug)]
pub enum FlagError {
    /// `-m`, `--memory-swap`, `--memory-reservation`.
    Memory {
        /// The flag, as docker names it in errors (`-m, --memory`).
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `--cpus`.
    Cpus {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// An integer flag: `-c`, `--cpu-period`, `--cpu-quota`, `--pids-limit`, `--blkio-weight`,
    /// `--memory-swappiness`, `--oom-score-adj`, `--stop-timeout`.
    Number {
        /// The flag.
        flag: &'static str,
        /// Why (the value is in it).
        source: NumberError,
    },
    /// A resource value the daemon refuses, caught early (`--memory-swappiness 101`,
    /// a negative `--cpu-period`).
    Resource {
        /// The flag.
        flag: &'static str,
        /// Why.
        source: ResourceError,
    },
    /// A negative `--cpu-shares` (the daemon's `shares: invalid argument`).
    CpuShares(i64),
    /// `--ulimit`.
    Ulimit {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `--sysctl`.
    Sysctl {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `-e`.
    Env {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `--env-file` / `--label-file` could not be read.
    ReadFile {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bad line in an `--env-file` / `--label-file`.
    FileFormat {
        /// The flag.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: ParseError,
    },
    /// `-l`: an empty name, or whitespace in the name.
    Label {
        /// The value given.
        value: String,
        /// docker's reason.
        reason: String,
    },
    /// `--device`.
    Device {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `--device-read-bps`, `--device-write-bps`, `--device-read-iops`, `--device-write-iops`.
    Throttle {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `--security-opt`.
    SecurityOpt {
        /// The value given.
        value: String,
        /// Why.
        source: ParseError,
    },
    /// `-v`.
    Volume {
        /// The value given.
        value: String,
        /// Why.
        source: MountParseError,
    },
    /// `--mount`.
    Mount {
        /// The value given.
        value: String,
        /// Why.
        source: MountParseError,
    },
    /// `--tmpfs`.
    Tmpfs {
        /// The value given.
        value: String,
        /// Why.
        source: MountParseError,
    },
    /// `--restart` with a bad policy.
    Restart {
        /// The value given.
        value: String,
        /// docker's reason.
        reason: String,
    },
    /// `--restart` (other than `no`) with `--rm`.
    RestartWithRm,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag_error =
            |f: &mut fmt::Formatter<'_>, flag: &str, value: &str, why: &dyn fmt::Display| {
                write!(f, "invalid argument {value:?} for {flag:?} flag: {why}")
            };
        match self {
            FlagError::Memory {
                flag,
                value,
                source,
            } => flag_error(f, flag, value, source),
            FlagError::Cpus { value, source } => flag_error(f, "--cpus", value, source),
            FlagError::Number { flag, source } => flag_error(f, flag, &source.value, source),
            FlagError::Resource { source, .. } => write!(f, "{source}"),
            FlagError::CpuShares(_) => write!(f, "shares: invalid argument"),
            FlagError::Ulimit { value, source } => flag_error(f, "--ulimit", value, source),
            FlagError::Sysctl { value, source } => flag_error(f, "--sysctl", value, source),
            FlagError::Env { value, source } => flag_error(f, "-e, --env", value, source),
            FlagError::ReadFile { path, source, .. } => {
                write!(f, "open {}: {}", path.display(), io_reason(source))
            }
            FlagError::FileFormat { source, .. } => write!(f, "{source}"),
            FlagError::Label { value, reason } => flag_error(f, "-l, --label", value, reason),
            FlagError::Device { source, .. } => write!(f, "{source}"),
            FlagError::Throttle {
                flag,
                value,
                source,
            } => flag_error(f, flag, value, source),
            FlagError::SecurityOpt { source, .. } => write!(f, "{source}"),
            FlagError::Volume { source, .. } => write!(f, "{source}"),
            FlagError::Mount { value, source } => flag_error(f, "--mount", value, source),
            FlagError::Tmpfs { source, .. } => write!(f, "{source}"),
            FlagError::Restart { reason, .. } => write!(f, "{reason}"),
            FlagError::RestartWithRm => {
                write!(
                    f,
                    "conflicting options: cannot specify both --restart and --rm"
                )
            }
        }
    }
}

impl std::error::Error for FlagError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlagError::Memory { source, .. }
            | FlagError::Cpus { source, .. }
            | FlagError::Ulimit { source, .. }
            | FlagError::Sysctl { source, .. }
            | FlagError::Env { source, .. }
            | FlagError::FileFormat { source, .. }
            | FlagError::Device { source, .. }
            | FlagError::Throttle { source, .. }
            | FlagError::SecurityOpt { source, .. } => Some(source),
            FlagError::Number { source, .. } => Some(source),
            FlagError::Resource { source, .. } => Some(source),
            FlagError::ReadFile { source, .. } => Some(source),
            FlagError::Volume { source, .. }
            | FlagError::Mount { source, .. }
            | FlagError::Tmpfs { source, .. } => Some(source),
            FlagError::CpuShares(_)
            | FlagError::Label { .. }
            | FlagError::Restart { .. }
            | FlagError::RestartWithRm => None,
        }
    }
}

/// Go's wording of the common I/O errors (`no such file or directory`), else Rust's.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

impl RunFlags {
    /// `--restart`, validated (docker's CLI and daemon checks): `None` when not given.
    pub fn restart_policy(&self) -> Result<Option<RestartPolicy>, FlagError> {
        let Some(value) = self.restart.as_deref().filter(|v| !v.is_empty()) else {
            return Ok(None);
        };
        let bad = |reason: &str| FlagError::Restart {
            value: value.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, count) = match value.split_once(':') {
            Some(("", _)) => {
                return Err(bad(
                    "invalid restart policy format: no policy provided before colon",
                ))
            }
            Some((name, "")) => (name, 0),
            Some((name, count)) => (
                name,
                count.parse::<i64>().map_err(|_| {
                    bad("invalid restart policy format: maximum retry count must be an integer")
                })?,
            ),
            None => (value, 0),
        };
        let policy = match name {
            "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => {
                let max_retries = u32::try_from(count).map_err(|_| {
                    bad("invalid restart policy: maximum retry count cannot be negative")
                })?;
                return Ok(Some(RestartPolicy::OnFailure { max_retries }));
            }
            other => {
                return Err(bad(&format!(
                    "invalid restart policy: unknown policy '{other}'; use one of 'no', \
                     'always', 'on-failure', or 'unless-stopped'"
                )))
            }
        };
        if count != 0 {
            return Err(bad(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'",
            ));
        }
        Ok(Some(policy))
    }

    /// `--init` / `--no-init`: `None` when neither is given (the engine's default: on).
    pub fn init_choice(&self) -> Option<bool> {
        if self.no_init {
            Some(false)
        } else if self.init {
            Some(true)
        } else {
            None
        }
    }
}

/// The engine's [`CreateOptions`] for `run` / `create` with these flags, `image` and the
/// arguments after it. `-e K` takes K from this process's environment.
///
/// Not in `CreateOptions`, read from the flags themselves: `-d`, `--pull` (`flags.pull`),
/// `--cgroupns` (`flags.cgroupns`), `--restart` ([`RunFlags::restart_policy`], which this
/// function validates too, with its conflict with `--rm`).
pub fn create_options(
    flags: &RunFlags,
    image: String,
    command: Vec<String>,
) -> Result<CreateOptions, FlagError> {
    create_options_with(flags, image, command, &|key| std::env::var(key).ok())
}

/// [`create_options`] with the environment lookup of `-e K` / `--env-file` given.
fn create_options_with(
    flags: &RunFlags,
    image: String,
    command: Vec<String>,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<CreateOptions, FlagError> {
    if let Some(policy) = flags.restart_policy()? {
        if flags.rm && policy != RestartPolicy::No {
            return Err(FlagError::RestartWithRm);
        }
    }
    let mut run = RunOptions {
        entrypoint: flags.entrypoint.as_ref().map(|e| match e.as_str() {
            "" => Vec::new(),
            e => vec![e.to_owned()],
        }),
        cmd: command,
        env: env(flags, lookup)?,
        workdir: flags.workdir.clone(),
        user: flags.user.clone(),
        hostname: flags.hostname.clone(),
        tty: flags.tty,
        stdin_open: flags.interactive,
        read_only: flags.read_only,
        resources: resources(flags)?,
        cap_add: flags.cap_add.clone(),
        cap_drop: flags.cap_drop.clone(),
        privileged: flags.privileged,
        stop_signal: flags.stop_signal.clone(),
        labels: labels(flags)?,
        ..RunOptions::default()
    };
    if let Some(adj) = &flags.oom_score_adj {
        let adj = int(adj, "--oom-score-adj")?;
        run.oom_score_adj = Some(i32::try_from(adj).map_err(|_| FlagError::Number {
            flag: "--oom-score-adj",
            source: NumberError {
                func: "ParseInt",
                value: flags.oom_score_adj.clone().unwrap_or_default(),
                out_of_range: true,
            },
        })?);
    }
    for value in &flags.ulimit {
        run.ulimits
            .push(parse::ulimit(value).map_err(|source| FlagError::Ulimit {
                value: value.clone(),
                source,
            })?);
    }
    for value in &flags.sysctl {
        let (key, v) = parse::sysctl(value).map_err(|source| FlagError::Sysctl {
            value: value.clone(),
            source,
        })?;
        run.sysctls.insert(key, v);
    }
    for value in &flags.tmpfs {
        run.tmpfs.push(
            parse_mount::tmpfs(value).map_err(|source| FlagError::Tmpfs {
                value: value.clone(),
                source,
            })?,
        );
    }
    let mut volumes = Vec::new();
    for value in &flags.volume {
        volumes.push(
            parse_mount::volume(value).map_err(|source| FlagError::Volume {
                value: value.clone(),
                source,
            })?,
        );
    }
    for value in &flags.mount {
        match parse_mount::mount(value).map_err(|source| FlagError::Mount {
            value: value.clone(),
            source,
        })? {
            MountSpec::Volume(v) => volumes.push(v),
            MountSpec::Tmpfs(t) => run.tmpfs.push(t),
        }
    }
    let mut security_opts = Vec::new();
    for value in &flags.security_opt {
        let opt = parse::security_opt(value).map_err(|source| FlagError::SecurityOpt {
            value: value.clone(),
            source,
        })?;
        match &opt {
            SecurityOpt::NoNewPrivileges(on) => run.no_new_privileges = *on,
            SecurityOpt::SeccompUnconfined => run.seccomp_unconfined = true,
            SecurityOpt::SeccompProfile(_)
            | SecurityOpt::Mask(_)
            | SecurityOpt::Unmask(_)
            | SecurityOpt::Other(_) => {}
        }
        security_opts.push(opt);
    }
    let devices = flags
        .device
        .iter()
        .map(|value| {
            parse::device(value).map_err(|source| FlagError::Device {
                value: value.clone(),
                source,
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(CreateOptions {
        image,
        platform: flags.platform.clone(),
        name: flags.name.clone(),
        run,
        volumes,
        devices,
        device_read_bps: throttles(
            &flags.device_read_bps,
            "--device-read-bps",
            parse::throttle_bps,
        )?,
        device_write_bps: throttles(
            &flags.device_write_bps,
            "--device-write-bps",
            parse::throttle_bps,
        )?,
        device_read_iops: throttles(
            &flags.device_read_iops,
            "--device-read-iops",
            parse::throttle_iops,
        )?,
        device_write_iops: throttles(
            &flags.device_write_iops,
            "--device-write-iops",
            parse::throttle_iops,
        )?,
        security_opts,
        network: flags.network.clone().unwrap_or_default(),
        ipc: flags.ipc.clone().unwrap_or_default(),
        pid: flags.pid.clone().unwrap_or_default(),
        uts: flags.uts.clone().unwrap_or_default(),
        net: NetworkFlags {
            publish: flags.publish.clone(),
            publish_all: flags.publish_all,
            expose: flags.expose.clone(),
            dns: flags.dns.clone(),
            dns_search: flags.dns_search.clone(),
            dns_options: flags.dns_option.clone(),
            add_hosts: flags.add_host.clone(),
            aliases: flags.network_alias.clone(),
            ip: flags.ip.clone(),
            ip6: flags.ip6.clone(),
            mac_address: flags.mac_address.clone(),
        },
        userns: flags.userns.clone(),
        uidmap: flags.uidmap.clone(),
        gidmap: flags.gidmap.clone(),
        group_add: flags.group_add.clone(),
        auto_remove: flags.rm,
        init: flags.init_choice(),
        stop_timeout: flags
            .stop_timeout
            .as_deref()
            .map(|t| int(t, "--stop-timeout"))
            .transpose()?,
        runtime: flags.runtime.clone(),
        storage_opts: flags.storage_opt.clone(),
    })
}

/// `--env-file` entries first, then `-e` (docker's order: `-e` overrides the files).
fn env(
    flags: &RunFlags,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let mut env = Vec::new();
    for path in &flags.env_file {
        env.extend(read_kv_file("--env-file", path, lookup)?);
    }
    for value in &flags.env {
        env.push(parse::env(value, lookup).map_err(|source| FlagError::Env {
            value: value.clone(),
            source,
        })?);
    }
    Ok(env)
}

fn read_kv_file(
    flag: &'static str,
    path: &Path,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, FlagError> {
    let text = std::fs::read_to_string(path).map_err(|source| FlagError::ReadFile {
        flag,
        path: path.to_owned(),
        source,
    })?;
    parse::env_file(&text, lookup).map_err(|source| FlagError::FileFormat {
        flag,
        path: path.to_owned(),
        source,
    })
}

/// `--label-file` lines first, then `-l`; a later key wins; `KEY` alone is an empty value.
fn labels(flags: &RunFlags) -> Result<BTreeMap<String, String>, FlagError> {
    let mut entries = Vec::new();
    for path in &flags.label_file {
        // docker reads label files like env files, but a bare KEY is not looked up.
        entries.extend(read_kv_file("--label-file", path, &|_| None)?);
    }
    for value in &flags.label {
        let key = value
            .split_once('=')
            .map_or(value.as_str(), |(k, _)| k)
            .trim();
        let reason = if key.is_empty() {
            Some(format!("invalid label '{value}': empty name"))
        } else if key.contains(char::is_whitespace) {
            Some(format!("label '{key}' contains whitespaces"))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(FlagError::Label {
                value: value.clone(),
                reason,
            });
        }
        entries.push(value.clone());
    }
    Ok(entries
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (e, String::new()),
        })
        .collect())
}

fn resources(flags: &RunFlags) -> Result<Resources, FlagError> {
    let size = |value: &Option<String>,
                flag: &'static str,
                parser: fn(&str) -> Result<i64, ParseError>| {
        value
            .as_deref()
            .map(|v| {
                parser(v).map_err(|source| FlagError::Memory {
                    flag,
                    value: v.to_owned(),
                    source,
                })
            })
            .transpose()
    };
    let int_flag = |value: &Option<String>, flag: &'static str| {
        value.as_deref().map(|v| int(v, flag)).transpose()
    };
    let memory_swappiness = int_flag(&flags.memory_swappiness, "--memory-swappiness")?;
    if let Some(s) = memory_swappiness.filter(|s| !(-1..=100).contains(s)) {
        return Err(FlagError::Resource {
            flag: "--memory-swappiness",
            source: ResourceError::Swappiness(s),
        });
    }
    let cpu_shares = int_flag(&flags.cpu_shares, "-c, --cpu-shares")?
        .map(|s| u64::try_from(s).map_err(|_| FlagError::CpuShares(s)))
        .transpose()?;
    let cpu_period = int_flag(&flags.cpu_period, "--cpu-period")?
        .map(|p| {
            u64::try_from(p).map_err(|_| FlagError::Resource {
                flag: "--cpu-period",
                source: ResourceError::CpuPeriod,
            })
        })
        .transpose()?;
    let blkio_weight = flags
        .blkio_weight
        .as_deref()
        .map(|w| {
            w.parse::<u16>().map_err(|e| FlagError::Number {
                flag: "--blkio-weight",
                source: number_error("ParseUint", w, &e),
            })
        })
        .transpose()?;
    Ok(Resources {
        memory: size(&flags.memory, "-m, --memory", parse::ram_in_bytes)?,
        memory_swap: size(&flags.memory_swap, "--memory-swap", parse::memory_swap)?,
        memory_reservation: size(
            &flags.memory_reservation,
            "--memory-reservation",
            parse::ram_in_bytes,
        )?,
        memory_swappiness,
        oom_kill_disable: flags.oom_kill_disable,
        nano_cpus: flags
            .cpus
            .as_deref()
            .map(|c| {
                parse::nano_cpus(c).map_err(|source| FlagError::Cpus {
                    value: c.to_owned(),
                    source,
                })
            })
            .transpose()?,
        cpu_shares,
        cpu_period,
        cpu_quota: int_flag(&flags.cpu_quota, "--cpu-quota")?,
        cpuset_cpus: flags.cpuset_cpus.clone(),
        cpuset_mems: flags.cpuset_mems.clone(),
        pids_limit: int_flag(&flags.pids_limit, "--pids-limit")?,
        blkio_weight,
        // Filled in by `create` from CreateOptions::device_*_{bps,iops}.
        ..Resources::default()
    })
}

fn throttles(
    values: &[String],
    flag: &'static str,
    parser: fn(&str) -> Result<(String, u64), ParseError>,
) -> Result<Vec<(String, u64)>, FlagError> {
    values
        .iter()
        .map(|value| {
            parser(value).map_err(|source| FlagError::Throttle {
                flag,
                value: value.clone(),
                source,
            })
        })
        .collect()
}

/// An int64 flag, with Go's `strconv.ParseInt` wording.
fn int(value: &str, flag: &'static str) -> Result<i64, FlagError> {
    value.parse::<i64>().map_err(|e| FlagError::Number {
        flag,
        source: number_error("ParseInt", value, &e),
    })
}

fn number_error(func: &'static str, value: &str, e: &ParseIntError) -> NumberError {
    NumberError {
        func,
        value: value.to_owned(),
        out_of_range: matches!(
            e.kind(),
            IntErrorKind::PosOverflow | IntErrorKind::NegOverflow
        ),
    }
}
