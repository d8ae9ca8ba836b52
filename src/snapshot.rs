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
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

use crate::dns::acl::TransferPolicy;
use crate::dns::fast::index::Prerendered;
use crate::dns::journal::{Change, Journal};
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
    /// `weighted`: the running sums of the A records' weights, beside `a`; each response
    /// carries one record drawn by them. Empty: every record is answered.
    pub a_draw: Arc<[u64]>,
    /// The same for `aaaa`.
    pub aaaa_draw: Arc<[u64]>,
}

/// A thread's `weighted` draws: its generator (UDP workers and TCP tasks draw without sharing,
/// no lock, no atomic; nothing needs to be unpredictable to clients), and what the response
/// being answered drew, for the memo ([`crate::dns::cache`]), which keeps one response per
/// member that can be drawn and draws among them itself.
struct Draws {
    rng: rand::rngs::SmallRng,
    /// The draw the next [`ServiceRecords::answer`] must make (the memo chose it).
    forced: Option<usize>,
    /// Draws made since [`take_draws`] last asked, and the last one: its sums and index.
    count: u32,
    last: Option<Drawn>,
}

thread_local! {
    static DRAWS: std::cell::RefCell<Draws> = std::cell::RefCell::new(Draws {
        rng: rand::make_rng(),
        forced: None,
        count: 0,
        last: None,
    });
}

/// One weighted draw: the running sums it was made by, and the index drawn.
pub type Drawn = (Arc<[u64]>, usize);

/// An index drawn by running sums `sums` (each with odds weight / total); None when there is
/// nothing to draw.
pub fn draw(sums: &[u64]) -> Option<usize> {
    let total = *sums.last()?;
    if total == 0 {
        return None;
    }
    let point = DRAWS.with(|d| rand::RngExt::random_range(&mut d.borrow_mut().rng, 0..total));
    // The first index whose running sum passes the point.
    Some(sums.partition_point(|&sum| sum <= point))
}

/// Makes this thread's next weighted draw `index` (the memo lacks that variant).
pub fn force_next_draw(index: usize) {
    DRAWS.with(|d| d.borrow_mut().forced = Some(index));
}

/// The draws this thread made since last asked: how many, and the last one's sums and index;
/// clears them and any forced draw left unused.
pub fn take_draws() -> (u32, Option<Drawn>) {
    DRAWS.with(|d| {
        let mut d = d.borrow_mut();
        d.forced = None;
        (std::mem::take(&mut d.count), d.last.take())
    })
}

impl ServiceRecords {
    /// The records of type A (`v4`) or AAAA that one response carries: all of them, or under
    /// `weighted` one drawn in proportion to its weight.
    pub fn answer(&self, v4: bool) -> &[Record] {
        let (records, sums) = if v4 {
            (&self.a, &self.a_draw)
        } else {
            (&self.aaaa, &self.aaaa_draw)
        };
        if sums.is_empty() {
            return records;
        }
        let forced = DRAWS.with(|d| d.borrow_mut().forced.take());
        let Some(i) = forced.filter(|i| *i < records.len()).or_else(|| draw(sums)) else {
            return records;
        };
        DRAWS.with(|d| {
            let mut d = d.borrow_mut();
            d.count = d.count.saturating_add(1);
            d.last = Some((Arc::clone(sums), i));
        });
        records.get(i..=i).unwrap_or(records)
    }

    /// As [`ServiceRecords::new`], each response carrying one address drawn by `weights`
    /// (beside `addresses`; empty: all answered).
    pub fn weighted(name: &Name, ttl: u32, addresses: &[IpAddr], weights: &[u32]) -> Self {
        let mut records = Self::new(name, ttl, addresses);
        if weights.len() == addresses.len() && !weights.is_empty() {
            let sums = |v4: bool| -> Arc<[u64]> {
                let mut sum = 0u64;
                addresses
                    .iter()
                    .zip(weights)
                    .filter(|(a, _)| a.is_ipv4() == v4)
                    .map(|(_, w)| {
                        sum = sum.saturating_add(u64::from(*w));
                        sum
                    })
                    .collect()
            };
            records.a_draw = sums(true);
            records.aaaa_draw = sums(false);
        }
        records
    }

