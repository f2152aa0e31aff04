//! Rootless Berth: a throwaway user (useradd -m, removed with userdel -r even on failure) runs
//! `berth` through setpriv: import, images, run (foreground and -d), exec, stats, top, stop,
//! rm; overlay inside the user namespace; limits refused on this host; the pause process killed
//! and replaced; nothing of the user left running.
//!
//! Needs root (to create the user), useradd, setpriv, newuidmap and a kernel that mounts
//! overlay in a user namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/berth-image/tests/support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_integration_tests::user::TestUser;
use berth_integration_tests::{
    bin_dir, describe, have, kill_pid, need_root, skip, stderr, stdout, template_rootfs,
};

/// The test's user ([`TestUser`]) with a busybox tarball it can read and its Berth, run with
/// the default (XDG) roots.
struct User {
    user: TestUser,
}

impl std::ops::Deref for User {
    type Target = TestUser;

    fn deref(&self) -> &TestUser {
        &self.user
    }
}

/// The uid owning the process (its real uid).
fn owner_of(pid: i32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl User {
    fn new(prefix: &str) -> User {
        let u = User {
            user: TestUser::new(prefix),
        };
        // The busybox rootfs, as a tarball the user can read.
        let tar = u.tarball();
        let out = Command::new("tar")
            .arg("-C")
            .arg(template_rootfs())
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {}", describe(&out));
        u.chown(&tar);
        u
    }

    fn tarball(&self) -> PathBuf {
        self.dir().join("bb.tar")
    }

    fn data_root(&self) -> PathBuf {
        self.home().join(".local/share/berth")
    }

    /// `berth ARGS` as the user, with its default roots (XDG_DATA_HOME unset: ~/.local/share).
    fn berth(&self, args: &[&str]) -> Output {
        self.command(&bin_dir().join("berth"), &[])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(
            out.status.success(),
            "berth {} as {}: {}",
            args.join(" "),
            self.name,
            describe(&out)
        );
        stdout(&out)
    }

    /// This test's processes of the user, by name, except the pause process.
    fn running(&self) -> Vec<(i32, String)> {
        self.processes()
            .into_iter()
            .filter(|(_, name)| name != "berth-pause")
            .collect()
    }

    fn pause_pid(&self) -> i32 {
        let path = self.xdg().join("berth/pause.pid");
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .trim()
            .parse()
            .unwrap()
    }

    /// The container directories in the user's layer store.
    fn container_layers(&self) -> usize {
        std::fs::read_dir(self.data_root().join("storage/containers"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

macro_rules! setup {
    ($prefix:expr) => {{
        need_root!();
        if let Some(reason) = berth_integration_tests::user::unusable() {
            skip!("{reason}");
        }
        User::new($prefix)
    }};
}

#[test]
fn rootless_import_run_exec_stats_stop_rm() {
    let u = setup!("brl");
    let tar = u.tarball();
    u.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
    assert!(u.ok(&["images"]).contains("bb"), "images lists bb");
    // The image's files are owned by root inside: by the user's uid on the host.
    let layers = u.data_root().join("storage");
    assert!(layers.exists(), "default data root under ~/.local/share");

    // Foreground: root inside, the user's uid mapped to 0, overlay as the rootfs.
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "sh",
        "-c",
        "id -u; cat /proc/self/uid_map; grep ' / ' /proc/mounts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.first(), Some(&"0"), "uid inside: {out}");
    let first_map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(first_map, ["0", &u.uid.to_string(), "1"], "uid_map: {out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("none / overlay") || l.contains(" / overlay ")),
        "the rootfs is an overlay mount inside the user namespace: {out}"
    );

    // Detached, then exec, stats, top.
    let id = u.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "bb",
        "sleep",
        "1000",
    ]);
    let id = id.trim();
    assert_eq!(id.len(), 64, "run -d prints the id: {id}");
    let pid: i32 = u
        .ok(&["inspect", "-f", "{{.State.Pid}}", "c1"])
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        owner_of(pid),
        Some(u.uid),
        "the container's init runs as the user's uid on the host"
    );
    assert_eq!(u.ok(&["exec", "c1", "id", "-u"]).trim(), "0");
    let stats = u.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.MemUsage}}|{{.PIDs}}",
        "c1",
    ]);
    let fields: Vec<&str> = stats.trim().split('|').collect();
    assert_eq!(fields.len(), 3, "stats: {stats}");
    assert_eq!(fields[0], "c1");
    assert!(!fields[1].starts_with("0B"), "memory from /proc: {stats}");
    assert_ne!(fields[2], "0", "pids from /proc: {stats}");
    let top = u.ok(&["top", "c1"]);
    assert!(
        top.contains("sleep 1000"),
        "top lists the container's processes: {top}"
    );

    // Resource limits cannot be enforced here: refused, nothing made.
    let before = (u.container_layers(), u.ok(&["ps", "-aq"]));
    let out = u.berth(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--network",
        "none",
        "bb",
        "true",
    ]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("cannot be enforced rootless") && err.contains("Delegate=yes"),
        "says why and how to enable it: {err}"
    );
    for flags in [&["--cpus", "1"][..], &["--pids-limit", "10"][..]] {
        let mut args = vec!["run", "--rm", "--network", "none"];
        args.extend_from_slice(flags);
        args.extend(["bb", "true"]);
        let out = u.berth(&args);
        assert_eq!(
            out.status.code(),
            Some(125),
            "{flags:?}: {}",
            describe(&out)
        );
        assert!(stderr(&out).contains("cannot be enforced rootless"));
    }
    assert_eq!(
        (u.container_layers(), u.ok(&["ps", "-aq"])),
        before,
        "a refused run leaves nothing"
    );

    // So are update's limits and pause (no cgroup, no freezer); c1 keeps running.
    for args in [&["update", "-m", "64m", "c1"][..], &["pause", "c1"][..]] {
        let out = u.berth(args);
        assert!(!out.status.success(), "{args:?}: {}", describe(&out));
        let err = stderr(&out);
        assert!(
            err.contains("rootless")
                && err.contains("on this host")
                && err.contains("Delegate=yes"),
            "{args:?}: {err}"
        );
    }
    assert!(u.ok(&["ps"]).contains("c1"), "c1 still running");

    // A bridge network is refused; the host's network works.
    let out = u.berth(&["run", "--rm", "--network", "bridge", "bb", "true"]);
    assert_eq!(out.status.code(), Some(125), "{}", describe(&out));
    assert!(stderr(&out).contains("rootless containers cannot use bridge networks"));
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "bb",
        "sh",
        "-c",
        "echo host-ok",
    ]);
    assert_eq!(out.trim(), "host-ok");

    // Stop and remove.
    u.ok(&["stop", "-t", "1", "c1"]);
    assert!(u.ok(&["ps", "-a"]).contains("Exited"), "c1 exited");
    u.ok(&["rm", "c1"]);
    assert!(u.ok(&["ps", "-aq"]).trim().is_empty(), "no containers left");
    assert_eq!(u.container_layers(), 0, "no container layers left");

    // Only the pause process is left running.
    let left = u.running();
    assert!(left.is_empty(), "left running: {left:?}");
    assert_eq!(owner_of(u.pause_pid()), Some(u.uid));
}

