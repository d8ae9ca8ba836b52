//! Running under systemd with `Type=notify`: the server tells `$NOTIFY_SOCKET` it is ready
//! once it answers, reloading and ready again around a SIGHUP reload, and stopping at SIGTERM.
//! The test is the service manager: it binds the datagram socket itself.

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use crate::common::*;

/// Datagrams received within `limit` until one contains `wanted`; panics with all of them.
fn until(socket: &UnixDatagram, wanted: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {wanted:?} among {seen:?}");
        socket.set_read_timeout(Some(left)).expect("timeout");
        if let Ok(n) = socket.recv(&mut buffer) {
            let message = String::from_utf8_lossy(&buffer[..n]).to_string();
            let done = message.lines().any(|line| line == wanted);
            seen.push(message);
            if done {
                return seen;
            }
        }
    }
}

#[test]
fn the_server_notifies_ready_reloading_and_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("notify");
    let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
    let path = path.display().to_string();
    let service = service_toml("www.svc.example.test.", &[loopback_ip()], "tcp", 9, "");
    let config =
        format!("[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{service}");
    let server = Server::start_with_env(
        &[("NOTIFY_SOCKET", &path)],
        &[("svc.zone", ZONE)],
        &config,
        "svc.example.test.",
    );
    let ready = until(&socket, "READY=1", Duration::from_secs(10));
    assert!(
        ready
            .last()
            .is_some_and(|m| m.contains("STATUS=serving 1 zones and 1 services")),
        "{ready:?}"
    );
    server.signal(nix::sys::signal::Signal::SIGHUP);
    let reload = until(&socket, "READY=1", Duration::from_secs(10));
    let all = reload.join("\n");
    assert!(all.contains("RELOADING=1"), "{reload:?}");
    assert!(all.contains("MONOTONIC_USEC="), "{reload:?}");
    assert!(all.contains("generation 2"), "{reload:?}");
    server.signal(nix::sys::signal::Signal::SIGTERM);
    until(&socket, "STOPPING=1", Duration::from_secs(10));
}
