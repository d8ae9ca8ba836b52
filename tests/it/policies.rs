//! Policies (`all`, `weighted`, tiers), `when_all_down`, `failback_delay` and per-member
//! check addresses, against the real binary with real HTTP backends on loopback.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::common::*;

const WWW: &str = "www.svc.example.test.";

/// A service `WWW` with `policy_lines` (policy, members or tiers, …) checked over HTTP on
/// `port` every 100 ms, rise 1, fall 1, with an API; returns the server and the API.
fn start(policy_lines: &str, port: u16) -> (Server, Api) {
    start_with_api(&format!(
        "[[service]]\nname = \"{WWW}\"\nttl = 5\n{policy_lines}\n\n\
         [service.check]\nkind = \"http\"\nport = {port}\npath = \"/health\"\n\
         interval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n"
    ))
}

fn list(addresses: &[IpAddr]) -> String {
    let quoted: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

fn backends(ips: &[IpAddr], port: u16) -> Vec<HttpBackend> {
    ips.iter()
        .map(|ip| HttpBackend::start(SocketAddr::new(*ip, port)))
        .collect()
}

fn sorted(mut addresses: Vec<IpAddr>) -> Vec<IpAddr> {
    addresses.sort();
    addresses
}

#[test]
fn policy_all_answers_every_healthy_member_and_drops_a_failed_one() {
    let ips: Vec<IpAddr> = (0..3).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let (server, api) = start(&format!("policy = \"all\"\nmembers = {}", list(&ips)), port);
    server.wait_for_members_up(3);
    assert_eq!(server.addresses(WWW), ips);
    up[1].set_status(503);
    server.wait_for_answer(WWW, &[ips[0], ips[2]], Duration::from_secs(10));
    assert_eq!(api.status()["services"][0]["policy"], "all");
}

#[test]
fn max_answers_caps_policy_all_in_member_order() {
    let ips: Vec<IpAddr> = (0..4).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let (server, _api) = start(
        &format!(
            "policy = \"all\"\nmax_answers = 2\nmembers = {}",
            list(&ips)
        ),
        port,
    );
    server.wait_for_members_up(4);
    assert_eq!(server.addresses(WWW), &ips[..2]);
    up[0].set_status(500);
    server.wait_for_answer(WWW, &[ips[1], ips[2]], Duration::from_secs(10));
}

#[test]
fn tiers_answer_every_usable_member_of_the_first_tier_that_has_any() {
    let ips: Vec<IpAddr> = (0..4).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let tiers = format!("tiers = [{}, {}]", list(&ips[..2]), list(&ips[2..]));
    let (server, _api) = start(&tiers, port);
    server.wait_for_members_up(4);
    assert_eq!(server.addresses(WWW), &ips[..2]);
    up[0].set_status(500);
    server.wait_for_answer(WWW, &[ips[1]], Duration::from_secs(10));
    up[1].set_status(500);
    server.wait_for_answer(WWW, &ips[2..], Duration::from_secs(10));
    // Back to the first tier as soon as one of it recovers (failback, no delay).
    up[0].set_status(200);
    server.wait_for_answer(WWW, &[ips[0]], Duration::from_secs(10));
}

#[test]
fn when_all_down_fallback_answers_the_fallback_and_status_says_so() {
    let ips: Vec<IpAddr> = (0..2).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let sorry = loopback_ip();
    let (server, api) = start(
        &format!(
            "members = {}\nwhen_all_down = \"fallback\"\nfallback = [\"{sorry}\", \"2001:db8::250\"]",
            list(&ips)
        ),
        port,
    );
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [ips[0]]);
    for backend in &up {
        backend.set_status(500);
    }
    server.wait_for_answer(WWW, &[sorry], Duration::from_secs(10));
    let service = &api.status()["services"][0];
    assert_eq!(service["all_down"], "fallback", "{service}");
    assert_eq!(service["when_all_down"], "fallback");
    assert_eq!(service["failing_open"], false);
    // The service has no IPv6 member: AAAA stays NODATA rather than the fallback's v6.
    let aaaa = query(server.dns, WWW, RecordType::AAAA, Transport::Udp);
    assert!(addresses(&aaaa).is_empty());
    server.assert_logged("answering its fallback");
    let (_, metrics) = api.get("/metrics");
    assert!(
        metrics.contains("failover_dns_all_down_total{service=\"www.svc.example.test.\",family=\"A\",mode=\"fallback\"} 1"),
        "{metrics}"
    );
    up[1].set_status(200);
    server.wait_for_answer(WWW, &[ips[1]], Duration::from_secs(10));
}

#[test]
fn when_all_down_answer_none_answers_nodata() {
    let ips: Vec<IpAddr> = (0..2).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let (server, api) = start(
        &format!("members = {}\nwhen_all_down = \"answer-none\"", list(&ips)),
        port,
    );
    server.wait_for_members_up(2);
    for backend in &up {
        backend.set_status(500);
    }
    wait_until("NODATA", Duration::from_secs(10), || {
        server.addresses(WWW).is_empty()
    });
    let response = query(server.dns, WWW, RecordType::A, Transport::Udp);
    assert_eq!(rcode(&response), ResponseCode::NoError);
    assert_eq!(api.status()["services"][0]["all_down"], "answer-none");
}

