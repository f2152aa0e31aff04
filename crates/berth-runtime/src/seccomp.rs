//! Seccomp: an OCI `linux.seccomp` profile compiled by libseccomp into a BPF program.
//!
//! The filter is compiled in the runtime's parent process, before clone, so that every error in
//! the profile is reported before a container process exists (and [`crate::seccomp_cache`]
//! keeps the program, so a profile is compiled once); the child only calls [`Filter::load`],
//! one `seccomp(2)` right before exec. Semantics follow runc 1.1 (`libcontainer/seccomp`):
//!
//! - `SCMP_ACT_KILL` is `SCMP_ACT_KILL_THREAD`; `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` return
//!   `errnoRet` (`defaultErrnoRet` for the default action), EPERM when it is absent.
//! - Extra architectures are added; the native one stays.
//! - A syscall name libseccomp does not know is skipped (it is usually newer than the library);
//!   the skipped names are kept in [`Filter::skipped_syscalls`] for the caller to log.
//! - A rule whose action equals the default action is skipped (libseccomp rejects it).
//! - Conditions on different arguments are AND'ed in one rule. If any argument index appears
//!   more than once, every condition becomes a rule of its own (OR'ed), as runc does.
//! - libseccomp does not set `NO_NEW_PRIVS` itself: the runtime does when the spec asks.

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;

use berth_sys::seccomp_flags;

use libseccomp::error::SeccompError as LibError;
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use nix::sys::memfd::MemFdCreateFlag;
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

/// The errno of `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` when the profile gives none.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;
/// Syscalls have at most six arguments.
const MAX_SYSCALL_ARGS: usize = 6;
/// runc turns on libseccomp's binary-tree optimisation above this many rules.
const OPTIMIZE_ABOVE_RULES: usize = 32;
/// The libseccomp binary-tree optimisation level.
const OPTIMIZE_BINARY_TREE: u32 = 2;
/// The libseccomp API level that supports user notification (libseccomp >= 2.5, Linux >= 5.7),
/// which runc also requires.
const NOTIFY_MIN_API: u32 = 6;

/// Errors of compiling or loading a seccomp profile.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// An `errnoRet` or `defaultErrnoRet` does not fit the 16 bits seccomp returns.
    #[error("{what}: errno {value} is out of range (0..=65535)")]
    ErrnoOutOfRange {
        /// "default action" or `rule for "name"`.
        what: String,
        /// The value in the profile.
        value: u32,
    },
    /// `SCMP_ACT_NOTIFY` as the default action (the runtime itself could not make syscalls).
    #[error("SCMP_ACT_NOTIFY cannot be used as the default action")]
    NotifyAsDefault,
    /// A rule asks for `SCMP_ACT_NOTIFY` but libseccomp or the kernel cannot do it.
    #[error("seccomp notify for \"{syscall}\" needs libseccomp API level {NOTIFY_MIN_API} (libseccomp >= 2.5, Linux >= 5.7), have {api}")]
    NotifyUnsupported {
        /// The first syscall that asked for it.
        syscall: String,
        /// The API level libseccomp reports.
        api: u32,
    },
    /// libseccomp could not create the filter.
    #[error("create filter with default action {action}: {source}")]
    NewFilter {
        /// The default action.
        action: LinuxSeccompAction,
        /// The cause.
        source: LibError,
    },
    /// An architecture could not be added.
    #[error("add architecture {arch}: {source}")]
    AddArch {
        /// The architecture, as the profile names it.
        arch: Arch,
        /// The cause.
        source: LibError,
    },
    /// An architecture this build's libseccomp binding cannot name.
    #[error("seccomp architecture {0} is not supported by this runtime's libseccomp")]
    UnsupportedArch(Arch),
    /// A filter flag this build's libseccomp binding cannot set.
    #[error("seccomp flag {0} is not supported by this runtime's libseccomp")]
    UnsupportedFlag(LinuxSeccompFilterFlag),
    /// A filter flag is not supported by this libseccomp or kernel.
    #[error("unsupported seccomp flag {flag}: {source}")]
    Flag {
        /// The flag, as the profile names it.
        flag: LinuxSeccompFilterFlag,
        /// The cause.
        source: LibError,
    },
    /// A filter attribute could not be set.
    #[error("set filter attribute {attr}: {source}")]
    Attribute {
        /// The libseccomp attribute.
        attr: &'static str,
        /// The cause.
        source: LibError,
    },
    /// A rule names the empty string as syscall.
    #[error("empty syscall name in a rule for {action}")]
    EmptySyscallName {
        /// The rule's action.
        action: LinuxSeccompAction,
    },
    /// A condition names an argument a syscall cannot have.
    #[error(
        "rule for \"{syscall}\": argument index {index} is out of range (0..{MAX_SYSCALL_ARGS})"
    )]
    ArgIndex {
        /// The rule's first syscall name.
        syscall: String,
        /// The index in the profile.
        index: usize,
    },
    /// libseccomp rejected a rule.
    #[error("add rule for \"{syscall}\": {source}")]
    AddRule {
        /// The syscall.
        syscall: String,
        /// The cause.
        source: LibError,
    },
    /// libseccomp could not export the compiled program.
    #[error("export seccomp program: {source}")]
    Export {
        /// The cause.
        source: std::io::Error,
    },
    /// Loading the filter into the kernel failed.
    #[error("load seccomp filter: {source}")]
    Load {
        /// The kernel's errno.
        source: std::io::Error,
    },
}

