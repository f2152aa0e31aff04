//! Security properties: no runtime fd reaches the container, mounts and cwd cannot leave the
//! rootfs, and the runtime binary cannot be opened for writing from inside.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use berth_integration_tests::*;
use serde_json::{json, Value};

/// Run `runtime --root R ARGS` through a shell that first opens `fd7` (not close-on-exec) as
/// fd 7, so the runtime inherits it like a careless caller would pass it.
fn with_fd7(rt: &Runtime, fd7: &Path, args: &[&str]) -> Output {
    Command::new("/bin/sh")
        .arg("-c")
        .arg("exec 7<\"$0\"; exec \"$@\"")
        .arg(fd7)
        .arg(&rt.bin)
        .arg("--root")
        .arg(rt.root.path())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn fd_numbers(r: &Value) -> Vec<String> {
    let mut fds: Vec<String> = r["fds"].as_object().unwrap().keys().cloned().collect();
    fds.sort();
    fds
}

#[test]
fn no_fd_leaks_into_init_or_exec() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "report"]);
    let id = unique_id("sec-fds");
    let _g = rt.guard(&id);
    let out = with_fd7(
        &rt,
        Path::new("/etc/hostname"),
        &["run", "--bundle", &bundle_arg(&b), &id],
    );
    assert!(out.status.success(), "run: {}", stderr(&out));
    let r = report(&out);
    assert_eq!(fd_numbers(&r), ["0", "1", "2"], "init's fds: {}", r["fds"]);
    assert_clean(&rt, &id, &b);

    // exec into a running container, again with fd 7 open in the caller.
    let (b, id, _g2) = rt.sleeper("sec-fds-exec");
    let out = with_fd7(
        &rt,
        Path::new("/etc/hostname"),
        &["exec", &id, "/bin/probe", "report"],
    );
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let r = report(&out);
    assert_eq!(
        fd_numbers(&r),
        ["0", "1", "2"],
        "exec'd process's fds: {}",
        r["fds"]
    );
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn mount_destination_symlink_stays_in_rootfs() {
    need_root!();
    let rt = Runtime::berth();
    let host = tempfile::Builder::new()
        .prefix("berth-host-target-")
        .tempdir()
        .unwrap();
    std::fs::write(host.path().join("marker"), "host").unwrap();
    let mut b = Bundle::new(&["/bin/probe", "report"]);
    // rootfs/etc/evil -> /tmp/berth-host-target-XXXX (absolute, pointing at the host dir).
    std::os::unix::fs::symlink(host.path(), b.rootfs().join("etc/evil")).unwrap();
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/etc/evil",
            "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}));
    });
    let id = unique_id("sec-symlink");
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    assert_clean(&rt, &id, &b);
    // Security first: the host directory was not touched, whatever happened.
    let entries: Vec<_> = std::fs::read_dir(host.path()).unwrap().flatten().collect();
    assert_eq!(entries.len(), 1, "host dir changed: {entries:?}");
    assert_eq!(
        std::fs::read_to_string(host.path().join("marker")).unwrap(),
        "host"
    );
    // Then runc's behaviour: the link is resolved inside the rootfs (securejoin), the missing
    // target directory is created there and the tmpfs is mounted on it.
    assert!(
        out.status.success(),
        "a destination through a dangling in-root symlink must be created inside the rootfs, \
         as runc does: {}",
        stderr(&out)
    );
    let r = report(&out);
    let inside = host.path().to_str().unwrap();
    let m = r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["target"] == inside);
    assert!(
        m.is_some_and(|m| m["fstype"] == "tmpfs"),
        "no tmpfs at {inside} inside"
    );
    assert!(b.rootfs().join(inside.trim_start_matches('/')).is_dir());
}

