//! The config file's TOML schema, as serde reads it: every key, its default, and its span in
//! the file (so validation can name the line of whatever is wrong).
//!
//! Only shape lives here; every rule about values is [`super::validate`]'s.

use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::Policy;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) server: RawServer,
    #[serde(default)]
    pub(super) zone: Vec<RawZone>,
    #[serde(default)]
    pub(super) service: Vec<RawService>,
    #[serde(default)]
    pub(super) notify: RawNotify,
    #[serde(default)]
    pub(super) key: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub(super) name: Spanned<String>,
    #[serde(default = "default_key_algorithm")]
    pub(super) algorithm: Spanned<String>,
    #[serde(default)]
    pub(super) secret: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) secret_file: Option<Spanned<String>>,
}

pub(super) fn default_key_algorithm() -> Spanned<String> {
    Spanned::new(0..0, "hmac-sha256".to_string())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    #[serde(default)]
    pub(super) webhook: Vec<RawWebhook>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub(super) url: Spanned<String>,
    #[serde(default = "default_webhook_timeout", with = "spanned_duration")]
    pub(super) timeout: Spanned<Duration>,
    #[serde(default = "default_webhook_retries")]
    pub(super) retries: u32,
}

pub(super) fn default_webhook_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(5))
}

/// Whether `value` was not written in the file (defaults carry an empty span).
pub(super) fn is_default<T>(value: &Spanned<T>) -> bool {
    value.span() == (0..0)
}

pub(super) fn default_webhook_retries() -> u32 {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) listen: Spanned<Vec<Spanned<String>>>,
    #[serde(default = "default_tcp_idle_timeout", with = "spanned_duration")]
    pub(super) tcp_idle_timeout: Spanned<Duration>,
    #[serde(default = "default_tcp_io_timeout", with = "spanned_duration")]
    pub(super) tcp_io_timeout: Spanned<Duration>,
    #[serde(default = "default_tcp_max_clients")]
    pub(super) tcp_max_clients: Spanned<u32>,
    #[serde(default = "default_http_max_clients")]
    pub(super) http_max_clients: Spanned<u32>,
    #[serde(default = "default_http_timeout", with = "spanned_duration")]
    pub(super) http_timeout: Spanned<Duration>,
    #[serde(default)]
    pub(super) http_hosts: Vec<Spanned<String>>,
    #[serde(default = "default_rate_limit")]
    pub(super) rate_limit: Spanned<u32>,
    #[serde(default = "default_rate_limit_slip")]
    pub(super) rate_limit_slip: Spanned<u32>,
    #[serde(default = "default_transfers_out")]
    pub(super) transfers_out: Spanned<u32>,
    #[serde(default = "default_max_scripts")]
    pub(super) max_scripts: Spanned<u32>,
    #[serde(default)]
    pub(super) identity: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) version: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) http: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) http_token: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) http_token_file: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) state_file: Option<String>,
}

pub(super) fn default_tcp_idle_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(10))
}
pub(super) fn default_tcp_io_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(2))
}
pub(super) fn default_tcp_max_clients() -> Spanned<u32> {
    Spanned::new(0..0, 1000)
}
pub(super) fn default_http_max_clients() -> Spanned<u32> {
    Spanned::new(0..0, 64)
}
pub(super) fn default_http_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(10))
}
pub(super) fn default_rate_limit() -> Spanned<u32> {
    Spanned::new(0..0, 200)
}
pub(super) fn default_max_scripts() -> Spanned<u32> {
    Spanned::new(0..0, super::DEFAULT_MAX_SCRIPTS as u32)
}
pub(super) fn default_transfers_out() -> Spanned<u32> {
    Spanned::new(0..0, 10)
}
pub(super) fn default_rate_limit_slip() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawZone {
    pub(super) origin: Spanned<String>,
    pub(super) file: Spanned<String>,
    #[serde(default)]
    pub(super) allow_transfer: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) transfer_key: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) notify: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: Spanned<String>,
    #[serde(default = "default_ttl")]
    pub(super) ttl: Spanned<u32>,
    #[serde(default = "default_policy")]
    pub(super) policy: Policy,
    #[serde(default = "default_true")]
    pub(super) failback: bool,
    #[serde(default)]
    pub(super) members: Option<Spanned<RawTier>>,
    #[serde(default)]
    pub(super) tiers: Option<Spanned<Vec<Spanned<RawTier>>>>,
    #[serde(default)]
    pub(super) max_answers: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) when_all_down: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) fallback: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default, with = "optional_spanned_duration")]
    pub(super) failback_delay: Option<Spanned<Duration>>,
    pub(super) check: Spanned<RawCheck>,
}

