use crate::spec::parse::{self, DeviceSpec, ParseError, SecurityOpt};
use crate::spec::Ulimit;

fn no_env(_: &str) -> Option<String> {
    None
}

fn env_with_home(key: &str) -> Option<String> {
    (key == "HOME").then(|| "/root".to_owned())
}

#[test]
fn ram_in_bytes_uses_binary_units() {
    let cases: &[(&str, i64)] = &[
        ("512m", 512 << 20),
        ("512M", 512 << 20),
        ("1g", 1 << 30),
        ("1.5g", 3 << 29),
        ("1024", 1024),
        ("64k", 64 << 10),
        ("64kb", 64 << 10),
        ("2GiB", 2 << 30),
        ("10 mb", 10 << 20),
        ("1t", 1 << 40),
        ("100b", 100),
    ];
    for (input, want) in cases {
        assert_eq!(parse::ram_in_bytes(input), Ok(*want), "{input}");
    }
}

#[test]
fn ram_in_bytes_rejects_like_go_units() {
    for input in [
        "", "-1", "m", "1x", "1.m", "12mbb", "1..2m", "1.2.3m", " 1m", "1mx",
    ] {
        let err = parse::ram_in_bytes(input).expect_err(input);
        assert_eq!(err.to_string(), format!("invalid size: '{input}'"));
    }
}

#[test]
fn memory_swap_accepts_minus_one() {
    assert_eq!(parse::memory_swap("-1"), Ok(-1));
    assert_eq!(parse::memory_swap("1g"), Ok(1 << 30));
    assert!(parse::memory_swap("-2").is_err());
}

#[test]
fn nano_cpus() {
    let cases: &[(&str, i64)] = &[
        ("1.5", 1_500_000_000),
        ("2", 2_000_000_000),
        ("0.01", 10_000_000),
        (".5", 500_000_000),
        ("1.", 1_000_000_000),
        ("0.000000001", 1),
        ("1.5000000000", 1_500_000_000),
    ];
    for (input, want) in cases {
        assert_eq!(parse::nano_cpus(input), Ok(*want), "{input}");
    }
    for input in ["", "abc", "1.5.5", "-1", "1e3"] {
        let err = parse::nano_cpus(input).expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("failed to parse {input} as a rational number")
        );
    }
    let err = parse::nano_cpus("0.0000000001").expect_err("too precise");
    assert_eq!(err.to_string(), "value is too precise");
}

#[test]
fn ulimit_valid() {
    let cases: &[(&str, &str, u64, u64)] = &[
        ("nofile=1024:2048", "nofile", 1024, 2048),
        ("nofile=1024", "nofile", 1024, 1024),
        ("nproc=-1", "nproc", u64::MAX, u64::MAX),
        ("core=0:-1", "core", 0, u64::MAX),
        ("memlock=100:100", "memlock", 100, 100),
    ];
    for (input, name, soft, hard) in cases {
        let want = Ulimit {
            name: (*name).to_owned(),
            soft: *soft,
            hard: *hard,
        };
        assert_eq!(parse::ulimit(input), Ok(want), "{input}");
    }
}

#[test]
fn ulimit_invalid_with_docker_texts() {
    let cases: &[(&str, &str)] = &[
        ("nofile", "invalid ulimit argument: nofile"),
        ("files=1", "invalid ulimit type: files"),
        (
            "nofile=1:2:3",
            "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`",
        ),
        (
            "nofile=a",
            "strconv.ParseInt: parsing \"a\": invalid syntax",
        ),
        (
            "nofile=2048:1024",
            "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024",
        ),
    ];
    for (input, want) in cases {
        let err = parse::ulimit(input).expect_err(input);
        assert_eq!(err.to_string(), *want, "{input}");
    }
}

#[test]
fn sysctl() {
    for (input, key, value) in [
        ("net.ipv4.ip_forward=1", "net.ipv4.ip_forward", "1"),
        ("kernel.shmmax=1000", "kernel.shmmax", "1000"),
        ("fs.mqueue.msg_max=20", "fs.mqueue.msg_max", "20"),
        ("net.core.somaxconn=a=b", "net.core.somaxconn", "a=b"),
    ] {
        assert_eq!(
            parse::sysctl(input),
            Ok((key.to_owned(), value.to_owned())),
            "{input}"
        );
    }
    for input in [
        "kernel.hostname=x",
        "vm.swappiness=1",
        "net.ipv4.ip_forward",
    ] {
        let err = parse::sysctl(input).expect_err(input);
        assert_eq!(
            err.to_string(),
            format!("sysctl '{input}' is not whitelisted")
        );
    }
}

#[test]
fn env_flag() {
    let cases: &[(&str, &str)] = &[
        ("A=1", "A=1"),
        ("A=", "A="),
        ("A=b=c", "A=b=c"),
        ("HOME", "HOME=/root"),
        ("UNSET", "UNSET"),
    ];
    for (input, want) in cases {
        assert_eq!(
            parse::env(input, env_with_home).as_deref(),
            Ok(*want),
            "{input}"
        );
    }
    let err = parse::env("=x", no_env).expect_err("empty name");
    assert_eq!(err.to_string(), "invalid environment variable: =x");
}

