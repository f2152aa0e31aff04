//! A terminal for the process: a pty from the container's own devpts, whose master is sent to
//! the caller over `--console-socket` (SCM_RIGHTS), and whose slave becomes the process's stdio
//! and controlling terminal.

use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

use super::{fail, Config, Step, StepError};

/// Set up the terminal if the process asks for one.
pub fn setup(config: &mut Config<'_>) -> Result<(), StepError> {
    if config.process.terminal() != Some(true) {
        return Ok(());
    }
    let socket = config.console_socket.take().ok_or_else(|| {
        fail(
            "set up console",
            "terminal requested but no --console-socket given",
        )
    })?;
    let master: OwnedFd = open_tty("/dev/ptmx").step(|| "open /dev/ptmx".into())?;
    let n = berth_sys::unlock_pty(master.as_fd()).step(|| "unlock pty".into())?;
    let slave_path = format!("/dev/pts/{n}");
    let slave = open_tty(&slave_path).step(|| format!("open {slave_path}"))?;
    if let Some(size) = config.process.console_size() {
        berth_sys::set_window_size(slave.as_fd(), size.height() as u16, size.width() as u16)
            .step(|| "set console size".into())?;
    }
    send_fd(&socket, slave_path.as_bytes(), &master)
        .step(|| "send pty master to console socket".into())?;
    drop(master);
    drop(socket);
    for target in 0..3 {
        nix::unistd::dup2(slave.as_raw_fd(), target).step(|| "use the terminal as stdio".into())?;
    }
    berth_sys::set_controlling_terminal(slave.as_fd())
        .step(|| "set controlling terminal".into())?;
    Ok(())
}

fn open_tty(path: &str) -> std::io::Result<OwnedFd> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?;
    Ok(file.into())
}

/// Send `fd` with `name` as payload, as runc's `utils.SendFd` does.
pub fn send_fd(socket: &OwnedFd, name: &[u8], fd: &OwnedFd) -> std::io::Result<()> {
    let fds = [fd.as_raw_fd()];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &[IoSlice::new(name)],
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )?;
    Ok(())
}
