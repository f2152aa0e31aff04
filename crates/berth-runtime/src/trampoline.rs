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
//! Before that exec, while it sets up, the clone still runs this binary in the container's
//! namespaces; it is then non-dumpable, so only a holder of CAP_SYS_PTRACE in the initial user
//! namespace can open its `/proc/PID/exe`, and such a process could as well ptrace it while it
//! still has every capability (runc's `runc init` is exposed the same way). Two kinds of
//! containers get the exe guard instead:
//! - those with a user namespace: the clone must stay dumpable there, and a root mapped onto
//!   the binary's owner could reopen it for writing;
//! - those whose seccomp profile might refuse `execveat` (from the runtime), or `fcntl` and
//!   `execve` (the trampoline's own), since the filter is loaded before.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MemFdCreateFlag};
use oci_spec::runtime::{LinuxNamespaceType, LinuxSeccomp, LinuxSeccompAction, Spec};

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

/// The trampoline for a container with `spec`, as a sealed, close-on-exec memfd; `None` when
/// this build has none, the container has a user namespace, or its seccomp profile might
/// refuse the trampoline's syscalls (the caller must then protect the binary with the exe
/// guard).
pub fn for_spec(spec: &Spec) -> Result<Option<OwnedFd>, TrampolineError> {
    let linux = spec.linux().as_ref();
    let seccomp = linux.and_then(|l| l.seccomp().as_ref());
    let userns = linux
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::User));
    if !available() || userns || seccomp.is_some_and(|profile| !allows(profile, &SYSCALLS)) {
        return Ok(None);
    }
    load().map(Some)
}

fn load() -> Result<OwnedFd, TrampolineError> {
    let flags = MemFdCreateFlag::MFD_CLOEXEC | MemFdCreateFlag::MFD_ALLOW_SEALING;
    let fd = memfd_create(c"berth-exec", flags).map_err(err("memfd_create"))?;
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
    Ok(file.into())
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
    fn run_trampoline(path: &str) -> (std::process::Output, crate::sync::Msg) {
        use std::os::fd::AsRawFd;
        let (parent, child) = crate::sync::pair().unwrap();
        let memfd = load().unwrap();
        let exe = format!("/proc/self/fd/{}", memfd.as_raw_fd());
        // A duplicate has no close-on-exec flag, so the trampoline inherits it (as it does
        // from the container's process, which clears the flag right before exec'ing it).
        let fd = nix::unistd::dup(child.as_raw_fd()).unwrap();
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([path, &fd.to_string(), "argv0", "from-trampoline"]);
        let out = cmd.output().unwrap();
        nix::unistd::close(fd).unwrap();
        drop(child);
        let msg = parent.recv().unwrap_or(crate::sync::Msg::Execing);
        (out, msg)
    }

    #[test]
    fn the_trampoline_execs_or_reports_the_errno() {
        if !available() {
            return;
        }
        let (out, msg) = run_trampoline("/bin/echo");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "from-trampoline\n");
        assert!(out.status.success());
        assert_eq!(
            msg,
            crate::sync::Msg::Execing,
            "the channel was not closed on exec"
        );
        let (out, msg) = run_trampoline("/nonexistent/program");
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(msg, crate::sync::Msg::ExecFailed(libc::ENOENT));
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "berth-runtime: exec failed: errno 2\n"
        );
    }

    #[test]
    fn the_image_is_a_small_sealed_executable() {
        if !available() {
            return;
        }
        assert!(
            IMAGE.starts_with(b"\x7fELF") && IMAGE.len() < 4096,
            "{}",
            IMAGE.len()
        );
        let fd = load().unwrap();
        let mut file = std::fs::File::from(fd);
        assert!(file.write_all(b"x").is_err(), "the memfd is writable");
    }
}
