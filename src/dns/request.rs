//! Request handling: what failover-dns sends for one datagram or TCP message. Hickory decodes
//! it, [`super::answer`] decides the answer from the current snapshot, and this module writes
//! the result through [`super::compose`] (EDNS, what to leave out or truncate to fit the
//! client's UDP buffer).
//!
//! The UDP workers (`dns::udp`) and TCP connections (`dns::tcp`) both call [`respond`] for
//! whatever the fast path leaves. This module never waits on the check plane: it is handed the
//! current snapshot and answers.

use std::net::SocketAddr;

use hickory_proto::op::{Edns, Header, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::LowerName;
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};

use super::answer::{Query, Question, Response, answer};
use super::compose::{Composer, Full, HEADER};
use super::transfer::{self, TSIG_ROOM};
use super::tsig::{self, Checked, Signer};
use super::wire::{
    AA, ADDITIONAL, ANSWER, AUTHORITY, Answered, CD, MAX_UDP_PAYLOAD, OPT_LEN, Protocol, QR, RD, TC,
};
use crate::snapshot::Snapshot;

/// A decided response to one request: header, OPT and records, ready to encode.
struct Reply<'s> {
    metadata: Metadata,
    edns: Option<Edns>,
    response: Response<'s>,
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
        Self {
            metadata,
            edns,
            response,
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

    /// The response on the wire, within `request`'s limit (`question` is the request's one
    /// question as it arrived, None to echo none). When the answer or authority records do not
    /// fit, the header and question with TC set, as Knot and NSD send (RFC 2181 §9); from the
    /// first additional target whose addresses do not fit, the rest are left out without TC,
    /// as Knot does, apart from a referral's glue, which the referral needs (RFC 9471 §3).
    fn into_wire(
        mut self,
        request: &Request,
        question: Option<&[u8]>,
        room: usize,
    ) -> Option<Vec<u8>> {
        // `room`: kept free for a TSIG record to be appended.
        let limit = usize::from(Self::limit(request)).saturating_sub(room);
        match self.compose(question, limit, true) {
            Ok(bytes) => Some(bytes),
            Err(Full) => {
                self.metadata.truncation = true;
                self.compose(question, limit, false).ok()
            }
        }
    }

    /// The message within `limit` bytes, with its records when `records`.
    fn compose(
        &self,
        question: Option<&[u8]>,
        limit: usize,
        records: bool,
    ) -> Result<Vec<u8>, Full> {
        let reserve = if self.edns.is_some() { OPT_LEN } else { 0 };
        let mut message = Composer::new(header(&self.metadata), limit, reserve);
        if let Some(question) = question {
            message.question(question)?;
        }
        if records {
            let response = &self.response;
            for record in &response.answers {
                message.record(ANSWER, record)?;
            }
            for record in &response.authority {
                message.record(AUTHORITY, record)?;
            }
            let cut = response.referral_cut();
            // A target's addresses (A and AAAA) go in together or not at all, as Knot's do.
            for addresses in response.additional.chunk_by(|a, b| a.name == b.name) {
                let mark = message.mark();
                if addresses
                    .iter()
                    .any(|r| message.record(ADDITIONAL, r).is_err())
                {
                    message.rewind(mark);
                    let glue = cut
                        .as_ref()
                        .is_some_and(|cut| cut.zone_of(&LowerName::new(&addresses[0].name)));
                    if glue {
                        return Err(Full);
                    }
                    break;
                }
            }
        }
        if let Some(edns) = &self.edns {
            message.opt(
                edns.max_payload(),
                self.metadata.response_code.high(),
                edns.flags().dnssec_ok,
            );
        }
        Ok(message.finish())
    }
}

/// The first four bytes of a response's header: ID, QR, opcode, AA, TC, RD, CD and the low
/// bits of the response code (RA and AD are never set: we do not recurse or validate).
fn header(metadata: &Metadata) -> [u8; 4] {
    let [id0, id1] = metadata.id.to_be_bytes();
    let mut flags = QR | ((u8::from(metadata.op_code) & 0x0F) << 3);
    for (on, bit) in [
        (metadata.authoritative, AA),
        (metadata.truncation, TC),
        (metadata.recursion_desired, RD),
    ] {
        if on {
            flags |= bit;
        }
    }
    let mut low = metadata.response_code.low();
    if metadata.checking_disabled {
        low |= CD;
    }
    [id0, id1, flags, low]
}

