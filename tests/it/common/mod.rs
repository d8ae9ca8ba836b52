//! Helpers for integration tests: the real `failover-dns` binary on loopback, a small DNS
//! client, and toy backends that tests start, break and kill.
//!
//! Every test gets its own random 127.x.y.z addresses, so tests run in parallel without
//! sharing ports. Nothing here sleeps a guessed time: [`wait_until`] polls with a deadline.

pub mod https;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};

/// The bundled example zone, used by most tests.
pub const ZONE: &str = include_str!("../../../zones/svc.example.test.zone");

/// Polls `condition` every 10 ms until it holds, or panics naming `what` after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `ready` until it holds; panics with `log()` if `child` (named `what`) exits first or
/// 20 s pass.
pub fn wait_for_start(
    child: &mut Child,
    what: &str,
    log: impl Fn() -> String,
    mut ready: impl FnMut() -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited with {status} before answering:\n{}", log());
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not answer within 20s:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A random loopback address in 127.1.0.0–127.254.255.254, private to one test.
pub fn loopback_ip() -> IpAddr {
    let n: u32 = rand::random_range(0x01_00_01..0xFE_FF_FF);
    IpAddr::V4(Ipv4Addr::new(127, (n >> 16) as u8, (n >> 8) as u8, n as u8))
}

/// A port free for TCP and UDP on every address in `ips`, as chosen by the OS for the first.
pub fn free_port(ips: &[IpAddr]) -> u16 {
    for _ in 0..100 {
        let Ok(first) = TcpListener::bind((ips[0], 0)) else {
            continue;
        };
        let Ok(port) = first.local_addr().map(|a| a.port()) else {
            continue;
        };
        let free = ips.iter().all(|ip| {
            let tcp = ip == &ips[0] || TcpListener::bind((*ip, port)).is_ok();
            tcp && UdpSocket::bind((*ip, port)).is_ok()
        });
        if free {
            return port;
        }
    }
    panic!("no free port on {ips:?}");
}

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

/// How a query travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One datagram each way.
    Udp,
    /// A fresh TCP connection with two-byte length framing.
    Tcp,
}

/// A plain query for `name`/`qtype`, RD clear, with EDNS.
pub fn request(name: &str, qtype: RecordType) -> Message {
    let mut message = Message::new(rand::random(), MessageType::Query, OpCode::Query);
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    message.metadata.recursion_desired = false;
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    message.set_edns(edns);
    message
}

/// Sends `message` and returns the raw response, or None on timeout (1 s) or error.
pub fn exchange_raw(server: SocketAddr, bytes: &[u8], transport: Transport) -> Option<Vec<u8>> {
    let timeout = Some(Duration::from_secs(1));
    match transport {
        Transport::Udp => {
            let bind: SocketAddr = if server.is_ipv4() {
                "127.0.0.1:0".parse().ok()?
            } else {
                "[::1]:0".parse().ok()?
            };
            let socket = UdpSocket::bind(bind).ok()?;
            socket.set_read_timeout(timeout).ok()?;
            socket.send_to(bytes, server).ok()?;
            let mut buf = vec![0u8; 65535];
            let (len, _) = socket.recv_from(&mut buf).ok()?;
            buf.truncate(len);
            Some(buf)
        }
        Transport::Tcp => {
            let mut stream = TcpStream::connect_timeout(&server, Duration::from_secs(1)).ok()?;
            stream.set_read_timeout(timeout).ok()?;
            let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(bytes);
            stream.write_all(&framed).ok()?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).ok()?;
            let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
            stream.read_exact(&mut buf).ok()?;
            Some(buf)
        }
    }
}

/// Sends `message`, returning the parsed response if one arrives and matches its ID.
pub fn exchange(server: SocketAddr, message: &Message, transport: Transport) -> Option<Message> {
    let raw = exchange_raw(server, &message.to_vec().ok()?, transport)?;
    let response = Message::from_vec(&raw).ok()?;
    (response.metadata.id == message.metadata.id).then_some(response)
}

/// Queries `name`/`qtype`, or None when no answer arrives.
pub fn try_query(
    server: SocketAddr,
    name: &str,
    qtype: RecordType,
    transport: Transport,
) -> Option<Message> {
    exchange(server, &request(name, qtype), transport)
}

