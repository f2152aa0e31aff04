//! `info` and `version`.

use anyhow::Result;
use berth_engine::containers::Engine;
use berth_engine::state::Status;
use serde_json::{json, Map, Value};

use super::containers::Code;
use crate::cli::InfoArgs;
use crate::template::{render, Format};

/// `version`.
pub fn version(args: &InfoArgs) -> Result<Code> {
    let v = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "Os": std::env::consts::OS,
            "Arch": arch(),
        },
    });
    if let Format::Template { text, .. } = Format::parse(args.format.as_deref()) {
        println!("{}", render(&text, as_map(&v)).map_err(anyhow::Error::msg)?);
        return Ok(0);
    }
    if args.format.as_deref() == Some("json") {
        println!("{v}");
        return Ok(0);
    }
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" OS/Arch:           {}/{}", std::env::consts::OS, arch());
    println!(" Daemonless:        true (state in an embedded SQLite database)");
    Ok(0)
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn as_map(v: &Value) -> &Map<String, Value> {
    static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    v.as_object().unwrap_or_else(|| EMPTY.get_or_init(Map::new))
}

/// `info`.
pub fn info(engine: &mut Engine, args: &InfoArgs) -> Result<Code> {
    let list = engine.db.list()?;
    let count = |s: &[Status]| list.iter().filter(|c| s.contains(&c.status)).count();
    let images = engine.images.records.list()?.len();
    let layout = berth_cgroups::Layout::detect().ok();
    let cgroup_version = match layout.as_ref().map(|l| l.mode()) {
        Some(berth_cgroups::Mode::V2) => "2",
        Some(berth_cgroups::Mode::Hybrid) => "1 (hybrid)",
        Some(berth_cgroups::Mode::V1) => "1",
        None => "unknown",
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024;
    let v = json!({
        "Containers": list.len(),
        "ContainersRunning": count(&[Status::Running, Status::Restarting]),
        "ContainersPaused": count(&[Status::Paused]),
        "ContainersStopped": count(&[Status::Created, Status::Exited, Status::Dead]),
        "Images": images,
        "Driver": "overlay",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": cgroup_version,
        "DefaultRuntime": "berth-runtime",
        "InitBinary": "berth-init",
        "KernelVersion": kernel.trim(),
        "OperatingSystem": std::env::consts::OS,
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total,
        "DockerRootDir": engine.data_root,
        "RunRoot": engine.run_root,
        "ServerVersion": env!("CARGO_PKG_VERSION"),
    });
    match Format::parse(args.format.as_deref()) {
        Format::Json => println!("{v}"),
        Format::Template { text, .. } => {
            println!("{}", render(&text, as_map(&v)).map_err(anyhow::Error::msg)?)
        }
        Format::Table => {
            for (k, val) in as_map(&v) {
                let text = val.as_str().map(str::to_owned).unwrap_or(val.to_string());
                println!(" {k}: {text}");
            }
        }
    }
    Ok(0)
}
