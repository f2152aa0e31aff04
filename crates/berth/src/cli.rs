//! The command line, in docker's syntax.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand};

pub use crate::cli_containers::*;
pub use crate::cli_networks::*;

/// A daemonless, Docker-compatible container engine.
#[derive(Debug, Parser)]
#[command(name = "berth", version, disable_help_subcommand = true)]
pub struct Cli {
    /// Where images and containers are stored (default /var/lib/berth, or
    /// $XDG_DATA_HOME/berth, else ~/.local/share/berth, for a non-root user).
    #[arg(long, global = true, env = "BERTH_ROOT")]
    pub root: Option<PathBuf>,
    /// Where runtime state (pids, sockets) is kept (default /run/berth, or
    /// $XDG_RUNTIME_DIR/berth, else /tmp/berth-<uid>, for a non-root user).
    #[arg(long, global = true, env = "BERTH_RUNROOT")]
    pub runroot: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout(LogoutArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
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
    Ps(PsArgs),
    /// Return low-level information on Berth objects
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
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Display system-wide information
    Info(InfoArgs),
    /// Show the Berth version information
    Version(InfoArgs),
    /// Manage Berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
}

/// `berth image ...`
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Display detailed information on one or more images
    Inspect(InspectArgs),
    /// Remove unused images
    Prune(PruneArgs),
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    Rm(RmiArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(TagArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Save one or more images to a tar archive
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
}

/// `berth system ...`
#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage
    Df(DfArgs),
    /// Repair what crashed commands left, then remove stopped containers and unused networks
    Prune(ForceArgs),
}

/// Registry connection flags shared by pull and push.
#[derive(Debug, Args)]
pub struct RegistryArgs {
    /// Require HTTPS and verify certificates (false: plain http)
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
    /// Credentials (USERNAME[:PASSWORD]) instead of the stored login
    #[arg(long)]
    pub creds: Option<String>,
}

/// `pull`
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Set platform if server is multi-platform capable (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// NAME[:TAG|@DIGEST]
    pub name: String,
}

/// `push`
#[derive(Debug, Args)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// NAME[:TAG]
    pub name: String,
}

/// `images` / `image ls`
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Show all images (default hides intermediate images)
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output: "table", "json", or a Go template such as '{{.Repository}}:{{.Tag}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository (and tag)
    pub reference: Option<String>,
}

/// `rmi` / `image rm`
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `tag`
#[derive(Debug, Args)]
pub struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    pub source: String,
    /// TARGET_IMAGE[:TAG]
    pub target: String,
}

/// `image inspect`
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Format output: "json" or a Go template
    #[arg(short, long)]
    pub format: Option<String>,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `image prune`
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Remove all unused images, not just dangling ones
    #[arg(short, long)]
    pub all: bool,
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Commit message for the imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform of the imported image (os/arch[/variant])
    #[arg(long)]
    pub platform: Option<String>,
    /// file|URL|- : a rootfs tarball (plain, gzip or zstd), or - for STDIN
    pub file: String,
    /// REPOSITORY[:TAG]
    pub reference: Option<String>,
}

/// `save`
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Archive format: docker-archive (default) or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    /// IMAGE...
    #[arg(required = true)]
    pub images: Vec<String>,
}

/// `load`
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

/// `login`
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Username
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password
    #[arg(short, long)]
    pub password: Option<String>,
    /// Take the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    /// Require HTTPS and verify certificates (false: plain http)
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", require_equals = true)]
    pub tls_verify: bool,
    /// SERVER (default: Docker Hub)
    pub server: Option<String>,
}

/// `logout`
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// SERVER (default: Docker Hub)
    pub server: Option<String>,
}

/// `system df`
#[derive(Debug, Args)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short, long)]
    pub verbose: bool,
    /// Format output: "table" or "json"
    #[arg(long)]
    pub format: Option<String>,
}
