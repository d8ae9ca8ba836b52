//! One zone's static answers in wire form, rendered once when the zone loads (see
//! [`super`] for why and how they are served). Built from the zone and its service names; it
//! knows nothing of snapshots or requests, so the snapshot can hold it beside the zone.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};

use crate::dns::compose::Composer;
use crate::dns::wire::{ANSWER, MAX_UDP_PAYLOAD, additional_target, lower_wire};
use crate::zone::{StaticZone, labels};
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};

pub(super) use crate::dns::compose::HEADER;
pub(super) use crate::dns::wire::OPT_LEN;
/// A question's type and class after its name.
pub(super) const TYPE_AND_CLASS: usize = 4;
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
    pub(super) built: bool,
    /// The apex, lower-case wire form.
    pub(super) origin: Box<[u8]>,
    /// Whether a name missing from the index does not exist: true unless the zone has
    /// delegations (a missing name below one is a referral) or wildcards (it may be
    /// synthesised).
    missing_is_nxdomain: bool,
    /// The SOA's MNAME and RNAME and each of their suffixes, where strictly below the apex
    /// (lower-case wire form). A question for a name ending in one of them lets the negative
    /// answer's SOA compress against it, so that SOA is not the same for every question of its
    /// length, and the full path writes it.
    pub(super) soa_names_below_apex: Vec<Box<[u8]>>,
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
pub(super) enum Found<'a> {
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
            missing_is_nxdomain: zone.cuts.is_empty()
                && zone.wildcards.is_empty()
                && zone.dnames.is_empty(),
            soa_names_below_apex: soa_names_below_apex(zone),
            ..Self::default()
        };
        let names = zone.nodes.keys().chain(zone.recordless.iter());
        let mut entries = 0;
        for name in names {
            let full_path = *name == zone.origin_key
                || services.contains(name)
                || zone.enclosing_cut(name).is_some()
                || zone.dname_above(name).is_some();
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
                    .then(|| render(&wire, &records))
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
    pub(super) fn find(&self, name: &[u8], qtype: u16) -> Found<'_> {
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

/// See [`Prerendered::soa_names_below_apex`].
fn soa_names_below_apex(zone: &StaticZone) -> Vec<Box<[u8]>> {
    let RData::SOA(soa) = &zone.soa.data else {
        return Vec::new();
    };
    let mut names = Vec::new();
    for name in [&soa.mname, &soa.rname] {
        let mut name = LowerName::new(name);
        while labels(&name) > labels(&zone.origin_key) && zone.origin_key.zone_of(&name) {
            names.push(lower_wire(&Name::from(&name)).into_boxed_slice());
            name = name.base_name();
        }
    }
    names
}

/// Whether the full path adds records of this zone to the additional section for `records`:
/// those may be a service's, which change.
fn needs_additional(zone: &StaticZone, records: &[&Record]) -> bool {
    records
        .iter()
        .any(|record| additional_target(&zone.origin_key, record).is_some())
}

/// `records` as the full path writes them in the answer section of a response to a question
/// for `name` (lower-case wire form): compressed against the question and each other. The
/// bytes after the question.
pub(super) fn render(name: &[u8], records: &[&Record]) -> Option<Vec<u8>> {
    let mut message = Composer::new([0; 4], usize::from(u16::MAX), 0);
    let mut question = Vec::with_capacity(name.len() + TYPE_AND_CLASS);
    question.extend_from_slice(name);
    question.extend_from_slice(&[0; TYPE_AND_CLASS]);
    message.question(&question).ok()?;
    let base = message.written();
    for record in records {
        message.record(ANSWER, record).ok()?;
    }
    Some(message.since(base).to_vec())
}
