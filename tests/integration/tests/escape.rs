//! Container-escape attempts on the real kernel, each run twice: by root (`NAME`) and by an
//! unprivileged user the test creates, with rootless berth (`NAME::rootless`). Each test runs an
//! attack inside a DEFAULT container (`berth run --rm bb ...`) and asserts that it is refused and that the host
//! did not change; where it is cheap and harmless, the same attempt with the relevant
//! `--cap-add` / `--device` / `--security-opt` succeeds, so the test proves the wall and not a
//! broken tool. Known CVEs of runc are replayed against berth (CVE-2019-5736, CVE-2021-30465,
//! CVE-2024-21626).
//!
//! A note on controls: they use the one capability or option that lifts the wall rather than
//! `--privileged`, because `--privileged` asks for every capability the kernel knows, and where
//! the caller's own bounding set lacks one (as in some sandboxes) it cannot start at all
//! ("capset failure: Operation not permitted"). Controls that would change the host (setting
//! the clock, rebooting) are never run.
//!
//! Every test uses a private berth (its own data and run roots and its own bridge) with a busybox
//! image `bb` holding every busybox applet and, where the machine has a C compiler with a static
//! libc, `/bin/esc`: a tiny static helper compiled from [`HELPER_C`] for the syscalls busybox
//! cannot make (keyctl, ptrace, raw sockets, geteuid), also installed setuid-root as
//! `/bin/suid-esc`. On drop a test removes what it made and checks that the host's hostname,
//! domain name, boot id and clock were left alone.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

use berth_integration_tests::user::TestUser;
use berth_integration_tests::{bin_dir, have, is_root, need_root, skip, wait_until};

/// The helper's source: `esc euid | keyctl | rawsock | ptrace PID` prints `ok` (or the euid)
/// and exits 0, or prints the errno's name and exits 1. Nothing it does outlives the process:
/// keyctl joins a new anonymous session keyring, ptrace detaches at once.
const HELPER_C: &str = r#"
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <netinet/in.h>

int main(int argc, char **argv) {
    long r;
    if (argc < 2) { fprintf(stderr, "usage: esc euid|keyctl|rawsock|ptrace PID\n"); return 2; }
    if (!strcmp(argv[1], "euid")) { printf("%d\n", (int)geteuid()); return 0; }
    if (!strcmp(argv[1], "keyctl")) {
        r = syscall(SYS_keyctl, 1 /* KEYCTL_JOIN_SESSION_KEYRING */, 0L);
    } else if (!strcmp(argv[1], "rawsock")) {
        r = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    } else if (!strcmp(argv[1], "ptrace") && argc > 2) {
        r = ptrace(PTRACE_ATTACH, atoi(argv[2]), 0, 0);
        if (r == 0) ptrace(PTRACE_DETACH, atoi(argv[2]), 0, 0);
    } else { fprintf(stderr, "esc: bad usage\n"); return 2; }
    if (r < 0) { printf("%s\n", strerrorname_np(errno)); return 1; }
    printf("ok\n");
    return 0;
}
"#;

/// What a container must never change on the host.
#[derive(Debug, PartialEq, Eq)]
struct HostIdentity {
    hostname: String,
    domainname: String,
    boot_id: String,
}

impl HostIdentity {
    fn now() -> HostIdentity {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        HostIdentity {
            hostname: read("/proc/sys/kernel/hostname"),
            domainname: read("/proc/sys/kernel/domainname"),
            boot_id: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// A private berth (own data and run roots, own default bridge) with a busybox image `bb`.
struct Berth {
    dir: tempfile::TempDir,
    bridge: String,
    /// Extra environment for every berth command (BERTH_RUNTIME, BERTH_INIT).
    env: Vec<(String, PathBuf)>,
    /// The static helper is in the image.
    helper: bool,
    host: HostIdentity,
    started: SystemTime,
    /// Host paths the test made outside its tempdir (removed on drop).
    scratch: Vec<PathBuf>,
    /// Rootless: the unprivileged user every berth command runs as.
    user: Option<TestUser>,
}

impl Berth {
    /// A private berth run by root, or (`user`) by that unprivileged user: rootless.
    fn new(user: Option<TestUser>) -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("besc")
            .tempdir_in("/tmp")
            .unwrap();
        if let Some(user) = &user {
            let st = Command::new("chmod")
                .arg("755")
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success());
            for sub in ["data", "run"] {
                std::fs::create_dir(dir.path().join(sub)).unwrap();
                user.chown(&dir.path().join(sub));
            }
        }
        let bridge = format!("bx{}", std::process::id());
        let mut b = Berth {
            dir,
            bridge,
            env: Vec::new(),
            helper: false,
            host: HostIdentity::now(),
            started: SystemTime::now(),
            scratch: Vec::new(),
            user,
        };
        let rootfs = b.rootfs();
        busybox_rootfs(&rootfs);
        b.helper = build_helper(b.dir.path(), &rootfs);
        b.import(&rootfs, "bb:latest");
        b
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Tar `rootfs` and import it as `name`.
    fn import(&self, rootfs: &Path, name: &str) {
        self.import_tar(rootfs, name, &[]);
    }

    /// [`Berth::image`], tarred with the files' capabilities (`security.capability`).
    fn image_with_xattrs(&self, name: &str, edit: impl FnOnce(&Path)) {
        let copy = self.edited_rootfs(name, edit);
        self.import_tar(
            &copy,
            name,
            &["--xattrs", "--xattrs-include=security.capability"],
        );
    }

    fn import_tar(&self, rootfs: &Path, name: &str, tar_flags: &[&str]) {
        let tar = self
            .dir
            .path()
            .join(format!("{}.tar", name.replace(':', "_")));
        let out = Command::new("tar")
            .args(tar_flags)
            .arg("-C")
            .arg(rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {}", describe(&out));
        let st = Command::new("chmod").arg("644").arg(&tar).status().unwrap();
        assert!(st.success());
        self.ok(&["import", tar.to_str().unwrap(), name]);
    }

    /// An image `name`: the busybox rootfs changed by `edit`.
    fn image(&self, name: &str, edit: impl FnOnce(&Path)) {
        let copy = self.edited_rootfs(name, edit);
        self.import(&copy, name);
    }

    /// A copy of the busybox rootfs changed by `edit`.
    fn edited_rootfs(&self, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
        let copy = self
            .dir
            .path()
            .join(format!("rootfs-{}", name.replace(':', "_")));
        let st = Command::new("cp")
            .arg("-a")
            .arg(self.rootfs())
            .arg(&copy)
            .status()
            .unwrap();
        assert!(st.success());
        edit(&copy);
        copy
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, args: &[&str]) -> Command {
        let berth = bin_dir().join("berth");
        let mut env: Vec<(String, OsString)> = vec![
            ("BERTH_BRIDGE".into(), self.bridge.clone().into()),
            ("BERTH_BRIDGE_SUBNET".into(), private_subnet().into()),
        ];
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone().into())));
        let mut cmd = match &self.user {
            Some(user) => user.command(&berth, &env),
            None => {
                let mut cmd = Command::new(&berth);
                cmd.envs(env);
                cmd
            }
        };
        cmd.arg("--root")
            .arg(self.data())
            .arg("--runroot")
            .arg(self.dir.path().join("run"))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Run, assert success, return stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        stdout(&out)
    }

