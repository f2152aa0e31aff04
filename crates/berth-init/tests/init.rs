//! berth-init on the real kernel, run directly (a child subreaper) and as PID 1 of a new pid
//! namespace: exit codes, zombie reaping, signal forwarding, errors; and the same cases under
//! tini, whose exit codes must agree.

#![allow(clippy::unwrap_used)]

mod harness;

use harness::{berth_init, Finished, Init, Mode, Running};

/// Runs `case` for every mode this machine supports.
fn each_mode(test: &str, case: impl Fn(Mode)) {
    for mode in Mode::available(test) {
        case(mode);
    }
}

fn exit_code_of(init: Init, mode: Mode, script: &str) -> i32 {
    Running::script(init, mode, script).code()
}

#[test]
fn exit_code_is_the_programs() {
    each_mode("exit_code_is_the_programs", |mode| {
        assert_eq!(exit_code_of(Init::Berth, mode, "exit 0"), 0, "{mode:?}");
        assert_eq!(exit_code_of(Init::Berth, mode, "exit 3"), 3, "{mode:?}");
        assert_eq!(exit_code_of(Init::Berth, mode, "exit 255"), 255, "{mode:?}");
    });
}

#[test]
fn killed_program_gives_128_plus_signal() {
    each_mode("killed_program_gives_128_plus_signal", |mode| {
        assert_eq!(
            exit_code_of(Init::Berth, mode, "kill -KILL $$"),
            137,
            "{mode:?}"
        );
        assert_eq!(
            exit_code_of(Init::Berth, mode, "kill -SEGV $$"),
            139,
            "{mode:?}"
        );
        // A real-time signal, which nix's Signal cannot name.
        assert_eq!(
            exit_code_of(Init::Berth, mode, "kill -40 $$"),
            168,
            "{mode:?}"
        );
    });
}

/// Two orphans (their parent subshells exit at once) must be re-parented to the init and,
/// once they exit, reaped: nothing of theirs is left, not even a zombie.
const ORPHANS: &str = r#"
spawn() { (sleep 0.3 >/dev/null 2>&1 & echo $!); }
a=$(spawn); b=$(spawn)
for p in $a $b; do
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pp=$(cut -d' ' -f4 /proc/$p/stat)
        [ "$pp" = "$PPID" ] && break
        sleep 0.02
    done
    echo "parent $pp"
done
echo "init $PPID"
sleep 1
for p in $a $b; do [ -e /proc/$p ] && echo "left $p $(cut -d' ' -f3 /proc/$p/stat)"; done
echo done
"#;

#[test]
fn orphans_are_reparented_and_reaped() {
    each_mode("orphans_are_reparented_and_reaped", |mode| {
        let out = Running::script(Init::Berth, mode, ORPHANS);
        assert_eq!(out.code(), 0, "{mode:?}: {out:?}");
        let init = out
            .stdout
            .iter()
            .find_map(|l| l.strip_prefix("init "))
            .unwrap();
        if mode == Mode::Pid1 {
            assert_eq!(init, "1", "{out:?}");
        }
        let parent = format!("parent {init}");
        let expected = [parent.as_str(), &parent, &format!("init {init}"), "done"];
        assert_eq!(
            out.stdout, expected,
            "{mode:?}: orphans not re-parented or left behind"
        );
    });
}

/// No zombie at all in the namespace once the orphans are gone (as PID 1 it is all of it).
#[test]
fn no_zombie_in_the_namespace() {
    let script = "(sleep 0.1 &) ; (sleep 0.1 &) ; sleep 1; \
                  for s in /proc/[0-9]*/stat; do cut -d' ' -f3 $s; done | grep -c Z";
    for mode in Mode::available("no_zombie_in_the_namespace") {
        if mode != Mode::Pid1 {
            continue;
        }
        let out = Running::script(Init::Berth, mode, script);
        // grep -c prints 0 and exits 1 when nothing matches.
        assert_eq!(out.stdout, ["0"], "{out:?}");
        assert_eq!(out.code(), 1, "{out:?}");
    }
}

