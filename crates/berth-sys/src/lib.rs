//! Safe, fd-typed wrappers for the Linux syscalls Berth needs that `nix` and `std` do not cover.
//!
//! This is the only crate in the workspace allowed to contain `unsafe`.

pub mod loopdev;
pub mod projquota;
pub mod userns;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

/// Result of a fork-like call.
#[derive(Debug)]
pub enum Forked {
    /// We are the parent; `pid` is the child's pid in our pid namespace.
    Parent {
        /// The child's pid.
        pid: i32,
        /// A pidfd for the child, when the kernel gave one.
        pidfd: Option<OwnedFd>,
    },
    /// We are the child.
    Child,
}

fn check(ret: libc::c_long) -> io::Result<libc::c_long> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn check_int(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// `clone3` with fork semantics (no new stack, `SIGCHLD` on exit, a pidfd for the parent).
///
/// `flags` are `CLONE_NEW*` namespace flags; `cgroup` places the child directly into a cgroup v2
/// directory (`CLONE_INTO_CGROUP`). Must be called from a single-threaded process.
pub fn clone3(flags: u64, cgroup: Option<BorrowedFd<'_>>) -> io::Result<Forked> {
    let mut pidfd: libc::c_int = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: std::ptr::addr_of_mut!(pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone_args is a valid, fully initialised struct of the size we pass. With no stack
    // and no CLONE_VM the child gets a copy-on-write copy of our address space, exactly like
    // fork(2); the caller guarantees the process is single-threaded.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::addr_of_mut!(args),
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match check(ret)? {
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel wrote a new, owned pidfd into `pidfd` because CLONE_PIDFD was set.
            pidfd: (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        }),
    }
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Plain `fork(2)`. Must be called from a single-threaded process.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: the caller guarantees that the process is single-threaded, so the child's copy of
    // the address space is consistent (no lock is held by a thread that does not exist there).
    let pid = check_int(unsafe { libc::fork() })?;
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent { pid, pidfd: None }
    })
}

/// `_exit(2)`: leave without running destructors or atexit handlers (for forked children).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

/// `pidfd_open(2)`.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall with integer arguments; on success it returns a new fd we own.
    let fd = check(unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) })?;
    // SAFETY: `fd` is a new file descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(2)`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: integer arguments and a null siginfo pointer, which the kernel accepts.
    check(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// `RESOLVE_*` flags for [`openat2`].
pub mod resolve {
    /// Treat the directory fd as the root: `..` and absolute symlinks stay inside it.
    pub const IN_ROOT: u64 = 0x10;
    /// Fail on any magic link (`/proc/self/fd/N` and friends).
    pub const NO_MAGICLINKS: u64 = 0x02;
    /// Fail on any symlink.
    pub const NO_SYMLINKS: u64 = 0x04;
    /// Do not cross a mount point.
    pub const NO_XDEV: u64 = 0x01;
    /// Fail if the path escapes the directory fd.
    pub const BENEATH: u64 = 0x08;
}

/// `openat2(2)`: open `path` relative to `dir` with `flags` (`O_*`), `mode` and `resolve` flags.
pub fn openat2(
    dir: BorrowedFd<'_>,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> io::Result<OwnedFd> {
    let mut how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: u64::from(mode),
        resolve,
    };
    loop {
        // SAFETY: `path` is NUL-terminated; `how` is a valid open_how of the size passed.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir.as_raw_fd(),
                path.as_ptr(),
                std::ptr::addr_of_mut!(how),
                std::mem::size_of::<OpenHow>(),
            )
        };
        match check(ret) {
            // SAFETY: a successful openat2 returns a new fd that we now own.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
            // The kernel asks for a retry when a concurrent rename raced the lookup.
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => continue,
            Err(e) => return Err(e),
        }
    }
}

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Mark every fd from `first` upward close-on-exec (`close_range(first, ~0, CLOSE_RANGE_CLOEXEC)`).
pub fn cloexec_from(first: u32) -> io::Result<()> {
    const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;
    // SAFETY: integer arguments only; marking fds close-on-exec cannot invalidate Rust state.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Close every fd from `first` upward (`close_range(first, ~0, 0)`).
///
/// Only for a forked child that never returns to code owning those fds (a pause process):
/// any `OwnedFd` above `first` becomes dangling.
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments only. The caller is a forked child that will not touch the
    // closed fds again (documented contract), so no Rust object is left using them.
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) })?;
    Ok(())
}

