//! Figures from /proc for a container without a cgroup (rootless on a host that cannot
//! delegate cgroups): its processes are those of its pid namespace; CPU is their utime + stime
//! (and that of their reaped children), memory their RSS.

use std::path::Path;

use berth_cgroups::Stats;

/// The pids (in `proc_root`'s namespace) of every process in `pid`'s pid namespace.
pub fn pid_namespace_pids(proc_root: &Path, pid: i32) -> Vec<i32> {
    let Ok(ns) = std::fs::read_link(proc_root.join(pid.to_string()).join("ns/pid")) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return Vec::new();
    };
    let mut pids: Vec<i32> = entries
        .flatten()
        .filter_map(|e| {
            let p: i32 = e.file_name().to_str()?.parse().ok()?;
            (std::fs::read_link(e.path().join("ns/pid")).ok()? == ns).then_some(p)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// utime + stime + cutime + cstime of a `/proc/<pid>/stat` line, in clock ticks.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command (which may hold spaces and parentheses) start at `state`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // state is field 3 of the man page; utime..cstime are fields 14..17.
    (11..15).map(|i| f.get(i)?.parse::<u64>().ok()).sum()
}

/// `VmRSS` and `Threads` of a `/proc/<pid>/status`, in bytes and tasks.
pub fn parse_rss_threads(status: &str) -> (u64, u64) {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:") * 1024, field("Threads:"))
}

/// The figures of `pid`'s pid namespace, in cgroup [`Stats`] form (CPU, memory, pids).
pub fn stats(proc_root: &Path, pid: i32) -> Stats {
    let tick_ns = 1_000_000_000 / clock_ticks();
    let mut s = Stats::default();
    for p in pid_namespace_pids(proc_root, pid) {
        let dir = proc_root.join(p.to_string());
        let stat = std::fs::read_to_string(dir.join("stat")).unwrap_or_default();
        let status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        let (rss, threads) = parse_rss_threads(&status);
        s.cpu.usage_total_ns += parse_cpu_ticks(&stat).unwrap_or(0) * tick_ns;
        s.memory.usage += rss;
        s.memory.rss += rss;
        s.memory.working_set += rss;
        s.pids.current += threads;
    }
    s
}

fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .and_then(|t| u64::try_from(t).ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_sum_user_system_and_children() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 5 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(13));
    }

    #[test]
    fn rss_and_threads_from_status() {
        let status = "Name:\tsleep\nVmRSS:\t    1024 kB\nThreads:\t3\n";
        assert_eq!(parse_rss_threads(status), (1024 * 1024, 3));
    }
}
