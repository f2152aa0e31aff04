//! `spec`: write runc's default config.json (or its rootless variant) into a bundle.

use std::path::PathBuf;

use serde_json::Value;

use super::{io, Error};

const DEFAULT: &str = include_str!("../default-spec.json");
const ROOTLESS: &str = include_str!("../default-spec-rootless.json");

/// Write `config.json` into `bundle` (default: the current directory).
pub fn run(bundle: Option<PathBuf>, rootless: bool) -> Result<i32, Error> {
    let dir = bundle.unwrap_or_else(|| PathBuf::from("."));
    let path = dir.join("config.json");
    if path.exists() {
        return Err(Error::Invalid(
            "File config.json exists. Remove it first".into(),
        ));
    }
    let text = if rootless {
        let mut spec: Value =
            serde_json::from_str(ROOTLESS).map_err(|e| Error::Invalid(e.to_string()))?;
        let ids = [
            ("uidMappings", nix::unistd::geteuid().as_raw()),
            ("gidMappings", nix::unistd::getegid().as_raw()),
        ];
        for (key, host) in ids {
            spec["linux"][key][0]["hostID"] = host.into();
        }
        serde_json::to_string_pretty(&spec).map_err(|e| Error::Invalid(e.to_string()))?
    } else {
        DEFAULT.trim_end().to_string()
    };
    std::fs::write(&path, text).map_err(io("write", &path))?;
    Ok(0)
}