/// `setns(2)`: join the namespace `fd` refers to (`nstype` is a `CLONE_NEW*` flag, or 0 for
/// any). Joining a user namespace needs a single-threaded process.
pub fn setns(fd: BorrowedFd<'_>, nstype: i32) -> io::Result<()> {
    // SAFETY: the fd is borrowed and valid for the call; setns changes only the calling
    // thread's namespaces and touches no memory of ours.
    check_int(unsafe { libc::setns(fd.as_raw_fd(), nstype) })?;
    Ok(())
}

/// `unshare(2)` with `CLONE_NEW*` flags. Unsharing a user namespace needs a single-threaded
/// process.
pub fn unshare(flags: i32) -> io::Result<()> {
    // SAFETY: integer argument only; unshare changes the calling thread's namespaces and
    // touches no memory of ours.
    check_int(unsafe { libc::unshare(flags) })?;
    Ok(())
}

/// `setdomainname(2)`.
pub fn setdomainname(name: &[u8]) -> io::Result<()> {
    // SAFETY: pointer and length describe a valid byte slice.
    check_int(unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) })?;
    Ok(())
}

/// Make `fd` (a terminal) the controlling terminal of this session (`TIOCSCTTY`).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) })?;
    Ok(())
}

/// Set a terminal's window size (`TIOCSWINSZ`).
pub fn set_window_size(fd: BorrowedFd<'_>, rows: u16, cols: u16) -> io::Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct, which lives for the whole call.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &size) })?;
    Ok(())
}

/// Read a terminal's window size (`TIOCGWINSZ`): (rows, cols).
pub fn window_size(fd: BorrowedFd<'_>) -> io::Result<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct into `size`, which lives for the whole call.
    check_int(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok((size.ws_row, size.ws_col))
}

/// Receive one message with at most one file descriptor attached (`SCM_RIGHTS`), as sent by
/// runc-style console sockets. Returns the payload length and the fd, if any.
pub fn recv_fd(socket: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    const SPACE: usize = 64;
    let mut control = [0u8; SPACE];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid; every pointer we set below refers to live buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = SPACE;
    // SAFETY: `msg` describes valid buffers for the kernel to fill.
    let n = check(
        unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) }
            as libc::c_long,
    )?;
    // SAFETY: CMSG_FIRSTHDR only reads the msghdr we just filled.
    let cmsg = unsafe { libc::CMSG_FIRSTHDR(&msg) };
    if cmsg.is_null() {
        return Ok((n as usize, None));
    }
    // SAFETY: `cmsg` points into `control`, which the kernel filled; SCM_RIGHTS data is an int array.
    let fd = unsafe {
        if (*cmsg).cmsg_level != libc::SOL_SOCKET || (*cmsg).cmsg_type != libc::SCM_RIGHTS {
            return Ok((n as usize, None));
        }
        std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>())
    };
    // SAFETY: the kernel installed `fd` in our table for us; nobody else owns it.
    Ok((n as usize, Some(unsafe { OwnedFd::from_raw_fd(fd) })))
}

/// Unlock a pty master and return the path of its slave (`TIOCSPTLCK` + `TIOCGPTN`).
pub fn unlock_pty(master: BorrowedFd<'_>) -> io::Result<u32> {
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads an int that lives for the whole call.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) })?;
    let mut n: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes an unsigned int into `n`.
    check_int(unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut n) })?;
    Ok(n)
}

/// Join a new anonymous session keyring named `name` (`KEYCTL_JOIN_SESSION_KEYRING`).
pub fn join_session_keyring(name: &CStr) -> io::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_long = 1;
    // SAFETY: `name` is NUL-terminated and outlives the call.
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) })?;
    Ok(())
}

/// `prctl(PR_SET_DUMPABLE)`: a non-dumpable process's /proc files are owned by root and its
/// memory and `/proc/<pid>/exe` cannot be opened by other processes.
pub fn set_dumpable(dumpable: bool) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe {
        libc::prctl(
            libc::PR_SET_DUMPABLE,
            libc::c_ulong::from(dumpable),
            0,
            0,
            0,
        )
    })?;
    Ok(())
}

/// `prctl(PR_SET_KEEPCAPS)`: keep permitted capabilities across a uid change away from 0.
pub fn set_keep_caps(keep: bool) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(keep), 0, 0, 0) })?;
    Ok(())
}

