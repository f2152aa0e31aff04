//! Fake cgroupfs in a tempdir: detection, path resolution, the files apply() writes, stats,
//! conversions and refusals. cgroupfs is only files, so no mock is needed.

// Test helpers outside #[test] functions may panic too.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{shares_to_weight, Backend, Cgroup, Error, Layout, Mode};
use oci_spec::runtime::LinuxResources;
use tempfile::TempDir;

const V1: &[&str] = &[
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
];
const V1_UNLIMITED: &str = "9223372036854771712";

/// A fake host: mount points under a tempdir.
struct Fake {
    tmp: TempDir,
    mountinfo: String,
    self_cgroup: String,
}

impl Fake {
    fn root(&self) -> &Path {
        self.tmp.path()
    }

    fn layout(&self) -> Layout {
        Layout::from_files(&self.mountinfo, &self.self_cgroup).unwrap()
    }

    /// v1 hierarchies (each controller its own mount, like this machine) and optionally cgroup2.
    fn v1(with_unified: bool, controllers: &[&str]) -> Fake {
        let tmp = TempDir::new().unwrap();
        let mut mountinfo = format!(
            "31 23 0:28 / {} rw,relatime - tmpfs tmpfs rw,mode=755\n",
            tmp.path().display()
        );
        let mut self_cgroup = String::new();
        for (i, c) in controllers
            .iter()
            .chain(["name=systemd"].iter())
            .enumerate()
        {
            let dir = tmp.path().join(c.trim_start_matches("name="));
            fs::create_dir_all(&dir).unwrap();
            write_defaults(&dir, c);
            mountinfo.push_str(&format!(
                "{} 31 0:{} / {} rw,relatime shared:{} - cgroup cgroup rw,{c}\n",
                32 + i,
                29 + i,
                dir.display(),
                i + 5
            ));
            let own = if *c == "memory" { "/user.slice" } else { "/" };
            self_cgroup.push_str(&format!("{}:{c}:{own}\n", i + 1));
        }
        if with_unified {
            let dir = tmp.path().join("unified");
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("cgroup.controllers"), "hugetlb\n").unwrap();
            fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
            mountinfo.push_str(&format!(
                "50 31 0:50 / {} rw,relatime - cgroup2 cgroup2 rw\n",
                dir.display()
            ));
            self_cgroup.push_str("0::/\n");
        }
        Fake {
            tmp,
            mountinfo,
            self_cgroup,
        }
    }

    fn v2() -> Fake {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().to_path_buf();
        fs::write(
            root.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(root.join("cgroup.subtree_control"), "cpu memory\n").unwrap();
        let mountinfo = format!(
            "25 20 0:22 / {} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
            root.display()
        );
        Fake {
            tmp,
            mountinfo,
            self_cgroup: "0::/user.slice/session-1.scope\n".to_string(),
        }
    }

    /// What the kernel would do on mkdir: create the directories with their files.
    fn kernel_mkdir(&self, relative: &str) {
        let v2 = self.mountinfo.contains("nsdelegate");
        let mounts: Vec<PathBuf> = if v2 {
            vec![self.root().to_path_buf()]
        } else {
            fs::read_dir(self.root())
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect()
        };
        for mount in mounts {
            let controller = mount.file_name().unwrap().to_string_lossy().to_string();
            let mut dir = mount.clone();
            for part in relative.trim_start_matches('/').split('/') {
                dir.push(part);
                fs::create_dir_all(&dir).unwrap();
                if v2 {
                    write_v2_defaults(&dir);
                } else {
                    write_defaults(&dir, &controller);
                }
            }
        }
    }
}

