//! Parsers for the docker string syntaxes of `run` flags, with docker's error texts.

/// A flag value docker would reject; the message is docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// `-m`, `--memory-swap`, ...
    #[error("invalid size: '{0}'")]
    Size(String),
    /// `--cpus`.
    #[error("failed to parse {0} as a rational number")]
    Cpus(String),
    /// `--cpus` with more than nine decimals.
    #[error("value is too precise")]
    CpusPrecision(String),
    /// `--ulimit` without `=`.
    #[error("invalid ulimit argument: {0}")]
    UlimitArgument(String),
    /// `--ulimit` with an unknown name.
    #[error("invalid ulimit type: {0}")]
    UlimitType(String),
    /// `--ulimit` with more than soft:hard.
    #[error("too many limit value arguments - {0}, can only have up to two, `soft[:hard]`")]
    UlimitValues(String),
    /// `--ulimit` with a value that is not an integer.
    #[error("strconv.ParseInt: parsing \"{0}\": invalid syntax")]
    UlimitNumber(String),
    /// `--ulimit` soft above hard.
    #[error("ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")]
    UlimitOrder {
        /// Soft.
        soft: i64,
        /// Hard.
        hard: i64,
    },
    /// `--sysctl` not namespaced.
    #[error("sysctl '{0}' is not whitelisted")]
    Sysctl(String),
    /// `-e =V`.
    #[error("invalid environment variable: {0}")]
    Env(String),
    /// `--env-file` line with whitespace in the name.
    #[error("poorly formatted environment: variable '{0}' contains whitespaces")]
    EnvFileWhitespace(String),
    /// `--env-file` line `=V`.
    #[error("poorly formatted environment: no variable name on line '{0}'")]
    EnvFileNoName(String),
    /// `--device a:b:c:d`.
    #[error("invalid device specification: {0}")]
    Device(String),
    /// `--device` with a bad cgroup mode.
    #[error("bad mode specified: {0}")]
    DeviceMode(String),
    /// `--device` with a relative container path.
    #[error("{0} is not an absolute path")]
    DevicePath(String),
    /// `--device-read-bps` without `:`.
    #[error("bad format: {0}")]
    ThrottleFormat(String),
    /// `--device-read-bps` with a path outside /dev.
    #[error("bad format for device path: {0}")]
    ThrottlePath(String),
    /// `--device-read-bps` with a bad rate.
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb")]
    ThrottleBps(String),
    /// `--device-read-iops` with a bad rate.
    #[error("invalid rate for device: {0}. The correct format is <device-path>:<number>. Number must be a positive integer")]
    ThrottleIops(String),
    /// `--security-opt` docker does not know.
    #[error("invalid --security-opt: {0:?}")]
    SecurityOpt(String),
    /// `mask=`/`unmask=` with a path that is not absolute.
    #[error("invalid --security-opt {0}: {1:?} is not an absolute path")]
    MaskPath(&'static str, String),
}

/// docker's `RAMInBytes` (go-units): `512m`, `1.5g`, `1024`, `64kb`, `2GiB`; binary units.
pub fn ram_in_bytes(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Size(s.to_owned());
    let digits_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(digits_end);
    let valid_number = !number.is_empty()
        && number
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if !valid_number {
        return Err(bad());
    }
    let value: f64 = number.parse().map_err(|_| bad())?;
    let multiplier = size_multiplier(suffix.strip_prefix(' ').unwrap_or(suffix)).ok_or_else(bad)?;
    Ok((value * multiplier as f64) as i64)
}

/// `[kmgtp]?i?b?`, case-insensitive, as a power of 1024.
fn size_multiplier(suffix: &str) -> Option<i64> {
    let lower = suffix.to_ascii_lowercase();
    let mut rest = lower.as_str();
    let mut multiplier = 1i64;
    if let Some(c) = rest.chars().next() {
        if let Some(power) = "kmgtp".find(c) {
            multiplier = 1024i64.pow(power as u32 + 1);
            rest = &rest[1..];
        }
    }
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    rest.is_empty().then_some(multiplier)
}

/// `--memory-swap`: `-1` (unlimited) or a size.
pub fn memory_swap(s: &str) -> Result<i64, ParseError> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// `--cpus 1.5` in billionths of a CPU (docker's NanoCPUs).
pub fn nano_cpus(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::Cpus(s.to_owned());
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(ParseError::CpusPrecision(s.to_owned()));
    }
    let whole: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let nanos: i64 = format!("{frac:0<9}").parse().map_err(|_| bad())?;
    whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(bad)
}

