//! generate: privileged, devices, resources, mounts and what is returned beside the spec.

use std::collections::BTreeMap;

use oci_spec::runtime::{LinuxDeviceType, Mount};

use super::support::{args, busybox, image, mount_at, options, opts, run, spec};
use super::user::rootfs;
use crate::spec::{
    generate, BindMount, DeviceMapping, HostDevice, InitBinary, NamespaceMode, Propagation,
    Resources, RunOptions, SpecError, ThrottleDevice, TmpfsMount, Ulimit,
};

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

#[test]
fn privileged() {
    let o = RunOptions {
        privileged: true,
        host_devices: vec![fuse()],
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
    // docker's clearReadOnly: `ro` removed from /sys and the cgroup mount.
    assert_eq!(
        options(mount_at(&s, "/sys").expect("/sys")),
        ["nosuid", "noexec", "nodev"]
    );
    let cgroup = mount_at(&s, "/sys/fs/cgroup").expect("cgroup");
    assert_eq!(options(cgroup), ["nosuid", "noexec", "nodev"]);
    // With --read-only, docker adds `ro` back to every mount outside its writable list.
    let s = spec(&RunOptions {
        read_only: true,
        ..o
    });
    assert_eq!(
        options(mount_at(&s, "/sys").expect("/sys")),
        ["nosuid", "noexec", "nodev", "ro"]
    );
    assert!(!options(mount_at(&s, "/dev/mqueue").expect("mqueue")).contains(&"ro".to_owned()));
}

#[test]
fn seccomp_applied_unless_unconfined() {
    assert!(spec(&opts())
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().clone())
        .is_some());
    let o = RunOptions {
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
    // docker's getMemoryResources: only a positive swap is written; -1 is no limit.
    assert_eq!(r.memory().as_ref().and_then(|m| m.swap()), None);
    assert_eq!(r.memory().as_ref().and_then(|m| m.limit()), Some(64 << 20));
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
                propagation: Some(Propagation::RPrivate),
            },
            BindMount {
                source: "/host/shm".into(),
                destination: "/dev/shm".into(),
                read_only: false,
                propagation: Some(Propagation::RShared),
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
            propagation: Some(Propagation::RPrivate),
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
    let host = RunOptions {
        network: NamespaceMode::Host,
        ..opts()
    };
    let s = spec(&host);
    assert_eq!(
        s.linux().as_ref().and_then(|l| l.sysctl().clone()),
        None,
        "no defaults in the host netns"
    );
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
    assert_eq!(options(shm), ["rbind", "rprivate"]);
    let mqueue = mount_at(&s, "/dev/mqueue").expect("/dev/mqueue");
    assert_eq!(mqueue.typ().as_deref(), Some("mqueue"));
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
    ] {
        assert!(json.pointer(pointer).is_none(), "{pointer}");
    }
    assert_eq!(
        json.pointer("/ociVersion").and_then(|v| v.as_str()),
        Some("1.1.0")
    );
}

#[test]
fn init_only_in_a_new_pid_namespace() {
    let init = InitBinary {
        host_path: "/usr/libexec/berth/berth-init".into(),
        container_path: "/dev/init".into(),
    };
    let o = RunOptions {
        init: Some(init),
        ..opts()
    };
    let s = spec(&o);
    assert_eq!(args(&s), ["/dev/init", "--", "sh"]);
    assert!(mount_at(&s, "/dev/init").is_some());
    let s = spec(&RunOptions {
        pid: NamespaceMode::Host,
        ..o
    });
    assert_eq!(args(&s), ["sh"]);
    assert!(mount_at(&s, "/dev/init").is_none());
}

#[test]
fn a_user_dev_mount_replaces_everything_under_dev() {
    let o = RunOptions {
        binds: vec![BindMount {
            source: "/dev".into(),
            destination: "/dev".into(),
            read_only: false,
            propagation: Some(Propagation::RPrivate),
        }],
        ..opts()
    };
    let s = spec(&o);
    let destinations: Vec<String> = s
        .mounts()
        .iter()
        .flatten()
        .map(|m| m.destination().to_string_lossy().into_owned())
        .collect();
    assert_eq!(destinations, ["/proc", "/sys", "/sys/fs/cgroup", "/dev"]);
}

#[test]
fn a_volume_mount_has_no_propagation_option() {
    let o = RunOptions {
        binds: vec![BindMount {
            source: "/var/lib/berth/volumes/v/_data".into(),
            destination: "/data".into(),
            read_only: false,
            propagation: None,
        }],
        ..opts()
    };
    assert_eq!(
        options(mount_at(&spec(&o), "/data").expect("/data")),
        ["rbind"]
    );
}
