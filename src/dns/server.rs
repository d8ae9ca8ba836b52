//! Listeners and hickory glue: turns requests into [`Query`]s, answers them from the current
//! snapshot, and encodes the result (EDNS, truncation to the client's buffer over UDP).
//!
//! The UDP workers (`dns::udp`) and TCP connections (`dns::tcp`) both call [`respond`]. This
//! module never waits on the check plane: it loads the current snapshot and answers.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hickory_proto::op::{Edns, Header, MessageType, Metadata, ResponseCode};
use hickory_proto::rr::{Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use hickory_server::server::Request;
use hickory_server::zone_handler::{MessageResponse, MessageResponseBuilder, Queries};
use socket2::{Domain, Protocol as SocketProtocol, Socket, Type};
use tracing::info;

use super::answer::{Query, Question, Response, answer};
use super::wire::{Answered, MAX_UDP_PAYLOAD, Protocol};
use crate::metrics::{Metrics, QueryLabels};
use crate::snapshot::{Snapshot, SnapshotCell};
use prometheus_client::metrics::counter::Counter;

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

/// Counts one answered query, by rcode, qtype and `transport`, and its time since `started`.
pub(super) fn count_query(
    metrics: &Metrics,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
    transport: &'static str,
    started: Instant,
) {
    query_counter(metrics, rcode, qtype, transport).inc();
    metrics
        .response_seconds
        .observe(started.elapsed().as_secs_f64());
}

fn query_counter(
    metrics: &Metrics,
    rcode: ResponseCode,
    qtype: Option<RecordType>,
    transport: &'static str,
) -> Counter {
    let labels = QueryLabels {
        rcode: rcode_name(rcode),
        qtype: qtype.map_or("none", Into::into),
        transport,
    };
    metrics.queries.get_or_create(&labels).clone()
}

/// One UDP worker's handles on the query counters it has used: counting a query is then a
/// short scan and an atomic add, not a hash of three labels under the family's read lock
/// (a third of a memo hit's user-space time).
pub(super) struct QueryCounts {
    transport: &'static str,
    /// (rcode, qtype or `NONE`) packed into a key, with its counter; a handful in practice.
    recent: Vec<(u32, Counter)>,
}

/// The key of a query without a question.
const NONE: u32 = 1 << 16;

/// Most counters a worker keeps; beyond that, queries are counted through the family.
const RECENT: usize = 32;

impl QueryCounts {
    /// Counts for queries arriving over `transport`.
    pub(super) fn new(transport: &'static str) -> Self {
        Self {
            transport,
            recent: Vec::with_capacity(RECENT),
        }
    }

    /// Counts one answered query and its time since `started`, as [`count_query`] does.
    pub(super) fn count(
        &mut self,
        metrics: &Metrics,
        rcode: ResponseCode,
        qtype: Option<RecordType>,
        started: Instant,
    ) {
        let key =
            (u32::from(u16::from(rcode)) << 17) | qtype.map_or(NONE, |t| u32::from(u16::from(t)));
        match self.recent.iter().find(|(k, _)| *k == key) {
            Some((_, counter)) => {
                counter.inc();
            }
            None => {
                let counter = query_counter(metrics, rcode, qtype, self.transport);
                counter.inc();
                if self.recent.len() < RECENT {
                    self.recent.push((key, counter));
                }
            }
        }
        metrics
            .response_seconds
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The mnemonic operators know an rcode by (RFC 6895 §2.3).
fn rcode_name(rcode: ResponseCode) -> &'static str {
    match rcode {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::FormErr => "FORMERR",
        ResponseCode::ServFail => "SERVFAIL",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::NotImp => "NOTIMP",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::BADVERS => "BADVERS",
        _ => "OTHER",
    }
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

/// The DNS listeners: TCP and UDP, each on our own loops.
pub struct Listeners {
    tcp: super::tcp::Tcp,
    udp: super::udp::Workers,
}

impl Listeners {
    /// Stops accepting, answers what has been received, and returns when done.
    pub async fn shutdown(self) {
        let Listeners { tcp, udp } = self;
        let stopped = tokio::task::spawn_blocking(move || udp.stop());
        tcp.shutdown().await;
        let _ = stopped.await;
    }
}

/// An unbound socket for `addr`. An IPv6 address gets IPv6 only, over UDP and TCP alike, so
/// `0.0.0.0:53` and `[::]:53` can be listed side by side (Linux would otherwise let `[::]`
/// take IPv4 too, and the second bind fail).
pub(super) fn socket_for(
    addr: SocketAddr,
    kind: Type,
    protocol: SocketProtocol,
) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), kind, Some(protocol))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    Ok(socket)
}

/// Binds UDP and TCP on every address and starts serving from `cell`. Fails, naming the
/// address, if any cannot be bound, so a misconfigured server never half-starts.
pub async fn serve(
    listen: &[SocketAddr],
    tcp_limits: super::tcp::Limits,
    limiter: Option<super::rrl::RateLimiter>,
    cell: SnapshotCell,
    metrics: Arc<Metrics>,
) -> io::Result<Listeners> {
    let mut listeners = Vec::with_capacity(listen.len());
    for addr in listen {
        let listener = super::tcp::bind(*addr)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(listener);
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let udp = super::udp::Workers::start(
        listen,
        threads,
        Arc::clone(&cell),
        Arc::clone(&metrics),
        limiter.map(Arc::new),
    )?;
    let tcp = super::tcp::Tcp::start(listeners, tcp_limits, cell, metrics);
    for addr in listen {
        info!(%addr, "serving DNS on {addr} over UDP and TCP");
    }
    Ok(Listeners { tcp, udp })
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

    #[test]
    fn query_counts_reach_the_shared_family_past_the_counters_a_worker_keeps() {
        let metrics = Metrics::new();
        let mut counts = QueryCounts::new("udp");
        // 36 types (more than a worker keeps) with names of their own (unnamed ones share the label "Unknown").
        let types: Vec<RecordType> = (1..=u16::MAX)
            .map(RecordType::from)
            .filter(|t| !matches!(t, RecordType::Unknown(_)))
            .take(36)
            .collect();
        assert_eq!(types.len(), 36);
        for _ in 0..3 {
            for qtype in &types {
                counts.count(
                    &metrics,
                    ResponseCode::NoError,
                    Some(*qtype),
                    Instant::now(),
                );
            }
            counts.count(&metrics, ResponseCode::FormErr, None, Instant::now());
        }
        for qtype in &types {
            let labels = QueryLabels {
                rcode: "NOERROR",
                qtype: (*qtype).into(),
                transport: "udp",
            };
            assert_eq!(metrics.queries.get_or_create(&labels).get(), 3, "{qtype}");
        }
        let labels = QueryLabels {
            rcode: "FORMERR",
            qtype: "none",
            transport: "udp",
        };
        assert_eq!(metrics.queries.get_or_create(&labels).get(), 3);
    }
}
