use std::collections::HashMap;
use std::sync::Arc;

use super::*;
use crate::snapshot::{ServiceRecords, ZoneSnapshot};

const ZONE: &str = "$ORIGIN svc.example.test.\n$TTL 3600\n\
    @ IN SOA ns1 hostmaster 42 7200 900 1209600 60\n\
    @ IN NS ns1\n@ IN NS ns.elsewhere.test.\nns1 IN A 192.0.2.1\n\
    static IN A 192.0.2.80\nx.y IN TXT \"deep\"\n\
    alias IN CNAME www\nout IN CNAME www.elsewhere.test.\nloop1 IN CNAME loop2\nloop2 IN CNAME loop1\n\
    dangling IN CNAME missing\n\
    *.wild IN A 192.0.2.99\nhere.wild IN TXT \"real\"\n\
    child IN NS ns.child\nns.child IN A 192.0.2.53\n\
    mail IN MX 10 www\nmail IN MX 20 www\nmail IN MX 30 mx.elsewhere.test.\n\
    _sip._tcp IN SRV 0 0 5060 static\n";

/// A snapshot of a small zone `svc.example.test.` with the service `www` (for tests of
/// the layers above the answer function too).
pub(crate) fn snapshot() -> Snapshot {
    let origin = Name::from_ascii("svc.example.test.").expect("origin");
    let mut zone = crate::zone::parse(ZONE, &origin).expect("zone loads");
    let www = Name::from_ascii("www.svc.example.test.").expect("name");
    zone.add_name(&LowerName::new(&www));
    let records = ServiceRecords::new(&www, 5, &["127.0.0.11".parse().expect("ip")]);
    let services = HashMap::from([(LowerName::new(&www), Arc::new(records))]);
    Snapshot {
        zones: vec![ZoneSnapshot::new(
            Arc::new(zone),
            Arc::default(),
            1000,
            services,
        )],
        server: Arc::new(crate::snapshot::ServerStrings {
            identity: "node-a".into(),
            version: String::new(),
        }),
        keys: Arc::default(),
    }
}

fn ask<'s>(snapshot: &'s Snapshot, name: &str, qtype: RecordType) -> Response<'s> {
    ask_with(snapshot, name, qtype, DNSClass::IN, OpCode::Query, None)
}

fn ask_with<'s>(
    snapshot: &'s Snapshot,
    name: &str,
    qtype: RecordType,
    qclass: DNSClass,
    op_code: OpCode,
    edns_version: Option<u8>,
) -> Response<'s> {
    let name = LowerName::new(&Name::from_ascii(name).expect("name"));
    let questions = [Question {
        name: &name,
        qtype,
        qclass,
    }];
    answer(
        snapshot,
        &Query {
            op_code,
            questions: &questions,
            edns_version,
        },
    )
}

