//! What `create` decides about a container's network: which namespace its spec names (a
//! pinned one for a network, the host's, none of its own, or another container's), its
//! place on the network (checked now: an unknown network or a `--ip` outside the subnet is
//! an error before anything runs), and its name files, bind-mounted over the image's.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use berth_network::{IpNet, UserMode};

use super::attach::check_requested;
use super::dns::{entry_lines, hosts_text, parse_add_host, resolv_text, write_in_place};
use super::store::{self, EndpointConfig, EndpointRow, Network};
use super::{netns_path, NetworkError, DEFAULT_NETWORK};
use crate::containers::{CreateOptions, Engine};
use crate::spec::{BindMount, NamespaceMode, RunOptions};

/// The files a container's `/etc` gets.
const NAME_FILES: [(&str, &str); 3] = [
    ("hosts", "/etc/hosts"),
    ("resolv.conf", "/etc/resolv.conf"),
    ("hostname", "/etc/hostname"),
];

impl Engine {
    /// Resolve `--network` for container `id` (bundle `bundle`): set the spec's network
    /// namespace, record its endpoint, write and mount its name files. True when the
    /// container gets a namespace of its own, which `start` makes and pins (loopback up,
    /// and an interface per network).
    pub(crate) fn join_networks(
        &mut self,
        id: &str,
        bundle: &Path,
        opts: &CreateOptions,
        run: &mut RunOptions,
    ) -> Result<bool, NetworkError> {
        check_flags(opts, run)?;
        let mode = opts.network.as_str();
        let user = super::usermode::mode_of(mode).transpose()?;
        if let Some(u) = &user {
            super::usermode::check_mode(u)?;
            self.precheck_ports(id, &opts.net.publish)?;
        }
        let own_netns = match mode {
            _ if user.is_some() => true,
            "host" => false,
            m if m.starts_with("container:") => {
                if !opts.net.publish.is_empty() || opts.net.publish_all {
                    return Err(NetworkError::Invalid(
                        "conflicting options: port publishing and the container network mode"
                            .to_owned(),
                    ));
                }
                self.share_name_files(&m["container:".len()..], run)?;
                return Ok(false);
            }
            "none" => true,
            _ => {
                let network = self.network_for(mode)?;
                match network.driver.as_str() {
                    "host" => {
                        run.network = NamespaceMode::Host;
                        false
                    }
                    "null" => true,
                    _ => {
                        self.add_endpoint(id, &network, opts)?;
                        self.precheck_ports(id, &opts.net.publish)?;
                        true
                    }
                }
            }
        };
        if own_netns {
            run.network = NamespaceMode::Path(netns_path(&self.run_root, id));
        }
        if !own_netns && !opts.net.publish.is_empty() {
            // docker discards them too; nothing would listen.
            return Err(NetworkError::Invalid(
                "published ports cannot be used with --network host: the container uses the \
                 host's ports directly"
                    .to_owned(),
            ));
        }
        write_name_files(bundle, opts, run, own_netns, user.as_ref())?;
        mount_name_files(bundle, run);
        Ok(own_netns)
    }

    /// `--network NAME` (the default network for `""`, `bridge` and `default`).
    fn network_for(&mut self, mode: &str) -> Result<Network, NetworkError> {
        let name = match mode {
            "" | "default" => DEFAULT_NETWORK,
            other => other,
        };
        self.network(name)
    }

    /// Record the container's place on `network`, checking what it asks for.
    fn add_endpoint(
        &mut self,
        id: &str,
        network: &Network,
        opts: &CreateOptions,
    ) -> Result<(), NetworkError> {
        let net = &opts.net;
        if !net.aliases.is_empty() && network.name == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(
                "network-scoped aliases are only supported for user-defined networks".to_owned(),
            ));
        }
        if let Some(mac) = &net.mac_address {
            super::attach::parse_mac(mac)?;
        }
        let config = EndpointConfig {
            aliases: net.aliases.clone(),
            ip4: net.ip.clone(),
            ip6: net.ip6.clone(),
            mac: net.mac_address.clone(),
        };
        let in_use = self.db.read(|tx| {
            Ok::<_, NetworkError>(
                store::endpoints_of_network(tx, &network.id)?
                    .iter()
                    .flat_map(|e| [e.ip4, e.ip6])
                    .flatten()
                    .collect::<HashSet<IpAddr>>(),
            )
        })?;
        check_static(network, &config, &in_use)?;
        let row = EndpointRow {
            container_id: id.to_owned(),
            network_id: network.id.clone(),
            position: 0,
            config,
            ip4: None,
            ip6: None,
        };
        self.db.write(|tx| store::insert_endpoint(tx, &row))?;
        Ok(())
    }

    /// `--network container:NAME`: that container's name files.
    fn share_name_files(&mut self, other: &str, run: &mut RunOptions) -> Result<(), NetworkError> {
        let c = self
            .db
            .get(other)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        mount_name_files(&self.dirs(&c.id).bundle, run);
        Ok(())
    }
}

