//! runc's `events` JSON (`types.Event`, `types.Stats` of runc's `types/events.go`), filled from
//! a berth-cgroups snapshot. Field names, nesting and `omitempty` follow runc, so a line parses
//! the same with runc's Go types. runc ≥ 1.2's `psi` objects appear where runc reads them: for
//! controllers on cgroup2 (berth-cgroups also reads the cgroup2 PSI files of hybrid hosts, but
//! runc's JSON there has none).

use std::collections::BTreeMap;

use berth_cgroups::{Counter, CpusetFlags, DeviceIo, IoCounts, Pressure, PsiData, Stats};
use serde::{Serialize, Serializer};

/// One line of `events` output.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<RuncStats>,
}

/// What the runc JSON needs besides the snapshot: which semantics each controller has (a
/// hybrid host mixes them) and v1's cpuset flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context {
    pub cpu_v2: bool,
    pub memory_v2: bool,
    pub io_v2: bool,
    pub cpuset_flags: Option<CpusetFlags>,
}

#[derive(Debug, Serialize)]
pub struct RuncStats {
    cpu: Cpu,
    cpuset: CpuSet,
    memory: Memory,
    pids: Pids,
    blkio: Blkio,
    hugetlb: BTreeMap<String, Hugetlb>,
    intel_rdt: IntelRdt,
    /// runc fills this only for interfaces it configured itself; never here.
    network_interfaces: Option<()>,
}

#[derive(Debug, Serialize)]
struct Cpu {
    usage: CpuUsage,
    throttling: Throttling,
    #[serde(skip_serializing_if = "Option::is_none")]
    psi: Option<Psi>,
}

