//! Hardening: what a hostile client or a broken disk can do to the server, each tried against
//! the real binary on loopback. No connection flood, trickle, cross-site request, reload storm
//! or unwritable state file may move a member or corrupt what is served.
//!
//! Longer than most files: one test per finding of the hardening review, each with the
//! attacker it needs (floods, trickles, slow backends); they share those and no one else does.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;

const WWW: &str = "www.svc.example.test.";

/// A TCP backend that accepts every connection (a healthy member for `kind = "tcp"`).
struct Acceptor {
    _listener: TcpListener,
}

impl Acceptor {
    fn start(ip: IpAddr, port: u16) -> Self {
        // The kernel completes connections into the backlog; a tcp check needs no more.
        let listener = TcpListener::bind((ip, port)).expect("bind member");
        Self {
            _listener: listener,
        }
    }
}

/// A metric's value summed over every series whose line starts with `prefix`.
fn metric(api: &Api, prefix: &str) -> f64 {
    let (_, text) = api.get("/metrics");
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One raw HTTP/1.1 exchange: the status code and body, or None if the server closed the
/// connection without a response.
fn raw_http(addr: SocketAddr, request: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    Some((status, body))
}

/// Whether the server has closed `stream` (read gives end of file or an error), waiting up to
/// `limit`; while waiting, `poke` is called every 100 ms (e.g. to send one more byte).
fn closed_within(
    stream: &mut TcpStream,
    limit: Duration,
    mut poke: impl FnMut(&mut TcpStream),
) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let deadline = Instant::now() + limit;
    let mut buffer = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => return true,
        }
        poke(stream);
    }
    false
}

/// A DNS query framed for TCP.
fn tcp_query(name: &str) -> Vec<u8> {
    let bytes = request(name, RecordType::A).to_vec().expect("encode");
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    framed
}

/// Sends a query on `stream` and reads its answer; None if the connection is gone.
fn ask_on(stream: &mut TcpStream, name: &str) -> Option<Message> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream.write_all(&tcp_query(name)).ok()?;
    let mut length = [0u8; 2];
    stream.read_exact(&mut length).ok()?;
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
    stream.read_exact(&mut body).ok()?;
    Message::from_vec(&body).ok()
}

/// The API's base URL, and a config with the API on, `server_extra` in `[server]`, the
/// example zone and `services`.
fn zone_config(server_extra: &str, services: &str) -> (String, String) {
    let (api_lines, base) = api_config(None);
    let config = format!(
        "[server]\n{api_lines}{server_extra}\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{services}"
    );
    (base, config)
}

fn tcp_service(members: &[IpAddr], port: u16) -> String {
    service_toml(WWW, members, "tcp", port, "")
}

/// A primary and a standby that pass TCP checks, and a config serving them as `WWW` with the
/// API on (and `server_extra` in `[server]`).
struct Pair {
    p: IpAddr,
    s: IpAddr,
    base: String,
    config: String,
    _members: [Acceptor; 2],
}

fn pair(server_extra: &str) -> Pair {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let members = [Acceptor::start(p, port), Acceptor::start(s, port)];
    let (base, config) = zone_config(server_extra, &tcp_service(&[p, s], port));
    Pair {
        p,
        s,
        base,
        config,
        _members: members,
    }
}