fn write_defaults(dir: &Path, controller: &str) {
    let files: &[(&str, &str)] = match controller {
        "memory" => &[
            ("memory.limit_in_bytes", V1_UNLIMITED),
            ("memory.memsw.limit_in_bytes", V1_UNLIMITED),
            ("memory.soft_limit_in_bytes", V1_UNLIMITED),
            ("memory.swappiness", "60"),
            ("memory.oom_control", "oom_kill_disable 0\nunder_oom 0\n"),
            ("memory.use_hierarchy", "1"),
            ("memory.kmem.limit_in_bytes", V1_UNLIMITED),
            ("memory.kmem.tcp.limit_in_bytes", V1_UNLIMITED),
        ],
        "cpu" => &[
            ("cpu.shares", "1024"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.rt_runtime_us", "0"),
            ("cpu.rt_period_us", "1000000"),
        ],
        "cpuset" => &[("cpuset.cpus", ""), ("cpuset.mems", "")],
        "pids" => &[("pids.max", "max")],
        "freezer" => &[("freezer.state", "THAWED")],
        "devices" => &[("devices.allow", ""), ("devices.deny", "")],
        // Throttling only; tests add CFQ or BFQ weight files (this machine's cgroups below
        // the root have BFQ's).
        "blkio" => &[
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
        ],
        "hugetlb" => &[
            ("hugetlb.2MB.limit_in_bytes", V1_UNLIMITED),
            ("hugetlb.2MB.rsvd.limit_in_bytes", V1_UNLIMITED),
            ("hugetlb.1GB.limit_in_bytes", V1_UNLIMITED),
        ],
        "net_cls" => &[("net_cls.classid", "0")],
        "net_prio" => &[("net_prio.ifpriomap", "lo 0\n")],
        "rdma" => &[("rdma.max", "")],
        _ => &[],
    };
    fs::write(dir.join("cgroup.procs"), "").unwrap();
    for (file, value) in files {
        fs::write(dir.join(file), value).unwrap();
    }
}

fn write_v2_defaults(dir: &Path) {
    for (file, value) in [
        ("cgroup.procs", ""),
        ("cgroup.controllers", "cpuset cpu io memory pids"),
        ("cgroup.subtree_control", ""),
        ("memory.max", "max"),
        ("memory.current", "0"),
        ("memory.swap.max", "max"),
        ("memory.low", "0"),
        ("memory.high", "max"),
        ("cpu.weight", "100"),
        ("cpu.max", "max 100000"),
        ("cpuset.cpus", ""),
        ("cpuset.mems", ""),
        ("pids.max", "max"),
        ("io.max", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
    ] {
        fs::write(dir.join(file), value).unwrap();
    }
}

fn resources(json: &str) -> LinuxResources {
    serde_json::from_str(json).unwrap()
}

fn read(path: PathBuf) -> String {
    fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}

fn dir_of(cgroup: &Cgroup, key: &str) -> PathBuf {
    cgroup
        .paths()
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("no {key} in {:?}", cgroup.paths()))
        .1
}

#[test]
fn detects_v1() {
    let fake = Fake::v1(false, V1);
    let layout = fake.layout();
    assert_eq!(layout.mode(), Mode::V1);
    assert_eq!(
        layout.controller("memory"),
        Some(Backend::V1(fake.root().join("memory")))
    );
    assert_eq!(layout.controller("hugetlb"), None);
    assert!(layout.unified_mount().is_none());
    assert!(layout.v1_controllers().contains(&"name=systemd"));
}

#[test]
fn detects_v2() {
    let fake = Fake::v2();
    let layout = fake.layout();
    assert_eq!(layout.mode(), Mode::V2);
    assert_eq!(
        layout.controller("memory"),
        Some(Backend::V2(fake.root().to_path_buf()))
    );
    assert_eq!(
        layout.v2_controllers(),
        ["cpu", "cpuset", "io", "memory", "pids"]
    );
}

#[test]
fn detects_hybrid_like_this_machine() {
    let fake = Fake::v1(true, V1);
    let layout = fake.layout();
    assert_eq!(layout.mode(), Mode::Hybrid);
    assert_eq!(
        layout.controller("cpu"),
        Some(Backend::V1(fake.root().join("cpu")))
    );
    assert_eq!(
        layout.controller("cpuacct"),
        Some(Backend::V1(fake.root().join("cpuacct")))
    );
    assert_eq!(
        layout.controller("hugetlb"),
        Some(Backend::V2(fake.root().join("unified")))
    );
}

#[test]
fn detects_combined_cpu_cpuacct_mount() {
    let mountinfo = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    let layout = Layout::from_files(mountinfo, "3:cpuacct,cpu:/a\n").unwrap();
    let cgroup = Cgroup::open(&layout, "b", "id").unwrap();
    let expected = Path::new("/sys/fs/cgroup/cpu,cpuacct/a/b");
    assert_eq!(dir_of(&cgroup, "cpu"), expected);
    assert_eq!(dir_of(&cgroup, "cpuacct"), expected);
}

#[test]
fn no_cgroups_is_an_error() {
    let err = Layout::from_files("1 0 0:1 / / rw - ext4 /dev/sda rw\n", "").unwrap_err();
    assert!(matches!(err, Error::NoCgroups));
}

#[test]
fn resolves_absolute_relative_and_empty_paths() {
    let fake = Fake::v1(true, V1);
    let layout = fake.layout();
    let abs = Cgroup::open(&layout, "/berth/c1", "c1").unwrap();
    assert_eq!(dir_of(&abs, "memory"), fake.root().join("memory/berth/c1"));
    assert_eq!(
        dir_of(&abs, "unified"),
        fake.root().join("unified/berth/c1")
    );
    let rel = Cgroup::open(&layout, "berth/c1", "c1").unwrap();
    assert_eq!(
        dir_of(&rel, "memory"),
        fake.root().join("memory/user.slice/berth/c1")
    );
    assert_eq!(dir_of(&rel, "pids"), fake.root().join("pids/berth/c1"));
    let empty = Cgroup::open(&layout, "", "c1").unwrap();
    assert_eq!(
        dir_of(&empty, "memory"),
        fake.root().join("memory/user.slice/c1")
    );
    assert_eq!(
        dir_of(&empty, "name=systemd"),
        fake.root().join("systemd/c1")
    );
    assert!(abs.unified_dir().is_none(), "hybrid is not pure v2");
    assert!(Cgroup::open(&layout, "/a/../../etc", "c1").is_err());

    let v2 = Fake::v2();
    let rel = Cgroup::open(&v2.layout(), "c1", "c1").unwrap();
    assert_eq!(
        rel.unified_dir(),
        Some(v2.root().join("user.slice/session-1.scope/c1").as_path())
    );
}

#[test]
fn v1_create_copies_cpuset_down() {
    let fake = Fake::v1(false, V1);
    fs::write(fake.root().join("cpuset/cpuset.cpus"), "0-1\n").unwrap();
    fs::write(fake.root().join("cpuset/cpuset.mems"), "0\n").unwrap();
    fake.kernel_mkdir("/a/b");
    let cgroup = Cgroup::create(&fake.layout(), "/a/b", "b").unwrap();
    assert!(cgroup.exists());
    assert_eq!(read(fake.root().join("cpuset/a/cpuset.cpus")), "0-1");
    assert_eq!(read(fake.root().join("cpuset/a/b/cpuset.cpus")), "0-1");
    assert_eq!(read(fake.root().join("cpuset/a/b/cpuset.mems")), "0");
}

#[test]
fn v1_apply_writes_v1_files() {
    let fake = Fake::v1(false, V1);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    cgroup
        .apply(&resources(
            r#"{
              "memory": {"limit": 67108864, "swap": 134217728, "reservation": 33554432,
                         "swappiness": 10, "disableOOMKiller": true},
              "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                      "realtimeRuntime": 950000, "realtimePeriod": 1000000,
                      "cpus": "0", "mems": "0"},
              "pids": {"limit": 10},
              "devices": [{"allow": false, "access": "rwm"},
                          {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"}]
            }"#,
        ))
        .unwrap();
    let m = fake.root().join("memory/c1");
    assert_eq!(read(m.join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(m.join("memory.memsw.limit_in_bytes")), "134217728");
    assert_eq!(read(m.join("memory.soft_limit_in_bytes")), "33554432");
    assert_eq!(read(m.join("memory.swappiness")), "10");
    assert_eq!(read(m.join("memory.oom_control")), "1");
    let c = fake.root().join("cpu/c1");
    assert_eq!(read(c.join("cpu.shares")), "512");
    assert_eq!(read(c.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(c.join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(c.join("cpu.rt_runtime_us")), "950000");
    assert_eq!(read(c.join("cpu.rt_period_us")), "1000000");
    assert_eq!(read(fake.root().join("cpuset/c1/cpuset.cpus")), "0");
    assert_eq!(read(fake.root().join("pids/c1/pids.max")), "10");
    assert_eq!(read(fake.root().join("devices/c1/devices.deny")), "a");
    assert_eq!(
        read(fake.root().join("devices/c1/devices.allow")),
        "c 1:3 rw"
    );
}

#[test]
fn v1_unlimited_memory_and_pids() {
    let fake = Fake::v1(false, V1);
    fake.kernel_mkdir("/c1");
    fs::write(fake.root().join("memory/c1/memory.limit_in_bytes"), "1000").unwrap();
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    cgroup
        .apply(&resources(
            r#"{"memory": {"limit": -1}, "pids": {"limit": 0}}"#,
        ))
        .unwrap();
    let m = fake.root().join("memory/c1");
    assert_eq!(read(m.join("memory.limit_in_bytes")), "-1");
    assert_eq!(read(m.join("memory.memsw.limit_in_bytes")), "-1");
    assert_eq!(read(fake.root().join("pids/c1/pids.max")), "max");
}

#[test]
fn v1_swap_below_limit_is_invalid() {
    let fake = Fake::v1(false, V1);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let err = cgroup
        .apply(&resources(r#"{"memory": {"limit": 200, "swap": 100}}"#))
        .unwrap_err();
    assert!(matches!(err, Error::InvalidValue { .. }), "{err}");
}

#[test]
fn v2_create_enables_controllers_and_apply_writes_v2_files() {
    let fake = Fake::v2();
    fake.kernel_mkdir("/berth/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/berth/c1", "c1").unwrap();
    // The root had cpu and memory enabled already: only the missing ones are written.
    assert_eq!(read(fake.root().join("cgroup.subtree_control")), "+pids");
    assert_eq!(
        read(fake.root().join("berth/cgroup.subtree_control")),
        "+pids"
    );
    cgroup
        .apply(&resources(
            r#"{
              "memory": {"limit": 67108864, "swap": 134217728, "reservation": 1048576},
              "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
              "pids": {"limit": -1},
              "unified": {"memory.high": "50000000"}
            }"#,
        ))
        .unwrap();
    let d = fake.root().join("berth/c1");
    assert_eq!(cgroup.unified_dir(), Some(d.as_path()));
    assert_eq!(read(d.join("memory.max")), "67108864");
    assert_eq!(
        read(d.join("memory.swap.max")),
        "67108864",
        "swap only = swap - limit"
    );
    assert_eq!(read(d.join("memory.low")), "1048576");
    assert_eq!(read(d.join("cpu.weight")), "100");
    assert_eq!(read(d.join("cpu.max")), "50000 100000");
    assert_eq!(read(d.join("cpuset.cpus")), "0-1");
    assert_eq!(read(d.join("pids.max")), "max");
    assert_eq!(read(d.join("memory.high")), "50000000");

    cgroup
        .apply(&resources(
            r#"{"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}}"#,
        ))
        .unwrap();
    assert_eq!(read(d.join("memory.max")), "max");
    assert_eq!(read(d.join("memory.swap.max")), "max");
    assert_eq!(read(d.join("cpu.max")), "max 100000");
}

#[test]
fn shares_to_weight_conversion() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 100);
    assert_eq!(shares_to_weight(262_144), 10_000);
    let mut last = 0;
    for shares in [2, 10, 100, 512, 1024, 2048, 10_000, 100_000, 262_144] {
        let weight = shares_to_weight(shares);
        assert!(weight >= last, "monotonic at {shares}");
        last = weight;
    }
}

#[test]
fn unsupported_settings_are_refused_before_any_write() {
    let fake = Fake::v2();
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let cases = [
        // The fake has no io.weight or io.bfq.weight.
        (
            r#"{"memory": {"limit": 1000}, "blockIO": {"weight": 100}}"#,
            "linux.resources.blockIO.weight",
        ),
        (
            r#"{"memory": {"limit": 1000, "swappiness": 5}}"#,
            "linux.resources.memory.swappiness",
        ),
        (
            r#"{"memory": {"limit": 1000, "kernel": 5}}"#,
            "linux.resources.memory.kernel",
        ),
        (
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "linux.resources.memory.disableOOMKiller",
        ),
        (
            r#"{"cpu": {"realtimeRuntime": 5}}"#,
            "linux.resources.cpu.realtimeRuntime",
        ),
        (
            r#"{"memory": {"limit": 1000, "kernelTCP": 5}}"#,
            "linux.resources.memory.kernelTCP",
        ),
        (
            r#"{"memory": {"limit": 1000}, "blockIO": {"leafWeight": 100}}"#,
            "linux.resources.blockIO.leafWeight",
        ),
        (
            r#"{"memory": {"limit": 1000}, "network": {"classID": 1}}"#,
            "linux.resources.network.classID",
        ),
        // v2 device rules become an eBPF program; a malformed rule is refused before it.
        (
            r#"{"devices": [{"allow": true, "type": "c", "access": "rx"}]}"#,
            "linux.resources.devices.access",
        ),
    ];
    for (json, setting) in cases {
        match cgroup.apply(&resources(json)) {
            Err(Error::Unsupported { setting: got, .. }) => assert_eq!(got, setting, "{json}"),
            other => panic!("{json}: expected unsupported, got {other:?}"),
        }
    }
    assert_eq!(
        read(fake.root().join("c1/memory.max")),
        "max",
        "nothing written"
    );

    let v1 = Fake::v1(false, V1);
    v1.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&v1.layout(), "/c1", "c1").unwrap();
    let err = cgroup
        .apply(&resources(r#"{"unified": {"memory.high": "1"}}"#))
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
}

#[test]
fn missing_controller_names_the_setting() {
    let fake = Fake::v1(false, &["cpu", "memory"]);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let err = cgroup
        .apply(&resources(r#"{"pids": {"limit": 5}}"#))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "linux.resources.pids.limit: controller pids not available"
    );
}

#[test]
fn write_error_names_path_and_value() {
    let fake = Fake::v1(false, V1);
    // No kernel_mkdir: the directory is missing, as if it were removed under us.
    let cgroup = Cgroup::open(&fake.layout(), "/gone", "gone").unwrap();
    let err = cgroup
        .apply(&resources(r#"{"pids": {"limit": 5}}"#))
        .unwrap_err();
    let path = fake.root().join("pids/gone/pids.max");
    assert_eq!(
        err.to_string(),
        format!("write 5 to {}: no such file or directory", path.display())
    );
    assert!(
        cgroup.destroy().is_ok(),
        "a missing cgroup is already destroyed"
    );
}

#[test]
fn hybrid_places_pid_in_unified_too() {
    let fake = Fake::v1(true, V1);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    cgroup
        .apply(&resources(r#"{"memory": {"limit": 1048576}}"#))
        .unwrap();
    assert_eq!(
        read(fake.root().join("memory/c1/memory.limit_in_bytes")),
        "1048576"
    );
    cgroup.add_pid(4242).unwrap();
    for dir in ["memory", "cpu", "systemd", "unified"] {
        assert_eq!(
            read(fake.root().join(dir).join("c1/cgroup.procs")),
            "4242",
            "{dir}"
        );
    }
    fs::create_dir_all(fake.root().join("pids/c1/sub")).unwrap();
    fs::write(fake.root().join("pids/c1/cgroup.procs"), "4242\n").unwrap();
    fs::write(fake.root().join("pids/c1/sub/cgroup.procs"), "7\n8\n").unwrap();
    assert_eq!(cgroup.pids().unwrap(), [7, 8, 4242]);
}

#[test]
fn stats_v1_and_v2() {
    let fake = Fake::v1(false, V1);
    fake.kernel_mkdir("/c1");
    let cg = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let r = fake.root();
    fs::write(r.join("cpuacct/c1/cpuacct.usage"), "3000").unwrap();
    fs::write(r.join("cpuacct/c1/cpuacct.stat"), "user 2\nsystem 1\n").unwrap();
    fs::write(r.join("cpuacct/c1/cpuacct.usage_percpu"), "1000 2000 \n").unwrap();
    fs::write(
        r.join("cpu/c1/cpu.stat"),
        "nr_periods 10\nnr_throttled 3\nthrottled_time 500\n",
    )
    .unwrap();
    fs::write(r.join("memory/c1/memory.usage_in_bytes"), "4096").unwrap();
    fs::write(r.join("memory/c1/memory.memsw.usage_in_bytes"), "6144").unwrap();
    fs::write(
        r.join("memory/c1/memory.stat"),
        "cache 10\nrss 20\ntotal_cache 11\ntotal_rss 21\n",
    )
    .unwrap();
    fs::write(r.join("pids/c1/pids.current"), "2").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(s.cpu.usage_total_ns, 3000);
    assert_eq!(s.cpu.usage_user_ns, 20_000_000);
    assert_eq!(s.cpu.usage_system_ns, 10_000_000);
    assert_eq!(s.cpu.per_cpu_ns, [1000, 2000]);
    assert_eq!(
        (
            s.cpu.periods,
            s.cpu.throttled_periods,
            s.cpu.throttled_time_ns
        ),
        (10, 3, 500)
    );
    assert_eq!((s.memory.usage, s.memory.swap_usage), (4096, 2048));
    assert_eq!((s.memory.cache, s.memory.rss), (11, 21));
    assert_eq!(s.memory.limit, None);
    assert_eq!((s.pids.current, s.pids.limit), (2, None));
    assert!(serde_json::to_string(&s)
        .unwrap()
        .contains("\"usage_total_ns\":3000"));

    let fake = Fake::v2();
    fake.kernel_mkdir("/c1");
    let cg = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let d = fake.root().join("c1");
    fs::write(d.join("cpu.stat"), "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_periods 2\nnr_throttled 1\nthrottled_usec 9\n").unwrap();
    fs::write(d.join("memory.current"), "8192").unwrap();
    fs::write(d.join("memory.max"), "1048576").unwrap();
    fs::write(
        d.join("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
    )
    .unwrap();
    fs::write(d.join("memory.stat"), "anon 100\nfile 200\n").unwrap();
    fs::write(d.join("pids.current"), "1").unwrap();
    fs::write(d.join("pids.max"), "10").unwrap();
    let s = cg.stats().unwrap();
    assert_eq!(
        (
            s.cpu.usage_total_ns,
            s.cpu.usage_user_ns,
            s.cpu.usage_system_ns
        ),
        (7000, 4000, 3000)
    );
    assert_eq!(s.cpu.throttled_time_ns, 9000);
    assert_eq!(
        (s.memory.usage, s.memory.limit, s.memory.failcnt),
        (8192, Some(1_048_576), 4)
    );
    assert_eq!((s.memory.rss, s.memory.cache), (100, 200));
    assert_eq!((s.pids.current, s.pids.limit), (1, Some(10)));
}

#[test]
fn v2_freeze_writes_cgroup_freeze_and_reads_events() {
    let fake = Fake::v2();
    fake.kernel_mkdir("/c1");
    let cg = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let d = fake.root().join("c1");
    // The fake kernel is already "frozen": freeze() returns as soon as events say so.
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(d.join("cgroup.freeze")), "1");
    assert!(cg.is_frozen().unwrap());
    fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    cg.thaw().unwrap();
    assert_eq!(read(d.join("cgroup.freeze")), "0");
    assert!(!cg.is_frozen().unwrap());
}

#[test]
fn v1_freeze_uses_freezer_state() {
    let fake = Fake::v1(true, V1);
    fake.kernel_mkdir("/c1");
    let cg = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(fake.root().join("freezer/c1/freezer.state")), "FROZEN");
    assert!(cg.is_frozen().unwrap());
    cg.thaw().unwrap();
    assert!(!cg.is_frozen().unwrap());
}

// ---------------------------------------------------------------- blockIO, hugetlb, network,
// rdma, kernel memory, checkBeforeUpdate

/// A v1 fake with these controllers, the cgroup /c1 created in it.
fn v1_cgroup(with_unified: bool, controllers: &[&str]) -> (Fake, Cgroup) {
    let fake = Fake::v1(with_unified, controllers);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    (fake, cgroup)
}

/// The pure v2 fake with `controllers` at the root, the cgroup /c1 created in it.
fn v2_cgroup(controllers: &str) -> (Fake, Cgroup) {
    let fake = Fake::v2();
    fs::write(fake.root().join("cgroup.controllers"), controllers).unwrap();
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    (fake, cgroup)
}

fn apply_err(cgroup: &Cgroup, json: &str) -> Error {
    match cgroup.apply(&resources(json)) {
        Err(err) => err,
        Ok(()) => panic!("{json}: applied, expected an error"),
    }
}

/// (variant, setting) of an error about a setting.
fn kind_and_setting(err: &Error) -> (&'static str, String) {
    match err {
        Error::Unsupported { setting, .. } => ("unsupported", setting.clone()),
        Error::InvalidValue { setting, .. } => ("invalid", setting.clone()),
        Error::ControllerMissing { setting, .. } => ("missing", setting.clone()),
        other => panic!("not a setting error: {other}"),
    }
}

const BLKIO_ALL: &str = r#"{"blockIO": {
    "weight": 500, "leafWeight": 300,
    "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 700}],
    "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
    "throttleWriteBpsDevice": [{"major": 8, "minor": 16, "rate": 2097152}],
    "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
    "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]
}}"#;

#[test]
fn v1_block_io_with_cfq_files() {
    let (fake, cgroup) = v1_cgroup(false, V1);
    let b = fake.root().join("blkio/c1");
    for file in [
        "blkio.weight",
        "blkio.weight_device",
        "blkio.leaf_weight",
        "blkio.leaf_weight_device",
    ] {
        fs::write(b.join(file), "").unwrap();
    }
    cgroup.apply(&resources(BLKIO_ALL)).unwrap();
    assert_eq!(read(b.join("blkio.weight")), "500");
    assert_eq!(read(b.join("blkio.leaf_weight")), "300");
    assert_eq!(read(b.join("blkio.weight_device")), "8:0 600");
    assert_eq!(read(b.join("blkio.leaf_weight_device")), "8:0 700");
    assert_eq!(
        read(b.join("blkio.throttle.read_bps_device")),
        "8:0 1048576"
    );
    assert_eq!(
        read(b.join("blkio.throttle.write_bps_device")),
        "8:16 2097152"
    );
    assert_eq!(read(b.join("blkio.throttle.read_iops_device")), "8:0 100");
    // v1: a rate of 0 removes the device's limit.
    assert_eq!(read(b.join("blkio.throttle.write_iops_device")), "8:0 0");
}

#[test]
fn v1_block_io_falls_back_to_bfq_names() {
    let (fake, cgroup) = v1_cgroup(false, V1);
    let b = fake.root().join("blkio/c1");
    fs::write(b.join("blkio.bfq.weight"), "100").unwrap();
    fs::write(b.join("blkio.bfq.weight_device"), "").unwrap();
    cgroup
        .apply(&resources(
            r#"{"blockIO": {"weight": 200, "weightDevice": [{"major": 242, "minor": 77, "weight": 300}]}}"#,
        ))
        .unwrap();
    assert_eq!(read(b.join("blkio.bfq.weight")), "200");
    // 242:77 (a local/experimental number) has no sysfs entry: its scheduler is left to the kernel.
    assert_eq!(read(b.join("blkio.bfq.weight_device")), "242:77 300");
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"weight": 200, "leafWeight": 300}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.leafWeight: unsupported: not available on this host \
         (no blkio.leaf_weight: only CFQ has leaf weights)"
    );
    assert_eq!(read(b.join("blkio.bfq.weight")), "200", "nothing written");
}

#[test]
fn v1_block_io_without_weight_files() {
    let (fake, cgroup) = v1_cgroup(true, V1);
    let b = fake.root().join("blkio/c1");
    cgroup
        .apply(&resources(
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 4096}]}}"#,
        ))
        .unwrap();
    assert_eq!(read(b.join("blkio.throttle.read_bps_device")), "254:0 4096");
    let err = apply_err(&cgroup, r#"{"blockIO": {"weight": 500}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.weight: unsupported: not available on this host \
         (no blkio.weight or blkio.bfq.weight: neither CFQ nor BFQ group weights)"
    );
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500}]}}"#,
    );
    assert_eq!(
        kind_and_setting(&err),
        ("unsupported", "linux.resources.blockIO.weightDevice".into())
    );
    // Weight 0 is unset (runc), so this asks for nothing.
    cgroup
        .apply(&resources(r#"{"blockIO": {"weight": 0}}"#))
        .unwrap();
    fs::remove_file(b.join("blkio.throttle.write_iops_device")).unwrap();
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 5}]}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.throttleWriteIOPSDevice: unsupported: not available on this \
         host (no blkio.throttle.write_iops_device: the kernel has no block I/O throttling)"
    );
}

