//! Zone transfers out, for secondaries: who may transfer a zone (its `allow_transfer`
//! addresses and, when set, its `transfer_key`), and the answer to an AXFR (RFC 5936) — the
//! whole zone as one snapshot holds it, each service name with its current addresses, split
//! into as many messages as it needs, SOA first and last.
//!
//! An IXFR (RFC 1995) is answered with what changed since the client's serial, from the
//! zone's [`super::journal`], or, when the journal does not reach back that far, with the
//! whole zone in AXFR form, as §4 allows; over UDP, with the current SOA alone, so the client
//! comes back over TCP (§2).
//! This module decides and writes; the TCP loop sends, and [`super::tsig`] signs.

use std::net::IpAddr;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, RData, Record};

use super::compose::{Composer, HEADER};
use super::tsig::{self, Checked, Keys, Signer};
use super::wire::{AA, ANSWER, QR};
use crate::snapshot::{Snapshot, ZoneSnapshot};

/// Most bytes of one transfer message. Compression pointers reach 16 KiB, so larger messages
/// would only grow; a record too big for it goes alone in a message of up to 64 KiB.
const MESSAGE_LIMIT: usize = 16 * 1024;
/// Room kept in each message for its TSIG record (the longest key name, SHA-512's MAC).
pub const TSIG_ROOM: usize = 255 + 10 + 14 + 16 + 64 + 6;
/// AXFR's and IXFR's type codes.
const AXFR: u16 = 252;
const IXFR: u16 = 251;

/// A transfer request, as the TCP loop or the UDP path sees it: its ID, flags, question and
/// type.
pub struct Asked<'r> {
    id: u16,
    /// The third header octet of the request (opcode and RD are echoed).
    flags: u8,
    question: &'r [u8],
    zone_name: LowerName,
    qtype: u16,
}

/// The request if it is a transfer (one question of type AXFR or IXFR, opcode QUERY).
pub fn asked(request: &[u8]) -> Option<Asked<'_>> {
    let header = request.get(..HEADER)?;
    if header[2] & 0xF8 != 0 || header[4..6] != [0, 1] {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = usize::from(*request.get(at)?);
        if len > 63 {
            return None;
        }
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    let question = request.get(HEADER..at + 4)?;
    let qtype = u16::from_be_bytes([request[at], request[at + 1]]);
    if qtype != AXFR && qtype != IXFR {
        return None;
    }
    let name =
        hickory_proto::rr::Name::from_labels(labels(&question[..question.len() - 4])).ok()?;
    Some(Asked {
        id: u16::from_be_bytes([header[0], header[1]]),
        flags: header[2],
        question,
        zone_name: LowerName::new(&name),
        qtype,
    })
}

/// The labels of the uncompressed wire-form name `wire`.
fn labels(wire: &[u8]) -> Vec<&[u8]> {
    let mut labels = Vec::new();
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        if len == 0 {
            break;
        }
        let end = (at + 1 + usize::from(len)).min(wire.len());
        labels.push(&wire[at + 1..end]);
        at = end;
    }
    labels
}

impl Asked<'_> {
    /// The type asked for: AXFR or IXFR.
    pub fn qtype(&self) -> u16 {
        self.qtype
    }

    /// The zone asked for.
    pub fn zone(&self) -> &LowerName {
        &self.zone_name
    }
}