/// What ends up in `/etc/hosts` and `/etc/resolv.conf` (its own, and its peers' for aliases)
/// must be names, not lines.
fn check_flags(opts: &CreateOptions, run: &RunOptions) -> Result<(), NetworkError> {
    let net = &opts.net;
    for alias in &net.aliases {
        check_name("--network-alias", alias)?;
    }
    if let Some(h) = &run.hostname {
        check_name("--hostname", h)?;
    }
    for h in &net.add_hosts {
        let name = h.split([':', '=']).next().unwrap_or_default();
        check_name("--add-host", name)?;
    }
    for d in &net.dns {
        d.parse::<IpAddr>().map_err(|_| {
            NetworkError::Invalid(format!("invalid --dns {d:?}: not an IP address"))
        })?;
    }
    for d in &net.dns_search {
        if d != "." {
            check_name("--dns-search", d)?;
        }
    }
    for o in &net.dns_options {
        if o.is_empty() || o.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(NetworkError::Invalid(format!(
                "invalid --dns-option {o:?}: one option, without spaces"
            )));
        }
    }
    Ok(())
}

/// A host or alias name: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most 253 bytes.
pub(crate) fn check_name(flag: &str, name: &str) -> Result<(), NetworkError> {
    if super::dns::is_host_name(name) {
        Ok(())
    } else {
        Err(NetworkError::Invalid(format!(
            "invalid {flag} {name:?}: a name is letters, digits, '_', '.' and '-'"
        )))
    }
}

/// `--ip` / `--ip6` must be addresses of the network (whether free is known at start).
pub(crate) fn check_static(
    network: &Network,
    config: &EndpointConfig,
    in_use: &HashSet<IpAddr>,
) -> Result<(), NetworkError> {
    for (asked, v4, flag) in [(&config.ip4, true, "--ip"), (&config.ip6, false, "--ip6")] {
        let Some(text) = asked else { continue };
        let address: IpAddr = text
            .parse()
            .ok()
            .filter(|a: &IpAddr| a.is_ipv4() == v4)
            .ok_or_else(|| NetworkError::Invalid(format!("invalid {flag} {text}")))?;
        let subnet = network.config.subnets.iter().find_map(|s| {
            let n: IpNet = s.subnet.parse().ok()?;
            (n.is_v4() == v4).then(|| (n, s.gateway.parse::<IpAddr>().ok()))
        });
        let Some((subnet, Some(gateway))) = subnet else {
            return Err(NetworkError::Invalid(format!(
                "{flag} {text}: network {} has no IPv{} subnet",
                network.name,
                if v4 { 4 } else { 6 }
            )));
        };
        if network.name == DEFAULT_NETWORK {
            return Err(NetworkError::Invalid(
                "user specified IP address is supported on user defined networks only".to_owned(),
            ));
        }
        check_requested(network, &subnet, gateway, address, in_use)?;
    }
    Ok(())
}

/// hosts (localhost and `--add-host`; the addresses come at start), resolv.conf, hostname.
fn write_name_files(
    bundle: &Path,
    opts: &CreateOptions,
    run: &RunOptions,
    own_netns: bool,
    user: Option<&UserMode>,
) -> Result<(), NetworkError> {
    let net = &opts.net;
    let extra = net
        .add_hosts
        .iter()
        .map(|h| parse_add_host(h, None).or_else(|e| gateway_placeholder(h).ok_or(e)))
        .collect::<Result<Vec<_>, _>>()?;
    let hostname = match &run.hostname {
        Some(h) if run.uts != NamespaceMode::Host => h.clone(),
        _ => nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    let hosts = if own_netns {
        hosts_text(&super::usermode::own_entries(user, &hostname), &extra, &[])
    } else {
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        text.push_str(&entry_lines(extra.iter()));
        text
    };
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let mut resolv = resolv_text(
        &host_resolv,
        (&net.dns, &net.dns_search, &net.dns_options),
        own_netns,
    );
    if let (Some(UserMode::Slirp(s)), true) = (user, net.dns.is_empty()) {
        // podman: slirp4netns's forwarder first, then the host's.
        let at = resolv.find("nameserver").unwrap_or(resolv.len());
        resolv.insert_str(at, &format!("nameserver {}\n", s.dns()));
    }
    for (file, text) in [
        ("hosts", hosts),
        ("resolv.conf", resolv),
        ("hostname", format!("{hostname}\n")),
    ] {
        write_in_place(&bundle.join(file), &text)?;
    }
    Ok(())
}

/// `--add-host h:host-gateway` is only known at start; accepted here.
fn gateway_placeholder(text: &str) -> Option<super::HostsEntry> {
    text.ends_with("host-gateway").then(|| super::HostsEntry {
        ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        names: Vec::new(),
    })
}

/// Bind-mount the bundle's name files, except where the user mounts something there.
fn mount_name_files(bundle: &Path, run: &mut RunOptions) {
    for (file, target) in NAME_FILES {
        if run.binds.iter().any(|b| b.destination == target) {
            continue;
        }
        let source: PathBuf = bundle.join(file);
        if source.exists() {
            run.binds.push(BindMount {
                source,
                destination: target.to_owned(),
                read_only: false,
                propagation: Some(Default::default()),
            });
        }
    }
}