/// A seccomp filter compiled in the runtime's parent process (before clone): the classic BPF
/// program libseccomp generates, loaded in the child right before exec with one syscall.
pub struct Filter {
    program: Vec<libc::sock_filter>,
    flags: u32,
    needs_listener: bool,
    skipped: Vec<String>,
}

impl fmt::Debug for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &self.flags)
            .field("needs_listener", &self.needs_listener)
            .field("skipped", &self.skipped)
            .finish()
    }
}

/// The libseccomp context while rules are added.
struct Compiler {
    ctx: ScmpFilterContext,
    needs_listener: bool,
    skipped: Vec<String>,
}

/// Compiles an OCI seccomp profile into a filter. Nothing is loaded.
pub fn compile(spec: &LinuxSeccomp) -> Result<Filter, SeccompError> {
    let (compiler, flags) = build(spec)?;
    Ok(Filter {
        program: export(&compiler.ctx)?,
        flags,
        needs_listener: compiler.needs_listener,
        skipped: compiler.skipped,
    })
}

/// The libseccomp context with every rule, and the kernel's load flags.
fn build(spec: &LinuxSeccomp) -> Result<(Compiler, u32), SeccompError> {
    let default_action = to_action(spec.default_action(), spec.default_errno_ret())
        .map_err(|value| errno_out_of_range("default action".to_owned(), value))?;
    if default_action == ScmpAction::Notify {
        return Err(SeccompError::NotifyAsDefault);
    }
    let mut ctx = ScmpFilterContext::new_filter(default_action).map_err(|source| {
        SeccompError::NewFilter {
            action: spec.default_action(),
            source,
        }
    })?;
    add_architectures(
        &mut ctx,
        spec.architectures().as_deref().unwrap_or_default(),
    )?;
    let mut flags = kernel_flags(spec.flags().as_deref().unwrap_or_default())?;
    let rules = spec.syscalls().as_deref().unwrap_or_default();
    if rules.len() > OPTIMIZE_ABOVE_RULES {
        // Best effort, as in runc: older libseccomp has no binary tree.
        ctx.set_ctl_optimize(OPTIMIZE_BINARY_TREE).ok();
    }
    let mut compiler = Compiler {
        ctx,
        needs_listener: false,
        skipped: Vec::new(),
    };
    for rule in rules {
        compiler.add_rule(rule, default_action)?;
    }
    if compiler.needs_listener {
        flags |= seccomp_flags::NEW_LISTENER;
        if flags & seccomp_flags::TSYNC != 0 {
            // The kernel refuses TSYNC with a listener unless failures are reported as ESRCH.
            flags |= seccomp_flags::TSYNC_ESRCH;
        }
    }
    Ok((compiler, flags))
}

