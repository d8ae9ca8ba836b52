use super::*;

const ZONE: &str = "$TTL 300\n@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\nmail IN A 192.0.2.5\n";

fn write_config(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("z.zone"), ZONE).expect("zone");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, config).expect("config");
    (dir, path)
}

fn config_with_service(service: &str) -> String {
    format!(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"z.zone\"\n\n[[service]]\n{service}"
    )
}

const SERVICE: &str = "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.11\", \"2001:db8::12\"]\n[service.check]\nkind = \"tcp\"\nport = 80\n";

fn error_for(config: &str) -> LoadError {
    let (_dir, path) = write_config(config);
    load(&path).expect_err("config must be rejected")
}

#[test]
fn loads_a_good_config_with_defaults() {
    let (_dir, path) = write_config(&config_with_service(SERVICE));
    let plan = load(&path).expect("loads");
    let service = &plan.services[0];
    assert_eq!(service.ttl, 5);
    assert!(service.failback);
    assert_eq!(service.check.interval, Duration::from_secs(1));
    assert_eq!(service.check.timeout, Duration::from_millis(500));
    assert_eq!((service.check.rise, service.check.fall), (2, 2));
    let key = LowerName::new(&service.name);
    assert!(
        plan.zones[0].exists(&key),
        "service name must exist in its zone"
    );
}

#[test]
fn identity_longer_than_a_txt_string_names_its_line() {
    let long = "x".repeat(256);
    let err = error_for(&format!(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\nidentity = \"{long}\"\n"
    ));
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("255 bytes"), "{err}");
}

#[test]
fn an_api_off_loopback_needs_a_token() {
    let err = error_for("[server]\nlisten = [\"127.0.0.1:5300\"]\nhttp = \"0.0.0.0:8053\"\n");
    assert_eq!(err.line, Some(3));
    assert!(err.message.contains("set http_token"), "{err}");
    let (_dir, path) = write_config(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\nhttp = \"0.0.0.0:8053\"\nhttp_token = \"t\"\n",
    );
    let plan = load(&path).expect("a token makes it acceptable");
    assert_eq!(plan.server.http_token.as_deref(), Some("t"));
    assert!(plan.server.state_file.ends_with("failover-dns.state.json"));
}

#[test]
fn token_file_is_read_trimmed_and_exclusive_with_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("token"), "from-file\n").expect("token");
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "[server]\nlisten = [\"127.0.0.1:5300\"]\nhttp = \"127.0.0.1:8053\"\nhttp_token_file = \"token\"\n").expect("config");
    assert_eq!(
        load(&path).expect("loads").server.http_token.as_deref(),
        Some("from-file")
    );
    std::fs::write(&path, "[server]\nlisten = [\"127.0.0.1:5300\"]\nhttp_token = \"a\"\nhttp_token_file = \"token\"\n").expect("config");
    let err = load(&path).expect_err("both");
    assert_eq!(err.line, Some(4));
}

#[test]
fn a_defaulted_timeout_above_the_interval_is_blamed_on_the_interval_line() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("port = 80", "port = 80\ninterval = \"200ms\""),
    ));
    assert_eq!(err.line, Some(14), "{err}");
    assert!(
        err.message
            .contains("timeout defaults to 500ms, which is above interval 200ms"),
        "{err}"
    );
}

#[test]
fn a_bad_webhook_timeout_names_its_own_line() {
    let err = error_for(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[notify.webhook]]\nurl = \"http://x\"\ntimeout = \"0s\"\n",
    );
    assert_eq!(err.line, Some(6), "{err}");
    assert!(
        err.message.contains("webhook timeout 0s is out of range"),
        "{err}"
    );
}

#[test]
fn webhook_url_must_be_http() {
    let err = error_for(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[notify.webhook]]\nurl = \"ftp://x\"\n",
    );
    assert_eq!(err.line, Some(5));
    assert!(err.message.contains("invalid webhook url"), "{err}");
}

#[test]
fn toml_syntax_error_names_the_line() {
    let err = error_for("[server]\nlisten = [\"127.0.0.1:5300\"\n");
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.to_string().contains("c.toml:2:"), "{err}");
}

#[test]
fn unknown_key_names_its_line() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("port = 80", "port = 80\nintreval = \"1s\""),
    ));
    assert_eq!(err.line, Some(14), "{err}");
    assert!(err.message.contains("intreval"), "{err}");
}

#[test]
fn bad_member_names_its_line() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("2001:db8::12", "host.example"),
    ));
    assert_eq!(err.line, Some(10), "{err}");
    assert!(err.message.contains("not an IP address"), "{err}");
}

