//! berth-init's runtime: the raw Linux syscalls it makes, its process entry and its
//! arguments, in `core` only, so that berth-init can be a static executable with no libc.
//!
//! Syscalls are made directly (`syscall`/`svc`) on x86_64 and aarch64 and through libc's
//! `syscall(2)` elsewhere. When this crate is built without `std` (berth-init on its own),
//! it also provides `__berth_rt_start`, an entry point in the kernel's process-start
//! convention that calls the C `main` which [`init_main!`](crate::init_main) defines; berth-init
//! links with `-nostartfiles -nostdlib -static -e __berth_rt_start`. Hosted (a libc's
//! startup code calls `main`), the same `main` is called by the C runtime instead.
//!
//! Nothing here allocates, and every result is a plain `Result<_, Errno>`.

use core::ffi::{c_char, c_int, c_long, CStr};

/// An error number from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

/// A syscall's result.
pub type Result<T> = core::result::Result<T, Errno>;

impl Errno {
    /// `EINTR`.
    pub const INTR: Errno = Errno(libc::EINTR);
    /// `ENOENT`.
    pub const NOENT: Errno = Errno(libc::ENOENT);
    /// `EACCES`.
    pub const ACCES: Errno = Errno(libc::EACCES);
    /// `ECHILD`.
    pub const CHILD: Errno = Errno(libc::ECHILD);
    /// `ESRCH`.
    pub const SRCH: Errno = Errno(libc::ESRCH);
    /// `ENOTTY`.
    pub const NOTTY: Errno = Errno(libc::ENOTTY);
    /// `ENXIO`.
    pub const NXIO: Errno = Errno(libc::ENXIO);
    /// `EBADF`.
    pub const BADF: Errno = Errno(libc::EBADF);
    /// `EAGAIN`.
    pub const AGAIN: Errno = Errno(libc::EAGAIN);
    /// `ENOTDIR`.
    pub const NOTDIR: Errno = Errno(libc::ENOTDIR);
    /// `ENAMETOOLONG`.
    pub const NAMETOOLONG: Errno = Errno(libc::ENAMETOOLONG);
    /// `ENOEXEC`.
    pub const NOEXEC: Errno = Errno(libc::ENOEXEC);
    /// `ENODEV`.
    pub const NODEV: Errno = Errno(libc::ENODEV);
    /// `ESTALE`.
    pub const STALE: Errno = Errno(libc::ESTALE);
    /// `ETIMEDOUT`.
    pub const TIMEDOUT: Errno = Errno(libc::ETIMEDOUT);

    /// glibc's `strerror` text for the common ones, `None` for the rest.
    pub fn desc(self) -> Option<&'static str> {
        Some(match self.0 {
            libc::EPERM => "Operation not permitted",
            libc::ENOENT => "No such file or directory",
            libc::ESRCH => "No such process",
            libc::EINTR => "Interrupted system call",
            libc::EIO => "Input/output error",
            libc::ENXIO => "No such device or address",
            libc::E2BIG => "Argument list too long",
            libc::ENOEXEC => "Exec format error",
            libc::EBADF => "Bad file descriptor",
            libc::ECHILD => "No child processes",
            libc::EAGAIN => "Resource temporarily unavailable",
            libc::ENOMEM => "Cannot allocate memory",
            libc::EACCES => "Permission denied",
            libc::EFAULT => "Bad address",
            libc::ENOTDIR => "Not a directory",
            libc::EISDIR => "Is a directory",
            libc::EINVAL => "Invalid argument",
            libc::ENFILE => "Too many open files in system",
            libc::EMFILE => "Too many open files",
            libc::ENOTTY => "Inappropriate ioctl for device",
            libc::ETXTBSY => "Text file busy",
            libc::ENAMETOOLONG => "File name too long",
            libc::ENOSYS => "Function not implemented",
            libc::ELOOP => "Too many levels of symbolic links",
            libc::ELIBBAD => "Accessing a corrupted shared library",
            _ => return None,
        })
    }
}