#[test]
fn block_io_values_are_checked() {
    let (_fake, cgroup) = v1_cgroup(false, V1);
    for (json, setting) in [
        (
            r#"{"blockIO": {"weight": 5}}"#,
            "linux.resources.blockIO.weight",
        ),
        (
            r#"{"blockIO": {"leafWeight": 1001}}"#,
            "linux.resources.blockIO.leafWeight",
        ),
        (
            r#"{"blockIO": {"weightDevice": [{"major": -1, "minor": 0, "weight": 500}]}}"#,
            "linux.resources.blockIO.weightDevice",
        ),
        (
            r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": -2, "rate": 1}]}}"#,
            "linux.resources.blockIO.throttleReadBpsDevice",
        ),
    ] {
        let err = apply_err(&cgroup, json);
        assert_eq!(
            kind_and_setting(&err),
            ("invalid", setting.into()),
            "{json}"
        );
    }
}

#[test]
fn v2_block_io_converts_weights_and_joins_io_max() {
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let d = fake.root().join("c1");
    fs::write(d.join("io.weight"), "default 100\n").unwrap();
    let json = r#"{"blockIO": {
        "weight": 500,
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteBpsDevice": [{"major": 8, "minor": 0, "rate": 0}],
        "throttleReadIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 200}]
    }}"#;
    cgroup.apply(&resources(json)).unwrap();
    assert_eq!(read(d.join("io.weight")), "4950", "1 + (500-10)*9999/990");
    assert_eq!(
        read(d.join("io.max")),
        "8:0 rbps=1048576 wbps=max riops=100 wiops=200",
        "one line per device; v1's rate 0 (no limit) is max"
    );
    // Per-device io.weight needs io cost enabled for the device.
    fs::write(
        fake.root().join("io.cost.qos"),
        "242:78 enable=1 ctrl=auto rpct=0.00 rlat=250000 wpct=0.00 wlat=250000 min=1.00 max=10000.00\n",
    )
    .unwrap();
    cgroup
        .apply(&resources(
            r#"{"blockIO": {"weightDevice": [{"major": 242, "minor": 78, "weight": 1000}]}}"#,
        ))
        .unwrap();
    assert_eq!(read(d.join("io.weight")), "242:78 10000");
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"weightDevice": [{"major": 242, "minor": 79, "weight": 1000}]}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.weightDevice: unsupported: device 242:79 has neither BFQ \
         (its I/O scheduler: unknown) nor io cost (enable=1 in io.cost.qos) for per-device weights"
    );
    assert_eq!(berth_cgroups::blkio_weight_to_io_weight(10), 1);
}