#[test]
fn service_outside_every_zone_is_rejected() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("www.svc.example.test.", "www.elsewhere.test."),
    ));
    assert_eq!(err.line, Some(9), "{err}");
    assert!(
        err.message.contains("not inside any configured zone"),
        "{err}"
    );
}

#[test]
fn service_clashing_with_static_records_is_rejected() {
    let err = error_for(&config_with_service(&SERVICE.replace("www.", "mail.")));
    assert!(
        err.message.contains("clashes with the static A records"),
        "{err}"
    );
}

#[test]
fn timeout_longer_than_interval_is_rejected() {
    let err = error_for(&config_with_service(&SERVICE.replace(
        "port = 80",
        "port = 80\ninterval = \"1s\"\ntimeout = \"2s\"",
    )));
    assert_eq!(err.line, Some(15), "{err}");
}

#[test]
fn http_keys_on_tcp_check_are_rejected() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("port = 80", "port = 80\npath = \"/health\""),
    ));
    assert!(err.message.contains("only to kind = \"http\""), "{err}");
}

#[test]
fn http_check_parses_status_range() {
    let (_dir, path) = write_config(&config_with_service(&SERVICE.replace(
        "kind = \"tcp\"",
        "kind = \"http\"\npath = \"/health\"\nexpect_status = \"200-204\"",
    )));
    let plan = load(&path).expect("loads");
    match &plan.services[0].check.kind {
        CheckKind::Http(http) => assert_eq!(http.expect_status, 200..=204),
        other => panic!("expected http check, got {other:?}"),
    }
}

#[test]
fn nonsense_intervals_and_timeouts_name_their_line() {
    for (setting, expected) in [
        (
            "interval = \"1ns\"",
            "check interval 1ns is out of range 10ms..=1day",
        ),
        (
            "interval = \"1000000000years\"",
            "is out of range 10ms..=1day",
        ),
        (
            "timeout = \"0s\"",
            "check timeout 0s is out of range 1ms..=1day",
        ),
    ] {
        let err = error_for(&config_with_service(
            &SERVICE.replace("port = 80", &format!("port = 80\n{setting}")),
        ));
        assert_eq!(err.line, Some(14), "{setting}: {err}");
        assert!(err.message.contains(expected), "{setting}: {err}");
    }
}

#[test]
fn server_limits_out_of_range_name_their_line() {
    for (setting, expected) in [
        (
            "tcp_io_timeout = \"0s\"",
            "tcp_io_timeout 0s is out of range",
        ),
        (
            "tcp_idle_timeout = \"2days\"",
            "tcp_idle_timeout 2days is out of range",
        ),
        ("http_timeout = \"0s\"", "http_timeout 0s is out of range"),
        (
            "tcp_max_clients = 0",
            "tcp_max_clients 0 is out of range 1..=1000000",
        ),
        ("http_max_clients = 0", "http_max_clients 0 is out of range"),
        (
            "rate_limit_slip = 11",
            "rate_limit_slip 11 is out of range 0..=10",
        ),
        ("http_hosts = [\"evil example\"]", "is not a host name"),
    ] {
        let err = error_for(&format!(
            "[server]\nlisten = [\"127.0.0.1:5300\"]\n{setting}\n"
        ));
        assert_eq!(err.line, Some(3), "{setting}: {err}");
        assert!(err.message.contains(expected), "{setting}: {err}");
    }
    let (_dir, path) = write_config("[server]\nlisten = [\"127.0.0.1:5300\"]\n");
    let server = load(&path).expect("defaults").server;
    assert_eq!(
        (
            server.tcp_max_clients,
            server.http_max_clients,
            server.rate_limit,
            server.rate_limit_slip
        ),
        (1000, 64, 200, 2)
    );
    assert_eq!(server.tcp_io_timeout, Duration::from_secs(2));
    assert_eq!(server.http_timeout, Duration::from_secs(10));
}

#[test]
fn a_zone_file_that_is_a_device_is_refused_at_its_config_line() {
    let err = error_for(
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"/dev/zero\"\n",
    );
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.message.contains("is not a regular file"), "{err}");
}

#[test]
fn many_services_validate_with_each_name_checked_once() {
    // Twice the same name among many is still found (by the set that replaced the scan).
    let mut services = SERVICE.to_string();
    for i in 0..2000 {
        let name = format!("s{i}.");
        services.push_str(&format!("[[service]]\n{}", SERVICE.replace("www.", &name)));
    }
    services.push_str(&format!(
        "[[service]]\n{}",
        SERVICE.replace("www.", "s1234.")
    ));
    let err = error_for(&config_with_service(&services));
    assert!(
        err.message
            .contains("s1234.svc.example.test. is configured twice"),
        "{err}"
    );
}