    /// `berth run --rm FLAGS bb sh -c SCRIPT`.
    fn sh(&self, flags: &[&str], script: &str) -> Output {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "sh", "-c", script]);
        self.run(&args)
    }

    /// A unique host directory outside the tempdir (so it is not under the container's data
    /// root), removed on drop.
    fn host_dir(&mut self, tag: &str) -> PathBuf {
        // Unique per Berth: a test's root and rootless runs share the process.
        let unique = self.dir.path().file_name().unwrap().to_string_lossy();
        let d = PathBuf::from(format!("/tmp/berth-escape-{tag}-{unique}"));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        if let Some(user) = &self.user {
            user.chown(&d);
        }
        self.scratch.push(d.clone());
        d
    }

    /// Whether berth runs rootless here (as the test's unprivileged user).
    fn rootless(&self) -> bool {
        self.user.is_some()
    }

    /// Skip-worthy: the helper could not be built.
    fn need_helper(&self) -> Option<&'static str> {
        (!self.helper).then_some(
            "needs a C compiler with a static libc (cc -static) to build the syscall helper",
        )
    }

    fn ids_quiet(&self) -> Vec<String> {
        let out = self.run(&["ps", "-aq", "--no-trunc"]);
        stdout(&out).lines().map(str::to_owned).collect()
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        for id in self.ids_quiet() {
            let _ = self.run(&["rm", "-f", "-v", &id]);
        }
        if let Some(user) = &self.user {
            user.kill_all();
        }
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if point.starts_with(&root) {
                    let _ = Command::new("umount").args(["-l", point]).status();
                }
            }
        }
        // Private binaries the runtime may have mounted a read-only copy of.
        for (_, bin) in &self.env {
            use std::os::unix::fs::MetadataExt;
            if let Ok(m) = std::fs::metadata(bin) {
                let ro =
                    Path::new("/run/berth-runtime-exe").join(format!("{}-{}", m.dev(), m.ino()));
                let _ = nix::mount::umount2(&ro, nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(&ro);
            }
        }
        berth_integration_tests::remove_berth_bridge(&self.bridge);
        for d in &self.scratch {
            let _ = std::fs::remove_dir_all(d);
        }
        if !std::thread::panicking() {
            assert_eq!(
                HostIdentity::now(),
                self.host,
                "the host's identity changed"
            );
            let now = SystemTime::now();
            assert!(
                now >= self.started
                    && now
                        .duration_since(self.started)
                        .is_ok_and(|d| d.as_secs() < 24 * 3600),
                "the host's clock moved: started {:?}, now {now:?}",
                self.started
            );
        }
    }
}

/// A /24 for this test process's default bridge.
fn private_subnet() -> String {
    let pid = std::process::id();
    format!("10.{}.{}.0/24", 100 + (pid >> 8) % 100, pid % 256)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn describe(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    )
}

/// A busybox root filesystem with every applet, users and groups.
fn busybox_rootfs(root: &Path) {
    let bin = root.join("bin");
    for d in ["bin", "etc", "tmp", "mnt", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for tool in String::from_utf8_lossy(&list.stdout).lines() {
        if tool != "busybox" && !tool.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(tool));
        }
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nwww:x:1000:1000::/tmp:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nwww:x:1000:\n").unwrap();
}

/// Compile [`HELPER_C`] statically into `rootfs/bin/esc` and a setuid-root copy
/// `rootfs/bin/suid-esc`. False (with a note) when the machine cannot.
fn build_helper(dir: &Path, rootfs: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    if !have("cc") {
        eprintln!("note: no cc: tests that need the syscall helper skip");
        return false;
    }
    let src = dir.join("esc.c");
    std::fs::write(&src, HELPER_C).unwrap();
    let bin = rootfs.join("bin/esc");
    let out = Command::new("cc")
        .args(["-static", "-O1", "-o"])
        .arg(&bin)
        .arg(&src)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("note: cc -static failed: {}", stderr(&out));
        return false;
    }
    let suid = rootfs.join("bin/suid-esc");
    std::fs::copy(&bin, &suid).unwrap();
    std::fs::set_permissions(&suid, std::fs::Permissions::from_mode(0o4755)).unwrap();
    true
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some("needs root (real namespaces, cgroups and mounts)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("needs /bin/busybox (busybox-static)".into());
    }
    if !have("tar") {
        return Some("needs tar".into());
    }
    None
}

macro_rules! setup {
    () => {{
        need_root!();
        if let Some(reason) = skip_reason() {
            skip!("{reason}");
        }
        Berth::new(None)
    }};
    (rootless) => {{
        need_root!();
        if let Some(reason) = skip_reason() {
            skip!("{reason}");
        }
        if let Some(reason) = berth_integration_tests::user::unusable() {
            skip!("{reason}");
        }
        Berth::new(Some(TestUser::new("besc")))
    }};
}

