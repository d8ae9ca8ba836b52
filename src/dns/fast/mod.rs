//! Static answers in wire form, rendered when a zone loads, and the fast path that serves
//! them over UDP and TCP: a plain one-question request whose answer cannot change with health
//! is answered by copying bytes, without decoding it into hickory's types or walking the
//! record store.
//!
//! Why by hand: the full path (hickory's decoder, [`crate::dns::answer`], hickory's encoder)
//! costs 2–3 µs of user CPU per query. The per-worker memo hides that for names asked often,
//! but in a zone of a million hosts most names are asked too rarely to be memoized, and every
//! name of a random-subdomain flood is new. No library serves from pre-rendered wire data.
//!
//! The bytes are the full path's own: each section is written by the same composer
//! ([`crate::dns::compose`]) after the same question, so its compression pointers are the
//! ones the full path writes (they match the question without regard to case, so a section
//! does not depend on the case the client asked in), and tests compare both paths byte for
//! byte over every name and type of several zones, many request shapes and random requests.
//! Whatever is not provably the same — service names, the apex (its SOA serial moves),
//! delegations, CNAMEs, wildcards, additional-section records,
//! meta types, EDNS options, answers that would truncate — is left to the full path (`None`).

pub mod index;

use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use crate::dns::wire::{AA, Answered, CD, CLASS_IN, DO, MAX_UDP_PAYLOAD, OPT, Protocol, QR, RD};
use crate::snapshot::{BuiltFrom, Snapshot, ZoneSnapshot};
pub use index::Prerendered;
use index::{Found, HEADER, OPT_LEN, TYPE_AND_CLASS, render};

/// A UDP worker's or TCP connection's side of the fast path: the negative-answer SOA rendered
/// for each offset it has been needed at, for the snapshot it last answered from (its serial
/// is that snapshot's; a new snapshot starts it afresh).
#[derive(Debug, Default)]
pub struct FastPath {
    /// The snapshot the SOAs below carry the serial of.
    built_from: BuiltFrom,
    /// By zone index, then by the offset the SOA starts at (the question's end).
    negative_soa: Vec<Vec<Option<Box<[u8]>>>>,
}

/// The parts of a plain request the fast path answers.
struct Plain<'r> {
    /// The question as sent: name, type and class, echoed verbatim.
    question: &'r [u8],
    qtype: u16,
    /// The request had an OPT record: (its DO bit, the client's buffer size).
    edns: Option<(bool, u16)>,
}

impl FastPath {
    /// The response to `request`, arrived over `protocol`, from the pre-rendered answers of
    /// `snapshot`, or None when the full path must decide it. Byte for byte what the full path
    /// sends when Some.
    pub fn respond(
        &mut self,
        snapshot: &Arc<Snapshot>,
        request: &[u8],
        protocol: Protocol,
    ) -> Option<Answered> {
        if self.built_from.changed_to(snapshot) {
            self.negative_soa.clear();
        }
        let plain = parse(request)?;
        let name_len = plain.question.len() - TYPE_AND_CLASS;
        let mut lower = [0u8; 255];
        let name = &mut lower[..name_len];
        name.copy_from_slice(&plain.question[..name_len]);
        // Length octets are at most 63, below b'A', so lower-casing the whole name is safe.
        name.make_ascii_lowercase();
        let name = &*name;
        let (zone_index, zone) = zone_for(snapshot, name)?;
        let (rcode, count, section, authority) = match zone.index.find(name, plain.qtype) {
            Found::FullPath => return None,
            Found::Answer { count, section } => (ResponseCode::NoError, count, section, false),
            Found::NoData => (ResponseCode::NoError, 0, &[][..], true),
            Found::NxDomain => (ResponseCode::NXDomain, 0, &[][..], true),
        };
        let base = HEADER + plain.question.len();
        let section = if authority {
            let below_apex = &zone.index.soa_names_below_apex;
            if below_apex
                .iter()
                .any(|s| name.ends_with(s) && is_label_start(name, name.len() - s.len()))
            {
                return None;
            }
            self.negative_soa(zone_index, zone, name, base)?
        } else {
            section
        };
        let limit = match (protocol, plain.edns) {
            (Protocol::Udp, None) => 512,
            (Protocol::Udp, Some((_, payload))) => payload.clamp(512, MAX_UDP_PAYLOAD),
            _ => u16::MAX,
        };
        let len = base + section.len() + plain.edns.map_or(0, |_| OPT_LEN);
        if len > usize::from(limit) {
            return None; // Truncation is the full path's.
        }
        let mut bytes = Vec::with_capacity(len);
        bytes.extend_from_slice(&request[..2]);
        // QR and AA; RD and CD echoed, as hickory's `response_from_request` does.
        bytes.push(QR | AA | (request[2] & RD));
        bytes.push((request[3] & CD) | rcode.low());
        let (answers, authorities) = if authority { (0, 1) } else { (count, 0) };
        for n in [1, answers, authorities, u16::from(plain.edns.is_some())] {
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        bytes.extend_from_slice(plain.question);
        bytes.extend_from_slice(section);
        if let Some((dnssec_ok, _)) = plain.edns {
            let payload = MAX_UDP_PAYLOAD.to_be_bytes();
            let flags = if dnssec_ok { DO } else { 0 };
            let [t0, t1] = OPT.to_be_bytes();
            bytes.extend_from_slice(&[0, t0, t1, payload[0], payload[1], 0, 0, flags, 0, 0, 0]);
        }
        Some(Answered {
            bytes,
            rcode,
            qtype: Some(RecordType::from(plain.qtype)),
        })
    }

    /// The zone's negative-answer SOA as written after the question for `name`, which ends at
    /// `base`; rendered on first use. The same for every name of the zone whose question ends
    /// there: the SOA's names compress against the question's suffixes at and above the apex,
    /// whose places `base` fixes (the caller leaves the names that end in one of the SOA's
    /// own names below the apex to the full path).
    fn negative_soa(
        &mut self,
        zone_index: usize,
        zone: &ZoneSnapshot,
        name: &[u8],
        base: usize,
    ) -> Option<&[u8]> {
        if self.negative_soa.len() <= zone_index {
            self.negative_soa.resize_with(zone_index + 1, Vec::new);
        }
        let by_base = &mut self.negative_soa[zone_index];
        if by_base.len() <= base {
            by_base.resize_with(base + 1, || None);
        }
        let slot = &mut by_base[base];
        if slot.is_none() {
            *slot = Some(render(name, &[&zone.negative_soa])?.into_boxed_slice());
        }
        slot.as_deref()
    }
}

/// The most specific zone of `snapshot` containing `name` (lower-case wire form), as
/// [`Snapshot::zone_for`] picks it.
/// None when any zone has no pre-rendered answers (an unbuilt index knows no apex).
fn zone_for<'s>(snapshot: &'s Snapshot, name: &[u8]) -> Option<(usize, &'s ZoneSnapshot)> {
    if snapshot.zones.iter().any(|zone| !zone.index.built) {
        return None;
    }
    snapshot
        .zones
        .iter()
        .enumerate()
        .filter(|(_, zone)| {
            let origin = &zone.index.origin;
            name.ends_with(origin) && is_label_start(name, name.len() - origin.len())
        })
        .max_by_key(|(_, zone)| zone.index.origin.len())
}

