//! Probes: one health check of one member, over TCP or HTTP(S).
//!
//! A probe only reports what happened; the caller bounds it with the check's timeout, so a
//! hung backend costs one task its timeout and nothing else.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::Arc;

use reqwest::header::{HOST, HeaderValue};

use rustls::pki_types::ServerName;

use super::exchange::{DnsProbe, TcpExpect};
use super::hold::{self, HttpHold};
use super::script::Script;
use super::sockets::{Connecting, SocketPool, Start};
use super::state::Failure;
use super::tls;
use crate::cause::root_cause;
use crate::cause::{cause_of, describe_io};
use crate::config::{CheckKind, CheckPlan};

/// A ready-to-run check of one member.
#[derive(Debug, Clone)]
pub enum Probe {
    /// Healthy when the connection is accepted.
    Tcp {
        /// The member's address and the check's port.
        target: SocketAddr,
        /// Where the check's socket comes from and goes back to.
        sockets: Arc<SocketPool>,
    },
    /// Healthy when `GET url` answers a status in `expect`.
    Http(Arc<HttpProbe>),
    /// Healthy when, connected, the reply to `send` contains `expect`.
    TcpExpect(Arc<TcpExpect>),
    /// Healthy when a command exits 0.
    Script(Arc<Script>),
    /// Healthy when a DNS query gets the expected response code.
    Dns(Arc<DnsProbe>),
}

/// An HTTP(S) check, shared by the probe and its checks in flight.
#[derive(Debug)]
pub struct HttpProbe {
    /// Client with redirects and connection reuse off, so every check is a fresh connection;
    /// shared with other members' probes where their settings allow.
    client: reqwest::Client,
    /// The URL requested.
    url: String,
    /// The `Host` header to send instead of the URL's authority (plain HTTP with `host`).
    host: Option<HeaderValue>,
    /// Statuses that count as healthy.
    expect: RangeInclusive<u16>,
    /// What the first [`BODY_WINDOW`] bytes of the body must contain (`expect_body`).
    expect_body: Option<Vec<u8>>,
    /// The held keep-alive connection (`hold = true`), which checks use while it is open.
    held: Option<Arc<HttpHold>>,
    /// The request line's path and the Host header, for requests over the held connection.
    path: String,
    authority: HeaderValue,
}

/// Most body bytes read over a held connection to keep it for the next check; a longer body
/// closes it (the hold opens another).
const HELD_BODY_LIMIT: usize = 64 * 1024;

/// Body bytes searched for `expect_body` (Route 53's `HTTP_STR_MATCH` reads 5,120; 64 KiB
/// finds a marker below a page's head).
const BODY_WINDOW: usize = 64 * 1024;

/// How a check began (see [`Probe::begin`]).
pub enum Begun {
    /// Over already: healthy (`Ok`) or why not.
    Over(Result<(), Failure>),
    /// Under way: to be finished, bounded by the check's timeout.
    Pending(Pending),
}

/// A check under way. Dropped, it is abandoned and releases what it holds.
pub enum Pending {
    /// A TCP connection being set up.
    Tcp(Connecting),
    /// An HTTP request, not sent yet.
    Http(Arc<HttpProbe>),
    /// A tcp send/expect exchange.
    TcpExpect(Arc<TcpExpect>),
    /// A script to run.
    Script(Arc<Script>),
    /// A DNS query to send.
    Dns(Arc<DnsProbe>),
}

impl Pending {
    /// Runs the check to its end: `Ok` when healthy, else why not in a few words.
    pub async fn finish(self) -> Result<(), Failure> {
        match self {
            Pending::Tcp(connecting) => connecting.finish().await.map_err(|e| describe_io(&e)),
            Pending::Http(http) => http.request().await,
            Pending::TcpExpect(check) => check.run().await,
            Pending::Script(check) => check.run().await,
            Pending::Dns(check) => check.run().await,
        }
    }
}

impl HttpProbe {
    async fn request(&self) -> Result<(), Failure> {
        if let Some((status, body)) = self.request_held().await {
            return self.judge(status, &body);
        }
        let mut request = self.client.get(&self.url);
        if let Some(host) = &self.host {
            request = request.header(HOST, host.clone());
        }
        let mut response = request.send().await.map_err(|e| cause_of(&e))?;
        let status = response.status().as_u16();
        let mut body = Vec::new();
        if self.expect_body.is_some() && self.expect.contains(&status) {
            while body.len() < BODY_WINDOW {
                match response.chunk().await {
                    Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => return Err(cause_of(&e)),
                }
            }
            body.truncate(BODY_WINDOW);
        }
        self.judge(status, &body)
    }

