//! The docker `config.json`: where it is, the credentials it holds for a registry (`auths`,
//! `credHelpers`, `credsStore`), and writing them for `login`/`logout` without disturbing
//! anything else in the file.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::helper::Helper;
use super::{AuthError, Credentials};

/// The `auths` key (and credential-helper server URL) docker uses for Docker Hub.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";
/// Host names that all mean Docker Hub in a config key.
const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Where the docker config is, as docker looks for it: `$DOCKER_CONFIG/config.json`, else
/// `$HOME/.docker/config.json`. Berth uses the same file, so `berth login` and `docker login`
/// share credentials.
pub fn docker_config_path() -> Result<PathBuf, AuthError> {
    config_path_from(std::env::var_os("DOCKER_CONFIG"), std::env::var_os("HOME"))
        .ok_or(AuthError::NoConfigPath)
}

fn config_path_from(docker_config: Option<OsString>, home: Option<OsString>) -> Option<PathBuf> {
    let non_empty = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = non_empty(docker_config) {
        return Some(dir.join("config.json"));
    }
    non_empty(home).map(|home| home.join(".docker").join("config.json"))
}

/// The key docker files `registry`'s credentials under (and the server URL it gives
/// credential helpers): [`DOCKER_HUB_AUTH_KEY`] for `docker.io`, the registry host otherwise.
pub fn server_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_AUTH_KEY.to_owned()
    } else {
        registry.to_owned()
    }
}

/// The credentials a docker `config.json` holds for `registry` (as written in a reference:
/// `docker.io`, `localhost:5000`), if any. Like docker, a `credHelpers` entry for the registry
/// wins, then `credsStore`, then `auths`; helpers are run as `docker-credential-<name> get`.
/// A missing file is no credentials; a configured helper that is not installed is an error.
pub fn credentials_from_docker_config(
    path: &Path,
    registry: &str,
) -> Result<Option<Credentials>, AuthError> {
    lookup(path, registry, None)
}

/// Store `credentials` for `registry` in the config at `path` (created if missing), as
/// `docker login` does: through the configured credential helper (leaving an empty `auths`
/// entry, like docker), else as base64 `auth` in `auths`. Every other key is kept; the file
/// is replaced atomically with mode 0600.
pub fn store_credentials(
    path: &Path,
    registry: &str,
    credentials: &Credentials,
) -> Result<(), AuthError> {
    store_in(path, registry, credentials, None)
}

/// Forget `registry`'s credentials, as `docker logout` does: erase them from the configured
/// credential helper and drop its `auths` entries. `false` when there was nothing to forget.
pub fn remove_credentials(path: &Path, registry: &str) -> Result<bool, AuthError> {
    remove_in(path, registry, None)
}

