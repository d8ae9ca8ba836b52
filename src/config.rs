//! The TOML config: its schema, and validation into a [`Plan`].
//!
//! Everything that can be wrong with a config or a zone file is found here, at load time, and
//! reported as `file:line: problem`; nothing downstream re-checks or fails on input. Loading is
//! pure apart from reading files, so `check`, start-up and (later) reload share it.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::{Range, RangeInclusive};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name, RecordType};
use serde::Deserialize;
use toml::Spanned;

use crate::dns::fast::index::Prerendered;
use crate::error::{LoadError, line_of};
use crate::zone::{self, StaticZone};

/// The validated config: what the server runs, with zones already parsed.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The config file this plan came from.
    pub path: PathBuf,
    /// Listener settings.
    pub server: ServerPlan,
    /// Zones, in config order, with every service name already added to its zone's names.
    pub zones: Vec<Arc<StaticZone>>,
    /// Each zone's static answers in wire form (`indexes[z]` for `zones[z]`), built once its
    /// service names are known.
    pub indexes: Vec<Arc<Prerendered>>,
    /// Failover services, in config order.
    pub services: Vec<ServicePlan>,
    /// Where answer changes are POSTed.
    pub webhooks: Vec<WebhookPlan>,
}

/// Where and how DNS is served.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    /// Every address is served over both UDP and TCP.
    pub listen: Vec<SocketAddr>,
    /// How long an idle TCP client may hold its connection.
    pub tcp_idle_timeout: Duration,
    /// How long one TCP message may take to arrive, from its first byte, and a response to be
    /// written (Knot's `tcp-io-timeout`).
    pub tcp_io_timeout: Duration,
    /// Most DNS TCP connections open at once; when full, the oldest idle one is closed.
    pub tcp_max_clients: usize,
    /// Most API connections open at once.
    pub http_max_clients: usize,
    /// How long an API client may take to send a request's head, counted from the
    /// connection opening or the previous response (so also the keep-alive idle limit).
    pub http_timeout: Duration,
    /// Host names the API may be reached under besides its own address (the `Host` header).
    pub http_hosts: Vec<String>,
    /// UDP responses per second per client network (/24, /56); 0 turns the limit off.
    pub rate_limit: u32,
    /// Every Nth limited response is sent truncated instead of dropped; 0 drops them all.
    pub rate_limit_slip: u32,
    /// Answer to CHAOS TXT `id.server.`/`hostname.bind.`, so an operator can tell which
    /// anycast or redundant node answered; empty means refused.
    pub identity: String,
    /// Answer to CHAOS TXT `version.server.`/`version.bind.`; empty means refused.
    pub version: String,
    /// Where the HTTP API listens; no API when absent.
    pub http: Option<SocketAddr>,
    /// The bearer token every non-GET API request must carry, when set.
    pub http_token: Option<String>,
    /// Where admin overrides are kept across restarts.
    pub state_file: PathBuf,
}

/// Where failover events are POSTed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookPlan {
    /// An http or https URL.
    pub url: String,
    /// Longest one delivery attempt may take.
    pub timeout: Duration,
    /// Attempts after the first failed one.
    pub retries: u32,
}

/// One service name whose addresses follow member health.
#[derive(Debug, Clone)]
pub struct ServicePlan {
    /// The name answered, as configured (case preserved).
    pub name: Name,
    /// Index into [`Plan::zones`] of the zone the name lives in.
    pub zone: usize,
    /// TTL of the A/AAAA answers: short, so resolvers come back soon after a failover.
    pub ttl: u32,
    /// How healthy members become answers.
    pub policy: Policy,
    /// Whether the answer moves back to an earlier member when it recovers.
    pub failback: bool,
    /// Member addresses, in priority order (primary first).
    pub members: Vec<IpAddr>,
    /// How each member is checked.
    pub check: CheckPlan,
}

/// From member health to answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The first healthy member, in list order, per address family.
    Failover,
}

impl Policy {
    /// The name the config and `/status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Failover => "failover",
        }
    }
}

/// A health check applied to every member of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckPlan {
    /// What a check does.
    pub kind: CheckKind,
    /// The port checked on each member's address.
    pub port: u16,
    /// Time between the starts of two checks of one member.
    pub interval: Duration,
    /// Longest a single check may take before it counts as failed.
    pub timeout: Duration,
    /// Consecutive successes that bring a down member up.
    pub rise: u32,
    /// Consecutive failures that bring an up member down.
    pub fall: u32,
}