/// Queries `name`/`qtype`, panicking when no answer arrives.
pub fn query(server: SocketAddr, name: &str, qtype: RecordType, transport: Transport) -> Message {
    try_query(server, name, qtype, transport)
        .unwrap_or_else(|| panic!("no answer from {server} for {name} {qtype} over {transport:?}"))
}

/// The A and AAAA addresses in a response's answer section, in order.
pub fn addresses(response: &Message) -> Vec<IpAddr> {
    response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
            _ => None,
        })
        .collect()
}

/// The response code of a response.
pub fn rcode(response: &Message) -> ResponseCode {
    response.metadata.response_code
}

/// A toy HTTP backend: answers every request with the current status, closes the connection.
/// [`HttpBackend::kill`] closes the listener, so connections are refused as when a process dies.
pub struct HttpBackend {
    /// Where it listens.
    pub addr: SocketAddr,
    status: Arc<AtomicU16>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpBackend {
    /// Starts answering 200 on `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        let listener =
            TcpListener::bind(addr).unwrap_or_else(|e| panic!("bind backend {addr}: {e}"));
        let status = Arc::new(AtomicU16::new(200));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (status, stop) = (Arc::clone(&status), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    if let Ok(stream) = stream {
                        let status = status.load(Ordering::SeqCst);
                        std::thread::spawn(move || respond(stream, status));
                    }
                }
            })
        };
        Self {
            addr,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// Makes every later response answer `status`.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Closes the listener: new connections are refused from now on.
    pub fn kill(mut self) {
        self.shut();
    }

    fn shut(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::SeqCst);
            let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
            let _ = thread.join();
        }
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        self.shut();
    }
}

fn respond(stream: TcpStream, status: u16) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" || line == "\n" {
            break;
        }
        line.clear();
    }
    let mut writer = &stream;
    let _ = write!(
        writer,
        "HTTP/1.1 {status} Status\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// A backend that accepts TCP connections (the kernel completes the handshake) but never
/// reads or answers: a hung process.
pub struct HungBackend {
    _listener: TcpListener,
}

impl HungBackend {
    /// Starts hanging on `addr`.
    pub fn start(addr: SocketAddr) -> Self {
        Self {
            _listener: TcpListener::bind(addr)
                .unwrap_or_else(|e| panic!("bind hung backend {addr}: {e}")),
        }
    }
}

/// Runs the binary with `args` to completion, returning its status and its stdout then stderr.
pub fn run_binary(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_failover-dns"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run failover-dns");
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status, text)
}

/// The repository root, for tests of the bundled example files.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A header with `qdcount` questions and nothing else.
pub fn header(qdcount: u16) -> Vec<u8> {
    let mut out = vec![0x12, 0x34, 0, 0];
    out.extend_from_slice(&qdcount.to_be_bytes());
    out.extend_from_slice(&[0; 6]);
    out
}

/// Packets that must neither crash nor stall the server: each gets FORMERR or nothing.
pub fn malformed_packets() -> Vec<(&'static str, Vec<u8>)> {
    let valid = request("www.svc.example.test.", RecordType::A)
        .to_vec()
        .expect("encode");
    let mut packets = vec![
        ("empty", vec![]),
        ("short header", vec![0; 5]),
        ("all ones header", vec![0xff; 12]),
        ("600 bytes of 0xab", vec![0xab; 600]),
        ("64 KiB of zeros", vec![0; 65_507]),
    ];
    for (what, cut) in [("cut in the name", 13), ("cut in the question", 20)] {
        packets.push((what, valid[..cut].to_vec()));
    }
    packets.push(("cut in the OPT record", valid[..valid.len() - 1].to_vec()));

    let mut self_pointer = header(1);
    self_pointer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    packets.push(("compression pointer to itself", self_pointer));
    let mut two_pointer_loop = header(1);
    two_pointer_loop.extend_from_slice(&[1, b'a', 0xc0, 16, 0xc0, 12, 0, 1, 0, 1]);
    packets.push(("two compression pointers in a loop", two_pointer_loop));
    let mut forward_pointer = header(1);
    forward_pointer.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    packets.push(("compression pointer past the end", forward_pointer));

    let mut many_labels = header(1);
    for _ in 0..200 {
        many_labels.extend_from_slice(&[1, b'a']);
    }
    many_labels.extend_from_slice(&[0, 0, 1, 0, 1]);
    packets.push(("a 400-byte name of 200 labels", many_labels));
    let mut long_label = header(1);
    long_label.push(63);
    long_label.extend_from_slice(&[b'x'; 63]);
    long_label.push(0x7f); // a label length over 63 that is not a pointer
    long_label.extend_from_slice(&[b'y'; 20]);
    packets.push(("a label length of 127", long_label));
    let mut huge_counts = header(0xffff);
    huge_counts[6..12].copy_from_slice(&[0xff; 6]);
    huge_counts.extend_from_slice(&valid[12..]);
    packets.push(("65535 in every count", huge_counts));
    packets
}

