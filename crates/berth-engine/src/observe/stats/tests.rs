use super::*;
use crate::observe::testutil::{skip_reason, Spinner};
use berth_cgroups::{CpuStats, DeviceIo, IoCounts, MemoryStats, PidsStats};
use std::fs;
use tempfile::TempDir;

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

#[test]
fn go_units_match_docker_strings() {
    assert_eq!(bytes_size(0.0), "0B");
    assert_eq!(bytes_size(1023.0), "1023B");
    assert_eq!(bytes_size(1.5 * MIB as f64), "1.5MiB");
    assert_eq!(bytes_size(23.4 * GIB as f64), "23.4GiB");
    assert_eq!(bytes_size(24521234.0 * 1024.0), "23.39GiB");
    assert_eq!(bytes_size(1024.0), "1KiB");
    assert_eq!(human_size_with_precision(0.0, 3), "0B");
    assert_eq!(human_size_with_precision(648.0, 3), "648B");
    assert_eq!(human_size_with_precision(1234.0, 3), "1.23kB");
    assert_eq!(human_size_with_precision(1200.0, 3), "1.2kB");
    assert_eq!(human_size_with_precision(12_345_678.0, 3), "12.3MB");
    assert_eq!(human_size_with_precision(1_000_000.0, 3), "1MB");
    // Go's %.3g quirk, kept: 999.7 kB rounds to 1e+03 without moving to MB.
    assert_eq!(human_size_with_precision(999_700.0, 3), "1e+03kB");
    assert_eq!(go_g(0.000012345, 3), "1.23e-05");
    assert_eq!(go_g(0.5, 3), "0.5");
    assert_eq!(go_g(100.0, 3), "100");
    assert_eq!(go_g(123456.0, 3), "1.23e+05");
}

#[test]
fn net_dev_sums_every_interface_but_lo() {
    let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
    lo:  5000      50    0    0    0     0          0         0     5000      50    0    0    0     0       0          0\n  \
  eth0:  1200      10    0    0    0     0          0         0      300       3    0    0    0     0       0          0\n  \
  eth1:    34       1    0    0    0     0          0         0        7       1    0    0    0     0       0          0\n";
    assert_eq!(
        parse_net_dev(text),
        NetIo {
            rx_bytes: 1234,
            tx_bytes: 307
        }
    );
    // --network none: lo only.
    let none = "h1\nh2\n    lo: 10 1 0 0 0 0 0 0 10 1 0 0 0 0 0 0\n";
    assert_eq!(parse_net_dev(none), NetIo::default());
}

#[test]
fn quota_files_and_cpu_limit() {
    let q = |quota_us, period_us| CpuQuota {
        quota_us,
        period_us,
    };
    assert_eq!(parse_cpu_max("max 100000\n"), None);
    assert_eq!(parse_cpu_max("50000 100000\n"), Some(q(50_000, 100_000)));
    assert_eq!(parse_v1_quota("-1\n", "100000\n"), None);
    assert_eq!(
        parse_v1_quota("150000\n", "100000\n"),
        Some(q(150_000, 100_000))
    );
    assert_eq!(cpu_limit(None, 0, 2), (2.0, CpuLimitSource::Host));
    assert_eq!(cpu_limit(None, 2, 2), (2.0, CpuLimitSource::Host));
    assert_eq!(cpu_limit(None, 1, 2), (1.0, CpuLimitSource::Cpuset));
    assert_eq!(
        cpu_limit(Some(q(50_000, 100_000)), 1, 2),
        (0.5, CpuLimitSource::Quota)
    );
    // A quota above the cpuset does not raise the limit.
    assert_eq!(
        cpu_limit(Some(q(400_000, 100_000)), 1, 2),
        (1.0, CpuLimitSource::Cpuset)
    );
    assert_eq!(memory_limit(None, 8 * GIB), (8 * GIB, true));
    assert_eq!(memory_limit(Some(GIB), 8 * GIB), (GIB, false));
    assert_eq!(memory_limit(Some(16 * GIB), 8 * GIB), (8 * GIB, true));
}