#[test]
fn a_tcp_flood_on_few_descriptors_never_moves_a_member() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let _primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (base, config) = zone_config("", &service_toml(WWW, &[p, s], "http", port, ""));
    let server =
        Server::start_with_nofile(1024, &[("svc.zone", ZONE)], &config, "svc.example.test.");
    server.wait_for_members_up(2);
    let api = Api::new(&base);
    let checks = |api: &Api| {
        metric(
            api,
            &format!("failover_dns_checks_total{{service=\"{WWW}\",member=\"{p}\",result=\"ok\""),
        )
    };
    let before = checks(&api);

    // 2,000 idle clients that reconnect as soon as they are cut, for at most 60 s.
    let stop = Arc::new(AtomicBool::new(false));
    let flood = {
        let (stop, dns) = (Arc::clone(&stop), server.dns);
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut open: Vec<TcpStream> = Vec::new();
            let mut buffer = [0u8; 64];
            while !stop.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(60) {
                for _ in 0..200 {
                    if open.len() >= 2000 {
                        break;
                    }
                    if let Ok(stream) = TcpStream::connect_timeout(&dns, Duration::from_secs(1)) {
                        let _ = stream.set_nonblocking(true);
                        open.push(stream);
                    }
                }
                open.retain_mut(|stream| match stream.read(&mut buffer) {
                    Ok(0) => false,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => true,
                    _ => false,
                });
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    // Until thousands of connections have been made room for and the primary has passed ten
    // more checks: long enough for exhausted descriptors to have failed it twice over.
    wait_until(
        "the flood to be cut back and ten more checks to pass",
        Duration::from_secs(40),
        || {
            metric(
                &api,
                "failover_dns_tcp_connections_dropped_total{reason=\"evicted\"",
            ) >= 2000.0
                && checks(&api) >= before + 10.0
        },
    );
    // While the flood goes on, TCP DNS and the API still answer.
    let answer = query(server.dns, WWW, RecordType::A, Transport::Tcp);
    assert_eq!(addresses(&answer), [p]);
    assert_eq!(api.get("/healthz").0, 200);
    stop.store(true, Ordering::SeqCst);
    flood.join().expect("flood");
    let events = server.events();
    assert!(
        !events.iter().any(|e| e.field("to") == "down"),
        "a member went down:\n{}",
        server.log()
    );
    assert!(
        !events.iter().any(|e| e.field("event") == "answer_changed"),
        "the answer moved:\n{}",
        server.log()
    );
    assert_eq!(server.addresses(WWW), [p]);
}

#[test]
fn a_message_trickled_byte_by_byte_is_cut_at_tcp_io_timeout() {
    let config = "[server]\ntcp_idle_timeout = \"3s\"\ntcp_io_timeout = \"500ms\"\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n";
    let server = Server::start_with_files(&[("svc.zone", ZONE)], config, "svc.example.test.");
    let mut stream = TcpStream::connect(server.dns).expect("connect");
    // Announce the largest message, then send a byte every 100 ms: each byte is well within
    // the idle timeout, but the message as a whole never arrives.
    stream.write_all(&[0xff, 0xff]).expect("length");
    let mut sent = 0;
    let closed = closed_within(&mut stream, Duration::from_secs(10), |stream| {
        sent += 1;
        let _ = stream.write_all(&[0]);
    });
    assert!(closed, "still open after {sent} bytes over 10 s");
    // Whole messages on other connections are answered as ever.
    let answer = query(
        server.dns,
        "svc.example.test.",
        RecordType::SOA,
        Transport::Tcp,
    );
    assert_eq!(rcode(&answer), hickory_proto::op::ResponseCode::NoError);
}

#[test]
fn when_tcp_clients_are_full_the_oldest_idle_connection_makes_room() {
    let (base, config) = zone_config("tcp_max_clients = 3\ntcp_io_timeout = \"30s\"", "");
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    let api = Api::new(&base);
    let soa = "svc.example.test.";
    let mut open: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(server.dns).expect("connect");
            ask_on(&mut stream, soa).expect("answered");
            stream
        })
        .collect();
    // A fourth client is served; the oldest idle one is closed for it.
    let mut fourth = TcpStream::connect(server.dns).expect("connect");
    assert!(
        ask_on(&mut fourth, soa).is_some(),
        "the fourth client is served"
    );
    assert!(
        closed_within(&mut open[0], Duration::from_secs(5), |_| {}),
        "the oldest idle connection was not closed"
    );
    assert!(ask_on(&mut open[1], soa).is_some(), "the others stay open");
    assert_eq!(
        metric(
            &api,
            "failover_dns_tcp_connections_dropped_total{reason=\"evicted\""
        ),
        1.0
    );
    // When every open connection is in the middle of a message, a new one is closed instead.
    // Each sends a query and the first byte of another in one write: once its answer is
    // back, the server has read that byte too.
    for mut stream in [&open[1], &open[2], &fourth] {
        let mut bytes = tcp_query(soa);
        bytes.push(0);
        stream.write_all(&bytes).expect("query and half a length");
        let mut length = [0u8; 2];
        stream.read_exact(&mut length).expect("answered");
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(length))];
        stream.read_exact(&mut body).expect("answered");
    }
    let mut newest = TcpStream::connect(server.dns).expect("connect");
    assert!(
        ask_on(&mut newest, soa).is_none(),
        "a client was let in with no room"
    );
    assert!(
        metric(
            &api,
            "failover_dns_tcp_connections_dropped_total{reason=\"refused\""
        ) >= 1.0
    );
}

