//! Failures: each names the step or field and the cause in one line, and leaves nothing behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use berth_integration_tests::*;
use serde_json::{json, Value};

/// `run` a bundle that must fail; returns its stderr, checked to be exactly one line.
fn run_fails(rt: &Runtime, b: &Bundle, prefix: &str) -> String {
    let id = unique_id(prefix);
    let _g = Cleanup {
        runtime: rt,
        id: id.clone(),
    };
    let out = rt.run_bundle(b, &id);
    let err = stderr(&out);
    assert!(!out.status.success(), "run {id} should fail; stderr: {err}");
    assert_eq!(err.lines().count(), 1, "expected one line on stderr: {err}");
    assert!(rt.state(&id).is_none(), "state of a failed create exists");
    assert_clean(rt, &id, b);
    err
}

#[test]
fn bad_mount_source() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "exit", "0"]);
    b.edit(|c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt/x", "type": "bind",
            "source": "/nonexistent/dir", "options": ["rbind"]}));
    });
    let err = run_fails(&rt, &b, "fl-mount");
    for want in [
        "mount",
        "/mnt/x",
        "/nonexistent/dir",
        "no such file or directory",
    ] {
        assert!(err.contains(want), "missing {want:?}: {err}");
    }
}

#[test]
fn nonexistent_binary() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/nope"]);
    let err = run_fails(&rt, &b, "fl-nobin");
    assert!(err.contains("/nope"), "{err}");
    assert!(err.contains("no such file or directory"), "{err}");
}

#[test]
fn invalid_config_names_the_field() {
    need_root!();
    let rt = Runtime::berth();
    type Case = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            "args",
            Box::new(|c: &mut Value| c["process"]["args"] = 5.into()),
            "process.args",
        ),
        (
            "nstype",
            Box::new(|c: &mut Value| c["linux"]["namespaces"][2]["type"] = "bogus".into()),
            "linux.namespaces[2].type",
        ),
        (
            "rootfs",
            Box::new(|c: &mut Value| c["root"]["path"] = "no-such-rootfs".into()),
            "root.path",
        ),
    ];
    for (name, edit, field) in cases {
        let mut b = Bundle::new(&["/bin/probe", "exit", "0"]);
        b.edit(|c| edit(c));
        let err = run_fails(&rt, &b, &format!("fl-cfg-{name}"));
        assert!(err.contains(field), "{name}: expected {field:?} in {err}");
    }
}

#[test]
fn failing_create_runtime_hook() {
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "exit", "0"]);
    let hook = b.path().join("fail-hook.sh");
    std::fs::write(&hook, "#!/bin/sh\necho hook says no >&2\nexit 1\n").unwrap();
    assert!(std::process::Command::new("chmod")
        .arg("755")
        .arg(&hook)
        .status()
        .unwrap()
        .success());
    b.edit(|c| c["hooks"] = json!({"createRuntime": [{"path": hook}]}));
    let err = run_fails(&rt, &b, "fl-hook");
    assert!(err.contains("createRuntime"), "{err}");
    assert!(err.contains(hook.to_str().unwrap()), "{err}");
    assert!(
        err.contains("hook says no"),
        "hook's stderr is reported: {err}"
    );
}

#[test]
fn json_log_gets_one_error_line() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/nope"]);
    let log = b.path().join("runtime.log");
    let id = unique_id("fl-log");
    let _g = rt.guard(&id);
    let out = rt
        .cmd()
        .arg("--log")
        .arg(&log)
        .args([
            "--log-format",
            "json",
            "run",
            "--bundle",
            &bundle_arg(&b),
            &id,
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let line: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(line["level"], "error", "{line}");
    assert!(line["msg"].as_str().unwrap().contains("/nope"), "{line}");
    assert_clean(&rt, &id, &b);
}

#[test]
fn systemd_cgroup_is_refused_clearly() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "exit", "0"]);
    let id = unique_id("fl-systemd");
    let _g = rt.guard(&id);
    let out = rt
        .cmd()
        .args(["--systemd-cgroup", "run", "--bundle", &bundle_arg(&b), &id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--systemd-cgroup") && err.contains("systemd"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_clean(&rt, &id, &b);
}

#[test]
fn duplicate_id() {
    need_root!();
    let rt = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "sleep", "1000"]);
    let id = unique_id("fl-dup");
    let _g = rt.guard(&id);
    let (st, err) = create(&rt, &b, &id, &[]);
    assert!(st.success(), "create: {err}");
    let (st, err) = create(&rt, &b, &id, &[]);
    assert!(!st.success());
    assert!(err.contains("container with id exists"), "{err}");
    // The first container is untouched.
    assert_eq!(status_of(&rt, &id).as_deref(), Some("created"));
    assert!(rt.run(&["delete", &id]).status.success());
    assert_clean(&rt, &id, &b);
}

#[test]
fn impossible_limit_is_refused_and_nothing_is_left() {
    // The kernel refuses the value when the cgroup is configured, which on v1/hybrid happens
    // after the child was cloned (while it sets up): the child must be gone afterwards too.
    need_root!();
    let rt = Runtime::berth();
    let mut b = Bundle::new(&["/bin/probe", "exit", "0"]);
    b.edit(|c| c["linux"]["resources"]["cpu"] = json!({"cpus": "999"}));
    let err = run_fails(&rt, &b, "fl-cpus");
    for want in ["cpuset.cpus", "999"] {
        assert!(err.contains(want), "missing {want:?}: {err}");
    }
}
