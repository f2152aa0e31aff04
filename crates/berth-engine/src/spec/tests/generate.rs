//! generate: docker's defaults, args, env, user, capabilities.

use std::path::PathBuf;

use oci_spec::runtime::LinuxNamespaceType;

use super::support::{args, busybox, caps, env, image, options, opts, run, spec, PATH};
use super::user::rootfs;
use crate::spec::{generate, NamespaceMode, RunOptions, SpecError, DEFAULT_CAPABILITIES};

#[test]
fn busybox_defaults_match_docker() {
    let s = spec(&opts());
    let process = s.process().as_ref().expect("process");
    assert_eq!(args(&s), ["sh"]);
    assert_eq!(env(&s), [PATH, "HOSTNAME=0123456789ab"]);
    assert_eq!(process.cwd().to_str(), Some("/"));
    assert_eq!(process.terminal(), Some(false));
    assert_eq!(process.user().uid(), 0);
    assert_eq!(process.user().gid(), 0);
    assert_eq!(process.user().additional_gids(), &Some(vec![0, 10]));
    assert_eq!(process.oom_score_adj(), Some(0));
    assert_eq!(process.no_new_privileges(), None);
    assert_eq!(process.rlimits(), &None);
    let c = process.capabilities().as_ref().expect("caps");
    let defaults = caps(&DEFAULT_CAPABILITIES);
    assert_eq!(defaults.len(), 14);
    assert_eq!(c.bounding(), &Some(defaults.clone()));
    assert_eq!(c.effective(), &Some(defaults.clone()));
    assert_eq!(c.permitted(), &Some(defaults));
    // docker >= 23 (CVE-2022-24769) sets no inheritable capabilities, and no ambient ones.
    assert_eq!(c.inheritable(), &None);
    assert_eq!(c.ambient(), &None);
    assert_eq!(s.hostname().as_deref(), Some("0123456789ab"));
    assert_eq!(s.root().as_ref().and_then(|r| r.readonly()), None);
}

#[test]
fn default_mounts_match_docker() {
    let s = spec(&opts());
    let table: &[(&str, &str, &str, &[&str])] = &[
        ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"],
        ),
    ];
    let mounts = s.mounts().as_ref().expect("mounts");
    assert_eq!(mounts.len(), table.len());
    for (m, (destination, kind, source, opts)) in mounts.iter().zip(table) {
        assert_eq!(m.destination().to_str(), Some(*destination));
        assert_eq!(m.typ().as_deref(), Some(*kind), "{destination}");
        assert_eq!(
            m.source().as_ref().and_then(|s| s.to_str()),
            Some(*source),
            "{destination}"
        );
        assert_eq!(options(m), *opts, "{destination}");
    }
}

#[test]
fn default_linux_section_matches_docker() {
    let s = spec(&opts());
    let linux = s.linux().as_ref().expect("linux");
    let masked = [
        "/proc/asound",
        "/proc/acpi",
        "/proc/kcore",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/timer_list",
        "/proc/timer_stats",
        "/proc/sched_debug",
        "/proc/scsi",
        "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ];
    assert_eq!(linux.masked_paths().clone().unwrap_or_default(), masked);
    let readonly = [
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    ];
    assert_eq!(linux.readonly_paths().clone().unwrap_or_default(), readonly);
    let types: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| n.typ())
        .collect();
    use LinuxNamespaceType::*;
    assert_eq!(types, [Mount, Network, Uts, Pid, Ipc, Cgroup]);
    assert_eq!(linux.devices(), &Some(vec![]));
    let rules: Vec<String> = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default()
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {:?}:{:?} {:?}",
                r.allow(),
                r.typ(),
                r.major(),
                r.minor(),
                r.access()
            )
        })
        .collect();
    let allow =
        |major: i64, minor: i64| format!("true Some(C) Some({major}):Some({minor}) Some(\"rwm\")");
    assert_eq!(
        rules,
        [
            "false None None:None Some(\"rwm\")".to_owned(),
            allow(1, 5),
            allow(1, 3),
            allow(1, 9),
            allow(1, 8),
            allow(5, 0),
            allow(5, 1),
            "false Some(C) Some(10):Some(229) Some(\"rwm\")".to_owned(),
        ]
    );
    let sysctl = linux.sysctl().clone().unwrap_or_default();
    assert_eq!(sysctl.len(), 2);
    assert_eq!(
        sysctl.get("net.ipv4.ping_group_range").map(String::as_str),
        Some("0 2147483647")
    );
    assert_eq!(
        sysctl
            .get("net.ipv4.ip_unprivileged_port_start")
            .map(String::as_str),
        Some("0")
    );
    let resources = linux.resources().as_ref().expect("resources");
    assert_eq!(resources.memory(), &None);
    assert_eq!(resources.cpu(), &None);
    assert_eq!(resources.pids(), &None);
    assert_eq!(resources.block_io(), &None);
}

