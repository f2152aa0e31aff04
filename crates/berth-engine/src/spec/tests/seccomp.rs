//! seccomp: docker's profile format converted for a container (moby's `setupSeccomp`).

use std::time::Instant;

use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::support::{opts, spec};
use crate::spec::seccomp::{KernelVersion, Profile, SeccompError, Target};
use crate::spec::{RunOptions, DEFAULT_CAPABILITIES};

fn default_caps() -> Vec<String> {
    DEFAULT_CAPABILITIES
        .iter()
        .map(|c| (*c).to_owned())
        .collect()
}

fn convert(caps: &[String], arch: &str, kernel: KernelVersion) -> LinuxSeccomp {
    let target = Target { caps, arch, kernel };
    Profile::docker_default()
        .expect("default profile")
        .convert(&target)
        .expect("convert")
        .expect("a profile")
}

fn amd64(caps: &[String]) -> LinuxSeccomp {
    convert(caps, "amd64", KernelVersion(6, 18, 0))
}

/// The rules naming `name`: (action, errno, args as (index, value, op)).
type Rule = (
    LinuxSeccompAction,
    Option<u32>,
    Vec<(usize, u64, LinuxSeccompOperator)>,
);

fn rules(s: &LinuxSeccomp, name: &str) -> Vec<Rule> {
    s.syscalls()
        .iter()
        .flatten()
        .filter(|r| r.names().iter().any(|n| n == name))
        .map(|r| {
            let args = r
                .args()
                .iter()
                .flatten()
                .map(|a| (a.index(), a.value(), a.op()))
                .collect();
            (r.action(), r.errno_ret(), args)
        })
        .collect()
}

/// Whether `name` is allowed by a rule without argument filters.
fn allowed(s: &LinuxSeccomp, name: &str) -> bool {
    rules(s, name)
        .iter()
        .any(|(action, _, args)| *action == LinuxSeccompAction::ScmpActAllow && args.is_empty())
}

fn custom(json: &str) -> Result<Option<LinuxSeccomp>, SeccompError> {
    let caps = default_caps();
    let target = Target {
        caps: &caps,
        arch: "amd64",
        kernel: KernelVersion(5, 10, 0),
    };
    Profile::from_json(json, "test.json")?.convert(&target)
}

#[test]
fn default_action_and_errno() {
    let s = amd64(&default_caps());
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(s.default_errno_ret(), Some(1));
    assert!(allowed(&s, "read") && allowed(&s, "execveat") && allowed(&s, "fcntl"));
}

#[test]
fn sys_admin_group_only_with_cap_sys_admin() {
    let caps = default_caps();
    let s = amd64(&caps);
    for name in ["unshare", "mount", "setns", "bpf", "umount2", "clone3"] {
        assert!(!allowed(&s, name), "{name} without CAP_SYS_ADMIN");
    }
    // Without the cap: clone only without namespace flags, clone3 fails with ENOSYS.
    assert_eq!(
        rules(&s, "clone"),
        [(
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![(0, 2_114_060_288, LinuxSeccompOperator::ScmpCmpMaskedEq)]
        )]
    );
    assert_eq!(
        rules(&s, "clone3"),
        [(LinuxSeccompAction::ScmpActErrno, Some(38), vec![])]
    );
    let mut admin = caps.clone();
    admin.push("CAP_SYS_ADMIN".into());
    let s = amd64(&admin);
    for name in [
        "unshare", "mount", "setns", "bpf", "umount2", "clone", "clone3",
    ] {
        assert!(allowed(&s, name), "{name} with CAP_SYS_ADMIN");
    }
    assert_eq!(
        rules(&s, "clone").len(),
        1,
        "the masked clone rule is excluded"
    );
    assert_eq!(
        rules(&s, "clone3").len(),
        1,
        "the ENOSYS clone3 rule is excluded"
    );
    // Other single-cap groups.
    assert!(!allowed(&amd64(&caps), "reboot"));
    admin.push("CAP_SYS_BOOT".into());
    assert!(allowed(&amd64(&admin), "reboot"));
    assert!(
        allowed(&amd64(&caps), "chroot"),
        "CAP_SYS_CHROOT is a default"
    );
}