fn section(records: &[Cow<'_, Record>]) -> Vec<String> {
    records
        .iter()
        .map(|r| format!("{} {} {} {}", r.name, r.ttl, r.record_type(), r.data))
        .collect()
}

#[test]
fn service_name_answers_its_selection_with_the_service_ttl() {
    let s = snapshot();
    let r = ask(&s, "WWW.svc.example.test.", RecordType::A);
    assert_eq!((r.rcode, r.authoritative), (ResponseCode::NoError, true));
    assert_eq!(
        section(&r.answers),
        ["www.svc.example.test. 5 A 127.0.0.11"]
    );
    assert!(r.authority.is_empty());
}

#[test]
fn service_name_without_the_type_is_nodata_with_negative_soa() {
    let s = snapshot();
    for qtype in [RecordType::AAAA, RecordType::MX, RecordType::TXT] {
        let r = ask(&s, "www.svc.example.test.", qtype);
        assert_eq!(
            (r.rcode, r.authoritative),
            (ResponseCode::NoError, true),
            "{qtype}"
        );
        assert!(r.answers.is_empty(), "{qtype}");
        let soa = section(&r.authority);
        assert_eq!(soa.len(), 1);
        assert!(
            soa[0].starts_with("svc.example.test. 60 SOA"),
            "negative TTL is min(TTL, MINIMUM): {soa:?}"
        );
        assert!(soa[0].contains(" 1000 "), "current serial: {soa:?}");
    }
}

#[test]
fn apex_soa_carries_the_current_serial() {
    let s = snapshot();
    let r = ask(&s, "svc.example.test.", RecordType::SOA);
    let soa = section(&r.answers);
    assert_eq!(soa.len(), 1);
    assert!(soa[0].contains(" 1000 "), "{soa:?}");
}

#[test]
fn any_answers_one_rrset_the_lowest_type() {
    let s = snapshot();
    let apex = ask(&s, "svc.example.test.", RecordType::ANY);
    assert!(
        section(&apex.answers).iter().all(|r| r.contains(" NS ")),
        "NS (2) before SOA (6): {:?}",
        section(&apex.answers)
    );
    assert_eq!(
        section(&ask(&s, "www.svc.example.test.", RecordType::ANY).answers),
        ["www.svc.example.test. 5 A 127.0.0.11"]
    );
    let wild = ask(&s, "x.wild.svc.example.test.", RecordType::ANY);
    assert_eq!(
        section(&wild.answers),
        ["x.wild.svc.example.test. 3600 A 192.0.2.99"]
    );
}

#[test]
fn mx_and_srv_targets_in_the_zone_get_their_addresses_once() {
    let s = snapshot();
    let r = ask(&s, "mail.svc.example.test.", RecordType::MX);
    assert_eq!(section(&r.answers).len(), 3);
    assert_eq!(
        section(&r.additional),
        ["www.svc.example.test. 5 A 127.0.0.11"],
        "the service's current answer, once, nothing for the out-of-zone target"
    );
    let r = ask(&s, "_sip._tcp.svc.example.test.", RecordType::SRV);
    assert_eq!(
        section(&r.additional),
        ["static.svc.example.test. 3600 A 192.0.2.80"]
    );
}

#[test]
fn chaos_identity_is_answered_and_everything_else_in_ch_refused() {
    let s = snapshot();
    let ch = |name, qtype| ask_with(&s, name, qtype, DNSClass::CH, OpCode::Query, None);
    let id = ch("ID.server.", RecordType::TXT);
    assert_eq!((id.rcode, id.authoritative), (ResponseCode::NoError, false));
    assert_eq!(section(&id.answers), ["id.server. 0 TXT node-a"]);
    assert_eq!(id.answers[0].dns_class, DNSClass::CH);
    for (name, qtype) in [
        ("version.server.", RecordType::TXT), // configured empty
        ("id.server.", RecordType::A),
        ("authors.bind.", RecordType::TXT),
        ("svc.example.test.", RecordType::SOA),
    ] {
        assert_eq!(
            ch(name, qtype).rcode,
            ResponseCode::Refused,
            "{name} {qtype}"
        );
    }
}

#[test]
fn class_any_is_answered_from_in_data() {
    let s = snapshot();
    let r = ask_with(
        &s,
        "static.svc.example.test.",
        RecordType::A,
        DNSClass::ANY,
        OpCode::Query,
        None,
    );
    assert_eq!(
        section(&r.answers),
        ["static.svc.example.test. 3600 A 192.0.2.80"]
    );
}

#[test]
fn names_below_a_service_do_not_exist() {
    let s = snapshot();
    assert_eq!(
        ask(&s, "a.www.svc.example.test.", RecordType::A).rcode,
        ResponseCode::NXDomain
    );
}

#[test]
fn absent_name_is_nxdomain_with_soa() {
    let s = snapshot();
    let r = ask(&s, "nope.svc.example.test.", RecordType::A);
    assert_eq!((r.rcode, r.authoritative), (ResponseCode::NXDomain, true));
    assert_eq!(section(&r.authority).len(), 1);
}

#[test]
fn empty_non_terminal_is_nodata() {
    let s = snapshot();
    let r = ask(&s, "y.svc.example.test.", RecordType::A);
    assert_eq!(r.rcode, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert_eq!(section(&r.authority).len(), 1);
}

#[test]
fn names_outside_every_zone_are_refused() {
    let s = snapshot();
    let r = ask(&s, "example.com.", RecordType::A);
    assert_eq!((r.rcode, r.authoritative), (ResponseCode::Refused, false));
    assert_eq!(
        ask(&s, "example.test.", RecordType::SOA).rcode,
        ResponseCode::Refused
    );
}

#[test]
fn apex_ns_comes_with_in_zone_glue() {
    let s = snapshot();
    let r = ask(&s, "svc.example.test.", RecordType::NS);
    assert_eq!(r.answers.len(), 2);
    assert_eq!(
        section(&r.additional),
        ["ns1.svc.example.test. 3600 A 192.0.2.1"]
    );
}

#[test]
fn cname_is_followed_inside_the_zone_to_the_service() {
    let s = snapshot();
    let r = ask(&s, "alias.svc.example.test.", RecordType::A);
    assert_eq!(
        section(&r.answers),
        [
            "alias.svc.example.test. 3600 CNAME www.svc.example.test.",
            "www.svc.example.test. 5 A 127.0.0.11"
        ]
    );
    let direct = ask(&s, "alias.svc.example.test.", RecordType::CNAME);
    assert_eq!(direct.answers.len(), 1);
}

#[test]
fn cname_out_of_zone_and_loops_stop() {
    let s = snapshot();
    let out = ask(&s, "out.svc.example.test.", RecordType::A);
    assert_eq!((out.rcode, out.answers.len()), (ResponseCode::NoError, 1));
    let looped = ask(&s, "loop1.svc.example.test.", RecordType::A);
    assert_eq!(looped.answers.len(), 2);
    let dangling = ask(&s, "dangling.svc.example.test.", RecordType::A);
    assert_eq!(
        (dangling.rcode, dangling.answers.len()),
        (ResponseCode::NXDomain, 1)
    );
}

#[test]
fn wildcard_synthesises_the_query_name_but_not_over_existing_names() {
    let s = snapshot();
    let r = ask(&s, "any.wild.svc.example.test.", RecordType::A);
    assert_eq!(
        section(&r.answers),
        ["any.wild.svc.example.test. 3600 A 192.0.2.99"]
    );
    let nodata = ask(&s, "any.wild.svc.example.test.", RecordType::MX);
    assert!(nodata.answers.is_empty() && nodata.rcode == ResponseCode::NoError);
    let real = ask(&s, "here.wild.svc.example.test.", RecordType::A);
    assert!(
        real.answers.is_empty(),
        "an existing name is not covered by the wildcard"
    );
}

#[test]
fn names_at_and_below_a_delegation_get_a_referral() {
    let s = snapshot();
    for name in ["child.svc.example.test.", "host.child.svc.example.test."] {
        let r = ask(&s, name, RecordType::A);
        assert_eq!(
            (r.rcode, r.authoritative),
            (ResponseCode::NoError, false),
            "{name}"
        );
        assert!(r.answers.is_empty());
        assert_eq!(
            section(&r.authority),
            ["child.svc.example.test. 3600 NS ns.child.svc.example.test."]
        );
        assert_eq!(
            section(&r.additional),
            ["ns.child.svc.example.test. 3600 A 192.0.2.53"]
        );
    }
    let ds = ask(&s, "child.svc.example.test.", RecordType::DS);
    assert!(ds.authoritative, "DS at the cut is the parent's to answer");
}

#[test]
fn any_includes_service_records() {
    let s = snapshot();
    let r = ask(&s, "www.svc.example.test.", RecordType::ANY);
    assert_eq!(
        section(&r.answers),
        ["www.svc.example.test. 5 A 127.0.0.11"]
    );
}

#[test]
fn malformed_and_unsupported_requests_get_the_right_rcode() {
    let s = snapshot();
    let update = ask_with(
        &s,
        "www.svc.example.test.",
        RecordType::A,
        DNSClass::IN,
        OpCode::Update,
        None,
    );
    assert_eq!(update.rcode, ResponseCode::NotImp);
    let badvers = ask_with(
        &s,
        "www.svc.example.test.",
        RecordType::A,
        DNSClass::IN,
        OpCode::Query,
        Some(1),
    );
    assert_eq!(badvers.rcode, ResponseCode::BADVERS);
    let chaos = ask_with(
        &s,
        "www.svc.example.test.",
        RecordType::A,
        DNSClass::CH,
        OpCode::Query,
        None,
    );
    assert_eq!(chaos.rcode, ResponseCode::Refused);
    let none = answer(
        &s,
        &Query {
            op_code: OpCode::Query,
            questions: &[],
            edns_version: None,
        },
    );
    assert_eq!(none.rcode, ResponseCode::FormErr);
    assert_eq!(
        ask(&s, "svc.example.test.", RecordType::AXFR).rcode,
        ResponseCode::Refused
    );
}

/// One question and the whole response expected: rcode, AA, and each section as
/// `name ttl type data` lines.
struct Case {
    name: &'static str,
    qtype: RecordType,
    rcode: ResponseCode,
    authoritative: bool,
    answers: &'static [&'static str],
    authority: &'static [&'static str],
    additional: &'static [&'static str],
}

