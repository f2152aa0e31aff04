//! `logs`, `top` and `stats` (the formulas are in docs/stats.md).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use berth_cgroups::{Cgroup, Layout};
use berth_engine::containers::Engine;
use berth_engine::observe::logs::{copy_logs, parse_time_arg, LogOptions};
use berth_engine::observe::stats::{bytes_size, Sampler, StatsDisplay, StatsRow, Target};
use berth_engine::observe::top::{top_container, TopOptions, TOP_COLUMNS};
use berth_engine::state::Container;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::containers::Code;
use crate::cli::{LogsArgs, StatsArgs, TopArgs};
use crate::format::table;
use crate::template::{render_rows, Format};

/// `logs`.
pub fn logs(engine: &mut Engine, args: &LogsArgs) -> Result<Code> {
    let c = engine.get(&args.container)?;
    let now = OffsetDateTime::now_utc();
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => bail!("invalid value for \"tail\": {n:?}"),
        },
    };
    let options = LogOptions {
        tail,
        since: args
            .since
            .as_deref()
            .map(|s| parse_time_arg(s, now))
            .transpose()?,
        until: args
            .until
            .as_deref()
            .map(|s| parse_time_arg(s, now))
            .transpose()?,
        timestamps: args.timestamps,
        follow: args.follow,
        ..LogOptions::default()
    };
    let path = engine.dirs(&c.id).log();
    if !path.exists() {
        return Ok(0); // never started: no output yet
    }
    let id = c.id.clone();
    let mut stdout = std::io::stdout().lock();
    let mut stderr = std::io::stderr();
    copy_logs(&path, &options, &mut stdout, &mut stderr, || {
        engine.get(&id).is_ok_and(|c| c.status.is_live())
    })?;
    stdout.flush()?;
    Ok(0)
}

fn cgroup_of(layout: &Layout, c: &Container) -> Result<Cgroup> {
    Ok(Cgroup::open(layout, &format!("/berth/{}", c.id), &c.id)?)
}

/// `top`: the container's processes, with %CPU over a quarter second and RSS.
pub fn top(engine: &mut Engine, args: &TopArgs) -> Result<Code> {
    let c = engine.get(&args.container)?;
    if !c.status.is_live() {
        bail!("Container {} is not running", c.id);
    }
    let layout = Layout::detect()?;
    let rows = top_container(
        &cgroup_of(&layout, &c)?,
        c.pid,
        &TopOptions::new(Duration::from_millis(250))?,
    )?;
    let mut lines = vec![TOP_COLUMNS.map(str::to_owned).to_vec()];
    lines.extend(rows.iter().map(|r| r.columns().to_vec()));
    print!("{}", table(&lines));
    Ok(0)
}

