//! OCI hooks: run in order with the container state on stdin, each with its timeout.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, Spec};

/// Which hooks.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Deprecated, runs with createRuntime.
    Prestart,
    /// In the runtime namespace, after the container's namespaces exist.
    CreateRuntime,
    /// In the container's namespaces, before pivot_root.
    CreateContainer,
    /// In the container, right before the user process is executed.
    StartContainer,
    /// In the runtime namespace, after start.
    Poststart,
    /// In the runtime namespace, after delete.
    Poststop,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Prestart => "prestart",
            Kind::CreateRuntime => "createRuntime",
            Kind::CreateContainer => "createContainer",
            Kind::StartContainer => "startContainer",
            Kind::Poststart => "poststart",
            Kind::Poststop => "poststop",
        }
    }

    fn hooks(self, spec: &Spec) -> Vec<Hook> {
        let Some(h) = spec.hooks() else {
            return Vec::new();
        };
        let list = match self {
            #[allow(deprecated)]
            Kind::Prestart => h.prestart(),
            Kind::CreateRuntime => h.create_runtime(),
            Kind::CreateContainer => h.create_container(),
            Kind::StartContainer => h.start_container(),
            Kind::Poststart => h.poststart(),
            Kind::Poststop => h.poststop(),
        };
        list.clone().unwrap_or_default()
    }
}

/// A hook failed.
#[derive(Debug, thiserror::Error)]
#[error("{kind} hook #{index} {path}: {cause}")]
pub struct HookError {
    /// Which list.
    pub kind: &'static str,
    /// Index in the list.
    pub index: usize,
    /// Hook binary.
    pub path: String,
    /// Why.
    pub cause: String,
}

/// Run every hook of `kind` in order; stop at the first failure.
pub fn run_all(spec: &Spec, kind: Kind, state: &str) -> Result<(), HookError> {
    for (index, hook) in kind.hooks(spec).iter().enumerate() {
        run_one(hook, state).map_err(|cause| HookError {
            kind: kind.name(),
            index,
            path: hook.path().display().to_string(),
            cause,
        })?;
    }
    Ok(())
}

/// Run every hook of `kind`, reporting failures as warnings (poststart, poststop).
pub fn run_all_warn(spec: &Spec, kind: Kind, state: &str) -> Vec<HookError> {
    kind.hooks(spec)
        .iter()
        .enumerate()
        .filter_map(|(index, hook)| {
            run_one(hook, state).err().map(|cause| HookError {
                kind: kind.name(),
                index,
                path: hook.path().display().to_string(),
                cause,
            })
        })
        .collect()
}

fn run_one(hook: &Hook, state: &str) -> Result<(), String> {
    let args = hook.args().clone().unwrap_or_default();
    let mut cmd = Command::new(hook.path());
    if let Some((arg0, rest)) = args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    cmd.env_clear();
    for pair in hook.env().iter().flatten() {
        if let Some((k, v)) = pair.split_once('=') {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| crate::util::cause(&e))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine (EPIPE is ignored).
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut pause = Duration::from_micros(200);
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| crate::util::cause(&e))? {
            break status;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "timed out after {}s",
                hook.timeout().unwrap_or_default()
            ));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        format!("{status}")
    } else {
        format!("{status}, stderr: {stderr}")
    })
}
