//! Project quotas (XFS `prjquota`): a directory's project id (`FS_IOC_FSGETXATTR` /
//! `FS_IOC_FSSETXATTR`) and a project's block limit (`quotactl_fd(Q_XSETQLIM, PRJQUOTA)`,
//! Linux 5.14+). fd-typed, no policy.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

/// `_IOR('X', 31, struct fsxattr)`.
const FS_IOC_FSGETXATTR: libc::c_ulong = 0x801C_581F;
/// `_IOW('X', 32, struct fsxattr)`.
const FS_IOC_FSSETXATTR: libc::c_ulong = 0x401C_5820;
/// New files and directories inherit the directory's project id.
const FS_XFLAG_PROJINHERIT: u32 = 0x0000_0200;
/// `Q_XSETQLIM` (`XQM_CMD(4)`).
const Q_XSETQLIM: u32 = (b'X' as u32) << 8 | 4;
/// `Q_XGETQUOTA` (`XQM_CMD(3)`).
const Q_XGETQUOTA: u32 = (b'X' as u32) << 8 | 3;
const PRJQUOTA: u32 = 2;
const FS_DQUOT_VERSION: i8 = 1;
const FS_PROJ_QUOTA: i8 = 2;
const FS_DQ_BSOFT: u16 = 1 << 2;
const FS_DQ_BHARD: u16 = 1 << 3;
/// Quota block counts are in 512-byte basic blocks.
const BASIC_BLOCK: u64 = 512;

/// `struct fsxattr` from `<linux/fs.h>`.
#[repr(C)]
#[derive(Default)]
struct FsXattr {
    fsx_xflags: u32,
    fsx_extsize: u32,
    fsx_nextents: u32,
    fsx_projid: u32,
    fsx_cowextsize: u32,
    fsx_pad: [u8; 8],
}

/// `struct fs_disk_quota` from `<linux/dqblk_xfs.h>`.
#[repr(C)]
#[derive(Default)]
struct FsDiskQuota {
    d_version: i8,
    d_flags: i8,
    d_fieldmask: u16,
    d_id: u32,
    d_blk_hardlimit: u64,
    d_blk_softlimit: u64,
    d_ino_hardlimit: u64,
    d_ino_softlimit: u64,
    d_bcount: u64,
    d_icount: u64,
    d_itimer: i32,
    d_btimer: i32,
    d_iwarns: u16,
    d_bwarns: u16,
    d_itimer_hi: i8,
    d_btimer_hi: i8,
    d_rtbtimer_hi: i8,
    d_padding2: i8,
    d_rtb_hardlimit: u64,
    d_rtb_softlimit: u64,
    d_rtbcount: u64,
    d_rtbtimer: i32,
    d_rtbwarns: u16,
    d_padding3: i16,
    d_padding4: [u8; 8],
}

fn get_xattr(dir: BorrowedFd<'_>) -> io::Result<FsXattr> {
    let mut attr = FsXattr::default();
    // SAFETY: FS_IOC_FSGETXATTR writes a `struct fsxattr` (same repr(C) layout) into `attr`,
    // which lives for the whole call.
    let ret = unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_FSGETXATTR, &mut attr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(attr)
}

/// The project id of the file or directory `dir`.
pub fn project_id(dir: BorrowedFd<'_>) -> io::Result<u32> {
    Ok(get_xattr(dir)?.fsx_projid)
}

/// Give `dir` the project id `id`, and make what is created in it inherit that id.
pub fn set_project_inherit(dir: BorrowedFd<'_>, id: u32) -> io::Result<()> {
    let mut attr = get_xattr(dir)?;
    attr.fsx_projid = id;
    attr.fsx_xflags |= FS_XFLAG_PROJINHERIT;
    // SAFETY: FS_IOC_FSSETXATTR reads a `struct fsxattr` (same repr(C) layout) from `attr`,
    // which lives for the whole call.
    let ret = unsafe { libc::ioctl(dir.as_raw_fd(), FS_IOC_FSSETXATTR, &attr) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Set project `id`'s hard and soft block limits to `bytes` (rounded up to 512 bytes; 0
/// removes the limit) on the filesystem that `any_fd` is on.
pub fn set_project_block_limit(any_fd: BorrowedFd<'_>, id: u32, bytes: u64) -> io::Result<()> {
    let blocks = bytes.div_ceil(BASIC_BLOCK);
    let mut quota = FsDiskQuota {
        d_version: FS_DQUOT_VERSION,
        d_flags: FS_PROJ_QUOTA,
        d_fieldmask: FS_DQ_BSOFT | FS_DQ_BHARD,
        d_id: id,
        d_blk_hardlimit: blocks,
        d_blk_softlimit: blocks,
        ..FsDiskQuota::default()
    };
    quotactl_fd(any_fd, Q_XSETQLIM, id, &mut quota)
}

/// Project `id`'s hard block limit in bytes (0: none) on the filesystem `any_fd` is on.
pub fn project_block_limit(any_fd: BorrowedFd<'_>, id: u32) -> io::Result<u64> {
    let mut quota = FsDiskQuota::default();
    quotactl_fd(any_fd, Q_XGETQUOTA, id, &mut quota)?;
    Ok(quota.d_blk_hardlimit * BASIC_BLOCK)
}

fn quotactl_fd(fd: BorrowedFd<'_>, cmd: u32, id: u32, quota: &mut FsDiskQuota) -> io::Result<()> {
    let qcmd = (cmd << 8) | PRJQUOTA;
    // SAFETY: quotactl_fd with an XFS quota command reads or writes one `struct fs_disk_quota`
    // (same repr(C) layout) at `quota`, which is valid and exclusive for the whole call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_quotactl_fd,
            fd.as_raw_fd(),
            qcmd,
            id,
            std::ptr::from_mut(quota),
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_match_the_kernel_layout() {
        assert_eq!(std::mem::size_of::<FsXattr>(), 28);
        assert_eq!(std::mem::size_of::<FsDiskQuota>(), 112);
        assert_eq!(FS_IOC_FSGETXATTR, 0x801C_581F);
        assert_eq!(Q_XSETQLIM, 0x5804);
    }
}