/// An escape test, run twice: as root (`NAME`) and by an unprivileged user with rootless
/// berth (`NAME::rootless`). The attempt must fail both ways.
macro_rules! escape_test {
    (fn $name:ident($b:pat) $body:block) => {
        #[test]
        fn $name() {
            let $b = setup!();
            $body
        }

        mod $name {
            use super::*;

            #[test]
            fn rootless() {
                let $b = setup!(rootless);
                $body
            }
        }
    };
}

/// `(major, minor)` of the first block device in /sys/block (not ram/zram) whose /dev node the
/// host itself can open for reading (a sandboxed host may not be allowed its own disk).
fn host_disk() -> Option<(u32, u32)> {
    let mut names: Vec<_> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("ram") && !n.starts_with("zram"))
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        std::fs::File::open(format!("/dev/{name}")).ok()?;
        let dev = std::fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
        let (maj, min) = dev.trim().split_once(':')?;
        Some((maj.parse().ok()?, min.parse().ok()?))
    })
}

/// The host's /dev node of block device `maj:min`.
fn host_block_node(maj: u32, min: u32) -> Option<PathBuf> {
    let dev = std::fs::read_to_string(format!("/sys/dev/block/{maj}:{min}/uevent")).ok()?;
    let name = dev.lines().find_map(|l| l.strip_prefix("DEVNAME="))?;
    Some(Path::new("/dev").join(name))
}

fn sha256(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

// ---- /proc and /sys ----

escape_test! {
fn proc_sysrq_trigger_is_not_writable(b) {
    if !Path::new("/proc/sysrq-trigger").exists() {
        skip!("this kernel has no /proc/sysrq-trigger (built without CONFIG_MAGIC_SYSRQ)");
    }
    // `h` only prints the SysRq help to the kernel log: harmless if the wall is missing.
    let script = "echo h > /proc/sysrq-trigger && echo WROTE; true";
    let out = b.sh(&[], script);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !stdout(&out).contains("WROTE"),
        "a default container wrote /proc/sysrq-trigger: {}",
        describe(&out)
    );
    // Control (see the note on controls): CAP_SYS_ADMIN lifts the read-only mount, then it works.
    let out = b.sh(
        &["--cap-add", "SYS_ADMIN"],
        &format!("umount /proc/sysrq-trigger; {script}"),
    );
    assert!(
        stdout(&out).contains("WROTE"),
        "control: even without its read-only mount /proc/sysrq-trigger is not writable: {}",
        describe(&out)
    );
}
}

escape_test! {
fn proc_sys_is_read_only(b) {
    let host_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    // Writing back the value read: nothing changes even if the write goes through.
    let rewrite = "v=$(cat /proc/sys/kernel/printk_ratelimit) && \
                   echo \"$v\" > /proc/sys/kernel/printk_ratelimit && echo WROTE-RATELIMIT; ";
    let script = format!(
        "{rewrite}echo escape-test > /proc/sys/kernel/hostname && echo WROTE-HOSTNAME; \
         echo escape-test > /proc/sys/kernel/domainname && echo WROTE-DOMAINNAME; \
         echo x > /proc/sys/kernel/escape-new 2>/dev/null && echo CREATED; true"
    );
    let out = b.sh(&[], &script);
    assert!(out.status.success(), "{}", describe(&out));
    for word in [
        "WROTE-RATELIMIT",
        "WROTE-HOSTNAME",
        "WROTE-DOMAINNAME",
        "CREATED",
    ] {
        assert!(
            !stdout(&out).contains(word),
            "a default container could write /proc/sys ({word}): {}",
            describe(&out)
        );
    }
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
        host_hostname,
        "the host's hostname changed"
    );
    // Control (see the note on controls): with CAP_SYS_ADMIN the read-only /proc/sys can be
    // unmounted, and then the same write goes through. Rootless, the user namespace is a
    // second wall: the kernel's knobs stay closed even then.
    let out = b.sh(
        &["--cap-add", "SYS_ADMIN"],
        &format!("umount /proc/sys && {rewrite}true"),
    );
    assert_eq!(
        stdout(&out).contains("WROTE-RATELIMIT"),
        !b.rootless(),
        "with CAP_SYS_ADMIN and /proc/sys unmounted (rootless: {}): {}",
        b.rootless(),
        describe(&out)
    );
}
}

escape_test! {
fn sys_is_read_only(b) {
    let knob = "/sys/kernel/rcu_expedited";
    if !Path::new(knob).exists() {
        skip!("the host has no {knob} to try");
    }
    let before = std::fs::read_to_string(knob).unwrap();
    let script = format!(
        "v=$(cat {knob}) && echo \"$v\" > {knob} && echo WROTE; grep ' /sys ' /proc/mounts"
    );
    let out = b.sh(&[], &script);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !stdout(&out).contains("WROTE"),
        "a default container wrote {knob}: {}",
        describe(&out)
    );
    let sys = stdout(&out);
    assert!(
        sys.split_whitespace()
            .nth(3)
            .is_some_and(|o| o.split(',').any(|o| o == "ro")),
        "/sys is not mounted read-only: {sys}"
    );
    // Control (see the note on controls): CAP_SYS_ADMIN remounts /sys read-write, then the
    // same write works. Rootless, the user namespace still refuses the remount and the write.
    let out = b.sh(
        &["--cap-add", "SYS_ADMIN"],
        &format!("mount -o remount,rw /sys && {script}"),
    );
    assert_eq!(
        stdout(&out).contains("WROTE"),
        !b.rootless(),
        "with CAP_SYS_ADMIN, {knob} after a remount (rootless: {}): {}",
        b.rootless(),
        describe(&out)
    );
    assert_eq!(std::fs::read_to_string(knob).unwrap(), before);
}
}

// ---- mounts, modules, raw sockets ----