const SOA: &str = "svc.example.test. 60 SOA ns1.svc.example.test. hostmaster.svc.example.test. 1000 7200 900 1209600 60";

#[test]
fn each_kind_of_name_answers_as_the_table_says() {
    use RecordType::{A, AAAA, CNAME, MX, NS, TXT};
    use ResponseCode::{NXDomain, NoError, Refused};
    let ok = |name, qtype, answers, additional| Case {
        name,
        qtype,
        rcode: NoError,
        authoritative: true,
        answers,
        authority: &[],
        additional,
    };
    let negative = |name, qtype, rcode| Case {
        name,
        qtype,
        rcode,
        authoritative: true,
        answers: &[],
        authority: &[SOA],
        additional: &[],
    };
    let cases = [
        // The service: its current answer, with its own TTL; other types are NODATA.
        ok(
            "www.svc.example.test.",
            A,
            &["www.svc.example.test. 5 A 127.0.0.11"],
            &[],
        ),
        negative("www.svc.example.test.", AAAA, NoError),
        // Static data, as the zone file says.
        ok(
            "static.svc.example.test.",
            A,
            &["static.svc.example.test. 3600 A 192.0.2.80"],
            &[],
        ),
        ok(
            "x.y.svc.example.test.",
            TXT,
            &["x.y.svc.example.test. 3600 TXT deep"],
            &[],
        ),
        // An empty non-terminal exists (NODATA); a name below the service and an absent name
        // do not (NXDOMAIN); both with the SOA at the negative TTL.
        negative("y.svc.example.test.", A, NoError),
        negative("deeper.www.svc.example.test.", A, NXDomain),
        negative("absent.svc.example.test.", A, NXDomain),
        // The apex NS with in-zone glue, none for the out-of-zone server.
        ok(
            "svc.example.test.",
            NS,
            &[
                "svc.example.test. 3600 NS ns1.svc.example.test.",
                "svc.example.test. 3600 NS ns.elsewhere.test.",
            ],
            &["ns1.svc.example.test. 3600 A 192.0.2.1"],
        ),
        // A CNAME followed inside the zone, to the service's current answer.
        ok(
            "alias.svc.example.test.",
            A,
            &[
                "alias.svc.example.test. 3600 CNAME www.svc.example.test.",
                "www.svc.example.test. 5 A 127.0.0.11",
            ],
            &[],
        ),
        ok(
            "alias.svc.example.test.",
            CNAME,
            &["alias.svc.example.test. 3600 CNAME www.svc.example.test."],
            &[],
        ),
        // RRSIG and NSEC live beside a CNAME (RFC 4035 §2.5): asked for, not followed.
        negative("alias.svc.example.test.", RecordType::RRSIG, NoError),
        negative("alias.svc.example.test.", RecordType::NSEC, NoError),
        // MX targets in the zone get their addresses once, the service's current one included.
        ok(
            "mail.svc.example.test.",
            MX,
            &[
                "mail.svc.example.test. 3600 MX 10 www.svc.example.test.",
                "mail.svc.example.test. 3600 MX 20 www.svc.example.test.",
                "mail.svc.example.test. 3600 MX 30 mx.elsewhere.test.",
            ],
            &["www.svc.example.test. 5 A 127.0.0.11"],
        ),
        // A wildcard answers with the query name.
        ok(
            "any.wild.svc.example.test.",
            A,
            &["any.wild.svc.example.test. 3600 A 192.0.2.99"],
            &[],
        ),
        // Below a delegation: a referral, not authoritative, with glue.
        Case {
            name: "host.child.svc.example.test.",
            qtype: A,
            rcode: NoError,
            authoritative: false,
            answers: &[],
            authority: &["child.svc.example.test. 3600 NS ns.child.svc.example.test."],
            additional: &["ns.child.svc.example.test. 3600 A 192.0.2.53"],
        },
        // Outside every zone: refused, with nothing.
        Case {
            name: "www.elsewhere.test.",
            qtype: A,
            rcode: Refused,
            authoritative: false,
            answers: &[],
            authority: &[],
            additional: &[],
        },
    ];
    let s = snapshot();
    for case in cases {
        let what = format!("{} {}", case.name, case.qtype);
        let r = ask(&s, case.name, case.qtype);
        assert_eq!(
            (r.rcode, r.authoritative),
            (case.rcode, case.authoritative),
            "{what}"
        );
        assert_eq!(section(&r.answers), case.answers, "{what}: answers");
        assert_eq!(section(&r.authority), case.authority, "{what}: authority");
        assert_eq!(
            section(&r.additional),
            case.additional,
            "{what}: additional"
        );
    }
}

