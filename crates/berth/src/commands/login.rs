//! `login` and `logout`: credentials in docker's `config.json` (`$DOCKER_CONFIG` or
//! `~/.docker`), so docker, podman and berth share them; credential helpers are honoured.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};
use berth_image::reference::{DEFAULT_REGISTRY, DEFAULT_REGISTRY_API_HOST};
use berth_image::{Client, ClientOptions, Credentials};

use crate::cli::{LoginArgs, LogoutArgs};

/// The stored credentials for `registry`, if any.
pub fn stored_credentials(registry: &str) -> Result<Option<Credentials>> {
    let path = berth_image::docker_config_path()?;
    Ok(berth_image::credentials_from_docker_config(
        &path, registry,
    )?)
}

/// The registry a `login`/`logout` argument names: `docker.io` when none; scheme, path and
/// Docker Hub's other names removed.
fn registry_of(server: Option<&str>) -> String {
    let Some(server) = server else {
        return DEFAULT_REGISTRY.to_owned();
    };
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" => DEFAULT_REGISTRY.to_owned(),
        host => host.to_owned(),
    }
}

/// How docker names a server in messages: Docker Hub by its v1 URL.
fn display_name(registry: &str) -> String {
    if registry == DEFAULT_REGISTRY {
        "https://index.docker.io/v1/".to_owned()
    } else {
        registry.to_owned()
    }
}

/// Read one line from the terminal after `prompt` (stderr), or fail off a terminal.
fn prompt(prompt: &str) -> Result<String> {
    if !std::io::stdin().is_terminal() {
        bail!("Cannot perform an interactive login from a non TTY device");
    }
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// [`prompt`] with the terminal's echo off, restored afterwards.
fn prompt_hidden(text: &str) -> Result<String> {
    use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&stdin, OptionalActions::Now, &quiet)?;
    }
    let answer = prompt(text);
    if let Some(saved) = &saved {
        tcsetattr(&stdin, OptionalActions::Now, saved)?;
        eprintln!();
    }
    answer
}

/// `login [-u USER] [-p PASS | --password-stdin] [SERVER]`: check the credentials against the
/// registry, then store them.
pub fn login(args: &LoginArgs) -> Result<()> {
    let registry = registry_of(args.server.as_deref());
    let username = match &args.username {
        Some(user) => user.clone(),
        None => prompt("Username: ")?,
    };
    let password = if args.password_stdin {
        if args.password.is_some() {
            bail!("--password and --password-stdin are mutually exclusive");
        }
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    } else if let Some(password) = &args.password {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
        password.clone()
    } else {
        prompt_hidden("Password: ")?
    };
    if username.is_empty() || password.is_empty() {
        bail!("Username and password are required");
    }
    let credentials = Credentials::new(&username, &password);
    let api_host = if registry == DEFAULT_REGISTRY {
        DEFAULT_REGISTRY_API_HOST
    } else {
        &registry
    };
    let options = ClientOptions {
        credentials: Some(credentials.clone()),
        insecure: !args.tls_verify,
        ..ClientOptions::default()
    };
    Client::new(&registry, api_host, options).login()?;
    let path = berth_image::docker_config_path()?;
    berth_image::store_credentials(&path, &registry, &credentials)?;
    println!("Login Succeeded");
    Ok(())
}

/// `logout [SERVER]`.
pub fn logout(args: &LogoutArgs) -> Result<()> {
    let registry = registry_of(args.server.as_deref());
    let path = berth_image::docker_config_path()?;
    let name = display_name(&registry);
    if berth_image::remove_credentials(&path, &registry)? {
        println!("Removing login credentials for {name}");
    } else {
        println!("Not logged in to {name}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_name_registries_like_docker() {
        assert_eq!(registry_of(None), "docker.io");
        assert_eq!(
            registry_of(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_of(Some("localhost:5000")), "localhost:5000");
        assert_eq!(
            registry_of(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(display_name("docker.io"), "https://index.docker.io/v1/");
    }
}
