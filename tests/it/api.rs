//! Operating the server: the HTTP API (status, metrics, overrides, reload), SIGHUP, failover
//! webhooks and the status/drain commands, against the real binary and real backends.
//!
//! Longer than most files: every endpoint and command an operator uses, end to end; they
//! share one setup (a served pair with the API on) that no other module needs.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::*;
use hickory_proto::rr::RecordType;
use nix::sys::signal::Signal;

const WWW: &str = "www.svc.example.test.";
const TOKEN: &str = "s3cret-token";

/// A server with the API on, and a healthy primary and standby on real HTTP backends.
struct Setup {
    server: Server,
    api: Api,
    primary: HttpBackend,
    _standby: HttpBackend,
    p: IpAddr,
    s: IpAddr,
    /// The service's `[[service]]` block, for configs written later.
    service: String,
    /// The `[server]` lines (API and state file), for configs written later.
    server_lines: String,
}

fn start(token: Option<&str>, server_extra: &str, extra: &str) -> Setup {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let standby = HttpBackend::start(SocketAddr::new(s, port));
    let (api_lines, base) = api_config(token);
    let service = service_toml(WWW, &[p, s], "http", port, "");
    let server_lines = format!("{api_lines}{server_extra}");
    let config = format!(
        "[server]\n{server_lines}\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{service}{extra}"
    );
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    server.wait_for_members_up(2);
    Setup {
        server,
        api: Api::new(&base),
        primary,
        _standby: standby,
        p,
        s,
        service,
        server_lines,
    }
}

impl Setup {
    /// The primary's passed checks, from `/metrics`.
    fn primary_checks_ok(&self) -> u64 {
        let series = format!(
            r#"failover_dns_checks_total{{service="{WWW}",member="{}",result="ok"}} "#,
            self.p
        );
        let (_, metrics) = self.api.get("/metrics");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&series))
            .and_then(|n| n.parse().ok())
            .unwrap_or_default()
    }

    /// Rewrites the config with `zone_file` and `services` (the `[server]` table kept).
    fn write_config(&self, zone_file: &str, services: &str) {
        let listen = format!("listen = [\"{}\"]\n", self.server.dns);
        let config = format!(
            "[server]\n{listen}{}\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"{zone_file}\"\n\n{services}",
            self.server_lines
        );
        fs::write(self.server.config_path(), config).expect("write config");
    }
}

#[test]
fn healthz_and_status_show_answers_and_member_health() {
    let setup = start(None, "", "");
    assert_eq!(setup.api.get("/healthz"), (200, "ok\n".to_string()));
    let status = setup.api.status();
    let service = &status["services"][0];
    assert_eq!(service["name"], WWW);
    assert_eq!(service["policy"], "failover");
    assert_eq!(service["ttl"], 5);
    assert_eq!(
        service["answering"],
        serde_json::json!([setup.p.to_string()])
    );
    assert_eq!(service["failing_open"], false);
    for member in [setup.p, setup.s] {
        let m = setup.api.member(member);
        assert_eq!(m["state"], "up", "{m}");
        assert_eq!(m["admin"], serde_json::Value::Null);
        assert!(m["since"].as_str().is_some_and(|t| t.ends_with('Z')), "{m}");
        assert!(m["consecutive_successes"].as_u64() >= Some(1), "{m}");
        assert_eq!(m["consecutive_failures"], 0);
        assert_eq!(m["last_check"]["result"], "ok");
        assert!(
            m["last_check"]["latency_ms"]
                .as_f64()
                .is_some_and(|ms| ms > 0.0)
        );
    }

    setup.primary.kill();
    setup
        .server
        .wait_for_answer(WWW, &[setup.s], Duration::from_secs(10));
    let m = setup.api.member(setup.p);
    assert_eq!(m["state"], "down");
    assert_eq!(m["last_check"]["result"], "fail");
    assert_eq!(m["last_check"]["error"], "connection refused");
    assert!(m["consecutive_failures"].as_u64() >= Some(2), "{m}");
    assert_eq!(
        setup.api.status()["services"][0]["answering"],
        serde_json::json!([setup.s.to_string()])
    );
}

