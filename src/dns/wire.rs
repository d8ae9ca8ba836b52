//! What both answer paths (the full one in [`super::answer`] and [`super::request`], the fast
//! one in [`super::fast`]) share: the transport, a finished response, the UDP size we send, and
//! the rule for additional-section targets. It imports nothing else from the crate, so the
//! zone's pre-rendered index can depend on it without depending on the query path.

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{LowerName, RData, Record, RecordType};
pub use hickory_server::net::xfer::Protocol;

/// Largest UDP payload we send, whatever the client offers: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on common paths.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

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
