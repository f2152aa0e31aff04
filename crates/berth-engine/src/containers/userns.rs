//! `--userns` (`host`, `auto[:size=N]`, `keep-id`), `--uidmap` and `--gidmap`: podman's
//! flags. `auto` gives each container its own range of host ids (65536 by default) out of the
//! `berth` entries of /etc/subuid and /etc/subgid, made on first use. The ranges are rows of
//! the state database, chosen and written in one `BEGIN IMMEDIATE` transaction, kept while
//! the container exists (as podman does) and released with its record (`ON DELETE CASCADE`:
//! `rm`, and the repair that removes a creation that died).

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use berth_storage::{IdMap, IdRange};

pub use super::subid::{berth_entries, free_range, parse_subid, subid_files, SubIdEntry};
use rusqlite::Transaction;

/// The owner of the subordinate-id entries berth makes and uses.
pub const SUBID_OWNER: &str = "berth";
/// The ids each `--userns=auto` container gets unless `size=` says otherwise.
pub const AUTO_SIZE: u32 = 65536;
/// Where the subordinate uids are (the variable is for tests, which must not edit /etc).
pub const SUBUID_ENV: &str = "BERTH_SUBUID_FILE";
/// Where the subordinate gids are.
pub const SUBGID_ENV: &str = "BERTH_SUBGID_FILE";

/// Why a user namespace could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UsernsError {
    /// Bad `--userns`, `--uidmap` or `--gidmap`.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing /etc/subuid or /etc/subgid, or giving the bundle to the root.
    #[error("{step} {path}: {source}")]
    Io {
        /// What was being done.
        step: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No room for a new range.
    #[error("--userns=auto: no free range of {size} ids is left in the {SUBID_OWNER} entries of {path} (containers keep theirs until removed)")]
    Exhausted {
        /// The ids wanted.
        size: u32,
        /// The file.
        path: PathBuf,
    },
    /// The state database.
    #[error("allocating a user namespace range: {0}")]
    Db(#[from] rusqlite::Error),
}

/// What `--userns`, `--uidmap` and `--gidmap` ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// The host's user namespace (the default).
    Host,
    /// A range of this many ids from the berth entries.
    Auto(u32),
    /// The caller's uid and gid kept (rootless only).
    KeepId {
        /// `uid=`.
        uid: Option<u32>,
        /// `gid=`.
        gid: Option<u32>,
    },
    /// Explicit maps.
    Maps(IdMap),
}

/// Parse the flags; `--uidmap` alone implies the same gid map, and the other way round.
pub fn parse(
    userns: Option<&str>,
    uidmap: &[String],
    gidmap: &[String],
) -> Result<Mode, UsernsError> {
    let userns = userns.unwrap_or("");
    if !uidmap.is_empty() || !gidmap.is_empty() {
        if !userns.is_empty() {
            return Err(invalid(format!(
                "--userns={userns} and --uidmap/--gidmap cannot be used together"
            )));
        }
        let uids = parse_maps(uidmap, "--uidmap")?;
        let gids = parse_maps(gidmap, "--gidmap")?;
        let map = match (uids.is_empty(), gids.is_empty()) {
            (false, true) => IdMap {
                gids: uids.clone(),
                uids,
            },
            (true, false) => IdMap {
                uids: gids.clone(),
                gids,
            },
            _ => IdMap { uids, gids },
        };
        return Ok(Mode::Maps(map));
    }
    let (mode, options) = userns.split_once(':').unwrap_or((userns, ""));
    match mode {
        "" | "host" if options.is_empty() => Ok(Mode::Host),
        "auto" => parse_auto(options),
        "keep-id" => parse_keep_id(options),
        _ => Err(invalid(format!(
            "invalid --userns={userns}: expected host, auto, auto:size=N, keep-id, or --uidmap/--gidmap"
        ))),
    }
}

fn invalid(text: String) -> UsernsError {
    UsernsError::Invalid(text)
}

fn parse_auto(options: &str) -> Result<Mode, UsernsError> {
    let mut size = AUTO_SIZE;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let value = option.strip_prefix("size=").ok_or_else(|| {
            invalid(format!(
                "invalid --userns=auto option {option:?}: expected size=N"
            ))
        })?;
        size = match value.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(invalid(format!(
                    "invalid --userns=auto size {value:?}: a number of ids from 1 to 4294967295"
                )))
            }
        };
    }
    Ok(Mode::Auto(size))
}

