//! `events`: stats (once with `--stats`, else every `--interval`) and OOM notifications, as
//! runc's JSON lines.

use std::time::Duration;

use serde_json::json;

use super::Error;
use crate::state::{Status, Store};

/// Parse a Go duration like `5s`, `500ms`, `1m`.
pub fn parse_interval(text: &str) -> Result<Duration, Error> {
    let bad = || Error::Invalid(format!("invalid interval {text:?}"));
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .ok_or_else(bad)?;
    let (num, unit) = text.split_at(split);
    let num: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "ns" => num / 1e9,
        "us" | "µs" => num / 1e6,
        "ms" => num / 1e3,
        "s" => num,
        "m" => num * 60.0,
        "h" => num * 3600.0,
        _ => return Err(bad()),
    };
    if secs <= 0.0 {
        return Err(Error::Invalid(
            "duration interval must be greater than 0".into(),
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The runc `stats` event data for a berth-cgroups snapshot.
fn runc_stats(s: &berth_cgroups::Stats) -> serde_json::Value {
    json!({
        "cpu": {
            "usage": {"total": s.cpu.usage_total_ns, "percpu": s.cpu.per_cpu_ns, "kernel": s.cpu.usage_system_ns, "user": s.cpu.usage_user_ns},
            "throttling": {"periods": s.cpu.periods, "throttledPeriods": s.cpu.throttled_periods, "throttledTime": s.cpu.throttled_time_ns}
        },
        "memory": {
            "cache": s.memory.cache,
            "usage": {"limit": s.memory.limit.unwrap_or(u64::MAX), "usage": s.memory.usage, "max": s.memory.max_usage, "failcnt": s.memory.failcnt},
            "swap": {"limit": s.memory.swap_limit.unwrap_or(u64::MAX), "usage": s.memory.swap_usage},
            "raw": s.memory.stat
        },
        "pids": {"current": s.pids.current, "limit": s.pids.limit.unwrap_or(0)},
        "blkio": {},
        "hugetlb": {}
    })
}

/// Print events for `id`.
pub fn run(store: &Store, id: &str, interval: &str, once: bool) -> Result<i32, Error> {
    let interval = parse_interval(interval)?;
    let saved = {
        let container = store.load(id)?;
        if container.status() == Status::Stopped {
            return Err(Error::Invalid(
                "container with id does not exist or is stopped".into(),
            ));
        }
        container.saved.clone()
    };
    let cgroup = crate::cgroup::open(&saved)?;
    let mut ooms = crate::cgroup::oom_kills(&cgroup);
    loop {
        let stats = cgroup.stats()?;
        println!(
            "{}",
            json!({"type": "stats", "id": id, "data": runc_stats(&stats)})
        );
        if once {
            return Ok(0);
        }
        let step = Duration::from_millis(100).min(interval);
        let mut waited = Duration::ZERO;
        while waited < interval {
            std::thread::sleep(step);
            waited += step;
            let now = crate::cgroup::oom_kills(&cgroup);
            if now > ooms {
                println!("{}", json!({"type": "oom", "id": id}));
                ooms = now;
            }
            if !cgroup.exists() {
                return Ok(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_like_go() {
        assert_eq!(parse_interval("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_interval("250ms").unwrap(), Duration::from_millis(250));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("five").is_err());
    }
}
