//! `ps`: processes of a container, from its cgroup.

use std::process::Command;

use super::{io, Error};
use crate::cli::TableFormat;
use crate::state::Store;

/// Show the processes of `id`.
pub fn run(store: &Store, id: &str, format: TableFormat, ps_args: &[String]) -> Result<i32, Error> {
    let container = store.peek(id)?;
    let pids = crate::cgroup::open(&container.saved)?.pids()?;
    if format == TableFormat::Json {
        println!(
            "{}",
            serde_json::to_string(&pids).map_err(|e| Error::Invalid(e.to_string()))?
        );
        return Ok(0);
    }
    let args: Vec<String> = if ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        ps_args.to_vec()
    };
    let output = Command::new("ps")
        .args(&args)
        .output()
        .map_err(io("run", "ps"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|c| c == "PID")
        .ok_or_else(|| Error::Invalid("couldn't find PID field in ps output".into()))?;
    println!("{header}");
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            println!("{line}");
        }
    }
    Ok(0)
}
