//! Stats: every field from a fake cgroupfs (v1 with cgroup2 hugetlb and PSI, as on hybrid
//! hosts; pure v2), the fallbacks, re-reads through one `StatsReader`; and on the real kernel,
//! a helper that allocates, fills the page cache and does direct I/O inside a fresh cgroup.
//! The formulas are in docs/cgroup-stats.md.

// Test code may panic.
#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use berth_cgroups::{Cgroup, Counter, IoCounts, Layout, Mode, StatsReader};
use common::{skip_reason, Guard, Helper, Work};
use oci_spec::runtime::LinuxResources;
use tempfile::TempDir;

const V1_UNLIMITED: &str = "9223372036854771712";
const MIB: u64 = 1 << 20;

/// A fake host: mount points under a tempdir, the cgroup `/c1` made in every hierarchy.
struct Fake {
    tmp: TempDir,
    layout: Layout,
}

impl Fake {
    /// v1 controllers, each its own mount, plus cgroup2 at `unified` with `unified_controllers`.
    fn v1(controllers: &[&str], unified_controllers: &str) -> Fake {
        let tmp = TempDir::new().unwrap();
        let mut mountinfo = String::new();
        let mut own = String::new();
        for (i, c) in controllers.iter().enumerate() {
            let dir = tmp.path().join(c);
            fs::create_dir_all(dir.join("c1")).unwrap();
            mountinfo.push_str(&format!(
                "{} 31 0:{} / {} rw - cgroup cgroup rw,{c}\n",
                32 + i,
                29 + i,
                dir.display()
            ));
            own.push_str(&format!("{}:{c}:/\n", i + 1));
        }
        let unified = tmp.path().join("unified");
        fs::create_dir_all(unified.join("c1")).unwrap();
        fs::write(unified.join("cgroup.controllers"), unified_controllers).unwrap();
        mountinfo.push_str(&format!(
            "50 31 0:50 / {} rw - cgroup2 cgroup2 rw\n",
            unified.display()
        ));
        own.push_str("0::/\n");
        let layout = Layout::from_files(&mountinfo, &own).unwrap();
        Fake { tmp, layout }
    }

    fn v2() -> Fake {
        let tmp = TempDir::new().unwrap();
        fs::create_dir_all(tmp.path().join("c1")).unwrap();
        fs::write(
            tmp.path().join("cgroup.controllers"),
            "cpuset cpu io memory hugetlb pids\n",
        )
        .unwrap();
        let mountinfo = format!(
            "25 20 0:22 / {} rw - cgroup2 cgroup2 rw,nsdelegate\n",
            tmp.path().display()
        );
        let layout = Layout::from_files(&mountinfo, "0::/\n").unwrap();
        Fake { tmp, layout }
    }

    fn cgroup(&self) -> Cgroup {
        Cgroup::open(&self.layout, "/c1", "c1").unwrap()
    }

    /// `/c1` in the hierarchy mounted at `mount` ("" for pure v2).
    fn dir(&self, mount: &str) -> PathBuf {
        self.tmp.path().join(mount).join("c1")
    }

    fn write(&self, mount: &str, files: &[(&str, &str)]) {
        for (name, text) in files {
            fs::write(self.dir(mount).join(name), text).unwrap();
        }
    }
}

const V1_CONTROLLERS: &[&str] = &["blkio", "cpu", "cpuacct", "cpuset", "memory", "pids"];

