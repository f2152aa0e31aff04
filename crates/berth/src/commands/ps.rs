//! `ps` and `inspect` for containers, in docker's formats.

use std::time::{Duration, SystemTime};

use anyhow::{bail, Result};
use berth_engine::containers::{config_of, details_of, Engine};
use berth_engine::state::{format_time, short_id, Container, Status};
use serde_json::{json, Map, Value};

use super::containers::Code;
use crate::cli::{ContainerInspectArgs, PsArgs};
use crate::format::human_duration;
use crate::template::{render, render_rows, Format};

/// `ps`.
pub fn ps(engine: &mut Engine, args: &PsArgs) -> Result<Code> {
    let filters = args
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>>>()?;
    let mut list = engine.db.list()?;
    let limit = if args.latest { 1 } else { args.last };
    let all = args.all
        || limit > 0
        || filters
            .iter()
            .any(|f| f.key == "status" || f.key == "exited");
    list.retain(|c| all || c.status.is_live());
    list.retain(|c| filters.iter().all(|f| f.matches(c)));
    if limit > 0 {
        list.truncate(limit as usize);
    }
    let objects: Vec<Map<String, Value>> = list.iter().map(|c| row(c, args.no_trunc)).collect();
    if args.quiet {
        for o in &objects {
            println!("{}", o["ID"].as_str().unwrap_or_default());
        }
        return Ok(0);
    }
    let columns = [
        ("CONTAINER ID", "ID"),
        ("IMAGE", "Image"),
        ("COMMAND", "Command"),
        ("CREATED", "RunningFor"),
        ("STATUS", "Status"),
        ("PORTS", "Ports"),
        ("NAMES", "Names"),
    ];
    let format = Format::parse(args.format.as_deref());
    print!(
        "{}",
        render_rows(&format, &objects, &columns).map_err(anyhow::Error::msg)?
    );
    Ok(0)
}

