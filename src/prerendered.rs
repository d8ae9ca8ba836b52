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
//! The bytes are the full path's own: each section is rendered by hickory's encoder at the
//! offset where the full path writes it (that encoder never compresses against the echoed
//! question, so a section depends only on where it starts, not on the question's case), and
//! tests compare both paths byte for byte over every name and type of several zones, many
//! request shapes and random requests. Whatever is not provably the same — service names, the
//! apex (its SOA serial moves), delegations, CNAMEs, wildcards, additional-section records,
//! meta types, EDNS options, answers that would truncate — is left to the full path (`None`).

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, Record, RecordType};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder};

use crate::dns::answer::additional_target;
use crate::dns::server::{Answered, MAX_UDP_PAYLOAD, Protocol};
use crate::snapshot::{BuiltFrom, Snapshot, ZoneSnapshot};
use crate::zone::StaticZone;

/// The fixed DNS header.
const HEADER: usize = 12;
/// A question's type and class after its name.
const TYPE_AND_CLASS: usize = 4;
/// An OPT record without options: root name, type, class, TTL, RDLENGTH.
const OPT_LEN: usize = 11;
/// Most bytes of pre-rendered answers per zone: table slots hold 32-bit offsets.
const ARENA_LIMIT: usize = u32::MAX as usize - 1;
/// An entry's kind: the name is answered by the full path.
const FULL_PATH: u8 = 0;
/// An entry's kind: the name exists; its listed types have their answers, others are NODATA.
const EXISTS: u8 = 1;

/// One zone's pre-rendered answers: every name of the zone, lower-case in wire form, with
/// what it answers. Names live in one arena, each followed by its answers, and an
/// open-addressing table of 8-byte slots points into it, so a million names cost about 90 MB
/// and a lookup touches two places in memory.
#[derive(Debug, Clone, Default)]
pub struct Prerendered {
    /// False until built: an empty index must mean "ask the full path", never "NXDOMAIN".
    built: bool,
    /// The apex, lower-case wire form.
    origin: Box<[u8]>,
    /// Whether a name missing from the index does not exist: true unless the zone has
    /// delegations (a missing name below one is a referral) or wildcards (it may be
    /// synthesised).
    missing_is_nxdomain: bool,
    /// Entries: name length, name, kind, type count, then per type: type, record count (0:
    /// the full path answers it), section length and the answer section.
    arena: Vec<u8>,
    /// The entries by the hash of their name.
    table: Table,
    /// Keyed per process: query names are chosen by whoever sends them.
    hasher: RandomState,
}

/// Offsets of arena entries by name hash: linear probing over slots of (the hash's high 32
/// bits, offset + 1), 0 for empty, at most three quarters full.
///
/// By hand rather than `hashbrown`: one 8-byte slot holds both a tag that rules out almost
/// every other name and the offset, so a lookup costs one cache miss in the table (hashbrown's
/// separate control bytes cost a second), and the slots are one allocation that can be
/// backed by huge pages (see [`advise_huge_pages`]).
#[derive(Debug, Clone, Default)]
struct Table {
    slots: Vec<u64>,
}

impl Table {
    fn with_entries(entries: usize) -> Self {
        let len = (entries * 4 / 3 + 1).next_power_of_two().max(16);
        let mut slots = vec![0u64; len];
        advise_huge_pages(&mut slots);
        Self { slots }
    }

    fn insert(&mut self, hash: u64, at: u32) {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = (hash >> 32) << 32 | (u64::from(at) + 1);
    }

    /// The offset of the entry for `name`, whose hash is `hash`, if any.
    fn find(&self, hash: u64, arena: &[u8], name: &[u8]) -> Option<u32> {
        let mask = self.slots.len().checked_sub(1)?;
        let mut i = hash as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            let at = (slot as u32).wrapping_sub(1);
            if slot >> 32 == hash >> 32 && entry_name(arena, at) == name {
                return Some(at);
            }
            i = (i + 1) & mask;
        }
    }
}

/// What the index says about one question.
#[derive(Debug, PartialEq, Eq)]
enum Found<'a> {
    /// NOERROR with `count` records in the answer section `section`.
    Answer { count: u16, section: &'a [u8] },
    /// The name exists without records of the type.
    NoData,
    /// The name does not exist.
    NxDomain,
    /// Only the full path knows.
    FullPath,
}

