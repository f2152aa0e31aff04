//! User namespaces in the engine (`--userns`, `--uidmap`, `--gidmap`), as root on the real
//! kernel: `auto` ranges out of the `berth` entries of a subuid/subgid file that the test owns
//! (`BERTH_SUBUID_FILE`/`BERTH_SUBGID_FILE`: /etc is never edited), distinct for two running
//! containers and released by `rm`; container root is an unprivileged host uid (a file
//! written to a bind mount); the image layers through idmapped mounts, and through the chown'd
//! copy (forced with `BERTH_STORAGE_NO_IDMAP`, a test-only switch) made once and reused; and bad
//! input refused with one line, exit 125, nothing made.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use berth_integration_tests::*;

/// A private berth with a busybox image `bb` and its own subuid/subgid files.
struct Berth {
    dir: tempfile::TempDir,
    bridge: String,
    env: Vec<(String, String)>,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new()
            .prefix("buns")
            .tempdir_in("/tmp")
            .unwrap();
        // Reachable by the containers' unprivileged roots (a private tempdir is 0700).
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let b = Berth {
            bridge: format!("bu{}", std::process::id()),
            env: vec![
                (
                    "BERTH_SUBUID_FILE".into(),
                    dir.path().join("subuid").display().to_string(),
                ),
                (
                    "BERTH_SUBGID_FILE".into(),
                    dir.path().join("subgid").display().to_string(),
                ),
            ],
            dir,
        };
        let rootfs = b.dir.path().join("rootfs");
        busybox_rootfs(&rootfs);
        let tar = b.dir.path().join("bb.tar");
        let out = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {}", describe(&out));
        b.ok(&["import", tar.to_str().unwrap(), "bb:latest"]);
        b
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let pid = std::process::id();
        let mut cmd = Command::new(bin_dir().join("berth"));
        cmd.arg("--root")
            .arg(self.path("data"))
            .arg("--runroot")
            .arg(self.path("run"))
            .env("BERTH_BRIDGE", &self.bridge)
            .env(
                "BERTH_BRIDGE_SUBNET",
                format!("10.{}.{}.0/24", 100 + (pid >> 8) % 100, pid % 256),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "berth {args:?}: {}", describe(&out));
        stdout(&out)
    }

    /// The container's uid_map, read on the host (`/proc/PID/uid_map`).
    fn uid_map(&self, name: &str) -> String {
        let pid = self.ok(&["inspect", "-f", "{{.State.Pid}}", name]);
        std::fs::read_to_string(format!("/proc/{}/uid_map", pid.trim())).unwrap()
    }

    fn ids(&self) -> Vec<String> {
        stdout(&self.run(&["ps", "-aq", "--no-trunc"]))
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn ranges_in_db(&self) -> i64 {
        let db = rusqlite_count(&self.path("data"));
        db.unwrap_or(-1)
    }
}

/// Rows of `userns_ranges`, read with the sqlite3 tool if there is one.
fn rusqlite_count(data: &Path) -> Option<i64> {
    let db = std::fs::read_dir(data)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "db"))?;
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT count(*) FROM userns_ranges")
        .output()
        .ok()?;
    stdout(&out).trim().parse().ok()
}