#[test]
fn the_api_cuts_slow_and_idle_clients_and_limits_bodies() {
    let (base, config) = zone_config("http_timeout = \"500ms\"", "");
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let _server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    let api = Api::new(&base);
    assert_eq!(api.get("/healthz").0, 200);

    // A request head sent a header line every 100 ms never completes: cut.
    let mut slow = TcpStream::connect(addr).expect("connect");
    slow.write_all(format!("GET /status HTTP/1.1\r\nHost: {addr}\r\n").as_bytes())
        .expect("write");
    assert!(
        closed_within(&mut slow, Duration::from_secs(10), |s| {
            let _ = s.write_all(b"X-Slow: 1\r\n");
        }),
        "a half-sent request is still open after 10 s"
    );

    // A keep-alive connection left idle after its response: cut.
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .expect("write");
    assert!(
        closed_within(&mut idle, Duration::from_secs(10), |_| {}),
        "an idle keep-alive connection is still open after 10 s"
    );

    // A body larger than any route takes is refused before it is read.
    let (code, _) = raw_http(
        addr,
        &format!("POST /reload HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\nx"),
    )
    .expect("answered");
    assert_eq!(code, 413);
}

#[test]
fn when_api_clients_are_full_the_oldest_waiting_connection_makes_room() {
    // No timeout to close them: only making room can.
    let (base, config) = zone_config("http_timeout = \"1day\"\nhttp_max_clients = 4", "");
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let _server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    // Four connections that never send a request.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(addr).expect("connect"));
    }
    // A real client still gets its answer: a waiting connection (the oldest) is closed for it.
    let (code, _) = raw_http(
        addr,
        &format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
    .expect("served");
    assert_eq!(code, 200);
    // Which one is the oldest depends on the order the server's tasks took them in: one of
    // the four must be closed.
    for stream in &held {
        stream.set_nonblocking(true).expect("nonblocking");
    }
    wait_until(
        "a waiting connection to be closed",
        Duration::from_secs(5),
        || {
            held.iter_mut().any(|stream| {
                let mut byte = [0u8; 1];
                match stream.read(&mut byte) {
                    Ok(0) => true,
                    Err(e) => e.kind() != ErrorKind::WouldBlock,
                    Ok(_) => false,
                }
            })
        },
    );
    let api = Api::new(&base);
    assert!(metric(&api, "failover_dns_api_connections_refused_total") >= 1.0);
}