/// A raw syscall. Returns the kernel's value, or `-errno` in `-4095..0`.
///
/// # Safety
/// The arguments must be what syscall `nr` expects: pointers valid for what it reads or
/// writes, and no effect the caller's Rust code cannot cope with (memory, fds, threads).
#[cfg(target_arch = "x86_64")]
unsafe fn raw(nr: c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: the syscall instruction with the x86_64 Linux convention; it clobbers only rcx
    // and r11 (declared) besides rax; the caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") nr as isize => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// A raw syscall; see the x86_64 version.
///
/// # Safety
/// As for the x86_64 version.
#[cfg(target_arch = "aarch64")]
unsafe fn raw(nr: c_long, a: [usize; 6]) -> isize {
    let ret: isize;
    // SAFETY: svc 0 with the aarch64 Linux convention (number in x8, result in x0, nothing
    // else clobbered); the caller vouches for the arguments.
    unsafe {
        core::arch::asm!(
            "svc 0",
            in("x8") nr,
            inlateout("x0") a[0] => ret,
            in("x1") a[1],
            in("x2") a[2],
            in("x3") a[3],
            in("x4") a[4],
            in("x5") a[5],
            options(nostack),
        );
    }
    ret
}

/// A raw syscall through libc, on the other architectures (hosted builds only).
///
/// # Safety
/// As for the x86_64 version.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
unsafe fn raw(nr: c_long, a: [usize; 6]) -> isize {
    // SAFETY: the caller vouches for the arguments; errno is read right after the call.
    unsafe {
        let ret = libc::syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        if ret == -1 {
            -(*libc::__errno_location() as isize)
        } else {
            ret as isize
        }
    }
}

/// `raw` with the result checked.
///
/// # Safety
/// As for `raw`.
unsafe fn syscall(nr: c_long, a: [usize; 6]) -> Result<usize> {
    // SAFETY: passed on to the caller.
    let ret = unsafe { raw(nr, a) };
    if (-4095..0).contains(&ret) {
        Err(Errno(-ret as i32))
    } else {
        Ok(ret as usize)
    }
}

/// A NULL-terminated vector of NUL-terminated strings that lives as long as the process:
/// `argv` or `envp` as the kernel (or the C runtime) passed them. It can only come from the
/// process start ([`init_main!`](crate::init_main)), or be a tail of one.
#[derive(Debug, Clone, Copy)]
#[repr(transparent)]
pub struct CStrList {
    /// Never null; NULL-terminated; every entry a NUL-terminated string that is never freed.
    ptr: *const *const c_char,
}

impl CStrList {
    /// The first entry: a string, or NULL at the end.
    fn head(self) -> *const c_char {
        // SAFETY: `ptr` points into the NULL-terminated vector (the type's invariant).
        unsafe { *self.ptr }
    }

    /// The first string.
    pub fn first(self) -> Option<&'static CStr> {
        let entry = self.head();
        // SAFETY: a non-NULL entry is a NUL-terminated string that lives as long as the
        // process (the type's invariant).
        (!entry.is_null()).then(|| unsafe { CStr::from_ptr(entry) })
    }

    /// Whether it is empty.
    pub fn is_empty(self) -> bool {
        self.head().is_null()
    }

    /// What is left after the first `n` strings (empty when there are fewer).
    pub fn skip(self, n: usize) -> CStrList {
        let mut list = self;
        for _ in 0..n {
            if list.is_empty() {
                break;
            }
            // SAFETY: the entry at `ptr` is not the NULL terminator, so `ptr + 1` is still
            // within the vector.
            list.ptr = unsafe { list.ptr.add(1) };
        }
        list
    }

    /// The strings in order.
    pub fn iter(self) -> impl Iterator<Item = &'static CStr> {
        let mut list = self;
        core::iter::from_fn(move || {
            let first = list.first()?;
            list = list.skip(1);
            Some(first)
        })
    }

    fn as_ptr(self) -> *const *const c_char {
        self.ptr
    }
}

/// The process's arguments and environment, as it started.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    /// `argv`, its own name first.
    pub argv: CStrList,
    /// `envp`.
    pub envp: CStrList,
}