/// One `ps` row with docker's field names.
fn row(c: &Container, no_trunc: bool) -> Map<String, Value> {
    let config = config_of(c);
    let mut command = config
        .entrypoint
        .iter()
        .chain(&config.cmd)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if !no_trunc && command.chars().count() > 20 {
        command = command.chars().take(19).collect::<String>() + "…";
    }
    let id = if no_trunc {
        c.id.clone()
    } else {
        short_id(&c.id).to_owned()
    };
    let created = format_time(c.created).unwrap_or_default();
    let labels = c
        .labels
        .as_object()
        .map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mounts = config
        .volumes
        .iter()
        .map(|v| short_id(&v.name).to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let mut o = Map::new();
    o.insert("ID".into(), id.into());
    o.insert("Image".into(), c.image_name.clone().into());
    o.insert("Command".into(), format!("\"{command}\"").into());
    o.insert(
        "CreatedAt".into(),
        crate::format::go_time(Some(&created)).into(),
    );
    o.insert("RunningFor".into(), ago(c.created).into());
    o.insert("Ports".into(), ports_text(c).into());
    o.insert("State".into(), c.status.as_str().into());
    o.insert("Status".into(), status_text(c).into());
    o.insert("Names".into(), c.name.clone().into());
    o.insert("Labels".into(), labels.into());
    o.insert("Mounts".into(), mounts.into());
    o.insert("Networks".into(), config.network_mode.into());
    o.insert("Size".into(), "N/A".into());
    o.insert(
        "LocalVolumes".into(),
        config.volumes.len().to_string().into(),
    );
    o
}

fn ports_text(c: &Container) -> String {
    c.ports
        .as_array()
        .map(|ports| {
            ports
                .iter()
                .map(|p| {
                    format!(
                        "{}:{}->{}/{}",
                        p["IP"].as_str().unwrap_or("0.0.0.0"),
                        p["PublicPort"],
                        p["PrivatePort"],
                        p["Type"].as_str().unwrap_or("tcp")
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn ago(t: time::OffsetDateTime) -> String {
    format!("{} ago", human_duration(elapsed(t)))
}

fn elapsed(t: time::OffsetDateTime) -> Duration {
    let now = time::OffsetDateTime::from(SystemTime::now());
    Duration::from_secs((now - t).whole_seconds().max(0) as u64)
}

/// docker's STATUS column: `Up 5 seconds`, `Up 2 minutes (Paused)`, `Exited (0) 3 seconds
/// ago`, `Created`.
pub fn status_text(c: &Container) -> String {
    match c.status {
        Status::Running | Status::Paused | Status::Restarting => {
            let up = human_duration(c.started_at.map(elapsed).unwrap_or_default());
            let paused = if c.status == Status::Paused {
                " (Paused)"
            } else {
                ""
            };
            format!("Up {up}{paused}")
        }
        Status::Exited => format!(
            "Exited ({}) {}",
            c.exit_code.unwrap_or(0),
            c.finished_at.map(ago).unwrap_or_default()
        ),
        Status::Created => "Created".into(),
        Status::Dead => "Dead".into(),
        Status::Removing => "Removal In Progress".into(),
    }
}

/// One `--filter key=value`.
struct Filter {
    key: String,
    value: String,
}

impl Filter {
    fn parse(text: &str) -> Result<Filter> {
        let Some((key, value)) = text.split_once('=') else {
            bail!("bad format of filter (expected name=value)");
        };
        let known = [
            "id", "name", "label", "status", "exited", "ancestor", "before", "since",
        ];
        if !known.contains(&key) {
            bail!("invalid filter '{key}'");
        }
        Ok(Filter {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }

    fn matches(&self, c: &Container) -> bool {
        let v = self.value.as_str();
        match self.key.as_str() {
            "id" => c.id.starts_with(v),
            // docker: a regular expression, matched against `/NAME` or `NAME`.
            "name" => regex::Regex::new(v)
                .map(|re| re.is_match(&format!("/{}", c.name)) || re.is_match(&c.name))
                .unwrap_or(false),
            "status" => c.status.as_str() == v,
            "exited" => {
                c.status == Status::Exited
                    && c.exit_code.map(|e| e.to_string()) == Some(v.to_owned())
            }
            "ancestor" => {
                c.image_name == v
                    || c.image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
            }
            "label" => {
                let (k, want) = match v.split_once('=') {
                    Some((k, w)) => (k, Some(w)),
                    None => (v, None),
                };
                match c.labels.get(k) {
                    Some(have) => want.is_none_or(|w| have.as_str() == Some(w)),
                    None => false,
                }
            }
            _ => true,
        }
    }
}

/// `inspect`: containers first, then images (docker's order).
pub fn inspect(engine: &mut Engine, args: &ContainerInspectArgs) -> Result<Code> {
    let mut objects = Vec::new();
    let mut code = 0;
    for name in &args.names {
        let container = match args.kind.as_deref() {
            Some("image") => None,
            _ => engine.get(name).ok(),
        };
        if let Some(c) = container {
            objects.push(inspect_object(engine, &c)?);
            continue;
        }
        if args.kind.as_deref() != Some("container") {
            if let Ok(object) = super::images::inspect_value(&engine.images, name) {
                objects.push(object);
                continue;
            }
        }
        eprintln!("Error: No such object: {name}");
        code = 1;
    }
    match Format::parse(args.format.as_deref()) {
        Format::Template { text, .. } => {
            for o in &objects {
                if let Value::Object(map) = o {
                    println!("{}", render(&text, map).map_err(anyhow::Error::msg)?);
                }
            }
        }
        _ => println!("{}", serde_json::to_string_pretty(&objects)?),
    }
    Ok(code)
}

const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn time_or_zero(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| format_time(t).ok())
        .unwrap_or_else(|| ZERO_TIME.to_owned())
}

/// docker's container inspect object, with Berth's exit figures beside docker's fields.
fn inspect_object(engine: &mut Engine, c: &Container) -> Result<Value> {
    let config = config_of(c);
    let details = details_of(c);
    let dirs = engine.dirs(&c.id);
    let spec: Value = std::fs::read(dirs.config_json())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or(Value::Null);
    let process = &spec["process"];
    let args: Vec<Value> = process["args"].as_array().cloned().unwrap_or_default();
    let user = &process["user"];
    let resources = &spec["linux"]["resources"];
    let upper = engine.images.containers.upper_dir(&c.id).ok();
    let merged = engine.images.containers.merged_dir(&c.id).ok();
    let mounts: Vec<Value> = config
        .volumes
        .iter()
        .map(|v| {
            json!({
                "Type": "volume", "Name": v.name, "Destination": v.destination,
                "Source": engine.data_root.join("volumes").join(&v.name).join("_data"),
                "Driver": "local", "Mode": "", "RW": !v.read_only, "Propagation": ""
            })
        })
        .chain(config.binds.iter().map(|b| {
            let parts: Vec<&str> = b.split(':').collect();
            json!({
                "Type": "bind", "Source": parts.first(), "Destination": parts.get(1),
                "Mode": parts.get(2).copied().unwrap_or(""), "RW": parts.get(2) != Some(&"ro"),
                "Propagation": "rprivate"
            })
        }))
        .collect();
    let state = json!({
        "Status": c.status.as_str(),
        "Running": c.status.is_live(),
        "Paused": c.status == Status::Paused,
        "Restarting": c.status == Status::Restarting,
        "OOMKilled": c.oom_killed,
        "Dead": c.status == Status::Dead,
        "Pid": c.pid.unwrap_or(0),
        "ExitCode": c.exit_code.unwrap_or(0),
        "Error": details.error.clone().unwrap_or_default(),
        "StartedAt": time_or_zero(c.started_at),
        "FinishedAt": time_or_zero(c.finished_at),
        "ExitSignal": c.exit_signal,
        "OOMKills": details.oom_kills,
        "OOMVictims": details.oom_victims.iter().map(|v| json!({"Pid": v.pid, "Comm": v.comm})).collect::<Vec<_>>(),
        "StopEscalated": details.stop_escalated,
        "StopDurationMs": details.stop_duration_ms,
    });
    let host_config = json!({
        "Binds": config.binds,
        "LogConfig": {"Type": "k8s-file", "Config": {}},
        "NetworkMode": config.network_mode,
        "PortBindings": {},
        "AutoRemove": config.auto_remove,
        "Runtime": c.runtime_name,
        "Init": config.init,
        "StorageOpt": config.storage_opts.iter().filter_map(|o| o.split_once('=')).map(|(k, v)| (k.to_owned(), Value::from(v))).collect::<Map<_, _>>(),
        "Memory": resources["memory"]["limit"].as_i64().unwrap_or(0),
        "MemoryReservation": resources["memory"]["reservation"].as_i64().unwrap_or(0),
        "MemorySwap": resources["memory"]["swap"].as_i64().unwrap_or(0),
        "MemorySwappiness": resources["memory"]["swappiness"],
        "OomKillDisable": resources["memory"]["disableOOMKiller"].as_bool().unwrap_or(false),
        "CpuShares": resources["cpu"]["shares"].as_u64().unwrap_or(0),
        "CpuPeriod": resources["cpu"]["period"].as_u64().unwrap_or(0),
        "CpuQuota": resources["cpu"]["quota"].as_i64().unwrap_or(0),
        "NanoCpus": nano_cpus(resources),
        "CpusetCpus": resources["cpu"]["cpus"].as_str().unwrap_or(""),
        "CpusetMems": resources["cpu"]["mems"].as_str().unwrap_or(""),
        "PidsLimit": resources["pids"]["limit"].as_i64(),
        "BlkioWeight": resources["blockIO"]["weight"].as_u64().unwrap_or(0),
        "Privileged": false,
        "ReadonlyRootfs": spec["root"]["readonly"].as_bool().unwrap_or(false),
        "OomScoreAdj": process["oomScoreAdj"].as_i64().unwrap_or(0),
    });
    let container_config = json!({
        "Hostname": spec["hostname"].as_str().unwrap_or(""),
        "User": user_text(user),
        "AttachStdin": false,
        "Tty": config.tty,
        "OpenStdin": config.stdin_open,
        "Env": process["env"],
        "Cmd": config.cmd,
        "Image": c.image_name,
        "WorkingDir": process["cwd"],
        "Entrypoint": if config.entrypoint.is_empty() { Value::Null } else { json!(config.entrypoint) },
        "Labels": c.labels,
        "StopSignal": config.stop_signal,
        "StopTimeout": config.stop_timeout,
        "ExposedPorts": config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<Map<_, _>>(),
    });
    Ok(json!({
        "Id": c.id,
        "Created": format_time(c.created).unwrap_or_default(),
        "Path": args.first().cloned().unwrap_or(Value::Null),
        "Args": args.get(1..).map(|a| a.to_vec()).unwrap_or_default(),
        "State": state,
        "Image": c.image_id,
        "ResolvConfPath": "",
        "HostnamePath": "",
        "HostsPath": "",
        "LogPath": dirs.log(),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "HostConfig": host_config,
        "GraphDriver": {
            "Name": "overlay",
            "Data": {"UpperDir": upper, "MergedDir": merged},
        },
        "Mounts": mounts,
        "Config": container_config,
        "NetworkSettings": super::networks::network_settings(
            &engine.container_networks(&c.id)?,
            &c.ports,
            &c.id,
            &networks_sandbox(engine, &c.id),
        ),
    }))
}

fn nano_cpus(resources: &Value) -> i64 {
    let quota = resources["cpu"]["quota"].as_i64().unwrap_or(0);
    let period = resources["cpu"]["period"].as_i64().unwrap_or(0);
    if quota > 0 && period > 0 {
        quota * 1_000_000_000 / period
    } else {
        0
    }
}

fn user_text(user: &Value) -> String {
    match (user["uid"].as_u64(), user["gid"].as_u64()) {
        (Some(0), Some(0)) | (None, _) => String::new(),
        (Some(u), Some(g)) => format!("{u}:{g}"),
        (Some(u), None) => u.to_string(),
    }
}

/// Where a container's network namespace is pinned, if it is.
fn networks_sandbox(engine: &Engine, id: &str) -> String {
    let path = berth_engine::networks::netns_path(&engine.run_root, id);
    if path.exists() {
        path.display().to_string()
    } else {
        String::new()
    }
}
