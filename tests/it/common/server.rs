//! The real `failover-dns` binary, started on a temp config and zone, and its config text.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use super::*;

/// A `[[service]]` block with a check of `kind` on `port`, interval and timeout 200 ms,
/// rise and fall 2, plus any `extra_check` lines.
pub fn service_toml(
    name: &str,
    members: &[IpAddr],
    kind: &str,
    port: u16,
    extra_check: &str,
) -> String {
    let members: Vec<String> = members.iter().map(|m| format!("\"{m}\"")).collect();
    let path = if kind == "http" {
        "path = \"/health\"\n"
    } else {
        ""
    };
    format!(
        "[[service]]\nname = \"{name}\"\nttl = 5\nmembers = [{}]\n\n[service.check]\nkind = \"{kind}\"\nport = {port}\n{path}interval = \"200ms\"\ntimeout = \"200ms\"\nrise = 2\nfall = 2\n{extra_check}\n",
        members.join(", ")
    )
}

/// A running `failover-dns` process serving a temp config; killed on drop.
pub struct Server {
    child: Child,
    /// Where it answers DNS, over UDP and TCP.
    pub dns: SocketAddr,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary with the example zone and `services`, and waits until it answers.
    pub fn start(services: &str) -> Self {
        Self::start_with_zone(ZONE, services)
    }

    /// Starts the binary with `zone` as svc.example.test. and `services`.
    pub fn start_with_zone(zone: &str, services: &str) -> Self {
        let config =
            format!("[[zone]]\norigin = \"svc.example.test.\"\nfile = \"svc.zone\"\n\n{services}");
        Self::start_with_files(&[("svc.zone", zone)], &config, "svc.example.test.")
    }

    /// Starts the binary with `config` (everything but `listen`, which is added) and waits
    /// until it answers SOA for `zone`.
    pub fn start_with_config(config: &str, zone: &str) -> Self {
        Self::start_with_files(&[], config, zone)
    }

    /// Writes `files` beside the config, starts the binary and waits until it answers SOA for
    /// `zone`. `config` must not have a `[server]` table's `listen` key; a `[server]` table
    /// is added or extended with it.
    pub fn start_with_files(files: &[(&str, &str)], config: &str, zone: &str) -> Self {
        let ip = loopback_ip();
        let dns = SocketAddr::new(ip, free_port(&[ip]));
        Self::start_listening(&[dns], dns, files, config, zone)
    }

    /// As [`Server::start_with_files`], listening on `listen` and asked at `dns`.
    pub fn start_listening(
        listen: &[SocketAddr],
        dns: SocketAddr,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        Self::launch(listen, dns, files, config, zone, None)
    }

    /// As [`Server::start_with_files`], with the process's descriptor limit (soft and hard)
    /// set to `nofile` by util-linux's `prlimit`.
    pub fn start_with_nofile(
        nofile: u64,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        let ip = loopback_ip();
        let dns = SocketAddr::new(ip, free_port(&[ip]));
        Self::launch(&[dns], dns, files, config, zone, Some(nofile))
    }

    fn launch(
        listen: &[SocketAddr],
        dns: SocketAddr,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
        nofile: Option<u64>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            fs::write(dir.path().join(name), text).expect("write file");
        }
        let listen: Vec<String> = listen.iter().map(|addr| format!("\"{addr}\"")).collect();
        let mut listen = format!("listen = [{}]\n", listen.join(", "));
        // Every test's client is 127.0.0.1, one network: tests of other things must not
        // share a response rate limit. Tests of the limit set their own.
        if !config.contains("rate_limit") {
            listen.push_str("rate_limit = 0\n");
        }
        let config = match config.strip_prefix("[server]\n") {
            Some(rest) => format!("[server]\n{listen}{rest}"),
            None => format!("[server]\n{listen}\n{config}"),
        };
        let config_path = dir.path().join("failover-dns.toml");
        fs::write(&config_path, config).expect("write config");
        let log = fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut command = match nofile {
            None => Command::new(env!("CARGO_BIN_EXE_failover-dns")),
            Some(n) => {
                let mut prlimit = Command::new("prlimit");
                prlimit.arg(format!("--nofile={n}:{n}"));
                prlimit.arg(env!("CARGO_BIN_EXE_failover-dns"));
                prlimit
            }
        };
        let child = command
            .args(["run", "--config"])
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start failover-dns");
        let mut server = Self { child, dns, dir };
        let log_path = server.dir.path().join("server.log");
        wait_for_start(
            &mut server.child,
            "failover-dns",
            || fs::read_to_string(&log_path).unwrap_or_default(),
            || try_query(dns, zone, RecordType::SOA, Transport::Udp).is_some(),
        );
        server
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Everything the server has logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Panics, showing the log, unless the log contains `text`.
    pub fn assert_logged(&self, text: &str) {
        let log = self.log();
        assert!(log.contains(text), "log lacks {text:?}:\n{log}");
    }

    /// Waits until the log reports `count` members up.
    pub fn wait_for_members_up(&self, count: usize) {
        wait_until(
            &format!("{count} members up"),
            Duration::from_secs(10),
            || self.log().matches(" is up: ").count() >= count,
        );
    }

    /// The addresses the server answers now for an A query of `name` over UDP.
    pub fn addresses(&self, name: &str) -> Vec<IpAddr> {
        addresses(&query(self.dns, name, RecordType::A, Transport::Udp))
    }

    /// Polls until `name` answers exactly `expected`, returning how long that took.
    pub fn wait_for_answer(&self, name: &str, expected: &[IpAddr], limit: Duration) -> Duration {
        let started = Instant::now();
        wait_until(&format!("{name} to answer {expected:?}"), limit, || {
            try_query(self.dns, name, RecordType::A, Transport::Udp)
                .is_some_and(|m| addresses(&m) == expected)
        });
        started.elapsed()
    }

    /// The SOA serial served now.
    pub fn serial(&self) -> u32 {
        let response = query(
            self.dns,
            "svc.example.test.",
            RecordType::SOA,
            Transport::Udp,
        );
        match response.answers.first().map(|r| &r.data) {
            Some(RData::SOA(soa)) => soa.serial,
            other => panic!("no SOA in answer: {other:?}"),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    /// The config file the server was started with (rewrite it, then reload).
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("failover-dns.toml")
    }

    /// A path inside the server's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, signal).expect("send signal");
    }

    pub fn terminate(mut self) -> ExitStatus {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("send SIGTERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
