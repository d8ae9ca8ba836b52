//! The check kinds beyond a plain connect and status: tcp `send`/`expect`, http `expect_body`,
//! `script` (failing, hanging, flooding) and `dns`, each against real servers and processes on
//! loopback, each failure named by its reason.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::*;

const WWW: &str = "www.svc.example.test.";

/// `WWW` with members `p` then `s`, checked by `check` (the `[service.check]` body) every
/// 100 ms, rise 1, fall 1.
fn start(p: IpAddr, s: IpAddr, check: &str) -> Server {
    Server::start(&format!(
        "[[service]]\nname = \"{WWW}\"\nttl = 5\nmembers = [\"{p}\", \"{s}\"]\n\n\
         [service.check]\n{check}\ninterval = \"100ms\"\ntimeout = \"100ms\"\nrise = 1\nfall = 1\n"
    ))
}

/// A line server on `addr`: answers each line it reads with the current `reply`.
fn line_server(addr: SocketAddr, reply: Arc<Mutex<String>>) {
    serve_each(addr, move |stream| {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut line = String::new();
        if BufReader::new(stream).read_line(&mut line).is_ok() && line == "PING\r\n" {
            let reply = reply.lock().expect("lock").clone();
            let _ = writer.write_all(reply.as_bytes());
        }
    });
}

#[test]
fn tcp_send_and_expect_fail_a_member_whose_reply_lacks_the_string() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let primary = Arc::new(Mutex::new("+PONG\r\n".to_string()));
    line_server(SocketAddr::new(p, port), Arc::clone(&primary));
    line_server(
        SocketAddr::new(s, port),
        Arc::new(Mutex::new("+PONG\r\n".into())),
    );
    let server = start(
        p,
        s,
        &format!("kind = \"tcp\"\nport = {port}\nsend = \"PING\\r\\n\"\nexpect = \"+PONG\""),
    );
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    *primary.lock().expect("lock") = "-ERR loading\r\n".into();
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    server.assert_went(p, "down", "expected \"+PONG\", got \"-ERR loading\"");
}

/// An HTTP server on `addr` answering 200 with the current `body`.
fn body_server(addr: SocketAddr, body: Arc<Mutex<String>>) {
    serve_each(addr, move |mut stream| {
        let mut request = [0u8; 2048];
        let _ = stream.read(&mut request);
        let body = body.lock().expect("lock").clone();
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes());
    });
}

#[test]
fn http_expect_body_fails_a_member_whose_body_lacks_the_string() {
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    // The marker after 10 kB of page: found within the first 64 KiB.
    let page = |status: &str| format!("{}\nstatus: {status}\n", "x".repeat(10_000));
    let primary = Arc::new(Mutex::new(page("ok")));
    body_server(SocketAddr::new(p, port), Arc::clone(&primary));
    body_server(SocketAddr::new(s, port), Arc::new(Mutex::new(page("ok"))));
    let server = start(
        p,
        s,
        &format!("kind = \"http\"\nport = {port}\npath = \"/\"\nexpect_body = \"status: ok\""),
    );
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    *primary.lock().expect("lock") = page("degraded");
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    server.assert_went(p, "down", "body lacks \"status: ok\"");
}

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &std::path::Path, name: &str, text: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{text}")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path.display().to_string()
}

#[test]
fn a_script_check_fails_a_member_by_its_exit_status_with_its_stderr_as_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, s) = (loopback_ip(), loopback_ip());
    // Healthy while a file named after the member's address exists.
    let check = script(
        dir.path(),
        "check",
        &format!(
            "[ -e {}/\"$1\".up ] || {{ echo \"replica $1 lags by 30s\" >&2; exit 2; }}\n",
            dir.path().display()
        ),
    );
    for member in [p, s] {
        std::fs::write(dir.path().join(format!("{member}.up")), "").expect("marker");
    }
    let server = start(
        p,
        s,
        &format!("kind = \"script\"\ncommand = [\"{check}\", \"{{address}}\"]"),
    );
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    std::fs::remove_file(dir.path().join(format!("{p}.up"))).expect("remove marker");
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    server.assert_went(
        p,
        "down",
        &format!("exit status 2: replica {p} lags by 30s"),
    );
}

