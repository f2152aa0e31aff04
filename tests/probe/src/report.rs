//! What the process sees of itself: each function reads one thing and returns
//! it as JSON; `report` gathers them all into one object. A field that cannot
//! be read is `null` and its error is listed under `errors`.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::procfs::{self, RLIMIT_NAMES};
use crate::sys;

pub type Fallible<T> = Result<T, String>;

fn read(path: &str) -> Fallible<String> {
    fs::read_to_string(path).map_err(|e| format!("read {path}: {e}"))
}

pub fn status() -> Fallible<String> {
    read("/proc/self/status")
}

fn field<'a>(status: &'a str, name: &str) -> Fallible<&'a str> {
    procfs::status_field(status, name)
        .ok_or_else(|| format!("/proc/self/status has no {name} field"))
}

fn number_field(status: &str, name: &str) -> Fallible<u64> {
    let text = field(status, name)?;
    text.parse()
        .map_err(|_| format!("/proc/self/status {name}: not a number: {text:?}"))
}

/// (JSON key, status field) for the capability sets.
pub const CAP_SETS: [(&str, &str); 5] = [
    ("inheritable", "CapInh"),
    ("permitted", "CapPrm"),
    ("effective", "CapEff"),
    ("bounding", "CapBnd"),
    ("ambient", "CapAmb"),
];

/// (JSON key, status field) for the signal masks.
pub const SIGNAL_SETS: [(&str, &str); 3] = [
    ("caught", "SigCgt"),
    ("ignored", "SigIgn"),
    ("blocked", "SigBlk"),
];

/// Hex strings from status; a set the kernel does not show (CapAmb before 4.3) is null.
fn hex_sets(status: &str, sets: &[(&str, &str)]) -> Value {
    let map: Map<String, Value> = sets
        .iter()
        .map(|(key, name)| {
            (
                (*key).to_string(),
                procfs::status_field(status, name).map_or(Value::Null, Value::from),
            )
        })
        .collect();
    Value::Object(map)
}

pub fn caps(status: &str) -> Value {
    hex_sets(status, &CAP_SETS)
}

pub fn signals(status: &str) -> Value {
    hex_sets(status, &SIGNAL_SETS)
}

pub fn seccomp(status: &str) -> Fallible<u64> {
    number_field(status, "Seccomp")
}

pub fn no_new_privs(status: &str) -> Fallible<u64> {
    number_field(status, "NoNewPrivs")
}

pub fn umask(status: &str) -> Fallible<String> {
    field(status, "Umask").map(str::to_string)
}

pub fn mounts() -> Fallible<Vec<procfs::MountInfo>> {
    procfs::parse_mountinfo(&read("/proc/self/mountinfo")?)
}

fn mount_json(m: &procfs::MountInfo) -> Value {
    json!({
        "id": m.id,
        "parent_id": m.parent_id,
        "major_minor": m.major_minor,
        "root": m.root,
        "target": m.target,
        "source": m.source,
        "fstype": m.fstype,
        "options": m.options,
        "super_options": m.super_options,
        "optional": m.optional,
        "propagation": m.propagation(),
    })
}

pub fn cgroup() -> Fallible<Vec<String>> {
    Ok(read("/proc/self/cgroup")?
        .lines()
        .map(str::to_string)
        .collect())
}

/// (soft, hard) as "unlimited" or a number.
pub fn rlimit(name: &str) -> Fallible<(Value, Value)> {
    let (soft, hard) = sys::getrlimit(name).map_err(|e| format!("getrlimit {name}: {e}"))?;
    let show = |v: Option<u64>| v.map_or_else(|| Value::from("unlimited"), Value::from);
    Ok((show(soft), show(hard)))
}

fn rlimits() -> Fallible<Value> {
    let mut map = Map::new();
    for name in RLIMIT_NAMES {
        let (soft, hard) = rlimit(name)?;
        map.insert(name.to_string(), json!([soft, hard]));
    }
    Ok(Value::Object(map))
}

