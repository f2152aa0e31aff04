//! The monitor's command line (docs/monitor.md, "Command line"), parsed by hand: it is small and
//! fixed, and a parser library would cost resident memory in every monitor.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub id: String,
    pub runtime: PathBuf,
    pub runtime_args: Vec<OsString>,
    pub bundle: PathBuf,
    pub pid_file: PathBuf,
    pub log_path: PathBuf,
    pub exit_file: PathBuf,
    pub attach_socket: PathBuf,
    pub console_socket: Option<PathBuf>,
    pub tty: bool,
    pub stdin: bool,
    pub sync_fd: i32,
    pub exit_command: Vec<OsString>,
}

/// Why the command line was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ArgsError {
    #[error("missing required option --{0}")]
    Missing(&'static str),
    #[error("option {0} needs a value")]
    NoValue(String),
    #[error("unknown option {0}")]
    Unknown(String),
    #[error("--sync-fd: not a file descriptor number: {0}")]
    BadSyncFd(String),
    #[error("-t needs --console-socket")]
    NoConsoleSocket,
    #[error("--id: not valid UTF-8")]
    BadId,
}

/// The default `--sync-fd`.
pub const DEFAULT_SYNC_FD: i32 = 3;

#[derive(Default)]
struct Partial {
    id: Option<OsString>,
    runtime: Option<OsString>,
    runtime_args: Vec<OsString>,
    bundle: Option<OsString>,
    pid_file: Option<OsString>,
    log_path: Option<OsString>,
    exit_file: Option<OsString>,
    attach_socket: Option<OsString>,
    console_socket: Option<OsString>,
    tty: bool,
    stdin: bool,
    sync_fd: Option<OsString>,
    exit_command: Vec<OsString>,
}

/// Parse the arguments after the program name.
pub fn parse(argv: impl IntoIterator<Item = OsString>) -> Result<Args, ArgsError> {
    let mut p = Partial::default();
    let mut it = argv.into_iter();
    while let Some(arg) = it.next() {
        match arg.as_bytes() {
            b"--" => {
                p.exit_command = it.by_ref().collect();
                break;
            }
            b"-t" | b"--tty" => p.tty = true,
            b"-i" | b"--interactive" => p.stdin = true,
            _ => option(&mut p, arg, &mut it)?,
        }
    }
    finish(p)
}

/// An option with a value: `--name VALUE` or `--name=VALUE`.
fn option(
    p: &mut Partial,
    arg: OsString,
    rest: &mut impl Iterator<Item = OsString>,
) -> Result<(), ArgsError> {
    let bytes = arg.as_bytes();
    let (name, inline) = match bytes.iter().position(|&b| b == b'=') {
        Some(i) if bytes.starts_with(b"--") => {
            (&bytes[..i], Some(OsStr::from_bytes(&bytes[i + 1..])))
        }
        _ => (bytes, None),
    };
    let shown = || String::from_utf8_lossy(name).into_owned();
    let slot: &mut Option<OsString> = match name {
        b"--id" => &mut p.id,
        b"--runtime" => &mut p.runtime,
        b"--bundle" => &mut p.bundle,
        b"--pid-file" => &mut p.pid_file,
        b"--log-path" => &mut p.log_path,
        b"--exit-file" => &mut p.exit_file,
        b"--attach-socket" => &mut p.attach_socket,
        b"--console-socket" => &mut p.console_socket,
        b"--sync-fd" => &mut p.sync_fd,
        b"--runtime-arg" => {
            let value = value(inline, rest).ok_or_else(|| ArgsError::NoValue(shown()))?;
            p.runtime_args.push(value);
            return Ok(());
        }
        _ => return Err(ArgsError::Unknown(shown())),
    };
    *slot = Some(value(inline, rest).ok_or_else(|| ArgsError::NoValue(shown()))?);
    Ok(())
}

fn value(inline: Option<&OsStr>, rest: &mut impl Iterator<Item = OsString>) -> Option<OsString> {
    match inline {
        Some(v) => Some(v.to_owned()),
        None => rest.next(),
    }
}

fn required(v: Option<OsString>, name: &'static str) -> Result<PathBuf, ArgsError> {
    v.map(PathBuf::from).ok_or(ArgsError::Missing(name))
}

fn finish(p: Partial) -> Result<Args, ArgsError> {
    let sync_fd = match p.sync_fd {
        None => DEFAULT_SYNC_FD,
        Some(s) => {
            let text = s.to_string_lossy().into_owned();
            text.parse::<i32>()
                .ok()
                .filter(|fd| *fd >= 0)
                .ok_or(ArgsError::BadSyncFd(text))?
        }
    };
    if p.tty && p.console_socket.is_none() {
        return Err(ArgsError::NoConsoleSocket);
    }
    let id = p.id.ok_or(ArgsError::Missing("id"))?;
    Ok(Args {
        id: id.into_string().map_err(|_| ArgsError::BadId)?,
        runtime: required(p.runtime, "runtime")?,
        runtime_args: p.runtime_args,
        bundle: required(p.bundle, "bundle")?,
        pid_file: required(p.pid_file, "pid-file")?,
        log_path: required(p.log_path, "log-path")?,
        exit_file: required(p.exit_file, "exit-file")?,
        attach_socket: required(p.attach_socket, "attach-socket")?,
        console_socket: p.console_socket.map(PathBuf::from),
        tty: p.tty,
        stdin: p.stdin,
        sync_fd,
        exit_command: p.exit_command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    const BASE: &[&str] = &[
        "--id",
        "c1",
        "--runtime",
        "/usr/sbin/runc",
        "--runtime-arg",
        "--root",
        "--runtime-arg",
        "/r",
        "--bundle",
        "/b",
        "--pid-file",
        "/p",
        "--log-path",
        "/l",
        "--exit-file",
        "/e",
        "--attach-socket",
        "/a",
    ];

    #[test]
    fn full_command_line() -> Result<(), ArgsError> {
        let mut argv = BASE.to_vec();
        argv.extend([
            "-t",
            "--console-socket=/c",
            "-i",
            "--sync-fd",
            "5",
            "--",
            "berth",
            "-x",
        ]);
        let a = parse(os(&argv))?;
        assert_eq!(a.id, "c1");
        assert_eq!(a.runtime_args, os(&["--root", "/r"]));
        assert_eq!(a.console_socket, Some(PathBuf::from("/c")));
        assert!(a.tty && a.stdin);
        assert_eq!(a.sync_fd, 5);
        assert_eq!(a.exit_command, os(&["berth", "-x"]));
        Ok(())
    }

    #[test]
    fn defaults_and_errors() -> Result<(), ArgsError> {
        let a = parse(os(BASE))?;
        assert_eq!(a.sync_fd, DEFAULT_SYNC_FD);
        assert!(!a.tty && !a.stdin && a.exit_command.is_empty());
        assert_eq!(parse(os(&["--id"])), Err(ArgsError::NoValue("--id".into())));
        assert_eq!(
            parse(os(&["--bogus", "x"])),
            Err(ArgsError::Unknown("--bogus".into()))
        );
        assert_eq!(
            parse(os(&["--id", "x"])),
            Err(ArgsError::Missing("runtime"))
        );
        let mut t = BASE.to_vec();
        t.push("-t");
        assert_eq!(parse(os(&t)), Err(ArgsError::NoConsoleSocket));
        Ok(())
    }
}