#[test]
fn cgroup_v1_keeps_the_host_cgroup_namespace() {
    let s = spec(&RunOptions {
        cgroup_v2: false,
        ..opts()
    });
    let linux = s.linux().as_ref().expect("linux");
    assert!(!linux
        .namespaces()
        .iter()
        .flatten()
        .any(|n| n.typ() == LinuxNamespaceType::Cgroup));
}

#[test]
fn host_namespaces_are_left_out_and_paths_joined() {
    let s = spec(&RunOptions {
        network: NamespaceMode::Host,
        pid: NamespaceMode::Host,
        uts: NamespaceMode::Host,
        ipc: NamespaceMode::Path("/proc/42/ns/ipc".into()),
        ..opts()
    });
    let linux = s.linux().as_ref().expect("linux");
    let list: Vec<(LinuxNamespaceType, Option<PathBuf>)> = linux
        .namespaces()
        .iter()
        .flatten()
        .map(|n| (n.typ(), n.path().clone()))
        .collect();
    assert_eq!(
        list,
        [
            (LinuxNamespaceType::Mount, None),
            (LinuxNamespaceType::Ipc, Some("/proc/42/ns/ipc".into())),
            (LinuxNamespaceType::Cgroup, None),
        ]
    );
    assert_eq!(s.hostname(), &None, "uts=host: the host's hostname");
}

#[test]
fn entrypoint_and_cmd_combinations() {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    // (image Entrypoint, image Cmd, --entrypoint, args) -> process args
    type Case<'a> = (
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        Option<&'a [&'a str]>,
        &'a [&'a str],
        &'a [&'a str],
    );
    let cases: &[Case] = &[
        (None, Some(&["sh"]), None, &[], &["sh"]),
        (None, Some(&["sh"]), None, &["echo", "hi"], &["echo", "hi"]),
        (
            Some(&["/ep", "-x"]),
            Some(&["a"]),
            None,
            &[],
            &["/ep", "-x", "a"],
        ),
        (Some(&["/ep"]), Some(&["a"]), None, &["b"], &["/ep", "b"]),
        (
            Some(&["/ep"]),
            Some(&["a"]),
            Some(&["/new"]),
            &[],
            &["/new"],
        ),
        (
            Some(&["/ep"]),
            Some(&["a"]),
            Some(&["/new"]),
            &["b"],
            &["/new", "b"],
        ),
        (
            Some(&["/ep"]),
            Some(&["a"]),
            Some(&[]),
            &["b", "c"],
            &["b", "c"],
        ),
        (Some(&["/ep"]), None, None, &[], &["/ep"]),
    ];
    for (image_ep, image_cmd, ep, cmd, want) in cases {
        let mut config = serde_json::json!({});
        if let Some(ep) = image_ep {
            config["Entrypoint"] = serde_json::json!(ep);
        }
        if let Some(cmd) = image_cmd {
            config["Cmd"] = serde_json::json!(cmd);
        }
        let o = RunOptions {
            entrypoint: ep.map(strings),
            cmd: strings(cmd),
            ..opts()
        };
        assert_eq!(
            args(&run(&image(config), &o).spec),
            *want,
            "{image_ep:?} {image_cmd:?} {ep:?} {cmd:?}"
        );
    }
}

#[test]
fn no_command_is_docker_error() {
    let root = rootfs();
    let o = RunOptions {
        entrypoint: Some(vec![]),
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &o).expect_err("no command");
    assert!(matches!(err, SpecError::NoCommand));
    assert_eq!(err.to_string(), "No command specified");
    let null = image(serde_json::json!({"Cmd": null, "Entrypoint": null}));
    assert!(generate(&null, root.path(), &opts()).is_err());
}

