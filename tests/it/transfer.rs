//! Zone transfers to real clients and secondaries: `dig AXFR` with and without the TSIG key,
//! from inside and outside `allow_transfer`; and Knot as a TSIG-keyed secondary that loads the
//! zone by AXFR and follows a failover.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::common::*;

const WWW: &str = "www.svc.example.test.";
const KEY: &str = "xfr.example.test.";
/// A fixed test secret (base64 of 32 octets).
const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=";

/// The zone of the examples, with `extra` static hosts. Its SOA refresh (2 h) is far beyond
/// any test's wait: a secondary that follows a change within one was told by NOTIFY.
fn zone(extra: usize) -> String {
    let mut zone = ZONE.to_string();
    for n in 0..extra {
        let _ = writeln!(
            zone,
            "host{n} IN A 10.{}.{}.{}",
            n / 62_500,
            n / 250 % 250,
            n % 250
        );
    }
    zone
}

/// Our server with the key, transfers allowed from `allow`, NOTIFY sent to `notify`, and www
/// on two live backends.
fn primary(
    allow: &str,
    notify: &[SocketAddr],
    extra: usize,
) -> (
    Server,
    HttpBackend,
    HttpBackend,
    SocketAddr,
    SocketAddr,
    Api,
) {
    let notify: Vec<String> = notify.iter().map(|a| format!("\"{a}\"")).collect();
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let (p, s) = (SocketAddr::new(p, port), SocketAddr::new(s, port));
    let (primary, standby) = (HttpBackend::start(p), HttpBackend::start(s));
    let (api_lines, api) = api_config(None);
    let config = format!(
        "[server]\n{api_lines}\n[[key]]\nname = \"{KEY}\"\nsecret = \"{SECRET}\"\n\n\
         [[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\
         allow_transfer = [{allow}]\ntransfer_key = \"{KEY}\"\nnotify = [{}]\n\n{}",
        notify.join(", "),
        service_toml(WWW, &[p.ip(), s.ip()], "http", port, "")
    );
    let server =
        Server::start_with_files(&[("svc.zone", &zone(extra))], &config, "svc.example.test.");
    server.wait_for_members_up(2);
    (server, primary, standby, p, s, Api::new(&api))
}

/// `dig AXFR` of the zone from `source`, with `key` (name:secret) if given: the records it
/// printed (TSIG records left out) and how many messages it says there were.
fn dig_axfr(server: SocketAddr, source: IpAddr, key: Option<&str>) -> (Vec<String>, usize) {
    dig_transfer(server, source, key, "AXFR")
}

