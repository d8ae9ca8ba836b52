//! Failover end to end: the real binary, real HTTP/TCP backends on loopback, real DNS over
//! UDP and TCP. Backends are killed (listener closed: connections refused), hung (accept,
//! never answer) or made to answer 503.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::https::{HttpsBackend, Seen};
use crate::common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

const WWW: &str = "www.svc.example.test.";

/// Two members on their own loopback addresses sharing one free port.
fn two_members() -> (SocketAddr, SocketAddr) {
    let (primary, standby) = (loopback_ip(), loopback_ip());
    let port = free_port(&[primary, standby]);
    (
        SocketAddr::new(primary, port),
        SocketAddr::new(standby, port),
    )
}

/// Two healthy HTTP backends and a server checking them, once it has seen both up.
struct Pair {
    primary: HttpBackend,
    _standby: HttpBackend,
    server: Server,
    p: SocketAddr,
    s: SocketAddr,
}

fn healthy_pair(kind: &str, edit_service: impl Fn(String) -> String) -> Pair {
    let (p, s) = two_members();
    let primary = HttpBackend::start(p);
    let standby = HttpBackend::start(s);
    let server = Server::start(&edit_service(service_toml(
        WWW,
        &[p.ip(), s.ip()],
        kind,
        p.port(),
        "",
    )));
    server.wait_for_members_up(2);
    Pair {
        primary,
        _standby: standby,
        server,
        p,
        s,
    }
}

#[test]
fn fails_over_when_primary_dies_and_fails_back_after_rise() {
    let Pair {
        primary,
        _standby,
        server,
        p,
        s,
        ..
    } = healthy_pair("http", |toml| toml);
    // Both members up: the primary is the answer, over UDP and TCP alike.
    assert_eq!(server.addresses(WWW), [p.ip()]);
    assert_eq!(
        addresses(&query(server.dns, WWW, RecordType::A, Transport::Tcp)),
        [p.ip()]
    );
    let serial_before = server.serial();

    let killed = Instant::now();
    primary.kill();
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    eprintln!(
        "failover latency (http, interval 200ms, timeout 200ms, fall 2): {:?}",
        killed.elapsed()
    );
    assert!(
        server.serial() > serial_before,
        "an answer change must bump the SOA serial"
    );
    server.assert_went(p.ip(), "down", "connection refused");
    let changed = server
        .events()
        .into_iter()
        .find(|e| e.field("event") == "answer_changed");
    let changed = changed.expect("an answer_changed event");
    assert_eq!(
        (
            changed.field("family"),
            changed.field("from"),
            changed.field("to")
        ),
        ("A".to_string(), p.ip().to_string(), s.ip().to_string())
    );

    let _primary = HttpBackend::start(p);
    server.wait_for_answer(WWW, &[p.ip()], Duration::from_secs(10));
    server.assert_went(p.ip(), "up", "2 consecutive checks passed");
}

#[test]
fn fails_over_when_primary_answers_http_503() {
    let Pair {
        primary,
        _standby,
        server,
        s,
        ..
    } = healthy_pair("http", |toml| toml);
    primary.set_status(503);
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    server.assert_went(primary.addr.ip(), "down", "HTTP 503");
}

#[test]
fn tcp_check_fails_over_on_connection_refused() {
    let Pair {
        primary,
        _standby,
        server,
        s,
        ..
    } = healthy_pair("tcp", |toml| toml);
    primary.kill();
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    let over_tcp = query(server.dns, WWW, RecordType::A, Transport::Tcp);
    assert_eq!(addresses(&over_tcp), [s.ip()]);
}

#[test]
fn tcp_check_fails_over_when_the_primary_stops_accepting() {
    // A stopped process's kernel keeps completing handshakes until the listen backlog is
    // full, then drops new SYNs: from then on every check's connect hangs until its timeout.
    let (p, s) = two_members();
    let listener =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    listener.bind(&p.into()).expect("bind primary");
    listener.listen(1).expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let accepting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let acceptor = {
        let accepting = std::sync::Arc::clone(&accepting);
        let listener = listener.try_clone().expect("clone");
        std::thread::spawn(move || {
            while accepting.load(std::sync::atomic::Ordering::Relaxed) {
                if listener.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        })
    };
    let _standby = HttpBackend::start(s);
    let server = Server::start(&service_toml(WWW, &[p.ip(), s.ip()], "tcp", p.port(), ""));
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p.ip()]);

    accepting.store(false, std::sync::atomic::Ordering::Relaxed);
    acceptor.join().expect("acceptor");
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    server.assert_went(p.ip(), "down", "timeout after 200ms");
}

