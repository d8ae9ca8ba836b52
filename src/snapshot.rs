//! The immutable published state the query path answers from, and its atomic cell.
//!
//! The check plane builds a new [`Snapshot`] whenever an answer changes and swaps it in; the
//! query path loads the current one without locks. A snapshot is never modified after it is
//! published, so a reader can never see half an update.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{LowerName, Name, RData, Record};

use crate::dns::fast::index::Prerendered;
use crate::dns::journal::Journal;
use crate::dns::transfer::TransferPolicy;
use crate::dns::tsig::Keys;
use crate::zone::StaticZone;

/// Everything the query path needs to answer, at one instant.
#[derive(Debug)]
pub struct Snapshot {
    /// One entry per configured zone.
    pub zones: Vec<ZoneSnapshot>,
    /// The CHAOS-class identity and version strings (empty: refused).
    pub server: Arc<ServerStrings>,
    /// The TSIG keys signed requests are checked with.
    pub keys: Arc<Keys>,
}

/// What the server says about itself in the CHAOS class, as Knot, NSD and BIND do.
#[derive(Debug, Default)]
pub struct ServerStrings {
    /// `id.server.` / `hostname.bind.` TXT.
    pub identity: String,
    /// `version.server.` / `version.bind.` TXT.
    pub version: String,
}

/// One zone: its static records (shared between snapshots) plus its dynamic parts.
#[derive(Debug)]
pub struct ZoneSnapshot {
    /// Records from the zone file.
    pub data: Arc<StaticZone>,
    /// The zone's static answers in wire form, for the fast path (unbuilt: the full path
    /// answers everything).
    pub index: Arc<Prerendered>,
    /// The apex SOA with the current serial.
    pub soa: Record,
    /// The SOA as negative answers carry it: TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).
    pub negative_soa: Record,
    /// The current answers of each service name in this zone, shared with the snapshots
    /// before and after as long as they do not change: a failover re-renders one service.
    pub services: HashMap<LowerName, Arc<ServiceRecords>>,
    /// Who may transfer the zone.
    pub transfer: Arc<TransferPolicy>,
    /// The recent changes of its answers, for IXFR.
    pub journal: Arc<Journal>,
}

/// The records a service name answers now.
#[derive(Debug, Clone, Default)]
pub struct ServiceRecords {
    /// A records: the selected IPv4 members.
    pub a: Vec<Record>,
    /// AAAA records: the selected IPv6 members.
    pub aaaa: Vec<Record>,
}

impl ServiceRecords {
    /// Renders `addresses` as A/AAAA records for `name` with `ttl`.
    pub fn new(name: &Name, ttl: u32, addresses: &[IpAddr]) -> Self {
        // Sized exactly: a hickory Record is large, and 10,000 services' worth of growth
        // headroom was most of the server's memory.
        let v4 = addresses.iter().filter(|a| a.is_ipv4()).count();
        let mut records = Self {
            a: Vec::with_capacity(v4),
            aaaa: Vec::with_capacity(addresses.len() - v4),
        };
        for &addr in addresses {
            match addr {
                IpAddr::V4(v4) => {
                    records
                        .a
                        .push(Record::from_rdata(name.clone(), ttl, RData::A(A(v4))))
                }
                IpAddr::V6(v6) => {
                    records
                        .aaaa
                        .push(Record::from_rdata(name.clone(), ttl, RData::AAAA(AAAA(v6))))
                }
            }
        }
        records
    }
}

impl ZoneSnapshot {
    /// The zone with its SOA serial set to `serial` and the given service answers.
    pub fn new(
        data: Arc<StaticZone>,
        index: Arc<Prerendered>,
        serial: u32,
        services: HashMap<LowerName, Arc<ServiceRecords>>,
    ) -> Self {
        let mut soa = data.soa.clone();
        let mut negative_ttl = soa.ttl;
        if let RData::SOA(soa_data) = &mut soa.data {
            soa_data.serial = serial;
            negative_ttl = negative_ttl.min(soa_data.minimum);
        }
        let mut negative_soa = soa.clone();
        negative_soa.ttl = negative_ttl;
        Self {
            data,
            index,
            soa,
            negative_soa,
            services,
            transfer: Arc::default(),
            journal: Arc::default(),
        }
    }