/// The kinds of health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckKind {
    /// Healthy when a TCP connection to the port is accepted.
    Tcp,
    /// Healthy when an HTTP GET returns an expected status.
    Http(HttpCheck),
}

/// HTTP check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCheck {
    /// `http` or `https`.
    pub scheme: String,
    /// Request path, starting with `/`.
    pub path: String,
    /// Host header (and TLS server name); the member's address when absent.
    pub host: Option<String>,
    /// Statuses that count as healthy.
    pub expect_status: RangeInclusive<u16>,
    /// Whether an https check verifies the server's certificate.
    pub tls_verify: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: RawServer,
    #[serde(default)]
    zone: Vec<RawZone>,
    #[serde(default)]
    service: Vec<RawService>,
    #[serde(default)]
    notify: RawNotify,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    #[serde(default)]
    webhook: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    url: Spanned<String>,
    #[serde(default = "default_webhook_timeout", with = "spanned_duration")]
    timeout: Spanned<Duration>,
    #[serde(default = "default_webhook_retries")]
    retries: u32,
}

fn default_webhook_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(5))
}

/// Whether `value` was not written in the file (defaults carry an empty span).
fn is_default<T>(value: &Spanned<T>) -> bool {
    value.span() == (0..0)
}

fn default_webhook_retries() -> u32 {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: Spanned<Vec<Spanned<String>>>,
    #[serde(default = "default_tcp_idle_timeout", with = "spanned_duration")]
    tcp_idle_timeout: Spanned<Duration>,
    #[serde(default = "default_tcp_io_timeout", with = "spanned_duration")]
    tcp_io_timeout: Spanned<Duration>,
    #[serde(default = "default_tcp_max_clients")]
    tcp_max_clients: Spanned<u32>,
    #[serde(default = "default_http_max_clients")]
    http_max_clients: Spanned<u32>,
    #[serde(default = "default_http_timeout", with = "spanned_duration")]
    http_timeout: Spanned<Duration>,
    #[serde(default)]
    http_hosts: Vec<Spanned<String>>,
    #[serde(default = "default_rate_limit")]
    rate_limit: Spanned<u32>,
    #[serde(default = "default_rate_limit_slip")]
    rate_limit_slip: Spanned<u32>,
    #[serde(default)]
    identity: Option<Spanned<String>>,
    #[serde(default)]
    version: Option<Spanned<String>>,
    #[serde(default)]
    http: Option<Spanned<String>>,
    #[serde(default)]
    http_token: Option<Spanned<String>>,
    #[serde(default)]
    http_token_file: Option<Spanned<String>>,
    #[serde(default)]
    state_file: Option<String>,
}

fn default_tcp_idle_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(10))
}
fn default_tcp_io_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(2))
}
fn default_tcp_max_clients() -> Spanned<u32> {
    Spanned::new(0..0, 1000)
}
fn default_http_max_clients() -> Spanned<u32> {
    Spanned::new(0..0, 64)
}
fn default_http_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(10))
}
fn default_rate_limit() -> Spanned<u32> {
    Spanned::new(0..0, 200)
}
fn default_rate_limit_slip() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    origin: Spanned<String>,
    file: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    #[serde(default = "default_ttl")]
    ttl: Spanned<u32>,
    #[serde(default = "default_policy")]
    policy: Policy,
    #[serde(default = "default_true")]
    failback: bool,
    members: Spanned<Vec<Spanned<String>>>,
    check: Spanned<RawCheck>,
}

fn default_ttl() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}
fn default_policy() -> Policy {
    Policy::Failover
}
fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Tcp,
    Http,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheck {
    kind: RawKind,
    port: Spanned<u16>,
    path: Option<Spanned<String>>,
    host: Option<Spanned<String>>,
    scheme: Option<Spanned<String>>,
    expect_status: Option<Spanned<RawStatus>>,
    tls_verify: Option<Spanned<bool>>,
    #[serde(default = "default_interval", with = "spanned_duration")]
    interval: Spanned<Duration>,
    #[serde(default = "default_timeout", with = "spanned_duration")]
    timeout: Spanned<Duration>,
    #[serde(default = "default_threshold")]
    rise: Spanned<u32>,
    #[serde(default = "default_threshold")]
    fall: Spanned<u32>,
}

fn default_interval() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(1))
}
fn default_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_millis(500))
}
fn default_threshold() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