#[test]
fn names_below_a_dname_are_redirected_with_a_synthesised_cname() {
    let text = "@ 300 IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n\
        old 120 IN DNAME new\nhost.new 300 IN A 192.0.2.9\nout 120 IN DNAME elsewhere.test.\n\
        s 120 IN DNAME xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx.elsewhere.test.\n";
    let s = snapshot_of("svc.example.test.", text);
    // Inside the zone: DNAME, the CNAME it implies (with the DNAME's TTL), and the target.
    let r = ask(&s, "HOST.old.svc.example.test.", RecordType::A);
    assert_eq!(r.rcode, ResponseCode::NoError);
    let answers = section(&r.answers);
    assert!(
        answers[0].starts_with("old.svc.example.test. 120 DNAME "),
        "{answers:?}"
    );
    assert_eq!(
        answers[1..],
        [
            "host.old.svc.example.test. 120 CNAME host.new.svc.example.test.",
            "host.new.svc.example.test. 300 A 192.0.2.9",
        ]
    );
    // Asked for the CNAME, the synthesised one is the answer; out of the zone, the resolver
    // follows it; the DNAME's own name answers as any name.
    let r = ask(&s, "x.old.svc.example.test.", RecordType::CNAME);
    assert_eq!((r.rcode, r.answers.len()), (ResponseCode::NoError, 2));
    let r = ask(&s, "a.out.svc.example.test.", RecordType::A);
    assert_eq!(
        section(&r.answers)[1],
        "a.out.svc.example.test. 120 CNAME a.elsewhere.test."
    );
    let r = ask(&s, "old.svc.example.test.", RecordType::A);
    assert!(
        r.answers.is_empty() && r.rcode == ResponseCode::NoError,
        "NODATA at the owner"
    );
    // A name that would outgrow 255 octets: YXDOMAIN (RFC 6672 §2.2).
    let long = format!(
        "{}.s.svc.example.test.",
        [
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(42)
        ]
        .join(".")
    );
    let r = ask(&s, &long, RecordType::A);
    assert_eq!(r.rcode, ResponseCode::YXDomain, "{long}");
}

