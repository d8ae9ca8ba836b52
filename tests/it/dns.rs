//! DNS behaviour over the wire: the real binary queried over real UDP and TCP.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

fn server() -> Server {
    let member = loopback_ip();
    let port = free_port(&[member]);
    Server::start(&service_toml(
        "www.svc.example.test.",
        &[member],
        "tcp",
        port,
        "",
    ))
}

#[test]
fn answers_are_authoritative_with_the_service_ttl_over_udp_and_tcp() {
    let server = server();
    for transport in [Transport::Udp, Transport::Tcp] {
        let response = query(
            server.dns,
            "www.svc.example.test.",
            RecordType::A,
            transport,
        );
        assert_eq!(rcode(&response), ResponseCode::NoError);
        assert!(response.metadata.authoritative, "{transport:?}");
        assert!(!response.metadata.recursion_available);
        assert_eq!(response.answers.len(), 1);
        assert_eq!(response.answers[0].ttl, 5);
        assert!(response.edns.is_some(), "EDNS in, EDNS out");
    }
}

#[test]
fn absent_names_and_types_carry_the_soa() {
    let server = server();
    for transport in [Transport::Udp, Transport::Tcp] {
        let nx = query(
            server.dns,
            "nope.svc.example.test.",
            RecordType::A,
            transport,
        );
        assert_eq!(rcode(&nx), ResponseCode::NXDomain);
        assert!(nx.metadata.authoritative && nx.answers.is_empty());
        assert_eq!(nx.authorities.len(), 1);
        assert_eq!(nx.authorities[0].record_type(), RecordType::SOA);
        assert_eq!(
            nx.authorities[0].ttl, 60,
            "negative TTL is min(SOA TTL, MINIMUM)"
        );

        let nodata = query(
            server.dns,
            "www.svc.example.test.",
            RecordType::MX,
            transport,
        );
        assert_eq!(rcode(&nodata), ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authorities[0].record_type(), RecordType::SOA);
    }
}

#[test]
fn names_outside_the_zones_are_refused() {
    let server = server();
    let response = query(server.dns, "example.com.", RecordType::A, Transport::Udp);
    assert_eq!(rcode(&response), ResponseCode::Refused);
    assert!(!response.metadata.authoritative);
}

#[test]
fn zone_soa_ns_and_static_records_are_served() {
    let server = server();
    let ns = query(
        server.dns,
        "svc.example.test.",
        RecordType::NS,
        Transport::Udp,
    );
    assert_eq!(ns.answers.len(), 2);
    assert_eq!(
        ns.additionals
            .iter()
            .filter(|r| r.record_type() == RecordType::A)
            .count(),
        2,
        "in-zone glue"
    );
    let stat = query(
        server.dns,
        "static.svc.example.test.",
        RecordType::A,
        Transport::Tcp,
    );
    assert_eq!(
        addresses(&stat),
        ["192.0.2.80".parse::<std::net::IpAddr>().expect("ip")]
    );
    let alias = query(
        server.dns,
        "alias.svc.example.test.",
        RecordType::A,
        Transport::Udp,
    );
    assert_eq!(
        alias.answers.len(),
        2,
        "CNAME followed to the service: {alias:?}"
    );
}

#[test]
fn question_case_is_echoed() {
    let server = server();
    let response = query(
        server.dns,
        "WwW.SvC.example.TEST.",
        RecordType::A,
        Transport::Udp,
    );
    assert_eq!(
        response.queries[0].name().to_ascii(),
        "WwW.SvC.example.TEST."
    );
    assert_eq!(response.answers.len(), 1);
}

#[test]
fn edns_version_above_zero_gets_badvers() {
    let server = server();
    let mut message = request("www.svc.example.test.", RecordType::A);
    let mut edns = Edns::new();
    edns.set_version(1);
    message.set_edns(edns);
    let response = exchange(server.dns, &message, Transport::Udp).expect("answer");
    // 16 is BADVERS in a response to a query (RFC 6891); hickory's decoder calls it BADSIG.
    assert_eq!(u16::from(rcode(&response)), 16);
    assert!(response.edns.is_some(), "BADVERS comes with OPT");
}

#[test]
fn other_opcodes_get_notimp_and_two_questions_get_formerr() {
    let server = server();
    let mut notify = Message::new(7, MessageType::Query, OpCode::Status);
    notify.add_query(Query::query(
        Name::from_ascii("svc.example.test.").expect("name"),
        RecordType::SOA,
    ));
    assert_eq!(
        rcode(&exchange(server.dns, &notify, Transport::Udp).expect("answer")),
        ResponseCode::NotImp
    );

    let mut two = request("www.svc.example.test.", RecordType::A);
    two.add_query(Query::query(
        Name::from_ascii("svc.example.test.").expect("name"),
        RecordType::SOA,
    ));
    assert_eq!(
        rcode(&exchange(server.dns, &two, Transport::Udp).expect("answer")),
        ResponseCode::FormErr
    );
}

