//! Writing a response on the wire: the header, the echoed question, records with their names
//! compressed (RFC 1035 §4.1.4), and the OPT record. Both answer paths write through it — the
//! full path message by message ([`super::request`]), the fast path when it renders a zone's
//! answers at load ([`super::fast::index`]) — so their bytes are the same by construction.
//!
//! Why by hand: hickory's encoder compresses at most 120 names and keeps 64 candidates per
//! message (a guard against its linear search), and never against the echoed question, so a
//! big RRset goes out with every owner name spelled out: 2,000 A records took 54,613 bytes
//! where Knot sends 32,041. Here every suffix of every name written (the question's too) is a
//! candidate, found by hash and confirmed against the bytes already written, so compressing
//! costs a few lookups per name however large the message.
//!
//! Names inside RDATA are compressed only for the types RFC 1035 defined with them (NS, CNAME,
//! PTR, MX, SOA), as RFC 3597 §4 requires; everything else is written as hickory encodes it,
//! uncompressed. Imports nothing else from the crate, like [`super::wire`].

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use hickory_proto::rr::{Name, RData, Record};
use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};

use super::wire::{DO, OPT};

/// The fixed DNS header's length.
pub const HEADER: usize = 12;
/// Offsets a compression pointer can reach (14 bits).
const POINTER_LIMIT: usize = 0x3FFF;
/// Most suffixes remembered per message; past it names are still written, only uncompressed
/// against what comes later. Bounds the table of one huge TCP response.
const CANDIDATE_LIMIT: usize = 4096;

/// The record did not fit the message's limit; the message is as it was before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full;

/// Most candidates looked up by a scan before they are indexed by a map: most responses hold
/// a few names, and a map would cost more to build than the scans.
const SCAN_LIMIT: usize = 16;

/// The hashes of lower-cased suffixes already written, to where each was written: a list in
/// the order they were added (scanned while short, and the log a rewind truncates), indexed by
/// a map once long. A collision can only cost a compression (every hit is confirmed against
/// the written bytes), and the question adds at most 127 suffixes, so neither the hash nor the
/// map needs a secret key.
#[derive(Default)]
struct Candidates {
    added: Vec<(u64, u16)>,
    index: Option<HashMap<u64, u16, BuildHasherDefault<Identity>>>,
}

impl Candidates {
    fn get(&self, hash: u64) -> Option<u16> {
        match &self.index {
            Some(index) => index.get(&hash).copied(),
            None => self
                .added
                .iter()
                .find(|(h, _)| *h == hash)
                .map(|(_, at)| *at),
        }
    }

    /// Adds `hash` at `at` unless it is already there (the first place a name was written is
    /// as good as any).
    fn add(&mut self, hash: u64, at: u16) {
        if self.get(hash).is_some() {
            return;
        }
        self.added.push((hash, at));
        match &mut self.index {
            Some(index) => {
                index.insert(hash, at);
            }
            None if self.added.len() > SCAN_LIMIT => {
                self.index = Some(self.added.iter().copied().collect());
            }
            None => {}
        }
    }

    fn len(&self) -> usize {
        self.added.len()
    }

    fn truncate(&mut self, len: usize) {
        for (hash, _) in self.added.drain(len..) {
            if let Some(index) = &mut self.index {
                index.remove(&hash);
            }
        }
    }
}

/// The map's hasher: the keys are hashes already.
#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// A point in a message to go back to: what was written up to it.
#[derive(Debug, Clone, Copy)]
pub struct Mark {
    len: usize,
    added: usize,
    counts: [u16; 3],
}

/// One message being written.
pub struct Composer {
    bytes: Vec<u8>,
    /// Most bytes the message may take, less what is reserved for the OPT record.
    limit: usize,
    candidates: Candidates,
    /// The records written in each section: answer, authority, additional.
    counts: [u16; 3],
}