/// A snapshot of the zone `text` at `origin`, without services (for the layers above the
/// answer function too).
pub(crate) fn snapshot_of(origin: &str, text: &str) -> Snapshot {
    let origin = Name::from_ascii(origin).expect("origin");
    let zone = crate::zone::parse(text, &origin).expect("zone loads");
    Snapshot {
        zones: vec![ZoneSnapshot::new(
            Arc::new(zone),
            Arc::default(),
            1,
            HashMap::new(),
        )],
        server: Arc::default(),
        keys: std::sync::Arc::default(),
    }
}

#[test]
fn a_wildcard_that_owns_ns_is_a_delegation() {
    let s = snapshot_of(
        "example.",
        "$TTL 900\n@ SOA ns0 h 1 2 3 4 5\n@ NS ns0.example.net.\n* NS ns0.example.net.\n",
    );
    for (name, qtype) in [
        ("foo.example.", RecordType::A),
        ("foo.example.", RecordType::NS),
        ("a.b.example.", RecordType::A),
        ("*.example.", RecordType::NS),
    ] {
        let r = ask(&s, name, qtype);
        assert!(!r.authoritative && r.answers.is_empty(), "{name} {qtype}");
        assert_eq!(
            section(&r.authority),
            ["*.example. 900 NS ns0.example.net."],
            "{name} {qtype}"
        );
    }
    let ds = ask(&s, "foo.example.", RecordType::DS);
    assert!(ds.authoritative && ds.answers.is_empty());
    assert_eq!(ds.authority[0].record_type(), RecordType::SOA);
}