escape_test! {
fn mount_and_umount_are_refused(b) {
    let script = "mount -t tmpfs none /mnt && echo MOUNTED; \
                  umount /etc/hostname && echo UNMOUNTED-HOSTNAME; \
                  umount /proc && echo UNMOUNTED-PROC; true";
    let out = b.sh(&[], script);
    assert!(out.status.success(), "{}", describe(&out));
    for word in ["MOUNTED", "UNMOUNTED-HOSTNAME", "UNMOUNTED-PROC"] {
        assert!(
            !stdout(&out).lines().any(|l| l == word),
            "a default container could {word}: {}",
            describe(&out)
        );
    }
    let out = b.sh(
        &["--cap-add", "SYS_ADMIN"],
        "mount -t tmpfs none /mnt && echo MOUNTED",
    );
    assert!(
        stdout(&out).contains("MOUNTED"),
        "control: --cap-add SYS_ADMIN could not mount a tmpfs either: {}",
        describe(&out)
    );
}
}

escape_test! {
fn kernel_modules_cannot_be_loaded(b) {
    // 64 zero bytes are no module: even a kernel that took the call would refuse the image.
    let script = "head -c 64 /dev/zero > /tmp/x.ko; insmod /tmp/x.ko; echo rc=$?; \
                  modprobe escape_no_such_module; echo rc=$?";
    let out = b.sh(&[], script);
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !text.contains("rc=0"),
        "a module load succeeded in a default container: {}",
        describe(&out)
    );
    if !Path::new("/proc/modules").exists() {
        eprintln!(
            "note: this kernel has no module support (no /proc/modules): init_module fails \
             with ENOSYS for everyone, so the refusal is the kernel's and the \
             --cap-add SYS_MODULE control is not run: {text}"
        );
        return;
    }
    assert!(
        text.contains("Operation not permitted"),
        "insmod did not fail with EPERM: {}",
        describe(&out)
    );
    let out = b.sh(
        &["--cap-add", "SYS_MODULE"],
        "head -c 64 /dev/zero > /tmp/x.ko; insmod /tmp/x.ko",
    );
    assert!(
        !stderr(&out).contains("Operation not permitted"),
        "control: with CAP_SYS_MODULE the kernel still said EPERM (it should reject the image \
         instead): {}",
        describe(&out)
    );
}
}

escape_test! {
fn raw_sockets_need_net_raw(b) {
    let ping = "ping -c 1 -W 5 127.0.0.1 >/dev/null 2>&1; echo ping=$?";
    let with_helper = if b.helper {
        format!("{ping}; /bin/esc rawsock")
    } else {
        ping.to_owned()
    };
    let out = b.sh(&[], &with_helper);
    assert!(
        stdout(&out).contains("ping=0"),
        "control: ping 127.0.0.1 fails with the default capabilities: {}",
        describe(&out)
    );
    if b.helper {
        assert!(
            stdout(&out).lines().any(|l| l == "ok"),
            "control: no raw socket with the default capabilities: {}",
            describe(&out)
        );
    }
    let out = b.sh(&["--cap-drop", "NET_RAW"], &with_helper);
    if b.helper {
        assert!(
            stdout(&out).lines().any(|l| l == "EPERM"),
            "a raw socket was opened without CAP_NET_RAW: {}",
            describe(&out)
        );
    }
    // berth, like docker, sets net.ipv4.ping_group_range so that ICMP datagram sockets work
    // without CAP_NET_RAW: a ping that does not need a raw socket may still succeed.
    let group_range = b.sh(
        &["--cap-drop", "NET_RAW"],
        "cat /proc/sys/net/ipv4/ping_group_range",
    );
    if stdout(&out).contains("ping=0") {
        eprintln!(
            "note: busybox ping works without CAP_NET_RAW through an ICMP datagram socket \
             (ping_group_range {:?}): only the raw socket is refused",
            stdout(&group_range).trim()
        );
    }
    if !b.helper {
        assert!(
            !stdout(&out).contains("ping=0"),
            "ping worked without CAP_NET_RAW (and there is no helper to try a raw socket): {}",
            describe(&out)
        );
    }
}
}

// ---- host processes, keys, namespaces, reboot, clock ----

escape_test! {
fn host_processes_are_out_of_reach(mut b) {
    let host = b.host_dir("proc");
    std::fs::write(host.join("marker"), "host-secret\n").unwrap();
    let me = std::process::id();
    let marker = host.join("marker");
    let marker = marker.to_str().unwrap();
    let ptrace = if b.helper {
        format!("echo ptrace=$(/bin/esc ptrace {me}); echo ptrace-ppid=$(/bin/esc ptrace 0); ")
    } else {
        String::new()
    };
    let script = format!(
        "kill -0 {me} 2>/dev/null && echo SIGNALLED; \
         test -e /proc/{me} && echo SEEN; \
         cat /proc/1/root{marker} 2>/dev/null; \
         nsenter -t 1 -m -u -i -n -p cat {marker} 2>/dev/null; \
         {ptrace}echo pid1=$(readlink /proc/1/exe); echo pids=$(ls -d /proc/[0-9]* | wc -l)"
    );
    let out = b.sh(&[], &script);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("SIGNALLED"),
        "kill -0 reached the host: {text}"
    );
    assert!(!text.contains("SEEN"), "a host pid is visible: {text}");
    assert!(
        !text.contains("host-secret"),
        "the host's files were reached through /proc/1/root or nsenter: {text}"
    );
    if b.helper {
        assert!(
            text.contains("ptrace=ESRCH"),
            "PTRACE_ATTACH to the host's test process did not fail with ESRCH: {text}"
        );
    }
    // PID 1 is the container's own init, not the host's.
    let pid1 = text
        .lines()
        .find_map(|l| l.strip_prefix("pid1="))
        .unwrap_or_default();
    let host_init = std::fs::read_link("/proc/1/exe").unwrap_or_default();
    assert_ne!(
        Path::new(pid1),
        host_init.as_path(),
        "the container's pid 1 is the host's init: {text}"
    );
    let pids: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("pids="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(usize::MAX);
    assert!(pids < 10, "the container sees {pids} processes: {text}");
}
}

