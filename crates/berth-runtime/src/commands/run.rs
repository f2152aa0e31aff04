//! `run`: create + start, then (unless `-d`) wait for the process, forwarding signals, and
//! delete the container when it exits.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::Error;
use crate::cli::RunArgs;
use crate::state::Store;

/// Run the container of `args`; returns its exit code.
pub fn run(store: &Store, args: &RunArgs) -> Result<i32, Error> {
    let bundle = crate::spec::load(&args.create.bundle)?;
    let id = &args.create.id;
    let foreground = !args.detach;
    if foreground {
        block_signals()?;
        if !args.no_subreaper {
            berth_sys::set_child_subreaper()
                .map_err(super::io("set child subreaper", "/proc/self"))?;
        }
    }
    let terminal = bundle.spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let own_console = terminal && args.create.console_socket.is_none();
    if own_console && !foreground {
        return Err(Error::Invalid(
            "cannot allocate tty if berth-runtime will detach without setting console socket"
                .into(),
        ));
    }
    let (console, theirs) = match own_console {
        true => {
            let (ours, theirs) = super::tty::pair()?;
            (Some(ours), Some(theirs))
        }
        false => (None, None),
    };
    let created = super::create::with_bundle(store, &args.create, bundle, theirs)?;
    // Released without `start`'s reload: we made it and still hold its lock.
    if let Err(e) = super::start::release(&created.container) {
        let c = &created.container;
        // Teardown goes on past a failed step; the release error is the one reported.
        if let Err(kill) = super::delete::kill_all(c) {
            eprintln!("cleanup: {kill}");
        }
        if let Err(destroy) = super::delete::destroy(c) {
            eprintln!("cleanup: {destroy}");
        }
        return Err(e);
    }
    drop(created.container);
    if !foreground {
        return Ok(0);
    }
    let attached = console.map(|c| c.attach()).transpose()?;
    let code = wait_forwarding(created.pid, &|| {
        if let Some(a) = &attached {
            a.resize()
        }
    })?;
    if let Some(a) = attached {
        a.finish();
    }
    if !args.keep {
        let container = store.load(id)?;
        super::delete::destroy_with(&container, Ok(created.cgroup))?;
    }
    Ok(code)
}

/// Block every catchable signal so they can be taken with sigwait and forwarded.
pub fn block_signals() -> Result<(), Error> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), None)
        .map_err(|e| super::io("block signals", "sigprocmask")(e.into()))
}

/// Wait for `pid` to exit, forwarding every signal we get except SIGCHLD to it, and reaping
/// other children (we may be their subreaper). Returns the exit code, 128+signal when killed.
pub fn wait_forwarding(pid: i32, on_winch: &dyn Fn()) -> Result<i32, Error> {
    let target = Pid::from_raw(pid);
    let all = SigSet::all();
    loop {
        // Reap first: the child may have exited before we started waiting.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
                Ok(WaitStatus::Signaled(p, sig, _)) if p == target => return Ok(128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        let sig = all
            .wait()
            .map_err(|e| super::io("wait for signals", "sigwait")(e.into()))?;
        if sig == Signal::SIGWINCH {
            on_winch();
        } else if !matches!(sig, Signal::SIGCHLD | Signal::SIGURG) {
            let _ = nix::sys::signal::kill(target, sig);
        }
    }
}
