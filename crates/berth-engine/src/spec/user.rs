//! `-u` resolved in the image's /etc/passwd and /etc/group, as runc's libcontainer/user does
//! for docker. The files are opened inside the rootfs (RESOLVE_IN_ROOT), so a symlinked
//! /etc/passwd cannot point at the host's.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Why a user could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A user name not in /etc/passwd (docker's wording).
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    /// A group name not in /etc/group (docker's wording).
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    /// A numeric id outside 0..2^31-1.
    #[error("uids and gids must be in range 0-2147483647: {0}")]
    Range(String),
    /// The file exists but cannot be read.
    #[error("reading {path} in the image: {source}")]
    Read {
        /// The file, inside the rootfs.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The process identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
    /// Supplementary gids (groups listing the user, when no group is given).
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd (`/` when unknown).
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolve `spec` (`""`, `uid`, `uid:gid`, `name`, `name:group`) in the image at `rootfs`.
pub fn resolve(rootfs: &Path, spec: &str) -> Result<ExecUser, UserError> {
    let (user_arg, group_arg) = spec.split_once(':').unwrap_or((spec, ""));
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let uid_num = parse_id(user_arg)?;
    let passwd = parse_passwd(&read_in_root(rootfs, "etc/passwd")?);
    let matched = passwd.iter().find(|u| match uid_num {
        Some(uid) => u.uid == uid,
        None => u.name == user_arg,
    });
    let mut user = match (matched, uid_num) {
        (Some(entry), _) => ExecUser {
            uid: entry.uid,
            gid: entry.gid,
            additional_gids: Vec::new(),
            home: entry.home.clone(),
        },
        (None, Some(uid)) => ExecUser {
            uid,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/".to_owned(),
        },
        (None, None) => return Err(UserError::NoUser(user_arg.to_owned())),
    };
    let user_name = matched.map(|u| u.name.as_str()).unwrap_or("");
    if group_arg.is_empty() && user_name.is_empty() {
        return Ok(user);
    }
    let groups = parse_group(&read_in_root(rootfs, "etc/group")?);
    if group_arg.is_empty() {
        user.additional_gids = groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == user_name))
            .map(|g| g.gid)
            .collect();
        return Ok(user);
    }
    let gid_num = parse_id(group_arg)?;
    let group = groups
        .iter()
        .find(|g| g.name == group_arg || Some(g.gid) == gid_num);
    user.gid = match (group, gid_num) {
        (Some(group), _) => group.gid,
        (None, Some(gid)) => gid,
        (None, None) => return Err(UserError::NoGroup(group_arg.to_owned())),
    };
    Ok(user)
}

/// `--group-add`: numbers as they are, names through the image's /etc/group.
pub fn group_ids(rootfs: &Path, names: &[String]) -> Result<Vec<u32>, UserError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let groups = parse_group(&read_in_root(rootfs, "etc/group")?);
    names
        .iter()
        .map(|name| match parse_id(name)? {
            Some(gid) => Ok(gid),
            None => groups
                .iter()
                .find(|g| &g.name == name)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::NoGroup(name.clone())),
        })
        .collect()
}

/// A numeric id, `None` for a name; docker's range check for numbers.
fn parse_id(s: &str) -> Result<Option<u32>, UserError> {
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match s.parse::<u32>() {
        Ok(id) if id <= i32::MAX as u32 => Ok(Some(id)),
        _ => Err(UserError::Range(s.to_owned())),
    }
}

/// The file's text, or empty when it does not exist in the image.
fn read_in_root(rootfs: &Path, relative: &str) -> Result<String, UserError> {
    let path = PathBuf::from("/").join(relative);
    let err = |source: std::io::Error| UserError::Read {
        path: path.clone(),
        source,
    };
    let root = rustix::fs::open(
        rootfs,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| err(e.into()))?;
    let fd = match rustix::fs::openat2(
        &root,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::IN_ROOT,
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(String::new()),
        Err(e) => return Err(err(e.into())),
    };
    let mut bytes = Vec::new();
    std::fs::File::from(fd)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn fields(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(':').collect())
}

/// `name:pw:uid:gid:gecos:home:shell`; malformed lines are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    fields(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).map_or("/", |h| h).to_owned(),
            })
        })
        .collect()
}

/// `name:pw:gid:member,member`; malformed lines are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    fields(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}
