//! Expectations are docker's (moby `oci/defaults.go`, `daemon/oci_linux.go`, the CLI's
//! `opts` package, go-units, runc's `libcontainer/user`), written from its source and
//! documentation: this machine has the docker CLI but no running daemon to compare with.

mod generate;
mod generate_flags;
mod parse;
mod parse_mount;
mod seccomp;
mod support;
mod user;