#[test]
fn malformed_packets_get_formerr_or_nothing_and_the_server_keeps_answering() {
    let server = server();
    for (what, packet) in malformed_packets() {
        for transport in [Transport::Udp, Transport::Tcp] {
            if transport == Transport::Tcp && packet.len() > usize::from(u16::MAX) {
                continue;
            }
            if let Some(raw) = exchange_raw(server.dns, &packet, transport) {
                let response = Message::from_vec(&raw)
                    .unwrap_or_else(|e| panic!("{what} over {transport:?}: undecodable: {e}"));
                assert_eq!(rcode(&response), ResponseCode::FormErr, "{what}");
                assert_eq!(response.metadata.message_type, MessageType::Response);
            }
            let after = query(
                server.dns,
                "www.svc.example.test.",
                RecordType::A,
                transport,
            );
            assert_eq!(
                after.answers.len(),
                1,
                "answered after {what} over {transport:?}"
            );
        }
    }
}

#[test]
fn stalled_and_oversized_tcp_clients_do_not_block_others() {
    let mut server = server();
    // Clients that announce a message and stall: one after a length prefix, one half-way
    // through the message, one with a zero-length frame, and one announcing 64 KiB.
    let mut stalled = Vec::new();
    for bytes in [
        vec![0x00, 0x12],
        vec![0x00, 0x30, 0x12, 0x34, 0x01],
        vec![0x00, 0x00],
        vec![0xff, 0xff, 0, 0],
    ] {
        for _ in 0..10 {
            let mut stream = std::net::TcpStream::connect(server.dns).expect("connect");
            std::io::Write::write_all(&mut stream, &bytes).expect("write");
            stalled.push(stream);
        }
    }
    for transport in [Transport::Udp, Transport::Tcp] {
        for _ in 0..20 {
            let response = query(
                server.dns,
                "www.svc.example.test.",
                RecordType::A,
                transport,
            );
            assert_eq!(response.answers.len(), 1, "{transport:?} still answered");
        }
    }
    assert!(server.is_running(), "the server is still up");
}

#[test]
fn pipelined_tcp_queries_are_answered_in_order_and_an_idle_client_is_let_go() {
    let config = "[server]\ntcp_idle_timeout = \"300ms\"\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n";
    let server = Server::start_with_files(&[("svc.zone", ZONE)], config, "svc.example.test.");
    let mut stream = std::net::TcpStream::connect(server.dns).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let names = [
        "svc.example.test.",
        "nx.svc.example.test.",
        "ns1.svc.example.test.",
    ];
    let mut framed = Vec::new();
    let mut ids = Vec::new();
    for name in names {
        let message = request(name, RecordType::A);
        ids.push(message.metadata.id);
        let bytes = message.to_vec().expect("encode");
        framed.extend_from_slice(&u16::try_from(bytes.len()).expect("short").to_be_bytes());
        framed.extend_from_slice(&bytes);
    }
    // All three in one write, the last one split across two.
    let (first, rest) = framed.split_at(framed.len() - 5);
    std::io::Write::write_all(&mut stream, first).expect("send");
    std::io::Write::write_all(&mut stream, rest).expect("send the rest");
    for (name, id) in names.iter().zip(ids) {
        let mut len = [0u8; 2];
        std::io::Read::read_exact(&mut stream, &mut len).expect("length");
        let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
        std::io::Read::read_exact(&mut stream, &mut body).expect("body");
        let response = Message::from_vec(&body).expect("decode");
        assert_eq!(response.metadata.id, id, "answers come in the order asked");
        assert_eq!(response.queries[0].name().to_string(), *name);
    }
    // Then nothing: the server closes the connection (EOF) after the idle timeout, long
    // before this read's own 5 s timeout.
    let mut byte = [0u8; 1];
    let read = std::io::Read::read(&mut stream, &mut byte).expect("EOF, not a read timeout");
    assert_eq!(read, 0, "the server closed the idle connection");
}

