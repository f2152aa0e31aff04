//! runc 1.1's command line, flag for flag.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// berth-runtime: an OCI runtime with runc's command line.
#[derive(Debug, Parser)]
#[command(
    name = "berth-runtime",
    version = crate::VERSION_TEXT,
    disable_version_flag = true,
    args_override_self = true
)]
pub struct Cli {
    /// Root directory for storage of container state (this should be located in tmpfs).
    #[arg(long, global = true, default_value = "/run/berth-runtime")]
    pub root: PathBuf,
    /// Set the log file to write logs to (default is stderr).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Set the log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Enable debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Enable systemd cgroup support.
    #[arg(long, global = true)]
    pub systemd_cgroup: bool,
    /// Accepted for runc compatibility: rootless cgroup handling ('true', 'false' or 'auto').
    #[arg(long, hide = true)]
    pub rootless: Option<String>,
    /// Accepted for runc compatibility: path to criu (checkpoint/restore is not supported).
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    pub version: Option<bool>,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Output format of `list` and `ps`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum TableFormat {
    /// Human-readable table.
    Table,
    /// JSON.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a container.
    Create(CreateArgs),
    /// Execute the user-defined process in a created container.
    Start {
        /// Container id.
        id: String,
    },
    /// Create and run a container.
    Run(RunArgs),
    /// Output the state of a container.
    State {
        /// Container id.
        id: String,
    },
    /// Send a signal to the container's init process (default: SIGTERM).
    Kill {
        /// Send the signal to all processes inside the container.
        #[arg(short, long)]
        all: bool,
        /// Container id.
        id: String,
        /// Signal name or number.
        signal: Option<String>,
    },
    /// Delete any resources held by the container.
    Delete {
        /// Forcibly delete the container if it is still running (uses SIGKILL).
        #[arg(short, long)]
        force: bool,
        /// Container id.
        id: String,
    },
    /// List containers started with the given root.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
        /// Display only container ids.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display the processes running inside a container.
    Ps {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t = TableFormat::Table)]
        format: TableFormat,
        /// Container id.
        id: String,
        /// Arguments for ps(1) (default: -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Execute a new process inside the container.
    Exec(ExecArgs),
    /// Suspend all processes inside the container.
    Pause {
        /// Container id.
        id: String,
    },
    /// Resume all processes that have been previously paused.
    Resume {
        /// Container id.
        id: String,
    },
    /// Update container resource constraints.
    Update(UpdateArgs),
    /// Display container events such as OOM notifications and stats.
    Events {
        /// Set the stats collection interval.
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Display the container's stats then exit.
        #[arg(long)]
        stats: bool,
        /// Container id.
        id: String,
    },
    /// Create a new specification file.
    Spec {
        /// Path to the root of the bundle directory.
        #[arg(short, long)]
        bundle: Option<PathBuf>,
        /// Generate a configuration for a rootless container.
        #[arg(long)]
        rootless: bool,
    },
    /// Show the enabled features.
    Features,
}

/// Flags shared by `create` and `run`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Path to the root of the bundle directory, defaults to the current directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Path to an AF_UNIX socket which will receive the console's pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Specify the file to write the process id to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Do not use pivot_root to jail the process inside rootfs.
    #[arg(long)]
    pub no_pivot: bool,
    /// Do not create a new session keyring for the container.
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass N additional file descriptors to the container.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Container id.
    pub id: String,
}

/// `run` flags.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Create flags.
    #[command(flatten)]
    pub create: CreateArgs,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// Do not delete the container after it exits.
    #[arg(long)]
    pub keep: bool,
    /// Disable the use of the subreaper used to reap reparented processes.
    #[arg(long)]
    pub no_subreaper: bool,
}

/// `exec` flags.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Path to an AF_UNIX socket which will receive the console's pty master.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Current working directory in the container.
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    /// Set environment variables.
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// UID (format: <uid>[:<gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Additional gids.
    #[arg(short = 'g', long)]
    pub additional_gids: Vec<u32>,
    /// Path to the process.json.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    /// Detach from the container's process.
    #[arg(short, long)]
    pub detach: bool,
    /// Specify the file to write the process id to.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Set the SELinux process label.
    #[arg(long)]
    pub process_label: Option<String>,
    /// Set the AppArmor profile.
    #[arg(long)]
    pub apparmor: Option<String>,
    /// Set no_new_privs for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Add a capability to the bounding set for the process.
    #[arg(short, long)]
    pub cap: Vec<String>,
    /// Pass N additional file descriptors to the process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: i32,
    /// Allow exec in a paused container.
    #[arg(long)]
    pub ignore_paused: bool,
    /// Container id.
    pub id: String,
    /// Command and arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `update` flags.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Path to a file with the resources to update, or '-' for stdin.
    #[arg(short, long)]
    pub resources: Option<PathBuf>,
    /// Block IO weight (10 to 1000; 0 leaves it unchanged, as runc).
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// CPU CFS period (µs).
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// CPU CFS quota (µs).
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    /// CPU shares.
    #[arg(long)]
    pub cpu_share: Option<u64>,
    /// CPU realtime period (µs).
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    /// CPU realtime runtime (µs).
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    /// CPUs to use.
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Memory nodes to use.
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Memory limit (bytes, or with a k/m/g suffix).
    #[arg(long)]
    pub memory: Option<String>,
    /// Memory reservation.
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Memory + swap limit; -1 for unlimited.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Maximum number of pids.
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Kernel memory limit (cgroup v1 before Linux 5.16 only; refused elsewhere).
    #[arg(long)]
    pub kernel_memory: Option<String>,
    /// Kernel TCP buffer memory limit (cgroup v1 only; refused on v2).
    #[arg(long)]
    pub kernel_memory_tcp: Option<String>,
    /// Intel RDT L3 cache schema.
    #[arg(long)]
    pub l3_cache_schema: Option<String>,
    /// Intel RDT memory bandwidth schema.
    #[arg(long)]
    pub mem_bw_schema: Option<String>,
    /// Container id.
    pub id: String,
}
