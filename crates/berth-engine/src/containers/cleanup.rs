//! What happens after a container's process exits: berth-monitor execs
//! `berth container cleanup ID`, which reads the monitor's exit file, asks the cgroup whether
//! the OOM killer struck (and the kernel log whom), deletes the runtime's container, unmounts
//! the rootfs, writes the exit record, and removes a `--rm` container.

use std::fs;
use std::io::Write;
use std::path::Path;

use time::OffsetDateTime;

use super::config::{config_of, details_of, set_details, OomVictim};
use super::{io_err, ContainerError, Engine};
use crate::state::Status;

/// berth-monitor's exit file.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct ExitFile {
    /// The code, 128+signal for a signal.
    pub exit_code: i32,
    /// The signal that killed PID 1.
    pub signal: Option<i32>,
    /// When (RFC 3339).
    pub finished_at: String,
}

impl Engine {
    /// Record the exit of container `id`'s run, then remove it if it was made with `--rm`.
    pub fn cleanup(&mut self, id: &str) -> Result<(), ContainerError> {
        let c = self.db.get(id)?;
        let dirs = self.dirs(&c.id);
        let exit = read_exit_file(&dirs.exit_file());
        let (kills, victims) = self.oom_figures(&c.id);
        let mut failures = Vec::new();
        let runtime = self.runtime_of(&c);
        if let Err(e) = runtime.run(&["delete", "--force", c.id.as_str()]) {
            failures.push(e.to_string());
        }
        if let Err(e) = self.detach_networks(&c.id) {
            failures.push(e.to_string());
        }
        if let Err(e) = self.images.containers.unmount(&c.id) {
            failures.push(e.to_string());
        }
        let finished = exit
            .as_ref()
            .and_then(|e| {
                OffsetDateTime::parse(
                    &e.finished_at,
                    &time::format_description::well_known::Rfc3339,
                )
                .ok()
            })
            .unwrap_or_else(OffsetDateTime::now_utc);
        self.db.modify(&c.id, |r| {
            if r.status != Status::Removing {
                r.status = Status::Exited;
            }
            r.pid = None;
            r.monitor_pid = None;
            r.finished_at = Some(finished);
            r.exit_code = Some(exit.as_ref().map_or(255, |e| e.exit_code));
            r.exit_signal = exit.as_ref().and_then(|e| e.signal);
            r.oom_killed = kills > 0;
            let mut d = details_of(r);
            d.oom_kills = kills;
            d.oom_victims = victims.clone();
            d.stop_duration_ms = d
                .stop_requested_at
                .as_deref()
                .and_then(|t| {
                    OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
                })
                .map(|t| (finished - t).whole_milliseconds().max(0) as u64);
            if exit.is_none() {
                d.error = Some("berth-monitor exited without an exit record".to_owned());
            } else if !failures.is_empty() {
                d.error = Some(failures.join("; "));
            }
            set_details(r, &d);
            Ok::<_, ContainerError>(())
        })?;
        let _ = fs::remove_file(dirs.exit_file());
        if config_of(&c).auto_remove {
            let c = self.db.get(&c.id)?;
            // `wait`, `stop` and `rm` of a `--rm` container may ask for its code after it is gone.
            let exited = self.run_root.join("exited");
            let _ = fs::create_dir_all(&exited);
            let code = c.exit_code.unwrap_or(255).to_string();
            let _ = write_atomic(&exited.join(&c.id), code.as_bytes());
            return self.remove_everything(&c, true);
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(ContainerError::Teardown { id: c.id, failures })
        }
    }

    /// The cgroup's OOM kill count (read before the runtime deletes the cgroup) and the
    /// victims the kernel log names.
    fn oom_figures(&self, id: &str) -> (u64, Vec<OomVictim>) {
        let path = format!("/berth/{id}");
        let kills = berth_cgroups::Layout::detect()
            .and_then(|layout| berth_cgroups::Cgroup::open(&layout, &path, id))
            .and_then(|cg| cg.oom_kills())
            .unwrap_or(0);
        if kills == 0 {
            return (0, Vec::new());
        }
        (kills, oom_victims(id))
    }
}

/// The exit code a `--rm` container left when its cleanup removed it.
pub fn removed_exit_code(run_root: &Path, id: &str) -> Option<i32> {
    fs::read_to_string(run_root.join("exited").join(id))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Read the monitor's exit file, if it wrote one.
pub fn read_exit_file(path: &Path) -> Option<ExitFile> {
    serde_json::from_slice(&fs::read(path).ok()?).ok()
}

/// The processes of cgroup `/berth/ID` that the kernel log says the OOM killer killed:
/// `oom-kill:...,task_memcg=/berth/ID,task=NAME,pid=N,...` (kernel ≥ 4.19).
pub fn oom_victims(id: &str) -> Vec<OomVictim> {
    let Ok(kmsg) = fs::OpenOptions::new()
        .read(true)
        .custom_flags_nonblock()
        .open("/dev/kmsg")
    else {
        return Vec::new();
    };
    let mut victims = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        // One record per read; EAGAIN at the end, EPIPE when a record was overwritten.
        match std::io::Read::read(&mut &kmsg, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                let line = String::from_utf8_lossy(&buf[..n]);
                if let Some(v) = parse_oom_kill(&line, id) {
                    victims.push(v);
                }
            }
            Err(e) if e.raw_os_error() == Some(libc_epipe()) => continue,
            Err(_) => break,
        }
    }
    victims
}

fn libc_epipe() -> i32 {
    nix::errno::Errno::EPIPE as i32
}

trait NonBlock {
    fn custom_flags_nonblock(&mut self) -> &mut Self;
}

impl NonBlock for fs::OpenOptions {
    fn custom_flags_nonblock(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
    }
}

/// The victim in one `oom-kill:` kernel log line, if it belongs to container `id`.
pub fn parse_oom_kill(line: &str, id: &str) -> Option<OomVictim> {
    let fields = line.split_once("oom-kill:")?.1;
    let field = |key: &str| {
        fields
            .split(',')
            .find_map(|f| f.trim().strip_prefix(key))
            .map(str::to_owned)
    };
    let memcg = field("task_memcg=")?;
    if !memcg.contains(id) {
        return None;
    }
    Some(OomVictim {
        pid: field("pid=")?.parse().ok()?,
        comm: field("task=")?,
    })
}

/// Write `bytes` to `path`, readable by its owner only (specs and process files hold the
/// container's environment, secrets included): a temporary file of this process beside it,
/// fsync, rename, fsync of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ContainerError> {
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    file.write_all(bytes).map_err(io_err("write", &tmp))?;
    file.sync_all().map_err(io_err("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    if let Some(dir) = path.parent() {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_kill_lines_name_the_victim_of_this_container_only() {
        let id = "ab".repeat(32);
        let line = format!(
            "6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,\
             mems_allowed=0,oom_memcg=/berth/{id},task_memcg=/berth/{id},task=hog,pid=4321,uid=0"
        );
        assert_eq!(
            parse_oom_kill(&line, &id),
            Some(OomVictim {
                pid: 4321,
                comm: "hog".to_owned()
            })
        );
        assert_eq!(parse_oom_kill(&line, &"cd".repeat(32)), None);
        assert_eq!(parse_oom_kill("6,1,2,-;Out of memory", &id), None);
    }
}