escape_test! {
fn another_containers_files_are_unreachable_through_proc(b) {
    let secret = format!("secret-{}", std::process::id());
    let a = format!("esc-a-{}", std::process::id());
    b.ok(&[
        "run",
        "-d",
        "--name",
        &a,
        "bb",
        "sh",
        "-c",
        &format!("echo {secret} > /secret; exec sleep 1000"),
    ]);
    assert!(
        wait_until(20.0, || b
            .run(&["exec", &a, "cat", "/secret"])
            .stdout
            .starts_with(secret.as_bytes())),
        "container A never wrote its secret"
    );
    let pid = b
        .ok(&["inspect", "-f", "{{.State.Pid}}", &a])
        .trim()
        .to_owned();
    assert!(pid.parse::<u32>().is_ok_and(|p| p > 0), "pid {pid:?}");
    let script = format!(
        "cat /proc/*/root/secret 2>/dev/null; cat /proc/{pid}/root/secret 2>/dev/null; \
         kill -0 {pid} 2>/dev/null && echo SIGNALLED; ls /proc/*/root/ >/dev/null 2>&1; true"
    );
    let out = b.sh(&[], &script);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        !stdout(&out).contains(&secret),
        "container B read A's file: {}",
        describe(&out)
    );
    assert!(
        !stdout(&out).contains("SIGNALLED"),
        "container B signalled A's pid: {}",
        describe(&out)
    );
    b.ok(&["rm", "-f", &a]);
}
}

escape_test! {
fn keyctl_is_refused(b) {
    if let Some(why) = b.need_helper() {
        skip!("{why}");
    }
    // The kernel keyring is not namespaced: docker's seccomp profile refuses keyctl.
    let out = b.sh(&[], "/bin/esc keyctl; true");
    assert!(
        !stdout(&out).lines().any(|l| l == "ok"),
        "keyctl(KEYCTL_JOIN_SESSION_KEYRING) worked in a default container: {}",
        describe(&out)
    );
    let out = b.sh(
        &["--security-opt", "seccomp=unconfined"],
        "/bin/esc keyctl; true",
    );
    assert!(
        stdout(&out).lines().any(|l| l == "ok"),
        "control: keyctl fails even with seccomp=unconfined: {}",
        describe(&out)
    );
}
}

escape_test! {
fn unshare_of_a_user_namespace_is_refused(b) {
    let script = "unshare -U true; echo rc=$?";
    let out = b.sh(&[], script);
    assert!(
        stdout(&out).contains("rc=") && !stdout(&out).contains("rc=0"),
        "unshare -U worked in a default container (docker's seccomp profile refuses \
         CLONE_NEWUSER): {}",
        describe(&out)
    );
    let out = b.sh(&["--security-opt", "seccomp=unconfined"], script);
    assert!(
        stdout(&out).contains("rc=0"),
        "control: unshare -U fails even with seccomp=unconfined: {}",
        describe(&out)
    );
}
}

escape_test! {
fn reboot_is_refused_and_the_host_stays_up(b) {
    // Before anything that could reboot: the container has its own pid namespace (where even a
    // successful reboot(2) only ends the container) and no CAP_SYS_BOOT.
    let out = b.sh(
        &[],
        "readlink /proc/self/ns/pid; grep CapEff /proc/self/status",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let host_ns = std::fs::read_link("/proc/self/ns/pid").unwrap();
    assert!(
        !text.contains(&*host_ns.to_string_lossy()),
        "the container shares the host's pid namespace: not trying reboot: {text}"
    );
    let eff = text
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
        .unwrap();
    assert_eq!(eff & (1 << 22), 0, "CAP_SYS_BOOT is effective: {text}");
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    let out = b.sh(&[], "reboot -f; echo rc=$?");
    assert!(
        stdout(&out).contains("rc=") && !stdout(&out).contains("rc=0"),
        "reboot -f did not fail in a default container: {}",
        describe(&out)
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap(),
        boot_id
    );
    let out = b.sh(&[], "echo still-up");
    assert_eq!(stdout(&out), "still-up\n", "{}", describe(&out));
    // No positive control: with CAP_SYS_BOOT the call would kill the container's init (pid
    // namespace) at best, and nothing here is worth risking the host for.
}
}

escape_test! {
fn the_clock_cannot_be_set(b) {
    let before = SystemTime::now();
    // busybox `date -s` prints the date it was given and exits 0 even when settimeofday fails:
    // read the clock back instead.
    let out = b.sh(
        &[],
        "date -s '2001-01-01 00:00:00' >/dev/null; echo year=$(date +%Y)",
    );
    let after = SystemTime::now();
    assert!(
        stdout(&out).contains("year=") && !stdout(&out).contains("year=2001"),
        "date -s set the clock from a default container: {}",
        describe(&out)
    );
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "date -s did not fail with EPERM: {}",
        describe(&out)
    );
    assert!(after >= before, "the host's clock went back");
    // No positive control: with CAP_SYS_TIME the container would set the host's clock.
}
}

// ---- devices ----

escape_test! {
fn device_nodes_outside_the_allow_list_cannot_be_opened(b) {
    let disk = host_disk();
    let disk_part = disk
        .map(|(maj, min)| {
            format!(
                "mknod /tmp/disk b {maj} {min} && head -c 512 /tmp/disk >/dev/null && \
                 echo READ-DISK; "
            )
        })
        .unwrap_or_default();
    let script = format!(
        "{disk_part}test -e /dev/mem && echo HAS-MEM; \
         mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null && echo READ-MEM; \
         mknod /tmp/kmsg c 1 11 && head -c 1 /tmp/kmsg >/dev/null && echo READ-KMSG; true"
    );
    let out = b.sh(&[], &script);
    assert!(out.status.success(), "{}", describe(&out));
    for word in ["READ-DISK", "HAS-MEM", "READ-MEM", "READ-KMSG"] {
        assert!(
            !stdout(&out).contains(word),
            "a default container could {word}: {}",
            describe(&out)
        );
    }
    match disk {
        Some(_) if b.rootless() => eprintln!(
            "note: rootless, the --device control is not run: the user cannot open the \
             host's disk outside a container either"
        ),
        Some(_) => {
            // Control: the same node handed in with --device opens.
            let (maj, min) = disk.unwrap_or_default();
            let dev = host_block_node(maj, min).unwrap();
            let device = format!("{}:/dev/escape-disk", dev.display());
            let out = b.sh(
                &["--device", &device],
                "head -c 512 /dev/escape-disk >/dev/null && echo READ-DISK",
            );
            assert!(
                stdout(&out).contains("READ-DISK"),
                "control: --device could not open the block device either: {}",
                describe(&out)
            );
        }
        None => eprintln!(
            "note: no block device in /sys/block that the host itself can open: the disk case \
             was not tried"
        ),
    }
}
}

