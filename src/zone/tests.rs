//! Zone loading and reading, one test per construct a zone file written for BIND, Knot or NSD
//! may hold (longer than most files for that reason).

use super::blame::*;
use super::*;
use hickory_proto::serialize::txt::Parser;
use std::io::Write;

fn zone_file(body: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("test.zone");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(body.as_bytes()).expect("write");
    (dir, path)
}

fn origin() -> Name {
    Name::from_ascii("svc.example.test.").expect("name")
}

const GOOD: &str = "$TTL 300\n@ IN SOA ns1 hostmaster (\n  7 7200 900\n  1209600 60 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\na.b IN TXT \"hi\"\n";

#[test]
fn loads_a_good_zone_with_empty_non_terminals() {
    let zone = parse(GOOD, &origin()).expect("loads");
    assert_eq!(zone.file_serial(), 7);
    let ent = LowerName::new(&Name::from_ascii("b.svc.example.test.").expect("name"));
    assert!(zone.exists(&ent));
    assert!(!zone.nodes.contains_key(&ent));
    let www = LowerName::new(&Name::from_ascii("www.svc.example.test.").expect("name"));
    assert!(!zone.exists(&www));
    for name in [
        "ns1.svc.example.test.",
        "a.b.svc.example.test.",
        "svc.example.test.",
    ] {
        let name = LowerName::new(&Name::from_ascii(name).expect("name"));
        assert!(zone.exists(&name), "{name}");
        assert!(
            !zone.recordless.contains(&name),
            "{name} is an owner, not recordless"
        );
    }
    for node in zone.nodes.values() {
        assert_eq!(node.rrsets.capacity(), node.rrsets.len());
    }
}

#[test]
fn every_ancestor_of_an_owner_or_a_service_name_exists() {
    let body = format!("{GOOD}x.c.d IN A 192.0.2.3\nd IN TXT \"d\"\ne.f.g.c.d IN A 192.0.2.4\n");
    let mut zone = parse(&body, &origin()).expect("loads");
    zone.add_name(&LowerName::new(
        &Name::from_ascii("www.p.q.svc.example.test.").expect("name"),
    ));
    let name = |s: &str| LowerName::new(&Name::from_ascii(s).expect("name"));
    for existing in [
        "c.d",
        "f.g.c.d",
        "g.c.d",
        "b",
        "www.p.q",
        "p.q",
        "q",
        "d",
        "x.c.d",
        "e.f.g.c.d",
    ] {
        assert!(
            zone.exists(&name(&format!("{existing}.svc.example.test."))),
            "{existing}"
        );
    }
    for missing in ["c", "g.d", "x.d", "www.q", "nx.b"] {
        assert!(
            !zone.exists(&name(&format!("{missing}.svc.example.test."))),
            "{missing}"
        );
    }
    let mut recordless: Vec<String> = zone.recordless.iter().map(|n| n.to_string()).collect();
    recordless.sort();
    let mut expected: Vec<String> = ["b", "c.d", "f.g.c.d", "g.c.d", "p.q", "q", "www.p.q"]
        .iter()
        .map(|n| format!("{n}.svc.example.test."))
        .collect();
    expected.sort();
    assert_eq!(
        recordless, expected,
        "owners are not repeated among recordless names"
    );
}

#[test]
fn syntax_error_names_the_line() {
    let err = parse(
        &format!("{GOOD}bad IN A not-an-address\nok IN A 192.0.2.2\n"),
        &origin(),
    )
    .expect_err("must fail");
    assert_eq!(err.line, Some(8), "{err}");
    assert!(err.to_string().contains("<text>:8:"), "{err}");
}

#[test]
fn error_inside_parentheses_names_the_entry_start() {
    let body = "$TTL 300\n@ IN SOA ns1 hostmaster (\n  7 7200 900\n  1209600 60 )\n@ IN NS ns1\nx IN MX (\n 10 )\n";
    let err = parse(body, &origin()).expect_err("must fail");
    assert_eq!(err.line, Some(6), "{err}");
}

