//! The command line: `check` on good and bad input, and `run` refusing bad input.

use std::fs;

use crate::common::*;

const SERVICE: &str = "[[service]]\nname = \"www.svc.example.test.\"\nmembers = [\"127.0.0.11\"]\n[service.check]\nkind = \"tcp\"\nport = 80\n";

fn config(listen: &str, zone_file: &str, service: &str) -> String {
    format!(
        "[server]\nlisten = [\"{listen}\"]\n\n[[zone]]\norigin = \"svc.example.test.\"\nfile = \"{zone_file}\"\n\n{service}"
    )
}

#[test]
fn bundled_example_config_is_valid() {
    let (status, stderr) = run_binary(
        &["check", "--config", "conf/failover-dns.toml"],
        &repo_root(),
    );
    assert!(status.success(), "{stderr}");
}

#[test]
fn bad_config_is_rejected_with_file_and_line_by_check_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("svc.zone"), ZONE).expect("zone");
    let bad = config(
        "127.0.0.1:5300",
        "svc.zone",
        &SERVICE.replace("127.0.0.11", "not-an-ip"),
    );
    fs::write(dir.path().join("bad.toml"), bad).expect("config");
    for command in ["check", "run"] {
        let (status, stderr) = run_binary(&[command, "--config", "bad.toml"], dir.path());
        assert_eq!(status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("bad.toml:10: member \"not-an-ip\" is not an IP address"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn bad_zone_file_is_rejected_with_file_and_line_by_check_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(
        dir.path().join("svc.zone"),
        format!("{ZONE}broken IN A 300.1.2.3\n"),
    )
    .expect("zone");
    fs::write(
        dir.path().join("c.toml"),
        config("127.0.0.1:5300", "svc.zone", SERVICE),
    )
    .expect("config");
    let line = ZONE.lines().count() + 1;
    for command in ["check", "run"] {
        let (status, stderr) = run_binary(&[command, "--config", "c.toml"], dir.path());
        assert_eq!(status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("svc.zone:{line}: cannot parse zone file")),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn missing_config_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (status, stderr) = run_binary(&["check", "--config", "nowhere.toml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains("nowhere.toml: cannot read config"),
        "{stderr}"
    );
}

#[test]
fn run_fails_clearly_when_the_address_is_taken() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = loopback_ip();
    // Taken by binding it, not found free first and bound later: nothing can slip in between.
    let taken = std::net::UdpSocket::bind((ip, 0)).expect("bind");
    let port = taken.local_addr().expect("address").port();
    fs::write(dir.path().join("svc.zone"), ZONE).expect("zone");
    fs::write(
        dir.path().join("c.toml"),
        config(&format!("{ip}:{port}"), "svc.zone", SERVICE),
    )
    .expect("config");
    let (status, stderr) = run_binary(&["run", "--config", "c.toml"], dir.path());
    assert_eq!(status.code(), Some(1));
    assert!(
        stderr.contains(&format!("cannot listen on {ip}:{port}")),
        "{stderr}"
    );
}

#[test]
fn check_warns_of_a_damaged_state_file_with_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("svc.zone"), ZONE).expect("zone");
    fs::write(
        dir.path().join("good.toml"),
        config("127.0.0.1:5300", "svc.zone", SERVICE),
    )
    .expect("config");
    fs::write(
        dir.path().join("failover-dns.state.json"),
        "{\n  \"overrides\": [\n    {\"service\": 1}\n  ]\n}\n",
    )
    .expect("state file");
    // A start does not stop for it (tests/hardening.rs), so check warns and passes.
    let (status, stderr) = run_binary(&["check", "--config", "good.toml"], dir.path());
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: ")
            && stderr.contains("failover-dns.state.json:3: invalid state file"),
        "{stderr}"
    );
    assert!(
        dir.path().join("failover-dns.state.json").exists(),
        "check moves nothing"
    );
}