// ---- CVEs of runc ----

escape_test! {
fn cve_2019_5736_host_binaries_cannot_be_overwritten_from_inside(mut b) {
    // The attack targets whatever binaries berth runs: give it private copies of the runtime
    // and of init (berth-init is bind-mounted into every default container as its pid 1), so a
    // failure cannot damage the shared build.
    let bin = b.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, var) in [
        ("berth-runtime", "BERTH_RUNTIME"),
        ("berth-init", "BERTH_INIT"),
    ] {
        let copy = bin.join(name);
        std::fs::copy(bin_dir().join(name), &copy).unwrap();
        b.env.push((var.to_owned(), copy));
    }
    let watched: Vec<PathBuf> = b
        .env
        .iter()
        .map(|(_, p)| p.clone())
        .chain(
            ["berth", "berth-runtime", "berth-init", "berth-monitor"]
                .iter()
                .map(|n| bin_dir().join(n)),
        )
        .collect();
    let hashes: Vec<String> = watched.iter().map(|p| sha256(p)).collect();

    // `true >>` opens for writing (O_APPEND|O_CREAT) and writes nothing: harmless if it works.
    let out = b.sh(
        &[],
        "true >> /proc/self/exe && echo OPENED-SELF; true >> /proc/1/exe && echo OPENED-PID1; \
         echo pid1=$(readlink /proc/1/exe); sha256sum /proc/1/exe",
    );
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    assert!(
        !text.contains("OPENED"),
        "an exe was opened for writing: {}",
        describe(&out)
    );
    // PID 1 is berth-init (mounted in at /dev/init): the host binary itself, the target.
    let init_copy = &b.env.iter().find(|(k, _)| k == "BERTH_INIT").unwrap().1;
    assert!(
        text.contains(&sha256(init_copy)),
        "pid 1 is not the host's berth-init: {text}"
    );

    // During `exec`: a process inside keeps opening every /proc/PID/exe it sees for writing.
    let name = format!("esc-5736-{}", std::process::id());
    let watcher = "while :; do for p in /proc/[0-9]*; do \
        if true 2>/dev/null >> $p/exe; then echo \"$p $(readlink $p/exe)\" >> /tmp/opened; fi; \
        done; done";
    b.ok(&["run", "-d", "--name", &name, "bb", "sh", "-c", watcher]);
    for _ in 0..20 {
        let out = b.run(&["exec", &name, "true"]);
        assert!(out.status.success(), "exec: {}", describe(&out));
    }
    let out = b.run(&[
        "exec",
        &name,
        "sh",
        "-c",
        "true >> /proc/1/exe && echo OPENED-PID1; cat /tmp/opened 2>/dev/null; true",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stdout(&out).trim().is_empty(),
        "exes opened for writing from inside during exec: {}",
        describe(&out)
    );
    b.ok(&["rm", "-f", &name]);
    for (path, before) in watched.iter().zip(&hashes) {
        assert_eq!(&sha256(path), before, "{} was modified", path.display());
    }
}
}

escape_test! {
fn cve_2021_30465_mount_destination_symlinks_stay_in_the_rootfs(mut b) {
    let host = b.host_dir("30465-host");
    let src = b.host_dir("30465-src");
    let shared = b.host_dir("30465-shared");
    std::fs::write(host.join("marker"), "host-only\n").unwrap();
    std::fs::write(src.join("src-marker"), "from-the-volume\n").unwrap();
    let host_s = host.to_str().unwrap().to_owned();
    let rel = format!("../../../../../../../..{host_s}");
    b.image("bbsym:latest", |root| {
        std::os::unix::fs::symlink(&rel, root.join("escape")).unwrap();
        std::os::unix::fs::symlink(&host_s, root.join("escape-abs")).unwrap();
    });
    let host_untouched = |when: &str| {
        let mut entries: Vec<String> = std::fs::read_dir(&host)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        entries.sort();
        assert_eq!(entries, ["marker"], "{when}: the host directory changed");
        assert_eq!(
            std::fs::read_to_string(host.join("marker")).unwrap(),
            "host-only\n"
        );
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mountinfo.contains(&host_s),
            "{when}: something is mounted on the host directory: {mountinfo}"
        );
    };
    for dest in ["/escape", "/escape-abs"] {
        let vol = format!("{}:{dest}", src.display());
        let out = b.run(&[
            "run",
            "--rm",
            "-v",
            &vol,
            "bbsym",
            "sh",
            "-c",
            &format!(
                "cat {dest}/src-marker; touch {dest}/from-container; \
                 cat {host_s}/marker 2>/dev/null; grep -c ' {host_s} ' /proc/self/mountinfo"
            ),
        ]);
        host_untouched(dest);
        if out.status.success() {
            // The link was resolved inside the rootfs: the volume is at <rootfs>/<host path>.
            assert!(
                stdout(&out).contains("from-the-volume"),
                "{dest}: {}",
                describe(&out)
            );
            assert!(
                !stdout(&out).contains("host-only"),
                "{dest}: the container reads the host directory: {}",
                describe(&out)
            );
            assert!(
                stdout(&out).lines().last().is_some_and(|n| n != "0"),
                "{dest}: no mount at {host_s} inside the container: {}",
                describe(&out)
            );
            assert!(src.join("from-container").exists(), "{dest}");
            std::fs::remove_file(src.join("from-container")).unwrap();
        } else {
            assert!(
                !stderr(&out).trim().is_empty(),
                "{dest}: refused without a word: {}",
                describe(&out)
            );
        }
    }

    // The race itself: a container keeps swapping /shared/mnt between a directory and a link to
    // the host path while others mount a volume on /shared/mnt (bounded: 10 containers).
    let swapper =
        format!("cd /shared; while :; do rm -rf mnt; mkdir mnt; rm -rf mnt; ln -s {rel} mnt; done");
    let sh_vol = format!("{}:/shared", shared.display());
    let name = format!("esc-swap-{}", std::process::id());
    b.ok(&[
        "run", "-d", "--name", &name, "-v", &sh_vol, "bb", "sh", "-c", &swapper,
    ]);
    let src_vol = format!("{}:/shared/mnt", src.display());
    let mut started = 0;
    for _ in 0..10 {
        let out = b.run(&[
            "run",
            "--rm",
            "-v",
            &sh_vol,
            "-v",
            &src_vol,
            "bb",
            "sh",
            "-c",
            &format!("cat {host_s}/marker 2>/dev/null; ls / | grep -c .; true"),
        ]);
        host_untouched("race");
        assert!(
            !stdout(&out).contains("host-only"),
            "race: the container reads the host directory: {}",
            describe(&out)
        );
        started += usize::from(out.status.success());
    }
    eprintln!("note: the race: {started} of 10 containers started");
    b.ok(&["rm", "-f", &name]);
    host_untouched("end");
}
}

