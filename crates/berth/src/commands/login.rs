//! `login` and `logout`: credentials in a docker `config.json`.

use std::path::PathBuf;

use anyhow::Result;
use berth_image::Credentials;

/// The docker config file: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn config_path() -> PathBuf {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(dir).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".docker").join("config.json")
}

/// The stored credentials for `registry`, if any.
pub fn stored_credentials(registry: &str) -> Result<Option<Credentials>> {
    Ok(berth_image::credentials_from_docker_config(
        &config_path(),
        registry,
    )?)
}
