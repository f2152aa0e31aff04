//! The exec trampoline: how the container's process stops running this binary before it runs
//! anything of the container's (the CVE-2019-5736 class).
//!
//! The container's first process and every `exec`'d process are clones of the runtime until
//! their final execve, so their `/proc/self/exe` is this binary. If that execve ran the
//! container's program directly, a hostile image could make it run `/proc/self/exe` again (a
//! `#!/proc/self/exe` entrypoint) and a process in the container could then reopen the runtime
//! binary for writing through `/proc/PID/exe`. So the clone first execs a tiny static program
//! (trampoline/x86_64.S, a few hundred bytes, no libc) from a sealed memfd, which execs the
//! container's program: from then on `/proc/self/exe` is the sealed memfd, which cannot be
//! written. This costs one exec of a tiny image, where re-executing the runtime itself from a
//! read-only copy (`exe_guard`, still used when there is no trampoline) costs an exec of a
//! 5 MiB one at every start.
//!
//! Before that exec, while it sets up (and, after `create`, while it waits for `start`), the
//! clone still runs this binary in the container's namespaces. It is non-dumpable then, so its
//! `/proc/PID/exe` can only be opened by a holder of CAP_SYS_PTRACE. So the trampoline is used
//! only where no process that could reach the clone holds that capability, and nothing else
//! runs code of the image while the clone does; every other container gets the exe guard:
//! - a user namespace: the clone must stay dumpable there, and a root mapped onto the binary's
//!   owner could reopen it for writing;
//! - no pid namespace of its own (the host's, or one joined by path): other processes see it;
//! - CAP_SYS_PTRACE in any capability set of the container's process (or of the `exec`'d one);
//! - `startContainer` hooks: they are forked from the clone after pivot_root, so a hook path in
//!   the image (`#!/proc/self/exe`) would run this binary;
//! - an SELinux label or AppArmor profile: it would apply at the trampoline's exec instead of
//!   the program's;
//! - `fs.suid_dumpable` other than 0: the clone's switch to the container's user would make it
//!   dumpable again;
//! - a seccomp profile that might refuse `execveat` (from the runtime), or `fcntl` and `execve`
//!   (the trampoline's own), since the filter is loaded before;
//! - `vm.memfd_noexec` = 2 (no executable memfd can be made).
//!
//! One case stays open: an `exec` given CAP_SYS_PTRACE into a container that is still waiting
//! for `start` can reach its clone's `/proc/PID/exe`.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use oci_spec::runtime::{
    Capability, LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Process, Spec,
};

/// The trampoline's executable image (empty on architectures without one).
const IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/trampoline"));

/// Syscalls the trampoline path makes after the seccomp filter is loaded.
const SYSCALLS: [&str; 3] = ["execveat", "execve", "fcntl"];

/// Why the trampoline could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("load the exec trampoline: {step}: {source}")]
pub struct TrampolineError {
    step: &'static str,
    #[source]
    source: std::io::Error,
}

fn err(step: &'static str) -> impl FnOnce(nix::Error) -> TrampolineError {
    move |e| TrampolineError {
        step,
        source: e.into(),
    }
}

/// Does this build have a trampoline?
pub fn available() -> bool {
    !IMAGE.is_empty()
}

/// The trampoline for the process `process` of the container `spec`, as a sealed, close-on-exec
/// memfd; `None` when this build has none or the container must use the exe guard instead (see
/// the module documentation).
pub fn for_container(spec: &Spec, process: &Process) -> Result<Option<OwnedFd>, TrampolineError> {
    if !available() || !safe_for(spec, process) || !suid_dumpable_off() {
        return Ok(None);
    }
    load()
}

/// Can the container's clone run this binary while it sets up without any process able to
/// reach its `/proc/PID/exe` (or run the image's code beside it)?
fn safe_for(spec: &Spec, process: &Process) -> bool {
    let linux = spec.linux().as_ref();
    let namespaces = linux
        .and_then(|l| l.namespaces().as_deref())
        .unwrap_or_default();
    let userns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::User);
    let own_pidns = namespaces
        .iter()
        .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none());
    let start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .is_some_and(|hooks| !hooks.is_empty());
    let processes = [spec.process().as_ref(), Some(process)];
    let ptrace = processes.iter().flatten().any(|p| has_ptrace(p));
    let labels = processes
        .iter()
        .flatten()
        .any(|p| p.selinux_label().is_some() || p.apparmor_profile().is_some());
    let seccomp_ok = linux
        .and_then(|l| l.seccomp().as_ref())
        .is_none_or(|profile| allows(profile, &SYSCALLS));
    !userns && own_pidns && !start_hooks && !ptrace && !labels && seccomp_ok
}

fn has_ptrace(process: &Process) -> bool {
    let Some(caps) = process.capabilities() else {
        return false;
    };
    [
        caps.bounding(),
        caps.effective(),
        caps.permitted(),
        caps.inheritable(),
        caps.ambient(),
    ]
    .into_iter()
    .flatten()
    .any(|set| set.contains(&Capability::SysPtrace))
}

/// Credential changes leave a process non-dumpable only with `fs.suid_dumpable` = 0.
fn suid_dumpable_off() -> bool {
    std::fs::read_to_string("/proc/sys/fs/suid_dumpable").is_ok_and(|v| v.trim() == "0")
}

