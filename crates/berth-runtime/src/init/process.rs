//! The process's own settings: names, sysctls, keyring, rlimits, oom score, cwd, executable,
//! environment, user and capabilities, no_new_privs, seccomp, and the wait for `start`.

use std::ffi::CString;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::sys::resource::{setrlimit, Resource};
use oci_spec::runtime::{PosixRlimitType, Process};

use super::exec::Prepared;
use super::{caps, fail, Config, Step, StepError};

/// Write /proc/self/oom_score_adj, unless it already has that value: in a new user namespace
/// the file is not writable (the container's root does not own it), and the usual 0 is
/// inherited anyway.
pub fn set_oom_score_adj(process: &Process) -> Result<(), StepError> {
    let current = std::fs::read_to_string("/proc/self/oom_score_adj").ok();
    let current = current.and_then(|c| c.trim().parse::<i32>().ok());
    if let Some(score) = process.oom_score_adj().filter(|s| Some(*s) != current) {
        std::fs::write("/proc/self/oom_score_adj", score.to_string())
            .step(|| format!("set oom_score_adj to {score}"))?;
    }
    Ok(())
}

/// Hostname, domainname and sysctls (after the pivot, so /proc/sys is the container's).
pub fn set_names_and_sysctls(config: &Config<'_>) -> Result<(), StepError> {
    if let Some(name) = config.spec.hostname() {
        nix::unistd::sethostname(name).step(|| format!("set hostname {name:?}"))?;
    }
    if let Some(name) = config.spec.domainname() {
        berth_sys::setdomainname(name.as_bytes()).step(|| format!("set domainname {name:?}"))?;
    }
    let sysctls = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.sysctl().clone());
    let mut sysctls: Vec<(String, String)> = sysctls.into_iter().flatten().collect();
    sysctls.sort();
    for (key, value) in sysctls {
        write_sysctl(&key, &value)?;
    }
    Ok(())
}

fn write_sysctl(key: &str, value: &str) -> Result<(), StepError> {
    let step = || format!("set sysctl {key}={value}");
    let rel = key.replace('.', "/");
    if rel.split('/').any(|p| p.is_empty() || p == "..") {
        return Err(fail(step(), "invalid sysctl name"));
    }
    let dir = std::fs::File::open("/proc/sys").step(step)?;
    let path = CString::new(rel).map_err(|_| fail(step(), "invalid sysctl name"))?;
    let fd = berth_sys::openat2(
        std::os::fd::AsFd::as_fd(&dir),
        &path,
        libc::O_WRONLY | libc::O_TRUNC,
        0,
        berth_sys::resolve::BENEATH | berth_sys::resolve::NO_SYMLINKS,
    )
    .step(step)?;
    let mut file = std::fs::File::from(fd);
    std::io::Write::write_all(&mut file, value.as_bytes()).step(step)
}

/// A fresh session keyring, so containers do not share the host's.
pub fn join_keyring() -> Result<(), StepError> {
    match berth_sys::join_session_keyring(c"_ses.berth") {
        // Keyrings may be disabled or forbidden by a seccomp profile; runc ignores ENOSYS.
        Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => Ok(()),
        other => other.step(|| "join session keyring".into()),
    }
}

fn resource(typ: PosixRlimitType) -> Resource {
    match typ {
        PosixRlimitType::RlimitCpu => Resource::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => Resource::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => Resource::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => Resource::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => Resource::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => Resource::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => Resource::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => Resource::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => Resource::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => Resource::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => Resource::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => Resource::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => Resource::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => Resource::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => Resource::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => Resource::RLIMIT_RTTIME,
    }
}

/// Resolve the executable and build argv/envp, set rlimits and the working directory.
/// Runs before `Ready`, so a missing binary fails `create`, not `start`.
pub fn prepare(config: &Config<'_>) -> Result<Prepared, StepError> {
    let process = config.process;
    for r in process.rlimits().iter().flatten() {
        let name = serde_json::to_value(r.typ())
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default();
        setrlimit(resource(r.typ()), r.soft(), r.hard())
            .step(|| format!("set rlimit {name} to {}:{}", r.soft(), r.hard()))?;
    }
    let mut env: Vec<String> = process.env().clone().unwrap_or_default();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(process.user().uid())));
    }
    let args = process.args().clone().unwrap_or_default();
    let arg0 = args.first().cloned().unwrap_or_default();
    let path = find_executable(&arg0, &env)?;
    let cstr = |s: &str, what: &str| {
        CString::new(s).map_err(|_| fail(format!("prepare {what}"), "contains a NUL byte"))
    };
    Ok(Prepared {
        path: cstr(&path.to_string_lossy(), "executable path")?,
        argv: args
            .iter()
            .map(|a| cstr(a, "args"))
            .collect::<Result<_, _>>()?,
        envp: env
            .iter()
            .map(|e| cstr(e, "env"))
            .collect::<Result<_, _>>()?,
    })
}

/// The user's home from the container's /etc/passwd, or `/`.
fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into())
}