impl Prerendered {
    /// Renders the answers of `zone`, whose dynamic names are `services`. Built once per zone
    /// load; about a second for a million names.
    pub fn build(zone: &StaticZone, services: &HashSet<LowerName>) -> Self {
        let mut index = Self {
            built: true,
            origin: lower_wire(&zone.origin).into_boxed_slice(),
            missing_is_nxdomain: zone.cuts.is_empty() && zone.wildcards.is_empty(),
            ..Self::default()
        };
        let names = zone.nodes.keys().chain(zone.recordless.iter());
        let mut entries = 0;
        for name in names {
            let full_path = *name == zone.origin_key
                || services.contains(name)
                || zone.enclosing_cut(name).is_some();
            entries += usize::from(index.add(zone, name, full_path));
        }
        // Copied into memory advised before it is touched, so the kernel backs it with huge
        // pages as it fills: a lookup in a million names is then no TLB miss.
        let mut arena = Vec::with_capacity(index.arena.len());
        advise_huge_pages(arena.spare_capacity_mut());
        arena.extend_from_slice(&index.arena);
        index.arena = arena;
        index.table = Table::with_entries(entries);
        let mut at = 0;
        while at < index.arena.len() {
            let name = entry_name(&index.arena, at as u32);
            index.table.insert(index.hasher.hash_one(name), at as u32);
            at = entry_end(&index.arena, at);
        }
        index
    }

    /// Appends the entry of `name`; false if the arena is full (4 GiB: the rest of the zone
    /// is then answered by the full path, the fast path calling its names FullPath).
    fn add(&mut self, zone: &StaticZone, name: &LowerName, full_path: bool) -> bool {
        if self.arena.len() >= ARENA_LIMIT {
            self.missing_is_nxdomain = false;
            return false;
        }
        let wire = lower_wire(&Name::from(name));
        let node = zone.nodes.get(name);
        let has_cname = node.is_some_and(|n| n.rrset(RecordType::CNAME).is_some());
        self.arena.push(wire.len() as u8);
        self.arena.extend_from_slice(&wire);
        let rrsets = node.map_or(&[][..], |n| &n.rrsets[..]);
        if full_path || has_cname || rrsets.len() > usize::from(u8::MAX) {
            self.arena.extend_from_slice(&[FULL_PATH, 0]);
        } else {
            let count_at = self.arena.len() + 1;
            self.arena.extend_from_slice(&[EXISTS, 0]);
            let base = HEADER + wire.len() + TYPE_AND_CLASS;
            let mut types = 0u8;
            for set in rrsets {
                let records: Vec<&Record> = set.records_without_rrsigs().collect();
                let section = (!needs_additional(zone, &records))
                    .then(|| render(&records, base))
                    .flatten()
                    .filter(|s| base + s.len() + OPT_LEN <= usize::from(MAX_UDP_PAYLOAD));
                let (count, section) = match section {
                    Some(section) if !records.is_empty() => (records.len() as u16, section),
                    _ => (0, Vec::new()),
                };
                self.arena
                    .extend_from_slice(&u16::from(set.record_type()).to_be_bytes());
                self.arena.extend_from_slice(&count.to_be_bytes());
                self.arena
                    .extend_from_slice(&(section.len() as u16).to_be_bytes());
                self.arena.extend_from_slice(&section);
                types += 1;
            }
            self.arena[count_at] = types;
        }
        true
    }

    /// What the zone answers to `qtype` at `name` (lower-case wire form, inside the zone).
    fn find(&self, name: &[u8], qtype: u16) -> Found<'_> {
        let hash = self.hasher.hash_one(name);
        let Some(at) = self.table.find(hash, &self.arena, name) else {
            return if self.missing_is_nxdomain {
                Found::NxDomain
            } else {
                Found::FullPath
            };
        };
        let rest = &self.arena[at as usize + 1 + name.len()..];
        let (kind, types) = (rest[0], rest[1]);
        if kind == FULL_PATH {
            return Found::FullPath;
        }
        match type_entries(&rest[2..], types).find(|(rtype, ..)| *rtype == qtype) {
            Some((_, 0, _)) => Found::FullPath,
            Some((_, count, section)) => Found::Answer { count, section },
            None => Found::NoData,
        }
    }
}

