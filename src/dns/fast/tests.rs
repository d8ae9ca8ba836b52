//! The fast path against the full path, byte for byte, over many zones and request shapes.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use hickory_proto::rr::{LowerName, Name};

use super::*;
use crate::dns::request::respond_to_bytes;
use crate::dns::wire::lower_wire;
use crate::snapshot::{ServerStrings, ServiceRecords};

/// Delegations, wildcards, CNAMEs and in-zone MX/SRV targets: much is the full path's.
const TRICKY: &str = "$ORIGIN svc.example.test.\n$TTL 3600\n\
    @ IN SOA ns1 hostmaster 42 7200 900 1209600 60\n\
    @ IN NS ns1\n@ IN NS ns.elsewhere.test.\nns1 IN A 192.0.2.1\n\
    static IN A 192.0.2.80\nx.y IN TXT \"deep\"\n\
    alias IN CNAME www\nout IN CNAME www.elsewhere.test.\n\
    *.wild IN A 192.0.2.99\nhere.wild IN TXT \"real\"\n\
    child IN NS ns.child\nns.child IN A 192.0.2.53\n\
    mail IN MX 10 www\nmail IN MX 30 mx.elsewhere.test.\n\
    _sip._tcp IN SRV 0 0 5060 static\nwww IN TXT \"service with a static TXT\"\n";

/// A plain zone, as most are: no delegation or wildcard, so NXDOMAIN is served fast too.
const PLAIN: &str = "$ORIGIN Example.TEST.\n$TTL 300\n\
    @ IN SOA ns1.example.test. hostmaster.example.test. 7 7200 900 1209600 120\n\
    @ IN NS ns1\nns1 IN A 192.0.2.1\nHost1 IN A 192.0.2.10\nhost2 IN A 192.0.2.11\n\
    host2 IN A 192.0.2.12\nhost2 IN AAAA 2001:db8::12\nhost2 IN TXT \"two\"\n\
    mx IN MX 10 mail.elsewhere.test.\nmx2 IN MX 10 host1\n\
    srv IN SRV 1 2 443 host.elsewhere.test.\na.b.c IN TXT \"below empty non-terminals\"\n\
    ptr IN PTR host1.example.test.\ncaa IN CAA 0 issue \"ca.example\"\n\
    big IN TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\" \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"\n";

/// Wildcards without delegations.
const WILD: &str = "$ORIGIN wild.test.\n$TTL 60\n\
    @ IN SOA ns1 hostmaster 1 7200 900 1209600 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
    *.w IN A 192.0.2.99\nhere.w IN TXT \"real\"\n*.deep.er IN TXT \"deeper\"\n";

/// A zone inside PLAIN's, so the most specific zone must be picked.
const CHILD: &str = "$ORIGIN sub.example.test.\n$TTL 60\n\
    @ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 30\n\
    @ IN NS ns1.example.test.\nhost IN A 192.0.2.77\n";

fn zone(origin: &str, text: &str, services: &[&str]) -> (ZoneSnapshot, Vec<String>) {
    let origin = Name::from_ascii(origin).expect("origin");
    let mut data = crate::zone::parse(text, &origin).expect("zone loads");
    let mut records = HashMap::new();
    let mut keys = HashSet::new();
    for service in services {
        let name = Name::from_ascii(service).expect("name");
        let key = LowerName::new(&name);
        data.add_name(&key);
        let addresses = ["127.0.0.11".parse().expect("ip")];
        records.insert(
            key.clone(),
            Arc::new(ServiceRecords::new(&name, 5, &addresses)),
        );
        keys.insert(key);
    }
    let index = Arc::new(Prerendered::build(&data, &keys));
    let names = data
        .nodes
        .keys()
        .chain(data.recordless.iter())
        .map(ToString::to_string)
        .collect();
    (
        ZoneSnapshot::new(Arc::new(data), index, 1000, records),
        names,
    )
}