#[test]
fn rootless_pause_process_killed_then_next_command_works() {
    let u = setup!("brp");
    let tar = u.tarball();
    u.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
    let first = u.pause_pid();
    // With a running container: its monitor keeps the namespaces, which the next command
    // joins again.
    u.ok(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "none",
        "bb",
        "sleep",
        "1000",
    ]);
    kill_pid(first);
    assert!(
        berth_integration_tests::wait_until(5.0, || owner_of(first).is_none()
            || std::fs::read_link(format!("/proc/{first}/ns/user")).is_err()),
        "the pause process did not die"
    );
    assert!(u.ok(&["ps"]).contains("c1"), "c1 still listed as running");
    let second = u.pause_pid();
    assert_ne!(first, second, "a new pause process");
    assert_eq!(u.ok(&["exec", "c1", "id", "-u"]).trim(), "0");
    u.ok(&["rm", "-f", "c1"]);
    // Without containers: a new pair of namespaces; the image store is still usable.
    kill_pid(second);
    let out = u.ok(&["run", "--rm", "--network", "none", "bb", "echo", "again"]);
    assert_eq!(out.trim(), "again");
    assert_ne!(u.pause_pid(), second, "another pause process");
    let left = u.running();
    assert!(left.is_empty(), "left running: {left:?}");
}

