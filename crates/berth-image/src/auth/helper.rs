//! Docker credential helpers: `docker-credential-<name> get|store|erase`, speaking the
//! protocol of docker/docker-credential-helpers (server URL or JSON on stdin, JSON on stdout).

use std::ffi::{OsStr, OsString};
use std::io::{self, Write};
use std::process::{Command, Output, Stdio};

use serde::{Deserialize, Serialize};

use super::Credentials;

/// What a helper prints when it has nothing for the server (exit status 1).
const NOT_FOUND: &str = "credentials not found in native keychain";

/// Why a credential helper could not answer.
#[derive(Debug, thiserror::Error)]
pub enum HelperError {
    /// The helper program is not on `PATH`.
    #[error("credential helper {program} not found on PATH (configured in the docker config; install it or remove the setting)")]
    Missing {
        /// `docker-credential-<name>`.
        program: String,
    },
    /// Starting or talking to the helper failed.
    #[error("credential helper {program} {action}: {source}")]
    Io {
        /// `docker-credential-<name>`.
        program: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// The error.
        #[source]
        source: io::Error,
    },
    /// The helper exited unsuccessfully.
    #[error("credential helper {program} {action} failed: {message}")]
    Failed {
        /// `docker-credential-<name>`.
        program: String,
        /// `get`, `store` or `erase`.
        action: &'static str,
        /// Its output (stdout, else stderr), or its exit status.
        message: String,
    },
    /// `get` printed something that is not the expected JSON.
    #[error("credential helper {program} get: unreadable answer: {source}")]
    BadAnswer {
        /// `docker-credential-<name>`.
        program: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

/// One helper, found through `search_path` (the process's `PATH` when `None`).
pub(crate) struct Helper<'a> {
    program: String,
    search_path: Option<&'a OsStr>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Message {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    username: String,
    secret: String,
}

impl<'a> Helper<'a> {
    /// The helper `docker-credential-<name>`.
    pub(crate) fn new(name: &str, search_path: Option<&'a OsStr>) -> Self {
        Helper {
            program: format!("docker-credential-{name}"),
            search_path,
        }
    }

    /// The credentials the helper holds for `server`, or `None` when it has none.
    pub(crate) fn get(&self, server: &str) -> Result<Option<Credentials>, HelperError> {
        let output = self.run("get", server.as_bytes())?;
        if !output.status.success() {
            if String::from_utf8_lossy(&output.stdout).trim() == NOT_FOUND {
                return Ok(None);
            }
            return Err(self.failed("get", &output));
        }
        let answer: Message =
            serde_json::from_slice(&output.stdout).map_err(|source| HelperError::BadAnswer {
                program: self.program.clone(),
                source,
            })?;
        Ok(Some(Credentials {
            username: answer.username,
            password: answer.secret,
        }))
    }

    /// Hand `credentials` for `server` to the helper.
    pub(crate) fn store(&self, server: &str, credentials: &Credentials) -> Result<(), HelperError> {
        let message = Message {
            server_url: server.to_owned(),
            username: credentials.username.clone(),
            secret: credentials.password.clone(),
        };
        let input = serde_json::to_vec(&message).map_err(|e| HelperError::Io {
            program: self.program.clone(),
            action: "store",
            source: e.into(),
        })?;
        let output = self.run("store", &input)?;
        if !output.status.success() {
            return Err(self.failed("store", &output));
        }
        Ok(())
    }

    /// Ask the helper to forget `server`; `false` when it held nothing for it.
    pub(crate) fn erase(&self, server: &str) -> Result<bool, HelperError> {
        let output = self.run("erase", server.as_bytes())?;
        if output.status.success() {
            return Ok(true);
        }
        if String::from_utf8_lossy(&output.stdout).trim() == NOT_FOUND {
            return Ok(false);
        }
        Err(self.failed("erase", &output))
    }

    fn run(&self, action: &'static str, input: &[u8]) -> Result<Output, HelperError> {
        let mut command = Command::new(&self.program);
        command
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(path) = self.search_path {
            // std looks the program up in the child's PATH when it is set explicitly.
            command.env("PATH", OsString::from(path));
        }
        let io_err = |source| HelperError::Io {
            program: self.program.clone(),
            action,
            source,
        };
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(HelperError::Missing {
                    program: self.program.clone(),
                })
            }
            Err(e) => return Err(io_err(e)),
        };
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input).map_err(io_err)?;
        }
        child.wait_with_output().map_err(io_err)
    }

    fn failed(&self, action: &'static str, output: &Output) -> HelperError {
        let stdout = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        let message = [stdout, stderr]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or_else(|| output.status.to_string());
        HelperError::Failed {
            program: self.program.clone(),
            action,
            message,
        }
    }
}