const ULIMIT_NAMES: [&str; 15] = [
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit nofile=1024:2048` (or `=1024`, soft = hard); `-1` is unlimited.
pub fn ulimit(s: &str) -> Result<super::Ulimit, ParseError> {
    let (name, values) = s
        .split_once('=')
        .ok_or_else(|| ParseError::UlimitArgument(s.to_owned()))?;
    if !ULIMIT_NAMES.contains(&name) {
        return Err(ParseError::UlimitType(name.to_owned()));
    }
    let number = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| ParseError::UlimitNumber(v.to_owned()))
    };
    let parts: Vec<&str> = values.split(':').collect();
    let (soft, hard) = match parts.as_slice() {
        [soft] => (number(soft)?, number(soft)?),
        [soft, hard] => (number(soft)?, number(hard)?),
        _ => return Err(ParseError::UlimitValues(values.to_owned())),
    };
    if hard != -1 && soft > hard {
        return Err(ParseError::UlimitOrder { soft, hard });
    }
    let limit = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
    Ok(super::Ulimit {
        name: name.to_owned(),
        soft: limit(soft),
        hard: limit(hard),
    })
}

const SYSCTL_IPC: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Whether a sysctl belongs to the IPC namespace (docker's list plus `fs.mqueue.`).
pub fn is_ipc_sysctl(key: &str) -> bool {
    SYSCTL_IPC.contains(&key) || key.starts_with("fs.mqueue.")
}

/// `--sysctl k=v`: only namespaced sysctls (docker's allowlist: IPC ones and `net.`).
pub fn sysctl(s: &str) -> Result<(String, String), ParseError> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| ParseError::Sysctl(s.to_owned()))?;
    if is_ipc_sysctl(key) || key.starts_with("net.") {
        return Ok((key.to_owned(), value.to_owned()));
    }
    Err(ParseError::Sysctl(s.to_owned()))
}

/// `-e K=V`, or `-e K` taking K from `lookup` (the caller's environment); an unset K stays
/// bare, which unsets it in the container (docker's rule).
pub fn env(s: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<String, ParseError> {
    let (key, has_value) = match s.split_once('=') {
        Some((key, _)) => (key, true),
        None => (s, false),
    };
    if key.is_empty() {
        return Err(ParseError::Env(s.to_owned()));
    }
    if has_value {
        return Ok(s.to_owned());
    }
    Ok(match lookup(key) {
        Some(value) => format!("{key}={value}"),
        None => s.to_owned(),
    })
}

/// The lines of an `--env-file` (a UTF-8 BOM skipped): `#` comments and blank lines skipped, `K=V` kept as is,
/// `K` looked up like `-e K`.
pub fn env_file(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ParseError> {
    let mut out = Vec::new();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((name, value)) => (name.trim_start(), Some(value)),
            None => (line, None),
        };
        if name.contains(char::is_whitespace) {
            return Err(ParseError::EnvFileWhitespace(name.to_owned()));
        }
        if name.is_empty() {
            return Err(ParseError::EnvFileNoName(line.to_owned()));
        }
        out.push(match (value, lookup(name)) {
            (Some(value), _) => format!("{name}={value}"),
            (None, Some(found)) => format!("{name}={found}"),
            (None, None) => name.to_owned(),
        });
    }
    Ok(out)
}

/// `--device HOST[:CONTAINER][:PERMISSIONS]`, before the host node is looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// Host path.
    pub host: String,
    /// Container path (the host path by default).
    pub container: String,
    /// Subset of `rwm` (all by default).
    pub permissions: String,
}

fn valid_device_mode(mode: &str) -> bool {
    !mode.is_empty()
        && mode.len() <= 3
        && mode.chars().all(|c| "rwm".contains(c))
        && mode
            .chars()
            .enumerate()
            .all(|(i, c)| !mode[..i].contains(c))
}

