//! probe: a static multi-call binary that integration tests copy into a
//! container's rootfs. `probe report` prints what the process sees as one JSON
//! object; the other commands print one field, or provoke a limit. Invoked
//! through a link named after a command (`report`, `alloc`...), it runs that.
//! Usage errors and failures to read print `probe: <what>: <err>` and exit 1.
//!
//! The C `main` is ours (`no_main`), so std's runtime start-up does not run:
//! it would set SIGPIPE to SIG_IGN, install SIGSEGV/SIGBUS handlers and reopen
//! closed fds 0-2, and the probe must report what the runtime gave it instead.
//! std still reads argv on glibc (through .init_array).
#![cfg_attr(not(test), no_main)]

mod actions;
mod errno;
mod procfs;
mod report;
mod sys;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use report::Fallible;

const USAGE: &str = "usage: probe COMMAND [ARGS]
  report [--json] [--pretty]   everything below as one JSON object
  hostname | domainname | uid | gid | euid | egid | groups | cwd | pid | ppid
  caps | signals | seccomp | nnp | umask | oom-score-adj | cgroup | mounts
  env [NAME] | rlimit [NAME] | ns [NAME] | fds [--json]
  alloc MIB [--hold SECS]      allocate and touch MIB MiB
  fork N [--hold SECS]         fork N children that live until the probe exits
  write PATH MIB [--direct] [--no-sync] [--timed]
                               write MIB MiB (O_DIRECT with --direct), fsync
                               (not with --no-sync); --timed: print the seconds
  affinity                     CPUs of sched_getaffinity, as a list (0-1,3)
  busy SECS | sleep SECS       spin / sleep (0 or inf = forever)
  exit N                       exit with status N
  signal-wait                  print got SIGTERM|SIGHUP|SIGUSR1; exit 0 on SIGTERM
  ignore-term SECS             ignore SIGTERM, print ready, sleep
  open PATH [--write]          print ok or the errno name";

/// What a command ends with: text for stdout (may be empty) and an exit status.
pub struct Outcome {
    pub code: i32,
    pub text: String,
}

impl Outcome {
    pub fn ok(text: String) -> Self {
        Outcome { code: 0, text }
    }
    pub fn failed(text: String) -> Self {
        Outcome { code: 1, text }
    }
}

/// Prints one line on stdout and flushes, so a test reading the pipe sees it now.
pub fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        eprintln!("probe: stdout: {e}");
    }
}

/// The C entry point; see the crate docs for why it is not Rust's `fn main`.
#[cfg(not(test))]
#[no_mangle]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    probe_main()
}

#[cfg_attr(test, allow(dead_code))]
fn probe_main() -> ! {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let args = command_line(args);
    let code = match run(&args) {
        Ok(outcome) => {
            if !outcome.text.is_empty() {
                say(&outcome.text);
            }
            outcome.code
        }
        Err(e) => {
            eprintln!("probe: {e}");
            1
        }
    };
    std::process::exit(code);
}

/// Drops argv[0], unless it names a command (multi-call through a link).
fn command_line(mut args: Vec<String>) -> Vec<String> {
    let argv0 = args.first().map(|a| {
        Path::new(a)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
    });
    match argv0.flatten() {
        Some(name) if name != "probe" && is_command(&name) => {
            args[0] = name;
            args
        }
        _ => args.into_iter().skip(1).collect(),
    }
}

const COMMANDS: &[&str] = &[
    "report",
    "hostname",
    "domainname",
    "uid",
    "gid",
    "euid",
    "egid",
    "groups",
    "cwd",
    "pid",
    "ppid",
    "caps",
    "signals",
    "seccomp",
    "nnp",
    "umask",
    "oom-score-adj",
    "cgroup",
    "mounts",
    "env",
    "rlimit",
    "ns",
    "fds",
    "alloc",
    "fork",
    "write",
    "busy",
    "sleep",
    "exit",
    "signal-wait",
    "ignore-term",
    "open",
    "affinity",
];

fn is_command(name: &str) -> bool {
    COMMANDS.contains(&name)
}

