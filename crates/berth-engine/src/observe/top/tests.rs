use super::*;
use crate::observe::testutil::{skip_reason, Spinner};
use std::cell::Cell;
use tempfile::TempDir;
use time::macros::datetime;

fn stat_line(
    pid: i32,
    comm: &str,
    ppid: i32,
    tty: u32,
    utime: u64,
    stime: u64,
    start: u64,
) -> String {
    format!(
        "{pid} ({comm}) S {ppid} {pid} {pid} {tty} -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1 0 {start} 2000000 300 18446744073709551615\n"
    )
}

#[test]
fn stat_with_a_hard_comm() {
    let s = parse_stat(&stat_line(7, "a b) (c", 1, 34816, 12, 3, 500)).unwrap();
    assert_eq!(
        s,
        Stat {
            pid: 7,
            comm: "a b) (c".to_string(),
            ppid: 1,
            tty_nr: 34816,
            utime: 12,
            stime: 3,
            starttime: 500,
        }
    );
    assert_eq!(parse_stat("7 (x) S 1"), None);
}

#[test]
fn small_formatters() {
    assert_eq!(tty_name(0), "?");
    assert_eq!(tty_name(34816), "pts/0"); // 136:0
    assert_eq!(tty_name((136 << 8) | 5), "pts/5");
    assert_eq!(tty_name(1024 + 1), "tty1");
    assert_eq!(tty_name(1024 + 65), "ttyS1");
    assert_eq!(cpu_time(0), "00:00:00");
    assert_eq!(cpu_time(3 * 3600 + 25 * 60 + 7), "03:25:07");
    assert_eq!(cpu_time(2 * 86_400 + 61), "2-00:01:01");
    let now = datetime!(2026-11-29 13:01:06 UTC);
    assert_eq!(
        stime(datetime!(2026-11-29 09:05:00 UTC), now, UtcOffset::UTC),
        "09:05"
    );
    assert_eq!(
        stime(datetime!(2026-06-03 09:05:00 UTC), now, UtcOffset::UTC),
        "Jun03"
    );
    assert_eq!(
        stime(datetime!(2025-12-31 23:00:00 UTC), now, UtcOffset::UTC),
        "2025"
    );
    let plus2 = UtcOffset::from_hms(2, 0, 0).unwrap();
    assert_eq!(
        stime(datetime!(2026-11-29 09:05:00 UTC), now, plus2),
        "11:05"
    );
    assert_eq!(join_cmdline(b"sleep\x00100\x00"), "sleep 100");
    assert_eq!(join_cmdline(b""), "");
    assert_eq!(
        parse_status_uid("Name:\tx\nUid:\t1000\t33\t33\t33\n"),
        Some(33)
    );
    let users = Users::parse("root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/:/bin/false\nbad\ntoor:x:0:0::/:/bin/sh\n");
    assert_eq!(users.name(0), "root");
    assert_eq!(users.name(33), "www-data");
    assert_eq!(users.name(1234), "1234");
}