pub fn env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        })
        .collect()
}

pub fn cwd() -> Fallible<String> {
    std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| format!("getcwd: {e}"))
}

pub fn oom_score_adj() -> Fallible<i64> {
    let text = read("/proc/self/oom_score_adj")?;
    text.trim()
        .parse()
        .map_err(|_| format!("/proc/self/oom_score_adj: not a number: {text:?}"))
}

/// Entry name -> readlink target, sorted by name.
fn links(dir: &str) -> Fallible<BTreeMap<String, String>> {
    // Collect names first so the directory's own fd is closed before readlink.
    let names: Vec<String> = fs::read_dir(dir)
        .map_err(|e| format!("read {dir}: {e}"))?
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    Ok(names
        .into_iter()
        .filter_map(|name| {
            let target = fs::read_link(Path::new(dir).join(&name)).ok()?;
            Some((name, target.to_string_lossy().into_owned()))
        })
        .collect())
}

pub fn namespaces() -> Fallible<BTreeMap<String, String>> {
    links("/proc/self/ns")
}

/// Open fds -> targets, in numeric order.
pub fn fds() -> Fallible<Vec<(u32, String)>> {
    let mut list: Vec<(u32, String)> = links("/proc/self/fd")?
        .into_iter()
        .filter_map(|(name, target)| Some((name.parse().ok()?, target)))
        .collect();
    list.sort();
    Ok(list)
}

/// Everything at once, as one JSON object.
pub fn report() -> Value {
    let mut out = Map::new();
    let mut errors = Map::new();
    let mut put = |key: &str, value: Fallible<Value>| {
        let value = value.unwrap_or_else(|e| {
            errors.insert(key.to_string(), Value::from(e));
            Value::Null
        });
        out.insert(key.to_string(), value);
    };

    let (host, domain) = match sys::uname() {
        Ok((h, d)) => (Ok(Value::from(h)), Ok(Value::from(d))),
        Err(e) => (Err(format!("uname: {e}")), Err(format!("uname: {e}"))),
    };
    put("hostname", host);
    put("domainname", domain);
    let ids = sys::ids();
    put("uid", Ok(ids.uid.into()));
    put("gid", Ok(ids.gid.into()));
    put("euid", Ok(ids.euid.into()));
    put("egid", Ok(ids.egid.into()));
    put(
        "groups",
        sys::groups()
            .map(Value::from)
            .map_err(|e| format!("getgroups: {e}")),
    );

    let status = status();
    let from_status =
        |f: &dyn Fn(&str) -> Fallible<Value>| status.as_deref().map_err(Clone::clone).and_then(f);
    put("caps", from_status(&|s| Ok(caps(s))));
    put("signals", from_status(&|s| Ok(signals(s))));
    put("seccomp", from_status(&|s| seccomp(s).map(Value::from)));
    put(
        "no_new_privs",
        from_status(&|s| no_new_privs(s).map(Value::from)),
    );
    put("umask", from_status(&|s| umask(s).map(Value::from)));

    put(
        "mounts",
        mounts().map(|list| list.iter().map(mount_json).collect()),
    );
    put("cgroup", cgroup().map(Value::from));
    put("rlimits", rlimits());
    put("env", Ok(json!(env())));
    put("cwd", cwd().map(Value::from));
    put("pid", Ok(std::process::id().into()));
    put("ppid", Ok(std::os::unix::process::parent_id().into()));
    put("oom_score_adj", oom_score_adj().map(Value::from));
    put("namespaces", namespaces().map(|ns| json!(ns)));
    put(
        "fds",
        fds().map(|list| {
            list.into_iter()
                .map(|(fd, target)| (fd.to_string(), Value::from(target)))
                .collect()
        }),
    );

    out.insert("errors".to_string(), Value::Object(errors));
    Value::Object(out)
}