/// `berth ARGS` through a shell that first opens the host directory `dir` as fds 3..9 (not
/// close-on-exec), as a careless caller would pass them.
fn with_host_fds(b: &Berth, dir: &Path, args: &[&str]) -> Output {
    let berth = b.command(args);
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("exec 3<\"$0\" 4<\"$0\" 5<\"$0\" 6<\"$0\" 7<\"$0\" 8<\"$0\" 9<\"$0\"; exec \"$@\"")
        .arg(dir)
        .arg(berth.get_program())
        .args(berth.get_args())
        .envs(
            berth
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .stdin(Stdio::null());
    cmd.output().unwrap()
}

escape_test! {
fn cve_2024_21626_workdir_through_an_inherited_fd_stays_inside(mut b) {
    let host = b.host_dir("21626");
    std::fs::write(host.join("cwd-marker"), "host-cwd\n").unwrap();
    let rel = host.strip_prefix("/").unwrap().to_str().unwrap().to_owned();
    // From a cwd on the host, `..` climbs to the host's root, where the marker is.
    let probe = format!(
        "cat cwd-marker 2>/dev/null; cd ../../../../../../../.. 2>/dev/null && \
         cat ./{rel}/cwd-marker 2>/dev/null; echo cwd=$(readlink /proc/self/cwd)"
    );
    // Which of the caller's fds reached berth-runtime (it would refuse the cwd as outside the
    // root): not an escape by itself, but the leak CVE-2024-21626 needed.
    let mut reached = Vec::new();
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = with_host_fds(
            &b,
            &host,
            &["run", "--rm", "-w", &cwd, "bb", "sh", "-c", &probe],
        );
        assert!(
            !stdout(&out).contains("host-cwd"),
            "run -w {cwd}: the container reached the host directory: {}",
            describe(&out)
        );
        if !out.status.success() {
            assert!(
                !stderr(&out).trim().is_empty(),
                "run -w {cwd} failed without a word: {}",
                describe(&out)
            );
        }
        // An fd of the runtime's own (not the caller's) is refused the same way: only the
        // numbers that are refused with the caller's fds and not without them are a leak.
        let plain = b.run(&["run", "--rm", "-w", &cwd, "bb", "sh", "-c", &probe]);
        if stderr(&out).contains("outside of the container root")
            && !stderr(&plain).contains("outside of the container root")
        {
            reached.push(format!("run {n}"));
        }
    }
    let name = format!("esc-21626-{}", std::process::id());
    b.ok(&["run", "-d", "--name", &name, "bb", "sleep", "1000"]);
    for n in 3..=10 {
        let cwd = format!("/proc/self/fd/{n}");
        let out = with_host_fds(&b, &host, &["exec", "-w", &cwd, &name, "sh", "-c", &probe]);
        assert!(
            !stdout(&out).contains("host-cwd"),
            "exec -w {cwd}: the process reached the host directory: {}",
            describe(&out)
        );
        if !out.status.success() {
            assert!(
                !stderr(&out).trim().is_empty(),
                "exec -w {cwd} failed without a word: {}",
                describe(&out)
            );
        }
        let plain = b.run(&["exec", "-w", &cwd, &name, "sh", "-c", &probe]);
        if stderr(&out).contains("outside of the container root")
            && !stderr(&plain).contains("outside of the container root")
        {
            reached.push(format!("exec {n}"));
        }
    }
    b.ok(&["rm", "-f", &name]);
    // berth marks its caller's fds close-on-exec: none reaches the monitor or the runtime.
    assert!(
        reached.is_empty(),
        "the caller's inherited fds reached berth-runtime ({}): berth must not hand fds 3+ of \
         its caller down",
        reached.join(", ")
    );
    assert_eq!(
        std::fs::read_dir(&host).unwrap().count(),
        1,
        "the host directory changed"
    );
}
}

// ---- privileges ----

