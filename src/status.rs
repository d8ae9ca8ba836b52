//! What `GET /status` returns: every service, what it answers now, and each member's health.
//!
//! Plain data shared by the check plane (which fills it), the API (which serves it as JSON)
//! and the `status` command (which reads it back and prints a table).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::AdminOverride;

/// The whole server's state at one instant.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// The config generation served: 1 at start, one more for every reload applied.
    #[serde(default)]
    pub generation: u64,
    /// Whether the overrides in force are saved.
    #[serde(default)]
    pub state_file: StateFileStatus,
    /// Every configured service, in config order.
    pub services: Vec<ServiceStatus>,
    /// Every NOTIFY target of every zone, with what it last did.
    #[serde(default)]
    pub notify: Vec<NotifyTargetStatus>,
}

/// What a secondary last did with a NOTIFY (RFC 1996) for one zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyTargetStatus {
    /// The zone.
    pub zone: String,
    /// The target, `IP:port`.
    pub target: String,
    /// The serial last notified.
    pub serial: u32,
    /// `sending`, `answered`, or `failed` (no answer after every try).
    pub result: String,
    /// When that happened (seconds since the epoch).
    pub at: u64,
}

/// The state file that keeps admin overrides.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StateFileStatus {
    /// Where it is.
    pub path: String,
    /// False while some override in force is not written to it yet (a restart would lose it).
    pub saved: bool,
    /// Why the last write failed, while unsaved.
    pub error: Option<String>,
    /// Where a damaged state file found at start was moved; its members were drained.
    pub damaged: Option<String>,
}

/// One service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// The service name.
    pub name: String,
    /// The policy, e.g. `failover`.
    pub policy: String,
    /// TTL of its answers.
    pub ttl: u32,
    /// The addresses answered now (A then AAAA).
    pub answering: Vec<IpAddr>,
    /// True when some family answers all its members because none is usable.
    pub failing_open: bool,
    /// What a family answers when none of its members is usable (`when_all_down`).
    #[serde(default)]
    pub when_all_down: String,
    /// The `when_all_down` mode in force now (some family has no usable member), if any.
    #[serde(default)]
    pub all_down: Option<String>,
    /// A failback held back by `failback_delay`: where answers will move, and when.
    #[serde(default)]
    pub pending_failback: Option<PendingFailback>,
    /// Members in priority order.
    pub members: Vec<MemberStatus>,
}

/// A failback waiting out `failback_delay`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingFailback {
    /// The addresses answers will move to.
    pub to: Vec<IpAddr>,
    /// When (RFC 3339, UTC), unless the member fails meanwhile.
    pub at: String,
}

/// One member of a service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberStatus {
    /// Its address.
    pub address: IpAddr,
    /// Where its check connects (`check_address` and `port`).
    #[serde(default)]
    pub check: Option<std::net::SocketAddr>,
    /// Its tier (0 first; plain members: their place in the list).
    #[serde(default)]
    pub tier: u32,
    /// Its weight (`weighted`).
    #[serde(default)]
    pub weight: u32,
    /// With `hold = true`: whether its held connection is open now (null without a hold).
    #[serde(default)]
    pub held: Option<bool>,
    /// `up`, `down` or `unknown`, from checks alone.
    pub state: String,
    /// The operator's override, if any.
    pub admin: Option<AdminOverride>,
    /// When the current state began (RFC 3339, UTC).
    pub since: String,
    /// Consecutive successful checks.
    pub consecutive_successes: u32,
    /// Consecutive failed checks.
    pub consecutive_failures: u32,
    /// The most recent check, if any has finished.
    pub last_check: Option<CheckStatus>,
}

/// One finished check.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckStatus {
    /// `ok` or `fail`.
    pub result: String,
    /// How long it took, in milliseconds.
    pub latency_ms: f64,
    /// Why it failed.
    pub error: Option<String>,
    /// When it finished (RFC 3339, UTC).
    pub at: String,
}