#[test]
fn check_warns_when_the_descriptor_limit_cannot_hold_the_held_connections() {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::write(dir.path().join("svc.zone"), ZONE).expect("zone");
    // 300 members checked with hold = true: 600 descriptors for them, beside 512 for the
    // check pool, 128 kept, 1,000 DNS TCP and 64 API connections.
    let members: Vec<String> = (0..300)
        .map(|n| format!("\"10.0.{}.{}\"", n / 250, n % 250 + 1))
        .collect();
    let service = format!(
        "[[service]]\nname = \"www.svc.example.test.\"\nmembers = [{}]\n[service.check]\nkind = \"tcp\"\nport = 80\nhold = true\n",
        members.join(", ")
    );
    fs::write(
        dir.path().join("held.toml"),
        config("127.0.0.1:5300", "svc.zone", &service),
    )
    .expect("config");
    let output = std::process::Command::new("prlimit")
        .arg("--nofile=2048:2048")
        .arg(env!("CARGO_BIN_EXE_failover-dns"))
        .args(["check", "--config", "held.toml"])
        .current_dir(dir.path())
        .output()
        .expect("prlimit (util-linux)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: this config needs about 2304 file descriptors")
            && stderr.contains("the hard limit here is 2048"),
        "{stderr}"
    );
}

#[test]
fn the_packaged_config_checks_and_its_unit_asks_for_notify_and_hardening() {
    let root = repo_root();
    let config = root.join("debian/etc/failover-dns/failover-dns.toml");
    let (status, output) = run_binary(
        &["check", "--config", config.to_str().expect("utf-8 path")],
        &root,
    );
    assert!(status.success(), "{output}");
    assert!(output.contains("ok (1 zones, 1 services)"), "{output}");
    // The unit the package installs: the settings the server's behaviour depends on.
    let unit = std::fs::read_to_string(root.join("debian/failover-dns.service")).expect("unit");
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecStart=/usr/bin/failover-dns run --config /etc/failover-dns/failover-dns.toml",
        "DynamicUser=yes",
        "StateDirectory=failover-dns",
        "AmbientCapabilities=CAP_NET_BIND_SERVICE",
        "ProtectSystem=strict",
        "SystemCallFilter=@system-service",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    // The packaged state file lives in the unit's StateDirectory.
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(text.contains("state_file = \"/var/lib/failover-dns/state.json\""));
}

#[test]
fn the_man_page_is_generated_from_the_command_line() {
    let (status, page) = run_binary(&["man"], &repo_root());
    assert!(status.success(), "{page}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH failover-dns 1"),
        "{page}"
    );
    for subcommand in ["run", "check", "status", "drain", "undrain", "watch"] {
        assert!(page.contains(subcommand), "the man page lacks {subcommand}");
    }
}

#[test]
fn check_warns_when_a_script_checks_command_cannot_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("z.zone"), ZONE).expect("zone");
    let service = "[[service]]\nname = \"www.svc.example.test.\"\nmembers = [\"127.0.0.11\"]\n\
                   [service.check]\nkind = \"script\"\ncommand = [\"/nonexistent/check-db\", \"{address}\"]\n";
    std::fs::write(
        dir.path().join("c.toml"),
        config("127.0.0.1:5300", "z.zone", service),
    )
    .expect("config");
    let (status, output) = run_binary(&["check", "--config", "c.toml"], dir.path());
    assert!(status.success(), "a warning, not an error: {output}");
    assert!(
        output.contains("the check command of www.svc.example.test. cannot run (/nonexistent/check-db is not an executable file)"),
        "{output}"
    );
    // A program found in PATH passes quietly.
    let fine = service.replace("/nonexistent/check-db", "true");
    std::fs::write(
        dir.path().join("c.toml"),
        config("127.0.0.1:5300", "z.zone", &fine),
    )
    .expect("config");
    let (status, output) = run_binary(&["check", "--config", "c.toml"], dir.path());
    assert!(
        status.success() && !output.contains("cannot run"),
        "{output}"
    );
}