#[test]
fn processes_from_a_fake_proc() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("proc");
    let write = |path: &str, text: &[u8]| {
        let path = root.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    };
    // Booted at 1_800_000_000, up 1000 s; clock ticks 100 Hz.
    write("stat", b"cpu  1 2 3\nbtime 1800000000\n");
    write("uptime", b"1000.00 1800.00\n");
    write(
        "100/stat",
        stat_line(100, "sh", 1, 34816, 3000, 1000, 50_000).as_bytes(),
    );
    write("100/status", b"Name:\tsh\nUid:\t0\t0\t0\t0\n");
    write("100/statm", b"1000 250 100 1 0 50 0\n");
    write("100/cmdline", b"sh\0-c\0while :; do :; done\0");
    write(
        "200/stat",
        stat_line(200, "kworker", 100, 0, 0, 0, 90_000).as_bytes(),
    );
    write(
        "200/status",
        b"Name:\tkworker\nUid:\t4242\t4242\t4242\t4242\n",
    );
    write("200/statm", b"0 0 0 0 0 0 0\n");
    write("200/cmdline", b"");
    let passwd = tmp.path().join("passwd");
    fs::write(&passwd, "root:x:0:0:root:/root:/bin/bash\n").unwrap();
    let options = TopOptions {
        interval: Duration::from_millis(200),
        proc_root: root.clone(),
        passwd,
        utc_offset: UtcOffset::UTC,
        clock_ticks: 100,
        page_size: 4096,
    };
    let calls = Cell::new(0);
    let rows = top_of(
        || {
            calls.set(calls.get() + 1);
            if calls.get() == 2 {
                // 0.5 s more CPU time for pid 100 during the interval; 300 (listed only now)
                // vanished before it could be read.
                write(
                    "100/stat",
                    stat_line(100, "sh", 1, 34816, 3040, 1010, 50_000).as_bytes(),
                );
            }
            Ok(vec![100, 200, 300])
        },
        &options,
    )
    .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let sh = &rows[0];
    assert_eq!(
        (sh.pid, sh.ppid, sh.uid, sh.user.as_str()),
        (100, 1, 0, "root")
    );
    assert!(
        sh.cpu_percent > 100.0 && sh.cpu_percent <= 250.0,
        "{}",
        sh.cpu_percent
    );
    assert_eq!(sh.rss_bytes, 250 * 4096);
    assert_eq!(sh.tty, "pts/0");
    // 40.5 s of CPU over the 500 s since it started (at 500 s after boot).
    assert_eq!(sh.c, 8);
    assert_eq!(sh.time, "00:00:40");
    assert_eq!(sh.cpu_time_ns, 40_500_000_000);
    assert_eq!(sh.start_time, datetime!(2027-01-15 08:08:20 UTC));
    assert_eq!(sh.cmd, "sh -c while :; do :; done");
    let columns = sh.columns();
    assert_eq!(columns[0], "root");
    assert_eq!(columns[8], "1000");
    assert_eq!(columns[9], "sh -c while :; do :; done");
    let kw = &rows[1];
    assert_eq!(
        (kw.user.as_str(), kw.cmd.as_str(), kw.tty.as_str()),
        ("4242", "[kworker]", "?")
    );
    assert_eq!(kw.cpu_percent, 0.0);
    assert_eq!(TOP_COLUMNS.len(), columns.len());
}

#[test]
fn real_kernel_top_of_a_spinning_child() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipped: {reason}");
        return;
    }
    let mut spinner = Spinner::start("top", 1);
    spinner.go();
    let options = TopOptions::new(Duration::from_millis(500)).unwrap();
    let mut reader = berth_cgroups::StatsReader::open(&spinner.cgroup).unwrap();
    let (usage_before, started) = (reader.read().unwrap().cpu.usage_total_ns, Instant::now());
    let rows = top(&spinner.cgroup, &options).unwrap();
    let by_cgroup = (reader.read().unwrap().cpu.usage_total_ns - usage_before) as f64
        / started.elapsed().as_nanos() as f64
        * 100.0;
    for row in &rows {
        eprintln!("{:?}", row.columns());
    }
    let sh = rows
        .iter()
        .find(|r| r.pid == spinner.pid())
        .unwrap_or_else(|| panic!("pid {} not listed: {rows:?}", spinner.pid()));
    // > 50% on an idle 2-core box; on a loaded one, close to what the cgroup counted.
    eprintln!("%CPU {:.1}, cgroup {by_cgroup:.1}%", sh.cpu_percent);
    assert!(sh.cpu_percent > 10.0, "%CPU {}", sh.cpu_percent);
    assert!(
        (sh.cpu_percent - by_cgroup).abs() < 20.0,
        "%CPU {} vs cgroup {by_cgroup}",
        sh.cpu_percent
    );
    assert_eq!(sh.user, "root");
    assert_eq!(sh.ppid, i32::try_from(std::process::id()).unwrap());
    assert!(sh.cmd.starts_with("sh -c read go;"), "{}", sh.cmd);
    assert!(sh.rss_bytes > 0);
    assert_eq!(rows.len(), 1);
}