escape_test! {
fn setuid_binaries_gain_nothing_under_no_new_privileges(b) {
    if let Some(why) = b.need_helper() {
        skip!("{why}");
    }
    let out = b.run(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "--security-opt",
        "no-new-privileges",
        "bb",
        "/bin/suid-esc",
        "euid",
    ]);
    assert_eq!(
        stdout(&out).trim(),
        "1000",
        "a setuid-root binary changed the euid under no-new-privileges: {}",
        describe(&out)
    );
    let out = b.run(&["run", "--rm", "-u", "1000", "bb", "/bin/suid-esc", "euid"]);
    if stdout(&out).trim() == "0" {
        return;
    }
    let mode = b.run(&["run", "--rm", "bb", "stat", "-c", "%a %u", "/bin/suid-esc"]);
    let nnp = b.run(&[
        "run",
        "--rm",
        "-u",
        "1000",
        "bb",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    panic!(
        "control: without no-new-privileges the setuid-root binary did not become root \
         (mode/owner in the image: {}; {}): {}",
        stdout(&mode).trim(),
        stdout(&nnp).trim(),
        describe(&out)
    );
}
}

// ---- identity and paths ----

/// `CapEff` of `/proc/self/status` printed by a `grep` run with `flags`, as `-u 1000`.
fn cap_eff(b: &Berth, flags: &[&str], grep: &str) -> Output {
    let mut args = vec!["run", "--rm", "-u", "1000"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["bbcap", grep, "CapEff", "/proc/self/status"]);
    b.run(&args)
}

escape_test! {
fn file_capabilities_in_an_image_work_within_the_bounding_set(b) {
    if !have("setcap") {
        skip!("needs setcap (libcap2-bin)");
    }
    // A busybox named `grep` (so it runs that applet) carrying cap_net_bind_service+ep.
    b.image_with_xattrs("bbcap:latest", |root| {
        std::fs::create_dir_all(root.join("cap")).unwrap();
        std::fs::copy(root.join("bin/busybox"), root.join("cap/grep")).unwrap();
        let out = Command::new("setcap")
            .arg("cap_net_bind_service+ep")
            .arg(root.join("cap/grep"))
            .output()
            .unwrap();
        assert!(out.status.success(), "setcap: {}", describe(&out));
    });
    let out = cap_eff(&b, &[], "/cap/grep");
    assert_eq!(
        stdout(&out).split_whitespace().last(),
        Some("0000000000000400"),
        "the file capability did not take effect for uid 1000: {}",
        describe(&out)
    );
    let out = cap_eff(&b, &[], "/bin/grep");
    assert_eq!(
        stdout(&out).split_whitespace().last(),
        Some("0000000000000000"),
        "control: plain busybox as uid 1000 has capabilities: {}",
        describe(&out)
    );
    // Outside the bounding set the kernel refuses the exec (capabilities(7): a
    // capability-dumb binary that cannot get all its capabilities is not run).
    let out = cap_eff(&b, &["--cap-drop", "NET_BIND_SERVICE"], "/cap/grep");
    assert!(
        !out.status.success() && !stdout(&out).contains("0400"),
        "a file capability outside the bounding set was granted: {}",
        describe(&out)
    );
    let out = cap_eff(&b, &["--security-opt", "no-new-privileges"], "/cap/grep");
    assert!(
        !stdout(&out).contains("0000000000000400"),
        "no-new-privileges let a file capability through: {}",
        describe(&out)
    );
}
}

escape_test! {
fn group_add_and_named_users_resolve_in_the_image(b) {
    let out = b.run(&[
        "run",
        "--rm",
        "-u",
        "www:root",
        "--group-add",
        "www",
        "--group-add",
        "4242",
        "bb",
        "id",
    ]);
    assert_eq!(
        stdout(&out).trim(),
        "uid=1000(www) gid=0(root) groups=0(root),1000(www),4242",
        "{}",
        describe(&out)
    );
    for (flags, want) in [
        (
            &["-u", "nosuch"][..],
            "unable to find user nosuch: no matching entries in passwd file",
        ),
        (
            &["-u", "www:nosuch"][..],
            "unable to find group nosuch: no matching entries in group file",
        ),
        (
            &["--group-add", "nosuch"][..],
            "unable to find group nosuch: no matching entries in group file",
        ),
    ] {
        let before = b.ids_quiet();
        let out = b.sh(flags, "true");
        assert_eq!(
            out.status.code(),
            Some(125),
            "{flags:?}: {}",
            describe(&out)
        );
        assert!(stderr(&out).contains(want), "{flags:?}: {}", describe(&out));
        assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", describe(&out));
        assert_eq!(b.ids_quiet(), before, "{flags:?} left a container");
    }
}
}

escape_test! {
fn mask_and_unmask_change_what_the_container_can_read(b) {
    // /proc/keys is masked by default (a /dev/null bind: reads end at once); /etc/hostname
    // is a real file that mask= hides.
    let script = "wc -c < /etc/hostname; stat -c %t,%T /proc/keys; \
                  (echo 1 > /proc/sys/kernel/domainname) 2>/dev/null && echo rw || echo ro";
    let out = b.sh(&[], script);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    assert_ne!(lines[0].trim(), "0", "{}", describe(&out));
    assert_eq!(
        lines[1],
        "1,3",
        "/proc/keys is not masked: {}",
        describe(&out)
    );
    assert_eq!(lines[2], "ro", "{}", describe(&out));
    let out = b.sh(
        &[
            "--security-opt",
            "mask=/etc/hostname",
            "--security-opt",
            "unmask=/proc/keys",
        ],
        script,
    );
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 3, "{}", describe(&out));
    assert_eq!(
        lines[0].trim(),
        "0",
        "mask= did not hide the file: {}",
        describe(&out)
    );
    assert_ne!(
        lines[1],
        "1,3",
        "unmask= left /proc/keys masked: {}",
        describe(&out)
    );
    // unmask=ALL leaves /proc/sys writable only if the capability allows it: it is still
    // refused for a default container (no CAP_SYS_ADMIN), so check the mount instead.
    let out = b.sh(
        &["--security-opt", "unmask=ALL"],
        "grep -c ' /proc/sys ' /proc/self/mountinfo; stat -c %t,%T /proc/keys",
    );
    assert_eq!(
        stdout(&out).lines().collect::<Vec<_>>(),
        ["0", "0,0"],
        "unmask=ALL left a read-only or masked path: {}",
        describe(&out)
    );
    let out = b.sh(&["--security-opt", "mask=etc/x"], "true");
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(
        stderr(&out).contains("\"etc/x\" is not an absolute path"),
        "{}",
        describe(&out)
    );
}
}