#[test]
fn clients_that_keep_sending_cannot_hold_up_a_shutdown() {
    let server = server();
    let query = request("www.svc.example.test.", RecordType::A)
        .to_vec()
        .expect("encode");
    let mut framed = u16::try_from(query.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&query);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stream = std::net::TcpStream::connect(server.dns).expect("connect");
    let mut reader = stream.try_clone().expect("clone");
    // One thread writes queries without pause, one reads the answers, one floods UDP; each
    // stops at the end of the test or after 60 s. (Without its bound, the TCP drain never
    // ends; one UDP sender is slower than a worker's drain, so it only exercises that path.)
    let writer = {
        let (stop, mut stream) = (stop.clone(), stream);
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < deadline
                && std::io::Write::write_all(&mut stream, &framed).is_ok()
            {}
        })
    };
    let counter = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(read) = std::io::Read::read(&mut reader, &mut buffer) {
                if read == 0 {
                    break;
                }
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let flood = {
        let (stop, dns) = (stop.clone(), server.dns);
        let socket = std::net::UdpSocket::bind((dns.ip(), 0)).expect("bind");
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while !stop.load(std::sync::atomic::Ordering::Relaxed)
                && std::time::Instant::now() < deadline
            {
                let _ = socket.send_to(&query, dns);
            }
        })
    };
    wait_until("answers over TCP", Duration::from_secs(10), || {
        answered.load(std::sync::atomic::Ordering::Relaxed) > 0
    });
    // terminate() fails the test if the server has not exited 10 s after SIGTERM.
    let status = server.terminate();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for thread in [writer, counter, flood] {
        thread.join().expect("client thread");
    }
    assert!(status.success(), "{status}");
}

#[test]
fn sigterm_exits_cleanly() {
    let server = server();
    let dns: SocketAddr = server.dns;
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    assert!(try_query(dns, "svc.example.test.", RecordType::SOA, Transport::Udp).is_none());
}

#[test]
fn a_repeated_question_gets_the_same_response_with_its_own_id() {
    let server = server();
    let mut message = request("www.svc.example.test.", RecordType::A);
    let mut responses = Vec::new();
    for id in [0x1111, 0x2222, 0x3333] {
        message.metadata.id = id;
        let bytes = message.to_vec().expect("encode");
        let raw = exchange_raw(server.dns, &bytes, Transport::Udp).expect("an answer");
        assert_eq!(
            raw[..2],
            id.to_be_bytes(),
            "each response carries its query's ID"
        );
        responses.push(raw);
    }
    assert_eq!(responses[0][2..], responses[1][2..]);
    assert_eq!(responses[1][2..], responses[2][2..]);
    // The same question in other letter case is answered in that case.
    let upper = query(
        server.dns,
        "WWW.SVC.EXAMPLE.TEST.",
        RecordType::A,
        Transport::Udp,
    );
    assert_eq!(upper.queries[0].name().to_ascii(), "WWW.SVC.EXAMPLE.TEST.");
}