fn stats(usage_ns: u64, throttled: u64, working_set: u64) -> Stats {
    Stats {
        cpu: CpuStats {
            usage_total_ns: usage_ns,
            periods: throttled * 2,
            throttled_periods: throttled,
            throttled_time_ns: throttled * 1000,
            ..CpuStats::default()
        },
        memory: MemoryStats {
            usage: working_set + 10 * MIB,
            working_set,
            inactive_file: 10 * MIB,
            rss: working_set,
            cache: 12 * MIB,
            shmem: MIB,
            limit: Some(256 * MIB),
            ..MemoryStats::default()
        },
        pids: PidsStats {
            current: 3,
            limit: Some(20),
        },
        io: vec![
            DeviceIo {
                major: 8,
                minor: 0,
                bytes: IoCounts {
                    read: 1000,
                    write: 2000,
                    ..IoCounts::default()
                },
                ..DeviceIo::default()
            },
            DeviceIo {
                major: 8,
                minor: 16,
                bytes: IoCounts {
                    read: 500,
                    write: 0,
                    ..IoCounts::default()
                },
                ..DeviceIo::default()
            },
        ],
        ..Stats::default()
    }
}

#[test]
fn rates_between_two_snapshots() {
    let host = Host {
        cpus: 2,
        mem_total: 8 * GIB,
    };
    let t0 = Instant::now();
    let quota = Some(CpuQuota {
        quota_us: 50_000,
        period_us: 100_000,
    });
    let first = Snapshot {
        at: t0,
        stats: stats(1_000_000_000, 10, 20 * MIB),
        quota,
        net: Ok(NetIo {
            rx_bytes: 1200,
            tx_bytes: 0,
        }),
    };
    let primed = compute(&host, "abc", "/web", None, &first);
    assert_eq!(primed.cpu.percent, None);
    assert_eq!(primed.interval_ns, None);
    assert_eq!(primed.cpu.throttled_periods_delta, None);
    let second = Snapshot {
        at: t0 + Duration::from_secs(2),
        stats: stats(1_500_000_000, 14, 64 * MIB),
        ..first.clone()
    };
    let row = compute(&host, "abc", "/web", Some(&first), &second);
    // 0.5 s of CPU in 2 s: a quarter of one core; the limit is half a core.
    assert_eq!(row.interval_ns, Some(2_000_000_000));
    assert_eq!(row.cpu.percent, Some(25.0));
    assert_eq!(row.cpu.limit_cpus, 0.5);
    assert_eq!(row.cpu.limit_source, CpuLimitSource::Quota);
    assert_eq!(row.cpu.percent_of_limit, Some(50.0));
    assert_eq!(row.cpu.throttled_periods_delta, Some(4));
    assert_eq!(row.cpu.periods_delta, Some(8));
    assert_eq!(row.cpu.throttled_time_delta_ns, Some(4000));
    assert_eq!(row.memory.working_set, 64 * MIB);
    assert_eq!(row.memory.limit, 256 * MIB);
    assert!(!row.memory.limit_is_host);
    assert_eq!(row.memory.percent, 25.0);
    assert_eq!(
        row.block_io,
        BlockIo {
            read_bytes: 1500,
            write_bytes: 2000
        }
    );
    assert_eq!((row.pids, row.pids_limit), (3, Some(20)));

    let display = StatsDisplay::new(&row, "web", true);
    assert_eq!(display.cpu_perc, "25.00%");
    assert_eq!(display.mem_usage, "64MiB / 256MiB");
    assert_eq!(display.mem_perc, "25.00%");
    assert_eq!(display.net_io, "1.2kB / 0B");
    assert_eq!(display.block_io, "1.5kB / 2kB");
    assert_eq!(display.pids, "3");
    assert_eq!(display.name, "web");
    assert_eq!(display.field("Container"), Some("web"));
    assert_eq!(display.field("Nope"), None);
    let json = serde_json::to_string(&display).unwrap();
    assert_eq!(
        json,
        r#"{"BlockIO":"1.5kB / 2kB","CPUPerc":"25.00%","Container":"web","ID":"abc","MemPerc":"25.00%","MemUsage":"64MiB / 256MiB","Name":"web","NetIO":"1.2kB / 0B","PIDs":"3"}"#
    );
    for field in DISPLAY_FIELDS {
        assert!(display.field(field).is_some(), "{field}");
    }
    let raw = serde_json::to_value(&row).unwrap();
    assert_eq!(raw["net"]["rx_bytes"], 1200);
    assert_eq!(raw["cpu"]["limit_source"], "quota");
}