/// [`credentials_from_docker_config`] with helpers looked up in `search_path` (tests).
pub(crate) fn lookup(
    path: &Path,
    registry: &str,
    search_path: Option<&OsStr>,
) -> Result<Option<Credentials>, AuthError> {
    let Some(text) = read(path)? else {
        return Ok(None);
    };
    let config: DockerConfig =
        serde_json::from_slice(&text).map_err(|source| AuthError::Parse {
            path: path.to_owned(),
            source,
        })?;
    if let Some(name) = helper_for(&config, registry) {
        return Helper::new(name, search_path)
            .get(&server_key(registry))
            .map_err(helper_error(path, registry));
    }
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

pub(crate) fn store_in(
    path: &Path,
    registry: &str,
    credentials: &Credentials,
    search_path: Option<&OsStr>,
) -> Result<(), AuthError> {
    let mut config = read_object(path)?;
    let typed = typed(path, &config)?;
    let key = server_key(registry);
    let entry = match helper_for(&typed, registry) {
        Some(name) => {
            Helper::new(name, search_path)
                .store(&key, credentials)
                .map_err(helper_error(path, registry))?;
            Map::new()
        }
        None => {
            let raw = format!("{}:{}", credentials.username, credentials.password);
            let auth = base64::engine::general_purpose::STANDARD.encode(raw);
            Map::from_iter([("auth".to_owned(), Value::String(auth))])
        }
    };
    let auths = auths_mut(path, &mut config)?;
    auths.retain(|k, _| k == &key || !auth_key_matches(k, registry));
    auths.insert(key, Value::Object(entry));
    write(path, &Value::Object(config))
}

pub(crate) fn remove_in(
    path: &Path,
    registry: &str,
    search_path: Option<&OsStr>,
) -> Result<bool, AuthError> {
    if read(path)?.is_none() {
        return Ok(false);
    }
    let mut config = read_object(path)?;
    let typed = typed(path, &config)?;
    let mut removed = false;
    if let Some(name) = helper_for(&typed, registry) {
        removed = Helper::new(name, search_path)
            .erase(&server_key(registry))
            .map_err(helper_error(path, registry))?;
    }
    let auths = auths_mut(path, &mut config)?;
    let before = auths.len();
    auths.retain(|k, _| !auth_key_matches(k, registry));
    if auths.len() == before {
        return Ok(removed);
    }
    write(path, &Value::Object(config))?;
    Ok(true)
}

fn helper_error(path: &Path, registry: &str) -> impl FnOnce(super::HelperError) -> AuthError {
    let (path, registry) = (path.to_owned(), registry.to_owned());
    move |source| AuthError::Helper {
        path,
        registry,
        source,
    }
}

/// The helper docker would use for `registry`: its `credHelpers` entry, else `credsStore`.
fn helper_for<'c>(config: &'c DockerConfig, registry: &str) -> Option<&'c str> {
    config
        .cred_helpers
        .iter()
        .find(|(key, _)| auth_key_matches(key, registry))
        .map(|(_, name)| name.as_str())
        .or(config.creds_store.as_deref())
        .filter(|name| !name.is_empty())
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

fn is_docker_hub(registry: &str) -> bool {
    registry == crate::reference::DEFAULT_REGISTRY || DOCKER_HUB_HOSTS.contains(&registry)
}

/// Keys may be bare hosts or URLs (`https://host/v1/`); Docker Hub has several names.
fn auth_key_matches(key: &str, registry: &str) -> bool {
    let host = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or_default();
    host == registry || (is_docker_hub(registry) && DOCKER_HUB_HOSTS.contains(&host))
}

/// The file's bytes; `None` when it does not exist.
fn read(path: &Path) -> Result<Option<Vec<u8>>, AuthError> {
    match std::fs::read(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AuthError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The whole config as a JSON object (empty when the file does not exist).
fn read_object(path: &Path) -> Result<Map<String, Value>, AuthError> {
    let Some(text) = read(path)? else {
        return Ok(Map::new());
    };
    let value: Value = serde_json::from_slice(&text).map_err(|source| AuthError::Parse {
        path: path.to_owned(),
        source,
    })?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(AuthError::NotAnObject {
            path: path.to_owned(),
            what: "the file",
        }),
    }
}

fn typed(path: &Path, config: &Map<String, Value>) -> Result<DockerConfig, AuthError> {
    DockerConfig::deserialize(Value::Object(config.clone())).map_err(|source| AuthError::Parse {
        path: path.to_owned(),
        source,
    })
}

fn auths_mut<'m>(
    path: &Path,
    config: &'m mut Map<String, Value>,
) -> Result<&'m mut Map<String, Value>, AuthError> {
    match config
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(auths) => Ok(auths),
        _ => Err(AuthError::NotAnObject {
            path: path.to_owned(),
            what: "\"auths\"",
        }),
    }
}

