use crate::spec::parse_mount::{self, MountParseError, MountSpec, VolumeSource, VolumeSpec};
use crate::spec::{Propagation, TmpfsMount};

fn vol(source: VolumeSource, target: &str) -> VolumeSpec {
    VolumeSpec {
        source,
        target: target.to_owned(),
        read_only: false,
        propagation: Propagation::RPrivate,
        relabel: None,
        no_copy: false,
    }
}

fn bind(source: &str, target: &str) -> VolumeSpec {
    vol(VolumeSource::Bind(source.to_owned()), target)
}

#[test]
fn volume_valid() {
    let cases = [
        ("/data", vol(VolumeSource::Anonymous, "/data")),
        ("/host:/ctr", bind("/host", "/ctr")),
        ("name:/ctr", vol(VolumeSource::Named("name".into()), "/ctr")),
        (
            "/host:/ctr:ro",
            VolumeSpec {
                read_only: true,
                ..bind("/host", "/ctr")
            },
        ),
        ("/host:/ctr:rw", bind("/host", "/ctr")),
        (
            "/host:/ctr:Z",
            VolumeSpec {
                relabel: Some('Z'),
                ..bind("/host", "/ctr")
            },
        ),
        (
            "/host:/ctr:ro,rshared,z",
            VolumeSpec {
                read_only: true,
                propagation: Propagation::RShared,
                relabel: Some('z'),
                ..bind("/host", "/ctr")
            },
        ),
        (
            "name:/ctr:nocopy",
            VolumeSpec {
                no_copy: true,
                ..vol(VolumeSource::Named("name".into()), "/ctr")
            },
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_mount::volume(input), Ok(want), "{input}");
    }
}

#[test]
fn volume_invalid() {
    let cases: &[(&str, &str)] = &[
        ("/a:/b:ro:x", "invalid volume specification: '/a:/b:ro:x'"),
        ("/a::/b", "invalid volume specification: '/a::/b'"),
        ("", "invalid volume specification: ''"),
        ("/a:/b:xx", "invalid mode: xx"),
        ("/a:/b:ro,rw", "invalid mode: ro,rw"),
        ("/a:/b:shared,slave", "invalid mode: shared,slave"),
        ("/a:/b:nocopy", "invalid mode: nocopy"),
        (
            "/a:b",
            "invalid mount config for type \"volume\": invalid mount path: 'b' mount path must be absolute",
        ),
        ("/a:/", "invalid specification: destination can't be '/'"),
    ];
    for (input, want) in cases {
        let err = parse_mount::volume(input).expect_err(input);
        assert_eq!(err.to_string(), *want, "{input}");
    }
}

#[test]
fn mount_flag() {
    let cases = [
        (
            "type=bind,source=/h,target=/c,readonly",
            MountSpec::Volume(VolumeSpec {
                read_only: true,
                ..bind("/h", "/c")
            }),
        ),
        (
            "type=bind,src=/h,dst=/c,ro=false,bind-propagation=rslave",
            MountSpec::Volume(VolumeSpec {
                propagation: Propagation::RSlave,
                ..bind("/h", "/c")
            }),
        ),
        (
            "target=/c",
            MountSpec::Volume(vol(VolumeSource::Anonymous, "/c")),
        ),
        (
            "type=volume,source=v,destination=/c,volume-nocopy",
            MountSpec::Volume(VolumeSpec {
                no_copy: true,
                ..vol(VolumeSource::Named("v".into()), "/c")
            }),
        ),
        (
            "type=tmpfs,target=/t,tmpfs-size=64m,tmpfs-mode=1770",
            MountSpec::Tmpfs(TmpfsMount {
                destination: "/t".into(),
                options: vec!["size=64m".into(), "mode=1770".into()],
            }),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_mount::mount(input), Ok(want), "{input}");
    }
}

#[test]
fn mount_flag_invalid() {
    let cases: &[(&str, MountParseError)] = &[
        ("type=bind,source=/h", MountParseError::NoTarget),
        ("type=bind,target=/c", MountParseError::NoSource),
        (
            "type=bind,source=/h,target=/c,bogus",
            MountParseError::Field("bogus".into()),
        ),
        (
            "type=bind,source=/h,target=/c,foo=bar",
            MountParseError::Key {
                key: "foo".into(),
                field: "foo=bar".into(),
            },
        ),
        (
            "type=bind,source=/h,target=/c,readonly=maybe",
            MountParseError::Value {
                key: "readonly".into(),
                value: "maybe".into(),
            },
        ),
        (
            "type=npipe,source=/h,target=/c",
            MountParseError::Type("npipe".into()),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_mount::mount(input).as_ref(), Err(want), "{input}");
    }
    assert_eq!(MountParseError::NoTarget.to_string(), "target is required");
    assert_eq!(
        MountParseError::Field("bogus".into()).to_string(),
        "invalid field 'bogus' must be a key=value pair"
    );
}

#[test]
fn tmpfs_flag() {
    let t = |dest: &str, options: &[&str]| TmpfsMount {
        destination: dest.to_owned(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
    };
    let cases = [
        ("/run", t("/run", &[])),
        ("/run:rw,size=64m", t("/run", &["rw", "size=64m"])),
        (
            "/run:exec,mode=1777,uid=1000",
            t("/run", &["exec", "mode=1777", "uid=1000"]),
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_mount::tmpfs(input), Ok(want), "{input}");
    }
    let err = parse_mount::tmpfs("/run:bogus=1").expect_err("option");
    assert_eq!(err.to_string(), "invalid tmpfs option \"bogus\"");
    let err = parse_mount::tmpfs("run").expect_err("relative");
    assert_eq!(
        err.to_string(),
        "invalid mount config for type \"tmpfs\": invalid mount path: 'run' mount path must be absolute"
    );
}
