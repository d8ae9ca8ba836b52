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
fn out_of_zone_name_names_its_line() {
    let err = parse(
        &format!("{GOOD}www.other.test. IN A 192.0.2.9\n"),
        &origin(),
    )
    .expect_err("must fail");
    assert_eq!(err.line, Some(8), "{err}");
    assert!(err.message.contains("outside the zone"), "{err}");
}

fn fails_to_parse(text: &str) -> bool {
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
        for (cut, _) in entry_ends(CONTEXT).into_iter().skip(1) {
            let head = &CONTEXT[..cut];
            let text = format!("{head}{bad}tail IN A 192.0.2.9\n");
            let expected = head.lines().count() + 1;
            let entries = entry_ends(&text);
            assert_eq!(
                first_line_where(&text, fails_to_parse),
                Some(expected),
                "{bad:?} after line {}",
                expected - 1
            );
            assert_eq!(
                bisect_line_where(&text, &entries, fails_to_parse),
                Some(expected),
                "{bad:?} after line {}",
                expected - 1
            );
            let found = first_failing_alone(&text, &entries, fails_to_parse).expect("fails alone");
            assert_eq!(entries[found].1, expected, "{bad:?}");
        }
    }
}

#[test]
fn an_entry_that_fails_only_in_context_is_found_by_bisecting() {
    // Alone, each entry of a CNAME clash is fine; only the two together are wrong.
    let text = format!("{CONTEXT}x IN A 192.0.2.3\nx IN CNAME ns1\n");
    let clash = |prefix: &str| {
        Parser::new(prefix, None, Some(origin()))
            .parse()
            .is_ok_and(|(_, r)| {
                r.keys()
                    .filter(|k| k.name.to_string().starts_with("x."))
                    .count()
                    > 1
            })
    };
    assert_eq!(first_failing_alone(&text, &entry_ends(&text), clash), None);
    assert_eq!(
        first_line_where(&text, clash),
        Some(CONTEXT.lines().count() + 2)
    );
    // $INCLUDE brings context that entries alone cannot carry.
    let text = format!("$INCLUDE other.zone\n{CONTEXT}bad IN A nowhere\n");
    assert_eq!(
        first_failing_alone(&text, &entry_ends(&text), fails_to_parse),
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