#[test]
fn records_outside_the_zone_are_left_out_and_the_rest_loads() {
    let zone = parse(
        &format!("{GOOD}www.other.test. IN A 192.0.2.9\nafter IN A 192.0.2.10\n"),
        &origin(),
    )
    .expect("loads, as in Knot and BIND");
    assert!(
        zone.nodes
            .keys()
            .all(|name| name.to_string().ends_with("svc.example.test."))
    );
    assert!(zone.exists(&LowerName::new(
        &Name::from_ascii("after.svc.example.test.").expect("name")
    )));
}

#[test]
fn the_same_soa_twice_is_one_and_another_soa_is_an_error() {
    let soa = "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n";
    let text = format!("$TTL 300\n{soa}@ IN NS ns1\nns1 IN A 192.0.2.1\n{soa}");
    parse(&text, &origin()).expect("a repeated SOA, as a transfer dump ends, loads");
    let other = format!("{text}@ IN SOA ns1 hostmaster 2 7200 900 1209600 60\n");
    let err = parse(&other, &origin()).expect_err("two SOAs");
    assert_eq!(err.line, Some(6), "{err}");
}

#[test]
fn a_txt_string_longer_than_255_octets_is_split_as_knot_splits_it() {
    let long = "x".repeat(300);
    let zone = parse(&format!("{GOOD}t IN TXT \"{long}\" \"end\"\n"), &origin()).expect("loads");
    let wire = wire_of(&zone, "t.svc.example.test.", RecordType::TXT);
    assert_eq!((wire[0], wire[256], wire[302]), (255, 45, 3));
    assert_eq!(wire.len(), 1 + 255 + 1 + 45 + 1 + 3);
}

fn fails_to_parse(text: &[u8]) -> bool {
    let text = std::str::from_utf8(text).expect("test zones are UTF-8");
    Parser::new(text, None, Some(origin())).parse().is_err()
}

/// A zone with the context an entry can depend on: directives, a blank owner, a record in
/// parentheses, comments.
const CONTEXT: &str = "$TTL 300\n@ IN SOA ns1 hostmaster ( 7 7200 900\n  1209600 60 )\n@ IN NS ns1\nns1 IN A 192.0.2.1\n; a comment\n\n$ORIGIN sub.svc.example.test.\nhost IN A 192.0.2.2\n  IN AAAA 2001:db8::2\n$TTL 60\nmail IN MX ( 10\n  host )\n";

#[test]
fn an_entry_that_fails_alone_is_found_without_bisecting() {
    let bad_entries = [
        "bad IN A not-an-address\n",
        "  IN AAAA not-an-address\n",
        "x IN MX (\n 10 )\n",
        "$TTL forever\n",
        "y IN NOSUCHTYPE 1\n",
    ];
    for bad in bad_entries {
        for (cut, _) in entry_ends(CONTEXT.as_bytes()).into_iter().skip(1) {
            let head = &CONTEXT[..cut];
            let text = format!("{head}{bad}tail IN A 192.0.2.9\n");
            let text = text.as_bytes();
            let expected = head.lines().count() + 1;
            let entries = entry_ends(text);
            assert_eq!(
                first_line_where(text, fails_to_parse),
                Some(expected),
                "{bad:?} after line {}",
                expected - 1
            );
            assert_eq!(
                bisect_line_where(text, &entries, fails_to_parse),
                Some(expected),
                "{bad:?} after line {}",
                expected - 1
            );
            let found = first_failing_alone(text, &entries, fails_to_parse).expect("fails alone");
            assert_eq!(entries[found].1, expected, "{bad:?}");
        }
    }
}

#[test]
fn an_entry_that_fails_only_in_context_is_found_by_bisecting() {
    // Alone, each entry of a CNAME clash is fine; only the two together are wrong.
    let text = format!("{CONTEXT}x IN A 192.0.2.3\nx IN CNAME ns1\n");
    let text = text.as_bytes();
    let clash = |prefix: &[u8]| {
        let prefix = std::str::from_utf8(prefix).expect("UTF-8");
        Parser::new(prefix, None, Some(origin()))
            .parse()
            .is_ok_and(|(_, r)| {
                r.keys()
                    .filter(|k| k.name.to_string().starts_with("x."))
                    .count()
                    > 1
            })
    };
    assert_eq!(first_failing_alone(text, &entry_ends(text), clash), None);
    assert_eq!(
        first_line_where(text, clash),
        Some(CONTEXT.lines().count() + 2)
    );
    // $INCLUDE brings context that entries alone cannot carry.
    let text = format!("$INCLUDE other.zone\n{CONTEXT}bad IN A nowhere\n");
    let text = text.as_bytes();
    assert_eq!(
        first_failing_alone(text, &entry_ends(text), fails_to_parse),
        None
    );
}