#[test]
fn udp_workers_run_at_a_lower_priority_than_the_check_plane() {
    let server = server();
    let tasks = format!("/proc/{}/task", server.pid());
    // (name, nice) of every thread; nice is field 19 of /proc/PID/task/TID/stat.
    let threads = || -> Vec<(String, i64)> {
        std::fs::read_dir(&tasks)
            .expect("tasks")
            .filter_map(|task| {
                let path = task.ok()?.path();
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                let (name, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
                let nice = rest.split_whitespace().nth(16)?.parse().ok()?;
                Some((name.to_string(), nice))
            })
            .collect()
    };
    // Each worker lowers its own priority as it starts, which may be just after the server
    // first answers.
    let lowered = |threads: &[(String, i64)]| {
        let main = threads.iter().find(|(name, _)| name == "failover-dns");
        main.is_some_and(|(_, main)| {
            threads
                .iter()
                .filter(|(name, _)| name == "dns-udp")
                .all(|(_, nice)| *nice == (main + 5).min(19))
        })
    };
    wait_until(
        "every UDP worker to lower its priority",
        Duration::from_secs(10),
        || lowered(&threads()),
    );
    let threads = threads();
    let udp: Vec<i64> = threads
        .iter()
        .filter(|(name, _)| name == "dns-udp")
        .map(|(_, nice)| *nice)
        .collect();
    let main = threads[..].iter().find(|(name, _)| name == "failover-dns");
    let main = main.map(|(_, nice)| *nice).expect("main thread");
    assert!(!udp.is_empty(), "{threads:?}");
    assert!(
        udp.iter().all(|nice| *nice == (main + 5).min(19)),
        "{threads:?}"
    );
}

#[test]
fn on_wildcard_addresses_answers_leave_from_the_address_asked() {
    // A port free on every address; the server listens on both wildcards.
    let port = free_port(&[IpAddr::V6(Ipv6Addr::UNSPECIFIED)]);
    let wildcards = [
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ];
    let asked = [loopback_ip(), loopback_ip(), loopback_ip()];
    let zone = include_str!("../../zones/svc.example.test.zone");
    let config = "[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n";
    let first = SocketAddr::new(asked[0], port);
    let _server = Server::start_listening(
        &wildcards,
        first,
        &[("svc.zone", zone)],
        config,
        "svc.example.test.",
    );

    // One client asks three addresses at once (so a worker's batch can hold answers from
    // several), then takes the answers: each must come from the address its query went to,
    // which is not the address routing would pick (127.0.0.1).
    let v4_client = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
    let asked_v4: Vec<SocketAddr> = asked.iter().map(|ip| SocketAddr::new(*ip, port)).collect();
    assert_eq!(answered_from(v4_client, &asked_v4), asked_v4);
    // IPv6 on its own wildcard (loopback has one IPv6 address: this shows the packet-info
    // path works for IPv6, not that it picks among addresses).
    let v6 = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    assert_eq!(answered_from(SocketAddr::new(v6.ip(), 0), &[v6]), [v6]);
    // TCP on both.
    for dns in [v6, first] {
        let response = query(dns, "svc.example.test.", RecordType::SOA, Transport::Tcp);
        assert_eq!(rcode(&response), ResponseCode::NoError, "{dns}");
    }
}

/// Sends an SOA query to each of `targets` from one socket bound to `client`, then returns
/// where each answer came from, in the order of `targets`.
fn answered_from(client: SocketAddr, targets: &[SocketAddr]) -> Vec<SocketAddr> {
    let socket = UdpSocket::bind(client).expect("client socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    for (id, target) in targets.iter().enumerate() {
        let mut message = request("svc.example.test.", RecordType::SOA);
        message.metadata.id = id as u16;
        let bytes = message.to_vec().expect("encode");
        socket.send_to(&bytes, target).expect("send");
    }
    let mut answered = vec![None; targets.len()];
    for _ in targets {
        let mut buffer = [0u8; 4096];
        let (length, from) = socket.recv_from(&mut buffer).expect("an answer");
        let response = Message::from_vec(&buffer[..length]).expect("a DNS message");
        assert_eq!(rcode(&response), ResponseCode::NoError);
        answered[usize::from(response.metadata.id)] = Some(from);
    }
    answered
        .into_iter()
        .map(|from| from.expect("one answer per query"))
        .collect()
}

#[test]
fn a_server_handed_its_sockets_serves_on_them_and_warns_of_the_rest() {
    // The port stays bound by this test until the server has started: had the server bound
    // it again instead of taking the sockets handed over, it could not have started.
    let (dns, mut sockets) = bound_dns();
    let spare = UdpSocket::bind((loopback_ip(), 0)).expect("bind");
    let spare_addr = spare.local_addr().expect("addr");
    sockets.push(std::os::fd::OwnedFd::from(spare));
    let config = "[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n";
    let server = Server::start_handing(
        dns,
        sockets,
        &[("svc.zone", ZONE)],
        config,
        "svc.example.test.",
    );
    for transport in [Transport::Udp, Transport::Tcp] {
        let response = query(dns, "svc.example.test.", RecordType::SOA, transport);
        assert_eq!(rcode(&response), ResponseCode::NoError, "{transport:?}");
    }
    // Said once every listener is up, which may be just after the first answers.
    let warning =
        format!("an inherited UDP socket on {spare_addr} matches no listen or http address");
    wait_until(
        "the unused socket to be warned of",
        Duration::from_secs(10),
        || {
            server
                .events()
                .iter()
                .any(|e| e.message().contains(&warning))
        },
    );
    server.assert_logged(&format!(
        "an inherited UDP socket on {spare_addr} matches no listen or http address"
    ));
}

#[test]
fn svcb_records_with_parameters_out_of_key_order_are_answered() {
    // hickory's own parser kept them in the order written and then sent no response at all.
    let zone = format!(
        "{ZONE}h 300 IN HTTPS 1 . port=8443 alpn=\"h2,h3\" ohttp\n_dns 300 IN SVCB 1 dns dohpath=/q{{?dns}} alpn=h2\n"
    );
    let server = Server::start_with_zone(&zone, "");
    for transport in [Transport::Udp, Transport::Tcp] {
        for (name, qtype) in [
            ("h.svc.example.test.", RecordType::HTTPS),
            ("_dns.svc.example.test.", RecordType::SVCB),
        ] {
            let response = query(server.dns, name, qtype, transport);
            assert_eq!(
                rcode(&response),
                ResponseCode::NoError,
                "{name} {transport:?}"
            );
            assert_eq!(
                response.answers.len(),
                1,
                "{name} {transport:?}: {response:?}"
            );
        }
    }
}
