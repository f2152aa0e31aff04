//! Lifecycle of berth-runtime containers: create/start/state/kill/delete, run, list, pause,
//! exec, ps, events, update, delete --force. Every test leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_integration_tests::*;
use serde_json::Value;

/// A running container whose init sleeps (created + started).
fn started(rt: &Runtime, bundle: &Bundle, id: &str) {
    let (st, err) = create(rt, bundle, id, &[]);
    assert!(st.success(), "create {id}: {err}");
    let out = rt.run(&["start", id]);
    assert!(out.status.success(), "start {id}: {}", stderr(&out));
    assert!(
        wait_status(rt, id, "running"),
        "{id} not running: {:?}",
        rt.state(id)
    );
}

fn sleeper() -> Bundle {
    Bundle::new(&["/bin/probe", "sleep", "1000"])
}

#[test]
fn run_returns_the_exit_code() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "exit", "3"]);
    let id = unique_id("lc-run");
    let _g = rt.guard(&id);
    let out = rt.run_bundle(&b, &id);
    assert_eq!(out.status.code(), Some(3), "stderr: {}", stderr(&out));
    assert_clean(&rt, &id, &b);
}

#[test]
fn state_reports_creating_while_create_runs() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = sleeper();
    // A slow createRuntime hook keeps `create` in the middle of setup for a while.
    b.edit(|c| {
        c["hooks"] =
            serde_json::json!({"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "2"]}]})
    });
    let id = unique_id("lc-creating");
    let _g = rt.guard(&id);
    let mut create = rt
        .cmd()
        .args(["create", "--bundle", &bundle_arg(&b), &id])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_status(&rt, &id, "creating"),
        "never creating: {:?}",
        rt.state(&id)
    );
    assert!(rt.state(&id).unwrap()["pid"].as_i64().unwrap() > 0);
    // `list` does not wait for the creator's lock either.
    let out = rt.run(&["list", "-q"]);
    assert!(stdout(&out).contains(&id), "list: {}", stdout(&out));
    assert!(create.wait().unwrap().success());
    assert_eq!(status_of(&rt, &id).as_deref(), Some("created"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn create_start_kill_delete() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "signal-wait"]);
    let id = unique_id("lc-cskd");
    let _g = rt.guard(&id);
    let pid_file = b.path().join("init.pid");
    let (st, err) = create(&rt, &b, &id, &["--pid-file", pid_file.to_str().unwrap()]);
    assert!(st.success(), "create: {err}");

    let state = rt.state(&id).expect("state after create");
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["id"], id.as_str());
    let pid = state["pid"].as_i64().unwrap();
    assert!(pid > 0, "{state}");
    let written = std::fs::read_to_string(&pid_file).unwrap();
    assert_eq!(written.trim(), pid.to_string(), "pid file vs state");

    let out = rt.run(&["start", &id]);
    assert!(out.status.success(), "start: {}", stderr(&out));
    assert_eq!(status_of(&rt, &id).as_deref(), Some("running"));
    assert!(
        wait_until(10.0, || std::fs::read_to_string(out_file(&b, &id))
            .unwrap_or_default()
            .contains("ready")),
        "probe never printed ready"
    );

    // Default signal: SIGTERM, which signal-wait handles by exiting 0.
    let out = rt.run(&["kill", &id]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert!(
        wait_status(&rt, &id, "stopped"),
        "not stopped: {:?}",
        rt.state(&id)
    );
    assert!(std::fs::read_to_string(out_file(&b, &id))
        .unwrap()
        .contains("got SIGTERM"));

    let out = rt.run(&["delete", &id]);
    assert!(out.status.success(), "delete: {}", stderr(&out));
    let out = rt.run(&["state", &id]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("container does not exist"),
        "{}",
        stderr(&out)
    );
    assert_clean(&rt, &id, &b);
}