    /// The same, transferable as `transfer` says.
    pub fn with_transfer(self, transfer: Arc<TransferPolicy>) -> Self {
        Self { transfer, ..self }
    }
}

impl Snapshot {
    /// The most specific zone containing `name`, if this server is authoritative for it.
    pub fn zone_for(&self, name: &LowerName) -> Option<&ZoneSnapshot> {
        self.zones
            .iter()
            .filter(|zone| zone.data.origin_key.zone_of(name))
            .max_by_key(|zone| zone.data.origin_key.num_labels())
    }
}

/// The cell the check plane publishes into and the query path reads from.
pub type SnapshotCell = Arc<ArcSwap<Snapshot>>;

/// The snapshot some per-worker state was built from, so that the state starts afresh when a
/// new one is published. Holds it, not just its address, so a new snapshot can never reuse the
/// old one's.
#[derive(Debug, Default)]
pub struct BuiltFrom(Option<Arc<Snapshot>>);

impl BuiltFrom {
    /// Records `snapshot` as the current one; true when it is not the one before, so what was
    /// built from that one must go.
    pub fn changed_to(&mut self, snapshot: &Arc<Snapshot>) -> bool {
        if self
            .0
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, snapshot))
        {
            return false;
        }
        self.0 = Some(Arc::clone(snapshot));
        true
    }
}

/// The serial after `old` for a change made at unix time `now`: the later of `old + 1` and
/// `now` in RFC 1982 serial arithmetic, so serials keep rising across restarts when zone files
/// use small counters or unix-time serials.
pub fn next_serial(old: u32, now: u32) -> u32 {
    later_serial(old.wrapping_add(1), now)
}

/// The later of two serials in RFC 1982 arithmetic (`a` when they are equal or incomparable).
pub fn later_serial(a: u32, b: u32) -> u32 {
    if b != a && (b.wrapping_sub(a) as i32) > 0 {
        b
    } else {
        a
    }
}

/// A zone's serial after a restart or reload. `running` is the serial it was served with
/// before, if it was (`None` at start), and `changed` whether its file or one of its answers
/// changed since. A zone with services changes while it runs, so its serial never goes back
/// (across a restart: not below the clock, which it follows as it changes); a zone without any
/// is served with its file's serial, as any primary would.
pub fn serial_after_reload(
    has_services: bool,
    file_serial: u32,
    running: Option<u32>,
    changed: bool,
    clock: u32,
) -> u32 {
    if !has_services {
        return file_serial;
    }
    let Some(old) = running else {
        return later_serial(file_serial, clock);
    };
    let current = later_serial(old, file_serial);
    if current == old && changed {
        next_serial(old, clock)
    } else {
        current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_moves_to_clock_when_clock_is_ahead() {
        assert_eq!(next_serial(7, 1_800_000_000), 1_800_000_000);
    }

    #[test]
    fn serial_increments_when_file_serial_is_ahead_of_clock() {
        assert_eq!(next_serial(2_026_112_401, 1_800_000_000), 2_026_112_402);
    }

    #[test]
    fn serial_wraps_by_rfc_1982() {
        assert_eq!(next_serial(u32::MAX, 5), 5);
        assert_eq!(next_serial(u32::MAX, 0), 0);
    }

    #[test]
    fn a_reloaded_zone_serial_never_goes_back_and_moves_when_something_changed() {
        let clock = 1_700_000_000;
        // (has services, file serial, running serial, changed) -> serial
        let cases = [
            // Static zones are their file's, even backwards.
            ((false, 5, Some(9), true), 5),
            ((false, 5, None, false), 5),
            // At start: the later of file and clock.
            ((true, 5, None, false), clock),
            ((true, clock + 7, None, false), clock + 7),
            // Unchanged: the running serial stays.
            ((true, 5, Some(clock + 3), false), clock + 3),
            // Changed: one more than the running serial, or the clock when it is ahead.
            ((true, 5, Some(clock + 3), true), clock + 4),
            ((true, 5, Some(clock - 100), true), clock),
            // The operator raised the file's serial: it wins, changed or not.
            ((true, clock + 50, Some(clock + 3), true), clock + 50),
        ];
        for ((services, file, running, changed), expected) in cases {
            assert_eq!(
                serial_after_reload(services, file, running, changed, clock),
                expected,
                "{services} {file} {running:?} {changed}"
            );
        }
    }
}