#[test]
fn rootless_runtime_dir_falls_back_to_tmp() {
    let u = setup!("brt");
    // No XDG_RUNTIME_DIR: /tmp/berth-<uid>, made 0700.
    let fallback = Path::new("/tmp").join(format!("berth-{}", u.uid));
    let _ = std::fs::remove_dir_all(&fallback);
    let out = Command::new("setpriv")
        .args([
            "--reuid",
            &u.uid.to_string(),
            "--regid",
            &u.gid.to_string(),
            "--init-groups",
            "--reset-env",
            "env",
        ])
        .arg(format!("HOME={}", u.home().display()))
        .arg("PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .arg(bin_dir().join("berth"))
        .arg("ps")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let meta = std::fs::metadata(&fallback);
    u.kill_all();
    let _ = std::fs::remove_dir_all(&fallback);
    assert!(out.status.success(), "{}", describe(&out));
    let meta = meta.expect("the fallback runtime directory");
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    assert_eq!(meta.uid(), u.uid);
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
}

/// The user's `start-end` range in `file`, if any.
fn subid_range(file: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let line = text.lines().find(|l| l.starts_with(&format!("{name}:")))?;
    let mut f = line.split(':').skip(1);
    let start: u64 = f.next()?.parse().ok()?;
    let count: u64 = f.next()?.parse().ok()?;
    Some(format!("{start}-{}", start + count - 1))
}

#[test]
fn rootless_without_subuid_maps_only_the_user() {
    let u = setup!("brn");
    // Take the user's ranges away (usermod locks the files as useradd/userdel do).
    let (uids, gids) = (
        subid_range("/etc/subuid", &u.name),
        subid_range("/etc/subgid", &u.name),
    );
    let mut args = Vec::new();
    if let Some(r) = &uids {
        args.extend(["--del-subuids", r.as_str()]);
    }
    if let Some(r) = &gids {
        args.extend(["--del-subgids", r.as_str()]);
    }
    if !args.is_empty() {
        let out = Command::new("usermod")
            .args(&args)
            .arg(&u.name)
            .output()
            .unwrap();
        assert!(out.status.success(), "usermod: {}", describe(&out));
    }
    // The busybox rootfs with every file owned by root (the template has a user's home).
    let tar = u.dir().join("bb-root.tar");
    let st = Command::new("tar")
        .args(["--owner=0", "--group=0", "-C"])
        .arg(template_rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("chmod").arg("644").arg(&tar).status().unwrap();
    assert!(st.success());
    let out = u.berth(&["import", tar.to_str().unwrap(), "bb:latest"]);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("no subuid/subgid ranges found"),
        "warns that only the user's ids are mapped: {}",
        describe(&out)
    );
    let out = u.berth(&[
        "run",
        "--rm",
        "--network",
        "none",
        "bb",
        "cat",
        "/proc/self/uid_map",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let map: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(map, ["0", &u.uid.to_string(), "1"], "only the user mapped");
    assert!(
        !stderr(&out).contains("no subuid"),
        "the warning comes once, when the namespace is made: {}",
        describe(&out)
    );
    // An image with a file owned by another id cannot be unpacked: a clear error.
    let dir = u.dir().join("other");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("file"), "x").unwrap();
    let other = u.dir().join("other.tar");
    let st = Command::new("tar")
        .args(["--owner=1234", "--group=1234", "-C"])
        .arg(&dir)
        .arg("-cf")
        .arg(&other)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("chmod")
        .arg("644")
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let out = u.berth(&["import", other.to_str().unwrap(), "other:latest"]);
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        stderr(&out).contains("owner 1234:1234 is not mapped in this user namespace"),
        "{}",
        describe(&out)
    );
}

#[test]
fn rootless_pull_from_a_registry() {
    let u = setup!("brg");
    let Some(registry) = support::registry::TestRegistry::start() else {
        skip!("needs docker-registry");
    };
    // Root puts the busybox image in the registry, from a private store.
    let rootful = u.dir().join("rootful");
    let reference = format!("{}/rootless/bb:latest", registry.host);
    let as_root = |args: &[&str]| {
        let out = Command::new(bin_dir().join("berth"))
            .arg("--root")
            .arg(&rootful)
            .arg("--runroot")
            .arg(u.dir().join("rootful-run"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
    };
    as_root(&["import", u.tarball().to_str().unwrap(), &reference]);
    as_root(&["push", &reference]);
    // The user pulls it (the layers unpack with the image's owners mapped) and runs it.
    u.ok(&["pull", &reference]);
    assert!(u.ok(&["images"]).contains("rootless/bb"));
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        &reference,
        "sh",
        "-c",
        "echo pulled; id -u",
    ]);
    assert_eq!(out, "pulled\n0\n");
}

#[test]
fn rootless_keep_id_runs_as_the_user_and_writes_as_the_user() {
    let u = setup!("brk");
    let tar = u.tarball();
    u.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
    let shared = u.dir().join("shared");
    std::fs::create_dir(&shared).unwrap();
    u.chown(&shared);
    let vol = format!("{}:/x", shared.display());
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "-v",
        &vol,
        "bb",
        "sh",
        "-c",
        "id -u; id -g; touch /x/made-inside",
    ]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [u.uid.to_string(), u.gid.to_string()],
        "keep-id: the process is not the user"
    );
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(shared.join("made-inside")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (u.uid, u.gid),
        "owner on the host"
    );
    // -u still chooses the process's user.
    let out = u.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--userns",
        "keep-id",
        "-u",
        "0",
        "bb",
        "id",
        "-u",
    ]);
    assert_eq!(out.trim(), "0");
}