/// The `types` per-type parts of an entry, from `rest` (the bytes after its kind and type
/// count): (record type, record count, answer section).
fn type_entries(mut rest: &[u8], types: u8) -> impl Iterator<Item = (u16, u16, &[u8])> {
    (0..types).map(move |_| {
        let rtype = u16::from_be_bytes([rest[0], rest[1]]);
        let count = u16::from_be_bytes([rest[2], rest[3]]);
        let len = usize::from(u16::from_be_bytes([rest[4], rest[5]]));
        let section = &rest[6..6 + len];
        rest = &rest[6 + len..];
        (rtype, count, section)
    })
}

/// The end of the entry that starts at `at` (the start of the next).
fn entry_end(arena: &[u8], at: usize) -> usize {
    let kind_at = at + 1 + usize::from(arena[at]);
    let types = type_entries(&arena[kind_at + 2..], arena[kind_at + 1]);
    types.fold(kind_at + 2, |end, (_, _, section)| end + 6 + section.len())
}

/// Asks the kernel to back the 2 MiB-aligned part of `memory` with huge pages. A hint: where
/// transparent huge pages are off, or the call fails, nothing changes.
///
/// Measured on a zone of a million hosts: lookups land at random in ~90 MB, and with 4 KiB
/// pages each one also missed the TLB; with huge pages user CPU per query went down by a
/// quarter. (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1` would do it for the whole heap.)
fn advise_huge_pages<T>(memory: &mut [T]) {
    const HUGE_PAGE: usize = 2 << 20;
    let start = memory.as_mut_ptr() as usize;
    let end = start + std::mem::size_of_val(memory);
    let aligned_start = start.next_multiple_of(HUGE_PAGE);
    let aligned_end = end / HUGE_PAGE * HUGE_PAGE;
    if aligned_end <= aligned_start {
        return;
    }
    // SAFETY: MADV_HUGEPAGE changes how the kernel backs the range, never its contents, and
    // the range lies inside `memory`, a live allocation this function borrows exclusively,
    // so it is mapped; its start is aligned to 2 MiB and so to the page size, as madvise(2)
    // requires.
    let result = unsafe {
        libc::madvise(
            aligned_start as *mut libc::c_void,
            aligned_end - aligned_start,
            libc::MADV_HUGEPAGE,
        )
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "no huge pages for pre-rendered answers");
    }
}

/// The name at the start of the entry at `at`.
fn entry_name(arena: &[u8], at: u32) -> &[u8] {
    let at = at as usize;
    &arena[at + 1..at + 1 + usize::from(arena[at])]
}

/// `name` in uncompressed wire form, lower-case.
fn lower_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}

/// Whether the full path adds records of this zone to the additional section for `records`:
/// those may be a service's, which change.
fn needs_additional(zone: &StaticZone, records: &[&Record]) -> bool {
    records
        .iter()
        .any(|record| additional_target(&zone.origin_key, record).is_some())
}

/// `records` encoded as the full path's encoder writes them from offset `base` of a message.
fn render(records: &[&Record], base: usize) -> Option<Vec<u8>> {
    let mut buffer = vec![0; base];
    let mut encoder = BinEncoder::with_offset(&mut buffer, u32::try_from(base).ok()?);
    for record in records {
        record.emit(&mut encoder).ok()?;
    }
    Some(buffer.split_off(base))
}

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
        let (rcode, count, section, authority) = match zone.data.prerendered.find(name, plain.qtype)
        {
            Found::FullPath => return None,
            Found::Answer { count, section } => (ResponseCode::NoError, count, section, false),
            Found::NoData => (ResponseCode::NoError, 0, &[][..], true),
            Found::NxDomain => (ResponseCode::NXDomain, 0, &[][..], true),
        };
        let base = HEADER + plain.question.len();
        let section = if authority {
            self.negative_soa(zone_index, zone, base)?
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
        bytes.push(0x84 | (request[2] & 0x01));
        bytes.push((request[3] & 0x10) | rcode.low());
        let (answers, authorities) = if authority { (0, 1) } else { (count, 0) };
        for n in [1, answers, authorities, u16::from(plain.edns.is_some())] {
            bytes.extend_from_slice(&n.to_be_bytes());
        }
        bytes.extend_from_slice(plain.question);
        bytes.extend_from_slice(section);
        if let Some((dnssec_ok, _)) = plain.edns {
            let payload = MAX_UDP_PAYLOAD.to_be_bytes();
            let flags = if dnssec_ok { 0x80 } else { 0 };
            bytes.extend_from_slice(&[0, 0, 41, payload[0], payload[1], 0, 0, flags, 0, 0, 0]);
        }
        Some(Answered {
            bytes,
            rcode,
            qtype: Some(RecordType::from(plain.qtype)),
        })
    }

    /// The zone's negative-answer SOA as encoded from offset `base`, rendered on first use.
    fn negative_soa(
        &mut self,
        zone_index: usize,
        zone: &ZoneSnapshot,
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
            *slot = Some(render(&[&zone.negative_soa], base)?.into_boxed_slice());
        }
        slot.as_deref()
    }
}