/// Defines the C `main` of a `#![no_main]` berth-init: the C runtime (hosted) or
/// `__berth_rt_start` (freestanding) calls it, and it calls `$run(Args) -> i32`, whose value
/// is the exit status. The signature here is the one `__berth_rt_start` calls.
#[macro_export]
macro_rules! init_main {
    ($run:path) => {
        #[no_mangle]
        extern "C" fn main(
            _argc: ::core::ffi::c_int,
            argv: $crate::rt::CStrList,
            envp: $crate::rt::CStrList,
        ) -> ::core::ffi::c_int {
            $run($crate::rt::Args { argv, envp })
        }
    };
}

/// The freestanding entry point (only without `std`: berth-init alone in the build).
#[cfg(all(
    not(feature = "std"),
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod start {
    use super::CStrList;
    use core::ffi::c_int;

    extern "C" {
        /// Defined by `init_main!` in the executable.
        fn main(argc: c_int, argv: CStrList, envp: CStrList) -> c_int;
    }

    // The kernel starts the process with the stack pointer at argc, followed by argv, a NULL,
    // envp and a NULL. Clear the frame pointer (the outermost frame), pass the stack pointer
    // as the first argument and call `entry` with the stack aligned as the ABI wants.
    #[cfg(target_arch = "x86_64")]
    core::arch::global_asm!(
        ".pushsection .text.__berth_rt_start,\"ax\",@progbits",
        ".globl __berth_rt_start",
        ".type __berth_rt_start,@function",
        "__berth_rt_start:",
        "xor ebp, ebp",
        "mov rdi, rsp",
        "and rsp, -16",
        "call {entry}",
        "ud2",
        ".popsection",
        entry = sym entry,
    );

    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".pushsection .text.__berth_rt_start,\"ax\",@progbits",
        ".globl __berth_rt_start",
        ".type __berth_rt_start,@function",
        "__berth_rt_start:",
        "mov x29, xzr",
        "mov x30, xzr",
        "mov x0, sp",
        "bl {entry}",
        "brk #1",
        ".popsection",
        entry = sym entry,
    );

    /// Reads argc, argv and envp from the initial stack and runs `main`.
    ///
    /// # Safety
    /// `sp` must be the stack pointer the kernel started the process with.
    unsafe extern "C" fn entry(sp: *const usize) -> ! {
        // SAFETY: at process start, `sp` points at argc, then argc argv pointers, a NULL, the
        // envp pointers and a NULL; the strings stay on the stack for the life of the process,
        // which is CStrList's invariant. `main` is init_main!'s, with this very signature.
        let status = unsafe {
            let argc = *sp;
            let argv = sp.add(1).cast::<*const core::ffi::c_char>();
            let envp = argv.add(argc + 1);
            main(
                argc as c_int,
                CStrList { ptr: argv },
                CStrList { ptr: envp },
            )
        };
        super::exit(status)
    }
}

/// An fd, closed on drop.
#[derive(Debug)]
pub struct Fd(c_int);

impl Fd {
    /// Its number.
    pub fn raw(&self) -> c_int {
        self.0
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: this Fd owns the descriptor; closing it affects no other Rust object.
        let _ = unsafe { syscall(libc::SYS_close, [self.0 as usize, 0, 0, 0, 0, 0]) };
    }
}

/// A kernel signal set (64 signals, the `rt_sig*` syscalls' `sigset_t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SigSet(u64);

/// The number of signals, and the highest one.
pub const NSIG: i32 = 64;

impl SigSet {
    /// No signal.
    pub const fn empty() -> SigSet {
        SigSet(0)
    }

    /// Every signal (the kernel ignores `SIGKILL` and `SIGSTOP` in masks).
    pub const fn all() -> SigSet {
        SigSet(!0)
    }

    fn bit(signal: i32) -> u64 {
        if (1..=NSIG).contains(&signal) {
            1 << (signal - 1)
        } else {
            0
        }
    }

    /// Without `signal`.
    pub const fn without(self, signal: i32) -> SigSet {
        if signal >= 1 && signal <= NSIG {
            SigSet(self.0 & !(1 << (signal - 1)))
        } else {
            self
        }
    }

    /// Whether `signal` is in it.
    pub fn contains(self, signal: i32) -> bool {
        self.0 & SigSet::bit(signal) != 0
    }
}