/// What a transfer request got.
pub enum Outcome {
    /// Its messages went to the sink; what they held: `AXFR`, `IXFR difference`, `IXFR whole
    /// zone`, `IXFR up to date` or `IXFR over UDP: the SOA`.
    Sent(&'static str),
    /// One response, a refusal or an error, and why.
    Refused(Vec<u8>, &'static str),
}

/// Where a transfer's messages go, one by one as they are made; false: stop (the client is
/// gone), the rest is not made.
pub type Sink<'a> = dyn FnMut(Vec<u8>) -> bool + 'a;

/// Answers the transfer request `asked` (whose bytes are `request`) from `source`, from
/// `snapshot`, each message to `sink` as it is made (so a large zone is never held whole);
/// `udp` when it came over UDP.
pub fn respond(
    snapshot: &Snapshot,
    keys: &Keys,
    request: &[u8],
    asked: &Asked<'_>,
    source: IpAddr,
    udp: bool,
    sink: &mut Sink<'_>,
) -> Outcome {
    let now = tsig::now();
    let checked = tsig::check(request, keys, now);
    let refuse = |rcode: ResponseCode, why: &'static str, checked: &Option<Checked>| {
        let mut message = one_message(asked, rcode, &[]);
        match checked {
            Some(Checked::Valid { key, mac }) => {
                Signer::new(Arc::clone(key), mac.clone(), now).sign(&mut message, asked.id)
            }
            Some(Checked::Failed(failure)) => failure.append(&mut message, asked.id, now),
            None => {}
        }
        Outcome::Refused(message, why)
    };
    if let Some(Checked::Failed(failure)) = &checked {
        let why = match failure.error {
            hickory_proto::rr::rdata::tsig::TsigError::BadKey => "an unknown TSIG key",
            hickory_proto::rr::rdata::tsig::TsigError::BadTime => "a TSIG time out of range",
            _ => "a bad TSIG signature",
        };
        return refuse(failure.rcode(), why, &checked);
    }
    let Some(zone) = snapshot
        .zones
        .iter()
        .find(|zone| zone.data.origin_key == asked.zone_name)
    else {
        return refuse(ResponseCode::NotAuth, "not a zone of ours", &checked);
    };
    let policy = &zone.transfer;
    if !policy.allows(source) {
        return refuse(ResponseCode::Refused, "not in allow_transfer", &checked);
    }
    let signed_with = match &checked {
        Some(Checked::Valid { key, .. }) => Some(LowerName::new(&key.name)),
        _ => None,
    };
    if let Some(required) = &policy.key
        && signed_with.as_ref() != Some(required)
    {
        return refuse(
            ResponseCode::Refused,
            "not signed with transfer_key",
            &checked,
        );
    }
    let mut signer = match checked {
        Some(Checked::Valid { key, mac }) => Some(Signer::new(key, mac, now)),
        _ => None,
    };
    let mut signed = |mut message: Vec<u8>| {
        if let Some(signer) = &mut signer {
            signer.sign(&mut message, asked.id);
        }
        sink(message)
    };
    let kind = if udp {
        // Only an IXFR comes this far over UDP (an AXFR over UDP is FORMERR before).
        signed(one_message(asked, ResponseCode::NoError, &[&zone.soa]));
        "IXFR over UDP: the SOA"
    } else if asked.qtype == IXFR {
        ixfr(zone, asked, request, &mut signed)
    } else {
        pack(&zone.records(), asked, &mut signed);
        "AXFR"
    };
    Outcome::Sent(kind)
}

/// REFUSED for a transfer the server has no room for now (`transfers_out` are running).
pub fn busy(asked: &Asked<'_>) -> Vec<u8> {
    one_message(asked, ResponseCode::Refused, &[])
}

/// Whether `asked` over UDP is an AXFR, which has no UDP form (RFC 5936 §4.2).
pub fn axfr_over_udp(asked: &Asked<'_>) -> bool {
    asked.qtype == AXFR
}

/// A FORMERR for an AXFR over UDP: RFC 5936 §4.2 defines AXFR over TCP only, as BIND answers.
pub fn format_error(asked: &Asked<'_>) -> Vec<u8> {
    one_message(asked, ResponseCode::FormErr, &[])
}

/// The response header for `asked` with `rcode`: QR, AA on success, opcode and RD echoed.
fn header(asked: &Asked<'_>, rcode: ResponseCode) -> [u8; 4] {
    let [id0, id1] = asked.id.to_be_bytes();
    let aa = if rcode == ResponseCode::NoError {
        AA
    } else {
        0
    };
    [id0, id1, QR | aa | (asked.flags & 0x79), rcode.low()]
}

/// One message answering `asked`: its question, `records`.
fn one_message(asked: &Asked<'_>, rcode: ResponseCode, records: &[&Record]) -> Vec<u8> {
    let mut message = Composer::new(header(asked, rcode), usize::from(u16::MAX), TSIG_ROOM);
    // The question is at most 259 octets and the records one SOA: both fit.
    let _ = message.question(asked.question);
    for record in records {
        let _ = message.record(ANSWER, record);
    }
    message.finish()
}

/// The IXFR of `zone` for the client serial the request's authority section gives (RFC 1995
/// §4): the current SOA alone when the client is up to date or ahead; the condensed difference
/// (current SOA, the client's SOA, what to remove, the current SOA, what to add, the current
/// SOA) when the journal reaches back to its serial; else the whole zone in AXFR form.
fn ixfr(
    zone: &ZoneSnapshot,
    asked: &Asked<'_>,
    request: &[u8],
    sink: &mut Sink<'_>,
) -> &'static str {
    let current = zone.serial();
    let client = client_serial(request);
    // RFC 1982: the client is up to date, or ahead of us (a restore, say): nothing to send.
    if let Some(client) = client
        && (client == current || serial_ahead(client, current))
    {
        sink(one_message(asked, ResponseCode::NoError, &[&zone.soa]));
        return "IXFR up to date";
    }
    let Some((client, difference)) =
        client.and_then(|client| Some((client, zone.journal.since(client, current)?)))
    else {
        pack(&zone.records(), asked, sink);
        return "IXFR whole zone";
    };
    let mut old_soa = zone.soa.clone();
    if let RData::SOA(soa) = &mut old_soa.data {
        soa.serial = client;
    }
    let mut records: Vec<&Record> = vec![&zone.soa, &old_soa];
    records.extend(&difference.removed);
    records.push(&zone.soa);
    records.extend(&difference.added);
    records.push(&zone.soa);
    pack(&records, asked, sink);
    "IXFR difference"
}