impl Drop for Berth {
    fn drop(&mut self) {
        for id in self.ids() {
            let _ = self.run(&["rm", "-f", "-v", &id]);
        }
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for line in mounts.lines() {
            if let Some(point) = line.split(' ').nth(4) {
                if point.starts_with(&root) {
                    let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
                }
            }
        }
        remove_berth_bridge(&self.bridge);
    }
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

fn busybox_rootfs(root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for tool in String::from_utf8_lossy(&list.stdout).lines() {
        if tool != "busybox" && !tool.is_empty() {
            let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(tool));
        }
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
}

macro_rules! setup {
    () => {{
        need_root!();
        if !Path::new("/bin/busybox").exists() {
            skip!("needs /bin/busybox (busybox-static)");
        }
        if !have("tar") {
            skip!("needs tar");
        }
        Berth::new()
    }};
}

/// (host start, size) of the first line of a uid_map.
fn first_range(map: &str) -> (u64, u64) {
    let f: Vec<u64> = map
        .split_whitespace()
        .take(3)
        .map(|x| x.parse().unwrap())
        .collect();
    assert_eq!(f[0], 0, "container id 0 first: {map}");
    (f[1], f[2])
}

#[test]
fn auto_gives_running_containers_distinct_ranges_released_by_rm() {
    let b = setup!();
    b.ok(&[
        "run",
        "-d",
        "--name",
        "ua",
        "--userns=auto",
        "bb",
        "sleep",
        "300",
    ]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "uc",
        "--userns=auto",
        "bb",
        "sleep",
        "300",
    ]);
    let (a, c) = (first_range(&b.uid_map("ua")), first_range(&b.uid_map("uc")));
    assert_eq!((a.1, c.1), (65536, 65536), "a {a:?}, c {c:?}");
    assert!(
        a.0 + a.1 <= c.0 || c.0 + c.1 <= a.0,
        "overlap: a {a:?}, c {c:?}"
    );
    assert!(a.0 > 0 && c.0 > 0, "root is not host root");
    // The berth entries were made in the test's files, inside which both ranges lie.
    let subuid = std::fs::read_to_string(b.path("subuid")).unwrap();
    let entry: Vec<u64> = subuid
        .lines()
        .find_map(|l| l.strip_prefix("berth:"))
        .expect("berth entry made")
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    for r in [a, c] {
        assert!(
            r.0 >= entry[0] && r.0 + r.1 <= entry[0] + entry[1],
            "{r:?} in {entry:?}"
        );
    }
    assert!(std::fs::read_to_string(b.path("subgid"))
        .unwrap()
        .contains("berth:"));
    // Seen from inside too, and root inside is 0.
    let inside = b.ok(&["exec", "ua", "cat", "/proc/self/uid_map"]);
    assert_eq!(first_range(&inside), a);
    assert_eq!(b.ok(&["exec", "ua", "id", "-u"]).trim(), "0");
    // A stopped container keeps its range (podman's rule); rm releases it for the next.
    b.ok(&["stop", "-t", "0", "ua"]);
    let d = b.run(&[
        "run",
        "-d",
        "--name",
        "ud",
        "--userns=auto",
        "bb",
        "sleep",
        "300",
    ]);
    assert!(d.status.success(), "{}", describe(&d));
    let dr = first_range(&b.uid_map("ud"));
    assert!(dr.0 != a.0 && dr.0 != c.0, "d {dr:?} reuses a kept range");
    b.ok(&["rm", "-f", "ua", "ud"]);
    b.ok(&[
        "run",
        "-d",
        "--name",
        "ue",
        "--userns=auto",
        "bb",
        "sleep",
        "300",
    ]);
    assert_eq!(first_range(&b.uid_map("ue")), a, "a's range is free again");
    if let Some(n) = rusqlite_count(&b.path("data")) {
        assert_eq!(n, 2, "ranges held: c and e");
    } else {
        eprintln!("note: no sqlite3 tool: the table is not inspected directly");
    }
    let _ = b.ranges_in_db();
}

