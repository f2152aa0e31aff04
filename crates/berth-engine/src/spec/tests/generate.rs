use std::collections::BTreeMap;
use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxDeviceType, LinuxNamespaceType, LinuxSeccompAction, LinuxSeccompBuilder,
    Mount, Spec,
};

use super::user::rootfs;
use crate::images::ImageConfig;
use crate::spec::{
    generate, BindMount, DeviceMapping, Generated, HostDevice, InitBinary, NamespaceMode,
    Propagation, Resources, RunOptions, SpecError, ThrottleDevice, TmpfsMount, Ulimit,
    DEFAULT_CAPABILITIES,
};

const PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

fn image(config: serde_json::Value) -> ImageConfig {
    let json = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    ImageConfig::parse("test", json.to_string().as_bytes()).expect("image config")
}

/// busybox:latest's config.
fn busybox() -> ImageConfig {
    image(serde_json::json!({"Env": [PATH], "Cmd": ["sh"]}))
}

fn opts() -> RunOptions {
    RunOptions {
        hostname: Some("0123456789ab".into()),
        cgroup_v2: true,
        ..RunOptions::default()
    }
}

fn run(image: &ImageConfig, opts: &RunOptions) -> Generated {
    let root = rootfs();
    generate(image, root.path(), opts).expect("generate")
}

fn spec(opts: &RunOptions) -> Spec {
    run(&busybox(), opts).spec
}

fn caps(names: &[&str]) -> oci_spec::runtime::Capabilities {
    names
        .iter()
        .map(|n| {
            n.strip_prefix("CAP_")
                .unwrap_or(n)
                .parse::<Capability>()
                .expect(n)
        })
        .collect()
}

fn args(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.args().clone())
        .unwrap_or_default()
}

fn env(spec: &Spec) -> Vec<String> {
    spec.process()
        .as_ref()
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
}

fn mount_at<'a>(spec: &'a Spec, destination: &str) -> Option<&'a Mount> {
    spec.mounts()
        .as_ref()?
        .iter()
        .find(|m| m.destination().to_str() == Some(destination))
}

fn options(m: &Mount) -> Vec<String> {
    m.options().clone().unwrap_or_default()
}

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
    assert_eq!(process.user().additional_gids(), &Some(vec![10]));
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
    assert_eq!(process.user().additional_gids(), &Some(vec![10, 50]));
    let o = RunOptions {
        workdir: Some("/w".into()),
        user: Some("app:staff".into()),
        ..opts()
    };
    let s = run(&img, &o).spec;
    let process = s.process().as_ref().expect("process");
    assert_eq!(process.cwd().to_str(), Some("/w"));
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 50));
    assert_eq!(process.user().additional_gids(), &None);
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

fn fuse() -> HostDevice {
    HostDevice {
        path: "/dev/fuse".into(),
        kind: LinuxDeviceType::C,
        major: 10,
        minor: 229,
        file_mode: 0o20666,
        uid: 0,
        gid: 0,
    }
}

fn seccomp() -> oci_spec::runtime::LinuxSeccomp {
    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .build()
        .expect("seccomp")
}

#[test]
fn privileged() {
    let o = RunOptions {
        privileged: true,
        host_devices: vec![fuse()],
        seccomp: Some(seccomp()),
        ..opts()
    };
    let s = spec(&o);
    let c = s
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().clone())
        .expect("caps");
    assert_eq!(
        c.bounding().as_ref().map(|b| b.len()),
        Some(crate::spec::ALL_CAPABILITIES.len())
    );
    assert_eq!(c.bounding(), c.effective());
    let linux = s.linux().as_ref().expect("linux");
    assert_eq!(linux.masked_paths(), &None);
    assert_eq!(linux.readonly_paths(), &None);
    assert_eq!(linux.seccomp(), &None);
    let devices = linux.devices().clone().unwrap_or_default();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].path().to_str(), Some("/dev/fuse"));
    assert_eq!(devices[0].file_mode(), Some(0o666));
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow() && rules[0].typ().is_none());
    let sys = mount_at(&s, "/sys").expect("/sys");
    assert!(options(sys).contains(&"rw".to_owned()));
    assert!(options(mount_at(&s, "/sys/fs/cgroup").expect("cgroup")).contains(&"rw".to_owned()));
}