/// The `[server]` lines for an API on a fresh loopback address, with `token` if given, and
/// the API's base URL.
pub fn api_config(token: Option<&str>) -> (String, String) {
    let ip = loopback_ip();
    let addr = SocketAddr::new(ip, free_port(&[ip]));
    let token = token.map_or(String::new(), |t| format!("http_token = \"{t}\"\n"));
    (
        format!("http = \"{addr}\"\n{token}"),
        format!("http://{addr}"),
    )
}

/// A blocking client of the server's HTTP API.
pub struct Api {
    /// Base URL, e.g. `http://127.1.2.3:40000`.
    pub base: String,
    client: reqwest::blocking::Client,
}

impl Api {
    /// A client of the API at `base`.
    pub fn new(base: &str) -> Self {
        Self::waiting(base, Duration::from_secs(10))
    }

    /// A client of the API at `base` that waits up to a minute for an answer (for requests
    /// that queue behind slow reloads on a busy machine).
    pub fn patient(base: &str) -> Self {
        Self::waiting(base, Duration::from_secs(60))
    }

    fn waiting(base: &str, limit: Duration) -> Self {
        Self {
            base: base.to_string(),
            client: reqwest::blocking::Client::builder()
                .timeout(limit)
                .build()
                .expect("client"),
        }
    }

    /// `GET path`: status code and body.
    pub fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    /// `POST path`, with `Authorization: Bearer token` if given: status code and body.
    pub fn post(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut request = self.client.post(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    /// `GET /status` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let (code, body) = self.get("/status");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status JSON")
    }

    /// The status of `member` of the first service.
    pub fn member(&self, member: IpAddr) -> serde_json::Value {
        let status = self.status();
        status["services"][0]["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|m| m["address"] == member.to_string())
            .cloned()
            .unwrap_or_else(|| panic!("{member} in {status}"))
    }
}

/// A webhook target: records every POST body and answers each with the next of `statuses`
/// (then 200).
pub struct WebhookReceiver {
    /// Its URL.
    pub url: String,
    bodies: Arc<std::sync::Mutex<Vec<String>>>,
    _thread: JoinHandle<()>,
}

impl WebhookReceiver {
    /// Starts listening on a fresh loopback address.
    pub fn start(statuses: &[u16]) -> Self {
        let ip = loopback_ip();
        let listener = TcpListener::bind((ip, 0)).expect("bind webhook receiver");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut statuses = std::collections::VecDeque::from(statuses.to_vec());
        let thread = {
            let bodies = Arc::clone(&bodies);
            std::thread::spawn(move || {
                for stream in listener.incoming().take(100).flatten() {
                    let status = statuses.pop_front().unwrap_or(200);
                    if let Some(body) = read_request_body(&stream) {
                        bodies.lock().expect("lock").push(body);
                    }
                    let mut writer = &stream;
                    let _ = write!(
                        writer,
                        "HTTP/1.1 {status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                }
            })
        };
        Self {
            url,
            bodies,
            _thread: thread,
        }
    }

    /// Every body received so far.
    pub fn bodies(&self) -> Vec<String> {
        self.bodies.lock().expect("lock").clone()
    }
}

fn read_request_body(stream: &TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    let mut line = String::new();
    while reader.read_line(&mut line).ok()? > 0 {
        if line == "\r\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().ok()?;
        }
        line.clear();
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}