/// `--device /dev/fuse[:/dev/fuse][:rwm]`.
pub fn device(s: &str) -> Result<DeviceSpec, ParseError> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, container, permissions) = match parts.as_slice() {
        [host] => (*host, *host, "rwm"),
        [host, second] if valid_device_mode(second) => (*host, *host, *second),
        [host, container] => (*host, *container, "rwm"),
        [host, container, mode] => (*host, *container, *mode),
        _ => return Err(ParseError::Device(s.to_owned())),
    };
    if !valid_device_mode(permissions) {
        return Err(ParseError::DeviceMode(s.to_owned()));
    }
    if !container.starts_with('/') {
        return Err(ParseError::DevicePath(container.to_owned()));
    }
    Ok(DeviceSpec {
        host: host.to_owned(),
        container: container.to_owned(),
        permissions: permissions.to_owned(),
    })
}

/// `--device-read-bps /dev/sda:1mb` (and `--device-write-bps`): path and bytes per second.
pub fn throttle_bps(s: &str) -> Result<(String, u64), ParseError> {
    let (path, rate) = throttle_split(s)?;
    let bytes = ram_in_bytes(rate).map_err(|_| ParseError::ThrottleBps(s.to_owned()))?;
    let bytes = u64::try_from(bytes).map_err(|_| ParseError::ThrottleBps(s.to_owned()))?;
    Ok((path.to_owned(), bytes))
}

/// `--device-read-iops /dev/sda:1000` (and `--device-write-iops`).
pub fn throttle_iops(s: &str) -> Result<(String, u64), ParseError> {
    let (path, rate) = throttle_split(s)?;
    let ops = rate
        .parse::<u64>()
        .map_err(|_| ParseError::ThrottleIops(s.to_owned()))?;
    Ok((path.to_owned(), ops))
}

fn throttle_split(s: &str) -> Result<(&str, &str), ParseError> {
    let parts: Vec<&str> = s.split(':').collect();
    let [path, rate] = parts.as_slice() else {
        return Err(ParseError::ThrottleFormat(s.to_owned()));
    };
    if !path.starts_with("/dev/") {
        return Err(ParseError::ThrottlePath(s.to_owned()));
    }
    Ok((path, rate))
}

/// What a `--security-opt` asks for (the parts the spec uses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityOpt {
    /// `no-new-privileges[:true|false]` / `no-new-privileges=true`.
    NoNewPrivileges(bool),
    /// `seccomp=unconfined`.
    SeccompUnconfined,
    /// `seccomp=PROFILE` (a path, loaded by the caller).
    SeccompProfile(String),
    /// `mask=/a:/b`: more paths to mask (podman).
    Mask(Vec<String>),
    /// `unmask=/a:/b` or `unmask=ALL`: masked or read-only paths to leave alone (podman).
    /// A path may end in `/*`: every default path under that directory.
    Unmask(Vec<String>),
    /// `label=...`, `apparmor=...`: accepted, not applied here.
    Other(String),
}

/// The colon-separated absolute paths of `mask=` / `unmask=`.
fn mask_paths(key: &'static str, value: &str) -> Result<Vec<String>, ParseError> {
    value
        .split(':')
        .map(|p| {
            if p.starts_with('/') {
                Ok(p.to_owned())
            } else {
                Err(ParseError::MaskPath(key, p.to_owned()))
            }
        })
        .collect()
}

/// `--security-opt`.
pub fn security_opt(s: &str) -> Result<SecurityOpt, ParseError> {
    if s == "no-new-privileges" {
        return Ok(SecurityOpt::NoNewPrivileges(true));
    }
    let (key, value) = s
        .split_once('=')
        .or_else(|| s.split_once(':'))
        .ok_or_else(|| ParseError::SecurityOpt(s.to_owned()))?;
    match (key, value) {
        ("no-new-privileges", "true") => Ok(SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges", "false") => Ok(SecurityOpt::NoNewPrivileges(false)),
        ("seccomp", "unconfined") => Ok(SecurityOpt::SeccompUnconfined),
        ("seccomp", profile) => Ok(SecurityOpt::SeccompProfile(profile.to_owned())),
        ("mask", paths) => Ok(SecurityOpt::Mask(mask_paths("mask", paths)?)),
        ("unmask", "ALL") => Ok(SecurityOpt::Unmask(vec!["ALL".to_owned()])),
        ("unmask", paths) => Ok(SecurityOpt::Unmask(mask_paths("unmask", paths)?)),
        ("label" | "apparmor" | "systempaths" | "writable-cgroups", _) => {
            Ok(SecurityOpt::Other(s.to_owned()))
        }
        _ => Err(ParseError::SecurityOpt(s.to_owned())),
    }
}
