//! config.json settings, each checked from inside the container with the probe.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use berth_integration_tests::*;
use serde_json::{json, Value};

/// Run `bundle` in the foreground and return (exit code, stdout, stderr); checks cleanup.
fn run_text(rt: &Runtime, b: &Bundle, prefix: &str) -> (Option<i32>, String, String) {
    let id = unique_id(prefix);
    let _g = Cleanup {
        runtime: rt,
        id: id.clone(),
    };
    let out = rt.run_bundle(b, &id);
    assert_clean(rt, &id, b);
    (out.status.code(), stdout(&out), stderr(&out))
}

/// Run the probe report with the config edited by `f`.
fn report_with(prefix: &str, f: impl FnOnce(&mut Value)) -> Value {
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "report"]);
    b.edit(f);
    let id = unique_id(prefix);
    let _g = rt.guard(&id);
    let r = run_report(&rt, &b, &id);
    assert_clean(&rt, &id, &b);
    r
}

fn add_namespace(c: &mut Value, ns: Value) {
    c["linux"]["namespaces"].as_array_mut().unwrap().push(ns);
}

fn mount_entry<'a>(r: &'a Value, target: &str) -> Option<&'a Value> {
    r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["target"] == target)
}

#[test]
fn hostname_and_domainname() {
    need_root!();
    let r = report_with("cf-uts", |c| {
        c["hostname"] = "berth-host".into();
        c["domainname"] = "example.test".into();
    });
    assert_eq!(r["hostname"], "berth-host");
    assert_eq!(r["domainname"], "example.test");
}

#[test]
fn env_is_exact() {
    need_root!();
    let r = report_with("cf-env", |c| {
        c["process"]["env"] = json!(["PATH=/bin", "A=1", "B=two words", "EMPTY="]);
    });
    assert_eq!(
        r["env"],
        json!({"PATH": "/bin", "A": "1", "B": "two words", "EMPTY": "", "HOME": "/root"})
    );
}

#[test]
fn cwd() {
    need_root!();
    let r = report_with("cf-cwd", |c| c["process"]["cwd"] = "/home/probe".into());
    assert_eq!(r["cwd"], "/home/probe");
}

#[test]
fn user_and_groups() {
    need_root!();
    let r = report_with("cf-user", |c| {
        c["process"]["user"] = json!({"uid": 1000, "gid": 1001, "additionalGids": [2000, 3000]});
    });
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["euid"], 1000);
    assert_eq!(r["gid"], 1001);
    assert_eq!(r["egid"], 1001);
    assert_eq!(r["groups"], json!([2000, 3000]));
    assert_eq!(
        r["env"]["HOME"], "/home/probe",
        "HOME from the container's /etc/passwd"
    );
}

#[test]
fn umask() {
    need_root!();
    let r = report_with("cf-umask", |c| c["process"]["user"]["umask"] = 0o027.into());
    assert_eq!(r["umask"], "0027");
}

#[test]
fn rlimits() {
    need_root!();
    let r = report_with("cf-rlim", |c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 4096},
            {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
        ]);
    });
    assert_eq!(r["rlimits"]["RLIMIT_NOFILE"], json!([512, 4096]));
    assert_eq!(r["rlimits"]["RLIMIT_CORE"], json!([0, 0]));
}

#[test]
fn capabilities_all_sets() {
    need_root!();
    let r = report_with("cf-caps", |c| {
        let list = json!([
            "CAP_AUDIT_WRITE",
            "CAP_KILL",
            "CAP_NET_BIND_SERVICE",
            "CAP_NET_ADMIN"
        ]);
        c["process"]["capabilities"] = json!({
            "bounding": list, "effective": list, "permitted": list,
            "inheritable": ["CAP_KILL"], "ambient": ["CAP_KILL"],
        });
    });
    // KILL=5, NET_BIND_SERVICE=10, NET_ADMIN=12, AUDIT_WRITE=29.
    let caps = &r["caps"];
    assert_eq!(caps["bounding"], "0000000020001420", "{caps}");
    assert_eq!(caps["effective"], "0000000020001420", "{caps}");
    assert_eq!(caps["permitted"], "0000000020001420", "{caps}");
    assert_eq!(caps["inheritable"], "0000000000000020", "{caps}");
    assert_eq!(caps["ambient"], "0000000000000020", "{caps}");
}