impl Composer {
    /// A message of at most `limit` bytes whose first `HEADER` bytes are `header` (counts are
    /// filled in by [`finish`](Self::finish)), with `reserve` bytes kept back for an OPT record.
    pub fn new(header: [u8; 4], limit: usize, reserve: usize) -> Self {
        let mut bytes = Vec::with_capacity(limit.min(512));
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&[0; HEADER - 4]);
        Self {
            bytes,
            limit: limit.saturating_sub(reserve),
            candidates: Candidates::default(),
            counts: [0; 3],
        }
    }

    /// Writes `question` (a name in uncompressed wire form, then type and class) as it
    /// arrived, and makes its name's suffixes candidates whatever their case. Must come first.
    pub fn question(&mut self, question: &[u8]) -> Result<(), Full> {
        let start = self.bytes.len();
        if start + question.len() > self.limit {
            return Err(Full);
        }
        self.bytes.extend_from_slice(question);
        let mut starts = Vec::with_capacity(8);
        let mut at = start;
        while let Some(&len) = self.bytes.get(at) {
            if len == 0 || len > 63 {
                break;
            }
            starts.push(at);
            at += 1 + usize::from(len);
        }
        for (at, hash) in suffix_hashes(&self.bytes, &starts) {
            self.remember(hash, at);
        }
        self.bytes[4..6].copy_from_slice(&1u16.to_be_bytes());
        Ok(())
    }

    /// Appends `record` to `section` (0 answer, 1 authority, 2 additional); when it does not
    /// fit, the message is left as it was.
    pub fn record(&mut self, section: usize, record: &Record) -> Result<(), Full> {
        let mark = self.mark();
        let written = self.write_record(record);
        if written.is_err() || self.bytes.len() > self.limit {
            self.rewind(mark);
            return Err(Full);
        }
        self.counts[section] += 1;
        Ok(())
    }

    /// The message as written so far, to [`rewind`](Self::rewind) to.
    pub fn mark(&self) -> Mark {
        Mark {
            len: self.bytes.len(),
            added: self.candidates.len(),
            counts: self.counts,
        }
    }

    /// Takes back everything written after `mark`, the compression candidates included.
    pub fn rewind(&mut self, mark: Mark) {
        self.bytes.truncate(mark.len);
        self.candidates.truncate(mark.added);
        self.counts = mark.counts;
    }

    /// Appends the OPT record (RFC 6891 §6.1.2): our UDP payload size, the high bits of the
    /// response code, version 0, the DO bit as asked; into the space kept back for it.
    pub fn opt(&mut self, payload: u16, rcode_high: u8, dnssec_ok: bool) {
        let [t0, t1] = OPT.to_be_bytes();
        let [p0, p1] = payload.to_be_bytes();
        let flags = if dnssec_ok { DO } else { 0 };
        self.bytes
            .extend_from_slice(&[0, t0, t1, p0, p1, rcode_high, 0, flags, 0, 0, 0]);
        self.counts[2] += 1;
    }

    /// The message, its section counts written into the header.
    pub fn finish(mut self) -> Vec<u8> {
        for (i, count) in self.counts.iter().enumerate() {
            let at = 6 + 2 * i;
            self.bytes[at..at + 2].copy_from_slice(&count.to_be_bytes());
        }
        self.bytes
    }

    /// The bytes written so far after offset `from` (for rendering a section ahead of time).
    pub fn since(&self, from: usize) -> &[u8] {
        self.bytes.get(from..).unwrap_or_default()
    }

    /// The message's length so far.
    pub fn written(&self) -> usize {
        self.bytes.len()
    }

    fn write_record(&mut self, record: &Record) -> Result<(), Full> {
        self.name(&record.name)?;
        self.bytes
            .extend_from_slice(&u16::from(record.record_type()).to_be_bytes());
        self.bytes
            .extend_from_slice(&u16::from(record.dns_class).to_be_bytes());
        self.bytes.extend_from_slice(&record.ttl.to_be_bytes());
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0, 0]);
        match &record.data {
            RData::NS(target) => self.name(&target.0)?,
            RData::CNAME(target) => self.name(&target.0)?,
            RData::PTR(target) => self.name(&target.0)?,
            RData::MX(mx) => {
                self.bytes.extend_from_slice(&mx.preference.to_be_bytes());
                self.name(&mx.exchange)?;
            }
            RData::SOA(soa) => {
                self.name(&soa.mname)?;
                self.name(&soa.rname)?;
                self.bytes.extend_from_slice(&soa.serial.to_be_bytes());
                for value in [soa.refresh, soa.retry, soa.expire] {
                    self.bytes.extend_from_slice(&value.to_be_bytes());
                }
                self.bytes.extend_from_slice(&soa.minimum.to_be_bytes());
            }
            data => {
                let mut rdata = Vec::new();
                let mut encoder = BinEncoder::new(&mut rdata);
                encoder.set_name_encoding(NameEncoding::Uncompressed);
                data.emit(&mut encoder).map_err(|_| Full)?;
                self.bytes.extend_from_slice(&rdata);
            }
        }
        let length = u16::try_from(self.bytes.len() - length_at - 2).map_err(|_| Full)?;
        self.bytes[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
        Ok(())
    }

    /// Writes `name`, ending in a pointer to the longest suffix already in the message.
    fn name(&mut self, name: &Name) -> Result<(), Full> {
        let mut starts = Vec::with_capacity(8);
        for label in name.iter() {
            let len = u8::try_from(label.len()).map_err(|_| Full)?;
            starts.push(self.bytes.len());
            self.bytes.push(len);
            self.bytes.extend_from_slice(label);
        }
        self.bytes.push(0);
        let hashes = suffix_hashes(&self.bytes, &starts);
        // Label by label from the left: the first suffix already written becomes a pointer.
        for (i, &(at, hash)) in hashes.iter().enumerate() {
            if let Some(earlier) = self.candidates.get(hash)
                && same_name(&self.bytes, usize::from(earlier), at)
            {
                self.bytes.truncate(at);
                self.bytes
                    .extend_from_slice(&(0xC000 | earlier).to_be_bytes());
                for &(at, hash) in &hashes[..i] {
                    self.remember(hash, at);
                }
                return Ok(());
            }
        }
        for (at, hash) in hashes {
            self.remember(hash, at);
        }
        Ok(())
    }

    fn remember(&mut self, hash: u64, at: usize) {
        if at > POINTER_LIMIT || self.candidates.len() >= CANDIDATE_LIMIT {
            return;
        }
        self.candidates.add(hash, at as u16);
    }
}

