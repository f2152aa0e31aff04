//! `berth network ...` and `berth system prune`, in docker's syntax.

use clap::{Args, Subcommand};

/// `berth network ...`
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network
    Create(NetworkCreateArgs),
    /// List networks
    #[command(visible_alias = "list")]
    Ls(NetworkLsArgs),
    /// Display detailed information on one or more networks
    Inspect(NetworkInspectArgs),
    /// Remove one or more networks
    #[command(visible_alias = "remove")]
    Rm(NetworkRmArgs),
    /// Remove all unused networks
    Prune(ForceArgs),
    /// Connect a container to a network
    Connect(NetworkConnectArgs),
    /// Disconnect a container from a network
    Disconnect(NetworkDisconnectArgs),
}

/// `network create`
#[derive(Debug, Args)]
pub struct NetworkCreateArgs {
    /// Driver to manage the Network (bridge or macvlan)
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    pub subnet: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    pub gateway: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long = "ip-range")]
    pub ip_range: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    pub internal: bool,
    /// Enable IPv6 networking
    #[arg(long)]
    pub ipv6: bool,
    /// Set driver specific options (KEY=VALUE)
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Set metadata on a network (KEY=VALUE)
    #[arg(long)]
    pub label: Vec<String>,
    /// NETWORK
    pub name: String,
}

/// `network ls`
#[derive(Debug, Args)]
pub struct NetworkLsArgs {
    /// Only display network IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
    /// Format output using a custom template ('table', 'json', or a Go template)
    #[arg(long)]
    pub format: Option<String>,
}

/// `network inspect`
#[derive(Debug, Args)]
pub struct NetworkInspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    pub format: Option<String>,
    /// NETWORK...
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `network rm`
#[derive(Debug, Args)]
pub struct NetworkRmArgs {
    /// NETWORK...
    #[arg(required = true)]
    pub names: Vec<String>,
}

/// `-f` for the prunes.
#[derive(Debug, Args)]
pub struct ForceArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
}

/// `network connect`
#[derive(Debug, Args)]
pub struct NetworkConnectArgs {
    /// Add network-scoped alias for the container
    #[arg(long)]
    pub alias: Vec<String>,
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 address (e.g., "2001:db8::33")
    #[arg(long)]
    pub ip6: Option<String>,
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
}

/// `network disconnect`
#[derive(Debug, Args)]
pub struct NetworkDisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short, long)]
    pub force: bool,
    /// NETWORK
    pub network: String,
    /// CONTAINER
    pub container: String,
}
