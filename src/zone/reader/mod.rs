//! Reading RFC 1035 §5 master files into records: entries, parentheses, quoted strings and
//! escapes, `@`, owner, TTL and class inheritance, `$ORIGIN`, `$TTL` and `$INCLUDE`, and the
//! presentation format of each record type, written out as wire-format RDATA that hickory's
//! decoder then turns into its record types.
//!
//! Written here because no crate reads what BIND, Knot and NSD read: hickory-proto 0.26's
//! zone-file lexer mangles quoted strings inside parentheses, `\DDD` escapes and labels that
//! are not host names, and refuses `@` in record data and pre-signed DNSSEC data; `domain` 0.11's
//! reader refuses TTL units (`1h`, `4D`: 63 of the 132 corpus files) and the presentation form of
//! CAA, TLSA, SSHFP and other common types. Going through wire format keeps every octet of a
//! label or a string as written, and leaves hickory the types it models.
//!
//! Types without a presentation parser here (APL, WKS, …) are handed to hickory's own
//! parser, as before; RFC 3597's `\#` form works for every type. Never touches
//! the network; reads only the files `$INCLUDE` names, within the limits of [`super::files`].

mod fields;
mod lexer;
mod special;
mod types;
use std::collections::BTreeMap;
use std::collections::btree_map::Entry as MapEntry;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hickory_proto::rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType, RrKey};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, Restrict};

use super::files::{MAX_INCLUDE_DEPTH, MAX_ZONE_BYTES, read_zone_text};
use crate::error::LoadError;
use fields::*;
use lexer::*;
use special::*;
use types::*;

/// The records of a zone file, by owner and type.
pub type Parsed = BTreeMap<RrKey, RecordSet>;

/// TTL of records that come before any TTL is stated (no `$TTL`, none on the record, none
/// earlier): Knot's and NSD's default (BIND would take the SOA's MINIMUM; the differential
/// tests are against Knot).
pub const DEFAULT_TTL: u32 = 3600;

/// Reads the zone text `text` of the file `path` for the zone `origin`, with the files it
/// includes.
pub fn read(text: &[u8], origin: &Name, path: &Path) -> Result<Parsed, LoadError> {
    let mut reader = Reader {
        zone: LowerName::new(origin),
        records: Parsed::new(),
        budget: MAX_ZONE_BYTES.saturating_sub(text.len() as u64),
        ttl: TtlState::default(),
        class: DNSClass::IN,
    };
    let origin = name_wire_of(origin);
    reader.read_file(text, path, origin, 0)?;
    Ok(reader.records)
}

/// What carries over from one entry to the next across files.
struct Reader {
    /// The zone being read: records outside it are left out.
    zone: LowerName,
    records: Parsed,
    /// Bytes the files still to be included may hold (`MAX_ZONE_BYTES` for all of them).
    budget: u64,
    ttl: TtlState,
    class: DNSClass,
}

#[derive(Default)]
struct TtlState {
    /// `$TTL`, once given.
    default: Option<u32>,
    /// The last TTL stated on a record.
    last: Option<u32>,
}

/// A problem at a line of the file being read.
struct Problem {
    line: usize,
    message: String,
}

fn problem(line: usize, message: impl Into<String>) -> Problem {
    Problem {
        line,
        message: message.into(),
    }
}