#[test]
fn min_kernel_gates_rules() {
    let caps = default_caps();
    let old = convert(&caps, "amd64", KernelVersion(4, 7, 99));
    let new = convert(&caps, "amd64", KernelVersion(4, 8, 0));
    for name in ["ptrace", "process_vm_readv", "process_vm_writev"] {
        assert!(!allowed(&old, name), "{name} on 4.7");
        assert!(allowed(&new, name), "{name} on 4.8");
    }
    // excludes.minKernel drops a rule from that kernel on; a bad minKernel is an error.
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["a"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.10"}},
        {"names":["b"],"action":"SCMP_ACT_ALLOW","excludes":{"minKernel":"5.11"}}]}"#;
    let s = custom(json).expect("convert").expect("profile");
    assert!(!allowed(&s, "a") && allowed(&s, "b"));
    let json = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["a"],"action":"SCMP_ACT_ALLOW","includes":{"minKernel":"new"}}]}"#;
    let err = custom(json).expect_err("bad minKernel");
    assert_eq!(
        err.to_string(),
        "invalid minKernel \"new\" in the seccomp profile"
    );
}

#[test]
fn kernel_versions_parse_like_moby() {
    assert_eq!(
        KernelVersion::parse("6.18.0-1-amd64"),
        Some(KernelVersion(6, 18, 0))
    );
    assert_eq!(KernelVersion::parse("4.8"), Some(KernelVersion(4, 8, 0)));
    assert_eq!(
        KernelVersion::parse("5.15.167.4-microsoft-standard-WSL2"),
        Some(KernelVersion(5, 15, 167))
    );
    assert_eq!(KernelVersion::parse("x"), None);
    assert!(KernelVersion::running().is_ok());
}

#[test]
fn architectures_follow_the_native_arch() {
    let caps = default_caps();
    let kernel = KernelVersion(6, 18, 0);
    let s = convert(&caps, "amd64", kernel);
    assert_eq!(
        s.architectures(),
        &Some(vec![
            Arch::ScmpArchX86_64,
            Arch::ScmpArchX86,
            Arch::ScmpArchX32
        ])
    );
    assert!(allowed(&s, "arch_prctl") && allowed(&s, "modify_ldt"));
    assert!(!allowed(&s, "set_tls") && !allowed(&s, "s390_runtime_instr"));
    let s = convert(&caps, "arm64", kernel);
    assert_eq!(
        s.architectures(),
        &Some(vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm])
    );
    assert!(allowed(&s, "set_tls") && !allowed(&s, "arch_prctl"));
    // s390x: clone's flags are its second argument.
    let s = convert(&caps, "s390x", kernel);
    assert_eq!(
        s.architectures(),
        &Some(vec![Arch::ScmpArchS390x, Arch::ScmpArchS390])
    );
    assert_eq!(
        rules(&s, "clone"),
        [(
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![(1, 2_114_060_288, LinuxSeccompOperator::ScmpCmpMaskedEq)]
        )]
    );
    // riscv64's entry has null sub-architectures; an unknown arch gets none (native).
    let s = convert(&caps, "riscv64", kernel);
    assert_eq!(s.architectures(), &Some(vec![Arch::ScmpArchRiscv64]));
    assert_eq!(convert(&caps, "sparc", kernel).architectures(), &None);
}