/// For the labels starting at `starts` in `bytes` (one name, written out in full, the root
/// after the last): each label's place and the hash of the lower-cased suffix it begins,
/// computed from the right so each label is read once (FNV-1a).
fn suffix_hashes(bytes: &[u8], starts: &[usize]) -> Vec<(usize, u64)> {
    let mut hashes = vec![(0, 0); starts.len()];
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &at) in starts.iter().enumerate().rev() {
        let end = (at + 1 + usize::from(bytes[at])).min(bytes.len());
        for &byte in &bytes[at..end] {
            hash = (hash ^ u64::from(byte.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
        }
        // A last mix, so suffixes that share a tail still spread over the map's buckets.
        hashes[i] = (at, hash ^ (hash >> 29));
    }
    hashes
}

/// Whether the name at `earlier` (possibly ending in pointers) and the uncompressed name at
/// `at` are the same name, ignoring case.
fn same_name(bytes: &[u8], earlier: usize, at: usize) -> bool {
    let (mut a, mut b) = (earlier, at);
    // Pointers only lead backwards, but bound the walk anyway: a name has at most 128 labels.
    for _ in 0..256 {
        let (Some(&len_a), Some(&len_b)) = (bytes.get(a), bytes.get(b)) else {
            return false;
        };
        if len_a & 0xC0 == 0xC0 {
            let Some(&low) = bytes.get(a + 1) else {
                return false;
            };
            a = usize::from(u16::from_be_bytes([len_a & 0x3F, low]));
            continue;
        }
        if len_a != len_b {
            return false;
        }
        if len_a == 0 {
            return true;
        }
        let (end_a, end_b) = (a + 1 + usize::from(len_a), b + 1 + usize::from(len_b));
        match (bytes.get(a + 1..end_a), bytes.get(b + 1..end_b)) {
            (Some(x), Some(y)) if x.eq_ignore_ascii_case(y) => (a, b) = (end_a, end_b),
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::op::Message;
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::{A, MX, SRV};

    use super::*;

    fn question(name: &str) -> Vec<u8> {
        let mut wire = Vec::new();
        for label in Name::from_str(name).expect("name").iter() {
            wire.push(label.len() as u8);
            wire.extend_from_slice(label);
        }
        wire.extend_from_slice(&[0, 0, 1, 0, 1]);
        wire
    }

    fn record(name: &str, data: RData) -> Record {
        Record::from_rdata(Name::from_str(name).expect("name"), 300, data)
    }

    #[test]
    fn owners_point_at_the_question_whatever_its_case_and_the_message_decodes() {
        let mut message = Composer::new([0, 1, 0x84, 0], 65535, 0);
        message
            .question(&question("WwW.Example.TEST."))
            .expect("fits");
        for n in 0..2000u32 {
            let a = A::from(std::net::Ipv4Addr::from(0x0A00_0000 + n));
            message
                .record(0, &record("www.example.test.", RData::A(a)))
                .expect("fits");
        }
        let bytes = message.finish();
        // Each record: a 2-byte pointer, type, class, TTL, length, 4 bytes of address.
        assert_eq!(bytes.len(), 12 + 22 + 2000 * 16);
        assert_eq!(&bytes[34..36], &[0xC0, 12]);
        assert_eq!(&bytes[bytes.len() - 16..bytes.len() - 14], &[0xC0, 12]);
        let decoded = Message::from_vec(&bytes).expect("decodes");
        assert_eq!(decoded.answers.len(), 2000);
        assert_eq!(decoded.answers[1999].name.to_ascii(), "www.example.test.");
    }

    #[test]
    fn rdata_names_compress_only_for_rfc_1035_types() {
        let mut message = Composer::new([0, 1, 0x84, 0], 65535, 0);
        message.question(&question("example.test.")).expect("fits");
        let mx = MX::new(10, Name::from_str("mail.example.test.").expect("name"));
        let srv = SRV::new(
            0,
            0,
            25,
            Name::from_str("mail.example.test.").expect("name"),
        );
        message
            .record(0, &record("example.test.", RData::MX(mx)))
            .expect("fits");
        let before = message.written();
        message
            .record(0, &record("_smtp._tcp.example.test.", RData::SRV(srv)))
            .expect("fits");
        let bytes = message.finish();
        // The SRV record: "_smtp._tcp" then a pointer, and its target spelled out in full.
        let target = b"\x04mail\x07example\x04test\x00";
        assert!(bytes[before..].windows(target.len()).any(|w| w == target));
        let decoded = Message::from_vec(&bytes).expect("decodes");
        assert_eq!(decoded.answers[1].record_type(), RecordType::SRV);
        assert_eq!(decoded.answers[0].data.to_string(), "10 mail.example.test.");
    }

    #[test]
    fn a_record_that_does_not_fit_leaves_the_message_as_it_was() {
        let mut message = Composer::new([0, 1, 0x84, 0], 60, 11);
        message.question(&question("example.test.")).expect("fits");
        let mx = MX::new(
            10,
            Name::from_str("a-long-mail-host.example.test.").expect("name"),
        );
        let before = message.written();
        assert_eq!(
            message.record(0, &record("example.test.", RData::MX(mx))),
            Err(Full)
        );
        assert_eq!(message.written(), before);
        // What it had made a candidate is gone with it: the same name again is spelled out.
        let a = A::from(std::net::Ipv4Addr::LOCALHOST);
        message
            .record(0, &record("x.example.test.", RData::A(a)))
            .expect("fits");
        message.opt(1232, 0, true);
        let decoded = Message::from_vec(&message.finish()).expect("decodes");
        assert_eq!(decoded.answers.len(), 1);
        assert!(decoded.edns.expect("OPT").flags().dnssec_ok);
    }
}