/// A shell that reports USR1, a real-time signal and TERM, exiting 42 on TERM.
const TRAPS: &str = r#"
trap 'echo got USR1' USR1
trap 'echo got RT' 36
trap 'echo got TERM; kill $pid 2>/dev/null; exit 42' TERM
sleep 30 & pid=$!
echo ready
while :; do wait $pid; done
"#;

/// Sends USR1, SIGRTMIN+2 and TERM to the init one after the other and returns how it ended.
fn forward_signals(init: Init, mode: Mode) -> Finished {
    let mut running = Running::start(init, mode, &["--", "/bin/sh", "-c", TRAPS]);
    assert!(running.until("ready").is_empty());
    running.signal(nix::sys::signal::Signal::SIGUSR1 as i32);
    assert!(running.until("got USR1").is_empty());
    running.signal(36);
    assert!(running.until("got RT").is_empty());
    running.signal(nix::sys::signal::Signal::SIGTERM as i32);
    assert!(running.until("got TERM").is_empty());
    running.finish()
}

#[test]
fn signals_are_forwarded() {
    each_mode("signals_are_forwarded", |mode| {
        let out = forward_signals(Init::Berth, mode);
        assert_eq!(out.code(), 42, "{mode:?}: {out:?}");
    });
}

/// The program's process group is its own (tini's default), and with a terminal on stdin it
/// is the foreground group. Runs under `script`, which provides the terminal.
#[test]
fn program_leads_the_terminals_foreground_group() {
    if !std::path::Path::new("/usr/bin/script").exists() {
        eprintln!("SKIPPED: program_leads_the_terminals_foreground_group: /usr/bin/script missing (install util-linux)");
        return;
    }
    let command = format!(
        "{} -- /bin/sh -c 'echo \"$$ $(cut -d\" \" -f5,8 /proc/$$/stat)\"'",
        berth_init()
    );
    let out = std::process::Command::new("/usr/bin/script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.split_whitespace().collect();
    let [pid, pgrp, tpgid] = fields[..] else {
        panic!("unexpected output {text:?}");
    };
    assert_eq!((pgrp, tpgid), (pid, pid), "pid pgrp tpgid: {text:?}");
}

#[test]
fn no_program_is_a_usage_error() {
    each_mode("no_program_is_a_usage_error", |mode| {
        for args in [&[][..], &["--"]] {
            let out = Running::start(Init::Berth, mode, args).finish();
            assert_eq!(out.code(), 1, "{mode:?}: {out:?}");
            assert_one_line(&out, "berth-init: usage: no program given");
        }
    });
}

#[test]
fn missing_program_exits_127_and_unexecutable_126() {
    each_mode("missing_program_exits_127", |mode| {
        let out = Running::start(Init::Berth, mode, &["--", "/no/such/program"]).finish();
        assert_eq!(out.code(), 127, "{mode:?}: {out:?}");
        assert_one_line(
            &out,
            "berth-init: exec /no/such/program: No such file or directory",
        );
        let out = Running::start(Init::Berth, mode, &["no-such-program-in-path"]).finish();
        assert_eq!(out.code(), 127, "{mode:?}: {out:?}");
        let out = Running::start(Init::Berth, mode, &["/"]).finish();
        assert_eq!(out.code(), 126, "{mode:?}: {out:?}");
        assert_one_line(&out, "berth-init: exec /: Permission denied");
    });
}

fn assert_one_line(out: &Finished, start: &str) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with(start),
        "expected one line starting {start:?}, got {:?}",
        out.stderr
    );
}

/// The same cases under tini give the same exit codes.
#[test]
fn exit_codes_match_tini() {
    let Some(tini) = Init::Tini.available("exit_codes_match_tini") else {
        return;
    };
    let cases: [&[&str]; 6] = [
        &["--", "/bin/sh", "-c", "exit 3"],
        &["--", "/bin/sh", "-c", "kill -KILL $$"],
        &["--", "/bin/sh", "-c", "kill -40 $$"],
        &["--", "/no/such/program"],
        &["--", "/"],
        &[],
    ];
    each_mode("exit_codes_match_tini", |mode| {
        for args in cases {
            let ours = Running::start(Init::Berth, mode, args).finish().code();
            let theirs = Running::start(tini, mode, args).finish().code();
            assert_eq!(ours, theirs, "{mode:?} {args:?}");
        }
        let ours = forward_signals(Init::Berth, mode).code();
        let theirs = forward_signals(tini, mode).code();
        assert_eq!((ours, theirs), (42, 42), "{mode:?}: signals");
    });
}