#[test]
fn failback_delay_holds_the_answer_on_the_standby_until_the_primary_has_been_up_that_long() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (server, api) = start(
        &format!("members = {}\nfailback_delay = \"4s\"", list(&[p, s])),
        port,
    );
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    primary.set_status(500);
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    let recovering = Instant::now();
    primary.set_status(200);
    wait_until(
        "the primary to be up again",
        Duration::from_secs(10),
        || api.member(p)["state"] == "up",
    );
    // Up, but the delay has not passed: still the standby, and /status says when it moves.
    assert_eq!(server.addresses(WWW), [s]);
    let service = &api.status()["services"][0];
    assert_eq!(
        service["pending_failback"]["to"][0],
        p.to_string(),
        "{service}"
    );
    server.wait_for_answer(WWW, &[p], Duration::from_secs(20));
    // Never before the delay: the primary came up after `recovering`.
    assert!(
        recovering.elapsed() >= Duration::from_secs(4),
        "moved back {:?} after the primary recovered",
        recovering.elapsed()
    );
    assert!(api.status()["services"][0]["pending_failback"].is_null());
}

#[test]
fn a_failure_during_the_failback_delay_restarts_it() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = HttpBackend::start(SocketAddr::new(p, port));
    let _standby = HttpBackend::start(SocketAddr::new(s, port));
    let (server, api) = start(
        &format!("members = {}\nfailback_delay = \"3s\"", list(&[p, s])),
        port,
    );
    server.wait_for_members_up(2);
    primary.set_status(500);
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    primary.set_status(200);
    wait_until("the primary up", Duration::from_secs(10), || {
        api.member(p)["state"] == "up"
    });
    let first_due = api.status()["services"][0]["pending_failback"]["at"].clone();
    primary.set_status(500);
    wait_until("the primary down", Duration::from_secs(10), || {
        api.member(p)["state"] == "down"
    });
    assert!(api.status()["services"][0]["pending_failback"].is_null());
    primary.set_status(200);
    wait_until("the primary up again", Duration::from_secs(10), || {
        api.member(p)["state"] == "up"
    });
    let second_due = api.status()["services"][0]["pending_failback"]["at"].clone();
    assert!(
        second_due.as_str() > first_due.as_str(),
        "{first_due} then {second_due}"
    );
    assert_eq!(server.addresses(WWW), [s]);
    server.wait_for_answer(WWW, &[p], Duration::from_secs(20));
}

#[test]
fn check_address_and_port_check_a_member_elsewhere_than_the_address_answered() {
    // The answered addresses have nothing listening; their checks go to other addresses and
    // ports, where the backends are.
    let (p, s) = (loopback_ip(), loopback_ip());
    let (pc, sc) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let check_port = free_port(&[pc, sc]);
    let primary_check = HttpBackend::start(SocketAddr::new(pc, check_port));
    let _standby_check = HttpBackend::start(SocketAddr::new(sc, check_port));
    let members = format!(
        "members = [{{ address = \"{p}\", check_address = \"{pc}\", port = {check_port} }}, \
         {{ address = \"{s}\", check_address = \"{sc}\", port = {check_port} }}]"
    );
    let (server, api) = start(&members, port);
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    assert_eq!(
        api.member(p)["check"],
        SocketAddr::new(pc, check_port).to_string()
    );
    primary_check.kill();
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
}

#[test]
fn weighted_answers_one_member_per_response_in_proportion_to_weight() {
    let ips: Vec<IpAddr> = (0..4).map(|_| loopback_ip()).collect();
    let port = free_port(&ips);
    let up = backends(&ips, port);
    let members = format!(
        "policy = \"weighted\"\nmembers = [{{ address = \"{}\", weight = 3 }}, \"{}\", {{ address = \"{}\", weight = 0 }}, \"{}\"]",
        ips[0], ips[1], ips[2], ips[3]
    );
    let (server, _api) = start(&members, port);
    server.wait_for_members_up(4);
    up[3].set_status(500);
    wait_until(
        "the failed member to be left out",
        Duration::from_secs(10),
        || api_member_down(&server, ips[3]),
    );
    // Over UDP and TCP alike (both transports share the answer path; UDP adds the memo).
    let mut counts: HashMap<IpAddr, usize> = HashMap::new();
    const QUERIES: usize = 2000;
    for i in 0..QUERIES {
        let transport = if i % 4 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let answered = addresses(&query(server.dns, WWW, RecordType::A, transport));
        assert_eq!(answered.len(), 1, "one member per response: {answered:?}");
        *counts.entry(answered[0]).or_default() += 1;
    }
    assert_eq!(
        counts.get(&ips[2]),
        None,
        "weight 0 is never drawn: {counts:?}"
    );
    assert_eq!(
        counts.get(&ips[3]),
        None,
        "a failed member is never drawn: {counts:?}"
    );
    // Weights 3 and 1: 75% and 25%. The standard deviation of the share over 2,000 draws is
    // about 1%; ±6 points is six of them (a false failure about once in a billion runs).
    let share = counts.get(&ips[0]).copied().unwrap_or(0) as f64 / QUERIES as f64;
    assert!((share - 0.75).abs() < 0.06, "share {share:.3}: {counts:?}");
    assert_eq!(
        sorted(counts.keys().copied().collect()),
        sorted(vec![ips[0], ips[1]])
    );
}

fn api_member_down(server: &Server, member: IpAddr) -> bool {
    server.went(member, "down", "")
}