#[test]
fn an_include_of_a_device_is_refused_at_its_line() {
    let err = parse(&format!("{GOOD}$INCLUDE /dev/zero\n"), &origin()).expect_err("refused");
    assert_eq!(err.line, Some(8), "{err}");
    assert!(err.message.contains("not a regular file"), "{err}");
}

#[test]
fn an_include_of_a_fifo_is_refused_without_opening_it() {
    let (dir, path) = zone_file(&format!("{GOOD}$INCLUDE pipe.zone\n"));
    nix::unistd::mkfifo(&dir.path().join("pipe.zone"), nix::sys::stat::Mode::S_IRWXU)
        .expect("mkfifo");
    // Opening a FIFO with no writer would block: run it where a hang fails the test.
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(load(&path, &origin()).map(|_| ()));
    });
    let err = result
        .recv_timeout(std::time::Duration::from_secs(10))
        .expect("load returned")
        .expect_err("refused");
    assert!(err.message.contains("not a regular file"), "{err}");
    drop(dir);
}

#[test]
fn a_zone_larger_than_the_limit_is_refused_with_its_size() {
    let (dir, path) = zone_file(GOOD);
    let huge = dir.path().join("huge.zone");
    // Sparse: no disk is written.
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(MAX_ZONE_BYTES + 1))
        .expect("sparse file");
    let err = load(&huge, &origin()).expect_err("refused");
    assert!(err.message.contains("too large"), "{err}");
    std::fs::write(&path, format!("{GOOD}$INCLUDE huge.zone\n")).expect("write");
    let err = load(&path, &origin()).expect_err("refused");
    assert!(
        err.message.contains("too large") && err.line == Some(8),
        "{err}"
    );
}

#[test]
fn an_rrset_too_large_for_any_message_names_its_line() {
    let mut zone = GOOD.to_string();
    zone.push_str("small IN TXT \"ok\"\n");
    for i in 0..300 {
        zone.push_str(&format!("big IN TXT \"{i:03}{}\"\n", "x".repeat(250)));
    }
    let err = parse(&zone, &origin()).expect_err("refused");
    // The record that takes the set past the limit: about 65,535 / 260 records in.
    assert!(
        err.line.is_some_and(|line| (240..260).contains(&line)),
        "{err}"
    );
    assert!(
        err.message.contains("big.svc.example.test. TXT RRset"),
        "{err}"
    );
}

#[test]
fn cname_with_other_data_is_rejected() {
    let err = parse(
        &format!("{GOOD}x IN A 192.0.2.3\nx IN CNAME ns1\n"),
        &origin(),
    )
    .expect_err("must fail");
    assert_eq!(err.line, Some(9), "{err}");
}

#[test]
fn missing_soa_is_rejected() {
    let err = parse("@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n", &origin()).expect_err("must fail");
    assert!(err.message.contains("no SOA"), "{err}");
}

