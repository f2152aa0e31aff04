//! Compiled seccomp programs kept in the state root, so that each profile goes through
//! libseccomp once: docker's default profile costs milliseconds to compile and microseconds to
//! read back.
//!
//! An entry is the file `<root>/.seccomp-<sha256>` (not a directory, so never taken for a
//! container), keyed by the profile's JSON and the libseccomp version, written tmp + fsync +
//! rename. The cache only saves time: an entry that cannot be read or decoded is compiled again
//! and replaced, and one that cannot be written is simply not kept.

use std::io::Write;
use std::path::{Path, PathBuf};

use oci_spec::runtime::LinuxSeccomp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::seccomp::{compile, Filter, SeccompError};

/// Bumped when the entry format or the compiler's output for the same input changes.
const FORMAT: &str = "berth-seccomp-cache-v1";

#[derive(Serialize, Deserialize)]
struct Entry {
    flags: u32,
    needs_listener: bool,
    skipped: Vec<String>,
    /// The program's `struct sock_filter` array, native-endian, hex.
    program: String,
}

/// [`compile`], through the cache under `root`.
pub fn compile_cached(spec: &LinuxSeccomp, root: &Path) -> Result<Filter, SeccompError> {
    let Some(path) = entry_path(spec, root) else {
        return compile(spec);
    };
    if let Some(filter) = read(&path) {
        return Ok(filter);
    }
    let filter = compile(spec)?;
    write(&path, &filter);
    Ok(filter)
}

/// The entry's path; `None` when the profile cannot be serialised (then it is not cached).
fn entry_path(spec: &LinuxSeccomp, root: &Path) -> Option<PathBuf> {
    let json = serde_json::to_vec(spec).ok()?;
    let version = libseccomp::ScmpVersion::current()
        .map(|v| format!("{}.{}.{}", v.major, v.minor, v.micro))
        .unwrap_or_default();
    let mut hash = Sha256::new();
    hash.update(FORMAT);
    hash.update([0]);
    hash.update(version);
    hash.update([0]);
    hash.update(std::env::consts::ARCH);
    hash.update([0]);
    hash.update(json);
    Some(root.join(format!(".seccomp-{}", hex::encode(hash.finalize()))))
}

fn read(path: &Path) -> Option<Filter> {
    let entry: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let program = hex::decode(&entry.program).ok()?;
    if program.is_empty() || program.len() % 8 != 0 {
        return None;
    }
    Some(Filter::from_parts(
        &program,
        entry.flags,
        entry.needs_listener,
        entry.skipped,
    ))
}

/// Best effort: a failure leaves no entry (and no temporary file).
fn write(path: &Path, filter: &Filter) {
    let (program, flags, needs_listener, skipped) = filter.parts();
    let entry = Entry {
        flags,
        needs_listener,
        skipped: skipped.to_vec(),
        program: hex::encode(program),
    };
    let Ok(json) = serde_json::to_vec(&entry) else {
        return;
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(&json)?;
        f.sync_all()
    });
    if written.and_then(|()| std::fs::rename(&tmp, path)).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROFILE: &str = r#"{
        "defaultAction": "SCMP_ACT_ERRNO",
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": [
            {"names": ["read", "write", "exit_group", "berth_no_such_syscall"],
             "action": "SCMP_ACT_ALLOW"},
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}
        ]
    }"#;

    #[test]
    fn a_profile_is_compiled_once_and_read_back_equal() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spec: LinuxSeccomp = serde_json::from_str(PROFILE).expect("profile");
        let first = compile_cached(&spec, dir.path()).expect("compile");
        let entries: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(entries.len(), 1, "one entry, no temporary file");
        let path = entries[0].as_ref().expect("entry").path();
        let cached = read(&path).expect("the entry reads back");
        assert_eq!(cached.parts().0, first.parts().0);
        assert_eq!(cached.parts().1, first.parts().1);
        assert_eq!(cached.skipped_syscalls(), ["berth_no_such_syscall"]);
        // A hit does not compile: a changed entry is what comes back.
        let mut entry: Entry =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("entry");
        entry.skipped = vec!["marker".into()];
        std::fs::write(&path, serde_json::to_vec(&entry).expect("json")).expect("write");
        let hit = compile_cached(&spec, dir.path()).expect("hit");
        assert_eq!(hit.skipped_syscalls(), ["marker"]);
        // A damaged entry is compiled again and replaced.
        std::fs::write(&path, b"{not json").expect("write");
        let again = compile_cached(&spec, dir.path()).expect("again");
        assert_eq!(again.parts().0, first.parts().0);
        assert!(read(&path).is_some());
    }

    #[test]
    fn different_profiles_get_different_entries() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a: LinuxSeccomp = serde_json::from_str(PROFILE).expect("profile");
        let b: LinuxSeccomp =
            serde_json::from_str(&PROFILE.replace("SCMP_ACT_ERRNO", "SCMP_ACT_KILL"))
                .expect("profile");
        let fa = compile_cached(&a, dir.path()).expect("a");
        let fb = compile_cached(&b, dir.path()).expect("b");
        assert_ne!(fa.parts().0, fb.parts().0);
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
    }
}