/// A sealed memfd holding the trampoline; `None` when this kernel refuses executable memfds
/// (`vm.memfd_noexec` = 2).
fn load() -> Result<Option<OwnedFd>, TrampolineError> {
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let exec = MemFdCreateFlag::from_bits_retain(libc::MFD_EXEC);
    let fd = match memfd_create(c"berth-exec", flags | exec) {
        // Before Linux 6.3 there is no MFD_EXEC, and every memfd is executable.
        Err(nix::Error::EINVAL) => memfd_create(c"berth-exec", flags),
        Err(nix::Error::EACCES) => return Ok(None),
        other => other,
    }
    .map_err(err("memfd_create"))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(IMAGE).map_err(|source| TrampolineError {
        step: "write",
        source,
    })?;
    let seals = SealFlag::F_SEAL_SEAL
        | SealFlag::F_SEAL_SHRINK
        | SealFlag::F_SEAL_GROW
        | SealFlag::F_SEAL_WRITE;
    fcntl(file.as_raw_fd(), FcntlArg::F_ADD_SEALS(seals)).map_err(err("seal"))?;
    Ok(Some(file.into()))
}

/// Would a filter from `profile` let every one of `names` through, whatever the arguments?
/// Every rule naming one must allow it, and unless the default allows, one of them must do so
/// without conditions.
pub fn allows(profile: &LinuxSeccomp, names: &[&str]) -> bool {
    let allowing = |a: LinuxSeccompAction| {
        matches!(
            a,
            LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
        )
    };
    let rules = profile.syscalls().as_deref().unwrap_or_default();
    names.iter().all(|name| {
        let mut naming = rules
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .peekable();
        if naming.peek().is_none() {
            return allowing(profile.default_action());
        }
        let naming: Vec<_> = naming.collect();
        naming.iter().all(|r| allowing(r.action()))
            && (allowing(profile.default_action())
                || naming
                    .iter()
                    .any(|r| r.args().as_ref().is_none_or(Vec::is_empty)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(json: serde_json::Value) -> LinuxSeccomp {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn profiles_that_might_refuse_the_trampoline_are_detected() {
        let allow_all = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"}));
        assert!(allows(&allow_all, &SYSCALLS));
        let deny_execveat = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": ["execveat"], "action": "SCMP_ACT_ERRNO"}]}));
        assert!(!allows(&deny_execveat, &SYSCALLS));
        let allow_list = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["execve", "execveat", "fcntl"], "action": "SCMP_ACT_ALLOW"}]}));
        assert!(allows(&allow_list, &SYSCALLS));
        let conditional = profile(serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"names": ["execve", "execveat"], "action": "SCMP_ACT_ALLOW"},
                         {"names": ["fcntl"], "action": "SCMP_ACT_ALLOW",
                          "args": [{"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]}]}));
        assert!(!allows(&conditional, &SYSCALLS));
        let missing = profile(serde_json::json!({"defaultAction": "SCMP_ACT_KILL",
            "syscalls": [{"names": ["execve"], "action": "SCMP_ACT_ALLOW"}]}));
        assert!(!allows(&missing, &SYSCALLS));
    }

    /// Run the trampoline with `path` and a channel, as the container's process would.
    fn run_trampoline(path: &str, listening: bool) -> (std::process::Output, crate::sync::Msg) {
        use std::os::fd::AsRawFd;
        let (parent, child) = crate::sync::pair().unwrap();
        let memfd = load().unwrap().unwrap();
        let exe = format!("/proc/self/fd/{}", memfd.as_raw_fd());
        // A duplicate has no close-on-exec flag, so the trampoline inherits it (as it does
        // from the container's process, which clears the flag right before exec'ing it).
        let fd = nix::unistd::dup(child.as_raw_fd()).unwrap();
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([path, &fd.to_string(), "argv0", "from-trampoline"]);
        let parent = listening.then_some(parent);
        let out = cmd.output().unwrap();
        nix::unistd::close(fd).unwrap();
        drop(child);
        let msg = parent.map_or(crate::sync::Msg::Execing, |p| {
            p.recv().unwrap_or(crate::sync::Msg::Execing)
        });
        (out, msg)
    }

    #[test]
    fn the_trampoline_execs_or_reports_the_errno() {
        if !available() {
            return;
        }
        let (out, msg) = run_trampoline("/bin/echo", true);
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-trampoline\n");
        assert!(out.status.success());
        assert_eq!(
            msg,
            crate::sync::Msg::Execing,
            "the channel was not closed on exec"
        );
        // The runtime reads the channel: it gets the errno, and stderr stays clean.
        let (out, msg) = run_trampoline("/nonexistent/program", true);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(msg, crate::sync::Msg::ExecFailed(libc::ENOENT));
        assert_eq!(String::from_utf8_lossy(&out.stderr), "");
        // Nobody reads it (after `create`): the failure goes to stderr.
        let (out, _) = run_trampoline("/nonexistent/program", false);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "berth-runtime: exec /nonexistent/program failed: errno 2\n"
        );
    }

    #[test]
    fn the_image_is_a_small_sealed_executable() {
        if !available() {
            return;
        }
        const EM_X86_64: u16 = 62;
        assert_eq!(u16::from_le_bytes([IMAGE[18], IMAGE[19]]), EM_X86_64);
        assert!(
            IMAGE.starts_with(b"\x7fELF") && IMAGE.len() < 4096,
            "{}",
            IMAGE.len()
        );
        let fd = load().unwrap().unwrap();
        let mut file = std::fs::File::from(fd);
        assert!(file.write_all(b"x").is_err(), "the memfd is writable");
    }
}
