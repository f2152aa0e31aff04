//! The supervised program: forked, put in its own process group (which becomes the terminal's
//! foreground group when stdin is a terminal), given back the original signal state, then
//! exec'd with a `PATH` lookup. This is what tini does by default; its `-g` only changes where
//! signals are sent, not the process group.

use core::ffi::CStr;

use berth_sys::rt::{self, CStrList, Errno, Fd, Forked, SigSet};

use crate::msg::Msg;

/// Errors on berth-init's side of starting the program.
#[derive(Debug, PartialEq, Eq)]
pub enum SpawnError {
    /// `fork` failed.
    Fork(Errno),
}

impl SpawnError {
    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        let SpawnError::Fork(e) = self;
        msg.str("fork: ").errno(*e);
    }
}

/// Errors in the forked child before (or instead of) exec; it prints them and exits.
#[derive(Debug, PartialEq, Eq)]
pub enum ChildError<'a> {
    /// `setpgid(0, 0)` failed.
    ProcessGroup(Errno),
    /// Making the new process group the terminal's foreground group failed.
    Foreground(Errno),
    /// Restoring the original signal mask failed.
    Mask(Errno),
    /// `execvp` failed.
    Exec {
        /// The program as given.
        program: &'a CStr,
        /// Why.
        source: Errno,
    },
}

impl ChildError<'_> {
    /// The child's exit status, which berth-init passes on: 127 when the program is not found,
    /// 126 when it cannot be executed (as tini and the shell), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ChildError::Exec {
                source: Errno::NOENT,
                ..
            } => 127,
            ChildError::Exec {
                source: Errno::ACCES,
                ..
            } => 126,
            _ => 1,
        }
    }

    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        match self {
            ChildError::ProcessGroup(e) => msg.str("setpgid: ").errno(*e),
            ChildError::Foreground(e) => msg.str("tcsetpgrp: ").errno(*e),
            ChildError::Mask(e) => msg.str("restore signal mask: ").errno(*e),
            ChildError::Exec { program, source } => {
                msg.str("exec ").cstr(program).str(": ").errno(*source)
            }
        };
    }
}

/// Errors forwarding a signal.
#[derive(Debug, PartialEq, Eq)]
pub struct ForwardError {
    /// The signal number.
    pub signal: i32,
    /// The child.
    pub pid: i32,
    /// Why.
    pub source: Errno,
}

impl ForwardError {
    /// Appends the message.
    pub fn describe(&self, msg: &mut Msg) {
        msg.str("forward signal ")
            .int(self.signal.into())
            .str(" to pid ")
            .int(self.pid.into())
            .str(": ")
            .errno(self.source);
    }
}

/// The running program.
pub struct Child {
    pid: i32,
    /// For signals by number (real-time ones included); `None` before Linux 5.3.
    pidfd: Option<Fd>,
}

impl Child {
    /// Its pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends it `signal`. A child that is already gone is not an error: its exit is about to
    /// be reaped. Without a pidfd, only the named signals (not real-time ones) are sent.
    pub fn signal(&self, signal: i32) -> Result<(), ForwardError> {
        let sent = match &self.pidfd {
            Some(fd) => rt::pidfd_send_signal(fd, signal),
            None if (1..32).contains(&signal) => rt::kill(self.pid, signal),
            None => Ok(()),
        };
        match sent {
            Err(e) if e != Errno::SRCH => Err(ForwardError {
                signal,
                pid: self.pid,
                source: e,
            }),
            _ => Ok(()),
        }
    }
}

/// Forks and execs `argv` (program first) with environment `envp`. `original` is the signal
/// mask to restore in the child. Must be called while single-threaded (berth-init always is).
pub fn spawn(argv: CStrList, envp: CStrList, original: SigSet) -> Result<Child, SpawnError> {
    match rt::fork().map_err(SpawnError::Fork)? {
        Forked::Child => exec_child(argv, envp, original),
        Forked::Parent(pid) => Ok(Child {
            pid,
            pidfd: rt::pidfd_open(pid).ok(),
        }),
    }
}

/// The child's side: never returns. A failure is printed as one line and becomes the exit
/// status that berth-init reaps and passes on.
fn exec_child(argv: CStrList, envp: CStrList, original: SigSet) -> ! {
    let err = match isolate() {
        Ok(()) => exec(argv, envp, original),
        Err(e) => e,
    };
    let mut msg = Msg::new();
    err.describe(&mut msg);
    msg.error();
    rt::exit(err.exit_code())
}

