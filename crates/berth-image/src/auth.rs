//! Registry credentials: basic credentials, docker `config.json` `auths`, and
//! `WWW-Authenticate` challenges.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// Errors from reading a docker config.
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

#[derive(Debug, Deserialize, Default)]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
}

#[derive(Debug, Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// The credentials a docker `config.json` holds for `registry` (as written in a
/// reference: `docker.io`, `localhost:5000`), if any. A missing file is no credentials.
pub fn credentials_from_docker_config(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, AuthError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|source| AuthError::Parse {
            path: path.to_owned(),
            source,
        })?;
    let Some((key, entry)) = config
        .auths
        .iter()
        .find(|(key, _)| auth_key_matches(key, registry))
    else {
        return Ok(None);
    };
    entry_credentials(entry).ok_or_else(|| AuthError::BadAuthField {
        path: path.to_owned(),
        registry: key.clone(),
    })
}

fn entry_credentials(entry: &AuthEntry) -> Option<Option<Credentials>> {
    if let Some(auth) = &entry.auth {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        return Some(Some(Credentials::new(user, password)));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(password)) => Some(Some(Credentials::new(user, password))),
        _ => Some(None),
    }
}

/// Keys may be bare hosts or URLs (`https://host/v1/`); Docker Hub has its own key.
fn auth_key_matches(key: &str, registry: &str) -> bool {
    if registry == crate::reference::DEFAULT_REGISTRY && key == DOCKER_HUB_AUTH_KEY {
        return true;
    }
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    host.split('/').next() == Some(registry)
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
    fn reads_docker_config_auths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with-colon");
        let config = format!(
            r#"{{"auths":{{"localhost:5000":{{"auth":"{auth}"}},"https://index.docker.io/v1/":{{"username":"bob","password":"pw"}},"bad.example":{{"auth":"%%%"}}}}}}"#
        );
        std::fs::write(&path, config).expect("write");
        let creds = |r: &str| credentials_from_docker_config(&path, r);
        assert_eq!(
            creds("localhost:5000").expect("ok"),
            Some(Credentials::new("alice", "s3cret:with-colon"))
        );
        assert_eq!(
            creds("docker.io").expect("ok"),
            Some(Credentials::new("bob", "pw"))
        );
        assert_eq!(creds("other.example").expect("ok"), None);
        assert!(creds("bad.example")
            .expect_err("bad")
            .to_string()
            .contains("invalid \"auth\""));
        assert_eq!(
            credentials_from_docker_config(&dir.path().join("none"), "x").expect("missing"),
            None
        );
    }

    #[test]
    fn debug_output_hides_the_password() {
        assert!(!format!("{:?}", Credentials::new("u", "hunter2")).contains("hunter2"));
    }
}