fn parse_keep_id(options: &str) -> Result<Mode, UsernsError> {
    let (mut uid, mut gid) = (None, None);
    for option in options.split(',').filter(|o| !o.is_empty()) {
        let (key, value) = option.split_once('=').unwrap_or((option, ""));
        let number = value
            .parse::<u32>()
            .map_err(|_| invalid(format!("invalid --userns=keep-id option {option:?}")))?;
        match key {
            "uid" => uid = Some(number),
            "gid" => gid = Some(number),
            _ => {
                return Err(invalid(format!(
                    "invalid --userns=keep-id option {option:?}"
                )))
            }
        }
    }
    Ok(Mode::KeepId { uid, gid })
}

/// `CONTAINER:HOST:SIZE` values (podman's syntax), checked: no empty range, no overflow, and
/// no two ranges overlapping inside or outside.
pub fn parse_maps(values: &[String], flag: &str) -> Result<Vec<IdRange>, UsernsError> {
    let mut ranges = Vec::new();
    for value in values {
        let parts: Vec<Option<u32>> = value.split(':').map(|p| p.parse().ok()).collect();
        let range = match parts.as_slice() {
            [Some(container), Some(host), Some(size)] => IdRange {
                container: *container,
                host: *host,
                size: *size,
            },
            _ => {
                return Err(invalid(format!(
                    "invalid {flag} {value:?}: expected CONTAINER:HOST:SIZE (three numbers)"
                )))
            }
        };
        let end_ok = |start: u32| u64::from(start) + u64::from(range.size) <= u64::from(u32::MAX);
        if range.size == 0 || !end_ok(range.container) || !end_ok(range.host) {
            return Err(invalid(format!(
                "invalid {flag} {value:?}: the size must be at least 1 and the ranges end below 4294967295"
            )));
        }
        ranges.push(range);
    }
    check_overlaps(&ranges, flag)?;
    Ok(ranges)
}

pub(crate) fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
    let end = |(start, size): (u32, u32)| u64::from(start) + u64::from(size);
    u64::from(a.0) < end(b) && u64::from(b.0) < end(a)
}

fn check_overlaps(ranges: &[IdRange], flag: &str) -> Result<(), UsernsError> {
    for (i, a) in ranges.iter().enumerate() {
        for b in &ranges[i + 1..] {
            let show = |r: &IdRange| format!("{}:{}:{}", r.container, r.host, r.size);
            if overlap((a.container, a.size), (b.container, b.size)) {
                return Err(invalid(format!(
                    "{flag} {} and {} overlap inside the container",
                    show(a),
                    show(b)
                )));
            }
            if overlap((a.host, a.size), (b.host, b.size)) {
                return Err(invalid(format!(
                    "{flag} {} and {} overlap on the host",
                    show(a),
                    show(b)
                )));
            }
        }
    }
    Ok(())
}

/// A `/proc/PID/uid_map` (or gid_map) text, as ranges.
pub fn parse_proc_map(text: &str) -> Vec<IdRange> {
    text.lines()
        .filter_map(|line| {
            let mut n = line.split_whitespace().map(|f| f.parse::<u32>().ok());
            Some(IdRange {
                container: n.next()??,
                host: n.next()??,
                size: n.next()??,
            })
        })
        .collect()
}

/// Whether `map` (the engine's own /proc/self/uid_map) is the initial user namespace's.
pub fn is_initial(map: &[IdRange]) -> bool {
    matches!(
        map,
        [IdRange {
            container: 0,
            host: 0,
            size: u32::MAX
        }]
    )
}

/// podman's keep-id for one kind of id: the engine runs in a user namespace whose `outer` map
/// (its /proc/self/uid_map) gives it ids 0..N, 0 being the user. Container id `keep` becomes
/// the engine's 0 (the user on the host); container ids below it take the engine's 1..=keep,
/// and those above it the engine's keep+1 and on. `None` in the initial user namespace
/// (rootful), where podman refuses keep-id, or when there are too few ids.
pub fn keep_id_ranges(outer: &[IdRange], keep: u32) -> Option<Vec<IdRange>> {
    if is_initial(outer) {
        return None;
    }
    let total: u64 = outer.iter().map(|r| u64::from(r.size)).sum();
    let total = u32::try_from(total).ok()?;
    if total == 0 || u64::from(keep) >= u64::from(total) {
        return None;
    }
    let mut ranges = Vec::new();
    if keep > 0 {
        ranges.push(IdRange {
            container: 0,
            host: 1,
            size: keep,
        });
    }
    ranges.push(IdRange {
        container: keep,
        host: 0,
        size: 1,
    });
    let above = total - keep - 1;
    if above > 0 {
        ranges.push(IdRange {
            container: keep + 1,
            host: keep + 1,
            size: above,
        });
    }
    Some(ranges)
}