/// `dig` of the zone for `kind` (`AXFR`, or `IXFR=serial`), as [`dig_axfr`].
fn dig_transfer(
    server: SocketAddr,
    source: IpAddr,
    key: Option<&str>,
    kind: &str,
) -> (Vec<String>, usize) {
    let mut command = Command::new("dig");
    command.args([
        "+nocmd",
        "+nocomments",
        "+noquestion",
        "+time=20",
        "+tries=1",
        "-b",
        &source.to_string(),
        "-p",
        &server.port().to_string(),
        &format!("@{}", server.ip()),
        "svc.example.test.",
        kind,
    ]);
    if let Some(key) = key {
        command.args(["-y", &format!("hmac-sha256:{key}")]);
    }
    let output = command.output().unwrap_or_else(|e| {
        panic!("dig: {e}; the transfer tests need it (apt-get install -y bind9-dnsutils)")
    });
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let messages = text
        .lines()
        .find_map(|l| l.split("(messages ").nth(1))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let records = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(';') && !l.contains("\tTSIG\t"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    (records, messages)
}

#[test]
fn axfr_needs_the_key_and_an_allowed_address_and_carries_what_queries_answer() {
    let (server, _primary, _standby, p, _, api) = primary("\"127.0.0.1\"", &[], 3000);
    let inside: IpAddr = "127.0.0.1".parse().expect("ip");
    let key = format!("{KEY}:{SECRET}");

    let (records, messages) = dig_axfr(server.dns, inside, Some(&key));
    assert!(
        messages > 1,
        "3,000 hosts need several messages, got {messages}"
    );
    assert!(records[0].contains(" SOA "), "SOA first: {}", records[0]);
    assert_eq!(records.first(), records.last(), "SOA first and last");
    let serial = query(
        server.dns,
        "svc.example.test.",
        RecordType::SOA,
        Transport::Udp,
    );
    let soa = serial.answers[0].data.to_string();
    assert!(records[0].ends_with(&soa), "{} / {soa}", records[0]);
    // The service name with its current address and TTL, as a query answers it.
    assert!(
        records.contains(&format!("{WWW} 5 IN A {}", p.ip())),
        "no www A {} in the transfer",
        p.ip()
    );
    // Every record of the transfer is what a query for its name and type returns.
    let mut asked = BTreeSet::new();
    for record in &records[1..records.len() - 1] {
        let fields: Vec<&str> = record.split(' ').collect();
        let (name, rtype) = (fields[0], fields[3]);
        if !asked.insert((name.to_string(), rtype.to_string())) {
            continue;
        }
        let rtype: RecordType = rtype.parse().expect("type");
        let answer = query(server.dns, name, rtype, Transport::Tcp);
        let answered: Vec<String> = answer
            .answers
            .iter()
            .filter(|r| r.record_type() == rtype)
            .map(|r| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data))
            .collect();
        // Compared without TXT's quotes, which dig prints and hickory does not.
        let unquoted = record.replace('"', "");
        assert!(
            answered.contains(&unquoted),
            "{record} is transferred but a query answers {answered:?}"
        );
    }
    assert!(
        asked.len() > 3000,
        "every host's A was compared: {}",
        asked.len()
    );

    // No key, a wrong key, an address outside allow_transfer: refused, and logged.
    let wrong = format!("{KEY}:{}", SECRET.replace('c', "d"));
    for (source, key, why) in [
        (inside, None, "not signed with transfer_key"),
        (inside, Some(wrong.as_str()), "a bad TSIG signature"),
        (
            "127.0.0.3".parse().expect("ip"),
            Some(key.as_str()),
            "not in allow_transfer",
        ),
    ] {
        let (records, _) = dig_axfr(server.dns, source, key);
        assert!(
            records.is_empty(),
            "{why}: transferred {} records",
            records.len()
        );
        wait_until(why, Duration::from_secs(5), || server.log().contains(why));
    }
    // Counted too: the one transfer made, the three refused.
    let (_, metrics) = api.get("/metrics");
    for counted in [
        "failover_dns_zone_transfers_total{reason=\"refused\"} 3",
        "failover_dns_zone_transfers_total{reason=\"AXFR\"} 1",
    ] {
        assert!(metrics.contains(counted), "{counted} in\n{metrics}");
    }

    // Over UDP an AXFR is FORMERR: it has no UDP form (RFC 5936 §4.2).
    let request = request("svc.example.test.", RecordType::AXFR)
        .to_vec()
        .expect("encodes");
    let response = exchange_raw(server.dns, &request, Transport::Udp).expect("a response");
    assert_eq!(response[3] & 0x0F, 1, "FORMERR");
}

/// A real secondary (Knot, NSD or BIND) of `primary`, pulling the zone with the TSIG key,
/// transferring from and taking NOTIFY only from addresses it is told.
struct Secondary {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
    log: &'static str,
    what: &'static str,
    /// The address it transfers from.
    source: IpAddr,
}

impl Secondary {
    /// An address for a secondary to listen on.
    fn address() -> SocketAddr {
        let ip = loopback_ip();
        SocketAddr::new(ip, free_port(&[ip]))
    }

    /// Knot on `addr`, a secondary of `primary` for `zone`, taking NOTIFY signed with the key.
    fn knot(addr: SocketAddr, primary: SocketAddr, zone: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = addr.ip();
        let config = format!(
            "server:\n    rundir: {run}\n    listen: {ip}@{port}\n\
             log:\n  - target: stderr\n    any: info\n\
             database:\n    storage: {run}\n\
             key:\n  - id: {KEY}\n    algorithm: hmac-sha256\n    secret: {SECRET}\n\
             remote:\n  - id: primary\n    address: {}@{}\n    key: {KEY}\n    via: {ip}\n\
             acl:\n  - id: from_primary\n    address: {}\n    action: notify\n    key: {KEY}\n\
             template:\n  - id: default\n    storage: {run}\n    refresh-min-interval: 2\n    retry-min-interval: 2\n\
             zone:\n  - domain: {zone}\n    master: primary\n    acl: from_primary\n    zonefile-sync: -1\n",
            primary.ip(),
            primary.port(),
            primary.ip(),
            run = dir.path().display(),
            port = addr.port(),
        );
        let config_path = dir.path().join("knot.conf");
        fs::write(&config_path, config).expect("knot.conf");
        let log = fs::File::create(dir.path().join("knot.log")).expect("log");
        let child = Command::new("/usr/sbin/knotd")
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        Self {
            child,
            addr,
            _dir: dir,
            log: "knot.log",
            what: "Knot",
            source: addr.ip(),
        }
    }