#[test]
fn container_root_writes_as_the_range_start_on_the_host() {
    let b = setup!();
    let shared = b.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let volume = format!("{}:/x", shared.display());
    let out = b.run(&[
        "run",
        "--rm",
        "--userns=auto",
        "-v",
        &volume,
        "bb",
        "sh",
        "-c",
        "cat /proc/self/uid_map > /x/map; touch /x/made-by-root; mkdir /tmp/ok; id -u",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    assert_eq!(stdout(&out).trim(), "0");
    let (start, _) = first_range(&std::fs::read_to_string(shared.join("map")).unwrap());
    let meta = std::fs::metadata(shared.join("made-by-root")).unwrap();
    assert_eq!(
        u64::from(meta.uid()),
        start,
        "owner on the host is the range start"
    );
    assert_ne!(meta.uid(), 0);
    // Explicit maps work the same way; --uidmap alone maps the gids too.
    let out = b.run(&[
        "run",
        "--rm",
        "--uidmap",
        "0:3200000:65536",
        "-v",
        &volume,
        "bb",
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; touch /x/explicit",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let maps: Vec<String> = stdout(&out)
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(maps, ["0 3200000 65536", "0 3200000 65536"]);
    let meta = std::fs::metadata(shared.join("explicit")).unwrap();
    assert_eq!((meta.uid(), meta.gid()), (3200000, 3200000));
}

/// The image's files, owned by 0 in the layer, are root's inside; writes land in the upper
/// layer as the range start. Run with idmapped lowers or the copies.
fn image_is_usable(b: &Berth, name: &str) {
    let out = b.run(&[
        "run",
        "--name",
        name,
        "--userns=auto:size=70000",
        "bb",
        "sh",
        "-c",
        "stat -c %u:%g /bin/busybox /etc/passwd; echo new > /etc/passwd; cat /proc/self/uid_map",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(&lines[..2], ["0:0", "0:0"], "{text}");
    let (start, size) = first_range(lines[2]);
    assert_eq!(size, 70000);
    // The copied-up file in the writable layer belongs to the mapped root on the host.
    let data = b.path("data");
    let found = walk_find(&data, "passwd", |p| {
        p.to_string_lossy().contains("/upper/")
            && std::fs::read_to_string(p).is_ok_and(|t| t == "new\n")
    });
    let passwd = found.expect("copied-up /etc/passwd in an upper dir");
    assert_eq!(u64::from(std::fs::metadata(passwd).unwrap().uid()), start);
}

fn walk_find(dir: &Path, name: &str, want: impl Fn(&Path) -> bool + Copy) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() && !kind.is_symlink() {
            if path.ends_with("merged") {
                continue;
            }
            if let Some(found) = walk_find(&path, name, want) {
                return Some(found);
            }
        } else if entry.file_name() == name && want(&path) {
            return Some(path);
        }
    }
    None
}

#[test]
fn layers_through_idmapped_mounts() {
    let b = setup!();
    image_is_usable(&b, "idm");
    let out = b.run(&["rm", "idm"]);
    assert!(out.status.success(), "{}", describe(&out));
    // No copy was made: the layers were idmapped.
    assert!(
        !b.path("data").join("storage/containers/mapped").exists()
            || walk_find(&b.path("data"), "busybox", |p| p
                .to_string_lossy()
                .contains("/mapped/"))
            .is_none(),
        "a shifted copy was made although idmapped mounts work here"
    );
    let created = b.run(&["create", "--name", "quiet", "--userns=auto", "bb", "true"]);
    assert!(created.status.success(), "{}", describe(&created));
    assert!(
        !stderr(&created).contains("shifted owners"),
        "{}",
        stderr(&created)
    );
}

#[test]
fn layers_through_the_chown_copy_made_once() {
    let mut b = setup!();
    b.env.push(("BERTH_STORAGE_NO_IDMAP".into(), "1".into()));
    let first = b.run(&[
        "create",
        "--name",
        "one",
        "--userns=auto:size=70000",
        "bb",
        "true",
    ]);
    assert!(first.status.success(), "{}", describe(&first));
    assert!(
        stderr(&first).contains("copied the image's layers with shifted owners in"),
        "the cost is printed: {}",
        stderr(&first)
    );
    b.ok(&["rm", "one"]);
    // Same image, same range (one's was released): the copy is reused, nothing printed.
    image_is_usable(&b, "two");
    let second = b.run(&[
        "create",
        "--name",
        "three",
        "--userns=auto:size=70000",
        "bb",
        "true",
    ]);
    assert!(second.status.success(), "{}", describe(&second));
    // three has another range (two still exists): a new copy, reported again.
    assert!(
        stderr(&second).contains("shifted owners"),
        "{}",
        stderr(&second)
    );
    b.ok(&["rm", "two"]);
    let fourth = b.run(&[
        "create",
        "--name",
        "four",
        "--userns=auto:size=70000",
        "bb",
        "true",
    ]);
    assert!(fourth.status.success(), "{}", describe(&fourth));
    assert!(
        !stderr(&fourth).contains("shifted owners"),
        "two's range and copy are reused: {}",
        stderr(&fourth)
    );
}

#[test]
fn bad_input_is_one_line_exit_125_and_nothing_made() {
    let b = setup!();
    let cases: &[&[&str]] = &[
        &["--uidmap", "0:1"],
        &["--uidmap", "0:x:10"],
        &["--gidmap", "0:100000:0"],
        &["--uidmap", "0:100000:10", "--uidmap", "5:200000:10"],
        &["--uidmap", "0:100000:10", "--uidmap", "10:100005:10"],
        &["--userns=bogus"],
        &["--userns=auto:size=4294967295"],
        &["--userns=auto:size=0"],
        &["--userns=keep-id"],
        &["--userns=auto", "--uidmap", "0:100000:10"],
    ];
    for flags in cases {
        let mut args = vec!["run", "--rm"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["bb", "true"]);
        let out = b.run(&args);
        let err = stderr(&out);
        assert_eq!(
            out.status.code(),
            Some(125),
            "{flags:?}: {}",
            describe(&out)
        );
        assert_eq!(err.trim().lines().count(), 1, "{flags:?}: one line: {err}");
        assert!(b.ids().is_empty(), "{flags:?} left a container");
    }
    let keep = b.run(&["run", "--rm", "--userns=keep-id", "bb", "true"]);
    assert!(stderr(&keep).contains("keep-id is only supported in rootless mode"));
    let big = b.run(&["run", "--rm", "--userns=auto:size=4294967295", "bb", "true"]);
    assert!(
        stderr(&big).contains("larger than the berth range"),
        "{}",
        stderr(&big)
    );
    if let Some(n) = rusqlite_count(&b.path("data")) {
        assert_eq!(n, 0);
    }
}

#[test]
fn other_runtimes_run_a_userns_container() {
    let b = setup!();
    for runtime in ["runc", "crun"] {
        if !have(runtime) {
            eprintln!("skipped: {runtime}: not installed");
            continue;
        }
        let out = b.run(&[
            "run",
            "--rm",
            "--runtime",
            runtime,
            "--userns=auto",
            "bb",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; ls /dev/null",
        ]);
        let err = stderr(&out);
        if runtime == "crun"
            && !out.status.success()
            && (err.contains("hugetlb") || err.contains("hybrid"))
        {
            eprintln!(
                "skipped: crun: refuses this hybrid cgroup layout: {}",
                err.trim()
            );
            continue;
        }
        assert!(out.status.success(), "{runtime}: {}", describe(&out));
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "0", "{runtime}: {text}");
        assert_ne!(first_range(lines[1]).0, 0, "{runtime}: {text}");
    }
}

#[test]
fn concurrent_creations_get_disjoint_ranges() {
    let b = setup!();
    if !have("sqlite3") {
        skip!("needs the sqlite3 tool to read the ranges");
    }
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let name = format!("par{i}");
                let b = &b;
                s.spawn(move || b.run(&["create", "--name", &name, "--userns=auto", "bb", "true"]))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert!(out.status.success(), "{}", describe(out));
    }
    let db = b.path("data").join("berth.db");
    let out = Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT uid_start, gid_start, size FROM userns_ranges ORDER BY uid_start")
        .output()
        .unwrap();
    let rows: Vec<Vec<u64>> = stdout(&out)
        .lines()
        .map(|l| l.split('|').map(|x| x.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for pair in rows.windows(2) {
        assert!(
            pair[0][0] + pair[0][2] <= pair[1][0],
            "uid ranges overlap: {rows:?}"
        );
    }
    let mut gids: Vec<u64> = rows.iter().map(|r| r[1]).collect();
    gids.sort();
    gids.dedup();
    assert_eq!(gids.len(), 4, "{rows:?}");
    b.ok(&["rm", "par0", "par1", "par2", "par3"]);
    assert_eq!(
        rusqlite_count(&b.path("data")),
        Some(0),
        "rm released them all"
    );
}