#[test]
fn no_new_privileges() {
    need_root!();
    let on = report_with("cf-nnp1", |c| c["process"]["noNewPrivileges"] = true.into());
    assert_eq!(on["no_new_privs"], 1);
    let off = report_with("cf-nnp0", |c| {
        c["process"]["noNewPrivileges"] = false.into()
    });
    assert_eq!(off["no_new_privs"], 0);
}

#[test]
fn oom_score_adj() {
    need_root!();
    let r = report_with("cf-oom", |c| c["process"]["oomScoreAdj"] = 500.into());
    assert_eq!(r["oom_score_adj"], 500);
}

#[test]
fn readonly_root() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "open", "/etc/passwd", "--write"]);
    b.edit(|c| c["root"]["readonly"] = true.into());
    let (code, out, err) = run_text(&rt, &b, "cf-ro");
    assert_eq!(out.trim(), "EROFS", "stderr: {err}");
    assert_eq!(code, Some(1));
    b.edit(|c| c["root"]["readonly"] = false.into());
    let (code, out, err) = run_text(&rt, &b, "cf-rw");
    assert_eq!((code, out.trim()), (Some(0), "ok"), "stderr: {err}");
}

#[test]
fn masked_and_readonly_paths() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "probe report > /tmp/report.json; \
         echo sys=$(probe open /proc/sys/kernel/hostname --write); \
         echo file=$(cat /etc/secret); echo dir=$(ls /opt/secretdir); \
         echo ro=$(probe open /opt/rodir/new --write); cat /tmp/report.json",
    ]);
    std::fs::write(b.rootfs().join("etc/secret"), "topsecret").unwrap();
    std::fs::create_dir_all(b.rootfs().join("opt/secretdir")).unwrap();
    std::fs::write(b.rootfs().join("opt/secretdir/f"), "x").unwrap();
    std::fs::create_dir_all(b.rootfs().join("opt/rodir")).unwrap();
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]
        }));
        c["linux"]["maskedPaths"] = json!([
            "/proc/keys",
            "/etc/secret",
            "/opt/secretdir",
            "/nonexistent"
        ]);
        c["linux"]["readonlyPaths"] = json!(["/proc/sys", "/opt/rodir"]);
    });
    let (code, out, err) = run_text(&rt, &b, "cf-mask");
    assert_eq!(code, Some(0), "stderr: {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("sys=EROFS"), "{out}");
    assert_eq!(lines.next(), Some("file="), "{out}");
    assert_eq!(lines.next(), Some("dir="), "{out}");
    assert_eq!(lines.next(), Some("ro=EROFS"), "{out}");
    let r: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    for target in [
        "/proc/keys",
        "/etc/secret",
        "/opt/secretdir",
        "/proc/sys",
        "/opt/rodir",
    ] {
        assert!(mount_entry(&r, target).is_some(), "{target} is not a mount");
    }
    for target in ["/proc/sys", "/opt/rodir", "/opt/secretdir"] {
        let m = mount_entry(&r, target).unwrap();
        assert!(
            m["options"].as_str().unwrap().split(',').any(|o| o == "ro"),
            "{m}"
        );
    }
    // The host's file is untouched.
    assert_eq!(
        std::fs::read_to_string(b.rootfs().join("etc/secret")).unwrap(),
        "topsecret"
    );
}