#[test]
fn bad_duration_names_its_line() {
    let err = error_for(&config_with_service(
        &SERVICE.replace("port = 80", "port = 80\ninterval = \"soon\""),
    ));
    assert_eq!(err.line, Some(14), "{err}");
    assert!(err.message.contains("invalid duration"), "{err}");
}

#[test]
fn a_classless_reverse_origin_and_a_zone_file_with_non_utf8_octets_load() {
    // RFC 2317 delegates part of a /24 with a '/' in a label, and zone files from older tools
    // carry Latin-1 comments and raw octets in strings: BIND, Knot and NSD take both.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rev.zone"),
        b"$TTL 300\n@ SOA ns.example. h.example. 1 2 3 4 5 ; caf\xe9\n@ NS ns.example.\n\
          1 PTR host1.example. ; \xff\xfe\nt TXT \"raw\xe9octet\"\n",
    )
    .expect("zone");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[zone]]\norigin = \"0/25.2.0.10.in-addr.arpa.\"\nfile = \"rev.zone\"\n",
    )
    .expect("config");
    let plan = load(&path).expect("loads");
    let zone = &plan.zones[0];
    assert_eq!(zone.origin.iter().next(), Some(&b"0/25"[..]));
    let txt = Name::from_labels([&b"t"[..], b"0/25", b"2", b"0", b"10", b"in-addr", b"arpa"])
        .expect("name");
    let node = zone.nodes.get(&LowerName::new(&txt)).expect("t exists");
    let record = node
        .rrset(hickory_proto::rr::RecordType::TXT)
        .and_then(|set| set.records_without_rrsigs().next())
        .expect("TXT");
    let hickory_proto::rr::RData::TXT(txt) = &record.data else {
        panic!("not TXT");
    };
    assert_eq!(&*txt.txt_data[0], b"raw\xe9octet");
}

#[test]
fn keys_and_transfer_settings_are_checked_with_the_line_to_blame() {
    let zone = |extra: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:5300\"]\n\n[[key]]\nname = \"xfr.example.test.\"\nsecret = \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=\"\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"z.zone\"\n{extra}"
        )
    };
    let (_dir, path) = write_config(&zone(
        "allow_transfer = [\"192.0.2.53\", \"2001:db8::/64\"]\ntransfer_key = \"XFR.example.test\"\nnotify = [\"192.0.2.53\", \"[2001:db8::53]:5353\"]\n",
    ));
    let plan = load(&path).expect("loads");
    let transfer = &plan.transfers[0];
    assert_eq!(transfer.allow.len(), 2);
    assert!(transfer.allows("192.0.2.53".parse().expect("ip")));
    assert!(!transfer.allows("192.0.2.54".parse().expect("ip")));
    assert_eq!(transfer.notify[0].port(), 53);
    assert_eq!(transfer.notify[1].port(), 5353);
    assert!(transfer.key.is_some());

    for (extra, line, says) in [
        ("transfer_key = \"other.\"\n", 11, "is not defined"),
        (
            "allow_transfer = [\"192.0.2.0/33\"]\n",
            11,
            "not an address or prefix",
        ),
        ("notify = [\"ns1.example.net\"]\n", 11, "not an address"),
    ] {
        let err = error_for(&zone(extra));
        assert_eq!(err.line, Some(line), "{err}");
        assert!(err.message.contains(says), "{err}");
    }
    let bad_secret = zone("").replace(
        "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ=",
        "not base64!",
    );
    let err = error_for(&bad_secret);
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.message.contains("not base64"), "{err}");
    let bad_algorithm = zone("").replace("[[key]]\n", "[[key]]\nalgorithm = \"hmac-md5\"\n");
    let err = error_for(&bad_algorithm);
    assert_eq!(err.line, Some(5), "{err}");
    assert!(err.message.contains("unknown TSIG algorithm"), "{err}");
    let twice = zone("").replace(
        "\n[[zone]]",
        "\n[[key]]\nname = \"xfr.example.test.\"\nsecret = \"AAAA\"\n\n[[zone]]",
    );
    let err = error_for(&twice);
    assert!(err.message.contains("defined twice"), "{err}");
}