#[test]
fn seccomp_applied_unless_unconfined() {
    let o = RunOptions {
        seccomp: Some(seccomp()),
        ..opts()
    };
    assert!(spec(&o)
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .is_some());
    let o = RunOptions {
        seccomp: Some(seccomp()),
        seccomp_unconfined: true,
        ..opts()
    };
    assert!(spec(&o)
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .is_none());
}

#[test]
fn device_flag_adds_node_and_rule() {
    let o = RunOptions {
        devices: vec![DeviceMapping {
            host: fuse(),
            container_path: "/dev/myfuse".into(),
            permissions: "rw".into(),
        }],
        ..opts()
    };
    let s = spec(&o);
    let linux = s.linux().as_ref().expect("linux");
    let devices = linux.devices().clone().unwrap_or_default();
    assert_eq!(devices.len(), 1);
    assert_eq!(devices[0].path().to_str(), Some("/dev/myfuse"));
    assert_eq!((devices[0].major(), devices[0].minor()), (10, 229));
    let rules = linux
        .resources()
        .as_ref()
        .and_then(|r| r.devices().clone())
        .unwrap_or_default();
    let last = rules.last().expect("rule");
    assert!(last.allow());
    assert_eq!(
        (last.major(), last.minor(), last.access().as_deref()),
        (Some(10), Some(229), Some("rw"))
    );
}

#[test]
fn resources_mapping() {
    let o = RunOptions {
        resources: Resources {
            memory: Some(512 << 20),
            memory_reservation: Some(256 << 20),
            memory_swappiness: Some(10),
            oom_kill_disable: true,
            nano_cpus: Some(1_500_000_000),
            cpu_shares: Some(512),
            cpuset_cpus: Some("0-1".into()),
            cpuset_mems: Some("0".into()),
            pids_limit: Some(100),
            blkio_weight: Some(300),
            device_read_bps: vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate: 1 << 20,
            }],
            device_write_iops: vec![ThrottleDevice {
                major: 8,
                minor: 0,
                rate: 100,
            }],
            ..Resources::default()
        },
        ..opts()
    };
    let s = spec(&o);
    let r = s
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .expect("resources");
    let m = r.memory().expect("memory");
    assert_eq!(m.limit(), Some(512 << 20));
    assert_eq!(
        m.swap(),
        Some(1 << 30),
        "docker: swap defaults to twice the memory"
    );
    assert_eq!(m.reservation(), Some(256 << 20));
    assert_eq!(m.swappiness(), Some(10));
    assert_eq!(m.disable_oom_killer(), Some(true));
    let c = r.cpu().clone().expect("cpu");
    assert_eq!((c.period(), c.quota()), (Some(100_000), Some(150_000)));
    assert_eq!(c.shares(), Some(512));
    assert_eq!(c.cpus().as_deref(), Some("0-1"));
    assert_eq!(c.mems().as_deref(), Some("0"));
    assert_eq!(r.pids().as_ref().map(|p| p.limit()), Some(100));
    let b = r.block_io().clone().expect("blkio");
    assert_eq!(b.weight(), Some(300));
    let read = b.throttle_read_bps_device().clone().unwrap_or_default();
    assert_eq!(
        (read[0].major(), read[0].minor(), read[0].rate()),
        (8, 0, 1 << 20)
    );
    assert_eq!(
        b.throttle_write_iops_device().as_ref().map(Vec::len),
        Some(1)
    );
    assert_eq!(b.throttle_read_iops_device(), &None);
}