#[test]
fn bind_tmpfs_and_propagation_mounts() {
    need_root!();
    let rt = Runtime::berth();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("hello"), "from the host").unwrap();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "echo hello=$(cat /mnt/host/hello); echo write=$(probe open /mnt/host/new --write); \
         echo mode=$(stat -c %a /scratch); probe report",
    ]);
    b.edit(|c| {
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.push(json!({"destination": "/mnt/host", "type": "bind",
            "source": host.path(), "options": ["rbind", "ro"]}));
        mounts.push(
            json!({"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
            "options": ["nosuid", "nodev", "size=1m", "mode=0710"]}),
        );
        mounts.push(json!({"destination": "/mnt/shared", "type": "bind",
            "source": host.path(), "options": ["rbind", "rshared"]}));
    });
    let (code, out, err) = run_text(&rt, &b, "cf-mounts");
    assert_eq!(code, Some(0), "stderr: {err}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("hello=from the host"));
    assert_eq!(lines.next(), Some("write=EROFS"));
    assert_eq!(lines.next(), Some("mode=710"));
    let r: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let bind = mount_entry(&r, "/mnt/host").expect("bind mount");
    assert!(
        bind["options"].as_str().unwrap().starts_with("ro"),
        "{bind}"
    );
    let tmp = mount_entry(&r, "/scratch").expect("tmpfs mount");
    assert_eq!(tmp["fstype"], "tmpfs");
    let sup = tmp["super_options"].as_str().unwrap();
    assert!(
        sup.contains("size=1024k") && sup.contains("mode=710"),
        "{tmp}"
    );
    assert!(tmp["options"].as_str().unwrap().contains("nosuid"), "{tmp}");
    let shared = mount_entry(&r, "/mnt/shared").expect("shared bind");
    assert_eq!(shared["propagation"], "shared", "{shared}");
    assert!(!host.path().join("new").exists());
}

#[test]
fn extra_device() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/sh", "-c", "stat -c '%F %t %T %a' /dev/fuse"]);
    b.edit(|c| {
        c["linux"]["devices"] = json!([{"path": "/dev/fuse", "type": "c", "major": 10,
            "minor": 229, "fileMode": 438, "uid": 0, "gid": 0}]);
    });
    let (code, out, err) = run_text(&rt, &b, "cf-dev");
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(out.trim(), "character special file a e5 666");
}

#[test]
fn sysctl_in_network_namespace() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/cat", "/proc/sys/net/ipv4/ip_forward"]);
    b.edit(|c| c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"}));
    let (code, out, err) = run_text(&rt, &b, "cf-sysctl");
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(out.trim(), "1");
}

/// A named network namespace from `ip netns add`, deleted on drop.
struct NetNs(String);

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
    }
}

#[test]
fn join_network_namespace_by_path() {
    need_root!();
    if !have("ip") {
        skip!("ip (iproute2) not installed");
    }
    let name = unique_id("berth-netns");
    let ok = Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap()
        .success();
    assert!(ok, "ip netns add");
    let ns = NetNs(name.clone());
    let path = format!("/run/netns/{}", ns.0);
    let ino = std::fs::metadata(&path).unwrap().ino();
    let r = report_with("cf-netns", |c| {
        for n in c["linux"]["namespaces"].as_array_mut().unwrap() {
            if n["type"] == "network" {
                n["path"] = path.clone().into();
            }
        }
    });
    assert_eq!(r["namespaces"]["net"], format!("net:[{ino}]"));
    assert_eq!(r["pid"], 1, "still the init of a new pid namespace");
}

#[test]
fn user_namespace_with_mappings() {
    need_root!();
    if !Path::new("/proc/self/ns/user").exists() {
        skip!("no user namespaces");
    }
    let rt = Runtime::berth();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "probe uid; probe gid; cat /proc/self/uid_map /proc/self/gid_map",
    ]);
    let ok = Command::new("chmod")
        .args(["-R", "o+rX"])
        .arg(b.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    b.edit(|c| {
        add_namespace(c, json!({"type": "user"}));
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["uidMappings"] = map.clone();
        c["linux"]["gidMappings"] = map;
    });
    let (code, out, err) = run_text(&rt, &b, "cf-userns");
    assert_eq!(code, Some(0), "stderr: {err}");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        ["0", "0", "0 100000 65536", "0 100000 65536"],
        "{out}"
    );
}

#[test]
fn cgroup_namespace() {
    need_root!();
    let r = report_with("cf-cgns", |c| add_namespace(c, json!({"type": "cgroup"})));
    let lines = r["cgroup"].as_array().unwrap();
    assert!(!lines.is_empty());
    for l in lines {
        assert!(
            l.as_str().unwrap().ends_with(":/"),
            "cgroup seen from inside: {lines:?}"
        );
    }
    let host = std::fs::read_link("/proc/self/ns/cgroup").unwrap();
    assert_ne!(r["namespaces"]["cgroup"].as_str(), host.to_str());
}

