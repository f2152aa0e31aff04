//! The process part of the spec: args from Entrypoint + Cmd, the environment, capabilities.

use std::str::FromStr;

use oci_spec::runtime::{Capabilities, Capability};

use super::defaults::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES, DEFAULT_PATH};
use super::{NamespaceMode, RunOptions, SpecError};

/// The image's string list at `key` (`Entrypoint`, `Cmd`, `Env`); null or absent is `None`.
pub fn image_list(config: Option<&serde_json::Value>, key: &str) -> Option<Vec<String>> {
    let list = config?.get(key)?.as_array()?;
    Some(
        list.iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
    )
}

/// docker's rule: `--entrypoint` replaces the image's and drops its Cmd (the arguments
/// given after the image stay); otherwise the arguments replace the image's Cmd.
pub fn args(
    config: Option<&serde_json::Value>,
    opts: &RunOptions,
) -> Result<Vec<String>, SpecError> {
    let (entrypoint, cmd) = match &opts.entrypoint {
        Some(entrypoint) => (entrypoint.clone(), opts.cmd.clone()),
        None if opts.cmd.is_empty() => (
            image_list(config, "Entrypoint").unwrap_or_default(),
            image_list(config, "Cmd").unwrap_or_default(),
        ),
        None => (
            image_list(config, "Entrypoint").unwrap_or_default(),
            opts.cmd.clone(),
        ),
    };
    let mut args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() {
        return Err(SpecError::NoCommand);
    }
    if let Some(init) = opts
        .init
        .as_ref()
        .filter(|_| opts.pid == NamespaceMode::Private)
    {
        args.splice(0..0, [init.container_path.clone(), "--".to_owned()]);
    }
    Ok(args)
}

/// docker's environment: the `-e` values, then the image's Env entries whose key they do not
/// name (docker's create-time merge); laid over PATH, HOSTNAME and TERM=xterm (with -t) by
/// `ReplaceOrAppendEnvValues`: replace by key in place or append; a bare `K` removes K.
pub fn env(config: Option<&serde_json::Value>, opts: &RunOptions) -> Vec<String> {
    let mut defaults = vec![format!("PATH={DEFAULT_PATH}")];
    if let Some(hostname) = &opts.hostname {
        defaults.push(format!("HOSTNAME={hostname}"));
    }
    if opts.tty {
        defaults.push("TERM=xterm".to_owned());
    }
    let user_keys: Vec<&str> = opts.env.iter().map(|e| env_key(e)).collect();
    let image_env = image_list(config, "Env").unwrap_or_default();
    let merged = opts.env.iter().chain(
        image_env
            .iter()
            .filter(|e| !user_keys.contains(&env_key(e))),
    );
    // (key, entry): an unset entry keeps its slot, as docker's cache does.
    let mut env: Vec<(String, Option<String>)> = defaults
        .into_iter()
        .map(|e| (env_key(&e).to_owned(), Some(e)))
        .collect();
    for entry in merged {
        let key = env_key(entry);
        let position = env.iter().position(|(k, _)| k == key);
        match (position, entry.contains('=')) {
            (Some(i), true) => env[i].1 = Some(entry.clone()),
            (Some(i), false) => env[i].1 = None,
            (None, true) => env.push((key.to_owned(), Some(entry.clone()))),
            (None, false) => {}
        }
    }
    env.into_iter().filter_map(|(_, e)| e).collect()
}

fn env_key(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(k, _)| k)
}

/// `CHOWN`, `cap_chown`, `CAP_CHOWN` → `CAP_CHOWN`; `ALL` stays; unknown names are docker's
/// error.
fn normalize_caps(names: &[String]) -> Result<Vec<String>, SpecError> {
    names
        .iter()
        .map(|name| {
            let upper = name.to_ascii_uppercase();
            if upper == "ALL" {
                return Ok(upper);
            }
            let full = if upper.starts_with("CAP_") {
                upper
            } else {
                format!("CAP_{upper}")
            };
            if ALL_CAPABILITIES.contains(&full.as_str()) {
                Ok(full)
            } else {
                Err(SpecError::UnknownCapability(full))
            }
        })
        .collect()
}

/// docker's `TweakCapabilities`: privileged gets all; `--cap-add ALL` all but the dropped;
/// `--cap-drop ALL` only the added; else the defaults minus dropped plus added.
pub fn capability_names(opts: &RunOptions) -> Result<Vec<String>, SpecError> {
    let all = || {
        ALL_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| opts.grantable.as_ref().is_none_or(|g| g.contains(c)))
    };
    if opts.privileged {
        return Ok(all().collect());
    }
    let add = normalize_caps(&opts.cap_add)?;
    let drop = normalize_caps(&opts.cap_drop)?;
    let has_all = |list: &[String]| list.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if has_all(&add) {
        all().filter(|c| !drop.contains(c)).collect()
    } else if has_all(&drop) {
        add.into_iter().filter(|c| c != "ALL").collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .map(|c| (*c).to_owned())
            .filter(|c| !drop.contains(c))
            .chain(add)
            .collect()
    };
    let mut seen = Vec::new();
    caps.retain(|c| {
        let new = !seen.contains(c);
        seen.push(c.clone());
        new
    });
    Ok(caps)
}

/// The capabilities of `caps` (the final set) that `--cap-add` names (all of them for
/// `ALL`): what a non-root user needs in its ambient set for the adds to take effect.
pub fn added_capabilities(opts: &RunOptions, caps: &[String]) -> Result<Vec<String>, SpecError> {
    let add = normalize_caps(&opts.cap_add)?;
    let all = add.iter().any(|c| c == "ALL");
    Ok(caps
        .iter()
        .filter(|c| all || add.contains(c))
        .cloned()
        .collect())
}

/// The names as oci-spec capabilities.
pub fn capability_set(names: &[String]) -> Result<Capabilities, SpecError> {
    names
        .iter()
        .map(|name| {
            let short = name.strip_prefix("CAP_").unwrap_or(name);
            Capability::from_str(short).map_err(|_| SpecError::UnknownCapability(name.clone()))
        })
        .collect()
}