#[test]
fn tcp_checks_close_with_a_reset_and_leave_no_time_wait() {
    // A member that, like most services, reads what a client sends and closes when it ends.
    let listener = TcpListener::bind((loopback_ip(), 0)).expect("member listener");
    let member = listener.local_addr().expect("member address");
    let (checked, checks) = mpsc::channel();
    let accepting = std::thread::spawn(move || {
        for _ in 0..3 {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let ended = stream.read_to_end(&mut Vec::new());
            drop(stream);
            let _ = checked.send(ended.map(drop).map_err(|e| e.kind()));
        }
    });
    let _server = Server::start(&service_toml(WWW, &[member.ip()], "tcp", member.port(), ""));
    for _ in 0..3 {
        let ended = checks
            .recv_timeout(Duration::from_secs(10))
            .expect("a check");
        assert_eq!(ended, Err(ErrorKind::ConnectionReset), "the check's close");
    }
    accepting.join().expect("member thread");
    // A graceful close would have left a TIME_WAIT socket per check, for a minute.
    let waiting = time_wait_sockets(&member);
    assert!(waiting.is_empty(), "TIME_WAIT sockets: {waiting:?}");
}

/// Lines of /proc/net/tcp in state TIME_WAIT with `addr` at either end.
fn time_wait_sockets(addr: &SocketAddr) -> Vec<String> {
    const TIME_WAIT: &str = "06";
    let IpAddr::V4(ip) = addr.ip() else {
        panic!("IPv4 members only");
    };
    // The kernel prints the address as the in-memory (network order) word read natively.
    let hex = format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    );
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.len() > 3 && fields[3] == TIME_WAIT && (fields[1] == hex || fields[2] == hex)
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn negative_answers_on_an_open_tcp_connection_carry_the_serial_after_a_failover() {
    let Pair {
        primary,
        _standby,
        server,
        s,
        ..
    } = healthy_pair("tcp", |toml| toml);
    let mut connection = TcpStream::connect(server.dns).expect("connect");
    connection
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let before = nxdomain_serial(&mut connection);
    assert_eq!(before, server.serial());
    primary.kill();
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    let after = nxdomain_serial(&mut connection);
    assert_ne!(after, before, "the failover raised the serial");
    assert_eq!(after, server.serial());
}

/// The SOA serial in the NXDOMAIN answer to a query sent over `connection`.
fn nxdomain_serial(connection: &mut TcpStream) -> u32 {
    let bytes = request("nx.svc.example.test.", RecordType::A)
        .to_vec()
        .expect("encode");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    connection.write_all(&framed).expect("send");
    let mut length = [0u8; 2];
    connection.read_exact(&mut length).expect("length");
    let mut response = vec![0u8; usize::from(u16::from_be_bytes(length))];
    connection.read_exact(&mut response).expect("response");
    let response = Message::from_vec(&response).expect("a DNS message");
    assert_eq!(rcode(&response), ResponseCode::NXDomain);
    match response.authorities.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) => soa.serial,
        other => panic!("no SOA in authority: {other:?}"),
    }
}

#[test]
fn hung_backend_is_marked_down_by_timeout() {
    let (p, s) = two_members();
    let _primary = HungBackend::start(p);
    let _standby = HttpBackend::start(s);
    let server = Server::start(&service_toml(WWW, &[p.ip(), s.ip()], "http", p.port(), ""));
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    server.assert_went(p.ip(), "down", "timeout after 200ms");
}

#[test]
fn all_members_down_fails_open_and_says_so() {
    let (p, s) = two_members();
    let server = Server::start(&service_toml(WWW, &[p.ip(), s.ip()], "tcp", p.port(), ""));
    server.wait_for_answer(WWW, &[p.ip(), s.ip()], Duration::from_secs(10));
    assert!(
        server
            .log()
            .contains(&format!("every A member of {WWW} is down; failing open")),
        "{}",
        server.log()
    );

    let _standby = HttpBackend::start(s);
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
}

#[test]
fn answers_the_primary_until_its_first_check_completes() {
    let (p, s) = two_members();
    let _primary = HungBackend::start(p);
    let _standby = HttpBackend::start(s);
    let service = service_toml(WWW, &[p.ip(), s.ip()], "http", p.port(), "")
        .replace("interval = \"200ms\"", "interval = \"10s\"")
        .replace("timeout = \"200ms\"", "timeout = \"3s\"");
    let server = Server::start(&service);
    // The primary's first check hangs for 3 s; until it times out the primary is unknown,
    // which counts as healthy.
    assert_eq!(server.addresses(WWW), [p.ip()]);
    assert!(!server.went(p.ip(), "down", ""), "no check has failed yet");
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    server.assert_went(p.ip(), "down", "timeout after 3s");
}

#[test]
fn without_failback_the_answer_stays_on_the_standby() {
    let no_failback = |toml: String| toml.replace("ttl = 5\n", "ttl = 5\nfailback = false\n");
    let Pair {
        primary,
        _standby,
        server,
        p,
        s,
        ..
    } = healthy_pair("tcp", no_failback);
    primary.kill();
    server.wait_for_answer(WWW, &[s.ip()], Duration::from_secs(10));
    let _primary = HttpBackend::start(p);
    wait_until("primary up again", Duration::from_secs(10), || {
        server.went(p.ip(), "up", "2 consecutive checks passed")
    });
    assert_eq!(
        server.addresses(WWW),
        [s.ip()],
        "a recovered primary does not take the answer back"
    );
}