/// A list of members (`members`, or one of `tiers`).
pub(super) type RawTier = Vec<Spanned<RawMember>>;

/// A member: `"192.0.2.10"`, or `{ address = "192.0.2.11", weight = 3, check_address =
/// "10.0.0.11", port = 8081 }`.
pub(super) enum RawMember {
    Plain(Spanned<String>),
    Table(RawMemberTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMemberTable {
    pub(super) address: Spanned<String>,
    #[serde(default)]
    pub(super) weight: Option<Spanned<u32>>,
    #[serde(default)]
    pub(super) check_address: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
}

impl<'de> Deserialize<'de> for RawMember {
    // By hand rather than `#[serde(untagged)]`, whose error for a bad table is only "did not
    // match any variant": this way a misspelt key in a member table is named.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawMember;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an IP address, or a table with `address` (and `weight`, `check_address`, `port`)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawMember, E> {
                // The span is the enclosing Spanned's; validation uses that one.
                Ok(RawMember::Plain(Spanned::new(0..0, v.to_string())))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawMember, A::Error> {
                RawMemberTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(RawMember::Table)
            }
        }
        d.deserialize_any(Visitor)
    }
}

pub(super) fn default_ttl() -> Spanned<u32> {
    Spanned::new(0..0, 5)
}
pub(super) fn default_policy() -> Policy {
    Policy::Failover
}
pub(super) fn default_true() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawKind {
    Tcp,
    Http,
    Script,
    Dns,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCheck {
    pub(super) kind: RawKind,
    #[serde(default)]
    pub(super) port: Option<Spanned<u16>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) host: Option<Spanned<String>>,
    pub(super) scheme: Option<Spanned<String>>,
    pub(super) expect_status: Option<Spanned<RawStatus>>,
    pub(super) tls_verify: Option<Spanned<bool>>,
    pub(super) expect_body: Option<Spanned<String>>,
    pub(super) send: Option<Spanned<String>>,
    pub(super) expect: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<String>>>,
    pub(super) query: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(super) qtype: Option<Spanned<String>>,
    pub(super) expect_rcode: Option<Spanned<String>>,
    #[serde(default = "default_interval", with = "spanned_duration")]
    pub(super) interval: Spanned<Duration>,
    #[serde(default = "default_timeout", with = "spanned_duration")]
    pub(super) timeout: Spanned<Duration>,
    #[serde(default = "unset_duration", with = "spanned_duration")]
    pub(super) fast_interval: Spanned<Duration>,
    #[serde(default = "unset_duration", with = "spanned_duration")]
    pub(super) down_interval: Spanned<Duration>,
    #[serde(default)]
    pub(super) hold: bool,
    #[serde(default = "default_threshold")]
    pub(super) rise: Spanned<u32>,
    #[serde(default = "default_threshold")]
    pub(super) fall: Spanned<u32>,
}

pub(super) fn default_interval() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_secs(1))
}
/// Not given: the key takes another's value (`fast_interval` and `down_interval`: `interval`).
pub(super) fn unset_duration() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::ZERO)
}
pub(super) fn default_timeout() -> Spanned<Duration> {
    Spanned::new(0..0, Duration::from_millis(500))
}
pub(super) fn default_threshold() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

/// `expect_status = 204` or `expect_status = "200-299"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum RawStatus {
    One(u16),
    Range(String),
}

/// An optional humantime duration that keeps its position.
pub(super) mod optional_spanned_duration {
    use std::time::Duration;
    use toml::Spanned;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Spanned<Duration>>, D::Error> {
        super::spanned_duration::deserialize(d).map(Some)
    }
}

/// humantime durations ("500ms", "1s") that keep their position for error messages.
pub(super) mod spanned_duration {
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
