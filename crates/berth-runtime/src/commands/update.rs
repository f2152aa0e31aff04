//! `update`: change a running container's resources, from flags or `--resources FILE|-`.

use std::io::Read;

use oci_spec::runtime::LinuxResources;
use serde_json::{json, Map, Value};

use super::{io, Error};
use crate::cli::UpdateArgs;
use crate::state::{self, Store};

/// Parse a byte size like runc's `units.RAMInBytes`: `1024`, `64m`, `1g`, `-1`.
pub fn parse_bytes(text: &str) -> Result<i64, Error> {
    let t = text.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t.trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let value: f64 = num
        .parse()
        .map_err(|_| Error::Invalid(format!("invalid size: {text:?}")))?;
    Ok((value * mult as f64) as i64)
}

fn from_flags(args: &UpdateArgs) -> Result<Value, Error> {
    if args.l3_cache_schema.is_some() || args.mem_bw_schema.is_some() {
        return Err(Error::Invalid(
            "intel RDT is not available on this host".into(),
        ));
    }
    let mut memory = Map::new();
    for (key, value) in [
        ("limit", &args.memory),
        ("reservation", &args.memory_reservation),
        ("swap", &args.memory_swap),
        ("kernel", &args.kernel_memory),
        ("kernelTCP", &args.kernel_memory_tcp),
    ] {
        if let Some(v) = value {
            memory.insert(key.into(), parse_bytes(v)?.into());
        }
    }
    let mut cpu = Map::new();
    let put = |m: &mut Map<String, Value>, k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put(&mut cpu, "shares", args.cpu_share.map(Into::into));
    put(&mut cpu, "quota", args.cpu_quota.map(Into::into));
    put(&mut cpu, "period", args.cpu_period.map(Into::into));
    put(
        &mut cpu,
        "realtimeRuntime",
        args.cpu_rt_runtime.map(Into::into),
    );
    put(
        &mut cpu,
        "realtimePeriod",
        args.cpu_rt_period.map(Into::into),
    );
    put(&mut cpu, "cpus", args.cpuset_cpus.clone().map(Into::into));
    put(&mut cpu, "mems", args.cpuset_mems.clone().map(Into::into));
    let mut out = Map::new();
    if !memory.is_empty() {
        out.insert("memory".into(), memory.into());
    }
    if !cpu.is_empty() {
        out.insert("cpu".into(), cpu.into());
    }
    if let Some(limit) = args.pids_limit {
        out.insert("pids".into(), json!({ "limit": limit }));
    }
    if let Some(weight) = args.blkio_weight.filter(|w| *w != 0) {
        out.insert("blockIO".into(), json!({ "weight": weight }));
    }
    Ok(out.into())
}

fn from_file(path: &std::path::Path) -> Result<Value, Error> {
    let mut text = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .read_to_end(&mut text)
            .map_err(io("read", "stdin"))?;
    } else {
        text = std::fs::read(path).map_err(io("read", path))?;
    }
    serde_json::from_slice(&text)
        .map_err(|e| Error::Invalid(format!("decode resources from {}: {e}", path.display())))
}

fn merge(base: &mut Value, update: Value) {
    match (base, update) {
        (Value::Object(b), Value::Object(u)) => {
            for (k, v) in u {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, u) => *b = u,
    }
}

fn to_resources(value: Value, what: &str) -> Result<LinuxResources, Error> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| Error::Invalid(format!("invalid {what}: {}: {}", e.path(), e.inner())))
}

/// Update `args.id`'s resources.
pub fn run(store: &Store, args: &UpdateArgs) -> Result<i32, Error> {
    let mut container = store.load(&args.id)?;
    if container.status() == state::Status::Stopped {
        return Err(Error::Invalid("container not running".into()));
    }
    let update = match &args.resources {
        Some(path) => from_file(path)?,
        None => from_flags(args)?,
    };
    let changes = to_resources(update.clone(), "resources")?;
    crate::cgroup::open(&container.saved)?.apply(&changes)?;
    // Remember the merged resources, so `state` and later updates start from them.
    let mut linux = container.saved.spec.linux().clone().unwrap_or_default();
    let mut merged = serde_json::to_value(linux.resources()).unwrap_or(Value::Null);
    if merged.is_null() {
        merged = json!({});
    }
    merge(&mut merged, update);
    linux.set_resources(Some(to_resources(merged, "merged resources")?));
    container.saved.spec.set_linux(Some(linux));
    state::save(&container.dir, &container.saved)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_like_runc() {
        assert_eq!(parse_bytes("1024").unwrap(), 1024);
        assert_eq!(parse_bytes("64m").unwrap(), 64 << 20);
        assert_eq!(parse_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(parse_bytes("-1").unwrap(), -1);
        assert!(parse_bytes("lots").is_err());
    }

    fn flags(args: &[&str]) -> Value {
        use clap::Parser;
        let argv = ["berth-runtime", "update"]
            .iter()
            .chain(args)
            .chain(&["c1"]);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Update(update) => from_flags(&update).unwrap(),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn blkio_weight_flag_like_runc() {
        assert_eq!(
            flags(&["--blkio-weight", "500"]),
            json!({"blockIO": {"weight": 500}})
        );
        // runc: 0 is the flag's default, "not given".
        assert_eq!(flags(&["--blkio-weight", "0"]), json!({}));
        assert_eq!(
            flags(&["--kernel-memory-tcp", "1m"]),
            json!({"memory": {"kernelTCP": 1 << 20}})
        );
    }

    #[test]
    fn iops_lists_survive_deserializing() {
        let value = json!({"blockIO": {
            "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
            "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
        }});
        let resources = to_resources(value, "resources").unwrap();
        let block_io = resources.block_io().clone().unwrap();
        assert_eq!(
            block_io.throttle_read_iops_device().as_ref().unwrap()[0].rate(),
            100
        );
        assert_eq!(
            block_io.throttle_write_iops_device().as_ref().unwrap()[0].rate(),
            200
        );
    }

    #[test]
    fn merge_keeps_untouched_fields() {
        let mut base = json!({"memory": {"limit": 1, "swap": 2}, "pids": {"limit": 5}});
        merge(&mut base, json!({"memory": {"limit": 3}}));
        assert_eq!(
            base,
            json!({"memory": {"limit": 3, "swap": 2}, "pids": {"limit": 5}})
        );
    }
}
