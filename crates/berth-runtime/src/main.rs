//! The `berth-runtime` binary: parse, dispatch, and log any error once, as runc does.

use std::io::Write;
use std::time::SystemTime;

use berth_runtime::cli::{Cli, Command, LogFormat};
use clap::Parser;

fn main() {
    // Commands that run this binary's code inside a container must make sure it cannot be
    // written from there. With the exec trampoline the container's process stops running it
    // before it runs anything of the container's (commands::protect_binary decides per
    // container); without one, re-exec from a read-only copy before doing anything else (so the
    // command line is parsed once). Any argument naming such a verb counts; a container id
    // that happens to be "run" only costs an unneeded re-exec.
    let guarded = !berth_runtime::trampoline::available()
        && std::env::args_os()
            .skip(1)
            .any(|a| a == "create" || a == "run" || a == "exec");
    let guard_error = guarded
        .then(berth_runtime::exe_guard::ensure_read_only_exe)
        .and_then(Result::err);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    if let Some(e) = guard_error {
        let _ = log_error(cli.log.as_deref(), cli.log_format, &e.to_string());
        std::process::exit(1);
    }
    if cli.debug {
        let args: Vec<String> = std::env::args().collect();
        let _ = log_line(
            cli.log.as_deref(),
            cli.log_format,
            "debug",
            &format!("command: {}", args.join(" ")),
        );
    }
    let log = cli.log.clone();
    let format = cli.log_format;
    let verb = verb(&cli.command);
    let code = match berth_runtime::commands::dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            let msg = match verb {
                "create" | "run" | "exec" => format!("berth-runtime {verb} failed: {e}"),
                _ => e.to_string(),
            };
            if let Err(err) = log_error(log.as_deref(), format, &msg) {
                eprintln!("{msg} (and writing the log failed: {err})");
            }
            1
        }
    };
    std::process::exit(code);
}

fn verb(command: &Command) -> &'static str {
    match command {
        Command::Create(_) => "create",
        Command::Run(_) => "run",
        Command::Exec(_) => "exec",
        _ => "other",
    }
}

/// One line to `--log` (or stderr) in the chosen format; a plain copy to stderr when the log
/// is a file, so a human running the command sees it too.
fn log_error(path: Option<&std::path::Path>, format: LogFormat, msg: &str) -> anyhow::Result<()> {
    log_line(path, format, "error", msg)
}

fn log_line(
    path: Option<&std::path::Path>,
    format: LogFormat,
    level: &str,
    msg: &str,
) -> anyhow::Result<()> {
    let time = berth_runtime::util::rfc3339(SystemTime::now());
    let line = match format {
        LogFormat::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string()
        }
        LogFormat::Text => format!(
            "time=\"{time}\" level={level} msg={}",
            serde_json::to_string(msg)?
        ),
    };
    match path {
        Some(p) if p != std::path::Path::new("/dev/stderr") => {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?;
            writeln!(file, "{line}")?;
            if level == "error" {
                eprintln!("{msg}");
            }
        }
        _ => eprintln!("{line}"),
    }
    Ok(())
}
