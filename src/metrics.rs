//! Prometheus metrics: one registry that the query path, the check plane and the API update,
//! rendered in the text exposition format by `GET /metrics`.
//!
//! Every update is a lock-free atomic add once its label set exists; label sets on the query
//! path are `&'static str`, so counting a query never allocates. Per-member series live in a
//! [`MemberTable`] that the check plane replaces on reload and that is rendered at scrape time.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use arc_swap::ArcSwap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
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

/// Labels naming a service.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabels {
    /// Service name.
    pub service: String,
}

/// Labels naming a service, an address family and a `when_all_down` mode.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AllDownLabels {
    /// Service name.
    pub service: String,
    /// `A` or `AAAA`.
    pub family: String,
    /// `answer-all`, `fallback` or `answer-none`.
    pub mode: String,
}

/// Labels naming a zone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ZoneLabels {
    /// Zone apex.
    pub zone: String,
}

/// Labels naming a zone and one of its NOTIFY targets.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NotifyLabels {
    /// Zone apex.
    pub zone: String,
    /// The secondary, `IP:port`.
    pub target: String,
}

/// Labels of an outcome count (reloads, webhook deliveries).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `ok` or `error`.
    pub result: &'static str,
}

/// Labels saying why something was dropped or limited.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// A fixed word, e.g. `evicted`, `refused`, `message_timeout`.
    pub reason: &'static str,
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    /// DNS queries answered, by rcode, qtype and transport.
    pub queries: Family<QueryLabels, Counter>,
    /// Time from a request's decoding to its response being handed to the socket.
    pub response_seconds: Histogram,
    /// Per-member check counts and states: `checks_total` and `member_state`.
    pub members: Arc<MemberTable>,
    /// Time a check took (successful ones; failures are often timeouts).
    pub check_seconds: Histogram,
    /// Times a service's answer changed: failovers, failbacks, overrides, reloads.
    pub failovers: Family<ServiceLabels, Counter>,
    /// Times a service's family found no usable member, by the `when_all_down` mode then in
    /// force.
    pub all_down: Family<AllDownLabels, Counter>,
    /// Config reloads, by result.
    pub reloads: Family<ResultLabels, Counter>,
    /// Current SOA serial per zone.
    pub zone_serial: Family<ZoneLabels, Gauge>,
    /// Webhook deliveries, by result (after retries).
    pub webhooks: Family<ResultLabels, Counter>,
    /// Zone transfer requests answered, by what was sent (`AXFR`, `IXFR difference`, …) or
    /// `refused`.
    pub transfers: Family<ReasonLabels, Counter>,
    /// NOTIFY messages sent (every try), by zone and target.
    pub notify_sent: Family<NotifyLabels, Counter>,
    /// NOTIFYs no answer came to after every try, by zone and target.
    pub notify_failed: Family<NotifyLabels, Counter>,
    /// DNS TCP connections the server closed or refused to protect itself, by reason.
    pub tcp_dropped: Family<ReasonLabels, Counter>,
    /// API connections closed or refused because `http_max_clients` were open.
    pub api_refused: Counter,
    /// API requests refused as cross-site or for a foreign Host, by reason.
    pub api_forbidden: Family<ReasonLabels, Counter>,
    /// Checks that gave no result because this host ran out of a resource (descriptors).
    pub checks_no_result: Counter,
    /// UDP responses held back by response rate limiting: `dropped` or `slipped` (truncated).
    pub rate_limited: Family<ReasonLabels, Counter>,
    /// 1 while an applied override is not yet saved in the state file.
    pub state_unsaved: Gauge,
    /// State-file writes, by result.
    pub state_writes: Family<ResultLabels, Counter>,
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
        let members = Arc::new(MemberTable::default());
        registry.register_collector(Box::new(Arc::clone(&members)));
        // 100 µs to about 26 s.
        let check_seconds = Histogram::new(exponential_buckets(0.000_1, 4.0, 10));
        registry.register(
            "check_seconds",
            "Time a successful health check took",
            check_seconds.clone(),
        );
        let failovers = Family::default();
        registry.register(
            "failovers",
            "Times a service's answer changed (failover, failback, override, reload)",
            failovers.clone(),
        );
        let all_down = Family::default();
        registry.register(
            "all_down",
            "Times every member of a service's address family was down, by the when_all_down mode in force",
            all_down.clone(),
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
        let transfers = Family::default();
        registry.register(
            "zone_transfers",
            "Zone transfer requests, by what was sent or refused",
            transfers.clone(),
        );
        let notify_sent = Family::default();
        registry.register(
            "notify_sent",
            "NOTIFY messages sent to secondaries, every try counted",
            notify_sent.clone(),
        );
        let notify_failed = Family::default();
        registry.register(
            "notify_failed",
            "NOTIFYs a secondary did not answer after every try",
            notify_failed.clone(),
        );
        let tcp_dropped = Family::default();
        registry.register(
            "tcp_connections_dropped",
            "DNS TCP connections closed or refused by the server's limits, by reason",
            tcp_dropped.clone(),
        );
        let api_refused = Counter::default();
        registry.register(
            "api_connections_refused",
            "API connections closed (the oldest waiting) or refused because http_max_clients were open",
            api_refused.clone(),
        );
        let api_forbidden = Family::default();
        registry.register(
            "api_requests_forbidden",
            "API requests refused as cross-site (origin) or for a foreign Host (host)",
            api_forbidden.clone(),
        );
        let checks_no_result = Counter::default();
        registry.register(
            "checks_no_result",
            "Health checks that gave no result because this host ran out of descriptors",
            checks_no_result.clone(),
        );
        let rate_limited = Family::default();
        registry.register(
            "rate_limited",
            "UDP responses held back by response rate limiting (dropped, or slipped as truncated)",
            rate_limited.clone(),
        );
        let state_unsaved = Gauge::default();
        registry.register(
            "state_file_unsaved",
            "1 while an applied admin override is not yet saved in the state file",
            state_unsaved.clone(),
        );
        let state_writes = Family::default();
        registry.register(
            "state_file_writes",
            "State file writes, by result",
            state_writes.clone(),
        );
        Self {
            registry,
            tcp_dropped,
            api_refused,
            api_forbidden,
            checks_no_result,
            rate_limited,
            state_unsaved,
            state_writes,
            queries,
            response_seconds,
            members,
            check_seconds,
            failovers,
            all_down,
            reloads,
            zone_serial,
            webhooks,
            transfers,
            notify_sent,
            notify_failed,
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

/// Counts one answered query, by rcode, qtype and `transport`, and its time since `started`.
pub fn count_query(
    metrics: &Metrics,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
    transport: &'static str,
    started: Instant,
) {
    query_counter(metrics, rcode, qtype, transport).inc();
    metrics
        .response_seconds
        .observe(started.elapsed().as_secs_f64());
}

fn query_counter(
    metrics: &Metrics,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
    transport: &'static str,
) -> Counter {
    let labels = QueryLabels {
        rcode: rcode_name(rcode),
        qtype: qtype.map_or("none", Into::into),
        transport,
    };
    metrics.queries.get_or_create(&labels).clone()
}

/// One UDP worker's handles on the query counters it has used: counting a query is then a
/// short scan and an atomic add, not a hash of three labels under the family's read lock
/// (a third of a memo hit's user-space time).
pub struct QueryCounts {
    transport: &'static str,
    /// (rcode, qtype or `NONE`) packed into a key, with its counter; a handful in practice.
    recent: Vec<(u32, Counter)>,
}

/// The key of a query without a question.
const NONE: u32 = 1 << 16;

/// Most counters a worker keeps; beyond that, queries are counted through the family.
const RECENT: usize = 32;

impl QueryCounts {
    /// Counts for queries arriving over `transport`.
    pub fn new(transport: &'static str) -> Self {
        Self {
            transport,
            recent: Vec::with_capacity(RECENT),
        }
    }

    /// Counts one answered query and its time since `started`, as [`count_query`] does.
    pub fn count(
        &mut self,
        metrics: &Metrics,
        rcode: ResponseCode,
        qtype: Option<RecordType>,
        started: Instant,
    ) {
        let key =
            (u32::from(u16::from(rcode)) << 17) | qtype.map_or(NONE, |t| u32::from(u16::from(t)));
        match self.recent.iter().find(|(k, _)| *k == key) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = query_counter(metrics, rcode, qtype, self.transport);
                counter.inc();
                if self.recent.len() < RECENT {
                    self.recent.push((key, counter));
                }
            }
        }
        metrics
            .response_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The mnemonic operators know an rcode by (RFC 6895 §2.3).
fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
}

/// One member's counters, shared by the check plane (which updates them) and the
/// [`MemberTable`] (which renders them). A member kept across a reload keeps its counters.
#[derive(Debug, Default)]
pub struct MemberCounters {
    /// Successful checks.
    pub ok: AtomicU64,
    /// Failed checks.
    pub fail: AtomicU64,
    /// Current state, as an index into [`STATES`].
    pub state: AtomicU8,
}

impl MemberCounters {
    /// Counts one check.
    pub fn count_check(&self, ok: bool) {
        let counter = if ok { &self.ok } else { &self.fail };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Records the member's state; `state` is the index of its name in [`STATES`].
    pub fn set_state(&self, state: usize) {
        self.state
            .store(u8::try_from(state).unwrap_or(u8::MAX), Ordering::Relaxed);
    }
}

/// The state names `member_state` is one-hot over, in [`MemberCounters::state`]'s order.
pub const STATES: [&str; 3] = ["unknown", "up", "down"];

/// One row of the table: which member the counters belong to.
#[derive(Debug)]
pub struct MemberSeries {
    /// Service name as configured.
    pub service: Arc<str>,
    /// Member address.
    pub member: IpAddr,
    /// Its counters.
    pub counters: Arc<MemberCounters>,
}

/// Every configured member's series, rendered at scrape time.
///
/// Written by hand on top of prometheus-client's `Collector` because its `Family` keeps a hash
/// map entry with owned label strings per series: five series per member came to about 20 MB
/// at 20,000 members, and series of members removed by a reload stayed forever. Here a member
/// costs one small row, and replacing the table on reload drops removed members' series.
#[derive(Debug, Default)]
pub struct MemberTable {
    rows: ArcSwap<Vec<MemberSeries>>,
}

impl MemberTable {
    /// Makes `rows` the members exported from now on.
    pub fn replace(&self, rows: Vec<MemberSeries>) {
        self.rows.store(Arc::new(rows));
    }
}

impl Collector for MemberTable {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rows = self.rows.load();
        let members: Vec<String> = rows.iter().map(|row| row.member.to_string()).collect();
        let zero = ConstCounter::new(0u64);
        let mut family =
            encoder.encode_descriptor("checks", "Health checks run", None, zero.metric_type())?;
        for (row, member) in rows.iter().zip(&members) {
            for (result, counter) in [("ok", &row.counters.ok), ("fail", &row.counters.fail)] {
                let labels = [
                    ("service", &*row.service),
                    ("member", member.as_str()),
                    ("result", result),
                ];
                let value = ConstCounter::new(counter.load(Ordering::Relaxed));
                value.encode(family.encode_family(&labels)?)?;
            }
        }
        let zero = ConstGauge::new(0i64);
        let mut family = encoder.encode_descriptor(
            "member_state",
            "Member health state (1 for the current state)",
            None,
            zero.metric_type(),
        )?;
        for (row, member) in rows.iter().zip(&members) {
            let current = usize::from(row.counters.state.load(Ordering::Relaxed));
            for (index, state) in STATES.into_iter().enumerate() {
                let labels = [
                    ("service", &*row.service),
                    ("member", member.as_str()),
                    ("state", state),
                ];
                let value = ConstGauge::new(i64::from(index == current));
                value.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_counts_reach_the_shared_family_past_the_counters_a_worker_keeps() {
        let metrics = Metrics::new();
        let mut counts = QueryCounts::new("udp");
        // 36 types (more than a worker keeps) with names of their own (unnamed ones share the label "Unknown").
        let types: Vec<RecordType> = (1..=u16::MAX)
            .map(RecordType::from)
            .filter(|t| !matches!(t, RecordType::Unknown(_)))
            .take(36)
            .collect();
        assert_eq!(types.len(), 36);
        for _ in 0..3 {
            for qtype in &types {
                counts.count(
                    &metrics,
                    ResponseCode::NoError,
                    Some(*qtype),
                    Instant::now(),
                );
            }
            counts.count(&metrics, ResponseCode::FormErr, None, Instant::now());
        }
        for qtype in &types {
            let labels = QueryLabels {
                rcode: "NOERROR",
                qtype: (*qtype).into(),
                transport: "udp",
            };
            assert_eq!(metrics.queries.get_or_create(&labels).get(), 3, "{qtype}");
        }
        let labels = QueryLabels {
            rcode: "FORMERR",
            qtype: "none",
            transport: "udp",
        };
        assert_eq!(metrics.queries.get_or_create(&labels).get(), 3);
    }
}