/// The program libseccomp generates for `ctx`, read back through a memfd.
fn export(ctx: &ScmpFilterContext) -> Result<Vec<libc::sock_filter>, SeccompError> {
    let err = |source: std::io::Error| SeccompError::Export { source };
    let fd = nix::sys::memfd::memfd_create(c"berth-seccomp", MemFdCreateFlag::MFD_CLOEXEC)
        .map_err(|e| err(e.into()))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&mut file)
        .map_err(|e| err(std::io::Error::other(e.to_string())))?;
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0)).map_err(err)?;
    file.read_to_end(&mut bytes).map_err(err)?;
    Ok(decode_program(&bytes))
}

/// `struct sock_filter` entries from their native-endian bytes (8 each).
pub(crate) fn decode_program(bytes: &[u8]) -> Vec<libc::sock_filter> {
    bytes
        .chunks_exact(8)
        .map(|b| libc::sock_filter {
            code: u16::from_ne_bytes([b[0], b[1]]),
            jt: b[2],
            jf: b[3],
            k: u32::from_ne_bytes([b[4], b[5], b[6], b[7]]),
        })
        .collect()
}

/// The native-endian bytes of `program` (the inverse of [`decode_program`]).
pub(crate) fn encode_program(program: &[libc::sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.extend_from_slice(&[i.jt, i.jf]);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}

impl Filter {
    /// Load into the calling process. If the profile asks for SCMP_ACT_NOTIFY, returns the
    /// kernel's listener fd (close-on-exec) to hand to listenerPath.
    ///
    /// Meant for the child between clone and exec: one `seccomp` syscall, no allocation but on
    /// error.
    pub fn load(&self) -> Result<Option<OwnedFd>, SeccompError> {
        berth_sys::seccomp_set_mode_filter(&self.program, self.flags)
            .map_err(|source| SeccompError::Load { source })
    }

    /// Whether [`Filter::load`] will return a listener fd (some rule is SCMP_ACT_NOTIFY).
    pub fn needs_listener(&self) -> bool {
        self.needs_listener
    }

    /// Syscall names of the profile that libseccomp does not know on this architecture and
    /// that were skipped, in profile order.
    pub fn skipped_syscalls(&self) -> &[String] {
        &self.skipped
    }

    /// The parts the cache stores: program bytes, kernel flags, listener, skipped names.
    pub(crate) fn parts(&self) -> (Vec<u8>, u32, bool, &[String]) {
        (
            encode_program(&self.program),
            self.flags,
            self.needs_listener,
            &self.skipped,
        )
    }

    /// A filter from the cache's parts.
    pub(crate) fn from_parts(
        program: &[u8],
        flags: u32,
        needs_listener: bool,
        skipped: Vec<String>,
    ) -> Filter {
        Filter {
            program: decode_program(program),
            flags,
            needs_listener,
            skipped,
        }
    }
}

impl Compiler {
    fn add_rule(&mut self, rule: &LinuxSyscall, default: ScmpAction) -> Result<(), SeccompError> {
        let label = rule.names().first().map_or("", String::as_str);
        let action = to_action(rule.action(), rule.errno_ret())
            .map_err(|value| errno_out_of_range(format!("rule for \"{label}\""), value))?;
        if rule.names().iter().any(String::is_empty) {
            return Err(SeccompError::EmptySyscallName {
                action: rule.action(),
            });
        }
        let conditions = condition_groups(label, rule.args().as_deref().unwrap_or_default())?;
        if action == default {
            return Ok(());
        }
        for name in rule.names() {
            let Ok(syscall) = ScmpSyscall::from_name(name) else {
                self.skipped.push(name.clone());
                continue;
            };
            if action == ScmpAction::Notify {
                ensure_notify_supported(name)?;
            }
            for group in &conditions {
                self.ctx
                    .add_rule_conditional(action, syscall, group)
                    .map_err(|source| SeccompError::AddRule {
                        syscall: name.clone(),
                        source,
                    })?;
            }
            self.needs_listener |= action == ScmpAction::Notify;
        }
        Ok(())
    }
}

fn ensure_notify_supported(syscall: &str) -> Result<(), SeccompError> {
    let api = libseccomp::get_api();
    if api < NOTIFY_MIN_API {
        return Err(SeccompError::NotifyUnsupported {
            syscall: syscall.to_owned(),
            api,
        });
    }
    Ok(())
}

fn errno_out_of_range(what: String, value: u32) -> SeccompError {
    SeccompError::ErrnoOutOfRange { what, value }
}

/// The libseccomp action of an OCI action; `Err(errno)` if the errno does not fit.
fn to_action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction, u32> {
    let ret = || {
        let value = errno_ret.unwrap_or(DEFAULT_ERRNO);
        u16::try_from(value).map_err(|_| value)
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(ret()?)),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(ret()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

fn to_arch(arch: Arch) -> Result<ScmpArch, SeccompError> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 | Arch::ScmpArchM68k | Arch::ScmpArchSh | Arch::ScmpArchSheb => {
            return Err(SeccompError::UnsupportedArch(arch))
        }
    })
}

