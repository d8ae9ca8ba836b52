//! Request handling: what failover-dns sends for one datagram or TCP message. Hickory decodes
//! it, [`super::answer`] decides the answer from the current snapshot, and this module encodes
//! the result (EDNS, truncation to the client's buffer over UDP).
//!
//! The UDP workers (`dns::udp`) and TCP connections (`dns::tcp`) both call [`respond`] for
//! whatever the fast path leaves. This module never waits on the check plane: it is handed the
//! current snapshot and answers.

use std::borrow::Cow;
use std::net::SocketAddr;

use hickory_proto::op::{Edns, Header, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};

use super::answer::{Query, Question, Response, answer};
use super::wire::{Answered, MAX_UDP_PAYLOAD, Protocol};
use crate::snapshot::Snapshot;

/// A decided response to one request: header, OPT and records, ready to encode.
struct Reply<'s> {
    metadata: Metadata,
    edns: Option<Edns>,
    response: Response<'s>,
    /// False when the response did not fit the client's UDP buffer and goes out as TC.
    records: bool,
    /// An empty question section, echoed instead of the request's when it does not have
    /// exactly one question: such a request only ever gets an error, and echoing dozens of
    /// questions may not fit any response (a fuzzing finding: hickory then emitted a message
    /// with a cut question section).
    no_questions: Option<Queries>,
}