/// Replace the config atomically: a 0600 temporary file in the same directory, fsynced,
/// renamed over the file (over a symlink's target, as docker does), then the directory fsynced.
fn write(path: &Path, config: &Value) -> Result<(), AuthError> {
    let target = match std::fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(_) => path.to_owned(),
    };
    let write_err = |source| AuthError::Write {
        path: target.clone(),
        source,
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(write_err)?;
    let mut text = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut serializer = serde_json::Serializer::with_formatter(&mut text, formatter);
    config
        .serialize(&mut serializer)
        .map_err(|e| write_err(e.into()))?;
    text.push(b'\n');
    // tempfile creates the file with mode 0600.
    let mut tmp = tempfile::Builder::new()
        .prefix(".config.json.")
        .tempfile_in(&dir)
        .map_err(write_err)?;
    tmp.write_all(&text).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(&target).map_err(|e| write_err(e.error))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn json(path: &Path) -> Value {
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
    }

    #[test]
    fn config_path_is_looked_up_like_docker() {
        let some = |s: &str| Some(OsString::from(s));
        assert_eq!(
            config_path_from(some("/etc/dc"), some("/home/a")),
            Some(PathBuf::from("/etc/dc/config.json"))
        );
        assert_eq!(
            config_path_from(some(""), some("/home/a")),
            Some(PathBuf::from("/home/a/.docker/config.json"))
        );
        assert_eq!(
            config_path_from(None, some("/home/a")),
            Some(PathBuf::from("/home/a/.docker/config.json"))
        );
        assert_eq!(config_path_from(None, None), None);
        assert_eq!(server_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(server_key("localhost:5000"), "localhost:5000");
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
    fn store_creates_a_private_config_and_reads_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub").join("config.json");
        let alice = Credentials::new("alice", "pw:1");
        store_credentials(&path, "docker.io", &alice).expect("store");
        store_credentials(&path, "localhost:5000", &Credentials::new("bob", "x")).expect("store");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let value = json(&path);
        let hub = &value["auths"][DOCKER_HUB_AUTH_KEY]["auth"];
        assert_eq!(
            hub.as_str(),
            Some(
                base64::engine::general_purpose::STANDARD
                    .encode("alice:pw:1")
                    .as_str()
            )
        );
        assert_eq!(
            credentials_from_docker_config(&path, "docker.io").expect("read"),
            Some(alice)
        );
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().expect("dir"))
            .expect("ls")
            .filter_map(Result::ok)
            .filter(|e| e.file_name() != "config.json")
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn store_and_remove_keep_every_other_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let original = r#"{"auths":{"other.example":{"auth":"b3RoZXI6cHc=","email":"o@x"},
            "index.docker.io":{"auth":"c3RhbGU6c3RhbGU="}},
            "psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"http://p:3128"}},
            "experimental":"enabled"}"#;
        std::fs::write(&path, original).expect("write");
        let carol = Credentials::new("carol", "pw");
        store_credentials(&path, "docker.io", &carol).expect("store");
        let value = json(&path);
        assert_eq!(value["psFormat"], "table {{.ID}}");
        assert_eq!(value["proxies"]["default"]["httpProxy"], "http://p:3128");
        assert_eq!(value["experimental"], "enabled");
        assert_eq!(value["auths"]["other.example"]["email"], "o@x");
        // The stale alias of Docker Hub's key is gone, so reads find the new entry.
        assert!(value["auths"].get("index.docker.io").is_none());
        assert_eq!(
            credentials_from_docker_config(&path, "docker.io").expect("read"),
            Some(carol)
        );

        assert!(remove_credentials(&path, "docker.io").expect("remove"));
        assert!(!remove_credentials(&path, "docker.io").expect("remove again"));
        let value = json(&path);
        assert_eq!(value["psFormat"], "table {{.ID}}");
        assert!(value["auths"].get(DOCKER_HUB_AUTH_KEY).is_none());
        assert_eq!(
            credentials_from_docker_config(&path, "other.example").expect("read"),
            Some(Credentials::new("other", "pw"))
        );

        let missing = dir.path().join("missing.json");
        assert!(!remove_credentials(&missing, "docker.io").expect("missing file"));
        assert!(!missing.exists());
    }

    #[test]
    fn refuses_configs_that_are_not_objects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        let carol = Credentials::new("carol", "pw");
        for (text, expected) in [
            ("[]", "the file is not a JSON object"),
            (r#"{"auths":[]}"#, "expected a map"),
        ] {
            std::fs::write(&path, text).expect("write");
            let err = store_credentials(&path, "docker.io", &carol).expect_err("not an object");
            assert!(err.to_string().contains(expected), "{err}");
            assert_eq!(std::fs::read_to_string(&path).expect("read"), text);
        }
    }

    /// A credential helper keeping one entry in `store.json` next to itself.
    const FAKE_HELPER: &str = r#"#!/bin/sh