/// The database side: migration 4's `userns_ranges` table.
pub mod store {
    use super::*;

    /// Choose and record `id`'s ranges of `size` uids and gids within `uid_pool` and
    /// `gid_pool` (the berth entries), clear of every other container's. Call in a
    /// `BEGIN IMMEDIATE` transaction: the choice and the write are one step.
    pub fn allocate(
        tx: &Transaction,
        id: &str,
        size: u32,
        (uid_pool, gid_pool): (&[SubIdEntry], &[SubIdEntry]),
    ) -> Result<Option<(u32, u32)>, rusqlite::Error> {
        let used = |column: &str| -> rusqlite::Result<Vec<(u32, u32)>> {
            let sql = format!("SELECT {column}, size FROM userns_ranges ORDER BY {column}");
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        };
        let uid = first_fit(uid_pool, &used("uid_start")?, size);
        let gid = first_fit(gid_pool, &used("gid_start")?, size);
        let (Some(uid), Some(gid)) = (uid, gid) else {
            return Ok(None);
        };
        tx.execute(
            "INSERT INTO userns_ranges (container_id, uid_start, gid_start, size)
             VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![id, uid, gid, size],
        )?;
        Ok(Some((uid, gid)))
    }

    /// The first `size` ids in `pool` that overlap no `used` (start, size) range.
    pub fn first_fit(pool: &[SubIdEntry], used: &[(u32, u32)], size: u32) -> Option<u32> {
        for entry in pool {
            let end = u64::from(entry.start) + u64::from(entry.count);
            let mut at = u64::from(entry.start);
            while at + u64::from(size) <= end {
                let clash = used
                    .iter()
                    .filter(|u| overlap((at as u32, size), **u))
                    .map(|u| u64::from(u.0) + u64::from(u.1))
                    .max();
                match clash {
                    None => return Some(at as u32),
                    Some(next) => at = next,
                }
            }
        }
        None
    }
}

#[cfg(test)]
#[path = "userns_tests.rs"]
mod tests;

/// What `create` settles before it makes anything: the flags checked, and for `auto` the
/// berth entries (made on first use) and the size checked against them.
#[derive(Debug, Clone)]
pub struct Plan {
    mode: Mode,
    /// keep-id: the user the process runs as unless `-u` says otherwise (podman's rule).
    keep_user: Option<(u32, u32)>,
    pools: (Vec<SubIdEntry>, Vec<SubIdEntry>),
    subuid: PathBuf,
}

/// Check the flags and prepare; an error here leaves nothing made.
pub fn plan(
    userns: Option<&str>,
    uidmap: &[String],
    gidmap: &[String],
) -> Result<Plan, UsernsError> {
    let (subuid, subgid) = subid_files();
    let mut mode = parse(userns, uidmap, gidmap)?;
    let mut pools = (Vec::new(), Vec::new());
    let mut keep_user = None;
    match &mode {
        Mode::KeepId { uid, gid } => {
            let (map, user) = keep_id(*uid, *gid)?;
            mode = Mode::Maps(map);
            keep_user = Some(user);
        }
        Mode::Auto(size) => {
            pools = (berth_entries(&subuid)?, berth_entries(&subgid)?);
            for (pool, path) in [(&pools.0, &subuid), (&pools.1, &subgid)] {
                let largest = pool.iter().map(|e| e.count).max().unwrap_or(0);
                if *size > largest {
                    return Err(invalid(format!(
                        "--userns=auto:size={size} is larger than the {SUBID_OWNER} range in {} ({largest} ids)",
                        path.display()
                    )));
                }
            }
        }
        Mode::Host | Mode::Maps(_) => {}
    }
    Ok(Plan {
        mode,
        keep_user,
        pools,
        subuid,
    })
}