/// Find `arg0` as execve would with the process's `PATH` (or the default one).
fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf, StepError> {
    let step = || format!("exec {arg0:?}");
    let runnable = |p: &Path| {
        p.metadata().map(|m| m.is_file()).unwrap_or(false)
            && nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok()
    };
    if arg0.contains('/') {
        let p = PathBuf::from(arg0);
        return match p.metadata() {
            Err(e) => Err(e).step(step),
            Ok(m) if m.is_dir() => Err(fail(step(), "is a directory")),
            Ok(_) if !runnable(&p) => Err(fail(step(), "permission denied")),
            Ok(_) => Ok(p),
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    path.split(':')
        .map(|dir| Path::new(if dir.is_empty() { "." } else { dir }).join(arg0))
        .find(|p| runnable(p))
        .ok_or_else(|| fail(step(), "executable file not found in $PATH"))
}

/// The user switch and the security settings, in runc's order.
pub fn finalize(config: &Config<'_>) -> Result<(), StepError> {
    let process = config.process;
    let nnp = process.no_new_privileges() == Some(true);
    let cwd = process.cwd();
    let early_cwd = nix::unistd::chdir(cwd);
    if !nnp {
        load_seccomp(config)?;
    }
    let sets = caps::sets(process.capabilities().as_ref());
    caps::drop_bounding(&sets)?;
    berth_sys::set_keep_caps(true).step(|| "set keepcaps".into())?;
    switch_user(process)?;
    berth_sys::set_keep_caps(false).step(|| "clear keepcaps".into())?;
    caps::apply(&sets)?;
    if early_cwd.is_err() {
        nix::unistd::chdir(cwd)
            .step(|| format!("chdir to cwd {:?} set in config.json", cwd.display()))?;
    }
    // A cwd reached through a leaked fd lies outside our root (CVE-2024-21626); the kernel
    // then reports it as "(unreachable)/...", which is not an absolute path.
    if !nix::unistd::getcwd().is_ok_and(|dir| dir.is_absolute()) {
        return Err(fail(
            format!("chdir to cwd {:?}", cwd.display()),
            "current working directory is outside of the container root",
        ));
    }
    berth_sys::set_umask(process.user().umask().unwrap_or(0o022));
    if nnp {
        berth_sys::set_no_new_privs().step(|| "set no_new_privs".into())?;
        load_seccomp(config)?;
    }
    apply_lsm_labels(process)
}

/// Load the seccomp filter; hand a notify listener to `listenerPath` with the process state.
fn load_seccomp(config: &Config<'_>) -> Result<(), StepError> {
    let Some(filter) = config.seccomp else {
        return Ok(());
    };
    let listener = filter
        .load()
        .map_err(|e| fail("load seccomp filter", e.to_string()))?;
    let (Some(fd), Some(socket)) = (listener, config.seccomp_listener.as_ref()) else {
        return Ok(());
    };
    let seccomp = config
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref());
    let state = serde_json::json!({
        "ociVersion": config.spec.version(),
        "fds": ["seccompFd"],
        "pid": config.host_pid,
        "metadata": seccomp.and_then(|s| s.listener_metadata().clone()).unwrap_or_default(),
        "state": {
            "ociVersion": config.spec.version(),
            "id": config.id,
            "status": match config.role {
                super::Role::Init { .. } => "creating",
                super::Role::Exec => "running",
            },
            "pid": config.host_pid,
            "bundle": config.bundle,
            "annotations": config.spec.annotations(),
        }
    });
    super::console::send_fd(socket, state.to_string().as_bytes(), &fd)
        .step(|| "send seccomp listener to listenerPath".into())
}

/// AppArmor profile and SELinux label, applied on exec through /proc/thread-self/attr.
fn apply_lsm_labels(process: &Process) -> Result<(), StepError> {
    if let Some(profile) = process.apparmor_profile() {
        let step = || format!("apply apparmor profile {profile:?}");
        let enabled = std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
            .is_ok_and(|s| s.trim() == "Y");
        if !enabled {
            return Err(fail(step(), "apparmor is not enabled on this host"));
        }
        let text = format!("exec {profile}");
        std::fs::write("/proc/thread-self/attr/apparmor/exec", &text)
            .or_else(|_| std::fs::write("/proc/thread-self/attr/exec", &text))
            .step(step)?;
    }
    if let Some(label) = process.selinux_label() {
        let step = || format!("apply selinux label {label:?}");
        if !Path::new("/sys/fs/selinux/enforce").exists() {
            return Err(fail(step(), "selinux is not enabled on this host"));
        }
        std::fs::write("/proc/thread-self/attr/exec", label).step(step)?;
    }
    Ok(())
}

fn switch_user(process: &Process) -> Result<(), StepError> {
    let user = process.user();
    let groups: Vec<nix::unistd::Gid> = user
        .additional_gids()
        .iter()
        .flatten()
        .map(|g| (*g).into())
        .collect();
    // In a user namespace whose setgroups is "deny", setgroups fails; that is only an error
    // when the config asks for supplementary groups other than the primary gid.
    let deny = std::fs::read_to_string("/proc/self/setgroups").is_ok_and(|s| s.trim() == "deny");
    let primary: nix::unistd::Gid = user.gid().into();
    if !deny || groups.iter().any(|g| *g != primary) {
        nix::unistd::setgroups(&groups).step(|| "setgroups".into())?;
    }
    let gid = user.gid().into();
    nix::unistd::setresgid(gid, gid, gid).step(|| format!("setgid {}", user.gid()))?;
    let uid = user.uid().into();
    nix::unistd::setresuid(uid, uid, uid).step(|| format!("setuid {}", user.uid()))
}

/// Block until `start` writes to the exec fifo.
pub fn wait_for_start(fifo: &OwnedFd) -> Result<(), StepError> {
    let mut file = std::fs::File::from(fifo.try_clone().step(|| "dup exec fifo".into())?);
    let mut byte = [0u8; 1];
    loop {
        match file.read(&mut byte) {
            Ok(1) => return Ok(()),
            Ok(_) => return Err(fail("wait for start", "exec fifo closed")),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).step(|| "wait for start".into()),
        }
    }
}
