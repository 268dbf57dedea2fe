//! The child side of supervision: helpers a supervised program (`sadomap serve`, `sadomap
//! worker`) calls early in `main`.
//!
//! Socket passing: the supervisor binds the listening socket once and hands a duplicate to each
//! `inherit_listener` instance as fd 3 with `LISTEN_FDS=1` (the systemd convention, without
//! `LISTEN_PID`, which cannot be known before the child exists). All instances accept from the
//! same kernel queue, so a connection waiting to be accepted survives the loss of any one of
//! them. Adopting fd 3 needs `unsafe`, forbidden in this workspace; `listenfd` does it behind a
//! safe API.
//!
//! Orphans: a child that outlives a SIGKILLed supervisor would keep the socket and the port, and
//! the next `sadomap up` could not bind. [`exit_with_supervisor`] asks the kernel to send the
//! child SIGTERM when its parent goes.
//!
//! Concurrency: call both once, early in `main`, before other threads read the environment
//! (`inherited_listener` clears `LISTEN_FDS` so the socket is not adopted twice).

use std::net::TcpListener;

use nix::sys::signal::Signal;

/// Environment variable with the supervisor's pid, set on every local child.
pub const SUPERVISOR_PID_ENV: &str = "SADOMAP_SUPERVISOR_PID";

/// The listening socket inherited from the supervisor, if this process was given one.
/// `sadomap serve` calls this and falls back to binding `--listen` itself.
pub fn inherited_listener() -> std::io::Result<Option<TcpListener>> {
    listenfd::ListenFd::from_env().take_tcp_listener(0)
}

/// Makes the kernel send this process SIGTERM when its parent (the supervisor's loop thread,
/// which lives until shutdown) ends. Returns `Ok(false)` if the supervisor named in
/// [`SUPERVISOR_PID_ENV`] is already gone: the caller should exit.
pub fn exit_with_supervisor() -> std::io::Result<bool> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from)?;
    // The supervisor may have died before the call took effect: then our parent is not it.
    let expected = std::env::var(SUPERVISOR_PID_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok());
    Ok(match expected {
        Some(pid) => nix::unistd::getppid().as_raw() == pid,
        None => true,
    })
}