#[test]
fn cross_site_requests_and_foreign_hosts_are_refused() {
    let Pair {
        p,
        s,
        base,
        config,
        _members,
    } = pair("http_hosts = [\"fdns.test\"]");
    let addr: SocketAddr = base.trim_start_matches("http://").parse().expect("addr");
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    server.wait_for_members_up(2);
    let drain = format!("/services/{WWW}/members/{p}/drain");
    let post = |headers: &str| {
        raw_http(
            addr,
            &format!("POST {drain} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: text/plain\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"),
        )
        .expect("answered")
        .0
    };
    // A browser's cross-site "simple" POST, by Origin or by Fetch metadata: refused.
    assert_eq!(post("Origin: http://evil.example\r\n"), 403);
    assert_eq!(post("Origin: null\r\n"), 403);
    assert_eq!(post("Sec-Fetch-Site: cross-site\r\n"), 403);
    assert_eq!(
        server.addresses(WWW),
        [p],
        "a refused request moved the answer"
    );
    // DNS rebinding: a page under another name that resolves here cannot read status.
    let get = |host: &str| {
        raw_http(
            addr,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .expect("answered")
        .0
    };
    assert_eq!(get(&format!("evil.example:{}", addr.port())), 403);
    assert_eq!(get(&addr.to_string()), 200);
    assert_eq!(get(&format!("localhost:{}", addr.port())), 200);
    assert_eq!(
        get("fdns.test:443"),
        200,
        "a name in http_hosts, behind a proxy"
    );
    assert!(
        metric(
            &Api::new(&base),
            "failover_dns_api_requests_forbidden_total"
        ) >= 4.0
    );
    // The API's own origin, and tools that send none, may change things.
    assert_eq!(post(&format!("Origin: http://{addr}\r\n")), 200);
    server.wait_for_answer(WWW, &[s], Duration::from_secs(2));
}

/// A zone with `hosts` A records, slow enough to load that a reload takes a while.
fn big_zone(hosts: usize) -> String {
    let mut zone = ZONE.to_string();
    for i in 0..hosts {
        zone.push_str(&format!("h{i} 300 IN A 192.0.2.{}\n", i % 250 + 1));
    }
    zone
}

#[test]
fn reloads_run_one_at_a_time_and_the_newest_config_wins() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let (api_lines, base) = api_config(None);
    let config = |zone: &str, name: &str| {
        format!(
            "[server]\n{api_lines}rate_limit = 0\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"{zone}\"\n\n{}",
            service_toml(name, &[p, s], "tcp", port, "")
        )
    };
    let server = Server::start_with_files(
        &[("svc.zone", ZONE), ("big.zone", &big_zone(20_000))],
        &config("svc.zone", WWW),
        "svc.example.test.",
    );
    let api = Api::new(&base);
    assert_eq!(api.status()["generation"], 1);
    let listen = format!("[server]\nlisten = [\"{}\"]\n", server.dns);
    let config = |zone: &str, name: &str| config(zone, name).replacen("[server]\n", &listen, 1);
    let reload = |base: String| {
        std::thread::spawn(move || {
            let (code, body) = Api::patient(&base).post("/reload", None);
            assert_eq!(code, 200, "{body}");
            serde_json::from_str::<serde_json::Value>(&body).expect("json")["generation"]
                .as_u64()
                .expect("generation")
        })
    };
    // A slow reload of the big zone, then, while it runs, a quick one of a small config.
    fs::write(server.config_path(), config("big.zone", WWW)).expect("write");
    let slow = reload(base.clone());
    wait_until("the slow reload to begin", Duration::from_secs(10), || {
        server
            .events()
            .iter()
            .any(|e| e.message().starts_with("reading the config for a reload"))
    });
    // Replaced whole (written aside, then renamed over it), as an editor or a deploy tool
    // does: the slow reload may be reading the file at this very moment, and a truncated
    // file half written would be a config that does not parse.
    let aside = server.path("failover-dns.toml.new");
    fs::write(&aside, config("svc.zone", "new.svc.example.test.")).expect("write");
    fs::rename(&aside, server.config_path()).expect("rename");
    let quick = reload(base.clone());
    let (slow, quick) = (slow.join().expect("slow"), quick.join().expect("quick"));
    assert_eq!(
        (slow, quick),
        (2, 3),
        "the later request reloads after the earlier one"
    );
    let status = api.status();
    assert_eq!(status["generation"], 3);
    assert_eq!(
        status["services"][0]["name"], "new.svc.example.test.",
        "the config written last is served"
    );

    // A storm of reloads while one runs: every request is answered, by far fewer loads.
    fs::write(server.config_path(), config("big.zone", WWW)).expect("write");
    let storm: Vec<_> = (0..20).map(|_| reload(base.clone())).collect();
    let generations: Vec<u64> = storm
        .into_iter()
        .map(|t| t.join().expect("reload"))
        .collect();
    let last = api.status()["generation"].as_u64().expect("generation");
    assert!(last <= 3 + 5, "20 requests made {} reloads", last - 3);
    assert!(
        generations.iter().all(|g| (4..=last).contains(g)),
        "{generations:?}"
    );
}