#[test]
fn kill_with_sigkill_stops_a_sleeper() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-kill9");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let out = rt.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "kill: {}", stderr(&out));
    assert!(wait_status(&rt, &id, "stopped"));
    let state = rt.state(&id).unwrap();
    assert_eq!(
        state["pid"], 0,
        "a stopped container reports pid 0: {state}"
    );
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn list_json_and_quiet() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-list");
    let _g = rt.guard(&id);
    // Empty root: runc prints null.
    let out = rt.run(&["list", "--format", "json"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).trim(), "null");

    let (st, err) = create(&rt, &b, &id, &[]);
    assert!(st.success(), "create: {err}");
    let out = rt.run(&["list", "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = list.as_array().expect("list is an array");
    assert_eq!(list.len(), 1);
    let entry = list[0].as_object().unwrap();
    let mut keys: Vec<&str> = entry.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bundle",
            "created",
            "id",
            "ociVersion",
            "owner",
            "pid",
            "rootfs",
            "status"
        ]
    );
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["status"], "created");
    assert!(entry["pid"].as_i64().unwrap() > 0);

    let out = rt.run(&["list", "-q"]);
    assert!(out.status.success());
    assert_eq!(stdout(&out), format!("{id}\n"));

    let out = rt.run(&["list"]);
    assert!(stdout(&out).starts_with("ID"), "{}", stdout(&out));
    assert!(stdout(&out).contains(&id));

    assert!(
        rt.run(&["delete", &id]).status.success(),
        "delete of a created container"
    );
    assert_clean(&rt, &id, &b);
}

#[test]
fn run_detached() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-rund");
    let _g = rt.guard(&id);
    let (st, err) = berth_integration_tests::run_detached(
        &rt,
        &b,
        &id,
        &["run", "-d", "--bundle", &bundle_arg(&b), &id],
    );
    assert!(st.success(), "run -d: {err}");
    assert_eq!(status_of(&rt, &id).as_deref(), Some("running"));
    assert!(rt.run(&["kill", &id, "KILL"]).status.success());
    assert!(wait_status(&rt, &id, "stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn kill_all_reaches_every_process() {
    need_root!();
    let rt = Runtime::berth();
    // Init is a shell that ignores nothing but waits on two children.
    let b = Bundle::new(&[
        "/bin/sh",
        "-c",
        "probe sleep 1000 & probe sleep 1000 & wait",
    ]);
    let id = unique_id("lc-killall");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    assert!(
        wait_until(10.0, || {
            let out = rt.run(&["ps", "--format", "json", &id]);
            serde_json::from_slice::<Vec<i64>>(&out.stdout).is_ok_and(|p| p.len() == 3)
        }),
        "expected 3 processes"
    );
    let out = rt.run(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "kill --all: {}", stderr(&out));
    assert!(wait_status(&rt, &id, "stopped"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn pause_and_resume() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-pause");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let out = rt.run(&["pause", &id]);
    assert!(out.status.success(), "pause: {}", stderr(&out));
    assert_eq!(status_of(&rt, &id).as_deref(), Some("paused"));
    let out = rt.run(&["resume", &id]);
    assert!(out.status.success(), "resume: {}", stderr(&out));
    assert_eq!(status_of(&rt, &id).as_deref(), Some("running"));
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn delete_force_of_a_paused_container() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-delpaused");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    assert!(rt.run(&["pause", &id]).status.success());
    let out = rt.run(&["delete", "--force", &id]);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert_clean(&rt, &id, &b);
}

#[test]
fn exec_exit_code_and_namespaces() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-exec");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);

    let out = rt.run(&["exec", &id, "/bin/probe", "exit", "5"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "exec exit code: {}",
        stderr(&out)
    );

    let out = rt.run(&["exec", &id, "/bin/probe", "report"]);
    assert!(out.status.success(), "exec report: {}", stderr(&out));
    let r = report(&out);
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    for ns in ["cgroup", "ipc", "mnt", "net", "pid", "uts", "user", "time"] {
        let init = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_eq!(
            r["namespaces"][ns].as_str(),
            Some(init.to_str().unwrap()),
            "exec's {ns} namespace differs from init's"
        );
    }
    // The exec'd process is in the container's cgroups too.
    let init_cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let exec_cg: Vec<&str> = r["cgroup"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(exec_cg, init_cg.lines().collect::<Vec<_>>());

    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn exec_detached_with_pid_file() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-execd");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let pid_file = b.path().join("exec.pid");
    let (st, err) = berth_integration_tests::run_detached(
        &rt,
        &b,
        &id,
        &[
            "exec",
            "-d",
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
            "/bin/probe",
            "sleep",
            "1000",
        ],
    );
    assert!(st.success(), "exec -d: {err}");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());
    let out = rt.run(&["ps", "--format", "json", &id]);
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.contains(&pid), "exec'd pid {pid} not in ps {pids:?}");
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert!(wait_until(5.0, || !std::path::Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()
        || std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.contains(") Z"))));
    assert_clean(&rt, &id, &b);
}

#[test]
fn exec_with_process_file() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-execp");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let process = serde_json::json!({
        "terminal": false,
        "user": {"uid": 1000, "gid": 1000},
        "args": ["/bin/probe", "report"],
        "env": ["PATH=/bin", "FROM_FILE=yes"],
        "cwd": "/home/probe",
    });
    let path = b.path().join("process.json");
    std::fs::write(&path, process.to_string()).unwrap();
    let out = rt.run(&["exec", "--process", path.to_str().unwrap(), &id]);
    assert!(out.status.success(), "exec --process: {}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 1000);
    assert_eq!(r["cwd"], "/home/probe");
    assert_eq!(r["env"]["FROM_FILE"], "yes");

    let exit7 = serde_json::json!({
        "user": {"uid": 0, "gid": 0}, "args": ["/bin/probe", "exit", "7"], "cwd": "/"
    });
    std::fs::write(&path, exit7.to_string()).unwrap();
    let out = rt.run(&["exec", "--process", path.to_str().unwrap(), &id]);
    assert_eq!(out.status.code(), Some(7), "{}", stderr(&out));
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn exec_env_cwd_user() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-execopts");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let out = rt.run(&[
        "exec",
        "--env",
        "FOO=bar",
        "--cwd",
        "/tmp",
        "--user",
        "1000:2000",
        "-g",
        "3000",
        &id,
        "/bin/probe",
        "report",
    ]);
    assert!(out.status.success(), "exec: {}", stderr(&out));
    let r = report(&out);
    assert_eq!(r["env"]["FOO"], "bar");
    assert_eq!(
        r["env"]["PATH"],
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    );
    assert_eq!(r["cwd"], "/tmp");
    assert_eq!(r["uid"], 1000);
    assert_eq!(r["gid"], 2000);
    assert_eq!(r["groups"], serde_json::json!([3000]));
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn ps_lists_init() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-ps");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    let out = rt.run(&["ps", "--format", "json", &id]);
    assert!(out.status.success(), "ps: {}", stderr(&out));
    let pids: Vec<i64> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids, vec![pid]);
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn events_stats_prints_one_line() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-events");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let out = rt.run(&["events", "--stats", &id]);
    assert!(out.status.success(), "events: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let ev: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert!(
        ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
        "{ev}"
    );
    assert_eq!(ev["data"]["pids"]["current"], 1, "{ev}");
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