fn run(args: &[String]) -> Fallible<Outcome> {
    let Some((command, rest)) = args.split_first() else {
        return Err(format!("no command\n{USAGE}"));
    };
    let (positional, flags) = split_flags(rest);
    let ok = |text: String| Ok(Outcome::ok(text));
    let arg = |i: usize, what: &str| {
        positional
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("{command}: missing {what}\n{USAGE}"))
    };
    let status = || report::status();
    match command.as_str() {
        "report" => {
            let value = report::report();
            let text = if flags.contains_key("--pretty") {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            };
            ok(text.map_err(|e| format!("report: json: {e}"))?)
        }
        "hostname" => ok(sys::uname().map_err(|e| format!("uname: {e}"))?.0),
        "domainname" => ok(sys::uname().map_err(|e| format!("uname: {e}"))?.1),
        "uid" => ok(sys::ids().uid.to_string()),
        "gid" => ok(sys::ids().gid.to_string()),
        "euid" => ok(sys::ids().euid.to_string()),
        "egid" => ok(sys::ids().egid.to_string()),
        "groups" => {
            let groups = sys::groups().map_err(|e| format!("getgroups: {e}"))?;
            ok(groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(" "))
        }
        "cwd" => ok(report::cwd()?),
        "pid" => ok(std::process::id().to_string()),
        "ppid" => ok(std::os::unix::process::parent_id().to_string()),
        "caps" => ok(key_values(&report::caps(&status()?))),
        "signals" => ok(key_values(&report::signals(&status()?))),
        "seccomp" => ok(report::seccomp(&status()?)?.to_string()),
        "nnp" => ok(report::no_new_privs(&status()?)?.to_string()),
        "umask" => ok(report::umask(&status()?)?),
        "oom-score-adj" => ok(report::oom_score_adj()?.to_string()),
        "cgroup" => ok(report::cgroup()?.join("\n")),
        "mounts" => ok(report::mounts()?
            .iter()
            .map(|m| {
                let prop = m.propagation();
                format!(
                    "{} {} {} {} {} {}",
                    m.target, m.fstype, m.source, m.options, m.super_options, prop
                )
            })
            .collect::<Vec<_>>()
            .join("\n")),
        "env" => env(positional.first().map(String::as_str)),
        "rlimit" => rlimit(positional.first().map(String::as_str)),
        "ns" => ns(positional.first().map(String::as_str)),
        "fds" => fds(flags.contains_key("--json")),
        "alloc" => Ok(actions::alloc(number(arg(0, "MIB")?)?, hold_flag(&flags)?)),
        "fork" => Ok(actions::fork(number(arg(0, "N")?)?, hold_flag(&flags)?)),
        "write" => Ok(actions::write(
            arg(0, "PATH")?,
            number(arg(1, "MIB")?)?,
            actions::WriteMode {
                direct: flags.contains_key("--direct"),
                no_sync: flags.contains_key("--no-sync"),
                timed: flags.contains_key("--timed"),
            },
        )),
        "busy" => Ok(actions::busy(seconds(arg(0, "SECS")?)?)),
        "sleep" => {
            actions::hold(seconds(arg(0, "SECS")?)?);
            ok(String::new())
        }
        "exit" => {
            let text = arg(0, "N")?;
            let code = text
                .parse()
                .map_err(|_| format!("exit: not a status: {text:?}"))?;
            Ok(Outcome {
                code,
                text: String::new(),
            })
        }
        "signal-wait" => Ok(actions::signal_wait()),
        "ignore-term" => Ok(actions::ignore_term(seconds(
            positional.first().map_or("0", String::as_str),
        )?)),
        "open" => Ok(actions::open(
            arg(0, "PATH")?,
            flags.contains_key("--write"),
        )),
        "affinity" => ok(procfs::cpu_list(
            &sys::affinity().map_err(|e| format!("sched_getaffinity: {e}"))?,
        )),
        "help" | "--help" | "-h" => ok(USAGE.to_string()),
        other => Err(format!("unknown command {other:?}\n{USAGE}")),
    }
}

/// Splits `--flag [value]` pairs from positional arguments. `--hold` takes a value.
fn split_flags(
    args: &[String],
) -> (
    Vec<String>,
    std::collections::BTreeMap<String, Option<String>>,
) {
    let mut positional = Vec::new();
    let mut flags = std::collections::BTreeMap::new();
    let mut iter = args.iter();
    while let Some(a) = iter.next() {
        if a == "--hold" {
            flags.insert(a.clone(), iter.next().cloned());
        } else if a.starts_with("--") {
            flags.insert(a.clone(), None);
        } else {
            positional.push(a.clone());
        }
    }
    (positional, flags)
}

/// `--hold SECS`: None if absent; Some(None) to hold forever.
fn hold_flag(
    flags: &std::collections::BTreeMap<String, Option<String>>,
) -> Fallible<Option<Option<Duration>>> {
    match flags.get("--hold") {
        None => Ok(None),
        Some(None) => Err("--hold needs SECS".to_string()),
        Some(Some(secs)) => seconds(secs).map(Some),
    }
}

