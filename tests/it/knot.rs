//! Differential tests: the zones in `tests/zones/` loaded into both failover-dns and Knot DNS,
//! the same queries sent to both over UDP and TCP, and the responses compared section by
//! section (rcode, flags, question as sent, answer/authority/additional as sets of records,
//! EDNS). Every difference is reported with its query.
//!
//! Longer than most files: the Knot harness (config, start, the section-by-section comparison)
//! and the queries of each zone belong together.
//!
//! Knot is the reference for what a standard authoritative server answers. Its copy of the
//! zone gets the service name `www` as a static A record with the service's TTL, which is what
//! failover-dns answers while the primary is healthy; so the dynamic name is compared too.
//!
//! Needs `knotd` (Debian package `knot`; `.ci/run` installs it).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::Record;

/// The service TTL in the harness config, and so the TTL of Knot's static copy of `www`.
const SERVICE_TTL: u32 = 5;

/// Where Debian installs the Knot daemon.
const KNOTD: &str = "/usr/sbin/knotd";

/// A Knot DNS daemon on a loopback port, with its config and run dir in a temp dir.
struct Knot {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Knot {
    /// Starts knotd serving `zones` (origin, zone file text) and waits until each answers.
    fn start(zones: &[(&str, String)]) -> Self {
        assert!(
            Path::new(KNOTD).exists(),
            "{KNOTD} not found: the differential tests need Knot DNS (apt-get install -y knot)"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = loopback_ip();
        let addr = SocketAddr::new(ip, free_port(&[ip]));
        let mut config = format!(
            "server:\n    rundir: {run}\n    listen: {ip}@{port}\n    identity: \"diff-node\"\n    version: \"\"\n\
             log:\n  - target: stderr\n    any: warning\n\
             database:\n    storage: {run}\n\
             zone:\n",
            run = dir.path().display(),
            port = addr.port(),
        );
        for (origin, text) in zones {
            let file = dir.path().join(format!("{origin}zone"));
            fs::write(&file, text).expect("write zone");
            let _ = write!(
                config,
                "  - domain: {origin}\n    file: {}\n    journal-content: none\n    zonefile-sync: -1\n",
                file.display()
            );
        }
        let config_path = dir.path().join("knot.conf");
        fs::write(&config_path, config).expect("write knot.conf");
        let log = fs::File::create(dir.path().join("knot.log")).expect("log");
        let child = Command::new(KNOTD)
            .arg("-c")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start knotd");
        let mut knot = Self { child, addr, dir };
        let log_path = knot.dir.path().join("knot.log");
        for (origin, _) in zones {
            wait_for_start(
                &mut knot.child,
                "knotd",
                || fs::read_to_string(&log_path).unwrap_or_default(),
                || {
                    try_query(
                        addr,
                        origin,
                        hickory_proto::rr::RecordType::SOA,
                        Transport::Udp,
                    )
                    .is_some_and(|r| !r.answers.is_empty())
                },
            );
        }
        knot
    }
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn zone_path(file: &str) -> PathBuf {
    repo_root().join("tests/zones").join(file)
}

/// failover-dns and Knot serving the same zones, with both members of `www.diff.test.`
/// healthy on live listeners.
struct Pair {
    ours: Server,
    knot: Knot,
    primary: Option<TcpListener>,
    standby_ip: IpAddr,
    _standby: TcpListener,
}

/// The test zones as Knot gets them: `www` a static A record for `address`, and the serial of
/// diff.test. raised `bumps` times, as failover-dns raises it on each answer change.
fn knot_with_www_at(address: IpAddr, bumps: u32) -> Knot {
    let diff = fs::read_to_string(zone_path("diff.test.zone")).expect("diff zone");
    let second = fs::read_to_string(zone_path("second.test.zone")).expect("second zone");
    let serial = 2026112401 + bumps;
    assert!(diff.contains(" 2026112401 "), "diff.test.zone's serial");
    let diff = diff.replacen(" 2026112401 ", &format!(" {serial} "), 1);
    let knot_diff = format!("{diff}\nwww {SERVICE_TTL} IN A {address}\n");
    Knot::start(&[("diff.test.", knot_diff), ("second.test.", second)])
}

fn pair() -> Pair {
    pair_with("")
}

/// As [`pair`], with `service_lines` added to the service (e.g. a policy).
fn pair_with(service_lines: &str) -> Pair {
    // The port was free a moment ago; if something took it since, pick again.
    let (primary_ip, standby_ip, port, primary, standby) = (0..10)
        .find_map(|_| {
            let (primary_ip, standby_ip) = (loopback_ip(), loopback_ip());
            let port = free_port(&[primary_ip, standby_ip]);
            let primary = TcpListener::bind((primary_ip, port)).ok()?;
            let standby = TcpListener::bind((standby_ip, port)).ok()?;
            Some((primary_ip, standby_ip, port, primary, standby))
        })
        .expect("two member listeners on one port");
    let knot = knot_with_www_at(primary_ip, 0);

    let service = service_toml("www.diff.test.", &[primary_ip, standby_ip], "tcp", port, "")
        .replace("ttl = 5", &format!("ttl = {SERVICE_TTL}\n{service_lines}"));
    let config = format!(
        "[server]\nidentity = \"diff-node\"\nversion = \"\"\n\n\
         [[zone]]\norigin = \"diff.test.\"\nfile = \"{}\"\n\n\
         [[zone]]\norigin = \"second.test.\"\nfile = \"{}\"\n\n{service}",
        zone_path("diff.test.zone").display(),
        zone_path("second.test.zone").display(),
    );
    let ours = Server::start_with_config(&config, "diff.test.");
    ours.wait_for_members_up(2);
    Pair {
        ours,
        knot,
        primary: Some(primary),
        standby_ip,
        _standby: standby,
    }
}

/// A DNS message built byte by byte, so the harness can send what a typed builder refuses to
/// (unknown opcodes, QDCOUNT ≠ 1, odd classes).
#[derive(Clone)]
struct Raw {
    /// Second and third header bytes: QR, opcode, AA, TC, RD / RA, Z, AD, CD, rcode.
    flags: u16,
    questions: Vec<(String, u16, u16)>,
    /// (UDP payload, version, DO bit) of an OPT record.
    edns: Option<(u16, u8, bool)>,
}

const RD: u16 = 0x0100;
const CD: u16 = 0x0010;

impl Raw {
    fn query(name: &str, qtype: u16) -> Self {
        Self {
            flags: 0,
            questions: vec![(name.to_string(), qtype, 1)],
            edns: Some((1232, 0, false)),
        }
    }

    fn class(mut self, qclass: u16) -> Self {
        self.questions[0].2 = qclass;
        self
    }

    fn edns(mut self, edns: Option<(u16, u8, bool)>) -> Self {
        self.edns = edns;
        self
    }

    fn opcode(mut self, opcode: u16) -> Self {
        self.flags = (self.flags & !0x7800) | (opcode << 11);
        self
    }

    fn flags(mut self, flags: u16) -> Self {
        self.flags |= flags;
        self
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&random::<u16>().to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&(self.questions.len() as u16).to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0]);
        out.extend_from_slice(&u16::from(self.edns.is_some()).to_be_bytes());
        for (name, qtype, qclass) in &self.questions {
            for label in name
                .trim_end_matches('.')
                .split('.')
                .filter(|l| !l.is_empty())
            {
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
            out.push(0);
            out.extend_from_slice(&qtype.to_be_bytes());
            out.extend_from_slice(&qclass.to_be_bytes());
        }
        if let Some((payload, version, dnssec_ok)) = self.edns {
            out.push(0);
            out.extend_from_slice(&41u16.to_be_bytes());
            out.extend_from_slice(&payload.to_be_bytes());
            out.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
        }
        out
    }

    fn describe(&self, transport: Transport) -> String {
        let questions: Vec<String> = self
            .questions
            .iter()
            .map(|(n, t, c)| format!("{n} type{t} class{c}"))
            .collect();
        format!(
            "[{}] over {transport:?}, flags {:#06x}, edns {:?}",
            questions.join(", "),
            self.flags,
            self.edns
        )
    }
}

/// What the harness compares of a response: everything but the ID and record order.
#[derive(Debug, PartialEq)]
struct Shape {
    rcode: u16,
    opcode: u8,
    flags: String,
    question: Vec<String>,
    answer: BTreeSet<String>,
    authority: BTreeSet<String>,
    additional: BTreeSet<String>,
    edns: Option<String>,
}

fn records(section: &[Record]) -> BTreeSet<String> {
    section
        .iter()
        // Names compare without case (RFC 4343): Knot compresses names in RDATA against the
        // question, so they come back in the client's case. The test zones' text is lower-case.
        .map(|r| {
            format!(
                "{} {} {} {} {}",
                r.name,
                r.ttl,
                r.dns_class,
                r.record_type(),
                r.data
            )
            .to_lowercase()
        })
        .collect()
}

/// The shape of a raw response, or why it has none.
fn shape(raw: Option<Vec<u8>>) -> Result<Shape, String> {
    let raw = raw.ok_or("no response")?;
    let message = Message::from_vec(&raw).map_err(|e| format!("undecodable response: {e}"))?;
    let m = &message.metadata;
    let flags = [
        (m.authoritative, "aa"),
        (m.truncation, "tc"),
        (m.recursion_desired, "rd"),
        (m.recursion_available, "ra"),
        (m.authentic_data, "ad"),
        (m.checking_disabled, "cd"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(" ");
    let question = message
        .queries
        .iter()
        .map(|q| format!("{} {} {}", q.name(), q.query_class(), q.query_type()))
        .collect();
    // A truncated response carries whatever fitted; RFC 2181 §9 leaves that to the server,
    // so only the header of a TC response is compared.
    let truncated = m.truncation;
    let section = |records_of: &[Record]| {
        if truncated {
            BTreeSet::new()
        } else {
            records(records_of)
        }
    };
    Ok(Shape {
        rcode: u16::from(m.response_code),
        opcode: u8::from(m.op_code),
        flags,
        question,
        answer: section(&message.answers),
        authority: section(&message.authorities),
        additional: section(&message.additionals),
        edns: message.edns.as_ref().map(|e| {
            format!(
                "version {} payload {} do {}",
                e.version(),
                e.max_payload(),
                e.flags().dnssec_ok
            )
        }),
    })
}

/// The fields in which two responses differ; for record sections, only the records one has
/// and the other lacks.
fn explain(ours: &Result<Shape, String>, knot: &Result<Shape, String>) -> String {
    let (Ok(o), Ok(k)) = (ours, knot) else {
        return format!("  failover-dns: {ours:?}\n  knot:         {knot:?}");
    };
    let mut out = String::new();
    let mut field = |name: &str, a: String, b: String| {
        if a != b {
            let _ = writeln!(out, "  {name}: failover-dns {a} / knot {b}");
        }
    };
    field("rcode", o.rcode.to_string(), k.rcode.to_string());
    field("opcode", o.opcode.to_string(), k.opcode.to_string());
    field("flags", format!("[{}]", o.flags), format!("[{}]", k.flags));
    field(
        "question",
        format!("{:?}", o.question),
        format!("{:?}", k.question),
    );
    field("edns", format!("{:?}", o.edns), format!("{:?}", k.edns));
    for (name, a, b) in [
        ("answer", &o.answer, &k.answer),
        ("authority", &o.authority, &k.authority),
        ("additional", &o.additional, &k.additional),
    ] {
        field(
            name,
            format!("only {:?}", a.difference(b).collect::<Vec<_>>()),
            format!("only {:?}", b.difference(a).collect::<Vec<_>>()),
        );
    }
    out
}

impl Pair {
    /// Sends `query` to both servers over `transport`; describes any difference.
    fn compare(&self, query: &Raw, transport: Transport) -> Option<String> {
        let bytes = query.encode();
        let ours = shape(exchange_raw(self.ours.dns, &bytes, transport));
        let knot = shape(exchange_raw(self.knot.addr, &bytes, transport));
        (ours != knot).then(|| format!("{}\n{}", query.describe(transport), explain(&ours, &knot)))
    }

    /// Compares every query over each transport and panics listing every difference.
    fn assert_same(&self, queries: &[(Raw, &[Transport])]) {
        let mut differences = Vec::new();
        let mut compared = 0;
        for (query, transports) in queries {
            for transport in *transports {
                compared += 1;
                differences.extend(self.compare(query, *transport));
            }
        }
        assert!(
            differences.is_empty(),
            "{} of {compared} responses differ from Knot's:\n{}",
            differences.len(),
            differences.join("\n")
        );
    }
}

const BOTH: &[Transport] = &[Transport::Udp, Transport::Tcp];
const UDP: &[Transport] = &[Transport::Udp];

/// The query types compared at every name.
const TYPES: &[u16] = &[
    1,   // A
    28,  // AAAA
    2,   // NS
    6,   // SOA
    15,  // MX
    16,  // TXT
    5,   // CNAME
    33,  // SRV
    43,  // DS
    12,  // PTR
    13,  // HINFO
    255, // ANY
];

/// Every owner name of the zones, the names between and below them, and absent names.
const NAMES: &[&str] = &[
    "diff.test.",
    "ns1.diff.test.",
    "mail.diff.test.",
    "multi.diff.test.",
    "short.diff.test.",
    "x.y.diff.test.",
    "y.diff.test.",
    "a.b.c.diff.test.",
    "b.c.diff.test.",
    "c.diff.test.",
    "wild.diff.test.",
    "foo.wild.diff.test.",
    "a.b.wild.diff.test.",
    "here.wild.diff.test.",
    "x.here.wild.diff.test.",
    "foo.ent.deep.diff.test.",
    "ent.deep.diff.test.",
    "deep.diff.test.",
    "x.cn.diff.test.",
    "cn.diff.test.",
    "a.mxwild.diff.test.",
    "alias.diff.test.",
    "alias2.diff.test.",
    "loop1.diff.test.",
    "self.diff.test.",
    "out.diff.test.",
    "dangling.diff.test.",
    "tochild.diff.test.",
    "toservice.diff.test.",
    "towild.diff.test.",
    "child.diff.test.",
    "ns.child.diff.test.",
    "a.b.child.diff.test.",
    "other.diff.test.",
    "x.other.diff.test.",
    "signed.diff.test.",
    "_sip._tcp.diff.test.",
    "_tcp.diff.test.",
    "www.diff.test.",
    "x.www.diff.test.",
    "nope.diff.test.",
    "a.nope.diff.test.",
    "second.test.",
    "host.second.test.",
    "nope.second.test.",
];

#[test]
fn every_name_and_type_answers_as_knot_does() {
    let pair = pair();
    let mut queries = Vec::new();
    for name in NAMES {
        for qtype in TYPES {
            queries.push((Raw::query(name, *qtype), BOTH));
            queries.push((Raw::query(name, *qtype).edns(None), UDP));
        }
    }
    pair.assert_same(&queries);
}

#[test]
fn question_case_is_echoed_and_lookups_ignore_it() {
    let pair = pair();
    let names = [
        "WwW.DiFf.TeSt.",
        "MULTI.diff.TEST.",
        "Foo.Wild.Diff.Test.",
        "ToChild.diff.test.",
        "NoPe.DIFF.test.",
        "A.B.Child.Diff.Test.",
    ];
    let queries: Vec<_> = names
        .iter()
        .flat_map(|n| [(Raw::query(n, 1), BOTH), (Raw::query(n, 255), BOTH)])
        .collect();
    pair.assert_same(&queries);
}

#[test]
fn edns_buffer_sizes_versions_and_truncation_match() {
    let pair = pair();
    let mut queries = Vec::new();
    for name in ["big.diff.test.", "multi.diff.test.", "diff.test."] {
        for payload in [0, 100, 512, 1232, 1400, 4096, 65535] {
            for dnssec_ok in [false, true] {
                queries.push((
                    Raw::query(name, 16).edns(Some((payload, 0, dnssec_ok))),
                    BOTH,
                ));
            }
        }
        queries.push((Raw::query(name, 16).edns(Some((1232, 1, false))), BOTH));
        queries.push((Raw::query(name, 16).edns(Some((4096, 255, true))), BOTH));
    }
    pair.assert_same(&queries);
}

#[test]
fn opcodes_counts_classes_and_header_flags_match() {
    let pair = pair();
    let mut queries = Vec::new();
    // NOTIFY (4) and UPDATE (5) are deliberate differences, tested below.
    for opcode in (1..16).filter(|o| ![4, 5].contains(o)) {
        queries.push((Raw::query("www.diff.test.", 1).opcode(opcode), BOTH));
    }
    let mut none = Raw::query("www.diff.test.", 1);
    none.questions.clear();
    queries.push((none, BOTH));
    for (name, qtype) in [
        ("id.server.", 16),
        ("hostname.bind.", 16),
        ("version.server.", 16),
        ("version.bind.", 16),
        ("id.server.", 1),
        ("id.server.", 255),
        ("authors.bind.", 16),
        ("diff.test.", 6),
    ] {
        queries.push((Raw::query(name, qtype).class(3), BOTH));
    }
    for qclass in [4, 254, 255, 2] {
        for name in [
            "diff.test.",
            "www.diff.test.",
            "nope.diff.test.",
            "example.com.",
        ] {
            queries.push((Raw::query(name, 1).class(qclass), BOTH));
            queries.push((Raw::query(name, 6).class(qclass), UDP));
        }
    }
    queries.push((Raw::query("www.diff.test.", 1).flags(RD), BOTH));
    queries.push((Raw::query("nope.diff.test.", 1).flags(RD), UDP));
    for name in ["example.com.", "test.", ".", "diff.test.example."] {
        queries.push((Raw::query(name, 1), BOTH));
    }
    pair.assert_same(&queries);
}

#[test]
fn after_failover_the_service_name_answers_as_a_static_record_of_the_standby_would() {
    let mut pair = pair();
    drop(pair.primary.take());
    pair.ours.wait_for_answer(
        "www.diff.test.",
        &[pair.standby_ip],
        Duration::from_secs(10),
    );
    pair.knot = knot_with_www_at(pair.standby_ip, 1);
    let mut queries = Vec::new();
    for name in [
        "www.diff.test.",
        "WWW.diff.test.",
        "x.www.diff.test.",
        "toservice.diff.test.",
        "diff.test.",
        "nope.diff.test.",
    ] {
        for qtype in TYPES {
            queries.push((Raw::query(name, *qtype), BOTH));
        }
    }
    pair.assert_same(&queries);
}

#[test]
fn a_weighted_service_answers_as_knot_would_with_one_of_its_members() {
    // Each response carries one member drawn by weight: it must be exactly what Knot answers
    // with that member as a static record, over UDP (memoized per draw) and TCP.
    let pair = pair_with("policy = \"weighted\"");
    let primary_ip = pair
        .primary
        .as_ref()
        .and_then(|l| l.local_addr().ok())
        .expect("primary")
        .ip();
    let knots = [
        knot_with_www_at(primary_ip, 0),
        knot_with_www_at(pair.standby_ip, 0),
    ];
    let mut drawn = [0usize; 2];
    let mut differences = Vec::new();
    for name in ["www.diff.test.", "WWW.diff.test.", "toservice.diff.test."] {
        let query = Raw::query(name, 1);
        for transport in BOTH {
            for _ in 0..40 {
                let bytes = query.encode();
                let ours = shape(exchange_raw(pair.ours.dns, &bytes, *transport));
                let theirs: Vec<_> = knots
                    .iter()
                    .map(|k| shape(exchange_raw(k.addr, &bytes, *transport)))
                    .collect();
                match theirs.iter().position(|k| *k == ours) {
                    Some(i) => drawn[i] += 1,
                    None => differences.push(format!(
                        "{}\n{}",
                        query.describe(*transport),
                        explain(&ours, &theirs[0])
                    )),
                }
            }
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    // 240 draws of two members weighted alike: each is drawn (all 240 alike by chance: 2^-239).
    assert!(drawn[0] > 0 && drawn[1] > 0, "{drawn:?}");
}

/// Where we answer differently from Knot on purpose (README, "Where we differ from Knot"):
/// our side is asserted exactly, so a change in either direction is noticed.
#[test]
fn deliberate_differences_from_knot_are_as_documented() {
    let pair = pair();
    let ours = |query: &Raw, transport| {
        shape(exchange_raw(pair.ours.dns, &query.encode(), transport)).expect("a response")
    };
    for transport in [Transport::Udp, Transport::Tcp] {
        // NOTIFY and UPDATE: we are neither a secondary nor dynamically updatable, so NOTIMP,
        // "does not support the requested kind of query" (RFC 1035 §4.1.1). Knot answers
        // NOTAUTH and FORMERR from its ACL and update parser.
        for opcode in [4, 5] {
            let response = ours(&Raw::query("www.diff.test.", 1).opcode(opcode), transport);
            assert_eq!((response.rcode, response.opcode), (4, opcode as u8));
        }

        // QDCOUNT 2: FORMERR as RFC 9619 §4 asks; Knot sends nothing.
        let mut two = Raw::query("www.diff.test.", 1);
        two.questions.push(("mail.diff.test.".into(), 1, 1));
        assert_eq!(ours(&two, transport).rcode, 1, "{transport:?}");

        // CD is copied into the response (RFC 4035 §3.1.6); Knot clears it. Otherwise the
        // responses are the same.
        for (name, flags) in [("www.diff.test.", CD), ("nope.diff.test.", RD | CD)] {
            let query = Raw::query(name, 1).flags(flags);
            let mut response = ours(&query, transport);
            assert!(response.flags.ends_with("cd"), "{response:?}");
            response.flags = response.flags.trim_end_matches("cd").trim_end().to_string();
            let knot = shape(exchange_raw(pair.knot.addr, &query.encode(), transport));
            assert_eq!(Ok(response), knot, "{}", query.describe(transport));
        }
    }

    // A long CNAME chain: we follow 8 links inside the zone (9 CNAMEs), Knot 4 (5 CNAMEs);
    // either way the resolver carries on from the last target.
    let mut zone = String::from("$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n");
    for i in 0..12 {
        zone.push_str(&format!("d{i} CNAME d{}\n", i + 1));
    }
    zone.push_str("d12 A 192.0.2.7\n");
    let knot = Knot::start(&[("chain.test.", zone.clone())]);
    let config = "[[zone]]\norigin = \"chain.test.\"\nfile = \"z.zone\"\n";
    let ours = Server::start_with_files(&[("z.zone", &zone)], config, "chain.test.");
    let query = Raw::query("d0.chain.test.", 1).encode();
    let cnames = |server| {
        let shape = shape(exchange_raw(server, &query, Transport::Udp)).expect("a response");
        shape
            .answer
            .iter()
            .filter(|r| r.contains(" cname "))
            .count()
    };
    assert_eq!((cnames(ours.dns), cnames(knot.addr)), (9, 5));
}

/// The query types compared at every name of the corpus zones: [`TYPES`] and the types the
/// corpus holds beyond them.
const CORPUS_TYPES: &[u16] = &[
    1, 28, 2, 6, 15, 16, 5, 33, 43, 12, 13, 255, 46, 47, 48, 50, 51, 257, 64, 65, 52, 44, 35, 29,
    39, 99, 256, 45,
];

/// Every corpus zone both NSD and Knot load, served by Knot and by failover-dns, each owner
/// name (with the empty non-terminals and a name below each) asked for each of
/// [`CORPUS_TYPES`]: every difference is listed with its query.
fn corpus_differences() -> Vec<(String, Vec<String>)> {
    let dir = repo_root().join("tests/zones/corpus");
    let manifest = fs::read_to_string(dir.join("MANIFEST")).expect("MANIFEST");
    let mut found = Vec::new();
    for line in manifest
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let mut fields = line.split('\t');
        let (Some(file), Some(origin)) = (fields.next(), fields.next()) else {
            continue;
        };
        let path = dir.join(file);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let both = ["nsd-checkzone", "kzonecheck"].iter().all(|tool| {
            let args: Vec<&str> = if *tool == "kzonecheck" {
                vec!["-o", origin, path.to_str().expect("utf-8")]
            } else {
                vec![origin, path.to_str().expect("utf-8")]
            };
            Command::new(tool)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !both || text.to_ascii_uppercase().contains("$INCLUDE") {
            continue;
        }
        let name = hickory_proto::rr::Name::from_ascii(origin).expect("origin");
        let zone = failover_dns::zone::load(&path, &name).expect("loads (corpus test)");
        let mut names: BTreeSet<String> = zone
            .nodes
            .keys()
            .chain(zone.recordless.iter())
            .map(ToString::to_string)
            .collect();
        let below: Vec<String> = names.iter().map(|n| format!("nx-below.{n}")).collect();
        names.extend(below);
        let knot = Knot::start(&[(origin, text.clone())]);
        let config = format!("[[zone]]\norigin = \"{origin}\"\nfile = \"z.zone\"\n");
        let ours = Server::start_with_files(&[("z.zone", &text)], &config, origin);
        let mut differences = Vec::new();
        for name in &names {
            for qtype in CORPUS_TYPES {
                let query = Raw::query(name, *qtype);
                let bytes = query.encode();
                for transport in [Transport::Udp, Transport::Tcp] {
                    let ours = exchange_raw(ours.dns, &bytes, transport);
                    let knots = exchange_raw(knot.addr, &bytes, transport);
                    // No larger than Knot's for the same data (name compression, RFC 1035
                    // §4.1.4), over TCP too, where nothing is left out to fit.
                    let sizes = (ours.as_ref().map(Vec::len), knots.as_ref().map(Vec::len));
                    if let (Some(a), Some(b)) = sizes
                        && a > b
                    {
                        differences.push(format!(
                            "{}\n  {a} bytes where Knot sends {b}",
                            query.describe(transport)
                        ));
                    }
                    let (a, b) = (shape(ours), shape(knots));
                    if a != b {
                        differences.push(format!(
                            "{}\n{}",
                            query.describe(transport),
                            explain(&a, &b)
                        ));
                    }
                }
            }
        }
        found.push((file.to_string(), differences));
    }
    found
}

/// Corpus zones whose answers still differ from Knot's, and why (README "Zone files written
/// for other servers"); each must still differ, so that a fix takes it off this list.
const KNOWN_GAPS: &[(&str, &str)] = &[];

#[test]
fn corpus_zones_answer_as_knot_does_apart_from_known_gaps() {
    let found = corpus_differences();
    assert!(
        found.len() >= 50,
        "only {} corpus zones compared",
        found.len()
    );
    let mut report = String::new();
    for (file, differences) in &found {
        let gap = KNOWN_GAPS.iter().find(|(f, _)| f == file);
        match (gap, differences.is_empty()) {
            (None, false) => {
                let _ = writeln!(report, "{file}: {} differences, e.g.", differences.len());
                for d in differences.iter().take(3) {
                    let _ = writeln!(report, "  {}", d.replace('\n', "\n  "));
                }
            }
            (Some(_), true) => {
                let _ = writeln!(
                    report,
                    "{file} answers as Knot does now: take it off KNOWN_GAPS"
                );
            }
            _ => {}
        }
    }
    assert!(report.is_empty(), "{report}");
}