/// Snapshots of the test zones, with the names each holds plus some that do not exist.
fn snapshots() -> Vec<(Arc<Snapshot>, Vec<String>)> {
    let server = Arc::new(ServerStrings::default());
    let missing = [
        "nx.svc.example.test.",
        "a.b.child.svc.example.test.",
        "other.wild.svc.example.test.",
        "nx.example.test.",
        "deep.nx.example.test.",
        "nx.b.c.example.test.",
        "nx.sub.example.test.",
        "elsewhere.test.",
        "other.w.wild.test.",
        "a.b.w.wild.test.",
        "x.deep.er.wild.test.",
        "nx.wild.test.",
    ];
    let sets: [&[(&str, &str, &[&str])]; 4] = [
        &[("svc.example.test.", TRICKY, &["www.svc.example.test."])],
        &[(
            "example.test.",
            PLAIN,
            &["www.example.test.", "host2.example.test."],
        )],
        &[
            ("example.test.", PLAIN, &[]),
            ("sub.example.test.", CHILD, &[]),
        ],
        &[("wild.test.", WILD, &[])],
    ];
    sets.iter()
        .map(|zones| {
            let mut names: Vec<String> = missing.iter().map(ToString::to_string).collect();
            let zones = zones
                .iter()
                .map(|(origin, text, services)| {
                    let (zone, zone_names) = zone(origin, text, services);
                    names.extend(zone_names);
                    zone
                })
                .collect();
            let snapshot = Snapshot {
                zones,
                server: Arc::clone(&server),
                keys: std::sync::Arc::default(),
            };
            (Arc::new(snapshot), names)
        })
        .collect()
}

fn wire_name(name: &str) -> Vec<u8> {
    let mut wire = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label.as_bytes());
    }
    wire.push(0);
    wire
}

/// A request for `name` and `qtype` with header flag bytes `flags` and, if given, an OPT
/// record with that payload size and DO bit.
fn request(id: u16, flags: [u8; 2], name: &str, qtype: u16, edns: Option<(u16, bool)>) -> Vec<u8> {
    request_with_options(id, flags, name, qtype, edns, &[])
}

/// As [`request`], the OPT record (if any) carrying `options` as its data.
fn request_with_options(
    id: u16,
    flags: [u8; 2],
    name: &str,
    qtype: u16,
    edns: Option<(u16, bool)>,
    options: &[u8],
) -> Vec<u8> {
    let mut bytes = id.to_be_bytes().to_vec();
    bytes.extend_from_slice(&flags);
    bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
    bytes.extend_from_slice(&wire_name(name));
    bytes.extend_from_slice(&qtype.to_be_bytes());
    bytes.extend_from_slice(&[0, 1]);
    if let Some((payload, dnssec_ok)) = edns {
        let [p0, p1] = payload.to_be_bytes();
        let flags = if dnssec_ok { 0x80 } else { 0 };
        let [l0, l1] = (options.len() as u16).to_be_bytes();
        bytes.extend_from_slice(&[0, 0, 41, p0, p1, 0, 0, flags, 0, l0, l1]);
        bytes.extend_from_slice(options);
    }
    bytes
}

/// Requests in every shape the fast path distinguishes, for each name and type.
fn requests(names: &[String]) -> Vec<Vec<u8>> {
    let qtypes = [
        1, 28, 15, 16, 33, 2, 6, 5, 12, 257, 0, 99, 41, 255, 252, 251, 43, 46, 65535,
    ];
    let edns = [
        None,
        Some((1232, false)),
        Some((4096, true)),
        Some((100, false)),
        Some((600, true)),
    ];
    let flags = [
        [0x01, 0x00],
        [0x00, 0x00],
        [0x01, 0x30],
        [0x03, 0x40],
        [0x05, 0x0f],
    ];
    let mut requests = Vec::new();
    for (n, name) in names.iter().enumerate() {
        let cases = [name.clone(), name.to_uppercase(), mixed_case(name)];
        for (q, qtype) in qtypes.iter().enumerate() {
            for (c, case) in cases.iter().enumerate() {
                let e = edns[(n + q + c) % edns.len()];
                let f = flags[(n * 3 + q + c) % flags.len()];
                requests.push(request((n * 31 + q) as u16, f, case, *qtype, e));
            }
        }
        for (o, options) in OPTIONS.iter().enumerate() {
            let e = Some((1232, o % 2 == 0));
            requests.push(request_with_options(7, [1, 0], name, 1, e, options));
        }
    }
    requests
}