/// Whether serial `a` is ahead of `b` in RFC 1982 arithmetic.
fn serial_ahead(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

/// The serial of the SOA in an IXFR request's authority section.
fn client_serial(request: &[u8]) -> Option<u32> {
    let message = hickory_proto::op::Message::from_vec(request).ok()?;
    message.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa.serial),
        _ => None,
    })
}

/// `records` as the messages of a transfer, as many to a message as fit (the question in the
/// first), each handed to `sink` as soon as it is full; stops when the sink says so.
fn pack(records: &[&Record], asked: &Asked<'_>, sink: &mut Sink<'_>) {
    let start = |first: bool, limit: usize| {
        let mut message = Composer::new(header(asked, ResponseCode::NoError), limit, TSIG_ROOM);
        if first {
            let _ = message.question(asked.question);
        }
        message
    };
    let mut first = true;
    let mut current = start(true, MESSAGE_LIMIT);
    let mut holds_records = false;
    for &record in records {
        if current.record(ANSWER, record).is_ok() {
            holds_records = true;
            continue;
        }
        if holds_records {
            let full = std::mem::replace(&mut current, start(false, MESSAGE_LIMIT));
            if !sink(full.finish()) {
                return;
            }
            first = false;
            if current.record(ANSWER, record).is_ok() {
                holds_records = true;
                continue;
            }
        }
        // Too big for a message of MESSAGE_LIMIT: alone in one of up to 64 KiB (loading the
        // zone made sure every RRset fits one).
        let mut big = start(first, usize::from(u16::MAX));
        let _ = big.record(ANSWER, record);
        if !sink(big.finish()) {
            return;
        }
        first = false;
        current = start(false, MESSAGE_LIMIT);
        holds_records = false;
    }
    if holds_records {
        sink(current.finish());
    }
}
