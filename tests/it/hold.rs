//! Held connections (`hold = true`): a member process killed with SIGKILL closes its held
//! connection at once and is checked at once; a member that closes idle connections is not a
//! failure. Members are real processes (a second failover-dns, whose DNS TCP listener the
//! checks connect to), so a kill is a real crash.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;

const WWW: &str = "www.svc.example.test.";

/// A member process: failover-dns listening on `ip:port`, idle TCP connections kept a minute.
fn member_process(ip: IpAddr, port: u16) -> Server {
    let addr = SocketAddr::new(ip, port);
    let config = "[server]\ntcp_idle_timeout = \"60s\"\n\n\
                  [[zone]]\norigin = \"svc.example.test.\"\nfile = \"m.zone\"\n";
    Server::start_listening(
        &[addr],
        addr,
        &[("m.zone", ZONE)],
        config,
        "svc.example.test.",
    )
}

/// The service checked every `interval`, rise 1, fall 2, fast_interval 10 ms, holding a
/// connection to each member.
fn held_service(members: &[IpAddr], port: u16, interval: &str) -> String {
    service_toml(
        WWW,
        members,
        "tcp",
        port,
        "hold = true\nfast_interval = \"10ms\"\n",
    )
    .replace(
        "interval = \"200ms\"\ntimeout",
        &format!("interval = \"{interval}\"\ntimeout"),
    )
    .replace("rise = 2", "rise = 1")
}

#[test]
fn a_held_member_killed_with_sigkill_is_answered_away_from_before_one_interval() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = member_process(p, port);
    let _standby = member_process(s, port);
    // Checked every 30 s: without the hold, the crash would be seen up to 30 s later.
    let server = Server::start(&held_service(&[p, s], port, "30s"));
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);

    primary.signal(nix::sys::signal::Signal::SIGKILL);
    let killed = Instant::now();
    wait_until(
        "the standby to be answered",
        Duration::from_secs(10),
        || server.addresses(WWW) == [s],
    );
    let took = killed.elapsed();
    // Well before one interval has passed (no tighter bound: these machines are shared).
    assert!(
        took < Duration::from_secs(10),
        "answered the standby {took:?} after the kill"
    );
    server.assert_went(p, "down", "");
}

#[test]
fn a_member_that_closes_idle_connections_is_not_a_failure() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    // The primary accepts every connection and closes it 300 ms later, as a server with a
    // short idle timeout does.
    let listener = TcpListener::bind((p, port)).expect("bind");
    let closed = Arc::new(AtomicUsize::new(0));
    {
        let closed = Arc::clone(&closed);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let closed = Arc::clone(&closed);
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(300));
                    drop(stream);
                    closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
    }
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let server = Server::start(&held_service(&[p, s], port, "200ms"));
    server.wait_for_members_up(2);
    let before = closed.load(Ordering::SeqCst);
    wait_until(
        "the primary to close five held connections",
        Duration::from_secs(30),
        || closed.load(Ordering::SeqCst) >= before + 5,
    );
    assert!(!server.went(p, "down", ""), "{}", server.log());
    assert_eq!(server.addresses(WWW), [p]);
}

#[test]
fn a_held_member_that_hangs_is_still_failed_over_by_its_http_checks() {
    // SIGSTOP: the kernel keeps the held connection open and accepts new ones; only a check
    // that needs the process itself (http) sees the hang, by its timeout.
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let api_member = |ip: IpAddr| {
        let dns = SocketAddr::new(ip, free_port(&[ip]));
        let config = format!(
            "[server]\nhttp = \"{ip}:{port}\"\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"m.zone\"\n"
        );
        Server::start_listening(
            &[dns],
            dns,
            &[("m.zone", ZONE)],
            &config,
            "svc.example.test.",
        )
    };
    let primary = api_member(p);
    let _standby = api_member(s);
    let service = service_toml(
        WWW,
        &[p, s],
        "http",
        port,
        "hold = true\nfast_interval = \"10ms\"\n",
    )
    .replace("path = \"/health\"", "path = \"/healthz\"");
    let server = Server::start(&service);
    server.wait_for_members_up(2);
    primary.signal(nix::sys::signal::Signal::SIGSTOP);
    wait_until(
        "the hung primary to be failed over",
        Duration::from_secs(10),
        || server.addresses(WWW) == [s],
    );
    server.assert_went(p, "down", "timeout");
    primary.signal(nix::sys::signal::Signal::SIGCONT);
}