fn add_architectures(ctx: &mut ScmpFilterContext, arches: &[Arch]) -> Result<(), SeccompError> {
    for &arch in arches {
        // Ok(false) means it is already there (the native one): fine.
        ctx.add_arch(to_arch(arch)?)
            .map_err(|source| SeccompError::AddArch { arch, source })?;
    }
    Ok(())
}

fn kernel_flags(flags: &[LinuxSeccompFilterFlag]) -> Result<u32, SeccompError> {
    let mut bits = 0;
    for &flag in flags {
        bits |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => seccomp_flags::TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => seccomp_flags::LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => seccomp_flags::SPEC_ALLOW,
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
                return Err(SeccompError::UnsupportedFlag(flag))
            }
        };
    }
    Ok(bits)
}

/// The conditions of a rule, one group per libseccomp rule: all conditions AND'ed in one group,
/// or, if an argument index repeats, one group per condition (runc's fallback).
fn condition_groups(
    syscall: &str,
    args: &[LinuxSeccompArg],
) -> Result<Vec<Vec<ScmpArgCompare>>, SeccompError> {
    let mut per_index = [0_usize; MAX_SYSCALL_ARGS];
    let mut conditions = Vec::with_capacity(args.len());
    for arg in args {
        let index = arg.index();
        let count = per_index
            .get_mut(index)
            .ok_or_else(|| SeccompError::ArgIndex {
                syscall: syscall.to_owned(),
                index,
            })?;
        *count += 1;
        conditions.push(to_condition(arg));
    }
    if per_index.iter().any(|&count| count > 1) {
        Ok(conditions.into_iter().map(|c| vec![c]).collect())
    } else {
        Ok(vec![conditions])
    }
}