#[test]
fn v2_block_io_prefers_bfq_unconverted() {
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let d = fake.root().join("c1");
    fs::write(d.join("io.weight"), "default 100\n").unwrap();
    fs::write(d.join("io.bfq.weight"), "default 100\n").unwrap();
    cgroup
        .apply(&resources(r#"{"blockIO": {"weight": 500}}"#))
        .unwrap();
    assert_eq!(read(d.join("io.bfq.weight")), "500");
    assert_eq!(read(d.join("io.weight")), "default 100", "untouched");
    fs::write(d.join("io.bfq.weight"), "default 500\n").unwrap();
    cgroup
        .apply(&resources(
            r#"{"blockIO": {"weightDevice": [{"major": 242, "minor": 77, "weight": 300}]}}"#,
        ))
        .unwrap();
    assert_eq!(read(d.join("io.bfq.weight")), "242:77 300");
    // BFQ before 5.4 shows one number and has no per-device weights: io cost takes them.
    fs::write(d.join("io.bfq.weight"), "100\n").unwrap();
    fs::write(fake.root().join("io.cost.qos"), "242:77 enable=1\n").unwrap();
    cgroup
        .apply(&resources(
            r#"{"blockIO": {"weightDevice": [{"major": 242, "minor": 77, "weight": 300}]}}"#,
        ))
        .unwrap();
    assert_eq!(
        read(d.join("io.weight")),
        "242:77 2930",
        "1 + (300-10)*9999/990"
    );
}

#[test]
fn v2_block_io_refusals() {
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let err = apply_err(&cgroup, r#"{"blockIO": {"weight": 500}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.weight: unsupported: not available on this host \
         (no io.bfq.weight or io.weight: neither BFQ nor io cost)"
    );
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 500, "leafWeight": 20}]}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO.weightDevice.leafWeight: unsupported: cgroup v2 has no leaf weights"
    );
    fs::remove_file(fake.root().join("c1/io.max")).unwrap();
    let err = apply_err(
        &cgroup,
        r#"{"blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1}]}}"#,
    );
    assert_eq!(
        kind_and_setting(&err),
        (
            "unsupported",
            "linux.resources.blockIO.throttleReadBpsDevice".into()
        )
    );
    let (_fake, cgroup) = v2_cgroup("cpuset cpu memory pids");
    let err = apply_err(&cgroup, r#"{"blockIO": {"weight": 500}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.blockIO: controller blkio not available"
    );
}

