//! Zone files: loading RFC 1035 master files into the static record store.
//!
//! `reader` reads RFC 1035 §5 master files as BIND, Knot and NSD do, with `file:line` errors;
//! `files` reads files safely, with limits; `load` makes the zone-level checks a reader does not
//! (an SOA at the apex, NS at the apex, every name inside the zone, CNAME alone at its name),
//! and `blame` finds the line those belong to. This file is the store itself. It never touches
//! the network.

mod blame;
mod files;
mod load;
mod reader;

use std::collections::{HashMap, HashSet};

use hickory_proto::rr::{LowerName, Name, RData, Record, RecordSet, RecordType};

pub use files::MAX_ZONE_BYTES;
pub use load::{load, parse};
pub use reader::name_from_text;

/// The records of one name, one RRset per type.
#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Non-empty RRsets, at most one per record type.
    pub rrsets: Vec<RecordSet>,
}

impl Node {
    /// The RRset of `rtype` at this name, if any.
    pub fn rrset(&self, rtype: RecordType) -> Option<&RecordSet> {
        self.rrsets.iter().find(|set| set.record_type() == rtype)
    }
}

/// A parsed and checked zone: the static half of what is served. Immutable once loaded, so
/// snapshots share it by `Arc` and only the dynamic parts change on a health event.
#[derive(Debug, Clone)]
pub struct StaticZone {
    /// The apex, as written in the config (case preserved for answers).
    pub origin: Name,
    /// The apex, lower-cased for lookups.
    pub origin_key: LowerName,
    /// The SOA record at the apex, as in the file.
    pub soa: Record,
    /// Records by owner name.
    pub nodes: HashMap<LowerName, Node>,
    /// The names that exist without static records of their own: empty non-terminals
    /// (`b.zone` when only `a.b.zone` has records), which answer NODATA rather than NXDOMAIN,
    /// and service names. Owner names are not repeated here: in a zone of a million hosts
    /// that copy alone would cost about 170 MB.
    pub recordless: HashSet<LowerName>,
    /// Names below the apex that carry NS records: the delegation points (zone cuts).
    pub cuts: HashSet<LowerName>,
    /// Names that carry a DNAME record: every name below one is redirected (RFC 6672).
    pub dnames: HashSet<LowerName>,
    /// Each name that has a wildcard child, with that child (`name` -> `*.name`): a name
    /// that does not exist needs the wildcard only when its closest encloser is one of them,
    /// so NXDOMAIN costs no `*.` name built per query.
    pub wildcards: HashMap<LowerName, LowerName>,
    /// A hash of the file's text, so a reload can tell an edited zone from an unchanged one.
    pub digest: u64,
}

impl StaticZone {
    /// The SOA serial written in the zone file.
    pub fn file_serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(soa) => soa.serial,
            _ => 0,
        }
    }

    /// Whether `name` exists in the zone: it owns records, is a service name, or is an empty
    /// non-terminal above one of those.
    pub fn exists(&self, name: &LowerName) -> bool {
        self.nodes.contains_key(name) || self.recordless.contains(name)
    }

    /// The delegation point (zone cut) at or above `name`, the nearest one, if `name` lies in
    /// a delegated child rather than in this zone's own data.
    pub fn enclosing_cut(&self, name: &LowerName) -> Option<&LowerName> {
        if self.cuts.is_empty() {
            return None;
        }
        let mut current = name.clone();
        while labels(&current) > labels(&self.origin_key) {
            if let Some(cut) = self.cuts.get(&current) {
                return Some(cut);
            }
            current = current.base_name();
        }
        None
    }

    /// The highest name strictly above `name` (up to the apex) that owns a DNAME: `name` is
    /// redirected by it (RFC 6672 §3.2).
    pub fn dname_above(&self, name: &LowerName) -> Option<&LowerName> {
        if self.dnames.is_empty() {
            return None;
        }
        let mut found = None;
        let mut current = name.clone();
        while labels(&current) > labels(&self.origin_key) {
            current = current.base_name();
            if let Some(owner) = self.dnames.get(&current) {
                found = Some(owner);
            }
        }
        found
    }

    /// Records the name `name` as existing (with its ancestors up to the apex), so that a
    /// dynamic service name and the empty non-terminals above it exist like static ones.
    pub fn add_name(&mut self, name: &LowerName) {
        mark_existing(&self.origin_key, &self.nodes, &mut self.recordless, name);
    }
}

/// How many labels `name` has, a leading `*` included (hickory's `num_labels` leaves it out,
/// as RRSIG's Labels field does, so `*.example.` would count as the apex `example.`).
pub fn labels(name: &LowerName) -> u8 {
    name.num_labels() + u8::from(name.is_wildcard())
}

/// Adds `name` and its ancestors up to `origin` to `recordless` unless they own records.
/// Stops at an owner or at a name already recorded: each owner marks its own ancestors (every
/// owner is marked when the zone loads), and whoever recorded a name marked its ancestors.
fn mark_existing(
    origin: &LowerName,
    nodes: &HashMap<LowerName, Node>,
    recordless: &mut HashSet<LowerName>,
    name: &LowerName,
) {
    let mut name = name.clone();
    if nodes.contains_key(&name) {
        if name == *origin {
            return;
        }
        name = name.base_name();
    }
    while origin.zone_of(&name) && !nodes.contains_key(&name) && recordless.insert(name.clone()) {
        if name == *origin {
            break;
        }
        name = name.base_name();
    }
}

#[cfg(test)]
mod tests;