#[test]
fn policy_keys_that_do_not_fit_together_name_their_line() {
    let check = "[service.check]\nkind = \"tcp\"\nport = 80\n";
    let cases = [
        (
            "name = \"www.svc.example.test.\"\npolicy = \"all\"\ntiers = [[\"192.0.2.1\"], [\"192.0.2.2\"]]\n",
            11,
            "tiers apply only to policy = \"failover\"",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\nfallback = [\"192.0.2.9\"]\n",
            11,
            "fallback applies only with when_all_down = \"fallback\"",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\nwhen_all_down = \"fallback\"\n",
            11,
            "needs fallback",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\nwhen_all_down = \"sorry\"\n",
            11,
            "is not \"answer-all\"",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\nfailback = false\nfailback_delay = \"30s\"\n",
            12,
            "only with failback = true",
        ),
        (
            "name = \"www.svc.example.test.\"\npolicy = \"weighted\"\nmax_answers = 2\nmembers = [\"192.0.2.1\"]\n",
            11,
            "does not apply to policy = \"weighted\"",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [{ address = \"192.0.2.1\", wieght = 3 }]\n",
            10,
            "wieght",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [{ address = \"192.0.2.1\", check_address = \"db\" }]\n",
            10,
            "check_address \"db\" is not an IP address",
        ),
        (
            "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\ntiers = [[\"192.0.2.2\"]]\n",
            10,
            "both members and tiers",
        ),
        (
            "name = \"www.svc.example.test.\"\ntiers = [[\"192.0.2.1\"], []]\n",
            10,
            "tier 2 of service www.svc.example.test. is empty",
        ),
    ];
    for (service, line, message) in cases {
        let err = error_for(&config_with_service(&format!("{service}{check}")));
        assert!(err.message.contains(message), "{service}: {err}");
        assert_eq!(err.line, Some(line), "{service}: {err}");
    }
}

#[test]
fn member_tables_and_tiers_load_with_their_defaults() {
    let service = "name = \"www.svc.example.test.\"\npolicy = \"failover\"\nfailback_delay = \"30s\"\n\
                   tiers = [[\"192.0.2.1\", { address = \"192.0.2.2\", weight = 3, check_address = \"10.0.0.2\", port = 8081 }], [\"198.51.100.1\"]]\n\
                   [service.check]\nkind = \"tcp\"\nport = 80\n";
    let (_dir, path) = write_config(&config_with_service(service));
    let plan = load(&path).expect("loads");
    let service = &plan.services[0];
    assert_eq!(service.failback_delay, Duration::from_secs(30));
    assert_eq!(service.when_all_down, WhenAllDown::AnswerAll);
    assert_eq!(service.max_answers, 8);
    let members: Vec<(String, u32, u32, String)> = service
        .members
        .iter()
        .map(|m| {
            (
                m.address.to_string(),
                m.tier,
                m.weight,
                m.check_target.to_string(),
            )
        })
        .collect();
    assert_eq!(
        members,
        [
            ("192.0.2.1".into(), 0, 1, "192.0.2.1:80".into()),
            ("192.0.2.2".into(), 0, 3, "10.0.0.2:8081".into()),
            ("198.51.100.1".into(), 1, 1, "198.51.100.1:80".into()),
        ]
    );
}

#[test]
fn check_keys_of_another_kind_and_incomplete_checks_name_their_line() {
    let service = "name = \"www.svc.example.test.\"\nmembers = [\"192.0.2.1\"]\n[service.check]\n";
    let cases = [
        (
            "kind = \"tcp\"\nport = 80\nexpect_body = \"ok\"\n",
            14,
            "`expect_body` applies only to kind = \"http\"",
        ),
        (
            "kind = \"http\"\nport = 80\nsend = \"PING\"\n",
            14,
            "`send` applies only to kind = \"tcp\"",
        ),
        (
            "kind = \"tcp\"\nport = 80\nsend = \"PING\"\n",
            14,
            "send needs expect",
        ),
        ("kind = \"script\"\n", 11, "needs command"),
        ("kind = \"script\"\ncommand = []\n", 13, "command is empty"),
        (
            "kind = \"script\"\ncommand = [\"/bin/check\", \"{port}\"]\n",
            13,
            "uses {port} but the check has no port",
        ),
        (
            "kind = \"script\"\ncommand = [\"/bin/check\"]\nhold = true\n",
            11,
            "hold = true applies to tcp and http",
        ),
        ("kind = \"dns\"\n", 11, "needs query"),
        (
            "kind = \"dns\"\nquery = \"health.example.\"\ntype = \"BOGUS\"\n",
            14,
            "is not a DNS record type",
        ),
        (
            "kind = \"dns\"\nquery = \"health.example.\"\nexpect_rcode = \"OK\"\n",
            14,
            "is not one of NOERROR",
        ),
        ("kind = \"tcp\"\n", 11, "needs a port"),
    ];
    for (check, line, message) in cases {
        let err = error_for(&config_with_service(&format!("{service}{check}")));
        assert!(err.message.contains(message), "{check}: {err}");
        assert_eq!(err.line, Some(line), "{check}: {err}");
    }
}