/// `sigprocmask(SIG_SETMASK, mask)`; returns the previous mask.
pub fn set_signal_mask(mask: SigSet) -> Result<SigSet> {
    let mut old = SigSet::empty();
    // SAFETY: both pointers are to live u64s of the size passed; the kernel reads one and
    // writes the other.
    unsafe {
        syscall(
            libc::SYS_rt_sigprocmask,
            [
                libc::SIG_SETMASK as usize,
                &mask.0 as *const u64 as usize,
                &mut old.0 as *mut u64 as usize,
                8,
                0,
                0,
            ],
        )?;
    }
    Ok(old)
}

/// `signalfd(-1, mask, SFD_CLOEXEC)`: a new blocking fd that reads the signals in `mask`.
pub fn signalfd(mask: SigSet) -> Result<Fd> {
    // SAFETY: the mask pointer is to a live u64 of the size passed; the result is a new fd.
    let fd = unsafe {
        syscall(
            libc::SYS_signalfd4,
            [
                usize::MAX, // -1: a new fd
                &mask.0 as *const u64 as usize,
                8,
                libc::SFD_CLOEXEC as usize,
                0,
                0,
            ],
        )?
    };
    Ok(Fd(fd as c_int))
}

/// Reads one signal from a signalfd and returns its number (blocking, unless the fd is not).
pub fn read_signal(fd: &Fd) -> Result<i32> {
    // struct signalfd_siginfo is 128 bytes; ssi_signo is its first u32.
    let mut info = [0u32; 32];
    // SAFETY: the buffer is 128 writable bytes, as passed.
    let n = unsafe {
        syscall(
            libc::SYS_read,
            [fd.raw() as usize, info.as_mut_ptr() as usize, 128, 0, 0, 0],
        )?
    };
    if n < 128 {
        return Err(Errno(libc::EIO));
    }
    Ok(info[0] as i32)
}

/// Writes all of `bytes` to `fd`; gives up silently on an error (for messages).
pub fn write_all(fd: c_int, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the buffer is readable for the length passed.
        match unsafe {
            syscall(
                libc::SYS_write,
                [fd as usize, bytes.as_ptr() as usize, bytes.len(), 0, 0, 0],
            )
        } {
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(Errno::INTR) => {}
            Err(_) => return,
        }
    }
}

/// `getpid()`.
pub fn getpid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { raw(libc::SYS_getpid, [0; 6]) as i32 }
}