/// One condition; the index must already be checked (< 6). For SCMP_CMP_MASKED_EQ `value` is
/// the mask and `valueTwo` the datum, as in the runtime spec.
fn to_condition(arg: &LinuxSeccompArg) -> ScmpArgCompare {
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    // The index is below MAX_SYSCALL_ARGS (6), so it fits.
    let index = u32::try_from(arg.index()).unwrap_or(u32::MAX);
    ScmpArgCompare::new(index, op, datum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsFd, AsRawFd};
    use std::process::Command;

    /// A fragment shaped like Docker's default profile.
    const DOCKER_LIKE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": 1,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {
                "names": ["read", "write", "exit", "exit_group", "openat", "close", "fstat",
                          "mmap", "munmap", "brk", "rt_sigaction", "rt_sigreturn", "execve",
                          "futex", "getpid", "berth_no_such_syscall", "landlock_no_such_call"],
                "action": "SCMP_ACT_ALLOW"
            },
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]
            },
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]
            },
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]
            },
            {
                "names": ["clone"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]
            },
            {
                "names": ["clone3"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 38
            },
            {
                "names": ["socket"],
                "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_NE"},
                         {"index": 1, "value": 2, "op": "SCMP_CMP_EQ"}]
            },
            {
                "names": ["ptrace"],
                "action": "SCMP_ACT_ERRNO"
            }
        ]
    }"#;

    fn profile(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("test profile parses")
    }

    fn pfc(filter: &Compiler) -> String {
        let mut file = tempfile::tempfile().expect("tempfile");
        filter.ctx.export_pfc(&mut file).expect("export pfc");
        let mut text = String::new();
        use std::io::{Read, Seek};
        file.rewind().expect("rewind");
        file.read_to_string(&mut text).expect("read pfc");
        text
    }

    #[test]
    fn compiles_docker_like_profile() {
        let filter = build(&profile(DOCKER_LIKE)).expect("compiles").0;
        assert!(!filter.needs_listener);
        assert_eq!(
            filter.ctx.get_act_default().expect("default"),
            ScmpAction::Errno(1)
        );
        for arch in [
            ScmpArch::X8664,
            ScmpArch::X86,
            ScmpArch::X32,
            ScmpArch::native(),
        ] {
            assert!(filter.ctx.is_arch_present(arch).expect("arch"), "{arch:?}");
        }
        let text = pfc(&filter);
        for name in [
            "read",
            "exit_group",
            "personality",
            "clone",
            "clone3",
            "socket",
        ] {
            assert!(
                text.contains(&format!("\"{name}\"")),
                "{name} missing:\n{text}"
            );
        }
        // ptrace's rule is ERRNO(EPERM), the default action: skipped, not an error.
        assert!(
            !text.contains("\"ptrace\""),
            "redundant rule was added:\n{text}"
        );
        assert!(text.contains("action ERRNO(38)"), "{text}");
        assert_eq!(
            filter.skipped,
            ["berth_no_such_syscall", "landlock_no_such_call"]
        );
    }

    #[test]
    fn unknown_syscall_names_are_skipped() {
        let filter = build(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["berth_future_syscall", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect("compiles")
        .0;
        assert_eq!(filter.skipped, ["berth_future_syscall"]);
        assert!(pfc(&filter).contains("\"mkdirat\""));
    }

    #[test]
    fn errno_defaults_to_eperm() {
        let filter = build(&profile(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#))
            .expect("compiles")
            .0;
        assert_eq!(
            filter.ctx.get_act_default().expect("default"),
            ScmpAction::Errno(libc::EPERM)
        );
        let filter = build(&profile(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 38}"#,
        ))
        .expect("compiles")
        .0;
        assert_eq!(
            filter.ctx.get_act_default().expect("default"),
            ScmpAction::Errno(38)
        );

        let filter = build(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdirat"], "action": "SCMP_ACT_ERRNO"},
                {"names": ["rmdir"], "action": "SCMP_ACT_TRACE"},
                {"names": ["chdir"], "action": "SCMP_ACT_TRACE", "errnoRet": 7}]}"#,
        ))
        .expect("compiles")
        .0;
        let text = pfc(&filter);
        assert!(text.contains("action ERRNO(1)"), "{text}");
        assert!(text.contains("action TRACE(1)"), "{text}");
        assert!(text.contains("action TRACE(7)"), "{text}");
    }

    #[test]
    fn actions_map_like_runc() {
        use LinuxSeccompAction as A;
        assert_eq!(to_action(A::ScmpActKill, None), Ok(ScmpAction::KillThread));
        assert_eq!(
            to_action(A::ScmpActKillThread, None),
            Ok(ScmpAction::KillThread)
        );
        assert_eq!(
            to_action(A::ScmpActKillProcess, None),
            Ok(ScmpAction::KillProcess)
        );
        assert_eq!(to_action(A::ScmpActTrap, None), Ok(ScmpAction::Trap));
        assert_eq!(
            to_action(A::ScmpActErrno, Some(38)),
            Ok(ScmpAction::Errno(38))
        );
        assert_eq!(to_action(A::ScmpActTrace, None), Ok(ScmpAction::Trace(1)));
        assert_eq!(to_action(A::ScmpActLog, Some(5)), Ok(ScmpAction::Log));
        assert_eq!(to_action(A::ScmpActNotify, None), Ok(ScmpAction::Notify));
        assert_eq!(to_action(A::ScmpActAllow, None), Ok(ScmpAction::Allow));
        assert_eq!(to_action(A::ScmpActErrno, Some(70_000)), Err(70_000));
    }

    #[test]
    fn flags_become_kernel_flags() {
        let filter = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC",
                "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]}"#,
        ))
        .expect("compiles");
        assert_eq!(
            filter.flags,
            seccomp_flags::TSYNC | seccomp_flags::LOG | seccomp_flags::SPEC_ALLOW
        );
    }

    #[test]
    fn flag_libseccomp_cannot_set_is_refused_by_name() {
        // WAIT_KILLABLE_RECV needs libseccomp 2.6; the 0.3 binding cannot set it.
        let profile = serde_json::from_str::<LinuxSeccomp>(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
        )
        .unwrap();
        let error = compile(&profile).expect_err("the flag cannot be set");
        assert!(
            error
                .to_string()
                .contains("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"),
            "{error}"
        );
    }

    #[test]
    fn same_index_args_become_separate_rules() {
        let args: Vec<LinuxSeccompArg> = serde_json::from_str(
            r#"[{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]"#,
        )
        .expect("args parse");
        let groups = condition_groups("kill", &args).expect("groups");
        assert_eq!(groups.len(), 3);
        assert!(groups.iter().all(|g| g.len() == 1));

        let groups = condition_groups("kill", &args[1..]).expect("groups");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].len(), 2);

        assert_eq!(condition_groups("kill", &[]).expect("groups"), vec![vec![]]);

        let filter = build(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
                "action": "SCMP_ACT_ERRNO", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                {"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}]}]}"#,
        ))
        .expect("compiles")
        .0;
        assert!(pfc(&filter).contains("\"kill\""));
    }

    #[test]
    fn masked_equal_uses_value_as_mask() {
        let arg: LinuxSeccompArg = serde_json::from_str(
            r#"{"index": 2, "value": 255, "valueTwo": 16, "op": "SCMP_CMP_MASKED_EQ"}"#,
        )
        .expect("arg parses");
        assert_eq!(
            to_condition(&arg),
            ScmpArgCompare::new(2, ScmpCompareOp::MaskedEqual(255), 16)
        );
    }

    #[test]
    fn invalid_profiles_are_errors_with_context() {
        let error = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["personality"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        ))
        .expect_err("index 6");
        assert_eq!(
            error.to_string(),
            "rule for \"personality\": argument index 6 is out of range (0..6)"
        );

        let error = compile(&profile(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#))
            .expect_err("notify default");
        assert!(matches!(error, SeccompError::NotifyAsDefault), "{error}");

        let error = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "errnoRet": 65536}]}"#,
        ))
        .expect_err("errno range");
        assert_eq!(
            error.to_string(),
            "rule for \"read\": errno 65536 is out of range (0..=65535)"
        );

        let error = compile(&profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [""],
                "action": "SCMP_ACT_ERRNO"}]}"#,
        ))
        .expect_err("empty name");
        assert_eq!(
            error.to_string(),
            "empty syscall name in a rule for SCMP_ACT_ERRNO"
        );
    }

    #[test]
    fn notify_rule_needs_listener() {
        let spec = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        if libseccomp::get_api() < NOTIFY_MIN_API {
            eprintln!(
                "skipped: libseccomp API level {} < {NOTIFY_MIN_API}",
                libseccomp::get_api()
            );
            return;
        }
        assert!(compile(&spec).expect("compiles").needs_listener());
        // A notify rule only for unknown syscalls adds nothing: no listener.
        let spec = profile(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["berth_future_syscall"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(!compile(&spec).expect("compiles").needs_listener());
    }

    // ---- Real kernel: each test re-runs itself in a child process, which loads the filter. ----

    const CHILD_ENV: &str = "BERTH_SECCOMP_CHILD";
    const CHILD_OK: &str = "berth-seccomp-child-ok";

    /// In the child (env guard set to `test`), runs `body` and exits; in the parent, runs this
    /// test binary filtered to `test` and asserts the child passed.
    fn in_child_process(test: &str, body: fn() -> Result<(), String>) {
        if std::env::var(CHILD_ENV).as_deref() == Ok(test) {
            match body() {
                Ok(()) => {
                    eprintln!("{CHILD_OK}");
                    std::process::exit(0);
                }
                Err(message) => {
                    eprintln!("child failed: {message}");
                    std::process::exit(1);
                }
            }
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        if !status.contains("Seccomp:") {
            eprintln!("skipped {test}: the kernel has no seccomp filter support");
            return;
        }
        let module = module_path!();
        let module = module.split_once("::").map_or(module, |(_, rest)| rest);
        let output = Command::new(std::env::current_exe().expect("current exe"))
            .args([
                &format!("{module}::{test}"),
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, test)
            .output()
            .expect("run child");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.contains(CHILD_OK),
            "child {test}: {}\nstdout:\n{}\nstderr:\n{stderr}",
            output.status,
            String::from_utf8_lossy(&output.stdout)
        );
    }

    fn load_in_child(json: &str) -> Result<(Filter, Option<OwnedFd>), String> {
        let spec: LinuxSeccomp = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let filter = compile(&spec).map_err(|e| e.to_string())?;
        // Without CAP_SYS_ADMIN the kernel needs NNP; the runtime sets it itself, so does this.
        nix::sys::prctl::set_no_new_privs().map_err(|e| format!("set nnp: {e}"))?;
        let listener = filter.load().map_err(|e| e.to_string())?;
        Ok((filter, listener))
    }

    fn scratch_dir(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("berth-seccomp-{tag}-{}", std::process::id()))
    }

    #[test]
    fn kernel_enforces_errno_rules() {
        in_child_process("kernel_enforces_errno_rules", || {
            let (_filter, listener) = load_in_child(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
                     "args": [{"index": 0, "value": 4294967295, "valueTwo": 4294967295,
                               "op": "SCMP_CMP_MASKED_EQ"}]}]}"#,
            )?;
            if listener.is_some() {
                return Err("listener without a notify rule".into());
            }
            // Loading never sets no_new_privs itself (the runtime does when the spec asks); as
            // root the filter loads without it.
            let status = std::fs::read_to_string("/proc/self/status").map_err(|e| e.to_string())?;
            if nix::unistd::geteuid().is_root() && !status.contains("NoNewPrivs:\t0") {
                return Err("loading the filter set no_new_privs".into());
            }
            let dir = scratch_dir("mkdir");
            let result = std::fs::create_dir(&dir);
            if result.is_ok() {
                std::fs::remove_dir(&dir).ok();
            }
            match result {
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => {}
                other => return Err(format!("mkdir: expected EPERM, got {other:?}")),
            }
            match nix::sys::personality::get() {
                Err(nix::errno::Errno::ENOSYS) => {}
                other => {
                    return Err(format!(
                        "personality(0xffffffff): expected ENOSYS, got {other:?}"
                    ))
                }
            }
            // The masked compare does not match other values: personality(current) is allowed.
            nix::sys::personality::set(nix::sys::personality::Persona::empty())
                .map_err(|e| format!("personality(0): {e}"))?;
            Ok(())
        });
    }

    #[test]
    fn kernel_notify_hands_over_listener() {
        if libseccomp::get_api() < NOTIFY_MIN_API {
            eprintln!(
                "skipped: libseccomp API level {} < {NOTIFY_MIN_API}",
                libseccomp::get_api()
            );
            return;
        }
        in_child_process("kernel_notify_hands_over_listener", || {
            let (_filter, listener) = load_in_child(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]}"#,
            )?;
            let listener = listener.ok_or("no listener fd")?;
            let fd_flags = nix::fcntl::fcntl(listener.as_raw_fd(), nix::fcntl::F_GETFD)
                .map_err(|e| format!("F_GETFD: {e}"))?;
            if fd_flags & libc::FD_CLOEXEC == 0 {
                return Err("listener is not close-on-exec".into());
            }
            // The new thread inherits the filter; its mkdir waits for our answer.
            let dir = scratch_dir("notify");
            let mkdir = std::thread::spawn(move || std::fs::create_dir(dir));
            let mut fds = [nix::poll::PollFd::new(
                listener.as_fd(),
                nix::poll::PollFlags::POLLIN,
            )];
            let ready = nix::poll::poll(&mut fds, 10_000_u16).map_err(|e| format!("poll: {e}"))?;
            if ready != 1 {
                return Err("no notification within 10 s".into());
            }
            let request = libseccomp::ScmpNotifReq::receive(listener.as_raw_fd())
                .map_err(|e| format!("receive: {e}"))?;
            let name = request.data.syscall.get_name().map_err(|e| e.to_string())?;
            if !name.starts_with("mkdir") {
                return Err(format!("notified for {name}"));
            }
            libseccomp::ScmpNotifResp::new_error(
                request.id,
                -libc::EACCES,
                libseccomp::ScmpNotifRespFlags::empty(),
            )
            .respond(listener.as_raw_fd())
            .map_err(|e| format!("respond: {e}"))?;
            match mkdir.join() {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EACCES) => Ok(()),
                other => Err(format!(
                    "mkdir: expected EACCES from the agent, got {other:?}"
                )),
            }
        });
    }
}