/// OPT data: a cookie as dig sends it, padding, keepalive, two at once, an empty NSID,
/// client subnets valid and not, options cut short or overrunning, a stray byte.
const OPTIONS: [&[u8]; 10] = [
    &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
    &[0, 12, 0, 3, 0, 0, 0],
    &[0, 11, 0, 0],
    &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0],
    &[0, 3, 0, 0],
    &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2],
    &[0, 8, 0, 2, 0, 9],
    &[0, 10, 0, 9, 1, 2, 3],
    &[0, 10, 0, 1],
    &[0, 10, 0, 0, 7],
];

fn mixed_case(name: &str) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if i % 2 == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Whether the fast path answers `request` (a fresh worker each time, and one that has
/// answered before), and if so, exactly as the full path does.
/// Over UDP and over TCP; true when the fast path answered over UDP (and then it must
/// over TCP too, where only the size limit differs and is larger).
fn check(worker: &mut FastPath, snapshot: &Arc<Snapshot>, request: &[u8]) -> bool {
    let mut answered = Vec::new();
    for protocol in [Protocol::Udp, Protocol::Tcp] {
        let full = respond_to_bytes(snapshot, request, protocol);
        let fast = FastPath::default().respond(snapshot, request, protocol);
        let again = worker.respond(snapshot, request, protocol);
        assert_eq!(
            fast.as_ref().map(|a| &a.bytes),
            again.as_ref().map(|a| &a.bytes)
        );
        if let Some(fast) = fast {
            let context = format!("{protocol:?} request {request:02x?}");
            assert_eq!(Some(&fast.bytes), full.as_ref(), "{context}");
            answered.push(protocol);
        }
    }
    match answered[..] {
        [] | [Protocol::Tcp] => false,
        [Protocol::Udp, Protocol::Tcp] => true,
        _ => panic!("answered fast over {answered:?} only: {request:02x?}"),
    }
}

#[test]
fn fast_answers_are_the_full_paths_bytes_for_every_name_type_and_request_shape() {
    let mut fast_answers = 0;
    let mut total = 0;
    for (snapshot, names) in snapshots() {
        let mut worker = FastPath::default();
        for request in requests(&names) {
            total += 1;
            fast_answers += usize::from(check(&mut worker, &snapshot, &request));
        }
    }
    // Most requests of the plain zones take the fast path; the test is not vacuous.
    assert!(fast_answers > total / 4, "{fast_answers} of {total}");
}

#[test]
fn static_answers_nodata_and_nxdomain_are_fast_and_dynamic_names_are_not() {
    let (snapshot, _) = snapshots().swap_remove(1);
    let mut worker = FastPath::default();
    let rcode = |worker: &mut FastPath, name: &str, qtype: u16| {
        worker
            .respond(
                &snapshot,
                &request(7, [1, 0], name, qtype, None),
                Protocol::Udp,
            )
            .map(|a| a.rcode)
    };
    for (name, qtype, expected) in [
        ("HOST1.example.test.", 1, ResponseCode::NoError),
        ("host1.example.test.", 15, ResponseCode::NoError),
        ("b.c.example.test.", 1, ResponseCode::NoError),
        ("nx.example.test.", 1, ResponseCode::NXDomain),
        ("mx.example.test.", 15, ResponseCode::NoError),
    ] {
        assert_eq!(
            rcode(&mut worker, name, qtype),
            Some(expected),
            "{name} {qtype}"
        );
    }
    // Service names (also one with static records), the apex, an MX whose target is in
    // the zone, and an answer too big for 512 bytes take the full path.
    for (name, qtype) in [
        ("www.example.test.", 1),
        ("host2.example.test.", 16),
        ("example.test.", 6),
        ("example.test.", 1),
        ("mx2.example.test.", 15),
        ("big.example.test.", 16),
    ] {
        assert_eq!(rcode(&mut worker, name, qtype), None, "{name} {qtype}");
    }
    // A cookie (dig sends one by default) keeps a request fast; a client subnet does not.
    let cookie = request_with_options(
        7,
        [1, 0],
        "host1.example.test.",
        1,
        Some((1232, false)),
        OPTIONS[0],
    );
    assert!(check(&mut worker, &snapshot, &cookie));
    let subnet = request_with_options(
        7,
        [1, 0],
        "host1.example.test.",
        1,
        Some((1232, false)),
        OPTIONS[5],
    );
    assert!(worker.respond(&snapshot, &subnet, Protocol::Udp).is_none());
    // With EDNS the big answer fits and is fast.
    let big = request(7, [1, 0], "big.example.test.", 16, Some((1232, false)));
    assert!(check(&mut worker, &snapshot, &big));
}

#[test]
fn nxdomain_is_left_to_the_full_path_where_delegations_or_wildcards_could_apply() {
    let mut worker = FastPath::default();
    let mut assert_left_alone = |snapshot: &Arc<Snapshot>, names: &[&str]| {
        for name in names {
            let request = request(9, [1, 0], name, 1, None);
            let fast = worker.respond(snapshot, &request, Protocol::Udp);
            assert!(fast.is_none(), "{name}");
        }
    };
    let (snapshot, _) = snapshots().swap_remove(0);
    assert_left_alone(
        &snapshot,
        &[
            "nx.svc.example.test.",
            "a.b.child.svc.example.test.",
            "other.wild.svc.example.test.",
            "ns.child.svc.example.test.",
            "alias.svc.example.test.",
        ],
    );
    let (wild, _) = snapshots().swap_remove(3);
    assert_left_alone(
        &wild,
        &[
            "nx.wild.test.",
            "other.w.wild.test.",
            "x.deep.er.wild.test.",
        ],
    );
    let static_a = request(9, [1, 0], "static.svc.example.test.", 1, None);
    assert!(check(&mut worker, &snapshot, &static_a));
    let txt = request(9, [1, 0], "here.w.wild.test.", 16, None);
    assert!(check(&mut worker, &wild, &txt));
}

#[test]
fn random_and_mutated_requests_are_either_left_alone_or_answered_alike() {
    let (snapshot, names) = snapshots().swap_remove(1);
    let seeds = requests(&names);
    let mut worker = FastPath::default();
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut fast_answers = 0;
    for round in 0..60_000 {
        let mut request = seeds[next() as usize % seeds.len()].clone();
        match round % 6 {
            0 => {
                let at = next() as usize % request.len();
                request[at] ^= 1 << (next() % 8);
            }
            1 => {
                let at = next() as usize % request.len();
                request[at] = next() as u8;
            }
            2 => request.truncate(next() as usize % request.len()),
            3 => request.push(next() as u8),
            4 => {
                // A count or flag byte set at random.
                let at = 2 + next() as usize % 10;
                request[at] = next() as u8;
            }
            _ => {
                let at = next() as usize % request.len();
                request.insert(at, next() as u8);
            }
        }
        fast_answers += usize::from(check(&mut worker, &snapshot, &request));
    }
    assert!(fast_answers > 1000, "{fast_answers}");
}

#[test]
fn names_at_the_length_limit_are_answered_alike() {
    let (snapshot, _) = snapshots().swap_remove(1);
    let mut worker = FastPath::default();
    // "example.test." is 14 bytes on the wire; labels of 63 then one of `last` bytes.
    for last in 1..=63 {
        let mut name = String::new();
        for _ in 0..3 {
            name.push_str(&"a".repeat(63));
            name.push('.');
        }
        name.push_str(&"b".repeat(last));
        name.push_str(".example.test.");
        let request = request(3, [1, 0], &name, 1, None);
        check(&mut worker, &snapshot, &request);
    }
    // A label length of 64 and up is no plain label (RFC 6891 §5: 0b01 is an extended
    // label type): FORMERR on the full path, so never answered fast.
    for len in [63u8, 64, 65, 127, 128, 191] {
        let mut request = request(3, [1, 0], "example.test.", 1, None);
        let mut label = vec![len];
        label.extend(std::iter::repeat_n(b'a', usize::from(len)));
        request.splice(HEADER..HEADER, label);
        check(&mut worker, &snapshot, &request);
    }
}

#[test]
fn every_name_of_a_large_zone_is_found_and_no_other() {
    let mut text =
        String::from("$ORIGIN big.test.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n");
    for i in 0..5000 {
        text.push_str(&format!("host{i} IN A 192.0.2.{}\n", i % 250));
    }
    let (zone, _) = zone("big.test.", &text, &[]);
    let index = &zone.index;
    let wire = |name: String| lower_wire(&Name::from_ascii(name).expect("name"));
    for i in 0..5000 {
        let found = index.find(&wire(format!("HOST{i}.big.test.")), 1);
        assert!(
            matches!(found, Found::Answer { count: 1, .. }),
            "host{i}: {found:?}"
        );
        let missing = index.find(&wire(format!("host{i}x.big.test.")), 1);
        assert_eq!(missing, Found::NxDomain, "host{i}x");
    }
    assert_eq!(index.find(&wire("big.test.".into()), 6), Found::FullPath);
}

#[test]
fn negative_answers_carry_the_current_snapshots_serial() {
    let (old, _) = snapshots().swap_remove(1);
    let zone = &old.zones[0];
    let newer = Arc::new(Snapshot {
        zones: vec![ZoneSnapshot::new(
            Arc::clone(&zone.data),
            Arc::clone(&zone.index),
            2000,
            zone.services.clone(),
        )],
        server: Arc::clone(&old.server),
        keys: std::sync::Arc::default(),
    });
    let mut worker = FastPath::default();
    let request = request(5, [1, 0], "nx.example.test.", 1, None);
    assert!(check(&mut worker, &old, &request));
    // The same worker, with no word but the new snapshot itself.
    assert!(check(&mut worker, &newer, &request));
    assert_ne!(
        respond_to_bytes(&old, &request, Protocol::Udp),
        respond_to_bytes(&newer, &request, Protocol::Udp)
    );
}

#[test]
fn negative_answers_below_the_soas_own_names_are_the_full_paths() {
    // PLAIN's SOA names ns1.example.test. and hostmaster.example.test.: below them the SOA's
    // names compress against the question, so the SOA a worker rendered for another question
    // of the same length would not be the full path's.
    let (snapshot, _) = snapshots().swap_remove(1);
    let mut worker = FastPath::default();
    let nx = |name| request(7, [1, 0], name, 1, None);
    assert!(check(&mut worker, &snapshot, &nx("xx.abc.example.test.")));
    for name in [
        "xx.ns1.example.test.",
        "x.Hostmaster.example.test.",
        "ns1.example.test.",
    ] {
        let qtype = if name.starts_with("ns1") { 16 } else { 1 };
        let request = request(7, [1, 0], name, qtype, None);
        assert!(!check(&mut worker, &snapshot, &request), "{name}");
        assert!(worker.respond(&snapshot, &request, Protocol::Udp).is_none());
    }
}
