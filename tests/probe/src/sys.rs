//! The probe's only unsafe code: thin, checked wrappers over libc calls that
//! std does not offer. Each returns an `io::Result` built from errno.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// Turns a `-1` return into the current errno.
fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
}

pub fn ids() -> Ids {
    // SAFETY: get[e]uid/get[e]gid take no arguments, cannot fail and touch no memory of ours.
    unsafe {
        Ids {
            uid: libc::getuid(),
            gid: libc::getgid(),
            euid: libc::geteuid(),
            egid: libc::getegid(),
        }
    }
}

/// Supplementary group ids, as getgroups(2) returns them.
pub fn groups() -> io::Result<Vec<u32>> {
    // SAFETY: a size of 0 with a null list only asks for the count; nothing is written.
    let count = check(unsafe { libc::getgroups(0, std::ptr::null_mut()) })?;
    let mut list = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(0)];
    // SAFETY: `list` has room for exactly `count` gids, the size we pass.
    let got = check(unsafe { libc::getgroups(count, list.as_mut_ptr()) })?;
    list.truncate(usize::try_from(got).unwrap_or(0));
    Ok(list)
}

/// (hostname, domainname) of this UTS namespace; works without /proc.
pub fn uname() -> io::Result<(String, String)> {
    // SAFETY: utsname is plain old data of char arrays; all zeroes is a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a valid, writable utsname that outlives the call.
    check(unsafe { libc::uname(&mut uts) })?;
    Ok((c_chars(&uts.nodename), c_chars(&uts.domainname)))
}

fn c_chars(chars: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| c.to_ne_bytes()[0])
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(target_env = "gnu")]
type Resource = libc::__rlimit_resource_t;
#[cfg(not(target_env = "gnu"))]
type Resource = libc::c_int;

fn resource(name: &str) -> Option<Resource> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// (soft, hard) for a canonical `RLIMIT_*` name; `None` in a pair means unlimited.
pub fn getrlimit(name: &str) -> io::Result<(Option<u64>, Option<u64>)> {
    let res = resource(name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "unknown resource"))?;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit that outlives the call.
    check(unsafe { libc::getrlimit(res, &mut lim) })?;
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((finite(lim.rlim_cur), finite(lim.rlim_max)))
}

/// A close-on-exec pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [-1 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: pipe2 succeeded, so both descriptors are open and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a child that closes `write_end` and stdio, blocks reading `read_end`
/// until every write end is closed (the parent exited or let go), then exits 0.
pub fn fork_waiter(read_end: &OwnedFd, write_end: &OwnedFd) -> io::Result<libc::pid_t> {
    let (read_fd, write_fd) = (read_end.as_raw_fd(), write_end.as_raw_fd());
    // SAFETY: the probe is single-threaded, and the child only makes
    // async-signal-safe calls (close, read, _exit) on fds and a stack buffer.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: as above; the child never returns into Rust code.
        unsafe {
            libc::close(write_fd);
            for fd in 0..3 {
                libc::close(fd);
            }
            let mut byte = 0u8;
            loop {
                let n = libc::read(read_fd, std::ptr::addr_of_mut!(byte).cast(), 1);
                if n == 0 || (n < 0 && *libc::__errno_location() != libc::EINTR) {
                    libc::_exit(0);
                }
            }
        }
    }
    check(pid)
}

/// The CPUs this process may run on, from sched_getaffinity(2), ascending.
pub fn affinity() -> io::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is a plain bit array; all zeroes is a valid, empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of `size` bytes that outlives the call.
    check(unsafe { libc::sched_getaffinity(0, size, &mut set) })?;
    let bits = size * 8;
    // SAFETY: CPU_ISSET only reads `set`, for indices below its size in bits.
    Ok((0..bits)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect())
}

/// Waits for `pid` to end, retrying on EINTR.
pub fn wait(pid: libc::pid_t) -> io::Result<()> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid, writable int for the call.
        match check(unsafe { libc::waitpid(pid, &mut status, 0) }) {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other.map(drop),
        }
    }
}

/// The write end of the self-pipe that `on_signal` reports to.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let byte = u8::try_from(sig).unwrap_or(0);
    // SAFETY: write(2) is async-signal-safe; the fd is the pipe's write end,
    // which stays open for the process's life, and `byte` is a live local.
    unsafe {
        libc::write(
            SIGNAL_PIPE.load(Ordering::Relaxed),
            std::ptr::addr_of!(byte).cast(),
            1,
        );
    }
}

/// Installs a handler for each signal and returns a file that yields one byte,
/// the signal number, per signal received.
pub fn catch_signals(signals: &[libc::c_int]) -> io::Result<File> {
    let (read_end, write_end) = pipe()?;
    // The write end lives as long as the process: the handler may run at any time.
    SIGNAL_PIPE.store(
        std::mem::ManuallyDrop::new(write_end).as_raw_fd(),
        Ordering::Relaxed,
    );
    for &sig in signals {
        let handler = on_signal as extern "C" fn(libc::c_int);
        set_disposition(sig, handler as libc::sighandler_t)?;
    }
    Ok(File::from(read_end))
}

/// Sets SIGx to SIG_IGN.
pub fn ignore_signal(sig: libc::c_int) -> io::Result<()> {
    set_disposition(sig, libc::SIG_IGN)
}

fn set_disposition(sig: libc::c_int, handler: libc::sighandler_t) -> io::Result<()> {
    // SAFETY: sigaction is plain old data; all zeroes is a valid (empty) value.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: `action` is fully initialised and `handler` is SIG_IGN or an
    // extern "C" fn(c_int) that only calls async-signal-safe write(2).
    check(unsafe { libc::sigaction(sig, &action, std::ptr::null_mut()) }).map(drop)
}

/// SIGTERM -> "SIGTERM" for the signals the probe deals with.
pub fn signal_name(sig: libc::c_int) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGQUIT => "SIGQUIT",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::RLIMIT_NAMES;

    #[test]
    fn every_rlimit_name_has_a_resource() {
        for name in RLIMIT_NAMES {
            assert!(resource(name).is_some(), "{name}");
            assert!(getrlimit(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn uname_gives_a_hostname() {
        let (host, _domain) = uname().expect("uname");
        assert!(!host.is_empty());
    }
}