#[test]
fn display_of_a_primed_row_without_network() {
    let host = Host {
        cpus: 2,
        mem_total: 8 * GIB,
    };
    let mut s = stats(0, 0, MIB);
    s.memory.limit = None;
    let snap = Snapshot {
        at: Instant::now(),
        stats: s,
        quota: None,
        net: Err(NoNet::HostNetwork),
    };
    let row = compute(&host, "0123456789abcdef0123", "", None, &snap);
    assert!(row.memory.limit_is_host);
    let d = StatsDisplay::new(&row, "0123456789ab", true);
    assert_eq!(d.cpu_perc, "--");
    assert_eq!(d.id, "0123456789ab");
    assert_eq!(d.name, "--");
    assert_eq!(d.net_io, "0B / 0B");
    assert_eq!(d.mem_usage, "1MiB / 8GiB");
    assert_eq!(
        StatsDisplay::new(&row, "x", false).id,
        "0123456789abcdef0123"
    );
    assert!(serde_json::to_value(&row).unwrap()["net"].is_null());
}

/// A fake cgroupfs of the given shape with `/c1` in every hierarchy.
struct FakeHost {
    tmp: TempDir,
    layout: Layout,
}

impl FakeHost {
    fn hybrid() -> FakeHost {
        let tmp = TempDir::new().unwrap();
        let mut mountinfo = String::new();
        let mut own = String::new();
        for (i, c) in ["blkio", "cpu", "cpuacct", "cpuset", "memory", "pids"]
            .iter()
            .enumerate()
        {
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
        fs::write(unified.join("cgroup.controllers"), "hugetlb\n").unwrap();
        mountinfo.push_str(&format!(
            "50 31 0:50 / {} rw - cgroup2 cgroup2 rw\n",
            unified.display()
        ));
        own.push_str("0::/\n");
        let layout = Layout::from_files(&mountinfo, &own).unwrap();
        FakeHost { tmp, layout }
    }

    fn v2() -> FakeHost {
        let tmp = TempDir::new().unwrap();
        fs::create_dir_all(tmp.path().join("c1")).unwrap();
        fs::write(
            tmp.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let mountinfo = format!(
            "25 20 0:22 / {} rw - cgroup2 cgroup2 rw\n",
            tmp.path().display()
        );
        let layout = Layout::from_files(&mountinfo, "0::/\n").unwrap();
        FakeHost { tmp, layout }
    }

    fn write(&self, mount: &str, name: &str, text: &str) {
        fs::write(self.tmp.path().join(mount).join("c1").join(name), text).unwrap();
    }

    /// A fake /proc with pid 42's net/dev (no ns links: no host-network check).
    fn proc_root(&self) -> PathBuf {
        let root = self.tmp.path().join("proc");
        fs::create_dir_all(root.join("42/net")).unwrap();
        fs::write(
            root.join("42/net/dev"),
            "h\nh\n lo: 9 0 0 0 0 0 0 0 9 0 0 0 0 0 0 0\n eth0: 2048 0 0 0 0 0 0 0 1024 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        root
    }
}

#[test]
fn sampler_on_a_fake_hybrid_host() {
    let fake = FakeHost::hybrid();
    fake.write("cpuacct", "cpuacct.usage_percpu", "100000000 0\n");
    fake.write(
        "cpu",
        "cpu.stat",
        "nr_periods 10\nnr_throttled 2\nthrottled_time 5000\n",
    );
    fake.write("cpu", "cpu.cfs_quota_us", "150000\n");
    fake.write("cpu", "cpu.cfs_period_us", "100000\n");
    fake.write("cpuset", "cpuset.effective_cpus", "0-1\n");
    fake.write(
        "memory",
        "memory.usage_in_bytes",
        &format!("{}\n", 100 * MIB),
    );
    fake.write("memory", "memory.limit_in_bytes", "9223372036854771712\n");
    fake.write(
        "memory",
        "memory.stat",
        &format!(
            "cache 0\ntotal_cache {}\ntotal_rss {}\ntotal_shmem {}\ntotal_inactive_file {}\n",
            40 * MIB,
            60 * MIB,
            4 * MIB,
            30 * MIB
        ),
    );
    fake.write("pids", "pids.current", "7\n");
    fake.write(
        "blkio",
        "blkio.throttle.io_service_bytes_recursive",
        "8:0 Read 4096\n8:0 Write 8192\n8:0 Total 12288\nTotal 12288\n",
    );
    let target = Target::from_path(&fake.layout, "/c1", "c1", "one", Some(42)).unwrap();
    let mut sampler = Sampler::with_host(
        Host {
            cpus: 2,
            mem_total: 4 * GIB,
        },
        fake.proc_root(),
    );
    let first = sampler.sample(std::slice::from_ref(&target));
    let first = first[0].as_ref().unwrap();
    assert_eq!(first.cpu.percent, None);
    fake.write("cpuacct", "cpuacct.usage_percpu", "200000000 100000000\n");
    fake.write(
        "cpu",
        "cpu.stat",
        "nr_periods 20\nnr_throttled 5\nthrottled_time 9000\n",
    );
    let rows = sampler.sample(std::slice::from_ref(&target));
    let row = rows[0].as_ref().unwrap();
    assert!(row.cpu.percent.is_some_and(|p| p > 0.0), "{row:?}");
    assert_eq!(row.cpu.usage_ns, 300_000_000);
    assert_eq!(
        (row.cpu.limit_cpus, row.cpu.limit_source),
        (1.5, CpuLimitSource::Quota)
    );
    assert_eq!(row.cpu.throttled_periods_delta, Some(3));
    assert_eq!(row.cpu.throttled_time_delta_ns, Some(4000));
    let m = &row.memory;
    assert_eq!(m.working_set, 70 * MIB);
    assert_eq!((m.anon, m.file, m.shmem), (60 * MIB, 40 * MIB, 4 * MIB));
    assert_eq!((m.limit, m.limit_is_host), (4 * GIB, true));
    assert_eq!(
        row.net,
        Ok(NetIo {
            rx_bytes: 2048,
            tx_bytes: 1024
        })
    );
    assert_eq!(
        row.block_io,
        BlockIo {
            read_bytes: 4096,
            write_bytes: 8192
        }
    );
    assert_eq!(row.pids, 7);
}

#[test]
fn sampler_on_a_fake_v2_host_and_a_vanished_cgroup() {
    let fake = FakeHost::v2();
    fake.write(
        "",
        "cpu.stat",
        "usage_usec 1000\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
    );
    fake.write("", "cpu.max", "50000 100000\n");
    fake.write("", "memory.current", &format!("{}\n", 50 * MIB));
    fake.write("", "memory.max", &format!("{}\n", 100 * MIB));
    fake.write(
        "",
        "memory.stat",
        &format!(
            "anon {}\nfile {}\nshmem 0\ninactive_file {}\n",
            30 * MIB,
            20 * MIB,
            15 * MIB
        ),
    );
    fake.write("", "pids.current", "2\n");
    fake.write(
        "",
        "io.stat",
        "8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=1 wbytes=2\n",
    );
    let target = Target::from_path(&fake.layout, "/c1", "c1", "two", None).unwrap();
    let gone = Target::from_path(&fake.layout, "/nope", "nope", "gone", None).unwrap();
    let mut sampler = Sampler::with_host(
        Host {
            cpus: 2,
            mem_total: 4 * GIB,
        },
        "/nonexistent",
    );
    let rows = sampler.sample_pair(&[target, gone], Duration::from_millis(10));
    let row = rows[0].as_ref().unwrap();
    assert_eq!(row.cpu.percent, Some(0.0));
    assert_eq!(
        (row.cpu.limit_cpus, row.cpu.limit_source),
        (0.5, CpuLimitSource::Quota)
    );
    assert_eq!(row.memory.working_set, 35 * MIB);
    assert_eq!(
        (row.memory.limit, row.memory.limit_is_host),
        (100 * MIB, false)
    );
    assert_eq!(row.memory.percent, 35.0);
    assert_eq!(row.net, Err(NoNet::NoPid));
    assert_eq!(
        row.block_io,
        BlockIo {
            read_bytes: 101,
            write_bytes: 202
        }
    );
    assert_eq!(row.pids, 2);
    // A cgroup without files reads as zeros (berth-cgroups treats missing files as 0).
    let gone = rows[1].as_ref().unwrap();
    assert_eq!(gone.pids, 0);
}

#[test]
fn real_kernel_spinning_child() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut spinner = Spinner::start("stats", 32);
    let target = Target::new("spin", "spin", spinner.cgroup.clone(), Some(spinner.pid()));
    let mut sampler = Sampler::new().unwrap();
    let idle = sampler.sample(std::slice::from_ref(&target));
    let idle = idle[0].as_ref().unwrap().clone();
    spinner.go();
    let ticks_before = process_cpu_ns(spinner.pid());
    let started = Instant::now();
    let rows = sampler.sample_pair(std::slice::from_ref(&target), Duration::from_millis(500));
    let by_proc = (process_cpu_ns(spinner.pid()) - ticks_before) as f64
        / started.elapsed().as_nanos() as f64
        * 100.0;
    let row = rows[0].as_ref().unwrap();
    eprintln!("{}", serde_json::to_string(row).unwrap());
    let cpu = row.cpu.percent.unwrap();
    // The spinning shell gets a whole core on an idle 2-core box (> 50%); on a loaded one
    // (other builds) less, so the check is against what /proc says the process got.
    eprintln!("cgroup CPU% {cpu:.1}, the process's own /proc figure {by_proc:.1}%");
    assert!(cpu > 10.0 && cpu < 250.0, "CPU% {cpu}");
    assert!(
        (cpu - by_proc).abs() < 20.0,
        "cgroup {cpu} vs /proc {by_proc}"
    );
    if nix::unistd::sysconf(nix::unistd::SysconfVar::_NPROCESSORS_ONLN)
        .ok()
        .flatten()
        .is_some_and(|n| load_average() < n as f64 - 0.5)
    {
        assert!(cpu > 50.0, "CPU% {cpu} on an unloaded host");
    }
    assert!(row.cpu.percent_of_limit.unwrap() > 0.0);
    assert!(
        row.memory.working_set >= idle.memory.working_set + 30 * MIB,
        "working set {} then {}",
        idle.memory.working_set,
        row.memory.working_set
    );
    assert!(row.memory.shmem >= 30 * MIB, "shmem {}", row.memory.shmem);
    assert!(row.memory.percent > 0.0);
    assert_eq!(row.pids, 1);
    // The shell shares this process's network namespace: docker shows 0B for host networking.
    assert_eq!(row.net, Err(NoNet::HostNetwork));
    assert!(idle.cpu.percent.is_none());
    let display = StatsDisplay::new(row, "spin", true);
    assert!(display.cpu_perc.ends_with('%') && display.mem_usage.contains("MiB / "));
}

/// utime + stime of `pid`, ns.
fn process_cpu_ns(pid: i32) -> u64 {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let stat = crate::observe::top::parse_stat(&text).unwrap();
    let hz = crate::observe::top::TopOptions::new(Duration::ZERO)
        .unwrap()
        .clock_ticks;
    (stat.utime + stat.stime) * (1_000_000_000 / hz)
}

/// The 1-minute load average.
fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
