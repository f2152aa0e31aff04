//! `berth-monitor`: one per container (conmon's role). The contract is docs/monitor.md.
#![forbid(unsafe_code)]

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

use anyhow::Context;
use berth_monitor::args::{self, Args};
use berth_monitor::attach::Attach;
use berth_monitor::console::ConsoleSocket;
use berth_monitor::create::{self, Started};
use berth_monitor::exitfile::{self, ExitRecord};
use berth_monitor::logs::LogWriter;
use berth_monitor::monitor::{self, Monitor};
use berth_monitor::sync::SyncPipe;
use nix::sys::signalfd::SignalFd;

/// What is set up before the runtime runs.
struct Prepared {
    signals: SignalFd,
    log: LogWriter,
    attach: Attach,
}

fn main() -> ExitCode {
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            let _ = SyncPipe::take(args::DEFAULT_SYNC_FD).error(&e.to_string());
            eprintln!("berth-monitor: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sync = SyncPipe::take(args.sync_fd);
    let (prepared, started) = match start(&args) {
        Ok(ok) => ok,
        Err(e) => {
            let _ = sync.error(&format!("{e:#}"));
            eprintln!("berth-monitor: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    // The engine may be gone; the container still needs its monitor.
    let _ = sync.pid(started.pid.as_raw());
    match supervise(&args, prepared, started) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth-monitor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Start steps 1-3: become a session leader and subreaper, take SIGCHLD through a signalfd,
/// open the log and the sockets, and run the runtime's create.
fn start(args: &Args) -> anyhow::Result<(Prepared, Started)> {
    // EPERM: already a process group leader, hence a session leader's peer; harmless.
    let _ = nix::unistd::setsid();
    let me = rustix::process::getpid();
    rustix::process::set_child_subreaper(Some(me)).context("PR_SET_CHILD_SUBREAPER")?;
    let signals = monitor::block_signals()?;
    let log = LogWriter::open(&args.log_path)?;
    let attach = Attach::bind(&args.attach_socket)?;
    let console = match (&args.console_socket, args.tty) {
        (Some(path), true) => Some(ConsoleSocket::bind(path)?),
        _ => None,
    };
    let started = create::create(args, console.as_ref())?;
    // The pty master has arrived (or create failed): the console socket is done with.
    drop(console);
    let prepared = Prepared {
        signals,
        log,
        attach,
    };
    Ok((prepared, started))
}

/// Run until the container exits, record it, and hand over to the exit command.
fn supervise(args: &Args, prepared: Prepared, started: Started) -> anyhow::Result<()> {
    let mut monitor = Monitor::new(
        prepared.signals,
        prepared.attach,
        prepared.log,
        started.io,
        started.pid,
    )?;
    let status = monitor.run()?;
    let record = ExitRecord::from_status(status).context("the container's status")?;
    let written = exitfile::write(&args.exit_file, &record);
    monitor.finish(record.exit_code);
    if let Err(e) = written {
        // Still run the exit command: cleanup must happen, and it notices the missing file.
        eprintln!("berth-monitor: {e}");
    }
    exec_exit_command(&args.exit_command)
}

/// `execvp` the exit command (same pid), if there is one.
fn exec_exit_command(command: &[std::ffi::OsString]) -> anyhow::Result<()> {
    let Some((program, rest)) = command.split_first() else {
        return Ok(());
    };
    let err = Command::new(program).args(rest).exec();
    Err(err).with_context(|| format!("exec {}", program.to_string_lossy()))
}