/// keep-id from the engine's own maps: refused in the initial user namespace, as podman
/// refuses it when rootful.
fn keep_id(uid: Option<u32>, gid: Option<u32>) -> Result<(IdMap, (u32, u32)), UsernsError> {
    let read = |file: &str| {
        let path = PathBuf::from(format!("/proc/self/{file}"));
        fs::read_to_string(&path)
            .map(|t| parse_proc_map(&t))
            .map_err(|source| UsernsError::Io {
                step: "read",
                path,
                source,
            })
    };
    let (outer_uids, outer_gids) = (read("uid_map")?, read("gid_map")?);
    if is_initial(&outer_uids) {
        return Err(invalid(
            "keep-id is only supported in rootless mode".to_owned(),
        ));
    }
    // The caller's own ids: what the engine's namespace maps to 0 is the user, who is the
    // engine's 0, and whose id inside is the one kept (uid=/gid= choose another).
    let user = |outer: &[IdRange]| outer.iter().find(|r| r.container == 0).map(|r| r.host);
    let keep_uid = uid.or(user(&outer_uids)).unwrap_or(0);
    let keep_gid = gid.or(user(&outer_gids)).unwrap_or(0);
    match (keep_id_ranges(&outer_uids, keep_uid), keep_id_ranges(&outer_gids, keep_gid)) {
        (Some(uids), Some(gids)) => Ok((IdMap { uids, gids }, (keep_uid, keep_gid))),
        _ => Err(invalid(format!(
            "--userns=keep-id: uid {keep_uid} or gid {keep_gid} is outside the ids this user namespace has"
        ))),
    }
}

impl Plan {
    /// `-u` for a container that gives none: keep-id runs it as the kept user.
    pub fn default_user(&self) -> Option<String> {
        self.keep_user.map(|(uid, gid)| format!("{uid}:{gid}"))
    }
}

impl super::Engine {
    /// The container's maps: explicit ones, or (`auto`) a range allocated to `id` now, in
    /// the same transaction that checks it is free. `None`: the host's namespace.
    pub(crate) fn userns_map(
        &mut self,
        id: &str,
        plan: &Plan,
    ) -> Result<Option<IdMap>, UsernsError> {
        let size = match &plan.mode {
            Mode::Host => return Ok(None),
            Mode::Maps(map) => {
                self.open_bundle(id, map)?;
                return Ok(Some(map.clone()));
            }
            Mode::KeepId { .. } => {
                return Err(invalid(
                    "keep-id is only supported in rootless mode".to_owned(),
                ))
            }
            Mode::Auto(size) => *size,
        };
        let map = self.allocate(id, size, plan)?;
        self.open_bundle(id, &map)?;
        Ok(Some(map))
    }

    /// The container's root resolves the bind sources in its bundle (hosts, resolv.conf...)
    /// from inside its user namespace, where host root's private directories are closed to it:
    /// the containers directory becomes traversable (0711, not listable) and the bundle its
    /// root's, as podman gives a container's userdata directory to its root.
    fn open_bundle(&self, id: &str, map: &IdMap) -> Result<(), UsernsError> {
        let bundle = self.dirs(id).bundle;
        let fail = |step, path: &Path| {
            let path = path.to_path_buf();
            move |source| UsernsError::Io { step, path, source }
        };
        if let Some(parent) = bundle.parent() {
            fs::set_permissions(parent, fs::Permissions::from_mode(0o711))
                .map_err(fail("chmod", parent))?;
        }
        let owner = (map.host_uid(0), map.host_gid(0));
        std::os::unix::fs::chown(&bundle, owner.0, owner.1).map_err(fail("chown", &bundle))
    }

    fn allocate(&mut self, id: &str, size: u32, plan: &Plan) -> Result<IdMap, UsernsError> {
        let pools = (plan.pools.0.as_slice(), plan.pools.1.as_slice());
        let allocated = self.db.write(|tx| store::allocate(tx, id, size, pools))?;
        let Some((uid, gid)) = allocated else {
            return Err(UsernsError::Exhausted {
                size,
                path: plan.subuid.clone(),
            });
        };
        Ok(IdMap {
            uids: vec![IdRange {
                container: 0,
                host: uid,
                size,
            }],
            gids: vec![IdRange {
                container: 0,
                host: gid,
                size,
            }],
        })
    }
}

/// Say once, on stderr, that the layers had to be copied with shifted owners, and what it
/// cost (said only by the creation that made the copies; later ones reuse them).
pub fn report_copy(layer: &berth_storage::ContainerLayer) {
    if let Some((why, Some(took))) = &layer.copied {
        eprintln!(
            "berth: idmapped layers unavailable ({why}); copied the image's layers with shifted owners in {:.2}s (done once per image and id range)",
            took.as_secs_f64()
        );
    }
}
