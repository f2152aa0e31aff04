//! The command line of the container commands, in docker's syntax.

use clap::{ArgAction, Args, Subcommand};

use crate::commands::run_flags::RunFlags;

/// `run` / `create`: docker's flags, then IMAGE [COMMAND] [ARG...].
#[derive(Debug, Args)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    #[command(flatten)]
    pub flags: RunFlags,
    /// The image
    pub image: String,
    /// The command and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `start`
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `stop` / `restart`
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Seconds to wait before killing the container
    #[arg(
        short = 't',
        long = "time",
        alias = "timeout",
        allow_negative_numbers = true
    )]
    pub time: Option<i64>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill`
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rm`
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ps`
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long, default_value_t = -1, allow_negative_numbers = true)]
    pub last: i64,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
}

/// `inspect`
#[derive(Debug, Args)]
pub struct ContainerInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// Display total file sizes
    #[arg(short, long)]
    pub size: bool,
    /// Only inspect objects of the given type (container or image)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Containers or images
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all" for all)
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp (e.g. 2013-01-02T13:23:37Z) or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    /// Show extra details provided to logs
    #[arg(long)]
    pub details: bool,
    /// The container
    pub container: String,
}

/// `exec`
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Set environment variables
    #[arg(short, long)]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// The container
    pub container: String,
    /// The command and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// Commands that take only container names.
#[derive(Debug, Args)]
pub struct ContainersArgs {
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `update`
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long, allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long)]
    pub cpu_period: Option<u64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long, allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long, allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    /// Containers
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `top`
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The container
    pub container: String,
    /// ps options (accepted for docker compatibility; the columns are Berth's)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub ps_args: Vec<String>,
}

/// `stats`
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Containers (default: all running)
    pub containers: Vec<String>,
}

/// `port`
#[derive(Debug, Args)]
pub struct PortArgs {
    /// The container
    pub container: String,
    /// PRIVATE_PORT[/PROTO]
    pub port: Option<String>,
}

/// `rename`
#[derive(Debug, Args)]
pub struct RenameArgs {
    /// The container
    pub container: String,
    /// Its new name
    pub new_name: String,
}

/// `cp`
#[derive(Debug, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH or SRC_PATH
    pub source: String,
    /// DEST_PATH or CONTAINER:DEST_PATH
    pub destination: String,
}

/// `container prune`
#[derive(Debug, Default, Args)]
pub struct ContainerPruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

/// `info` / `version`
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
}

/// `container cleanup` (berth-monitor's exit command; not for users).
#[derive(Debug, Args)]
pub struct CleanupArgs {
    /// The container
    pub container: String,
}

/// `berth container ...`
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Create and run a new container from an image
    Run(RunArgs),
    /// Create a new container
    Create(RunArgs),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    #[command(visible_alias = "list", alias = "ps")]
    Ls(PsArgs),
    /// Display detailed information on one or more containers
    Inspect(ContainerInspectArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(ContainersArgs),
    /// Pause all processes within one or more containers
    Pause(ContainersArgs),
    /// Unpause all processes within one or more containers
    Unpause(ContainersArgs),
    /// Update configuration of one or more containers
    Update(UpdateArgs),
    /// Display the running processes of a container
    Top(TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port(PortArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Remove all stopped containers
    Prune(ContainerPruneArgs),
    /// Record a container's exit (run by berth-monitor)
    #[command(hide = true)]
    Cleanup(CleanupArgs),
}
