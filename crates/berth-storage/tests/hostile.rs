//! A corpus of hostile layers: each is rejected with an error naming the entry, and nothing
//! appears outside the layer directory.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use berth_storage::{UnpackError, UnpackOptions};
use common::{require_root, tree, unpack_into, Tar, DEFAULT};

/// Unpack `tar` into `<tmp>/deep/layer` and return the result plus everything that exists in
/// `<tmp>` outside the layer afterwards.
fn unpack_contained(
    tar: &[u8],
    options: &UnpackOptions,
) -> (Result<(), UnpackError>, Vec<String>, tempfile::TempDir) {
    let outer = tempfile::tempdir().unwrap();
    let layer = outer.path().join("deep/layer");
    std::fs::create_dir_all(&layer).unwrap();
    let result = unpack_into(&layer, tar, options).map(|_| ());
    let outside = tree(outer.path())
        .into_iter()
        .filter(|p| p != "deep" && p != "deep/layer" && !p.starts_with("deep/layer/"))
        .collect();
    (result, outside, outer)
}

fn assert_rejected(
    name: &str,
    tar: &[u8],
    options: &UnpackOptions,
    matches: impl Fn(&UnpackError) -> bool,
    entry: &str,
) {
    let (result, outside, _dir) = unpack_contained(tar, options);
    let err = result.expect_err(name);
    assert!(matches(&err), "{name}: unexpected error {err:?}");
    assert!(
        err.to_string().contains(entry),
        "{name}: error {err} does not name {entry:?}"
    );
    assert!(
        outside.is_empty(),
        "{name}: wrote outside the layer: {outside:?}"
    );
}

fn check_host_untouched(paths: &[&str]) {
    for p in paths {
        assert!(!Path::new(p).exists(), "{p} was created on the host");
    }
}

#[test]
fn dotdot_escapes_are_rejected() {
    if !require_root("dotdot_escapes_are_rejected") {
        return;
    }
    for name in [
        "../escape",
        "a/../../x",
        "./../../../berth-hostile-x",
        "/../berth-hostile-y",
    ] {
        let mut t = Tar::new();
        t.file("ok", DEFAULT, b"fine").file(name, DEFAULT, b"pwned");
        assert_rejected(
            name,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::Escape { .. }),
            name,
        );
    }
    check_host_untouched(&["/berth-hostile-x", "/berth-hostile-y"]);
}

/// Unlike docker and containers/storage (which strip a leading `/`), an absolute name is refused
/// (issue 4): layer entries are relative to the layer root.
#[test]
fn absolute_names_are_rejected() {
    if !require_root("absolute_names_are_rejected") {
        return;
    }
    for name in [
        "/berth-abs-test",
        "/berth-abs-dir/",
        "//berth-abs-test",
        "/",
    ] {
        let mut t = Tar::new();
        t.file("ok", DEFAULT, b"fine");
        if name.ends_with('/') {
            t.dir(name, DEFAULT);
        } else {
            t.file(name, DEFAULT, b"pwned");
        }
        assert_rejected(
            name,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::Escape { .. }),
            name,
        );
    }
    check_host_untouched(&["/berth-abs-test", "/berth-abs-dir"]);
}

#[test]
fn writes_through_symlinks_are_rejected() {
    if !require_root("writes_through_symlinks_are_rejected") {
        return;
    }
    for (target, write) in [
        ("/", "s/berth-pwned"),
        ("../..", "s/berth-pwned"),
        ("sub", "s/file"),
        ("/tmp", "s/x/y"),
    ] {
        let mut t = Tar::new();
        t.dir("sub/", DEFAULT)
            .symlink("s", target, DEFAULT)
            .file(write, DEFAULT, b"pwned");
        let case = format!("s -> {target}, then {write}");
        assert_rejected(
            &case,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
            write,
        );
        // Also as a hard link and as a directory through the symlink.
        let mut t = Tar::new();
        t.file("f", DEFAULT, b"x")
            .symlink("s", target, DEFAULT)
            .hardlink(write, "f");
        assert_rejected(
            &case,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
            write,
        );
        let mut t = Tar::new();
        t.symlink("s", target, DEFAULT)
            .dir(&format!("{write}/"), DEFAULT);
        assert_rejected(
            &case,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
            write,
        );
    }
    check_host_untouched(&["/berth-pwned"]);
}

#[test]
fn opaque_marker_and_whiteout_through_symlink_are_rejected() {
    if !require_root("opaque_marker_and_whiteout_through_symlink_are_rejected") {
        return;
    }
    for name in ["s/.wh..wh..opq", "s/.wh.victim"] {
        let mut t = Tar::new();
        t.symlink("s", "/", DEFAULT).file(name, DEFAULT, b"");
        assert_rejected(
            name,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
            name,
        );
    }
}

#[test]
fn whiteouts_of_dot_and_dotdot_are_rejected() {
    if !require_root("whiteouts_of_dot_and_dotdot_are_rejected") {
        return;
    }
    for name in ["d/.wh.", "d/.wh..", "d/.wh..."] {
        let mut t = Tar::new();
        t.dir("d/", DEFAULT).file(name, DEFAULT, b"");
        assert_rejected(
            name,
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::BadWhiteout { .. }),
            name,
        );
    }
}