#[test]
fn environment_order_and_overrides() {
    let img = image(serde_json::json!({
        "Env": ["PATH=/custom", "LANG=C", "GONE=1", "TERM=dumb"],
        "Cmd": ["sh"],
    }));
    let o = RunOptions {
        tty: true,
        env: vec![
            "FOO=bar".into(),
            "LANG=en_US.UTF-8".into(),
            "GONE".into(),
            "NEVER".into(),
        ],
        ..opts()
    };
    // docker: user env first, then the image's keys the user did not name, replaced into or
    // appended to PATH, HOSTNAME, TERM; a bare name removes.
    assert_eq!(
        env(&run(&img, &o).spec),
        [
            "PATH=/custom",
            "HOSTNAME=0123456789ab",
            "TERM=dumb",
            "FOO=bar",
            "LANG=en_US.UTF-8"
        ]
    );
    let no_path = image(serde_json::json!({"Cmd": ["sh"]}));
    assert_eq!(
        env(&run(&no_path, &opts()).spec),
        [PATH, "HOSTNAME=0123456789ab"]
    );
    let unset_path = RunOptions {
        env: vec!["PATH".into()],
        ..opts()
    };
    assert_eq!(env(&spec(&unset_path)), ["HOSTNAME=0123456789ab"]);
}

#[test]
fn workdir_and_user_from_image_or_flags() {
    let img = image(serde_json::json!({"Cmd": ["sh"], "WorkingDir": "/app", "User": "app"}));
    let s = run(&img, &opts()).spec;
    let process = s.process().as_ref().expect("process");
    assert_eq!(process.cwd().to_str(), Some("/app"));
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
    assert_eq!(process.user().additional_gids(), &Some(vec![1000, 10, 50]));
    let o = RunOptions {
        workdir: Some("/w".into()),
        user: Some("app:staff".into()),
        ..opts()
    };
    let s = run(&img, &o).spec;
    let process = s.process().as_ref().expect("process");
    assert_eq!(process.cwd().to_str(), Some("/w"));
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 50));
    assert_eq!(process.user().additional_gids(), &Some(vec![50]));
    let o = RunOptions {
        user: Some("1234:5678".into()),
        ..opts()
    };
    let s = run(&img, &o).spec;
    let user = s.process().as_ref().expect("process").user().clone();
    assert_eq!((user.uid(), user.gid()), (1234, 5678));
}

#[test]
fn user_and_workdir_errors() {
    let root = rootfs();
    let o = RunOptions {
        user: Some("nobody".into()),
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &o).expect_err("user");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("unable to find user nobody: no matching entries in passwd file")
    );
    let o = RunOptions {
        workdir: Some("rel".into()),
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &o).expect_err("workdir");
    assert_eq!(
        err.to_string(),
        "the working directory 'rel' is invalid, it needs to be an absolute path"
    );
}

#[test]
fn capability_add_and_drop() {
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let without = |drop: &[&str]| -> Vec<&str> {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !drop.contains(c))
            .collect()
    };
    let mut plus_admin = without(&["CAP_NET_RAW"]);
    plus_admin.push("CAP_SYS_ADMIN");
    let all_but_admin: Vec<&str> = crate::spec::ALL_CAPABILITIES
        .iter()
        .copied()
        .filter(|c| *c != "CAP_SYS_ADMIN")
        .collect();
    let cases: Vec<(&[&str], &[&str], Vec<&str>)> = vec![
        (&["sys_admin"], &["NET_RAW"], plus_admin),
        (&["CAP_SYS_ADMIN"], &["cap_net_raw"], {
            let mut v = without(&["CAP_NET_RAW"]);
            v.push("CAP_SYS_ADMIN");
            v
        }),
        (&["CHOWN"], &["ALL"], vec!["CAP_CHOWN"]),
        (&[], &["all"], vec![]),
        (&["ALL"], &["SYS_ADMIN"], all_but_admin),
        (&["KILL"], &[], DEFAULT_CAPABILITIES.to_vec()),
    ];
    for (add, drop, want) in cases {
        let o = RunOptions {
            cap_add: list(add),
            cap_drop: list(drop),
            ..opts()
        };
        let s = spec(&o);
        let c = s
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("caps");
        assert_eq!(c.bounding(), &Some(caps(&want)), "{add:?} {drop:?}");
        assert_eq!(c.effective(), c.bounding());
        assert_eq!(c.permitted(), c.bounding());
    }
    let root = rootfs();
    let o = RunOptions {
        cap_add: list(&["FOO"]),
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &o).expect_err("unknown");
    assert_eq!(err.to_string(), "unknown capability: \"CAP_FOO\"");
}

