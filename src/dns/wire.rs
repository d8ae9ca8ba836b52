//! What both answer paths (the full one in [`super::answer`] and [`super::request`], the fast
//! one in [`super::fast`]) share: the transport, a finished response, the UDP size we send, and
//! the rule for additional-section targets. It imports nothing else from the crate, so the
//! zone's pre-rendered index can depend on it without depending on the query path.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
pub use hickory_server::net::xfer::Protocol;

/// Largest UDP payload we send, whatever the client offers: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on common paths.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Header flags in the message's third byte (RFC 1035 §4.1.1): QR, this is a response.
pub const QR: u8 = 0x80;
/// Third header byte: AA, an authoritative answer.
pub const AA: u8 = 0x04;
/// Third header byte: TC, truncated (the client should retry over TCP).
pub const TC: u8 = 0x02;
/// Third header byte: RD, recursion desired (a response echoes it).
pub const RD: u8 = 0x01;
/// Fourth header byte: CD, checking disabled (a response echoes it, RFC 4035 §3.2.2).
pub const CD: u8 = 0x10;
/// The OPT pseudo-record's type (RFC 6891 §6.1.1).
pub const OPT: u16 = 41;
/// DO, DNSSEC answer OK: the high bit of an OPT record's flags (RFC 3225 §3).
pub const DO: u8 = 0x80;
/// The Internet class (RFC 1035 §3.2.4).
pub const CLASS_IN: u16 = 1;

/// An OPT record without options: root name, type, class, TTL, RDLENGTH.
pub const OPT_LEN: usize = 11;
/// Message sections by their place among the header's counts (after the question).
pub const ANSWER: usize = 0;
/// The authority section.
pub const AUTHORITY: usize = 1;
/// The additional section.
pub const ADDITIONAL: usize = 2;

/// A response ready to send, with what the metrics need to know of it.
pub struct Answered {
    /// The response on the wire.
    pub bytes: Vec<u8>,
    /// Its response code.
    pub rcode: ResponseCode,
    /// The type asked for, if there was a question.
    pub qtype: Option<RecordType>,
}

/// The name whose addresses additional-section processing adds for `record` (RFC 1034
/// §3.6.2, RFC 2782): the target of an NS, MX or SRV record, when it lies in the zone `origin`.
pub fn additional_target(origin: &LowerName, record: &Record) -> Option<LowerName> {
    let target = match &record.data {
        RData::NS(ns) => &ns.0,
        RData::MX(mx) => &mx.exchange,
        RData::SRV(srv) => &srv.target,
        _ => return None,
    };
    let target = LowerName::new(target);
    (!target.is_root() && origin.zone_of(&target)).then_some(target)
}

/// `name` in uncompressed wire form, lower-case: as the fast path indexes names, as a NOTIFY's
/// question is written, and as TSIG covers names (RFC 8945 §4.3.3's canonical form).
pub fn lower_wire(name: &Name) -> Vec<u8> {
    let mut wire = Vec::with_capacity(name.len() + 1);
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    wire.push(0);
    wire
}