/// `prctl(PR_SET_NO_NEW_PRIVS, 1)`.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    Ok(())
}

/// `seccomp(SECCOMP_SET_MODE_FILTER)` flags (linux/seccomp.h).
pub mod seccomp_flags {
    /// Apply to every thread of the process.
    pub const TSYNC: u32 = 1;
    /// Log every action but `allow`.
    pub const LOG: u32 = 2;
    /// Keep speculative store bypass mitigations off.
    pub const SPEC_ALLOW: u32 = 4;
    /// Return a user-notification listener fd.
    pub const NEW_LISTENER: u32 = 8;
    /// With TSYNC and NEW_LISTENER: report a thread that cannot sync as ESRCH.
    pub const TSYNC_ESRCH: u32 = 16;
}

/// Load the classic BPF program `program` (as libseccomp exports it) as the calling thread's
/// seccomp filter. With [`seccomp_flags::NEW_LISTENER`] the kernel's listener fd (close-on-exec)
/// is returned. Allocates nothing: fit for the child between clone and exec.
pub fn seccomp_set_mode_filter(
    program: &[libc::sock_filter],
    flags: u32,
) -> io::Result<Option<OwnedFd>> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::E2BIG))?;
    let prog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` points at `len` valid sock_filter entries that outlive the call; the
    // kernel copies the program and does not write through the pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            1_u32, // SECCOMP_SET_MODE_FILTER
            flags,
            std::ptr::from_ref(&prog),
        )
    };
    let fd = check(ret)?;
    if flags & seccomp_flags::NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER the kernel returns a new fd that nothing else owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `prctl(PR_SET_PDEATHSIG)`.
pub fn set_parent_death_signal(signal: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal as libc::c_ulong, 0, 0, 0) })?;
    Ok(())
}

/// `prctl(PR_SET_CHILD_SUBREAPER)`.
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: integer arguments only.
    check_int(unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) })?;
    Ok(())
}

/// `umask(2)`; returns the previous mask.
pub fn set_umask(mask: u32) -> u32 {
    // SAFETY: umask cannot fail and only changes this process's file-creation mask.
    unsafe { libc::umask(mask) }
}

/// Restore the default disposition of every signal and unblock them all, so the container's
/// process starts with a clean signal state.
pub fn reset_signals() {
    // The raw syscall, not glibc's signal(): glibc refuses its internal signals 32 and 33,
    // which a posix_spawn'ing caller leaves ignored.
    for sig in 1..=libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed sigaction is SIG_DFL with no flags and an empty mask; the kernel
        // only reads it; the old-action pointer is null.
        unsafe {
            let act: libc::sigaction = std::mem::zeroed();
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &act as *const libc::sigaction,
                std::ptr::null_mut::<libc::sigaction>(),
                8usize,
            );
        }
    }
    // SAFETY: an empty, initialised sigset is passed to sigprocmask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// `execve(2)` with already-prepared NUL-terminated argument and environment vectors.
/// Only returns on failure.
pub fn execve(
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Error {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: both vectors are NULL-terminated arrays of pointers to NUL-terminated strings
    // owned by the caller for the duration of the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: exec the file `fd` refers to (e.g. a memfd),
/// with already-prepared NUL-terminated vectors. Only returns on failure.
pub fn execveat_fd(
    fd: BorrowedFd<'_>,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
) -> io::Error {
    debug_assert!(argv.last().is_some_and(|p| p.is_null()));
    debug_assert!(envp.last().is_some_and(|p| p.is_null()));
    // SAFETY: `fd` is a live descriptor for the call; the path is an empty NUL-terminated
    // string; both vectors are NULL-terminated arrays of pointers to NUL-terminated strings
    // owned by the caller for the duration of the call.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd.as_raw_fd(),
            c"".as_ptr(),
            argv.as_ptr(),
            envp.as_ptr(),
            libc::AT_EMPTY_PATH,
        )
    };
    io::Error::last_os_error()
}

/// `mount_setattr(2)` flags.
pub mod mount_attr {
    /// Read-only.
    pub const RDONLY: u64 = 0x1;
    /// No setuid.
    pub const NOSUID: u64 = 0x2;
    /// No device nodes.
    pub const NODEV: u64 = 0x4;
    /// No exec.
    pub const NOEXEC: u64 = 0x8;
    /// Apply recursively.
    pub const AT_RECURSIVE: u32 = 0x8000;
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH | flags, {set, clr})` on the mount that `fd` refers to.
pub fn mount_setattr(fd: BorrowedFd<'_>, recursive: bool, set: u64, clear: u64) -> io::Result<()> {
    mount_setattr_full(fd, recursive, set, clear, None)
}