impl<'s> Reply<'s> {
    fn new(snapshot: &'s Snapshot, request: &Request) -> Self {
        let questions: Vec<Question<'_>> = request
            .queries
            .queries()
            .iter()
            .map(|q| Question {
                name: q.name(),
                qtype: q.query_type(),
                qclass: q.query_class(),
            })
            .collect();
        let query = Query {
            op_code: request.metadata.op_code,
            questions: &questions,
            edns_version: request.edns.as_ref().map(Edns::version),
        };
        let response = answer(snapshot, &query);

        // RFC 6891 §6.2.3/§7: a request with OPT gets OPT back, offering our own buffer size
        // and echoing the DO bit (RFC 3225 §3).
        let edns = request.edns.as_ref().map(|client| {
            let mut edns = Edns::new();
            edns.set_max_payload(MAX_UDP_PAYLOAD);
            edns.set_version(0);
            edns.set_dnssec_ok(client.flags().dnssec_ok);
            edns
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = response.authoritative;
        metadata.response_code = response.rcode;
        let no_questions = (request.queries.queries().len() != 1)
            .then(no_questions)
            .flatten();
        Self {
            metadata,
            edns,
            response,
            records: true,
            no_questions,
        }
    }

    /// The most a response to `request` may take: the client's UDP buffer (512 without
    /// EDNS, at most ours), or a whole TCP message.
    fn limit(request: &Request) -> u16 {
        match request.protocol() {
            Protocol::Udp => request.edns.as_ref().map_or(512, |client| {
                client.max_payload().clamp(512, MAX_UDP_PAYLOAD)
            }),
            _ => u16::MAX,
        }
    }

    /// The response on the wire, within `request`'s limit: encoded once when it fits; when it
    /// does not, the header and question with TC set, as Knot and NSD send (RFC 2181 §9).
    /// (Hickory would truncate to the buffer our OPT advertises, not the client's.)
    fn into_wire(mut self, request: &Request) -> Option<Vec<u8>> {
        let limit = Self::limit(request);
        match self.encode(request, limit)? {
            (bytes, false) => Some(bytes),
            (_, true) => {
                self.metadata.truncation = true;
                self.records = false;
                self.encode(request, limit).map(|(bytes, _)| bytes)
            }
        }
    }

    fn message<'a>(
        &'a self,
        request: &'a Request,
    ) -> MessageResponse<
        'a,
        'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
        impl Iterator<Item = &'a Record> + Send + 'a,
    > {
        let section = |of| section(of, self.records);
        let questions = self.no_questions.as_ref().unwrap_or(&request.queries);
        MessageResponseBuilder::new(questions, self.edns.as_ref()).build(
            self.metadata,
            section(&self.response.answers),
            section(&self.response.authority),
            std::iter::empty(),
            section(&self.response.additional),
        )
    }

    /// The wire form within `limit` bytes, and whether it had to be truncated to fit.
    fn encode(&self, request: &Request, limit: u16) -> Option<(Vec<u8>, bool)> {
        let mut bytes = Vec::with_capacity(usize::from(limit.min(4096)));
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(limit);
        let info = self.message(request).destructive_emit(&mut encoder).ok()?;
        Some((bytes, info.truncation))
    }
}

/// What failover-dns answers to the datagram or TCP message `bytes` from `source`, or None
/// where it sends nothing. Mirrors hickory-server's handling of a raw request: under 12
/// bytes, nothing; an undecodable message after a valid header, FORMERR with the header's
/// ID; a response (QR set), nothing; anything else, our answer.
pub fn respond(
    snapshot: &Snapshot,
    bytes: &[u8],
    protocol: Protocol,
    source: SocketAddr,
) -> Option<Answered> {
    let header = Header::read(&mut BinDecoder::new(bytes)).ok()?;
    let Ok(request) = Request::from_bytes(bytes.to_vec(), source, protocol) else {
        return format_error(&header, protocol);
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    if request.queries.queries().len() == 1 && first_name_is_compressed(bytes) {
        return format_error(&header, protocol);
    }
    let reply = Reply::new(snapshot, &request);
    let rcode = reply.metadata.response_code;
    let qtype = request.queries.queries().first().map(|q| q.query_type());
    Some(Answered {
        bytes: reply.into_wire(&request)?,
        rcode,
        qtype,
    })
}

/// Whether the first question's name uses a compression pointer. Hickory echoes a question as
/// the bytes it arrived as, so such a pointer would point elsewhere in the response and make
/// it undecodable (a fuzzing finding). The question is the first name of a message: a pointer
/// there can only lead back into the header or into the name itself, so no real client sends
/// one, and it gets FORMERR.
fn first_name_is_compressed(bytes: &[u8]) -> bool {
    let mut at = 12;
    while let Some(&len) = bytes.get(at) {
        match len {
            0 => return false,
            len if len & 0xC0 == 0xC0 => return true,
            len => at += 1 + usize::from(len),
        }
    }
    false
}

/// FORMERR for a message whose header decoded but the rest did not: the header's ID and
/// opcode, no question.
fn format_error(header: &Header, protocol: Protocol) -> Option<Answered> {
    let queries = no_questions()?;
    let response = MessageResponseBuilder::new(&queries, None)
        .error_msg(&header.metadata, ResponseCode::FormErr);
    let mut bytes = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_max_size(if protocol == Protocol::Udp {
        512
    } else {
        u16::MAX
    });
    response.destructive_emit(&mut encoder).ok()?;
    Some(Answered {
        bytes,
        rcode: ResponseCode::FormErr,
        qtype: None,
    })
}

/// An empty question section (hickory offers no other way to make one).
fn no_questions() -> Option<Queries> {
    Queries::read(&mut BinDecoder::new(&[]), 0).ok()
}

/// The response bytes for `bytes` arriving over `protocol`, as [`respond`] decides them; the
/// whole request path but the socket, for the fuzz target and tests.
pub fn respond_to_bytes(snapshot: &Snapshot, bytes: &[u8], protocol: Protocol) -> Option<Vec<u8>> {
    let source = SocketAddr::from(([127, 0, 0, 1], 53000));
    respond(snapshot, bytes, protocol, source).map(|answered| answered.bytes)
}

/// The records of one response section, or none when the response is cut to its header.
fn section<'a>(
    records: &'a [Cow<'_, Record>],
    keep: bool,
) -> impl Iterator<Item = &'a Record> + Send + 'a {
    records[..if keep { records.len() } else { 0 }]
        .iter()
        .map(AsRef::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_question_name_gets_formerr_without_the_question() {
        let snapshot = crate::dns::answer::tests::snapshot();
        // "abc" then a pointer to offset 4, where the header's QDCOUNT starts with a zero
        // byte: hickory reads the name "abc.".
        let request = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 0xC0, 4, 0, 1, 0,
            1,
        ];
        let response = respond_to_bytes(&snapshot, &request, Protocol::Udp).expect("answered");
        let message = hickory_proto::op::Message::from_vec(&response).expect("decodes");
        assert_eq!(message.metadata.response_code, ResponseCode::FormErr);
        assert!(message.queries.is_empty());
        let plain = [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'b', b'c', 0, 0, 1, 0, 1,
        ];
        let response = respond_to_bytes(&snapshot, &plain, Protocol::Udp).expect("answered");
        let message = hickory_proto::op::Message::from_vec(&response).expect("decodes");
        assert_eq!(message.metadata.response_code, ResponseCode::Refused);
    }
}