fn seconds(text: &str) -> Fallible<Option<Duration>> {
    procfs::parse_seconds(text)
}

fn number(text: &str) -> Fallible<usize> {
    text.parse().map_err(|_| format!("not a count: {text:?}"))
}

/// `{"a": "x", "b": null}` as lines `a x` / `b -`.
fn key_values(value: &serde_json::Value) -> String {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{k} {}", v.as_str().unwrap_or("-")))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

fn env(name: Option<&str>) -> Fallible<Outcome> {
    match name {
        Some(name) => std::env::var_os(name)
            .map(|v| Outcome::ok(v.to_string_lossy().into_owned()))
            .ok_or_else(|| format!("env {name}: not set")),
        None => {
            let lines: Vec<String> = report::env()
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            Ok(Outcome::ok(lines.join("\n")))
        }
    }
}

fn rlimit(name: Option<&str>) -> Fallible<Outcome> {
    let show = |name: &str| -> Fallible<String> {
        let (soft, hard) = report::rlimit(name)?;
        let plain = |v: serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        Ok(format!("{} {}", plain(soft), plain(hard)))
    };
    match name {
        Some(given) => {
            let name = procfs::rlimit_name(given)
                .ok_or_else(|| format!("rlimit: unknown resource {given:?}"))?;
            Ok(Outcome::ok(show(name)?))
        }
        None => {
            let lines: Fallible<Vec<String>> = procfs::RLIMIT_NAMES
                .iter()
                .map(|n| Ok(format!("{n} {}", show(n)?)))
                .collect();
            Ok(Outcome::ok(lines?.join("\n")))
        }
    }
}

fn ns(name: Option<&str>) -> Fallible<Outcome> {
    let all = report::namespaces()?;
    match name {
        Some(name) => all
            .get(name)
            .map(|t| Outcome::ok(t.clone()))
            .ok_or_else(|| format!("ns {name}: not found")),
        None => Ok(Outcome::ok(
            all.iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
        )),
    }
}

fn fds(json: bool) -> Fallible<Outcome> {
    let list = report::fds()?;
    let text = if json {
        let map: serde_json::Map<String, serde_json::Value> = list
            .into_iter()
            .map(|(fd, target)| (fd.to_string(), target.into()))
            .collect();
        serde_json::Value::Object(map).to_string()
    } else {
        list.iter()
            .map(|(fd, target)| format!("{fd} {target}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    Ok(Outcome::ok(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn argv0_selects_the_command_when_it_names_one() {
        assert_eq!(
            command_line(strings(&["/bin/probe", "uid"])),
            strings(&["uid"])
        );
        assert_eq!(
            command_line(strings(&["/bin/report", "--json"])),
            strings(&["report", "--json"])
        );
        assert_eq!(
            command_line(strings(&["./whatever", "pid"])),
            strings(&["pid"])
        );
    }

    #[test]
    fn flags_split_from_positionals() {
        let (pos, flags) = split_flags(&strings(&["64", "--hold", "5", "--direct"]));
        assert_eq!(pos, strings(&["64"]));
        assert_eq!(flags.get("--hold"), Some(&Some("5".to_string())));
        assert_eq!(flags.get("--direct"), Some(&None));
        assert_eq!(hold_flag(&flags), Ok(Some(Some(Duration::from_secs(5)))));
    }

    #[test]
    fn every_command_is_dispatched() {
        // Commands that need no arguments and do not block must not be "unknown".
        for cmd in [
            "uid", "pid", "cwd", "umask", "seccomp", "nnp", "rlimit", "groups", "hostname",
            "affinity",
        ] {
            assert!(run(&strings(&[cmd])).is_ok(), "{cmd}");
        }
        assert!(run(&strings(&["nonsense"])).is_err());
    }

    #[test]
    fn exit_status_is_passed_through() {
        let outcome = run(&strings(&["exit", "7"])).expect("runs");
        assert_eq!(outcome.code, 7);
    }

    #[test]
    fn report_has_every_key() {
        let value = report::report();
        for key in [
            "hostname",
            "domainname",
            "uid",
            "gid",
            "euid",
            "egid",
            "groups",
            "caps",
            "mounts",
            "cgroup",
            "rlimits",
            "seccomp",
            "no_new_privs",
            "env",
            "cwd",
            "pid",
            "ppid",
            "umask",
            "signals",
            "oom_score_adj",
            "namespaces",
            "fds",
            "errors",
        ] {
            assert!(value.get(key).is_some(), "{key}");
        }
        assert_eq!(value["errors"], serde_json::json!({}));
    }
}