/// The request's question as it arrived (name, type, class), when it has exactly one.
fn question_bytes(bytes: &[u8], request: &Request) -> Option<Vec<u8>> {
    if request.queries.queries().len() != 1 {
        return None;
    }
    let mut at = HEADER;
    loop {
        let len = usize::from(*bytes.get(at)?);
        at += 1 + len;
        if len == 0 {
            break;
        }
    }
    bytes.get(HEADER..at + 4).map(<[u8]>::to_vec)
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
    if protocol == Protocol::Udp
        && let Some(asked) = transfer::asked(bytes)
    {
        return udp_transfer(snapshot, bytes, &asked, source);
    }
    let Ok(request) = Request::from_bytes(bytes.to_vec(), source, protocol) else {
        return format_error(&header, protocol);
    };
    if request.metadata.message_type == MessageType::Response {
        return None;
    }
    if request.queries.queries().len() == 1 && first_name_is_compressed(bytes) {
        return format_error(&header, protocol);
    }
    // A request without exactly one question only ever gets an error, and echoing dozens of
    // questions may not fit any response: it gets none echoed.
    let question = question_bytes(bytes, &request);
    let qtype = request.queries.queries().first().map(|q| q.query_type());
    // A signed query (a secondary's SOA check, say) gets a signed answer (RFC 8945 §5.3), or
    // NOTAUTH with the TSIG error that says why not (§5.2).
    let checked = if snapshot.keys.is_empty() && !tsig::ends_in_tsig(bytes) {
        None
    } else {
        tsig::check(bytes, &snapshot.keys, tsig::now())
    };
    let mut reply = Reply::new(snapshot, &request);
    if let Some(Checked::Failed(failure)) = &checked {
        reply.metadata.response_code = failure.rcode();
        reply.metadata.authoritative = false;
        reply.response = Response::default();
    }
    let rcode = reply.metadata.response_code;
    let room = if checked.is_some() { TSIG_ROOM } else { 0 };
    let mut bytes = reply.into_wire(&request, question.as_deref(), room)?;
    match checked {
        Some(Checked::Valid { key, mac }) => {
            Signer::new(key, mac, tsig::now()).sign(&mut bytes, header.metadata.id)
        }
        Some(Checked::Failed(failure)) => {
            failure.append(&mut bytes, header.metadata.id, tsig::now())
        }
        None => {}
    }
    Some(Answered {
        bytes,
        rcode,
        qtype,
    })
}

/// A zone transfer asked over UDP: an AXFR is FORMERR (it has no UDP form), an IXFR gets the
/// current SOA (RFC 1995 §2) if it may transfer at all.
fn udp_transfer(
    snapshot: &Snapshot,
    bytes: &[u8],
    asked: &transfer::Asked<'_>,
    source: SocketAddr,
) -> Option<Answered> {
    let qtype = Some(hickory_proto::rr::RecordType::from(asked.qtype()));
    if transfer::axfr_over_udp(asked) {
        return Some(Answered {
            bytes: transfer::format_error(asked),
            rcode: ResponseCode::FormErr,
            qtype,
        });
    }
    let mut sent = None;
    let mut sink = |message: Vec<u8>| {
        sent = Some(message);
        true
    };
    let outcome = transfer::respond(
        snapshot,
        &snapshot.keys,
        bytes,
        asked,
        source.ip(),
        true,
        &mut sink,
    );
    let (bytes, rcode) = match outcome {
        transfer::Outcome::Sent(_) => (sent?, ResponseCode::NoError),
        transfer::Outcome::Refused(message, why) => {
            tracing::info!(%source, why, "refused a zone transfer over UDP");
            let rcode = ResponseCode::from_low(message.get(3).map_or(0, |b| b & 0x0F));
            (message, rcode)
        }
    };
    Some(Answered {
        bytes,
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

    fn query(name: &str, qtype: hickory_proto::rr::RecordType) -> Vec<u8> {
        use hickory_proto::op::{Message, MessageType, OpCode, Query};
        let mut message = Message::new(7, MessageType::Query, OpCode::Query);
        let name = hickory_proto::rr::Name::from_ascii(name).expect("name");
        message.add_query(Query::query(name, qtype));
        message.to_vec().expect("encodes")
    }

    #[test]
    fn additional_addresses_that_do_not_fit_are_left_out_but_glue_that_does_not_is_tc() {
        use hickory_proto::rr::RecordType;
        let mut zone = String::from("$ORIGIN big.test.\n$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\n");
        for n in 0..12 {
            zone.push_str(&format!(
                "@ MX 10 mail-host-{n}\nmail-host-{n} A 192.0.2.{n}\nmail-host-{n} AAAA 2001:db8::{n}\n"
            ));
        }
        for n in 0..20 {
            zone.push_str(&format!(
                "child NS ns-{n}.child\nns-{n}.child A 198.51.100.{n}\nns-{n}.child AAAA 2001:db8:1::{n}\n"
            ));
        }
        let snapshot = crate::dns::answer::tests::snapshot_of("big.test.", &zone);
        let decode =
            |bytes: Vec<u8>| hickory_proto::op::Message::from_vec(&bytes).expect("decodes");

        let mx = respond_to_bytes(
            &snapshot,
            &query("big.test.", RecordType::MX),
            Protocol::Udp,
        )
        .expect("answered");
        assert!(mx.len() <= 512);
        let mx = decode(mx);
        assert!(!mx.metadata.truncation);
        assert_eq!(mx.answers.len(), 12);
        let additional = mx.additionals.len();
        assert!(
            (2..24).contains(&additional),
            "{additional} additional records"
        );
        assert_eq!(additional % 2, 0, "each target's A and AAAA together");
        let over_tcp = decode(
            respond_to_bytes(
                &snapshot,
                &query("big.test.", RecordType::MX),
                Protocol::Tcp,
            )
            .expect("answered"),
        );
        assert_eq!(over_tcp.additionals.len(), 24);

        let referral = decode(
            respond_to_bytes(
                &snapshot,
                &query("www.child.big.test.", RecordType::A),
                Protocol::Udp,
            )
            .expect("answered"),
        );
        assert!(referral.metadata.truncation, "glue did not fit: TC");
        assert!(referral.authorities.is_empty() && referral.additionals.is_empty());
        let over_tcp = decode(
            respond_to_bytes(
                &snapshot,
                &query("www.child.big.test.", RecordType::A),
                Protocol::Tcp,
            )
            .expect("answered"),
        );
        assert_eq!(
            (over_tcp.authorities.len(), over_tcp.additionals.len()),
            (20, 40)
        );
    }
}