#[test]
fn cwd_through_inherited_fd_cannot_reach_the_host() {
    // CVE-2024-21626: process.cwd /proc/self/fd/7 where fd 7 is a host directory the runtime
    // inherited. The container must fail to start or stay inside its rootfs.
    need_root!();
    let rt = Runtime::berth();
    let host = tempfile::Builder::new()
        .prefix("berth-host-cwd-")
        .tempdir()
        .unwrap();
    std::fs::write(host.path().join("host-marker"), "host").unwrap();
    let mut b = Bundle::new(&["/bin/probe", "open", "host-marker"]);
    b.edit(|c| c["process"]["cwd"] = "/proc/self/fd/7".into());
    let id = unique_id("sec-cwd");
    let _g = rt.guard(&id);
    let out = with_fd7(&rt, host.path(), &["run", "--bundle", &bundle_arg(&b), &id]);
    assert!(
        !(out.status.success() && stdout(&out).trim() == "ok"),
        "the container opened a file in the host directory through its cwd: stdout={} stderr={}",
        stdout(&out),
        stderr(&out)
    );
    assert_clean(&rt, &id, &b);

    // The same through exec --cwd.
    let (b, id, _g2) = rt.sleeper("sec-cwd-exec");
    let out = with_fd7(
        &rt,
        host.path(),
        &[
            "exec",
            "--cwd",
            "/proc/self/fd/7",
            &id,
            "/bin/probe",
            "open",
            "host-marker",
        ],
    );
    assert!(
        !(out.status.success() && stdout(&out).trim() == "ok"),
        "exec opened a file in the host directory through its cwd: stdout={} stderr={}",
        stdout(&out),
        stderr(&out)
    );
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn runtime_exe_not_writable_from_container_during_exec() {
    // Best effort (CVE-2019-5736 class): while `exec` joins the container, a process inside
    // keeps looking for a process whose exe is berth-runtime and tries to open it for writing.
    // Runs a private copy of the binary so a failure cannot damage the shared one.
    need_root!();
    let private = PrivateRuntime::new();
    let rt = &private.rt;
    let watcher = "while :; do for p in /proc/[0-9]*; do \
        case $(readlink $p/exe 2>/dev/null) in *berth-runtime*) \
        echo \"$p $(probe open $p/exe --write)\" >> /tmp/exe.log;; esac; done; done";
    let mut b = Bundle::new(&["/bin/sh", "-c", watcher]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/tmp", "type": "tmpfs",
            "source": "tmpfs", "options": ["size=4m"]}));
    });
    let id = unique_id("sec-exe");
    let _g = rt.guard(&id);
    let (st, err) = create(rt, &b, &id, &[]);
    assert!(st.success(), "create: {err}");
    assert!(rt.run(&["start", &id]).status.success());
    for _ in 0..30 {
        let out = rt.run(&["exec", &id, "/bin/probe", "exit", "0"]);
        assert!(out.status.success(), "exec: {}", stderr(&out));
    }
    let out = rt.run(&["exec", &id, "/bin/cat", "/tmp/exe.log"]);
    let log = stdout(&out);
    let opened: Vec<&str> = log.lines().filter(|l| l.ends_with(" ok")).collect();
    assert!(
        opened.is_empty(),
        "the runtime's exe was opened for writing: {opened:?}"
    );
    if log.is_empty() {
        eprintln!("note: the watcher never saw a berth-runtime process (nothing to attack)");
    }
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(rt, &id, &b);
    assert_eq!(
        std::fs::read(&rt.bin).unwrap(),
        std::fs::read(berth_runtime()).unwrap(),
        "the runtime binary was modified"
    );
}

/// A seccomp profile that refuses `execveat`: such a container cannot use the exec
/// trampoline, so the runtime protects its binary by running from its read-only copy.
fn refuse_execveat(c: &mut Value) {
    c["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}],
    });
}

/// A `sleep 1000` container from `bundle`, created and started, with its guard.
fn start_sleeper<'a>(rt: &'a Runtime, b: &Bundle, prefix: &str) -> (String, Cleanup<'a>) {
    let id = unique_id(prefix);
    let guard = rt.guard(&id);
    let (st, err) = create(rt, b, &id, &[]);
    assert!(st.success(), "create {id}: {err}");
    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start {id}: {}", stderr(&out));
    (id, guard)
}

#[test]
fn runtime_binary_cannot_be_rewritten_through_proc_exe() {
    // CVE-2019-5736, when the container cannot use the exec trampoline: whoever can open
    // /proc/PID/exe of a runtime process (during `exec` the child runs the runtime's code in the
    // container's namespaces) keeps an O_PATH fd to it and, once the process is gone (no more
    // ETXTBSY), reopens that fd for writing. The runtime runs from a read-only bind mount of
    // itself, so the reopen fails with EROFS. We play the attacker from the host, with every
    // privilege a container could have and more.
    need_root!();
    use std::os::unix::fs::OpenOptionsExt;
    let private = PrivateRuntime::new();
    let rt = &private.rt;
    let copy = rt.bin.clone();
    let original = std::fs::read(&copy).unwrap();
    let mut b = Bundle::new(&["/bin/probe", "sleep", "1000"]);
    b.edit(refuse_execveat);
    let (id, _g) = start_sleeper(rt, &b, "sec-5736");
    let mut victim = rt
        .cmd()
        .args(["exec", &id, "/bin/probe", "sleep", "2"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let exe = format!("/proc/{}/exe", victim.id());
    // After its re-exec the runtime runs from the read-only copy.
    assert!(
        wait_until(5.0, || std::fs::read_link(&exe)
            .is_ok_and(|p| p.to_string_lossy().contains("berth-runtime-exe"))),
        "the runtime did not re-exec from its read-only copy: {:?}",
        std::fs::read_link(&exe)
    );
    let held = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open(&exe)
        .unwrap();
    assert!(victim.wait().unwrap().success());
    let reopen = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&held));
    let err = std::fs::OpenOptions::new()
        .append(true)
        .open(&reopen)
        .expect_err("the runtime binary was opened for writing through /proc/PID/exe");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        original,
        "the runtime binary was modified"
    );
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(rt, &id, &b);
}

