//! Parsers for `-v`, `--mount` and `--tmpfs`, with docker's error texts.

use super::options::{Propagation, TmpfsMount};

/// A mount flag docker would reject; the message is docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountParseError {
    /// `-v` with too many or empty parts.
    #[error("invalid volume specification: '{0}'")]
    Spec(String),
    /// `-v` with an unknown or repeated option.
    #[error("invalid mode: {0}")]
    Mode(String),
    /// A relative container path.
    #[error("invalid mount config for type \"{kind}\": invalid mount path: '{path}' mount path must be absolute")]
    Relative {
        /// bind, volume, tmpfs.
        kind: &'static str,
        /// The path.
        path: String,
    },
    /// Mounting over `/`.
    #[error("invalid specification: destination can't be '/'")]
    Root,
    /// `--mount` field without `=`.
    #[error("invalid field '{0}' must be a key=value pair")]
    Field(String),
    /// `--mount` with an unknown key.
    #[error("unexpected key '{key}' in '{field}'")]
    Key {
        /// The key.
        key: String,
        /// The field.
        field: String,
    },
    /// `--mount readonly=maybe`.
    #[error("invalid value for {key}: {value}")]
    Value {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// `--mount` without target.
    #[error("target is required")]
    NoTarget,
    /// `--mount type=bind` without source.
    #[error("invalid mount config for type \"bind\": field Source must not be empty")]
    NoSource,
    /// `--mount type=npipe`.
    #[error("invalid mount config: mount type unknown: {0:?}")]
    Type(String),
    /// `--tmpfs` with an option tmpfs does not take.
    #[error("invalid tmpfs option {0:?}")]
    TmpfsOption(String),
}

/// Where a `-v` / `--mount` takes its content from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeSource {
    /// A host path (bind).
    Bind(String),
    /// A named volume.
    Named(String),
    /// A new anonymous volume.
    Anonymous,
}

/// A parsed `-v` or `--mount` (volume or bind); the caller resolves volumes to host paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Source.
    pub source: VolumeSource,
    /// Container path.
    pub target: String,
    /// `ro`.
    pub read_only: bool,
    /// `shared`, `rslave`, ...; rprivate when not given.
    pub propagation: Propagation,
    /// SELinux relabel: `z` (shared) or `Z` (private).
    pub relabel: Option<char>,
    /// `nocopy`: don't copy the image's content into a new volume.
    pub no_copy: bool,
}

/// The result of `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// `type=bind` or `type=volume`.
    Volume(VolumeSpec),
    /// `type=tmpfs`.
    Tmpfs(TmpfsMount),
}

/// `-v [host-or-name:]container[:opts]`.
pub fn volume(s: &str) -> Result<VolumeSpec, MountParseError> {
    let parts: Vec<&str> = s.split(':').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(MountParseError::Spec(s.to_owned()));
    }
    let (source, target, mode) = match parts.as_slice() {
        [target] => (VolumeSource::Anonymous, *target, ""),
        [source, target] => (source_of(source), *target, ""),
        [source, target, mode] => (source_of(source), *target, *mode),
        _ => return Err(MountParseError::Spec(s.to_owned())),
    };
    check_target("volume", target)?;
    let mut spec = VolumeSpec {
        source,
        target: target.to_owned(),
        read_only: false,
        propagation: Propagation::default(),
        relabel: None,
        no_copy: false,
    };
    apply_modes(&mut spec, mode)?;
    Ok(spec)
}

fn source_of(source: &str) -> VolumeSource {
    if source.starts_with('/') || source.starts_with('.') {
        VolumeSource::Bind(source.to_owned())
    } else {
        VolumeSource::Named(source.to_owned())
    }
}

fn check_target(kind: &'static str, target: &str) -> Result<(), MountParseError> {
    if !target.starts_with('/') {
        return Err(MountParseError::Relative {
            kind,
            path: target.to_owned(),
        });
    }
    if target.trim_end_matches('/').is_empty() {
        return Err(MountParseError::Root);
    }
    Ok(())
}

/// `ro|rw`, `z|Z`, `nocopy`, one propagation; each kind at most once.
fn apply_modes(spec: &mut VolumeSpec, mode: &str) -> Result<(), MountParseError> {
    if mode.is_empty() {
        return Ok(());
    }
    let bad = || MountParseError::Mode(mode.to_owned());
    let (mut rw, mut label, mut propagation, mut copy) = (false, false, false, false);
    for option in mode.split(',') {
        let seen = match option {
            "ro" | "rw" => {
                spec.read_only = option == "ro";
                &mut rw
            }
            "z" | "Z" => {
                spec.relabel = option.chars().next();
                &mut label
            }
            "nocopy" => {
                spec.no_copy = true;
                &mut copy
            }
            other => {
                spec.propagation = Propagation::from_name(other).ok_or_else(bad)?;
                &mut propagation
            }
        };
        if std::mem::replace(seen, true) {
            return Err(bad());
        }
    }
    if spec.no_copy && matches!(spec.source, VolumeSource::Bind(_)) {
        return Err(bad());
    }
    Ok(())
}