#[test]
fn argument_filters_are_copied() {
    let s = amd64(&default_caps());
    let personality: Vec<u64> = rules(&s, "personality")
        .into_iter()
        .map(|(action, _, args)| {
            assert_eq!(action, LinuxSeccompAction::ScmpActAllow);
            assert_eq!(args.len(), 1);
            assert_eq!(args[0].0, 0);
            assert_eq!(args[0].2, LinuxSeccompOperator::ScmpCmpEq);
            args[0].1
        })
        .collect();
    assert_eq!(personality, [0, 8, 131_072, 131_080, 4_294_967_295]);
    assert_eq!(
        rules(&s, "socket"),
        [(
            LinuxSeccompAction::ScmpActAllow,
            None,
            vec![(0, 40, LinuxSeccompOperator::ScmpCmpNe)]
        )]
    );
    let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"kill",
        "action":"SCMP_ACT_ERRNO","errnoRet":1,
        "args":[{"index":1,"value":9,"valueTwo":3,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#;
    let s = custom(json).expect("convert").expect("profile");
    let kill = s.syscalls().clone().unwrap_or_default();
    assert_eq!(kill.len(), 1);
    assert_eq!(kill[0].names(), &["kill".to_owned()]);
    let arg = kill[0].args().clone().unwrap_or_default()[0];
    assert_eq!((arg.index(), arg.value(), arg.value_two()), (1, 9, Some(3)));
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!(
        s.architectures(),
        &None,
        "neither architectures nor archMap"
    );
}

#[test]
fn custom_profiles_follow_mobys_rules() {
    assert_eq!(
        custom("{}").expect("empty"),
        None,
        "an empty profile is none"
    );
    let both = r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86"],
        "archMap":[{"architecture":"SCMP_ARCH_X86_64","subArchitectures":[]}]}"#;
    assert!(matches!(
        custom(both),
        Err(SeccompError::ArchitecturesAndArchMap)
    ));
    let names = r#"{"defaultAction":"SCMP_ACT_ERRNO",
        "syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ALLOW"}]}"#;
    assert!(matches!(custom(names), Err(SeccompError::NameAndNames)));
    let explicit = r#"{"defaultAction":"SCMP_ACT_LOG","architectures":["SCMP_ARCH_X86"]}"#;
    let s = custom(explicit).expect("convert").expect("profile");
    assert_eq!(s.architectures(), &Some(vec![Arch::ScmpArchX86]));
    let err = custom(r#"{"defaultAction":"SCMP_ACT_NOPE"}"#).expect_err("bad action");
    let msg = err.to_string();
    assert!(
        msg.starts_with("decoding seccomp profile test.json: unknown variant `SCMP_ACT_NOPE`"),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
}

fn spec_seccomp(o: &RunOptions) -> Option<LinuxSeccomp> {
    spec(o).linux().as_ref().and_then(|l| l.seccomp().clone())
}

#[test]
fn spec_gets_the_default_profile_for_its_final_capabilities() {
    let s = spec_seccomp(&opts()).expect("default profile");
    assert!(!allowed(&s, "unshare"));
    let s = spec_seccomp(&RunOptions {
        cap_add: vec!["sys_admin".into()],
        ..opts()
    })
    .expect("profile");
    assert!(allowed(&s, "unshare"));
    let s = spec_seccomp(&RunOptions {
        cap_drop: vec!["ALL".into()],
        ..opts()
    })
    .expect("profile");
    assert!(!allowed(&s, "chroot"), "CAP_SYS_CHROOT dropped");
    let profile = Profile::from_json(r#"{"defaultAction":"SCMP_ACT_LOG"}"#, "p.json");
    let s = spec_seccomp(&RunOptions {
        seccomp_profile: Some(profile.expect("profile")),
        ..opts()
    })
    .expect("profile");
    assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActLog);
}

#[test]
fn unconfined_and_privileged_give_no_seccomp() {
    let custom = Profile::from_json(r#"{"defaultAction":"SCMP_ACT_LOG"}"#, "p.json").ok();
    for o in [
        RunOptions {
            seccomp_unconfined: true,
            ..opts()
        },
        RunOptions {
            privileged: true,
            ..opts()
        },
        RunOptions {
            privileged: true,
            seccomp_profile: custom,
            ..opts()
        },
    ] {
        assert_eq!(spec_seccomp(&o), None);
    }
}

#[test]
fn conversion_cost() {
    let caps = default_caps();
    let started = Instant::now();
    let json = include_str!("../seccomp_default.json");
    std::hint::black_box(Profile::from_json(json, "default").expect("parse"));
    let parse = started.elapsed();
    let parsed = Profile::docker_default().expect("default");
    let target = Target::host(&caps).expect("host");
    let rounds: u32 = 1000;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(parsed.convert(&target).expect("convert"));
    }
    let convert = started.elapsed() / rounds;
    let started = Instant::now();
    for _ in 0..rounds {
        std::hint::black_box(Profile::docker_default().expect("default"));
    }
    let cached = started.elapsed() / rounds;
    println!("seccomp: one parse {parse:?}, cached lookup {cached:?}, conversion {convert:?}");
}