#[test]
fn rootless_default_network_publishes_a_port() {
    let u = setup!("brn");
    if !have("pasta") && !have("slirp4netns") {
        skip!("needs pasta (passt) or slirp4netns");
    }
    let tar = u.tarball();
    u.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
    let port = berth_integration_tests::net::free_port().to_string();
    let publish = format!("127.0.0.1:{port}:80");
    u.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        &publish,
        "bb",
        "sh",
        "-c",
        "mkdir -p /w && echo hello-rootless > /w/index.html && httpd -f -p 80 -h /w",
    ]);
    let mut body = String::new();
    let served = berth_integration_tests::wait_until(10.0, || {
        let out = Command::new("busybox")
            .args([
                "wget",
                "-q",
                "-O",
                "-",
                &format!("http://127.0.0.1:{port}/"),
            ])
            .output()
            .unwrap();
        body = stdout(&out);
        body.contains("hello-rootless")
    });
    assert!(served, "the published port did not serve: {body:?}");
    let ports = u.ok(&["port", "web"]);
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{port}")),
        "{ports}"
    );
    let links = u.ok(&["exec", "web", "ls", "/sys/class/net"]);
    assert!(
        links.split_whitespace().any(|l| l != "lo"),
        "no interface but lo: {links}"
    );
    u.ok(&["rm", "-f", "web"]);
    let left = u.running();
    assert!(left.is_empty(), "left running: {left:?}");
}