#[test]
fn ipv4_and_ipv6_members_fail_over_per_family() {
    let (p4, s4) = two_members();
    // Nothing listens on the v6 members (::2 is not even local), so AAAA fails open.
    let (p6, s6): (IpAddr, IpAddr) = ("::1".parse().expect("v6"), "::2".parse().expect("v6"));
    let _primary = HttpBackend::start(p4);
    let _standby = HttpBackend::start(s4);
    let members = [p4.ip(), p6, s4.ip(), s6];
    let service = service_toml(WWW, &members, "tcp", p4.port(), "");
    let server = Server::start(&service);
    wait_until("v4 primary up", Duration::from_secs(10), || {
        server
            .log()
            .contains(&format!("member {} of {WWW} is up", p4.ip()))
    });
    assert_eq!(server.addresses(WWW), [p4.ip()]);
    wait_until("AAAA fails open", Duration::from_secs(10), || {
        addresses(&query(server.dns, WWW, RecordType::AAAA, Transport::Udp)).len() == 2
    });
}

#[test]
fn queries_are_answered_while_checks_hang() {
    let (p, s) = two_members();
    let _primary = HungBackend::start(p);
    let _standby = HungBackend::start(s);
    let service = service_toml(WWW, &[p.ip(), s.ip()], "http", p.port(), "")
        .replace("interval = \"200ms\"", "interval = \"5s\"")
        .replace("timeout = \"200ms\"", "timeout = \"5s\"");
    let server = Server::start(&service);
    // Every check is stuck for 5 s; each of these queries must still be answered (1 s client
    // timeout), and with the unchanged primary.
    for i in 0..500 {
        let transport = if i % 10 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let response = try_query(server.dns, WWW, RecordType::A, transport)
            .unwrap_or_else(|| panic!("query {i} unanswered while checks hang"));
        assert_eq!(addresses(&response), [p.ip()]);
    }
    assert!(
        !server.transitions().iter().any(|t| t.to == "down"),
        "the checks were still pending"
    );
}

/// One HTTPS member with a self-signed certificate for `app.example.test`, checked as two
/// services with the same `extra` check lines: `WWW` with `tls_verify = false`, and a second
/// that verifies. Returns once the first has seen the member up and the second down, after
/// checking that it was the certificate it rejected.
fn https_member_trusted_and_verified(extra: &str) -> (HttpsBackend, Server) {
    let ip = loopback_ip();
    let member = SocketAddr::new(ip, free_port(&[ip]));
    let backend = HttpsBackend::start(member, &["app.example.test"]);
    let verifying = "api.svc.example.test.";
    let service = |name: &str, extra: String| {
        service_toml(
            name,
            &[ip],
            "http",
            member.port(),
            &format!("scheme = \"https\"\n{extra}"),
        )
    };
    let services = format!(
        "{}{}",
        service(WWW, format!("{extra}tls_verify = false\n")),
        service(verifying, extra.to_string()),
    );
    let server = Server::start(&services);
    let decided = |service: &str, to: &str| {
        server
            .transitions()
            .iter()
            .any(|t| t.member == ip.to_string() && t.service == service && t.to == to)
    };
    wait_until("both checks decided", Duration::from_secs(10), || {
        decided(WWW, "up") && decided(verifying, "down")
    });
    // Nobody the system trusts signed the certificate: verification must say why it failed.
    assert!(
        server.transitions().iter().any(|t| t.service == verifying
            && t.to == "down"
            && t.reason.contains("invalid peer certificate")),
        "{}",
        server.log()
    );
    (backend, server)
}

#[test]
fn https_checks_verify_certificates_unless_told_not_to() {
    // Without `host` the certificate is also for a name that is not the address.
    let (backend, _server) = https_member_trusted_and_verified("");
    assert!(
        backend.seen().iter().all(|seen| seen.server_name.is_none()),
        "without host no server name is sent (an IP address cannot be one): {:?}",
        backend.seen()
    );
}

#[test]
fn an_https_check_with_host_sends_it_as_server_name_and_host_header() {
    // The name matches the certificate; it is still refused where verification is on.
    let (backend, _server) = https_member_trusted_and_verified("host = \"app.example.test\"\n");
    // Several checks, each a full handshake: a resumed session would skip the certificate.
    wait_until("three checks answered", Duration::from_secs(10), || {
        backend.seen().len() >= 3
    });
    let expected = Seen {
        server_name: Some("app.example.test".to_string()),
        host: Some(format!("app.example.test:{}", backend.addr.port())),
        resumed: false,
    };
    let seen = backend.seen();
    assert!(seen.iter().all(|s| *s == expected), "{seen:?}");
}