#[test]
fn time_namespace_without_offsets() {
    need_root!();
    if !Path::new("/proc/self/ns/time").exists() {
        skip!("kernel has no time namespaces");
    }
    let r = report_with("cf-timens", |c| add_namespace(c, json!({"type": "time"})));
    let host = std::fs::read_link("/proc/self/ns/time").unwrap();
    assert_ne!(
        r["namespaces"]["time"].as_str(),
        host.to_str(),
        "{}",
        r["namespaces"]
    );
    assert_eq!(
        r["namespaces"]["time"],
        r["namespaces"]["time_for_children"]
    );
}

#[test]
fn no_pivot() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "report"]);
    let id = unique_id("cf-nopivot");
    let _g = rt.guard(&id);
    let out = rt
        .cmd()
        .args(["run", "--no-pivot", "--bundle", &bundle_arg(&b), &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = report(&out);
    assert!(mount_entry(&r, "/").is_some(), "no / mount");
    assert!(mount_entry(&r, "/proc").is_some());
    assert_clean(&rt, &id, &b);
}

#[test]
fn rootfs_propagation_rslave() {
    need_root!();
    // The container's "/" is only a slave when its source is shared on the host: make the
    // rootfs a shared mount of its own for the duration of the test.
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "report"]);
    b.edit(|c| c["linux"]["rootfsPropagation"] = "rslave".into());
    let rootfs = b.rootfs();
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    assert!(Command::new("mount")
        .args(["--bind"])
        .arg(&rootfs)
        .arg(&rootfs)
        .status()
        .unwrap()
        .success());
    let unmount = Unmount(rootfs.clone());
    assert!(Command::new("mount")
        .arg("--make-shared")
        .arg(&rootfs)
        .status()
        .unwrap()
        .success());
    let id = unique_id("cf-rslave");
    let _g = rt.guard(&id);
    let r = run_report(&rt, &b, &id);
    let root = mount_entry(&r, "/").unwrap();
    assert_eq!(root["propagation"], "slave", "{root}");
    drop(unmount);
    assert_clean(&rt, &id, &b);
}

const HOOK: &str = "#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> \"$2\"\n";

#[test]
fn hooks_run_in_order_with_state() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "exit", "0"]);
    let logdir = b.path().join("log");
    std::fs::create_dir(&logdir).unwrap();
    let log = logdir.join("hooks");
    let host_hook = b.path().join("hook.sh");
    std::fs::write(&host_hook, HOOK).unwrap();
    std::fs::write(b.rootfs().join("bin/hook.sh"), HOOK).unwrap();
    for p in [&host_hook, &b.rootfs().join("bin/hook.sh")] {
        assert!(Command::new("chmod")
            .arg("755")
            .arg(p)
            .status()
            .unwrap()
            .success());
    }
    let hook = |kind: &str, path: &Path, log: &Path| json!([{"path": path, "args": ["hook.sh", kind, log], "env": ["PATH=/usr/bin:/bin"]}]);
    let in_container = Path::new("/hostlog/hooks");
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/hostlog",
            "type": "bind", "source": logdir, "options": ["rbind", "rw"]}));
        c["hooks"] = json!({
            "prestart": hook("prestart", &host_hook, &log),
            "createRuntime": hook("createRuntime", &host_hook, &log),
            "createContainer": hook("createContainer", &host_hook, &log),
            "startContainer": hook("startContainer", Path::new("/bin/hook.sh"), in_container),
            "poststart": hook("poststart", &host_hook, &log),
            "poststop": hook("poststop", &host_hook, &log),
        });
    });
    let id = unique_id("cf-hooks");
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    assert!(out.status.success(), "run: {}", stderr(&out));
    assert_clean(&rt, &id, &b);
    let text = std::fs::read_to_string(&log).unwrap();
    let mut order = Vec::new();
    for line in text.lines() {
        let (kind, state) = line.split_once(' ').unwrap();
        let state: Value = serde_json::from_str(state)
            .unwrap_or_else(|e| panic!("{kind}: state on stdin is not JSON ({e}): {state}"));
        assert_eq!(state["id"], id.as_str(), "{kind}: {state}");
        assert!(
            state["pid"].as_i64().unwrap() > 0 || kind == "poststop",
            "{kind}: {state}"
        );
        order.push(kind.to_string());
    }
    let pos = |k: &str| {
        order
            .iter()
            .position(|o| o == k)
            .unwrap_or_else(|| panic!("{k} did not run: {order:?}"))
    };
    assert_eq!(order.len(), 6, "{order:?}");
    // startContainer (in the container) and poststart (in `start`) race in runc too: both
    // follow the exec fifo handshake, so only the partial order is fixed.
    assert!(pos("prestart") < pos("createRuntime"), "{order:?}");
    assert!(pos("createRuntime") < pos("createContainer"), "{order:?}");
    assert!(pos("createContainer") < pos("startContainer"), "{order:?}");
    assert!(pos("createContainer") < pos("poststart"), "{order:?}");
    assert!(pos("startContainer") < pos("poststop"), "{order:?}");
    assert!(pos("poststart") < pos("poststop"), "{order:?}");
}