/// A process group of its own, in the terminal's foreground if there is one. `SIGTTOU` is
/// still blocked here, so `tcsetpgrp` from what is now a background group is allowed.
fn isolate() -> Result<(), ChildError<'static>> {
    rt::setpgid_self().map_err(ChildError::ProcessGroup)?;
    match rt::tcsetpgrp(0, rt::getpgrp()) {
        // No terminal (tini accepts ENOTTY and ENXIO; no stdin at all is no terminal either).
        Ok(()) | Err(Errno::NOTTY | Errno::NXIO | Errno::BADF) => Ok(()),
        Err(e) => Err(ChildError::Foreground(e)),
    }
}

/// Default signal dispositions, the original mask, then exec. Returns only on failure.
fn exec(argv: CStrList, envp: CStrList, original: SigSet) -> ChildError<'static> {
    rt::reset_signal_dispositions();
    if let Err(e) = rt::set_signal_mask(original) {
        return ChildError::Mask(e);
    }
    // argv is never empty (args::parse); an empty one fails to exec "" with ENOENT.
    let program = argv.first().unwrap_or_default();
    ChildError::Exec {
        program,
        source: execvp(program, argv, envp),
    }
}

/// glibc's `execvp`: a name without `/` is looked up in `$PATH` (default `/bin:/usr/bin`);
/// a file that is neither a script with `#!` nor a binary is run by `/bin/sh`. Returns the
/// error: `EACCES` if some candidate was not executable, else the last one.
fn execvp(program: &CStr, argv: CStrList, envp: CStrList) -> Errno {
    let name = program.to_bytes();
    if name.is_empty() {
        return Errno::NOENT;
    }
    if name.contains(&b'/') {
        return exec_file(program, argv, envp);
    }
    let path = envp
        .iter()
        .find_map(|e| e.to_bytes().strip_prefix(b"PATH="))
        .unwrap_or(b"/bin:/usr/bin");
    let mut buf = [0u8; 4096];
    let mut got_eacces = false;
    let mut last = Errno::NOENT;
    for dir in path.split(|b| *b == b':') {
        // An empty element is the current directory.
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        let Some(candidate) = join(&mut buf, dir, name) else {
            last = Errno::NAMETOOLONG;
            continue;
        };
        last = exec_file(candidate, argv, envp);
        match last {
            Errno::ACCES => got_eacces = true,
            Errno::NOENT
            | Errno::NOTDIR
            | Errno::STALE
            | Errno::NODEV
            | Errno::TIMEDOUT
            | Errno::NAMETOOLONG => {}
            other => return other,
        }
    }
    if got_eacces {
        Errno::ACCES
    } else {
        last
    }
}

/// `execve(file)`, and `/bin/sh file` when the kernel does not know the format.
fn exec_file(file: &CStr, argv: CStrList, envp: CStrList) -> Errno {
    match rt::execve(file, argv, envp) {
        Errno::NOEXEC => rt::execve_sh(file, argv.skip(1), envp),
        e => e,
    }
}

/// `dir/name` as a C string in `buf`, or `None` when it does not fit.
fn join<'b>(buf: &'b mut [u8], dir: &[u8], name: &[u8]) -> Option<&'b CStr> {
    let len = dir.len() + 1 + name.len();
    let out = buf.get_mut(..len + 1)?;
    let (d, rest) = out.split_at_mut(dir.len());
    d.copy_from_slice(dir);
    let (slash, rest) = rest.split_first_mut()?;
    *slash = b'/';
    let (n, nul) = rest.split_at_mut(name.len());
    n.copy_from_slice(name);
    *nul.first_mut()? = 0;
    CStr::from_bytes_with_nul(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_paths() {
        let mut buf = [0u8; 16];
        assert_eq!(join(&mut buf, b"/bin", b"sh"), Some(c"/bin/sh"));
        assert_eq!(join(&mut buf, b".", b"x"), Some(c"./x"));
        assert_eq!(join(&mut buf, b"/very/long/dir", b"name"), None);
    }

    #[test]
    fn exit_codes() {
        let exec = |source| ChildError::Exec {
            program: c"x",
            source,
        };
        assert_eq!(exec(Errno::NOENT).exit_code(), 127);
        assert_eq!(exec(Errno::ACCES).exit_code(), 126);
        assert_eq!(ChildError::Mask(Errno::ACCES).exit_code(), 1);
        let mut m = Msg::new();
        exec(Errno::ACCES).describe(&mut m);
        assert_eq!(m.as_bytes(), b"exec x: Permission denied");
    }
}