#[test]
fn metrics_count_queries_checks_states_and_failovers() {
    let setup = start(None, "", "");
    for transport in [Transport::Udp, Transport::Tcp] {
        for _ in 0..3 {
            query(setup.server.dns, WWW, RecordType::A, transport);
        }
    }
    query(
        setup.server.dns,
        "nope.svc.example.test.",
        RecordType::A,
        Transport::Udp,
    );
    setup.primary.kill();
    setup
        .server
        .wait_for_answer(WWW, &[setup.s], Duration::from_secs(10));
    let (code, text) = setup.api.get("/metrics");
    assert_eq!(code, 200);
    let value = |series: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert!(
        value(r#"failover_dns_queries_total{rcode="NOERROR",qtype="A",transport="udp"}"#) >= 3.0
    );
    assert!(
        value(r#"failover_dns_queries_total{rcode="NOERROR",qtype="A",transport="tcp"}"#) >= 3.0
    );
    assert!(
        value(r#"failover_dns_queries_total{rcode="NXDOMAIN",qtype="A",transport="udp"}"#) >= 1.0
    );
    assert!(value("failover_dns_response_seconds_count") >= 7.0);
    let p = setup.p;
    let s = setup.s;
    assert!(
        value(&format!(
            r#"failover_dns_checks_total{{service="{WWW}",member="{p}",result="fail"}}"#
        )) >= 2.0
    );
    assert!(
        value(&format!(
            r#"failover_dns_checks_total{{service="{WWW}",member="{s}",result="ok"}}"#
        )) >= 1.0
    );
    assert!(value("failover_dns_check_seconds_count") >= 1.0);
    assert_eq!(
        value(&format!(
            r#"failover_dns_member_state{{service="{WWW}",member="{p}",state="down"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(&format!(
            r#"failover_dns_member_state{{service="{WWW}",member="{p}",state="up"}}"#
        )),
        0.0
    );
    assert_eq!(
        value(&format!(
            r#"failover_dns_failovers_total{{service="{WWW}"}}"#
        )),
        1.0
    );
    assert_eq!(
        value(r#"failover_dns_zone_serial{zone="svc.example.test."}"#),
        f64::from(setup.server.serial())
    );
}

#[test]
fn drain_needs_the_token_moves_the_answer_and_survives_restart() {
    let state_dir = tempfile::tempdir().expect("tempdir");
    let state_file = state_dir.path().join("state.json");
    let extra = format!("state_file = \"{}\"\n", state_file.display());
    let setup = start(Some(TOKEN), &extra, "");
    let drain = format!("/services/{WWW}/members/{}/drain", setup.p);

    assert_eq!(setup.api.post(&drain, None).0, 401, "no token");
    assert_eq!(setup.api.post(&drain, Some("wrong")).0, 401, "wrong token");
    assert_eq!(setup.server.addresses(WWW), [setup.p], "nothing changed");
    let (code, body) = setup.api.post(
        &format!("/services/nope.example./members/{}/drain", setup.p),
        Some(TOKEN),
    );
    assert_eq!(code, 404, "{body}");
    let (code, body) = setup.api.post(
        &format!("/services/{WWW}/members/192.0.2.99/drain"),
        Some(TOKEN),
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("has no member 192.0.2.99"), "{body}");

    let (code, body) = setup.api.post(&drain, Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        setup.server.addresses(WWW),
        [setup.s],
        "the very next query"
    );
    assert_eq!(setup.api.member(setup.p)["admin"], "drain");
    assert_eq!(setup.api.member(setup.p)["state"], "up", "checks still run");
    assert!(
        setup
            .server
            .events()
            .iter()
            .any(|e| e.field("member") == setup.p.to_string() && e.field("admin") == "drain"),
        "no event of the drain:\n{}",
        setup.server.log()
    );
    assert!(
        fs::read_to_string(&state_file)
            .expect("state file")
            .contains("\"drain\"")
    );

    // A restart with the same state file keeps the drain.
    let server_lines = setup.server_lines.clone();
    let service = setup.service.clone();
    let (p, s) = (setup.p, setup.s);
    let Setup {
        server,
        primary,
        _standby,
        ..
    } = setup;
    assert!(server.terminate().success());
    let config = format!(
        "[server]\n{server_lines}\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{service}"
    );
    let server = Server::start_with_files(&[("svc.zone", ZONE)], &config, "svc.example.test.");
    assert_eq!(
        server.addresses(WWW),
        [s],
        "drained from the first answer on"
    );

    let base = server_lines
        .lines()
        .find_map(|l| l.strip_prefix("http = \""))
        .map(|a| format!("http://{}", a.trim_end_matches('"')))
        .expect("api address");
    let api = Api::new(&base);
    let (code, body) = api.post(&format!("/services/{WWW}/members/{p}/auto"), Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    server.wait_for_answer(WWW, &[p], Duration::from_secs(10));
    assert_eq!(api.member(p)["admin"], serde_json::Value::Null);
    drop(primary);
}

#[test]
fn force_up_answers_a_failing_member() {
    let setup = start(Some(TOKEN), "", "");
    setup.primary.kill();
    setup
        .server
        .wait_for_answer(WWW, &[setup.s], Duration::from_secs(10));
    let (code, body) = setup.api.post(
        &format!("/services/{WWW}/members/{}/force-up", setup.p),
        Some(TOKEN),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(setup.server.addresses(WWW), [setup.p]);
    assert_eq!(setup.api.member(setup.p)["admin"], "force-up");
    assert_eq!(setup.api.member(setup.p)["state"], "down");
}

#[test]
fn reload_applies_a_good_config_keeps_health_and_rejects_a_bad_one() {
    let setup = start(Some(TOKEN), "", "");
    let ups = setup
        .server
        .transitions()
        .iter()
        .filter(|t| t.to == "up")
        .count();
    let since = setup.api.member(setup.p)["since"].clone();

    // A new static record and a new TTL, over POST /reload.
    fs::write(
        setup.server.path("svc.zone"),
        format!("{ZONE}added IN A 192.0.2.77\n"),
    )
    .expect("zone");
    setup.write_config("svc.zone", &setup.service.replace("ttl = 5", "ttl = 7"));
    let serial = setup.server.serial();
    assert_eq!(
        setup.api.post("/reload", None).0,
        401,
        "reload needs the token"
    );
    let (code, body) = setup.api.post("/reload", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (
            summary["members_kept"].as_u64(),
            summary["members_started"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let added = query(
        setup.server.dns,
        "added.svc.example.test.",
        RecordType::A,
        Transport::Udp,
    );
    assert_eq!(
        addresses(&added),
        ["192.0.2.77".parse::<IpAddr>().expect("ip")]
    );
    let www = query(setup.server.dns, WWW, RecordType::A, Transport::Udp);
    assert_eq!(www.answers[0].ttl, 7);
    assert!(
        setup.server.serial() > serial,
        "an edited zone gets a new serial"
    );
    assert_eq!(setup.api.member(setup.p)["since"], since, "health kept");
    assert_eq!(
        setup
            .server
            .transitions()
            .iter()
            .filter(|t| t.to == "up")
            .count(),
        ups,
        "no re-flap"
    );

    // A broken zone file: rejected with file:line, everything keeps serving.
    fs::write(
        setup.server.path("bad.zone"),
        format!("{ZONE}broken IN A not-an-address\n"),
    )
    .expect("zone");
    setup.write_config("bad.zone", &setup.service);
    let (code, body) = setup.api.post("/reload", Some(TOKEN));
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("bad.zone:"), "names the file: {body}");
    setup.server.assert_logged("reload rejected");
    let www = query(setup.server.dns, WWW, RecordType::A, Transport::Udp);
    assert_eq!(www.answers[0].ttl, 7, "the previous config keeps serving");

    // SIGHUP with a config that adds a member and drops the standby. The primary's check
    // count first reaches 3, so a count reset by the reload could not pass for one carried on.
    wait_until(
        "three checks of the primary",
        Duration::from_secs(10),
        || setup.primary_checks_ok() >= 3,
    );
    let checks_before = setup.primary_checks_ok();
    let extra = loopback_ip();
    let changed = setup
        .service
        .replace(&format!("\"{}\"]", setup.s), &format!("\"{extra}\"]"));
    setup.write_config("svc.zone", &changed);
    setup.server.signal(Signal::SIGHUP);
    wait_until("the SIGHUP reload", Duration::from_secs(10), || {
        setup.api.status()["services"][0]["members"][1]["address"] == extra.to_string()
    });
    assert_eq!(
        setup.api.member(setup.p)["since"],
        since,
        "primary kept its health"
    );
    let (_, metrics) = setup.api.get("/metrics");
    assert!(
        metrics.contains(r#"failover_dns_config_reloads_total{result="ok"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"failover_dns_config_reloads_total{result="error"} 1"#),
        "{metrics}"
    );
    // Member series follow the config: the dropped standby's are gone, the new member's
    // are there, and the kept primary's counts carry on.
    let dropped = format!("member=\"{}\"", setup.s);
    assert!(!metrics.contains(&dropped), "{metrics}");
    let added =
        format!(r#"failover_dns_member_state{{service="{WWW}",member="{extra}",state="unknown"}}"#);
    assert!(metrics.contains(&added), "{metrics}");
    assert!(
        setup.primary_checks_ok() >= checks_before,
        "the primary's count carried on: {metrics}"
    );
}

#[test]
fn a_member_moved_by_a_reload_keeps_being_checked() {
    // A service added ahead of the running one moves its members to new places in the plan;
    // their probes carry on, and their results must still reach them: a primary killed
    // after the reload fails over.
    let setup = start(Some(TOKEN), "", "");
    let ahead = service_toml("first.svc.example.test.", &[loopback_ip()], "tcp", 9, "");
    setup.write_config("svc.zone", &format!("{ahead}{}", setup.service));
    let (code, body) = setup.api.post("/reload", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    let summary: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(summary["members_kept"], 2, "{body}");
    assert_eq!(
        setup.api.status()["services"][1]["name"],
        WWW,
        "the running service moved"
    );
    setup.primary.kill();
    setup
        .server
        .wait_for_answer(WWW, &[setup.s], Duration::from_secs(10));
    let primary = &setup.api.status()["services"][1]["members"][0];
    assert_eq!(primary["address"], setup.p.to_string());
    assert_eq!(primary["state"], "down", "{primary}");
}

#[test]
fn no_query_fails_or_is_wrong_across_fifty_reloads() {
    let setup = start(Some(TOKEN), "", "");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let answered = Arc::new(AtomicUsize::new(0));
    let loops: Vec<_> = [Transport::Udp, Transport::Tcp]
        .into_iter()
        .map(|transport| {
            let (stop, failures, answered) = (
                Arc::clone(&stop),
                Arc::clone(&failures),
                Arc::clone(&answered),
            );
            let (dns, p) = (setup.server.dns, setup.p);
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    for (name, expected) in [
                        (WWW, p),
                        (
                            "static.svc.example.test.",
                            "192.0.2.80".parse().expect("ip"),
                        ),
                    ] {
                        match try_query(dns, name, RecordType::A, transport) {
                            Some(r) if addresses(&r) == [expected] => {
                                answered.fetch_add(1, Ordering::SeqCst);
                            }
                            other => {
                                eprintln!("{name} over {transport:?}: {other:?}");
                                failures.fetch_add(1, Ordering::SeqCst);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for i in 0..50 {
        // Alternate two zone files that differ only in a TXT record, so every reload
        // really swaps the zone.
        fs::write(
            setup.server.path("svc.zone"),
            format!("{ZONE}reload IN TXT \"{i}\"\n"),
        )
        .expect("zone");
        setup.write_config("svc.zone", &setup.service);
        if i % 2 == 0 {
            let (code, body) = setup.api.post("/reload", Some(TOKEN));
            assert_eq!(code, 200, "{body}");
        } else {
            setup.server.signal(Signal::SIGHUP);
        }
        wait_until("the reload to apply", Duration::from_secs(10), || {
            try_query(
                setup.server.dns,
                "reload.svc.example.test.",
                RecordType::TXT,
                Transport::Udp,
            )
            .is_some_and(|r| {
                r.answers
                    .first()
                    .is_some_and(|a| a.data.to_string() == i.to_string())
            })
        });
    }
    stop.store(true, Ordering::SeqCst);
    for handle in loops {
        handle.join().expect("query loop");
    }
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "failed or wrong answers"
    );
    assert!(answered.load(Ordering::SeqCst) > 100, "the loops ran");
    assert_eq!(
        setup
            .server
            .events()
            .iter()
            .filter(|e| e.message().starts_with("config reloaded"))
            .count(),
        50
    );
}

#[test]
fn failover_events_are_posted_to_webhooks_with_retries() {
    let receiver = WebhookReceiver::start(&[503]);
    let hook = format!(
        "\n[[notify.webhook]]\nurl = \"{}\"\ntimeout = \"2s\"\nretries = 2\n",
        receiver.url
    );
    let setup = start(None, "", &hook);
    setup.primary.kill();
    setup
        .server
        .wait_for_answer(WWW, &[setup.s], Duration::from_secs(10));
    wait_until(
        "the webhook delivery after a 503",
        Duration::from_secs(10),
        || receiver.bodies().len() >= 2,
    );
    let event: serde_json::Value = serde_json::from_str(&receiver.bodies()[1]).expect("json");
    assert_eq!(event["event"], "answer_changed");
    assert_eq!(event["service"], WWW);
    assert_eq!(event["family"], "A");
    assert_eq!(event["from"], serde_json::json!([setup.p.to_string()]));
    assert_eq!(event["to"], serde_json::json!([setup.s.to_string()]));
    assert_eq!(event["failing_open"], false);
    assert!(
        event["reason"]
            .as_str()
            .is_some_and(|r| r.contains("connection refused")),
        "{event}"
    );
    assert_eq!(
        event["serial"].as_u64(),
        Some(u64::from(setup.server.serial()))
    );
    assert_eq!(
        receiver.bodies()[0],
        receiver.bodies()[1],
        "the retry resends the event"
    );
    assert!(
        setup
            .server
            .events()
            .iter()
            .any(|e| e.field("event") == "answer_changed"),
        "no answer_changed event:\n{}",
        setup.server.log()
    );
}

#[test]
fn status_and_drain_commands_work_against_the_running_server() {
    let setup = start(Some(TOKEN), "", "");
    let root = repo_root();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--api", &setup.api.base]);
        run_binary(&all, &root)
    };
    let (code, out) = run(&["status"]);
    assert!(code.success(), "{out}");
    assert!(out.contains("SERVICE") && out.contains(WWW), "{out}");
    let primary_line = out
        .lines()
        .find(|l| l.contains(&setup.p.to_string()) && l.contains(WWW))
        .expect("primary row");
    assert!(
        primary_line.contains(" up ") && primary_line.contains("ok "),
        "{out}"
    );

    let (code, out) = run(&["drain", WWW, &setup.p.to_string()]);
    assert!(!code.success(), "no token: {out}");
    assert!(out.contains("401"), "{out}");
    let (code, out) = run(&["drain", WWW, &setup.p.to_string(), "--token", TOKEN]);
    assert!(code.success(), "{out}");
    assert_eq!(setup.server.addresses(WWW), [setup.s]);
    let (_, out) = run(&["status"]);
    assert!(
        out.lines()
            .any(|l| l.contains(&setup.p.to_string()) && l.contains("drain")),
        "{out}"
    );
    let (code, out) = run(&["undrain", WWW, &setup.p.to_string(), "--token", TOKEN]);
    assert!(code.success(), "{out}");
    setup
        .server
        .wait_for_answer(WWW, &[setup.p], Duration::from_secs(10));
}

#[test]
fn sigterm_answers_queries_already_sent_then_exits_zero() {
    let setup = start(None, "", "");
    let query = request(WWW, RecordType::A).to_vec().expect("encode");
    let mut framed = Vec::new();
    for _ in 0..3 {
        framed.extend_from_slice(&(query.len() as u16).to_be_bytes());
        framed.extend_from_slice(&query);
    }
    let connect = || {
        let stream = std::net::TcpStream::connect(setup.server.dns).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        stream
    };
    let read_responses = |stream: &mut std::net::TcpStream, count: usize, what: &str| {
        for n in 0..count {
            let mut len = [0u8; 2];
            std::io::Read::read_exact(stream, &mut len)
                .unwrap_or_else(|e| panic!("response {n} on the {what} connection: {e}"));
            let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
            std::io::Read::read_exact(stream, &mut body).expect("response body");
        }
    };
    // One connection the server has accepted and answered on already.
    let mut accepted = connect();
    std::io::Write::write_all(&mut accepted, &framed[..2 + query.len()]).expect("send");
    read_responses(&mut accepted, 1, "accepted");
    // With the server stopped, the kernel still completes a new connection and takes queries
    // on both; the SIGTERM is then pending when the server wakes, beside all of that.
    // More datagrams than one receive batch.
    let udp = std::net::UdpSocket::bind((setup.server.dns.ip(), 0)).expect("bind");
    udp.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    setup.server.signal(Signal::SIGSTOP);
    let mut waiting = connect();
    std::io::Write::write_all(&mut waiting, &framed).expect("send three queries");
    std::io::Write::write_all(&mut accepted, &framed).expect("send three more");
    let mut ids = std::collections::BTreeSet::new();
    for id in 0..64u16 {
        let mut message = request(WWW, RecordType::A);
        message.metadata.id = id;
        let bytes = message.to_vec().expect("encode");
        udp.send_to(&bytes, setup.server.dns)
            .expect("send datagram");
        ids.insert(id);
    }
    setup.server.signal(Signal::SIGTERM);
    setup.server.signal(Signal::SIGCONT);
    read_responses(&mut accepted, 3, "accepted");
    read_responses(&mut waiting, 3, "waiting");
    let mut buffer = [0u8; 1232];
    while !ids.is_empty() {
        let (length, _) = udp
            .recv_from(&mut buffer)
            .unwrap_or_else(|e| panic!("no answer to {} datagrams: {e}", ids.len()));
        let response = hickory_proto::op::Message::from_vec(&buffer[..length]).expect("decode");
        ids.remove(&response.metadata.id);
    }
    let Setup { server, .. } = setup;
    assert!(server.terminate().success());
}

#[test]
fn an_answer_changed_by_a_reload_is_posted_with_the_new_serial() {
    let receiver = WebhookReceiver::start(&[]);
    let hook = format!("\n[[notify.webhook]]\nurl = \"{}\"\n", receiver.url);
    let setup = start(Some(TOKEN), "", &hook);
    // The standby becomes the primary: the answer moves without any member failing.
    let swapped = setup.service.replace(
        &format!("[\"{}\", \"{}\"]", setup.p, setup.s),
        &format!("[\"{}\", \"{}\"]", setup.s, setup.p),
    );
    assert_ne!(swapped, setup.service, "the member list was swapped");
    setup.write_config("svc.zone", &format!("{swapped}{hook}"));
    let (code, body) = setup.api.post("/reload", Some(TOKEN));
    assert_eq!(code, 200, "{body}");
    assert_eq!(setup.server.addresses(WWW), [setup.s]);
    wait_until("the webhook delivery", Duration::from_secs(10), || {
        !receiver.bodies().is_empty()
    });
    let event: serde_json::Value = serde_json::from_str(&receiver.bodies()[0]).expect("json");
    assert_eq!(event["reason"], "config reloaded");
    assert_eq!(event["to"], serde_json::json!([setup.s.to_string()]));
    assert_eq!(
        event["serial"].as_u64(),
        Some(u64::from(setup.server.serial()))
    );
}
