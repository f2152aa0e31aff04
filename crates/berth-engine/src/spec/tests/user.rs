use std::path::Path;

use crate::spec::user::{resolve, ExecUser};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
# a comment\n\
app:x:1000:1000:App:/home/app:/bin/sh\n\
nogroup:x:1001:4242::/:/bin/sh\n";

const GROUP: &str = "root:x:0:\n\
wheel:x:10:root,app\n\
app:x:1000:\n\
staff:x:50:app\n";

/// A rootfs with busybox-like /etc/passwd and /etc/group.
pub fn rootfs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("etc")).expect("etc");
    std::fs::write(dir.path().join("etc/passwd"), PASSWD).expect("passwd");
    std::fs::write(dir.path().join("etc/group"), GROUP).expect("group");
    dir
}

fn user(uid: u32, gid: u32, additional_gids: &[u32], home: &str) -> ExecUser {
    ExecUser {
        uid,
        gid,
        additional_gids: additional_gids.to_vec(),
        home: home.to_owned(),
    }
}

#[test]
fn resolves_like_libcontainer() {
    let root = rootfs();
    let cases = [
        ("", user(0, 0, &[10], "/root")),
        ("root", user(0, 0, &[10], "/root")),
        ("0", user(0, 0, &[10], "/root")),
        ("app", user(1000, 1000, &[10, 50], "/home/app")),
        ("1000", user(1000, 1000, &[10, 50], "/home/app")),
        ("app:staff", user(1000, 50, &[], "/home/app")),
        ("app:10", user(1000, 10, &[], "/home/app")),
        ("1000:50", user(1000, 50, &[], "/home/app")),
        ("1234", user(1234, 0, &[], "/")),
        ("1234:5678", user(1234, 5678, &[], "/")),
        ("nogroup", user(1001, 4242, &[], "/")),
        (":staff", user(0, 50, &[], "/root")),
    ];
    for (spec, want) in cases {
        assert_eq!(resolve(root.path(), spec).expect(spec), want, "{spec:?}");
    }
}

#[test]
fn unknown_names_are_docker_errors() {
    let root = rootfs();
    let err = resolve(root.path(), "nobody").expect_err("user");
    assert_eq!(
        err.to_string(),
        "unable to find user nobody: no matching entries in passwd file"
    );
    let err = resolve(root.path(), "app:nogroup").expect_err("group");
    assert_eq!(
        err.to_string(),
        "unable to find group nogroup: no matching entries in group file"
    );
    let err = resolve(root.path(), "4294967296").expect_err("range");
    assert!(err.to_string().contains("range"), "{err}");
}

#[test]
fn missing_files_allow_numeric_ids_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(resolve(dir.path(), "").expect("root"), user(0, 0, &[], "/"));
    assert_eq!(
        resolve(dir.path(), "5:6").expect("numeric"),
        user(5, 6, &[], "/")
    );
    assert!(resolve(dir.path(), "app").is_err());
}

#[test]
fn passwd_symlink_stays_inside_the_rootfs() {
    let outside = rootfs();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("etc")).expect("etc");
    let target = outside.path().join("etc/passwd");
    std::os::unix::fs::symlink(&target, dir.path().join("etc/passwd")).expect("symlink");
    // The absolute link is resolved inside the rootfs, where it does not exist.
    let err = resolve(dir.path(), "app").expect_err("outside passwd must not be read");
    assert!(err.to_string().contains("no matching entries"), "{err}");
    assert!(Path::new(&target).exists());
}