const HUGEPAGES: &str = r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}, {"pageSize": "1GB", "limit": -1}]}"#;

#[test]
fn v1_hugetlb_limits_and_reservations() {
    let (fake, cgroup) = v1_cgroup(false, &["memory", "hugetlb"]);
    let h = fake.root().join("hugetlb/c1");
    cgroup.apply(&resources(HUGEPAGES)).unwrap();
    assert_eq!(read(h.join("hugetlb.2MB.limit_in_bytes")), "4194304");
    assert_eq!(read(h.join("hugetlb.2MB.rsvd.limit_in_bytes")), "4194304");
    assert_eq!(read(h.join("hugetlb.1GB.limit_in_bytes")), "-1");
    let err = apply_err(
        &cgroup,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1}, {"pageSize": "3MB", "limit": 1}]}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.hugepageLimits.pageSize: invalid value 3MB: \
         this kernel's huge page sizes are 2MB, 1GB"
    );
    assert_eq!(read(h.join("hugetlb.2MB.limit_in_bytes")), "4194304");
    let err = apply_err(
        &cgroup,
        r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": -5}]}"#,
    );
    assert_eq!(
        kind_and_setting(&err),
        ("invalid", "linux.resources.hugepageLimits.limit".into())
    );
}

#[test]
fn v2_hugetlb_uses_max_files() {
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory hugetlb pids");
    let d = fake.root().join("c1");
    for file in ["hugetlb.2MB.max", "hugetlb.1GB.max", "hugetlb.1GB.rsvd.max"] {
        fs::write(d.join(file), "max").unwrap();
    }
    cgroup.apply(&resources(HUGEPAGES)).unwrap();
    assert_eq!(read(d.join("hugetlb.2MB.max")), "4194304");
    assert_eq!(read(d.join("hugetlb.1GB.max")), "max");
    assert_eq!(read(d.join("hugetlb.1GB.rsvd.max")), "max");
    assert!(!d.join("hugetlb.2MB.rsvd.max").exists(), "no file created");
}