#[test]
fn hard_links_out_of_the_layer_are_rejected() {
    if !require_root("hard_links_out_of_the_layer_are_rejected") {
        return;
    }
    let mut t = Tar::new();
    t.hardlink("h", "../../etc/passwd");
    assert_rejected(
        "../../etc/passwd",
        &t.bytes(),
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::HardLinkEscape { .. }),
        "h",
    );
    // An absolute target is refused like an absolute name.
    let mut t = Tar::new();
    t.hardlink("h", "/etc/passwd");
    assert_rejected(
        "/etc/passwd",
        &t.bytes(),
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::HardLinkEscape { .. }),
        "h",
    );
    // Through a symlink that points outside: the target was never an entry.
    let mut t = Tar::new();
    t.symlink("s", "/etc", DEFAULT).hardlink("h", "s/passwd");
    assert_rejected(
        "s/passwd",
        &t.bytes(),
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::HardLinkMissing { .. }),
        "h",
    );
}

#[test]
fn hard_link_to_a_later_entry_is_rejected() {
    if !require_root("hard_link_to_a_later_entry_is_rejected") {
        return;
    }
    let mut t = Tar::new();
    t.hardlink("early", "later").file("later", DEFAULT, b"x");
    assert_rejected(
        "later",
        &t.bytes(),
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::HardLinkMissing { .. }),
        "early",
    );
}

#[test]
fn absurd_sizes_are_rejected() {
    if !require_root("absurd_sizes_are_rejected") {
        return;
    }
    let mut t = Tar::new();
    t.file("small", DEFAULT, b"x");
    let huge = t.header_only("huge", 1 << 40);
    assert_rejected(
        "2^40 header",
        &huge,
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::EntryTooLarge { size, .. } if *size == 1 << 40),
        "huge",
    );

    let mut t = Tar::new();
    t.pax(&[("size", b"1099511627776")]);
    let pax_huge = t.header_only("pax-huge", 1);
    assert_rejected(
        "2^40 PAX size",
        &pax_huge,
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::EntryTooLarge { .. }),
        "pax-huge",
    );

    let capped = UnpackOptions {
        max_entry_size: 1024,
        max_layer_size: 1500,
    };
    let mut t = Tar::new();
    t.file("too-big", DEFAULT, &[0u8; 2048]);
    assert_rejected(
        "entry cap",
        &t.bytes(),
        &capped,
        |e| matches!(e, UnpackError::EntryTooLarge { .. }),
        "too-big",
    );
    let mut t = Tar::new();
    t.file("one", DEFAULT, &[0u8; 1000])
        .file("two", DEFAULT, &[0u8; 1000]);
    assert_rejected(
        "layer cap",
        &t.bytes(),
        &capped,
        |e| matches!(e, UnpackError::LayerTooLarge { .. }),
        "two",
    );
}

#[test]
fn a_file_used_as_a_directory_is_rejected() {
    if !require_root("a_file_used_as_a_directory_is_rejected") {
        return;
    }
    let mut t = Tar::new();
    t.file("f", DEFAULT, b"x").file("f/child", DEFAULT, b"y");
    assert_rejected(
        "f/child",
        &t.bytes(),
        &UnpackOptions::default(),
        |e| matches!(e, UnpackError::ParentNotDirectory { .. }),
        "f/child",
    );
}

#[test]
fn truncated_stream_is_a_read_error() {
    if !require_root("truncated_stream_is_a_read_error") {
        return;
    }
    let mut t = Tar::new();
    t.file("a", DEFAULT, &[7u8; 4096])
        .file("b", DEFAULT, &[8u8; 4096]);
    let bytes = t.bytes();
    let cut = &bytes[..bytes.len() - 3000];
    let (result, outside, _dir) = unpack_contained(cut, &UnpackOptions::default());
    let err = result.expect_err("truncated");
    assert!(matches!(err, UnpackError::Read { .. }), "{err:?}");
    assert!(outside.is_empty());
}

/// The unpacker reuses the last parent directory's fd; a directory replaced by a symlink later
/// in the layer must be resolved again, not written into through the old fd.
#[test]
fn a_directory_replaced_by_a_symlink_is_not_written_through() {
    if !require_root("a_directory_replaced_by_a_symlink_is_not_written_through") {
        return;
    }
    for target in ["/", "../..", "/tmp"] {
        let mut t = Tar::new();
        t.dir("d/", DEFAULT)
            .dir("d/e/", DEFAULT)
            .dir("other/", DEFAULT)
            .file("other/f", DEFAULT, b"x")
            .symlink("d/e", target, DEFAULT)
            .file("d/e/berth-pwned", DEFAULT, b"pwned");
        assert_rejected(
            &format!("d/e replaced by a symlink to {target}"),
            &t.bytes(),
            &UnpackOptions::default(),
            |e| matches!(e, UnpackError::ThroughSymlink { .. }),
            "d/e/berth-pwned",
        );
    }
    check_host_untouched(&["/berth-pwned", "/tmp/berth-pwned"]);
}
