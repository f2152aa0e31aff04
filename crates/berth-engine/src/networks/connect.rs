//! `network connect` and `disconnect`: on a stopped container only the record changes; on a
//! running one the interface is added to (or taken from) its namespace at once.

use berth_network::NetNs;

use super::attach::{allocate, plug, Placed};
use super::join::check_static;
use super::store::{self, EndpointConfig, EndpointRow};
use super::{netns_path, NetworkError};
use crate::containers::{config_of, Engine};

/// `network connect`'s flags.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `--alias`.
    pub aliases: Vec<String>,
    /// `--ip`.
    pub ip: Option<String>,
    /// `--ip6`.
    pub ip6: Option<String>,
}

impl Engine {
    /// Put container `what` on network `network`.
    pub fn network_connect(
        &mut self,
        network: &str,
        what: &str,
        opts: &ConnectOptions,
    ) -> Result<(), NetworkError> {
        let network = self.network(network)?;
        let c = self
            .db
            .get(what)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let _lock = crate::containers::lock_container(&self.run_root, &c.id)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let mode = config_of(&c).network_mode;
        if matches!(network.driver.as_str(), "host" | "null")
            || mode == "host"
            || mode == "none"
            || mode.starts_with("container:")
        {
            return Err(NetworkError::Invalid(format!(
                "container {} cannot be connected to network {}: one of them is `host`, `none` \
                 or another container's namespace",
                c.name, network.name
            )));
        }
        let config = EndpointConfig {
            aliases: opts.aliases.clone(),
            ip4: opts.ip.clone(),
            ip6: opts.ip6.clone(),
            mac: None,
        };
        for alias in &config.aliases {
            super::join::check_name("--alias", alias)?;
        }
        check_static(&network, &config, &Default::default())?;
        let running = c.status.is_live();
        let placed = self.db.write(|tx| {
            let mine = store::endpoints_of_container(tx, &c.id)?;
            if mine.iter().any(|e| e.network_id == network.id) {
                return Err(NetworkError::Membership {
                    container: c.name.clone(),
                    what: "is already attached to",
                    network: network.name.clone(),
                });
            }
            let mut endpoint = EndpointRow {
                container_id: c.id.clone(),
                network_id: network.id.clone(),
                position: mine.iter().map(|e| e.position + 1).max().unwrap_or(0),
                config,
                ip4: None,
                ip6: None,
            };
            if running {
                (endpoint.ip4, endpoint.ip6) = allocate(tx, &network, &endpoint)?;
            }
            store::insert_endpoint(tx, &endpoint)?;
            Ok(Placed {
                endpoint,
                network: network.clone(),
            })
        })?;
        if !running {
            return Ok(());
        }
        let plugged = NetNs::open(&netns_path(&self.run_root, &c.id))
            .map_err(NetworkError::from)
            .and_then(|ns| {
                if placed.network.driver == "bridge"
                    && !berth_network::link_exists(&placed.network.interface)?
                {
                    super::manage::bring_up(&placed.network)?;
                }
                plug(&ns, &c.id, &placed)
            });
        if let Err(e) = plugged {
            let _ = self
                .db
                .write(|tx| store::delete_endpoint(tx, &c.id, &network.id));
            return Err(e);
        }
        self.refresh_hosts(&c.id, std::slice::from_ref(&placed))
    }

    /// Take container `what` off network `network`; `force` goes on when the interface
    /// cannot be removed.
    pub fn network_disconnect(
        &mut self,
        network: &str,
        what: &str,
        force: bool,
    ) -> Result<(), NetworkError> {
        let network = self.network(network)?;
        let c = self
            .db
            .get(what)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let _lock = crate::containers::lock_container(&self.run_root, &c.id)
            .map_err(|e| NetworkError::Invalid(e.to_string()))?;
        let endpoint = self
            .db
            .read(|tx| store::endpoints_of_container(tx, &c.id))?
            .into_iter()
            .find(|e| e.network_id == network.id)
            .ok_or_else(|| NetworkError::Membership {
                container: c.name.clone(),
                what: "is not connected to",
                network: network.name.clone(),
            })?;
        if c.status.is_live() && endpoint.ip4.or(endpoint.ip6).is_some() {
            let removed = NetNs::open(&netns_path(&self.run_root, &c.id))
                .map_err(NetworkError::from)
                .and_then(|ns| Ok(berth_network::remove_interface(&ns, &endpoint.ifname())?));
            if let Err(e) = removed {
                if !force {
                    return Err(e);
                }
            }
        }
        self.db
            .write(|tx| store::delete_endpoint(tx, &c.id, &network.id))?;
        let placed = Placed { endpoint, network };
        self.refresh_hosts(&c.id, std::slice::from_ref(&placed))
    }
}