#[test]
fn hybrid_hugetlb_enables_the_unified_controller_and_uses_v2_names() {
    let fake = Fake::v1(true, V1);
    fake.kernel_mkdir("/berth/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/berth/c1", "c1").unwrap();
    let u = fake.root().join("unified");
    // What the kernel shows once hugetlb is enabled above it.
    fs::write(u.join("berth/cgroup.subtree_control"), "").unwrap();
    for file in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"] {
        fs::write(u.join("berth/c1").join(file), "max").unwrap();
    }
    cgroup.apply(&resources(HUGEPAGES)).unwrap();
    assert_eq!(read(u.join("cgroup.subtree_control")), "+hugetlb");
    assert_eq!(read(u.join("berth/cgroup.subtree_control")), "+hugetlb");
    assert_eq!(read(u.join("berth/c1/hugetlb.2MB.max")), "4194304");
    assert_eq!(read(u.join("berth/c1/hugetlb.2MB.rsvd.max")), "4194304");
    assert_eq!(read(u.join("berth/c1/hugetlb.1GB.max")), "max");

    // Already enabled (the cgroup lists it): nothing is written to the ancestors.
    fs::write(u.join("cgroup.subtree_control"), "hugetlb").unwrap();
    fs::write(u.join("berth/c1/cgroup.controllers"), "hugetlb").unwrap();
    fs::write(u.join("berth/cgroup.subtree_control"), "hugetlb").unwrap();
    cgroup.apply(&resources(HUGEPAGES)).unwrap();
    assert_eq!(read(u.join("cgroup.subtree_control")), "hugetlb");

    // Enabled, but the kernel shows no hugetlb files: no page sizes.
    for file in ["hugetlb.2MB.max", "hugetlb.2MB.rsvd.max", "hugetlb.1GB.max"] {
        fs::remove_file(u.join("berth/c1").join(file)).unwrap();
    }
    let err = apply_err(&cgroup, HUGEPAGES);
    assert_eq!(
        kind_and_setting(&err),
        ("unsupported", "linux.resources.hugepageLimits".into())
    );
}