#[test]
fn an_override_that_cannot_be_saved_is_in_force_and_shown_unsaved_until_saved() {
    // The state file's directory is a plain file: every write fails (ENOTDIR), even as root.
    let Pair {
        p,
        s,
        base,
        config,
        _members,
    } = pair("state_file = \"blocked/state.json\"");
    let server = Server::start_with_files(
        &[("svc.zone", ZONE), ("blocked", "")],
        &config,
        "svc.example.test.",
    );
    server.wait_for_members_up(2);
    let api = Api::new(&base);
    let (code, body) = api.post(&format!("/services/{WWW}/members/{p}/drain"), None);
    assert_eq!(code, 202, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(reply["saved"], false);
    assert!(
        reply["warning"]
            .as_str()
            .expect("warning")
            .contains("not saved"),
        "{reply}"
    );
    // In force at once, whatever the disk says.
    assert_eq!(server.addresses(WWW), [s]);
    let status = api.status();
    assert_eq!(status["state_file"]["saved"], false, "{status}");
    assert!(status["state_file"]["error"].as_str().is_some(), "{status}");
    assert_eq!(metric(&api, "failover_dns_state_file_unsaved "), 1.0);

    // Once the directory can be written, the retries save it.
    fs::remove_file(server.path("blocked")).expect("rm");
    fs::create_dir(server.path("blocked")).expect("mkdir");
    wait_until("the override to be saved", Duration::from_secs(20), || {
        api.status()["state_file"]["saved"] == true
    });
    let saved = fs::read_to_string(server.path("blocked/state.json")).expect("saved");
    assert!(
        saved.contains(&p.to_string()) && saved.contains("drain"),
        "{saved}"
    );
    assert_eq!(metric(&api, "failover_dns_state_file_unsaved "), 0.0);
}

#[test]
fn a_state_file_write_that_cannot_finish_never_stops_a_failover() {
    let (p, s, q, r) = (loopback_ip(), loopback_ip(), loopback_ip(), loopback_ip());
    let port = free_port(&[p, s, q, r]);
    let _primary = Acceptor::start(p, port);
    let _standby = Acceptor::start(s, port);
    let other_primary = Acceptor::start(q, port);
    let _other_standby = Acceptor::start(r, port);
    let other = "other.svc.example.test.";
    let services = tcp_service(&[p, s], port) + &service_toml(other, &[q, r], "tcp", port, "");
    let (base, config) = zone_config("", &services);
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    server.wait_for_members_up(4);
    // A FIFO where the state file's temporary copy goes: a write to it could wait forever.
    nix::unistd::mkfifo(
        &server.path("failover-dns.state.json.tmp"),
        nix::sys::stat::Mode::S_IRWXU,
    )
    .expect("mkfifo");
    let api = Api::new(&base);
    let (code, body) = api.post(&format!("/services/{WWW}/members/{p}/drain"), None);
    assert_eq!(code, 202, "{body}");
    assert_eq!(server.addresses(WWW), [s]);
    // Checks and failovers go on while the file cannot be written.
    drop(other_primary);
    let started = Instant::now();
    wait_until(
        "the other service to fail over",
        Duration::from_secs(10),
        || {
            try_query(server.dns, other, RecordType::A, Transport::Udp)
                .is_some_and(|m| addresses(&m) == [r])
        },
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(api.status()["state_file"]["saved"], false);
}

#[test]
fn a_damaged_state_file_is_kept_aside_and_the_members_it_names_start_drained() {
    let Pair {
        p,
        s,
        base,
        config,
        _members,
    } = pair("");
    // A `since` no clock can hold: it once made the start panic on overflow.
    let damaged = format!(
        "{{\"overrides\": [{{\"service\": \"{WWW}\", \"member\": \"{p}\", \"admin\": \"drain\", \"since\": 18446744073709551615}}]}}"
    );
    let server = Server::start_with_files(
        &[("svc.zone", ZONE), ("failover-dns.state.json", &damaged)],
        &config,
        "svc.example.test.",
    );
    server.wait_for_members_up(2);
    assert_eq!(
        server.addresses(WWW),
        [s],
        "the member it names starts drained"
    );
    let status = Api::new(&base).status();
    let aside = status["state_file"]["damaged"]
        .as_str()
        .expect("damaged")
        .to_string();
    assert_eq!(fs::read_to_string(&aside).expect("kept aside"), damaged);
    assert!(
        status["services"][0]["members"][0]["admin"] == "drain",
        "{status}"
    );
    wait_until("the drain to be saved", Duration::from_secs(10), || {
        fs::read_to_string(server.path("failover-dns.state.json"))
            .is_ok_and(|text| text.contains(&p.to_string()) && text.contains("drain"))
    });
    server.assert_logged("state file is damaged");
}

#[test]
fn response_rate_limiting_slips_some_and_drops_the_rest_over_udp_only() {
    let (base, config) = zone_config("rate_limit = 20\nrate_limit_slip = 2", "");
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let sent = 300;
    for _ in 0..sent {
        let bytes = request("svc.example.test.", RecordType::SOA)
            .to_vec()
            .expect("encode");
        socket.send_to(&bytes, server.dns).expect("send");
    }
    let (mut whole, mut truncated) = (0, 0);
    let mut buffer = [0u8; 4096];
    // Until half a second passes without a response (bounded by the count sent).
    for _ in 0..sent {
        let Ok((length, _)) = socket.recv_from(&mut buffer) else {
            break;
        };
        let message = Message::from_vec(&buffer[..length]).expect("decodes");
        if message.metadata.truncation {
            assert!(message.answers.is_empty() && message.queries.len() == 1);
            truncated += 1;
        } else {
            whole += 1;
        }
    }
    // At most the limit per second (the burst may straddle a second).
    assert!(whole <= 3 * 20, "{whole} whole answers");
    assert!(truncated >= 1, "no truncated answer");
    assert!(whole + truncated < sent, "nothing was dropped");
    // TCP is never limited: that is where a truncated client goes.
    for _ in 0..30 {
        query(
            server.dns,
            "svc.example.test.",
            RecordType::SOA,
            Transport::Tcp,
        );
    }
    let api = Api::new(&base);
    assert!(metric(&api, "failover_dns_rate_limited_total{reason=\"dropped\"") >= 1.0);
    assert!(metric(&api, "failover_dns_rate_limited_total{reason=\"slipped\"") >= 1.0);
}

/// An HTTP backend on every loopback address at `port` that answers 200 after `delay`, so
/// that checks of many members are in flight at once (each holding a descriptor).
fn slow_backend(delay: Duration) -> u16 {
    let listener = TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                let mut head = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut head);
                std::thread::sleep(delay); // how slow this backend is, not a wait
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            });
        }
    });
    port
}