#[test]
fn seccomp_errno_profile() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?; probe seccomp"]);
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
        });
    });
    let (code, out, err) = run_text(&rt, &b, "cf-seccomp");
    assert_eq!(code, Some(0), "stderr: {err}");
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["rc=1", "2"],
        "{out} / {err}"
    );
    assert!(err.contains("Operation not permitted"), "{err}");
    assert!(!b.rootfs().join("tmp/x").exists());
}

#[test]
fn terminal_via_console_socket() {
    use std::os::fd::{AsFd, AsRawFd};
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/sh", "-c", "echo tty=$(tty); echo hello-from-the-tty"]);
    b.edit(|c| c["process"]["terminal"] = true.into());
    let sock = b.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let id = unique_id("cf-tty");
    let _g = rt.guard(&id);
    let (st, err) = create(&rt, &b, &id, &["--console-socket", sock.to_str().unwrap()]);
    assert!(st.success(), "create: {err}");
    listener.set_nonblocking(true).unwrap();
    let (stream, _) = listener
        .accept()
        .expect("runtime connected to the console socket");
    stream.set_nonblocking(false).unwrap();
    let mut buf = [0u8; 256];
    let (_, master) = berth_sys::recv_fd(stream.as_fd(), &mut buf).unwrap();
    let master = master.expect("an fd over SCM_RIGHTS");
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    let mut text = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&text).contains("hello-from-the-tty") {
        match nix::unistd::read(master.as_raw_fd(), &mut chunk) {
            Ok(0) | Err(_) => break, // EIO once the slave side is closed
            Ok(n) => text.extend_from_slice(&chunk[..n]),
        }
    }
    drop(master);
    let text = String::from_utf8_lossy(&text);
    assert!(text.contains("hello-from-the-tty"), "{text:?}");
    assert!(text.contains("tty=/dev/pts/"), "{text:?}");
    assert!(wait_status(&rt, &id, "stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn cgroup_mount_shows_the_containers_own_cgroups_read_only() {
    need_root!();
    // runc's default spec mounts "cgroup" at /sys/fs/cgroup with "ro".
    let r = report_with("cf-cgmount", |_| {});
    let mounts = r["mounts"].as_array().unwrap();
    let under: Vec<&Value> = mounts
        .iter()
        .filter(|m| m["target"].as_str().unwrap().starts_with("/sys/fs/cgroup"))
        .collect();
    assert!(
        !under.is_empty(),
        "nothing mounted at /sys/fs/cgroup: {mounts:?}"
    );
    let hierarchies: Vec<&&Value> = under
        .iter()
        .filter(|m| matches!(m["fstype"].as_str(), Some("cgroup" | "cgroup2")))
        .collect();
    assert!(!hierarchies.is_empty(), "no cgroup hierarchy: {under:?}");
    for m in &under {
        let opts = m["options"].as_str().unwrap();
        assert!(opts.split(',').any(|o| o == "ro"), "writable: {m}");
    }
    // Each hierarchy shows the container's own cgroup (its root ends with the container id).
    for m in hierarchies {
        let root = m["root"].as_str().unwrap();
        assert!(
            root.contains("cf-cgmount-"),
            "a host cgroup is visible: {m}"
        );
    }
}

/// Wait up to 20 s for `fd` to be readable; false on timeout or hang-up without data.
fn readable(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::from(20_000u16)), Ok(n) if n > 0)
        && fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
}

