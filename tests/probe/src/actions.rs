//! Things the probe does to provoke the runtime's limits and signal handling.
//! Each prints its outcome on stdout; an errno outcome is exit status 1.

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use crate::errno;
use crate::sys;
use crate::{say, Outcome};

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// Sleeps for `secs`, or forever when None.
pub fn hold(secs: Option<Duration>) {
    match secs {
        Some(d) => std::thread::sleep(d),
        None => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
    }
}

/// Allocates `mib` MiB in 1 MiB chunks and writes every page, so the memory is
/// really charged to the cgroup. An allocation refused (RLIMIT_AS) is reported.
pub fn alloc(mib: usize, hold_for: Option<Option<Duration>>) -> Outcome {
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for done in 0..mib {
        let mut chunk = Vec::new();
        if chunk.try_reserve_exact(MIB).is_err() {
            return Outcome::failed(format!("allocated {done}\nalloc failed: ENOMEM"));
        }
        chunk.resize(MIB, 0);
        for i in (0..MIB).step_by(PAGE) {
            chunk[i] = 1;
        }
        chunks.push(black_box(chunk));
    }
    let text = format!("allocated {mib}");
    let Some(secs) = hold_for else {
        return Outcome::ok(text);
    };
    say(&text);
    hold(secs);
    drop(black_box(chunks));
    Outcome::ok(String::new())
}

/// Forks `n` children that block on a pipe; they exit as soon as the parent
/// closes its end (when it is done, or dies). The first fork failure stops it.
pub fn fork(n: usize, hold_for: Option<Option<Duration>>) -> Outcome {
    let (read_end, write_end) = match sys::pipe() {
        Ok(p) => p,
        Err(e) => return Outcome::failed(format!("pipe failed: {}", errno::of(&e))),
    };
    let mut children = Vec::with_capacity(n);
    let mut failure = None;
    for _ in 0..n {
        match sys::fork_waiter(&read_end, &write_end) {
            Ok(pid) => children.push(pid),
            Err(e) => {
                failure = Some(errno::of(&e));
                break;
            }
        }
    }
    // Print before holding, then release the children and reap them.
    say(&format!("forked {}", children.len()));
    let outcome = match &failure {
        Some(name) => Outcome::failed(format!("fork failed: {name}")),
        None => Outcome::ok(String::new()),
    };
    if let (None, Some(secs)) = (&failure, hold_for) {
        hold(secs);
    }
    drop(write_end);
    for pid in children {
        // A child we cannot reap has gone already; nothing to report.
        let _ = sys::wait(pid);
    }
    outcome
}

/// How `write` writes.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteMode {
    /// O_DIRECT with a 4096-aligned buffer.
    pub direct: bool,
    /// Skip the final fsync: buffered data stays dirty in the page cache.
    pub no_sync: bool,
    /// Add a line `seconds S`: the time from the first write to the end (of fsync).
    pub timed: bool,
}

/// Writes `mib` MiB of 0xab to `path`, then fsyncs (ENOSPC/EDQUOT can show up
/// only then) unless `no_sync`.
pub fn write(path: &str, mib: usize, mode: WriteMode) -> Outcome {
    let WriteMode {
        direct,
        no_sync,
        timed,
    } = mode;
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true).mode(0o644);
    if direct {
        options.custom_flags(libc::O_DIRECT);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) => return Outcome::failed(format!("wrote 0\nopen failed: {}", errno::of(&e))),
    };
    // Over-allocate by a page and start at the first aligned byte: no unsafe needed.
    let backing = vec![0xabu8; MIB + PAGE];
    let start = backing.as_ptr().align_offset(PAGE).min(PAGE);
    let buf = &backing[start..start + MIB];
    let mut written: u64 = 0;
    let began = Instant::now();
    for _ in 0..mib {
        let mut rest = buf;
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(0) => return Outcome::failed(format!("wrote {written}\nwrite failed: ENOSPC")),
                Ok(n) => {
                    written += n as u64;
                    rest = &rest[n..];
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Outcome::failed(format!(
                        "wrote {written}\nwrite failed: {}",
                        errno::of(&e)
                    ))
                }
            }
        }
    }
    if !no_sync {
        if let Err(e) = file.sync_all() {
            return Outcome::failed(format!("wrote {written}\nfsync failed: {}", errno::of(&e)));
        }
    }
    if timed {
        return Outcome::ok(format!(
            "wrote {written}\nseconds {:.6}",
            began.elapsed().as_secs_f64()
        ));
    }
    Outcome::ok(format!("wrote {written}"))
}

/// Spins on the CPU for `secs` of wall time, or forever.
pub fn busy(secs: Option<Duration>) -> Outcome {
    let start = Instant::now();
    let mut counter: u64 = 0;
    loop {
        for _ in 0..100_000 {
            counter = black_box(counter.wrapping_add(1));
        }
        if secs.is_some_and(|d| start.elapsed() >= d) {
            return Outcome::ok(format!("busy {:.1}", start.elapsed().as_secs_f64()));
        }
    }
}

/// Prints "ready", then "got SIGNAME" per SIGTERM/SIGHUP/SIGUSR1; exits 0 after SIGTERM.
pub fn signal_wait() -> Outcome {
    let mut pipe = match sys::catch_signals(&[libc::SIGTERM, libc::SIGHUP, libc::SIGUSR1]) {
        Ok(p) => p,
        Err(e) => return Outcome::failed(format!("sigaction failed: {}", errno::of(&e))),
    };
    say("ready");
    loop {
        let mut byte = [0u8; 1];
        match pipe.read(&mut byte) {
            Ok(1) => {
                let sig = libc::c_int::from(byte[0]);
                say(&format!("got {}", sys::signal_name(sig)));
                if sig == libc::SIGTERM {
                    return Outcome::ok(String::new());
                }
            }
            Ok(_) => return Outcome::failed("signal pipe closed".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Outcome::failed(format!("signal pipe: {}", errno::of(&e))),
        }
    }
}

/// Ignores SIGTERM, prints "ready", and sleeps.
pub fn ignore_term(secs: Option<Duration>) -> Outcome {
    if let Err(e) = sys::ignore_signal(libc::SIGTERM) {
        return Outcome::failed(format!("sigaction failed: {}", errno::of(&e)));
    }
    say("ready");
    hold(secs);
    Outcome::ok(String::new())
}

/// Opens `path` for reading, or for writing (created if missing); prints ok or the errno name.
pub fn open(path: &str, write: bool) -> Outcome {
    let result = if write {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
    } else {
        File::open(path)
    };
    match result {
        Ok(_) => Outcome::ok("ok".to_string()),
        Err(e) => Outcome::failed(errno::of(&e)),
    }
}
