//! The TOML config: the [`Plan`] the server runs, and [`load`], which reads a config file
//! (`schema`), validates it (`validate`) and completes the plan.
//!
//! Everything that can be wrong with a config or a zone file is found here, at load time, and
//! reported as `file:line: problem`; nothing downstream re-checks or fails on input. Loading is
//! pure apart from reading files, so `check`, start-up and (later) reload share it.

mod schema;
mod validate;

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::rr::{LowerName, Name};
use serde::Deserialize;

use crate::dns::acl::TransferPolicy;
use crate::dns::fast::index::Prerendered;
use crate::dns::tsig::Keys;
use crate::error::{LoadError, line_of};
use crate::zone::StaticZone;
use schema::RawConfig;
use validate::Validator;

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
    /// Who may transfer each zone (`transfers[z]` for `zones[z]`).
    pub transfers: Vec<Arc<TransferPolicy>>,
    /// The TSIG keys.
    pub keys: Arc<Keys>,
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
    /// Most zone transfers sent at once (BIND's `transfers-out`).
    pub transfers_out: usize,
    /// Most script checks running at once (`max_scripts`).
    pub max_scripts: usize,
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
    /// How long a recovered earlier member must stay up before answers move back to it
    /// (`failover` with `failback`; zero: at once).
    pub failback_delay: Duration,
    /// Most addresses one answer holds (`all`, and a tier of `failover`).
    pub max_answers: usize,
    /// What a family answers when none of its members is usable.
    pub when_all_down: WhenAllDown,
    /// The answer when every member is down and `when_all_down = "fallback"`.
    pub fallback: Vec<IpAddr>,
    /// Members in priority order (primary first; with `tiers`, tier by tier).
    pub members: Vec<MemberPlan>,
    /// How each member is checked.
    pub check: CheckPlan,
}

impl ServicePlan {
    /// Whether `addr` is one of the service's members.
    pub fn has_member(&self, addr: IpAddr) -> bool {
        self.members.iter().any(|m| m.address == addr)
    }
}

/// One member of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberPlan {
    /// The address answered.
    pub address: IpAddr,
    /// Its share of answers under `weighted` (default 1; 0: only when every weight is 0).
    pub weight: u32,
    /// Its tier (`tiers`): 0 for the first. Plain `members` each have a tier of their own.
    pub tier: u32,
    /// Where its check connects: `check_address` and `port`, by default the address answered
    /// and the check's port.
    pub check_target: SocketAddr,
}

/// From member health to answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// The first tier with a healthy member, per address family: with plain `members`, the
    /// first healthy member in list order.
    Failover,
    /// Every healthy member (up to `max_answers`).
    All,
    /// One healthy member per response, drawn in proportion to its weight.
    Weighted,
}

impl Policy {
    /// The name the config and `/status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Failover => "failover",
            Policy::All => "all",
            Policy::Weighted => "weighted",
        }
    }
}

/// What a family answers when none of its members is usable (`when_all_down`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WhenAllDown {
    /// Every member, as if healthy (fail open): something that may work beats nothing.
    AnswerAll,
    /// The service's `fallback` addresses of that family (none: as `answer-none`).
    Fallback,
    /// No address: NODATA.
    AnswerNone,
}

impl WhenAllDown {
    /// The name the config and `/status` use.
    pub fn as_str(self) -> &'static str {
        match self {
            WhenAllDown::AnswerAll => "answer-all",
            WhenAllDown::Fallback => "fallback",
            WhenAllDown::AnswerNone => "answer-none",
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
    /// Time between checks while a member is in doubt (after a failure, on its way up):
    /// HAProxy's `fastinter`. Defaults to `interval`.
    pub fast_interval: Duration,
    /// Time between checks while a member is down: HAProxy's `downinter`. Defaults to
    /// `interval`.
    pub down_interval: Duration,
    /// Keep one connection open to each member between checks; its end puts the member in
    /// doubt, checked at once (`hold = true`).
    pub hold: bool,
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
    /// Healthy when, connected, writing `send` (if any) brings a reply containing `expect`
    /// (HAProxy's `tcp-check send` / `expect string`).
    TcpExpect {
        /// Written once connected.
        send: Option<String>,
        /// Looked for in what the member sends back.
        expect: String,
    },
    /// Healthy when an HTTP GET returns an expected status.
    Http(HttpCheck),
    /// Healthy when a command exits with status 0.
    Script(ScriptCheck),
    /// Healthy when a DNS query is answered with the expected response code.
    Dns(DnsCheck),
}

/// Script check settings (`kind = "script"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptCheck {
    /// The program and its arguments, `{address}` and `{port}` replaced per member; run
    /// directly, never through a shell.
    pub command: Vec<String>,
}

/// DNS check settings (`kind = "dns"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// The name asked.
    pub query: Name,
    /// The type asked (default SOA).
    pub qtype: hickory_proto::rr::RecordType,
    /// The response code that counts as healthy (default NOERROR).
    pub expect_rcode: hickory_proto::op::ResponseCode,
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
    /// A string the first 64 KiB of the body must contain, if set.
    pub expect_body: Option<String>,
}

/// `[server] max_scripts` when not given: script checks running at once.
pub const DEFAULT_MAX_SCRIPTS: usize = 16;

/// Shortest check interval: 100 checks a second of one member is plenty, and below this a
/// typo (`"1ns"`) would make the schedule check as fast as it can.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// Shortest check timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Longest interval, timeout or other duration in the config: a day. Beyond it a typo
/// (`"1000000000years"`) would mean a member never checked.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads the config at `path` and every zone it names, validates all of it, then adds each
/// service name to its zone and builds the zones' wire indexes.
pub fn load(path: &Path) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| LoadError::in_file(path, format!("cannot read config: {e}")))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        LoadError::at(path, line, e.message().trim_end().to_string())
    })?;
    let valid = Validator { path, text: &text }.validate(raw)?;
    let mut zones = valid.zones;
    for service in &valid.services {
        zones[service.zone].add_name(&LowerName::new(&service.name));
    }
    let indexes = index_zones(&zones, &valid.services);
    Ok(Plan {
        path: path.to_path_buf(),
        server: valid.server,
        zones: zones.into_iter().map(Arc::new).collect(),
        indexes,
        transfers: valid.transfers.into_iter().map(Arc::new).collect(),
        keys: Arc::new(valid.keys),
        services: valid.services,
        webhooks: valid.webhooks,
    })
}

/// Each zone's static answers in wire form, for the query path's fast path.
fn index_zones(zones: &[StaticZone], services: &[ServicePlan]) -> Vec<Arc<Prerendered>> {
    zones
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
        .collect()
}

#[cfg(test)]
mod tests;