/// `expect_status = 204` or `expect_status = "200-299"`.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawStatus {
    One(u16),
    Range(String),
}

/// humantime durations ("500ms", "1s") that keep their position for error messages.
mod spanned_duration {
    use std::time::Duration;
    use toml::Spanned;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Spanned<Duration>, D::Error> {
        let text: Spanned<String> = serde::Deserialize::deserialize(d)?;
        let span = text.span();
        humantime::parse_duration(text.get_ref())
            .map(|duration| Spanned::new(span, duration))
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "invalid duration {:?}: {e} (write e.g. \"500ms\" or \"2s\")",
                    text.get_ref()
                ))
            })
    }
}

/// Shortest check interval: 100 checks a second of one member is plenty, and below this a
/// typo (`"1ns"`) would make the schedule check as fast as it can.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Shortest check timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Longest interval, timeout or other duration in the config: a day. Beyond it a typo
/// (`"1000000000years"`) would mean a member never checked.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads the config at `path` and every zone it names, and validates all of it.
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::in_file(path, format!("cannot read config: {e}")))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        LoadError::at(path, line, e.message().trim_end().to_string())
    })?;
    Validator { path, text: &text }.plan(raw)
}

/// Turns the raw config into a plan; knows the text so each error can name its line.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn error(&self, span: Range<usize>, message: impl Into<String>) -> LoadError {
        LoadError::at(self.path, line_of(self.text, span.start), message)
    }

    fn plan(&self, raw: RawConfig) -> Result<Plan, LoadError> {
        let server = self.server(raw.server)?;
        let mut zones = Vec::new();
        for raw_zone in raw.zone {
            zones.push(self.zone(raw_zone, &zones)?);
        }
        let mut services: Vec<ServicePlan> = Vec::with_capacity(raw.service.len());
        // Names seen so far: a set, so 100,000 services validate in linear time.
        let mut names: HashSet<LowerName> = HashSet::with_capacity(raw.service.len());
        for raw_service in raw.service {
            let service = self.service(raw_service, &mut zones, &mut names)?;
            services.push(service);
        }
        let indexes = zones
            .iter()
            .enumerate()
            .map(|(z, zone)| {
                let names: HashSet<LowerName> = services
                    .iter()
                    .filter(|service| service.zone == z)
                    .map(|service| LowerName::new(&service.name))
                    .collect();
                Arc::new(Prerendered::build(zone, &names))
            })
            .collect();
        let webhooks = raw
            .notify
            .webhook
            .into_iter()
            .map(|hook| self.webhook(hook))
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            path: self.path.to_path_buf(),
            server,
            zones: zones.into_iter().map(Arc::new).collect(),
            indexes,
            services,
            webhooks,
        })
    }

    fn webhook(&self, raw: RawWebhook) -> Result<WebhookPlan, LoadError> {
        let url = raw.url.get_ref();
        let valid = reqwest::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
        if !valid {
            return Err(self.error(
                raw.url.span(),
                format!(
                    "invalid webhook url {url:?}; write e.g. \"https://alerts.example.com/hook\""
                ),
            ));
        }
        let timeout = self.bounded(&raw.timeout, "webhook timeout", MIN_TIMEOUT..=MAX_DURATION)?;
        Ok(WebhookPlan {
            url: url.clone(),
            timeout,
            retries: raw.retries,
        })
    }

    fn server(&self, raw: RawServer) -> Result<ServerPlan, LoadError> {
        if raw.listen.get_ref().is_empty() {
            return Err(self.error(
                raw.listen.span(),
                "`listen` is empty; give at least one address, e.g. [\"127.0.0.1:5300\"]",
            ));
        }
        let mut listen = Vec::new();
        for addr in raw.listen.into_inner() {
            let parsed: SocketAddr = addr.get_ref().parse().map_err(|_| {
                self.error(addr.span(), format!("invalid listen address {:?}; write IP:PORT, e.g. \"127.0.0.1:5300\" or \"[::1]:5300\"", addr.get_ref()))
            })?;
            if listen.contains(&parsed) {
                return Err(self.error(
                    addr.span(),
                    format!("listen address {parsed} is given twice"),
                ));
            }
            listen.push(parsed);
        }
        let txt = |value: Option<Spanned<String>>, default: String, key: &str| {
            let Some(value) = value else {
                return Ok(default);
            };
            if value.get_ref().len() > 255 {
                return Err(self.error(
                    value.span(),
                    format!("{key} is longer than the 255 bytes a TXT string holds"),
                ));
            }
            Ok(value.into_inner())
        };
        let identity = txt(raw.identity, String::new(), "identity")?;
        let version = txt(
            raw.version,
            format!("failover-dns {}", env!("CARGO_PKG_VERSION")),
            "version",
        )?;
        let http = match &raw.http {
            None => None,
            Some(addr) => Some(addr.get_ref().parse::<SocketAddr>().map_err(|_| {
                self.error(
                    addr.span(),
                    format!(
                        "invalid http address {:?}; write IP:PORT, e.g. \"127.0.0.1:8053\"",
                        addr.get_ref()
                    ),
                )
            })?),
        };
        let http_token = match (raw.http_token, raw.http_token_file) {
            (Some(_), Some(file)) => {
                return Err(self.error(file.span(), "set http_token or http_token_file, not both"));
            }
            (Some(token), None) => Some(token),
            (None, Some(file)) => {
                let path = self.relative_path(file.get_ref());
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    self.error(
                        file.span(),
                        format!("cannot read http_token_file {}: {e}", path.display()),
                    )
                })?;
                Some(Spanned::new(file.span(), text.trim().to_string()))
            }
            (None, None) => None,
        };
        if let Some(token) = &http_token
            && token.get_ref().is_empty()
        {
            return Err(self.error(token.span(), "the http token is empty"));
        }
        if let (Some(addr), Some(raw_addr), None) = (http, &raw.http, &http_token)
            && !addr.ip().is_loopback()
        {
            return Err(self.error(
                raw_addr.span(),
                format!("http = {addr} is not a loopback address, so set http_token or http_token_file: without a token anyone who reaches it could drain members or reload the config"),
            ));
        }
        let state_file = self.relative_path(
            raw.state_file
                .as_deref()
                .unwrap_or("failover-dns.state.json"),
        );
        let tcp_idle_timeout = self.bounded(
            &raw.tcp_idle_timeout,
            "tcp_idle_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let tcp_io_timeout = self.bounded(
            &raw.tcp_io_timeout,
            "tcp_io_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let http_timeout = self.bounded(
            &raw.http_timeout,
            "http_timeout",
            MIN_TIMEOUT..=MAX_DURATION,
        )?;
        let count = |raw: &Spanned<u32>, key: &str, range: RangeInclusive<u32>| {
            if range.contains(raw.get_ref()) {
                return Ok(*raw.get_ref());
            }
            Err(self.error(
                raw.span(),
                format!(
                    "{key} {} is out of range {}..={}",
                    raw.get_ref(),
                    range.start(),
                    range.end()
                ),
            ))
        };
        let tcp_max_clients = count(&raw.tcp_max_clients, "tcp_max_clients", 1..=1_000_000)?;
        let http_max_clients = count(&raw.http_max_clients, "http_max_clients", 1..=10_000)?;
        let rate_limit = count(&raw.rate_limit, "rate_limit", 0..=10_000_000)?;
        let rate_limit_slip = count(&raw.rate_limit_slip, "rate_limit_slip", 0..=10)?;
        let mut http_hosts = Vec::new();
        for host in raw.http_hosts {
            let name = host.get_ref().trim_end_matches('.').to_ascii_lowercase();
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !valid {
                return Err(self.error(
                    host.span(),
                    format!(
                        "http_hosts entry {:?} is not a host name; write the name clients use, e.g. \"fdns.example.net\"",
                        host.get_ref()
                    ),
                ));
            }
            http_hosts.push(name);
        }
        Ok(ServerPlan {
            listen,
            tcp_idle_timeout,
            tcp_io_timeout,
            tcp_max_clients: tcp_max_clients as usize,
            http_max_clients: http_max_clients as usize,
            http_timeout,
            http_hosts,
            rate_limit,
            rate_limit_slip,
            identity,
            version,
            http,
            http_token: http_token.map(Spanned::into_inner),
            state_file,
        })
    }

    fn zone(&self, raw: RawZone, earlier: &[StaticZone]) -> Result<StaticZone, LoadError> {
        let origin = self.fqdn(&raw.origin, "zone origin")?;
        if earlier
            .iter()
            .any(|z| z.origin_key == LowerName::new(&origin))
        {
            return Err(self.error(
                raw.origin.span(),
                format!("zone {origin} is configured twice"),
            ));
        }
        let file = self.relative_path(raw.file.get_ref());
        let problem = match std::fs::metadata(&file) {
            Err(_) => Some("does not exist (relative paths are relative to the config file)"),
            Ok(metadata) if !metadata.is_file() => Some(
                "is not a regular file (a device, FIFO or directory); zone files must be regular files",
            ),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            return Err(self.error(
                raw.file.span(),
                format!("zone file {} {problem}", file.display()),
            ));
        }
        zone::load(&file, &origin)
    }

    fn service(
        &self,
        raw: RawService,
        zones: &mut [StaticZone],
        names: &mut HashSet<LowerName>,
    ) -> Result<ServicePlan, LoadError> {
        let name = self.fqdn(&raw.name, "service name")?;
        let key = LowerName::new(&name);
        let span = raw.name.span();
        if !names.insert(key.clone()) {
            return Err(self.error(span, format!("service {name} is configured twice")));
        }
        let zone_index = zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin_key.zone_of(&key))
            .max_by_key(|(_, z)| z.origin_key.num_labels())
            .map(|(i, _)| i)
            .ok_or_else(|| self.error(span.clone(), format!("service {name} is not inside any configured zone; add a [[zone]] for its parent or fix the name")))?;
        let zone = &mut zones[zone_index];
        if let Some(cut) = zone.enclosing_cut(&key) {
            return Err(self.error(span, format!("service {name} is at or below the delegation {cut}, which this server does not answer for")));
        }
        if let Some(node) = zone.nodes.get(&key) {
            for rtype in [RecordType::A, RecordType::AAAA, RecordType::CNAME] {
                if node.rrset(rtype).is_some() {
                    return Err(self.error(span, format!("service {name} clashes with the static {rtype} records for it in the zone file; remove them from the zone or rename the service")));
                }
            }
        }
        if !(1..=i32::MAX as u32).contains(raw.ttl.get_ref()) {
            return Err(self.error(
                raw.ttl.span(),
                format!("ttl {} is out of range 1..=2147483647", raw.ttl.get_ref()),
            ));
        }

        let members_span = raw.members.span();
        let mut members = Vec::new();
        for member in raw.members.into_inner() {
            let addr: IpAddr = member.get_ref().parse().map_err(|_| {
                self.error(member.span(), format!("member {:?} is not an IP address; members are IPv4 or IPv6 addresses, e.g. \"192.0.2.10\"", member.get_ref()))
            })?;
            if members.contains(&addr) {
                return Err(self.error(member.span(), format!("member {addr} is listed twice")));
            }
            members.push(addr);
        }
        if members.is_empty() {
            return Err(self.error(
                members_span,
                format!("service {name} has no members; list the primary first, then standbys"),
            ));
        }

        let check = self.check(raw.check.into_inner())?;
        zone.add_name(&key);
        Ok(ServicePlan {
            name,
            zone: zone_index,
            ttl: raw.ttl.into_inner(),
            policy: raw.policy,
            failback: raw.failback,
            members,
            check,
        })
    }

    fn check(&self, raw: RawCheck) -> Result<CheckPlan, LoadError> {
        if *raw.port.get_ref() == 0 {
            return Err(self.error(raw.port.span(), "check port must be 1..=65535"));
        }
        let kind = match raw.kind {
            RawKind::Tcp => {
                let http_only = [
                    raw.path.as_ref().map(|s| ("path", s.span())),
                    raw.host.as_ref().map(|s| ("host", s.span())),
                    raw.scheme.as_ref().map(|s| ("scheme", s.span())),
                    raw.expect_status
                        .as_ref()
                        .map(|s| ("expect_status", s.span())),
                    raw.tls_verify.as_ref().map(|s| ("tls_verify", s.span())),
                ];
                if let Some((key, span)) = http_only.into_iter().flatten().next() {
                    return Err(self.error(
                        span,
                        format!("`{key}` applies only to kind = \"http\" checks"),
                    ));
                }
                CheckKind::Tcp
            }
            RawKind::Http => CheckKind::Http(self.http_check(&raw)?),
        };
        let interval =
            self.bounded(&raw.interval, "check interval", MIN_INTERVAL..=MAX_DURATION)?;
        let timeout = self.bounded(&raw.timeout, "check timeout", MIN_TIMEOUT..=MAX_DURATION)?;
        if timeout > interval {
            // A defaulted timeout has no line of its own: blame the interval that undercuts it.
            let error = if is_default(&raw.timeout) {
                self.error(
                    raw.interval.span(),
                    format!(
                        "timeout defaults to {}, which is above interval {}; set timeout to at most the interval",
                        humantime::format_duration(timeout),
                        humantime::format_duration(interval)
                    ),
                )
            } else {
                self.error(
                    raw.timeout.span(),
                    format!(
                        "check timeout must be at most the interval ({})",
                        humantime::format_duration(interval)
                    ),
                )
            };
            return Err(error);
        }
        for threshold in [&raw.rise, &raw.fall] {
            if !(1..=1000).contains(threshold.get_ref()) {
                return Err(self.error(threshold.span(), "rise and fall must be 1..=1000"));
            }
        }
        Ok(CheckPlan {
            kind,
            port: raw.port.into_inner(),
            interval,
            timeout,
            rise: raw.rise.into_inner(),
            fall: raw.fall.into_inner(),
        })
    }

    fn http_check(&self, raw: &RawCheck) -> Result<HttpCheck, LoadError> {
        let scheme = match &raw.scheme {
            None => "http".to_string(),
            Some(s) if s.get_ref() == "http" || s.get_ref() == "https" => s.get_ref().clone(),
            Some(s) => {
                return Err(self.error(
                    s.span(),
                    format!("scheme {:?} is not \"http\" or \"https\"", s.get_ref()),
                ));
            }
        };
        let path = match &raw.path {
            None => "/".to_string(),
            Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
            Some(p) => {
                return Err(self.error(
                    p.span(),
                    format!("path {:?} must start with '/'", p.get_ref()),
                ));
            }
        };
        let host = match &raw.host {
            None => None,
            Some(h) if !h.get_ref().is_empty() && !h.get_ref().contains(['/', ' ']) => {
                Some(h.get_ref().clone())
            }
            Some(h) => {
                return Err(self.error(
                    h.span(),
                    format!("host {:?} is not a host name", h.get_ref()),
                ));
            }
        };
        let expect_status = match &raw.expect_status {
            None => 200..=399,
            Some(s) => self.status_range(s)?,
        };
        Ok(HttpCheck {
            scheme,
            path,
            host,
            expect_status,
            tls_verify: raw.tls_verify.as_ref().is_none_or(|v| *v.get_ref()),
        })
    }

    fn status_range(&self, raw: &Spanned<RawStatus>) -> Result<RangeInclusive<u16>, LoadError> {
        let bad = || {
            self.error(raw.span(), "expect_status must be a status like 200 or a range like \"200-299\" within 100..=599")
        };
        let (low, high) = match raw.get_ref() {
            RawStatus::One(code) => (*code, *code),
            RawStatus::Range(text) => {
                let (low, high) = text.split_once('-').unwrap_or((text, text));
                let low = low.trim().parse().map_err(|_| bad())?;
                let high = high.trim().parse().map_err(|_| bad())?;
                (low, high)
            }
        };
        if !(100..=599).contains(&low) || !(low..=599).contains(&high) {
            return Err(bad());
        }
        Ok(low..=high)
    }

    /// `raw`'s duration, if it lies in `range`; else an error naming `what` and the range.
    fn bounded(
        &self,
        raw: &Spanned<Duration>,
        what: &str,
        range: RangeInclusive<Duration>,
    ) -> Result<Duration, LoadError> {
        let value = *raw.get_ref();
        if range.contains(&value) {
            return Ok(value);
        }
        Err(self.error(
            raw.span(),
            format!(
                "{what} {} is out of range {}..={}",
                humantime::format_duration(value),
                humantime::format_duration(*range.start()),
                humantime::format_duration(*range.end())
            ),
        ))
    }

    fn fqdn(&self, raw: &Spanned<String>, what: &str) -> Result<Name, LoadError> {
        let mut name = Name::from_ascii(raw.get_ref()).map_err(|e| {
            self.error(
                raw.span(),
                format!("{what} {:?} is not a valid domain name: {e}", raw.get_ref()),
            )
        })?;
        if name.is_root() || raw.get_ref().is_empty() {
            return Err(self.error(raw.span(), format!("{what} must not be the root")));
        }
        name.set_fqdn(true);
        Ok(name)
    }

    fn relative_path(&self, file: &str) -> PathBuf {
        let file = Path::new(file);
        if file.is_absolute() {
            return file.to_path_buf();
        }
        self.path.parent().unwrap_or(Path::new(".")).join(file)
    }
}

#[cfg(test)]
mod tests {
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
}
