//! Seccomp profiles in docker's format, and their conversion to the spec's `linux.seccomp`.
//!
//! docker's profile (moby's `profiles/seccomp/default.json`, embedded) keeps syscall groups
//! behind conditions: `includes` (capabilities the container must have, architectures,
//! a minimum kernel) and `excludes` (the opposite). A container's profile keeps the groups
//! whose conditions hold for its capability set, the native architecture and the running
//! kernel, as moby's `setupSeccomp` does.

use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag, LinuxSyscall,
};
use serde::Deserialize;

/// docker's default profile, as moby ships it.
const DEFAULT_PROFILE: &str = include_str!("seccomp_default.json");

/// Why a profile could not be read or converted.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A `--security-opt seccomp=FILE` that could not be read (docker's wording).
    #[error("opening seccomp profile ({path}) failed: {reason}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        reason: String,
    },
    /// The profile is not valid JSON in docker's format.
    #[error("decoding seccomp profile {origin}: {source}")]
    Decode {
        /// Where the profile came from (a path, or `default`).
        origin: String,
        /// serde's reason, with line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The embedded default profile did not decode (a build defect).
    #[error("decoding docker's default seccomp profile: {0}")]
    Default(String),
    /// Both `architectures` and `archMap` are given (moby's rule).
    #[error(
        "'architectures' and 'archMap' were specified in the seccomp profile, use either \
         'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    /// Both `name` and `names` in one syscall entry (moby's rule).
    #[error(
        "'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'"
    )]
    NameAndNames,
    /// Syscall rules without a `defaultAction`.
    #[error("the seccomp profile has syscall rules but no defaultAction")]
    NoDefaultAction,
    /// A `minKernel` that is no kernel version.
    #[error("invalid minKernel {0:?} in the seccomp profile")]
    MinKernel(String),
    /// The running kernel's release could not be read or parsed.
    #[error("reading the running kernel's version: {0}")]
    Kernel(String),
}

/// A seccomp profile in docker's format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The action for syscalls no rule names; empty with no rules means no seccomp.
    #[serde(default)]
    default_action: Option<LinuxSeccompAction>,
    /// The errno of an `SCMP_ACT_ERRNO` default action.
    #[serde(default)]
    default_errno_ret: Option<u32>,
    /// Explicit architectures (exclusive with `archMap`).
    #[serde(default)]
    architectures: Option<Vec<Arch>>,
    /// Architectures by native architecture: only the native one's entry is used.
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    /// Seccomp filter flags.
    #[serde(default)]
    flags: Option<Vec<LinuxSeccompFilterFlag>>,
    /// The seccomp agent's socket for `SCMP_ACT_NOTIFY`.
    #[serde(default)]
    listener_path: Option<String>,
    /// Opaque data for the seccomp agent.
    #[serde(default)]
    listener_metadata: Option<String>,
    /// The rules, each with its conditions.
    #[serde(default)]
    syscalls: Option<Vec<Syscall>>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: Arch,
    #[serde(default)]
    sub_architectures: Option<Vec<Arch>>,
}

/// One rule: syscall names, an action, argument filters, and when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Syscall {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    names: Option<Vec<String>>,
    action: LinuxSeccompAction,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<LinuxSeccompArg>>,
    #[serde(default)]
    includes: Filter,
    #[serde(default)]
    excludes: Filter,
}

/// `includes` / `excludes`: capabilities, architectures (libseccomp's native names such as
/// `amd64`), a minimum kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// A kernel version as moby compares them: `kernel.major.minor`, the rest ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KernelVersion(pub u32, pub u32, pub u32);

impl KernelVersion {
    /// `6.18.0-1-amd64`, `4.8`, `5` → (6, 18, 0), (4, 8, 0), (5, 0, 0); `None` without a
    /// leading number.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.split(['.', '-', '+', '_']).map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let kernel = parts.next().flatten()?;
        let major = parts.next().flatten().unwrap_or(0);
        let minor = parts.next().flatten().unwrap_or(0);
        Some(Self(kernel, major, minor))
    }

    /// The running kernel's version, read once per process.
    pub fn running() -> Result<Self, SeccompError> {
        static RUNNING: OnceLock<Result<KernelVersion, String>> = OnceLock::new();
        RUNNING
            .get_or_init(|| {
                let uts = nix::sys::utsname::uname().map_err(|e| e.to_string())?;
                let release = uts.release().to_string_lossy().into_owned();
                Self::parse(&release).ok_or(release)
            })
            .clone()
            .map_err(SeccompError::Kernel)
    }
}

/// What a profile is converted for: the container's capabilities (`CAP_…` names), the
/// native architecture (libseccomp's name, e.g. `amd64`) and the kernel.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The container's capability set (bounding = effective in berth's specs).
    pub caps: &'a [String],
    /// libseccomp's name of the native architecture.
    pub arch: &'a str,
    /// The running kernel.
    pub kernel: KernelVersion,
}

impl<'a> Target<'a> {
    /// This host, for a container with `caps`.
    pub fn host(caps: &'a [String]) -> Result<Self, SeccompError> {
        Ok(Self {
            caps,
            arch: native_arch(),
            kernel: KernelVersion::running()?,
        })
    }
}