    fn judge(&self, status: u16, body: &[u8]) -> Result<(), Failure> {
        if !self.expect.contains(&status) {
            return Err(format!("HTTP {status}").into());
        }
        match &self.expect_body {
            Some(wanted)
                if !body
                    .windows(wanted.len())
                    .any(|window| window == wanted.as_slice()) =>
            {
                Err(format!("body lacks {:?}", String::from_utf8_lossy(wanted)).into())
            }
            _ => Ok(()),
        }
    }

    /// The status `GET` answers over the held connection; None when there is none open, or
    /// it failed before a response: the check then makes a fresh connection, which decides
    /// (a member that closed its idle connection just as the request went is no failure).
    async fn request_held(&self) -> Option<(u16, Vec<u8>)> {
        use http_body_util::BodyExt;
        let held = self.held.as_ref()?;
        let mut sender = held.take()?;
        let request = hyper::Request::get(self.path.as_str())
            .header(HOST, self.authority.clone())
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .body(http_body_util::Empty::new())
            .ok()?;
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        // Read the body whole (bounded) so the connection can carry the next check.
        let mut body = http_body_util::Limited::new(response.into_body(), HELD_BODY_LIMIT);
        let mut kept = Vec::new();
        let whole = loop {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = BODY_WINDOW.saturating_sub(kept.len()).min(data.len());
                        kept.extend_from_slice(&data[..room]);
                    }
                }
                Some(Err(_)) => break false,
                None => break true,
            }
        };
        if whole {
            held.give_back(sender);
        }
        Some((status, kept))
    }
}

/// The User-Agent every HTTP check sends.
const USER_AGENT: &str = concat!("failover-dns/", env!("CARGO_PKG_VERSION"), " health check");

/// What probes share: one pool of TCP sockets, and HTTP clients. Building an HTTP client loads
/// the system's trust store (about 35 kB and a few ms each), so 20,000 members with HTTP
/// checks must not build 20,000 of them: every plain-HTTP check shares one client, every HTTPS
/// check without `host` one per `tls_verify` setting. An HTTPS check with `host` needs its own,
/// because the name it sends for TLS (SNI) must resolve to this member's address.
#[derive(Debug)]
pub struct Clients {
    sockets: Arc<SocketPool>,
    /// The `max_scripts` slots script checks share.
    scripts: Arc<tokio::sync::Semaphore>,
    built: HashMap<ClientKey, reqwest::Client>,
    /// The TLS configuration every HTTPS client gets, by `tls_verify` setting (see
    /// [`super::tls`]): built once, so the trust store is read once, not once per client.
    tls: HashMap<bool, rustls::ClientConfig>,
}