#[test]
fn swap_unlimited_and_pids_unlimited() {
    let o = RunOptions {
        resources: Resources {
            memory: Some(64 << 20),
            memory_swap: Some(-1),
            pids_limit: Some(-1),
            cpu_period: Some(50_000),
            cpu_quota: Some(25_000),
            ..Resources::default()
        },
        ..opts()
    };
    let s = spec(&o);
    let r = s
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .expect("resources");
    assert_eq!(r.memory().as_ref().and_then(|m| m.swap()), Some(-1));
    assert_eq!(r.pids(), &None);
    let c = r.cpu().clone().expect("cpu");
    assert_eq!((c.period(), c.quota()), (Some(50_000), Some(25_000)));
}

#[test]
fn resource_validation_uses_docker_texts() {
    let root = rootfs();
    let cases: Vec<(Resources, &str)> = vec![
        (
            Resources {
                memory: Some(1 << 20),
                ..Default::default()
            },
            "Minimum memory limit allowed is 6MB",
        ),
        (
            Resources {
                memory_swap: Some(1 << 30),
                ..Default::default()
            },
            "You should always set the Memory limit when using Memoryswap limit, see usage",
        ),
        (
            Resources {
                memory: Some(1 << 30),
                memory_swap: Some(512 << 20),
                ..Default::default()
            },
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ),
        (
            Resources {
                memory_swappiness: Some(101),
                ..Default::default()
            },
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            Resources {
                nano_cpus: Some(1),
                cpu_period: Some(100_000),
                ..Default::default()
            },
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ),
        (
            Resources {
                cpu_period: Some(10),
                ..Default::default()
            },
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        (
            Resources {
                blkio_weight: Some(5),
                ..Default::default()
            },
            "Range of blkio weight is from 10 to 1000",
        ),
    ];
    for (resources, want) in cases {
        let o = RunOptions {
            resources,
            ..opts()
        };
        let err = generate(&busybox(), root.path(), &o).expect_err(want);
        assert_eq!(err.to_string(), want);
    }
}

#[test]
fn user_mounts_init_and_rlimits() {
    let o = RunOptions {
        binds: vec![
            BindMount {
                source: "/host/data".into(),
                destination: "/data".into(),
                read_only: true,
                propagation: Propagation::RPrivate,
            },
            BindMount {
                source: "/host/shm".into(),
                destination: "/dev/shm".into(),
                read_only: false,
                propagation: Propagation::RShared,
            },
        ],
        tmpfs: vec![TmpfsMount {
            destination: "/run".into(),
            options: vec!["rw".into(), "exec".into(), "size=64m".into()],
        }],
        init: Some(InitBinary {
            host_path: "/usr/libexec/berth/berth-init".into(),
            container_path: "/sbin/berth-init".into(),
        }),
        ulimits: vec![Ulimit {
            name: "nofile".into(),
            soft: 1024,
            hard: 2048,
        }],
        read_only: true,
        ..opts()
    };
    let s = spec(&o);
    assert_eq!(args(&s), ["/sbin/berth-init", "--", "sh"]);
    let data = mount_at(&s, "/data").expect("/data");
    assert_eq!(data.typ().as_deref(), Some("bind"));
    assert_eq!(options(data), ["rbind", "ro", "rprivate"]);
    let shm: Vec<&Mount> = s
        .mounts()
        .iter()
        .flatten()
        .filter(|m| m.destination().to_str() == Some("/dev/shm"))
        .collect();
    assert_eq!(shm.len(), 1, "the user's /dev/shm replaces docker's");
    assert_eq!(options(shm[0]), ["rbind", "rshared"]);
    let run = mount_at(&s, "/run").expect("/run");
    assert_eq!(
        options(run),
        ["nosuid", "nodev", "rprivate", "rw", "exec", "size=64m"]
    );
    let init = mount_at(&s, "/sbin/berth-init").expect("init");
    assert_eq!(options(init), ["bind", "ro"]);
    let rlimits = s
        .process()
        .as_ref()
        .and_then(|p| p.rlimits().clone())
        .unwrap_or_default();
    assert_eq!(rlimits.len(), 1);
    assert_eq!((rlimits[0].soft(), rlimits[0].hard()), (1024, 2048));
    assert_eq!(s.root().as_ref().and_then(|r| r.readonly()), Some(true));
}

#[test]
fn labels_stop_signal_and_volumes_beside_the_spec() {
    let img = image(serde_json::json!({
        "Cmd": ["sh"],
        "StopSignal": "SIGQUIT",
        "Labels": {"a": "1", "b": "2"},
        "Volumes": {"/var/lib/db": {}, "/data": {}, "/cache": {}},
    }));
    let o = RunOptions {
        labels: BTreeMap::from([("b".into(), "x".into()), ("c".into(), "3".into())]),
        binds: vec![BindMount {
            source: "/h".into(),
            destination: "/data".into(),
            read_only: false,
            propagation: Propagation::RPrivate,
        }],
        ..opts()
    };
    let g = run(&img, &o);
    assert_eq!(g.stop_signal, "SIGQUIT");
    let want: BTreeMap<String, String> = [("a", "1"), ("b", "x"), ("c", "3")]
        .map(|(k, v)| (k.into(), v.into()))
        .into();
    assert_eq!(g.labels, want);
    assert_eq!(g.volumes, ["/cache", "/var/lib/db"]);
    let g = run(
        &busybox(),
        &RunOptions {
            stop_signal: Some("SIGINT".into()),
            ..opts()
        },
    );
    assert_eq!(g.stop_signal, "SIGINT");
    assert_eq!(run(&busybox(), &opts()).stop_signal, "SIGTERM");
}

#[test]
fn sysctls_oom_and_no_new_privileges() {
    let o = RunOptions {
        sysctls: BTreeMap::from([("net.ipv4.ip_forward".into(), "1".into())]),
        oom_score_adj: Some(500),
        no_new_privileges: true,
        ..opts()
    };
    let s = spec(&o);
    let sysctl = s
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone())
        .unwrap_or_default();
    assert_eq!(
        sysctl.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
    let process = s.process().as_ref().expect("process");
    assert_eq!(process.oom_score_adj(), Some(500));
    assert_eq!(process.no_new_privileges(), Some(true));
    let root = rootfs();
    let host_net = RunOptions {
        network: NamespaceMode::Host,
        ..o.clone()
    };
    let err = generate(&busybox(), root.path(), &host_net).expect_err("host net sysctl");
    assert!(matches!(err, SpecError::SysctlHostNetwork(_)));
    let bad_oom = RunOptions {
        oom_score_adj: Some(1001),
        ..opts()
    };
    let err = generate(&busybox(), root.path(), &bad_oom).expect_err("oom");
    assert_eq!(
        err.to_string(),
        "Invalid value 1001, range for oom score adj is [-1000, 1000]"
    );
}

#[test]
fn host_ipc_binds_host_shm_and_mqueue() {
    let s = spec(&RunOptions {
        ipc: NamespaceMode::Host,
        ..opts()
    });
    let shm = mount_at(&s, "/dev/shm").expect("/dev/shm");
    assert_eq!(shm.typ().as_deref(), Some("bind"));
    assert_eq!(
        shm.source().as_ref().and_then(|p| p.to_str()),
        Some("/dev/shm")
    );
}

#[test]
fn json_has_none_of_oci_specs_own_defaults() {
    let json = serde_json::to_value(spec(&opts())).expect("json");
    for pointer in [
        "/annotations",
        "/process/capabilities/inheritable",
        "/process/capabilities/ambient",
        "/process/noNewPrivileges",
        "/process/rlimits",
        "/root/readonly",
        "/linux/seccomp",
    ] {
        assert!(json.pointer(pointer).is_none(), "{pointer}");
    }
    assert_eq!(
        json.pointer("/ociVersion").and_then(|v| v.as_str()),
        Some("1.1.0")
    );
}