/// libseccomp's name of the architecture berth was built for (moby's `goToNative`).
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "mips" if cfg!(target_endian = "little") => "mipsle",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        other => other,
    }
}

/// The seccomp architecture of a libseccomp native name (moby's `nativeToSeccomp`).
fn seccomp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mips3l64n32" => Arch::ScmpArchMipsel64n32,
        "mipsle" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        _ => return None,
    })
}

impl Profile {
    /// Decode a profile in docker's format; `origin` names it in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, SeccompError> {
        serde_json::from_str(json).map_err(|source| SeccompError::Decode {
            origin: origin.to_owned(),
            source,
        })
    }

    /// docker's default profile, decoded once per process.
    pub fn docker_default() -> Result<&'static Self, SeccompError> {
        static DEFAULT: OnceLock<Result<Profile, String>> = OnceLock::new();
        DEFAULT
            .get_or_init(|| Self::from_json(DEFAULT_PROFILE, "default").map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| SeccompError::Default(e.clone()))
    }

    /// The spec's seccomp section for `target` (moby's `setupSeccomp`); `None` for a profile
    /// with neither a default action nor rules.
    pub fn convert(&self, target: &Target<'_>) -> Result<Option<LinuxSeccomp>, SeccompError> {
        let rules = self.syscalls.as_deref().unwrap_or_default();
        let Some(default_action) = self.default_action else {
            return if rules.is_empty() {
                Ok(None)
            } else {
                Err(SeccompError::NoDefaultAction)
            };
        };
        let mut seccomp = LinuxSeccomp::default();
        seccomp.set_default_action(default_action);
        seccomp.set_default_errno_ret(self.default_errno_ret);
        seccomp.set_architectures(self.architectures(target.arch)?);
        seccomp.set_flags(self.flags.clone());
        seccomp.set_listener_path(self.listener_path.as_ref().map(Into::into));
        seccomp.set_listener_metadata(self.listener_metadata.clone());
        let mut syscalls = Vec::new();
        for rule in rules {
            if rule.applies(target)? {
                syscalls.push(rule.to_spec()?);
            }
        }
        seccomp.set_syscalls(Some(syscalls));
        Ok(Some(seccomp))
    }

    /// `architectures` as given, else the native architecture's `archMap` entry with its
    /// sub-architectures; none (libseccomp's native) when neither names it.
    fn architectures(&self, native: &str) -> Result<Option<Vec<Arch>>, SeccompError> {
        let explicit = self.architectures.clone().filter(|a| !a.is_empty());
        let map = self.arch_map.as_deref().unwrap_or_default();
        if explicit.is_some() && !map.is_empty() {
            return Err(SeccompError::ArchitecturesAndArchMap);
        }
        if explicit.is_some() {
            return Ok(explicit);
        }
        let Some(arch) = seccomp_arch(native) else {
            return Ok(None);
        };
        Ok(map.iter().find(|m| m.architecture == arch).map(|m| {
            std::iter::once(m.architecture)
                .chain(m.sub_architectures.iter().flatten().copied())
                .collect()
        }))
    }
}

impl Syscall {
    /// moby's rules: excluded when the native arch is in `excludes.arches`, any of
    /// `excludes.caps` is held, or the kernel is at least `excludes.minKernel`; kept only when
    /// the native arch is in `includes.arches`, every `includes.caps` is held, and the kernel
    /// is at least `includes.minKernel` (each condition only when given).
    fn applies(&self, target: &Target<'_>) -> Result<bool, SeccompError> {
        let has_cap = |c: &String| target.caps.contains(c);
        let ex = &self.excludes;
        if list(&ex.arches).iter().any(|a| a == target.arch)
            || list(&ex.caps).iter().any(has_cap)
            || at_least(ex.min_kernel.as_deref(), target.kernel)? == Some(true)
        {
            return Ok(false);
        }
        let inc = &self.includes;
        let arches = list(&inc.arches);
        Ok(
            (arches.is_empty() || arches.iter().any(|a| a == target.arch))
                && list(&inc.caps).iter().all(has_cap)
                && at_least(inc.min_kernel.as_deref(), target.kernel)? != Some(false),
        )
    }

    /// The rule in the spec's form: names, action, errno and argument filters, copied.
    fn to_spec(&self) -> Result<LinuxSyscall, SeccompError> {
        let names = match (&self.name, &self.names) {
            (Some(name), Some(names)) if !name.is_empty() && !names.is_empty() => {
                return Err(SeccompError::NameAndNames)
            }
            (Some(name), _) if !name.is_empty() => vec![name.clone()],
            (_, names) => names.clone().unwrap_or_default(),
        };
        let mut syscall = LinuxSyscall::default();
        syscall.set_names(names);
        syscall.set_action(self.action);
        syscall.set_errno_ret(self.errno_ret);
        syscall.set_args(self.args.clone().filter(|a| !a.is_empty()));
        Ok(syscall)
    }
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or_default()
}

/// Whether `kernel` is at least `min`; `None` when no (or an empty) minimum is given.
fn at_least(min: Option<&str>, kernel: KernelVersion) -> Result<Option<bool>, SeccompError> {
    let Some(min) = min.filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let min = KernelVersion::parse(min).ok_or_else(|| SeccompError::MinKernel(min.to_owned()))?;
    Ok(Some(kernel >= min))
}