dir=$(dirname "$0")
case "$1" in
store) cat >"$dir/store.json" ;;
get|erase)
    read -r url
    if [ "$url" = broken ]; then echo "keychain locked" >&2; exit 3; fi
    if [ -f "$dir/store.json" ] && grep -q "\"ServerURL\":\"$url\"" "$dir/store.json"; then
        if [ "$1" = get ]; then cat "$dir/store.json"; else rm "$dir/store.json"; fi
    else
        echo "credentials not found in native keychain"; exit 1
    fi ;;
esac
"#;

    // One test: the script is written and then executed, and only this test forks in this
    // binary, so no other thread can hold it open for writing (ETXTBSY).
    #[test]
    fn credential_helpers_store_get_and_erase() {
        let bin = tempfile::tempdir().expect("tempdir");
        let script = bin.path().join("docker-credential-fake");
        std::fs::write(&script, FAKE_HELPER).expect("write helper");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let search = OsString::from(format!("{}:/usr/bin:/bin", bin.path().display()));
        let search = Some(search.as_os_str());
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");

        // credsStore: everything goes through the helper; the file keeps an empty entry.
        std::fs::write(&path, r#"{"credsStore":"fake","auths":{}}"#).expect("write");
        let dave = Credentials::new("dave", "tok");
        store_in(&path, "docker.io", &dave, search).expect("store");
        let stored = json(&bin.path().join("store.json"));
        assert_eq!(stored["ServerURL"], DOCKER_HUB_AUTH_KEY);
        assert_eq!(stored["Secret"], "tok");
        let value = json(&path);
        assert_eq!(value["auths"][DOCKER_HUB_AUTH_KEY], serde_json::json!({}));
        assert_eq!(value["credsStore"], "fake");
        assert_eq!(lookup(&path, "docker.io", search).expect("get"), Some(dave));
        assert_eq!(lookup(&path, "quay.io", search).expect("get"), None);
        assert!(remove_in(&path, "docker.io", search).expect("erase"));
        assert!(!bin.path().join("store.json").exists());
        assert!(json(&path)["auths"].get(DOCKER_HUB_AUTH_KEY).is_none());
        assert_eq!(lookup(&path, "docker.io", search).expect("get"), None);

        // credHelpers: only for its registry; others use auths.
        let auth = base64::engine::general_purpose::STANDARD.encode("erin:pw");
        let config = format!(
            r#"{{"credHelpers":{{"localhost:5000":"fake"}},"auths":{{"quay.io":{{"auth":"{auth}"}}}}}}"#
        );
        std::fs::write(&path, config).expect("write");
        let frank = Credentials::new("frank", "pw2");
        store_in(&path, "localhost:5000", &frank, search).expect("store");
        assert_eq!(
            lookup(&path, "localhost:5000", search).expect("get"),
            Some(frank)
        );
        assert_eq!(
            lookup(&path, "quay.io", search).expect("get"),
            Some(Credentials::new("erin", "pw"))
        );

        // A failing helper and a missing one are errors naming the helper.
        std::fs::write(&path, r#"{"credHelpers":{"broken":"fake"}}"#).expect("write");
        let err = lookup(&path, "broken", search).expect_err("helper fails");
        assert!(err.to_string().contains("keychain locked"), "{err}");
        std::fs::write(&path, r#"{"credsStore":"nonexistent"}"#).expect("write");
        let err = lookup(&path, "docker.io", search).expect_err("no helper");
        let text = err.to_string();
        assert!(
            text.contains("docker-credential-nonexistent not found on PATH"),
            "{text}"
        );
    }
}