/// The host path of the container's v1 memory cgroup, from init's /proc/PID/cgroup.
/// The file holding the memory limit of `pid`'s cgroup: memory.limit_in_bytes on v1,
/// memory.max on a pure v2 host.
fn memory_limit_file(pid: i64) -> std::path::PathBuf {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap();
    let line = |want: &dyn Fn(&str) -> bool| {
        text.lines().find_map(|l| {
            let mut f = l.splitn(3, ':');
            let (_, ctrl, path) = (f.next()?, f.next()?, f.next()?);
            want(ctrl).then(|| path.trim_start_matches('/').to_string())
        })
    };
    if let Some(rel) = line(&|c| c.split(',').any(|c| c == "memory")) {
        return std::path::Path::new("/sys/fs/cgroup/memory")
            .join(rel)
            .join("memory.limit_in_bytes");
    }
    let rel = line(&|c| c.is_empty()).expect("a memory controller (v1) or a unified (v2) line");
    std::path::Path::new("/sys/fs/cgroup")
        .join(rel)
        .join("memory.max")
}

#[test]
fn update_memory_raises_the_limit() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = sleeper();
    b.edit(|c| c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 64u64 << 20}));
    let id = unique_id("lc-update");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    let limit = memory_limit_file(pid);
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        (64u64 << 20).to_string()
    );
    let out = rt.run(&["update", "--memory", "128m", &id]);
    assert!(out.status.success(), "update: {}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(&limit).unwrap().trim(),
        (128u64 << 20).to_string()
    );
    assert!(rt.run(&["delete", "--force", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn delete_refuses_running_and_force_kills() {
    need_root!();
    let rt = Runtime::berth();
    let b = sleeper();
    let id = unique_id("lc-delf");
    let _g = rt.guard(&id);
    started(&rt, &b, &id);
    let pid = rt.state(&id).unwrap()["pid"].as_i64().unwrap();
    let out = rt.run(&["delete", &id]);
    assert!(
        !out.status.success(),
        "delete of a running container must fail"
    );
    assert!(stderr(&out).contains("not stopped"), "{}", stderr(&out));
    let out = rt.run(&["delete", "--force", &id]);
    assert!(out.status.success(), "delete --force: {}", stderr(&out));
    assert!(rt.state(&id).is_none());
    assert!(wait_until(5.0, || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |s| s.contains(") Z "))
    }));
    assert_clean(&rt, &id, &b);
}