/// This machine's shape: v1 controllers, hugetlb (and PSI) in the cgroup2 directory.
fn hybrid() -> Fake {
    let fake = Fake::v1(V1_CONTROLLERS, "hugetlb\n");
    fake.write(
        "cpuacct",
        &[
            ("cpuacct.usage_percpu", "1000 2000 \n"),
            (
                "cpuacct.usage_all",
                "cpu user system\n0 300 400\n1 500 600\n",
            ),
            // Ignored when usage_all exists.
            ("cpuacct.stat", "user 99\nsystem 99\n"),
        ],
    );
    fake.write(
        "cpu",
        &[(
            "cpu.stat",
            "nr_periods 10\nnr_throttled 3\nthrottled_time 500\nnr_bursts 0\nburst_time 0\n",
        )],
    );
    fake.write(
        "cpuset",
        &[
            ("cpuset.effective_cpus", "0-2,5\n"),
            ("cpuset.effective_mems", "0\n"),
            ("cpuset.cpu_exclusive", "1\n"),
            ("cpuset.sched_load_balance", "1\n"),
            ("cpuset.sched_relax_domain_level", "-1\n"),
        ],
    );
    fake.write(
        "memory",
        &[
            ("memory.usage_in_bytes", "10485760\n"),
            ("memory.limit_in_bytes", "67108864\n"),
            ("memory.max_usage_in_bytes", "20971520\n"),
            ("memory.failcnt", "7\n"),
            ("memory.memsw.usage_in_bytes", "12582912\n"),
            ("memory.memsw.limit_in_bytes", "134217728\n"),
            ("memory.memsw.max_usage_in_bytes", "25165824\n"),
            ("memory.memsw.failcnt", "2\n"),
            ("memory.kmem.usage_in_bytes", "4096\n"),
            ("memory.kmem.limit_in_bytes", V1_UNLIMITED),
            ("memory.kmem.max_usage_in_bytes", "8192\n"),
            ("memory.kmem.failcnt", "0\n"),
            ("memory.kmem.tcp.usage_in_bytes", "0\n"),
            ("memory.kmem.tcp.limit_in_bytes", "1048576\n"),
            ("memory.kmem.tcp.max_usage_in_bytes", "0\n"),
            ("memory.kmem.tcp.failcnt", "1\n"),
            (
                "memory.stat",
                "cache 1\nrss 2\nshmem 3\ninactive_file 4\n\
                 total_cache 3145728\ntotal_rss 6291456\ntotal_shmem 1048576\n\
                 total_active_anon 4194304\ntotal_inactive_anon 2097152\n\
                 total_active_file 1048576\ntotal_inactive_file 2097152\n",
            ),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
            ),
        ],
    );
    fake.write("pids", &[("pids.current", "4\n"), ("pids.max", "max\n")]);
    fake.write(
        "blkio",
        &[
            (
                "blkio.throttle.io_service_bytes_recursive",
                "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 12288\n8:0 Async 0\n8:0 Discard 512\n\
                 8:0 Total 12800\n253:1 Read 1\n253:1 Write 0\n253:1 Sync 1\n253:1 Async 0\n\
                 253:1 Discard 0\n253:1 Total 1\nTotal 12801\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "8:0 Read 1\n8:0 Write 2\n8:0 Sync 3\n8:0 Async 0\n8:0 Discard 1\n8:0 Total 4\n\
                 Total 4\n",
            ),
            // Not used: the throttle files exist.
            (
                "blkio.bfq.io_service_bytes_recursive",
                "8:0 Read 99\nTotal 99\n",
            ),
        ],
    );
    fake.write(
        "unified",
        &[
            ("hugetlb.2MB.current", "4194304\n"),
            ("hugetlb.2MB.events", "max 2\n"),
            ("hugetlb.2MB.max", "max\n"),
            ("hugetlb.2MB.rsvd.current", "0\n"),
            ("hugetlb.1GB.current", "0\n"),
            ("hugetlb.1GB.events", "max 0\n"),
            (
                "cpu.pressure",
                "some avg10=1.50 avg60=0.25 avg300=0.00 total=2921\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=1312\n",
            ),
            (
                "memory.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            ),
            // cpu.stat of the unified directory is not used: cpuacct is a v1 controller.
            ("cpu.stat", "usage_usec 999\n"),
        ],
    );
    fake
}

#[test]
fn hybrid_cpu_from_usage_all_and_throttling() {
    let fake = hybrid();
    let cpu = fake.cgroup().stats().unwrap().cpu;
    assert_eq!(cpu.per_cpu_ns, [1000, 2000]);
    assert_eq!(cpu.usage_total_ns, 3000);
    assert_eq!(cpu.per_cpu_user_ns, [300, 500]);
    assert_eq!(cpu.per_cpu_system_ns, [400, 600]);
    assert_eq!((cpu.usage_user_ns, cpu.usage_system_ns), (800, 1000));
    assert_eq!(
        (cpu.periods, cpu.throttled_periods, cpu.throttled_time_ns),
        (10, 3, 500)
    );
}