    /// NSD on `addr`, a secondary of `primary` for `zone`.
    fn nsd(addr: SocketAddr, primary: SocketAddr, zone: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().display();
        let config = format!(
            "server:\n  ip-address: {ip}@{port}\n  port: {port}\n\
             \x20 username: \"\"\n  chroot: \"\"\n  zonesdir: \"{run}\"\n  database: \"\"\n\
             \x20 pidfile: \"{run}/nsd.pid\"\n  xfrdfile: \"{run}/xfrd.state\"\n\
             \x20 zonelistfile: \"{run}/zone.list\"\n  logfile: \"{run}/nsd.log\"\n  verbosity: 2\n\
             remote-control:\n  control-enable: no\n\
             key:\n  name: {KEY}\n  algorithm: hmac-sha256\n  secret: \"{SECRET}\"\n\
             zone:\n  name: {zone}\n  zonefile: \"{run}/secondary.zone\"\n\
             \x20 request-xfr: {}@{} {KEY}\n  allow-notify: {} {KEY}\n  outgoing-interface: {ip}\n",
            primary.ip(),
            primary.port(),
            primary.ip(),
            ip = addr.ip(),
            port = addr.port(),
        );
        let config_path = dir.path().join("nsd.conf");
        fs::write(&config_path, config).expect("nsd.conf");
        let child = Command::new("/usr/sbin/nsd")
            .args(["-d", "-c"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nsd");
        Self {
            child,
            addr,
            _dir: dir,
            log: "nsd.log",
            what: "NSD",
            source: addr.ip(),
        }
    }

    /// BIND's named on `addr`, a secondary of `primary` for `zone`. BIND listens only on
    /// addresses an interface has, so on 127.0.0.1 (at a port of its own); it transfers from
    /// an address of its own.
    fn bind(addr: SocketAddr, primary: SocketAddr, zone: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let run = dir.path().display();
        let source = loopback_ip();
        let config = format!(
            "options {{\n  directory \"{run}\";\n  listen-on port {port} {{ {ip}; }};\n  listen-on-v6 {{ none; }};\n\
             \x20 pid-file \"{run}/named.pid\";\n  session-keyfile \"{run}/session.key\";\n\
             \x20 managed-keys-directory \"{run}\";\n  recursion no;\n  notify no;\n\
             \x20 transfer-source {source};\n  query-source address {source};\n}};\n\
             controls {{ }};\n\
             key \"{KEY}\" {{ algorithm hmac-sha256; secret \"{SECRET}\"; }};\n\
             logging {{ channel log {{ file \"{run}/named.log\"; severity info; print-time yes; }};\n\
             \x20 category default {{ log; }}; category xfer-in {{ log; }}; category notify {{ log; }}; }};\n\
             zone \"{zone}\" {{\n  type secondary;\n  file \"{run}/secondary.zone\";\n\
             \x20 primaries port {} {{ {} key \"{KEY}\"; }};\n  allow-notify {{ {}; }};\n}};\n",
            primary.port(),
            primary.ip(),
            primary.ip(),
            ip = addr.ip(),
            port = addr.port(),
        );
        let config_path = dir.path().join("named.conf");
        fs::write(&config_path, config).expect("named.conf");
        let child = Command::new("/usr/sbin/named")
            .args(["-f", "-c"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start named");
        Self {
            child,
            addr,
            _dir: dir,
            log: "named.log",
            what: "BIND",
            source,
        }
    }

    /// Polls `condition` for up to 20 s; panics with the secondary's log if it never holds.
    fn wait(&self, what: &str, condition: impl FnMut() -> bool) {
        let what = format!("{} {what}", self.what);
        wait_until_showing(&what, Duration::from_secs(20), condition, || {
            format!("its log:\n{}", self.log())
        });
    }

    fn log(&self) -> String {
        fs::read_to_string(self._dir.path().join(self.log)).unwrap_or_default()
    }
}

impl Drop for Secondary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The serial and www's addresses `server` answers, if it answers.
fn serial_and_www(server: SocketAddr) -> Option<(u32, Vec<IpAddr>)> {
    let soa = try_query(server, "svc.example.test.", RecordType::SOA, Transport::Udp)?;
    let serial = match &soa.answers.first()?.data {
        hickory_proto::rr::RData::SOA(soa) => soa.serial,
        _ => return None,
    };
    let www = try_query(server, WWW, RecordType::A, Transport::Udp)?;
    Some((serial, addresses(&www)))
}

#[test]
fn knot_as_a_keyed_secondary_loads_the_zone_by_axfr_and_follows_a_failover_on_notify() {
    assert!(
        Path::new("/usr/sbin/knotd").exists(),
        "the secondary tests need Knot DNS (apt-get install -y knot)"
    );
    let knot_addr = Secondary::address();
    let (server, primary_backend, _standby, p, s, _api) =
        primary("\"127.0.0.0/8\"", &[knot_addr], 0);
    let knot = Secondary::knot(knot_addr, server.dns, "svc.example.test.");
    knot.wait("to load the zone from us", || {
        serial_and_www(knot.addr).is_some_and(|(_, www)| www == [p.ip()])
    });
    assert_eq!(
        serial_and_www(knot.addr).map(|(serial, _)| serial),
        serial_and_www(server.dns).map(|(serial, _)| serial)
    );
    assert!(knot.log().contains("AXFR"), "{}", knot.log());

    primary_backend.kill();
    wait_until("us to answer the standby", Duration::from_secs(10), || {
        serial_and_www(server.dns).is_some_and(|(_, www)| www == [s.ip()])
    });
    let ours = serial_and_www(server.dns).expect("answers");
    knot.wait("to answer the standby", || {
        serial_and_www(knot.addr).is_some_and(|answer| answer.1 == [s.ip()] && answer.0 >= ours.0)
    });
    let log = knot.log();
    assert!(
        log.contains("notify, incoming"),
        "Knot was told by NOTIFY: {log}"
    );
    assert!(!log.contains("TSIG"), "no TSIG complaint from Knot: {log}");
    assert!(
        !server.log().contains("did not answer NOTIFY"),
        "{}",
        server.log()
    );
}

/// The serial in an SOA record line of dig's output.
fn serial_in(line: &str) -> u32 {
    line.split(' ')
        .nth(6)
        .and_then(|s| s.parse().ok())
        .expect("SOA serial")
}

#[test]
fn ixfr_sends_what_changed_since_the_clients_serial_or_the_soa_or_the_whole_zone() {
    let (server, primary_backend, _standby, p, s, _api) = primary("\"127.0.0.1\"", &[], 0);
    let inside: IpAddr = "127.0.0.1".parse().expect("ip");
    let key = format!("{KEY}:{SECRET}");
    let (before, _) = dig_axfr(server.dns, inside, Some(&key));
    let old = serial_in(&before[0]);
    primary_backend.kill();
    wait_until(
        "the standby to be answered",
        Duration::from_secs(10),
        || serial_and_www(server.dns).is_some_and(|(_, www)| www == [s.ip()]),
    );
    let (current, _) = serial_and_www(server.dns).expect("answers");
    assert!(current > old);

    // From the serial before the failover: the difference, condensed.
    let (records, _) = dig_transfer(server.dns, inside, Some(&key), &format!("IXFR={old}"));
    let serials: Vec<u32> = records
        .iter()
        .filter(|r| r.contains(" SOA "))
        .map(|r| serial_in(r))
        .collect();
    assert_eq!(serials, [current, old, current, current], "{records:?}");
    let body: Vec<&String> = records.iter().filter(|r| !r.contains(" SOA ")).collect();
    assert_eq!(
        body,
        [
            &format!("{WWW} 5 IN A {}", p.ip()),
            &format!("{WWW} 5 IN A {}", s.ip())
        ],
        "remove the primary, add the standby"
    );

    // Up to date, or ahead of us: the current SOA alone.
    for serial in [current, current.wrapping_add(1000)] {
        let (records, _) = dig_transfer(server.dns, inside, Some(&key), &format!("IXFR={serial}"));
        assert_eq!(records.len(), 1, "IXFR={serial}: {records:?}");
        assert_eq!(serial_in(&records[0]), current);
    }

    // From a serial the journal never held: the whole zone, as an AXFR would send it.
    let (records, _) = dig_transfer(server.dns, inside, Some(&key), "IXFR=1");
    let (axfr, _) = dig_axfr(server.dns, inside, Some(&key));
    assert_eq!(records, axfr);
}

#[test]
fn knot_nsd_and_bind_follow_a_failover_a_failback_and_a_reload_by_ixfr_on_notify() {
    for (program, package) in [
        ("/usr/sbin/knotd", "knot"),
        ("/usr/sbin/nsd", "nsd"),
        ("/usr/sbin/named", "bind9"),
    ] {
        assert!(
            Path::new(program).exists(),
            "{program} not found: the secondary tests need it (apt-get install -y {package})"
        );
    }
    let on_localhost = SocketAddr::new(
        [127, 0, 0, 1].into(),
        free_port(&["127.0.0.1".parse().expect("ip")]),
    );
    let addrs = [Secondary::address(), Secondary::address(), on_localhost];
    let (server, primary_backend, _standby, p, s, api) = primary("\"127.0.0.0/8\"", &addrs, 0);
    let secondaries = [
        Secondary::knot(addrs[0], server.dns, "svc.example.test."),
        Secondary::nsd(addrs[1], server.dns, "svc.example.test."),
        Secondary::bind(addrs[2], server.dns, "svc.example.test."),
    ];
    let follows = |expected: IpAddr| {
        let ours = serial_and_www(server.dns).expect("answers");
        assert_eq!(ours.1, [expected]);
        for secondary in &secondaries {
            let what = format!(
                "to answer {ours:?} as we do (it answers {:?})",
                serial_and_www(secondary.addr)
            );
            secondary.wait(&what, || {
                serial_and_www(secondary.addr) == Some(ours.clone())
            });
        }
    };
    follows(p.ip());

    primary_backend.kill();
    wait_until("us to answer the standby", Duration::from_secs(10), || {
        serial_and_www(server.dns).is_some_and(|(_, www)| www == [s.ip()])
    });
    follows(s.ip());
    // Each pulled the change by IXFR, from its own address.
    for secondary in &secondaries {
        let line = format!("zone transfer to {}:", secondary.source);
        let pulled = server
            .log()
            .lines()
            .any(|l| l.contains(&line) && l.contains("IXFR difference"));
        assert!(
            pulled,
            "{} pulled no IXFR difference:\n{}",
            secondary.what,
            server.log()
        );
    }

    // Each secondary answered our NOTIFY, as /status shows.
    let status = api.status();
    for secondary in &secondaries {
        let target = secondary.addr.to_string();
        let entry = status["notify"]
            .as_array()
            .and_then(|targets| targets.iter().find(|t| t["target"] == target.as_str()))
            .unwrap_or_else(|| panic!("{target} not in /status: {status}"));
        assert_eq!(entry["result"], "answered", "{}: {entry}", secondary.what);
    }

    // Back to the primary once it is up again, and they follow.
    let _primary_again = HttpBackend::start(p);
    wait_until("us to fail back", Duration::from_secs(10), || {
        serial_and_www(server.dns).is_some_and(|(_, www)| www == [p.ip()])
    });
    follows(p.ip());

    // A reload that edits the zone file: a new serial, the new record on every secondary.
    let edited = format!("{}edited IN TXT \"after the reload\"\n", zone(0));
    fs::write(server.path("svc.zone"), edited).expect("edit the zone");
    let before = serial_and_www(server.dns).expect("answers").0;
    server.signal(nix::sys::signal::Signal::SIGHUP);
    wait_until(
        "the reload to raise the serial",
        Duration::from_secs(10),
        || serial_and_www(server.dns).is_some_and(|(serial, _)| serial != before),
    );
    follows(p.ip());
    // The failover, the failback and the reload: each pulled as an IXFR difference.
    for secondary in &secondaries {
        let line = format!("zone transfer to {}:", secondary.source);
        let differences = server
            .log()
            .lines()
            .filter(|l| l.contains(&line) && l.contains("IXFR difference"))
            .count();
        assert!(
            differences >= 3,
            "{}: {differences} IXFR differences",
            secondary.what
        );
    }
    for secondary in &secondaries {
        let txt = query(
            secondary.addr,
            "edited.svc.example.test.",
            RecordType::TXT,
            Transport::Udp,
        );
        assert_eq!(txt.answers.len(), 1, "{} serves the edit", secondary.what);
    }
}

#[test]
fn transfers_of_a_large_zone_during_flapping_are_each_one_serial_and_queries_go_on() {
    let began = std::time::Instant::now();
    let silent = std::net::UdpSocket::bind((loopback_ip(), 0)).expect("bind");
    let silent_addr = silent.local_addr().expect("addr");
    let (server, primary_backend, _standby, p, s, api) =
        primary("\"127.0.0.1\"", &[silent_addr], 100_000);
    let key = format!("{KEY}:{SECRET}");
    let inside: IpAddr = "127.0.0.1".parse().expect("ip");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The primary flaps: 503 and 200 in turn every 500 ms, long enough for fall and rise (2
    // checks 200 ms apart) to move the answer each time, so serials keep moving.
    let flapper = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut up = false;
            for _ in 0..200 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                primary_backend.set_status(if up { 200 } else { 503 });
                up = !up;
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let dns = server.dns;
    let querier = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut answered = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) && answered < 100_000 {
                let a = try_query(
                    dns,
                    "host7.svc.example.test.",
                    RecordType::A,
                    Transport::Udp,
                );
                assert!(
                    a.is_some_and(|a| a.answers.len() == 1),
                    "a query went unanswered"
                );
                answered += 1;
            }
            answered
        })
    };
    let mut www_by_serial = std::collections::HashMap::new();
    let mut serials = BTreeSet::new();
    // At least five transfers, and on until three serials were transferred (at most 40).
    for done in 0..40 {
        if done >= 5 && serials.len() >= 3 {
            break;
        }
        let (records, messages) = dig_axfr(server.dns, inside, Some(&key));
        assert!(messages > 50, "{messages} messages");
        assert_eq!(
            records.first(),
            records.last(),
            "SOA first and last: one serial"
        );
        let serial = serial_in(&records[0]);
        let soas = records.iter().filter(|r| r.contains(" SOA ")).count();
        assert_eq!(soas, 2);
        let www: Vec<&String> = records.iter().filter(|r| r.starts_with(WWW)).collect();
        assert_eq!(www.len(), 1, "one address for www in one serial: {www:?}");
        assert!(www[0].ends_with(&p.ip().to_string()) || www[0].ends_with(&s.ip().to_string()));
        let earlier = www_by_serial.insert(serial, www[0].clone());
        assert!(
            earlier.is_none_or(|e| &e == www[0]),
            "serial {serial} with two answers"
        );
        serials.insert(serial);
        assert!(records.len() > 100_000);
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    flapper.join().expect("flapper");
    let answered = querier.join().expect("every query answered");
    assert!(answered > 0);
    assert!(
        serials.len() > 1,
        "the serial moved during the transfers: {serials:?}"
    );

    // A secondary that never answers NOTIFY: tried with back-off, one NOTIFY in flight at a
    // time however often the serial moved, and its outage logged once.
    silent
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut buffer = [0u8; 512];
    let mut received = 0;
    while silent.recv(&mut buffer).is_ok() {
        received += 1;
    }
    // One NOTIFY (5 tries over 31 s) at a time: a new one only once the last gave up.
    let rounds = 1 + began.elapsed().as_secs() / 31;
    let status = api.status();
    let silent_entry = &status["notify"][0];
    assert_eq!(silent_entry["target"], silent_addr.to_string().as_str());
    assert!(
        silent_entry["result"] == "sending" || silent_entry["result"] == "failed",
        "{silent_entry}"
    );
    assert!(
        (1..=5 * rounds).contains(&received),
        "{received} NOTIFYs reached the silent secondary in {:?}",
        began.elapsed()
    );
}

#[test]
fn beyond_transfers_out_a_transfer_is_refused_until_one_ends() {
    let config = "[server]\ntransfers_out = 1\ntcp_io_timeout = \"1s\"\n\n\
                  [[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\
                  allow_transfer = [\"127.0.0.1\"]\n";
    let server =
        Server::start_with_files(&[("svc.zone", &zone(100_000))], config, "svc.example.test.");
    // A client that asks for the zone and reads nothing, through a small receive window: its
    // transfer stalls, holding the one permit until tcp_io_timeout cuts it.
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    socket.set_recv_buffer_size(4096).expect("rcvbuf");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind");
    socket.connect(&server.dns.into()).expect("connect");
    let mut stalled: std::net::TcpStream = socket.into();
    let request = request("svc.example.test.", RecordType::AXFR)
        .to_vec()
        .expect("encodes");
    let mut framed = (request.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    std::io::Write::write_all(&mut stalled, &framed).expect("send");

    let inside: IpAddr = "127.0.0.1".parse().expect("ip");
    wait_until(
        "a second transfer to be refused",
        Duration::from_secs(10),
        || {
            let (records, _) = dig_axfr(server.dns, inside, None);
            records.is_empty() && server.log().contains("transfers_out are running already")
        },
    );
    // Once the stalled one is cut, the next transfer goes through.
    wait_until(
        "a transfer to go through again",
        Duration::from_secs(20),
        || dig_axfr(server.dns, inside, None).0.len() > 100_000,
    );
    drop(stalled);
}