/// `prctl(PR_SET_CHILD_SUBREAPER, 1)`.
pub fn set_child_subreaper() -> Result<()> {
    // SAFETY: integer arguments only.
    unsafe {
        syscall(
            libc::SYS_prctl,
            [libc::PR_SET_CHILD_SUBREAPER as usize, 1, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// Result of [`fork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// We are the parent of this pid.
    Parent(i32),
    /// We are the child.
    Child,
}

/// `fork()`, as `clone(SIGCHLD)`. Must be called from a single-threaded process; the child
/// must only make raw syscalls (no libc calls: a hosted libc is not told about the fork).
pub fn fork() -> Result<Forked> {
    // SAFETY: without CLONE_VM or a new stack, the child gets a copy-on-write copy of the
    // address space and returns here with 0, like fork(2); the caller guarantees the process
    // is single-threaded, so no lock or state of another thread is copied half-way.
    let pid = unsafe { syscall(libc::SYS_clone, [libc::SIGCHLD as usize, 0, 0, 0, 0, 0])? };
    Ok(if pid == 0 {
        Forked::Child
    } else {
        Forked::Parent(pid as i32)
    })
}

/// `pidfd_open(pid, 0)`.
pub fn pidfd_open(pid: i32) -> Result<Fd> {
    // SAFETY: integer arguments; the result is a new fd.
    let fd = unsafe { syscall(libc::SYS_pidfd_open, [pid as usize, 0, 0, 0, 0, 0])? };
    Ok(Fd(fd as c_int))
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`.
pub fn pidfd_send_signal(pidfd: &Fd, signal: i32) -> Result<()> {
    // SAFETY: integer arguments and a null siginfo pointer, which the kernel accepts.
    unsafe {
        syscall(
            libc::SYS_pidfd_send_signal,
            [pidfd.raw() as usize, signal as usize, 0, 0, 0, 0],
        )?;
    }
    Ok(())
}

/// `kill(pid, signal)`.
pub fn kill(pid: i32, signal: i32) -> Result<()> {
    // SAFETY: integer arguments only.
    unsafe { syscall(libc::SYS_kill, [pid as usize, signal as usize, 0, 0, 0, 0])? };
    Ok(())
}

/// How a child ended, from `wait4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus(pub i32);

impl WaitStatus {
    /// Its exit status, if it exited.
    pub fn exit_status(self) -> Option<i32> {
        (self.0 & 0x7f == 0).then_some((self.0 >> 8) & 0xff)
    }

    /// The signal that killed it, if one did.
    pub fn terminating_signal(self) -> Option<i32> {
        let sig = self.0 & 0x7f;
        (sig != 0 && sig != 0x7f).then_some(sig)
    }
}

/// `wait4(-1, &status, WNOHANG, NULL)`: a child that has ended, or `None` when none has yet.
/// `Err(Errno::CHILD)` when there are no children at all.
pub fn wait_any_nohang() -> Result<Option<(i32, WaitStatus)>> {
    let mut status: c_int = 0;
    // SAFETY: the status pointer is to a live c_int; no rusage.
    let pid = unsafe {
        syscall(
            libc::SYS_wait4,
            [
                usize::MAX, // -1: any child
                &mut status as *mut c_int as usize,
                libc::WNOHANG as usize,
                0,
                0,
                0,
            ],
        )?
    };
    Ok((pid != 0).then_some((pid as i32, WaitStatus(status))))
}

/// `setpgid(0, 0)`: a process group of its own.
pub fn setpgid_self() -> Result<()> {
    // SAFETY: integer arguments only.
    unsafe { syscall(libc::SYS_setpgid, [0; 6])? };
    Ok(())
}

/// `getpgid(0)`.
pub fn getpgrp() -> i32 {
    // SAFETY: integer arguments only; getpgid(0) cannot fail.
    unsafe { raw(libc::SYS_getpgid, [0; 6]) as i32 }
}

/// `tcsetpgrp(fd, pgrp)`: `ioctl(fd, TIOCSPGRP, &pgrp)`.
pub fn tcsetpgrp(fd: c_int, pgrp: i32) -> Result<()> {
    // SAFETY: TIOCSPGRP reads one pid_t from the pointer, which is to a live i32.
    unsafe {
        syscall(
            libc::SYS_ioctl,
            [
                fd as usize,
                libc::TIOCSPGRP as usize,
                &pgrp as *const i32 as usize,
                0,
                0,
                0,
            ],
        )?;
    }
    Ok(())
}

/// Sets every signal's disposition to the default (`SIGKILL` and `SIGSTOP` excepted).
pub fn reset_signal_dispositions() {
    // struct kernel_sigaction: handler, flags, restorer, mask; all zero is SIG_DFL.
    let act = [0usize; 4];
    for sig in 1..=NSIG {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: the kernel only reads the zeroed sigaction; the old-action pointer is null.
        let _ = unsafe {
            syscall(
                libc::SYS_rt_sigaction,
                [sig as usize, act.as_ptr() as usize, 0, 8, 0, 0],
            )
        };
    }
}

/// `execve(path, argv, envp)`. Only returns on failure.
pub fn execve(path: &CStr, argv: CStrList, envp: CStrList) -> Errno {
    // SAFETY: the path is NUL-terminated; both vectors are NULL-terminated vectors of
    // NUL-terminated strings (CStrList's invariant). On success nothing returns.
    match unsafe {
        syscall(
            libc::SYS_execve,
            [
                path.as_ptr() as usize,
                argv.as_ptr() as usize,
                envp.as_ptr() as usize,
                0,
                0,
                0,
            ],
        )
    } {
        Err(e) => e,
        Ok(_) => Errno(libc::EINVAL),
    }
}

/// What glibc's `execvp` does when `execve(script)` fails with `ENOEXEC` (a file without
/// `#!` or ELF header): `execve("/bin/sh", ["/bin/sh", script, args...], envp)`. `args` are
/// the arguments after the program name. Only returns on failure (`E2BIG` beyond 4094
/// arguments).
pub fn execve_sh(script: &CStr, args: CStrList, envp: CStrList) -> Errno {
    const SH: &CStr = c"/bin/sh";
    let mut vec = [core::ptr::null::<c_char>(); 4096];
    let mut strings = [SH.as_ptr(), script.as_ptr()]
        .into_iter()
        .chain(args.iter().map(CStr::as_ptr));
    // The last slot stays NULL.
    for slot in vec.iter_mut().take(4095) {
        match strings.next() {
            Some(s) => *slot = s,
            None => break,
        }
    }
    if strings.next().is_some() {
        return Errno(libc::E2BIG);
    }
    // The vector is NULL-terminated and its strings outlive the call; execve only reads it.
    execve(SH, CStrList { ptr: vec.as_ptr() }, envp)
}

/// `exit_group(code)`: ends the process at once (nothing to flush: output is unbuffered).
pub fn exit(code: i32) -> ! {
    loop {
        // SAFETY: exit_group does not return; nothing is left to run.
        let _ = unsafe { raw(libc::SYS_exit_group, [code as usize, 0, 0, 0, 0, 0]) };
    }
}

/// For a panic handler: a message on stderr, then exit status 134 (128 + `SIGABRT`, which a
/// PID 1 cannot send itself).
pub fn panicked() -> ! {
    write_all(2, b"berth-init: internal error (panic)\n");
    exit(128 + libc::SIGABRT)
}

/// The few C library functions that `core` and the compiler call (`compiler_builtins` does not
/// provide them on `*-linux-gnu`), for a freestanding build: no libc is linked. Byte by byte
/// with volatile accesses, so that the optimiser cannot turn a loop back into a call to the
/// very function; berth-init only ever moves a few KiB.
#[cfg(all(not(feature = "std"), panic = "abort"))]
mod libc_mem {
    use core::ffi::{c_char, c_int};
    use core::ptr::{read_volatile, write_volatile};

    /// # Safety
    /// `dest` and `src` valid for `n` bytes, not overlapping.
    #[no_mangle]
    unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        for i in 0..n {
            // SAFETY: i < n, within both buffers (the caller's promise).
            unsafe { write_volatile(dest.add(i), read_volatile(src.add(i))) };
        }
        dest
    }

    /// # Safety
    /// `dest` and `src` valid for `n` bytes; they may overlap.
    #[no_mangle]
    unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
        if (dest as usize) <= (src as usize) {
            for i in 0..n {
                // SAFETY: i < n; copying forwards never overwrites a byte still to be read
                // when dest is below src.
                unsafe { write_volatile(dest.add(i), read_volatile(src.add(i))) };
            }
        } else {
            for i in (0..n).rev() {
                // SAFETY: i < n; copying backwards never overwrites a byte still to be read
                // when dest is above src.
                unsafe { write_volatile(dest.add(i), read_volatile(src.add(i))) };
            }
        }
        dest
    }

    /// # Safety
    /// `dest` valid for `n` bytes.
    #[no_mangle]
    unsafe extern "C" fn memset(dest: *mut u8, c: c_int, n: usize) -> *mut u8 {
        for i in 0..n {
            // SAFETY: i < n, within the buffer (the caller's promise).
            unsafe { write_volatile(dest.add(i), c as u8) };
        }
        dest
    }

    /// # Safety
    /// `a` and `b` valid for `n` bytes.
    #[no_mangle]
    unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
        for i in 0..n {
            // SAFETY: i < n, within both buffers (the caller's promise).
            let (x, y) = unsafe { (read_volatile(a.add(i)), read_volatile(b.add(i))) };
            if x != y {
                return c_int::from(x) - c_int::from(y);
            }
        }
        0
    }

    /// # Safety
    /// As for `memcmp`.
    #[no_mangle]
    unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> c_int {
        // SAFETY: the caller's promise, passed on.
        unsafe { memcmp(a, b, n) }
    }

    /// # Safety
    /// `s` a NUL-terminated string.
    #[no_mangle]
    unsafe extern "C" fn strlen(s: *const c_char) -> usize {
        let mut n = 0;
        // SAFETY: every byte up to and including the NUL is readable (the caller's promise).
        while unsafe { read_volatile(s.add(n)) } != 0 {
            n += 1;
        }
        n
    }
}