#[test]
fn hybrid_memory_every_field() {
    let fake = hybrid();
    let m = fake.cgroup().stats().unwrap().memory;
    assert_eq!(
        (m.usage, m.limit, m.max_usage, m.failcnt),
        (10 * MIB, Some(64 * MIB), 20 * MIB, 7)
    );
    // total_* (hierarchical) keys win over the local ones.
    assert_eq!((m.cache, m.rss, m.shmem), (3 * MIB, 6 * MIB, MIB));
    assert_eq!((m.active_anon, m.inactive_anon), (4 * MIB, 2 * MIB));
    assert_eq!((m.active_file, m.inactive_file), (MIB, 2 * MIB));
    assert_eq!(m.working_set, 8 * MIB);
    assert_eq!((m.swap_usage, m.swap_limit), (2 * MIB, Some(64 * MIB)));
    assert_eq!(
        m.memsw,
        Some(Counter {
            usage: 12 * MIB,
            limit: Some(128 * MIB),
            max_usage: 24 * MIB,
            failcnt: 2
        })
    );
    assert_eq!(
        m.kernel,
        Some(Counter {
            usage: 4096,
            limit: None,
            max_usage: 8192,
            failcnt: 0
        })
    );
    let tcp = m.kernel_tcp.unwrap();
    assert_eq!((tcp.limit, tcp.failcnt), (Some(MIB), 1));
    assert_eq!((m.oom, m.oom_kill), (0, 3));
    assert_eq!(m.stat["total_rss"], 6 * MIB);
    assert_eq!(m.stat["rss"], 2);
}

#[test]
fn hybrid_pids_cpuset_blkio_hugetlb_psi() {
    let fake = hybrid();
    let cg = fake.cgroup();
    let s = cg.stats().unwrap();
    assert_eq!((s.pids.current, s.pids.limit), (4, None));
    assert_eq!((s.cpuset.cpus, s.cpuset.mems), (vec![0, 1, 2, 5], vec![0]));

    assert_eq!(s.io.len(), 2);
    let sda = &s.io[0];
    assert_eq!((sda.major, sda.minor), (8, 0));
    let v1 = |read, write, discard, sync, async_| IoCounts {
        read,
        write,
        discard,
        sync: Some(sync),
        async_: Some(async_),
    };
    assert_eq!(sda.bytes, v1(4096, 8192, 512, 12288, 0));
    assert_eq!(sda.ios, v1(1, 2, 1, 3, 0));
    assert_eq!(
        (s.io[1].major, s.io[1].minor, s.io[1].bytes.read),
        (253, 1, 1)
    );
    // No line for 253:1 in io_serviced: zeros, v1 ops unknown.
    assert_eq!(s.io[1].ios, IoCounts::default());

    // hugetlb is a cgroup2 controller here: its v2 files; `.rsvd.` is not a page size.
    let sizes: Vec<&str> = s.hugetlb.keys().map(String::as_str).collect();
    assert_eq!(sizes, ["1GB", "2MB"]);
    assert_eq!(
        (
            s.hugetlb["2MB"].usage,
            s.hugetlb["2MB"].max_usage,
            s.hugetlb["2MB"].failcnt
        ),
        (4 * MIB, 0, 2)
    );

    // PSI of the unified directory; io.pressure is missing.
    let cpu = s.pressure.cpu.unwrap();
    assert_eq!(
        (cpu.some.avg10, cpu.some.avg60, cpu.some.total),
        (1.5, 0.25, 2921)
    );
    assert_eq!(cpu.full.total, 1312);
    assert!(s.pressure.memory.is_some());
    assert!(s.pressure.io.is_none());

    assert_eq!(cg.is_unified("memory"), Some(false));
    assert_eq!(cg.is_unified("hugetlb"), Some(true));
    assert_eq!(cg.is_unified("rdma"), None);
    let flags = cg.cpuset_flags().unwrap().unwrap();
    assert_eq!(
        (
            flags.cpu_exclusive,
            flags.sched_load_balance,
            flags.sched_relax_domain_level
        ),
        (1, 1, -1)
    );
    assert_eq!(flags.mem_hardwall, 0);
}

