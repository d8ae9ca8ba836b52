//! Listeners and hickory glue: turns requests into [`Query`]s, answers them from the current
//! snapshot, and encodes the result (EDNS, truncation to the client's buffer over UDP).
//!
//! Socket handling, TCP framing and idle timeouts are hickory-server's. This module never waits
//! on the check plane: it loads the current snapshot and answers.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::{Edns, Header, HeaderCounts, Metadata};
use hickory_proto::rr::Record;
use hickory_proto::serialize::binary::BinEncoder;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{debug, info};

use super::answer::{Query, Question, answer};
use crate::snapshot::SnapshotCell;

/// Largest UDP payload we send, whatever the client offers: the DNS Flag Day 2020 value,
/// which avoids IP fragmentation on common paths.
pub const MAX_UDP_PAYLOAD: u16 = 1232;

/// Bytes buffered per TCP connection for responses.
const TCP_RESPONSE_BUFFER: usize = 32;

/// Answers every request from the snapshot current when it arrives.
pub struct Handler {
    cell: SnapshotCell,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let snapshot = self.cell.load_full();
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
        let response = answer(&snapshot, &query);

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
        let build = |metadata: Metadata, records: bool| {
            let section = |of| section(of, records);
            MessageResponseBuilder::new(&request.queries, edns.as_ref()).build(
                metadata,
                section(&response.answers),
                section(&response.authority),
                std::iter::empty(),
                section(&response.additional),
            )
        };
        // Hickory truncates UDP to the buffer size our OPT advertises, not to the client's, so
        // we measure against the client's buffer here; a response that does not fit is sent
        // as the header and question with TC set, as Knot and NSD do (RFC 2181 §9).
        let mut records = true;
        if request.protocol() == Protocol::Udp {
            let limit = request.edns.as_ref().map_or(512, |client| {
                client.max_payload().clamp(512, MAX_UDP_PAYLOAD)
            });
            let mut scratch = Vec::with_capacity(usize::from(limit));
            let mut encoder = BinEncoder::new(&mut scratch);
            encoder.set_max_size(limit);
            let fits = build(metadata, true)
                .destructive_emit(&mut encoder)
                .is_ok_and(|info| !info.truncation);
            if !fits {
                metadata.truncation = true;
                records = false;
            }
        }
        let message = build(metadata, records);
        match response_handle.send_response(message).await {
            Ok(info) => info,
            Err(error) => {
                debug!(%error, src = %request.src(), "cannot send response");
                ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        }
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

/// Binds UDP and TCP on every address and starts serving from `cell`. Fails, naming the
/// address, if any cannot be bound, so a misconfigured server never half-starts.
pub async fn serve(
    listen: &[SocketAddr],
    tcp_idle_timeout: Duration,
    cell: SnapshotCell,
) -> io::Result<Server<Handler>> {
    let mut server = Server::new(Handler { cell });
    for addr in listen {
        let context =
            |e: io::Error| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"));
        let udp = UdpSocket::bind(addr).await.map_err(context)?;
        let tcp = TcpListener::bind(addr).await.map_err(context)?;
        info!(%addr, "serving DNS on {addr} over UDP and TCP");
        server.register_socket(udp);
        server.register_listener(tcp, tcp_idle_timeout, TCP_RESPONSE_BUFFER);
    }
    Ok(server)
}