impl Reader {
    fn read_file(
        &mut self,
        text: &[u8],
        path: &Path,
        origin: Vec<u8>,
        depth: usize,
    ) -> Result<(), LoadError> {
        let mut origin = origin;
        let mut owner: Option<Vec<u8>> = None;
        let located = |p: Problem| {
            LoadError::at(
                path,
                p.line,
                format!("cannot parse zone file: {}", p.message),
            )
        };
        for entry in Lexer::new(text) {
            let entry = entry.map_err(located)?;
            let Some(first) = entry.tokens.first() else {
                continue;
            };
            if !first.quoted && first.text.first() == Some(&b'$') && !entry.blank_owner {
                let directive = String::from_utf8_lossy(first.text).to_ascii_uppercase();
                let args = &entry.tokens[1..];
                match directive.as_str() {
                    "$ORIGIN" => {
                        let [name] = args else {
                            return Err(located(problem(entry.line, "$ORIGIN takes one name")));
                        };
                        origin = name_wire(name, &origin)
                            .map_err(|m| located(problem(entry.line, m)))?;
                    }
                    "$TTL" => {
                        let [ttl] = args else {
                            return Err(located(problem(entry.line, "$TTL takes one TTL")));
                        };
                        let ttl = parse_ttl(ttl.text).ok_or_else(|| {
                            located(problem(entry.line, format!("bad $TTL {}", show(ttl.text))))
                        })?;
                        self.ttl.default = Some(ttl);
                    }
                    "$INCLUDE" => {
                        let (file, included_origin) = match args {
                            [file] => (file, origin.clone()),
                            [file, name] => (
                                file,
                                name_wire(name, &origin)
                                    .map_err(|m| located(problem(entry.line, m)))?,
                            ),
                            _ => {
                                return Err(located(problem(
                                    entry.line,
                                    "$INCLUDE takes a file and, optionally, an origin",
                                )));
                            }
                        };
                        let target = include_path(path, file.text);
                        // Said as it is, not as a parse error: the file, not its text, is wrong.
                        let refused = |message: String| LoadError::at(path, entry.line, message);
                        if depth >= MAX_INCLUDE_DEPTH {
                            return Err(refused(format!(
                                "$INCLUDE nested more than {MAX_INCLUDE_DEPTH} deep"
                            )));
                        }
                        // Regular files only, and all of a zone's files within one budget.
                        let included = read_zone_text(&target, self.budget).map_err(|e| {
                            refused(format!("$INCLUDE {}: {}", target.display(), e.message))
                        })?;
                        self.budget = self.budget.saturating_sub(included.len() as u64);
                        self.read_file(&included, &target, included_origin, depth + 1)?;
                    }
                    _ => {
                        return Err(located(problem(
                            entry.line,
                            format!("unknown directive {directive}"),
                        )));
                    }
                }
                continue;
            }
            self.record(&entry, &origin, &mut owner, path)
                .map_err(located)?;
        }
        Ok(())
    }

    /// Reads one record entry.
    fn record(
        &mut self,
        entry: &LexedEntry<'_>,
        origin: &[u8],
        owner: &mut Option<Vec<u8>>,
        path: &Path,
    ) -> Result<(), Problem> {
        let line = entry.line;
        let mut tokens = entry.tokens.iter();
        if !entry.blank_owner {
            let token = tokens.next().ok_or_else(|| problem(line, "empty entry"))?;
            *owner = Some(name_wire(token, origin).map_err(|m| problem(line, m))?);
        }
        let owner = owner
            .clone()
            .ok_or_else(|| problem(line, "no owner name: the first record must name its owner"))?;
        // TTL and class, in either order, each optional.
        let mut ttl = None;
        let mut class = None;
        let rtype = loop {
            let token = tokens
                .next()
                .ok_or_else(|| problem(line, "no record type"))?;
            if token.quoted {
                return Err(problem(
                    line,
                    format!("expected a record type, found \"{}\"", show(token.text)),
                ));
            }
            if ttl.is_none()
                && let Some(value) = parse_ttl(token.text)
            {
                ttl = Some(value);
                continue;
            }
            if class.is_none()
                && let Some(value) = parse_class(token.text)
            {
                class = Some(value);
                continue;
            }
            break parse_type(token.text).ok_or_else(|| {
                problem(line, format!("unknown record type {}", show(token.text)))
            })?;
        };
        if let Some(class) = class {
            self.class = class;
        }
        let rest: Vec<&Token<'_>> = tokens.collect();
        let rdata = rdata_wire(rtype, &rest, origin).map_err(|m| problem(line, m))?;
        let ttl = match ttl {
            Some(ttl) => {
                self.ttl.last = Some(ttl);
                ttl
            }
            None => match (self.ttl.default, self.ttl.last) {
                (Some(ttl), _) | (None, Some(ttl)) => ttl,
                (None, None) => {
                    let ttl = DEFAULT_TTL;
                    tracing::warn!(
                        line,
                        ttl,
                        "no TTL is given before line {line} (no $TTL, none on a record): using {ttl}, as Knot and NSD do, until one is"
                    );
                    self.ttl.last = Some(ttl);
                    ttl
                }
            },
        };
        let record =
            build_record(&owner, rtype, self.class, ttl, rdata).map_err(|m| problem(line, m))?;
        let name = LowerName::new(&record.name);
        if !self.zone.zone_of(&name) {
            // Knot and BIND leave such records out with a warning (NSD refuses the file): a
            // zone file written for another server may hold a stray record; it is never ours
            // to serve.
            tracing::warn!(
                file = %path.display(),
                line,
                "{}:{line}: {name} is outside the zone {}; the record is left out, as Knot and BIND leave it out",
                path.display(),
                self.zone
            );
            return Ok(());
        }
        let key = RrKey::new(name, record.record_type());
        match (rtype, self.records.entry(key)) {
            // The same SOA again (a zone dumped from a transfer ends with it) is a duplicate,
            // dropped as every duplicate is (RFC 2181 §5); another SOA is an error.
            (RecordType::SOA, MapEntry::Occupied(occupied)) => {
                let same = occupied
                    .get()
                    .records_without_rrsigs()
                    .all(|soa| soa.data == record.data);
                if !same {
                    return Err(problem(line, "a second SOA record; a zone has one"));
                }
            }
            (_, MapEntry::Vacant(vacant)) => {
                vacant.insert(RecordSet::from(record));
            }
            (_, MapEntry::Occupied(mut occupied)) => {
                occupied.get_mut().insert(record, 0);
            }
        }
        Ok(())
    }
}