#[test]
fn checks_that_find_no_descriptor_are_no_result_and_move_nobody() {
    // 100 healthy members checked every second, each check in flight for 400 ms: about 40
    // descriptors at once, with 40 in all for the whole process. The timeout leaves 600 ms
    // beyond the backend's delay, so that a loaded machine cannot make a check time out.
    let port = slow_backend(Duration::from_millis(400));
    let members: Vec<IpAddr> = (0..100).map(|_| loopback_ip()).collect();
    let service = service_toml(WWW, &members, "http", port, "")
        .replace("path = \"/health\"\n", "")
        .replace(
            "interval = \"200ms\"\ntimeout = \"200ms\"",
            "interval = \"1s\"\ntimeout = \"1s\"",
        );
    assert!(service.contains("timeout = \"1s\""));
    let (base, config) = zone_config("", &service);
    let server = Server::start_with_nofile(40, &[("svc.zone", ZONE)], &config, "svc.example.test.");
    let api = Api::new(&base);
    wait_until(
        "checks to run out of descriptors, and others to pass",
        Duration::from_secs(30),
        || {
            metric(&api, "failover_dns_checks_no_result_total") >= 20.0
                && metric(&api, "failover_dns_checks_total{") >= 200.0
        },
    );
    server.assert_logged("out of file descriptors");
    assert!(
        !server.transitions().iter().any(|t| t.to == "down"),
        "a member went down:\n{}",
        server.log()
    );
    assert_eq!(server.addresses(WWW), [members[0]]);
}