/// The listener side of `linux.seccomp.listenerPath`: takes the state and the notify fd, then
/// answers every notification with `errno` until the filter has no users left (hang-up).
/// Never blocks for good: a runtime that never connects gives `None`.
fn seccomp_agent(listener: std::os::unix::net::UnixListener, errno: i32) -> Option<(Value, usize)> {
    use std::os::fd::{AsFd, AsRawFd};
    if !readable(listener.as_fd()) {
        return None;
    }
    let (stream, _) = listener.accept().unwrap();
    if !readable(stream.as_fd()) {
        return None;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let (len, fd) = berth_sys::recv_fd(stream.as_fd(), &mut buf).unwrap();
    let fd = fd.expect("an fd came with the state");
    let state: Value = serde_json::from_slice(&buf[..len]).unwrap();
    let mut answered = 0;
    // The notify fd hangs up once every process using the filter is gone.
    while readable(fd.as_fd()) {
        let Ok(req) = libseccomp::ScmpNotifReq::receive(fd.as_raw_fd()) else {
            break;
        };
        let flags = libseccomp::ScmpNotifRespFlags::empty();
        let resp = libseccomp::ScmpNotifResp::new_error(req.id, -errno, flags);
        if resp.respond(fd.as_raw_fd()).is_ok() {
            answered += 1;
        }
    }
    Some((state, answered))
}

#[test]
fn seccomp_notify_hands_the_listener_to_listener_path() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/sh", "-c", "mkdir /tmp/x; echo rc=$?"]);
    let sock = b.path().join("seccomp.sock");
    b.edit(|c| {
        c["root"]["readonly"] = false.into();
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "listenerPath": sock,
            "listenerMetadata": "agent-metadata-42",
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    // EXDEV: an answer mkdir can only get from the agent.
    let agent = std::thread::spawn(move || seccomp_agent(listener, libc::EXDEV));
    let (code, out, err) = run_text(&rt, &b, "cf-notify");
    let agent = agent.join().unwrap();
    assert_eq!(code, Some(0), "stderr: {err}");
    let (state, answered) = agent.expect("the runtime never handed over the listener");
    assert_eq!(out.trim(), "rc=1", "{out} / {err}");
    assert!(err.contains("Invalid cross-device link"), "{err}");
    assert!(answered >= 1, "the agent answered no notification");
    assert!(!b.rootfs().join("tmp/x").exists());
    assert_eq!(state["fds"], json!(["seccompFd"]), "{state}");
    assert_eq!(state["metadata"], "agent-metadata-42", "{state}");
    assert!(state["pid"].as_i64().unwrap_or(0) > 0, "{state}");
    assert!(
        state["state"]["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("cf-notify")),
        "{state}"
    );
}

#[test]
fn time_namespace_offsets() {
    need_root!();
    if !Path::new("/proc/self/timens_offsets").exists() {
        skip!("kernel has no time namespaces");
    }
    const DAY: i64 = 86_400;
    let rt = Runtime::berth();
    let mut b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "cat /proc/self/timens_offsets /proc/uptime",
    ]);
    b.edit(|c| {
        add_namespace(c, json!({"type": "time"}));
        c["linux"]["timeOffsets"] = json!({
            "monotonic": {"secs": 1000 * DAY, "nanosecs": 0},
            "boottime": {"secs": 2000 * DAY, "nanosecs": 500}
        });
    });
    let (code, out, err) = run_text(&rt, &b, "cf-timeoff");
    assert_eq!(code, Some(0), "stderr: {err}");
    let lines: Vec<&str> = out.lines().collect();
    let offset = |clock: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(clock))
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
    };
    assert_eq!(
        offset("monotonic").as_deref(),
        Some(&*format!("{} 0", 1000 * DAY)),
        "{out}"
    );
    assert_eq!(
        offset("boottime").as_deref(),
        Some(&*format!("{} 500", 2000 * DAY)),
        "{out}"
    );
    // /proc/uptime follows the boottime clock of the reader's time namespace.
    let uptime: f64 = lines
        .last()
        .and_then(|l| l.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap();
    assert!(uptime > (2000 * DAY) as f64, "{out}");
}