#[test]
fn v1_fallbacks_bfq_blkio_and_missing_files() {
    let fake = Fake::v1(&["blkio", "cpuacct", "hugetlb", "memory"], "");
    fake.write(
        "blkio",
        &[
            (
                "blkio.bfq.io_service_bytes_recursive",
                "8:16 Read 10\n8:16 Write 20\nTotal 30\n",
            ),
            (
                "blkio.bfq.io_serviced_recursive",
                "8:16 Read 1\n8:16 Write 2\nTotal 3\n",
            ),
        ],
    );
    fake.write(
        "hugetlb",
        &[
            ("hugetlb.2MB.usage_in_bytes", "2097152\n"),
            ("hugetlb.2MB.max_usage_in_bytes", "4194304\n"),
            ("hugetlb.2MB.failcnt", "1\n"),
            ("hugetlb.2MB.limit_in_bytes", V1_UNLIMITED),
            ("hugetlb.2MB.rsvd.usage_in_bytes", "0\n"),
        ],
    );
    // Only usage: no memsw (no swap accounting), no stat, no oom_control.
    fake.write("memory", &[("memory.usage_in_bytes", "4096\n")]);
    let s = fake.cgroup().stats().unwrap();
    assert_eq!(s.io.len(), 1);
    assert_eq!((s.io[0].bytes.read, s.io[0].bytes.write), (10, 20));
    assert_eq!((s.io[0].ios.read, s.io[0].ios.write), (1, 2));
    assert_eq!(s.hugetlb.len(), 1);
    let h = s.hugetlb["2MB"];
    assert_eq!((h.usage, h.max_usage, h.failcnt), (2 * MIB, 4 * MIB, 1));
    let m = &s.memory;
    assert_eq!(
        (m.usage, m.limit, m.swap_usage, m.swap_limit),
        (4096, None, 0, None)
    );
    assert_eq!((m.memsw, m.kernel, m.kernel_tcp), (None, None, None));
    assert_eq!(m.working_set, 4096);
    // No cpuacct files, no cgroup2 PSI files: zeros and None.
    assert_eq!(s.cpu.usage_total_ns, 0);
    assert!(s.cpu.per_cpu_ns.is_empty());
    assert_eq!(s.pressure.cpu, None);
}

fn v2() -> Fake {
    let fake = Fake::v2();
    fake.write(
        "",
        &[
            (
                "cpu.stat",
                "usage_usec 7\nuser_usec 4\nsystem_usec 3\nnice_usec 0\nnr_periods 2\n\
                 nr_throttled 1\nthrottled_usec 9\nnr_bursts 0\nburst_usec 0\n",
            ),
            ("cpuset.cpus.effective", "0-3\n"),
            ("cpuset.mems.effective", "0\n"),
            ("memory.current", "10485760\n"),
            ("memory.max", "67108864\n"),
            ("memory.peak", "20971520\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n",
            ),
            ("memory.swap.current", "1048576\n"),
            ("memory.swap.max", "max\n"),
            (
                "memory.stat",
                "anon 6291456\nfile 3145728\nkernel 524288\nkernel_stack 1\nsock 4096\n\
                 shmem 1048576\nactive_anon 4194304\ninactive_anon 2097152\n\
                 active_file 1048576\ninactive_file 2097152\n",
            ),
            ("pids.current", "1\n"),
            ("pids.max", "10\n"),
            (
                "io.stat",
                "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=512 dios=1\n\
                 253:1 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
            ),
            ("hugetlb.2MB.current", "2097152\n"),
            ("hugetlb.2MB.events", "max 5\n"),
            (
                "io.pressure",
                "some avg10=0.00 avg60=0.00 avg300=0.00 total=10\n\
                 full avg10=0.00 avg60=0.00 avg300=0.00 total=5\n",
            ),
        ],
    );
    fake
}

