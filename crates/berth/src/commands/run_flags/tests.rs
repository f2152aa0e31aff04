//! Flag lines through clap, into `CreateOptions`, and docker's errors for bad values.

use std::io::Write;

use berth_engine::containers::CreateOptions;
use berth_engine::spec::parse::{DeviceSpec, SecurityOpt};
use berth_engine::spec::parse_mount::{VolumeSource, VolumeSpec};
use berth_engine::spec::{Propagation, TmpfsMount, Ulimit};
use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
#[command(disable_help_flag = true)]
struct T {
    #[command(flatten)]
    f: RunFlags,
    image: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    cmd: Vec<String>,
}

fn flags(line: &str) -> T {
    let args = std::iter::once("run").chain(line.split_whitespace());
    T::try_parse_from(args).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn lookup(key: &str) -> Option<String> {
    (key == "HOME").then(|| "/home/me".to_owned())
}

fn options(line: &str) -> Result<CreateOptions, FlagError> {
    let t = flags(line);
    create_options_with(&t.f, t.image, t.cmd, &lookup)
}

fn ok(line: &str) -> CreateOptions {
    options(line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

fn err(line: &str) -> String {
    match options(line) {
        Ok(o) => panic!("{line}: accepted: {o:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_struct_is_a_valid_clap_command() {
    use clap::CommandFactory;
    T::command().debug_assert();
}

#[test]
fn image_command_and_plain_flags() {
    let o = ok("-d -it --rm --name web -w /srv -u 1000:1000 -h box alpine sh -c true");
    assert_eq!(o.image, "alpine");
    assert_eq!(o.run.cmd, ["sh", "-c", "true"]);
    assert_eq!(o.name.as_deref(), Some("web"));
    assert!(o.auto_remove && o.run.tty && o.run.stdin_open);
    assert_eq!(o.run.workdir.as_deref(), Some("/srv"));
    assert_eq!(o.run.user.as_deref(), Some("1000:1000"));
    assert_eq!(o.run.hostname.as_deref(), Some("box"));
    assert!(flags("-d alpine").f.detach);
    // docker's booleans take =false.
    let t = flags("-t=false --rm=false --privileged=true alpine");
    assert!(!t.f.tty && !t.f.rm && t.f.privileged);
    // Flags after the image belong to the command.
    let o = ok("alpine ls -l --rm");
    assert_eq!(o.run.cmd, ["ls", "-l", "--rm"]);
    assert!(!o.auto_remove);
}

#[test]
fn entrypoint() {
    assert_eq!(ok("alpine").run.entrypoint, None);
    let t = T::try_parse_from(["run", "--entrypoint", "", "alpine"]).expect("parse");
    let o = create_options_with(&t.f, t.image, t.cmd, &lookup).expect("options");
    assert_eq!(o.run.entrypoint, Some(vec![]));
    let t = T::try_parse_from(["run", "--entrypoint", "/bin/sh -c", "alpine"]).expect("parse");
    let o = create_options_with(&t.f, t.image, t.cmd, &lookup).expect("options");
    assert_eq!(o.run.entrypoint, Some(vec!["/bin/sh -c".to_owned()]));
}

#[test]
fn env_files_come_before_e() {
    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    writeln!(file, "# comment\nA=file\nHOME\nB=file").expect("write");
    let path = file.path().display();
    let o = ok(&format!(
        "-e A=flag -e HOME -e UNSET --env-file {path} alpine"
    ));
    assert_eq!(
        o.run.env,
        [
            "A=file",
            "HOME=/home/me",
            "B=file",
            "A=flag",
            "HOME=/home/me",
            "UNSET"
        ]
    );
    assert_eq!(
        err("-e =x alpine"),
        r#"invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x"#
    );
    assert_eq!(
        err("--env-file /nonexistent/env alpine"),
        "open /nonexistent/env: no such file or directory"
    );
    let mut bad = tempfile::NamedTempFile::new().expect("tempfile");
    writeln!(bad, "A B=1").expect("write");
    assert_eq!(
        err(&format!("--env-file {} alpine", bad.path().display())),
        "poorly formatted environment: variable 'A B' contains whitespaces"
    );
}

#[test]
fn labels_from_files_then_flags() {
    let mut file = tempfile::NamedTempFile::new().expect("tempfile");
    writeln!(file, "a=file\nHOME\nc=file").expect("write");
    let o = ok(&format!(
        "-l a=flag --label b --label-file {} alpine",
        file.path().display()
    ));
    let labels: Vec<(&str, &str)> = o
        .run
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        labels,
        [("HOME", ""), ("a", "flag"), ("b", ""), ("c", "file")]
    );
    assert_eq!(
        err("-l =x alpine"),
        r#"invalid argument "=x" for "-l, --label" flag: invalid label '=x': empty name"#
    );
}

#[test]
fn memory_and_cpu() {
    let o = ok(
        "-m 1k --memory-swap -1 --memory-reservation 64m --memory-swappiness 0 \
                --oom-kill-disable --cpus 1.5 -c 512 --cpu-quota -1 --cpuset-cpus 0-1 \
                --cpuset-mems 0 --pids-limit -1 --blkio-weight 300 alpine",
    );
    let r = &o.run.resources;
    assert_eq!(r.memory, Some(1024));
    assert_eq!(r.memory_swap, Some(-1));
    assert_eq!(r.memory_reservation, Some(64 << 20));
    assert_eq!(r.memory_swappiness, Some(0));
    assert!(r.oom_kill_disable);
    assert_eq!(r.nano_cpus, Some(1_500_000_000));
    assert_eq!(r.cpu_shares, Some(512));
    assert_eq!(r.cpu_quota, Some(-1));
    assert_eq!(r.cpuset_cpus.as_deref(), Some("0-1"));
    assert_eq!(r.cpuset_mems.as_deref(), Some("0"));
    assert_eq!(r.pids_limit, Some(-1));
    assert_eq!(r.blkio_weight, Some(300));
    assert_eq!(
        ok("--cpu-period 50000 alpine").run.resources.cpu_period,
        Some(50000)
    );
    assert_eq!(ok("--memory=2g alpine").run.resources.memory, Some(2 << 30));
}

#[test]
fn throttles_ulimits_sysctls_devices() {
    let o = ok(
        "--device-read-bps /dev/sda:1mb --device-write-bps /dev/sda:2kb \
                --device-read-iops /dev/sda:100 --device-write-iops /dev/sdb:200 \
                --ulimit nofile=1024:2048 --ulimit nproc=-1 --sysctl net.ipv4.ip_forward=1 \
                --device /dev/fuse --device /dev/sda:/dev/xvda:r alpine",
    );
    assert_eq!(o.device_read_bps, [("/dev/sda".to_owned(), 1 << 20)]);
    assert_eq!(o.device_write_bps, [("/dev/sda".to_owned(), 2048)]);
    assert_eq!(o.device_read_iops, [("/dev/sda".to_owned(), 100)]);
    assert_eq!(o.device_write_iops, [("/dev/sdb".to_owned(), 200)]);
    assert_eq!(
        o.run.ulimits,
        [
            Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048
            },
            Ulimit {
                name: "nproc".into(),
                soft: u64::MAX,
                hard: u64::MAX
            }
        ]
    );
    assert_eq!(
        o.run.sysctls.get("net.ipv4.ip_forward").map(String::as_str),
        Some("1")
    );
    assert_eq!(
        o.devices,
        [
            DeviceSpec {
                host: "/dev/fuse".into(),
                container: "/dev/fuse".into(),
                permissions: "rwm".into()
            },
            DeviceSpec {
                host: "/dev/sda".into(),
                container: "/dev/xvda".into(),
                permissions: "r".into()
            }
        ]
    );
    // The engine's throttle lists are filled in by `create`.
    assert!(o.run.resources.device_read_bps.is_empty());
}

#[test]
fn volumes_mounts_tmpfs() {
    let o = ok(
        "-v /data:/data:ro -v cache:/cache --mount type=volume,target=/anon \
                --mount type=bind,src=/etc,dst=/host-etc,readonly \
                --mount type=tmpfs,target=/scratch,tmpfs-size=1m \
                --tmpfs /run:rw,size=64m --read-only alpine",
    );
    let targets: Vec<&str> = o.volumes.iter().map(|v| v.target.as_str()).collect();
    assert_eq!(targets, ["/data", "/cache", "/anon", "/host-etc"]);
    assert_eq!(
        o.volumes[0],
        VolumeSpec {
            source: VolumeSource::Bind("/data".into()),
            target: "/data".into(),
            read_only: true,
            propagation: Propagation::RPrivate,
            relabel: None,
            no_copy: false,
        }
    );
    assert_eq!(o.volumes[1].source, VolumeSource::Named("cache".into()));
    assert_eq!(o.volumes[2].source, VolumeSource::Anonymous);
    assert!(o.volumes[3].read_only);
    assert_eq!(
        o.run.tmpfs,
        [
            TmpfsMount {
                destination: "/run".into(),
                options: vec!["rw".into(), "size=64m".into()]
            },
            TmpfsMount {
                destination: "/scratch".into(),
                options: vec!["size=1m".into()]
            }
        ]
    );
    assert!(o.run.read_only);
}

#[test]
fn security_and_namespaces() {
    let o = ok("--privileged --cap-add NET_ADMIN --cap-drop CAP_CHOWN \
                --security-opt no-new-privileges --security-opt seccomp=unconfined \
                --security-opt seccomp=/p.json --security-opt label=disable \
                --userns host --group-add audio --group-add 44 \
                --net host --ipc container:db --pid host --uts host alpine");
    assert!(o.run.privileged && o.run.no_new_privileges && o.run.seccomp_unconfined);
    assert_eq!(o.run.cap_add, ["NET_ADMIN"]);
    assert_eq!(o.run.cap_drop, ["CAP_CHOWN"]);
    assert_eq!(
        o.security_opts,
        [
            SecurityOpt::NoNewPrivileges(true),
            SecurityOpt::SeccompUnconfined,
            SecurityOpt::SeccompProfile("/p.json".into()),
            SecurityOpt::Other("label=disable".into())
        ]
    );
    assert_eq!(o.userns.as_deref(), Some("host"));
    assert_eq!(o.group_add, ["audio", "44"]);
    assert_eq!(
        (
            o.network.as_str(),
            o.ipc.as_str(),
            o.pid.as_str(),
            o.uts.as_str()
        ),
        ("host", "container:db", "host", "host")
    );
    let o = ok("alpine");
    assert_eq!((o.network.as_str(), o.ipc.as_str()), ("", ""));
    assert!(!o.run.privileged && !o.run.no_new_privileges);
}

#[test]
fn network_flags() {
    let o = ok(
        "--network mynet --network-alias web --ip 10.0.0.2 --ip6 fd00::2 \
                --mac-address 92:d0:c6:0a:29:33 -p 8080:80 -p 443:443/tcp -P \
                --dns 1.1.1.1 --dns-search example.com --dns-option ndots:2 \
                --add-host db:10.0.0.3 alpine",
    );
    assert_eq!(o.network, "mynet");
    let n = &o.net;
    assert_eq!(n.aliases, ["web"]);
    assert_eq!(n.ip.as_deref(), Some("10.0.0.2"));
    assert_eq!(n.ip6.as_deref(), Some("fd00::2"));
    assert_eq!(n.mac_address.as_deref(), Some("92:d0:c6:0a:29:33"));
    assert_eq!(n.publish, ["8080:80", "443:443/tcp"]);
    assert!(n.publish_all);
    assert_eq!(n.dns, ["1.1.1.1"]);
    assert_eq!(n.dns_search, ["example.com"]);
    assert_eq!(n.dns_options, ["ndots:2"]);
    assert_eq!(n.add_hosts, ["db:10.0.0.3"]);
}

#[test]
fn the_rest() {
    let o = ok(
        "--init --stop-signal SIGINT --stop-timeout 30 --oom-score-adj -500 \
                --storage-opt size=1g --runtime crun --platform linux/arm64 alpine",
    );
    assert_eq!(o.init, Some(true));
    assert_eq!(o.run.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(o.stop_timeout, Some(30));
    assert_eq!(o.run.oom_score_adj, Some(-500));
    assert_eq!(o.storage_opts, ["size=1g"]);
    assert_eq!(o.runtime.as_deref(), Some("crun"));
    assert_eq!(o.platform.as_deref(), Some("linux/arm64"));
    assert_eq!(ok("--no-init alpine").init, Some(false));
    assert_eq!(ok("alpine").init, None);
    assert!(T::try_parse_from(["run", "--init", "--no-init", "alpine"]).is_err());
}

#[test]
fn pull_cgroupns_restart() {
    let t = flags("alpine");
    assert_eq!(t.f.pull, PullPolicy::Missing);
    assert_eq!(t.f.cgroupns, None);
    assert_eq!(t.f.restart_policy().expect("restart"), None);
    let t = flags("--pull never --cgroupns host --restart on-failure:3 alpine");
    assert_eq!(t.f.pull, PullPolicy::Never);
    assert_eq!(t.f.cgroupns, Some(CgroupnsMode::Host));
    assert_eq!(
        t.f.restart_policy().expect("restart"),
        Some(RestartPolicy::OnFailure { max_retries: 3 })
    );
    for (value, policy) in [
        ("no", RestartPolicy::No),
        ("always", RestartPolicy::Always),
        ("unless-stopped", RestartPolicy::UnlessStopped),
        ("on-failure", RestartPolicy::OnFailure { max_retries: 0 }),
    ] {
        let t = flags(&format!("--restart {value} alpine"));
        assert_eq!(t.f.restart_policy().expect(value), Some(policy));
    }
    assert!(T::try_parse_from(["run", "--pull", "sometimes", "alpine"]).is_err());
    assert!(ok("--rm --restart no alpine").auto_remove);
}

#[test]
fn docker_errors() {
    for (line, message) in [
        (
            "-m 1x",
            r#"invalid argument "1x" for "-m, --memory" flag: invalid size: '1x'"#,
        ),
        (
            "--memory-swap 1q",
            r#"invalid argument "1q" for "--memory-swap" flag: invalid size: '1q'"#,
        ),
        (
            "--cpus abc",
            r#"invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number"#,
        ),
        (
            "-c abc",
            r#"invalid argument "abc" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "abc": invalid syntax"#,
        ),
        (
            "--blkio-weight 70000",
            r#"invalid argument "70000" for "--blkio-weight" flag: strconv.ParseUint: parsing "70000": value out of range"#,
        ),
        (
            "--pids-limit x",
            r#"invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax"#,
        ),
        (
            "--ulimit nofile",
            r#"invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile"#,
        ),
        (
            "--device-read-bps sda:1mb",
            r#"invalid argument "sda:1mb" for "--device-read-bps" flag: bad format for device path: sda:1mb"#,
        ),
        (
            "--sysctl kernel.foo=1",
            r#"invalid argument "kernel.foo=1" for "--sysctl" flag: sysctl 'kernel.foo=1' is not whitelisted"#,
        ),
        ("-v :/x", "invalid volume specification: ':/x'"),
        (
            "--mount type=bind,target=/x",
            r#"invalid argument "type=bind,target=/x" for "--mount" flag: invalid mount config for type "bind": field Source must not be empty"#,
        ),
        ("--tmpfs /run:bogus", r#"invalid tmpfs option "bogus""#),
        ("--security-opt foo", r#"invalid --security-opt: "foo""#),
        ("--device a:b:c:d", "invalid device specification: a:b:c:d"),
        (
            "--memory-swappiness 101",
            "Invalid value: 101, valid memory swappiness range is 0-100",
        ),
        (
            "--cpu-period -5",
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ),
        ("--cpu-shares -5", "shares: invalid argument"),
        (
            "--restart bogus",
            "invalid restart policy: unknown policy 'bogus'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'",
        ),
        (
            "--restart on-failure:x",
            "invalid restart policy format: maximum retry count must be an integer",
        ),
        (
            "--restart on-failure:-1",
            "invalid restart policy: maximum retry count cannot be negative",
        ),
        (
            "--restart always:3",
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        ),
        (
            "--restart :3",
            "invalid restart policy format: no policy provided before colon",
        ),
        (
            "--rm --restart always",
            "conflicting options: cannot specify both --restart and --rm",
        ),
    ] {
        assert_eq!(err(&format!("{line} alpine")), message, "{line}");
    }
    let t = T::try_parse_from(["run", "-l", "a b=1", "alpine"]).expect("parse");
    let e = create_options_with(&t.f, t.image, t.cmd, &lookup).expect_err("label");
    assert_eq!(
        e.to_string(),
        r#"invalid argument "a b=1" for "-l, --label" flag: label 'a b' contains whitespaces"#
    );
}

#[test]
fn errors_keep_their_source() {
    use std::error::Error;
    let t = flags("-m 1x alpine");
    let e = create_options_with(&t.f, t.image, t.cmd, &lookup).expect_err("-m 1x");
    assert!(matches!(
        e,
        FlagError::Memory {
            flag: "-m, --memory",
            ..
        }
    ));
    assert_eq!(
        e.source().map(ToString::to_string).as_deref(),
        Some("invalid size: '1x'")
    );
}
