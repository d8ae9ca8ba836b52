//! Reading zone text (`reader`) and the zone-level checks a reader does not make, into a
//! [`StaticZone`]. Every error names the file and, where one is to blame, the line.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use hickory_proto::rr::{DNSClass, LowerName, Name, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use super::blame::{first_line_where, located};
use super::files::{MAX_ZONE_BYTES, read_zone_text};
use super::{Node, StaticZone, mark_existing};
use crate::error::LoadError;

use super::reader::{self, Parsed};

/// Loads and checks the zone file at `path` for the zone `origin`.
pub fn load(path: &Path, origin: &Name) -> Result<StaticZone, LoadError> {
    let text = read_zone_text(path, MAX_ZONE_BYTES)?;
    parse_from(&text, origin, path)
}

/// Parses and checks zone text for `origin` that comes from no file: errors name `<text>`,
/// and `$INCLUDE` paths are relative to the current directory.
pub fn parse(text: &str, origin: &Name) -> Result<StaticZone, LoadError> {
    parse_from(text.as_bytes(), origin, Path::new("<text>"))
}

/// Parses and checks zone text for `origin` read from `path` (which errors name and
/// `$INCLUDE` paths are relative to).
fn parse_from(text: &[u8], origin: &Name, path: &Path) -> Result<StaticZone, LoadError> {
    let parse = |input: &[u8]| reader::read(input, origin, path);
    let records = parse(text)?;

    // Each check finds the first offending entry by re-parsing prefixes: see `first_line_where`.
    let blame = |message: String, bad: &dyn Fn(&Parsed) -> bool| {
        let line = first_line_where(text, |prefix| parse(prefix).is_ok_and(|r| bad(&r)));
        located(path, line, message)
    };

    // Records outside the zone were left out by the reader, with a warning naming the line.
    let origin_key = LowerName::new(origin);
    if let Some(set) = records.values().find(|s| s.dns_class() != DNSClass::IN) {
        let key = RrKey::new(LowerName::new(set.name()), set.record_type());
        return Err(blame(
            format!(
                "{} {} has class {}; only IN is served",
                set.name(),
                set.record_type(),
                set.dns_class()
            ),
            &|r| r.contains_key(&key),
        ));
    }
    for (key, set) in &records {
        if key.record_type == RecordType::SOA && key.name != origin_key {
            return Err(blame(
                format!("SOA at {} which is not the zone apex {origin}", set.name()),
                &|r| r.contains_key(key),
            ));
        }
        if key.record_type == RecordType::CNAME {
            let name = key.name.clone();
            // RRSIG and NSEC records may stand beside a CNAME (RFC 4035 §2.5).
            let others = |r: &Parsed| {
                r.keys()
                    .filter(|k| {
                        k.name == name
                            && !matches!(k.record_type, RecordType::RRSIG | RecordType::NSEC)
                    })
                    .count()
                    > 1
                    && r.contains_key(key)
            };
            if others(&records) {
                return Err(blame(
                    format!(
                        "{} has a CNAME and other records; a CNAME must be alone at its name (RFC 1034 §3.6.2)",
                        set.name()
                    ),
                    &others,
                ));
            }
        }
    }

    if let Some(key) = records
        .iter()
        .find(|(_, set)| !fits_a_message(set))
        .map(|(key, _)| key.clone())
    {
        return Err(blame(
            format!(
                "the {} {} RRset grows here past the 65535 bytes a DNS message holds, even over TCP; split it or shorten it",
                key.name, key.record_type
            ),
            &|r| r.get(&key).is_some_and(|set| !fits_a_message(set)),
        ));
    }

    let soa = records
        .get(&RrKey::new(origin_key.clone(), RecordType::SOA))
        .and_then(|set| set.records_without_rrsigs().next().cloned())
        .ok_or_else(|| LoadError::in_file(path, format!("no SOA record at the zone apex {origin}; add one, e.g. `@ 3600 IN SOA ns1 hostmaster 1 7200 900 1209600 60`")))?;
    if !records.contains_key(&RrKey::new(origin_key.clone(), RecordType::NS)) {
        return Err(LoadError::in_file(
            path,
            format!("no NS records at the zone apex {origin}; list the servers that answer for it"),
        ));
    }

    let mut zone = StaticZone {
        origin: origin.clone(),
        origin_key: origin_key.clone(),
        soa,
        nodes: HashMap::new(),
        recordless: HashSet::new(),
        cuts: HashSet::new(),
        dnames: HashSet::new(),
        wildcards: HashMap::new(),
        digest: {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(text, &mut hasher);
            std::hash::Hasher::finish(&hasher)
        },
    };
    // The parser's map is sorted by name, so a name's RRsets arrive together; each node gets
    // exactly as many as it has (pushing one by one would reserve four per name, 430 MB of
    // nothing in a zone of a million hosts).
    let mut rrsets = Vec::new();
    let mut records = records.into_iter().peekable();
    while let Some((key, set)) = records.next() {
        if key.record_type == RecordType::NS && key.name != origin_key {
            zone.cuts.insert(key.name.clone());
        }
        if key.record_type == RecordType::DNAME {
            zone.dnames.insert(key.name.clone());
        }
        if key.name.is_wildcard() {
            zone.wildcards
                .insert(key.name.base_name(), key.name.clone());
        }
        rrsets.push(set);
        if records.peek().is_none_or(|(next, _)| next.name != key.name) {
            let mut exact = Vec::with_capacity(rrsets.len());
            exact.append(&mut rrsets);
            zone.nodes.insert(key.name, Node { rrsets: exact });
        }
    }
    for owner in zone.nodes.keys() {
        mark_existing(&zone.origin_key, &zone.nodes, &mut zone.recordless, owner);
    }
    Ok(zone)
}

/// Whether a response carrying just `set`, with its owner as the question, fits the 65,535
/// bytes of a DNS message: what the set needs at the least.
fn fits_a_message(set: &RecordSet) -> bool {
    let mut bytes = Vec::with_capacity(512);
    // The encoder refuses to grow past u16::MAX bytes.
    let mut encoder = BinEncoder::new(&mut bytes);
    // The header, then the question, so the records' names compress as they would.
    let header = encoder.emit_vec(&[0; 12]).is_ok()
        && set.name().emit(&mut encoder).is_ok()
        && encoder.emit_vec(&[0; 4]).is_ok();
    header
        && set
            .records_without_rrsigs()
            .all(|record| record.emit(&mut encoder).is_ok())
        && bytes.len() <= usize::from(u16::MAX)
}
