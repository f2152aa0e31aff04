//! Step 3 of Start: run `RUNTIME [ARG]... create ...` with the container's stdio, wait for it,
//! and read the container's pid (or why it failed).

use std::fs::File;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

use nix::unistd::Pid;
use rustix::fs::OFlags;
use rustix::pipe::PipeFlags;

use crate::args::Args;
use crate::console::{ConsoleError, ConsoleSocket};

/// Longest runtime stderr reported whole; longer, only its last line is.
const MAX_ERROR: usize = 512;

/// Errors creating the container. `Runtime`'s text is the runtime's own message.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("creating a pipe: {0}")]
    Pipe(#[source] std::io::Error),
    #[error("running {runtime}: {source}")]
    Spawn {
        runtime: PathBuf,
        source: std::io::Error,
    },
    #[error("waiting for the runtime: {0}")]
    Wait(#[source] std::io::Error),
    #[error("{0}")]
    Runtime(String),
    #[error("reading the pid file {path}: {source}")]
    PidFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the pid file {path} holds no pid: {text:?}")]
    BadPid { path: PathBuf, text: String },
    #[error(transparent)]
    Console(#[from] ConsoleError),
}

/// The monitor's ends of the container's stdio. With a terminal, `stdout` and `stdin` are
/// the pty master (separate descriptors) and `tty` is kept for resizing.
#[derive(Default)]
pub struct ContainerIo {
    pub stdout: Option<File>,
    pub stderr: Option<File>,
    pub stdin: Option<File>,
    pub tty: Option<OwnedFd>,
}

/// A created container.
pub struct Started {
    pub pid: Pid,
    pub io: ContainerIo,
}

/// Run the runtime's `create` and collect the container's pid and stdio.
pub fn create(args: &Args, console: Option<&ConsoleSocket>) -> Result<Started, CreateError> {
    let mut cmd = command(args, console);
    let (mut errors, theirs) = pipe(true)?;
    cmd.stderr(theirs);
    let mut io = ContainerIo::default();
    if args.tty {
        cmd.stdin(Stdio::null()).stdout(Stdio::null());
    } else {
        let (out, theirs) = pipe(true)?;
        cmd.stdout(theirs);
        io.stdout = Some(out);
        if args.stdin {
            let (input, theirs) = pipe(false)?;
            cmd.stdin(theirs);
            io.stdin = Some(input);
        } else {
            cmd.stdin(Stdio::null());
        }
    }
    let status = run(cmd, &args.runtime)?;
    if !status.success() {
        return Err(CreateError::Runtime(failure(
            &mut errors,
            &args.runtime,
            status,
        )));
    }
    let pid = read_pid(&args.pid_file)?;
    match console {
        Some(console) => io = terminal(console.receive()?, args.stdin)?,
        None => io.stderr = Some(errors),
    }
    Ok(Started { pid, io })
}

fn command(args: &Args, console: Option<&ConsoleSocket>) -> Command {
    let mut cmd = Command::new(&args.runtime);
    cmd.args(&args.runtime_args)
        .arg("create")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&args.pid_file);
    if let Some(console) = console {
        cmd.arg("--console-socket").arg(console.path());
    }
    cmd.arg(&args.id);
    cmd
}

/// A close-on-exec pipe: (our non-blocking end, the runtime's end as Stdio).
fn pipe(we_read: bool) -> Result<(File, Stdio), CreateError> {
    let err = |e: rustix::io::Errno| CreateError::Pipe(e.into());
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(err)?;
    let (ours, theirs) = if we_read { (r, w) } else { (w, r) };
    rustix::fs::fcntl_setfl(&ours, OFlags::NONBLOCK).map_err(err)?;
    Ok((File::from(ours), Stdio::from(theirs)))
}

/// Spawn and wait; `cmd` (holding our copies of the runtime's ends) is dropped before waiting.
fn run(mut cmd: Command, runtime: &Path) -> Result<ExitStatus, CreateError> {
    let mut child = cmd.spawn().map_err(|source| CreateError::Spawn {
        runtime: runtime.to_owned(),
        source,
    })?;
    drop(cmd);
    child.wait().map_err(CreateError::Wait)
}

/// The runtime's stderr, trimmed (its last line if it is long), or its exit status.
fn failure(errors: &mut File, runtime: &Path, status: ExitStatus) -> String {
    let mut text = Vec::new();
    let _ = errors.take(64 * 1024).read_to_end(&mut text);
    let text = String::from_utf8_lossy(&text);
    let text = text.trim();
    if text.is_empty() {
        return format!("{} create: {status}", runtime.display());
    }
    if text.len() <= MAX_ERROR {
        return text.to_owned();
    }
    let last = text.lines().rev().map(str::trim).find(|l| !l.is_empty());
    last.unwrap_or(text).to_owned()
}

fn read_pid(path: &Path) -> Result<Pid, CreateError> {
    let text = std::fs::read_to_string(path).map_err(|source| CreateError::PidFile {
        path: path.to_owned(),
        source,
    })?;
    match text.trim().parse::<i32>() {
        Ok(pid) if pid > 0 => Ok(Pid::from_raw(pid)),
        _ => Err(CreateError::BadPid {
            path: path.to_owned(),
            text,
        }),
    }
}

/// The stdio of a terminal container: the pty master, non-blocking.
fn terminal(master: OwnedFd, stdin: bool) -> Result<ContainerIo, CreateError> {
    let err = |e: std::io::Error| CreateError::Console(ConsoleError::Io(e));
    rustix::fs::fcntl_setfl(&master, OFlags::NONBLOCK).map_err(|e| err(e.into()))?;
    let stdin = match stdin {
        true => Some(File::from(master.try_clone().map_err(err)?)),
        false => None,
    };
    Ok(ContainerIo {
        stdout: Some(File::from(master.try_clone().map_err(err)?)),
        stderr: None,
        stdin,
        tty: Some(master),
    })
}