#[test]
fn v2_every_field() {
    let fake = v2();
    let cg = fake.cgroup();
    assert_eq!(cg.mode(), Mode::V2);
    let s = cg.stats().unwrap();
    let cpu = &s.cpu;
    assert_eq!(
        (cpu.usage_total_ns, cpu.usage_user_ns, cpu.usage_system_ns),
        (7000, 4000, 3000)
    );
    assert!(cpu.per_cpu_ns.is_empty() && cpu.per_cpu_user_ns.is_empty());
    assert_eq!(
        (cpu.periods, cpu.throttled_periods, cpu.throttled_time_ns),
        (2, 1, 9000)
    );
    assert_eq!(
        (&s.cpuset.cpus[..], &s.cpuset.mems[..]),
        (&[0, 1, 2, 3][..], &[0][..])
    );
    assert_eq!(cg.cpuset_flags().unwrap(), None);

    let m = &s.memory;
    assert_eq!(
        (m.usage, m.limit, m.max_usage, m.failcnt),
        (10 * MIB, Some(64 * MIB), 20 * MIB, 4)
    );
    assert_eq!((m.rss, m.cache, m.shmem), (6 * MIB, 3 * MIB, MIB));
    assert_eq!((m.active_file, m.inactive_file), (MIB, 2 * MIB));
    assert_eq!((m.active_anon, m.inactive_anon), (4 * MIB, 2 * MIB));
    assert_eq!(m.working_set, 8 * MIB);
    let kernel = m.kernel.unwrap();
    assert_eq!((kernel.usage, kernel.limit), (512 * 1024, None));
    assert_eq!(m.kernel_tcp.unwrap().usage, 4096);
    assert_eq!((m.swap_usage, m.swap_limit), (MIB, None));
    // runc's v1-compatible memory+swap: sums, no limit when either is unlimited.
    let memsw = m.memsw.unwrap();
    assert_eq!((memsw.usage, memsw.limit), (11 * MIB, None));
    assert_eq!((m.oom, m.oom_kill), (2, 1));

    assert_eq!((s.pids.current, s.pids.limit), (1, Some(10)));
    assert_eq!(s.io.len(), 2);
    let v2 = |read, write, discard| IoCounts {
        read,
        write,
        discard,
        sync: None,
        async_: None,
    };
    assert_eq!(s.io[0].bytes, v2(4096, 8192, 512));
    assert_eq!(s.io[0].ios, v2(1, 2, 1));
    assert_eq!(s.io[1].bytes, v2(1, 0, 0));
    let h = s.hugetlb["2MB"];
    assert_eq!((h.usage, h.max_usage, h.failcnt), (2 * MIB, 0, 5));
    assert_eq!(s.pressure.io.unwrap().full.total, 5);
    assert_eq!(s.pressure.cpu, None);

    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["io"][0]["bytes"]["async"], serde_json::Value::Null);
    assert_eq!(json["memory"]["working_set"], 8 * MIB);
}

#[test]
fn v2_kernel_without_the_kernel_key_is_the_sum_of_its_parts() {
    let fake = Fake::v2();
    fake.write(
        "",
        &[(
            "memory.stat",
            "anon 1\nkernel_stack 10\npagetables 20\npercpu 30\nvmalloc 40\nslab 50\nsock 60\n",
        )],
    );
    let m = fake.cgroup().stats().unwrap().memory;
    assert_eq!(m.kernel.unwrap().usage, 150);
    // No swap files (no swap accounting): memory+swap is memory alone.
    assert_eq!(m.memsw.unwrap().limit, None);
    assert_eq!(m.limit, None);
}

#[test]
fn a_reader_sees_new_values_and_big_files() {
    let fake = v2();
    let cg = fake.cgroup();
    let mut reader = StatsReader::open(&cg).unwrap();
    assert_eq!(reader.read().unwrap().memory.usage, 10 * MIB);
    // Rewritten in place (same inode), as the kernel regenerates its files.
    let mut stat = String::new();
    for i in 0..2000 {
        stat.push_str(&format!("key_{i} {i}\n"));
    }
    stat.push_str("inactive_file 1024\n");
    assert!(stat.len() > 16384);
    fake.write("", &[("memory.current", "4096\n"), ("memory.stat", &stat)]);
    let s = reader.read().unwrap();
    assert_eq!(s.memory.usage, 4096);
    assert_eq!(s.memory.stat.len(), 2001);
    assert_eq!(s.memory.stat["key_1999"], 1999);
    assert_eq!(s.memory.working_set, 3072);
}

#[test]
fn a_bad_number_names_the_file() {
    let fake = v2();
    fake.write("", &[("pids.current", "lots\n")]);
    let err = fake.cgroup().stats().unwrap_err().to_string();
    assert!(err.contains("pids.current"), "{err}");
}

// ---- the real kernel ----

/// The helper process (this executable run again; a no-op in the test run itself).
#[test]
fn helper() {
    common::run_helper_if_asked();
}

/// The device a path's filesystem sits on, if it is a block device (not tmpfs, 9p...).
fn block_device_of(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let dev = fs::metadata(path).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sysfs = format!("/sys/dev/block/{major}:{minor}");
    Path::new(&sysfs)
        .exists()
        .then_some((u64::from(major), u64::from(minor)))
}

