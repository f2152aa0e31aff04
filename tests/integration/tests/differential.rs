//! berth-runtime against runc on the same bundles: state and list shapes, exit codes, and what
//! the process sees. Skips when runc is not installed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use berth_integration_tests::*;
use serde_json::Value;

macro_rules! need_root_and_runc {
    () => {{
        if !is_root() {
            skip!("needs root (real namespaces, cgroups and mounts)");
        }
        match Runtime::peer("runc") {
            Some(r) => r,
            None => skip!("runc is not installed"),
        }
    }};
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn shape(v: &Value) -> BTreeMap<String, &'static str> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), type_name(v)))
        .collect()
}

#[test]
fn state_and_list_have_the_same_shape() {
    let runc = need_root_and_runc!();
    let berth = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "sleep", "1000"]);
    let mut states = Vec::new();
    let mut lists = Vec::new();
    for rt in [&runc, &berth] {
        let id = unique_id("df-state");
        let _g = Cleanup {
            runtime: rt,
            id: id.clone(),
        };
        let (st, err) = create(rt, &b, &id, &[]);
        assert!(st.success(), "{}: create: {err}", rt.bin.display());
        let state = rt.state(&id).unwrap();
        assert_eq!(state["status"], "created");
        states.push(shape(&state));
        let out = rt.run(&["list", "--format", "json"]);
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        lists.push(shape(&list.as_array().unwrap()[0]));
        assert!(rt.run(&["delete", "--force", &id]).status.success());
        assert_clean(rt, &id, &b);
    }
    assert_eq!(states[1], states[0], "state: berth vs runc");
    assert_eq!(lists[1], lists[0], "list: berth vs runc");
}

#[test]
fn exit_codes_match() {
    let runc = need_root_and_runc!();
    let berth = Runtime::berth();
    // (args, keep the pid namespace, expected code). `kill -9 $$` needs the shell not to be
    // pid 1 of a pid namespace: the kernel drops SIGKILL sent by a namespace's init to itself.
    let cases: [(&[&str], bool, i32); 3] = [
        (&["/bin/probe", "exit", "0"], true, 0),
        (&["/bin/probe", "exit", "3"], true, 3),
        (&["/bin/sh", "-c", "kill -9 $$"], false, 137),
    ];
    for (args, pidns, want) in cases {
        let mut b = Bundle::new(args);
        if !pidns {
            b.edit(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "pid")
            });
        }
        for rt in [&runc, &berth] {
            let id = unique_id("df-exit");
            let _g = Cleanup {
                runtime: rt,
                id: id.clone(),
            };
            let out = rt.run_bundle(&b, &id);
            assert_eq!(
                out.status.code(),
                Some(want),
                "{} {args:?}: {}",
                rt.bin.display(),
                stderr(&out)
            );
            assert_clean(rt, &id, &b);
        }
    }
}

/// (target, fstype) of every mount in a report.
fn mount_set(r: &Value) -> BTreeSet<(String, String)> {
    r["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["target"].as_str().unwrap().into(),
                m["fstype"].as_str().unwrap().into(),
            )
        })
        .collect()
}

#[test]
fn probe_report_matches_runc() {
    let runc = need_root_and_runc!();
    let berth = Runtime::berth();
    let b = Bundle::new(&["/bin/probe", "report"]);
    let mut reports = Vec::new();
    for rt in [&runc, &berth] {
        let id = unique_id("df-report");
        let _g = Cleanup {
            runtime: rt,
            id: id.clone(),
        };
        reports.push(run_report(rt, &b, &id));
        assert_clean(rt, &id, &b);
    }
    let (r, o) = (&reports[0], &reports[1]);
    for key in [
        "uid",
        "gid",
        "groups",
        "caps",
        "rlimits",
        "no_new_privs",
        "seccomp",
        "cwd",
        "env",
        "umask",
        "hostname",
        "pid",
    ] {
        assert_eq!(o[key], r[key], "{key}: berth vs runc");
    }
    // Signals: blocked and caught must be equal. Ignored may differ only in one direction:
    // the test harness starts runtimes with posix_spawn, which sets glibc's internal signals
    // (32, 33) to SIG_IGN in the child; runc (Go) cannot reset 32 and passes it on. berth
    // must not ignore anything runc does not (ideally nothing at all).
    assert_eq!(
        o["signals"]["blocked"], r["signals"]["blocked"],
        "blocked signals"
    );
    assert_eq!(
        o["signals"]["caught"], r["signals"]["caught"],
        "caught signals"
    );
    let mask = |v: &Value| u64::from_str_radix(v.as_str().unwrap(), 16).unwrap();
    let (ri, oi) = (
        mask(&r["signals"]["ignored"]),
        mask(&o["signals"]["ignored"]),
    );
    let mut problems = Vec::new();
    if oi & !ri != 0 {
        problems.push(format!(
            "berth leaves signals ignored that runc resets: berth {oi:#x}, runc {ri:#x}"
        ));
    }
    assert_eq!(r["seccomp"], 0, "no profile, no filter");

    let runc_mounts = mount_set(r);
    let mut berth_mounts = mount_set(o);
    // Justified difference: berth also shows the container's own cgroup2 directory at
    // /sys/fs/cgroup/unified on a hybrid host (read-only, like the v1 hierarchies); runc 1.1
    // mounts only v1 hierarchies. It exposes nothing beyond the container's own cgroup.
    berth_mounts.remove(&("/sys/fs/cgroup/unified".into(), "cgroup2".into()));
    // No other difference is justified; in particular the name=systemd hierarchy, which runc
    // binds at /sys/fs/cgroup/systemd and systemd in a container needs on a hybrid host.
    let missing: Vec<_> = runc_mounts.difference(&berth_mounts).collect();
    let extra: Vec<_> = berth_mounts.difference(&runc_mounts).collect();
    if !missing.is_empty() || !extra.is_empty() {
        problems.push(format!(
            "mounts differ: only under runc {missing:?}; only under berth {extra:?}"
        ));
    }
    assert!(problems.is_empty(), "{problems:#?}");
}