#[test]
fn env_file() {
    let text = "# comment\n\n  A=1\nB= spaced value \nHOME\nUNSET\nC=x=y\n";
    let want = ["A=1", "B= spaced value ", "HOME=/root", "UNSET", "C=x=y"];
    assert_eq!(
        parse::env_file(text, env_with_home),
        Ok(want.map(String::from).to_vec())
    );
    assert_eq!(
        parse::env_file("\u{feff}A=1\n", no_env),
        Ok(vec!["A=1".to_owned()])
    );
    let err = parse::env_file("A B=1\n", no_env).expect_err("whitespace");
    assert_eq!(
        err.to_string(),
        "poorly formatted environment: variable 'A B' contains whitespaces"
    );
    let err = parse::env_file("=1\n", no_env).expect_err("no name");
    assert_eq!(
        err.to_string(),
        "poorly formatted environment: no variable name on line '=1'"
    );
}

#[test]
fn device_valid() {
    let d = |host: &str, container: &str, permissions: &str| DeviceSpec {
        host: host.to_owned(),
        container: container.to_owned(),
        permissions: permissions.to_owned(),
    };
    let cases = [
        ("/dev/fuse", d("/dev/fuse", "/dev/fuse", "rwm")),
        ("/dev/fuse:/dev/f", d("/dev/fuse", "/dev/f", "rwm")),
        ("/dev/fuse:r", d("/dev/fuse", "/dev/fuse", "r")),
        ("/dev/fuse:/dev/f:rw", d("/dev/fuse", "/dev/f", "rw")),
        ("/dev/sda:/dev/xvda:mrw", d("/dev/sda", "/dev/xvda", "mrw")),
    ];
    for (input, want) in cases {
        assert_eq!(parse::device(input), Ok(want), "{input}");
    }
}

#[test]
fn device_invalid() {
    let cases: &[(&str, ParseError)] = &[
        ("/a:/b:rw:x", ParseError::Device("/a:/b:rw:x".into())),
        (
            "/dev/fuse:/dev/f:rwx",
            ParseError::DeviceMode("/dev/fuse:/dev/f:rwx".into()),
        ),
        (
            "/dev/fuse:/dev/f:rr",
            ParseError::DeviceMode("/dev/fuse:/dev/f:rr".into()),
        ),
        ("/dev/fuse:fuse", ParseError::DevicePath("fuse".into())),
    ];
    for (input, want) in cases {
        assert_eq!(parse::device(input).as_ref(), Err(want), "{input}");
    }
    assert_eq!(
        ParseError::DeviceMode("/a:/b:x".into()).to_string(),
        "bad mode specified: /a:/b:x"
    );
    assert_eq!(
        ParseError::Device("a:b:c:d".into()).to_string(),
        "invalid device specification: a:b:c:d"
    );
}

#[test]
fn throttle_devices() {
    assert_eq!(
        parse::throttle_bps("/dev/sda:1mb"),
        Ok(("/dev/sda".into(), 1 << 20))
    );
    assert_eq!(
        parse::throttle_iops("/dev/sda:1000"),
        Ok(("/dev/sda".into(), 1000))
    );
    type Parsed = Result<(String, u64), ParseError>;
    let cases: &[(Parsed, &str)] = &[
        (parse::throttle_bps("/dev/sda"), "bad format: /dev/sda"),
        (parse::throttle_bps("sda:1mb"), "bad format for device path: sda:1mb"),
        (
            parse::throttle_bps("/dev/sda:x"),
            "invalid rate for device: /dev/sda:x. The correct format is <device-path>:<number>[<unit>]. Number must be a positive integer. Unit is optional and can be kb, mb, or gb",
        ),
        (
            parse::throttle_iops("/dev/sda:1k"),
            "invalid rate for device: /dev/sda:1k. The correct format is <device-path>:<number>. Number must be a positive integer",
        ),
    ];
    for (result, want) in cases {
        assert_eq!(
            result.as_ref().map_err(ToString::to_string),
            Err((*want).to_owned())
        );
    }
}

#[test]
fn security_opt() {
    let cases = [
        ("no-new-privileges", SecurityOpt::NoNewPrivileges(true)),
        ("no-new-privileges:true", SecurityOpt::NoNewPrivileges(true)),
        (
            "no-new-privileges=false",
            SecurityOpt::NoNewPrivileges(false),
        ),
        ("seccomp=unconfined", SecurityOpt::SeccompUnconfined),
        (
            "seccomp=/p.json",
            SecurityOpt::SeccompProfile("/p.json".into()),
        ),
        ("label=disable", SecurityOpt::Other("label=disable".into())),
        (
            "mask=/proc/cpuinfo:/etc/x",
            SecurityOpt::Mask(vec!["/proc/cpuinfo".into(), "/etc/x".into()]),
        ),
        ("unmask=ALL", SecurityOpt::Unmask(vec!["ALL".into()])),
        (
            "unmask=/proc/kcore:/sys/firmware",
            SecurityOpt::Unmask(vec!["/proc/kcore".into(), "/sys/firmware".into()]),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse::security_opt(input), Ok(want), "{input}");
    }
    for input in [
        "bogus",
        "no-new-privileges=maybe",
        "foo=bar",
        "mask=proc/x",
        "mask=",
        "unmask=/proc/kcore:all",
    ] {
        assert!(parse::security_opt(input).is_err(), "{input}");
    }
}