#[derive(Debug, Serialize)]
struct CpuUsage {
    #[serde(skip_serializing_if = "is_zero")]
    total: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_kernel: Vec<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    percpu_user: Vec<u64>,
    kernel: u64,
    user: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Throttling {
    #[serde(skip_serializing_if = "is_zero")]
    periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    throttled_periods: u64,
    #[serde(skip_serializing_if = "is_zero")]
    throttled_time: u64,
}

#[derive(Debug, Serialize)]
struct CpuSet {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cpus: Vec<u16>,
    cpu_exclusive: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mems: Vec<u16>,
    mem_hardwall: u64,
    mem_exclusive: u64,
    memory_migrate: u64,
    memory_spread_page: u64,
    memory_spread_slab: u64,
    memory_pressure: u64,
    sched_load_balance: u64,
    sched_relax_domain_level: i64,
}

#[derive(Debug, Serialize)]
struct MemoryEntry {
    limit: u64,
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

#[derive(Debug, Serialize)]
struct Memory {
    #[serde(skip_serializing_if = "is_zero")]
    cache: u64,
    usage: MemoryEntry,
    swap: MemoryEntry,
    kernel: MemoryEntry,
    #[serde(rename = "kernelTCP")]
    kernel_tcp: MemoryEntry,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    raw: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    psi: Option<Psi>,
}

#[derive(Debug, Serialize)]
struct Pids {
    #[serde(skip_serializing_if = "is_zero")]
    current: u64,
    #[serde(skip_serializing_if = "is_zero")]
    limit: u64,
}

#[derive(Debug, Serialize)]
struct BlkioEntry {
    #[serde(skip_serializing_if = "is_zero")]
    major: u64,
    #[serde(skip_serializing_if = "is_zero")]
    minor: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    op: &'static str,
    #[serde(skip_serializing_if = "is_zero")]
    value: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Blkio {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_service_bytes_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    io_serviced_recursive: Vec<BlkioEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    psi: Option<Psi>,
}

#[derive(Debug, Serialize)]
struct Hugetlb {
    #[serde(skip_serializing_if = "is_zero")]
    usage: u64,
    #[serde(skip_serializing_if = "is_zero")]
    max: u64,
    failcnt: u64,
}

/// Berth does not manage Intel RDT: runc's object with every (omitempty) field absent.
#[derive(Debug, Serialize)]
struct IntelRdt {}

#[derive(Debug, Serialize)]
struct Psi {
    some: PsiLine,
    full: PsiLine,
}

#[derive(Debug, Serialize)]
struct PsiLine {
    #[serde(serialize_with = "go_float")]
    avg10: f64,
    #[serde(serialize_with = "go_float")]
    avg60: f64,
    #[serde(serialize_with = "go_float")]
    avg300: f64,
    total: u64,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Go writes a whole float64 without a fraction (`0`, not `0.0`).
#[allow(clippy::trivially_copy_pass_by_ref)] // serde's serialize_with passes a reference
fn go_float<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        #[allow(clippy::cast_possible_truncation)] // whole and well inside i64
        return serializer.serialize_i64(*value as i64);
    }
    serializer.serialize_f64(*value)
}

/// The `data` of a `stats` event.
pub fn stats(s: &Stats, cx: &Context) -> RuncStats {
    RuncStats {
        cpu: Cpu {
            usage: CpuUsage {
                total: s.cpu.usage_total_ns,
                percpu: s.cpu.per_cpu_ns.clone(),
                percpu_kernel: s.cpu.per_cpu_system_ns.clone(),
                percpu_user: s.cpu.per_cpu_user_ns.clone(),
                kernel: s.cpu.usage_system_ns,
                user: s.cpu.usage_user_ns,
            },
            throttling: Throttling {
                periods: s.cpu.periods,
                throttled_periods: s.cpu.throttled_periods,
                throttled_time: s.cpu.throttled_time_ns,
            },
            psi: s.pressure.cpu.filter(|_| cx.cpu_v2).map(psi),
        },
        cpuset: cpuset(s, cx),
        memory: memory(s, cx),
        pids: Pids {
            current: s.pids.current,
            limit: s.pids.limit.unwrap_or(0),
        },
        blkio: Blkio {
            io_service_bytes_recursive: blkio(&s.io, |d| &d.bytes, cx.io_v2),
            io_serviced_recursive: blkio(&s.io, |d| &d.ios, cx.io_v2),
            psi: s.pressure.io.filter(|_| cx.io_v2).map(psi),
        },
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| {
                let entry = Hugetlb {
                    usage: h.usage,
                    max: h.max_usage,
                    failcnt: h.failcnt,
                };
                (size.clone(), entry)
            })
            .collect(),
        intel_rdt: IntelRdt {},
        network_interfaces: None,
    }
}

/// cgroup2 has no cpuset flags: runc shows them as 0 there.
fn cpuset(s: &Stats, cx: &Context) -> CpuSet {
    let f = cx.cpuset_flags.unwrap_or_default();
    CpuSet {
        cpus: s.cpuset.cpus.clone(),
        cpu_exclusive: f.cpu_exclusive,
        mems: s.cpuset.mems.clone(),
        mem_hardwall: f.mem_hardwall,
        mem_exclusive: f.mem_exclusive,
        memory_migrate: f.memory_migrate,
        memory_spread_page: f.memory_spread_page,
        memory_spread_slab: f.memory_spread_slab,
        memory_pressure: f.memory_pressure,
        sched_load_balance: f.sched_load_balance,
        sched_relax_domain_level: f.sched_relax_domain_level,
    }
}

/// runc prints the kernel's own "unlimited": v1's page counter maximum, v2's `max` read as
/// the largest u64. It has no kernel memory limits on v2 (0), and a counter whose files are
/// missing is all zeros.
fn memory(s: &Stats, cx: &Context) -> Memory {
    let m = &s.memory;
    let unlimited = if cx.memory_v2 {
        u64::MAX
    } else {
        berth_cgroups::V1_UNLIMITED
    };
    let kernel_unlimited = if cx.memory_v2 { 0 } else { unlimited };
    let usage = Counter {
        usage: m.usage,
        limit: m.limit,
        max_usage: m.max_usage,
        failcnt: m.failcnt,
    };
    Memory {
        cache: m.cache,
        usage: entry(Some(&usage), unlimited),
        swap: entry(m.memsw.as_ref(), unlimited),
        kernel: entry(m.kernel.as_ref(), kernel_unlimited),
        kernel_tcp: entry(m.kernel_tcp.as_ref(), kernel_unlimited),
        raw: m.stat.clone(),
        psi: s.pressure.memory.filter(|_| cx.memory_v2).map(psi),
    }
}

fn entry(counter: Option<&Counter>, unlimited: u64) -> MemoryEntry {
    let Some(c) = counter else {
        return MemoryEntry {
            limit: 0,
            usage: 0,
            max: 0,
            failcnt: 0,
        };
    };
    MemoryEntry {
        limit: c.limit.unwrap_or(unlimited),
        usage: c.usage,
        max: c.max_usage,
        failcnt: c.failcnt,
    }
}

/// v1: each device's Read, Write, Sync, Async, Discard and Total, as the kernel lists them;
/// v2: Read and Write only (runc maps no other io.stat key).
fn blkio(devices: &[DeviceIo], counts: fn(&DeviceIo) -> &IoCounts, io_v2: bool) -> Vec<BlkioEntry> {
    let mut out = Vec::new();
    for d in devices {
        let c = counts(d);
        let entry = |op, value| BlkioEntry {
            major: d.major,
            minor: d.minor,
            op,
            value,
        };
        match (c.sync, c.async_) {
            (Some(sync), Some(asynchronous)) => out.extend([
                entry("Read", c.read),
                entry("Write", c.write),
                entry("Sync", sync),
                entry("Async", asynchronous),
                entry("Discard", c.discard),
                entry("Total", c.read + c.write + c.discard),
            ]),
            _ if io_v2 => out.extend([entry("Read", c.read), entry("Write", c.write)]),
            // A v1 device missing from this table.
            _ => {}
        }
    }
    out
}

fn psi(p: Pressure) -> Psi {
    let line = |d: PsiData| PsiLine {
        avg10: d.avg10,
        avg60: d.avg60,
        avg300: d.avg300,
        total: d.total,
    };
    Psi {
        some: line(p.some),
        full: line(p.full),
    }
}

#[cfg(test)]
mod tests {
    use berth_cgroups::{HugetlbStats, MemoryStats, PressureStats};
    use serde_json::{json, Value};