#[test]
fn real_kernel_stats_of_a_busy_cgroup() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut guard = Guard::new("stats");
    let resources: LinuxResources =
        serde_json::from_str(r#"{"memory": {"limit": 268435456}, "pids": {"limit": 20}}"#).unwrap();
    guard.cgroup.apply(&resources).unwrap();
    let scratch = tempfile::Builder::new()
        .prefix("berth-stats-")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    let device = block_device_of(scratch.path());
    let work = Work {
        alloc_mib: 16,
        cache_file: Some((scratch.path().join("cache"), 8)),
        direct_file: device.map(|_| (scratch.path().join("direct"), 2)),
    };
    let mut helper = Helper::spawn("helper", &work);
    guard.cgroup.add_pid(helper.pid()).unwrap();
    // Opened before the work: re-reads must show it.
    let mut reader = StatsReader::open(&guard.cgroup).unwrap();
    let before = reader.read().unwrap();
    helper.go();
    assert!(helper.ready(), "the helper died");
    guard.helper = Some(helper);
    let s = reader.read().unwrap();
    eprintln!(
        "{:?}: {}",
        guard.cgroup.mode(),
        serde_json::to_string(&s).unwrap()
    );

    let m = &s.memory;
    assert_eq!(m.limit, Some(256 * MIB));
    assert!(m.usage > before.memory.usage + 16 * MIB, "{m:?}");
    assert!(m.rss >= 16 * MIB, "anon {}", m.rss);
    assert!(m.cache >= 8 * MIB, "file {}", m.cache);
    assert!(m.active_file + m.inactive_file + m.shmem >= m.cache.min(8 * MIB));
    assert_eq!(m.working_set, m.usage.saturating_sub(m.inactive_file));
    assert!(m.max_usage >= m.usage || m.max_usage == 0, "{m:?}");
    assert!(!m.stat.is_empty());
    // Tasks, so the helper's threads (the test harness runs the test on its own thread).
    let threads = fs::read_to_string(format!(
        "/proc/{}/status",
        guard.helper.as_ref().unwrap().pid()
    ))
    .unwrap()
    .lines()
    .find_map(|l| {
        l.strip_prefix("Threads:")
            .map(|n| n.trim().parse::<u64>().unwrap())
    })
    .unwrap();
    assert_eq!((s.pids.current, s.pids.limit), (threads, Some(20)));
    assert!(
        s.cpu.usage_total_ns > before.cpu.usage_total_ns,
        "{:?}",
        s.cpu
    );
    assert!(
        s.cpu.usage_user_ns + s.cpu.usage_system_ns > 0,
        "{:?}",
        s.cpu
    );
    assert!(!s.cpuset.cpus.is_empty() && !s.cpuset.mems.is_empty());
    if guard.cgroup.is_unified("cpuacct") == Some(false) {
        let cpus = s.cpu.per_cpu_ns.len();
        assert!(cpus >= 1);
        assert_eq!(s.cpu.per_cpu_ns.iter().sum::<u64>(), s.cpu.usage_total_ns);
        assert_eq!(s.cpu.per_cpu_user_ns.len(), cpus);
    } else {
        assert!(s.cpu.per_cpu_ns.is_empty());
    }
    match (device, &work.direct_file) {
        (Some((major, minor)), Some(_)) => {
            let d =
                s.io.iter()
                    .find(|d| (d.major, d.minor) == (major, minor))
                    .unwrap_or_else(|| panic!("no I/O for {major}:{minor}: {:?}", s.io));
            assert!(d.bytes.write >= 2 * MIB && d.ios.write >= 1, "{d:?}");
            assert!(d.bytes.read >= 2 * MIB && d.ios.read >= 1, "{d:?}");
        }
        _ => eprintln!(
            "note: {} is on no block device: I/O not checked",
            scratch.path().display()
        ),
    }
    // PSI where the kernel has it readable in the cgroup2 directory (Debian boots with
    // psi disabled: no files, or EOPNOTSUPP).
    let unified = guard
        .cgroup
        .paths()
        .into_iter()
        .find(|(name, _)| name == "unified");
    let psi_file = unified.map(|(_, dir)| dir.join("cpu.pressure"));
    match psi_file.filter(|f| fs::read_to_string(f).is_ok()) {
        Some(file) => {
            let psi = s
                .pressure
                .cpu
                .unwrap_or_else(|| panic!("{} not read", file.display()));
            assert!(psi.some.total >= before.pressure.cpu.unwrap_or_default().some.total);
        }
        None => {
            assert_eq!(s.pressure.cpu, None);
            eprintln!("note: no readable cpu.pressure here: PSI not checked");
        }
    }
    if guard.cgroup.is_unified("hugetlb").is_some() && s.hugetlb.is_empty() {
        eprintln!(
            "note: hugetlb is mounted but the cgroup has no hugetlb files (not enabled for it)"
        );
    }
    for (size, h) in &s.hugetlb {
        assert_eq!(h.usage, 0, "{size}");
    }
}
