//! A user namespace with given id maps, as an fd, for idmapped mounts (`MOUNT_ATTR_IDMAP`):
//! a child is cloned into a new user namespace, its maps are written, its namespace opened,
//! and the child ends. The namespace lives on as long as the fd.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `MOUNT_ATTR_IDMAP`.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// A new user namespace whose `uid_map` and `gid_map` are `uid_map` and `gid_map` (the
/// kernel's format: `inside outside count` lines). Needs CAP_SETUID/CAP_SETGID over the
/// host ids (root).
pub fn userns_with_maps(uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let (read_end, write_end) = pipe()?;
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack). The child only calls the
    // async-signal-safe read(2) and _exit(2) on memory it owns (its copy of `byte`), so it is
    // safe even when the parent has other threads.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWUSER | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        let mut byte = 0u8;
        // SAFETY: closing our copy of the write end (so that the parent's close is EOF), then
        // reading one byte into a local; read returns on EOF when the parent closes its end.
        unsafe {
            libc::close(write_end.as_raw_fd());
            libc::read(read_end.as_raw_fd(), std::ptr::addr_of_mut!(byte).cast(), 1);
            libc::_exit(0);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    let pid = pid as i32;
    drop(read_end);
    let opened = write_maps_and_open(pid, uid_map, gid_map);
    drop(write_end);
    let mut status = 0;
    // SAFETY: waiting for our own child, with a valid status pointer.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    opened
}

fn write_maps_and_open(pid: i32, uid_map: &str, gid_map: &str) -> io::Result<OwnedFd> {
    let proc = format!("/proc/{pid}");
    std::fs::write(format!("{proc}/uid_map"), uid_map)?;
    std::fs::write(format!("{proc}/gid_map"), gid_map)?;
    let ns = std::fs::File::open(format!("{proc}/ns/user"))?;
    Ok(OwnedFd::from(ns))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both fds are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Make the detached mount `mount` (from `open_tree(OPEN_TREE_CLONE)`) idmapped through the
/// user namespace `userns`: `mount_setattr(mount, "", AT_EMPTY_PATH, {MOUNT_ATTR_IDMAP})`.
pub fn idmap_mount(mount: BorrowedFd<'_>, userns: BorrowedFd<'_>) -> io::Result<()> {
    super::mount_setattr_with_userns(mount, MOUNT_ATTR_IDMAP, Some(userns))
}