/// The records of `name` and `rtype` in `zone`, as presentation text.
fn rdata_of(zone: &StaticZone, name: &str, rtype: RecordType) -> Vec<String> {
    let key = LowerName::new(&Name::from_ascii(name).expect("name"));
    zone.nodes
        .get(&key)
        .and_then(|node| node.rrset(rtype))
        .map(|set| {
            set.records_without_rrsigs()
                .map(|r| r.data.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Wire-format RDATA of the single `rtype` record at `name`.
fn wire_of(zone: &StaticZone, name: &str, rtype: RecordType) -> Vec<u8> {
    use hickory_proto::serialize::binary::BinEncodable;
    let key = LowerName::new(&Name::from_ascii(name).expect("name"));
    let set = zone.nodes[&key].rrset(rtype).expect("rrset");
    let record = set.records_without_rrsigs().next().expect("record");
    record.data.to_bytes().expect("encodes")
}

const APEX: &str =
    "@ 300 IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ 300 IN NS ns1\nns1 300 IN A 192.0.2.1\n";

#[test]
fn at_in_record_data_is_the_origin() {
    let zone = parse(
        &format!("{APEX}mx 300 IN MX 10 @\nalias 300 IN CNAME @\n"),
        &origin(),
    )
    .expect("loads");
    assert_eq!(
        rdata_of(&zone, "mx.svc.example.test.", RecordType::MX),
        ["10 svc.example.test."]
    );
    assert_eq!(
        rdata_of(&zone, "alias.svc.example.test.", RecordType::CNAME),
        ["svc.example.test."]
    );
}

#[test]
fn quoted_strings_inside_parentheses_stay_strings() {
    let text = format!(
        "{APEX}sel._domainkey 300 IN TXT ( \"v=DKIM1; k=rsa; \"\n    \"p=MIGf\" ) ; a comment\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let wire = wire_of(&zone, "sel._domainkey.svc.example.test.", RecordType::TXT);
    assert_eq!(wire, b"\x10v=DKIM1; k=rsa; \x06p=MIGf");
}

#[test]
fn labels_are_any_octets_and_escapes_are_decimal() {
    let text = format!(
        "{APEX}a_b#c!d'e 300 IN A 192.0.2.7\nx\\065y 300 IN TXT \"foo\\010bar\" \"sp\\ ace\"\nmx 300 IN MX 10 foo\\ bar\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let odd = Name::from_labels([&b"a_b#c!d'e"[..], b"svc", b"example", b"test"]).expect("name");
    let node = &zone.nodes[&LowerName::new(&odd)];
    assert!(node.rrset(RecordType::A).is_some(), "a label of any octets");
    // \065 is decimal: 'A'.
    let txt = wire_of(&zone, "xay.svc.example.test.", RecordType::TXT);
    assert_eq!(txt, b"\x07foo\x0abar\x06sp ace");
    let mx = wire_of(&zone, "mx.svc.example.test.", RecordType::MX);
    assert_eq!(
        &mx[2..10],
        b"\x07foo bar",
        "the escaped space stays in the label"
    );
}

#[test]
fn records_without_any_ttl_take_3600_then_the_last_stated() {
    let text = "@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nx 120 IN A 192.0.2.2\ny IN A 192.0.2.3\n$TTL 30\nz IN A 192.0.2.4\n";
    let zone = parse(text, &origin()).expect("loads");
    let ttl = |name: &str, rtype| {
        let key = LowerName::new(&Name::from_ascii(name).expect("name"));
        zone.nodes[&key].rrset(rtype).expect("rrset").ttl()
    };
    assert_eq!(
        ttl("svc.example.test.", RecordType::SOA),
        3600,
        "as Knot and NSD"
    );
    assert_eq!(ttl("ns1.svc.example.test.", RecordType::A), 3600);
    assert_eq!(
        ttl("y.svc.example.test.", RecordType::A),
        120,
        "the last stated"
    );
    assert_eq!(ttl("z.svc.example.test.", RecordType::A), 30, "$TTL");
}

#[test]
fn ttl_units_relative_origin_and_generic_syntax_load() {
    let text = format!(
        "$ttl 1h30m\n{}$ORIGIN sub\nhost A 192.0.2.9\nopaque TYPE65534 \\# 3 abcdef\nknown A \\# 4 C0000201\n",
        APEX.replace(" 300 ", " ")
    );
    let zone = parse(&text, &origin()).expect("loads");
    let key = LowerName::new(&Name::from_ascii("host.sub.svc.example.test.").expect("name"));
    let set = zone.nodes[&key]
        .rrset(RecordType::A)
        .expect("relative $ORIGIN appended");
    assert_eq!(set.ttl(), 5400);
    assert_eq!(
        wire_of(
            &zone,
            "opaque.sub.svc.example.test.",
            RecordType::from(65534)
        ),
        [0xab, 0xcd, 0xef]
    );
    assert_eq!(
        rdata_of(&zone, "known.sub.svc.example.test.", RecordType::A),
        ["192.0.2.1"]
    );
}

#[test]
fn presigned_dnssec_data_and_less_common_types_load() {
    let text = format!(
        "{APEX}\
@ 300 IN DNSKEY 257 3 ECDSAP256SHA256 ( mdsswUyr3DPW132mOi8V9xESWE8jTo0d\n xbjjmw2kOCUbdxY6ZTNaS3QB0o5Hf6oWDB2Uq9e/qS2t4RUXXGpWSw== )\n\
@ 300 IN RRSIG SOA 13 3 300 20261231000000 20261201000000 12345 @ ( AAAA AAAA )\n\
@ 300 IN NSEC ns1 SOA NS RRSIG NSEC DNSKEY\n\
@ 300 IN NSEC3PARAM 1 0 0 -\n\
@ 300 IN CAA 0 issue \"letsencrypt.org\"\n\
d 300 IN DNAME elsewhere.test.\n\
s 300 IN SPF \"v=spf1 -all\"\n\
u 300 IN URI 10 1 \"https://example.test/\"\n\
t 300 IN TLSA 3 1 1 ( 0123456789abcdef\n 0123456789abcdef )\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let apex = "svc.example.test.";
    for rtype in [
        RecordType::DNSKEY,
        RecordType::NSEC,
        RecordType::NSEC3PARAM,
        RecordType::CAA,
    ] {
        assert!(!wire_of(&zone, apex, rtype).is_empty(), "{rtype}");
    }
    let caa = wire_of(&zone, apex, RecordType::CAA);
    assert_eq!(caa, b"\x00\x05issueletsencrypt.org");
    let nsec = wire_of(&zone, apex, RecordType::NSEC);
    // ns1.svc.example.test. then window 0: SOA(6) NS(2) RRSIG(46) NSEC(47) DNSKEY(48).
    assert_eq!(
        &nsec[nsec.len() - 9..],
        [0, 7, 0x22, 0, 0, 0, 0, 0x03, 0x80]
    );
    assert_eq!(
        wire_of(&zone, "d.svc.example.test.", RecordType::from(39)),
        b"\x09elsewhere\x04test\x00"
    );
    assert_eq!(
        wire_of(&zone, "u.svc.example.test.", RecordType::from(256)),
        b"\x00\x0a\x00\x01https://example.test/"
    );
    assert_eq!(
        wire_of(&zone, "t.svc.example.test.", RecordType::TLSA).len(),
        3 + 16
    );
}

#[test]
fn bad_record_data_names_its_line() {
    for (body, line, what) in [
        ("x 300 IN A 300.1.2.3\n", 4, "bad IPv4 address"),
        ("x 300 IN MX ten mail\n", 4, "bad number"),
        ("x 300 IN TXT \"unclosed\n", 4, "unclosed quote"),
        ("x 300 IN A ( 192.0.2.1\n", 4, "unclosed parenthesis"),
        ("x 300 IN A 192.0.2.1 extra\n", 4, "more fields"),
        ("x 300 IN BOGUS 1\n", 4, "unknown record type"),
        ("x 300 IN TYPE65534 \\# 2 ab\n", 4, "says 2 octets"),
        ("$INCLUDE\n", 4, "$INCLUDE takes a file"),
    ] {
        let err = parse(&format!("{APEX}{body}"), &origin()).expect_err(body);
        assert_eq!(err.line, Some(line), "{body}: {err}");
        assert!(err.message.contains(what), "{body}: {err}");
    }
}

#[test]
fn a_second_soa_is_refused_at_its_line() {
    let err = parse(
        &format!("{APEX}@ 300 IN SOA ns1 hostmaster 2 7200 900 1209600 60\n"),
        &origin(),
    )
    .expect_err("two SOAs");
    assert_eq!(err.line, Some(4), "{err}");
}

#[test]
fn a_signed_cname_keeps_its_rrsig_and_nsec_beside_it() {
    let text = format!(
        "{APEX}alias 300 IN CNAME ns1\nalias 300 IN RRSIG CNAME 13 4 300 20261231000000 20261201000000 1 @ AAAA\nalias 300 IN NSEC ns1 CNAME RRSIG NSEC\n"
    );
    parse(&text, &origin()).expect("RRSIG and NSEC may stand beside a CNAME");
    let err = parse(
        &format!("{APEX}alias 300 IN CNAME ns1\nalias 300 IN TXT \"x\"\n"),
        &origin(),
    )
    .expect_err("TXT may not");
    assert!(err.message.contains("CNAME and other records"), "{err}");
}

#[test]
fn cert_mnemonics_and_nsec3param_with_unassigned_flags_load() {
    let text = format!("{APEX}c 300 IN CERT PGP 0 RSASHA256 AQID\n@ 300 IN NSEC3PARAM 1 20 14 -\n");
    let zone = parse(&text, &origin()).expect("loads");
    assert_eq!(
        wire_of(&zone, "c.svc.example.test.", RecordType::from(37)),
        [0, 3, 0, 0, 8, 1, 2, 3]
    );
    assert_eq!(
        wire_of(&zone, "svc.example.test.", RecordType::NSEC3PARAM),
        [1, 20, 0, 14, 0],
        "served as written"
    );
}

#[test]
fn loc_is_written_as_rfc_1876_says() {
    // RFC 1876's own example: the CAIDA office, and the defaults for the rest.
    let text = format!(
        "{APEX}a 300 IN LOC 42 21 54 N 71 06 18 W -24m 30m\nb 300 IN LOC 52 22 23.000 N 4 53 32.000 E -2.00m 0.00m 10000m 10m\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let a = wire_of(&zone, "a.svc.example.test.", RecordType::from(29));
    // Version 0; size 30 m = 3e3 cm; default precisions 10 km = 1e6 cm, 10 m = 1e3 cm.
    assert_eq!(&a[..4], [0, 0x33, 0x16, 0x13]);
    let latitude = (1u32 << 31) + (42 * 3600 + 21 * 60 + 54) * 1000;
    let longitude = (1u32 << 31) - (71 * 3600 + 6 * 60 + 18) * 1000;
    assert_eq!(&a[4..8], latitude.to_be_bytes());
    assert_eq!(&a[8..12], longitude.to_be_bytes());
    assert_eq!(&a[12..16], (10_000_000u32 - 2400).to_be_bytes());
    let b = wire_of(&zone, "b.svc.example.test.", RecordType::from(29));
    assert_eq!(&b[..4], [0, 0x00, 0x16, 0x13], "a size of 0 m");
    let err = parse(&format!("{APEX}c 300 IN LOC 91 0 0 N 0 E 0m\n"), &origin()).expect_err("91 N");
    assert!(err.message.contains("bad LOC data"), "{err}");
}

#[test]
fn svcb_parameters_in_any_order_are_written_sorted_with_every_key() {
    let text = format!(
        "{APEX}_dns 300 IN SVCB 1 dns port=853 alpn=\"h2,dot\" dohpath=/q{{?dns}} ohttp mandatory=port,alpn\nh 300 IN HTTPS 1 . alpn=\"h3,h\\\\,2\" ipv4hint=192.0.2.1,192.0.2.2 key65000=x\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let svcb = wire_of(&zone, "_dns.svc.example.test.", RecordType::SVCB);
    let mut expected = vec![0, 1];
    expected.extend(b"\x03dns\x03svc\x07example\x04test\x00");
    expected.extend([0, 0, 0, 4, 0, 1, 0, 3]); // mandatory: alpn, port (sorted)
    expected.extend([0, 1, 0, 7, 2, b'h', b'2', 3, b'd', b'o', b't']); // alpn
    expected.extend([0, 3, 0, 2, 3, 85]); // port 853
    expected.extend([0, 7, 0, 8]);
    expected.extend(b"/q{?dns}"); // dohpath
    expected.extend([0, 8, 0, 0]); // ohttp
    assert_eq!(svcb, expected);
    let https = wire_of(&zone, "h.svc.example.test.", RecordType::HTTPS);
    let mut expected = vec![0, 1, 0];
    expected.extend([0, 1, 0, 7, 2, b'h', b'3', 3, b'h', b',', b'2']); // an escaped comma
    expected.extend([0, 4, 0, 8, 192, 0, 2, 1, 192, 0, 2, 2]);
    expected.extend([0xfd, 0xe8, 0, 1, b'x']);
    assert_eq!(https, expected);
    for bad in [
        "1 . port=1 port=2",
        "1 . bogus=1",
        "1 . ohttp=1",
        "1 . port=x",
    ] {
        let err = parse(&format!("{APEX}x 300 IN SVCB {bad}\n"), &origin()).expect_err(bad);
        assert!(err.message.contains("bad SVCB data"), "{bad}: {err}");
    }
}

#[test]
fn ipseckey_takes_each_kind_of_gateway() {
    // RFC 4025 §3.3's examples.
    let text = format!(
        "{APEX}a 300 IN IPSECKEY 10 1 2 192.0.2.38 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n\
b 300 IN IPSECKEY 10 0 2 . AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n\
c 300 IN IPSECKEY 10 3 2 mygateway.example.com. AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n\
d 300 IN IPSECKEY 10 2 2 2001:0DB8:0:8002::2000:1 AQNRU3mG7TVTO2BkR47usntb102uFJtugbo6BSGvgqt4AQ==\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let ipseckey = RecordType::from(45);
    assert_eq!(
        &wire_of(&zone, "a.svc.example.test.", ipseckey)[..7],
        [10, 1, 2, 192, 0, 2, 38]
    );
    assert_eq!(
        &wire_of(&zone, "b.svc.example.test.", ipseckey)[..4],
        [10, 0, 2, 0x01]
    );
    assert_eq!(
        &wire_of(&zone, "c.svc.example.test.", ipseckey)[..13],
        b"\x0a\x03\x02\x09mygateway"
    );
    assert_eq!(
        wire_of(&zone, "d.svc.example.test.", ipseckey).len(),
        3 + 16 + 34
    );
    let err = parse(
        &format!("{APEX}x 300 IN IPSECKEY 10 1 2 not-an-address AQID\n"),
        &origin(),
    )
    .expect_err("bad gateway");
    assert!(err.message.contains("IPv4"), "{err}");
}

#[test]
fn wks_apl_and_the_rarer_types_are_written_as_their_rfcs_say() {
    let text = format!(
        "{APEX}w 300 IN WKS 10.0.0.1 tcp 0 tcpmux 2 ftp telnet smtp 26\n\
         w2 300 IN WKS 10.0.0.2 17 ( 53 )\n\
         a 300 IN APL 1:192.168.32.0/21 !1:192.168.38.0/28 2:ff00::/8\n\
         empty 300 IN APL\n\
         g 300 IN GPOS \"-22.6882\" \"116.8652\" \"250.0\"\n\
         n 300 IN NSAP 0x47.0005.80.005a00\n\
         nid 300 IN NID 10 0014:4fff:ff20:ee64\n\
         l32 300 IN L32 10 10.1.2.0\n"
    );
    let zone = parse(&text, &origin()).expect("loads");
    let name = |n: &str| format!("{n}.svc.example.test.");
    // Ports 0, 1, 2, 21, 23, 25, 26: bits counted from the high bit of the first octet.
    assert_eq!(
        wire_of(&zone, &name("w"), RecordType::from(11)),
        [10, 0, 0, 1, 6, 0b1110_0000, 0, 0b0000_0101, 0b0110_0000]
    );
    let udp = wire_of(&zone, &name("w2"), RecordType::from(11));
    assert_eq!(
        (&udp[..5], udp.len(), udp[11]),
        (&[10, 0, 0, 2, 17][..], 12, 0b0000_0100)
    );
    assert_eq!(
        wire_of(&zone, &name("a"), RecordType::from(42)),
        [
            0, 1, 21, 3, 192, 168, 32, 0, 1, 28, 0x83, 192, 168, 38, 0, 2, 8, 1, 0xff
        ]
    );
    assert!(wire_of(&zone, &name("empty"), RecordType::from(42)).is_empty());
    assert_eq!(
        wire_of(&zone, &name("g"), RecordType::from(27))[..9],
        *b"\x08-22.6882"
    );
    assert_eq!(
        wire_of(&zone, &name("n"), RecordType::from(22)),
        [0x47, 0x00, 0x05, 0x80, 0x00, 0x5a, 0x00]
    );
    assert_eq!(
        wire_of(&zone, &name("nid"), RecordType::from(104)),
        [0, 10, 0x00, 0x14, 0x4f, 0xff, 0xff, 0x20, 0xee, 0x64]
    );
    assert_eq!(
        wire_of(&zone, &name("l32"), RecordType::from(105)),
        [0, 10, 10, 1, 2, 0]
    );
    let err = parse(
        &format!("{APEX}w 300 IN WKS 10.0.0.1 tcp gopherish\n"),
        &origin(),
    )
    .expect_err("unknown service");
    assert!(err.message.contains("unknown service gopherish"), "{err}");
}