/// `mount_setattr` setting `set` (non-recursively), with `userns` for `MOUNT_ATTR_IDMAP`.
pub(crate) fn mount_setattr_with_userns(
    fd: BorrowedFd<'_>,
    set: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    mount_setattr_full(fd, false, set, 0, userns)
}

fn mount_setattr_full(
    fd: BorrowedFd<'_>,
    recursive: bool,
    set: u64,
    clear: u64,
    userns: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    #[repr(C)]
    struct MountAttr {
        set: u64,
        clr: u64,
        propagation: u64,
        userns_fd: u64,
    }
    let attr = MountAttr {
        set,
        clr: clear,
        propagation: 0,
        userns_fd: userns.map_or(0, |u| u.as_raw_fd() as u64),
    };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= mount_attr::AT_RECURSIVE;
    }
    // SAFETY: the path is an empty NUL-terminated string and `attr` is a valid mount_attr of
    // the size passed; both outlive the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            std::ptr::addr_of!(attr),
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// Load a `BPF_PROG_TYPE_CGROUP_DEVICE` program (`insns`: encoded `struct bpf_insn`s). On a
/// verifier rejection the error carries the verifier's log.
pub fn bpf_load_cgroup_device(insns: &[u64]) -> io::Result<OwnedFd> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
    let license = c"Apache";
    let mut log = vec![0u8; 64 * 1024];
    let mut attr = [0u64; 16];
    attr[0] = u64::from(BPF_PROG_TYPE_CGROUP_DEVICE) | ((insns.len() as u64) << 32);
    attr[1] = insns.as_ptr() as u64;
    attr[2] = license.as_ptr() as u64;
    // log_level = 1, log_size
    attr[3] = 1 | ((log.len() as u64) << 32);
    attr[4] = log.as_mut_ptr() as u64;
    // SAFETY: `attr` is a zero-padded bpf_attr for BPF_PROG_LOAD whose pointers (instructions,
    // license, log buffer) refer to live buffers of the sizes given, for the whole call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    match check(ret) {
        // SAFETY: a successful BPF_PROG_LOAD returns a new fd that we own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) }),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            if text.trim().is_empty() {
                Err(e)
            } else {
                Err(io::Error::new(
                    e.kind(),
                    format!("{e}: verifier: {}", text.trim()),
                ))
            }
        }
    }
}

/// Attach a device program to a cgroup v2 directory (`BPF_CGROUP_DEVICE`, `BPF_F_ALLOW_MULTI`).
pub fn bpf_attach_cgroup_device(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> io::Result<()> {
    const BPF_PROG_ATTACH: libc::c_long = 8;
    const BPF_CGROUP_DEVICE: u64 = 6;
    const BPF_F_ALLOW_MULTI: u64 = 2;
    let mut attr = [0u64; 4];
    attr[0] = cgroup.as_raw_fd() as u64 | ((prog.as_raw_fd() as u64) << 32);
    attr[1] = BPF_CGROUP_DEVICE | (BPF_F_ALLOW_MULTI << 32);
    // SAFETY: `attr` is a zero-padded bpf_attr for BPF_PROG_ATTACH holding two valid fds.
    check(unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn openat2_in_root_keeps_dotdot_inside() {
        let dir = std::env::temp_dir().join(format!("berth-sys-test-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("a")).unwrap();
        std::fs::write(dir.join("a/f"), b"x").unwrap();
        let root = std::fs::File::open(&dir).unwrap();
        let fd = openat2(
            root.as_fd(),
            c"../../../a/f",
            libc::O_RDONLY,
            0,
            resolve::IN_ROOT,
        );
        assert!(fd.is_ok(), "{fd:?}");
        let err = openat2(root.as_fd(), c"../x", libc::O_RDONLY, 0, resolve::BENEATH);
        assert!(err.is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fork_child_exit_code_is_seen() {
        match fork().unwrap() {
            Forked::Child => exit_now(7),
            Forked::Parent { pid, .. } => {
                let mut status = 0;
                // SAFETY: test-only waitpid on our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                assert_eq!(libc::WEXITSTATUS(status), 7);
            }
        }
    }
}
