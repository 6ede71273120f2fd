//! The systemd service manager protocol (`Type=notify`): `READY=1` once the listeners are bound
//! and the state is built, `STOPPING=1` when a shutdown signal arrives, `RELOADING=1` around a
//! config reload. Outside systemd (`NOTIFY_SOCKET` unset) every call does nothing.
//!
//! A failed notification is logged, never fatal: the daemon serves either way, and systemd
//! reports the missing `READY=1` itself (start timeout).

use sd_notify::NotifyState;

fn notify(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// `READY=1`: listening and able to answer.
pub fn ready() {
    notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
}

/// `STOPPING=1`: draining, about to exit.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

/// `RELOADING=1` with the monotonic timestamp systemd wants (`Type=notify-reload`-compatible);
/// follow with [`ready`].
pub fn reloading() {
    match sd_notify::NotifyState::monotonic_usec_now() {
        Ok(now) => notify(&[NotifyState::Reloading, now]),
        Err(_) => notify(&[NotifyState::Reloading]),
    }
}