/// Where `$INCLUDE file` points: relative to the including file's directory.
fn include_path(including: &Path, file: &[u8]) -> PathBuf {
    let target = PathBuf::from(String::from_utf8_lossy(file).into_owned());
    if target.is_absolute() {
        target
    } else {
        including.parent().unwrap_or(Path::new(".")).join(target)
    }
}

/// A record's data: written here in wire form, or (for types without a parser here) parsed
/// by hickory from the presentation text.
enum RDataWire {
    Wire(Vec<u8>),
    Hickory(RData),
}

fn build_record(
    owner: &[u8],
    rtype: RecordType,
    class: DNSClass,
    ttl: u32,
    rdata: RDataWire,
) -> Result<Record, String> {
    let name = decode_name(owner)?;
    let data = match rdata {
        RDataWire::Hickory(data) => data,
        RDataWire::Wire(wire) => {
            let length = u16::try_from(wire.len())
                .map_err(|_| format!("{rtype} data of {} bytes exceeds 65535", wire.len()))?;
            let mut decoder = BinDecoder::new(&wire);
            match RData::read(&mut decoder, rtype, Restrict::new(length)) {
                Ok(data) => data,
                // Data this reader wrote field by field, that hickory's model of the type
                // refuses (an NSEC3PARAM with unassigned flags, say), is served as it was
                // written, as opaque data (RFC 3597 §5). Not for the RFC 1035 types, whose
                // names are compressed and looked into.
                Err(_) if u16::from(rtype) > 16 => RData::Unknown {
                    code: rtype,
                    rdata: hickory_proto::rr::rdata::NULL::with(wire),
                },
                Err(e) => return Err(format!("bad {rtype} data: {e}")),
            }
        }
    };
    let mut record = Record::from_rdata(name, ttl, data);
    record.dns_class = class;
    Ok(record)
}

/// A domain name written as in a zone file (any octets in a label, `\DDD` and `\X` escapes,
/// always absolute), for names the config gives: a zone origin such as the RFC 2317
/// `0/25.2.0.10.in-addr.arpa.` is a name zone files and peers accept.
pub fn name_from_text(text: &str) -> Result<Name, String> {
    let token = Token {
        text: text.as_bytes(),
        quoted: false,
    };
    let wire = fields::name_wire(&token, &[0]).map_err(|m| m.replace("bad name ", ""))?;
    decode_name(&wire)
}

fn decode_name(wire: &[u8]) -> Result<Name, String> {
    let mut decoder = BinDecoder::new(wire);
    Name::read(&mut decoder).map_err(|e| format!("bad name: {e}"))
}

fn name_wire_of(name: &Name) -> Vec<u8> {
    let mut name = name.clone();
    name.set_fqdn(true);
    name.to_bytes().unwrap_or_else(|_| vec![0])
}