/// tini-static's size (musl): the budget for a freestanding berth-init.
const MAX_SIZE: u64 = 59 * 1024;

/// The ELF program header types of `path` (64-bit little-endian only).
fn program_headers(path: &str) -> Vec<u32> {
    let elf = std::fs::read(path).unwrap();
    assert_eq!(
        elf.get(..6),
        Some(&b"\x7fELF\x02\x01"[..]),
        "{path}: not a 64-bit LE ELF"
    );
    let u16_at = |at: usize| u16::from_le_bytes(elf[at..at + 2].try_into().unwrap()) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let at = phoff + i * phentsize;
            u32::from_le_bytes(elf[at..at + 4].try_into().unwrap())
        })
        .collect()
}

const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;

/// Every build is a static executable (no program interpreter), so the engine can bind-mount
/// it into any container: the freestanding one (`cargo build --release -p berth-init`, no
/// libc) also has nothing for a dynamic loader to do and is at most 59 KiB; a hosted one
/// (dev profile, or a build of the whole workspace, see build.rs) is glibc static-pie. A
/// hosted build that could not be static (no libc.a) says SKIPPED. `$BERTH_INIT`, when set,
/// is checked for being static only.
#[test]
fn build_is_static_and_freestanding_is_small() {
    let path = berth_init();
    let size = std::fs::metadata(&path).unwrap().len();
    let external = std::env::var_os("BERTH_INIT").is_some();
    let freestanding = !external && env!("BERTH_INIT_FREESTANDING") == "1";
    if !external && env!("BERTH_INIT_STATIC") != "1" {
        eprintln!(
            "SKIPPED: build_is_static_and_freestanding_is_small: {path} ({size} bytes) is \
             linked dynamically (build.rs found no static glibc)"
        );
        return;
    }
    let headers = program_headers(&path);
    assert!(
        !headers.contains(&PT_INTERP),
        "{path} has a program interpreter"
    );
    if freestanding {
        assert!(
            !headers.contains(&PT_DYNAMIC),
            "{path} has a dynamic section"
        );
        assert!(
            size <= MAX_SIZE,
            "{path} is {size} bytes, more than {MAX_SIZE}"
        );
        eprintln!("{path}: static, freestanding, {size} bytes");
    } else {
        eprintln!(
            "{path}: static, hosted, {size} bytes (the 59 KiB budget is checked by \
             `cargo test --release -p berth-init`)"
        );
    }
}

/// What the freestanding runtime adds to tini's behaviour: `--help`/`--version` on stdout,
/// a file without `#!` run by /bin/sh (glibc's execvp does it, and so tini), and the
/// environment passed on unchanged.
#[test]
fn help_version_scripts_and_environment() {
    let out = std::process::Command::new(berth_init())
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("berth-init {}\n", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(out.status.code(), Some(0));
    let out = std::process::Command::new(berth_init())
        .arg("-h")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("usage: berth-init [--] PROGRAM"));

    let dir = std::env::temp_dir().join(format!("berth-init-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("no-shebang");
    std::fs::write(&script, "echo \"script $1 $BERTH_TEST_VAR\"; exit 7\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // By path, and by name through $PATH.
    for (program, path) in [
        (script.to_str().unwrap(), "/usr/bin:/bin"),
        ("no-shebang", ""),
    ] {
        let path = if path.is_empty() {
            format!("/nonexistent:{}:/usr/bin:/bin", dir.display())
        } else {
            path.to_owned()
        };
        let out = std::process::Command::new(berth_init())
            .args(["--", program, "arg"])
            .env("PATH", path)
            .env("BERTH_TEST_VAR", "value")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(7), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "script arg value\n");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