/// Whether a label of the wire-form `name` starts at `offset`.
fn is_label_start(name: &[u8], offset: usize) -> bool {
    let mut at = 0;
    while at < offset {
        at += 1 + usize::from(name[at]);
    }
    at == offset
}

/// EDNS option codes hickory decodes rather than keeps as bytes (NSID, DAU, client subnet):
/// their content can make a request FORMERR, so they are the full path's.
const PARSED_OPTIONS: [u16; 3] = [3, 5, 8];

/// Whether `options` (an OPT record's data) is a whole sequence of options (code, length,
/// data) none of which hickory parses. The answer never depends on them (no option is echoed;
/// cookies from `dig` or BIND are ignored as on the full path), so such requests stay fast.
fn options_are_opaque(mut options: &[u8]) -> bool {
    while let [c0, c1, l0, l1, rest @ ..] = options {
        let len = usize::from(u16::from_be_bytes([*l0, *l1]));
        if PARSED_OPTIONS.contains(&u16::from_be_bytes([*c0, *c1])) || rest.len() < len {
            return false;
        }
        options = &rest[len..];
    }
    options.is_empty()
}

/// The request if it is one the fast path may answer: a query (QR clear, opcode QUERY) with
/// one question of class IN whose name is uncompressed, no answer or authority records, and
/// either nothing more or one OPT record of version 0 ending the message, whose options
/// [`options_are_opaque`]. Anything else — including what hickory would reject — is the full
/// path's.
fn parse(request: &[u8]) -> Option<Plain<'_>> {
    let header = request.get(..HEADER)?;
    if header[2] & 0xF8 != 0 {
        return None; // A response, or not a standard query.
    }
    let counts = |i: usize| u16::from_be_bytes([header[4 + 2 * i], header[5 + 2 * i]]);
    let additional = counts(3);
    if counts(0) != 1 || counts(1) != 0 || counts(2) != 0 || additional > 1 {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = usize::from(*request.get(at)?);
        if len > 63 {
            return None; // A pointer or an extended label type.
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let name_len = at - HEADER;
    if name_len > 255 {
        return None;
    }
    let tail = request.get(at..at + TYPE_AND_CLASS)?;
    let qtype = u16::from_be_bytes([tail[0], tail[1]]);
    let qclass = u16::from_be_bytes([tail[2], tail[3]]);
    // IN only; meta types (ANY, AXFR, IXFR, …: 128–255) and OPT are the full path's.
    if qclass != CLASS_IN || (128..=255).contains(&qtype) || qtype == OPT {
        return None;
    }
    let question = &request[HEADER..at + TYPE_AND_CLASS];
    let rest = &request[at + TYPE_AND_CLASS..];
    let edns = match (additional, rest) {
        (0, []) => None,
        // The root name, OPT, the payload size, extended rcode and version 0, the flags.
        (1, [0, t0, t1, p0, p1, 0, 0, flags, _, l0, l1, options @ ..])
            if u16::from_be_bytes([*t0, *t1]) == OPT
                && usize::from(u16::from_be_bytes([*l0, *l1])) == options.len()
                && options_are_opaque(options) =>
        {
            Some((flags & DO != 0, u16::from_be_bytes([*p0, *p1])))
        }
        _ => return None,
    };
    Some(Plain {
        question,
        qtype,
        edns,
    })
}

#[cfg(test)]
mod tests;