    /// Renders `addresses` as A/AAAA records for `name` with `ttl`.
    pub fn new(name: &Name, ttl: u32, addresses: &[IpAddr]) -> Self {
        // Sized exactly: a hickory Record is large, and 10,000 services' worth of growth
        // headroom was most of the server's memory.
        let v4 = addresses.iter().filter(|a| a.is_ipv4()).count();
        let mut records = Self {
            a: Vec::with_capacity(v4),
            aaaa: Vec::with_capacity(addresses.len() - v4),
            a_draw: Arc::new([]),
            aaaa_draw: Arc::new([]),
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

    /// The zone's records in transfer order: the SOA (with the current serial), every other
    /// RRset by name in canonical order with each service's current addresses, the SOA again.
    pub fn records(&self) -> Vec<&Record> {
        let zone = self;
        let mut names: Vec<&LowerName> = zone.data.nodes.keys().collect();
        for name in zone.services.keys() {
            if !zone.data.nodes.contains_key(name) {
                names.push(name);
            }
        }
        names.sort_unstable();
        let mut records = vec![&zone.soa];
        for name in names {
            let service = zone.services.get(name);
            if let Some(node) = zone.data.nodes.get(name) {
                for set in &node.rrsets {
                    let rtype = set.record_type();
                    let replaced =
                        service.is_some() && matches!(rtype, RecordType::A | RecordType::AAAA);
                    let apex_soa = rtype == RecordType::SOA && *name == zone.data.origin_key;
                    if !replaced && !apex_soa {
                        records.extend(set.records_without_rrsigs());
                    }
                }
            }
            if let Some(service) = service {
                records.extend(service.a.iter().chain(&service.aaaa));
            }
        }
        records.push(&zone.soa);
        records
    }

    /// The serial of its SOA.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// The same, transferable as `transfer` says.
    pub fn with_transfer(self, transfer: Arc<TransferPolicy>) -> Self {
        Self { transfer, ..self }
    }
}

impl Snapshot {
    /// Gives each zone the journal of the same zone in `previous`, with the change from the one
    /// to the other when its serial moved: the service records removed and added; after a
    /// reload that changed the zone file, every record removed and added, for zones of at most
    /// [`MAX_DIFFED_RECORDS`] (a larger one starts the journal afresh, so a secondary behind it
    /// gets the whole zone, as RFC 1995 §4 allows: diffing it would hold up the check plane).
    pub fn carry_journal_from(&mut self, previous: &Snapshot) {
        for zone in &mut self.zones {
            let Some(before) = previous
                .zones
                .iter()
                .find(|z| z.data.origin_key == zone.data.origin_key)
            else {
                continue;
            };
            let (from, to) = (before.serial(), zone.serial());
            let changes = if from == to {
                zone.journal = Arc::clone(&before.journal);
                continue;
            } else if Arc::ptr_eq(&before.data, &zone.data) {
                Some(service_changes(before, zone))
            } else {
                record_changes(before, zone)
            };
            zone.journal = match changes {
                Some((removed, added)) => Arc::new(before.journal.with(Change {
                    from,
                    to,
                    removed,
                    added,
                })),
                None => Arc::default(),
            };
        }
    }

    /// The most specific zone containing `name`, if this server is authoritative for it.
    pub fn zone_for(&self, name: &LowerName) -> Option<&ZoneSnapshot> {
        self.zones
            .iter()
            .filter(|zone| zone.data.origin_key.zone_of(name))
            .max_by_key(|zone| zone.data.origin_key.num_labels())
    }
}

/// Most records of a zone a reload's change is worked out for (see
/// [`Snapshot::carry_journal_from`]).
pub const MAX_DIFFED_RECORDS: usize = 100_000;

/// The service records `before` answers and `after` does not, and the other way round.
fn service_changes(before: &ZoneSnapshot, after: &ZoneSnapshot) -> (Vec<Record>, Vec<Record>) {
    let names: std::collections::HashSet<_> = before
        .services
        .keys()
        .chain(after.services.keys())
        .collect();
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    for name in names {
        let (old, new) = (before.services.get(name), after.services.get(name));
        if let (Some(old), Some(new)) = (old, new)
            && Arc::ptr_eq(old, new)
        {
            continue;
        }
        let records = |s: Option<&Arc<ServiceRecords>>| -> Vec<Record> {
            s.map(|s| s.a.iter().chain(&s.aaaa).cloned().collect())
                .unwrap_or_default()
        };
        let (old, new) = (records(old), records(new));
        removed.extend(old.iter().filter(|r| !new.contains(r)).cloned());
        added.extend(new.iter().filter(|r| !old.contains(r)).cloned());
    }
    (removed, added)
}

/// Every record `before` has and `after` has not, and the other way round (SOAs aside), or
/// None when either zone has more than [`MAX_DIFFED_RECORDS`].
fn record_changes<'r>(
    before: &'r ZoneSnapshot,
    after: &'r ZoneSnapshot,
) -> Option<(Vec<Record>, Vec<Record>)> {
    let (old, new) = (before.records(), after.records());
    if old.len() > MAX_DIFFED_RECORDS || new.len() > MAX_DIFFED_RECORDS {
        return None;
    }
    // Records are not Hash; their name (without case), type, TTL and data are.
    type Key<'r> = (LowerName, hickory_proto::rr::RecordType, u32, &'r RData);
    let key =
        |r: &'r Record| -> Key<'r> { (LowerName::new(&r.name), r.record_type(), r.ttl, &r.data) };
    let body = |records: &[&'r Record]| -> Vec<&'r Record> {
        records
            .iter()
            .copied()
            .filter(|r| r.record_type() != hickory_proto::rr::RecordType::SOA)
            .collect()
    };
    let (old, new) = (body(&old), body(&new));
    let old_keys: std::collections::HashSet<Key<'_>> = old.iter().map(|r| key(r)).collect();
    let new_keys: std::collections::HashSet<Key<'_>> = new.iter().map(|r| key(r)).collect();
    let removed = old
        .iter()
        .filter(|r| !new_keys.contains(&key(r)))
        .map(|r| (*r).clone())
        .collect();
    let added = new
        .iter()
        .filter(|r| !old_keys.contains(&key(r)))
        .map(|r| (*r).clone())
        .collect();
    Some((removed, added))
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
