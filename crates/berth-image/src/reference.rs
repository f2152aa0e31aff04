//! Image references: `[host[:port]/]path[:tag][@sha256:hex]`, normalized like docker's.

use std::fmt;
use std::str::FromStr;

use crate::digest::{Digest, DigestError};

/// The registry used when a reference names none.
pub const DEFAULT_REGISTRY: &str = "docker.io";
/// The host that serves the distribution API for [`DEFAULT_REGISTRY`].
pub const DEFAULT_REGISTRY_API_HOST: &str = "registry-1.docker.io";
/// The tag used when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

const MAX_NAME_LEN: usize = 255;
const MAX_TAG_LEN: usize = 128;

/// Errors from parsing a reference; each names the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {input:?}: empty name")]
    Empty { input: String },
    #[error("invalid reference {input:?}: repository name must be lowercase")]
    Uppercase { input: String },
    #[error("invalid reference {input:?}: bad path component {component:?} (lowercase letters, digits and single . _ __ or - runs between them)")]
    BadComponent { input: String, component: String },
    #[error("invalid reference {input:?}: bad registry host {host:?}")]
    BadHost { input: String, host: String },
    #[error("invalid reference {input:?}: bad tag {tag:?} (letters, digits, _ . -, at most 128, not starting with . or -)")]
    BadTag { input: String, tag: String },
    #[error("invalid reference {input:?}: name longer than 255 characters")]
    TooLong { input: String },
    #[error("invalid reference {input:?}: {source}")]
    BadDigest { input: String, source: DigestError },
}

/// A normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// The registry as written (`docker.io`, `localhost:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The host (and port) that serves the registry API.
    pub fn api_host(&self) -> &str {
        if self.registry == DEFAULT_REGISTRY {
            DEFAULT_REGISTRY_API_HOST
        } else {
            &self.registry
        }
    }

    /// The repository path within the registry (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// What to ask the manifests endpoint for: the digest if there is one, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(digest), _) => digest.to_string(),
            (None, Some(tag)) => tag.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }

    /// The same repository with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        check_tag(tag, tag)?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to a digest, keeping no tag.
    pub fn with_digest(&self, digest: Digest) -> Self {
        Reference {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let (rest, digest) = split_digest(input)?;
        let (name, tag) = split_tag(rest);
        if name.is_empty() {
            return Err(ReferenceError::Empty {
                input: input.to_owned(),
            });
        }
        let (registry, repository) = split_registry(name);
        check_host(input, &registry)?;
        check_repository(input, &repository)?;
        if let Some(tag) = tag {
            check_tag(input, tag)?;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Reference {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

fn split_digest(input: &str) -> Result<(&str, Option<Digest>), ReferenceError> {
    let Some((rest, digest)) = input.split_once('@') else {
        return Ok((input, None));
    };
    let digest = digest.parse().map_err(|source| ReferenceError::BadDigest {
        input: input.to_owned(),
        source,
    })?;
    Ok((rest, Some(digest)))
}

/// Splits `name:tag`; a `:` before the last `/` belongs to a host's port.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    }
}

/// Docker's rule: the first component is a host if it has a `.` or `:`, is
/// `localhost`, or has uppercase letters.
fn split_registry(name: &str) -> (String, String) {
    let (registry, path) = match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (first, rest),
        _ => (DEFAULT_REGISTRY, name),
    };
    let registry = if registry == "index.docker.io" {
        DEFAULT_REGISTRY
    } else {
        registry
    };
    let path = if registry == DEFAULT_REGISTRY && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_owned()
    };
    (registry.to_owned(), path)
}

fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':'])
        || component == "localhost"
        || component.bytes().any(|b| b.is_ascii_uppercase())
}

fn check_host(input: &str, host: &str) -> Result<(), ReferenceError> {
    let bad = || ReferenceError::BadHost {
        input: input.to_owned(),
        host: host.to_owned(),
    };
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) if !name.ends_with(':') => (name, Some(port)),
        _ => (host, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
    }
    let labels_ok = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if labels_ok || is_bracketed_ipv6(name) {
        Ok(())
    } else {
        Err(bad())
    }
}

fn is_bracketed_ipv6(name: &str) -> bool {
    name.strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .is_some_and(|addr| addr.parse::<std::net::Ipv6Addr>().is_ok())
}