/// The most specific zone of `snapshot` containing `name` (lower-case wire form), as
/// [`Snapshot::zone_for`] picks it.
/// None when any zone has no pre-rendered answers (an unbuilt index knows no apex).
fn zone_for<'s>(snapshot: &'s Snapshot, name: &[u8]) -> Option<(usize, &'s ZoneSnapshot)> {
    if snapshot
        .zones
        .iter()
        .any(|zone| !zone.data.prerendered.built)
    {
        return None;
    }
    snapshot
        .zones
        .iter()
        .enumerate()
        .filter(|(_, zone)| {
            let origin = &zone.data.prerendered.origin;
            name.ends_with(origin) && is_label_start(name, name.len() - origin.len())
        })
        .max_by_key(|(_, zone)| zone.data.prerendered.origin.len())
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
    if qclass != 1 || (128..=255).contains(&qtype) || qtype == 41 {
        return None;
    }
    let question = &request[HEADER..at + TYPE_AND_CLASS];
    let rest = &request[at + TYPE_AND_CLASS..];
    let edns = match (additional, rest) {
        (0, []) => None,
        (1, [0, 0, 41, p0, p1, 0, 0, flags, _, l0, l1, options @ ..])
            if usize::from(u16::from_be_bytes([*l0, *l1])) == options.len()
                && options_are_opaque(options) =>
        {
            Some((flags & 0x80 != 0, u16::from_be_bytes([*p0, *p1])))
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
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use hickory_proto::rr::Name;

    use super::*;
    use crate::dns::server::{Protocol, respond_to_bytes};
    use crate::snapshot::{ServerStrings, ServiceRecords};

    /// Delegations, wildcards, CNAMEs and in-zone MX/SRV targets: much is the full path's.
    const TRICKY: &str = "$ORIGIN svc.example.test.\n$TTL 3600\n\
        @ IN SOA ns1 hostmaster 42 7200 900 1209600 60\n\
        @ IN NS ns1\n@ IN NS ns.elsewhere.test.\nns1 IN A 192.0.2.1\n\
        static IN A 192.0.2.80\nx.y IN TXT \"deep\"\n\
        alias IN CNAME www\nout IN CNAME www.elsewhere.test.\n\
        *.wild IN A 192.0.2.99\nhere.wild IN TXT \"real\"\n\
        child IN NS ns.child\nns.child IN A 192.0.2.53\n\
        mail IN MX 10 www\nmail IN MX 30 mx.elsewhere.test.\n\
        _sip._tcp IN SRV 0 0 5060 static\nwww IN TXT \"service with a static TXT\"\n";

    /// A plain zone, as most are: no delegation or wildcard, so NXDOMAIN is served fast too.
    const PLAIN: &str = "$ORIGIN Example.TEST.\n$TTL 300\n\
        @ IN SOA ns1.example.test. hostmaster.example.test. 7 7200 900 1209600 120\n\
        @ IN NS ns1\nns1 IN A 192.0.2.1\nHost1 IN A 192.0.2.10\nhost2 IN A 192.0.2.11\n\
        host2 IN A 192.0.2.12\nhost2 IN AAAA 2001:db8::12\nhost2 IN TXT \"two\"\n\
        mx IN MX 10 mail.elsewhere.test.\nmx2 IN MX 10 host1\n\
        srv IN SRV 1 2 443 host.elsewhere.test.\na.b.c IN TXT \"below empty non-terminals\"\n\
        ptr IN PTR host1.example.test.\ncaa IN CAA 0 issue \"ca.example\"\n\
        big IN TXT \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" \"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\" \"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc\"\n";

    /// Wildcards without delegations.
    const WILD: &str = "$ORIGIN wild.test.\n$TTL 60\n\
        @ IN SOA ns1 hostmaster 1 7200 900 1209600 30\n@ IN NS ns1\nns1 IN A 192.0.2.1\n\
        *.w IN A 192.0.2.99\nhere.w IN TXT \"real\"\n*.deep.er IN TXT \"deeper\"\n";

    /// A zone inside PLAIN's, so the most specific zone must be picked.
    const CHILD: &str = "$ORIGIN sub.example.test.\n$TTL 60\n\
        @ IN SOA ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 30\n\
        @ IN NS ns1.example.test.\nhost IN A 192.0.2.77\n";

    fn zone(origin: &str, text: &str, services: &[&str]) -> (ZoneSnapshot, Vec<String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("z.zone");
        std::fs::write(&path, text).expect("write");
        let origin = Name::from_ascii(origin).expect("origin");
        let mut data = crate::zone::load(&path, &origin).expect("zone loads");
        let mut records = HashMap::new();
        let mut keys = HashSet::new();
        for service in services {
            let name = Name::from_ascii(service).expect("name");
            let key = LowerName::new(&name);
            data.add_name(&key);
            let addresses = ["127.0.0.11".parse().expect("ip")];
            records.insert(
                key.clone(),
                Arc::new(ServiceRecords::new(&name, 5, &addresses)),
            );
            keys.insert(key);
        }
        data.prerendered = Prerendered::build(&data, &keys);
        let names = data
            .nodes
            .keys()
            .chain(data.recordless.iter())
            .map(ToString::to_string)
            .collect();
        (ZoneSnapshot::new(Arc::new(data), 1000, records), names)
    }

    /// Snapshots of the test zones, with the names each holds plus some that do not exist.
    fn snapshots() -> Vec<(Arc<Snapshot>, Vec<String>)> {
        let server = Arc::new(ServerStrings::default());
        let missing = [
            "nx.svc.example.test.",
            "a.b.child.svc.example.test.",
            "other.wild.svc.example.test.",
            "nx.example.test.",
            "deep.nx.example.test.",
            "nx.b.c.example.test.",
            "nx.sub.example.test.",
            "elsewhere.test.",
            "other.w.wild.test.",
            "a.b.w.wild.test.",
            "x.deep.er.wild.test.",
            "nx.wild.test.",
        ];
        let sets: [&[(&str, &str, &[&str])]; 4] = [
            &[("svc.example.test.", TRICKY, &["www.svc.example.test."])],
            &[(
                "example.test.",
                PLAIN,
                &["www.example.test.", "host2.example.test."],
            )],
            &[
                ("example.test.", PLAIN, &[]),
                ("sub.example.test.", CHILD, &[]),
            ],
            &[("wild.test.", WILD, &[])],
        ];
        sets.iter()
            .map(|zones| {
                let mut names: Vec<String> = missing.iter().map(ToString::to_string).collect();
                let zones = zones
                    .iter()
                    .map(|(origin, text, services)| {
                        let (zone, zone_names) = zone(origin, text, services);
                        names.extend(zone_names);
                        zone
                    })
                    .collect();
                let snapshot = Snapshot {
                    zones,
                    server: Arc::clone(&server),
                };
                (Arc::new(snapshot), names)
            })
            .collect()
    }

    fn wire_name(name: &str) -> Vec<u8> {
        let mut wire = Vec::new();
        for label in name.split('.').filter(|l| !l.is_empty()) {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label.as_bytes());
        }
        wire.push(0);
        wire
    }

    /// A request for `name` and `qtype` with header flag bytes `flags` and, if given, an OPT
    /// record with that payload size and DO bit.
    fn request(
        id: u16,
        flags: [u8; 2],
        name: &str,
        qtype: u16,
        edns: Option<(u16, bool)>,
    ) -> Vec<u8> {
        request_with_options(id, flags, name, qtype, edns, &[])
    }

    /// As [`request`], the OPT record (if any) carrying `options` as its data.
    fn request_with_options(
        id: u16,
        flags: [u8; 2],
        name: &str,
        qtype: u16,
        edns: Option<(u16, bool)>,
        options: &[u8],
    ) -> Vec<u8> {
        let mut bytes = id.to_be_bytes().to_vec();
        bytes.extend_from_slice(&flags);
        bytes.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(edns.is_some())]);
        bytes.extend_from_slice(&wire_name(name));
        bytes.extend_from_slice(&qtype.to_be_bytes());
        bytes.extend_from_slice(&[0, 1]);
        if let Some((payload, dnssec_ok)) = edns {
            let [p0, p1] = payload.to_be_bytes();
            let flags = if dnssec_ok { 0x80 } else { 0 };
            let [l0, l1] = (options.len() as u16).to_be_bytes();
            bytes.extend_from_slice(&[0, 0, 41, p0, p1, 0, 0, flags, 0, l0, l1]);
            bytes.extend_from_slice(options);
        }
        bytes
    }

    /// Requests in every shape the fast path distinguishes, for each name and type.
    fn requests(names: &[String]) -> Vec<Vec<u8>> {
        let qtypes = [
            1, 28, 15, 16, 33, 2, 6, 5, 12, 257, 0, 99, 41, 255, 252, 251, 43, 46, 65535,
        ];
        let edns = [
            None,
            Some((1232, false)),
            Some((4096, true)),
            Some((100, false)),
            Some((600, true)),
        ];
        let flags = [
            [0x01, 0x00],
            [0x00, 0x00],
            [0x01, 0x30],
            [0x03, 0x40],
            [0x05, 0x0f],
        ];
        let mut requests = Vec::new();
        for (n, name) in names.iter().enumerate() {
            let cases = [name.clone(), name.to_uppercase(), mixed_case(name)];
            for (q, qtype) in qtypes.iter().enumerate() {
                for (c, case) in cases.iter().enumerate() {
                    let e = edns[(n + q + c) % edns.len()];
                    let f = flags[(n * 3 + q + c) % flags.len()];
                    requests.push(request((n * 31 + q) as u16, f, case, *qtype, e));
                }
            }
            for (o, options) in OPTIONS.iter().enumerate() {
                let e = Some((1232, o % 2 == 0));
                requests.push(request_with_options(7, [1, 0], name, 1, e, options));
            }
        }
        requests
    }

    /// OPT data: a cookie as dig sends it, padding, keepalive, two at once, an empty NSID,
    /// client subnets valid and not, options cut short or overrunning, a stray byte.
    const OPTIONS: [&[u8]; 10] = [
        &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8],
        &[0, 12, 0, 3, 0, 0, 0],
        &[0, 11, 0, 0],
        &[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 12, 0, 0],
        &[0, 3, 0, 0],
        &[0, 8, 0, 7, 0, 1, 24, 0, 192, 0, 2],
        &[0, 8, 0, 2, 0, 9],
        &[0, 10, 0, 9, 1, 2, 3],
        &[0, 10, 0, 1],
        &[0, 10, 0, 0, 7],
    ];

    fn mixed_case(name: &str) -> String {
        name.chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }

    /// Whether the fast path answers `request` (a fresh worker each time, and one that has
    /// answered before), and if so, exactly as the full path does.
    /// Over UDP and over TCP; true when the fast path answered over UDP (and then it must
    /// over TCP too, where only the size limit differs and is larger).
    fn check(worker: &mut FastPath, snapshot: &Arc<Snapshot>, request: &[u8]) -> bool {
        let mut answered = Vec::new();
        for protocol in [Protocol::Udp, Protocol::Tcp] {
            let full = respond_to_bytes(snapshot, request, protocol);
            let fast = FastPath::default().respond(snapshot, request, protocol);
            let again = worker.respond(snapshot, request, protocol);
            assert_eq!(
                fast.as_ref().map(|a| &a.bytes),
                again.as_ref().map(|a| &a.bytes)
            );
            if let Some(fast) = fast {
                let context = format!("{protocol:?} request {request:02x?}");
                assert_eq!(Some(&fast.bytes), full.as_ref(), "{context}");
                answered.push(protocol);
            }
        }
        match answered[..] {
            [] | [Protocol::Tcp] => false,
            [Protocol::Udp, Protocol::Tcp] => true,
            _ => panic!("answered fast over {answered:?} only: {request:02x?}"),
        }
    }

    #[test]
    fn fast_answers_are_the_full_paths_bytes_for_every_name_type_and_request_shape() {
        let mut fast_answers = 0;
        let mut total = 0;
        for (snapshot, names) in snapshots() {
            let mut worker = FastPath::default();
            for request in requests(&names) {
                total += 1;
                fast_answers += usize::from(check(&mut worker, &snapshot, &request));
            }
        }
        // Most requests of the plain zones take the fast path; the test is not vacuous.
        assert!(fast_answers > total / 4, "{fast_answers} of {total}");
    }

    #[test]
    fn static_answers_nodata_and_nxdomain_are_fast_and_dynamic_names_are_not() {
        let (snapshot, _) = snapshots().swap_remove(1);
        let mut worker = FastPath::default();
        let rcode = |worker: &mut FastPath, name: &str, qtype: u16| {
            worker
                .respond(
                    &snapshot,
                    &request(7, [1, 0], name, qtype, None),
                    Protocol::Udp,
                )
                .map(|a| a.rcode)
        };
        for (name, qtype, expected) in [
            ("HOST1.example.test.", 1, ResponseCode::NoError),
            ("host1.example.test.", 15, ResponseCode::NoError),
            ("b.c.example.test.", 1, ResponseCode::NoError),
            ("nx.example.test.", 1, ResponseCode::NXDomain),
            ("mx.example.test.", 15, ResponseCode::NoError),
        ] {
            assert_eq!(
                rcode(&mut worker, name, qtype),
                Some(expected),
                "{name} {qtype}"
            );
        }
        // Service names (also one with static records), the apex, an MX whose target is in
        // the zone, and an answer too big for 512 bytes take the full path.
        for (name, qtype) in [
            ("www.example.test.", 1),
            ("host2.example.test.", 16),
            ("example.test.", 6),
            ("example.test.", 1),
            ("mx2.example.test.", 15),
            ("big.example.test.", 16),
        ] {
            assert_eq!(rcode(&mut worker, name, qtype), None, "{name} {qtype}");
        }
        // A cookie (dig sends one by default) keeps a request fast; a client subnet does not.
        let cookie = request_with_options(
            7,
            [1, 0],
            "host1.example.test.",
            1,
            Some((1232, false)),
            OPTIONS[0],
        );
        assert!(check(&mut worker, &snapshot, &cookie));
        let subnet = request_with_options(
            7,
            [1, 0],
            "host1.example.test.",
            1,
            Some((1232, false)),
            OPTIONS[5],
        );
        assert!(worker.respond(&snapshot, &subnet, Protocol::Udp).is_none());
        // With EDNS the big answer fits and is fast.
        let big = request(7, [1, 0], "big.example.test.", 16, Some((1232, false)));
        assert!(check(&mut worker, &snapshot, &big));
    }

    #[test]
    fn nxdomain_is_left_to_the_full_path_where_delegations_or_wildcards_could_apply() {
        let mut worker = FastPath::default();
        let mut assert_left_alone = |snapshot: &Arc<Snapshot>, names: &[&str]| {
            for name in names {
                let request = request(9, [1, 0], name, 1, None);
                let fast = worker.respond(snapshot, &request, Protocol::Udp);
                assert!(fast.is_none(), "{name}");
            }
        };
        let (snapshot, _) = snapshots().swap_remove(0);
        assert_left_alone(
            &snapshot,
            &[
                "nx.svc.example.test.",
                "a.b.child.svc.example.test.",
                "other.wild.svc.example.test.",
                "ns.child.svc.example.test.",
                "alias.svc.example.test.",
            ],
        );
        let (wild, _) = snapshots().swap_remove(3);
        assert_left_alone(
            &wild,
            &[
                "nx.wild.test.",
                "other.w.wild.test.",
                "x.deep.er.wild.test.",
            ],
        );
        let static_a = request(9, [1, 0], "static.svc.example.test.", 1, None);
        assert!(check(&mut worker, &snapshot, &static_a));
        let txt = request(9, [1, 0], "here.w.wild.test.", 16, None);
        assert!(check(&mut worker, &wild, &txt));
    }

    #[test]
    fn random_and_mutated_requests_are_either_left_alone_or_answered_alike() {
        let (snapshot, names) = snapshots().swap_remove(1);
        let seeds = requests(&names);
        let mut worker = FastPath::default();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut fast_answers = 0;
        for round in 0..60_000 {
            let mut request = seeds[next() as usize % seeds.len()].clone();
            match round % 6 {
                0 => {
                    let at = next() as usize % request.len();
                    request[at] ^= 1 << (next() % 8);
                }
                1 => {
                    let at = next() as usize % request.len();
                    request[at] = next() as u8;
                }
                2 => request.truncate(next() as usize % request.len()),
                3 => request.push(next() as u8),
                4 => {
                    // A count or flag byte set at random.
                    let at = 2 + next() as usize % 10;
                    request[at] = next() as u8;
                }
                _ => {
                    let at = next() as usize % request.len();
                    request.insert(at, next() as u8);
                }
            }
            fast_answers += usize::from(check(&mut worker, &snapshot, &request));
        }
        assert!(fast_answers > 1000, "{fast_answers}");
    }

    #[test]
    fn names_at_the_length_limit_are_answered_alike() {
        let (snapshot, _) = snapshots().swap_remove(1);
        let mut worker = FastPath::default();
        // "example.test." is 14 bytes on the wire; labels of 63 then one of `last` bytes.
        for last in 1..=63 {
            let mut name = String::new();
            for _ in 0..3 {
                name.push_str(&"a".repeat(63));
                name.push('.');
            }
            name.push_str(&"b".repeat(last));
            name.push_str(".example.test.");
            let request = request(3, [1, 0], &name, 1, None);
            check(&mut worker, &snapshot, &request);
        }
        // A label length of 64 and up is no plain label (RFC 6891 §5: 0b01 is an extended
        // label type): FORMERR on the full path, so never answered fast.
        for len in [63u8, 64, 65, 127, 128, 191] {
            let mut request = request(3, [1, 0], "example.test.", 1, None);
            let mut label = vec![len];
            label.extend(std::iter::repeat_n(b'a', usize::from(len)));
            request.splice(HEADER..HEADER, label);
            check(&mut worker, &snapshot, &request);
        }
    }

    #[test]
    fn every_name_of_a_large_zone_is_found_and_no_other() {
        let mut text =
            String::from("$ORIGIN big.test.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n");
        for i in 0..5000 {
            text.push_str(&format!("host{i} IN A 192.0.2.{}\n", i % 250));
        }
        let (zone, _) = zone("big.test.", &text, &[]);
        let index = &zone.data.prerendered;
        let wire = |name: String| lower_wire(&Name::from_ascii(name).expect("name"));
        for i in 0..5000 {
            let found = index.find(&wire(format!("HOST{i}.big.test.")), 1);
            assert!(
                matches!(found, Found::Answer { count: 1, .. }),
                "host{i}: {found:?}"
            );
            let missing = index.find(&wire(format!("host{i}x.big.test.")), 1);
            assert_eq!(missing, Found::NxDomain, "host{i}x");
        }
        assert_eq!(index.find(&wire("big.test.".into()), 6), Found::FullPath);
    }

    #[test]
    fn negative_answers_carry_the_current_snapshots_serial() {
        let (old, _) = snapshots().swap_remove(1);
        let zone = &old.zones[0];
        let newer = Arc::new(Snapshot {
            zones: vec![ZoneSnapshot::new(
                Arc::clone(&zone.data),
                2000,
                zone.services.clone(),
            )],
            server: Arc::clone(&old.server),
        });
        let mut worker = FastPath::default();
        let request = request(5, [1, 0], "nx.example.test.", 1, None);
        assert!(check(&mut worker, &old, &request));
        // The same worker, with no word but the new snapshot itself.
        assert!(check(&mut worker, &newer, &request));
        assert_ne!(
            respond_to_bytes(&old, &request, Protocol::Udp),
            respond_to_bytes(&newer, &request, Protocol::Udp)
        );
    }
}