/// Why a member's check could not be prepared (the member then counts as down).
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// HTTPS checks' TLS configuration.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// reqwest refused the client's settings.
    #[error("cannot build HTTP client: {}", root_cause(.0))]
    Client(#[source] reqwest::Error),
    /// `host` cannot be sent as a Host header.
    #[error("invalid host for the Host header: {0}")]
    Host(#[source] reqwest::header::InvalidHeaderValue),
    /// `host` is not a name TLS can send.
    #[error("host is not a name TLS can send (SNI)")]
    Sni,
}

/// An address as a URL's host writes it: IPv6 in brackets.
fn format_ip(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// What makes two probes' clients differ.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ClientKey {
    /// Whether certificates are verified (HTTPS only).
    verify: Option<bool>,
    /// The name resolved to the member's address, for SNI (HTTPS with `host` only).
    resolve: Option<(String, SocketAddr)>,
}

impl Default for Clients {
    /// With the default `max_scripts`.
    fn default() -> Self {
        Self::new(crate::config::DEFAULT_MAX_SCRIPTS)
    }
}

impl Clients {
    /// Shared by the probes made with it, with `max_scripts` script slots.
    pub fn new(max_scripts: usize) -> Self {
        Self {
            sockets: Arc::default(),
            scripts: Arc::new(tokio::sync::Semaphore::new(max_scripts)),
            built: HashMap::new(),
            tls: HashMap::new(),
        }
    }

    /// How many distinct clients have been built.
    pub fn len(&self) -> usize {
        self.built.len()
    }

    /// Whether none has been built.
    pub fn is_empty(&self) -> bool {
        self.built.is_empty()
    }

    /// The TLS configuration of HTTPS checks with this `tls_verify`, built once.
    fn tls_config(&mut self, verify: bool) -> Result<rustls::ClientConfig, ProbeError> {
        if let Some(config) = self.tls.get(&verify) {
            return Ok(config.clone());
        }
        let config = tls::client_config(verify)?;
        self.tls.insert(verify, config.clone());
        Ok(config)
    }

    fn get(&mut self, key: ClientKey) -> Result<reqwest::Client, ProbeError> {
        if let Some(client) = self.built.get(&key) {
            return Ok(client.clone());
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .no_proxy()
            .user_agent(USER_AGENT);
        if let Some(verify) = key.verify {
            builder = builder.tls_backend_preconfigured(self.tls_config(verify)?);
        }
        if let Some((host, target)) = &key.resolve {
            builder = builder.resolve(host, *target);
        }
        let client = builder.build().map_err(ProbeError::Client)?;
        self.built.insert(key, client.clone());
        Ok(client)
    }
}

impl Probe {
    /// Prepares the check `check` of a member, connecting to `target` (its check address and
    /// port), with a client from `clients`.
    pub fn new(
        check: &CheckPlan,
        target: SocketAddr,
        clients: &mut Clients,
    ) -> Result<Self, ProbeError> {
        let addr = target.ip();
        let http = match &check.kind {
            CheckKind::Tcp => {
                return Ok(Probe::Tcp {
                    target,
                    sockets: Arc::clone(&clients.sockets),
                });
            }
            CheckKind::Http(http) => http,
            CheckKind::TcpExpect { send, expect } => {
                return Ok(Probe::TcpExpect(Arc::new(TcpExpect {
                    target,
                    send: send.as_ref().map(|s| s.as_bytes().to_vec()),
                    expect: expect.as_bytes().to_vec(),
                })));
            }
            CheckKind::Script(script) => {
                let slots = Arc::clone(&clients.scripts);
                return Ok(Probe::Script(Arc::new(Script::new(
                    &script.command,
                    target,
                    slots,
                ))));
            }
            CheckKind::Dns(dns) => {
                return Ok(Probe::Dns(Arc::new(DnsProbe {
                    target,
                    query: dns.query.clone(),
                    qtype: dns.qtype,
                    expect_rcode: dns.expect_rcode,
                })));
            }
        };
        let tls = http.scheme == "https";
        let default_port = if tls { 443 } else { 80 };
        // The member's address and the configured name, as the URL would write them.
        let named = http.host.as_ref().map(|host| match target.port() {
            port if port == default_port => host.clone(),
            port => format!("{host}:{port}"),
        });
        // What the Host header says: the name with the port when not the scheme's own,
        // else the member's address and port (as reqwest writes a URL's authority).
        let authority = match &named {
            Some(named) => named.clone(),
            None => match target.port() {
                port if port == default_port => format_ip(addr),
                _ => target.to_string(),
            },
        };
        let authority = HeaderValue::from_str(&authority).map_err(ProbeError::Host)?;
        let held = if check.hold {
            let tls = if tls {
                let name = match &http.host {
                    Some(host) => ServerName::try_from(host.clone()),
                    None => Ok(ServerName::IpAddress(addr.into())),
                };
                let name = name.map_err(|_| ProbeError::Sni)?;
                Some((Arc::new(clients.tls_config(http.tls_verify)?), name))
            } else {
                None
            };
            Some(Arc::new(HttpHold::new(target, tls)))
        } else {
            None
        };
        let (key, url, host) = match (&http.host, named) {
            (Some(host), Some(named)) if tls => {
                // Connect to the member's address but send its name, for Host and SNI.
                let key = ClientKey {
                    verify: Some(http.tls_verify),
                    resolve: Some((host.clone(), target)),
                };
                (key, format!("https://{named}{}", http.path), None)
            }
            (_, named) => {
                let key = ClientKey {
                    verify: tls.then_some(http.tls_verify),
                    resolve: None,
                };
                let host = named
                    .map(|named| HeaderValue::from_str(&named))
                    .transpose()
                    .map_err(ProbeError::Host)?;
                (
                    key,
                    format!("{}://{target}{}", http.scheme, http.path),
                    host,
                )
            }
        };
        Ok(Probe::Http(Arc::new(HttpProbe {
            client: clients.get(key)?,
            url,
            host,
            expect: http.expect_status.clone(),
            expect_body: http.expect_body.as_ref().map(|b| b.as_bytes().to_vec()),
            held,
            path: http.path.clone(),
            authority,
        })))
    }

    /// What a hold of this member (`hold = true`) connects to; None for an http probe built
    /// without one.
    pub fn hold_target(&self) -> Option<hold::Target> {
        match self {
            Probe::Tcp { target, .. } => Some(hold::Target::Tcp(*target)),
            Probe::Http(http) => http.held.clone().map(hold::Target::Http),
            Probe::TcpExpect(check) => Some(hold::Target::Tcp(check.target)),
            Probe::Script(_) | Probe::Dns(_) => None,
        }
    }

    /// Takes a check's first step, where it is scheduled: a TCP connect to a member on this
    /// host is over inside the system call, and then nothing needs a task or a timer. The
    /// rest, if any, is [`Pending::finish`]ed in a task of its own. Needs no runtime; the
    /// pending part must be finished inside one.
    pub fn begin(&self) -> Begun {
        match self {
            Probe::Tcp { target, sockets } => match sockets.start(*target) {
                Start::Over(outcome) => Begun::Over(outcome.map_err(|e| describe_io(&e))),
                Start::Connecting(connecting) => Begun::Pending(Pending::Tcp(connecting)),
            },
            Probe::Http(http) => Begun::Pending(Pending::Http(Arc::clone(http))),
            Probe::TcpExpect(check) => Begun::Pending(Pending::TcpExpect(Arc::clone(check))),
            Probe::Script(check) => Begun::Pending(Pending::Script(Arc::clone(check))),
            Probe::Dns(check) => Begun::Pending(Pending::Dns(Arc::clone(check))),
        }
    }

    /// Runs the check once, both steps together; `Err` says why it failed in a few words.
    #[cfg(test)]
    async fn run(&self) -> Result<(), Failure> {
        match self.begin() {
            Begun::Over(outcome) => outcome,
            Begun::Pending(pending) => pending.finish().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::config::HttpCheck;

    fn plan(scheme: &str, host: Option<&str>, port: u16) -> CheckPlan {
        CheckPlan {
            kind: CheckKind::Http(HttpCheck {
                scheme: scheme.into(),
                path: "/health".into(),
                host: host.map(Into::into),
                expect_status: 200..=299,
                tls_verify: true,
                expect_body: None,
            }),
            port,
            interval: std::time::Duration::from_secs(1),
            timeout: std::time::Duration::from_secs(1),
            fast_interval: std::time::Duration::from_secs(1),
            down_interval: std::time::Duration::from_secs(1),
            hold: false,
            rise: 1,
            fall: 1,
        }
    }

    /// An HTTP server that answers 200 only to `GET /health` with `Host: app.example.test:{port}`.
    async fn name_based_backend() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0; 4096];
                let n = socket.read(&mut request).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&request[..n]).to_lowercase();
                let wanted = format!("host: app.example.test:{}\r\n", addr.port());
                let status = if request.starts_with("get /health ") && request.contains(&wanted) {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn an_http_check_sends_the_configured_host_to_the_members_address() {
        let backend = name_based_backend().await;
        let mut clients = Clients::default();
        let named = plan("http", Some("app.example.test"), backend.port());
        let probe = Probe::new(&named, backend, &mut clients).expect("probe");
        assert_eq!(probe.run().await, Ok(()));
        let unnamed = plan("http", None, backend.port());
        let probe = Probe::new(&unnamed, backend, &mut clients).expect("probe");
        assert_eq!(probe.run().await, Err("HTTP 404".into()));
    }

    #[tokio::test]
    async fn http_probes_share_clients_where_their_settings_allow() {
        let mut clients = Clients::default();
        for n in 1..=50u8 {
            let member = IpAddr::from([127, 0, 0, n]);
            for check in [
                plan("http", None, 80),
                plan("http", Some("app.example.test"), 8080),
                plan("https", None, 443),
            ] {
                let target = SocketAddr::new(member, check.port);
                Probe::new(&check, target, &mut clients).expect("probe");
            }
        }
        assert_eq!(clients.len(), 2, "one for plain HTTP, one for HTTPS");
        // HTTPS with a name needs that name resolved to each member: one client each.
        for n in 1..=3u8 {
            let check = plan("https", Some("app.example.test"), 443);
            let target = SocketAddr::new(IpAddr::from([127, 0, 0, n]), 443);
            Probe::new(&check, target, &mut clients).expect("probe");
        }
        assert_eq!(clients.len(), 5);
        assert_eq!(
            clients.tls.len(),
            1,
            "every HTTPS client shares one TLS configuration"
        );
    }
}