fn check_repository(input: &str, repository: &str) -> Result<(), ReferenceError> {
    if repository.len() > MAX_NAME_LEN {
        return Err(ReferenceError::TooLong {
            input: input.to_owned(),
        });
    }
    if repository.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::Uppercase {
            input: input.to_owned(),
        });
    }
    for component in repository.split('/') {
        if !is_path_component(component) {
            return Err(ReferenceError::BadComponent {
                input: input.to_owned(),
                component: component.to_owned(),
            });
        }
    }
    Ok(())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn is_path_component(component: &str) -> bool {
    let alnum = |c: &str| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let mut rest = component;
    loop {
        let end = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit()))
            .unwrap_or(rest.len());
        if !alnum(&rest[..end]) {
            return false;
        }
        rest = &rest[end..];
        if rest.is_empty() {
            return true;
        }
        let sep_end = rest
            .find(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            .unwrap_or(rest.len());
        let sep = &rest[..sep_end];
        let sep_ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|b| b == b'-');
        if !sep_ok {
            return false;
        }
        rest = &rest[sep_end..];
    }
}

/// `[\w][\w.-]{0,127}`
fn check_tag(input: &str, tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= MAX_TAG_LEN
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::BadTag {
            input: input.to_owned(),
            tag: tag.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn valid_references_normalize_like_docker() {
        let cases: &[(&str, &str, &str, &str)] = &[
            // input, canonical display, api host, repository
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "registry-1.docker.io",
                "library/busybox",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "registry-1.docker.io",
                "library/busybox",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "registry-1.docker.io",
                "library/busybox",
            ),
            (
                "user/app:v1.0-rc_2",
                "docker.io/user/app:v1.0-rc_2",
                "registry-1.docker.io",
                "user/app",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "registry-1.docker.io",
                "library/busybox",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "registry-1.docker.io",
                "library/busybox",
            ),
            (
                "quay.io/org/sub/app",
                "quay.io/org/sub/app:latest",
                "quay.io",
                "org/sub/app",
            ),
            ("localhost/app", "localhost/app:latest", "localhost", "app"),
            (
                "localhost:5000/app:dev",
                "localhost:5000/app:dev",
                "localhost:5000",
                "app",
            ),
            (
                "127.0.0.1:5000/a/b",
                "127.0.0.1:5000/a/b:latest",
                "127.0.0.1:5000",
                "a/b",
            ),
            (
                "[::1]:5000/app",
                "[::1]:5000/app:latest",
                "[::1]:5000",
                "app",
            ),
            (
                "my-registry.example.com/x__y/a.b-c--d",
                "my-registry.example.com/x__y/a.b-c--d:latest",
                "my-registry.example.com",
                "x__y/a.b-c--d",
            ),
        ];
        for (input, display, host, repository) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *display, "{input}");
            assert_eq!(r.api_host(), *host, "{input}");
            assert_eq!(r.repository(), *repository, "{input}");
        }
    }

    #[test]
    fn digests_pin_references() {
        let r: Reference = format!("busybox@{D}").parse().expect("parse");
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{D}"));
        assert_eq!((r.tag(), r.manifest_reference()), (None, D.to_owned()));
        let r: Reference = format!("localhost:5000/app:v1@{D}").parse().expect("parse");
        assert_eq!(r.to_string(), format!("localhost:5000/app:v1@{D}"));
        assert_eq!(r.manifest_reference(), D);
    }

    #[test]
    fn invalid_references_say_why() {
        let cases: &[(&str, &str)] = &[
            ("", "empty name"),
            (":tag", "empty name"),
            ("Busybox", "must be lowercase"),
            ("docker.io/Busybox", "must be lowercase"),
            ("busybox:", "bad tag \"\""),
            ("busybox:-x", "bad tag \"-x\""),
            ("busybox:a/b", "bad registry host \"busybox:a\""),
            ("busybox:tag!", "bad tag"),
            ("a//b", "bad path component \"\""),
            ("a/b_", "bad path component \"b_\""),
            ("a/.b", "bad path component \".b\""),
            ("a/b___c", "bad path component"),
            ("localhost:port/app", "bad registry host \"localhost:port\""),
            ("exa_mple.com/app", "bad registry host"),
            ("busybox@sha256:abc", "64 lowercase hex"),
            ("busybox@md5:abc", "unsupported algorithm"),
            ("busybox@", "expected \"algorithm:hex\""),
        ];
        for (input, message) in cases {
            let err = input.parse::<Reference>().expect_err(input).to_string();
            assert!(
                err.contains(message),
                "{input:?}: got {err:?}, wanted {message:?}"
            );
            assert!(
                err.contains(&format!("{input:?}")),
                "{input:?}: error does not name the input: {err}"
            );
        }
        let long = format!("a/{}", "b".repeat(300));
        assert!(long
            .parse::<Reference>()
            .expect_err("long")
            .to_string()
            .contains("longer than 255"));
        let tag = format!("busybox:{}", "t".repeat(129));
        assert!(tag
            .parse::<Reference>()
            .expect_err("tag")
            .to_string()
            .contains("bad tag"));
    }
}
