//! The real `failover-dns` binary, started on a temp config and zone, and its config text.

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use command_fds::{CommandFdExt, FdMapping};
use std::os::fd::OwnedFd;

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

/// How to start the process, beyond its config.
#[derive(Default)]
struct Launch {
    /// Its descriptor limit (soft and hard), set by util-linux's `prlimit`.
    nofile: Option<u64>,
    /// Added to its environment.
    env: Vec<(String, String)>,
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
        let (dns, sockets) = bound_dns();
        Self::launch(
            &[dns],
            dns,
            sockets,
            files,
            config,
            zone,
            &Launch::default(),
        )
    }

    /// As [`Server::start_with_files`], listening on `listen` and asked at `dns`.
    pub fn start_listening(
        listen: &[SocketAddr],
        dns: SocketAddr,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        Self::launch(
            listen,
            dns,
            Vec::new(),
            files,
            config,
            zone,
            &Launch::default(),
        )
    }

    /// As [`Server::start_with_files`], answering at `dns` and handed `sockets`.
    pub fn start_handing(
        dns: SocketAddr,
        sockets: Vec<OwnedFd>,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        Self::launch(
            &[dns],
            dns,
            sockets,
            files,
            config,
            zone,
            &Launch::default(),
        )
    }

    /// As [`Server::start_with_files`], with the process's descriptor limit (soft and hard)
    /// set to `nofile` by util-linux's `prlimit`.
    pub fn start_with_nofile(
        nofile: u64,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        let (dns, sockets) = bound_dns();
        let how = Launch {
            nofile: Some(nofile),
            ..Launch::default()
        };
        Self::launch(&[dns], dns, sockets, files, config, zone, &how)
    }

    /// As [`Server::start_with_files`], with `env` added to the process's environment.
    pub fn start_with_env(
        env: &[(&str, &str)],
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
    ) -> Self {
        let (dns, sockets) = bound_dns();
        let how = Launch {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Launch::default()
        };
        Self::launch(&[dns], dns, sockets, files, config, zone, &how)
    }

    /// Starts the binary serving `listen`, handing it `sockets` (already bound for some of
    /// those addresses) and the API listener [`api_config`] bound, if the config names it.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        listen: &[SocketAddr],
        dns: SocketAddr,
        mut sockets: Vec<OwnedFd>,
        files: &[(&str, &str)],
        config: &str,
        zone: &str,
        how: &Launch,
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
        fs::write(&config_path, &config).expect("write config");
        let log = fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut command = match how.nofile {
            None => Command::new(env!("CARGO_BIN_EXE_failover-dns")),
            Some(n) => {
                let mut prlimit = Command::new("prlimit");
                prlimit.arg(format!("--nofile={n}:{n}"));
                prlimit.arg(env!("CARGO_BIN_EXE_failover-dns"));
                prlimit
            }
        };
        sockets.extend(take_held_api(&config));
        // Handed over as systemd would: descriptors 3, 4, … and their count in LISTEN_FDS.
        let count = sockets.len();
        let mappings = sockets
            .into_iter()
            .zip(3..)
            .map(|(parent_fd, child_fd)| FdMapping {
                parent_fd,
                child_fd,
            })
            .collect();
        command.envs(how.env.iter().map(|(k, v)| (k, v)));
        command
            .fd_mappings(mappings)
            .expect("distinct descriptors")
            .env("LISTEN_FDS", count.to_string())
            .env_remove("LISTEN_PID");
        let child = command
            .args(["--log-format", "json", "run", "--config"])
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

    /// Every event the server has logged so far (it logs JSON lines here).
    pub fn events(&self) -> Vec<Event> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Every member state change logged so far, in order.
    pub fn transitions(&self) -> Vec<Transition> {
        self.events()
            .iter()
            .filter(|e| !e.field("to").is_empty() && !e.field("member").is_empty())
            .map(|e| Transition {
                service: e.field("service").to_string(),
                member: e.field("member").to_string(),
                from: e.field("from").to_string(),
                to: e.field("to").to_string(),
                reason: e.field("reason").to_string(),
            })
            .collect()
    }

    /// Whether `member` (an address) went `to` a state for a reason containing `reason`.
    pub fn went(&self, member: impl std::fmt::Display, to: &str, reason: &str) -> bool {
        let member = member.to_string();
        self.transitions()
            .iter()
            .any(|t| t.member == member && t.to == to && t.reason.contains(reason))
    }

    /// Panics, showing the log, unless `member` went `to` a state for a reason containing
    /// `reason`.
    pub fn assert_went(&self, member: impl std::fmt::Display, to: &str, reason: &str) {
        let member = member.to_string();
        assert!(
            self.went(&member, to, reason),
            "no transition of {member} to {to} ({reason:?}) in:\n{}",
            self.log()
        );
    }

    /// Panics, showing the log, unless some event's message contains `text`.
    pub fn assert_logged(&self, text: &str) {
        assert!(
            self.events().iter().any(|e| e.message().contains(text)),
            "no event says {text:?}:\n{}",
            self.log()
        );
    }

    /// Waits until the log reports `count` members up.
    pub fn wait_for_members_up(&self, count: usize) {
        wait_until(
            &format!("{count} members up"),
            Duration::from_secs(10),
            || self.transitions().iter().filter(|t| t.to == "up").count() >= count,
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

/// One event of the server's JSON log.
#[derive(Debug, serde::Deserialize)]
pub struct Event {
    /// The event's fields, `message` among them.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl Event {
    /// A field as text (numbers and booleans written out; empty when absent).
    pub fn field(&self, key: &str) -> String {
        match self.fields.get(key) {
            Some(serde_json::Value::String(text)) => text.clone(),
            Some(other) => other.to_string(),
            None => String::new(),
        }
    }

    /// The event's message.
    pub fn message(&self) -> String {
        self.field("message")
    }
}

/// A member's state change, from its structured log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub service: String,
    pub member: String,
    pub from: String,
    pub to: String,
    pub reason: String,
}

/// A fresh loopback address with a UDP socket and a TCP listener bound on one port, as
/// descriptors to hand to the server: no one can take the port between choosing and serving.
pub fn bound_dns() -> (SocketAddr, Vec<OwnedFd>) {
    for _ in 0..100 {
        let ip = loopback_ip();
        let Ok(udp) = std::net::UdpSocket::bind((ip, 0)) else {
            continue;
        };
        let Ok(addr) = udp.local_addr() else {
            continue;
        };
        if let Ok(tcp) = std::net::TcpListener::bind(addr) {
            return (addr, vec![OwnedFd::from(udp), OwnedFd::from(tcp)]);
        }
    }
    panic!("no loopback address with a port free for UDP and TCP in 100 tries");
}