#[test]
fn a_hanging_script_times_out_and_its_whole_process_group_is_killed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, s) = (loopback_ip(), loopback_ip());
    // The primary's check starts a child that would sleep for ever, and records its pid.
    let check = script(
        dir.path(),
        "check",
        &format!(
            "[ \"$1\" = {s} ] && exit 0\n[ -e {d}/hang ] || exit 0\nsleep 1000 &\necho $! >> {d}/pids\nwait\n",
            d = dir.path().display()
        ),
    );
    let server = start(
        p,
        s,
        &format!("kind = \"script\"\ncommand = [\"{check}\", \"{{address}}\"]"),
    );
    server.wait_for_members_up(2);
    std::fs::write(dir.path().join("hang"), "").expect("hang");
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    server.assert_went(p, "down", "timeout");
    // Every sleeper a timed-out check started is gone (killed with its group, and reaped by
    // init since its parent died too).
    let pids = std::fs::read_to_string(dir.path().join("pids")).expect("pids");
    let pids: Vec<&str> = pids.lines().collect();
    assert!(!pids.is_empty());
    std::fs::remove_file(dir.path().join("hang")).expect("unhang");
    wait_until(
        "every sleeper to be killed",
        Duration::from_secs(10),
        || {
            pids.iter().all(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .map_or(true, |stat| stat.contains(") Z "))
            })
        },
    );
}

#[test]
fn a_script_that_floods_its_output_is_still_judged_by_its_exit_status() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (p, s) = (loopback_ip(), loopback_ip());
    // 50 MB on stdout and stderr each check, then success.
    let check = script(
        dir.path(),
        "check",
        "head -c 50000000 /dev/zero\nhead -c 50000000 /dev/zero >&2\nexit 0\n",
    );
    let mut server = Server::start(&format!(
        "[[service]]\nname = \"{WWW}\"\nttl = 5\nmembers = [\"{p}\", \"{s}\"]\n\n\
         [service.check]\nkind = \"script\"\ncommand = [\"{check}\"]\n\
         interval = \"5s\"\ntimeout = \"5s\"\nrise = 1\nfall = 1\n"
    ));
    server.wait_for_members_up(2);
    assert_eq!(server.addresses(WWW), [p]);
    assert!(server.is_running());
    // None of the 200 MB was kept: the server's resident memory stays small.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    assert!(
        rss_kb < 100_000,
        "resident {rss_kb} kB after flooding scripts"
    );
}

#[test]
fn a_dns_check_fails_a_member_that_answers_another_rcode() {
    // The members are failover-dns processes: the primary serves another zone (so it answers
    // REFUSED for the one asked), the standby serves it.
    let (p, s) = (loopback_ip(), loopback_ip());
    let port = free_port(&[p, s]);
    let member = |ip: IpAddr, origin: &str| {
        let addr = SocketAddr::new(ip, port);
        let config = format!("[[zone]]\norigin = \"{origin}\"\nfile = \"m.zone\"\n");
        let zone = ZONE.replace("$ORIGIN svc.example.test.", &format!("$ORIGIN {origin}"));
        Server::start_listening(&[addr], addr, &[("m.zone", &zone)], &config, origin)
    };
    let _primary = member(p, "other.example.test.");
    let _standby = member(s, "svc.example.test.");
    let server = start(
        p,
        s,
        &format!("kind = \"dns\"\nport = {port}\nquery = \"svc.example.test.\"\ntype = \"SOA\""),
    );
    server.wait_for_members_up(1);
    server.wait_for_answer(WWW, &[s], Duration::from_secs(10));
    server.assert_went(p, "down", "rcode REFUSED, expected NOERROR");
}
