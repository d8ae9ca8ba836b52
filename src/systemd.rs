//! Telling systemd how the server is doing (`Type=notify`): `READY=1` once every listener is
//! bound and the first snapshot is published, `RELOADING=1` then `READY=1` around each reload,
//! `STOPPING=1` at shutdown. The `sd-notify` crate writes the datagrams to `$NOTIFY_SOCKET`;
//! without that variable (not under systemd) every call does nothing.

use sd_notify::NotifyState;
use tracing::debug;

/// Every listener is bound and answering; `status` says what is served.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload has begun (with the monotonic time `Type=notify-reload` wants too).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// The server is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

fn send(states: &[NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    // A service manager that went away is no reason to stop serving.
    if let Err(error) = sd_notify::notify(states) {
        debug!(%error, "cannot notify the service manager");
    }
}
