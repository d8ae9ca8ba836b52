//! Prometheus metrics: one registry that the query path, the check plane and the API update,
//! rendered in the text exposition format by `GET /metrics`.
//!
//! Every update is a lock-free atomic add once its label set exists; label sets on the query
//! path are `&'static str`, so counting a query never allocates.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of a DNS query count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    /// Response code sent, e.g. `NOERROR`, `NXDOMAIN`.
    pub rcode: &'static str,
    /// Question type, e.g. `A`; `none` for a query without a question.
    pub qtype: &'static str,
    /// `udp` or `tcp`.
    pub transport: &'static str,
}

/// Labels of a check count.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CheckLabels {
    /// Service name.
    pub service: String,
    /// Member address.
    pub member: String,
    /// `ok` or `fail`.
    pub result: &'static str,
}

/// Labels of a member state gauge: one series per state, 1 for the current one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MemberLabels {
    /// Service name.
    pub service: String,
    /// Member address.
    pub member: String,
    /// `up`, `down` or `unknown`.
    pub state: &'static str,
}

/// Labels naming a service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// Service name.
    pub service: String,
}

/// Labels naming a zone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// Zone apex.
    pub zone: String,
}

/// Labels of an outcome count (reloads, webhook deliveries).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// DNS queries answered, by rcode, qtype and transport.
    pub queries: Family<QueryLabels, Counter>,
    /// Time from a request's decoding to its response being handed to the socket.
    pub response_seconds: Histogram,
    /// Health checks run, by service, member and result.
    pub checks: Family<CheckLabels, Counter>,
    /// Time a check took (successful ones; failures are often timeouts).
    pub check_seconds: Histogram,
    /// Member state, one-hot over `up`/`down`/`unknown`.
    pub member_state: Family<MemberLabels, Gauge>,
    /// Times a service's answer changed: failovers, failbacks, overrides, reloads.
    pub failovers: Family<ServiceLabels, Counter>,
    /// Config reloads, by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// Current SOA serial per zone.
    pub zone_serial: Family<ZoneLabels, Gauge>,
    /// Webhook deliveries, by result (after retries).
    pub webhooks: Family<ResultLabels, Counter>,
}

impl Metrics {
    /// A registry with every metric registered and at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("failover_dns");
        let queries = Family::default();
        registry.register("queries", "DNS queries answered", queries.clone());
        // 10 µs to about 2.6 s.
        let response_seconds = Histogram::new(exponential_buckets(0.000_01, 4.0, 10));
        registry.register(
            "response_seconds",
            "Time to answer a DNS query, from decoding to sending",
            response_seconds.clone(),
        );
        let checks = Family::default();
        registry.register("checks", "Health checks run", checks.clone());
        // 100 µs to about 26 s.
        let check_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 10));
        registry.register(
            "check_seconds",
            "Time a successful health check took",
            check_seconds.clone(),
        );
        let member_state = Family::default();
        registry.register(
            "member_state",
            "Member health state (1 for the current state)",
            member_state.clone(),
        );
        let failovers = Family::default();
        registry.register(
            "failovers",
            "Times a service's answer changed (failover, failback, override, reload)",
            failovers.clone(),
        );
        let reloads = Family::default();
        registry.register("config_reloads", "Config reloads", reloads.clone());
        let zone_serial = Family::default();
        registry.register(
            "zone_serial",
            "Current SOA serial of each zone",
            zone_serial.clone(),
        );
        let webhooks = Family::default();
        registry.register(
            "webhook_deliveries",
            "Failover event webhook deliveries, after retries",
            webhooks.clone(),
        );
        Self {
            registry,
            queries,
            response_seconds,
            checks,
            check_seconds,
            member_state,
            failovers,
            reloads,
            zone_serial,
            webhooks,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