#[test]
fn targets_a_wildcard_covers_get_its_addresses_under_their_own_names() {
    let s = snapshot_of(
        "example.nl.",
        "$TTL 3600\n@ SOA ns h 1 2 3 4 5\n@ NS ns0.name.example.nl.\n@ MX 10 mx.name\n\
         sub NS ns1.name.example.nl.\n*.name A 10.11.13.14\n*.name AAAA 2001:db8::1\n\
         real.name TXT \"exists\"\n@ MX 20 real.name\n",
    );
    let mx = ask(&s, "example.nl.", RecordType::MX);
    assert_eq!(
        section(&mx.additional),
        [
            "mx.name.example.nl. 3600 A 10.11.13.14",
            "mx.name.example.nl. 3600 AAAA 2001:db8::1",
        ],
        "an existing name without addresses gets none"
    );
    let referral = ask(&s, "www.sub.example.nl.", RecordType::A);
    assert_eq!(
        section(&referral.additional),
        [
            "ns1.name.example.nl. 3600 A 10.11.13.14",
            "ns1.name.example.nl. 3600 AAAA 2001:db8::1",
        ]
    );
}

#[test]
fn a_wildcard_name_below_a_delegation_is_referred_even_for_ds() {
    let s = snapshot_of(
        "example.",
        "$TTL 900\n@ SOA ns0 h 1 2 3 4 5\n@ NS ns0.example.net.\na NS ns.example.net.\n",
    );
    for name in ["*.a.example.", "x.a.example."] {
        let r = ask(&s, name, RecordType::DS);
        assert!(!r.authoritative, "{name}");
        assert_eq!(section(&r.authority), ["a.example. 900 NS ns.example.net."]);
    }
}