#[test]
fn hugetlb_without_the_controller() {
    let (_fake, cgroup) = v1_cgroup(false, V1);
    let err = apply_err(&cgroup, HUGEPAGES);
    assert_eq!(
        err.to_string(),
        "linux.resources.hugepageLimits: controller hugetlb not available"
    );
}

#[test]
fn v1_network_classid_and_priorities() {
    let (fake, cgroup) = v1_cgroup(false, &["memory", "net_cls", "net_prio"]);
    cgroup
        .apply(&resources(
            r#"{"network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 2}, {"name": "eth0", "priority": 5}]}}"#,
        ))
        .unwrap();
    assert_eq!(
        read(fake.root().join("net_cls/c1/net_cls.classid")),
        "1048577"
    );
    assert_eq!(
        read(fake.root().join("net_prio/c1/net_prio.ifpriomap")),
        "eth0 5",
        "one write per interface, the last one shows"
    );
    let err = apply_err(
        &cgroup,
        r#"{"network": {"priorities": [{"name": "a b", "priority": 2}]}}"#,
    );
    assert_eq!(
        kind_and_setting(&err),
        ("invalid", "linux.resources.network.priorities.name".into())
    );
}

#[test]
fn network_without_net_cls_names_the_reason() {
    let (_fake, cgroup) = v1_cgroup(true, V1);
    let err = apply_err(&cgroup, r#"{"network": {"classID": 1}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.network.classID: unsupported: no net_cls hierarchy is mounted on this \
         host (and cgroup v2 has no net_cls)"
    );
    let err = apply_err(
        &cgroup,
        r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
    );
    assert_eq!(
        kind_and_setting(&err),
        ("unsupported", "linux.resources.network.priorities".into())
    );
    // classID 0 is unset (runc): nothing asked for.
    cgroup
        .apply(&resources(r#"{"network": {"classID": 0}}"#))
        .unwrap();

    let (_fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let err = apply_err(&cgroup, r#"{"network": {"classID": 1}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.network.classID: unsupported: cgroup v2 has no net_cls controller"
    );
}

const RDMA: &str =
    r#"{"rdma": {"mlx5_1": {"hcaObjects": 50}, "mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}"#;

#[test]
fn rdma_on_v1_and_v2() {
    let (fake, cgroup) = v1_cgroup(false, &["memory", "rdma"]);
    cgroup
        .apply(&resources(
            r#"{"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 100}}}"#,
        ))
        .unwrap();
    assert_eq!(
        read(fake.root().join("rdma/c1/rdma.max")),
        "mlx5_0 hca_handle=3 hca_object=100"
    );
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory pids rdma");
    fs::write(fake.root().join("c1/rdma.max"), "").unwrap();
    cgroup.apply(&resources(RDMA)).unwrap();
    assert_eq!(
        read(fake.root().join("c1/rdma.max")),
        "mlx5_1 hca_object=50",
        "devices in name order, the last one shows"
    );
}

#[test]
fn rdma_without_the_controller() {
    let (_fake, cgroup) = v1_cgroup(true, V1);
    let err = apply_err(&cgroup, RDMA);
    assert_eq!(
        err.to_string(),
        "linux.resources.rdma: controller rdma not available"
    );
}

/// A v1 fake on a kernel of `release` (None: unknown), with /c1.
fn v1_on_kernel(release: Option<&str>) -> (Fake, Cgroup) {
    let fake = Fake::v1(false, V1);
    fake.kernel_mkdir("/c1");
    let mut layout = fake.layout();
    if let Some(release) = release {
        layout = layout.with_kernel_release(release);
    }
    let cgroup = Cgroup::create(&layout, "/c1", "c1").unwrap();
    (fake, cgroup)
}

#[test]
fn v1_kernel_memory_only_where_the_kernel_applies_it() {
    let (fake, cgroup) = v1_on_kernel(Some("5.10.0-28-amd64"));
    let m = fake.root().join("memory/c1");
    cgroup
        .apply(&resources(
            r#"{"memory": {"kernel": 67108864, "kernelTCP": 16777216}}"#,
        ))
        .unwrap();
    assert_eq!(read(m.join("memory.kmem.limit_in_bytes")), "67108864");
    assert_eq!(read(m.join("memory.kmem.tcp.limit_in_bytes")), "16777216");

    let (fake, cgroup) = v1_on_kernel(Some("6.18.44"));
    let m = fake.root().join("memory/c1");
    let err = apply_err(
        &cgroup,
        r#"{"memory": {"limit": 1048576, "kernel": 67108864}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.kernel: unsupported: Linux 5.16 and later do not apply \
         memory.kmem.limit_in_bytes (writes fail with EOPNOTSUPP or are ignored); this is Linux 6.18"
    );
    assert_eq!(
        read(m.join("memory.limit_in_bytes")),
        V1_UNLIMITED,
        "nothing written"
    );
    // -1, no kernel memory limit, is what such a kernel does: accepted, nothing to write.
    cgroup
        .apply(&resources(
            r#"{"memory": {"kernel": -1, "kernelTCP": 4096}}"#,
        ))
        .unwrap();
    assert_eq!(read(m.join("memory.kmem.limit_in_bytes")), V1_UNLIMITED);
    assert_eq!(read(m.join("memory.kmem.tcp.limit_in_bytes")), "4096");

    let (_fake, cgroup) = v1_on_kernel(None);
    let err = apply_err(&cgroup, r#"{"memory": {"kernel": 67108864}}"#);
    assert_eq!(
        kind_and_setting(&err),
        ("unsupported", "linux.resources.memory.kernel".into())
    );
}

#[test]
fn v1_kernel_memory_files_missing() {
    let (fake, cgroup) = v1_on_kernel(Some("5.4.0"));
    let m = fake.root().join("memory/c1");
    fs::remove_file(m.join("memory.kmem.limit_in_bytes")).unwrap();
    fs::remove_file(m.join("memory.kmem.tcp.limit_in_bytes")).unwrap();
    let err = apply_err(&cgroup, r#"{"memory": {"kernel": 4096}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.kernel: unsupported: not available on this host \
         (no memory.kmem.limit_in_bytes: kernel memory accounting is off)"
    );
    let err = apply_err(&cgroup, r#"{"memory": {"kernelTCP": 4096}}"#);
    assert_eq!(
        kind_and_setting(&err),
        ("unsupported", "linux.resources.memory.kernelTCP".into())
    );
    let err = apply_err(&cgroup, r#"{"memory": {"kernelTCP": -7}}"#);
    assert_eq!(
        kind_and_setting(&err),
        ("invalid", "linux.resources.memory.kernelTCP".into())
    );
}

#[test]
fn v2_kernel_memory_has_no_separate_limit() {
    let (_fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let err = apply_err(&cgroup, r#"{"memory": {"kernel": 4096}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.kernel: unsupported: cgroup v2 has no separate kernel memory \
         limits (they count towards memory.max)"
    );
    cgroup
        .apply(&resources(r#"{"memory": {"kernel": -1, "kernelTCP": -1}}"#))
        .unwrap();
}

#[test]
fn v1_use_hierarchy_false_on_new_kernels() {
    let (fake, cgroup) = v1_on_kernel(Some("6.18.44"));
    let err = apply_err(&cgroup, r#"{"memory": {"useHierarchy": false}}"#);
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.useHierarchy: unsupported: Linux 5.11 and later are always \
         hierarchical; this is Linux 6.18"
    );
    cgroup
        .apply(&resources(r#"{"memory": {"useHierarchy": true}}"#))
        .unwrap();
    assert_eq!(
        read(fake.root().join("memory/c1/memory.use_hierarchy")),
        "1"
    );
    let (fake, cgroup) = v1_on_kernel(Some("4.19.0"));
    cgroup
        .apply(&resources(r#"{"memory": {"useHierarchy": false}}"#))
        .unwrap();
    assert_eq!(
        read(fake.root().join("memory/c1/memory.use_hierarchy")),
        "0"
    );
}

#[test]
fn check_before_update_refuses_a_v2_limit_below_usage() {
    let (fake, cgroup) = v2_cgroup("cpuset cpu io memory pids");
    let d = fake.root().join("c1");
    fs::write(d.join("memory.current"), "1000000\n").unwrap();
    let err = apply_err(
        &cgroup,
        r#"{"memory": {"limit": 1000000, "checkBeforeUpdate": true}, "pids": {"limit": 5}}"#,
    );
    assert_eq!(
        err.to_string(),
        "linux.resources.memory.limit: invalid value 1000000: \
         checkBeforeUpdate: the cgroup already uses 1000000 bytes"
    );
    assert_eq!(read(d.join("pids.max")), "max", "nothing written");
    cgroup
        .apply(&resources(
            r#"{"memory": {"limit": 2000000, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap();
    assert_eq!(read(d.join("memory.max")), "2000000");
    // Without the flag the kernel reclaims (and OOM-kills) to reach the limit.
    cgroup
        .apply(&resources(r#"{"memory": {"limit": 500000}}"#))
        .unwrap();
    assert_eq!(read(d.join("memory.max")), "500000");
}

#[test]
fn check_before_update_on_v1_is_the_kernel_s() {
    let (fake, cgroup) = v1_cgroup(false, V1);
    cgroup
        .apply(&resources(
            r#"{"memory": {"limit": 4096, "checkBeforeUpdate": true}}"#,
        ))
        .unwrap();
    assert_eq!(
        read(fake.root().join("memory/c1/memory.limit_in_bytes")),
        "4096"
    );
}

#[test]
fn cpu_files_the_kernel_lacks_name_the_setting() {
    let fake = Fake::v1(false, &["cpu"]);
    fake.kernel_mkdir("/c1");
    let cgroup = Cgroup::create(&fake.layout(), "/c1", "c1").unwrap();
    let dir = dir_of(&cgroup, "cpu");
    for (json, file, setting) in [
        (
            r#"{"cpu": {"burst": 1000}}"#,
            "cpu.cfs_burst_us",
            "cpu.burst",
        ),
        (r#"{"cpu": {"idle": 1}}"#, "cpu.idle", "cpu.idle"),
        (
            r#"{"cpu": {"realtimePeriod": 1000000}}"#,
            "cpu.rt_runtime_us",
            "cpu.realtimePeriod",
        ),
    ] {
        let _ = std::fs::remove_file(dir.join(file));
        let err = cgroup.apply(&resources(json)).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("linux.resources.{setting}: unsupported"))
                && err.contains(file),
            "{json}: {err}"
        );
    }
}