#[test]
fn added_capabilities_are_ambient_for_a_non_root_user() {
    let list = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let c = |o: &RunOptions| {
        spec(o)
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().clone())
            .expect("caps")
    };
    // Non-root: the adds (any spelling) are inheritable and ambient; the defaults are not.
    let o = RunOptions {
        user: Some("1000".into()),
        cap_add: list(&["net_admin", "CAP_SYS_TIME"]),
        ..opts()
    };
    let want = Some(caps(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]));
    assert_eq!(c(&o).ambient(), &want);
    assert_eq!(c(&o).inheritable(), &want);
    // docker's rule: drop ALL then add X gives only X.
    let o = RunOptions {
        user: Some("1000".into()),
        cap_add: list(&["chown"]),
        cap_drop: list(&["ALL"]),
        ..opts()
    };
    assert_eq!(c(&o).bounding(), &Some(caps(&["CAP_CHOWN"])));
    assert_eq!(c(&o).ambient(), &Some(caps(&["CAP_CHOWN"])));
    // Non-root without adds, and root with adds: no ambient or inheritable set (docker).
    let o = RunOptions {
        user: Some("1000".into()),
        ..opts()
    };
    assert_eq!(c(&o).ambient(), &None);
    assert_eq!(c(&o).inheritable(), &None);
    let o = RunOptions {
        cap_add: list(&["NET_ADMIN"]),
        ..opts()
    };
    assert_eq!(c(&o).ambient(), &None);
    assert_eq!(c(&o).inheritable(), &None);
}

#[test]
fn group_add_appends_groups_by_name_or_number() {
    let img = image(serde_json::json!({"Cmd": ["sh"], "User": "app"}));
    let o = RunOptions {
        group_add: vec!["staff".into(), "44".into(), "1000".into()],
        ..opts()
    };
    let s = run(&img, &o).spec;
    let process = s.process().as_ref().expect("process");
    assert_eq!(
        process.user().additional_gids(),
        &Some(vec![1000, 10, 50, 44])
    );
    let root = rootfs();
    let o = RunOptions {
        group_add: vec!["nosuch".into()],
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &o).expect_err("group");
    let cause = std::error::Error::source(&err).map(ToString::to_string);
    assert_eq!(
        cause.as_deref(),
        Some("unable to find group nosuch: no matching entries in group file")
    );
}

#[test]
fn mask_and_unmask_change_the_default_paths() {
    let paths = |o: &RunOptions| {
        let s = spec(o);
        let linux = s.linux().clone().expect("linux");
        (linux.masked_paths().clone(), linux.readonly_paths().clone())
    };
    let o = RunOptions {
        mask: vec!["/etc/secret".into()],
        unmask: vec!["/proc/kcore".into(), "/proc/sys".into()],
        ..opts()
    };
    let (masked, readonly) = paths(&o);
    let masked = masked.expect("masked");
    assert!(masked.contains(&"/etc/secret".to_owned()));
    assert!(!masked.contains(&"/proc/kcore".to_owned()));
    assert_eq!(masked.len(), crate::spec::MASKED_PATHS.len());
    assert!(!readonly
        .expect("readonly")
        .contains(&"/proc/sys".to_owned()));
    let all = RunOptions {
        unmask: vec!["ALL".into()],
        ..opts()
    };
    assert_eq!(paths(&all), (Some(vec![]), Some(vec![])));
    let glob = RunOptions {
        unmask: vec!["/sys/*".into()],
        ..opts()
    };
    let (masked, _) = paths(&glob);
    assert!(masked
        .expect("masked")
        .iter()
        .all(|p| !p.starts_with("/sys/")));
    let privileged = RunOptions {
        privileged: true,
        mask: vec!["/etc/secret".into()],
        ..opts()
    };
    assert_eq!(paths(&privileged), (Some(vec!["/etc/secret".into()]), None));
}