/// `--mount type=bind,source=..,target=..,readonly` (also `volume` and `tmpfs`).
pub fn mount(s: &str) -> Result<MountSpec, MountParseError> {
    let mut fields = MountFields::default();
    for field in s.split(',') {
        fields.set(field)?;
    }
    let target = fields.target.clone().ok_or(MountParseError::NoTarget)?;
    match fields.kind.as_str() {
        "tmpfs" => {
            check_target("tmpfs", &target)?;
            Ok(MountSpec::Tmpfs(TmpfsMount {
                destination: target,
                options: fields.tmpfs_options(),
            }))
        }
        "bind" => {
            let source = fields.source.clone().ok_or(MountParseError::NoSource)?;
            check_target("bind", &target)?;
            Ok(MountSpec::Volume(
                fields.volume(VolumeSource::Bind(source), target),
            ))
        }
        "volume" => {
            check_target("volume", &target)?;
            let source = match fields.source.clone() {
                Some(name) => VolumeSource::Named(name),
                None => VolumeSource::Anonymous,
            };
            Ok(MountSpec::Volume(fields.volume(source, target)))
        }
        other => Err(MountParseError::Type(other.to_owned())),
    }
}

#[derive(Default)]
struct MountFields {
    kind: String,
    source: Option<String>,
    target: Option<String>,
    read_only: bool,
    no_copy: bool,
    propagation: Propagation,
    tmpfs_size: Option<String>,
    tmpfs_mode: Option<String>,
}

impl MountFields {
    fn set(&mut self, field: &str) -> Result<(), MountParseError> {
        let (key, value) = match field.split_once('=') {
            Some((key, value)) => (key.to_ascii_lowercase(), Some(value)),
            None => (field.to_ascii_lowercase(), None),
        };
        if self.kind.is_empty() {
            self.kind = "volume".to_owned();
        }
        let flag = |key: &str| parse_bool(key, value.unwrap_or("true"));
        match (key.as_str(), value) {
            ("readonly" | "ro", _) => self.read_only = flag(&key)?,
            ("volume-nocopy", _) => self.no_copy = flag(&key)?,
            (_, None) => return Err(MountParseError::Field(field.to_owned())),
            ("type", Some(v)) => self.kind = v.to_ascii_lowercase(),
            ("source" | "src", Some(v)) => self.source = Some(v.to_owned()),
            ("target" | "destination" | "dst", Some(v)) => self.target = Some(v.to_owned()),
            ("bind-propagation", Some(v)) => {
                self.propagation =
                    Propagation::from_name(v).ok_or_else(|| MountParseError::Value {
                        key: key.clone(),
                        value: v.to_owned(),
                    })?
            }
            ("tmpfs-size", Some(v)) => self.tmpfs_size = Some(v.to_owned()),
            ("tmpfs-mode", Some(v)) => self.tmpfs_mode = Some(v.to_owned()),
            ("consistency" | "volume-driver" | "volume-label" | "volume-opt", Some(_)) => {}
            (_, Some(_)) => {
                return Err(MountParseError::Key {
                    key,
                    field: field.to_owned(),
                })
            }
        }
        Ok(())
    }

    fn volume(&self, source: VolumeSource, target: String) -> VolumeSpec {
        VolumeSpec {
            source,
            target,
            read_only: self.read_only,
            propagation: self.propagation,
            relabel: None,
            no_copy: self.no_copy,
        }
    }

    fn tmpfs_options(&self) -> Vec<String> {
        let mut options = Vec::new();
        if self.read_only {
            options.push("ro".to_owned());
        }
        if let Some(size) = &self.tmpfs_size {
            options.push(format!("size={size}"));
        }
        if let Some(mode) = &self.tmpfs_mode {
            options.push(format!("mode={mode}"));
        }
        options
    }
}

fn parse_bool(key: &str, value: &str) -> Result<bool, MountParseError> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        _ => Err(MountParseError::Value {
            key: key.to_owned(),
            value: value.to_owned(),
        }),
    }
}

/// Mount flags tmpfs accepts besides its data options.
const TMPFS_FLAGS: [&str; 20] = [
    "ro",
    "rw",
    "suid",
    "nosuid",
    "dev",
    "nodev",
    "exec",
    "noexec",
    "sync",
    "async",
    "dirsync",
    "remount",
    "mand",
    "nomand",
    "atime",
    "noatime",
    "diratime",
    "nodiratime",
    "relatime",
    "strictatime",
];
const TMPFS_DATA: [&str; 7] = [
    "size",
    "mode",
    "uid",
    "gid",
    "nr_inodes",
    "nr_blocks",
    "mpol",
];

/// `--tmpfs /run[:rw,size=64m]`.
pub fn tmpfs(s: &str) -> Result<TmpfsMount, MountParseError> {
    let (destination, options) = s.split_once(':').unwrap_or((s, ""));
    check_target("tmpfs", destination)?;
    let options: Vec<String> = options
        .split(',')
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    for option in &options {
        let name = option.split_once('=').map_or(option.as_str(), |(n, _)| n);
        let known = if option.contains('=') {
            TMPFS_DATA.contains(&name)
        } else {
            TMPFS_FLAGS.contains(&name) || Propagation::from_name(name).is_some()
        };
        if !known {
            return Err(MountParseError::TmpfsOption(name.to_owned()));
        }
    }
    Ok(TmpfsMount {
        destination: destination.to_owned(),
        options,
    })
}
