//! Registry credentials: basic credentials, the docker `config.json` (where it is, reading
//! `auths` and credential helpers, writing for login/logout), and `WWW-Authenticate` challenges.

mod docker_config;
mod helper;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::PathBuf;

use base64::Engine as _;

pub use docker_config::{
    credentials_from_docker_config, docker_config_path, remove_credentials, server_key,
    store_credentials, DOCKER_HUB_AUTH_KEY,
};
pub use helper::HelperError;

/// Errors from finding, reading or writing a docker config.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("reading docker config {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("parsing docker config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("docker config {path}: entry for {registry:?} has an invalid \"auth\" field (base64 of user:password)")]
    BadAuthField { path: PathBuf, registry: String },
    #[error("docker config {path}: {what} is not a JSON object")]
    NotAnObject { path: PathBuf, what: &'static str },
    #[error("writing docker config {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("docker config {path}: credentials for {registry:?}: {source}")]
    Helper {
        path: PathBuf,
        registry: String,
        source: HelperError,
    },
    #[error("no docker config path: neither DOCKER_CONFIG nor HOME is set")]
    NoConfigPath,
}

/// A user name and password (or identity token as password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Self {
        Credentials {
            username: username.to_owned(),
            password: password.to_owned(),
        }
    }

    /// The value of an `Authorization: Basic ...` header.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A parsed `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

impl Challenge {
    /// Parses `Basic realm=".."` or `Bearer realm="..",service="..",scope=".."`.
    pub fn parse(header: &str) -> Option<Self> {
        let (scheme, params) = header.trim().split_once(' ').unwrap_or((header.trim(), ""));
        if scheme.eq_ignore_ascii_case("basic") {
            return Some(Challenge::Basic);
        }
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = parse_params(params);
        Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        })
    }
}

/// `key="value",key=value,...`; quoted values may contain commas.
fn parse_params(input: &str) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    let mut rest = input.trim();
    while let Some((key, after)) = rest.split_once('=') {
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let (value, remaining) = match after.strip_prefix('"') {
            Some(quoted) => match quoted.split_once('"') {
                Some((value, remaining)) => (value, remaining),
                None => (quoted, ""),
            },
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key, value.to_owned());
        rest = remaining.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let header = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#;
        assert_eq!(
            Challenge::parse(header),
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:a/b:pull,push".into()),
            })
        );
        assert_eq!(
            Challenge::parse(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(Challenge::parse("Negotiate abc"), None);
        assert_eq!(Challenge::parse("Bearer service=x"), None);
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert!(!format!("{:?}", Credentials::new("u", "hunter2")).contains("hunter2"));
    }
}