#[test]
fn proc_self_exe_programs_never_run_the_runtime_binary() {
    // A hostile image whose program is `#!/proc/self/exe` (the CVE-2019-5736 entry point): the
    // container's process execs the sealed trampoline first, so /proc/self/exe is never the
    // runtime binary; the trampoline, run as an interpreter, just exits 127.
    need_root!();
    let private = PrivateRuntime::new();
    let rt = &private.rt;
    let original = std::fs::read(&rt.bin).unwrap();
    let b = Bundle::new(&["/evil"]);
    std::fs::write(b.rootfs().join("evil"), "#!/proc/self/exe\n").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(b.rootfs().join("evil"))
        .status()
        .unwrap();
    let id = unique_id("sec-evil");
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    assert_eq!(out.status.code(), Some(127), "{}", describe(&out));
    let (_sb, sid, _sg) = rt.sleeper("sec-evil-exec");
    let out = rt.run(&[
        "exec",
        &sid,
        "/bin/sh",
        "-c",
        "printf '#!/proc/self/exe\\n' >/tmp/e; chmod +x /tmp/e; /tmp/e; echo $?",
    ]);
    assert_eq!(stdout(&out).trim(), "127", "{}", describe(&out));
    assert_eq!(
        std::fs::read(&rt.bin).unwrap(),
        original,
        "the runtime binary was modified"
    );
}

#[test]
fn the_binary_is_protected_by_the_trampoline_or_the_read_only_copy() {
    // With the exec trampoline the runtime does not re-exec itself: its container-side process
    // stops running the binary before the container's program runs. Containers where something
    // could reach that process while it sets up get the read-only copy instead.
    need_root!();
    let rt = Runtime::berth();
    let exe_of = |pid: u32| std::fs::read_link(format!("/proc/{pid}/exe")).ok();
    let no_pidns = |c: &mut Value| {
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid")
    };
    let ptrace = |c: &mut Value| {
        for set in ["bounding", "permitted", "effective"] {
            c["process"]["capabilities"][set]
                .as_array_mut()
                .unwrap()
                .push("CAP_SYS_PTRACE".into());
        }
    };
    let start_hook = |c: &mut Value| {
        c["hooks"] = json!({"startContainer": [{"path": "/bin/true"}]});
    };
    type Edit<'a> = &'a dyn Fn(&mut Value);
    let cases: [(&str, bool, Edit); 5] = [
        ("sec-tramp", true, &|_| {}),
        ("sec-ro-seccomp", false, &refuse_execveat),
        ("sec-ro-hostpid", false, &no_pidns),
        ("sec-ro-ptrace", false, &ptrace),
        ("sec-ro-hook", false, &start_hook),
    ];
    for (prefix, trampoline, edit) in cases {
        let mut b = Bundle::new(&["/bin/probe", "sleep", "30"]);
        b.edit(edit);
        let id = unique_id(prefix);
        let _g = rt.guard(&id);
        let mut run = rt
            .cmd()
            .args(["run", "--bundle", &bundle_arg(&b), &id])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        assert!(wait_status(&rt, &id, "running"), "{id} did not start");
        let exe = exe_of(run.id()).map(|p| p.to_string_lossy().into_owned());
        let from_copy = exe
            .as_deref()
            .is_some_and(|p| p.contains("berth-runtime-exe"));
        assert_eq!(from_copy, !trampoline, "{id}: run executes {exe:?}");
        let pid = rt.state(&id).unwrap()["pid"].as_u64().unwrap() as u32;
        let init = exe_of(pid).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            init.as_deref(),
            Some("/bin/probe"),
            "{id}: init executes {init:?}"
        );
        assert!(rt.run(&["kill", &id, "KILL"]).status.success());
        let _ = run.wait();
        assert_clean(&rt, &id, &b);
    }
}

#[test]
fn a_program_that_cannot_be_executed_is_reported_once() {
    // The trampoline's own execve fails: `exec` reports it as the runtime's one-line error,
    // `run` (nobody reads the channel any more) through the trampoline's line on stderr.
    need_root!();
    let rt = Runtime::berth();
    let (b, id, _g) = rt.sleeper("sec-noexec");
    std::fs::write(b.rootfs().join("notelf"), b"\x7fELF but not really").unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(b.rootfs().join("notelf"))
        .status()
        .unwrap();
    let out = rt.run(&["exec", &id, "/notelf"]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = stderr(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("exec /notelf: exec format error"), "{err}");
    let mut run_b = Bundle::new(&["/notelf"]);
    std::fs::write(run_b.rootfs().join("notelf"), b"\x7fELF but not really").unwrap();
    run_b.edit(|c| c["root"]["readonly"] = false.into());
    Command::new("chmod")
        .arg("755")
        .arg(run_b.rootfs().join("notelf"))
        .status()
        .unwrap();
    let run_id = unique_id("sec-noexec-run");
    let _rg = rt.guard(&run_id);
    let out = rt.run_bundle(&run_b, &run_id);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        stderr(&out).contains("exec /notelf failed: errno 8"),
        "{}",
        describe(&out)
    );
}
