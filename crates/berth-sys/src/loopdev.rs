//! Loop devices: attach a backing file with `LOOP_CONFIGURE` (Linux 5.8+), detach with
//! `LOOP_CLR_FD`. fd-typed, no policy: the caller decides flags and cleans up.
//!
//! Written here rather than taken from `loopdev-3` because that crate generates its bindings
//! with `bindgen` at build time (libclang on every build machine) for four ioctls.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const LOOP_CONTROL: &str = "/dev/loop-control";
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// How often a free device may be taken by someone else between `GET_FREE` and `CONFIGURE`.
const ATTACH_ATTEMPTS: usize = 16;

/// `LO_FLAGS_*` for [`attach`].
pub mod flags {
    /// The device is read-only.
    pub const READ_ONLY: u32 = 1;
    /// Detach automatically when the last opener (a mount, an fd) goes away.
    pub const AUTOCLEAR: u32 = 4;
    /// Scan the device for partitions.
    pub const PARTSCAN: u32 = 8;
    /// Use direct I/O on the backing file.
    pub const DIRECT_IO: u32 = 16;
}

const LO_NAME_SIZE: usize = 64;
const LO_KEY_SIZE: usize = 32;

/// `struct loop_info64` from `<linux/loop.h>`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; LO_NAME_SIZE],
    lo_crypt_name: [u8; LO_NAME_SIZE],
    lo_encrypt_key: [u8; LO_KEY_SIZE],
    lo_init: [u64; 2],
}

/// `struct loop_config` from `<linux/loop.h>`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// An attached loop device, open. With [`flags::AUTOCLEAR`] it detaches itself once this fd
/// and every other user (a mount) are gone.
#[derive(Debug)]
pub struct LoopDevice {
    file: File,
    number: u32,
}

impl LoopDevice {
    /// The device's number (`N` of `/dev/loopN`).
    pub fn number(&self) -> u32 {
        self.number
    }

    /// `/dev/loopN`.
    pub fn path(&self) -> PathBuf {
        device_path(self.number)
    }

    /// Detach the backing file now (`LOOP_CLR_FD`). With users left, the kernel turns this
    /// into autoclear.
    pub fn detach(&self) -> io::Result<()> {
        clear_fd(self.file.as_fd())
    }
}

impl AsFd for LoopDevice {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// `/dev/loopN`.
pub fn device_path(number: u32) -> PathBuf {
    PathBuf::from(format!("/dev/loop{number}"))
}

/// Attach `backing` (opened read-write unless `flags` has `READ_ONLY`) to a free loop device.
/// Retries when another process takes the free device first.
pub fn attach(backing: BorrowedFd<'_>, lo_flags: u32) -> io::Result<LoopDevice> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(LOOP_CONTROL)?;
    let mut last = io::Error::from_raw_os_error(libc::EBUSY);
    for _ in 0..ATTACH_ATTEMPTS {
        let number = get_free(control.as_fd())?;
        let file = OpenOptions::new()
            .read(true)
            .write(lo_flags & flags::READ_ONLY == 0)
            .custom_flags(libc::O_CLOEXEC)
            .open(device_path(number))?;
        match configure(file.as_fd(), backing, lo_flags) {
            Ok(()) => return Ok(LoopDevice { file, number }),
            // Someone else configured it between GET_FREE and CONFIGURE: take another.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Detach the loop device at `path` (`LOOP_CLR_FD`). `ENXIO`: it was not attached.
pub fn detach(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)?;
    clear_fd(file.as_fd())
}

fn get_free(control: BorrowedFd<'_>) -> io::Result<u32> {
    // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number or -1.
    let ret = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(ret as u32)
}

fn configure(device: BorrowedFd<'_>, backing: BorrowedFd<'_>, lo_flags: u32) -> io::Result<()> {
    let config = LoopConfig {
        fd: backing.as_raw_fd() as u32,
        block_size: 0,
        info: LoopInfo64 {
            lo_device: 0,
            lo_inode: 0,
            lo_rdevice: 0,
            lo_offset: 0,
            lo_sizelimit: 0,
            lo_number: 0,
            lo_encrypt_type: 0,
            lo_encrypt_key_size: 0,
            lo_flags,
            lo_file_name: [0; LO_NAME_SIZE],
            lo_crypt_name: [0; LO_NAME_SIZE],
            lo_encrypt_key: [0; LO_KEY_SIZE],
            lo_init: [0; 2],
        },
        reserved: [0; 8],
    };
    // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which `config` is (repr(C), same
    // layout as <linux/loop.h>), alive for the whole call; `backing` is an open fd.
    let ret = unsafe {
        libc::ioctl(
            device.as_raw_fd(),
            LOOP_CONFIGURE,
            std::ptr::addr_of!(config),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn clear_fd(device: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: LOOP_CLR_FD takes an integer argument (ignored) and touches no user memory.
    let ret = unsafe { libc::ioctl(device.as_raw_fd(), LOOP_CLR_FD, 0) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn loop_config_matches_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn attach_and_detach_a_file() {
        if !is_root() || !Path::new(LOOP_CONTROL).exists() {
            eprintln!("SKIPPED: attach_and_detach_a_file needs root and /dev/loop-control");
            return;
        }
        let path = std::env::temp_dir().join(format!("berth-sys-loop-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        file.set_len(1 << 20).unwrap();
        let result = attach(file.as_fd(), flags::AUTOCLEAR);
        let _ = std::fs::remove_file(&path);
        let dev = result.unwrap();
        let sys = format!("/sys/block/loop{}/loop/backing_file", dev.number());
        let backing = std::fs::read_to_string(&sys).unwrap();
        assert!(backing.contains("berth-sys-loop-"), "{backing}");
        dev.detach().unwrap();
    }

    fn is_root() -> bool {
        // SAFETY: geteuid cannot fail and has no side effects.
        unsafe { libc::geteuid() == 0 }
    }
}