/// `stats`: all containers sampled in one pass; live, it refreshes in place each second.
pub fn stats(engine: &mut Engine, args: &StatsArgs) -> Result<Code> {
    let layout = Layout::detect()?;
    let mut sampler = Sampler::new()?;
    let format = Format::parse(args.format.as_deref());
    let live = !args.no_stream;
    let terminal = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        let containers = chosen(engine, args)?;
        let targets: Vec<Target> = containers
            .iter()
            .filter(|c| c.status.is_live())
            .filter_map(|c| {
                cgroup_of(&layout, c)
                    .ok()
                    .map(|cg| Target::new(c.id.clone(), c.name.clone(), cg, c.pid))
            })
            .collect();
        let results = if first {
            sampler.sample_pair(&targets, Duration::from_millis(500))
        } else {
            sampler.sample(&targets)
        };
        first = false;
        let rows: Vec<StatsRow> = results.into_iter().filter_map(|r| r.ok()).collect();
        let text = render_stats(&containers, &rows, &format, args)?;
        let mut out = std::io::stdout().lock();
        if live && terminal {
            write!(out, "\x1b[2J\x1b[H")?; // clear, home: refresh in place as docker does
        }
        write!(out, "{text}")?;
        out.flush()?;
        if !live {
            return Ok(0);
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The containers `stats` shows: those named, else the running ones (all with `-a`).
fn chosen(engine: &mut Engine, args: &StatsArgs) -> Result<Vec<Container>> {
    if !args.containers.is_empty() {
        return args.containers.iter().map(|n| Ok(engine.get(n)?)).collect();
    }
    let list = engine.db.list()?;
    Ok(list
        .into_iter()
        .filter(|c| args.all || c.status.is_live())
        .collect())
}

/// One object per container: docker's display fields, and Berth's beside them.
fn stats_object(c: &Container, row: Option<&StatsRow>, trunc: bool) -> Map<String, Value> {
    let mut o = Map::new();
    let Some(row) = row else {
        let id = if trunc {
            c.id[..12].to_owned()
        } else {
            c.id.clone()
        };
        for (k, v) in [
            ("Container", id.clone()),
            ("Name", c.name.clone()),
            ("ID", id),
            ("CPUPerc", "0.00%".into()),
            ("MemUsage", "0B / 0B".into()),
            ("MemPerc", "0.00%".into()),
            ("NetIO", "0B / 0B".into()),
            ("BlockIO", "0B / 0B".into()),
            ("PIDs", "0".into()),
        ] {
            o.insert(k.into(), v.into());
        }
        return o;
    };
    let d = StatsDisplay::new(row, &c.name, trunc);
    for name in berth_engine::observe::stats::DISPLAY_FIELDS {
        o.insert(name.into(), d.field(name).unwrap_or_default().into());
    }
    let pct = |p: Option<f64>| p.map_or("--".to_owned(), |p| format!("{p:.2}%"));
    o.insert("CPULimitPerc".into(), pct(row.cpu.percent_of_limit).into());
    o.insert(
        "CPULimit".into(),
        format!("{:.2}", row.cpu.limit_cpus).into(),
    );
    o.insert(
        "Throttled".into(),
        format!(
            "{}/{} {}",
            row.cpu.throttled_periods_delta.unwrap_or(0),
            row.cpu.periods_delta.unwrap_or(0),
            format_ms(row.cpu.throttled_time_delta_ns.unwrap_or(0))
        )
        .into(),
    );
    o.insert(
        "MemWorkingSet".into(),
        bytes_size(row.memory.working_set as f64).into(),
    );
    o.insert("MemAnon".into(), bytes_size(row.memory.anon as f64).into());
    o.insert("MemCache".into(), bytes_size(row.memory.file as f64).into());
    o.insert(
        "MemShmem".into(),
        bytes_size(row.memory.shmem as f64).into(),
    );
    o.insert(
        "MemLimit".into(),
        bytes_size(row.memory.limit as f64).into(),
    );
    o
}

fn format_ms(ns: u64) -> String {
    format!("{}ms", ns / 1_000_000)
}

fn render_stats(
    containers: &[Container],
    rows: &[StatsRow],
    format: &Format,
    args: &StatsArgs,
) -> Result<String> {
    let objects: Vec<Map<String, Value>> = containers
        .iter()
        .filter(|c| args.all || !args.containers.is_empty() || c.status.is_live())
        .map(|c| stats_object(c, rows.iter().find(|r| r.id == c.id), !args.no_trunc))
        .collect();
    let columns = [
        ("CONTAINER ID", "ID"),
        ("NAME", "Name"),
        ("CPU %", "CPUPerc"),
        ("% OF LIMIT", "CPULimitPerc"),
        ("THROTTLED", "Throttled"),
        ("MEM USAGE / LIMIT", "MemUsage"),
        ("MEM %", "MemPerc"),
        ("ANON", "MemAnon"),
        ("CACHE", "MemCache"),
        ("SHMEM", "MemShmem"),
        ("NET I/O", "NetIO"),
        ("BLOCK I/O", "BlockIO"),
        ("PIDS", "PIDs"),
    ];
    let out = render_rows(format, &objects, &columns).map_err(anyhow::Error::msg)?;
    Ok(out)
}
