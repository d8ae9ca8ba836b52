//! Held connections (`hold = true`): a member process killed with SIGKILL closes its held
//! connection at once and is checked at once; a member that closes idle connections is not a
//! failure. Members are real processes (a second failover-dns, whose DNS TCP listener the
//! checks connect to), so a kill is a real crash.

use std::net::{IpAddr, SocketAddr};
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

    assert_killing_moves_the_answer(&server, &primary, p, s);
}

/// Kills the `primary` process (member `p`) with SIGKILL and asserts that `server` answers the
/// standby `s` well before one interval (30 s) has passed, with `p` logged down.
fn assert_killing_moves_the_answer(server: &Server, primary: &Server, p: IpAddr, s: IpAddr) {
    primary.signal(nix::sys::signal::Signal::SIGKILL);
    let took = server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
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
    let closed = Arc::new(AtomicUsize::new(0));
    {
        let closed = Arc::clone(&closed);
        serve_each(SocketAddr::new(p, port), move |stream| {
            // The member's own idle timeout, not a test waiting for something.
            std::thread::sleep(Duration::from_millis(300));
            drop(stream);
            closed.fetch_add(1, Ordering::SeqCst);
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

/// A member process whose API (a real keep-alive HTTP server, `/healthz`) listens on
/// `ip:port` and keeps idle connections a minute.
fn api_member(ip: IpAddr, port: u16) -> Server {
    let dns = SocketAddr::new(ip, free_port(&[ip]));
    let config = format!(
        "[server]\nhttp = \"{ip}:{port}\"\nhttp_timeout = \"60s\"\n\n\
         [[zone]]\norigin = \"svc.example.test.\"\nfile = \"m.zone\"\n"
    );
    Server::start_listening(
        &[dns],
        dns,
        &[("m.zone", ZONE)],
        &config,
        "svc.example.test.",
    )
}

/// The service http-checked (`/healthz`) every `interval`, holding a keep-alive connection.
fn held_http_service(members: &[IpAddr], port: u16, interval: &str) -> String {
    held_service(members, port, interval)
        .replace("kind = \"tcp\"", "kind = \"http\"\npath = \"/healthz\"")
}

#[test]
fn a_held_http_member_killed_with_sigkill_is_answered_away_from_before_one_interval() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = api_member(p, port);
    let _standby = api_member(s, port);
    let server = Server::start(&held_http_service(&[p, s], port, "30s"));
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    // Checked every 30 s: the kill is seen by the held keep-alive connection's end.
    assert_killing_moves_the_answer(&server, &primary, p, s);
}

/// A keep-alive HTTP/1.1 server answering 200 to every request, counting the connections it
/// accepted and the requests it answered.
struct CountingBackend {
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl CountingBackend {
    fn start(addr: SocketAddr) -> Self {
        use std::io::{BufRead, BufReader, Write};
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (c, r) = (Arc::clone(&connections), Arc::clone(&requests));
        serve_each(addr, move |stream| {
            c.fetch_add(1, Ordering::SeqCst);
            let Ok(mut writer) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) if line == "\r\n" => {
                        r.fetch_add(1, Ordering::SeqCst);
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if writer.write_all(ok).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                }
            }
        });
        Self {
            connections,
            requests,
        }
    }
}

#[test]
fn held_http_checks_go_over_the_one_keep_alive_connection() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = CountingBackend::start(SocketAddr::new(p, port));
    let _standby = CountingBackend::start(SocketAddr::new(s, port));
    let server = Server::start(&held_http_service(&[p, s], port, "200ms"));
    server.wait_for_members_up(2);
    wait_until(
        "twenty checks of the primary",
        Duration::from_secs(30),
        || primary.requests.load(Ordering::SeqCst) >= 20,
    );
    // One held connection, plus at most the first check's own if it ran before the hold
    // opened: not a connection per check.
    let connections = primary.connections.load(Ordering::SeqCst);
    assert!(
        connections <= 3,
        "{connections} connections for {} checks",
        primary.requests.load(Ordering::SeqCst)
    );
    assert_eq!(server.addresses(WWW), [p]);
}

#[test]
fn a_member_whose_hold_is_refused_is_checked_as_without_hold() {
    // The primary accepts every connection and closes it at once, as a server at its
    // connection limit does: the tcp check passes (the connection was accepted), the hold
    // never lasts.
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let accepted = Arc::new(AtomicUsize::new(0));
    {
        let accepted = Arc::clone(&accepted);
        serve_each(SocketAddr::new(p, port), move |stream| {
            accepted.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        });
    }
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let server = Server::start(&held_service(&[p, s], port, "200ms"));
    server.wait_for_members_up(2);
    let start = Instant::now();
    let before = accepted.load(Ordering::SeqCst);
    wait_until(
        "forty connections to the primary",
        Duration::from_secs(60),
        || accepted.load(Ordering::SeqCst) >= before + 40,
    );
    let elapsed = start.elapsed();
    assert!(!server.went(p, "down", ""), "{}", server.log());
    assert_eq!(server.addresses(WWW), [p]);
    // Not a reconnect loop: each hold and the check it triggers wait at least an interval
    // (200 ms) before the next, beside the periodic checks; allow twice that and more.
    let per_interval = 40.0 / (elapsed.as_secs_f64() / 0.2);
    assert!(
        per_interval <= 6.0,
        "{per_interval:.1} connections per interval: the hold reconnects in a loop"
    );
}

#[test]
fn a_held_member_that_hangs_is_still_failed_over_by_its_http_checks() {
    // SIGSTOP: the kernel keeps the held connection open and accepts new ones; only a check
    // that needs the process itself (http) sees the hang, by its timeout.
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = api_member(p, port);
    let _standby = api_member(s, port);
    let server = Server::start(&held_http_service(&[p, s], port, "200ms"));
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

#[test]
fn status_says_whether_each_members_hold_is_open() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (server, api) = start_with_api(&held_service(&[p, s], port, "1s"));
    server.wait_for_members_up(2);
    wait_until("both holds open", Duration::from_secs(10), || {
        api.member(p)["held"] == true && api.member(s)["held"] == true
    });
    primary.kill();
    wait_until("the primary's hold closed", Duration::from_secs(10), || {
        api.member(p)["held"] == false
    });
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
}
