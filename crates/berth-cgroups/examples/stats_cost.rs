//! What one container's stats cost in-process, on the real host (as root): creates a cgroup,
//! puts a `sleep` in it, then times N one-off reads (`Cgroup::stats`: open, read, close every
//! file) and N re-reads through one `StatsReader` (pread of files kept open).
//!
//! ```text
//! cargo run --release -p berth-cgroups --example stats_cost -- [N]
//! ```
//! Prints one JSON line on stdout (times in µs) and a summary on stderr. The cgroup and the
//! process are removed on exit, also on failure.

use std::error::Error;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use berth_cgroups::{Cgroup, Layout, StatsReader};

/// Kills the child and removes the cgroup, whatever happens.
struct Guard {
    cgroup: Cgroup,
    child: Option<Child>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Err(err) = self.cgroup.destroy() {
            eprintln!("stats_cost: cleanup: {err}");
        }
    }
}

/// Mean and median of the samples, in µs.
fn summary(samples: &mut [Duration]) -> (f64, f64) {
    samples.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len().max(1) as f64;
    let median = samples.get(samples.len() / 2).map_or(0.0, |d| us(*d));
    (mean, median)
}

fn time<T>(
    n: usize,
    mut f: impl FnMut() -> Result<T, Box<dyn Error>>,
) -> Result<(f64, f64), Box<dyn Error>> {
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        std::hint::black_box(f()?);
        samples.push(start.elapsed());
    }
    Ok(summary(&mut samples))
}

fn main() -> Result<(), Box<dyn Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 1000,
    };
    let layout = Layout::detect()?;
    let path = format!("/berth-stats-cost-{}", std::process::id());
    let mut guard = Guard {
        cgroup: Cgroup::create(&layout, &path, "stats-cost")?,
        child: None,
    };
    let child = Command::new("sleep").arg("1000").spawn()?;
    let pid = i32::try_from(child.id())?;
    guard.child = Some(child);
    guard.cgroup.add_pid(pid)?;
    let cgroup = &guard.cgroup;

    let stats = cgroup.stats()?;
    let (open_mean, open_median) = time(n, || Ok(StatsReader::open(cgroup)?))?;
    let (oneshot_mean, oneshot_median) = time(n, || Ok(cgroup.stats()?))?;
    let mut reader = StatsReader::open(cgroup)?;
    let (reread_mean, reread_median) = time(n, || Ok(reader.read()?))?;

    eprintln!(
        "stats_cost: {:?} mode, {n} reads each, pids.current {}\n  \
         one-off Cgroup::stats: mean {oneshot_mean:.1} µs, median {oneshot_median:.1} µs\n  \
         StatsReader::open:     mean {open_mean:.1} µs, median {open_median:.1} µs\n  \
         StatsReader::read:     mean {reread_mean:.1} µs, median {reread_median:.1} µs",
        layout.mode(),
        stats.pids.current,
    );
    println!(
        "{{\"mode\":\"{:?}\",\"reads\":{n},\"oneshot_mean_us\":{oneshot_mean:.2},\"oneshot_median_us\":{oneshot_median:.2},\"open_mean_us\":{open_mean:.2},\"open_median_us\":{open_median:.2},\"reread_mean_us\":{reread_mean:.2},\"reread_median_us\":{reread_median:.2}}}",
        layout.mode()
    );
    Ok(())
}
