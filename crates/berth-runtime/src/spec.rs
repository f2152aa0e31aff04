//! Loading and checking a bundle's `config.json`. Every error names the field that is wrong.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};

/// Errors while loading a bundle's configuration.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// config.json could not be read.
    #[error("read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// config.json is not a valid runtime-spec document; `field` is the JSON path.
    #[error("invalid config.json: {field}: {message}")]
    Invalid {
        /// JSON path of the offending field, e.g. `linux.namespaces[1].type`.
        field: String,
        /// The parser's complaint.
        message: String,
    },
    /// The rootfs directory does not exist.
    #[error("invalid config.json: root.path: rootfs {0} does not exist")]
    MissingRootfs(PathBuf),
}

/// A parsed, checked bundle.
pub struct Bundle {
    /// Absolute bundle directory.
    pub dir: PathBuf,
    /// Absolute rootfs directory.
    pub rootfs: PathBuf,
    /// The configuration.
    pub spec: Spec,
}

/// Load `<bundle>/config.json` and check what the runtime relies on.
pub fn load(bundle: &Path) -> Result<Bundle, SpecError> {
    let dir = std::path::absolute(bundle).map_err(|e| SpecError::Read {
        path: bundle.to_path_buf(),
        cause: crate::util::cause(&e),
    })?;
    let path = dir.join("config.json");
    let text = std::fs::read(&path).map_err(|e| SpecError::Read {
        path: path.clone(),
        cause: crate::util::cause(&e),
    })?;
    let spec = parse(&text)?;
    check(&spec)?;
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| invalid("root", "missing"))?;
    let rootfs = dir.join(root.path());
    if !rootfs.is_dir() {
        return Err(SpecError::MissingRootfs(rootfs));
    }
    Ok(Bundle { dir, rootfs, spec })
}

/// Parse a config document, reporting the JSON path of any error.
pub fn parse(text: &[u8]) -> Result<Spec, SpecError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut de).map_err(parse_error)
}

fn parse_error(e: serde_path_to_error::Error<serde_json::Error>) -> SpecError {
    {
        let field = e.path().to_string();
        let message = e.inner().to_string();
        // serde_json appends " at line L column C"; the field path says more.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_string(),
            None => message,
        };
        SpecError::Invalid { field, message }
    }
}

fn invalid(field: &str, message: &str) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The checks serde cannot express.
fn check(spec: &Spec) -> Result<(), SpecError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| invalid("process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(invalid("process.args", "must contain at least one element"));
    }
    if !process.cwd().is_absolute() {
        return Err(invalid("process.cwd", "must be an absolute path"));
    }
    let linux = spec
        .linux()
        .as_ref()
        .ok_or_else(|| invalid("linux", "missing"))?;
    let mut seen = HashSet::new();
    for (i, ns) in linux.namespaces().iter().flatten().enumerate() {
        if !seen.insert(ns.typ()) {
            return Err(invalid(
                &format!("linux.namespaces[{i}].type"),
                &format!("namespace {} listed twice", ns_name(ns.typ())),
            ));
        }
    }
    let has_userns = seen.contains(&LinuxNamespaceType::User);
    let maps = linux.uid_mappings().is_some() || linux.gid_mappings().is_some();
    if maps && !has_userns {
        return Err(invalid(
            "linux.uidMappings",
            "id mappings need a user namespace",
        ));
    }
    if spec.hostname().is_some() && !seen.contains(&LinuxNamespaceType::Uts) {
        return Err(invalid(
            "hostname",
            "setting the hostname needs a uts namespace",
        ));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        if !m.destination().is_absolute() {
            return Err(invalid(
                &format!("mounts[{i}].destination"),
                &format!("{} is not an absolute path", m.destination().display()),
            ));
        }
    }
    Ok(())
}

/// The runtime-spec name of a namespace type.
pub fn ns_name(typ: LinuxNamespaceType) -> &'static str {
    match typ {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "rootfs"},
            "process": {"args": ["/bin/true"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]}
        })
    }

    fn check_json(v: &serde_json::Value) -> Result<Spec, SpecError> {
        let spec = parse(v.to_string().as_bytes())?;
        check(&spec)?;
        Ok(spec)
    }

    #[test]
    fn minimal_config_is_accepted() {
        check_json(&minimal()).unwrap();
    }

    #[test]
    fn runtime_spec_iops_throttles_are_kept() {
        let mut v = minimal();
        v["linux"]["resources"] = serde_json::json!({"blockIO": {
            "throttleReadIOPSDevice": [{"major": 7, "minor": 0, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 7, "minor": 0, "rate": 200}]
        }});
        let spec = check_json(&v).unwrap();
        let resources = spec.linux().clone().unwrap().resources().clone().unwrap();
        let block_io = resources.block_io().clone().unwrap();
        let rate = |list: &Option<Vec<oci_spec::runtime::LinuxThrottleDevice>>| {
            list.as_ref().map(|l| l[0].rate())
        };
        assert_eq!(rate(block_io.throttle_read_iops_device()), Some(100));
        assert_eq!(rate(block_io.throttle_write_iops_device()), Some(200));
    }

    #[test]
    fn unknown_namespace_names_the_field() {
        let mut v = minimal();
        v["linux"]["namespaces"][1]["type"] = "bogus".into();
        let err = check_json(&v).unwrap_err().to_string();
        assert!(err.contains("linux.namespaces[1].type"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let mut v = minimal();
        v["process"]["args"] = 5.into();
        let err = check_json(&v).unwrap_err().to_string();
        assert!(err.contains("process.args"), "{err}");
    }

    #[test]
    fn duplicate_namespace_is_rejected() {
        let mut v = minimal();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        let err = check_json(&v).unwrap_err().to_string();
        assert!(
            err.contains("linux.namespaces[1].type: namespace pid listed twice"),
            "{err}"
        );
    }

    #[test]
    fn empty_args_and_relative_cwd_are_rejected() {
        let mut v = minimal();
        v["process"]["args"] = serde_json::json!([]);
        assert!(check_json(&v)
            .unwrap_err()
            .to_string()
            .contains("process.args"));
        let mut v = minimal();
        v["process"]["cwd"] = "relative".into();
        assert!(check_json(&v)
            .unwrap_err()
            .to_string()
            .contains("process.cwd"));
    }
}