    use super::*;

    fn to_json(s: &Stats, cx: &Context) -> Value {
        serde_json::to_value(stats(s, cx)).unwrap()
    }

    fn device(sync: Option<u64>) -> DeviceIo {
        let counts = IoCounts {
            read: 4096,
            write: 0,
            discard: 512,
            sync,
            async_: sync.map(|_| 0),
        };
        DeviceIo {
            major: 8,
            minor: 0,
            bytes: counts,
            ios: counts,
        }
    }

    fn pressure() -> PressureStats {
        let data = PsiData {
            avg10: 1.5,
            avg60: 0.0,
            avg300: 0.0,
            total: 7,
        };
        let p = Pressure {
            some: data,
            full: data,
        };
        PressureStats {
            cpu: Some(p),
            memory: Some(p),
            io: Some(p),
        }
    }

    #[test]
    fn oom_event_is_type_and_id_only() {
        let event = Event {
            kind: "oom",
            id: "c1",
            data: None,
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"type":"oom","id":"c1"}"#
        );
    }

    #[test]
    fn v1_shape_unlimited_and_omitempty() {
        let mut s = Stats {
            memory: MemoryStats {
                usage: 100,
                limit: None,
                kernel: Some(Counter::default()),
                ..MemoryStats::default()
            },
            io: vec![device(Some(4096))],
            pressure: pressure(),
            ..Stats::default()
        };
        s.hugetlb.insert(
            "2MB".into(),
            HugetlbStats {
                usage: 0,
                max_usage: 0,
                failcnt: 0,
            },
        );
        let j = to_json(&s, &Context::default());
        assert_eq!(
            j["memory"]["usage"],
            json!({"limit": 9_223_372_036_854_771_712_u64, "usage": 100, "failcnt": 0})
        );
        // No swap accounting: runc's empty entry. A kernel counter with nothing in it.
        assert_eq!(j["memory"]["swap"], json!({"limit": 0, "failcnt": 0}));
        assert_eq!(
            j["memory"]["kernel"],
            json!({"limit": 9_223_372_036_854_771_712_u64, "failcnt": 0})
        );
        assert_eq!(
            j["cpu"],
            json!({"usage": {"kernel": 0, "user": 0}, "throttling": {}})
        );
        assert_eq!(j["pids"], json!({}));
        let ops: Vec<(&str, u64)> = j["blkio"]["ioServiceBytesRecursive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["op"].as_str().unwrap(), e["value"].as_u64().unwrap_or(0)))
            .collect();
        assert_eq!(
            ops,
            [
                ("Read", 4096),
                ("Write", 0),
                ("Sync", 4096),
                ("Async", 0),
                ("Discard", 512),
                ("Total", 4608)
            ]
        );
        assert_eq!(
            j["blkio"]["ioServiceBytesRecursive"][1],
            json!({"major": 8, "op": "Write"})
        );
        // Hybrid: PSI exists in the cgroup2 directory, but runc shows none for v1 controllers.
        assert!(j["cpu"].get("psi").is_none() && j["blkio"].get("psi").is_none());
        assert_eq!(j["hugetlb"], json!({"2MB": {"failcnt": 0}}));
        assert_eq!(j["cpuset"]["sched_load_balance"], 0);
        assert_eq!(j["intel_rdt"], json!({}));
        assert_eq!(j["network_interfaces"], Value::Null);
    }

    #[test]
    fn v2_shape_max_limits_read_write_only_and_psi() {
        let s = Stats {
            memory: MemoryStats {
                limit: None,
                kernel: Some(Counter {
                    usage: 5,
                    ..Counter::default()
                }),
                ..MemoryStats::default()
            },
            io: vec![device(None)],
            pressure: pressure(),
            ..Stats::default()
        };
        let cx = Context {
            cpu_v2: true,
            memory_v2: true,
            io_v2: true,
            cpuset_flags: None,
        };
        let j = to_json(&s, &cx);
        assert_eq!(j["memory"]["usage"]["limit"], json!(u64::MAX));
        assert_eq!(
            j["memory"]["kernel"],
            json!({"limit": 0, "usage": 5, "failcnt": 0})
        );
        let ops: Vec<&str> = j["blkio"]["ioServicedRecursive"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["op"].as_str().unwrap())
            .collect();
        assert_eq!(ops, ["Read", "Write"]);
        let line = json!({"avg10": 1.5, "avg60": 0, "avg300": 0, "total": 7});
        assert_eq!(j["cpu"]["psi"], json!({"some": line, "full": line}));
        assert_eq!(j["memory"]["psi"]["some"], line);
        assert_eq!(j["blkio"]["psi"]["full"], line);
        // Go prints a whole float64 without a fraction.
        let text = serde_json::to_string(&stats(&s, &cx)).unwrap();
        assert!(text.contains(r#""avg60":0,"#), "{text}");
    }
}
