//! The container store on the real kernel: overlay rootfs over stored layers, size limits with
//! a loop-mounted ext4 image, removal, and cleanup of unfinished containers.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_storage::quota::{self, loop_devices_of};
use berth_storage::{
    mount_overlay, BackingFs, ContainerError, ContainerStore, LayerStore, QuotaError,
    RootfsOptions, UnpackOptions, Upper,
};
use common::{Tar, DEFAULT};
use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags, UnmountFlags};
use sha2::{Digest, Sha256};
use std::os::fd::AsFd;

const MIB: usize = 1 << 20;

/// Whether the test can run; prints `SKIPPED: reason` when it cannot.
fn can_run(test: &str, needs_loop: bool) -> bool {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIPPED: {test}: needs root (overlay and ext4 mounts, loop devices)");
        return false;
    }
    if needs_loop && quota::mkfs_ext4().is_none() {
        eprintln!("SKIPPED: {test}: mkfs.ext4 not found (install e2fsprogs)");
        return false;
    }
    if needs_loop && !Path::new("/dev/loop-control").exists() {
        eprintln!("SKIPPED: {test}: no /dev/loop-control (loop module not loaded?)");
        return false;
    }
    true
}

/// A temporary store root; on drop (also after a failed assertion) unmounts everything under
/// it, detaches loop devices backed by files under it, and deletes it.
struct Scratch {
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        Scratch {
            dir: Some(dir),
            root,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for mount_point in mounts_under(&self.root).into_iter().rev() {
            let _ = rustix::mount::unmount(&mount_point, UnmountFlags::DETACH);
        }
        for device in loops_under(&self.root) {
            let _ = berth_sys::loopdev::detach(&device);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}

/// Mount points at or under `root`, in mount order.
fn mounts_under(root: &Path) -> Vec<PathBuf> {
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape)
        .filter(|path| path.starts_with(root))
        .collect()
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(field: &str) -> PathBuf {
    let mut out = String::new();
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(byte) => {
                out.push(byte as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    PathBuf::from(out)
}

/// Loop devices whose backing file is under `root` (deleted or not).
fn loops_under(root: &Path) -> Vec<PathBuf> {
    let mut devices = Vec::new();
    for entry in fs::read_dir("/sys/block").unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(n) = name.strip_prefix("loop") else {
            continue;
        };
        if let Ok(backing) = fs::read_to_string(entry.path().join("loop/backing_file")) {
            if Path::new(backing.trim_end()).starts_with(root) {
                devices.push(PathBuf::from(format!("/dev/loop{n}")));
            }
        }
    }
    devices
}

/// Autoclear may finish just after the unmount returns: wait a little for it.
fn wait_for_no_loops(root: &Path) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = loops_under(root);
        if left.is_empty() || Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn diff_id(tar: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(tar)))
}

/// Two stored layers: `base` (dir/base, dir/shared) and `top` (dir/top) on it. Returns the
/// layer store and the lower directories of `top`, top-most first.
fn two_layers(root: &Path) -> (LayerStore, Vec<PathBuf>) {
    let layers = LayerStore::open(root.join("layers-root")).unwrap();
    let mut base = Tar::new();
    base.dir("dir/", DEFAULT)
        .file("dir/base", DEFAULT, b"base")
        .file("dir/shared", DEFAULT, b"from base");
    let base = base.bytes();
    let mut top = Tar::new();
    top.dir("dir/", DEFAULT).file("dir/top", DEFAULT, b"top");
    let top = top.bytes();
    let opts = UnpackOptions::default();
    let base = layers.put(None, &diff_id(&base), &base[..], &opts).unwrap();
    let top = layers
        .put(Some(&base.chain_id), &diff_id(&top), &top[..], &opts)
        .unwrap();
    let lowers = layers.lower_dirs(&top.chain_id).unwrap();
    (layers, lowers)
}

/// Write `total` bytes to `path` in 1 MiB chunks and sync; the first error, if any.
fn fill(path: &Path, total: usize) -> io::Result<()> {
    let mut file = File::create(path)?;
    let chunk = vec![0xA5u8; MIB];
    for _ in 0..total / MIB {
        file.write_all(&chunk)?;
    }
    file.sync_all()
}

fn size(text: &str) -> RootfsOptions {
    RootfsOptions::parse(&[format!("size={text}")]).unwrap()
}

fn tmp_entries(store: &ContainerStore) -> Vec<String> {
    fs::read_dir(store.root().join("container-tmp"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn rootfs_over_two_layers_writes_only_to_the_upper() {
    if !can_run("rootfs_over_two_layers_writes_only_to_the_upper", false) {
        return;
    }
    let scratch = Scratch::new();
    let (layers, lowers) = two_layers(&scratch.root);
    let store = ContainerStore::open(scratch.root.join("store")).unwrap();
    let layer = store
        .create("web-1", &lowers, &RootfsOptions::default())
        .unwrap();
    assert_eq!(layer.lowers, lowers);
    assert_eq!(layer.size, None);
    assert_eq!(store.get("web-1").unwrap(), Some(layer.clone()));
    assert!(
        mounts_under(store.root()).is_empty(),
        "create mounts nothing"
    );

    let merged = store.mount("web-1").unwrap();
    assert_eq!(store.mount("web-1").unwrap(), merged, "mount is idempotent");
    assert_eq!(fs::read(merged.join("dir/base")).unwrap(), b"base");
    assert_eq!(fs::read(merged.join("dir/top")).unwrap(), b"top");
    fs::write(merged.join("dir/new"), b"written in the container").unwrap();
    fs::write(merged.join("dir/shared"), b"changed").unwrap();

    let upper = store.upper_dir("web-1").unwrap();
    assert_eq!(
        fs::read(upper.join("dir/new")).unwrap(),
        b"written in the container"
    );
    assert_eq!(fs::read(upper.join("dir/shared")).unwrap(), b"changed");
    let base_dir = &lowers[1];
    assert_eq!(fs::read(base_dir.join("dir/shared")).unwrap(), b"from base");
    assert!(!base_dir.join("dir/new").exists() && !lowers[0].join("dir/new").exists());

    store.unmount("web-1").unwrap();
    assert!(mounts_under(store.root()).is_empty());
    // The data survives an unmount/mount cycle.
    let merged = store.mount("web-1").unwrap();
    assert_eq!(fs::read(merged.join("dir/shared")).unwrap(), b"changed");

    store.remove("web-1").unwrap();
    assert!(mounts_under(store.root()).is_empty());
    assert_eq!(store.get("web-1").unwrap(), None);
    assert!(store.list().unwrap().is_empty());
    assert!(tmp_entries(&store).is_empty());
    assert!(matches!(
        store.remove("web-1"),
        Err(ContainerError::NotFound { .. })
    ));
    // The image layers are untouched.
    assert_eq!(fs::read(base_dir.join("dir/shared")).unwrap(), b"from base");
    drop(layers);
}

#[test]
fn a_container_without_layers_mounts_an_empty_rootfs() {
    if !can_run("a_container_without_layers_mounts_an_empty_rootfs", false) {
        return;
    }
    let scratch = Scratch::new();
    let store = ContainerStore::open(&scratch.root).unwrap();
    store
        .create("scratch", &[], &RootfsOptions::default())
        .unwrap();
    let merged = store.mount("scratch").unwrap();
    assert_eq!(fs::read_dir(&merged).unwrap().count(), 0);
    fs::write(merged.join("hello"), b"hi").unwrap();
    assert_eq!(
        fs::read(store.upper_dir("scratch").unwrap().join("hello")).unwrap(),
        b"hi"
    );
    assert_eq!(
        store
            .list()
            .unwrap()
            .iter()
            .map(|l| &l.id)
            .collect::<Vec<_>>(),
        ["scratch"]
    );
    store.remove("scratch").unwrap();
    assert!(mounts_under(store.root()).is_empty());
}

#[test]
fn size_limit_stops_writes_with_enospc() {
    if !can_run("size_limit_stops_writes_with_enospc", true) {
        return;
    }
    let scratch = Scratch::new();
    let (_layers, lowers) = two_layers(&scratch.root);
    let store = ContainerStore::open(scratch.root.join("store")).unwrap();

    let small = store.create("small", &lowers, &size("64m")).unwrap();
    assert_eq!(small.size, Some(64 << 20));
    let mkfs = small.mkfs_time.unwrap();
    eprintln!("mkfs.ext4 of a 64 MiB image took {mkfs:?}");
    assert!(
        mounts_under(store.root()).is_empty(),
        "create mounts nothing"
    );
    assert!(
        wait_for_no_loops(store.root()).is_empty(),
        "create keeps no loop device"
    );
    let image = store.root().join("containers/small/rootfs.img");
    let allocated = fs::metadata(&image).map(|m| {
        use std::os::unix::fs::MetadataExt;
        m.blocks() * 512
    });
    eprintln!("64 MiB image allocates {} KiB", allocated.unwrap() / 1024);

    let big = store.create("big", &lowers, &size("256m")).unwrap();
    let free = store
        .create("free", &lowers, &RootfsOptions::default())
        .unwrap();
    assert_eq!((big.size, free.size), (Some(256 << 20), None));

    let small_root = store.mount("small").unwrap();
    assert_eq!(
        loop_devices_of(&image).unwrap().len(),
        1,
        "mounted: one loop device"
    );
    assert_eq!(fs::read(small_root.join("dir/top")).unwrap(), b"top");
    let started = Instant::now();
    let err = fill(&small_root.join("big-file"), 100 * MIB).unwrap_err();
    let written = fs::metadata(small_root.join("big-file")).unwrap().len();
    eprintln!(
        "ENOSPC after {:?}, {} MiB written",
        started.elapsed(),
        written / MIB as u64
    );
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);

    for id in ["big", "free"] {
        let root = store.mount(id).unwrap();
        fill(&root.join("big-file"), 100 * MIB).unwrap();
        assert_eq!(
            fs::metadata(root.join("big-file")).unwrap().len(),
            100 * MIB as u64
        );
    }

    for id in ["small", "big", "free"] {
        store.remove(id).unwrap();
    }
    assert!(mounts_under(store.root()).is_empty());
    assert_eq!(wait_for_no_loops(store.root()), Vec::<PathBuf>::new());
    assert!(tmp_entries(&store).is_empty());
    assert!(fs::read_dir(store.root().join("containers"))
        .unwrap()
        .next()
        .is_none());
}

#[test]
fn bad_sizes_and_failed_creations_leave_nothing() {
    if !can_run("bad_sizes_and_failed_creations_leave_nothing", true) {
        return;
    }
    for (option, needle) in [
        ("size=0", "greater than zero"),
        ("size=abc", "size=\"abc\""),
        ("size=64q", "size=\"64q\""),
        ("size=1k", "at least 4 MiB"),
        ("size=", "size=\"\""),
        ("inodes=100", "unknown option \"inodes\""),
    ] {
        let err = RootfsOptions::parse(&[option]).unwrap_err().to_string();
        assert!(err.contains(needle), "{option}: {err}");
    }

    let scratch = Scratch::new();
    let store = ContainerStore::open(&scratch.root).unwrap();
    // Past the parser, mkfs.ext4 refuses a 1-byte image: nothing may stay behind.
    let tiny = RootfsOptions {
        size: Some(1),
        ..RootfsOptions::default()
    };
    let err = store.create("tiny", &[], &tiny).unwrap_err();
    assert!(
        matches!(
            &err,
            ContainerError::Quota {
                source: QuotaError::Mkfs { .. },
                ..
            }
        ),
        "{err}"
    );
    let missing = vec![scratch.root.join("no-such-layer")];
    let err = store
        .create("orphan", &missing, &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ContainerError::BadLower { .. }), "{err}");
    for id in ["", "..", "a/b", "../../etc", ".hidden"] {
        let err = store
            .create(id, &[], &RootfsOptions::default())
            .unwrap_err();
        assert!(
            matches!(err, ContainerError::InvalidId { .. }),
            "{id:?}: {err}"
        );
    }

    // An image that is not ext4: attached, the mount fails, the loop device lets go.
    let garbage = scratch.root.join("garbage.img");
    File::create(&garbage).unwrap().set_len(16 << 20).unwrap();
    fs::create_dir(scratch.root.join("garbage-mnt")).unwrap();
    let err = quota::mount_image(&garbage, &scratch.root.join("garbage-mnt")).unwrap_err();
    assert!(matches!(err, QuotaError::Mount { .. }), "{err}");
    fs::remove_file(&garbage).unwrap();

    assert!(store.list().unwrap().is_empty());
    assert!(tmp_entries(&store).is_empty());
    assert!(mounts_under(&scratch.root).is_empty());
    assert!(wait_for_no_loops(&scratch.root).is_empty());

    store
        .create("twice", &[], &RootfsOptions::default())
        .unwrap();
    let err = store
        .create("twice", &[], &RootfsOptions::default())
        .unwrap_err();
    assert!(matches!(err, ContainerError::AlreadyExists { .. }), "{err}");
    store.remove("twice").unwrap();
}

#[test]
fn open_cleans_up_unfinished_containers() {
    if !can_run("open_cleans_up_unfinished_containers", true) {
        return;
    }
    let scratch = Scratch::new();
    let store = ContainerStore::open(&scratch.root).unwrap();
    let tmp = store.root().join("container-tmp");

    // A creation that died with its image and its overlay mounted.
    let crashed = tmp.join("crashed-creating-999999-0.incomplete");
    for dir in ["merged", "fs", "empty"] {
        fs::create_dir_all(crashed.join(dir)).unwrap();
    }
    let image = crashed.join("rootfs.img");
    quota::make_image(&image, 16 << 20).unwrap();
    quota::mount_image(&image, &crashed.join("fs")).unwrap();
    for dir in ["fs/upper", "fs/work"] {
        fs::create_dir(crashed.join(dir)).unwrap();
    }
    let upper = Upper {
        upper: &crashed.join("fs/upper"),
        work: &crashed.join("fs/work"),
    };
    mount_overlay(
        &[crashed.join("empty")],
        Some(upper),
        &crashed.join("merged"),
    )
    .unwrap();
    // A removal that died half-way, nothing mounted; and a stray file.
    let half_removed = tmp.join("gone-removing-999999-1.incomplete");
    fs::create_dir_all(half_removed.join("upper/etc")).unwrap();
    fs::write(tmp.join("stray"), b"").unwrap();
    // A creation still in progress (its directory locked): left alone.
    let live = tmp.join("live-creating-1-2.incomplete");
    fs::create_dir(&live).unwrap();
    let lock = File::open(&live).unwrap();
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).unwrap();
    assert_eq!(mounts_under(store.root()).len(), 2);
    assert_eq!(loop_devices_of(&image).unwrap().len(), 1);

    let store = ContainerStore::open(store.root()).unwrap();
    assert_eq!(tmp_entries(&store), ["live-creating-1-2.incomplete"]);
    assert!(mounts_under(store.root()).is_empty());
    assert!(wait_for_no_loops(store.root()).is_empty());
    drop(lock);

    let store = ContainerStore::open(store.root()).unwrap();
    assert!(tmp_entries(&store).is_empty());
}

/// `mkfs.xfs`, when installed and the kernel has XFS.
fn mkfs_xfs() -> Option<PathBuf> {
    let filesystems = fs::read_to_string("/proc/filesystems").ok()?;
    if !filesystems
        .lines()
        .any(|l| l.split_whitespace().last() == Some("xfs"))
    {
        return None;
    }
    ["/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A 512 MiB sparse XFS image under `root`, loop-mounted (with `prjquota` if asked) on
/// `root/<name>`. The error of the kernel's `fsconfig_create` comes back (XFS without quota
/// support refuses `prjquota` with `EINVAL`).
fn mount_xfs(mkfs: &Path, root: &Path, name: &str, prjquota: bool) -> io::Result<PathBuf> {
    let image = root.join(format!("{name}.img"));
    File::create(&image).unwrap().set_len(512 << 20).unwrap();
    let status = std::process::Command::new(mkfs)
        .args(["-q", "-f"])
        .arg(&image)
        .status()
        .unwrap();
    assert!(status.success(), "mkfs.xfs: {status}");
    let backing = File::options().read(true).write(true).open(&image).unwrap();
    let device =
        berth_sys::loopdev::attach(backing.as_fd(), berth_sys::loopdev::flags::AUTOCLEAR).unwrap();
    let target = root.join(name);
    fs::create_dir(&target).unwrap();
    let fsfd = rustix::mount::fsopen("xfs", FsOpenFlags::FSOPEN_CLOEXEC).unwrap();
    rustix::mount::fsconfig_set_string(&fsfd, "source", device.path()).unwrap();
    if prjquota {
        rustix::mount::fsconfig_set_flag(&fsfd, "prjquota").unwrap();
    }
    rustix::mount::fsconfig_create(&fsfd)?;
    let mnt = rustix::mount::fsmount(
        &fsfd,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )
    .unwrap();
    rustix::mount::move_mount(
        &mnt,
        "",
        CWD,
        &target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .unwrap();
    Ok(target)
}

fn project_limit(store: &ContainerStore, project: u32) -> u64 {
    let dir = File::open(store.root()).unwrap();
    match berth_sys::projquota::project_block_limit(dir.as_fd(), project) {
        Ok(bytes) => bytes,
        // No quota record left for the project: no limit.
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => 0,
        Err(e) => panic!("reading the limit of project {project}: {e}"),
    }
}

#[test]
fn size_limit_on_xfs_is_a_project_quota() {
    if !can_run("size_limit_on_xfs_is_a_project_quota", true) {
        return;
    }
    let Some(mkfs) = mkfs_xfs() else {
        eprintln!("SKIPPED: size_limit_on_xfs_is_a_project_quota: no XFS in the kernel or no mkfs.xfs (install xfsprogs)");
        return;
    };
    let scratch = Scratch::new();
    let (_layers, lowers) = two_layers(&scratch.root);
    let xfs = match mount_xfs(&mkfs, &scratch.root, "xfs", true) {
        Ok(xfs) => xfs,
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            eprintln!("SKIPPED: size_limit_on_xfs_is_a_project_quota: XFS refuses prjquota ({e}): kernel without CONFIG_XFS_QUOTA?");
            return;
        }
        Err(e) => panic!("mounting XFS with prjquota: {e}"),
    };
    assert_eq!(
        quota::detect_backing(&xfs).unwrap(),
        BackingFs::XfsProjectQuota
    );
    let store = ContainerStore::open(xfs.join("store")).unwrap();

    let small = store.create("small", &lowers, &size("64m")).unwrap();
    let project = small.project.expect("a project quota, not an image");
    assert!(small.mkfs_time.is_none());
    assert!(!store.root().join("containers/small/rootfs.img").exists());
    assert_eq!(project_limit(&store, project), 64 << 20);
    let big = store.create("big", &lowers, &size("256m")).unwrap();
    assert_ne!(big.project, Some(project));
    let free = store
        .create("free", &lowers, &RootfsOptions::default())
        .unwrap();
    assert_eq!(free.project, None);

    let small_root = store.mount("small").unwrap();
    assert_eq!(fs::read(small_root.join("dir/top")).unwrap(), b"top");
    let err = fill(&small_root.join("big-file"), 100 * MIB).unwrap_err();
    let written = fs::metadata(small_root.join("big-file")).unwrap().len();
    eprintln!(
        "XFS project quota: ENOSPC after {} MiB",
        written / MIB as u64
    );
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    for id in ["big", "free"] {
        let root = store.mount(id).unwrap();
        fill(&root.join("big-file"), 100 * MIB).unwrap();
    }

    for id in ["small", "big", "free"] {
        store.remove(id).unwrap();
    }
    assert_eq!(project_limit(&store, project), 0, "limit cleared");
    assert_eq!(mounts_under(store.root()), Vec::<PathBuf>::new());
    assert!(tmp_entries(&store).is_empty());
}

#[test]
fn xfs_without_prjquota_gets_an_image_and_keeps_project_ids() {
    let test = "xfs_without_prjquota_gets_an_image_and_keeps_project_ids";
    if !can_run(test, true) {
        return;
    }
    let Some(mkfs) = mkfs_xfs() else {
        eprintln!("SKIPPED: {test}: no XFS in the kernel or no mkfs.xfs (install xfsprogs)");
        return;
    };
    let scratch = Scratch::new();
    let xfs = mount_xfs(&mkfs, &scratch.root, "xfs", false).unwrap();
    assert_eq!(
        quota::detect_backing(&xfs).unwrap(),
        BackingFs::Other { magic: 0x5846_5342 }
    );

    // Project ids (what a project quota is keyed on) are set and inherited without quotas.
    let parent = xfs.join("projects");
    fs::create_dir_all(parent.join("a")).unwrap();
    assert_eq!(quota::next_project_id(&[&parent]).unwrap(), 1);
    let a = File::open(parent.join("a")).unwrap();
    berth_sys::projquota::set_project_inherit(a.as_fd(), 41).unwrap();
    fs::create_dir(parent.join("a/child")).unwrap();
    let child = File::open(parent.join("a/child")).unwrap();
    assert_eq!(berth_sys::projquota::project_id(child.as_fd()).unwrap(), 41);
    assert_eq!(quota::next_project_id(&[&parent]).unwrap(), 42);
    // Without quota accounting, setting a limit fails cleanly.
    assert!(berth_sys::projquota::set_project_block_limit(a.as_fd(), 41, 1 << 20).is_err());

    // Without prjquota, a size limit on XFS is an ext4 image like anywhere else.
    let store = ContainerStore::open(xfs.join("store")).unwrap();
    let layer = store.create("c", &[], &size("64m")).unwrap();
    assert_eq!(layer.project, None);
    assert!(layer.mkfs_time.is_some());
    let root = store.mount("c").unwrap();
    let err = fill(&root.join("big-file"), 100 * MIB).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    store.remove("c").unwrap();
    assert_eq!(mounts_under(store.root()), Vec::<PathBuf>::new());
}
